//! The tenant-wide catalogue and what each desk pulls, end to end over real HTTP with real
//! desks (SQLite stores) and the real server on a fresh database:
//! - a catalogue item made at one branch reaches every desk of every branch of its business,
//!   and no desk of another business;
//! - two branches' desks change different fields of one item offline and both edits survive;
//! - a desk of branch scope holds only its own branch's patients, a desk of business scope
//!   every branch's, and may not change another branch's;
//! - after every round each desk's digest agrees with the server's checkpoint (no repair).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use chrono::Utc;
use common::{enrolled_store, patient};
use kaunter_protocol::http::{Entity, PullScope};
use kaunter_protocol::records::{CatalogueItemRecord, CatalogueKind, TaxCode, ringgit};
use kaunter_store::{NewCatalogueItem, Store, StoreError};
use kaunter_sync_client::{SyncClient, SyncEngine};
use kaunter_sync_server::admin::{self, DEFAULT_ENROLMENT_CODE_TTL};
use kaunter_sync_server::ids::{BranchId, TenantId};
use kaunter_sync_server::test_support::{TestDatabase, TestServer};
use serde_json::json;
use uuid::Uuid;

struct Desk {
    store: Arc<Mutex<Store>>,
    engine: SyncEngine,
    _dir: tempfile::TempDir,
}

impl Desk {
    async fn enrol(
        server: &TestServer,
        tenant: TenantId,
        branch: BranchId,
        scope: PullScope,
        name: &str,
    ) -> Desk {
        let code = admin::create_enrolment_code_with_scope(
            server.pool(),
            tenant,
            branch,
            DEFAULT_ENROLMENT_CODE_TTL,
            scope,
        )
        .await
        .unwrap();
        let enrolled = SyncClient::enrol_rotating(&server.base_url, &code, name)
            .await
            .unwrap();
        assert_eq!(enrolled.scope, scope);
        let dir = tempfile::tempdir().unwrap();
        let store = enrolled_store(dir.path(), &enrolled, name, &server.base_url);
        let client = SyncClient::with_credentials(&server.base_url, store.credentials()).unwrap();
        let store = Arc::new(Mutex::new(store));
        Desk {
            engine: SyncEngine::new(store.clone(), client),
            store,
            _dir: dir,
        }
    }

    /// One round; the desk's rows must then agree with the server's checkpoint.
    async fn sync(&self) {
        let report = self.engine.sync_now(Utc::now).await.unwrap();
        assert!(
            !report.repaired,
            "the desk's digest disagreed with the server's"
        );
        assert_eq!(report.rejected, 0, "the server refused a change");
    }

    fn register(&self, name: &str, number: &str) -> Uuid {
        self.store
            .lock()
            .unwrap()
            .register_patient(&patient(name, number), Utc::now())
            .unwrap()
            .id
    }

    fn patients(&self) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .store
            .lock()
            .unwrap()
            .row_states(Entity::Patient)
            .unwrap()
            .into_iter()
            .map(|(id, ..)| id)
            .collect();
        ids.sort_unstable();
        ids
    }

    fn catalogue(&self) -> Vec<CatalogueItemRecord> {
        self.store.lock().unwrap().catalogue(true).unwrap()
    }
}

