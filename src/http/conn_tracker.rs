//! Connection slots of one listener: the global cap (a semaphore), a cap per client address,
//! and the index of idle connections that give their slot up under pressure.
//!
//! A connection is *idle* while no request is outstanding on it and a read found nothing
//! waiting: between requests after its last response was written (keep-alive), or freshly
//! accepted and silent. When a newcomer finds the listener (or its own address) full, the
//! keep-alive connection that has been idle longest (of that address, when the address is
//! full) is asked to close (hyper's graceful shutdown, which closes an idle HTTP/1 connection
//! at once) and its slot is handed to the newcomer once it has closed; a silent new connection
//! only after [`FRESH_GRACE`] (its request is usually a few microseconds behind the
//! handshake). Only when nothing is idle is the newcomer refused (503). Accounting stays
//! strict: a slot is counted until its connection has really ended.
//!
//! Lock use: one mutex per listener, taken when a connection is admitted or ends, and twice
//! per request (entering and leaving the idle index); each hold is O(log n).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, oneshot};

/// Newcomers waiting at once for an idle connection to close; more are refused. Bounds the
/// file descriptors held beyond the connection cap.
pub const MAX_HANDOVER_WAITS: usize = 32;

/// How long a connection that has sent nothing yet is left alone before it may be closed for
/// a newcomer. Without it, a client whose request is still in flight right after the TCP
/// handshake would be closed unanswered.
pub const FRESH_GRACE: Duration = Duration::from_secs(1);

/// Phases of a connection. Only the connection's own task moves it between `BUSY` and
/// `ANSWERED`; every move into or out of `IDLE` happens under the tracker's lock, so the
/// index and the phase agree. `CLOSING` is final.
const BUSY: u8 = 0;
const ANSWERED: u8 = 1;
const IDLE: u8 = 2;
const CLOSING: u8 = 3;

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot of the listener is busy.
    Busy,
    /// The client's address holds its share of slots, all busy.
    PerAddress,
}

/// The part of a connection that others may signal: its phase, the request to close, and
/// who gets its slot afterwards.
struct Signals {
    phase: AtomicU8,
    /// Position in the idle index while idle (valid under the tracker's lock only).
    idle_seq: AtomicU64,
    /// At least one response was written (idle means keep-alive, not silent).
    served: AtomicBool,
    close: Notify,
    successor: Mutex<Option<oneshot::Sender<Slot>>>,
}

/// Idle connections by sequence number, oldest first: keep-alive ones and silent new ones.
#[derive(Default)]
struct IdleOrder {
    kept: BTreeSet<u64>,
    fresh: BTreeSet<u64>,
}

impl IdleOrder {
    fn set(&mut self, fresh: bool) -> &mut BTreeSet<u64> {
        if fresh {
            &mut self.fresh
        } else {
            &mut self.kept
        }
    }

    fn is_empty(&self) -> bool {
        self.kept.is_empty() && self.fresh.is_empty()
    }
}

struct IdleEntry {
    key: IpAddr,
    signals: Arc<Signals>,
    since: Instant,
    fresh: bool,
}

#[derive(Default)]
struct AddressEntry {
    open: usize,
    idle: IdleOrder,
}

#[derive(Default)]
struct Inner {
    addresses: HashMap<IpAddr, AddressEntry>,
    idle: BTreeMap<u64, IdleEntry>,
    order: IdleOrder,
    next_seq: u64,
}

impl Inner {
    /// Takes connection `seq` out of every idle index.
    fn remove_idle(&mut self, seq: u64) -> Option<IdleEntry> {
        let entry = self.idle.remove(&seq)?;
        self.order.set(entry.fresh).remove(&seq);
        if let Some(a) = self.addresses.get_mut(&entry.key) {
            a.idle.set(entry.fresh).remove(&seq);
        }
        Some(entry)
    }
}

/// The slot accounting of one listener.
pub struct ConnTracker {
    slots: Arc<Semaphore>,
    max_connections: usize,
    max_per_address: usize,
    handovers: Arc<Semaphore>,
    fresh_grace: Duration,
    inner: Mutex<Inner>,
}

/// One counted place on the listener: a global permit and the count of its address.
pub struct Slot {
    permit: OwnedSemaphorePermit,
    address: AddressGuard,
}

/// Counts one connection of `key`; dropping it uncounts.
pub struct AddressGuard {
    tracker: Arc<ConnTracker>,
    key: IpAddr,
}

impl Drop for AddressGuard {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.tracker.inner.lock() {
            if let Some(e) = inner.addresses.get_mut(&self.key) {
                e.open = e.open.saturating_sub(1);
                if e.open == 0 && e.idle.is_empty() {
                    inner.addresses.remove(&self.key);
                }
            }
        }
    }
}

