import { describe, expect, it } from "vitest";
import type { DeviceSyncStatus, InvoiceView, PaymentView, SubscriptionView } from "./api-types";
import {
  canCancel,
  cancelRefusalMessage,
  daysLeftText,
  deskHealth,
  desksByAttention,
  formatAge,
  formatDateTime,
  formatDay,
  formatRinggit,
  formatWait,
  humanise,
  invoiceSheet,
  limitLine,
  moduleChoices,
  modulesLimitText,
  modulesRefusalMessage,
  payDue,
  paymentRow,
  sectionMessage,
  signInMessage,
} from "./format";

const NOW = new Date("2026-03-10T04:00:00Z"); // 12:00 in Kuala Lumpur

function desk(overrides: Partial<DeviceSyncStatus> = {}): DeviceSyncStatus {
  return {
    device_id: "0190a0a0-0000-7000-8000-000000000001",
    device_name: "Front desk",
    branch_id: "0190a0a0-0000-7000-8000-0000000000b1",
    branch_name: "Main",
    revoked: false,
    branch_open_conflicts: 0,
    last_seen_at: "2026-03-10T03:55:00Z",
    reported_at: "2026-03-10T03:55:00Z",
    pending: 0,
    refused: 0,
    oldest_pending_at: null,
    last_synced_at: "2026-03-10T03:55:00Z",
    last_error: null,
    schema_version: 5,
    app_version: "0.1.0",
    ...overrides,
  };
}

function subscription(overrides: Partial<SubscriptionView> = {}): SubscriptionView {
  return {
    plan: "GROWTH",
    state: "TRIAL",
    access: "FULL",
    days_left: 7,
    trial_ends_at: "2026-03-17T04:00:00Z",
    period_ends_at: null,
    expired_at: null,
    read_only_until: null,
    cancel_at_period_end: false,
    cycle: null,
    pricing: null,
    last_paid_at: null,
    limits: [],
    modules: [],
    plans: [
      { plan: "STARTER", monthly_sen: 4900, yearly_sen: 49000, perpetual_sen: 150000, limits: [] },
      { plan: "GROWTH", monthly_sen: 12900, yearly_sen: 129000, perpetual_sen: 390000, limits: [] },
    ],
    ...overrides,
  };
}

describe("formatRinggit", () => {
  it.each([
    [0, "RM 0.00"],
    [5, "RM 0.05"],
    [12900, "RM 129.00"],
    [123400, "RM 1,234.00"],
    [123456789, "RM 1,234,567.89"],
    [100000000, "RM 1,000,000.00"],
    [-500, "-RM 5.00"],
  ])("%d sen is %s", (sen, text) => {
    expect(formatRinggit(sen)).toBe(text);
  });

  it("shows a dash for no amount", () => {
    expect(formatRinggit(null)).toBe("—");
    expect(formatRinggit(undefined)).toBe("—");
  });
});

describe("dates in Kuala Lumpur", () => {
  it("shows instants in Malaysian time whatever the offset they are written with", () => {
    expect(formatDateTime("2026-03-10T04:00:00Z")).toBe("10/03/2026 12:00");
    expect(formatDateTime("2026-03-09T16:30:00Z")).toBe("10/03/2026 00:30");
    expect(formatDateTime("2026-03-09T23:59:00-08:00")).toBe("10/03/2026 15:59");
    expect(formatDateTime("2026-12-31T16:00:00.123456Z")).toBe("01/01/2027 00:00");
    expect(formatDay("2026-03-09T16:30:00Z")).toBe("10/03/2026");
  });

  it("shows a dash for none and gives back what it cannot read", () => {
    expect(formatDateTime(null)).toBe("—");
    expect(formatDateTime("not a date")).toBe("not a date");
  });

  it("says how long ago", () => {
    expect(formatAge("2026-03-10T03:59:30Z", NOW)).toBe("just now");
    expect(formatAge("2026-03-10T03:59:00Z", NOW)).toBe("1 minute ago");
    expect(formatAge("2026-03-10T03:15:00Z", NOW)).toBe("45 minutes ago");
    expect(formatAge("2026-03-10T01:00:00Z", NOW)).toBe("3 hours ago");
    expect(formatAge("2026-03-07T04:00:00Z", NOW)).toBe("3 days ago");
  });
});

