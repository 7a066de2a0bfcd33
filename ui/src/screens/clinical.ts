//! A patient's clinical record: notes and allergies, newest first. The store decides who sees
//! what: people whose role reads clinical records see it; to others it is closed, and those
//! whose role allows it may open it in an emergency, with a reason that is recorded and reviewed
//! by head office. What the dialog shows is decided by `clinicalPlan`, a plain function of the
//! record, so it is tested without a window.

import { api } from "../api";
import { formatSyncTime, formatTimeOfDay } from "../dates";
import { dialog, h, mount, testId } from "../dom";
import { placeErrors, toCommandError } from "../errors";
import { clearFieldErrors, formField, formMessage, showFieldErrors } from "../forms";
import { t } from "../strings";
import type { ClinicalEntryView, ClinicalKind, ClinicalRecordView, PatientView } from "../wire";

/** The kinds a person writes; `emergency_access` is written by opening the record. */
const WRITABLE_KINDS: readonly ClinicalKind[] = ["note", "allergy"];

export type ClinicalEntryLine = {
  id: string;
  kind: ClinicalKind;
  kindLabel: string;
  body: string;
  /** Who wrote it (when known) and when, in Malaysian time. */
  meta: string;
  /** The marker of an entry still in the outbox, or null once synced. */
  waiting: string | null;
};

export type ClinicalPlan = {
  /** The sentence shown when the record is closed to the person's role, or null. */
  closed: string | null;
  /** Whether the "Open in an emergency" form is offered. */
  emergencyForm: boolean;
  /** The banner of a record opened in an emergency, or null. */
  banner: string | null;
  entries: ClinicalEntryLine[];
  /** Said when the record is open and holds nothing yet. */
  empty: string | null;
  /** Whether the person may add notes and allergies. */
  addForm: boolean;
};

export function clinicalEntryLine(entry: ClinicalEntryView): ClinicalEntryLine {
  const when = formatSyncTime(entry.written_at) ?? entry.written_at;
  return {
    id: entry.id,
    kind: entry.kind,
    kindLabel: t.clinicalKinds[entry.kind],
    body: entry.body,
    meta: [entry.author_name, when].filter((part) => part !== null && part !== "").join(" · "),
    waiting: entry.synced ? null : t.clinicalWaiting,
  };
}

export function clinicalPlan(record: ClinicalRecordView): ClinicalPlan {
  const closed = record.access === "closed";
  const until = record.access_until === null ? null : formatTimeOfDay(record.access_until);
  return {
    closed: closed ? t.clinicalClosed : null,
    emergencyForm: closed && record.may_open_in_emergency,
    banner: record.access === "emergency" ? (until ? t.clinicalEmergencyUntil(until) : t.clinicalEmergency) : null,
    entries: closed ? [] : record.entries.map(clinicalEntryLine),
    empty: !closed && record.entries.length === 0 ? t.clinicalEmpty : null,
    addForm: record.may_write,
  };
}

function entryItem(line: ClinicalEntryLine): HTMLLIElement {
  return h(
    "li",
    { class: "clinical-entry", "data-testid": "clinical-entry", "data-kind": line.kind, "data-entry-id": line.id },
    h(
      "div",
      { class: "clinical-entry-head" },
      h("strong", { class: "clinical-entry-kind" }, line.kindLabel),
      " ",
      h("span", { class: "field-hint clinical-entry-meta" }, line.meta),
      line.waiting === null ? null : " ",
      line.waiting === null ? null : h("span", { class: "badge badge-pending clinical-entry-waiting" }, line.waiting),
    ),
    h("p", { class: "clinical-entry-body" }, line.body),
  );
}

export type ClinicalPanel = {
  element: HTMLElement;
  open(patient: PatientView): void;
  /** Hides the record, e.g. when another person comes to the desk. */
  close(): void;
};

