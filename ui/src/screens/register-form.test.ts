import { describe, expect, it } from "vitest";
import { mykadPreviewText } from "./register-form";

// The preview depends on today's date only for the century; these numbers are unambiguous.
describe("mykadPreviewText", () => {
  it("says nothing until all 12 digits are there", () => {
    expect(mykadPreviewText("790111-10-53")).toBeNull();
  });
  it("shows the derived date as DD/MM/YYYY and the sex", () => {
    expect(mykadPreviewText("790111-10-5342")).toEqual({ text: "From the MyKad: born 11/01/1979, female.", tone: "info" });
    expect(mykadPreviewText("790111105343")).toEqual({ text: "From the MyKad: born 11/01/1979, male.", tone: "info" });
  });
  it("warns about a bad place of birth or date", () => {
    expect(mykadPreviewText("900101-00-1234")?.tone).toBe("warning");
    expect(mykadPreviewText("900101-00-1234")?.text).toMatch(/place-of-birth/);
    expect(mykadPreviewText("901301-14-1234")?.text).toMatch(/not a real date/);
  });
});
