//! What a business pays for and what it gets: the plans, their prices and limits, the modules,
//! and the lifecycle of a subscription (trial, paid periods, expiry, grace, suspension) as pure
//! rules over the facts the server stores and a time the caller passes in.
//!
//! A new business starts a 7-day TRIAL with full access. When the trial, a paid period that was
//! not renewed, or a cancelled period ends, the subscription EXPIRES; expiry starts a 7-day GRACE
//! in which Kaunter is read-only, and after the grace it is SUSPENDED. A payment makes it ACTIVE
//! again. EXPIRED is the instant between the two (shown as `expired_at` and the
//! [`Notice::Expired`] e-mail), not a state of its own: at that instant the state is already
//! GRACE. Time only moves a subscription forward (TRIAL or ACTIVE, then GRACE, then SUSPENDED);
//! only a new fact (a payment, or an operator's adjustment that gives days) moves it back to
//! ACTIVE. A payment refunded in full takes back what it still gives (`take_back`), never
//! before the refund's time; an operator's adjustment moves the period's end by whole days.
//!
//! No state ever deletes or hides anything stored at a desk: the weakest state still opens the
//! business's data read-only and exports it. The states only stop new writes and sync.
//!
//! Prices and limits here are the catalogue's defaults: data, not law. Change them here (and
//! only here) when the price list changes.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};

use crate::business::TRIAL_DAYS;

/// Days of read-only access after a subscription expires, before it is suspended.
pub const GRACE_DAYS: i64 = 7;

/// The plan whose limits a trial gets: PRO, so a new business can try every module with a
/// realistic number of people and desks before it chooses what to pay for.
pub const TRIAL_PLAN: Plan = Plan::Pro;

/// A plan a business can buy; it sets the price and the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Plan {
    /// A single counter: one module, one desk.
    Starter,
    /// A busy shop or clinic with a few desks.
    Growth,
    /// Every module, several branches.
    Pro,
    /// No limits.
    Enterprise,
}

impl Plan {
    /// Every plan, smallest first.
    pub const ALL: [Plan; 4] = [Plan::Starter, Plan::Growth, Plan::Pro, Plan::Enterprise];

    /// The stored and wire spelling. FROZEN: stored subscriptions and payments hold it.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Starter => "STARTER",
            Plan::Growth => "GROWTH",
            Plan::Pro => "PRO",
            Plan::Enterprise => "ENTERPRISE",
        }
    }

    /// The plan spelled `text` (exactly as [`Plan::as_str`] writes it), if any.
    pub fn parse(text: &str) -> Option<Plan> {
        Plan::ALL.into_iter().find(|p| p.as_str() == text)
    }

    /// The plan's name in sentences, invoices and e-mails (the same in every language).
    pub fn name(self) -> &'static str {
        match self {
            Plan::Starter => "Starter",
            Plan::Growth => "Growth",
            Plan::Pro => "Pro",
            Plan::Enterprise => "Enterprise",
        }
    }
}

/// How often a business pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingCycle {
    /// Every 30 days.
    Monthly,
    /// Every 365 days.
    Yearly,
    /// Once: buys a perpetual licence.
    OneTime,
}

impl BillingCycle {
    /// Every cycle.
    pub const ALL: [BillingCycle; 3] = [
        BillingCycle::Monthly,
        BillingCycle::Yearly,
        BillingCycle::OneTime,
    ];

    /// The stored and wire spelling. FROZEN: stored subscriptions and payments hold it.
    pub fn as_str(self) -> &'static str {
        match self {
            BillingCycle::Monthly => "MONTHLY",
            BillingCycle::Yearly => "YEARLY",
            BillingCycle::OneTime => "ONE_TIME",
        }
    }

    /// The cycle spelled `text` (exactly as [`BillingCycle::as_str`] writes it), if any.
    pub fn parse(text: &str) -> Option<BillingCycle> {
        BillingCycle::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The days of access one payment buys: 30 for MONTHLY, 365 for YEARLY, and `None` (no end)
    /// for ONE_TIME.
    pub fn days(self) -> Option<i64> {
        match self {
            BillingCycle::Monthly => Some(30),
            BillingCycle::Yearly => Some(365),
            BillingCycle::OneTime => None,
        }
    }

    /// The only pricing model this cycle goes with.
    fn pricing(self) -> PricingModel {
        match self {
            BillingCycle::Monthly | BillingCycle::Yearly => PricingModel::Subscription,
            BillingCycle::OneTime => PricingModel::Perpetual,
        }
    }
}

/// Whether a business rents Kaunter or owns a licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PricingModel {
    /// Paid monthly or yearly; access ends when a period is not renewed.
    Subscription,
    /// Paid once; access never ends.
    Perpetual,
}

impl PricingModel {
    /// Every pricing model.
    pub const ALL: [PricingModel; 2] = [PricingModel::Subscription, PricingModel::Perpetual];

    /// The stored and wire spelling. FROZEN: stored subscriptions and payments hold it.
    pub fn as_str(self) -> &'static str {
        match self {
            PricingModel::Subscription => "SUBSCRIPTION",
            PricingModel::Perpetual => "PERPETUAL",
        }
    }

    /// The pricing model spelled `text` (exactly as [`PricingModel::as_str`] writes it), if any.
    pub fn parse(text: &str) -> Option<PricingModel> {
        PricingModel::ALL.into_iter().find(|p| p.as_str() == text)
    }
}

/// What a plan allows at once. `None` means no limit (ENTERPRISE): an explicit "unlimited"
/// rather than a large number, so no message ever tells a shop owner they may have 4294967295
/// desks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Modules switched on (see [`Module`]).
    pub modules: Option<u32>,
    /// People with an account (staff, managers, administrators).
    pub users: Option<u32>,
    /// Enrolled desks (devices).
    pub devices: Option<u32>,
}

impl Limits {
    /// The limit on `resource`; `None` for no limit.
    pub fn of(&self, resource: Resource) -> Option<u32> {
        match resource {
            Resource::Module => self.modules,
            Resource::User => self.users,
            Resource::Device => self.devices,
        }
    }
}

/// A plan's price list and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanTerms {
    /// The plan these terms are for.
    pub plan: Plan,
    /// Price of 30 days, in sen (RM 1 = 100 sen).
    pub monthly_sen: i64,
    /// Price of 365 days, in sen: ten months' price, two months free.
    pub yearly_sen: i64,
    /// Price of a perpetual licence, paid once, in sen: thirty months' price.
    pub perpetual_sen: i64,
    /// What the plan allows at once.
    pub limits: Limits,
}

impl PlanTerms {
    /// The price of one payment of `cycle`, in sen.
    pub fn price_sen(&self, cycle: BillingCycle) -> i64 {
        match cycle {
            BillingCycle::Monthly => self.monthly_sen,
            BillingCycle::Yearly => self.yearly_sen,
            BillingCycle::OneTime => self.perpetual_sen,
        }
    }
}

/// The catalogue's prices (in sen, MYR) and limits of `plan`. These are the defaults the
/// business set for Malaysian SMEs, not rules: they change when the price list does.
pub fn terms(plan: Plan) -> PlanTerms {
    let limited = |modules, users, devices| Limits {
        modules: Some(modules),
        users: Some(users),
        devices: Some(devices),
    };
    let (monthly_sen, limits) = match plan {
        Plan::Starter => (4_900, limited(1, 3, 1)),
        Plan::Growth => (12_900, limited(2, 10, 3)),
        Plan::Pro => (24_900, limited(5, 25, 10)),
        Plan::Enterprise => (
            59_900,
            Limits {
                modules: None,
                users: None,
                devices: None,
            },
        ),
    };
    PlanTerms {
        plan,
        monthly_sen,
        yearly_sen: monthly_sen * 10,
        perpetual_sen: monthly_sen * 30,
        limits,
    }
}

/// A billing cycle paired with a pricing model it does not go with: ONE_TIME goes with
/// PERPETUAL, and only with it; MONTHLY and YEARLY go with SUBSCRIPTION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BillingMismatch {
    /// The cycle asked for.
    pub cycle: BillingCycle,
    /// The pricing model asked for.
    pub pricing: PricingModel,
}

impl BillingMismatch {
    /// A stable code for the wire and the UI.
    pub fn code(self) -> &'static str {
        "billing_mismatch"
    }
}

impl fmt::Display for BillingMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cycle {
            BillingCycle::OneTime => f.write_str(
                "A one-time payment buys a perpetual licence: choose the perpetual licence, or pay a subscription monthly or yearly.",
            ),
            BillingCycle::Monthly | BillingCycle::Yearly => f.write_str(
                "A perpetual licence is paid once: choose a one-time payment for it, or a subscription to pay monthly or yearly.",
            ),
        }
    }
}

impl std::error::Error for BillingMismatch {}

/// Whether `cycle` goes with `pricing`.
fn check_billing(cycle: BillingCycle, pricing: PricingModel) -> Result<(), BillingMismatch> {
    if cycle.pricing() == pricing {
        Ok(())
    } else {
        Err(BillingMismatch { cycle, pricing })
    }
}

/// The amount, in sen, a payment for `plan` paid `cycle` under `pricing` must be; a payment of
/// any other amount is not this purchase. Refuses a cycle that does not go with the pricing
/// model (see [`BillingMismatch`]).
pub fn expected_amount_sen(
    plan: Plan,
    cycle: BillingCycle,
    pricing: PricingModel,
) -> Result<i64, BillingMismatch> {
    check_billing(cycle, pricing)?;
    Ok(terms(plan).price_sen(cycle))
}

/// A part of Kaunter a business switches on for its trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Module {
    /// Point of sale for shops.
    RetailPos,
    /// Patients, appointments and clinical records.
    Clinic,
    /// Bookings and services for salons and spas.
    Salon,
    /// Students, classes and fees for tuition centres.
    Education,
    /// Parcels and deliveries.
    Logistics,
}

impl Module {
    /// The module a business of `industry` starts with (switched on at sign-up).
    pub fn for_industry(industry: crate::business::Industry) -> Module {
        use crate::business::Industry;
        match industry {
            Industry::Retail => Module::RetailPos,
            Industry::Healthcare => Module::Clinic,
            Industry::Beauty => Module::Salon,
            Industry::Education => Module::Education,
            Industry::Logistics => Module::Logistics,
        }
    }

    /// Every module.
    pub const ALL: [Module; 5] = [
        Module::RetailPos,
        Module::Clinic,
        Module::Salon,
        Module::Education,
        Module::Logistics,
    ];

    /// The stored and wire spelling. FROZEN: a business's switched-on modules hold it.
    pub fn as_str(self) -> &'static str {
        match self {
            Module::RetailPos => "RETAIL_POS",
            Module::Clinic => "CLINIC",
            Module::Salon => "SALON",
            Module::Education => "EDUCATION",
            Module::Logistics => "LOGISTICS",
        }
    }

    /// The module spelled `text` (exactly as [`Module::as_str`] writes it), if any.
    pub fn parse(text: &str) -> Option<Module> {
        Module::ALL.into_iter().find(|m| m.as_str() == text)
    }

    /// What a shop owner calls it, in sentences.
    pub fn name(self) -> &'static str {
        match self {
            Module::RetailPos => "Retail point of sale",
            Module::Clinic => "Clinic",
            Module::Salon => "Salon",
            Module::Education => "Education",
            Module::Logistics => "Logistics",
        }
    }

    /// This module's entry in the [`module_catalogue`].
    pub fn info(self) -> ModuleInfo {
        let found = MODULE_CATALOGUE.iter().find(|info| info.module == self);
        // Every module has an entry (a test checks it); the fallback is never reached.
        found.copied().unwrap_or(ModuleInfo {
            module: self,
            version: "0.0.0",
            status: ModuleStatus::Inactive,
        })
    }
}

/// Whether a module is offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModuleStatus {
    /// Offered and supported.
    Active,
    /// Not offered yet (or any more): it cannot be switched on.
    Inactive,
    /// Offered for trying out: it may change and may have rough edges.
    Beta,
}

impl ModuleStatus {
    /// Every status.
    pub const ALL: [ModuleStatus; 3] = [
        ModuleStatus::Active,
        ModuleStatus::Inactive,
        ModuleStatus::Beta,
    ];

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ModuleStatus::Active => "ACTIVE",
            ModuleStatus::Inactive => "INACTIVE",
            ModuleStatus::Beta => "BETA",
        }
    }

    /// The status spelled `text` (exactly as [`ModuleStatus::as_str`] writes it), if any.
    pub fn parse(text: &str) -> Option<ModuleStatus> {
        ModuleStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether a business may switch a module in this status on.
    pub fn can_switch_on(self) -> bool {
        !matches!(self, ModuleStatus::Inactive)
    }
}

/// A module's entry in the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModuleInfo {
    /// The module.
    pub module: Module,
    /// The version a desk runs (semantic versioning).
    pub version: &'static str,
    /// Whether it is offered.
    pub status: ModuleStatus,
}

static MODULE_CATALOGUE: [ModuleInfo; 5] = [
    ModuleInfo {
        module: Module::RetailPos,
        version: "1.0.0",
        status: ModuleStatus::Active,
    },
    ModuleInfo {
        module: Module::Clinic,
        version: "1.0.0",
        status: ModuleStatus::Active,
    },
    ModuleInfo {
        module: Module::Salon,
        version: "0.9.0",
        status: ModuleStatus::Beta,
    },
    ModuleInfo {
        module: Module::Education,
        version: "0.1.0",
        status: ModuleStatus::Inactive,
    },
    ModuleInfo {
        module: Module::Logistics,
        version: "0.1.0",
        status: ModuleStatus::Inactive,
    },
];

/// The modules Kaunter has, one entry each, in [`Module::ALL`] order. Like the prices, the
/// versions and statuses are the catalogue's current data.
pub fn module_catalogue() -> &'static [ModuleInfo] {
    &MODULE_CATALOGUE
}

/// What head office's change of the switched-on modules does, once allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleChange {
    /// Wanted and not on yet, in [`Module::ALL`] order.
    pub switch_on: Vec<Module>,
    /// On now and no longer wanted, in [`Module::ALL`] order.
    pub switch_off: Vec<Module>,
}

