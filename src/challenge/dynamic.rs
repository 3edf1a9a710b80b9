//! Dynamic mode: the MDM fetches a fresh one-time challenge per device from the platform's
//! challenge URL (NDES `mscep_admin` style, HTTP Basic auth) and puts it in the device's SCEP
//! payload. Challenges are stored only as SHA-256, expire after the platform's TTL and are
//! consumed with the certificate they authorise (see the module docs of [`super`]).

use std::sync::Arc;

use zeroize::Zeroizing;

use super::{Authorization, ChallengeError, ChallengeRequest, ChallengeVerifier, secret};
use crate::store::{ChallengeIssue, DynamicSettings, OneTimeState, Platform, Store, StoreError};

/// Default lifetime of a fetched challenge (NDES: 60 minutes).
pub const DEFAULT_TTL_SECS: i64 = 3600;
/// Default bound on unexpired, unused challenges per platform. NDES keeps 5, which a mass
/// rollout (one fetch per device) exhausts at once; 1000 still caps what stolen challenge-URL
/// credentials can pile up.
pub const DEFAULT_MAX_OUTSTANDING: u32 = 1000;

/// Verifies one-time challenges of a dynamic platform.
pub struct DynamicVerifier {
    /// The store holding the challenges.
    pub store: Arc<Store>,
    /// The platform.
    pub platform_id: String,
}

impl ChallengeVerifier for DynamicVerifier {
    /// Read-only: whether the challenge is still unused when the certificate is recorded is
    /// decided atomically there ([`Authorization::one_time`]).
    fn verify(&self, req: &ChallengeRequest<'_>) -> Result<Authorization, ChallengeError> {
        let candidate = req.challenge.ok_or(ChallengeError::Missing)?;
        let sha256 = secret::hash(candidate);
        let state = self
            .store
            .dynamic_challenge_state(&self.platform_id, &sha256, req.now)
            .map_err(|e| ChallengeError::Internal(e.to_string()))?;
        match state {
            OneTimeState::Outstanding { .. } => Ok(Authorization {
                platform_id: self.platform_id.clone(),
                method: "dynamic",
                one_time: Some(sha256),
            }),
            OneTimeState::Consumed => Err(ChallengeError::Used),
            OneTimeState::Expired => Err(ChallengeError::Expired),
            OneTimeState::Unknown => Err(ChallengeError::Rejected),
        }
    }
}

/// The dynamic settings of a platform, if it is dynamic.
pub fn settings(platform: &Platform) -> Option<&DynamicSettings> {
    match &platform.challenge {
        crate::store::ChallengeConfig::Dynamic(d) => Some(d),
        _ => None,
    }
}

/// Checks challenge-URL credentials in constant time (both fields are always compared).
pub fn authenticate(settings: &DynamicSettings, username: &str, password: &str) -> bool {
    let user_ok = secret::same(username, &settings.username);
    let pass_ok = secret::matches(password, &settings.password_hash);
    user_ok & pass_ok
}

/// A challenge handed out by the challenge URL.
pub struct HandedOut {
    /// The challenge, shown once.
    pub challenge: Zeroizing<String>,
    /// Expiry, unix seconds.
    pub expires_at: i64,
    /// The platform's TTL in seconds (for the page's "expires within N minutes").
    pub ttl_secs: i64,
}

/// Why no challenge was handed out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HandOutError {
    /// The platform already has its maximum of outstanding challenges.
    #[error("The password cache is full.")]
    CacheFull,
    /// The platform is not dynamic.
    #[error("platform is not a dynamic-challenge platform")]
    NotDynamic,
    /// The random source failed.
    #[error("random source failed")]
    Random,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Generates, stores (hashed) and returns a fresh challenge for `platform`.
pub fn hand_out(store: &Store, platform: &Platform, now: i64) -> Result<HandedOut, HandOutError> {
    let s = settings(platform).ok_or(HandOutError::NotDynamic)?;
    let challenge = secret::generate_one_time().map_err(|_| HandOutError::Random)?;
    let expires_at = now.saturating_add(s.ttl_secs);
    let hash = secret::hash(&challenge);
    match store.add_dynamic_challenge(&platform.id, &hash, now, expires_at, s.max_outstanding)? {
        ChallengeIssue::Added => Ok(HandedOut {
            challenge,
            expires_at,
            ttl_secs: s.ttl_secs,
        }),
        ChallengeIssue::CacheFull => Err(HandOutError::CacheFull),
    }
}

/// The CA thumbprint line of the NDES page: SHA-1 of the root certificate in upper-case hex,
/// in groups of 8 like NDES prints it — the value Windows' `CAThumbprint` and Apple's
/// `CAFingerprint` take.
pub fn ndes_thumbprint(cert_der: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, cert_der);
    let hex = scepd_pki::hex(d.as_ref()).to_ascii_uppercase();
    hex.as_bytes()
        .chunks(8)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A challenge TTL ([`scepd_pki::encoding::parse_duration`]: `60m`, `1h`, `3600`, ...) between
/// 1 second and 7 days.
pub fn parse_ttl(text: &str) -> Option<i64> {
    scepd_pki::encoding::parse_duration(text).filter(|secs| *secs <= 7 * 86_400)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn ttl_parsing() {
        assert_eq!(parse_ttl("60m"), Some(3600));
        assert_eq!(parse_ttl("1h"), Some(3600));
        assert_eq!(parse_ttl("90s"), Some(90));
        assert_eq!(parse_ttl("120"), Some(120));
        assert_eq!(parse_ttl("2d"), Some(172_800));
        assert_eq!(parse_ttl("1s"), Some(1));
        for bad in ["", "m", "0s", "8d", "1x", "-5m", "99999999999999999999h"] {
            assert_eq!(parse_ttl(bad), None, "{bad}");
        }
    }

    #[test]
    fn thumbprint_is_grouped_upper_hex() {
        let t = ndes_thumbprint(b"x");
        assert_eq!(t.len(), 40 + 4);
        assert!(
            t.chars()
                .all(|c| c == ' ' || c.is_ascii_digit() || c.is_ascii_uppercase())
        );
    }

    #[test]
    fn credentials_must_both_match() {
        let s = DynamicSettings {
            username: "scepd-abc".into(),
            password_hash: secret::hash("pw"),
            ttl_secs: 60,
            max_outstanding: 1,
        };
        assert!(authenticate(&s, "scepd-abc", "pw"));
        assert!(!authenticate(&s, "scepd-abc", "pw2"));
        assert!(!authenticate(&s, "scepd-abd", "pw"));
    }
}
