//! A sync round (push everything pending, then pull every page) and the background engine that
//! runs rounds on a timer and on demand, remembering whether the server was reachable.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesOrdered;
use kaunter_protocol::http::{
    Checkpoint, DeskStatusReport, OutboxEntry, PullResponse, RejectedEntry, error_code,
};
use kaunter_store::{Store, StoreError};
use tokio::sync::Notify;

use crate::client::{SyncClient, Transport};
use crate::error::{Result, SyncError};

/// Entries per push: small enough that a slow link finishes a batch, large enough to be quick.
const PUSH_BATCH: usize = 200;
/// Rows per pull page: a large branch's download is a few hundred round trips, not thousands,
/// and a page (about 1 MB of JSON) still arrives quickly on a slow link.
const PULL_PAGE: u32 = 2000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncReport {
    pub pushed: usize,
    /// Entries of this round's pushes that the server refused.
    pub rejected: usize,
    pub pulled: usize,
    pub applied: usize,
    /// The desk's rows differed from the server's and were pulled again.
    pub repaired: bool,
    /// The desk had been away past the tombstone horizon and downloaded its branch again.
    pub resynced: bool,
}

fn lock(store: &Mutex<Store>) -> Result<MutexGuard<'_, Store>> {
    store
        .lock()
        .map_err(|_| SyncError::Store(StoreError::Corrupt("store lock poisoned".into())))
}

/// Pushes every pending entry in batches, then pulls until the server has nothing more.
/// Every acknowledgement and every page is committed locally before the next request, so an
/// interruption anywhere loses nothing and the next round resumes.
pub async fn sync_once(store: &Mutex<Store>, client: &impl Transport) -> Result<SyncReport> {
    sync_once_at(store, client, Utc::now, &|_| {}).await
}

/// How far a round's pull has got: rows applied and how many there are to pull.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PullProgress {
    pub done: u64,
    pub total: u64,
}

/// [`sync_once`] with the wall clock given (the simulation runs desks on simulated clocks).
pub async fn sync_once_at(
    store: &Mutex<Store>,
    client: &impl Transport,
    now: impl Fn() -> DateTime<Utc>,
    on_progress: &(dyn Fn(PullProgress) + Sync),
) -> Result<SyncReport> {
    let mut report = SyncReport::default();
    // In the subscription's grace the server takes no pushes but still sends other desks'
    // changes: the round pulls anyway, then reports the refusal.
    let pushed = push_waiting(
        client,
        PUSH_BATCH,
        |after, max| Ok(lock(store)?.pending_batch_after(after, max)?),
        |acked_seq, server_high_water, rejected| {
            Ok(lock(store)?.acknowledge_through(acked_seq, server_high_water, rejected)?)
        },
    )
    .await?;
    report.pushed += pushed.entries;
    report.rejected += pushed.rejected;
    let push_refused = pushed.refused;
    let checkpoint = pull_all(store, client, &now, &mut report, on_progress).await?;
    if let Some(refused) = push_refused {
        return Err(refused);
    }
    // With nothing waiting to push, this desk's rows must now be the server's. If they are not,
    // something skipped or misapplied a change: download the branch again, and if that does
    // not fix it, say so.
    if let Some(checkpoint) = checkpoint
        && !agrees(store, &checkpoint)?
    {
        tracing::warn!(
            cursor = checkpoint.cursor,
            "this desk's rows differ from the server's; pulling everything again"
        );
        report.repaired = true;
        // Everything again, from nothing: a merge cannot take away a row the server no longer
        // has (a purged tombstone), so the desk's copies go first (nothing waits to be sent).
        lock(store)?.begin_full_resync()?;
        if let Some(checkpoint) = pull_all(store, client, &now, &mut report, on_progress).await?
            && !agrees(store, &checkpoint)?
        {
            return Err(SyncError::Diverged);
        }
    }
    Ok(report)
}

