//! `cargo lab bench base`: the base image's figures against a private registry on a random
//! loopback port. Everything it creates is labelled and removed at the end, so it leaves the
//! machine as it found it.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

pub mod precision;

use anyhow::Result;

use super::{Cleanup, Figure, fmt_secs, median, report, secs, timed};
use xtask_core::{
    docker::{Build, Docker, ImageOwner},
    files::copy_tree,
    process, progress,
    workspace::{self, Workspace},
};
use xtask_images::base::{self, edit_table};
use xtask_setup::setup;

use crate::flags;

impl flags::BenchBase {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        if self.precision {
            return self.run_precision(ws);
        }
        let step = progress::step("setup");
        setup::ensure(ws)?;
        step.done();
        let docker = Docker::new(ws);
        let label = format!("org.openeu.bench-run={}", std::process::id());
        let scratch = ws.scratch("bench")?.join(std::process::id().to_string());
        std::fs::create_dir_all(&scratch)?;
        let mut cleanup = Cleanup::new(&docker, label.clone(), scratch.clone());
        let registry = cleanup.start_registry()?;
        let bench = Bench {
            ws,
            docker: &docker,
            label,
            registry,
            scratch,
            runs: self.runs.max(1),
        };

        let repo = bench.copy_repo()?;
        let figures = vec![
            bench.fresh_machine(&repo)?,
            bench.warm_machine(&repo)?,
            bench.false_rebuilds()?,
            bench.source_only_rebuild(&repo)?,
            bench.scale()?,
            bench.cold_compile()?,
        ];
        drop(cleanup);

        report(&figures, self.json)
    }
}
impl flags::BenchBase {
    /// `--precision`: the decision time and the precision figures; no Docker.
    fn run_precision(&self, ws: &Workspace) -> Result<()> {
        let scratch = ws.scratch("bench")?.join(std::process::id().to_string());
        std::fs::create_dir_all(&scratch)?;
        let toolchain = workspace::toolchain_version(&ws.path(workspace::TOOLCHAIN_FILE))?;
        let result = (|| -> Result<Vec<Figure>> {
            let mut figures = decision_times(ws, &scratch, &toolchain, self.runs.max(1))?;
            let chef = cargo_chef(ws)?;
            let open = |root: &Path| -> Result<Workspace> {
                let ws = Workspace::open(Some(root.to_path_buf()), Vec::new())?;
                ws.sh.set_var("RUSTUP_TOOLCHAIN", &toolchain);
                Ok(ws)
            };
            let outcome = precision::run(
                &scratch.join("history"),
                self.commits,
                &toolchain,
                chef.as_deref(),
                &open,
            )?;
            for (op, (n, oracle, ours, chef)) in &outcome.per_op {
                progress::note(format!(
                    "{op:<18} commits {n:>3}  oracle {oracle:>3}  ours {ours:>3}  cargo-chef {chef:>3}"
                ));
            }
            let score =
                |s: &precision::Score| format!("{} false, {} missed", s.false_rebuilds, s.missed);
            let chef_false = outcome.chef.map(|c| c.false_rebuilds);
            figures.push(Figure {
                name: format!(
                    "precision over {} commits ({} real rebuilds): ours vs cargo-chef",
                    outcome.commits, outcome.oracle_rebuilds
                ),
                ours: score(&outcome.ours),
                reference: outcome
                    .chef
                    .as_ref()
                    .map_or_else(|| "cargo-chef not installed".to_owned(), score),
                ratio: chef_false.map(|c| outcome.ours.false_rebuilds as f64 / (c.max(1)) as f64),
                ratio_is: "ours / chef false rebuilds",
                goal: "0 missed, <= 0.5",
                met: outcome.ours.missed == 0
                    && chef_false.is_none_or(|c| outcome.ours.false_rebuilds * 2 <= c),
            });
            figures.push(Figure {
                name: "precision: ours vs manifest-COPY layer key".to_owned(),
                ours: score(&outcome.ours),
                reference: score(&outcome.copy),
                ratio: Some(
                    outcome.ours.false_rebuilds as f64 / outcome.copy.false_rebuilds.max(1) as f64,
                ),
                ratio_is: "ours / COPY false rebuilds",
                goal: "0 missed",
                met: outcome.ours.missed == 0,
            });
            Ok(figures)
        })();
        let _ = std::fs::remove_dir_all(&scratch);
        report(&result?, self.json)
    }
}

