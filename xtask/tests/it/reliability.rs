//! What survives what: kills at every step of `db reset` (failpoints, not timing), commands
//! racing for one stack (its lock), duplicate networks, and a push killed while its registry
//! login is on disk. Each test runs a stack of its own (own name and port) and cleans up by
//! label even when it fails.

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::support::{
    DockerCleanup, Registry, TempDir, Xtask, docker_ok, free_port, replace, repo_copy, wait_until,
};

/// A copy of the repository with a stack of its own; `down` on drop.
struct Stack {
    ws: TempDir,
    name: String,
    port: u16,
    registry: Registry,
    cleanup: DockerCleanup,
}

impl Stack {
    fn new() -> Stack {
        let ws = repo_copy();
        let name = format!("r{}", free_port());
        let port = free_port();
        crate::support::edit(&ws.path().join("Cargo.toml"), |text| {
            text.replace(
                "[workspace.metadata.xtask]\n",
                &format!("[workspace.metadata.xtask]\nstack = \"{name}\"\ndb-port = {port}\n"),
            )
        });
        Stack {
            ws,
            name,
            port,
            registry: Registry::start(),
            cleanup: DockerCleanup::new(),
        }
    }

    fn xtask(&self) -> Xtask<'_> {
        Xtask::new(self.ws.path())
            .env("DOCKER_REGISTRY_SERVER", &self.registry.address)
            .label(&self.cleanup.label)
    }

    fn psql_on(&self, database: &str, sql: &str) -> String {
        let out = openeu_testdb::psql_command(self.port)
            .env("PGPASSWORD", "postgres")
            .args(["-d", database, "-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    fn psql(&self, sql: &str) -> String {
        self.psql_on("postgres", sql)
    }

    fn databases(&self) -> String {
        self.psql_on(
            "template1",
            "select string_agg(datname, ',' order by datname) from pg_database where datname in ('postgres', 'openeu_next', 'openeu_previous')",
        )
    }

    fn workspace(&self) -> xtask_core::workspace::Workspace {
        xtask_core::workspace::Workspace::open(Some(self.ws.path().to_path_buf()), Vec::new())
            .unwrap()
    }

    /// The ids of the networks named like the stack's.
    fn networks(&self) -> Vec<String> {
        docker_ok(&[
            "network",
            "ls",
            "--no-trunc",
            "--format",
            "{{.ID}} {{.Name}}",
        ])
        .lines()
        .filter(|l| l.ends_with(&format!(" openeu-{}", self.name)))
        .map(|l| l.split(' ').next().unwrap().to_owned())
        .collect()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.xtask().output(&["down"]);
    }
}

/// The seeded counts, and whether the row written before the reset (the old data) is there.
fn state(stack: &Stack) -> (String, bool) {
    (
        stack.psql("select (select count(*) from meetings) || '|' || (select count(*) from topics where id <> 'old-data')"),
        stack.psql("select count(*) from topics where id = 'old-data'") == "1",
    )
}

#[test]
fn db_reset_killed_at_every_step_keeps_complete_data_and_the_next_command_repairs_it() {
    let stack = Stack::new();
    let x = stack.xtask();
    x.ok(&["db", "reset"]);
    let seeded = state(&stack).0;
    assert!(seeded.starts_with("30|"), "{seeded}");

    // (failpoint, the data right after the kill, what the next command says, the data after)
    let cases = [
        ("db-reset:after-create-next", "rolled it back", true),
        ("db-reset:after-apply", "finished it", false),
        ("db-reset:after-drop-previous", "finished it", false),
        ("db-reset:after-rename-old", "finished it", false),
        ("db-reset:after-swap", "the swap had committed", false),
    ];
    for (point, said, old_after) in cases {
        assert!(xtask_core::failpoint::POINTS.contains(&point));
        // Old data: the seed plus one row the reset does not write.
        stack.psql("insert into topics (id, name) values ('old-data', 'written before the reset') on conflict do nothing");
        let killed = x
            .command(&["db", "reset"])
            .env(xtask_core::failpoint::VAR, point)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&killed.stderr);
        assert!(
            !killed.status.success() && stderr.contains(&format!("failpoint {point}")),
            "{point}: {stderr}"
        );
        // Killed inside the swap's transaction, psql rolls it back when its stdin closes.
        wait_until(
            &format!("{point}: the open swap to roll back"),
            Duration::from_secs(20),
            || stack.databases().split(',').any(|d| d == "postgres"),
        );
        // Complete data, old or new, whatever the moment of the kill.
        let (counts, old) = state(&stack);
        assert_eq!(counts, seeded, "{point}: the database is complete");
        assert_eq!(old, point != "db-reset:after-swap", "{point}");

        let started = Instant::now();
        let (_, stderr) = x.ok(&["db", "start"]);
        assert!(
            stderr.contains("repaired an interrupted `db reset`") && stderr.contains(said),
            "{point}: {stderr}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{point}: no 60 s wait"
        );
        assert_eq!(stack.databases(), "postgres", "{point}: nothing left over");
        assert_eq!(state(&stack), (seeded.clone(), old_after), "{point}");
        let (_, stderr) = x.ok(&["db", "start"]);
        assert!(!stderr.contains("repaired"), "repaired once: {stderr}");
    }

    // The old two-statement swap killed between its renames: no `postgres` at all. The next
    // command restores it instead of timing out on the health check.
    stack.psql("insert into topics (id, name) values ('old-data', 'kept') on conflict do nothing");
    stack.psql_on(
        "template1",
        "select count(pg_terminate_backend(pid, 5000)) from pg_stat_activity where datname = 'postgres'",
    );
    stack.psql_on(
        "template1",
        "alter database postgres rename to openeu_previous",
    );
    let started = Instant::now();
    let (_, stderr) = x.ok(&["db", "start"]);
    assert!(stderr.contains("rolled it back"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(state(&stack), (seeded.clone(), true));
    // And `db reset` after all that is an ordinary reset.
    x.ok(&["db", "reset"]);
    assert_eq!(state(&stack), (seeded, false));
}

/// A running xtask whose stderr is collected as it comes, so a test can wait for a line.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    fn start(x: &Xtask<'_>, args: &[&str]) -> Running {
        let mut child = x
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Running {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    fn wait_for(&self, needle: &str) {
        wait_until(
            &format!("stderr to say {needle:?}"),
            Duration::from_secs(120),
            || self.stderr.lock().unwrap().contains(needle),
        );
    }

    /// Waits for the exit; asserts success; returns (stdout, stderr).
    fn finish(mut self) -> (String, String) {
        let mut stdout = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let status = self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        let stderr = self.stderr.lock().unwrap().clone();
        assert!(status.success(), "failed ({status}):\n{stdout}\n{stderr}");
        (stdout, stderr)
    }
}

#[test]
fn db_commands_wait_for_the_stack_lock_or_refuse_with_no_wait() {
    let stack = Stack::new();
    let x = stack.xtask();
    x.ok(&["db", "start"]);
    // The test holds the lock, so the order is certain, not a matter of timing.
    let ws = stack.workspace();
    let held = xtask_core::lock::stack(&ws, "test").unwrap();
    let waiting = Running::start(&x, &["db", "reset"]);
    waiting.wait_for(&format!("waiting for the local stack `{}`", stack.name));
    waiting.wait_for(&format!("pid {} (cargo xtask test)", std::process::id()));
    let refused = x.fails(&["--no-wait", "db", "reset"]);
    assert!(
        refused.contains("is busy") && refused.contains(&format!("pid {}", std::process::id())),
        "{refused}"
    );
    drop(held);
    waiting.finish();
    assert_eq!(state(&stack).0.split('|').next(), Some("30"));

    // Two resets at once, unaided: both succeed, one after the other.
    let first = Running::start(&x, &["db", "reset"]);
    let second = Running::start(&x, &["db", "reset"]);
    first.finish();
    second.finish();
    assert_eq!(stack.databases(), "postgres");
    assert_eq!(state(&stack).0.split('|').next(), Some("30"));
}

/// Creates a network through the Engine API with the duplicate check off, as two creations
/// racing each other do: the CLI cannot make a duplicate on purpose.
fn create_duplicate_network(name: &str, labels: &[(&str, &str)]) {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect();
    let body =
        serde_json::json!({ "Name": name, "CheckDuplicate": false, "Labels": labels }).to_string();
    let mut socket = std::os::unix::net::UnixStream::connect("/var/run/docker.sock").unwrap();
    write!(
        socket,
        "POST /networks/create HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).unwrap();
    assert!(
        response.starts_with("HTTP/1.0 201") || response.starts_with("HTTP/1.1 201"),
        "{response}"
    );
}

#[test]
fn two_ups_at_once_both_succeed_and_up_while_down_runs_leaves_a_whole_stack() {
    let stack = Stack::new();
    let x = stack.xtask();
    // Duplicates from an earlier race: repaired, not "ambiguous".
    let network = format!("openeu-{}", stack.name);
    let stack_label = stack.name.clone();
    let (run_key, run_value) = stack.cleanup.label.split_once('=').unwrap();
    for _ in 0..2 {
        create_duplicate_network(
            &network,
            &[("org.openeu.stack", &stack_label), (run_key, run_value)],
        );
    }
    assert_eq!(stack.networks().len(), 2);

    let first = Running::start(&x, &["up"]);
    let second = Running::start(&x, &["up"]);
    let (one, err_one) = first.finish();
    let (two, err_two) = second.finish();
    assert!(
        err_one.contains("waiting for the local stack")
            || err_two.contains("waiting for the local stack"),
        "one of them waited:\n{err_one}\n---\n{err_two}"
    );
    assert!(
        format!("{err_one}{err_two}").contains(&format!("repaired 2 networks named {network}")),
        "{err_one}\n---\n{err_two}"
    );
    assert_eq!(stack.networks().len(), 1);
    let url = two.trim();
    assert!(url.starts_with("http://127.0.0.1:"), "{one}\n{two}");
    assert_eq!(
        crate::support::http_get(url.trim_start_matches("http://"), "/ready").0,
        200
    );

    // `down` and `up` at once: one waits for the other, and the stack is whole either way.
    let down = Running::start(&x, &["down"]);
    let up = Running::start(&x, &["up"]);
    down.finish();
    let (url, _) = up.finish();
    let labelled = docker_ok(&[
        "ps",
        "--all",
        "--quiet",
        "--filter",
        &format!("label=org.openeu.stack={}", stack.name),
    ]);
    if labelled.trim().is_empty() {
        // `down` ran last: nothing is left, not half a stack.
        assert!(stack.networks().is_empty());
    } else {
        assert_eq!(
            crate::support::http_get(url.trim().trim_start_matches("http://"), "/ready").0,
            200
        );
        assert_eq!(stack.networks().len(), 1);
    }
    // Either way the next `up` works, also after an `up` killed half-way (database up and
    // reset, the API not yet started).
    let killed = x
        .command(&["up"])
        .env(xtask_core::failpoint::VAR, "up:after-database")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&killed.stderr).contains("failpoint up:after-database"),
        "{}",
        String::from_utf8_lossy(&killed.stderr)
    );
    let (url, _) = x.ok(&["up"]);
    assert_eq!(
        crate::support::http_get(url.trim().trim_start_matches("http://"), "/ready").0,
        200
    );
    assert_eq!(stack.networks().len(), 1);
}

/// A copy of `supabase/` (the repository's, or the golden seed workspace's with its CSV) with a
/// root manifest, for `seed` runs.
fn seed_workspace(golden: bool) -> TempDir {
    let ws = TempDir::new("seed-rel");
    let from = if golden {
        crate::support::repo_root().join("xtask/test_data/seed-ws")
    } else {
        crate::support::repo_root()
    };
    std::fs::copy(from.join("Cargo.toml"), ws.path().join("Cargo.toml")).unwrap();
    crate::support::copy_tree(&from.join("supabase"), &ws.path().join("supabase"));
    ws
}

/// `seed` on `ws` after `edit`: refused saying all of `expected` and none of `never`, and
/// seed.sql untouched. Returns the output.
fn seed_refused(
    ws: &TempDir,
    edit: impl FnOnce(&Path),
    expected: &[&str],
    never: &[&str],
) -> String {
    let seed = ws.path().join("supabase/seed.sql");
    let before = std::fs::read(&seed).unwrap();
    edit(&ws.path().join("supabase/seed"));
    let text = Xtask::new(ws.path()).fails(&["seed"]);
    for part in expected {
        assert!(text.contains(part), "expected {part:?} in:\n{text}");
    }
    for part in never {
        assert!(!text.contains(part), "{part:?} must not appear in:\n{text}");
    }
    assert_eq!(std::fs::read(&seed).unwrap(), before, "nothing was written");
    text
}

#[test]
fn seed_refuses_fixtures_outside_its_directory_bad_bytes_leap_seconds_and_empty_files() {
    // A path out of supabase/seed/, and a symbolic link to a readable file elsewhere: refused
    // naming the entry, and nothing of the target reaches the output.
    let secret = TempDir::new("outside");
    let target = secret.path().join("passwd");
    std::fs::write(
        &target,
        "root:x:0:0:canary-outside-content:/root:/bin/bash\n",
    )
    .unwrap();
    let ws = seed_workspace(false);
    seed_refused(
        &ws,
        |d| {
            replace(
                &d.join("manifest.toml"),
                "name = \"profiles\"",
                &format!(
                    "name = \"profiles\"\nfile = \"../../../..{}\"",
                    target.display()
                ),
            );
        },
        &[
            "manifest.toml",
            "table `profiles`",
            "not a plain relative path",
        ],
        &["canary-outside-content"],
    );
    let ws = seed_workspace(false);
    seed_refused(
        &ws,
        |d| {
            std::fs::remove_file(d.join("profiles.toml")).unwrap();
            std::os::unix::fs::symlink(&target, d.join("profiles.toml")).unwrap();
        },
        &[
            "table `profiles`",
            "\"profiles.toml\"",
            "leads outside supabase/seed/",
        ],
        &["canary-outside-content", "root:x"],
    );
    // A link inside the directory is fine.
    let ws = seed_workspace(false);
    let dir = ws.path().join("supabase/seed");
    std::fs::rename(dir.join("profiles.toml"), dir.join("profiles-real.toml")).unwrap();
    std::os::unix::fs::symlink("profiles-real.toml", dir.join("profiles.toml")).unwrap();
    Xtask::new(ws.path()).ok(&["seed", "--check"]);

    // A Latin-1 byte: the file, the line and the byte offset.
    let ws = seed_workspace(false);
    let topics = ws.path().join("supabase/seed/topics.toml");
    let text = std::fs::read_to_string(&topics).unwrap();
    let at = text.find("Digital").unwrap() + 5;
    let line = text[..at].matches('\n').count() + 1;
    seed_refused(
        &ws,
        |_| {
            let mut bytes = text.as_bytes().to_vec();
            bytes[at] = 0xE9;
            std::fs::write(&topics, bytes).unwrap();
        },
        &[
            "topics.toml",
            &format!("line {line}, byte offset {at}"),
            "0xE9 is not UTF-8",
        ],
        &[],
    );

    // Second 60 is refused, never moved to the next minute.
    let ws = seed_workspace(false);
    seed_refused(
        &ws,
        |d| {
            replace(
                &d.join("meetings.toml"),
                "start_time = 2026-01-20T09:00:00+01:00",
                "start_time = 2026-01-20T09:00:60+01:00",
            );
        },
        &["meetings.toml", "second 60"],
        &[],
    );
    // And in CSV text, which PostgreSQL would take as well.
    let ws = seed_workspace(true);
    seed_refused(
        &ws,
        |d| {
            replace(
                &d.join("kinds.toml"),
                "at = 2026-03-01T09:30:00+01:00",
                "at = \"2026-03-01T09:30:60Z\"",
            );
        },
        &["kinds.toml row 1", "second 60", "next minute"],
        &[],
    );

    // An empty fixture is refused; `row = []` or `empty = true` says "no rows" on purpose.
    let ws = seed_workspace(false);
    seed_refused(
        &ws,
        |d| std::fs::write(d.join("profiles.toml"), "# nothing yet\n").unwrap(),
        &[
            "profiles.toml (table `profiles`) has no rows",
            "empty = true",
            "row = []",
        ],
        &[],
    );
    std::fs::write(ws.path().join("supabase/seed/profiles.toml"), "row = []\n").unwrap();
    Xtask::new(ws.path()).ok(&["seed"]);
    let ws = seed_workspace(true);
    seed_refused(
        &ws,
        |d| std::fs::write(d.join("bulk.csv"), "").unwrap(),
        &["bulk.csv (table `bulk`) has no rows", "empty = true"],
        &[],
    );
    replace(
        &ws.path().join("supabase/seed/manifest.toml"),
        "file = \"bulk.csv\"",
        "file = \"bulk.csv\"\nempty = true",
    );
    Xtask::new(ws.path()).ok(&["seed"]);
}

#[test]
fn csv_fixtures_give_the_same_bytes_or_the_same_error_on_1_2_and_8_threads() {
    let ws = seed_workspace(true);
    let csv = ws.path().join("supabase/seed/bulk.csv");
    let mut text = String::from("n,kind,note\n");
    for n in 100..2100 {
        text.push_str(&format!(
            "{n},{},\"note {n}, with \"\"quotes\"\"\nand a second line\"\n",
            n % 3 + 1
        ));
    }
    std::fs::write(&csv, &text).unwrap();
    let seed = ws.path().join("supabase/seed.sql");
    let run = |threads: &str| {
        Xtask::new(ws.path())
            .env("XTASK_SEED_THREADS", threads)
            .output(&["seed"])
    };
    let mut outputs = Vec::new();
    for threads in ["1", "2", "8"] {
        let out = run(threads);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(std::fs::read(&seed).unwrap());
    }
    assert!(outputs.iter().all(|o| *o == outputs[0]), "identical bytes");
    assert_eq!(
        String::from_utf8_lossy(&outputs[0])
            .matches("and a second line")
            .count(),
        2000
    );

    // A stray quote in an unquoted field, late, after many quoted newlines.
    std::fs::write(&csv, text.replacen("\n1900,", "\n19\"00,", 1)).unwrap();
    let before = std::fs::read(&seed).unwrap();
    let errors: Vec<String> = ["1", "2", "8"]
        .iter()
        .map(|threads| {
            let out = run(threads);
            assert!(!out.status.success());
            String::from_utf8_lossy(&out.stderr).into_owned()
        })
        .collect();
    assert!(errors.iter().all(|e| *e == errors[0]), "{errors:#?}");
    // Record n starts on line 2 + 2 * (n - 100).
    assert!(
        errors[0]
            .contains("bulk.csv line 3602: column 3 (field 1): a quote inside an unquoted field"),
        "{}",
        errors[0]
    );
    assert_eq!(std::fs::read(&seed).unwrap(), before);

    // A repeated header column names both.
    std::fs::write(&csv, "n,kind,n\n1,1,2\n").unwrap();
    let text = Xtask::new(ws.path()).fails(&["seed"]);
    assert!(
        text.contains("bulk.csv line 1: column `n` appears twice in the header (columns 1 and 3)"),
        "{text}"
    );
}

/// Files under `roots` (not following links, up to 1 MiB each) that contain any of `needles`.
fn files_containing(roots: &[PathBuf], needles: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for root in roots {
        // Unreadable directories (other users' under /tmp) are passed by, not failed on.
        for entry in
            xtask_core::files::walk(root, xtask_core::files::Links::Skip, |_| false).flatten()
        {
            if entry.file_type().is_file()
                && entry.metadata().is_ok_and(|m| m.len() <= 1 << 20)
                && let Ok(bytes) = std::fs::read(entry.path())
            {
                let text = String::from_utf8_lossy(&bytes);
                if needles.iter().any(|n| text.contains(n)) {
                    found.push(entry.into_path());
                }
            }
        }
    }
    found
}

#[test]
fn a_push_killed_after_its_login_leaves_no_copy_of_the_password() {
    let canary = format!("canary-{}-k1ll3d", std::process::id());
    // docker writes config.json's `auth` as standard base64 of user:password.
    let encoded = xtask_core::encoding::base64(format!("ci:{canary}").as_bytes());
    let cleanup = DockerCleanup::new();
    let registry = Registry::with_password("ci", &canary);
    let ws = crate::support::fixture_workspace();
    let x = Xtask::new(ws.path())
        .env("DOCKER_REGISTRY_SERVER", &registry.address)
        .env("DOCKER_REGISTRY_USERNAME", "ci")
        .env("DOCKER_REGISTRY_PASSWORD", &canary)
        .label(&cleanup.label);
    let killed = x
        .command(&["base", "build", "--push"])
        .env(xtask_core::failpoint::VAR, "base-push:after-login")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&killed.stderr);
    assert!(
        !killed.status.success() && stderr.contains("failpoint base-push:after-login"),
        "{stderr}"
    );
    // The login was on disk when the push died, so the sweep below has something to do.
    let private = xtask_core::docker::credentials::base_dir().unwrap();
    let left = files_containing(std::slice::from_ref(&private), &[&encoded]);
    assert_eq!(left.len(), 1, "the killed push's login: {left:?}");
    assert!(
        left[0].starts_with(&private) && !left[0].starts_with(ws.path()),
        "{left:?}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(left[0].parent().unwrap())
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700, "private to its user");

    // The next command, whatever it is, sweeps it.
    x.ok(&["base", "hash"]);
    let ws_handle =
        xtask_core::workspace::Workspace::open(Some(ws.path().to_path_buf()), Vec::new()).unwrap();
    let mut roots = vec![
        ws.path().to_path_buf(),
        ws_handle.target_dir().unwrap().join("xtask"),
        xtask_core::workspace::state_dir().unwrap(),
        std::env::temp_dir(),
        PathBuf::from("/dev/shm"),
        private,
    ];
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        roots.push(PathBuf::from(runtime));
    }
    let left = files_containing(&roots, &[&canary, &encoded]);
    assert!(
        left.is_empty(),
        "the password survived the kill in {left:?}"
    );
}

