//! The one comparison of a service's environment variables (as Render holds them, name →
//! value) with the env spec, and optionally with an env file: what `env check --service`
//! reports, what `env push` shows before it writes, and what deploy's preflight and its
//! `--dry-run` plan can ask for through [`compare`].
//!
//! Pure: no network, no files. Secret values are only ever validated and compared; whatever
//! is rendered (lines, JSON) shows them as [`masked`], and so are the values of names the spec
//! does not know, since a misspelt secret (`SUPABASE_JWT_SECERT`) is still a secret.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use anyhow::{Result, bail};
use openeu_env::{ProblemKind, Reader, SPEC, Target};
use serde::Serialize;

use super::EnvEntry;

/// How `env push` is spelled in the fixes, so each line says what to run.
const PUSH: &str = "cargo xtask env push --env-file F";

/// An env file to compare the service with: its path and its parsed entries (with lines).
#[derive(Clone, Copy)]
pub struct EnvFile<'a> {
    pub path: &'a Path,
    pub entries: &'a [EnvEntry],
}

/// One problem of the service's variables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub name: String,
    pub kind: Kind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Required for the target, not set on the service; `instead` is a near miss that is set.
    Missing { instead: Option<String> },
    /// Set, but not in the spec's format; the text says what it must be.
    Malformed(String),
    /// Not in the spec at all, with a close spec name when there is one.
    Unknown { did_you_mean: Option<&'static str> },
    /// In the spec, but the service does not read it (a deploy or build variable, such as a
    /// credential of the machine that deploys, which has no business on the service).
    NotRead,
    /// The env file holds another value (`on_service: false`: the service lacks it).
    Differs {
        file: PathBuf,
        line: usize,
        on_service: bool,
    },
}

impl Finding {
    /// The finding and its fix, on one line; never a secret value.
    pub fn line(&self) -> String {
        format!("{self} — fix: {}", self.fix())
    }

