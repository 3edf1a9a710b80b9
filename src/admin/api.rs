//! `/admin/v1/*` handlers. Mutations are audited with the token's name as actor.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use scepd_pki::der::time::rfc3339;
use scepd_pki::revocation::RevocationReason;
use serde_json::{Value, json};

use super::tokens::Caller;
use super::{error, json_response};
use crate::ca::rotation;
use crate::clock::unix_now;
use crate::devices::identity::DevicePattern;
use crate::devices::{self, Action};
use crate::error::HttpFailure;
use crate::http::HttpResponse;
use crate::platforms;
use crate::store::{CertStatus, CertificateFilter, DeviceState, Store, StoreError};
use scepd_pki::keys::KeyAlgorithm;

const MAX_BODY: usize = 64 * 1024;

/// Routes an authenticated `/admin/v1/` request.
pub async fn route(
    admin: Arc<super::AdminApp>,
    req: Request<Incoming>,
    caller: Caller,
) -> HttpResponse {
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let body = if method == Method::POST {
        match admin.app.read_body(req.into_body(), MAX_BODY).await {
            Ok(b) if b.is_empty() => Value::Null,
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(v) => v,
                Err(e) => return error(400, "bad_request", format!("invalid JSON: {e}")),
            },
            Err(HttpFailure::TooLarge) => {
                return error(413, "too_large", "request body too large");
            }
            Err(HttpFailure::RequestTimeout) => {
                let mut r = error(408, "timeout", "request body not received in time");
                crate::http::close_after(&mut r);
                return r;
            }
            Err(e) => return error(400, "bad_request", e.to_string()),
        }
    } else {
        Value::Null
    };
    let parts = match path_segments(&path) {
        Ok(p) => p,
        Err(e) => return error(400, "bad_request", format!("invalid path: {e}")),
    };
    let result = tokio::task::spawn_blocking(move || {
        dispatch(&admin, &method, &parts, &query, &body, &caller)
    })
    .await;
    match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        Err(e) => error(500, "internal", format!("worker failed: {e}")),
    }
}

/// The segments after `/admin/v1/`, each percent-decoded exactly once. The raw path is split
/// first, so a decoded `/` (`%2F`) stays inside its segment (part of an id) and an id can
/// never add segments or reach another endpoint.
fn path_segments(path: &str) -> Result<Vec<String>, crate::percent::PercentError> {
    path.trim_start_matches("/admin/v1/")
        .split('/')
        .map(crate::percent::decode_segment)
        .collect()
}

/// API errors, mapped to status codes in one place.
#[derive(Debug)]
enum ApiError {
    NotFound(String),
    BadRequest(String),
    Conflict(String),
    Internal(String),
}

impl ApiError {
    fn into_response(self) -> HttpResponse {
        match self {
            Self::NotFound(m) => error(404, "not_found", m),
            Self::BadRequest(m) => error(400, "bad_request", m),
            Self::Conflict(m) => error(409, "conflict", m),
            Self::Internal(m) => {
                tracing::error!(detail = %m, "admin API internal error");
                error(500, "internal", "internal error")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, id } => Self::NotFound(format!("no {what} {id}")),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::WrongDeviceState { state } => Self::Conflict(format!("device is {state}")),
            other => Self::Internal(other.to_string()),
        }
    }
}

fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    scepd_pki::scep::http::query_param(query, name).filter(|v| !v.is_empty())
}

fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

