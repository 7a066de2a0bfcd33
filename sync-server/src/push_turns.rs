//! Which pushes of each device this server is working on, so that a push arriving ahead of the
//! one before it waits for it instead of being refused.
//!
//! A desk keeps two pushes in flight: batch N+1 is sent while N is being applied. The device
//! row's lock makes them take turns, but N+1 may reach that lock first; its first entry is then
//! past the high-water mark + 1 (a `sequence_gap`). When this server is working on the push
//! that holds the entry expected next, N+1 lets go of its locks, waits for that push to finish
//! and looks again, once. Only that push is waited for: a gap nobody here is filling (a batch
//! lost on the way, or being applied by another server process) is refused at once, and the
//! desk sends the batch again once the one before it is acknowledged.
//!
//! It also keeps what the device's last push wrote ([`Applied`]): N+1 looks its rows up while
//! N holds the locks, and under them checks that N (and nothing else) came in between, and
//! touched none of what it looked up (see `routes::push`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::ids::DeviceId;
use crate::rows::RowKey;

/// How long a push waits for the one before it.
pub const WAIT: Duration = Duration::from_secs(10);

/// One push in flight: the seqs of its batch (`None`: it has no entries).
#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: u64,
    seqs: Option<(i64, i64)>,
    waiting: bool,
}

/// What a push of a device wrote, recorded just before it commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The business's change seqs it numbered, first and last (refused entries included).
    pub tenant_seqs: (i64, i64),
    /// The device's high-water mark once it has committed.
    pub high_water: i64,
    /// The rows its entries name.
    pub keys: HashSet<RowKey>,
    /// The document numbers its live patients have after it.
    pub numbers: HashSet<String>,
}

#[derive(Debug, Default)]
struct Device {
    pushes: Mutex<Vec<InFlight>>,
    /// Woken whenever a push of the device finishes.
    finished: Notify,
    /// What the device's last push here wrote, while any push of the device is in flight.
    applied: Mutex<Option<Arc<Applied>>>,
}

impl Device {
    fn pushes(&self) -> MutexGuard<'_, Vec<InFlight>> {
        self.pushes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn applied(&self) -> MutexGuard<'_, Option<Arc<Applied>>> {
        self.applied
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug, Default)]
struct Registry {
    devices: HashMap<DeviceId, Arc<Device>>,
    next_id: u64,
}

/// The pushes in flight, per device.
#[derive(Debug, Clone, Default)]
pub struct PushTurns {
    registry: Arc<Mutex<Registry>>,
}

impl PushTurns {
    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a push of `device` with the batch `seqs` (first and last) as in flight until the
    /// returned turn is dropped.
    pub fn enter(&self, device: DeviceId, seqs: Option<(i64, i64)>) -> Turn {
        let mut registry = self.registry();
        let id = registry.next_id;
        registry.next_id += 1;
        let state = registry.devices.entry(device).or_default().clone();
        state.pushes().push(InFlight {
            id,
            seqs,
            waiting: false,
        });
        Turn {
            turns: self.clone(),
            device,
            state,
            id,
        }
    }
}

/// One push of a device, counted as in flight while it lives.
#[derive(Debug)]
pub struct Turn {
    turns: PushTurns,
    device: DeviceId,
    state: Arc<Device>,
    id: u64,
}

impl Turn {
    /// Waits (at most [`WAIT`]) for the push holding entry `expected` to finish, if this server
    /// is working on one (and it is not itself waiting); says whether there was one. Call it
    /// holding no lock another push of the device needs.
    pub async fn wait_for(&self, expected: i64) -> bool {
        let finished = self.state.finished.notified();
        tokio::pin!(finished);
        // Registered before looking, so a push finishing in between still wakes this one.
        finished.as_mut().enable();
        {
            let mut pushes = self.state.pushes();
            let filling = pushes.iter().any(|push| {
                push.id != self.id
                    && !push.waiting
                    && push
                        .seqs
                        .is_some_and(|(first, last)| (first..=last).contains(&expected))
            });
            if !filling {
                return false;
            }
            self.set_waiting(&mut pushes, true);
        }
        let _ = tokio::time::timeout(WAIT, finished).await;
        self.set_waiting(&mut self.state.pushes(), false);
        true
    }

