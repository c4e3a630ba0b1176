//! The service under hostile clients (issue 21), over real sockets: slowloris connections are
//! closed at the header-read deadline, requests too large for the HTTP layer get the contract's
//! JSON error, the connection cap holds, and `/ready` fails fast when the database hangs.
//!
//! The server is the library's own (`openeu_api::server::serve`), in-process, with limits small
//! enough for a test; no test here needs PostgreSQL: a database that never answers is a TCP
//! listener that accepts and stays silent.

mod support;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    time::{Duration, Instant},
};

use openeu_api::{
    AppState, Config, Db,
    server::{Limits, serve},
};
use support::JWT_SECRET;

/// A database that accepts connections and never says a word, as a frozen PostgreSQL.
fn hung_database() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "postgres://u@127.0.0.1:{}/db?sslmode=disable",
        listener.local_addr().unwrap().port()
    );
    (listener, url)
}

fn router(database_url: &str) -> axum::Router {
    openeu_api::log::set_level(openeu_api::log::Level::Error);
    let pairs = [
        ("DATABASE_URL", database_url),
        ("SUPABASE_JWT_SECRET", JWT_SECRET),
    ];
    let config = Config::from_lookup(openeu_env::lookup_from(&pairs)).unwrap();
    let db = Db::connect(config.resolve_database().unwrap()).unwrap();
    openeu_api::router(AppState::new(&config, db))
}

/// The service on a loopback port with `limits`, served on a runtime of its own thread.
fn start(limits: Limits) -> (SocketAddr, TcpListener) {
    let (database, url) = hung_database();
    let app = router(&url);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            serve(listener, app, limits, std::future::pending()).await;
        });
    });
    (addr, database)
}

const TEST_LIMITS: Limits = Limits {
    header_read_timeout: Duration::from_secs(1),
    max_connections: 64,
    max_head_bytes: 64 * 1024,
};

/// Sends `request` as is and reads the answer to the end: (status, body).
fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before the whole of a too-large request is written.
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, String) {
    raw(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// A slowloris client: the request head, one header line every 200 ms, never the end.
fn slowloris(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        for i in 0.. {
            std::thread::sleep(Duration::from_millis(200));
            if writer
                .write_all(format!("X-Slow-{i}: a\r\n").as_bytes())
                .is_err()
            {
                return;
            }
        }
    });
    stream
}

#[test]
fn slowloris_connections_are_closed_at_the_header_deadline() {
    let (addr, _db) = start(TEST_LIMITS);
    let started = Instant::now();
    let mut clients: Vec<TcpStream> = (0..5).map(|_| slowloris(addr)).collect();
    // Meanwhile an ordinary request is answered.
    assert_eq!(get(addr, "/health").0, 200);
    for client in &mut clients {
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 1024];
        // EOF or a reset: either way the server closed it; a timeout would be an error here.
        loop {
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("the slowloris connection was not closed: {e}"),
            }
        }
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
        "closed after {elapsed:?}, the deadline is 1 s"
    );
}

#[test]
fn what_the_http_layer_refuses_is_the_contracts_json() {
    let (addr, _db) = start(TEST_LIMITS);
    let cases: [(Vec<u8>, u16, &str); 5] = [
        // A 10 KB query: over the router's URI limit.
        (
            format!(
                "GET /meetings?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "x".repeat(10_000)
            )
            .into_bytes(),
            414,
            "uri_too_long",
        ),
        // A 100 KB query: over hyper's limit for the whole head.
        (
            format!(
                "GET /meetings?q={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "x".repeat(100_000)
            )
            .into_bytes(),
            431,
            "headers_too_large",
        ),
        // 70 KB of headers.
        (
            format!(
                "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
                "x".repeat(70_000)
            )
            .into_bytes(),
            431,
            "headers_too_large",
        ),
        // Not HTTP at all.
        (
            b"GET /health HTTP/1.1\r\nHost x\r\n\r\n".to_vec(),
            400,
            "invalid_request",
        ),
        // Bytes that are not UTF-8, percent-encoded in the path.
        (
            b"GET /meetings/%FF HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "invalid_parameter",
        ),
    ];
    for (request, status, error) in cases {
        let (got, head, body) = raw(addr, &request);
        let shown = String::from_utf8_lossy(&request[..request.len().min(40)]);
        assert_eq!(got, status, "{shown}: {head}\n{body}");
        assert!(
            head.contains("content-type: application/json"),
            "{shown}: {head}"
        );
        assert!(head.contains("x-request-id: "), "{shown}: {head}");
        let json: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{shown}: {e}: {body:?}"));
        assert_eq!(json["error"], error, "{shown}: {json}");
    }
    // The server still serves.
    assert_eq!(get(addr, "/health").0, 200);
}

#[test]
fn connections_beyond_the_cap_wait_until_one_closes() {
    let (addr, _db) = start(Limits {
        max_connections: 2,
        ..TEST_LIMITS
    });
    // Two connections that have sent nothing yet hold both slots.
    let first = TcpStream::connect(addr).unwrap();
    let _second = TcpStream::connect(addr).unwrap();
    let mut third = TcpStream::connect(addr).unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(
        third.read(&mut buf).is_err(),
        "the third connection was served beyond the cap"
    );
    drop(first);
    third
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let n = third.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[test]
fn readiness_fails_within_a_second_when_the_database_hangs() {
    let (addr, _db) = start(TEST_LIMITS);
    for path in ["/ready", "/"] {
        let started = Instant::now();
        let (status, _, body) = get(addr, path);
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(1), "{path} took {elapsed:?}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        if path == "/ready" {
            assert_eq!(
                (status, &json["error"]),
                (503, &"not_ready".into()),
                "{json}"
            );
        } else {
            assert_eq!(
                (status, &json["migration"]),
                (200, &serde_json::Value::Null)
            );
        }
    }
}
