//! Row-level security, proven from the catalog and by behaviour: every tenant table has RLS
//! enabled and forced with a policy, the app role cannot bypass it, and a session as the app role
//! with no tenant (or '') sees no row even though rows exist.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use kaunter_sync_server::enrolment_code::EnrolmentCode;
use kaunter_sync_server::test_support::TestDatabase;
use tokio_postgres::Client;
use uuid::Uuid;

/// Tables in `public` allowed to have no tenant_id (and so no RLS). Adding one is a decision.
/// `login_failures` counts failed logins by hashed key before any tenant is known;
/// `signing_keys` holds the server's licence key, no business's data;
/// `webhook_deliveries` logs payment webhooks, which arrive before any tenant is known (and a
/// forged one names none); the app role may write it but not read its details;
/// `notice_schedule` says when the server's sweep next looks at a business's notices (ids and
/// times only): the sweep must find whom to look at before it can enter any business.
const TABLES_WITHOUT_TENANT: &[&str] = &[
    "login_failures",
    "notice_schedule",
    "schema_migrations",
    "signing_keys",
    "webhook_deliveries",
];

async fn tenant_tables(owner: &Client) -> Vec<String> {
    owner
        .query(
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
               AND EXISTS (SELECT FROM pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                             AND NOT a.attisdropped)
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

async fn count(client: &Client, table: &str) -> i64 {
    client
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Two tenants with a row in every tenant table, inserted as the owner (a superuser, so RLS
/// does not stand in the way). Returns the tenants and the hex hash of tenant A's code.
async fn seed(owner: &Client) -> (Uuid, Uuid, String) {
    let (tenant_a, tenant_b) = (Uuid::now_v7(), Uuid::now_v7());
    let mut code_a = String::new();
    for tenant in [tenant_a, tenant_b] {
        let (branch, device, patient) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let code = EnrolmentCode::generate().unwrap().hash();
        if tenant == tenant_a {
            code_a = hex::encode(code);
        }
        owner
            .execute(
                "INSERT INTO tenants (tenant_id, name, change_seq, slug)
                 VALUES ($1, 'Klinik ' || $2, 1, 'klinik-' || $2)",
                &[&tenant, &if tenant == tenant_a { "a" } else { "b" }],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO branches (tenant_id, branch_id, name) VALUES ($1, $2, 'Main')",
                &[&tenant, &branch],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO devices (tenant_id, device_id, branch_id, name, token_hash)
                 VALUES ($1, $2, $3, 'Desk', $4)",
                &[&tenant, &device, &branch, &vec![7u8; 32]],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO device_marks (tenant_id, device_id) VALUES ($1, $2)",
                &[&tenant, &device],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO enrolment_codes (tenant_id, code_hash, branch_id, expires_at)
                 VALUES ($1, $2, $3, now() + interval '1 day')",
                &[&tenant, &code.as_slice(), &branch],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO patients (tenant_id, patient_id, branch_id, full_name, id_type,
                     id_number, created_at, updated_at, origin_device_id, last_change_seq)
                 VALUES ($1, $2, $3, 'Siti', 'mykad', '900101145678', now(), now(), $4, 1)",
                &[&tenant, &patient, &branch, &device],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO change_batches (tenant_id, first_seq, last_seq, device_id, seqs,
                     device_seqs, entities, row_ids, actor_ids, approver_ids)
                 VALUES ($1, 1, 1, $2, '{1}', '{1}', '{patient}', ARRAY[$3::uuid],
                         ARRAY[NULL::uuid], ARRAY[NULL::uuid])",
                &[&tenant, &device, &patient],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO rejected_changes (tenant_id, device_id, device_seq, code, message, change)
                 VALUES ($1, $2, 2, 'validation_failed', 'Some fields are not valid.', '{}'::jsonb)",
                &[&tenant, &device],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO conflicts (tenant_id, conflict_id, kind, entity, branch_id, row_a,
                     row_b, version_a, version_b, detected_by)
                 VALUES ($1, gen_random_uuid(), 'duplicate_id_number', 'patient', $2, $3,
                     gen_random_uuid(), '{}'::jsonb, '{}'::jsonb, $4)",
                &[&tenant, &branch, &patient, &device],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO appointments (tenant_id, appointment_id, branch_id, patient_id,
                     practitioner_id, starts_at, ends_at, status, stamps, created_at, updated_at,
                     origin_device_id, last_change_seq)
                 VALUES ($1, gen_random_uuid(), $2, $3, gen_random_uuid(), now(),
                     now() + interval '30 minutes', 'booked', '\\x010000'::bytea, now(), now(), $4, 1)",
                &[&tenant, &branch, &patient, &device],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO cash_movements (tenant_id, movement_id, branch_id, kind, amount_sen,
                     stamps, recorded_at, origin_device_id, last_change_seq)
                 VALUES ($1, gen_random_uuid(), $2, 'payment', 5000, '\\x010000'::bytea, now(), $3, 1)",
                &[&tenant, &branch, &device],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO catalogue_items (tenant_id, item_id, branch_id, kind, code, name,
                     price_sen, tax_code, active, stamps, created_at, updated_at,
                     origin_device_id, last_change_seq)
                 VALUES ($1, gen_random_uuid(), $2, 'service', 'SVC-1', 'Consultation', 5000,
                         'exempt', true, '\\x010000'::bytea, now(), now(), $3, 1)",
                &[&tenant, &branch, &device],
            )
            .await
            .unwrap();
        owner
            .execute(
                "INSERT INTO purged_rows (tenant_id, entity, row_id, branch_id)
                 VALUES ($1, 'patient', gen_random_uuid(), $2)",
                &[&tenant, &branch],
            )
            .await
            .unwrap();
        let (role, user, entry) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        owner
            .batch_execute(&format!(
                "INSERT INTO business_settings (tenant_id, time_zone, currency, date_format,
                     language) VALUES ('{tenant}', 'Asia/Kuala_Lumpur', 'MYR', 'DD/MM/YYYY', 'ms');
                 INSERT INTO roles (tenant_id, role_id, name, built_in)
                     VALUES ('{tenant}', '{role}', 'ADMIN', true);
                 INSERT INTO role_permissions (tenant_id, role_id, permission)
                     VALUES ('{tenant}', '{role}', 'users.manage');
                 INSERT INTO users (tenant_id, user_id, email, email_key, name, status)
                     VALUES ('{tenant}', '{user}', 'a@klinik.my', 'a@klinik.my', 'Aminah',
                             'PENDING');
                 INSERT INTO user_roles (tenant_id, user_id, role_id)
                     VALUES ('{tenant}', '{user}', '{role}');
                 INSERT INTO sessions (tenant_id, session_id, user_id, secret_hash, expires_at)
                     VALUES ('{tenant}', gen_random_uuid(), '{user}',
                             decode(repeat('00', 32), 'hex'), now() + interval '1 hour');
                 INSERT INTO device_refresh_tokens (tenant_id, token_id, device_id, secret_hash,
                     expires_at)
                     VALUES ('{tenant}', gen_random_uuid(), '{device}',
                             decode(repeat('00', 32), 'hex'), now() + interval '1 day');
                 INSERT INTO clinical_entries (tenant_id, entry_id, branch_id, patient_id, kind,
                     body, stamps, recorded_at, origin_device_id, last_change_seq)
                     VALUES ('{tenant}', '{entry}', '{branch}', gen_random_uuid(),
                             'emergency_access', 'Collapsed at the counter', '\\x010000'::bytea,
                             now(), '{device}', 1);
                 INSERT INTO emergency_access_reviews (tenant_id, entry_id, outcome, reviewed_by)
                     VALUES ('{tenant}', '{entry}', 'justified', '{user}');
                 INSERT INTO subscriptions (tenant_id, plan, trial_ends_at, period_ends_at)
                     VALUES ('{tenant}', 'PRO', now() + interval '7 days',
                             now() + interval '7 days');
                 INSERT INTO subscription_modules (tenant_id, module)
                     VALUES ('{tenant}', 'CLINIC');
                 INSERT INTO notice_outbox (tenant_id, notice_id, notice_key, kind, recipient,
                     subject, body)
                     VALUES ('{tenant}', gen_random_uuid(), 'RECEIPT:x', 'RECEIPT',
                             'a@klinik.my', 'Receipt', 'Thank you');
                 INSERT INTO payments (tenant_id, payment_id, kind, status, amount_sen, plan,
                     cycle, pricing, provider, external_id, event_id, completed_at)
                     VALUES ('{tenant}', gen_random_uuid(), 'CHARGE', 'COMPLETED', 4900,
                             'STARTER', 'MONTHLY', 'SUBSCRIPTION', 'stripe', 'cs_{tenant}',
                             'evt_{tenant}', now());"
            ))
            .await
            .unwrap();
    }
    (tenant_a, tenant_b, code_a)
}

#[tokio::test]
async fn every_tenant_table_has_rls_enabled_forced_and_a_policy() {
    let db = TestDatabase::create().await.unwrap();
    let owner = db.owner_client().await.unwrap();

    let tables = tenant_tables(&owner).await;
    let expected: BTreeSet<&str> = [
        "branches",
        "change_batches",
        "conflicts",
        "devices",
        "enrolment_codes",
        "patients",
        "rejected_changes",
        "tenants",
        "appointments",
        "cash_movements",
        "purged_rows",
        "business_settings",
        "roles",
        "role_permissions",
        "users",
        "user_roles",
        "sessions",
        "device_refresh_tokens",
        "catalogue_items",
        "clinical_entries",
        "emergency_access_reviews",
        "subscriptions",
        "subscription_modules",
        "payments",
        "notice_outbox",
    ]
    .into();
    let found: BTreeSet<&str> = tables.iter().map(String::as_str).collect();
    assert!(found.is_superset(&expected), "tenant tables: {found:?}");

    let rows = owner
        .query(
            "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity,
                    (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid),
                    EXISTS (SELECT FROM pg_policy p
                            WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation'
                              AND p.polcmd = '*'
                              AND pg_get_expr(p.polqual, p.polrelid)
                                  LIKE '%current_setting(''app.tenant_id''::text, true)%'
                              AND pg_get_expr(p.polwithcheck, p.polrelid)
                                  LIKE '%current_setting(''app.tenant_id''::text, true)%')
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relname = ANY($1)",
            &[&tables],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), tables.len());
    for row in rows {
        let table: String = row.get(0);
        assert!(
            row.get::<_, bool>(1),
            "{table}: row level security not enabled"
        );
        assert!(
            row.get::<_, bool>(2),
            "{table}: row level security not forced"
        );
        assert!(row.get::<_, i64>(3) >= 1, "{table}: no policy");
        assert!(
            row.get::<_, bool>(4),
            "{table}: no tenant_isolation policy on app.tenant_id"
        );
    }

    let others: Vec<String> = owner
        .query(
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
               AND c.relname <> ALL($1) ORDER BY 1",
            &[&tables],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(others, TABLES_WITHOUT_TENANT, "tables without tenant_id");

    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn the_app_role_cannot_bypass_rls_and_owns_nothing() {
    let db = TestDatabase::create().await.unwrap();
    let owner = db.owner_client().await.unwrap();

    let role = owner
        .query_one(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin
             FROM pg_roles WHERE rolname = 'kaunter_app'",
            &[],
        )
        .await
        .unwrap();
    assert!(!role.get::<_, bool>(0), "kaunter_app is a superuser");
    assert!(!role.get::<_, bool>(1), "kaunter_app has BYPASSRLS");
    assert!(!role.get::<_, bool>(2), "kaunter_app has CREATEROLE");
    assert!(!role.get::<_, bool>(3), "kaunter_app has CREATEDB");
    assert!(role.get::<_, bool>(4), "kaunter_app cannot log in");

    let owned: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relowner = 'kaunter_app'::regrole",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owned, 0, "kaunter_app owns relations");
    let owned_schemas: i64 = owner
        .query_one(
            "SELECT count(*) FROM pg_namespace WHERE nspowner = 'kaunter_app'::regrole",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owned_schemas, 0, "kaunter_app owns schemas");

    let definers: Vec<String> = owner
        .query(
            "SELECT p.proname::text FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = 'public' AND p.prosecdef",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(
        definers.is_empty(),
        "SECURITY DEFINER functions: {definers:?}"
    );

    // A view runs with its owner's rights unless security_invoker: none may exist unnoticed.
    let views: Vec<String> = owner
        .query(
            "SELECT c.relname::text FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')
               AND NOT coalesce('security_invoker=true' = ANY(c.reloptions), false)",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(views.is_empty(), "views that bypass RLS: {views:?}");

    let app = db.app_client().await.unwrap();
    let migrations = app
        .query("SELECT count(*) FROM schema_migrations", &[])
        .await;
    assert!(
        migrations.is_err(),
        "kaunter_app can read schema_migrations"
    );
    // The webhook log names many businesses: the app role writes it, never reads it back.
    let deliveries = app
        .query("SELECT business, detail FROM webhook_deliveries", &[])
        .await;
    assert!(
        deliveries.is_err(),
        "kaunter_app can read webhook deliveries"
    );

    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn without_a_tenant_the_app_role_sees_no_rows() {
    let db = TestDatabase::create().await.unwrap();
    let owner = db.owner_client().await.unwrap();
    let (tenant_a, tenant_b, _) = seed(&owner).await;
    let tables = tenant_tables(&owner).await;
    for table in &tables {
        assert_eq!(
            count(&owner, table).await,
            2,
            "{table}: the seed must put one row per tenant in every tenant table"
        );
    }

    let app = db.app_client().await.unwrap();
    // Never set in this session: current_setting(.., true) is NULL.
    for table in &tables {
        assert_eq!(
            count(&app, table).await,
            0,
            "{table} with app.tenant_id unset"
        );
    }
    // Once set, even back to '', it reads as '' rather than NULL.
    for value in ["", " "] {
        app.execute("SELECT set_config('app.tenant_id', $1, false)", &[&value])
            .await
            .unwrap();
        app.execute("SELECT set_config('app.login_slug', '', false)", &[])
            .await
            .unwrap();
        app.execute(
            "SELECT set_config('app.enrolment_code_hash', '', false)",
            &[],
        )
        .await
        .unwrap();
        for table in &tables {
            let seen = app
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .map(|row| row.get::<_, i64>(0));
            // ' ' is not a uuid: an error is as good as no rows, rows are not.
            assert!(
                matches!(seen, Ok(0) | Err(_)),
                "{table} with app.tenant_id = {value:?}: {seen:?}"
            );
        }
    }
    app.execute(
        "SELECT set_config('app.tenant_id', $1, false)",
        &[&Uuid::now_v7().to_string()],
    )
    .await
    .unwrap();
    for table in &tables {
        assert_eq!(
            count(&app, table).await,
            0,
            "{table} with an unknown tenant"
        );
    }

    // The test is not vacuous: with a tenant set, exactly that tenant's rows are visible.
    for tenant in [tenant_a, tenant_b] {
        app.execute(
            "SELECT set_config('app.tenant_id', $1, false)",
            &[&tenant.to_string()],
        )
        .await
        .unwrap();
        for table in &tables {
            let other_tenant: i64 = app
                .query_one(
                    &format!("SELECT count(*) FROM {table} WHERE tenant_id <> $1"),
                    &[&tenant],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(count(&app, table).await, 1, "{table} as {tenant}");
            assert_eq!(other_tenant, 0, "{table} as {tenant}");
        }
    }

    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn the_app_role_cannot_write_into_another_tenant() {
    let db = TestDatabase::create().await.unwrap();
    let owner = db.owner_client().await.unwrap();
    let (tenant_a, tenant_b, _) = seed(&owner).await;
    let app = db.app_client().await.unwrap();
    app.execute(
        "SELECT set_config('app.tenant_id', $1, false)",
        &[&tenant_a.to_string()],
    )
    .await
    .unwrap();

    let insert = app
        .execute(
            "INSERT INTO tenants (tenant_id, name) VALUES ($1, 'Intruder')",
            &[&Uuid::now_v7()],
        )
        .await;
    assert!(insert.is_err(), "inserted a tenant other than the one set");
    let moved = app
        .execute("UPDATE patients SET tenant_id = $1", &[&tenant_b])
        .await;
    assert!(moved.is_err(), "moved a row into another tenant");
    let touched = app
        .execute(
            "UPDATE tenants SET name = 'Renamed' WHERE tenant_id = $1",
            &[&tenant_b],
        )
        .await
        .unwrap();
    assert_eq!(touched, 0, "updated another tenant's row");

    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_code_hash_reveals_only_its_own_enrolment_code() {
    let db = TestDatabase::create().await.unwrap();
    let owner = db.owner_client().await.unwrap();
    let (tenant_a, _, code_a) = seed(&owner).await;
    let app = db.app_client().await.unwrap();
    app.execute(
        "SELECT set_config('app.enrolment_code_hash', $1, false)",
        &[&code_a],
    )
    .await
    .unwrap();

    let visible: Vec<Uuid> = app
        .query("SELECT tenant_id FROM enrolment_codes", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(visible, vec![tenant_a]);
    for table in tenant_tables(&owner).await {
        if table != "enrolment_codes" {
            assert_eq!(
                count(&app, &table).await,
                0,
                "{table} with only a code hash"
            );
        }
    }
    // Knowing the hash lets one lock the row, not write it, until the tenant is set.
    let claimed = app
        .execute(
            "UPDATE enrolment_codes SET expires_at = expires_at + interval '1 day'",
            &[],
        )
        .await;
    assert!(claimed.is_err(), "wrote a code row with no tenant set");

    db.drop_db().await.unwrap();
}

#[tokio::test]
async fn a_slug_reveals_only_its_own_business_row_and_nothing_else() {
    let db = TestDatabase::create().await.unwrap();
    let owner = db.owner_client().await.unwrap();
    let (tenant_a, _, _) = seed(&owner).await;
    let app = db.app_client().await.unwrap();
    app.execute(
        "SELECT set_config('app.login_slug', 'klinik-a', false)",
        &[],
    )
    .await
    .unwrap();
    let visible: Vec<Uuid> = app
        .query("SELECT tenant_id FROM tenants", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(visible, vec![tenant_a]);
    for table in tenant_tables(&owner).await {
        if table != "tenants" {
            assert_eq!(count(&app, &table).await, 0, "{table} with only a slug");
        }
    }
    // Reading by slug is all it allows: the row cannot be written without the tenant set.
    let renamed = app
        .execute("UPDATE tenants SET name = 'Taken over'", &[])
        .await
        .unwrap();
    assert_eq!(renamed, 0);
    db.drop_db().await.unwrap();
}
