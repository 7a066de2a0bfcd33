//! `POST /v1/sync/push`: a desk uploads its outbox. Exactly-once: the device's high-water mark
//! and the changes it covers are written in one transaction, so a batch is either applied with
//! its acknowledgement or not at all; a replayed batch changes nothing and gets the same answer.
//!
//! Each new entry is merged into its row field by field (kaunter-core's LWW record, ordered by
//! the entries' hybrid logical stamps), so the order in which desks push never decides the
//! outcome. An entry that cannot be applied (invalid merged row, another branch's row, another
//! device's stamp, a clock far ahead) is refused on its own: it is recorded with its reason,
//! counted as handled, and the entries after it still apply.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Datelike, Utc};
use kaunter_core::hlc::{MAX_DRIFT_MS, check_drift};
use kaunter_protocol::http::{
    Change, DELETED_FIELD, Entity, Fields, OutboxEntry, PushRequest, PushResponse, RejectedEntry,
    error_code,
};
use kaunter_protocol::merge::{is_deleted, stamp_from_wire};
use kaunter_protocol::records::ClinicalKind;
use kaunter_protocol::{ACCEPTED_SCHEMA_VERSIONS, FieldError};
use serde_json::Value;
use uuid::Uuid;

use kaunter_core::access::Permission;

use crate::AppState;
use crate::auth::{self, Bearer, Device, RowLock};
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::JsonBody;
use crate::ids::BranchId;
use crate::push_turns as turns;
use crate::routes::conflicts;
use crate::rows::{self, Prepared, RowKey, StoredRow};
use crate::subscription::{self, SyncNeed};
use crate::token::DeviceToken;

pub async fn push(
    State(state): State<AppState>,
    Bearer(token): Bearer,
    JsonBody(request): JsonBody<PushRequest>,
) -> Result<Json<PushResponse>> {
    let seqs = request
        .entries
        .first()
        .zip(request.entries.last())
        .map(|(first, last)| (first.seq, last.seq));
    let keys = request.entries.iter().map(row_key).collect();
    let turn = state.push_turns().enter(token.device_id, seqs, keys);
    // The work that needs no lock first, on the blocking pool: while another push of this
    // device holds the locks (a desk keeps two in flight), this one gets ready beside it.
    let (request, mut prepared) = tokio::task::spawn_blocking(move || {
        let prepared = prepare(&request.entries);
        (request, prepared)
    })
    .await
    .map_err(|error| Error::Internal(format!("preparing a push failed: {error}")))?;
    let mut client = state.pool().get().await?;
    let mut waited = false;
    let mut gave_way = false;
    let mut ahead = None;
    let mut head = None;
    let (tx, device, plan) = loop {
        let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
        turn.working();
        if !waited
            && !gave_way
            && let Some((looked, device)) = look_ahead(&tx, &token, &request, &prepared).await?
        {
            let entries = &request.entries;
            match head_start(
                &tx,
                &turn,
                &device,
                entries,
                &mut prepared,
                looked,
                Utc::now(),
            )
            .await
            {
                Ok(Ok(started)) => head = Some(started),
                Ok(Err(looked)) => ahead = Some(looked),
                Err(error) => {
                    // The transaction is spoilt: start again, without looking ahead.
                    tracing::debug!(%error, "a push's head start gave way");
                    turn.starting_ahead(None);
                    gave_way = true;
                    continue;
                }
            }
        }
        // The lock on the device's marks makes two pushes of one device take turns, so both
        // see the same high-water. The device's push before this one goes first.
        if let Some(first) = request.entries.first() {
            turn.wait_behind(first.seq).await;
        }
        let device = auth::authenticate(&tx, &token, RowLock::ForUpdate).await?;
        turn.locked();
        // In the subscription's grace or suspension nothing new is taken; the desk keeps it.
        subscription::require(device.access, SyncNeed::Push)?;
        if !ACCEPTED_SCHEMA_VERSIONS.contains(&request.schema_version) {
            return Err(Error::UnsupportedSchemaVersion(request.schema_version));
        }
        match plan(&request.entries, device.high_water) {
            // Ahead of the batch before it, which this server may be applying right now: let go
            // of the locks (dropping the transaction rolls it back), wait for it, look again
            // (once).
            Err(Error::SequenceGap { expected }) if !waited => {
                drop(tx);
                // Its head start went with the transaction.
                head = None;
                turn.starting_ahead(None);
                // The connection goes back to the pool meanwhile: the push waited for may not
                // have one yet.
                drop(client);
                if !turn.wait_for(expected).await {
                    return Err(Error::SequenceGap { expected });
                }
                waited = true;
                client = state.pool().get().await?;
            }
            plan => break (tx, device, plan?),
        }
    };

    // A head start is for a batch that is new from its first entry.
    if plan != Plan::ApplyFrom(0)
        && let Some(head_start) = head.take()
    {
        rows::unstore_new(&tx, token.tenant_id.as_uuid(), &head_start.merged.rows).await?;
        // It numbers nothing: the device's next push must not follow its guess.
        turn.starting_ahead(None);
    }
    let (acked_seq, mut rejected, purge_due, record) = match plan {
        Plan::NothingNew => (device.high_water, Vec::new(), false, None),
        Plan::ApplyFrom(first_new) => {
            let new_entries = request
                .entries
                .get(first_new..)
                .ok_or_else(|| Error::Internal("push plan index out of range".to_owned()))?;
            let prepared = prepared.split_off(first_new);
            // The look-ahead covered the whole batch; a batch partly replayed is rare.
            let ahead = ahead.filter(|_| first_new == 0);
            let outcome = apply(
                &tx,
                &turn,
                &device,
                new_entries,
                prepared,
                Ahead {
                    looked: ahead,
                    last: turn.last_applied(),
                },
                head.take(),
                Utc::now(),
            )
            .await?;
            (
                outcome.high_water,
                outcome.rejected,
                outcome.purge_due,
                Some(outcome.record),
            )
        }
    };
    // A replay gets the same answer: refusals of the replayed part come from where they were
    // recorded the first time.
    let replayed_up_to = request
        .entries
        .iter()
        .map(|entry| entry.seq)
        .filter(|seq| *seq <= device.high_water)
        .max();
    if let (Some(first), Some(last)) = (request.entries.first(), replayed_up_to) {
        let mut earlier = recorded_rejections(&tx, &device, first.seq, last).await?;
        earlier.append(&mut rejected);
        rejected = earlier;
    }
    // What this push wrote is known to the device's next push before that push can take the
    // locks (it waits for this commit). Unless the commit is seen to succeed (it fails, or
    // the request is dropped meanwhile), the record is forgotten again.
    let recorded = record.map(|record| turn.record_applied(record));
    tx.commit().await?;
    if let Some(recorded) = recorded {
        recorded.keep();
    }
    // This push claimed the business's daily purge: run it now, outside the request.
    if let (true, Some(horizon)) = (purge_due, state.tombstone_horizon()) {
        let pool = state.pool().clone();
        let tenant = device.tenant_id;
        tokio::spawn(async move {
            if let Err(error) = crate::purge::purge_older_than(&pool, tenant, horizon).await {
                tracing::warn!(%tenant, %error, "scheduled tombstone purge failed; next try in a day");
            }
        });
    }
    Ok(Json(PushResponse {
        acked_seq,
        rejected,
    }))
}

/// What to do with a batch, given the device's high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Every entry is at or below the high-water mark (or there are none): a replay.
    NothingNew,
    /// Entries from this index on are new; the first of them is high-water + 1.
    ApplyFrom(usize),
}

fn plan(entries: &[OutboxEntry], high_water: i64) -> Result<Plan> {
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Ok(Plan::NothingNew);
    };
    if first.seq < 1 {
        return Err(Error::BadRequest("seq numbers start at 1".to_owned()));
    }
    let consecutive = entries
        .windows(2)
        .all(|pair| pair[0].seq.checked_add(1) == Some(pair[1].seq));
    if !consecutive {
        return Err(Error::BadRequest(
            "the entries of a batch must have consecutive seq numbers".to_owned(),
        ));
    }
    if last.seq <= high_water {
        return Ok(Plan::NothingNew);
    }
    let expected = high_water
        .checked_add(1)
        .ok_or_else(|| Error::BadRequest("seq numbers are exhausted".to_owned()))?;
    if first.seq > expected {
        return Err(Error::SequenceGap { expected });
    }
    // first.seq <= expected <= last.seq, and entries are consecutive, so this index exists.
    usize::try_from(expected - first.seq)
        .map(Plan::ApplyFrom)
        .map_err(|_| Error::Internal("push plan index out of range".to_owned()))
}

