import { afterEach, describe, expect, it } from "vitest";
import { api, setInvoker } from "./api";
import { en } from "./strings";

describe("api outside the desktop shell", () => {
  it("rejects with a clear CommandError instead of throwing inside Tauri's code", async () => {
    await expect(api.appInfo()).rejects.toEqual({ code: "not_in_desktop", message: en.notInDesktop, fields: [] });
  });
});

describe("api with an invoker", () => {
  const calls: Array<[string, Record<string, unknown> | undefined]> = [];
  afterEach(() => {
    calls.length = 0;
  });

  it("keys arguments by the Rust parameter names", async () => {
    setInvoker(async (command, args) => {
      calls.push([command, args]);
      return [];
    });
    await api.searchPatients("7901");
    await api.enrol({ server_url: "http://127.0.0.1:8787", code: "ABCD-EFGH-JKLM", device_name: "Desk 1" });
    await api.syncNow();
    expect(calls).toEqual([
      ["search_patients", { query: "7901" }],
      ["enrol", { form: { server_url: "http://127.0.0.1:8787", code: "ABCD-EFGH-JKLM", device_name: "Desk 1" } }],
      ["sync_now", undefined],
    ]);
  });

  it("turns a string rejection into a CommandError", async () => {
    setInvoker(async () => {
      throw "invalid args `form` for command `register_patient`";
    });
    await expect(api.syncStatus()).rejects.toEqual({
      code: "unexpected",
      message: "invalid args `form` for command `register_patient`",
      fields: [],
    });
  });
});
