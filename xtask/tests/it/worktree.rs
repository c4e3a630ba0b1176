//! Two checkouts sharing one target directory (`CARGO_TARGET_DIR`, a common setup, and what
//! `git worktree`s often do): `cargo xtask` in each must act on its own checkout, although cargo
//! reuses one xtask binary for both. The workspace is found at run time, never compiled in.

use std::{path::Path, process::Command};

use crate::support::{Xtask, edit, repo_copy};

/// `cargo xtask base hash` as a user types it in `checkout`, with the shared target directory.
fn cargo_xtask_hash(checkout: &Path, target_dir: &Path) -> String {
    let out = Command::new("cargo")
        .args(["xtask", "base", "hash"])
        .current_dir(checkout)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("CARGO_NET_OFFLINE", "true")
        .env("RUSTUP_TOOLCHAIN", "1.95.0")
        .env_remove("CARGO_MANIFEST_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo xtask base hash in {} failed:\n{}",
        checkout.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn each_checkout_hashes_itself_with_a_shared_target_dir() {
    let (a, b) = (repo_copy(), repo_copy());
    // A dependency of the service only: xtask itself does not change, so cargo has no reason to
    // rebuild it for checkout A after building it for B. itoa is already in the lockfile.
    edit(&a.path().join("crates/openeu-api/Cargo.toml"), |s| {
        s.replacen("[dependencies]\n", "[dependencies]\nitoa = \"1\"\n", 1)
    });
    // Kept between runs, so only the first run on a machine pays for compiling xtask.
    let shared = Path::new(env!("CARGO_TARGET_TMPDIR")).join("shared-target");

    let hash_b = cargo_xtask_hash(b.path(), &shared);
    let hash_a = cargo_xtask_hash(a.path(), &shared);
    assert_ne!(
        hash_a, hash_b,
        "checkout A's extra dependency changes its hash"
    );
    // Each is the hash of its own checkout, as the binary under test computes it.
    for (checkout, printed) in [(&a, &hash_a), (&b, &hash_b)] {
        let (own, _) = Xtask::new(checkout.path()).ok(&["base", "hash"]);
        assert_eq!(printed, own.trim(), "{}", checkout.path().display());
    }
}
