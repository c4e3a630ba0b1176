//! The tests of Render's API client: the shapes it reads, rate limits and errors.

use super::*;

#[test]
fn all_eleven_statuses_round_trip() {
    let all = [
        "created",
        "queued",
        "build_in_progress",
        "update_in_progress",
        "pre_deploy_in_progress",
        "live",
        "deactivated",
        "build_failed",
        "update_failed",
        "pre_deploy_failed",
        "canceled",
    ];
    for text in all {
        let status = Status::parse(text);
        assert!(!matches!(status, Status::Other(_)), "{text}");
        assert_eq!(status.as_str(), text);
    }
    assert_eq!(all.iter().filter(|s| Status::parse(s).failed()).count(), 4);
    assert_eq!(
        all.iter()
            .filter(|s| Status::parse(s).in_progress())
            .count(),
        Status::IN_PROGRESS.len()
    );
}

#[test]
fn services_of_both_kinds_are_recognised() {
    let image = serde_json::json!({"id": "srv-1", "name": "api", "ownerId": "tea-1", "suspended": "not_suspended",
        "imagePath": "ghcr.io/o/app:latest", "serviceDetails": {"runtime": "image", "url": "https://api.onrender.com"}});
    let service = Service::from_json(&image).unwrap();
    assert!(matches!(service.kind, Kind::Image { .. }));
    assert_eq!(service.url.as_deref(), Some("https://api.onrender.com"));
    let git = serde_json::json!({"id": "srv-2", "suspended": "suspended", "repo": "https://github.com/o/r",
        "branch": "main", "serviceDetails": {"runtime": "docker"}});
    let service = Service::from_json(&git).unwrap();
    assert!(matches!(service.kind, Kind::Git { .. }) && service.suspended);
}