fn dispatch(
    admin: &super::AdminApp,
    method: &Method,
    parts: &[String],
    query: &str,
    body: &Value,
    caller: &Caller,
) -> Result<HttpResponse, ApiError> {
    let (app, data_dir, organization) = (
        admin.app.as_ref(),
        admin.data_dir.as_path(),
        admin.organization.as_str(),
    );
    let store = app.authority.store();
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    let now = unix_now();
    let actor = format!("token:{}", caller.name);
    match (method, p.as_slice()) {
        (&Method::GET, ["platforms"]) => {
            let list: Vec<Value> = store.list_platforms()?.iter().map(platform_json).collect();
            Ok(json_response(200, &json!(list)))
        }
        (&Method::POST, ["platforms"]) => {
            let name = str_field(body, "name")
                .ok_or_else(|| ApiError::BadRequest("name is required".into()))?;
            let pattern = str_field(body, "device_id_pattern");
            if let Some(p) = pattern {
                DevicePattern::new(p).map_err(|e| ApiError::BadRequest(e.to_string()))?;
            }
            let allow_des = body
                .get("allow_des")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let created = create_platform(store, data_dir, name, allow_des, body, now)?;
            let id = created["platform_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if let Some(p) = pattern {
                store.set_device_id_pattern(&id, Some(p))?;
            }
            store.append_audit(now, &actor, "platform.created", &id, &json!({"name": name, "challenge": str_field(body, "challenge").unwrap_or("static")}).to_string())?;
            Ok(json_response(201, &created))
        }
        (&Method::GET, ["platforms", id]) => {
            let p = store
                .platform(id)?
                .ok_or_else(|| ApiError::NotFound(format!("no platform {id}")))?;
            let mut v = platform_json(&p);
            v["device_id_pattern"] = json!(store.device_id_pattern(id)?);
            Ok(json_response(200, &v))
        }
        (&Method::GET, ["platforms", id, file]) if file.starts_with("profile") => {
            let p = store
                .platform(id)?
                .ok_or_else(|| ApiError::NotFound(format!("no platform {id}")))?;
            let format = match param(query, "format") {
                None => crate::profiles::Format::Apple,
                Some(f) => crate::profiles::Format::parse(f).ok_or_else(|| {
                    ApiError::BadRequest(
                        "format must be apple, windows, intune or workspace-one".into(),
                    )
                })?,
            };
            let challenge = param(query, "challenge").map(|c| {
                String::from_utf8_lossy(&scepd_pki::scep::http::percent_decode(c)).into_owned()
            });
            let subject = param(query, "subject").map(|c| {
                String::from_utf8_lossy(&scepd_pki::scep::http::percent_decode(c)).replace('+', " ")
            });
            let base = app.authority.public_base();
            let root_der = app.authority.root_certificate();
            let input = crate::profiles::ProfileInput {
                platform: &p,
                scep_url: format!("{base}{}", platforms::scep_path(id)),
                challenge_url: (p.challenge.kind() == "dynamic")
                    .then(|| format!("{base}{}", platforms::challenge_url_path(id))),
                challenge: challenge.as_deref(),
                root_der: &root_der,
                subject: subject.as_deref(),
            };
            let (ct, body) = crate::profiles::render(&input, format);
            Ok(crate::http::response(200, ct, body))
        }
        (&Method::DELETE, ["platforms", id]) => {
            store.delete_platform(id)?;
            store.append_audit(now, &actor, "platform.deleted", id, "{}")?;
            Ok(json_response(
                200,
                &json!({"platform_id": id, "deleted": true}),
            ))
        }
        (&Method::POST, ["platforms", id, "rotate-secret"]) => {
            let challenge = platforms::rotate_static_secret(store, id).map_err(|e| match e {
                platforms::PlatformError::Store(s) => ApiError::from(s),
                other => ApiError::BadRequest(other.to_string()),
            })?;
            store.append_audit(now, &actor, "platform.secret_rotated", id, "{}")?;
            Ok(json_response(
                200,
                &json!({"platform_id": id, "scep_path": platforms::scep_path(id), "challenge": challenge.as_str()}),
            ))
        }
        (&Method::GET, ["devices"]) => {
            let state = match param(query, "state") {
                Some(s) => Some(DeviceState::parse(s).ok_or_else(|| {
                    ApiError::BadRequest(
                        "state must be active, suspended, deactivated or deleted".into(),
                    )
                })?),
                None => None,
            };
            let list = store.list_devices(
                param(query, "platform_id"),
                param(query, "device_id"),
                state,
            )?;
            Ok(json_response(
                200,
                &json!(list.iter().map(device_json).collect::<Vec<_>>()),
            ))
        }
        (&Method::GET, ["devices", platform, device]) => {
            let d = store
                .device(platform, device)?
                .ok_or_else(|| ApiError::NotFound(format!("no device {platform}/{device}")))?;
            let certs: Vec<Value> = store
                .list_certificates(&CertificateFilter {
                    platform_id: Some((*platform).to_owned()),
                    device_id: Some((*device).to_owned()),
                    ..Default::default()
                })?
                .iter()
                .map(cert_json)
                .collect();
            let mut v = device_json(&d);
            v["certificates"] = json!(certs);
            Ok(json_response(200, &v))
        }
        (&Method::POST, ["devices", platform, device, action]) => {
            let action = match *action {
                "suspend" => Action::Suspend,
                "unsuspend" => Action::Unsuspend,
                "deactivate" => Action::Deactivate,
                "reactivate" => Action::Reactivate,
                "delete" => Action::Delete,
                other => return Err(ApiError::NotFound(format!("no device action {other}"))),
            };
            let reason = match str_field(body, "reason") {
                Some(r) => Some(
                    RevocationReason::parse(r)
                        .ok_or_else(|| ApiError::BadRequest(format!("unknown reason {r:?}")))?,
                ),
                None => None,
            };
            let applied = devices::apply(store, platform, device, action, reason, &actor, now)?;
            let mut v = device_json(&applied.device);
            v["revoked"] = json!(applied.revoked);
            Ok(json_response(200, &v))
        }
        (&Method::GET, ["certificates"]) => {
            let status = match param(query, "status") {
                Some(s) => Some(CertStatus::parse(s).ok_or_else(|| {
                    ApiError::BadRequest("status must be valid or revoked".into())
                })?),
                None => None,
            };
            let limit = param(query, "limit").and_then(|l| l.parse().ok());
            // Filtered in SQL, before the limit (it used to be applied after it).
            let list: Vec<Value> = store
                .list_certificates(&CertificateFilter {
                    platform_id: param(query, "platform_id").map(str::to_owned),
                    status,
                    limit,
                    device_id: param(query, "device_id").map(str::to_owned),
                })?
                .iter()
                .map(cert_json)
                .collect();
            Ok(json_response(200, &json!(list)))
        }
        (&Method::GET, ["certificates", serial]) => {
            let (issuer, bytes) = find_serial(store, serial)?;
            let c = store
                .certificate_by_serial(&issuer, &bytes)?
                .ok_or_else(|| ApiError::NotFound(format!("no certificate {serial}")))?;
            let mut v = cert_json(&c);
            v["der"] = json!(scepd_pki::scep::http::encode_base64(&c.der));
            Ok(json_response(200, &v))
        }
        (&Method::POST, ["certificates", serial, "revoke"]) => {
            let reason = str_field(body, "reason").unwrap_or("unspecified");
            let reason = RevocationReason::parse(reason)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown reason {reason:?}")))?;
            let (issuer, bytes) = find_serial(store, serial)?;
            let changed = store.revoke_one(&issuer, &bytes, reason.as_str(), &actor, now)?;
            Ok(json_response(
                200,
                &json!({"serial": scepd_pki::hex(&bytes), "status": "revoked", "reason": reason.as_str(), "changed": changed}),
            ))
        }
        (&Method::GET, ["ca"]) => {
            let list: Vec<Value> = store
                .authorities()?
                .iter()
                .map(|a| json!({"id": a.id, "role": a.role.as_str(), "state": a.state.as_str(), "subject": a.subject, "issuer_id": a.issuer_id, "not_before": rfc3339(a.not_before), "not_after": rfc3339(a.not_after)}))
                .collect();
            Ok(json_response(200, &json!(list)))
        }
        (&Method::POST, ["ca", "rotate"]) => {
            let alg = match str_field(body, "key_algorithm") {
                Some(a) => a
                    .parse::<KeyAlgorithm>()
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?,
                None => app
                    .authority
                    .ca()
                    .intermediate
                    .key
                    .as_ref()
                    .map_or(KeyAlgorithm::Rsa2048, |k| k.algorithm()),
            };
            let activate_at =
                match str_field(body, "activate_at") {
                    Some(t) => Some(parse_rfc3339(t).ok_or_else(|| {
                        ApiError::BadRequest("activate_at must be RFC 3339".into())
                    })?),
                    None => None,
                };
            let (int, ra) = rotation::rotate_ca(
                store,
                app.authority.ca_handle(),
                organization,
                alg,
                activate_at,
                &actor,
                now,
            )
            .map_err(rotation_error)?;
            Ok(json_response(
                201,
                &json!({"id": int.id, "role": "intermediate", "state": "next", "subject": int.subject, "not_after": rfc3339(int.not_after),
                "ra_id": ra.id, "activate_at": activate_at.map(rfc3339)}),
            ))
        }
        (&Method::POST, ["ca", id, "activate"]) => {
            rotation::activate(store, app.authority.ca_handle(), id, &actor, now)
                .map_err(rotation_error)?;
            Ok(json_response(200, &json!({"id": id, "state": "active"})))
        }
        (&Method::POST, ["ra", "rotate"]) => {
            let ra =
                rotation::rotate_ra(store, app.authority.ca_handle(), organization, &actor, now)
                    .map_err(rotation_error)?;
            Ok(json_response(
                201,
                &json!({"id": ra.id, "role": "ra", "state": "active", "subject": ra.subject, "not_after": rfc3339(ra.not_after)}),
            ))
        }
        (&Method::GET, ["audit"]) => {
            let since = match param(query, "since") {
                None => 0,
                Some(s) => s
                    .parse::<i64>()
                    .ok()
                    .or_else(|| parse_rfc3339(s))
                    .ok_or_else(|| {
                        ApiError::BadRequest("since must be unix seconds or RFC 3339".into())
                    })?,
            };
            let limit = param(query, "limit")
                .and_then(|l| l.parse().ok())
                .unwrap_or(1000)
                .min(10_000);
            let events: Vec<Value> = store
                .audit_events(since, limit)?
                .iter()
                .map(|e| json!({"id": e.id, "at": rfc3339(e.at), "actor": e.actor, "action": e.action, "subject": e.subject, "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::Null)}))
                .collect();
            Ok(json_response(200, &json!(events)))
        }
        _ => Err(ApiError::NotFound("no such endpoint".into())),
    }
}

fn find_serial(store: &Store, serial: &str) -> Result<(String, Vec<u8>), ApiError> {
    let hex: String = serial.chars().filter(|c| *c != ':').collect();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::BadRequest("serial must be hexadecimal".into()));
    }
    let found = store.find_serial(&hex)?;
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(ApiError::NotFound(format!("no certificate {serial}"))),
        _ => Err(ApiError::Conflict("serial is ambiguous across CAs".into())),
    }
}

