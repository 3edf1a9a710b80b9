//! Platform (enrollment profile) creation: ids, names and one-time secrets.

use serde::Serialize;
use zeroize::Zeroizing;

use crate::challenge::secret;
use crate::outbound::check_url;
use crate::secrets::{self, SecretError, SecretFiles};
use crate::store::{
    ChallengeConfig, DynamicSettings, IntuneSettings, Platform, Store, StoreError, WebhookSettings,
};

/// What `platform add` prints once (`--json` shape is a public contract).
#[derive(Debug, Serialize)]
pub struct CreatedPlatform {
    /// Platform id.
    pub platform_id: String,
    /// SCEP path, `/scep/<platform_id>`.
    pub scep_path: String,
    /// The challenge secret, shown only now.
    pub challenge: String,
}

impl Drop for CreatedPlatform {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.challenge.zeroize();
    }
}

/// Errors creating a platform.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// Invalid name.
    #[error("invalid platform name: use 1-64 letters, digits, '.', '-', '_' or spaces")]
    BadName,
    /// Store failure (including duplicate name).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The random source failed.
    #[error("random source failed")]
    Random,
    /// A URL option is unusable.
    #[error("invalid {what}: {reason}")]
    BadUrl {
        /// Which option.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The secret could not be stored.
    #[error(transparent)]
    Secret(#[from] SecretError),
}

/// The platform `id_or_name` names: the one with that id, or else the one with that (unique)
/// name, as operators type them; [`StoreError::NotFound`] for neither.
pub fn resolve(store: &Store, id_or_name: &str) -> Result<Platform, StoreError> {
    if let Some(p) = store.platform(id_or_name)? {
        return Ok(p);
    }
    store
        .platform_by_name(id_or_name)?
        .ok_or_else(|| StoreError::NotFound {
            what: "platform",
            id: id_or_name.to_owned(),
        })
}

/// The SCEP path of a platform.
pub fn scep_path(platform_id: &str) -> String {
    format!("/scep/{platform_id}")
}

fn valid_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ' '))
}

/// A new platform id: 20 lowercase base32 characters (100 bits; URL-safe, unguessable).
fn new_id() -> Result<String, PlatformError> {
    let s = secret::generate().map_err(|_| PlatformError::Random)?;
    Ok(s[..20].to_ascii_lowercase())
}

/// The challenge URL path of a dynamic platform, `/scep/<platform_id>/challenge`.
pub fn challenge_url_path(platform_id: &str) -> String {
    format!("{}/challenge", scep_path(platform_id))
}

/// Validates the name, picks an id and inserts the platform built by `challenge(id)`.
fn insert(
    store: &Store,
    name: &str,
    allow_des: bool,
    now: i64,
    challenge: impl FnOnce(&str) -> ChallengeConfig,
) -> Result<String, PlatformError> {
    if !valid_name(name) {
        return Err(PlatformError::BadName);
    }
    let id = new_id()?;
    store.insert_platform(&Platform {
        id: id.clone(),
        name: name.to_owned(),
        challenge: challenge(&id),
        allow_des,
        created_at: now,
        device_id_pattern: None,
    })?;
    Ok(id)
}

/// Creates a static-challenge platform; the secret is returned once and stored as a hash.
pub fn create_static(
    store: &Store,
    name: &str,
    allow_des: bool,
    now: i64,
) -> Result<CreatedPlatform, PlatformError> {
    let challenge: Zeroizing<String> = secret::generate().map_err(|_| PlatformError::Random)?;
    let id = insert(store, name, allow_des, now, |_| ChallengeConfig::Static {
        secret_hash: secret::hash(&challenge),
    })?;
    Ok(CreatedPlatform {
        scep_path: scep_path(&id),
        platform_id: id,
        challenge: challenge.to_string(),
    })
}

/// Replaces a static platform's secret; returns the new one (shown once).
pub fn rotate_static_secret(
    store: &Store,
    platform_id: &str,
) -> Result<Zeroizing<String>, PlatformError> {
    let challenge = secret::generate().map_err(|_| PlatformError::Random)?;
    store.update_static_secret(platform_id, &secret::hash(&challenge))?;
    Ok(challenge)
}

/// What `platform add --challenge dynamic` prints once (`--json` shape is a public contract).
#[derive(Debug, Serialize)]
pub struct CreatedDynamic {
    /// Platform id.
    pub platform_id: String,
    /// SCEP path, `/scep/<platform_id>`.
    pub scep_path: String,
    /// Challenge URL path, `/scep/<platform_id>/challenge`.
    pub challenge_url_path: String,
    /// HTTP Basic user name for the challenge URL.
    pub username: String,
    /// HTTP Basic password for the challenge URL, shown only now.
    pub password: String,
}

impl Drop for CreatedDynamic {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.password.zeroize();
    }
}

/// Dynamic platform options.
#[derive(Debug, Clone, Copy)]
pub struct DynamicOptions {
    /// Lifetime of a fetched challenge, seconds.
    pub ttl_secs: i64,
    /// Bound on outstanding challenges.
    pub max_outstanding: u32,
}

