//! `/admin/v1/*` handlers. Mutations are audited with the token's name as actor.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde_json::Value;

use super::error;
use super::tokens::Caller;
use crate::clock::unix_now;
use crate::http::error::HttpFailure;
use crate::http::{App, HttpResponse};
use crate::store::Store;

mod audit;
mod authorities;
mod certificates;
mod devices;
mod platforms;

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
            Err(e) => return failure_response(e),
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
        Ok(Err(e)) => failure_response(e),
        Err(e) => failure_response(HttpFailure::Internal(format!("worker failed: {e}"))),
    }
}

/// The segments after `/admin/v1/`, each percent-decoded exactly once. The raw path is split
/// first, so a decoded `/` (`%2F`) stays inside its segment (part of an id) and an id can
/// never add segments or reach another endpoint.
fn path_segments(path: &str) -> Result<Vec<String>, scepd_pki::encoding::PercentError> {
    path.trim_start_matches("/admin/v1/")
        .split('/')
        .map(scepd_pki::encoding::decode_segment)
        .collect()
}

/// The JSON answer for a failed request: status and `error` code from [`HttpFailure`]
/// (`src/http/error.rs`, where every status is decided), the detail of our own failures to the
/// log only.
fn failure_response(e: HttpFailure) -> HttpResponse {
    if let HttpFailure::Internal(detail) = &e {
        tracing::error!(%detail, "admin API internal error");
    }
    let close = matches!(e, HttpFailure::RequestTimeout);
    let mut r = error(e.status(), e.code(), e.client_text());
    if close {
        crate::http::close_after(&mut r);
    }
    r
}

pub(super) fn param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    scepd_pki::scep::http::query_param(query, name).filter(|v| !v.is_empty())
}

pub(super) fn str_field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// What every handler of one request works with.
pub(super) struct Call<'a> {
    pub(super) app: &'a App,
    pub(super) store: &'a Store,
    pub(super) data_dir: &'a std::path::Path,
    pub(super) organization: &'a str,
    pub(super) query: &'a str,
    pub(super) body: &'a Value,
    pub(super) now: i64,
    /// Who the audit trail names: `token:<name>`.
    pub(super) actor: &'a str,
}

/// Sends the request to its resource's handler by the first path segment.
fn dispatch(
    admin: &super::AdminApp,
    method: &Method,
    parts: &[String],
    query: &str,
    body: &Value,
    caller: &Caller,
) -> Result<HttpResponse, HttpFailure> {
    let app = admin.app.as_ref();
    let actor = format!("token:{}", caller.name);
    let call = Call {
        app,
        store: app.authority.store(),
        data_dir: admin.data_dir.as_path(),
        organization: admin.organization.as_str(),
        query,
        body,
        now: unix_now(),
        actor: &actor,
    };
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    match p.split_first() {
        Some((&"platforms", rest)) => platforms::handle(&call, method, rest),
        Some((&"devices", rest)) => devices::handle(&call, method, rest),
        Some((&"certificates", rest)) => certificates::handle(&call, method, rest),
        Some((&"ca", rest)) => authorities::handle_ca(&call, method, rest),
        Some((&"ra", rest)) => authorities::handle_ra(&call, method, rest),
        Some((&"audit", rest)) => audit::handle(&call, method, rest),
        _ => Err(HttpFailure::NotFound("no such endpoint".into())),
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