/// The decision (`base hash`) on a copy of this repository: with an empty cargo home (the
/// resolve downloads the index entries and the closure's crates from crates.io), with a warm
/// cargo home and no cached key, and with the key cached.
fn decision_times(
    ws: &Workspace,
    scratch: &Path,
    toolchain: &str,
    runs: usize,
) -> Result<Vec<Figure>> {
    let repo = super::copy_repo(ws, &scratch.join("repo"))?;
    let exe = super::xtask_binary()?;
    let hash = |cargo_home: Option<&Path>, target: &Path| {
        let mut cmd = process::command(&exe);
        cmd.arg("--workspace")
            .arg(&repo)
            .args(["base", "hash"])
            .env("RUSTUP_TOOLCHAIN", toolchain)
            .env("CARGO_TARGET_DIR", target);
        if let Some(home) = cargo_home {
            cmd.env("CARGO_HOME", home);
        }
        cmd
    };
    let step = progress::step("decision time: base hash with an empty cargo home");
    let mut fresh = Vec::new();
    for i in 0..runs.min(3) {
        let home = scratch.join(format!("cargo-home-{i}"));
        fresh.push(timed(hash(
            Some(&home),
            &scratch.join(format!("target-fresh-{i}")),
        ))?);
    }
    step.done();
    let step = progress::step("decision time: warm cargo home, no cached key");
    let mut miss = Vec::new();
    for i in 0..runs {
        miss.push(timed(hash(
            None,
            &scratch.join(format!("target-miss-{i}")),
        ))?);
    }
    step.done();
    let step = progress::step("decision time: cached key");
    let mut hit = Vec::new();
    for _ in 0..runs {
        hit.push(timed(hash(None, &scratch.join("target-miss-0")))?);
    }
    step.done();
    let mut no_deps = Vec::new();
    for _ in 0..runs {
        let mut cmd = process::command("cargo");
        cmd.args(["metadata", "--no-deps", "--format-version", "1"])
            .current_dir(&repo)
            .env("RUSTUP_TOOLCHAIN", toolchain);
        no_deps.push(timed(cmd)?);
    }
    let (fresh, miss, hit, no_deps) = (
        median(&mut fresh),
        median(&mut miss),
        median(&mut hit),
        median(&mut no_deps),
    );
    Ok(vec![
        Figure {
            name: "decision, empty cargo home (crates.io download)".to_owned(),
            ours: fmt_secs(fresh),
            reference: "85.95s base build (docs/benchmarks.md)".to_owned(),
            ratio: Some(secs(fresh) / 85.95),
            ratio_is: "ours / base build",
            goal: "far below: <= 0.25",
            met: secs(fresh) / 85.95 <= 0.25,
        },
        Figure {
            name: "decision, warm cargo home, key not cached".to_owned(),
            ours: fmt_secs(miss),
            reference: fmt_secs(no_deps),
            ratio: Some(secs(miss) / secs(no_deps)),
            ratio_is: "ours / metadata --no-deps",
            goal: "a cost to know",
            met: true,
        },
        Figure {
            name: "decision, key cached".to_owned(),
            ours: fmt_secs(hit),
            reference: fmt_secs(no_deps),
            ratio: Some(secs(hit) / secs(no_deps)),
            ratio_is: "ours / metadata --no-deps",
            goal: "<= 2x",
            met: secs(hit) / secs(no_deps) <= 2.0,
        },
    ])
}

