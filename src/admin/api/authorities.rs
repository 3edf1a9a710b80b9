//! `/admin/v1/ca` and `/admin/v1/ra`: the authorities, CA rotation (stage, activate) and RA
//! rotation.

use hyper::Method;
use scepd_pki::encoding::{parse_rfc3339, rfc3339};
use scepd_pki::keys::KeyAlgorithm;
use serde_json::{Value, json};

use super::{Call, str_field};
use crate::admin::json_response;
use crate::ca::rotation;
use crate::http::HttpResponse;
use crate::http::error::HttpFailure;

/// A request under `/admin/v1/ca`; `rest` is the path after it.
pub(super) fn handle_ca(
    c: &Call<'_>,
    method: &Method,
    rest: &[&str],
) -> Result<HttpResponse, HttpFailure> {
    let Call {
        app,
        store,
        organization,
        body,
        now,
        actor,
        ..
    } = *c;
    match (method, rest) {
        (&Method::GET, []) => {
            let list: Vec<Value> = store
                .authorities()?
                .iter()
                .map(|a| json!({"id": a.id, "role": a.role.as_str(), "state": a.state.as_str(), "subject": a.subject, "issuer_id": a.issuer_id, "not_before": rfc3339(a.not_before), "not_after": rfc3339(a.not_after)}))
                .collect();
            Ok(json_response(200, &json!(list)))
        }
        (&Method::POST, ["rotate"]) => {
            let alg = match str_field(body, "key_algorithm") {
                Some(a) => a
                    .parse::<KeyAlgorithm>()
                    .map_err(|e| HttpFailure::BadRequest(e.to_string()))?,
                None => app.authority.ca().intermediate.key.algorithm(),
            };
            let activate_at = match str_field(body, "activate_at") {
                Some(t) => Some(parse_rfc3339(t).ok_or_else(|| {
                    HttpFailure::BadRequest("activate_at must be RFC 3339".into())
                })?),
                None => None,
            };
            let (int, ra) = rotation::rotate_ca(
                store,
                app.authority.ca_handle(),
                organization,
                alg,
                activate_at,
                actor,
                now,
            )
            .map_err(rotation_error)?;
            Ok(json_response(
                201,
                &json!({"id": int.id, "role": "intermediate", "state": "next", "subject": int.subject, "not_after": rfc3339(int.not_after),
                "ra_id": ra.id, "activate_at": activate_at.map(rfc3339)}),
            ))
        }
        (&Method::POST, [id, "activate"]) => {
            rotation::activate(store, app.authority.ca_handle(), id, actor, now)
                .map_err(rotation_error)?;
            Ok(json_response(200, &json!({"id": id, "state": "active"})))
        }
        _ => Err(HttpFailure::NotFound("no such endpoint".into())),
    }
}

/// A request under `/admin/v1/ra`; `rest` is the path after it.
pub(super) fn handle_ra(
    c: &Call<'_>,
    method: &Method,
    rest: &[&str],
) -> Result<HttpResponse, HttpFailure> {
    let Call {
        app,
        store,
        organization,
        now,
        actor,
        ..
    } = *c;
    match (method, rest) {
        (&Method::POST, ["rotate"]) => {
            let ra =
                rotation::rotate_ra(store, app.authority.ca_handle(), organization, actor, now)
                    .map_err(rotation_error)?;
            Ok(json_response(
                201,
                &json!({"id": ra.id, "role": "ra", "state": "active", "subject": ra.subject, "not_after": rfc3339(ra.not_after)}),
            ))
        }
        _ => Err(HttpFailure::NotFound("no such endpoint".into())),
    }
}

fn rotation_error(e: rotation::RotationError) -> HttpFailure {
    match e {
        rotation::RotationError::Store(s) => HttpFailure::from(s),
        rotation::RotationError::Invalid(m) => HttpFailure::BadRequest(m),
        other => HttpFailure::Internal(other.to_string()),
    }
}