/// Creates a dynamic-challenge platform: the challenge-URL password is returned once and
/// stored as a SHA-256 hash (it has 160 bits of entropy; see `challenge::secret::hash`).
pub fn create_dynamic(
    store: &Store,
    name: &str,
    allow_des: bool,
    options: DynamicOptions,
    now: i64,
) -> Result<CreatedDynamic, PlatformError> {
    let password = secret::generate().map_err(|_| PlatformError::Random)?;
    let mut username = String::new();
    let id = insert(store, name, allow_des, now, |id| {
        username = format!("scepd-{id}");
        ChallengeConfig::Dynamic(DynamicSettings {
            username: username.clone(),
            password_hash: secret::hash(&password),
            ttl_secs: options.ttl_secs,
            max_outstanding: options.max_outstanding,
        })
    })?;
    Ok(CreatedDynamic {
        scep_path: scep_path(&id),
        challenge_url_path: challenge_url_path(&id),
        platform_id: id,
        username,
        password: password.to_string(),
    })
}

/// What `platform add` prints for a delegated mode (no secret to show).
#[derive(Debug, Serialize)]
pub struct CreatedDelegated {
    /// Platform id.
    pub platform_id: String,
    /// SCEP path, `/scep/<platform_id>`.
    pub scep_path: String,
}

/// Validates a URL option (https, or http to a loopback host).
pub fn checked_url(what: &'static str, url: &str) -> Result<String, PlatformError> {
    check_url(url).map_err(|e| PlatformError::BadUrl {
        what,
        reason: e.to_string(),
    })?;
    Ok(url.trim_end_matches('/').to_owned())
}

/// The settings every new platform has.
#[derive(Debug, Clone, Copy)]
pub struct NewPlatform<'a> {
    /// Unique name.
    pub name: &'a str,
    /// Accept single DES.
    pub allow_des: bool,
    /// Creation time.
    pub now: i64,
}

/// Inserts a delegated platform whose secret goes to the secrets file `file_name(id)` first;
/// if the platform cannot be stored, the file is removed again.
fn insert_with_secret(
    store: &Store,
    secret_files: &SecretFiles,
    new: NewPlatform<'_>,
    file_name: fn(&str) -> String,
    secret: &Zeroizing<String>,
    challenge: ChallengeConfig,
) -> Result<CreatedDelegated, PlatformError> {
    let NewPlatform {
        name,
        allow_des,
        now,
    } = new;
    if !valid_name(name) {
        return Err(PlatformError::BadName);
    }
    if store.platform_by_name(name)?.is_some() {
        return Err(
            StoreError::Conflict(format!("a platform named '{name}' already exists")).into(),
        );
    }
    let id = new_id()?;
    let file = file_name(&id);
    secret_files.store(&file, secret)?;
    let inserted = store.insert_platform(&Platform {
        id: id.clone(),
        name: name.to_owned(),
        challenge,
        allow_des,
        created_at: now,
        device_id_pattern: None,
    });
    if let Err(e) = inserted {
        secret_files.remove(&file);
        return Err(e.into());
    }
    Ok(CreatedDelegated {
        scep_path: scep_path(&id),
        platform_id: id,
    })
}

/// Creates a webhook platform; `secret` (the HMAC key) is kept in a 0600 file under the data
/// dir's `secrets/`, never in the database.
pub fn create_webhook(
    store: &Store,
    secret_files: &SecretFiles,
    new: NewPlatform<'_>,
    url: &str,
    secret: &Zeroizing<String>,
) -> Result<CreatedDelegated, PlatformError> {
    let url = checked_url("--webhook-url", url)?;
    let challenge = ChallengeConfig::Webhook(WebhookSettings { url });
    insert_with_secret(
        store,
        secret_files,
        new,
        secrets::webhook_secret,
        secret,
        challenge,
    )
}

/// Intune platform options.
#[derive(Debug, Clone)]
pub struct IntuneOptions {
    /// Azure AD tenant (`contoso.onmicrosoft.com` or a GUID).
    pub tenant: String,
    /// Application (client) id.
    pub client_id: String,
    /// OAuth2 authority base URL.
    pub login_url: String,
    /// Microsoft Graph base URL.
    pub graph_url: String,
}

fn identifier(what: &'static str, v: &str) -> Result<String, PlatformError> {
    let ok = !v.is_empty()
        && v.len() <= 256
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(PlatformError::BadUrl {
            what,
            reason: "use letters, digits, '.', '-' or '_'".into(),
        })
    }
}

/// Creates an Intune platform; the Azure AD client secret is kept in a 0600 file under the
/// data dir's `secrets/`, never in the database.
pub fn create_intune(
    store: &Store,
    secret_files: &SecretFiles,
    new: NewPlatform<'_>,
    options: &IntuneOptions,
    client_secret: &Zeroizing<String>,
) -> Result<CreatedDelegated, PlatformError> {
    let settings = IntuneSettings {
        tenant: identifier("--aad-tenant", &options.tenant)?,
        client_id: identifier("--aad-client-id", &options.client_id)?,
        login_url: checked_url("--intune-login-url", &options.login_url)?,
        graph_url: checked_url("--intune-graph-url", &options.graph_url)?,
    };
    insert_with_secret(
        store,
        secret_files,
        new,
        secrets::aad_client_secret,
        client_secret,
        ChallengeConfig::Intune(settings),
    )
}
