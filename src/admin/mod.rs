//! The admin listener: bearer-token authenticated JSON API under `/admin/v1/`, `/metrics`,
//! `/healthz`, `/readyz`. Separate from the public SCEP listener; TLS required off loopback.

pub mod api;
pub mod tls;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::Request;
use hyper::body::Incoming;
use serde_json::json;

use crate::clock::unix_now;
use crate::http::{App, Handler, HttpResponse, response};
use tokens::{AuthError, Scope};

/// The OpenAPI 3 description of this API (kept in the repo, served as-is).
pub const OPENAPI: &str = include_str!("openapi.json");

/// State of the admin listener.
pub struct AdminApp {
    /// The public app (authority, revocation, metrics, store).
    pub app: Arc<App>,
    /// The data dir (for secrets files of delegated platforms).
    pub data_dir: std::path::PathBuf,
    /// Organisation name for the subjects of rotated CAs.
    pub organization: String,
}

/// A JSON response.
pub fn json_response(status: u16, v: &serde_json::Value) -> HttpResponse {
    response(status, "application/json", v.to_string())
}

/// A JSON error `{"error": code, "message"}`.
pub fn error(status: u16, code: &str, message: impl std::fmt::Display) -> HttpResponse {
    json_response(
        status,
        &json!({"error": code, "message": message.to_string()}),
    )
}

impl Handler for AdminApp {
    async fn handle(self: Arc<Self>, req: Request<Incoming>, _peer: SocketAddr) -> HttpResponse {
        let path = req.uri().path().to_owned();
        // Probes only read: anything but GET or HEAD is refused, as everywhere else.
        let probe = matches!(path.as_str(), "/healthz" | "/readyz");
        if probe && req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
            return error(405, "method_not_allowed", "method not allowed");
        }
        match path.as_str() {
            "/healthz" => return response(200, "text/plain; charset=utf-8", "ok\n"),
            "/readyz" => {
                if let Some(why) = self.app.authority.ca_handle().behind() {
                    tracing::warn!(error = %why, "not ready: the CA records changed and cannot be loaded");
                    return error(503, "not_ready", "CA material unavailable");
                }
                let app = self.app.clone();
                // Ready means the store can commit, not just read (store/readiness.rs).
                let ready = tokio::task::spawn_blocking(move || {
                    let store = app.authority.store();
                    store.schema_version().and_then(|_| store.ready())
                })
                .await;
                return match ready {
                    Ok(Ok(())) => response(200, "text/plain; charset=utf-8", "ready\n"),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "not ready: the store cannot commit");
                        error(503, "not_ready", "store unavailable")
                    }
                    Err(_) => error(503, "not_ready", "store unavailable"),
                };
            }
            _ => {}
        }
        let auth = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let app = self.app.clone();
        let caller = match tokio::task::spawn_blocking(move || {
            tokens::authenticate(app.authority.store(), auth.as_deref(), unix_now())
        })
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(AuthError::Unauthenticated)) | Err(_) => {
                let mut r = error(401, "unauthorized", "a valid bearer token is required");
                r.headers_mut().insert(
                    hyper::header::WWW_AUTHENTICATE,
                    hyper::header::HeaderValue::from_static("Bearer"),
                );
                return r;
            }
        };
        let write = !matches!(*req.method(), hyper::Method::GET | hyper::Method::HEAD);
        if write && caller.scope != Scope::Admin {
            return error(403, "forbidden", "this token is read-only");
        }
        match path.as_str() {
            "/metrics" => {
                let (commits, issuances) = self.app.authority.store().issuance_commit_stats();
                let mut body = self.app.metrics.render();
                body.push_str(&crate::metrics::Metrics::render_store(commits, issuances));
                response(200, "text/plain; version=0.0.4", body)
            }
            "/admin/v1/openapi.json" => response(200, "application/json", OPENAPI),
            p if p.starts_with("/admin/v1/") => api::route(self.clone(), req, caller).await,
            _ => error(404, "not_found", "no such endpoint"),
        }
    }
}
