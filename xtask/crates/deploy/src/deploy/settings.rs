//! The deploy tool's configuration: the env spec's deploy variables (`RENDER_API_KEY`,
//! `RENDER_SERVICE_ID`, `RENDER_API_URL`, `RENDER_DEPLOY_HOOK_URL`, the production database URL),
//! read from the environment, checked by name, never echoed; and the service to deploy to,
//! `RENDER_SERVICE_ID` or, per target, `service-id` in `[workspace.metadata.xtask.render]`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use xtask_core::render::{self, Api};
use xtask_core::{
    https,
    workspace::{ROOT_MANIFEST, Workspace},
};
use xtask_data::db::push;

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
            service: service_id(env(SERVICE_ID), &ws.config.render.service_id, target),
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

/// The Render API and the service of `target`, found as `deploy` finds them (`RENDER_API_KEY`,
/// `RENDER_API_URL`, and `RENDER_SERVICE_ID` or `service-id.<target>` of the manifest): what
/// `env check --service`, `env push` and `doctor --remote` talk to.
pub fn api_from_env(ws: &Workspace, target: &str, client: &https::Client) -> Result<(Api, String)> {
    let settings = Settings::from_env(ws, target);
    if let Err(why) = openeu_env::Format::HttpUrl.check(&settings.api_url) {
        anyhow::bail!("{API_URL} is malformed: it {why}");
    }
    settings.api(client)
}

/// The Render service a deploy goes to, and where its id came from (for the progress line and
/// the JSON report: an id from the environment overrides the manifest's).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ServiceId {
    pub(super) id: String,
    pub(super) source: String,
}

/// The service id of `target`: `RENDER_SERVICE_ID` when set, else `service-id.<target>` of
/// `[workspace.metadata.xtask.render]`. Every entry of that table is checked, so a typo in a
/// target not deployed today is found now; the errors name Cargo.toml and the key.
pub(super) fn service_id(
    from_env: Option<String>,
    table: &BTreeMap<String, String>,
    target: &str,
) -> Result<ServiceId, String> {
    const KEY: &str = "[workspace.metadata.xtask.render] service-id";
    for (name, id) in table {
        let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(format!(
                "{ROOT_MANIFEST}: {KEY}.{name:?}: a target is named in lower case (production, staging)"
            ));
        }
        if !is_service_id(id) {
            return Err(format!(
                "{ROOT_MANIFEST}: {KEY}.{name} = {id:?} is not a Render service id (srv- and lower-case letters and digits, as in the service's dashboard URL)"
            ));
        }
    }
    if let Some(id) = from_env {
        return Ok(ServiceId {
            id: id.trim().to_owned(),
            source: SERVICE_ID.to_owned(),
        });
    }
    match table.get(target) {
        Some(id) => Ok(ServiceId {
            id: id.clone(),
            source: format!("{ROOT_MANIFEST} service-id.{target}"),
        }),
        None => Err(format!(
            "no Render service for target {target}: set {SERVICE_ID} (the srv-… id of the service), or add {target} = \"srv-…\" to {KEY} in {ROOT_MANIFEST}{}",
            if table.is_empty() {
                String::new()
            } else {
                format!(
                    " (it names {})",
                    table.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            }
        )),
    }
}

/// `srv-` followed by lower-case letters and digits.
fn is_service_id(id: &str) -> bool {
    id.strip_prefix("srv-").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_target_picks_its_service_and_the_env_var_overrides_it() {
        let ids = table(&[("production", "srv-prod1"), ("staging", "srv-stage2")]);
        let got = service_id(None, &ids, "staging").unwrap();
        assert_eq!(got.id, "srv-stage2");
        assert_eq!(got.source, "Cargo.toml service-id.staging");
        assert_eq!(
            service_id(None, &ids, "production").unwrap().id,
            "srv-prod1"
        );
        let got = service_id(Some("srv-fromenv".into()), &ids, "staging").unwrap();
        assert_eq!(
            (got.id.as_str(), got.source.as_str()),
            ("srv-fromenv", SERVICE_ID)
        );
        assert_eq!(
            service_id(Some("srv-x".into()), &BTreeMap::new(), "production")
                .unwrap()
                .id,
            "srv-x"
        );
    }

    #[test]
    fn a_missing_target_or_a_malformed_entry_names_cargo_toml_and_the_key() {
        let ids = table(&[("production", "srv-prod1")]);
        let err = service_id(None, &ids, "staging").unwrap_err();
        assert!(err.contains("RENDER_SERVICE_ID"), "{err}");
        assert!(err.contains("staging = \"srv-…\""), "{err}");
        assert!(err.contains("Cargo.toml (it names production)"), "{err}");
        for (name, id) in [
            ("staging", "prod1"),
            ("staging", "srv-"),
            ("staging", "srv-ABC"),
        ] {
            let err = service_id(Some("srv-env".into()), &table(&[(name, id)]), "production")
                .unwrap_err();
            assert!(
                err.starts_with("Cargo.toml: [workspace.metadata.xtask.render] service-id.staging"),
                "{err}"
            );
            assert!(err.contains("is not a Render service id"), "{err}");
        }
        let err = service_id(None, &table(&[("Prod", "srv-a")]), "Prod").unwrap_err();
        assert!(err.contains("service-id.\"Prod\""), "{err}");
    }
}