/// What a round's pushes did.
#[derive(Debug, Default)]
pub struct Pushed {
    /// Entries sent and acknowledged.
    pub entries: usize,
    /// Of those, how many the server refused.
    pub rejected: usize,
    /// The server takes no pushes now (the subscription's grace or suspension): why.
    pub refused: Option<SyncError>,
}

/// How many pushes a desk keeps in flight.
const PUSHES_IN_FLIGHT: usize = 2;
/// How often in a row (with no batch acknowledged between) a round sends a batch again that
/// reached the server before the one ahead of it.
const MAX_RESENDS: usize = 8;

/// Sends every waiting entry in batches of up to `batch`, two requests in flight: while the
/// server applies batch N (its locks, its database work), batch N+1 is already on its way and
/// being read and checked beside it, so the server goes from one to the next without waiting
/// a round trip and the desk's reading of its outbox. `waiting_after(seq, max)` gives the
/// entries after `seq` not yet acknowledged; `acknowledge(seq, high_water, rejected)` records
/// the server's answer: the entries up to `seq` are handled, and `high_water` is the mark the
/// server answered with, to check against what the desk has made. Answers are taken in the
/// order the batches were sent, each acknowledging no further than its own batch (a later
/// batch's refusals come with its own answer), and each committed
/// before the next batch is read, so an interruption anywhere loses nothing. If a batch reached
/// the server before the one ahead of it (`sequence_gap`, which the server avoids by waiting
/// when it can), it is sent again once that one is acknowledged.
pub async fn push_waiting<T: Transport>(
    client: &T,
    batch: usize,
    mut waiting_after: impl FnMut(i64, usize) -> Result<Vec<OutboxEntry>>,
    mut acknowledge: impl FnMut(i64, i64, &[RejectedEntry]) -> Result<()>,
) -> Result<Pushed> {
    let mut pushed = Pushed::default();
    let mut flights = FuturesOrdered::new();
    // The last seq sent; 0 before any (seqs start at 1).
    let mut sent_up_to = 0_i64;
    let mut resends = 0;
    loop {
        while flights.len() < PUSHES_IN_FLIGHT {
            let entries = waiting_after(sent_up_to, batch)?;
            let (Some(first_seq), Some(last_seq)) = (
                entries.first().map(|entry| entry.seq),
                entries.last().map(|entry| entry.seq),
            ) else {
                break;
            };
            sent_up_to = last_seq;
            // Sent with nothing ahead of it: its first entry is the oldest waiting one.
            let oldest = flights.is_empty();
            let count = entries.len();
            flights.push_back(async move {
                let answer = client.push(entries).await;
                (first_seq, last_seq, count, oldest, answer)
            });
        }
        let Some((first_seq, last_seq, count, oldest, answer)) = flights.next().await else {
            break;
        };
        let answer = match answer {
            Ok(answer) => answer,
            Err(SyncError::Refused {
                code,
                expected_seq: Some(expected),
                ..
            }) if code == error_code::SEQUENCE_GAP && expected < first_seq && oldest => {
                return Err(SyncError::Store(StoreError::Corrupt(format!(
                    "the server expects change {expected} but this desk's outbox starts at {first_seq}"
                ))));
            }
            Err(SyncError::Refused { code, .. })
                if code == error_code::SEQUENCE_GAP && !oldest && resends < MAX_RESENDS =>
            {
                // It overtook the batch ahead of it, which is acknowledged now: send it (and
                // what follows) again; whatever else was in flight is dropped and resent.
                resends += 1;
                flights = FuturesOrdered::new();
                sent_up_to = first_seq - 1;
                continue;
            }
            Err(error @ SyncError::Refused { .. })
                if matches!(&error, SyncError::Refused { code, .. }
                            if code == error_code::SUBSCRIPTION_READ_ONLY) =>
            {
                pushed.refused = Some(error);
                break;
            }
            Err(error) => return Err(error),
        };
        acknowledge(
            answer.acked_seq.min(last_seq),
            answer.acked_seq,
            &answer.rejected,
        )?;
        resends = 0;
        pushed.rejected += answer.rejected.len();
        pushed.entries += count;
        if answer.acked_seq < first_seq {
            return Err(SyncError::Protocol(format!(
                "the server acknowledged {} but the batch started at {first_seq}",
                answer.acked_seq
            )));
        }
    }
    Ok(pushed)
}

