//! E-mail notices: which subscription notices are due (kaunter-core decides: trial day 5 and
//! day 7, renewal in 7 days and in 1 day, expiry, suspension), payment receipts and refund
//! notices, put in the
//! business's `notice_outbox` in the transaction that sees their cause, then handed to the mail
//! relay after it commits, each exactly once (a unique key per notice), with retries.
//!
//! Row-level security keeps every business apart here too. A business's notices are looked at
//! in the background after one of its desks fetched its licence (every sync round; claimed at
//! most once an hour; the desk's answer never waits for it or fails because of it), and by the
//! server's own [`sweep`], which finds whose turn has come in `notice_schedule` (ids and times
//! only) and looks at each business inside its own transaction, so a business none of whose
//! desks syncs still hears that its trial or subscription is ending. Receipts and refund
//! notices go out after the payment or refund.
//! A notice that could not be handed over stays unsent and is tried again at the next look.
//! Without a relay configured, notices wait in the outbox.
//!
//! Delivery never holds a transaction, a row lock or a database connection while it talks to
//! the relay: it claims a batch by moving the rows' next attempt forward in one short
//! transaction, talks SMTP, then records each result in its own short transaction. A few
//! deliveries at most run at once ([`MAX_CONCURRENT_DELIVERIES`]).

use chrono::{DateTime, Duration, Utc};
use kaunter_core::subscription::{Notice, Subscription};

use crate::db::{Pool, TenantTx};
use crate::error::Result;
use crate::ids::TenantId;
use crate::mail::Mailer;
use crate::subscription;

/// How often one business's notices are looked at, at most.
pub const CHECK_EVERY: Duration = Duration::hours(1);
/// Most notices handed over in one go for one business.
const SEND_BATCH: i64 = 20;

/// Where a business's notices go: its own e-mail, or else its active ADMINs' first.
async fn recipient(tx: &TenantTx<'_>, tenant: TenantId) -> Result<Option<String>> {
    let row = tx
        .query_one(
            "SELECT coalesce(
                 (SELECT email FROM tenants WHERE tenant_id = $1),
                 (SELECT u.email FROM users u
                  JOIN user_roles ur ON ur.tenant_id = u.tenant_id AND ur.user_id = u.user_id
                  JOIN roles r ON r.tenant_id = ur.tenant_id AND r.role_id = ur.role_id
                  WHERE u.tenant_id = $1 AND u.status = 'ACTIVE' AND r.name = 'ADMIN'
                    AND r.built_in
                  ORDER BY u.created_at LIMIT 1))",
            &[&tenant],
        )
        .await?;
    Ok(row.try_get(0)?)
}

fn day(at: DateTime<Utc>) -> String {
    // Malaysia is UTC+8 all year.
    (at + Duration::hours(8)).format("%d/%m/%Y").to_string()
}

/// The subject and body of a subscription notice.
pub fn render(notice: &Notice, business: &str) -> (String, String) {
    let end = day(notice.period_end());
    let pay = "Head office can pay in Kaunter's billing page at any time; nothing on your desks \
               is ever deleted.";
    let (subject, lead) = match notice {
        Notice::TrialDay5 { .. } => (
            "Your Kaunter trial ends in 3 days".to_owned(),
            format!("The free trial of {business} ends on {end}."),
        ),
        Notice::TrialDay7 { .. } => (
            "Your Kaunter trial ends today".to_owned(),
            format!(
                "The free trial of {business} ends on {end}. After it, your desks are read-only for 7 days until a plan is paid."
            ),
        ),
        Notice::RenewalIn7Days { .. } => (
            "Your Kaunter subscription renews in 7 days".to_owned(),
            format!("The subscription of {business} runs until {end}."),
        ),
        Notice::RenewalIn1Day { .. } => (
            "Your Kaunter subscription ends tomorrow".to_owned(),
            format!("The subscription of {business} runs until {end}."),
        ),
        Notice::Expired { .. } => (
            "Your Kaunter subscription has ended: read-only for 7 days".to_owned(),
            format!(
                "The subscription of {business} ended on {end}. Your desks are read-only for 7 days: everything can still be read and exported, and changes waiting on them are kept and sent once it is paid."
            ),
        ),
        Notice::Suspended { .. } => (
            "Your Kaunter subscription is suspended".to_owned(),
            format!(
                "The subscription of {business} ended on {end} and has now been suspended: your desks no longer sync. Their data stays on them, read-only, and can be exported."
            ),
        ),
    };
    (subject, format!("{lead}\n\n{pay}\n\nKaunter\n"))
}

