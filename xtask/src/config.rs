//! The project's xtask configuration: `[workspace.metadata.xtask]` in the root Cargo.toml, the
//! one place that names images, the registry and the extra inputs of the base image.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The registry `cargo xtask setup` runs when the configured registry is this one.
pub const LOCAL_REGISTRY_HOSTS: [&str; 3] = ["127.0.0.1", "localhost", "[::1]"];

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// host[:port] of the registry images are pushed to.
    pub registry: String,
    pub base_image: String,
    pub app_image: String,
    pub app_packages: Vec<String>,
    #[serde(default)]
    pub base_inputs: Vec<String>,
    /// The loopback port of the local database (the Supabase CLI's default).
    #[serde(default = "default_db_port")]
    pub db_port: u16,
    /// The local stack's name: its containers, network, volume and label derive from it, so a
    /// test can run a stack of its own beside a developer's.
    #[serde(default = "default_stack")]
    pub stack: String,
}

fn default_stack() -> String {
    "local".to_owned()
}

fn default_db_port() -> u16 {
    54322
}

#[derive(Deserialize)]
struct RootManifest {
    workspace: Option<WorkspaceTable>,
}
#[derive(Deserialize)]
struct WorkspaceTable {
    metadata: Option<Metadata>,
}
#[derive(Deserialize)]
struct Metadata {
    xtask: Option<Config>,
}

impl Config {
    pub fn load(manifest: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let parsed: RootManifest = toml::from_str(&text).with_context(|| {
            format!("{}: invalid [workspace.metadata.xtask]", manifest.display())
        })?;
        let Some(mut config) = parsed
            .workspace
            .and_then(|w| w.metadata)
            .and_then(|m| m.xtask)
        else {
            bail!(
                "{}: missing [workspace.metadata.xtask]; add registry, base-image, app-image and app-packages",
                manifest.display()
            );
        };
        // The deploy environment names its registry; the manifest's value is the local default.
        if let Ok(server) = std::env::var("DOCKER_REGISTRY_SERVER")
            && !server.trim().is_empty()
        {
            config.registry = server.trim().trim_end_matches('/').to_owned();
        }
        if config.app_packages.is_empty() {
            bail!(
                "{}: [workspace.metadata.xtask] app-packages is empty",
                manifest.display()
            );
        }
        Ok(config)
    }

    pub fn base_repository(&self) -> String {
        format!("{}/{}", self.registry, self.base_image)
    }

    /// `openeu-<stack>-<part>`: the names of the local stack's containers, network and volume.
    pub fn stack_name(&self, part: &str) -> String {
        if part.is_empty() {
            format!("openeu-{}", self.stack)
        } else {
            format!("openeu-{}-{part}", self.stack)
        }
    }

    /// The label on everything of the local stack.
    pub fn stack_label(&self) -> (String, String) {
        ("org.openeu.stack".to_owned(), self.stack.clone())
    }

    pub fn app_repository(&self) -> String {
        format!("{}/{}", self.registry, self.app_image)
    }

    /// The host part of the registry, without the port.
    pub fn registry_host(&self) -> &str {
        registry_host(&self.registry)
    }

    /// Whether the registry is on this machine, where setup may start it and HTTP is plain.
    pub fn registry_is_local(&self) -> bool {
        LOCAL_REGISTRY_HOSTS.contains(&self.registry_host())
    }
}

pub fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        // An IPv6 literal: keep the brackets, drop the port.
        return rest.find(']').map_or(registry, |end| &registry[..end + 2]);
    }
    registry.split(':').next().unwrap_or(registry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_host_drops_the_port() {
        assert_eq!(registry_host("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(registry_host("ghcr.io"), "ghcr.io");
        assert_eq!(registry_host("[::1]:5000"), "[::1]");
    }
}
