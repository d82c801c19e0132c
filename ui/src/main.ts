// The app's one page. It keeps no profile data of its own (no web storage): every view asks
// the core through the generated bindings, and re-reads when the core reports an event.

import { Channel } from "@tauri-apps/api/core";
import * as api from "./bindings";
import type { AppInfo, Conversation, InboxEntry, InboxFilter, OperatedOfficial, PendingPayment, ProfileInfo, PublishOutcome, SmsPurpose, UiEvent } from "./bindings";
import { h, replace, value } from "./dom";
import { type Key, type Lang, errorMessage, lang, pickLang, setLang, t } from "./i18n";
import {
  formatBytes,
  formatMoney,
  initial,
  matchProfiles,
  mergeInbox,
  minutesToTime,
  needsInsecureAllowance,
  parseAmount,
  profileForShortcut,
  timeToMinutes,
  totalUnread,
} from "./logic";

type View = "chats" | "contacts" | "wallet" | "settings" | "inbox" | "search" | "resources" | "platform";

const S = {
  info: null as AppInfo | null,
  profiles: [] as ProfileInfo[],
  current: null as string | null,
  view: "chats" as View,
  conversation: null as string | null,
  status: "" as string,
  /** The public platform view: its filter and the customer conversation open in it. */
  platform: {
    filter: { official: null, mine: false, unclaimed: false } as InboxFilter,
    open: null as { profile: string; official_id: string; customer: string } | null,
  },
};

const root = document.getElementById("app")!;
const sidebar = h("nav", { class: "sidebar", "data-testid": "sidebar" });
const main = h("main", { class: "main" });
const overlay = h("div", { class: "overlay", hidden: true });
root.append(sidebar, main, overlay);

function cur(): ProfileInfo | undefined {
  return S.profiles.find((p) => p.id === S.current);
}

function flash(message: string, isError = true) {
  const bar = h("div", { class: isError ? "toast error" : "toast", role: "status", "data-testid": "toast" }, message);
  document.body.append(bar);
  setTimeout(() => bar.remove(), 6000);
}

/** Runs an action, showing its error (in the user's language) instead of throwing. */
async function attempt<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    flash(errorMessage(e));
    return undefined;
  }
}

// ---------------------------------------------------------------- sidebar

async function loadProfiles() {
  S.profiles = (await attempt(() => api.listProfiles())) ?? S.profiles;
  if (S.info?.window_profile) S.current = S.info.window_profile;
  if (!S.current || !S.profiles.some((p) => p.id === S.current)) S.current = S.profiles[0]?.id ?? null;
  const n = totalUnread(S.profiles);
  document.title = n > 0 ? `(${n}) Switchboard` : "Switchboard";
  renderSidebar();
}

/** The "not encrypted" mark of a profile the user allowed plain http to another computer. */
function insecureMark(p: ProfileInfo, testid: string) {
  return p.allow_insecure_http
    ? h("span", { class: "insecure", title: t("notEncryptedHint"), "data-testid": testid }, t("notEncrypted"))
    : null;
}

function renderSidebar() {
  const items = S.profiles.map((p, i) =>
    h(
      "button",
      {
        class: `profile ${p.id === S.current ? "active" : ""}`,
        style: `--c:${p.color}`,
        title: `${p.name} (${p.public_id}) · ${t(`state_${p.state.state}` as Key)}${p.allow_insecure_http ? ` · ${t("notEncrypted")}` : ""}${i < 9 ? ` · Ctrl+${i + 1}` : ""}`,
        "data-testid": `profile-${p.name}`,
        "data-state": p.state.state,
        onclick: () => select(p.id),
      },
      h("span", { class: "avatar" }, initial(p.name)),
      h("span", { class: `dot ${p.state.state}` }),
      p.unread > 0 ? h("span", { class: "badge", "data-testid": `unread-${p.name}` }, String(p.unread)) : null,
      h("span", { class: "pname" }, p.name),
      insecureMark(p, `insecure-${p.name}`),
    ),
  );
  const mainOnly = !S.info?.window_profile;
  replace(
    sidebar,
    h("div", { class: "brand" }, "Switchboard"),
    ...items,
    mainOnly && h("button", { class: "side-action", title: t("addProfile"), "data-testid": "add-profile", onclick: () => openAddProfile() }, "+"),
    mainOnly && S.profiles.length > 1 && h("button", { class: "side-action", title: t("inbox"), "data-testid": "inbox", onclick: () => show("inbox") }, "≡"),
    mainOnly && h("button", { class: "side-action", title: t("searchAll"), onclick: () => show("search") }, "⌕"),
    h("button", { class: "side-action", title: t("platform"), "aria-label": t("platform"), "data-testid": "platform", onclick: () => show("platform") }, "◎"),
    h("button", { class: "side-action", title: t("resources"), "data-testid": "resources", onclick: () => show("resources") }, "▤"),
  );
}

function select(profile: string, conversation: string | null = null) {
  const changed = profile !== S.current;
  S.current = profile;
  if (changed || conversation) S.conversation = conversation;
  if (S.view === "inbox" || S.view === "search" || S.view === "resources" || S.view === "platform" || conversation) S.view = "chats";
  renderSidebar();
  void renderMain();
}

function show(view: View) {
  S.view = view;
  void renderMain();
}

// ---------------------------------------------------------------- main area

