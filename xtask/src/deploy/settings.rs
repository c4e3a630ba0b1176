//! The deploy tool's configuration: the env spec's deploy variables (`RENDER_API_KEY`,
//! `RENDER_SERVICE_ID`, `RENDER_API_URL`, `RENDER_DEPLOY_HOOK_URL`, the production database URL),
//! read from the environment, checked by name, never echoed.

use anyhow::{Context, Result};

use super::render::{self, Api};
use crate::{db::push, https};

pub(super) const API_KEY: &str = "RENDER_API_KEY";
pub(super) const SERVICE_ID: &str = "RENDER_SERVICE_ID";
pub(super) const API_URL: &str = "RENDER_API_URL";
pub(super) const HOOK_URL: &str = "RENDER_DEPLOY_HOOK_URL";

pub(super) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The deploy tool's configuration, from the environment (the env spec's deploy variables).
pub(super) struct Settings {
    pub(super) api_key: Option<String>,
    pub(super) service_id: Option<String>,
    pub(super) api_url: String,
    pub(super) hook_url: Option<String>,
    pub(super) db_url: Option<String>,
}

impl Settings {
    pub(super) fn from_env() -> Settings {
        Settings {
            api_key: env(API_KEY),
            service_id: env(SERVICE_ID),
            api_url: env(API_URL).unwrap_or_else(|| render::DEFAULT_API_URL.to_owned()),
            hook_url: env(HOOK_URL),
            db_url: env(push::DB_URL_VAR),
        }
    }

    /// The problems with the variables themselves: missing or malformed, by name only.
    pub(super) fn problems(&self, need_db: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let mut required = vec![API_KEY, SERVICE_ID];
        if need_db {
            required.push(push::DB_URL_VAR);
        }
        for name in required {
            if env(name).is_none() {
                let description = openeu_env::var(name).map_or("", |v| v.description);
                problems.push(format!("{name} is not set: {description}"));
            }
        }
        for name in [API_URL, HOOK_URL, push::DB_URL_VAR] {
            if let (Some(value), Some(var)) = (env(name), openeu_env::var(name))
                && let Err(why) = var.format.check(&value)
            {
                problems.push(format!("{name} is malformed: it {why}"));
            }
        }
        problems
    }

    pub(super) fn api(&self, client: &https::Client) -> Result<(Api, String)> {
        let key = self.api_key.as_deref().with_context(|| {
            format!("{API_KEY} is not set: create an API key in Render's account settings")
        })?;
        let service = self
            .service_id
            .clone()
            .with_context(|| format!("{SERVICE_ID} is not set: the srv-… id of the service"))?;
        Ok((Api::new(&self.api_url, key, client.clone()), service))
    }
}
