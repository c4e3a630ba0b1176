//! Checks of fixture rows against the schema before any SQL is written: derived columns,
//! columns and types, primary keys, and references between fixtures.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap, HashSet},
    path::Path,
    sync::Arc,
};

use anyhow::{Result, bail};

use super::{
    fixture::{Loc, Names, Row, Value},
    schema,
};

/// Fills derived columns from their templates.
pub(super) fn derive(
    rows: &mut [Row],
    templates: &BTreeMap<String, String>,
    table: &schema::Table,
    manifest: &Path,
) -> Result<()> {
    for (column, template) in templates {
        if table.column(column).is_none() {
            bail!(
                "{}: derived column {}.{column} is not in the schema",
                manifest.display(),
                table.name
            );
        }
        let parts = parse_template(template).map_err(|why| {
            anyhow::anyhow!(
                "{}: template of {}.{column}: {why}",
                manifest.display(),
                table.name
            )
        })?;
        for part in &parts {
            if let TemplatePart::Column { name, .. } = part
                && table.column(name).is_none()
            {
                bail!(
                    "{}: template of {}.{column} uses {{{name}}}, which is not a column of {}",
                    manifest.display(),
                    table.name,
                    table.name
                );
            }
        }
        let mut extended: Option<(Names, Names)> = None;
        for row in rows.iter_mut() {
            let mut text = String::new();
            for part in &parts {
                match part {
                    TemplatePart::Text(t) => text.push_str(t),
                    TemplatePart::Column {
                        name,
                        format: Format::Date,
                    } => match row.values.get(name.as_str()) {
                        Some(Value::Str(s)) => text.push_str(s.get(..10).unwrap_or(s)),
                        Some(Value::Datetime { text: t, .. }) => {
                            text.push_str(t.get(..10).unwrap_or(t));
                        }
                        _ => {}
                    },
                    TemplatePart::Column {
                        name,
                        format: Format::Whole,
                    } => match row.values.get(name.as_str()) {
                        Some(Value::Str(s)) => text.push_str(s),
                        Some(Value::Datetime { text: t, .. }) => text.push_str(t),
                        Some(Value::Int(n)) => text.push_str(&n.to_string()),
                        Some(Value::Float(f)) => text.push_str(&f.to_string()),
                        Some(Value::Bool(b)) => text.push_str(&b.to_string()),
                        Some(Value::Array(items)) => {
                            let words: Vec<String> = items
                                .iter()
                                .filter_map(|v| {
                                    if let Value::Str(s) = v {
                                        Some(s.to_string())
                                    } else {
                                        None
                                    }
                                })
                                .collect();
                            text.push_str(&words.join(" "));
                        }
                        Some(Value::Json(v)) => text.push_str(&v.to_string()),
                        Some(Value::Null) | None => {}
                    },
                }
            }
            let collapsed = Value::Str(Cow::Owned(
                text.split_whitespace().collect::<Vec<_>>().join(" "),
            ));
            match row.values.names.iter().position(|n| **n == **column) {
                Some(position) => row.values.values[position] = collapsed,
                None => {
                    // Rows of one file share their names: extend them once, not once per row.
                    let extended = match &extended {
                        Some((from, to)) if Arc::ptr_eq(from, &row.values.names) => Arc::clone(to),
                        _ => {
                            let mut names = (*row.values.names).clone();
                            names.push(Arc::from(column.as_str()));
                            let to = Arc::new(names);
                            extended = Some((Arc::clone(&row.values.names), Arc::clone(&to)));
                            to
                        }
                    };
                    row.values.names = extended;
                    row.values.values.push(collapsed);
                }
            }
        }
    }
    Ok(())
}

pub(super) enum TemplatePart {
    Text(String),
    /// `{column}`, or `{column:date}` for the date part of a date-time.
    Column {
        name: String,
        format: Format,
    },
}

/// How a `{column}` placeholder is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    /// The value as it is.
    Whole,
    /// The first ten characters of a date or date-time: `YYYY-MM-DD`.
    Date,
}