    /// What to do about it.
    pub fn fix(&self) -> String {
        let name = &self.name;
        match &self.kind {
            Kind::Missing {
                instead: Some(other),
            } => format!(
                "rename {other} to {name} on the service (put {name}=… in F and run `{PUSH} --prune`)"
            ),
            Kind::Missing { instead: None } => format!(
                "set {name} on the service: put {name}=… in an env file F and run `{PUSH}` (or Render dashboard → Environment)"
            ),
            Kind::Malformed(why) => {
                let wanted =
                    openeu_env::var(name).map_or_else(|| why.clone(), |v| v.format.describe());
                format!("set {name} to {wanted} in F and run `{PUSH}`")
            }
            Kind::Unknown {
                did_you_mean: Some(guess),
            } => format!("rename it to {guess}: put {guess}=… in F and run `{PUSH} --prune`"),
            Kind::Unknown { did_you_mean: None } => format!(
                "if the service reads {name}, declare it in crates/openeu-env; else remove it with `{PUSH} --prune`"
            ),
            Kind::NotRead => format!(
                "remove {name} from the service (`{PUSH} --prune` with F holding the service's variables only); it belongs to the machine that {}",
                readers_of(name)
            ),
            Kind::Differs { file, .. } => {
                format!("`cargo xtask env push --env-file {}`", file.display())
            }
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match &self.kind {
            Kind::Missing { instead } => {
                let description = openeu_env::var(name).map_or("", |v| v.description);
                write!(f, "{name} is missing on the service: {description}")?;
                if let Some(other) = instead {
                    write!(
                        f,
                        " ({other} is set instead: did you mean {name}? names must match exactly)"
                    )?;
                }
                Ok(())
            }
            Kind::Malformed(why) => write!(f, "{name} on the service is malformed: it {why}"),
            Kind::Unknown {
                did_you_mean: Some(guess),
            } => write!(
                f,
                "{name} is set on the service but is not in the env spec; did you mean {guess}?"
            ),
            Kind::Unknown { did_you_mean: None } => write!(
                f,
                "{name} is set on the service but is not in the env spec (crates/openeu-env)"
            ),
            Kind::NotRead => write!(
                f,
                "{name} is set on the service, but the service does not read it"
            ),
            Kind::Differs {
                file,
                line,
                on_service: true,
            } => write!(
                f,
                "{name} on the service differs from {}:{line}",
                file.display()
            ),
            Kind::Differs {
                file,
                line,
                on_service: false,
            } => write!(
                f,
                "{name} is set in {}:{line} but not on the service",
                file.display()
            ),
        }
    }
}

/// One variable, as a listing shows it.
#[derive(Clone, Debug)]
pub struct Row {
    pub name: String,
    /// ok, unset, missing, malformed, unknown, not-read, differs.
    pub state: &'static str,
    pub secret: bool,
    /// The value as it may be shown ([`shown`]); `None` when unset.
    pub shown: Option<String>,
}

/// The service's variables against the spec (and a file).
#[derive(Clone, Debug)]
pub struct Comparison {
    pub target: Target,
    /// Every variable the service reads, then every other one set on the service, by name.
    pub rows: Vec<Row>,
    pub findings: Vec<Finding>,
}

/// Compares the variables set on a service (`service`: name → value) with the env spec for
/// `target` (the service's reader only) and, when given, with the service's variables of an env
/// file. Deploy's preflight and `deploy --dry-run` call this with the variables of
/// [`crate::xtask_core::render::Api::env_vars`].
pub fn compare(
    target: Target,
    service: &BTreeMap<String, String>,
    file: Option<EnvFile<'_>>,
) -> Comparison {
    let lookup = |name: &str| service.get(name).cloned();
    let mut findings: Vec<Finding> = Vec::new();
    let unknown = openeu_env::unknown(service.keys().map(String::as_str));
    for problem in openeu_env::check(target, Reader::Service, lookup) {
        let kind = match problem.kind {
            ProblemKind::Missing => Kind::Missing {
                instead: unknown
                    .iter()
                    .find(|u| {
                        matches!(u.kind, ProblemKind::Unknown { did_you_mean: Some(g) } if g == problem.name)
                    })
                    .map(|u| u.name.clone()),
            },
            ProblemKind::Malformed(why) => Kind::Malformed(why),
            ProblemKind::Unknown { did_you_mean } => Kind::Unknown { did_you_mean },
        };
        findings.push(Finding {
            name: problem.name,
            kind,
        });
    }
    for problem in unknown {
        if let ProblemKind::Unknown { did_you_mean } = problem.kind {
            findings.push(Finding {
                name: problem.name,
                kind: Kind::Unknown { did_you_mean },
            });
        }
    }
    for name in service.keys() {
        if openeu_env::var(name).is_some_and(|v| !v.readers.contains(&Reader::Service)) {
            findings.push(Finding {
                name: name.clone(),
                kind: Kind::NotRead,
            });
        }
    }
    if let Some(file) = file {
        for entry in file.entries {
            let read =
                openeu_env::var(&entry.key).is_some_and(|v| v.readers.contains(&Reader::Service));
            // The file may hold the deploy machine's variables too: only the service's count.
            if !read || entry.value.trim().is_empty() {
                continue;
            }
            let on_service = service.get(&entry.key);
            if on_service != Some(&entry.value) {
                findings.push(Finding {
                    name: entry.key.clone(),
                    kind: Kind::Differs {
                        file: file.path.to_path_buf(),
                        line: entry.line,
                        on_service: on_service.is_some(),
                    },
                });
            }
        }
    }

    let state_of = |name: &str| {
        findings
            .iter()
            .find(|f| f.name == name)
            .map(|f| match f.kind {
                Kind::Missing { .. } => "missing",
                Kind::Malformed(_) => "malformed",
                Kind::Unknown { .. } => "unknown",
                Kind::NotRead => "not-read",
                Kind::Differs { .. } => "differs",
            })
    };
    let mut rows: Vec<Row> = SPEC
        .iter()
        .filter(|v| v.readers.contains(&Reader::Service))
        .map(|v| {
            let value = service.get(v.name).filter(|x| !x.trim().is_empty());
            Row {
                name: v.name.to_owned(),
                state: state_of(v.name).unwrap_or(if value.is_some() { "ok" } else { "unset" }),
                secret: v.secret,
                shown: value.map(|x| shown(v.name, x)),
            }
        })
        .collect();
    for (name, value) in service {
        if !rows.iter().any(|r| &r.name == name) {
            rows.push(Row {
                name: name.clone(),
                state: state_of(name).unwrap_or("ok"),
                secret: is_secret(name),
                shown: Some(shown(name, value)),
            });
        }
    }
    Comparison {
        target,
        rows,
        findings,
    }
}

impl Comparison {
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// One line per finding, with its fix.
    pub fn lines(&self) -> Vec<String> {
        self.findings.iter().map(Finding::line).collect()
    }

