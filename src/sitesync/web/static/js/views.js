// The project list, and the Events, Sites and Settings tabs.

import { api } from "./api.js";
import { ago, esc, size, when } from "./format.js";
import { $, debounce, toast } from "./ui.js";
import { state } from "./state.js";

const ICON = { syncing: "⟳", idle: "✓", paused: "‖", disabled: "⊘", failed: "✖", error: "⚠" };
const STATE_TITLE = {
  syncing: "syncing",
  idle: "up to date",
  paused: "paused",
  disabled: "sync disabled",
  failed: "has failed transfers",
  error: "settings error",
};

// ---------------------------------------------------------------- projects

export async function loadProjects(onSelect) {
  try {
    state.projects = await api("/projects");
  } catch (err) {
    toast(err.message, "error");
    return;
  }
  const list = $(".projects");
  list.innerHTML = state.projects
    .map((p) => {
      const badges = [];
      if (p.failed) badges.push(`<span class="badge failed" title="representations failed on some site">${p.failed} ✖</span>`);
      const waiting = p.queued + p.in_progress;
      if (waiting && p.state !== "failed") badges.push(`<span class="badge queued" title="representations waiting or moving">${waiting}</span>`);
      const title = p.error ? p.error : `${STATE_TITLE[p.state]}${p.unavailable_sites.length ? `; unreachable: ${p.unavailable_sites.join(", ")}` : ""}`;
      return `<li class="state-${p.state}${p.name === state.project ? " selected" : ""}" data-project="${esc(p.name)}" data-state="${p.state}" title="${esc(title)}">
        <span class="icon" aria-label="${p.state}">${ICON[p.state]}</span><span class="pname">${esc(p.name)}</span>${badges.join("")}</li>`;
    })
    .join("");
  for (const li of list.querySelectorAll("li")) li.addEventListener("click", () => onSelect(li.dataset.project));
  $("#sidebar-foot").textContent = state.projects.length ? "" : "No projects yet: sitesync project create NAME --root work=PATH";
}

// ---------------------------------------------------------------- events

const KINDS = ["", "transfer", "failure", "publish", "request", "reset", "remove", "remove_begin", "pause", "resume", "priority", "deferred", "lease_expired", "site_unavailable", "site_available", "settings", "project"];
let newestEvent = null;
let oldestEvent = null;

export function initEvents() {
  $("#events-kind").innerHTML = KINDS.map((k) => `<option value="${k}">${k || "any"}</option>`).join("");
  const reload = debounce(() => loadEvents(true), 250);
  $("#events-filter").addEventListener("input", reload);
  $("#events-kind").addEventListener("change", reload);
  $("#events-all-projects").addEventListener("change", reload);
  $("#events-more").addEventListener("click", () => loadEvents(false, true));
}

function eventRow(e) {
  const cls = e.kind === "failure" ? " class=\"err\"" : "";
  const moved = e.kind === "transfer" && e.bytes !== null ? `${size(e.bytes)} verified${e.duration ? ` in ${e.duration.toFixed(2)} s` : ""}` : "";
  const site = e.source_site ? `${e.source_site} → ${e.site}` : e.site || "";
  return `<tr data-event="${e.id}"><td title="${esc(when(e.at))}">${esc(ago(e.at))}</td><td${cls}>${esc(e.kind)}</td><td>${esc(e.project || "")}</td>
    <td>${e.representation_id ?? ""}</td><td>${esc(site)}</td><td title="${esc(e.message || moved)}"${cls}>${esc(e.message || moved)}</td><td>${esc(e.actor)}</td></tr>`;
}

export async function loadEvents(reset = false, older = false) {
  const query = {
    project: $("#events-all-projects").checked ? "" : state.project,
    kind: $("#events-kind").value,
    q: $("#events-filter").value,
    limit: 100,
  };
  if (older) query.before_id = oldestEvent;
  else if (!reset && newestEvent !== null) query.after_id = newestEvent;
  try {
    const data = await api("/events", { query });
    const body = $("#events-body");
    const rows = data.events.map(eventRow).join("");
    if (reset) body.innerHTML = rows;
    else if (older) body.insertAdjacentHTML("beforeend", rows);
    else body.insertAdjacentHTML("afterbegin", rows);
    if (data.events.length) {
      if (reset || !older) newestEvent = Math.max(newestEvent ?? 0, data.events[0].id);
      if (reset || older) oldestEvent = data.events[data.events.length - 1].id;
    } else if (reset) {
      newestEvent = oldestEvent = null;
    }
    $("#events-more").hidden = reset || older ? data.events.length < 100 : $("#events-more").hidden;
  } catch (err) {
    toast(err.message, "error");
  }
}

