// The REST API client: JSON in and out, one-line errors. Authentication is the server's session
// cookie (HttpOnly: this page never sees it), set by a one-time login link or by login(token).

const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(status, detail, kind) {
    super(detail);
    this.status = status;
    this.kind = kind;
  }
}

// True when the page was opened from a login link that was already used or has expired.
export function takeLoginRefused() {
  if (location.hash !== "#login-refused") return false;
  history.replaceState(null, "", `${location.pathname}${location.search}`);
  return true;
}

// Trade the token for the session cookie; throws ApiError (401: token refused).
export async function login(token) {
  await api("/auth/session", { method: "POST", body: { token } });
}

let onUnauthorized = null;
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

export async function api(path, { method = "GET", body, query } = {}) {
  const url = new URL(BASE + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, value);
  }
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, "the sitesync server does not answer; is `sitesync serve` still running?", "Offline");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    if (response.status === 401 && onUnauthorized && path !== "/auth/session") onUnauthorized();
    const detail = (data && data.detail) || `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, typeof detail === "string" ? detail : JSON.stringify(detail), data && data.error);
  }
  return data;
}
