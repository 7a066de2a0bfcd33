//! Head-office operations before there is a head-office UI: create a business, add a branch,
//! issue an enrolment code, revoke a device. Used by `sync-server admin ...`, by tests and by the
//! desktop end-to-end script.
//!
//! They run as the app role inside a [`TenantTx`], so row-level security applies to them exactly
//! as to requests: a business is created by scoping a transaction to its new id first.

use std::time::Duration;

use kaunter_protocol::http::PullScope;
use serde::Serialize;
use tokio_postgres::error::SqlState;

use crate::db::{Pool, TenantTx};
use crate::enrolment_code::EnrolmentCode;
use crate::error::{Error, Result};
use crate::ids::{BranchId, DeviceId, TenantId};

/// Enrolment codes live a week unless told otherwise.
pub const DEFAULT_ENROLMENT_CODE_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

const NAME_MAX_CHARS: usize = 200;
const BRANCH_CODE_MAX_CHARS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CreatedBusiness {
    pub tenant_id: TenantId,
    /// The business's first branch.
    pub branch_id: BranchId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CreatedBranch {
    pub tenant_id: TenantId,
    pub branch_id: BranchId,
}

/// Creates a business with its first branch. `branch_code` (1-16 letters or digits, stored
/// upper-case) is the short code printed in document numbers.
pub async fn create_business(
    pool: &Pool,
    name: &str,
    branch_name: &str,
    branch_code: Option<&str>,
) -> Result<CreatedBusiness> {
    let name = checked_name("business name", name)?;
    let branch_name = checked_name("branch name", branch_name)?;
    let branch_code = branch_code.map(checked_branch_code).transpose()?;
    let tenant_id = TenantId::new_v7();
    let branch_id = BranchId::new_v7();

    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    let inserted = tx
        .execute(
            "INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)",
            &[&tenant_id, &name],
        )
        .await;
    match inserted {
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(Error::InvalidInput(
                "another business already has that name".to_owned(),
            ));
        }
        other => other?,
    };
    insert_branch(&tx, branch_id, branch_name, branch_code.as_deref()).await?;
    insert_settings(&tx, kaunter_core::business::Language::Malay).await?;
    // An operator's business is a clinic on the usual trial until it pays.
    crate::subscription::start(
        &tx,
        tenant_id,
        chrono::Utc::now(),
        kaunter_core::subscription::Module::Clinic,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(%tenant_id, %branch_id, "business created");
    Ok(CreatedBusiness {
        tenant_id,
        branch_id,
    })
}

/// Adds a branch to an existing business.
pub async fn add_branch(
    pool: &Pool,
    tenant_id: TenantId,
    name: &str,
    code: Option<&str>,
) -> Result<CreatedBranch> {
    let name = checked_name("branch name", name)?;
    let code = code.map(checked_branch_code).transpose()?;
    let branch_id = BranchId::new_v7();

    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    require_tenant(&tx).await?;
    insert_branch(&tx, branch_id, name, code.as_deref()).await?;
    tx.commit().await?;
    tracing::info!(%tenant_id, %branch_id, "branch added");
    Ok(CreatedBranch {
        tenant_id,
        branch_id,
    })
}

/// Issues a single-use enrolment code for `branch`, valid for `ttl`, and returns it in the form
/// to show a person (`XXXX-XXXX-XXXX`). Only its hash is stored.
pub async fn create_enrolment_code(
    pool: &Pool,
    tenant_id: TenantId,
    branch_id: BranchId,
    ttl: Duration,
) -> Result<String> {
    create_enrolment_code_with_scope(pool, tenant_id, branch_id, ttl, PullScope::Branch).await
}

/// [`create_enrolment_code`] for a desk that pulls `scope`.
pub async fn create_enrolment_code_with_scope(
    pool: &Pool,
    tenant_id: TenantId,
    branch_id: BranchId,
    ttl: Duration,
    scope: PullScope,
) -> Result<String> {
    let ttl_secs = code_ttl_secs(ttl)?;
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    require_tenant(&tx).await?;
    let (code, _) = create_enrolment_code_in(&tx, branch_id, ttl_secs, scope, None).await?;
    tx.commit().await?;
    Ok(code)
}

/// Issues a reconnect code for `device`, a desk head office removed: only that desk can use it,
/// to take its place again with its data and outbox (see `routes::enrol`). The code is of the
/// desk's branch and keeps the desk's scope. A desk that is not revoked is
/// [`Error::DeviceNotReplaceable`].
pub async fn create_reconnect_code(
    pool: &Pool,
    tenant_id: TenantId,
    device: DeviceId,
    ttl: Duration,
) -> Result<String> {
    let ttl_secs = code_ttl_secs(ttl)?;
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    require_tenant(&tx).await?;
    let branch = reconnectable_branch(&tx, device).await?;
    // The scope is not the code's to say: the desk keeps the one it had.
    let (code, _) =
        create_enrolment_code_in(&tx, branch, ttl_secs, PullScope::Branch, Some(device)).await?;
    tx.commit().await?;
    Ok(code)
}

/// The branch of `device` when it is a revoked desk of this business (locked until commit).
pub(crate) async fn reconnectable_branch(tx: &TenantTx<'_>, device: DeviceId) -> Result<BranchId> {
    let row = tx
        .query_opt(
            "SELECT branch_id, revoked_at IS NOT NULL FROM devices
             WHERE tenant_id = $1 AND device_id = $2 FOR UPDATE",
            &[&tx.tenant(), &device],
        )
        .await?
        .ok_or(Error::UnknownRecord)?;
    let revoked: bool = row.try_get(1)?;
    if !revoked {
        return Err(Error::DeviceNotReplaceable);
    }
    Ok(row.try_get(0)?)
}

fn code_ttl_secs(ttl: Duration) -> Result<i64> {
    i64::try_from(ttl.as_secs())
        .ok()
        .filter(|secs| *secs > 0 && *secs <= 365 * 24 * 60 * 60)
        .ok_or_else(|| {
            Error::InvalidInput(
                "an enrolment code must live between 1 second and 1 year".to_owned(),
            )
        })
}

/// [`create_enrolment_code`] inside the caller's transaction: the code and when it expires.
/// An unknown branch is [`Error::UnknownBranch`], a closed one [`Error::BranchClosed`].
pub(crate) async fn create_enrolment_code_in(
    tx: &TenantTx<'_>,
    branch_id: BranchId,
    ttl_secs: i64,
    scope: PullScope,
    replaces_device: Option<DeviceId>,
) -> Result<(String, chrono::DateTime<chrono::Utc>)> {
    let tenant_id = tx.tenant();
    let open: bool = tx
        .query_opt(
            "SELECT closed_at IS NULL FROM branches WHERE tenant_id = $1 AND branch_id = $2
             FOR SHARE",
            &[&tenant_id, &branch_id],
        )
        .await?
        .ok_or(Error::UnknownBranch(branch_id))?
        .try_get(0)?;
    if !open {
        return Err(Error::BranchClosed);
    }
    let code = EnrolmentCode::generate()?;
    let expires_at = tx
        .query_one(
            "INSERT INTO enrolment_codes (tenant_id, code_hash, branch_id, expires_at, scope,
                 replaces_device)
             VALUES ($1, $2, $3, now() + $4::bigint * interval '1 second', $5, $6)
             RETURNING expires_at",
            &[
                &tenant_id,
                &code.hash().as_slice(),
                &branch_id,
                &ttl_secs,
                &scope.as_str(),
                &replaces_device,
            ],
        )
        .await?
        .try_get(0)?;
    tracing::info!(%tenant_id, %branch_id, scope = scope.as_str(), "enrolment code issued");
    Ok((code.display(), expires_at))
}

