//! `cargo xtask`: parses the command line and hands it to the library. Errors print their whole
//! chain and exit 1, or with the code they carry (`deploy`'s documented exit codes).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = xtask::flags::Xtask::parse();
    match xtask::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            err.downcast_ref::<xtask_deploy::deploy::Exit>()
                .map_or(ExitCode::FAILURE, |exit| ExitCode::from(exit.code))
        }
    }
}
