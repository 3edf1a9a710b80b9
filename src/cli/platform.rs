//! `scepd platform ...`: create and list platforms (enrollment profiles).

use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use super::{
    ChallengeMode, CliError, PlatformCommand, fail, open_initialized, print_created, public_url,
};
use crate::challenge::dynamic;
use crate::challenge::intune::client;
use crate::clock::unix_now;
use crate::config::Config;
use crate::devices::identity::DevicePattern;
use crate::platforms::{self, CreatedDelegated, DynamicOptions, IntuneOptions, NewPlatform};
use crate::printable::escape;
use crate::secrets::{self, SecretFiles};

/// Options that belong to one challenge mode; giving one to another mode is a usage error.
#[derive(Debug, Default, Args)]
pub struct ModeArgs {
    /// dynamic: how long a fetched challenge stays valid (e.g. 60m, 1h, 3600s; 1s..7d).
    #[arg(long, value_name = "DURATION")]
    pub challenge_ttl: Option<String>,
    /// dynamic: at most this many unexpired, unused challenges at once (default 1000).
    #[arg(long, value_name = "N")]
    pub max_outstanding: Option<u32>,
    /// intune: Azure AD (Entra ID) tenant, e.g. contoso.onmicrosoft.com or its GUID.
    #[arg(long, value_name = "TENANT")]
    pub aad_tenant: Option<String>,
    /// intune: application (client) id of the app registration.
    #[arg(long, value_name = "ID")]
    pub aad_client_id: Option<String>,
    /// intune: file holding the app's client secret (copied into the data dir's secrets/,
    /// never into the database).
    #[arg(long, value_name = "FILE")]
    pub aad_client_secret_file: Option<PathBuf>,
    /// intune: OAuth2 authority (default https://login.microsoftonline.com; for sovereign
    /// clouds and tests).
    #[arg(long, value_name = "URL")]
    pub intune_login_url: Option<String>,
    /// intune: Microsoft Graph endpoint (default https://graph.microsoft.com; for sovereign
    /// clouds and tests).
    #[arg(long, value_name = "URL")]
    pub intune_graph_url: Option<String>,
    /// webhook: where each request is POSTed for a decision (https, or http to loopback).
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// webhook: file holding the HMAC-SHA256 key that signs the POSTs (copied into the data
    /// dir's secrets/, never into the database).
    #[arg(long, value_name = "FILE")]
    pub webhook_secret_file: Option<PathBuf>,
}

impl ModeArgs {
    /// The flags given, by name, for "not valid with this mode" messages.
    fn given(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.challenge_ttl.is_some() {
            v.push("--challenge-ttl");
        }
        if self.max_outstanding.is_some() {
            v.push("--max-outstanding");
        }
        for (flag, given) in [
            ("--aad-tenant", self.aad_tenant.is_some()),
            ("--aad-client-id", self.aad_client_id.is_some()),
            (
                "--aad-client-secret-file",
                self.aad_client_secret_file.is_some(),
            ),
            ("--intune-login-url", self.intune_login_url.is_some()),
            ("--intune-graph-url", self.intune_graph_url.is_some()),
        ] {
            if given {
                v.push(flag);
            }
        }
        if self.webhook_url.is_some() {
            v.push("--webhook-url");
        }
        if self.webhook_secret_file.is_some() {
            v.push("--webhook-secret-file");
        }
        v
    }

    /// Refuses flags of other modes.
    fn only(&self, mode: &str, allowed: &[&str]) -> Result<(), CliError> {
        match self.given().into_iter().find(|f| !allowed.contains(f)) {
            Some(f) => Err(fail(2, format!("{f} is not valid with --challenge {mode}"))),
            None => Ok(()),
        }
    }
}

fn usage(e: impl std::fmt::Display) -> CliError {
    fail(2, e)
}

/// A required option of `mode`.
fn required<'a, T: ?Sized>(v: Option<&'a T>, flag: &str, mode: &str) -> Result<&'a T, CliError> {
    v.ok_or_else(|| usage(format!("--challenge {mode} needs {flag}")))
}

fn read_secret_file(path: &Path, flag: &str) -> Result<zeroize::Zeroizing<String>, CliError> {
    secrets::read_operator_file(path).map_err(|e| usage(format!("{flag}: {e}")))
}

