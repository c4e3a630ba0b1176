//! The pure parts of previews: docker names from branch names, the port a branch prefers, and
//! sizes as people read them (ages are xtask-core's `time`). No shell, no docker: unit-tested
//! below.

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
}
