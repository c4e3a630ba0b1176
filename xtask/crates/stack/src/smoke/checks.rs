//! smoke.toml: the declared checks, and how one is judged. A check is a request (method, path,
//! query, headers, an auth mode) and what to expect of the answer (status, content type,
//! JSON-pointer assertions, header assertions, conformance to openapi.json for that route and
//! status, and for paginated lists, that following the cursor to the end repeats nothing and
//! misses nothing). Everything here is pure: the caller sends the requests (smoke/client.rs).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use xtask_core::encoding::percent_encode as encode;

use super::{jwt::Auth, pattern::Pattern, schema::Contract};

/// Safe to run against production: reads only, needs no seeded data or local secret.
pub const READ_ONLY: &str = "read-only";
/// Needs the seed's data or the local JWT secret: only for a stack this run started.
pub const SEEDED: &str = "seeded";

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// The seeded user whose token `auth = "valid"` carries.
    pub user: String,
    #[serde(rename = "check", deserialize_with = "xtask_core::tables::many")]
    pub checks: Vec<Check>,
}

/// `name`, `path` and `status` are required; the other keys have defaults (`GET`,
/// `application/json`, `auto`, no auth, none of the rest).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Check {
    pub name: String,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default = "Check::default_method")]
    pub method: String,
    pub path: String,
    /// Query parameters, percent-encoded when sent.
    #[serde(default)]
    pub query: BTreeMap<String, Scalar>,
    /// A query string sent as written (after `query`), for what a table cannot say, such as
    /// a repeated parameter.
    pub raw_query: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub auth: Auth,
    pub status: u16,
    /// A prefix of the Content-Type header.
    #[serde(default = "Check::default_content_type")]
    pub content_type: String,
    /// `auto` (the default): the schema of this route and status in openapi.json; `none`; or a
    /// pointer into the document such as `#/components/schemas/Error`.
    #[serde(default = "Check::default_schema")]
    pub schema: String,
    #[serde(
        default,
        rename = "assert",
        deserialize_with = "xtask_core::tables::many"
    )]
    pub assertions: Vec<Assertion>,
    /// Follow `next_cursor` to the end of the list.
    #[serde(default, deserialize_with = "xtask_core::tables::optional")]
    pub follow: Option<Follow>,
}

/// A query value: TOML strings and integers both read naturally.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    Text(String),
    Integer(i64),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scalar::Text(t) => f.write_str(t),
            Scalar::Integer(n) => write!(f, "{n}"),
        }
    }
}

/// The defaults of smoke.toml's optional keys that are not their type's default.
impl Check {
    fn default_method() -> String {
        "GET".to_owned()
    }

    fn default_content_type() -> String {
        "application/json".to_owned()
    }

    fn default_schema() -> String {
        "auto".to_owned()
    }
}

/// One assertion on the JSON body (`pointer`, where `*` stands for every element) or on a
/// header (`header`). With `*`, every value found must pass.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Assertion {
    pub pointer: Option<String>,
    pub header: Option<String>,
    pub exists: Option<bool>,
    pub equals: Option<Value>,
    /// A pattern (smoke/pattern.rs) the string value matches.
    pub matches: Option<String>,
    /// The array (or string) has at least this many elements (characters).
    pub min_length: Option<usize>,
    /// An array with an element that has these fields (or equals this value).
    pub contains: Option<Value>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Follow {
    /// Where the next cursor is (`/next_cursor`); null ends the list.
    pub cursor: String,
    /// The query parameter that carries it.
    pub param: String,
    /// The page's items (`/items`) and each item's key (`/id`).
    pub items: String,
    pub key: String,
    /// At least this many pages, so the cursor is really exercised.
    #[serde(default)]
    pub min_pages: usize,
    /// A query (`limit=500`) whose one page must hold exactly the keys the walk found.
    pub complete_with: Option<String>,
}

