//! What head office's pages show, decided without the DOM: money, dates in Malaysian time, how
//! healthy a desk's sync is, the subscription's lines and what a refusal means to the person.
//! Pure functions over the API's answers and a `now` passed in, tested in format.test.ts.

import type { DeviceSyncStatus, InvoiceView, LimitView, PaymentView, PlanView, SubscriptionView } from "./api-types";
import { t } from "./strings";
import type { FieldError } from "../wire";

/** Head office's time zone, whatever the browser's computer is set to. */
export const TIME_ZONE = "Asia/Kuala_Lumpur";

/** A desk not heard from for this long is highlighted. */
export const STALE_AFTER_HOURS = 24;
/** Changes waiting on a desk for this long are worth a look. */
export const PENDING_WARNING_HOURS = 1;

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

/** Sen as ringgit: 123400 -> `RM 1,234.00`, -500 -> `-RM 5.00`; none -> `—`. */
export function formatRinggit(sen: number | null | undefined): string {
  if (sen === null || sen === undefined || !Number.isFinite(sen)) return "—";
  const whole = Math.round(sen);
  const sign = whole < 0 ? "-" : "";
  const absolute = Math.abs(whole);
  const ringgit = Math.floor(absolute / 100)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const cents = String(absolute % 100).padStart(2, "0");
  return `${sign}RM ${ringgit}.${cents}`;
}

const dateTimeParts = new Intl.DateTimeFormat("en-GB", {
  timeZone: TIME_ZONE,
  year: "numeric",
  month: "2-digit",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  hourCycle: "h23",
});

function parts(instant: string): Record<string, string> | null {
  const millis = Date.parse(instant);
  if (Number.isNaN(millis)) return null;
  const found: Record<string, string> = {};
  for (const part of dateTimeParts.formatToParts(new Date(millis))) found[part.type] = part.value;
  return found;
}

/** An instant (RFC 3339) as `DD/MM/YYYY HH:MM` in Malaysian time; none -> `—`. */
export function formatDateTime(instant: string | null | undefined): string {
  if (!instant) return "—";
  const p = parts(instant);
  if (!p) return instant;
  return `${p.day}/${p.month}/${p.year} ${p.hour}:${p.minute}`;
}

/** An instant (RFC 3339) as the day `DD/MM/YYYY` in Malaysian time; none -> `—`. */
export function formatDay(instant: string | null | undefined): string {
  if (!instant) return "—";
  const p = parts(instant);
  if (!p) return instant;
  return `${p.day}/${p.month}/${p.year}`;
}

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** How long ago `instant` was: `just now`, `5 minutes ago`, `3 hours ago`, `2 days ago`. */
export function formatAge(instant: string, now: Date): string {
  const millis = Date.parse(instant);
  if (Number.isNaN(millis)) return "";
  const elapsed = now.getTime() - millis;
  if (elapsed < 60 * 1000) return "just now";
  if (elapsed < HOUR_MS) return `${plural(Math.floor(elapsed / 60_000), "minute", "minutes")} ago`;
  if (elapsed < DAY_MS) return `${plural(Math.floor(elapsed / HOUR_MS), "hour", "hours")} ago`;
  return `${plural(Math.floor(elapsed / DAY_MS), "day", "days")} ago`;
}

/** How a desk's sync is doing, worst first. */
export type DeskHealthLevel = "removed" | "never" | "stale" | "error" | "refused" | "waiting" | "ok";

export type DeskHealth = {
  level: DeskHealthLevel;
  /** A few words for the status column. */
  label: string;
  /** Whether the row is highlighted: something needs a person. */
  attention: boolean;
};