/// Pulls every page; returns the last page's checkpoint. The first page also asks how many
/// changes there are, for `on_progress`.
async fn pull_all(
    store: &Mutex<Store>,
    client: &impl Transport,
    now: &impl Fn() -> DateTime<Utc>,
    report: &mut SyncReport,
    on_progress: &(dyn Fn(PullProgress) + Sync),
) -> Result<Option<Checkpoint>> {
    let mut progress = PullProgress::default();
    // From 0 the desk is sent everything the server has. Rows it holds with nothing waiting
    // to be sent (say its own registrations, pushed before it ever pulled) go first: if the
    // server has since purged one, no change would tell the desk so. They go only once the
    // server has answered with the first page: a desk that cannot download its branch right now
    // (offline, or its business suspended) keeps everything it holds.
    let mut from_nothing = lock(store)?.sync_state()?.pull_cursor == 0;
    // The next page is asked for while this one is applied (the server reads and sends it
    // while the desk writes): a prefetched page is used only if the cursor is still the one it
    // was asked from, and the store drops it anyway if the cursor moved.
    let mut prefetched: Option<(i64, Result<PullResponse>)> = None;
    loop {
        let cursor = lock(store)?.sync_state()?.pull_cursor;
        let first = progress.total == 0 && progress.done == 0;
        let fetched = match prefetched.take() {
            Some((from, page)) if from == cursor => page,
            _ => client.pull(cursor, PULL_PAGE, first).await,
        };
        let page = match fetched {
            Ok(page) => page,
            // Away past the tombstone horizon: rows deleted meanwhile can no longer be learnt
            // change by change. Keep what waits to be pushed, drop the rest, start again from 0.
            Err(SyncError::Refused { code, .. })
                if code == error_code::RESYNC_REQUIRED && !report.resynced =>
            {
                tracing::warn!(
                    cursor,
                    "away past the tombstone horizon; downloading the branch again"
                );
                lock(store)?.begin_full_resync()?;
                report.resynced = true;
                progress = PullProgress::default();
                continue;
            }
            Err(error) => return Err(error),
        };
        if from_nothing && cursor == 0 {
            lock(store)?.begin_full_resync()?;
            from_nothing = false;
        }
        if let Some(remaining) = page.remaining {
            progress.total = u64::try_from(remaining).unwrap_or(0);
        }
        if page.next_cursor < cursor {
            return Err(SyncError::Protocol(format!(
                "the server moved the cursor back from {cursor} to {}",
                page.next_cursor
            )));
        }
        let more = page.has_more && page.next_cursor != cursor;
        let apply =
            async { Ok::<_, SyncError>(lock(store)?.apply_pulled_from(cursor, &page, now())?) };
        let applied = if more {
            let next = page.next_cursor;
            let (next_page, applied) = tokio::join!(client.pull(next, PULL_PAGE, false), apply);
            prefetched = Some((next, next_page));
            applied?
        } else {
            apply.await?
        };
        let Some(applied) = applied else {
            // The cursor was reset meanwhile (a discard): ask again from where it is now.
            continue;
        };
        report.pulled += page.changes.len();
        report.applied += applied;
        progress.done += page.row_count() as u64;
        progress.total = progress.total.max(progress.done);
        on_progress(progress);
        if !more {
            return Ok(page.checkpoint);
        }
    }
}

/// Whether the desk's rows match a checkpoint; only asked when nothing waits to be pushed or
/// was refused (those are local changes the server rightly does not have).
fn agrees(store: &Mutex<Store>, checkpoint: &Checkpoint) -> Result<bool> {
    let store = lock(store)?;
    let state = store.sync_state()?;
    if state.pending > 0 || state.rejected > 0 || state.pull_cursor != checkpoint.cursor {
        return Ok(true);
    }
    Ok(store.state_digest()? == checkpoint.digest)
}

