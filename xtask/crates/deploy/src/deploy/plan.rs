//! `deploy --dry-run`: the plan (what is live, what would ship, the pending migrations, the env
//! var check, whether a base build or push would happen), printed and put into the JSON report.
//! Nothing is changed.

use serde::Serialize;

use super::{preflight::Preflight, report::Report};
use crate::env::compare::{Comparison, ComparisonJson};
use crate::flags;
use xtask_core::render;

/// The `plan` of `deploy --dry-run --json`. The fields are in alphabetical order, the order
/// the keys have always been printed in.
#[derive(Serialize)]
pub(super) struct Plan {
    deploy: String,
    /// `env check --service`'s document, or null when the variables were not read.
    env: Option<ComparisonJson>,
    in_progress: Vec<String>,
    kind: &'static str,
    live: Option<Live>,
    notes: Vec<String>,
    pending_migrations: Vec<String>,
}

#[derive(Serialize)]
struct Live {
    id: String,
    what: String,
}

pub(super) fn print(
    args: &flags::DeployRun,
    pre: &Preflight,
    image_backed: bool,
    report: &mut Report,
) {
    let live = pre.live.as_ref().map(|d| Live {
        id: d.id.clone(),
        what: d.what(),
    });
    let what = if image_backed {
        match &args.image {
            Some(image) => format!("image {image}"),
            None => format!(
                "image built from {} (build, push)",
                render::short(&pre.head)
            ),
        }
    } else {
        format!(
            "commit {} (Render builds it FROM the pinned base)",
            pre.head
        )
    };
    report.plan = Some(Plan {
        deploy: what.clone(),
        env: pre.env.as_ref().map(Comparison::to_json),
        in_progress: pre.running.iter().map(|d| d.id.clone()).collect(),
        kind: if image_backed { "image" } else { "git" },
        live,
        notes: pre.notes.clone(),
        pending_migrations: pre.plan.pending_versions(),
    });
    if !args.json {
        println!("plan (dry run, nothing changed):");
        println!(
            "  live now:   {}",
            pre.live.as_ref().map_or_else(
                || "nothing".to_owned(),
                |d| format!("{} {}", d.id, d.what())
            )
        );
        println!("  would ship: {what}");
        println!(
            "  migrations: {}",
            if pre.plan.pending.is_empty() {
                "none pending".to_owned()
            } else {
                pre.plan.pending_versions().join(", ")
            }
        );
        match &pre.env {
            Some(env) if env.ok() => println!(
                "  env vars:   {} set on the service; every required one present and well-formed",
                env.rows.iter().filter(|r| r.shown.is_some()).count()
            ),
            Some(env) => {
                for line in env.lines() {
                    println!("  env var:    {line}");
                }
            }
            None => println!("  env vars:   not read"),
        }
        for note in &pre.notes {
            println!("  note:       {note}");
        }
    }
}
