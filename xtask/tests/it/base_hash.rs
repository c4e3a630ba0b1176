//! The base-hash edit table: each row edits a copy of the fixture workspace and says whether
//! the base hash must change. Runs the real `xtask base hash` (and so real `cargo metadata`).

use std::path::Path;

use crate::support::{Xtask, append, edit, fixture_workspace, replace};

use xtask_images::base::edit_table;

fn hash(ws: &Path) -> String {
    let (stdout, _) = Xtask::new(ws).ok(&["base", "hash"]);
    stdout.trim().to_owned()
}

#[test]
fn base_hash_changes_exactly_when_compiled_dependencies_can() {
    let rows = edit_table::load(&crate::support::repo_root()).unwrap();
    assert!(rows.len() >= 20, "the table has its rows");
    let pristine = fixture_workspace();
    let before = hash(pristine.path());
    assert_eq!(before.len(), 64, "a sha256 in hex: {before}");
    assert_eq!(
        hash(pristine.path()),
        before,
        "hashing twice gives the same hash"
    );

    let mut wrong = Vec::new();
    for row in &rows {
        let ws = fixture_workspace();
        row.apply(ws.path()).unwrap();
        let after = hash(ws.path());
        if (after != before) != row.changes {
            wrong.push(format!(
                "{}: expected {}",
                row.name,
                if row.changes {
                    "a new hash"
                } else {
                    "the same hash"
                }
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "rows that broke the rule:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn explain_lists_every_input_and_json_agrees_with_plain_output() {
    let ws = fixture_workspace();
    let plain = hash(ws.path());
    let (json, _) = Xtask::new(ws.path()).ok(&["base", "hash", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["hash"], plain.as_str());
    let inputs = value["inputs"].as_object().unwrap();
    for name in [
        "Cargo.lock",
        "Dockerfile.base",
        "rust-toolchain.toml",
        "manifest:Cargo.toml",
        "manifest:app/Cargo.toml",
        "build-args",
        "scheme",
    ] {
        assert!(
            inputs.contains_key(name),
            "--json lacks input {name}: {json}"
        );
    }
    let (explain, _) = Xtask::new(ws.path()).ok(&["base", "hash", "--explain"]);
    assert_eq!(explain.lines().count(), inputs.len() + 1, "{explain}");
}

#[test]
fn bad_workspaces_fail_with_the_file_and_the_fix() {
    let ws = fixture_workspace();
    append(
        &ws.path().join("util/Cargo.toml"),
        "\n[dependencies\nbroken = 1\n",
    );
    let text = Xtask::new(ws.path()).fails(&["base", "hash"]);
    assert!(
        text.contains("util/Cargo.toml:6"),
        "names the file and line: {text}"
    );

    let ws = fixture_workspace();
    std::fs::remove_file(ws.path().join("Cargo.lock")).unwrap();
    let text = Xtask::new(ws.path()).fails(&["base", "hash"]);
    assert!(
        text.contains("Cargo.lock is missing") && text.contains("cargo generate-lockfile"),
        "{text}"
    );

    let ws = fixture_workspace();
    let outside = crate::support::TempDir::new("outside");
    std::fs::create_dir_all(outside.path().join("src")).unwrap();
    std::fs::write(
        outside.path().join("Cargo.toml"),
        "[package]\nname = \"far\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
    )
    .unwrap();
    std::fs::write(outside.path().join("src/lib.rs"), "").unwrap();
    let far = format!(
        "far = {{ path = {:?} }}",
        outside.path().display().to_string()
    );
    replace(&ws.path().join("app/Cargo.toml"), "itoa = \"1\"", &far);
    let text = Xtask::new(ws.path()).fails(&["base", "hash"]);
    assert!(
        text.contains("outside the workspace") && text.contains("app/Cargo.toml"),
        "{text}"
    );
}

#[test]
fn any_workspace_hashes_without_xtask_config_and_with_a_legacy_toolchain_file() {
    let ws = fixture_workspace();
    let root = ws.path();
    // No [workspace.metadata.xtask]: the app packages default to the binary packages.
    edit(&root.join("Cargo.toml"), |s| {
        let start = s.find("[workspace.metadata.xtask]").unwrap();
        let end = s.find("[profile.release]").unwrap();
        format!("{}{}", &s[..start], &s[end..])
    });
    // The legacy toolchain file: just the channel.
    std::fs::remove_file(root.join("rust-toolchain.toml")).unwrap();
    std::fs::write(root.join("rust-toolchain"), "1.95.0\n").unwrap();
    let (json, _) = Xtask::new(root).ok(&["base", "hash", "--json"]);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let inputs = value["inputs"].as_object().unwrap();
    assert!(inputs.contains_key("rust-toolchain"), "{json}");
    use sha2::Digest;
    assert_eq!(
        inputs["app-packages"],
        xtask_core::files::hex(&sha2::Sha256::digest(b"app\n")).as_str(),
        "the binary package `app` is the app package: {json}"
    );
    assert!(
        value["reference"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:5000/"),
        "{json}"
    );
}
