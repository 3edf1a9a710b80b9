//! How the PostgreSQL backend reaches its database: settings, TLS and the connection pool.

use std::sync::Arc;
use std::time::Duration;

use postgres::NoTls;
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls;
use zeroize::Zeroizing;

use crate::store::StoreError;

/// TLS to the database, as libpq's `sslmode` names it.
#[derive(Clone, PartialEq, Eq)]
pub enum PgTls {
    /// Plain TCP (a database on the same host or a private network).
    Disable,
    /// Encrypted, the server's certificate not checked (protects against passive eavesdropping
    /// only, like libpq's `require`).
    Require,
    /// Encrypted, the server's certificate must chain to one of these CA certificates (PEM)
    /// and name the host of the URL.
    VerifyFull {
        /// PEM CA certificates.
        ca_pem: Vec<u8>,
    },
}

impl std::fmt::Debug for PgTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Disable => "disable",
            Self::Require => "require",
            Self::VerifyFull { .. } => "verify-full",
        })
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct PgSettings {
    /// `postgres://user@host:port/db` (or libpq's key=value form). Never logged: it may hold a
    /// password.
    pub url: String,
    /// The password, when not in the URL (from `password_file` or `SCEPD_STORE_PASSWORD`).
    pub password: Option<Zeroizing<String>>,
    /// Most connections this node opens.
    pub pool_size: u32,
    /// TLS to the database.
    pub tls: PgTls,
    /// How long a request waits for a connection (and start-up for the first one).
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &"<redacted>")
            .field("pool_size", &self.pool_size)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl PgSettings {
    /// Where the URL points, without its password: `postgres://user@host:port/db`, for
    /// messages and logs. `None` when the URL does not parse.
    pub fn location(url: &str) -> Option<String> {
        let c: postgres::Config = url.parse().ok()?;
        let hosts: Vec<String> = c
            .get_hosts()
            .iter()
            .map(|h| match h {
                postgres::config::Host::Tcp(name) => name.clone(),
                postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let port = c.get_ports().first().copied().unwrap_or(5432);
        Some(format!(
            "postgres://{}@{}:{port}/{}",
            c.get_user().unwrap_or(""),
            hosts.join(","),
            c.get_dbname().unwrap_or("")
        ))
    }

    /// True when every host of the URL is this machine (loopback address, `localhost` or a
    /// Unix socket): where plain TCP is an acceptable default.
    pub fn is_local(url: &str) -> bool {
        let Ok(c) = url.parse::<postgres::Config>() else {
            return false;
        };
        !c.get_hosts().is_empty()
            && c.get_hosts().iter().all(|h| match h {
                postgres::config::Host::Unix(_) => true,
                postgres::config::Host::Tcp(name) => {
                    name == "localhost"
                        || name
                            .trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                }
            })
    }

    /// True when the URL itself carries a password (allowed, but it then shows in `ps` and
    /// shell history).
    pub fn url_has_password(url: &str) -> bool {
        url.parse::<postgres::Config>()
            .is_ok_and(|c| c.get_password().is_some())
    }
}

/// A pool of connections, plain or TLS (the two connector types make two pool types). A
/// clone shares the pool.
#[derive(Clone)]
pub(super) enum Pool {
    Plain(r2d2::Pool<Manager<NoTls>>),
    Tls(r2d2::Pool<Manager<MakeRustlsConnect>>),
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "Pool(plain)",
            Self::Tls(_) => "Pool(tls)",
        })
    }
}