describe("deskHealth", () => {
  it.each<[string, Partial<DeviceSyncStatus>, string, string, boolean]>([
    ["a desk seen just now with nothing waiting", {}, "ok", "In sync", false],
    ["a removed desk", { revoked: true, last_seen_at: "2026-01-01T00:00:00Z" }, "removed", "Removed", false],
    ["a desk that never connected", { last_seen_at: null }, "never", "Never connected", true],
    ["a desk not seen for 3 days", { last_seen_at: "2026-03-07T03:00:00Z" }, "stale", "Not seen for 3 days", true],
    ["a desk not seen for exactly 24 hours", { last_seen_at: "2026-03-09T04:00:00Z" }, "stale", "Not seen for 1 day", true],
    ["a desk seen 23 hours ago", { last_seen_at: "2026-03-09T05:00:00Z" }, "ok", "In sync", false],
    ["a desk whose last round failed", { last_error: "connection refused" }, "error", "Last sync failed", true],
    ["a desk with refused changes", { refused: 2 }, "refused", "2 changes refused", true],
    ["a desk with a change just made", { pending: 1, oldest_pending_at: "2026-03-10T03:58:00Z" }, "waiting", "1 change waiting", false],
    ["a desk with changes waiting for hours", { pending: 40, oldest_pending_at: "2026-03-10T01:00:00Z" }, "waiting", "40 changes waiting", true],
    ["a desk that has never reported", { pending: null, refused: null, reported_at: null }, "ok", "In sync", false],
  ])("%s", (_, overrides, level, label, attention) => {
    expect(deskHealth(desk(overrides), NOW)).toEqual({ level, label, attention });
  });

  it("staleness wins over an error: the error may be days old", () => {
    expect(deskHealth(desk({ last_seen_at: "2026-03-01T00:00:00Z", last_error: "x" }), NOW).level).toBe("stale");
  });

  it("lists the desks that need a person first, removed ones last", () => {
    const desks = [
      desk({ device_name: "Removed", revoked: true }),
      desk({ device_name: "Fine" }),
      desk({ device_name: "Stale", last_seen_at: "2026-03-01T00:00:00Z" }),
      desk({ device_name: "Also fine" }),
    ];
    expect(desksByAttention(desks, NOW).map((d) => d.device_name)).toEqual(["Stale", "Fine", "Also fine", "Removed"]);
  });
});

describe("the subscription", () => {
  it("counts the days down to what comes next", () => {
    expect(daysLeftText(subscription())).toBe("7 days left of the trial");
    expect(daysLeftText(subscription({ state: "TRIAL", days_left: 1 }))).toBe("1 day left of the trial");
    expect(daysLeftText(subscription({ state: "ACTIVE", days_left: 30 }))).toBe("30 days left of the paid period");
    expect(daysLeftText(subscription({ state: "ACTIVE", days_left: 3, cancel_at_period_end: true }))).toBe(
      "3 days left before it ends",
    );
    expect(daysLeftText(subscription({ state: "GRACE", days_left: 4 }))).toBe("4 days left before suspension");
    expect(daysLeftText(subscription({ state: "SUSPENDED", days_left: 0 }))).toBe("0 days: suspended");
    expect(daysLeftText(subscription({ state: "ACTIVE", days_left: null }))).toBe("Perpetual licence: no end date.");
  });

  it("shows limits beside what is in use", () => {
    expect(limitLine({ resource: "DEVICE", limit: 3, in_use: 1 })).toEqual({
      resource: "DEVICE",
      label: "Desks",
      text: "1 of 3",
      full: false,
    });
    expect(limitLine({ resource: "USER", limit: 5, in_use: 5 }).full).toBe(true);
    expect(limitLine({ resource: "MODULE", limit: null, in_use: 2 }).text).toBe("2 (no limit)");
  });

  it("asks for nothing while the trial or a paid period runs", () => {
    expect(payDue(subscription())).toBeNull();
    expect(payDue(subscription({ state: "ACTIVE" }))).toBeNull();
  });

  it("says what to pay and how in GRACE and SUSPENDED", () => {
    const grace = payDue(subscription({ state: "GRACE", read_only_until: "2026-03-14T04:00:00Z" }));
    expect(grace?.situation).toContain("read-only until 14/03/2026 12:00");
    expect(grace?.prices).toBe("To continue on Growth: RM 129.00 a month or RM 1,290.00 a year.");
    expect(grace?.how).toContain("bank transfer");
    const suspended = payDue(subscription({ state: "SUSPENDED", plan: "STARTER" }));
    expect(suspended?.situation).toContain("suspended");
    expect(suspended?.prices).toBe("To continue on Starter: RM 49.00 a month or RM 490.00 a year.");
  });
});

