//! Start-up: ask the shell whether this desk is enrolled, then show set-up or the desk.

import "./styles.css";
import { api } from "./api";
import { h, mount } from "./dom";
import { toCommandError } from "./errors";
import { deskScreen } from "./screens/desk";
import { setupScreen } from "./screens/setup";
import { t } from "./strings";
import type { AppInfo } from "./wire";

function showDesk(root: HTMLElement, info: AppInfo): void {
  mount(root, deskScreen(info));
}

function showSetup(root: HTMLElement): void {
  mount(root, setupScreen((info) => showDesk(root, info)));
}

function showBootFailure(root: HTMLElement, message: string): void {
  const retry = h("button", { type: "button", class: "primary", id: "boot-retry" }, t.tryAgain);
  retry.addEventListener("click", () => void boot(root));
  mount(
    root,
    h(
      "main",
      { class: "setup" },
      h(
        "div",
        { class: "card setup-card", role: "alert", id: "boot-error", "data-testid": "boot-error" },
        h("h1", {}, t.bootFailedTitle),
        h("p", { class: "lead" }, message),
        h("div", { class: "actions" }, retry),
      ),
    ),
  );
}

async function boot(root: HTMLElement): Promise<void> {
  mount(root, h("p", { class: "loading" }, t.loading));
  try {
    const info = await api.appInfo();
    if (info.enrolled) showDesk(root, info);
    else showSetup(root);
  } catch (reason) {
    showBootFailure(root, toCommandError(reason).message);
  }
}

async function start(): Promise<void> {
  // Development only (`npm run dev`, then open /?mock or /?mock=enrolled, plus &role=receptionist
  // for a role clinical records are closed to, &modules=RETAIL_POS for other modules): an
  // in-memory stand-in for the Rust shell, to look at the screens in a plain browser. Not part
  // of the build.
  if (import.meta.env.DEV) {
    const params = new URLSearchParams(location.search);
    const mock = params.get("mock");
    if (mock !== null) {
      const { installDevMock } = await import("./dev-mock");
      installDevMock({
        enrolled: mock === "enrolled",
        receptionist: params.get("role") === "receptionist",
        licence: params.get("licence"),
        modules: params.get("modules"),
      });
    }
  }
  const root = document.getElementById("app");
  if (root) await boot(root);
}

void start();
