//! Query-string parameters: parsed strictly (unknown or repeated parameters are errors) and
//! validated before any SQL runs, so bad input gets a 400 that says what to fix, never a 500.

use std::collections::BTreeMap;

/// A 400's detail.
#[derive(Debug, PartialEq, Eq)]
pub struct BadParameter(pub String);

pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `query`, accepting only the names in `allowed`. The decoding is strict: `+` is a
    /// space, every `%` must begin two hex digits, and the decoded bytes must be UTF-8 (a
    /// lenient decoder would pass `%zz` through and turn bad bytes into U+FFFD, so a client's
    /// typo would silently search for something else).
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Params, BadParameter> {
        let mut map = BTreeMap::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let invalid = || {
                BadParameter(
                    "the query string is not valid URL encoding (a `%` must begin two hex digits of UTF-8)"
                        .to_owned(),
                )
            };
            let key = decode(key).ok_or_else(invalid)?;
            let value = decode(value).ok_or_else(invalid)?;
            if !allowed.contains(&key.as_str()) {
                return Err(BadParameter(format!(
                    "unknown parameter `{}`; allowed: {}",
                    key.escape_debug(),
                    allowed.join(", ")
                )));
            }
            if map.insert(key.clone(), value).is_some() {
                return Err(BadParameter(format!(
                    "parameter `{key}` is given more than once"
                )));
            }
        }
        Ok(Params(map))
    }

    /// A present value. An empty value is a value (`country=` is refused as a bad country code,
    /// not taken as "no filter"); only the free-text parameters read empty as absent.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn integer(
        &self,
        key: &str,
        default: i64,
        min: i64,
        max: i64,
    ) -> Result<i64, BadParameter> {
        match self.get(key) {
            None => Ok(default),
            Some(raw) => raw
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    BadParameter(format!("`{key}` must be an integer from {min} to {max}"))
                }),
        }
    }

    pub fn timestamp(&self, key: &str) -> Result<Option<&str>, BadParameter> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if openeu_env::is_timestamp(raw) => Ok(Some(raw)),
            Some(_) => Err(BadParameter(format!(
                "`{key}` must be a date (2026-03-01) or an RFC 3339 time (2026-03-01T09:30:00Z)"
            ))),
        }
    }

    pub fn one_of(&self, key: &str, values: &[&str]) -> Result<Option<&str>, BadParameter> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if values.contains(&raw) => Ok(Some(raw)),
            Some(_) => Err(BadParameter(format!(
                "`{key}` must be one of {}",
                values.join(", ")
            ))),
        }
    }

    /// Free text, bounded in length and free of control characters (Unicode's Cc: U+0000 to
    /// U+001F and U+007F to U+009F, as the contract's pattern); empty is no filter.
    pub fn text(&self, key: &str, max_chars: usize) -> Result<Option<&str>, BadParameter> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(raw) if raw.chars().count() > max_chars => Err(BadParameter(format!(
                "`{key}` may be at most {max_chars} characters"
            ))),
            Some(raw) if raw.chars().any(char::is_control) => Err(BadParameter(format!(
                "`{key}` must not contain control characters"
            ))),
            Some(raw) => Ok(Some(raw)),
        }
    }

    /// A value matching `pattern`'s character rule and length.
    pub fn code(&self, key: &str, len: usize, what: &str) -> Result<Option<&str>, BadParameter> {
        match self.get(key) {
            None => Ok(None),
            Some(raw) if raw.len() == len && raw.bytes().all(|b| b.is_ascii_uppercase()) => {
                Ok(Some(raw))
            }
            Some(_) => Err(BadParameter(format!("`{key}` must be {what}"))),
        }
    }
}

/// Strict `application/x-www-form-urlencoded` decoding of one key or value; None when a `%`
/// does not begin two hex digits or the bytes are not UTF-8.
fn decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let digit = |b: u8| (b as char).to_digit(16);
                out.push((digit(hex[0])? * 16 + digit(hex[1])?) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_repeated_parameters_are_refused() {
        assert!(Params::parse(Some("limit=5&bogus=1"), &["limit"]).is_err());
        assert!(Params::parse(Some("limit=5&limit=6"), &["limit"]).is_err());
        let p = Params::parse(Some("limit=5&q=caf%C3%A9"), &["limit", "q"]).unwrap();
        assert_eq!(p.integer("limit", 50, 1, 500), Ok(5));
        assert_eq!(p.text("q", 10).unwrap(), Some("café"));
        assert!(
            Params::parse(Some("limit=0"), &["limit"])
                .unwrap()
                .integer("limit", 50, 1, 500)
                .is_err()
        );
    }

    #[test]
    fn malformed_percent_encoding_is_refused() {
        for bad in ["q=%zz", "q=%4", "q=%", "q=%C3", "q=%FF%FE", "%zz=1"] {
            assert!(Params::parse(Some(bad), &["q"]).is_err(), "{bad}");
        }
        let p = Params::parse(Some("q=a+b%2Bc%20d"), &["q"]).unwrap();
        assert_eq!(p.text("q", 20).unwrap(), Some("a b+c d"));
    }

    #[test]
    fn an_empty_value_is_a_value_except_for_free_text() {
        let p = Params::parse(
            Some("country=&limit=&q=&start="),
            &["country", "limit", "q", "start"],
        )
        .unwrap();
        assert!(p.code("country", 2, "a code").is_err());
        assert!(p.integer("limit", 50, 1, 500).is_err());
        assert!(p.timestamp("start").is_err());
        assert_eq!(p.text("q", 10), Ok(None));
        assert!(
            Params::parse(Some("q=a%00b"), &["q"])
                .unwrap()
                .text("q", 10)
                .is_err(),
            "NUL is a control character"
        );
    }
}
