//! The `scepd` binary.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = scepd::cli::Cli::parse();
    scepd::logging::init(cli.log_format);
    match scepd::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Messages can quote ids and server answers: no raw control characters.
            eprintln!("scepd: {}", scepd::printable::escape(&e.message));
            ExitCode::from(e.code)
        }
    }
}
