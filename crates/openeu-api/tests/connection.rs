//! How the service reaches Postgres, against real servers: TLS with libpq's `sslmode` levels
//! on a server that accepts TCP only over TLS (a test CA made by the test), and Debian's
//! pgbouncer in front of Postgres in transaction and session mode. The whole endpoint suite
//! also runs over TLS and through pgbouncer (tests/api.rs); this file checks the edges.

mod support;

use support::{Mode, Server, app::App};

/// `/ready`'s status and body through an app with these database variables.
async fn ready(env: &[(&'static str, String)]) -> (u16, String) {
    let answer = App::with_database(env).get("/ready").await;
    (answer.status, answer.body)
}

fn url(db: &Server, host: &str, query: &str) -> Vec<(&'static str, String)> {
    vec![(
        "DATABASE_URL",
        format!(
            "postgres://postgres@{host}:{}/postgres?hostaddr=127.0.0.1&{query}",
            db.port
        ),
    )]
}

#[tokio::test]
async fn verify_full_connects_and_a_wrong_ca_or_host_is_refused_clearly() {
    let db = Server::start_in(Mode::Tls);
    let ca = db.tls().unwrap().ca.display().to_string();
    let host = openeu_testdb::TLS_HOST;

    // The name the certificate carries, with the CA that signed it.
    let (status, body) = ready(&url(
        &db,
        host,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    assert_eq!(status, 200, "{body}");

    // Another CA: the chain does not verify.
    let other = Server::start_in(Mode::Tls);
    let wrong_ca = other.tls().unwrap().ca.display().to_string();
    for mode in ["verify-ca", "verify-full", "require"] {
        let (status, body) = ready(&url(
            &db,
            host,
            &format!("sslmode={mode}&sslrootcert={wrong_ca}"),
        ))
        .await;
        assert_eq!(status, 503, "{mode}: {body}");
        assert!(
            body.contains("not signed by a trusted CA") && body.contains(&wrong_ca),
            "{mode}: {body}"
        );
    }

    // A name the certificate does not carry: refused by verify-full, accepted by verify-ca.
    let (status, body) = ready(&url(
        &db,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("not valid for the host name") && body.contains("localhost"),
        "{body}"
    );
    let (status, body) = ready(&url(
        &db,
        "localhost",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ))
    .await;
    assert_eq!(status, 200, "{body}");

    // require encrypts without checking; the server accepts it.
    let (status, body) = ready(&url(&db, "localhost", "sslmode=require")).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn plaintext_is_refused_by_a_tls_only_server_and_the_error_says_so() {
    let db = Server::start_in(Mode::Tls);
    let (status, body) = ready(&url(&db, "127.0.0.1", "sslmode=disable")).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("no encryption") && body.contains("sslmode=require"),
        "{body}"
    );
}

#[tokio::test]
async fn verify_modes_without_a_root_certificate_are_refused_before_connecting() {
    let db = Server::start_in(Mode::Tls);
    let config = openeu_api::Config::from_lookup(openeu_env::lookup_from(&[
        (
            "DATABASE_URL",
            &format!(
                "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full",
                db.port
            ),
        ),
        ("SUPABASE_JWT_SECRET", support::JWT_SECRET),
    ]))
    .unwrap();
    let err = openeu_api::Db::connect(config.resolve_database().unwrap())
        .err()
        .unwrap();
    assert!(err.contains("need sslrootcert"), "{err}");
}

#[tokio::test]
async fn pgbouncer_refuses_startup_options_so_pooler_modes_send_none() {
    let db = Server::start();
    let bouncer = openeu_testdb::Pgbouncer::start(&db, "transaction");
    // Told it is a direct connection, the service sends its settings as startup options, and
    // pgbouncer refuses them as Supabase's pooler does.
    let (status, body) = ready(&[
        ("DATABASE_URL", bouncer.url()),
        ("DATABASE_POOL_MODE", "direct".to_owned()),
    ])
    .await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("unsupported startup parameter"), "{body}");

    // In transaction mode the settings hold in every transaction, whichever server
    // connection pgbouncer picks.
    let app = App::with_database(&[
        ("DATABASE_URL", bouncer.url()),
        ("DATABASE_POOL_MODE", "transaction".to_owned()),
    ]);
    for _ in 0..20 {
        let page = app.get("/meetings?limit=1").await;
        assert_eq!(page.status, 200, "{}", page.body);
    }

    // Session mode: named statements and session settings per connection.
    let session = openeu_testdb::Pgbouncer::start(&db, "session");
    let app = App::with_database(&[
        ("DATABASE_URL", session.url()),
        ("DATABASE_POOL_MODE", "session".to_owned()),
    ]);
    for _ in 0..5 {
        let page = app.get("/meetings?limit=1").await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
}
