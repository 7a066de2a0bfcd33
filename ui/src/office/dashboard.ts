//! Head office's dashboard: the business and its branches, every desk's sync health, the
//! subscription, payments, emergency openings to review and the people. Each section loads on
//! its own: one the person's role does not allow (403) says so in its place, and the rest of
//! the page carries on.

import { h, testId } from "../dom";
import type { OfficeApi } from "./api";
import { toRefusal } from "./api";
import type {
  BranchView,
  DeviceSyncStatus,
  EmergencyAccessView,
  PaymentView,
  ReviewOutcome,
  SubscriptionView,
  UserView,
} from "./api-types";
import {
  STALE_AFTER_HOURS,
  accessLabel,
  cancelRefusalMessage,
  canCancel,
  daysLeftText,
  deskHealth,
  invoiceSheet,
  desksByAttention,
  formatAge,
  formatDateTime,
  formatDay,
  humanise,
  limitLine,
  moduleChoices,
  modulesLimitText,
  modulesRefusalMessage,
  payDue,
  paymentRow,
  sectionMessage,
  stateLabel,
} from "./format";
import { t } from "./strings";
import type { SessionView } from "../wire";

type Cell = Node | string;

/** A section: its heading, an optional introduction, and a body that shows one state at a time. */
type Section = {
  element: HTMLElement;
  show: (state: "loading" | "ready" | "refused", ...content: Cell[]) => void;
};

function section(name: string, title: string, intro?: string): Section {
  const body = h("div", { ...testId(`${name}-body`), class: "section-body", "aria-live": "polite" });
  const element = h(
    "section",
    { ...testId(`${name}-section`), class: "card office-section", "aria-labelledby": `${name}-title` },
    h("h2", { id: `${name}-title` }, title),
    intro ? h("p", { class: "field-hint" }, intro) : null,
    body,
  );
  const show: Section["show"] = (state, ...content) => {
    body.dataset.state = state;
    element.dataset.state = state;
    body.replaceChildren(...content);
  };
  show("loading", h("p", { class: "loading-inline" }, t.loading));
  return { element, show };
}

/** Loads a section's data; a refusal becomes its plain sentence in the section's place. */
async function fill<T>(target: Section, name: string, load: () => Promise<T>, render: (value: T) => Cell[]): Promise<void> {
  try {
    const value = await load();
    target.show("ready", ...render(value));
  } catch (reason) {
    const refusal = toRefusal(reason);
    const kind = refusal.code === "forbidden" ? "not-allowed" : "error";
    target.show(
      "refused",
      h("p", { ...testId(`${name}-${kind}`), class: "section-refused", role: "note", "data-code": refusal.code }, sectionMessage(refusal)),
    );
  }
}

function table(name: string, caption: string, headers: string[], rows: HTMLTableRowElement[]): HTMLElement {
  return h(
    "div",
    { class: "table-scroll" },
    h(
      "table",
      { ...testId(`${name}-table`), class: "office-table" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, ...headers.map((header) => h("th", { scope: "col" }, header)))),
      h("tbody", {}, ...rows),
    ),
  );
}

function row(attributes: Record<string, string | boolean | undefined>, ...cells: Cell[]): HTMLTableRowElement {
  return h("tr", attributes, ...cells.map((cell) => h("td", {}, cell)));
}

const empty = (name: string, text: string): HTMLElement => h("p", { ...testId(`${name}-empty`), class: "empty" }, text);

function branchesView(branches: BranchView[]): Cell[] {
  if (branches.length === 0) return [empty("branches", t.noBranches)];
  return [
    table(
      "branches",
      t.branchesTitle,
      [t.branchName, t.branchCode, t.branchStatus, t.branchDesks],
      branches.map((branch) =>
        row(
          { "data-testid": "branch-row" },
          h("span", { "data-testid": "branch-name" }, branch.name),
          branch.code ?? "—",
          branch.closed_at ? t.branchClosed(formatDay(branch.closed_at)) : t.branchOpen,
          String(branch.active_devices),
        ),
      ),
    ),
  ];
}

function seenCell(instant: string | null | undefined, now: Date): Cell {
  if (!instant) return t.never;
  return h("span", {}, formatDateTime(instant), h("br"), h("small", { class: "muted" }, formatAge(instant, now)));
}

