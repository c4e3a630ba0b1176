//! `cargo lab`: the benchmarks of the OpenEU backend and its tooling (`cargo lab bench <what>`),
//! a package of its own so that `cargo xtask` never compiles them. Each benchmark measures ours
//! against a reference side by side in one run and prints ratios; nothing here asserts a time.

mod bench;
mod flags;

use std::process::ExitCode;

use clap::Parser;
use xtask_core::workspace::Workspace;

use crate::flags::{Lab, LabCommand};

fn main() -> ExitCode {
    let lab = Lab::parse();
    let run = || -> anyhow::Result<()> {
        let ws = Workspace::open(lab.workspace, Vec::new())?;
        match lab.command {
            LabCommand::Bench(bench) => bench.run(&ws),
        }
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::flags::BenchCommand;

    #[test]
    fn the_cli_is_consistent() {
        Lab::command().debug_assert();
    }

    #[test]
    fn command_lines_parse() {
        let lab = Lab::parse_from(["cargo lab", "bench", "seed", "--no-stack"]);
        let LabCommand::Bench(BenchCommand::Seed(seed)) = lab.command else {
            panic!("bench seed")
        };
        assert!(seed.rows == 1_000_000 && seed.no_stack);
        let lab = Lab::parse_from(["cargo lab", "bench", "compile", "--workspace", "/w"]);
        assert_eq!(lab.workspace, Some(std::path::PathBuf::from("/w")));
        let LabCommand::Bench(BenchCommand::Compile(compile)) = lab.command else {
            panic!("compile")
        };
        assert_eq!((compile.against.as_str(), compile.runs), ("3aceda2", 2));
    }
}
