//! The one place where failures become SCEP failInfo or HTTP status. Clients get a short
//! generic reason; the detail goes to the log.

use scepd_pki::scep::{FailInfo, FailureReply};

/// A failure inside a PKIOperation that is answered with a signed CertRep FAILURE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScepFailure {
    /// Content cipher or digest refused.
    #[error("algorithm refused: {0}")]
    Algorithm(String),
    /// The request signature did not verify.
    #[error("signature: {0}")]
    Signature(String),
    /// Envelope not for us, undecryptable, or its content unparsable (deliberately one case).
    #[error("envelope: {0}")]
    Envelope(String),
    /// signingTime too far from our clock.
    #[error("signingTime off by {0} s")]
    Time(i64),
    /// The challenge was missing or wrong.
    #[error("challenge: {0}")]
    Challenge(String),
    /// A RenewalReq not signed by a current certificate of ours for the same subject.
    #[error("renewal: {0}")]
    Renewal(String),
    /// The certificate was issued but the delegated validator did not confirm it, so it was
    /// revoked and is not delivered.
    #[error("not confirmed by the validator: {0}")]
    NotConfirmed(String),
    /// Policy refused the request (key size, subject...).
    #[error("policy: {0}")]
    Policy(String),
    /// The device is suspended, deactivated or deleted.
    #[error("device is {0}")]
    Device(&'static str),
    /// The certificate of this transaction (replay, CertPoll) was revoked: never handed out.
    #[error("the certificate of this transaction is revoked")]
    Revoked,
    /// The transactionID was already used with another key.
    #[error("transactionID reused with a different key")]
    TransactionReuse,
    /// CertPoll/GetCert for something we do not have.
    #[error("not found: {0}")]
    NotFound(String),
    /// A message type we do not serve.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl ScepFailure {
    /// failInfo and the short client-facing text.
    pub fn reply(&self) -> FailureReply {
        let (fail_info, text) = match self {
            Self::Algorithm(t) => (FailInfo::BadAlg, t.clone()),
            Self::Signature(_) => (FailInfo::BadMessageCheck, "message signature did not verify".to_owned()),
            Self::Envelope(_) => (FailInfo::BadMessageCheck, "could not decrypt or parse the request".to_owned()),
            Self::Time(_) => (FailInfo::BadTime, "signingTime is too far from the CA's clock".to_owned()),
            Self::Challenge(_) => (FailInfo::BadRequest, "challenge password rejected".to_owned()),
            Self::Renewal(_) => (
                FailInfo::BadRequest,
                "renewal must be signed by a current, unrevoked certificate of this CA and keep its subject, names and device".to_owned(),
            ),
            Self::NotConfirmed(_) => (FailInfo::BadRequest, "the enrollment could not be confirmed; try again later".to_owned()),
            Self::Policy(t) => (FailInfo::BadRequest, t.clone()),
            Self::Device(state) => (
                FailInfo::BadRequest,
                format!("device is {state}: enrollment refused"),
            ),
            Self::Revoked => (
                FailInfo::BadRequest,
                "the certificate of this transaction was revoked: enroll with a new transactionID".to_owned(),
            ),
            Self::TransactionReuse => (FailInfo::BadRequest, "transactionID already used with a different key".to_owned()),
            Self::NotFound(t) => (FailInfo::BadCertId, t.clone()),
            Self::Unsupported(t) => (FailInfo::BadRequest, t.clone()),
        };
        FailureReply { fail_info, text }
    }
}

/// A failure answered at the HTTP level.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpFailure {
    /// Client sent something we cannot parse (400, one-line reason).
    #[error("{0}")]
    BadRequest(String),
    /// Unknown platform or path (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what exists (409): a name taken, a device in another state.
    #[error("{0}")]
    Conflict(String),
    /// Body too large (413).
    #[error("request body too large")]
    TooLarge,
    /// GET message longer than the body cap allows (414).
    #[error("request URI too long: send large requests with POST")]
    UriTooLong,
    /// The request body did not arrive within its deadline or minimum rate (408).
    #[error("request body not received in time")]
    RequestTimeout,
    /// Method not allowed (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Temporarily unable to serve (503), e.g. a full challenge cache.
    #[error("{0}")]
    Unavailable(String),
    /// This client is over its request rate (429).
    #[error("too many requests from this address: slow down")]
    TooManyRequests,
    /// Our own failure (500/503): store down, key failure. Never caused by client input.
    #[error("internal error")]
    Internal(String),
}