pub(super) fn parse_template(template: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        parts.push(TemplatePart::Text(rest[..open].to_owned()));
        let close = rest[open..].find('}').ok_or("a `{` without its `}`")? + open;
        let name = rest[open + 1..close].trim();
        if name.is_empty() {
            return Err("an empty `{}`".to_owned());
        }
        let (name, format) = match name.split_once(':') {
            None => (name, Format::Whole),
            Some((name, "date")) => (name.trim(), Format::Date),
            Some((_, format)) => return Err(format!("unknown format `{format}` (only `date`)")),
        };
        parts.push(TemplatePart::Column {
            name: name.to_owned(),
            format,
        });
        rest = &rest[close + 1..];
    }
    parts.push(TemplatePart::Text(rest.to_owned()));
    Ok(parts)
}

/// Unknown, generated and missing required columns; returns the columns to write, in schema
/// order.
pub(super) fn check_rows(
    table: &schema::Table,
    rows: &[Row<'_>],
    file: &str,
    threads: usize,
) -> Result<Vec<String>> {
    // Rows are independent: check them on every core; the first error in row order wins.
    let threads = threads.max(1);
    let per_thread = rows.len().div_ceil(threads).max(1);
    let results: Vec<Result<Vec<bool>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = rows
            .chunks(per_thread)
            .map(|chunk| scope.spawn(move || check_chunk(table, chunk, file)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("check thread panicked"))
            .collect()
    });
    let mut used = vec![false; table.columns.len()];
    for result in results {
        for (u, chunk_used) in used.iter_mut().zip(result?) {
            *u |= chunk_used;
        }
    }
    Ok(table
        .columns
        .iter()
        .zip(&used)
        .filter(|(_, used)| **used)
        .map(|(c, _)| c.name.clone())
        .collect())
}

