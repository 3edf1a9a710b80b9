//! `scepd device ...`: the registry and its lifecycle actions.

use clap::{Args, Subcommand};
use scepd_pki::revocation::RevocationReason;
use serde_json::json;

use super::{CliError, fail, open_initialized};
use crate::clock::unix_now;
use crate::config::Config;
use crate::devices::{self, Action};
use crate::printable::escape;
use crate::store::{CertificateFilter, Device, DeviceState, Store};

/// Which device.
#[derive(Debug, Args)]
pub struct Target {
    /// Device id (as `device list` shows it).
    pub device: String,
    /// Platform id or name, when the device id exists on several platforms.
    #[arg(long)]
    pub platform: Option<String>,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `device` subcommands.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// List devices.
    List {
        /// Only this platform (id or name).
        #[arg(long)]
        platform: Option<String>,
        /// Only this state.
        #[arg(long, value_parser = super::values::device_states())]
        state: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show a device and its certificates.
    Show(Target),
    /// Bar enrollment temporarily; certificates stay good.
    Suspend(Target),
    /// Lift a suspension.
    Unsuspend(Target),
    /// Lost or compromised: revoke its certificates and bar enrollment.
    Deactivate {
        #[command(flatten)]
        target: Target,
        /// Revocation reason (default cessationOfOperation; keyCompromise for stolen keys).
        #[arg(long, ignore_case = true, value_parser = super::values::revocation_reasons())]
        reason: Option<String>,
    },
    /// Allow enrollment again (its old certificates stay revoked).
    Reactivate(Target),
    /// Remove for good and revoke its certificates.
    Delete {
        #[command(flatten)]
        target: Target,
        /// Revocation reason (default cessationOfOperation).
        #[arg(long, ignore_case = true, value_parser = super::values::revocation_reasons())]
        reason: Option<String>,
    },
}

fn device_json(d: &Device) -> serde_json::Value {
    json!({
        "platform_id": d.platform_id, "device_id": d.device_id, "user": d.user, "state": d.state.as_str(),
        "created_at": scepd_pki::encoding::rfc3339(d.created_at), "updated_at": scepd_pki::encoding::rfc3339(d.updated_at),
    })
}

fn resolve(store: &Store, t: &Target) -> Result<Device, CliError> {
    let platform = super::named_platform_id(store, t.platform.as_deref())?;
    let found = store
        .list_devices(platform.as_deref(), Some(&t.device), None)
        .map_err(|e| fail(1, e))?;
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(fail(1, format!("no device {:?}", t.device))),
        _ => Err(fail(
            1,
            format!(
                "device {:?} exists on several platforms: pass --platform",
                t.device
            ),
        )),
    }
}

fn act(config: &Config, t: &Target, action: Action, reason: Option<&str>) -> Result<(), CliError> {
    let store = open_initialized(config)?;
    let reason = match reason {
        Some(r) => Some(RevocationReason::parse(r).ok_or_else(|| {
            fail(
                2,
                "unknown --reason (e.g. keyCompromise, cessationOfOperation)",
            )
        })?),
        None => None,
    };
    let d = resolve(&store, t)?;
    let applied = devices::apply(
        &store,
        &d.platform_id,
        &d.device_id,
        action,
        reason,
        "cli",
        unix_now(),
    )
    .map_err(|e| match e {
        crate::store::StoreError::WrongDeviceState { state } => fail(
            1,
            format!("cannot {} a device that is {state}", action.name()),
        ),
        other => fail(1, other),
    })?;
    if t.json {
        let mut v = device_json(&applied.device);
        v["revoked"] = json!(applied.revoked);
        println!("{v}");
    } else {
        println!(
            "{} {} is now {} ({} certificate(s) revoked)",
            escape(&d.platform_id),
            escape(&d.device_id),
            applied.device.state.as_str(),
            applied.revoked
        );
    }
    Ok(())
}

/// Runs a `device` subcommand.
pub fn run(config: &Config, cmd: DeviceCommand) -> Result<(), CliError> {
    match cmd {
        DeviceCommand::List {
            platform,
            state,
            json,
        } => {
            let store = open_initialized(config)?;
            let state = match state.as_deref() {
                Some(s) => Some(DeviceState::parse(s).ok_or_else(|| {
                    fail(
                        2,
                        "--state must be active, suspended, deactivated or deleted",
                    )
                })?),
                None => None,
            };
            let platform = super::named_platform_id(&store, platform.as_deref())?;
            let list = store
                .list_devices(platform.as_deref(), None, state)
                .map_err(|e| fail(1, e))?;
            if json {
                println!(
                    "{}",
                    serde_json::Value::Array(list.iter().map(device_json).collect())
                );
            } else {
                // Table cells are escaped (ids come from CSRs); --json stays exact.
                println!("{:<22} {:<36} {:<12} USER", "PLATFORM", "DEVICE", "STATE");
                for d in list {
                    println!(
                        "{:<22} {:<36} {:<12} {}",
                        escape(&d.platform_id),
                        escape(&d.device_id),
                        d.state.as_str(),
                        escape(d.user.as_deref().unwrap_or_default())
                    );
                }
            }
            Ok(())
        }
        DeviceCommand::Show(t) => {
            let store = open_initialized(config)?;
            let d = resolve(&store, &t)?;
            let certs: Vec<_> = store
                .list_certificates(&CertificateFilter { platform_id: Some(d.platform_id.clone()), device_id: Some(d.device_id.clone()), ..Default::default() })
                .map_err(|e| fail(1, e))?
                .into_iter()
                .map(|c| json!({"serial": c.serial_hex(), "status": c.status.as_str(), "not_after": scepd_pki::encoding::rfc3339(c.not_after), "revocation_reason": c.revocation_reason}))
                .collect();
            let mut v = device_json(&d);
            v["certificates"] = json!(certs);
            if t.json {
                println!("{v}");
            } else {
                // JSON escapes C0 controls but not C1 or bidi characters.
                let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
                println!("{}", escape(&pretty));
            }
            Ok(())
        }
        DeviceCommand::Suspend(t) => act(config, &t, Action::Suspend, None),
        DeviceCommand::Unsuspend(t) => act(config, &t, Action::Unsuspend, None),
        DeviceCommand::Deactivate { target, reason } => {
            act(config, &target, Action::Deactivate, reason.as_deref())
        }
        DeviceCommand::Reactivate(t) => act(config, &t, Action::Reactivate, None),
        DeviceCommand::Delete { target, reason } => {
            act(config, &target, Action::Delete, reason.as_deref())
        }
    }
}