fn consultation(code: &str) -> NewCatalogueItem {
    NewCatalogueItem {
        kind: CatalogueKind::Service,
        code: code.to_owned(),
        name: "Consultation".to_owned(),
        price: ringgit::parse("50.00").unwrap(),
        tax: TaxCode::Exempt,
        duration_minutes: Some(15),
        active: true,
    }
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn the_catalogue_reaches_every_branch_and_patients_only_their_scope() {
    let db = TestDatabase::create().await.unwrap();
    let server = db.spawn_server().await.unwrap();
    let pool = server.pool();
    let ours = admin::create_business(pool, "Klinik Dua Cawangan", "Main", None)
        .await
        .unwrap();
    let second = admin::add_branch(pool, ours.tenant_id, "Cawangan Ipoh", Some("IPH"))
        .await
        .unwrap();
    let theirs = admin::create_business(pool, "Klinik Lain", "Main", None)
        .await
        .unwrap();

    let main_desk = Desk::enrol(
        &server,
        ours.tenant_id,
        ours.branch_id,
        PullScope::Branch,
        "Main 1",
    )
    .await;
    let ipoh_desk = Desk::enrol(
        &server,
        ours.tenant_id,
        second.branch_id,
        PullScope::Branch,
        "Ipoh 1",
    )
    .await;
    let office = Desk::enrol(
        &server,
        ours.tenant_id,
        ours.branch_id,
        PullScope::Business,
        "Head office",
    )
    .await;
    let other = Desk::enrol(
        &server,
        theirs.tenant_id,
        theirs.branch_id,
        PullScope::Business,
        "Lain 1",
    )
    .await;

    let at_main = main_desk.register("Aminah binti Ali", "900101-14-5678");
    let at_ipoh = ipoh_desk.register("Tan Mei Ling", "881224-14-6248");
    let elsewhere = other.register("Aminah binti Ali", "900101-14-5678");
    let item = main_desk
        .store
        .lock()
        .unwrap()
        .add_catalogue_item(&consultation("SVC-01"), Utc::now())
        .unwrap();
    other
        .store
        .lock()
        .unwrap()
        .add_catalogue_item(&consultation("LAIN-01"), Utc::now())
        .unwrap();
    for desk in [
        &main_desk, &ipoh_desk, &other, &office, &main_desk, &ipoh_desk,
    ] {
        desk.sync().await;
    }

    // The catalogue is tenant-wide: both branches and the office hold the one item, and the
    // other business's item reaches none of them.
    for desk in [&main_desk, &ipoh_desk, &office] {
        assert_eq!(desk.catalogue(), std::slice::from_ref(&item));
    }
    assert_eq!(other.catalogue().len(), 1);
    assert_eq!(other.catalogue()[0].code, "LAIN-01");
    // Patients stay in their scope.
    assert_eq!(main_desk.patients(), [at_main]);
    assert_eq!(ipoh_desk.patients(), [at_ipoh]);
    assert_eq!(office.patients(), sorted(vec![at_main, at_ipoh]));
    assert_eq!(other.patients(), [elsewhere]);

    // Offline, Ipoh raises the price while Main renames the item: both edits survive.
    ipoh_desk
        .store
        .lock()
        .unwrap()
        .edit_row(
            Entity::CatalogueItem,
            item.id,
            [("price".to_owned(), json!("55.00"))].into(),
            Utc::now(),
        )
        .unwrap();
    main_desk
        .store
        .lock()
        .unwrap()
        .edit_row(
            Entity::CatalogueItem,
            item.id,
            [("name".to_owned(), json!("Consultation (GP)"))].into(),
            Utc::now(),
        )
        .unwrap();
    for desk in [&ipoh_desk, &main_desk, &ipoh_desk, &office] {
        desk.sync().await;
    }
    let merged = CatalogueItemRecord {
        name: "Consultation (GP)".to_owned(),
        price: ringgit::parse("55.00").unwrap(),
        ..item.clone()
    };
    for desk in [&main_desk, &ipoh_desk, &office] {
        assert_eq!(desk.catalogue(), std::slice::from_ref(&merged));
    }
    // The item keeps the branch it was made at, on the server too.
    let owner = db.owner_client().await.unwrap();
    let (branch, price): (Uuid, i64) = {
        let row = owner
            .query_one(
                "SELECT branch_id, price_sen FROM catalogue_items WHERE item_id = $1",
                &[&item.id],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!((branch, price), (ours.branch_id.as_uuid(), 5500));

    // The office reads Ipoh's patient but does not change it; an invalid item is refused.
    {
        let mut store = office.store.lock().unwrap();
        assert!(matches!(
            store.edit_row(
                Entity::Patient,
                at_ipoh,
                [("full_name".to_owned(), json!("Tan Mei Ling binti X"))].into(),
                Utc::now(),
            ),
            Err(StoreError::OtherBranch)
        ));
        assert!(matches!(
            store.add_catalogue_item(&consultation("has space"), Utc::now()),
            Err(StoreError::InvalidRecord(errors)) if errors[0].field == "code"
        ));
        assert!(matches!(
            store.edit_row(
                Entity::CatalogueItem,
                item.id,
                [("duration_minutes".to_owned(), json!(0))].into(),
                Utc::now(),
            ),
            Err(StoreError::InvalidRecord(errors)) if errors[0].field == "duration_minutes"
        ));
        assert_eq!(store.sync_state().unwrap().pending, 0);
    }

    // Deactivating keeps the item (old sales name it) but takes it off the active list.
    main_desk
        .store
        .lock()
        .unwrap()
        .edit_row(
            Entity::CatalogueItem,
            item.id,
            [("active".to_owned(), json!(false))].into(),
            Utc::now(),
        )
        .unwrap();
    main_desk.sync().await;
    ipoh_desk.sync().await;
    {
        let ipoh = ipoh_desk.store.lock().unwrap();
        assert!(ipoh.catalogue(false).unwrap().is_empty());
        assert_eq!(ipoh.catalogue(true).unwrap().len(), 1);
    }

    // A desk of the previous schema (3) is sent the rows it knows, no catalogue, no checkpoint.
    let token = ipoh_desk.store.lock().unwrap().device_token().unwrap();
    let http = reqwest::Client::new();
    for (version, items) in [(3, 0), (kaunter_protocol::SCHEMA_VERSION, 1)] {
        let page: kaunter_protocol::http::PullResponse = http
            .get(server.url(&format!("/v1/sync/pull?cursor=0&schema_version={version}")))
            .bearer_auth(token.as_str())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let catalogue = page
            .changes
            .iter()
            .filter(|pulled| pulled.change.entity == Entity::CatalogueItem)
            .map(|pulled| pulled.change.row_id)
            .collect::<std::collections::HashSet<_>>();
        assert_eq!(catalogue.len(), items, "schema {version}");
        assert_eq!(page.checkpoint.is_some(), items == 1, "schema {version}");
    }
}
