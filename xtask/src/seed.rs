//! `cargo xtask seed [--check]`: renders supabase/seed.sql, what Supabase preview branches are
//! seeded with, from the hand-edited fixtures under supabase/seed/.
//!
//! Fixtures are TOML (one `[[row]]` per row: typed values, comments, one line per field, so
//! diffs stay small) or, for bulk tables, CSV. `manifest.toml` lists the tables in insertion
//! order, with templates for derived columns. Everything is validated against the schema the
//! seed will meet (the migrations, plus what Supabase provides) before a byte of SQL is
//! written. The output is multi-row INSERTs with `ON CONFLICT DO NOTHING`: loadable by the
//! Supabase CLI's seeder (no COPY, no psql meta-commands, no transaction control), safe to
//! re-apply to a persistent preview database, and byte-identical across runs and machines.

use std::{
    borrow::Cow,
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Write as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Deserialize;

use crate::{
    paths::{self, Workspace},
    schema::{self, Type},
};

/// Rows per INSERT statement: large enough to load fast, small enough for clear errors.
const DEFAULT_BATCH_ROWS: usize = 500;

#[derive(Args)]
pub struct Seed {
    /// Only verify that supabase/seed.sql is current; exit non-zero with a diff otherwise.
    #[arg(long)]
    check: bool,
}

impl Seed {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let sql = render_workspace(&ws.root)?;
        let out = ws.path(paths::SEED_SQL);
        if self.check {
            let current = std::fs::read_to_string(&out).unwrap_or_default();
            if current != sql {
                bail!(
                    "{} is stale:\n{}\nrun `cargo xtask seed`",
                    out.display(),
                    short_diff(&current, &sql)
                );
            }
            println!("{} is current", paths::SEED_SQL);
            return Ok(());
        }
        std::fs::write(&out, &sql).with_context(|| format!("writing {}", out.display()))?;
        println!("{}", paths::SEED_SQL);
        Ok(())
    }
}

/// The schema files the seed is checked against, in the order they apply.
pub fn schema_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![root.join(paths::SUPABASE_COMPAT_SQL)];
    let mut migrations: Vec<PathBuf> = std::fs::read_dir(root.join(paths::MIGRATIONS_DIR))
        .with_context(|| format!("reading {}", paths::MIGRATIONS_DIR))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    migrations.retain(|p| p.extension().is_some_and(|e| e == "sql"));
    migrations.sort();
    files.extend(migrations);
    Ok(files)
}

/// Renders the seed of the workspace at `root`.
pub fn render_workspace(root: &Path) -> Result<String> {
    let files = schema_files(root)?;
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let tables = schema::load(&refs)?;
    render(&root.join(paths::SEED_DIR), &tables)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default)]
    batch_rows: Option<usize>,
    table: Vec<TableEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableEntry {
    /// The table, schema-qualified or in `public`.
    name: String,
    /// The fixture file, relative to supabase/seed/ (default: `<name>.toml`).
    file: Option<String>,
    /// Derived columns: column → template over the row's other columns, `{column}`.
    #[serde(default)]
    derive: BTreeMap<String, String>,
}

/// A fixture value before it meets its column's type.
#[derive(Debug, Clone)]
enum Value<'a> {
    Null,
    /// Text; borrowed from the fixture file where it can be (CSV fields), so a million rows
    /// are not a million allocations.
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A TOML date or date-time, in RFC 3339 text.
    Datetime {
        text: String,
        has_offset: bool,
        has_time: bool,
    },
    Array(Vec<Value<'a>>),
    /// A TOML table, for json columns.
    Json(serde_json::Value),
}

/// Where a row came from: "meetings.toml row 3" or "big.csv line 10". Formatted only for
/// messages; a million rows must not cost a million strings.
#[derive(Clone)]
struct Loc {
    file: Arc<str>,
    line: bool,
    n: usize,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.file,
            if self.line { "line" } else { "row" },
            self.n
        )
    }
}

