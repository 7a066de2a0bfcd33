//! The patient list with its search box. Only the answer to the latest query is shown, so a
//! slow early search cannot overwrite a later one.

import { api } from "../api";
import { formatDate } from "../dates";
import { h, testId } from "../dom";
import { toCommandError } from "../errors";
import { t } from "../strings";
import type { PatientView } from "../wire";

export const SEARCH_DEBOUNCE_MS = 200;

export type PatientList = {
  element: HTMLElement;
  /** Runs the current search again, e.g. after a registration or a sync. */
  refresh(): Promise<void>;
};

function patientRow(patient: PatientView, onClinicalRecord: (patient: PatientView) => void): HTMLTableRowElement {
  const clinical = h(
    "button",
    { type: "button", class: "secondary clinical-open", "data-testid": "clinical-open", "aria-label": t.clinicalOpenFor(patient.full_name) },
    t.clinicalOpen,
  );
  clinical.addEventListener("click", () => onClinicalRecord(patient));
  const idCell = h("td", { "data-testid": "patient-row-id", class: "mono" }, patient.id_number);
  if (patient.id_type !== "mykad") {
    idCell.prepend(h("span", { class: "id-type" }, t.idTypes[patient.id_type]), " ");
  }
  return h(
    "tr",
    { "data-testid": "patient-row", "data-patient-id": patient.id },
    h("td", { "data-testid": "patient-row-name", class: "name" }, patient.full_name),
    idCell,
    h("td", { "data-testid": "patient-row-phone", class: "mono" }, patient.phone ?? t.dash),
    h("td", { "data-testid": "patient-row-dob" }, patient.date_of_birth ? formatDate(patient.date_of_birth) : t.dash),
    h("td", { "data-testid": "patient-row-sex" }, patient.sex ? t.sexes[patient.sex] : t.dash),
    h(
      "td",
      { "data-testid": "patient-row-sync" },
      patient.synced ? null : h("span", { class: "badge badge-pending", "data-testid": "patient-row-unsynced" }, t.notSynced),
    ),
    h("td", { class: "row-actions" }, clinical),
  );
}

/** `onClinicalRecord` opens a patient's clinical record (the button on each row). */
export function patientList(onClinicalRecord: (patient: PatientView) => void): PatientList {
  const search = h("input", {
    ...testId("patient-search"),
    type: "search",
    placeholder: t.searchPlaceholder,
    autocomplete: "off",
    spellcheck: "false",
    "aria-controls": "patient-list",
  });
  const body = h("tbody");
  const table = h(
    "table",
    { class: "patients-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, t.columnName),
        h("th", { scope: "col" }, t.columnId),
        h("th", { scope: "col" }, t.columnPhone),
        h("th", { scope: "col" }, t.columnDob),
        h("th", { scope: "col" }, t.columnSex),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t.columnSync)),
        h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t.columnClinical)),
      ),
    ),
    body,
  );
  const empty = h("p", { class: "empty", "data-testid": "patient-list-empty", hidden: true });
  const error = h("p", { ...testId("patient-list-error"), class: "list-error", role: "alert", hidden: true });
  // data-query names the query whose answer is on screen; tests wait on it instead of sleeping.
  const list = h("div", { ...testId("patient-list"), class: "list-scroll", "aria-live": "polite" }, table, empty);

  let latestRequest = 0;
  let debounce: ReturnType<typeof setTimeout> | undefined;

  const render = (query: string, patients: PatientView[]): void => {
    body.replaceChildren(...patients.map((patient) => patientRow(patient, onClinicalRecord)));
    table.hidden = patients.length === 0;
    empty.hidden = patients.length > 0;
    empty.textContent = query === "" ? t.noPatientsYet : t.noMatches(query);
  };

  const run = async (): Promise<void> => {
    clearTimeout(debounce);
    const query = search.value.trim();
    const request = ++latestRequest;
    list.setAttribute("aria-busy", "true");
    try {
      const patients = await api.searchPatients(query);
      if (request !== latestRequest) return;
      error.hidden = true;
      render(query, patients);
    } catch (reason) {
      if (request !== latestRequest) return;
      error.textContent = toCommandError(reason).message;
      error.hidden = false;
      render(query, []);
    } finally {
      if (request === latestRequest) {
        list.dataset.query = query;
        list.removeAttribute("aria-busy");
      }
    }
  };

  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void run(), SEARCH_DEBOUNCE_MS);
  });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      void run();
    }
  });

  const element = h(
    "section",
    { class: "card patients", "aria-labelledby": "patients-title" },
    h(
      "div",
      { class: "card-head" },
      h("h2", { id: "patients-title" }, t.patientsTitle),
      h(
        "div",
        { class: "search" },
        h("label", { for: "patient-search", class: "visually-hidden" }, t.search),
        search,
      ),
    ),
    error,
    list,
  );

  void run();
  return { element, refresh: run };
}
