//! Head office's review of emergency openings of clinical records ("break-glass"). Someone whose
//! role does not read clinical records may open one patient's record at a desk in an emergency;
//! the desk records the opening, with the reason given, as an entry of that record
//! (`clinical_entry` of kind `emergency_access`), and every such entry reaches this list
//! flagged until a person with `access.review` records whether it was justified.
//!
//! `GET /v1/emergency-access?state=pending|all` lists them (pending ones by default), newest
//! first; `POST /v1/emergency-access/review` records the review (once; CSRF). An entry of
//! another business is "no such record", exactly like one that does not exist.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use kaunter_core::access::Permission;
use kaunter_protocol::FieldError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::db::TenantTx;
use crate::error::{Error, Result};
use crate::extract::{JsonBody, QueryParams};
use crate::routes::auth::{self, SessionCookie};

/// How many openings one answer lists at most (newest first).
const LIST_LIMIT: i64 = 500;
/// The longest review note accepted (the column's limit).
const NOTE_MAX_CHARS: usize = 2000;

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewFilter {
    /// Not reviewed yet.
    #[default]
    Pending,
    All,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pub state: ReviewFilter,
}

/// What head office decided about one opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewOutcome {
    Justified,
    NotJustified,
}

impl ReviewOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ReviewOutcome::Justified => "justified",
            ReviewOutcome::NotJustified => "not_justified",
        }
    }

    fn parse(text: &str) -> Option<ReviewOutcome> {
        [ReviewOutcome::Justified, ReviewOutcome::NotJustified]
            .into_iter()
            .find(|outcome| outcome.as_str() == text)
    }
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EmergencyReview {
    pub outcome: ReviewOutcome,
    pub note: String,
    pub reviewed_by: Uuid,
    pub reviewed_by_name: Option<String>,
    pub reviewed_at: DateTime<Utc>,
}

/// One emergency opening of a clinical record.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EmergencyAccessView {
    pub entry_id: Uuid,
    pub branch_id: Uuid,
    pub branch_name: Option<String>,
    pub patient_id: Uuid,
    /// The patient's name as the server holds it (none if the registration has not arrived).
    pub patient_name: Option<String>,
    /// Who opened it (none at a desk nobody signs in to).
    pub opened_by: Option<Uuid>,
    pub opened_by_name: Option<String>,
    pub reason: String,
    /// When the desk recorded it.
    pub opened_at: DateTime<Utc>,
    /// None while it waits for review.
    pub review: Option<EmergencyReview>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct EmergencyAccessList {
    pub openings: Vec<EmergencyAccessView>,
    /// How many of the business's openings wait for review (all of them, not only those listed).
    pub pending: i64,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub entry_id: Uuid,
    pub outcome: ReviewOutcome,
    #[serde(default)]
    pub note: String,
}

const SELECT_OPENINGS: &str = "SELECT e.entry_id, e.branch_id, b.name, e.patient_id, p.full_name,
            e.author_id, a.name, e.body, e.recorded_at,
            r.outcome, r.note, r.reviewed_by, rb.name, r.reviewed_at
     FROM clinical_entries e
     LEFT JOIN branches b ON b.tenant_id = e.tenant_id AND b.branch_id = e.branch_id
     LEFT JOIN patients p ON p.tenant_id = e.tenant_id AND p.patient_id = e.patient_id
     LEFT JOIN users a ON a.tenant_id = e.tenant_id AND a.user_id = e.author_id
     LEFT JOIN emergency_access_reviews r
          ON r.tenant_id = e.tenant_id AND r.entry_id = e.entry_id
     LEFT JOIN users rb ON rb.tenant_id = r.tenant_id AND rb.user_id = r.reviewed_by
     WHERE e.tenant_id = $1 AND e.kind = 'emergency_access'";

