//! Which of the desk's screens to show for the modules the business has switched on (the
//! `licence_modules` of the desk's current lease). Decided here without the DOM and tested in
//! modules.test.ts; desk.ts applies it at every status poll.
//!
//! Screens that belong to one module appear only while it is on. What every module shares (the
//! status bar and sync, the catalogue, Export data, who is at the desk, enrolment) is always
//! there. Nothing is hidden from export or deleted: a module switched off only stops showing
//! its screens, and switching it on again shows them with everything they held.

import { t } from "./strings";
import type { SyncStatusView } from "./wire";

/** A screen of the desk that belongs to one module. */
export type ModuleScreen = "registration" | "patients" | "clinical" | "conflicts";

/** The module each module-specific screen belongs to (today the desk's are the clinic's). */
export const SCREEN_MODULES: Readonly<Record<ModuleScreen, string>> = {
  registration: "CLINIC",
  patients: "CLINIC",
  clinical: "CLINIC",
  conflicts: "CLINIC",
};

export const MODULE_SCREENS = Object.keys(SCREEN_MODULES) as ModuleScreen[];

export type DeskModules = {
  /** The module-specific screens to show. */
  shown: ReadonlySet<ModuleScreen>;
  /**
   * When no screen of this desk belongs to a switched-on module: which modules are on and
   * who switches them. Null otherwise.
   */
  notice: string | null;
};

const moduleName = (module: string): string => t.moduleNames[module] ?? module;

/** `A`, `A and B`, `A, B and C`. */
function listOf(names: string[]): string {
  if (names.length <= 1) return names.join("");
  return `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/**
 * What the desk shows for `status` (null before the first poll). A desk with no lease yet (a
 * new desk before its first sync) shows every screen, as it did before modules existed, so no
 * new desk is locked out.
 */
export function deskModules(status: Pick<SyncStatusView, "licence_plan" | "licence_modules"> | null): DeskModules {
  if (status === null || status.licence_plan === null) return { shown: new Set(MODULE_SCREENS), notice: null };
  const on = new Set(status.licence_modules);
  const shown = new Set(MODULE_SCREENS.filter((screen) => on.has(SCREEN_MODULES[screen])));
  if (shown.size > 0) return { shown, notice: null };
  const deskModulesNames = listOf([...new Set(Object.values(SCREEN_MODULES))].map(moduleName));
  const which = status.licence_modules.length === 0 ? t.modulesNoneOn : t.modulesOn(listOf(status.licence_modules.map(moduleName)));
  return { shown, notice: `${which} ${t.modulesNoScreens(deskModulesNames)}` };
}