/// What an operator can make of a business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BusinessStatus {
    /// Working normally (reactivates a suspended business).
    Active,
    /// Nobody logs in and no desk syncs; everything is kept. Reversible.
    Suspended,
    /// Closed for good: as suspended, and it cannot be reactivated.
    Terminated,
}

impl BusinessStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BusinessStatus::Active => "active",
            BusinessStatus::Suspended => "suspended",
            BusinessStatus::Terminated => "terminated",
        }
    }
}

/// Suspends, reactivates or terminates a business. Its data is never touched; a terminated
/// business stays terminated.
pub async fn set_business_status(
    pool: &Pool,
    tenant_id: TenantId,
    status: BusinessStatus,
) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    let current: String = tx
        .query_opt(
            "SELECT status FROM tenants WHERE tenant_id = $1 FOR UPDATE",
            &[&tenant_id],
        )
        .await?
        .ok_or(Error::UnknownTenant(tenant_id))?
        .try_get(0)?;
    if current == BusinessStatus::Terminated.as_str() && status != BusinessStatus::Terminated {
        return Err(Error::InvalidInput(
            "a terminated business cannot be reactivated or suspended".to_owned(),
        ));
    }
    tx.execute(
        "UPDATE tenants SET status = $2 WHERE tenant_id = $1",
        &[&tenant_id, &status.as_str()],
    )
    .await?;
    tx.commit().await?;
    tracing::warn!(%tenant_id, from = %current, to = status.as_str(), "business status set by an operator");
    Ok(())
}

