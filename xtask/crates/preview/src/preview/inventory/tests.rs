//! The tests of the local previews' inventory: Docker's times and gc's reasons.

use super::*;

#[test]
fn docker_times_parse() {
    assert_eq!(
        docker_time("2026-11-28 11:00:00 +0100 CET"),
        Some(1_795_860_000)
    );
    assert_eq!(docker_time("yesterday"), None);
}

fn preview(branch: &str, created: u64) -> Preview {
    Preview {
        name: format!("s-preview-{branch}"),
        branch: branch.to_owned(),
        created,
        port: 18000,
        commit: String::new(),
        image: String::new(),
        state: "healthy".to_owned(),
        db_bytes: None,
        memory_bytes: None,
    }
}

#[test]
fn gc_reasons_are_age_and_gone_branches() {
    let now = 10 * 86_400;
    let day = Some(Duration::from_secs(86_400));
    let old = preview("old", now - 2 * 86_400);
    let young = preview("young", now - 60);
    assert_eq!(reasons(&old, now, day, None).len(), 1);
    assert!(reasons(&young, now, day, None).is_empty());
    let gone = |b: &str| (b == "young").then_some("branch deleted");
    assert_eq!(
        reasons(&young, now, None, Some(&gone)),
        vec!["branch deleted".to_owned()]
    );
    assert!(reasons(&old, now, None, Some(&gone)).is_empty());
}
