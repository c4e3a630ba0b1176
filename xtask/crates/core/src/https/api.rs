//! The core of a JSON-API client over [`https::Client`](super::Client), shared by Render's API
//! (deploy/render.rs) and Supabase's Management API (preview/supabase.rs): the bearer token in
//! the `Authorization` header only, 429s waited out as the rate-limit headers say, idempotent
//! calls retried on 5xx and transient failures (the network, never the request) with bounded
//! backoff, and counters for reports
//! and benchmarks. Each service supplies its display name, the wording of its rate limit and
//! how its error answers read.

use std::{
    cell::Cell,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Result, bail};
use serde::Serialize;

use super::{Client, Response};

/// Retry and pacing policy.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    /// Attempts for a request that fails with 5xx or a connection error (idempotent calls).
    pub attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest a 429 may make us wait before giving up.
    pub max_rate_wait: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempts: 6,
            first_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_rate_wait: Duration::from_mins(2),
        }
    }
}

/// What a service is called in messages, and how its answers become errors.
pub struct Service {
    /// "Render", "Supabase".
    pub name: &'static str,
    /// How a refusal names the limit: "Render's rate limit".
    pub limit: &'static str,
    /// The header a 429 wait follows, as named in the progress note.
    pub reset_header: &'static str,
    /// The error for an answer that is not the one expected (method, path, answer).
    pub error: fn(&str, &str, &Response) -> anyhow::Error,
}

/// One service's API at one base URL, with one token.
pub struct Api {
    service: Service,
    base: String,
    /// Never printed: no Debug, and errors name the request, not its headers.
    authorization: String,
    client: Client,
    pub policy: Policy,
    /// What the last answer said about the rate limit: (remaining, time until reset).
    pub rate: Cell<Option<(u64, Duration)>>,
    /// Counters for reports and benchmarks.
    pub requests: Cell<u32>,
    pub retries: Cell<u32>,
    pub rate_limited: Cell<u32>,
}

/// The body of a request that has none (`GET`, `DELETE`, a bare `POST`).
pub const NO_BODY: Option<&()> = None;

