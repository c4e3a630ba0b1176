//! The schema the seed will meet, read from the SQL that creates it: `CREATE TABLE` statements
//! of supabase/local/supabase-compat.sql (what Supabase provides, such as auth.users) and of the
//! migrations, in order. Enough of SQL to know each table's columns, their types, which are
//! required, generated, the primary key and the references; not a SQL parser.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    Text,
    Integer,
    Numeric,
    Boolean,
    Date,
    Timestamptz,
    Uuid,
    Json,
    TextArray,
    /// A type the seed cannot write (tsvector, bytea, …).
    Other(String),
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: Type,
    pub not_null: bool,
    pub has_default: bool,
    pub generated: bool,
    /// `(table, column)` this column references.
    pub references: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Table {
    /// Schema-qualified: `public.meetings`.
    pub name: String,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
    /// Where the table was created, for messages.
    pub defined_in: String,
}

impl Table {
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// `meetings` → `public.meetings`; qualified names stay.
pub fn qualify(name: &str) -> String {
    if name.contains('.') {
        name.to_owned()
    } else {
        format!("public.{name}")
    }
}

/// Every table created by `files`, in order; a later definition of the same table replaces an
/// earlier one only if the earlier used IF NOT EXISTS semantics do not apply (we keep the first,
/// as Postgres would with IF NOT EXISTS).
pub fn load(files: &[&Path]) -> Result<BTreeMap<String, Table>> {
    let mut tables = BTreeMap::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for table in parse(&text, &file.display().to_string())? {
            tables.entry(table.name.clone()).or_insert(table);
        }
    }
    Ok(tables)
}

/// The tables of one SQL text.
pub fn parse(sql: &str, origin: &str) -> Result<Vec<Table>> {
    let clean = strip_comments(sql);
    let lower = clean.to_ascii_lowercase();
    let mut tables = Vec::new();
    let mut from = 0;
    while let Some(found) = lower[from..].find("create table") {
        let start = from + found + "create table".len();
        let open = lower[start..]
            .find('(')
            .map(|i| start + i)
            .context("CREATE TABLE without a column list")?;
        let mut name = clean[start..open].trim();
        if name.to_ascii_lowercase().starts_with("if not exists") {
            name = name["if not exists".len()..].trim();
        }
        let name = qualify(&name.replace('"', ""));
        let close = matching_paren(&clean, open)
            .with_context(|| format!("{origin}: unbalanced parentheses in CREATE TABLE {name}"))?;
        let body = &clean[open + 1..close];
        tables.push(parse_body(&name, body, origin)?);
        from = close;
    }
    Ok(tables)
}

fn parse_body(name: &str, body: &str, origin: &str) -> Result<Table> {
    let mut table = Table {
        name: name.to_owned(),
        columns: Vec::new(),
        primary_key: Vec::new(),
        defined_in: origin.to_owned(),
    };
    for item in split_top_level(body) {
        let item = item.trim();
        let lower = item.to_ascii_lowercase();
        if lower.is_empty() {
            continue;
        }
        if let Some(rest) = lower.strip_prefix("primary key") {
            table.primary_key = list_in_parens(rest);
            continue;
        }
        if ["constraint", "unique", "check", "foreign key", "exclude"]
            .iter()
            .any(|k| lower.starts_with(k))
        {
            continue;
        }
        let mut words = item.split_whitespace();
        let column = words
            .next()
            .context("empty column definition")?
            .replace('"', "");
        let rest = &lower[lower.find(char::is_whitespace).unwrap_or(lower.len())..].trim_start();
        let ty = column_type(rest);
        if ty.is_none() {
            bail!("{origin}: column {name}.{column} has a type we cannot read: {item}");
        }
        let references = rest.find("references ").map(|i| {
            let after = &rest[i + "references ".len()..];
            let target = after
                .split(|c: char| c == '(' || c.is_whitespace())
                .next()
                .unwrap_or("")
                .to_owned();
            let column = list_in_parens(&after[target.len()..])
                .into_iter()
                .next()
                .unwrap_or_else(|| "id".to_owned());
            (qualify(&target), column)
        });
        if rest.contains("primary key") {
            table.primary_key = vec![column.clone()];
        }
        table.columns.push(Column {
            name: column,
            ty: ty.expect("checked above"),
            not_null: rest.contains("not null") || rest.contains("primary key"),
            has_default: rest.contains("default ") || rest.contains("generated "),
            generated: rest.contains("generated always"),
            references,
        });
    }
    Ok(table)
}

