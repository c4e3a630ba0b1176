//! Local previews with the real engine: a scratch git repository (a copy of the workspace) with
//! two branches whose seeds differ; both previews up at once, each serving its own data over
//! real HTTP; `gc` by age (the creation time is injected, never waited for) and by gone
//! branches; and `up` killed at its failpoints, then run again, duplicating nothing. Each test
//! has a stack of its own and removes everything it labelled, even when it fails.

use std::path::Path;

use serde_json::Value;

use crate::support::{DockerCleanup, TempDir, Xtask, docker_ok, edit, free_port, repo_copy};

const MEETING: &str = "ep-2026-01-19-plenary";
const TITLE: &str =
    "Plenary session: Council and Commission statements on the climate target for 2040";

/// A copy of the repository as a git repository of its own, with a stack of its own and the
/// branches `feature/a` and `feature/b`, whose seeds name one meeting differently.
struct Repo {
    ws: TempDir,
    stack: String,
    cleanup: DockerCleanup,
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

impl Repo {
    fn new() -> Repo {
        let ws = repo_copy();
        let stack = format!("pv{}", free_port());
        edit(&ws.path().join("Cargo.toml"), |s| {
            s.replace(
                "[workspace.metadata.xtask]\n",
                &format!("[workspace.metadata.xtask]\nstack = \"{stack}\"\n"),
            )
        });
        let dir = ws.path();
        git(dir, &["init", "-q", "-b", "main"]);
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", "base"]);
        for (branch, title) in [
            ("feature/a", "Preview ALPHA"),
            ("feature/b", "Preview BRAVO"),
        ] {
            git(dir, &["checkout", "-q", "-b", branch, "main"]);
            edit(&dir.join("supabase/seed/meetings.toml"), |s| {
                s.replacen(TITLE, title, 1)
            });
            git(dir, &["commit", "-q", "-am", title]);
        }
        git(dir, &["checkout", "-q", "main"]);
        Repo {
            ws,
            stack,
            cleanup: DockerCleanup::new(),
        }
    }

    fn xtask(&self) -> Xtask<'_> {
        Xtask::new(self.ws.path()).label(&self.cleanup.label)
    }

    fn list(&self) -> Vec<Value> {
        let (out, _) = self.xtask().ok(&["preview", "list", "--json"]);
        serde_json::from_str::<Vec<Value>>(&out).unwrap()
    }

    /// How many containers, networks and volumes carry this stack's preview label.
    fn objects(&self) -> (usize, usize, usize) {
        let filter = format!("label=org.openeu.preview.stack={}", self.stack);
        let count = |args: &[&str]| {
            docker_ok(&[args, &["--quiet", "--filter", &filter]].concat())
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        };
        (
            count(&["ps", "--all"]),
            count(&["network", "ls"]),
            count(&["volume", "ls"]),
        )
    }
}

/// The title the preview at `url` serves for the meeting the branches renamed.
fn title(url: &str) -> String {
    let address = url.trim_start_matches("http://");
    let response = xtask::http::get(address, &format!("/meetings/{MEETING}")).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    response.json().unwrap()["title"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn two_branches_serve_their_own_seeds_and_gc_removes_exactly_what_it_should() {
    let repo = Repo::new();
    let two_days_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 2 * 86_400;
    let (a, _) = repo.xtask().ok(&[
        "preview",
        "up",
        "--branch",
        "feature/a",
        "--created-at",
        &two_days_ago.to_string(),
    ]);
    let (b, _) = repo.xtask().ok(&["preview", "up", "--branch", "feature/b"]);
    let (a, b) = (a.trim().to_owned(), b.trim().to_owned());
    assert_ne!(a, b);
    // Both at once, each with its own seed.
    assert_eq!(title(&a), "Preview ALPHA");
    assert_eq!(title(&b), "Preview BRAVO");

    let listed = repo.list();
    assert_eq!(listed.len(), 2, "{listed:#?}");
    for preview in &listed {
        assert_eq!(preview["state"], "healthy", "{preview:#}");
        assert!(
            preview["database_bytes"].as_u64().unwrap() > 0,
            "{preview:#}"
        );
        assert!(preview["memory_bytes"].as_u64().unwrap() > 0, "{preview:#}");
        assert_eq!(preview["commit"].as_str().unwrap().len(), 40, "{preview:#}");
    }
    let branches: Vec<&str> = listed
        .iter()
        .map(|p| p["branch"].as_str().unwrap())
        .collect();
    assert_eq!(branches.len(), 2);
    assert!(branches.contains(&"feature/a") && branches.contains(&"feature/b"));

    // `up` again: the same URL, and still its own data.
    let (again, _) = repo.xtask().ok(&["preview", "up", "--branch", "feature/a"]);
    assert_eq!(again.trim(), a, "the port is stable for the branch");
    assert_eq!(repo.objects(), (4, 2, 2));

    // By age: a dry run lists feature/a only and removes nothing.
    let (dry, _) = repo
        .xtask()
        .ok(&["preview", "gc", "--older-than", "1d", "--dry-run"]);
    assert!(dry.contains("would remove feature/a"), "{dry}");
    assert!(!dry.contains("feature/b"), "{dry}");
    assert_eq!(repo.list().len(), 2);
    let (gc, _) = repo
        .xtask()
        .ok(&["preview", "gc", "--older-than", "1d", "--json"]);
    let gc: Value = serde_json::from_str(&gc).unwrap();
    let removed: Vec<&str> = gc["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["branch"].as_str().unwrap())
        .collect();
    assert_eq!(removed, ["feature/a"]);
    assert_eq!(title(&b), "Preview BRAVO", "feature/b is untouched");
    assert_eq!(repo.objects(), (2, 1, 1));

    // By gone branch: nothing while feature/b exists and is not merged; then it is deleted.
    let (kept, _) = repo.xtask().ok(&["preview", "gc", "--gone", "--json"]);
    assert_eq!(
        serde_json::from_str::<Value>(&kept).unwrap()["removed"],
        serde_json::json!([])
    );
    git(repo.ws.path(), &["branch", "-q", "-D", "feature/b"]);
    let (gone, _) = repo.xtask().ok(&["preview", "gc", "--gone"]);
    assert!(gone.contains("removed feature/b"), "{gone}");
    assert!(gone.contains("branch deleted"), "{gone}");
    assert!(repo.list().is_empty());
    assert_eq!(repo.objects(), (0, 0, 0));
}

#[test]
fn up_killed_at_each_step_then_up_again_duplicates_nothing() {
    let repo = Repo::new();
    for point in ["preview-up:after-network", "preview-up:after-database"] {
        let out = repo.xtask().env(xtask::failpoint::VAR, point).fails(&[
            "preview",
            "up",
            "--branch",
            "feature/a",
        ]);
        assert!(out.contains(&format!("failpoint {point}")), "{out}");
    }
    let (url, _) = repo.xtask().ok(&["preview", "up", "--branch", "feature/a"]);
    assert_eq!(title(url.trim()), "Preview ALPHA");
    assert_eq!(
        repo.objects(),
        (2, 1, 1),
        "one db, one api, one network, one volume"
    );
    let listed = repo.list();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["state"], "healthy");
    repo.xtask().ok(&["preview", "down", "feature/a"]);
    assert_eq!(repo.objects(), (0, 0, 0));
}