/// Revokes a device: its token stops working at once. Its data stays.
pub async fn revoke_device(pool: &Pool, tenant_id: TenantId, device_id: DeviceId) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    let updated = tx
        .execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, now())
             WHERE tenant_id = $1 AND device_id = $2",
            &[&tenant_id, &device_id],
        )
        .await?;
    if updated == 0 {
        return Err(Error::InvalidInput(format!(
            "no device {device_id} in that business"
        )));
    }
    tx.commit().await?;
    tracing::info!(%tenant_id, %device_id, "device revoked");
    Ok(())
}

/// One desk's sync state as head office sees it: what the desk last reported, when the server
/// last heard from it, and its branch's open conflicts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct DeviceSyncStatus {
    pub device_id: DeviceId,
    pub device_name: String,
    pub branch_id: BranchId,
    pub branch_name: String,
    pub revoked: bool,
    pub last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    pub reported_at: Option<chrono::DateTime<chrono::Utc>>,
    pub pending: Option<i32>,
    pub refused: Option<i32>,
    pub oldest_pending_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_synced_at: Option<chrono::DateTime<chrono::Utc>>,
    pub last_error: Option<String>,
    pub schema_version: Option<i32>,
    pub app_version: Option<String>,
    pub branch_open_conflicts: i64,
}

/// Every desk of a business with its sync state, by branch and name.
pub async fn sync_status(pool: &Pool, tenant_id: TenantId) -> Result<Vec<DeviceSyncStatus>> {
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    require_tenant(&tx).await?;
    let devices = sync_status_in(&tx).await?;
    tx.commit().await?;
    Ok(devices)
}

/// [`sync_status`] of the transaction's business.
pub async fn sync_status_in(tx: &TenantTx<'_>) -> Result<Vec<DeviceSyncStatus>> {
    let tenant_id = tx.tenant();
    let rows = tx
        .query(
            "SELECT d.device_id, d.name, d.branch_id, b.name, d.revoked_at IS NOT NULL,
                    greatest(d.last_seen_at, m.pushed_at), d.status_reported_at,
                    d.status_pending, d.status_refused,
                    d.status_oldest_pending, d.status_last_synced_at, d.status_last_error,
                    d.status_schema_version, d.status_app_version,
                    (SELECT count(*) FROM conflicts c
                     WHERE c.tenant_id = d.tenant_id AND c.branch_id = d.branch_id
                       AND c.resolution IS NULL)
             FROM devices d
             JOIN branches b ON b.tenant_id = d.tenant_id AND b.branch_id = d.branch_id
             LEFT JOIN device_marks m ON m.tenant_id = d.tenant_id AND m.device_id = d.device_id
             WHERE d.tenant_id = $1
             ORDER BY b.name, d.name, d.device_id",
            &[&tenant_id],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(DeviceSyncStatus {
                device_id: row.try_get(0)?,
                device_name: row.try_get(1)?,
                branch_id: row.try_get(2)?,
                branch_name: row.try_get(3)?,
                revoked: row.try_get(4)?,
                last_seen_at: row.try_get(5)?,
                reported_at: row.try_get(6)?,
                pending: row.try_get(7)?,
                refused: row.try_get(8)?,
                oldest_pending_at: row.try_get(9)?,
                last_synced_at: row.try_get(10)?,
                last_error: row.try_get(11)?,
                schema_version: row.try_get(12)?,
                app_version: row.try_get(13)?,
                branch_open_conflicts: row.try_get(14)?,
            })
        })
        .collect()
}

