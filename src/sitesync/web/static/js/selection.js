// The selection and what acts on it: rows picked one by one (kept across pages and refreshes),
// or "all N matching" the filter, which the server acts on with a count confirmation. Results are
// told in plain sentences; after an action the selection keeps only rows still shown.

import { api } from "./api.js";
import { esc, plural } from "./format.js";
import { $, $$, ask, toast } from "./ui.js";
import { FILTER_KEYS, state } from "./state.js";

let lastClicked = null;
let reload = async () => {};

// past tense of each action, for "3 representations queued for download" and "was not ..."
const DONE = {
  download: ["queued for download", "queued for download"],
  upload: ["queued for upload", "queued for upload"],
  reset: ["queued again", "re-synced"],
  remove: ["removed", "removed"],
  priority: ["given the new priority", "given the new priority"],
  pause: ["paused", "paused"],
  resume: ["resumed", "resumed"],
};

export function initSelection(reloadQueue) {
  reload = reloadQueue;
  for (const button of $$("#selectionbar [data-action]")) button.addEventListener("click", () => bulk(button.dataset.action));
  $("#clear-selection").addEventListener("click", clearSelection);
  $("#select-matching").addEventListener("click", () => {
    state.allMatching = !state.allMatching;
    if (!state.allMatching) state.selected.clear();
    paintSelection();
  });
  const menu = $("#resync-menu");
  const button = $("#resync-button");
  const setMenu = (open) => {
    menu.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
    if (open) $("button", menu).focus();
  };
  button.addEventListener("click", (e) => {
    e.stopPropagation();
    setMenu(menu.hidden);
  });
  menu.addEventListener("keydown", (e) => {
    const items = $$("button", menu);
    const i = items.indexOf(document.activeElement);
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      items[(i + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length].focus();
    } else if (e.key === "Escape") {
      e.stopPropagation();
      setMenu(false);
      button.focus();
    }
  });
  for (const item of $$("[data-scope]", menu)) {
    item.addEventListener("click", () => {
      setMenu(false);
      bulk("reset", { scope: item.dataset.scope });
    });
  }
  document.addEventListener("click", () => {
    if (!menu.hidden) setMenu(false);
  });
}

export function clearSelection() {
  state.selected.clear();
  state.allMatching = false;
  paintSelection();
}

export function toggle(id, range, on = null) {
  state.allMatching = false;
  const ids = state.items.map((x) => x.id);
  if (range && lastClicked !== null && ids.includes(lastClicked)) {
    const [a, b] = [ids.indexOf(lastClicked), ids.indexOf(id)].sort((x, y) => x - y);
    const value = on ?? !state.selected.has(id);
    for (const other of ids.slice(a, b + 1)) value ? state.selected.add(other) : state.selected.delete(other);
  } else if (on ?? !state.selected.has(id)) state.selected.add(id);
  else state.selected.delete(id);
  lastClicked = id;
  paintSelection();
}

export function toggleAll(on) {
  state.allMatching = false;
  for (const item of state.items) on ? state.selected.add(item.id) : state.selected.delete(item.id);
  paintSelection();
}

export function paintSelection() {
  for (const row of $$("#queue-body tr[data-id]")) {
    const on = state.allMatching || state.selected.has(Number(row.dataset.id));
    row.setAttribute("aria-selected", String(on));
    row.classList.toggle("selected", on);
    const box = row.querySelector("input[type=checkbox]");
    if (box) box.checked = on;
  }
  const onPage = state.items.filter((x) => state.selected.has(x.id)).length;
  const all = $("#select-all");
  all.checked = state.allMatching || (onPage > 0 && onPage === state.items.length);
  all.indeterminate = !state.allMatching && onPage > 0 && onPage < state.items.length;
  const n = state.allMatching ? state.total : state.selected.size;
  $("#selectionbar").hidden = n === 0;
  $("#selection-count").textContent = state.allMatching ? `All ${plural(n, "representation")} matching` : `${n} selected`;
  const matching = $("#select-matching");
  const wholePage = onPage === state.items.length && state.items.length > 0;
  matching.hidden = !(state.allMatching || (wholePage && state.total > state.items.length));
  matching.textContent = state.allMatching ? "Select only this page" : `Select all ${state.total.toLocaleString()} matching`;
}

