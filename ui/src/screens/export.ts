//! "Export data": the desk writes everything it holds into a new folder of CSV files, in every
//! subscription state, and this panel says where, how many records each file has, and that the
//! folder holds personal data in the clear.

import { api } from "../api";
import { dialog, h, testId } from "../dom";
import { toCommandError } from "../errors";
import { t } from "../strings";
import type { ExportView } from "../wire";

export type ExportPanel = { element: HTMLElement; open(): Promise<void> };

/** The lines the panel shows for an export. */
export function exportLines(view: ExportView): string[] {
  return view.files.map((file) => t.exportFile(file.name, file.records));
}

export function exportPanel(): ExportPanel {
  const folder = h("p", { ...testId("export-folder"), class: "export-folder" }, "");
  const list = h("ul", { ...testId("export-files"), class: "export-files" });
  const note = h("p", { class: "muted" }, "");
  const message = h("p", { ...testId("export-message"), class: "status-error", role: "alert" }, "");
  const element = dialog("export", t.exportTitle, t.close, folder, list, note, message);

  const open = async (): Promise<void> => {
    element.hidden = false;
    folder.textContent = t.exportWorking;
    list.replaceChildren();
    note.textContent = "";
    message.hidden = true;
    try {
      const view = await api.exportData();
      folder.textContent = t.exportDone(view.folder);
      list.replaceChildren(...exportLines(view).map((line) => h("li", {}, line)));
      note.textContent = view.clinical_included ? t.exportPrivateClinical : t.exportPrivate;
    } catch (reason) {
      folder.textContent = "";
      message.textContent = toCommandError(reason).message;
      message.hidden = false;
    }
  };
  return { element, open };
}
