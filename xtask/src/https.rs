//! HTTP(S) to remote services (Render's API, a deployed service's public URL): ureq with rustls,
//! the same client and features the service already uses, so the lockfile gains no crate.
//!
//! Certificates are checked against the **system's** CA store (`SSL_CERT_FILE`, else the
//! distribution's bundle), not only the bundled webpki roots, so xtask works behind a
//! TLS-intercepting proxy whose CA the machine trusts. `HTTPS_PROXY`/`ALL_PROXY`/`NO_PROXY` are
//! honoured for remote hosts; loopback addresses (the tests' stubs, local containers) are always
//! reached directly. Every request has a connect and a read deadline.
//!
//! Errors never quote header values (the API key travels in `Authorization`), and callers mask
//! URLs that carry a credential before they appear in a message (see [`mask_query_secret`]).

use std::{io::Read, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use ureq::tls::{PemItem, RootCerts, TlsConfig};

pub use crate::http::Response;

/// Where Debian, Fedora, Alpine and macOS keep the system's CA bundle.
const CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// A client with deadlines; cheap to clone (one connection pool).
#[derive(Clone)]
pub struct Client {
    direct: ureq::Agent,
    proxied: ureq::Agent,
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

impl Client {
    pub fn new(timeouts: Timeouts) -> Result<Self> {
        let roots = system_roots()?;
        let agent = |proxy: Option<ureq::Proxy>| -> ureq::Agent {
            ureq::Agent::config_builder()
                // Statuses are answers the callers interpret (429, 202, 404 …), not errors.
                .http_status_as_error(false)
                .timeout_connect(Some(timeouts.connect))
                .timeout_recv_response(Some(timeouts.read))
                .timeout_recv_body(Some(timeouts.read))
                .timeout_send_body(Some(timeouts.read))
                .max_redirects(0)
                .proxy(proxy)
                .user_agent(concat!("openeu-xtask/", env!("CARGO_PKG_VERSION")))
                .tls_config(TlsConfig::builder().root_certs(roots.clone()).build())
                .build()
                .into()
        };
        Ok(Client {
            direct: agent(None),
            proxied: agent(ureq::Proxy::try_from_env()),
        })
    }

    /// Sends one request. `headers` may hold credentials: they are never part of an error.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<Response> {
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let shown = mask_query_secret(url);
        let agent = if is_loopback(url) {
            &self.direct
        } else {
            &self.proxied
        };
        let result = match body {
            Some(bytes) => agent.run(
                builder
                    .header("Content-Type", "application/json")
                    .body(bytes.to_vec())
                    .with_context(|| format!("{method} {shown}: a malformed request"))?,
            ),
            None => agent.run(
                builder
                    .body(())
                    .with_context(|| format!("{method} {shown}: a malformed request"))?,
            ),
        };
        let mut response = result.map_err(|err| {
            anyhow::anyhow!("{method} {shown}: {}", mask_query_secret(&err.to_string()))
        })?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .read_to_end(&mut body)
            .with_context(|| format!("{method} {shown}: reading the answer"))?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// The system's trust anchors: `SSL_CERT_FILE` when set, else the first system bundle found.
/// Without either, the webpki roots compiled into ureq (a machine behind an intercepting proxy
/// then fails with a certificate error that names this fallback).
fn system_roots() -> Result<RootCerts> {
    let candidates: Vec<String> = std::env::var("SSL_CERT_FILE")
        .ok()
        .filter(|f| !f.is_empty())
        .into_iter()
        .chain(CA_BUNDLES.iter().map(|s| (*s).to_owned()))
        .collect();
    for path in candidates {
        let Ok(pem) = std::fs::read(&path) else {
            continue;
        };
        let certs: Vec<_> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(cert)) => Some(cert),
                _ => None,
            })
            .collect();
        if !certs.is_empty() {
            return Ok(RootCerts::Specific(Arc::new(certs)));
        }
    }
    Ok(RootCerts::WebPki)
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
    fn the_system_store_is_read() {
        // This machine trusts an intercepting proxy's CA through the system bundle.
        if std::path::Path::new(CA_BUNDLES[0]).exists() {
            assert!(matches!(system_roots().unwrap(), RootCerts::Specific(_)));
        }
    }
}
