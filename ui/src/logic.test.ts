import { describe, expect, it } from "vitest";
import type { Conversation, ProfileInfo } from "./bindings";
import { errorMessage, pickLang, t } from "./i18n";
import {
  addImages,
  base64FromBytes,
  buildVisibility,
  colourVars,
  dayKey,
  filterContacts,
  formatBytes,
  groupByDay,
  imageProblem,
  isMomentEvent,
  isNearBottom,
  pushToast,
  relativeDay,
  textOn,
  toastDuration,
  unreadMarkerIndex,
  formatMoney,
  initial,
  matchProfiles,
  mergeInbox,
  needsInsecureAllowance,
  parseAmount,
  profileForShortcut,
  stateWord,
  timeToMinutes,
  totalUnread,
} from "./logic";

function profile(id: string, name: string, unread = 0): ProfileInfo {
  return {
    id,
    name,
    color: "#2f6fed",
    position: 0,
    server_url: "http://127.0.0.1:8750",
    account_id: `a_${id}`,
    public_id: `${name.toLowerCase()}_id`,
    session_id: "s",
    created_at: 0,
    history_until: 0,
    allow_insecure_http: false,
    state: { state: "live" },
    unread,
  };
}

function conv(id: string, at: string): Conversation {
  return { id, kind: "direct", title: id, last_message_at: at, last_body: "hi", unread: 0 };
}

describe("amounts", () => {
  it("parses yuan into fen and refuses what is not an amount", () => {
    expect(parseAmount("25")).toBe(2500);
    expect(parseAmount("25.5")).toBe(2550);
    expect(parseAmount("0.01")).toBe(1);
    for (const bad of ["", "0", "-1", "1.234", "1e3", "abc", "12,345.6.7"]) {
      expect(parseAmount(bad)).toBeNull();
    }
  });
  it("formats fen with the sign in front", () => {
    expect(formatMoney(1234)).toBe("¥12.34");
    expect(formatMoney(-5)).toBe("−¥0.05");
  });
});

describe("sizes", () => {
  it("reads as a person would say it", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(250 * 1024 * 1024)).toBe("250 MiB");
    expect(formatBytes(3 * 1024 ** 3 + 1)).toBe("3.0 GiB");
  });
});

describe("profiles", () => {
  const ps = [profile("p1", "Work", 3), profile("p2", "Personal", 4)];
  it("sums unread counts for the tray and the title", () => {
    expect(totalUnread(ps)).toBe(7);
  });
  it("maps Ctrl+1..9 to profiles in order", () => {
    const key = (k: string, ctrlKey = true) => ({ key: k, ctrlKey, metaKey: false, altKey: false });
    expect(profileForShortcut(ps, key("2"))).toBe("p2");
    expect(profileForShortcut(ps, key("3"))).toBeNull();
    expect(profileForShortcut(ps, key("1", false))).toBeNull();
  });
  it("finds profiles by name or account for the quick switcher", () => {
    expect(matchProfiles(ps, "pers").map((p) => p.id)).toEqual(["p2"]);
    expect(matchProfiles(ps, "work_id").map((p) => p.id)).toEqual(["p1"]);
    expect(matchProfiles(ps, " ")).toHaveLength(2);
  });
  it("merges inboxes newest first, each row keeping its profile", () => {
    const rows = mergeInbox(
      ps,
      new Map([
        ["p1", [conv("bob", "2026-11-21T10:00:00Z")]],
        ["p2", [conv("carol", "2026-11-21T11:00:00Z"), conv("dan", "2026-11-20T09:00:00Z")]],
      ]),
    );
    expect(rows.map((r) => `${r.profile.id}/${r.conversation.id}`)).toEqual([
      "p2/carol",
      "p1/bob",
      "p2/dan",
    ]);
  });
  it("puts a letter on the avatar", () => {
    expect(initial(" work")).toBe("W");
    expect(initial("工作")).toBe("工");
  });
});

describe("unencrypted service addresses", () => {
  it("asks nothing for https, wherever it goes", () => {
    for (const url of ["https://example.com", "https://10.0.0.5:8443", "https://127.0.0.1"]) {
      expect(needsInsecureAllowance(url), url).toBe(false);
    }
  });
  it("asks nothing for plain http that stays on this computer", () => {
    for (const url of [
      "http://127.0.0.1:8750",
      "http://127.12.0.1",
      "http://[::1]:8750",
      "http://localhost:8750/",
      "http://LOCALHOST",
      " http://localhost ",
    ]) {
      expect(needsInsecureAllowance(url), url).toBe(false);
    }
  });
  it("asks before plain http to another computer", () => {
    for (const url of [
      "http://10.0.0.5",
      "http://example.com:8750",
      "http://[2001:db8::1]",
      "http://localhost.example.com",
      "http://128.0.0.1",
    ]) {
      expect(needsInsecureAllowance(url), url).toBe(true);
    }
  });
  it("leaves what is not an address to the core to explain", () => {
    for (const url of ["", "example.com", "ftp://example.com"]) {
      expect(needsInsecureAllowance(url), url).toBe(false);
    }
  });
});

