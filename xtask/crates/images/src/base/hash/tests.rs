//! The tests of the base key's normalisation.

use super::*;

fn members() -> BTreeSet<&'static str> {
    ["app", "lib-a"].into_iter().collect()
}

#[test]
fn lockfile_masking_touches_only_members() {
    let lock = "# header\nversion = 4\n\n[[package]]\nname = \"app\"\nversion = \"1.2.3\"\ndependencies = [\n \"lib-a 0.4.0\",\n \"serde\",\n]\n\n[[package]]\nname = \"serde\"\nversion = \"1.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"ab\"\n";
    let masked = mask_lockfile(lock, &members());
    assert!(masked.contains("name = \"app\"\nversion = \"0.0.0\""));
    assert!(masked.contains(" \"lib-a 0.0.0\","));
    assert!(masked.contains("name = \"serde\"\nversion = \"1.0.0\""));
    assert!(masked.starts_with("# header\nversion = 4\n"));
}

#[test]
fn dependency_entry_with_source_is_external() {
    assert_eq!(
        mask_dependency_entry("app 1.0.0 (registry+x)", &members()),
        "app 1.0.0 (registry+x)"
    );
    assert_eq!(
        mask_dependency_entry("serde 1.0.0", &members()),
        "serde 1.0.0"
    );
}

#[test]
fn malformed_manifest_names_file_and_line() {
    let rules = ManifestRules {
        root: Path::new("/ws"),
        member_dirs: &BTreeSet::new(),
    };
    let err = rules
        .normalise(
            "[package]\nname = \"x\"\nversion = \n",
            Path::new("/ws/Cargo.toml"),
            true,
        )
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("/ws/Cargo.toml"), "{message}");
    assert!(message.contains("line 3"), "{message}");
}

#[test]
fn path_dependency_outside_the_workspace_is_an_error() {
    let rules = ManifestRules {
        root: Path::new("/ws"),
        member_dirs: &BTreeSet::new(),
    };
    let text = "[package]\nname = \"x\"\n[dependencies]\nfar = { path = \"../../../elsewhere\" }\n";
    let message = format!(
        "{:#}",
        rules
            .normalise(text, Path::new("/ws/crates/x/Cargo.toml"), true)
            .unwrap_err()
    );
    assert!(message.contains("outside the workspace"), "{message}");
    assert!(message.contains("`far`"), "{message}");
}

#[test]
fn a_custom_built_profile_keeps_its_inherits_chain() {
    let mut profiles: Table = toml::from_str(
        "[prod]\ninherits = \"release\"\nlto = true\n[release]\nopt-level = 3\n[dev]\nopt-level = 1\n[deb]\ninherits = \"release\"\n",
    )
    .unwrap();
    keep_built_profile(&mut profiles, "prod");
    assert_eq!(
        profiles.keys().collect::<Vec<_>>(),
        ["prod", "release"],
        "the built profile and the one it inherits from"
    );
}

#[test]
fn combine_depends_on_names_and_digests() {
    let a: BTreeMap<String, String> = [("x".to_owned(), "1".to_owned())].into();
    let b: BTreeMap<String, String> = [("y".to_owned(), "1".to_owned())].into();
    assert_ne!(combine(&a), combine(&b));
}
