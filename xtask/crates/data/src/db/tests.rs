//! The tests of the local database's pure parts: URLs and the repair of an interrupted reset.

use super::{reset::*, *};

/// sql_paths as the Supabase CLI expands them: `*` in a middle segment, `?`, `[ab]` and
/// `[^a]`, each entry's matches in byte order, a file matched twice applied once, `*` never
/// crossing `/`, and an entry that matches nothing or is malformed named in the error.
#[test]
fn sql_paths_expand_as_go_s_glob() {
    // A `[` in the workspace's own path is not a pattern.
    let root = std::env::temp_dir().join(format!("xtask-sql-paths-[{}]", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("supabase");
    for file in [
        "seed.sql",
        "seeds/a/1.sql",
        "seeds/b/2.sql",
        "seeds/b/10.sql",
        "seeds/c.sql/x.sql",
        "seeds/a-b/3.sql",
        "x1.sql",
        "x2.sql",
        "xy.sql",
        "deep/1/2/3.sql",
    ] {
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "select 1;\n").unwrap();
    }
    let config = root.join("supabase/config.toml");
    let names = |patterns: &[&str]| -> Vec<String> {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        seed_files(&dir, &patterns, &config)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned())
            .collect()
    };
    assert_eq!(names(&["./seed.sql"]), ["seed.sql"]);
    assert_eq!(names(&["seeds/../seed.sql"]), ["seed.sql"]);
    // `*` in a middle segment; byte order of whole paths ("a-b/" before "a/"), and a
    // directory named like a seed file is passed by.
    assert_eq!(
        names(&["seeds/*/*.sql"]),
        [
            "seeds/a-b/3.sql",
            "seeds/a/1.sql",
            "seeds/b/10.sql",
            "seeds/b/2.sql",
            "seeds/c.sql/x.sql"
        ]
    );
    assert_eq!(names(&["x?.sql"]), ["x1.sql", "x2.sql", "xy.sql"]);
    assert_eq!(names(&["x[12].sql"]), ["x1.sql", "x2.sql"]);
    assert_eq!(names(&["x[^1y].sql"]), ["x2.sql"]);
    // Declared order across entries, each file once.
    assert_eq!(names(&["x2.sql", "x*.sql"]), ["x2.sql", "x1.sql", "xy.sql"]);
    // `*` stays within one segment, and so does `**`, as in Go (below: no match).
    assert_eq!(names(&["deep/*/*/*.sql"]), ["deep/1/2/3.sql"]);
    for (patterns, said) in [
        (
            vec!["nothing/*.sql"],
            "entry \"nothing/*.sql\" matches no file",
        ),
        (vec!["deep/*.sql"], "entry \"deep/*.sql\" matches no file"),
        (
            vec!["deep/**/*.sql"],
            "entry \"deep/**/*.sql\" matches no file",
        ),
        (vec!["x[1.sql"], "entry \"x[1.sql\" is not a valid pattern"),
    ] {
        let patterns: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
        let err = format!("{:#}", seed_files(&dir, &patterns, &config).unwrap_err());
        assert!(err.contains(said), "{err}");
        assert!(err.contains("config.toml"), "{err}");
    }
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn an_interrupted_reset_is_finished_only_when_its_new_database_is_complete() {
    let plan = |current, next, previous| {
        Databases {
            current,
            next,
            previous,
        }
        .plan()
    };
    assert_eq!(plan(true, None, false), Repair::Nothing);
    assert_eq!(plan(true, Some(false), false), Repair::DropNext);
    assert_eq!(plan(true, Some(false), true), Repair::DropNext);
    assert_eq!(
        plan(true, Some(true), false),
        Repair::FinishSwap { has_current: true }
    );
    assert_eq!(plan(true, None, true), Repair::DropPrevious);
    // The two-statement swap of old, killed between its renames.
    assert_eq!(
        plan(false, Some(true), true),
        Repair::FinishSwap { has_current: false }
    );
    assert_eq!(
        plan(false, Some(false), true),
        Repair::RestorePrevious { drop_next: true }
    );
    assert_eq!(
        plan(false, None, true),
        Repair::RestorePrevious { drop_next: false }
    );
    assert_eq!(
        plan(false, None, false),
        Repair::CreateEmpty { drop_next: false }
    );
}

#[test]
fn urls_give_host_port_user_and_database() {
    let t = Target::from_url("postgres://app:pw@db.example:6543/openeu?sslmode=require").unwrap();
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.user.as_str(),
            t.password.as_str(),
            t.database.as_str()
        ),
        ("db.example", 6543, "app", "pw", "openeu")
    );
    let t = Target::from_url("postgresql://u@[::1]/x").unwrap();
    assert_eq!((t.host.as_str(), t.port), ("::1", 5432));
    assert!(Target::from_url("mysql://x").is_err());
}
