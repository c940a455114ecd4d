// The sidebar: collapsible by button or shortcut; on narrow screens it starts closed and floats
// over the content (closing after a project is chosen). The choice is remembered per browser.

import { $ } from "./ui.js";

const NARROW = "(max-width: 1099px)";
const KEY = "sitesync.sidebar";

function narrow() {
  return window.matchMedia(NARROW).matches;
}

export function sidebarOpen() {
  return !document.body.classList.contains("sidebar-collapsed");
}

export function setSidebar(open, { remember = true } = {}) {
  document.body.classList.toggle("sidebar-collapsed", !open);
  $("#sidebar-toggle").setAttribute("aria-expanded", String(open));
  $("#scrim").hidden = !(open && narrow());
  if (remember && !narrow()) localStorage.setItem(KEY, open ? "open" : "closed");
}

export function toggleSidebar() {
  setSidebar(!sidebarOpen());
  if (sidebarOpen()) $(".projects button")?.focus();
}

// after choosing a project on a narrow screen the floating list gets out of the way
export function afterProjectChosen() {
  if (narrow() && sidebarOpen()) setSidebar(false, { remember: false });
}

export function initLayout() {
  const apply = () => setSidebar(!narrow() && localStorage.getItem(KEY) !== "closed", { remember: false });
  apply();
  window.matchMedia(NARROW).addEventListener("change", apply);
  $("#sidebar-toggle").addEventListener("click", toggleSidebar);
  $("#scrim").addEventListener("click", () => setSidebar(false, { remember: false }));
}
