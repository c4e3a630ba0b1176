# The app image. `cargo xtask image build` passes BASE_IMAGE for the current base; Render builds
# this file alone and uses the default, which `cargo xtask base pin` keeps current.
ARG BASE_IMAGE=127.0.0.1:5000/openeu-backend-base:75f2988c8d2ad1f536051d9e689c6ef8@sha256:9b31804ad472d5508bc15939637fbbe1a0cca179b0394a8db0bb45629940f19c
FROM ${BASE_IMAGE} AS build
WORKDIR /build
# The crates, manifests and supabase/migrations (crates/openeu-api/build.rs reads the newest
# migration's version from it). `cargo xtask image build` sends a context of exactly these
# (xtask/crates/images/src/image/context.rs: other members stubbed, no seed, no docs), so data,
# docs and xtask changes never rebuild; Render sends the repository, and .dockerignore keeps most
# of it out.
COPY . .
# The base compiled every external dependency; only workspace crates compile here. Not
# --offline: the base holds the index entries and crates of what it compiles, not of the
# lockfile's other entries (dev-dependencies, other platforms, xtask's), which cargo still
# resolves; it reads those few index files from crates.io and downloads no crate.
ARG GIT_SHA=unknown
RUN OPENEU_GIT_SHA="$GIT_SHA" cargo build --profile "$CARGO_PROFILE" --locked --package openeu-api \
 && install -D "target/$CARGO_PROFILE/openeu-api" /out/openeu-api

# The runtime's whole file system, gathered from the build stage's own files: the binary, the
# dynamic loader and the shared libraries that `ldd` names, the CA bundle, and the passwd, group
# and nsswitch entries. The runtime below starts FROM scratch with only this tree, so there is no
# shell, no package manager and no package the service never runs; Render's build from this
# file alone produces the same image. The last step runs the binary chrooted into the tree, so a
# missing library fails the build here, not the container at start.
FROM build AS runtime-files
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs \
 && cp /out/openeu-api /rootfs/usr/local/bin/openeu-api \
 && if ldd /out/openeu-api | grep 'not found'; then exit 1; fi \
 && ldd /out/openeu-api | grep -o '/[^ ]*' | xargs -I '{}' cp --parents --dereference '{}' /rootfs \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ca-certificates.crt \
 && printf 'openeu:x:10001:10001:OpenEU API:/nonexistent:/usr/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'openeu:x:10001:\n' > /rootfs/etc/group \
 && printf 'passwd: files\ngroup: files\nhosts: files dns\n' > /rootfs/etc/nsswitch.conf \
 && chroot /rootfs /usr/local/bin/openeu-api --version

# The runtime: one layer. The service is PID 1 and handles SIGTERM itself (it drains in-flight
# requests, then exits 0), so it needs no init. Its Management API client (ureq + rustls) trusts
# webpki-roots compiled into the binary; the CA bundle is for anything that reads the system
# store (SSL_CERT_FILE names it). Name resolution (the database host) is glibc's own files and
# dns sources, configured by the nsswitch.conf above and Docker's /etc/hosts and resolv.conf.
FROM scratch
COPY --from=runtime-files /rootfs/ /
# Numeric, so starting needs no passwd lookup; /etc/passwd names it for tools that ask.
USER 10001:10001
ENV PATH=/usr/local/bin \
    PORT=8080 \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
EXPOSE 8080
HEALTHCHECK --interval=1s --timeout=2s --start-period=10s --retries=3 CMD ["openeu-api", "healthcheck"]
STOPSIGNAL SIGTERM
CMD ["openeu-api"]