impl File {
    pub fn parse(text: &str, source: &str) -> Result<File> {
        let file: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
        let mut names = BTreeSet::new();
        for check in &file.checks {
            if !names.insert(check.name.as_str()) {
                bail!("{source}: two checks are named {:?}", check.name);
            }
            for tag in &check.tags {
                if tag != READ_ONLY && tag != SEEDED {
                    bail!(
                        "{source}: check {:?} has tag {tag:?}; the tags are {READ_ONLY:?} and {SEEDED:?}",
                        check.name
                    );
                }
            }
            if check.tags.iter().any(|t| t == READ_ONLY) && check.auth == Auth::Valid {
                bail!(
                    "{source}: check {:?} is read-only but signs a token with the local secret; tag it {SEEDED:?} instead",
                    check.name
                );
            }
            for a in &check.assertions {
                if a.pointer.is_some() == a.header.is_some() {
                    bail!(
                        "{source}: check {:?}: each assertion names either `pointer` or `header`",
                        check.name
                    );
                }
                if let Some(p) = &a.matches {
                    Pattern::new(p).with_context(|| format!("{source}: check {:?}", check.name))?;
                }
            }
        }
        Ok(file)
    }
}

impl Check {
    pub fn is(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The path with its query string, percent-encoded.
    pub fn target(&self, extra: Option<(&str, &str)>) -> String {
        let mut pairs: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(&v.to_string())))
            .collect();
        if let Some((k, v)) = extra {
            pairs.push(format!("{}={}", encode(k), encode(v)));
        }
        if let Some(raw) = &self.raw_query {
            pairs.push(raw.clone());
        }
        if pairs.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, pairs.join("&"))
        }
    }
}

/// What came back, as the judge needs it.
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Answer<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Every way `answer` departs from `check`, each one line of "expected … , got …".
pub fn judge(check: &Check, contract: &Contract, answer: &Answer<'_>) -> Vec<String> {
    let mut failures = Vec::new();
    if answer.status != check.status {
        failures.push(format!(
            "status: expected {}, got {}",
            check.status, answer.status
        ));
    }
    let content_type = answer.header("content-type").unwrap_or("");
    if !content_type.starts_with(&check.content_type) {
        failures.push(format!(
            "content-type: expected {}, got {content_type:?}",
            check.content_type
        ));
    }
    let body: Option<Value> = serde_json::from_slice(answer.body).ok();
    if check.content_type.contains("json") && body.is_none() {
        failures.push("body: expected JSON, got something else".to_owned());
    }
    if let Some(body) = &body {
        failures.extend(conformance(check, contract, answer.status, body));
    }
    for a in &check.assertions {
        if let Some(name) = &a.header {
            let value = answer.header(name).map(|v| Value::String(v.to_owned()));
            failures.extend(assess(a, &format!("header {name}"), value.iter().collect()));
        } else if let Some(pointer) = &a.pointer {
            let at = if pointer.is_empty() { "body" } else { pointer };
            match &body {
                // `*` means every element: an empty array holds nothing that could be absent
                // (a freshly migrated database answers `[]`), and one element without the
                // rest of the pointer is absent, even when its neighbours have it.
                Some(b) if pointer.contains("/*") => {
                    let missing = missing(b, pointer);
                    if let Some(first) = missing.first() {
                        if a.exists != Some(false) {
                            failures.push(format!(
                                "{at}: expected to exist, absent at {first}{}",
                                if missing.len() > 1 {
                                    format!(" and {} more", missing.len() - 1)
                                } else {
                                    String::new()
                                }
                            ));
                        }
                    } else {
                        let found = select(b, pointer);
                        if !found.is_empty() || a.exists == Some(false) {
                            failures.extend(assess(a, at, found));
                        }
                    }
                }
                _ => {
                    let found = body
                        .as_ref()
                        .map(|b| select(b, pointer))
                        .unwrap_or_default();
                    failures.extend(assess(a, at, found));
                }
            }
        }
    }
    failures
}