/// The row an entry changes.
fn row_key(entry: &OutboxEntry) -> RowKey {
    (entry.change.entity, entry.change.row_id)
}

/// Each entry's new row ([`Prepared`]), for the entries whose row the batch changes once:
/// worked out before the push's locks, used under them where the row turns out to be new.
fn prepare(entries: &[OutboxEntry]) -> Vec<Option<Prepared>> {
    let mut changes_of: HashMap<RowKey, u32> = HashMap::with_capacity(entries.len());
    for entry in entries {
        *changes_of.entry(row_key(entry)).or_default() += 1;
    }
    entries
        .iter()
        .map(|entry| {
            let once = changes_of.get(&row_key(entry)) == Some(&1);
            once.then(|| Prepared::new_row(&entry.change, entry.seq))
                .flatten()
        })
        .collect()
}

/// The document numbers of the new patients among `entries` (those [`prepare`] made a row
/// for), sorted: looked up before the rows are written (the batch's other patients are looked
/// up after the merge, when their documents are known). A prepared patient's number is its
/// change's, exactly: check_merged refuses other spellings.
fn early_numbers<'a>(entries: &'a [OutboxEntry], prepared: &[Option<Prepared>]) -> Vec<&'a str> {
    let mut numbers: Vec<&str> = entries
        .iter()
        .zip(prepared)
        .filter(|(entry, new_row)| new_row.is_some() && entry.change.entity == Entity::Patient)
        .filter_map(|(entry, _)| entry.change.fields.get("id_number").and_then(Value::as_str))
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    numbers
}

/// The batch's rows and the other registrations of its new patients' documents, looked up
/// before the push's locks: a desk keeps two pushes in flight, and these lookups were a
/// quarter of the time the locks are held. They hold under the locks when nothing written
/// since can have changed them ([`LookedAhead::still_holds`]).
struct LookedAhead {
    /// The business's change counter and purge horizon as the lookups began (no row changes
    /// without the counter moving, and only a purge removes rows).
    change_seq: i64,
    purged_seq: i64,
    /// Every row the batch names.
    keys: Vec<RowKey>,
    /// The documents looked up ([`early_numbers`] of the whole batch).
    numbers: Vec<String>,
    rows: HashMap<RowKey, StoredRow>,
    duplicates: Vec<conflicts::Registered>,
}

impl LookedAhead {
    /// Whether the lookups still hold for a push about to number its changes after `before`,
    /// with the business's purge horizon at `purged_seq` and the device's high-water mark at
    /// `high_water`; `last` is what the device's last push on this server wrote.
    ///
    /// They hold when nothing was numbered since (and nothing purged), or when exactly the
    /// changes of `last` were, that push committed (the device's mark is its), and it touched
    /// no row looked up, no patient found, and no document looked up.
    fn still_holds(
        &self,
        before: i64,
        purged_seq: i64,
        high_water: i64,
        last: Option<&turns::Applied>,
    ) -> bool {
        if purged_seq != self.purged_seq {
            return false;
        }
        if before == self.change_seq {
            return true;
        }
        let Some(last) = last else {
            return false;
        };
        last.tenant_seqs == (self.change_seq + 1, before)
            && last.high_water == high_water
            && !self.keys.iter().any(|key| last.keys.contains(key))
            && !self
                .duplicates
                .iter()
                .any(|(record, _)| last.keys.contains(&(Entity::Patient, record.id)))
            && !self
                .numbers
                .iter()
                .any(|number| last.numbers.contains(number))
    }
}

/// What [`apply`] may use instead of looking the rows up under the locks.
struct Ahead {
    looked: Option<LookedAhead>,
    /// What the device's last push on this server wrote.
    last: Option<Arc<turns::Applied>>,
}

/// The lookups of [`LookedAhead`], made in `tx` before any lock, once the token is known good
/// (none for a push that will be refused, has no entries or replays some).
async fn look_ahead(
    tx: &TenantTx<'_>,
    token: &DeviceToken,
    request: &PushRequest,
    prepared: &[Option<Prepared>],
) -> Result<Option<(LookedAhead, Device)>> {
    let device = auth::authenticate(tx, token, RowLock::None).await?;
    // The mark only grows: a batch that starts at or below it is a replay, in part or whole,
    // and its lookups would not be used.
    let Some(first) = request.entries.first() else {
        return Ok(None);
    };
    if first.seq <= device.high_water
        || subscription::require(device.access, SyncNeed::Push).is_err()
        || !ACCEPTED_SCHEMA_VERSIONS.contains(&request.schema_version)
    {
        return Ok(None);
    }
    let keys: Vec<RowKey> = request.entries.iter().map(row_key).collect();
    let numbers = early_numbers(&request.entries, prepared);
    // The counter is read first, and answered before the lookups are sent, so whatever they
    // see was numbered at or after it. (Sent together, a lookup whose statement this
    // connection had prepared could go out while the counter's was still being prepared.)
    let counter = tx
        .query_one_cached(
            "SELECT change_seq, purged_seq FROM tenants WHERE tenant_id = $1",
            &[&device.tenant_id],
        )
        .await?;
    let (rows, duplicates) = tokio::try_join!(
        rows::load(tx, device.tenant_id.as_uuid(), &keys, RowLock::None),
        conflicts::duplicate_candidates(tx, &device, &numbers),
    )?;
    let looked = LookedAhead {
        change_seq: counter.try_get(0)?,
        purged_seq: counter.try_get(1)?,
        keys,
        numbers: numbers.into_iter().map(str::to_owned).collect(),
        rows,
        duplicates,
    };
    Ok(Some((looked, device)))
}

/// What a push did before its locks, on the guess that its changes will be numbered from
/// `first_tenant_seq` (after the device's push before it, or the counter as committed): its
/// batch merged into the rows looked up ahead, and its new rows inserted. A desk keeps two
/// pushes in flight, and inserting a batch's new rows was most of the time the locks were
/// held; now a push inserts its rows while the one before holds them. Under the locks the
/// head start is kept only if the guess and everything it read still hold
/// ([`HeadStart::holds`]); else the push deletes the rows it inserted and merges again, as if
/// it had not happened. Nothing is visible to others before the commit either way.
///
/// Only a batch whose rows no other push of the device here names gets one: its new rows are
/// then ones nobody else can be writing (a row's id is made by the desk that makes the row,
/// and reaches others only once committed), so inserting them waits for no one. (The same
/// batch sent to two server processes at once, or a desk that made another desk's ids, would
/// at worst meet the other push in a deadlock, which PostgreSQL breaks by failing one of the
/// two: answered 503, sent again.) New rows of the ledger and of clinical records are written
/// under the locks all the same: the app's role cannot delete them ([`rows::written_ahead`]).
struct HeadStart {
    looked: LookedAhead,
    first_tenant_seq: i64,
    people: HashMap<Uuid, May>,
    guarded: bool,
    merged: Merged,
    /// The live patients it leaves ([`Merged::touched_patients`]).
    touched: Vec<conflicts::Registered>,
}

impl HeadStart {
    /// Whether the head start holds for a push whose changes are numbered from
    /// `first_tenant_seq`, given what was found under the locks (see [`LookedAhead::still_holds`]).
    fn holds(
        &self,
        first_tenant_seq: i64,
        purged_seq: i64,
        high_water: i64,
        last: Option<&turns::Applied>,
        people: &HashMap<Uuid, May>,
        guarded: bool,
    ) -> bool {
        first_tenant_seq == self.first_tenant_seq
            && *people == self.people
            && guarded == self.guarded
            && self
                .looked
                .still_holds(first_tenant_seq - 1, purged_seq, high_water, last)
    }
}