/// Runs blocking database work where the `postgres` client may block: the client drives its
/// connection on a runtime of its own, and blocking on it from a thread of the server's
/// runtime would panic. The store's verbs are blocking by contract (callers normally use
/// `spawn_blocking`); a verb called on a worker thread anyway is moved off it with
/// `block_in_place` instead of panicking. A single-threaded runtime cannot do that: refused.
pub(super) fn outside_runtime<T>(
    f: impl FnOnce() -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        Ok(_) => Err(StoreError::Unavailable(
            "the PostgreSQL store was called on a single-threaded async runtime".into(),
        )),
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl Pool {
    /// Builds the pool and opens its first connection.
    pub(super) fn new(s: &PgSettings) -> Result<Self, StoreError> {
        outside_runtime(|| Self::build(s))
    }

    fn build(s: &PgSettings) -> Result<Self, StoreError> {
        // The parser's messages do not quote the URL; ours does not either.
        let mut config: postgres::Config = s.url.parse().map_err(|_| StoreError::Invalid {
            field: "store url",
            reason: "not a PostgreSQL connection URL (postgres://user@host:port/db)".into(),
        })?;
        if let Some(p) = &s.password {
            config.password(p.as_bytes());
        }
        config.connect_timeout(s.connect_timeout);
        config.application_name("scepd");
        fn builder<M: r2d2::ManageConnection>(s: &PgSettings) -> r2d2::Builder<M> {
            r2d2::Pool::builder()
                .max_size(s.pool_size.max(1))
                .min_idle(Some(1))
                .connection_timeout(s.connect_timeout)
                // No probe query per checkout (a round trip each, several per enrollment: it
                // cost about 10 % of throughput). A connection that died with a database
                // restart fails its next statement instead (StoreError::Unavailable, HTTP
                // 503) and, being closed, is discarded when it returns to the pool.
                .test_on_check_out(false)
                // Each failed connection attempt is not logged by r2d2 itself (one ERROR per
                // attempt, several a second while the database is down): the request, the
                // refresh loop and /readyz report it with their context instead.
                .error_handler(Box::new(r2d2::NopErrorHandler))
        }
        Ok(match &s.tls {
            PgTls::Disable => {
                config.ssl_mode(postgres::config::SslMode::Disable);
                Self::Plain(
                    builder(s)
                        .build(Manager(PostgresConnectionManager::new(config, NoTls)))
                        .map_err(unavailable)?,
                )
            }
            tls => {
                config.ssl_mode(postgres::config::SslMode::Require);
                let connector = MakeRustlsConnect::new(client_config(tls)?);
                Self::Tls(
                    builder(s)
                        .build(Manager(PostgresConnectionManager::new(config, connector)))
                        .map_err(unavailable)?,
                )
            }
        })
    }

    /// Most connections this pool opens.
    pub(super) fn max_size(&self) -> u32 {
        match self {
            Self::Plain(p) => p.max_size(),
            Self::Tls(p) => p.max_size(),
        }
    }

    /// Runs `f` on a pooled connection.
    pub(super) fn with_client<T>(
        &self,
        f: impl FnOnce(&mut PgConn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        outside_runtime(|| match self {
            Self::Plain(p) => f(&mut *p.get().map_err(unavailable)?),
            Self::Tls(p) => f(&mut *p.get().map_err(unavailable)?),
        })
    }
}

/// A pooled connection and the statements prepared on it: each SQL text is parsed and
/// planned once per connection instead of once per use (an unprepared query also costs a
/// second round trip: describe, then execute).
pub(super) struct PgConn {
    /// The connection.
    pub(super) client: postgres::Client,
    /// Prepared statements by SQL text.
    pub(super) statements: std::collections::HashMap<String, postgres::Statement>,
}

/// r2d2's manager for [`PgConn`]: r2d2_postgres's, with the statement cache beside the client.
pub(super) struct Manager<T>(PostgresConnectionManager<T>);

impl<T> r2d2::ManageConnection for Manager<T>
where
    T: postgres::tls::MakeTlsConnect<postgres::Socket> + Clone + 'static + Sync + Send,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as postgres::tls::TlsConnect<postgres::Socket>>::Future: Send,
{
    type Connection = PgConn;
    type Error = ConnectError;

    fn connect(&self) -> Result<PgConn, ConnectError> {
        Ok(PgConn {
            client: self.0.connect().map_err(ConnectError::from)?,
            statements: std::collections::HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), ConnectError> {
        Ok(self.0.is_valid(&mut conn.client)?)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}

/// Why a connection could not be made, with its causes: r2d2 keeps only an error's text, and
/// the postgres client's own says "error performing TLS handshake" without the reason (an
/// unknown issuer, a name mismatch) that an operator needs. Never holds a password: the
/// client's errors do not quote the configuration.
#[derive(Debug)]
pub(super) struct ConnectError(String);

impl From<postgres::Error> for ConnectError {
    fn from(e: postgres::Error) -> Self {
        Self(crate::logging::with_sources(&e))
    }
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

fn client_config(tls: &PgTls) -> Result<rustls::ClientConfig, StoreError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let bad = |reason: String| StoreError::Invalid {
        field: "store TLS",
        reason,
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?;
    Ok(match tls {
        PgTls::VerifyFull { ca_pem } => {
            use rustls_pki_types::CertificateDer;
            use rustls_pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca_pem) {
                let cert = cert.map_err(|e| bad(format!("CA file: {e}")))?;
                roots.add(cert).map_err(|e| bad(format!("CA file: {e}")))?;
            }
            if roots.is_empty() {
                return Err(bad("CA file holds no certificate".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    })
}

/// `sslmode=require`: any server certificate, but the handshake signatures are still
/// checked (so the session is encrypted to whoever holds the presented key).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::PgSettings;

    #[test]
    fn locations_never_show_a_password_and_only_this_machine_is_local() {
        assert_eq!(
            PgSettings::location("postgres://ca:s3cret@db.internal:6432/scepd").as_deref(),
            Some("postgres://ca@db.internal:6432/scepd")
        );
        assert!(PgSettings::url_has_password(
            "postgres://ca:s3cret@db/scepd"
        ));
        assert!(!PgSettings::url_has_password("postgres://ca@db/scepd"));
        assert_eq!(PgSettings::location("not a url"), None);
        for local in [
            "postgres://ca@127.0.0.1/scepd",
            "postgres://ca@localhost:5433/scepd",
            "postgres://ca@[::1]/scepd",
            "host=/run/postgresql user=ca dbname=scepd",
        ] {
            assert!(PgSettings::is_local(local), "{local}");
        }
        for remote in [
            "postgres://ca@10.0.0.5/scepd",
            "postgres://ca@db.internal/scepd",
            "postgres://ca@127.0.0.1,db.internal/scepd",
        ] {
            assert!(!PgSettings::is_local(remote), "{remote}");
        }
    }
}
