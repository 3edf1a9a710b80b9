//! Webhook mode (generic delegated validation): each request is POSTed to the customer's
//! service, which answers allow or deny.
//!
//! Request: `POST <url>`, `Content-Type: application/json`,
//! `X-Scepd-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, body
//! `{"platform_id", "transaction_id", "challenge", "csr" (base64 DER), "subject", "sans"}`.
//! Response: `{"allow": bool, "reason": string?}`. A non-2xx status, a timeout or a body that is
//! not that JSON denies (fail closed). After the outcome, `{"event": "issued", …}` or
//! `{"event": "failed", …}` is POSTed the same way, signed, best effort (not waited for).

use aws_lc_rs::hmac;
use hyper::header::HeaderName;
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::{
    Authorization, ChallengeError, ChallengeRequest, ChallengeVerifier, IssuedFacts, NotifyError,
};
use crate::outbound::{Outbound, OutboundRequest};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-scepd-signature";
/// Longest reason from the webhook that is logged.
const MAX_REASON_CHARS: usize = 200;

/// Verifies requests by asking a webhook.
pub struct WebhookVerifier {
    platform_id: String,
    url: String,
    key: hmac::Key,
    http: Outbound,
}

/// The webhook's answer.
#[derive(Deserialize)]
struct Decision {
    allow: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// `sha256=<hex>` of HMAC-SHA256(`key`, `body`).
pub fn signature(key: &hmac::Key, body: &[u8]) -> String {
    format!("sha256={}", scepd_pki::hex(hmac::sign(key, body).as_ref()))
}

/// A reason fit for a log line: printable, at most [`MAX_REASON_CHARS`] characters.
fn sanitize(reason: &str) -> String {
    reason
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON_CHARS)
        .collect()
}

impl WebhookVerifier {
    /// A verifier for `platform_id` posting to `url`, signing with `secret`.
    pub fn new(platform_id: &str, url: &str, secret: &Zeroizing<String>, http: Outbound) -> Self {
        Self {
            platform_id: platform_id.to_owned(),
            url: url.to_owned(),
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            http,
        }
    }

    fn signed(&self, body: bytes::Bytes) -> OutboundRequest {
        let sig = signature(&self.key, &body);
        OutboundRequest::post(&self.url, "application/json", body)
            .header(HeaderName::from_static(SIGNATURE_HEADER), sig)
    }

    fn notify(&self, event: serde_json::Value) {
        self.http.send_detached(
            self.signed(event.to_string().into()),
            "webhook notification",
        );
    }
}

impl ChallengeVerifier for WebhookVerifier {
    fn verify(&self, req: &ChallengeRequest<'_>) -> Result<Authorization, ChallengeError> {
        // The body carries the challenge: serialized from borrowed fields straight into
        // memory that is wiped when the request is done (no owned copy of the challenge).
        #[derive(serde::Serialize)]
        struct Body<'a> {
            platform_id: &'a str,
            transaction_id: &'a str,
            challenge: Option<&'a str>,
            csr: String,
            subject: &'a str,
            sans: &'a [String],
        }
        let body = crate::outbound::secret_json(&Body {
            platform_id: &self.platform_id,
            transaction_id: req.transaction_id,
            challenge: req.challenge.map(|c| c.as_str()),
            csr: scepd_pki::encoding::encode_base64(req.csr_der),
            subject: req.subject,
            sans: req.sans,
        })
        .map_err(|e| ChallengeError::Unavailable(format!("webhook body: {e}")))?;
        let unavailable = |why: String| ChallengeError::Unavailable(format!("webhook {why}"));
        let resp = self
            .http
            .send_blocking(self.signed(body))
            .map_err(|e| unavailable(e.to_string()))?;
        if !resp.is_success() {
            return Err(unavailable(format!("answered HTTP {}", resp.status)));
        }
        let decision: Decision = serde_json::from_slice(&resp.body)
            .map_err(|_| unavailable("answered with invalid JSON".into()))?;
        if !decision.allow {
            let reason = decision
                .reason
                .as_deref()
                .map_or_else(|| "no reason given".to_owned(), sanitize);
            return Err(ChallengeError::Denied(reason));
        }
        Ok(Authorization {
            platform_id: self.platform_id.clone(),
            method: "webhook",
            one_time: None,
        })
    }

    fn issued(
        &self,
        req: &ChallengeRequest<'_>,
        cert: &IssuedFacts<'_>,
    ) -> Result<(), NotifyError> {
        self.notify(json!({
            "event": "issued",
            "platform_id": self.platform_id,
            "transaction_id": req.transaction_id,
            "serial": scepd_pki::hex(cert.serial),
            "subject": cert.subject,
            "not_after": scepd_pki::encoding::rfc3339(cert.not_after),
            "certificate": scepd_pki::encoding::encode_base64(cert.der),
        }));
        Ok(())
    }

    fn failed(&self, req: &ChallengeRequest<'_>, reason: &str) {
        self.notify(json!({
            "event": "failed",
            "platform_id": self.platform_id,
            "transaction_id": req.transaction_id,
            "reason": sanitize(reason),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            signature(&key, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(sanitize("a\nb"), "ab");
    }
}