/// Why a business may not have the set of modules it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleChangeRefused {
    /// The set is empty: a business always keeps one module on.
    NoModule,
    /// The module is INACTIVE in the catalogue (or not in it): it cannot be switched on.
    NotOffered(Module),
    /// The set switches something on and is larger than the plan allows.
    OverLimit {
        /// Modules the plan allows at once.
        limit: u32,
        /// Modules in the set asked for.
        wanted: u32,
    },
}

impl ModuleChangeRefused {
    /// A stable code for the wire and the UI; the limit's is the one every plan limit has.
    pub fn code(self) -> &'static str {
        match self {
            ModuleChangeRefused::NoModule => "modules_required",
            ModuleChangeRefused::NotOffered(_) => "module_not_offered",
            ModuleChangeRefused::OverLimit { .. } => "plan_limit_reached",
        }
    }
}

impl fmt::Display for ModuleChangeRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ModuleChangeRefused::NoModule => write!(
                f,
                "Choose at least one module: a business always has one switched on."
            ),
            ModuleChangeRefused::NotOffered(module) => write!(
                f,
                "{} is not offered at the moment, so it cannot be switched on.",
                module.name()
            ),
            ModuleChangeRefused::OverLimit { limit: 0, .. } => write!(
                f,
                "Your plan does not include modules: move to a larger plan."
            ),
            ModuleChangeRefused::OverLimit { limit, wanted } => {
                let noun = if limit == 1 { "module" } else { "modules" };
                let excess = wanted.saturating_sub(limit);
                let how_many = if excess == 1 {
                    "one".to_owned()
                } else {
                    excess.to_string()
                };
                write!(
                    f,
                    "Your plan allows {limit} {noun} at once and {wanted} are chosen: switch \
                     {how_many} off or move to a larger plan."
                )
            }
        }
    }
}

impl std::error::Error for ModuleChangeRefused {}

/// Whether a business with `current` switched on, under `limits`, may have exactly `wanted` on
/// (duplicates count once), judged against `catalogue`; and if so, what to switch on and off.
///
/// At least one module stays on. Only modules the catalogue offers (ACTIVE or BETA) can be
/// switched on; one that is on and has since become INACTIVE may stay on or go. As with
/// [`check_limit`], nothing in use is taken away: after a move to a smaller plan the business
/// may keep or drop what it has over the limit, and only a set that switches something on must
/// fit the plan.
pub fn check_module_change(
    current: &[Module],
    wanted: &[Module],
    limits: &Limits,
    catalogue: &[ModuleInfo],
) -> Result<ModuleChange, ModuleChangeRefused> {
    use std::collections::BTreeSet;
    let current: BTreeSet<Module> = current.iter().copied().collect();
    let wanted: BTreeSet<Module> = wanted.iter().copied().collect();
    if wanted.is_empty() {
        return Err(ModuleChangeRefused::NoModule);
    }
    let offered = |module: Module| {
        catalogue
            .iter()
            .find(|info| info.module == module)
            .is_some_and(|info| info.status.can_switch_on())
    };
    let switch_on: Vec<Module> = wanted.difference(&current).copied().collect();
    if let Some(refused) = switch_on.iter().find(|module| !offered(**module)) {
        return Err(ModuleChangeRefused::NotOffered(*refused));
    }
    let count = u32::try_from(wanted.len()).unwrap_or(u32::MAX);
    if let Some(limit) = limits.modules
        && !switch_on.is_empty()
        && count > limit
    {
        return Err(ModuleChangeRefused::OverLimit {
            limit,
            wanted: count,
        });
    }
    Ok(ModuleChange {
        switch_on,
        switch_off: current.difference(&wanted).copied().collect(),
    })
}

/// Something a plan limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// A switched-on module.
    Module,
    /// A person's account.
    User,
    /// An enrolled desk.
    Device,
}

impl Resource {
    /// Every resource.
    pub const ALL: [Resource; 3] = [Resource::Module, Resource::User, Resource::Device];

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Module => "MODULE",
            Resource::User => "USER",
            Resource::Device => "DEVICE",
        }
    }

    /// The resource spelled `text` (exactly as [`Resource::as_str`] writes it), if any.
    pub fn parse(text: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.as_str() == text)
    }

    /// What a shop owner calls one and several of it.
    fn nouns(self) -> (&'static str, &'static str) {
        match self {
            Resource::Module => ("module", "modules"),
            Resource::User => ("staff account", "staff accounts"),
            Resource::Device => ("desk", "desks"),
        }
    }
}

/// How many of each resource a business has now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Usage {
    /// Modules switched on.
    pub modules: u32,
    /// People with an account that counts against the plan.
    pub users: u32,
    /// Enrolled desks.
    pub devices: u32,
}

impl Usage {
    /// How many of `resource` are in use.
    pub fn of(&self, resource: Resource) -> u32 {
        match resource {
            Resource::Module => self.modules,
            Resource::User => self.users,
            Resource::Device => self.devices,
        }
    }
}

/// Adding one more of `resource` would go past the plan's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitExceeded {
    /// What was being added.
    pub resource: Resource,
    /// How many the plan allows.
    pub limit: u32,
    /// How many are in use (more than `limit` after a move to a smaller plan).
    pub in_use: u32,
}

impl LimitExceeded {
    /// A stable code for the wire and the UI.
    pub fn code(self) -> &'static str {
        "plan_limit_reached"
    }
}

impl fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (one, many) = self.resource.nouns();
        if self.limit == 0 {
            return write!(
                f,
                "Your plan does not include {many}: move to a larger plan."
            );
        }
        let noun = if self.limit == 1 { one } else { many };
        let verb = if self.in_use == 1 { "is" } else { "are" };
        // To add one, the business must first come down to one below the limit.
        let excess = self.in_use.saturating_sub(self.limit).saturating_add(1);
        let how_many = if excess == 1 {
            "one".to_owned()
        } else {
            excess.to_string()
        };
        let remedy = match self.resource {
            Resource::Module => format!("turn {how_many} off"),
            Resource::User | Resource::Device => format!("remove {how_many}"),
        };
        write!(
            f,
            "Your plan allows {} {noun} and {} {verb} in use: {remedy} or move to a larger plan.",
            self.limit, self.in_use
        )
    }
}

impl std::error::Error for LimitExceeded {}

/// Whether a business with `limits` that has `in_use` may add one more of `adding`. Nothing
/// already in use is ever taken away: after a move to a smaller plan, what is over the limit
/// keeps working, and only additions are refused until the business is under it again.
pub fn check_limit(limits: &Limits, in_use: &Usage, adding: Resource) -> Result<(), LimitExceeded> {
    let in_use = in_use.of(adding);
    match limits.of(adding) {
        Some(limit) if in_use >= limit => Err(LimitExceeded {
            resource: adding,
            limit,
            in_use,
        }),
        _ => Ok(()),
    }
}

/// Where a subscription stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// The free trial: full access until `ends_at`.
    Trial {
        /// When the trial ends (and the subscription expires, unless paid).
        ends_at: DateTime<Utc>,
    },
    /// Paid: full access.
    Active {
        /// When the paid period ends; `None` for a perpetual licence, which never ends.
        until: Option<DateTime<Utc>>,
        /// The business cancelled: the period runs to its end and is not renewed.
        cancelling: bool,
    },
    /// Expired: read-only for [`GRACE_DAYS`] days.
    Grace {
        /// When the trial or the paid period ended.
        expired_at: DateTime<Utc>,
        /// When the grace ends and the subscription is suspended.
        read_only_until: DateTime<Utc>,
    },
    /// The grace ended without a payment: sync is refused.
    Suspended {
        /// When the trial or the paid period ended.
        expired_at: DateTime<Utc>,
        /// When the grace ended.
        since: DateTime<Utc>,
    },
}

impl State {
    /// The stored and wire spelling: TRIAL, ACTIVE, GRACE or SUSPENDED. There is no EXPIRED
    /// state: expiry is the instant (`expired_at`) at which GRACE begins.
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Trial { .. } => "TRIAL",
            State::Active { .. } => "ACTIVE",
            State::Grace { .. } => "GRACE",
            State::Suspended { .. } => "SUSPENDED",
        }
    }

    /// What the business may do in this state.
    pub fn access(&self) -> Access {
        match self {
            State::Trial { .. } | State::Active { .. } => Access::Full,
            State::Grace { .. } => Access::ReadOnly,
            State::Suspended { .. } => Access::Suspended,
        }
    }

    /// When the subscription expired, once it has.
    pub fn expired_at(&self) -> Option<DateTime<Utc>> {
        match self {
            State::Trial { .. } | State::Active { .. } => None,
            State::Grace { expired_at, .. } | State::Suspended { expired_at, .. } => {
                Some(*expired_at)
            }
        }
    }
}

/// What a business may do. Whatever the access, nothing stored at a desk is ever deleted or
/// hidden: every level opens the business's data and exports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Trial or paid: read, write and sync.
    Full,
    /// Grace: read, export and receive other desks' changes; new writes and pushes are refused
    /// (changes already waiting in a desk's outbox stay there and go up after a payment).
    ReadOnly,
    /// Suspended: sync is refused both ways; the desk still opens its data read-only and
    /// exports it.
    Suspended,
}

impl Access {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Full => "FULL",
            Access::ReadOnly => "READ_ONLY",
            Access::Suspended => "SUSPENDED",
        }
    }

    /// Whether new records, edits and deletes are accepted.
    pub fn allows_writes(self) -> bool {
        self == Access::Full
    }

    /// Whether a desk may push its outbox to the server.
    pub fn allows_push(self) -> bool {
        self == Access::Full
    }

    /// Whether a desk may pull other desks' changes from the server.
    pub fn allows_pull(self) -> bool {
        self != Access::Suspended
    }

    /// Whether the business's data opens and exports: always, at every level.
    pub fn allows_read_and_export(self) -> bool {
        true
    }
}

/// Days a licence lease handed to a desk lasts when nothing ends sooner: a desk that has not
/// reached the server for this long goes read-only (and, [`GRACE_DAYS`] later, counts as
/// suspended) on its own, even with a perpetual licence.
pub const LEASE_DAYS: i64 = 30;

/// What a desk may do at `now` under a lease that gives full access until `full_until` and
/// read-only access until `read_only_until` (after that, suspended). The desk passes the latest
/// time it has ever seen, so a clock turned back never buys time.
pub fn lease_access(
    full_until: DateTime<Utc>,
    read_only_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Access {
    if now < full_until {
        Access::Full
    } else if now < read_only_until {
        Access::ReadOnly
    } else {
        Access::Suspended
    }
}

/// The schedule of the lease the server hands a desk at `now`: full access until the earlier
/// of the period's end and [`LEASE_DAYS`] from now, then read-only for [`GRACE_DAYS`]; in grace,
/// read-only until the grace ends; suspended, nothing. Returns `(full_until, read_only_until)`.
pub fn lease_schedule(
    subscription: &Subscription,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    match subscription.state_at(now) {
        State::Trial { .. } | State::Active { .. } => {
            let lease_end = days_after(now, LEASE_DAYS);
            let full_until = subscription
                .facts()
                .period_ends_at
                .map_or(lease_end, |end| end.min(lease_end));
            (full_until, days_after(full_until, GRACE_DAYS))
        }
        State::Grace {
            expired_at,
            read_only_until,
        } => (expired_at, read_only_until),
        State::Suspended { expired_at, since } => (expired_at, since),
    }
}

/// An e-mail the server sends about a subscription, once each. Each carries the end of the
/// trial or period it is about, so the reminder for one period is never mistaken for the next
/// period's: [`Notice::key`] is what the outbox keeps to send each exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Notice {
    /// Day 5 of the 7-day trial (3 days left).
    TrialDay5 {
        /// When the trial ends.
        trial_ends_at: DateTime<Utc>,
    },
    /// Day 7, the trial's last day.
    TrialDay7 {
        /// When the trial ends.
        trial_ends_at: DateTime<Utc>,
    },
    /// A paid period ends in 7 days.
    RenewalIn7Days {
        /// When the paid period ends.
        period_ends_at: DateTime<Utc>,
    },
    /// A paid period ends in a day.
    RenewalIn1Day {
        /// When the paid period ends.
        period_ends_at: DateTime<Utc>,
    },
    /// The trial or period ended: Kaunter is read-only for the grace days (expiry and the start
    /// of the grace are one instant, so one e-mail).
    Expired {
        /// When the trial or period ended.
        expired_at: DateTime<Utc>,
    },
    /// The grace ended: sync stopped.
    Suspended {
        /// When the trial or period ended (the grace ended [`GRACE_DAYS`] later).
        expired_at: DateTime<Utc>,
    },
}

impl Notice {
    /// Every kind, in the order they come.
    pub const KINDS: [&'static str; 6] = [
        "TRIAL_DAY_5",
        "TRIAL_DAY_7",
        "RENEWAL_IN_7_DAYS",
        "RENEWAL_IN_1_DAY",
        "EXPIRED",
        "SUSPENDED",
    ];

