//! Local previews with the real engine: a scratch git repository (a copy of the workspace) with
//! two branches whose seeds differ; both previews up at once, each serving its own data over
//! real HTTP; `gc` by age (the creation time is injected, never waited for) and by gone
//! branches; and `up` killed at its failpoints, then run again, duplicating nothing. Each test
//! has a stack of its own and removes everything it labelled, even when it fails.

use serde_json::Value;

use crate::support::{DockerCleanup, TempDir, Xtask, docker_ok, edit, free_port, git, repo_copy};

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

    /// `list` once it shows `count` previews, all healthy (docker's health checks run once a
    /// second after a container starts).
    fn healthy(&self, count: usize) -> Vec<Value> {
        let mut listed = Vec::new();
        crate::support::wait_until(
            "the previews to be healthy",
            std::time::Duration::from_secs(60),
            || {
                listed = self.list();
                listed.len() == count && listed.iter().all(|p| p["state"] == "healthy")
            },
        );
        listed
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
    let response = xtask_core::http::get(address, &format!("/meetings/{MEETING}")).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    response.json().unwrap()["title"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn two_branches_serve_their_own_seeds_and_gc_removes_exactly_what_it_should() {
    let repo = Repo::new();
    let two_days_ago = xtask_core::time::now() - 2 * 86_400;
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

    // `up` returns on /ready; docker's own health checks (what `list` reports) follow.
    let listed = repo.healthy(2);
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
        let out = repo.xtask().env(xtask_core::failpoint::VAR, point).fails(&[
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
    let listed = repo.healthy(1);
    assert_eq!(listed.len(), 1);
    // The scratch worktree lives as long as the preview (docs/previews.md), and no longer.
    let trees =
        xtask_core::workspace::Workspace::open(Some(repo.ws.path().to_path_buf()), Vec::new())
            .unwrap()
            .target_dir()
            .unwrap()
            .join("xtask/preview-trees");
    let count = || std::fs::read_dir(&trees).map_or(0, Iterator::count);
    assert_eq!(count(), 1, "{}", trees.display());
    repo.xtask().ok(&["preview", "down", "feature/a"]);
    assert_eq!(repo.objects(), (0, 0, 0));
    assert_eq!(count(), 0, "{}", trees.display());
}

// Remote previews, against the stub of Supabase's Management API and Render's preview
// endpoints (xtask/crates/stubs/src/supabase.rs): no Docker, no network.

mod remote {
    use serde_json::Value;
    use xtask_stubs::supabase::{self as stub, Scenario, SeedBranch, Stub};

    use crate::support::{Xtask, repo_root, text};

    const IMAGE: &str = "registry.example/openeu-backend:0123456789ab";

    fn xtask(stub: &Stub, root: &std::path::Path) -> Xtask<'static> {
        let root: &'static std::path::Path = Box::leak(root.to_path_buf().into_boxed_path());
        Xtask::new(root)
            .env("RENDER_API_KEY", "rnd_stubkey")
            .env("RENDER_SERVICE_ID", stub::SERVICE_ID)
            .env("RENDER_API_URL", &stub.render_url())
            .env("SUPABASE_REST_KEY", "sbp_stubtoken")
            .env("SUPABASE_PROJECT_ID", stub::PROJECT_REF)
            .env("SUPABASE_API_URL", &stub.supabase_url())
    }

    fn up(stub: &Stub, branch: &str) -> std::process::Output {
        xtask(stub, &repo_root()).output(&[
            "preview",
            "up",
            "--remote",
            "--branch",
            branch,
            "--image",
            IMAGE,
            "--skip-smoke",
            "--json",
        ])
    }

    fn previews(stub: &Stub) -> Vec<Value> {
        stub.services()
            .into_iter()
            .filter(|s| s["id"] != stub::SERVICE_ID)
            .collect()
    }

    #[test]
    fn up_waits_for_the_branch_then_deploys_the_preview_with_its_own_database() {
        let stub = Stub::start(Scenario {
            supabase_rate_limited_first: 2,
            ..Scenario::default()
        })
        .unwrap();
        let out = up(&stub, "feature/x");
        let all = text(&out);
        assert!(out.status.success(), "{all}");
        let result: Value = serde_json::from_slice(&out.stdout).unwrap();
        // The branch was COMING_UP, then ran its migrations, before Render was asked.
        assert!(all.contains("COMING_UP"), "{all}");
        assert!(all.contains("rate limited by Supabase (429)"), "{all}");
        let branch = stub
            .branches()
            .into_iter()
            .find(|b| b["git_branch"] == "feature/x")
            .expect("a Supabase branch for feature/x");
        assert_eq!(branch["status"], "MIGRATIONS_PASSED");
        assert_eq!(result["supabase_branch"], branch["project_ref"]);

        let made = previews(&stub);
        assert_eq!(made.len(), 1, "{made:#?}");
        let preview = &made[0];
        assert_eq!(preview["imagePath"], IMAGE);
        assert_eq!(
            preview["serviceDetails"]["parentServer"]["id"],
            stub::SERVICE_ID
        );
        assert_eq!(result["url"], preview["serviceDetails"]["url"]);
        let env = stub.env(preview["id"].as_str().unwrap());
        assert_eq!(env.get("IS_PULL_REQUEST").map(String::as_str), Some("true"));
        assert_eq!(env.get("ENVIRONMENT").map(String::as_str), Some("preview"));
        assert_eq!(
            env.get("RENDER_GIT_BRANCH").map(String::as_str),
            Some("feature/x")
        );
        assert_eq!(
            env.get("SUPABASE_PROJECT_ID").map(String::as_str),
            Some(stub::PROJECT_REF)
        );
        assert!(
            !env.contains_key("DATABASE_URL"),
            "production's database must not reach a preview: {env:?}"
        );

        let journal = stub.journal();
        // The deploy that started with production's variables was cancelled before any went live.
        assert!(
            journal
                .iter()
                .any(|r| r.method == "POST" && r.target.ends_with("/cancel")),
            "{journal:#?}"
        );
        for request in &journal {
            let auth = request
                .headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.as_str());
            let expected = if request.target.starts_with("/render/") {
                "Bearer rnd_stubkey"
            } else {
                "Bearer sbp_stubtoken"
            };
            assert_eq!(auth, Some(expected), "{}", request.target);
            assert!(!request.target.contains("sbp_") && !request.target.contains("rnd_"));
            // Branches are looked up by project ref, never by the deprecated UUID.
            if let Some(key) = request.target.strip_prefix("/v1/branches/") {
                assert!(!key.contains('-'), "a UUID lookup: {}", request.target);
            }
        }
        assert!(!all.contains("sbp_stubtoken") && !all.contains("rnd_stubkey"));

        // Again: both sides are reused, nothing is created twice.
        let again = up(&stub, "feature/x");
        assert!(again.status.success(), "{}", text(&again));
        assert_eq!(previews(&stub).len(), 1);
        let made = |path: &str| {
            stub.journal()
                .iter()
                .filter(|r| r.method == "POST" && r.target.ends_with(path))
                .count()
        };
        assert_eq!(made("/preview"), 1);
        assert_eq!(
            made(&format!("/projects/{}/branches", stub::PROJECT_REF)),
            1
        );
    }

    #[test]
    fn up_stops_at_failed_migrations_before_render() {
        let stub = Stub::start(Scenario {
            new_branch_steps: [
                ("COMING_UP", "CREATING_PROJECT"),
                ("ACTIVE_HEALTHY", "RUNNING_MIGRATIONS"),
                ("ACTIVE_HEALTHY", "MIGRATIONS_FAILED"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .to_vec(),
            ..Scenario::default()
        })
        .unwrap();
        let out = up(&stub, "feature/broken");
        let all = text(&out);
        assert!(!out.status.success(), "{all}");
        assert!(all.contains("MIGRATIONS_FAILED"), "{all}");
        assert!(all.contains("cargo xtask db reset"), "{all}");
        assert!(
            !stub
                .journal()
                .iter()
                .any(|r| r.target.ends_with("/preview")),
            "nothing is created on Render"
        );
        assert!(previews(&stub).is_empty());
    }

    #[test]
    fn a_failed_render_deploy_is_reported_with_its_status() {
        let stub = Stub::start(Scenario {
            deploy_statuses: vec!["build_in_progress".into(), "build_failed".into()],
            ..Scenario::default()
        })
        .unwrap();
        let out = up(&stub, "feature/y");
        let all = text(&out);
        assert!(!out.status.success(), "{all}");
        assert!(all.contains("build_failed"), "{all}");
        assert!(all.contains("deploy logs"), "{all}");
    }

    #[test]
    fn git_backed_services_and_disabled_branching_are_refused_with_the_fix() {
        let stub = Stub::start(Scenario {
            image_backed: false,
            ..Scenario::default()
        })
        .unwrap();
        let out = up(&stub, "feature/z");
        assert!(!out.status.success());
        assert!(text(&out).contains("image-backed"), "{}", text(&out));

        let stub = Stub::start(Scenario {
            branching_enabled: false,
            ..Scenario::default()
        })
        .unwrap();
        let out = xtask(&stub, &repo_root()).output(&["preview", "list", "--remote"]);
        assert!(!out.status.success());
        assert!(
            text(&out).contains("branching is not enabled"),
            "{}",
            text(&out)
        );
    }

    #[test]
    fn gc_removes_stale_orphans_on_either_side_and_never_production() {
        let old = "2026-01-01T00:00:00Z";
        let young = "2099-01-01T00:00:00Z";
        let branch = |name: &str, created: &str| SeedBranch {
            name: name.to_owned(),
            git_branch: Some(name.to_owned()),
            is_default: false,
            created_at: created.to_owned(),
        };
        let render_name =
            |b: &str| xtask_preview::preview::remote::render_name(stub::SERVICE_NAME, b);
        let mut scenario = Scenario::default();
        // The default branch is old too: gc must still keep it.
        scenario.branches.extend([
            branch("db-only", old),
            branch("stale", old),
            branch("young", young),
        ]);
        scenario.render_previews = vec![
            (render_name("stale"), old.to_owned()),
            (render_name("young"), young.to_owned()),
            (render_name("render-only"), old.to_owned()),
        ];
        let stub = Stub::start(scenario).unwrap();
        let x = xtask(&stub, &repo_root());

        let (listed, _) = x.ok(&["preview", "list", "--remote", "--json"]);
        let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
        assert_eq!(listed.len(), 4, "{listed:#?}");
        let orphans = listed.iter().filter(|p| !p["orphan"].is_null()).count();
        assert_eq!(orphans, 2, "{listed:#?}");

        // Without --yes and without a terminal: nothing is deleted.
        let refused = x.fails(&["preview", "gc", "--remote", "--older-than", "1d"]);
        assert!(refused.contains("--yes"), "{refused}");
        assert_eq!(stub.services().len(), 4);

        let (dry, _) = x.ok(&[
            "preview",
            "gc",
            "--remote",
            "--older-than",
            "1d",
            "--dry-run",
            "--json",
        ]);
        let dry: Value = serde_json::from_str(&dry).unwrap();
        assert_eq!(dry["removed"].as_array().unwrap().len(), 3, "{dry:#}");
        assert_eq!(stub.services().len(), 4, "a dry run deletes nothing");

        let (done, _) = x.ok(&[
            "preview",
            "gc",
            "--remote",
            "--older-than",
            "1d",
            "--yes",
            "--json",
        ]);
        let done: Value = serde_json::from_str(&done).unwrap();
        assert_eq!(done["removed"].as_array().unwrap().len(), 3, "{done:#}");
        let services: Vec<String> = stub
            .services()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            services,
            [stub::SERVICE_NAME.to_owned(), render_name("young")]
        );
        let branches: Vec<String> = stub
            .branches()
            .iter()
            .map(|b| b["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(branches, ["main", "young"]);
        let journal = stub.journal();
        assert!(
            !journal.iter().any(|r| r.method == "DELETE"
                && (r.target.ends_with(stub::SERVICE_ID) || r.target.ends_with(stub::PROJECT_REF))),
            "production and the default branch are never deleted"
        );
        let refused = x.fails(&["preview", "down", "--remote", "--yes", "main"]);
        assert!(refused.contains("main branch"), "{refused}");
    }
}

mod cost {
    use serde_json::Value;
    use xtask_stubs::supabase::{self as stub, Scenario, SeedBranch, Stub};

    use crate::support::{Xtask, edit, repo_copy};

    #[test]
    fn list_remote_estimates_each_previews_cost_from_the_hourly_price() {
        let created = "2026-01-01T00:00:00Z";
        let mut scenario = Scenario::default();
        scenario.branches.push(SeedBranch {
            name: "feature/cost".to_owned(),
            git_branch: Some("feature/cost".to_owned()),
            is_default: false,
            created_at: created.to_owned(),
        });
        scenario.render_previews = vec![(
            xtask_preview::preview::remote::render_name(stub::SERVICE_NAME, "feature/cost"),
            created.to_owned(),
        )];
        let stub = Stub::start(scenario).unwrap();
        let ws = repo_copy();
        edit(&ws.path().join("Cargo.toml"), |s| {
            s.replace(
                "[workspace.metadata.xtask]\n",
                "[workspace.metadata.xtask]\npreview-price-per-hour = 0.5\n",
            )
        });
        let (out, err) = Xtask::new(ws.path())
            .env("RENDER_API_KEY", "rnd_stubkey")
            .env("RENDER_SERVICE_ID", stub::SERVICE_ID)
            .env("RENDER_API_URL", &stub.render_url())
            .env("SUPABASE_REST_KEY", "sbp_stubtoken")
            .env("SUPABASE_PROJECT_ID", stub::PROJECT_REF)
            .env("SUPABASE_API_URL", &stub.supabase_url())
            .ok(&["preview", "list", "--remote", "--json"]);
        let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(listed.len(), 1, "{listed:#?}\n{err}");
        let pair = &listed[0];
        assert!(pair["orphan"].is_null(), "{pair:#}");
        let hours = pair["age_seconds"].as_f64().unwrap() / 3600.0;
        let cost = pair["estimated_cost"].as_f64().unwrap();
        assert!((cost - 0.5 * hours).abs() < 0.01, "{cost} for {hours} h");
    }
}