/// The head start of a push (see [`HeadStart`]), if it can have one: made in `tx` after the
/// look-ahead, before any lock; `device` as authenticated without a lock. When the push gets
/// none, gives back the look-ahead. It takes `prepared` (leaving `None`s: if it does not hold,
/// the merge under the locks makes the new rows itself).
async fn head_start(
    tx: &TenantTx<'_>,
    turn: &turns::Turn,
    device: &Device,
    entries: &[OutboxEntry],
    prepared: &mut Vec<Option<Prepared>>,
    mut looked: LookedAhead,
    now: DateTime<Utc>,
) -> Result<Result<HeadStart, LookedAhead>> {
    let Some(first) = entries.first() else {
        return Ok(Err(looked));
    };
    let first_tenant_seq = match turn.numbers_follow(first.seq) {
        Some(turns::Follows::Push(last)) => last + 1,
        Some(turns::Follows::Committed) if device.high_water == first.seq - 1 => {
            looked.change_seq + 1
        }
        // The push before committed after the mark was read.
        Some(turns::Follows::Committed) => match turn.last_applied() {
            Some(last) if last.high_water == first.seq - 1 => last.tenant_seqs.1 + 1,
            _ => return Ok(Err(looked)),
        },
        _ => return Ok(Err(looked)),
    };
    let count =
        i64::try_from(entries.len()).map_err(|_| Error::Internal("batch too large".to_owned()))?;
    turn.starting_ahead(Some((first_tenant_seq, first_tenant_seq + count - 1)));
    let signed = Signed::of(entries);
    let ((people, guarded), purged) = tokio::try_join!(signed.look_up(tx, device), async {
        if looked.purged_seq > 0 {
            let tenant = device.tenant_id.as_uuid();
            rows::purged_among(tx, tenant, &looked.keys, &looked.rows).await
        } else {
            Ok(HashSet::new())
        }
    },)?;
    let early_numbers = early_numbers(entries, prepared);
    // Taken: what is left in their place makes the new rows under the locks, if need be.
    let taken = std::mem::replace(
        prepared,
        std::iter::repeat_with(|| None)
            .take(entries.len())
            .collect(),
    );
    let merged = merge_batch(
        entries,
        taken,
        device,
        (&people, guarded),
        std::mem::take(&mut looked.rows),
        &purged,
        first_tenant_seq,
        now,
    );
    let touched = merged.touched_patients()?;
    // The documents the batch's other patients have after the merge are looked up too (before
    // the rows are written, which they would find), and held to the same check under the
    // locks as those looked up ahead.
    let late: Vec<String> = late_numbers(&touched, &early_numbers)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let late_refs: Vec<&str> = late.iter().map(String::as_str).collect();
    // An error here (say a row that turned out to exist: written by another push since the
    // look-ahead) ends the transaction; the caller starts again without a head start.
    let (late_duplicates, ()) = tokio::try_join!(
        biased;
        conflicts::duplicate_candidates(tx, device, &late_refs),
        rows::store(
            tx,
            device.tenant_id.as_uuid(),
            device.device_id.as_uuid(),
            &merged.rows,
            rows::Part::New,
        ),
    )?;
    looked.duplicates.extend(late_duplicates);
    looked.numbers.extend(late);
    Ok(Ok(HeadStart {
        looked,
        first_tenant_seq,
        people,
        guarded,
        merged,
        touched,
    }))
}

/// Who the entries of a batch name, and whether any makes a change only someone signed in
/// may make without naming anyone.
struct Signed {
    named: Vec<Uuid>,
    unsigned_catalogue: bool,
}

impl Signed {
    fn of(entries: &[OutboxEntry]) -> Signed {
        // The people the entries name must be this business's, with a desk PIN (the desk
        // signed them in offline, with the roster it had; their status now does not undo what
        // they did then).
        let mut named: Vec<Uuid> = entries
            .iter()
            .flat_map(|entry| [entry.actor, entry.approver])
            .flatten()
            .collect();
        named.sort_unstable();
        named.dedup();
        // Once anyone of the business has a desk PIN its desks write only with someone signed
        // in, so a change to the catalogue (every branch's) or a refund that names nobody is
        // not one of theirs.
        let unsigned_catalogue = entries
            .iter()
            .any(|entry| needs_permission(entry) && entry.actor.is_none());
        Signed {
            named,
            unsigned_catalogue,
        }
    }

    /// The people named ([`people_named`]), and whether the business's desks sign in (asked
    /// only when a change needs it), in that order on `tx`.
    async fn look_up(
        &self,
        tx: &TenantTx<'_>,
        device: &Device,
    ) -> Result<(HashMap<Uuid, May>, bool)> {
        tokio::try_join!(biased; people_named(tx, device, &self.named), async {
            if self.unsigned_catalogue {
                desks_sign_in(tx, device).await
            } else {
                Ok(false)
            }
        })
    }
}

/// A batch merged into its rows: what [`apply`] writes.
struct Merged {
    /// Every row the batch names, the changed ones dirty.
    rows: HashMap<RowKey, StoredRow>,
    /// The change log of the applied entries.
    log: ChangeLog,
    /// The refused entries, by their index in the batch.
    refused: Vec<(usize, RejectedEntry)>,
}

impl Merged {
    /// The live patients the batch leaves, with when each was made.
    fn touched_patients(&self) -> Result<Vec<conflicts::Registered>> {
        self.live(Entity::Patient)
            .filter_map(|((_, id), row)| {
                row.patient(*id)
                    .transpose()
                    .map(|record| record.map(|record| (record, row.created_at)))
            })
            .collect()
    }

    /// The rows of `entity` the batch changed and left live.
    fn live(&self, entity: Entity) -> impl Iterator<Item = (&RowKey, &StoredRow)> {
        self.rows
            .iter()
            .filter(move |((e, _), row)| *e == entity && row.dirty && !is_deleted(&row.record))
    }
}

/// The documents of the `touched` patients that were not looked up before the merge (not
/// among `early_numbers`), sorted.
fn late_numbers<'a>(touched: &'a [conflicts::Registered], early_numbers: &[&str]) -> Vec<&'a str> {
    let mut late: Vec<&str> = touched
        .iter()
        .map(|(record, _)| record.id_number.as_str())
        .filter(|number| early_numbers.binary_search(number).is_err())
        .collect();
    late.sort_unstable();
    late.dedup();
    late
}

/// Which device write became which change seq of which row (the rows carry the values).
#[derive(Default)]
struct ChangeLog {
    seqs: Vec<i64>,
    device_seqs: Vec<i64>,
    kinds: Vec<&'static str>,
    row_ids: Vec<Uuid>,
    actors: Vec<Option<Uuid>>,
    approvers: Vec<Option<Uuid>>,
}

/// Merges `entries` into `rows` (those of them stored), the first numbered `first_tenant_seq`:
/// each entry checked, then merged, or refused. Pure: what it refuses is recorded by [`apply`].
#[allow(clippy::too_many_arguments)]
fn merge_batch(
    entries: &[OutboxEntry],
    prepared: Vec<Option<Prepared>>,
    device: &Device,
    (people, guarded): (&HashMap<Uuid, May>, bool),
    mut rows: HashMap<RowKey, StoredRow>,
    purged: &HashSet<RowKey>,
    first_tenant_seq: i64,
    now: DateTime<Utc>,
) -> Merged {
    let mut log = ChangeLog::default();
    let mut refused = Vec::new();
    for (index, ((entry, tenant_seq), new_row)) in entries
        .iter()
        .zip(first_tenant_seq..)
        .zip(prepared)
        .enumerate()
    {
        let merged = check_entry(entry, device, now)
            .and_then(|()| check_actor(entry, people, guarded))
            .and_then(|()| {
                merge_entry(
                    &mut rows,
                    purged,
                    entry,
                    new_row,
                    tenant_seq,
                    device.branch_id.as_uuid(),
                )
            });
        if let Err(refusal) = merged {
            refused.push((index, refusal));
            continue;
        }
        log.seqs.push(tenant_seq);
        log.device_seqs.push(entry.seq);
        log.kinds.push(entry.change.entity.as_str());
        log.row_ids.push(entry.change.row_id);
        log.actors.push(entry.actor);
        log.approvers.push(entry.approver);
    }
    Merged { rows, log, refused }
}

