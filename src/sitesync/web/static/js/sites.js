// The Sites tab: each site of the project with numbers (files and bytes per state), its latest
// transfer and failure, whether the worker reaches it or backs off (until when), free and total
// space where the provider can tell, and actions: check now, pause, and the conformance test.

import { api } from "./api.js";
import { ago, clock, esc, inTime, size } from "./format.js";
import { $, ask, toast } from "./ui.js";
import { state } from "./state.js";

const usage = new Map(); // site -> the last answer of /sites/{name}/usage (asked once per view)
const configs = new Map(); // site -> its definition (GET /sites: roots here, options with secrets masked)
let onChange = () => {};

export function initSites(changed) {
  onChange = changed;
  $("#sites-cards").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-site-act]");
    if (!button) return;
    const site = button.closest("[data-site]").dataset.site;
    const act = button.dataset.siteAct;
    button.disabled = true;
    try {
      if (act === "check") await check(site);
      if (act === "pause") await pause(site, button.dataset.paused === "true");
      if (act === "test") await test(site);
    } finally {
      button.disabled = false;
    }
  });
}

function health(h) {
  if (h.state === "reachable") return ["reachable", "reachable (the worker in this server uses it)"];
  if (h.state === "backed_off") return ["backed_off", `unreachable, tried again ${inTime(h.until)} (${clock(h.until)}): ${h.reason}`];
  if (h.state === "elsewhere") return ["", h.reason || "another machine's own site"];
  return ["", `not known: ${h.reason || "not tried"} (Check now asks the site)`];
}

function numbers(site) {
  const f = site.files;
  const b = site.bytes;
  const row = (label, files, bytes, cls = "") => `<tr${cls}><td>${label}</td><td>${files.toLocaleString()}</td><td>${bytes === null ? "" : size(bytes)}</td></tr>`;
  return `<table class="nums" aria-label="Files and bytes on ${esc(site.name)}"><thead><tr><th scope="col">state</th><th scope="col">files</th><th scope="col">bytes</th></tr></thead><tbody>
    ${row("present", f.present, b.present)}${row("queued", f.queued, b.queued)}${row("in progress", f.in_progress, b.in_progress)}
    ${row("failed", f.failed, b.failed, f.failed ? ' class="err"' : "")}${f.removing ? row("removing", f.removing, null) : ""}</tbody></table>`;
}

function space(site) {
  if (!site.usage_known) return '<span class="muted">the provider cannot tell</span>';
  const u = usage.get(site.name);
  if (!u) return '<span class="muted">asking…</span>';
  if (!u.known || u.available === false) return `<span class="muted">${esc(u.reason || "unknown")}</span>`;
  if (u.total === null) return "no fixed limit";
  const used = u.total - (u.free ?? 0);
  const width = u.total ? Math.min(100, (used / u.total) * 100) : 0;
  return `<span data-testid="space-${esc(site.name)}">${size(u.free)} free of ${size(u.total)}</span><div class="bar" role="img" aria-label="${Math.round(width)}% used"><span style="width:${width}%;--c:${width > 90 ? "var(--failed)" : "var(--present)"}"></span></div>`;
}

function configuration(site) {
  const def = configs.get(site.name);
  if (!def) return "";
  const roots = Object.entries(def.resolved_roots || {}).map(([k, v]) => `<span class="mono">${esc(k)}</span> → <span class="mono">${esc(v)}</span>`).join("<br>");
  const options = Object.entries(def.options || {}).map(([k, v]) => `${esc(k)} = ${esc(JSON.stringify(v))}`).join("<br>");
  const alts = (def.alternative_sites || []).join(", ");
  return `<details class="config"><summary>Configuration</summary><dl class="kv">
    ${roots ? `<dt>roots</dt><dd>${roots}</dd>` : ""}${options ? `<dt>options</dt><dd class="mono">${options}</dd>` : ""}${alts ? `<dt>alternatives</dt><dd>${esc(alts)}</dd>` : ""}
  </dl></details>`;
}

