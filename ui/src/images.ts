// Images in chats and Moments: picking them (file dialog, drop, paste) with previews before
// they go, thumbnails shown at once, and the full image in a dialog on click. The bytes come
// from the core each time (its cache is in the profile's sandbox); the page keeps only the
// small thumbnails it is showing, in memory, so a redraw after an event does not flicker.

import * as api from "./bindings";
import type { ImageUpload } from "./bindings";
import { h, replace } from "./dom";
import { t } from "./i18n";
import { MAX_IMAGES, addImages, base64FromBytes, imageProblem } from "./logic";
import { attempt, flash, icon, openDialog } from "./ui";

// ---------------------------------------------------------------- drafts: images not sent yet

export interface Picked {
  file: File;
  /** An object URL for the preview; revoked when the image leaves the draft. */
  url: string;
}

/** The images attached to one composer, kept while the view redraws. */
export class ImageDraft {
  items: Picked[] = [];
  private listeners = new Set<() => void>();

  /** Adds files, refusing what the service would refuse and what is past the ninth. */
  add(files: Iterable<File>) {
    const ok: File[] = [];
    for (const f of files) {
      const problem = imageProblem(f.type, f.size);
      if (problem === "not_image") flash(t("notAnImage", { name: f.name || "?" }));
      else if (problem === "too_large") flash(t("imageTooLarge", { name: f.name || "?" }));
      else ok.push(f);
    }
    if (ok.length === 0) return;
    // Object URLs only for those kept: past the ninth, a file is never shown.
    const { kept, leftOut } = addImages(this.items.map((p) => p.file), ok);
    this.items = [...this.items, ...kept.slice(this.items.length).map((file) => ({ file, url: URL.createObjectURL(file) }))];
    if (leftOut > 0) flash(t("tooManyImages", { max: MAX_IMAGES, n: leftOut }));
    this.changed();
  }

  remove(i: number) {
    const [gone] = this.items.splice(i, 1);
    if (gone) URL.revokeObjectURL(gone.url);
    this.changed();
  }

  clear() {
    for (const p of this.items) URL.revokeObjectURL(p.url);
    this.items = [];
    this.changed();
  }

  get length() {
    return this.items.length;
  }

  /** The images as IPC carries them: each file's bytes in base64. */
  async uploads(): Promise<ImageUpload[]> {
    return Promise.all(this.items.map(async (p) => ({ data: base64FromBytes(await p.file.arrayBuffer()) })));
  }

  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed() {
    for (const fn of [...this.listeners]) fn();
  }
}

const drafts = new Map<string, ImageDraft>();

/** The draft of one composer (e.g. `chat:<profile>/<conversation>`), made on first use. */
export function draftFor(key: string): ImageDraft {
  let d = drafts.get(key);
  if (!d) {
    d = new ImageDraft();
    drafts.set(key, d);
  }
  return d;
}

/** The files a drop or a paste carries (images or not: the draft says what it refuses). */
function filesOf(data: DataTransfer | null): File[] {
  if (!data) return [];
  if (data.files.length) return [...data.files];
  return [...data.items].filter((i) => i.kind === "file").map((i) => i.getAsFile()).filter((f): f is File => f !== null);
}

/**
 * The picker of one composer: an icon button (keyboard-reachable, named for screen readers)
 * that opens the file dialog of a visually hidden `<input type=file>` (the one a test drives).
 */
export function imagePicker(draft: ImageDraft, testid: string, label: string, compact = false) {
  const input = h("input", { type: "file", accept: "image/*", multiple: true, class: "visually-hidden", tabindex: -1, "aria-hidden": "true", "data-testid": testid });
  input.addEventListener("change", () => {
    draft.add([...(input.files ?? [])]);
    input.value = "";
  });
  const button = compact
    ? h("button", { type: "button", class: "icon", "aria-label": label, title: label, onclick: () => input.click() }, icon("attach"))
    : h("button", { type: "button", class: "with-icon", onclick: () => input.click() }, icon("image"), label);
  return h("span", { class: "picker" }, button, input);
}

/** Drops of files on `zone` and pastes of images into `field` go into the draft. */
export function acceptImages(draft: ImageDraft, zone: HTMLElement, field: HTMLElement) {
  zone.addEventListener("dragover", (e) => {
    if (![...(e.dataTransfer?.types ?? [])].includes("Files")) return;
    e.preventDefault();
    zone.classList.add("dropping");
  });
  zone.addEventListener("dragleave", (e) => {
    if (!zone.contains(e.relatedTarget as Node | null)) zone.classList.remove("dropping");
  });
  zone.addEventListener("drop", (e) => {
    zone.classList.remove("dropping");
    const files = filesOf(e.dataTransfer);
    if (files.length === 0) return;
    e.preventDefault();
    draft.add(files);
  });
  field.addEventListener("paste", (e) => {
    const files = filesOf((e as ClipboardEvent).clipboardData);
    if (files.length === 0) return;
    e.preventDefault();
    draft.add(files);
  });
}

