//! The regular expressions of smoke.toml's `matches` and of the OpenAPI `pattern` keyword, with
//! regex-lite: the syntax of the `regex` crate without its Unicode tables (`\d`, `\w`, `\s` and
//! case folding are ASCII, as in JSON Schema's ECMA-262 dialect for what the contract uses).
//! Unanchored patterns match anywhere, as in JSON Schema.

use anyhow::{Context, Result};

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern(regex_lite::Regex);

impl Pattern {
    /// Compiles `source`; the error quotes the pattern and regex-lite's reason.
    pub fn new(source: &str) -> Result<Pattern> {
        regex_lite::Regex::new(source)
            .map(Pattern)
            .with_context(|| format!("the pattern {source:?} is not a valid regular expression"))
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::new(pattern).unwrap().is_match(text)
    }

    #[test]
    fn the_patterns_of_the_contract_match_as_a_regex_would() {
        assert!(m("^[A-Z]{2}$", "DE"));
        assert!(!m("^[A-Z]{2}$", "DEU"));
        assert!(!m("^[A-Z]{2}$", "de"));
        assert!(m(r"^[0-9]{4}/[0-9]{4}\([A-Z]{3}\)$", "2021/0106(COD)"));
        assert!(!m(r"^[0-9]{4}/[0-9]{4}\([A-Z]{3}\)$", "2021/106(COD)"));
        assert!(m("^[A-Za-z0-9._-]{1,64}$", "smoke-1.a_b"));
        assert!(!m("^[A-Za-z0-9._-]{1,64}$", ""));
        assert!(m("unknown parameter", "x: unknown parameter `a`"));
        assert!(m(r"^\d+$", "123"));
        assert!(!m(r"^\d+$", "١٢٣"), "\\d is ASCII, not Unicode digits");
        assert!(m(
            "^Bearer.*invalid_token",
            "Bearer error=\"invalid_token\""
        ));
        assert!(m("a+b?c*$", "xaaac"));
        assert!(m("[^0-9]", "1a"));
        assert!(!m("[^0-9]", "12"));
        assert!(m("^$", ""));
        assert!(m("x{2,}", "axxx"));
        assert!(m(
            "^`start` must be a date",
            "`start` must be a date (YYYY-MM-DD)"
        ));
        assert!(m("^2026-01-2[0-9]T", "2026-01-21T10:00:00Z"));
        assert!(m("^[^@:/]*$", "db.example.org"));
        assert!(!m("^[^@:/]*$", "user@db"));
        // Beyond the old subset: groups and alternation.
        assert!(m("^(DE|FR)$", "FR"));
    }

    #[test]
    fn a_bad_pattern_is_an_error_that_quotes_it() {
        for bad in ["*a", "[a-z", r"\p{L}", "a{x}", "(a", "a)"] {
            let err = format!("{:#}", Pattern::new(bad).unwrap_err());
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
