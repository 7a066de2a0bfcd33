//! The only door to the Rust shell: every Tauri command, typed with the generated wire types.
//! Screens call these functions and never `invoke` directly. Every function rejects with a
//! CommandError, whatever went wrong.

import { invoke } from "@tauri-apps/api/core";
import type {
  AppInfo,
  CatalogueItemForm,
  CatalogueItemRecord,
  ClinicalEntryForm,
  ClinicalRecordView,
  CommandError,
  ConflictView,
  DeskPeopleView,
  EmergencyAccessForm,
  EnrolForm,
  ExportView,
  PatientView,
  RefusedChangeView,
  RegisterPatientForm,
  Resolution,
  SignInForm,
  SyncStatusView,
} from "./wire";
import { toCommandError } from "./errors";
import { t } from "./strings";

/** Sends one command; arguments are keyed by the Rust parameter names. */
export type Invoker = (command: string, args?: Record<string, unknown>) => Promise<unknown>;

declare global {
  interface Window {
    __TAURI_INTERNALS__?: unknown;
  }
}

/** Whether this window runs inside the Tauri shell (a plain browser has no IPC). */
export function insideDesktop(): boolean {
  return typeof window !== "undefined" && window.__TAURI_INTERNALS__ !== undefined;
}

const notInDesktop: CommandError = { code: "not_in_desktop", message: t.notInDesktop, fields: [] };

const tauriInvoker: Invoker = (command, args) =>
  insideDesktop() ? invoke(command, args) : Promise.reject(notInDesktop);

let currentInvoker: Invoker = tauriInvoker;

/** Replaces the transport: for unit tests and the development preview only. */
export function setInvoker(invoker: Invoker): void {
  currentInvoker = invoker;
}

async function call<T>(command: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return (await currentInvoker(command, args)) as T;
  } catch (reason) {
    throw toCommandError(reason);
  }
}

export const api = {
  appInfo: (): Promise<AppInfo> => call("app_info"),
  enrol: (form: EnrolForm): Promise<AppInfo> => call("enrol", { form }),
  registerPatient: (form: RegisterPatientForm): Promise<PatientView> => call("register_patient", { form }),
  /** An empty query lists the most recent registrations. */
  searchPatients: (query: string): Promise<PatientView[]> => call("search_patients", { query }),
  syncStatus: (): Promise<SyncStatusView> => call("sync_status"),
  syncNow: (): Promise<SyncStatusView> => call("sync_now"),
  refusedChanges: (): Promise<RefusedChangeView[]> => call("refused_changes"),
  /** Gives up a refused change; the record returns to the server's version at the next sync. */
  discardRefusedChange: (seq: number): Promise<RefusedChangeView[]> =>
    call("discard_refused_change", { seq }),
  /** The branch's open conflicts, from the server: needs the network. */
  listConflicts: (): Promise<ConflictView[]> => call("list_conflicts"),
  resolveConflict: (conflictId: string, resolution: Resolution): Promise<SyncStatusView> =>
    call("resolve_conflict", { conflictId, resolution }),
  /** Whether the desk asks for a sign-in, who may, and who is signed in. */
  deskPeople: (): Promise<DeskPeopleView> => call("desk_people"),
  signIn: (form: SignInForm): Promise<DeskPeopleView> => call("sign_in", { form }),
  signOut: (): Promise<DeskPeopleView> => call("sign_out"),
  /** The person typed or clicked: a desk left alone signs its person out after a while. */
  deskActivity: (): Promise<void> => call("desk_activity"),
  /** Writes everything this desk holds into a new folder of CSV files (in every state). */
  exportData: (): Promise<ExportView> => call("export_data"),
  /** Reconnects a desk head office removed, with a new enrolment code of its branch. */
  reenrol: (code: string): Promise<SyncStatusView> => call("reenrol", { code }),
  /** The business's products and services as this desk holds them. */
  listCatalogue: (includeInactive: boolean): Promise<CatalogueItemRecord[]> =>
    call("list_catalogue", { includeInactive }),
  saveCatalogueItem: (form: CatalogueItemForm): Promise<CatalogueItemRecord> => call("save_catalogue_item", { form }),
  /** A patient's clinical record, as far as the person at the desk may see it. */
  clinicalRecord: (patientId: string): Promise<ClinicalRecordView> => call("clinical_record", { patientId }),
  /** Adds a note or an allergy; answers with the record as it now stands. */
  addClinicalEntry: (form: ClinicalEntryForm): Promise<ClinicalRecordView> => call("add_clinical_entry", { form }),
  /** Opens a record closed to the person's role, in an emergency: the reason is recorded. */
  openClinicalRecordInEmergency: (form: EmergencyAccessForm): Promise<ClinicalRecordView> =>
    call("open_clinical_record_in_emergency", { form }),
};
