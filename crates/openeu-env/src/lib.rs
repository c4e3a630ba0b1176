//! The environment spec: every variable of the deployment, declared once. The service validates
//! its environment against it at startup, `cargo xtask env check` validates an env file or the
//! shell against it, and `cargo xtask env example` renders `.env.example` from it.
//!
//! No function here ever puts a secret's value into a message: problems name the variable and
//! say what is wrong with it, and URLs are shown with their password masked.

use std::fmt;

/// Who reads a variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// The service, at runtime.
    Service,
    /// The image build.
    Build,
    /// The deploy tooling: registry pushes, and the deploy to Render.
    Deploy,
}

/// Where a deployment runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Production,
    Preview,
    Local,
}

impl Target {
    pub const ALL: [Target; 3] = [Target::Production, Target::Preview, Target::Local];

    pub fn name(self) -> &'static str {
        match self {
            Target::Production => "production",
            Target::Preview => "preview",
            Target::Local => "local",
        }
    }

    pub fn parse(text: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == text)
    }

    /// The target of an environment, as the service and `cargo xtask env check` both derive
    /// it: ENVIRONMENT when it names a target, else preview when `IS_PULL_REQUEST` is true (Render
    /// sets it on preview instances), else production when RENDER is true, else local.
    ///
    /// A malformed ENVIRONMENT is passed over here rather than guessed at: [`check`] reports it.
    pub fn derive(lookup: impl Fn(&str) -> Option<String>) -> Target {
        if let Some(target) = lookup("ENVIRONMENT").and_then(|v| Target::parse(v.trim())) {
            return target;
        }
        let flag = |name: &str| lookup(name).and_then(|v| parse_bool(&v)).unwrap_or(false);
        if flag("IS_PULL_REQUEST") {
            Target::Preview
        } else if flag("RENDER") {
            Target::Production
        } else {
            Target::Local
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An http(s) URL.
    HttpUrl,
    /// A postgres:// or postgresql:// URL.
    PostgresUrl,
    NonEmpty,
    /// An integer within the bounds.
    Integer {
        min: i64,
        max: i64,
    },
    /// true/false (also 1/0, yes/no).
    Bool,
    /// One of the listed values.
    Enum(&'static [&'static str]),
    /// A dotted version such as 1.95.0.
    Version,
}

impl Format {
    pub fn describe(self) -> String {
        match self {
            Format::HttpUrl => "an http(s) URL".to_owned(),
            Format::PostgresUrl => "a postgres:// URL".to_owned(),
            Format::NonEmpty => "a non-empty string".to_owned(),
            Format::Integer { min, max } => format!("an integer from {min} to {max}"),
            Format::Bool => "true or false".to_owned(),
            Format::Enum(values) => format!("one of {}", values.join(", ")),
            Format::Version => "a version like 1.95.0".to_owned(),
        }
    }

