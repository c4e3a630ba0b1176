//! `cargo lab bench image`: the runtime image against the reference runtime it replaced (the
//! binary on debian:bookworm-slim, as the Dockerfile had it), side by side in one run: size,
//! `docker pull` into an engine that has none of the image's layers, container start to
//! healthy, and dive's layer efficiency. Both images come from the same build stage, so only the
//! runtime differs. Everything is labelled, pushed to a private registry on a random loopback
//! port, and removed at the end.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use super::{Cleanup, Figure, fmt_secs, median, report, secs};
use xtask_core::{
    docker::{Build, Docker, ImageOwner},
    progress,
    workspace::{self, Workspace},
};
use xtask_images::{base, image};
use xtask_setup::setup;

use crate::flags;

/// The runtime stage the app image had before it was built FROM scratch: the reference. It
/// takes the binary from our image, so both run the same file, and builds in a context of its
/// own (a Dockerfile beside the workspace's context would change what `COPY . .` sees, and so
/// miss the build stage's cache).
const REFERENCE_RUNTIME: &str = r#"ARG OURS
FROM ${OURS} AS ours
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin openeu
COPY --from=ours /usr/local/bin/openeu-api /usr/local/bin/openeu-api
USER 10001:10001
ENV PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=1s --timeout=2s --start-period=10s --retries=3 CMD ["openeu-api", "healthcheck"]
STOPSIGNAL SIGTERM
CMD ["openeu-api"]
"#;

/// Makes a single-layer copy of an image whose layer exists nowhere else: the whole file
/// system, plus a file naming this run. Pulling the copy downloads and unpacks every byte, even
/// when the engine holds layers of the original (debian's, say, for the reference).
const UNIQUE_COPY: &str = r#"ARG SOURCE
FROM ${SOURCE} AS source
FROM debian:bookworm-slim AS copy
COPY --from=source / /rootfs/
ARG RUN_ID
RUN printf '%s\n' "$RUN_ID" > /rootfs/.bench-run
FROM scratch
COPY --from=copy /rootfs/ /
"#;

/// The goal for the runtime image.
const MAX_IMAGE_BYTES: u64 = 30_000_000;
/// The Dockerfile's HEALTHCHECK interval.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

impl flags::BenchImage {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let step = progress::step("setup");
        setup::ensure(ws)?;
        step.done();
        let runs = self.runs.max(1);
        let label = format!("org.openeu.bench-run={}", std::process::id());
        // Everything built or started through this handle carries the bench label.
        let bench_ws = Workspace::open(Some(ws.root.clone()), vec![label.clone()])?;
        let docker = Docker::new(&bench_ws);
        let scratch = ws
            .scratch("bench")?
            .join(format!("image-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        let mut cleanup = Cleanup::new(&docker, label, scratch.clone());
        let registry = cleanup.start_registry()?;

        let bench = Bench {
            ws,
            docker: &docker,
            registry,
            scratch,
            runs,
        };
        let [ours, reference] = bench.build_both()?;
        let figures = vec![
            bench.size(&ours, &reference)?,
            bench.pull(&ours, &reference)?,
            bench.start_to_healthy(&ours, &reference)?,
            bench.efficiency(&ours, &reference)?,
        ];
        drop(cleanup);
        report(&figures, self.json)
    }
}

struct Bench<'a> {
    ws: &'a Workspace,
    docker: &'a Docker<'a>,
    registry: String,
    scratch: PathBuf,
    runs: usize,
}

