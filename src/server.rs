//! `scepd serve`: initialize if needed, load the CA, listen, shut down gracefully on SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use crate::authority::Authority;
use crate::ca::CaHandle;
use crate::ca::bootstrap;
use crate::ca::keystore::Keystore;
use crate::clock::unix_now;
use crate::config::Config;
use crate::configured_store;
use crate::http::{self, App};
use crate::revocation::{Revocation, RevocationTiming};

/// What `serve` takes besides the configuration (the CLI's `ServeArgs`, converted).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Print the first-start output (default platform) as JSON.
    pub json: bool,
    /// Address of the admin API listener.
    pub admin_listen: std::net::SocketAddr,
    /// The admin listener's PEM certificate chain and private key, for TLS.
    pub admin_tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Why the server could not start or stopped with an error (the message says which).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ServeError(String);

fn fail(e: impl std::fmt::Display) -> ServeError {
    ServeError(e.to_string())
}

/// Runs the server until a termination signal.
pub fn run(mut config: Config, args: &ServeOptions) -> Result<(), ServeError> {
    let json = args.json;
    let tls = match &args.admin_tls {
        Some((cert, key)) => Some(crate::admin::tls::acceptor(cert, key).map_err(fail)?),
        None => None,
    };
    if tls.is_none() && !args.admin_listen.ip().is_loopback() {
        return Err(fail(format!(
            "--admin-listen {} is not a loopback address: the admin API needs --admin-tls-cert and --admin-tls-key there",
            args.admin_listen
        )));
    }
    let admin_addr = args.admin_listen;
    // Before anything opens files: raise RLIMIT_NOFILE, fit the connection caps under it.
    crate::fd_limit::fit(&mut config);
    let store = configured_store::open(&config).map_err(fail)?;
    // SQLite: one server per database file. PostgreSQL nodes share the database by design.
    let _serving = match &config.store {
        crate::config::StoreConfig::Sqlite => {
            Some(crate::serve_lock::ServeLock::acquire(&config.data_dir).map_err(fail)?)
        }
        crate::config::StoreConfig::Postgres(_) => None,
    };
    // Opened once: the first start stores the new CA's keys in it and then serves from it.
    let keystore = Keystore::from_config(&config).map_err(fail)?;
    if !store.is_initialized().map_err(fail)? {
        let created = match bootstrap::initialize(&config, &store, &keystore, unix_now()) {
            Ok(created) => Some(created),
            // Nodes of a cluster started together on a new database: one wins the unique
            // keys of the first CA records, the others join what it created.
            Err(e) if store.is_initialized().unwrap_or(false) => {
                tracing::info!(error = %e, store = %configured_store::location(&config), "another node initialized the store first; joining it");
                None
            }
            Err(e) => return Err(fail(e)),
        };
        if let Some(created) = created {
            tracing::info!(store = %configured_store::location(&config), "initialized a new CA");
            if json {
                println!(
                    "{}",
                    serde_json::json!({"platform_id": created.platform_id, "scep_path": created.scep_path, "scep_url": format!("{}{}", config.public_base(config.listen), created.scep_path), "challenge": created.challenge})
                );
            } else {
                println!(
                    "initialized {} with platform \"default\"",
                    configured_store::location(&config)
                );
                println!(
                    "SCEP URL: {}{}",
                    config.public_base(config.listen),
                    created.scep_path
                );
                println!("challenge (shown once): {}", created.challenge);
            }
        }
    }
    // A mistyped NDES platform would only show as 404s to the tools that use it.
    if let Some(id) = &config.ndes_platform {
        if store.platform(id).map_err(fail)?.is_none() {
            return Err(fail(format!(
                "[scep] ndes_platform = \"{id}\" names no platform (see `scepd platform list`)"
            )));
        }
        tracing::info!(platform = %id, "NDES path /certsrv/mscep/mscep.dll serves this platform");
    }
    let store = Arc::new(store);
    // The last reference is dropped after the runtime: a PostgreSQL pool closes its
    // connections by blocking, which a runtime thread must not do.
    let outlives_runtime = store.clone();
    // No request waits for a WAL checkpoint: checkpoint_loop runs them instead.
    store.defer_checkpoints().map_err(fail)?;
    keystore.check_permissions().map_err(fail)?;
    let ca = CaHandle::load(
        &store,
        keystore,
        crate::ca::Publish::of(&config),
        unix_now(),
    )
    .map_err(|e| {
        match &config.store {
            // The usual cause on a cluster: this node's data dir is not the shared one.
            crate::config::StoreConfig::Postgres(_) => fail(format!(
                "{e} (every node on one database needs the same data dir: keys/ and secrets/ \
                 are shared, see README \"Running several nodes\")"
            )),
            crate::config::StoreConfig::Sqlite => fail(e),
        }
    })?;
    // Encryption-only RA certificates: created now for the RAs that lack one, so GetCACert
    // lists them from the first request; RAs staged later get theirs in refresh_loop.
    let encryption_ra = config.encryption_ra.then(|| config.organization.clone());
    if let Some(org) = &encryption_ra {
        crate::ca::encryption_ra::ensure(&store, &ca, org, unix_now()).map_err(fail)?;
    }
    if !crate::cpu_pool::configure(config.cpu_slots) {
        return Err(fail("the CPU pool was already in use with another size"));
    }
    tracing::info!(cpu_slots = config.cpu_slots, "CPU-bound tasks run at once");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    let result = runtime.block_on(async move {
        // Handlers first: a SIGTERM sent as soon as the listening lines appear must stop
        // the server cleanly, not kill it with the default action.
        let shutdown = shutdown_signal();
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| fail(format!("cannot listen on {}: {e}", config.listen)))?;
        let addr = listener.local_addr().map_err(fail)?;
        if config.public_url.is_none() && addr.ip().is_unspecified() {
            tracing::warn!("public_url is not set: certificates will name http://{addr} for CRL/OCSP; set public_url");
        }
        let timing = RevocationTiming {
            crl_validity_secs: config.crl_validity_secs,
            ocsp_validity_secs: config.ocsp_validity_secs,
        };
        let revocation = Arc::new(Revocation::new(store.clone(), ca.clone(), timing));
        let first = revocation.clone();
        tokio::task::spawn_blocking(move || first.refresh(unix_now()))
            .await
            .map_err(fail)?
            .map_err(fail)?;
        tokio::spawn(refresh_loop(revocation.clone(), ca.clone(), store.clone(), encryption_ra));
        tokio::spawn(checkpoint_loop(store.clone()));
        let metrics = Arc::new(crate::metrics::Metrics::default());
        let current = ca.get();
        for (role, id, cert) in [
            ("root", &current.root.id, &current.root.cert),
            ("intermediate", &current.intermediate.id, &current.intermediate.cert),
            ("ra", &current.ra.id, &current.ra.cert),
        ] {
            metrics.ca_expiry(role, id, cert.get().not_after);
        }
        let trust = crate::trust::TrustCheck::new(store.clone(), ca.clone(), crate::clock::unix_now())
            .map_err(|e| fail(format!("trust check: {e}")))?;
        let authority =
            Authority::new(&config, &config.public_base(addr), store, ca, revocation.clone());
        let app = Arc::new(App::new(&config, authority, trust, metrics));
        let admin_listener = tokio::net::TcpListener::bind(admin_addr)
            .await
            .map_err(|e| fail(format!("cannot listen on {admin_addr} (admin): {e}")))?;
        let admin_bound = admin_listener.local_addr().map_err(fail)?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        // Plain lines on stdout so scripts and tests learn the bound ports (public one last).
        println!("scepd admin listening on {scheme}://{admin_bound}");
        println!("scepd listening on http://{addr}");
        tracing::info!(%addr, admin = %admin_bound, "SCEP and admin listeners up");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|v| *v).await;
        };
        let bounds = app.conn_limits();
        let admin = Arc::new(crate::admin::AdminApp {
            app: app.clone(),
            data_dir: config.data_dir.clone(),
            organization: config.organization.clone(),
        });
        let public = tokio::spawn(http::serve(listener, app, bounds.clone(), None, stopped(stop_rx.clone())));
        let admin = tokio::spawn(http::serve(admin_listener, admin, bounds, tls, stopped(stop_rx)));
        shutdown.await;
        let _ = stop_tx.send(true);
        let _ = tokio::join!(public, admin);
        // Another node (or the next start of this one) may publish CRLs at once.
        let r = revocation.clone();
        let released = tokio::task::spawn_blocking(move || r.release_publisher().map_err(|e| e.to_string()))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
        if let Err(e) = released {
            tracing::warn!(error = %e, "could not give up the CRL publisher lease; it expires by itself");
        }
        Ok(())
    });
    drop(runtime);
    drop(outlives_runtime);
    result
}

