//! A fake Azure AD + Microsoft Graph + Intune on one loopback port, playing the documented
//! third-party-CA protocol (docs/scep-protocol.md §4.3–4.5) strictly: it checks the token request
//! form, bearer tokens per audience, paths, `api-version`, fresh `client-request-id`s and the
//! exact payload fields, records every violation, and can be told to fail each step.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::fake_http::{FakeRequest, FakeResponse, FakeServer};

pub const TENANT: &str = "contoso.onmicrosoft.com";
pub const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
pub const CLIENT_SECRET: &str = "aad~secret/with+odd&chars=";
pub const INTUNE_SCOPE: &str = "https://api.manage.microsoft.com//.default";
const GRAPH_TOKEN: &str = "graph-token-xyz";
const INTUNE_TOKEN: &str = "intune-token-abc";
const ENDPOINTS: &str =
    "/v1.0/servicePrincipals/appId=0000000a-0000-0000-c000-000000000000/endpoints";
const SERVICE: &str = "/TrafficGateway/TrafficRoutingService/ScepRequestValidationFEService";

/// Which step the fake breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    None,
    /// The token endpoint answers 401 invalid_client.
    Token,
    /// The token endpoint answers after 500 ms (a slow Entra ID).
    TokenSlow,
    /// Graph answers 500.
    Discovery,
    /// Graph lists other services but not ScepRequestValidationFEService.
    ServiceMissing,
    /// validateRequest answers HTTP 500.
    Validate500,
    /// validateRequest answers ChallengeExpired.
    ValidateDenied,
    /// validateRequest answers after 4 s (longer than the tests' outbound timeout).
    ValidateSlow,
    /// successNotification answers HTTP 500.
    Success500,
    /// successNotification answers a non-Success code.
    SuccessCode,
}

#[derive(Default)]
pub struct Seen {
    /// Protocol violations (should stay empty).
    pub violations: Vec<String>,
    /// Token requests by scope.
    pub tokens: Vec<String>,
    pub discoveries: usize,
    /// (action, payload) of ScepActions calls.
    pub actions: Vec<(String, Value)>,
    request_ids: HashSet<String>,
}

pub struct FakeIntune {
    pub fake: FakeServer,
    pub fail: Arc<Mutex<Fail>>,
    pub seen: Arc<Mutex<Seen>>,
}

impl FakeIntune {
    pub fn url(&self) -> String {
        format!("http://{}", self.fake.addr)
    }

    pub fn set(&self, f: Fail) {
        *self.fail.lock().unwrap() = f;
    }

