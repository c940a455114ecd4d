// Bootstrap: the token, tabs and projects, navigation from the URL (links, Back and Forward), and
// the live refresh loop. The loop polls /api/v1/progress every second (cheap); lists reload only
// when its marker says something changed, or every second while transfers run.

import { ApiError, api, login, takeLoginRefused, whenUnauthorized } from "./api.js";
import { esc } from "./format.js";
import { $, $$, arrowTabs, ask, toast } from "./ui.js";
import { loadLocation, locationHash, saveLocation, state } from "./state.js";
import { focusRows, goPage, initQueue, loadQueue, setFilters, syncFilterInputs } from "./queue.js";
import { clearSelection, initSelection, toggleAll } from "./selection.js";
import { closeDetail, initDetail, loadDetail, openDetail } from "./detail.js";
import { initProjects, loadProjects } from "./projects.js";
import { initOverview, loadOverview, paintOverview } from "./overview.js";
import { initEvents, loadEvents, syncEventInputs } from "./events.js";
import { initSites, loadSites } from "./sites.js";
import { initSettings, loadSettings } from "./settings.js";
import { initWorkfiles, loadWorkfiles, syncWorkInputs } from "./workfiles.js";
import { initKeyboard } from "./keyboard.js";
import { afterProjectChosen, initLayout, toggleSidebar } from "./layout.js";
import { initPauses, paintWorker } from "./pauses.js";

const POLL_MS = 1000;
const FULL_REFRESH_MS = 15000;
const SITES_REFRESH_MS = 5000;
const WORK_REFRESH_MS = 3000; // workfile changes do not move the progress marker: poll this view itself
let askingToken = false;
let lastFull = 0;
let lastSites = 0;
let lastWork = 0;
let siteId = "";

// The login dialog: until a token is accepted, a refusal shows why in the same dialog.
async function askToken(problem = "") {
  if (askingToken) return;
  askingToken = true;
  let why = problem;
  for (;;) {
    const values = await ask(
      "This server needs a token",
      (why ? `<p class="login-problem" data-testid="token-refused">${esc(why)}</p>` : "") +
        `<p>Open the login link <code>sitesync serve</code> printed, or run <code>sitesync dashboard</code> on the
        server's machine for a new one. Or paste the token (<code>sitesync token show</code>):</p>
        <label>Token<input name="token" type="password" autocomplete="off" data-testid="token-input"></label>`,
      "Log in",
    );
    if (!values || !values.token) break;
    try {
      await login(values.token.trim());
      askingToken = false;
      return start();
    } catch (err) {
      why = err instanceof ApiError && err.status === 401 ? "token refused: that is not this server's token" : err.message;
    }
  }
  askingToken = false;
}

function paintTabs() {
  for (const button of $$(".tabs .tab")) {
    const on = button.dataset.tab === state.tab;
    button.classList.toggle("active", on);
    button.setAttribute("aria-selected", String(on));
    button.tabIndex = on ? 0 : -1;
  }
  for (const view of $$(".view")) view.hidden = view.dataset.view !== state.tab;
}

function selectTab(tab, { push = true } = {}) {
  if (state.tab !== tab) {
    state.tab = tab;
    if (tab !== "queue") closeDetail();
    saveLocation(push);
  }
  paintTabs();
  refreshTab(true);
}

function refreshTab(explicit = false) {
  if (state.tab === "queue") return Promise.all([loadQueue(), loadOverview()]);
  if (state.tab === "events") return loadEvents(true);
  if (state.tab === "sites") {
    if (!explicit && Date.now() - lastSites < SITES_REFRESH_MS) return null;
    lastSites = Date.now();
    return loadSites(explicit);
  }
  if (state.tab === "workfiles") {
    if (!explicit && Date.now() - lastWork < WORK_REFRESH_MS) return null;
    lastWork = Date.now();
    return loadWorkfiles();
  }
  // settings: only when asked (a refresh must not replace what someone is typing)
  if (state.tab === "settings" && explicit) return loadSettings();
  return null;
}

async function selectProject(name, { push = true } = {}) {
  afterProjectChosen();
  if (name === state.project) return;
  state.project = name;
  state.offset = 0;
  state.overview = null;
  clearSelection();
  state.activeSite = state.remoteSite = "";
  for (const select of [$("#active-site"), $("#remote-site")]) select.innerHTML = "";
  closeDetail();
  saveLocation(push);
  await loadProjects();
  await fillSitePickers();
  refreshTab(true);
}