impl Api {
    pub fn new(service: Service, base: &str, token: &str, client: Client) -> Api {
        Api {
            service,
            base: base.trim_end_matches('/').to_owned(),
            authorization: format!("Bearer {}", token.trim()),
            client,
            policy: Policy::default(),
            rate: Cell::new(None),
            requests: Cell::new(0),
            retries: Cell::new(0),
            rate_limited: Cell::new(0),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One exchange, with 429s waited out (they never created anything). No retry otherwise.
    pub fn exchange<B: Serialize + ?Sized>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<Response> {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| serde_json::to_vec(b).expect("JSON serialises"));
        let started = Instant::now();
        loop {
            self.requests.set(self.requests.get() + 1);
            let response = self.client.send(
                method,
                &url,
                &[
                    ("Authorization", &self.authorization),
                    ("Accept", "application/json"),
                ],
                body.as_deref(),
            )?;
            let rate = rate_limit(&response);
            self.rate.set(rate);
            if response.status != 429 {
                return Ok(response);
            }
            self.rate_limited.set(self.rate_limited.get() + 1);
            let wait = rate
                .map_or(Duration::from_secs(1), |(_, reset)| reset)
                .max(Duration::from_millis(100));
            if started.elapsed() + wait > self.policy.max_rate_wait {
                bail!(
                    "{}: {method} {path} was refused with 429 for {:.0}s; try again later",
                    self.service.limit,
                    started.elapsed().as_secs_f64()
                );
            }
            crate::progress::note(format!(
                "rate limited by {} (429): waiting {:.1}s as {} says",
                self.service.name,
                wait.as_secs_f64(),
                self.service.reset_header
            ));
            std::thread::sleep(wait);
        }
    }

    /// An idempotent call: 5xx and connection errors are retried with bounded backoff.
    pub fn call<B: Serialize + ?Sized>(
        &self,
        method: &str,
        path: &str,
        body: Option<&B>,
    ) -> Result<Response> {
        let mut backoff = self.policy.first_backoff;
        let mut attempt = 1;
        loop {
            let outcome = self.exchange(method, path, body);
            // A 5xx or a failure on the way may pass; a 4xx, a malformed request or a local
            // failure would only fail again.
            let retry_reason = match &outcome {
                Ok(r) if r.status >= 500 => format!("HTTP {}", r.status),
                Err(err) if super::is_transient(err) => format!("{err:#}"),
                _ => return outcome,
            };
            if attempt >= self.policy.attempts {
                return match outcome {
                    Ok(r) => Err((self.service.error)(method, path, &r)),
                    Err(err) => Err(err.context(format!(
                        "{} did not answer {method} {path} after {attempt} attempts",
                        self.service.name
                    ))),
                };
            }
            self.retries.set(self.retries.get() + 1);
            crate::progress::note(format!(
                "{method} {path}: {retry_reason}; retrying in {:.1}s ({attempt}/{})",
                backoff.as_secs_f64(),
                self.policy.attempts
            ));
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(self.policy.max_backoff);
            attempt += 1;
        }
    }
}

/// (remaining, time until reset) from the rate-limit headers: Render's `Ratelimit-Remaining` and
/// `Ratelimit-Reset`, Supabase's `X-RateLimit-Remaining` and `X-RateLimit-Reset`, or else
/// `Retry-After`; `None` when the answer sent none of them.
pub fn rate_limit(response: &Response) -> Option<(u64, Duration)> {
    let number = |names: &[&str]| {
        names.iter().find_map(|name| {
            response
                .header(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
    };
    let remaining = number(&["ratelimit-remaining", "x-ratelimit-remaining"]).unwrap_or(u64::MAX);
    let reset = number(&["ratelimit-reset", "x-ratelimit-reset", "retry-after"])?;
    Some((remaining, reset_after(reset, SystemTime::now())))
}

/// A reset value as a wait: seconds remaining in practice, a Unix time per Render's docs (a value
/// above 10^9 is read as one).
pub fn reset_after(value: u64, now: SystemTime) -> Duration {
    if value > 1_000_000_000 {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Duration::from_secs(value.saturating_sub(now))
    } else {
        Duration::from_secs(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused connection is retried up to the policy's attempts; a failure that retrying
    /// cannot fix (here a token that breaks the request's header) is said at once.
    #[test]
    fn only_transient_failures_are_retried() {
        let service = || Service {
            name: "Stub",
            limit: "the stub's rate limit",
            reset_header: "Retry-After",
            error: |method, path, r| anyhow::anyhow!("{method} {path}: HTTP {}", r.status),
        };
        let client = Client::new(super::super::Timeouts {
            connect: Duration::from_secs(2),
            read: Duration::from_secs(2),
        })
        .unwrap();
        let policy = Policy {
            attempts: 3,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            max_rate_wait: Duration::from_secs(1),
        };
        let port = crate::net::free_port().unwrap();
        let mut refused = Api::new(
            service(),
            &format!("https://127.0.0.1:{port}"),
            "token",
            client.clone(),
        );
        refused.policy = policy;
        let err = refused.call("GET", "/x", NO_BODY).unwrap_err();
        assert!(format!("{err:#}").contains("after 3 attempts"), "{err:#}");
        assert_eq!(refused.retries.get(), 2);
        let mut malformed = Api::new(
            service(),
            &format!("https://127.0.0.1:{port}"),
            "token\nurl = \"http://elsewhere\"",
            client,
        );
        malformed.policy = policy;
        let err = malformed.call("GET", "/x", NO_BODY).unwrap_err();
        assert_eq!(malformed.retries.get(), 0, "{err:#}");
        assert!(!format!("{err:#}").contains("elsewhere"), "{err:#}");
    }

    #[test]
    fn reset_is_seconds_or_a_timestamp() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(reset_after(7, now), Duration::from_secs(7));
        assert_eq!(reset_after(1_800_000_030, now), Duration::from_secs(30));
        assert_eq!(reset_after(1_700_000_000, now), Duration::ZERO);
    }
}
