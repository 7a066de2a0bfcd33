//! E-mail notices: which subscription notices are due (kaunter-core decides: trial day 5 and
//! day 7, renewal in 7 days and in 1 day, expiry, suspension) and payment receipts, put in the
//! business's `notice_outbox` in the transaction that sees their cause, then handed to the mail
//! relay after it commits, each exactly once (a unique key per notice), with retries.
//!
//! Row-level security keeps every business apart here too, so there is no sweep over all
//! businesses: a business's notices are looked at when one of its desks fetches its licence
//! (every sync round; claimed at most once an hour), and its receipts go out after the payment.
//! A notice that could not be handed over stays unsent and is tried again at the next look.
//! Without a relay configured, notices wait in the outbox.

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
    tx.execute(
        "INSERT INTO notice_outbox (tenant_id, notice_id, notice_key, kind, recipient, subject,
             body)
         VALUES ($1, $2, $3, 'RECEIPT', $4, 'Your Kaunter receipt', $5)
         ON CONFLICT (tenant_id, notice_key) DO NOTHING",
        &[
            &tenant,
            &uuid::Uuid::now_v7(),
            &format!("RECEIPT:{payment_id}"),
            &to,
            &body,
        ],
    )
    .await?;
    Ok(())
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

/// Hands the business's unsent notices to the relay, oldest first; each one sent is marked, a
/// failure is kept with its reason and tried again later (after 5, 10, 20 ... minutes, at most
/// a day). Returns how many were sent.
pub async fn deliver(pool: &Pool, tenant: TenantId, mailer: &Mailer) -> Result<usize> {
    let mut client = pool.get().await?;
    let tx = TenantTx::begin(&mut client, tenant).await?;
    // Locked while they are sent, so two deliveries of one business never send one twice.
    let pending = tx
        .query(
            "SELECT notice_id, recipient, subject, body, attempts FROM notice_outbox
             WHERE tenant_id = $1 AND sent_at IS NULL AND next_attempt_at <= now()
             ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&tenant, &SEND_BATCH],
        )
        .await?;
    let mut sent = 0;
    for row in &pending {
        let id: uuid::Uuid = row.try_get(0)?;
        let to: String = row.try_get(1)?;
        let subject: String = row.try_get(2)?;
        let body: String = row.try_get(3)?;
        let attempts: i32 = row.try_get(4)?;
        match mailer.send(&to, &subject, &body).await {
            Ok(()) => {
                sent += 1;
                tx.execute(
                    "UPDATE notice_outbox SET sent_at = now(), attempts = attempts + 1,
                         last_error = NULL
                     WHERE tenant_id = $1 AND notice_id = $2",
                    &[&tenant, &id],
                )
                .await?;
            }
            Err(error) => {
                let wait_minutes = (5i64 << attempts.clamp(0, 8)).min(24 * 60);
                tracing::warn!(%tenant, notice = %id, %error, "notice not sent; tried again later");
                tx.execute(
                    "UPDATE notice_outbox SET attempts = attempts + 1, last_error = $3,
                         next_attempt_at = now() + $4::bigint * interval '1 minute'
                     WHERE tenant_id = $1 AND notice_id = $2",
                    &[&tenant, &id, &error.to_string(), &wait_minutes],
                )
                .await?;
            }
        }
    }
    tx.commit().await?;
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
