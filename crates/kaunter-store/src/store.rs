//! The store itself: opening (with the key check), enrolment, patients, the outbox and the
//! sync bookkeeping the sync client drives.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use kaunter_core::hlc::MAX_DRIFT_MS;
use kaunter_core::mykad::format_digits;
use kaunter_core::patient::{PatientField, RegistrationError};
use kaunter_core::{
    BranchId, DeviceId, Hlc, HlcClock, NewPatient, PatientId, SearchQuery, TenantId,
};
use kaunter_protocol::FieldError;
use kaunter_protocol::http::error_code;
use kaunter_protocol::http::{
    Change, DELETED_FIELD, Entity, Fields, OutboxEntry, PatientRecord, PullResponse, PulledChange,
    RejectedEntry, Resolution, StaffMember, StaffResponse, Stamps,
};
use kaunter_protocol::ipc::{
    ClinicalAccess, ClinicalEntryView, ClinicalRecordView, PatientView, RefusedChangeView,
};
use kaunter_protocol::merge::{apply_change, record_into_parts, stamp_to_wire};
use kaunter_protocol::records::{
    AppointmentRecord, AppointmentStatus, CashKind, CashMovementRecord, CatalogueItemRecord,
    CatalogueKind, ClinicalEntryRecord, ClinicalKind, EntityRecord, TaxCode,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::Value;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::checkpoint::Checkpointer;
use crate::cipher::{FieldCipher, KeyMaterial};
use crate::convert;
use crate::error::{Result, StoreError};
use crate::migrations;

/// A booking as the desk makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBooking {
    pub patient_id: Uuid,
    pub practitioner_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub note: Option<String>,
}

/// A product or service as the desk adds it to the business's catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCatalogueItem {
    pub kind: CatalogueKind,
    pub code: String,
    pub name: String,
    pub price: rust_decimal::Decimal,
    pub tax: TaxCode,
    pub duration_minutes: Option<u32>,
    /// Whether it is offered (an item may be entered ahead of time and offered later).
    pub active: bool,
}

/// Money into or out of the drawer, as the desk records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCashMovement {
    pub kind: CashKind,
    pub amount: rust_decimal::Decimal,
    pub patient_id: Option<Uuid>,
    pub note: Option<String>,
}
use crate::rows::{self, LocalRow, load_row, save_row};
use crate::secrets::SecretStore;

const SECRET_DATA_KEYS: &str = "data-keys";
/// The licence key this desk pinned, as `<device id> <public key>` (a new enrolment, under
/// another device id, pins afresh).
const SECRET_LICENCE_PIN: &str = "licence-pin";
const SECRET_DEVICE_TOKEN: &str = "device-token";
/// With rotating credentials: the refresh token that renews the device token.
const SECRET_REFRESH_TOKEN: &str = "refresh-token";

/// The desk's server credentials in the secret store (OS keyring). Under rotating credentials
/// they change while the desk runs, so the sync client reads and replaces them itself.
#[derive(Debug, Clone)]
pub struct DeskCredentials {
    secrets: Arc<dyn SecretStore>,
}

impl DeskCredentials {
    /// The bearer token the desk sends.
    pub fn device_token(&self) -> Result<Zeroizing<String>> {
        self.secrets
            .get(SECRET_DEVICE_TOKEN)?
            .ok_or(StoreError::DeviceTokenMissing)
    }

    /// The refresh token, for a desk enrolled with rotating credentials.
    pub fn refresh_token(&self) -> Result<Option<Zeroizing<String>>> {
        self.secrets.get(SECRET_REFRESH_TOKEN)
    }

    /// Keeps a new pair: the refresh token first (the one it replaces is spent on the server),
    /// then the device token.
    pub fn save(&self, device_token: &str, refresh_token: &str) -> Result<()> {
        self.secrets.set(SECRET_REFRESH_TOKEN, refresh_token)?;
        self.secrets.set(SECRET_DEVICE_TOKEN, device_token)
    }
}
const KEY_CHECK_PLAINTEXT: &str = "kaunter key check";

/// Who this desk is: set once at enrolment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskIdentity {
    pub tenant_id: TenantId,
    pub branch_id: BranchId,
    pub device_id: DeviceId,
    pub device_name: String,
    pub server_url: String,
    pub business_name: String,
    pub branch_name: String,
}

impl DeskIdentity {
    /// Who the server says this desk is, from its answer to an enrolment, with the name the
    /// desk gave itself and the address it enrolled at.
    pub fn from_enrolment(
        enrolled: &kaunter_protocol::http::EnrolResponse,
        device_name: &str,
        server_url: &str,
    ) -> DeskIdentity {
        DeskIdentity {
            tenant_id: TenantId::from_uuid(enrolled.tenant_id),
            branch_id: BranchId::from_uuid(enrolled.branch_id),
            device_id: DeviceId::from_uuid(enrolled.device_id),
            device_name: device_name.to_owned(),
            server_url: server_url.trim_end_matches('/').to_owned(),
            business_name: enrolled.business_name.clone(),
            branch_name: enrolled.branch_name.clone(),
        }
    }
}

/// The sync bookkeeping, for the status bar and for the sync client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncState {
    /// Outbox entries not yet acknowledged.
    pub pending: u32,
    /// Entries the server refused (kept, with its reason, until someone deals with them).
    pub rejected: u32,
    /// Conflicts of this branch waiting for a person, as of the last pull.
    pub open_conflicts: u32,
    pub oldest_pending_at: Option<DateTime<Utc>>,
    /// The last outbox sequence number allocated.
    pub last_seq: i64,
    /// The server's high-water mark for this desk.
    pub acked_seq: i64,
    pub pull_cursor: i64,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    secrets: Arc<dyn SecretStore>,
    keys: KeyMaterial,
    identity: Option<DeskIdentity>,
    cipher: Option<FieldCipher>,
    /// Declared after `conn`, so it is dropped after it: its last checkpoint then empties the
    /// WAL with no other connection open.
    _checkpointer: Option<Checkpointer>,
    /// The person signed in at this desk, if anyone.
    signed_in: Option<SignedIn>,
    /// When the person signed in last did something at the desk (see [`Store::touch`]).
    last_action: Option<DateTime<Utc>>,
    /// The licence key pinned in the OS keyring for this desk, read once at open (the keyring
    /// is a D-Bus call away on Linux: not something to ask on every status poll).
    licence_pin: Option<String>,
}

/// A person who may sign in at this desk, as the picker shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffView {
    pub user_id: Uuid,
    pub name: String,
    pub roles: Vec<String>,
}

/// The person signed in at this desk, with what their roles allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub user_id: Uuid,
    pub name: String,
    pub roles: Vec<String>,
    permissions: Vec<String>,
    /// sha256 of the PIN hash they signed in with: a new PIN signs them out.
    verifier_digest: [u8; 32],
}

impl SignedIn {
    pub fn may(&self, permission: kaunter_core::access::Permission) -> bool {
        self.permissions
            .iter()
            .any(|held| held == permission.as_str())
    }
}

/// A desk signs its person out after this long without them doing anything, so a till left
/// unattended does not stay open in their name.
pub const IDLE_SIGN_OUT: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How long a clinical record opened in an emergency stays open to the person who opened it
/// (signing out closes it sooner).
pub const EMERGENCY_OPENING: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Wrong PINs in a row before a person is locked out of this desk for a while.
pub const PIN_ATTEMPTS: u32 = 5;
pub const PIN_LOCK: std::time::Duration = std::time::Duration::from_secs(5 * 60);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

pub(crate) fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub(crate) fn parse_timestamp(text: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("bad timestamp {text:?}")))
}

fn parse_optional_timestamp(text: Option<String>) -> Result<Option<DateTime<Utc>>> {
    text.as_deref().map(parse_timestamp).transpose()
}

/// sha256 of a PIN hash, to notice a changed PIN without keeping the hash in memory.
fn verifier_digest(verifier: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(verifier.as_bytes()).into()
}

/// Whether a PIN hash from the server is an Argon2id PHC string whose costs a desk can afford
/// (at most 64 MiB, 10 passes, 4 lanes): a hash asking for more would freeze the desk.
fn pin_verifier_bounded(verifier: &str) -> bool {
    use argon2::password_hash::PasswordHash;
    let Ok(parsed) = PasswordHash::new(verifier) else {
        return false;
    };
    let Ok(params) = argon2::Params::try_from(&parsed) else {
        return false;
    };
    parsed.algorithm.as_str() == "argon2id"
        && params.m_cost() <= 64 * 1024
        && params.t_cost() <= 10
        && params.p_cost() <= 4
}

/// Whether `pin` matches an Argon2id PHC string. A verifier that does not parse matches nothing.
fn pin_matches(pin: &str, verifier: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(verifier).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(pin.as_bytes(), &parsed)
            .is_ok()
    })
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("bad id {text:?}")))
}

