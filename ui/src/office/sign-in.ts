//! The sign-in form: business ID, e-mail and password, and the authenticator code once the
//! server asks for it (`totp_required`). Every refusal is one plain sentence above the form.

import { h, testId } from "../dom";
import type { OfficeApi } from "./api";
import { toRefusal } from "./api";
import { signInMessage } from "./format";
import { t } from "./strings";
import type { SessionView } from "../wire";

function field(id: string, label: string, input: HTMLInputElement, hint?: string): HTMLElement {
  const hintId = `${id}-hint`;
  if (hint) input.setAttribute("aria-describedby", hintId);
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("p", { class: "field-hint", id: hintId }, hint) : null,
  );
}

/**
 * The sign-in screen. `notice` (why the person is here: signed out, session ended) shows above
 * the form; `onSignedIn` gets the new session.
 */
export function signInScreen(api: OfficeApi, onSignedIn: (session: SessionView) => void, notice = ""): HTMLElement {
  const business = h("input", {
    ...testId("sign-in-business"),
    name: "business",
    autocomplete: "organization",
    autocapitalize: "none",
    spellcheck: "false",
    required: true,
  });
  const email = h("input", {
    ...testId("sign-in-email"),
    name: "email",
    type: "email",
    autocomplete: "username",
    required: true,
  });
  const password = h("input", {
    ...testId("sign-in-password"),
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const totp = h("input", {
    ...testId("sign-in-totp"),
    name: "totp",
    inputmode: "numeric",
    autocomplete: "one-time-code",
    pattern: "[0-9]{6}",
    maxlength: 6,
  });
  const totpField = field("sign-in-totp", t.totpCode, totp, t.totpHint);
  totpField.hidden = true;
  const message = h("p", {
    ...testId("sign-in-error"),
    class: "form-message",
    role: "alert",
    "data-kind": "error",
    hidden: true,
  });
  const info = h("p", { ...testId("sign-in-notice"), class: "form-message", "data-kind": "success", role: "status" }, notice);
  info.hidden = notice === "";
  const submit = h("button", { ...testId("sign-in-submit"), type: "submit", class: "primary" }, t.signIn);

  const form = h(
    "form",
    { ...testId("sign-in-form"), class: "card setup-card", novalidate: true, "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, t.signInTitle),
    h("p", { class: "lead" }, t.signInIntro),
    info,
    message,
    field("sign-in-business", t.business, business, t.businessHint),
    field("sign-in-email", t.email, email),
    field("sign-in-password", t.password, password),
    totpField,
    h("div", { class: "actions" }, submit),
  );

  const showError = (text: string): void => {
    info.hidden = true;
    message.textContent = text;
    message.hidden = false;
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void (async () => {
      if (!business.value.trim() || !email.value.trim() || !password.value) {
        showError(t.fillEveryField);
        return;
      }
      submit.disabled = true;
      submit.textContent = t.signingIn;
      message.hidden = true;
      try {
        const session = await api.login({
          business: business.value.trim(),
          email: email.value.trim(),
          password: password.value,
          totp_code: totpField.hidden || totp.value.trim() === "" ? null : totp.value.trim(),
        });
        password.value = "";
        onSignedIn(session);
      } catch (reason) {
        const refusal = toRefusal(reason);
        if (refusal.code === "totp_required" || refusal.code === "totp_invalid") {
          totpField.hidden = false;
          totp.value = "";
          totp.focus();
        }
        showError(signInMessage(refusal));
      } finally {
        submit.disabled = false;
        submit.textContent = t.signIn;
      }
    })();
  });

  return h("main", { class: "setup office-sign-in" }, form);
}
