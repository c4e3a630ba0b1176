//! The response schemas of openapi.json, and a validator for the part of JSON Schema (2020-12,
//! as OpenAPI 3.1 uses it) that it implements, listed in [`VALIDATED`]: types (a name or an
//! array of names, which is how 3.1 spells nullable), objects, arrays, strings, numbers, `enum`
//! and `const`, the combinators `allOf`/`anyOf`/`oneOf`/`not`, and `$ref` to the document's
//! components. Annotations ([`ANNOTATIONS`]: `description`, `format`, `default`, `example` …)
//! assert nothing, as JSON Schema says. Any other keyword in a schema of the document is
//! refused when the contract is read, with the schema's location and the keyword: a validator
//! that skipped a keyword would pass responses the contract forbids. Written here instead of a
//! JSON Schema crate, which would bring far more into xtask's cold compile than the contract
//! uses.

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::pattern::Pattern;

/// The keywords [`Contract::validate`] checks.
const VALIDATED: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "items",
    "minItems",
    "maxItems",
    "uniqueItems",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
];

/// Keywords that describe and assert nothing (JSON Schema's annotations; `format` is one by
/// default in 2020-12). Extensions (`x-…`) are annotations too.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "example",
    "examples",
    "format",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
    "externalDocs",
];

/// The parsed contract.
pub struct Contract {
    doc: Value,
}

impl Contract {
    /// Reads the contract, refusing a schema keyword that the validator does not implement.
    pub fn parse(text: &str) -> Result<Contract> {
        let doc: Value = serde_json::from_str(text).context("openapi.json is not JSON")?;
        let mut refused = Vec::new();
        find_schemas(&doc, "#", &mut refused);
        if !refused.is_empty() {
            bail!(
                "openapi.json uses JSON Schema keywords that smoke's validator does not implement, \
                 so it cannot check responses against them (xtask/crates/stack/src/smoke/schema.rs):\n  {}",
                refused.join("\n  ")
            );
        }
        Ok(Contract { doc })
    }

    /// Every path of the document.
    pub fn paths(&self) -> Vec<String> {
        self.doc["paths"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The document path (`/meetings/{id}`) that a request path (`/meetings/abc`) is an
    /// instance of. A parameter in the last segment may hold slashes, as a legislative file's
    /// reference does (`/legislative-files/2021/0106(COD)`); exact segment counts win.
    pub fn route(&self, path: &str) -> Option<String> {
        let paths = self.doc["paths"].as_object()?;
        let segments: Vec<&str> = path.split('/').collect();
        let mut greedy = None;
        for template in paths.keys() {
            let parts: Vec<&str> = template.split('/').collect();
            let same = |a: &str, b: &str| a.starts_with('{') || a == b;
            if parts.len() == segments.len() && parts.iter().zip(&segments).all(|(a, b)| same(a, b))
            {
                return Some(template.clone());
            }
            if let Some(last) = parts.last()
                && last.starts_with('{')
                && segments.len() > parts.len()
                && parts[..parts.len() - 1]
                    .iter()
                    .zip(&segments)
                    .all(|(a, b)| same(a, b))
            {
                greedy = Some(template.clone());
            }
        }
        greedy
    }

    /// The schema of `GET route`'s `status` response, `$ref`s resolved; an error when the
    /// document does not list that status for that route.
    pub fn response_schema(&self, route: &str, status: u16) -> Result<&Value> {
        let responses = &self.doc["paths"][route]["get"]["responses"];
        let response = responses
            .get(status.to_string())
            .or_else(|| responses.get("default"))
            .with_context(|| format!("openapi.json lists no {status} response for GET {route}"))?;
        let response = self.resolve(response)?;
        response
            .pointer("/content/application~1json/schema")
            .with_context(|| format!("openapi.json: GET {route} {status} has no JSON schema"))
    }

    /// A schema named by a JSON pointer into the document (`#/components/schemas/Error`).
    pub fn schema(&self, reference: &str) -> Result<&Value> {
        self.doc
            .pointer(reference.trim_start_matches('#'))
            .with_context(|| format!("openapi.json has no {reference}"))
    }

    fn resolve<'a>(&'a self, value: &'a Value) -> Result<&'a Value> {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => self.resolve(self.schema(reference)?),
            None => Ok(value),
        }
    }

    /// Every way `value` departs from `schema`, each as `<pointer>: <what>`; empty when it
    /// conforms.
    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(schema, value, "", &mut errors);
        errors
    }