/// A slot still held by an idle connection that was asked to close.
pub struct Handover {
    pending: oneshot::Receiver<Slot>,
    /// The newcomer's own address count, when the slot comes from another address.
    own_address: Option<AddressGuard>,
    _wait: OwnedSemaphorePermit,
}

impl Handover {
    /// The slot, once the idle connection has closed; `None` if it did not close in time.
    pub async fn wait(self, within: std::time::Duration) -> Option<Slot> {
        let slot = tokio::time::timeout(within, self.pending)
            .await
            .ok()?
            .ok()?;
        Some(match self.own_address {
            // The evicted connection's address count goes with its guard.
            Some(own) => Slot {
                permit: slot.permit,
                address: own,
            },
            None => slot,
        })
    }
}

/// The answer for a newly accepted connection.
pub enum Admission {
    /// Served at once.
    Admitted(Slot),
    /// Served once an idle connection has made room.
    Handover(Handover),
    /// Answered 503.
    Refused(Refusal),
}

/// Groups client addresses for the per-address cap: IPv4 (also IPv4-mapped IPv6) by address,
/// other IPv6 by /64, the block one subscriber usually gets (so rotating addresses inside it
/// gains nothing).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

impl ConnTracker {
    /// A tracker for `max_connections` slots, at most `max_per_address` per address key.
    pub fn new(max_connections: usize, max_per_address: usize) -> Arc<Self> {
        Self::with_fresh_grace(max_connections, max_per_address, FRESH_GRACE)
    }

    fn with_fresh_grace(
        max_connections: usize,
        max_per_address: usize,
        fresh_grace: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            fresh_grace,
            slots: Arc::new(Semaphore::new(max_connections)),
            max_connections,
            max_per_address: max_per_address.clamp(1, max_connections.max(1)),
            handovers: Arc::new(Semaphore::new(MAX_HANDOVER_WAITS)),
            inner: Mutex::new(Inner::default()),
        })
    }

    /// Decides about a connection from address key `key` (see [`address_key`]). Never waits.
    pub fn admit(self: &Arc<Self>, key: IpAddr) -> Admission {
        // A poisoned lock means a bug elsewhere: fail closed.
        let Ok(mut inner) = self.inner.lock() else {
            return Admission::Refused(Refusal::Busy);
        };
        let open = inner.addresses.get(&key).map_or(0, |e| e.open);
        if open >= self.max_per_address {
            // Only a connection of the same address makes room for it: its slot is handed
            // over with its address count.
            return match self.evict_oldest(&mut inner, Some(key)) {
                Some((pending, wait)) => Admission::Handover(Handover {
                    pending,
                    own_address: None,
                    _wait: wait,
                }),
                None => Admission::Refused(Refusal::PerAddress),
            };
        }
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => match self.evict_oldest(&mut inner, None) {
                Some(evicted) => Err(evicted),
                None => return Admission::Refused(Refusal::Busy),
            },
        };
        inner.addresses.entry(key).or_default().open += 1;
        // The guard locks when dropped: create it only once the lock is released.
        drop(inner);
        let address = AddressGuard {
            tracker: self.clone(),
            key,
        };
        match slot {
            Ok(permit) => Admission::Admitted(Slot { permit, address }),
            Err((pending, wait)) => Admission::Handover(Handover {
                pending,
                own_address: Some(address),
                _wait: wait,
            }),
        }
    }

    /// Asks the longest-idle connection (of `key`, if given) to close and to hand its slot
    /// over; the receiver gets the slot. `None`: nothing idle, or too many waiting already.
    fn evict_oldest(
        &self,
        inner: &mut Inner,
        key: Option<IpAddr>,
    ) -> Option<(oneshot::Receiver<Slot>, OwnedSemaphorePermit)> {
        let order = match key {
            Some(k) => &inner.addresses.get(&k)?.idle,
            None => &inner.order,
        };
        // Keep-alive connections first; a silent one only once its grace is over.
        let seq = match order.kept.first() {
            Some(seq) => *seq,
            None => {
                let seq = *order.fresh.first()?;
                if inner.idle.get(&seq)?.since.elapsed() < self.fresh_grace {
                    return None;
                }
                seq
            }
        };
        let wait = self.handovers.clone().try_acquire_owned().ok()?;
        let signals = inner.remove_idle(seq)?.signals;
        signals.phase.store(CLOSING, Ordering::Release);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut s) = signals.successor.lock() {
            *s = Some(tx);
        }
        signals.close.notify_one();
        Some((rx, wait))
    }

    /// Registers an admitted connection; the hook follows its requests.
    pub fn register(self: &Arc<Self>, slot: &Slot) -> ConnHook {
        let hook = ConnHook(Arc::new(HookInner {
            tracker: self.clone(),
            key: slot.address.key,
            signals: Arc::new(Signals {
                phase: AtomicU8::new(ANSWERED),
                idle_seq: AtomicU64::new(0),
                served: AtomicBool::new(false),
                close: Notify::new(),
                successor: Mutex::new(None),
            }),
        }));
        // Not idle until hyper's first read finds nothing waiting: a client that sent its
        // request with the handshake must not lose it to an eviction.
        hook
    }

    /// Waits (bounded) until every slot is free again: all connections have ended.
    pub async fn drained(&self, within: std::time::Duration) -> bool {
        let all = u32::try_from(self.max_connections).unwrap_or(u32::MAX);
        tokio::time::timeout(within, self.slots.acquire_many(all))
            .await
            .is_ok()
    }
}