    pub fn actions(&self, name: &str) -> Vec<Value> {
        let seen = self.seen.lock().unwrap();
        seen.actions
            .iter()
            .filter(|(a, _)| a == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn violations(&self) -> Vec<String> {
        self.seen.lock().unwrap().violations.clone()
    }
}

fn form_decode(s: &str) -> Vec<(String, String)> {
    let dec = |v: &str| -> String {
        let b = scepd_pki::encoding::percent_decode(&v.replace('+', " "));
        String::from_utf8(b).unwrap_or_default()
    };
    s.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

/// Starts the fake; scepd's login and Graph URLs are both [`FakeIntune::url`], so the Graph
/// scope is `<url>/.default`. `expected_challenge` is the only challenge validateRequest
/// accepts.
pub fn start(expected_challenge: &'static str) -> FakeIntune {
    let fail = Arc::new(Mutex::new(Fail::None));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (f, s) = (fail.clone(), seen.clone());
    // The fake's own address is known only after binding.
    let addr_cell: Arc<Mutex<String>> = Arc::new(Mutex::new(String::new()));
    let cell = addr_cell.clone();
    let fake = FakeServer::start(move |r: &FakeRequest| {
        let addr = cell.lock().unwrap().clone();
        let mut seen = s.lock().unwrap();
        let mode = *f.lock().unwrap();
        let violation = |seen: &mut Seen, v: String| seen.violations.push(v);
        let rid = r.header("client-request-id").unwrap_or("").to_owned();
        // Token endpoint.
        if r.target == format!("/{TENANT}/oauth2/v2.0/token") {
            if r.method != "POST"
                || r.header("content-type") != Some("application/x-www-form-urlencoded")
            {
                violation(
                    &mut seen,
                    format!("token: {} {:?}", r.method, r.header("content-type")),
                );
            }
            let form = form_decode(&String::from_utf8_lossy(&r.body));
            let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            if get("grant_type").as_deref() != Some("client_credentials")
                || get("client_id").as_deref() != Some(CLIENT_ID)
            {
                violation(&mut seen, format!("token form: {form:?}"));
            }
            let scope = get("scope").unwrap_or_default();
            seen.tokens.push(scope.clone());
            if mode == Fail::Token || get("client_secret").as_deref() != Some(CLIENT_SECRET) {
                return FakeResponse::json(401, json!({"error": "invalid_client"}));
            }
            let graph_scope = format!("http://{addr}/.default");
            let token = if scope == INTUNE_SCOPE {
                INTUNE_TOKEN
            } else if scope == graph_scope {
                GRAPH_TOKEN
            } else {
                violation(&mut seen, format!("unknown scope {scope}"));
                return FakeResponse::json(400, json!({"error": "invalid_scope"}));
            };
            let answer = FakeResponse::json(
                200,
                json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}),
            );
            if mode == Fail::TokenSlow {
                return answer.delayed(std::time::Duration::from_millis(500));
            }
            return answer;
        }
        if !is_uuid(&rid) || !seen.request_ids.insert(rid.clone()) {
            violation(
                &mut seen,
                format!(
                    "{}: client-request-id {rid:?} missing, malformed or reused",
                    r.target
                ),
            );
        }
        // Graph service discovery.
        if r.target == ENDPOINTS {
            seen.discoveries += 1;
            if r.method != "GET"
                || r.header("authorization") != Some(&format!("Bearer {GRAPH_TOKEN}"))
            {
                violation(
                    &mut seen,
                    format!(
                        "discovery: {} auth {:?}",
                        r.method,
                        r.header("authorization")
                    ),
                );
                return FakeResponse::json(
                    401,
                    json!({"error": {"code": "InvalidAuthenticationToken"}}),
                );
            }
            if mode == Fail::Discovery {
                return FakeResponse::json(500, json!({"error": {"code": "InternalServerError"}}));
            }
            let mut value = vec![
                json!({"providerName": "PkiConnectorFEService", "uri": format!("http://{addr}/pki")}),
            ];
            if mode != Fail::ServiceMissing {
                value.push(json!({"providerName": "ScepRequestValidationFEService", "uri": format!("http://{addr}{SERVICE}")}));
            }
            return FakeResponse::json(200, json!({"@odata.context": "x", "value": value}));
        }
        // ScepActions.
        let Some(action) = r.target.strip_prefix(&format!("{SERVICE}/ScepActions/")) else {
            violation(&mut seen, format!("unexpected path {}", r.target));
            return FakeResponse::json(404, json!({}));
        };
        if r.method != "POST"
            || r.header("authorization") != Some(&format!("Bearer {INTUNE_TOKEN}"))
            || r.header("api-version") != Some("2018-02-20")
            || !r
                .header("content-type")
                .unwrap_or("")
                .starts_with("application/json")
        {
            violation(&mut seen, format!("{action}: headers {:?}", r.headers));
            return FakeResponse::json(401, json!({}));
        }
        let body = r.json();
        seen.actions.push((action.to_owned(), body.clone()));
        let csr_challenge = |b64: &Value| -> Option<String> {
            let der = scepd_pki::encoding::decode_base64_lenient(b64.as_str()?.as_bytes())?;
            let csr = scepd_pki::pkcs10::CertificationRequest::parse_and_verify(&der).ok()?;
            csr.challenge_password.map(|c| c.to_string())
        };
        let ok =
            |code: &str| FakeResponse::json(200, json!({"code": code, "errorDescription": ""}));
        match action {
            "validateRequest" => {
                let req = &body["request"];
                if keys(&body) != ["request"]
                    || keys(req) != ["callerInfo", "certificateRequest", "transactionId"]
                {
                    violation(&mut seen, format!("validateRequest payload {body}"));
                }
                if mode == Fail::Validate500 {
                    return FakeResponse::json(500, json!({}));
                }
                if mode == Fail::ValidateSlow {
                    return ok("Success").delayed(std::time::Duration::from_secs(4));
                }
                if mode == Fail::ValidateDenied {
                    return FakeResponse::json(
                        200,
                        json!({"code": "ChallengeExpired", "errorDescription": "The challenge has expired"}),
                    );
                }
                if csr_challenge(&req["certificateRequest"]).as_deref() != Some(expected_challenge)
                {
                    return ok("ChallengeDecodingError");
                }
                ok("Success")
            }
            "successNotification" => {
                let n = &body["notification"];
                let expected = [
                    "caConfiguration",
                    "callerInfo",
                    "certificateAuthority",
                    "certificateExpirationDateUtc",
                    "certificateRequest",
                    "certificateSerialNumber",
                    "certificateThumbprint",
                    "issuingCertificateAuthority",
                    "transactionId",
                ];
                let thumb = n["certificateThumbprint"].as_str().unwrap_or("");
                if keys(&body) != ["notification"]
                    || keys(n) != expected
                    || thumb.len() != 40
                    || !thumb
                        .chars()
                        .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
                    || !n["certificateExpirationDateUtc"]
                        .as_str()
                        .unwrap_or("")
                        .ends_with('Z')
                {
                    violation(&mut seen, format!("successNotification payload {body}"));
                }
                match mode {
                    Fail::Success500 => FakeResponse::json(500, json!({})),
                    Fail::SuccessCode => ok("CertificateRequestDecodingFailed"),
                    _ => ok("Success"),
                }
            }
            "failureNotification" => {
                let n = &body["notification"];
                let desc = n["errorDescription"].as_str().unwrap_or("");
                if keys(&body) != ["notification"]
                    || keys(n)
                        != [
                            "callerInfo",
                            "certificateRequest",
                            "errorDescription",
                            "hResult",
                            "transactionId",
                        ]
                    || !n["hResult"].is_i64()
                    || desc.is_empty()
                    || desc.chars().count() > 255
                {
                    violation(&mut seen, format!("failureNotification payload {body}"));
                }
                ok("Success")
            }
            other => {
                violation(&mut seen, format!("unknown action {other}"));
                FakeResponse::json(404, json!({}))
            }
        }
    });
    *addr_cell.lock().unwrap() = fake.addr.clone();
    FakeIntune { fake, fail, seen }
}