fn print_delegated(
    created: &CreatedDelegated,
    config: &Config,
    json: bool,
) -> Result<(), CliError> {
    let scep_url = public_url(config, &created.scep_path);
    if json {
        let mut v = serde_json::to_value(created).map_err(|e| fail(1, e))?;
        v["scep_url"] = serde_json::json!(scep_url);
        println!("{v}");
    } else {
        println!("platform id: {}", created.platform_id);
        println!("SCEP URL: {scep_url}");
    }
    Ok(())
}

/// Runs a `platform` subcommand.
pub fn run(config: &Config, cmd: PlatformCommand) -> Result<(), CliError> {
    match cmd {
        PlatformCommand::Add {
            name,
            challenge,
            allow_des,
            device_id_pattern,
            mode,
            json,
        } => {
            if let Some(p) = &device_id_pattern {
                DevicePattern::new(p).map_err(|e| fail(2, e))?;
            }
            add(config, &name, challenge, allow_des, &mode, json)?;
            if let Some(p) = &device_id_pattern {
                // Names are unique: find the platform just created and attach its pattern.
                let store = open_initialized(config)?;
                let created = store
                    .platform_by_name(&name)
                    .map_err(|e| fail(1, e))?
                    .ok_or_else(|| fail(1, "platform vanished after creation"))?;
                store
                    .set_device_id_pattern(&created.id, Some(p))
                    .map_err(|e| fail(1, e))?;
            }
            Ok(())
        }
        PlatformCommand::List { json } => list(config, json),
        PlatformCommand::Profile {
            id,
            format,
            challenge,
            subject,
        } => {
            let store = open_initialized(config)?;
            let format = crate::profiles::Format::parse(&format).ok_or_else(|| {
                fail(
                    2,
                    "--format must be apple, windows, intune or workspace-one",
                )
            })?;
            let p = super::named_platform(&store, &id)?;
            let id = p.id.clone();
            let root = store
                .active_authority(crate::store::CaRole::Root)
                .map_err(|e| fail(1, e))?
                .ok_or_else(|| fail(1, "no active root CA"))?;
            let base = config.public_base(config.listen);
            let input = crate::profiles::ProfileInput {
                platform: &p,
                scep_url: format!("{base}{}", platforms::scep_path(&id)),
                challenge_url: (p.challenge.kind() == "dynamic")
                    .then(|| format!("{base}{}", platforms::challenge_url_path(&id))),
                challenge: challenge.as_deref(),
                root_der: &root.cert_der,
                subject: subject.as_deref(),
            };
            print!("{}", crate::profiles::render(&input, format).1);
            Ok(())
        }
    }
}