describe("payments", () => {
  const payment = (overrides: Partial<PaymentView> = {}): PaymentView => ({
    payment_id: "0190a0a0-0000-7000-8000-0000000000p1",
    kind: "CREDIT",
    status: "COMPLETED",
    amount_sen: 129000,
    currency: "MYR",
    plan: "GROWTH",
    cycle: "YEARLY",
    pricing: "SUBSCRIPTION",
    provider: "operator",
    external_id: "bank-2026-0042",
    failure_reason: null,
    created_at: "2026-03-10T04:00:00Z",
    completed_at: "2026-03-10T04:00:05Z",
    ...overrides,
  });

  it("reads as a line of the list", () => {
    expect(paymentRow(payment())).toEqual({
      date: "10/03/2026 12:00",
      kind: "Credit",
      status: "Completed",
      what: "Growth, yearly",
      amount: "RM 1,290.00",
      reference: "bank-2026-0042",
      failed: false,
    });
  });

  it("says why a payment failed", () => {
    const row = paymentRow(payment({ status: "FAILED", failure_reason: "amount does not match", completed_at: null }));
    expect(row.status).toBe("Failed: amount does not match");
    expect(row.failed).toBe(true);
    expect(row.date).toBe("10/03/2026 12:00");
  });

  it("names an adjustment's days and a refund, each with its reason", () => {
    const adjusted = (days: number, reason: string | null) =>
      paymentRow(payment({ kind: "ADJUSTMENT", plan: null, cycle: null, pricing: null, adjust_days: days, reason })).what;
    expect(adjusted(5, "Clinic closed for the flood")).toBe("+5 days: Clinic closed for the flood");
    expect(adjusted(-3, "Goodwill days taken back")).toBe("\u22123 days: Goodwill days taken back");
    expect(adjusted(1, null)).toBe("+1 day");
    const refunded = paymentRow(
      payment({ kind: "REFUND", plan: null, cycle: null, pricing: null, refund_of: "0190a0a0-0000-7000-8000-0000000000aa", reason: "Charged twice" }),
    );
    expect(refunded.kind).toBe("Refund");
    expect(refunded.what).toBe("Refund of an earlier payment: Charged twice");
  });

  it("copes with a payment that names no plan or amount", () => {
    const row = paymentRow(payment({ plan: null, cycle: null, amount_sen: null }));
    expect(row.what).toBe("—");
    expect(row.amount).toBe("—");
  });
});

describe("refusals", () => {
  const refusal = (code: string, retryAfterSecs: number | null = null) => ({
    status: 401,
    code,
    message: "server says",
    retryAfterSecs,
  });

  it("turns each login refusal into a plain sentence", () => {
    expect(signInMessage(refusal("invalid_credentials"))).toBe("The business ID, e-mail or password is not right.");
    expect(signInMessage(refusal("too_many_attempts", 899))).toBe("Too many failed sign-ins. Try again in 15 minutes.");
    expect(signInMessage(refusal("too_many_attempts", 30))).toBe("Too many failed sign-ins. Try again in 1 minute.");
    expect(signInMessage(refusal("totp_required"))).toContain("authenticator app");
    expect(signInMessage(refusal("totp_invalid"))).toContain("not right");
    expect(signInMessage(refusal("business_not_active"))).toContain("suspended");
    expect(signInMessage(refusal("network"))).toContain("cannot be reached");
    expect(signInMessage(refusal("something_new"))).toBe("server says");
  });

  it("says a section is not allowed rather than failing", () => {
    expect(sectionMessage(refusal("forbidden"))).toBe("Your role does not allow you to see this.");
    expect(sectionMessage(refusal("totp_setup_required"))).toContain("second factor");
    expect(sectionMessage(refusal("internal"))).toBe("This could not be loaded: server says");
  });

  it("rounds a wait up to whole minutes", () => {
    expect(formatWait(0)).toBe("1 minute");
    expect(formatWait(61)).toBe("2 minutes");
  });
});

