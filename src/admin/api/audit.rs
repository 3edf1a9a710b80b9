//! `/admin/v1/audit`: the audit trail since a time, oldest first, with a limit.

use hyper::Method;
use scepd_pki::encoding::{parse_rfc3339, rfc3339};
use serde_json::{Value, json};

use super::{Call, param};
use crate::admin::json_response;
use crate::http::HttpResponse;
use crate::http::error::HttpFailure;

/// A request under `/admin/v1/audit`; `rest` is the path after it.
pub(super) fn handle(
    c: &Call<'_>,
    method: &Method,
    rest: &[&str],
) -> Result<HttpResponse, HttpFailure> {
    let Call { store, query, .. } = *c;
    match (method, rest) {
        (&Method::GET, []) => {
            let since = match param(query, "since") {
                None => 0,
                Some(s) => s
                    .parse::<i64>()
                    .ok()
                    .or_else(|| parse_rfc3339(s))
                    .ok_or_else(|| {
                        HttpFailure::BadRequest("since must be unix seconds or RFC 3339".into())
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
        _ => Err(HttpFailure::NotFound("no such endpoint".into())),
    }
}
