//! The smoke report: a table on stdout (check, result, latency), the failures in detail (the
//! request as a curl command, expected against actual, a body excerpt), then one summary line;
//! or the same as one JSON object (`--json`); and JUnit XML (`--junit FILE`) for CI.

use std::{fmt::Write as _, path::Path, time::Duration};

use anyhow::{Context, Result};
use serde::Serialize;

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Not run, and why (e.g. a seeded check against a URL).
    Skip(String),
}

/// `smoke --json`. The fields of these documents are in alphabetical order, the order their
/// keys have always been printed in.
#[derive(Serialize)]
pub struct SummaryJson<'a> {
    checks: Vec<CheckJson<'a>>,
    failed: usize,
    passed: usize,
    seconds: f64,
    skipped: usize,
    target: &'a str,
}

/// One check's result; `skip_reason` is null unless it was skipped.
#[derive(Serialize)]
struct CheckJson<'a> {
    excerpt: Option<&'a str>,
    failures: &'a [String],
    kind: &'static str,
    latency_ms: f64,
    name: &'a str,
    request: Option<&'a str>,
    result: &'static str,
    skip_reason: Option<&'a str>,
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub name: String,
    /// `http` for declared checks, `container` for those only a local container allows.
    pub kind: &'static str,
    pub verdict: Verdict,
    pub latency: Duration,
    /// The request as a curl command (secrets masked), when there was one.
    pub request: Option<String>,
    /// Expected against actual, one line each.
    pub failures: Vec<String>,
    /// The start of the body, secrets masked.
    pub excerpt: Option<String>,
}

impl Outcome {
    pub fn failed(&self) -> bool {
        self.verdict == Verdict::Fail
    }
}

pub struct Summary<'a> {
    /// What was tested: an image or a URL.
    pub target: &'a str,
    pub outcomes: &'a [Outcome],
    pub elapsed: Duration,
}