describe("connection states", () => {
  it("tells a certificate problem apart from being offline, in both languages", () => {
    const s = { state: "certificate", detail: "the certificate of chat.example cannot be trusted" } as const;
    expect(stateWord(s)).toBe("certificate");
    expect(t("state_certificate", {}, "en")).toMatch(/certificate/);
    expect(t("state_certificate", {}, "zh")).toMatch(/证书/);
    expect(t("state_certificate", {}, "en")).not.toBe(t("state_offline", {}, "en"));
    expect(t("certificateBanner", { name: "Work", detail: s.detail }, "en")).toContain("chat.example");
  });
  it("marks a profile in cleartext as not encrypted, in both languages", () => {
    expect(t("notEncrypted", {}, "en")).toBe("not encrypted");
    expect(t("notEncrypted", {}, "zh")).toBe("未加密");
  });
});

describe("quiet hours", () => {
  it("reads times and refuses impossible ones", () => {
    expect(timeToMinutes("19:00")).toBe(1140);
    expect(timeToMinutes("9:05")).toBe(545);
    expect(timeToMinutes("24:00")).toBeNull();
  });
});

describe("language", () => {
  it("follows the system locale unless chosen", () => {
    expect(pickLang(["zh-CN", "en"], null)).toBe("zh");
    expect(pickLang(["de-DE", "en-GB"], null)).toBe("en");
    expect(pickLang(["zh-CN"], "en")).toBe("en");
  });
  it("shows errors by code in the user's language, the service's text otherwise", () => {
    const e = { code: "phone_account_limit", message: "x" };
    expect(errorMessage(e, "en")).toMatch(/two accounts/);
    expect(errorMessage(e, "zh")).toMatch(/两个账号/);
    expect(errorMessage({ code: "brand_new", message: "As the service says" }, "en")).toBe(
      "As the service says",
    );
  });
  it("keeps the core's detail of a certificate error and says how to allow cleartext", () => {
    const cert = { code: "certificate", message: "the certificate of chat.example cannot be trusted: it has expired" };
    expect(errorMessage(cert, "en")).toContain("chat.example");
    expect(errorMessage(cert, "zh")).toContain("chat.example");
    const http = { code: "insecure_http", message: "x" };
    expect(errorMessage(http, "en")).toMatch(/Allow unencrypted http/);
    expect(errorMessage(http, "zh")).toMatch(/允许通过未加密的 http/);
    expect(t("allowInsecureHttp", {}, "en")).toMatch(/^Allow unencrypted http/);
    expect(t("allowInsecureHttp", {}, "zh")).toMatch(/^允许通过未加密的 http/);
  });
  it("fills in names", () => {
    expect(t("typeMessage", { name: "Work" }, "en")).toBe("Message as Work");
  });
});

describe("days in a chat", () => {
  // Local times, so the test holds in every time zone.
  const at = (d: number, h: number) => new Date(2026, 10, d, h, 30);
  it("groups consecutive messages of one local day", () => {
    const msgs = [at(20, 9), at(20, 23), at(21, 0), at(21, 12), at(23, 8)];
    const groups = groupByDay(msgs, (m) => m);
    expect(groups.map((g) => [g.day, g.items.length])).toEqual([
      ["2026-11-20", 2],
      ["2026-11-21", 2],
      ["2026-11-23", 1],
    ]);
    expect(groupByDay([], (m: Date) => m)).toEqual([]);
  });
  it("reads ISO strings and unix milliseconds alike", () => {
    const d = at(5, 10);
    expect(dayKey(d.toISOString())).toBe("2026-11-05");
    expect(dayKey(d.getTime())).toBe("2026-11-05");
  });
  it("says today and yesterday, across a month's end", () => {
    const now = new Date(2026, 11, 1, 8, 0);
    expect(relativeDay("2026-12-01", now)).toBe("today");
    expect(relativeDay("2026-11-30", now)).toBe("yesterday");
    expect(relativeDay("2026-11-29", now)).toBe("other");
  });
});

describe("the unread line", () => {
  it("goes before the oldest unread message of others, skipping mine", () => {
    const senders = ["bob", "me", "bob", "me", "bob", "bob"];
    expect(unreadMarkerIndex(senders, "me", 2)).toBe(4);
    expect(unreadMarkerIndex(senders, "me", 3)).toBe(2);
    expect(unreadMarkerIndex(senders, "me", 0)).toBe(-1);
  });
  it("marks everything of others when more is unread than is shown", () => {
    expect(unreadMarkerIndex(["me", "bob", "bob"], "me", 9)).toBe(1);
    expect(unreadMarkerIndex(["me"], "me", 1)).toBe(-1);
  });
  it("counts a log scrolled to within a few pixels of its end as at the latest", () => {
    expect(isNearBottom(580, 1000, 400)).toBe(true);
    expect(isNearBottom(400, 1000, 400)).toBe(false);
  });
});

