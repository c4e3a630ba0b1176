//! A small regular-expression subset for smoke.toml's `matches` and the OpenAPI `pattern`
//! keyword: literals, `.`, classes (`[A-Z0-9._-]`, `[^…]`), the escapes `\d \w \s` and escaped
//! punctuation, the quantifiers `* + ? {n} {n,} {n,m}`, and the anchors `^ $`. No groups or
//! alternation: the patterns of openapi.json and smoke.toml need none, and the regex crate
//! would cost xtask's cold compile several seconds. Unanchored patterns match anywhere, as in
//! JSON Schema. Backtracking is bounded by the short inputs it sees (response fields).

use anyhow::{Result, bail};

#[derive(Debug, Clone)]
enum Atom {
    Any,
    Char(char),
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
}

impl Atom {
    fn matches(&self, c: char) -> bool {
        match self {
            Atom::Any => c != '\n',
            Atom::Char(x) => *x == c,
            Atom::Class { ranges, negated } => {
                ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&c)) != *negated
            }
        }
    }
}

#[derive(Debug, Clone)]
struct Piece {
    atom: Atom,
    min: usize,
    max: usize,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    pieces: Vec<Piece>,
    start: bool,
    end: bool,
}

fn escape_class(c: char) -> Option<Vec<(char, char)>> {
    match c {
        'd' => Some(vec![('0', '9')]),
        'w' => Some(vec![('a', 'z'), ('A', 'Z'), ('0', '9'), ('_', '_')]),
        's' => Some(vec![(' ', ' '), ('\t', '\t'), ('\n', '\n'), ('\r', '\r')]),
        _ => None,
    }
}

impl Pattern {
    pub fn new(source: &str) -> Result<Pattern> {
        let chars: Vec<char> = source.chars().collect();
        let mut i = 0;
        let mut pattern = Pattern {
            pieces: Vec::new(),
            start: false,
            end: false,
        };
        if chars.first() == Some(&'^') {
            pattern.start = true;
            i = 1;
        }
        while i < chars.len() {
            let c = chars[i];
            i += 1;
            let atom = match c {
                '$' if i == chars.len() => {
                    pattern.end = true;
                    break;
                }
                '.' => Atom::Any,
                '\\' => {
                    let Some(&e) = chars.get(i) else {
                        bail!("pattern {source:?}: a trailing backslash");
                    };
                    i += 1;
                    match escape_class(e) {
                        Some(ranges) => Atom::Class {
                            ranges,
                            negated: false,
                        },
                        None if e.is_ascii_alphanumeric() => {
                            bail!("pattern {source:?}: unsupported escape \\{e}")
                        }
                        None => Atom::Char(e),
                    }
                }
                '[' => {
                    let negated = chars.get(i) == Some(&'^');
                    if negated {
                        i += 1;
                    }
                    let mut ranges = Vec::new();
                    let mut first = true;
                    loop {
                        let Some(&c) = chars.get(i) else {
                            bail!("pattern {source:?}: an unclosed [");
                        };
                        i += 1;
                        if c == ']' && !first {
                            break;
                        }
                        first = false;
                        let lo = if c == '\\' {
                            let Some(&e) = chars.get(i) else {
                                bail!("pattern {source:?}: a trailing backslash");
                            };
                            i += 1;
                            if let Some(class) = escape_class(e) {
                                ranges.extend(class);
                                continue;
                            }
                            e
                        } else {
                            c
                        };
                        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']')
                        {
                            ranges.push((lo, chars[i + 1]));
                            i += 2;
                        } else {
                            ranges.push((lo, lo));
                        }
                    }
                    Atom::Class { ranges, negated }
                }
                '(' | ')' | '|' => bail!(
                    "pattern {source:?}: groups and alternation are not supported (smoke/pattern.rs)"
                ),
                '*' | '+' | '?' | '{' => {
                    bail!("pattern {source:?}: a quantifier with nothing before it")
                }
                c => Atom::Char(c),
            };
            let (min, max) = match chars.get(i) {
                Some('*') => (0, usize::MAX),
                Some('+') => (1, usize::MAX),
                Some('?') => (0, 1),
                Some('{') => {
                    let close = chars[i..]
                        .iter()
                        .position(|&c| c == '}')
                        .map(|p| p + i)
                        .ok_or_else(|| anyhow::anyhow!("pattern {source:?}: an unclosed {{"))?;
                    let inner: String = chars[i + 1..close].iter().collect();
                    let bounds = match inner.split_once(',') {
                        None => inner.parse().ok().map(|n| (n, n)),
                        Some((lo, "")) => lo.parse().ok().map(|n| (n, usize::MAX)),
                        Some((lo, hi)) => lo.parse().ok().zip(hi.parse().ok()),
                    };
                    let Some(bounds) = bounds else {
                        bail!("pattern {source:?}: bad repetition {{{inner}}}");
                    };
                    i = close;
                    bounds
                }
                _ => (1, 1),
            };
            if (min, max) != (1, 1) {
                i += 1;
            }
            pattern.pieces.push(Piece { atom, min, max });
        }
        Ok(pattern)
    }

    pub fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        let starts = if self.start { 0..=0 } else { 0..=chars.len() };
        starts.into_iter().any(|s| self.match_at(&chars, s, 0))
    }

    fn match_at(&self, text: &[char], pos: usize, piece: usize) -> bool {
        let Some(p) = self.pieces.get(piece) else {
            return !self.end || pos == text.len();
        };
        // Greedy: take as many as allowed, then give back.
        let mut count = 0;
        while count < p.max && pos + count < text.len() && p.atom.matches(text[pos + count]) {
            count += 1;
        }
        while count >= p.min {
            if self.match_at(text, pos + count, piece + 1) {
                return true;
            }
            if count == 0 {
                break;
            }
            count -= 1;
        }
        false
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
        assert!(m(
            "^Bearer.*invalid_token",
            "Bearer error=\"invalid_token\""
        ));
        assert!(m("a+b?c*$", "xaaac"));
        assert!(m("[^0-9]", "1a"));
        assert!(!m("[^0-9]", "12"));
        assert!(m("^$", ""));
        assert!(m("x{2,}", "axxx"));
    }

    #[test]
    fn what_is_not_supported_is_an_error() {
        for bad in ["(a|b)", "*a", "[a-z", r"\p", "a{x}"] {
            assert!(Pattern::new(bad).is_err(), "{bad}");
        }
    }
}