pub(super) fn check_chunk(
    table: &schema::Table,
    rows: &[Row<'_>],
    file: &str,
) -> Result<Vec<bool>> {
    let mut used = vec![false; table.columns.len()];
    // Rows of one file share their names, so the name → column mapping (and which required
    // columns are absent) is worked out once per distinct set of names.
    let mut mapping: Option<(&Names, Vec<usize>)> = None;
    for row in rows {
        let names = &row.values.names;
        if !mapping.as_ref().is_some_and(|(m, _)| Arc::ptr_eq(m, names)) {
            let mut positions = Vec::with_capacity(names.len());
            for column in names.iter() {
                let Some(position) = table.columns.iter().position(|c| *c.name == **column) else {
                    let known: Vec<&str> = table
                        .columns
                        .iter()
                        .filter(|c| !c.generated)
                        .map(|c| c.name.as_str())
                        .collect();
                    let guess = openeu_env::closest_match(column, known.iter().copied())
                        .map(|c| format!("did you mean `{c}`? "))
                        .unwrap_or_default();
                    bail!(
                        "{}: unknown column `{column}`; {guess}{} (as the migrations leave it) has: {}; a new column needs a migration first (cargo xtask migration new NAME)",
                        row.at,
                        table.name,
                        known.join(", ")
                    );
                };
                if table.columns[position].generated {
                    bail!(
                        "{}: column `{column}` of {} is generated; remove it from {file}",
                        row.at,
                        table.name
                    );
                }
                positions.push(position);
            }
            for col in &table.columns {
                if col.not_null && !col.has_default && !names.iter().any(|n| **n == *col.name) {
                    bail!(
                        "{}: column `{}` of {} is required (NOT NULL, no default)",
                        row.at,
                        col.name,
                        table.name
                    );
                }
            }
            mapping = Some((names, positions));
        }
        let positions = &mapping.as_ref().expect("set above").1;
        for (&position, value) in positions.iter().zip(&row.values.values) {
            let col = &table.columns[position];
            if matches!(value, Value::Null) && col.not_null && !col.has_default {
                bail!(
                    "{}: column `{}` of {} cannot be NULL",
                    row.at,
                    col.name,
                    table.name
                );
            }
            used[position] = true;
        }
    }
    Ok(used)
}

/// A fast non-cryptographic hasher for the key checks (fixtures are trusted local files, so
/// hash flooding is no concern): a million keys hash in milliseconds.
#[derive(Default)]
pub(super) struct FxHasher(u64);

impl std::hash::Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub(super) type FastBuild = std::hash::BuildHasherDefault<FxHasher>;

/// The key text of a value for comparisons across tables ('x' and 'x' from CSV alike);
/// borrowed where it can be, since keys are compared for every row.
pub(super) fn key_text<'v>(value: &'v Value<'_>) -> Option<Cow<'v, str>> {
    match value {
        Value::Null => None,
        Value::Str(s) => Some(Cow::Borrowed(&**s)),
        Value::Int(n) => Some(Cow::Owned(n.to_string())),
        Value::Datetime { text, .. } => Some(Cow::Borrowed(text)),
        other => Some(Cow::Owned(format!("{other:?}"))),
    }
}

pub(super) fn check_keys_and_references(
    loaded: &[(&schema::Table, String, Vec<Row<'_>>, Vec<String>)],
) -> Result<()> {
    // Primary keys: unique within each table. Single-column keys (the common case, and every
    // bulk table's) are hashed as borrowed text; composite ones as a vector of their parts.
    for (table, _, rows, _) in loaded {
        let duplicate = |row: &Row<'_>, key: &str, first: &Loc| {
            anyhow::anyhow!(
                "{}: duplicate primary key ({}) = ({key}) of {}, first defined at {first}",
                row.at,
                table.primary_key.join(", "),
                table.name
            )
        };
        match table.primary_key.as_slice() {
            [] => {}
            [column] => {
                let mut seen: HashMap<Cow<'_, str>, &Loc, FastBuild> =
                    HashMap::with_capacity_and_hasher(rows.len(), FastBuild::default());
                for row in rows {
                    let key = row
                        .values
                        .get(column)
                        .and_then(key_text)
                        .unwrap_or_default();
                    match seen.entry(key) {
                        std::collections::hash_map::Entry::Occupied(e) => {
                            return Err(duplicate(row, e.key(), e.get()));
                        }
                        std::collections::hash_map::Entry::Vacant(e) => {
                            e.insert(&row.at);
                        }
                    }
                }
            }
            columns => {
                let mut seen: HashMap<Vec<Cow<'_, str>>, &Loc, FastBuild> =
                    HashMap::with_capacity_and_hasher(rows.len(), FastBuild::default());
                for row in rows {
                    let key: Vec<_> = columns
                        .iter()
                        .map(|c| row.values.get(c).and_then(key_text).unwrap_or_default())
                        .collect();
                    if let Some(first) = seen.get(&key) {
                        return Err(duplicate(row, &key.join(", "), first));
                    }
                    seen.insert(key, &row.at);
                }
            }
        }
    }
    // References: every value names a row some fixture defines. Only referenced columns are
    // indexed.
    for (table, _, rows, _) in loaded {
        for col in table.columns.iter().filter(|c| c.references.is_some()) {
            let (target_table, target_column) = col.references.as_ref().expect("filtered");
            let Some((_, target_file, target_rows, _)) =
                loaded.iter().find(|(t, ..)| &t.name == target_table)
            else {
                if rows
                    .iter()
                    .any(|r| r.values.get(col.name.as_str()).and_then(key_text).is_some())
                {
                    bail!(
                        "{}.{} references {target_table}({target_column}), which no fixture defines; add {target_table} to supabase/seed/manifest.toml before {}",
                        table.name,
                        col.name,
                        table.name
                    );
                }
                continue;
            };
            let defined: HashSet<std::borrow::Cow<'_, str>, FastBuild> = target_rows
                .iter()
                .filter_map(|r| r.values.get(target_column.as_str()).and_then(key_text))
                .collect();
            for row in rows {
                if let Some(value) = row.values.get(col.name.as_str()).and_then(key_text)
                    && !defined.contains(&value)
                {
                    bail!(
                        "{}: {} = {value:?} references {target_table}({target_column}), but {target_file} defines no such row",
                        row.at,
                        col.name
                    );
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        assert!(parse_template("{a} and {b}").is_ok());
        assert!(parse_template("{a").is_err());
        assert!(parse_template("{}").is_err());
        assert!(parse_template("{a:date}").is_ok());
        assert!(parse_template("{a:time}").is_err());
    }
}
