//! Admin bearer tokens: generation (shown once), hashing, and request authentication.

use zeroize::Zeroizing;

use crate::challenge::secret;
use crate::store::AdminToken;
use crate::store::{Store, StoreError};

/// Token scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    Admin,
    /// GET endpoints only.
    Read,
}

impl Scope {
    /// Parses `admin` / `read`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "read" => Some(Self::Read),
            _ => None,
        }
    }

    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Read => "read",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Token name (the audit trail's "who").
    pub name: String,
    /// Its scope.
    pub scope: Scope,
}

/// Token prefix, so leaked tokens are recognisable by secret scanners.
pub const PREFIX: &str = "scepd_";

/// Creates a token; returns the secret (shown once) — only its hash is stored.
pub fn create(
    store: &Store,
    name: &str,
    scope: Scope,
    expires_at: Option<i64>,
    now: i64,
) -> Result<Zeroizing<String>, StoreError> {
    let secret = secret::generate().map_err(|_| StoreError::Invalid {
        field: "token",
        reason: "random source failed".into(),
    })?;
    let token = Zeroizing::new(format!("{PREFIX}{}", secret.as_str()));
    let t = AdminToken {
        name: name.to_owned(),
        scope: scope.as_str().to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
    };
    store.insert_admin_token(&t, &secret::hash(&token))?;
    Ok(token)
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No or malformed Authorization header, or unknown/revoked/expired token (401).
    Unauthenticated,
}

/// Authenticates an `Authorization: Bearer <token>` header value.
pub fn authenticate(store: &Store, header: Option<&str>, now: i64) -> Result<Caller, AuthError> {
    let token = header
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| t.starts_with(PREFIX) && t.len() < 128)
        .ok_or(AuthError::Unauthenticated)?;
    // The lookup is by hash: equal hashes are the comparison, so no secret is compared in
    // variable time.
    let t = store
        .admin_token_by_hash(&secret::hash(token))
        .ok()
        .flatten()
        .ok_or(AuthError::Unauthenticated)?;
    if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= now) {
        return Err(AuthError::Unauthenticated);
    }
    let scope = Scope::parse(&t.scope).ok_or(AuthError::Unauthenticated)?;
    Ok(Caller {
        name: t.name,
        scope,
    })
}
