//! `cargo xtask db reset` and the files it applies: the new database is built next to the old
//! one (the compatibility bootstrap, the migrations in timestamp order, the seed files of
//! supabase/config.toml expanded as the Supabase CLI does), each file in one transaction that
//! stops at the first error, and only then swapped in; `repair` finishes or rolls back a swap
//! that a kill interrupted.

use std::path::PathBuf;

use xtask_core::failpoint;

use super::*;

impl flags::DbReset {
    pub(super) fn run(self, ws: &Workspace, docker: &Docker<'_>) -> Result<()> {
        // The seed that is loaded is the one the fixtures say: a stale seed.sql is rendered
        // again (saying so) before anything is dropped.
        crate::seed::ensure_current(ws)
            .context("nothing was reset; the previous database is untouched")?;
        let files = files_to_apply(ws)?;
        let _lock = match &self.db_url {
            Some(_) => None,
            None => Some(lock::stack(ws, "db reset")?),
        };
        match &self.db_url {
            Some(url) => {
                let mut target = Target::from_url(url)?;
                let loopback = ["127.0.0.1", "localhost", "::1"].contains(&target.host.as_str());
                if !loopback && !self.yes {
                    bail!(
                        "refusing to reset {}:{}/{} (not on this machine) without --yes: it drops its public schema",
                        target.host,
                        target.port,
                        target.database
                    );
                }
                target.tls = xtask_core::pgtls::psql_env(url, self.allow_plaintext)?;
                reset_in_place(&target, &files)?;
                println!("reset {}:{}/{}", target.host, target.port, target.database);
            }
            None => {
                docker.require_engine()?;
                start(ws, docker, None)?;
                reset_local_files(ws, &files)?;
                println!("{}", local_url(ws));
            }
        }
        Ok(())
    }
}

/// The files a reset applies, in order: the compatibility bootstrap, the migrations by
/// timestamp, then the seed paths of supabase/config.toml (globs sorted, as the CLI does).
pub fn files_to_apply(ws: &Workspace) -> Result<Files> {
    let mut migrations = workspace::schema_files(&ws.root)?;
    let compat = migrations.remove(0);
    let config_path = ws.path(workspace::SUPABASE_CONFIG);
    let config: toml::Table = toml::from_str(
        &std::fs::read_to_string(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    )
    .map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
    let patterns: Vec<String> = config
        .get("db")
        .and_then(|d| d.get("seed"))
        .and_then(|s| s.get("sql_paths"))
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let seeds = seed_files(&ws.path("supabase"), &patterns, &config_path)?;
    // Before anything runs: a file that ends its own transaction would be half-applied.
    statements::refuse_transaction_control_in(
        migrations.iter().chain(&seeds).map(PathBuf::as_path),
    )?;
    Ok(Files {
        compat,
        migrations,
        seeds,
    })
}

pub struct Files {
    compat: PathBuf,
    migrations: Vec<PathBuf>,
    seeds: Vec<PathBuf>,
}

impl Files {
    /// Every file, in the order a reset applies them (what a preview's template is hashed from).
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.compat.as_path())
            .chain(self.migrations.iter().map(PathBuf::as_path))
            .chain(self.seeds.iter().map(PathBuf::as_path))
    }
}