async function renderMain() {
  const p = cur();
  if (S.view === "inbox") return renderInbox();
  if (S.view === "search") return renderSearch(null);
  if (S.view === "resources") return renderResources();
  if (S.view === "platform") return renderPlatform();
  if (!p) {
    replace(main, h("div", { class: "empty" }, h("p", {}, t("noProfiles")), h("button", { class: "primary", onclick: () => openAddProfile() }, t("addProfile"))));
    return;
  }
  const tabs: [View, Key][] = [["chats", "chats"], ["contacts", "contacts"], ["wallet", "wallet"], ["settings", "settings"]];
  const header = h(
    "header",
    { class: "bar", style: `--c:${p.color}` },
    h("span", { class: "avatar small" }, initial(p.name)),
    h("strong", { "data-testid": "current-profile" }, p.name),
    h("span", { class: "muted" }, ` ${p.public_id} · ${t(`state_${p.state.state}` as Key)}`),
    insecureMark(p, "insecure-current"),
    h("span", { class: "spacer" }),
    ...tabs.map(([v, k]) => h("button", { class: `tab ${S.view === v ? "active" : ""}`, "data-testid": `tab-${v}`, onclick: () => show(v) }, t(k))),
  );
  const banner =
    p.state.state === "signed_out"
      ? h("div", { class: "banner", "data-testid": "signed-out" }, t("signedOutBanner", { name: p.name }), " ",
          !S.info?.window_profile && h("button", { onclick: () => openAddProfile(p.public_id) }, t("signInAgain")))
      : p.state.state === "certificate"
        ? h("div", { class: "banner", "data-testid": "certificate" }, t("certificateBanner", { name: p.name, detail: p.state.detail }))
        : p.state.state === "locked"
          ? h("div", { class: "banner", "data-testid": "locked" }, t("lockedBanner", { name: p.name }))
          : null;
  const body = h("section", { class: "body" });
  replace(main, header, banner, body);
  if (S.view !== "chats") void api.setOpenConversation(p.id, null).catch(() => {});
  if (S.view === "chats") await renderChats(p, body);
  else if (S.view === "contacts") await renderContacts(p, body);
  else if (S.view === "wallet") await renderWallet(p, body);
  else if (S.view === "settings") await renderSettings(p, body);
}

async function renderChats(p: ProfileInfo, body: HTMLElement) {
  const convs = (await attempt(() => api.conversations(p.id))) ?? [];
  const list = h(
    "div",
    { class: "list" },
    h("input", { class: "search", placeholder: t("search"), onkeydown: (e: Event) => {
      const ev = e as KeyboardEvent;
      if (ev.key === "Enter") void renderSearch(p.id, (ev.target as HTMLInputElement).value);
    } }),
    convs.length === 0 ? h("p", { class: "muted pad" }, t("noConversations")) : null,
    ...convs.map((c) => conversationRow(p, c, () => openConversation(p.id, c.id))),
  );
  const chat = h("div", { class: "chat" });
  replace(body, list, chat);
  if (S.conversation) await renderChat(p, S.conversation, chat);
  else replace(chat, h("p", { class: "muted center" }, t("pickConversation")));
}

function conversationRow(p: ProfileInfo, c: Conversation, onclick: () => void, tag = false) {
  return h(
    "button",
    { class: `conv ${S.conversation === c.id && S.current === p.id ? "active" : ""}`, "data-testid": `conv-${c.id}`, onclick },
    tag ? h("span", { class: "tag", style: `--c:${p.color}` }, p.name) : null,
    h("span", { class: "title" }, c.title),
    c.unread > 0 ? h("span", { class: "badge" }, String(c.unread)) : null,
    h("span", { class: "preview" }, c.last_body ?? ""),
  );
}

async function openConversation(profile: string, conversation: string) {
  S.current = profile;
  S.conversation = conversation;
  S.view = "chats";
  await attempt(() => api.markRead(profile, conversation));
  await loadProfiles();
  await renderMain();
}

async function renderChat(p: ProfileInfo, conversation: string, pane: HTMLElement) {
  await attempt(() => api.setOpenConversation(p.id, conversation));
  const [messages, outbox] = await Promise.all([
    attempt(() => api.messages(p.id, conversation)),
    attempt(() => api.outbox(p.id)),
  ]);
  const log = h(
    "div",
    { class: "messages", "data-testid": "messages" },
    ...(messages ?? []).map((m) =>
      h("div", { class: `msg ${m.sender === p.public_id ? "mine" : ""}`, "data-testid": "message" },
        h("span", { class: "who" }, m.sender === p.public_id ? t("you") : m.sender_name),
        h("span", { class: "text" }, m.body),
        h("time", {}, new Date(m.sent_at).toLocaleTimeString())),
    ),
    ...(outbox ?? []).filter((o) => o.to_id === conversation).map((o) =>
      h("div", { class: "msg mine pending", "data-testid": "pending" }, h("span", { class: "text" }, o.body), h("time", {}, t("pending"))),
    ),
  );
  const input = h("textarea", { name: "body", rows: 2, placeholder: t("typeMessage", { name: p.name }), "data-testid": "composer" });
  const send = async () => {
    const text = input.value.trim();
    if (!text) return;
    if (await attempt(() => api.sendMessage(p.id, conversation, text))) {
      input.value = "";
      await renderChat(p, conversation, pane);
    }
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      void send();
    }
  });
  replace(pane,
    h("div", { class: "chat-title" }, conversation),
    log,
    h("div", { class: "composer", style: `--c:${p.color}` }, input, h("button", { class: "primary", "data-testid": "send", onclick: send }, t("send"))),
  );
  log.scrollTop = log.scrollHeight;
  if (S.current === p.id && S.conversation === conversation) input.focus();
}

async function renderInbox() {
  const byProfile = new Map<string, Conversation[]>();
  await Promise.all(S.profiles.map(async (p) => byProfile.set(p.id, (await api.conversations(p.id).catch(() => [])) as Conversation[])));
  const rows = mergeInbox(S.profiles, byProfile);
  replace(main, h("header", { class: "bar" }, h("strong", {}, t("inbox"))),
    h("section", { class: "body column" }, ...rows.map((r) => conversationRow(r.profile, r.conversation, () => openConversation(r.profile.id, r.conversation.id), true))));
}

// ---------------------------------------------------------------- public platform

function profileOf(id: string): ProfileInfo | undefined {
  return S.profiles.find((p) => p.id === id);
}

function profileTag(id: string) {
  const p = profileOf(id);
  return h("span", { class: "tag", style: `--c:${p?.color ?? "#888"}` }, p?.name ?? id);
}

