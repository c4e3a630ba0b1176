//! Query-string parameters: parsed strictly (unknown or repeated parameters are errors) and
//! validated before any SQL runs, so bad input gets a 400 that says what to fix, never a 500.

use std::collections::BTreeMap;

/// A 400's detail.
#[derive(Debug, PartialEq, Eq)]
pub struct BadParameter(pub String);

pub struct Params(BTreeMap<String, String>);

impl Params {
    /// Parses `query`, accepting only the names in `allowed`.
    pub fn parse(query: Option<&str>, allowed: &[&str]) -> Result<Params, BadParameter> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
            .map_err(|_| BadParameter("the query string is not valid URL encoding".to_owned()))?;
        let mut map = BTreeMap::new();
        for (key, value) in pairs {
            if !allowed.contains(&key.as_str()) {
                return Err(BadParameter(format!(
                    "unknown parameter `{key}`; allowed: {}",
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

    /// A present, non-empty value.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
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

    /// Free text, bounded in length and free of control characters.
    pub fn text(&self, key: &str, max_chars: usize) -> Result<Option<&str>, BadParameter> {
        match self.get(key) {
            None => Ok(None),
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
}
