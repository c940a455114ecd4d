// The project list in the sidebar: one button per project with its state and counts.

import { api } from "./api.js";
import { esc } from "./format.js";
import { $, toast } from "./ui.js";
import { state } from "./state.js";

const ICON = { syncing: "⟳", idle: "✓", paused: "‖", disabled: "⊘", failed: "✖", error: "⚠" };
const STATE_TITLE = {
  syncing: "syncing",
  idle: "up to date",
  paused: "paused",
  disabled: "sync disabled",
  failed: "has failed transfers",
  error: "settings error",
};

let onChoose = () => {};

export function initProjects(choose) {
  onChoose = choose;
  $(".projects").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-project]");
    if (button) onChoose(button.dataset.project);
  });
}

export async function loadProjects() {
  try {
    state.projects = await api("/projects");
  } catch (err) {
    toast(err.message, "error");
    return;
  }
  const focused = document.activeElement?.dataset?.project;
  $(".projects").innerHTML = state.projects
    .map((p) => {
      const badges = [];
      if (p.lost) badges.push(`<span class="badge lost" title="representations lost on some site (no verified copy left there)">${p.lost} lost</span>`);
      if (p.failed) badges.push(`<span class="badge failed" title="representations failed on some site">${p.failed} ✖</span>`);
      const waiting = p.queued + p.in_progress;
      if (waiting && p.state !== "failed") badges.push(`<span class="badge queued" title="representations waiting or moving">${waiting}</span>`);
      const title = p.error ? p.error : `${STATE_TITLE[p.state]}${p.unavailable_sites.length ? `; unreachable: ${p.unavailable_sites.join(", ")}` : ""}`;
      const current = p.name === state.project;
      return `<li><button class="state-${p.state}${current ? " selected" : ""}" data-project="${esc(p.name)}" data-state="${p.state}"
        title="${esc(title)}" aria-current="${current}"><span class="icon" aria-hidden="true">${ICON[p.state]}</span><span class="pname">${esc(p.name)}</span>${badges.join("")}<span class="sr-only">, ${esc(title)}</span></button></li>`;
    })
    .join("");
  if (focused) $(`.projects button[data-project="${CSS.escape(focused)}"]`)?.focus();
  $("#sidebar-foot").textContent = state.projects.length ? "" : "No projects yet: sitesync project create NAME --root work=PATH";
}

export function currentProject() {
  return state.projects.find((p) => p.name === state.project) || null;
}
