//! The tests of remote previews' pure parts: names, pairing, ages and costs.

use super::*;

#[test]
fn image_repositories_drop_tag_and_digest() {
    assert_eq!(repository("ghcr.io/o/app:latest"), "ghcr.io/o/app");
    assert_eq!(
        repository("127.0.0.1:5000/app@sha256:ab"),
        "127.0.0.1:5000/app"
    );
    assert_eq!(repository("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
}
