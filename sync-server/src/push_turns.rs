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
#[derive(Debug, Clone)]
struct InFlight {
    id: u64,
    seqs: Option<(i64, i64)>,
    waiting: bool,
    /// The rows its batch names.
    keys: Arc<HashSet<RowKey>>,
    /// The business's change seqs it numbered, or will if its head start holds (first, last).
    tenant_seqs: Option<(i64, i64)>,
    /// It wrote its new rows before the locks (a head start, see `routes::push`).
    started_ahead: bool,
    stage: Stage,
}

/// How far a push in flight has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// It may be waiting for a database connection.
    Entered,
    /// It has a connection and is working towards the device's lock.
    Working,
    /// It holds the device's lock (or is past it).
    Locked,
}

/// What the change numbers of a push will follow, as far as this server can tell before the
/// push takes its locks (see [`Turn::numbers_follow`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follows {
    /// No push of the device here holds the entry before this batch's first: the business's
    /// counter as last committed, if the device's mark is that entry.
    Committed,
    /// The push holding that entry numbers its changes up to this one.
    Push(i64),
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
    /// Woken whenever a push of the device comes further, or finishes.
    progressed: Notify,
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

    /// Counts a push of `device` with the batch `seqs` (first and last), naming the rows
    /// `keys`, as in flight until the returned turn is dropped.
    pub fn enter(&self, device: DeviceId, seqs: Option<(i64, i64)>, keys: HashSet<RowKey>) -> Turn {
        let mut registry = self.registry();
        let id = registry.next_id;
        registry.next_id += 1;
        let state = registry.devices.entry(device).or_default().clone();
        state.pushes().push(InFlight {
            id,
            seqs,
            waiting: false,
            keys: Arc::new(keys),
            tenant_seqs: None,
            started_ahead: false,
            stage: Stage::Entered,
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

    /// What this push's change numbers will follow, if it starts at device seq `first`: told
    /// only when no other push of the device here names any of its rows (one that does could
    /// be writing them right now), and the push holding entry `first - 1` (if any) has said
    /// where its own numbers end ([`Turn::numbering`]).
    pub fn numbers_follow(&self, first: i64) -> Option<Follows> {
        let pushes = self.state.pushes();
        let me = pushes.iter().find(|push| push.id == self.id)?;
        let others = || pushes.iter().filter(|push| push.id != self.id);
        if others().any(|push| !push.keys.is_disjoint(&me.keys)) {
            return None;
        }
        match others().find(|push| push.seqs.is_some_and(|(_, last)| last == first - 1)) {
            None => Some(Follows::Committed),
            Some(before) => before.tenant_seqs.map(|(_, last)| Follows::Push(last)),
        }
    }

    /// Says which change numbers this push got under its locks, first and last, for the
    /// device's next push ([`Turn::numbers_follow`]).
    pub fn numbering(&self, tenant_seqs: (i64, i64)) {
        self.update(|me| me.tenant_seqs = Some(tenant_seqs));
    }

    /// Says that this push writes its new rows before its locks, expecting the change numbers
    /// `tenant_seqs` (first and last); `None`: it does not (any more).
    pub fn starting_ahead(&self, tenant_seqs: Option<(i64, i64)>) {
        self.update(|me| {
            me.tenant_seqs = tenant_seqs;
            me.started_ahead = tenant_seqs.is_some();
        });
        self.state.progressed.notify_waiters();
    }

    fn update(&self, change: impl FnOnce(&mut InFlight)) {
        if let Some(me) = self
            .state
            .pushes()
            .iter_mut()
            .find(|push| push.id == self.id)
        {
            change(me);
        }
    }

    /// This push has a database connection and works towards the device's lock.
    pub fn working(&self) {
        self.set_stage(Stage::Working);
    }

    /// This push holds the device's lock.
    pub fn locked(&self) {
        self.set_stage(Stage::Locked);
    }

    /// Waits (at most [`WAIT`]) while another push of the device that should take the
    /// device's lock first is working towards it:
    /// - the push holding entry `first - 1` (this push starts at `first`): else this one would
    ///   often get there first (a push without a head start gets there sooner), find a gap, and
    ///   have to let go of everything and wait anyway;
    /// - a push that wrote some of this one's rows before its locks (a head start; this one is
    ///   then the same batch sent again, say): holding the lock, this one would wait for those
    ///   rows, and that push for the lock.
    ///
    /// A push not yet working (it may need a connection this one holds) or itself waiting is
    /// not waited for; nor, by a push that wrote its rows ahead, the push before it if that
    /// one names some of those rows (it came after this one's head start, so it is a batch
    /// sent again, and it waits behind this one).
    pub async fn wait_behind(&self, first: i64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let progressed = self.state.progressed.notified();
            tokio::pin!(progressed);
            // Registered before looking, so progress in between still wakes this one.
            progressed.as_mut().enable();
            let ahead = {
                let pushes = self.state.pushes();
                let me = pushes.iter().find(|push| push.id == self.id);
                let overlaps =
                    |push: &InFlight| me.is_some_and(|me| !me.keys.is_disjoint(&push.keys));
                let ahead_of_me = me.is_some_and(|me| me.started_ahead);
                pushes.iter().any(|push| {
                    push.id != self.id
                        && !push.waiting
                        && push.stage == Stage::Working
                        && ((push.seqs.is_some_and(|(_, last)| last == first - 1)
                            && !(ahead_of_me && overlaps(push)))
                            || (push.started_ahead && overlaps(push)))
                })
            };
            if !ahead || tokio::time::timeout_at(deadline, progressed).await.is_err() {
                return;
            }
        }
    }

    fn set_stage(&self, stage: Stage) {
        self.update(|me| me.stage = stage);
        self.state.progressed.notify_waiters();
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
        self.state.progressed.notify_waiters();
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
        let turn = turns.enter(device(), Some((501, 1000)), HashSet::new());
        assert!(!turn.wait_for(1).await);
    }

    #[tokio::test]
    async fn a_push_waits_for_the_one_holding_the_expected_entry() {
        let turns = PushTurns::default();
        let device = device();
        let first = turns.enter(device, Some((1, 500)), HashSet::new());
        let second = turns.enter(device, Some((501, 1000)), HashSet::new());
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
        let _other = turns.enter(device, Some((1000, 1000)), HashSet::new());
        let _empty = turns.enter(device, None, HashSet::new());
        let turn = turns.enter(device, Some((501, 1000)), HashSet::new());
        assert!(!turn.wait_for(1).await);
    }

    #[tokio::test]
    async fn a_waiting_push_is_not_waited_for() {
        let turns = PushTurns::default();
        let device = device();
        let first = turns.enter(device, Some((1, 500)), HashSet::new());
        let second = turns.enter(device, Some((501, 1000)), HashSet::new());
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
        let first = turns.enter(device, Some((1, 500)), HashSet::new());
        let second = turns.enter(device, Some((501, 1000)), HashSet::new());
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
        assert_eq!(
            turns
                .enter(device, Some((1001, 1500)), HashSet::new())
                .last_applied(),
            None
        );
    }

    fn keys(ids: &[u128]) -> HashSet<RowKey> {
        ids.iter()
            .map(|id| {
                (
                    kaunter_protocol::http::Entity::Patient,
                    uuid::Uuid::from_u128(*id),
                )
            })
            .collect()
    }

    #[test]
    fn a_push_is_told_what_its_numbers_follow_only_when_nobody_here_writes_its_rows() {
        let turns = PushTurns::default();
        let device = device();
        let first = turns.enter(device, Some((1, 500)), keys(&[1, 2]));
        // Nothing of the device's before it here: the counter as committed.
        assert_eq!(first.numbers_follow(1), Some(Follows::Committed));
        let second = turns.enter(device, Some((501, 1000)), keys(&[3]));
        // The push before it has not said where its numbers end.
        assert_eq!(second.numbers_follow(501), None);
        first.starting_ahead(Some((101, 600)));
        assert_eq!(second.numbers_follow(501), Some(Follows::Push(600)));
        first.numbering((111, 610));
        assert_eq!(second.numbers_follow(501), Some(Follows::Push(610)));
        // A push naming a row another push here names is told nothing (that one may be
        // writing the row); nor is the other any more.
        let again = turns.enter(device, Some((501, 1000)), keys(&[3, 4]));
        assert_eq!(again.numbers_follow(501), None);
        assert_eq!(second.numbers_follow(501), None);
        drop(again);
        assert_eq!(second.numbers_follow(501), Some(Follows::Push(610)));
    }

    #[tokio::test]
    async fn a_push_waits_behind_the_one_before_it_while_that_one_works_towards_the_lock() {
        let turns = PushTurns::default();
        let device = device();
        let first = turns.enter(device, Some((1, 500)), keys(&[1]));
        let second = Arc::new(turns.enter(device, Some((501, 1000)), keys(&[2])));
        // Not yet working (it may be waiting for a connection): not waited for.
        tokio::time::timeout(Duration::from_secs(1), second.wait_behind(501))
            .await
            .expect("not waited for");
        first.working();
        let waiter = tokio::spawn({
            let second = second.clone();
            async move { second.wait_behind(501).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "waits while the first works");
        first.locked();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("let go once the first holds the lock")
            .unwrap();
    }

    #[tokio::test]
    async fn the_same_rows_sent_again_wait_behind_the_push_that_wrote_them_ahead() {
        let turns = PushTurns::default();
        let device = device();
        let original = turns.enter(device, Some((1, 500)), keys(&[1, 2]));
        let again = Arc::new(turns.enter(device, Some((1, 500)), keys(&[2, 3])));
        original.working();
        // Working without a head start: not waited for.
        tokio::time::timeout(Duration::from_secs(1), again.wait_behind(1))
            .await
            .expect("not waited for");
        original.starting_ahead(Some((1, 500)));
        let waiter = tokio::spawn({
            let again = again.clone();
            async move { again.wait_behind(1).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "waits while the original's rows are in"
        );
        drop(original);
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .expect("let go once the original is done")
            .unwrap();
    }

    #[tokio::test]
    async fn other_devices_do_not_count() {
        let turns = PushTurns::default();
        let _other = turns.enter(device(), Some((1, 500)), HashSet::new());
        let turn = turns.enter(device(), Some((501, 1000)), HashSet::new());
        assert!(!turn.wait_for(1).await);
    }
}