    /// Ok, or what is wrong; the message never contains the value.
    pub fn check(self, value: &str) -> Result<(), String> {
        let value = value.trim();
        let ok = match self {
            Format::HttpUrl => {
                parse_url(value).is_some_and(|u| u.scheme == "http" || u.scheme == "https")
            }
            Format::PostgresUrl => match parse_url(value).filter(|u| !u.rest.contains('@')) {
                Some(u) => u.scheme == "postgres" || u.scheme == "postgresql",
                // An `@` that is not where the host part ends: a password with `/`, `?` or `#`.
                None if value.contains('@') => {
                    return Err(
                        "must be a postgres:// URL whose password has `/`, `?`, `#` and `@` percent-encoded (%2F, %3F, %23, %40)"
                            .to_owned(),
                    );
                }
                None => false,
            },
            Format::NonEmpty => !value.is_empty(),
            Format::Integer { min, max } => {
                value.parse::<i64>().is_ok_and(|n| (min..=max).contains(&n))
            }
            Format::Bool => parse_bool(value).is_some(),
            Format::Enum(values) => values.contains(&value),
            Format::Version => {
                !value.is_empty()
                    && value
                        .split('.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("must be {}", self.describe()))
        }
    }
}

/// One variable of the deployment.
#[derive(Debug)]
pub struct Var {
    pub name: &'static str,
    pub readers: &'static [Reader],
    /// The targets where it must be set; elsewhere it is optional.
    pub required_in: &'static [Target],
    pub secret: bool,
    pub format: Format,
    pub description: &'static str,
    /// A value for `.env.example` (empty for secrets).
    pub example: &'static str,
}

/// The spec entry of `name`.
pub fn var(name: &str) -> Option<&'static Var> {
    SPEC.iter().find(|v| v.name == name)
}

/// What is wrong with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    Missing,
    /// The value does not have the variable's format; the text says what it must be.
    Malformed(String),
    /// A variable the spec does not declare (in an env file), with a close match if any.
    Unknown {
        did_you_mean: Option<&'static str>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub name: String,
    pub kind: ProblemKind,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ProblemKind::Missing => {
                let description = var(&self.name).map_or("", |v| v.description);
                write!(f, "{} is missing: {description}", self.name)
            }
            ProblemKind::Malformed(why) => write!(f, "{} is malformed: it {why}", self.name),
            ProblemKind::Unknown {
                did_you_mean: Some(guess),
            } => {
                write!(
                    f,
                    "{} is not in the env spec; did you mean {guess}?",
                    self.name
                )
            }
            ProblemKind::Unknown { did_you_mean: None } => {
                write!(
                    f,
                    "{} is not in the env spec (crates/openeu-env)",
                    self.name
                )
            }
        }
    }
}

/// A lookup over fixed pairs, for configurations that do not come from the process
/// environment (tests, env files already parsed).
pub fn lookup_from(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Checks every variable that `reader` reads for `target`, reporting all problems at once.
/// `lookup` returns a variable's value; an empty value counts as unset.
pub fn check(
    target: Target,
    reader: Reader,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    for var in SPEC.iter().filter(|v| v.readers.contains(&reader)) {
        match lookup(var.name).filter(|v| !v.trim().is_empty()) {
            None if var.required_in.contains(&target) => {
                problems.push(Problem {
                    name: var.name.to_owned(),
                    kind: ProblemKind::Missing,
                });
            }
            None => {}
            Some(value) => {
                if let Err(why) = var.format.check(&value) {
                    problems.push(Problem {
                        name: var.name.to_owned(),
                        kind: ProblemKind::Malformed(why),
                    });
                }
            }
        }
    }
    problems
}

/// Names in `names` that the spec does not declare, each with a close match when there is one.
pub fn unknown<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<Problem> {
    names
        .into_iter()
        .filter(|name| var(name).is_none())
        .map(|name| Problem {
            name: name.to_owned(),
            kind: ProblemKind::Unknown {
                did_you_mean: closest(name),
            },
        })
        .collect()
}

fn closest(name: &str) -> Option<&'static str> {
    closest_match(name, SPEC.iter().map(|v| v.name))
}

/// The candidate closest to `name` by edit distance, if one is close enough (at most 3 edits)
/// to be a likely typo: the "did you mean" of env variables, and of seed tables and columns.
pub fn closest_match<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, c)| c)
}

/// Levenshtein distance between `a` and `b`, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = (previous + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(current + 1);
            previous = current;
        }
    }
    row[b.len()]
}

/// How a value may be shown: a secret never, not even in part (a URL can carry its key outside
/// the password, as a Sentry DSN does in its user part); other URLs with their password masked.
pub fn display_value(var: &Var, value: &str) -> String {
    if var.secret {
        return "***".to_owned();
    }
    match var.format {
        Format::PostgresUrl | Format::HttpUrl => redact_url(value),
        _ => value.to_owned(),
    }
}