/** Every official account any profile operates, one customer inbox across them, and the
 * open conversation with its claim and its composer in the operator's colour. */
async function renderPlatform() {
  const P = S.platform;
  const [officials, inbox] = await Promise.all([
    attempt(() => api.officialAccounts()),
    attempt(() => api.customerInbox(P.filter)),
  ]);
  const list = officials ?? [];
  const header = h("header", { class: "bar" },
    h("strong", {}, t("platform")),
    h("span", { class: "spacer" }),
    list.some((o) => o.publishes) &&
      h("button", { class: "primary", "data-testid": "open-publish", onclick: () => openPublish(list) }, t("publish")));
  if (list.length === 0) {
    replace(main, header, h("section", { class: "body column" }, h("p", { class: "muted pad", "data-testid": "no-officials" }, t("noOfficials"))));
    return;
  }
  const officialRows = h("div", { class: "list", "aria-label": t("officialAccounts") },
    h("h3", { class: "pad" }, t("officialAccounts")),
    ...list.map((o) => h("button", {
      class: `conv ${P.filter.official === o.id ? "active" : ""}`,
      "data-testid": `official-${o.id}`,
      onclick: () => { P.filter = { ...P.filter, official: P.filter.official === o.id ? null : o.id }; void renderPlatform(); },
    },
    profileTag(o.profile),
    h("span", { class: "title" }, o.name),
    o.unanswered > 0 ? h("span", { class: "badge", "data-testid": `unanswered-${o.id}`, title: t("unanswered", { n: o.unanswered }) }, String(o.unanswered)) : null,
    h("span", { class: "preview" }, t(`role_${o.role}` as Key)))));
  const check = (key: "mine" | "unclaimed", label: Key) =>
    h("label", { class: "check" },
      h("input", { type: "checkbox", checked: P.filter[key], "data-testid": `filter-${key}`, onchange: (e: Event) => {
        P.filter = { ...P.filter, [key]: (e.target as HTMLInputElement).checked };
        void renderPlatform();
      } }),
      t(label));
  const filters = h("div", { class: "row pad" },
    check("mine", "filterMine"), check("unclaimed", "filterUnclaimed"),
    P.filter.official && h("button", { onclick: () => { P.filter = { ...P.filter, official: null }; void renderPlatform(); } }, t("allOfficials")));
  const rows = inbox ?? [];
  const inboxList = h("div", { class: "list", "aria-label": t("customerInbox"), "data-testid": "customer-inbox" },
    h("h3", { class: "pad" }, t("customerInbox")),
    filters,
    rows.length === 0 ? h("p", { class: "muted pad" }, t("noCustomerConversations")) : null,
    ...rows.map((e) => customerRow(e)));
  const pane = h("div", { class: "chat" });
  replace(main, header, h("section", { class: "body" }, officialRows, inboxList, pane));
  const open = P.open && rows.find((e) => e.profile === P.open!.profile && e.official_id === P.open!.official_id && e.customer === P.open!.customer);
  if (open) await renderCustomerChat(open, pane);
  else replace(pane, h("p", { class: "muted center" }, t("pickCustomer")));
}

function customerRow(e: InboxEntry) {
  const P = S.platform;
  const active = P.open?.profile === e.profile && P.open.official_id === e.official_id && P.open.customer === e.customer;
  return h("button", {
    class: `conv ${active ? "active" : ""}`,
    "data-testid": `customer-${e.official_id}-${e.customer}`,
    onclick: () => { P.open = { profile: e.profile, official_id: e.official_id, customer: e.customer }; void renderPlatform(); },
  },
  profileTag(e.profile),
  h("span", { class: "title" }, `${e.official_name} · ${e.customer_name}`),
  e.unanswered > 0 ? h("span", { class: "badge" }, String(e.unanswered)) : null,
  e.claimed_by ? h("span", { class: "muted", "data-testid": "claimed-by" }, t("claimedBy", { name: e.mine ? t("you") : e.claimed_by })) : null,
  h("span", { class: "preview" }, e.last_body));
}

async function renderCustomerChat(e: InboxEntry, pane: HTMLElement) {
  const p = profileOf(e.profile);
  const messages = (await attempt(() => api.customerMessages(e.profile, e.official_id, e.customer))) ?? [];
  const log = h("div", { class: "messages", "data-testid": "customer-messages" },
    ...messages.map((m) => {
      const answer = m.sender === e.official_id;
      return h("div", { class: `msg ${answer ? "mine" : ""}`, "data-testid": "customer-message" },
        h("span", { class: "who" }, answer ? `${e.official_name} · ${t("answeredBy", { name: m.responder ?? "" })}` : m.sender_name),
        h("span", { class: "text" }, m.body),
        h("time", {}, new Date(m.sent_at).toLocaleTimeString()));
    }));
  const label = t("answerAs", { official: e.official_name, name: p?.name ?? "" });
  const input = h("textarea", { name: "body", rows: 2, "aria-label": label, placeholder: label, "data-testid": "official-composer" });
  const send = async () => {
    const text = input.value.trim();
    if (!text) return;
    if (await attempt(() => api.replyAs(e.profile, e.official_id, e.customer, text))) {
      input.value = "";
      await renderPlatform();
    }
  };
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      void send();
    }
  });
  replace(pane,
    h("div", { class: "chat-title row" },
      h("span", {}, `${e.official_name} · ${e.customer_name}`),
      h("span", { class: "spacer" }),
      !e.mine && h("button", { "data-testid": "claim", onclick: async () => {
        if (await attempt(() => api.claimConversation(e.profile, e.official_id, e.customer))) await renderPlatform();
      } }, t("claimConversation"))),
    log,
    h("div", { class: "composer", style: `--c:${p?.color ?? "#888"}` }, input, h("button", { class: "primary", "data-testid": "official-send", onclick: send }, t("send"))));
  log.scrollTop = log.scrollHeight;
}

/** One article to several official accounts at once: one result per account. The key is
 * made once per dialog, so "Publish" again after a failure publishes nothing twice. */
