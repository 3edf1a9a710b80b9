//! Outbound HTTP(S) for the delegated challenge modes (Intune, webhooks): hyper's pooled
//! client over rustls (aws-lc-rs provider, Mozilla roots compiled in), every exchange bounded
//! by one timeout (connect, request, response and body), response bodies capped.
//!
//! Plain `http://` is allowed only to loopback hosts (tests, a local sidecar); anything that
//! leaves the machine must be `https://`, because requests carry challenges and tokens.
//!
//! The authority runs on blocking threads (crypto, SQLite), so [`Outbound::send_blocking`]
//! hands the exchange to the tokio runtime and waits for it with a bound; it never blocks a
//! runtime worker and never panics outside a runtime (it fails with
//! [`OutboundError::NoRuntime`]).

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use zeroize::Zeroizing;

/// Largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Default bound on one exchange.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an exchange failed. Texts never contain request bodies or header values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboundError {
    /// The URL is unusable or not allowed.
    #[error("bad URL: {0}")]
    Url(String),
    /// The exchange took longer than the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Connection, TLS or protocol failure.
    #[error("transport: {0}")]
    Transport(String),
    /// The response body exceeded [`MAX_RESPONSE_BYTES`].
    #[error("response body too large")]
    TooLarge,
    /// Called outside a tokio runtime.
    #[error("no async runtime to run the request on")]
    NoRuntime,
}

/// One request. Header values marked secret are hidden from `Debug` output.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// GET or POST.
    pub method: Method,
    /// Absolute URL.
    pub url: String,
    /// Extra headers: (name, value, secret).
    pub headers: Vec<(HeaderName, String, bool)>,
    /// The body (empty for GET).
    pub body: Bytes,
}

/// A request body that holds a secret (a challenge, a client secret): `value` serialized into
/// one buffer of exactly the right size (no reallocation leaves a copy behind), wiped when the
/// last reference to the body — ours or the HTTP stack's — is dropped. The HTTP stack may still
/// copy small bodies into its own write buffer; that copy is not ours to wipe.
pub fn secret_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Bytes, serde_json::Error> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(count.0));
    serde_json::to_writer(&mut *buf, value)?;
    Ok(secret_body(buf))
}

/// A body from a secret buffer, wiped when the last reference is dropped.
pub fn secret_body(bytes: Zeroizing<Vec<u8>>) -> Bytes {
    Bytes::from_owner(bytes)
}

impl OutboundRequest {
    /// A POST of `body` with `content_type`.
    pub fn post(url: &str, content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            method: Method::POST,
            url: url.to_owned(),
            headers: vec![(hyper::header::CONTENT_TYPE, content_type.to_owned(), false)],
            body: body.into(),
        }
    }

    /// A GET.
    pub fn get(url: &str) -> Self {
        Self {
            method: Method::GET,
            url: url.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into(), false));
        self
    }

    /// Adds a header whose value is a secret (a bearer token).
    pub fn secret_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into(), true));
        self
    }
}

/// A response: status and (capped) body.
#[derive(Debug, Clone)]
pub struct OutboundResponse {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Bytes,
}

