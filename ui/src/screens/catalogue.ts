//! The business's catalogue of products and services: the same at every branch. Everyone who
//! sells or books sees it; someone whose role manages the catalogue adds and changes items. A
//! change travels as the fields that changed only, so two branches editing different fields of
//! one item both keep their edit.

import { api } from "../api";
import { dialog, h, mount, testId } from "../dom";
import { placeErrors, toCommandError } from "../errors";
import { clearFieldErrors, formField, formMessage, showFieldErrors } from "../forms";
import { t } from "../strings";
import type { CatalogueItemForm, CatalogueItemRecord, CatalogueKind, TaxCode } from "../wire";

const KINDS: readonly CatalogueKind[] = ["service", "product"];
const TAXES: readonly TaxCode[] = ["exempt", "service_6", "service_8"];

/** "RM 1,234.50" from the wire's "1234.50". */
export function ringgitLabel(amount: string): string {
  const [whole = "0", cents = "00"] = amount.split(".");
  return `RM ${whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${cents}`;
}

/** One line of the list: what the item is, its price and tax, and how long a service takes. */
export function catalogueLine(item: CatalogueItemRecord): string {
  const parts = [t.catalogueKinds[item.kind], ringgitLabel(item.price), t.taxCodes[item.tax]];
  if (item.duration_minutes !== null) parts.push(t.minutes(item.duration_minutes));
  if (!item.active) parts.push(t.catalogueInactive);
  return parts.join(" · ");
}

/** The form's values as the command takes them; an empty duration is none. `opened` is the
 *  item as the form showed it (null for a new item): only what the person changed travels. */
export function catalogueForm(values: {
  opened: CatalogueItemRecord | null;
  kind: CatalogueKind;
  code: string;
  name: string;
  price: string;
  tax: TaxCode;
  duration: string;
  active: boolean;
}): CatalogueItemForm | { field: "duration_minutes"; message: string } {
  const duration = values.duration.trim();
  let minutes: number | null = null;
  if (values.kind === "service" && duration !== "") {
    if (!/^\d{1,4}$/.test(duration)) return { field: "duration_minutes", message: t.durationInvalid };
    minutes = Number(duration);
  }
  return {
    id: values.opened?.id ?? null,
    opened: values.opened,
    kind: values.kind,
    code: values.code,
    name: values.name,
    price: values.price,
    tax: values.tax,
    duration_minutes: minutes,
    active: values.active,
  };
}

