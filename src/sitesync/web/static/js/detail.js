// The detail panel of one representation, in three tabs: its state on every site (with actions),
// every file on every site (errors, attempts, when a failed file is tried again, retry), and its
// history. The open representation and the tab are in the URL.

import { api } from "./api.js";
import { ago, bar, clock, esc, inTime, pct, plural, size, status, when } from "./format.js";
import { $, $$, arrowTabs, ask, confirmText, toast } from "./ui.js";
import { representationLink, saveLocation, state } from "./state.js";
import { loadQueue, paintOpen, rowElement } from "./queue.js";

let loading = false;
let data = null;

export function initDetail() {
  $("#detail-close").addEventListener("click", () => closeDetail(true));
  $("#detail-link").addEventListener("click", copyLink);
  for (const tab of $$("[data-dtab]")) tab.addEventListener("click", () => showTab(tab.dataset.dtab));
  arrowTabs($(".detail-tabs"), "[data-dtab]", (tab) => showTab(tab.dataset.dtab));
  $("#detail-body").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    await act(button.dataset.act, button.dataset.site || null, button.dataset.file ? Number(button.dataset.file) : null);
  });
}

export function closeDetail(returnFocus = false) {
  if (state.openId === null) return;
  const id = state.openId;
  state.openId = null;
  $("#detail").hidden = true;
  paintOpen();
  saveLocation(true);
  if (returnFocus) (rowElement(id) || $("#queue-body tr[data-id]"))?.focus();
}

export async function openDetail(id, { push = true, focus = true } = {}) {
  const changed = state.openId !== id;
  state.openId = id;
  if (changed) state.detailTab = "sites";
  $("#detail").hidden = false;
  paintOpen();
  if (push) saveLocation(changed);
  paintTabs();
  await loadDetail();
  if (focus) $("#detail-title").focus();
}

function showTab(tab) {
  state.detailTab = tab;
  saveLocation();
  paintTabs();
  if (data) render(data);
}

function paintTabs() {
  for (const tab of $$("[data-dtab]")) {
    const on = tab.dataset.dtab === state.detailTab;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
  }
  $("#detail-body").setAttribute("aria-labelledby", `dtab-${state.detailTab}`);
}

async function copyLink() {
  const link = representationLink(state.openId);
  try {
    await navigator.clipboard.writeText(link);
    toast("Link copied.");
  } catch {
    await ask("Link to this representation", `<input readonly value="${esc(link)}" data-testid="detail-link-text">`, "Close");
  }
}

export async function loadDetail() {
  if (state.openId === null || loading) return;
  loading = true;
  const id = state.openId;
  try {
    const fetched = await api(`/representations/${id}`);
    if (state.openId === id) {
      data = fetched;
      render(fetched);
    }
  } catch (err) {
    if (err.status === 404) closeDetail();
    if (err.status !== 401) toast(err.message, "error");
  } finally {
    loading = false;
  }
}

function siteCard(site) {
  const role = site.role ? `<span class="role">${site.role}</span>` : "";
  const moving = site.status === "in_progress" ? ` ${pct(site.progress)}` : "";
  const s = esc(site.site);
  const acts = [];
  if (site.status !== "present") acts.push(`<button class="btn small" data-act="download" data-site="${s}" data-testid="detail-download-${s}">Get here</button>`);
  if (site.status !== "none") acts.push(`<button class="btn small" data-act="resync" data-site="${s}">Re-sync</button>`);
  if (site.wanted) {
    acts.push(
      site.paused
        ? `<button class="btn small" data-act="resume" data-site="${s}" data-testid="detail-resume-${s}">Resume</button>`
        : `<button class="btn small" data-act="pause" data-site="${s}" data-testid="detail-pause-${s}">Pause</button>`,
    );
    acts.push(`<button class="btn small" data-act="priority" data-site="${s}">Priority ${esc(site.priority ?? "")}</button>`);
  }
  if (site.status !== "none") acts.push(`<button class="btn small danger" data-act="remove" data-site="${s}">Remove</button>`);
  return `<div class="sitecard" data-site="${s}" data-status="${esc(site.status)}">
    <div class="top"><span class="sname">${s}</span>${role}${status(site.status, moving)}</div>
    ${bar(site.status, site.progress)}
    <div class="muted small">${plural(site.files_present, "file")} present${site.files_failed ? `, <span class="err">${site.files_failed} failed</span>` : ""}${
      site.updated_at ? ` · ${esc(ago(site.updated_at))}` : ""
    }${site.paused ? " · paused" : ""}${site.priority ? ` · priority ${esc(site.priority)}` : ""}</div>
    ${site.last_error ? `<div class="err">${esc(site.last_error)}</div>` : ""}
    <div class="acts">${acts.join("")}</div>
  </div>`;
}