/// What `record-payment` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedPayment {
    pub tenant_id: TenantId,
    pub payment_id: crate::ids::PaymentId,
    pub amount_sen: i64,
    /// The subscription's state now: ACTIVE.
    pub state: String,
    /// When the access paid for ends; `None` for a perpetual licence.
    pub period_ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Applies a payment an operator received outside the providers (a bank transfer, a demo) as
/// a CREDIT of provider `operator`, through the same code path as the webhooks
/// ([`crate::payments::settle`]): kaunter-core decides what it buys, and the subscription and
/// the payment row are written in one transaction. `amount_sen` defaults to the price and
/// stands as given (a discount, a free demo). `reference` (the bank transfer's, say) makes it
/// idempotent: the same reference twice is refused; without one a fresh one is made.
pub async fn record_payment(
    pool: &Pool,
    tenant_id: TenantId,
    purchase: crate::payments::Purchase,
    amount_sen: Option<i64>,
    reference: Option<&str>,
) -> Result<RecordedPayment> {
    use crate::payments::{self, Incoming, Kind, Provider, Settled};
    let crate::payments::Purchase {
        plan,
        cycle,
        pricing,
    } = purchase;
    let price = kaunter_core::subscription::expected_amount_sen(plan, cycle, pricing)
        .map_err(|mismatch| Error::InvalidInput(mismatch.to_string()))?;
    let amount_sen = amount_sen.unwrap_or(price);
    if amount_sen < 0 {
        return Err(Error::InvalidInput(
            "the amount cannot be negative".to_owned(),
        ));
    }
    let reference = match reference {
        Some(reference) => checked_reference(reference)?,
        None => format!("op_{}", uuid::Uuid::now_v7().simple()),
    };
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    let now = chrono::Utc::now();
    let incoming = Incoming {
        provider: Provider::Operator,
        kind: Kind::Credit,
        external_id: &reference,
        payment_ref: None,
        event_id: None,
        purchase,
        amount: amount_sen,
        currency: payments::CURRENCY,
        paid: true,
        paid_at: now,
        check_amount: false,
    };
    let (payment_id, subscription) = match payments::settle(&tx, &incoming).await? {
        Settled::Applied {
            payment_id,
            subscription,
        } => (payment_id, subscription),
        Settled::UnknownBusiness => return Err(Error::UnknownTenant(tenant_id)),
        Settled::AlreadyApplied => {
            return Err(Error::InvalidInput(format!(
                "a payment with reference {reference} was already recorded"
            )));
        }
        // Not committed: an operator's refused payment leaves nothing behind.
        Settled::Refused(refused) => return Err(Error::PaymentRefused(refused)),
        Settled::ProviderFailed { .. } | Settled::AmountMismatch { .. } => {
            return Err(Error::Internal(
                "an operator's payment was treated as a provider's".to_owned(),
            ));
        }
    };
    tx.commit().await?;
    tracing::warn!(%tenant_id, %payment_id, purchase = %purchase.describe(), amount_sen,
                   "payment recorded by an operator");
    Ok(RecordedPayment {
        tenant_id,
        payment_id,
        amount_sen,
        state: subscription.state_at(now).as_str().to_owned(),
        period_ends_at: subscription.facts().period_ends_at,
    })
}

/// A reference as an operator typed it: 1 to 255 characters, no control characters.
fn checked_reference(reference: &str) -> Result<String> {
    crate::payments::clean_id(reference)
        .filter(|cleaned| cleaned == reference)
        .ok_or_else(|| {
            Error::InvalidInput(
                "a reference is 1 to 255 characters with no control characters".to_owned(),
            )
        })
}

/// What `adjust-subscription` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AdjustedSubscription {
    pub tenant_id: TenantId,
    /// The ADJUSTMENT payment row.
    pub payment_id: crate::ids::PaymentId,
    pub days: i64,
    pub amount_sen: i64,
    /// The subscription's state now.
    pub state: String,
    /// When the access ended before, and ends now.
    pub previous_period_ends_at: Option<chrono::DateTime<chrono::Utc>>,
    pub period_ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Moves a business's period by `days` whole days (negative takes days away) for `reason`,
