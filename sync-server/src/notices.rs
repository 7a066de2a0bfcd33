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
use kaunter_core::business::Language;
use kaunter_core::subscription::{BillingCycle, Notice, Subscription};

use crate::db::{Pool, TenantTx};
use crate::error::Result;
use crate::ids::TenantId;
use crate::mail::Mailer;
use crate::payments::Purchase;
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

/// The language the business chose for what Kaunter writes to it (`business_settings`);
/// Bahasa Melayu, sign-up's default, for a business with no settings row.
async fn language(tx: &TenantTx<'_>, tenant: TenantId) -> Result<Language> {
    let stored: Option<String> = tx
        .query_opt(
            "SELECT language FROM business_settings WHERE tenant_id = $1",
            &[&tenant],
        )
        .await?
        .map(|row| row.try_get(0))
        .transpose()?;
    Ok(stored
        .as_deref()
        .and_then(Language::parse)
        .unwrap_or(Language::Malay))
}

/// The subject and body of a subscription notice, in the business's language.
pub fn render(notice: &Notice, business: &str, language: Language) -> (String, String) {
    let end = day(notice.period_end());
    let (subject, lead, pay) = match language {
        Language::English => {
            let (subject, lead) = match notice {
                Notice::TrialDay5 { .. } => (
                    "Your Kaunter trial ends in 3 days",
                    format!("The free trial of {business} ends on {end}."),
                ),
                Notice::TrialDay7 { .. } => (
                    "Your Kaunter trial ends today",
                    format!(
                        "The free trial of {business} ends on {end}. After it, your desks are read-only for 7 days until a plan is paid."
                    ),
                ),
                Notice::RenewalIn7Days { .. } => (
                    "Your Kaunter subscription renews in 7 days",
                    format!("The subscription of {business} runs until {end}."),
                ),
                Notice::RenewalIn1Day { .. } => (
                    "Your Kaunter subscription ends tomorrow",
                    format!("The subscription of {business} runs until {end}."),
                ),
                Notice::Expired { .. } => (
                    "Your Kaunter subscription has ended: read-only for 7 days",
                    format!(
                        "The subscription of {business} ended on {end}. Your desks are read-only for 7 days: everything can still be read and exported, and changes waiting on them are kept and sent once it is paid."
                    ),
                ),
                Notice::Suspended { .. } => (
                    "Your Kaunter subscription is suspended",
                    format!(
                        "The subscription of {business} ended on {end} and has now been suspended: your desks no longer sync. Their data stays on them, read-only, and can be exported."
                    ),
                ),
            };
            (
                subject,
                lead,
                "Head office's Kaunter page says what to pay and how, at any time; nothing on \
                 your desks is ever deleted.",
            )
        }
        Language::Malay => {
            let (subject, lead) = match notice {
                Notice::TrialDay5 { .. } => (
                    "Tempoh percubaan Kaunter anda tamat dalam 3 hari",
                    format!("Tempoh percubaan percuma {business} tamat pada {end}."),
                ),
                Notice::TrialDay7 { .. } => (
                    "Tempoh percubaan Kaunter anda tamat hari ini",
                    format!(
                        "Tempoh percubaan percuma {business} tamat pada {end}. Selepas itu, kaunter anda hanya boleh dibaca selama 7 hari sehingga pelan dibayar."
                    ),
                ),
                Notice::RenewalIn7Days { .. } => (
                    "Langganan Kaunter anda diperbaharui dalam 7 hari",
                    format!("Langganan {business} berjalan sehingga {end}."),
                ),
                Notice::RenewalIn1Day { .. } => (
                    "Langganan Kaunter anda tamat esok",
                    format!("Langganan {business} berjalan sehingga {end}."),
                ),
                Notice::Expired { .. } => (
                    "Langganan Kaunter anda telah tamat: baca sahaja selama 7 hari",
                    format!(
                        "Langganan {business} tamat pada {end}. Kaunter anda kini baca sahaja selama 7 hari: semua data masih boleh dibaca dan dieksport, dan perubahan yang menunggu disimpan lalu dihantar sebaik sahaja bayaran dibuat."
                    ),
                ),
                Notice::Suspended { .. } => (
                    "Langganan Kaunter anda telah digantung",
                    format!(
                        "Langganan {business} tamat pada {end} dan kini telah digantung: kaunter anda tidak lagi menyegerak. Datanya kekal di kaunter, baca sahaja, dan boleh dieksport."
                    ),
                ),
            };
            (
                subject,
                lead,
                "Halaman ibu pejabat di Kaunter menunjukkan jumlah dan cara membayar pada \
                 bila-bila masa; tiada apa-apa di kaunter anda akan dipadam.",
            )
        }
    };
    (subject.to_owned(), format!("{lead}\n\n{pay}\n\nKaunter\n"))
}

