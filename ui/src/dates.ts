//! Dates as the desk shows them: DD/MM/YYYY, times in Malaysian time (UTC+8, no daylight
//! saving), whatever the computer's own time zone is set to.

const MALAYSIA_OFFSET_MS = 8 * 60 * 60 * 1000;

const pad2 = (n: number): string => String(n).padStart(2, "0");

/** `YYYY-MM-DD` from numbers (no validation). */
export function isoDate(year: number, month: number, day: number): string {
  return `${String(year).padStart(4, "0")}-${pad2(month)}-${pad2(day)}`;
}

/** Whether the day exists in the proleptic Gregorian calendar (31/02 does not). */
export function isRealDate(year: number, month: number, day: number): boolean {
  if (!Number.isInteger(year) || !Number.isInteger(month) || !Number.isInteger(day)) return false;
  if (month < 1 || month > 12 || day < 1) return false;
  const date = new Date(Date.UTC(2000, month - 1, day));
  date.setUTCFullYear(year);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** Today's date in Malaysia, as a Date whose UTC fields hold the Malaysian calendar day. */
export function todayInMalaysia(now: Date = new Date()): Date {
  const shifted = new Date(now.getTime() + MALAYSIA_OFFSET_MS);
  return new Date(Date.UTC(shifted.getUTCFullYear(), shifted.getUTCMonth(), shifted.getUTCDate()));
}

/** `1979-01-11` -> `11/01/1979`. Anything that is not an ISO date comes back unchanged. */
export function formatDate(iso: string): string {
  const match = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso);
  if (!match) return iso;
  const [, year, month, day] = match;
  return `${day}/${month}/${year}`;
}

/**
 * What a person typed as a date of birth (`11/01/1979`, `1/1/1979`, `11-01-1979`, `11.01.1979`)
 * as `YYYY-MM-DD`, or null when it is not a real DD/MM/YYYY date.
 */
export function parseDayMonthYear(input: string): string | null {
  const match = /^\s*(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\s*$/.exec(input);
  if (!match) return null;
  const day = Number(match[1]);
  const month = Number(match[2]);
  const year = Number(match[3]);
  return isRealDate(year, month, day) ? isoDate(year, month, day) : null;
}

/** An instant (RFC 3339, as chrono sends it) as `HH:MM` in Malaysian time. */
export function formatTimeOfDay(rfc3339: string): string | null {
  const millis = Date.parse(rfc3339);
  if (Number.isNaN(millis)) return null;
  const local = new Date(millis + MALAYSIA_OFFSET_MS);
  return `${pad2(local.getUTCHours())}:${pad2(local.getUTCMinutes())}`;
}

/** An instant (RFC 3339, as chrono sends it) as `HH:MM (DD/MM/YYYY)` in Malaysian time. */
export function formatSyncTime(rfc3339: string): string | null {
  const millis = Date.parse(rfc3339);
  if (Number.isNaN(millis)) return null;
  const local = new Date(millis + MALAYSIA_OFFSET_MS);
  const time = `${pad2(local.getUTCHours())}:${pad2(local.getUTCMinutes())}`;
  const date = `${pad2(local.getUTCDate())}/${pad2(local.getUTCMonth() + 1)}/${local.getUTCFullYear()}`;
  return `${time} (${date})`;
}
