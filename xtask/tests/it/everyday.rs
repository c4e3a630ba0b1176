//! The everyday changes, made as a newcomer makes them, from the docs (docs/changes.md) and the messages only:
//! a migration that adds a column and a seed row that uses it (through `seed` and `up`, no
//! source edit), a typo in a fixture (a "did you mean" with the line), a stale seed caught by
//! `up`, a seed-only or xtask-only change that does not rebuild the app image, and `/ready` on
//! a database one migration ahead. Each works on a copy of the repository; the stack test runs a stack of its
//! own (name, ports) and tears it down even when it fails.

use std::{path::Path, time::Instant};

use crate::{
    stack::{Stack, get},
    support::{TempDir, Xtask, append, copy_tree, repo_root},
};

/// The repository's manifest and supabase/ tree: enough for `seed` and `migration`.
fn data_copy() -> TempDir {
    let ws = TempDir::new("everyday");
    std::fs::copy(repo_root().join("Cargo.toml"), ws.path().join("Cargo.toml")).unwrap();
    copy_tree(&repo_root().join("supabase"), &ws.path().join("supabase"));
    ws
}

/// `cargo xtask migration new NAME` with `sql` written into the new file; its version.
fn new_migration(x: &Xtask<'_>, root: &Path, name: &str, sql: &str) -> String {
    let (stdout, stderr) = x.ok(&["migration", "new", name]);
    let relative = stdout.trim();
    let file = Path::new(relative).file_name().unwrap().to_str().unwrap();
    assert!(
        relative.starts_with("supabase/migrations/") && file.ends_with(&format!("_{name}.sql")),
        "{stdout}{stderr}"
    );
    let version = &file[..14];
    assert!(version.bytes().all(|b| b.is_ascii_digit()), "{file}");
    let path = root.join(relative);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text + sql).unwrap();
    version.to_owned()
}

const NEW_MEETING: &str = "\n[[row]]\nid = \"de-bt-2026-02-05-energy-hearing\"\nsource = \"national_parliament\"\ntitle = \"Hearing on the heat-pump subsidy and grid fees\"\nstart_time = 2026-02-05T10:00:00+01:00\nend_time = 2026-02-05T12:00:00+01:00\ncountry = \"DE\"\nlocation = \"Berlin\"\n";

