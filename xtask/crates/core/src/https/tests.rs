//! The tests of the HTTPS client: curl's config, the body file, errors and retries.

use std::{
    io::{Read, Write},
    net::TcpListener,
};

use super::*;

#[test]
fn hook_keys_are_masked_wherever_they_appear() {
    assert_eq!(
        mask_query_secret("https://api.render.com/deploy/srv-abc?key=s3cr3t"),
        "https://api.render.com/deploy/srv-abc?key=***"
    );
    assert_eq!(
        mask_query_secret("POST http://h/deploy/srv?ref=x&key=abc def"),
        "POST http://h/deploy/srv?ref=x&key=*** def"
    );
    assert_eq!(mask_query_secret("no query"), "no query");
}

#[test]
fn loopback_urls_are_recognised() {
    assert!(is_loopback("http://127.0.0.1:4000/v1/services"));
    assert!(is_loopback("http://localhost/x"));
    assert!(!is_loopback("https://api.render.com/v1"));
}

#[test]
fn config_values_are_quoted_and_escaped() {
    assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    assert_eq!(quote("x\ny\tz"), r#""x\ny\tz""#);
    let config = curl_config(
        "POST",
        "https://api.render.com/v1/services?key=k",
        &[("Authorization", r#"Bearer a"b\c"#)],
        Some(Body::Inline(b"{\"a\":\"@x\\n\"}")),
        Timeouts::default(),
        Some("/etc/ssl/ca.pem"),
    )
    .unwrap();
    assert!(config.contains(r#"url = "https://api.render.com/v1/services?key=k""#));
    assert!(config.contains(r#"header = "Authorization: Bearer a\"b\\c""#));
    assert!(config.contains(r#"data-raw = "{\"a\":\"@x\\n\"}""#));
    assert!(config.contains(r#"max-time = "40.000""#));
    assert!(config.contains(r#"cacert = "/etc/ssl/ca.pem""#));
    // One option per line, and every line one of ours.
    for line in config.lines() {
        let option = line.split(" = ").next().unwrap();
        assert!(
            [
                "silent",
                "show-error",
                "include",
                "url",
                "request",
                "user-agent",
                "connect-timeout",
                "max-time",
                "header",
                "cacert",
                "data-raw"
            ]
            .contains(&option),
            "{line}"
        );
    }
}

#[test]
fn line_breaks_in_header_values_are_refused_without_quoting_them() {
    for value in [
        "ok\nurl = \"http://evil\"",
        "ok\r\noutput = \"/tmp/x\"",
        "a\0b",
    ] {
        let err = curl_config(
            "GET",
            "https://example.org/",
            &[("Authorization", value)],
            None,
            Timeouts::default(),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("header Authorization holds CR, LF or NUL"),
            "{err}"
        );
        assert!(!err.contains("evil") && !err.contains("output"), "{err}");
    }
    for name in ["X: y", "X\nY", ""] {
        assert!(
            curl_config(
                "GET",
                "https://e/",
                &[(name, "v")],
                None,
                Timeouts::default(),
                None
            )
            .is_err()
        );
    }
    assert!(curl_config("GET", "https://e/ x", &[], None, Timeouts::default(), None).is_err());
    assert!(curl_config("GET\n", "https://e/", &[], None, Timeouts::default(), None).is_err());
}

#[test]
fn informational_and_proxy_blocks_are_skipped() {
    let r = parse_included(
        b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 100 Continue\r\n\r\nHTTP/2 404 \r\ncontent-type: application/json\r\n\r\n{}",
    )
    .unwrap();
    assert_eq!((r.status, r.text().as_str()), (404, "{}"));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
}

/// Reads one request from `stream`: the head, then the body its Content-Length announces.
/// Returns the raw request and where its body starts.
fn read_request(stream: &mut std::net::TcpStream) -> (Vec<u8>, usize) {
    let mut raw = Vec::new();
    let mut buf = [0; 65536];
    loop {
        let n = stream.read(&mut buf).unwrap();
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if raw.len() >= end + 4 + length {
                return (raw, end + 4);
            }
        }
        assert!(n > 0, "the connection closed before the request ended");
    }
}

/// The real curl reads the config: a header value with quotes, backslashes and config-like
/// text arrives byte for byte, as one header, and the body arrives unchanged.
#[test]
fn curl_parses_the_config_as_written() {
    if process::which("curl").is_none() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (raw, _) = read_request(&mut stream);
        stream
            .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok")
            .unwrap();
        String::from_utf8(raw).unwrap()
    });
    let value = r#"a "quoted" \back\slash\ value" url = "http://127.0.0.1:1/" \n"#;
    let body = br#"@/etc/passwd {"k":"v\"w"}"#;
    // `http://` to loopback normally takes http.rs; this test drives curl directly.
    let config = curl_config(
        "POST",
        &format!("http://127.0.0.1:{port}/p?key=1"),
        &[("X-Test", value)],
        Some(Body::Inline(body)),
        Timeouts::default(),
        None,
    )
    .unwrap();
    let mut cmd = process::command("curl");
    cmd.args(["-q", "--config", "-"]);
    let out = process::output_with_timeout(cmd, Some(config.as_bytes()), Duration::from_secs(20))
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let response = parse_included(&out.stdout).unwrap();
    assert_eq!((response.status, response.text().as_str()), (201, "ok"));
    assert_eq!(response.header("x-a"), Some("b"));
    let request = server.join().unwrap();
    assert!(
        request.starts_with("POST /p?key=1 HTTP/1.1\r\n"),
        "{request}"
    );
    assert!(
        request.contains(&format!("\r\nX-Test: {value}\r\n")),
        "{request}"
    );
    assert_eq!(request.matches("X-Test").count(), 1, "{request}");
    assert!(
        request.ends_with(std::str::from_utf8(body).unwrap()),
        "{request}"
    );
    assert!(
        request.contains("Content-Type: application/json\r\n"),
        "{request}"
    );
}

/// A body of several MiB, far beyond one line of curl's config, goes through a private file
/// that the config names, arrives byte for byte, and the file is removed afterwards.
#[test]
fn curl_sends_a_large_body_from_its_config() {
    if process::which("curl").is_none() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let (raw, start) = read_request(&mut stream);
        let body = raw[start..].to_vec();
        let answer = format!("{}", body.len());
        stream
            .write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{answer}",
                    answer.len()
                )
                .as_bytes(),
            )
            .unwrap();
        body
    });
    let body = format!("{{\"k\":\"{}\"}}", "v\\\"".repeat(1 << 20));
    assert!(
        body.len() > INLINE_BODY_MAX,
        "send() spills this body to a file"
    );
    let file = BodyFile::write(body.as_bytes()).unwrap();
    let config = curl_config(
        "POST",
        &format!("http://127.0.0.1:{port}/big"),
        &[],
        Some(Body::File(body.as_bytes(), &file.path)),
        Timeouts::default(),
        None,
    )
    .unwrap();
    assert!(config.len() < 4096, "the body is not in the config");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file.path).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let mut cmd = process::command("curl");
    cmd.args(["-q", "--config", "-"]);
    let out = process::output_with_timeout(cmd, Some(config.as_bytes()), Duration::from_secs(60))
        .unwrap();
    assert!(out.status.success(), "{}", process::failure("curl", &out));
    let response = parse_included(&out.stdout).unwrap();
    assert_eq!(response.text(), body.len().to_string());
    assert!(
        server.join().unwrap() == body.as_bytes(),
        "the body differs"
    );
}

/// The whole HTTPS path against a local TLS server (openssl s_server) whose certificate
/// only the given CA file trusts: refused without it, answered with it (`SSL_CERT_FILE`).
#[test]
fn https_trusts_the_ca_file_it_is_given() {
    if process::which("curl").is_none() || process::which("openssl").is_none() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("xtask-https-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let mut req = process::command("openssl");
    req.args([
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
    ])
    .args(["-subj", "/CN=localhost", "-addext"])
    .arg("subjectAltName=IP:127.0.0.1")
    .arg("-keyout")
    .arg(&key)
    .arg("-out")
    .arg(&cert);
    let made = process::output_with_timeout(req, None, Duration::from_secs(30)).unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = crate::net::free_port().unwrap();
    let mut server = process::command("openssl");
    server
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key);
    let mut server = process::spawn_detached(server, &dir.join("server.log")).unwrap();
    let url = format!("https://127.0.0.1:{port}/");
    let trusting = Client {
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(5),
        },
        ca_file: Some(cert.to_string_lossy().into_owned()),
    };
    let mut answer = None;
    let waited = process::wait_until("openssl s_server", Duration::from_secs(20), || {
        answer = trusting
            .send("GET", &url, &[("Authorization", "Bearer k")], None)
            .ok();
        Ok(answer.is_some())
    });
    let untrusting = Client {
        ca_file: None,
        ..trusting.clone()
    };
    let refused = untrusting.send("GET", &url, &[], None);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    waited.unwrap();
    assert_eq!(answer.unwrap().status, 200);
    let err = format!("{:#}", refused.unwrap_err());
    assert!(err.contains("certificate"), "{err}");
}
