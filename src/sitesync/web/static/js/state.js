// What the dashboard shows right now. Every view state lives in the URL hash (project, tab,
// filters, sort, page, page size, the open representation and its detail tab, the events and
// workfiles filters), so a link pasted in chat opens exactly this view; Back and Forward walk the views.

export const FILTER_KEYS = ["q", "folder", "product", "name", "version", "active_status", "remote_status", "status"];
export const EVENT_KEYS = { kind: "ekind", site: "esite", rep: "erep", q: "eq", all: "eall" };
export const WORK_KEYS = { q: "wq", state: "wstate" };
export const TABS = ["queue", "events", "sites", "settings", "workfiles"];
const PAGE_SIZES = [25, 50, 100, 200];

export const state = {
  project: null,
  projects: [],
  tab: "queue",
  filters: Object.fromEntries(FILTER_KEYS.map((k) => [k, ""])),
  activeSite: "",
  remoteSite: "",
  sort: "folder",
  order: "asc",
  sortChosen: false, // the URL or the user chose the sort; otherwise failures sort first when there are any
  offset: 0,
  limit: 50,
  total: 0,
  items: [],
  page: null,
  selected: new Set(),
  allMatching: false, // "select all N matching": actions go to the server with the filter
  openId: null,
  detailTab: "sites",
  events: { kind: "", site: "", rep: "", q: "", all: false },
  work: { q: "", state: "" },
  marker: null,
  refreshedAt: 0,
  worker: null,
  overview: null,
};

export function locationHash() {
  const params = new URLSearchParams();
  if (state.project) params.set("project", state.project);
  if (state.tab !== "queue") params.set("tab", state.tab);
  for (const key of FILTER_KEYS) if (state.filters[key]) params.set(key, state.filters[key]);
  if (state.activeSite) params.set("active", state.activeSite);
  if (state.remoteSite) params.set("remote", state.remoteSite);
  if (state.sortChosen) {
    params.set("sort", state.sort);
    if (state.order !== "asc") params.set("order", state.order);
  }
  const page = Math.floor(state.offset / state.limit) + 1;
  if (page > 1) params.set("page", String(page));
  if (state.limit !== 50) params.set("rows", String(state.limit));
  if (state.openId !== null) {
    params.set("open", String(state.openId));
    if (state.detailTab !== "sites") params.set("dtab", state.detailTab);
  }
  for (const [key, name] of Object.entries(EVENT_KEYS)) {
    const value = state.events[key];
    if (value) params.set(name, value === true ? "1" : value);
  }
  for (const [key, name] of Object.entries(WORK_KEYS)) if (state.work[key]) params.set(name, state.work[key]);
  return params.toString();
}

// push: a new entry in the browser history (a new view); otherwise the current one is updated
export function saveLocation(push = false) {
  const hash = locationHash();
  const url = `${location.pathname}${location.search}${hash ? "#" + hash : ""}`;
  if (url === `${location.pathname}${location.search}${location.hash}`) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

export function loadLocation() {
  const params = new URLSearchParams(location.hash.slice(1));
  state.project = params.get("project");
  state.tab = TABS.includes(params.get("tab")) ? params.get("tab") : "queue";
  for (const key of FILTER_KEYS) state.filters[key] = params.get(key) || "";
  state.activeSite = params.get("active") || "";
  state.remoteSite = params.get("remote") || "";
  state.sortChosen = params.has("sort");
  state.sort = params.get("sort") || "folder";
  state.order = params.get("order") === "desc" ? "desc" : "asc";
  const rows = Number(params.get("rows"));
  state.limit = PAGE_SIZES.includes(rows) ? rows : 50;
  const page = Math.max(1, Math.floor(Number(params.get("page")) || 1));
  state.offset = (page - 1) * state.limit;
  const open = Number(params.get("open"));
  state.openId = Number.isInteger(open) && open > 0 ? open : null;
  state.detailTab = ["sites", "files", "history"].includes(params.get("dtab")) ? params.get("dtab") : "sites";
  for (const [key, name] of Object.entries(EVENT_KEYS)) {
    const value = params.get(name) || "";
    state.events[key] = key === "all" ? value === "1" : value;
  }
  for (const [key, name] of Object.entries(WORK_KEYS)) state.work[key] = params.get(name) || "";
}

// a link to one representation of the current project, for chat
export function representationLink(id) {
  const params = new URLSearchParams();
  if (state.project) params.set("project", state.project);
  params.set("open", String(id));
  return `${location.origin}${location.pathname}#${params}`;
}