    /// The kind's stored spelling. FROZEN: the e-mail outbox holds it.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::TrialDay5 { .. } => "TRIAL_DAY_5",
            Notice::TrialDay7 { .. } => "TRIAL_DAY_7",
            Notice::RenewalIn7Days { .. } => "RENEWAL_IN_7_DAYS",
            Notice::RenewalIn1Day { .. } => "RENEWAL_IN_1_DAY",
            Notice::Expired { .. } => "EXPIRED",
            Notice::Suspended { .. } => "SUSPENDED",
        }
    }

    /// The end of the trial or period the notice is about.
    pub fn period_end(&self) -> DateTime<Utc> {
        match *self {
            Notice::TrialDay5 { trial_ends_at } | Notice::TrialDay7 { trial_ends_at } => {
                trial_ends_at
            }
            Notice::RenewalIn7Days { period_ends_at }
            | Notice::RenewalIn1Day { period_ends_at } => period_ends_at,
            Notice::Expired { expired_at } | Notice::Suspended { expired_at } => expired_at,
        }
    }

    /// The notice of `kind` (a [`Notice::kind`] spelling) about the period ending at
    /// `period_end`, as the outbox stored it; `None` for an unknown kind.
    pub fn from_parts(kind: &str, period_end: DateTime<Utc>) -> Option<Notice> {
        Some(match kind {
            "TRIAL_DAY_5" => Notice::TrialDay5 {
                trial_ends_at: period_end,
            },
            "TRIAL_DAY_7" => Notice::TrialDay7 {
                trial_ends_at: period_end,
            },
            "RENEWAL_IN_7_DAYS" => Notice::RenewalIn7Days {
                period_ends_at: period_end,
            },
            "RENEWAL_IN_1_DAY" => Notice::RenewalIn1Day {
                period_ends_at: period_end,
            },
            "EXPIRED" => Notice::Expired {
                expired_at: period_end,
            },
            "SUSPENDED" => Notice::Suspended {
                expired_at: period_end,
            },
            _ => return None,
        })
    }

    /// The outbox's idempotency key: the kind and the period's end in RFC 3339 UTC, e.g.
    /// `RENEWAL_IN_7_DAYS:2025-04-30T09:30:00Z` (fractions of a second appear only when the
    /// time has them). FROZEN.
    pub fn key(&self) -> String {
        format!(
            "{}:{}",
            self.kind(),
            self.period_end()
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)
        )
    }

    /// The moment the notice becomes due. It stays due until the next notice's moment (or, for
    /// the trial's and renewal notices, until a payment or a cancellation makes it moot).
    pub fn due_at(&self) -> DateTime<Utc> {
        match *self {
            Notice::TrialDay5 { trial_ends_at } => days_before(trial_ends_at, TRIAL_DAYS - 4),
            Notice::TrialDay7 { trial_ends_at } => days_before(trial_ends_at, TRIAL_DAYS - 6),
            Notice::RenewalIn7Days { period_ends_at } => days_before(period_ends_at, 7),
            Notice::RenewalIn1Day { period_ends_at } => days_before(period_ends_at, 1),
            Notice::Expired { expired_at } => expired_at,
            Notice::Suspended { expired_at } => days_after(expired_at, GRACE_DAYS),
        }
    }
}

/// Stored subscription facts that contradict each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidSubscription {
    /// The billing cycle does not go with the pricing model.
    Billing(BillingMismatch),
    /// Of the cycle, the pricing model and the last payment's time, some are set and some not.
    IncompletePayment,
    /// Nothing was ever paid and there is no trial: there is nothing that gives access.
    UnpaidWithoutTrial,
    /// Nothing was ever paid, yet access ends at another time than the trial.
    UnpaidPeriodIsNotTheTrial,
    /// A subscription without a period end (only a perpetual licence has none).
    PeriodEndDoesNotMatchPricing,
    /// A cancellation is pending on something other than a paid subscription.
    CancellingWithoutSubscription,
}

impl InvalidSubscription {
    /// A stable code for logs.
    pub fn code(self) -> &'static str {
        match self {
            InvalidSubscription::Billing(_) => "subscription_billing_mismatch",
            InvalidSubscription::IncompletePayment => "subscription_incomplete_payment",
            InvalidSubscription::UnpaidWithoutTrial => "subscription_unpaid_without_trial",
            InvalidSubscription::UnpaidPeriodIsNotTheTrial => "subscription_unpaid_period",
            InvalidSubscription::PeriodEndDoesNotMatchPricing => "subscription_period_end",
            InvalidSubscription::CancellingWithoutSubscription => "subscription_cancel_flag",
        }
    }
}

impl fmt::Display for InvalidSubscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidSubscription::Billing(mismatch) => {
                write!(f, "The stored subscription's billing is inconsistent: {mismatch}")
            }
            InvalidSubscription::IncompletePayment => f.write_str(
                "The stored subscription has only part of its last payment (cycle, pricing and time go together); fix the row.",
            ),
            InvalidSubscription::UnpaidWithoutTrial => f.write_str(
                "The stored subscription was never paid and has no trial; fix the row.",
            ),
            InvalidSubscription::UnpaidPeriodIsNotTheTrial => f.write_str(
                "The stored subscription was never paid, so its access must end with the trial; fix the row.",
            ),
            InvalidSubscription::PeriodEndDoesNotMatchPricing => f.write_str(
                "The stored subscription's period end contradicts its pricing (only a perpetual licence has none); fix the row.",
            ),
            InvalidSubscription::CancellingWithoutSubscription => f.write_str(
                "The stored subscription has a pending cancellation but no paid subscription to cancel; fix the row.",
            ),
        }
    }
}

impl std::error::Error for InvalidSubscription {}

/// Why a payment was not applied. Check with [`Subscription::check_payment`] before taking
/// the money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentRefused {
    /// The billing cycle does not go with the pricing model.
    Billing(BillingMismatch),
    /// The business already owns a perpetual licence: it never ends, so a subscription (or the
    /// same licence again) buys nothing.
    AlreadyPerpetual,
    /// The payment is dated before the last one applied: payments are applied in the order
    /// they were made.
    BeforeLastPayment {
        /// When the last applied payment was made.
        last_paid_at: DateTime<Utc>,
    },
}

impl PaymentRefused {
    /// A stable code for the wire and the UI.
    pub fn code(self) -> &'static str {
        match self {
            PaymentRefused::Billing(mismatch) => mismatch.code(),
            PaymentRefused::AlreadyPerpetual => "already_perpetual",
            PaymentRefused::BeforeLastPayment { .. } => "payment_out_of_order",
        }
    }
}

impl fmt::Display for PaymentRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PaymentRefused::Billing(mismatch) => mismatch.fmt(f),
            PaymentRefused::AlreadyPerpetual => f.write_str(
                "This business already owns a perpetual licence, which never ends: a subscription or the same licence again adds nothing (only a licence for another plan replaces it).",
            ),
            PaymentRefused::BeforeLastPayment { last_paid_at } => write!(
                f,
                "This payment is dated before the last one applied ({}); apply payments in the order they were made.",
                last_paid_at.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
        }
    }
}

impl std::error::Error for PaymentRefused {}

/// Why a cancellation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelRefused {
    /// A trial ends by itself; nothing is charged.
    Trial,
    /// A perpetual licence is owned, not rented: there is nothing to renew.
    Perpetual,
    /// The subscription has already expired.
    Expired {
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
}

impl CancelRefused {
    /// A stable code for the wire and the UI.
    pub fn code(self) -> &'static str {
        match self {
            CancelRefused::Trial => "cancel_trial",
            CancelRefused::Perpetual => "cancel_perpetual",
            CancelRefused::Expired { .. } => "cancel_expired",
        }
    }
}

impl fmt::Display for CancelRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelRefused::Trial => {
                "A trial ends by itself and nothing is charged: there is nothing to cancel."
            }
            CancelRefused::Perpetual => {
                "A perpetual licence is yours to keep and is never charged again: there is nothing to cancel."
            }
            CancelRefused::Expired { .. } => {
                "This subscription has already ended: there is nothing to cancel."
            }
        })
    }
}

impl std::error::Error for CancelRefused {}

/// What one applied payment bought ([`Subscription::apply_payment`] says): kept with the
/// payment, so that a refund of it takes back exactly that ([`Subscription::take_back`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bought {
    /// Days of a subscription, at the span `from..until` they were added at: after the trial,
    /// after the period they extended (or the days it carried over from another plan), or from
    /// the payment itself after expiry. Days bought later come after `until`.
    Days {
        /// Where the payment's days begin.
        from: DateTime<Utc>,
        /// Where they end (the period's end the payment set).
        until: DateTime<Utc>,
    },
    /// A perpetual licence of `plan`.
    Licence {
        /// The plan licensed.
        plan: Plan,
    },
}

impl Bought {
    /// What is still this payment's own, given where the next payment's days begin
    /// (`next_from`, the earliest start of another completed payment's span after this one's
    /// start). An operator's adjustment that took days away, or a change of plan that converted
    /// the days left, starts the next payment's days inside this span: from there on they are
    /// the next payment's, and a refund of this one must not take them. A licence, or days with
    /// no later payment inside them, are unchanged.
    pub fn cut_at(self, next_from: Option<DateTime<Utc>>) -> Bought {
        match (self, next_from) {
            (Bought::Days { from, until }, Some(next)) if from < next && next < until => {
                Bought::Days { from, until: next }
            }
            (bought, _) => bought,
        }
    }
}

/// What [`Subscription::take_back`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TakenBack {
    /// Nothing: the payment's days were used up, or what it bought has been replaced since
    /// (a licence bought after the days, another plan's licence after the licence).
    Nothing,
    /// The period's end moved back by `taken`: the payment's days still to come. Days bought
    /// after them (spans starting at or after `after`) move up by as much: see
    /// [`TakenBack::moved`].
    Days {
        /// How far the period's end moved back.
        taken: TimeDelta,
        /// The refunded payment's `until`.
        after: DateTime<Utc>,
    },
    /// The licence held was the refunded one: it ends at the refund's time.
    Licence,
}

impl TakenBack {
    /// Where the days `bought` by another payment lie once this was taken back: days bought
    /// after the refunded ones start earlier by what was taken (they are used sooner), so a
    /// later refund of them takes back what they really still give. Anything else is unmoved.
    pub fn moved(&self, bought: Bought) -> Bought {
        match (*self, bought) {
            (TakenBack::Days { taken, after }, Bought::Days { from, until }) if from >= after => {
                let earlier = |time: DateTime<Utc>| time.checked_sub_signed(taken).unwrap_or(time);
                Bought::Days {
                    from: earlier(from),
                    until: earlier(until),
                }
            }
            _ => bought,
        }
    }
}

/// The most days an operator's adjustment moves a period by, either way (about ten years).
pub const MAX_ADJUSTMENT_DAYS: i64 = 3_660;

/// Why an operator's adjustment of the period was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjustRefused {
    /// Zero days moves nothing.
    NoDays,
    /// More than [`MAX_ADJUSTMENT_DAYS`] either way.
    TooManyDays,
    /// A perpetual licence (held, or taken back) has no period to move.
    Perpetual,
    /// Days cannot be taken from a subscription that has already ended.
    Expired {
        /// When it ended.
        expired_at: DateTime<Utc>,
    },
    /// Taking that many days would end the period before now.
    NotEnoughLeft {
        /// What is left of the period.
        left: TimeDelta,
        /// How many days were to be taken.
        asked: i64,
    },
}

impl AdjustRefused {
    /// A stable code for the wire, the UI and logs.
    pub fn code(self) -> &'static str {
        match self {
            AdjustRefused::NoDays => "adjust_no_days",
            AdjustRefused::TooManyDays => "adjust_too_many_days",
            AdjustRefused::Perpetual => "adjust_perpetual",
            AdjustRefused::Expired { .. } => "adjust_expired",
            AdjustRefused::NotEnoughLeft { .. } => "adjust_not_enough_left",
        }
    }
}

impl fmt::Display for AdjustRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdjustRefused::NoDays => f.write_str(
                "Zero days changes nothing: give the days to add (a positive number) or to take away (a negative one).",
            ),
            AdjustRefused::TooManyDays => write!(
                f,
                "An adjustment moves the period by at most {MAX_ADJUSTMENT_DAYS} days either way; record a payment or a licence instead."
            ),
            AdjustRefused::Perpetual => f.write_str(
                "A perpetual licence has no period end to move: record a payment for it, or refund the licence, instead.",
            ),
            AdjustRefused::Expired { expired_at } => write!(
                f,
                "This subscription ended at {}: there are no days left to take away (days can still be given with a positive number).",
                expired_at.to_rfc3339_opts(SecondsFormat::Secs, true)
            ),
            AdjustRefused::NotEnoughLeft { left, asked } => write!(
                f,
                "This subscription has {} days and {} hours left: taking {asked} days would end it before now. Take at most {} days.",
                left.num_days(),
                left.num_hours() - left.num_days() * 24,
                left.num_days()
            ),
        }
    }
}

impl std::error::Error for AdjustRefused {}

/// The facts stored about a business's subscription: one row, as the server keeps it. Turn
/// them into a [`Subscription`] with [`Subscription::restore`], which checks they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionFacts {
    /// The plan whose limits apply: [`TRIAL_PLAN`] during the trial, then the last paid plan.
    pub plan: Plan,
    /// The last payment's cycle; `None` while nothing has been paid.
    pub cycle: Option<BillingCycle>,
    /// The last payment's pricing model; `None` while nothing has been paid.
    pub pricing: Option<PricingModel>,
    /// When the free trial ends or ended; kept after payments, for the record. `None` for a
    /// business that never had a trial.
    pub trial_ends_at: Option<DateTime<Utc>>,
    /// When the access already granted ends: the trial's end while nothing is paid, the paid
    /// period's end after. `None` only for a perpetual licence, which has no end (one taken
    /// back by a refund ends at the refund's time).
    pub period_ends_at: Option<DateTime<Utc>>,
    /// The business cancelled: the paid period runs to its end and is not renewed.
    pub cancel_at_period_end: bool,
    /// When the last applied payment was made; `None` while nothing has been paid.
    pub last_paid_at: Option<DateTime<Utc>>,
}

/// A business's subscription: facts known to agree, and the rules over them. Every question
/// takes the time as an argument; the subscription never reads a clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    facts: SubscriptionFacts,
}

impl Subscription {
    /// A new business's subscription: a [`TRIAL_DAYS`]-day trial of [`TRIAL_PLAN`] with full
    /// access, from `started_at`.
    pub fn trial(started_at: DateTime<Utc>) -> Subscription {
        let ends_at = days_after(started_at, TRIAL_DAYS);
        Subscription {
            facts: SubscriptionFacts {
                plan: TRIAL_PLAN,
                cycle: None,
                pricing: None,
                trial_ends_at: Some(ends_at),
                period_ends_at: Some(ends_at),
                cancel_at_period_end: false,
                last_paid_at: None,
            },
        }
    }

    /// A subscription from stored facts, refused if they contradict each other.
    pub fn restore(facts: SubscriptionFacts) -> Result<Subscription, InvalidSubscription> {
        let paid = match (facts.cycle, facts.pricing, facts.last_paid_at) {
            (Some(cycle), Some(pricing), Some(_)) => {
                check_billing(cycle, pricing).map_err(InvalidSubscription::Billing)?;
                Some(pricing)
            }
            (None, None, None) => None,
            _ => return Err(InvalidSubscription::IncompletePayment),
        };
        match paid {
            None => {
                let Some(trial_ends_at) = facts.trial_ends_at else {
                    return Err(InvalidSubscription::UnpaidWithoutTrial);
                };
                if facts.period_ends_at != Some(trial_ends_at) {
                    return Err(InvalidSubscription::UnpaidPeriodIsNotTheTrial);
                }
            }
            // A subscription always has an end. A licence has none while it stands; one taken
            // back by a refund ([`Subscription::take_back`]) ends at the refund's time.
            Some(PricingModel::Subscription) if facts.period_ends_at.is_none() => {
                return Err(InvalidSubscription::PeriodEndDoesNotMatchPricing);
            }
            Some(_) => {}
        }
        if facts.cancel_at_period_end && paid != Some(PricingModel::Subscription) {
            return Err(InvalidSubscription::CancellingWithoutSubscription);
        }
        Ok(Subscription { facts })
    }

