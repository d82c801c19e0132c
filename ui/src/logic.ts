// The UI's own small rules, kept apart from the DOM so they are unit tested: amounts, shortcut
// keys, the merged inbox, what a connection state is called, when a service address needs the
// user's allowance to go unencrypted; a chat's days and its unread line, which images may go
// and how their bytes cross IPC, who may see a post, how long a toast stays, and which text
// colour reads on a profile's colour.

import type { ConnState, Conversation, ProfileEventKind, ProfileInfo, Visibility } from "./bindings";

/** Parses "25", "25.5" or "25.50" (yuan) into fen; null for anything else. */
export function parseAmount(text: string): number | null {
  const m = /^\s*(\d{1,9})(?:[.,](\d{1,2}))?\s*$/.exec(text);
  if (!m) return null;
  const fen = Number(m[1]) * 100 + Number((m[2] ?? "0").padEnd(2, "0"));
  return fen > 0 ? fen : null;
}

/** ¥12.34 from 1234 fen; negative amounts keep their sign in front. */
export function formatMoney(fen: number): string {
  const sign = fen < 0 ? "−" : "";
  const abs = Math.abs(fen);
  return `${sign}¥${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, "0")}`;
}

/** 1536 → "1.5 KiB": binary units, one decimal below 10, none above. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  if (i === 0) return `${n} B`;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function totalUnread(profiles: readonly ProfileInfo[]): number {
  return profiles.reduce((n, p) => n + p.unread, 0);
}

/** Ctrl+1..9 picks the n-th profile in sidebar order; anything else, nothing. */
export function profileForShortcut(
  profiles: readonly ProfileInfo[],
  e: { key: string; ctrlKey: boolean; metaKey: boolean; altKey: boolean },
): string | null {
  if (!(e.ctrlKey || e.metaKey) || e.altKey) return null;
  if (!/^[1-9]$/.test(e.key)) return null;
  return profiles[Number(e.key) - 1]?.id ?? null;
}

export type StateWord = "connecting" | "live" | "offline" | "certificate" | "signed_out" | "stopped" | "locked";

export function stateWord(s: ConnState): StateWord {
  return s.state;
}

export interface InboxRow {
  profile: ProfileInfo;
  conversation: Conversation;
}

/** Every profile's conversations in one list, newest first, each with its profile. */
export function mergeInbox(
  profiles: readonly ProfileInfo[],
  byProfile: ReadonlyMap<string, readonly Conversation[]>,
): InboxRow[] {
  const rows: InboxRow[] = [];
  for (const p of profiles) {
    for (const c of byProfile.get(p.id) ?? []) rows.push({ profile: p, conversation: c });
  }
  return rows.sort((a, b) =>
    (b.conversation.last_message_at ?? "").localeCompare(a.conversation.last_message_at ?? ""),
  );
}

/** Profiles whose name contains the query (case-insensitive), for the quick switcher. */
export function matchProfiles(profiles: readonly ProfileInfo[], query: string): ProfileInfo[] {
  const q = query.trim().toLowerCase();
  if (!q) return [...profiles];
  return profiles.filter(
    (p) => p.name.toLowerCase().includes(q) || p.public_id.toLowerCase().includes(q),
  );
}

/** "HH:MM" ⇄ minutes after midnight, for quiet hours. */
export function minutesToTime(min: number): string {
  return `${String(Math.floor(min / 60)).padStart(2, "0")}:${String(min % 60).padStart(2, "0")}`;
}

export function timeToMinutes(text: string): number | null {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text.trim());
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  return h < 24 && min < 60 ? h * 60 + min : null;
}

/**
 * Whether a service address is plain http to another computer, so that the add-profile form
 * must ask the user to allow it. The core applies the same rule (and has the last word): https
 * anywhere; http to 127.0.0.0/8, [::1] or `localhost` (by name) never leaves this computer.
 * An address that does not parse asks nothing: the core reports what is wrong with it.
 */
export function needsInsecureAllowance(address: string): boolean {
  let url: URL;
  try {
    url = new URL(address.trim());
  } catch {
    return false;
  }
  if (url.protocol !== "http:") return false;
  const host = url.hostname.toLowerCase().replace(/\.$/, "");
  const loopback = host === "localhost" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
  return !loopback;
}

/** The letter on a profile's avatar. */
export function initial(name: string): string {
  return [...name.trim()][0]?.toUpperCase() ?? "?";
}

// ---------------------------------------------------------------- days, unread, scrolling

