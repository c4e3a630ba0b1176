//! `cargo xtask seed`: the golden fixture workspace, the real seed loaded into a real
//! PostgreSQL (twice: it must be re-applicable), a property test of string literals through a
//! real `SELECT`, and the bad-input suite (each a clear error, nothing written).

use std::path::{Path, PathBuf};

use crate::support::{TempDir, Xtask, append, copy_tree, fixture_rows, replace, repo_root};

/// The compat SQL and the migrations of `root`, in order, then `extra`.
fn schema_and(root: &Path, extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut files = openeu_testdb::supabase_schema(root);
    files.extend_from_slice(extra);
    files
}

fn golden_copy() -> TempDir {
    let dir = TempDir::new("seed-ws");
    copy_tree(&repo_root().join("xtask/test_data/seed-ws"), dir.path());
    dir
}

#[test]
fn the_golden_workspace_renders_byte_for_byte_and_loads() {
    let ws = golden_copy();
    Xtask::new(ws.path()).ok(&["seed", "--check"]);
    let seed = ws.path().join("supabase/seed.sql");
    let before = std::fs::read(&seed).unwrap();
    Xtask::new(ws.path()).ok(&["seed"]);
    assert_eq!(
        std::fs::read(&seed).unwrap(),
        before,
        "rendering is deterministic"
    );

    let db = openeu_testdb::Server::start(&schema_and(ws.path(), std::slice::from_ref(&seed)), "");
    assert_eq!(
        openeu_testdb::psql(db.port, "select count(*) from kinds"),
        "3"
    );
    assert_eq!(
        openeu_testdb::psql(db.port, "select label from kinds where id = 3"),
        "'); DROP TABLE kinds; --"
    );
    assert_eq!(
        openeu_testdb::psql(db.port, "select doc->'b'->>1 from kinds where id = 1"),
        "y'z"
    );
    assert_eq!(
        openeu_testdb::psql(
            db.port,
            "select note is null, (select note from bulk where n = 13) = '' from bulk where n = 12"
        ),
        "t|t"
    );
    assert_eq!(
        openeu_testdb::psql(db.port, "select tags[2] from kinds where id = 1"),
        "o'clock"
    );
}

#[test]
fn the_committed_seed_loads_into_the_migrated_schema_and_reapplies() {
    let root = repo_root();
    let seed = root.join("supabase/seed.sql");
    let db = openeu_testdb::Server::start(&schema_and(&root, std::slice::from_ref(&seed)), "");
    let tables = [
        "meetings",
        "topics",
        "meeting_topics",
        "legislative_files",
        "profiles",
    ];
    let counts = format!(
        "select {}",
        tables
            .map(|t| format!("(select count(*) from {t})"))
            .join(", ")
    );
    let counts = counts.as_str();
    let first = openeu_testdb::psql(db.port, counts);
    let expected = tables.map(|t| fixture_rows(&root, t).to_string()).join("|");
    assert_eq!(
        first,
        expected,
        "rows of {} in the database (left) and in supabase/seed/ (right)",
        tables.join("|")
    );
    // The sample data covers what the filters need: several sources and countries.
    let variety = openeu_testdb::psql(
        db.port,
        "select count(distinct source) >= 4 and count(distinct country) >= 6 from meetings",
    );
    assert_eq!(
        variety, "t",
        "at least 4 sources and 6 countries in the meetings"
    );
    // Re-applying to a persistent database changes nothing and fails on nothing.
    openeu_testdb::psql_file(db.port, &seed);
    assert_eq!(openeu_testdb::psql(db.port, counts), first);
    // It is loadable by Supabase's seeder: no COPY, no psql meta-commands, no transactions.
    let text = std::fs::read_to_string(&seed).unwrap();
    for line in text.lines() {
        let upper = line.trim_start().to_ascii_uppercase();
        assert!(!line.starts_with('\\'), "a psql meta-command: {line}");
        assert!(
            !upper.starts_with("COPY ")
                && !upper.starts_with("BEGIN")
                && !upper.starts_with("COMMIT"),
            "{line}"
        );
    }
}