/// A plan bought, as a person reads it: `Growth (monthly)`, `Pro (bulanan)`.
fn purchase_words(purchase: &Purchase, language: Language) -> String {
    let plan = purchase.plan.name();
    let cycle = match (purchase.cycle, language) {
        (BillingCycle::Monthly, Language::English) => "monthly",
        (BillingCycle::Yearly, Language::English) => "yearly",
        (BillingCycle::OneTime, Language::English) => "a perpetual licence",
        (BillingCycle::Monthly, Language::Malay) => "bulanan",
        (BillingCycle::Yearly, Language::Malay) => "tahunan",
        (BillingCycle::OneTime, Language::Malay) => "lesen kekal",
    };
    format!("{plan} ({cycle})")
}

/// `RM 1,234.50` for 123450 sen.
fn ringgit(sen: i64) -> String {
    let whole = (sen / 100).abs().to_string();
    let mut grouped = String::new();
    for (at, digit) in whole.chars().enumerate() {
        if at > 0 && (whole.len() - at).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    let sign = if sen < 0 { "-" } else { "" };
    format!("{sign}RM {grouped}.{:02}", (sen % 100).abs())
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
    let language = language(tx, tenant).await?;
    let mut added = 0;
    for notice in due {
        let (subject, body) = render(&notice, &business, language);
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

/// Puts a receipt for a completed payment in the business's outbox (once per payment), in the
/// business's language.
pub async fn enqueue_receipt(
    tx: &TenantTx<'_>,
    tenant: TenantId,
    payment_id: uuid::Uuid,
    amount_sen: i64,
    purchase: &Purchase,
    paid_until: Option<DateTime<Utc>>,
) -> Result<()> {
    let Some(to) = recipient(tx, tenant).await? else {
        return Ok(());
    };
    let language = language(tx, tenant).await?;
    let (amount, what) = (ringgit(amount_sen), purchase_words(purchase, language));
    let (subject, body) = match language {
        Language::English => {
            let until = paid_until.map_or_else(
                || "It has no end date.".to_owned(),
                |end| format!("It runs until {}.", day(end)),
            );
            (
                "Your Kaunter receipt",
                format!(
                    "Thank you: we received {amount} for {what}. {until}\n\nPayment reference: {payment_id}\n\nKaunter\n"
                ),
            )
        }
        Language::Malay => {
            let until = paid_until.map_or_else(
                || "Ia tiada tarikh tamat.".to_owned(),
                |end| format!("Ia berjalan sehingga {}.", day(end)),
            );
            (
                "Resit Kaunter anda",
                format!(
                    "Terima kasih: kami telah menerima {amount} untuk {what}. {until}\n\nRujukan bayaran: {payment_id}\n\nKaunter\n"
                ),
            )
        }
    };
    enqueue_once(
        tx,
        tenant,
        ("RECEIPT", &payment_id.to_string()),
        &to,
        subject,
        &body,
    )
    .await
}

/// Puts a notice of a refund in the business's outbox (once per refund), in the business's
/// language: how much went back for which payment and what became of what it paid for:
/// unchanged by a partial refund, taken back by a full one (`access_until`: when full access
/// now ends), or already used up.
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
    let amount = ringgit(amount_sen);
    let (subject, body) = match language(tx, tenant).await? {
        Language::English => {
            let effect = match (in_full, access_until) {
                (false, _) => {
                    "It is a part of that payment: what it paid for is unchanged.".to_owned()
                }
                (true, Some(end)) => format!(
                    "That payment is now refunded in full and what it paid for was taken back: full access runs until {}.",
                    day(end)
                ),
                (true, None) => {
                    "That payment is now refunded in full; nothing it paid for was still to come."
                        .to_owned()
                }
            };
            (
                "Your Kaunter refund",
                format!(
                    "We refunded {amount} of payment {payment}. {effect}\n\nRefund reference: {refund_id}\n\nKaunter\n"
                ),
            )
        }
        Language::Malay => {
            let effect = match (in_full, access_until) {
                (false, _) => {
                    "Ia sebahagian daripada bayaran itu: apa yang dibayarnya tidak berubah."
                        .to_owned()
                }
                (true, Some(end)) => format!(
                    "Bayaran itu kini dibayar balik sepenuhnya dan apa yang dibayarnya telah ditarik balik: akses penuh berjalan sehingga {}.",
                    day(end)
                ),
                (true, None) => {
                    "Bayaran itu kini dibayar balik sepenuhnya; tiada lagi tempoh yang dibayarnya berbaki."
                        .to_owned()
                }
            };
            (
                "Bayaran balik Kaunter anda",
                format!(
                    "Kami telah membayar balik {amount} daripada bayaran {payment}. {effect}\n\nRujukan bayaran balik: {refund_id}\n\nKaunter\n"
                ),
            )
        }
    };
    enqueue_once(
        tx,
        tenant,
        ("REFUND", &refund_id.to_string()),
        &to,
        subject,
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
    deliver_holding_a_slot(pool, tenant, mailer).await
}

/// [`deliver`]'s work, for a caller that holds one of the [`DELIVERIES`] slots.
async fn deliver_holding_a_slot(pool: &Pool, tenant: TenantId, mailer: &Mailer) -> Result<usize> {
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
pub async fn sweep(pool: &Pool, mailer: Option<std::sync::Arc<Mailer>>) -> Result<usize> {
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
        // What is due goes into the outbox here; the talking to the relay happens in the
        // background, waiting for one of the MAX_CONCURRENT_DELIVERIES slots, so one slow relay
        // conversation does not hold up the other businesses' looks.
        match (look(pool, tenant, None).await, mailer.clone()) {
            (Ok(true), Some(mailer)) => {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let Ok(_permit) = DELIVERIES.acquire().await else {
                        return;
                    };
                    if let Err(error) = deliver_holding_a_slot(&pool, tenant, &mailer).await {
                        tracing::warn!(%tenant, %error, "notices not delivered; tried again at the next turn");
                    }
                });
            }
            (Ok(_), _) => {}
            (Err(error), _) => {
                tracing::warn!(%tenant, %error, "notices not looked at; tried again at the next turn");
            }
        }
    }
    Ok(due.len())
}

/// Looks at the business's notices (when its hourly look is due) and delivers what waits when
/// given a relay; says whether anything waits to be delivered.
async fn look(pool: &Pool, tenant: TenantId, mailer: Option<&Mailer>) -> Result<bool> {
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
    Ok(waiting)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use kaunter_core::subscription::{Plan, PricingModel};

    fn every_notice() -> Vec<Notice> {
        let end = Utc.with_ymd_and_hms(2026, 3, 9, 16, 30, 0).unwrap();
        Notice::KINDS
            .into_iter()
            .map(|kind| Notice::from_parts(kind, end).unwrap_or_else(|| panic!("{kind}")))
            .collect()
    }

    #[test]
    fn every_notice_is_written_in_both_languages_with_the_business_and_its_date() {
        let notices = every_notice();
        assert_eq!(notices.len(), 6);
        for notice in &notices {
            let english = render(notice, "Klinik Aman", Language::English);
            let malay = render(notice, "Klinik Aman", Language::Malay);
            for (subject, body) in [&english, &malay] {
                assert!(subject.contains("Kaunter"), "{subject}");
                assert!(body.contains("Klinik Aman"), "{body}");
                // 16:30 UTC on 9 March is 10 March in Malaysia.
                assert!(body.contains("10/03/2026"), "{body}");
                assert!(body.ends_with("Kaunter\n"), "{body}");
            }
            assert_ne!(english.0, malay.0, "{notice:?}");
            assert_ne!(english.1, malay.1, "{notice:?}");
        }
        // Each notice has a subject of its own, in each language.
        for language in [Language::English, Language::Malay] {
            let mut subjects: Vec<String> = notices
                .iter()
                .map(|notice| render(notice, "Klinik Aman", language).0)
                .collect();
            subjects.sort();
            subjects.dedup();
            assert_eq!(subjects.len(), 6, "{language:?}: {subjects:?}");
        }
        let (subject, body) = render(&notices[0], "Klinik Aman", Language::Malay);
        assert_eq!(subject, "Tempoh percubaan Kaunter anda tamat dalam 3 hari");
        assert!(body.starts_with("Tempoh percubaan percuma Klinik Aman tamat pada 10/03/2026."));
    }

    #[test]
    fn amounts_and_plans_read_as_people_write_them() {
        let table = [
            (0, "RM 0.00"),
            (5, "RM 0.05"),
            (4_900, "RM 49.00"),
            (123_456, "RM 1,234.56"),
            (100_000_000, "RM 1,000,000.00"),
            (-2_550, "-RM 25.50"),
        ];
        for (sen, want) in table {
            assert_eq!(ringgit(sen), want, "{sen}");
        }
        let growth = Purchase {
            plan: Plan::Growth,
            cycle: BillingCycle::Monthly,
            pricing: PricingModel::Subscription,
        };
        assert_eq!(
            purchase_words(&growth, Language::English),
            "Growth (monthly)"
        );
        assert_eq!(purchase_words(&growth, Language::Malay), "Growth (bulanan)");
        let licence = Purchase {
            plan: Plan::Pro,
            cycle: BillingCycle::OneTime,
            pricing: PricingModel::Perpetual,
        };
        assert_eq!(
            purchase_words(&licence, Language::English),
            "Pro (a perpetual licence)"
        );
        assert_eq!(
            purchase_words(&licence, Language::Malay),
            "Pro (lesen kekal)"
        );
    }
}
