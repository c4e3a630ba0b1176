//! `deploy --dry-run`: the plan (what is live, what would ship, the pending migrations, the env
//! var check, whether a base build or push would happen), printed and put into the JSON report.
//! Nothing is changed.

use serde_json::{Value, json};

use super::preflight::Preflight;
use crate::flags;
use xtask_core::render;

pub(super) fn print(
    args: &flags::DeployRun,
    pre: &Preflight,
    image_backed: bool,
    report: &mut Value,
) {
    let live = pre
        .live
        .as_ref()
        .map(|d| json!({"id": d.id, "what": d.what()}));
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
    report["plan"] = json!({
        "live": live,
        "deploy": what,
        "kind": if image_backed { "image" } else { "git" },
        "pending_migrations": pre.plan.pending_versions(),
        "in_progress": pre.running.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        "notes": pre.notes,
        "env": pre.env.as_ref().map(crate::env::compare::Comparison::to_json),
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
