//! `cargo xtask db push`, and the migrate step of `cargo xtask deploy`: the pending migrations
//! of supabase/migrations/ to a remote database, with the history written in the Supabase CLI's
//! format (`supabase_migrations.schema_migrations`: `version`, `name`, `statements`), so
//! `supabase migration list` agrees with what xtask applied.
//!
//! Like the CLI, it refuses drift (the database has a version the repository lacks) and a
//! pending migration older than the newest applied one, naming the versions. Each pending
//! migration runs in its own transaction together with its history row (`psql -1 -f migration
//! -f history`), stopping at the first error, which psql reports with the file and line.
//!
//! The connection goes to psql through `PG*` environment variables only: a database URL holds
//! a password, and argv is readable by every user of the machine.

use std::{
    collections::BTreeSet,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use openeu_env::percent_decode;

use xtask_core::{
    process, progress,
    workspace::{self, Workspace},
};

use super::statements;
use crate::flags;

/// The history table as the Supabase CLI creates it (it adds the columns to older tables).
const HISTORY_DDL: &str = "create schema if not exists supabase_migrations;\n\
create table if not exists supabase_migrations.schema_migrations (version text not null primary key);\n\
alter table supabase_migrations.schema_migrations add column if not exists statements text[];\n\
alter table supabase_migrations.schema_migrations add column if not exists name text;\n";

/// `db push --json`: the database (without its password) and the migrations applied, or with
/// `--dry-run` pending. The fields are in alphabetical order, the order the keys have always
/// been printed in.
#[derive(serde::Serialize)]
struct PushJson {
    applied: Vec<String>,
    database: String,
    dry_run: bool,
    pending: Vec<String>,
}

impl flags::DbPush {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let url = match self.db_url {
            Some(url) => url,
            None => std::env::var(DB_URL_VAR)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .with_context(|| {
                    format!("no database to push to: pass --db-url URL or set {DB_URL_VAR}")
                })?,
        };
        let conn = Conn::from_url(&url)?;
        let plan = plan(ws, &conn)?;
        if !self.dry_run {
            apply(ws, &conn, &plan.pending)?;
        }
        if self.json {
            let (applied, pending) = if self.dry_run {
                (Vec::new(), plan.pending_versions())
            } else {
                (plan.pending_versions(), Vec::new())
            };
            let report = PushJson {
                applied,
                database: conn.display(),
                dry_run: self.dry_run,
                pending,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else if plan.pending.is_empty() {
            println!("{}: up to date", conn.display());
        } else {
            for m in &plan.pending {
                let verb = if self.dry_run {
                    "would apply"
                } else {
                    "applied"
                };
                println!("{verb} {}", m.file_name());
            }
        }
        Ok(())
    }
}

/// The environment variable that holds the production database's URL (see the env spec).
pub const DB_URL_VAR: &str = "PRODUCTION_DATABASE_URL";

/// A PostgreSQL connection for psql, from a URL; the password is only ever in `PGPASSWORD`.
#[derive(Clone)]
pub struct Conn {
    pub host: String,
    pub port: u16,
    pub user: String,
    password: String,
    pub database: String,
    sslmode: Option<String>,
}

impl Conn {
    pub fn from_url(url: &str) -> Result<Conn> {
        let parsed = openeu_env::parse_url(url)
            .filter(|u| u.scheme == "postgres" || u.scheme == "postgresql")
            .context("the database URL must be a postgres:// or postgresql:// URL")?;
        let password = url
            .split_once("://")
            .and_then(|(_, rest)| {
                let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
                authority.rsplit_once('@')
            })
            .and_then(|(info, _)| info.split_once(':'))
            .map(|(_, p)| percent_decode(p))
            .unwrap_or_default();
        let (path, query) = parsed.rest.split_once('?').unwrap_or((parsed.rest, ""));
        let sslmode = query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(k, _)| *k == "sslmode")
            .map(|(_, v)| v.to_owned());
        Ok(Conn {
            host: parsed.host.trim_matches(['[', ']']).to_owned(),
            port: parsed.port.unwrap_or(5432),
            user: percent_decode(parsed.user.unwrap_or("postgres")),
            password,
            database: Some(path.trim_start_matches('/'))
                .filter(|d| !d.is_empty())
                .map_or_else(|| "postgres".to_owned(), percent_decode),
            sslmode,
        })
    }

    /// `host:port/database`, never the password.
    pub fn display(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }

    /// psql with the whole connection in its environment, and no startup file.
    pub fn psql(&self) -> Command {
        let mut cmd = process::command("psql");
        cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGPASSWORD", &self.password)
            .env("PGDATABASE", &self.database)
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGAPPNAME", "openeu-xtask");
        if let Some(mode) = &self.sslmode {
            cmd.env("PGSSLMODE", mode);
        }
        cmd
    }

    /// Runs `sql`; its rows as `|`-separated lines.
    pub fn query(&self, sql: &str) -> Result<String> {
        let mut cmd = self.psql();
        cmd.args(["-At", "-c", sql]);
        let out = process::output_with_timeout(cmd, None, Duration::from_mins(2))?;
        if !out.status.success() {
            bail!(
                "psql on {}: {}",
                self.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// One migration file of the repository.
#[derive(Clone, Debug)]
pub struct Migration {
    pub version: String,
    pub name: String,
    pub path: PathBuf,
}

impl Migration {
    pub fn file_name(&self) -> String {
        format!("{}_{}.sql", self.version, self.name)
    }
}

/// The repository's migrations, by version. Names follow the CLI: `<digits>_<name>.sql`; any
/// other file in the directory is an error, as the CLI would skip it silently.
pub fn local_migrations(root: &Path) -> Result<Vec<Migration>> {
    let dir = root.join(workspace::MIGRATIONS_DIR);
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        let Some((version, name)) = stem
            .split_once('_')
            .filter(|(v, _)| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        else {
            bail!(
                "{}: a migration file is named <version>_<name>.sql (cargo xtask migration new NAME)",
                path.display()
            );
        };
        found.push(Migration {
            version: version.to_owned(),
            name: name.to_owned(),
            path: path.clone(),
        });
    }
    found.sort_by(|a, b| a.version.cmp(&b.version));
    for pair in found.windows(2) {
        if pair[0].version == pair[1].version {
            bail!(
                "two migrations have version {}: {} and {}",
                pair[0].version,
                pair[0].path.display(),
                pair[1].path.display()
            );
        }
    }
    Ok(found)
}

/// What a push would do.
#[derive(Debug)]
pub struct Plan {
    pub applied: Vec<String>,
    pub pending: Vec<Migration>,
}

impl Plan {
    pub fn pending_versions(&self) -> Vec<String> {
        self.pending.iter().map(Migration::file_name).collect()
    }
}

/// Compares the repository with the database's history; refuses drift and out-of-order
/// pending migrations, naming the versions. Changes nothing.
pub fn plan(ws: &Workspace, conn: &Conn) -> Result<Plan> {
    plan_with(ws, |sql| conn.query(sql))
}

/// [`plan`] with the queries run by `query` (the deploy runs them in its lock's session).
pub fn plan_with(ws: &Workspace, mut query: impl FnMut(&str) -> Result<String>) -> Result<Plan> {
    let local = local_migrations(&ws.root)?;
    let exists = query("select to_regclass('supabase_migrations.schema_migrations') is not null;")?;
    let applied: Vec<String> = if exists.trim() == "t" {
        query("select version from supabase_migrations.schema_migrations order by version;")?
            .lines()
            .map(str::to_owned)
            .collect()
    } else {
        Vec::new()
    };
    compare(&local, &applied)
}

/// The pure part of [`plan`].
pub fn compare(local: &[Migration], applied: &[String]) -> Result<Plan> {
    let local_versions: BTreeSet<&str> = local.iter().map(|m| m.version.as_str()).collect();
    let drift: Vec<&str> = applied
        .iter()
        .map(String::as_str)
        .filter(|v| !local_versions.contains(v))
        .collect();
    if !drift.is_empty() {
        bail!(
            "the database has migrations that {} lacks: {}; pull them into the repository (supabase migration fetch) or repair the history (supabase migration repair --status reverted {})",
            workspace::MIGRATIONS_DIR,
            drift.join(", "),
            drift.join(" ")
        );
    }
    let applied_set: BTreeSet<&str> = applied.iter().map(String::as_str).collect();
    let newest = applied.iter().max();
    let pending: Vec<Migration> = local
        .iter()
        .filter(|m| !applied_set.contains(m.version.as_str()))
        .cloned()
        .collect();
    if let Some(newest) = newest {
        let older: Vec<String> = pending
            .iter()
            .filter(|m| &m.version < newest)
            .map(Migration::file_name)
            .collect();
        if !older.is_empty() {
            bail!(
                "pending migrations are older than the newest applied one ({newest}): {}; rename them with a later timestamp (cargo xtask migration new) so they apply in order",
                older.join(", ")
            );
        }
    }
    Ok(Plan {
        applied: applied.to_vec(),
        pending,
    })
}

/// Applies `pending` in order, each in its own transaction with its history row.
pub fn apply(ws: &Workspace, conn: &Conn, pending: &[Migration]) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    statements::refuse_transaction_control_in(pending.iter().map(|m| m.path.as_path()))?;
    let mut cmd = conn.psql();
    cmd.args(["-c", HISTORY_DDL]);
    let out = process::output_with_timeout(cmd, None, Duration::from_mins(1))?;
    if !out.status.success() {
        bail!(
            "creating the migration history on {}: {}",
            conn.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let scratch = ws.scratch("db-push")?;
    for migration in pending {
        let step = progress::step(format!("migration {}", migration.file_name()));
        let sql = std::fs::read_to_string(&migration.path)
            .with_context(|| format!("reading {}", migration.path.display()))?;
        // Per process: pushes from several checkouts may share the target directory.
        let history = scratch.join(format!(
            "{}-{}.history.sql",
            migration.version,
            std::process::id()
        ));
        let mut file = std::fs::File::create(&history)
            .with_context(|| format!("writing {}", history.display()))?;
        file.write_all(history_sql(migration, &sql).as_bytes())?;
        drop(file);
        let mut cmd = conn.psql();
        cmd.arg("--single-transaction")
            .arg("-f")
            .arg(&migration.path)
            .arg("-f")
            .arg(&history);
        let out = process::output_with_timeout(cmd, None, Duration::from_mins(30))?;
        let _ = std::fs::remove_file(&history);
        if !out.status.success() {
            bail!(
                "{} failed on {}; nothing of it was applied, and later migrations were not tried:\n{}",
                migration.path.display(),
                conn.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        step.done();
    }
    Ok(())
}

/// Checks that `pending` apply cleanly: all of them in one transaction that is rolled back.
/// A migration that controls transactions itself is refused first: run inside this
/// transaction, its COMMIT would make the check's changes real.
pub fn check_apply(conn: &Conn, pending: &[Migration]) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    statements::refuse_transaction_control_in(pending.iter().map(|m| m.path.as_path()))?;
    let mut cmd = conn.psql();
    cmd.args(["-c", "begin"]);
    // psql runs -c and -f in order in one session; the final rollback undoes everything.
    for migration in pending {
        cmd.arg("-f").arg(&migration.path);
    }
    cmd.args(["-c", "rollback"]);
    let out = process::output_with_timeout(cmd, None, Duration::from_mins(30))?;
    if !out.status.success() {
        bail!(
            "a pending migration does not apply to {} (checked in a transaction that was rolled back):\n{}",
            conn.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The history row of `migration`, as the Supabase CLI writes it: the file's statements, one
/// array element each.
fn history_sql(migration: &Migration, sql: &str) -> String {
    let statements: Vec<String> = statements::split(sql)
        .iter()
        .map(|s| literal(&s.text))
        .collect();
    format!(
        "set local standard_conforming_strings = on;\ninsert into supabase_migrations.schema_migrations (version, name, statements) values ({}, {}, array[{}]::text[]);\n",
        literal(&migration.version),
        literal(&migration.name),
        statements.join(", ")
    )
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(version: &str) -> Migration {
        Migration {
            version: version.to_owned(),
            name: "x".to_owned(),
            path: PathBuf::new(),
        }
    }

    #[test]
    fn drift_and_order_are_refused_with_versions() {
        let local = [m("20240101000000"), m("20240301000000")];
        let err = compare(&local, &["20240201000000".into()]).unwrap_err();
        assert!(err.to_string().contains("20240201000000"), "{err}");
        let err = compare(
            &[m("20240101000000"), m("20240301000000")],
            &["20240301000000".into()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("20240101000000_x.sql"), "{err}");
        let plan = compare(&local, &["20240101000000".into()]).unwrap();
        assert_eq!(plan.pending_versions(), ["20240301000000_x.sql"]);
    }

    #[test]
    fn urls_give_the_connection_with_a_decoded_password() {
        let conn = Conn::from_url(
            "postgresql://postgres.ref:p%40ss@db.example.com:6543/app?sslmode=require",
        )
        .unwrap();
        assert_eq!(conn.display(), "db.example.com:6543/app");
        assert_eq!(conn.user, "postgres.ref");
        assert_eq!(conn.password, "p@ss");
        assert_eq!(conn.sslmode.as_deref(), Some("require"));
    }
}
