//! The service's configuration, read from the environment and validated against the env spec
//! (crates/openeu-env). Every problem is reported at once, and no secret value is ever printed.

use std::time::Duration;

use openeu_env::{Reader, Target};

use crate::connection::{Connection, PoolMode};

/// Render's default when PORT is unset.
const DEFAULT_PORT: u16 = 10000;
const DEFAULT_SUPABASE_API: &str = "https://api.supabase.com";

/// Where the database comes from.
#[derive(Debug, Clone)]
pub enum Database {
    /// `DATABASE_URL`, as given.
    Url(String),
    /// A preview: the PR's Supabase branch, found through the Management API.
    PreviewBranch {
        api_url: String,
        project_id: String,
        access_token: String,
        git_branch: String,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    pub port: u16,
    pub target: Target,
    pub database: Database,
    pub jwt_secret: Vec<u8>,
    pub git_branch: Option<String>,
    pub is_pull_request: bool,
    pub log_level: crate::log::Level,
    /// How long a preview waits for its branch database to come up.
    pub preview_deadline: Duration,
    /// `DATABASE_POOL_MODE`; guessed from the connection when unset.
    pub pool_mode: Option<PoolMode>,
}

/// All problems, one per line, safe to print.
#[derive(Debug)]
pub struct Invalid(pub Vec<String>);

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid environment ({} problem(s)):", self.0.len())?;
        for problem in &self.0 {
            write!(f, "\n  {problem}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads the configuration through `lookup` (the process environment in production).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, Invalid> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let flag = |name: &str| {
            get(name)
                .and_then(|v| openeu_env::parse_bool(&v))
                .unwrap_or(false)
        };
        let is_pull_request = flag("IS_PULL_REQUEST");
        // A malformed ENVIRONMENT is reported by the spec check below.
        let target = Target::derive(get);
        let problems: Vec<String> = openeu_env::check(target, Reader::Service, get)
            .iter()
            .map(ToString::to_string)
            .collect();
        if !problems.is_empty() {
            return Err(Invalid(problems));
        }
        // The spec check guarantees presence and format of what is required for this target.
        let required = |name: &str| get(name).unwrap_or_default();
        // Render copies the base service's variables into its previews, so on a preview
        // instance (IS_PULL_REQUEST, which only Render sets) DATABASE_URL and ENVIRONMENT are
        // production's: such an instance always resolves its branch's database instead.
        let database = match (target, get("DATABASE_URL")) {
            _ if is_pull_request => Database::PreviewBranch {
                api_url: get("SUPABASE_API_URL").unwrap_or_else(|| DEFAULT_SUPABASE_API.to_owned()),
                project_id: required("SUPABASE_PROJECT_ID"),
                access_token: required("SUPABASE_REST_KEY"),
                git_branch: required("RENDER_GIT_BRANCH"),
            },
            (Target::Preview, None) => Database::PreviewBranch {
                api_url: get("SUPABASE_API_URL").unwrap_or_else(|| DEFAULT_SUPABASE_API.to_owned()),
                project_id: required("SUPABASE_PROJECT_ID"),
                access_token: required("SUPABASE_REST_KEY"),
                git_branch: required("RENDER_GIT_BRANCH"),
            },
            (_, Some(url)) => Database::Url(url),
            (_, None) => return Err(Invalid(vec!["DATABASE_URL is missing".to_owned()])),
        };
        Ok(Config {
            port: get("PORT")
                .and_then(|p| p.parse().ok())
                .unwrap_or(DEFAULT_PORT),
            target,
            database,
            jwt_secret: required("SUPABASE_JWT_SECRET").into_bytes(),
            git_branch: get("RENDER_GIT_BRANCH"),
            is_pull_request,
            log_level: get("LOG_LEVEL")
                .and_then(|l| crate::log::Level::parse(&l))
                .unwrap_or(crate::log::Level::Info),
            preview_deadline: Duration::from_secs(
                get("PREVIEW_DB_DEADLINE_SECS")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(300),
            ),
            pool_mode: get("DATABASE_POOL_MODE").and_then(|m| PoolMode::parse(&m)),
        })
    }
}

impl Config {
    /// The database to connect to: `DATABASE_URL`, or the preview branch's, resolved now through
    /// the Management API (this blocks, up to the preview deadline).
    pub fn resolve_database(&self) -> Result<Connection, String> {
        match &self.database {
            Database::Url(url) => Connection::parse(url, self.pool_mode),
            Database::PreviewBranch {
                api_url,
                project_id,
                access_token,
                git_branch,
            } => {
                let resolved = crate::preview::resolve(
                    api_url,
                    project_id,
                    access_token,
                    git_branch,
                    self.preview_deadline,
                )?;
                crate::log::info(
                    "preview database resolved",
                    serde_json::json!({
                        "branch": resolved.branch,
                        "host": resolved.host,
                        "port": resolved.port,
                        "pool_mode": resolved.pool_mode.name(),
                    }),
                );
                let mut pg = tokio_postgres::Config::new();
                pg.host(&resolved.host)
                    .port(resolved.port)
                    .user(&resolved.user)
                    .password(&resolved.password)
                    .dbname(&resolved.database);
                // libpq's defaults: TLS required for any host but loopback.
                Ok(Connection::new(
                    pg,
                    None,
                    None,
                    Some(self.pool_mode.unwrap_or(resolved.pool_mode)),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        openeu_env::lookup_from(pairs)
    }

    #[test]
    fn local_needs_a_database_url_and_a_jwt_secret() {
        let err = Config::from_lookup(env(&[])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("DATABASE_URL is missing")
                && text.contains("SUPABASE_JWT_SECRET is missing"),
            "{text}"
        );
    }

    #[test]
    fn a_preview_without_database_url_resolves_its_branch() {
        let config = Config::from_lookup(env(&[
            ("IS_PULL_REQUEST", "true"),
            ("RENDER_GIT_BRANCH", "feature/x"),
            ("SUPABASE_PROJECT_ID", "proj"),
            ("SUPABASE_REST_KEY", "key"),
            ("SUPABASE_PROJECT_URL", "https://proj.supabase.co"),
            ("SUPABASE_JWT_SECRET", "s"),
        ]))
        .unwrap();
        assert_eq!(config.target, Target::Preview);
        assert!(
            matches!(config.database, Database::PreviewBranch { ref git_branch, .. } if git_branch == "feature/x")
        );
    }
    #[test]
    fn a_render_preview_never_uses_the_inherited_production_database_url() {
        for environment in ["", "production"] {
            let config = Config::from_lookup(env(&[
                ("IS_PULL_REQUEST", "true"),
                ("RENDER", "true"),
                ("ENVIRONMENT", environment),
                (
                    "DATABASE_URL",
                    "postgresql://u:p@db.production.example:5432/postgres",
                ),
                ("RENDER_GIT_BRANCH", "feature/x"),
                ("SUPABASE_PROJECT_ID", "proj"),
                ("SUPABASE_REST_KEY", "key"),
                ("SUPABASE_PROJECT_URL", "https://proj.supabase.co"),
                ("SUPABASE_JWT_SECRET", "s"),
            ]))
            .unwrap();
            assert!(
                matches!(config.database, Database::PreviewBranch { ref git_branch, .. } if git_branch == "feature/x"),
                "ENVIRONMENT={environment:?}: {:?}",
                config.database
            );
        }
    }
}