/// recording an ADJUSTMENT payment of provider `operator` (`amount_sen`, 0 by default, and the
/// reason kept) in the same transaction as the new period: kaunter-core's
/// `Subscription::adjust` decides, and refuses zero days, a perpetual licence, days taken from
/// a period that has ended or more than are left. A reason is required. `reference` makes it
/// idempotent: the same reference twice is refused; without one a fresh one is made.
pub async fn adjust_subscription(
    pool: &Pool,
    tenant_id: TenantId,
    days: i64,
    reason: &str,
    amount_sen: Option<i64>,
    reference: Option<&str>,
) -> Result<AdjustedSubscription> {
    use crate::payments::{self, Adjusted, Adjustment};
    let reference = match reference {
        Some(reference) => checked_reference(reference)?,
        None => format!("adj_{}", uuid::Uuid::now_v7().simple()),
    };
    let amount_sen = amount_sen.unwrap_or(0);
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    let now = chrono::Utc::now();
    let adjustment = Adjustment {
        days,
        reason,
        amount_sen,
        reference: &reference,
    };
    let (payment_id, previous_period_ends_at, subscription) =
        match payments::adjust(&tx, &adjustment, now).await? {
            Adjusted::Applied {
                payment_id,
                ended_at,
                subscription,
            } => (payment_id, ended_at, subscription),
            Adjusted::UnknownBusiness => return Err(Error::UnknownTenant(tenant_id)),
            Adjusted::AlreadyApplied => {
                return Err(Error::InvalidInput(format!(
                    "a payment with reference {reference} was already recorded"
                )));
            }
            Adjusted::Refused(refused) => {
                return Err(Error::InvalidInput(format!(
                    "{}: {refused}",
                    refused.code()
                )));
            }
        };
    tx.commit().await?;
    tracing::warn!(%tenant_id, %payment_id, days, amount_sen, reason = reason.trim(),
                   "subscription adjusted by an operator");
    Ok(AdjustedSubscription {
        tenant_id,
        payment_id,
        days,
        amount_sen,
        state: subscription.state_at(now).as_str().to_owned(),
        previous_period_ends_at,
        period_ends_at: subscription.facts().period_ends_at,
    })
}

/// What `refund-payment` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundedPayment {
    pub tenant_id: TenantId,
    /// The REFUND payment row.
    pub payment_id: crate::ids::PaymentId,
    /// The payment refunded.
    pub refund_of: crate::ids::PaymentId,
    pub amount_sen: i64,
    /// Whether the payment is now refunded in full (and what it bought taken back).
    pub refunded_in_full: bool,
    /// The subscription's state now.
    pub state: String,
    pub period_ends_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Which payment `refund-payment` gives money back for.
#[derive(Debug, Clone, Copy)]
pub enum RefundOf<'a> {
    /// An operator's payment (`record-payment`), by the reference it was recorded with.
    Reference(&'a str),
    /// Any payment of the business by its id as head office lists it: one whose provider sends
    /// no refund events (an FPX bill refunded at the gateway).
    Payment(crate::ids::PaymentId),
}

