//! Reconnecting a desk head office removed (or whose credentials were lost): a new enrolment
//! code of the desk's own branch gives this same desk new credentials. Nothing on the desk is
//! touched: its records and the changes waiting to be sent stay and sync once it is back.

import { api } from "../api";
import { dialog, h, testId } from "../dom";
import { placeErrors, toCommandError } from "../errors";
import { clearFieldErrors, formField, formMessage, showFieldErrors } from "../forms";
import { t } from "../strings";

export function reconnectPanel(onReconnected: () => void): { element: HTMLElement; open(): void } {
  const code = h("input", {
    ...testId("reconnect-code"),
    name: "code",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    class: "mono",
  });
  const fields = [formField({ name: "code", id: "reconnect-code", label: t.reconnectCode, control: code, hint: t.setupCodeHint })];
  const message = formMessage("reconnect-message");
  const submit = h("button", { ...testId("reconnect-submit"), type: "submit", class: "primary" }, t.reconnectSubmit);
  const form = h(
    "form",
    { ...testId("reconnect-form"), novalidate: true },
    message.element,
    ...fields.map((f) => f.wrapper),
    h("div", { class: "actions" }, submit),
  );
  const element = dialog(
    "reconnect",
    t.reconnectTitle,
    t.close,
    h("p", { class: "lead" }, t.reconnectIntro),
    form,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    message.clear();
    clearFieldErrors(fields);
    submit.disabled = true;
    try {
      await api.reenrol(code.value);
      message.success(t.reconnectDone);
      code.value = "";
      onReconnected();
    } catch (reason) {
      const placed = placeErrors(
        toCommandError(reason),
        fields.map((f) => f.name),
      );
      message.error(placed.general);
      showFieldErrors(fields, placed.byField);
    } finally {
      submit.disabled = false;
    }
  });
  return {
    element,
    open: () => {
      element.hidden = false;
      message.clear();
      code.focus();
    },
  };
}
