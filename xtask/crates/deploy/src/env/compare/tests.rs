//! The tests of the comparison of a service's variables with the env spec and an env file.

use super::*;

fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const CANARY: &str = "c4nary-s3cret";

fn healthy() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "DATABASE_URL",
            "postgres://app:c4nary-s3cret@db.internal:5432/openeu",
        ),
        ("SUPABASE_PROJECT_URL", "https://abc.supabase.co"),
        ("SUPABASE_PROJECT_ID", "abc"),
        ("SUPABASE_REST_KEY", CANARY),
        ("SUPABASE_JWT_SECRET", CANARY),
    ]
}

#[test]
fn a_healthy_service_has_no_findings() {
    let c = compare(Target::Production, &vars(&healthy()), None);
    assert!(c.ok(), "{:?}", c.findings);
    let text = format!(
        "{}{}",
        c.render(),
        serde_json::to_string(&c.to_json()).unwrap()
    );
    assert!(!text.contains(CANARY), "{text}");
    assert!(text.contains("https://abc.supabase.co"), "{text}");
}

#[test]
fn missing_unknown_malformed_and_not_read_each_name_the_fix() {
    let mut pairs = healthy();
    pairs.retain(|(k, _)| *k != "SUPABASE_JWT_SECRET");
    pairs.push(("SUPABASE_JWT_SECERT", CANARY));
    pairs.push(("PORT", "eighty"));
    pairs.push(("RENDER_API_KEY", CANARY));
    let c = compare(Target::Production, &vars(&pairs), None);
    let lines = c.lines().join("\n");
    for expected in [
        "SUPABASE_JWT_SECRET is missing on the service",
        "(SUPABASE_JWT_SECERT is set instead: did you mean SUPABASE_JWT_SECRET? names must match exactly) — fix: rename SUPABASE_JWT_SECERT to SUPABASE_JWT_SECRET",
        "SUPABASE_JWT_SECERT is set on the service but is not in the env spec; did you mean SUPABASE_JWT_SECRET?",
        "PORT on the service is malformed: it must be an integer from 1 to 65535 — fix:",
        "RENDER_API_KEY is set on the service, but the service does not read it — fix: remove RENDER_API_KEY",
    ] {
        assert!(lines.contains(expected), "{expected:?} in\n{lines}");
    }
    assert_eq!(c.findings.len(), 4, "{lines}");
    let text = format!(
        "{}{}",
        c.render(),
        serde_json::to_string(&c.to_json()).unwrap()
    );
    assert!(!text.contains(CANARY), "{text}");
    assert!(text.contains("*** (13 chars)"), "{text}");
}

#[test]
fn values_are_compared_with_the_file_without_showing_secrets() {
    let service = vars(&healthy());
    let entries = vec![
        EnvEntry {
            key: "SUPABASE_JWT_SECRET".into(),
            value: "another-secret".into(),
            line: 3,
        },
        EnvEntry {
            key: "SUPABASE_PROJECT_ID".into(),
            value: "abc".into(),
            line: 4,
        },
        EnvEntry {
            key: "LOG_LEVEL".into(),
            value: "debug".into(),
            line: 5,
        },
        // The deploy machine's: not compared.
        EnvEntry {
            key: "RENDER_API_KEY".into(),
            value: "k".into(),
            line: 6,
        },
    ];
    let file = EnvFile {
        path: Path::new("prod.env"),
        entries: &entries,
    };
    let c = compare(Target::Production, &service, Some(file));
    let lines = c.lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("SUPABASE_JWT_SECRET on the service differs from prod.env:3 — fix: `cargo xtask env push --env-file prod.env`"), "{lines:?}");
    assert!(
        lines[1].starts_with("LOG_LEVEL is set in prod.env:5 but not on the service"),
        "{lines:?}"
    );
}

#[test]
fn a_push_keeps_what_the_file_lacks_unless_pruning() {
    let current = vars(&[
        ("A_UNKNOWN", "x"),
        ("LOG_LEVEL", "info"),
        ("SUPABASE_JWT_SECRET", "old"),
    ]);
    let desired = vars(&[
        ("LOG_LEVEL", "debug"),
        ("SUPABASE_JWT_SECRET", CANARY),
        ("PORT", "80"),
    ]);
    let d = diff(&current, &desired, false);
    assert_eq!(d.added, ["PORT"]);
    assert_eq!(d.changed, ["LOG_LEVEL", "SUPABASE_JWT_SECRET"]);
    assert_eq!(d.kept, ["A_UNKNOWN"]);
    assert!(d.result.contains_key("A_UNKNOWN"));
    let lines = d.lines().join("\n");
    assert!(lines.contains("~ LOG_LEVEL: info → debug"), "{lines}");
    assert!(
        lines.contains("~ SUPABASE_JWT_SECRET: *** (3 chars) → *** (13 chars)"),
        "{lines}"
    );
    assert!(
        !lines.contains(CANARY)
            && !serde_json::to_string(&(d.added_json(), d.changed_json()))
                .unwrap()
                .contains(CANARY)
    );
    let d = diff(&current, &desired, true);
    assert_eq!(d.removed, ["A_UNKNOWN"]);
    assert!(!d.result.contains_key("A_UNKNOWN"));
    assert!(diff(&desired, &desired, true).is_empty());
}

#[test]
fn a_bad_file_names_its_lines_and_no_value() {
    let entries = vec![
        EnvEntry {
            key: "SUPABASE_JWT_SECERT".into(),
            value: CANARY.into(),
            line: 2,
        },
        EnvEntry {
            key: "PORT".into(),
            value: CANARY.into(),
            line: 7,
        },
        EnvEntry {
            key: "RENDER_API_KEY".into(),
            value: CANARY.into(),
            line: 9,
        },
    ];
    let file = EnvFile {
        path: Path::new("prod.env"),
        entries: &entries,
    };
    let err = format!("{:#}", service_vars_of_file(file).unwrap_err());
    assert!(err.contains("prod.env:2: SUPABASE_JWT_SECERT is not in the env spec; did you mean SUPABASE_JWT_SECRET?"), "{err}");
    assert!(err.contains("prod.env:7: PORT is malformed"), "{err}");
    assert!(
        !err.contains(CANARY) && !err.contains("prod.env:9"),
        "{err}"
    );
    let (vars, left_out) = service_vars_of_file(EnvFile {
        path: Path::new("f"),
        entries: &entries[2..],
    })
    .unwrap();
    assert!(vars.is_empty());
    assert_eq!(left_out, ["RENDER_API_KEY (f:9: not read by the service)"]);
}