function openPublish(officials: OperatedOfficial[]) {
  const key = crypto.randomUUID();
  const targets = officials.filter((o) => o.publishes);
  const results = h("ul", { class: "results", "data-testid": "publish-results" });
  const form = h("form", { class: "stack" },
    h("h2", {}, t("publishArticle")),
    h("label", {}, t("articleTitle"), h("input", { name: "title", required: true, maxlength: 128, "data-testid": "article-title" })),
    h("label", {}, t("articleBody"), h("textarea", { name: "body", rows: 8, required: true, "data-testid": "article-body" })),
    h("fieldset", {}, h("legend", {}, t("publishTo")),
      ...targets.map((o) => h("label", { class: "check" },
        h("input", { type: "checkbox", name: "target", value: `${o.profile}|${o.id}`, checked: true, "data-testid": `publish-to-${o.id}` }),
        profileTag(o.profile), o.name))),
    results,
    h("div", { class: "row end" },
      h("button", { type: "button", onclick: () => close() }, t("cancel")),
      h("button", { class: "primary", type: "submit", "data-testid": "publish" }, t("publish"))));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const chosen = [...form.querySelectorAll<HTMLInputElement>('input[name="target"]:checked')].map((i) => {
      const [profile, official_id] = i.value.split("|");
      return { profile, official_id };
    });
    const outcomes = await attempt(() => api.publishArticle(chosen, value(form, "title"), value(form, "body"), key));
    if (!outcomes) return;
    replace(results, ...outcomes.map((o: PublishOutcome) => {
      const name = officials.find((x) => x.id === o.official_id)?.name ?? o.official_id;
      return h("li", { "data-testid": `publish-result-${o.official_id}`, "data-ok": String(Boolean(o.article)) },
        o.article ? `${name}: ${t("published")}` : `${name}: ${o.error ? errorMessage({ code: o.error[0], message: o.error[1] }) : ""}`);
    }));
  });
  const close = dialog(form);
}

let resourcesTimer: ReturnType<typeof setInterval> | null = null;

/** What each profile costs, re-read every 2 s while shown. */
async function renderResources() {
  const r = await attempt(() => api.resources());
  if (!resourcesTimer) {
    resourcesTimer = setInterval(() => {
      if (S.view !== "resources") {
        clearInterval(resourcesTimer!);
        resourcesTimer = null;
      } else if (overlay.hidden) void renderResources();
    }, 2000);
  }
  if (!r) return;
  const head = ["profile", "traffic", "eventsPerMinute", "eventsTotal", "database", "connectionHistory"] as Key[];
  const rows = r.profiles.map((x) => {
    const p = S.profiles.find((q) => q.id === x.profile);
    return h("tr", { "data-testid": `resources-${p?.name ?? x.profile}` },
      h("td", {}, h("span", { class: "tag", style: `--c:${p?.color ?? "#888"}` }, p?.name ?? x.profile)),
      h("td", {}, `↑ ${formatBytes(Number(x.bytes_sent))} ↓ ${formatBytes(Number(x.bytes_received))}`),
      h("td", { class: "num" }, String(x.events_per_minute)),
      h("td", { class: "num" }, String(x.events_total)),
      h("td", { class: "num" }, formatBytes(Number(x.database_bytes))),
      h("td", { class: "history" }, ...x.history.slice(-5).reverse().map((c) =>
        h("div", {}, h("time", {}, new Date(c.at).toLocaleTimeString()), " ", t(`state_${c.state.state}` as Key),
          (c.state.state === "offline" || c.state.state === "certificate") && c.state.detail
            ? h("span", { class: "muted" }, ` (${c.state.detail})`)
            : null))),
    );
  });
  const memory = r.memory_bytes == null ? t("memoryUnknown") : formatBytes(Number(r.memory_bytes));
  replace(main,
    h("header", { class: "bar" }, h("strong", {}, t("resources")), h("span", { class: "spacer" }),
      h("span", { "data-testid": "app-memory" }, t("appMemory", { size: memory }))),
    h("section", { class: "body column" },
      h("table", { class: "resources" }, h("thead", {}, h("tr", {}, ...head.map((k) => h("th", {}, t(k))))), h("tbody", {}, ...rows))));
}

async function renderSearch(profile: string | null, initialText = "") {
  const results = h("div", { class: "column" });
  const run = async (text: string) => {
    const hits = (await attempt(() => api.search(profile, text))) ?? [];
    replace(results, ...hits.map((hit) => {
      const p = S.profiles.find((x) => x.id === hit.profile);
      return h("button", { class: "conv", onclick: () => openConversation(hit.profile, hit.message.conversation_id) },
        p ? h("span", { class: "tag", style: `--c:${p.color}` }, p.name) : null,
        h("span", { class: "title" }, hit.message.sender_name),
        h("span", { class: "preview" }, hit.message.body));
    }));
  };
  const input = h("input", { class: "search", value: initialText, placeholder: profile ? t("search") : t("searchAll"), onkeydown: (e: Event) => {
    if ((e as KeyboardEvent).key === "Enter") void run((e.target as HTMLInputElement).value);
  } });
  replace(main, h("header", { class: "bar" }, h("strong", {}, profile ? t("search") : t("searchAll"))), h("section", { class: "body column" }, input, results));
  input.focus();
  if (initialText) await run(initialText);
}

// ---------------------------------------------------------------- contacts