function desksView(devices: DeviceSyncStatus[], now: Date): Cell[] {
  if (devices.length === 0) return [empty("desks", t.noDesks)];
  const attention = devices.filter((desk) => deskHealth(desk, now).attention).length;
  return [
    h(
      "p",
      { ...testId("desks-summary"), class: attention > 0 ? "summary summary-warning" : "summary" },
      attention > 0
        ? `${attention} of ${devices.length} desks need attention.`
        : `All ${devices.length} desks are in sync.`,
    ),
    table(
      "desks",
      t.desksTitle,
      [t.desk, t.branchName, t.deskStatus, t.lastSeen, t.waiting, t.refused, t.lastSync, t.lastError, t.appVersion],
      desksByAttention(devices, now).map((desk) => {
        const health = deskHealth(desk, now);
        return row(
          {
            "data-testid": "desk-row",
            "data-desk": desk.device_name,
            "data-health": health.level,
            class: health.attention ? "attention" : health.level === "removed" ? "removed" : undefined,
          },
          h("strong", { "data-testid": "desk-name" }, desk.device_name),
          h("span", { "data-testid": "desk-branch" }, desk.branch_name),
          h("span", { "data-testid": "desk-status", class: `health health-${health.level}` }, health.label),
          seenCell(desk.last_seen_at, now),
          h(
            "span",
            { "data-testid": "desk-pending" },
            desk.pending === null || desk.pending === undefined
              ? "—"
              : `${desk.pending}${desk.pending > 0 && desk.oldest_pending_at ? ` (since ${formatDateTime(desk.oldest_pending_at)})` : ""}`,
          ),
          h("span", { "data-testid": "desk-refused" }, desk.refused === null || desk.refused === undefined ? "—" : String(desk.refused)),
          desk.last_synced_at ? formatDateTime(desk.last_synced_at) : t.never,
          h("span", { "data-testid": "desk-error", class: desk.last_error ? "error-text" : undefined }, desk.last_error ?? t.none),
          desk.app_version ?? "—",
        );
      }),
    ),
  ];
}

function definition(name: string, term: string, value: Cell): HTMLElement[] {
  return [h("dt", {}, term), h("dd", { "data-testid": `subscription-${name}` }, value)];
}

/**
 * The module catalogue as checkboxes beside the plan's module limit, and Save: the whole set
 * ticked goes to the server, a refusal is shown as its sentence here, and a success redraws
 * the section from the server's answer (`saved`, with `notice` shown after the redraw).
 */
function modulesForm(api: OfficeApi, view: SubscriptionView, saved: (view: SubscriptionView) => void, notice: string | null): HTMLElement {
  const choices = moduleChoices(view);
  const boxes = choices.map((choice) =>
    h("input", {
      type: "checkbox",
      id: `module-box-${choice.module}`,
      "data-testid": `module-box-${choice.module}`,
      value: choice.module,
      checked: choice.checked,
      disabled: choice.disabled,
    }),
  );
  const count = h("span", { ...testId("modules-limit") }, "");
  const message = h("p", { ...testId("modules-message"), class: "form-message", role: "status", hidden: notice === null }, notice ?? "");
  if (notice !== null) message.dataset.kind = "success";
  const save = h("button", { ...testId("modules-save"), type: "submit", class: "primary" }, t.modulesSave);
  const chosen = (): string[] => boxes.filter((box) => box.checked).map((box) => box.value);
  const recount = (): void => {
    const line = modulesLimitText(chosen().length, view);
    count.textContent = line.text;
    count.className = line.over ? "limit-over" : "";
  };
  recount();
  const form = h(
    "form",
    { ...testId("modules-form"), class: "modules-form", novalidate: true },
    h("p", { class: "field-hint" }, t.modulesIntro),
    h("p", { class: "modules-count" }, `${t.modulesChosen}: `, h("strong", {}, count)),
    h(
      "ul",
      { ...testId("subscription-modules"), class: "plain-list module-list" },
      ...choices.map((choice, index) =>
        h(
          "li",
          {
            "data-testid": `module-${choice.module}`,
            "data-enabled": String(choice.checked),
            "data-status": view.modules[index]?.status ?? "",
            class: choice.disabled ? "module-disabled" : undefined,
          },
          h("label", { for: `module-box-${choice.module}` }, boxes[index] ?? null, ` ${choice.label} `, h("small", { class: "muted" }, choice.version)),
          choice.note ? h("small", { class: "module-note muted" }, ` ${choice.note}`) : null,
        ),
      ),
    ),
    h("div", { class: "actions" }, save),
    message,
  );
  for (const box of boxes) box.addEventListener("change", recount);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const wanted = chosen();
    save.disabled = true;
    save.textContent = t.modulesSaving;
    message.hidden = true;
    void api
      .put("/v1/subscription/modules", { modules: wanted })
      .then((answer) => saved(answer))
      .catch((reason) => {
        message.hidden = false;
        message.dataset.kind = "error";
        message.setAttribute("role", "alert");
        message.textContent = modulesRefusalMessage(toRefusal(reason));
        save.disabled = false;
        save.textContent = t.modulesSave;
      });
  });
  return form;
}