/// A small deterministic generator, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn string(&mut self) -> String {
        const TRICKY: &[&str] = &[
            "'", "''", "\\", "$$", "$tag$", "\"", "\n", "\r\n", "\t", "--", "/*", "*/", ";", "{",
            "}", "é", "😀", "\u{200b}", "\u{7f}", "E'", "%s",
        ];
        let len = self.next() % 24;
        let mut s = String::new();
        for _ in 0..len {
            if self.next().is_multiple_of(2) {
                s.push_str(TRICKY[(self.next() % TRICKY.len() as u64) as usize]);
            } else {
                // Any Unicode scalar value except NUL (PostgreSQL text cannot hold it).
                let c = loop {
                    if let Some(c) =
                        char::from_u32((self.next() % 0x10_FFFF) as u32).filter(|c| *c != '\0')
                    {
                        break c;
                    }
                };
                s.push(c);
            }
        }
        s
    }
}

#[test]
fn any_string_survives_the_round_trip_through_postgres() {
    let ws = TempDir::new("seed-prop");
    let root = ws.path();
    std::fs::create_dir_all(root.join("supabase/local")).unwrap();
    std::fs::create_dir_all(root.join("supabase/migrations")).unwrap();
    std::fs::create_dir_all(root.join("supabase/seed")).unwrap();
    std::fs::copy(
        repo_root().join("xtask/test_data/seed-ws/Cargo.toml"),
        root.join("Cargo.toml"),
    )
    .unwrap();
    std::fs::write(root.join("supabase/local/supabase-compat.sql"), "").unwrap();
    std::fs::write(
        root.join("supabase/migrations/20260101000000_strings.sql"),
        "create table public.strings (id integer primary key, s text not null);\n",
    )
    .unwrap();
    std::fs::write(
        root.join("supabase/seed/manifest.toml"),
        "[[table]]\nname = \"strings\"\n",
    )
    .unwrap();
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let strings: Vec<String> = (0..300).map(|_| rng.string()).collect();
    let rows: Vec<toml::Table> = strings
        .iter()
        .enumerate()
        .map(|(i, s)| {
            toml::Table::from_iter([
                ("id".to_owned(), toml::Value::Integer(i as i64)),
                ("s".to_owned(), toml::Value::String(s.clone())),
            ])
        })
        .collect();
    let fixture = toml::to_string(&toml::Table::from_iter([(
        "row".to_owned(),
        toml::Value::Array(rows.into_iter().map(toml::Value::Table).collect()),
    )]))
    .unwrap();
    std::fs::write(root.join("supabase/seed/strings.toml"), fixture).unwrap();
    Xtask::new(root).ok(&["seed"]);
    let db = openeu_testdb::Server::start(&schema_and(root, &[root.join("supabase/seed.sql")]), "");
    // Read back as hex of the UTF-8 bytes: psql's display drops some code points (noncharacters),
    // the database does not.
    let hex = openeu_testdb::psql(
        db.port,
        "select encode(convert_to(s, 'UTF8'), 'hex') from strings order by id",
    );
    let back: Vec<&str> = hex.split('\n').collect();
    assert_eq!(back.len(), strings.len());
    for (i, (sent, got)) in strings.iter().zip(&back).enumerate() {
        let sent_hex: String = sent.bytes().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            &sent_hex, got,
            "string {i} ({sent:?}) changed on the way through"
        );
    }
}

/// Applies `edit` to a copy of the repository's supabase/ tree; `seed` must fail saying all of
/// `expected`, and must leave seed.sql as it was.
fn bad(edit: impl FnOnce(&Path), expected: &[&str]) {
    let ws = TempDir::new("seed-bad");
    std::fs::copy(repo_root().join("Cargo.toml"), ws.path().join("Cargo.toml")).unwrap();
    copy_tree(&repo_root().join("supabase"), &ws.path().join("supabase"));
    let seed = ws.path().join("supabase/seed.sql");
    let before = std::fs::read(&seed).unwrap();
    edit(&ws.path().join("supabase/seed"));
    let text = Xtask::new(ws.path()).fails(&["seed"]);
    for part in expected {
        assert!(text.contains(part), "expected {part:?} in:\n{text}");
    }
    assert_eq!(std::fs::read(&seed).unwrap(), before, "nothing was written");
}

