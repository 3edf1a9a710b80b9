//! `/admin/v1/certificates`: list with filters; one certificate by serial: show, revoke.

use hyper::Method;
use scepd_pki::encoding::rfc3339;
use scepd_pki::revocation::RevocationReason;
use serde_json::{Value, json};

use super::{Call, param, str_field};
use crate::admin::json_response;
use crate::http::HttpResponse;
use crate::http::error::HttpFailure;
use crate::store::{CertStatus, CertificateFilter, Store};

/// A request under `/admin/v1/certificates`; `rest` is the path after it.
pub(super) fn handle(
    c: &Call<'_>,
    method: &Method,
    rest: &[&str],
) -> Result<HttpResponse, HttpFailure> {
    let Call {
        store,
        query,
        body,
        now,
        actor,
        ..
    } = *c;
    match (method, rest) {
        (&Method::GET, []) => {
            let status = match param(query, "status") {
                Some(s) => Some(CertStatus::parse(s).ok_or_else(|| {
                    HttpFailure::BadRequest("status must be valid or revoked".into())
                })?),
                None => None,
            };
            let limit = param(query, "limit").and_then(|l| l.parse().ok());
            // Filtered in SQL, before the limit: the limit counts matching certificates.
            // By id or name; an unknown one is 404, not an empty list.
            let platform_id = param(query, "platform_id")
                .map(|p| crate::platforms::resolve(store, p).map(|p| p.id))
                .transpose()?;
            let list: Vec<Value> = store
                .list_certificates(&CertificateFilter {
                    platform_id,
                    status,
                    limit,
                    device_id: param(query, "device_id").map(str::to_owned),
                })?
                .iter()
                .map(cert_json)
                .collect();
            Ok(json_response(200, &json!(list)))
        }
        (&Method::GET, [serial]) => {
            let (issuer, bytes) = find_serial(store, serial)?;
            let c = store
                .certificate_by_serial(&issuer, &bytes)?
                .ok_or_else(|| HttpFailure::NotFound(format!("no certificate {serial}")))?;
            let mut v = cert_json(&c);
            v["der"] = json!(scepd_pki::encoding::encode_base64(&c.der));
            Ok(json_response(200, &v))
        }
        (&Method::POST, [serial, "revoke"]) => {
            let reason = str_field(body, "reason").unwrap_or("unspecified");
            let reason = RevocationReason::parse(reason)
                .ok_or_else(|| HttpFailure::BadRequest(format!("unknown reason {reason:?}")))?;
            let (issuer, bytes) = find_serial(store, serial)?;
            let changed = store.revoke_one(&issuer, &bytes, reason.as_str(), actor, now)?;
            Ok(json_response(
                200,
                &json!({"serial": scepd_pki::hex(&bytes), "status": "revoked", "reason": reason.as_str(), "changed": changed}),
            ))
        }
        _ => Err(HttpFailure::NotFound("no such endpoint".into())),
    }
}

pub(super) fn cert_json(c: &crate::store::IssuedCertificate) -> Value {
    json!({"serial": c.serial_hex(), "subject": c.subject, "sans": c.sans, "device_id": c.device_id, "platform_id": c.platform_id, "issuer_id": c.issuer_id,
        "status": c.status.as_str(), "not_before": rfc3339(c.not_before), "not_after": rfc3339(c.not_after), "revoked_at": c.revoked_at.map(rfc3339), "revocation_reason": c.revocation_reason})
}

fn find_serial(store: &Store, serial: &str) -> Result<(String, Vec<u8>), HttpFailure> {
    let hex: String = serial.chars().filter(|c| *c != ':').collect();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(HttpFailure::BadRequest("serial must be hexadecimal".into()));
    }
    let found = store.find_serial(&hex)?;
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(HttpFailure::NotFound(format!("no certificate {serial}"))),
        _ => Err(HttpFailure::Conflict(
            "serial is ambiguous across CAs".into(),
        )),
    }
}
