//! What the store's tests of people at the desk share: an enrolled desk, roster members with
//! PIN hashes, and a registration made with a permission check, as a desktop command makes it.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, SaltString};
use chrono::{NaiveDate, Utc};
use kaunter_core::access::Permission;
use kaunter_core::{BranchId, DeviceId, IdType, NewPatient, RegistrationForm, TenantId};
use kaunter_protocol::http::{StaffMember, StaffResponse};
use kaunter_store::{DeskIdentity, MemorySecretStore, Store, StoreError};
use uuid::Uuid;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration};
use ed25519_dalek::{Signer, SigningKey};
use kaunter_protocol::http::{Licence, SignedLicence};

pub fn pin_hash(pin: &str) -> String {
    let salt = SaltString::encode_b64(b"a salt of sixteen").unwrap();
    argon2::Argon2::default()
        .hash_password(pin.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

pub fn member(name: &str, pin: &str, permissions: &[Permission]) -> StaffMember {
    StaffMember {
        user_id: Uuid::now_v7(),
        name: name.into(),
        roles: vec!["STAFF".into()],
        permissions: permissions.iter().map(|p| p.as_str().to_owned()).collect(),
        pin_verifier: pin_hash(pin),
    }
}

/// An enrolled desk's store in `dir`, over `secrets`.
pub fn desk(path: &std::path::Path, secrets: Arc<MemorySecretStore>) -> Store {
    let mut store = Store::open(path, secrets).unwrap();
    store
        .enrol(
            DeskIdentity {
                tenant_id: TenantId::generate(),
                branch_id: BranchId::generate(),
                device_id: DeviceId::generate(),
                device_name: "Kaunter 1".into(),
                server_url: "http://127.0.0.1:1".into(),
                business_name: "Klinik Ujian".into(),
                branch_name: "Utama".into(),
            },
            "kt1.token",
        )
        .unwrap();
    store
}

pub fn roster(staff: &[&StaffMember]) -> StaffResponse {
    StaffResponse {
        staff: staff.iter().map(|member| (*member).clone()).collect(),
        sign_in_required: true,
    }
}

/// A valid MyKad registration (the birth date and sex come from the number).
pub fn patient_form(name: &str, mykad: &str) -> NewPatient {
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

pub fn register(store: &mut Store, name: &str, mykad: &str) -> Result<(), StoreError> {
    store.require(Permission::PatientsWrite)?;
    store
        .register_patient(&patient_form(name, mykad), Utc::now())
        .map(|_| ())
}

/// A lease for `store`'s desk issued at `issued_at`, full for `full_days` then 7 read-only.
pub fn lease(store: &Store, issued_at: DateTime<Utc>, full_days: i64) -> Licence {
    let identity = store.identity().unwrap();
    Licence {
        version: 1,
        tenant_id: identity.tenant_id.as_uuid(),
        device_id: identity.device_id.as_uuid(),
        plan: "PRO".into(),
        modules: vec!["CLINIC".into()],
        max_modules: Some(5),
        max_users: Some(25),
        max_devices: Some(10),
        state: "TRIAL".into(),
        issued_at,
        full_until: issued_at + Duration::days(full_days),
        read_only_until: issued_at + Duration::days(full_days + 7),
    }
}

pub fn sign(key: &SigningKey, licence: &Licence) -> SignedLicence {
    let payload = serde_json::to_vec(licence).unwrap();
    SignedLicence {
        payload: STANDARD.encode(&payload),
        signature: STANDARD.encode(key.sign(&payload).to_bytes()),
        public_key: STANDARD.encode(key.verifying_key().to_bytes()),
    }
}
