//! Command line: parse, dispatch, map errors to exit codes. Thin by design.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

pub mod admin;
pub mod ca;
mod cert;
pub mod device;
mod platform;
pub mod remote;
mod values;

use crate::ca::bootstrap::{self, InitError};
use crate::clock::unix_now;
use crate::config::Config;
use crate::configured_store;
use crate::platforms;
use crate::store::Store;

/// scepd: a SCEP certificate authority for device trust.
#[derive(Debug, Parser)]
#[command(name = "scepd", version, about)]
pub struct Cli {
    /// Data directory (SQLite database and keys).
    #[arg(long, global = true, env = "SCEPD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL database shared by several nodes (postgres://user@host:port/db); overrides
    /// `[store] url` and selects `backend = "postgres"`. Password from `[store] password_file`
    /// or SCEPD_STORE_PASSWORD, not the URL, so it stays out of `ps`.
    #[arg(long, global = true, env = "SCEPD_STORE_URL")]
    pub store_url: Option<String>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "SCEPD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "SCEPD_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Send mutating commands to a running server's admin API (e.g. http://127.0.0.1:8081);
    /// token from SCEPD_ADMIN_TOKEN or --admin-token-file.
    #[arg(long, global = true, env = "SCEPD_ADMIN_URL")]
    pub admin_url: Option<String>,
    /// File holding the admin token for --admin-url.
    #[arg(long, global = true)]
    pub admin_token_file: Option<PathBuf>,
    /// File holding the key-encryption passphrase (first line, mode 0600). Preferred over
    /// SCEPD_KEY_PASSPHRASE, which stays readable in /proc/<pid>/environ.
    #[arg(long, global = true, env = "SCEPD_KEY_PASSPHRASE_FILE")]
    pub key_passphrase_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

pub use crate::logging::LogFormat;

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data dir, CA hierarchy and the `default` platform.
    Init(InitArgs),
    /// Run the SCEP server (initializing the data dir first if needed).
    Serve(ServeArgs),
    /// Manage platforms (enrollment profiles, each with its own SCEP URL).
    #[command(subcommand)]
    Platform(PlatformCommand),
    /// Inspect and revoke issued certificates.
    #[command(subcommand)]
    Cert(CertCommand),
    /// The device registry and lifecycle.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// Admin API tokens.
    #[command(subcommand)]
    Admin(admin::AdminCommand),
    /// CA certificates and rotation.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// RA rotation.
    #[command(subcommand)]
    Ra(ca::RaCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a shell completion script (`scepd completions bash > /etc/bash_completion.d/scepd`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List events since a time (default: all).
    List {
        /// Unix seconds or RFC 3339.
        #[arg(long)]
        since: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `init` options.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Print the default platform as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address of the public SCEP listener.
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Print the first-start output (default platform) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Address of the admin API listener (loopback unless TLS is configured).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub admin_listen: SocketAddr,
    /// PEM certificate chain for the admin listener (required off loopback).
    #[arg(long, requires = "admin_tls_key")]
    pub admin_tls_cert: Option<PathBuf>,
    /// PEM private key for the admin listener.
    #[arg(long, requires = "admin_tls_cert")]
    pub admin_tls_key: Option<PathBuf>,
}

impl ServeArgs {
    /// The server's options (`--listen` goes to the configuration instead).
    fn options(&self) -> crate::server::ServeOptions {
        crate::server::ServeOptions {
            json: self.json,
            admin_listen: self.admin_listen,
            // clap requires both or neither.
            admin_tls: self.admin_tls_cert.clone().zip(self.admin_tls_key.clone()),
        }
    }
}

/// Challenge modes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ChallengeMode {
    /// One shared secret per platform.
    Static,
    /// One-time challenges fetched by the MDM from an NDES-compatible challenge URL.
    Dynamic,
    /// Microsoft Intune generates the challenge and validates each request.
    Intune,
    /// Each request is decided by a signed POST to your web service.
    Webhook,
}

/// `platform` subcommands.
#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing would only obscure the clap derive"
)]
pub enum PlatformCommand {
    /// Create a platform; its secrets are shown once.
    Add {
        /// Unique name.
        #[arg(long)]
        name: String,
        /// Challenge mode.
        #[arg(long, value_enum)]
        challenge: ChallengeMode,
        /// Accept single-DES requests (forbidden by RFC 8894; only for legacy clients).
        #[arg(long)]
        allow_des: bool,
        /// Regular expression with one capture group that extracts the device id from the
        /// subject CN (then each SAN); default: the token after `managementAttestation`.
        #[arg(long)]
        device_id_pattern: Option<String>,
        /// Options of the chosen challenge mode.
        #[command(flatten)]
        mode: platform::ModeArgs,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Export an MDM profile for a platform (Apple .mobileconfig, or JSON for Windows,
    /// Intune and Workspace ONE consoles).
    Profile {
        /// Platform id or name.
        id: String,
        /// The MDM the profile is for.
        #[arg(long, default_value = "apple", value_parser = values::profile_formats())]
        format: String,
        /// The static challenge to embed (scepd keeps only its hash).
        #[arg(long)]
        challenge: Option<String>,
        /// Subject template (e.g. `CN=%ComputerName% managementAttestation %HardwareUUID%`).
        #[arg(long)]
        subject: Option<String>,
    },
    /// List platforms.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `cert` subcommands.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// List issued certificates, newest first.
    List {
        /// Only this platform (id or name).
        #[arg(long)]
        platform: Option<String>,
        /// Only this status.
        #[arg(long, value_parser = values::certificate_statuses())]
        status: Option<String>,
        /// At most this many.
        #[arg(long)]
        limit: Option<u32>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke one certificate.
    Revoke {
        /// Serial, hex (as `cert list` prints it; colons allowed).
        serial: String,
        /// Revocation reason (RFC 5280).
        #[arg(long, ignore_case = true, value_parser = values::revocation_reasons())]
        reason: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// A command failure with its exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    /// Exit code (1 runtime, 2 usage/config).
    pub code: u8,
    /// Message for stderr.
    pub message: String,
}

pub(crate) fn fail(code: u8, e: impl std::fmt::Display) -> CliError {
    CliError {
        code,
        message: e.to_string(),
    }
}

pub(crate) fn open_initialized(config: &Config) -> Result<Store, CliError> {
    let store = configured_store::open_existing(config).map_err(|e| fail(1, e))?;
    if !store.is_initialized().map_err(|e| fail(1, e))? {
        return Err(fail(
            1,
            format!(
                "{} is not initialized; run `scepd init` first",
                configured_store::location(config)
            ),
        ));
    }
    Ok(store)
}

/// The platform a `--platform` or platform argument names, by id or by name; "no platform X"
/// when neither matches, so a filter with a typo fails instead of listing nothing.
pub(crate) fn named_platform(
    store: &Store,
    text: &str,
) -> Result<crate::store::Platform, CliError> {
    platforms::resolve(store, text).map_err(|e| match e {
        crate::store::StoreError::NotFound { .. } => {
            fail(1, format!("no platform {}", crate::printable::escape(text)))
        }
        other => fail(1, other),
    })
}

/// The id of the platform `text` names, when given (see [`named_platform`]).
pub(crate) fn named_platform_id(
    store: &Store,
    text: Option<&str>,
) -> Result<Option<String>, CliError> {
    text.map(|t| named_platform(store, t).map(|p| p.id))
        .transpose()
}

/// `path` under the public base URL (`public_url`, or the listen address): what goes into the
/// MDM's SCEP or challenge URL field.
pub(crate) fn public_url(config: &Config, path: &str) -> String {
    format!("{}{path}", config.public_base(config.listen))
}

pub(crate) fn print_created(created: &platforms::CreatedPlatform, config: &Config, json: bool) {
    let scep_url = public_url(config, &created.scep_path);
    if json {
        println!(
            "{}",
            json!({"platform_id": created.platform_id, "scep_path": created.scep_path, "scep_url": scep_url, "challenge": created.challenge})
        );
    } else {
        println!("platform id: {}", created.platform_id);
        println!("SCEP URL: {scep_url}");
        println!(
            "challenge (shown once, store it in your MDM now): {}",
            created.challenge
        );
    }
}

/// The command's words as typed (`platform list`), for messages: each enum variant's name,
/// which clap turns into the subcommand by lowercasing.
fn command_name(cmd: &Command) -> String {
    fn word(debug: String) -> String {
        let end = debug.find([' ', '(', '{']).unwrap_or(debug.len());
        let mut out = String::new();
        for (i, c) in debug[..end].chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }
    let (top, sub) = match cmd {
        Command::Init(_) => ("init", None),
        Command::Serve(_) => ("serve", None),
        Command::Platform(c) => ("platform", Some(format!("{c:?}"))),
        Command::Cert(c) => ("cert", Some(format!("{c:?}"))),
        Command::Device(c) => ("device", Some(format!("{c:?}"))),
        Command::Admin(c) => ("admin", Some(format!("{c:?}"))),
        Command::Ca(c) => ("ca", Some(format!("{c:?}"))),
        Command::Ra(c) => ("ra", Some(format!("{c:?}"))),
        Command::Audit(c) => ("audit", Some(format!("{c:?}"))),
        Command::Completions { .. } => ("completions", None),
    };
    match sub {
        Some(debug) => format!("{top} {}", word(debug)),
        None => top.to_owned(),
    }
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    // With --admin-url a command goes through the API or not at all: falling back to a local
    // data dir would read or change another CA than the one the operator named. `serve` is
    // the server itself and ignores it (SCEPD_ADMIN_URL may be set for the whole shell).
    if let Command::Completions { shell } = cli.command {
        // Needs no configuration, data dir or server.
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "scepd", &mut std::io::stdout());
        return Ok(());
    }
    match &cli.admin_url {
        Some(url) if !matches!(cli.command, Command::Serve(_)) => {
            if remote::try_run(url, cli.admin_token_file.as_deref(), &cli.command)? {
                return Ok(());
            }
            return Err(fail(
                2,
                format!(
                    "`scepd {}` has no admin-API form: run it on the server host without --admin-url (and SCEPD_ADMIN_URL unset)",
                    command_name(&cli.command)
                ),
            ));
        }
        _ => {}
    }
    let listen = match &cli.command {
        Command::Serve(a) => a.listen,
        _ => None,
    };
    let overrides = crate::config::Overrides {
        data_dir: cli.data_dir.clone(),
        listen,
        store_url: cli.store_url.clone(),
    };
    let mut config = Config::load(cli.config.as_deref(), overrides).map_err(|e| fail(2, e))?;
    config.key_passphrase_file_override = cli.key_passphrase_file.clone();
    match cli.command {
        Command::Init(a) => {
            let store = configured_store::open(&config).map_err(|e| fail(1, e))?;
            let keystore =
                crate::ca::keystore::Keystore::from_config(&config).map_err(|e| fail(1, e))?;
            let created = bootstrap::initialize(&config, &store, &keystore, unix_now()).map_err(
                |e| match e {
                    InitError::AlreadyInitialized(_) => fail(1, e),
                    other => fail(1, other),
                },
            )?;
            print_created(&created, &config, a.json);
            Ok(())
        }
        Command::Serve(a) => crate::server::run(config, &a.options()).map_err(|e| fail(1, e)),
        Command::Platform(cmd) => platform::run(&config, cmd),
        Command::Cert(cmd) => cert::run(&config, cmd),
        Command::Device(cmd) => device::run(&config, cmd),
        Command::Admin(cmd) => admin::run(&config, cmd),
        Command::Ca(cmd) => ca::run(&config, cmd),
        Command::Ra(cmd) => ca::run_ra(&config, cmd),
        Command::Audit(AuditCommand::List { since, json }) => {
            admin::audit(&config, since.as_deref(), json)
        }
        // Answered before the configuration is read.
        Command::Completions { .. } => Ok(()),
    }
}
