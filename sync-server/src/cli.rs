//! What the `sync-server` binary does, kept in the library so main.rs stays a few lines:
//! `serve` (the default), `migrate`, and `admin ...` for head-office chores from a shell.
//!
//! Admin commands print their result on stdout and nothing else (logs go to stderr), so scripts
//! can capture it: `CODE=$(sync-server admin enrolment-code --tenant T --branch B)`.

use std::time::Duration;

use clap::{Parser, Subcommand};
use serde::Serialize;

use kaunter_core::subscription::{BillingCycle, Plan, PricingModel};
use kaunter_protocol::http::PullScope;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::ids::{BranchId, DeviceId, PaymentId, TenantId};
use crate::{AppState, admin, db, migrate};

/// Kaunter sync server.
///
/// Options go before the subcommand (`sync-server --listen 0.0.0.0:8787 serve`), or come from
/// KAUNTER_* environment variables. Log verbosity: KAUNTER_LOG (e.g. `info`, `debug`).
#[derive(Debug, Parser)]
#[command(name = "sync-server", version)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve the HTTP API (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Head-office operations, run as the app role under row-level security.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a business with its first branch; prints {"tenant_id":..,"branch_id":..}.
    CreateBusiness {
        /// The business's name, e.g. "Klinik Demo".
        #[arg(long)]
        name: String,
        /// The first branch's name, e.g. "Main".
        #[arg(long)]
        branch: String,
        /// The first branch's short code for document numbers, e.g. KL01.
        #[arg(long)]
        branch_code: Option<String>,
    },
    /// Add a branch to a business; prints {"tenant_id":..,"branch_id":..}.
    AddBranch {
        /// The business's tenant_id (from create-business).
        #[arg(long)]
        tenant: TenantId,
        /// The branch's name, e.g. "Petaling Jaya".
        #[arg(long)]
        name: String,
        /// Short code for document numbers, e.g. PJ02.
        #[arg(long)]
        code: Option<String>,
    },
    /// Issue a single-use enrolment code for a branch; prints only the code.
    EnrolmentCode {
        /// The business's tenant_id.
        #[arg(long)]
        tenant: TenantId,
        /// The branch the enrolled desk will belong to.
        #[arg(long)]
        branch: BranchId,
        /// How long the code stays valid, in hours.
        #[arg(long, default_value_t = 168)]
        ttl_hours: u64,
        /// Send the desk every branch's records, not only its own.
        #[arg(long)]
        all_branches: bool,
    },
    /// Issue a reconnect code for a desk that was removed (revoked): only that desk can use it,
    /// to take its place again with its data and the changes it kept.
    ReconnectCode {
        /// The business's tenant_id.
        #[arg(long)]
        tenant: TenantId,
        /// The removed desk's device_id.
        #[arg(long)]
        device: DeviceId,
        /// How long the code stays valid, in hours.
        #[arg(long, default_value_t = 168)]
        ttl_hours: u64,
    },
    /// Suspend, reactivate or terminate a business (its data is kept; terminated is final).
    SetStatus {
        /// The business's tenant_id.
        #[arg(long)]
        tenant: TenantId,
        #[arg(long, value_enum)]
        status: admin::BusinessStatus,
    },
    /// Every desk of a business with its sync state (backlog, refusals, last sync, last error,
    /// open conflicts of its branch); prints a JSON array.
    SyncStatus {
        /// The business's tenant_id.
        #[arg(long)]
        tenant: TenantId,
    },
    /// Remove deleted records whose deletion is older than the horizon, for good; prints
    /// {"purged_seq":..,"rows":..}. Desks away longer than that resync.
    PurgeTombstones {
        /// The business's tenant_id.
        #[arg(long)]
        tenant: TenantId,
        /// The horizon, in days.
        #[arg(long, default_value_t = 90)]
        older_than_days: u64,
    },
    /// Apply a payment received outside the payment providers (a bank transfer, a demo) as an
    /// operator's CREDIT; prints {"payment_id":..,"state":..,"period_ends_at":..}.
    RecordPayment {
        /// The business's tenant_id.
        #[arg(long)]
        tenant: TenantId,
        /// STARTER, GROWTH, PRO or ENTERPRISE.
        #[arg(long, value_parser = parse_plan)]
        plan: Plan,
        /// MONTHLY, YEARLY or ONE_TIME.
        #[arg(long, value_parser = parse_cycle)]
        cycle: BillingCycle,
        /// SUBSCRIPTION or PERPETUAL; default: the one the cycle goes with (ONE_TIME:
        /// PERPETUAL, otherwise SUBSCRIPTION).
        #[arg(long, value_parser = parse_pricing)]
        pricing: Option<PricingModel>,
        /// The amount received, in sen; default: the plan's price for the cycle.
        #[arg(long)]
        amount_sen: Option<i64>,
        /// The transfer's reference; the same reference is never applied twice. Default: a
        /// fresh one.
        #[arg(long)]
        reference: Option<String>,
    },
    /// Move a business's paid period (or trial) by whole days, for a reason, recorded as an
    /// operator's ADJUSTMENT; prints {"payment_id":..,"state":..,"period_ends_at":..}.
    AdjustSubscription {
        /// The business's tenant_id.
        #[arg(long)]
        tenant: TenantId,
        /// Days to add; negative takes days away (e.g. --days -3). Not zero.
        #[arg(long, allow_hyphen_values = true)]
        days: i64,
        /// Why (kept with the adjustment), e.g. "outage on 3 April".
        #[arg(long)]
        reason: String,
        /// Money that went with it, in sen; default 0.
        #[arg(long, allow_hyphen_values = true)]
        amount_sen: Option<i64>,
        /// The adjustment's reference; the same reference is never applied twice. Default: a
        /// fresh one.
        #[arg(long)]
        reference: Option<String>,
    },
    /// Refund a payment: one recorded with record-payment (a bank transfer) by its --reference,
    /// or any payment by its --payment id (an FPX bill refunded at the gateway); refunded in
    /// full, what it bought is taken back. Stripe's refunds arrive by its webhook. Prints
    /// {"payment_id":..,"refund_of":..,"refunded_in_full":..,"state":..,"period_ends_at":..}.
    #[command(group(clap::ArgGroup::new("refunded").required(true).args(["reference", "payment"])))]
    RefundPayment {
        /// The business's tenant_id.
        #[arg(long)]
        tenant: TenantId,
        /// The reference record-payment was given.
        #[arg(long)]
        reference: Option<String>,
        /// The payment's payment_id, as head office's payments list shows it.
        #[arg(long)]
        payment: Option<PaymentId>,
        /// How much to refund, in sen; default: everything not refunded yet.
        #[arg(long)]
        amount_sen: Option<i64>,
        /// Why (kept with the refund).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Revoke a device: its token stops working at once; its data stays.
    RevokeDevice {
        /// The business's tenant_id.
        #[arg(long)]
        tenant: TenantId,
        /// The device_id the desk got at enrolment.
        #[arg(long)]
        device: DeviceId,
    },
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            migrate::run(&config.database_url.to_pg_config()?).await?;
            let state = AppState::connect(&config).await?;
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            tracing::info!(address = %listener.local_addr()?, "sync server listening");
            crate::serve(listener, state, shutdown_signal()).await
        }
        Command::Migrate => {
            let applied = migrate::run(&config.database_url.to_pg_config()?).await?;
            tracing::info!(?applied, "migrations up to date");
            Ok(())
        }
        Command::Admin(command) => {
            let pool = db::connect_pool(config.app_database_config()?, 1)?;
            admin_command(&pool, command).await
        }
    }
}

