//! `cargo xtask env …`: the deployment's environment, checked against the one env spec that the
//! service also validates itself with (crates/openeu-env), and `.env.example` rendered from it.
//!
//! Parts: compare.rs (the service's variables against the spec and an env file: the one
//! comparison that `env check --service`, `env push` and deploy share), service.rs (those two
//! commands, through Render's API).

pub mod compare;
pub mod service;

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result, bail};
use openeu_env::{Problem, ProblemKind, Reader, SPEC, Target};
use serde::Serialize;

use xtask_core::{
    files::{Mode, ensure_file_contents},
    workspace::{self, Workspace},
};

use crate::flags;

impl flags::EnvCommand {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self {
            flags::EnvCommand::Check(args) => args.run(ws),
            flags::EnvCommand::Example(args) => args.run(ws),
            flags::EnvCommand::Push(args) => args.run(ws),
        }
    }
}

/// Parses an env file into its variables; see `parse_env_entries` for the dialect.
pub fn parse_env_file(text: &str, file: &Path) -> Result<BTreeMap<String, String>> {
    Ok(parse_env_entries(text.as_bytes(), file)?
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect())
}

/// One `KEY=VALUE` of an env file, with the line it starts on.
#[derive(Debug, PartialEq, Eq)]
pub struct EnvEntry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Parses an env file in the common dotenv dialect (the one docker compose's `env_file`,
/// python-dotenv and the Node/Ruby dotenv libraries share), without variable interpolation:
///
/// - UTF-8, with or without a byte order mark; `\n` or `\r\n` line ends;
/// - blank lines and lines starting with `#` are ignored; `export` and a space or tab before a
///   name are ignored;
/// - `NAME=VALUE`, spaces around `=` allowed; a name is ASCII letters, digits and `_`, not
///   starting with a digit; a name set twice is refused, naming both lines;
/// - an unquoted value ends at the line's end or at ` #` (a comment), trailing blanks trimmed;
/// - `'…'` is literal; `"…"` knows `\n`, `\r`, `\t`, `\"` and `\\`; both may span lines; only
///   blanks or a `# comment` may follow the closing quote;
/// - `$` is literal: `${VAR}` is not expanded (compose would expand it).
///
/// No error ever shows a value, nor text that may be one: a line that cannot be parsed is named
/// by its number (and its name when it has a valid one); an unknown name is not shown when it
/// may be the wrapped tail of a secret on the line before.
pub fn parse_env_entries(bytes: &[u8], file: &Path) -> Result<Vec<EnvEntry>> {
    let file = file.display();
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|err| not_utf8(bytes, &err, &file))?;
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut entries: Vec<EnvEntry> = Vec::new();
    // A secret's unquoted value on the line just before: the next line may be its wrapped tail.
    let mut after_secret: Option<(String, usize)> = None;
    let mut i = 0;
    while i < lines.len() {
        let n = i + 1;
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            after_secret = None;
            continue;
        }
        let wrapped = |what: &str| match &after_secret {
            Some((secret, at)) => format!(
                "{what}, right after the value of {secret} (line {at}), a secret: if it is the rest of that value, put the value on one line or in double quotes (which may span lines); the line is not shown"
            ),
            None => format!("{what}; the line is not shown, it may hold a value"),
        };
        let line = export_stripped(line);
        let Some((key, rest)) = line.split_once('=') else {
            bail!("{file}:{n}: {}", wrapped("expected KEY=VALUE"));
        };
        let key = key.trim_end();
        if let Some((position, ch)) = key.chars().enumerate().find(|(_, c)| !c.is_ascii()) {
            let ascii: String = key
                .chars()
                .map(|c| if c.is_ascii() { c } else { '?' })
                .collect();
            let near = openeu_env::unknown([ascii.as_str()])
                .into_iter()
                .find_map(|p| match p.kind {
                    ProblemKind::Unknown { did_you_mean } => did_you_mean,
                    _ => None,
                })
                .map(|guess| format!("; did you mean {guess}?"))
                .unwrap_or_default();
            bail!(
                "{file}:{n}: the name has a non-ASCII character, U+{:04X} ({ch}), at character {}: a look-alike of an ASCII letter?{near}",
                u32::from(ch),
                position + 1
            );
        }
        if !is_name(key) {
            bail!(
                "{file}:{n}: {}",
                wrapped("the text before `=` is not a variable name (ASCII letters, digits, _)")
            );
        }
        if openeu_env::var(key).is_none() {
            // A near miss of a spec name is a typo, shown as one later; anything else right
            // after a secret may be the secret's wrapped tail.
            let near = openeu_env::unknown([key])
                .into_iter()
                .find_map(|p| match p.kind {
                    ProblemKind::Unknown { did_you_mean } => did_you_mean,
                    _ => None,
                });
            let upper = key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if after_secret.is_some() && (near.is_none() || !upper) {
                bail!(
                    "{file}:{n}: {}",
                    wrapped("a name the env spec does not know")
                );
            }
            if !upper {
                let near = near
                    .map(|guess| format!(" (did you mean {guess}?)"))
                    .unwrap_or_default();
                bail!(
                    "{file}:{n}: an unknown name that is not UPPER_CASE{near}; it is not shown, it may be part of a value"
                );
            }
        }
        let rest = rest.trim_start();
        let (value, quoted) = match rest.chars().next() {
            Some(quote @ ('"' | '\'')) => (
                quoted_value(&rest[1..], quote, &lines, &mut i, &file, n, key)?,
                true,
            ),
            _ => {
                let end = rest
                    .char_indices()
                    .find(|&(p, c)| c == '#' && rest[..p].ends_with([' ', '\t']))
                    .map_or(rest.len(), |(p, _)| p);
                (rest[..end].trim_end().to_owned(), false)
            }
        };
        if let Some(first) = entries.iter().find(|e| e.key == key) {
            bail!(
                "{file}:{n}: {key} is set twice, on lines {} and {n}; keep one",
                first.line
            );
        }
        after_secret = (!quoted && openeu_env::var(key).is_some_and(|v| v.secret))
            .then(|| (key.to_owned(), n));
        entries.push(EnvEntry {
            key: key.to_owned(),
            value,
            line: n,
        });
    }
    Ok(entries)
}

