//! Reads a MyKad number as it is typed, so the desk can preview the birth date and sex it
//! implies. Only a convenience: the Rust side validates and derives the stored values.

import type { Sex } from "./wire";
import { isoDate, isRealDate, todayInMalaysia } from "./dates";

export type MykadPreview =
  | { kind: "incomplete" }
  | { kind: "bad_date" }
  | { kind: "bad_place_of_birth" }
  | { kind: "ok"; dateOfBirth: string; sex: Sex; placeOfBirth: string };

/** The 12 digits of a MyKad typed with or without dashes and spaces; null if anything else is in it. */
export function mykadDigits(input: string): string | null {
  const compact = input.replace(/[\s-]/g, "");
  return /^\d{12}$/.test(compact) ? compact : null;
}

/**
 * Whether a two-digit place-of-birth code (digits 7–8) is one the registry issues.
 * Invalid: 00, 17–20, 69, 70, 73, 80, 81, 94–97.
 */
export function isValidPlaceOfBirth(code: number): boolean {
  return (
    (code >= 1 && code <= 16) ||
    (code >= 21 && code <= 68) ||
    code === 71 ||
    code === 72 ||
    (code >= 74 && code <= 79) ||
    (code >= 82 && code <= 93) ||
    code === 98 ||
    code === 99
  );
}

/**
 * The MyKad has a two-digit year. Take the 2000s unless that puts the birth in the future,
 * which keeps every age between 0 and 100.
 */
export function mykadBirthYear(yy: number, month: number, day: number, today: Date): number {
  const thisCentury = 2000 + yy;
  const asThisCentury = isoDate(thisCentury, month, day);
  const todayIso = isoDate(today.getUTCFullYear(), today.getUTCMonth() + 1, today.getUTCDate());
  return asThisCentury <= todayIso ? thisCentury : 1900 + yy;
}

/** What a MyKad number implies, once all 12 digits are there. `today` is a Malaysian calendar day. */
export function previewMykad(input: string, today: Date = todayInMalaysia()): MykadPreview {
  const digits = mykadDigits(input);
  if (digits === null) return { kind: "incomplete" };
  const yy = Number(digits.slice(0, 2));
  const month = Number(digits.slice(2, 4));
  const day = Number(digits.slice(4, 6));
  const year = mykadBirthYear(yy, month, day, today);
  if (!isRealDate(year, month, day)) return { kind: "bad_date" };
  const placeOfBirth = digits.slice(6, 8);
  if (!isValidPlaceOfBirth(Number(placeOfBirth))) return { kind: "bad_place_of_birth" };
  const last = Number(digits.slice(11, 12));
  return {
    kind: "ok",
    dateOfBirth: isoDate(year, month, day),
    sex: last % 2 === 1 ? "male" : "female",
    placeOfBirth,
  };
}