// after an action: keep only selected rows that the (reloaded) current view still shows
export function pruneSelection() {
  const shown = new Set(state.items.map((x) => x.id));
  for (const id of [...state.selected]) if (!shown.has(id)) state.selected.delete(id);
  state.allMatching = false;
  paintSelection();
}

function summarize(action, response, site) {
  const failed = response.results.filter((r) => !r.ok);
  const done = response.results.filter((r) => r.ok);
  const [doneWord, notWord] = DONE[action] || [action, action];
  const where = action === "remove" && site ? ` from ${site}` : "";
  const lines = [];
  if (done.length === 1 && !failed.length) lines.push(done[0].message);
  else if (done.length) lines.push(`${plural(done.length, "representation")} ${doneWord}${where}.`);
  if (failed.length === 1) {
    lines.push(`1 representation was not ${notWord}: ${failed[0].message}`);
  } else if (failed.length) {
    lines.push(`${failed.length} representations were not ${notWord}:`);
    for (const f of failed.slice(0, 4)) lines.push(`#${f.representation_id}: ${f.message}`);
    if (failed.length > 4) lines.push(`… and ${failed.length - 4} more`);
  }
  toast(lines.join("\n"), failed.length ? (done.length ? "warn" : "error") : "ok");
}

export async function runActions(action, ids, extra = {}) {
  try {
    const response = await api("/actions", { method: "POST", body: { action, representation_ids: ids, ...extra } });
    summarize(action, response, state.page?.active_site);
    return response;
  } catch (err) {
    toast(err.message, "error");
    return null;
  }
}

function matchingFilter() {
  const filter = {};
  for (const key of FILTER_KEYS) if (state.filters[key]) filter[key] = state.filters[key];
  if (state.activeSite) filter.active_site = state.activeSite;
  if (state.remoteSite) filter.remote_site = state.remoteSite;
  return filter;
}

async function runOnMatching(action, count, extra) {
  try {
    const response = await api(`/projects/${encodeURIComponent(state.project)}/actions`, {
      method: "POST",
      body: { action, filter: matchingFilter(), expected: count, ...extra },
    });
    summarize(action, response, state.page?.active_site);
  } catch (err) {
    toast(err.message, "error");
  }
}

const VERB = { download: "Download", upload: "Upload", reset: "Re-sync", priority: "Set the priority of", pause: "Pause", resume: "Resume", remove: "Remove the local copy of" };

async function bulk(action, extra = {}) {
  const ids = Array.from(state.selected);
  const count = state.allMatching ? state.total : ids.length;
  if (!count) return;
  const what = plural(count, "representation");
  if (action === "priority") {
    const values = await ask(
      `Priority of ${what}`,
      `<label>1 – 1000, higher goes first (default 50)<input name="priority" type="number" min="1" max="1000" value="80" data-testid="priority-input"></label>`,
      "Set priority",
    );
    if (!values) return;
    extra = { priority: Number(values.priority) };
  }
  if (action === "remove") {
    const site = state.page ? state.page.active_site : "the active site";
    const ok = await ask(
      "Remove local copies?",
      `<p>Delete ${esc(what)} from ${esc(site)}. Copies that would leave fewer than min_copies verified copies elsewhere are kept.</p>`,
      "Remove",
      true,
    );
    if (!ok) return;
  } else if (state.allMatching && action !== "priority") {
    const ok = await ask(`${VERB[action]} ${what}?`, `<p>Every representation matching the filter, on every page: ${esc(what)}.</p>`, `${VERB[action]} ${count.toLocaleString()}`);
    if (!ok) return;
  }
  const onMatching = state.allMatching;
  if (count > 50) toast(`Working on ${what}…`, "ok", 3000);
  if (onMatching) await runOnMatching(action, count, extra);
  else await runActions(action, ids, extra);
  await reload();
  // acted on a filter: nothing stays picked; acted on picked rows: those still shown stay picked
  if (onMatching) clearSelection();
  else pruneSelection();
}