/// cargo-chef under the target directory, installed on first use; `None` (with a note) when
/// it cannot be installed.
fn cargo_chef(ws: &Workspace) -> Result<Option<PathBuf>> {
    let root = ws.target_dir()?.join("xtask/cargo-chef");
    let binary = root.join("bin/cargo-chef");
    if binary.exists() {
        return Ok(Some(binary));
    }
    let step = progress::step("installing cargo-chef (cargo install cargo-chef --locked)");
    let mut cmd = process::command("cargo");
    cmd.args(["install", "cargo-chef", "--locked", "--root"])
        .arg(&root)
        .env("CARGO_TARGET_DIR", root.join("build"));
    match cmd.output() {
        Ok(out) if out.status.success() => {
            step.done();
            Ok(Some(binary))
        }
        Ok(out) => {
            progress::note(format!(
                "cargo-chef could not be installed, its figures are skipped:\n{}",
                String::from_utf8_lossy(&out.stderr).trim_end()
            ));
            Ok(None)
        }
        Err(err) => {
            progress::note(format!(
                "cargo-chef could not be installed ({err}), its figures are skipped"
            ));
            Ok(None)
        }
    }
}

struct Bench<'a> {
    ws: &'a Workspace,
    docker: &'a Docker<'a>,
    label: String,
    registry: String,
    scratch: PathBuf,
    runs: usize,
}

