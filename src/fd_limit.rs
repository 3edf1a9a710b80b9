//! The open-files limit (RLIMIT_NOFILE) against the connection cap. Out of descriptors,
//! `accept` fails and clients wait in the backlog instead of getting a 503; so at start-up the
//! soft limit is raised to the hard limit, and the connection cap lowered to what fits.
//!
//! rustix, not libc: both crates of the workspace forbid `unsafe`, and rustix wraps
//! getrlimit/setrlimit in safe functions (it was already in Cargo.lock through tempfile).

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::http::conn_tracker::MAX_HANDOVER_WAITS;
use crate::http::listener::MAX_REFUSING;

/// Descriptors kept for everything but client connections: standard streams, the store
/// (database, WAL and shared-memory file per connection), key and log files, the two
/// listeners, the runtime's own, outbound calls of delegated challenge modes.
pub const RESERVED_FDS: u64 = 128;

/// Descriptors the connections of one listener may hold: its slots, newcomers waiting for
/// an idle connection to hand one over, and refusals being answered.
fn per_listener(max_connections: u64) -> u64 {
    max_connections + MAX_HANDOVER_WAITS as u64 + MAX_REFUSING as u64
}

/// Raises the soft open-files limit to the hard one (when the hard one is unlimited, to
/// `nr_open`'s usual default). Returns the soft limit in force afterwards; `None` when
/// unlimited.
pub fn raise_soft_limit() -> Option<u64> {
    let now = getrlimit(Resource::Nofile);
    let current = now.current?;
    let target = now.maximum.unwrap_or(1 << 20);
    if target > current {
        let raised = Rlimit {
            current: Some(target),
            maximum: now.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => tracing::info!(
                from = current,
                to = target,
                "raised the open-files limit (RLIMIT_NOFILE) to the hard limit"
            ),
            Err(e) => {
                tracing::warn!(soft = current, hard = ?now.maximum, error = %e, "cannot raise the open-files limit")
            }
        }
    }
    getrlimit(Resource::Nofile).current
}

/// The largest connection cap (per listener; both listeners share `max_connections`) that
/// fits `limit` open files, if it is below `max_connections`; `None` when it fits as is.
/// At least 1: a limit that small is reported but does not stop the server.
pub fn connection_cap(limit: Option<u64>, max_connections: usize) -> Option<usize> {
    let limit = limit?;
    let wanted = u64::try_from(max_connections).unwrap_or(u64::MAX);
    if RESERVED_FDS.saturating_add(2u64.saturating_mul(per_listener(wanted))) <= limit {
        return None;
    }
    let room = limit.saturating_sub(RESERVED_FDS) / 2;
    let fits = room.saturating_sub(per_listener(0)).max(1);
    Some(
        usize::try_from(fits)
            .unwrap_or(usize::MAX)
            .min(max_connections),
    )
}

/// Raises the limit, then lowers `config`'s connection caps to fit it (with a warning).
pub fn fit(config: &mut crate::config::Config) {
    let limit = raise_soft_limit();
    if let Some(cap) = connection_cap(limit, config.max_connections) {
        tracing::warn!(
            open_files = limit,
            configured = config.max_connections,
            capped = cap,
            "limits.max_connections does not fit the open-files limit (RLIMIT_NOFILE): lowered; raise the hard limit (e.g. LimitNOFILE=) to serve more"
        );
        config.max_connections = cap;
        config.max_connections_per_address = config.max_connections_per_address.min(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_only_what_does_not_fit() {
        assert_eq!(connection_cap(None, 1024), None);
        assert_eq!(connection_cap(Some(1 << 20), 1024), None);
        let need = RESERVED_FDS + 2 * per_listener(1024);
        assert_eq!(connection_cap(Some(need), 1024), None);
        let capped = connection_cap(Some(1024), 1024);
        assert_eq!(capped, Some(((1024 - 128) / 2 - 64) as usize));
        let c = capped.unwrap_or(0) as u64;
        assert!(RESERVED_FDS + 2 * per_listener(c) <= 1024);
        assert_eq!(connection_cap(Some(10), 1024), Some(1));
    }
}
