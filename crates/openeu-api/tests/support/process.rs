//! The service binary, for what only the process shows: startup and env validation, preview
//! resolution, the request log on stderr and the SIGTERM drain. Requests go over loopback
//! with ureq, the client the service already depends on.

use std::{
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::{Answer, JWT_SECRET, Server, free_port};

/// GET `path` on 127.0.0.1:`port` with extra headers.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut request = agent.get(format!("http://127.0.0.1:{port}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = request.call().unwrap();
    Answer {
        status: response.status().as_u16(),
        headers: response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: response.body_mut().read_to_string().unwrap(),
    }
}

/// The service binary, running, killed on drop.
pub struct Service {
    pub port: u16,
    pub child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts the service with exactly `env` (plus PORT) and waits until it listens.
    pub fn start(env: &[(&str, &str)]) -> Service {
        let port = free_port();
        let log = PathBuf::from("/tmp/openeu-testdb")
            .join(format!("service-{}-{port}.log", std::process::id()));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        let file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_openeu-api"));
        cmd.env_clear()
            .env("PORT", port.to_string())
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "the service exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "the service did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Service { port, child, log }
    }

    /// The env of a local instance on `db`.
    pub fn local(db: &Server) -> Service {
        Service::start(&[
            ("DATABASE_URL", &db.url()),
            ("SUPABASE_JWT_SECRET", JWT_SECRET),
        ])
    }

    pub fn get(&self, path: &str) -> Answer {
        get(self.port, path, &[])
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Runs the binary to its exit with `args` and exactly `env`; returns (exit code, stdout and
/// stderr).
pub fn run_to_exit_with(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openeu-api"));
    cmd.args(args)
        .env_clear()
        .env("PORT", free_port().to_string());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Runs the binary (serving) to its exit with exactly `env`.
pub fn run_to_exit(env: &[(&str, &str)]) -> (Option<i32>, String) {
    run_to_exit_with(&[], env)
}