impl Bench<'_> {
    /// Our own binary, on `workspace`, against the private registry, with the bench label.
    fn xtask(&self, workspace: &Path, args: &[&str]) -> Command {
        let exe = super::xtask_binary().expect("the xtask binary");
        let mut cmd = process::command(exe);
        cmd.arg("--workspace")
            .arg(workspace)
            .arg("--label")
            .arg(&self.label)
            .args(args);
        cmd.env("DOCKER_REGISTRY_SERVER", &self.registry);
        cmd
    }

    /// A workspace handle on `root` that uses the private registry and labels what it builds.
    fn open(&self, root: &Path) -> Result<Workspace> {
        let mut ws = Workspace::open(Some(root.to_path_buf()), vec![self.label.clone()])?;
        ws.config.registry = self.registry.clone();
        // Edited copies may name a toolchain that is not installed; cargo metadata runs on ours.
        let toolchain = workspace::toolchain_version(&self.ws.path(workspace::TOOLCHAIN_FILE))?;
        ws.sh.set_var("RUSTUP_TOOLCHAIN", toolchain);
        Ok(ws)
    }

    /// The tracked and unignored files of this repository, copied (no target/, no .git).
    fn copy_repo(&self) -> Result<PathBuf> {
        super::copy_repo(self.ws, &self.scratch.join("repo"))
    }

    /// The CI/Render case: the base is in the registry but not local. Ours looks it up and
    /// pulls; docker rebuilds it with no layer cache.
    fn fresh_machine(&self, repo: &Path) -> Result<Figure> {
        let ws = self.open(repo)?;
        let inputs = base::compute(&ws)?;
        let reference = base::reference(&ws, &inputs);
        let step = progress::step("fresh machine: docker build --no-cache of Dockerfile.base");
        // A no-cache build also makes the base's layers unique to this run, so the pull below
        // really downloads them instead of finding them shared with an earlier base.
        let started = Instant::now();
        base::build(&ws, self.docker, &inputs, true)?;
        let docker_time = started.elapsed();
        base::push_image(&ws, self.docker, &reference)?;
        step.done();
        let step = progress::step(
            "fresh machine: cargo xtask base build --push with the local image pruned",
        );
        let mut times = Vec::new();
        for _ in 0..self.runs.min(3) {
            self.docker.remove_image(&reference)?;
            times.push(timed(self.xtask(repo, &["base", "build", "--push"]))?);
        }
        step.done();
        let ours = median(&mut times);
        let ratio = secs(docker_time) / secs(ours);
        Ok(Figure {
            name: "fresh machine, base in registry".to_owned(),
            ours: fmt_secs(ours),
            reference: fmt_secs(docker_time),
            ratio: Some(ratio),
            ratio_is: "docker / ours (speed-up)",
            goal: ">= 20x",
            met: ratio >= 20.0,
        })
    }

    /// A warm machine: `base status` vs a docker build whose every layer is cached.
    fn warm_machine(&self, repo: &Path) -> Result<Figure> {
        let ws = self.open(repo)?;
        let inputs = base::compute(&ws)?;
        let context = base::write_context(&ws, &inputs)?;
        let log = self.scratch.join("warm.log");
        let step = progress::step("warm machine: base status vs a fully cached docker build");
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            ours.push(timed(self.xtask(repo, &["base", "status"]))?);
            let started = Instant::now();
            self.docker.build(&Build {
                dockerfile: &context.join(workspace::BASE_DOCKERFILE),
                context: &context,
                tags: Vec::new(),
                build_args: inputs.build_args.clone(),
                labels: Vec::new(),
                no_cache: false,
                owner: ImageOwner::Run,
                log: log.clone(),
            })?;
            theirs.push(started.elapsed());
        }
        step.done();
        let (ours, theirs) = (median(&mut ours), median(&mut theirs));
        let ratio = secs(theirs) / secs(ours);
        Ok(Figure {
            name: "warm machine: base status vs cached build".to_owned(),
            ours: fmt_secs(ours),
            reference: fmt_secs(theirs),
            ratio: Some(ratio),
            ratio_is: "docker / ours (speed-up)",
            goal: ">= 1x",
            met: ratio >= 1.0,
        })
    }

    /// Over the edit table: how many rows each approach rebuilds, and how many it gets wrong.
    /// Docker's side is a real build of a Dockerfile that COPYs the manifests, judged by whether
    /// its dependency step ran or came from the layer cache.
    fn false_rebuilds(&self) -> Result<Figure> {
        let rows = edit_table::load(&self.ws.root)?;
        let step = progress::step(format!(
            "false rebuilds over {} edit-table rows",
            rows.len()
        ));
        let pristine = self.fixture("pristine")?;
        let pristine_hash = base::compute(&self.open(&pristine)?)?.hash;
        self.naive_build(&pristine)?;
        let (mut ours_rebuilds, mut ours_wrong, mut docker_rebuilds, mut docker_wrong) =
            (0, 0, 0, 0);
        for (i, row) in rows.iter().enumerate() {
            let dir = self.fixture(&format!("row-{i}"))?;
            row.apply(&dir)?;
            let ours = base::compute(&self.open(&dir)?)?.hash != pristine_hash;
            let docker = self.naive_build(&dir)?;
            ours_rebuilds += usize::from(ours);
            ours_wrong += usize::from(ours != row.changes);
            docker_rebuilds += usize::from(docker);
            docker_wrong += usize::from(docker != row.changes);
            progress::note(format!(
                "{:<60} must rebuild: {:<5} ours: {:<5} docker cache: {docker}",
                row.name, row.changes, ours
            ));
        }
        step.done();
        let expected = rows.iter().filter(|r| r.changes).count();
        Ok(Figure {
            name: "false rebuilds over the edit table".to_owned(),
            ours: format!("{ours_rebuilds} ({ours_wrong} wrong)"),
            reference: format!("{docker_rebuilds} ({docker_wrong} wrong)"),
            ratio: Some(ours_wrong as f64),
            ratio_is: "rows ours gets wrong",
            goal: if expected == ours_rebuilds {
                "rebuild on exactly the change rows"
            } else {
                "rebuild on change rows"
            },
            met: ours_wrong == 0,
        })
    }

    /// The fixture workspace whose Dockerfile.base is the naive one: COPY the manifests, then
    /// the step that would compile dependencies.
    fn fixture(&self, name: &str) -> Result<PathBuf> {
        let dir = self.scratch.join("fixtures").join(name);
        copy_tree(&self.ws.root.join(edit_table::FIXTURE), &dir)?;
        for file in [workspace::TOOLCHAIN_FILE, workspace::APP_DOCKERFILE] {
            std::fs::copy(self.ws.path(file), dir.join(file))?;
        }
        std::fs::create_dir_all(dir.join(".cargo"))?;
        std::fs::copy(
            self.ws.path(".cargo/config.toml"),
            dir.join(".cargo/config.toml"),
        )?;
        // A run-specific comment in a COPYed file keeps docker's layer cache from earlier runs
        // out of the count; our hash ignores comments, so it does not help either side.
        let manifest = dir.join(workspace::ROOT_MANIFEST);
        let text = std::fs::read_to_string(&manifest)?;
        std::fs::write(
            &manifest,
            format!("# bench run {}\n{text}", std::process::id()),
        )?;
        let rust_version = workspace::toolchain_version(&self.ws.path(workspace::TOOLCHAIN_FILE))?;
        std::fs::write(
            dir.join(workspace::BASE_DOCKERFILE),
            format!(
                "FROM rust:{rust_version}-slim-bookworm\nWORKDIR /build\nCOPY Cargo.toml Cargo.lock rust-toolchain.toml ./\nCOPY .cargo .cargo\nCOPY app/Cargo.toml app/\nCOPY util/Cargo.toml util/\nRUN echo compiling dependencies\n"
            ),
        )?;
        Ok(dir)
    }

    /// Builds the naive Dockerfile; true when its dependency step ran (a rebuild).
    fn naive_build(&self, dir: &Path) -> Result<bool> {
        let log = dir.join("naive-build.log");
        self.docker.build(&Build {
            dockerfile: &dir.join(workspace::BASE_DOCKERFILE),
            context: dir,
            tags: Vec::new(),
            build_args: Vec::new(),
            labels: Vec::new(),
            no_cache: false,
            owner: ImageOwner::Run,
            log: log.clone(),
        })?;
        let text = std::fs::read_to_string(&log)?;
        let after_run = text
            .split("RUN echo compiling dependencies")
            .last()
            .unwrap_or_default();
        Ok(!after_run.contains("Using cache"))
    }

    /// A source-only change: the app image on the warm base vs a cold build without it.
    fn source_only_rebuild(&self, repo: &Path) -> Result<Figure> {
        let step = progress::step("source-only change: image build on the warm base");
        let main_rs = repo.join("crates/openeu-api/src/main.rs");
        let text = std::fs::read_to_string(&main_rs)?;
        std::fs::write(
            &main_rs,
            format!("{text}\n// bench edit {}\n", std::process::id()),
        )?;
        let ours = timed(self.xtask(repo, &["image", "build"]))?;
        step.done();
        let step = progress::step("source-only change: cold build without the base");
        let rust_version = workspace::toolchain_version(&repo.join(workspace::TOOLCHAIN_FILE))?;
        let cold = self.scratch.join("Dockerfile.cold");
        std::fs::write(
            &cold,
            format!(
                "FROM rust:{rust_version}-slim-bookworm\nWORKDIR /build\nCOPY . .\nRUN cargo build --release --locked --package openeu-api\n"
            ),
        )?;
        let started = Instant::now();
        self.docker.build(&Build {
            dockerfile: &cold,
            context: repo,
            tags: Vec::new(),
            build_args: Vec::new(),
            labels: Vec::new(),
            no_cache: true,
            owner: ImageOwner::Run,
            log: self.scratch.join("cold.log"),
        })?;
        let cold_time = started.elapsed();
        step.done();
        let ratio = secs(ours) / secs(cold_time);
        Ok(Figure {
            name: "source-only change: app image".to_owned(),
            ours: fmt_secs(ours),
            reference: fmt_secs(cold_time),
            ratio: Some(ratio),
            ratio_is: "ours / cold",
            goal: "<= 0.25",
            met: ratio <= 0.25,
        })
    }

    /// Hashing a generated workspace of 500 members vs `cargo metadata --no-deps` on it.
    fn scale(&self) -> Result<Figure> {
        const MEMBERS: usize = 500;
        let step = progress::step(format!("scale: generating a {MEMBERS}-member workspace"));
        let dir = self.scratch.join("scale");
        generate_workspace(&dir, MEMBERS)?;
        for file in [workspace::TOOLCHAIN_FILE, workspace::BASE_DOCKERFILE] {
            std::fs::copy(self.ws.path(file), dir.join(file))?;
        }
        step.done();
        let step = progress::step("scale: base hash vs cargo metadata --no-deps");
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            ours.push(timed(self.xtask(&dir, &["base", "hash"]))?);
            let mut metadata = process::command("cargo");
            metadata
                .args(["metadata", "--no-deps", "--format-version", "1"])
                .current_dir(&dir);
            theirs.push(timed(metadata)?);
        }
        step.done();
        let (ours, theirs) = (median(&mut ours), median(&mut theirs));
        let ratio = secs(ours) / secs(theirs);
        Ok(Figure {
            name: "scale: hash 500 members".to_owned(),
            ours: fmt_secs(ours),
            reference: fmt_secs(theirs),
            ratio: Some(ratio),
            ratio_is: "ours / cargo metadata",
            goal: "<= 2x",
            met: ratio <= 2.0,
        })
    }

    /// xtask's cold compile in a fresh target directory.
    fn cold_compile(&self) -> Result<Figure> {
        let step = progress::step("xtask cold compile in a fresh target dir");
        let mut cmd = process::command("cargo");
        cmd.args(["build", "--quiet", "--package", "xtask"])
            .current_dir(&self.ws.root)
            .env("CARGO_TARGET_DIR", self.scratch.join("cold-target"));
        let elapsed = timed(cmd)?;
        step.done();
        Ok(Figure {
            name: "xtask cold compile".to_owned(),
            ours: fmt_secs(elapsed),
            reference: "30.00s goal".to_owned(),
            ratio: Some(secs(elapsed) / 30.0),
            ratio_is: "ours / goal",
            goal: "<= 30s",
            met: secs(elapsed) <= 30.0,
        })
    }
}

