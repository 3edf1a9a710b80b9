//! Top-level routing of the public listener: each path family goes to its own module.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use hyper::Request;
use hyper::body::Incoming;

use super::scep::{handle, is_ndes_path, operation, platform_from_path};
use super::{App, HttpResponse, failure_response, response};
use crate::http::error::HttpFailure;

/// Routes one request.
pub async fn route(app: Arc<App>, req: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
    let path = req.uri().path().to_owned();
    if path == "/healthz" {
        if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
            return failure_response(&HttpFailure::MethodNotAllowed);
        }
        return response(200, "text/plain; charset=utf-8", "ok\n");
    }
    if let Some(id) = path
        .strip_prefix("/crl/")
        .and_then(|r| r.strip_suffix(".crl"))
    {
        return super::revocation::crl(app, id.to_owned()).await;
    }
    if path == "/ocsp" || path.starts_with("/ocsp/") {
        return super::revocation::ocsp(app, req, peer).await;
    }
    if let Some(op) = path.strip_prefix("/trust/v1/") {
        if !app.trust_rate.allow(peer.ip()) {
            return failure_response(&HttpFailure::TooManyRequests);
        }
        let op = op.to_owned();
        return super::trust::handle(app, req, &op).await;
    }
    if let Some(id) = path
        .strip_prefix("/ca/")
        .and_then(|r| r.strip_suffix(".crt"))
    {
        // AIA caIssuers (RFC 5280 §4.2.2.1): the issuing CA certificate, DER.
        return match app.authority.ca_certificate(id) {
            Some(der) => response(200, "application/pkix-cert", Bytes::from(der)),
            None => failure_response(&HttpFailure::NotFound("not found".into())),
        };
    }
    if let Some(target) = super::challenge_url::target_from_path(&path) {
        return super::challenge_url::handle(app, req, peer, target).await;
    }
    let platform_id = match platform_from_path(&path) {
        Some(id) => id.to_owned(),
        None if is_ndes_path(&path) => match &app.ndes_platform {
            Some(id) => id.clone(),
            None => {
                tracing::debug!(%peer, %path, "NDES path requested; [scep] ndes_platform is not set");
                return failure_response(&HttpFailure::NotFound("not found".into()));
            }
        },
        None => return failure_response(&HttpFailure::NotFound("not found".into())),
    };
    let op = operation(req.uri().query().unwrap_or(""));
    let is_pki_operation = matches!(op, Ok(scepd_pki::scep::http::Operation::PkiOperation));
    if is_pki_operation && !app.pki_rate.allow(peer.ip()) {
        tracing::debug!(%peer, "PKIOperation rate limit");
        return failure_response(&HttpFailure::TooManyRequests);
    }
    match handle(app, req, platform_id, op).await {
        Ok(r) => r,
        Err(f) => {
            tracing::debug!(%peer, %path, status = f.status(), "request failed: {f}");
            failure_response(&f)
        }
    }
}
