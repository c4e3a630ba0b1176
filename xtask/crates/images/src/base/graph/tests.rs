//! The tests of the resolved dependency graph the base key is taken from.

use super::*;

fn dep(name: &str, kind: Option<&str>) -> NodeDep {
    NodeDep {
        name: name.replace('-', "_"),
        pkg: format!("registry#{name}@1.0.0"),
        dep_kinds: vec![DepKind {
            kind: kind.map(str::to_owned),
            target: None,
        }],
    }
}

#[test]
fn pruning_keeps_only_resolved_built_dependencies_and_enabled_features() {
    let manifest = r#"
[package]
name = "app"
edition = { workspace = true }
[dependencies]
itoa = "1.0.5"
unused-opt = { version = "1", optional = true }
[target.'cfg(windows)'.dependencies]
winapi = "0.3"
[dev-dependencies]
memchr = "2"
[features]
default = ["fast"]
fast = ["itoa/std", "unused-opt?/x", "winapi/y"]
never = ["dep:unused-opt"]
[[test]]
name = "it"
"#;
    let mut table: Table = toml::from_str(manifest).unwrap();
    let itoa = dep("itoa", None);
    let memchr = dep("memchr", Some("dev"));
    let edges = [
        Edge {
            dep: &itoa,
            package_name: "itoa",
            version: "1.0.19",
            from_registry: true,
        },
        Edge {
            dep: &memchr,
            package_name: "memchr",
            version: "2.7.0",
            from_registry: true,
        },
    ];
    let ws_package: Table = toml::from_str("edition = \"2024\"").unwrap();
    let platform = Platform::new(
        "x86_64-unknown-linux-gnu",
        "unix\ntarget_os=\"linux\"\ntarget_arch=\"x86_64\"\n",
    );
    let inherited = Inherited {
        package: Some(&ws_package),
        dependencies: None,
        member_depth: 1,
        platform: &platform,
        resolver_v1: false,
    };
    let enabled: BTreeSet<&str> = ["default", "fast"].into();
    prune_member(
        &mut table,
        &edges,
        &enabled,
        &inherited,
        std::path::Path::new("x"),
    )
    .unwrap();
    let expected: Table = toml::from_str(
        r#"
[package]
name = "app"
edition = "2024"
[dependencies]
itoa = { version = "=1.0.19" }
[features]
default = ["fast"]
fast = ["itoa/std"]
"#,
    )
    .unwrap();
    assert_eq!(table, expected);
}

#[test]
fn platform_tables_are_evaluated_against_the_image_cfg() {
    let platform = Platform::new(
        "x86_64-unknown-linux-gnu",
        "unix\ntarget_os=\"linux\"\ntarget_arch=\"x86_64\"\ntarget_env=\"gnu\"\n",
    );
    assert_eq!(platform.applies("cfg(unix)"), Some(true));
    assert_eq!(platform.applies("cfg(windows)"), Some(false));
    assert_eq!(platform.applies("cfg(target_os = \"linux\")"), Some(true));
    assert_eq!(
        platform.applies("cfg(not(target_arch = \"wasm32\"))"),
        Some(true)
    );
    assert_eq!(
        platform.applies("cfg(all(unix, not(target_env = \"musl\")))"),
        Some(true)
    );
    assert_eq!(
        platform.applies("cfg(any(windows, target_env = \"musl\"))"),
        Some(false)
    );
    assert_eq!(platform.applies("x86_64-unknown-linux-gnu"), Some(true));
    assert_eq!(platform.applies("x86_64-pc-windows-msvc"), Some(false));
    assert_eq!(platform.applies("cfg(all(unix"), None);
}

#[test]
fn shared_registry_dependencies_move_to_the_holder_with_the_union_of_features() {
    let mut app: Table = toml::from_str(
        "[dependencies]\nitoa = { version = \"=1.0.19\" }\nserde = { version = \"=1.0.0\", features = [\"derive\"] }\n",
    )
    .unwrap();
    let mut util: Table = toml::from_str(
        "[dependencies]\nitoa = { version = \"=1.0.19\" }\nserde = { version = \"=1.0.0\", features = [\"rc\"] }\nmemchr = { version = \"=2.0.0\", default-features = false }\nlog = { version = \"=0.4.0\", optional = true }\n[features]\nx = [\"memchr/std\"]\n",
    )
    .unwrap();
    let mut macros: Table =
        toml::from_str("[dependencies]\nitoa = { version = \"=1.0.19\" }\n").unwrap();
    // A table of the image's platform counts as [dependencies].
    util.insert(
        "target".into(),
        toml::from_str(
            "[\"cfg(unix)\".dependencies]\nitoa = { version = \"=1.0.19\", features = [\"x\"] }\n",
        )
        .unwrap(),
    );
    let mut tables = [&mut app, &mut util, &mut macros];
    let unix = Platform::new("x86_64-unknown-linux-gnu", "unix\n");
    hoist_shared(&mut tables, &[true, true, false], 0, &unix);
    let expected_app: Table = toml::from_str(
        "[dependencies]\nitoa = { version = \"=1.0.19\", features = [\"x\"] }\nserde = { version = \"=1.0.0\", features = [\"derive\", \"rc\"] }\n",
    )
    .unwrap();
    assert_eq!(app, expected_app);
    // memchr is named by a feature, log is optional: both stay; the host-side member keeps
    // its own declaration.
    let expected_util: Table = toml::from_str(
        "[dependencies]\nmemchr = { version = \"=2.0.0\", default-features = false }\nlog = { version = \"=0.4.0\", optional = true }\n[features]\nx = [\"memchr/std\"]\n",
    )
    .unwrap();
    assert_eq!(util, expected_util);
    assert!(macros["dependencies"].get("itoa").is_some());
}

#[test]
fn closure_follows_normal_and_build_edges_only() {
    let node = |id: &str, deps: Vec<NodeDep>| Node {
        id: id.to_owned(),
        deps,
        features: vec![],
    };
    let mut a = dep("b", None);
    a.pkg = "b".into();
    let mut d = dep("d", Some("dev"));
    d.pkg = "d".into();
    let mut c = dep("c", Some("build"));
    c.pkg = "c".into();
    let resolve = Resolve {
        nodes: vec![
            node("a", vec![a, d]),
            node("b", vec![c]),
            node("c", vec![]),
            node("d", vec![]),
        ],
    };
    let found = closure(&resolve, &["a"], false);
    assert_eq!(
        found,
        ["a", "b", "c"].into_iter().map(str::to_owned).collect()
    );
}
