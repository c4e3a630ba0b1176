//! The tests of the base key's normalisation.

use super::{normalise::*, *};

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
