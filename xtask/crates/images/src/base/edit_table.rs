//! The base-hash edit table (`xtask/test_data/edit-table.toml`): edits of the fixture workspace
//! and whether each must change the base hash. Shared, as this one file, by the `base_hash` test
//! and `cargo lab bench base`, so both always judge the same rows.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Where the table and the fixture live, relative to the repository root.
pub const TABLE: &str = "xtask/test_data/edit-table.toml";
pub const FIXTURE: &str = "xtask/test_data/fixture-ws";

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(deserialize_with = "xtask_core::tables::many")]
    row: Vec<Row>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Row {
    pub name: String,
    /// Whether the base hash must change.
    pub changes: bool,
    #[serde(deserialize_with = "xtask_core::tables::many")]
    pub edits: Vec<Edit>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Edit {
    pub file: String,
    pub append: Option<String>,
    pub replace: Option<[String; 2]>,
    pub write: Option<String>,
}

pub fn load(repo_root: &Path) -> Result<Vec<Row>> {
    let path = repo_root.join(TABLE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: File =
        toml::from_str(&text).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))?;
    Ok(file.row)
}

impl Row {
    pub fn apply(&self, workspace: &Path) -> Result<()> {
        for edit in &self.edits {
            edit.apply(workspace)
                .with_context(|| format!("row `{}`", self.name))?;
        }
        Ok(())
    }
}

impl Edit {
    fn apply(&self, workspace: &Path) -> Result<()> {
        let path = workspace.join(&self.file);
        let text = match (&self.append, &self.replace, &self.write) {
            (Some(tail), None, None) => std::fs::read_to_string(&path)? + tail,
            (None, Some([from, to]), None) => {
                let text = std::fs::read_to_string(&path)?;
                if !text.contains(from.as_str()) {
                    bail!("{} does not contain {from:?}", self.file);
                }
                text.replacen(from.as_str(), to, 1)
            }
            (None, None, Some(content)) => content.clone(),
            _ => bail!(
                "an edit of {} needs exactly one of append, replace, write",
                self.file
            ),
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bad row of the table is named with its line and column in serde's words.
    #[test]
    fn bad_rows_are_named_with_their_place() {
        let parse = |text: &str| toml::from_str::<File>(text).err().unwrap().to_string();
        let cases = [
            (
                "[[row]]\nname = \"a\"\nchanges = true\nedits = []\nwhy = 1\n",
                "line 5, column 1",
                "unknown field `why`, expected one of `name`, `changes`, `edits`",
            ),
            (
                "[[row]]\nname = \"a\"\nedits = []\n",
                "line 1, column 1",
                "missing field `changes`",
            ),
            (
                "[[row]]\nname = \"a\"\nchanges = true\nedits = [{ append = \"x\" }]\n",
                "line 4, column 10",
                "missing field `file`",
            ),
            (
                "[[row]]\nname = \"a\"\nchanges = true\nedits = [{ file = \"f\", replace = [\"a\"] }]\n",
                "line 4, column 34",
                "invalid length 1, expected an array of length 2",
            ),
        ];
        for (text, place, message) in cases {
            let err = parse(text);
            assert!(err.contains(place), "{place} in {err}");
            assert!(err.trim_end().ends_with(message), "{message} in {err}");
        }
        let file: File = toml::from_str(
            "[[row]]\nname = \"a\"\nchanges = true\nedits = [{ file = \"f\", write = \"x\" }]\n",
        )
        .unwrap();
        assert_eq!(
            (
                file.row[0].edits[0].write.as_deref(),
                file.row[0].edits[0].append.as_deref()
            ),
            (Some("x"), None)
        );
    }
}
