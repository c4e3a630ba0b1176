//! After a deploy turns `live`: prove that the new version serves the public URL. `/health` and
//! `/ready` answer 200, and `/` reports the deployed git sha (the service's `version`, baked in by
//! the image build as `OPENEU_GIT_SHA`), which shows that the new container, not the old one,
//! answers. Then the read-only smoke checks run against the URL (one call site, below).
//!
//! Render switches traffic over shortly after `live`; the checks retry within a short deadline
//! before they call a deploy unverified.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use xtask_core::{https, workspace::Workspace};

/// What verification found.
#[derive(Debug, Clone)]
pub struct Verified {
    pub url: String,
    pub version: String,
    pub smoke: bool,
}

/// Whether `reported` (the service's `version`) names `expected` (a commit sha, full or short).
pub fn version_matches(reported: &str, expected: &str) -> bool {
    let reported = reported.trim().trim_end_matches("-dirty");
    reported.len() >= 7 && (expected.starts_with(reported) || reported.starts_with(expected))
}

/// Checks `url` until it passes or `deadline` passes; the error says which check failed last.
pub fn verify(
    client: &https::Client,
    url: &str,
    expected: &str,
    smoke: Option<&Workspace>,
    deadline: Duration,
) -> Result<Verified> {
    let url = url.trim_end_matches('/');
    let started = Instant::now();
    let version = loop {
        match check_once(client, url, expected) {
            Ok(version) => break version,
            Err(err) if started.elapsed() >= deadline => {
                bail!(
                    "{url} failed verification for {:.0}s: {err:#}",
                    started.elapsed().as_secs_f64()
                )
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    };
    // The read-only checks of `cargo xtask smoke --url`, judged against openapi.json.
    if let Some(ws) = smoke {
        xtask_stack::smoke::verify_url(ws, url)?;
    }
    Ok(Verified {
        url: url.to_owned(),
        version,
        smoke: smoke.is_some(),
    })
}

fn check_once(client: &https::Client, url: &str, expected: &str) -> Result<String> {
    for path in ["/health", "/ready"] {
        let response = client.send("GET", &format!("{url}{path}"), &[], None)?;
        if response.status != 200 {
            bail!("GET {path} answered HTTP {}", response.status);
        }
    }
    let response = client.send("GET", &format!("{url}/"), &[], None)?;
    if response.status != 200 {
        bail!("GET / answered HTTP {}", response.status);
    }
    let body = response.json()?;
    let version = body["version"].as_str().unwrap_or_default().to_owned();
    if !version_matches(&version, expected) {
        bail!(
            "GET / reports version {version:?}, not the deployed {}: the old version still serves the URL",
            &expected[..expected.len().min(12)]
        );
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::version_matches;

    #[test]
    fn versions_match_by_prefix() {
        let full = "0123456789abcdef0123456789abcdef01234567";
        assert!(version_matches("0123456789ab", full));
        assert!(version_matches(full, "0123456789ab"));
        assert!(!version_matches("dev", full));
        assert!(!version_matches("unknown", full));
        assert!(!version_matches("fedcba987654", full));
    }
}
