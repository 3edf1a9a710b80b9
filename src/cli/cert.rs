//! `scepd cert ...`: inspect issued certificates.

use serde_json::json;

use super::{CertCommand, CliError, fail, open_initialized};
use crate::config::Config;
use crate::printable::escape;
use scepd_pki::revocation::RevocationReason;

use crate::clock::unix_now;
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
            let platform_id = super::named_platform_id(&store, platform.as_deref())?;
            let list = store
                .list_certificates(&CertificateFilter {
                    platform_id,
                    status,
                    limit,
                    ..Default::default()
                })
                .map_err(|e| fail(1, e))?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|c| json!({"serial": c.serial_hex(), "subject": c.subject, "sans": c.sans, "device": c.device_id, "platform_id": c.platform_id, "status": c.status.as_str(), "not_before": scepd_pki::encoding::rfc3339(c.not_before), "not_after": scepd_pki::encoding::rfc3339(c.not_after), "transaction_id": c.transaction_id}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                // Table cells are escaped (subjects come from CSRs); --json stays exact.
                println!(
                    "{:<34} {:<8} {:<21} {:<22} SUBJECT",
                    "SERIAL", "STATUS", "NOT AFTER", "PLATFORM"
                );
                for c in list {
                    println!(
                        "{:<34} {:<8} {:<21} {:<22} {}",
                        c.serial_hex(),
                        c.status.as_str(),
                        scepd_pki::encoding::rfc3339(c.not_after),
                        escape(&c.platform_id),
                        escape(&c.subject)
                    );
                }
            }
            Ok(())
        }
        CertCommand::Revoke {
            serial,
            reason,
            json,
        } => {
            let store = open_initialized(config)?;
            let reason = RevocationReason::parse(&reason).ok_or_else(|| {
                fail(2, "--reason must be one of unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn")
            })?;
            let hex: String = serial.chars().filter(|c| *c != ':').collect();
            if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(fail(2, "SERIAL must be hexadecimal"));
            }
            let found = store.find_serial(&hex).map_err(|e| fail(1, e))?;
            let [(issuer, serial_bytes)] = found.as_slice() else {
                return Err(fail(
                    1,
                    if found.is_empty() {
                        "no certificate with that serial"
                    } else {
                        "serial is ambiguous across CAs"
                    },
                ));
            };
            let changed = store
                .revoke_one(issuer, serial_bytes, reason.as_str(), "cli", unix_now())
                .map_err(|e| fail(1, e))?;
            if json {
                println!(
                    "{}",
                    json!({"serial": scepd_pki::hex(serial_bytes), "status": "revoked", "reason": reason.as_str(), "changed": changed})
                );
            } else if changed {
                println!("revoked {} ({reason})", scepd_pki::hex(serial_bytes));
            } else {
                println!("{} was already revoked", scepd_pki::hex(serial_bytes));
            }
            Ok(())
        }
    }
}
