// The Workfiles tab (issue 15): artists' working files of the project, grouped by folder (a task's
// work area), open conflicts first, each with its state as this server's site sees it and the
// version every workfile site holds. Actions: resolve a conflict (keep local, remote or both), lock
// and unlock (or break another's lock, recorded), history with restore, and "Sync now" (one pass).
// Filters (text or glob on the path, state) live in the URL like every other view state.

import { api, ApiError } from "./api.js";
import { ago, esc, size, when } from "./format.js";
import { $, ask, confirmText, debounce, toast } from "./ui.js";
import { saveLocation, state } from "./state.js";

export const WORK_STATES = ["conflict", "locked_by", "modified_here", "newer_elsewhere", "syncing", "deleted", "in_sync"];
const STATE_LABEL = {
  conflict: "conflict",
  locked_by: "locked",
  modified_here: "modified here",
  newer_elsewhere: "newer elsewhere",
  syncing: "syncing",
  deleted: "deleted",
  in_sync: "in sync",
};
// the state colours of the Sync Queue, reused: a conflict needs a person like a failure does
const STATE_CLASS = {
  conflict: "failed",
  locked_by: "paused",
  modified_here: "queued",
  newer_elsewhere: "queued",
  syncing: "in_progress",
  deleted: "none",
  in_sync: "present",
};
const GLOB = /[*?[]/;

let rows = [];
let conflicts = [];
let settings = null; // the project's effective settings (read with every load: the Settings tab may change them)
let generation = 0;

export function initWorkfiles() {
  $("#work-state").innerHTML = ["", ...WORK_STATES].map((s) => `<option value="${s}">${s ? STATE_LABEL[s] : "any"}</option>`).join("");
  const changed = () => {
    state.work.q = $("#work-filter").value;
    state.work.state = $("#work-state").value;
    saveLocation();
    loadWorkfiles();
  };
  $("#work-filter").addEventListener("input", debounce(changed, 250));
  $("#work-state").addEventListener("change", changed);
  $("#work-sync").addEventListener("click", syncNow);
  $("#view-workfiles").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-work-act]");
    if (!button) return;
    const item = button.closest("[data-path]");
    const path = item.dataset.path;
    const root = item.dataset.root || null;
    button.disabled = true;
    try {
      const act = button.dataset.workAct;
      if (act === "resolve") await resolve(path, root);
      if (act === "history") await history(path, root);
      if (act === "lock") await lock(path, root);
      if (act === "unlock") await unlock(path, root, false);
      if (act === "break") await unlock(path, root, true);
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  });
}

export function syncWorkInputs() {
  $("#work-filter").value = state.work.q;
  $("#work-state").value = state.work.state;
}

function base() {
  return `/projects/${encodeURIComponent(state.project)}/workfiles`;
}

function fail(err) {
  if (!(err instanceof ApiError && err.status === 401)) toast(err.message, "error");
}

export async function loadWorkfiles() {
  if (!state.project) return;
  const asked = ++generation;
  const q = state.work.q.trim();
  try {
    const [status, open, effective] = await Promise.all([
      api(base(), { query: { path: GLOB.test(q) ? q : "" } }),
      api(`${base()}/conflicts`),
      api("/settings", { query: { project: state.project, effective: true } }),
    ]);
    if (asked !== generation) return;
    rows = status;
    conflicts = open.filter((c) => c.resolved_at === null);
    settings = effective;
    paint();
  } catch (err) {
    fail(err);
  }
}

function workSettings() {
  return (settings && settings.settings && settings.settings.workfiles) || {};
}

function visible() {
  const q = state.work.q.trim().toLowerCase();
  return rows.filter(
    (r) => (!q || GLOB.test(q) || r.path.toLowerCase().includes(q)) && (!state.work.state || r.state === state.work.state),
  );
}