/// One fixture row and where it came from. Column names are shared, not copied per row.
struct Row<'a> {
    at: Loc,
    values: Fields<'a>,
}

/// Column names shared by the rows of one file.
type Names = Arc<Vec<Arc<str>>>;

/// A row's columns. The names live once per file and are shared by its rows; each row holds
/// its values in that order, so a million rows neither copy nor count a million names.
struct Fields<'a> {
    names: Names,
    values: Vec<Value<'a>>,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&Value<'a>> {
        let position = self.names.iter().position(|n| &**n == name)?;
        self.values.get(position)
    }
}

/// One multi-row INSERT's values and its ON CONFLICT clause.
fn render_batch(out: &mut String, batch: &[Row<'_>], typed: &[(&String, &Type)]) -> Result<()> {
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

/// Renders every table of the manifest in `dir` against `tables`.
pub fn render(dir: &Path, tables: &BTreeMap<String, schema::Table>) -> Result<String> {
    let manifest_path = dir.join("manifest.toml");
    let manifest: Manifest = toml::from_str(
        &std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("reading {}", manifest_path.display()))?,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", manifest_path.display()))?;
    let batch_rows = manifest.batch_rows.unwrap_or(DEFAULT_BATCH_ROWS).max(1);

    // Load and check every table before writing anything.
    // CSV files are read first and kept: their rows borrow their text.
    let mut texts: Vec<Option<(Arc<str>, String)>> = Vec::new();
    for entry in &manifest.table {
        let file_name = entry
            .file
            .clone()
            .unwrap_or_else(|| format!("{}.toml", entry.name));
        texts.push(if file_name.ends_with(".csv") {
            let file = dir.join(&file_name);
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            Some((file_name.as_str().into(), text))
        } else {
            None
        });
    }
    let mut loaded: Vec<(&schema::Table, String, Vec<Row<'_>>, Vec<String>)> = Vec::new();
    for (entry, text) in manifest.table.iter().zip(&texts) {
        let name = schema::qualify(&entry.name);
        let table = tables.get(&name).with_context(|| {
            format!(
                "{}: table `{}` is not created by the migrations (nor by Supabase)",
                manifest_path.display(),
                entry.name
            )
        })?;
        let file_name = entry
            .file
            .clone()
            .unwrap_or_else(|| format!("{}.toml", entry.name));
        let file = dir.join(&file_name);
        let mut rows = match text {
            Some((name, text)) => load_csv(text, name)?,
            None => load_toml(&file)?,
        };
        derive(&mut rows, &entry.derive, table, &manifest_path)?;
        let columns = check_rows(table, &rows, &file_name)?;
        loaded.push((table, file_name, rows, columns));
    }
    check_keys_and_references(&loaded)?;

    let mut sql = String::from(
        "-- generated by `cargo xtask seed`, do not edit; the source is supabase/seed/\n\
         -- Safe to re-apply: every INSERT skips rows that already exist (ON CONFLICT DO NOTHING).\n",
    );
    for (table, file_name, rows, columns) in &loaded {
        if rows.is_empty() {
            continue;
        }
        // Each column's type, resolved once per table rather than once per value.
        let typed: Vec<(&String, &Type)> = columns
            .iter()
            .map(|c| (c, &table.column(c).expect("checked").ty))
            .collect();
        let head = format!(
            "INSERT INTO {} ({}) VALUES\n",
            table.name,
            columns.join(", ")
        );
        let batches: Vec<&[Row<'_>]> = rows.chunks(batch_rows).collect();
        // Batches are independent: render them on every core, then concatenate in order.
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let per_thread = batches.len().div_ceil(threads).max(1);
        let rendered: Vec<Result<String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batches
                .chunks(per_thread)
                .enumerate()
                .map(|(part, group)| {
                    let (typed, head) = (&typed, &head);
                    scope.spawn(move || -> Result<String> {
                        let mut out = String::new();
                        for (k, batch) in group.iter().enumerate() {
                            let first = (part * per_thread + k) * batch_rows + 1;
                            write!(
                                out,
                                "\n-- {} ({file_name}, rows {}–{})\n{head}",
                                table.name,
                                first,
                                first + batch.len() - 1
                            )?;
                            render_batch(&mut out, batch, typed)?;
                        }
                        Ok(out)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("render thread panicked"))
                .collect()
        });
        let parts: Vec<String> = rendered.into_iter().collect::<Result<_>>()?;
        sql.reserve(parts.iter().map(String::len).sum());
        for part in parts {
            sql.push_str(&part);
        }
    }
    Ok(sql)
}

fn load_toml(file: &Path) -> Result<Vec<Row<'static>>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fixture {
        #[serde(default)]
        row: Vec<toml::Table>,
    }
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let fixture: Fixture = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim_end()))?;
    let name = file_name(file);
    let mut rows = Vec::new();
    for (i, table) in fixture.row.into_iter().enumerate() {
        let at = Loc {
            file: Arc::clone(&name),
            line: false,
            n: i + 1,
        };
        let mut names = Vec::with_capacity(table.len());
        let mut values = Vec::with_capacity(table.len());
        for (key, value) in table {
            values.push(
                from_toml(value).map_err(|why| anyhow::anyhow!("{at}, column {key}: {why}"))?,
            );
            names.push(Arc::from(key.as_str()));
        }
        rows.push(Row {
            at,
            values: Fields {
                names: Arc::new(names),
                values,
            },
        });
    }
    Ok(rows)
}

fn file_name(file: &Path) -> Arc<str> {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .into()
}

fn from_toml(value: toml::Value) -> Result<Value<'static>, String> {
    Ok(match value {
        toml::Value::String(s) => Value::Str(Cow::Owned(s)),
        toml::Value::Integer(n) => Value::Int(n),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::Datetime {
            text: d.to_string(),
            has_offset: d.offset.is_some(),
            has_time: d.time.is_some(),
        },
        toml::Value::Array(items) => {
            Value::Array(items.into_iter().map(from_toml).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(t) => Value::Json(serde_json::to_value(t).map_err(|e| e.to_string())?),
    })
}

/// RFC 4180 CSV with a header row. An unquoted empty field is NULL; `""` is an empty string.
/// Big files are parsed on every core, split at record boundaries.
fn load_csv<'a>(text: &'a str, name: &Arc<str>) -> Result<Vec<Row<'a>>> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunks = record_chunks(text, threads);
    let Some(&(header_end, _)) = chunks.first() else {
        return Ok(Vec::new());
    };
    let header = parse_csv(&text[..header_end])
        .map_err(|(line, why)| anyhow::anyhow!("{name} line {line}: {why}"))?;
    let Some((_, header)) = header.into_iter().next() else {
        return Ok(Vec::new());
    };
    let header: Arc<Vec<Arc<str>>> = Arc::new(
        header
            .into_iter()
            .map(|f| Arc::from(f.as_deref().unwrap_or_default()))
            .collect(),
    );
    let bounds: Vec<(usize, usize, usize)> = chunks
        .iter()
        .zip(
            chunks
                .iter()
                .skip(1)
                .map(|(start, _)| *start)
                .chain([text.len()]),
        )
        .map(|(&(start, line), end)| (start, end, line))
        .collect();
    let parts: Vec<Result<Vec<Row<'a>>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = bounds
            .iter()
            .map(|&(start, end, first_line)| {
                let (text, header, name) = (&text, &header, &name);
                scope.spawn(move || -> Result<Vec<Row<'a>>> {
                    let records = parse_csv(&text[start..end]).map_err(|(line, why)| {
                        anyhow::anyhow!("{name} line {}: {why}", line + first_line - 1)
                    })?;
                    let mut rows = Vec::with_capacity(records.len());
                    for (line, fields) in records {
                        let at = Loc {
                            file: Arc::clone(name),
                            line: true,
                            n: line + first_line - 1,
                        };
                        if fields.len() != header.len() {
                            bail!(
                                "{at}: {} fields, the header has {}",
                                fields.len(),
                                header.len()
                            );
                        }
                        let values = fields
                            .into_iter()
                            .map(|f| f.map_or(Value::Null, Value::Str))
                            .collect();
                        rows.push(Row {
                            at,
                            values: Fields {
                                names: Arc::clone(header),
                                values,
                            },
                        });
                    }
                    Ok(rows)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("CSV thread panicked"))
            .collect()
    });
    let parts: Vec<Vec<Row<'a>>> = parts.into_iter().collect::<Result<_>>()?;
    let mut rows = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    for part in parts {
        rows.extend(part);
    }
    Ok(rows)
}

