// What every view shares: toasts, running an action with its error shown, labelled fields and
// modal dialogs (native <dialog>: focus stays inside, Esc closes, the page behind is inert).

import { h } from "./dom";
import { errorMessage, t } from "./i18n";
import { type Toast, pushToast, textOn, toastDuration } from "./logic";

// ---------------------------------------------------------------- toasts

const toastArea = h("div", { class: "toasts", role: "status", "aria-live": "polite", "data-testid": "toasts" });
document.body.append(toastArea);
let toasts: Toast[] = [];
let toastSeq = 0;

/** Toasts live in the top-most modal dialog while one is up: elsewhere they would sit under its
 * backdrop, inert to the click that dismisses them. */
function placeToasts() {
  const open = [...document.querySelectorAll("dialog[open]")];
  const home = open[open.length - 1] ?? document.body;
  if (toastArea.parentElement !== home) home.append(toastArea);
}

function drawToasts() {
  placeToasts();
  const now = Date.now();
  toasts = toasts.filter((x) => x.until > now);
  toastArea.replaceChildren(
    ...toasts.map((x) =>
      h("button", {
        type: "button",
        class: x.isError ? "toast error" : "toast",
        "data-testid": "toast",
        title: t("dismiss"),
        onclick: () => {
          toasts = toasts.filter((y) => y.id !== x.id);
          drawToasts();
        },
      }, x.text),
    ),
  );
}

/** Shows a message at the top right for ~4 s (a click dismisses it sooner). */
export function flash(message: string, isError = true) {
  const now = Date.now();
  const ms = toastDuration(message, isError);
  toastSeq += 1;
  toasts = pushToast(toasts, { id: toastSeq, text: message, isError, until: now + ms }, now);
  drawToasts();
  setTimeout(drawToasts, ms + 50);
}

// A window that slept through its timers shows no stale toast when it wakes.
document.addEventListener("visibilitychange", drawToasts);
window.addEventListener("focus", drawToasts);

/** Runs an action, showing its error (in the user's language) instead of throwing. */
export async function attempt<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    flash(errorMessage(e));
    return undefined;
  }
}

// ---------------------------------------------------------------- fields

let fieldSeq = 0;

/** A visible label over its control, tied by id (so a click on the words focuses the field). */
export function field(label: string, control: HTMLElement, hint?: string) {
  fieldSeq += 1;
  if (!control.id) control.id = `f${fieldSeq}`;
  const hintEl = hint ? h("small", { class: "hint", id: `${control.id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: control.id }, label), control, hintEl);
}

/** Words only a screen reader reads (a label that the layout already makes plain). */
export function srOnly(text: string) {
  return h("span", { class: "sr-only" }, text);
}

// ---------------------------------------------------------------- dialogs

export interface DialogOptions {
  title?: string;
  testid?: string;
  className?: string;
  /** No title bar: the content brings its own close button. */
  bare?: boolean;
  onClose?: () => void;
}

/** Whether a modal dialog is up (views then leave the keyboard focus where it is). */
export function dialogOpen(): boolean {
  return document.querySelector("dialog[open]") !== null;
}

/**
 * Opens `content` in a modal dialog with a title and a close button; Esc, the close button and
 * a click beside the dialog close it. Returns the function that closes it.
 */
export function openDialog(content: HTMLElement, opts: DialogOptions = {}): () => void {
  const close = () => {
    if (dlg.open) dlg.close();
  };
  const closeButton = h("button", { type: "button", class: "icon", "aria-label": t("close"), title: t("close"), "data-testid": "dialog-close", onclick: close }, "×");
  const head = opts.bare
    ? null
    : opts.title
      ? h("header", { class: "dialog-head" }, h("h2", {}, opts.title), closeButton)
      : h("header", { class: "dialog-head untitled" }, closeButton);
  const dlg = h("dialog", { class: `dialog ${opts.className ?? ""}`, "data-testid": opts.testid, "aria-label": opts.title },
    h("div", { class: "dialog-body" }, head, content));
  // The dialog's own box has no padding: a click whose target is the dialog itself fell on
  // the backdrop around it.
  dlg.addEventListener("click", (e) => {
    if (e.target === dlg) close();
  });
  dlg.addEventListener("close", () => {
    if (dlg.contains(toastArea)) document.body.append(toastArea);
    dlg.remove();
    placeToasts();
    opts.onClose?.();
  });
  document.body.append(dlg);
  dlg.showModal();
  placeToasts();
  const first =
    content.querySelector<HTMLElement>("[autofocus]") ??
    content.querySelector<HTMLElement>("input:not([type=hidden]):not([type=checkbox]):not([type=radio]):not([type=file]), select, textarea");
  first?.focus();
  return close;
}

export function confirmDialog(text: string, yes: string, color: string): Promise<boolean> {
  return new Promise((resolve) => {
    let answered = false;
    const no = h("button", { type: "button", autofocus: true, onclick: () => { answered = true; close(); resolve(false); } }, t("cancel"));
    const close = openDialog(h("div", { "data-testid": "confirm", class: "stack" },
      h("p", {}, text),
      h("div", { class: "row end" },
        no,
        h("button", { type: "button", class: "primary", style: `background:${color};color:${textOn(color)}`, "data-testid": "confirm-yes", onclick: () => { answered = true; close(); resolve(true); } }, yes))),
      { className: "narrow", onClose: () => { if (!answered) resolve(false); } });
  });
}

/** The "nothing here yet" block: what it is, and what to do about it. */
export function emptyState(text: string, action?: HTMLElement | null, testid?: string) {
  return h("div", { class: "empty-state", "data-testid": testid }, h("p", {}, text), action ?? null);
}

const ICONS = {
  attach: '<path d="M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"/>',
  image: '<rect x="3" y="3" width="18" height="18" rx="2"/><circle cx="8.5" cy="8.5" r="1.5"/><path d="M21 15l-5-5L5 21"/>',
} as const;

/** A line icon drawn in the text colour (no emoji font needed), hidden from screen readers:
 * its button carries the name. */
export function icon(name: keyof typeof ICONS) {
  const span = h("span", { class: "svg-icon", "aria-hidden": "true" });
  span.innerHTML = `<svg viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">${ICONS[name]}</svg>`;
  return span;
}
