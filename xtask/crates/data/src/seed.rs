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

use std::{collections::BTreeMap, fmt::Write as _, path::Path, sync::Arc};

use anyhow::{Context, Result, bail};

mod check;
mod csv;
mod fixture;
pub mod schema;
mod sql;

use check::{check_keys_and_references, check_rows, derive};
use csv::load_csv;
use fixture::{Row, contained, load_toml, read_utf8};
use sql::render_batch;

use schema::Type;

use xtask_core::{
    files::{Mode, ensure_file_contents},
    progress,
    workspace::{self, Workspace},
};

use crate::flags;

/// Rows per INSERT statement: large enough to load fast, small enough for clear errors.
const DEFAULT_BATCH_ROWS: usize = 500;

impl flags::Seed {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let sql = render_workspace(ws)?;
        ensure_file_contents(
            &ws.root,
            workspace::SEED_SQL,
            &sql,
            Mode::from_check(self.check),
            "cargo xtask seed",
        )
    }
}

/// Renders the seed of the workspace `ws`, checked against the schema the migrations produce
/// and then loaded into it (on a throwaway PostgreSQL; both cached).
pub fn render_workspace(ws: &Workspace) -> Result<String> {
    let files = workspace::schema_files(&ws.root)?;
    let cache = cache_dir(ws);
    let tables = schema::load(&files, cache.as_deref())?;
    let sql = render(&ws.path(workspace::SEED_DIR), &tables)?;
    schema::check_loads(&files, &sql, cache.as_deref())?;
    Ok(sql)
}

/// The schema the seed will meet: what the compatibility bootstrap and the migrations produce,
/// read from a throwaway PostgreSQL's catalog, cached under the target directory by their hash.
pub fn load_schema(ws: &Workspace) -> Result<BTreeMap<String, schema::Table>> {
    let files = workspace::schema_files(&ws.root)?;
    schema::load(&files, cache_dir(ws).as_deref())
}

/// Where the schema and load checks are cached. A fixture workspace that is not a whole Cargo
/// workspace has no target directory that cargo can name; its own target/ serves.
fn cache_dir(ws: &Workspace) -> Option<std::path::PathBuf> {
    ws.scratch("seed-schema")
        .or_else(|_| {
            let dir = ws.path("target/xtask/seed-schema");
            std::fs::create_dir_all(&dir).map(|()| dir)
        })
        .ok()
}

/// Makes supabase/seed.sql current before it is loaded (`up`, `db reset`): a stale file is
/// rendered again, saying so, because serving yesterday's seed without a word is worse than
/// writing a generated file the developer will commit anyway.
pub fn ensure_current(ws: &Workspace) -> Result<()> {
    let step =
        progress::step("checking supabase/seed.sql against supabase/seed/ and the migrations");
    let sql = render_workspace(ws)?;
    let path = ws.path(workspace::SEED_SQL);
    if std::fs::read_to_string(&path).is_ok_and(|committed| committed == sql) {
        step.done_with("current");
        return Ok(());
    }
    std::fs::write(&path, &sql).with_context(|| format!("writing {}", path.display()))?;
    step.done_with(&format!(
        "it was stale: rendered it again ({}); commit it with the fixtures",
        workspace::SEED_SQL
    ));
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    batch_rows: Option<usize>,
    #[serde(deserialize_with = "xtask_core::tables::many")]
    table: Vec<TableEntry>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TableEntry {
    /// The table, schema-qualified or in `public`.
    name: String,
    /// The fixture file, relative to supabase/seed/ (default: `<name>.toml`).
    file: Option<String>,
    /// Derived columns: column → template over the row's other columns, `{column}`.
    #[serde(default)]
    derive: BTreeMap<String, String>,
    /// The table is seeded with no rows, on purpose: its fixture may be empty. Without it an
    /// empty fixture is refused (it is almost always a mistake).
    #[serde(default)]
    empty: bool,
}

/// How many threads parse, check and render: every core, or `XTASK_SEED_THREADS` (read once),
/// which tests set to prove the output does not depend on it.
pub fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::env::var("XTASK_SEED_THREADS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
    })
}

/// Renders every table of the manifest in `dir` against `tables`.
pub fn render(dir: &Path, tables: &BTreeMap<String, schema::Table>) -> Result<String> {
    render_with_threads(dir, tables, threads())
}

