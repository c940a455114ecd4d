// The Sync Queue table: server-side filters, sorting and paging, rows kept across refreshes,
// and the keyboard: arrows move between rows, Enter opens the detail, Space selects.

import { api } from "./api.js";
import { ago, bar, esc, pct, size, status, when } from "./format.js";
import { $, $$, debounce, toast } from "./ui.js";
import { FILTER_KEYS, saveLocation, state } from "./state.js";
import { currentProject } from "./projects.js";
import { paintSelection, toggle, toggleAll } from "./selection.js";

// the column filters offer the states this server knows; a state the overview reports beyond these
// is filtered through its button in the overview strip
const STATUSES = ["lost", "failed", "no_source", "removing", "in_progress", "queued", "paused", "partial", "present", "none"];
const DESCENDING_FIRST = ["size", "files", "priority", "active_updated", "remote_updated", "active_progress", "remote_progress"];
let loading = null;
let again = false;
let focusAfterLoad = null; // "first" | "last": after a page change by keyboard
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
  $("#clear-filters").addEventListener("click", () => setFilters({}));
  for (const button of $$("button.sort")) {
    button.addEventListener("click", (event) => {
      event.stopPropagation();
      sortBy(button.dataset.sort);
    });
  }
  for (const [id, key] of [["#active-site", "activeSite"], ["#remote-site", "remoteSite"]]) {
    $(id).addEventListener("change", (e) => {
      state[key] = e.target.value;
      state.offset = 0;
      loadQueue();
      saveLocation();
    });
  }
  $("#page-size").addEventListener("change", (e) => {
    state.limit = Number(e.target.value);
    state.offset = 0;
    loadQueue();
    saveLocation();
  });
  for (const button of $$("[data-page]")) button.addEventListener("click", () => goPage(button.dataset.page));
  $("#select-all").addEventListener("change", (e) => toggleAll(e.target.checked));
  const body = $("#queue-body");
  body.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-id]");
    if (!row) return;
    const id = Number(row.dataset.id);
    setCurrentRow(row, false);
    if (event.target.matches("input[type=checkbox]") || event.ctrlKey || event.metaKey || event.shiftKey) {
      toggle(id, event.shiftKey);
      if (!event.target.matches("input[type=checkbox]")) event.preventDefault();
      return;
    }
    onOpen(id);
  });
  body.addEventListener("keydown", rowKeys);
}

export function syncFilterInputs() {
  $("#quick-filter").value = state.filters.q || "";
  for (const input of $$("[data-filter]")) input.value = state.filters[input.dataset.filter] || "";
  $("#page-size").value = String(state.limit);
}

export function setFilters(values) {
  for (const key of FILTER_KEYS) state.filters[key] = values[key] || "";
  syncFilterInputs();
  state.offset = 0;
  loadQueue();
  saveLocation(true);
}

export function sortBy(key) {
  if (state.sort === key && state.sortChosen) state.order = state.order === "asc" ? "desc" : "asc";
  else {
    state.sort = key;
    state.order = DESCENDING_FIRST.includes(key) ? "desc" : "asc";
  }
  state.sortChosen = true;
  state.offset = 0;
  loadQueue();
  saveLocation();
}

export function goPage(which) {
  const last = Math.max(0, Math.floor((state.total - 1) / state.limit) * state.limit);
  const to = { first: 0, prev: state.offset - state.limit, next: state.offset + state.limit, last }[which];
  const offset = Math.max(0, Math.min(last, to));
  if (offset === state.offset) return false;
  state.offset = offset;
  $("#queue-scroll").scrollTop = 0;
  loadQueue();
  saveLocation(true);
  return true;
}

// ---------------------------------------------------------------- keyboard on rows

function rows() {
  return $$("#queue-body tr[data-id]");
}

function setCurrentRow(row, focus = true) {
  for (const other of rows()) other.tabIndex = other === row ? 0 : -1;
  if (focus) row.focus();
}

export function focusRows() {
  const current = rows().find((r) => r.tabIndex === 0) || rows()[0];
  if (current) setCurrentRow(current);
}

function rowKeys(event) {
  const row = event.target.closest("tr[data-id]");
  if (!row || event.target !== row) return;
  const all = rows();
  const i = all.indexOf(row);
  const move = (j) => {
    event.preventDefault();
    setCurrentRow(all[Math.max(0, Math.min(all.length - 1, j))]);
  };
  switch (event.key) {
    case "ArrowDown":
      if (event.shiftKey) toggle(Number(row.dataset.id), false, true);
      return move(i + 1);
    case "ArrowUp":
      if (event.shiftKey) toggle(Number(row.dataset.id), false, true);
      return move(i - 1);
    case "Home":
      return move(0);
    case "End":
      return move(all.length - 1);
    case "PageDown":
      event.preventDefault();
      focusAfterLoad = "first";
      if (!goPage("next")) move(all.length - 1);
      return;
    case "PageUp":
      event.preventDefault();
      focusAfterLoad = "last";
      if (!goPage("prev")) move(0);
      return;
    case "Enter":
      event.preventDefault();
      return onOpen(Number(row.dataset.id));
    case " ":
      event.preventDefault();
      return toggle(Number(row.dataset.id), event.shiftKey);
    default:
  }
}

// ---------------------------------------------------------------- loading and painting

