//! Real parts for the service's integration tests: a PostgreSQL per test (openeu-testdb) with
//! the Supabase-compatible bootstrap, the migrations and the test rows; the router driven
//! in-process (`app`); and the service binary itself where the process is what is tested
//! (`process`).

#![allow(dead_code)]

pub mod app;
pub mod process;

use std::path::{Path, PathBuf};

pub const JWT_SECRET: &str = "test-jwt-secret-for-openeu";

#[allow(unused_imports)]
pub use openeu_testdb::{free_port, psql, wait_until};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// How the service reaches the test database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Directly, in plaintext (loopback: libpq's `prefer`, and the server has no TLS).
    Plain,
    /// Directly, over TLS with `sslmode=verify-full` against the test CA; the server accepts
    /// TCP connections only over TLS.
    Tls,
    /// Through pgbouncer in transaction mode, as through Supabase's pooler on port 6543.
    Pooler,
}

/// A PostgreSQL like a migrated Supabase database: the compatibility bootstrap, every
/// migration (recorded in the CLI's history table, as `supabase db push` does) and the rows of
/// tests/data/rows.sql; reached as `mode` says.
pub struct Server {
    db: openeu_testdb::Server,
    pub mode: Mode,
    bouncer: Option<openeu_testdb::Pgbouncer>,
}

impl Server {
    pub fn start() -> Server {
        Server::start_in(Mode::Plain)
    }

    /// The migrations with the repository's seed (supabase/seed.sql) instead of the test rows:
    /// the data a local stack serves, for tests that explore the API as a client would.
    pub fn seeded() -> Server {
        let (mut files, record) = Server::inputs();
        files.pop();
        files.push(repo_root().join("supabase/seed.sql"));
        let db = openeu_testdb::Server::start(&files, &record);
        Server {
            db,
            mode: Mode::Plain,
            bouncer: None,
        }
    }

    pub fn start_in(mode: Mode) -> Server {
        let (files, record) = Server::inputs();
        let db = if mode == Mode::Tls {
            openeu_testdb::Server::start_tls(&files, &record)
        } else {
            openeu_testdb::Server::start(&files, &record)
        };
        let bouncer =
            (mode == Mode::Pooler).then(|| openeu_testdb::Pgbouncer::start(&db, "transaction"));
        Server { db, mode, bouncer }
    }

    /// The service's database variables for this mode.
    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        match self.mode {
            Mode::Plain => vec![("DATABASE_URL", self.db.url())],
            Mode::Tls => vec![(
                "DATABASE_URL",
                format!(
                    "{}?sslmode=verify-full&sslrootcert={}",
                    self.db.url(),
                    self.db.tls().unwrap().ca.display()
                ),
            )],
            Mode::Pooler => vec![
                ("DATABASE_URL", self.bouncer.as_ref().unwrap().url()),
                ("DATABASE_POOL_MODE", "transaction".to_owned()),
            ],
        }
    }

    /// pgbouncer's log (empty unless the mode is `Pooler`).
    pub fn pooler_log(&self) -> String {
        self.bouncer
            .as_ref()
            .map(openeu_testdb::Pgbouncer::log)
            .unwrap_or_default()
    }

    fn inputs() -> (Vec<PathBuf>, String) {
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
        (files, record)
    }
}

impl std::ops::Deref for Server {
    type Target = openeu_testdb::Server;
    fn deref(&self) -> &Self::Target {
        &self.db
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.db
    }
}

/// An HTTP answer, from the router or from the process.
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

/// An HS256 JWT over `claims`, signed with `secret`.
pub fn jwt(header: &str, claims: &str, secret: &[u8]) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use hmac::{Hmac, KeyInit, Mac};
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}