// ---------------------------------------------------------------- sites

function kv(entries) {
  return `<dl class="kv">${entries.filter(([, v]) => v !== undefined && v !== null && v !== "").map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`).join("")}</dl>`;
}

export async function loadSites(onChange) {
  let sites;
  try {
    sites = await api("/sites", { query: { project: state.project } });
  } catch (err) {
    toast(err.message, "error");
    return;
  }
  state.sites = sites;
  const box = $("#sites-cards");
  box.innerHTML = sites
    .map((s) => {
      const avail = s.available === true ? "yes" : s.available === false ? "no" : "";
      const availText = s.available === true ? "reachable" : s.available === false ? `unreachable: ${s.unavailable_reason}` : "not checked";
      const roots = s.resolved_roots || {};
      const options = Object.entries(s.options || {}).map(([k, v]) => `${esc(k)} = ${esc(JSON.stringify(v))}`).join("<br>");
      return `<div class="card" data-site="${esc(s.name)}" data-testid="site-${esc(s.name)}">
        <div class="top"><span class="avail ${avail}" title="${esc(availText)}"></span><span class="title">${esc(s.name)}</span>
          ${s.this_machine ? '<span class="role">this machine</span>' : ""}${s.paused ? '<span class="role">paused</span>' : ""}</div>
        ${kv([
          ["provider", esc(s.provider)],
          ["status", esc(availText)],
          ["enabled", s.enabled === null || s.enabled === undefined ? "" : s.enabled ? "yes" : "no"],
          ["alternatives", esc((s.alternative_sites || []).join(", "))],
          ["roots", Object.entries(roots).map(([k, v]) => `<span class="mono">${esc(k)}</span> → <span class="mono">${esc(v)}</span>`).join("<br>")],
          ["options", options],
        ])}
        <div class="acts">
          <button class="btn small" data-check="${esc(s.name)}">Check now</button>
          <button class="btn small" data-site-pause="${esc(s.name)}" data-paused="${s.paused}">${s.paused ? "Resume site" : "Pause site"}</button>
        </div>
      </div>`;
    })
    .join("");
  for (const button of box.querySelectorAll("[data-check]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        const r = await api(`/sites/${encodeURIComponent(button.dataset.check)}/check`, { method: "POST", body: { project: state.project } });
        toast(r.available ? `${r.site} is reachable` : `${r.site}: ${r.reason}`, r.available ? "ok" : "error");
      } catch (err) {
        toast(err.message, "error");
      } finally {
        button.disabled = false;
      }
    });
  }
  for (const button of box.querySelectorAll("[data-site-pause]")) {
    button.addEventListener("click", async () => {
      const paused = button.dataset.paused === "true";
      try {
        await api(paused ? "/resume" : "/pause", { method: "POST", body: { site: button.dataset.sitePause } });
        toast(`${paused ? "resumed" : "paused"} site ${button.dataset.sitePause}`);
      } catch (err) {
        toast(err.message, "error");
      }
      loadSites(onChange);
      onChange();
    });
  }
}

// ---------------------------------------------------------------- settings

export function initSettings() {
  $("#setting-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const scope = $("#setting-scope").value;
    let key = $("#setting-key").value.trim();
    const text = $("#setting-value").value.trim();
    let value = null;
    if (text) {
      try {
        value = JSON.parse(text);
      } catch {
        value = text;
      }
    }
    const body = { key, value };
    if (scope === "project") body.project = state.project;
    if (scope === "system" && !key.startsWith("system.")) key = body.key = `system.${key}`;
    if (scope === "local") body.local = true;
    try {
      const result = await api("/settings", { method: "PUT", body });
      toast(`saved ${result.key} (${result.scope})`);
      loadSettings();
    } catch (err) {
      toast(err.message, "error");
    }
  });
}

export async function loadSettings() {
  $("#settings-project").textContent = state.project || "the default project";
  try {
    const [effective, stored] = await Promise.all([
      api("/settings", { query: { project: state.project, effective: true } }),
      api("/settings"),
    ]);
    $("#settings-effective").textContent = JSON.stringify(effective, null, 2);
    $("#settings-stored").textContent = JSON.stringify(stored, null, 2);
  } catch (err) {
    toast(err.message, "error");
  }
}
