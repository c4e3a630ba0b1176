//! SQL files read as statements, as the Supabase CLI splits them: at top-level semicolons,
//! never inside a quoted string or identifier, a dollar-quoted body, a comment, or a
//! `BEGIN ATOMIC … END` function body. Two readers use it: `db push` writes each migration's
//! statements into its history row, and every command that applies migrations or seed files
//! (`db push`, `db reset`, the seed's schema reader, deploy's preflight check) first refuses
//! transaction control at the top level of a file.
//!
//! Why refuse: each file runs in one transaction (`psql --single-transaction`, or the
//! preflight's `begin … rollback`). A top-level `COMMIT` ends that transaction early: what came
//! before it is committed on its own, the rest runs in autocommit, and a later error leaves a
//! half-applied file with no history row, which the next push runs again. The preflight check
//! would even commit for real. The Supabase CLI 2.117 half-applies the same file (it commits
//! the statements before and after the `COMMIT` and records no history). So a file with
//! transaction control is refused before anything runs, with its line and the fix.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// One statement: its text without the semicolon (leading comments kept, as the CLI keeps
/// them), the 1-based line its code starts on, and that code without the leading comments.
#[derive(Debug, PartialEq, Eq)]
pub struct Statement {
    pub text: String,
    pub line: usize,
    code: String,
}

/// The statements of `sql`; empty ones (and a trailing run of comments) are dropped.
pub fn split(sql: &str) -> Vec<Statement> {
    let bytes = sql.as_bytes();
    let mut statements = Vec::new();
    let mut start = 0;
    let mut i = 0;
    // Words outside quotes and comments, lower-cased, of the statement so far: to find
    // `BEGIN ATOMIC` and the `END` that closes it (`CASE … END` nests inside).
    let mut atomic_depth = 0usize;
    let mut previous_word = String::new();
    while i < bytes.len() {
        match bytes[i] {
            b'\'' | b'"' => i = skip_quoted(bytes, i),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => i = skip_block_comment(bytes, i),
            b'$' => i = skip_dollar_quoted(sql, i),
            b';' if atomic_depth == 0 => {
                push(&mut statements, sql, start, i);
                i += 1;
                start = i;
                previous_word.clear();
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let end = bytes[i..]
                    .iter()
                    .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'$'))
                    .map_or(bytes.len(), |p| i + p);
                let word = sql[i..end].to_ascii_lowercase();
                match word.as_str() {
                    "atomic" if previous_word == "begin" => atomic_depth += 1,
                    "case" if atomic_depth > 0 => atomic_depth += 1,
                    "end" if atomic_depth > 0 => atomic_depth -= 1,
                    _ => {}
                }
                previous_word = word;
                i = end;
            }
            _ => i += 1,
        }
    }
    push(&mut statements, sql, start, sql.len());
    statements
}

fn push(statements: &mut Vec<Statement>, sql: &str, start: usize, end: usize) {
    let raw = &sql[start.min(sql.len())..end];
    let text = raw.trim();
    if text.is_empty() || only_comments(text) {
        return;
    }
    let code = code_start(raw);
    let line = 1 + sql[..start + code].matches('\n').count();
    statements.push(Statement {
        text: text.to_owned(),
        line,
        code: raw[code..].trim().to_owned(),
    });
}

/// The offset in `raw` of its first character that is neither white space nor a comment.
fn code_start(raw: &str) -> usize {
    let bytes = raw.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i..].starts_with(b"--") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if bytes[i..].starts_with(b"/*") {
            i = skip_block_comment(bytes, i);
        } else {
            return i;
        }
    }
}

/// The index after the closing quote of the string or identifier opening at `i` (a doubled
/// quote stays inside).
fn skip_quoted(bytes: &[u8], mut i: usize) -> usize {
    let quote = bytes[i];
    i += 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            break;
        }
        i += 1;
    }
    i + 1
}

/// The index after the (nested) block comment opening at `i`.
fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if bytes[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                break;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// The index after the dollar-quoted body opening at `i` (`$$` or `$tag$`), or after the `$`
/// when it opens none (a parameter such as `$1`).
fn skip_dollar_quoted(sql: &str, i: usize) -> usize {
    let bytes = sql.as_bytes();
    let tag_end = bytes[i + 1..]
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .map(|p| i + 1 + p);
    match tag_end {
        Some(end)
            if bytes[end] == b'$' && !bytes[i + 1..end].first().is_some_and(u8::is_ascii_digit) =>
        {
            let tag = &sql[i..=end];
            sql[end + 1..]
                .find(tag)
                .map_or(bytes.len(), |p| end + 1 + p + tag.len())
        }
        _ => i + 1,
    }
}

fn only_comments(text: &str) -> bool {
    text.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with("--"))
}