/// Merges `entries` (the first being high-water + 1) into their rows, logs the applied ones as
/// numbered changes, records the refused ones, and moves the high-water mark past them all.
/// `prepared` holds each entry's new row where [`prepare`] made one (none after a head start,
/// which took them). Also says whether this push claimed the business's daily tombstone purge.
#[allow(clippy::too_many_arguments)]
async fn apply(
    tx: &TenantTx<'_>,
    turn: &turns::Turn,
    device: &Device,
    entries: &[OutboxEntry],
    prepared: Vec<Option<Prepared>>,
    ahead: Ahead,
    head_start: Option<HeadStart>,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let count =
        i64::try_from(entries.len()).map_err(|_| Error::Internal("batch too large".to_owned()))?;
    let tenant = device.tenant_id.as_uuid();
    let keys: Vec<RowKey> = entries.iter().map(row_key).collect();
    let signed = Signed::of(entries);
    let early_numbers = early_numbers(entries, &prepared);
    // The statements go to the database together (one connection runs them in order without
    // waiting for each answer); numbering the changes comes first, so the tenant row is locked
    // before any row another push may lock, as in every push (a head start's rows are new ones
    // nobody else can know yet).
    // (`biased`: polled in this order every time, not only the first, so that the tenant row
    // is locked first even when a statement must be prepared before it is sent.)
    let lookups = || async {
        tokio::try_join!(
            biased;
            rows::load(tx, tenant, &keys, RowLock::ForUpdate),
            conflicts::duplicate_candidates(tx, device, &early_numbers),
        )
    };
    let looked_ahead = ahead.looked.is_some() || head_start.is_some();
    let (numbered, (people, guarded), looked_up) = tokio::try_join!(
        biased;
        number_changes(tx, device, count),
        signed.look_up(tx, device),
        async {
            if looked_ahead {
                Ok(None)
            } else {
                lookups().await.map(Some)
            }
        },
    )?;
    let Numbered {
        last: last_tenant_seq,
        purged_seq,
        purge_due,
    } = numbered;
    let first_tenant_seq = last_tenant_seq - count + 1;
    turn.numbering((first_tenant_seq, last_tenant_seq));
    let last = ahead.last.as_deref();

    let (merged, touched_patients, stored_duplicates, part) = match head_start {
        Some(head_start)
            if head_start.holds(
                first_tenant_seq,
                purged_seq,
                device.high_water,
                last,
                &people,
                guarded,
            ) =>
        {
            (
                head_start.merged,
                head_start.touched,
                head_start.looked.duplicates,
                rows::Part::AllButNew,
            )
        }
        head_start => {
            // The rows it wrote go again (a savepoint before them would be no help: going back
            // to it would undo the locks and the numbering too).
            if let Some(head_start) = head_start {
                rows::unstore_new(tx, tenant, &head_start.merged.rows).await?;
            }
            // What was looked up before the locks holds if only the device's own last push
            // (known here) came in between and touched none of it; else it is looked up again.
            let (rows, early_duplicates) = match (looked_up, ahead.looked) {
                (Some(looked_up), _) => looked_up,
                (None, Some(looked))
                    if looked.still_holds(
                        first_tenant_seq - 1,
                        purged_seq,
                        device.high_water,
                        last,
                    ) =>
                {
                    (looked.rows, looked.duplicates)
                }
                (None, _) => lookups().await?,
            };
            let purged = if purged_seq > 0 {
                rows::purged_among(tx, tenant, &keys, &rows).await?
            } else {
                HashSet::new()
            };
            let merged = merge_batch(
                entries,
                prepared,
                device,
                (&people, guarded),
                rows,
                &purged,
                first_tenant_seq,
                now,
            );
            // The domain rules across desks, over the rows this batch changed. Other
            // registrations of the same documents are looked up before the rows are written
            // (see duplicate_candidates).
            let touched = merged.touched_patients()?;
            let late = late_numbers(&touched, &early_numbers);
            let mut stored_duplicates = early_duplicates;
            stored_duplicates.extend(conflicts::duplicate_candidates(tx, device, &late).await?);
            (merged, touched, stored_duplicates, rows::Part::All)
        }
    };
    // The rows this batch changed are in touched_patients as they will be; their stored state
    // is stale.
    let mut stored_duplicates = stored_duplicates;
    stored_duplicates.retain(|(record, _)| {
        !merged
            .rows
            .get(&(Entity::Patient, record.id))
            .is_some_and(|row| row.dirty)
    });

    // The writes go together too: the refusals, the change log, the rows (and their branch
    // digests), the high-water mark.
    let high_water = entries.last().map_or(device.high_water, |entry| entry.seq);
    let log = &merged.log;
    tokio::try_join!(
        biased;
        async {
            for (index, refusal) in &merged.refused {
                record_rejection(tx, device, &entries[*index], refusal).await?;
            }
            Ok::<_, Error>(())
        },
        async {
            if let (Some(&first_seq), Some(&last_seq)) = (log.seqs.first(), log.seqs.last()) {
                // One row for the batch's applied entries (the view `changes` reads it change
                // by change).
                tx.execute_cached(
                    "INSERT INTO change_batches (tenant_id, first_seq, last_seq, device_id, seqs,
                         device_seqs, entities, row_ids, actor_ids, approver_ids)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        &device.tenant_id,
                        &first_seq,
                        &last_seq,
                        &device.device_id,
                        &log.seqs,
                        &log.device_seqs,
                        &log.kinds,
                        &log.row_ids,
                        &log.actors,
                        &log.approvers,
                    ],
                )
                .await?;
            }
            Ok::<_, Error>(())
        },
        rows::store(tx, tenant, device.device_id.as_uuid(), &merged.rows, part),
        async {
            tx.execute_cached(
                "UPDATE device_marks SET high_water = $3, pushed_at = now()
                 WHERE tenant_id = $1 AND device_id = $2",
                &[&device.tenant_id, &device.device_id, &high_water],
            )
            .await?;
            Ok(())
        },
    )?;
    conflicts::record_duplicates(tx, device, &touched_patients, stored_duplicates).await?;
    let touched_appointments: Vec<Uuid> = merged
        .live(Entity::Appointment)
        .map(|((_, id), _)| *id)
        .collect();
    conflicts::detect_overlaps(tx, device, &touched_appointments).await?;
    Ok(Outcome {
        high_water,
        rejected: merged
            .refused
            .into_iter()
            .map(|(_, refusal)| refusal)
            .collect(),
        purge_due,
        record: turns::Applied {
            tenant_seqs: (first_tenant_seq, last_tenant_seq),
            high_water,
            keys: keys.into_iter().collect(),
            numbers: touched_patients
                .into_iter()
                .map(|(record, _)| record.id_number)
                .collect(),
        },
    })
}

/// What [`apply`] did.
struct Outcome {
    /// The device's new high-water mark.
    high_water: i64,
    rejected: Vec<RejectedEntry>,
    /// This push claimed the business's daily tombstone purge.
    purge_due: bool,
    /// What it wrote, for the device's next push.
    record: turns::Applied,
}

/// The tenant counter's numbers for a batch.
struct Numbered {
    /// The batch's last change seq.
    last: i64,
    /// How far the business has purged tombstones (above 0: a missing row may have been
    /// purged).
    purged_seq: i64,
    /// This push claimed the business's daily tombstone purge.
    purge_due: bool,
}

/// Numbers `count` changes from the tenant's counter. The UPDATE holds this tenant row's lock
/// until commit, so pushes of one tenant commit one after another in the order of their
/// numbers. Pull relies on that: once a reader sees change N committed, no change below N can
/// commit later, so "seq > cursor" never skips one. A refused entry leaves its number unused.
/// The same statement claims the daily purge when it is due: under the row's lock, so one push
/// of the business claims it.
async fn number_changes(tx: &TenantTx<'_>, device: &Device, count: i64) -> Result<Numbered> {
    let numbered = tx
        .query_one_cached(
            "WITH before AS (
                 SELECT next_purge_at <= now() AS due FROM tenants WHERE tenant_id = $1
                 FOR UPDATE
             )
             UPDATE tenants SET change_seq = change_seq + $2,
                 next_purge_at = CASE WHEN (SELECT due FROM before)
                                      THEN now() + interval '1 day' ELSE next_purge_at END
             WHERE tenant_id = $1
             RETURNING change_seq, purged_seq, (SELECT due FROM before)",
            &[&device.tenant_id, &count],
        )
        .await?;
    Ok(Numbered {
        last: numbered.try_get(0)?,
        purged_seq: numbered.try_get(1)?,
        purge_due: numbered.try_get(2)?,
    })
}