fn conformance(check: &Check, contract: &Contract, status: u16, body: &Value) -> Vec<String> {
    let schema = match check.schema.as_str() {
        "none" => return Vec::new(),
        "auto" => {
            let Some(route) = contract.route(&check.path) else {
                return vec![format!(
                    "schema: openapi.json has no route for {}; name a schema (schema = \"#/components/schemas/…\")",
                    check.path
                )];
            };
            match contract.response_schema(&route, status) {
                Ok(schema) => schema,
                Err(err) => return vec![format!("schema: {err:#}")],
            }
        }
        reference => match contract.schema(reference) {
            Ok(schema) => schema,
            Err(err) => return vec![format!("schema: {err:#}")],
        },
    };
    // The same departure in every element of a list is one line: `/*/field … (in 7 places)`.
    let mut grouped: Vec<(String, usize)> = Vec::new();
    for error in contract.validate(schema, body) {
        let (at, what) = error.split_once(": ").unwrap_or((&error, ""));
        let at = at
            .split('/')
            .map(|s| if s.parse::<usize>().is_ok() { "*" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let general = format!("{at}: {what}");
        match grouped.iter_mut().find(|(e, _)| *e == general) {
            Some((_, n)) => *n += 1,
            None => grouped.push((general, 1)),
        }
    }
    grouped
        .into_iter()
        .take(5)
        .map(|(e, n)| match n {
            1 => format!("schema: {e}"),
            n => format!("schema: {e} (in {n} places)"),
        })
        .collect()
}

/// The values at `pointer`, where a `*` segment stands for every element of an array (or
/// every value of an object).
pub fn select<'a>(value: &'a Value, pointer: &str) -> Vec<&'a Value> {
    let mut current = vec![value];
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        current = current
            .into_iter()
            .flat_map(|v| -> Vec<&Value> {
                match (v, segment.as_str()) {
                    (Value::Array(items), "*") => items.iter().collect(),
                    (Value::Object(map), "*") => map.values().collect(),
                    (Value::Array(items), index) => index
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| items.get(i))
                        .into_iter()
                        .collect(),
                    (Value::Object(map), key) => map.get(key).into_iter().collect(),
                    _ => Vec::new(),
                }
            })
            .collect();
    }
    current
}

/// Where `pointer` finds nothing, as concrete pointers: a `*` segment asks every element of an
/// array (or value of an object), so an empty array misses nothing.
pub fn missing(value: &Value, pointer: &str) -> Vec<String> {
    fn walk(value: &Value, segments: &[String], at: &str, out: &mut Vec<String>) {
        let Some((first, rest)) = segments.split_first() else {
            return;
        };
        let step = |key: &dyn std::fmt::Display| format!("{at}/{key}");
        match (value, first.as_str()) {
            (Value::Array(items), "*") => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, rest, &step(&i), out);
                }
            }
            (Value::Object(map), "*") => {
                for (key, item) in map {
                    walk(
                        item,
                        rest,
                        &step(&key.replace('~', "~0").replace('/', "~1")),
                        out,
                    );
                }
            }
            (Value::Array(items), index) => {
                match index.parse::<usize>().ok().and_then(|i| items.get(i)) {
                    Some(item) => walk(item, rest, &step(&index), out),
                    None => out.push(step(&index)),
                }
            }
            (Value::Object(map), key) => match map.get(key) {
                Some(item) => walk(item, rest, &step(&first), out),
                None => out.push(step(&first)),
            },
            _ => out.push(step(&first)),
        }
    }
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    let mut out = Vec::new();
    walk(value, &segments, "", &mut out);
    out
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(120).collect::<String>())
    } else {
        text
    }
}

