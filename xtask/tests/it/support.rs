//! Shared helpers for xtask's integration tests: fixture workspaces in temporary directories,
//! running the real `xtask` binary, a real registry on a random loopback port, and cleanup of
//! everything a test created in Docker, by label, even when the test fails. What xtask itself
//! does (starting a registry, removing by label, HTTP, copying trees) is called, not copied.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use xtask_core::{docker::Docker, workspace::Workspace};

/// The repository root (xtask's parent), found at run time: cargo sets `CARGO_MANIFEST_DIR` for
/// the tests it runs, and a test binary may be shared by several checkouts.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
    Path::new(&manifest_dir).parent().unwrap().to_path_buf()
}

/// The repository as an xtask workspace, for calling the library directly.
pub fn repo_workspace() -> Workspace {
    Workspace::open(Some(repo_root()), Vec::new()).unwrap()
}

/// A unique id for this test process and call, for labels and directory names.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A directory under target/ removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("xtask-tests")
            .join(unique(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir.canonicalize().unwrap())
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn copy_tree(from: &Path, to: &Path) {
    xtask_core::files::copy_tree(from, to).unwrap();
}

/// The fixture workspace of xtask/test_data/fixture-ws, completed with the repository's own
/// Dockerfiles, toolchain file and cargo config, in a fresh temporary directory.
pub fn fixture_workspace() -> TempDir {
    let dir = TempDir::new("fixture");
    let root = repo_root();
    copy_tree(&root.join("xtask/test_data/fixture-ws"), dir.path());
    for file in ["Dockerfile.base", "Dockerfile", "rust-toolchain.toml"] {
        std::fs::copy(root.join(file), dir.path().join(file)).unwrap();
    }
    std::fs::create_dir_all(dir.path().join(".cargo")).unwrap();
    std::fs::copy(
        root.join(".cargo/config.toml"),
        dir.path().join(".cargo/config.toml"),
    )
    .unwrap();
    dir
}

/// A copy of this repository's workspace (sources, manifests, Dockerfiles), without target/.
pub fn repo_copy() -> TempDir {
    let dir = TempDir::new("repo");
    let root = repo_root();
    for entry in [
        "Cargo.toml",
        "Cargo.lock",
        "Dockerfile.base",
        "Dockerfile",
        ".dockerignore",
        "rust-toolchain.toml",
        "openapi.json",
        "smoke.toml",
    ] {
        std::fs::copy(root.join(entry), dir.path().join(entry)).unwrap();
    }
    // xtask's own crates and its lab are workspace members too (`xtask/crates/*`, `xtask/lab`), so
    // the copy needs them
    // for cargo to load the workspace.
    for tree in [
        ".cargo",
        "crates",
        "xtask/src",
        "xtask/crates",
        "xtask/lab",
        "supabase",
    ] {
        if root.join(tree).exists() {
            copy_tree(&root.join(tree), &dir.path().join(tree));
        }
    }
    std::fs::copy(
        root.join("xtask/Cargo.toml"),
        dir.path().join("xtask/Cargo.toml"),
    )
    .unwrap();
    dir
}

pub fn edit(path: &Path, f: impl FnOnce(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    std::fs::write(path, f(text)).unwrap();
}

/// Appends `text` to the file at `path` (made when missing).
pub fn append(path: &Path, text: &str) {
    edit(path, |s| s + text);
}

/// Replaces the first `from` in the file at `path` with `to`; panics when there is none.
pub fn replace(path: &Path, from: &str, to: &str) {
    edit(path, |s| {
        assert!(
            s.contains(from),
            "{} does not contain {from:?}",
            path.display()
        );
        s.replacen(from, to, 1)
    });
}

/// `xtask` run on `workspace` with extra env; output captured.
pub struct Xtask<'a> {
    pub workspace: &'a Path,
    pub env: Vec<(String, String)>,
    pub labels: Vec<String>,
    /// Run `cargo lab` (the benchmarks) instead of `cargo xtask`.
    pub lab: bool,
}

/// The lab's binary (`cargo lab`), built beside the xtask binary under test: the lab is its own
/// package, so cargo builds it for these tests only when asked.
fn lab_binary() -> &'static Path {
    static LAB: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    LAB.get_or_init(|| {
        let xtask = Path::new(env!("CARGO_BIN_EXE_xtask"));
        let profile_dir = xtask.parent().expect("the xtask binary's directory");
        let target = profile_dir.parent().expect("the target directory");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev",
            Some(name) => name,
            None => panic!("no profile in {}", profile_dir.display()),
        };
        let status = Command::new(env!("CARGO"))
            .current_dir(repo_root())
            .args(["build", "--quiet", "--locked", "--package", "xtask-lab"])
            .args(["--profile", profile, "--target-dir"])
            .arg(target)
            .status()
            .expect("running cargo build for the lab");
        assert!(status.success(), "cargo build --package xtask-lab failed");
        profile_dir.join("xtask-lab")
    })
}