function folderOf(path) {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

function nameOf(path) {
  return path.slice(path.lastIndexOf("/") + 1);
}

// folders with a conflict first, then the rest by name; in a folder: conflicts, locks, then by name
function grouped(items) {
  const rank = (r) => (r.state === "conflict" ? 0 : r.state === "locked_by" ? 1 : 2);
  const groups = new Map();
  for (const r of items) {
    const key = `${r.root}\u0000${folderOf(r.path)}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(r);
  }
  const out = [...groups.entries()].map(([key, list]) => {
    list.sort((a, b) => rank(a) - rank(b) || a.path.localeCompare(b.path));
    return { root: key.split("\u0000")[0], folder: key.split("\u0000")[1], list, urgent: Math.min(...list.map(rank)) };
  });
  out.sort((a, b) => a.urgent - b.urgent || a.folder.localeCompare(b.folder) || a.root.localeCompare(b.root));
  return out;
}

function badge(name) {
  return `<span class="st st-${STATE_CLASS[name] || "none"}" data-status="${esc(name)}">${esc(STATE_LABEL[name] || name.replaceAll("_", " "))}</span>`;
}

function lockText(lock) {
  if (!lock) return "";
  return `${lock.user}@${lock.site} until ${new Date(lock.expires_at * 1000).toLocaleString()}`;
}

function actions(r) {
  const out = [];
  if (r.state === "conflict") out.push(`<button class="btn small primary" data-work-act="resolve" data-testid="work-resolve">Resolve…</button>`);
  if (r.state === "locked_by") out.push(`<button class="btn small danger" data-work-act="break" data-testid="work-break" title="Break ${esc(lockText(r.lock))}'s lock (recorded)">Break lock…</button>`);
  else if (r.lock) out.push(`<button class="btn small" data-work-act="unlock" data-testid="work-unlock">Unlock</button>`);
  else if (r.state !== "deleted") out.push(`<button class="btn small" data-work-act="lock" data-testid="work-lock" title="Tell every site you are editing it">Lock</button>`);
  out.push(`<button class="btn small ghost" data-work-act="history" data-testid="work-history">History</button>`);
  return out.join("");
}

function version(n) {
  return n === null || n === undefined ? '<span class="muted">—</span>' : `v${n}`;
}

function row(r, sites) {
  const made = r.made_by_user ? `${esc(r.made_by_user)}@${esc(r.made_on_site)}` : "";
  const lock = r.lock ? `<span class="lock" data-testid="work-lock-holder" title="${esc(lockText(r.lock))}"><span class="muted small">locked by</span> ${esc(r.lock.user)}@${esc(r.lock.site)}</span>` : "";
  const error = r.error ? `<div class="err small clamp" title="${esc(r.error)}">${esc(r.error)}</div>` : "";
  const cells = sites.map((s) => {
    const held = r.sites[s];
    const behind = held !== null && held !== undefined && r.current !== null && held !== r.current;
    return `<td class="num${behind ? " behind" : ""}" data-site="${esc(s)}">${version(held)}</td>`;
  });
  return `<tr class="work-row" data-path="${esc(r.path)}" data-root="${esc(r.root)}" data-state="${esc(r.state)}" data-testid="work-row">
    <td class="text wname" title="${esc(r.path)}"><span class="mono">${esc(nameOf(r.path))}</span>${error}</td>
    <td>${badge(r.state)}</td>
    <td class="text">${version(r.current)} <span class="muted small">${made}</span></td>
    ${cells.join("")}
    <td class="num">${size(r.size)}</td>
    <td class="text">${lock}</td>
    <td><div class="acts">${actions(r)}</div></td></tr>`;
}

function conflictCard(c) {
  const what =
    c.kind === "delete-edit"
      ? `deleted on <b>${esc(c.site)}</b> while edited elsewhere (v${esc(c.incoming_version)}): the edit is kept`
      : c.kind === "locked-edit"
        ? `edited on <b>${esc(c.site)}</b> (v${esc(c.local_version)}) while locked by someone else`
        : `changed on <b>${esc(c.site)}</b> (v${esc(c.local_version)}) and elsewhere (v${esc(c.incoming_version)}) from the same base`;
  const beside = [
    c.conflict_path ? `<span class="mono">${esc(c.conflict_path)}</span> on the other sites` : "",
    c.incoming_path ? `<span class="mono">${esc(c.incoming_path)}</span> on ${esc(c.site)}` : "",
  ].filter(Boolean);
  return `<li class="conflict" data-path="${esc(c.path)}" data-root="${esc(c.root)}" data-testid="work-conflict">
    <div class="cpath mono">${esc(c.path)}</div>
    <div>${what}; both contents kept${beside.length ? `, beside the file as ${beside.join(" and ")}` : ""}. <span class="muted">${esc(ago(c.detected_at))}</span></div>
    ${c.message ? `<div class="muted small">${esc(c.message)}</div>` : ""}
    <div class="acts"><button class="btn small primary" data-work-act="resolve" data-testid="work-conflict-resolve">Resolve…</button>
    <button class="btn small ghost" data-work-act="history">History</button></div></li>`;
}

function paint() {
  const ws = workSettings();
  const off = $("#work-off");
  const project = esc(state.project);
  off.hidden = ws.enabled !== false || rows.length > 0;
  off.innerHTML = `Workfile sync is off for project <b>${project}</b>. Turn it on in the Settings tab
    (<span class="mono">workfiles.enabled</span>) or with <code>sitesync settings set --project ${project} workfiles.enabled true</code>.`;
  const list = $("#work-conflicts");
  list.hidden = conflicts.length === 0;
  list.innerHTML = conflicts.length
    ? `<h2 class="small">${conflicts.length === 1 ? "1 conflict waits" : `${conflicts.length} conflicts wait`} for a decision; the paths stop syncing until resolved</h2><ul>${conflicts.map(conflictCard).join("")}</ul>`
    : "";

  // the resolved workfile sites (the default is the project's active and remote site)
  const sites = rows.length ? Object.keys(rows[0].sites) : ws.sites || [];
  $("#work-head").innerHTML = `<th scope="col">Workfile</th><th scope="col">State</th><th scope="col">Current</th>
    ${sites.map((s) => `<th scope="col" class="num" title="The version ${esc(s)} holds">${esc(s)}</th>`).join("")}
    <th scope="col" class="num">Size</th><th scope="col">Lock</th><th scope="col">Actions</th>`;
  const shown = visible();
  const span = sites.length + 6;
  const body = $("#work-body");
  if (!shown.length) {
    const none = rows.length
      ? "No workfile matches these filters."
      : ws.enabled === false
        ? "Nothing tracked."
        : `No workfiles recorded yet: they appear after the next scan (Sync now, or the worker's loop).`;
    body.innerHTML = `<tr><td colspan="${span}" class="muted" data-testid="work-empty">${none}</td></tr>`;
  } else {
    body.innerHTML = grouped(shown)
      .map(
        (g) =>
          `<tr class="group"><th colspan="${span}" scope="rowgroup" class="text"><span class="mono">${esc(g.folder || "(project folder)")}</span>${
            g.root ? ` <span class="muted small">on root ${esc(g.root)}</span>` : ""
          }</th></tr>` + g.list.map((r) => row(r, sites)).join(""),
      )
      .join("");
  }
  $("#work-count").textContent = rows.length ? `${shown.length} of ${rows.length} workfiles` : "";
}

async function syncNow() {
  const button = $("#work-sync");
  button.disabled = true;
  try {
    const r = await api(`${base()}/sync`, { method: "POST", body: {} });
    const parts = [`${r.versions} new version${r.versions === 1 ? "" : "s"}`, `${r.transfers} cop${r.transfers === 1 ? "y" : "ies"} written (${size(r.bytes)})`];
    if (r.conflicts) parts.push(`${r.conflicts} conflict${r.conflicts === 1 ? "" : "s"} kept`);
    if (r.unstable.length) parts.push(`${r.unstable.length} still being written, taken next time`);
    toast(`Workfiles synced: ${parts.join(", ")}${r.errors.length ? `\n${r.errors.join("\n")}` : ""}`, r.errors.length ? "warn" : "ok");
  } catch (err) {
    fail(err);
  } finally {
    button.disabled = false;
    loadWorkfiles();
  }
}

async function resolve(path, root) {
  const open = conflicts.filter((c) => c.path === path && (!root || c.root === root));
  const about = open.map((c) => `<li>${esc(c.kind)}: v${esc(c.local_version ?? "–")} made on ${esc(c.site)}, v${esc(c.incoming_version ?? "–")} elsewhere</li>`).join("");
  const values = await ask(
    `Resolve ${nameOf(path)}`,
    `<p class="mono small">${esc(path)}</p>${about ? `<ul class="small">${about}</ul>` : ""}
     <label>Keep
       <select name="keep" data-testid="work-keep">
         <option value="local">this machine's content (the file at the path here)</option>
         <option value="remote">the other content (replaces the file here; yours stays in the history)</option>
         <option value="both">both: the conflict copy becomes a workfile of its own</option>
       </select></label>
     <p class="muted small">Nothing is deleted: the content that does not win stays recoverable from History.</p>`,
    "Resolve",
  );
  if (!values) return;
  try {
    const r = await api(`${base()}/resolve`, { method: "POST", body: { path, root, keep: values.keep } });
    const own = r.own_workfiles.length ? `; now tracked on its own: ${r.own_workfiles.join(", ")}` : "";
    toast(`Resolved ${nameOf(path)}: current is v${r.current}${own}`);
  } catch (err) {
    fail(err);
  }
  loadWorkfiles();
}

async function history(path, root) {
  let versions;
  try {
    versions = await api(`${base()}/history`, { query: { path, root } });
  } catch (err) {
    return fail(err);
  }
  const lines = versions
    .slice()
    .reverse()
    .map(
      (v) => `<tr data-version="${v.number}"${v.current ? ' class="current"' : ""}>
        <td>v${v.number}${v.current ? ' <span class="muted small">current</span>' : ""}</td><td>${esc(v.kind)}</td>
        <td>${esc(v.made_by_user)}@${esc(v.made_on_site)}</td><td title="${esc(when(v.recorded_at))}">${esc(ago(v.recorded_at))}</td>
        <td class="num">${v.hash === null ? "deleted" : size(v.size)}</td><td>${v.kept ? "kept" : '<span class="muted">not kept</span>'}</td></tr>`,
    )
    .join("");
  const restorable = versions.filter((v) => v.kept && !v.current && v.hash !== null);
  const choice = restorable.length
    ? `<label>Restore <select name="version" data-testid="work-restore-version"><option value="">— keep the current version —</option>${restorable
        .slice()
        .reverse()
        .map((v) => `<option value="${v.number}">v${v.number} (${esc(v.made_by_user)}@${esc(v.made_on_site)}, ${esc(ago(v.recorded_at))})</option>`)
        .join("")}</select></label><p class="muted small">A restore is a new version: it reaches every site like an edit.</p>`
    : `<p class="muted small">No older content is kept to restore.</p>`;
  const values = await ask(
    `History of ${nameOf(path)}`,
    `<p class="mono small">${esc(path)}</p><div class="table-wrap"><table class="grid history" data-testid="work-history-table" aria-label="Versions">
      <thead><tr><th scope="col">Version</th><th scope="col">Kind</th><th scope="col">By</th><th scope="col">When</th><th scope="col" class="num">Size</th><th scope="col">Kept</th></tr></thead>
      <tbody>${lines}</tbody></table></div>${choice}`,
    restorable.length ? "Restore" : "Close",
  );
  if (!values || !values.version) return;
  try {
    const v = await api(`${base()}/restore`, { method: "POST", body: { path, root, version: Number(values.version) } });
    toast(`Restored ${nameOf(path)}: v${values.version}'s content is now v${v.number}`);
  } catch (err) {
    fail(err);
  }
  loadWorkfiles();
}

async function lock(path, root) {
  try {
    const l = await api(`${base()}/lock`, { method: "POST", body: { path, root } });
    toast(`Locked ${nameOf(path)} for ${l.user}@${l.site} until ${new Date(l.expires_at * 1000).toLocaleString()}`);
  } catch (err) {
    fail(err);
  }
  loadWorkfiles();
}

async function unlock(path, root, force) {
  if (force) {
    const r = rows.find((x) => x.path === path);
    const holder = r && r.lock ? `${r.lock.user}@${r.lock.site}` : "another user";
    const ok = await confirmText(`Break the lock on ${nameOf(path)}?`, `${holder} holds it. Breaking it is recorded in the events with your name.`, "Break lock", true);
    if (!ok) return;
  }
  try {
    const r = await api(`${base()}/unlock`, { method: "POST", body: { path, root, force } });
    toast(r.unlocked ? `Unlocked ${nameOf(path)}` : `${nameOf(path)} was not locked`);
  } catch (err) {
    fail(err);
  }
  loadWorkfiles();
}
