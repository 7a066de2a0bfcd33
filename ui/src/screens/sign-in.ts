//! Who is at the desk. Once anyone in the business has a desk PIN, the desk asks the person in
//! front of it to sign in (their name, then their six digits, checked on this computer, so it
//! works with the network gone) and names them on everything they do; "Switch user" hands a
//! shared till to the next person in a moment.

import { api } from "../api";
import { h, mount, testId } from "../dom";
import { toCommandError } from "../errors";
import { t } from "../strings";
import type { DeskPeopleView, StaffEntry } from "../wire";

export interface SignIn {
  /** The panel, shown over the desk when someone must sign in. */
  element: HTMLElement;
  /** "Signed in: …" and the Switch user button, for the top bar. */
  badge: HTMLElement;
  /** Asks the shell again (the roster arrives with a sync round). */
  refresh(): Promise<void>;
}

/** `onChange` hears every new view (to make the desk inert while someone must sign in, and to
 *  refresh what it shows when the person changes). */
export function signIn(onChange: (view: DeskPeopleView) => void = () => {}): SignIn {
  const people = h("div", { ...testId("sign-in-people"), class: "sign-in-people", role: "list" });
  const pin = h("input", {
    ...testId("sign-in-pin"),
    id: "sign-in-pin",
    type: "password",
    inputmode: "numeric",
    autocomplete: "off",
    maxlength: "6",
    "aria-label": t.signInPin,
  }) as HTMLInputElement;
  const message = h("p", { ...testId("sign-in-message"), class: "form-message", role: "alert" });
  const submit = h("button", { ...testId("sign-in-submit"), type: "submit", class: "primary" }, t.signInSubmit);
  const chosenLabel = h("p", { ...testId("sign-in-chosen"), class: "lead" }, t.signInChoose);
  const form = h(
    "form",
    { class: "sign-in-form" },
    chosenLabel,
    h("label", { for: "sign-in-pin" }, t.signInPin),
    pin,
    message,
    h("div", { class: "actions" }, submit),
  );
  // A full-window overlay: nothing of the desk behind it can be reached until someone signs in.
  const element = h(
    "div",
    { ...testId("sign-in-panel"), class: "sign-in-overlay", hidden: true },
    h(
      "section",
      {
        class: "card sign-in-panel",
        role: "dialog",
        "aria-modal": "true",
        "aria-labelledby": "sign-in-title",
      },
      h("h2", { id: "sign-in-title" }, t.signInTitle),
      people,
      form,
    ),
  );
  const who = h("span", { ...testId("signed-in-name"), class: "signed-in-name" });
  const switchUser = h("button", { ...testId("switch-user"), type: "button", class: "secondary" }, t.switchUser);
  const badge = h("div", { class: "signed-in", hidden: true }, who, switchUser);

  let chosen: StaffEntry | null = null;
  // The roster the buttons were built from: rebuilt only when it changes, so a poll never
  // swaps a button out from under a click.
  let shown = "";
  // Bumped before and after every sign-in and sign-out: a poll sent before one finished may
  // have been answered from before it, and is dropped.
  let epoch = 0;
  const choose = (person: StaffEntry): void => {
    chosen = person;
    chosenLabel.textContent = t.signInAs(person.name);
    for (const button of people.querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.userId === person.user_id));
    }
    pin.value = "";
    message.textContent = "";
    pin.focus();
  };

  const render = (view: DeskPeopleView): void => {
    badge.hidden = view.signed_in === null;
    who.textContent = view.signed_in ? t.signedInAs(view.signed_in.name) : "";
    const mustSignIn = view.sign_in_required && view.signed_in === null;
    if (mustSignIn && element.hidden) {
      chosen = null;
      chosenLabel.textContent = t.signInChoose;
      pin.value = "";
      message.textContent = "";
    }
    element.hidden = !mustSignIn;
    onChange(view);
    const roster = view.staff.map((person) => `${person.user_id}:${person.name}`).join("|");
    if (roster === shown) return;
    shown = roster;
    mount(
      people,
      ...view.staff.map((person) => {
        const button = h(
          "button",
          {
            type: "button",
            class: "secondary",
            role: "listitem",
            "data-testid": "sign-in-person",
            "data-user-id": person.user_id,
            "aria-pressed": String(chosen?.user_id === person.user_id),
          },
          person.name,
        );
        button.addEventListener("click", () => choose(person));
        return button;
      }),
    );
  };

  const refresh = async (): Promise<void> => {
    const asked = epoch;
    try {
      const view = await api.deskPeople();
      if (asked === epoch) render(view);
    } catch (reason) {
      message.textContent = toCommandError(reason).message;
    }
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chosen) {
      message.textContent = t.signInChoose;
      return;
    }
    submit.disabled = true;
    epoch += 1;
    try {
      const view = await api.signIn({ user_id: chosen.user_id, pin: pin.value });
      // Again after the answer: a poll sent while the shell was signing in may have been
      // answered from before it.
      epoch += 1;
      render(view);
    } catch (reason) {
      const error = toCommandError(reason);
      message.textContent = error.fields[0]?.message ?? error.message;
      pin.value = "";
      pin.focus();
    } finally {
      submit.disabled = false;
    }
  });
  switchUser.addEventListener("click", async () => {
    epoch += 1;
    try {
      const view = await api.signOut();
      epoch += 1;
      render(view);
    } catch (reason) {
      message.textContent = toCommandError(reason).message;
    }
  });

  return { element, badge, refresh };
}