export function clinicalPanel(): ClinicalPanel {
  let patient: PatientView | null = null;
  // Only the answer about the patient asked for last is shown.
  let latestRequest = 0;
  // An emergency opening ends on its own: the record is asked for again then.
  let expiry: ReturnType<typeof setTimeout> | undefined;

  const subtitle = h("p", { ...testId("clinical-patient"), class: "lead" });
  const message = formMessage("clinical-message");
  const banner = h("p", { ...testId("clinical-emergency-banner"), class: "clinical-banner", role: "status", hidden: true });
  const closedText = h("p", { ...testId("clinical-closed"), class: "clinical-closed", hidden: true });

  // Opening a closed record in an emergency.
  const reason = h("textarea", { ...testId("clinical-reason"), name: "reason", rows: 3 });
  const reasonFields = [
    formField({ name: "reason", id: "clinical-reason", label: t.clinicalReason, control: reason, hint: t.clinicalReasonHint }),
  ];
  const emergencySubmit = h("button", { ...testId("clinical-emergency-submit"), type: "submit", class: "primary" }, t.clinicalOpenInEmergency);
  const emergencyForm = h(
    "form",
    { ...testId("clinical-emergency-form"), novalidate: true, hidden: true },
    h("p", {}, t.clinicalEmergencyIntro),
    ...reasonFields.map((f) => f.wrapper),
    h("div", { class: "actions" }, emergencySubmit),
  );

  const entriesTitle = h("h3", { id: "clinical-entries-title", hidden: true }, t.clinicalEntriesTitle);
  const entries = h("ul", { ...testId("clinical-entries"), class: "clinical-entries", "aria-labelledby": "clinical-entries-title" });
  const empty = h("p", { ...testId("clinical-empty"), class: "empty", hidden: true });

  // Adding a note or an allergy.
  const kind = h(
    "select",
    { ...testId("clinical-kind"), name: "kind" },
    ...WRITABLE_KINDS.map((value) => h("option", { value }, t.clinicalKinds[value])),
  );
  const body = h("textarea", { ...testId("clinical-body"), name: "body", rows: 4 });
  const addFields = [
    formField({ name: "kind", id: "clinical-kind", label: t.clinicalKind, control: kind }),
    formField({ name: "body", id: "clinical-body", label: t.clinicalBody, control: body, hint: t.clinicalBodyHint }),
  ];
  const save = h("button", { ...testId("clinical-save"), type: "submit", class: "primary" }, t.clinicalSave);
  const addForm = h(
    "form",
    { ...testId("clinical-add-form"), novalidate: true, hidden: true },
    h("h3", {}, t.clinicalAddTitle),
    ...addFields.map((f) => f.wrapper),
    h("div", { class: "actions" }, save),
  );

  const element = dialog(
    "clinical",
    t.clinicalTitle,
    t.close,
    subtitle,
    message.element,
    banner,
    closedText,
    emergencyForm,
    entriesTitle,
    entries,
    empty,
    addForm,
  );

  const render = (record: ClinicalRecordView): void => {
    const plan = clinicalPlan(record);
    banner.textContent = plan.banner ?? "";
    banner.hidden = plan.banner === null;
    closedText.textContent = plan.closed ?? "";
    closedText.hidden = plan.closed === null;
    emergencyForm.hidden = !plan.emergencyForm;
    entriesTitle.hidden = plan.closed !== null || plan.entries.length === 0;
    mount(entries, ...plan.entries.map(entryItem));
    empty.textContent = plan.empty ?? "";
    empty.hidden = plan.empty === null;
    addForm.hidden = !plan.addForm;
    clearTimeout(expiry);
    if (record.access === "emergency" && record.access_until !== null) {
      const left = Date.parse(record.access_until) - Date.now();
      if (left > 0) expiry = setTimeout(() => void load(), left + 1000);
    }
  };

  const clear = (): void => {
    clearTimeout(expiry);
    banner.hidden = true;
    closedText.hidden = true;
    emergencyForm.hidden = true;
    entriesTitle.hidden = true;
    mount(entries);
    empty.hidden = true;
    addForm.hidden = true;
  };

  const load = async (): Promise<void> => {
    if (patient === null || element.hidden) return;
    const request = ++latestRequest;
    element.setAttribute("aria-busy", "true");
    try {
      const record = await api.clinicalRecord(patient.id);
      if (request !== latestRequest) return;
      render(record);
    } catch (reason) {
      if (request !== latestRequest) return;
      clear();
      message.error(toCommandError(reason).message);
    } finally {
      if (request === latestRequest) element.removeAttribute("aria-busy");
    }
  };

  /** Sends one of the dialog's forms; its answer is the record as it now stands. */
  const submit = async (
    button: HTMLButtonElement,
    fields: ReturnType<typeof formField>[],
    send: (patientId: string) => Promise<ClinicalRecordView>,
    done: () => void,
  ): Promise<void> => {
    if (button.disabled || patient === null) return;
    message.clear();
    clearFieldErrors(fields);
    button.disabled = true;
    const request = ++latestRequest;
    try {
      const record = await send(patient.id);
      if (request !== latestRequest) return;
      render(record);
      done();
    } catch (reason) {
      if (request !== latestRequest) return;
      const placed = placeErrors(
        toCommandError(reason),
        fields.map((f) => f.name),
      );
      message.error(placed.general);
      showFieldErrors(fields, placed.byField);
    } finally {
      button.disabled = false;
    }
  };

  emergencyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void submit(
      emergencySubmit,
      reasonFields,
      (patientId) => api.openClinicalRecordInEmergency({ patient_id: patientId, reason: reason.value }),
      () => {
        reason.value = "";
      },
    );
  });

  addForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = kind.value as ClinicalKind;
    void submit(
      save,
      addFields,
      (patientId) => api.addClinicalEntry({ patient_id: patientId, kind: chosen, body: body.value }),
      () => {
        message.success(t.clinicalSaved(t.clinicalKinds[chosen]));
        body.value = "";
      },
    );
  });

  const close = (): void => {
    element.hidden = true;
    patient = null;
    latestRequest += 1;
    message.clear();
    clear();
  };
  // The dialog's own Close button only hides it: forget the record too.
  element.querySelector("#clinical-close")?.addEventListener("click", close);

  return {
    element,
    open: (chosen) => {
      patient = chosen;
      element.hidden = false;
      subtitle.textContent = t.clinicalPatient(chosen.full_name);
      message.clear();
      clear();
      reason.value = "";
      body.value = "";
      kind.value = "note";
      clearFieldErrors([...reasonFields, ...addFields]);
      void load();
    },
    close,
  };
}
