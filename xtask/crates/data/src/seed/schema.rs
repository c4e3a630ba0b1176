//! The schema the seed will meet: whatever supabase/local/supabase-compat.sql (what Supabase
//! provides, such as auth.users) and the migrations produce, in order. It is not guessed from
//! the SQL text: the files are applied to a throwaway PostgreSQL 15 (openeu-testdb) and the
//! catalog is read back, so every DDL statement counts (ADD, DROP and RENAME COLUMN, type and
//! nullability changes, DROP and RENAME TABLE, defaults, generated columns, constraints added
//! later), exactly as the database will have it.
//!
//! Starting PostgreSQL costs about a second, so the result is cached under the target
//! directory by a hash of the files' names and contents: when nothing changed, `seed --check`
//! reads one small JSON file.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use xtask_core::{files::hex, process, progress};

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
    /// A type the seed cannot write (tsvector, bytea, …), as PostgreSQL spells it.
    Other(String),
}

impl Type {
    /// The seed's type of a PostgreSQL type, by its catalog name (`pg_type.typname`, the base
    /// type of a domain); `display` is `format_type()`, kept for the types the seed cannot write.
    pub fn from_catalog(typname: &str, display: &str) -> Type {
        match typname {
            "text" | "varchar" | "bpchar" | "citext" | "name" => Type::Text,
            "_text" | "_varchar" | "_bpchar" => Type::TextArray,
            "int2" | "int4" | "int8" => Type::Integer,
            "numeric" | "float4" | "float8" => Type::Numeric,
            "bool" => Type::Boolean,
            "date" => Type::Date,
            "timestamptz" => Type::Timestamptz,
            "uuid" => Type::Uuid,
            "json" | "jsonb" => Type::Json,
            _ => Type::Other(display.to_owned()),
        }
    }