/// The report head office gets of this desk's sync state.
pub fn status_report(state: &kaunter_store::SyncState) -> DeskStatusReport {
    DeskStatusReport {
        pending: state.pending,
        refused: state.rejected,
        oldest_pending_at: state.oldest_pending_at,
        last_synced_at: state.last_synced_at,
        last_error: state
            .last_error
            .as_ref()
            .map(|error| error.chars().take(500).collect()),
        schema_version: kaunter_protocol::SCHEMA_VERSION,
        app_version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// What the status bar shows beyond the store's own bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LiveStatus {
    /// The last round reached the server.
    pub online: bool,
    pub syncing: bool,
    /// The pull of the round under way.
    pub progress: PullProgress,
    /// The last round found the desk shut out ([`SyncError::is_shut_out`]): it must be
    /// reconnected with a new enrolment code.
    pub shut_out: bool,
}

/// Runs sync rounds in the background and on demand; one round at a time.
pub struct SyncEngine {
    store: Arc<Mutex<Store>>,
    client: SyncClient,
    live: Mutex<LiveStatus>,
    round: tokio::sync::Mutex<()>,
    wake: Notify,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl SyncEngine {
    pub fn new(store: Arc<Mutex<Store>>, client: SyncClient) -> SyncEngine {
        SyncEngine {
            store,
            client,
            live: Mutex::new(LiveStatus::default()),
            round: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        }
    }

    /// The client this engine syncs with, for the calls a person makes (conflicts).
    pub fn client(&self) -> &SyncClient {
        &self.client
    }

    pub fn live_status(&self) -> LiveStatus {
        self.live.lock().map(|s| *s).unwrap_or_default()
    }

    fn set_live(&self, update: impl FnOnce(&mut LiveStatus)) {
        if let Ok(mut live) = self.live.lock() {
            update(&mut live);
        }
    }

    /// Runs one round now (waiting for a round already under way), records its outcome in the
    /// store and returns it.
    pub async fn sync_now(&self, now: fn() -> DateTime<Utc>) -> Result<SyncReport> {
        let _round = self.round.lock().await;
        self.set_live(|live| live.syncing = true);
        // Who may sign in here, first thing in every round (a new desk learns before its first
        // download that it must ask): a person given a PIN, new roles or set away reaches the
        // desk within a round. A failed fetch leaves the roster as it was.
        match self.client.staff().await {
            Ok(roster) => lock(&self.store)?.replace_staff(&roster)?,
            Err(error) => tracing::debug!(%error, "staff roster not fetched"),
        }
        // A fresh licence lease every round, in every subscription state: the desk enforces the
        // newest one it verified, offline too. One it refuses (another key, another desk)
        // leaves the one held, which runs out on its own schedule.
        match self.client.licence().await {
            Ok(signed) => {
                if let Err(error) = lock(&self.store)?.accept_licence(&signed, now()) {
                    tracing::warn!(%error, "licence lease refused");
                }
            }
            Err(error) => tracing::debug!(%error, "licence lease not fetched"),
        }
        let on_progress = |progress: PullProgress| self.set_live(|live| live.progress = progress);
        let outcome = sync_once_at(&self.store, &self.client, Utc::now, &on_progress).await;
        let reached = !matches!(&outcome, Err(error) if error.is_offline());
        let shut_out = matches!(&outcome, Err(error) if error.is_shut_out());
        self.set_live(|live| {
            live.syncing = false;
            live.online = reached;
            live.shut_out = shut_out;
            live.progress = PullProgress::default();
        });
        let report = {
            let mut store = lock(&self.store)?;
            match &outcome {
                Ok(report) => {
                    store.record_sync_success(now())?;
                    tracing::info!(?report, "sync round done");
                }
                Err(error) => {
                    store.record_sync_failure(now(), &error.to_string())?;
                    tracing::warn!(%error, "sync round failed");
                }
            }
            status_report(&store.sync_state()?)
        };
        // Head office sees each desk's backlog and trouble; a report that does not arrive is
        // sent again after the next round.
        if reached && let Err(error) = self.client.report_status(&report).await {
            tracing::debug!(%error, "sync status not reported");
        }
        outcome
    }

    /// Asks the background loop for a round as soon as possible.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs forever: a round every `interval`, or sooner when woken.
    pub async fn run(self: Arc<Self>, interval: Duration) {
        loop {
            let _ = self.sync_now(Utc::now).await;
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::VecDeque;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use kaunter_protocol::SCHEMA_VERSION;
    use kaunter_protocol::http::{Change, Entity, Fields, PushResponse, WireStamp};
    use uuid::Uuid;

    use super::*;

    fn entries(count: i64) -> Vec<OutboxEntry> {
        (1..=count)
            .map(|seq| OutboxEntry {
                seq,
                schema_version: SCHEMA_VERSION,
                actor: None,
                approver: None,
                change: Change {
                    entity: Entity::Patient,
                    row_id: Uuid::now_v7(),
                    branch_id: Uuid::nil(),
                    stamp: WireStamp {
                        hlc: 1,
                        device_id: Uuid::nil(),
                    },
                    fields: Fields::new(),
                    recorded_at: Utc::now(),
                },
            })
            .collect()
    }

    /// What the fake server does with the next push it gets (else: apply it).
    enum Script {
        Gap {
            expected: i64,
        },
        Offline,
        /// Answer with this acknowledgement, whatever the batch.
        Acked(i64),
    }

    /// A server that applies batches in the order they arrive, answering from a script first.
    #[derive(Default)]
    struct FakeServer {
        script: Mutex<VecDeque<Script>>,
        /// (first, last) seq of every push received, in order.
        received: Mutex<Vec<(i64, i64)>>,
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    impl Transport for FakeServer {
        async fn push(&self, entries: Vec<OutboxEntry>) -> Result<PushResponse> {
            // Arrival (in the order sent) decides what happens to it.
            let (first, last) = (entries[0].seq, entries[entries.len() - 1].seq);
            self.received.lock().unwrap().push((first, last));
            let scripted = self.script.lock().unwrap().pop_front();
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            // Let the other request in flight get going.
            tokio::task::yield_now().await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            match scripted {
                Some(Script::Gap { expected }) => Err(SyncError::Refused {
                    status: 409,
                    code: error_code::SEQUENCE_GAP.to_owned(),
                    message: "gap".to_owned(),
                    expected_seq: Some(expected),
                }),
                Some(Script::Offline) => Err(SyncError::Offline("lost".to_owned())),
                Some(Script::Acked(acked_seq)) => Ok(PushResponse {
                    acked_seq,
                    rejected: Vec::new(),
                }),
                None => Ok(PushResponse {
                    acked_seq: last,
                    rejected: Vec::new(),
                }),
            }
        }

        async fn pull(&self, _cursor: i64, _limit: u32, _count: bool) -> Result<PullResponse> {
            Err(SyncError::Protocol("this fake does not pull".to_owned()))
        }
    }

    /// Pushes `outbox` in batches of two; returns the outcome and every acknowledgement made
    /// (and, in `marks`, the high-water mark each came with).
    async fn push_all(server: &FakeServer, outbox: &[OutboxEntry]) -> (Result<Pushed>, Vec<i64>) {
        push_all_marked(server, outbox, &Mutex::new(Vec::new())).await
    }

    async fn push_all_marked(
        server: &FakeServer,
        outbox: &[OutboxEntry],
        marks: &Mutex<Vec<i64>>,
    ) -> (Result<Pushed>, Vec<i64>) {
        let acked = Mutex::new(0_i64);
        let acks = Mutex::new(Vec::new());
        let outcome = push_waiting(
            server,
            2,
            |after, max| {
                // Waiting: after what was sent, and not yet acknowledged.
                let from = after.max(*acked.lock().unwrap());
                Ok(outbox
                    .iter()
                    .filter(|entry| entry.seq > from)
                    .take(max)
                    .cloned()
                    .collect())
            },
            |acked_seq, high_water, _| {
                assert!(high_water >= acked_seq);
                *acked.lock().unwrap() = acked_seq;
                acks.lock().unwrap().push(acked_seq);
                marks.lock().unwrap().push(high_water);
                Ok(())
            },
        )
        .await;
        (outcome, acks.into_inner().unwrap())
    }

    #[tokio::test]
    async fn batches_go_two_at_a_time_and_are_acknowledged_in_order() {
        let server = FakeServer::default();
        let (outcome, acks) = push_all(&server, &entries(7)).await;
        assert_eq!(outcome.unwrap().entries, 7);
        assert_eq!(acks, [2, 4, 6, 7]);
        assert_eq!(
            *server.received.lock().unwrap(),
            [(1, 2), (3, 4), (5, 6), (7, 7)]
        );
        assert_eq!(server.most_in_flight.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_batch_that_overtook_the_one_before_it_is_sent_again() {
        let server = FakeServer::default();
        // 3-4 reached the server before 1-2 (which was then applied): a gap, expecting 1.
        server
            .script
            .lock()
            .unwrap()
            .extend([Script::Acked(2), Script::Gap { expected: 1 }]);
        let (outcome, acks) = push_all(&server, &entries(6)).await;
        assert_eq!(outcome.unwrap().entries, 6);
        assert_eq!(acks, [2, 4, 6]);
        let received = server.received.lock().unwrap().clone();
        // Sent again once 1-2 was acknowledged; what was in flight with it is sent again too.
        assert_eq!(received[..2], [(1, 2), (3, 4)]);
        assert_eq!(received.iter().filter(|batch| **batch == (3, 4)).count(), 2);
        assert_eq!(received.last(), Some(&(5, 6)));
    }

    #[tokio::test]
    async fn a_gap_below_the_oldest_waiting_entry_is_an_outbox_the_server_does_not_know() {
        let server = FakeServer::default();
        server
            .script
            .lock()
            .unwrap()
            .push_back(Script::Gap { expected: 1 });
        // This outbox starts at 3 (1 and 2 gone without the server having them).
        let (outcome, acks) = push_all(&server, &entries(4)[2..]).await;
        assert!(matches!(
            outcome,
            Err(SyncError::Store(StoreError::Corrupt(_)))
        ));
        assert_eq!(acks, Vec::<i64>::new());
    }

    #[tokio::test]
    async fn a_lost_push_ends_the_round_and_nothing_after_it_is_acknowledged() {
        let server = FakeServer::default();
        // The first batch is lost on the way; the second is applied (as if the first had been
        // too, its answer lost).
        server
            .script
            .lock()
            .unwrap()
            .extend([Script::Offline, Script::Acked(4)]);
        let (outcome, acks) = push_all(&server, &entries(6)).await;
        assert!(matches!(outcome, Err(SyncError::Offline(_))));
        assert_eq!(acks, Vec::<i64>::new());
    }

    #[tokio::test]
    async fn an_answer_is_acknowledged_no_further_than_its_batch() {
        let server = FakeServer::default();
        // A replay of 1-2 answered with the high-water mark of an earlier push of 3-4.
        server.script.lock().unwrap().push_back(Script::Acked(4));
        let marks = Mutex::new(Vec::new());
        let (outcome, acks) = push_all_marked(&server, &entries(4), &marks).await;
        assert_eq!(outcome.unwrap().entries, 4);
        // 3-4's own answer (and any refusals in it) still came: 1-2 acknowledged only to 2.
        assert_eq!(acks, [2, 4]);
        // The mark itself still reaches the store, which refuses one past what it made (a
        // restored old copy of the desk's database).
        assert_eq!(marks.into_inner().unwrap(), [4, 4]);
    }
}
