//! The licence lease at the desk: the newest lease the server signed for this desk, verified
//! against the public key the desk pinned the first time it was given one, and enforced
//! offline. Full access until the lease's `full_until`, read-only until its `read_only_until`,
//! then suspended (still read-only: nothing is ever deleted or hidden). Times are compared with
//! the latest time the desk has ever seen (kept on disk), so a clock turned back never extends
//! a lease.
//!
//! The pinned key, the lease and the latest time are kept in `meta` as envelopes under the
//! desk's data key, so editing the database cannot forge them, and the pin is also kept in the
//! OS keyring beside the data key (with the device it belongs to), so removing rows from the
//! database cannot unpin it; a lease that no longer opens, or goes missing once a key is
//! pinned, counts as suspended until the next sync brings a new one. The latest time is never
//! earlier than the held lease's own time, and a lease pulls it back to at most 48 hours past
//! the server's time, so a clock once set far ahead does not lock a paying desk for good.
//! A desk that never had a lease (enrolled before leases existed) has full access until its
//! first sync brings one.
//!
//! Every local write checks the lease in the same transaction (`writes_allowed`, through the
//! connection's temporary `licence_clock`), whichever command made it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, VerifyingKey};
use kaunter_core::subscription::{Access, lease_access};
use kaunter_protocol::http::{Licence, SignedLicence};
use rusqlite::{Connection, OptionalExtension, params};

use crate::cipher::FieldCipher;
use crate::error::{Result, StoreError};
use crate::store::{DeskIdentity, parse_timestamp, timestamp};

const KEY: &str = "licence_key";
const LEASE: &str = "licence";
const SEEN: &str = "licence_seen";
/// How stale the persisted latest time may get before a status check writes it again.
const SEEN_WRITE_EVERY_SECS: i64 = 60;
/// How far ahead of a lease's (server-signed) time the desk's latest time may be when a lease
/// arrives: a clock once set far ahead is pulled back to the server's time (plus this), so a
/// mistyped year does not lock a paying desk for good.
const MAX_AHEAD_OF_SERVER: chrono::Duration = chrono::Duration::hours(48);

/// The desk's licence as of a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceStatus {
    pub access: Access,
    /// The lease in force, if the desk has one that opens.
    pub licence: Option<Licence>,
    /// The time the lease was judged at: the later of the clock and the latest time seen.
    pub trusted_now: DateTime<Utc>,
}

fn get(conn: &Connection, cipher: &FieldCipher, key: &'static str) -> Option<String> {
    let stored: String = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()
        .ok()
        .flatten()?;
    let envelope = STANDARD.decode(stored).ok()?;
    cipher
        .decrypt_string("meta", key, "licence", &envelope)
        .ok()
}

fn set(conn: &Connection, cipher: &FieldCipher, key: &'static str, value: &str) -> Result<()> {
    let envelope = STANDARD.encode(cipher.encrypt_str("meta", key, "licence", value)?);
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, envelope],
    )?;
    Ok(())
}

/// Whether a pinned key's row is in `meta` (whether or not it still opens).
fn key_row_exists(conn: &Connection) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM meta WHERE key = ?1",
            params![KEY],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Checks a signed lease against `key` and decodes it.
fn verify(signed: &SignedLicence, key: &VerifyingKey) -> Result<Licence> {
    let rejected = |why: &str| StoreError::LicenceRejected(why.to_owned());
    let payload = STANDARD
        .decode(&signed.payload)
        .map_err(|_| rejected("its content is not base64"))?;
    let signature: [u8; 64] = STANDARD
        .decode(&signed.signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| rejected("its signature is malformed"))?;
    key.verify_strict(&payload, &Signature::from_bytes(&signature))
        .map_err(|_| rejected("its signature does not match"))?;
    serde_json::from_slice(&payload).map_err(|_| rejected("its content does not decode"))
}

fn public_key(text: &str) -> Result<VerifyingKey> {
    STANDARD
        .decode(text)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
        .and_then(|bytes| VerifyingKey::from_bytes(&bytes).ok())
        .ok_or_else(|| StoreError::LicenceRejected("its public key is malformed".to_owned()))
}

/// The stored lease, verified again (a lease whose envelope or signature no longer checks out
/// is no lease).
fn stored_lease(conn: &Connection, cipher: &FieldCipher) -> Option<Licence> {
    let key = public_key(&get(conn, cipher, KEY)?).ok()?;
    let signed: SignedLicence = serde_json::from_str(&get(conn, cipher, LEASE)?).ok()?;
    verify(&signed, &key).ok()
}

fn latest_seen(conn: &Connection, cipher: &FieldCipher) -> Option<DateTime<Utc>> {
    get(conn, cipher, SEEN).and_then(|text| parse_timestamp(&text).ok())
}

