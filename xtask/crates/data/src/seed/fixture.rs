//! Fixture rows as the renderer sees them: typed values before they meet their columns, where
//! each row came from, and the TOML fixture reader. CSV fixtures are read by `csv.rs`.

use std::{
    borrow::Cow,
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context, Result};

/// A fixture value before it meets its column's type.
#[derive(Debug, Clone)]
pub(super) enum Value<'a> {
    Null,
    /// Text; borrowed from the fixture file where it can be (CSV fields), so a million rows
    /// are not a million allocations.
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A TOML date or date-time, in RFC 3339 text.
    Datetime {
        text: String,
        has_offset: bool,
        has_time: bool,
    },
    Array(Vec<Value<'a>>),
    /// A TOML table, for json columns.
    Json(serde_json::Value),
}

/// Where a row came from: "meetings.toml row 3" or "big.csv line 10". Formatted only for
/// messages; a million rows must not cost a million strings.
#[derive(Clone)]
pub(super) struct Loc {
    pub(super) file: Arc<str>,
    pub(super) unit: Unit,
    pub(super) n: usize,
}

/// What `Loc::n` counts: TOML rows (`[[row]]` tables, with the line of their header when it is
/// known) or CSV lines.
#[derive(Clone, Copy)]
pub(super) enum Unit {
    Row { line: Option<usize> },
    Line,
}

impl std::fmt::Display for Loc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.unit {
            Unit::Row { line: Some(line) } => {
                write!(f, "{} row {} (line {line})", self.file, self.n)
            }
            Unit::Row { line: None } => write!(f, "{} row {}", self.file, self.n),
            Unit::Line => write!(f, "{} line {}", self.file, self.n),
        }
    }
}

/// One fixture row and where it came from. Column names are shared, not copied per row.
pub(super) struct Row<'a> {
    pub(super) at: Loc,
    pub(super) values: Fields<'a>,
}

/// Column names shared by the rows of one file.
pub(super) type Names = Arc<Vec<Arc<str>>>;

/// A row's columns. The names live once per file and are shared by its rows; each row holds
/// its values in that order, so a million rows neither copy nor count a million names.
pub(super) struct Fields<'a> {
    pub(super) names: Names,
    pub(super) values: Vec<Value<'a>>,
}

impl<'a> Fields<'a> {
    pub(super) fn get(&self, name: &str) -> Option<&Value<'a>> {
        let position = self.names.iter().position(|n| &**n == name)?;
        self.values.get(position)
    }
}

/// The rows of a TOML fixture; None when the file has no `row` key at all (an empty file, or
/// only comments), which the caller refuses unless the table is declared empty. `row = []`
/// says "no rows" on purpose.
pub(super) fn load_toml(file: &Path) -> Result<Option<Vec<Row<'static>>>> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Fixture {
        row: Option<Vec<toml::Table>>,
    }
    let text = read_utf8(file)?;
    let fixture: Fixture = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().trim_end()))?;
    let Some(tables) = fixture.row else {
        return Ok(None);
    };
    let name = file_name(file);
    let headers = row_header_lines(&text);
    // Only trusted when every row was found (a `[[row]]` inside a multi-line string would
    // shift them).
    let headers = (headers.len() == tables.len()).then_some(headers);
    let mut rows = Vec::new();
    for (i, table) in tables.into_iter().enumerate() {
        let at = Loc {
            file: Arc::clone(&name),
            unit: Unit::Row {
                line: headers.as_ref().map(|h| h[i]),
            },
            n: i + 1,
        };
        let mut names = Vec::with_capacity(table.len());
        let mut values = Vec::with_capacity(table.len());
        for (key, value) in table {
            values.push(
                from_toml(value).map_err(|why| anyhow::anyhow!("{at}, column {key}: {why}"))?,
            );
            names.push(Arc::from(key.as_str()));
        }
        rows.push(Row {
            at,
            values: Fields {
                names: Arc::new(names),
                values,
            },
        });
    }
    Ok(Some(rows))
}

/// A fixture's text; invalid UTF-8 is located by line and byte offset.
pub(super) fn read_utf8(file: &Path) -> Result<String> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    String::from_utf8(bytes).map_err(|err| {
        let bytes = err.as_bytes();
        let at = err.utf8_error().valid_up_to();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = bytes[..at]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |p| p + 1);
        anyhow::anyhow!(
            "{}: line {line}, byte offset {at} (byte {} of the line): 0x{:02X} is not UTF-8 (Latin-1?); save the file as UTF-8",
            file.display(),
            at - line_start + 1,
            bytes[at]
        )
    })
}

/// The fixture file of a manifest entry, refused unless it is a file inside `dir`: no absolute
/// path, no `..`, no symbolic link that leads out (its target is never read, so no content of
/// another file can reach an error message or seed.sql).
pub(super) fn contained(dir: &Path, file: &str, entry: &str, manifest: &Path) -> Result<PathBuf> {
    let refuse = |why: &str| {
        anyhow::anyhow!(
            "{}: table `{entry}`: fixture {file:?} {why}; a fixture must be a file inside supabase/seed/",
            manifest.display()
        )
    };
    let relative = Path::new(file);
    if file.is_empty()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(refuse("is not a plain relative path"));
    }
    let path = dir.join(relative);
    let (Ok(real_dir), Ok(real)) = (dir.canonicalize(), path.canonicalize()) else {
        // A dangling link, or no file: say it is missing (reading it would say the same).
        if path.symlink_metadata().is_ok() && path.metadata().is_err() {
            return Err(refuse("is a symbolic link to nothing"));
        }
        return Err(refuse("does not exist"));
    };
    if !real.starts_with(&real_dir) {
        return Err(refuse(
            "leads outside supabase/seed/ (through a symbolic link); it was not read",
        ));
    }
    if !real.is_file() {
        return Err(refuse("is not a regular file"));
    }
    Ok(path)
}

/// The 1-based line of each `[[row]]` header, in order, so errors can point an editor at the
/// row and not only count rows.
fn row_header_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let compact: String = line
                .split('#')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            compact == "[[row]]"
        })
        .map(|(i, _)| i + 1)
        .collect()
}

pub(super) fn file_name(file: &Path) -> Arc<str> {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .into()
}

pub(super) fn from_toml(value: toml::Value) -> Result<Value<'static>, String> {
    Ok(match value {
        toml::Value::String(s) => Value::Str(Cow::Owned(s)),
        toml::Value::Integer(n) => Value::Int(n),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::Datetime {
            text: d.to_string(),
            has_offset: d.offset.is_some(),
            has_time: d.time.is_some(),
        },
        toml::Value::Array(items) => {
            Value::Array(items.into_iter().map(from_toml).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(t) => Value::Json(serde_json::to_value(t).map_err(|e| e.to_string())?),
    })
}
