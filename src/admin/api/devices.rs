//! `/admin/v1/devices`: search; one device: show with its certificates, state changes
//! (suspend, unsuspend, deactivate, reactivate, delete) with their revocations.

use hyper::Method;
use scepd_pki::encoding::rfc3339;
use scepd_pki::revocation::RevocationReason;
use serde_json::{Value, json};

use super::certificates::cert_json;
use super::{Call, param, str_field};
use crate::admin::json_response;
use crate::devices::{self, Action};
use crate::http::HttpResponse;
use crate::http::error::HttpFailure;
use crate::platforms;
use crate::store::{CertificateFilter, DeviceState};

/// A request under `/admin/v1/devices`; `rest` is the path after it.
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
            let state = match param(query, "state") {
                Some(s) => Some(DeviceState::parse(s).ok_or_else(|| {
                    HttpFailure::BadRequest(
                        "state must be active, suspended, deactivated or deleted".into(),
                    )
                })?),
                None => None,
            };
            // By id or name; an unknown one is 404, not an empty list.
            let platform = param(query, "platform_id")
                .map(|p| platforms::resolve(store, p).map(|p| p.id))
                .transpose()?;
            let list = store.list_devices(platform.as_deref(), param(query, "device_id"), state)?;
            Ok(json_response(
                200,
                &json!(list.iter().map(device_json).collect::<Vec<_>>()),
            ))
        }
        (&Method::GET, [platform, device]) => {
            let platform = platforms::resolve(store, platform)?.id;
            let platform = platform.as_str();
            let d = store
                .device(platform, device)?
                .ok_or_else(|| HttpFailure::NotFound(format!("no device {platform}/{device}")))?;
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
        (&Method::POST, [platform, device, action]) => {
            let action = match *action {
                "suspend" => Action::Suspend,
                "unsuspend" => Action::Unsuspend,
                "deactivate" => Action::Deactivate,
                "reactivate" => Action::Reactivate,
                "delete" => Action::Delete,
                other => return Err(HttpFailure::NotFound(format!("no device action {other}"))),
            };
            let reason = match str_field(body, "reason") {
                Some(r) => Some(
                    RevocationReason::parse(r)
                        .ok_or_else(|| HttpFailure::BadRequest(format!("unknown reason {r:?}")))?,
                ),
                None => None,
            };
            let platform = platforms::resolve(store, platform)?.id;
            let applied = devices::apply(store, &platform, device, action, reason, actor, now)?;
            let mut v = device_json(&applied.device);
            v["revoked"] = json!(applied.revoked);
            Ok(json_response(200, &v))
        }
        _ => Err(HttpFailure::NotFound("no such endpoint".into())),
    }
}

fn device_json(d: &crate::store::Device) -> Value {
    json!({"platform_id": d.platform_id, "device_id": d.device_id, "user": d.user, "state": d.state.as_str(), "created_at": rfc3339(d.created_at), "updated_at": rfc3339(d.updated_at)})
}
