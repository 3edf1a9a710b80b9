//! `--admin-url`: the CLI's mutating commands sent to a running server's admin API (so the
//! audit trail names the token, and TLS/remote servers work). Without `--admin-url` they work
//! on the data dir directly and the server picks the change up within a second.

use std::time::Duration;

use hyper::Method;
use serde_json::{Value, json};

use super::{CertCommand, CliError, Command, PlatformCommand, fail};
use crate::outbound::{Outbound, OutboundRequest};
use scepd_pki::encoding::encode_segment as seg;

/// Env var holding the admin token for `--admin-url`.
pub const TOKEN_ENV: &str = "SCEPD_ADMIN_TOKEN";

fn read_secret(path: &std::path::Path) -> Result<String, CliError> {
    crate::secrets::read_operator_file(path)
        .map(|s| s.to_string())
        .map_err(|e| fail(2, format!("{}: {e}", path.display())))
}

/// The admin API call for a mutating command, or None when the command has no remote form.
fn request_for(cmd: &Command) -> Result<Option<(Method, String, Value, bool)>, CliError> {
    use super::device::DeviceCommand as D;
    Ok(Some(match cmd {
        Command::Platform(PlatformCommand::Add {
            name,
            challenge,
            allow_des,
            mode,
            device_id_pattern,
            json,
        }) => {
            let mut body = json!({"name": name, "challenge": format!("{challenge:?}").to_ascii_lowercase(), "allow_des": allow_des,
                "device_id_pattern": device_id_pattern, "challenge_ttl": mode.challenge_ttl, "max_outstanding": mode.max_outstanding,
                "aad_tenant": mode.aad_tenant, "aad_client_id": mode.aad_client_id, "intune_login_url": mode.intune_login_url,
                "intune_graph_url": mode.intune_graph_url, "webhook_url": mode.webhook_url});
            if let Some(f) = &mode.aad_client_secret_file {
                body["aad_client_secret"] = json!(read_secret(f)?);
            }
            if let Some(f) = &mode.webhook_secret_file {
                body["webhook_secret"] = json!(read_secret(f)?);
            }
            (Method::POST, "/admin/v1/platforms".into(), body, *json)
        }
        Command::Cert(CertCommand::Revoke {
            serial,
            reason,
            json,
        }) => (
            Method::POST,
            format!("/admin/v1/certificates/{}/revoke", seg(serial)),
            json!({"reason": reason}),
            *json,
        ),
        Command::Device(d) => {
            let (target, action, reason) = match d {
                D::Suspend(t) => (t, "suspend", None),
                D::Unsuspend(t) => (t, "unsuspend", None),
                D::Reactivate(t) => (t, "reactivate", None),
                D::Deactivate { target, reason } => (target, "deactivate", reason.clone()),
                D::Delete { target, reason } => (target, "delete", reason.clone()),
                D::List { .. } | D::Show(_) => return Ok(None),
            };
            let platform = target
                .platform
                .clone()
                .ok_or_else(|| fail(2, "with --admin-url, pass --platform for device actions"))?;
            let body = reason.map_or(Value::Null, |r| json!({"reason": r}));
            // Ids are encoded: a device id like `X/deactivate?y` must stay one path segment.
            (
                Method::POST,
                format!(
                    "/admin/v1/devices/{}/{}/{action}",
                    seg(&platform),
                    seg(&target.device)
                ),
                body,
                target.json,
            )
        }
        Command::Ca(super::ca::CaCommand::Rotate {
            key_algorithm,
            activate_at,
            csr_out: None,
            import_cert: None,
            json,
            ..
        }) => (
            Method::POST,
            "/admin/v1/ca/rotate".into(),
            json!({"key_algorithm": key_algorithm, "activate_at": activate_at}),
            *json,
        ),
        Command::Ca(super::ca::CaCommand::Activate { id }) => (
            Method::POST,
            format!("/admin/v1/ca/{}/activate", seg(id)),
            Value::Null,
            false,
        ),
        Command::Ra(super::ca::RaCommand::Rotate { json }) => (
            Method::POST,
            "/admin/v1/ra/rotate".into(),
            Value::Null,
            *json,
        ),
        _ => return Ok(None),
    }))
}

/// Runs `cmd` through the admin API at `base` if it has a remote form; Ok(false) otherwise.
pub fn try_run(
    base: &str,
    token_file: Option<&std::path::Path>,
    cmd: &Command,
) -> Result<bool, CliError> {
    let Some((method, path, body, json_out)) = request_for(cmd)? else {
        return Ok(false);
    };
    let token = match (std::env::var(TOKEN_ENV).ok(), token_file) {
        (Some(t), _) if !t.is_empty() => t,
        (_, Some(f)) => read_secret(f)?,
        _ => {
            return Err(fail(
                2,
                format!("--admin-url needs a token: set {TOKEN_ENV} or --admin-token-file"),
            ));
        }
    };
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let mut req = if method == Method::POST {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        OutboundRequest::post(&url, "application/json", body)
    } else {
        OutboundRequest::get(&url)
    };
    req = req.secret_header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(1, e))?;
    let resp = runtime
        .block_on(Outbound::new(Duration::from_secs(60)).send(req))
        .map_err(|e| fail(1, format!("admin API at {base}: {e}")))?;
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    if !resp.is_success() {
        let msg = v["message"].as_str().unwrap_or("request failed");
        return Err(fail(1, format!("admin API: {} ({})", msg, resp.status)));
    }
    if json_out {
        println!("{v}");
    } else {
        // JSON escapes C0 controls but not C1 or bidi characters.
        let pretty = serde_json::to_string_pretty(&v).unwrap_or_default();
        println!("{}", crate::printable::escape(&pretty));
    }
    Ok(true)
}
