//! HTTP(S) to remote services (Render's API, a deployed service's public URL, `smoke --url
//! https://…`). xtask carries no TLS stack: `https://` goes through the `curl` program, and
//! `http://` to a loopback address (the tests' stubs, local containers) through xtask's own
//! HTTP/1.1 client (http.rs). A TLS stack compiled into xtask (rustls and ring) roughly doubled
//! its cold compile; curl is on every machine that deploys (ARCHITECTURE.md, "Dependency budget").
//!
//! curl is started as `curl -q -K -`: the URL, every header and the body reach it as a curl
//! config on its **stdin**, so neither the API key (in `Authorization`) nor a credential in a
//! URL's query (a deploy hook's `key`) ever appears in an argument list. Values are quoted and
//! escaped per curl's config syntax, and a header value holding CR or LF is refused, so a value
//! can never add a config line of its own. `-q` makes curl skip `~/.curlrc`. A body too long for
//! one config line (curl 7.88 stops at 100 KiB) goes in a file of its own that only this user can
//! read, named by the config and removed after the request. curl's stdin is fed while its output
//! drains (process.rs), and when curl fails, its exit code and its own reason are in the error.
//!
//! Certificates are checked against the **system's** CA store (curl's default bundle), or
//! `SSL_CERT_FILE` when it is set (passed as `cacert`), so xtask works behind a TLS-intercepting
//! proxy whose CA the machine trusts. curl honours `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` itself;
//! loopback addresses are always reached directly. Every request has a connect deadline
//! (`connect-timeout`) and an overall one (`max-time` = connect + read).
//!
//! Errors never quote header values, and URLs in messages pass through [`mask_query_secret`].

use std::{fmt, time::Duration};

use anyhow::{Context, Result, bail};

pub mod api;

use crate::http::Response;
use crate::{http, process};

/// A failure on the way to the server or back (no connection, a reset, a timeout, an empty
/// answer), which another attempt may not meet. Every other failure is final: curl missing, a
/// malformed request, a local read error, a certificate refused. `api::Api::call` retries only
/// these, so a failure that retrying cannot fix is said once, with curl's own reason.
#[derive(Debug)]
pub struct Transient(String);

impl fmt::Display for Transient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Transient {}

/// Whether an error of `send` is a [`Transient`] one.
pub fn is_transient(err: &anyhow::Error) -> bool {
    err.downcast_ref::<Transient>().is_some()
}

/// curl's exit codes for the network, not the request: 5 and 6 (a proxy or host not
/// resolved), 7 (no connection), 16 and 92 (HTTP/2 framing), 28 (timeout), 35 (the TLS
/// handshake broke off), 18 (a partial answer), 52 (an empty answer), 55 and 56 (a send or
/// receive failed).
const TRANSIENT_CURL_EXITS: [i32; 11] = [5, 6, 7, 16, 18, 28, 35, 52, 55, 56, 92];

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
            // Loopback (the local stack, the stubs): a refused or broken connection is the
            // failure here, and another attempt may not meet it.
            return self.send_plain(method, rest, headers, body).map_err(|err| {
                anyhow::Error::new(Transient(format!("{method} {shown}: {err:#}")))
            });
        }
        // A body too long for one line of curl's config goes through a private file instead.
        let spilled = match body {
            Some(bytes) if bytes.len() > INLINE_BODY_MAX => Some(
                BodyFile::write(bytes)
                    .with_context(|| format!("{method} {shown}: writing the request body"))?,
            ),
            _ => None,
        };
        let body = match (body, &spilled) {
            (Some(bytes), Some(file)) => Some(Body::File(bytes, &file.path)),
            (Some(bytes), None) => Some(Body::Inline(bytes)),
            (None, _) => None,
        };
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
            // curl's exit code and its own reason (its stderr), with a secret query masked.
            let reason = mask_query_secret(&process::failure("curl", &out));
            let code = out.status.code();
            let message = if code == Some(28) {
                format!(
                    "{method} {shown}: no answer within {:.0}s ({reason})",
                    (self.timeouts.connect + self.timeouts.read).as_secs_f64()
                )
            } else {
                format!("{method} {shown}: {reason}")
            };
            if code.is_some_and(|c| TRANSIENT_CURL_EXITS.contains(&c)) {
                return Err(Transient(message).into());
            }
            bail!(message);
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

/// The longest body written into curl's config itself: curl 7.88 refuses a config line longer
/// than 100 KiB ("error encountered when reading a file"), and quoting can double a body.
const INLINE_BODY_MAX: usize = 32 * 1024;

/// A request body as the curl config carries it.
#[derive(Clone, Copy)]
enum Body<'a> {
    /// In the config (`data-raw`), for bodies up to [`INLINE_BODY_MAX`].
    Inline(&'a [u8]),
    /// The body, read by curl from the file at the path (`data-binary = "@path"`).
    File(&'a [u8], &'a std::path::Path),
}

/// A request body in a file of its own (mode 0600, in a directory of its own with mode 0700, so
/// no other user can read a body that holds a credential), removed when dropped.
struct BodyFile {
    dir: std::path::PathBuf,
    path: std::path::PathBuf,
}

impl BodyFile {
    fn write(bytes: &[u8]) -> Result<Self> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-curl-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let file = Self {
            path: dir.join("body"),
            dir,
        };
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.path)
            .and_then(|mut out| std::io::Write::write_all(&mut out, bytes))
            .with_context(|| format!("writing {}", file.path.display()))?;
        Ok(file)
    }
}

impl Drop for BodyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The curl config (read by `curl -K -`) for one request. Every value is double-quoted and
/// escaped; header names must be HTTP tokens, and header values, the URL and the method may
/// not hold CR, LF or NUL, so nothing a caller passes can start a config line of its own.
fn curl_config(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Body<'_>>,
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
        Some(body) => {
            let bytes = match body {
                Body::Inline(bytes) | Body::File(bytes, _) => bytes,
            };
            let text = std::str::from_utf8(bytes).context("the request body is not UTF-8")?;
            if text.contains('\0') {
                bail!("the request body holds NUL");
            }
            lines.push(format!(
                "header = {}",
                quote("Content-Type: application/json")
            ));
            match body {
                // `data-raw`, not `data`: a body starting with `@` is not a file name.
                Body::Inline(_) => lines.push(format!("data-raw = {}", quote(text))),
                // `data-binary`: the file's bytes unchanged (`data` would drop line breaks).
                Body::File(_, path) => {
                    let path = path.to_str().context("the body file's path is not UTF-8")?;
                    if path.contains(['\r', '\n', '\0']) {
                        bail!("the body file's path holds a line break");
                    }
                    lines.push(format!("data-binary = {}", quote(&format!("@{path}"))));
                }
            }
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
mod tests;