impl OutboundResponse {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Checks that `url` is absolute http(s) with a host, and `https` unless the host is loopback.
pub fn check_url(url: &str) -> Result<Uri, OutboundError> {
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| OutboundError::Url(e.to_string()))?;
    let host = uri
        .host()
        .ok_or_else(|| OutboundError::Url("no host".into()))?;
    match uri.scheme_str() {
        Some("https") => Ok(uri),
        Some("http") if is_loopback(host) => Ok(uri),
        Some("http") => Err(OutboundError::Url(
            "plain http is only allowed to loopback hosts; use https".into(),
        )),
        _ => Err(OutboundError::Url("scheme must be https".into())),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A pooled HTTPS client with one timeout per exchange.
#[derive(Clone)]
pub struct Outbound {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Outbound {
    /// A client whose exchanges each take at most `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        let https = HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Self { client, timeout }
    }

    /// The bound on one exchange.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends `req` and reads the response body, all within the timeout.
    pub async fn send(&self, req: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let uri = check_url(&req.url)?;
        let mut builder = Request::builder().method(req.method).uri(uri).header(
            hyper::header::USER_AGENT,
            concat!("scepd/", env!("CARGO_PKG_VERSION")),
        );
        for (name, value, secret) in req.headers {
            let mut v = HeaderValue::from_str(&value)
                .map_err(|_| OutboundError::Url(format!("invalid value for header {name}")))?;
            v.set_sensitive(secret);
            builder = builder.header(name, v);
        }
        let request = builder
            .body(Full::new(req.body))
            .map_err(|e| OutboundError::Url(e.to_string()))?;
        let exchange = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(|e| OutboundError::Transport(crate::logging::with_sources(&e)))?;
            let status = resp.status().as_u16();
            let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        OutboundError::TooLarge
                    } else {
                        OutboundError::Transport(e.to_string())
                    }
                })?
                .to_bytes();
            Ok(OutboundResponse { status, body })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| OutboundError::Timeout(self.timeout))?
    }

    /// [`Outbound::send`] from a blocking thread (a `spawn_blocking` worker): runs the
    /// exchange on the current runtime and waits at most the timeout (plus a second).
    pub fn send_blocking(&self, req: OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let handle = tokio::runtime::Handle::try_current().map_err(|_| OutboundError::NoRuntime)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let this = self.clone();
        handle.spawn(async move {
            let _ = tx.send(this.send(req).await);
        });
        // Waiting on the network is not CPU work: free the CPU slot for other requests.
        crate::cpu_pool::lend(|| rx.recv_timeout(self.timeout + Duration::from_secs(1)))
            .map_err(|_| OutboundError::Timeout(self.timeout))?
    }

    /// Sends `req` in the background without waiting (best-effort notifications); failures
    /// are logged with `what` and the status, never the body.
    pub fn send_detached(&self, req: OutboundRequest, what: &'static str) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(what, "no runtime: notification not sent");
            return;
        };
        let this = self.clone();
        handle.spawn(async move {
            match this.send(req).await {
                Ok(r) if r.is_success() => tracing::debug!(what, status = r.status, "sent"),
                Ok(r) => tracing::warn!(what, status = r.status, "notification refused"),
                Err(e) => tracing::warn!(what, error = %e, "notification failed"),
            }
        });
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn secret_json_is_exactly_serde_json() {
        let v = serde_json::json!({"challenge": "s3cr3t", "n": [1, 2, 3], "u": "é\n"});
        let body = secret_json(&v).unwrap();
        assert_eq!(&body[..], serde_json::to_vec(&v).unwrap().as_slice());
        let b = secret_body(Zeroizing::new(b"client_secret=x".to_vec()));
        assert_eq!(&b[..], b"client_secret=x");
    }

    #[test]
    fn only_https_or_loopback_http() {
        assert!(check_url("https://graph.microsoft.com/v1.0").is_ok());
        for ok in [
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://[::1]:8/",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1/x",
            "http://example.com/",
            "ftp://x/",
            "/relative",
            "https://",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blocking_send_outside_a_runtime_is_an_error_not_a_panic() {
        let o = Outbound::new(Duration::from_secs(1));
        let err = o
            .send_blocking(OutboundRequest::get("http://127.0.0.1:9/"))
            .unwrap_err();
        assert_eq!(err, OutboundError::NoRuntime);
    }

    #[test]
    fn refused_connection_and_timeout_are_reported() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        // A listener that accepts but never answers.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let o = Outbound::new(Duration::from_millis(300));
        let err = rt
            .block_on(o.send(OutboundRequest::get(&format!("http://{addr}/"))))
            .unwrap_err();
        assert!(matches!(err, OutboundError::Timeout(_)), "{err:?}");
        drop(silent);
        let err = rt
            .block_on(o.send(OutboundRequest::get(&format!("http://{addr}/"))))
            .unwrap_err();
        assert!(matches!(err, OutboundError::Transport(_)), "{err:?}");
        // From a blocking thread inside the runtime.
        let o2 = o.clone();
        let r = rt.block_on(async move {
            tokio::task::spawn_blocking(move || {
                o2.send_blocking(OutboundRequest::get("http://127.0.0.1:9/"))
            })
            .await
            .unwrap()
        });
        assert!(r.is_err());
    }
}
