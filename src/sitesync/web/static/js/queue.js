// The Sync Queue table: filters, sorting, paging, selection kept across refreshes, bulk actions.

import { api } from "./api.js";
import { ago, bar, esc, pct, size, status, when } from "./format.js";
import { $, $$, ask, confirmText, debounce, toast } from "./ui.js";
import { state, saveLocation } from "./state.js";

const STATUSES = ["failed", "removing", "in_progress", "queued", "paused", "partial", "present", "none"];
let loading = null;
let again = false;
let lastClicked = null;
let onOpen = () => {};

export function initQueue({ open }) {
  onOpen = open;
  for (const select of $$("select[data-filter]")) {
    select.innerHTML = `<option value="">any</option>` + STATUSES.map((s) => `<option value="${s}">${s.replace("_", " ")}</option>`).join("");
  }
  const reloadSoon = debounce(() => {
    state.offset = 0;
    loadQueue();
    saveLocation();
  }, 250);
  $("#quick-filter").addEventListener("input", (e) => {
    state.filters.q = e.target.value;
    reloadSoon();
  });
  for (const input of $$("[data-filter]")) {
    input.addEventListener(input.tagName === "SELECT" ? "change" : "input", () => {
      state.filters[input.dataset.filter] = input.value;
      reloadSoon();
    });
  }
  $("#clear-filters").addEventListener("click", () => {
    for (const key of Object.keys(state.filters)) state.filters[key] = "";
    syncFilterInputs();
    state.offset = 0;
    loadQueue();
    saveLocation();
  });
  for (const head of $$("[data-sort]")) {
    head.addEventListener("click", (event) => {
      event.stopPropagation();
      const key = head.dataset.sort;
      if (state.sort === key) state.order = state.order === "asc" ? "desc" : "asc";
      else {
        state.sort = key;
        state.order = ["size", "files", "priority", "active_updated", "remote_updated", "active_progress", "remote_progress"].includes(key) ? "desc" : "asc";
      }
      state.offset = 0;
      loadQueue();
      saveLocation();
    });
  }
  $("#active-site").addEventListener("change", (e) => {
    state.activeSite = e.target.value;
    state.offset = 0;
    loadQueue();
  });
  $("#remote-site").addEventListener("change", (e) => {
    state.remoteSite = e.target.value;
    state.offset = 0;
    loadQueue();
  });
  $("#page-size").addEventListener("change", (e) => {
    state.limit = Number(e.target.value);
    state.offset = 0;
    loadQueue();
  });
  for (const button of $$("[data-page]")) {
    button.addEventListener("click", () => {
      const last = Math.max(0, Math.floor((state.total - 1) / state.limit) * state.limit);
      const to = { first: 0, prev: state.offset - state.limit, next: state.offset + state.limit, last }[button.dataset.page];
      state.offset = Math.max(0, Math.min(last, to));
      $("#queue-scroll").scrollTop = 0;
      loadQueue();
    });
  }
  $("#select-all").addEventListener("change", (e) => {
    for (const item of state.items) {
      if (e.target.checked) state.selected.add(item.id);
      else state.selected.delete(item.id);
    }
    paintSelection();
  });
  $("#clear-selection").addEventListener("click", () => {
    state.selected.clear();
    paintSelection();
  });
  $("#queue-body").addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (!row) return;
    const id = Number(row.dataset.id);
    if (event.target.matches("input[type=checkbox]") || event.ctrlKey || event.metaKey) {
      toggle(id, event.shiftKey);
      if (!event.target.matches("input[type=checkbox]")) event.preventDefault();
      return;
    }
    onOpen(id);
  });
  for (const button of $$("#selectionbar [data-action]")) {
    button.addEventListener("click", () => bulk(button.dataset.action));
  }
  $("#resync-button").addEventListener("click", (e) => {
    e.stopPropagation();
    $("#resync-menu").hidden = !$("#resync-menu").hidden;
  });
  for (const item of $$("#resync-menu [data-scope]")) {
    item.addEventListener("click", () => {
      $("#resync-menu").hidden = true;
      bulk("reset", { scope: item.dataset.scope });
    });
  }
  document.addEventListener("click", () => ($("#resync-menu").hidden = true));
  document.addEventListener("keydown", (e) => {
    if (e.key === "/" && !["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement.tagName)) {
      e.preventDefault();
      $("#quick-filter").focus();
    }
  });
}