#[test]
fn bad_fixtures_are_refused_with_file_row_and_column() {
    bad(
        |d| append(&d.join("topics.toml"), "\n[[row]\nid = \"x\"\n"),
        &["topics.toml", "line"],
    );
    bad(
        |d| {
            replace(
                &d.join("meetings.toml"),
                "start_time = 2026-01-20T09:00:00+01:00",
                "start_time = 42",
            );
        },
        &["meetings.toml row 2", "start_time", "expected a date-time"],
    );
    bad(
        |d| {
            replace(
                &d.join("meetings.toml"),
                "start_time = 2026-01-20T09:00:00+01:00",
                "start_time = 2026-01-20T09:00:00",
            );
        },
        &["meetings.toml row 2", "start_time", "offset"],
    );
    bad(
        |d| {
            replace(
                &d.join("legislative_files.toml"),
                "lodged_on = 2021-04-21",
                "lodged_on = \"2021-02-30\"",
            );
        },
        &["legislative_files.toml row 2", "lodged_on"],
    );
    bad(
        |d| {
            append(
                &d.join("topics.toml"),
                "\n[[row]]\nid = \"climate\"\nname = \"Climate again\"\n",
            );
        },
        &[
            "topics.toml row 8",
            "duplicate primary key",
            "topics.toml row 1",
        ],
    );
    bad(
        |d| {
            append(
                &d.join("meeting_topics.toml"),
                "\n[[row]]\nmeeting_id = \"no-such-meeting\"\ntopic_id = \"climate\"\n",
            );
        },
        &[
            "meeting_topics.toml row",
            "no-such-meeting",
            "meetings.toml defines no such row",
        ],
    );
    bad(
        |d| {
            replace(
                &d.join("topics.toml"),
                "name = \"Digital\"",
                "name = \"Digital\"\ncolour = \"blue\"",
            );
        },
        &[
            "topics.toml row 2",
            "unknown column `colour`",
            "public.topics",
        ],
    );
    bad(
        |d| {
            replace(
                &d.join("topics.toml"),
                "name = \"Digital\"",
                "name = \"Digi\\u0000tal\"",
            );
        },
        &["topics.toml row 2", "column name", "NUL"],
    );
    bad(
        |d| replace(&d.join("manifest.toml"), "{location}", "{venue}"),
        &["manifest.toml", "{venue}", "not a column"],
    );
    bad(
        |d| replace(&d.join("topics.toml"), "id = \"digital\"\n", ""),
        &["topics.toml row 2", "`id`", "required"],
    );
    bad(
        |d| {
            replace(
                &d.join("meetings.toml"),
                "country = \"FR\"",
                "country = \"FR\"\nsearch_vector = \"x\"",
            );
        },
        &["meetings.toml row 1", "generated"],
    );
}

#[test]
fn an_injection_attempt_is_stored_verbatim_and_harmless() {
    let ws = TempDir::new("seed-inject");
    std::fs::copy(repo_root().join("Cargo.toml"), ws.path().join("Cargo.toml")).unwrap();
    copy_tree(&repo_root().join("supabase"), &ws.path().join("supabase"));
    let attack = "'); DROP TABLE meetings; --";
    replace(
        &ws.path().join("supabase/seed/topics.toml"),
        "name = \"Digital\"",
        &format!("name = {attack:?}"),
    );
    Xtask::new(ws.path()).ok(&["seed"]);
    let root = ws.path();
    let db = openeu_testdb::Server::start(&schema_and(root, &[root.join("supabase/seed.sql")]), "");
    assert_eq!(
        openeu_testdb::psql(db.port, "select name from topics where id = 'digital'"),
        attack
    );
    assert_eq!(
        openeu_testdb::psql(db.port, "select count(*) > 0 from meetings"),
        "t"
    );
}
