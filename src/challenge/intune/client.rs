//! The Intune third-party-CA API client (docs/scep-protocol.md §4.3–4.6): OAuth2 client-credentials
//! tokens from Azure AD, service discovery through Microsoft Graph, and the `ScepActions`
//! calls. One client per platform: tokens and the discovered service URL are cached; the
//! service URL is forgotten after any failed call (it is tenant/region specific and can move),
//! an Intune token after a 401.
//!
//! Bounds: every HTTP exchange is limited by `[outbound] timeout_secs`; each exchange is tried
//! at most [`ATTEMPTS`] times, and only transport failures, 401 (with a fresh token), 429 and
//! 5xx are retried.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::header::{AUTHORIZATION, HeaderName};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::outbound::{Outbound, OutboundError, OutboundRequest, OutboundResponse};
use crate::store::IntuneSettings;

/// Default OAuth2 authority.
pub const DEFAULT_LOGIN_URL: &str = "https://login.microsoftonline.com";
/// Default Microsoft Graph endpoint.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// The Intune service principal whose endpoints Graph lists.
pub const INTUNE_APP_ID: &str = "0000000a-0000-0000-c000-000000000000";
/// The discovered service that validates SCEP requests.
pub const SCEP_SERVICE: &str = "ScepRequestValidationFEService";
/// `api-version` of the ScepActions calls.
pub const API_VERSION: &str = "2018-02-20";
/// Token scope of the Intune API, with the double slash the reference libraries use.
pub const INTUNE_SCOPE: &str = "https://api.manage.microsoft.com//.default";
/// Header carrying a fresh UUID per request, for Microsoft's support to correlate.
const CLIENT_REQUEST_ID: &str = "client-request-id";
/// Tries per HTTP exchange.
pub const ATTEMPTS: u32 = 2;
/// How long a discovered service URL is trusted.
pub const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Tokens are renewed this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);
/// Pause before a retry.
const BACKOFF: Duration = Duration::from_millis(250);

/// Why an Intune exchange failed. Never contains secrets or tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntuneError {
    /// Azure AD refused or failed to issue a token.
    #[error("Azure AD token request failed: {0}")]
    Token(String),
    /// Graph service discovery failed.
    #[error("Intune service discovery failed: {0}")]
    Discovery(String),
    /// Graph does not list the SCEP validation service (missing permission or licence?).
    #[error("Graph lists no {SCEP_SERVICE} (check the app's Intune permission and licence)")]
    ServiceMissing,
    /// A ScepActions call failed.
    #[error("Intune {action} failed: {reason}")]
    Action {
        /// The action.
        action: &'static str,
        /// What went wrong.
        reason: String,
    },
}

/// Intune's answer to a ScepActions call.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ActionResult {
    /// `Success` or an error code name.
    pub code: String,
    /// Intune's explanation.
    #[serde(rename = "errorDescription", default)]
    pub error_description: Option<String>,
}

impl ActionResult {
    /// Only `Success` is success.
    pub fn is_success(&self) -> bool {
        self.code == "Success"
    }
}

struct Token {
    value: Zeroizing<String>,
    renew_at: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Endpoints {
    value: Vec<Endpoint>,
}

#[derive(Deserialize)]
struct Endpoint {
    #[serde(rename = "providerName")]
    provider_name: String,
    uri: String,
}

/// A fresh random (version 4) UUID for `client-request-id`.
pub fn request_id() -> String {
    crate::uuid::v4()
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(value: &str, out: &mut String) {
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(b));
            }
            _ => {
                // No temporary String: the value may be the client secret.
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
}

fn retryable(r: &Result<OutboundResponse, OutboundError>) -> bool {
    match r {
        Err(OutboundError::Timeout(_) | OutboundError::Transport(_)) => true,
        Err(_) => false,
        Ok(resp) => resp.status == 429 || resp.status >= 500,
    }
}

/// The Intune client of one platform.
pub struct IntuneClient {
    settings: IntuneSettings,
    secret: Zeroizing<String>,
    http: Outbound,
    caller_info: String,
    graph_token: Mutex<Option<Token>>,
    intune_token: Mutex<Option<Token>>,
    service: Mutex<Option<(String, Instant)>>,
}

impl IntuneClient {
    /// A client for `settings`, authenticating with `secret`.
    pub fn new(settings: IntuneSettings, secret: Zeroizing<String>, http: Outbound) -> Self {
        Self {
            settings,
            secret,
            http,
            caller_info: concat!("scepd/", env!("CARGO_PKG_VERSION")).to_owned(),
            graph_token: Mutex::new(None),
            intune_token: Mutex::new(None),
            service: Mutex::new(None),
        }
    }

