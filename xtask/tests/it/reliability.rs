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
    DockerCleanup, Registry, TempDir, Xtask, docker_ok, free_port, repo_copy, wait_until,
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
            registry: Registry::start(None),
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

    fn workspace(&self) -> xtask::workspace::Workspace {
        xtask::workspace::Workspace::open(Some(self.ws.path().to_path_buf()), Vec::new()).unwrap()
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
        assert!(xtask::failpoint::POINTS.contains(&point));
        // Old data: the seed plus one row the reset does not write.
        stack.psql("insert into topics (id, name) values ('old-data', 'written before the reset') on conflict do nothing");
        let killed = x
            .command(&["db", "reset"])
            .env(xtask::failpoint::VAR, point)
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
    let held = xtask::lock::stack(&ws, "test").unwrap();
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
    let stack_label = format!("{}", stack.name);
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
    // Either way the next `up` works.
    x.ok(&["up"]);
}