function card(site) {
  const [cls, text] = health(site.health);
  const last = site.last_transfer
    ? `${esc(ago(site.last_transfer.at))}${site.last_transfer.source_site ? ` from ${esc(site.last_transfer.source_site)}` : ""}${
        site.last_transfer.representation_id ? ` · <a href="#project=${encodeURIComponent(state.project)}&open=${site.last_transfer.representation_id}">#${site.last_transfer.representation_id}</a>` : ""
      }`
    : '<span class="muted">none recently</span>';
  const error = site.last_error
    ? `<span class="err clamp" title="${esc(site.last_error.message || "")}">${esc(ago(site.last_error.at))}: ${esc(site.last_error.message || "")}</span>${
        site.last_error.representation_id ? ` <a href="#project=${encodeURIComponent(state.project)}&open=${site.last_error.representation_id}">#${site.last_error.representation_id}</a>` : ""
      }`
    : '<span class="muted">none recently</span>';
  const roles = site.roles.map((r) => `<span class="role">${r}</span>`).join("");
  return `<article class="card" data-site="${esc(site.name)}" data-testid="site-${esc(site.name)}" data-health="${esc(site.health.state)}" aria-labelledby="site-title-${esc(site.name)}">
    <div class="top"><span class="avail ${cls}" aria-hidden="true"></span><h3 class="title" id="site-title-${esc(site.name)}">${esc(site.name)}</h3>
      ${site.this_machine ? '<span class="role">this machine</span>' : ""}${roles}${site.paused ? '<span class="role">paused</span>' : ""}${site.enabled ? "" : '<span class="role">off</span>'}</div>
    <dl class="kv">
      <dt>provider</dt><dd>${esc(site.provider)}</dd>
      <dt>status</dt><dd data-testid="health-${esc(site.name)}">${esc(text)}</dd>
      <dt>space</dt><dd class="space">${space(site)}</dd>
      <dt>last transfer</dt><dd>${last}</dd>
      <dt>last error</dt><dd>${error}</dd>
    </dl>
    ${numbers(site)}
    ${configuration(site)}
    <div class="acts">
      <button class="btn small" data-site-act="check">Check now</button>
      <button class="btn small" data-site-act="pause" data-paused="${site.paused}">${site.paused ? "Resume site" : "Pause site"}</button>
      <button class="btn small" data-site-act="test" data-testid="test-${esc(site.name)}" title="Run the provider contract suite in a scratch folder (sitesync site test)">Test site</button>
    </div>
  </article>`;
}

export async function loadSites(fresh = false) {
  if (!state.project) return;
  let sites;
  try {
    const [stats, definitions] = await Promise.all([
      api(`/projects/${encodeURIComponent(state.project)}/sites`),
      api("/sites", { query: { project: state.project } }),
    ]);
    sites = stats;
    for (const def of definitions) configs.set(def.name, def);
  } catch (err) {
    if (err.status !== 401) toast(err.message, "error");
    return;
  }
  if (fresh) usage.clear();
  state.sites = sites;
  const open = new Set([...document.querySelectorAll("#sites-cards details[open]")].map((d) => d.closest("[data-site]").dataset.site));
  $("#sites-cards").innerHTML = sites.map(card).join("");
  for (const name of open) $(`#sites-cards [data-site="${CSS.escape(name)}"] details`)?.setAttribute("open", "");
  for (const site of sites) {
    if (site.usage_known && !usage.has(site.name)) fetchUsage(site);
  }
}

async function fetchUsage(site) {
  usage.set(site.name, null);
  try {
    usage.set(site.name, await api(`/sites/${encodeURIComponent(site.name)}/usage`, { query: { project: state.project } }));
  } catch (err) {
    usage.set(site.name, { known: false, reason: err.message });
  }
  const box = $(`#sites-cards [data-site="${CSS.escape(site.name)}"] .space`);
  if (box) box.innerHTML = space(site);
}

async function check(site) {
  try {
    const r = await api(`/sites/${encodeURIComponent(site)}/check`, { method: "POST", body: { project: state.project } });
    toast(r.available ? `${r.site} is reachable.` : `${r.site}: ${r.reason}`, r.available ? "ok" : "error");
  } catch (err) {
    toast(err.message, "error");
  }
}

async function pause(site, paused) {
  try {
    await api(paused ? "/resume" : "/pause", { method: "POST", body: { site } });
    toast(`Site ${site} is ${paused ? "resumed" : "paused"}.`);
  } catch (err) {
    toast(err.message, "error");
  }
  await loadSites();
  onChange();
}

async function test(site) {
  toast(`Testing ${site}…`, "ok", 2500);
  let r;
  try {
    r = await api(`/sites/${encodeURIComponent(site)}/test`, { method: "POST", body: { project: state.project } });
  } catch (err) {
    toast(err.message, "error");
    return;
  }
  const rows = r.checks
    .map((c) => {
      const result = c.skipped ? '<span class="muted">skipped</span>' : c.ok ? '<span class="ok-text">ok</span>' : '<span class="err">FAILED</span>';
      return `<tr data-check="${esc(c.name)}"><td class="mono">${esc(c.name)}</td><td>${result}</td><td class="num">${c.seconds.toFixed(2)}</td><td class="detail-text">${esc(c.detail)}</td></tr>`;
    })
    .join("");
  const summary = `${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`;
  await ask(
    `Test of site ${r.site}: ${r.ok ? "passed" : "FAILED"}`,
    `<p class="muted">${esc(r.provider)}: ${esc(r.description)} · project ${esc(r.project)}, root ${esc(r.root)} at <span class="mono">${esc(r.location)}</span></p>
     <p class="muted">capabilities: ${esc(r.capabilities.join(", ") || "none beyond the required contract")}</p>
     <table class="checks" data-testid="site-test-table" aria-label="Checks"><thead><tr><th scope="col">check</th><th scope="col">result</th><th scope="col">seconds</th><th scope="col">detail</th></tr></thead><tbody>${rows}</tbody></table>
     <p data-testid="site-test-summary" class="${r.ok ? "ok-text" : "err"}">${esc(summary)}</p>`,
    "Close",
  );
}
