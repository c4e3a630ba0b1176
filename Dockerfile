# The app image. `cargo xtask image build` passes BASE_IMAGE for the current base; Render builds
# this file alone and uses the default, which `cargo xtask base pin` keeps current.
ARG BASE_IMAGE=127.0.0.1:5000/openeu-backend-base:2fd56addf926a4b9d438a5fdf59f59d8@sha256:2c9f92e0a391ff4cd1a5a488b77a356dba39abb912794228e4235ee830af278a
FROM ${BASE_IMAGE} AS build
WORKDIR /build
# The crates, manifests and supabase/migrations (crates/openeu-api/build.rs reads the newest
# migration's version from it). `cargo xtask image build` sends a context of exactly these
# (xtask/src/image/context.rs: other members stubbed, no seed, no docs), so data, docs and xtask
# changes never rebuild; Render sends the repository, and .dockerignore keeps most of it out.
COPY . .
# The base compiled every external dependency; only workspace crates compile here.
ARG GIT_SHA=unknown
RUN OPENEU_GIT_SHA="$GIT_SHA" cargo build --profile "$CARGO_PROFILE" --locked --offline --package openeu-api \
 && install -D "target/$CARGO_PROFILE/openeu-api" /out/openeu-api

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin openeu
COPY --from=build /out/openeu-api /usr/local/bin/openeu-api
USER 10001:10001
ENV PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=1s --timeout=2s --start-period=10s --retries=3 CMD ["openeu-api", "healthcheck"]
STOPSIGNAL SIGTERM
CMD ["openeu-api"]