impl From<crate::store::StoreError> for HttpFailure {
    /// A store that cannot be reached (database down or restarting) is a 503 the client may
    /// retry; an unknown object is 404 and a conflict 409 (their texts name only what the
    /// caller asked for); any other store failure is ours (500), its detail for the log only.
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Unavailable(_) => Self::store_unavailable(&e),
            StoreError::NotFound { what, id } => Self::NotFound(format!("no {what} {id}")),
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::WrongDeviceState { state } => Self::Conflict(format!("device is {state}")),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<crate::trust::TrustError> for HttpFailure {
    fn from(e: crate::trust::TrustError) -> Self {
        match e {
            crate::trust::TrustError::Store(e) => e.into(),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<crate::revocation::RevocationError> for HttpFailure {
    fn from(e: crate::revocation::RevocationError) -> Self {
        match e {
            crate::revocation::RevocationError::Store(e) => e.into(),
            e @ crate::revocation::RevocationError::NotPublished(_) => {
                Self::Unavailable(e.to_string())
            }
            e => Self::Internal(e.to_string()),
        }
    }
}

impl HttpFailure {
    /// The store could not be reached: logged with `detail`, answered with a generic 503.
    pub fn store_unavailable(detail: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %detail, "request not served: store unavailable");
        Self::Unavailable("temporarily unavailable: retry".into())
    }

    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Self::BadRequest(_) => 400,
            Self::NotFound(_) => 404,
            Self::Conflict(_) => 409,
            Self::TooLarge => 413,
            Self::UriTooLong => 414,
            Self::MethodNotAllowed => 405,
            Self::RequestTimeout => 408,
            Self::Unavailable(_) => 503,
            Self::TooManyRequests => 429,
            Self::Internal(_) => 500,
        }
    }

    /// The machine-readable name of the failure (the admin API's `error` field).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::TooLarge => "too_large",
            Self::UriTooLong => "uri_too_long",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RequestTimeout => "timeout",
            Self::Unavailable(_) => "unavailable",
            Self::TooManyRequests => "too_many_requests",
            Self::Internal(_) => "internal",
        }
    }

    /// The one-line body sent to the client.
    pub fn client_text(&self) -> String {
        match self {
            Self::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        }
    }
}

/// An error and its sources in one line, `outer: inner: …`, a cause left out when the text
/// already ends with it (many errors repeat their source). For logs and operator messages:
/// hyper's and the postgres client's top-level texts ("client error", "error performing TLS
/// handshake") say nothing without their causes.
pub fn with_sources(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn store_errors_map_to_one_status_each_and_never_show_our_detail() {
        let cases = [
            (
                StoreError::NotFound {
                    what: "platform",
                    id: "p9".into(),
                },
                404,
                "not_found",
                "no platform p9",
            ),
            (
                StoreError::Conflict("name taken".into()),
                409,
                "conflict",
                "name taken",
            ),
            (
                StoreError::WrongDeviceState { state: "deleted" },
                409,
                "conflict",
                "device is deleted",
            ),
            (
                StoreError::Unavailable("connection refused at 10.0.0.5".into()),
                503,
                "unavailable",
                "temporarily unavailable: retry",
            ),
            (
                StoreError::Database {
                    context: "reading a platform",
                    source: rusqlite::Error::InvalidQuery,
                },
                500,
                "internal",
                "internal error",
            ),
        ];
        for (store, status, code, text) in cases {
            let e = HttpFailure::from(store);
            assert_eq!(
                (e.status(), e.code(), e.client_text().as_str()),
                (status, code, text)
            );
        }
    }
}
