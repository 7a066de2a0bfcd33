//! Database access under row-level security: the connection pool, and the only two ways to open
//! a transaction that can see tenant rows.
//!
//! The tenant is set with `set_config('app.tenant_id', $1, true)`: `true` makes the setting
//! transaction-local, so it ends with the transaction and can never leak to the next user of a
//! pooled connection. Nothing else in the crate sets it.

use std::fmt;
use std::ops::Deref;
use std::time::Duration;

use deadpool_postgres::{ClientWrapper, Transaction};
use deadpool_postgres::{Manager, ManagerConfig, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

pub use deadpool_postgres::Pool;

use crate::error::{Error, Result};
use crate::ids::TenantId;

/// A pool of connections as the app role. Connections are opened lazily, on first use.
pub fn connect_pool(config: tokio_postgres::Config, max_size: usize) -> Result<Pool> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(Duration::from_secs(10)))
        .create_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|error| Error::Internal(format!("building the connection pool: {error}")))
}

/// Refuses a pool whose role would not be bound by row-level security: a superuser, a role with
/// BYPASSRLS, or one that owns a table (an owner can switch RLS off).
pub async fn check_app_role(pool: &Pool) -> Result<()> {
    let client = pool.get().await?;
    let row = client
        .query_one(
            "SELECT current_user::text, r.rolsuper, r.rolbypassrls,
                    EXISTS (SELECT FROM pg_catalog.pg_class c
                            WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p', 'v', 'm'))
             FROM pg_catalog.pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await?;
    let (role, superuser, bypass_rls, owns_tables): (String, bool, bool, bool) = (
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
    );
    if superuser || bypass_rls || owns_tables {
        return Err(Error::UnsafeAppRole { role });
    }
    Ok(())
}

/// A transaction that sees exactly one tenant's rows. Every tenant read and write goes through
/// one of these; commit it, or dropping it rolls back.
pub struct TenantTx<'a> {
    transaction: Transaction<'a>,
    tenant: TenantId,
}

impl<'a> TenantTx<'a> {
    /// Begins a transaction on `client` and scopes it to `tenant`.
    pub async fn begin(client: &'a mut ClientWrapper, tenant: TenantId) -> Result<Self> {
        let transaction = client.transaction().await?;
        scope_to_tenant(&transaction, tenant).await?;
        Ok(Self {
            transaction,
            tenant,
        })
    }

    /// Like [`TenantTx::begin`], read-only, on one snapshot for all its statements (REPEATABLE
    /// READ): what pull needs, so a purge or push committing between its queries cannot make
    /// them disagree.
    pub async fn begin_snapshot(client: &'a mut ClientWrapper, tenant: TenantId) -> Result<Self> {
        let transaction = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        scope_to_tenant(&transaction, tenant).await?;
        Ok(Self {
            transaction,
            tenant,
        })
    }

    pub fn tenant(&self) -> TenantId {
        self.tenant
    }

    /// `sql` prepared once per pooled connection and kept: a statement on a hot path (push,
    /// pull, authentication) then costs one round trip and no parse or plan of its text. The
    /// `*_cached` methods below run such a statement.
    pub async fn prepared(&self, sql: &str) -> Result<tokio_postgres::Statement> {
        Ok(self.transaction.prepare_cached(sql).await?)
    }

    pub async fn query_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let statement = self.prepared(sql).await?;
        Ok(self.transaction.query(&statement, params).await?)
    }

    pub async fn query_one_cached(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let statement = self.prepared(sql).await?;
        Ok(self.transaction.query_one(&statement, params).await?)
    }

    pub async fn query_opt_cached(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let statement = self.prepared(sql).await?;
        Ok(self.transaction.query_opt(&statement, params).await?)
    }

    pub async fn execute_cached(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let statement = self.prepared(sql).await?;
        Ok(self.transaction.execute(&statement, params).await?)
    }

    pub async fn commit(self) -> Result<()> {
        self.transaction.commit().await?;
        Ok(())
    }
}

impl fmt::Debug for TenantTx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantTx")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl<'a> Deref for TenantTx<'a> {
    type Target = tokio_postgres::Transaction<'a>;

    fn deref(&self) -> &Self::Target {
        &self.transaction
    }
}

/// A transaction with no tenant that sees one row it names by a secret or public key before it
/// knows the tenant: an enrolment code by its hash (policy `enrolment_code_lookup`, migration
/// 0001), or a business by its slug (policy `tenant_by_slug`, migration 0010). Once that row
/// has named its tenant, [`LookupTx::into_tenant`] continues as that tenant.
pub struct LookupTx<'a> {
    transaction: Transaction<'a>,
}

impl<'a> LookupTx<'a> {
    /// Enrolment: sees only the enrolment code whose hash the caller knows.
    pub async fn for_enrolment_code(
        client: &'a mut ClientWrapper,
        code_hash: &[u8; 32],
    ) -> Result<Self> {
        Self::begin(client, "app.enrolment_code_hash", &hex::encode(code_hash)).await
    }

    /// Login: sees only the business with this slug.
    pub async fn for_slug(client: &'a mut ClientWrapper, slug: &str) -> Result<Self> {
        Self::begin(client, "app.login_slug", slug).await
    }

    async fn begin(client: &'a mut ClientWrapper, setting: &str, value: &str) -> Result<Self> {
        let transaction = client.transaction().await?;
        transaction
            .execute("SELECT set_config($1, $2, true)", &[&setting, &value])
            .await?;
        Ok(Self { transaction })
    }

    /// Once the row has named its tenant: the same transaction, now scoped to that tenant.
    pub async fn into_tenant(self, tenant: TenantId) -> Result<TenantTx<'a>> {
        scope_to_tenant(&self.transaction, tenant).await?;
        Ok(TenantTx {
            transaction: self.transaction,
            tenant,
        })
    }

    pub async fn commit(self) -> Result<()> {
        self.transaction.commit().await?;
        Ok(())
    }
}

impl fmt::Debug for LookupTx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LookupTx").finish_non_exhaustive()
    }
}

impl<'a> Deref for LookupTx<'a> {
    type Target = tokio_postgres::Transaction<'a>;

    fn deref(&self) -> &Self::Target {
        &self.transaction
    }
}

async fn scope_to_tenant(transaction: &Transaction<'_>, tenant: TenantId) -> Result<()> {
    let statement = transaction
        .prepare_cached("SELECT set_config('app.tenant_id', $1, true)")
        .await?;
    transaction
        .execute(&statement, &[&tenant.to_string()])
        .await?;
    Ok(())
}
