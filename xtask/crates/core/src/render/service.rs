//! Which Render service a command acts on, and the API to reach it, from the environment and
//! the manifest: `RENDER_API_KEY`, `RENDER_API_URL`, and `RENDER_SERVICE_ID` or, per target,
//! `service-id` in `[workspace.metadata.xtask.render]`. `deploy`, `env check --service`,
//! `env push` and `doctor --remote` all find the service here, so they agree.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

use super::{Api, DEFAULT_API_URL};
use crate::{
    https,
    workspace::{ROOT_MANIFEST, Workspace},
};

pub const API_KEY: &str = "RENDER_API_KEY";
pub const SERVICE_ID: &str = "RENDER_SERVICE_ID";
pub const API_URL: &str = "RENDER_API_URL";

/// A variable of the environment, when set to more than white space.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The Render API and the service of `target`, found as `deploy` finds them (`RENDER_API_KEY`,
/// `RENDER_API_URL`, and `RENDER_SERVICE_ID` or `service-id.<target>` of the manifest): what
/// `env check --service`, `env push` and `doctor --remote` talk to.
pub fn api_from_env(ws: &Workspace, target: &str, client: &https::Client) -> Result<(Api, String)> {
    let api_url = env(API_URL).unwrap_or_else(|| DEFAULT_API_URL.to_owned());
    if let Err(why) = openeu_env::Format::HttpUrl.check(&api_url) {
        bail!("{API_URL} is malformed: it {why}");
    }
    let key = env(API_KEY).with_context(|| {
        format!("{API_KEY} is not set: create an API key in Render's account settings")
    })?;
    let service = service_id(ws, target).map_err(anyhow::Error::msg)?;
    Ok((Api::new(&api_url, &key, client.clone()), service.id))
}

/// The Render service a deploy goes to, and where its id came from (for the progress line and
/// the JSON report: an id from the environment overrides the manifest's).
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceId {
    pub id: String,
    pub source: String,
}

/// The service id of `target`: `RENDER_SERVICE_ID` when set, else `service-id.<target>` of
/// the workspace's `[workspace.metadata.xtask.render]`.
pub fn service_id(ws: &Workspace, target: &str) -> Result<ServiceId, String> {
    service_id_of(env(SERVICE_ID), &ws.config.render.service_id, target)
}

/// `service_id` from its parts. Every entry of the table is checked, so a typo in a target not
/// deployed today is found now; the errors name Cargo.toml and the key.
fn service_id_of(
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
        let got = service_id_of(None, &ids, "staging").unwrap();
        assert_eq!(got.id, "srv-stage2");
        assert_eq!(got.source, "Cargo.toml service-id.staging");
        assert_eq!(
            service_id_of(None, &ids, "production").unwrap().id,
            "srv-prod1"
        );
        let got = service_id_of(Some("srv-fromenv".into()), &ids, "staging").unwrap();
        assert_eq!(
            (got.id.as_str(), got.source.as_str()),
            ("srv-fromenv", SERVICE_ID)
        );
        assert_eq!(
            service_id_of(Some("srv-x".into()), &BTreeMap::new(), "production")
                .unwrap()
                .id,
            "srv-x"
        );
    }

    #[test]
    fn a_missing_target_or_a_malformed_entry_names_cargo_toml_and_the_key() {
        let ids = table(&[("production", "srv-prod1")]);
        let err = service_id_of(None, &ids, "staging").unwrap_err();
        assert!(err.contains("RENDER_SERVICE_ID"), "{err}");
        assert!(err.contains("staging = \"srv-…\""), "{err}");
        assert!(err.contains("Cargo.toml (it names production)"), "{err}");
        for (name, id) in [
            ("staging", "prod1"),
            ("staging", "srv-"),
            ("staging", "srv-ABC"),
        ] {
            let err = service_id_of(Some("srv-env".into()), &table(&[(name, id)]), "production")
                .unwrap_err();
            assert!(
                err.starts_with("Cargo.toml: [workspace.metadata.xtask.render] service-id.staging"),
                "{err}"
            );
            assert!(err.contains("is not a Render service id"), "{err}");
        }
        let err = service_id_of(None, &table(&[("Prod", "srv-a")]), "Prod").unwrap_err();
        assert!(err.contains("service-id.\"Prod\""), "{err}");
    }
}