/**
 * Cancelling at the period's end, in two steps: the offer, then what it means with Confirm and
 * Keep. Once the server has taken it, `done` draws the section again from a fresh view (which
 * says the subscription ends and will not renew); a refusal is shown as its sentence here.
 */
function cancelControl(api: OfficeApi, view: SubscriptionView, done: (view: SubscriptionView) => void): HTMLElement {
  const offer = h("button", { ...testId("cancel-offer"), type: "button", class: "secondary" }, t.cancelOffer);
  const confirm = h("button", { ...testId("cancel-confirm"), type: "button", class: "danger" }, t.cancelConfirm);
  const keep = h("button", { ...testId("cancel-keep"), type: "button", class: "secondary" }, t.cancelKeep);
  const message = h("p", { ...testId("cancel-message"), class: "form-message", role: "alert", hidden: true }, "");
  const question = h(
    "div",
    { ...testId("cancel-question"), class: "cancel-question", hidden: true },
    h("p", {}, t.cancelQuestion(formatDay(view.period_ends_at))),
    h("div", { class: "actions" }, confirm, keep),
  );
  offer.addEventListener("click", () => {
    offer.hidden = true;
    question.hidden = false;
    message.hidden = true;
  });
  keep.addEventListener("click", () => {
    question.hidden = true;
    offer.hidden = false;
  });
  confirm.addEventListener("click", () => {
    confirm.disabled = true;
    keep.disabled = true;
    confirm.textContent = t.cancelling;
    void api
      .post("/v1/subscription/cancel")
      .then(() => api.get("/v1/subscription"))
      .then((fresh) => done(fresh))
      .catch((reason) => {
        message.textContent = cancelRefusalMessage(toRefusal(reason));
        message.dataset.kind = "error";
        message.hidden = false;
        confirm.disabled = false;
        keep.disabled = false;
        confirm.textContent = t.cancelConfirm;
      });
  });
  return h("div", { ...testId("cancel-control"), class: "cancel-control" }, offer, question, message);
}

function subscriptionView(
  api: OfficeApi,
  view: SubscriptionView,
  session: SessionView,
  saved: (view: SubscriptionView) => void,
  notice: string | null = null,
  reloaded: (view: SubscriptionView) => void = saved,
): Cell[] {
  const due = payDue(view);
  const limits = view.limits.map(limitLine);
  const cells: Array<HTMLElement | null> = [
    due
      ? h(
          "div",
          { ...testId("pay-due"), class: "pay-due", role: "alert" },
          h("h3", {}, t.payTitle),
          h("p", {}, due.situation),
          due.prices ? h("p", { "data-testid": "pay-prices" }, due.prices) : null,
          h("p", {}, due.how),
          h("p", {}, `${t.payReference}: `, h("code", { "data-testid": "pay-reference" }, session.tenant_id)),
        )
      : null,
    h(
      "dl",
      { class: "facts" },
      ...definition("plan", t.plan, humanise(view.plan)),
      ...definition("state", t.state, h("span", { class: `state state-${view.state.toLowerCase()}` }, stateLabel(view.state))),
      ...definition("access", t.access, accessLabel(view.access)),
      ...definition("days-left", t.daysLeft, daysLeftText(view)),
      ...(view.trial_ends_at && view.state === "TRIAL" ? definition("trial-ends", t.trialEnds, formatDateTime(view.trial_ends_at)) : []),
      ...(view.period_ends_at && view.state !== "TRIAL" ? definition("period-ends", t.periodEnds, formatDateTime(view.period_ends_at)) : []),
      ...(view.last_paid_at ? definition("last-paid", t.lastPaid, formatDateTime(view.last_paid_at)) : []),
    ),
    view.cancel_at_period_end && view.period_ends_at
      ? h("p", { ...testId("subscription-cancelled"), class: "summary summary-warning" }, t.cancelAtPeriodEnd(formatDay(view.period_ends_at)))
      : null,
    canCancel(view) ? cancelControl(api, view, reloaded) : null,
    h("h3", {}, t.limitsTitle),
    h(
      "ul",
      { ...testId("subscription-limits"), class: "plain-list" },
      ...limits.map((line) =>
        h(
          "li",
          { "data-testid": `limit-${line.resource}`, class: line.full ? "limit-full" : undefined },
          `${line.label}: `,
          h("strong", {}, line.text),
        ),
      ),
    ),
    h("h3", {}, t.modulesTitle),
    modulesForm(api, view, saved, notice),
  ];
  return cells.filter((cell): cell is HTMLElement => cell !== null);
}

