//! Head office's page (office.html, served by the sync server at `/`): resume the browser's
//! session if it has one, otherwise sign in; then the dashboard. An ended session (a 401 from
//! any request) comes back here to sign in again.

import "../styles.css";
import "./office.css";
import { h, mount } from "../dom";
import { OfficeApi } from "./api";
import { dashboardScreen } from "./dashboard";
import { signInScreen } from "./sign-in";
import { t } from "./strings";
import type { SessionView } from "../wire";

const api = new OfficeApi();

function showSignIn(root: HTMLElement, notice = ""): void {
  document.title = t.signInTitle;
  mount(root, signInScreen(api, (session) => showDashboard(root, session), notice));
  root.querySelector<HTMLInputElement>("#sign-in-business")?.focus();
}

function showDashboard(root: HTMLElement, session: SessionView): void {
  document.title = `${session.business_name} · ${t.appName}`;
  mount(root, dashboardScreen(api, session, () => showSignIn(root, t.signedOut)));
}

async function start(): Promise<void> {
  const root = document.getElementById("app");
  if (!root) return;
  api.onSessionEnded = () => showSignIn(root, t.sessionEnded);
  mount(root, h("p", { class: "loading" }, t.loading));
  try {
    const session = await api.resume();
    if (session) showDashboard(root, session);
    else showSignIn(root);
  } catch {
    showSignIn(root);
  }
}

void start();