    fn check(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let here = if at.is_empty() { "/" } else { at };
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                errors.push(format!("{here}: the contract allows no value here"));
                return;
            }
            schema => schema,
        };
        // In 2020-12 `$ref` is one keyword among others: the referenced schema applies, and so
        // do its siblings.
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            match self.schema(reference) {
                Ok(target) => self.check(target, value, at, errors),
                Err(err) => errors.push(format!("{here}: {err:#}")),
            }
        }
        if let Some(types) = schema.get("type") {
            let allowed: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !allowed.iter().any(|t| is_type(value, t)) {
                errors.push(format!(
                    "{here}: expected {}, found {}",
                    allowed.join(" or "),
                    type_name(value)
                ));
                return;
            }
        }
        if let Some(Value::Array(options)) = schema.get("enum")
            && !options.contains(value)
        {
            errors.push(format!(
                "{here}: {value} is not one of {}",
                Value::from(options.clone())
            ));
        }
        if let Some(expected) = schema.get("const")
            && expected != value
        {
            errors.push(format!("{here}: {value} is not {expected}"));
        }
        self.combinators(schema, value, at, errors);
        match value {
            Value::Object(map) => self.check_object(schema, map, at, errors),
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{at}/{i}"), errors);
                    }
                }
                let count = items.len() as u64;
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                    && count < min
                {
                    errors.push(format!("{here}: fewer than {min} items"));
                }
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                    && count > max
                {
                    errors.push(format!("{here}: more than {max} items"));
                }
                if schema.get("uniqueItems") == Some(&Value::Bool(true))
                    && let Some(i) = (1..items.len()).find(|&i| items[..i].contains(&items[i]))
                {
                    errors.push(format!("{here}/{i}: repeats an earlier item"));
                }
            }
            Value::String(text) => {
                let length = text.chars().count() as u64;
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                    && length < min
                {
                    errors.push(format!("{here}: shorter than {min} characters"));
                }
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                    && length > max
                {
                    errors.push(format!("{here}: longer than {max} characters"));
                }
                if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
                    match Pattern::new(pattern) {
                        Ok(p) if p.is_match(text) => {}
                        Ok(_) => errors.push(format!("{here}: {text:?} does not match {pattern}")),
                        Err(err) => errors.push(format!("{here}: {err:#}")),
                    }
                }
            }
            Value::Number(n) => {
                let n = n.as_f64().unwrap_or_default();
                let bound = |name: &str| schema.get(name).and_then(Value::as_f64);
                if let Some(min) = bound("minimum")
                    && n < min
                {
                    errors.push(format!("{here}: {n} is below the minimum {min}"));
                }
                if let Some(max) = bound("maximum")
                    && n > max
                {
                    errors.push(format!("{here}: {n} is above the maximum {max}"));
                }
                if let Some(min) = bound("exclusiveMinimum")
                    && n <= min
                {
                    errors.push(format!("{here}: {n} is not above {min}"));
                }
                if let Some(max) = bound("exclusiveMaximum")
                    && n >= max
                {
                    errors.push(format!("{here}: {n} is not below {max}"));
                }
                if let Some(step) = bound("multipleOf")
                    && (n / step).fract() != 0.0
                {
                    errors.push(format!("{here}: {n} is not a multiple of {step}"));
                }
            }
            _ => {}
        }
    }

    fn check_object(
        &self,
        schema: &Value,
        map: &serde_json::Map<String, Value>,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        let here = if at.is_empty() { "/" } else { at };
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(name) {
                errors.push(format!("{here}: the required field `{name}` is missing"));
            }
        }
        for (name, field) in map {
            let path = format!("{at}/{}", escape(name));
            match (
                properties.and_then(|p| p.get(name)),
                schema.get("additionalProperties"),
            ) {
                (Some(property), _) => self.check(property, field, &path, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{path}: a field the contract does not have"));
                }
                (None, Some(additional)) => self.check(additional, field, &path, errors),
                (None, None) => {}
            }
        }
        let count = map.len() as u64;
        if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
            && count < min
        {
            errors.push(format!("{here}: fewer than {min} fields"));
        }
        if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
            && count > max
        {
            errors.push(format!("{here}: more than {max} fields"));
        }
    }

    /// `allOf` (every subschema), `anyOf` (at least one), `oneOf` (exactly one), `not` (none).
    fn combinators(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let here = if at.is_empty() { "/" } else { at };
        let subschemas = |name: &str| {
            schema
                .get(name)
                .and_then(Value::as_array)
                .map(|all| all.as_slice())
        };
        let departures = |subschema: &Value| {
            let mut found = Vec::new();
            self.check(subschema, value, at, &mut found);
            found
        };
        if let Some(all) = subschemas("allOf") {
            for subschema in all {
                errors.extend(departures(subschema));
            }
        }
        if let Some(any) = subschemas("anyOf") {
            let each: Vec<Vec<String>> = any.iter().map(departures).collect();
            if !each.iter().any(Vec::is_empty) {
                errors.push(format!(
                    "{here}: matches none of the anyOf schemas ({})",
                    each.iter()
                        .map(|e| e.join("; "))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            }
        }
        if let Some(one) = subschemas("oneOf") {
            let each: Vec<Vec<String>> = one.iter().map(departures).collect();
            let matching = each.iter().filter(|e| e.is_empty()).count();
            if matching == 0 {
                errors.push(format!(
                    "{here}: matches none of the oneOf schemas ({})",
                    each.iter()
                        .map(|e| e.join("; "))
                        .collect::<Vec<_>>()
                        .join(" | ")
                ));
            } else if matching > 1 {
                errors.push(format!(
                    "{here}: matches {matching} of the oneOf schemas, where exactly one must match"
                ));
            }
        }
        if let Some(not) = schema.get("not")
            && departures(not).is_empty()
        {
            errors.push(format!("{here}: matches the schema under `not`"));
        }
    }
}

/// A JSON pointer's escaping of one segment (`~` as `~0`, `/` as `~1`).
fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Collects, for every schema of the OpenAPI document below `value` (at `at`, a `#/…` pointer),
/// each keyword the validator neither checks nor may ignore. Schemas sit under `schema` keys
/// (parameters, media types, headers) and in `components/schemas`.
fn find_schemas(value: &Value, at: &str, refused: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{at}/{}", escape(key));
                if key == "example" || key == "examples" {
                    // Sample payloads, not schemas, whatever their fields are called.
                } else if key == "schema" {
                    refuse_unknown(child, &here, refused);
                } else if key == "schemas" && at == "#/components" {
                    for (name, schema) in child.as_object().into_iter().flatten() {
                        refuse_unknown(schema, &format!("{here}/{}", escape(name)), refused);
                    }
                } else {
                    find_schemas(child, &here, refused);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                find_schemas(item, &format!("{at}/{i}"), refused);
            }
        }
        _ => {}
    }
}

