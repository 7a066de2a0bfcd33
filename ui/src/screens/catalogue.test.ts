import { describe, expect, it } from "vitest";
import type { CatalogueItemRecord } from "../wire";
import { catalogueForm, catalogueLine, ringgitLabel } from "./catalogue";

const facial: CatalogueItemRecord = {
  id: "0193a6f0-0000-7000-8000-000000000001",
  branch_id: "0193a6f0-0000-7000-8000-000000000002",
  kind: "service",
  code: "SVC-01",
  name: "Facial",
  price: "1234.50",
  tax: "service_8",
  duration_minutes: 60,
  active: true,
};

const typed = {
  opened: null,
  kind: "service" as const,
  code: "SVC-01",
  name: "Facial",
  price: "45",
  tax: "exempt" as const,
  duration: "",
  active: true,
};

describe("catalogue", () => {
  it("shows prices in ringgit with thousands grouped", () => {
    expect(ringgitLabel("0.00")).toBe("RM 0.00");
    expect(ringgitLabel("45.50")).toBe("RM 45.50");
    expect(ringgitLabel("1234.50")).toBe("RM 1,234.50");
    expect(ringgitLabel("9999999.99")).toBe("RM 9,999,999.99");
  });

  it("describes an item on one line", () => {
    expect(catalogueLine(facial)).toBe("Service · RM 1,234.50 · Service tax 8% · 60 minutes");
    expect(catalogueLine({ ...facial, kind: "product", duration_minutes: null, tax: "exempt", active: false })).toBe(
      "Product · RM 1,234.50 · No tax · not offered",
    );
  });

  it("turns the form into the command's shape, a service's duration in whole minutes", () => {
    expect(catalogueForm(typed)).toEqual({
      id: null,
      opened: null,
      kind: "service",
      code: "SVC-01",
      name: "Facial",
      price: "45",
      tax: "exempt",
      duration_minutes: null,
      active: true,
    });
    expect(catalogueForm({ ...typed, duration: " 30 " })).toMatchObject({ duration_minutes: 30 });
    expect(catalogueForm({ ...typed, duration: "half an hour" })).toEqual({
      field: "duration_minutes",
      message: "Enter whole minutes, e.g. 30.",
    });
    // An edit names the item and carries it as the form showed it.
    expect(catalogueForm({ ...typed, opened: facial })).toMatchObject({ id: facial.id, opened: facial });
    // A product has no duration, whatever the field held.
    expect(catalogueForm({ ...typed, kind: "product", duration: "30" })).toMatchObject({ duration_minutes: null });
  });
});