    /// Records what this push wrote, for the device's next push; call it before committing,
    /// and [`Recorded::keep`] it once committed. Dropped without that (the commit failed, or
    /// the request was dropped while committing), the record is forgotten: it may not be what
    /// the database holds.
    #[must_use = "a record not kept is forgotten at once"]
    pub fn record_applied(&self, applied: Applied) -> Recorded<'_> {
        *self.state.applied() = Some(Arc::new(applied));
        Recorded {
            turn: self,
            kept: false,
        }
    }

    /// What the device's last push here wrote, if that push ended while this one was in
    /// flight (or is still in flight).
    pub fn last_applied(&self) -> Option<Arc<Applied>> {
        self.state.applied().clone()
    }

    fn set_waiting(&self, pushes: &mut [InFlight], waiting: bool) {
        if let Some(me) = pushes.iter_mut().find(|push| push.id == self.id) {
            me.waiting = waiting;
        }
    }
}

/// What a push recorded of what it wrote, forgotten when dropped unless kept.
#[derive(Debug)]
pub struct Recorded<'a> {
    turn: &'a Turn,
    kept: bool,
}

impl Recorded<'_> {
    /// The push committed: its record stays for the device's next push.
    pub fn keep(mut self) {
        self.kept = true;
    }
}

impl Drop for Recorded<'_> {
    fn drop(&mut self) {
        if !self.kept {
            *self.turn.state.applied() = None;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut registry = self.turns.registry();
        let none_left = {
            let mut pushes = self.state.pushes();
            pushes.retain(|push| push.id != self.id);
            pushes.is_empty()
        };
        if none_left {
            registry.devices.remove(&self.device);
        }
        drop(registry);
        self.state.finished.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn device() -> DeviceId {
        DeviceId::from_uuid(uuid::Uuid::now_v7())
    }

    #[tokio::test]
    async fn a_push_alone_does_not_wait() {
        let turns = PushTurns::default();
        let turn = turns.enter(device(), Some((501, 1000)));
        assert!(!turn.wait_for(1).await);
    }

    #[tokio::test]
    async fn a_push_waits_for_the_one_holding_the_expected_entry() {
        let turns = PushTurns::default();
        let device = device();
        let first = turns.enter(device, Some((1, 500)));
        let second = turns.enter(device, Some((501, 1000)));
        let waiter = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let waited = second.wait_for(1).await;
            (waited, started.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(first);
        let (waited, took) = waiter.await.unwrap();
        assert!(waited);
        assert!(
            took < WAIT,
            "woken when the first finished, not by the timeout"
        );
        assert!(turns.registry().devices.is_empty());
    }

    #[tokio::test]
    async fn pushes_that_do_not_hold_the_expected_entry_are_not_waited_for() {
        let turns = PushTurns::default();
        let device = device();
        // Another batch that skips the same entries, and an empty push.
        let _other = turns.enter(device, Some((1000, 1000)));
        let _empty = turns.enter(device, None);
        let turn = turns.enter(device, Some((501, 1000)));
        assert!(!turn.wait_for(1).await);
    }

    #[tokio::test]
    async fn a_waiting_push_is_not_waited_for() {
        let turns = PushTurns::default();
        let device = device();
        let first = turns.enter(device, Some((1, 500)));
        let second = turns.enter(device, Some((501, 1000)));
        // The first waits (for entry 501, which the second holds) ...
        let waiter = tokio::spawn(async move {
            let waited = first.wait_for(501).await;
            drop(first);
            waited
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        // ... so the second, expecting 1, has nobody working to wait for.
        assert!(!second.wait_for(1).await);
        drop(second);
        assert!(waiter.await.unwrap());
    }

    #[test]
    fn the_next_push_sees_what_the_last_one_wrote_until_the_device_has_none_in_flight() {
        let turns = PushTurns::default();
        let device = device();
        let applied = Applied {
            tenant_seqs: (1, 500),
            high_water: 500,
            keys: HashSet::new(),
            numbers: HashSet::new(),
        };
        let first = turns.enter(device, Some((1, 500)));
        let second = turns.enter(device, Some((501, 1000)));
        assert_eq!(second.last_applied(), None);
        first.record_applied(applied.clone()).keep();
        drop(first);
        assert_eq!(second.last_applied().as_deref(), Some(&applied));
        // A record not kept (its push did not commit) is forgotten.
        drop(second.record_applied(applied.clone()));
        assert_eq!(second.last_applied(), None);
        second.record_applied(applied).keep();
        drop(second);
        // Nothing in flight: nothing kept.
        assert_eq!(turns.enter(device, Some((1001, 1500))).last_applied(), None);
    }

    #[tokio::test]
    async fn other_devices_do_not_count() {
        let turns = PushTurns::default();
        let _other = turns.enter(device(), Some((1, 500)));
        let turn = turns.enter(device(), Some((501, 1000)));
        assert!(!turn.wait_for(1).await);
    }
}