impl Summary<'_> {
    fn counts(&self) -> (usize, usize, usize) {
        let failed = self.outcomes.iter().filter(|o| o.failed()).count();
        let skipped = self
            .outcomes
            .iter()
            .filter(|o| matches!(o.verdict, Verdict::Skip(_)))
            .count();
        (self.outcomes.len() - failed - skipped, failed, skipped)
    }

    pub fn passed(&self) -> bool {
        self.counts().1 == 0
    }

    pub fn line(&self) -> String {
        let (passed, failed, skipped) = self.counts();
        format!(
            "smoke {}: {passed} passed, {failed} failed, {skipped} skipped in {:.1}s ({})",
            if failed == 0 { "passed" } else { "FAILED" },
            self.elapsed.as_secs_f64(),
            self.target
        )
    }

    pub fn table(&self) -> String {
        let width = self
            .outcomes
            .iter()
            .map(|o| o.name.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        let mut out = format!("{:<width$}  {:<6}  {:>9}\n", "check", "result", "latency");
        for o in self.outcomes {
            let result = match &o.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "FAIL",
                Verdict::Skip(_) => "skip",
            };
            let _ = writeln!(
                out,
                "{:<width$}  {result:<6}  {:>7.1}ms",
                o.name,
                o.latency.as_secs_f64() * 1000.0
            );
        }
        for o in self.outcomes.iter().filter(|o| o.failed()) {
            let _ = writeln!(out, "\nFAIL {}", o.name);
            if let Some(request) = &o.request {
                let _ = writeln!(out, "  request:  {request}");
            }
            for failure in &o.failures {
                let _ = writeln!(out, "  {failure}");
            }
            if let Some(excerpt) = &o.excerpt {
                let _ = writeln!(out, "  body:     {excerpt}");
            }
        }
        let _ = writeln!(out, "\n{}", self.line());
        out
    }

    pub fn json(&self) -> SummaryJson<'_> {
        let (passed, failed, skipped) = self.counts();
        SummaryJson {
            checks: self
                .outcomes
                .iter()
                .map(|o| CheckJson {
                    excerpt: o.excerpt.as_deref(),
                    failures: &o.failures,
                    kind: o.kind,
                    latency_ms: o.latency.as_secs_f64() * 1000.0,
                    name: &o.name,
                    request: o.request.as_deref(),
                    result: match &o.verdict {
                        Verdict::Pass => "pass",
                        Verdict::Fail => "fail",
                        Verdict::Skip(_) => "skip",
                    },
                    skip_reason: match &o.verdict {
                        Verdict::Skip(why) => Some(why),
                        _ => None,
                    },
                })
                .collect(),
            failed,
            passed,
            seconds: self.elapsed.as_secs_f64(),
            skipped,
            target: self.target,
        }
    }

    /// JUnit XML as CI systems read it: one testsuite, one testcase per check.
    pub fn junit(&self) -> String {
        let (_, failed, skipped) = self.counts();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuites name=\"smoke\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{:.3}\">",
            self.outcomes.len(),
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "  <testsuite name=\"smoke {}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"{skipped}\" time=\"{:.3}\">",
            escape(self.target),
            self.outcomes.len(),
            self.elapsed.as_secs_f64()
        );
        for o in self.outcomes {
            let _ = write!(
                out,
                "    <testcase classname=\"smoke.{}\" name=\"{}\" time=\"{:.3}\"",
                o.kind,
                escape(&o.name),
                o.latency.as_secs_f64()
            );
            match &o.verdict {
                Verdict::Pass => out.push_str("/>\n"),
                Verdict::Skip(why) => {
                    let _ = writeln!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        escape(why)
                    );
                }
                Verdict::Fail => {
                    let mut detail = String::new();
                    if let Some(request) = &o.request {
                        let _ = writeln!(detail, "request: {request}");
                    }
                    for failure in &o.failures {
                        let _ = writeln!(detail, "{failure}");
                    }
                    if let Some(excerpt) = &o.excerpt {
                        let _ = writeln!(detail, "body: {excerpt}");
                    }
                    let _ = writeln!(
                        out,
                        ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                        escape(o.failures.first().map_or("failed", String::as_str)),
                        escape(&detail)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }

    pub fn write_junit(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.junit())
            .with_context(|| format!("writing the JUnit report {}", path.display()))
    }
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The start of a body for a failure report, with `secrets` replaced by `***`.
pub fn excerpt(body: &[u8], secrets: &[&str]) -> String {
    let mut text: String = String::from_utf8_lossy(body).chars().take(300).collect();
    if body.len() > text.len() {
        text.push('…');
    }
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(secret, "***");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_counts_and_escapes() {
        let outcomes = vec![
            Outcome {
                name: "a <b>".into(),
                kind: "http",
                verdict: Verdict::Pass,
                latency: Duration::from_millis(3),
                request: None,
                failures: vec![],
                excerpt: None,
            },
            Outcome {
                name: "c".into(),
                kind: "http",
                verdict: Verdict::Fail,
                latency: Duration::from_millis(4),
                request: Some("curl -i 'http://x/y?a=1&b=2'".into()),
                failures: vec!["status: expected 200, got 500".into()],
                excerpt: Some("{\"error\":\"internal\"}\u{1}".into()),
            },
            Outcome {
                name: "d".into(),
                kind: "container",
                verdict: Verdict::Skip("--url".into()),
                latency: Duration::ZERO,
                request: None,
                failures: vec![],
                excerpt: None,
            },
        ];
        let summary = Summary {
            target: "img",
            outcomes: &outcomes,
            elapsed: Duration::from_secs(1),
        };
        assert!(!summary.passed());
        assert_eq!(
            summary.line(),
            "smoke FAILED: 1 passed, 1 failed, 1 skipped in 1.0s (img)"
        );
        let table = summary.table();
        assert!(table.contains("FAIL c\n  request:  curl -i"), "{table}");
        let xml = summary.junit();
        assert!(xml.contains("name=\"a &lt;b&gt;\""), "{xml}");
        assert!(xml.contains("a=1&amp;b=2"), "{xml}");
        assert!(
            xml.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{xml}"
        );
        assert!(!xml.contains('\u{1}'));
        assert_eq!(excerpt(b"token=abc", &["abc"]), "token=***");
    }
}