/// Puts the notices due for the business at `now` in its outbox, once each. Returns how many
/// were new. A business with nowhere to send them gets none recorded (they are decided again
/// at the next look).
pub async fn enqueue_due(tx: &TenantTx<'_>, tenant: TenantId, now: DateTime<Utc>) -> Result<usize> {
    let current: Subscription = subscription::load(tx, tenant).await?;
    let sent: Vec<Notice> = tx
        .query(
            "SELECT kind, period_end FROM notice_outbox
             WHERE tenant_id = $1 AND period_end IS NOT NULL",
            &[&tenant],
        )
        .await?
        .iter()
        .filter_map(|row| {
            let kind: String = row.try_get(0).ok()?;
            let end: DateTime<Utc> = row.try_get(1).ok()?;
            Notice::from_parts(&kind, end)
        })
        .collect();
    let due = current.notices_due(now, &sent);
    if due.is_empty() {
        return Ok(0);
    }
    let Some(to) = recipient(tx, tenant).await? else {
        return Ok(0);
    };
    let business: String = tx
        .query_one("SELECT name FROM tenants WHERE tenant_id = $1", &[&tenant])
        .await?
        .try_get(0)?;
    let mut added = 0;
    for notice in due {
        let (subject, body) = render(&notice, &business);
        added += tx
            .execute(
                "INSERT INTO notice_outbox (tenant_id, notice_id, notice_key, kind, period_end,
                     recipient, subject, body)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (tenant_id, notice_key) DO NOTHING",
                &[
                    &tenant,
                    &uuid::Uuid::now_v7(),
                    &notice.key(),
                    &notice.kind(),
                    &notice.period_end(),
                    &to,
                    &subject,
                    &body,
                ],
            )
            .await? as usize;
    }
    Ok(added)
}

/// Puts a receipt for a completed payment in the business's outbox (once per payment).
pub async fn enqueue_receipt(
    tx: &TenantTx<'_>,
    tenant: TenantId,
    payment_id: uuid::Uuid,
    amount_sen: i64,
    what: &str,
    paid_until: Option<DateTime<Utc>>,
) -> Result<()> {
    let Some(to) = recipient(tx, tenant).await? else {
        return Ok(());
    };
    let until = paid_until.map_or_else(
        || "It has no end date.".to_owned(),
        |end| format!("It runs until {}.", day(end)),
    );
    let body = format!(
        "Thank you: we received RM {}.{:02} for {what}. {until}\n\nPayment reference: {payment_id}\n\nKaunter\n",
        amount_sen / 100,
        amount_sen % 100
    );
    enqueue_once(
        tx,
        tenant,
        ("RECEIPT", &payment_id.to_string()),
        &to,
        "Your Kaunter receipt",
        &body,
    )
    .await
}

/// Puts one message in the business's outbox under the key `kind:id`, unless one with that key
/// is there already (sent or not).
async fn enqueue_once(
    tx: &TenantTx<'_>,
    tenant: TenantId,
    (kind, id): (&str, &str),
    to: &str,
    subject: &str,
    body: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO notice_outbox (tenant_id, notice_id, notice_key, kind, recipient, subject,
             body)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (tenant_id, notice_key) DO NOTHING",
        &[
            &tenant,
            &uuid::Uuid::now_v7(),
            &format!("{kind}:{id}"),
            &kind,
            &to,
            &subject,
            &body,
        ],
    )
    .await?;
    Ok(())
}

/// Puts a notice of a refund in the business's outbox (once per refund): how much went back
/// for which payment and what became of what it paid for: unchanged by a partial refund, taken
/// back by a full one (`access_until`: when full access now ends), or already used up.
pub async fn enqueue_refund(
    tx: &TenantTx<'_>,
    tenant: TenantId,
    refund_id: uuid::Uuid,
    amount_sen: i64,
    payment: &str,
    in_full: bool,
    access_until: Option<DateTime<Utc>>,
) -> Result<()> {
    let Some(to) = recipient(tx, tenant).await? else {
        return Ok(());
    };
    let effect = match (in_full, access_until) {
        (false, _) => "It is a part of that payment: what it paid for is unchanged.".to_owned(),
        (true, Some(end)) => format!(
            "That payment is now refunded in full and what it paid for was taken back: full access runs until {}.",
            day(end)
        ),
        (true, None) => {
            "That payment is now refunded in full; nothing it paid for was still to come."
                .to_owned()
        }
    };
    let body = format!(
        "We refunded RM {}.{:02} of payment {payment}. {effect}\n\nRefund reference: {refund_id}\n\nKaunter\n",
        amount_sen / 100,
        amount_sen % 100
    );
    enqueue_once(
        tx,
        tenant,
        ("REFUND", &refund_id.to_string()),
        &to,
        "Your Kaunter refund",
        &body,
    )
    .await
}

