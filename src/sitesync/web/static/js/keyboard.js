// Shortcuts for the whole page (never while typing in a field), and the help overlay that lists
// them together with the keys of the table.

import { $, typing } from "./ui.js";

const HELP = [
  ["?", "show this list"],
  ["/", "filter the Sync Queue"],
  ["1 2 3 4 5", "Sync Queue, Events, Sites, Settings, Workfiles"],
  ["↑ ↓  Home End", "move between rows"],
  ["Enter", "open the row's detail"],
  ["Space", "select the row (Shift: a range; Shift+↑↓ extends)"],
  ["PageDown PageUp  ] [", "next / previous page"],
  ["a", "select every row on this page"],
  ["Esc", "close the detail or a dialog; clear the selection"],
  ["s", "show or hide the projects"],
  ["Tab", "move between the parts of the page"],
];

export function initKeyboard(actions) {
  $("#help-keys").innerHTML = HELP.map(([keys, what]) => `<tr><th scope="row">${keys.split("  ").map((k) => `<kbd>${k}</kbd>`).join(" ")}</th><td>${what}</td></tr>`).join("");
  $("#help-button").addEventListener("click", openHelp);
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if ($("#modal").open || $("#help").open) return;
    if (event.key === "Escape") return actions.escape();
    if (typing(event.target)) return;
    const handler = {
      "?": openHelp,
      "/": actions.filter,
      1: () => actions.tab("queue"),
      2: () => actions.tab("events"),
      3: () => actions.tab("sites"),
      4: () => actions.tab("settings"),
      5: () => actions.tab("workfiles"),
      "]": () => actions.page("next"),
      "[": () => actions.page("prev"),
      a: actions.selectPage,
      s: actions.sidebar,
    }[event.key];
    if (handler) {
      event.preventDefault();
      handler();
    }
  });
}

export function openHelp() {
  const help = $("#help");
  if (!help.open) help.showModal();
}