/// [`find_schemas`] for one schema and its subschemas.
fn refuse_unknown(schema: &Value, at: &str, refused: &mut Vec<String>) {
    let Value::Object(map) = schema else {
        // `true` and `false` are schemas too; anything else is not one.
        if !schema.is_boolean() {
            refused.push(format!("{at}: not a schema (an object or a boolean)"));
        }
        return;
    };
    for (key, child) in map {
        let here = format!("{at}/{}", escape(key));
        match key.as_str() {
            "properties" => {
                for (name, property) in child.as_object().into_iter().flatten() {
                    refuse_unknown(property, &format!("{here}/{}", escape(name)), refused);
                }
            }
            "items" | "additionalProperties" | "not" => refuse_unknown(child, &here, refused),
            "allOf" | "anyOf" | "oneOf" => {
                for (i, subschema) in child.as_array().into_iter().flatten().enumerate() {
                    refuse_unknown(subschema, &format!("{here}/{i}"), refused);
                }
            }
            key if VALIDATED.contains(&key)
                || ANNOTATIONS.contains(&key)
                || key.starts_with("x-") => {}
            key => refused.push(format!("{at}: the keyword `{key}`")),
        }
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        _ => false,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn contract() -> Contract {
        let root = xtask_core::workspace::find_root().unwrap();
        Contract::parse(&std::fs::read_to_string(root.join("openapi.json")).unwrap()).unwrap()
    }

    #[test]
    fn request_paths_map_to_document_routes() {
        let c = contract();
        assert_eq!(c.route("/meetings").as_deref(), Some("/meetings"));
        assert_eq!(c.route("/meetings/ep-1").as_deref(), Some("/meetings/{id}"));
        assert_eq!(
            c.route("/legislative-files/2021/0106(COD)").as_deref(),
            Some("/legislative-files/{reference}")
        );
        assert_eq!(c.route("/").as_deref(), Some("/"));
        assert_eq!(c.route("/nope/x/y"), None);
    }

    #[test]
    fn conforming_and_departing_values() {
        let c = contract();
        let schema = c.response_schema("/meetings/{id}", 200).unwrap();
        let good = json!({
            "id": "m", "source": "mep", "title": "T", "description": null,
            "start_time": "2026-01-01T00:00:00+00:00", "end_time": null, "country": "DE",
            "location": null, "member_name": null, "url": null,
            "topics": [{"id": "energy", "name": "Energy"}]
        });
        assert_eq!(c.validate(schema, &good), Vec::<String>::new());
        let mut bad = good.clone();
        bad["source"] = json!("blog");
        bad["country"] = json!("deu");
        bad["topics"] = json!([{"id": 1, "name": "x", "extra": true}]);
        bad.as_object_mut().unwrap().remove("title");
        let errors = c.validate(schema, &bad);
        for expected in [
            "/source: \"blog\" is not one of",
            "/country: \"deu\" does not match",
            "/topics/0/id: expected string, found integer",
            "/topics/0/extra: a field the contract does not have",
            "/: the required field `title` is missing",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{expected} in {errors:#?}"
            );
        }
        assert!(c.response_schema("/meetings", 418).is_err());
        let error = c.schema("#/components/schemas/Error").unwrap();
        assert!(
            c.validate(error, &json!({"error": "not_found", "detail": "x"}))
                .is_empty()
        );
    }

    /// A contract of one schema under `components/schemas` and one response.
    fn doc(schema: Value) -> String {
        json!({
            "openapi": "3.1.0",
            "paths": {"/x/{id}": {"get": {"responses": {"200": {"description": "ok",
                "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/Thing"},
                    "example": {"schema": {"if": true}}
                }}}}}}},
            "components": {"schemas": {"Thing": schema}}
        })
        .to_string()
    }

    #[test]
    fn a_keyword_the_validator_does_not_implement_is_refused_with_its_place() {
        let text = doc(json!({
            "type": "object",
            "description": "annotations pass",
            "x-internal": true,
            "properties": {
                "a/b": {"type": "string", "format": "uuid", "contentEncoding": "base64"},
                "n": {"oneOf": [{"type": "integer"}, {"if": {"type": "null"}}]}
            },
            "patternProperties": {"^x": {"type": "string"}}
        }));
        let err = format!("{:#}", Contract::parse(&text).err().expect("refused"));
        for expected in [
            "#/components/schemas/Thing/properties/a~1b: the keyword `contentEncoding`",
            "#/components/schemas/Thing/properties/n/oneOf/1: the keyword `if`",
            "#/components/schemas/Thing: the keyword `patternProperties`",
        ] {
            assert!(err.contains(expected), "{expected} in {err}");
        }
        assert!(
            !err.contains("description") && !err.contains("x-internal"),
            "{err}"
        );
        // The example's field named `schema` is a sample, not a schema.
        assert!(!err.contains("example"), "{err}");
        assert_eq!(err.matches("the keyword").count(), 3, "{err}");
    }

    #[test]
    fn combinators_and_const_validate() {
        let text = doc(json!({
            "type": "object",
            "properties": {
                "kind": {"const": "meeting"},
                "id": {"oneOf": [{"type": "string", "pattern": "^m-"}, {"type": "integer", "minimum": 1}]},
                "tag": {"anyOf": [{"type": "null"}, {"type": "string", "maxLength": 3}]},
                "all": {"allOf": [{"type": "integer"}, {"minimum": 10}, {"exclusiveMaximum": 20}]},
                "not": {"not": {"type": "string"}},
                "both": {"oneOf": [{"type": "number"}, {"type": "integer"}]},
                "list": {"type": "array", "minItems": 1, "uniqueItems": true, "items": {"type": "integer"}}
            },
            "additionalProperties": {"type": "boolean"}
        }));
        let c = Contract::parse(&text).unwrap();
        let schema = c.response_schema("/x/{id}", 200).unwrap();
        let good = json!({"kind": "meeting", "id": "m-1", "tag": null, "all": 15, "not": 1,
            "both": 1.5, "list": [1, 2], "flag": true});
        assert_eq!(c.validate(schema, &good), Vec::<String>::new());
        let bad = json!({"kind": "file", "id": 0, "tag": "long", "all": 20, "not": "s",
            "both": 2, "list": [1, 1], "flag": "yes"});
        let errors = c.validate(schema, &bad);
        for expected in [
            "/kind: \"file\" is not \"meeting\"",
            "/id: matches none of the oneOf schemas",
            "/tag: matches none of the anyOf schemas",
            "/all: 20 is not below 20",
            "/not: matches the schema under `not`",
            "/both: matches 2 of the oneOf schemas",
            "/list/1: repeats an earlier item",
            "/flag: expected boolean, found string",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(expected)),
                "{expected} in {errors:#?}"
            );
        }
        assert_eq!(errors.len(), 8, "{errors:#?}");
    }
}
