//! The changes the server refused, with its reasons. They stay on this desk (nothing typed is
//! lost) and out of later pushes; this is where a person sees what they were and why, and
//! discards one to get the server's version of the record back.

import { api } from "../api";
import { formatSyncTime } from "../dates";
import { dialog, h, mount, testId } from "../dom";
import { toCommandError } from "../errors";
import { t } from "../strings";
import type { RefusedChangeView } from "../wire";

export function refusedPanel(): { element: HTMLElement; open(): void } {
  const list = h("ul", { ...testId("refused-list"), class: "refused-list" });
  const message = h("p", { ...testId("refused-message"), class: "form-message", role: "status" });
  const element = dialog(
    "refused",
    t.refusedTitle,
    t.close,
    message,
    list,
  );

  const render = (refused: RefusedChangeView[]): void => {
    message.textContent = refused.length === 0 ? t.noRefused : t.refusedIntro;
    mount(
      list,
      ...refused.map((change) => {
        const discard = h(
          "button",
          { type: "button", class: "secondary", "data-testid": "refused-discard", title: t.discardRefusedHint },
          t.discardRefused,
        );
        discard.addEventListener("click", async () => {
          discard.disabled = true;
          try {
            render(await api.discardRefusedChange(change.seq));
          } catch (reason) {
            message.textContent = toCommandError(reason).message;
            discard.disabled = false;
          }
        });
        return h(
          "li",
          { "data-testid": "refused-change", "data-code": change.code },
          h("strong", {}, change.message),
          " ",
          h(
            "span",
            { class: "field-hint" },
            t.refusedDetail(change.fields.join(", "), formatSyncTime(change.recorded_at) ?? change.recorded_at, change.code),
          ),
          " ",
          discard,
        );
      }),
    );
  };

  const refresh = async (): Promise<void> => {
    try {
      render(await api.refusedChanges());
    } catch (reason) {
      message.textContent = toCommandError(reason).message;
    }
  };

  return {
    element,
    open: () => {
      element.hidden = false;
      void refresh();
    },
  };
}
