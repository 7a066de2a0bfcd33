import { describe, expect, it } from "vitest";
import { placeErrors, toCommandError } from "./errors";
import { en } from "./strings";
import type { CommandError } from "./wire";

describe("toCommandError", () => {
  it("keeps a CommandError from a command", () => {
    const error: CommandError = {
      code: "validation_failed",
      message: "Please correct the highlighted fields.",
      fields: [{ field: "id_number", code: "mykad_bad_place_of_birth", message: "Not a place of birth." }],
    };
    expect(toCommandError(error)).toEqual(error);
  });

  it("fills in missing code and fields, and drops malformed field errors", () => {
    expect(toCommandError({ message: "Boom", fields: [{ field: "phone" }, { field: "phone", message: "Bad" }] })).toEqual({
      code: "unexpected",
      message: "Boom",
      fields: [{ field: "phone", code: "", message: "Bad" }],
    });
  });

  it("wraps the bare strings Tauri rejects with", () => {
    expect(toCommandError("command sync_now not found")).toEqual({
      code: "unexpected",
      message: "command sync_now not found",
      fields: [],
    });
  });

  it("wraps an Error", () => {
    expect(toCommandError(new TypeError("x is undefined")).message).toBe("x is undefined");
  });

  it.each([undefined, null, 42, "", {}])("falls back to a generic sentence for %j", (reason) => {
    expect(toCommandError(reason)).toEqual({ code: "unexpected", message: en.unexpectedError, fields: [] });
  });
});

describe("placeErrors", () => {
  const formFields = ["full_name", "id_number", "phone"];

  it("puts field errors next to their fields and the message on top", () => {
    const placed = placeErrors(
      {
        code: "validation_failed",
        message: "Please correct the highlighted fields.",
        fields: [
          { field: "id_number", code: "mykad_bad_place_of_birth", message: "Not a valid place of birth." },
          { field: "phone", code: "bad_phone", message: "Not a Malaysian number." },
        ],
      },
      formFields,
    );
    expect(placed).toEqual({
      general: "Please correct the highlighted fields.",
      byField: { id_number: "Not a valid place of birth.", phone: "Not a Malaysian number." },
    });
  });

  it("joins several errors for one field", () => {
    const placed = placeErrors(
      {
        code: "validation_failed",
        message: "Check the form.",
        fields: [
          { field: "id_number", code: "a", message: "First." },
          { field: "id_number", code: "b", message: "Second." },
        ],
      },
      formFields,
    );
    expect(placed.byField).toEqual({ id_number: "First. Second." });
  });

  it("moves errors for fields the form lacks to the top", () => {
    const placed = placeErrors(
      { code: "validation_failed", message: "Check the form.", fields: [{ field: "branch_id", code: "x", message: "No branch." }] },
      formFields,
    );
    expect(placed).toEqual({ general: "Check the form. No branch.", byField: {} });
  });

  it("never leaves the top empty", () => {
    expect(placeErrors({ code: "x", message: "", fields: [] }, formFields).general).toBe(en.unexpectedError);
  });
});
