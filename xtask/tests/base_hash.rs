//! The base-hash edit table: each row edits a copy of the fixture workspace and says whether
//! the base hash must change. Runs the real `xtask base hash` (and so real `cargo metadata`).

mod support;

use std::path::Path;

use support::{Xtask, edit, fixture_workspace};

type Edit = fn(&Path);

fn hash(ws: &Path) -> String {
    let (stdout, _) = Xtask::new(ws).ok(&["base", "hash"]);
    stdout.trim().to_owned()
}

fn append(path: &Path, text: &str) {
    edit(path, |s| s + text);
}

fn replace(path: &Path, from: &str, to: &str) {
    edit(path, |s| {
        assert!(
            s.contains(from),
            "{} does not contain {from:?}",
            path.display()
        );
        s.replacen(from, to, 1)
    });
}

#[test]
fn base_hash_changes_exactly_when_compiled_dependencies_can() {
    let rows: &[(&str, bool, Edit)] = &[
        (
            "comment and whitespace in the root Cargo.toml",
            false,
            |ws| append(&ws.join("Cargo.toml"), "\n# a comment\n\n   \n"),
        ),
        (
            "comment and reformatting in a member Cargo.toml",
            false,
            |ws| {
                replace(
                    &ws.join("app/Cargo.toml"),
                    "itoa = \"1\"",
                    "# numbers\nitoa    =    \"1\"   # fast",
                )
            },
        ),
        ("key order in a member Cargo.toml", false, |ws| {
            replace(
                &ws.join("app/Cargo.toml"),
                "itoa = \"1\"\nutil = { path = \"../util\", version = \"0.1.0\" }",
                "util = { version = \"0.1.0\", path = \"../util\" }\nitoa = \"1\"",
            )
        }),
        (
            "a member's version bump in Cargo.toml and Cargo.lock",
            false,
            |ws| {
                replace(
                    &ws.join("util/Cargo.toml"),
                    "version = \"0.1.0\"",
                    "version = \"0.2.0\"",
                );
                replace(
                    &ws.join("app/Cargo.toml"),
                    "version = \"0.1.0\" }",
                    "version = \"0.2.0\" }",
                );
                replace(
                    &ws.join("Cargo.lock"),
                    "name = \"util\"\nversion = \"0.1.0\"",
                    "name = \"util\"\nversion = \"0.2.0\"",
                );
                replace(
                    &ws.join("app/Cargo.toml"),
                    "version = \"0.1.0\"\n",
                    "version = \"0.1.1\"\n",
                );
                replace(
                    &ws.join("Cargo.lock"),
                    "name = \"app\"\nversion = \"0.1.0\"",
                    "name = \"app\"\nversion = \"0.1.1\"",
                );
            },
        ),
        ("README and .rs sources", false, |ws| {
            append(&ws.join("README.md"), "more words\n");
            append(&ws.join("app/src/main.rs"), "\nfn unused() {}\n");
            append(&ws.join("util/src/lib.rs"), "\npub fn more() {}\n");
        }),
        ("a new integration test and example file", false, |ws| {
            std::fs::create_dir_all(ws.join("app/tests")).unwrap();
            std::fs::write(ws.join("app/tests/it.rs"), "#[test] fn t() {}\n").unwrap();
            std::fs::create_dir_all(ws.join("app/examples")).unwrap();
            std::fs::write(ws.join("app/examples/demo.rs"), "fn main() {}\n").unwrap();
        }),
        (
            "description, authors, keywords, [package.metadata] and [lints]",
            false,
            |ws| {
                replace(
                    &ws.join("app/Cargo.toml"),
                    "description = \"Fixture application\"",
                    "description = \"Changed\"\nauthors = [\"A\"]\nkeywords = [\"eu\"]",
                );
                append(
                    &ws.join("app/Cargo.toml"),
                    "\n[package.metadata.docs]\nx = 1\n\n[lints.rust]\nunsafe_code = \"forbid\"\n",
                );
            },
        ),
        (
            "[workspace.metadata.xtask] (image names, registry)",
            false,
            |ws| {
                replace(
                    &ws.join("Cargo.toml"),
                    "registry = \"127.0.0.1:5000\"",
                    "registry = \"127.0.0.1:5001\"",
                );
            },
        ),
        ("an [alias] in .cargo/config.toml", false, |ws| {
            replace(
                &ws.join(".cargo/config.toml"),
                "[alias]\n",
                "[alias]\nb2 = \"build\"\n",
            );
        }),
        ("adding an external dependency", true, |ws| {
            replace(
                &ws.join("app/Cargo.toml"),
                "itoa = \"1\"",
                "itoa = \"1\"\nmemchr = \"2\"",
            );
        }),
        ("removing an external dependency", true, |ws| {
            replace(&ws.join("app/Cargo.toml"), "itoa = \"1\"\n", "");
        }),
        ("re-versioning an external dependency", true, |ws| {
            replace(
                &ws.join("app/Cargo.toml"),
                "itoa = \"1\"",
                "itoa = \"1.0.5\"",
            );
        }),
        ("a feature list", true, |ws| {
            replace(
                &ws.join("app/Cargo.toml"),
                "itoa = \"1\"",
                "itoa = { version = \"1\", features = [\"no-panic\"] }",
            );
        }),
        ("[profile.release]", true, |ws| {
            replace(&ws.join("Cargo.toml"), "opt-level = 3", "opt-level = 2");
        }),
        ("[patch]", true, |ws| {
            append(
                &ws.join("Cargo.toml"),
                "\n[patch.crates-io]\nitoa = { path = \"util\" }\n",
            );
        }),
        ("build settings in .cargo/config.toml", true, |ws| {
            append(
                &ws.join(".cargo/config.toml"),
                "\n[build]\nrustflags = [\"-Cdebuginfo=1\"]\n",
            );
        }),
        ("rust-toolchain.toml", true, |ws| {
            replace(&ws.join("rust-toolchain.toml"), "1.95.0", "1.96.0");
        }),
        ("Dockerfile.base", true, |ws| {
            append(&ws.join("Dockerfile.base"), "\nRUN true\n");
        }),
        (
            "an external package's version and checksum in Cargo.lock",
            true,
            |ws| {
                edit(&ws.join("Cargo.lock"), |s| {
                    let start = s.find("name = \"itoa\"").unwrap();
                    let (head, tail) = s.split_at(start);
                    let tail = tail.replacen("checksum = \"", "checksum = \"00", 1);
                    let tail = tail.replacen("version = \"1.0.", "version = \"1.0.1", 1);
                    format!("{head}{tail}")
                });
            },
        ),
        ("an edition", true, |ws| {
            replace(
                &ws.join("Cargo.toml"),
                "edition = \"2024\"",
                "edition = \"2021\"",
            );
        }),
        ("a build script", true, |ws| {
            std::fs::write(ws.join("app/build.rs"), "fn main() {}\n").unwrap();
        }),
        ("a new workspace member", true, |ws| {
            std::fs::create_dir_all(ws.join("extra/src")).unwrap();
            std::fs::write(
                ws.join("extra/Cargo.toml"),
                "[package]\nname = \"extra\"\nversion = \"0.1.0\"\nedition = \"2024\"\n",
            )
            .unwrap();
            std::fs::write(ws.join("extra/src/lib.rs"), "").unwrap();
            replace(
                &ws.join("Cargo.toml"),
                "members = [\"app\", \"util\"]",
                "members = [\"app\", \"util\", \"extra\"]",
            );
        }),
        ("the app packages that the base pre-compiles", true, |ws| {
            replace(
                &ws.join("Cargo.toml"),
                "app-packages = [\"app\"]",
                "app-packages = [\"app\", \"util\"]",
            );
        }),
    ];

    let pristine = fixture_workspace();
    let before = hash(pristine.path());
    assert_eq!(before.len(), 64, "a sha256 in hex: {before}");
    assert_eq!(
        hash(pristine.path()),
        before,
        "hashing twice gives the same hash"
    );

    let mut wrong = Vec::new();
    for (name, must_change, apply) in rows {
        let ws = fixture_workspace();
        apply(ws.path());
        let after = hash(ws.path());
        if (after != before) != *must_change {
            wrong.push(format!(
                "{name}: expected {}",
                if *must_change {
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
    let outside = support::TempDir::new("outside");
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