/** A desk's sync health at `now`, from what the server knows of it. */
export function deskHealth(desk: DeviceSyncStatus, now: Date): DeskHealth {
  if (desk.revoked) return { level: "removed", label: "Removed", attention: false };
  const lastSeen = desk.last_seen_at ? Date.parse(desk.last_seen_at) : Number.NaN;
  if (Number.isNaN(lastSeen)) return { level: "never", label: "Never connected", attention: true };
  const unseen = now.getTime() - lastSeen;
  if (unseen >= STALE_AFTER_HOURS * HOUR_MS) {
    const days = Math.floor(unseen / DAY_MS);
    const label = days >= 1 ? `Not seen for ${plural(days, "day", "days")}` : `Not seen for ${plural(Math.floor(unseen / HOUR_MS), "hour", "hours")}`;
    return { level: "stale", label, attention: true };
  }
  if (desk.last_error) return { level: "error", label: "Last sync failed", attention: true };
  const refused = desk.refused ?? 0;
  if (refused > 0) return { level: "refused", label: `${plural(refused, "change", "changes")} refused`, attention: true };
  const pending = desk.pending ?? 0;
  if (pending > 0) {
    const since = desk.oldest_pending_at ? Date.parse(desk.oldest_pending_at) : Number.NaN;
    const old = !Number.isNaN(since) && now.getTime() - since >= PENDING_WARNING_HOURS * HOUR_MS;
    return { level: "waiting", label: `${plural(pending, "change", "changes")} waiting`, attention: old };
  }
  return { level: "ok", label: "In sync", attention: false };
}

/** The desks with the ones that need a person first, then by branch and name as listed. */
export function desksByAttention(desks: readonly DeviceSyncStatus[], now: Date): DeviceSyncStatus[] {
  const rank = (desk: DeviceSyncStatus): number => {
    const health = deskHealth(desk, now);
    if (health.level === "removed") return 2;
    return health.attention ? 0 : 1;
  };
  return desks
    .map((desk, index) => ({ desk, index, rank: rank(desk) }))
    .sort((a, b) => a.rank - b.rank || a.index - b.index)
    .map(({ desk }) => desk);
}

const STATE_LABELS: Record<string, string> = {
  TRIAL: "Free trial",
  ACTIVE: "Active",
  GRACE: "Ended: read-only grace",
  SUSPENDED: "Suspended",
};

const ACCESS_LABELS: Record<string, string> = {
  FULL: "Full access",
  READ_ONLY: "Read-only",
  SUSPENDED: "No sync",
};

const RESOURCE_LABELS: Record<string, string> = {
  DEVICE: "Desks",
  USER: "Staff accounts",
  MODULE: "Modules",
};

const MODULE_LABELS: Record<string, string> = {
  CLINIC: "Clinic",
  RETAIL_POS: "Retail point of sale",
  SALON: "Salon",
  EDUCATION: "Education",
  LOGISTICS: "Logistics",
};

