//! Real parts for the service's integration tests: a PostgreSQL per test (openeu-testdb) with
//! the Supabase-compatible bootstrap, the migrations and the test rows; the service binary
//! itself; and a raw HTTP client.

#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

pub const JWT_SECRET: &str = "test-jwt-secret-for-openeu";

#[allow(unused_imports)]
pub use openeu_testdb::{free_port, psql, wait_until};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// A PostgreSQL like a migrated Supabase database: the compatibility bootstrap, every
/// migration (recorded in the CLI's history table, as `supabase db push` does) and the rows of
/// tests/data/rows.sql.
pub struct Server(openeu_testdb::Server);

impl Server {
    pub fn start() -> Server {
        let root = repo_root();
        let mut files = openeu_testdb::supabase_schema(&root);
        let history: Vec<String> = files
            .iter()
            .filter_map(|p| p.file_name()?.to_str()?.split('_').next())
            .filter(|v| v.len() == 14 && v.bytes().all(|b| b.is_ascii_digit()))
            .map(|v| format!("('{v}')"))
            .collect();
        files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rows.sql"));
        let record = format!(
            "insert into supabase_migrations.schema_migrations (version) values {}",
            history.join(", ")
        );
        Server(openeu_testdb::Server::start(&files, &record))
    }
}

impl std::ops::Deref for Server {
    type Target = openeu_testdb::Server;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// GET `path` on 127.0.0.1:`port` with extra headers.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_answer(&raw)
}

pub fn parse_answer(raw: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// The service binary, running, killed on drop.
pub struct Service {
    pub port: u16,
    pub child: Child,
    log: PathBuf,
}

impl Service {
    /// Starts the service with exactly `env` (plus PORT) and waits for /health.
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

/// Runs the binary to its exit with exactly `env`; returns (exit code, stderr).
pub fn run_to_exit(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openeu-api"));
    cmd.env_clear().env("PORT", free_port().to_string());
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

/// An HS256 JWT over `claims`, signed with `secret`.
pub fn jwt(header: &str, claims: &str, secret: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let b64 = |bytes: &[u8]| {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                << (8 * (3 - chunk.len()));
            for i in 0..=chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            }
        }
        out
    };
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}
