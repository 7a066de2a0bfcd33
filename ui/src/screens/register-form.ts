//! The registration form. For a MyKad the birth date and sex come from the number: the fields
//! are disabled and show a live preview; the Rust side derives and validates the real values.

import { api } from "../api";
import { formatDate, parseDayMonthYear } from "../dates";
import { h, testId } from "../dom";
import { placeErrors, toCommandError } from "../errors";
import { clearFieldErrors, formField, formMessage, setFieldError, showFieldErrors } from "../forms";
import { previewMykad } from "../mykad";
import { t } from "../strings";
import type { IdType, PatientView, RegisterPatientForm, Sex } from "../wire";

const ID_TYPES: readonly IdType[] = ["mykad", "passport", "army_police", "old_ic"];

/** What a MyKad preview tells the person typing, and how loudly. */
export function mykadPreviewText(idNumber: string): { text: string; tone: "info" | "warning" } | null {
  const preview = previewMykad(idNumber);
  switch (preview.kind) {
    case "incomplete":
      return null;
    case "bad_date":
      return { text: t.mykadPreviewBadDate, tone: "warning" };
    case "bad_place_of_birth":
      return { text: t.mykadPreviewBadPlace, tone: "warning" };
    case "ok":
      return { text: t.mykadPreview(formatDate(preview.dateOfBirth), t.sexes[preview.sex]), tone: "info" };
  }
}

export function registerForm(onRegistered: (patient: PatientView) => void): HTMLElement {
  const fullName = h("input", {
    ...testId("patient-full-name"),
    name: "full_name",
    type: "text",
    autocomplete: "off",
    autocapitalize: "words",
    spellcheck: "false",
  });
  const idType = h(
    "select",
    { ...testId("patient-id-type"), name: "id_type" },
    ...ID_TYPES.map((value) => h("option", { value }, t.idTypes[value])),
  );
  const idNumber = h("input", {
    ...testId("patient-id-number"),
    name: "id_number",
    type: "text",
    autocomplete: "off",
    spellcheck: "false",
    class: "mono",
  });
  const phone = h("input", {
    ...testId("patient-phone"),
    name: "phone",
    type: "tel",
    autocomplete: "off",
    placeholder: t.phoneHint,
  });
  const dateOfBirth = h("input", {
    ...testId("patient-dob"),
    name: "date_of_birth",
    type: "text",
    inputmode: "numeric",
    autocomplete: "off",
    placeholder: t.dateOfBirthHint,
  });
  const sex = h(
    "select",
    { ...testId("patient-sex"), name: "sex" },
    h("option", { value: "" }, t.sexChoose),
    h("option", { value: "male" }, t.sexes.male),
    h("option", { value: "female" }, t.sexes.female),
  );

  const fields = {
    full_name: formField({ name: "full_name", label: t.fullName, control: fullName, hint: t.fullNameHint }),
    id_type: formField({ name: "id_type", label: t.idType, control: idType }),
    id_number: formField({ name: "id_number", label: t.idNumber, control: idNumber, hint: t.idNumberHintMykad }),
    phone: formField({ name: "phone", label: t.phone, control: phone }),
    date_of_birth: formField({
      name: "date_of_birth",
      label: t.dateOfBirth,
      control: dateOfBirth,
      hint: t.dateOfBirthFromMykad,
    }),
    sex: formField({ name: "sex", label: t.sex, control: sex }),
  };
  const allFields = Object.values(fields);
  const preview = h("p", { ...testId("mykad-preview"), class: "mykad-preview", "aria-live": "polite", hidden: true });
  fields.id_number.wrapper.append(preview);

  const message = formMessage("form-message");
  const submit = h("button", { ...testId("patient-submit"), type: "submit", class: "primary" }, t.register);

  const isMykad = (): boolean => idType.value === "mykad";

  /** Keeps the derived fields and the preview in step with the ID type and number. */
  const refreshDerived = (): void => {
    const mykad = isMykad();
    dateOfBirth.disabled = mykad;
    sex.disabled = mykad;
    if (fields.id_number.hint) fields.id_number.hint.textContent = mykad ? t.idNumberHintMykad : t.idNumberHintOther;
    if (fields.date_of_birth.hint) fields.date_of_birth.hint.textContent = mykad ? t.dateOfBirthFromMykad : t.dateOfBirthHint;
    idNumber.classList.toggle("mono", mykad);
    if (!mykad) {
      preview.hidden = true;
      return;
    }
    const parsed = previewMykad(idNumber.value);
    dateOfBirth.value = parsed.kind === "ok" ? formatDate(parsed.dateOfBirth) : "";
    sex.value = parsed.kind === "ok" ? parsed.sex : "";
    const shown = mykadPreviewText(idNumber.value);
    // The error from the desk says it better than the preview; don't say it twice.
    preview.hidden = shown === null || fields.id_number.wrapper.classList.contains("has-error");
    preview.textContent = shown?.text ?? "";
    preview.dataset.tone = shown?.tone ?? "";
  };

  idType.addEventListener("change", () => {
    if (!isMykad()) {
      // The values were derived from a MyKad; a passport holder's must be typed afresh.
      dateOfBirth.value = "";
      sex.value = "";
    }
    setFieldError(fields.date_of_birth, undefined);
    setFieldError(fields.sex, undefined);
    refreshDerived();
  });
  idNumber.addEventListener("input", refreshDerived);

  const reset = (): void => {
    for (const control of [fullName, idNumber, phone, dateOfBirth]) control.value = "";
    idType.value = "mykad";
    sex.value = "";
    refreshDerived();
  };

  const form = h(
    "form",
    { class: "card register", novalidate: true, "aria-labelledby": "register-title", id: "register-form" },
    h("h2", { id: "register-title" }, t.registerTitle),
    message.element,
    fields.full_name.wrapper,
    h("div", { class: "row" }, fields.id_type.wrapper, fields.id_number.wrapper),
    fields.phone.wrapper,
    h("div", { class: "row" }, fields.date_of_birth.wrapper, fields.sex.wrapper),
    h("div", { class: "actions" }, submit),
  );

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    message.clear();
    clearFieldErrors(allFields);

    const mykad = isMykad();
    let isoDateOfBirth: string | null = null;
    if (!mykad && dateOfBirth.value.trim() !== "") {
      isoDateOfBirth = parseDayMonthYear(dateOfBirth.value);
      if (isoDateOfBirth === null) {
        showFieldErrors(allFields, { date_of_birth: t.badDateOfBirth });
        return;
      }
    }
    const request: RegisterPatientForm = {
      full_name: fullName.value.trim(),
      id_type: idType.value as IdType,
      id_number: idNumber.value.trim(),
      phone: phone.value.trim(),
      date_of_birth: mykad ? null : isoDateOfBirth,
      sex: mykad || sex.value === "" ? null : (sex.value as Sex),
    };

    submit.disabled = true;
    submit.textContent = t.registering;
    form.setAttribute("aria-busy", "true");
    try {
      const patient = await api.registerPatient(request);
      reset();
      message.success(t.registered(patient.full_name));
      fullName.focus();
      onRegistered(patient);
    } catch (reason) {
      const placed = placeErrors(toCommandError(reason), allFields.map((f) => f.name));
      message.error(placed.general);
      showFieldErrors(allFields, placed.byField);
      refreshDerived();
    } finally {
      submit.disabled = false;
      submit.textContent = t.register;
      form.removeAttribute("aria-busy");
    }
  });

  refreshDerived();
  return form;
}