/// `YYYY-MM-DD`, or `YYYY-MM-DDTHH:MM[:SS[.frac]]` followed by `Z` or `±HH:MM`, within the
/// range PostgreSQL's `timestamptz` reads: years from 1900, offsets up to ±15:59 (RFC 3339 allows
/// ±23:59, but PostgreSQL refuses beyond 15:59 with SQLSTATE 22009).
pub fn is_timestamp(text: &str) -> bool {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else {
        return false;
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') || !(1..=12).contains(&month) {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][month as usize - 1];
    if !(1..=days).contains(&day) || year < 1900 {
        return false;
    }
    if b.len() == 10 {
        return true;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') {
        return false;
    }
    let (Some(hour), Some(minute)) = (digits(11..13), digits(14..16)) else {
        return false;
    };
    if hour > 23 || minute > 59 {
        return false;
    }
    let mut i = 16;
    if b.get(i) == Some(&b':') {
        match digits(i + 1..i + 3) {
            Some(second) if second <= 60 => i += 3,
            _ => return false,
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start || i - start > 9 {
                return false;
            }
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            let (Some(h), Some(m)) = (digits(i + 1..i + 3), digits(i + 4..i + 6)) else {
                return false;
            };
            b.get(i + 3) == Some(&b':') && h <= 15 && m <= 59 && i + 6 == b.len()
        }
        _ => false,
    }
}

/// A UUID in its canonical 8-4-4-4-12 hex form.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" | "" => Some(false),
        _ => None,
    }
}

/// The parts of a URL we validate and display.
#[derive(Debug, PartialEq, Eq)]
pub struct Url<'a> {
    pub scheme: &'a str,
    pub user: Option<&'a str>,
    pub has_password: bool,
    pub host: &'a str,
    pub port: Option<u16>,
    pub rest: &'a str,
}

/// A small URL parser: scheme://[user[:password]@]host[:port][/rest]. Enough to validate and
/// to mask passwords; connection libraries do the real parsing.
pub fn parse_url(value: &str) -> Option<Url<'_>> {
    let (scheme, rest) = value.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+')
    {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(stripped) = hostport.strip_prefix('[') {
        let end = stripped.find(']')?;
        let port = stripped[end + 1..].strip_prefix(':');
        (&hostport[..end + 2], port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    let (user, has_password) = match userinfo {
        Some(info) => match info.split_once(':') {
            Some((u, _)) => (Some(u), true),
            None => (Some(info), false),
        },
        None => (None, false),
    };
    Some(Url {
        scheme,
        user,
        has_password,
        host,
        port,
        rest: tail,
    })
}

/// Decodes `%XX` escapes (a URL's user, password or query value); a malformed escape stays as
/// it is, and bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        if let Some(byte) = escaped {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL with its password replaced by `***`; a value that is not a URL is fully masked, and
/// so is one with an `@` after its host part: a password holding `/`, `?` or `#` (not
/// percent-encoded) ends the authority early, and the rest of it would show as the path.
pub fn redact_url(value: &str) -> String {
    let Some(url) = parse_url(value).filter(|u| !u.rest.contains('@')) else {
        return "***".to_owned();
    };
    let mut out = format!("{}://", url.scheme);
    if let Some(user) = url.user {
        out.push_str(user);
        if url.has_password {
            out.push_str(":***");
        }
        out.push('@');
    }
    out.push_str(url.host);
    if let Some(port) = url.port {
        out.push_str(&format!(":{port}"));
    }
    // The path and query may carry a password too (?password=…): drop the query.
    out.push_str(url.rest.split('?').next().unwrap_or_default());
    out
}

/// `.env.example`, rendered from the spec.
pub fn render_example() -> String {
    let mut out = String::from(
        "# generated by `cargo xtask env example`, do not edit; the source is crates/openeu-env\n",
    );
    for var in SPEC {
        let readers: Vec<&str> = var
            .readers
            .iter()
            .map(|r| match r {
                Reader::Service => "service",
                Reader::Build => "build",
                Reader::Deploy => "deploy",
            })
            .collect();
        let required: Vec<&str> = var.required_in.iter().map(|t| t.name()).collect();
        out.push_str(&format!(
            "\n# {}\n# read by: {}; required in: {}; format: {}{}\n{}={}\n",
            var.description,
            readers.join(", "),
            if required.is_empty() {
                "none".to_owned()
            } else {
                required.join(", ")
            },
            var.format.describe(),
            if var.secret { "; SECRET" } else { "" },
            var.name,
            var.example,
        ));
    }
    out
}

mod spec;
pub use spec::SPEC;

#[cfg(test)]
mod tests;