/** The local calendar day of a moment, "YYYY-MM-DD": what a day separator groups by. */
export function dayKey(at: Date | string | number): string {
  const d = at instanceof Date ? at : new Date(at);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export interface DayGroup<T> {
  day: string;
  items: T[];
}

/** Consecutive items of one local day together, in the order given (a chat is oldest first). */
export function groupByDay<T>(items: readonly T[], at: (item: T) => Date | string | number): DayGroup<T>[] {
  const groups: DayGroup<T>[] = [];
  for (const item of items) {
    const day = dayKey(at(item));
    const last = groups[groups.length - 1];
    if (last && last.day === day) last.items.push(item);
    else groups.push({ day, items: [item] });
  }
  return groups;
}

/** Whether a day separator reads "Today", "Yesterday" or the date itself. */
export function relativeDay(day: string, now: Date): "today" | "yesterday" | "other" {
  if (day === dayKey(now)) return "today";
  const y = new Date(now.getFullYear(), now.getMonth(), now.getDate() - 1);
  return day === dayKey(y) ? "yesterday" : "other";
}

/**
 * Where the "new messages" line goes: before the oldest of the last `unread` messages that
 * others wrote (my own never count as unread). -1 when nothing is unread.
 */
export function unreadMarkerIndex(senders: readonly string[], me: string, unread: number): number {
  if (unread <= 0) return -1;
  let left = unread;
  for (let i = senders.length - 1; i >= 0; i -= 1) {
    if (senders[i] === me) continue;
    left -= 1;
    if (left === 0) return i;
  }
  return senders.findIndex((s) => s !== me);
}

/** A log counts as "at the latest" within a few pixels of its end (fractional scrolling). */
export function isNearBottom(scrollTop: number, scrollHeight: number, clientHeight: number, slack = 24): boolean {
  return scrollHeight - scrollTop - clientHeight <= slack;
}

// ---------------------------------------------------------------- images

export const MAX_IMAGES = 9;
/** The service's bound on one upload. */
export const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const IMAGE_TYPES = ["image/jpeg", "image/png", "image/webp", "image/gif"];

/** Why a picked file cannot go as an image (the service takes these four kinds, ≤ 10 MiB). */
export function imageProblem(type: string, size: number): "not_image" | "too_large" | null {
  if (!IMAGE_TYPES.includes(type.toLowerCase())) return "not_image";
  return size > MAX_IMAGE_BYTES ? "too_large" : null;
}

/** Adds picked images after those already attached, up to the limit; says how many were left out. */
export function addImages<T>(current: readonly T[], incoming: readonly T[], max = MAX_IMAGES): { kept: T[]; leftOut: number } {
  const room = Math.max(0, max - current.length);
  return { kept: [...current, ...incoming.slice(0, room)], leftOut: Math.max(0, incoming.length - room) };
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard base64 (with padding, no `data:` prefix) of a file's bytes, as IPC carries them. */
export function base64FromBytes(buffer: ArrayBuffer | Uint8Array): string {
  const b = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const out: string[] = [];
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i] << 16) | (b[i + 1] << 8) | b[i + 2];
    out.push(B64[n >> 18], B64[(n >> 12) & 63], B64[(n >> 6) & 63], B64[n & 63]);
  }
  if (i < b.length) {
    const n = (b[i] << 16) | ((b[i + 1] ?? 0) << 8);
    out.push(B64[n >> 18], B64[(n >> 12) & 63], i + 1 < b.length ? B64[(n >> 6) & 63] : "=", "=");
  }
  return out.join("");
}

// ---------------------------------------------------------------- Moments

export type AudienceMode = "contacts" | "only" | "except";

/**
 * A post's visibility from the composer's choice. "Only these" with nobody chosen would show
 * the post to no one: null, so the composer asks for a name instead of posting into the void;
 * "all but these" with nobody chosen is simply every contact.
 */
export function buildVisibility(mode: AudienceMode, chosen: Iterable<string>): Visibility | null {
  const ids = [...new Set(chosen)].filter(Boolean).sort();
  if (mode === "contacts") return "contacts";
  if (mode === "only") return ids.length ? { only: ids } : null;
  return ids.length ? { except: ids } : "contacts";
}

/** Moment events move a feed on; everything else (messages, money, states) leaves it be. */
export function isMomentEvent(kind: ProfileEventKind): boolean {
  return kind.type === "event" && kind.kind.startsWith("moment.");
}

/** Contacts whose name or ID contains the query (case-insensitive), for pickers. */
export function filterContacts<T extends { public_id: string; display_name: string }>(contacts: readonly T[], query: string): T[] {
  const q = query.trim().toLowerCase();
  if (!q) return [...contacts];
  return contacts.filter((c) => c.display_name.toLowerCase().includes(q) || c.public_id.toLowerCase().includes(q));
}

// ---------------------------------------------------------------- toasts

export const TOAST_MS = 4000;
export const MAX_TOASTS = 3;

/** ~4 s; a long error gets time to be read (a little per character past 60), at most 8 s. */
export function toastDuration(text: string, isError: boolean): number {
  const extra = isError ? Math.max(0, [...text].length - 60) * 50 : 0;
  return Math.min(TOAST_MS + extra, 8000);
}

export interface Toast {
  id: number;
  text: string;
  isError: boolean;
  /** When it goes, in ms (Date.now()). */
  until: number;
}

/**
 * The toasts to show after one more arrives at `now`: expired ones dropped (a timer that a
 * sleeping window never ran cannot keep one up), the same text again refreshed rather than
 * stacked, and at most `max`, the oldest leaving first. Newest last.
 */
export function pushToast(shown: readonly Toast[], next: Toast, now: number, max = MAX_TOASTS): Toast[] {
  const kept = shown.filter((t) => t.until > now && t.text !== next.text);
  return [...kept, next].slice(-max);
}

// ---------------------------------------------------------------- colours

/** WCAG relative luminance of `#rrggbb` (null for anything else). */
export function luminance(hex: string): number | null {
  const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex.trim());
  if (!m) return null;
  const [r, g, b] = m.slice(1).map((x) => {
    const c = Number.parseInt(x, 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** Black or white, whichever reads better on a profile's colour (the user picks any colour). */
export function textOn(hex: string): "#000000" | "#ffffff" {
  const l = luminance(hex);
  if (l === null) return "#ffffff";
  const onWhite = 1.05 / (l + 0.05);
  const onBlack = (l + 0.05) / 0.05;
  // White while it passes (the look of the app's own colours), black where only black does.
  return onWhite >= 4.5 || onWhite >= onBlack ? "#ffffff" : "#000000";
}

/** The style that gives an element a profile's colour and the text colour that goes on it. */
export function colourVars(hex: string): string {
  return `--c:${hex};--on-c:${textOn(hex)}`;
}
