// Generated from sync-server/openapi.json by `npm --prefix ui run api-types`
// (ui/scripts/openapi-types.mjs). Do not edit by hand: src/office/api-types.test.ts fails
// when this file and the document disagree.

/**
 * A branch as head office sees it.
 */
export type BranchView = {
  /**
   * Desks enrolled there and not revoked.
   */
  active_devices: number;
  branch_id: string;
  /**
   * A closed branch keeps its data; it gets no new desks.
   */
  closed_at?: string | null;
  /**
   * Short code printed in document numbers, e.g. `KL01`.
   */
  code?: string | null;
  created_at: string;
  name: string;
};

/**
 * `GET /v1/branches`: every branch of the business, open ones first, by name.
 */
export type BranchesResponse = {
  branches: Array<BranchView>;
};

/**
 * The subscription after a cancellation.
 */
export type CancelResponse = {
  /**
   * FULL until the period's end.
   */
  access: string;
  cancel_at_period_end: boolean;
  cycle?: string | null;
  last_paid_at?: string | null;
  /**
   * When the paid period, and with it the subscription, ends.
   */
  period_ends_at?: string | null;
  plan: string;
  pricing?: string | null;
  /**
   * ACTIVE (cancelling) until the period's end, then GRACE and SUSPENDED.
   */
  state: string;
};

/**
 * One desk's sync state as head office sees it: what the desk last reported, when the server
 * last heard from it, and its branch's open conflicts.
 */
export type DeviceSyncStatus = {
  app_version?: string | null;
  branch_id: string;
  branch_name: string;
  branch_open_conflicts: number;
  device_id: string;
  device_name: string;
  last_error?: string | null;
  last_seen_at?: string | null;
  last_synced_at?: string | null;
  oldest_pending_at?: string | null;
  pending?: number | null;
  refused?: number | null;
  reported_at?: string | null;
  revoked: boolean;
  schema_version?: number | null;
};

export type DevicesResponse = {
  devices: Array<DeviceSyncStatus>;
};

export type EmergencyAccessList = {
  openings: Array<EmergencyAccessView>;
  /**
   * How many of the business's openings wait for review (all of them, not only those listed).
   */
  pending: number;
};

/**
 * One emergency opening of a clinical record.
 */
export type EmergencyAccessView = {
  branch_id: string;
  branch_name?: string | null;
  entry_id: string;
  /**
   * When the desk recorded it.
   */
  opened_at: string;
  /**
   * Who opened it (none at a desk nobody signs in to).
   */
  opened_by?: string | null;
  opened_by_name?: string | null;
  patient_id: string;
  /**
   * The patient's name as the server holds it (none if the registration has not arrived).
   */
  patient_name?: string | null;
  reason: string;
  /**
   * None while it waits for review.
   */
  review?: EmergencyReview | null;
};

export type EmergencyReview = {
  note: string;
  outcome: ReviewOutcome;
  reviewed_at: string;
  reviewed_by: string;
  reviewed_by_name?: string | null;
};

/**
 * The business an invoice is made out to, as its profile has it.
 */
export type InvoiceBuyer = {
  /**
   * Street lines, then `postcode city`, then the state; lines the profile lacks left out.
   */
  address: Array<string>;
  /**
   * The business's id: the reference its payments quote.
   */
  business_id: string;
  email?: string | null;
  name: string;
};

/**
 * An invoice for money a business paid Kaunter (a CHARGE or CREDIT), or the refund note for
 * money Kaunter gave back (a REFUND), as head office reads and prints it.
 */
export type InvoiceView = {
  /**
   * Sen.
   */
  amount_sen: number;
  buyer: InvoiceBuyer;
  /**
   * Always MYR.
   */
  currency: string;
  /**
   * What was paid for (the plan and its cycle), or what a refund gives back.
   */
  description: string;
  /**
   * INVOICE or REFUND_NOTE.
   */
  document: string;
  /**
   * When the payment or refund completed.
   */
  issued_at: string;
  /**
   * `INV-000123` or `RN-000124`.
   */
  number: string;
  payment_id: string;
  /**
   * The span of access the payment bought, when it bought one (not a perpetual licence).
   */
  period_from?: string | null;
  period_until?: string | null;
  /**
   * stripe, fpx or operator, and the provider's transaction id.
   */
  provider: string;
  /**
   * A refund note: why, as the operator gave it.
   */
  reason?: string | null;
  reference: string;
  /**
   * A refund note: the invoice whose money it gives back.
   */
  refunds_invoice?: string | null;
  seller: string;
  /**
   * COMPLETED, or REFUNDED for a CHARGE whose money went back in full.
   */
  status: string;
};

/**
 * One limit of the plan beside what the business uses of it.
 */
export type LimitView = {
  in_use: number;
  /**
   * None: no limit.
   */
  limit?: number | null;
  /**
   * MODULE, USER or DEVICE.
   */
  resource: string;
};

/**
 * A module of the catalogue and whether this business has it switched on.
 */
