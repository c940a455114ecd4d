// The Events tab: the history newest first, filtered by kind, site, representation and text
// (kept in the URL). Every event shows its site and who did it; a representation is named and
// links to its detail; long messages expand.

import { api } from "./api.js";
import { ago, esc, size, when } from "./format.js";
import { $, debounce, toast } from "./ui.js";
import { saveLocation, state } from "./state.js";

const KINDS = ["transfer", "adopted", "failure", "source_missing", "copy_missing", "validate_missing", "fsck_corrupt", "publish", "request", "reset", "remove", "remove_begin", "remove_aborted", "pause", "resume", "priority", "deferred", "lease_expired", "site_unavailable", "site_available", "storage_marked", "settings", "project", "workfile_version", "workfile_conflict", "workfile_resolve", "workfile_restore", "workfile_transfer", "workfile_lock", "workfile_unlock"];
const PAGE = 100;
let newestEvent = null;
let oldestEvent = null;

export function initEvents() {
  $("#events-kind").innerHTML = ["", ...KINDS].map((k) => `<option value="${k}">${k ? k.replaceAll("_", " ") : "any"}</option>`).join("");
  const changed = () => {
    state.events.kind = $("#events-kind").value;
    state.events.site = $("#events-site").value;
    state.events.rep = $("#events-rep").value.trim().replace(/^#/, "");
    state.events.q = $("#events-filter").value;
    state.events.all = $("#events-all-projects").checked;
    saveLocation();
    loadEvents(true);
  };
  const soon = debounce(changed, 250);
  $("#events-filter").addEventListener("input", soon);
  $("#events-rep").addEventListener("input", soon);
  for (const id of ["#events-kind", "#events-site", "#events-all-projects"]) $(id).addEventListener("change", changed);
  $("#events-more").addEventListener("click", () => loadEvents(false, true));
  $("#events-body").addEventListener("click", (event) => {
    const toggle = event.target.closest("button.toggle");
    if (!toggle) return;
    const cell = toggle.closest(".msg");
    const open = cell.classList.toggle("expanded");
    toggle.textContent = open ? "less" : "more";
    toggle.setAttribute("aria-expanded", String(open));
  });
}

export function syncEventInputs(sites = []) {
  const site = $("#events-site");
  const names = [...new Set([...sites, state.events.site].filter(Boolean))];
  site.innerHTML = `<option value="">any</option>` + names.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join("");
  site.value = state.events.site;
  $("#events-kind").value = state.events.kind;
  $("#events-rep").value = state.events.rep;
  $("#events-filter").value = state.events.q;
  $("#events-all-projects").checked = state.events.all;
}

function repCell(e) {
  if (!e.representation_id) return "";
  const text = e.representation || `#${e.representation_id}`;
  const project = e.project || state.project || "";
  const href = `#project=${encodeURIComponent(project)}&open=${e.representation_id}`;
  return `<a href="${href}" data-testid="event-rep" title="${esc(text)} (#${e.representation_id})">${esc(text)}</a>`;
}

function eventRow(e) {
  const failure = ["failure", "source_missing", "copy_missing", "validate_missing", "fsck_corrupt"].includes(e.kind);
  const moved = e.kind === "transfer" && e.bytes !== null ? `${size(e.bytes)} verified${e.duration ? ` in ${e.duration.toFixed(2)} s` : ""}` : "";
  const site = e.source_site ? `${e.source_site} → ${e.site}` : e.site || (e.kind === "pause" || e.kind === "resume" ? "every site" : "");
  const message = e.message || moved;
  const long = message.length > 140;
  const project = state.events.all && e.project ? `<span class="muted">${esc(e.project)} · </span>` : "";
  return `<tr class="event-row" data-event="${e.id}" data-kind="${esc(e.kind)}">
    <td title="${esc(when(e.at))}">${esc(ago(e.at))}</td>
    <td${failure ? ' class="err"' : ""}>${esc(e.kind.replaceAll("_", " "))}</td>
    <td class="text">${project}${repCell(e)}</td>
    <td class="text" title="${esc(site)}">${esc(site)}</td>
    <td class="msg${failure ? " err" : ""}"><div class="short">${esc(message)}</div>${long ? '<button class="btn link small toggle" aria-expanded="false">more</button>' : ""}</td>
    <td class="text" title="${esc(e.actor)}">${esc(e.actor)}</td></tr>`;
}

// a reset (new filters) starts a new generation: answers to requests of an older one (a poll with the
// old filters still in flight) are dropped instead of being mixed into the new list
let generation = 0;

export async function loadEvents(reset = false, older = false) {
  if (reset) generation += 1;
  const asked = generation;
  const ev = state.events;
  const query = {
    project: ev.all ? "" : state.project,
    kind: ev.kind,
    site: ev.site,
    representation_id: /^\d+$/.test(ev.rep) ? ev.rep : "",
    q: ev.q,
    limit: PAGE,
  };
  if (older) query.before_id = oldestEvent;
  else if (!reset && newestEvent !== null) query.after_id = newestEvent;
  try {
    const data = await api("/events", { query });
    if (asked !== generation) return;
    const body = $("#events-body");
    const rows = data.events.map(eventRow).join("");
    if (reset) body.innerHTML = rows || `<tr><td colspan="6" class="muted">No events match.</td></tr>`;
    else if (older) body.insertAdjacentHTML("beforeend", rows);
    else if (rows) {
      body.querySelector("td[colspan]")?.parentElement.remove();
      body.insertAdjacentHTML("afterbegin", rows);
    }
    if (data.events.length) {
      if (reset || !older) newestEvent = Math.max(newestEvent ?? 0, data.events[0].id);
      if (reset || older) oldestEvent = data.events[data.events.length - 1].id;
    } else if (reset) {
      newestEvent = oldestEvent = null;
    }
    if (reset || older) $("#events-more").hidden = data.events.length < PAGE;
  } catch (err) {
    if (err.status !== 401) toast(err.message, "error");
  }
}