    /// The facts to store.
    pub fn facts(&self) -> &SubscriptionFacts {
        &self.facts
    }

    /// The plan whose limits apply.
    pub fn plan(&self) -> Plan {
        self.facts.plan
    }

    /// What the plan allows at once.
    pub fn limits(&self) -> Limits {
        terms(self.facts.plan).limits
    }

    /// Where the subscription stands at `now`. Until the period's end it is TRIAL (nothing paid
    /// yet) or ACTIVE; from the end (the instant it expires) GRACE; from [`GRACE_DAYS`] days
    /// later SUSPENDED. A perpetual licence is ACTIVE at every time.
    pub fn state_at(&self, now: DateTime<Utc>) -> State {
        let Some(end) = self.facts.period_ends_at else {
            return State::Active {
                until: None,
                cancelling: false,
            };
        };
        if now < end {
            return if self.facts.last_paid_at.is_none() {
                State::Trial { ends_at: end }
            } else {
                State::Active {
                    until: Some(end),
                    cancelling: self.facts.cancel_at_period_end,
                }
            };
        }
        let read_only_until = days_after(end, GRACE_DAYS);
        if now < read_only_until {
            State::Grace {
                expired_at: end,
                read_only_until,
            }
        } else {
            State::Suspended {
                expired_at: end,
                since: read_only_until,
            }
        }
    }

    /// What the business may do at `now`.
    pub fn access(&self, now: DateTime<Utc>) -> Access {
        self.state_at(now).access()
    }

    /// Whole days left in the current stage at `now`, as a banner shows them: days of the trial
    /// or paid period while access is full, days of read-only access left during the grace,
    /// `Some(0)` once suspended, and `None` for a perpetual licence (no end).
    ///
    /// Part of a day counts as a day (rounded up), the way a person reads "3 days left": at the
    /// start of day 5 of a 7-day trial 3 days are left, an hour before the end 1 day is, and a
    /// stage shows 0 only once it is over.
    pub fn days_left(&self, now: DateTime<Utc>) -> Option<i64> {
        match self.state_at(now) {
            State::Trial { ends_at } => Some(whole_days_rounded_up(now, ends_at)),
            State::Active {
                until: Some(ends_at),
                ..
            } => Some(whole_days_rounded_up(now, ends_at)),
            State::Active { until: None, .. } => None,
            State::Grace {
                read_only_until, ..
            } => Some(whole_days_rounded_up(now, read_only_until)),
            State::Suspended { .. } => Some(0),
        }
    }

    /// Whether a payment for `plan`, paid `cycle` under `pricing` at `paid_at`, would be
    /// applied; [`Subscription::apply_payment`] makes the same checks. Call it before taking
    /// the money.
    pub fn check_payment(
        &self,
        plan: Plan,
        cycle: BillingCycle,
        pricing: PricingModel,
        paid_at: DateTime<Utc>,
    ) -> Result<(), PaymentRefused> {
        check_billing(cycle, pricing).map_err(PaymentRefused::Billing)?;
        if let Some(last_paid_at) = self.facts.last_paid_at
            && paid_at < last_paid_at
        {
            return Err(PaymentRefused::BeforeLastPayment { last_paid_at });
        }
        let perpetual_now = self.facts.period_ends_at.is_none();
        let buys_perpetual = cycle.days().is_none();
        // A licence for another plan is a change of licence; anything else adds nothing.
        if perpetual_now && !(buys_perpetual && plan != self.facts.plan) {
            return Err(PaymentRefused::AlreadyPerpetual);
        }
        Ok(())
    }

    /// Applies a payment for `plan`, paid `cycle` under `pricing` at `paid_at` (its amount
    /// already matched [`expected_amount_sen`]). The subscription becomes ACTIVE on `plan`,
    /// any pending cancellation is cleared, and the new period ends:
    ///
    /// - never, for a perpetual licence (ONE_TIME, PERPETUAL);
    /// - during the trial: the cycle's days after the trial's end (the free days are kept);
    /// - during a paid period of the same plan: the cycle's days after that period's end (no
    ///   day paid for is lost);
    /// - during a paid period of another plan: the days left are converted at the catalogue's
    ///   prices into days of the new plan and cycle, and the cycle's days are added after
    ///   those (so no money paid is lost, and a move to a dearer plan is not bought with the
    ///   cheaper plan's days);
    /// - after expiry (in the grace or suspended): the cycle's days after `paid_at`.
    ///
    /// Returns what the payment bought (keep it with the payment: a refund of it takes back
    /// exactly that, see [`Subscription::take_back`]). Refused, with nothing changed, for the
    /// reasons in [`PaymentRefused`].
    pub fn apply_payment(
        &mut self,
        plan: Plan,
        cycle: BillingCycle,
        pricing: PricingModel,
        paid_at: DateTime<Utc>,
    ) -> Result<Bought, PaymentRefused> {
        self.check_payment(plan, cycle, pricing, paid_at)?;
        let (period_ends_at, bought) = match cycle.days() {
            None => (None, Bought::Licence { plan }),
            Some(days) => {
                let starts_at = match self.state_at(paid_at) {
                    State::Trial { ends_at } => ends_at,
                    State::Active {
                        until: Some(until), ..
                    } => {
                        if plan == self.facts.plan {
                            until
                        } else {
                            self.converted_end(until, plan, cycle, paid_at)
                        }
                    }
                    // A perpetual licence was refused above; an expired one starts afresh.
                    State::Active { until: None, .. }
                    | State::Grace { .. }
                    | State::Suspended { .. } => paid_at,
                };
                let until = days_after(starts_at, days);
                (
                    Some(until),
                    Bought::Days {
                        from: starts_at,
                        until,
                    },
                )
            }
        };
        self.facts = SubscriptionFacts {
            plan,
            cycle: Some(cycle),
            pricing: Some(pricing),
            trial_ends_at: self.facts.trial_ends_at,
            period_ends_at,
            cancel_at_period_end: false,
            last_paid_at: Some(paid_at),
        };
        Ok(bought)
    }