async function renderContacts(p: ProfileInfo, body: HTMLElement) {
  const [contacts, requests] = await Promise.all([attempt(() => api.contacts(p.id)), attempt(() => api.contactRequests(p.id))]);
  const find = h("form", { class: "card", onsubmit: async (e: Event) => {
    e.preventDefault();
    const f = e.target as HTMLFormElement;
    if (await attempt(() => api.requestContact(p.id, value(f, "public_id"), value(f, "note")))) {
      flash(t("addContact") + " ✓", false);
      f.reset();
    }
  } }, h("h3", {}, t("findById")), h("input", { name: "public_id", placeholder: t("publicId"), required: true }), h("input", { name: "note", placeholder: t("note") }), h("button", { class: "primary" }, t("addContact")));
  const incoming = (requests?.incoming ?? []).filter((r) => r.status === "pending");
  const reqs = incoming.length
    ? h("div", { class: "card" }, h("h3", {}, t("requests")), ...incoming.map((r) =>
        h("div", { class: "row" }, h("span", {}, `${r.from_display_name} (${r.from}) ${r.note}`),
          h("button", { onclick: async () => { if ((await attempt(() => api.acceptContact(p.id, r.id))) !== undefined) await renderMain(); } }, t("accept")))))
    : null;
  const list = h("div", { class: "card" }, h("h3", {}, t("contacts")), ...(contacts ?? []).map((c) =>
    h("button", { class: "conv", onclick: () => openConversation(p.id, c.public_id) }, h("span", { class: "title" }, c.display_name), h("span", { class: "preview" }, c.public_id))));
  const group = h("form", { class: "card", onsubmit: async (e: Event) => {
    e.preventDefault();
    const f = e.target as HTMLFormElement;
    const members = value(f, "members").split(/[\s,]+/).filter(Boolean);
    const g = await attempt(() => api.createGroup(p.id, value(f, "name"), members));
    if (g) await openConversation(p.id, g.id);
  } }, h("h3", {}, t("newGroup")), h("input", { name: "name", placeholder: t("groupName"), required: true }), h("input", { name: "members", placeholder: t("members") + " (ID, ID…)" }), h("button", {}, t("create")));
  replace(body, h("div", { class: "column" }, find, reqs, list, group));
}

// ---------------------------------------------------------------- wallet

/** Runs a money action; if the wrong-identity guard asks, confirms with the user and retries.
 * A payment whose answer was lost is kept by the core as pending: the wallet is redrawn to
 * list it, with "try again" (which never pays twice). */
async function pay<T>(p: ProfileInfo, action: (confirmed: boolean) => Promise<T>): Promise<T | undefined> {
  const code = (e: unknown) => (e as { code?: string }).code;
  const failed = (e: unknown) => {
    flash(errorMessage(e));
    if (code(e) === "payment_pending") void renderMain();
    return undefined;
  };
  try {
    return await action(false);
  } catch (e) {
    if (code(e) !== "confirm_profile") return failed(e);
    if (!(await confirmDialog(t("confirmProfile", { name: p.name }), t("confirm", { name: p.name }), p.color))) return undefined;
    try {
      return await action(true);
    } catch (again) {
      return failed(again);
    }
  }
}

/** What a pending payment was, in a line. */
function describePayment(x: PendingPayment): string {
  const pay = x.payment;
  switch (pay.kind) {
    case "top_up":
      return t("payTopUp", { amount: formatMoney(pay.amount) });
    case "transfer":
      return `${t("payTransfer", { amount: formatMoney(pay.amount), to: pay.to })}${pay.note ? ` · ${pay.note}` : ""}`;
    case "red_envelope":
      return t("payEnvelope", { amount: formatMoney(pay.envelope.total), to: pay.envelope.to });
  }
}

function amountOf(f: HTMLElement, name: string): number | null {
  const fen = parseAmount(value(f, name));
  if (fen === null) flash(errorMessage({ code: "invalid_amount", message: "" }));
  return fen;
}

async function renderWallet(p: ProfileInfo, body: HTMLElement) {
  const [wallet, page, pending] = await Promise.all([
    attempt(() => api.wallet(p.id)),
    attempt(() => api.transactions(p.id, null)),
    attempt(() => api.pendingPayments(p.id)),
  ]);
  const again = () => renderMain();
  const form = (title: Key, fields: HTMLElement[], submit: (f: HTMLFormElement) => Promise<unknown>, testid: string) => {
    const button = h("button", { class: "primary" }, t(title));
    return h("form", { class: "card", "data-testid": testid, onsubmit: async (e: Event) => {
      e.preventDefault();
      // One request at a time: a double click must not make a second payment.
      if (button.disabled) return;
      button.disabled = true;
      try {
        if ((await submit(e.target as HTMLFormElement)) !== undefined) await again();
      } finally {
        button.disabled = false;
      }
    } }, h("h3", {}, t(title)), ...fields, button);
  };
  const inDoubt = pending?.length
    ? h("div", { class: "card", "data-testid": "pending-payments" }, h("h3", {}, t("pendingPayments")), h("p", { class: "muted" }, t("pendingHint")),
        ...pending.map((x) => h("div", { class: "row", "data-testid": "pending-payment" },
          h("span", {}, describePayment(x)),
          x.last_error ? h("span", { class: "muted", title: x.last_error }, " ⚠") : null,
          h("button", { onclick: async () => {
            if ((await pay(p, (ok) => api.retryPayment(p.id, x.id, ok))) !== undefined) await again();
          } }, t("tryAgain")),
          h("button", { class: "danger", onclick: async () => {
            if (await confirmDialog(t("abandonConfirm"), t("abandon"), "#d93025")) {
              if ((await attempt(() => api.abandonPayment(p.id, x.id))) !== undefined) await again();
            }
          } }, t("abandon")))))
    : null;
  const verify = wallet && !wallet.verified
    ? form("verify", [h("p", { class: "muted" }, t("unverified")), h("input", { name: "legal_name", placeholder: t("legalName"), required: true }), h("input", { name: "id_number", placeholder: t("idNumber"), required: true })],
        (f) => attempt(() => api.verifyIdentity(p.id, value(f, "legal_name"), value(f, "id_number"))), "verify")
    : null;
  const topUp = form("topUp", [h("input", { name: "amount", placeholder: t("amount"), inputmode: "decimal" })], async (f) => {
    const fen = amountOf(f, "amount");
    return fen === null ? undefined : pay(p, (ok) => api.topUp(p.id, fen, ok));
  }, "top-up");
  const transfer = form("transfer", [h("input", { name: "to", placeholder: t("to"), required: true }), h("input", { name: "amount", placeholder: t("amount"), inputmode: "decimal" }), h("input", { name: "note", placeholder: t("note") })], async (f) => {
    const fen = amountOf(f, "amount");
    return fen === null ? undefined : pay(p, (ok) => api.transfer(p.id, value(f, "to"), fen, value(f, "note"), ok));
  }, "transfer");
  const envelope = form("redEnvelope", [
    h("input", { name: "to", placeholder: t("to"), required: true }),
    h("input", { name: "total", placeholder: t("amount"), inputmode: "decimal" }),
    h("input", { name: "count", type: "number", min: 1, max: 100, value: 1 }),
    h("select", { name: "mode" }, h("option", { value: "lucky" }, t("lucky")), h("option", { value: "equal" }, t("equal"))),
    h("input", { name: "greeting", placeholder: t("greeting") }),
  ], async (f) => {
    const fen = amountOf(f, "total");
    if (fen === null) return undefined;
    const sent = await pay(p, (ok) => api.sendRedEnvelope(p.id, { to: value(f, "to"), total: fen, count: Number(value(f, "count")), mode: value(f, "mode") === "equal" ? "equal" : "lucky", greeting: value(f, "greeting") }, ok));
    if (sent) flash(`${t("redEnvelope")}: ${sent.id}`, false);
    return sent;
  }, "red-envelope");
  const claim = form("claim", [h("input", { name: "id", placeholder: t("envelopeId"), required: true })], async (f) => {
    const got = await attempt(() => api.claimRedEnvelope(p.id, value(f, "id")));
    if (got) flash(`+${formatMoney(got.amount)}`, false);
    return got;
  }, "claim");
  replace(body, h("div", { class: "column wallet", style: `--c:${p.color}` },
    h("div", { class: "card balance" }, h("span", { class: "muted" }, t("balance")), h("strong", { "data-testid": "balance" }, wallet ? formatMoney(wallet.balance) : "—"),
      wallet?.verified ? h("span", { class: "muted" }, t("verified")) : null),
    inDoubt, verify, topUp, transfer, envelope, claim,
    h("div", { class: "card" }, h("h3", {}, t("history")), ...(page?.transactions ?? []).map((tx) =>
      h("div", { class: "row", "data-testid": "transaction" }, h("span", {}, `${tx.kind} ${tx.counterparty ?? ""} ${tx.note}`), h("strong", {}, formatMoney(tx.amount))))),
  ));
}