/// The statement's transaction control verb (`COMMIT`, `START TRANSACTION` …) when it is one.
fn transaction_control(statement: &str) -> Option<String> {
    let mut words = statement
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase);
    let first = words.next()?;
    let verb = match first.as_str() {
        "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE" => first,
        "START" | "PREPARE" if words.next().as_deref() == Some("TRANSACTION") => {
            format!("{first} TRANSACTION")
        }
        _ => return None,
    };
    Some(verb)
}

/// Refuses a file that controls transactions at its top level, naming each such statement's
/// line and the fix. Comments, strings and function bodies do not count.
pub fn refuse_transaction_control(path: &Path, sql: &str) -> Result<()> {
    let found: Vec<String> = split(sql)
        .iter()
        .filter_map(|s| {
            transaction_control(&s.code)
                .map(|verb| format!("{}:{}: `{verb}`", path.display(), s.line))
        })
        .collect();
    if found.is_empty() {
        return Ok(());
    }
    bail!(
        "{} controls transactions at its top level, which is refused before anything runs (nothing was applied):\n  {}\neach file runs in one transaction, and a COMMIT inside it would commit the part before it on its own and leave the rest half-applied with no history row (the Supabase CLI does the same); remove the statement, or split the file at that line into two migrations (`cargo xtask migration new NAME` makes the second); `create index concurrently` cannot run inside a migration's transaction: use `create index`",
        path.display(),
        found.join("\n  ")
    )
}

/// `refuse_transaction_control` for each file, read from disk.
pub fn refuse_transaction_control_in<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    for path in paths {
        let sql =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        refuse_transaction_control(path, &sql)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(sql: &str) -> Vec<String> {
        split(sql).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn statements_split_like_the_cli_with_their_lines() {
        let sql = "create table a (t text default 'x;y');\n-- c;\n/* a /* nested; */ */\ncreate function f() returns int as $body$ select 1; $body$ language sql;\n\n  insert into a values ($$;$$)\n-- trailing comment";
        let got = split(sql);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].line, 1);
        // The comments before a statement stay in its text; its line is where its code starts.
        assert!(got[1].text.starts_with("-- c;\n/* a"), "{got:?}");
        assert_eq!(got[1].line, 4);
        assert!(got[2].text.starts_with("insert into a values ($$;$$)"));
        assert_eq!(got[2].line, 6);
    }

    #[test]
    fn a_begin_atomic_body_is_one_statement() {
        let sql = "create function f(x int) returns int language sql\nbegin atomic\n  select case when x > 0 then 1 else 0 end;\n  select 2;\nend;\ncommit;";
        let got = texts(sql);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got[0].ends_with("end"), "{got:?}");
        assert_eq!(got[1], "commit");
    }

    #[test]
    fn transaction_control_is_found_at_the_top_level_only() {
        let path = Path::new("supabase/migrations/20990101000000_txn.sql");
        let sql = "create table a (i int);\nCOMMIT;\ncreate table b (i int);\nselect 1/0;";
        let err = refuse_transaction_control(path, sql)
            .unwrap_err()
            .to_string();
        assert!(err.contains("20990101000000_txn.sql:2: `COMMIT`"), "{err}");
        assert!(err.contains("nothing was applied"), "{err}");
        let err = refuse_transaction_control(path, "select 1;\n-- now:\n/* x */ commit;")
            .unwrap_err()
            .to_string();
        assert!(err.contains("_txn.sql:3: `COMMIT`"), "{err}");
        for verb in [
            "begin",
            "Begin Transaction",
            "end",
            "rollback",
            "abort",
            "savepoint s",
            "release savepoint s",
            "start transaction isolation level serializable",
            "prepare transaction 'x'",
        ] {
            assert!(
                refuse_transaction_control(path, &format!("select 1;\n{verb};")).is_err(),
                "{verb}"
            );
        }
        // Inside function bodies, strings and comments, and in other statements' words.
        for fine in [
            "create function f() returns void language plpgsql as $$ begin commit; end $$;",
            "select 'commit;';\n-- commit;\n/* rollback; */",
            "create function g() returns int language sql begin atomic select 1; end;",
            "alter table a add column committed boolean;\nselect begin_at from a;",
            "create index concurrently_named on a (i);",
        ] {
            refuse_transaction_control(path, fine).unwrap_or_else(|e| panic!("{fine}: {e}"));
        }
    }
}
