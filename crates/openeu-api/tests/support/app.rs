//! The router in-process, as axum's testing example drives it: each request is one
//! `oneshot` call on a clone of the router, with no socket and no child process.

use axum::{body::Body, http::Request};
use http_body_util::BodyExt;
use openeu_api::{AppState, Config, Db, log};
use tower::ServiceExt;

use super::{Answer, JWT_SECRET, Server};

/// The router of a local instance on a test database.
pub struct App {
    router: axum::Router,
}

impl App {
    /// The configuration a local instance on `db` reads from its environment.
    pub fn local(db: &Server) -> App {
        App::with_database(&db.service_env())
    }

    /// A local instance with these database variables (`DATABASE_URL`, ...).
    pub fn with_database(database: &[(&'static str, String)]) -> App {
        // Request logs are the process's stderr; their test spawns the binary (tests/process.rs).
        log::set_level(log::Level::Error);
        let mut env = database.to_vec();
        env.push(("SUPABASE_JWT_SECRET", JWT_SECRET.to_owned()));
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let config = Config::from_lookup(openeu_env::lookup_from(&pairs))
            .unwrap_or_else(|invalid| panic!("{invalid}"));
        let pool = Db::connect(config.resolve_database().unwrap()).unwrap();
        App {
            router: openeu_api::router(AppState::new(&config, pool)),
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.get_with(path, &[]).await
    }

    /// GET `path` with extra headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}
