//! SCEP over HTTP (RFC 8894 §4): `/scep/<platform_id>` (optionally followed by
//! `/pkiclient.exe` or `/cgi-bin/pkiclient.exe`), GET and POST; and NDES's
//! `/certsrv/mscep/mscep.dll` for the one platform `[scep] ndes_platform` names.

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request};
use scepd_pki::scep::http::{Operation, decode_get_message, query_param};

use super::{App, HttpResponse, response};
use crate::clock::unix_now;
use crate::http::error::HttpFailure;

/// Splits `/scep/<id>[/pkiclient.exe|/cgi-bin/pkiclient.exe][/]` into the platform id.
pub fn platform_from_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/scep/")?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let ok_tail = matches!(tail, "" | "pkiclient.exe" | "cgi-bin/pkiclient.exe");
    (ok_tail && !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric()))
        .then_some(id)
}

/// True for NDES's SCEP path, `/certsrv/mscep/mscep.dll[/pkiclient.exe][/]`, in any ASCII
/// case (IIS matches paths case-insensitively, and tools copy both spellings).
pub fn is_ndes_path(path: &str) -> bool {
    let p = path.strip_suffix('/').unwrap_or(path);
    let p = match p.len().checked_sub("/pkiclient.exe".len()) {
        Some(i) if p.is_char_boundary(i) && p[i..].eq_ignore_ascii_case("/pkiclient.exe") => {
            &p[..i]
        }
        _ => p,
    };
    p.eq_ignore_ascii_case("/certsrv/mscep/mscep.dll")
}

/// The `operation` a SCEP request asks for (read once: the router rate-limits by it).
pub fn operation(query: &str) -> Result<Operation, HttpFailure> {
    let op_text = query_param(query, "operation")
        .ok_or_else(|| HttpFailure::BadRequest("missing operation parameter".into()))?;
    Operation::parse(op_text).ok_or_else(|| HttpFailure::BadRequest("unknown operation".into()))
}

/// Handles a SCEP request for a platform; `op` is [`operation`] of its query.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    platform_id: String,
    op: Result<Operation, HttpFailure>,
) -> Result<HttpResponse, HttpFailure> {
    let method = req.method().clone();
    if method != Method::GET && method != Method::POST && method != Method::HEAD {
        return Err(HttpFailure::MethodNotAllowed);
    }
    let op = op?;
    // A Uri clone shares its bytes; the request itself is consumed by the body read below.
    let uri = req.uri().clone();
    let query = uri.query().unwrap_or("");
    // Unknown platforms are 404 before anything else; known ids are remembered for a second
    // so the GET operations need no blocking hop (platform_cache.rs).
    if !app.platforms.known(&platform_id) {
        let (a, id) = (app.clone(), platform_id.clone());
        blocking(move || {
            a.authority
                .read_platform(&id)
                .map(|_| ())
                .map_err(HttpFailure::from)
        })
        .await?;
        app.platforms.remember(&platform_id);
    }
    match op {
        Operation::GetCaCaps => Ok(response(200, "text/plain", app.authority.ca_caps())),
        Operation::GetCaCert => Ok(response(
            200,
            "application/x-x509-ca-ra-cert",
            app.authority.ca_cert(),
        )),
        // RFC 8894 §4.7: signed by the current RA, content the next CA certificates.
        Operation::GetNextCaCert => match app.authority.next_ca_cert() {
            Some(body) => Ok(response(200, "application/x-x509-next-ca-cert", body)),
            None => Err(HttpFailure::NotFound(
                "no next CA certificate is staged".into(),
            )),
        },
        Operation::PkiOperation => {
            let body = if method == Method::POST {
                app.read_body(req.into_body(), app.max_body_bytes).await?
            } else {
                let raw = query_param(query, "message")
                    .ok_or_else(|| HttpFailure::BadRequest("missing message parameter".into()))?;
                // base64 of the body cap, plus room for percent-escapes; hyper itself answers
                // 414 for URIs over 64 KiB, so POST is the way for large requests.
                if raw.len() > app.max_body_bytes / 3 * 4 * 3 {
                    return Err(HttpFailure::UriTooLong);
                }
                Bytes::from(
                    decode_get_message(raw)
                        .ok_or_else(|| HttpFailure::BadRequest("message is not base64".into()))?,
                )
            };
            let now = unix_now();
            let started = std::time::Instant::now();
            let metrics = app.metrics.clone();
            let metric_platform = platform_id.clone();
            let result = crate::cpu_pool::run(move || {
                app.authority
                    .pki_operation(&platform_id, &body, now)
                    .map_err(HttpFailure::from)
            })
            .await;
            let (outcome, fail_info) = match &result {
                Ok(r) => match r.fail_info {
                    None => ("success", ""),
                    Some(f) => ("failure", f.name()),
                },
                Err(_) => ("rejected", ""),
            };
            metrics.enrollment(&metric_platform, outcome, fail_info, started.elapsed());
            Ok(response(200, "application/x-pki-message", result?.body))
        }
    }
}

/// Runs blocking work (crypto, SQLite) off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, HttpFailure> + Send + 'static,
) -> Result<T, HttpFailure> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HttpFailure::Internal(format!("worker failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ndes_paths_in_any_case_with_or_without_pkiclient() {
        for p in [
            "/certsrv/mscep/mscep.dll",
            "/certsrv/mscep/mscep.dll/",
            "/CertSrv/mscep/mscep.dll",
            "/certsrv/mscep/mscep.dll/pkiclient.exe",
            "/CERTSRV/MSCEP/MSCEP.DLL/PKICLIENT.EXE/",
        ] {
            assert!(is_ndes_path(p), "{p}");
        }
        for p in [
            "/certsrv/mscep_admin/",
            "/certsrv/mscep/",
            "/certsrv/mscep/mscep.dll/x",
            "/certsrv/mscep/mscep.dllx",
            "/scep/abc",
            "/pkiclient.exe",
            "/certsrv/mscep/mscep.dll/pkiclient.exe/pkiclient.exe",
        ] {
            assert!(!is_ndes_path(p), "{p}");
        }
    }
}
