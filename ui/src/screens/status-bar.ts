//! The always-visible sync status: online or not, what is waiting, when it last synced, what
//! went wrong, and a button to sync now. Users trust sync they can see.

import { api } from "../api";
import { formatSyncTime } from "../dates";
import { h, testId } from "../dom";
import { toCommandError } from "../errors";
import { t } from "../strings";
import type { SyncStatusView } from "../wire";

export const STATUS_POLL_MS = 2000;

export type StatusBar = {
  element: HTMLElement;
  /** A banner for the top of the desk: what the subscription allows, when it is not everything. */
  banner: HTMLElement;
  /** Asks for the status now instead of at the next poll, e.g. after a registration. */
  pollNow(): void;
  /** Whether the conflicts button may show (it belongs to a module that may be switched off). */
  setConflictsShown(shown: boolean): void;
  stop(): void;
};

/** The "Last synced …" text for a status. */
export function lastSyncedText(lastSyncedAt: string | null): string {
  const when = lastSyncedAt ? formatSyncTime(lastSyncedAt) : null;
  return when ? t.lastSynced(when) : t.neverSynced;
}

/** "Syncing…", with the progress of a pull big enough to be worth showing; null when idle. */
export function syncingText(status: SyncStatusView): string | null {
  if (!status.syncing) return null;
  return status.pull_total >= 1000 ? t.syncingProgress(status.pull_done, status.pull_total) : t.syncing;
}

/** "3 changes waiting", and since when once they have waited a while. */
export function pendingText(status: SyncStatusView): string {
  const since = status.oldest_pending_at ? formatSyncTime(status.oldest_pending_at) : null;
  return status.pending > 0 && since ? `${t.pending(status.pending)} (${t.oldestWaiting(since)})` : t.pending(status.pending);
}

/** Days of full access left at which the banner starts reminding. */
export const LICENCE_REMINDER_DAYS = 3;

/**
 * What the banner says about the desk's licence: why it is read-only and what to do, or how
 * soon full access ends; null when there is nothing to say.
 */
export function licenceText(status: SyncStatusView, now: Date = new Date()): string | null {
  const readOnlyEnds = status.licence_read_only_until ? formatSyncTime(status.licence_read_only_until) : null;
  switch (status.licence_access) {
    case "READ_ONLY":
      return t.licenceReadOnly(readOnlyEnds);
    case "SUSPENDED":
      return t.licenceSuspended;
    default: {
      if (!status.licence_full_until) return null;
      const left = Math.ceil((Date.parse(status.licence_full_until) - now.getTime()) / 86_400_000);
      return left <= LICENCE_REMINDER_DAYS ? t.licenceEndsSoon(Math.max(left, 0)) : null;
    }
  }
}

/**
 * `onSynced` runs whenever a sync has brought something new, so lists can refresh; `onStatus`
 * with every status the bar shows, so the desk can follow what its licence says.
 */
export function statusBar(
  onSynced: () => void,
  onConflicts: () => void = () => {},
  onRefused: () => void = () => {},
  onReconnect: () => void = () => {},
  onStatus: (status: SyncStatusView) => void = () => {},
): StatusBar {
  const onlineText = h("span", {}, t.offline);
  const online = h("span", { ...testId("status-online"), class: "status-online", "data-online": "false" }, onlineText);
  const pending = h("span", { ...testId("status-pending") }, "");
  const rejected = h("button", { ...testId("status-rejected"), type: "button", class: "secondary status-error" }, "");
  rejected.addEventListener("click", onRefused);
  const conflicts = h("button", { ...testId("status-conflicts"), type: "button", class: "secondary" }, "");
  conflicts.addEventListener("click", onConflicts);
  const reconnect = h(
    "button",
    { ...testId("status-reconnect"), type: "button", class: "primary status-error" },
    t.reconnectDesk,
  );
  reconnect.addEventListener("click", onReconnect);
  const lastSync = h("span", { ...testId("status-last-sync") }, "");
  const error = h("span", { ...testId("status-error"), class: "status-error", role: "alert" }, "");
  const syncNow = h("button", { ...testId("sync-now"), type: "button", class: "secondary" }, t.syncNow);
  const banner = h("div", { ...testId("licence-banner"), class: "licence-banner", role: "status" }, "");

  let lastSeenSync: string | null | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let manualSync = false;
  let conflictsShown = true;
  let openConflicts = 0;
  const showConflicts = (): void => {
    conflicts.hidden = openConflicts === 0 || !conflictsShown;
  };

  const render = (status: SyncStatusView): void => {
    online.dataset.online = String(status.online);
    onlineText.textContent = syncingText(status) ?? (status.online ? t.online : t.offline);
    pending.textContent = pendingText(status);
    pending.dataset.count = String(status.pending);
    rejected.textContent = status.rejected > 0 ? t.rejected(status.rejected) : "";
    rejected.hidden = status.rejected === 0;
    conflicts.textContent = t.conflictsWaiting(status.open_conflicts);
    openConflicts = status.open_conflicts;
    onStatus(status);
    showConflicts();
    lastSync.textContent = lastSyncedText(status.last_synced_at);
    error.textContent = status.last_error ?? "";
    error.hidden = !status.last_error;
    reconnect.hidden = !status.needs_reenrolment;
    const licence = licenceText(status);
    banner.textContent = licence ?? "";
    banner.hidden = licence === null;
    banner.dataset.access = status.licence_access;
    syncNow.disabled = manualSync || status.syncing;
    if (lastSeenSync !== undefined && status.last_synced_at !== lastSeenSync) onSynced();
    lastSeenSync = status.last_synced_at;
  };

  const renderFailure = (reason: unknown): void => {
    online.dataset.online = "false";
    onlineText.textContent = t.statusUnavailable;
    error.textContent = toCommandError(reason).message;
    error.hidden = false;
  };

  // One poll at a time: a poll asked for while one is running runs right after it.
  let polling = false;
  let pollAgain = false;
  const poll = async (): Promise<void> => {
    if (polling) {
      pollAgain = true;
      return;
    }
    polling = true;
    clearTimeout(timer);
    try {
      render(await api.syncStatus());
    } catch (reason) {
      renderFailure(reason);
    } finally {
      polling = false;
      if (!stopped) {
        if (pollAgain) {
          pollAgain = false;
          void poll();
        } else {
          timer = setTimeout(() => void poll(), STATUS_POLL_MS);
        }
      }
    }
  };

  syncNow.addEventListener("click", async () => {
    if (manualSync) return;
    manualSync = true;
    syncNow.disabled = true;
    syncNow.textContent = t.syncing;
    try {
      const status = await api.syncNow();
      lastSeenSync = status.last_synced_at;
      render(status);
    } catch (reason) {
      renderFailure(reason);
    } finally {
      manualSync = false;
      syncNow.disabled = false;
      syncNow.textContent = t.syncNow;
      onSynced();
    }
  });

  const element = h(
    "footer",
    { class: "status-bar", "aria-label": "Sync status" },
    online,
    h("span", { class: "sep", "aria-hidden": "true" }),
    pending,
    h("span", { class: "sep", "aria-hidden": "true" }),
    lastSync,
    rejected,
    conflicts,
    reconnect,
    error,
    h("span", { class: "spacer" }),
    syncNow,
  );
  error.hidden = true;
  rejected.hidden = true;
  conflicts.hidden = true;
  reconnect.hidden = true;
  banner.hidden = true;
  void poll();

  return {
    element,
    banner,
    pollNow: () => void poll(),
    setConflictsShown: (shown) => {
      conflictsShown = shown;
      showConflicts();
    },
    stop: () => {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
