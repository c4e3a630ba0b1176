//! Asking a registry whether it has an image, over the registry HTTP API v2. A registry on this
//! machine speaks plain HTTP (as Docker itself assumes for loopback); a remote one is asked
//! through `docker manifest inspect`, which knows TLS and the user's stored credentials.

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

use anyhow::{Context, Result, bail};

use crate::{config, docker::Docker};

/// Registry lookups are on the hot path of `base status`: a dead registry must not stall it.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Media types we accept for a manifest, so the digest is the one `docker push` reported.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Present { digest: String },
    Absent,
}

/// Credentials for the registry, read from the environment by the caller.
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// DOCKER_REGISTRY_USERNAME and DOCKER_REGISTRY_PASSWORD, when both are set.
    pub fn from_env() -> Option<Self> {
        let username = std::env::var("DOCKER_REGISTRY_USERNAME")
            .ok()
            .filter(|v| !v.is_empty())?;
        let password = std::env::var("DOCKER_REGISTRY_PASSWORD")
            .ok()
            .filter(|v| !v.is_empty())?;
        Some(Credentials { username, password })
    }
}

/// Does `registry` have `repository:tag`?
pub fn lookup(docker: &Docker<'_>, registry: &str, repository: &str, tag: &str) -> Result<Lookup> {
    if !config::LOCAL_REGISTRY_HOSTS.contains(&config::registry_host(registry)) {
        return docker.manifest_digest(&format!("{registry}/{repository}:{tag}"));
    }
    lookup_http(registry, repository, tag)
}

/// The registry API lookup over plain HTTP, for a registry on this machine.
pub fn lookup_http(registry: &str, repository: &str, tag: &str) -> Result<Lookup> {
    let credentials = Credentials::from_env();
    let response = request(
        registry,
        "HEAD",
        &format!("/v2/{repository}/manifests/{tag}"),
        credentials.as_ref(),
    )?;
    match response.status {
        200 => {
            let digest = response
                .header("docker-content-digest")
                .with_context(|| format!("registry {registry} sent no Docker-Content-Digest"))?;
            Ok(Lookup::Present {
                digest: digest.to_owned(),
            })
        }
        404 => Ok(Lookup::Absent),
        401 | 403 => match &credentials {
            Some(c) => bail!(
                "registry {registry} refused the login of user {} (HTTP {}); check DOCKER_REGISTRY_USERNAME and DOCKER_REGISTRY_PASSWORD",
                c.username,
                response.status
            ),
            None => bail!(
                "registry {registry} requires a login (HTTP {}); set DOCKER_REGISTRY_USERNAME and DOCKER_REGISTRY_PASSWORD",
                response.status
            ),
        },
        other => bail!("registry {registry} answered HTTP {other} for {repository}:{tag}"),
    }
}

/// Whether something that speaks the registry API answers at `registry`.
pub fn ping(registry: &str) -> Result<()> {
    let response = request(registry, "GET", "/v2/", None)?;
    match response.status {
        200 | 401 => Ok(()),
        other => bail!("{registry} answered HTTP {other} to /v2/: is it a registry?"),
    }
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn request(
    registry: &str,
    method: &str,
    path: &str,
    credentials: Option<&Credentials>,
) -> Result<Response> {
    let unreachable = |why: String| {
        anyhow::anyhow!(
            "registry {registry} is unreachable ({why}); start the local one with `cargo xtask setup` or set DOCKER_REGISTRY_SERVER"
        )
    };
    let addrs: Vec<_> = registry
        .to_socket_addrs()
        .or_else(|_| format!("{registry}:80").to_socket_addrs())
        .map_err(|e| unreachable(e.to_string()))?
        .collect();
    let mut last_error = String::from("no address");
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(err) => last_error = err.to_string(),
        }
    }
    let mut stream = stream.ok_or_else(|| unreachable(last_error))?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {registry}\r\nAccept: {MANIFEST_TYPES}\r\nConnection: close\r\n"
    );
    if let Some(c) = credentials {
        head.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64(format!("{}:{}", c.username, c.password).as_bytes())
        ));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .map_err(|e| unreachable(e.to_string()))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    // Headers are all we need; stop at the blank line so HEAD and GET both work.
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream
            .read(&mut buf)
            .map_err(|e| unreachable(e.to_string()))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    parse_head(&raw).with_context(|| format!("registry {registry} sent a malformed HTTP answer"))
}

fn parse_head(raw: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(raw);
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Some(Response { status, headers })
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), expected);
        }
    }

    #[test]
    fn parses_status_and_headers() {
        let r = parse_head(b"HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:ab\r\n\r\n").unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.header("docker-content-digest"), Some("sha256:ab"));
    }
}
