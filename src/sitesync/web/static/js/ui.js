// Toasts, the modal dialog and small DOM helpers.

import { esc } from "./format.js";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

export function toast(message, kind = "ok", ms) {
  const box = document.createElement("div");
  box.className = `toast ${kind}`;
  box.setAttribute("data-testid", `toast-${kind}`);
  box.textContent = message;
  $("#toasts").appendChild(box);
  setTimeout(() => box.remove(), ms ?? (kind === "error" ? 12000 : 4500));
  box.addEventListener("click", () => box.remove());
}

// Resolves to the form's values (name -> value) when OK is pressed, or null.
export function ask(title, html, okLabel = "OK", danger = false) {
  const dialog = $("#modal");
  $("#modal-title").textContent = title;
  $("#modal-body").innerHTML = html;
  const ok = $("#modal-ok");
  ok.textContent = okLabel;
  ok.className = `btn ${danger ? "danger" : "primary"}`;
  return new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener("close", done);
      if (dialog.returnValue !== "ok") return resolve(null);
      const values = {};
      for (const input of $$("input, select", $("#modal-body"))) values[input.name] = input.value;
      resolve(values);
    };
    dialog.addEventListener("close", done);
    dialog.returnValue = "";
    dialog.showModal();
    const first = $("input", $("#modal-body"));
    if (first) first.focus();
  });
}

export function confirmText(title, text, okLabel, danger) {
  return ask(title, `<p>${esc(text)}</p>`, okLabel, danger);
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
