//! `scepd cert ...`: inspect issued certificates.

use serde_json::json;

use super::{CertCommand, CliError, fail, open_initialized};
use crate::config::Config;
use crate::store::{CertStatus, CertificateFilter};

/// Runs a `cert` subcommand.
pub fn run(config: &Config, cmd: CertCommand) -> Result<(), CliError> {
    match cmd {
        CertCommand::List {
            platform,
            status,
            limit,
            json,
        } => {
            let store = open_initialized(config)?;
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(
                    CertStatus::parse(s)
                        .ok_or_else(|| fail(2, "--status must be valid or revoked"))?,
                ),
            };
            let list = store
                .list_certificates(&CertificateFilter {
                    platform_id: platform,
                    status,
                    limit,
                })
                .map_err(|e| fail(1, e))?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|c| json!({"serial": c.serial_hex(), "subject": c.subject, "sans": c.sans, "device": c.device_id, "platform_id": c.platform_id, "status": c.status.as_str(), "not_before": scepd_pki::der::time::rfc3339(c.not_before), "not_after": scepd_pki::der::time::rfc3339(c.not_after), "transaction_id": c.transaction_id}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!(
                    "{:<34} {:<8} {:<21} {:<22} SUBJECT",
                    "SERIAL", "STATUS", "NOT AFTER", "PLATFORM"
                );
                for c in list {
                    println!(
                        "{:<34} {:<8} {:<21} {:<22} {}",
                        c.serial_hex(),
                        c.status.as_str(),
                        scepd_pki::der::time::rfc3339(c.not_after),
                        c.platform_id,
                        c.subject
                    );
                }
            }
            Ok(())
        }
    }
}
