//! Shared helpers for xtask's integration tests: fixture workspaces in temporary directories,
//! running the real `xtask` binary, a real registry on a random loopback port, and cleanup of
//! everything a test created in Docker, by label, even when the test fails.

#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

/// The repository root (xtask's parent).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
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
        let dir = repo_root()
            .join("target")
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
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
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
    ] {
        std::fs::copy(root.join(entry), dir.path().join(entry)).unwrap();
    }
    for tree in [".cargo", "crates", "xtask/src", "supabase"] {
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

/// `xtask` run on `workspace` with extra env; output captured.
pub struct Xtask<'a> {
    pub workspace: &'a Path,
    pub env: Vec<(String, String)>,
    pub labels: Vec<String>,
}

impl<'a> Xtask<'a> {
    pub fn new(workspace: &'a Path) -> Self {
        Xtask {
            workspace,
            env: Vec::new(),
            labels: Vec::new(),
        }
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg("--workspace").arg(self.workspace);
        for label in &self.labels {
            cmd.arg("--label").arg(label);
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

/// Waits until `ready` holds, panicking after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub use openeu_testdb::free_port;

/// A real registry (Debian's docker-registry) on a random loopback port, stopped on drop.
pub struct Registry {
    pub address: String,
    child: Child,
    _dir: TempDir,
}

impl Registry {
    pub fn start(htpasswd: Option<&Path>) -> Self {
        let dir = TempDir::new("registry");
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {address}\n",
            dir.path().join("data").display()
        );
        if let Some(path) = htpasswd {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                path.display()
            ));
        }
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry is installed by `cargo xtask setup`");
        let registry = Registry {
            address: address.clone(),
            child,
            _dir: dir,
        };
        wait_until(
            &format!("registry on {address}"),
            Duration::from_secs(20),
            || std::net::TcpStream::connect(&address).is_ok(),
        );
        registry
    }
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
        let filter = format!("label={}", self.label);
        for (list, remove) in [
            (
                vec!["ps", "--all", "--quiet", "--filter", &filter],
                vec!["rm", "--force", "--volumes"],
            ),
            (
                vec!["image", "ls", "--quiet", "--filter", &filter],
                vec!["image", "rm", "--force"],
            ),
        ] {
            let Ok(out) = Command::new("docker").args(&list).output() else {
                continue;
            };
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = Command::new("docker").args(&remove).args(&ids).output();
            }
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

/// GET `path` from `address` (host:port) over plain HTTP/1.1: the status and the body.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (
        status,
        text.split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default(),
    )
}