/**
 * An invoice or refund note over the page, to read and print (only it prints while it is
 * open). Loads it by the payment's id; a refusal is shown in its place.
 */
function openInvoice(api: OfficeApi, paymentId: string): void {
  document.querySelector(".invoice-overlay")?.remove();
  const close = h("button", { ...testId("invoice-close"), type: "button", class: "secondary" }, t.invoiceClose);
  const print = h("button", { ...testId("invoice-print"), type: "button", class: "primary", disabled: true }, t.invoicePrint);
  const sheet = h("article", { ...testId("invoice"), class: "invoice-sheet", "aria-busy": "true" }, h("p", {}, t.invoiceLoading));
  const overlay = h(
    "div",
    { class: "invoice-overlay", role: "dialog", "aria-modal": "true", "aria-label": t.paymentInvoice },
    h("div", { class: "invoice-frame" }, h("div", { class: "actions no-print" }, print, close), sheet),
  );
  const shut = (): void => {
    overlay.remove();
    document.body.classList.remove("printing-invoice");
  };
  close.addEventListener("click", shut);
  overlay.addEventListener("keydown", (event) => {
    if (event.key === "Escape") shut();
  });
  print.addEventListener("click", () => window.print());
  document.body.classList.add("printing-invoice");
  document.body.append(overlay);
  close.focus();
  void api
    .get("/v1/payments/invoice", `?payment_id=${encodeURIComponent(paymentId)}`)
    .then((invoice) => {
      const view = invoiceSheet(invoice);
      const field = (id: string, label: string, value: string): HTMLElement[] => [
        h("dt", {}, label),
        h("dd", { "data-testid": `invoice-${id}` }, value),
      ];
      sheet.replaceChildren(
        h("header", { class: "invoice-head" }, h("h2", { "data-testid": "invoice-title" }, view.title), h("p", { class: "mono", "data-testid": "invoice-number" }, view.number)),
        h(
          "dl",
          { class: "facts" },
          ...field("issued", t.invoiceIssued, view.issued),
          ...field("seller", t.invoiceFrom, view.seller),
        ),
        h("h3", {}, t.invoiceTo),
        h("address", { "data-testid": "invoice-buyer" }, ...view.buyer.map((line, index) => h(index === 0 ? "strong" : "span", { class: "line" }, line))),
        h(
          "table",
          { class: "office-table invoice-lines" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t.invoiceDescription), h("th", { scope: "col" }, t.invoicePeriod), h("th", { scope: "col", class: "amount" }, t.invoiceAmount))),
          h(
            "tbody",
            {},
            h("tr", {}, h("td", { "data-testid": "invoice-description" }, view.description), h("td", { "data-testid": "invoice-period" }, view.period ?? "—"), h("td", { class: "amount mono" }, view.amount)),
          ),
          h("tfoot", {}, h("tr", {}, h("th", { scope: "row", colspan: 2 }, t.invoiceTotal), h("td", { class: "amount mono", "data-testid": "invoice-total" }, view.amount))),
        ),
        h("p", { "data-testid": "invoice-paid-by" }, view.paidBy),
        ...view.notes.map((note) => h("p", { class: "invoice-note", "data-testid": "invoice-note" }, note)),
      );
      sheet.setAttribute("aria-busy", "false");
      print.disabled = false;
    })
    .catch((reason) => {
      sheet.replaceChildren(h("p", { class: "error-text", role: "alert", "data-testid": "invoice-error" }, sectionMessage(toRefusal(reason))));
      sheet.setAttribute("aria-busy", "false");
    });
}