function fileRow(file) {
  const name = file.path.split("/").pop();
  const reps = file.replicas
    .map((r) => {
      const extra = r.status === "in_progress" ? ` ${pct(r.progress)}` : "";
      const attempts = r.attempts ? `<span class="muted small">${r.attempts} attempt${r.attempts > 1 ? "s" : ""}</span>` : "";
      const next = r.next_attempt_at
        ? `<span class="muted small" data-testid="next-retry" data-at="${r.next_attempt_at}" title="${esc(when(r.next_attempt_at))}">next try ${esc(inTime(r.next_attempt_at))} (${esc(clock(r.next_attempt_at))})</span>`
        : "";
      const retry = r.status === "failed" || r.status === "queued"
        ? `<button class="btn small" data-act="resync-file" data-site="${esc(r.site)}" data-file="${file.id}">Retry now</button>`
        : "";
      const err = r.last_error ? `<div class="err">${esc(r.last_error)}</div>` : "";
      return `<div class="rep" data-site="${esc(r.site)}"><span class="site">${esc(r.site)}</span>${status(r.status, extra)}${attempts}${next}${retry}${err}</div>`;
    })
    .join("");
  return `<tr data-file="${file.id}">
    <td><div class="path mono" title="${esc(file.path)}">${esc(name)}</div>
      <div class="muted small mono" title="${esc(file.hash)}">${size(file.size)} · ${esc(file.hash.slice(0, 22))}…</div></td>
    <td><div class="reps">${reps || '<span class="muted">no copies</span>'}</div></td>
  </tr>`;
}

function render(d) {
  const rep = d.representation;
  $("#detail-title").textContent = `${rep.folder} / ${rep.product} / ${rep.version} / ${rep.name}`;
  $("#detail-sub").textContent = `#${rep.id} · ${rep.files} files · ${size(rep.size)} · published ${ago(rep.created_at)} by ${rep.published_by}`;
  $("#dtab-files").textContent = `Files (${d.files.length})`;
  const scroll = $("#detail-body").scrollTop;
  let html = "";
  if (state.detailTab === "sites") {
    html = `<div class="sitecards" data-testid="detail-sites">${d.sites.map(siteCard).join("")}</div>`;
  } else if (state.detailTab === "files") {
    html = `<table class="files" data-testid="detail-files" aria-label="Files"><colgroup><col style="width:42%"><col></colgroup><tbody>${d.files.map(fileRow).join("")}</tbody></table>`;
  } else {
    const events = d.events
      .map((e) => `<li title="${esc(when(e.at))}"><span class="when">${esc(ago(e.at))}</span><span><b>${esc(e.kind)}</b> ${esc(e.site || "")} ${esc(e.message || "")} <span class="muted">by ${esc(e.actor)}</span></span></li>`)
      .join("");
    const all = `#project=${encodeURIComponent(rep.project)}&tab=events&erep=${rep.id}`;
    html = `<ul class="evlist" data-testid="detail-history">${events || '<li class="muted">no events</li>'}</ul><p><a href="${all}" data-testid="detail-all-events">Every event of this representation</a></p>`;
  }
  $("#detail-body").innerHTML = html;
  $("#detail-body").scrollTop = scroll;
}

async function act(kind, site, fileId) {
  const id = state.openId;
  if (id === null) return;
  let path = null;
  let body = { site };
  if (kind === "download") path = "download";
  if (kind === "pause" || kind === "resume") path = kind;
  if (kind === "resync") path = "reset";
  if (kind === "resync-file") {
    path = "reset";
    body = { site, file_id: fileId };
  }
  if (kind === "priority") {
    const values = await ask(`Priority on ${site}`, `<label>1 – 1000, higher goes first<input name="priority" type="number" min="1" max="1000" value="80"></label>`, "Set");
    if (!values) return;
    path = "priority";
    body = { site, priority: Number(values.priority) };
  }
  if (kind === "remove") {
    const ok = await confirmText(`Remove the copy on ${site}?`, "Refused if fewer than min_copies verified copies would remain elsewhere.", "Remove", true);
    if (!ok) return;
    path = "remove";
  }
  if (!path) return;
  try {
    const result = await api(`/representations/${id}/${path}`, { method: "POST", body });
    toast(result.message);
  } catch (err) {
    toast(err.message, "error");
  }
  await Promise.all([loadDetail(), loadQueue()]);
}