#[test]
fn env_files_never_show_a_secret_refuse_duplicates_and_accept_bom_and_export_tab() {
    let dir = TempDir::new("env-rel");
    let file = dir.path().join("app.env");
    let root = crate::support::repo_root();
    let check = |content: &[u8]| {
        std::fs::write(&file, content).unwrap();
        let out = Xtask::new(&root).output(&[
            "env",
            "check",
            "--env-file",
            file.to_str().unwrap(),
            "--target",
            "local",
        ]);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let canary = "Zm9vYmFyY2FuYXJ5";
    for (content, expected) in [
        // A secret whose value wraps onto a second line.
        (
            format!("DATABASE_URL=postgres://u@h/db\nSUPABASE_JWT_SECRET=abc\n{canary}\n"),
            vec!["app.env:3", "SUPABASE_JWT_SECRET (line 2)"],
        ),
        // A continuation line that looks like a name.
        (
            format!(
                "DATABASE_URL=postgres://u@h/db\nSUPABASE_JWT_SECRET=abc\n{}==\n",
                canary.to_uppercase()
            ),
            vec!["app.env:3", "a name the env spec does not know"],
        ),
        // A DATABASE_URL whose password contains `/`.
        (
            format!(
                "DATABASE_URL=postgres://app:{canary}/x@db.internal:5432/openeu\nSUPABASE_JWT_SECRET=x\n"
            ),
            vec![
                "DATABASE_URL is malformed",
                "percent-encoded",
                "(",
                "app.env:1)",
            ],
        ),
        (
            "DATABASE_URL=postgres://u@h/db\nSUPABASE_JWT_SECRET=x\nSUPABASE_JWT_SECRET=y\n"
                .to_owned(),
            vec!["app.env:3: SUPABASE_JWT_SECRET is set twice, on lines 2 and 3"],
        ),
        (
            "DATABASE_URL=postgres://u@h/db\nSUPABASE_JWT_S\u{415}CRET=x\n".to_owned(),
            vec!["app.env:2", "U+0415", "did you mean SUPABASE_JWT_SECRET?"],
        ),
    ] {
        let (ok, text) = check(content.as_bytes());
        assert!(!ok, "{content:?} was accepted:\n{text}");
        for part in expected {
            assert!(text.contains(part), "{part:?} in:\n{text}");
        }
        assert!(
            !text.contains(canary) && !text.contains(&canary.to_uppercase()),
            "a secret leaked:\n{text}"
        );
    }
    // A Latin-1 byte: the file and the line.
    let (ok, text) = check(b"DATABASE_URL=postgres://u@h/db\nSUPABASE_JWT_SECRET=caf\xE9\n");
    assert!(
        !ok && text.contains("app.env:2: byte 0xE9 in the value of SUPABASE_JWT_SECRET"),
        "{text}"
    );
    // Valid in the dotenv dialect: a byte order mark, `export` and a tab, quotes, comments.
    let (ok, text) = check(
        b"\xEF\xBB\xBF# local\nexport\tDATABASE_URL=postgres://u@h/db\nexport SUPABASE_JWT_SECRET=\"two\nlines\" # multi-line\n",
    );
    assert!(ok, "{text}");
    assert!(
        text.contains("ok        SUPABASE_JWT_SECRET        ***"),
        "{text}"
    );
}
