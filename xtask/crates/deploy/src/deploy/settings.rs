//! The deploy tool's configuration: the env spec's deploy variables (`RENDER_API_KEY`,
//! `RENDER_SERVICE_ID`, `RENDER_API_URL`, `RENDER_DEPLOY_HOOK_URL`, the production database URL),
//! read from the environment, checked by name, never echoed; and the service to deploy to,
//! `RENDER_SERVICE_ID` or, per target, `service-id` in `[workspace.metadata.xtask.render]`
//! (xtask-core's `render::service` finds it).

use anyhow::{Context, Result};

use xtask_core::{
    https,
    render::{
        self, Api,
        service::{API_KEY, API_URL, ServiceId, env, service_id},
    },
    workspace::Workspace,
};
use xtask_data::db::push;

pub(super) const HOOK_URL: &str = "RENDER_DEPLOY_HOOK_URL";

/// The deploy tool's configuration, from the environment (the env spec's deploy variables).
pub(super) struct Settings {
    pub(super) api_key: Option<String>,
    /// The service of the target, or why there is none.
    pub(super) service: Result<ServiceId, String>,
    pub(super) api_url: String,
    pub(super) hook_url: Option<String>,
    pub(super) db_url: Option<String>,
    /// The env spec's target whose variables the service must hold: the deploy target when
    /// the spec names it (production, preview), else production (a staging service runs as
    /// production does).
    pub(super) spec_target: openeu_env::Target,
}

impl Settings {
    pub(super) fn from_env(ws: &Workspace, target: &str) -> Settings {
        Settings {
            api_key: env(API_KEY),
            service: service_id(ws, target),
            api_url: env(API_URL).unwrap_or_else(|| render::DEFAULT_API_URL.to_owned()),
            hook_url: env(HOOK_URL),
            db_url: env(push::DB_URL_VAR),
            spec_target: openeu_env::Target::parse(target)
                .unwrap_or(openeu_env::Target::Production),
        }
    }

    /// The problems with the variables themselves: missing or malformed, by name only.
    pub(super) fn problems(&self, need_db: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let mut required = vec![API_KEY];
        if need_db {
            required.push(push::DB_URL_VAR);
        }
        for name in required {
            if env(name).is_none() {
                let description = openeu_env::var(name).map_or("", |v| v.description);
                problems.push(format!("{name} is not set: {description}"));
            }
        }
        if let Err(why) = &self.service {
            problems.push(why.clone());
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
        let service = self.service.clone().map_err(anyhow::Error::msg)?;
        Ok((Api::new(&self.api_url, key, client.clone()), service.id))
    }

    /// The service id, when there is one.
    pub(super) fn service_id(&self) -> Option<&str> {
        self.service.as_ref().ok().map(|s| s.id.as_str())
    }
}