/// The people `named`, each with what they may do of what only some may write, as of now (a
/// catalogue edit reaches every branch; a refund is money out of the drawer; a clinical record
/// is read by clinical roles only). Only people with a desk PIN are found.
async fn people_named(
    tx: &TenantTx<'_>,
    device: &Device,
    named: &[Uuid],
) -> Result<HashMap<Uuid, May>> {
    if named.is_empty() {
        return Ok(HashMap::new());
    }
    let found = tx
        .query_cached(
            "SELECT u.user_id, u.status = 'ACTIVE',
                    coalesce(array(
                        SELECT DISTINCT p.permission FROM user_roles ur
                        JOIN role_permissions p
                             ON p.tenant_id = ur.tenant_id AND p.role_id = ur.role_id
                        WHERE ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id), '{}')
             FROM users u
             WHERE u.tenant_id = $1 AND u.user_id = ANY($2) AND u.pin_hash IS NOT NULL",
            &[&device.tenant_id, &named],
        )
        .await?;
    Ok(found
        .iter()
        .map(|row| {
            let active: bool = row.try_get(1)?;
            let held: Vec<String> = row.try_get(2)?;
            let has = |permission: Permission| {
                active && held.iter().any(|name| name == permission.as_str())
            };
            Ok((
                row.try_get(0)?,
                May {
                    catalogue: has(Permission::CatalogueManage),
                    refund: has(Permission::SalesRefund),
                    clinical_write: has(Permission::ClinicalWrite),
                    break_glass: has(Permission::BreakGlass),
                },
            ))
        })
        .collect::<Result<_, tokio_postgres::Error>>()?)
}

/// Whether anyone of the business has a desk PIN (its desks then write only with someone
/// signed in).
async fn desks_sign_in(tx: &TenantTx<'_>, device: &Device) -> Result<bool> {
    Ok(tx
        .query_one_cached(
            "SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND pin_hash IS NOT NULL)",
            &[&device.tenant_id],
        )
        .await?
        .try_get::<_, bool>(0)?)
}

fn refusal(
    entry: &OutboxEntry,
    code: &str,
    message: &str,
    fields: Vec<FieldError>,
) -> RejectedEntry {
    RejectedEntry {
        seq: entry.seq,
        code: code.to_owned(),
        message: message.to_owned(),
        fields,
    }
}

/// What the server checks of an entry before merging it: the identity and branch in it are the
/// token's, the fields are known ones, and its clock is not far ahead of the server's.
fn check_entry(
    entry: &OutboxEntry,
    device: &Device,
    now: DateTime<Utc>,
) -> Result<(), RejectedEntry> {
    let change = &entry.change;
    if !ACCEPTED_SCHEMA_VERSIONS.contains(&entry.schema_version) {
        return Err(refusal(
            entry,
            error_code::UNSUPPORTED_SCHEMA_VERSION,
            "This change was written by a Kaunter version this server no longer accepts.",
            Vec::new(),
        ));
    }
    if change.stamp.device_id != device.device_id.as_uuid() {
        return Err(refusal(
            entry,
            error_code::WRONG_DEVICE,
            "The change names another device than the one pushing it.",
            Vec::new(),
        ));
    }
    // A tenant-wide row keeps the branch it was made at; merge_entry checks that.
    if !change.entity.is_tenant_wide() && BranchId::from_uuid(change.branch_id) != device.branch_id
    {
        return Err(refusal(
            entry,
            error_code::VALIDATION_FAILED,
            "A device may only write records of its own branch.",
            vec![field_error(
                entry,
                "branch_id",
                "branch_not_allowed",
                "A device may only write records of its own branch.",
            )],
        ));
    }
    let now_millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
    if let Err(error) = check_drift(
        kaunter_core::Hlc::from_u64(change.stamp.hlc),
        now_millis,
        MAX_DRIFT_MS,
    ) {
        return Err(refusal(
            entry,
            error_code::CLOCK_AHEAD,
            &error.to_string(),
            Vec::new(),
        ));
    }
    if entry.schema_version < change.entity.since_schema_version() {
        return Err(refusal(
            entry,
            error_code::UNSUPPORTED_SCHEMA_VERSION,
            "This kind of record did not exist in the Kaunter version that wrote this change.",
            Vec::new(),
        ));
    }
    let ledger = change.entity.is_ledger();
    let allowed =
        |name: &str| change.entity.fields().contains(&name) || (name == DELETED_FIELD && !ledger);
    let unknown: Vec<FieldError> = change
        .fields
        .keys()
        .filter(|name| !allowed(name))
        .map(|name| field_error(entry, name, "unknown_field", "This field does not exist."))
        .collect();
    if !unknown.is_empty() {
        return Err(refusal(
            entry,
            error_code::VALIDATION_FAILED,
            "The change sets unknown fields.",
            unknown,
        ));
    }
    if let Some(deleted) = change.fields.get(DELETED_FIELD)
        && !deleted.is_boolean()
    {
        return Err(refusal(
            entry,
            error_code::VALIDATION_FAILED,
            "deleted must be true or false.",
            vec![field_error(
                entry,
                DELETED_FIELD,
                "invalid",
                "deleted must be true or false.",
            )],
        ));
    }
    if let Some((one, other)) = kaunter_protocol::records::paired_fields(change.entity) {
        let present = [one, other].map(|name| change.fields.contains_key(name));
        if present[0] != present[1] {
            let message = format!("{one} and {other} change together.");
            return Err(refusal(
                entry,
                error_code::VALIDATION_FAILED,
                &message,
                vec![field_error(
                    entry,
                    if present[0] { other } else { one },
                    "required_with_pair",
                    &message,
                )],
            ));
        }
    }
    // PostgreSQL text cannot hold U+0000; refused here, or the change could not even be logged.
    if let Some(name) = change
        .fields
        .iter()
        .find(|(_, value)| holds_nul(value))
        .map(|(name, _)| name)
    {
        return Err(refusal(
            entry,
            error_code::VALIDATION_FAILED,
            "A value holds a NUL character.",
            vec![field_error(
                entry,
                name,
                "invalid",
                "A value holds a NUL character.",
            )],
        ));
    }
    if !RECORDED_YEARS.contains(&change.recorded_at.year()) {
        return Err(refusal(
            entry,
            error_code::VALIDATION_FAILED,
            "The desk's clock gave a time Kaunter does not accept.",
            vec![field_error(
                entry,
                "recorded_at",
                "invalid",
                "The desk's clock gave a time Kaunter does not accept.",
            )],
        ));
    }
    if change.fields.is_empty() {
        return Err(refusal(
            entry,
            error_code::VALIDATION_FAILED,
            "The change sets no field.",
            Vec::new(),
        ));
    }
    Ok(())
}

/// What a person named in a push may do, as of now.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct May {
    catalogue: bool,
    refund: bool,
    /// Writes notes and allergies into clinical records.
    clinical_write: bool,
    /// Opens a clinical record in an emergency.
    break_glass: bool,
}

fn is_refund(entry: &OutboxEntry) -> bool {
    entry.change.entity == Entity::CashMovement
        && entry.change.fields.get("kind") == Some(&Value::String("refund".to_owned()))
}

/// The kind of a clinical entry, if the entry is one.
fn clinical_kind(entry: &OutboxEntry) -> Option<ClinicalKind> {
    (entry.change.entity == Entity::ClinicalEntry)
        .then(|| entry.change.fields.get("kind").and_then(Value::as_str))
        .flatten()
        .and_then(ClinicalKind::parse)
}

/// Entries only some people may write: changes to the tenant-wide catalogue, refunds and
/// clinical entries.
fn needs_permission(entry: &OutboxEntry) -> bool {
    entry.change.entity.is_tenant_wide()
        || is_refund(entry)
        || entry.change.entity == Entity::ClinicalEntry
}