    /// The `callerInfo` / `UserAgent` value.
    pub fn caller_info(&self) -> &str {
        &self.caller_info
    }

    /// Sends with at most [`ATTEMPTS`] tries of retryable failures, each attempt with its own
    /// fresh `client-request-id`.
    fn send(&self, req: &OutboundRequest) -> Result<OutboundResponse, OutboundError> {
        let mut attempt = 1;
        loop {
            let mut this_try = req.clone();
            this_try
                .headers
                .retain(|(name, _, _)| name.as_str() != CLIENT_REQUEST_ID);
            this_try.headers.push((
                HeaderName::from_static(CLIENT_REQUEST_ID),
                request_id(),
                false,
            ));
            let r = self.http.send_blocking(this_try);
            if attempt >= ATTEMPTS || !retryable(&r) {
                return r;
            }
            attempt += 1;
            // Not CPU work: let other requests have this thread's CPU slot meanwhile.
            crate::cpu_pool::lend(|| std::thread::sleep(BACKOFF));
        }
    }

    fn graph_scope(&self) -> String {
        format!("{}/.default", self.settings.graph_url.trim_end_matches('/'))
    }

    /// A cached or new token for `scope`.
    fn token(
        &self,
        slot: &Mutex<Option<Token>>,
        scope: &str,
    ) -> Result<Zeroizing<String>, IntuneError> {
        let fail = |s: String| IntuneError::Token(s);
        // The lock is held across the token request (one fetch for all waiters), and that
        // request lends its CPU slot while it waits for the network. So waiting for the lock
        // must lend the slot too: otherwise waiters could hold every slot while the fetcher
        // waits for one to come back — a deadlock of the whole pool.
        let mut cached = crate::cpu_pool::lend(|| slot.lock())
            .map_err(|_| fail("token cache poisoned".into()))?;
        if let Some(t) = cached.as_ref().filter(|t| Instant::now() < t.renew_at) {
            return Ok(t.value.clone());
        }
        let url = format!(
            "{}/{}/oauth2/v2.0/token",
            self.settings.login_url.trim_end_matches('/'),
            self.settings.tenant
        );
        // Sized for the worst case up front (each octet may become %XX): growing the buffer
        // would leave unwiped copies of the secret behind.
        let worst = 64 + 3 * (self.settings.client_id.len() + self.secret.len() + scope.len());
        let mut form = Zeroizing::new(String::with_capacity(worst));
        form.push_str("grant_type=client_credentials&client_id=");
        form_encode(&self.settings.client_id, &mut form);
        form.push_str("&client_secret=");
        form_encode(&self.secret, &mut form);
        form.push_str("&scope=");
        form_encode(scope, &mut form);
        let body =
            crate::outbound::secret_body(Zeroizing::new(std::mem::take(&mut *form).into_bytes()));
        let req = OutboundRequest::post(&url, "application/x-www-form-urlencoded", body);
        let resp = self.send(&req).map_err(|e| fail(e.to_string()))?;
        if !resp.is_success() {
            return Err(fail(format!("HTTP {}", resp.status)));
        }
        let parsed: TokenResponse = serde_json::from_slice(&resp.body)
            .map_err(|_| fail("response is not a token".into()))?;
        // expires_in is a number (v2.0) or a numeric string (v1.0); default one hour.
        let secs = match parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        let lifetime = Duration::from_secs(secs).saturating_sub(TOKEN_MARGIN);
        let value = Zeroizing::new(parsed.access_token);
        *cached = Some(Token {
            value: value.clone(),
            renew_at: Instant::now() + lifetime,
        });
        Ok(value)
    }