export type ModuleView = {
  enabled: boolean;
  module: string;
  /**
   * ACTIVE, INACTIVE or BETA.
   */
  status: string;
  version: string;
};

/**
 * One payment as head office sees it.
 */
export type PaymentView = {
  /**
   * For an ADJUSTMENT: the whole days the period's end moved by (negative: taken away).
   */
  adjust_days?: number | null;
  /**
   * Sen; None only for a failed payment in another currency.
   */
  amount_sen?: number | null;
  completed_at?: string | null;
  created_at: string;
  /**
   * Always MYR.
   */
  currency: string;
  cycle?: string | null;
  /**
   * The provider's transaction id.
   */
  external_id: string;
  /**
   * Why a FAILED payment failed.
   */
  failure_reason?: string | null;
  /**
   * The invoice (INV-…) or refund note (RN-…) of a payment that moved money and completed
   * (`GET /v1/payments/invoice`); None for the others.
   */
  invoice_number?: string | null;
  /**
   * CHARGE, REFUND, CREDIT or ADJUSTMENT.
   */
  kind: string;
  payment_id: string;
  plan?: string | null;
  pricing?: string | null;
  /**
   * stripe, fpx or operator.
   */
  provider: string;
  /**
   * Why, as the operator gave it: an ADJUSTMENT's (always) or a REFUND's.
   */
  reason?: string | null;
  /**
   * For a REFUND: the payment_id of the payment it gives money back for.
   */
  refund_of?: string | null;
  /**
   * PENDING, COMPLETED, FAILED or REFUNDED.
   */
  status: string;
};

export type PaymentsResponse = {
  /**
   * Newest first, at most 200.
   */
  payments: Array<PaymentView>;
};

/**
 * A plan of the price list (sen, MYR).
 */
export type PlanView = {
  limits: Array<LimitView>;
  monthly_sen: number;
  perpetual_sen: number;
  plan: string;
  yearly_sen: number;
};

/**
 * What head office decided about one opening.
 */
export type ReviewOutcome = "justified" | "not_justified";

export type ReviewRequest = {
  entry_id: string;
  note?: string;
  outcome: ReviewOutcome;
};

/**
 * A role as a person holds it.
 */
export type RoleRef = {
  name: string;
  role_id: string;
};

/**
 * `PUT /v1/subscription/modules` (`settings.manage`): the whole set of modules the business
 * wants switched on, by their wire spelling (RETAIL_POS, CLINIC, SALON, EDUCATION, LOGISTICS);
 * every other is switched off.
 */
export type SetModulesRequest = {
  modules: Array<string>;
};

export type SubscriptionView = {
  /**
   * FULL, READ_ONLY or SUSPENDED.
   */
  access: string;
  cancel_at_period_end: boolean;
  cycle?: string | null;
  /**
   * Whole days left of the current stage (rounded up); None for a perpetual licence.
   */
  days_left?: number | null;
  /**
   * When the trial or period ended, once it has.
   */
  expired_at?: string | null;
  last_paid_at?: string | null;
  limits: Array<LimitView>;
  modules: Array<ModuleView>;
  /**
   * When the access already granted ends (None: perpetual).
   */
  period_ends_at?: string | null;
  plan: string;
  plans: Array<PlanView>;
  pricing?: string | null;
  /**
   * When a grace ends (and the business is suspended), while in grace.
   */
  read_only_until?: string | null;
  /**
   * TRIAL, ACTIVE, GRACE or SUSPENDED.
   */
  state: string;
  trial_ends_at?: string | null;
};

/**
 * Where a person stands in their business (kaunter-core's `UserStatus`).
 */
export type UserStatus = "PENDING" | "ACTIVE" | "INACTIVE" | "DISABLED";

/**
 * A person of the business as head office sees them.
 */
export type UserView = {
  created_at: string;
  email: string;
  /**
   * While an invitation waits (PENDING): when it stops working.
   */
  invitation_expires_at?: string | null;
  last_login_at?: string | null;
  name: string;
  /**
   * By name.
   */
  roles: Array<RoleRef>;
  status: UserStatus;
  totp_enabled: boolean;
  user_id: string;
};

/**
 * `GET /v1/users` (`users.manage`): every person of the business, by name.
 */
export type UsersResponse = {
  users: Array<UserView>;
};

/** What each GET route the office pages call answers. */
export interface OfficeGets {
  "/v1/branches": BranchesResponse;
  "/v1/devices": DevicesResponse;
  "/v1/subscription": SubscriptionView;
  "/v1/payments": PaymentsResponse;
  "/v1/payments/invoice": InvoiceView;
  "/v1/users": UsersResponse;
  "/v1/emergency-access": EmergencyAccessList;
}

/** Each POST route the office pages call: its body and its answer. */
export interface OfficePosts {
  "/v1/emergency-access/review": { request: ReviewRequest; answer: EmergencyAccessView };
  "/v1/subscription/cancel": { request: never; answer: CancelResponse };
}

/** Each PUT route the office pages call: its body and its answer. */
export interface OfficePuts {
  "/v1/subscription/modules": { request: SetModulesRequest; answer: SubscriptionView };
}