describe("humanise", () => {
  it("turns codes into words", () => {
    expect(humanise("GROWTH")).toBe("Growth");
    expect(humanise("ONE_TIME")).toBe("One time");
    expect(humanise("READ_ONLY")).toBe("Read only");
  });
});

describe("modules", () => {
  const refusal = (code: string) => ({ status: 402, code, message: "server says", retryAfterSecs: null });
  const catalogue: SubscriptionView["modules"] = [
    { module: "RETAIL_POS", version: "1.0.0", status: "ACTIVE", enabled: false },
    { module: "CLINIC", version: "1.0.0", status: "ACTIVE", enabled: true },
    { module: "SALON", version: "0.9.0", status: "BETA", enabled: false },
    { module: "EDUCATION", version: "0.1.0", status: "INACTIVE", enabled: false },
    { module: "LOGISTICS", version: "0.1.0", status: "INACTIVE", enabled: true },
  ];

  it("are checkboxes: BETA labelled, INACTIVE disabled unless already on", () => {
    const choices = moduleChoices(subscription({ modules: catalogue }));
    expect(choices.map((c) => [c.module, c.label, c.checked, c.disabled, c.note])).toEqual([
      ["RETAIL_POS", "Retail point of sale", false, false, null],
      ["CLINIC", "Clinic", true, false, null],
      ["SALON", "Salon (beta)", false, false, "Beta: it may still change."],
      ["EDUCATION", "Education", false, true, "Not offered yet."],
      // On before it stopped being offered: it may still be switched off.
      ["LOGISTICS", "Logistics", true, false, "Not offered yet."],
    ]);
  });

  it("count what is ticked against the plan's limit", () => {
    const limited = subscription({ limits: [{ resource: "MODULE", limit: 3, in_use: 1 }] });
    expect(modulesLimitText(2, limited)).toEqual({ text: "2 of 3 modules", over: false });
    expect(modulesLimitText(3, limited)).toEqual({ text: "3 of 3 modules", over: false });
    expect(modulesLimitText(4, limited)).toEqual({ text: "4 of 3 modules", over: true });
    const one = subscription({ limits: [{ resource: "MODULE", limit: 1, in_use: 1 }] });
    expect(modulesLimitText(1, one)).toEqual({ text: "1 of 1 module", over: false });
    const unlimited = subscription({ limits: [{ resource: "MODULE", limit: null, in_use: 4 }] });
    expect(modulesLimitText(4, unlimited)).toEqual({ text: "4 modules (no limit)", over: false });
    expect(modulesLimitText(1, unlimited).text).toBe("1 module (no limit)");
  });

  it("say why a set was refused, in the server's words or ours", () => {
    const limit = "Your plan allows 2 modules at once and 3 are chosen: switch one off or move to a larger plan.";
    expect(modulesRefusalMessage({ status: 409, code: "plan_limit_reached", message: limit, retryAfterSecs: null })).toBe(limit);
    const field = (code: string, message: string) => ({
      status: 422,
      code: "validation_failed",
      message: "Some fields are not valid; each says why.",
      retryAfterSecs: null,
      fields: [{ field: "modules", code, message }],
    });
    expect(modulesRefusalMessage(field("module_not_offered", "Education is not offered at the moment, so it cannot be switched on."))).toBe(
      "Education is not offered at the moment, so it cannot be switched on.",
    );
    expect(modulesRefusalMessage(field("modules_required", "Choose at least one module: a business always has one switched on."))).toBe(
      "Choose at least one module: a business always has one switched on.",
    );
    expect(modulesRefusalMessage(refusal("subscription_read_only"))).toBe(
      "The subscription has ended: modules can be changed again once it is paid.",
    );
    expect(modulesRefusalMessage(refusal("subscription_suspended"))).toContain("suspended");
    expect(modulesRefusalMessage(refusal("forbidden"))).toBe("Your role does not allow changing modules.");
    expect(modulesRefusalMessage(refusal("network"))).toContain("cannot be reached");
    expect(modulesRefusalMessage(refusal("internal"))).toBe("server says");
  });
});

