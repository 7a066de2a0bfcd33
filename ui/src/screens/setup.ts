//! First run: enrol this desk with the server using a code from head office.

import { api } from "../api";
import { h, testId } from "../dom";
import { placeErrors, toCommandError } from "../errors";
import { clearFieldErrors, formField, formMessage, showFieldErrors } from "../forms";
import { t } from "../strings";
import type { AppInfo } from "../wire";

export const DEFAULT_SERVER_URL = "http://127.0.0.1:8787";

export function setupScreen(onEnrolled: (info: AppInfo) => void): HTMLElement {
  const serverUrl = h("input", {
    ...testId("setup-server-url"),
    name: "server_url",
    type: "url",
    value: DEFAULT_SERVER_URL,
    autocomplete: "off",
    spellcheck: "false",
  });
  const code = h("input", {
    ...testId("setup-code"),
    name: "code",
    type: "text",
    placeholder: "XXXX-XXXX-XXXX",
    autocomplete: "off",
    autocapitalize: "characters",
    spellcheck: "false",
    class: "mono",
  });
  const deviceName = h("input", {
    ...testId("setup-device-name"),
    name: "device_name",
    type: "text",
    autocomplete: "off",
    placeholder: "Front desk 1",
  });
  const fields = [
    formField({ name: "server_url", label: t.setupServerUrl, control: serverUrl, hint: t.setupServerUrlHint }),
    formField({ name: "code", label: t.setupCode, control: code, hint: t.setupCodeHint }),
    formField({ name: "device_name", label: t.setupDeviceName, control: deviceName, hint: t.setupDeviceNameHint }),
  ];
  const message = formMessage("setup-error");
  const submit = h("button", { ...testId("setup-submit"), type: "submit", class: "primary" }, t.setupSubmit);

  const form = h(
    "form",
    { class: "card setup-card", novalidate: true, "aria-labelledby": "setup-title" },
    h("h1", { id: "setup-title" }, t.setupTitle),
    h("p", { class: "lead" }, t.setupIntro),
    message.element,
    ...fields.map((f) => f.wrapper),
    h("div", { class: "actions" }, submit),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    message.clear();
    clearFieldErrors(fields);
    submit.disabled = true;
    submit.textContent = t.setupSubmitting;
    form.setAttribute("aria-busy", "true");
    try {
      const info = await api.enrol({
        server_url: serverUrl.value.trim(),
        code: code.value.trim(),
        device_name: deviceName.value.trim(),
      });
      onEnrolled(info);
    } catch (reason) {
      const placed = placeErrors(toCommandError(reason), fields.map((f) => f.name));
      message.error(placed.general);
      showFieldErrors(fields, placed.byField);
    } finally {
      submit.disabled = false;
      submit.textContent = t.setupSubmit;
      form.removeAttribute("aria-busy");
    }
  });

  queueMicrotask(() => code.focus());
  return h("main", { class: "setup", id: "setup-screen", "data-testid": "setup-screen" }, form);
}