describe("images", () => {
  it("encodes bytes as standard base64, every padding case", () => {
    const known: [string, string][] = [["", ""], ["f", "Zg=="], ["fo", "Zm8="], ["foo", "Zm9v"], ["foob", "Zm9vYg=="], ["fooba", "Zm9vYmE="], ["foobar", "Zm9vYmFy"], ["✓", "4pyT"]];
    for (const [s, b64] of known) expect(base64FromBytes(new TextEncoder().encode(s)), s).toBe(b64);
    // Every byte value, against the platform's own encoder.
    const all = new Uint8Array(256).map((_, i) => i);
    expect(base64FromBytes(all.buffer)).toBe(btoa(String.fromCharCode(...all)));
  });
  it("takes at most nine, saying how many were left out", () => {
    const { kept, leftOut } = addImages([1, 2, 3, 4, 5, 6, 7], [8, 9, 10, 11]);
    expect(kept).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(leftOut).toBe(2);
    expect(addImages([1], [2])).toEqual({ kept: [1, 2], leftOut: 0 });
    expect(addImages([1, 2, 3, 4, 5, 6, 7, 8, 9], [10]).leftOut).toBe(1);
  });
  it("accepts what the service accepts", () => {
    expect(imageProblem("image/png", 1000)).toBeNull();
    expect(imageProblem("IMAGE/JPEG", 1000)).toBeNull();
    expect(imageProblem("image/svg+xml", 10)).toBe("not_image");
    expect(imageProblem("application/pdf", 10)).toBe("not_image");
    expect(imageProblem("image/webp", 10 * 1024 * 1024 + 1)).toBe("too_large");
  });
});

describe("Moments", () => {
  it("builds the visibility the service expects", () => {
    expect(buildVisibility("contacts", ["bob"])).toBe("contacts");
    expect(buildVisibility("only", ["carol", "bob", "bob"])).toEqual({ only: ["bob", "carol"] });
    expect(buildVisibility("except", ["bob"])).toEqual({ except: ["bob"] });
  });
  it("refuses a post for nobody, and hides it from nobody as every contact", () => {
    expect(buildVisibility("only", [])).toBeNull();
    expect(buildVisibility("except", [])).toBe("contacts");
  });
  it("moves the feed on for moment events only", () => {
    const ev = (kind: string) => ({ type: "event", seq: 1, at: "", kind, data: null }) as never;
    expect(isMomentEvent(ev("moment.like"))).toBe(true);
    expect(isMomentEvent(ev("moment.new"))).toBe(true);
    expect(isMomentEvent(ev("message.new"))).toBe(false);
    expect(isMomentEvent({ type: "state", state: "live" })).toBe(false);
  });
  it("finds contacts by name or ID", () => {
    const cs = [
      { public_id: "bob_the_2nd", display_name: "Bob" },
      { public_id: "carol_c", display_name: "Carol Chen" },
    ];
    expect(filterContacts(cs, "chen").map((c) => c.public_id)).toEqual(["carol_c"]);
    expect(filterContacts(cs, "BOB_").map((c) => c.public_id)).toEqual(["bob_the_2nd"]);
    expect(filterContacts(cs, "")).toHaveLength(2);
  });
});

describe("toasts", () => {
  const toast = (id: number, text: string, until: number) => ({ id, text, isError: false, until });
  it("go after about four seconds; a long error stays a little longer, never past eight", () => {
    expect(toastDuration("Saved", false)).toBe(4000);
    expect(toastDuration("x".repeat(300), false)).toBe(4000);
    expect(toastDuration("x".repeat(100), true)).toBe(6000);
    expect(toastDuration("x".repeat(1000), true)).toBe(8000);
  });
  it("stack at most three, drop expired ones and never repeat a text", () => {
    let shown = [toast(1, "a", 5000), toast(2, "b", 900)];
    shown = pushToast(shown, toast(3, "c", 6000), 1000);
    expect(shown.map((t) => t.id)).toEqual([1, 3]);
    shown = pushToast(shown, toast(4, "a", 7000), 1000);
    expect(shown.map((t) => t.id)).toEqual([3, 4]);
    shown = pushToast(shown, toast(5, "d", 7000), 1000);
    shown = pushToast(shown, toast(6, "e", 7000), 1000);
    expect(shown.map((t) => t.id)).toEqual([4, 5, 6]);
  });
});

describe("profile colours", () => {
  it("puts whichever of black and white reads better on the colour the user picked", () => {
    expect(textOn("#2f6fed")).toBe("#ffffff");
    expect(textOn("#1c1f24")).toBe("#ffffff");
    expect(textOn("#1f9d6b")).toBe("#000000");
    expect(textOn("#ffd60a")).toBe("#000000");
    expect(textOn("not a colour")).toBe("#ffffff");
    expect(colourVars("#FFFFFF")).toBe("--c:#FFFFFF;--on-c:#000000");
  });
});
