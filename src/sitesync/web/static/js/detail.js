// The detail panel of one representation: its state on every site, every file on every site
// with errors, per-site and per-file actions, and its latest events.

import { api } from "./api.js";
import { ago, bar, esc, pct, size, status, when } from "./format.js";
import { $, $$, ask, confirmText, toast } from "./ui.js";
import { state } from "./state.js";
import { loadQueue, paintOpen } from "./queue.js";

let loading = false;

export function initDetail() {
  $("#detail-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("#modal").open) closeDetail();
  });
  $("#detail-body").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-act]");
    if (!button) return;
    await act(button.dataset.act, button.dataset.site || null, button.dataset.file ? Number(button.dataset.file) : null);
  });
}

export function closeDetail() {
  state.openId = null;
  $("#detail").hidden = true;
  paintOpen();
}

export async function openDetail(id) {
  state.openId = id;
  $("#detail").hidden = false;
  paintOpen();
  await loadDetail();
}

export async function loadDetail() {
  if (state.openId === null || loading) return;
  loading = true;
  const id = state.openId;
  try {
    const data = await api(`/representations/${id}`);
    if (state.openId === id) render(data);
  } catch (err) {
    if (err.status === 404) closeDetail();
    toast(err.message, "error");
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
    <div class="muted small">${site.files_present} files present${site.files_failed ? `, <span class="err">${site.files_failed} failed</span>` : ""}${
      site.updated_at ? ` · ${esc(ago(site.updated_at))}` : ""
    }${site.paused ? " · paused" : ""}</div>
    ${site.last_error ? `<div class="err">${esc(site.last_error)}</div>` : ""}
    <div class="acts">${acts.join("")}</div>
  </div>`;
}

function fileRow(file) {
  const name = file.path.split("/").pop();
  const reps = file.replicas
    .map((r) => {
      const extra = r.status === "in_progress" ? ` ${pct(r.progress)}` : "";
      const attempts = r.attempts ? `<span class="muted small">${r.attempts} attempts</span>` : "";
      const retry = r.status === "failed" || r.status === "queued"
        ? `<button class="btn small" data-act="resync-file" data-site="${esc(r.site)}" data-file="${file.id}">Retry</button>`
        : "";
      const err = r.last_error ? `<div class="err">${esc(r.last_error)}</div>` : "";
      return `<div class="rep" data-site="${esc(r.site)}"><span class="site">${esc(r.site)}</span>${status(r.status, extra)}${attempts}${retry}${err}</div>`;
    })
    .join("");
  return `<tr data-file="${file.id}">
    <td><div class="path mono" title="${esc(file.path)}">${esc(name)}</div>
      <div class="muted small mono" title="${esc(file.hash)}">${size(file.size)} · ${esc(file.hash.slice(0, 22))}…</div></td>
    <td><div class="reps">${reps || '<span class="muted">no copies</span>'}</div></td>
  </tr>`;
}

function render(data) {
  const rep = data.representation;
  $("#detail-title").textContent = `${rep.folder} / ${rep.product} / ${rep.version} / ${rep.name}`;
  $("#detail-sub").textContent = `#${rep.id} · ${rep.files} files · ${size(rep.size)} · published ${ago(rep.created_at)} by ${rep.published_by}`;
  const events = data.events
    .map((e) => `<li title="${esc(when(e.at))}"><span class="when">${esc(ago(e.at))}</span><span><b>${esc(e.kind)}</b> ${esc(e.site || "")} ${esc(e.message || "")}</span></li>`)
    .join("");
  const scroll = $("#detail-body").scrollTop;
  $("#detail-body").innerHTML = `
    <h4>Sites</h4>
    <div class="sitecards" data-testid="detail-sites">${data.sites.map(siteCard).join("")}</div>
    <h4>Files (${data.files.length})</h4>
    <table class="files" data-testid="detail-files"><colgroup><col style="width:45%"><col></colgroup><tbody>${data.files.map(fileRow).join("")}</tbody></table>
    <h4>History</h4>
    <ul class="evlist">${events || '<li class="muted">no events</li>'}</ul>`;
  $("#detail-body").scrollTop = scroll;
}

async function act(kind, site, fileId) {
  const id = state.openId;
  if (id === null) return;
  let path = null;
  let body = { site };
  if (kind === "download") path = "download";
  if (kind === "pause" || kind === "resume") path = kind;
  if (kind === "resync") {
    path = "reset";
    body = { site };
  }
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
  $$("#detail-body button").forEach((b) => (b.disabled = false));
}