async fn admin_command(pool: &db::Pool, command: AdminCommand) -> Result<()> {
    match command {
        AdminCommand::CreateBusiness {
            name,
            branch,
            branch_code,
        } => {
            let created =
                admin::create_business(pool, &name, &branch, branch_code.as_deref()).await?;
            print_json(&created)
        }
        AdminCommand::AddBranch { tenant, name, code } => {
            let created = admin::add_branch(pool, tenant, &name, code.as_deref()).await?;
            print_json(&created)
        }
        AdminCommand::EnrolmentCode {
            tenant,
            branch,
            ttl_hours,
            all_branches,
        } => {
            let ttl = Duration::from_secs(ttl_hours.saturating_mul(60 * 60));
            let scope = if all_branches {
                PullScope::Business
            } else {
                PullScope::Branch
            };
            let code =
                admin::create_enrolment_code_with_scope(pool, tenant, branch, ttl, scope).await?;
            println!("{code}");
            Ok(())
        }
        AdminCommand::ReconnectCode {
            tenant,
            device,
            ttl_hours,
        } => {
            let ttl = Duration::from_secs(ttl_hours.saturating_mul(60 * 60));
            println!(
                "{}",
                admin::create_reconnect_code(pool, tenant, device, ttl).await?
            );
            Ok(())
        }
        AdminCommand::SyncStatus { tenant } => print_json(&admin::sync_status(pool, tenant).await?),
        AdminCommand::PurgeTombstones {
            tenant,
            older_than_days,
        } => {
            let horizon = Duration::from_secs(older_than_days.saturating_mul(24 * 60 * 60));
            let report = crate::purge::purge_older_than(pool, tenant, horizon).await?;
            print_json(&report)
        }
        AdminCommand::SetStatus { tenant, status } => {
            admin::set_business_status(pool, tenant, status).await
        }
        AdminCommand::RevokeDevice { tenant, device } => {
            admin::revoke_device(pool, tenant, device).await
        }
        AdminCommand::RecordPayment {
            tenant,
            plan,
            cycle,
            pricing,
            amount_sen,
            reference,
        } => {
            let purchase = crate::payments::Purchase {
                plan,
                cycle,
                pricing: pricing.unwrap_or_else(|| crate::payments::pricing_for(cycle)),
            };
            let recorded =
                admin::record_payment(pool, tenant, purchase, amount_sen, reference.as_deref())
                    .await?;
            print_json(&recorded)
        }
        AdminCommand::AdjustSubscription {
            tenant,
            days,
            reason,
            amount_sen,
            reference,
        } => {
            let adjusted = admin::adjust_subscription(
                pool,
                tenant,
                days,
                &reason,
                amount_sen,
                reference.as_deref(),
            )
            .await?;
            print_json(&adjusted)
        }
        AdminCommand::RefundPayment {
            tenant,
            reference,
            payment,
            amount_sen,
            reason,
        } => {
            // clap's group lets exactly one through.
            let of = match (reference.as_deref(), payment) {
                (Some(reference), _) => admin::RefundOf::Reference(reference),
                (None, Some(payment)) => admin::RefundOf::Payment(payment),
                (None, None) => {
                    return Err(Error::InvalidInput(
                        "name the payment with --reference or --payment".to_owned(),
                    ));
                }
            };
            let refunded =
                admin::refund_payment(pool, tenant, of, amount_sen, reason.as_deref()).await?;
            print_json(&refunded)
        }
    }
}

fn parse_plan(text: &str) -> std::result::Result<Plan, String> {
    Plan::parse(&text.to_ascii_uppercase())
        .ok_or_else(|| "one of STARTER, GROWTH, PRO, ENTERPRISE".to_owned())
}

fn parse_cycle(text: &str) -> std::result::Result<BillingCycle, String> {
    BillingCycle::parse(&text.to_ascii_uppercase())
        .ok_or_else(|| "one of MONTHLY, YEARLY, ONE_TIME".to_owned())
}

fn parse_pricing(text: &str) -> std::result::Result<PricingModel, String> {
    PricingModel::parse(&text.to_ascii_uppercase())
        .ok_or_else(|| "one of SUBSCRIPTION, PERPETUAL".to_owned())
}

fn print_json(value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string(value)
        .map_err(|error| Error::Internal(format!("encoding output: {error}")))?;
    println!("{text}");
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM; a signal that cannot be watched is simply never awaited.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
