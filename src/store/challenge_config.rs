//! How a platform's challenge is checked, and how that is kept in the `platforms` row: a kind
//! name (`challenge_kind`), kind-specific JSON settings (`challenge_settings`) and an optional
//! SHA-256 (`challenge_secret_hash`). New kinds are new variants; the schema need not change.
//!
//! Secrets that must be usable in clear (an Azure AD client secret, a webhook HMAC key) are
//! never in the database: they live in 0600 files under `<data_dir>/secrets/`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{SHA256_LEN, StoreError};

/// How a platform's challenge password is checked.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChallengeConfig {
    /// One shared secret; the store keeps its SHA-256 (computed by the caller).
    Static {
        /// SHA-256 of the secret, exactly 32 bytes.
        secret_hash: Vec<u8>,
    },
    /// One-time challenges fetched from an NDES-compatible challenge URL.
    Dynamic(DynamicSettings),
    /// Microsoft Intune generates the challenge; Intune validates each request.
    Intune(IntuneSettings),
    /// A customer web service decides each request.
    Webhook(WebhookSettings),
}

/// Settings of a dynamic platform.
#[derive(Clone, PartialEq, Eq)]
pub struct DynamicSettings {
    /// HTTP Basic user name for the challenge URL; unique across dynamic platforms.
    pub username: String,
    /// SHA-256 of the challenge URL password (32 bytes).
    pub password_hash: Vec<u8>,
    /// How long a fetched challenge stays valid, seconds.
    pub ttl_secs: i64,
    /// At most this many unexpired, unused challenges at once ("the password cache").
    pub max_outstanding: u32,
}

/// Settings of an Intune (delegated) platform. The client secret is in a secrets file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntuneSettings {
    /// Azure AD (Entra ID) tenant, e.g. `contoso.onmicrosoft.com` or a GUID.
    pub tenant: String,
    /// Application (client) id of the app registration.
    pub client_id: String,
    /// OAuth2 authority base URL (default `https://login.microsoftonline.com`).
    pub login_url: String,
    /// Microsoft Graph base URL (default `https://graph.microsoft.com`).
    pub graph_url: String,
}

/// Settings of a webhook platform. The HMAC key is in a secrets file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where each request is POSTed for a decision.
    pub url: String,
}

/// The JSON form of [`DynamicSettings`] without the hash (which has its own column).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DynamicJson {
    username: String,
    ttl_secs: i64,
    max_outstanding: u32,
}

impl ChallengeConfig {
    /// The kind name stored in `challenge_kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Static { .. } => "static",
            Self::Dynamic(_) => "dynamic",
            Self::Intune(_) => "intune",
            Self::Webhook(_) => "webhook",
        }
    }

    /// Splits into (kind, JSON settings, secret hash) columns, checking hash sizes.
    pub(super) fn encode(&self) -> Result<(&'static str, String, Option<&[u8]>), StoreError> {
        let json = |v: Result<String, serde_json::Error>| {
            v.map_err(|e| StoreError::Invalid {
                field: "challenge settings",
                reason: e.to_string(),
            })
        };
        let (settings, hash) = match self {
            Self::Static { secret_hash } => ("{}".to_owned(), Some(secret_hash.as_slice())),
            Self::Dynamic(d) => {
                if d.ttl_secs <= 0 || d.max_outstanding == 0 || d.username.is_empty() {
                    return Err(StoreError::Invalid {
                        field: "dynamic challenge settings",
                        reason: "TTL and cache size must be positive, username non-empty".into(),
                    });
                }
                let j = DynamicJson {
                    username: d.username.clone(),
                    ttl_secs: d.ttl_secs,
                    max_outstanding: d.max_outstanding,
                };
                (
                    json(serde_json::to_string(&j))?,
                    Some(d.password_hash.as_slice()),
                )
            }
            Self::Intune(s) => (json(serde_json::to_string(s))?, None),
            Self::Webhook(s) => (json(serde_json::to_string(s))?, None),
        };
        if let Some(h) = hash {
            if h.len() != SHA256_LEN {
                return Err(StoreError::Invalid {
                    field: "challenge secret_hash",
                    reason: format!("expected {SHA256_LEN} bytes (SHA-256), got {}", h.len()),
                });
            }
        }
        Ok((self.kind(), settings, hash))
    }

    /// Rebuilds from the columns; `Err` carries the reason the row is corrupt.
    pub(super) fn decode(
        kind: &str,
        settings: &str,
        secret_hash: Option<Vec<u8>>,
    ) -> Result<Self, String> {
        let hash = || match &secret_hash {
            Some(h) if h.len() == SHA256_LEN => Ok(h.clone()),
            _ => Err(format!("bad {kind} secret hash")),
        };
        let bad = |e: serde_json::Error| format!("bad {kind} challenge settings: {e}");
        Ok(match kind {
            "static" => {
                serde_json::from_str::<serde_json::Value>(settings).map_err(bad)?;
                Self::Static {
                    secret_hash: hash()?,
                }
            }
            "dynamic" => {
                let j: DynamicJson = serde_json::from_str(settings).map_err(bad)?;
                Self::Dynamic(DynamicSettings {
                    username: j.username,
                    password_hash: hash()?,
                    ttl_secs: j.ttl_secs,
                    max_outstanding: j.max_outstanding,
                })
            }
            "intune" => Self::Intune(serde_json::from_str(settings).map_err(bad)?),
            "webhook" => Self::Webhook(serde_json::from_str(settings).map_err(bad)?),
            other => {
                return Err(format!(
                    "unknown challenge kind '{other}' (written by a newer scepd?)"
                ));
            }
        })
    }
}

