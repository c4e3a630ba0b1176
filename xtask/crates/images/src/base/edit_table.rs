//! The base-hash edit table (`xtask/test_data/edit-table.toml`): edits of the fixture workspace
//! and whether each must change the base hash. Shared, as this one file, by the `base_hash` test
//! and `cargo lab bench base`, so both always judge the same rows.

use std::path::Path;

use anyhow::{Context, Result, bail};

/// Where the table and the fixture live, relative to the repository root.
pub const TABLE: &str = "xtask/test_data/edit-table.toml";
pub const FIXTURE: &str = "xtask/test_data/fixture-ws";

#[derive(Default)]
struct File {
    row: Vec<Row>,
}

#[derive(Debug, Default)]
pub struct Row {
    pub name: String,
    /// Whether the base hash must change.
    pub changes: bool,
    pub edits: Vec<Edit>,
}

#[derive(Debug, Default)]
pub struct Edit {
    pub file: String,
    pub append: Option<String>,
    pub replace: Option<[String; 2]>,
    pub write: Option<String>,
}

xtask_core::table!(File, deny_unknown: true, required: ["row"], { "row" => row });
xtask_core::table!(Row, deny_unknown: true, required: ["name", "changes", "edits"], {
    "name" => name,
    "changes" => changes,
    "edits" => edits,
});
xtask_core::table!(Edit, deny_unknown: true, required: ["file"], {
    "file" => file,
    "append" => append,
    "replace" => replace,
    "write" => write,
});

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
