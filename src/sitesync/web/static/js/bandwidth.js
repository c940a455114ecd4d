// The top bar's bandwidth indicator: this machine's limits in force and current rates, from
// GET /api/v1/bandwidth every few seconds. Self-contained: loaded by its own script tag.

import { api } from "./api.js";
import { esc, rate } from "./format.js";

const POLL_MS = 3000;

function side(entry, direction) {
  const now = entry[direction].rate >= 1 ? rate(entry[direction].rate) : "idle";
  return `${direction === "up" ? "↑" : "↓"} ${now} / ${entry[direction].limit_text}`;
}

function describe(data) {
  const scopes = [["this machine", data.machine], ...Object.entries(data.sites)];
  const shown = scopes.filter(([, e]) => e.schedule !== null || e.up.rate >= 1 || e.down.rate >= 1);
  const limited = scopes.filter(([, e]) => e.up.limit !== null || e.down.limit !== null);
  const lines = shown.map(([name, e]) => {
    let text = `${name}: ${side(e, "up")}, ${side(e, "down")}`;
    if (e.schedule) text += ` · ${e.schedule}` + (e.changes_at ? ` (${e.next} from ${e.changes_at.replace("T", " ")})` : "");
    return text;
  });
  const moving = `↑ ${rate(data.machine.up.rate)} ↓ ${rate(data.machine.down.rate)}`;
  const label = limited.length ? `⇅ ${limited.length} limit${limited.length > 1 ? "s" : ""} · ${moving}` : `⇅ no limit · ${moving}`;
  return { label, title: lines.join("\n") || "no bandwidth limits; nothing moving", limited: limited.length > 0 };
}

async function poll() {
  const box = document.querySelector("[data-testid=bandwidth]");
  if (!box) return;
  try {
    const { label, title, limited } = describe(await api("/bandwidth"));
    box.innerHTML = esc(label);
    box.title = title;
    box.classList.toggle("limited", limited);
    box.hidden = false;
  } catch {
    box.hidden = true; // the worker indicator next to it reports an unreachable server
  }
  setTimeout(poll, POLL_MS);
}

poll();