/** The previews of a draft, each with its remove button; redrawn as the draft changes. */
export function draftPreviews(draft: ImageDraft, testid: string) {
  const tray = h("ul", { class: "previews", "data-testid": testid, "aria-label": t("attachedImages") });
  const draw = () => {
    if (!tray.isConnected && tray.dataset.drawn) {
      stop();
      return;
    }
    tray.dataset.drawn = "1";
    tray.hidden = draft.length === 0;
    replace(tray, ...draft.items.map((p, i) =>
      h("li", { class: "pick" },
        h("img", { src: p.url, alt: t("imageN", { n: i + 1 }) }),
        h("button", { type: "button", class: "icon remove", "aria-label": t("removeImage", { n: i + 1 }), title: t("removeImage", { n: i + 1 }), onclick: () => draft.remove(i) }, "×"))));
  };
  const stop = draft.onChange(draw);
  draw();
  return tray;
}

// ---------------------------------------------------------------- thumbnails and the viewer

const thumbs = new Map<string, string>();
const THUMBS_KEPT = 300;

function dataUrl(m: api.MediaData) {
  return `data:${m.mime};base64,${m.data}`;
}

async function thumbUrl(profile: string, key: string): Promise<string | undefined> {
  const k = `${profile}/${key}`;
  const hit = thumbs.get(k);
  if (hit) {
    // Most recently used last: the first in the map is the one to let go.
    thumbs.delete(k);
    thumbs.set(k, hit);
    return hit;
  }
  const m = await api.media(profile, key, false).catch(() => undefined);
  if (!m) return undefined;
  const url = dataUrl(m);
  thumbs.set(k, url);
  while (thumbs.size > THUMBS_KEPT) thumbs.delete(thumbs.keys().next().value as string);
  return url;
}

/** Forgets the thumbnails of a profile (it was removed). */
export function forgetThumbnails(profile: string) {
  for (const k of [...thumbs.keys()]) if (k.startsWith(`${profile}/`)) thumbs.delete(k);
}

/**
 * The thumbnails of one message or post: each a button (so the keyboard reaches it) that opens
 * the full image; shown at once from memory, else as soon as the core answers.
 */
export function thumbnails(profile: string, keys: readonly string[], testid: string, className = "thumbs") {
  return h("div", { class: `${className} n${Math.min(keys.length, 9)}` },
    ...keys.map((key, i) => {
      const img = h("img", { alt: t("imageN", { n: i + 1 }), loading: "lazy", decoding: "async" });
      const cached = thumbs.get(`${profile}/${key}`);
      const button = h("button", { type: "button", class: "thumb", "data-testid": testid, "data-key": key, "aria-label": t("openImage", { n: i + 1, of: keys.length }), onclick: () => openViewer(profile, keys, i) }, img);
      if (cached) img.src = cached;
      else {
        button.classList.add("loading");
        void thumbUrl(profile, key).then((url) => {
          button.classList.remove("loading");
          if (url) img.src = url;
          else {
            button.classList.add("broken");
            button.title = t("imageUnavailable");
          }
        });
      }
      return button;
    }));
}

/** The full image in a dialog (the thumbnail meanwhile); Esc, a click or the close button
 * closes it, ← and → go through the other images of the same message or post. */
export function openViewer(profile: string, keys: readonly string[], start: number) {
  let at = start;
  const img = h("img", { class: "full", "data-testid": "media-full", alt: "" });
  const caption = h("p", { class: "muted caption", "aria-live": "polite" });
  const show = async (i: number) => {
    at = (i + keys.length) % keys.length;
    const key = keys[at];
    img.alt = t("imageN", { n: at + 1 });
    img.dataset.full = "false";
    img.src = thumbs.get(`${profile}/${key}`) ?? "";
    caption.textContent = keys.length > 1 ? t("imageOf", { n: at + 1, of: keys.length }) : "";
    const m = await attempt(() => api.media(profile, key, true));
    if (m && keys[at] === key) {
      img.src = dataUrl(m);
      img.dataset.full = "true";
      caption.textContent = `${keys.length > 1 ? `${t("imageOf", { n: at + 1, of: keys.length })} · ` : ""}${m.width} × ${m.height}`;
    }
  };
  const nav = (d: number) => h("button", { type: "button", class: "icon nav", "aria-label": d < 0 ? t("previousImage") : t("nextImage"), onclick: (e: Event) => { e.stopPropagation(); void show(at + d); } }, d < 0 ? "‹" : "›");
  const closeButton = h("button", { type: "button", class: "icon close", "aria-label": t("close"), title: t("close"), "data-testid": "media-close", onclick: () => close() }, "×");
  const content = h("div", { class: "viewer-body", onclick: (e: Event) => { if (e.target === img || e.target === content) close(); } },
    closeButton,
    keys.length > 1 ? nav(-1) : null,
    img,
    keys.length > 1 ? nav(1) : null,
    caption);
  content.addEventListener("keydown", (e) => {
    if (keys.length > 1 && e.key === "ArrowLeft") void show(at - 1);
    if (keys.length > 1 && e.key === "ArrowRight") void show(at + 1);
  });
  const close = openDialog(content, { className: "viewer", testid: "media-viewer", bare: true });
  closeButton.focus();
  void show(start);
}