impl<'a> Xtask<'a> {
    pub fn new(workspace: &'a Path) -> Self {
        Xtask {
            workspace,
            env: Vec::new(),
            labels: Vec::new(),
            lab: false,
        }
    }

    /// The lab (`cargo lab`) instead of `cargo xtask`, with the same workspace and environment.
    pub fn lab(mut self) -> Self {
        self.lab = true;
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn label(mut self, label: &str) -> Self {
        self.labels.push(label.to_owned());
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = if self.lab {
            Command::new(lab_binary())
        } else {
            Command::new(env!("CARGO_BIN_EXE_xtask"))
        };
        cmd.arg("--workspace").arg(self.workspace);
        for label in &self.labels {
            cmd.arg("--label").arg(label);
        }
        // What a test creates under its cleanup label is also owned by this test process
        // (owner.rs): if the process is killed before its cleanup runs, the next `smoke`, `up`
        // or `doctor` sweeps it, by the same mechanism as a killed smoke run's.
        if let Some(run) = self
            .labels
            .iter()
            .find_map(|l| l.strip_prefix("org.openeu.test-run="))
        {
            let pid = std::process::id();
            let start = xtask_core::owner::start_time(pid).expect("/proc/self/stat");
            for label in [
                format!("{}={run}", xtask_core::owner::RUN_ID_LABEL),
                format!("{}={pid}", xtask_core::owner::OWNER_PID_LABEL),
                format!("{}={start}", xtask_core::owner::OWNER_START_LABEL),
            ] {
                cmd.arg("--label").arg(label);
            }
        }
        cmd.args(args);
        // The pinned toolchain, whatever the (possibly edited) rust-toolchain.toml says.
        cmd.env("RUSTUP_TOOLCHAIN", "1.95.0");
        cmd.env_remove("DOCKER_REGISTRY_SERVER")
            .env_remove("DOCKER_REGISTRY_USERNAME")
            .env_remove("DOCKER_REGISTRY_PASSWORD");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    pub fn output(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("running xtask")
    }

    /// Runs and asserts success; returns (stdout, stderr).
    pub fn ok(&self, args: &[&str]) -> (String, String) {
        let out = self.output(args);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "xtask {args:?} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            out.status
        );
        (stdout, stderr)
    }

    /// Runs and asserts failure; returns stdout + stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "xtask {args:?} unexpectedly succeeded:\n{text}"
        );
        text
    }
}

/// Waits until `ready` holds, panicking after `timeout` (xtask's own deadline wait).
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    xtask_core::process::wait_until(what, timeout, || Ok(ready())).unwrap();
}

/// A loopback port that was free a moment ago (xtask's own pick).
pub fn free_port() -> u16 {
    xtask_core::net::free_port().unwrap()
}

/// A real registry (Debian's docker-registry) on a random loopback port, stopped on drop.
pub struct Registry {
    pub address: String,
    child: Child,
    _dir: TempDir,
    _auth: Option<TempDir>,
}