// ---------------------------------------------------------------- settings

async function renderSettings(p: ProfileInfo, body: HTMLElement) {
  const policy = await attempt(() => api.notificationPolicy(p.id));
  const mainWindow = !S.info?.window_profile;
  const days = t("days").split(",");
  const q = policy?.quiet_hours[0];
  const profileCard = mainWindow && h("form", { class: "card", onsubmit: async (e: Event) => {
    e.preventDefault();
    const f = e.target as HTMLFormElement;
    if ((await attempt(async () => { await api.renameProfile(p.id, value(f, "name")); await api.recolorProfile(p.id, value(f, "color")); })) !== undefined) {
      await loadProfiles();
      await renderMain();
    }
  } },
    h("h3", {}, p.name),
    h("label", {}, t("rename"), h("input", { name: "name", value: p.name, "data-testid": "rename" })),
    h("label", {}, t("color"), h("input", { name: "color", type: "color", value: p.color })),
    h("div", { class: "row" },
      h("button", { class: "primary" }, t("save")),
      h("button", { type: "button", onclick: async () => {
        const ids = S.profiles.map((x) => x.id);
        const i = ids.indexOf(p.id);
        if (i > 0) { [ids[i - 1], ids[i]] = [ids[i], ids[i - 1]]; await attempt(() => api.reorderProfiles(ids)); await loadProfiles(); }
      } }, t("moveUp")),
      h("button", { type: "button", onclick: () => attempt(() => api.openProfileWindow(p.id)) }, t("openWindow")),
      h("button", { type: "button", class: "danger", "data-testid": "remove", onclick: async () => {
        const dir = `profiles/${p.id}`;
        if (await confirmDialog(t("removeConfirm", { name: p.name, dir }), t("remove"), "#d93025")) {
          if ((await attempt(() => api.removeProfile(p.id))) !== undefined) { S.current = null; await loadProfiles(); await renderMain(); }
        }
      } }, t("remove")),
    ));
  const notif = policy && h("form", { class: "card", "data-testid": "policy", onsubmit: async (e: Event) => {
    e.preventDefault();
    const f = e.target as HTMLFormElement;
    const checked = (n: string) => f.querySelector<HTMLInputElement>(`[name="${n}"]`)?.checked ?? false;
    const start = timeToMinutes(value(f, "q_start"));
    const end = timeToMinutes(value(f, "q_end"));
    const qdays = days.map((_, i) => i).filter((i) => checked(`q_day_${i}`));
    const quiet = start !== null && end !== null && qdays.length > 0 ? [{ days: qdays, start_min: start, end_min: end }] : [];
    const next = { enabled: checked("enabled"), preview: value(f, "preview") as typeof policy.preview, sound: checked("sound"), show_amounts: checked("show_amounts"), quiet_hours: quiet };
    if ((await attempt(() => api.setNotificationPolicy(p.id, next))) !== undefined) flash(t("saved"), false);
  } },
    h("h3", {}, t("notifications")),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "enabled", checked: policy.enabled }), t("enabled")),
    h("label", {}, t("preview"), h("select", { name: "preview" }, ...(["full", "sender_only", "nothing"] as const).map((v) => {
      const o = h("option", { value: v }, t(`preview_${v}` as Key));
      o.selected = policy.preview === v;
      return o;
    }))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "sound", checked: policy.sound }), t("sound")),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "show_amounts", checked: policy.show_amounts }), t("showAmounts")),
    h("fieldset", {}, h("legend", {}, t("quietHours")),
      h("div", { class: "row" }, ...days.map((d, i) => h("label", { class: "check" }, h("input", { type: "checkbox", name: `q_day_${i}`, checked: q?.days.includes(i) ?? false }), d))),
      h("div", { class: "row" },
        h("label", {}, t("quietFrom"), h("input", { name: "q_start", type: "time", value: minutesToTime(q?.start_min ?? 19 * 60) })),
        h("label", {}, t("quietUntil"), h("input", { name: "q_end", type: "time", value: minutesToTime(q?.end_min ?? 9 * 60) })))),
    mainWindow && h("button", { class: "primary" }, t("save")));
  const global = mainWindow && h("div", { class: "card" },
    h("label", { class: "check" }, h("input", { type: "checkbox", onchange: (e: Event) => attempt(() => api.setDoNotDisturb((e.target as HTMLInputElement).checked)) }), t("dnd")),
    h("label", {}, t("language"), h("select", { onchange: (e: Event) => {
      const v = (e.target as HTMLSelectElement).value;
      if (v) localStorage.setItem("lang", v); else localStorage.removeItem("lang");
      setLang(pickLang(navigator.languages, v || null));
      tellTray();
      renderSidebar();
      void renderMain();
    } }, ...[["", t("systemLanguage")], ["en", "English"], ["zh", "简体中文"]].map(([v, label]) => {
      const o = h("option", { value: v }, label);
      o.selected = (localStorage.getItem("lang") ?? "") === v;
      return o;
    }))));
  replace(body, h("div", { class: "column" }, profileCard, notif, global));
}

