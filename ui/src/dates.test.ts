import { describe, expect, it } from "vitest";
import { formatDate, formatSyncTime, formatTimeOfDay, isRealDate, parseDayMonthYear, todayInMalaysia } from "./dates";

describe("formatDate", () => {
  it.each([
    ["1979-01-11", "11/01/1979"],
    ["2000-12-31", "31/12/2000"],
    ["2024-02-29", "29/02/2024"],
    ["not a date", "not a date"],
  ])("%s -> %s", (iso, shown) => {
    expect(formatDate(iso)).toBe(shown);
  });
});

describe("parseDayMonthYear", () => {
  it.each([
    ["11/01/1979", "1979-01-11"],
    ["1/1/1979", "1979-01-01"],
    ["11-01-1979", "1979-01-11"],
    ["11.01.1979", "1979-01-11"],
    [" 29/02/2024 ", "2024-02-29"],
    ["29/02/2023", null],
    ["31/04/2020", null],
    ["1979-01-11", null],
    ["11/01/79", null],
    ["", null],
  ])("%j -> %j", (input, iso) => {
    expect(parseDayMonthYear(input)).toBe(iso);
  });
});

describe("isRealDate", () => {
  it("knows leap years", () => {
    expect(isRealDate(2000, 2, 29)).toBe(true);
    expect(isRealDate(1900, 2, 29)).toBe(false);
    expect(isRealDate(2024, 2, 29)).toBe(true);
    expect(isRealDate(2023, 2, 29)).toBe(false);
  });
  it("rejects month 0 and 13 and day 0", () => {
    expect(isRealDate(2020, 0, 1)).toBe(false);
    expect(isRealDate(2020, 13, 1)).toBe(false);
    expect(isRealDate(2020, 1, 0)).toBe(false);
  });
});

describe("formatTimeOfDay", () => {
  it("shows Malaysian time (UTC+8), crossing midnight", () => {
    expect(formatTimeOfDay("2026-11-25T06:35:00Z")).toBe("14:35");
    expect(formatTimeOfDay("2026-12-31T16:30:59Z")).toBe("00:30");
  });
  it("gives null for garbage", () => {
    expect(formatTimeOfDay("later")).toBeNull();
  });
});

describe("formatSyncTime", () => {
  it("shows Malaysian time (UTC+8)", () => {
    expect(formatSyncTime("2026-11-25T01:05:00Z")).toBe("09:05 (25/11/2026)");
  });
  it("crosses midnight into the next Malaysian day", () => {
    expect(formatSyncTime("2026-12-31T16:30:59.123456Z")).toBe("00:30 (01/01/2027)");
  });
  it("honours an explicit offset", () => {
    expect(formatSyncTime("2026-11-25T09:05:00+08:00")).toBe("09:05 (25/11/2026)");
  });
  it("gives null for garbage", () => {
    expect(formatSyncTime("yesterday")).toBeNull();
  });
});

describe("todayInMalaysia", () => {
  it("is already tomorrow in Malaysia at 17:00 UTC", () => {
    const today = todayInMalaysia(new Date("2026-11-25T17:00:00Z"));
    expect(today.toISOString()).toBe("2026-11-26T00:00:00.000Z");
  });
  it("is the same day at 15:59 UTC", () => {
    const today = todayInMalaysia(new Date("2026-11-25T15:59:00Z"));
    expect(today.toISOString()).toBe("2026-11-25T00:00:00.000Z");
  });
});
