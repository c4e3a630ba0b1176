//! The local database and stack with real parts: `db reset` (twice, and with a broken
//! migration that must leave the previous data alone), `up` serving the seeded meetings, and
//! `down` leaving nothing labelled behind. Each test runs a stack of its own (its own name and
//! port), so it never touches a developer's, and tears it down even when it fails.

use crate::support::{
    DockerCleanup, Registry, TempDir, Xtask, docker_ok, fixture_rows, free_port, repo_copy,
};

/// A copy of the repository configured with a stack of its own (name, database and API
/// ports); `down` on drop.
pub struct Stack {
    pub ws: TempDir,
    pub name: String,
    pub port: u16,
    pub api_port: u16,
    registry: Registry,
    cleanup: DockerCleanup,
}

impl Stack {
    pub fn new() -> Stack {
        let ws = repo_copy();
        let name = format!("t{}", free_port());
        let port = free_port();
        let api_port = free_port();
        let manifest = ws.path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let text = text.replace(
            "[workspace.metadata.xtask]\n",
            &format!(
                "[workspace.metadata.xtask]\nstack = \"{name}\"\ndb-port = {port}\napi-port = {api_port}\n"
            ),
        );
        std::fs::write(&manifest, text).unwrap();
        Stack {
            ws,
            name,
            port,
            api_port,
            registry: Registry::start(),
            cleanup: DockerCleanup::new(),
        }
    }

    pub fn xtask(&self) -> Xtask<'_> {
        Xtask::new(self.ws.path())
            .env("DOCKER_REGISTRY_SERVER", &self.registry.address)
            .label(&self.cleanup.label)
    }

    pub fn psql(&self, sql: &str) -> String {
        let out = openeu_testdb::psql_command(self.port)
            .env("PGPASSWORD", "postgres")
            .args(["-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The row counts of the seeded tables, `meetings|topics|meeting_topics|legislative_files|profiles`.
    fn counts(&self) -> String {
        self.psql("select (select count(*) from meetings), (select count(*) from topics), (select count(*) from meeting_topics), (select count(*) from legislative_files), (select count(*) from profiles)")
    }

    /// The same counts as the fixtures give them.
    fn expected_counts(&self) -> String {
        [
            "meetings",
            "topics",
            "meeting_topics",
            "legislative_files",
            "profiles",
        ]
        .map(|table| fixture_rows(self.ws.path(), table).to_string())
        .join("|")
    }

    fn labelled(&self, kind: &str) -> String {
        docker_ok(&[
            kind,
            "ls",
            "--quiet",
            "--filter",
            &format!("label=org.openeu.stack={}", self.name),
        ])
        .trim()
        .to_owned()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.xtask().output(&["down"]);
    }
}

pub fn get(url: &str, path: &str) -> (u16, String) {
    crate::support::http_get(url.trim_start_matches("http://"), path)
}

#[test]
fn db_reset_is_repeatable_and_a_broken_migration_keeps_the_previous_data() {
    let stack = Stack::new();
    let x = stack.xtask();
    let (stdout, _) = x.ok(&["db", "reset"]);
    assert_eq!(
        stdout.trim(),
        format!(
            "postgres://postgres:postgres@127.0.0.1:{}/postgres",
            stack.port
        )
    );
    let first = stack.counts();
    let expected = stack.expected_counts();
    assert_eq!(
        first, expected,
        "the seed was applied: rows of meetings|topics|meeting_topics|legislative_files|profiles, from the database (left) and the fixtures (right)"
    );
    // The history holds every migration file's version, in order.
    let files = xtask_core::workspace::schema_files(stack.ws.path()).unwrap();
    let versions: Vec<String> = files[1..]
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy()[..14].to_owned())
        .collect();
    assert_eq!(
        stack.psql("select version from supabase_migrations.schema_migrations order by version"),
        versions.join("\n")
    );
    x.ok(&["db", "reset"]);
    assert_eq!(stack.counts(), first, "a second reset gives the same rows");

    // Data written since the last reset survives a reset that fails.
    stack.psql("insert into topics (id, name) values ('kept', 'Kept while the reset fails')");
    let broken = stack
        .ws
        .path()
        .join("supabase/migrations/20261231000000_broken.sql");
    std::fs::write(
        &broken,
        "create table public.fine (id int);\n\nselect * from no_such_table;\n",
    )
    .unwrap();
    let text = x.fails(&["db", "reset"]);
    assert!(
        text.contains("20261231000000_broken.sql") && text.contains(":3:"),
        "names the file and line:\n{text}"
    );
    assert!(text.contains("previous database is untouched"), "{text}");
    assert_eq!(
        stack.psql("select count(*) from topics where id = 'kept'"),
        "1",
        "the previous data is still there"
    );
    assert_eq!(
        stack.psql("select count(*) from pg_database where datname = 'openeu_next'"),
        "0",
        "the half-built database is gone"
    );
    std::fs::remove_file(&broken).unwrap();

    let (url, _) = x.ok(&["db", "url"]);
    assert!(url.contains(&format!(":{}/", stack.port)));
    let text = x.fails(&[
        "db",
        "reset",
        "--db-url",
        "postgres://postgres@db.example.org:5432/postgres",
    ]);
    assert!(text.contains("without --yes"), "{text}");
}

#[test]
fn up_serves_the_seeded_meetings_and_down_leaves_nothing() {
    let stack = Stack::new();
    let x = stack.xtask();
    let (stdout, stderr) = x.ok(&["up"]);
    let url = stdout.trim();
    assert_eq!(
        url,
        format!("http://127.0.0.1:{}", stack.api_port),
        "up publishes the API on api-port:\n{stderr}"
    );
    // Every sample request `up` suggests returned data.
    let samples: Vec<&str> = stderr.lines().filter(|l| l.contains("curl '")).collect();
    assert!(samples.len() >= 3, "{stderr}");
    for line in samples {
        let answer = line.split('#').nth(1).unwrap_or("").trim();
        assert!(
            answer.ends_with("items") && !answer.starts_with("no ") || answer == "one item",
            "a sample request returned no data: {line}"
        );
    }
    let (status, body) = get(url, "/meetings?limit=500");
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).unwrap();
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids.len().to_string(),
        stack.psql("select count(*) from meetings")
    );
    assert!(ids.contains(&"ep-2026-01-19-plenary"), "{ids:?}");
    assert_eq!(get(url, "/ready").0, 200);
    assert!(!stack.labelled("volume").is_empty() && !stack.labelled("network").is_empty());

    // A second `up` with nothing changed is idempotent (and fast: see docs/benchmarks.md),
    // on the same port, without building the app image again.
    let (again, stderr) = x.ok(&["up"]);
    assert_eq!(again.trim(), url, "the same URL across runs");
    assert!(
        stderr.contains("no build:"),
        "the app image was reused:\n{stderr}"
    );
    assert_eq!(get(again.trim(), "/health").0, 200);

    x.ok(&["down"]);
    for kind in ["ps", "network", "volume"] {
        let left = if kind == "ps" {
            docker_ok(&[
                "ps",
                "--all",
                "--quiet",
                "--filter",
                &format!("label=org.openeu.stack={}", stack.name),
            ])
            .trim()
            .to_owned()
        } else {
            stack.labelled(kind)
        };
        assert!(left.is_empty(), "down left {kind}: {left}");
    }
    x.ok(&["down"]);
}
