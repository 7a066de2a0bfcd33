//! The desk once enrolled: who this desk belongs to, registration, the patient list, and the
//! sync status bar underneath. The screens of a module (today the clinic's) show only while the
//! business has it switched on (modules.ts decides, from the status the bar polls).

import { api } from "../api";
import { h, testId } from "../dom";
import { deskModules } from "../modules";
import { t } from "../strings";
import type { AppInfo, SyncStatusView } from "../wire";
import { cataloguePanel } from "./catalogue";
import { clinicalPanel } from "./clinical";
import { conflictsPanel } from "./conflicts";
import { exportPanel } from "./export";
import { patientList } from "./patient-list";
import { reconnectPanel } from "./reconnect";
import { refusedPanel } from "./refused";
import { registerForm } from "./register-form";
import { signIn } from "./sign-in";
import { statusBar } from "./status-bar";

/** How often, at most, the window tells the shell that someone is using the desk. */
const ACTIVITY_EVERY_MS = 5000;

export function deskScreen(info: AppInfo): HTMLElement {
  const clinical = clinicalPanel();
  const list = patientList((patient) => clinical.open(patient));
  const conflicts = conflictsPanel(() => {
    void list.refresh();
    status.pollNow();
  });
  const refused = refusedPanel();
  const catalogue = cataloguePanel();
  const openCatalogue = h(
    "button",
    { type: "button", class: "secondary", id: "open-catalogue", "data-testid": "open-catalogue" },
    t.catalogueOpen,
  );
  openCatalogue.addEventListener("click", () => catalogue.open());
  const exporter = exportPanel();
  const openExport = h(
    "button",
    { type: "button", class: "secondary", id: "open-export", "data-testid": "open-export" },
    t.exportOpen,
  );
  openExport.addEventListener("click", () => void exporter.open());
  let person: string | null = null;
  const people = signIn((view) => {
    // While someone must sign in, the desk behind the panel cannot be used or read.
    const mustSignIn = view.sign_in_required && view.signed_in === null;
    main.inert = mustSignIn;
    header.inert = mustSignIn;
    const now = view.signed_in?.user_id ?? null;
    if (now !== person) {
      person = now;
      // A clinical record shown to the last person is not for the next one.
      clinical.close();
      // What the desk shows belongs to whoever is at it: look again for the new person.
      if (now !== null) void list.refresh();
    }
  });
  // The roster arrives with sync rounds: look again now and then.
  void people.refresh();
  const watch = window.setInterval(() => {
    if (!people.element.isConnected) {
      window.clearInterval(watch);
      document.removeEventListener("keydown", active, { capture: true });
      document.removeEventListener("pointerdown", active, { capture: true });
    } else void people.refresh();
  }, 3000);
  // Typing and clicking keep the signed-in person at the desk; a desk left alone signs them
  // out (the shell decides when). Told at most every few seconds.
  let lastActivity = 0;
  const active = () => {
    const now = Date.now();
    if (now - lastActivity < ACTIVITY_EVERY_MS) return;
    lastActivity = now;
    void api.deskActivity().catch(() => undefined);
  };
  document.addEventListener("keydown", active, { capture: true });
  document.addEventListener("pointerdown", active, { capture: true });
  const reconnect = reconnectPanel(() => status.pollNow());
  const status = statusBar(
    () => void list.refresh(),
    () => conflicts.open(),
    () => refused.open(),
    () => reconnect.open(),
    (now) => showModules(now),
  );
  const form = registerForm(() => {
    void list.refresh();
    status.pollNow();
  });
  const modulesText = h("p", {}, "");
  const modulesNotice = h("section", { ...testId("modules-notice"), class: "card modules-notice", role: "status", hidden: true }, modulesText);
  // The last decision applied, so a poll that changes nothing touches nothing.
  let shownModules = "";
  const showModules = (now: SyncStatusView): void => {
    const decision = deskModules(now);
    status.setConflictsShown(decision.shown.has("conflicts"));
    const key = `${[...decision.shown].sort().join(",")}|${decision.notice ?? ""}`;
    if (key === shownModules) return;
    const patientsWereHidden = list.element.hidden;
    shownModules = key;
    form.hidden = !decision.shown.has("registration");
    list.element.hidden = !decision.shown.has("patients");
    if (!decision.shown.has("clinical")) clinical.close();
    if (!decision.shown.has("conflicts")) conflicts.element.hidden = true;
    modulesText.textContent = decision.notice ?? "";
    modulesNotice.hidden = decision.notice === null;
    // Back after being switched off: show what the list holds now.
    if (patientsWereHidden && !list.element.hidden) void list.refresh();
  };

  const header = h(
    "header",
    { class: "topbar" },
    h("span", { class: "brand", "aria-hidden": "true" }, t.appName),
    h(
      "div",
      { class: "who" },
      h("h1", { id: "business-name", "data-testid": "business-name" }, info.business_name ?? t.appName),
      h(
        "p",
        { id: "branch-name", "data-testid": "branch-name" },
        [info.branch_name, info.device_name ? t.deskLabel(info.device_name) : null].filter(Boolean).join(" · "),
      ),
    ),
    openCatalogue,
    openExport,
    people.badge,
  );

  const main = h(
    "main",
    { class: "desk-main" },
    status.banner,
    modulesNotice,
    form,
    list.element,
    conflicts.element,
    refused.element,
    catalogue.element,
    clinical.element,
    exporter.element,
  );
  queueMicrotask(() => form.querySelector<HTMLInputElement>("#patient-full-name")?.focus());
  return h(
    "div",
    { class: "desk", id: "patients-screen", "data-testid": "patients-screen" },
    header,
    main,
    people.element,
    // Outside the desk's main part: reconnecting needs nobody signed in (the code is the
    // authority), and the sign-in needs a desk the server still takes.
    reconnect.element,
    status.element,
  );
}
