//! Development only: an in-memory stand-in for the Rust shell so the screens can be looked at
//! and clicked through in a plain browser (`npm run dev`, open `/?mock` or `/?mock=enrolled`;
//! `/?mock=enrolled&role=receptionist` plays someone to whom clinical records are closed, who
//! may open one in an emergency).
//! main.ts loads it behind `import.meta.env.DEV`, so it never reaches a build. The real rules
//! live in Rust; this only imitates their shape.

import { setInvoker } from "./api";
import { mykadDigits, previewMykad } from "./mykad";
import type {
  CatalogueItemForm,
  CatalogueItemRecord,
  ClinicalEntryForm,
  ClinicalEntryView,
  ClinicalRecordView,
  EmergencyAccessForm,
  AppInfo,
  CommandError,
  EnrolForm,
  FieldError,
  PatientView,
  RegisterPatientForm,
  SyncStatusView,
} from "./wire";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function invalid(fields: FieldError[]): CommandError {
  return { code: "validation_failed", message: "Please correct the highlighted fields.", fields };
}

function e164(phone: string): string | null {
  const digits = phone.replace(/[\s-]/g, "");
  if (/^\+60\d{8,10}$/.test(digits)) return digits;
  if (/^0\d{8,10}$/.test(digits)) return `+60${digits.slice(1)}`;
  return null;
}

const EMERGENCY_OPENING_MS = 30 * 60 * 1000;