export function syncFilterInputs() {
  $("#quick-filter").value = state.filters.q || "";
  for (const input of $$("[data-filter]")) input.value = state.filters[input.dataset.filter] || "";
}

function toggle(id, range) {
  const ids = state.items.map((x) => x.id);
  if (range && lastClicked !== null && ids.includes(lastClicked)) {
    const [a, b] = [ids.indexOf(lastClicked), ids.indexOf(id)].sort((x, y) => x - y);
    const on = !state.selected.has(id);
    for (const other of ids.slice(a, b + 1)) on ? state.selected.add(other) : state.selected.delete(other);
  } else if (state.selected.has(id)) state.selected.delete(id);
  else state.selected.add(id);
  lastClicked = id;
  paintSelection();
}

function paintSelection() {
  for (const row of $$("#queue-body tr[data-id]")) {
    const on = state.selected.has(Number(row.dataset.id));
    row.classList.toggle("selected", on);
    row.querySelector("input[type=checkbox]").checked = on;
  }
  const onPage = state.items.filter((x) => state.selected.has(x.id)).length;
  const all = $("#select-all");
  all.checked = onPage > 0 && onPage === state.items.length;
  all.indeterminate = onPage > 0 && onPage < state.items.length;
  const n = state.selected.size;
  $("#selectionbar").hidden = n === 0;
  $("#selection-count").textContent = `${n} selected`;
}

export function paintOpen() {
  for (const row of $$("#queue-body tr[data-id]")) row.classList.toggle("open", Number(row.dataset.id) === state.openId);
}

export async function loadQueue() {
  if (!state.project) return;
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    try {
      const f = state.filters;
      const page = await api(`/projects/${encodeURIComponent(state.project)}/representations`, {
        query: {
          q: f.q, folder: f.folder, product: f.product, name: f.name, version: f.version,
          active_status: f.active_status, remote_status: f.remote_status, status: f.status,
          active_site: state.activeSite, remote_site: state.remoteSite,
          sort: state.sort, order: state.order, offset: state.offset, limit: state.limit,
        },
      });
      state.items = page.items;
      state.total = page.total;
      state.page = page;
      render(page);
      state.refreshedAt = Date.now();
    } catch (err) {
      toast(err.message, "error");
    } finally {
      loading = null;
    }
    if (again) {
      again = false;
      await loadQueue();
    }
  })();
  return loading;
}

function siteCell(side) {
  const moving = side.status === "in_progress" ? ` ${pct(side.progress)}` : "";
  const title = side.last_error ? ` title="${esc(side.last_error)}"` : ` title="${esc(when(side.updated_at))}"`;
  return `<div class="sitecell"${title}>${status(side.status, moving)}<span class="time">${esc(side.updated_at ? ago(side.updated_at) : "")}</span>${
    side.status === "none" ? "" : bar(side.status, side.progress)
  }</div>`;
}

function rowHtml(item) {
  const prio = item.priority ?? "";
  return `<td><input type="checkbox" aria-label="select ${esc(item.id)}"></td>
    <td title="${esc(item.folder)}">${esc(item.folder)}</td>
    <td title="${esc(item.product)}">${esc(item.product)}</td>
    <td>${esc(item.version)}</td>
    <td title="${esc(item.name)} (id ${item.id})">${esc(item.name)}</td>
    <td data-col="active">${siteCell(item.active)}</td>
    <td data-col="remote">${siteCell(item.remote)}</td>
    <td class="num">${item.files}</td>
    <td class="num" title="${item.size} bytes">${size(item.size)}</td>
    <td class="num${prio > 50 ? " prio-high" : ""}">${esc(prio)}</td>
    <td data-col="status" title="${esc(item.status_site ? `${item.status} on ${item.status_site}` : "")}">${status(
      item.status,
      item.status_site && item.status !== "present" ? ` <span class="via">${esc(item.status_site)}</span>` : "",
    )}</td>`;
}