fn decode(row: &tokio_postgres::Row) -> Result<EmergencyAccessView> {
    let outcome: Option<String> = row.try_get(9)?;
    let review = match outcome {
        None => None,
        Some(outcome) => Some(EmergencyReview {
            outcome: ReviewOutcome::parse(&outcome).ok_or_else(|| {
                Error::Internal(format!("stored review outcome {outcome:?} is unknown"))
            })?,
            note: row.try_get(10)?,
            reviewed_by: row.try_get(11)?,
            reviewed_by_name: row.try_get(12)?,
            reviewed_at: row.try_get(13)?,
        }),
    };
    Ok(EmergencyAccessView {
        entry_id: row.try_get(0)?,
        branch_id: row.try_get(1)?,
        branch_name: row.try_get(2)?,
        patient_id: row.try_get(3)?,
        patient_name: row.try_get(4)?,
        opened_by: row.try_get(5)?,
        opened_by_name: row.try_get(6)?,
        reason: row.try_get(7)?,
        opened_at: row.try_get(8)?,
        review,
    })
}

pub async fn list(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<EmergencyAccessList>> {
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::AccessReview)?;
    let only_pending = matches!(query.state, ReviewFilter::Pending);
    let rows = tx
        .query(
            &format!(
                "{SELECT_OPENINGS} AND ($2 = false OR r.entry_id IS NULL)
                 ORDER BY e.recorded_at DESC, e.entry_id LIMIT $3"
            ),
            &[&person.tenant_id, &only_pending, &LIST_LIMIT],
        )
        .await?;
    let openings = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
    let pending: i64 = tx
        .query_one(
            "SELECT count(*) FROM clinical_entries e
             WHERE e.tenant_id = $1 AND e.kind = 'emergency_access'
               AND NOT EXISTS (SELECT 1 FROM emergency_access_reviews r
                               WHERE r.tenant_id = e.tenant_id AND r.entry_id = e.entry_id)",
            &[&person.tenant_id],
        )
        .await?
        .try_get(0)?;
    tx.commit().await?;
    Ok(Json(EmergencyAccessList { openings, pending }))
}

pub async fn review(
    State(state): State<AppState>,
    SessionCookie(token): SessionCookie,
    headers: HeaderMap,
    JsonBody(request): JsonBody<ReviewRequest>,
) -> Result<Json<EmergencyAccessView>> {
    auth::require_csrf(&token, &headers)?;
    let note = request.note.trim().to_owned();
    if note.chars().count() > NOTE_MAX_CHARS || note.contains('\0') {
        return Err(Error::ValidationFailed(vec![FieldError {
            field: "note".to_owned(),
            code: "invalid".to_owned(),
            message: format!("A review note is at most {NOTE_MAX_CHARS} characters of text."),
        }]));
    }
    let mut client = state.pool().get().await?;
    let tx = TenantTx::begin(&mut client, token.tenant_id).await?;
    let person = auth::person(&tx, &token).await?;
    person.require(Permission::AccessReview)?;
    let known = tx
        .query_opt(
            "SELECT 1 FROM clinical_entries
             WHERE tenant_id = $1 AND entry_id = $2 AND kind = 'emergency_access'",
            &[&person.tenant_id, &request.entry_id],
        )
        .await?
        .is_some();
    if !known {
        return Err(Error::UnknownRecord);
    }
    let inserted = tx
        .execute(
            "INSERT INTO emergency_access_reviews (tenant_id, entry_id, outcome, note, reviewed_by)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            &[
                &person.tenant_id,
                &request.entry_id,
                &request.outcome.as_str(),
                &note,
                &person.user_id,
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(Error::AlreadyReviewed);
    }
    let row = tx
        .query_one(
            &format!("{SELECT_OPENINGS} AND e.entry_id = $2"),
            &[&person.tenant_id, &request.entry_id],
        )
        .await?;
    let view = decode(&row)?;
    tx.commit().await?;
    tracing::info!(tenant = %person.tenant_id, user = %person.user_id, entry = %request.entry_id,
                   outcome = request.outcome.as_str(), "emergency opening reviewed");
    Ok(Json(view))
}