/// Never prints hash bytes: a hash of a weak secret can be brute-forced from logs.
impl fmt::Debug for ChallengeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static { secret_hash } => f
                .debug_struct("Static")
                .field(
                    "secret_hash",
                    &format_args!("<{} bytes>", secret_hash.len()),
                )
                .finish(),
            Self::Dynamic(d) => f.debug_tuple("Dynamic").field(d).finish(),
            Self::Intune(s) => f.debug_tuple("Intune").field(s).finish(),
            Self::Webhook(s) => f.debug_tuple("Webhook").field(s).finish(),
        }
    }
}

impl fmt::Debug for DynamicSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamicSettings")
            .field("username", &self.username)
            .field(
                "password_hash",
                &format_args!("<{} bytes>", self.password_hash.len()),
            )
            .field("ttl_secs", &self.ttl_secs)
            .field("max_outstanding", &self.max_outstanding)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_hashes() {
        let c = ChallengeConfig::Static {
            secret_hash: vec![0xab; 32],
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(shown.contains("32 bytes"), "{shown}");
        let d = ChallengeConfig::Dynamic(DynamicSettings {
            username: "u".into(),
            password_hash: vec![0xab; 32],
            ttl_secs: 60,
            max_outstanding: 5,
        });
        let shown = format!("{d:?}");
        assert!(
            !shown.contains("171") && shown.contains("32 bytes"),
            "{shown}"
        );
    }

    #[test]
    fn every_kind_round_trips_through_its_columns() {
        let configs = [
            ChallengeConfig::Static {
                secret_hash: vec![1; 32],
            },
            ChallengeConfig::Dynamic(DynamicSettings {
                username: "scepd-x".into(),
                password_hash: vec![2; 32],
                ttl_secs: 3600,
                max_outstanding: 7,
            }),
            ChallengeConfig::Intune(IntuneSettings {
                tenant: "contoso.onmicrosoft.com".into(),
                client_id: "c1".into(),
                login_url: "https://login.microsoftonline.com".into(),
                graph_url: "https://graph.microsoft.com".into(),
            }),
            ChallengeConfig::Webhook(WebhookSettings {
                url: "https://hooks.example/scep".into(),
            }),
        ];
        for c in configs {
            let (kind, settings, hash) = c.encode().unwrap();
            let back = ChallengeConfig::decode(kind, &settings, hash.map(<[u8]>::to_vec)).unwrap();
            assert_eq!(back, c);
        }
    }

    #[test]
    fn bad_rows_are_reported_not_panicked() {
        assert!(ChallengeConfig::decode("dynamic", "{}", Some(vec![0; 32])).is_err());
        assert!(
            ChallengeConfig::decode(
                "dynamic",
                r#"{"username":"u","ttl_secs":1,"max_outstanding":1}"#,
                None
            )
            .is_err()
        );
        assert!(ChallengeConfig::decode("webhook", "[]", None).is_err());
        assert!(ChallengeConfig::decode("quantum", "{}", None).is_err());
    }
}
