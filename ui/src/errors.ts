//! Turns whatever a Tauri command rejected with into a CommandError, and a CommandError into
//! what a form shows: one message at the top and one next to each field it names.

import type { CommandError, FieldError } from "./wire";
import { t } from "./strings";

function isFieldError(value: unknown): value is FieldError {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.field === "string" && typeof v.message === "string";
}

/**
 * Our commands reject with a serialised CommandError; Tauri itself rejects with a bare string
 * (an unknown command, arguments that do not deserialise). Both end up as a CommandError.
 */
export function toCommandError(reason: unknown): CommandError {
  if (typeof reason === "object" && reason !== null && !(reason instanceof Error)) {
    const r = reason as Record<string, unknown>;
    if (typeof r.message === "string") {
      const fields = Array.isArray(r.fields) ? r.fields.filter(isFieldError) : [];
      return {
        code: typeof r.code === "string" ? r.code : "unexpected",
        message: r.message,
        fields: fields.map((f) => ({ field: f.field, code: typeof f.code === "string" ? f.code : "", message: f.message })),
      };
    }
  }
  if (typeof reason === "string" && reason.trim() !== "") {
    return { code: "unexpected", message: reason, fields: [] };
  }
  if (reason instanceof Error && reason.message.trim() !== "") {
    return { code: "unexpected", message: reason.message, fields: [] };
  }
  return { code: "unexpected", message: t.unexpectedError, fields: [] };
}

export type PlacedErrors = {
  /** For the top of the form. Includes field errors for fields the form does not have. */
  general: string;
  /** One message per field the form has; several errors for one field are joined. */
  byField: Record<string, string>;
};

/** Splits an error between the top of a form and the fields it has. */
export function placeErrors(error: CommandError, formFields: readonly string[]): PlacedErrors {
  const byField: Record<string, string> = {};
  const stray: string[] = [];
  for (const fieldError of error.fields) {
    if (formFields.includes(fieldError.field)) {
      const existing = byField[fieldError.field];
      byField[fieldError.field] = existing ? `${existing} ${fieldError.message}` : fieldError.message;
    } else {
      stray.push(fieldError.message);
    }
  }
  const general = [error.message, ...stray].filter((m) => m.trim() !== "").join(" ");
  return { general: general || t.unexpectedError, byField };
}