async function fillSitePickers() {
  try {
    const sites = await api("/sites", { query: { project: state.project } });
    for (const select of [$("#active-site"), $("#remote-site")]) {
      const current = select.value;
      select.innerHTML = sites.map((s) => `<option value="${s.name}">${s.name}${s.this_machine ? " (this machine)" : ""}</option>`).join("");
      if (current) select.value = current;
    }
    syncEventInputs(sites.map((s) => s.name));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) toast(err.message, "error");
  }
}

// a link was followed (an event's representation, a pasted URL) or Back/Forward was pressed
// (popstate and hashchange both report one change: the second finds the view already there, as it
// does for URLs the page wrote itself)
async function navigate() {
  if (location.hash.slice(1) === locationHash()) return;
  const before = { project: state.project, open: state.openId };
  loadLocation();
  syncFilterInputs();
  syncWorkInputs();
  if (state.project && state.project !== before.project) {
    const wanted = state.project;
    state.project = before.project;
    await selectProject(wanted, { push: false });
  }
  paintTabs();
  refreshTab(true);
  if (state.openId !== null && state.tab === "queue") openDetail(state.openId, { push: false, focus: state.openId !== before.open });
  else if (state.openId === null && !$("#detail").hidden) {
    $("#detail").hidden = true;
  }
}

async function poll() {
  try {
    const progress = await api("/progress");
    state.worker = progress;
    paintWorker(progress, siteId);
    const changed = progress.marker !== state.marker;
    const moving = progress.worker && progress.worker.transfers.length > 0;
    const due = Date.now() - lastFull > FULL_REFRESH_MS;
    if (changed || due) {
      state.marker = progress.marker;
      lastFull = Date.now();
      await loadProjects();
    }
    if (changed || moving || due) {
      await refreshTab();
      await loadDetail();
    } else if (state.tab === "queue") {
      paintOverview();
    } else if (state.tab === "workfiles") {
      await refreshTab();
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
    siteId = health.site_id;
    $("[data-testid=machine]").textContent = health.site_id;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return askToken();
    toast(err.message, "error");
  }
  await loadProjects();
  if (!state.project || !state.projects.some((p) => p.name === state.project)) {
    const first = state.projects[0];
    state.project = null;
    if (first) await selectProject(first.name, { push: false });
  } else {
    await fillSitePickers();
  }
  saveLocation();
  paintTabs();
  refreshTab(true);
  if (state.openId !== null) openDetail(state.openId, { push: false, focus: false });
  if (!start.polling) {
    start.polling = true;
    poll();
  }
}

function init() {
  const refused = takeLoginRefused();
  loadLocation();
  whenUnauthorized(askToken);
  syncFilterInputs();
  initLayout();
  initProjects((name) => selectProject(name));
  initQueue({ open: (id) => openDetail(id) });
  initSelection(() => Promise.all([loadQueue(), loadOverview()]));
  initOverview((status) => setFilters({ ...state.filters, status }));
  initDetail();
  initEvents();
  initSites(() => loadQueue());
  initSettings();
  initWorkfiles();
  syncWorkInputs();
  initPauses();
  initKeyboard({
    escape: () => (state.openId !== null ? closeDetail(true) : clearSelection()),
    filter: () => {
      selectTab("queue");
      $("#quick-filter").focus();
    },
    tab: (tab) => selectTab(tab),
    page: (which) => state.tab === "queue" && goPage(which),
    selectPage: () => state.tab === "queue" && toggleAll(true),
    sidebar: toggleSidebar,
  });
  for (const button of $$(".tabs .tab")) button.addEventListener("click", () => selectTab(button.dataset.tab));
  arrowTabs($(".tabs"), ".tab", (tab) => selectTab(tab.dataset.tab));
  $("#quick-filter").addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      focusRows();
    }
  });
  window.addEventListener("popstate", navigate);
  window.addEventListener("hashchange", navigate);
  if (refused) askToken("this login link was already used or has expired: ask for a new one with `sitesync dashboard`");
  else start();
}

init();