/// The error for an env file that is not UTF-8: its line and byte, and the variable whose value
/// holds the byte when there is one, never the text.
fn not_utf8(
    bytes: &[u8],
    err: &std::str::Utf8Error,
    file: &impl std::fmt::Display,
) -> anyhow::Error {
    let at = err.valid_up_to();
    let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = bytes[..at]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    // The name, when the bad byte is in a value after a valid one.
    let head = String::from_utf8_lossy(&bytes[line_start..at]);
    let head = head.trim_start();
    let head = export_stripped(head);
    let name = head
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| is_name(k))
        .map(|k| format!(" in the value of {k}"))
        .unwrap_or_default();
    anyhow::anyhow!(
        "{file}:{line}: byte 0x{:02X}{name} (byte {} of the line) is not UTF-8 (Latin-1?); save the file as UTF-8",
        bytes[at],
        at - line_start + 1
    )
}

/// A quoted value from just after its opening `quote`, which may span lines (`i` moves past
/// them): the text up to the closing quote, after which only a `# comment` may follow.
fn quoted_value(
    first: &str,
    quote: char,
    lines: &[&str],
    i: &mut usize,
    file: &impl std::fmt::Display,
    n: usize,
    key: &str,
) -> Result<String> {
    let mut value = String::new();
    let mut current = first;
    let after = loop {
        match closing(current, quote, &mut value) {
            Some(after) => break after,
            None if *i < lines.len() => {
                value.push('\n');
                current = lines[*i];
                *i += 1;
            }
            None => bail!(
                "{file}:{n}: {key}: the {} quote opened here is never closed",
                if quote == '"' { "double" } else { "single" }
            ),
        }
    };
    let after = after.trim();
    if !(after.is_empty() || after.starts_with('#')) {
        bail!(
            "{file}:{}: {key}: text after the closing quote (only a `# comment` may follow)",
            *i
        );
    }
    Ok(value)
}

/// `export NAME=…` (with a space or a tab) is `NAME=…`.
fn export_stripped(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    }
}

fn is_name(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Appends the quoted text of `text` up to its closing `quote` to `value`; returns what follows
/// the closing quote, or None when the line ends first. Double quotes know a few escapes.
fn closing<'t>(text: &'t str, quote: char, value: &mut String) -> Option<&'t str> {
    let mut chars = text.char_indices();
    while let Some((p, c)) = chars.next() {
        if c == quote {
            return Some(&text[p + 1..]);
        }
        if c == '\\'
            && quote == '"'
            && let Some((_, e @ ('n' | 'r' | 't' | '"' | '\\'))) = chars.clone().next()
        {
            chars.next();
            value.push(match e {
                'n' => '\n',
                'r' => '\r',
                't' => '\t',
                other => other,
            });
            continue;
        }
        value.push(c);
    }
    None
}

