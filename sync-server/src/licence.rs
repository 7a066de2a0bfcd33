//! Licence leases: what the server vouches for about a business, signed with its Ed25519
//! licence key (`signing_keys`, made once after the migrations), for one desk to enforce offline
//! (kaunter-core's `lease_schedule` and `lease_access`). `GET /v1/licence` hands the desk a
//! fresh one every sync round, whatever the subscription's state: a desk in grace or suspended
//! learns it that way too.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};
use kaunter_core::subscription::lease_schedule;
use kaunter_protocol::http::{Licence, SignedLicence};

use crate::auth::Device;
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::subscription;

/// The layout version of [`Licence`] this server writes.
pub const LICENCE_VERSION: u32 = 1;

/// The server's licence key.
async fn signing_key(tx: &TenantTx<'_>) -> Result<SigningKey> {
    let row = tx
        .query_opt_cached(
            "SELECT seed FROM signing_keys WHERE purpose = 'licence'",
            &[],
        )
        .await?
        .ok_or_else(|| Error::Internal("the licence key is missing: run the migrations".into()))?;
    let seed: Vec<u8> = row.try_get(0)?;
    let seed: zeroize::Zeroizing<[u8; 32]> = zeroize::Zeroizing::new(
        seed.as_slice()
            .try_into()
            .map_err(|_| Error::Internal("the licence key is not 32 bytes".into()))?,
    );
    Ok(SigningKey::from_bytes(&seed))
}

/// A lease for `device` of the business, as of `now`, signed.
pub async fn issue(
    tx: &TenantTx<'_>,
    device: &Device,
    now: DateTime<Utc>,
) -> Result<SignedLicence> {
    let current = subscription::load(tx, device.tenant_id).await?;
    let modules = subscription::modules(tx, device.tenant_id).await?;
    let (full_until, read_only_until) = lease_schedule(&current, now);
    let limits = current.limits();
    let licence = Licence {
        version: LICENCE_VERSION,
        tenant_id: device.tenant_id.as_uuid(),
        device_id: device.device_id.as_uuid(),
        plan: current.plan().as_str().to_owned(),
        modules: modules.iter().map(|m| m.as_str().to_owned()).collect(),
        max_modules: limits.modules,
        max_users: limits.users,
        max_devices: limits.devices,
        state: current.state_at(now).as_str().to_owned(),
        issued_at: now,
        full_until,
        read_only_until,
    };
    let payload = serde_json::to_vec(&licence)
        .map_err(|error| Error::Internal(format!("a licence did not serialise: {error}")))?;
    let key = signing_key(tx).await?;
    let signature = key.sign(&payload);
    Ok(SignedLicence {
        payload: STANDARD.encode(&payload),
        signature: STANDARD.encode(signature.to_bytes()),
        public_key: STANDARD.encode(key.verifying_key().to_bytes()),
    })
}
