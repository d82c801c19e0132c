// The UI's own small rules, kept apart from the DOM so they are unit tested: amounts, shortcut
// keys, the merged inbox, what a connection state is called, when a service address needs the
// user's allowance to go unencrypted.

import type { ConnState, Conversation, ProfileInfo } from "./bindings";

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
