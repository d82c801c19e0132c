import { describe, expect, it } from "vitest";
import type { Conversation, ProfileInfo } from "./bindings";
import { errorMessage, pickLang, t } from "./i18n";
import {
  formatBytes,
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
