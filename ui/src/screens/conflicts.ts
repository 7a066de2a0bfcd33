//! Conflicts the server found between desks (one MyKad registered on two desks offline, or one
//! practitioner booked twice for the same time), shown side by side for a person to settle: keep
//! both, keep one, or (patients only) merge the second into the first.
//! Nothing was dropped when they were found; this is where a person decides.

import { api } from "../api";
import { formatDate } from "../dates";
import { dialog, h, mount, testId } from "../dom";
import { toCommandError } from "../errors";
import { t } from "../strings";
import type { ConflictView, Resolution } from "../wire";

/** A MyKad number as people write it (YYMMDD-PB-###G); anything else as stored. */
function idNumber(value: unknown): string {
  const text = String(value ?? "");
  return /^\d{12}$/.test(text) ? `${text.slice(0, 6)}-${text.slice(6, 8)}-${text.slice(8)}` : text;
}

/** A booking time in the desk's own time zone. */
function when(value: unknown): string {
  if (typeof value !== "string") return "—";
  const at = new Date(value);
  return Number.isNaN(at.getTime())
    ? value
    : at.toLocaleString("en-MY", { dateStyle: "medium", timeStyle: "short" });
}

const BOOKING_FIELDS: Array<[string, (value: unknown) => string]> = [
  ["starts_at", when],
  ["ends_at", when],
  ["status", (v) => String(v ?? "")],
  ["note", (v) => (v ? String(v) : "—")],
];

const PATIENT_FIELDS: Array<[string, (value: unknown) => string]> = [
  ["full_name", (v) => String(v ?? "")],
  ["id_number", idNumber],
  ["phone", (v) => (v ? String(v) : "—")],
  ["date_of_birth", (v) => (typeof v === "string" ? (formatDate(v) ?? v) : "—")],
  ["sex", (v) => (v ? String(v) : "—")],
];

function version(
  title: string,
  fields: Record<string, unknown>,
  shown: Array<[string, (value: unknown) => string]>,
  testid: string,
): HTMLElement {
  return h(
    "div",
    { class: "conflict-version", "data-testid": testid },
    h("h3", {}, title),
    h(
      "dl",
      {},
      ...shown.flatMap(([name, show]) => [
        h("dt", {}, t.conflictField(name)),
        h("dd", { "data-field": name }, show(fields[name])),
      ]),
    ),
  );
}

/** A panel listing the open conflicts; `onChanged` runs after a resolution. */
export function conflictsPanel(onChanged: () => void): { element: HTMLElement; open(): void } {
  const list = h("div", { ...testId("conflict-list") });
  const message = h("p", { ...testId("conflicts-message"), class: "form-message", role: "status" });
  const element = dialog(
    "conflicts",
    t.conflictsTitle,
    t.close,
    message,
    list,
  );

  const render = (conflicts: ConflictView[]): void => {
    message.textContent = conflicts.length === 0 ? t.noConflicts : t.conflictsIntro;
    mount(
      list,
      ...conflicts.map((conflict) => {
        const booking = conflict.kind === "appointment_overlap";
        const buttons: Array<[Resolution, string]> = booking
          ? [
              ["keep_a", t.resolveKeepFirstBooking],
              ["keep_b", t.resolveKeepLaterBooking],
              ["keep_both", t.resolveKeepBothBookings],
            ]
          : [
              ["merge_into_a", t.resolveMerge],
              ["keep_a", t.resolveKeepA],
              ["keep_b", t.resolveKeepB],
              ["keep_both", t.resolveKeepBoth],
            ];
        const shown = booking ? BOOKING_FIELDS : PATIENT_FIELDS;
        const actions = h("div", { class: "conflict-actions" });
        for (const [resolution, label] of buttons) {
          const button = h(
            "button",
            { type: "button", class: resolution === "merge_into_a" ? "primary" : "secondary", "data-resolution": resolution },
            label,
          );
          button.addEventListener("click", async () => {
            for (const b of actions.querySelectorAll("button")) b.disabled = true;
            try {
              await api.resolveConflict(conflict.conflict_id, resolution);
              onChanged();
              await refresh();
            } catch (reason) {
              message.textContent = toCommandError(reason).message;
              for (const b of actions.querySelectorAll("button")) b.disabled = false;
            }
          });
          actions.append(button);
        }
        return h(
          "article",
          { class: "conflict", "data-testid": "conflict", "data-conflict-id": conflict.conflict_id },
          h("p", { class: "conflict-kind" }, booking ? t.appointmentOverlap : t.duplicateIdNumber),
          h(
            "div",
            { class: "conflict-versions" },
            version(booking ? t.bookedFirst : t.conflictFirst, conflict.version_a, shown, "conflict-a"),
            version(booking ? t.bookedSecond : t.conflictSecond, conflict.version_b, shown, "conflict-b"),
          ),
          actions,
        );
      }),
    );
  };

  const refresh = async (): Promise<void> => {
    list.setAttribute("aria-busy", "true");
    try {
      render(await api.listConflicts());
    } catch (reason) {
      message.textContent = toCommandError(reason).message;
    } finally {
      list.removeAttribute("aria-busy");
    }
  };

  return {
    element,
    open: () => {
      element.hidden = false;
      void refresh();
    },
  };
}
