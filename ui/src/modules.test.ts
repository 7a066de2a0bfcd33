import { describe, expect, it } from "vitest";
import { MODULE_SCREENS, deskModules } from "./modules";

const lease = (modules: string[]) => ({ licence_plan: "PRO", licence_modules: modules });

describe("which screens the desk shows for the modules switched on", () => {
  it.each([
    ["the clinic on", ["CLINIC"], MODULE_SCREENS],
    ["the clinic among others", ["RETAIL_POS", "CLINIC", "SALON"], MODULE_SCREENS],
    ["the clinic off", ["RETAIL_POS"], []],
    ["nothing on", [], []],
  ])("%s", (_, modules, screens) => {
    expect([...deskModules(lease(modules)).shown].sort()).toEqual([...screens].sort());
  });

  it("shows everything before the first status and before any lease", () => {
    for (const status of [null, { licence_plan: null, licence_modules: [] }]) {
      const decision = deskModules(status);
      expect([...decision.shown].sort()).toEqual([...MODULE_SCREENS].sort());
      expect(decision.notice).toBeNull();
    }
  });

  it("says which modules are on, and who switches them, when none of its screens is", () => {
    expect(deskModules(lease(["CLINIC"])).notice).toBeNull();
    const notice = deskModules(lease(["RETAIL_POS", "SALON"])).notice ?? "";
    expect(notice).toMatch(/^Switched on for this business: Retail point of sale and Salon\. /);
    expect(notice).toContain("screens for Clinic only");
    expect(notice).toContain("Head office switches modules on and off");
    expect(notice).toContain("Export data still exports everything");
    expect(deskModules(lease(["RETAIL_POS", "SALON", "EDUCATION"])).notice).toMatch(
      /^Switched on for this business: Retail point of sale, Salon and Education\./,
    );
    expect(deskModules(lease(["SOMETHING_NEW"])).notice).toMatch(/^Switched on for this business: SOMETHING_NEW\./);
    expect(deskModules(lease([])).notice).toMatch(/^No module is switched on for this business\./);
  });
});
