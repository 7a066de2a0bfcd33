import { describe, expect, it } from "vitest";
import { isValidPlaceOfBirth, mykadBirthYear, mykadDigits, previewMykad } from "./mykad";

// A fixed "today" (a Malaysian calendar day) so the century choice is deterministic.
const today = new Date(Date.UTC(2026, 10, 25));

describe("mykadDigits", () => {
  it.each([
    ["790111-10-5342", "790111105342"],
    ["790111105342", "790111105342"],
    [" 790111 10 5342 ", "790111105342"],
    ["79011110534", null],
    ["7901111053421", null],
    ["79O111-10-5342", null],
    ["", null],
  ])("%j -> %j", (input, expected) => {
    expect(mykadDigits(input)).toBe(expected);
  });
});

describe("isValidPlaceOfBirth", () => {
  it.each([1, 10, 14, 16, 21, 59, 60, 68, 71, 72, 74, 79, 82, 83, 93, 98, 99])("%i is valid", (code) => {
    expect(isValidPlaceOfBirth(code)).toBe(true);
  });
  it.each([0, 17, 18, 19, 20, 69, 70, 73, 80, 81, 94, 95, 96, 97])("%i is invalid", (code) => {
    expect(isValidPlaceOfBirth(code)).toBe(false);
  });
});

describe("mykadBirthYear", () => {
  it.each([
    [79, 1, 11, 1979],
    [0, 1, 1, 2000],
    [26, 11, 25, 2026], // born today
    [26, 11, 26, 1926], // tomorrow in 2026 is impossible, so 1926
    [27, 1, 1, 1927],
    [5, 6, 30, 2005],
  ])("%i-%i-%i -> %i", (yy, month, day, year) => {
    expect(mykadBirthYear(yy, month, day, today)).toBe(year);
  });
});

describe("previewMykad", () => {
  it("derives the birth date and an even last digit as female", () => {
    expect(previewMykad("790111-10-5342", today)).toEqual({
      kind: "ok",
      dateOfBirth: "1979-01-11",
      sex: "female",
      placeOfBirth: "10",
    });
  });

  it("reads an odd last digit as male, dashes optional", () => {
    expect(previewMykad("900101145671", today)).toEqual({
      kind: "ok",
      dateOfBirth: "1990-01-01",
      sex: "male",
      placeOfBirth: "14",
    });
  });

  it("puts a recent birth in the 2000s", () => {
    const preview = previewMykad("150229-01-0002", today);
    expect(preview.kind).toBe("bad_date"); // 2015 was not a leap year
    expect(previewMykad("160229-01-0002", today)).toMatchObject({ kind: "ok", dateOfBirth: "2016-02-29" });
  });

  it("waits for all 12 digits", () => {
    expect(previewMykad("790111-10-534", today)).toEqual({ kind: "incomplete" });
    expect(previewMykad("", today)).toEqual({ kind: "incomplete" });
  });

  it("rejects a date that does not exist", () => {
    expect(previewMykad("791301-10-5342", today)).toEqual({ kind: "bad_date" });
    expect(previewMykad("790231-10-5342", today)).toEqual({ kind: "bad_date" });
    expect(previewMykad("790100-10-5342", today)).toEqual({ kind: "bad_date" });
  });

  it("rejects place-of-birth codes the registry does not issue", () => {
    expect(previewMykad("900101-00-1234", today)).toEqual({ kind: "bad_place_of_birth" });
    expect(previewMykad("900101-17-1234", today)).toEqual({ kind: "bad_place_of_birth" });
    expect(previewMykad("900101-96-1234", today)).toEqual({ kind: "bad_place_of_birth" });
  });
});
