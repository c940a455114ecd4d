// Readable sizes, times, statuses and safe HTML.

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
  return `${value.toFixed(1)} TiB`;
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

export function when(epochSeconds) {
  return epochSeconds ? new Date(epochSeconds * 1000).toLocaleString() : "";
}

export function pct(progress) {
  return `${Math.round((progress || 0) * 100)}%`;
}

export const STATUS_LABEL = {
  present: "present",
  in_progress: "in progress",
  queued: "queued",
  paused: "paused",
  failed: "failed",
  removing: "removing",
  partial: "partial",
  none: "—",
};

export function status(name, extra = "") {
  return `<span class="st st-${esc(name)}" data-status="${esc(name)}">${esc(STATUS_LABEL[name] ?? name)}${extra}</span>`;
}

export function bar(statusName, progress) {
  const moving = statusName === "in_progress" || statusName === "queued" ? " moving" : "";
  const width = Math.max(0, Math.min(100, (progress || 0) * 100));
  return `<div class="bar${statusName === "in_progress" ? moving : ""} st-${esc(statusName)}"><span style="width:${width}%"></span></div>`;
}