/// An entry that names a person (or an approver) must name one of the business's people. A
/// change to the tenant-wide catalogue needs one who may manage it (ACTIVE, with
/// `catalogue.manage`). A refund needs one who may refund (`sales.refund`), or, for someone who
/// may not (STAFF), another person who may and approved it at the desk with their own PIN.
/// Either may name nobody only at a business whose desks ask nobody to sign in (`guarded`
/// false).
fn check_actor(
    entry: &OutboxEntry,
    people: &HashMap<Uuid, May>,
    guarded: bool,
) -> Result<(), RejectedEntry> {
    let forbidden = |message: &str| Err(refusal(entry, error_code::FORBIDDEN, message, Vec::new()));
    let unknown = || {
        Err(refusal(
            entry,
            error_code::UNKNOWN_ACTOR,
            "The change names a person who is not one of this business's.",
            Vec::new(),
        ))
    };
    let Some(actor) = entry.actor else {
        if guarded && needs_permission(entry) {
            return forbidden("Only someone signed in whose role allows it can make this change.");
        }
        let authored = entry
            .change
            .fields
            .get("author_id")
            .is_some_and(|author| !author.is_null());
        if entry.change.entity == Entity::ClinicalEntry && authored {
            return forbidden("A clinical entry names as its author the person who wrote it.");
        }
        return Ok(());
    };
    let Some(may) = people.get(&actor) else {
        return unknown();
    };
    let approver = match entry.approver {
        Some(approver) => match people.get(&approver) {
            Some(approving) => Some((approver, *approving)),
            None => return unknown(),
        },
        None => None,
    };
    if entry.change.entity.is_tenant_wide() && !may.catalogue {
        return forbidden("Only someone who may manage the catalogue can change it.");
    }
    if entry.change.entity == Entity::ClinicalEntry {
        let author = entry.change.fields.get("author_id").and_then(Value::as_str);
        if author != Some(actor.to_string().as_str()) {
            return forbidden("A clinical entry names as its author the person who wrote it.");
        }
        match clinical_kind(entry) {
            Some(ClinicalKind::EmergencyAccess) if !may.break_glass => {
                return forbidden(
                    "Only someone whose role allows it can open a clinical record in an emergency.",
                );
            }
            Some(kind) if kind.is_clinical() && !may.clinical_write => {
                return forbidden("Only clinical roles can write in a clinical record.");
            }
            _ => {}
        }
    }
    if is_refund(entry) && !may.refund {
        match approver {
            Some((approver, approving)) if approver != actor && approving.refund => {}
            _ => {
                return forbidden(
                    "A refund by someone who may not refund alone needs a manager's approval.",
                );
            }
        }
    }
    Ok(())
}

/// Years a desk's `recorded_at` may fall in (it is stored in a timestamp column).
const RECORDED_YEARS: std::ops::RangeInclusive<i32> = 2000..=2200;

/// The change as a refusal keeps it: a change to a purged row loses its values (the row's
/// personal data is gone from the server for good; the record of the refusal stays).
fn recorded_change(entry: &OutboxEntry, refusal: &RejectedEntry) -> Change {
    let mut change = entry.change.clone();
    if refusal.code == error_code::ROW_PURGED {
        change.fields.clear();
    }
    change
}

/// `value` with every U+0000 replaced by U+FFFD, so a refused change can still be recorded.
fn without_nul(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(text.replace('\0', "\u{fffd}")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\0', "\u{fffd}"), without_nul(v)))
                .collect(),
        ),
        other => other,
    }
}

fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

fn field_error(entry: &OutboxEntry, field: &str, code: &str, message: &str) -> FieldError {
    FieldError {
        field: format!("seq[{}].{field}", entry.seq),
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

/// Merges one change into its row (made if new). Refused when the row was purged, belongs to
/// another branch, is a ledger entry that already exists, or would not be a valid row. A
/// tenant-wide row is made at the writer's own branch (`own_branch`) and keeps that branch.
/// `new_row` is what the change makes of its row if the row is new ([`prepare`]: given only
/// when the batch changes the row once).
fn merge_entry(
    rows: &mut HashMap<RowKey, StoredRow>,
    purged: &HashSet<RowKey>,
    entry: &OutboxEntry,
    new_row: Option<Prepared>,
    tenant_seq: i64,
    own_branch: Uuid,
) -> Result<(), RejectedEntry> {
    let change: &Change = &entry.change;
    let key = (change.entity, change.row_id);
    if purged.contains(&key) {
        return Err(refusal(
            entry,
            error_code::ROW_PURGED,
            "This record was deleted and has since been removed for good; the change cannot bring it back.",
            Vec::new(),
        ));
    }
    if change.entity.is_tenant_wide() && !rows.contains_key(&key) && change.branch_id != own_branch
    {
        return Err(refusal(
            entry,
            error_code::VALIDATION_FAILED,
            "A device may only write records of its own branch.",
            vec![field_error(
                entry,
                "branch_id",
                "branch_not_allowed",
                "A new catalogue item is made at the writer's own branch.",
            )],
        ));
    }
    // A new row changed once: the row is what the change alone makes, worked out already.
    if let (Some(new_row), false) = (new_row, rows.contains_key(&key)) {
        rows.insert(key, new_row.into_row(change, tenant_seq));
        return Ok(());
    }
    let row = rows
        .entry(key)
        .or_insert_with(|| StoredRow::new(change.branch_id, change.recorded_at, tenant_seq));
    if row.branch_id != change.branch_id {
        return Err(refusal(
            entry,
            error_code::ROW_IN_OTHER_BRANCH,
            "This record belongs to another branch.",
            Vec::new(),
        ));
    }
    if change.entity.is_ledger() && (row.existed || row.dirty) {
        return Err(refusal(
            entry,
            error_code::LEDGER_ENTRY_IMMUTABLE,
            "A ledger entry cannot be changed once written; record a correcting entry instead.",
            Vec::new(),
        ));
    }
    // The row as if this change won every field it sets: its values are checked whether or not
    // a later write already beat them here (other replicas may merge in another order). For a
    // new row that is the change's own fields.
    let probe_of_stored: Fields;
    let probe = if row.record.is_empty() {
        &change.fields
    } else {
        let mut fields: Fields = row
            .record
            .registers()
            .map(|(name, register)| (name.to_owned(), register.value.clone()))
            .collect();
        // The change's values replace the stored ones.
        fields.extend(
            change
                .fields
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        );
        probe_of_stored = fields;
        &probe_of_stored
    };
    let typed = rows::check_merged(
        change.entity,
        change.row_id,
        change.branch_id,
        probe,
        &change.fields,
        entry.seq,
    )
    .map_err(|(message, errors)| refusal(entry, error_code::VALIDATION_FAILED, &message, errors))?;
    let stamp = stamp_from_wire(change.stamp);
    let mut won_every_field = true;
    for (name, value) in &change.fields {
        won_every_field &= row.record.offer(name, value.clone(), stamp);
    }
    // Having won every field it set, the change made the row the probe: its typed record is
    // the row's.
    row.typed = won_every_field.then_some(typed);
    row.encoded = None;
    row.updated_at = row.updated_at.max(change.recorded_at);
    row.last_change_seq = tenant_seq;
    row.dirty = true;
    Ok(())
}

async fn record_rejection(
    tx: &TenantTx<'_>,
    device: &Device,
    entry: &OutboxEntry,
    refusal: &RejectedEntry,
) -> Result<()> {
    tx.execute(
        "INSERT INTO rejected_changes (tenant_id, device_id, device_seq, code, message, fields, change)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &device.tenant_id,
            &device.device_id,
            &entry.seq,
            &refusal.code,
            &refusal.message.replace('\0', "\u{fffd}"),
            &without_nul(to_json(&refusal.fields)?),
            &without_nul(to_json(&recorded_change(entry, refusal))?),
        ],
    )
    .await?;
    tracing::info!(device = %device.device_id, seq = entry.seq, code = %refusal.code, "change refused");
    Ok(())
}

/// The refusals recorded for this device's entries `first..=last`.
async fn recorded_rejections(
    tx: &TenantTx<'_>,
    device: &Device,
    first: i64,
    last: i64,
) -> Result<Vec<RejectedEntry>> {
    let rows = tx
        .query(
            "SELECT device_seq, code, message, fields FROM rejected_changes
             WHERE tenant_id = $1 AND device_id = $2 AND device_seq BETWEEN $3 AND $4
             ORDER BY device_seq",
            &[&device.tenant_id, &device.device_id, &first, &last],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(RejectedEntry {
                seq: row.try_get(0)?,
                code: row.try_get(1)?,
                message: row.try_get(2)?,
                fields: serde_json::from_value(row.try_get(3)?).map_err(|error| {
                    Error::Internal(format!("stored refusal fields do not decode: {error}"))
                })?,
            })
        })
        .collect()
}

