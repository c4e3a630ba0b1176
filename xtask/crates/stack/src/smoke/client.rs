//! Sending a check's request to the service under test. `http://` goes through xtask's own
//! HTTP/1.1 client (http.rs); `https://` (a deployment) through https.rs, xtask's one HTTPS path
//! (curl, with the URL and headers on its stdin so a token never reaches an argument list).
//! Also the request as a `curl` command a person can paste, with secrets masked.

use std::time::Duration;

use anyhow::{Result, bail};

use xtask_core::{http, https};

/// Where the service under test answers: `http://host:port` or `https://host[/prefix]`.
#[derive(Clone, Debug)]
pub struct Base {
    pub url: String,
}

impl Base {
    pub fn new(url: &str) -> Result<Base> {
        let url = url.trim_end_matches('/').to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            bail!("--url {url}: expected http://… or https://…");
        }
        Ok(Base { url })
    }

    /// Sends one request; `target` is the path with its query string.
    pub fn send(
        &self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<http::Response> {
        if let Some(rest) = self.url.strip_prefix("http://") {
            let (address, prefix) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            };
            let path = format!("{prefix}{target}");
            let mut request = http::Request::new(method, address, &path).timeout(timeout);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            return request.send();
        }
        self.send_https(method, target, headers, timeout)
    }

    /// `https://` through the one HTTPS path of xtask (https.rs: curl, with the URL and the
    /// headers on its stdin).
    fn send_https(
        &self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<http::Response> {
        let client = https::Client::new(https::Timeouts {
            connect: timeout,
            read: timeout,
        })?;
        let headers: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        client.send(method, &format!("{}{target}", self.url), &headers, None)
    }

    /// The request as a curl command, secrets masked.
    pub fn curl(&self, method: &str, target: &str, headers: &[(String, String)]) -> String {
        let mut words = vec!["curl".to_owned(), "-i".to_owned()];
        if method != "GET" {
            words.extend(["-X".to_owned(), method.to_owned()]);
        }
        for (name, value) in headers {
            let value = if name.eq_ignore_ascii_case("authorization") {
                mask_authorization(value)
            } else {
                value.clone()
            };
            words.push("-H".to_owned());
            words.push(quote(&format!("{name}: {value}")));
        }
        words.push(quote(&format!("{}{target}", self.url)));
        words.join(" ")
    }
}

/// `Bearer <token>` with the token's signature masked: the header and claims stay readable
/// (they say which auth mode failed), the part that proves possession of the secret does not.
pub fn mask_authorization(value: &str) -> String {
    match value.strip_prefix("Bearer ") {
        Some(token) => match token.rsplit_once('.') {
            Some((signed, signature)) if !signature.is_empty() => format!("Bearer {signed}.***"),
            _ => format!("Bearer {token}"),
        },
        None => "***".to_owned(),
    }
}

/// POSIX shell single quoting, for the printed curl command only (never executed).
fn quote(word: &str) -> String {
    if word
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@".contains(&b))
    {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curl_commands_mask_the_signature_and_quote_words() {
        let base = Base::new("http://127.0.0.1:8080/").unwrap();
        let line = base.curl(
            "POST",
            "/meetings?q=it's",
            &[("Authorization".into(), "Bearer aaa.bbb.secretsig".into())],
        );
        assert_eq!(
            line,
            r"curl -i -X POST -H 'Authorization: Bearer aaa.bbb.***' 'http://127.0.0.1:8080/meetings?q=it'\''s'"
        );
        assert!(!line.contains("secretsig"));
        assert_eq!(mask_authorization("Basic abc"), "***");
    }
}
