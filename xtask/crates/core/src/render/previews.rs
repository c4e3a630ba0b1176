//! Render's preview instances, for remote previews (preview/remote.rs):
//! `POST /services/{serviceId}/preview` (operation `previewService` in render-oss/cli's generated
//! client: body `previewInput` {imagePath, name, plan}, answer `serviceAndDeploy` {deployId,
//! service}; image-backed services only), the preview services of a service (`GET /services
//! ?includePreviews=true`, each with `serviceDetails.parentServer`), one env var set or removed
//! (`PUT`/`DELETE /services/{serviceId}/env-vars/{envVarKey}`, body `{value}`), and a service
//! deleted (`DELETE /services/{serviceId}`).

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::{Api, api_error};
use crate::https::api::NO_BODY;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PreviewInput<'a> {
    image_path: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a str>,
}

impl Api {
    /// Creates a preview instance of `service` running `image_path`. Not retried on a lost
    /// answer: the caller lists the previews by name before trying again.
    pub fn create_preview(
        &self,
        service: &str,
        image_path: &str,
        name: &str,
        plan: Option<&str>,
    ) -> Result<(Value, Option<String>)> {
        let path = format!("/services/{service}/preview");
        let body = PreviewInput {
            image_path,
            name,
            plan,
        };
        let response = self.exchange("POST", &path, Some(&body))?;
        if !(200..300).contains(&response.status) {
            return Err(api_error("POST", &path, &response));
        }
        let value = response.json()?;
        let deploy = value["deployId"].as_str().map(str::to_owned);
        Ok((value["service"].clone(), deploy))
    }

    /// The services whose `parentServer` is `parent`: its preview instances, as JSON.
    pub fn preview_services(&self, parent: &str) -> Result<Vec<Value>> {
        let mut found = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = "/services?includePreviews=true&limit=100".to_owned();
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let value = self.get_json(&path)?;
            let items = value
                .as_array()
                .context("Render's service list is not an array")?;
            for item in items {
                let service = &item["service"];
                if service["serviceDetails"]["parentServer"]["id"].as_str() == Some(parent)
                    && service["id"].as_str() != Some(parent)
                {
                    found.push(service.clone());
                }
            }
            match items.last().and_then(|i| i["cursor"].as_str()) {
                Some(next) if items.len() == 100 => cursor = Some(next.to_owned()),
                _ => return Ok(found),
            }
        }
    }

    /// Deletes a service; absent is fine.
    pub fn delete_service(&self, service: &str) -> Result<()> {
        let path = format!("/services/{service}");
        let response = self.call("DELETE", &path, NO_BODY)?;
        if !(200..300).contains(&response.status) && response.status != 404 {
            return Err(api_error("DELETE", &path, &response));
        }
        Ok(())
    }
}