/// Refunds a payment through the same code path as a provider's refund
/// ([`crate::payments::refund`]): `amount_sen` more (default: everything not refunded yet),
/// recorded as a REFUND of provider `operator` naming the payment, with the reason if given. A
/// refund that completes the payment's refunds takes back what it still gives (kaunter-core's
/// `take_back`) and marks it REFUNDED; a partial one changes no access. Either way a refund
/// notice is queued. Refused with nothing written: a payment the business never made or never
/// completed (`unknown_payment`), one refunded in full already, more than was paid
/// (`refund_exceeds_payment`). Stripe payments are refunded at Stripe, whose `charge.refunded`
/// tells Kaunter.
pub async fn refund_payment(
    pool: &Pool,
    tenant_id: TenantId,
    of: RefundOf<'_>,
    amount_sen: Option<i64>,
    reason: Option<&str>,
) -> Result<RefundedPayment> {
    use crate::payments::{self, Original, Provider, RefundAmount, RefundIncoming, RefundSettled};
    let reference;
    let original = match of {
        RefundOf::Reference(given) => {
            reference = checked_reference(given)?;
            Original::ExternalId(&reference)
        }
        RefundOf::Payment(payment_id) => Original::PaymentId(payment_id),
    };
    if amount_sen.is_some_and(|amount| amount <= 0) {
        return Err(Error::InvalidInput(
            "a refund's amount is a positive number of sen".to_owned(),
        ));
    }
    let reason = reason.map(str::trim);
    if reason.is_some_and(|reason| reason.is_empty() || reason.chars().count() > 500) {
        return Err(Error::InvalidInput(
            "a reason is 1 to 500 characters".to_owned(),
        ));
    }
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant_id).await?;
    let now = chrono::Utc::now();
    let incoming = RefundIncoming {
        provider: Provider::Operator,
        original,
        event_id: None,
        amount: RefundAmount::More(amount_sen),
        currency: payments::CURRENCY,
        reason,
    };
    // Refusals are not committed: an operator's refused refund leaves nothing behind.
    let refused =
        |code: &str, detail: String| Err(Error::InvalidInput(format!("{code}: {detail}")));
    let (payment_id, refund_of, amount_sen, in_full, subscription) =
        match payments::refund(&tx, &incoming, now).await? {
            RefundSettled::Applied {
                payment_id,
                refund_of,
                amount_sen,
                in_full,
                subscription,
                ..
            } => (payment_id, refund_of, amount_sen, in_full, subscription),
            RefundSettled::UnknownBusiness => return Err(Error::UnknownTenant(tenant_id)),
            RefundSettled::UnknownPayment { detail } => {
                return refused(payments::Outcome::UnknownPayment.as_str(), detail);
            }
            RefundSettled::AlreadyApplied => {
                return refused(
                    "already_refunded",
                    "that payment is already refunded in full".to_owned(),
                );
            }
            RefundSettled::Exceeds { reason } => {
                return refused(payments::Outcome::RefundExceedsPayment.as_str(), reason);
            }
            RefundSettled::WrongCurrency { .. } => {
                return Err(Error::Internal(
                    "an operator's refund was taken for another currency's".to_owned(),
                ));
            }
        };
    tx.commit().await?;
    tracing::warn!(%tenant_id, %payment_id, %refund_of, amount_sen, in_full,
                   "payment refunded by an operator");
    Ok(RefundedPayment {
        tenant_id,
        payment_id,
        refund_of,
        amount_sen,
        refunded_in_full: in_full,
        state: subscription.state_at(now).as_str().to_owned(),
        period_ends_at: subscription.facts().period_ends_at,
    })
}

async fn require_tenant(tx: &TenantTx<'_>) -> Result<()> {
    let exists = tx
        .query_opt(
            "SELECT 1 FROM tenants WHERE tenant_id = $1",
            &[&tx.tenant()],
        )
        .await?
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(Error::UnknownTenant(tx.tenant()))
    }
}

/// A new business's settings: Malaysian defaults, in `language`.
pub(crate) async fn insert_settings(
    tx: &TenantTx<'_>,
    language: kaunter_core::business::Language,
) -> Result<()> {
    use kaunter_core::business::{DEFAULT_CURRENCY, DEFAULT_DATE_FORMAT, DEFAULT_TIME_ZONE};
    tx.execute(
        "INSERT INTO business_settings (tenant_id, time_zone, currency, date_format, language)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &tx.tenant(),
            &DEFAULT_TIME_ZONE,
            &DEFAULT_CURRENCY,
            &DEFAULT_DATE_FORMAT,
            &language.as_str(),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn insert_branch(
    tx: &TenantTx<'_>,
    branch_id: BranchId,
    name: &str,
    code: Option<&str>,
) -> Result<()> {
    let inserted = tx
        .execute(
            "INSERT INTO branches (tenant_id, branch_id, name, code) VALUES ($1, $2, $3, $4)",
            &[&tx.tenant(), &branch_id, &name, &code],
        )
        .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(error) if error.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Err(Error::ValidationFailed(vec![crate::validate::field_error(
                "code",
                "branch_code_taken",
                "Another branch of this business already has that code.",
            )]))
        }
        Err(error) => Err(error.into()),
    }
}

fn checked_name<'a>(what: &str, name: &'a str) -> Result<&'a str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX_CHARS {
        return Err(Error::InvalidInput(format!(
            "the {what} must be 1 to {NAME_MAX_CHARS} characters"
        )));
    }
    Ok(name)
}

fn checked_branch_code(code: &str) -> Result<String> {
    let code = code.trim().to_ascii_uppercase();
    let well_formed = !code.is_empty()
        && code.len() <= BRANCH_CODE_MAX_CHARS
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !well_formed {
        return Err(Error::InvalidInput(format!(
            "a branch code is 1 to {BRANCH_CODE_MAX_CHARS} letters or digits, e.g. KL01"
        )));
    }
    Ok(code)
}