fn assess(a: &Assertion, at: &str, found: Vec<&Value>) -> Vec<String> {
    let mut failures = Vec::new();
    match a.exists {
        Some(true) if found.is_empty() => failures.push(format!("{at}: expected to exist, absent")),
        Some(false) if !found.is_empty() => failures.push(format!(
            "{at}: expected to be absent, got {}",
            short(found[0])
        )),
        _ => {}
    }
    let needs_value =
        a.equals.is_some() || a.matches.is_some() || a.min_length.is_some() || a.contains.is_some();
    if needs_value && found.is_empty() && a.exists != Some(false) {
        failures.push(format!("{at}: expected a value, absent"));
    }
    for value in found {
        if let Some(expected) = &a.equals
            && value != expected
        {
            failures.push(format!(
                "{at}: expected {}, got {}",
                short(expected),
                short(value)
            ));
        }
        if let Some(pattern) = &a.matches {
            let ok = value
                .as_str()
                .is_some_and(|s| Pattern::new(pattern).is_ok_and(|p| p.is_match(s)));
            if !ok {
                failures.push(format!(
                    "{at}: expected to match {pattern:?}, got {}",
                    short(value)
                ));
            }
        }
        if let Some(min) = a.min_length {
            let length = match value {
                Value::Array(items) => Some(items.len()),
                Value::String(s) => Some(s.chars().count()),
                Value::Object(map) => Some(map.len()),
                _ => None,
            };
            if length.is_none_or(|n| n < min) {
                failures.push(format!(
                    "{at}: expected at least {min} elements, got {}",
                    length.map_or_else(|| short(value), |n| n.to_string())
                ));
            }
        }
        if let Some(needle) = &a.contains {
            let ok = value
                .as_array()
                .is_some_and(|items| items.iter().any(|item| includes(item, needle)));
            if !ok {
                failures.push(format!(
                    "{at}: expected an element like {}, got {}",
                    short(needle),
                    short(value)
                ));
            }
        }
    }
    failures
}

/// `item` equals `needle`, or (for objects) has every field of `needle` with its value.
fn includes(item: &Value, needle: &Value) -> bool {
    match (item, needle) {
        (Value::Object(have), Value::Object(want)) => want
            .iter()
            .all(|(k, v)| have.get(k).is_some_and(|h| includes(h, v))),
        _ => item == needle,
    }
}

/// The keys of a page's items, for the cursor walk.
pub fn page_keys(follow: &Follow, page: &Value) -> Vec<String> {
    select(page, &format!("{}/*{}", follow.items, follow.key))
        .into_iter()
        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
        .collect()
}