struct HookInner {
    tracker: Arc<ConnTracker>,
    key: IpAddr,
    signals: Arc<Signals>,
}

/// Follows one connection: bytes read, requests started and answered. Cheap to clone.
#[derive(Clone)]
pub struct ConnHook(Arc<HookInner>);

impl ConnHook {
    fn phase(&self) -> u8 {
        self.0.signals.phase.load(Ordering::Acquire)
    }

    /// Bytes of a request arrived, or hyper started a request (maybe one it had buffered).
    pub fn busy(&self) {
        match self.phase() {
            BUSY | CLOSING => {}
            ANSWERED => {
                let _ = self.0.signals.phase.compare_exchange(
                    ANSWERED,
                    BUSY,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            _ => self.leave_idle(BUSY),
        }
    }

    /// The response body was handed to hyper in full.
    pub fn answered(&self) {
        self.0.signals.served.store(true, Ordering::Relaxed);
        let _ = self.0.signals.phase.compare_exchange(
            BUSY,
            ANSWERED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// A read found no bytes waiting. After an answer, that means hyper has nothing buffered
    /// and waits for the client: the connection is idle.
    pub fn read_pending(&self) {
        if self.phase() != ANSWERED {
            return;
        }
        let t = &self.0.tracker;
        let Ok(mut inner) = t.inner.lock() else {
            return;
        };
        if self.phase() != ANSWERED {
            return;
        }
        let seq = inner.next_seq;
        inner.next_seq = seq.wrapping_add(1);
        let fresh = !self.0.signals.served.load(Ordering::Relaxed);
        inner.idle.insert(
            seq,
            IdleEntry {
                key: self.0.key,
                signals: self.0.signals.clone(),
                since: Instant::now(),
                fresh,
            },
        );
        inner.order.set(fresh).insert(seq);
        inner
            .addresses
            .entry(self.0.key)
            .or_default()
            .idle
            .set(fresh)
            .insert(seq);
        self.0.signals.idle_seq.store(seq, Ordering::Relaxed);
        self.0.signals.phase.store(IDLE, Ordering::Release);
    }

    /// The connection ended: out of the idle index for good.
    pub fn finish(&self) {
        self.leave_idle(CLOSING);
        self.0.signals.phase.store(CLOSING, Ordering::Release);
    }

    fn leave_idle(&self, to: u8) {
        let t = &self.0.tracker;
        let Ok(mut inner) = t.inner.lock() else {
            return;
        };
        if self.phase() != IDLE {
            return;
        }
        let seq = self.0.signals.idle_seq.load(Ordering::Relaxed);
        inner.remove_idle(seq);
        self.0.signals.phase.store(to, Ordering::Release);
    }

    /// Resolves when another connection needs this one's slot.
    pub async fn close_requested(&self) {
        self.0.signals.close.notified().await;
    }

    /// Gives `slot` to the newcomer waiting for it, if any; otherwise frees it.
    pub fn hand_over(&self, slot: Slot) {
        let successor = self
            .0
            .signals
            .successor
            .lock()
            .ok()
            .and_then(|mut s| s.take());
        if let Some(tx) = successor {
            // A newcomer that gave up drops its receiver; the slot is then simply freed.
            let _ = tx.send(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn admitted(a: Admission) -> Slot {
        match a {
            Admission::Admitted(s) => s,
            Admission::Handover(_) => panic!("handover, expected admitted"),
            Admission::Refused(r) => panic!("refused {r:?}, expected admitted"),
        }
    }

    #[test]
    fn keys_group_ipv6_by_64_and_unmap_ipv4() {
        assert_eq!(address_key(ip("192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(address_key(ip("2001:db8:1:2:aa::1")), ip("2001:db8:1:2::"));
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
    }

    /// A connection that answered one request and now waits for the next.
    fn keep_alive(h: &ConnHook) {
        h.busy();
        h.answered();
        h.read_pending();
    }

    #[tokio::test]
    async fn busy_connections_are_refused_idle_ones_make_room() {
        let t = ConnTracker::new(2, 2);
        let a = ip("192.0.2.1");
        let s1 = admitted(t.admit(a));
        let h1 = t.register(&s1);
        keep_alive(&h1);
        let s2 = admitted(t.admit(a));
        let h2 = t.register(&s2);
        h2.busy();
        assert_eq!(h2.phase(), BUSY);
        // Over the per-address cap: the address's own idle connection (h1) is asked to close.
        let Admission::Handover(wait) = t.admit(a) else {
            panic!("expected a handover")
        };
        tokio::time::timeout(Duration::from_secs(1), h1.close_requested())
            .await
            .unwrap();
        h1.finish();
        h1.hand_over(s1);
        let s3 = wait.wait(Duration::from_secs(1)).await.unwrap();
        // Everything busy now: refused, for the address first.
        let h3 = t.register(&s3);
        h3.busy();
        assert!(matches!(
            t.admit(a),
            Admission::Refused(Refusal::PerAddress)
        ));
        assert!(matches!(
            t.admit(ip("192.0.2.2")),
            Admission::Refused(Refusal::Busy)
        ));
        // An answered connection becomes idle once hyper finds nothing more to read; then a
        // newcomer of another address takes its slot but keeps its own address count.
        h2.answered();
        assert!(matches!(
            t.admit(ip("192.0.2.2")),
            Admission::Refused(Refusal::Busy)
        ));
        h2.read_pending();
        let Admission::Handover(wait) = t.admit(ip("192.0.2.2")) else {
            panic!("expected a handover")
        };
        h2.finish();
        h2.hand_over(s2);
        let s4 = wait.wait(Duration::from_secs(1)).await.unwrap();
        assert_eq!(s4.address.key, ip("192.0.2.2"));
        {
            let inner = t.inner.lock().unwrap();
            assert_eq!(inner.addresses[&a].open, 1);
            assert_eq!(inner.addresses[&ip("192.0.2.2")].open, 1);
            assert!(inner.idle.is_empty());
        }
        drop((s3, s4));
        assert!(t.inner.lock().unwrap().addresses.is_empty());
        assert!(t.drained(Duration::from_secs(1)).await);
    }

    #[tokio::test]
    async fn silent_new_connections_yield_only_after_their_grace() {
        let t = ConnTracker::with_fresh_grace(2, 2, Duration::from_millis(100));
        let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
        let s1 = admitted(t.admit(a));
        let fresh = t.register(&s1);
        fresh.read_pending(); // nothing sent yet
        let s2 = admitted(t.admit(a));
        let kept = t.register(&s2);
        keep_alive(&kept);
        // The keep-alive one goes first although it became idle later.
        let Admission::Handover(wait) = t.admit(b) else {
            panic!("expected a handover")
        };
        tokio::time::timeout(Duration::from_secs(1), kept.close_requested())
            .await
            .unwrap();
        kept.finish();
        kept.hand_over(s2);
        let s3 = wait.wait(Duration::from_secs(1)).await.unwrap();
        t.register(&s3).busy();
        // The silent one is left alone during its grace, then yields.
        assert!(matches!(t.admit(b), Admission::Refused(Refusal::Busy)));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(matches!(t.admit(b), Admission::Handover(_)));
    }

    #[tokio::test]
    async fn a_connection_that_turns_busy_leaves_the_idle_index() {
        let t = ConnTracker::new(1, 1);
        let s = admitted(t.admit(ip("192.0.2.1")));
        let h = t.register(&s);
        h.busy();
        assert!(matches!(
            t.admit(ip("192.0.2.2")),
            Admission::Refused(Refusal::Busy)
        ));
        // A handover nobody completes gives up in time and frees nothing it does not own.
        h.answered();
        h.read_pending();
        assert!(t.inner.lock().unwrap().order.kept.contains(&0));
        let Admission::Handover(wait) = t.admit(ip("192.0.2.2")) else {
            panic!("expected a handover")
        };
        assert!(wait.wait(Duration::from_millis(50)).await.is_none());
        h.finish();
        h.hand_over(s);
        assert!(t.drained(Duration::from_secs(1)).await);
        assert!(t.inner.lock().unwrap().addresses.is_empty());
    }
}
