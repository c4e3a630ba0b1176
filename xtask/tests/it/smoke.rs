//! `cargo xtask smoke` with real parts: it passes on the current image (with a JUnit report
//! that parses), fails with a readable report on an image with a broken endpoint, passes with
//! `--url` against a running `up` stack, leaves nothing of a SIGKILLed run once the next run
//! starts while a live run beside it stays untouched, and four runs at once pass without
//! colliding. The tests work on copies of the repository whose app image has a name of its
//! own, so they never replace a developer's image; the base is the shared one.

use std::{
    path::Path,
    process::{Child, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use xtask_core::docker::Docker;

use crate::support::{
    TempDir, Xtask, docker_ok, edit, free_port, repo_copy, repo_workspace, wait_until,
};

/// A copy of the repository whose app image is `app_image`.
fn copy_with_image(app_image: &str) -> TempDir {
    let ws = repo_copy();
    edit(&ws.path().join("Cargo.toml"), |text| {
        text.replace(
            "app-image = \"openeu-backend\"",
            &format!("app-image = \"{app_image}\""),
        )
    });
    ws
}

/// The copy and its image, built once for the tests of this module.
fn shared() -> &'static (TempDir, String) {
    static SHARED: OnceLock<(TempDir, String)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let ws = copy_with_image("openeu-smoke-it");
        let (stdout, _) = Xtask::new(ws.path()).ok(&["image", "build"]);
        let image = stdout.trim().to_owned();
        (ws, image)
    })
}

/// The names of the containers, networks and volumes that carry `label` (KEY=VALUE).
fn labelled(label: &str) -> Vec<String> {
    let filter = format!("label={label}");
    let mut names = Vec::new();
    for (kind, format) in [
        (&["ps", "--all"][..], "{{.Names}}"),
        (&["network", "ls"], "{{.Name}}"),
        (&["volume", "ls"], "{{.Name}}"),
    ] {
        let mut args = kind.to_vec();
        args.extend(["--filter", &filter, "--format", format]);
        names.extend(docker_ok(&args).lines().map(str::to_owned));
    }
    names
}

/// Removes whatever a smoke child owned, on drop: the safety net when a test fails midway.
struct Leftovers(Vec<String>);

impl Drop for Leftovers {
    fn drop(&mut self) {
        let ws = repo_workspace();
        let docker = Docker::new(&ws);
        for label in &self.0 {
            let _ = docker.remove_labelled_containers(label);
            let _ = docker.remove_labelled_networks_and_volumes(label);
        }
    }
}

fn owned_by(child: &Child) -> String {
    format!("{}={}", xtask_core::owner::OWNER_PID_LABEL, child.id())
}

fn spawn_smoke(ws: &Path, args: &[&str]) -> Child {
    let mut cmd = Xtask::new(ws).command(&[&["smoke"][..], args].concat());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.spawn().expect("starting xtask smoke")
}