    /// Where the days left of the current paid period (ending `until`) carry a payment for
    /// another plan to: `paid_at` plus those days valued at the current plan and cycle's price
    /// and bought back at the new plan and cycle's price.
    fn converted_end(
        &self,
        until: DateTime<Utc>,
        plan: Plan,
        cycle: BillingCycle,
        paid_at: DateTime<Utc>,
    ) -> DateTime<Utc> {
        let (Some(old_cycle), Some(old_days), Some(new_days)) = (
            self.facts.cycle,
            self.facts.cycle.and_then(BillingCycle::days),
            cycle.days(),
        ) else {
            return until;
        };
        let old_price = i128::from(terms(self.facts.plan).price_sen(old_cycle));
        let new_price = i128::from(terms(plan).price_sen(cycle));
        let left_ms = i128::from((until - paid_at).num_milliseconds().max(0));
        let credit_ms = if new_price > 0 && old_days > 0 {
            left_ms * old_price * i128::from(new_days) / (i128::from(old_days) * new_price)
        } else {
            left_ms
        };
        let credit = i64::try_from(credit_ms)
            .ok()
            .and_then(TimeDelta::try_milliseconds);
        credit
            .and_then(|credit| paid_at.checked_add_signed(credit))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Cancels at `now`: the paid period runs to its end with full access, is not renewed, and
    /// then expires like any other (GRACE, then SUSPENDED). Cancelling twice changes nothing.
    /// Refused for a trial, a perpetual licence and an expired subscription.
    pub fn cancel(&mut self, now: DateTime<Utc>) -> Result<(), CancelRefused> {
        match self.state_at(now) {
            State::Trial { .. } => Err(CancelRefused::Trial),
            State::Active { until: None, .. } => Err(CancelRefused::Perpetual),
            // A licence taken back and its end moved later would be the only way here; a
            // licence is never renewed, so there is nothing to cancel.
            State::Active { until: Some(_), .. }
                if self.facts.pricing == Some(PricingModel::Perpetual) =>
            {
                Err(CancelRefused::Perpetual)
            }
            State::Active { until: Some(_), .. } => {
                self.facts.cancel_at_period_end = true;
                Ok(())
            }
            State::Grace { expired_at, .. } | State::Suspended { expired_at, .. } => {
                Err(CancelRefused::Expired { expired_at })
            }
        }
    }

    /// Takes back, at `now`, what a payment `bought` once the payment has been refunded in
    /// full. The rule: a refund takes back what the payment still gives, never what it already
    /// gave, and never gives anything (the state at `now` is never better than before).
    ///
    /// - Days ([`Bought::Days`]): the part of the payment's span still to come (from the later
    ///   of its start and `now` to its end), but no more than what is left of the period, comes
    ///   off the period's end; so the end moves back by the days the payment added, never before
    ///   `now`. A refund of the payment that bought the current period ends it at `now` (GRACE
    ///   starts then: a refund never suspends at once); one paid during the trial and refunded
    ///   before the trial's end puts the end back at the trial's end; days bought by later
    ///   payments stay, moved up ([`TakenBack::moved`]); days used up, or a period that has
    ///   already ended, give nothing back, and neither do days a licence bought since replaced.
    /// - A licence ([`Bought::Licence`]): when it is the licence held, it ends at `now`; one
    ///   replaced since by another plan's licence changes nothing.
    ///
    /// What a change of plan carried over is not re-valued: the days taken back are counted as
    /// the refunded payment added them, up to where a later payment's days begin (the caller
    /// passes [`Bought::cut_at`] of them). The plan, cycle and last payment's time stay as they
    /// are (a business whose only payment, made in its trial, is refunded shows ACTIVE until the
    /// trial's end rather than TRIAL: its access is the same).
    pub fn take_back(&mut self, bought: Bought, now: DateTime<Utc>) -> TakenBack {
        if self.facts.last_paid_at.is_none() {
            // Nothing was ever applied, so nothing can be taken back.
            return TakenBack::Nothing;
        }
        match (bought, self.facts.period_ends_at) {
            (Bought::Licence { plan }, None) if plan == self.facts.plan => {
                self.facts.period_ends_at = Some(now);
                self.facts.cancel_at_period_end = false;
                TakenBack::Licence
            }
            (Bought::Days { from, until }, Some(end)) => {
                let still_to_come = until - from.max(now);
                let left = end - now;
                let taken = still_to_come.min(left);
                if taken <= TimeDelta::zero() {
                    return TakenBack::Nothing;
                }
                let new_end = end.checked_sub_signed(taken).unwrap_or(now).max(now);
                self.facts.period_ends_at = Some(new_end);
                TakenBack::Days {
                    taken: end - new_end,
                    after: until,
                }
            }
            _ => TakenBack::Nothing,
        }
    }

    /// An operator's adjustment at `now`: moves the period's end by `days` (negative takes days
    /// away). Given days count from the period's end, or from `now` once it has ended (as a
    /// payment would); during the trial (nothing paid) the trial moves with it. Refused, with
    /// nothing changed, for the reasons in [`AdjustRefused`]: zero days, more than
    /// [`MAX_ADJUSTMENT_DAYS`], a perpetual licence (held or taken back), days taken from a
    /// period that has ended or more days than are left (the end never moves before `now`).
    pub fn adjust(&mut self, days: i64, now: DateTime<Utc>) -> Result<(), AdjustRefused> {
        if days == 0 {
            return Err(AdjustRefused::NoDays);
        }
        if days.unsigned_abs() > MAX_ADJUSTMENT_DAYS.unsigned_abs() {
            return Err(AdjustRefused::TooManyDays);
        }
        let (Some(end), false) = (
            self.facts.period_ends_at,
            self.facts.pricing == Some(PricingModel::Perpetual),
        ) else {
            return Err(AdjustRefused::Perpetual);
        };
        let new_end = if days > 0 {
            days_after(end.max(now), days)
        } else {
            if end <= now {
                return Err(AdjustRefused::Expired { expired_at: end });
            }
            let new_end = days_before(end, -days);
            if new_end < now {
                return Err(AdjustRefused::NotEnoughLeft {
                    left: end - now,
                    asked: -days,
                });
            }
            new_end
        };
        self.facts.period_ends_at = Some(new_end);
        if self.facts.last_paid_at.is_none() {
            self.facts.trial_ends_at = Some(new_end);
        }
        Ok(())
    }

    /// The notices to send at `now` that are not in `already_sent`. At any moment at most one
    /// notice is current: each one's time runs until the next one's comes, so a server that was
    /// down sends the latest, never a stale warning. The trial's warnings go only while nothing
    /// is paid; renewal reminders only for a paid period that is not cancelled (a business that
    /// cancelled is told when it expires).
    pub fn notices_due(&self, now: DateTime<Utc>, already_sent: &[Notice]) -> Vec<Notice> {
        self.current_notice(now)
            .filter(|notice| !already_sent.contains(notice))
            .into_iter()
            .collect()
    }

    fn current_notice(&self, now: DateTime<Utc>) -> Option<Notice> {
        let first_due =
            |candidates: [Notice; 2]| candidates.into_iter().find(|notice| notice.due_at() <= now);
        match self.state_at(now) {
            State::Trial { ends_at } => first_due([
                Notice::TrialDay7 {
                    trial_ends_at: ends_at,
                },
                Notice::TrialDay5 {
                    trial_ends_at: ends_at,
                },
            ]),
            State::Active {
                until: Some(ends_at),
                cancelling: false,
            } => first_due([
                Notice::RenewalIn1Day {
                    period_ends_at: ends_at,
                },
                Notice::RenewalIn7Days {
                    period_ends_at: ends_at,
                },
            ]),
            State::Active { .. } => None,
            State::Grace { expired_at, .. } => Some(Notice::Expired { expired_at }),
            State::Suspended { expired_at, .. } => Some(Notice::Suspended { expired_at }),
        }
    }
}

/// `days` days after `time`, or the latest representable time if that is past it.
fn days_after(time: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    TimeDelta::try_days(days)
        .and_then(|delta| time.checked_add_signed(delta))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `days` days before `time`, or the earliest representable time if that is before it.
fn days_before(time: DateTime<Utc>, days: i64) -> DateTime<Utc> {
    TimeDelta::try_days(days)
        .and_then(|delta| time.checked_sub_signed(delta))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Whole days from `now` to `end`, a part of a day counting as one; 0 once `end` has come.
fn whole_days_rounded_up(now: DateTime<Utc>, end: DateTime<Utc>) -> i64 {
    let left = end - now;
    if left <= TimeDelta::zero() {
        return 0;
    }
    let whole = left.num_days();
    if TimeDelta::try_days(whole).is_some_and(|days| days < left) {
        whole + 1
    } else {
        whole
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;
    use crate::rng::SeededRng;

    const DAY: i64 = 86_400;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 9, 30, 0).unwrap()
    }

    /// `seconds` after `t0`.
    fn at(seconds: i64) -> DateTime<Utc> {
        t0() + TimeDelta::seconds(seconds)
    }

    fn paid(plan: Plan, cycle: BillingCycle, paid_at: DateTime<Utc>) -> Subscription {
        let mut subscription = Subscription::trial(paid_at - TimeDelta::days(30));
        let pricing = cycle.pricing();
        subscription
            .apply_payment(plan, cycle, pricing, paid_at)
            .unwrap();
        subscription
    }

    #[test]
    fn what_is_still_a_payments_own_ends_where_the_next_payments_days_begin() {
        let (from, until) = (at(0), at(30 * DAY));
        let days = Bought::Days { from, until };
        let cut = |next| days.cut_at(next);
        let table = [
            // (the next payment's days begin, what is still this payment's)
            (None, days),
            (
                Some(at(20 * DAY)),
                Bought::Days {
                    from,
                    until: at(20 * DAY),
                },
            ),
            (
                Some(at(DAY)),
                Bought::Days {
                    from,
                    until: at(DAY),
                },
            ),
            // At or outside the span: nothing of it is another payment's.
            (Some(until), days),
            (Some(at(40 * DAY)), days),
            (Some(from), days),
            (Some(at(-DAY)), days),
        ];
        for (next, want) in table {
            assert_eq!(cut(next), want, "next at {next:?}");
        }
        let licence = Bought::Licence { plan: Plan::Pro };
        assert_eq!(licence.cut_at(Some(at(DAY))), licence);
    }

    #[test]
    fn spellings_round_trip() {
        for plan in Plan::ALL {
            assert_eq!(Plan::parse(plan.as_str()), Some(plan));
        }
        for cycle in BillingCycle::ALL {
            assert_eq!(BillingCycle::parse(cycle.as_str()), Some(cycle));
        }
        for pricing in PricingModel::ALL {
            assert_eq!(PricingModel::parse(pricing.as_str()), Some(pricing));
        }
        for module in Module::ALL {
            assert_eq!(Module::parse(module.as_str()), Some(module));
        }
        for status in ModuleStatus::ALL {
            assert_eq!(ModuleStatus::parse(status.as_str()), Some(status));
        }
        for resource in Resource::ALL {
            assert_eq!(Resource::parse(resource.as_str()), Some(resource));
        }
        for kind in Notice::KINDS {
            assert_eq!(Notice::from_parts(kind, t0()).unwrap().kind(), kind);
        }
        assert_eq!(Notice::from_parts("GRACE_STARTED", t0()), None);
        assert_eq!(Plan::parse("starter"), None, "spellings are exact");
        assert_eq!(
            [
                Plan::Starter.as_str(),
                BillingCycle::OneTime.as_str(),
                PricingModel::Perpetual.as_str(),
                Module::RetailPos.as_str(),
                ModuleStatus::Beta.as_str(),
                Access::ReadOnly.as_str(),
            ],
            [
                "STARTER",
                "ONE_TIME",
                "PERPETUAL",
                "RETAIL_POS",
                "BETA",
                "READ_ONLY"
            ]
        );
    }

    #[test]
    fn amounts_per_plan_and_cycle() {
        use BillingCycle::*;
        use Plan::*;
        use PricingModel::*;
        let table: &[(Plan, BillingCycle, PricingModel, Result<i64, ()>)] = &[
            (Starter, Monthly, Subscription, Ok(4_900)),
            (Starter, Yearly, Subscription, Ok(49_000)),
            (Starter, OneTime, Perpetual, Ok(147_000)),
            (Growth, Monthly, Subscription, Ok(12_900)),
            (Growth, Yearly, Subscription, Ok(129_000)),
            (Growth, OneTime, Perpetual, Ok(387_000)),
            (Pro, Monthly, Subscription, Ok(24_900)),
            (Pro, Yearly, Subscription, Ok(249_000)),
            (Pro, OneTime, Perpetual, Ok(747_000)),
            (Enterprise, Monthly, Subscription, Ok(59_900)),
            (Enterprise, Yearly, Subscription, Ok(599_000)),
            (Enterprise, OneTime, Perpetual, Ok(1_797_000)),
            (Starter, OneTime, Subscription, Err(())),
            (Pro, Monthly, Perpetual, Err(())),
            (Enterprise, Yearly, Perpetual, Err(())),
        ];
        for (plan, cycle, pricing, want) in table {
            let got = expected_amount_sen(*plan, *cycle, *pricing);
            match want {
                Ok(sen) => assert_eq!(got, Ok(*sen), "{plan:?} {cycle:?} {pricing:?}"),
                Err(()) => assert_eq!(
                    got,
                    Err(BillingMismatch {
                        cycle: *cycle,
                        pricing: *pricing
                    }),
                    "{plan:?} {cycle:?} {pricing:?}"
                ),
            }
        }
        assert_eq!(
            BillingMismatch {
                cycle: OneTime,
                pricing: Subscription
            }
            .to_string(),
            "A one-time payment buys a perpetual licence: choose the perpetual licence, or pay a subscription monthly or yearly."
        );
        // Larger plans allow at least as much.
        for pair in Plan::ALL.windows(2) {
            let (small, large) = (terms(pair[0]).limits, terms(pair[1]).limits);
            for resource in Resource::ALL {
                let (small, large) = (small.of(resource), large.of(resource));
                assert!(large.is_none() || large >= small, "{pair:?} {resource:?}");
            }
        }
    }

    #[test]
    fn the_module_catalogue_lists_every_module_once() {
        let listed: Vec<Module> = module_catalogue().iter().map(|info| info.module).collect();
        assert_eq!(listed, Module::ALL);
        for module in Module::ALL {
            let info = module.info();
            assert_eq!(info.module, module);
            assert_eq!(info.version.split('.').count(), 3, "{module:?}");
        }
        assert!(Module::Clinic.info().status.can_switch_on());
        assert!(Module::Salon.info().status.can_switch_on());
        assert!(!ModuleStatus::Inactive.can_switch_on());
    }

    #[test]
    fn module_changes_within_the_plan_and_the_catalogue() {
        use Module::*;
        let starter = terms(Plan::Starter).limits; // 1 module
        let growth = terms(Plan::Growth).limits; // 2 modules
        let enterprise = terms(Plan::Enterprise).limits; // no limit
        // (current, wanted, limits, what is switched on and off, or the refusal)
        type Case = (
            &'static [Module],
            &'static [Module],
            Limits,
            Result<(&'static [Module], &'static [Module]), ModuleChangeRefused>,
        );
        let table: &[Case] = &[
            // Switching one on within the limit, and swapping one for another.
            (
                &[Clinic],
                &[Clinic, RetailPos],
                growth,
                Ok((&[RetailPos], &[])),
            ),
            (
                &[Clinic],
                &[RetailPos],
                starter,
                Ok((&[RetailPos], &[Clinic])),
            ),
            // The same set again changes nothing; duplicates count once.
            (&[Clinic], &[Clinic, Clinic], starter, Ok((&[], &[]))),
            // BETA can be switched on.
            (&[Clinic], &[Clinic, Salon], growth, Ok((&[Salon], &[]))),
            // One past the limit.
            (
                &[Clinic],
                &[Clinic, RetailPos],
                starter,
                Err(ModuleChangeRefused::OverLimit {
                    limit: 1,
                    wanted: 2,
                }),
            ),
            (
                &[Clinic, RetailPos],
                &[Clinic, RetailPos, Salon],
                growth,
                Err(ModuleChangeRefused::OverLimit {
                    limit: 2,
                    wanted: 3,
                }),
            ),
            // No limit.
            (
                &[Clinic],
                &[Clinic, RetailPos, Salon],
                enterprise,
                Ok((&[RetailPos, Salon], &[])),
            ),
            // INACTIVE cannot be switched on, whatever the limit.
            (
                &[Clinic],
                &[Clinic, Education],
                enterprise,
                Err(ModuleChangeRefused::NotOffered(Education)),
            ),
            (
                &[Clinic],
                &[Logistics],
                starter,
                Err(ModuleChangeRefused::NotOffered(Logistics)),
            ),
            // ...but one already on (it became INACTIVE since) may stay on, or go.
            (
                &[Education, Clinic],
                &[Education, Clinic],
                growth,
                Ok((&[], &[])),
            ),
            (
                &[Education, Clinic],
                &[Clinic],
                growth,
                Ok((&[], &[Education])),
            ),
            // At least one stays on.
            (
                &[Clinic],
                &[],
                enterprise,
                Err(ModuleChangeRefused::NoModule),
            ),
            // Over the limit after a move to a smaller plan: dropping some is allowed even
            // while still over; switching one on is not.
            (
                &[Clinic, RetailPos, Salon],
                &[Clinic, RetailPos],
                starter,
                Ok((&[], &[Salon])),
            ),
            (
                &[Clinic, RetailPos, Salon],
                &[Clinic, RetailPos, Salon],
                starter,
                Ok((&[], &[])),
            ),
            (
                &[Clinic, RetailPos],
                &[Clinic, Salon],
                starter,
                Err(ModuleChangeRefused::OverLimit {
                    limit: 1,
                    wanted: 2,
                }),
            ),
        ];
        for (current, wanted, limits, expected) in table {
            let got = check_module_change(current, wanted, limits, module_catalogue());
            let expected = expected.map(|(on, off)| ModuleChange {
                switch_on: on.to_vec(),
                switch_off: off.to_vec(),
            });
            assert_eq!(got, expected, "{current:?} -> {wanted:?} under {limits:?}");
        }
        // The catalogue is an argument: a module it lists as INACTIVE, or does not list, is
        // not offered.
        let only_clinic = [ModuleInfo {
            module: Clinic,
            version: "1.0.0",
            status: ModuleStatus::Active,
        }];
        assert_eq!(
            check_module_change(&[Clinic], &[Clinic, RetailPos], &enterprise, &only_clinic),
            Err(ModuleChangeRefused::NotOffered(RetailPos))
        );
    }

    #[test]
    fn module_refusals_say_what_to_do() {
        let table: &[(ModuleChangeRefused, &str, &str)] = &[
            (
                ModuleChangeRefused::OverLimit {
                    limit: 2,
                    wanted: 3,
                },
                "plan_limit_reached",
                "Your plan allows 2 modules at once and 3 are chosen: switch one off or move to a larger plan.",
            ),
            (
                ModuleChangeRefused::OverLimit {
                    limit: 1,
                    wanted: 4,
                },
                "plan_limit_reached",
                "Your plan allows 1 module at once and 4 are chosen: switch 3 off or move to a larger plan.",
            ),
            (
                ModuleChangeRefused::OverLimit {
                    limit: 0,
                    wanted: 1,
                },
                "plan_limit_reached",
                "Your plan does not include modules: move to a larger plan.",
            ),
            (
                ModuleChangeRefused::NotOffered(Module::Education),
                "module_not_offered",
                "Education is not offered at the moment, so it cannot be switched on.",
            ),
            (
                ModuleChangeRefused::NoModule,
                "modules_required",
                "Choose at least one module: a business always has one switched on.",
            ),
        ];
        for (refused, code, sentence) in table {
            assert_eq!(refused.code(), *code);
            assert_eq!(refused.to_string(), *sentence);
        }
        assert_eq!(
            ModuleChangeRefused::OverLimit {
                limit: 1,
                wanted: 2
            }
            .code(),
            LimitExceeded {
                resource: Resource::Module,
                limit: 1,
                in_use: 1
            }
            .code(),
            "every plan limit has one code"
        );
    }

    #[test]
    fn limits_at_the_limit_and_one_past_it() {
        let growth = terms(Plan::Growth).limits; // 2 modules, 10 users, 3 desks
        let usage = |modules, users, devices| Usage {
            modules,
            users,
            devices,
        };
        let table: &[(Usage, Resource, Option<&str>)] = &[
            (usage(0, 0, 2), Resource::Device, None),
            (
                usage(0, 0, 3),
                Resource::Device,
                Some(
                    "Your plan allows 3 desks and 3 are in use: remove one or move to a larger plan.",
                ),
            ),
            (
                usage(0, 0, 5),
                Resource::Device,
                Some(
                    "Your plan allows 3 desks and 5 are in use: remove 3 or move to a larger plan.",
                ),
            ),
            (usage(0, 9, 0), Resource::User, None),
            (
                usage(0, 10, 0),
                Resource::User,
                Some(
                    "Your plan allows 10 staff accounts and 10 are in use: remove one or move to a larger plan.",
                ),
            ),
            (usage(1, 0, 0), Resource::Module, None),
            (
                usage(2, 0, 0),
                Resource::Module,
                Some(
                    "Your plan allows 2 modules and 2 are in use: turn one off or move to a larger plan.",
                ),
            ),
            // Each resource is checked against its own limit.
            (usage(2, 10, 0), Resource::Device, None),
        ];
        for (in_use, adding, want) in table {
            let got = check_limit(&growth, in_use, *adding);
            assert_eq!(
                got.map_err(|e| e.to_string()).err().as_deref(),
                *want,
                "{in_use:?} {adding:?}"
            );
        }
        let starter = terms(Plan::Starter).limits;
        let refused = check_limit(&starter, &usage(0, 0, 1), Resource::Device).unwrap_err();
        assert_eq!(
            refused,
            LimitExceeded {
                resource: Resource::Device,
                limit: 1,
                in_use: 1
            }
        );
        assert_eq!(
            refused.to_string(),
            "Your plan allows 1 desk and 1 is in use: remove one or move to a larger plan."
        );
        let none = Limits {
            modules: Some(0),
            users: None,
            devices: None,
        };
        assert_eq!(
            check_limit(&none, &Usage::default(), Resource::Module)
                .unwrap_err()
                .to_string(),
            "Your plan does not include modules: move to a larger plan."
        );
        // ENTERPRISE has no limits.
        let enterprise = terms(Plan::Enterprise).limits;
        for resource in Resource::ALL {
            let huge = usage(u32::MAX, u32::MAX, u32::MAX);
            assert_eq!(check_limit(&enterprise, &huge, resource), Ok(()));
        }
    }

    #[test]
    fn a_trial_is_full_then_grace_then_suspended_at_the_exact_boundaries() {
        let trial = Subscription::trial(t0());
        assert_eq!(trial.plan(), TRIAL_PLAN);
        let end = at(7 * DAY);
        let grace_end = at(14 * DAY);
        let table: &[(i64, &str, Access, Option<i64>)] = &[
            (0, "TRIAL", Access::Full, Some(7)),
            (1, "TRIAL", Access::Full, Some(7)),
            (4 * DAY - 1, "TRIAL", Access::Full, Some(4)),
            (4 * DAY, "TRIAL", Access::Full, Some(3)),
            (6 * DAY, "TRIAL", Access::Full, Some(1)),
            (7 * DAY - 1, "TRIAL", Access::Full, Some(1)),
            (7 * DAY, "GRACE", Access::ReadOnly, Some(7)),
            (13 * DAY, "GRACE", Access::ReadOnly, Some(1)),
            (14 * DAY - 1, "GRACE", Access::ReadOnly, Some(1)),
            (14 * DAY, "SUSPENDED", Access::Suspended, Some(0)),
            (400 * DAY, "SUSPENDED", Access::Suspended, Some(0)),
        ];
        for (offset, state, access, days_left) in table {
            let now = at(*offset);
            assert_eq!(trial.state_at(now).as_str(), *state, "at +{offset}s");
            assert_eq!(trial.access(now), *access, "at +{offset}s");
            assert_eq!(trial.days_left(now), *days_left, "at +{offset}s");
        }
        assert_eq!(trial.state_at(at(0)), State::Trial { ends_at: end });
        assert_eq!(
            trial.state_at(end),
            State::Grace {
                expired_at: end,
                read_only_until: grace_end
            }
        );
        assert_eq!(
            trial.state_at(grace_end),
            State::Suspended {
                expired_at: end,
                since: grace_end
            }
        );
        assert_eq!(trial.state_at(grace_end).expired_at(), Some(end));
    }

    #[test]
    fn what_each_access_allows() {
        let table = [
            (Access::Full, true, true, true),
            (Access::ReadOnly, false, false, true),
            (Access::Suspended, false, false, false),
        ];
        for (access, writes, push, pull) in table {
            assert_eq!(access.allows_writes(), writes, "{access:?}");
            assert_eq!(access.allows_push(), push, "{access:?}");
            assert_eq!(access.allows_pull(), pull, "{access:?}");
            // Nothing local is ever hidden.
            assert!(access.allows_read_and_export(), "{access:?}");
        }
    }

    #[test]
    fn trial_notices_on_day_5_and_day_7_then_expired_and_suspended() {
        let trial = Subscription::trial(t0());
        let end = at(7 * DAY);
        let table: &[(i64, Option<Notice>)] = &[
            (0, None),
            (4 * DAY - 1, None),
            (4 * DAY, Some(Notice::TrialDay5 { trial_ends_at: end })),
            (6 * DAY - 1, Some(Notice::TrialDay5 { trial_ends_at: end })),
            (6 * DAY, Some(Notice::TrialDay7 { trial_ends_at: end })),
            (7 * DAY - 1, Some(Notice::TrialDay7 { trial_ends_at: end })),
            (7 * DAY, Some(Notice::Expired { expired_at: end })),
            (14 * DAY - 1, Some(Notice::Expired { expired_at: end })),
            (14 * DAY, Some(Notice::Suspended { expired_at: end })),
        ];
        for (offset, want) in table {
            let got = trial.notices_due(at(*offset), &[]);
            assert_eq!(got, want.iter().copied().collect::<Vec<_>>(), "+{offset}s");
            if let Some(notice) = want {
                assert!(notice.due_at() <= at(*offset));
                // Sent once, it is not due again.
                assert_eq!(trial.notices_due(at(*offset), &[*notice]), []);
            }
        }
        assert_eq!(
            Notice::TrialDay5 { trial_ends_at: end }.key(),
            "TRIAL_DAY_5:2025-03-08T09:30:00Z"
        );
        // A payment during the trial stops the trial's warnings.
        let mut paying = trial;
        paying
            .apply_payment(
                Plan::Starter,
                BillingCycle::Monthly,
                PricingModel::Subscription,
                at(DAY),
            )
            .unwrap();
        assert_eq!(paying.notices_due(at(6 * DAY), &[]), []);
    }

    #[test]
    fn renewal_reminders_7_days_and_1_day_before_the_end() {
        let subscription = paid(Plan::Growth, BillingCycle::Monthly, t0());
        let end = at(30 * DAY);
        assert_eq!(subscription.state_at(t0()).as_str(), "ACTIVE");
        let table: &[(i64, Option<Notice>)] = &[
            (0, None),
            (23 * DAY - 1, None),
            (
                23 * DAY,
                Some(Notice::RenewalIn7Days {
                    period_ends_at: end,
                }),
            ),
            (
                29 * DAY - 1,
                Some(Notice::RenewalIn7Days {
                    period_ends_at: end,
                }),
            ),
            (
                29 * DAY,
                Some(Notice::RenewalIn1Day {
                    period_ends_at: end,
                }),
            ),
            (
                30 * DAY - 1,
                Some(Notice::RenewalIn1Day {
                    period_ends_at: end,
                }),
            ),
            (30 * DAY, Some(Notice::Expired { expired_at: end })),
        ];
        for (offset, want) in table {
            let got = subscription.notices_due(at(*offset), &[]);
            assert_eq!(got, want.iter().copied().collect::<Vec<_>>(), "+{offset}s");
        }
        assert_eq!(subscription.days_left(at(23 * DAY)), Some(7));
        assert_eq!(subscription.days_left(at(23 * DAY - 1)), Some(8));
        assert_eq!(subscription.days_left(at(30 * DAY - 1)), Some(1));

        // After a renewal the next period's reminder is a new notice, not the old one.
        let mut renewed = subscription;
        let sent = [Notice::RenewalIn7Days {
            period_ends_at: end,
        }];
        renewed
            .apply_payment(
                Plan::Growth,
                BillingCycle::Monthly,
                PricingModel::Subscription,
                at(24 * DAY),
            )
            .unwrap();
        let next = renewed.notices_due(at(53 * DAY), &sent);
        assert_eq!(
            next,
            [Notice::RenewalIn7Days {
                period_ends_at: at(60 * DAY)
            }]
        );
        assert_ne!(next[0].key(), sent[0].key());
    }

    #[test]
    fn a_payment_extends_from_the_period_end_or_starts_at_the_payment() {
        use BillingCycle::*;
        use Plan::*;
        // (what happened before, cycle, when paid, new period end) all in seconds after t0.
        // The trial ends at +7d; "monthly" below is a GROWTH payment at +7d ending at +37d.
        enum Before {
            Trial,
            Monthly,
        }
        let table: &[(Before, BillingCycle, i64, i64)] = &[
            // During the trial: from the trial's end, the free days kept.
            (Before::Trial, Monthly, 0, 37 * DAY),
            (Before::Trial, Monthly, 7 * DAY - 1, 37 * DAY),
            (Before::Trial, Yearly, 3 * DAY, 372 * DAY),
            // At the trial's end it has expired: from the payment.
            (Before::Trial, Monthly, 7 * DAY, 37 * DAY),
            (Before::Trial, Monthly, 10 * DAY, 40 * DAY),
            // Suspended: from the payment.
            (Before::Trial, Monthly, 14 * DAY, 44 * DAY),
            (Before::Trial, Yearly, 100 * DAY, 465 * DAY),
            // Same plan during a paid period: from its end.
            (Before::Monthly, Monthly, 8 * DAY, 67 * DAY),
            (Before::Monthly, Monthly, 37 * DAY - 1, 67 * DAY),
            (Before::Monthly, Yearly, 20 * DAY, 402 * DAY),
            // In the grace or suspended: from the payment.
            (Before::Monthly, Monthly, 37 * DAY, 67 * DAY),
            (Before::Monthly, Monthly, 40 * DAY, 70 * DAY),
            (Before::Monthly, Monthly, 44 * DAY, 74 * DAY),
            (Before::Monthly, Monthly, 90 * DAY, 120 * DAY),
        ];
        for (before, cycle, paid_offset, end_offset) in table {
            let mut subscription = Subscription::trial(t0());
            if let Before::Monthly = before {
                subscription
                    .apply_payment(Growth, Monthly, PricingModel::Subscription, at(7 * DAY))
                    .unwrap();
                assert_eq!(subscription.facts().period_ends_at, Some(at(37 * DAY)));
            }
            let paid_at = at(*paid_offset);
            subscription
                .apply_payment(Growth, *cycle, PricingModel::Subscription, paid_at)
                .unwrap();
            assert_eq!(
                subscription.facts().period_ends_at,
                Some(at(*end_offset)),
                "paid {cycle:?} at +{paid_offset}s"
            );
            assert_eq!(subscription.access(paid_at), Access::Full);
            assert_eq!(
                subscription.state_at(paid_at),
                State::Active {
                    until: Some(at(*end_offset)),
                    cancelling: false
                }
            );
            assert_eq!(subscription.facts().last_paid_at, Some(paid_at));
            assert_eq!(subscription.facts().cycle, Some(*cycle));
        }
    }

    #[test]
    fn a_payment_in_grace_or_after_suspension_restores_full_access() {
        for offset in [7 * DAY, 14 * DAY - 1, 14 * DAY, 365 * DAY] {
            let mut subscription = Subscription::trial(t0());
            let now = at(offset);
            assert_ne!(subscription.access(now), Access::Full);
            subscription
                .apply_payment(
                    Plan::Starter,
                    BillingCycle::Monthly,
                    PricingModel::Subscription,
                    now,
                )
                .unwrap();
            assert_eq!(subscription.access(now), Access::Full, "+{offset}s");
            assert_eq!(subscription.days_left(now), Some(30));
            assert_eq!(subscription.plan(), Plan::Starter);
        }
    }

    #[test]
    fn a_perpetual_licence_never_expires() {
        let licence = paid(Plan::Pro, BillingCycle::OneTime, t0());
        for offset in [0, 7 * DAY, 365 * DAY, 100 * 365 * DAY] {
            let now = at(offset);
            assert_eq!(
                licence.state_at(now),
                State::Active {
                    until: None,
                    cancelling: false
                }
            );
            assert_eq!(licence.days_left(now), None);
            assert_eq!(licence.notices_due(now, &[]), []);
        }
        assert_eq!(
            licence.state_at(DateTime::<Utc>::MAX_UTC).as_str(),
            "ACTIVE"
        );
        // Bought from suspension, too.
        let mut late = Subscription::trial(t0());
        late.apply_payment(
            Plan::Starter,
            BillingCycle::OneTime,
            PricingModel::Perpetual,
            at(30 * DAY),
        )
        .unwrap();
        assert_eq!(late.access(at(3000 * DAY)), Access::Full);
        // A licence buys nothing more of the same; a licence for another plan replaces it.
        let mut owned = licence;
        for (plan, cycle) in [
            (Plan::Pro, BillingCycle::OneTime),
            (Plan::Pro, BillingCycle::Monthly),
            (Plan::Enterprise, BillingCycle::Yearly),
        ] {
            assert_eq!(
                owned.apply_payment(plan, cycle, cycle.pricing(), at(DAY)),
                Err(PaymentRefused::AlreadyPerpetual),
                "{plan:?} {cycle:?}"
            );
            assert_eq!(owned, licence, "nothing changed");
        }
        owned
            .apply_payment(
                Plan::Enterprise,
                BillingCycle::OneTime,
                PricingModel::Perpetual,
                at(DAY),
            )
            .unwrap();
        assert_eq!(owned.plan(), Plan::Enterprise);
        assert_eq!(owned.days_left(at(DAY)), None);
    }

    #[test]
    fn a_change_of_plan_mid_period_carries_the_days_left_at_their_value() {
        // 20 days of STARTER monthly left (RM 49 / 30 days) become days of GROWTH monthly
        // (RM 129 / 30 days): 20 * 49 / 129 days, in milliseconds rounded down.
        let mut subscription = paid(Plan::Starter, BillingCycle::Monthly, t0());
        let paid_at = at(10 * DAY);
        subscription
            .apply_payment(
                Plan::Growth,
                BillingCycle::Monthly,
                PricingModel::Subscription,
                paid_at,
            )
            .unwrap();
        let credit_ms = 20 * DAY * 1000 * 4_900 / 12_900;
        assert_eq!(
            subscription.facts().period_ends_at,
            Some(paid_at + TimeDelta::milliseconds(credit_ms) + TimeDelta::days(30))
        );
        assert_eq!(subscription.plan(), Plan::Growth);
        // Down to a cheaper plan, the days left stretch.
        let mut down = paid(Plan::Pro, BillingCycle::Yearly, t0());
        down.apply_payment(
            Plan::Starter,
            BillingCycle::Yearly,
            PricingModel::Subscription,
            at(165 * DAY),
        )
        .unwrap();
        let credit_ms = 200 * DAY * 1000 * 249_000 / 49_000;
        assert_eq!(
            down.facts().period_ends_at,
            Some(at(165 * DAY) + TimeDelta::milliseconds(credit_ms) + TimeDelta::days(365))
        );
    }

    #[test]
    fn payments_that_do_not_add_up_are_refused_and_change_nothing() {
        let mut subscription = paid(Plan::Growth, BillingCycle::Monthly, at(DAY));
        let before = subscription;
        let table: &[(BillingCycle, PricingModel, DateTime<Utc>, PaymentRefused)] = &[
            (
                BillingCycle::OneTime,
                PricingModel::Subscription,
                at(2 * DAY),
                PaymentRefused::Billing(BillingMismatch {
                    cycle: BillingCycle::OneTime,
                    pricing: PricingModel::Subscription,
                }),
            ),
            (
                BillingCycle::Monthly,
                PricingModel::Perpetual,
                at(2 * DAY),
                PaymentRefused::Billing(BillingMismatch {
                    cycle: BillingCycle::Monthly,
                    pricing: PricingModel::Perpetual,
                }),
            ),
            (
                BillingCycle::Monthly,
                PricingModel::Subscription,
                at(DAY - 1),
                PaymentRefused::BeforeLastPayment {
                    last_paid_at: at(DAY),
                },
            ),
        ];
        for (cycle, pricing, paid_at, want) in table {
            assert_eq!(
                subscription.check_payment(Plan::Growth, *cycle, *pricing, *paid_at),
                Err(*want)
            );
            assert_eq!(
                subscription.apply_payment(Plan::Growth, *cycle, *pricing, *paid_at),
                Err(*want)
            );
            assert_eq!(subscription, before);
        }
        assert_eq!(
            PaymentRefused::BeforeLastPayment {
                last_paid_at: at(DAY)
            }
            .to_string(),
            "This payment is dated before the last one applied (2025-03-02T09:30:00Z); apply payments in the order they were made."
        );
    }

    /// Payments made one after another: (cycle, plan, seconds after t0).
    type Payments = [(BillingCycle, Plan, i64)];

    /// The trial (from t0, ending at +7d) and then `payments`, with what each bought.
    fn history(payments: &Payments) -> (Subscription, Vec<Bought>) {
        let mut subscription = Subscription::trial(t0());
        let bought = payments
            .iter()
            .map(|(cycle, plan, offset)| {
                subscription
                    .apply_payment(*plan, *cycle, cycle.pricing(), at(*offset))
                    .unwrap()
            })
            .collect();
        (subscription, bought)
    }

    #[test]
    fn what_a_payment_bought_is_its_span_or_its_licence() {
        use BillingCycle::*;
        let (_, bought) = history(&[
            (Monthly, Plan::Growth, DAY),
            (Monthly, Plan::Growth, 10 * DAY),
            (Monthly, Plan::Growth, 80 * DAY),
            (OneTime, Plan::Pro, 81 * DAY),
        ]);
        assert_eq!(
            bought,
            [
                // In the trial: after it.
                Bought::Days {
                    from: at(7 * DAY),
                    until: at(37 * DAY)
                },
                // During a period: after it.
                Bought::Days {
                    from: at(37 * DAY),
                    until: at(67 * DAY)
                },
                // After expiry: from the payment.
                Bought::Days {
                    from: at(80 * DAY),
                    until: at(110 * DAY)
                },
                Bought::Licence { plan: Plan::Pro },
            ]
        );
    }

    #[test]
    fn a_refund_takes_back_the_days_still_to_come_never_before_now() {
        use BillingCycle::*;
        use Plan::*;
        let one = [(Monthly, Growth, DAY)]; // bought 7d..37d
        let two = [(Monthly, Growth, DAY), (Monthly, Growth, 10 * DAY)]; // 7..37, 37..67
        let lapsed = [(Monthly, Growth, DAY), (Monthly, Growth, 60 * DAY)]; // 7..37, 60..90
        let after_expiry = [(Monthly, Growth, 10 * DAY)]; // 10..40
        let licence = [(OneTime, Pro, DAY)];
        let days_then_licence = [(Monthly, Growth, DAY), (OneTime, Pro, 5 * DAY)];
        let two_licences = [(OneTime, Starter, DAY), (OneTime, Pro, 2 * DAY)];
        // (payments, which are refunded in turn, when, the period's end after; None: no end)
        let table: &[(&Payments, &[usize], i64, Option<i64>)] = &[
            // Refunded during the trial: back to the trial's end.
            (&one, &[0], 2 * DAY, Some(7 * DAY)),
            // At the trial's end, in the paid month, its last second: the month ends now.
            (&one, &[0], 7 * DAY, Some(7 * DAY)),
            (&one, &[0], 20 * DAY, Some(20 * DAY)),
            (&one, &[0], 37 * DAY - 1, Some(37 * DAY - 1)),
            // Used up, or ended already: nothing moves (and never later).
            (&one, &[0], 37 * DAY, Some(37 * DAY)),
            (&one, &[0], 40 * DAY, Some(37 * DAY)),
            // The earlier of two: the later month's days stay, from now.
            (&two, &[0], 20 * DAY, Some(50 * DAY)),
            (&two, &[1], 20 * DAY, Some(37 * DAY)),
            (&two, &[1], 2 * DAY, Some(37 * DAY)),
            // Both, in either order: the period ends now.
            (&two, &[0, 0], 20 * DAY, Some(20 * DAY)),
            (&two, &[1, 0], 20 * DAY, Some(20 * DAY)),
            (&two, &[0, 0], 2 * DAY, Some(7 * DAY)),
            // A month used up before a lapse takes nothing from the month paid since.
            (&lapsed, &[0], 70 * DAY, Some(90 * DAY)),
            (&lapsed, &[1], 70 * DAY, Some(70 * DAY)),
            (&after_expiry, &[0], 15 * DAY, Some(15 * DAY)),
            // The licence held ends now; days a licence replaced give nothing back.
            (&licence, &[0], 3 * DAY, Some(3 * DAY)),
            (&days_then_licence, &[0], 6 * DAY, None),
            (&days_then_licence, &[1], 6 * DAY, Some(6 * DAY)),
            // Another plan's licence replaced the refunded one: it stands.
            (&two_licences, &[0], 3 * DAY, None),
            (&two_licences, &[1], 3 * DAY, Some(3 * DAY)),
        ];
        for (payments, refunds, now, want) in table {
            let (mut subscription, mut bought) = history(payments);
            let now = at(*now);
            let access_before = subscription.access(now);
            for index in *refunds {
                let refunded = bought.remove(*index);
                let taken = subscription.take_back(refunded, now);
                bought = bought.into_iter().map(|b| taken.moved(b)).collect();
            }
            let case = format!("{payments:?} refunds {refunds:?} at {now}");
            assert_eq!(subscription.facts().period_ends_at, want.map(at), "{case}");
            // Never better than before, and what is stored restores.
            assert!(
                access_rank(subscription.access(now)) >= access_rank(access_before),
                "{case}"
            );
            assert_eq!(
                Subscription::restore(*subscription.facts()),
                Ok(subscription)
            );
        }
        // A month refunded at its last second is GRACE from then: read-only, not suspended.
        let (mut subscription, bought) = history(&one);
        let now = at(20 * DAY);
        assert_eq!(
            subscription.take_back(bought[0], now),
            TakenBack::Days {
                taken: TimeDelta::days(17),
                after: at(37 * DAY)
            }
        );
        assert_eq!(
            subscription.state_at(now),
            State::Grace {
                expired_at: now,
                read_only_until: at(27 * DAY)
            }
        );
        // A licence taken back: GRACE now, and a new payment starts afresh.
        let (mut owned, bought) = history(&licence);
        assert_eq!(owned.take_back(bought[0], at(3 * DAY)), TakenBack::Licence);
        assert_eq!(owned.access(at(3 * DAY)), Access::ReadOnly);
        assert_eq!(
            owned.cancel(at(3 * DAY)),
            Err(CancelRefused::Expired {
                expired_at: at(3 * DAY)
            })
        );
        owned
            .apply_payment(Pro, OneTime, PricingModel::Perpetual, at(4 * DAY))
            .unwrap();
        assert_eq!(owned.facts().period_ends_at, None);
        // Days taken away by an operator first: a period that has ended already never moves
        // (later), though the payment's own span is not over.
        let (mut shortened, bought) = history(&one);
        shortened.adjust(-10, at(10 * DAY)).unwrap();
        let before = shortened;
        assert_eq!(
            shortened.take_back(bought[0], at(30 * DAY)),
            TakenBack::Nothing
        );
        assert_eq!(shortened, before);
        // ... and while it runs, no more than what is left of it is taken.
        assert_eq!(
            shortened.take_back(bought[0], at(20 * DAY)),
            TakenBack::Days {
                taken: TimeDelta::days(7),
                after: at(37 * DAY)
            }
        );
        assert_eq!(shortened.facts().period_ends_at, Some(at(20 * DAY)));
        // Nothing was ever paid: nothing to take back.
        let mut trial = Subscription::trial(t0());
        let days = Bought::Days {
            from: at(7 * DAY),
            until: at(37 * DAY),
        };
        assert_eq!(trial.take_back(days, at(DAY)), TakenBack::Nothing);
        assert_eq!(trial, Subscription::trial(t0()));
    }

    #[test]
    fn later_days_move_up_by_what_was_taken_back() {
        let taken = TakenBack::Days {
            taken: TimeDelta::days(17),
            after: at(37 * DAY),
        };
        let later = Bought::Days {
            from: at(37 * DAY),
            until: at(67 * DAY),
        };
        let earlier = Bought::Days {
            from: at(7 * DAY),
            until: at(37 * DAY),
        };
        let licence = Bought::Licence { plan: Plan::Pro };
        assert_eq!(
            taken.moved(later),
            Bought::Days {
                from: at(20 * DAY),
                until: at(50 * DAY)
            }
        );
        assert_eq!(taken.moved(earlier), earlier);
        assert_eq!(taken.moved(licence), licence);
        assert_eq!(TakenBack::Nothing.moved(later), later);
        assert_eq!(TakenBack::Licence.moved(later), later);
    }

    #[test]
    fn an_adjustment_moves_the_end_by_whole_days_and_refuses_what_makes_no_sense() {
        use BillingCycle::*;
        let trial = Subscription::trial(t0());
        let (monthly, _) = history(&[(Monthly, Plan::Growth, DAY)]); // ends +37d
        let (licence, bought) = history(&[(OneTime, Plan::Pro, DAY)]);
        let mut taken_back = licence;
        taken_back.take_back(bought[0], at(2 * DAY));
        let mut cancelled = monthly;
        cancelled.cancel(at(2 * DAY)).unwrap();
        // (subscription, days, when, the new end or the refusal)
        let table: &[(Subscription, i64, i64, Result<i64, AdjustRefused>)] = &[
            // During the trial the trial moves, either way, down to ending now.
            (trial, 7, DAY, Ok(14 * DAY)),
            (trial, -3, DAY, Ok(4 * DAY)),
            (trial, -6, DAY, Ok(DAY)),
            (
                trial,
                -7,
                DAY,
                Err(AdjustRefused::NotEnoughLeft {
                    left: TimeDelta::days(6),
                    asked: 7,
                }),
            ),
            // A paid period, from its end.
            (monthly, 5, 10 * DAY, Ok(42 * DAY)),
            (monthly, -27, 10 * DAY, Ok(10 * DAY)),
            (
                monthly,
                -28,
                10 * DAY,
                Err(AdjustRefused::NotEnoughLeft {
                    left: TimeDelta::days(27),
                    asked: 28,
                }),
            ),
            (
                monthly,
                MAX_ADJUSTMENT_DAYS,
                10 * DAY,
                Ok((37 + 3_660) * DAY),
            ),
            // Ended: given days count from now; none can be taken.
            (monthly, 5, 40 * DAY, Ok(45 * DAY)),
            (monthly, 5, 37 * DAY, Ok(42 * DAY)),
            (
                monthly,
                -1,
                37 * DAY,
                Err(AdjustRefused::Expired {
                    expired_at: at(37 * DAY),
                }),
            ),
            (trial, 3, 30 * DAY, Ok(33 * DAY)),
            // Nonsense.
            (monthly, 0, DAY, Err(AdjustRefused::NoDays)),
            (
                monthly,
                MAX_ADJUSTMENT_DAYS + 1,
                DAY,
                Err(AdjustRefused::TooManyDays),
            ),
            (
                monthly,
                -MAX_ADJUSTMENT_DAYS - 1,
                DAY,
                Err(AdjustRefused::TooManyDays),
            ),
            (monthly, i64::MIN, DAY, Err(AdjustRefused::TooManyDays)),
            (licence, 5, 3 * DAY, Err(AdjustRefused::Perpetual)),
            (taken_back, 5, 3 * DAY, Err(AdjustRefused::Perpetual)),
            // A cancellation stays: the period still ends without renewal, later.
            (cancelled, 5, 3 * DAY, Ok(42 * DAY)),
        ];
        for (subscription, days, now, want) in table {
            let mut adjusted = *subscription;
            let result = adjusted.adjust(*days, at(*now));
            let case = format!("{days} days at +{now}s of {subscription:?}");
            match want {
                Ok(end) => {
                    assert_eq!(result, Ok(()), "{case}");
                    assert_eq!(adjusted.facts().period_ends_at, Some(at(*end)), "{case}");
                    let unpaid = subscription.facts().last_paid_at.is_none();
                    if unpaid {
                        assert_eq!(adjusted.facts().trial_ends_at, Some(at(*end)), "{case}");
                    } else {
                        assert_eq!(
                            adjusted.facts().trial_ends_at,
                            subscription.facts().trial_ends_at
                        );
                    }
                    assert_eq!(
                        adjusted.facts().cancel_at_period_end,
                        subscription.facts().cancel_at_period_end
                    );
                    assert_eq!(Subscription::restore(*adjusted.facts()), Ok(adjusted));
                }
                Err(refused) => {
                    assert_eq!(result, Err(*refused), "{case}");
                    assert_eq!(adjusted, *subscription, "{case}");
                }
            }
        }
        // A trial given days after it ended is a trial again.
        let mut lapsed = trial;
        lapsed.adjust(3, at(30 * DAY)).unwrap();
        assert_eq!(
            lapsed.state_at(at(30 * DAY)),
            State::Trial {
                ends_at: at(33 * DAY)
            }
        );
        assert_eq!(
            AdjustRefused::NotEnoughLeft {
                left: TimeDelta::hours(9 * 24 + 4),
                asked: 40
            }
            .to_string(),
            "This subscription has 9 days and 4 hours left: taking 40 days would end it before now. Take at most 9 days."
        );
        assert_eq!(AdjustRefused::Perpetual.code(), "adjust_perpetual");
    }

    #[test]
    fn cancellation_runs_to_the_period_end_then_grace() {
        let mut subscription = paid(Plan::Growth, BillingCycle::Monthly, t0());
        let end = at(30 * DAY);
        subscription.cancel(at(5 * DAY)).unwrap();
        subscription.cancel(at(6 * DAY)).unwrap(); // twice changes nothing
        assert!(subscription.facts().cancel_at_period_end);
        let table: &[(i64, State)] = &[
            (
                5 * DAY,
                State::Active {
                    until: Some(end),
                    cancelling: true,
                },
            ),
            (
                30 * DAY - 1,
                State::Active {
                    until: Some(end),
                    cancelling: true,
                },
            ),
            (
                30 * DAY,
                State::Grace {
                    expired_at: end,
                    read_only_until: at(37 * DAY),
                },
            ),
            (
                37 * DAY,
                State::Suspended {
                    expired_at: end,
                    since: at(37 * DAY),
                },
            ),
        ];
        for (offset, want) in table {
            assert_eq!(subscription.state_at(at(*offset)), *want, "+{offset}s");
        }
        // A cancelled period gets no renewal reminders, but is told when it expires.
        assert_eq!(subscription.notices_due(at(29 * DAY), &[]), []);
        assert_eq!(
            subscription.notices_due(at(30 * DAY), &[]),
            [Notice::Expired { expired_at: end }]
        );
        // A payment clears the cancellation and extends from the period's end.
        let mut resumed = subscription;
        resumed
            .apply_payment(
                Plan::Growth,
                BillingCycle::Monthly,
                PricingModel::Subscription,
                at(20 * DAY),
            )
            .unwrap();
        assert!(!resumed.facts().cancel_at_period_end);
        assert_eq!(
            resumed.state_at(at(20 * DAY)),
            State::Active {
                until: Some(at(60 * DAY)),
                cancelling: false
            }
        );
    }

    #[test]
    fn what_cannot_be_cancelled() {
        let trial = Subscription::trial(t0());
        let licence = paid(Plan::Pro, BillingCycle::OneTime, t0());
        let monthly = paid(Plan::Pro, BillingCycle::Monthly, t0());
        let table: &[(Subscription, i64, Result<(), CancelRefused>)] = &[
            (trial, 0, Err(CancelRefused::Trial)),
            (trial, 7 * DAY - 1, Err(CancelRefused::Trial)),
            (
                trial,
                7 * DAY,
                Err(CancelRefused::Expired {
                    expired_at: at(7 * DAY),
                }),
            ),
            (licence, DAY, Err(CancelRefused::Perpetual)),
            (monthly, 30 * DAY - 1, Ok(())),
            (
                monthly,
                30 * DAY,
                Err(CancelRefused::Expired {
                    expired_at: at(30 * DAY),
                }),
            ),
            (
                monthly,
                90 * DAY,
                Err(CancelRefused::Expired {
                    expired_at: at(30 * DAY),
                }),
            ),
        ];
        for (subscription, offset, want) in table {
            let mut subscription = *subscription;
            let before = subscription;
            assert_eq!(subscription.cancel(at(*offset)), *want, "+{offset}s");
            if want.is_err() {
                assert_eq!(subscription, before);
            }
        }
        assert_eq!(CancelRefused::Trial.code(), "cancel_trial");
    }

    #[test]
    fn stored_facts_round_trip_and_contradictions_are_refused() {
        let trial = Subscription::trial(t0());
        let monthly = paid(Plan::Growth, BillingCycle::Monthly, t0());
        let licence = paid(Plan::Pro, BillingCycle::OneTime, t0());
        // A licence taken back by a refund keeps its pricing and ends when it was taken back.
        let mut taken_back = licence;
        taken_back.take_back(Bought::Licence { plan: Plan::Pro }, at(DAY));
        assert_eq!(taken_back.facts().period_ends_at, Some(at(DAY)));
        for subscription in [trial, monthly, licence, taken_back] {
            assert_eq!(
                Subscription::restore(*subscription.facts()),
                Ok(subscription)
            );
        }
        let trial_facts = *trial.facts();
        let monthly_facts = *monthly.facts();
        let table: &[(SubscriptionFacts, InvalidSubscription)] = &[
            (
                SubscriptionFacts {
                    cycle: Some(BillingCycle::Monthly),
                    ..trial_facts
                },
                InvalidSubscription::IncompletePayment,
            ),
            (
                SubscriptionFacts {
                    trial_ends_at: None,
                    period_ends_at: None,
                    ..trial_facts
                },
                InvalidSubscription::UnpaidWithoutTrial,
            ),
            (
                SubscriptionFacts {
                    period_ends_at: Some(at(30 * DAY)),
                    ..trial_facts
                },
                InvalidSubscription::UnpaidPeriodIsNotTheTrial,
            ),
            (
                SubscriptionFacts {
                    cancel_at_period_end: true,
                    ..trial_facts
                },
                InvalidSubscription::CancellingWithoutSubscription,
            ),
            (
                SubscriptionFacts {
                    pricing: Some(PricingModel::Perpetual),
                    ..monthly_facts
                },
                InvalidSubscription::Billing(BillingMismatch {
                    cycle: BillingCycle::Monthly,
                    pricing: PricingModel::Perpetual,
                }),
            ),
            (
                SubscriptionFacts {
                    period_ends_at: None,
                    ..monthly_facts
                },
                InvalidSubscription::PeriodEndDoesNotMatchPricing,
            ),
            (
                SubscriptionFacts {
                    cancel_at_period_end: true,
                    ..*licence.facts()
                },
                InvalidSubscription::CancellingWithoutSubscription,
            ),
        ];
        for (facts, want) in table {
            assert_eq!(Subscription::restore(*facts), Err(*want), "{facts:?}");
        }
    }

    #[test]
    fn times_at_the_ends_of_the_calendar_do_not_panic() {
        let facts = SubscriptionFacts {
            plan: Plan::Starter,
            cycle: Some(BillingCycle::Yearly),
            pricing: Some(PricingModel::Subscription),
            trial_ends_at: None,
            period_ends_at: Some(DateTime::<Utc>::MAX_UTC - TimeDelta::days(1)),
            cancel_at_period_end: false,
            last_paid_at: Some(t0()),
        };
        let mut subscription = Subscription::restore(facts).unwrap();
        for now in [
            DateTime::<Utc>::MIN_UTC,
            t0(),
            DateTime::<Utc>::MAX_UTC - TimeDelta::days(3),
            DateTime::<Utc>::MAX_UTC,
        ] {
            subscription.state_at(now);
            subscription.days_left(now);
            subscription.notices_due(now, &[]);
            let _ = Notice::Suspended {
                expired_at: DateTime::<Utc>::MAX_UTC,
            }
            .due_at();
        }
        subscription
            .apply_payment(
                Plan::Starter,
                BillingCycle::Yearly,
                PricingModel::Subscription,
                t0(),
            )
            .unwrap();
        assert_eq!(
            subscription.facts().period_ends_at,
            Some(DateTime::<Utc>::MAX_UTC)
        );
        let mut trial = Subscription::trial(DateTime::<Utc>::MAX_UTC);
        // Saturated ends collapse the stages into one instant; what matters is no panic.
        trial.state_at(DateTime::<Utc>::MAX_UTC);
        trial
            .apply_payment(
                Plan::Enterprise,
                BillingCycle::Monthly,
                PricingModel::Subscription,
                DateTime::<Utc>::MAX_UTC,
            )
            .unwrap();
    }

    fn rank(state: &State) -> u8 {
        match state {
            State::Trial { .. } | State::Active { .. } => 0,
            State::Grace { .. } => 1,
            State::Suspended { .. } => 2,
        }
    }

    fn access_rank(access: Access) -> u8 {
        match access {
            Access::Full => 0,
            Access::ReadOnly => 1,
            Access::Suspended => 2,
        }
    }

    #[test]
    fn random_histories_only_a_payment_restores_access_and_time_only_moves_forward() {
        let seconds = |rng: &mut SeededRng, max_days: u64| {
            TimeDelta::seconds(i64::try_from(rng.below(max_days * 86_400)).unwrap())
        };
        for seed in 0..1000 {
            let mut rng = SeededRng::new(seed);
            let mut now = t0();
            let mut subscription = Subscription::trial(now);
            let mut sent: Vec<Notice> = Vec::new();
            let mut bought: Vec<Bought> = Vec::new();
            for step in 0..80 {
                let before = subscription;
                let access_before = subscription.access(now);
                let mut paid_now = false;
                match rng.below(13) {
                    0..=5 => now += seconds(&mut rng, 20),
                    6 | 7 => {
                        let plan = *rng.pick(&Plan::ALL).unwrap();
                        let cycle = *rng.pick(&BillingCycle::ALL).unwrap();
                        let pricing = *rng.pick(&PricingModel::ALL).unwrap();
                        // Now and then a payment dated in the past, which may be out of order.
                        let paid_at = if rng.chance(10) {
                            now - seconds(&mut rng, 40)
                        } else {
                            now
                        };
                        match subscription.apply_payment(plan, cycle, pricing, paid_at) {
                            Ok(what) => {
                                bought.push(what);
                                paid_now = true;
                                assert_eq!(subscription.plan(), plan);
                                if paid_at == now {
                                    assert_eq!(
                                        subscription.access(now),
                                        Access::Full,
                                        "seed {seed} step {step}"
                                    );
                                }
                            }
                            Err(_) => assert_eq!(subscription, before, "seed {seed} step {step}"),
                        }
                    }
                    8 | 9 => match subscription.cancel(now) {
                        Ok(()) => assert_eq!(subscription.access(now), Access::Full),
                        Err(_) => assert_eq!(subscription, before, "seed {seed} step {step}"),
                    },
                    // A refund in full of one of the payments applied so far.
                    10 | 11 if !bought.is_empty() => {
                        let refunded = bought.remove(rng.index(bought.len()));
                        let taken = subscription.take_back(refunded, now);
                        bought = bought.into_iter().map(|b| taken.moved(b)).collect();
                        let (end_before, end_after) = (
                            before.facts().period_ends_at,
                            subscription.facts().period_ends_at,
                        );
                        match taken {
                            TakenBack::Nothing => assert_eq!(subscription, before),
                            TakenBack::Licence => {
                                assert_eq!(end_before, None);
                                assert_eq!(end_after, Some(now));
                            }
                            TakenBack::Days { taken, .. } => {
                                let (end_before, end_after) =
                                    (end_before.unwrap(), end_after.unwrap());
                                assert!(taken > TimeDelta::zero(), "seed {seed} step {step}");
                                assert_eq!(end_before - end_after, taken);
                                assert!(end_after >= now, "seed {seed} step {step}");
                            }
                        }
                    }
                    10 | 11 => {}
                    _ => {
                        let days = i64::try_from(rng.below(81)).unwrap() - 40;
                        match subscription.adjust(days, now) {
                            Ok(()) => {
                                // Given days may restore access, like a payment.
                                paid_now = days > 0;
                                let end = subscription.facts().period_ends_at.unwrap();
                                assert!(end >= now, "seed {seed} step {step}");
                            }
                            Err(_) => assert_eq!(subscription, before, "seed {seed} step {step}"),
                        }
                    }
                }
                let access_after = subscription.access(now);
                if !paid_now {
                    assert!(
                        access_rank(access_after) >= access_rank(access_before),
                        "seed {seed} step {step}: {access_before:?} -> {access_after:?} without a payment"
                    );
                }
                // The stored facts always restore to the same subscription.
                assert_eq!(
                    Subscription::restore(*subscription.facts()),
                    Ok(subscription)
                );
                // Absent new facts, time only moves the subscription forward.
                let mut later = now;
                let mut last = rank(&subscription.state_at(later));
                for _ in 0..4 {
                    later += seconds(&mut rng, 30);
                    let next = rank(&subscription.state_at(later));
                    assert!(next >= last, "seed {seed} step {step}");
                    last = next;
                }
                // Days left agree with the state.
                let state = subscription.state_at(now);
                match (state, subscription.days_left(now)) {
                    (State::Active { until: None, .. }, None) => {}
                    (State::Suspended { .. }, Some(0)) => {}
                    (State::Trial { .. } | State::Active { .. } | State::Grace { .. }, Some(d)) => {
                        assert!(d >= 1, "seed {seed} step {step}")
                    }
                    (state, days) => panic!("seed {seed} step {step}: {state:?} {days:?}"),
                }
                // At most one notice at a time, each sent once, never before its time.
                let due = subscription.notices_due(now, &sent);
                assert!(due.len() <= 1, "seed {seed} step {step}");
                for notice in due {
                    assert!(notice.due_at() <= now, "seed {seed} step {step}");
                    assert!(!sent.contains(&notice));
                    sent.push(notice);
                }
            }
        }
    }
    #[test]
    fn a_lease_gives_full_access_then_read_only_then_suspended_at_exact_boundaries() {
        let start = t0();
        let sub = Subscription::trial(start);
        // In the trial: full until the trial's end (sooner than LEASE_DAYS), then the grace.
        let (full, read_only) = lease_schedule(&sub, start);
        assert_eq!(full, days_after(start, TRIAL_DAYS));
        assert_eq!(read_only, days_after(full, GRACE_DAYS));
        let second = TimeDelta::seconds(1);
        assert_eq!(lease_access(full, read_only, full - second), Access::Full);
        assert_eq!(lease_access(full, read_only, full), Access::ReadOnly);
        assert_eq!(
            lease_access(full, read_only, read_only - second),
            Access::ReadOnly
        );
        assert_eq!(lease_access(full, read_only, read_only), Access::Suspended);
        // A perpetual licence still needs the desk to check in every LEASE_DAYS.
        let mut perpetual = Subscription::trial(start);
        perpetual
            .apply_payment(
                Plan::Starter,
                BillingCycle::OneTime,
                PricingModel::Perpetual,
                start,
            )
            .unwrap();
        let (full, read_only) = lease_schedule(&perpetual, start);
        assert_eq!(full, days_after(start, LEASE_DAYS));
        assert_eq!(read_only, days_after(start, LEASE_DAYS + GRACE_DAYS));
        // In grace, the lease says so: read-only until the grace ends.
        let in_grace = days_after(start, TRIAL_DAYS + 1);
        let (full, read_only) = lease_schedule(&sub, in_grace);
        assert_eq!(lease_access(full, read_only, in_grace), Access::ReadOnly);
        assert_eq!(read_only, days_after(start, TRIAL_DAYS + GRACE_DAYS));
        // Suspended: nothing.
        let later = days_after(start, TRIAL_DAYS + GRACE_DAYS + 1);
        let (full, read_only) = lease_schedule(&sub, later);
        assert_eq!(lease_access(full, read_only, later), Access::Suspended);
    }
}
