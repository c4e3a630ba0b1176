//! `cargo xtask migration new NAME`: a new, empty migration in the Supabase CLI's naming,
//! `supabase/migrations/<YYYYMMDDHHMMSS>_<name>.sql`, the timestamp in UTC. The timestamp is
//! always after the newest existing migration's (bumped by a second when the clock says
//! otherwise), because the order of the files is the order they apply in, and the newest one is
//! the migration the service expects (crates/openeu-api/build.rs).

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use xtask_core::workspace::{self, Workspace};

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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_secs();
        let version = next_version(now, newest)?;
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
    parse_timestamp(version)
}

/// `now`, or one second after `newest` when that is not earlier: versions must increase.
fn next_version(now: u64, newest: Option<u64>) -> Result<String> {
    let seconds = match newest {
        Some(newest) if newest >= now => {
            let bumped = newest + 1;
            eprintln!(
                "    the newest migration ({}) is not before now ({}); using {}",
                format_timestamp(newest),
                format_timestamp(now),
                format_timestamp(bumped)
            );
            bumped
        }
        _ => now,
    };
    Ok(format_timestamp(seconds))
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

/// `YYYYMMDDHHMMSS` in UTC.
pub fn format_timestamp(epoch_seconds: u64) -> String {
    let days = (epoch_seconds / 86_400) as i64;
    let rest = epoch_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The seconds since the epoch of a `YYYYMMDDHHMMSS` UTC timestamp, if it is a valid one.
pub fn parse_timestamp(text: &str) -> Option<u64> {
    if text.len() != 14 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| text[range].parse::<i64>().ok();
    let (year, month, day) = (field(0..4)?, field(4..6)?, field(6..8)?);
    let (hour, minute, second) = (field(8..10)?, field(10..12)?, field(12..14)?);
    if !(1..=12).contains(&month) || day < 1 || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years, March-based years).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_in_utc() {
        assert_eq!(format_timestamp(0), "19700101000000");
        // 2024-02-29T23:59:59Z, a leap day.
        assert_eq!(format_timestamp(1_709_251_199), "20240229235959");
        assert_eq!(parse_timestamp("20240229235959"), Some(1_709_251_199));
        assert_eq!(parse_timestamp("20230229000000"), None, "no such day");
        assert_eq!(parse_timestamp("20261127000060"), None);
        for t in [0, 951_782_400, 1_798_675_199, 4_102_444_800] {
            assert_eq!(parse_timestamp(&format_timestamp(t)), Some(t));
        }
    }

    #[test]
    fn versions_only_increase() {
        let newest = parse_timestamp("20261127000059").unwrap();
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
            Some(parse_timestamp("20261127000000").unwrap())
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