fn column_type(definition: &str) -> Option<Type> {
    let d = definition;
    let starts = |prefixes: &[&str]| prefixes.iter().any(|p| d.starts_with(p));
    Some(if starts(&["text[]", "varchar[]", "character varying[]"]) {
        Type::TextArray
    } else if starts(&["text", "varchar", "character varying", "citext"]) {
        Type::Text
    } else if starts(&["timestamptz", "timestamp with time zone"]) {
        Type::Timestamptz
    } else if starts(&["date"]) {
        Type::Date
    } else if starts(&["boolean", "bool"]) {
        Type::Boolean
    } else if starts(&["uuid"]) {
        Type::Uuid
    } else if starts(&["jsonb", "json"]) {
        Type::Json
    } else if starts(&[
        "bigint",
        "integer",
        "int",
        "smallint",
        "serial",
        "bigserial",
    ]) {
        Type::Integer
    } else if starts(&["numeric", "decimal", "real", "double precision"]) {
        Type::Numeric
    } else {
        Type::Other(
            d.split(|c: char| c.is_whitespace() || c == '(')
                .next()?
                .to_owned(),
        )
    })
}

fn list_in_parens(text: &str) -> Vec<String> {
    let Some(open) = text.find('(') else {
        return Vec::new();
    };
    let Some(close) = text[open..].find(')') else {
        return Vec::new();
    };
    text[open + 1..open + close]
        .split(',')
        .map(|s| s.trim().replace('"', ""))
        .filter(|s| !s.is_empty())
        .collect()
}

fn matching_paren(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0;
    let mut in_string = false;
    for (i, c) in text[open..].char_indices() {
        match c {
            '\'' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits at commas that are not inside parentheses or strings.
fn split_top_level(body: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut in_string, mut start) = (0, false, 0);
    for (i, c) in body.char_indices() {
        match c {
            '\'' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => depth -= 1,
            ',' if !in_string && depth == 0 => {
                parts.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&body[start..]);
    parts
}

/// Removes `-- …` line comments (outside strings).
fn strip_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    for line in sql.lines() {
        let mut in_string = false;
        let mut cut = line.len();
        let bytes = line.as_bytes();
        for i in 0..bytes.len() {
            match bytes[i] {
                b'\'' => in_string = !in_string,
                b'-' if !in_string && bytes.get(i + 1) == Some(&b'-') => {
                    cut = i;
                    break;
                }
                _ => {}
            }
        }
        out.push_str(&line[..cut]);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_columns_keys_and_references() {
        let sql = "-- a comment (with a paren\ncreate table if not exists public.things (\n  id text primary key check (id ~ '^[a-z(]+$'),\n  n int not null default 0,\n  at timestamptz not null,\n  tags text[] not null default '{}',\n  v tsvector generated always as (to_tsvector('simple', id)) stored,\n  owner uuid references auth.users (id) on delete cascade\n);\ncreate table pairs (a text not null references public.things (id), b text, primary key (a, b));\n";
        let tables = parse(sql, "t.sql").unwrap();
        assert_eq!(tables.len(), 2);
        let things = &tables[0];
        assert_eq!(things.name, "public.things");
        assert_eq!(things.primary_key, ["id"]);
        let names: Vec<&str> = things.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "n", "at", "tags", "v", "owner"]);
        assert_eq!(things.column("tags").unwrap().ty, Type::TextArray);
        assert!(things.column("v").unwrap().generated);
        assert!(things.column("n").unwrap().has_default);
        assert_eq!(
            things.column("owner").unwrap().references,
            Some(("auth.users".to_owned(), "id".to_owned()))
        );
        assert_eq!(tables[1].primary_key, ["a", "b"]);
        assert_eq!(
            tables[1].column("a").unwrap().references,
            Some(("public.things".to_owned(), "id".to_owned()))
        );
    }
}
