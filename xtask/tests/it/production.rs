//! The production path that needs no Docker: render.yaml from a workspace's metadata (and the
//! specification check refusing what Render does not document), and the TLS policy of
//! `db reset --db-url` for a database that is not on this machine.

use crate::support::{Xtask, edit, repo_copy};

#[test]
fn blueprint_follows_the_metadata_and_refuses_undocumented_values() {
    let ws = repo_copy();
    let x = Xtask::new(ws.path());
    edit(&ws.path().join("Cargo.toml"), |text| {
        format!(
            "{text}\n[workspace.metadata.xtask.render]\nruntime = \"image\"\nimage = \"registry.example/openeu-backend:latest\"\ninstances = 2\nplan = \"pro plus\"\n"
        )
    });
    x.ok(&["deploy", "blueprint"]);
    let yaml = std::fs::read_to_string(ws.path().join("render.yaml")).unwrap();
    for expected in [
        "runtime: image\n",
        "    image:\n      url: \"registry.example/openeu-backend:latest\"\n",
        "numInstances: 2\n",
        "plan: \"pro plus\"\n",
        "      - key: SUPABASE_JWT_SECRET\n        sync: false\n",
    ] {
        assert!(yaml.contains(expected), "{expected:?} in:\n{yaml}");
    }
    assert!(!yaml.contains("dockerfilePath"), "{yaml}");
    x.ok(&["deploy", "blueprint", "--check"]);

    edit(&ws.path().join("Cargo.toml"), |text| {
        text.replace("instances = 2", "instances = 2\nregion = \"eu-central-1\"")
    });
    let text = x.fails(&["deploy", "blueprint", "--check"]);
    assert!(
        text.contains("services[0].region: must be one of") && text.contains("Cargo.toml"),
        "{text}"
    );
}

#[test]
fn a_remote_reset_needs_tls_in_the_url_or_an_explicit_opt_out() {
    let ws = repo_copy();
    let x = Xtask::new(ws.path());
    let url = "postgres://postgres:hunter2@db.example.invalid:5432/postgres";
    let text = x.fails(&["db", "reset", "--db-url", url, "--yes"]);
    assert!(
        text.contains("sslmode=require") && text.contains("--allow-plaintext"),
        "{text}"
    );
    assert!(!text.contains("hunter2"), "{text}");
    // With TLS asked for, the policy lets it through and psql fails to resolve the host.
    let text = x.fails(&[
        "db",
        "reset",
        "--db-url",
        &format!("{url}?sslmode=verify-full&sslrootcert=/nonexistent/ca.crt"),
        "--yes",
    ]);
    assert!(!text.contains("--allow-plaintext"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}