/// The next cursor of a page, None at the end.
pub fn next_cursor(follow: &Follow, page: &Value) -> Option<String> {
    page.pointer(&follow.cursor)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Duplicate keys of a walk, in order of their second appearance.
pub fn duplicates(keys: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    keys.iter()
        .filter(|k| !seen.insert(k.as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pointers_with_wildcards_select_every_element() {
        let v = json!({"items": [{"c": "DE", "t": [{"id": "energy"}]}, {"c": "FR", "t": []}]});
        assert_eq!(select(&v, "/items/*/c"), [&json!("DE"), &json!("FR")]);
        assert_eq!(select(&v, "/items/0/t/0/id"), [&json!("energy")]);
        assert!(select(&v, "/nope").is_empty());
        let a = Assertion {
            pointer: Some("/items/*/c".into()),
            header: None,
            exists: Some(true),
            equals: Some(json!("DE")),
            matches: None,
            min_length: None,
            contains: None,
        };
        let failures = assess(&a, "/items/*/c", select(&v, "/items/*/c"));
        assert_eq!(failures, ["/items/*/c: expected \"DE\", got \"FR\""]);
        assert!(includes(
            &json!({"id": "energy", "name": "Energy"}),
            &json!({"id": "energy"})
        ));
        assert_eq!(duplicates(&["a".into(), "b".into(), "a".into()]), ["a"]);
    }

    #[test]
    fn a_wildcard_asks_every_element_and_an_empty_array_misses_nothing() {
        let v = json!([{"country": "DE", "meetings": 3}, {"country": "FR"}]);
        assert_eq!(missing(&v, "/*/meetings"), ["/1/meetings"]);
        assert!(missing(&json!([]), "/*/meetings").is_empty());
        assert_eq!(missing(&json!({"a": 1}), "/items/*/c"), ["/items"]);
        assert!(missing(&json!({"items": [{"c": 1}]}), "/items/*/c").is_empty());
    }

    /// A `matches` that is not a regular expression stops the run before any request, naming
    /// the file, the check and the pattern.
    #[test]
    fn a_bad_pattern_names_its_check() {
        let text = r#"
user = "3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60"

[[check]]
name = "ready"
path = "/ready"
status = 200
assert = [{ pointer = "/migration", matches = "^[0-9]{14$" }]
"#;
        let err = format!("{:#}", File::parse(text, "smoke.toml").unwrap_err());
        assert!(err.contains("smoke.toml: check \"ready\""), "{err}");
        assert!(err.contains("\"^[0-9]{14$\""), "{err}");
    }

    #[test]
    fn the_committed_checks_parse_and_cover_every_route() {
        let root = xtask_core::workspace::find_root().unwrap();
        let file = File::parse(
            &std::fs::read_to_string(root.join(xtask_core::workspace::SMOKE_CHECKS)).unwrap(),
            "smoke.toml",
        )
        .unwrap();
        let contract = Contract::parse(
            &std::fs::read_to_string(root.join(xtask_core::workspace::OPENAPI)).unwrap(),
        )
        .unwrap();
        let covered: BTreeSet<String> = file
            .checks
            .iter()
            .filter(|c| c.status == 200)
            .filter_map(|c| contract.route(&c.path))
            .collect();
        let all: BTreeSet<String> = contract.paths().into_iter().collect();
        assert_eq!(
            all.difference(&covered).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "routes of openapi.json with no successful check in smoke.toml"
        );
    }

    /// Each bad key is named with its line and column, in serde's words (these exact texts are
    /// what users see, so they are pinned).
    #[test]
    fn bad_keys_are_named_with_their_place() {
        let err = |text: &str| File::parse(text, "smoke.toml").unwrap_err().to_string();
        let check = |extra: &str| {
            format!("user = \"u\"\n[[check]]\nname = \"a\"\npath = \"/\"\nstatus = 200\n{extra}")
        };
        let cases = [
            (
                "user = \"u\"\ncolour = 1\n".to_owned(),
                "line 2, column 1",
                "unknown field `colour`, expected `user` or `check`",
            ),
            (
                "check = []\n".to_owned(),
                "line 1, column 1",
                "missing field `user`",
            ),
            (
                check("colour = 1\n"),
                "line 6, column 1",
                "unknown field `colour`, expected one of `name`, `tags`, `method`, `path`, `query`, `raw-query`, `headers`, `auth`, `status`, `content-type`, `schema`, `assert`, `follow`",
            ),
            (
                "user = \"u\"\n[[check]]\nname = \"a\"\nstatus = 200\n".to_owned(),
                "line 2, column 1",
                "missing field `path`",
            ),
            (
                "user = \"u\"\n[[check]]\nname = \"a\"\npath = \"/\"\n".to_owned(),
                "line 2, column 1",
                "missing field `status`",
            ),
            (
                check("auth = \"sometimes\"\n"),
                "line 6, column 8",
                "unknown variant `sometimes`, expected one of `none`, `valid`, `expired`, `wrong-signature`, `alg-none`",
            ),
            (
                "user = \"u\"\n[[check]]\nname = \"a\"\npath = \"/\"\nstatus = \"200\"\n"
                    .to_owned(),
                "line 5, column 10",
                "invalid type: string \"200\", expected u16",
            ),
            (
                check("query = { a = true }\n"),
                "line 6, column 15",
                "data did not match any variant of untagged enum Scalar",
            ),
            (
                check("assert = [{ pointer = \"/a\", equalz = 1 }]\n"),
                "line 6, column 29",
                "unknown field `equalz`, expected one of `pointer`, `header`, `exists`, `equals`, `matches`, `min-length`, `contains`",
            ),
            (
                check("follow = { cursor = \"/c\", param = \"c\", items = \"/i\" }\n"),
                "line 6, column 10",
                "missing field `key`",
            ),
            (
                check(
                    "follow = { cursor = \"/c\", param = \"c\", items = \"/i\", key = \"/k\", min-pages = -1 }\n",
                ),
                "line 6, column 78",
                "invalid value: integer `-1`, expected usize",
            ),
        ];
        // serde's derive would read a struct from an array of its values: refused here.
        let cases = cases.into_iter().chain([(
            check("follow = [\"/c\", \"c\", \"/i\", \"/k\"]\n"),
            "line 6, column 10",
            "invalid type: sequence, expected struct Follow",
        )]);
        for (text, place, message) in cases {
            let err = err(&text);
            assert!(err.starts_with("smoke.toml: TOML parse error at "), "{err}");
            assert!(err.contains(place), "{place} in {err}");
            assert!(err.trim_end().ends_with(message), "{message} in {err}");
        }
    }
}