/// The seed files of `[db.seed] sql_paths`, as the Supabase CLI finds them (its `config.Glob`
/// with Go's `fs.Glob`): each entry, relative to `dir` (supabase/) unless absolute, is a pattern
/// of `*`, `?` and `[...]` (`[^...]` negated) in any path segment, where `*` never crosses a `/`
/// and `**` is no more than `*`; each entry's matches sorted by path; a file that an earlier
/// entry matched is not applied twice. Directories that match are passed by (psql cannot apply
/// them). Where the CLI only warns about an entry that matches nothing, this is an error: a
/// reset that silently skips a seed file hides a typo. The matcher is the `glob` crate's.
pub(super) fn seed_files(dir: &Path, patterns: &[String], config: &Path) -> Result<Vec<PathBuf>> {
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in patterns {
        let pattern = go_pattern(&join_clean(dir, entry), dir).with_context(|| {
            format!("{}: [db.seed] sql_paths entry {entry:?}", config.display())
        })?;
        let paths = glob::glob_with(&pattern, options).with_context(|| {
            format!(
                "{}: [db.seed] sql_paths entry {entry:?} is not a valid pattern",
                config.display()
            )
        })?;
        let mut matched = Vec::new();
        for path in paths {
            let path =
                path.with_context(|| format!("{}: expanding {entry:?}", config.display()))?;
            if path.is_file() {
                matched.push(path);
            }
        }
        if matched.is_empty() {
            bail!(
                "{}: [db.seed] sql_paths entry {entry:?} matches no file",
                config.display()
            );
        }
        // Go's sort.Strings: byte order of the whole path, not the walk's order per directory.
        matched.sort_by(|a, b| {
            a.as_os_str()
                .as_encoded_bytes()
                .cmp(b.as_os_str().as_encoded_bytes())
        });
        for path in matched {
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// `dir` joined with `pattern` and cleaned as Go's `path.Join` does (`.` segments dropped, `..`
/// taking back a segment), so `./seed.sql` and `seed/../seed.sql` name one file.
pub(super) fn join_clean(dir: &Path, pattern: &str) -> String {
    let joined = if pattern.starts_with('/') {
        pattern.to_owned()
    } else {
        format!("{}/{pattern}", dir.to_string_lossy())
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let clean = parts.join("/");
    if joined.starts_with('/') {
        format!("/{clean}")
    } else {
        clean
    }
}

/// A Go `path.Match` pattern in the `glob` crate's spelling: Go negates a class with `[^`, the
/// crate with `[!`; Go's `**` is two `*` in one segment, the crate's a walk through directories.
/// Go's `\` escape has no spelling in the crate, so it is refused rather than read otherwise.
/// The segments that `pattern` shares with `dir` (the workspace's own path, which the CLI never
/// reads as a pattern) are escaped.
pub(super) fn go_pattern(pattern: &str, dir: &Path) -> Result<String> {
    let dir = dir.to_string_lossy();
    let mut literal = 0;
    for (i, _) in pattern.match_indices('/').chain([(pattern.len(), "")]) {
        if i > 0
            && dir.starts_with(&pattern[..i])
            && matches!(dir.as_bytes().get(i), None | Some(b'/'))
        {
            literal = i;
        }
    }
    let (literal, pattern) = pattern.split_at(literal);
    if pattern.contains('\\') {
        bail!(
            "the pattern {pattern:?} has a `\\` escape, which xtask does not read; use `[*]` for a literal `*`"
        );
    }
    let mut out = glob::Pattern::escape(literal);
    let mut in_class = false;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('!');
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '*' if !in_class && out.ends_with('*') => {}
            _ => out.push(c),
        }
    }
    Ok(out)
}

pub(super) fn apply(target: &Target, files: &Files) -> Result<()> {
    target.run_file(&files.compat)?;
    for migration in &files.migrations {
        let step = progress::step(format!(
            "migration {}",
            migration
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("?")
        ));
        target.run_file(migration)?;
        let version = migration
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split('_').next())
            .unwrap_or_default();
        if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) {
            target.run_sql(&format!(
                "insert into supabase_migrations.schema_migrations (version) values ('{version}') on conflict do nothing"
            ))?;
        }
        step.done();
    }
    for seed in &files.seeds {
        let step = progress::step(format!("seed {}", seed.display()));
        target.run_file(seed)?;
        step.done();
    }
    Ok(())
}

/// Builds the new database next to the current one and swaps them only when it is complete.
pub fn reset_local_files(ws: &Workspace, files: &Files) -> Result<()> {
    let admin = Target::local(ws, "template1");
    admin.run_sql(&format!(
        "drop database if exists {NEXT_DATABASE} with (force)"
    ))?;
    admin.run_sql(&format!("create database {NEXT_DATABASE}"))?;
    failpoint::hit("db-reset:after-create-next");
    let next = Target::local(ws, NEXT_DATABASE);
    if let Err(err) = apply(&next, files) {
        let _ = admin.run_sql(&format!(
            "drop database if exists {NEXT_DATABASE} with (force)"
        ));
        return Err(err.context("the reset stopped; the previous database is untouched"));
    }
    admin.run_sql(&format!(
        "comment on database {NEXT_DATABASE} is '{COMPLETE_MARK}'"
    ))?;
    failpoint::hit("db-reset:after-apply");
    let step = progress::step("swapping in the new database");
    swap(&admin, true)?;
    step.done();
    Ok(())
}

/// Renames `openeu_next` to `postgres` (and `postgres`, when there is one, to
/// `openeu_previous`) in one transaction, then drops the previous database.
pub(super) fn swap(admin: &Target, has_current: bool) -> Result<()> {
    admin.run_sql(&format!(
        "drop database if exists {PREVIOUS_DATABASE} with (force)"
    ))?;
    failpoint::hit("db-reset:after-drop-previous");
    // A lock held elsewhere must not stall the swap for ever: the transaction fails instead.
    let mut script = String::from("set lock_timeout = '30s';\nbegin;\n");
    if has_current {
        // Connections to the current database would block its rename: end them, waiting up
        // to 5 s for each to go.
        script.push_str(&format!(
            "select count(pg_terminate_backend(pid, 5000)) from pg_stat_activity where datname = '{DATABASE}' and pid <> pg_backend_pid();\n\
             alter database {DATABASE} rename to {PREVIOUS_DATABASE};\n"
        ));
    }
    script.push_str(&format!(
        "alter database {NEXT_DATABASE} rename to {DATABASE};\n\
         comment on database {DATABASE} is null;\n"
    ));
    let mut attempt = 0;
    loop {
        attempt += 1;
        // A killed process leaves the transaction open until psql sees its stdin close, and
        // PostgreSQL rolls it back: both renames or neither.
        let result = admin.run_script(
            &script,
            || failpoint::hit("db-reset:after-rename-old"),
            "commit;\n",
        );
        match result {
            Ok(()) => break,
            // A client reconnected between the terminate and the rename: try again.
            Err(err) if attempt < 3 && format!("{err:#}").contains("accessed by other users") => {
                progress::note("a client reconnected during the swap; trying again");
            }
            Err(err) => {
                return Err(err.context("swapping in the new database (nothing was swapped)"));
            }
        }
    }
    failpoint::hit("db-reset:after-swap");
    admin.run_sql(&format!(
        "drop database if exists {PREVIOUS_DATABASE} with (force)"
    ))?;
    Ok(())
}