/// `2026-11-23T14:41:00Z` → unix seconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    if digits.len() != 14 {
        return None;
    }
    scepd_pki::der::time::parse_time(
        scepd_pki::der::tag::GENERALIZED_TIME,
        format!("{digits}Z").as_bytes(),
    )
    .ok()
}

fn platform_json(p: &crate::store::Platform) -> Value {
    json!({"platform_id": p.id, "name": p.name, "challenge": p.challenge.kind(), "scep_path": platforms::scep_path(&p.id), "allow_des": p.allow_des, "created_at": rfc3339(p.created_at)})
}

fn device_json(d: &crate::store::Device) -> Value {
    json!({"platform_id": d.platform_id, "device_id": d.device_id, "user": d.user, "state": d.state.as_str(), "created_at": rfc3339(d.created_at), "updated_at": rfc3339(d.updated_at)})
}

fn cert_json(c: &crate::store::IssuedCertificate) -> Value {
    json!({"serial": c.serial_hex(), "subject": c.subject, "sans": c.sans, "device_id": c.device_id, "platform_id": c.platform_id, "issuer_id": c.issuer_id,
        "status": c.status.as_str(), "not_before": rfc3339(c.not_before), "not_after": rfc3339(c.not_after), "revoked_at": c.revoked_at.map(rfc3339), "revocation_reason": c.revocation_reason})
}

