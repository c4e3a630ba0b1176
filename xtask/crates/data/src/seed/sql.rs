//! SQL literals for fixture values: standard SQL strings with doubled quotes, typed arrays,
//! canonical JSON. One function per shape, so every value is rendered the same way everywhere.

use std::{borrow::Cow, fmt::Write as _};

use anyhow::Result;

use super::{
    fixture::{Row, Value},
    schema::Type,
};

/// One multi-row INSERT's values and its ON CONFLICT clause.
pub(super) fn render_batch(
    out: &mut String,
    batch: &[Row<'_>],
    typed: &[(&String, &Type)],
) -> Result<()> {
    for (i, row) in batch.iter().enumerate() {
        out.push_str("  (");
        for (j, (column, ty)) in typed.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            match row.values.get(column.as_str()) {
                None => out.push_str("DEFAULT"),
                Some(value) => literal(out, value, ty)
                    .map_err(|why| anyhow::anyhow!("{}, column {column}: {why}", row.at))?,
            }
        }
        out.push_str(if i + 1 == batch.len() { ")\n" } else { "),\n" });
    }
    out.push_str("ON CONFLICT DO NOTHING;\n");
    Ok(())
}

/// Appends the SQL literal of `value` for a column of type `ty`.
pub(super) fn literal(sql: &mut String, value: &Value<'_>, ty: &Type) -> Result<(), String> {
    let wrong = |expected: &str| Err(format!("expected {expected}, found {}", describe(value)));
    let time_text = match value {
        Value::Str(text) => Some(&**text),
        Value::Datetime { text, .. } => Some(text.as_str()),
        _ => None,
    };
    if let (Type::Date | Type::Timestamptz, Some(text)) = (ty, time_text)
        && leap_second(text)
    {
        return Err(format!(
            "{text}: second 60 (a leap second), which PostgreSQL would silently turn into the next minute; write the time you mean (:59, or the next minute)"
        ));
    }
    match (ty, value) {
        (_, Value::Null) => sql.push_str("NULL"),
        (Type::Text, Value::Str(s)) => quote(sql, s)?,
        (Type::Text, _) => return wrong("a string"),
        (Type::Integer, Value::Int(n)) => write!(sql, "{n}").expect("string write"),
        (Type::Integer, Value::Str(s)) if s.parse::<i64>().is_ok() => sql.push_str(s.trim()),
        (Type::Integer, _) => return wrong("an integer"),
        (Type::Numeric, Value::Int(n)) => write!(sql, "{n}").expect("string write"),
        (Type::Numeric, Value::Float(f)) if f.is_finite() => {
            write!(sql, "{f:?}").expect("string write");
        }
        (Type::Numeric, Value::Str(s)) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            sql.push_str(s.trim());
        }
        (Type::Numeric, _) => return wrong("a number"),
        (Type::Boolean, Value::Bool(b)) => sql.push_str(if *b { "true" } else { "false" }),
        (Type::Boolean, Value::Str(s)) if s == "true" || s == "false" => sql.push_str(s),
        (Type::Boolean, _) => return wrong("true or false"),
        (
            Type::Date,
            Value::Datetime {
                text,
                has_time: false,
                ..
            },
        ) => quote(sql, text)?,
        (Type::Date, Value::Str(s)) if s.len() == 10 && openeu_env::is_timestamp(s) => {
            quote(sql, s)?;
        }
        (Type::Date, _) => return wrong("a date such as 2026-03-01"),
        (
            Type::Timestamptz,
            Value::Datetime {
                text,
                has_offset: true,
                ..
            },
        ) => quote(sql, text)?,
        (Type::Timestamptz, Value::Str(s)) if s.len() > 10 && openeu_env::is_timestamp(s) => {
            quote(sql, s)?;
        }
        (Type::Timestamptz, _) => {
            return wrong("a date-time with an offset, such as 2026-03-01T09:30:00Z");
        }
        (Type::Uuid, Value::Str(s)) if openeu_env::is_uuid(s) => {
            quote(sql, &s.to_ascii_lowercase())?;
        }
        (Type::Uuid, _) => return wrong("a UUID"),
        (Type::Json, Value::Json(v)) => quote(sql, &v.to_string())?,
        (Type::Json, Value::Array(_)) => quote(sql, &to_json(value).to_string())?,
        (Type::Json, Value::Str(s)) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(v) => quote(sql, &v.to_string())?,
            Err(e) => return Err(format!("not valid JSON: {e}")),
        },
        (Type::Json, _) => return wrong("a table, an array or a JSON string"),
        (Type::TextArray, Value::Array(items)) => text_array(sql, items)?,
        (Type::TextArray, Value::Str(s)) => match serde_json::from_str::<Vec<String>>(s) {
            Ok(items) => text_array(
                sql,
                &items
                    .into_iter()
                    .map(|s| Value::Str(Cow::Owned(s)))
                    .collect::<Vec<_>>(),
            )?,
            Err(_) => {
                return wrong("an array of strings (in CSV, a JSON array such as [\"a\",\"b\"])");
            }
        },
        (Type::TextArray, _) => return wrong("an array of strings"),
        (Type::Other(name), _) => return Err(format!("columns of type {name} cannot be seeded")),
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:60…`: a leap second, which PostgreSQL accepts and moves on a second.
fn leap_second(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() >= 19 && b[13] == b':' && b[16] == b':' && &b[17..19] == b"60"
}

pub(super) fn text_array(sql: &mut String, items: &[Value<'_>]) -> Result<(), String> {
    if items.is_empty() {
        sql.push_str("'{}'::text[]");
        return Ok(());
    }
    sql.push_str("ARRAY[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        match item {
            Value::Str(s) => quote(sql, s)?,
            other => {
                return Err(format!(
                    "array items must be strings, found {}",
                    describe(other)
                ));
            }
        }
    }
    sql.push_str("]::text[]");
    Ok(())
}

/// A standard SQL string literal: quotes doubled, everything else verbatim (with
/// `standard_conforming_strings`, the default since PostgreSQL 9.1, backslashes are plain).
/// PostgreSQL text cannot hold NUL.
pub(super) fn quote(sql: &mut String, text: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err("contains a NUL byte, which PostgreSQL text cannot store".to_owned());
    }
    sql.reserve(text.len() + 2);
    sql.push('\'');
    let mut parts = text.split('\'');
    if let Some(first) = parts.next() {
        sql.push_str(first);
    }
    for part in parts {
        sql.push_str("''");
        sql.push_str(part);
    }
    sql.push('\'');
    Ok(())
}

pub(super) fn to_json(value: &Value<'_>) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Str(s) => s.to_string().into(),
        Value::Int(n) => (*n).into(),
        Value::Float(f) => (*f).into(),
        Value::Bool(b) => (*b).into(),
        Value::Datetime { text, .. } => text.clone().into(),
        Value::Array(items) => items.iter().map(to_json).collect(),
        Value::Json(v) => v.clone(),
    }
}

pub(super) fn describe(value: &Value<'_>) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Str(_) => "a string",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Bool(_) => "a boolean",
        Value::Datetime { .. } => "a date/time",
        Value::Array(_) => "an array",
        Value::Json(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(value: Value, ty: Type) -> Result<String, String> {
        let mut sql = String::new();
        literal(&mut sql, &value, &ty).map(|()| sql)
    }

    #[test]
    fn literals_for_every_type() {
        assert_eq!(
            lit(Value::Str("it's a \\ test\nline".into()), Type::Text).unwrap(),
            "'it''s a \\ test\nline'"
        );
        assert_eq!(
            lit(Value::Str("$$ café 😀".into()), Type::Text).unwrap(),
            "'$$ café 😀'"
        );
        assert!(
            lit(Value::Str("nul\0".into()), Type::Text)
                .unwrap_err()
                .contains("NUL")
        );
        assert_eq!(lit(Value::Int(-4), Type::Integer).unwrap(), "-4");
        assert!(lit(Value::Str("4x".into()), Type::Integer).is_err());
        assert_eq!(lit(Value::Float(1.5), Type::Numeric).unwrap(), "1.5");
        assert_eq!(lit(Value::Bool(true), Type::Boolean).unwrap(), "true");
        assert_eq!(lit(Value::Null, Type::Text).unwrap(), "NULL");
        assert_eq!(
            lit(Value::Str("2024-02-29".into()), Type::Date).unwrap(),
            "'2024-02-29'"
        );
        assert!(lit(Value::Str("2023-02-29".into()), Type::Date).is_err());
        assert_eq!(
            lit(
                Value::Str("2026-03-01T09:30:00+01:00".into()),
                Type::Timestamptz
            )
            .unwrap(),
            "'2026-03-01T09:30:00+01:00'"
        );
        assert!(
            lit(
                Value::Datetime {
                    text: "2026-03-01T09:30:00".into(),
                    has_offset: false,
                    has_time: true
                },
                Type::Timestamptz
            )
            .is_err()
        );
        assert_eq!(
            lit(
                Value::Str("3F2C1A9E-8B7D-4C6E-9F0A-1B2C3D4E5F60".into()),
                Type::Uuid
            )
            .unwrap(),
            "'3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60'"
        );
        assert_eq!(
            lit(
                Value::Json(serde_json::json!({"a": [1, "x'y"]})),
                Type::Json
            )
            .unwrap(),
            "'{\"a\":[1,\"x''y\"]}'"
        );
        assert_eq!(
            lit(
                Value::Array(vec![Value::Str("a'b".into()), Value::Str("c".into())]),
                Type::TextArray
            )
            .unwrap(),
            "ARRAY['a''b', 'c']::text[]"
        );
        assert_eq!(
            lit(Value::Array(vec![]), Type::TextArray).unwrap(),
            "'{}'::text[]"
        );
        assert!(lit(Value::Str("x".into()), Type::Other("tsvector".into())).is_err());
    }
}
