//! Form plumbing shared by the screens: a labelled control with its hint and its error slot,
//! and the message at the top of a form.

import { h, testId } from "./dom";

export type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

export type FormField = {
  name: string;
  control: Control;
  wrapper: HTMLElement;
  hint: HTMLElement | null;
  error: HTMLElement;
};

/**
 * A label, the control, an optional hint and an error slot (`#error-<id>`, the id being the
 * name unless given: two forms on one screen with a field of one name need their own), wired
 * together with aria-describedby so a screen reader reads the hint and the error with the field.
 */
export function formField(options: { name: string; label: string; control: Control; hint?: string; id?: string }): FormField {
  const { name, label, control } = options;
  const id = options.id ?? name;
  const hintId = `hint-${id}`;
  const hint = options.hint ? h("p", { class: "field-hint", id: hintId }, options.hint) : null;
  const error = h("p", { ...testId(`error-${id}`), class: "field-error", hidden: true });
  control.setAttribute("aria-describedby", [hint ? hintId : null, error.id].filter(Boolean).join(" "));
  const wrapper = h(
    "div",
    { class: "field", "data-field": name },
    h("label", { for: control.id }, label),
    control,
    hint,
    error,
  );
  // Once the person changes a field, its old error no longer describes what is there.
  const clearOwnError = (): void => setFieldError(field, undefined);
  control.addEventListener(control instanceof HTMLSelectElement ? "change" : "input", clearOwnError);
  const field: FormField = { name, control, wrapper, hint, error };
  return field;
}

export function setFieldError(field: FormField, message: string | undefined): void {
  if (message) {
    field.error.textContent = message;
    field.error.hidden = false;
    field.control.setAttribute("aria-invalid", "true");
    field.wrapper.classList.add("has-error");
  } else {
    field.error.textContent = "";
    field.error.hidden = true;
    field.control.removeAttribute("aria-invalid");
    field.wrapper.classList.remove("has-error");
  }
}

/** Shows `byField` next to the fields; clears the others. Focuses the first field in error. */
export function showFieldErrors(fields: readonly FormField[], byField: Record<string, string>): void {
  let focused = false;
  for (const field of fields) {
    const message = byField[field.name];
    setFieldError(field, message);
    if (message && !focused && !field.control.disabled) {
      field.control.focus();
      focused = true;
    }
  }
}

export function clearFieldErrors(fields: readonly FormField[]): void {
  for (const field of fields) setFieldError(field, undefined);
}

/** The message at the top of a form: success in green, errors in red, announced either way. */
export type FormMessage = {
  element: HTMLElement;
  success(text: string): void;
  error(text: string): void;
  clear(): void;
};

export function formMessage(id: string): FormMessage {
  const element = h("div", { ...testId(id), class: "form-message", role: "status", "aria-live": "polite", hidden: true });
  const show = (text: string, kind: "success" | "error"): void => {
    element.textContent = text;
    element.dataset.kind = kind;
    element.setAttribute("role", kind === "error" ? "alert" : "status");
    element.hidden = false;
  };
  return {
    element,
    success: (text) => show(text, "success"),
    error: (text) => show(text, "error"),
    clear: () => {
      element.textContent = "";
      delete element.dataset.kind;
      element.hidden = true;
    },
  };
}
