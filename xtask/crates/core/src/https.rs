//! HTTP(S) to remote services (Render's API, a deployed service's public URL, `smoke --url
//! https://…`). xtask carries no TLS stack: `https://` goes through the `curl` program, and
//! `http://` to a loopback address (the tests' stubs, local containers) through xtask's own
//! HTTP/1.1 client (http.rs). A TLS stack compiled into xtask (rustls and ring) roughly doubled
//! its cold compile; curl is on every machine that deploys (README "Dependencies of xtask").
//!
//! curl is started as `curl -q -K -`: the URL, every header and the body reach it as a curl
//! config on its **stdin**, so neither the API key (in `Authorization`) nor a credential in a
//! URL's query (a deploy hook's `key`) ever appears in an argument list. Values are quoted and
//! escaped per curl's config syntax, and a header value holding CR or LF is refused, so a value
//! can never add a config line of its own. `-q` makes curl skip `~/.curlrc`.
//!
//! Certificates are checked against the **system's** CA store (curl's default bundle), or
//! `SSL_CERT_FILE` when it is set (passed as `cacert`), so xtask works behind a TLS-intercepting
//! proxy whose CA the machine trusts. curl honours `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` itself;
//! loopback addresses are always reached directly. Every request has a connect deadline
//! (`connect-timeout`) and an overall one (`max-time` = connect + read).
//!
//! Errors never quote header values, and URLs in messages pass through [`mask_query_secret`].

use std::time::Duration;

use anyhow::{Context, Result, bail};

pub mod api;

pub use crate::http::Response;
use crate::{http, process};

/// A client with deadlines; cheap to clone (it holds only its settings).
#[derive(Clone, Debug)]
pub struct Client {
    timeouts: Timeouts,
    /// `SSL_CERT_FILE`, read once: curl 7.88 as Debian builds it does not read it itself.
    ca_file: Option<String>,
}

/// Connect and read deadlines of a [`Client`].
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
        }
    }
}

const USER_AGENT: &str = concat!("openeu-xtask/", env!("CARGO_PKG_VERSION"));

impl Client {
    pub fn new(timeouts: Timeouts) -> Result<Self> {
        let ca_file = match std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
            None => None,
            Some(file) => Some(
                file.into_string()
                    .map_err(|_| anyhow::anyhow!("SSL_CERT_FILE is not valid UTF-8"))?,
            ),
        };
        Ok(Client { timeouts, ca_file })
    }

    /// Sends one request. `headers` may hold credentials: they are never part of an error.
    /// Statuses are answers the callers interpret (429, 202, 404 …), not errors; redirects are
    /// not followed.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response> {
        let shown = mask_query_secret(url);
        if let Some(rest) = url.strip_prefix("http://")
            && is_loopback(url)
        {
            return self
                .send_plain(method, rest, headers, body)
                .with_context(|| format!("{method} {shown}"));
        }
        let config = curl_config(
            method,
            url,
            headers,
            body,
            self.timeouts,
            self.ca_file.as_deref(),
        )
        .with_context(|| format!("{method} {shown}: a malformed request"))?;
        if process::which("curl").is_none() {
            bail!(
                "{method} {shown}: HTTPS goes through curl, which is not on PATH (apt-get install curl)"
            );
        }
        let mut cmd = process::command("curl");
        // `-q` must come first: it makes curl ignore ~/.curlrc. Everything else is on stdin.
        cmd.args(["-q", "--config", "-"]);
        // A guard above curl's own deadline, in case curl itself hangs.
        let guard = self.timeouts.connect + self.timeouts.read + Duration::from_secs(5);
        let out = process::output_with_timeout(cmd, Some(config.as_bytes()), guard)
            .with_context(|| format!("{method} {shown}"))?;
        if !out.status.success() {
            let stderr = mask_query_secret(String::from_utf8_lossy(&out.stderr).trim());
            if out.status.code() == Some(28) {
                bail!(
                    "{method} {shown}: no answer within {:.0}s ({stderr})",
                    (self.timeouts.connect + self.timeouts.read).as_secs_f64()
                );
            }
            bail!("{method} {shown}: {stderr}");
        }
        parse_included(&out.stdout).with_context(|| format!("{method} {shown}: reading the answer"))
    }

    /// `http://` to this machine, through http.rs.
    fn send_plain(
        &self,
        method: &str,
        rest: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response> {
        let (address, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('/') => (&rest[..i], rest[i..].to_owned()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_owned()),
        };
        let mut request = http::Request::new(method, address, &path)
            .timeout(self.timeouts.connect.max(self.timeouts.read))
            .header("User-Agent", USER_AGENT);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(bytes) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(bytes);
        }
        request.send()
    }
}