/// Claims the business's next look at its notices when the last was more than
/// [`CHECK_EVERY`] ago (one request of the business wins it).
pub async fn claim_check(tx: &TenantTx<'_>, tenant: TenantId) -> Result<bool> {
    Ok(tx
        .execute(
            "UPDATE subscriptions SET notices_checked_at = now()
             WHERE tenant_id = $1
               AND (notices_checked_at IS NULL
                    OR notices_checked_at < now() - $2::bigint * interval '1 second')",
            &[&tenant, &CHECK_EVERY.num_seconds()],
        )
        .await?
        == 1)
}

/// Whether the business has notices waiting whose time to be sent has come.
pub async fn any_due(tx: &TenantTx<'_>, tenant: TenantId) -> Result<bool> {
    Ok(tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM notice_outbox
                            WHERE tenant_id = $1 AND sent_at IS NULL AND next_attempt_at <= now())",
            &[&tenant],
        )
        .await?
        .try_get(0)?)
}

/// How long a delivery holds the notices it claimed: a concurrent delivery skips them until
/// then. Longer than a whole batch may take (see [`MESSAGE_TIMEOUT`] and [`STOP_STARTING_AFTER`]).
const CLAIM_FOR_MINUTES: i64 = 10;
/// Longest one message's SMTP conversation may take.
const MESSAGE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);
/// A delivery starts no new conversation after this long (the rest of its claim is given
/// back), so every message it sends is handed over well inside its claim.
const STOP_STARTING_AFTER: std::time::Duration = std::time::Duration::from_secs(6 * 60);
/// Most deliveries talking to the relay at once, across every business: a stuck relay holds
/// at most this many tasks (and never a database connection).
pub const MAX_CONCURRENT_DELIVERIES: usize = 4;
static DELIVERIES: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MAX_CONCURRENT_DELIVERIES);

/// One claimed notice.
struct Claimed {
    id: uuid::Uuid,
    to: String,
    subject: String,
    body: String,
    attempts: i32,
}

