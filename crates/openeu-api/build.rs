//! Derives the migration the service expects from supabase/migrations: the newest file named
//! in the Supabase CLI's way, `<14-digit timestamp>_<name>.sql`. Its version becomes
//! `OPENEU_EXPECTED_MIGRATION` (exported as `openeu_api::EXPECTED_MIGRATION`), so no copy of it
//! is kept by hand. The app image's build context carries the directory for this script.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dir = manifest_dir.join("../../supabase/migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(err) => fail(&dir, &format!("cannot read it ({err})")),
    };
    let newest = entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| version(&name).map(str::to_owned))
        .max();
    match newest {
        // Equal-length digit strings order as the numbers they are.
        Some(version) => println!("cargo:rustc-env=OPENEU_EXPECTED_MIGRATION={version}"),
        None => fail(
            &dir,
            "it holds no migration named <14-digit timestamp>_<name>.sql",
        ),
    }
}

/// The version of a migration file name in the Supabase CLI's naming, if it is one.
fn version(file_name: &str) -> Option<&str> {
    let (version, rest) = file_name.split_once('_')?;
    let is_version = version.len() == 14 && version.bytes().all(|b| b.is_ascii_digit());
    (is_version && rest.len() > ".sql".len() && rest.ends_with(".sql")).then_some(version)
}

fn fail(dir: &std::path::Path, why: &str) -> ! {
    let shown = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    eprintln!(
        "error: openeu-api derives the migration it expects from {}, but {why}",
        shown.display()
    );
    std::process::exit(1);
}
