//! `cargo xtask env …`: the deployment's environment, checked against the one env spec that the
//! service also validates itself with (crates/openeu-env), and `.env.example` rendered from it.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use openeu_env::{Problem, ProblemKind, Reader, SPEC, Target};
use serde_json::json;

use crate::{
    files::{Mode, ensure_file_contents},
    flags,
    workspace::{self, Workspace},
};

impl flags::EnvCommand {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self {
            flags::EnvCommand::Check(args) => args.run(),
            flags::EnvCommand::Example(args) => args.run(ws),
        }
    }
}

/// Parses an env file: `KEY=VALUE` lines, `#` comments, optional `export `, optional quotes.
pub fn parse_env_file(text: &str, file: &std::path::Path) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            bail!("{}:{}: expected KEY=VALUE", file.display(), i + 1);
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            bail!(
                "{}:{}: `{key}` is not a variable name",
                file.display(),
                i + 1
            );
        }
        let value = value.trim();
        let value = match (value.chars().next(), value.chars().last()) {
            (Some(q @ ('"' | '\'')), Some(e)) if value.len() >= 2 && q == e => {
                &value[1..value.len() - 1]
            }
            _ => value,
        };
        vars.insert(key.to_owned(), value.to_owned());
    }
    Ok(vars)
}

impl flags::EnvCheck {
    fn run(self) -> Result<()> {
        let file_vars = match &self.env_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Some(parse_env_file(&text, path)?)
            }
            None => None,
        };
        let lookup = |name: &str| match &file_vars {
            Some(vars) => vars.get(name).cloned(),
            None => std::env::var(name).ok(),
        };
        let target = match self.target {
            Some(target) => target.into(),
            None => Target::derive(lookup),
        };
        let readers = self.readers(target);
        let mut problems: Vec<Problem> = Vec::new();
        for &reader in &readers {
            for problem in openeu_env::check(target, reader, lookup) {
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
        if let Some(vars) = &file_vars {
            problems.extend(openeu_env::unknown(vars.keys().map(String::as_str)));
        }

        let rows: Vec<_> = SPEC
            .iter()
            .filter(|var| var.readers.iter().any(|r| readers.contains(r)))
            .map(|var| {
                let value = lookup(var.name).filter(|v| !v.trim().is_empty());
                let problem = problems.iter().find(|p| p.name == var.name);
                let state = match (problem.map(|p| &p.kind), &value) {
                    (Some(ProblemKind::Missing), _) => "missing",
                    (Some(_), _) => "malformed",
                    (None, Some(_)) => "ok",
                    (None, None) => "unset",
                };
                let shown = value.as_deref().map(|v| openeu_env::display_value(var, v));
                (var, state, shown)
            })
            .collect();
        if self.json {
            let value = json!({
                "target": target.name(),
                "readers": readers.iter().map(|r| reader_name(*r)).collect::<Vec<_>>(),
                "ok": problems.is_empty(),
                "variables": rows.iter().map(|(var, state, shown)| json!({
                    "name": var.name, "state": state, "secret": var.secret, "value": shown,
                })).collect::<Vec<_>>(),
                "problems": problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            });
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            let names: Vec<&str> = readers.iter().map(|r| reader_name(*r)).collect();
            println!("target {target}, reader {}", names.join(", "));
            for (var, state, shown) in &rows {
                let line = format!(
                    "{state:<9} {:<26} {}",
                    var.name,
                    shown.as_deref().unwrap_or("")
                );
                println!("{}", line.trim_end());
            }
            for problem in problems
                .iter()
                .filter(|p| matches!(p.kind, ProblemKind::Unknown { .. }))
            {
                println!("unknown   {problem}");
            }
        }
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
            let names: Vec<&str> = readers.iter().map(|r| reader_name(*r)).collect();
            bail!(
                "{} problem(s) for target {target}, reader {}:\n{}",
                problems.len(),
                names.join(", "),
                list.join("\n")
            );
        }
        Ok(())
    }

    /// The readers to check: those given, else the target's default. A deployed target's
    /// default is the service alone, because that is what its environment holds (Render's
    /// service settings); the build and deploy variables live in CI and on the machine that
    /// deploys, and are checked with `--reader build` / `--reader deploy` there.
    fn readers(&self, target: Target) -> Vec<Reader> {
        if !self.readers.is_empty() {
            let mut readers: Vec<Reader> = Vec::new();
            for reader in self.readers.iter().map(|&r| Reader::from(r)) {
                if !readers.contains(&reader) {
                    readers.push(reader);
                }
            }
            return readers;
        }
        match target {
            Target::Production | Target::Preview => vec![Reader::Service],
            Target::Local => vec![Reader::Service, Reader::Build, Reader::Deploy],
        }
    }
}

fn reader_name(reader: Reader) -> &'static str {
    match reader {
        Reader::Service => "service",
        Reader::Build => "build",
        Reader::Deploy => "deploy",
    }
}

impl flags::EnvExample {
    fn run(self, ws: &Workspace) -> Result<()> {
        ensure_file_contents(
            &ws.root,
            workspace::ENV_EXAMPLE,
            &openeu_env::render_example(),
            Mode::from_check(self.check),
            "cargo xtask env example",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_lines() {
        let vars = parse_env_file(
            "# c\nexport A=1\nB = \"two words\"\nC=''\n",
            std::path::Path::new("f"),
        )
        .unwrap();
        assert_eq!(vars["A"], "1");
        assert_eq!(vars["B"], "two words");
        assert_eq!(vars["C"], "");
        let err = parse_env_file("A=1\noops\n", std::path::Path::new(".env")).unwrap_err();
        assert_eq!(err.to_string(), ".env:2: expected KEY=VALUE");
    }
}
