// The overview strip above the queue: one button per state with its count (built from the
// states the server reports, so a new state appears without a change here), filtering the queue
// on click; and the transfers in progress with bytes done and an ETA.

import { api } from "./api.js";
import { duration, esc, label, plural, size, STATE_ORDER } from "./format.js";
import { $, toast } from "./ui.js";
import { state } from "./state.js";
import { recentRate } from "./pauses.js";

// always shown, even at zero: what a coordinator checks first
const ALWAYS = ["failed", "queued", "in_progress", "paused", "lost"];
let onFilter = () => {};

export function initOverview(filterByState) {
  onFilter = filterByState;
  $("#overview-states").addEventListener("click", (event) => {
    const chip = event.target.closest("button[data-state]");
    if (chip) onFilter(chip.getAttribute("aria-pressed") === "true" ? "" : chip.dataset.state);
  });
}

function ordered(states) {
  const rank = (name) => (STATE_ORDER.includes(name) ? STATE_ORDER.indexOf(name) : STATE_ORDER.length);
  return [...states].sort((a, b) => rank(a.state) - rank(b.state));
}

export async function loadOverview() {
  if (!state.project) return;
  let data;
  try {
    data = await api(`/projects/${encodeURIComponent(state.project)}/overview`);
  } catch (err) {
    if (err.status !== 401) toast(err.message, "error");
    return;
  }
  state.overview = data;
  paintOverview();
}

export function paintOverview() {
  const data = state.overview;
  if (!data) return;
  const counts = new Map(data.states.map((x) => [x.state, x.count]));
  for (const name of ALWAYS) if (!counts.has(name)) counts.set(name, 0);
  const shown = ordered([...counts].map(([name, count]) => ({ state: name, count })).filter((x) => x.count || ALWAYS.includes(x.state)));
  const active = state.filters.status;
  $("#overview-states").innerHTML = shown
    .map((x) => {
      const colour = `var(--${esc(x.state)}, var(--none))`;
      // nothing to show for a state at zero (and a server that does not know the state yet would refuse it)
      const off = !x.count && active !== x.state ? " disabled" : "";
      return `<button class="chip${x.count ? "" : " zero"}" style="--c:${colour}" data-state="${esc(x.state)}" data-testid="state-${esc(x.state)}"
        aria-pressed="${active === x.state}" title="Show only ${esc(label(x.state))}"${off}><span>${esc(label(x.state))}</span><span class="n">${x.count.toLocaleString()}</span></button>`;
    })
    .join("");
  const t = data.transfers;
  const box = $("#overview-transfers");
  if (!t.files) {
    box.textContent = `${plural(data.total, "representation")} · nothing moving`;
    box.dataset.eta = "";
    return;
  }
  const speed = recentRate() || t.bytes_per_second || 0;
  const left = Math.max(0, t.bytes_total - t.bytes_done);
  const eta = speed > 0 ? left / speed : t.eta_seconds;
  box.dataset.eta = eta ? String(Math.round(eta)) : "";
  box.textContent = `${plural(t.files, "file")} moving (${plural(t.representations, "representation")}) · ${size(t.bytes_done)} of ${size(t.bytes_total)} done${
    eta ? (eta < 1 ? " · almost done" : ` · about ${duration(eta)} left`) : ""
  }`;
}