/// The text of a finished child: (success, stdout, stderr).
fn finish(child: Child) -> (bool, String, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A minimal well-formedness check of XML (balanced, properly nested elements, quoted
/// attributes), and the attributes of the first element named `name`.
fn xml_attributes(xml: &str, name: &str) -> Vec<(String, String)> {
    let mut stack: Vec<String> = Vec::new();
    let mut found = None;
    let mut rest = xml;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find('>').expect("an unclosed tag") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if tag.starts_with('?') {
            continue;
        }
        if let Some(end) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(end.trim()),
                "mis-nested </{end}>"
            );
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let element = tag.split_whitespace().next().unwrap().to_owned();
        let mut attributes = Vec::new();
        let mut text = tag[element.len()..].trim();
        while !text.is_empty() {
            let (key, after) = text.split_once("=\"").expect("an attribute without quotes");
            let (value, after) = after.split_once('"').expect("an unterminated attribute");
            assert!(!value.contains('<'), "a raw < in an attribute");
            attributes.push((key.trim().to_owned(), value.to_owned()));
            text = after.trim();
        }
        if element == name && found.is_none() {
            found = Some(attributes);
        }
        if !self_closing {
            stack.push(element);
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    found.unwrap_or_else(|| panic!("no <{name}> element"))
}

fn attribute(attributes: &[(String, String)], key: &str) -> usize {
    attributes
        .iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} attribute"))
        .1
        .parse()
        .unwrap()
}

#[test]
fn smoke_passes_on_the_current_image_with_a_junit_report_that_parses() {
    let (ws, _) = shared();
    let junit = TempDir::new("junit");
    let junit_file = junit.path().join("smoke.xml");
    // No --image: the current image is built (hash-gated: the shared build is reused).
    let child = spawn_smoke(ws.path(), &["--junit", junit_file.to_str().unwrap()]);
    let _leftovers = Leftovers(vec![owned_by(&child)]);
    let label = owned_by(&child);
    let (ok, stdout, stderr) = finish(child);
    assert!(ok, "smoke failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("smoke passed: "), "{stdout}");
    assert!(stdout.contains("container: SIGTERM drains a slow request, exit 0"));
    let xml = std::fs::read_to_string(&junit_file).unwrap();
    let suite = xml_attributes(&xml, "testsuite");
    let tests = attribute(&suite, "tests");
    assert!(tests >= 60, "{tests} checks");
    assert_eq!(attribute(&suite, "failures"), 0);
    assert_eq!(xml.matches("<testcase ").count(), tests);
    assert_eq!(labelled(&label), Vec::<String>::new(), "the run tore down");
}

#[test]
fn smoke_fails_with_a_readable_report_on_a_broken_endpoint() {
    let ws = copy_with_image("openeu-smoke-it-broken");
    // /countries renames a field: the contract and the checks both notice.
    edit(
        &ws.path().join("crates/openeu-api/src/sql/countries.sql"),
        |sql| sql.replace("'meetings', n", "'meeting_count', n"),
    );
    let child = spawn_smoke(ws.path(), &["--junit", "/dev/null"]);
    let _leftovers = Leftovers(vec![owned_by(&child)]);
    let label = owned_by(&child);
    let (ok, stdout, stderr) = finish(child);
    assert!(!ok, "smoke passed on a broken image:\n{stdout}");
    assert!(stdout.contains("smoke FAILED: "), "{stdout}");
    let report = stdout
        .split("\nFAIL countries\n")
        .nth(1)
        .unwrap_or_else(|| panic!("the report names the failing check:\n{stdout}\n{stderr}"));
    for expected in [
        "  request:  curl -i http://127.0.0.1:",
        "schema: /*/meeting_count: a field the contract does not have (in 7 places)",
        "schema: /*: the required field `meetings` is missing (in 7 places)",
        "  body:     [{\"country\"",
    ] {
        assert!(report.contains(expected), "{expected:?} in:\n{report}");
    }
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("profile: valid token ") && l.contains(" pass ")),
        "the rest still passes:\n{stdout}"
    );
    assert!(stderr.contains("smoke FAILED"), "the error line: {stderr}");
    assert_eq!(
        labelled(&label),
        Vec::<String>::new(),
        "torn down after a failure too"
    );
}

#[test]
fn smoke_url_passes_against_a_running_up_stack() {
    let ws = copy_with_image("openeu-smoke-it");
    let name = format!("smk{}", free_port());
    edit(&ws.path().join("Cargo.toml"), |text| {
        text.replace(
            "[workspace.metadata.xtask]\n",
            &format!(
                "[workspace.metadata.xtask]\nstack = \"{name}\"\ndb-port = {}\n",
                free_port()
            ),
        )
    });
    struct Down<'a>(Xtask<'a>);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = self.0.output(&["down"]);
        }
    }
    let x = Xtask::new(ws.path());
    let _down = Down(Xtask::new(ws.path()));
    let (url, stderr) = x.ok(&["up"]);
    let url = url.trim();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}\n{stderr}");
    let (stdout, _) = x.ok(&["smoke", "--url", url, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["failed"], 0, "{stdout}");
    assert!(report["passed"].as_u64().unwrap() >= 35, "{stdout}");
    let checks = report["checks"].as_array().unwrap();
    let seeded_skipped = checks
        .iter()
        .find(|c| c["name"] == "profile: valid token")
        .unwrap();
    assert_eq!(seeded_skipped["result"], "skip");
    assert!(
        checks.iter().all(|c| c["kind"] == "http"),
        "no container checks against a URL"
    );
    // A URL that does not answer fails with the reason, not a panic.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let text = x.fails(&["smoke", "--url", &dead]);
    assert!(
        text.contains("request failed: connecting to 127.0.0.1:"),
        "{text}"
    );
}