export function cataloguePanel(): { element: HTMLElement; open(): void } {
  const list = h("ul", { ...testId("catalogue-list"), class: "refused-list" });
  const listMessage = h("p", { ...testId("catalogue-empty"), class: "form-message", role: "status" });
  const showInactive = h("input", { ...testId("catalogue-show-inactive"), type: "checkbox" });

  let editing: CatalogueItemRecord | null = null;
  const kind = h(
    "select",
    { ...testId("catalogue-kind"), name: "kind" },
    ...KINDS.map((value) => h("option", { value }, t.catalogueKinds[value])),
  );
  const code = h("input", { ...testId("catalogue-code"), name: "code", type: "text", autocomplete: "off", class: "mono" });
  const name = h("input", { ...testId("catalogue-name"), name: "name", type: "text", autocomplete: "off" });
  const price = h("input", { ...testId("catalogue-price"), name: "price", type: "text", inputmode: "decimal" });
  const tax = h(
    "select",
    { ...testId("catalogue-tax"), name: "tax" },
    ...TAXES.map((value) => h("option", { value }, t.taxCodes[value])),
  );
  const duration = h("input", { ...testId("catalogue-duration"), name: "duration_minutes", type: "text", inputmode: "numeric" });
  const active = h("input", { ...testId("catalogue-active"), name: "active", type: "checkbox", checked: true });
  const fields = [
    formField({ name: "kind", label: t.catalogueKind, control: kind }),
    formField({ name: "code", id: "catalogue-code", label: t.catalogueCode, control: code, hint: t.catalogueCodeHint }),
    formField({ name: "name", label: t.catalogueName, control: name }),
    formField({ name: "price", label: t.cataloguePrice, control: price, hint: t.cataloguePriceHint }),
    formField({ name: "tax", label: t.catalogueTax, control: tax }),
    formField({ name: "duration_minutes", label: t.catalogueDuration, control: duration, hint: t.catalogueDurationHint }),
  ];
  const message = formMessage("catalogue-message");
  const submit = h("button", { ...testId("catalogue-submit"), type: "submit", class: "primary" }, t.catalogueAdd);
  const cancel = h("button", { ...testId("catalogue-cancel"), type: "button", class: "secondary", hidden: true }, t.catalogueCancelEdit);
  const form = h(
    "form",
    { ...testId("catalogue-form"), novalidate: true },
    message.element,
    ...fields.map((f) => f.wrapper),
    h("label", { class: "checkbox" }, active, " ", t.catalogueActive),
    h("div", { class: "actions" }, submit, cancel),
  );
  const syncDuration = (): void => {
    duration.disabled = kind.value !== "service";
    if (duration.disabled) duration.value = "";
  };
  kind.addEventListener("change", syncDuration);

  const element = dialog(
    "catalogue",
    t.catalogueTitle,
    t.close,
    h("p", { class: "field-hint" }, t.catalogueIntro),
    h("label", { class: "checkbox" }, showInactive, " ", t.catalogueShowInactive),
    listMessage,
    list,
    form,
  );

  const startEditing = (item: CatalogueItemRecord | null): void => {
    editing = item;
    kind.value = item?.kind ?? "service";
    code.value = item?.code ?? "";
    name.value = item?.name ?? "";
    price.value = item?.price ?? "";
    tax.value = item?.tax ?? "exempt";
    duration.value = item?.duration_minutes?.toString() ?? "";
    active.checked = item?.active ?? true;
    syncDuration();
    submit.textContent = item ? t.catalogueSave : t.catalogueAdd;
    cancel.hidden = item === null;
    clearFieldErrors(fields);
  };

  const render = (items: CatalogueItemRecord[]): void => {
    listMessage.textContent = items.length === 0 ? t.catalogueEmpty : "";
    mount(
      list,
      ...items.map((item) => {
        const change = h("button", { type: "button", class: "secondary", "data-testid": "catalogue-edit" }, t.catalogueEdit);
        change.addEventListener("click", () => {
          message.clear();
          startEditing(item);
          name.focus();
        });
        return h(
          "li",
          { "data-testid": "catalogue-item", "data-code": item.code, "data-active": String(item.active) },
          h("strong", {}, `${item.code} — ${item.name}`),
          " ",
          h("span", { class: "field-hint" }, catalogueLine(item)),
          " ",
          change,
        );
      }),
    );
  };

  const refresh = async (): Promise<void> => {
    try {
      render(await api.listCatalogue(showInactive.checked));
    } catch (reason) {
      listMessage.textContent = toCommandError(reason).message;
    }
  };
  showInactive.addEventListener("change", () => void refresh());

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    message.clear();
    clearFieldErrors(fields);
    const typed = catalogueForm({
      opened: editing,
      kind: kind.value as CatalogueKind,
      code: code.value,
      name: name.value,
      price: price.value,
      tax: tax.value as TaxCode,
      duration: duration.value,
      active: active.checked,
    });
    if ("field" in typed) {
      showFieldErrors(fields, { [typed.field]: typed.message });
      return;
    }
    submit.disabled = true;
    try {
      const saved = await api.saveCatalogueItem(typed);
      message.success(editing ? t.catalogueSaved(saved.name) : t.catalogueAdded(saved.name));
      startEditing(null);
      await refresh();
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
  cancel.addEventListener("click", () => {
    message.clear();
    startEditing(null);
  });

  return {
    element,
    open: () => {
      element.hidden = false;
      startEditing(null);
      void refresh();
    },
  };
}
