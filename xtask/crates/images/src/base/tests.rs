//! The tests of the base image command's pure parts.

use super::pin::*;

#[test]
fn loopback_registries_are_named_in_pins() {
    assert_eq!(
        local_registry_of("127.0.0.1:5000/openeu-backend-base:abc@sha256:00"),
        Some("127.0.0.1:5000")
    );
    assert_eq!(local_registry_of("localhost/base:abc"), Some("localhost"));
    assert_eq!(local_registry_of("ghcr.io/openeu/base:abc@sha256:00"), None);
    assert_eq!(local_registry_of("base:abc"), None);
}

#[test]
fn pinned_tag_is_between_colon_and_digest() {
    assert_eq!(
        pinned_tag("127.0.0.1:5000/openeu-backend-base:abc@sha256:00"),
        Some("abc")
    );
    assert_eq!(pinned_tag("ghcr.io/x/base:abc"), Some("abc"));
    assert_eq!(pinned_tag("base"), None);
}

#[test]
fn rewrite_pin_changes_only_the_arg_line() {
    let text = "# x\nARG BASE_IMAGE=old\nFROM ${BASE_IMAGE}\n";
    assert_eq!(
        rewrite_pin(text, "new").unwrap(),
        "# x\nARG BASE_IMAGE=new\nFROM ${BASE_IMAGE}\n"
    );
    assert!(rewrite_pin("FROM x\n", "new").is_none());
}