#[test]
fn a_killed_run_is_swept_by_the_next_while_a_live_run_stays_untouched() {
    let (ws, image) = shared();
    // Kill runs at two moments: as soon as their network exists, and once the app container
    // of the stack is there.
    let mut dead_labels = Vec::new();
    let mut guards = Vec::new();
    for (moment, wanted) in [("network", "network"), ("app container", "-api")] {
        let mut child = spawn_smoke(ws.path(), &["--image", image]);
        let label = owned_by(&child);
        guards.push(Leftovers(vec![label.clone()]));
        wait_until(
            &format!("the run to have its {moment}"),
            Duration::from_secs(120),
            || {
                let names = labelled(&label);
                names.iter().any(|n| n.ends_with(wanted))
                    || (wanted == "network" && !names.is_empty())
            },
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            !labelled(&label).is_empty(),
            "the killed run left something behind"
        );
        dead_labels.push(label);
    }
    // The next run sweeps them when it starts.
    let started = Instant::now();
    let live = spawn_smoke(ws.path(), &["--image", image]);
    let live_label = owned_by(&live);
    guards.push(Leftovers(vec![live_label.clone()]));
    wait_until(
        "the dead runs' leftovers to go",
        Duration::from_secs(60),
        || dead_labels.iter().all(|l| labelled(l).is_empty()),
    );
    eprintln!(
        "leftovers of killed runs gone {:.1}s after the next run started",
        started.elapsed().as_secs_f64()
    );
    // A sweep while the live run runs (doctor sweeps too) leaves the live run alone.
    wait_until(
        "the live run's app container",
        Duration::from_secs(120),
        || labelled(&live_label).iter().any(|n| n.ends_with("-api")),
    );
    let _ = Xtask::new(ws.path()).output(&["doctor"]);
    let before = labelled(&live_label);
    assert!(before.iter().any(|n| n.ends_with("-api")), "{before:?}");
    let (ok, stdout, stderr) = finish(live);
    assert!(ok, "the live run was disturbed:\n{stdout}\n{stderr}");
    assert_eq!(labelled(&live_label), Vec::<String>::new());
    for label in &dead_labels {
        assert_eq!(labelled(label), Vec::<String>::new());
    }
}

#[test]
fn four_runs_at_once_pass_without_collisions() {
    let (ws, image) = shared();
    let children: Vec<Child> = (0..4)
        .map(|_| spawn_smoke(ws.path(), &["--image", image, "--json"]))
        .collect();
    let _leftovers = Leftovers(children.iter().map(owned_by).collect());
    let labels: Vec<String> = children.iter().map(owned_by).collect();
    let mut failures = Vec::new();
    for child in children {
        let (ok, stdout, stderr) = finish(child);
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
        if !ok || report["failed"] != 0 {
            failures.push(format!("{stdout}\n{stderr}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
    for label in labels {
        assert_eq!(labelled(&label), Vec::<String>::new());
    }
}

#[test]
fn sigterm_and_ctrl_c_tear_the_run_down_before_exit() {
    let (ws, image) = shared();
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let child = spawn_smoke(ws.path(), &["--image", image]);
        let label = owned_by(&child);
        let _leftovers = Leftovers(vec![label.clone()]);
        wait_until("the run's app container", Duration::from_secs(120), || {
            labelled(&label).iter().any(|n| n.ends_with("-api"))
        });
        let pid = child.id().to_string();
        let kill = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "exit after SIG{signal}");
        assert_eq!(
            labelled(&label),
            Vec::<String>::new(),
            "SIG{signal}: torn down before exit:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
