//! The response schemas of openapi.json, and a validator for the JSON Schema subset the
//! document uses: `type` (a name or an array of names, which is how 3.1 spells nullable),
//! `properties`, `required`, `additionalProperties: false`, `items`, `enum`, `pattern`,
//! `minimum`/`maximum`, `minLength`/`maxLength`, and `$ref` to the document's components.
//! Keywords outside the subset (`format`, `description`, `default`, `example`) are ignored, as
//! JSON Schema ignores annotations. Written here instead of a JSON Schema crate, which would
//! bring a regex engine and more into xtask's cold compile for the dozen keywords we use.

use anyhow::{Context, Result};
use serde_json::Value;

use super::pattern::Pattern;

/// The parsed contract.
pub struct Contract {
    doc: Value,
}

impl Contract {
    pub fn parse(text: &str) -> Result<Contract> {
        let doc: Value = serde_json::from_str(text).context("openapi.json is not JSON")?;
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
        let schema = match self.resolve(schema) {
            Ok(schema) => schema,
            Err(err) => {
                errors.push(format!("{at}: {err:#}"));
                return;
            }
        };
        let here = if at.is_empty() { "/" } else { at };
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
        match value {
            Value::Object(map) => {
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
                    let path = format!("{at}/{name}");
                    match properties.and_then(|p| p.get(name)) {
                        Some(property) => self.check(property, field, &path, errors),
                        None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                            errors.push(format!("{path}: a field the contract does not have"));
                        }
                        None => {}
                    }
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{at}/{i}"), errors);
                    }
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
                if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
                    && n < min
                {
                    errors.push(format!("{here}: {n} is below the minimum {min}"));
                }
                if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
                    && n > max
                {
                    errors.push(format!("{here}: {n} is above the maximum {max}"));
                }
            }
            _ => {}
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
}
