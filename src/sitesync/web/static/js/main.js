// Bootstrap: token, routing between tabs and projects, and the live refresh loop. The loop polls
// /api/v1/progress every second (cheap); lists reload only when its marker says something changed,
// or every second while transfers run, so availability shows up as soon as it is recorded.

import { ApiError, api, setToken, takeTokenFromLocation, whenUnauthorized } from "./api.js";
import { rate } from "./format.js";
import { $, $$, ask, toast } from "./ui.js";
import { loadLocation, saveLocation, state } from "./state.js";
import { initQueue, loadQueue, syncFilterInputs } from "./queue.js";
import { closeDetail, initDetail, loadDetail, openDetail } from "./detail.js";
import { initEvents, initSettings, loadEvents, loadProjects, loadSites, loadSettings } from "./views.js";

const POLL_MS = 1000;
const FULL_REFRESH_MS = 15000;
let askingToken = false;
let lastFull = 0;

async function askToken() {
  if (askingToken) return;
  askingToken = true;
  const values = await ask(
    "This server needs a token",
    `<label>Token (sent as Authorization: Bearer …, kept for this tab only)<input name="token" type="password" autocomplete="off" data-testid="token-input"></label>`,
    "Connect",
  );
  askingToken = false;
  if (values && values.token) {
    setToken(values.token);
    start();
  }
}

function selectTab(tab) {
  state.tab = tab;
  if (tab !== "queue") closeDetail();
  for (const button of $$(".tab")) button.classList.toggle("active", button.dataset.tab === tab);
  for (const view of $$(".view")) view.hidden = view.dataset.view !== tab;
  saveLocation();
  refreshTab();
}

function refreshTab() {
  if (state.tab === "queue") return loadQueue();
  if (state.tab === "events") return loadEvents(true);
  if (state.tab === "sites") return loadSites(() => loadQueue());
  if (state.tab === "settings") return loadSettings();
}

async function selectProject(name) {
  if (name === state.project) return;
  state.project = name;
  state.offset = 0;
  state.selected.clear();
  state.activeSite = state.remoteSite = "";
  for (const select of [$("#active-site"), $("#remote-site")]) select.innerHTML = "";
  closeDetail();
  saveLocation();
  await loadProjects(selectProject);
  await fillSitePickers();
  refreshTab();
}

async function fillSitePickers() {
  try {
    const sites = await api("/sites", { query: { project: state.project } });
    for (const select of [$("#active-site"), $("#remote-site")]) {
      const current = select.value;
      select.innerHTML = sites.map((s) => `<option value="${s.name}">${s.name}${s.this_machine ? " (this machine)" : ""}</option>`).join("");
      if (current) select.value = current;
    }
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) toast(err.message, "error");
  }
}

// the current rate, from the bytes done between two polls (smoothed)
let lastBytes = null;
let currentRate = 0;
function measureRate(live) {
  const now = performance.now();
  if (live && lastBytes && live.started_at === lastBytes.started) {
    const seconds = (now - lastBytes.at) / 1000;
    if (seconds > 0) currentRate = 0.6 * currentRate + 0.4 * Math.max(0, (live.bytes_done - lastBytes.bytes) / seconds);
  }
  lastBytes = live ? { bytes: live.bytes_done, at: now, started: live.started_at } : null;
  return currentRate;
}

function paintWorker(progress) {
  const box = $("[data-testid=worker-state]");
  const ws = progress.worker_state;
  const live = progress.worker;
  const transfers = live ? live.transfers.length : 0;
  const speed = measureRate(live);
  box.className = "worker " + (!ws.running ? "stopped" : ws.paused ? "paused" : transfers ? "busy" : "running");
  let text = !ws.running ? "no worker in this server" : ws.paused ? "worker paused" : transfers ? `${transfers} transfer${transfers > 1 ? "s" : ""} · ${rate(speed)}` : "worker idle";
  const down = Object.keys(ws.unavailable_sites || {});
  if (down.length) text += ` · unreachable: ${down.join(", ")}`;
  $(".worker-text").textContent = text;
  box.title = live ? `${live.files_done} files done, ${live.files_failed} failed attempts since start` : "";
  const toggle = $("#worker-toggle");
  toggle.hidden = !ws.running;
  const workerPaused = progress.pauses.some((p) => p.scope === "worker");
  toggle.textContent = workerPaused ? "Resume worker" : "Pause worker";
  toggle.dataset.paused = workerPaused;
  const allPaused = progress.pauses.some((p) => p.scope === "everything");
  $("#pause-all").textContent = allPaused ? "Resume all" : "Pause all";
  $("#pause-all").dataset.paused = allPaused;
  const banner = [...state.queueBanner];
  if (allPaused) banner.unshift("all syncing is paused");
  else if (workerPaused) banner.unshift("this machine's worker is paused");
  $("#pause-banner").hidden = !banner.length;
  $("#pause-banner").textContent = banner.length ? `‖ ${banner.join(" · ")}` : "";
}

async function poll() {
  try {
    const progress = await api("/progress");
    state.worker = progress;
    paintWorker(progress);
    const changed = progress.marker !== state.marker;
    const moving = progress.worker && progress.worker.transfers.length > 0;
    const due = Date.now() - lastFull > FULL_REFRESH_MS;
    if (changed || due) {
      state.marker = progress.marker;
      lastFull = Date.now();
      await loadProjects(selectProject);
    }
    if (changed || moving || due) {
      await refreshTab();
      await loadDetail();
    }
    const age = Math.round((Date.now() - state.refreshedAt) / 1000);
    $("#refreshed").textContent = state.refreshedAt ? (age < 2 ? "live" : `updated ${age}s ago`) : "";
  } catch (err) {
    $(".worker-text").textContent = err.message;
    $("[data-testid=worker-state]").className = "worker stopped";
  }
  setTimeout(poll, POLL_MS);
}

async function start() {
  try {
    const health = await api("/health");
    $("[data-testid=machine]").textContent = health.site_id;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return askToken();
    toast(err.message, "error");
  }
  await loadProjects(selectProject);
  if (!state.project || !state.projects.some((p) => p.name === state.project)) {
    const first = state.projects[0];
    state.project = null;
    if (first) await selectProject(first.name);
  } else {
    await loadProjects(selectProject);
    await fillSitePickers();
  }
  selectTab(state.tab);
  if (!start.polling) {
    start.polling = true;
    poll();
  }
}

function init() {
  takeTokenFromLocation();
  loadLocation();
  whenUnauthorized(askToken);
  syncFilterInputs();
  initQueue({ open: openDetail });
  initDetail();
  initEvents();
  initSettings();
  for (const button of $$(".tab")) button.addEventListener("click", () => selectTab(button.dataset.tab));
  $("#worker-toggle").addEventListener("click", async () => {
    const paused = $("#worker-toggle").dataset.paused === "true";
    try {
      await api(paused ? "/resume" : "/pause", { method: "POST", body: { worker: true } });
      toast(paused ? "worker resumed" : "worker paused: running transfers finish, nothing new starts");
    } catch (err) {
      toast(err.message, "error");
    }
  });
  $("#pause-all").addEventListener("click", async () => {
    const paused = $("#pause-all").dataset.paused === "true";
    try {
      await api(paused ? "/resume" : "/pause", { method: "POST", body: {} });
      toast(paused ? "all syncing resumed" : "all syncing paused, on every machine");
    } catch (err) {
      toast(err.message, "error");
    }
  });
  start();
}

init();