/// Installs the SIGTERM/SIGINT handlers now (must run inside the runtime) and returns the
/// future that completes on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            tracing::error!("cannot install signal handlers; stop with SIGKILL");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = int.recv() => tracing::info!("SIGINT received"),
        }
    }
}

/// Copies the WAL into the database file every second with a passive checkpoint, which never
/// blocks the writer or readers. The writer's own checkpoints only start at a large backstop
/// ([`Store::defer_checkpoints`](crate::store::Backend::defer_checkpoints)): done inside a commit,
/// a checkpoint stalls that commit and every issuance grouped with it (measured in
/// BENCHMARKS.md).
async fn checkpoint_loop(store: Arc<crate::store::Store>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.checkpoint()).await {
            Ok(Ok(Some(_))) => {}
            Ok(Ok(None)) => {
                tracing::debug!("WAL checkpoint skipped: another connection was checkpointing")
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
            Err(e) => tracing::error!(error = %e, "WAL checkpoint task failed"),
        }
    }
}

/// Re-publishes the CRL when revocations change (also from the CLI) or it ages; polls twice a
/// second so operator changes reach relying parties within a second.
async fn refresh_loop(
    revocation: Arc<Revocation>,
    ca: Arc<CaHandle>,
    store: Arc<crate::store::Store>,
    encryption_ra: Option<String>,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (r, c, s, e) = (
            revocation.clone(),
            ca.clone(),
            store.clone(),
            encryption_ra.clone(),
        );
        let result = tokio::task::spawn_blocking(move || {
            let now = unix_now();
            // Scheduled activations (rotate with activate_at), then changes by other processes.
            let due = s.due_activations(now).map_err(|e| e.to_string())?;
            if !due.is_empty() {
                let ids: Vec<&str> = due.iter().map(String::as_str).collect();
                s.activate_authorities(&ids, "schedule", now)
                    .map_err(|e| e.to_string())?;
            }
            c.reload_if_changed(&s, now).map_err(|e| e.to_string())?;
            // A failure here must not hold up the CRL refresh below; it is retried next tick.
            if let Some(org) = &e {
                if let Err(err) = crate::ca::encryption_ra::ensure(&s, &c, org, now) {
                    tracing::error!(error = %err, "could not create an RA encryption certificate; retrying");
                }
            }
            r.refresh(now).map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "CA/CRL refresh failed; retrying"),
            Err(e) => tracing::error!(error = %e, "CA/CRL refresh task failed"),
        }
    }
}