function effectiveSort() {
  if (state.sortChosen) return [state.sort, state.order];
  // failed first by default when the project has failures
  return (currentProject()?.failed || 0) > 0 ? ["status", "asc"] : ["folder", "asc"];
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
      const [sort, order] = effectiveSort();
      const page = await api(`/projects/${encodeURIComponent(state.project)}/representations`, {
        query: {
          q: f.q, folder: f.folder, product: f.product, name: f.name, version: f.version,
          active_status: f.active_status, remote_status: f.remote_status, status: f.status,
          active_site: state.activeSite, remote_site: state.remoteSite,
          sort, order, offset: state.offset, limit: state.limit,
        },
      });
      if (!page.items.length && page.total > 0 && state.offset > 0) {
        // a link to a page that no longer exists: show the last one
        state.offset = Math.floor((page.total - 1) / state.limit) * state.limit;
        again = true;
      } else {
        state.items = page.items;
        state.total = page.total;
        state.page = page;
        render(page, sort, order);
        state.refreshedAt = Date.now();
      }
    } catch (err) {
      if (err.status !== 401) toast(err.message, "error");
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
  const name = `${item.folder} / ${item.product} / ${item.version} / ${item.name}`;
  const via = item.status_site && item.status !== "present" ? `<span class="via">on ${esc(item.status_site)}</span>` : "";
  return `<td class="col-check"><input type="checkbox" tabindex="-1" aria-label="Select ${esc(name)}"></td>
    <td class="col-folder text" title="${esc(item.folder)}">${esc(item.folder)}</td>
    <td class="col-product text" title="${esc(item.product)}">${esc(item.product)}</td>
    <td class="col-version">${esc(item.version)}</td>
    <td class="col-name text" title="${esc(item.name)} (id ${item.id})">${esc(item.name)}</td>
    <td class="col-active" data-col="active">${siteCell(item.active)}</td>
    <td class="col-remote" data-col="remote">${siteCell(item.remote)}</td>
    <td class="col-files num">${item.files}</td>
    <td class="col-size num" title="${item.size} bytes">${size(item.size)}</td>
    <td class="col-prio num${prio > 50 ? " prio-high" : ""}">${esc(prio)}</td>
    <td class="col-status" data-col="status" title="${esc(item.status_site ? `${item.status} on ${item.status_site}` : "")}"><div class="statuscell">${status(item.status)}${via}</div></td>`;
}

function paintSort(sort, order) {
  for (const th of $$("#view-queue thead th")) {
    const buttons = $$("button.sort", th);
    const current = buttons.find((b) => b.dataset.sort === sort);
    th.classList.toggle("sorted", Boolean(current));
    th.classList.toggle("desc", Boolean(current) && order === "desc");
    for (const b of buttons) b.toggleAttribute("data-current", b === current);
    if (current && current === buttons[0]) th.setAttribute("aria-sort", order === "desc" ? "descending" : "ascending");
    else th.removeAttribute("aria-sort");
  }
}

function render(page, sort, order) {
  $("#active-head").textContent = page.active_site;
  $("#remote-head").textContent = page.remote_site;
  for (const select of [$("#active-site"), $("#remote-site")]) {
    const wanted = select.id === "active-site" ? page.active_site : page.remote_site;
    if (!Array.from(select.options).some((o) => o.value === wanted)) select.add(new Option(wanted, wanted));
    select.value = wanted;
  }
  paintSort(sort, order);
  const body = $("#queue-body");
  const existing = new Map($$("tr[data-id]", body).map((tr) => [Number(tr.dataset.id), tr]));
  const hadFocus = body.contains(document.activeElement);
  let previous = null;
  for (const item of page.items) {
    const html = rowHtml(item);
    let tr = existing.get(item.id);
    if (!tr) {
      tr = document.createElement("tr");
      tr.dataset.id = item.id;
      tr.tabIndex = -1;
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
  const all = rows();
  if (all.length && !all.some((r) => r.tabIndex === 0)) all[0].tabIndex = 0;
  if (focusAfterLoad && all.length) {
    setCurrentRow(focusAfterLoad === "first" ? all[0] : all[all.length - 1]);
    focusAfterLoad = null;
  } else if (hadFocus && !body.contains(document.activeElement) && all.length) {
    setCurrentRow(all[0]);
  }
  const empty = $("#queue-empty");
  empty.hidden = page.items.length > 0;
  empty.textContent = page.total === 0 && Object.values(state.filters).some(Boolean) ? "Nothing matches these filters." : "No representations yet.";
  const first = page.total ? page.offset + 1 : 0;
  const last = page.offset + page.items.length;
  const pages = Math.max(1, Math.ceil(page.total / state.limit));
  $("#page-info").textContent = `${first.toLocaleString()}–${last.toLocaleString()} of ${page.total.toLocaleString()}`;
  $("#page-info").title = `page ${Math.floor(page.offset / state.limit) + 1} of ${pages}`;
  $("[data-page=prev]").disabled = $("[data-page=first]").disabled = page.offset === 0;
  $("[data-page=next]").disabled = $("[data-page=last]").disabled = last >= page.total;
  paintSelection();
  paintOpen();
}

export function paintOpen() {
  for (const row of rows()) row.classList.toggle("open", Number(row.dataset.id) === state.openId);
}

export function rowElement(id) {
  return $(`#queue-body tr[data-id="${id}"]`);
}
