//! Runs the declared checks against a service: each check's request (with its auth mode's
//! token), the judgement of smoke/checks.rs, and for paginated lists the walk to the end. The
//! checks are independent reads, so they run concurrently on a few threads; the report keeps
//! the file's order.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{
    checks::{self, Answer, Check},
    client::Base,
    jwt::{self, Auth},
    report::{self, Outcome, Verdict},
    schema::Contract,
};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent requests: enough to overlap the waits, few enough that a cold pool's connects
/// (3 s deadline in the service) keep up on a loaded two-core machine with four runs at once.
const WORKERS: usize = 4;
/// A walk longer than this is a loop.
const MAX_PAGES: usize = 200;

/// What every check needs.
pub struct Target<'a> {
    pub base: &'a Base,
    pub contract: &'a Contract,
    /// The stack's JWT secret; None against a URL, where seeded checks do not run.
    pub secret: Option<&'a str>,
    pub user: &'a str,
}

/// Runs `checks` concurrently; `skip` says why a check does not run, if it does not.
pub fn run_all(
    checks: &[Check],
    target: &Target<'_>,
    skip: impl Fn(&Check) -> Option<String> + Sync,
) -> Vec<Outcome> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; checks.len()]);
    std::thread::scope(|scope| {
        for _ in 0..WORKERS.min(checks.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(check) = checks.get(i) else { break };
                    let outcome = match skip(check) {
                        Some(why) => skipped(check, why),
                        None => run_one(check, target),
                    };
                    results.lock().unwrap()[i] = Some(outcome);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .flatten()
        .collect()
}

fn skipped(check: &Check, why: String) -> Outcome {
    Outcome {
        name: check.name.clone(),
        kind: "http",
        verdict: Verdict::Skip(why),
        latency: Duration::ZERO,
        request: None,
        failures: Vec::new(),
        excerpt: None,
    }
}

fn headers(check: &Check, target: &Target<'_>) -> Result<Vec<(String, String)>, String> {
    let mut headers: Vec<(String, String)> = check
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if check.auth != Auth::None {
        let secret = match (check.auth, target.secret) {
            (Auth::WrongSignature | Auth::AlgNone, _) => "",
            (_, Some(secret)) => secret,
            (_, None) => return Err("needs the stack's JWT secret".to_owned()),
        };
        let now = xtask_core::time::now();
        if let Some(value) = jwt::authorization(check.auth, secret.as_bytes(), target.user, now) {
            headers.push(("Authorization".to_owned(), value));
        }
    }
    Ok(headers)
}

/// Runs one check: its request, the judgement, and the walk when it follows a cursor.
pub fn run_one(check: &Check, target: &Target<'_>) -> Outcome {
    let headers = match headers(check, target) {
        Ok(headers) => headers,
        Err(why) => return skipped(check, why),
    };
    let path = check.target(None);
    let request = target.base.curl(&check.method, &path, &headers);
    let secrets: Vec<&str> = target.secret.into_iter().collect();
    let started = Instant::now();
    let mut outcome = Outcome {
        name: check.name.clone(),
        kind: "http",
        verdict: Verdict::Pass,
        latency: Duration::ZERO,
        request: Some(request),
        failures: Vec::new(),
        excerpt: None,
    };
    let response = target
        .base
        .send(&check.method, &path, &headers, REQUEST_TIMEOUT);
    outcome.latency = started.elapsed();
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            outcome.verdict = Verdict::Fail;
            outcome.failures.push(format!("request failed: {err:#}"));
            return outcome;
        }
    };
    let answer = Answer {
        status: response.status,
        headers: &response.headers,
        body: &response.body,
    };
    outcome.failures = checks::judge(check, target.contract, &answer);
    let mut last_body = response.body.clone();
    if let Some(follow) = &check.follow
        && outcome.failures.is_empty()
    {
        let (failures, body) = walk(check, follow, target, &headers, &response.body);
        outcome.failures.extend(failures);
        if let Some(body) = body {
            last_body = body;
        }
        outcome.latency = started.elapsed();
    }
    if !outcome.failures.is_empty() {
        outcome.verdict = Verdict::Fail;
        outcome.excerpt = Some(report::excerpt(&last_body, &secrets));
    }
    outcome
}

/// Follows the cursor from `first` to the end: every page conforms, no key comes twice, at
/// least `min_pages` pages, and the keys are exactly those of `complete_with`'s one page.
fn walk(
    check: &Check,
    follow: &checks::Follow,
    target: &Target<'_>,
    headers: &[(String, String)],
    first: &[u8],
) -> (Vec<String>, Option<Vec<u8>>) {
    let mut failures = Vec::new();
    let page_check = Check {
        assertions: Vec::new(),
        follow: None,
        ..check.clone()
    };
    let mut keys = Vec::new();
    let mut page: Value = serde_json::from_slice(first).unwrap_or(Value::Null);
    let mut pages = 1;
    let mut last = None;
    loop {
        keys.extend(checks::page_keys(follow, &page));
        let Some(cursor) = checks::next_cursor(follow, &page) else {
            break;
        };
        if pages >= MAX_PAGES {
            failures.push(format!("walk: still a next cursor after {MAX_PAGES} pages"));
            break;
        }
        let path = check.target(Some((&follow.param, &cursor)));
        let response = match target
            .base
            .send(&check.method, &path, headers, REQUEST_TIMEOUT)
        {
            Ok(r) => r,
            Err(err) => {
                failures.push(format!("walk: page {}: {err:#}", pages + 1));
                break;
            }
        };
        pages += 1;
        let answer = Answer {
            status: response.status,
            headers: &response.headers,
            body: &response.body,
        };
        let page_failures = checks::judge(&page_check, target.contract, &answer);
        if !page_failures.is_empty() {
            failures.extend(
                page_failures
                    .into_iter()
                    .map(|f| format!("walk: page {pages} ({path}): {f}")),
            );
            last = Some(response.body);
            break;
        }
        page = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        last = Some(response.body);
    }
    let duplicates = checks::duplicates(&keys);
    if !duplicates.is_empty() {
        failures.push(format!(
            "walk: expected no key twice, got {} repeated: {}",
            duplicates.len(),
            duplicates.join(", ")
        ));
    }
    if pages < follow.min_pages {
        failures.push(format!(
            "walk: expected at least {} pages, got {pages}",
            follow.min_pages
        ));
    }
    if let Some(query) = &follow.complete_with {
        let path = format!("{}?{query}", check.path);
        match target
            .base
            .send(&check.method, &path, headers, REQUEST_TIMEOUT)
            .ok()
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
        {
            Some(all) => {
                let mut expected = checks::page_keys(follow, &all);
                let mut found = keys.clone();
                expected.sort();
                found.sort();
                found.dedup();
                if expected != found {
                    let missing: Vec<_> = expected.iter().filter(|k| !found.contains(k)).collect();
                    let extra: Vec<_> = found.iter().filter(|k| !expected.contains(k)).collect();
                    failures.push(format!(
                        "walk: expected the {} keys of {path}, got {} (missing {missing:?}, extra {extra:?})",
                        expected.len(),
                        found.len()
                    ));
                }
            }
            None => failures.push(format!("walk: {path} gave no JSON to compare with")),
        }
    }
    (failures, last)
}