/// Takes a lease the server sent: verified with the pinned key (the first one given is
/// pinned), for this desk of this business, and not older than the one held; then kept, with
/// the latest time seen moved forward. A lease that fails any check is refused and the one
/// held stays.
pub(crate) fn accept(
    conn: &Connection,
    cipher: &FieldCipher,
    identity: &DeskIdentity,
    signed: &SignedLicence,
    now: DateTime<Utc>,
    keyring_pin: Option<&str>,
) -> Result<()> {
    // The pin in the OS keyring wins over the copy in the database, which an edit can remove.
    let pinned = keyring_pin
        .map(str::to_owned)
        .or_else(|| get(conn, cipher, KEY));
    let had_key = key_row_exists(conn)?;
    if let Some(pinned) = &pinned
        && pinned != &signed.public_key
    {
        return Err(StoreError::LicenceRejected(
            "it is signed with another key than this desk's server's".to_owned(),
        ));
    }
    if pinned.is_none() && had_key && keyring_pin.is_none() {
        // The pinned key no longer opens: the data was tampered with. Pin nothing new.
        return Err(StoreError::LicenceRejected(
            "this desk's pinned key was tampered with".to_owned(),
        ));
    }
    let licence = verify(signed, &public_key(&signed.public_key)?)?;
    if licence.version != 1 {
        return Err(StoreError::LicenceRejected(format!(
            "its layout version {} is unknown",
            licence.version
        )));
    }
    if licence.tenant_id != identity.tenant_id.as_uuid()
        || licence.device_id != identity.device_id.as_uuid()
    {
        return Err(StoreError::LicenceRejected(
            "it is for another desk or business".to_owned(),
        ));
    }
    let seen = latest_seen(conn, cipher);
    if let Some(held) = stored_lease(conn, cipher)
        && held.issued_at > licence.issued_at
    {
        // An older lease replayed: keep the newer one.
        return Ok(());
    }
    if get(conn, cipher, KEY).is_none() {
        set(conn, cipher, KEY, &signed.public_key)?;
    }
    let json = serde_json::to_string(signed).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    set(conn, cipher, LEASE, &json)?;
    // The server's time is the one to trust: the desk's latest time is at least the lease's,
    // and at most a little ahead of it.
    let desk_latest = seen.map_or(now, |seen| seen.max(now));
    let latest = desk_latest
        .min(licence.issued_at + MAX_AHEAD_OF_SERVER)
        .max(licence.issued_at);
    set(conn, cipher, SEEN, &timestamp(latest))?;
    refresh_clock(conn, cipher, true)
}

/// The desk's licence at `now` (the clock's time), judged at the later of `now` and the
/// latest time seen; the latest time seen moves forward (written at most once a minute).
pub(crate) fn status(
    conn: &Connection,
    cipher: &FieldCipher,
    now: DateTime<Utc>,
    keyring_pinned: bool,
) -> Result<LicenceStatus> {
    let licence = stored_lease(conn, cipher);
    let seen = latest_seen(conn, cipher);
    // Never earlier than the lease's own (server-signed) time, even if the latest time seen
    // was removed from the database.
    let trusted_now = [
        Some(now),
        seen,
        licence.as_ref().map(|lease| lease.issued_at),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(now);
    if seen.is_none_or(|seen| (trusted_now - seen).num_seconds() >= SEEN_WRITE_EVERY_SECS) {
        set(conn, cipher, SEEN, &timestamp(trusted_now))?;
        refresh_clock(conn, cipher, keyring_pinned)?;
    }
    let pinned = keyring_pinned || key_row_exists(conn)?;
    let access = match &licence {
        Some(lease) => lease_access(lease.full_until, lease.read_only_until, trusted_now),
        None if pinned => Access::Suspended,
        None => Access::Full,
    };
    Ok(LicenceStatus {
        access,
        licence,
        trusted_now,
    })
}

/// Fills the connection's `licence_clock` from what is stored: when full access ends (none: no
/// lease was ever pinned) and the latest time seen. Called at open and whenever they change.
pub(crate) fn refresh_clock(
    conn: &Connection,
    cipher: &FieldCipher,
    keyring_pinned: bool,
) -> Result<()> {
    conn.execute("DELETE FROM temp.licence_clock", [])?;
    let pinned = keyring_pinned || key_row_exists(conn)?;
    let lease = stored_lease(conn, cipher);
    let ends = match (&lease, pinned) {
        (Some(lease), _) => Some((lease.full_until, lease.read_only_until)),
        // Pinned, but the lease is gone or no longer opens: no writes until a new one arrives.
        (None, true) => Some((DateTime::<Utc>::UNIX_EPOCH, DateTime::<Utc>::UNIX_EPOCH)),
        (None, false) => None,
    };
    if let Some((full_until, read_only_until)) = ends {
        let seen = [
            latest_seen(conn, cipher),
            lease.as_ref().map(|lease| lease.issued_at),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        conn.execute(
            "INSERT INTO temp.licence_clock (full_until, read_only_until, latest_seen) \
             VALUES (?1, ?2, ?3)",
            params![
                timestamp(full_until),
                timestamp(read_only_until),
                timestamp(seen)
            ],
        )?;
    }
    Ok(())
}

/// Refuses a local write at `now` that the lease does not allow (read inside the writing
/// transaction, from `licence_clock`).
pub(crate) fn writes_allowed(conn: &Connection, now: DateTime<Utc>) -> Result<()> {
    let clock: Option<(String, String, String)> = conn
        .prepare_cached(
            "SELECT full_until, read_only_until, latest_seen FROM temp.licence_clock LIMIT 1",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((full_until, read_only_until, seen)) = clock else {
        return Ok(());
    };
    let trusted_now = parse_timestamp(&seen)?.max(now);
    match lease_access(
        parse_timestamp(&full_until)?,
        parse_timestamp(&read_only_until)?,
        trusted_now,
    ) {
        Access::Full => Ok(()),
        Access::ReadOnly => Err(StoreError::SubscriptionReadOnly),
        Access::Suspended => Err(StoreError::SubscriptionSuspended),
    }
}
