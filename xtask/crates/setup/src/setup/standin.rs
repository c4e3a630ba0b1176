//! Local stand-ins for upstream images, for machines that cannot pull them (air-gapped, or
//! behind a TLS-intercepting proxy). They carry the upstream names, the host's CA bundle (so
//! cargo inside a build trusts the proxy) and a label that marks them as stand-ins.
//!
//! - `debian:bookworm-slim` is a debootstrap minbase root filesystem, imported.
//! - `rust:<version>-slim-bookworm` is that image plus gcc, libc6-dev and ca-certificates (as the
//!   official slim image has) plus the host's own toolchain of the pinned version.

use std::path::Path;

use anyhow::{Context, Result, bail};

use xtask_core::{
    docker::{Build, Docker, ImageOwner},
    files, process, progress,
    workspace::Workspace,
};

/// The label a stand-in carries; its value says how it was made.
pub const STANDIN_LABEL: &str = "org.openeu.stand-in";
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const DEBIAN_MIRROR: &str = "http://deb.debian.org/debian";

pub fn build(ws: &Workspace, docker: &Docker<'_>, image: &str) -> Result<()> {
    if let Some(suite) = image
        .strip_prefix("debian:")
        .and_then(|tag| tag.strip_suffix("-slim"))
    {
        return debian(ws, docker, image, suite);
    }
    if let Some(rest) = image.strip_prefix("rust:")
        && let Some((version, suite)) = rest.split_once("-slim-")
    {
        return rust(ws, docker, image, version, suite);
    }
    bail!(
        "{image} cannot be pulled and there is no recipe for a local stand-in; make it available with `docker load` or `docker tag`"
    )
}

fn debian(ws: &Workspace, docker: &Docker<'_>, image: &str, suite: &str) -> Result<()> {
    let step = progress::step(format!("debootstrap {suite} (minbase) for {image}"));
    let work = ws.scratch("standins")?.join(format!("debian-{suite}"));
    let rootfs = work.join("rootfs");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;
    let debootstrap =
        process::which("debootstrap").unwrap_or_else(|| "/usr/sbin/debootstrap".into());
    let mut cmd = process::command(debootstrap);
    cmd.args(["--variant=minbase", suite])
        .arg(&rootfs)
        .arg(DEBIAN_MIRROR);
    process::stream_to_log(cmd, &work.join("debootstrap.log")).context("debootstrap")?;
    slim_and_trust_host_ca(&rootfs)?;
    step.done();

    let step = progress::step(format!("importing {image}"));
    let tarball = work.join("rootfs.tar");
    let sh = &ws.sh;
    xshell::cmd!(sh, "tar --numeric-owner -C {rootfs} -cf {tarball} .")
        .quiet()
        .run()?;
    docker.import(
        &tarball,
        image,
        &[
            format!("LABEL {STANDIN_LABEL}=debootstrap-minbase"),
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
            "CMD [\"bash\"]".to_owned(),
        ],
    )?;
    std::fs::remove_dir_all(&work)?;
    step.done();
    Ok(())
}

/// Drops what a slim image leaves out and installs the host's CA bundle both as the system
/// bundle and as a local CA, so a later `update-ca-certificates` keeps it.
fn slim_and_trust_host_ca(rootfs: &Path) -> Result<()> {
    for dir in [
        "usr/share/doc",
        "usr/share/man",
        "usr/share/info",
        "var/cache/apt/archives",
        "var/lib/apt/lists",
    ] {
        let path = rootfs.join(dir);
        if path.exists() {
            std::fs::remove_dir_all(&path)?;
            std::fs::create_dir_all(&path)?;
        }
    }
    let bundle = std::fs::read(HOST_CA_BUNDLE)
        .with_context(|| format!("reading the host CA bundle {HOST_CA_BUNDLE}"))?;
    for target in [
        "etc/ssl/certs/ca-certificates.crt",
        "usr/local/share/ca-certificates/host-ca-bundle.crt",
    ] {
        let path = rootfs.join(target);
        std::fs::create_dir_all(path.parent().expect("has a parent"))?;
        std::fs::write(&path, &bundle)?;
    }
    Ok(())
}