fn to_json(value: &impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(value).map_err(|error| Error::Internal(format!("encoding JSON: {error}")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn entries(seqs: &[i64]) -> Vec<OutboxEntry> {
        let now = Utc::now();
        seqs.iter()
            .map(|&seq| OutboxEntry {
                actor: None,
                approver: None,
                seq,
                schema_version: kaunter_protocol::SCHEMA_VERSION,
                change: Change {
                    entity: Entity::Patient,
                    row_id: Uuid::now_v7(),
                    branch_id: Uuid::now_v7(),
                    stamp: kaunter_protocol::http::WireStamp {
                        hlc: 1,
                        device_id: Uuid::now_v7(),
                    },
                    fields: Default::default(),
                    recorded_at: now,
                },
            })
            .collect()
    }

    #[test]
    fn prepare_makes_the_new_row_of_each_row_changed_once() {
        use kaunter_protocol::http::PatientRecord;
        use kaunter_protocol::{IdType, Sex};
        let mut batch = entries(&[1, 2, 3, 4]);
        let valid = |entry: &mut OutboxEntry, name: &str| {
            entry.change.fields = PatientRecord {
                id: entry.change.row_id,
                branch_id: entry.change.branch_id,
                full_name: name.to_owned(),
                id_type: IdType::Mykad,
                id_number: "900101145678".to_owned(),
                phone: Some("+60123456789".to_owned()),
                date_of_birth: None,
                sex: Some(Sex::Female),
            }
            .fields();
        };
        valid(&mut batch[0], "Siti binti Ahmad");
        // 2 and 3 change one row: it is merged under the locks, change by change.
        valid(&mut batch[1], "Aminah binti Yusof");
        batch[2].change.row_id = batch[1].change.row_id;
        batch[2].change.branch_id = batch[1].change.branch_id;
        valid(&mut batch[2], "Aminah Yusof");
        // 4 would not be a valid row: the merge says why, under the locks.
        valid(&mut batch[3], "");
        let prepared = prepare(&batch);
        assert_eq!(
            prepared.iter().map(Option::is_some).collect::<Vec<_>>(),
            [true, false, false, false]
        );
        // The new row is what merging the change into a new row makes.
        let row = prepared
            .into_iter()
            .next()
            .flatten()
            .unwrap()
            .into_row(&batch[0].change, 17);
        let mut merged = StoredRow::new(batch[0].change.branch_id, batch[0].change.recorded_at, 17);
        let stamp = stamp_from_wire(batch[0].change.stamp);
        for (name, value) in &batch[0].change.fields {
            merged.record.offer(name, value.clone(), stamp);
        }
        assert_eq!(row.record, merged.record);
        assert_eq!(
            (
                row.branch_id,
                row.created_at,
                row.updated_at,
                row.last_change_seq
            ),
            (merged.branch_id, merged.created_at, merged.updated_at, 17)
        );
        assert!(row.dirty && !row.existed && row.loaded_digest == 0);
        let encoded = row.encoded.as_ref().unwrap();
        assert_eq!(
            encoded.digest,
            kaunter_protocol::merge::row_digest(batch[0].change.row_id, &merged.record)
        );
        assert_eq!(
            encoded.stamps,
            crate::stamps::encode_record(&merged.record).unwrap()
        );
        assert_eq!(
            row.patient(batch[0].change.row_id)
                .unwrap()
                .unwrap()
                .full_name,
            "Siti binti Ahmad"
        );
    }

    #[derive(Debug, PartialEq, Eq)]
    enum Want {
        Plan(Plan),
        Gap { expected: i64 },
    }

    #[test]
    fn what_was_looked_up_ahead_holds_only_if_nothing_it_saw_can_have_changed() {
        let row = Uuid::now_v7();
        let found = Uuid::now_v7();
        let found_patient = kaunter_protocol::http::PatientRecord {
            id: found,
            branch_id: Uuid::now_v7(),
            full_name: "Aminah Yusof".to_owned(),
            id_type: kaunter_protocol::IdType::Mykad,
            id_number: "880202105555".to_owned(),
            phone: None,
            date_of_birth: None,
            sex: None,
        };
        // Looked up at change 100, purge horizon 40: one row, one document, one patient found.
        let looked = LookedAhead {
            change_seq: 100,
            purged_seq: 40,
            keys: vec![(Entity::Patient, row)],
            numbers: vec!["880202105555".to_owned()],
            rows: HashMap::new(),
            duplicates: vec![(found_patient, Utc::now())],
        };
        // The device's last push: changes 101..=150, its mark 30.
        let last = |keys: &[RowKey], numbers: &[&str]| turns::Applied {
            tenant_seqs: (101, 150),
            high_water: 30,
            keys: keys.iter().copied().collect(),
            numbers: numbers.iter().map(|n| (*n).to_owned()).collect(),
        };
        let other = (Entity::Patient, Uuid::now_v7());
        let clear = last(&[other], &["900101145678"]);
        let cases = vec![
            ("nothing numbered since", 100, 40, 7, None, true),
            (
                "nothing numbered since, whatever came before",
                100,
                40,
                7,
                Some(clear.clone()),
                true,
            ),
            ("a purge since", 100, 41, 7, None, false),
            (
                "a purge since, with the last push clear",
                150,
                41,
                30,
                Some(clear.clone()),
                false,
            ),
            (
                "changes since, by nobody known here",
                150,
                40,
                30,
                None,
                false,
            ),
            (
                "exactly the last push's changes, clear of what was looked up",
                150,
                40,
                30,
                Some(clear.clone()),
                true,
            ),
            (
                "more than the last push's changes",
                151,
                40,
                30,
                Some(clear.clone()),
                false,
            ),
            (
                "fewer than the last push's changes",
                149,
                40,
                30,
                Some(clear.clone()),
                false,
            ),
            (
                "the last push did not commit (mark elsewhere)",
                150,
                40,
                29,
                Some(clear),
                false,
            ),
            (
                "the last push wrote a row looked up",
                150,
                40,
                30,
                Some(last(&[(Entity::Patient, row)], &[])),
                false,
            ),
            (
                "the last push wrote a patient found",
                150,
                40,
                30,
                Some(last(&[(Entity::Patient, found)], &[])),
                false,
            ),
            (
                "the last push registered a document looked up",
                150,
                40,
                30,
                Some(last(&[other], &["880202105555"])),
                false,
            ),
            (
                "the same id as another entity's row",
                150,
                40,
                30,
                Some(last(&[(Entity::Appointment, row)], &[])),
                true,
            ),
        ];
        for (case, before, purged_seq, high_water, last, holds) in cases {
            assert_eq!(
                looked.still_holds(before, purged_seq, high_water, last.as_ref()),
                holds,
                "{case}"
            );
        }
    }

    #[test]
    fn a_head_start_holds_only_if_its_numbers_and_what_it_read_still_hold() {
        let person = Uuid::now_v7();
        let may = May {
            catalogue: true,
            ..May::default()
        };
        // Looked up at change `looked_at`; guessed to be numbered from 151, after the device's
        // push before it (which expected 101..=150); one person named, who may edit the
        // catalogue.
        let head_start = |looked_at| HeadStart {
            looked: LookedAhead {
                change_seq: looked_at,
                purged_seq: 0,
                keys: vec![(Entity::Patient, Uuid::now_v7())],
                numbers: Vec::new(),
                rows: HashMap::new(),
                duplicates: Vec::new(),
            },
            first_tenant_seq: 151,
            people: HashMap::from([(person, may)]),
            guarded: false,
            merged: Merged {
                rows: HashMap::new(),
                log: ChangeLog::default(),
                refused: Vec::new(),
            },
            touched: Vec::new(),
        };
        let last = |tenant_seqs| turns::Applied {
            tenant_seqs,
            high_water: 30,
            keys: HashSet::new(),
            numbers: HashSet::new(),
        };
        let people = HashMap::from([(person, may)]);
        let no_longer = HashMap::from([(person, May::default())]);
        // (case, looked up at, numbered from, people, guarded, the last push, holds)
        let cases = [
            (
                "as guessed",
                100,
                151,
                &people,
                false,
                Some(last((101, 150))),
                true,
            ),
            // The push before was numbered later than it expected (another desk's push came
            // first), and this look-ahead came after that desk's push: the lookups hold, the
            // guess does not.
            (
                "numbered later than guessed",
                110,
                161,
                &people,
                false,
                Some(last((111, 160))),
                false,
            ),
            (
                "someone's permissions changed",
                100,
                151,
                &no_longer,
                false,
                Some(last((101, 150))),
                false,
            ),
            (
                "the business's desks now sign in",
                100,
                151,
                &people,
                true,
                Some(last((101, 150))),
                false,
            ),
            (
                "changes by nobody known here",
                100,
                151,
                &people,
                false,
                None,
                false,
            ),
        ];
        for (case, looked_at, first_tenant_seq, people, guarded, last, holds) in cases {
            assert_eq!(
                head_start(looked_at).holds(
                    first_tenant_seq,
                    0,
                    30,
                    last.as_ref(),
                    people,
                    guarded
                ),
                holds,
                "{case}"
            );
        }
    }

    #[test]
    fn plan_table() {
        let table: &[(&[i64], i64, Want)] = &[
            // (batch seqs, device high-water, outcome)
            (&[], 0, Want::Plan(Plan::NothingNew)),
            (&[1, 2, 3], 0, Want::Plan(Plan::ApplyFrom(0))),
            (&[1, 2, 3], 3, Want::Plan(Plan::NothingNew)),
            (&[1, 2, 3], 5, Want::Plan(Plan::NothingNew)),
            (&[1, 2, 3, 4], 2, Want::Plan(Plan::ApplyFrom(2))),
            (&[3, 4], 2, Want::Plan(Plan::ApplyFrom(0))),
            (&[4, 5], 2, Want::Gap { expected: 3 }),
            (&[2], 0, Want::Gap { expected: 1 }),
        ];
        for (seqs, high_water, want) in table {
            let got = match plan(&entries(seqs), *high_water) {
                Ok(plan) => Want::Plan(plan),
                Err(Error::SequenceGap { expected }) => Want::Gap { expected },
                Err(other) => panic!("{seqs:?} hw {high_water}: {other:?}"),
            };
            assert_eq!(&got, want, "{seqs:?} hw {high_water}");
        }
    }

    #[test]
    fn actors_table() {
        let (manager, clerk, stranger, doctor) = (
            Uuid::from_u128(1),
            Uuid::from_u128(2),
            Uuid::from_u128(3),
            Uuid::from_u128(4),
        );
        let people: HashMap<Uuid, May> = [
            (
                manager,
                May {
                    catalogue: true,
                    refund: true,
                    clinical_write: false,
                    break_glass: true,
                },
            ),
            (clerk, May::default()),
            (
                doctor,
                May {
                    clinical_write: true,
                    ..May::default()
                },
            ),
        ]
        .into();
        let entry = |entity: Entity, actor: Option<Uuid>| {
            let mut entry = entries(&[1]).remove(0);
            entry.change.entity = entity;
            entry.actor = actor;
            entry
        };
        let table = [
            (Entity::Patient, None, None),
            (Entity::Patient, Some(clerk), None),
            (
                Entity::Patient,
                Some(stranger),
                Some(error_code::UNKNOWN_ACTOR),
            ),
            (Entity::CatalogueItem, None, None),
            (Entity::CatalogueItem, Some(manager), None),
            (
                Entity::CatalogueItem,
                Some(clerk),
                Some(error_code::FORBIDDEN),
            ),
            (
                Entity::CatalogueItem,
                Some(stranger),
                Some(error_code::UNKNOWN_ACTOR),
            ),
        ];
        for (entity, actor, want) in table {
            let got = check_actor(&entry(entity, actor), &people, false)
                .err()
                .map(|r| r.code);
            assert_eq!(got.as_deref(), want, "{entity:?} by {actor:?}");
        }
        // A refund: by someone who may refund, or approved by another who may.
        let refund = |actor: Option<Uuid>, approver: Option<Uuid>| {
            let mut entry = entry(Entity::CashMovement, actor);
            entry
                .change
                .fields
                .insert("kind".to_owned(), serde_json::json!("refund"));
            entry.approver = approver;
            check_actor(&entry, &people, true).err().map(|r| r.code)
        };
        let refunds = [
            (Some(manager), None, None),
            (Some(clerk), None, Some(error_code::FORBIDDEN)),
            (Some(clerk), Some(manager), None),
            (Some(clerk), Some(clerk), Some(error_code::FORBIDDEN)),
            (Some(manager), Some(clerk), None),
            (Some(clerk), Some(stranger), Some(error_code::UNKNOWN_ACTOR)),
            (None, None, Some(error_code::FORBIDDEN)),
        ];
        for (actor, approver, want) in refunds {
            assert_eq!(
                refund(actor, approver).as_deref(),
                want,
                "refund by {actor:?} approved by {approver:?}"
            );
        }
        // At a business whose desks ask for a sign-in, a catalogue change names someone.
        let unsigned = check_actor(&entry(Entity::CatalogueItem, None), &people, true);
        assert_eq!(
            unsigned.err().map(|r| r.code).as_deref(),
            Some(error_code::FORBIDDEN)
        );
        assert!(check_actor(&entry(Entity::Patient, None), &people, true).is_ok());
        // Clinical entries: notes and allergies by clinical roles, emergency openings by those
        // who may open a record so, each naming its writer as its author.
        let clinical = |kind: &str, actor: Option<Uuid>, author: Option<Uuid>, guarded: bool| {
            let mut entry = entry(Entity::ClinicalEntry, actor);
            entry
                .change
                .fields
                .insert("kind".to_owned(), serde_json::json!(kind));
            entry.change.fields.insert(
                "author_id".to_owned(),
                serde_json::json!(author.map(|a| a.to_string())),
            );
            check_actor(&entry, &people, guarded).err().map(|r| r.code)
        };
        let forbidden = Some(error_code::FORBIDDEN);
        let clinical_table = [
            ("note", Some(doctor), Some(doctor), true, None),
            ("allergy", Some(doctor), Some(doctor), true, None),
            ("note", Some(manager), Some(manager), true, forbidden),
            ("note", Some(clerk), Some(clerk), true, forbidden),
            ("note", Some(doctor), Some(manager), true, forbidden),
            ("note", Some(doctor), None, true, forbidden),
            ("emergency_access", Some(manager), Some(manager), true, None),
            (
                "emergency_access",
                Some(doctor),
                Some(doctor),
                true,
                forbidden,
            ),
            (
                "emergency_access",
                Some(clerk),
                Some(clerk),
                true,
                forbidden,
            ),
            ("note", None, None, true, forbidden),
            // A desk nobody signs in to writes unsigned, authorless entries.
            ("note", None, None, false, None),
            ("note", None, Some(doctor), false, forbidden),
            (
                "note",
                Some(stranger),
                Some(stranger),
                true,
                Some(error_code::UNKNOWN_ACTOR),
            ),
        ];
        for (kind, actor, author, guarded, want) in clinical_table {
            assert_eq!(
                clinical(kind, actor, author, guarded).as_deref(),
                want,
                "{kind} by {actor:?} as {author:?}, guarded {guarded}"
            );
        }
    }

    #[test]
    fn malformed_batches_are_bad_requests() {
        for seqs in [&[1, 3][..], &[2, 1], &[0, 1], &[-1], &[1, 1]] {
            assert!(
                matches!(plan(&entries(seqs), 0), Err(Error::BadRequest(_))),
                "{seqs:?}"
            );
        }
    }
}
