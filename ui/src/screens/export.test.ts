import { describe, expect, it } from "vitest";
import { exportLines } from "./export";

describe("export panel", () => {
  it("lists each file with its number of records", () => {
    expect(
      exportLines({
        folder: "/tmp/Kaunter export",
        files: [
          { name: "patients.csv", records: 12 },
          { name: "cash_movements.csv", records: 1 },
        ],
        clinical_included: false,
      }),
    ).toEqual(["patients.csv: 12 records", "cash_movements.csv: 1 record"]);
  });
});