impl Store {
    /// Opens (creating if needed) the desk's database at `path`.
    ///
    /// A database that already holds a key check needs its key from `secrets`: a missing key is
    /// [`StoreError::KeyMissing`], another key is [`StoreError::WrongKey`]; neither ever leads
    /// to a new key. A new database reuses a key already in `secrets` (it may protect a backup)
    /// and otherwise generates one.
    pub fn open(path: impl AsRef<Path>, secrets: Arc<dyn SecretStore>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path)?;
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!(
                "the database refused WAL mode ({mode})"
            )));
        }
        // FULL: a sale or registration the desk reported saved survives a power cut.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        // 64 MiB of page cache (the default is 2 MiB): a branch's blind indexes are random-keyed
        // B-trees, and once they outgrow the cache every insert of an initial sync reads pages
        // back from disk.
        conn.pragma_update(None, "cache_size", -65_536)?;
        // After a download the WAL may have grown large; once checkpointed, it shrinks back to
        // at most this much.
        conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)?;
        // Room for every statement the write and merge paths keep prepared (the default is 16).
        conn.set_prepared_statement_cache_capacity(64);
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        migrations::run(&mut conn)?;
        // Who is signed in at this desk: kept by this connection only, so a restart signs
        // everyone out; each outbox entry written records it.
        conn.execute_batch("CREATE TEMP TABLE IF NOT EXISTS desk_session (actor TEXT NOT NULL)")?;
        // Clinical records someone opened in an emergency, until when: kept by this connection
        // only, so a restart closes them, as does signing out.
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS emergency_openings (
                 user_id TEXT NOT NULL, patient_id TEXT NOT NULL, until TEXT NOT NULL,
                 PRIMARY KEY (user_id, patient_id))",
        )?;
        // When the licence lease's full access ends, and the latest time seen: every local
        // write checks it (licence.rs), filled below from what is stored.
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS licence_clock (
                 full_until TEXT NOT NULL, read_only_until TEXT NOT NULL,
                 latest_seen TEXT NOT NULL)",
        )?;
        // A download that stopped half-way (the app closed or crashed) left them out.
        rows::create_deferred_indexes(&conn)?;

        let key_check: Option<String> = meta_get(&conn, "key_check")?;
        let keys = match key_check {
            Some(check) => {
                let stored = secrets
                    .get(SECRET_DATA_KEYS)?
                    .ok_or(StoreError::KeyMissing)?;
                let keys = KeyMaterial::import(&stored)?;
                let envelope = hex_decode(&check)
                    .ok_or_else(|| StoreError::Corrupt("bad key check".into()))?;
                let checker = FieldCipher::new(&keys, "");
                match checker.decrypt_string("meta", "key_check", "key_check", &envelope) {
                    Ok(text) if text == KEY_CHECK_PLAINTEXT => keys,
                    _ => return Err(StoreError::WrongKey),
                }
            }
            None => {
                let has_data: bool = conn.query_row(
                    "SELECT EXISTS (SELECT 1 FROM patients) OR EXISTS (SELECT 1 FROM outbox)",
                    [],
                    |r| r.get(0),
                )?;
                if has_data {
                    return Err(StoreError::Corrupt(
                        "the database holds data but no key check".into(),
                    ));
                }
                let keys = match secrets.get(SECRET_DATA_KEYS)? {
                    Some(existing) => KeyMaterial::import(&existing)?,
                    None => {
                        let keys = KeyMaterial::generate()?;
                        secrets.set(SECRET_DATA_KEYS, &keys.export())?;
                        keys
                    }
                };
                let checker = FieldCipher::new(&keys, "");
                let envelope =
                    checker.encrypt_str("meta", "key_check", "key_check", KEY_CHECK_PLAINTEXT)?;
                meta_set(&conn, "key_check", &hex_encode(&envelope))?;
                keys
            }
        };

        let identity = read_identity(&conn)?;
        let cipher = identity
            .as_ref()
            .map(|identity| FieldCipher::new(&keys, &identity.tenant_id.to_string()));
        let licence_pin = match &identity {
            Some(identity) => keyring_pin(secrets.as_ref(), identity)?,
            None => None,
        };
        if let Some(cipher) = &cipher {
            crate::licence::refresh_clock(&conn, cipher, licence_pin.is_some())?;
        }
        // Checkpoints run on a thread of their own, not inside a commit (see checkpoint.rs).
        let checkpointer = match Checkpointer::start(&path) {
            Ok(checkpointer) => {
                conn.pragma_update(None, "wal_autocheckpoint", 0)?;
                Some(checkpointer)
            }
            Err(error) => {
                tracing::warn!(%error, "no checkpoint thread; SQLite checkpoints inside commits");
                None
            }
        };
        Ok(Store {
            conn,
            path,
            secrets,
            keys,
            identity,
            cipher,
            _checkpointer: checkpointer,
            signed_in: None,
            last_action: None,
            licence_pin,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn identity(&self) -> Option<&DeskIdentity> {
        self.identity.as_ref()
    }

    /// Records who this desk is and keeps its token in the secret store.
    pub fn enrol(&mut self, identity: DeskIdentity, device_token: &str) -> Result<()> {
        self.enrol_with_refresh(identity, device_token, None)
    }

    /// Takes new (rotating) credentials after head office removed this desk and issued a code
    /// for it again (the server reinstated the same device: `enrolled` must name this desk's
    /// business, branch and device). Every row, the outbox and its numbering stay as they are, so what waited
    /// while the desk was shut out is pushed at the next round. The refresh token is stored
    /// first, as at enrolment.
    pub fn reenrol(
        &mut self,
        enrolled: &kaunter_protocol::http::EnrolResponse,
        device_token: &str,
        refresh_token: &str,
    ) -> Result<()> {
        let identity = self.identity.as_ref().ok_or(StoreError::NotEnrolled)?;
        if enrolled.tenant_id != identity.tenant_id.as_uuid()
            || enrolled.branch_id != identity.branch_id.as_uuid()
            || enrolled.device_id != identity.device_id.as_uuid()
        {
            return Err(StoreError::NotThisDesk);
        }
        self.secrets.set(SECRET_REFRESH_TOKEN, refresh_token)?;
        self.secrets.set(SECRET_DEVICE_TOKEN, device_token)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (key, value) in [
            ("business_name", enrolled.business_name.clone()),
            ("branch_name", enrolled.branch_name.clone()),
        ] {
            meta_set(&tx, key, &value)?;
        }
        tx.commit()?;
        if let Some(identity) = self.identity.as_mut() {
            identity.business_name = enrolled.business_name.clone();
            identity.branch_name = enrolled.branch_name.clone();
        }
        Ok(())
    }

    /// [`Store::enrol`] with rotating credentials: both tokens reach the secret store (the
    /// refresh token first) before the desk counts as enrolled, so a crash half-way leaves a
    /// desk that simply enrols again, never one enrolled without its refresh token.
    pub fn enrol_with_refresh(
        &mut self,
        identity: DeskIdentity,
        device_token: &str,
        refresh_token: Option<&str>,
    ) -> Result<()> {
        if self.identity.is_some() {
            return Err(StoreError::AlreadyEnrolled);
        }
        if let Some(refresh_token) = refresh_token {
            self.secrets.set(SECRET_REFRESH_TOKEN, refresh_token)?;
        }
        self.secrets.set(SECRET_DEVICE_TOKEN, device_token)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (key, value) in [
            ("tenant_id", identity.tenant_id.to_string()),
            ("branch_id", identity.branch_id.to_string()),
            ("device_id", identity.device_id.to_string()),
            ("device_name", identity.device_name.clone()),
            ("server_url", identity.server_url.clone()),
            ("business_name", identity.business_name.clone()),
            ("branch_name", identity.branch_name.clone()),
        ] {
            meta_set(&tx, key, &value)?;
        }
        tx.commit()?;
        self.cipher = Some(FieldCipher::new(
            &self.keys,
            &identity.tenant_id.to_string(),
        ));
        self.identity = Some(identity);
        Ok(())
    }

    pub fn device_token(&self) -> Result<Zeroizing<String>> {
        self.credentials().device_token()
    }

    /// The desk's credentials, for the sync client.
    pub fn credentials(&self) -> DeskCredentials {
        DeskCredentials {
            secrets: self.secrets.clone(),
        }
    }

    /// Replaces the people who may sign in here with the server's roster (names and PIN hashes
    /// stored as envelopes) and notes whether the business asks for a sign-in. The person
    /// signed in gets their new roles and permissions at once; one who is no longer on the
    /// roster, or whose PIN changed, is signed out.
    pub fn replace_staff(&mut self, roster: &StaffResponse) -> Result<()> {
        let (conn, _, cipher) = self.enrolled_mut()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM staff", [])?;
        let staff: Vec<&StaffMember> = roster
            .staff
            .iter()
            .filter(|member| {
                let bounded = pin_verifier_bounded(&member.pin_verifier);
                if !bounded {
                    tracing::warn!(user = %member.user_id, "a PIN hash with costs out of bounds was ignored");
                }
                bounded
            })
            .collect();
        let required = roster.sign_in_required || !staff.is_empty();
        meta_set(&tx, "sign_in_required", if required { "1" } else { "0" })?;
        for member in &staff {
            let id = member.user_id.to_string();
            let json = |values: &[String]| {
                serde_json::to_string(values).map_err(|e| StoreError::Corrupt(e.to_string()))
            };
            tx.prepare_cached(
                "INSERT INTO staff (user_id, name, roles, permissions, pin_verifier)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                id,
                cipher.encrypt_str("staff", "name", &id, &member.name)?,
                json(&member.roles)?,
                json(&member.permissions)?,
                cipher.encrypt_str("staff", "pin_verifier", &id, &member.pin_verifier)?,
            ])?;
        }
        tx.commit()?;
        if let Some(signed) = &self.signed_in {
            let now = staff.iter().find(|m| m.user_id == signed.user_id);
            match now {
                Some(member) if verifier_digest(&member.pin_verifier) == signed.verifier_digest => {
                    let refreshed = SignedIn {
                        name: member.name.clone(),
                        roles: member.roles.clone(),
                        permissions: member.permissions.clone(),
                        ..signed.clone()
                    };
                    self.signed_in = Some(refreshed);
                }
                _ => self.sign_out()?,
            }
        }
        Ok(())
    }

    /// The people who may sign in at this desk, by name.
    pub fn staff(&self) -> Result<Vec<StaffView>> {
        let (_, cipher) = self.enrolled()?;
        let mut statement = self
            .conn
            .prepare("SELECT user_id, name, roles FROM staff")?;
        let mut rows = statement.query([])?;
        let mut staff = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let name: Vec<u8> = row.get(1)?;
            let roles: String = row.get(2)?;
            staff.push(StaffView {
                user_id: parse_uuid(&id)?,
                name: cipher.decrypt_string("staff", "name", &id, &name)?,
                roles: serde_json::from_str(&roles)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            });
        }
        staff.sort_by(|a, b| a.name.cmp(&b.name).then(a.user_id.cmp(&b.user_id)));
        Ok(staff)
    }

    /// Whether this desk asks its people to sign in: once anyone of the business has a desk
    /// PIN. Until then it works as one shared desk and its entries name nobody.
    pub fn requires_sign_in(&self) -> Result<bool> {
        Ok(meta_get(&self.conn, "sign_in_required")?.as_deref() == Some("1"))
    }

    /// Checks `pin` against the person's PIN hash (offline) and signs them in, replacing
    /// whoever was. After [`PIN_ATTEMPTS`] wrong PINs in a row the person is locked out of
    /// this desk for [`PIN_LOCK`].
    pub fn sign_in(&mut self, user_id: Uuid, pin: &str) -> Result<SignedIn> {
        self.sign_in_at(user_id, pin, Utc::now())
    }

    /// [`Store::sign_in`] at `now` (the lock-out's clock).
    pub fn sign_in_at(&mut self, user_id: Uuid, pin: &str, now: DateTime<Utc>) -> Result<SignedIn> {
        let signed = self.check_pin_at(user_id, pin, now)?;
        let id = user_id.to_string();
        // Whoever was signed in is gone before the new person is in, in one transaction.
        self.signed_in = None;
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM temp.desk_session", [])?;
        // Emergency openings are each person's own (keyed by them); signing out ends them.
        tx.execute(
            "INSERT INTO temp.desk_session (actor) VALUES (?1)",
            params![id],
        )?;
        tx.commit()?;
        self.signed_in = Some(signed.clone());
        self.last_action = Some(now);
        Ok(signed)
    }

    /// Checks one of the roster's PINs, offline, with the same lock-out as a sign-in (wrong
    /// PINs counted on disk), and says who it is and what they may do. Signs nobody in.
    fn check_pin_at(&mut self, user_id: Uuid, pin: &str, now: DateTime<Utc>) -> Result<SignedIn> {
        let id = user_id.to_string();
        let locked_until: Option<String> = self
            .conn
            .query_row(
                "SELECT locked_until FROM pin_failures WHERE user_id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let lock = chrono::Duration::from_std(PIN_LOCK).unwrap_or_default();
        if let Some(until) = locked_until.as_deref().map(parse_timestamp).transpose()?
            && until > now
        {
            // A clock turned back would stretch the lock: it never lasts longer than PIN_LOCK
            // from now.
            let until = if until - now > lock {
                self.conn.execute(
                    "UPDATE pin_failures SET locked_until = ?2 WHERE user_id = ?1",
                    params![id, timestamp(now + lock)],
                )?;
                now + lock
            } else {
                until
            };
            let left = (until - now).num_seconds().max(1);
            return Err(StoreError::PinLocked(u64::try_from(left).unwrap_or(1)));
        }
        let (_, cipher) = self.enrolled()?;
        let row: Option<(Vec<u8>, String, String, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT name, roles, permissions, pin_verifier FROM staff WHERE user_id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((name, roles, permissions, verifier)) = row else {
            return Err(StoreError::NotFound("That person".to_owned()));
        };
        let verifier =
            Zeroizing::new(cipher.decrypt_string("staff", "pin_verifier", &id, &verifier)?);
        let parse = |text: &str| -> Result<Vec<String>> {
            serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
        };
        let signed = SignedIn {
            user_id,
            name: cipher.decrypt_string("staff", "name", &id, &name)?,
            roles: parse(&roles)?,
            permissions: parse(&permissions)?,
            verifier_digest: verifier_digest(&verifier),
        };
        if !pin_matches(pin, &verifier) {
            // Counted on disk: closing the app does not reset it. The fifth in a row locks the
            // person out and starts the count again.
            let lock_until = timestamp(now + lock);
            self.conn.execute(
                "INSERT INTO pin_failures (user_id, failures, locked_until) VALUES (?1, 1, NULL)
                 ON CONFLICT (user_id) DO UPDATE SET failures = failures + 1",
                params![id],
            )?;
            self.conn.execute(
                "UPDATE pin_failures SET failures = 0, locked_until = ?2
                 WHERE user_id = ?1 AND failures >= ?3",
                params![id, lock_until, PIN_ATTEMPTS],
            )?;
            return Err(StoreError::WrongPin);
        }
        self.conn
            .execute("DELETE FROM pin_failures WHERE user_id = ?1", params![id])?;
        Ok(signed)
    }

    /// Nobody is signed in any more (the next person signs in, or the desk locks).
    pub fn sign_out(&mut self) -> Result<()> {
        self.conn.execute("DELETE FROM temp.desk_session", [])?;
        self.conn
            .execute("DELETE FROM temp.emergency_openings", [])?;
        self.signed_in = None;
        self.last_action = None;
        Ok(())
    }

    /// The person signed in did something at `now` (a desktop command): their idle time starts
    /// again.
    pub fn touch(&mut self, now: DateTime<Utc>) {
        if self.signed_in.is_some() {
            self.last_action = Some(now);
        }
    }

    /// Takes a licence lease the server signed for this desk (see licence.rs): verified against
    /// the pinned key, for this desk, not older than the one held. Refused otherwise, keeping
    /// the one held.
    pub fn accept_licence(
        &mut self,
        signed: &kaunter_protocol::http::SignedLicence,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let (identity, cipher) = self.enrolled()?;
        crate::licence::accept(
            &self.conn,
            cipher,
            identity,
            signed,
            now,
            self.licence_pin.as_deref(),
        )?;
        if self.licence_pin.is_none() {
            self.secrets.set(
                SECRET_LICENCE_PIN,
                &format!("{} {}", identity.device_id, signed.public_key),
            )?;
            self.licence_pin = Some(signed.public_key.clone());
        }
        Ok(())
    }

    /// What the desk's licence allows at `now` (judged at the latest time ever seen, so a
    /// clock turned back does not extend it).
    pub fn licence_status(&mut self, now: DateTime<Utc>) -> Result<crate::licence::LicenceStatus> {
        let (_, cipher) = self.enrolled()?;
        crate::licence::status(&self.conn, cipher, now, self.licence_pin.is_some())
    }

    /// Signs the person out when they have done nothing for [`IDLE_SIGN_OUT`] by `now`, and
    /// says whether it did. A clock turned back counts as activity (the idle time starts again
    /// from the new time) rather than stretching or cutting short the wait.
    pub fn sign_out_if_idle(&mut self, now: DateTime<Utc>) -> Result<bool> {
        let Some(last) = self.last_action.filter(|_| self.signed_in.is_some()) else {
            return Ok(false);
        };
        if now < last {
            self.last_action = Some(now);
            return Ok(false);
        }
        let idle = chrono::Duration::from_std(IDLE_SIGN_OUT).unwrap_or_default();
        if now - last < idle {
            return Ok(false);
        }
        self.sign_out()?;
        Ok(true)
    }

    pub fn signed_in(&self) -> Option<&SignedIn> {
        self.signed_in.as_ref()
    }

    /// Whether the person at the desk may do what `permission` covers: anyone at a desk that
    /// asks nobody to sign in; otherwise only someone signed in whose roles allow it.
    pub fn require(&self, permission: kaunter_core::access::Permission) -> Result<()> {
        match &self.signed_in {
            Some(signed) if signed.may(permission) => Ok(()),
            Some(_) => Err(StoreError::NotAllowed(permission.as_str())),
            None if self.requires_sign_in()? => Err(StoreError::SignInRequired),
            None => Ok(()),
        }
    }

    fn enrolled(&self) -> Result<(&DeskIdentity, &FieldCipher)> {
        match (&self.identity, &self.cipher) {
            (Some(identity), Some(cipher)) => Ok((identity, cipher)),
            _ => Err(StoreError::NotEnrolled),
        }
    }

    /// Like [`Store::enrolled`], plus the connection for writing.
    fn enrolled_mut(&mut self) -> Result<(&mut Connection, &DeskIdentity, &FieldCipher)> {
        match (&self.identity, &self.cipher) {
            (Some(identity), Some(cipher)) => Ok((&mut self.conn, identity, cipher)),
            _ => Err(StoreError::NotEnrolled),
        }
    }

    /// Saves a new patient and its outbox entry in one transaction. A second registration of
    /// the same identity number on this desk is refused with a field error.
    pub fn register_patient(
        &mut self,
        patient: &NewPatient,
        now: DateTime<Utc>,
    ) -> Result<PatientView> {
        let (conn, identity, cipher) = self.enrolled_mut()?;
        let record = PatientRecord {
            id: PatientId::generate().as_uuid(),
            branch_id: identity.branch_id.as_uuid(),
            full_name: patient.full_name().to_owned(),
            id_type: convert::id_type_to_wire(patient.id_type()),
            id_number: patient.id_number().to_owned(),
            phone: patient.phone().map(|p| p.e164().to_owned()),
            date_of_birth: Some(patient.date_of_birth()),
            sex: Some(convert::sex_to_wire(patient.sex())),
        };
        let id_bidx = cipher.blind_index("patients", "id_number", &record.id_number);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let duplicate: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM patients WHERE id_number_bidx = ?1 AND deleted = 0)",
            )?
            .query_row(params![id_bidx], |r| r.get(0))?;
        if duplicate {
            return Err(StoreError::Invalid(vec![RegistrationError {
                field: PatientField::IdNumber,
                code: "id_number_already_registered",
                message: "A patient with this identity number is already registered: search for them instead.".into(),
            }]));
        }
        insert_record(&tx, identity, cipher, record.id, &record, now)?;
        tx.commit()?;
        Ok(view(record, false, now))
    }

    /// Changes some fields of a patient (`{"deleted": true}` deletes it), with its outbox entry,
    /// in one transaction. Only the fields given travel, so another desk's edit of other fields
    /// is kept when both merge.
    pub fn edit_patient(
        &mut self,
        id: PatientId,
        fields: Fields,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.edit_row(Entity::Patient, id.as_uuid(), fields, now)
    }

    /// Changes some fields of a row of `entity`, with its outbox entry, in one transaction. The
    /// merged row must still be valid; a ledger entry is never changed.
    pub fn edit_row(
        &mut self,
        entity: Entity,
        id: Uuid,
        fields: Fields,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if entity.is_ledger() {
            return Err(StoreError::LedgerImmutable);
        }
        if let Some(name) = fields.keys().find(|name| {
            !entity.fields().contains(&name.as_str()) && name.as_str() != DELETED_FIELD
        }) {
            return Err(StoreError::UnknownField(name.clone()));
        }
        let (conn, identity, cipher) = self.enrolled_mut()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut row = load_row(&tx, cipher, entity, id)?
            .ok_or_else(|| StoreError::NotFound(format!("{} {id}", entity.as_str())))?;
        // A desk of business scope holds other branches' rows: it reads them, their own
        // branch changes them (the server would refuse the change anyway).
        if !entity.is_tenant_wide() && row.branch_id != identity.branch_id.as_uuid() {
            return Err(StoreError::OtherBranch);
        }
        let mut fields = fields;
        if let Some(pair) = kaunter_protocol::records::paired_fields(entity) {
            // Fields that must agree travel together (one stamp), so a merge of two desks'
            // edits never pairs one's value with the other's: a booking's start and end, an
            // item's kind and duration (a product has none).
            for (name, partner) in [(pair.0, pair.1), (pair.1, pair.0)] {
                if fields.contains_key(name) && !fields.contains_key(partner) {
                    let current = row.record.get(partner).cloned().unwrap_or(Value::Null);
                    fields.insert(partner.to_owned(), current);
                }
            }
        }
        let mut change = local_change(&tx, identity, entity, id, fields, now)?;
        // A tenant-wide row keeps the branch it was made at, whichever branch changes it.
        change.branch_id = row.branch_id;
        apply_change(&mut row.record, &change);
        if entity == Entity::CatalogueItem {
            let (merged, _) = record_into_parts(&row.record);
            if !kaunter_protocol::merge::is_deleted(&row.record) {
                let item = CatalogueItemRecord::from_fields(id, row.branch_id, &merged).map_err(
                    |detail| StoreError::Corrupt(format!("catalogue item {id}: {detail}")),
                )?;
                let errors = invalid_fields(item.problems());
                if !errors.is_empty() {
                    return Err(StoreError::InvalidRecord(errors));
                }
            }
        }
        if entity == Entity::Appointment {
            let (merged, _) = record_into_parts(&row.record);
            let booking = AppointmentRecord::from_fields(id, row.branch_id, &merged)
                .map_err(|detail| StoreError::Corrupt(format!("appointment {id}: {detail}")))?;
            check_booking(&tx, cipher, &booking)?;
        }
        row.updated_at = now;
        save_row(&tx, cipher, id, &row, None)?;
        append_outbox(&tx, cipher, &change, now)?;
        tx.commit()?;
        Ok(())
    }

    /// The data side of a person's decision on a duplicate registration (`a` the earlier
    /// record, `b` the later): deletes the record that goes and, for a merge, first fills what
    /// `a` lacks (phone, date of birth, sex) from `b`. Each step is an ordinary change in the
    /// outbox, so it merges with whatever other desks did meanwhile.
    pub fn resolve_duplicate(
        &mut self,
        a: PatientId,
        b: PatientId,
        resolution: Resolution,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let delete = |id| {
            (
                id,
                Fields::from([(DELETED_FIELD.to_owned(), Value::Bool(true))]),
            )
        };
        let steps: Vec<(PatientId, Fields)> = match resolution {
            Resolution::KeepBoth => Vec::new(),
            Resolution::KeepA => vec![delete(b)],
            Resolution::KeepB => vec![delete(a)],
            Resolution::MergeIntoA => {
                let (_, cipher) = self.enrolled()?;
                let load = |id: PatientId| {
                    load_row(&self.conn, cipher, Entity::Patient, id.as_uuid())?
                        .ok_or_else(|| StoreError::NotFound(format!("patient {id}")))
                };
                let (kept, gone) = (load(a)?, load(b)?);
                let mut fill = Fields::new();
                for field in ["phone", "date_of_birth", "sex"] {
                    let missing = matches!(kept.record.get(field), None | Some(Value::Null));
                    match gone.record.get(field) {
                        Some(value) if missing && !value.is_null() => {
                            fill.insert(field.to_owned(), value.clone());
                        }
                        _ => {}
                    }
                }
                let mut steps = Vec::new();
                if !fill.is_empty() {
                    steps.push((a, fill));
                }
                steps.push(delete(b));
                steps
            }
        };
        for (id, fields) in steps {
            self.edit_patient(id, fields, now)?;
        }
        Ok(())
    }

    /// Books a patient with a practitioner, with its outbox entry, in one transaction. Refused
    /// when invalid or when the practitioner is already booked then (as far as this desk
    /// knows; a clash with another desk's offline booking becomes a conflict on the server).
    pub fn book_appointment(
        &mut self,
        booking: &NewBooking,
        now: DateTime<Utc>,
    ) -> Result<AppointmentRecord> {
        let (conn, identity, cipher) = self.enrolled_mut()?;
        let record = AppointmentRecord {
            id: Uuid::now_v7(),
            branch_id: identity.branch_id.as_uuid(),
            patient_id: booking.patient_id,
            practitioner_id: booking.practitioner_id,
            starts_at: booking.starts_at,
            ends_at: booking.ends_at,
            status: AppointmentStatus::Booked,
            note: booking.note.clone(),
        };
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        check_booking(&tx, cipher, &record)?;
        insert_record(&tx, identity, cipher, record.id, &record, now)?;
        tx.commit()?;
        Ok(record)
    }

    /// Live bookings starting in `[from, to)`, earliest first.
    pub fn appointments_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AppointmentRecord>> {
        let (_, cipher) = self.enrolled()?;
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {} FROM appointments \
             WHERE deleted = 0 AND starts_at >= ?1 AND starts_at < ?2 ORDER BY starts_at, id",
            rows::APPOINTMENT_COLUMNS
        ))?;
        let mut found = statement.query(params![timestamp(from), timestamp(to)])?;
        let mut out = Vec::new();
        while let Some(row) = found.next()? {
            out.push(rows::read_appointment(cipher, row)?.0);
        }
        Ok(out)
    }

    /// The data side of a decision on two overlapping bookings (`a` the earlier made): the
    /// one that goes is cancelled, an ordinary change that merges like any other.
    pub fn resolve_overlap(
        &mut self,
        a: Uuid,
        b: Uuid,
        resolution: Resolution,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let cancel = |id| {
            (
                id,
                Fields::from([(
                    "status".to_owned(),
                    Value::from(AppointmentStatus::Cancelled.as_str()),
                )]),
            )
        };
        let step = match resolution {
            Resolution::KeepBoth => None,
            Resolution::KeepA => Some(cancel(b)),
            Resolution::KeepB => Some(cancel(a)),
            Resolution::MergeIntoA => {
                return Err(StoreError::InvalidRecord(vec![FieldError {
                    field: "resolution".to_owned(),
                    code: "resolution_not_allowed".to_owned(),
                    message: "Two bookings cannot be merged: keep both or cancel one.".to_owned(),
                }]));
            }
        };
        if let Some((id, fields)) = step {
            self.edit_row(Entity::Appointment, id, fields, now)?;
        }
        Ok(())
    }

    /// Records money into or out of this branch's drawer: a ledger entry, never changed after.
    /// A refund by someone who may not refund alone needs [`Store::record_cash_approved`].
    pub fn record_cash(
        &mut self,
        movement: &NewCashMovement,
        now: DateTime<Utc>,
    ) -> Result<CashMovementRecord> {
        self.record_cash_approved(movement, None, now)
    }

    /// [`Store::record_cash`] with an approval: at a desk that asks for a sign-in, a refund by
    /// someone whose roles lack `sales.refund` (STAFF) needs another person who has it (a
    /// manager) to enter their own PIN here (`approval`: who and their PIN), checked offline
    /// with the sign-in's lock-out. The entry names both; the server checks the same rule.
    pub fn record_cash_approved(
        &mut self,
        movement: &NewCashMovement,
        approval: Option<(Uuid, &str)>,
        now: DateTime<Utc>,
    ) -> Result<CashMovementRecord> {
        use kaunter_core::access::Permission;
        let approver = match (&self.signed_in, movement.kind) {
            (Some(signed), CashKind::Refund) if !signed.may(Permission::SalesRefund) => {
                let signed_id = signed.user_id;
                let (approver, pin) = approval.ok_or(StoreError::ApprovalRequired)?;
                if approver == signed_id {
                    return Err(StoreError::ApprovalRequired);
                }
                let approving = self.check_pin_at(approver, pin, now)?;
                if !approving.may(Permission::SalesRefund) {
                    return Err(StoreError::NotAllowed(Permission::SalesRefund.as_str()));
                }
                Some(approver)
            }
            _ => None,
        };
        let (conn, identity, cipher) = self.enrolled_mut()?;
        let record = CashMovementRecord {
            id: Uuid::now_v7(),
            branch_id: identity.branch_id.as_uuid(),
            kind: movement.kind,
            amount: movement.amount,
            patient_id: movement.patient_id,
            note: movement.note.clone(),
        };
        let errors = invalid_fields(record.problems());
        if !errors.is_empty() {
            return Err(StoreError::InvalidRecord(errors));
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let change = local_change(
            &tx,
            identity,
            Entity::CashMovement,
            record.id,
            record.fields(),
            now,
        )?;
        let mut row = LocalRow::new(Entity::CashMovement, identity.branch_id.as_uuid(), now);
        apply_change(&mut row.record, &change);
        save_row(&tx, cipher, record.id, &row, None)?;
        append_approved(&tx, cipher, &change, now, approver)?;
        tx.commit()?;
        Ok(record)
    }

    /// Adds a product or service to the business's catalogue (every branch gets it).
    pub fn add_catalogue_item(
        &mut self,
        item: &NewCatalogueItem,
        now: DateTime<Utc>,
    ) -> Result<CatalogueItemRecord> {
        let (conn, identity, cipher) = self.enrolled_mut()?;
        let record = CatalogueItemRecord {
            id: Uuid::now_v7(),
            branch_id: identity.branch_id.as_uuid(),
            kind: item.kind,
            code: item.code.clone(),
            name: item.name.clone(),
            price: item.price,
            tax: item.tax,
            duration_minutes: item.duration_minutes,
            active: item.active,
        };
        let errors = invalid_fields(record.problems());
        if !errors.is_empty() {
            return Err(StoreError::InvalidRecord(errors));
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        insert_record(&tx, identity, cipher, record.id, &record, now)?;
        tx.commit()?;
        Ok(record)
    }

    /// The business's catalogue as this desk holds it, by name (then code); inactive items only
    /// when asked for. Deleted items are never listed.
    pub fn catalogue(&self, include_inactive: bool) -> Result<Vec<CatalogueItemRecord>> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {} FROM catalogue_items WHERE deleted = 0 AND (active = 1 OR ?1)              ORDER BY name COLLATE NOCASE, code, id",
            rows::CATALOGUE_COLUMNS
        ))?;
        let mut found = statement.query(params![include_inactive])?;
        let mut items = Vec::new();
        while let Some(row) = found.next()? {
            items.push(rows::read_catalogue_item(row)?.0);
        }
        Ok(items)
    }

    /// One catalogue item as this desk holds it (deleted ones are not).
    pub fn catalogue_item(&self, id: Uuid) -> Result<Option<CatalogueItemRecord>> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {} FROM catalogue_items WHERE id = ?1 AND deleted = 0",
            rows::CATALOGUE_COLUMNS
        ))?;
        let mut found = statement.query(params![id.to_string()])?;
        found
            .next()?
            .map(|row| rows::read_catalogue_item(row).map(|(record, _)| record))
            .transpose()
    }

    /// How the person at the desk may see `patient`'s clinical record at `now`: everyone at a
    /// desk that asks nobody to sign in; otherwise people whose role reads clinical records,
    /// and whoever opened this record in an emergency, until the opening ends.
    pub fn clinical_access(
        &self,
        patient: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(ClinicalAccess, Option<DateTime<Utc>>)> {
        use kaunter_core::access::Permission;
        self.require(Permission::PatientsRead)?;
        let Some(signed) = &self.signed_in else {
            return Ok((ClinicalAccess::Clinical, None));
        };
        if signed.may(Permission::ClinicalRead) {
            return Ok((ClinicalAccess::Clinical, None));
        }
        let until: Option<String> = self
            .conn
            .query_row(
                "SELECT until FROM temp.emergency_openings WHERE user_id = ?1 AND patient_id = ?2",
                params![signed.user_id.to_string(), patient.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        match until.as_deref().map(parse_timestamp).transpose()? {
            Some(until) if until > now => Ok((ClinicalAccess::Emergency, Some(until))),
            _ => Ok((ClinicalAccess::Closed, None)),
        }
    }

    /// `patient`'s clinical record as far as the person at the desk may see it at `now`,
    /// newest entry first.
    pub fn clinical_record(&self, patient: Uuid, now: DateTime<Utc>) -> Result<ClinicalRecordView> {
        use kaunter_core::access::Permission;
        let (access, access_until) = self.clinical_access(patient, now)?;
        let (_, cipher) = self.enrolled()?;
        let exists: bool = self.conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM patients WHERE id = ?1 AND deleted = 0)",
            params![patient.to_string()],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(StoreError::NotFound("That patient".to_owned()));
        }
        let may = |permission: Permission| {
            self.signed_in
                .as_ref()
                .is_none_or(|signed| signed.may(permission))
        };
        let mut entries = Vec::new();
        if access != ClinicalAccess::Closed {
            let names: std::collections::HashMap<Uuid, String> = self
                .staff()?
                .into_iter()
                .map(|person| (person.user_id, person.name))
                .collect();
            let mut statement = self.conn.prepare_cached(&format!(
                "SELECT {} FROM clinical_entries WHERE patient_id = ?1 \
                 ORDER BY created_at DESC, id DESC",
                rows::CLINICAL_COLUMNS
            ))?;
            let mut found = statement.query(params![patient.to_string()])?;
            while let Some(row) = found.next()? {
                let (entry, written_at, synced) = rows::read_clinical(cipher, row)?;
                entries.push(ClinicalEntryView {
                    id: entry.id,
                    kind: entry.kind,
                    author_name: entry.author_id.and_then(|id| names.get(&id).cloned()),
                    body: entry.body,
                    written_at,
                    synced,
                });
            }
        }
        Ok(ClinicalRecordView {
            patient_id: patient,
            access,
            access_until,
            may_write: may(Permission::ClinicalWrite),
            may_open_in_emergency: access == ClinicalAccess::Closed && may(Permission::BreakGlass),
            entries,
        })
    }

    /// Writes a note or an allergy into `patient`'s clinical record: an entry never changed
    /// after (a correction is another entry), naming the person signed in as its author.
    pub fn add_clinical_entry(
        &mut self,
        patient: Uuid,
        kind: ClinicalKind,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<ClinicalEntryRecord> {
        use kaunter_core::access::Permission;
        if !kind.is_clinical() {
            return Err(StoreError::InvalidRecord(vec![FieldError {
                field: "kind".to_owned(),
                code: "invalid".to_owned(),
                message: "A clinical record takes notes and allergies.".to_owned(),
            }]));
        }
        self.require(Permission::ClinicalWrite)?;
        self.write_clinical(patient, kind, body, now)
    }

    /// Opens `patient`'s clinical record to the person signed in, who may not read clinical
    /// records, in an emergency ("break-glass"): allowed to those whose role says so, recorded
    /// in the record itself with `reason` (it reaches head office, flagged for review), and
    /// open to them for [`EMERGENCY_OPENING`] or until they sign out. Someone who reads
    /// clinical records anyway is simply shown the record, and nothing is recorded.
    pub fn open_clinical_record_in_emergency(
        &mut self,
        patient: Uuid,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<ClinicalRecordView> {
        use kaunter_core::access::Permission;
        let (access, _) = self.clinical_access(patient, now)?;
        if access == ClinicalAccess::Closed {
            self.require(Permission::BreakGlass)?;
            let user = self
                .signed_in
                .as_ref()
                .map(|signed| signed.user_id)
                .ok_or(StoreError::SignInRequired)?;
            self.write_clinical(patient, ClinicalKind::EmergencyAccess, reason, now)?;
            let until = now + chrono::Duration::from_std(EMERGENCY_OPENING).unwrap_or_default();
            self.conn.execute(
                "INSERT INTO temp.emergency_openings (user_id, patient_id, until) \
                 VALUES (?1, ?2, ?3) ON CONFLICT (user_id, patient_id) DO UPDATE SET until = ?3",
                params![user.to_string(), patient.to_string(), timestamp(until)],
            )?;
        }
        self.clinical_record(patient, now)
    }

    /// A new entry of `patient`'s clinical record at this desk's branch, with its outbox entry.
    fn write_clinical(
        &mut self,
        patient: Uuid,
        kind: ClinicalKind,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<ClinicalEntryRecord> {
        let author_id = self.signed_in.as_ref().map(|signed| signed.user_id);
        let (conn, identity, cipher) = self.enrolled_mut()?;
        let record = ClinicalEntryRecord {
            id: Uuid::now_v7(),
            branch_id: identity.branch_id.as_uuid(),
            patient_id: patient,
            kind,
            body: body.trim().to_owned(),
            author_id,
        };
        let errors = invalid_fields(record.problems());
        if !errors.is_empty() {
            return Err(StoreError::InvalidRecord(errors));
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let branch: Option<String> = tx
            .query_row(
                "SELECT branch_id FROM patients WHERE id = ?1 AND deleted = 0",
                params![patient.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        match branch {
            None => return Err(StoreError::NotFound("That patient".to_owned())),
            // The record travels with the patient: written at the patient's own branch.
            Some(branch) if parse_uuid(&branch)? != record.branch_id => {
                return Err(StoreError::OtherBranch);
            }
            Some(_) => {}
        }
        insert_record(&tx, identity, cipher, record.id, &record, now)?;
        tx.commit()?;
        Ok(record)
    }

    /// The drawer's balance in sen: derived from every movement this desk holds of its own
    /// branch (a desk of business scope holds the others' too), its own and the other desks',
    /// never a stored total.
    pub fn cash_balance_sen(&self) -> Result<i64> {
        let (identity, _) = self.enrolled()?;
        Ok(self.conn.query_row(
            "SELECT coalesce(sum(CASE WHEN kind IN ('payment', 'float_in') THEN amount_sen \
                                     ELSE -amount_sen END), 0) FROM cash_movements \
             WHERE branch_id = ?1",
            params![identity.branch_id.to_string()],
            |r| r.get(0),
        )?)
    }

    /// Every patient this desk holds, deleted ones included, as merged fields (with the
    /// tombstone) and their stamps: what the simulation and repair compare with the server.
    pub fn patient_states(&self) -> Result<Vec<(Uuid, Uuid, Fields, Stamps)>> {
        self.row_states(Entity::Patient)
    }

    /// Every row of `entity` this desk holds, like [`Store::patient_states`].
    pub fn row_states(&self, entity: Entity) -> Result<Vec<(Uuid, Uuid, Fields, Stamps)>> {
        let (_, cipher) = self.enrolled()?;
        let ids: Vec<String> = self
            .conn
            .prepare(&format!(
                "SELECT id FROM {} ORDER BY id",
                rows::table(entity)
            ))?
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let id = parse_uuid(&id)?;
            if let Some(row) = load_row(&self.conn, cipher, entity, id)? {
                let (fields, stamps) = record_into_parts(&row.record);
                out.push((id, row.branch_id, fields, stamps));
            }
        }
        Ok(out)
    }

    /// Patients matching the query, newest first, at most `limit`.
    pub fn search_patients(&self, query: &SearchQuery, limit: usize) -> Result<Vec<PatientView>> {
        let (_, cipher) = self.enrolled()?;
        let limit_sql = i64::try_from(limit).unwrap_or(i64::MAX);
        const COLUMNS: &str = "p.id, p.branch_id, p.full_name, p.id_type, p.id_number, p.phone, \
             p.date_of_birth, p.sex, p.created_at, \
             NOT EXISTS (SELECT 1 FROM outbox o WHERE o.row_id = p.id)";
        let (sql, key): (String, Option<Vec<u8>>) = match query {
            SearchQuery::IdNumber(digits) => (
                format!(
                    "SELECT {COLUMNS} FROM patients p WHERE p.id_number_bidx = ?1 AND p.deleted = 0 ORDER BY p.created_at DESC LIMIT ?2"
                ),
                Some(cipher.blind_index("patients", "id_number", digits)),
            ),
            SearchQuery::Phone(e164) => (
                format!(
                    "SELECT {COLUMNS} FROM patients p WHERE p.phone_bidx = ?1 AND p.deleted = 0 ORDER BY p.created_at DESC LIMIT ?2"
                ),
                Some(cipher.blind_index("patients", "phone", e164)),
            ),
            SearchQuery::All | SearchQuery::Text(_) => (
                format!(
                    "SELECT {COLUMNS} FROM patients p WHERE p.deleted = 0 ORDER BY p.created_at DESC"
                ),
                None,
            ),
        };
        let mut statement = self.conn.prepare(&sql)?;
        let mut rows = match &key {
            Some(key) => statement.query(params![key, limit_sql])?,
            None => statement.query([])?,
        };
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let (record, synced, created_at) = rows::read_patient(cipher, row)?;
            let keep = match query {
                SearchQuery::Text(needle) => {
                    record.full_name.to_lowercase().contains(needle.as_str())
                        || record.id_number.to_lowercase().contains(needle.as_str())
                        || record
                            .phone
                            .as_deref()
                            .is_some_and(|p| p.contains(needle.as_str()))
                }
                _ => true,
            };
            if keep {
                found.push(view(record, synced, created_at));
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// The oldest `max` unacknowledged outbox entries, decrypted, in sequence order.
    pub fn pending_batch(&self, max: usize) -> Result<Vec<OutboxEntry>> {
        self.pending_batch_after(0, max)
    }

    /// Like [`Store::pending_batch`], from the first entry after seq `after` on: the batch to
    /// send while the ones up to `after` are on their way.
    pub fn pending_batch_after(&self, after: i64, max: usize) -> Result<Vec<OutboxEntry>> {
        let (_, cipher) = self.enrolled()?;
        let mut statement = self.conn.prepare_cached(
            "SELECT seq, payload, schema_version, actor, approver FROM outbox \
             WHERE rejected_code IS NULL AND seq > ?2 ORDER BY seq LIMIT ?1",
        )?;
        let mut rows = statement.query(params![i64::try_from(max).unwrap_or(i64::MAX), after])?;
        let mut entries = Vec::new();
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let payload: Vec<u8> = row.get(1)?;
            let change = open_outbox_payload(cipher, seq, &payload)?;
            let actor: Option<String> = row.get(3)?;
            let approver: Option<String> = row.get(4)?;
            entries.push(OutboxEntry {
                actor: actor.as_deref().map(parse_uuid).transpose()?,
                approver: approver.as_deref().map(parse_uuid).transpose()?,
                seq,
                schema_version: row.get(2)?,
                change,
            });
        }
        Ok(entries)
    }

    /// One outbox entry by its seq, whether pending or refused; `None` once acknowledged.
    pub fn outbox_entry(&self, seq: i64) -> Result<Option<OutboxEntry>> {
        let (_, cipher) = self.enrolled()?;
        type Stored = (Vec<u8>, u32, Option<String>, Option<String>);
        let payload: Option<Stored> = self
            .conn
            .query_row(
                "SELECT payload, schema_version, actor, approver FROM outbox WHERE seq = ?1",
                params![seq],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        payload
            .map(|(payload, schema_version, actor, approver)| {
                let change = open_outbox_payload(cipher, seq, &payload)?;
                Ok(OutboxEntry {
                    actor: actor.as_deref().map(parse_uuid).transpose()?,
                    approver: approver.as_deref().map(parse_uuid).transpose()?,
                    seq,
                    schema_version,
                    change,
                })
            })
            .transpose()
    }

    /// The digest of this desk's rows (see `kaunter_protocol::merge::row_digest`), as 16 hex
    /// digits like a pull checkpoint's.
    pub fn state_digest(&self) -> Result<String> {
        let digest: i64 = self
            .conn
            .query_row("SELECT state_digest FROM sync_state", [], |r| r.get(0))?;
        Ok(format!("{:016x}", digest as u64))
    }

    /// Downloads the branch again from the start, for a desk away past the tombstone horizon:
    /// drops every row with nothing in the outbox (the server has them, or purged them) and
    /// keeps those with local changes waiting, which the server merges or refuses as usual.
    pub fn begin_full_resync(&mut self) -> Result<()> {
        let (conn, _, cipher) = self.enrolled_mut()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        full_resync(&tx, cipher)?;
        tx.commit()?;
        Ok(())
    }

    /// The server has handled every entry up to `acked_seq`: drop them from the outbox, except
    /// those it refused, which stay (out of the next batches) with the reason, for a person to
    /// see and deal with.
    pub fn acknowledge(&mut self, acked_seq: i64, rejected: &[RejectedEntry]) -> Result<()> {
        self.acknowledge_through(acked_seq, acked_seq, rejected)
    }

    /// Like [`Store::acknowledge`], for one batch's answer: the entries up to `acked_seq` are
    /// handled, and `server_high_water` is the device's high-water mark the server answered
    /// with, which may be past them (a later batch, sent while this one was on its way, is
    /// applied already; its own answer acknowledges it, with its refusals). A mark past
    /// anything this database made means it is an old copy, whatever `acked_seq` is.
    pub fn acknowledge_through(
        &mut self,
        acked_seq: i64,
        server_high_water: i64,
        rejected: &[RejectedEntry],
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last_seq: i64 = tx.query_row("SELECT last_seq FROM sync_state", [], |r| r.get(0))?;
        let seen = acked_seq.max(server_high_water);
        if seen > last_seq {
            // The server has seen changes this database never made: it is an old copy (a
            // restored backup). New changes would be mistaken for replays, so stop here.
            return Err(StoreError::Corrupt(format!(
                "the server has acknowledged change {seen} but this desk has only made {last_seq}; this database is older than the server's record of it"
            )));
        }
        for refusal in rejected.iter().filter(|refusal| refusal.seq <= acked_seq) {
            tx.execute(
                "UPDATE outbox SET rejected_code = ?2, rejected_message = ?3 WHERE seq = ?1",
                params![refusal.seq, refusal.code, refusal.message],
            )?;
            // The row is gone from the server for good: this desk's copy goes too (the refused
            // change stays listed, so the person sees what could not be saved).
            if refusal.code == error_code::ROW_PURGED {
                let target: Option<(String, String)> = tx
                    .query_row(
                        "SELECT entity, row_id FROM outbox WHERE seq = ?1",
                        params![refusal.seq],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()?;
                if let (Some((entity, id)), Some(cipher)) = (target, self.cipher.as_ref()) {
                    let entity = Entity::parse(&entity)
                        .ok_or_else(|| StoreError::Corrupt(format!("outbox entity {entity:?}")))?;
                    drop_row(&tx, cipher, entity, parse_uuid(&id)?)?;
                }
            }
        }
        tx.execute(
            "DELETE FROM outbox WHERE seq <= ?1 AND rejected_code IS NULL",
            params![acked_seq],
        )?;
        tx.execute(
            "UPDATE sync_state SET acked_seq = MAX(acked_seq, ?1)",
            params![acked_seq],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Applies one page pulled from the server and advances the cursor, in one transaction.
    /// Each change is merged field by field into the local row, so a local edit not yet pushed
    /// keeps the fields it changed when it is the later write, and loses them when it is not.
    pub fn apply_pulled(&mut self, page: &PullResponse, now: DateTime<Utc>) -> Result<usize> {
        let cursor = self.sync_state()?.pull_cursor;
        Ok(self.apply_pulled_from(cursor, page, now)?.unwrap_or(0))
    }

    /// [`Store::apply_pulled`] for a page asked for from `from_cursor`. If the desk's cursor is
    /// no longer that (a resync or a discard reset it while the page was on its way), the page
    /// is dropped unapplied (`Ok(None)`): applying it would skip everything before it.
    pub fn apply_pulled_from(
        &mut self,
        from_cursor: i64,
        page: &PullResponse,
        now: DateTime<Utc>,
    ) -> Result<Option<usize>> {
        let (conn, _, cipher) = self.enrolled_mut()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current: i64 = tx.query_row("SELECT pull_cursor FROM sync_state", [], |r| r.get(0))?;
        if current != from_cursor {
            return Ok(None);
        }
        // A download of the whole branch builds its random-keyed indexes once, at its end.
        if from_cursor == 0 && page.has_more {
            rows::drop_deferred_indexes(&tx)?;
        }
        let mut clock = read_clock(&tx)?;
        let now_millis = u64::try_from(now.timestamp_millis()).unwrap_or(0);
        let mut applied = 0;
        // The desk digest moves once per page: out go the rows' old digests, in their new ones.
        let (mut digest_out, mut digest_in) = (0u64, 0u64);
        // A row comes as its winning writes, one change per stamp, adjacent: all of them are
        // merged before the row is checked and written (one alone may not be a whole row).
        let same_row = |a: &PulledChange, b: &PulledChange| {
            (a.cursor, a.change.entity, a.change.row_id)
                == (b.cursor, b.change.entity, b.change.row_id)
        };
        for writes in page.changes.chunk_by(same_row) {
            let first = &writes[0];
            let (entity, row_id) = (first.change.entity, first.change.row_id);
            let mut row = match load_row(&tx, cipher, entity, row_id)? {
                Some(row) => row,
                None => {
                    let created = first.created_at.unwrap_or(first.change.recorded_at);
                    LocalRow::new(entity, first.change.branch_id, created)
                }
            };
            let mut won = false;
            for pulled in writes {
                let change = &pulled.change;
                if apply_change(&mut row.record, change) {
                    row.updated_at = row.updated_at.max(change.recorded_at);
                    won = true;
                }
                // A stamp far ahead of this desk's clock (its clock is wrong, or the other
                // desk's was) is merged like any other but does not drag this clock along.
                let _ = clock.observe(Hlc::from_u64(change.stamp.hlc), now_millis);
            }
            if won {
                let new = rows::write_row(&tx, cipher, row_id, &row, Some(first.cursor))?;
                digest_out = digest_out.wrapping_add(row.loaded_digest);
                digest_in = digest_in.wrapping_add(new);
                applied += 1;
            } else {
                rows::touch_cursor(&tx, entity, row_id, first.cursor)?;
            }
        }
        write_clock(&tx, &clock)?;
        rows::move_digest(&tx, digest_out, digest_in)?;
        tx.execute(
            "UPDATE sync_state SET pull_cursor = MAX(pull_cursor, ?1), open_conflicts = ?2",
            params![page.next_cursor, page.open_conflicts],
        )?;
        // On the last page this desk has every change up to the server's snapshot, so a local
        // tombstone whose last change is at or below the horizon is one the server has purged.
        if page.checkpoint.is_some() {
            purge_tombstones(&tx, cipher, page.purged_seq.unwrap_or(0))?;
        }
        if !page.has_more {
            rows::create_deferred_indexes(&tx)?;
        }
        tx.commit()?;
        Ok(Some(applied))
    }

    pub fn record_sync_success(&mut self, at: DateTime<Utc>) -> Result<()> {
        self.conn.execute(
            "UPDATE sync_state SET last_attempt_at = ?1, last_synced_at = ?1, last_error = NULL",
            params![timestamp(at)],
        )?;
        Ok(())
    }

    pub fn record_sync_failure(&mut self, at: DateTime<Utc>, error: &str) -> Result<()> {
        self.conn.execute(
            "UPDATE sync_state SET last_attempt_at = ?1, last_error = ?2",
            params![timestamp(at), error],
        )?;
        Ok(())
    }

    /// Gives up a change the server refused, so this desk holds the server's version of the
    /// record again: the refused entries of that record leave the outbox, this desk's copy of it
    /// is dropped, and the branch is downloaded again at the next sync (rows with changes still
    /// in the outbox are kept; on a large branch the download takes a while). Refused while a later
    /// change to the same record still waits to be sent: sync first.
    pub fn discard_refused(&mut self, seq: i64) -> Result<()> {
        let (conn, _, cipher) = self.enrolled_mut()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let target: Option<(String, String)> = tx
            .query_row(
                "SELECT entity, row_id FROM outbox WHERE seq = ?1 AND rejected_code IS NOT NULL",
                params![seq],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (entity, row_id) =
            target.ok_or_else(|| StoreError::NotFound(format!("refused change {seq}")))?;
        let waiting: i64 = tx.query_row(
            "SELECT count(*) FROM outbox WHERE row_id = ?1 AND rejected_code IS NULL",
            params![row_id],
            |r| r.get(0),
        )?;
        if waiting > 0 {
            return Err(StoreError::InvalidRecord(vec![FieldError {
                field: "seq".to_owned(),
                code: "later_changes_pending".to_owned(),
                message: "Later changes to this record are still waiting to be sent. Sync first, then discard.".to_owned(),
            }]));
        }
        tx.execute(
            "DELETE FROM outbox WHERE row_id = ?1 AND rejected_code IS NOT NULL",
            params![row_id],
        )?;
        let entity = Entity::parse(&entity)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox entity {entity:?}")))?;
        drop_row(&tx, cipher, entity, parse_uuid(&row_id)?)?;
        // The server's copy comes back with a download of the branch: the next pull starts from
        // 0, and its first page, once the server has sent it, replaces what this desk holds (a
        // pull from 0 alone would not remove rows the server purged while it was away). Until
        // then the desk keeps everything, offline or suspended.
        tx.execute("UPDATE sync_state SET pull_cursor = 0", [])?;
        tx.commit()?;
        Ok(())
    }

    /// The changes the server refused, oldest first, with its reasons.
    pub fn refused_changes(&self) -> Result<Vec<RefusedChangeView>> {
        let (_, cipher) = self.enrolled()?;
        let mut statement = self.conn.prepare(
            "SELECT seq, payload, rejected_code, rejected_message FROM outbox
             WHERE rejected_code IS NOT NULL ORDER BY seq",
        )?;
        let mut rows = statement.query([])?;
        let mut refused = Vec::new();
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let payload: Vec<u8> = row.get(1)?;
            let change = open_outbox_payload(cipher, seq, &payload)?;
            refused.push(RefusedChangeView {
                seq,
                entity: change.entity.as_str().to_owned(),
                row_id: change.row_id,
                fields: change.fields.keys().cloned().collect(),
                code: row.get(2)?,
                message: row.get(3)?,
                recorded_at: change.recorded_at,
            });
        }
        Ok(refused)
    }

    pub fn sync_state(&self) -> Result<SyncState> {
        let (pending, oldest, rejected): (i64, Option<String>, i64) = self.conn.query_row(
            "SELECT COUNT(*) FILTER (WHERE rejected_code IS NULL),
                    MIN(created_at) FILTER (WHERE rejected_code IS NULL),
                    COUNT(*) FILTER (WHERE rejected_code IS NOT NULL)
             FROM outbox",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let state = self.conn.query_row(
            "SELECT last_seq, acked_seq, pull_cursor, last_attempt_at, last_synced_at, last_error, \
                 open_conflicts FROM sync_state",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, u32>(6)?,
                ))
            },
        )?;
        Ok(SyncState {
            pending: u32::try_from(pending).unwrap_or(u32::MAX),
            rejected: u32::try_from(rejected).unwrap_or(u32::MAX),
            open_conflicts: state.6,
            oldest_pending_at: parse_optional_timestamp(oldest)?,
            last_seq: state.0,
            acked_seq: state.1,
            pull_cursor: state.2,
            last_attempt_at: parse_optional_timestamp(state.3)?,
            last_synced_at: parse_optional_timestamp(state.4)?,
            last_error: state.5,
        })
    }

    /// `PRAGMA integrity_check`: "ok" for a healthy file.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
    }

    /// Writes the whole WAL back into the main file and empties it (used by tests that inspect
    /// both files). The checkpoint thread's own pass can hold the checkpoint for a moment, and
    /// SQLite then reports this one as blocked rather than waiting: it is tried again, for up
    /// to five seconds, and an error says so if it never completes.
    pub fn checkpoint(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let blocked: i64 =
                self.conn
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
            if blocked == 0 {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some("the WAL checkpoint stayed blocked for five seconds".to_owned()),
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The change an outbox row holds: its payload decrypted (bound to the row's seq) and decoded.
fn open_outbox_payload(cipher: &FieldCipher, seq: i64, payload: &[u8]) -> Result<Change> {
    let json = cipher.decrypt("outbox", "payload", &seq.to_string(), payload)?;
    serde_json::from_slice(&json)
        .map_err(|e| StoreError::Corrupt(format!("outbox entry {seq}: {e}")))
}

/// Drops every row with nothing in the outbox, recomputes the digest from the rows kept and
/// sets the pull cursor to 0, inside `tx` (one transaction: a crash half-way leaves nothing
/// half-done).
fn full_resync(tx: &Transaction<'_>, cipher: &FieldCipher) -> Result<()> {
    for entity in Entity::ALL {
        tx.execute(
            &format!(
                "DELETE FROM {} WHERE id NOT IN (SELECT row_id FROM outbox)",
                rows::table(entity)
            ),
            [],
        )?;
    }
    tx.execute(
        "UPDATE sync_state SET pull_cursor = 0, state_digest = 0",
        [],
    )?;
    let kept: Vec<(String, String)> = tx
        .prepare("SELECT DISTINCT entity, row_id FROM outbox")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut digest = 0u64;
    for (entity, id) in kept {
        let entity = Entity::parse(&entity)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox entity {entity:?}")))?;
        if let Some(row) = load_row(tx, cipher, entity, parse_uuid(&id)?)? {
            digest = digest.wrapping_add(row.loaded_digest);
        }
    }
    rows::move_digest(tx, 0, digest)
}

/// Removes a row and takes it out of the desk's digest.
fn drop_row(tx: &Transaction<'_>, cipher: &FieldCipher, entity: Entity, id: Uuid) -> Result<()> {
    if let Some(row) = load_row(tx, cipher, entity, id)? {
        rows::move_digest(tx, row.loaded_digest, 0)?;
        tx.execute(
            &format!("DELETE FROM {} WHERE id = ?1", rows::table(entity)),
            params![id.to_string()],
        )?;
    }
    Ok(())
}

/// Drops the local tombstones the server has purged, unless a local change to them still waits
/// in the outbox. Called on the last page of a pull, when this desk has every change up to the
/// server's snapshot: a tombstone whose last change it has seen is at or below `purged_seq`,
/// or one none of whose changes came back at all (this desk's own delete, acknowledged, purged
/// before it could be pulled back: changes vanish from the log only by a purge), is gone from
/// the server.
fn purge_tombstones(tx: &Transaction<'_>, cipher: &FieldCipher, purged_seq: i64) -> Result<()> {
    if purged_seq <= 0 {
        return Ok(());
    }
    for entity in Entity::ALL.into_iter().filter(|entity| !entity.is_ledger()) {
        let ids: Vec<String> = tx
            .prepare_cached(&format!(
                "SELECT id FROM {} WHERE deleted = 1 \
                   AND (server_cursor IS NULL OR server_cursor <= ?1) \
                   AND id NOT IN (SELECT row_id FROM outbox)",
                rows::table(entity)
            ))?
            .query_map(params![purged_seq], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for id in ids {
            drop_row(tx, cipher, entity, parse_uuid(&id)?)?;
        }
    }
    tx.execute("UPDATE sync_state SET purged_seq = ?1", params![purged_seq])?;
    Ok(())
}

/// A record's problems as field errors.
fn invalid_fields(problems: Vec<(&'static str, String)>) -> Vec<FieldError> {
    problems
        .into_iter()
        .map(|(field, message)| FieldError {
            field: field.to_owned(),
            code: "invalid".to_owned(),
            message,
        })
        .collect()
}

/// Writes a new row and its outbox entry (one change setting every field) inside `tx`.
fn insert_record<T: EntityRecord>(
    tx: &Transaction<'_>,
    identity: &DeskIdentity,
    cipher: &FieldCipher,
    id: Uuid,
    record: &T,
    now: DateTime<Utc>,
) -> Result<()> {
    let change = local_change(tx, identity, T::ENTITY, id, record.fields(), now)?;
    let mut row = LocalRow::new(T::ENTITY, identity.branch_id.as_uuid(), now);
    apply_change(&mut row.record, &change);
    save_row(tx, cipher, id, &row, None)?;
    append_outbox(tx, cipher, &change, now)?;
    Ok(())
}

/// Refuses a booking that is invalid or takes a slot this desk knows is taken.
fn check_booking(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    booking: &AppointmentRecord,
) -> Result<()> {
    let mut errors = invalid_fields(booking.problems());
    if errors.is_empty() && booking.status.holds_slot() {
        let mut statement = tx.prepare_cached(&format!(
            "SELECT {} FROM appointments \
             WHERE practitioner_id = ?1 AND id <> ?2 AND deleted = 0 AND branch_id = ?5 \
               AND status IN ('booked', 'arrived') AND starts_at < ?4 AND ends_at > ?3 \
             LIMIT 1",
            rows::APPOINTMENT_COLUMNS
        ))?;
        // Within the booking's own branch, as the server compares them.
        let mut found = statement.query(params![
            booking.practitioner_id.to_string(),
            booking.id.to_string(),
            timestamp(booking.starts_at),
            timestamp(booking.ends_at),
            booking.branch_id.to_string(),
        ])?;
        if let Some(row) = found.next()? {
            let (other, _) = rows::read_appointment(cipher, row)?;
            errors.push(FieldError {
                field: "starts_at".to_owned(),
                code: "practitioner_busy".to_owned(),
                message: format!(
                    "The practitioner is already booked from {} to {} UTC.",
                    other.starts_at.format("%H:%M"),
                    other.ends_at.format("%H:%M")
                ),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(StoreError::InvalidRecord(errors))
    }
}

fn append_outbox(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    change: &Change,
    now: DateTime<Utc>,
) -> Result<i64> {
    append_approved(tx, cipher, change, now, None)
}

/// [`append_outbox`], naming who approved the write with their own PIN (`approver`).
fn append_approved(
    tx: &Transaction<'_>,
    cipher: &FieldCipher,
    change: &Change,
    now: DateTime<Utc>,
    approver: Option<Uuid>,
) -> Result<i64> {
    // The licence lease allows it (read-only once the subscription ended; see licence.rs). An
    // emergency opening of a clinical record is the record of a read, which no state refuses:
    // it waits in the outbox like anything else.
    let emergency_opening = change.entity == Entity::ClinicalEntry
        && change.fields.get("kind").and_then(Value::as_str)
            == Some(ClinicalKind::EmergencyAccess.as_str());
    if !emergency_opening {
        crate::licence::writes_allowed(tx, now)?;
    }
    let seq: i64 = tx
        .prepare_cached("UPDATE sync_state SET last_seq = last_seq + 1 RETURNING last_seq")?
        .query_row([], |r| r.get(0))?;
    let json =
        Zeroizing::new(serde_json::to_vec(change).map_err(|e| StoreError::Corrupt(e.to_string()))?);
    let payload = cipher.encrypt("outbox", "payload", &seq.to_string(), &json)?;
    let (entity, row_id) = (change.entity.as_str(), change.row_id.to_string());
    // No write of a person's goes out unsigned from a desk that asks for a sign-in, whichever
    // command made it (the commands check the permission first; this is the floor).
    let unsigned: bool = tx
        .prepare_cached(
            "SELECT coalesce((SELECT value = '1' FROM meta WHERE key = 'sign_in_required'), 0)
                    AND NOT EXISTS (SELECT 1 FROM temp.desk_session)",
        )?
        .query_row([], |r| r.get(0))?;
    if unsigned {
        return Err(StoreError::SignInRequired);
    }
    // The person signed in at the desk, if anyone (the connection's desk_session).
    tx.prepare_cached(
        "INSERT INTO outbox (seq, entity, row_id, payload, created_at, schema_version, actor, \
             approver) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT actor FROM temp.desk_session LIMIT 1), ?7)",
    )?
    .execute(params![
        seq,
        entity,
        row_id,
        payload,
        timestamp(now),
        kaunter_protocol::SCHEMA_VERSION,
        approver.map(|id| id.to_string()),
    ])?;
    Ok(seq)
}

/// The desk's clock as persisted with the last write.
fn read_clock(conn: &Connection) -> Result<HlcClock> {
    let packed: i64 = conn
        .prepare_cached("SELECT hlc FROM sync_state")?
        .query_row([], |r| r.get(0))?;
    // Stored as the u64's bits in SQLite's signed integer.
    Ok(HlcClock::new(Hlc::from_u64(packed as u64)).with_max_drift_ms(MAX_DRIFT_MS))
}

fn write_clock(conn: &Connection, clock: &HlcClock) -> Result<()> {
    conn.prepare_cached("UPDATE sync_state SET hlc = ?1")?
        .execute(params![clock.last().as_u64() as i64])?;
    Ok(())
}

/// A change made on this desk now: a fresh stamp from the persisted clock (saved in the same
/// transaction, so no stamp is ever issued twice, even across a crash).
fn local_change(
    tx: &Transaction<'_>,
    identity: &DeskIdentity,
    entity: Entity,
    row_id: Uuid,
    fields: Fields,
    now: DateTime<Utc>,
) -> Result<Change> {
    let mut clock = read_clock(tx)?;
    let hlc = clock.tick(u64::try_from(now.timestamp_millis()).unwrap_or(0));
    write_clock(tx, &clock)?;
    Ok(Change {
        entity,
        row_id,
        branch_id: identity.branch_id.as_uuid(),
        stamp: stamp_to_wire(kaunter_core::Stamp::new(hlc, identity.device_id)),
        fields,
        recorded_at: now,
    })
}

fn view(record: PatientRecord, synced: bool, created_at: DateTime<Utc>) -> PatientView {
    let id_number = match record.id_type {
        kaunter_protocol::IdType::Mykad => format_digits(&record.id_number),
        _ => record.id_number,
    };
    PatientView {
        id: record.id,
        full_name: record.full_name,
        id_type: record.id_type,
        id_number,
        phone: record.phone,
        date_of_birth: record.date_of_birth,
        sex: record.sex,
        created_at,
        synced,
    }
}

/// The licence key pinned in the OS keyring for this desk's device, if any.
fn keyring_pin(secrets: &dyn SecretStore, identity: &DeskIdentity) -> Result<Option<String>> {
    let device = identity.device_id.to_string();
    Ok(secrets.get(SECRET_LICENCE_PIN)?.and_then(|stored| {
        stored
            .split_once(' ')
            .filter(|(pinned_for, _)| *pinned_for == device)
            .map(|(_, key)| key.to_owned())
    }))
}

fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
            r.get(0)
        })
        .optional()?)
}

fn meta_set(conn: &Connection, key: &str, value: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

fn read_identity(conn: &Connection) -> Result<Option<DeskIdentity>> {
    let Some(tenant_id) = meta_get(conn, "tenant_id")? else {
        return Ok(None);
    };
    let get = |key: &str| -> Result<String> {
        meta_get(conn, key)?.ok_or_else(|| StoreError::Corrupt(format!("enrolment lacks {key}")))
    };
    let id = |text: String| -> Result<Uuid> { parse_uuid(&text) };
    Ok(Some(DeskIdentity {
        tenant_id: TenantId::from_uuid(id(tenant_id)?),
        branch_id: BranchId::from_uuid(id(get("branch_id")?)?),
        device_id: DeviceId::from_uuid(id(get("device_id")?)?),
        device_name: get("device_name")?,
        server_url: get("server_url")?,
        business_name: get("business_name")?,
        branch_name: get("branch_name")?,
    }))
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
