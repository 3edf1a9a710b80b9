//! `/trust/v1/challenge` and `/trust/v1/verify`: the device-trust check for relying parties.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::json;

use super::{App, HttpResponse, failure_response, response};
use crate::clock::unix_now;
use crate::http::error::HttpFailure;
use crate::trust::VerifyRequest;

const MAX_BODY: usize = 64 * 1024;

fn json_response(status: u16, v: &serde_json::Value) -> HttpResponse {
    response(status, "application/json", v.to_string())
}

/// Routes `/trust/v1/*`.
pub async fn handle(app: Arc<App>, req: Request<Incoming>, op: &str) -> HttpResponse {
    if req.method() != Method::POST {
        return failure_response(&HttpFailure::MethodNotAllowed);
    }
    match op {
        "challenge" => match app.trust.challenge(unix_now()) {
            Ok((nonce, exp)) => json_response(
                200,
                &json!({"nonce": nonce, "expires_at": scepd_pki::encoding::rfc3339(exp)}),
            ),
            Err(e) => failure_response(&HttpFailure::from(e)),
        },
        "verify" => {
            app.metrics.trust_check();
            let body = match app.read_body(req.into_body(), MAX_BODY).await {
                Ok(b) => b,
                Err(f) => return failure_response(&f),
            };
            let parsed: VerifyRequest = match serde_json::from_slice(&body) {
                Ok(p) => p,
                Err(e) => {
                    return json_response(
                        400,
                        &json!({"error": "bad_request", "message": e.to_string()}),
                    );
                }
            };
            let now = unix_now();
            let app2 = app.clone();
            // Signature verification (and the store) on the CPU slots, like PKIOperation.
            let verified = crate::cpu_pool::run(move || {
                app2.trust.verify(&parsed, now).map_err(HttpFailure::from)
            });
            match verified.await {
                Ok(v) => json_response(200, &json!(v)),
                Err(e) => failure_response(&e),
            }
        }
        _ => failure_response(&HttpFailure::NotFound("not found".into())),
    }
}
