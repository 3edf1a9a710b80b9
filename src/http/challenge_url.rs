//! The dynamic-challenge URL: `GET /scep/<platform_id>/challenge`, and the NDES path
//! `GET /certsrv/mscep_admin/` that selects the platform by the Basic-auth user name.
//!
//! Each authenticated GET hands out one fresh one-time challenge. The default body is the page
//! NDES's `mscep_admin` serves, as MDMs scrape it (docs/scep-protocol.md §3.1): HTML in UTF-16LE
//! with a BOM, `The enrollment challenge password is: <B> CHALLENGE </B>` with single spaces, and
//! the expiry sentence. `Accept: application/json` or `?format=json` gets
//! `{"challenge": "…", "expires_at": "<RFC 3339>"}` instead. A full password cache is answered
//! like NDES ("The password cache is full.") but with 503, so MDMs that check the status stop.
//! Wrong or missing credentials get 401 with `WWW-Authenticate: Basic`; repeated failures per
//! client address get 429 ([`super::auth_limiter`]). Passwords never reach the log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request};
use scepd_pki::encoding::decode_base64_lenient;
use scepd_pki::scep::http::query_param;
use zeroize::Zeroizing;

use super::scep::blocking;
use super::{App, HttpResponse, failure_response, response};
use crate::challenge::dynamic::{self, HandOutError, HandedOut};
use crate::challenge::secret;
use crate::clock::unix_now;
use crate::http::error::HttpFailure;
use crate::store::Platform;

/// Which challenge URL was asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `/scep/<platform_id>/challenge`.
    Platform(String),
    /// `/certsrv/mscep_admin/` (platform chosen by user name).
    NdesAdmin,
}

/// Recognises the challenge URL paths.
pub fn target_from_path(path: &str) -> Option<Target> {
    if let Some(id) = path
        .strip_prefix("/scep/")
        .and_then(|r| r.strip_suffix("/challenge"))
    {
        let ok = !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric());
        return ok.then(|| Target::Platform(id.to_owned()));
    }
    let lower = path.to_ascii_lowercase();
    matches!(
        lower.as_str(),
        "/certsrv/mscep_admin" | "/certsrv/mscep_admin/" | "/certsrv/mscep_admin/default.asp"
    )
    .then_some(Target::NdesAdmin)
}

/// HTTP Basic credentials; the password is wiped on drop.
struct Credentials {
    username: String,
    password: Zeroizing<String>,
}

fn basic_credentials(headers: &HeaderMap) -> Option<Credentials> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = Zeroizing::new(decode_base64_lenient(b64.trim().as_bytes())?);
    let text = Zeroizing::new(String::from_utf8(raw.to_vec()).ok()?);
    let (user, pass) = text.split_once(':')?;
    Some(Credentials {
        username: user.to_owned(),
        password: Zeroizing::new(pass.to_owned()),
    })
}

/// `DOMAIN\user` and `user@domain` name the same user as `user` (NDES habits of MDM admins).
fn bare_username(name: &str) -> &str {
    let name = name.rsplit_once('\\').map_or(name, |(_, u)| u);
    name.split_once('@').map_or(name, |(u, _)| u)
}

/// A user name fit for a log line: at most 64 characters, no control characters.
fn loggable(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(64).collect()
}

fn wants_json(req: &Request<Incoming>) -> bool {
    let query = req.uri().query().unwrap_or("");
    if query_param(query, "format").is_some_and(|f| f.eq_ignore_ascii_case("json")) {
        return true;
    }
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("application/json"))
}

fn with_header(mut r: HttpResponse, name: header::HeaderName, value: &str) -> HttpResponse {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
    r
}

fn no_store(r: HttpResponse) -> HttpResponse {
    with_header(r, header::CACHE_CONTROL, "no-store")
}

fn unauthorized() -> HttpResponse {
    let r = response(
        401,
        "text/plain; charset=utf-8",
        "authentication required\n",
    );
    with_header(
        r,
        header::WWW_AUTHENTICATE,
        "Basic realm=\"scepd challenge\", charset=\"UTF-8\"",
    )
}

/// HTML in UTF-16LE with a byte-order mark, as NDES sends it.
fn utf16_html(status: u16, html: &str) -> HttpResponse {
    let mut body = Vec::with_capacity(2 + html.len() * 2);
    body.extend_from_slice(&[0xFF, 0xFE]);
    for unit in html.encode_utf16() {
        body.extend_from_slice(&unit.to_le_bytes());
    }
    no_store(response(status, "text/html; charset=utf-16", body))
}

const PAGE_HEAD: &str = "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; charset=UTF-16\">\
<Title>Network Device Enrollment Service</Title></Head><Body BgColor=#FFFFFF><Font ID=locPageFont Face=\"Arial\">\
<P ID=locPageDesc> This Network Device Enrollment Service compatible page (scepd) lets you obtain certificates \
for devices using the Simple Certificate Enrollment Protocol (SCEP). </P>";
const PAGE_TAIL: &str = "</Font></Body></HTML>";

/// The NDES `mscep_admin` success page.
fn challenge_page(handed: &HandedOut, thumbprint: &str) -> HttpResponse {
    let minutes = (handed.ttl_secs + 59) / 60;
    let html = Zeroizing::new(format!(
        "{PAGE_HEAD}<P> To complete certificate enrollment for your device you will need the following information: \
<P> The thumbprint (hash value) for the CA certificate is: <B> {thumbprint} </B> \
<P> The enrollment challenge password is: <B> {} </B> \
<P> This password can be used only once and will expire within {minutes} minutes. \
<P> Each enrollment requires a new challenge password. You can refresh this web page to obtain a new challenge password. </P>{PAGE_TAIL}",
        handed.challenge.as_str()
    ));
    utf16_html(200, &html)
}