    /// The listing: a line per variable (state, name, shown value), then the findings.
    pub fn render(&self) -> String {
        let mut out = format!("target {}, the service's variables\n", self.target);
        for row in &self.rows {
            let line = format!(
                "{:<9} {:<26} {}",
                row.state,
                row.name,
                row.shown.as_deref().unwrap_or("")
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        for line in self.lines() {
            out.push_str(&format!("problem: {line}\n"));
        }
        out
    }

    pub fn to_json(&self) -> ComparisonJson {
        ComparisonJson {
            ok: self.ok(),
            problems: self
                .findings
                .iter()
                .map(|f| FindingJson {
                    fix: f.fix(),
                    name: f.name.clone(),
                    problem: f.to_string(),
                })
                .collect(),
            target: self.target.name(),
            variables: self
                .rows
                .iter()
                .map(|r| VariableJson {
                    name: r.name.clone(),
                    secret: r.secret,
                    state: r.state,
                    value: r.shown.clone(),
                })
                .collect(),
        }
    }
}

/// `env check --service --json`, and the `env` of deploy's dry-run plan. The fields of these
/// documents are in alphabetical order, the order their keys have always been printed in.
#[derive(Serialize)]
pub struct ComparisonJson {
    ok: bool,
    problems: Vec<FindingJson>,
    target: &'static str,
    variables: Vec<VariableJson>,
}

#[derive(Serialize)]
struct FindingJson {
    fix: String,
    name: String,
    problem: String,
}

/// A variable as `--json` shows it: `value` is null when unset, masked when secret.
#[derive(Serialize)]
pub struct VariableJson {
    pub name: String,
    pub secret: bool,
    pub state: &'static str,
    pub value: Option<String>,
}

/// Secret when the spec says so, and when the spec does not know the name.
pub fn is_secret(name: &str) -> bool {
    openeu_env::var(name).is_none_or(|v| v.secret)
}

/// A secret's stand-in: `***` and its length, nothing derived from its content.
pub fn masked(value: &str) -> String {
    format!("*** ({} chars)", value.chars().count())
}

/// How a value of `name` may be shown: secrets (and unknown names) masked, URLs without their
/// password, other values as they are.
pub fn shown(name: &str, value: &str) -> String {
    match openeu_env::var(name) {
        Some(var) if !var.secret => openeu_env::display_value(var, value),
        _ => masked(value),
    }
}

fn readers_of(name: &str) -> &'static str {
    match openeu_env::var(name).map(|v| v.readers) {
        Some(readers) if readers.contains(&Reader::Deploy) => "deploys (`--reader deploy`)",
        Some(readers) if readers.contains(&Reader::Build) => "builds the image",
        _ => "reads it",
    }
}

/// The service's variables that an env file sets, validated against the spec first: an
/// unknown name or a malformed value is an error naming the file and line and the fix, and
/// nothing has been sent. Names the service does not read (the deploy machine's variables) and
/// empty values are left out, each listed in the second value.
pub fn service_vars_of_file(file: EnvFile<'_>) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut problems = Vec::new();
    let mut vars = BTreeMap::new();
    let mut left_out = Vec::new();
    let at = |line: usize| format!("{}:{line}", file.path.display());
    for entry in file.entries {
        let Some(var) = openeu_env::var(&entry.key) else {
            let guess = openeu_env::unknown([entry.key.as_str()])
                .into_iter()
                .find_map(|p| match p.kind {
                    ProblemKind::Unknown { did_you_mean } => did_you_mean,
                    _ => None,
                });
            problems.push(match guess {
                Some(guess) => format!(
                    "{}: {} is not in the env spec; did you mean {guess}? Rename it",
                    at(entry.line),
                    entry.key
                ),
                None => format!(
                    "{}: {} is not in the env spec (crates/openeu-env); declare it there or remove the line",
                    at(entry.line),
                    entry.key
                ),
            });
            continue;
        };
        if !var.readers.contains(&Reader::Service) {
            left_out.push(format!(
                "{} ({}: not read by the service)",
                entry.key,
                at(entry.line)
            ));
            continue;
        }
        if entry.value.trim().is_empty() {
            left_out.push(format!("{} ({}: empty)", entry.key, at(entry.line)));
            continue;
        }
        if let Err(why) = var.format.check(&entry.value) {
            problems.push(format!(
                "{}: {} is malformed: it {why}; fix the value",
                at(entry.line),
                entry.key
            ));
            continue;
        }
        vars.insert(entry.key.clone(), entry.value.clone());
    }
    if !problems.is_empty() {
        bail!(
            "{} problem(s) in {}; nothing was sent:\n  {}",
            problems.len(),
            file.path.display(),
            problems.join("\n  ")
        );
    }
    Ok((vars, left_out))
}

/// What a push changes.
#[derive(Clone, Debug, Default)]
pub struct Diff {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    /// On the service, not in the file: removed with `--prune`.
    pub removed: Vec<String>,
    /// On the service, not in the file, kept (no `--prune`).
    pub kept: Vec<String>,
    pub unchanged: Vec<String>,
    /// The whole list the service holds afterwards: the body of the one replacing request.
    pub result: BTreeMap<String, String>,
    current: BTreeMap<String, String>,
}

/// The push of `desired` onto a service holding `current`; `prune` removes what `desired`
/// lacks.
pub fn diff(
    current: &BTreeMap<String, String>,
    desired: &BTreeMap<String, String>,
    prune: bool,
) -> Diff {
    let mut d = Diff {
        current: current.clone(),
        ..Diff::default()
    };
    for (name, value) in desired {
        match current.get(name) {
            None => d.added.push(name.clone()),
            Some(old) if old != value => d.changed.push(name.clone()),
            Some(_) => d.unchanged.push(name.clone()),
        }
        d.result.insert(name.clone(), value.clone());
    }
    for (name, value) in current {
        if desired.contains_key(name) {
            continue;
        }
        if prune {
            d.removed.push(name.clone());
        } else {
            d.kept.push(name.clone());
            d.result.insert(name.clone(), value.clone());
        }
    }
    d
}

impl Diff {
    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// `+ NAME = value`, `~ NAME: old → new`, `- NAME`, `  NAME kept`: secrets masked.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for name in &self.added {
            lines.push(format!("+ {name} = {}", shown(name, &self.result[name])));
        }
        for name in &self.changed {
            lines.push(format!(
                "~ {name}: {} → {}",
                shown(name, &self.current[name]),
                shown(name, &self.result[name])
            ));
        }
        for name in &self.removed {
            lines.push(format!("- {name} (removed: --prune)"));
        }
        for name in &self.kept {
            lines.push(format!(
                "  {name} kept: not in the file (--prune would remove it)"
            ));
        }
        lines
    }

    /// The added variables as `--json` shows them (secrets masked).
    pub fn added_json(&self) -> Vec<AddedJson<'_>> {
        self.added
            .iter()
            .map(|n| AddedJson {
                name: n,
                value: shown(n, &self.result[n]),
            })
            .collect()
    }

    /// The changed variables as `--json` shows them (secrets masked).
    pub fn changed_json(&self) -> Vec<ChangedJson<'_>> {
        self.changed
            .iter()
            .map(|n| ChangedJson {
                from: shown(n, &self.current[n]),
                name: n,
                to: shown(n, &self.result[n]),
            })
            .collect()
    }
}

#[derive(Serialize)]
pub struct AddedJson<'a> {
    name: &'a str,
    value: String,
}

#[derive(Serialize)]
pub struct ChangedJson<'a> {
    from: String,
    name: &'a str,
    to: String,
}

#[cfg(test)]
mod tests;
