//! `scepd serve`: initialize if needed, load the CA, listen, shut down gracefully on SIGTERM/SIGINT.

use std::sync::Arc;
use std::time::Duration;

use crate::authority::Authority;
use crate::bootstrap;
use crate::ca::CaSet;
use crate::cli::CliError;
use crate::config::Config;
use crate::http::scep::unix_now;
use crate::http::{self, App};
use crate::keystore::Keystore;
use crate::revocation::{Revocation, RevocationTiming};

fn fail(e: impl std::fmt::Display) -> CliError {
    CliError {
        code: 1,
        message: e.to_string(),
    }
}

/// Runs the server until a termination signal.
pub fn run(config: Config, json: bool) -> Result<(), CliError> {
    let store = bootstrap::open_store(&config).map_err(fail)?;
    if !store.is_initialized().map_err(fail)? {
        let created = bootstrap::initialize(&config, &store, unix_now()).map_err(fail)?;
        tracing::info!(data_dir = %config.data_dir.display(), "initialized a new data dir");
        if json {
            println!(
                "{}",
                serde_json::json!({"platform_id": created.platform_id, "scep_path": created.scep_path, "challenge": created.challenge})
            );
        } else {
            println!(
                "initialized {} with platform \"default\"",
                config.data_dir.display()
            );
            println!("SCEP URL path: {}", created.scep_path);
            println!("challenge (shown once): {}", created.challenge);
        }
    }
    let store = Arc::new(store);
    let ca = CaSet::load(&store, &Keystore::new(&config.data_dir)).map_err(fail)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(fail)?;
    runtime.block_on(async move {
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
        let revocation = Arc::new(Revocation::new(store.clone(), ca.clone(), timing).map_err(fail)?);
        let first = revocation.clone();
        tokio::task::spawn_blocking(move || first.refresh(unix_now()))
            .await
            .map_err(fail)?
            .map_err(fail)?;
        tokio::spawn(refresh_loop(revocation.clone()));
        let app = Arc::new(App {
            trust: crate::trust::TrustCheck::new(store.clone(), ca.clone()),
            authority: Authority::new(&config, &config.public_base(addr), store, ca, revocation),
            max_body_bytes: config.max_body_bytes,
            header_timeout: Duration::from_secs(config.header_timeout_secs),
            max_connections: config.max_connections,
            idle_timeout: Duration::from_secs(config.idle_timeout_secs),
            pki_rate: http::limits::RateLimiter::new(config.pki_operation_per_minute),
            trust_rate: http::limits::RateLimiter::new(config.trust_per_minute),
        });
        // One plain line on stdout so scripts and tests learn the bound port.
        println!("scepd listening on http://{addr}");
        tracing::info!(%addr, "SCEP listener up");
        http::serve(listener, app, shutdown_signal()).await;
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
}

/// Re-publishes the CRL when revocations change (also from the CLI) or it ages; polls twice a
/// second so operator changes reach relying parties within a second.
async fn refresh_loop(revocation: Arc<Revocation>) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let r = revocation.clone();
        match tokio::task::spawn_blocking(move || r.refresh(unix_now())).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "CRL refresh failed; retrying"),
            Err(e) => tracing::error!(error = %e, "CRL refresh task failed"),
        }
    }
}
