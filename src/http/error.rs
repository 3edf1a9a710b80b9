//! The one place every failure gets its HTTP status: the SCEP, challenge, revocation, trust
//! and admin handlers all answer through [`HttpFailure`]. Clients get a short generic reason;
//! the detail goes to the log.

use crate::authority::AuthorityError;

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
    /// Our own failure (500): a key, the store, a worker. Never caused by client input; its
    /// detail is logged, never sent.
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

impl From<crate::cpu_pool::PoolError> for HttpFailure {
    fn from(e: crate::cpu_pool::PoolError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<AuthorityError> for HttpFailure {
    fn from(e: AuthorityError) -> Self {
        match e {
            AuthorityError::NotScep(_) => Self::BadRequest("not a SCEP pkiMessage".into()),
            AuthorityError::UnknownPlatform => Self::NotFound("unknown SCEP platform".into()),
            e @ AuthorityError::PlatformChanging => Self::Unavailable(e.to_string()),
            AuthorityError::Unavailable(detail) => Self::store_unavailable(&detail),
            e @ (AuthorityError::Pki(_) | AuthorityError::Internal(_)) => {
                Self::Internal(e.to_string())
            }
        }
    }
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