/// `render` on `threads` threads: the same bytes, or the same error, for any number.
pub fn render_with_threads(
    dir: &Path,
    tables: &BTreeMap<String, schema::Table>,
    threads: usize,
) -> Result<String> {
    let threads = threads.max(1);
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
        let file = contained(dir, &file_name, &entry.name, &manifest_path)?;
        texts.push(if file_name.ends_with(".csv") {
            Some((file_name.as_str().into(), read_utf8(&file)?))
        } else {
            None
        });
    }
    let mut loaded: Vec<(&schema::Table, String, Vec<Row<'_>>, Vec<String>)> = Vec::new();
    for (entry, text) in manifest.table.iter().zip(&texts) {
        let name = schema::qualify(&entry.name);
        let table = tables.get(&name).with_context(|| {
            let guess = openeu_env::closest_match(&name, tables.keys().map(String::as_str))
                .map(|t| {
                    format!(
                        "; did you mean `{}`?",
                        t.strip_prefix("public.").unwrap_or(t)
                    )
                })
                .unwrap_or_default();
            format!(
                "{}: table `{}` does not exist after the migrations (nor in Supabase){guess}",
                manifest_path.display(),
                entry.name
            )
        })?;
        let file_name = entry
            .file
            .clone()
            .unwrap_or_else(|| format!("{}.toml", entry.name));
        let file = dir.join(&file_name);
        let (mut rows, explicit) = match text {
            Some((name, text)) => (load_csv(text, name, threads)?, false),
            None => match load_toml(&file)? {
                Some(rows) => (rows, true),
                None => (Vec::new(), false),
            },
        };
        match (rows.is_empty(), entry.empty) {
            (true, false) if !explicit => bail!(
                "{}: {file_name} (table `{}`) has no rows; an empty fixture is almost always a mistake: add rows, or say \"no rows\" on purpose with `empty = true` in its [[table]] entry{}",
                manifest_path.display(),
                entry.name,
                if text.is_none() {
                    " or `row = []` in the file"
                } else {
                    ""
                }
            ),
            (false, true) => bail!(
                "{}: table `{}` is declared `empty = true`, but {file_name} has {} row(s)",
                manifest_path.display(),
                entry.name,
                rows.len()
            ),
            _ => {}
        }
        derive(&mut rows, &entry.derive, table, &manifest_path)?;
        let columns = check_rows(table, &rows, &file_name, threads)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A bad manifest key is named with its line and column in serde's words.
    #[test]
    fn bad_manifest_keys_are_named_with_their_place() {
        let parse = |text: &str| toml::from_str::<Manifest>(text).err().unwrap().to_string();
        let cases = [
            (
                "batch-rows = 3\n[[table]]\nname = \"a\"\n",
                "line 1, column 1",
                "unknown field `batch-rows`, expected `batch_rows` or `table`",
            ),
            (
                "batch_rows = 3\n",
                "line 1, column 1",
                "missing field `table`",
            ),
            (
                "batch_rows = \"3\"\n[[table]]\nname = \"a\"\n",
                "line 1, column 14",
                "invalid type: string \"3\", expected usize",
            ),
            (
                "[[table]]\nname = \"a\"\nfiel = \"x\"\n",
                "line 3, column 1",
                "unknown field `fiel`, expected one of `name`, `file`, `derive`, `empty`",
            ),
            (
                "[[table]]\nfile = \"a.toml\"\n",
                "line 1, column 1",
                "missing field `name`",
            ),
            (
                "[[table]]\nname = \"a\"\nempty = \"yes\"\n",
                "line 3, column 9",
                "invalid type: string \"yes\", expected a boolean",
            ),
        ];
        for (text, place, message) in cases {
            let err = parse(text);
            assert!(err.contains(place), "{place} in {err}");
            assert!(err.trim_end().ends_with(message), "{message} in {err}");
        }
        let manifest: Manifest = toml::from_str("[[table]]\nname = \"a\"\n").unwrap();
        assert_eq!(
            (
                manifest.batch_rows,
                manifest.table.len(),
                manifest.table[0].empty
            ),
            (None, 1, false)
        );
    }
}