function paymentsView(api: OfficeApi, payments: PaymentView[]): Cell[] {
  if (payments.length === 0) return [empty("payments", t.noPayments)];
  return [
    table(
      "payments",
      t.paymentsTitle,
      [t.paymentDate, t.paymentKind, t.paymentStatus, t.paymentFor, t.paymentAmount, t.paymentReference, t.paymentInvoice],
      payments.map((payment) => {
        const view = paymentRow(payment);
        const invoice = payment.invoice_number
          ? h("button", { type: "button", class: "link mono", "data-testid": "payment-invoice" }, payment.invoice_number)
          : "—";
        if (typeof invoice !== "string") invoice.addEventListener("click", () => openInvoice(api, payment.payment_id));
        return row(
          { "data-testid": "payment-row", class: view.failed ? "attention" : undefined },
          view.date,
          view.kind,
          view.status,
          view.what,
          h("span", { "data-testid": "payment-amount", class: "mono" }, view.amount),
          h("code", { "data-testid": "payment-reference" }, view.reference),
          invoice,
        );
      }),
    ),
  ];
}

function emergencyItem(api: OfficeApi, opening: EmergencyAccessView, onReviewed: () => void): HTMLElement {
  const noteId = `note-${opening.entry_id}`;
  const note = h("input", { id: noteId, "data-testid": "review-note", maxlength: 2000 });
  const result = h("p", { "data-testid": "review-result", class: "form-message", role: "status", hidden: true });
  const justified = h("button", { type: "button", class: "primary", "data-testid": "review-justified" }, t.justified);
  const notJustified = h("button", { type: "button", class: "secondary", "data-testid": "review-not-justified" }, t.notJustified);
  const item = h(
    "li",
    { "data-testid": "emergency-item", "data-entry": opening.entry_id, class: "emergency" },
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, t.openedAt),
      h("dd", {}, formatDateTime(opening.opened_at)),
      h("dt", {}, t.branchName),
      h("dd", {}, opening.branch_name ?? "—"),
      h("dt", {}, t.patient),
      h("dd", { "data-testid": "emergency-patient" }, opening.patient_name ?? t.unknownPatient),
      h("dt", {}, t.openedBy),
      h("dd", {}, opening.opened_by_name ?? t.nobody),
      h("dt", {}, t.reason),
      h("dd", { "data-testid": "emergency-reason" }, opening.reason),
    ),
    h("div", { class: "field" }, h("label", { for: noteId }, t.reviewNote), note),
    h("div", { class: "actions" }, justified, notJustified),
    result,
  );
  const review = async (outcome: ReviewOutcome): Promise<void> => {
    justified.disabled = true;
    notJustified.disabled = true;
    result.hidden = false;
    result.dataset.kind = "";
    result.textContent = t.reviewing;
    try {
      const reviewed = await api.post("/v1/emergency-access/review", {
        entry_id: opening.entry_id,
        outcome,
        note: note.value.trim(),
      });
      const decided = reviewed.review?.outcome ?? outcome;
      result.dataset.kind = "success";
      result.textContent = t.reviewedAs(decided === "justified" ? t.justified.toLowerCase() : t.notJustified.toLowerCase());
      item.dataset.reviewed = decided;
      note.disabled = true;
      onReviewed();
    } catch (reason) {
      const refusal = toRefusal(reason);
      result.dataset.kind = "error";
      result.textContent = refusal.code === "already_reviewed" ? t.alreadyReviewed : sectionMessage(refusal);
      if (refusal.code !== "already_reviewed") {
        justified.disabled = false;
        notJustified.disabled = false;
      }
    }
  };
  justified.addEventListener("click", () => void review("justified"));
  notJustified.addEventListener("click", () => void review("not_justified"));
  return item;
}

function emergencyView(api: OfficeApi, openings: EmergencyAccessView[], pending: number): Cell[] {
  if (openings.length === 0) return [empty("emergency", t.noEmergencies)];
  const count = h("p", { ...testId("emergency-pending"), class: "summary summary-warning" }, `${pending} waiting for review.`);
  let left = pending;
  const onReviewed = (): void => {
    left = Math.max(0, left - 1);
    count.textContent = left === 0 ? "All reviewed." : `${left} waiting for review.`;
    count.className = left === 0 ? "summary" : "summary summary-warning";
  };
  return [count, h("ul", { class: "plain-list" }, ...openings.map((opening) => emergencyItem(api, opening, onReviewed)))];
}