    /// A catalog name and display that [`Type::from_catalog`] reads back as this type: the
    /// cache stores tables as the catalog query prints them.
    fn to_catalog(&self) -> (&str, &str) {
        match self {
            Type::Text => ("text", "text"),
            Type::Integer => ("int8", "bigint"),
            Type::Numeric => ("numeric", "numeric"),
            Type::Boolean => ("bool", "boolean"),
            Type::Date => ("date", "date"),
            Type::Timestamptz => ("timestamptz", "timestamp with time zone"),
            Type::Uuid => ("uuid", "uuid"),
            Type::Json => ("jsonb", "jsonb"),
            Type::TextArray => ("_text", "text[]"),
            // No catalog name is empty, so this reads back as `Other`.
            Type::Other(display) => ("", display),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub ty: Type,
    pub not_null: bool,
    pub has_default: bool,
    /// Generated (`GENERATED ALWAYS AS … STORED`, or an identity `GENERATED ALWAYS`): the seed
    /// must not write it.
    pub generated: bool,
    /// `(table, column)` this column references (single-column foreign keys).
    pub references: Option<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Table {
    /// Schema-qualified: `public.meetings`.
    pub name: String,
    /// In the table's column order (`attnum`): what `INSERT` lists follow.
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
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

/// Bumped whenever the catalog query or the cached shape changes, so old caches are not read.
const CACHE_VERSION: &str = "seed-schema-v2";

/// The cache key of `files`: their names and contents, in order.
pub fn hash(files: &[PathBuf]) -> Result<String> {
    let mut hasher = Sha256::new();
    hasher.update(CACHE_VERSION.as_bytes());
    for file in files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        hasher.update(name.unwrap_or_default().as_bytes());
        hasher.update(b"\0");
        hasher.update(Sha256::digest(&bytes));
    }
    Ok(hex(&hasher.finalize())[..32].to_owned())
}

/// Every table that `files` leave behind, by qualified name, from the cache in `cache_dir`
/// when the files have not changed, else from a throwaway PostgreSQL (and then cached).
pub fn load(files: &[PathBuf], cache_dir: Option<&Path>) -> Result<BTreeMap<String, Table>> {
    crate::db::statements::refuse_transaction_control_in(files.iter().map(PathBuf::as_path))?;
    let key = hash(files)?;
    let cached = cache_dir.map(|dir| dir.join(format!("{key}.json")));
    if let Some(path) = &cached
        && let Ok(text) = std::fs::read_to_string(path)
        && let Ok(tables) = parse_catalog(&text)
    {
        return Ok(by_name(tables));
    }
    let step = progress::step(format!(
        "reading the schema the {} migration(s) produce (a throwaway PostgreSQL; cached until they change)",
        files.len().saturating_sub(1)
    ));
    let tables = from_postgres(files)?;
    if let Some(path) = &cached {
        // Written beside and renamed, so a concurrent reader never sees half a file.
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        std::fs::write(&partial, catalog_json(&tables))
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    }
    step.done_with(&format!("{} tables", tables.len()));
    Ok(by_name(tables))
}

/// Loads `sql` (a rendered seed) into a throwaway PostgreSQL with `files` applied, in one
/// transaction: what the fixture checks cannot see (CHECK and UNIQUE constraints, triggers)
/// fails here, before the file is written or served. Remembered in `cache_dir` by the hash of
/// the files and of the SQL, so an unchanged seed is not loaded twice.
pub fn check_loads(files: &[PathBuf], sql: &str, cache_dir: Option<&Path>) -> Result<()> {
    let key = format!("{}-{}", hash(files)?, &hex(&Sha256::digest(sql))[..32]);
    let marker = cache_dir.map(|dir| dir.join(format!("{key}.loaded")));
    if marker.as_ref().is_some_and(|m| m.exists()) {
        return Ok(());
    }
    let step = progress::step(
        "loading the rendered seed into a throwaway PostgreSQL (CHECK and UNIQUE constraints)",
    );
    let dir = cache_dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let file = dir.join(format!("seed-check-{}.sql", std::process::id()));
    std::fs::write(&file, sql).with_context(|| format!("writing {}", file.display()))?;
    let loaded = openeu_testdb::Server::try_start(files, "")
        .and_then(|server| openeu_testdb::try_psql_file(server.port, &file));
    let _ = std::fs::remove_file(&file);
    if let Err(why) = loaded {
        let shown = file.display().to_string();
        // psql says `psql:<file>:<line>: ERROR: …`.
        let line = why
            .split(&format!("psql:{shown}:"))
            .nth(1)
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse::<usize>().ok());
        let why = why
            .replace(&format!("{shown}: "), "")
            .replace(&shown, "seed.sql");
        // Each batch of seed.sql starts with `-- <table> (<fixture>, rows a–b)`.
        let origin = line
            .and_then(|line| {
                sql.lines()
                    .take(line)
                    .filter(|l| l.starts_with("-- ") && l.contains(", rows "))
                    .last()
            })
            .map(|comment| {
                format!(
                    "\nthe failing row (its values are in the DETAIL line) comes from {}",
                    comment.trim_start_matches("-- ")
                )
            })
            .unwrap_or_default();
        bail!(
            "the rendered seed does not load into the schema the migrations produce; supabase/seed.sql was not written:\n{why}{origin}"
        );
    }
    if let Some(marker) = &marker {
        std::fs::write(marker, b"").with_context(|| format!("writing {}", marker.display()))?;
    }
    step.done();
    Ok(())
}

fn by_name(tables: Vec<Table>) -> BTreeMap<String, Table> {
    tables.into_iter().map(|t| (t.name.clone(), t)).collect()
}

/// Applies `files` to a fresh PostgreSQL (each in one transaction, stopping at the first error)
/// and reads every user table from its catalog.
fn from_postgres(files: &[PathBuf]) -> Result<Vec<Table>> {
    let server = openeu_testdb::Server::try_start(files, "").map_err(|why| {
        anyhow::anyhow!(
            "the migrations do not apply to a fresh PostgreSQL 15, so the seed cannot be checked against them:\n{why}"
        )
    })?;
    let mut cmd = openeu_testdb::psql_command(server.port);
    cmd.args(["-At", "-c", CATALOG_QUERY]);
    let out = process::output_with_timeout(cmd, None, Duration::from_secs(60))?;
    if !out.status.success() {
        bail!(
            "reading the schema from PostgreSQL's catalog: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    parse_catalog(&String::from_utf8_lossy(&out.stdout))
}

/// Every ordinary or partitioned table outside PostgreSQL's own schemas, as one JSON array:
/// columns in `attnum` order with their base type, nullability, default, generation and
/// single-column foreign key; the primary key in key order.
const CATALOG_QUERY: &str = r#"
select coalesce(json_agg(t order by t.name), '[]') from (
  select n.nspname || '.' || c.relname as name,
    coalesce((select json_agg(json_build_object(
        'name', a.attname,
        'typname', bt.typname,
        'display', format_type(a.atttypid, a.atttypmod),
        'not_null', a.attnotnull,
        'has_default', a.atthasdef or a.attidentity <> '',
        'generated', a.attgenerated <> '' or a.attidentity = 'a',
        'references', (
          select json_build_array(fn.nspname || '.' || fc.relname, fa.attname)
          from pg_constraint f
          join pg_class fc on fc.oid = f.confrelid
          join pg_namespace fn on fn.oid = fc.relnamespace
          join pg_attribute fa on fa.attrelid = f.confrelid and fa.attnum = f.confkey[1]
          where f.conrelid = c.oid and f.contype = 'f' and f.conkey = array[a.attnum]
          order by f.conname limit 1)
      ) order by a.attnum)
      from pg_attribute a
      join pg_type ty on ty.oid = a.atttypid
      join pg_type bt on bt.oid = case when ty.typtype = 'd' then ty.typbasetype else ty.oid end
      where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]') as columns,
    coalesce((select json_agg(a.attname order by k.ord)
      from pg_constraint p
      cross join unnest(p.conkey) with ordinality as k(attnum, ord)
      join pg_attribute a on a.attrelid = p.conrelid and a.attnum = k.attnum
      where p.conrelid = c.oid and p.contype = 'p'), '[]') as primary_key
  from pg_class c
  join pg_namespace n on n.oid = c.relnamespace
  where c.relkind in ('r', 'p')
    and n.nspname not in ('pg_catalog', 'information_schema')
    and n.nspname not like 'pg_toast%'
) t
"#;

/// The JSON that [`CATALOG_QUERY`] prints, as tables.
pub fn parse_catalog(json: &str) -> Result<Vec<Table>> {
    let tables: Vec<CatalogTable> =
        serde_json::from_str(json.trim()).context("parsing the catalog's JSON")?;
    Ok(tables
        .into_iter()
        .map(|t| Table {
            name: t.name,
            primary_key: t.primary_key,
            columns: t
                .columns
                .into_iter()
                .map(|c| Column {
                    ty: Type::from_catalog(&c.typname, &c.display),
                    name: c.name,
                    not_null: c.not_null,
                    has_default: c.has_default,
                    generated: c.generated,
                    references: c.references,
                })
                .collect(),
        })
        .collect())
}

/// `tables` as [`CATALOG_QUERY`] prints them, which [`parse_catalog`] reads back.
fn catalog_json(tables: &[Table]) -> String {
    let tables: Vec<CatalogTable> = tables
        .iter()
        .map(|t| CatalogTable {
            name: t.name.clone(),
            columns: t
                .columns
                .iter()
                .map(|c| {
                    let (typname, display) = c.ty.to_catalog();
                    CatalogColumn {
                        name: c.name.clone(),
                        typname: typname.to_owned(),
                        display: display.to_owned(),
                        not_null: c.not_null,
                        has_default: c.has_default,
                        generated: c.generated,
                        references: c.references.clone(),
                    }
                })
                .collect(),
            primary_key: t.primary_key.clone(),
        })
        .collect();
    serde_json::to_string(&tables).expect("the catalog serializes")
}

/// The catalog query may print more keys than these: they are ignored. The cache holds the
/// same shape.
#[derive(serde::Deserialize, serde::Serialize)]
struct CatalogTable {
    name: String,
    columns: Vec<CatalogColumn>,
    primary_key: Vec<String>,
}

#[derive(serde::Deserialize, serde::Serialize)]
struct CatalogColumn {
    name: String,
    typname: String,
    display: String,
    not_null: bool,
    has_default: bool,
    generated: bool,
    references: Option<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_types_map_to_what_the_seed_writes() {
        assert_eq!(
            Type::from_catalog("varchar", "character varying(20)"),
            Type::Text
        );
        assert_eq!(Type::from_catalog("_text", "text[]"), Type::TextArray);
        assert_eq!(Type::from_catalog("int8", "bigint"), Type::Integer);
        assert_eq!(
            Type::from_catalog("timestamptz", "timestamp with time zone"),
            Type::Timestamptz
        );
        // Not an integer, whatever its name starts with.
        assert_eq!(
            Type::from_catalog("interval", "interval"),
            Type::Other("interval".to_owned())
        );
    }

    #[test]
    fn catalog_json_becomes_tables() {
        let json = r#"[{"name":"public.t","columns":[
            {"name":"id","typname":"text","display":"text","not_null":true,"has_default":false,"generated":false,"references":null},
            {"name":"owner","typname":"uuid","display":"uuid","not_null":false,"has_default":false,"generated":false,"references":["auth.users","id"]},
            {"name":"v","typname":"tsvector","display":"tsvector","not_null":false,"has_default":true,"generated":true,"references":null}
        ],"primary_key":["id"]}]"#;
        let tables = parse_catalog(json).unwrap();
        let t = &tables[0];
        assert_eq!(t.primary_key, ["id"]);
        assert_eq!(
            t.column("owner").unwrap().references,
            Some(("auth.users".to_owned(), "id".to_owned()))
        );
        assert!(t.column("v").unwrap().generated);
        assert_eq!(
            t.column("v").unwrap().ty,
            Type::Other("tsvector".to_owned())
        );
    }

    #[test]
    fn cached_catalog_reads_back_the_same_tables() {
        let all = [
            Type::Text,
            Type::Integer,
            Type::Numeric,
            Type::Boolean,
            Type::Date,
            Type::Timestamptz,
            Type::Uuid,
            Type::Json,
            Type::TextArray,
            Type::Other("tsvector".to_owned()),
        ];
        let table = Table {
            name: "public.t".to_owned(),
            columns: all
                .iter()
                .enumerate()
                .map(|(i, ty)| Column {
                    name: format!("c{i}"),
                    ty: ty.clone(),
                    not_null: i % 2 == 0,
                    has_default: i % 3 == 0,
                    generated: i == 4,
                    references: (i == 1).then(|| ("public.u".to_owned(), "id".to_owned())),
                })
                .collect(),
            primary_key: vec!["c0".to_owned()],
        };
        let back = parse_catalog(&catalog_json(std::slice::from_ref(&table))).unwrap();
        assert_eq!(format!("{back:?}"), format!("{:?}", [table]));
    }

    /// A damaged cache is refused with serde_json's place and words (the caller then reads
    /// the schema again rather than trusting it).
    #[test]
    fn damaged_caches_are_refused() {
        let parse = |text: &str| format!("{:#}", parse_catalog(text).err().unwrap());
        let cases = [
            (
                r#"[{"name": "t", "columns": []}]"#,
                "line 1 column 29",
                "parsing the catalog's JSON: missing field `primary_key` at line 1 column 29",
            ),
            (
                r#"[{"name": "t", "columns": [{"name": "c"}], "primary_key": []}]"#,
                "line 1 column 40",
                "parsing the catalog's JSON: missing field `typname` at line 1 column 40",
            ),
            (
                r#"[{"name": 1, "columns": [], "primary_key": []}]"#,
                "line 1 column 11",
                "parsing the catalog's JSON: invalid type: integer `1`, expected a string at line 1 column 11",
            ),
            (
                r#"[{"name": "t", "columns": [], "primary_key": [], "extra": 1}, 3]"#,
                "line 1 column 63",
                "parsing the catalog's JSON: invalid type: integer `3`, expected struct CatalogTable at line 1 column 63",
            ),
            (
                r#"{"name": "t"}"#,
                "line 1 column 0",
                "parsing the catalog's JSON: invalid type: map, expected a sequence at line 1 column 0",
            ),
        ];
        for (text, place, message) in cases {
            let err = parse(text);
            assert!(err.contains(place), "{place} in {err}");
            assert!(err.trim_end().ends_with(message), "{message} in {err}");
        }
    }
}