describe("cancelling", () => {
  const view = (overrides: Partial<SubscriptionView>): SubscriptionView => ({
    access: "FULL",
    cancel_at_period_end: false,
    cycle: "MONTHLY",
    days_left: 12,
    limits: [],
    modules: [],
    period_ends_at: "2026-04-09T16:00:00Z",
    plan: "GROWTH",
    plans: [],
    pricing: "SUBSCRIPTION",
    state: "ACTIVE",
    ...overrides,
  });

  it("is offered only for a paid subscription that renews", () => {
    expect(canCancel(view({}))).toBe(true);
    expect(canCancel(view({ cancel_at_period_end: true }))).toBe(false);
    expect(canCancel(view({ state: "TRIAL", pricing: null, cycle: null }))).toBe(false);
    expect(canCancel(view({ pricing: "PERPETUAL", cycle: "ONE_TIME", period_ends_at: null }))).toBe(false);
    expect(canCancel(view({ state: "GRACE", access: "READ_ONLY" }))).toBe(false);
  });

  it("says why a cancellation was refused", () => {
    expect(cancelRefusalMessage({ status: 403, code: "forbidden", message: "Forbidden.", retryAfterSecs: null })).toBe(
      "Your role does not allow cancelling the subscription.",
    );
    expect(cancelRefusalMessage({ status: 409, code: "cancel_expired", message: "The subscription has already ended.", retryAfterSecs: null })).toBe(
      "The subscription has already ended.",
    );
  });
});

describe("invoices", () => {
  const invoice = (overrides: Partial<InvoiceView> = {}): InvoiceView => ({
    number: "INV-000042",
    document: "INVOICE",
    issued_at: "2026-03-09T16:30:00Z",
    seller: "Kaunter",
    buyer: {
      name: "Klinik Aman",
      address: ["12, Jalan Tun Razak", "50400 Kuala Lumpur", "W.P. Kuala Lumpur"],
      email: "pejabat@klinikaman.my",
      business_id: "0190a0a0-0000-7000-8000-0000000000aa",
    },
    description: "Kaunter Growth plan, monthly",
    period_from: "2026-03-09T16:30:00Z",
    period_until: "2026-04-08T16:30:00Z",
    amount_sen: 12_900,
    currency: "MYR",
    payment_id: "0190a0a0-0000-7000-8000-0000000000bb",
    status: "COMPLETED",
    provider: "fpx",
    reference: "bill-77",
    refunds_invoice: null,
    reason: null,
    ...overrides,
  });

  it("prints an invoice with the buyer, the period in Malaysian dates and the total in ringgit", () => {
    expect(invoiceSheet(invoice())).toEqual({
      title: "Invoice",
      number: "INV-000042",
      issued: "10/03/2026",
      seller: "Kaunter",
      buyer: [
        "Klinik Aman",
        "12, Jalan Tun Razak",
        "50400 Kuala Lumpur",
        "W.P. Kuala Lumpur",
        "pejabat@klinikaman.my",
        "Business ID 0190a0a0-0000-7000-8000-0000000000aa",
      ],
      description: "Kaunter Growth plan, monthly",
      period: "10/03/2026 – 09/04/2026",
      amount: "RM 129.00",
      paidBy: "Paid by FPX online banking, reference bill-77",
      notes: [],
    });
  });

  it("prints a refund note naming the invoice it refunds, and marks a refunded invoice", () => {
    const note = invoiceSheet(
      invoice({ number: "RN-000043", document: "REFUND_NOTE", refunds_invoice: "INV-000042", reason: "Charged twice", provider: "operator", description: "Refund of invoice INV-000042" }),
    );
    expect(note.title).toBe("Refund note");
    expect(note.period).toBeNull();
    expect(note.paidBy).toBe("Refunded through bank transfer, reference bill-77");
    expect(note.notes).toEqual(["Refunds invoice INV-000042", "Reason: Charged twice"]);
    expect(invoiceSheet(invoice({ status: "REFUNDED" })).notes).toEqual(["This payment was later refunded in full."]);
    expect(invoiceSheet(invoice({ buyer: { ...invoice().buyer, email: null, address: [] } })).buyer).toEqual([
      "Klinik Aman",
      "Business ID 0190a0a0-0000-7000-8000-0000000000aa",
    ]);
  });
});
