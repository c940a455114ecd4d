// Toasts, the modal dialog (focus returns where it was), small DOM helpers.

import { esc } from "./format.js";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

export function toast(message, kind = "ok", ms) {
  const box = document.createElement("div");
  box.className = `toast ${kind}`;
  box.setAttribute("data-testid", `toast-${kind}`);
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.textContent = message;
  $("#toasts").appendChild(box);
  setTimeout(() => box.remove(), ms ?? (kind === "error" ? 12000 : 4500));
  box.addEventListener("click", () => box.remove());
}

// Resolves to the form's values (name -> value) when OK is pressed, or null.
export function ask(title, html, okLabel = "OK", danger = false) {
  const dialog = $("#modal");
  const returnTo = document.activeElement;
  $("#modal-title").textContent = title;
  $("#modal-body").innerHTML = html;
  const ok = $("#modal-ok");
  ok.textContent = okLabel;
  ok.className = `btn ${danger ? "danger" : "primary"}`;
  return new Promise((resolve) => {
    const done = () => {
      dialog.removeEventListener("close", done);
      if (returnTo && returnTo.isConnected && typeof returnTo.focus === "function") returnTo.focus();
      if (dialog.returnValue !== "ok") return resolve(null);
      const values = {};
      for (const input of $$("input, select", $("#modal-body"))) values[input.name] = input.value;
      resolve(values);
    };
    dialog.addEventListener("close", done);
    dialog.returnValue = "";
    dialog.showModal();
    const first = $("input", $("#modal-body"));
    (first || ok).focus();
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

export function typing(target = document.activeElement) {
  return Boolean(target && (["INPUT", "SELECT", "TEXTAREA"].includes(target.tagName) || target.isContentEditable));
}

// A tab list: Left and Right move to the previous or next tab and choose it (ARIA tabs pattern).
export function arrowTabs(list, selector, choose) {
  list.addEventListener("keydown", (e) => {
    const tabs = $$(selector, list);
    const i = tabs.indexOf(document.activeElement);
    if (i < 0 || (e.key !== "ArrowRight" && e.key !== "ArrowLeft")) return;
    const next = tabs[(i + (e.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
    next.focus();
    choose(next);
  });
}
