//! `scepd platform ...`: create and list platforms (enrollment profiles).

use serde_json::json;

use super::{ChallengeMode, CliError, PlatformCommand, fail, open_initialized, print_created};
use crate::config::Config;
use crate::devices::identity::DevicePattern;
use crate::http::scep::unix_now;
use crate::platforms;

/// Runs a `platform` subcommand.
pub fn run(config: &Config, cmd: PlatformCommand) -> Result<(), CliError> {
    match cmd {
        PlatformCommand::Add {
            name,
            challenge: ChallengeMode::Static,
            allow_des,
            device_id_pattern,
            json,
        } => {
            let store = open_initialized(config)?;
            if let Some(p) = &device_id_pattern {
                DevicePattern::new(p).map_err(|e| fail(2, e))?;
            }
            let created = platforms::create_static(&store, &name, allow_des, unix_now())
                .map_err(|e| fail(1, e))?;
            if let Some(p) = &device_id_pattern {
                store
                    .set_device_id_pattern(&created.platform_id, Some(p))
                    .map_err(|e| fail(1, e))?;
            }
            print_created(&created, json);
            Ok(())
        }
        PlatformCommand::List { json } => {
            let store = open_initialized(config)?;
            let list = store.list_platforms().map_err(|e| fail(1, e))?;
            if json {
                let v: Vec<_> = list
                    .iter()
                    .map(|p| json!({"platform_id": p.id, "name": p.name, "challenge": p.challenge.kind(), "scep_path": platforms::scep_path(&p.id), "allow_des": p.allow_des, "created_at": scepd_pki::der::time::rfc3339(p.created_at)}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!("{:<22} {:<24} {:<8} SCEP PATH", "ID", "NAME", "MODE");
                for p in list {
                    println!(
                        "{:<22} {:<24} {:<8} {}",
                        p.id,
                        p.name,
                        p.challenge.kind(),
                        platforms::scep_path(&p.id)
                    );
                }
            }
            Ok(())
        }
    }
}
