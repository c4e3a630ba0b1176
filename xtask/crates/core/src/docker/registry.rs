//! Asking a registry whether it has an image, over the registry HTTP API v2. A registry on this
//! machine speaks plain HTTP (as Docker itself assumes for loopback); a remote one is asked
//! through `docker manifest inspect`, which knows TLS and the user's stored credentials.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Docker;
use crate::{encoding, http, workspace};

/// Registry lookups are on the hot path of `base status`: a dead registry must not stall it.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Media types we accept for a manifest, so the digest is the one `docker push` reported.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Present { digest: String },
    Absent,
}

/// Credentials for the registry, read from the environment by the caller.
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    /// `DOCKER_REGISTRY_USERNAME` and `DOCKER_REGISTRY_PASSWORD`, when both are set.
    pub fn from_env() -> Option<Self> {
        let username = std::env::var("DOCKER_REGISTRY_USERNAME")
            .ok()
            .filter(|v| !v.is_empty())?;
        let password = std::env::var("DOCKER_REGISTRY_PASSWORD")
            .ok()
            .filter(|v| !v.is_empty())?;
        Some(Credentials { username, password })
    }
}

/// Does `registry` have `repository:tag`?
pub fn lookup(docker: &Docker<'_>, registry: &str, repository: &str, tag: &str) -> Result<Lookup> {
    if !workspace::LOCAL_REGISTRY_HOSTS.contains(&workspace::registry_host(registry)) {
        return docker.manifest_digest(&format!("{registry}/{repository}:{tag}"));
    }
    lookup_http(registry, repository, tag)
}

/// The registry API lookup over plain HTTP, for a registry on this machine.
pub fn lookup_http(registry: &str, repository: &str, tag: &str) -> Result<Lookup> {
    let credentials = Credentials::from_env();
    let response = request(
        registry,
        "HEAD",
        &format!("/v2/{repository}/manifests/{tag}"),
        credentials.as_ref(),
    )?;
    match response.status {
        200 => {
            let digest = response
                .header("docker-content-digest")
                .with_context(|| format!("registry {registry} sent no Docker-Content-Digest"))?;
            Ok(Lookup::Present {
                digest: digest.to_owned(),
            })
        }
        404 => Ok(Lookup::Absent),
        401 | 403 => match &credentials {
            Some(c) => bail!(
                "registry {registry} refused the login of user {} (HTTP {}); check DOCKER_REGISTRY_USERNAME and DOCKER_REGISTRY_PASSWORD",
                c.username,
                response.status
            ),
            None => bail!(
                "registry {registry} requires a login (HTTP {}); set DOCKER_REGISTRY_USERNAME and DOCKER_REGISTRY_PASSWORD",
                response.status
            ),
        },
        other => bail!("registry {registry} answered HTTP {other} for {repository}:{tag}"),
    }
}

/// Whether something that speaks the registry API answers at `registry`.
pub fn ping(registry: &str) -> Result<()> {
    let response = request(registry, "GET", "/v2/", None)?;
    match response.status {
        200 | 401 => Ok(()),
        other => bail!("{registry} answered HTTP {other} to /v2/: is it a registry?"),
    }
}

fn request(
    registry: &str,
    method: &str,
    path: &str,
    credentials: Option<&Credentials>,
) -> Result<http::Response> {
    let mut request = http::Request::new(method, registry, path)
        .header("Accept", MANIFEST_TYPES)
        .timeout(TIMEOUT);
    if let Some(c) = credentials {
        let basic = encoding::base64(format!("{}:{}", c.username, c.password).as_bytes());
        request = request.header("Authorization", &format!("Basic {basic}"));
    }
    request.send().map_err(|err| {
        anyhow::anyhow!(
            "registry {registry} is unreachable ({err:#}); start the local one with `cargo xtask setup` or set DOCKER_REGISTRY_SERVER"
        )
    })
}