    fn forget_token(&self, slot: &Mutex<Option<Token>>) {
        if let Ok(mut t) = slot.lock() {
            *t = None;
        }
    }

    fn forget_service(&self) {
        if let Ok(mut s) = self.service.lock() {
            *s = None;
        }
    }

    /// The ScepRequestValidationFEService URL, from cache or Graph.
    fn service_uri(&self) -> Result<String, IntuneError> {
        if let Ok(s) = self.service.lock() {
            if let Some((uri, at)) = s.as_ref() {
                if at.elapsed() < DISCOVERY_TTL {
                    return Ok(uri.clone());
                }
            }
        }
        let fail = |s: String| IntuneError::Discovery(s);
        let token = self.token(&self.graph_token, &self.graph_scope())?;
        let url = format!(
            "{}/v1.0/servicePrincipals/appId={INTUNE_APP_ID}/endpoints",
            self.settings.graph_url.trim_end_matches('/')
        );
        let req = OutboundRequest::get(&url)
            .secret_header(AUTHORIZATION, format!("Bearer {}", token.as_str()));
        let resp = self.send(&req).map_err(|e| fail(e.to_string()))?;
        if resp.status == 401 {
            self.forget_token(&self.graph_token);
        }
        if !resp.is_success() {
            return Err(fail(format!("HTTP {}", resp.status)));
        }
        let endpoints: Endpoints = serde_json::from_slice(&resp.body)
            .map_err(|_| fail("response is not an endpoint list".into()))?;
        let uri = endpoints
            .value
            .into_iter()
            .find(|e| e.provider_name.eq_ignore_ascii_case(SCEP_SERVICE))
            .map(|e| e.uri.trim_end_matches('/').to_owned())
            .ok_or(IntuneError::ServiceMissing)?;
        crate::outbound::check_url(&uri).map_err(|e| fail(format!("discovered URL: {e}")))?;
        if let Ok(mut s) = self.service.lock() {
            *s = Some((uri.clone(), Instant::now()));
        }
        Ok(uri)
    }

    /// POSTs `body` (JSON, built with [`crate::outbound::secret_json`]: it holds the CSR and
    /// so its challenge) to `ScepActions/<action>` and returns Intune's answer.
    pub fn scep_action(
        &self,
        action: &'static str,
        body: &bytes::Bytes,
    ) -> Result<ActionResult, IntuneError> {
        let result = self.scep_action_once(action, body);
        if result.is_err() {
            self.forget_service();
        }
        result
    }

    fn scep_action_once(
        &self,
        action: &'static str,
        body: &bytes::Bytes,
    ) -> Result<ActionResult, IntuneError> {
        let fail = |reason: String| IntuneError::Action { action, reason };
        let uri = self.service_uri()?;
        let url = format!("{uri}/ScepActions/{action}");
        let mut fresh_token_tried = false;
        loop {
            let token = self.token(&self.intune_token, INTUNE_SCOPE)?;
            let req = OutboundRequest::post(&url, "application/json", body.clone())
                .secret_header(AUTHORIZATION, format!("Bearer {}", token.as_str()))
                .header(HeaderName::from_static("api-version"), API_VERSION)
                .header(
                    HeaderName::from_static("useragent"),
                    self.caller_info.clone(),
                );
            let resp = self.send(&req).map_err(|e| fail(e.to_string()))?;
            if resp.status == 401 && !fresh_token_tried {
                self.forget_token(&self.intune_token);
                fresh_token_tried = true;
                continue;
            }
            if !resp.is_success() {
                return Err(fail(format!("HTTP {}", resp.status)));
            }
            return serde_json::from_slice(&resp.body)
                .map_err(|_| fail("response is not {code, errorDescription}".into()));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_v4_uuids_and_fresh() {
        let a = request_id();
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, request_id());
    }

    #[test]
    fn form_values_are_percent_encoded() {
        let mut s = String::new();
        form_encode("https://api.manage.microsoft.com//.default a+b", &mut s);
        assert_eq!(
            s,
            "https%3A%2F%2Fapi.manage.microsoft.com%2F%2F.default%20a%2Bb"
        );
    }
}
