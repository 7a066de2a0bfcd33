import { describe, expect, it } from "vitest";
import type { SyncStatusView } from "../wire";
import { licenceText, pendingText, syncingText } from "./status-bar";

const idle: SyncStatusView = {
  online: true,
  syncing: false,
  pending: 0,
  rejected: 0,
  open_conflicts: 0,
  oldest_pending_at: null,
  pull_done: 0,
  pull_total: 0,
  last_synced_at: null,
  last_error: null,
  needs_reenrolment: false,
  licence_access: "FULL",
  licence_plan: "PRO",
  licence_full_until: null,
  licence_read_only_until: null,
  licence_modules: ["CLINIC"],
};

describe("status bar texts", () => {
  it("shows a large pull's progress and a small one as plain syncing", () => {
    expect(syncingText(idle)).toBeNull();
    expect(syncingText({ ...idle, syncing: true, pull_done: 3, pull_total: 10 })).toBe("Syncing…");
    expect(syncingText({ ...idle, syncing: true, pull_done: 2500, pull_total: 100000 })).toBe(
      "Syncing 2,500 of 100,000…",
    );
  });

  it("says since when changes have been waiting, in Malaysian time", () => {
    expect(pendingText(idle)).toBe("No changes waiting");
    expect(pendingText({ ...idle, pending: 1 })).toBe("1 change waiting");
    expect(pendingText({ ...idle, pending: 3, oldest_pending_at: "2026-11-25T01:30:00Z" })).toBe(
      "3 changes waiting (oldest from 09:30 (25/11/2026))",
    );
  });

  it("says why the desk is read-only and what to do, and reminds before full access ends", () => {
    const now = new Date("2026-12-06T00:00:00Z");
    expect(licenceText(idle, now)).toBeNull();
    expect(licenceText({ ...idle, licence_full_until: "2026-12-30T00:00:00Z" }, now)).toBeNull();
    expect(licenceText({ ...idle, licence_full_until: "2026-12-08T12:00:00Z" }, now)).toBe(
      "The subscription ends in 3 days: head office can renew it (its Kaunter page says how).",
    );
    const readOnly = licenceText(
      { ...idle, licence_access: "READ_ONLY", licence_read_only_until: "2026-12-10T01:30:00Z" },
      now,
    );
    expect(readOnly).toContain("read-only");
    expect(readOnly).toContain("09:30 (10/12/2026)");
    expect(licenceText({ ...idle, licence_access: "SUSPENDED" }, now)).toContain("suspended");
  });
});