/** `GROWTH` -> `Growth`, `ONE_TIME` -> `One time`: a code a person reads. */
export function humanise(code: string): string {
  const words = code.toLowerCase().replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export const stateLabel = (state: string): string => STATE_LABELS[state] ?? humanise(state);
export const accessLabel = (access: string): string => ACCESS_LABELS[access] ?? humanise(access);
export const moduleLabel = (module: string): string => MODULE_LABELS[module] ?? humanise(module);

export type LimitLine = {
  resource: string;
  label: string;
  /** `1 of 3`, or `4 (no limit)`. */
  text: string;
  /** At the limit: nothing more can be added. */
  full: boolean;
};

export function limitLine(limit: LimitView): LimitLine {
  const label = RESOURCE_LABELS[limit.resource] ?? humanise(limit.resource);
  if (limit.limit === null || limit.limit === undefined) {
    return { resource: limit.resource, label, text: `${limit.in_use} (no limit)`, full: false };
  }
  return {
    resource: limit.resource,
    label,
    text: `${limit.in_use} of ${limit.limit}`,
    full: limit.in_use >= limit.limit,
  };
}

/** One module of the catalogue as a checkbox on the page. */
export type ModuleChoice = {
  module: string;
  /** `Clinic`, with `(beta)` for a BETA module. */
  label: string;
  version: string;
  checked: boolean;
  /** An INACTIVE module cannot be switched on; one already on can still be switched off. */
  disabled: boolean;
  /** Why it is disabled, or that it is a beta; null otherwise. */
  note: string | null;
};

/** The catalogue's modules as checkboxes, in the catalogue's order. */
export function moduleChoices(view: SubscriptionView): ModuleChoice[] {
  return view.modules.map((module) => {
    const inactive = module.status === "INACTIVE";
    const beta = module.status === "BETA";
    return {
      module: module.module,
      label: beta ? `${moduleLabel(module.module)} ${t.moduleBeta}` : moduleLabel(module.module),
      version: module.version,
      checked: module.enabled,
      disabled: inactive && !module.enabled,
      note: inactive ? t.moduleNotOffered : beta ? t.moduleBetaNote : null,
    };
  });
}

/** `2 of 3 modules` chosen against the plan's module limit; `4 modules (no limit)`. */
export function modulesLimitText(chosen: number, view: SubscriptionView): { text: string; over: boolean } {
  const limit = view.limits.find((line) => line.resource === "MODULE")?.limit;
  const noun = (n: number): string => (n === 1 ? "module" : "modules");
  if (limit === null || limit === undefined) return { text: `${chosen} ${noun(chosen)} (no limit)`, over: false };
  return { text: `${chosen} of ${limit} ${noun(limit)}`, over: chosen > limit };
}

/** The sentence shown beside the modules when saving them was refused. */
export function modulesRefusalMessage(refusal: Refusal): string {
  const fields = (refusal.fields ?? []).map((field) => field.message).filter((message) => message !== "");
  if (refusal.code === "validation_failed" && fields.length > 0) return fields.join(" ");
  switch (refusal.code) {
    case "plan_limit_reached":
      return refusal.message || t.unexpectedError;
    case "subscription_read_only":
      return t.modulesReadOnly;
    case "subscription_suspended":
      return t.modulesSuspended;
    case "forbidden":
      return t.modulesNotAllowed;
    case "network":
      return t.serverUnreachable;
    default:
      return refusal.message || t.unexpectedError;
  }
}

/**
 * Whether head office may cancel the subscription from the page: a paid, renewing
 * subscription, not cancelled yet (a trial, a perpetual licence or an ended subscription has
 * nothing to cancel; the server refuses those too).
 */
export function canCancel(view: SubscriptionView): boolean {
  return view.state === "ACTIVE" && view.pricing === "SUBSCRIPTION" && !view.cancel_at_period_end && Boolean(view.period_ends_at);
}

/** A refused cancellation as a sentence for head office. */
export function cancelRefusalMessage(refusal: Refusal): string {
  switch (refusal.code) {
    case "forbidden":
      return t.cancelNotAllowed;
    case "network":
      return t.serverUnreachable;
    default:
      return refusal.message || t.unexpectedError;
  }
}

/** An invoice or refund note as its printed lines. */
export type InvoiceSheet = {
  title: string;
  number: string;
  issued: string;
  seller: string;
  buyer: string[];
  description: string;
  /** `01/03/2026 – 31/03/2026`, or null when the payment bought no span (a licence, a refund). */
  period: string | null;
  amount: string;
  paidBy: string;
  /** The refund note's invoice and reason, a refunded invoice's remark: each a line. */
  notes: string[];
};

const PROVIDERS: Record<string, string> = { stripe: "card (Stripe)", fpx: "FPX online banking", operator: "bank transfer" };

export function invoiceSheet(invoice: InvoiceView): InvoiceSheet {
  const refundNote = invoice.document === "REFUND_NOTE";
  const provider = PROVIDERS[invoice.provider] ?? invoice.provider;
  const notes: string[] = [];
  if (invoice.refunds_invoice) notes.push(t.invoiceRefunds(invoice.refunds_invoice));
  if (invoice.reason) notes.push(t.invoiceReason(invoice.reason));
  if (!refundNote && invoice.status === "REFUNDED") notes.push(t.invoiceRefundedInFull);
  return {
    title: refundNote ? t.refundNoteTitle : t.invoiceTitle,
    number: invoice.number,
    issued: formatDay(invoice.issued_at),
    seller: invoice.seller,
    buyer: [invoice.buyer.name, ...invoice.buyer.address, ...(invoice.buyer.email ? [invoice.buyer.email] : []), t.invoiceBusinessId(invoice.buyer.business_id)],
    description: invoice.description,
    period: !refundNote && invoice.period_from && invoice.period_until ? `${formatDay(invoice.period_from)} – ${formatDay(invoice.period_until)}` : null,
    amount: invoice.currency === "MYR" ? formatRinggit(invoice.amount_sen) : `${invoice.currency} ${(invoice.amount_sen / 100).toFixed(2)}`,
    paidBy: refundNote ? t.invoiceRefundedBy(provider, invoice.reference) : t.invoicePaidBy(provider, invoice.reference),
    notes,
  };
}

/** The days-left line: what the number counts down to. */
export function daysLeftText(view: SubscriptionView): string {
  const days = view.days_left;
  if (days === null || days === undefined) return t.perpetual;
  const n = plural(days, "day", "days");
  switch (view.state) {
    case "TRIAL":
      return `${n} left of the trial`;
    case "ACTIVE":
      return view.cancel_at_period_end ? `${n} left before it ends` : `${n} left of the paid period`;
    case "GRACE":
      return `${n} left before suspension`;
    case "SUSPENDED":
      return "0 days: suspended";
    default:
      return n;
  }
}

export type PayDue = {
  /** What happened and what it means for the desks. */
  situation: string;
  /** The current plan's prices, when the price list has it. */
  prices: string | null;
  how: string;
};

/** What to pay and how, when the business is in GRACE or SUSPENDED; otherwise null. */
export function payDue(view: SubscriptionView): PayDue | null {
  let situation: string;
  if (view.state === "GRACE") situation = t.payGrace(formatDateTime(view.read_only_until));
  else if (view.state === "SUSPENDED") situation = t.paySuspended;
  else return null;
  const plan: PlanView | undefined = view.plans.find((candidate) => candidate.plan === view.plan);
  const prices = plan
    ? t.payPrices(humanise(plan.plan), formatRinggit(plan.monthly_sen), formatRinggit(plan.yearly_sen))
    : null;
  return { situation, prices, how: t.payHow };
}

export type PaymentRow = {
  date: string;
  kind: string;
  status: string;
  /** `Growth, monthly`, or `—`. */
  what: string;
  amount: string;
  reference: string;
  failed: boolean;
};

export function paymentRow(payment: PaymentView): PaymentRow {
  // A plan's payment names what it bought; an adjustment its days and a refund that it is one,
  // each with the operator's reason when there is one.
  const bought = [payment.plan ? humanise(payment.plan) : null, payment.cycle ? payment.cycle.toLowerCase().replace(/_/g, " ") : null]
    .filter((part): part is string => part !== null)
    .join(", ");
  const moved = typeof payment.adjust_days === "number" && payment.adjust_days !== 0 ? t.adjustedBy(payment.adjust_days) : null;
  const refund = payment.refund_of ? t.refundOfPayment : null;
  const what = [moved ?? refund ?? (bought || null), payment.reason || null]
    .filter((part): part is string => part !== null)
    .join(": ");
  const status = payment.failure_reason ? `${humanise(payment.status)}: ${payment.failure_reason}` : humanise(payment.status);
  return {
    date: formatDateTime(payment.completed_at ?? payment.created_at),
    kind: humanise(payment.kind),
    status,
    what: what || "—",
    amount: payment.currency === "MYR" || payment.amount_sen === null || payment.amount_sen === undefined
      ? formatRinggit(payment.amount_sen)
      : `${payment.currency} ${((payment.amount_sen ?? 0) / 100).toFixed(2)}`,
    reference: payment.external_id,
    failed: payment.status === "FAILED",
  };
}

/** `125` seconds -> `3 minutes`; `40` -> `1 minute`. */
export function formatWait(seconds: number): string {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  return plural(minutes, "minute", "minutes");
}

/** What an answer of the API means, for the sign-in form and the sections. */
export type Refusal = {
  status: number;
  code: string;
  message: string;
  /** `Retry-After`, in seconds, when the server sent one. */
  retryAfterSecs: number | null;
  /** Field errors of a `validation_failed` answer. */
  fields?: FieldError[];
};

/** The sentence the sign-in form shows for a refused login. */
export function signInMessage(refusal: Refusal): string {
  switch (refusal.code) {
    case "invalid_credentials":
      return t.wrongCredentials;
    case "too_many_attempts":
      return t.tooManyAttempts(formatWait(refusal.retryAfterSecs ?? 15 * 60));
    case "totp_required":
      return t.totpRequired;
    case "totp_invalid":
      return t.totpInvalid;
    case "business_not_active":
      return t.businessNotActive;
    case "network":
      return t.serverUnreachable;
    default:
      return refusal.message || t.unexpectedError;
  }
}

/** The sentence a section shows instead of its content when the API refused it. */
export function sectionMessage(refusal: Refusal): string {
  if (refusal.code === "forbidden") return t.notAllowed;
  if (refusal.code === "totp_setup_required") return t.totpSetupRequired;
  if (refusal.code === "network") return t.serverUnreachable;
  return t.sectionFailed(refusal.message || t.unexpectedError);
}
