//! `cargo xtask migration new NAME`: a new, empty migration in the Supabase CLI's naming,
//! `supabase/migrations/<YYYYMMDDHHMMSS>_<name>.sql`, the timestamp in UTC. The timestamp is
//! always after the newest existing migration's (bumped by a second when the clock says
//! otherwise), because the order of the files is the order they apply in, and the newest one is
//! the migration the service expects (crates/openeu-api/build.rs).

use anyhow::{Context, Result, bail};

use xtask_core::{
    time::{format_compact, parse_compact},
    workspace::{self, Workspace},
};

use crate::flags;

impl flags::MigrationCommand {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self {
            flags::MigrationCommand::New(args) => args.run(ws),
        }
    }
}

impl flags::MigrationNew {
    fn run(self, ws: &Workspace) -> Result<()> {
        check_name(&self.name)?;
        let dir = ws.path(workspace::MIGRATIONS_DIR);
        let newest = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|name| version_of(&name))
            .max();
        let version = next_version(xtask_core::time::now(), newest)?;
        let relative = format!("{}/{version}_{}.sql", workspace::MIGRATIONS_DIR, self.name);
        let path = ws.path(&relative);
        std::fs::write(&path, template(&self.name))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("{relative}");
        eprintln!("    next: write the SQL in it, then");
        eprintln!(
            "          cargo xtask seed     (checks the fixtures against the new schema; rewrites supabase/seed.sql)"
        );
        eprintln!(
            "          cargo xtask up       (applies it to the local database; the service now expects {version})"
        );
        Ok(())
    }
}

/// Lower-case letters, digits and `_`, starting with a letter: the name is part of a file name
/// that other tools (the Supabase CLI, psql's messages) show, so it stays plain.
fn check_name(name: &str) -> Result<()> {
    let ok = name.len() <= 100
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        return Ok(());
    }
    let suggestion: String = name
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .split('_')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    let hint = if suggestion.starts_with(|c: char| c.is_ascii_lowercase()) {
        format!(", e.g. `cargo xtask migration new {suggestion}`")
    } else {
        String::new()
    };
    bail!(
        "migration name {name:?}: use lower-case letters, digits and `_`, starting with a letter (at most 100 characters){hint}"
    )
}

/// The version of a migration file name (`<14 digits>_<name>.sql`), as seconds since the epoch.
fn version_of(file_name: &str) -> Option<u64> {
    let (version, rest) = file_name.split_once('_')?;
    if !rest.ends_with(".sql") {
        return None;
    }
    parse_compact(version)
}

/// `now`, or one second after `newest` when that is not earlier: versions must increase.
fn next_version(now: u64, newest: Option<u64>) -> Result<String> {
    let seconds = match newest {
        Some(newest) if newest >= now => {
            let bumped = newest + 1;
            eprintln!(
                "    the newest migration ({}) is not before now ({}); using {}",
                format_compact(newest),
                format_compact(now),
                format_compact(bumped)
            );
            bumped
        }
        _ => now,
    };
    Ok(format_compact(seconds))
}

fn template(name: &str) -> String {
    format!(
        "-- {name}: created by `cargo xtask migration new`.\n\
         -- Applied in file-name order, each file in one transaction (`cargo xtask db reset`, `up`).\n\
         -- Expand first: add columns nullable or with a default, so the running service (which\n\
         -- expects the previous migration or a later one) keeps working; drop old ones later.\n\
         -- Guard with IF [NOT] EXISTS where you can.\n\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_only_increase() {
        let newest = parse_compact("20261127000059").unwrap();
        assert_eq!(
            next_version(newest - 10, Some(newest)).unwrap(),
            "20261127000100"
        );
        assert_eq!(
            next_version(newest, Some(newest)).unwrap(),
            "20261127000100"
        );
        assert_eq!(
            next_version(newest + 5, Some(newest)).unwrap(),
            "20261127000104"
        );
        assert_eq!(
            version_of("20261127000000_openeu_schema.sql"),
            Some(parse_compact("20261127000000").unwrap())
        );
        assert_eq!(version_of("README.md"), None);
    }

    #[test]
    fn names_are_plain() {
        assert!(check_name("add_room_to_meetings").is_ok());
        let err = check_name("Add room-to meetings").unwrap_err().to_string();
        assert!(err.contains("migration new add_room_to_meetings"), "{err}");
        assert!(check_name("1st").is_err());
        assert!(check_name("").is_err());
    }
}