impl Registry {
    /// A registry that lets anyone push.
    pub fn start() -> Self {
        Registry::start_with(None)
    }

    /// A registry that accepts only `user` with `password` (an htpasswd file, bcrypt).
    pub fn with_password(user: &str, password: &str) -> Self {
        let auth = TempDir::new("auth");
        let file = auth.path().join("htpasswd");
        std::fs::write(&file, htpasswd(user, password)).unwrap();
        Registry::start_with(Some(auth))
    }

    fn start_with(auth: Option<TempDir>) -> Self {
        let dir = TempDir::new("registry");
        let address = format!("127.0.0.1:{}", free_port());
        let htpasswd = auth.as_ref().map(|a| a.path().join("htpasswd"));
        let child = xtask_setup::setup::start_registry(&address, dir.path(), htpasswd.as_deref())
            .expect("docker-registry is installed by `cargo xtask setup`");
        Registry {
            address,
            child,
            _dir: dir,
            _auth: auth,
        }
    }
}

/// An htpasswd line for `user` with a bcrypt hash of `password`, as docker-registry requires.
/// The hash comes from the system's crypt(3) (libxcrypt knows `$2b$`) through Perl's built-in
/// `crypt`, which every Debian has; the password goes through stdin, never a command line.
fn htpasswd(user: &str, password: &str) -> String {
    // A bcrypt salt: 22 random characters of bcrypt's own base64 alphabet (`./A-Za-z0-9`, which
    // neither of xtask's base64 engines uses, so this is not a copy of encoding.rs). The last
    // one carries only two bits, so it is one of the four characters whose low bits are zero.
    const ALPHABET: &[u8; 64] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = [0u8; 22];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut random,
    )
    .unwrap();
    let mut salt: String = random[..21]
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 63)]))
        .collect();
    salt.push(char::from(b".Oeu"[usize::from(random[21] & 3)]));
    let mut child = Command::new("perl")
        .args([
            "-e",
            "my $pw = do { local $/; <STDIN> }; print crypt($pw, $ARGV[0]) // die",
            &format!("$2b$05${salt}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && hash.starts_with("$2b$05$") && hash.len() == 60,
        "crypt(3) made no bcrypt hash: {hash:?}"
    );
    format!("{user}:{hash}\n")
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes every container and image labelled `org.openeu.test-run=<id>` on drop, so a failing
/// test leaves nothing behind.
pub struct DockerCleanup {
    pub label: String,
}

impl DockerCleanup {
    pub fn new() -> Self {
        DockerCleanup {
            label: format!("org.openeu.test-run={}", unique("run")),
        }
    }
}

impl Drop for DockerCleanup {
    fn drop(&mut self) {
        let ws = repo_workspace();
        let docker = Docker::new(&ws);
        if let Err(err) = docker
            .remove_labelled(&self.label)
            .and_then(|()| docker.remove_labelled_networks_and_volumes(&self.label))
        {
            eprintln!("cleanup of {} failed: {err:#}", self.label);
        }
    }
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("running docker")
}

pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// git in `dir` with a committer identity of its own; its trimmed stdout (a failure panics with
/// stderr).
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=xtask test",
            "-c",
            "user.email=test@example.invalid",
        ])
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

/// A finished command's stdout then stderr, as text.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// GET `path` from `address` (host:port) over plain HTTP/1.1: the status and the body.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    let response = xtask_core::http::get(address, path).unwrap();
    (response.status, response.text())
}

/// How many rows the seed fixture of `table` (supabase/seed/<table>.toml under `root`) defines:
/// counts in tests come from the fixtures, so adding a row breaks no test.
pub fn fixture_rows(root: &Path, table: &str) -> usize {
    let path = root.join(format!("supabase/seed/{table}.toml"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let parsed: toml::Table =
        toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parsed
        .get("row")
        .and_then(toml::Value::as_array)
        .map_or(0, Vec::len)
}