function render(page) {
  $("#active-head").textContent = page.active_site;
  $("#remote-head").textContent = page.remote_site;
  for (const select of [$("#active-site"), $("#remote-site")]) {
    const wanted = select.id === "active-site" ? page.active_site : page.remote_site;
    if (!Array.from(select.options).some((o) => o.value === wanted)) select.add(new Option(wanted, wanted));
    select.value = wanted;
  }
  for (const head of $$("[data-sort]")) {
    head.classList.toggle("sorted", head.dataset.sort === state.sort);
    head.classList.toggle("desc", head.dataset.sort === state.sort && state.order === "desc");
  }
  const body = $("#queue-body");
  const existing = new Map($$("tr[data-id]", body).map((tr) => [Number(tr.dataset.id), tr]));
  let previous = null;
  for (const item of page.items) {
    const html = rowHtml(item);
    let tr = existing.get(item.id);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.id = item.id;
    }
    existing.delete(item.id);
    if (tr.dataset.html !== html) {
      tr.innerHTML = html;
      tr.dataset.html = html;
    }
    tr.dataset.active = item.active.status;
    tr.dataset.remote = item.remote.status;
    const where = previous ? previous.nextSibling : body.firstChild;
    if (where !== tr) body.insertBefore(tr, where);
    previous = tr;
  }
  for (const tr of existing.values()) tr.remove();
  const empty = $("#queue-empty");
  empty.hidden = page.items.length > 0;
  empty.textContent = page.total === 0 && Object.values(state.filters).some(Boolean) ? "Nothing matches these filters." : "No representations yet.";
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + page.items.length;
  $("#page-info").textContent = `${first.toLocaleString()}–${last.toLocaleString()} of ${page.total.toLocaleString()}`;
  $("[data-page=prev]").disabled = $("[data-page=first]").disabled = page.offset === 0;
  $("[data-page=next]").disabled = $("[data-page=last]").disabled = last >= page.total;
  paintSelection();
  paintOpen();
  const banner = [];
  if (page.paused.project) banner.push(`project ${page.project} is paused`);
  if (page.paused.active_site) banner.push(`site ${page.active_site} is paused`);
  if (page.paused.remote_site && page.remote_site !== page.active_site) banner.push(`site ${page.remote_site} is paused`);
  state.queueBanner = banner;
}

function summarize(action, response) {
  const failed = response.results.filter((r) => !r.ok);
  const done = response.results.filter((r) => r.ok);
  const lines = [];
  if (done.length === 1) lines.push(done[0].message);
  else if (done.length) lines.push(`${action}: ${done.length} representations done`);
  if (failed.length) {
    lines.push(`${action}: ${failed.length} not done`);
    for (const f of failed.slice(0, 4)) lines.push(`#${f.representation_id}: ${f.message}`);
    if (failed.length > 4) lines.push(`… and ${failed.length - 4} more`);
  }
  toast(lines.join("\n"), failed.length ? (done.length ? "warn" : "error") : "ok");
}

export async function runActions(action, ids, extra = {}) {
  try {
    const response = await api("/actions", { method: "POST", body: { action, representation_ids: ids, ...extra } });
    summarize(action, response);
    return response;
  } catch (err) {
    toast(err.message, "error");
    return null;
  } finally {
    loadQueue();
  }
}

async function bulk(action, extra = {}) {
  const ids = Array.from(state.selected);
  if (!ids.length) return;
  if (action === "priority") {
    const values = await ask(
      `Priority of ${ids.length} representation${ids.length > 1 ? "s" : ""}`,
      `<label>1 – 1000, higher goes first (default 50)<input name="priority" type="number" min="1" max="1000" value="80" data-testid="priority-input"></label>`,
      "Set priority",
    );
    if (!values) return;
    extra = { priority: Number(values.priority) };
  }
  if (action === "remove") {
    const site = state.page ? state.page.active_site : "the active site";
    const ok = await confirmText(
      "Remove local copies?",
      `Delete ${ids.length} representation${ids.length > 1 ? "s" : ""} from ${site}. Copies that would leave fewer than min_copies verified copies elsewhere are kept.`,
      "Remove",
      true,
    );
    if (!ok) return;
  }
  await runActions(action, ids, extra);
}
