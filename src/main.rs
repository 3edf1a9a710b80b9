//! The `scepd` binary.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = scepd::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCEPD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a log file or journald would keep the escape codes.
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter);
    // Secrets never reach the log in the first place (they are not formatted anywhere);
    // JSON lines are for log shippers.
    match cli.log_format {
        scepd::cli::LogFormat::Json => builder.json().init(),
        scepd::cli::LogFormat::Text => builder.init(),
    }
    match scepd::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scepd: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}