/// In one short transaction, claims up to [`SEND_BATCH`] of the business's due notices, oldest
/// first, by moving their next attempt [`CLAIM_FOR_MINUTES`] on (a concurrent delivery skips
/// rows being claimed and no longer sees these as due).
async fn claim_due(pool: &Pool, tenant: TenantId) -> Result<Vec<Claimed>> {
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant).await?;
    let rows = tx
        .query(
            "UPDATE notice_outbox o
             SET next_attempt_at = now() + $3::bigint * interval '1 minute'
             FROM (SELECT notice_id FROM notice_outbox
                   WHERE tenant_id = $1 AND sent_at IS NULL AND next_attempt_at <= now()
                   ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
             WHERE o.tenant_id = $1 AND o.notice_id = due.notice_id
             RETURNING o.notice_id, o.recipient, o.subject, o.body, o.attempts, o.created_at",
            &[&tenant, &SEND_BATCH, &CLAIM_FOR_MINUTES],
        )
        .await?;
    tx.commit().await?;
    let mut claimed = rows
        .iter()
        .map(|row| {
            let created_at: DateTime<Utc> = row.try_get(5)?;
            Ok((
                created_at,
                Claimed {
                    id: row.try_get(0)?,
                    to: row.try_get(1)?,
                    subject: row.try_get(2)?,
                    body: row.try_get(3)?,
                    attempts: row.try_get(4)?,
                },
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    // RETURNING keeps no order.
    claimed.sort_by_key(|(created_at, claimed)| (*created_at, claimed.id));
    Ok(claimed.into_iter().map(|(_, claimed)| claimed).collect())
}

/// Runs one short statement of the business's in its own transaction.
async fn record(
    pool: &Pool,
    tenant: TenantId,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<()> {
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant).await?;
    tx.execute(sql, params).await?;
    tx.commit().await?;
    Ok(())
}

/// Hands the business's unsent notices to the relay, oldest first: claims a batch in one short
/// transaction, talks SMTP with no transaction open (and no database connection held), then
/// records each result in its own short transaction. Each one sent is marked, a failure is kept
/// with its reason and tried again later (after 5, 10, 20 ... minutes, at most a day). At most
/// [`MAX_CONCURRENT_DELIVERIES`] run at once; when that many are busy this one does nothing and
/// the notices wait for the next round. Returns how many were sent.
pub async fn deliver(pool: &Pool, tenant: TenantId, mailer: &Mailer) -> Result<usize> {
    let Ok(_permit) = DELIVERIES.try_acquire() else {
        tracing::debug!(%tenant, "every delivery slot is busy; notices go at the next round");
        return Ok(0);
    };
    let claimed = claim_due(pool, tenant).await?;
    let started = std::time::Instant::now();
    let mut sent = 0;
    for (at, notice) in claimed.iter().enumerate() {
        if started.elapsed() >= STOP_STARTING_AFTER {
            // Given back: due again at once, for the next round.
            let rest: Vec<uuid::Uuid> = claimed[at..].iter().map(|notice| notice.id).collect();
            record(
                pool,
                tenant,
                "UPDATE notice_outbox SET next_attempt_at = now()
                 WHERE tenant_id = $1 AND notice_id = ANY($2) AND sent_at IS NULL",
                &[&tenant, &rest],
            )
            .await?;
            break;
        }
        let outcome = match tokio::time::timeout(
            MESSAGE_TIMEOUT,
            mailer.send(&notice.to, &notice.subject, &notice.body),
        )
        .await
        {
            Ok(outcome) => outcome.map_err(|error| error.to_string()),
            Err(_) => Err("the mail relay took too long over the whole message".to_owned()),
        };
        match outcome {
            Ok(()) => {
                sent += 1;
                record(
                    pool,
                    tenant,
                    "UPDATE notice_outbox SET sent_at = now(), attempts = attempts + 1,
                         last_error = NULL
                     WHERE tenant_id = $1 AND notice_id = $2",
                    &[&tenant, &notice.id],
                )
                .await?;
            }
            Err(error) => {
                let wait_minutes = (5i64 << notice.attempts.clamp(0, 8)).min(24 * 60);
                tracing::warn!(%tenant, notice = %notice.id, %error,
                               "notice not sent; tried again later");
                record(
                    pool,
                    tenant,
                    "UPDATE notice_outbox SET attempts = attempts + 1, last_error = $3,
                         next_attempt_at = now() + $4::bigint * interval '1 minute'
                     WHERE tenant_id = $1 AND notice_id = $2",
                    &[&tenant, &notice.id, &error, &wait_minutes],
                )
                .await?;
            }
        }
    }
    Ok(sent)
}

/// After a transaction of the business committed something for the outbox: delivers it in the
/// background when a relay is configured.
pub fn deliver_later(pool: &Pool, tenant: TenantId, mailer: Option<std::sync::Arc<Mailer>>) {
    let Some(mailer) = mailer else {
        return;
    };
    let pool = pool.clone();
    tokio::spawn(async move {
        if let Err(error) = deliver(&pool, tenant, &mailer).await {
            tracing::warn!(%tenant, %error, "notices not delivered; tried again at the next look");
        }
    });
}

/// A desk of the business fetched its licence: in the background, in transactions of its own,
/// looks at the business's notices when its hourly look is due (putting those due in the
/// outbox), then delivers whatever is waiting and due (a receipt, a retry) when a relay is
/// configured. Errors are logged; the desk's answer never depends on any of this.
pub fn look_later(pool: &Pool, tenant: TenantId, mailer: Option<std::sync::Arc<Mailer>>) {
    let pool = pool.clone();
    tokio::spawn(async move {
        if let Err(error) = look(&pool, tenant, mailer.as_deref()).await {
            tracing::warn!(%tenant, %error, "notices not looked at or delivered; tried again at the next round");
        }
    });
}

/// Most businesses one sweep looks at; the rest wait for the next.
const SWEEP_BATCH: i64 = 50;

/// The server's own look at businesses' notices: claims up to [`SWEEP_BATCH`] businesses whose
/// turn has come in `notice_schedule` (moving each one's turn [`CHECK_EVERY`] on, so another
/// server sweeping at the same moment skips them), then looks at each one as a desk's licence
/// fetch does, one after another, inside its own transaction. One business's failure is logged
/// and the others still go. Returns how many businesses it looked at.
pub async fn sweep(pool: &Pool, mailer: Option<&Mailer>) -> Result<usize> {
    let due: Vec<uuid::Uuid> = {
        let client = pool.get().await?;
        client
            .query(
                "UPDATE notice_schedule
                 SET look_after = now() + $2::bigint * interval '1 second'
                 WHERE business IN (SELECT business FROM notice_schedule
                                    WHERE look_after <= now()
                                    ORDER BY look_after LIMIT $1 FOR UPDATE SKIP LOCKED)
                 RETURNING business",
                &[&SWEEP_BATCH, &CHECK_EVERY.num_seconds()],
            )
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect::<std::result::Result<_, _>>()?
    };
    for business in &due {
        let tenant = TenantId::from_uuid(*business);
        if let Err(error) = look(pool, tenant, mailer).await {
            tracing::warn!(%tenant, %error, "notices not looked at; tried again at the next turn");
        }
    }
    Ok(due.len())
}

async fn look(pool: &Pool, tenant: TenantId, mailer: Option<&Mailer>) -> Result<()> {
    let waiting = {
        let mut client = pool.get().await?;
        let tx = TenantTx::begin(&mut client, tenant).await?;
        if claim_check(&tx, tenant).await? {
            enqueue_due(&tx, tenant, Utc::now()).await?;
        }
        let waiting = any_due(&tx, tenant).await?;
        tx.commit().await?;
        waiting
    };
    if let (true, Some(mailer)) = (waiting, mailer) {
        deliver(pool, tenant, mailer).await?;
    }
    Ok(())
}