fn rust(
    ws: &Workspace,
    docker: &Docker<'_>,
    image: &str,
    version: &str,
    suite: &str,
) -> Result<()> {
    let step = progress::step(format!("building {image} from the host toolchain"));
    let sh = &ws.sh;
    let host_version = xshell::cmd!(sh, "rustc --version").quiet().read()?;
    if host_version.split_whitespace().nth(1) != Some(version) {
        bail!(
            "{image} needs Rust {version}, but the host has `{host_version}`; run `rustup toolchain install {version}`"
        );
    }
    let sysroot =
        std::path::PathBuf::from(xshell::cmd!(sh, "rustc --print sysroot").quiet().read()?);
    let triple = xshell::cmd!(sh, "rustc --print host-tuple")
        .quiet()
        .read()?;
    let context = ws.scratch("standins")?.join("rust");
    if context.exists() {
        std::fs::remove_dir_all(&context)?;
    }
    let toolchain = context.join("toolchain");
    // Only what compiling needs: no docs, no rustdoc, no clippy or rustfmt.
    for relative in ["bin/rustc", "bin/cargo"] {
        link_or_copy(&sysroot.join(relative), &toolchain.join(relative))?;
    }
    for entry in std::fs::read_dir(sysroot.join("lib"))? {
        let entry = entry?;
        if entry.file_type()?.is_file() || entry.file_type()?.is_symlink() {
            link_or_copy(
                &entry.path(),
                &toolchain.join("lib").join(entry.file_name()),
            )?;
        }
    }
    for sub in ["lib", "bin"] {
        let relative = format!("lib/rustlib/{triple}/{sub}");
        files::link_tree(&sysroot.join(&relative), &toolchain.join(&relative))?;
    }
    std::fs::copy(HOST_CA_BUNDLE, context.join("host-ca-bundle.crt"))?;
    let toolchain_dir = format!("/usr/local/rustup/toolchains/{version}-{triple}");
    let dockerfile = format!(
        "# A local stand-in for the official rust:{version}-slim-{suite} image, written by cargo xtask setup.
FROM debian:{suite}-slim
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
 && rm -rf /var/lib/apt/lists/*
COPY host-ca-bundle.crt /usr/local/share/ca-certificates/host-ca-bundle.crt
RUN update-ca-certificates >/dev/null && cp /usr/local/share/ca-certificates/host-ca-bundle.crt /etc/ssl/certs/ca-certificates.crt
COPY toolchain {toolchain_dir}
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo RUST_VERSION={version} \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin \\
 && ln -s {toolchain_dir}/bin/cargo /usr/local/cargo/bin/cargo \\
 && ln -s {toolchain_dir}/bin/rustc /usr/local/cargo/bin/rustc \\
 && rustc --version && cargo --version
LABEL {STANDIN_LABEL}=host-toolchain
"
    );
    std::fs::write(context.join("Dockerfile"), dockerfile)?;
    docker.build(&Build {
        dockerfile: &context.join("Dockerfile"),
        context: &context,
        tags: vec![image.to_owned()],
        build_args: Vec::new(),
        labels: Vec::new(),
        no_cache: false,
        owner: ImageOwner::Shared,
        log: context.with_file_name("rust-standin.log"),
    })?;
    std::fs::remove_dir_all(&context)?;
    step.done();
    Ok(())
}

/// Hard-links when source and target share a file system (no copy of 500 MB of toolchain).
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to.parent().expect("has a parent"))?;
    let from = from
        .canonicalize()
        .with_context(|| format!("reading {}", from.display()))?;
    if std::fs::hard_link(&from, to).is_err() {
        std::fs::copy(&from, to).with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(())
}

/// Whether `image` is one of our stand-ins (for doctor), or None when it is absent.
pub fn is_standin(docker: &Docker<'_>, image: &str) -> Result<Option<bool>> {
    if !docker.image_exists(image)? {
        return Ok(None);
    }
    Ok(Some(
        docker.image_labels(image)?.contains_key(STANDIN_LABEL),
    ))
}