/// The databases an interrupted reset can leave, as the server reports them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Databases {
    pub(super) current: bool,
    /// `openeu_next`, and whether it carries the complete mark.
    pub(super) next: Option<bool>,
    pub(super) previous: bool,
}

/// What `repair` does about `found`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Repair {
    Nothing,
    /// The new database is complete: swap it in (a kill came before the swap committed).
    FinishSwap {
        has_current: bool,
    },
    /// The swap committed; only the previous database is left to drop.
    DropPrevious,
    /// The new database is incomplete: drop it; `postgres` keeps the previous data.
    DropNext,
    /// No `postgres`, no complete new one: the previous data becomes `postgres` again.
    RestorePrevious {
        drop_next: bool,
    },
    /// Nothing to restore: an empty `postgres`, for `db reset` to fill.
    CreateEmpty {
        drop_next: bool,
    },
}

impl Databases {
    pub(super) fn plan(&self) -> Repair {
        match (self.current, self.next, self.previous) {
            (true, None, false) => Repair::Nothing,
            (true, None, true) => Repair::DropPrevious,
            (true, Some(false), _) => Repair::DropNext,
            (has_current, Some(true), _) => Repair::FinishSwap { has_current },
            (false, next, true) => Repair::RestorePrevious {
                drop_next: next.is_some(),
            },
            (false, next, false) => Repair::CreateEmpty {
                drop_next: next.is_some(),
            },
        }
    }
}

/// Recognises an interrupted `db reset` (`openeu_next` or `openeu_previous` present, or
/// `postgres` missing) and finishes or rolls back its swap, keeping the newest complete data.
/// Every command that touches the local database runs it first (through `start`).
pub fn repair(ws: &Workspace) -> Result<()> {
    let admin = Target::local(ws, "template1");
    let listed = admin.run_sql(&format!(
        "select datname || '|' || coalesce(shobj_description(oid, 'pg_database'), '') from pg_database \
         where datname in ('{DATABASE}', '{NEXT_DATABASE}', '{PREVIOUS_DATABASE}')"
    ))?;
    let mut found = Databases::default();
    for line in listed.lines() {
        let (name, comment) = line.split_once('|').unwrap_or((line, ""));
        match name {
            DATABASE => found.current = true,
            NEXT_DATABASE => found.next = Some(comment == COMPLETE_MARK),
            PREVIOUS_DATABASE => found.previous = true,
            _ => {}
        }
    }
    let drop_next = || {
        admin.run_sql(&format!(
            "drop database if exists {NEXT_DATABASE} with (force)"
        ))
    };
    let said = match found.plan() {
        Repair::Nothing => return Ok(()),
        Repair::FinishSwap { has_current } => {
            swap(&admin, has_current)?;
            "finished it: its new database was complete and is now `postgres`"
        }
        Repair::DropPrevious => {
            admin.run_sql(&format!(
                "drop database if exists {PREVIOUS_DATABASE} with (force)"
            ))?;
            "finished it: the swap had committed; dropped the previous database"
        }
        Repair::DropNext => {
            drop_next()?;
            admin.run_sql(&format!(
                "drop database if exists {PREVIOUS_DATABASE} with (force)"
            ))?;
            "rolled it back: dropped its incomplete new database; `postgres` keeps the previous data"
        }
        Repair::RestorePrevious { drop_next: next } => {
            if next {
                drop_next()?;
            }
            admin.run_sql(&format!(
                "alter database {PREVIOUS_DATABASE} rename to {DATABASE}"
            ))?;
            "rolled it back: the previous data is `postgres` again"
        }
        Repair::CreateEmpty { drop_next: next } => {
            if next {
                drop_next()?;
            }
            admin.run_sql(&format!("create database {DATABASE}"))?;
            "there was no data to keep: created an empty `postgres`; `cargo xtask db reset` fills it"
        }
    };
    progress::note(format!(
        "repaired an interrupted `db reset` on 127.0.0.1:{}: {said}",
        ws.config.db_port
    ));
    Ok(())
}

/// A database we cannot rename (not ours): its public schema and migration history are
/// dropped and rebuilt in place.
pub(super) fn reset_in_place(target: &Target, files: &Files) -> Result<()> {
    target.run_sql(
        "drop schema if exists public cascade; create schema public; grant usage on schema public to public; \
         do $$ begin if to_regclass('supabase_migrations.schema_migrations') is not null then \
         delete from supabase_migrations.schema_migrations; end if; end $$",
    )?;
    apply(target, files)
}
