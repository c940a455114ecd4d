// Readable sizes, times, durations, statuses and safe HTML.

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ESC[c]);
}

export function size(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  let value = Number(bytes);
  for (const unit of ["B", "KiB", "MiB", "GiB", "TiB"]) {
    if (Math.abs(value) < 1024 || unit === "TiB") return unit === "B" ? `${value} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${unit}`;
    value /= 1024;
  }
  return `${value.toFixed(1)} PiB`;
}

export function rate(bytesPerSecond) {
  return `${size(Math.round(bytesPerSecond))}/s`;
}

export function ago(epochSeconds) {
  if (!epochSeconds) return "–";
  const delta = Date.now() / 1000 - epochSeconds;
  if (delta < 5) return "just now";
  if (delta < 60) return `${Math.floor(delta)}s ago`;
  if (delta < 3600) return `${Math.floor(delta / 60)}m ago`;
  if (delta < 86400) return `${Math.floor(delta / 3600)}h ago`;
  if (delta < 86400 * 7) return `${Math.floor(delta / 86400)}d ago`;
  return new Date(epochSeconds * 1000).toISOString().slice(0, 10);
}

// "in 12 s", "in 3 min", "now" for a moment in the future
export function inTime(epochSeconds) {
  const delta = epochSeconds - Date.now() / 1000;
  if (delta < 1) return "now";
  return `in ${duration(delta)}`;
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60 ? `${s % 60} s` : ""}`.trim();
  const h = Math.floor(s / 3600);
  return `${h} h ${Math.round((s % 3600) / 60)} min`;
}

export function when(epochSeconds) {
  return epochSeconds ? new Date(epochSeconds * 1000).toLocaleString() : "";
}

export function clock(epochSeconds) {
  return epochSeconds ? new Date(epochSeconds * 1000).toLocaleTimeString() : "";
}

export function pct(progress) {
  return `${Math.round((progress || 0) * 100)}%`;
}

export function plural(n, word, many = `${word}s`) {
  return `${Number(n).toLocaleString()} ${n === 1 ? word : many}`;
}

// The known states in the order needing attention first; a state the server reports that is not
// listed here still shows (after these), with a neutral colour.
export const STATE_ORDER = ["lost", "failed", "no_source", "removing", "in_progress", "queued", "paused", "partial", "present", "none"];

export const STATUS_LABEL = {
  present: "present",
  in_progress: "in progress",
  queued: "queued",
  paused: "paused",
  failed: "failed",
  lost: "lost",
  missing: "missing",
  no_source: "no source",
  removing: "removing",
  partial: "partial",
  none: "—",
};

export function label(name) {
  return STATUS_LABEL[name] ?? String(name).replaceAll("_", " ");
}

export function status(name, extra = "") {
  return `<span class="st st-${esc(name)}" data-status="${esc(name)}">${esc(label(name))}${extra}</span>`;
}

export function bar(statusName, progress) {
  const moving = statusName === "in_progress" ? " moving" : "";
  const width = Math.max(0, Math.min(100, (progress || 0) * 100));
  return `<div class="bar${moving} st-${esc(statusName)}"><span style="width:${width}%"></span></div>`;
}
