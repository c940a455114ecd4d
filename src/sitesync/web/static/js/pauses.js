// The top bar's worker state and the two pause switches, named the same way everywhere:
// "this machine" (its workers) and "everything" (all syncing, every machine). The banner names
// each pause that applies to what is shown, and who set it.

import { api } from "./api.js";
import { ago, plural, rate } from "./format.js";
import { $, toast } from "./ui.js";
import { state } from "./state.js";

// the current rate, from the bytes done between two polls (smoothed)
let lastBytes = null;
let currentRate = 0;
export function measureRate(live) {
  const now = performance.now();
  if (live && lastBytes && live.started_at === lastBytes.started) {
    const seconds = (now - lastBytes.at) / 1000;
    if (seconds > 0) currentRate = 0.6 * currentRate + 0.4 * Math.max(0, (live.bytes_done - lastBytes.bytes) / seconds);
  }
  lastBytes = live ? { bytes: live.bytes_done, at: now, started: live.started_at } : null;
  return currentRate;
}

export function recentRate() {
  return currentRate;
}

function describe(pause, siteId) {
  const by = `by ${pause.paused_by}, ${ago(pause.paused_at)}`;
  if (pause.scope === "everything") return `everything (${by})`;
  if (pause.scope === "worker") return `${pause.site === siteId ? "this machine" : `machine ${pause.site}`} (${by})`;
  if (pause.scope === "project") return `project ${pause.project} (${by})`;
  if (pause.scope === "site") return `site ${pause.site} (${by})`;
  return `site ${pause.site} in project ${pause.project} (${by})`;
}

function relevant(pause, siteId, sites) {
  if (pause.scope === "everything") return true;
  if (pause.scope === "worker") return pause.site === siteId;
  if (pause.scope === "project") return pause.project === state.project;
  if (pause.scope === "site") return sites.has(pause.site);
  return pause.project === state.project;
}

export function paintWorker(progress, siteId) {
  const box = $("[data-testid=worker-state]");
  const ws = progress.worker_state;
  const live = progress.worker;
  const transfers = live ? live.transfers.length : 0;
  const speed = measureRate(live);
  box.className = "worker " + (!ws.running ? "stopped" : ws.paused ? "paused" : transfers ? "busy" : "running");
  let text = !ws.running
    ? "no worker in this server"
    : ws.paused
      ? "this machine is paused"
      : transfers
        ? `${plural(transfers, "transfer")} · ${rate(speed)}`
        : "worker idle";
  const down = Object.keys(ws.unavailable_sites || {});
  if (down.length) text += ` · unreachable: ${down.join(", ")}`;
  $(".worker-text").textContent = text;
  box.title = live ? `${live.files_done} files done, ${live.files_failed} failed attempts since start` : "";

  const machinePause = progress.pauses.find((p) => p.scope === "worker" && p.site === siteId);
  const everythingPause = progress.pauses.find((p) => p.scope === "everything");
  const toggle = $("#worker-toggle");
  toggle.hidden = !ws.running && !machinePause;
  toggle.textContent = machinePause ? "Resume this machine" : "Pause this machine";
  toggle.dataset.paused = String(Boolean(machinePause));
  toggle.setAttribute("aria-pressed", String(Boolean(machinePause)));
  const all = $("#pause-all");
  all.textContent = everythingPause ? "Resume everything" : "Pause everything";
  all.dataset.paused = String(Boolean(everythingPause));
  all.setAttribute("aria-pressed", String(Boolean(everythingPause)));

  const sites = new Set([state.page?.active_site, state.page?.remote_site].filter(Boolean));
  const rank = ["everything", "worker", "project", "site", "project site"];
  const named = progress.pauses
    .filter((p) => relevant(p, siteId, sites))
    .sort((a, b) => rank.indexOf(a.scope) - rank.indexOf(b.scope))
    .map((p) => describe(p, siteId));
  $("#pause-banner").hidden = !named.length;
  $("#pause-banner").textContent = named.length ? `‖ Paused: ${named.join(" · ")}` : "";
}

export function initPauses() {
  $("#worker-toggle").addEventListener("click", async () => {
    const paused = $("#worker-toggle").dataset.paused === "true";
    try {
      await api(paused ? "/resume" : "/pause", { method: "POST", body: { worker: true } });
      toast(paused ? "This machine is resumed." : "This machine is paused: running transfers finish, nothing new starts.");
    } catch (err) {
      toast(err.message, "error");
    }
  });
  $("#pause-all").addEventListener("click", async () => {
    const paused = $("#pause-all").dataset.paused === "true";
    try {
      await api(paused ? "/resume" : "/pause", { method: "POST", body: {} });
      toast(paused ? "Everything is resumed." : "Everything is paused, on every machine.");
    } catch (err) {
      toast(err.message, "error");
    }
  });
}
