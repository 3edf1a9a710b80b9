//! `scepd ca ...` and `scepd ra rotate`: rotation on the data dir. A running server picks the
//! change up within a second (it polls the authorities' states).

use clap::Subcommand;
use scepd_pki::der::time::rfc3339;
use scepd_pki::keys::KeyAlgorithm;
use serde_json::json;

use super::{CliError, fail, open_initialized};
use crate::ca::CaHandle;
use crate::config::Config;
use crate::http::scep::unix_now;
use crate::keystore::Keystore;
use crate::rotation;

/// `ca` subcommands.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// List root, intermediates and RAs with their state (active, next, retired).
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Stage a new intermediate and RA (signed by the root); GetNextCACert announces them.
    Rotate {
        /// Key algorithm of the new intermediate (default: the current one's).
        #[arg(long)]
        key_algorithm: Option<String>,
        /// Activate automatically at this time (RFC 3339).
        #[arg(long)]
        activate_at: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Activate a staged intermediate (and its RA); the old one stays trusted, retired.
    Activate {
        /// The staged intermediate's id.
        id: String,
    },
}

/// `ra` subcommands.
#[derive(Debug, Subcommand)]
pub enum RaCommand {
    /// Replace the RA now; the old one still decrypts requests addressed to it.
    Rotate {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn handle(
    config: &Config,
    store: &crate::store::Store,
) -> Result<std::sync::Arc<CaHandle>, CliError> {
    let keystore = Keystore::from_config(config).map_err(|e| fail(1, e))?;
    CaHandle::load(store, keystore, config.include_root, unix_now()).map_err(|e| fail(1, e))
}

/// Runs a `ca` subcommand.
pub fn run(config: &Config, cmd: CaCommand) -> Result<(), CliError> {
    let store = open_initialized(config)?;
    let now = unix_now();
    match cmd {
        CaCommand::List { json } => {
            let list = store.authorities().map_err(|e| fail(1, e))?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|a| json!({"id": a.id, "role": a.role.as_str(), "state": a.state.as_str(), "subject": a.subject, "issuer_id": a.issuer_id, "not_after": rfc3339(a.not_after)}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                for a in list {
                    println!(
                        "{:<22} {:<13} {:<8} {} (until {})",
                        a.id,
                        a.role.as_str(),
                        a.state.as_str(),
                        a.subject,
                        rfc3339(a.not_after)
                    );
                }
            }
        }
        CaCommand::Rotate {
            key_algorithm,
            activate_at,
            json,
        } => {
            let h = handle(config, &store)?;
            let alg = match key_algorithm {
                Some(a) => a.parse::<KeyAlgorithm>().map_err(|e| fail(2, e))?,
                None => h
                    .get()
                    .intermediate
                    .key
                    .as_ref()
                    .map_or(KeyAlgorithm::Rsa2048, |k| k.algorithm()),
            };
            let at = match activate_at {
                Some(t) => Some(crate::admin::api::parse_rfc3339(&t).ok_or_else(|| {
                    fail(2, "--activate-at takes RFC 3339 (2026-12-01T00:00:00Z)")
                })?),
                None => None,
            };
            let (int, ra) =
                rotation::rotate_ca(&store, &h, &config.organization, alg, at, "cli", now)
                    .map_err(|e| fail(1, e))?;
            if json {
                println!(
                    "{}",
                    json!({"id": int.id, "role": "intermediate", "state": "next", "subject": int.subject, "ra_id": ra.id, "activate_at": at.map(rfc3339)})
                );
            } else {
                println!(
                    "staged {} ({}) with RA {}; activate with `scepd ca activate {}`",
                    int.id, int.subject, ra.id, int.id
                );
            }
        }
        CaCommand::Activate { id } => {
            let h = handle(config, &store)?;
            rotation::activate(&store, &h, &id, "cli", now).map_err(|e| fail(1, e))?;
            println!("activated {id}");
        }
    }
    Ok(())
}

/// Runs an `ra` subcommand.
pub fn run_ra(config: &Config, cmd: RaCommand) -> Result<(), CliError> {
    let store = open_initialized(config)?;
    let RaCommand::Rotate { json } = cmd;
    let h = handle(config, &store)?;
    let ra = rotation::rotate_ra(&store, &h, &config.organization, "cli", unix_now())
        .map_err(|e| fail(1, e))?;
    if json {
        println!(
            "{}",
            json!({"id": ra.id, "role": "ra", "state": "active", "subject": ra.subject})
        );
    } else {
        println!("RA {} is active", ra.id);
    }
    Ok(())
}
