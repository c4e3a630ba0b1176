//! The tests of the env spec: formats, redaction and the spec's own consistency.

use super::*;

#[test]
fn percent_decoding_keeps_malformed_escapes() {
    assert_eq!(percent_decode("p%40ss%2Fw%zz%4"), "p@ss/w%zz%4");
    assert_eq!(percent_decode("%C3%A9"), "é");
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    lookup_from(pairs)
}

#[test]
fn a_password_that_ends_the_authority_early_is_masked_whole() {
    for url in [
        "postgres://app:pa/ss@db.internal:5432/openeu",
        "postgres://app:12/34@db.internal/openeu",
        "postgres://app:p?w@db/x",
        "postgres://app:p#w@db/x",
    ] {
        assert_eq!(redact_url(url), "***", "{url}");
        let why = Format::PostgresUrl.check(url).unwrap_err();
        let password = &url["postgres://app:".len()..url.find('@').unwrap()];
        assert!(
            !why.contains(password) && why.contains("percent-encoded"),
            "{why}"
        );
    }
    assert_eq!(
        redact_url("postgres://app:pa%2Fss@db:5432/openeu"),
        "postgres://app:***@db:5432/openeu"
    );
}

#[test]
fn target_derivation() {
    assert_eq!(Target::derive(env(&[])), Target::Local);
    assert_eq!(
        Target::derive(env(&[("RENDER", "true")])),
        Target::Production
    );
    assert_eq!(
        Target::derive(env(&[("RENDER", "true"), ("IS_PULL_REQUEST", "true")])),
        Target::Preview
    );
    assert_eq!(
        Target::derive(env(&[("ENVIRONMENT", "local"), ("RENDER", "true")])),
        Target::Local
    );
    assert_eq!(
        Target::derive(env(&[("ENVIRONMENT", " preview ")])),
        Target::Preview
    );
    // A malformed ENVIRONMENT does not hide what Render's variables say.
    assert_eq!(
        Target::derive(env(&[("ENVIRONMENT", "staging"), ("RENDER", "true")])),
        Target::Production
    );
    assert_eq!(
        Target::derive(env(&[("IS_PULL_REQUEST", "false"), ("RENDER", "1")])),
        Target::Production
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let problems = check(
        Target::Production,
        Reader::Service,
        env(&[("PORT", "eighty"), ("ENVIRONMENT", "staging")]),
    );
    let names: Vec<&str> = problems.iter().map(|p| p.name.as_str()).collect();
    for expected in [
        "PORT",
        "ENVIRONMENT",
        "DATABASE_URL",
        "SUPABASE_JWT_SECRET",
        "SUPABASE_PROJECT_URL",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
}

#[test]
fn a_malformed_secret_is_reported_without_its_value() {
    let canary = "postgres//user:hunter2@db";
    let problems = check(
        Target::Local,
        Reader::Service,
        env(&[("DATABASE_URL", canary)]),
    );
    let text: String = problems
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    assert!(text.contains("DATABASE_URL is malformed"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn urls_are_shown_without_passwords() {
    assert_eq!(
        redact_url("postgres://app:hunter2@db.example:5432/openeu?sslmode=require"),
        "postgres://app:***@db.example:5432/openeu"
    );
    assert_eq!(redact_url("not a url hunter2"), "***");
    assert_eq!(
        redact_url("https://api.supabase.com"),
        "https://api.supabase.com"
    );
}

#[test]
fn timestamps() {
    for ok in [
        "2026-03-01",
        "2024-02-29",
        "2026-03-01T09:30Z",
        "2026-03-01T09:30:00.123+01:00",
        "2026-03-01 09:30:00Z",
        "2026-03-01T09:30:00+15:59",
        "2026-03-01T09:30:00-15:59",
    ] {
        assert!(is_timestamp(ok), "{ok}");
    }
    for bad in [
        "2026-3-1",
        "2025-02-29",
        "2026-13-01",
        "2026-03-01T24:00Z",
        "2026-03-01T09:30",
        "yesterday",
        "2026-03-01T09:30:00+0100",
        "",
        "0000-01-01",
        "2026-03-01T09:30:00+16:00",
        "2026-03-01T09:30:00-23:59",
    ] {
        assert!(!is_timestamp(bad), "{bad}");
    }
}

#[test]
fn formats() {
    assert!(Format::Bool.check("TRUE").is_ok());
    assert!(Format::Bool.check("maybe").is_err());
    assert!(Format::Integer { min: 1, max: 65535 }.check("0").is_err());
    assert!(Format::Version.check("1.95.0").is_ok());
    assert!(Format::Version.check("1..0").is_err());
    assert!(Format::HttpUrl.check("ftp://x").is_err());
    assert!(
        Format::PostgresUrl
            .check("postgresql://u@[::1]:5432/db")
            .is_ok()
    );
    assert!(
        Format::PostgresUrl
            .check("postgres://u@host:99999/db")
            .is_err()
    );
}

#[test]
fn unknown_names_get_a_suggestion() {
    let problems = unknown(["SUPABASE_PROJECT_UR", "PORT", "WHATEVER_ELSE_ENTIRELY"]);
    assert_eq!(problems.len(), 2);
    assert_eq!(
        problems[0].kind,
        ProblemKind::Unknown {
            did_you_mean: Some("SUPABASE_PROJECT_URL")
        }
    );
    assert_eq!(
        problems[1].kind,
        ProblemKind::Unknown { did_you_mean: None }
    );
}

#[test]
fn the_spec_is_consistent() {
    for (i, var) in SPEC.iter().enumerate() {
        assert!(
            SPEC[i + 1..].iter().all(|v| v.name != var.name),
            "{} twice",
            var.name
        );
        assert!(!var.readers.is_empty(), "{} has no reader", var.name);
        if var.secret {
            assert!(
                var.example.is_empty(),
                "{}: a secret has no example value",
                var.name
            );
        } else if !var.example.is_empty() {
            assert!(
                var.format.check(var.example).is_ok(),
                "{}: its example is malformed",
                var.name
            );
        }
    }
}
