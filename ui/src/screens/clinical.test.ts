import { describe, expect, it } from "vitest";
import type { ClinicalEntryView, ClinicalRecordView } from "../wire";
import { clinicalEntryLine, clinicalPlan } from "./clinical";

const allergy: ClinicalEntryView = {
  id: "0193a6f0-0000-7000-8000-0000000000a1",
  kind: "allergy",
  body: "Penicillin: rash",
  author_name: "Dr. Aisyah Rahman",
  written_at: "2026-11-25T01:30:00Z",
  synced: false,
};

const note: ClinicalEntryView = {
  id: "0193a6f0-0000-7000-8000-0000000000a0",
  kind: "note",
  body: "Follow-up in two weeks.",
  author_name: null,
  written_at: "2026-11-24T02:05:00Z",
  synced: true,
};

const open: ClinicalRecordView = {
  patient_id: "0193a6f0-0000-7000-8000-000000000001",
  access: "clinical",
  access_until: null,
  may_write: true,
  may_open_in_emergency: false,
  entries: [allergy, note],
};

const closed: ClinicalRecordView = {
  ...open,
  access: "closed",
  may_write: false,
  entries: [],
};

describe("clinical record", () => {
  it("says a closed record is closed, and offers the emergency opening only to roles that may", () => {
    expect(clinicalPlan(closed)).toEqual({
      closed: "This clinical record is closed to your role.",
      emergencyForm: false,
      banner: null,
      entries: [],
      empty: null,
      addForm: false,
    });
    const mayOpen = clinicalPlan({ ...closed, may_open_in_emergency: true });
    expect(mayOpen.closed).toBe("This clinical record is closed to your role.");
    expect(mayOpen.emergencyForm).toBe(true);
    expect(mayOpen.addForm).toBe(false);
  });

  it("shows entries only when the record is open", () => {
    // Whatever came with a closed record, none of it is shown.
    expect(clinicalPlan({ ...closed, entries: [allergy] }).entries).toEqual([]);
    expect(clinicalPlan(open).entries.map((line) => line.kind)).toEqual(["allergy", "note"]);
    expect(clinicalPlan(open).closed).toBeNull();
    expect(clinicalPlan(open).emergencyForm).toBe(false);
    expect(clinicalPlan({ ...open, entries: [] }).empty).toBe("Nothing recorded yet.");
    expect(clinicalPlan(open).empty).toBeNull();
  });

  it("banners a record opened in an emergency with when it closes, in Malaysian time", () => {
    const emergency = clinicalPlan({
      ...open,
      access: "emergency",
      access_until: "2026-11-25T06:35:00Z",
      may_write: false,
    });
    expect(emergency.banner).toBe("Opened in an emergency until 14:35");
    expect(emergency.closed).toBeNull();
    expect(emergency.entries).toHaveLength(2);
    expect(clinicalPlan({ ...open, access: "emergency" }).banner).toBe("Opened in an emergency");
    expect(clinicalPlan(open).banner).toBeNull();
  });

  it("shows each entry's kind, body, author, time and whether it waits to sync", () => {
    expect(clinicalEntryLine(allergy)).toEqual({
      id: allergy.id,
      kind: "allergy",
      kindLabel: "Allergy",
      body: "Penicillin: rash",
      meta: "Dr. Aisyah Rahman · 09:30 (25/11/2026)",
      waiting: "Waiting to sync",
    });
    expect(clinicalEntryLine(note)).toMatchObject({ kindLabel: "Note", meta: "10:05 (24/11/2026)", waiting: null });
    expect(clinicalEntryLine({ ...note, kind: "emergency_access", body: "Collapsed at the counter" }).kindLabel).toBe(
      "Opened in an emergency",
    );
  });

  it("offers the add form only to people who may write", () => {
    expect(clinicalPlan(open).addForm).toBe(true);
    expect(clinicalPlan({ ...open, may_write: false }).addForm).toBe(false);
    expect(clinicalPlan(closed).addForm).toBe(false);
  });
});