// ---------------------------------------------------------------- dialogs

function dialog(content: HTMLElement, onClose?: () => void) {
  overlay.hidden = false;
  const close = () => { overlay.hidden = true; overlay.replaceChildren(); onClose?.(); };
  replace(overlay, h("div", { class: "dialog", role: "dialog" }, content));
  overlay.onclick = (e) => { if (e.target === overlay) close(); };
  return close;
}

function confirmDialog(text: string, yes: string, color: string): Promise<boolean> {
  return new Promise((resolve) => {
    let answered = false;
    const close = dialog(h("div", { "data-testid": "confirm" },
      h("p", {}, text),
      h("div", { class: "row end" },
        h("button", { onclick: () => { answered = true; close(); resolve(false); } }, t("cancel")),
        h("button", { class: "primary", style: `background:${color}`, "data-testid": "confirm-yes", onclick: () => { answered = true; close(); resolve(true); } }, yes))),
      () => { if (!answered) resolve(false); });
  });
}

type AddMode = "signin" | "register" | "secondary";

function openAddProfile(login = "") {
  let mode: AddMode = "signin";
  const pane = h("div", { class: "add" });
  const close = dialog(pane);
  const server = () => value(pane, "server") || S.info?.default_server || "";
  // Only asked, and only counted, while the address is plain http to another computer.
  const allowInsecure = () =>
    needsInsecureAllowance(server()) && (pane.querySelector<HTMLInputElement>('[name="allow_insecure_http"]')?.checked ?? false);
  const done = async (p: ProfileInfo) => {
    close();
    await loadProfiles();
    select(p.id);
  };
  const codeField = (purpose: SmsPurpose) => {
    const note = h("p", { class: "muted dev", hidden: true }, t("devService"));
    const fill = h("button", { type: "button", hidden: true, "data-testid": "fill-code", onclick: async () => {
      const code = await attempt(() => api.devSmsCode(server(), value(pane, "phone"), purpose, allowInsecure()));
      const input = pane.querySelector<HTMLInputElement>('[name="sms_code"]');
      if (code && input) input.value = code;
    } }, t("fillDevCode"));
    const send = h("button", { type: "button", "data-testid": "send-code", onclick: async () => {
      const sent = await attempt(() => api.requestSmsCode(server(), value(pane, "phone"), purpose, allowInsecure()));
      if (!sent) return;
      // Only a development service answers its outbox: offer to fill the code from there.
      const dev = await api.devSmsCode(server(), value(pane, "phone"), purpose, allowInsecure()).then(() => true, () => false);
      note.hidden = fill.hidden = !dev;
      let left = Number(sent.resend_after);
      send.disabled = true;
      const tick = setInterval(() => {
        left -= 1;
        send.textContent = left > 0 ? t("resendIn", { n: left }) : t("sendCode");
        if (left <= 0) { clearInterval(tick); send.disabled = false; }
      }, 1000);
    } }, t("sendCode"));
    return [h("input", { name: "phone", placeholder: t("phone"), required: true, "data-testid": "phone" }), h("div", { class: "row" }, h("input", { name: "sms_code", placeholder: t("smsCode"), required: true, inputmode: "numeric", "data-testid": "sms-code" }), send, fill), note];
  };
  const render = () => {
    const tabs = (["signin", "register", "secondary"] as AddMode[]).map((m) =>
      h("button", { type: "button", class: `tab ${m === mode ? "active" : ""}`, "data-testid": `add-${m}`, onclick: () => { mode = m; render(); } },
        t(m === "signin" ? "signIn" : m === "register" ? "register" : "registerSecondary")));
    const allowance = h("label", { class: "check insecure-allow", hidden: !needsInsecureAllowance(server()), "data-testid": "allow-insecure-http" },
      h("input", { type: "checkbox", name: "allow_insecure_http" }), t("allowInsecureHttp"));
    const serverInput = h("input", { name: "server", value: server(), "data-testid": "server" });
    serverInput.addEventListener("input", () => { allowance.hidden = !needsInsecureAllowance(server()); });
    const common = [h("label", {}, t("server"), serverInput), allowance, h("input", { name: "name", placeholder: t("profileName"), "data-testid": "profile-name" })];
    const form = mode === "signin"
      ? h("form", { onsubmit: async (e: Event) => {
          e.preventDefault();
          const f = e.target as HTMLFormElement;
          try {
            await done(await api.addProfile({ server: server(), login: value(f, "login"), password: value(f, "password"), name: value(f, "name") || null, color: null, totp_code: value(f, "totp") || null, allow_insecure_http: allowInsecure() }));
          } catch (err) {
            const er = err as { code?: string; public_ids?: string[] };
            if (er.code === "account_choice_required" && er.public_ids) {
              const choice = f.querySelector(".choice")!;
              replace(choice, h("p", {}, t("chooseAccount")), ...er.public_ids.map((id) => h("button", { type: "button", onclick: () => { (f.querySelector('[name="login"]') as HTMLInputElement).value = id; f.requestSubmit(); } }, id)));
            } else {
              if (er.code === "totp_required") (f.querySelector('[name="totp"]') as HTMLElement).hidden = false;
              flash(errorMessage(err));
            }
          }
        } }, ...common,
          h("input", { name: "login", placeholder: t("login"), value: login, required: true, "data-testid": "login" }),
          h("input", { name: "password", type: "password", placeholder: t("password"), required: true, "data-testid": "password" }),
          h("input", { name: "totp", placeholder: t("totp"), hidden: true, inputmode: "numeric" }),
          h("div", { class: "choice" }),
          h("button", { class: "primary", "data-testid": "submit" }, t("signIn")))
      : h("form", { onsubmit: async (e: Event) => {
          e.preventDefault();
          const f = e.target as HTMLFormElement;
          const made = await attempt(() => api.registerProfile({ server: server(), phone: value(f, "phone"), sms_code: value(f, "sms_code"), public_id: value(f, "public_id"), password: value(f, "password"), display_name: value(f, "display_name"), name: value(f, "name") || null, color: null, allow_insecure_http: allowInsecure() }));
          if (made) await done(made.profile);
        } }, ...common,
          mode === "secondary" ? h("p", { class: "muted" }, t("secondaryHint")) : null,
          ...codeField("register"),
          h("input", { name: "public_id", placeholder: t("publicId"), required: true, "data-testid": "public-id" }),
          h("input", { name: "display_name", placeholder: t("displayName"), required: true, "data-testid": "display-name" }),
          h("input", { name: "password", type: "password", placeholder: t("password"), required: true, "data-testid": "password" }),
          h("button", { class: "primary", "data-testid": "submit" }, t("create")));
    replace(pane, h("div", { class: "tabs" }, ...tabs), form);
  };
  render();
}