/// A workspace of `members` crates, each depending on an external crate and its predecessor,
/// with a Cargo.lock in cargo's format.
fn generate_workspace(dir: &Path, members: usize) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir.join(".cargo"))?;
    std::fs::write(
        dir.join(workspace::ROOT_MANIFEST),
        "[workspace]\nresolver = \"3\"\nmembers = [\"m/*\"]\n\n[workspace.metadata.xtask]\nregistry = \"127.0.0.1:5000\"\nbase-image = \"scale-base\"\napp-image = \"scale-app\"\napp-packages = [\"m0\"]\n",
    )?;
    let mut lock = String::from(
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = \"itoa\"\nversion = \"1.0.19\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"3bd1574e617a9a6c1f8f8181bd7e841e1f20e4277607ef28945765188d6284d4\"\n",
    );
    let mut names: Vec<String> = (0..members).map(|i| format!("m{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let crate_dir = dir.join("m").join(name);
        std::fs::create_dir_all(crate_dir.join("src"))?;
        let previous = if i > 0 {
            format!(
                "m{} = {{ path = \"../m{}\", version = \"0.1.0\" }}\n",
                i - 1,
                i - 1
            )
        } else {
            String::new()
        };
        std::fs::write(
            crate_dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\ndescription = \"member {i}\"\n\n[dependencies]\nitoa = \"1\"\n{previous}"
            ),
        )?;
        std::fs::write(crate_dir.join("src/lib.rs"), "")?;
    }
    names.sort();
    for name in &names {
        let i: usize = name[1..].parse().expect("generated name");
        let previous = if i > 0 {
            format!(" \"m{}\",\n", i - 1)
        } else {
            String::new()
        };
        lock.push_str(&format!("\n[[package]]\nname = \"{name}\"\nversion = \"0.1.0\"\ndependencies = [\n \"itoa\",\n{previous}]\n"));
    }
    std::fs::write(dir.join(workspace::LOCKFILE), lock)?;
    Ok(())
}