/// Where the header ends and where each of about `parts` chunks of records starts (byte offset
/// and line number), always at a newline outside quotes. The first entry is the header's end.
fn record_chunks(text: &str, parts: usize) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut chunks = Vec::new();
    let (mut in_quotes, mut line) = (false, 1);
    let mut target = 0;
    let mut step = usize::MAX;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => in_quotes = !in_quotes,
            b'\n' => {
                line += 1;
                if !in_quotes && i + 1 >= target {
                    chunks.push((i + 1, line));
                    if step == usize::MAX {
                        // After the header: split the rest evenly.
                        step = ((bytes.len() - i) / parts.max(1)).max(1);
                    }
                    target = i + 1 + step;
                }
            }
            _ => {}
        }
    }
    if chunks.is_empty() && !text.is_empty() {
        chunks.push((text.len(), line));
    }
    // A trailing empty chunk would parse as nothing; drop it.
    chunks.retain(|&(start, _)| start <= text.len());
    if chunks.len() > 1 && chunks.last().is_some_and(|&(start, _)| start == text.len()) {
        chunks.pop();
    }
    chunks
}

/// Records with their starting line; a field is None when unquoted and empty.
#[allow(clippy::type_complexity)]
fn parse_csv(text: &str) -> Result<Vec<(usize, Vec<Option<Cow<'_, str>>>)>, (usize, String)> {
    let bytes = text.as_bytes();
    let mut records = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < bytes.len() {
        let start_line = line;
        let mut fields = Vec::with_capacity(
            records
                .last()
                .map_or(8, |(_, f): &(usize, Vec<Option<Cow<'_, str>>>)| f.len()),
        );
        loop {
            if bytes.get(i) == Some(&b'"') {
                i += 1;
                // Borrowed unless the field has an escaped quote ("") to collapse.
                let mut field: Cow<'_, str> = Cow::Borrowed("");
                loop {
                    let rest = &text[i..];
                    let Some(quote) = rest.find('"') else {
                        return Err((start_line, "unterminated quoted field".to_owned()));
                    };
                    let chunk = &rest[..quote];
                    line += chunk.bytes().filter(|b| *b == b'\n').count();
                    if field.is_empty() && matches!(field, Cow::Borrowed(_)) {
                        field = Cow::Borrowed(chunk);
                    } else {
                        field.to_mut().push_str(chunk);
                    }
                    i += quote + 1;
                    if bytes.get(i) == Some(&b'"') {
                        field.to_mut().push('"');
                        i += 1;
                    } else {
                        break;
                    }
                }
                if !matches!(bytes.get(i), None | Some(b',' | b'\n' | b'\r')) {
                    return Err((line, "text after a closing quote".to_owned()));
                }
                fields.push(Some(field));
            } else {
                let rest = &text[i..];
                let end = rest.find([',', '\n', '\r']).unwrap_or(rest.len());
                let field = &rest[..end];
                fields.push(if field.is_empty() {
                    None
                } else {
                    Some(Cow::Borrowed(field))
                });
                i += end;
            }
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b'\r') => {
                    i += 1;
                    if bytes.get(i) == Some(&b'\n') {
                        i += 1;
                    }
                    line += 1;
                    break;
                }
                Some(b'\n') => {
                    i += 1;
                    line += 1;
                    break;
                }
                _ => break,
            }
        }
        if !(fields.len() == 1 && fields[0].is_none()) {
            records.push((start_line, fields));
        }
    }
    Ok(records)
}