function usersView(users: UserView[], now: Date): Cell[] {
  if (users.length === 0) return [empty("users", t.noUsers)];
  return [
    table(
      "users",
      t.usersTitle,
      [t.userName, t.userEmail, t.userStatus, t.userRoles, t.userTotp, t.lastLogin],
      users.map((user) =>
        row(
          { "data-testid": "user-row" },
          h("span", { "data-testid": "user-name" }, user.name),
          user.email,
          humanise(user.status),
          user.roles.map((role) => role.name).join(", ") || "—",
          user.totp_enabled ? t.yes : t.no,
          seenCell(user.last_login_at, now),
        ),
      ),
    ),
  ];
}

/** The whole dashboard for `session`; `onSignOut` runs once the person has signed out. */
export function dashboardScreen(api: OfficeApi, session: SessionView, onSignOut: () => void): HTMLElement {
  const refresh = h("button", { ...testId("refresh"), type: "button", class: "secondary" }, t.refresh);
  const signOut = h("button", { ...testId("sign-out"), type: "button", class: "secondary" }, t.signOut);
  const sections = {
    branches: section("branches", t.branchesTitle),
    desks: section("desks", t.desksTitle, t.desksIntro(STALE_AFTER_HOURS)),
    subscription: section("subscription", t.subscriptionTitle),
    payments: section("payments", t.paymentsTitle),
    emergency: section("emergency", t.emergencyTitle, t.emergencyIntro),
    users: section("users", t.usersTitle),
  };

  // After modules are saved, or the subscription cancelled, the section is drawn again from the
  // server's answer (only saved modules leave a notice under the modules).
  const redrawSubscription = (view: SubscriptionView, notice: string | null = t.modulesSaved): void => {
    sections.subscription.show(
      "ready",
      ...subscriptionView(api, view, session, (saved) => redrawSubscription(saved), notice, (fresh) => redrawSubscription(fresh, null)),
    );
  };

  const load = (): Promise<unknown> => {
    const now = new Date();
    return Promise.all([
      fill(sections.branches, "branches", () => api.get("/v1/branches"), (answer) => branchesView(answer.branches)),
      fill(sections.desks, "desks", () => api.get("/v1/devices"), (answer) => desksView(answer.devices, now)),
      fill(sections.subscription, "subscription", () => api.get("/v1/subscription"), (answer) =>
        subscriptionView(api, answer, session, (saved) => redrawSubscription(saved), null, (fresh) => redrawSubscription(fresh, null)),
      ),
      fill(sections.payments, "payments", () => api.get("/v1/payments"), (answer) => paymentsView(api, answer.payments)),
      fill(
        sections.emergency,
        "emergency",
        () => api.get("/v1/emergency-access", "?state=pending"),
        (answer) => emergencyView(api, answer.openings, answer.pending),
      ),
      fill(sections.users, "users", () => api.get("/v1/users"), (answer) => usersView(answer.users, now)),
    ]);
  };

  refresh.addEventListener("click", () => {
    refresh.disabled = true;
    void load().finally(() => {
      refresh.disabled = false;
    });
  });
  signOut.addEventListener("click", () => {
    signOut.disabled = true;
    void api
      .logout()
      .catch(() => {
        // The session is forgotten here whatever the server said; the cookie ends with it.
      })
      .finally(onSignOut);
  });

  const page = h(
    "div",
    { class: "office" },
    h(
      "header",
      { class: "topbar" },
      h("span", { class: "brand" }, t.appName),
      h(
        "div",
        { class: "who" },
        h("h1", { ...testId("business-name") }, session.business_name),
        h("p", { ...testId("signed-in-as") }, t.signedInAs(session.name, session.email)),
      ),
      h("div", { class: "actions" }, refresh, signOut),
    ),
    h(
      "main",
      { class: "office-main" },
      sections.branches.element,
      sections.subscription.element,
      sections.desks.element,
      sections.emergency.element,
      sections.payments.element,
      sections.users.element,
    ),
  );
  void load();
  return page;
}
