//! Dates, times and durations, in UTC and whole seconds: the clock as Unix seconds, RFC 3339
//! times (Render's and Supabase's `createdAt`, docker's `CreatedAt` once rewritten), the
//! `YYYYMMDDHHMMSS` of migration versions (the Supabase CLI's naming), and durations as people
//! type them (`15m`, `3d`) and read them (`3d`).
//!
//! Hand-written: what xtask needs is two conversions between day numbers and civil dates (Howard
//! Hinnant's `days_from_civil` and `civil_from_days`, proleptic Gregorian) and a few parsers, not
//! time zones or calendars, which are what a date crate would add to the cold compile. Whether a
//! text is a valid RFC 3339 time (leap years, ranges, offsets) is decided by
//! `openeu_env::is_timestamp`, the check the service itself applies to its query parameters.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;

/// Now, in seconds since the Unix epoch (0 for a clock set before 1970).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds since the epoch of an RFC 3339 time with a zone (`2026-11-28T10:00:00Z`,
/// `…T11:00:00.123+01:00`, `t` or a space for the `T`, seconds optional, fractions dropped);
/// None when it is not one, or is before 1970.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.len() <= 10 || !openeu_env::is_timestamp(text) {
        return None;
    }
    // is_timestamp has checked the shape, so every field is at its fixed place.
    let field = |at: usize| text.get(at..at + 2)?.parse::<i64>().ok();
    let year = text.get(0..4)?.parse::<i64>().ok()?;
    let (month, day, hour, minute) = (field(5)?, field(8)?, field(11)?, field(14)?);
    let second = if text.as_bytes()[16] == b':' {
        field(17)?
    } else {
        0
    };
    let offset = if text.ends_with(['Z', 'z']) {
        0
    } else {
        let zone = text.get(text.len() - 6..)?;
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        sign * (field(text.len() - 5)? * 3600 + field(text.len() - 2)? * 60)
    };
    let local = days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60 + second;
    u64::try_from(local - offset).ok()
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(epoch_seconds: u64) -> String {
    let (year, month, day, rest) = civil(epoch_seconds);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// `YYYYMMDDHHMMSS` (a migration version).
pub fn format_compact(epoch_seconds: u64) -> String {
    let (year, month, day, rest) = civil(epoch_seconds);
    format!(
        "{year:04}{month:02}{day:02}{:02}{:02}{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The seconds since the epoch of a `YYYYMMDDHHMMSS` time, if it is a valid one (no leap
/// seconds: migration versions are made by [`format_compact`]).
pub fn parse_compact(text: &str) -> Option<u64> {
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
    // A day past the month's end (February 30th) comes back as another date.
    if civil_from_days(days) != (year, month, day) {
        return None;
    }
    u64::try_from(days * DAY + hour * 3600 + minute * 60 + second).ok()
}

/// The date of `epoch_seconds` and the seconds into that day.
fn civil(epoch_seconds: u64) -> (i64, i64, i64, u64) {
    let days = i64::try_from(epoch_seconds / 86_400).expect("u64 seconds / 86400 fits in i64");
    let (year, month, day) = civil_from_days(days);
    (year, month, day, epoch_seconds % 86_400)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (eras of 400 years, March-based years,
/// so that the leap day is the last of its year).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
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

/// `15m`, `90s`, `1h` or plain seconds (deadlines: `--timeout`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    parse_with_units(
        text,
        "a duration like 15m, 90s or 1h",
        &[("s", 1), ("m", 60), ("h", 3600)],
    )
}

/// `30s`, `45m`, `12h`, `3d`, `2w` (a bare number is seconds): how old a thing may get.
pub fn parse_age(text: &str) -> Result<Duration, String> {
    parse_with_units(
        text,
        "an age like 3d, 12h or 30m",
        &[
            ("s", 1),
            ("m", 60),
            ("h", 3600),
            ("d", 86_400),
            ("w", 7 * 86_400),
        ],
    )
}

/// A number followed by one of `units` (name, seconds), or a bare number of seconds; `what`
/// says what was expected ("a duration like 15m, 90s or 1h").
fn parse_with_units(text: &str, what: &str, units: &[(&str, u64)]) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected {what}"))?;
    let Some((_, secs)) = units.iter().find(|(name, _)| *name == unit) else {
        let names: Vec<&str> = units.iter().map(|(name, _)| *name).collect();
        let (last, rest) = names.split_last().expect("at least one unit");
        return Err(format!(
            "`{text}`: the unit is {} or {last}",
            rest.join(", ")
        ));
    };
    n.checked_mul(*secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}`: too long"))
}

/// An age as people say it, in its largest whole unit: `40s`, `12m`, `5h`, `3d`.
pub fn format_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known instants, each as Unix seconds, RFC 3339 and a migration version.
    const KNOWN: &[(u64, &str, &str)] = &[
        (0, "1970-01-01T00:00:00Z", "19700101000000"),
        // The day after a century that is a leap year (2000 is divisible by 400).
        (951_782_400, "2000-02-29T00:00:00Z", "20000229000000"),
        (951_868_800, "2000-03-01T00:00:00Z", "20000301000000"),
        // The last second of a leap day.
        (1_709_251_199, "2024-02-29T23:59:59Z", "20240229235959"),
        (1_795_860_000, "2026-11-28T10:00:00Z", "20261128100000"),
        (1_798_761_599, "2026-12-31T23:59:59Z", "20261231235959"),
        // 2100 is not a leap year: February has 28 days.
        (4_107_542_400, "2100-03-01T00:00:00Z", "21000301000000"),
    ];

    #[test]
    fn known_instants_round_trip() {
        for &(seconds, rfc3339, compact) in KNOWN {
            assert_eq!(format_rfc3339(seconds), rfc3339);
            assert_eq!(parse_rfc3339(rfc3339), Some(seconds), "{rfc3339}");
            assert_eq!(format_compact(seconds), compact);
            assert_eq!(parse_compact(compact), Some(seconds), "{compact}");
        }
        // Every day for eight years across a century rule round-trips.
        let start = parse_compact("20960101000000").unwrap();
        for day in 0..8 * 366 {
            let t = start + day * 86_400 + 12_345;
            assert_eq!(parse_rfc3339(&format_rfc3339(t)), Some(t));
            assert_eq!(parse_compact(&format_compact(t)), Some(t));
        }
    }

    #[test]
    fn leap_days_exist_only_in_leap_years() {
        assert!(parse_compact("20240229000000").is_some());
        assert!(parse_compact("20000229000000").is_some());
        assert_eq!(
            parse_compact("20230229000000"),
            None,
            "2023 is no leap year"
        );
        assert_eq!(
            parse_compact("21000229000000"),
            None,
            "2100 is no leap year"
        );
        assert_eq!(parse_rfc3339("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2100-02-29T00:00:00Z"), None);
        assert_eq!(parse_compact("20260431000000"), None, "April has 30 days");
    }

    #[test]
    fn rfc3339_times_parse_with_offsets_and_fractions() {
        let ten = Some(1_795_860_000);
        assert_eq!(parse_rfc3339("2026-11-28T11:00:00.123+01:00"), ten);
        assert_eq!(parse_rfc3339("2026-11-28T05:30:00-04:30"), ten);
        assert_eq!(parse_rfc3339("2026-11-28 10:00:00.123456789Z"), ten);
        assert_eq!(parse_rfc3339("2026-11-28t10:00z"), ten);
        assert_eq!(parse_rfc3339(" 2026-11-28T10:00:00Z\n"), ten);
        // A leap second is the next second.
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            parse_rfc3339("2017-01-01T00:00:00Z")
        );
        for bad in [
            "yesterday",
            "2026-11-28",
            "2026-11-28T10:00:00",
            "2026-11-28T10:00:00+0100",
            "2026-11-28T24:00:00Z",
            "2026-13-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn compact_versions_refuse_what_is_no_time() {
        for bad in [
            "2026112700006",
            "202611270000600",
            "20261127000060",
            "20261127006000",
            "20261127240000",
            "20261300000000",
            "20261100000000",
            "2026112700000a",
            "+0261127000000",
        ] {
            assert_eq!(parse_compact(bad), None, "{bad}");
        }
    }

    #[test]
    fn durations_and_ages() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration(" 1h "), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("5 minutes").is_err());
        assert_eq!(
            parse_duration("3d").unwrap_err(),
            "`3d`: the unit is s, m or h"
        );
        assert_eq!(parse_age("3d"), Ok(Duration::from_secs(3 * 86_400)));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_age("3 days").is_err());
        assert!(parse_age("d").is_err());
        assert!(parse_age("99999999999999999999w").is_err());
        assert!(parse_age("9999999999999999999w").is_err(), "overflows u64");
        assert_eq!(format_age(59), "59s");
        assert_eq!(format_age(60), "1m");
        assert_eq!(format_age(7200), "2h");
        assert_eq!(format_age(3 * 86_400 + 5), "3d");
    }

    #[test]
    fn the_clock_is_after_this_code_was_written() {
        assert!(now() > parse_rfc3339("2026-01-01T00:00:00Z").unwrap());
    }
}