function openQuickSwitcher() {
  const list = h("div", { class: "column" });
  const input = h("input", { placeholder: t("quickSwitch"), "data-testid": "quick-switch" });
  const close = dialog(h("div", {}, input, list));
  const draw = () => replace(list, ...matchProfiles(S.profiles, input.value).map((p) =>
    h("button", { class: "conv", onclick: () => { close(); select(p.id); } }, h("span", { class: "tag", style: `--c:${p.color}` }, p.name), h("span", { class: "preview" }, p.public_id))));
  input.addEventListener("input", draw);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { const first = matchProfiles(S.profiles, input.value)[0]; if (first) { close(); select(first.id); } }
    if (e.key === "Escape") close();
  });
  draw();
  input.focus();
}

// ---------------------------------------------------------------- wiring

document.addEventListener("keydown", (e) => {
  const id = profileForShortcut(S.profiles, e);
  if (id) {
    e.preventDefault();
    select(id);
  } else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k" && !S.info?.window_profile) {
    e.preventDefault();
    openQuickSwitcher();
  } else if (e.key === "Escape" && !overlay.hidden) {
    overlay.hidden = true;
    overlay.replaceChildren();
  }
});

/** Re-renders without losing what the user is typing: values and focus survive by field. */
async function keepingInput(render: () => Promise<void>) {
  const key = (el: Element) =>
    `${el.closest("[data-testid]")?.getAttribute("data-testid") ?? ""}/${el.getAttribute("name") ?? el.getAttribute("data-testid") ?? ""}`;
  const fields = () => [...main.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input:not([type=checkbox]), textarea")];
  const typed = new Map(fields().filter((f) => f.value !== f.defaultValue).map((f) => [key(f), f.value]));
  const focused = document.activeElement && main.contains(document.activeElement) ? key(document.activeElement) : null;
  await render();
  for (const f of fields()) {
    const k = key(f);
    if (typed.has(k)) f.value = typed.get(k)!;
    if (k === focused) f.focus();
  }
}

let pending: ReturnType<typeof setTimeout> | null = null;
/** Re-reads after events, at most every 150 ms, without losing the last one. */
function refreshSoon(touchesOpenView: boolean) {
  if (pending) clearTimeout(pending);
  pending = setTimeout(async () => {
    pending = null;
    await loadProfiles();
    if (touchesOpenView && !overlay.querySelector("form") && S.view !== "settings") {
      if (S.conversation && S.view === "chats") await attempt(() => api.markRead(S.current!, S.conversation!));
      await keepingInput(renderMain);
    }
  }, 150);
}

/** The tray speaks the UI's language; only the main window decides it. */
function tellTray() {
  if (S.info && !S.info.window_profile) void api.setLanguage(lang()).catch(() => {});
}

async function boot() {
  setLang(pickLang(navigator.languages, localStorage.getItem("lang")) as Lang);
  S.info = (await attempt(() => api.appInfo())) ?? null;
  tellTray();
  await loadProfiles();
  await renderMain();
  // This window's own stream: the shell sends it only the events of the profiles it may see
  // (no global events, which any window could listen to).
  const events = new Channel<UiEvent>();
  events.onmessage = (e) => void onUiEvent(e);
  await attempt(() => api.subscribeEvents(events));
}

async function onUiEvent(e: UiEvent) {
  switch (e.type) {
    case "profile":
      refreshSoon(e.profile === S.current || S.view === "inbox" || S.view === "platform");
      break;
    case "profiles_changed":
      refreshSoon(true);
      break;
    case "open_conversation":
      if (e.conversation) await openConversation(e.profile, e.conversation);
      else select(e.profile);
      break;
  }
}

void boot();
