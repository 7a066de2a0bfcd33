//! What the desk-and-server tests of this crate share: a desk's store enrolled from the
//! server's answer, and a registration with the network irrelevant. Each test binary uses
//! some of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, Utc};
use kaunter_core::{IdType, NewPatient, RegistrationForm};
use kaunter_protocol::http::EnrolResponse;
use kaunter_store::{DeskIdentity, MemorySecretStore, Store};

/// A store in `dir` enrolled with `enrolled` (its rotating credentials, when it has them, in an
/// in-memory secret store).
pub fn enrolled_store(dir: &Path, enrolled: &EnrolResponse, name: &str, server_url: &str) -> Store {
    let mut store = Store::open(dir.join("desk.db"), Arc::new(MemorySecretStore::new())).unwrap();
    store
        .enrol_with_refresh(
            DeskIdentity::from_enrolment(enrolled, name, server_url),
            &enrolled.device_token,
            enrolled.refresh_token.as_deref(),
        )
        .unwrap();
    store
}

/// A valid MyKad registration (the birth date and sex come from the number).
pub fn patient(name: &str, mykad: &str) -> NewPatient {
    NewPatient::validate(
        &RegistrationForm {
            full_name: name,
            id_type: IdType::MyKad,
            id_number: mykad,
            phone: "",
            date_of_birth: None,
            sex: None,
        },
        NaiveDate::from_ymd_opt(2026, 12, 1).unwrap(),
    )
    .unwrap()
}

/// Registers a patient at the desk (must succeed).
pub fn register(store: &Mutex<Store>, name: &str, mykad: &str) {
    store
        .lock()
        .unwrap()
        .register_patient(&patient(name, mykad), Utc::now())
        .unwrap();
}

/// A head-office session: its cookie (`name=value`) and its view (CSRF token, who).
pub struct HeadOffice {
    pub cookie: String,
    pub view: kaunter_protocol::http::SessionView,
}

/// Logs `email` of the business `slug` in at head office.
pub async fn log_in(
    http: &reqwest::Client,
    server: &kaunter_sync_server::test_support::TestServer,
    slug: &str,
    email: &str,
    password: &str,
) -> HeadOffice {
    let login = http
        .post(server.url("/v1/auth/login"))
        .json(&serde_json::json!({"business": slug, "email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert!(
        login.status().is_success(),
        "login of {email}: {}",
        login.status()
    );
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    HeadOffice {
        cookie,
        view: login.json().await.unwrap(),
    }
}

/// Signs a clinic up with `slug` (its ADMIN `admin@<slug>.my`), logs the ADMIN in and sets
/// their desk PIN.
pub async fn clinic_with_admin_pin(
    http: &reqwest::Client,
    server: &kaunter_sync_server::test_support::TestServer,
    slug: &str,
    pin: &str,
) -> (kaunter_protocol::http::SignUpResponse, HeadOffice) {
    use kaunter_sync_server::test_support::{ADMIN_PASSWORD, sign_up_form};
    let email = format!("admin@{slug}.my");
    let created = http
        .post(server.url("/v1/signup"))
        .json(&sign_up_form(slug, &format!("Klinik {slug}"), &email))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = log_in(http, server, slug, &email, ADMIN_PASSWORD).await;
    let set = http
        .post(server.url("/v1/auth/pin"))
        .header("cookie", &admin.cookie)
        .header("x-csrf-token", &admin.view.csrf_token)
        .json(&serde_json::json!({ "pin": pin }))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), reqwest::StatusCode::NO_CONTENT);
    (created, admin)
}
