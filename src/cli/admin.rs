//! `scepd admin token ...` and `scepd audit list`.

use clap::Subcommand;
use serde_json::json;

use super::{CliError, fail, open_initialized};
use crate::admin::tokens::{self, Scope};
use crate::clock::unix_now;
use crate::config::Config;
use crate::printable::escape;

/// `admin` subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Manage admin API bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

/// `admin token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is shown once and stored hashed.
    Create {
        /// Unique name (recorded as the actor in the audit trail).
        #[arg(long)]
        name: String,
        /// `admin` (everything) or `read` (GET only).
        #[arg(long, value_parser = super::values::token_scopes())]
        scope: String,
        /// Lifetime, e.g. `90d`, `12h`, `30m` (default: no expiry).
        #[arg(long)]
        expires_in: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by name.
    Revoke {
        /// Token name.
        name: String,
    },
}

/// Runs an `admin` subcommand.
pub fn run(config: &Config, cmd: AdminCommand) -> Result<(), CliError> {
    let store = open_initialized(config)?;
    let now = unix_now();
    match cmd {
        AdminCommand::Token(TokenCommand::Create {
            name,
            scope,
            expires_in,
            json,
        }) => {
            let scope =
                Scope::parse(&scope).ok_or_else(|| fail(2, "--scope must be admin or read"))?;
            let expires_at = match expires_in {
                Some(e) => Some(
                    scepd_pki::encoding::parse_duration(&e)
                        .and_then(|d| now.checked_add(d))
                        .ok_or_else(|| fail(2, "--expires-in takes e.g. 90d, 12h, 30m or 3600"))?,
                ),
                None => None,
            };
            let token =
                tokens::create(&store, &name, scope, expires_at, now).map_err(|e| fail(1, e))?;
            if json {
                println!(
                    "{}",
                    json!({"name": name, "scope": scope.as_str(), "token": token.as_str(), "expires_at": expires_at.map(scepd_pki::encoding::rfc3339)})
                );
            } else {
                println!(
                    "token {name} ({}), shown once: {}",
                    scope.as_str(),
                    token.as_str()
                );
            }
        }
        AdminCommand::Token(TokenCommand::List { json }) => {
            let list = store.list_admin_tokens().map_err(|e| fail(1, e))?;
            let rows: Vec<_> = list
                .iter()
                .map(|t| json!({"name": t.name, "scope": t.scope, "created_at": scepd_pki::encoding::rfc3339(t.created_at),
                    "expires_at": t.expires_at.map(scepd_pki::encoding::rfc3339), "revoked": t.revoked_at.is_some()}))
                .collect();
            if json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                for t in list {
                    println!(
                        "{:<24} {:<6} {}",
                        escape(&t.name),
                        t.scope,
                        if t.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    );
                }
            }
        }
        AdminCommand::Token(TokenCommand::Revoke { name }) => {
            store
                .revoke_admin_token(&name, now)
                .map_err(|e| fail(1, e))?;
            println!("revoked token {name}");
        }
    }
    Ok(())
}

/// Runs `audit list`.
pub fn audit(config: &Config, since: Option<&str>, json: bool) -> Result<(), CliError> {
    let store = open_initialized(config)?;
    let since = match since {
        None => 0,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .or_else(|| scepd_pki::encoding::parse_rfc3339(s))
            .ok_or_else(|| {
                fail(
                    2,
                    "--since takes unix seconds, a date (2026-11-23) or RFC 3339 (2026-11-23T00:00:00Z)",
                )
            })?,
    };
    let events = store.audit_events(since, 10_000).map_err(|e| fail(1, e))?;
    if json {
        println!("{}", serde_json::to_string(&events).unwrap_or_default());
    } else {
        for e in events {
            println!(
                "{} {:<16} {:<24} {} {}",
                scepd_pki::encoding::rfc3339(e.at),
                escape(&e.actor),
                escape(&e.action),
                escape(&e.subject),
                escape(&e.detail)
            );
        }
    }
    Ok(())
}