impl Bench<'_> {
    fn repository(&self) -> String {
        format!("{}/{}-bench", self.registry, self.ws.config.app_image)
    }

    /// Builds the app image, then the reference runtime around the same binary. Returns
    /// [ours, reference].
    fn build_both(&self) -> Result<[String; 2]> {
        // The base belongs to the workspace, not to the benchmark: made present, not removed.
        let inputs = base::compute(self.ws)?;
        base::ensure(self.ws, &Docker::new(self.ws), &inputs, false, false)?;
        let base_ref = base::reference(self.ws, &inputs);

        let ours = format!("{}:ours", self.repository());
        let dockerfile = self.ws.path(workspace::APP_DOCKERFILE);
        let step = progress::step(format!("building {ours} from {}", dockerfile.display()));
        self.docker.build(&Build {
            dockerfile: &dockerfile,
            context: &self.ws.root,
            tags: vec![ours.clone()],
            build_args: vec![("BASE_IMAGE".into(), base_ref)],
            labels: Vec::new(),
            no_cache: false,
            owner: ImageOwner::Run,
            log: self.scratch.join("build-ours.log"),
        })?;
        step.done();

        let reference = format!("{}:reference", self.repository());
        let dir = self.scratch.join("reference");
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("Dockerfile");
        std::fs::write(&file, REFERENCE_RUNTIME)?;
        let step = progress::step(format!(
            "building {reference}: the binary on debian:bookworm-slim"
        ));
        self.docker.build(&Build {
            dockerfile: &file,
            context: &dir,
            tags: vec![reference.clone()],
            build_args: vec![("OURS".into(), ours.clone())],
            labels: Vec::new(),
            no_cache: false,
            owner: ImageOwner::Run,
            log: dir.join("build.log"),
        })?;
        step.done();
        Ok([ours, reference])
    }

    fn size(&self, ours: &str, reference: &str) -> Result<Figure> {
        let (ours, reference) = (
            self.docker.image_size(ours)?,
            self.docker.image_size(reference)?,
        );
        Ok(Figure {
            name: "image size".to_owned(),
            ours: megabytes(ours),
            reference: megabytes(reference),
            ratio: Some(ours as f64 / reference as f64),
            ratio_is: "ours / reference",
            goal: "<= 30 MB",
            met: ours <= MAX_IMAGE_BYTES,
        })
    }

    /// `docker pull` from the private registry of a unique single-layer copy of each image,
    /// after removing it locally, so the engine has none of its layers. Median of the runs.
    fn pull(&self, ours: &str, reference: &str) -> Result<Figure> {
        let mut medians = Vec::new();
        for (name, image) in [("ours", ours), ("reference", reference)] {
            let copy = self.unique_copy(name, image)?;
            let step = progress::step(format!("docker pull {copy}, {} times", self.runs));
            self.docker.push(&copy, None)?;
            let mut times = Vec::new();
            for _ in 0..self.runs {
                self.docker.remove_image(&copy)?;
                let started = Instant::now();
                self.docker.pull(&copy)?;
                times.push(started.elapsed());
            }
            step.done();
            medians.push(median(&mut times));
        }
        let (ours, reference) = (medians[0], medians[1]);
        let ratio = secs(reference) / secs(ours);
        Ok(Figure {
            name: "docker pull, no layers present".to_owned(),
            ours: fmt_secs(ours),
            reference: fmt_secs(reference),
            ratio: Some(ratio),
            ratio_is: "reference / ours (speed-up)",
            goal: "faster",
            met: ratio > 1.0,
        })
    }

    /// A single-layer copy of `image`, with this run's id inside, tagged in the private
    /// registry's repository.
    fn unique_copy(&self, name: &str, image: &str) -> Result<String> {
        let dir = self.scratch.join(format!("copy-{name}"));
        std::fs::create_dir_all(&dir)?;
        let file = dir.join("Dockerfile");
        std::fs::write(&file, UNIQUE_COPY)?;
        let copy = format!("{}:pull-{name}", self.repository());
        let step = progress::step(format!(
            "a single-layer copy of {image} with unique content"
        ));
        self.docker.build(&Build {
            dockerfile: &file,
            context: &dir,
            tags: vec![copy.clone()],
            build_args: vec![
                ("SOURCE".into(), image.to_owned()),
                (
                    "RUN_ID".into(),
                    format!("{} {:?}", std::process::id(), Instant::now()),
                ),
            ],
            labels: Vec::new(),
            no_cache: true,
            owner: ImageOwner::Run,
            log: dir.join("build.log"),
        })?;
        step.done();
        Ok(copy)
    }

    /// From `docker run` to docker calling the container healthy (its own HEALTHCHECK, every
    /// second), alternating the two images; each container is stopped with SIGTERM and must
    /// exit 0.
    fn start_to_healthy(&self, ours: &str, reference: &str) -> Result<Figure> {
        let step = progress::step(format!("start to healthy, {} times each", self.runs));
        let (mut ours_times, mut reference_times) = (Vec::new(), Vec::new());
        for run in 0..self.runs {
            for (image, times) in [(ours, &mut ours_times), (reference, &mut reference_times)] {
                let name = format!("openeu-bench-image-{}-{run}", std::process::id());
                let started = Instant::now();
                let result = image::run_healthy(
                    self.docker,
                    image,
                    Some(&name),
                    None,
                    vec![
                        // Liveness needs no database: nothing listens on port 1.
                        (
                            "DATABASE_URL".to_owned(),
                            "postgres://postgres@127.0.0.1:1/postgres".to_owned(),
                        ),
                        ("SUPABASE_JWT_SECRET".to_owned(), "bench-image".to_owned()),
                    ],
                    Vec::new(),
                );
                let elapsed = started.elapsed();
                let stopped = self.docker.stop(&name, Duration::from_secs(10));
                self.docker.remove_container(&name)?;
                result?;
                let code = stopped?;
                if code != 0 {
                    bail!("{image} exited {code} after SIGTERM; expected 0");
                }
                times.push(elapsed);
            }
        }
        step.done();
        let (ours, reference) = (median(&mut ours_times), median(&mut reference_times));
        // Docker changes the health status only when a check runs, once per interval (1 s),
        // so that interval is the figure's resolution.
        Ok(Figure {
            name: "container start to healthy".to_owned(),
            ours: fmt_secs(ours),
            reference: fmt_secs(reference),
            ratio: Some(secs(ours) / secs(reference)),
            ratio_is: "ours / reference",
            goal: "within the 1s interval",
            met: ours <= reference + HEALTH_INTERVAL,
        })
    }

    fn efficiency(&self, ours: &str, reference: &str) -> Result<Figure> {
        let step = progress::step("dive --ci on both images");
        let (ours, reference) = (image::checks::dive(ours)?, image::checks::dive(reference)?);
        step.done();
        Ok(Figure {
            name: "dive --ci: efficiency, wasted bytes".to_owned(),
            ours: format!("{:.2} %, {} B", ours.efficiency_percent, ours.wasted_bytes),
            reference: format!(
                "{:.2} %, {} B",
                reference.efficiency_percent, reference.wasted_bytes
            ),
            ratio: None,
            ratio_is: "",
            goal: "dive's CI rules pass",
            met: ours.passed,
        })
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
