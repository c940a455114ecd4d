// What the dashboard shows right now; the project, tab, filters and sort live in the URL hash.

export const state = {
  project: null,
  projects: [],
  tab: "queue",
  filters: { q: "", folder: "", product: "", name: "", version: "", active_status: "", remote_status: "", status: "" },
  activeSite: "",
  remoteSite: "",
  sort: "folder",
  order: "asc",
  offset: 0,
  limit: 50,
  total: 0,
  items: [],
  page: null,
  selected: new Set(),
  openId: null,
  marker: null,
  refreshedAt: 0,
  queueBanner: [],
  worker: null,
};

export function saveLocation() {
  const params = new URLSearchParams();
  if (state.project) params.set("project", state.project);
  if (state.tab !== "queue") params.set("tab", state.tab);
  for (const [key, value] of Object.entries(state.filters)) if (value) params.set(key, value);
  if (state.sort !== "folder") params.set("sort", state.sort);
  if (state.order !== "asc") params.set("order", state.order);
  const hash = params.toString();
  history.replaceState(null, "", `${location.pathname}${location.search}${hash ? "#" + hash : ""}`);
}

export function loadLocation() {
  const params = new URLSearchParams(location.hash.slice(1));
  state.project = params.get("project");
  state.tab = params.get("tab") || "queue";
  for (const key of Object.keys(state.filters)) state.filters[key] = params.get(key) || "";
  state.sort = params.get("sort") || "folder";
  state.order = params.get("order") === "desc" ? "desc" : "asc";
}