/// Fills derived columns from their templates.
fn derive(
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
            if let TemplatePart::Column(name, _) = part
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
                    TemplatePart::Column(name, true) => match row.values.get(name.as_str()) {
                        Some(Value::Str(s)) => text.push_str(s.get(..10).unwrap_or(s)),
                        Some(Value::Datetime { text: t, .. }) => {
                            text.push_str(t.get(..10).unwrap_or(t))
                        }
                        _ => {}
                    },
                    TemplatePart::Column(name, false) => match row.values.get(name.as_str()) {
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

enum TemplatePart {
    Text(String),
    /// `{column}`, or `{column:date}` for the date part of a date-time.
    Column(String, bool),
}

fn parse_template(template: &str) -> Result<Vec<TemplatePart>, String> {
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        parts.push(TemplatePart::Text(rest[..open].to_owned()));
        let close = rest[open..].find('}').ok_or("a `{` without its `}`")? + open;
        let name = rest[open + 1..close].trim();
        if name.is_empty() {
            return Err("an empty `{}`".to_owned());
        }
        let (name, date_only) = match name.split_once(':') {
            None => (name, false),
            Some((name, "date")) => (name.trim(), true),
            Some((_, format)) => return Err(format!("unknown format `{format}` (only `date`)")),
        };
        parts.push(TemplatePart::Column(name.to_owned(), date_only));
        rest = &rest[close + 1..];
    }
    parts.push(TemplatePart::Text(rest.to_owned()));
    Ok(parts)
}

/// Unknown, generated and missing required columns; returns the columns to write, in schema
/// order.
fn check_rows(table: &schema::Table, rows: &[Row<'_>], file: &str) -> Result<Vec<String>> {
    // Rows are independent: check them on every core; the first error in row order wins.
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
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

fn check_chunk(table: &schema::Table, rows: &[Row<'_>], file: &str) -> Result<Vec<bool>> {
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
                    bail!(
                        "{}: unknown column `{column}`; {} (created in {}) has: {}",
                        row.at,
                        table.name,
                        table.defined_in,
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
struct FxHasher(u64);

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

type FastBuild = std::hash::BuildHasherDefault<FxHasher>;

/// The key text of a value for comparisons across tables ('x' and 'x' from CSV alike);
/// borrowed where it can be, since keys are compared for every row.
fn key_text<'v>(value: &'v Value<'_>) -> Option<Cow<'v, str>> {
    match value {
        Value::Null => None,
        Value::Str(s) => Some(Cow::Borrowed(&**s)),
        Value::Int(n) => Some(Cow::Owned(n.to_string())),
        Value::Datetime { text, .. } => Some(Cow::Borrowed(text)),
        other => Some(Cow::Owned(format!("{other:?}"))),
    }
}

fn check_keys_and_references(
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

/// Appends the SQL literal of `value` for a column of type `ty`.
fn literal(sql: &mut String, value: &Value<'_>, ty: &Type) -> Result<(), String> {
    let wrong = |expected: &str| Err(format!("expected {expected}, found {}", describe(value)));
    match (ty, value) {
        (_, Value::Null) => sql.push_str("NULL"),
        (Type::Text, Value::Str(s)) => quote(sql, s)?,
        (Type::Text, _) => return wrong("a string"),
        (Type::Integer, Value::Int(n)) => write!(sql, "{n}").expect("string write"),
        (Type::Integer, Value::Str(s)) if s.parse::<i64>().is_ok() => sql.push_str(s.trim()),
        (Type::Integer, _) => return wrong("an integer"),
        (Type::Numeric, Value::Int(n)) => write!(sql, "{n}").expect("string write"),
        (Type::Numeric, Value::Float(f)) if f.is_finite() => {
            write!(sql, "{f:?}").expect("string write")
        }
        (Type::Numeric, Value::Str(s)) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
            sql.push_str(s.trim())
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
            quote(sql, s)?
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
            quote(sql, s)?
        }
        (Type::Timestamptz, _) => {
            return wrong("a date-time with an offset, such as 2026-03-01T09:30:00Z");
        }
        (Type::Uuid, Value::Str(s)) if openeu_env::is_uuid(s) => {
            quote(sql, &s.to_ascii_lowercase())?
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

fn text_array(sql: &mut String, items: &[Value<'_>]) -> Result<(), String> {
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
/// standard_conforming_strings, the default since PostgreSQL 9.1, backslashes are plain).
/// PostgreSQL text cannot hold NUL.
fn quote(sql: &mut String, text: &str) -> Result<(), String> {
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

fn to_json(value: &Value<'_>) -> serde_json::Value {
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

fn describe(value: &Value<'_>) -> &'static str {
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

/// The first differing lines, with two lines of context.
fn short_diff(old: &str, new: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let first = old
        .iter()
        .zip(&new)
        .position(|(a, b)| a != b)
        .unwrap_or(old.len().min(new.len()));
    let mut out = String::new();
    for i in first.saturating_sub(2)..(first + 3).min(old.len().max(new.len())) {
        match (old.get(i), new.get(i)) {
            (Some(a), Some(b)) if a == b => out.push_str(&format!("  {a}\n")),
            (a, b) => {
                if let Some(a) = a {
                    out.push_str(&format!("- {a}\n"));
                }
                if let Some(b) = b {
                    out.push_str(&format!("+ {b}\n"));
                }
            }
        }
    }
    out.push_str(&format!(
        "(committed: {} lines, rendered: {} lines)",
        old.len(),
        new.len()
    ));
    out
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

    #[test]
    fn csv_quotes_newlines_and_nulls() {
        let records = parse_csv("a,b,c\n1,\"x,\"\"y\"\"\nz\",\n2,\"\",w\r\n").unwrap();
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[1],
            (2, vec![Some("1".into()), Some("x,\"y\"\nz".into()), None])
        );
        assert_eq!(
            records[2],
            (4, vec![Some("2".into()), Some("".into()), Some("w".into())])
        );
        assert!(parse_csv("a\n\"open\n").is_err());
        // Fields without an escaped quote borrow the file's text.
        assert!(matches!(records[2].1[2], Some(Cow::Borrowed("w"))));
        assert!(matches!(records[1].1[1], Some(Cow::Owned(_))));
    }

    #[test]
    fn chunked_csv_parsing_matches_a_single_pass() {
        let mut text = String::from("a,b\n");
        for i in 0..200 {
            text.push_str(&format!("{i},\"line {i}\nsecond, \"\"quoted\"\"\"\n"));
        }
        let whole = parse_csv(&text).unwrap();
        for parts in [1, 2, 3, 7] {
            let chunks = record_chunks(&text, parts);
            assert_eq!(chunks[0], (4, 2), "the header ends after its line");
            let mut records = Vec::new();
            let ends = chunks.iter().skip(1).map(|c| c.0).chain([text.len()]);
            for (&(start, line), end) in chunks.iter().zip(ends) {
                let part = parse_csv(&text[start..end]).unwrap();
                records.extend(part.into_iter().map(|(l, f)| (l + line - 1, f)));
            }
            assert_eq!(records, whole[1..], "{parts} parts");
        }
    }

    #[test]
    fn templates() {
        assert!(parse_template("{a} and {b}").is_ok());
        assert!(parse_template("{a").is_err());
        assert!(parse_template("{}").is_err());
        assert!(parse_template("{a:date}").is_ok());
        assert!(parse_template("{a:time}").is_err());
    }
}
