//! The pure parts of previews: docker names from branch names, the port a branch prefers, and
//! ages and sizes as people read them. No shell, no docker: unit-tested below.

use std::time::Duration;

use sha2::{Digest, Sha256};

use xtask_core::files::hex;

/// The loopback ports local previews are published on: a branch's port is derived from its
/// name, so it stays the same across restarts, and probed for collisions inside this range.
pub const PORT_RANGE: std::ops::Range<u16> = 18000..19000;

/// A preview's database is published this far above its API: both ports are known from the
/// one recorded, so `list` asks the databases while it asks docker about the containers.
pub const DB_PORT_OFFSET: u16 = 1000;

/// The longest sanitised part of a name; the hash after it keeps names unique.
const MAX_SLUG: usize = 32;

/// A docker-safe, unique name for `branch`: lower-case letters, digits, `.`, `_` and `-` (the
/// rest become `-`), cut to a length, then a short hash of the raw name, so `feature/a` and
/// `feature-a` (which sanitise alike) never share a preview.
pub fn slug(branch: &str) -> String {
    let mut clean = String::new();
    for c in branch.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
            c
        } else {
            '-'
        };
        if c == '-' && clean.ends_with('-') {
            continue;
        }
        clean.push(c);
    }
    let clean: String = clean
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(MAX_SLUG)
        .collect();
    let clean = clean.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    let hash = &hex(&Sha256::digest(branch.as_bytes()))[..8];
    if clean.is_empty() {
        hash.to_owned()
    } else {
        format!("{clean}-{hash}")
    }
}

/// The port `branch` tries first, then the next ones (wrapping inside [`PORT_RANGE`]).
pub fn ports(branch: &str) -> impl Iterator<Item = u16> {
    let digest = Sha256::digest(branch.as_bytes());
    let size = u32::from(PORT_RANGE.end - PORT_RANGE.start);
    let first = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % size;
    (0..size).map(move |i| PORT_RANGE.start + ((first + i) % size) as u16)
}

/// `30s`, `45m`, `12h`, `3d`, `2w` (a bare number is seconds).
pub fn parse_age(text: &str) -> Result<Duration, String> {
    xtask_deploy::deploy::parse_with_units(
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

/// An age as people say it: `40s`, `12m`, `5h`, `3d`.
pub fn format_age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// Bytes in MiB with one decimal.
pub fn format_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_that_sanitise_alike_get_different_names() {
        let a = slug("feature/a");
        let b = slug("feature-a");
        assert!(a.starts_with("feature-a-"), "{a}");
        assert!(b.starts_with("feature-a-"), "{b}");
        assert_ne!(a, b);
        assert_eq!(slug("feature/a"), a, "stable");
        let odd = slug("Ünïcode/--weird..name__");
        assert!(
            odd.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)),
            "{odd}"
        );
        assert!(odd.chars().next().unwrap().is_ascii_alphanumeric());
        let long = slug(&"x".repeat(300));
        assert!(long.len() <= MAX_SLUG + 9, "{long}");
        assert_eq!(slug("///").len(), 8, "only the hash");
    }

    #[test]
    fn a_branch_prefers_one_port_and_probes_the_whole_range() {
        let first: Vec<u16> = ports("main").take(3).collect();
        assert_eq!(first, ports("main").take(3).collect::<Vec<_>>());
        assert!(first.iter().all(|p| PORT_RANGE.contains(p)));
        let all: std::collections::BTreeSet<u16> = ports("main").collect();
        assert_eq!(all.len(), PORT_RANGE.len());
    }

    #[test]
    fn ages_parse_and_print() {
        assert_eq!(parse_age("3d"), Ok(Duration::from_secs(3 * 86_400)));
        assert_eq!(parse_age("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_age("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert!(parse_age("3 days").is_err());
        assert!(parse_age("d").is_err());
        assert_eq!(format_age(59), "59s");
        assert_eq!(format_age(3 * 86_400 + 5), "3d");
        assert_eq!(format_age(7200), "2h");
    }
}
