//! `scepd ca ...` and `scepd ra rotate`: rotation on the data dir. A running server picks the
//! change up within a second (it polls the authorities' states).

use clap::Subcommand;
use scepd_pki::encoding::rfc3339;
use scepd_pki::keys::KeyAlgorithm;
use serde_json::json;

use super::{CliError, fail, open_initialized};
use crate::ca::CaHandle;
use crate::ca::keystore::Keystore;
use crate::ca::rotation;
use crate::clock::unix_now;
use crate::config::Config;

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
        #[arg(long, ignore_case = true, value_parser = super::values::key_algorithms())]
        key_algorithm: Option<String>,
        /// Activate automatically at this time (RFC 3339).
        #[arg(long)]
        activate_at: Option<String>,
        /// Offline root, step 1: write the new intermediate's CSR (PEM) here instead of signing
        /// with the root key.
        #[arg(long, conflicts_with = "import_cert")]
        csr_out: Option<std::path::PathBuf>,
        /// Offline root, step 2: import the intermediate certificate (PEM or DER) the root
        /// signed; needs `--id` from step 1.
        #[arg(long, requires = "id")]
        import_cert: Option<std::path::PathBuf>,
        /// The key id printed by `--csr-out`.
        #[arg(long)]
        id: Option<String>,
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
    CaHandle::load(store, keystore, crate::ca::Publish::of(config), unix_now())
        .map_err(|e| fail(1, e))
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
                        crate::printable::escape(&a.subject),
                        rfc3339(a.not_after)
                    );
                }
            }
        }
        CaCommand::Rotate {
            key_algorithm,
            activate_at,
            csr_out,
            import_cert,
            id,
            json,
        } => {
            let h = handle(config, &store)?;
            let alg = match key_algorithm {
                Some(a) => a.parse::<KeyAlgorithm>().map_err(|e| fail(2, e))?,
                None => h.get().intermediate.key.algorithm(),
            };
            let at = match activate_at {
                Some(t) => Some(scepd_pki::encoding::parse_rfc3339(&t).ok_or_else(|| {
                    fail(2, "--activate-at takes RFC 3339 (2026-12-01T00:00:00Z)")
                })?),
                None => None,
            };
            if let Some(path) = csr_out {
                let (id, csr) = rotation::intermediate_csr(&h, &config.organization, alg)
                    .map_err(|e| fail(1, e))?;
                std::fs::write(&path, pem("CERTIFICATE REQUEST", &csr))
                    .map_err(|e| fail(1, format!("{}: {e}", path.display())))?;
                if json {
                    println!("{}", json!({"id": id, "csr": path.display().to_string()}));
                } else {
                    println!(
                        "wrote {} for key {id}; sign it with the root (CA:TRUE, pathlen 0, keyCertSign + cRLSign + digitalSignature), then: scepd ca rotate --import-cert CERT --id {id}",
                        path.display()
                    );
                }
                return Ok(());
            }
            let (int, ra) = match (import_cert, id) {
                (Some(path), Some(id)) => {
                    let raw = std::fs::read(&path)
                        .map_err(|e| fail(1, format!("{}: {e}", path.display())))?;
                    rotation::import_intermediate(
                        &store,
                        &h,
                        &config.organization,
                        &id,
                        &from_pem_or_der(&raw),
                        at,
                        "cli",
                        now,
                    )
                    .map_err(|e| fail(1, e))?
                }
                _ => rotation::rotate_ca(&store, &h, &config.organization, alg, at, "cli", now)
                    .map_err(|e| fail(1, e))?,
            };
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

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = scepd_pki::encoding::encode_base64(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// PEM (first block) or DER.
fn from_pem_or_der(raw: &[u8]) -> Vec<u8> {
    match std::str::from_utf8(raw) {
        Ok(text) if text.contains("-----BEGIN") => {
            let b64: String = text
                .lines()
                .skip_while(|l| !l.starts_with("-----BEGIN"))
                .skip(1)
                .take_while(|l| !l.starts_with("-----END"))
                .collect();
            scepd_pki::encoding::decode_base64_lenient(b64.as_bytes()).unwrap_or_default()
        }
        _ => raw.to_vec(),
    }
}