fn cache_full(json: bool) -> HttpResponse {
    let r = if json {
        no_store(response(
            503,
            "application/json",
            "{\"error\":\"The password cache is full.\"}",
        ))
    } else {
        utf16_html(
            503,
            &format!(
                "{PAGE_HEAD}<P> The password cache is full. </P><P> Unused passwords expire; \
                 try again later. </P>{PAGE_TAIL}"
            ),
        )
    };
    with_header(r, header::RETRY_AFTER, "60")
}

/// Handles a challenge URL request.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    peer: SocketAddr,
    target: Target,
) -> HttpResponse {
    if req.method() != Method::GET {
        return failure_response(&HttpFailure::MethodNotAllowed);
    }
    if let Some(wait) = app.auth_limiter.blocked(peer.ip(), Instant::now()) {
        tracing::warn!(%peer, "challenge URL: client locked out after repeated failed logins");
        let r = response(
            429,
            "text/plain; charset=utf-8",
            "too many failed logins; try again later\n",
        );
        return with_header(r, header::RETRY_AFTER, &wait.as_secs().max(1).to_string());
    }
    let json = wants_json(&req);
    let Some(creds) = basic_credentials(req.headers()) else {
        return unauthorized();
    };
    let platform = {
        let (app, target, user) = (app.clone(), target.clone(), creds.username.clone());
        blocking(move || lookup(&app, &target, &user)).await
    };
    let platform = match platform {
        Ok(p) => p,
        Err(f) => return failure_response(&f),
    };
    let authenticated = match &platform {
        Some(p) => dynamic::settings(p).is_some_and(|s| {
            dynamic::authenticate(s, bare_username(&creds.username), &creds.password)
        }),
        None => {
            // Same work as a real check, so timing does not tell which user names exist.
            let _ = secret::matches(&creds.password, &[0; 32]);
            false
        }
    };
    let Some(platform) = platform.filter(|_| authenticated) else {
        let failures = app.auth_limiter.failed(peer.ip(), Instant::now());
        tracing::warn!(%peer, target = ?target, user = %loggable(&creds.username), failures,
            "challenge URL: wrong credentials");
        return unauthorized();
    };
    app.auth_limiter.succeeded(peer.ip());
    drop(creds);
    let handed = {
        let (app, platform) = (app.clone(), platform.clone());
        blocking(move || {
            dynamic::hand_out(app.authority.store(), &platform, unix_now()).map_err(|e| match e {
                HandOutError::CacheFull => HttpFailure::Unavailable(e.to_string()),
                other => HttpFailure::Internal(other.to_string()),
            })
        })
        .await
    };
    match handed {
        Ok(h) => {
            app.metrics.challenge_fetch();
            tracing::info!(platform = %platform.id, %peer, expires_at = h.expires_at, "handed out a one-time challenge");
            if json {
                let body = Zeroizing::new(
                    serde_json::json!({
                        "challenge": h.challenge.as_str(),
                        "expires_at": scepd_pki::encoding::rfc3339(h.expires_at),
                    })
                    .to_string(),
                );
                no_store(response(200, "application/json", body.as_bytes().to_vec()))
            } else {
                challenge_page(
                    &h,
                    &dynamic::ndes_thumbprint(&app.authority.root_certificate()),
                )
            }
        }
        Err(HttpFailure::Unavailable(_)) => {
            tracing::warn!(platform = %platform.id, %peer, "challenge URL: the password cache is full");
            cache_full(json)
        }
        Err(f) => failure_response(&f),
    }
}

fn lookup(app: &App, target: &Target, username: &str) -> Result<Option<Platform>, HttpFailure> {
    let store = app.authority.store();
    let found = match target {
        Target::Platform(id) => store.platform(id),
        Target::NdesAdmin => store.dynamic_platform_by_username(bare_username(username)),
    };
    found.map_err(HttpFailure::from)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            target_from_path("/scep/abc123/challenge"),
            Some(Target::Platform("abc123".into()))
        );
        assert_eq!(target_from_path("/scep//challenge"), None);
        assert_eq!(target_from_path("/scep/a-b/challenge"), None);
        assert_eq!(target_from_path("/scep/abc"), None);
        for p in [
            "/certsrv/mscep_admin/",
            "/CertSrv/mscep_admin",
            "/certsrv/mscep_admin/default.asp",
        ] {
            assert_eq!(target_from_path(p), Some(Target::NdesAdmin), "{p}");
        }
        assert_eq!(target_from_path("/certsrv/mscep/mscep.dll"), None);
    }

    #[test]
    fn basic_auth_parsing_and_user_name_forms() {
        let mut h = HeaderMap::new();
        // "user:pa:ss" — the password may contain ':'.
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwYTpzcw=="),
        );
        let c = basic_credentials(&h).unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("user", "pa:ss")
        );
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer x"));
        assert!(basic_credentials(&h).is_none());
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&h).is_none());
        assert_eq!(bare_username("CORP\\scepd-x"), "scepd-x");
        assert_eq!(bare_username("scepd-x@corp.example"), "scepd-x");
        assert_eq!(loggable("a\nb"), "ab");
    }
}