fn platform_error(e: platforms::PlatformError) -> ApiError {
    match e {
        platforms::PlatformError::Store(s) => ApiError::from(s),
        other => ApiError::BadRequest(other.to_string()),
    }
}

/// Creates a platform of any challenge mode from JSON; returns what `platform add --json`
/// prints (secrets and credentials shown once).
fn create_platform(
    store: &Store,
    data_dir: &std::path::Path,
    name: &str,
    allow_des: bool,
    body: &Value,
    now: i64,
) -> Result<Value, ApiError> {
    use crate::challenge::{dynamic, intune::client};
    use crate::platforms::{DynamicOptions, IntuneOptions, NewPlatform};
    use crate::secrets::SecretFiles;
    use zeroize::Zeroizing;
    let required = |f: &str| {
        str_field(body, f)
            .ok_or_else(|| ApiError::BadRequest(format!("{f} is required for this challenge mode")))
    };
    let new = NewPlatform {
        name,
        allow_des,
        now,
    };
    match str_field(body, "challenge").unwrap_or("static") {
        "static" => {
            let c =
                platforms::create_static(store, name, allow_des, now).map_err(platform_error)?;
            Ok(
                json!({"platform_id": c.platform_id, "scep_path": c.scep_path, "challenge": c.challenge}),
            )
        }
        "dynamic" => {
            let ttl_secs = match str_field(body, "challenge_ttl") {
                Some(t) => dynamic::parse_ttl(t).ok_or_else(|| {
                    ApiError::BadRequest("challenge_ttl takes e.g. 60m, 1h, 3600s".into())
                })?,
                None => dynamic::DEFAULT_TTL_SECS,
            };
            let max_outstanding = match body.get("max_outstanding").and_then(Value::as_u64) {
                Some(0) => {
                    return Err(ApiError::BadRequest(
                        "max_outstanding must be at least 1".into(),
                    ));
                }
                Some(n) => u32::try_from(n)
                    .map_err(|_| ApiError::BadRequest("max_outstanding too large".into()))?,
                None => dynamic::DEFAULT_MAX_OUTSTANDING,
            };
            let c = platforms::create_dynamic(
                store,
                name,
                allow_des,
                DynamicOptions {
                    ttl_secs,
                    max_outstanding,
                },
                now,
            )
            .map_err(platform_error)?;
            Ok(
                json!({"platform_id": c.platform_id, "scep_path": c.scep_path, "challenge_url_path": c.challenge_url_path, "username": c.username, "password": c.password}),
            )
        }
        "intune" => {
            let options = IntuneOptions {
                tenant: required("aad_tenant")?.to_owned(),
                client_id: required("aad_client_id")?.to_owned(),
                login_url: str_field(body, "intune_login_url")
                    .unwrap_or(client::DEFAULT_LOGIN_URL)
                    .to_owned(),
                graph_url: str_field(body, "intune_graph_url")
                    .unwrap_or(client::DEFAULT_GRAPH_URL)
                    .to_owned(),
            };
            let secret = Zeroizing::new(required("aad_client_secret")?.to_owned());
            let c = platforms::create_intune(
                store,
                &SecretFiles::new(data_dir),
                new,
                &options,
                &secret,
            )
            .map_err(platform_error)?;
            Ok(json!({"platform_id": c.platform_id, "scep_path": c.scep_path}))
        }
        "webhook" => {
            let secret = Zeroizing::new(required("webhook_secret")?.to_owned());
            let c = platforms::create_webhook(
                store,
                &SecretFiles::new(data_dir),
                new,
                required("webhook_url")?,
                &secret,
            )
            .map_err(platform_error)?;
            Ok(json!({"platform_id": c.platform_id, "scep_path": c.scep_path}))
        }
        other => Err(ApiError::BadRequest(format!(
            "unknown challenge mode {other:?} (static, dynamic, intune, webhook)"
        ))),
    }
}

fn rotation_error(e: rotation::RotationError) -> ApiError {
    match e {
        rotation::RotationError::Store(s) => ApiError::from(s),
        rotation::RotationError::Invalid(m) => ApiError::BadRequest(m),
        other => ApiError::Internal(other.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_split_then_decoded_once() {
        assert_eq!(
            path_segments("/admin/v1/devices/p1/John%27s%20MacBook/suspend").unwrap(),
            ["devices", "p1", "John's MacBook", "suspend"]
        );
        assert_eq!(
            path_segments("/admin/v1/devices/p1/LAPTOP-8%2Fdeactivate%3Fx/suspend").unwrap(),
            ["devices", "p1", "LAPTOP-8/deactivate?x", "suspend"]
        );
        assert_eq!(
            path_segments("/admin/v1/devices/p1/a%252Fb/suspend").unwrap()[2],
            "a%2Fb"
        );
        assert!(path_segments("/admin/v1/devices/p1/50%/suspend").is_err());
        assert!(path_segments("/admin/v1/devices/p1/%FF/suspend").is_err());
    }
}
