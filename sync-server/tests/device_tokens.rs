//! Rotating desk credentials over real HTTP: a short-lived device token renewed with a refresh
//! token that works once; a retry after a lost answer succeeds within the grace; a refresh
//! token used again later revokes the desk; an expired device token is told apart; desks that
//! did not ask keep a long-lived token.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use kaunter_protocol::http::{EnrolResponse, RefreshResponse, error_code};
use kaunter_sync_server::AppState;
use kaunter_sync_server::admin::{self, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::test_support::{TestDatabase, TestServer};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Office {
    http: reqwest::Client,
    server: TestServer,
    business: admin::CreatedBusiness,
}

async fn office(db: &TestDatabase, access_ttl: Duration) -> Office {
    let server =
        TestServer::start(AppState::new(db.app_pool().unwrap()).with_access_token_ttl(access_ttl))
            .await
            .unwrap();
    let business = admin::create_business(server.pool(), "Klinik Token", "Utama", None)
        .await
        .unwrap();
    Office {
        http: reqwest::Client::new(),
        server,
        business,
    }
}

impl Office {
    async fn enrol(&self, rotating: bool) -> EnrolResponse {
        let code = admin::create_enrolment_code(
            self.server.pool(),
            self.business.tenant_id,
            self.business.branch_id,
            DEFAULT_ENROLMENT_CODE_TTL,
        )
        .await
        .unwrap();
        let response = self
            .http
            .post(self.server.url("/v1/enrol"))
            .json(&json!({"code": code, "device_name": "Kaunter 1",
                          "rotating_credentials": rotating}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// A pull with `token`: its status and error code.
    async fn pull(&self, token: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(self.server.url("/v1/sync/pull?schema_version=3"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        (status, body["code"].as_str().unwrap_or("").to_owned())
    }

    async fn refresh(&self, refresh_token: &str) -> Result<RefreshResponse, (StatusCode, String)> {
        let response = self
            .http
            .post(self.server.url("/v1/devices/refresh"))
            .json(&json!({ "refresh_token": refresh_token }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        if status == StatusCode::OK {
            return Ok(response.json().await.unwrap());
        }
        let body: Value = response.json().await.unwrap();
        Err((status, body["code"].as_str().unwrap_or("").to_owned()))
    }
}

#[tokio::test]
async fn a_refresh_token_works_once_and_a_copy_used_later_revokes_the_desk() {
    let db = TestDatabase::create().await.unwrap();
    let o = office(&db, Duration::from_secs(15 * 60)).await;

    // A desk that did not ask keeps a long-lived token and gets no refresh token.
    let legacy = o.enrol(false).await;
    assert_eq!(
        (legacy.refresh_token.as_ref(), legacy.access_expires_at),
        (None, None)
    );
    assert_eq!(o.pull(&legacy.device_token).await.0, StatusCode::OK);

    let desk = o.enrol(true).await;
    let first_refresh = desk.refresh_token.clone().expect("a refresh token");
    let minutes = (desk.access_expires_at.unwrap() - chrono::Utc::now()).num_minutes();
    assert!((14..=15).contains(&minutes), "{minutes}");
    assert_eq!(o.pull(&desk.device_token).await.0, StatusCode::OK);

    // Exchanged: the old device token stops working, the new one works.
    let second = o.refresh(&first_refresh).await.unwrap();
    assert_eq!(o.pull(&desk.device_token).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(o.pull(&second.device_token).await.0, StatusCode::OK);
    assert_ne!(second.refresh_token, first_refresh);

    // The desk never got that answer and tries again at once: it gets a fresh pair, and the
    // pair it never received is withdrawn.
    let retried = o.refresh(&first_refresh).await.unwrap();
    assert_eq!(
        o.pull(&second.device_token).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(o.pull(&retried.device_token).await.0, StatusCode::OK);

    // The desk moves on; later, a copy of a spent token turns up: the desk is revoked.
    let third = o.refresh(&retried.refresh_token).await.unwrap();
    assert_eq!(o.pull(&third.device_token).await.0, StatusCode::OK);
    db.owner_client()
        .await
        .unwrap()
        .batch_execute(
            "UPDATE device_refresh_tokens SET used_at = used_at - interval '2 days'
             WHERE used_at IS NOT NULL",
        )
        .await
        .unwrap();
    let reused = o.refresh(&retried.refresh_token).await.unwrap_err();
    assert_eq!(
        reused,
        (
            StatusCode::UNAUTHORIZED,
            error_code::REFRESH_TOKEN_REUSED.to_owned()
        )
    );
    assert_eq!(
        o.pull(&third.device_token).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        o.refresh(&third.refresh_token).await.unwrap_err().0,
        StatusCode::UNAUTHORIZED,
        "every token of the desk's chain is dead"
    );
    let status = admin::sync_status(o.server.pool(), o.business.tenant_id)
        .await
        .unwrap();
    let revoked: Vec<bool> = status.iter().map(|desk| desk.revoked).collect();
    assert_eq!(revoked.iter().filter(|r| **r).count(), 1, "{revoked:?}");
    // The other desk is untouched.
    assert_eq!(o.pull(&legacy.device_token).await.0, StatusCode::OK);

    // Garbled, forged and withdrawn tokens get the plain refusal.
    for token in [
        "kr1.garbled".to_owned(),
        format!(
            "kr1.{}.{}.{}",
            o.business.tenant_id,
            uuid::Uuid::now_v7(),
            "A".repeat(43)
        ),
        first_refresh.replace(
            &o.business.tenant_id.to_string(),
            &uuid::Uuid::now_v7().to_string(),
        ),
    ] {
        assert_eq!(
            o.refresh(&token).await.unwrap_err().0,
            StatusCode::UNAUTHORIZED,
            "{token}"
        );
    }
    drop(o);
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn two_refreshes_of_one_token_at_once_leave_the_desk_enrolled() {
    let db = TestDatabase::create().await.unwrap();
    let o = office(&db, Duration::from_secs(15 * 60)).await;
    for _ in 0..5 {
        let desk = o.enrol(true).await;
        let token = desk.refresh_token.unwrap();
        let (a, b) = tokio::join!(o.refresh(&token), o.refresh(&token));
        // Both are the desk asking (its first answer "lost"): both succeed, one pair is the
        // live one, and the desk is not revoked.
        let (a, b) = (a.unwrap(), b.unwrap());
        let a_works = o.pull(&a.device_token).await.0 == StatusCode::OK;
        let b_works = o.pull(&b.device_token).await.0 == StatusCode::OK;
        assert!(
            a_works != b_works,
            "exactly one pair is live: {a_works} {b_works}"
        );
    }
    let status = admin::sync_status(o.server.pool(), o.business.tenant_id)
        .await
        .unwrap();
    assert_eq!(status.len(), 5);
    assert!(status.iter().all(|desk| !desk.revoked));
    drop(o);
    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn an_expired_device_token_is_told_apart_and_renewed() {
    let db = TestDatabase::create().await.unwrap();
    let o = office(&db, Duration::from_secs(1)).await;
    let desk = o.enrol(true).await;
    assert_eq!(o.pull(&desk.device_token).await.0, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        o.pull(&desk.device_token).await,
        (
            StatusCode::UNAUTHORIZED,
            error_code::TOKEN_EXPIRED.to_owned()
        )
    );
    let renewed = o
        .refresh(desk.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(o.pull(&renewed.device_token).await.0, StatusCode::OK);
    // A revoked desk's refresh token is refused too.
    admin::revoke_device(
        o.server.pool(),
        o.business.tenant_id,
        kaunter_sync_server::ids::DeviceId::from_uuid(desk.device_id),
    )
    .await
    .unwrap();
    assert_eq!(
        o.refresh(&renewed.refresh_token).await.unwrap_err(),
        (
            StatusCode::UNAUTHORIZED,
            error_code::UNAUTHORIZED.to_owned()
        )
    );
    drop(o);
    db.drop_db().await.unwrap();
}