export function installDevMock(options: {
  enrolled: boolean;
  receptionist?: boolean;
  /** `grace` or `suspended`: the desk's licence says so (`/?mock=enrolled&licence=grace`). */
  licence?: string | null;
  /** The modules switched on, comma-separated (`&modules=RETAIL_POS,SALON`); CLINIC by default. */
  modules?: string | null;
}): void {
  const receptionist = options.receptionist === true;
  let info: AppInfo = options.enrolled
    ? {
        enrolled: true,
        business_name: "Klinik Mesra Sdn Bhd",
        branch_name: "Shah Alam",
        device_name: "Front desk 1",
        server_url: "http://127.0.0.1:8787",
      }
    : { enrolled: false, business_name: null, branch_name: null, device_name: null, server_url: null };
  const catalogue: CatalogueItemRecord[] = [];
  const patients: PatientView[] = options.enrolled
    ? [
        {
          id: "0190a0a0-0000-7000-8000-000000000001",
          full_name: "Tan Mei Ling",
          id_type: "mykad",
          id_number: "850312-14-5678",
          phone: "+60122223333",
          date_of_birth: "1985-03-12",
          sex: "female",
          created_at: "2026-11-24T02:00:00Z",
          synced: true,
        },
        {
          id: "0190a0a0-0000-7000-8000-000000000002",
          full_name: "John Smith",
          id_type: "passport",
          id_number: "A12345678",
          phone: null,
          date_of_birth: "1970-07-04",
          sex: "male",
          created_at: "2026-11-25T03:00:00Z",
          synced: false,
        },
      ]
    : [];
  // Clinical records by patient id, newest entry first; emergency openings by patient id.
  const clinical = new Map<string, ClinicalEntryView[]>(
    options.enrolled
      ? [
          [
            "0190a0a0-0000-7000-8000-000000000001",
            [
              {
                id: "0190a0a0-0000-7000-8000-0000000000c2",
                kind: "note",
                body: "Follow-up for blood pressure in two weeks.",
                author_name: "Dr. Aisyah Rahman",
                written_at: "2026-11-24T03:10:00Z",
                synced: true,
              },
              {
                id: "0190a0a0-0000-7000-8000-0000000000c1",
                kind: "allergy",
                body: "Penicillin: rash",
                author_name: "Dr. Aisyah Rahman",
                written_at: "2026-11-24T03:05:00Z",
                synced: true,
              },
            ],
          ],
        ]
      : [],
  );
  const openings = new Map<string, number>();
  const clinicalView = (patientId: string): ClinicalRecordView => {
    if (!patients.some((p) => p.id === patientId)) throw { code: "not_found", message: "That patient was not found.", fields: [] };
    const until = openings.get(patientId);
    const access = !receptionist ? "clinical" : until !== undefined && until > Date.now() ? "emergency" : "closed";
    return {
      patient_id: patientId,
      access,
      access_until: access === "emergency" && until !== undefined ? new Date(until).toISOString() : null,
      may_write: !receptionist,
      may_open_in_emergency: access === "closed",
      entries: access === "closed" ? [] : (clinical.get(patientId) ?? []),
    };
  };
  const writeClinical = (patientId: string, entry: Omit<ClinicalEntryView, "id" | "written_at" | "synced">): void => {
    const entries = clinical.get(patientId) ?? [];
    entries.unshift({ ...entry, id: crypto.randomUUID(), written_at: new Date().toISOString(), synced: false });
    clinical.set(patientId, entries);
    status.pending += 1;
  };

  const status: SyncStatusView = {
    online: false,
    syncing: false,
    pending: patients.filter((p) => !p.synced).length,
    rejected: 0,
    open_conflicts: 0,
    oldest_pending_at: null,
    pull_done: 0,
    pull_total: 0,
    last_synced_at: options.enrolled ? "2026-11-25T01:05:00Z" : null,
    last_error: options.enrolled ? "Cannot reach the server at http://127.0.0.1:8787. Check the network." : null,
    needs_reenrolment: false,
    licence_access: options.licence === "suspended" ? "SUSPENDED" : options.licence === "grace" ? "READ_ONLY" : "FULL",
    licence_plan: "PRO",
    licence_full_until: "2026-12-08T00:00:00Z",
    licence_read_only_until: "2026-12-15T00:00:00Z",
    licence_modules: options.modules ? options.modules.split(",") : ["CLINIC"],
  };

  const commands: Record<string, (args: Record<string, unknown>) => unknown> = {
    app_info: () => info,
    enrol: (args) => {
      const form = args.form as EnrolForm;
      const fields: FieldError[] = [];
      if (!/^https?:\/\/\S+$/.test(form.server_url))
        fields.push({ field: "server_url", code: "bad_url", message: "Enter an address like http://127.0.0.1:8787." });
      if (!/^[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/i.test(form.code))
        fields.push({ field: "code", code: "bad_code", message: "The code has 12 letters or digits: XXXX-XXXX-XXXX." });
      if (form.device_name.trim() === "")
        fields.push({ field: "device_name", code: "required", message: "Give this desk a name." });
      if (fields.length > 0) throw invalid(fields);
      info = {
        enrolled: true,
        business_name: "Klinik Mesra Sdn Bhd",
        branch_name: "Shah Alam",
        device_name: form.device_name,
        server_url: form.server_url,
      };
      return info;
    },
    register_patient: (args) => {
      const form = args.form as RegisterPatientForm;
      const fields: FieldError[] = [];
      if (form.full_name.trim() === "") fields.push({ field: "full_name", code: "required", message: "Enter the patient's full name." });
      const phone = form.phone.trim() === "" ? null : e164(form.phone);
      if (form.phone.trim() !== "" && phone === null)
        fields.push({ field: "phone", code: "bad_phone", message: "Enter a Malaysian phone number, e.g. 012-345 6789." });
      let idNumber = form.id_number.trim().toUpperCase();
      let dateOfBirth = form.date_of_birth;
      let sex = form.sex;
      if (form.id_type === "mykad") {
        const preview = previewMykad(form.id_number);
        const digits = mykadDigits(form.id_number);
        if (preview.kind === "incomplete" || digits === null)
          fields.push({ field: "id_number", code: "mykad_format", message: "A MyKad number has 12 digits." });
        else if (preview.kind === "bad_date")
          fields.push({ field: "id_number", code: "mykad_bad_date", message: "The first six digits are not a real date." });
        else if (preview.kind === "bad_place_of_birth")
          fields.push({ field: "id_number", code: "mykad_bad_place_of_birth", message: "Digits 7–8 are not a valid place-of-birth code." });
        else {
          idNumber = `${digits.slice(0, 6)}-${digits.slice(6, 8)}-${digits.slice(8)}`;
          dateOfBirth = preview.dateOfBirth;
          sex = preview.sex;
        }
      } else {
        if (idNumber === "") fields.push({ field: "id_number", code: "required", message: "Enter the document number." });
        if (!dateOfBirth) fields.push({ field: "date_of_birth", code: "required", message: "Enter the date of birth." });
        if (!sex) fields.push({ field: "sex", code: "required", message: "Choose the sex." });
      }
      if (fields.length > 0) throw invalid(fields);
      const patient: PatientView = {
        id: crypto.randomUUID(),
        full_name: form.full_name.trim(),
        id_type: form.id_type,
        id_number: idNumber,
        phone,
        date_of_birth: dateOfBirth,
        sex,
        created_at: new Date().toISOString(),
        synced: false,
      };
      patients.unshift(patient);
      status.pending += 1;
      return patient;
    },
    search_patients: (args) => {
      const query = String(args.query).trim().toLowerCase();
      if (query === "") return patients.slice(0, 200);
      const compact = query.replace(/[\s-]/g, "");
      return patients.filter(
        (p) =>
          p.full_name.toLowerCase().includes(query) ||
          p.id_number.replace(/-/g, "").toLowerCase().includes(compact) ||
          (p.phone ?? "").includes(compact.replace(/^0/, "")),
      );
    },
    sync_status: () => ({ ...status }),
    sync_now: async () => {
      await delay(600);
      status.online = true;
      status.last_error = null;
      status.pending = 0;
      status.last_synced_at = new Date().toISOString();
      for (const p of patients) p.synced = true;
      for (const entries of clinical.values()) for (const entry of entries) entry.synced = true;
      return { ...status };
    },
    // One shared desk: nobody in the mock business has a desk PIN.
    desk_people: () => ({ sign_in_required: false, staff: [], signed_in: null }),
    desk_activity: () => undefined,
    export_data: () => ({
      folder: "/home/kaunter/Documents/Kaunter export 2026-12-06 101500",
      files: [
        { name: "patients.csv", records: patients.length },
        { name: "appointments.csv", records: 0 },
      ],
      clinical_included: !receptionist,
    }),
    list_catalogue: (args) => catalogue.filter((item) => item.active || args.includeInactive === true),
    clinical_record: (args) => clinicalView(String(args.patientId)),
    add_clinical_entry: (args) => {
      const form = args.form as ClinicalEntryForm;
      if (receptionist) throw { code: "forbidden", message: "Your role may not do this.", fields: [] };
      const body = form.body.trim();
      if (body === "") throw invalid([{ field: "body", code: "invalid", message: "Write what to record." }]);
      if (body.length > 4000) throw invalid([{ field: "body", code: "invalid", message: "An entry is at most 4000 characters." }]);
      clinicalView(form.patient_id);
      writeClinical(form.patient_id, { kind: form.kind, body, author_name: null });
      return clinicalView(form.patient_id);
    },
    open_clinical_record_in_emergency: (args) => {
      const form = args.form as EmergencyAccessForm;
      if (clinicalView(form.patient_id).access !== "closed") return clinicalView(form.patient_id);
      const reason = form.reason.trim();
      if (reason.length < 10)
        throw invalid([{ field: "reason", code: "invalid", message: "Say why the record is needed (at least 10 characters)." }]);
      writeClinical(form.patient_id, { kind: "emergency_access", body: reason, author_name: null });
      openings.set(form.patient_id, Date.now() + EMERGENCY_OPENING_MS);
      return clinicalView(form.patient_id);
    },
    save_catalogue_item: (args) => {
      const form = args.form as CatalogueItemForm;
      const price = /^\d+(\.\d{1,2})?$/.test(form.price.trim()) ? Number(form.price).toFixed(2) : null;
      if (price === null) throw invalid([{ field: "price", code: "invalid", message: "Enter the price in ringgit, e.g. 45.00." }]);
      const item: CatalogueItemRecord = {
        id: form.id ?? crypto.randomUUID(),
        branch_id: "00000000-0000-7000-8000-000000000001",
        kind: form.kind,
        code: form.code.trim(),
        name: form.name.trim(),
        price,
        tax: form.tax,
        duration_minutes: form.duration_minutes,
        active: form.active,
      };
      const at = catalogue.findIndex((existing) => existing.id === item.id);
      if (at >= 0) catalogue[at] = item;
      else catalogue.push(item);
      status.pending += 1;
      return item;
    },
  };

  setInvoker(async (command, args = {}) => {
    await delay(80);
    const handler = commands[command];
    if (!handler) throw `command ${command} not found`;
    return structuredClone(await handler(args));
  });
}
