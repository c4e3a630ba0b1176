//! Where things are: the workspace root and every repository path that more than one task
//! names. Nobody else spells these file names.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use xshell::Shell;

use crate::config::Config;

pub const ROOT_MANIFEST: &str = "Cargo.toml";
pub const LOCKFILE: &str = "Cargo.lock";
pub const TOOLCHAIN_FILE: &str = "rust-toolchain.toml";
pub const CARGO_CONFIG_FILES: [&str; 2] = [".cargo/config", ".cargo/config.toml"];
pub const BASE_DOCKERFILE: &str = "Dockerfile.base";
pub const APP_DOCKERFILE: &str = "Dockerfile";
pub const ENV_EXAMPLE: &str = ".env.example";
pub const SEED_DIR: &str = "supabase/seed";
pub const SEED_SQL: &str = "supabase/seed.sql";
pub const MIGRATIONS_DIR: &str = "supabase/migrations";
pub const SUPABASE_COMPAT_SQL: &str = "supabase/local/supabase-compat.sql";
pub const SUPABASE_CONFIG: &str = "supabase/config.toml";
pub const LOCAL_DB_DIR: &str = "supabase/local";

/// The label every image and container made by xtask carries, so cleanup can find them.
pub const MANAGED_LABEL: &str = "org.openeu.managed";

/// This repository: the parent of xtask's own manifest directory.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The workspace a task operates on, with its shell, configuration and run labels.
pub struct Workspace {
    pub root: PathBuf,
    pub sh: Shell,
    pub config: Config,
    /// Extra KEY=VALUE labels for everything this run creates (tests use them for cleanup).
    pub labels: Vec<String>,
}

impl Workspace {
    pub fn open(root: Option<PathBuf>, labels: Vec<String>) -> Result<Self> {
        let root = match root {
            Some(dir) => dir
                .canonicalize()
                .with_context(|| format!("--workspace {}: no such directory", dir.display()))?,
            None => project_root(),
        };
        for label in &labels {
            if !label.contains('=') {
                anyhow::bail!("--label {label:?}: expected KEY=VALUE");
            }
        }
        let sh = Shell::new().context("creating the command shell")?;
        sh.change_dir(&root);
        let config = Config::load(&root.join(ROOT_MANIFEST))?;
        Ok(Workspace {
            root,
            sh,
            config,
            labels,
        })
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// Scratch space for xtask under target/, created on demand.
    pub fn scratch(&self, name: &str) -> Result<PathBuf> {
        let dir = self.root.join("target").join("xtask").join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// `--label` arguments for docker: the managed label plus this run's extra labels.
    pub fn label_args(&self) -> Vec<String> {
        let mut args = vec!["--label".to_owned(), format!("{MANAGED_LABEL}=true")];
        for label in &self.labels {
            args.push("--label".to_owned());
            args.push(label.clone());
        }
        args
    }
}