fn add(
    config: &Config,
    name: &str,
    challenge: ChallengeMode,
    allow_des: bool,
    mode: &ModeArgs,
    json: bool,
) -> Result<(), CliError> {
    match challenge {
        ChallengeMode::Static => {
            mode.only("static", &[])?;
            let store = open_initialized(config)?;
            let created = platforms::create_static(&store, name, allow_des, unix_now())
                .map_err(|e| fail(1, e))?;
            print_created(&created, config, json);
        }
        ChallengeMode::Dynamic => {
            mode.only("dynamic", &["--challenge-ttl", "--max-outstanding"])?;
            let ttl_secs = match &mode.challenge_ttl {
                None => dynamic::DEFAULT_TTL_SECS,
                Some(t) => dynamic::parse_ttl(t).ok_or_else(|| {
                    usage(format!(
                        "invalid --challenge-ttl {t:?}: use e.g. 60m, 1h or 3600s (1 second to 7 days)"
                    ))
                })?,
            };
            let max_outstanding = mode
                .max_outstanding
                .unwrap_or(dynamic::DEFAULT_MAX_OUTSTANDING);
            if max_outstanding == 0 {
                return Err(usage("--max-outstanding must be at least 1"));
            }
            let store = open_initialized(config)?;
            let options = DynamicOptions {
                ttl_secs,
                max_outstanding,
            };
            let created = platforms::create_dynamic(&store, name, allow_des, options, unix_now())
                .map_err(|e| fail(1, e))?;
            let scep_url = public_url(config, &created.scep_path);
            let challenge_url = public_url(config, &created.challenge_url_path);
            if json {
                let mut v = serde_json::to_value(&created).map_err(|e| fail(1, e))?;
                v["scep_url"] = serde_json::json!(scep_url);
                v["challenge_url"] = serde_json::json!(challenge_url);
                println!("{v}");
            } else {
                println!("platform id: {}", created.platform_id);
                println!("SCEP URL: {scep_url}");
                println!("challenge URL: {challenge_url}");
                println!("challenge URL user name: {}", created.username);
                println!(
                    "challenge URL password (shown once, store it in your MDM now): {}",
                    created.password
                );
            }
        }
        ChallengeMode::Intune => {
            mode.only(
                "intune",
                &[
                    "--aad-tenant",
                    "--aad-client-id",
                    "--aad-client-secret-file",
                    "--intune-login-url",
                    "--intune-graph-url",
                ],
            )?;
            let tenant = required(mode.aad_tenant.as_deref(), "--aad-tenant", "intune")?;
            let client_id = required(mode.aad_client_id.as_deref(), "--aad-client-id", "intune")?;
            let file = required(
                mode.aad_client_secret_file.as_deref(),
                "--aad-client-secret-file",
                "intune",
            )?;
            let secret = read_secret_file(file, "--aad-client-secret-file")?;
            let options = IntuneOptions {
                tenant: tenant.to_owned(),
                client_id: client_id.to_owned(),
                login_url: mode
                    .intune_login_url
                    .clone()
                    .unwrap_or_else(|| client::DEFAULT_LOGIN_URL.to_owned()),
                graph_url: mode
                    .intune_graph_url
                    .clone()
                    .unwrap_or_else(|| client::DEFAULT_GRAPH_URL.to_owned()),
            };
            let store = open_initialized(config)?;
            let new = NewPlatform {
                name,
                allow_des,
                now: unix_now(),
            };
            let secrets = SecretFiles::new(&config.data_dir);
            let created = platforms::create_intune(&store, &secrets, new, &options, &secret)
                .map_err(|e| match e {
                    platforms::PlatformError::BadUrl { .. } => usage(e),
                    other => fail(1, other),
                })?;
            print_delegated(&created, config, json)?;
        }
        ChallengeMode::Webhook => {
            mode.only("webhook", &["--webhook-url", "--webhook-secret-file"])?;
            let url = required(mode.webhook_url.as_deref(), "--webhook-url", "webhook")?;
            let file = required(
                mode.webhook_secret_file.as_deref(),
                "--webhook-secret-file",
                "webhook",
            )?;
            let secret = read_secret_file(file, "--webhook-secret-file")?;
            platforms::checked_url("--webhook-url", url).map_err(usage)?;
            let store = open_initialized(config)?;
            let created = platforms::create_webhook(
                &store,
                &SecretFiles::new(&config.data_dir),
                NewPlatform {
                    name,
                    allow_des,
                    now: unix_now(),
                },
                url,
                &secret,
            )
            .map_err(|e| fail(1, e))?;
            print_delegated(&created, config, json)?;
        }
    }
    Ok(())
}

fn list(config: &Config, json: bool) -> Result<(), CliError> {
    let store = open_initialized(config)?;
    let list = store.list_platforms().map_err(|e| fail(1, e))?;
    if json {
        let v: Vec<_> = list
            .iter()
            .map(|p| {
                let mut v = json!({"platform_id": p.id, "name": p.name, "challenge": p.challenge.kind(), "scep_path": platforms::scep_path(&p.id), "allow_des": p.allow_des, "created_at": scepd_pki::encoding::rfc3339(p.created_at)});
                if let crate::store::ChallengeConfig::Webhook(w) = &p.challenge {
                    v["webhook_url"] = json!(w.url);
                }
                if let crate::store::ChallengeConfig::Intune(i) = &p.challenge {
                    v["aad_tenant"] = json!(i.tenant);
                    v["aad_client_id"] = json!(i.client_id);
                    v["intune_login_url"] = json!(i.login_url);
                    v["intune_graph_url"] = json!(i.graph_url);
                }
                if let Some(d) = dynamic::settings(p) {
                    v["challenge_url_path"] = json!(platforms::challenge_url_path(&p.id));
                    v["username"] = json!(d.username);
                    v["challenge_ttl_secs"] = json!(d.ttl_secs);
                    v["max_outstanding"] = json!(d.max_outstanding);
                }
                v
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
    } else {
        println!("{:<22} {:<24} {:<8} SCEP PATH", "ID", "NAME", "MODE");
        for p in list {
            println!(
                "{:<22} {:<24} {:<8} {}",
                escape(&p.id),
                escape(&p.name),
                p.challenge.kind(),
                escape(&platforms::scep_path(&p.id))
            );
        }
    }
    Ok(())
}