#[test]
fn a_new_column_reaches_the_seed_through_a_migration_with_no_source_edit() {
    let ws = data_copy();
    let root = ws.path();
    let x = Xtask::new(root);
    let seed_dir = root.join("supabase/seed");

    // The name is checked, with the fix.
    let text = x.fails(&["migration", "new", "Add room"]);
    assert!(
        text.contains("cargo xtask migration new add_room"),
        "{text}"
    );

    // The most common schema change: ALTER TABLE … ADD COLUMN, then a row that uses it.
    let newest_before = std::fs::read_dir(root.join("supabase/migrations"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy()[..14].to_owned())
        .max()
        .unwrap();
    let version = new_migration(
        &x,
        root,
        "add_room_to_meetings",
        "alter table public.meetings add column if not exists room text;\n",
    );
    assert!(version > newest_before, "{version} after {newest_before}");
    append(
        &seed_dir.join("meetings.toml"),
        &format!("{NEW_MEETING}room = \"PLH E 400\"\n"),
    );
    let started = Instant::now();
    x.ok(&["seed"]);
    let cold = started.elapsed();
    let seed = std::fs::read_to_string(root.join("supabase/seed.sql")).unwrap();
    assert!(
        seed.contains("room") && seed.contains("'PLH E 400'"),
        "the new column and value are in seed.sql"
    );
    // Unchanged migrations: the schema comes from the cache, no PostgreSQL is started.
    let started = Instant::now();
    let (_, stderr) = x.ok(&["seed", "--check"]);
    let warm = started.elapsed();
    assert!(!stderr.contains("throwaway PostgreSQL"), "{stderr}");
    eprintln!(
        "seed with a new migration: {:.2}s; seed --check, cached: {:.2}s",
        cold.as_secs_f64(),
        warm.as_secs_f64()
    );

    // A typo in a column: a "did you mean", and the line of the row.
    let meetings = seed_dir.join("meetings.toml");
    let text = std::fs::read_to_string(&meetings).unwrap();
    // The row's `[[row]]` header is the line before its id: its 1-based number is the id
    // line's 0-based index.
    let row_line = text
        .lines()
        .position(|l| l.contains("de-bt-2026-02-05-energy-hearing"))
        .unwrap();
    std::fs::write(
        &meetings,
        text.replace("room = \"PLH E 400\"", "rooom = \"PLH E 400\""),
    )
    .unwrap();
    let text = x.fails(&["seed"]);
    assert!(
        text.contains("unknown column `rooom`") && text.contains("did you mean `room`?"),
        "{text}"
    );
    assert!(text.contains(&format!("(line {row_line})")), "{text}");
    std::fs::write(
        &meetings,
        std::fs::read_to_string(&meetings)
            .unwrap()
            .replace("rooom", "room"),
    )
    .unwrap();

    // What only the database knows (a CHECK constraint) is caught by `seed` too, naming the
    // fixture, before seed.sql is written.
    let text = std::fs::read_to_string(&meetings).unwrap();
    let before = std::fs::read(root.join("supabase/seed.sql")).unwrap();
    std::fs::write(
        &meetings,
        text.replace(
            "source = \"national_parliament\"\ntitle = \"Hearing",
            "source = \"bundestag\"\ntitle = \"Hearing",
        ),
    )
    .unwrap();
    let out = x.fails(&["seed"]);
    assert!(
        out.contains("meetings_source_check") && out.contains("meetings.toml"),
        "{out}"
    );
    assert_eq!(
        std::fs::read(root.join("supabase/seed.sql")).unwrap(),
        before,
        "nothing was written"
    );
    std::fs::write(&meetings, text).unwrap();

    // Every DDL counts: a renamed table is gone under its old name, with a "did you mean".
    new_migration(
        &x,
        root,
        "rename_topics",
        "alter table public.topics rename to topic;\n",
    );
    let text = x.fails(&["seed"]);
    assert!(
        text.contains("table `topics` does not exist") && text.contains("did you mean `topic`?"),
        "{text}"
    );

    // A migration that does not apply names its file and line.
    new_migration(&x, root, "broken", "\nselect * from no_such_table;\n");
    let text = x.fails(&["seed", "--check"]);
    assert!(
        text.contains("_broken.sql:") && text.contains("no_such_table"),
        "{text}"
    );
}

#[test]
fn up_follows_data_and_schema_changes_and_rebuilds_only_for_the_binary() {
    let stack = Stack::new();
    let root = stack.ws.path();
    let x = stack.xtask();
    let (stdout, _) = x.ok(&["up"]);
    let url = stdout.trim().to_owned();

    // A seed-only change, without running `seed`: `up` catches the stale seed.sql, renders it,
    // serves the new row, and does not rebuild the app image.
    append(&root.join("supabase/seed/meetings.toml"), NEW_MEETING);
    let started = Instant::now();
    let (again, stderr) = x.ok(&["up"]);
    eprintln!(
        "up after a seed-only change: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(again.trim(), url, "the same port across runs");
    assert!(
        stderr.contains("it was stale: rendered it again"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no build:"),
        "the app image was reused:\n{stderr}"
    );
    assert_eq!(
        get(&url, "/meetings/de-bt-2026-02-05-energy-hearing").0,
        200
    );
    x.ok(&["seed", "--check"]);

    // An xtask-only change does not rebuild it either: xtask is not part of the app's build
    // context (its sources are stubbed there), and neither are its crates under xtask/crates.
    append(&root.join("xtask/src/lib.rs"), "\n// an xtask-only edit\n");
    append(
        &root.join("xtask/crates/core/src/lib.rs"),
        "\n// an xtask-only edit\n",
    );
    let (_, stderr) = x.ok(&["image", "build"]);
    assert!(
        stderr.contains("no build:"),
        "the app image was reused:\n{stderr}"
    );

    // A broken migration fails in seconds, before any image is built.
    let broken = new_migration(&x, root, "broken", "select * from no_such_table;\n");
    let text = x.fails(&["up"]);
    assert!(
        text.contains(&format!("{broken}_broken.sql:")) && text.contains("no_such_table"),
        "{text}"
    );
    assert!(
        !text.contains("hashing base inputs") && !text.contains("building "),
        "nothing was built:\n{text}"
    );
    std::fs::remove_file(root.join(format!("supabase/migrations/{broken}_broken.sql"))).unwrap();

    // A new column and a row that uses it. The migrations are an input of the binary (it
    // expects the newest), so this one rebuilds the app image.
    let version = new_migration(
        &x,
        root,
        "add_room_to_meetings",
        "alter table public.meetings add column if not exists room text;\n",
    );
    append(
        &root.join("supabase/seed/meetings.toml"),
        "room = \"PLH E 400\"\n",
    );
    let (_, stderr) = x.ok(&["up"]);
    assert!(!stderr.contains("no build:"), "{stderr}");
    assert_eq!(
        stack.psql("select room from meetings where id = 'de-bt-2026-02-05-energy-hearing'"),
        "PLH E 400"
    );
    let (status, body) = get(&url, "/");
    assert_eq!(status, 200, "{body}");
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["expected_migration"], version.as_str(), "{body}");
    assert_eq!(info["migration"], version.as_str(), "{body}");

    // A database one migration ahead (expand first, deploy after) keeps the service ready.
    stack.psql(
        "alter table public.meetings add column if not exists floor int; \
         insert into supabase_migrations.schema_migrations (version) values ('29991231000000')",
    );
    let (status, body) = get(&url, "/ready");
    assert_eq!(status, 200, "ready one migration ahead: {body}");
    assert!(body.contains("29991231000000"), "{body}");
}