impl flags::EnvCheck {
    fn run(self, ws: &Workspace) -> Result<()> {
        if self.service {
            return service::check(ws, &self);
        }
        let file_vars = match &self.env_file {
            Some(path) => {
                let bytes =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                Some(parse_env_entries(&bytes, path)?)
            }
            None => None,
        };
        // Where each variable of the file is, for the problem list: a name and a line number,
        // never a value.
        let at = |name: &str| match (&self.env_file, &file_vars) {
            (Some(path), Some(entries)) => entries
                .iter()
                .find(|e| e.key == name)
                .map(|e| format!(" ({}:{})", path.display(), e.line))
                .unwrap_or_default(),
            _ => String::new(),
        };
        let file_vars: Option<BTreeMap<String, String>> = file_vars.as_ref().map(|entries| {
            entries
                .iter()
                .map(|e| (e.key.clone(), e.value.clone()))
                .collect()
        });
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
            let value = CheckJson {
                ok: problems.is_empty(),
                problems: problems.iter().map(ToString::to_string).collect(),
                readers: readers.iter().map(|r| reader_name(*r)).collect(),
                target: target.name(),
                variables: rows
                    .iter()
                    .map(|(var, state, shown)| compare::VariableJson {
                        name: var.name.to_owned(),
                        secret: var.secret,
                        state,
                        value: shown.clone(),
                    })
                    .collect(),
            };
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
            let list: Vec<String> = problems
                .iter()
                .map(|p| format!("  {p}{}", at(&p.name)))
                .collect();
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

/// `env check --json`. The fields are in alphabetical order, the order the keys have always
/// been printed in.
#[derive(Serialize)]
struct CheckJson {
    ok: bool,
    problems: Vec<String>,
    readers: Vec<&'static str>,
    target: &'static str,
    variables: Vec<compare::VariableJson>,
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
        assert_eq!(
            err.to_string(),
            ".env:2: expected KEY=VALUE; the line is not shown, it may hold a value"
        );
    }

    fn parse(text: &[u8]) -> Result<Vec<(String, String)>, String> {
        parse_env_entries(text, Path::new("app.env"))
            .map(|entries| entries.into_iter().map(|e| (e.key, e.value)).collect())
            .map_err(|e| e.to_string())
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_dotenv_dialect() {
        assert_eq!(
            parse(b"\xEF\xBB\xBFPORT=1\r\nexport\tENVIRONMENT=local\nexport  RENDER = true # on Render\n"),
            Ok(pairs(&[("PORT", "1"), ("ENVIRONMENT", "local"), ("RENDER", "true")]))
        );
        assert_eq!(
            parse(
                b"A='x # \\n $B'\nB=\"l1\\nl2 \\\"q\\\" \\\\ \\d\"\nC=\"two\nlines\" # c\nD=a#b\n"
            ),
            Ok(pairs(&[
                ("A", "x # \\n $B"),
                ("B", "l1\nl2 \"q\" \\ \\d"),
                ("C", "two\nlines"),
                ("D", "a#b"),
            ]))
        );
        assert_eq!(parse(b"A=\nB=''\n"), Ok(pairs(&[("A", ""), ("B", "")])));
        // A typo of a spec name right after a secret is a typo, reported later as unknown.
        assert_eq!(
            parse(b"SUPABASE_JWT_SECRET=x\nSUPABASE_PROJECT_UR=https://x\n"),
            Ok(pairs(&[
                ("SUPABASE_JWT_SECRET", "x"),
                ("SUPABASE_PROJECT_UR", "https://x")
            ]))
        );
    }

    #[test]
    fn refusals_name_the_line_and_never_a_value() {
        let secret = "s3cr3tTAIL";
        for (text, expected) in [
            // A secret wrapped onto a second line.
            (
                format!("PORT=1\nSUPABASE_JWT_SECRET=abc\n{secret}\n"),
                "app.env:3: expected KEY=VALUE, right after the value of SUPABASE_JWT_SECRET (line 2)",
            ),
            // A continuation line that looks like a name (base64 ends in `=`).
            (
                format!("SUPABASE_JWT_SECRET=abc\n{secret}=\n"),
                "app.env:2: a name the env spec does not know, right after the value of SUPABASE_JWT_SECRET (line 1)",
            ),
            (
                format!("SUPABASE_JWT_SECRET=\"abc\n{secret}\n"),
                "app.env:1: SUPABASE_JWT_SECRET: the double quote opened here is never closed",
            ),
            (
                format!("SUPABASE_JWT_SECRET=\"abc\"{secret}\n"),
                "app.env:1: SUPABASE_JWT_SECRET: text after the closing quote",
            ),
            (
                format!("a {secret}=1\n"),
                "app.env:1: the text before `=` is not a variable name",
            ),
            (
                format!("{}=1\n", secret.to_lowercase()),
                "app.env:1: an unknown name that is not UPPER_CASE",
            ),
            (
                "PORT=1\nRENDER=true\nPORT=2\n".to_owned(),
                "app.env:3: PORT is set twice, on lines 1 and 3; keep one",
            ),
            (
                "SUPABASE_JWT_S\u{415}CRET=x\n".to_owned(),
                "app.env:1: the name has a non-ASCII character, U+0415 (\u{415}), at character 15: a look-alike of an ASCII letter?; did you mean SUPABASE_JWT_SECRET?",
            ),
        ] {
            let err = parse(text.as_bytes()).unwrap_err();
            assert!(err.starts_with(expected), "{text:?}:\n{err}");
            assert!(
                !err.contains(secret) && !err.contains(&secret.to_lowercase()),
                "{err}"
            );
        }
        let err = parse(b"PORT=1\nSUPABASE_JWT_SECRET=caf\xE9-s3cr3t\n").unwrap_err();
        assert_eq!(
            err,
            "app.env:2: byte 0xE9 in the value of SUPABASE_JWT_SECRET (byte 24 of the line) is not UTF-8 (Latin-1?); save the file as UTF-8"
        );
    }
}