/// The curl config (read by `curl -K -`) for one request. Every value is double-quoted and
/// escaped; header names must be HTTP tokens, and header values, the URL and the method may
/// not hold CR, LF or NUL, so nothing a caller passes can start a config line of its own.
fn curl_config(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeouts: Timeouts,
    ca_file: Option<&str>,
) -> Result<String> {
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        bail!("the method {method:?} is not an HTTP method");
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("the URL holds whitespace or a control character");
    }
    let mut lines = vec![
        "silent".to_owned(),
        "show-error".to_owned(),
        "include".to_owned(),
        format!("url = {}", quote(url)),
        format!("request = {}", quote(method)),
        format!("user-agent = {}", quote(USER_AGENT)),
        format!(
            "connect-timeout = {}",
            quote(&format!("{:.3}", timeouts.connect.as_secs_f64()))
        ),
        format!(
            "max-time = {}",
            quote(&format!(
                "{:.3}",
                (timeouts.connect + timeouts.read).as_secs_f64()
            ))
        ),
        // No `Expect: 100-continue` round trip before a body.
        format!("header = {}", quote("Expect:")),
    ];
    if let Some(file) = ca_file {
        if file.contains(['\r', '\n', '\0']) {
            bail!("SSL_CERT_FILE holds a line break");
        }
        lines.push(format!("cacert = {}", quote(file)));
    }
    if is_loopback(url) {
        lines.push(format!("noproxy = {}", quote("*")));
    }
    for (name, value) in headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            bail!("the header name {name:?} is not an HTTP token");
        }
        if value.contains(['\r', '\n', '\0']) {
            // The value is not quoted: it may be a credential.
            bail!("the value of header {name} holds CR, LF or NUL");
        }
        // curl drops a header given as `Name:`; `Name;` sends it with an empty value.
        let header = if value.is_empty() {
            format!("{name};")
        } else {
            format!("{name}: {value}")
        };
        lines.push(format!("header = {}", quote(&header)));
    }
    match body {
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).context("the request body is not UTF-8")?;
            if text.contains('\0') {
                bail!("the request body holds NUL");
            }
            lines.push(format!(
                "header = {}",
                quote("Content-Type: application/json")
            ));
            // `data-raw`, not `data`: a body starting with `@` is not a file name.
            lines.push(format!("data-raw = {}", quote(text)));
        }
        None if matches!(method, "POST" | "PUT" | "PATCH") => {
            lines.push(format!("header = {}", quote("Content-Length: 0")));
        }
        None => {}
    }
    let mut config = lines.join("\n");
    config.push('\n');
    Ok(config)
}

/// A parameter in curl's config syntax: in double quotes, with `\` and `"` escaped and line
/// breaks and tabs written as `\n`, `\r`, `\t`, `\v` (the escapes curl's config parser reads).
fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            '\u{b}' => out.push_str(r"\v"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// curl's `--include` output: maybe a proxy's `Connection established` block or a `100
/// Continue`, then the head and the body, which curl has already de-chunked.
fn parse_included(raw: &[u8]) -> Result<Response> {
    let mut raw = raw;
    loop {
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("curl printed no HTTP head")?;
        let head = &raw[..end];
        let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
        let informational = first
            .split(|&b| b == b' ')
            .nth(1)
            .is_some_and(|code| code.len() == 3 && code[0] == b'1')
            || first
                .windows(22)
                .any(|w| w.eq_ignore_ascii_case(b"connection established"));
        if informational {
            raw = &raw[end + 4..];
            continue;
        }
        let mut response = http::parse(&raw[..end + 4], true)?;
        response.body = raw[end + 4..].to_vec();
        return Ok(response);
    }
}

/// Whether `url`'s host is a loopback address (never proxied).
pub fn is_loopback(url: &str) -> bool {
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = crate::workspace::registry_host(host);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

/// `url` with the values of credential-like query parameters (`key`, `token`, `api_key`,
/// `secret`, `password`) replaced by `***`: a Render deploy hook carries its credential in `key`.
pub fn mask_query_secret(url: &str) -> String {
    const SECRET_PARAMS: [&str; 5] = ["key", "token", "api_key", "secret", "password"];
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(pos) = rest.find(['?', '&']) {
        out.push_str(&rest[..=pos]);
        rest = &rest[pos + 1..];
        let end = rest
            .find(|c: char| c == '&' || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(rest.len());
        let pair = &rest[..end];
        match pair.split_once('=') {
            Some((name, _)) if SECRET_PARAMS.contains(&name.to_ascii_lowercase().as_str()) => {
                out.push_str(name);
                out.push_str("=***");
            }
            _ => out.push_str(pair),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
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
            Some(b"{\"a\":\"@x\\n\"}"),
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
            let mut raw = Vec::new();
            let mut buf = [0; 4096];
            // Read the head, then the body that Content-Length announces.
            loop {
                let n = stream.read(&mut buf).unwrap();
                raw.extend_from_slice(&buf[..n]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if raw.len() >= end + 4 + length || n == 0 {
                        break;
                    }
                }
                if n == 0 {
                    break;
                }
            }
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
            Some(body),
            Timeouts::default(),
            None,
        )
        .unwrap();
        let mut cmd = process::command("curl");
        cmd.args(["-q", "--config", "-"]);
        let out =
            process::output_with_timeout(cmd, Some(config.as_bytes()), Duration::from_secs(20))
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
}
