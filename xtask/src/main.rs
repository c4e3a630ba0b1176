//! `cargo xtask`: parses the command line and hands it to the library. Errors print their whole
//! chain and exit 1.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = xtask::flags::Xtask::parse();
    match xtask::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
