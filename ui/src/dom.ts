//! A few lines of DOM building, so screens read as markup without a framework.

type Attributes = Record<string, string | boolean | number | null | undefined>;
type Child = Node | string | null | undefined | false;

/** Creates an element. `true` sets a boolean attribute, `false`/null/undefined leaves it out. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

/** `id` and `data-testid` together: tests find elements either way. */
export const testId = (id: string): Attributes => ({ id, "data-testid": id });

/** Replaces everything inside `parent`. */
export function mount(parent: Element, ...children: Node[]): void {
  parent.replaceChildren(...children);
}

/**
 * A modal panel, hidden until shown: `#<name>-panel`, titled `title` (`#<name>-title`), with
 * a Close button (`#<name>-close`) that hides it, then `children`.
 */
export function dialog(name: string, title: string, closeLabel: string, ...children: Child[]): HTMLElement {
  const close = h("button", { ...testId(`${name}-close`), type: "button", class: "secondary" }, closeLabel);
  const element = h(
    "section",
    {
      ...testId(`${name}-panel`),
      class: "card conflicts-panel",
      hidden: true,
      role: "dialog",
      "aria-modal": "true",
      "aria-labelledby": `${name}-title`,
    },
    h("div", { class: "card-head" }, h("h2", { id: `${name}-title` }, title), close),
    ...children,
  );
  close.addEventListener("click", () => {
    element.hidden = true;
  });
  return element;
}
