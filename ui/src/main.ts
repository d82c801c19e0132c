// The app's one page. It keeps no profile data of its own (no web storage): every view asks
// the core through the generated bindings, and re-reads when the core reports an event.

import { Channel } from "@tauri-apps/api/core";
import * as api from "./bindings";
import type {
  AppInfo,
  Contact,
  Conversation,
  Group,
  InboxEntry,
  InboxFilter,
  OperatedOfficial,
  OutboxEntry,
  PendingPayment,
  ProfileInfo,
  PublishOutcome,
  SmsPurpose,
  StoredMessage,
  Transaction,
  UiEvent,
} from "./bindings";
import { h, replace, value } from "./dom";
import { acceptImages, draftFor, draftPreviews, forgetThumbnails, imagePicker, thumbnails } from "./images";
import { type Key, type Lang, errorMessage, lang, pickLang, setLang, t } from "./i18n";
import {
  colourVars,
  filterContacts,
  formatBytes,
  formatMoney,
  groupByDay,
  initial,
  isMomentEvent,
  isNearBottom,
  matchProfiles,
  mergeInbox,
  minutesToTime,
  needsInsecureAllowance,
  parseAmount,
  profileForShortcut,
  relativeDay,
  timeToMinutes,
  totalUnread,
  unreadMarkerIndex,
} from "./logic";
import { renderMoments } from "./moments";
import { attempt, confirmDialog, dialogOpen, emptyState, field, flash, openDialog } from "./ui";

type View = "chats" | "contacts" | "moments" | "wallet" | "settings" | "inbox" | "search" | "resources" | "platform";

const S = {
  info: null as AppInfo | null,
  profiles: [] as ProfileInfo[],
  current: null as string | null,
  view: "chats" as View,
  conversation: null as string | null,
  /** The "new messages" line of the conversation just opened: how many were unread then. */
  unread: null as { key: string; count: number } | null,
  /** Moments of every profile together instead of the one in front. */
  momentsMerged: false,
  /** The public platform view: its filter and the customer conversation open in it. */
  platform: {
    filter: { official: null, mine: false, unclaimed: false } as InboxFilter,
    open: null as { profile: string; official_id: string; customer: string } | null,
  },
};

const root = document.getElementById("app")!;
const sidebar = h("nav", { class: "sidebar", "data-testid": "sidebar", "aria-label": t("profiles") });
const main = h("main", { class: "main" });
root.append(sidebar, main);

function cur(): ProfileInfo | undefined {
  return S.profiles.find((p) => p.id === S.current);
}

const locale = () => (lang() === "zh" ? "zh-CN" : "en");

function clock(at: Date) {
  return at.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit" });
}

/** A day separator's words: Today, Yesterday, or the date. */
function dayTitle(day: string): string {
  const rel = relativeDay(day, new Date());
  if (rel !== "other") return t(rel);
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(locale(), { weekday: "short", year: "numeric", month: "short", day: "numeric" });
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

/** A sidebar button that shows only a symbol: its name for screen readers and as a tooltip. */
function sideAction(label: string, symbol: string, testid: string | undefined, onclick: () => void, active = false) {
  return h("button", { class: `side-action ${active ? "active" : ""}`, title: label, "aria-label": label, "aria-current": active ? "page" : undefined, "data-testid": testid, onclick },
    h("span", { "aria-hidden": "true" }, symbol));
}

function renderSidebar() {
  const items = S.profiles.map((p, i) =>
    h(
      "button",
      {
        class: `profile ${p.id === S.current ? "active" : ""}`,
        style: colourVars(p.color),
        title: `${p.name} (${p.public_id}) · ${t(`state_${p.state.state}` as Key)}${p.allow_insecure_http ? ` · ${t("notEncrypted")}` : ""}${i < 9 ? ` · ${S.info?.primary_modifier ?? "Ctrl"}+${i + 1}` : ""}`,
        "aria-current": p.id === S.current ? "true" : undefined,
        "data-testid": `profile-${p.name}`,
        "data-state": p.state.state,
        onclick: () => select(p.id),
      },
      h("span", { class: "avatar", "aria-hidden": "true" }, initial(p.name)),
      h("span", { class: `dot ${p.state.state}`, "aria-hidden": "true" }),
      p.unread > 0 ? h("span", { class: "badge", "data-testid": `unread-${p.name}`, "aria-label": t("unread", { n: p.unread }) }, String(p.unread)) : null,
      h("span", { class: "pname" }, p.name),
      h("span", { class: "sr-only" }, ` · ${t(`state_${p.state.state}` as Key)}`),
      insecureMark(p, `insecure-${p.name}`),
    ),
  );
  const mainOnly = !S.info?.window_profile;
  replace(
    sidebar,
    h("div", { class: "brand", "aria-hidden": "true" }, "Switchboard"),
    ...items,
    mainOnly && sideAction(t("addProfile"), "+", "add-profile", () => openAddProfile()),
    mainOnly && S.profiles.length > 1 && sideAction(t("inbox"), "≡", "inbox", () => show("inbox"), S.view === "inbox"),
    mainOnly && sideAction(t("searchAll"), "⌕", "search-all", () => show("search"), S.view === "search"),
    sideAction(t("platform"), "◎", "platform", () => show("platform"), S.view === "platform"),
    sideAction(t("resources"), "▤", "resources", () => show("resources"), S.view === "resources"),
  );
}

/** The navigation button the keyboard is on, to put it back there once the view is redrawn
 * (a redraw replaces the button, and the focus would fall back to the page). */
function navFocus(): string | null {
  const a = document.activeElement;
  return a && a.closest(".sidebar, .bar") ? a.getAttribute("data-testid") : null;
}

function refocus(testid: string | null) {
  if (testid && !dialogOpen()) document.querySelector<HTMLElement>(`[data-testid="${testid}"]`)?.focus();
}

function select(profile: string, conversation: string | null = null) {
  const focus = navFocus();
  const changed = profile !== S.current;
  S.current = profile;
  if (changed || conversation) S.conversation = conversation;
  if (S.view === "inbox" || S.view === "search" || S.view === "resources" || S.view === "platform" || conversation) S.view = "chats";
  renderSidebar();
  refocus(focus);
  void renderMain();
}

function show(view: View) {
  const focus = navFocus();
  S.view = view;
  renderSidebar();
  void renderMain().then(() => refocus(focus));
}

// ---------------------------------------------------------------- main area

async function renderMain() {
  const p = cur();
  if (S.view === "inbox") return renderInbox();
  if (S.view === "search") return renderSearch(null);
  if (S.view === "resources") return renderResources();
  if (S.view === "platform") return renderPlatform();
  if (!p) {
    replace(main, h("div", { class: "empty-state first-run" },
      h("h1", {}, t("welcome")),
      h("p", {}, t("noProfiles")),
      !S.info?.window_profile && h("button", { class: "primary", onclick: () => openAddProfile() }, t("addProfile"))));
    return;
  }
  const tabs: [View, Key][] = [["chats", "chats"], ["contacts", "contacts"], ["moments", "moments"], ["wallet", "wallet"], ["settings", "settings"]];
  const header = h(
    "header",
    { class: "bar", style: colourVars(p.color) },
    h("span", { class: "avatar small", "aria-hidden": "true" }, initial(p.name)),
    h("h1", { class: "profile-title" }, h("strong", { "data-testid": "current-profile" }, p.name)),
    h("span", { class: "muted" }, ` ${p.public_id} · ${t(`state_${p.state.state}` as Key)}`),
    insecureMark(p, "insecure-current"),
    h("span", { class: "spacer" }),
    h("nav", { class: "tabs-nav", "aria-label": t("views") },
      ...tabs.map(([v, k]) => h("button", {
        class: `tab ${S.view === v ? "active" : ""}`,
        "aria-current": S.view === v ? "page" : undefined,
        // Moments' tab keeps the name its WebDriver test knows it by.
        "data-testid": v === "moments" ? "moments-nav" : `tab-${v}`,
        onclick: () => show(v),
      }, t(k)))),
  );
  const banner =
    p.state.state === "signed_out"
      ? h("div", { class: "banner", role: "alert", "data-testid": "signed-out" }, t("signedOutBanner", { name: p.name }), " ",
          !S.info?.window_profile && h("button", { onclick: () => openAddProfile(p.public_id) }, t("signInAgain")))
      : p.state.state === "certificate"
        ? h("div", { class: "banner", role: "alert", "data-testid": "certificate" }, t("certificateBanner", { name: p.name, detail: p.state.detail }))
        : p.state.state === "locked"
          ? h("div", { class: "banner", role: "alert", "data-testid": "locked" }, t("lockedBanner", { name: p.name }))
          : null;
  const body = h("section", { class: "body" });
  replace(main, header, banner, body);
  if (S.view !== "chats") void api.setOpenConversation(p.id, null).catch(() => {});
  if (S.view === "chats") await renderChats(p, body);
  else if (S.view === "contacts") await renderContacts(p, body);
  else if (S.view === "moments") await renderMoments(body, {
    profiles: S.profiles,
    profile: p,
    merged: S.momentsMerged,
    canMerge: !S.info?.window_profile && S.profiles.length > 1,
    setMerged: (on) => { S.momentsMerged = on; void renderMain(); },
  });
  else if (S.view === "wallet") await renderWallet(p, body);
  else if (S.view === "settings") await renderSettings(p, body);
}

// ---------------------------------------------------------------- chats

async function renderChats(p: ProfileInfo, body: HTMLElement) {
  const convs = (await attempt(() => api.conversations(p.id))) ?? [];
  const search = h("input", { type: "search", class: "search", name: "search", "data-testid": "search", onkeydown: (e: Event) => {
    const ev = e as KeyboardEvent;
    if (ev.key === "Enter") void renderSearch(p.id, (ev.target as HTMLInputElement).value);
  } });
  const list = h(
    "div",
    { class: "list", "aria-label": t("conversations") },
    field(t("search"), search, t("searchHint")),
    convs.length === 0
      ? emptyState(t("noConversations"), h("button", { onclick: () => show("contacts") }, t("goToContacts")), "no-conversations")
      : null,
    ...convs.map((c) => conversationRow(p, c, () => openConversation(p.id, c.id, c.unread))),
  );
  const chat = h("div", { class: "chat" });
  replace(body, list, chat);
  if (S.conversation) {
    const title = convs.find((c) => c.id === S.conversation)?.title ?? S.conversation;
    await renderChat(p, S.conversation, chat, title);
  } else replace(chat, emptyState(convs.length ? t("pickConversation") : t("pickConversationEmpty")));
}

function conversationRow(p: ProfileInfo, c: Conversation, onclick: () => void, tag = false) {
  const active = S.conversation === c.id && S.current === p.id;
  return h(
    "button",
    { class: `conv ${active ? "active" : ""}`, "aria-current": active ? "true" : undefined, "data-testid": `conv-${c.id}`, onclick },
    tag ? h("span", { class: "tag", style: colourVars(p.color) }, p.name) : null,
    h("span", { class: "title" }, c.title),
    c.unread > 0 ? h("span", { class: "badge", "aria-label": t("unread", { n: c.unread }) }, String(c.unread)) : null,
    // A message has text or images, so an empty last message was images only.
    h("span", { class: "preview" }, c.last_body === "" ? t("photo") : (c.last_body ?? "")),
  );
}

async function openConversation(profile: string, conversation: string, unread?: number) {
  // How much was unread, read before marking it read: where the "new messages" line goes.
  const count = unread ?? ((await api.conversations(profile).catch(() => [] as Conversation[])).find((c) => c.id === conversation)?.unread ?? 0);
  S.unread = count > 0 ? { key: `${profile}/${conversation}`, count } : null;
  chatScroll.key = ""; // opened afresh: at the first unread message (or the latest), composer focused
  S.current = profile;
  S.conversation = conversation;
  S.view = "chats";
  await attempt(() => api.markRead(profile, conversation));
  await loadProfiles();
  await renderMain();
}

/** Where the reader was in the open chat, so a redraw after an event keeps the place. */
const chatScroll = { key: "", atBottom: true, top: 0, seen: 0 };

function delivery(state: "sent" | "pending") {
  return h("span", { class: `delivery ${state}`, "data-testid": "delivery", "data-delivery": state, title: t(state === "sent" ? "sentHint" : "queuedHint") },
    h("span", { "aria-hidden": "true" }, state === "sent" ? "✓ " : "◷ "), t(state === "sent" ? "sent" : "pending"));
}

function messageEl(p: ProfileInfo, m: StoredMessage) {
  const mine = m.sender === p.public_id;
  const at = new Date(m.sent_at);
  return h("div", { class: `msg ${mine ? "mine" : ""}`, "data-testid": "message", "data-id": m.id },
    h("span", { class: mine ? "who sr-only" : "who" }, mine ? t("you") : m.sender_name),
    m.body ? h("span", { class: "text" }, m.body) : null,
    m.media.length > 0 ? thumbnails(p.id, m.media, "msg-thumb") : null,
    h("span", { class: "meta" }, h("time", { datetime: m.sent_at, title: at.toLocaleString(locale()) }, clock(at)), mine ? delivery("sent") : null));
}

function pendingEl(p: ProfileInfo, o: OutboxEntry) {
  return h("div", { class: "msg mine pending", "data-testid": "pending" },
    h("span", { class: "who sr-only" }, t("you")),
    o.body ? h("span", { class: "text" }, o.body) : null,
    o.media.length > 0 ? thumbnails(p.id, o.media, "msg-thumb") : null,
    h("span", { class: "meta" }, h("time", {}, clock(new Date(o.created_at * 1000))), delivery("pending")));
}

async function renderChat(p: ProfileInfo, conversation: string, pane: HTMLElement, title: string) {
  await attempt(() => api.setOpenConversation(p.id, conversation));
  const [messages, outbox] = await Promise.all([
    attempt(() => api.messages(p.id, conversation)),
    attempt(() => api.outbox(p.id)),
  ]);
  const msgs = messages ?? [];
  const queued = (outbox ?? []).filter((o) => o.to_id === conversation);
  const key = `${p.id}/${conversation}`;
  const marker = S.unread?.key === key ? unreadMarkerIndex(msgs.map((m) => m.sender), p.public_id, S.unread.count) : -1;
  const markerEl = h("div", { class: "unread-marker", "data-testid": "unread-marker", role: "separator" }, h("span", {}, t("newMessages")));
  const items = [
    ...msgs.map((m, i) => ({ at: new Date(m.sent_at), before: i === marker ? markerEl : null, node: messageEl(p, m) })),
    ...queued.map((o) => ({ at: new Date(o.created_at * 1000), before: null, node: pendingEl(p, o) })),
  ];
  const total = items.length;
  const log = h("div", { class: "messages", role: "region", "data-testid": "messages", tabindex: 0, "aria-label": t("messagesWith", { name: title }) },
    total === 0 ? emptyState(t("noMessagesYet", { name: title })) : null,
    ...groupByDay(items, (i) => i.at).flatMap((g) => [
      h("h3", { class: "day", "data-testid": "day" }, h("span", {}, dayTitle(g.day))),
      ...g.items.flatMap((i) => [i.before, i.node]),
    ]));
  const jump = h("button", { type: "button", class: "jump", "data-testid": "jump-latest", hidden: true }, `↓ ${t("jumpLatest")}`);
  const same = chatScroll.key === key;
  if (!same) Object.assign(chatScroll, { key, atBottom: true, top: 0, seen: total });
  const atEnd = () => isNearBottom(log.scrollTop, log.scrollHeight, log.clientHeight);
  log.addEventListener("scroll", () => {
    chatScroll.atBottom = atEnd();
    chatScroll.top = log.scrollTop;
    jump.hidden = chatScroll.atBottom;
    if (chatScroll.atBottom) {
      chatScroll.seen = total;
      jump.textContent = `↓ ${t("jumpLatest")}`;
    }
  });
  // The composer grows with previews and long text: a reader at the latest stays there.
  const resized = new ResizeObserver(() => {
    if (!log.isConnected) resized.disconnect();
    else if (chatScroll.key === key && chatScroll.atBottom) log.scrollTop = log.scrollHeight;
  });
  resized.observe(log);
  jump.addEventListener("click", () => {
    log.scrollTop = log.scrollHeight;
    input.focus();
  });

  const draft = draftFor(`chat:${key}`);
  const input = h("textarea", { name: "body", rows: 2, "data-testid": "composer", "aria-describedby": "composer-hint" });
  const sendButton = h("button", { type: "button", class: "primary", "data-testid": "send" }, t("send"));
  const send = async () => {
    const text = input.value.trim();
    if ((!text && draft.length === 0) || sendButton.disabled) return;
    sendButton.disabled = true;
    try {
      const images = await draft.uploads();
      if (await attempt(() => api.sendMessage(p.id, conversation, text, images))) {
        input.value = "";
        draft.clear();
        chatScroll.atBottom = true;
        await renderChat(p, conversation, pane, title);
        pane.querySelector<HTMLElement>("[data-testid=composer]")?.focus();
      }
    } finally {
      sendButton.disabled = false;
    }
  };
  sendButton.addEventListener("click", () => void send());
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    }
  });
  const composer = h("div", { class: "composer", style: colourVars(p.color) },
    field(t("typeMessage", { name: p.name }), input),
    draftPreviews(draft, "chat-previews"),
    h("div", { class: "composer-row" }, imagePicker(draft, "chat-image", t("attachImages"), true), h("small", { class: "muted", id: "composer-hint" }, t("composerHint")), h("span", { class: "spacer" }), sendButton));
  const box = h("div", { class: "chat-box" },
    h("div", { class: "chat-title" }, h("h2", {}, title), title !== conversation ? h("span", { class: "muted" }, ` ${conversation}`) : null),
    h("div", { class: "log-wrap" }, log, jump),
    composer);
  acceptImages(draft, box, input);
  replace(pane, box);

  if (same && !chatScroll.atBottom) {
    log.scrollTop = chatScroll.top;
    jump.hidden = false;
    if (total > chatScroll.seen) jump.textContent = `↓ ${t("newBelow", { n: total - chatScroll.seen })}`;
  } else if (!same && marker >= 0) {
    // Open at the first unread message when the new ones do not fit the view.
    log.scrollTop = Math.min(markerEl.offsetTop - 8, log.scrollHeight);
  } else {
    log.scrollTop = log.scrollHeight;
  }
  chatScroll.atBottom = atEnd();
  jump.hidden = chatScroll.atBottom;
  if (chatScroll.atBottom) chatScroll.seen = total;
  // A chat just opened takes the keyboard to its composer; a redraw after an event leaves the
  // focus where the user put it.
  if (!same && S.current === p.id && S.conversation === conversation && !dialogOpen()) input.focus();
}

async function renderInbox() {
  const byProfile = new Map<string, Conversation[]>();
  await Promise.all(S.profiles.map(async (p) => byProfile.set(p.id, (await api.conversations(p.id).catch(() => [])) as Conversation[])));
  const rows = mergeInbox(S.profiles, byProfile);
  replace(main, h("header", { class: "bar" }, h("h1", {}, t("inbox"))),
    h("section", { class: "body column" },
      rows.length === 0 ? emptyState(t("noConversationsAll")) : null,
      ...rows.map((r) => conversationRow(r.profile, r.conversation, () => openConversation(r.profile.id, r.conversation.id, r.conversation.unread), true))));
}

// ---------------------------------------------------------------- public platform

function profileOf(id: string): ProfileInfo | undefined {
  return S.profiles.find((p) => p.id === id);
}

function profileTag(id: string) {
  const p = profileOf(id);
  return h("span", { class: "tag", style: colourVars(p?.color ?? "#888") }, p?.name ?? id);
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
    h("h1", {}, t("platform")),
    h("span", { class: "spacer" }),
    list.some((o) => o.publishes) &&
      h("button", { class: "primary", "data-testid": "open-publish", onclick: () => openPublish(list) }, t("publish")));
  if (list.length === 0) {
    replace(main, header, h("section", { class: "body column" }, emptyState(t("noOfficials"), null, "no-officials")));
    return;
  }
  const officialRows = h("div", { class: "list", "aria-label": t("officialAccounts") },
    h("h2", { class: "pad" }, t("officialAccounts")),
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
    h("h2", { class: "pad" }, t("customerInbox")),
    filters,
    rows.length === 0 ? emptyState(t("noCustomerConversations")) : null,
    ...rows.map((e) => customerRow(e)));
  const pane = h("div", { class: "chat" });
  replace(main, header, h("section", { class: "body" }, officialRows, inboxList, pane));
  const open = P.open && rows.find((e) => e.profile === P.open!.profile && e.official_id === P.open!.official_id && e.customer === P.open!.customer);
  if (open) await renderCustomerChat(open, pane);
  else replace(pane, emptyState(t("pickCustomer")));
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
  const input = h("textarea", { name: "body", rows: 2, "data-testid": "official-composer" });
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
    h("div", { class: "composer", style: colourVars(p?.color ?? "#888") },
      field(label, input),
      h("div", { class: "composer-row" }, h("small", { class: "muted" }, t("composerHint")), h("span", { class: "spacer" }),
        h("button", { class: "primary", "data-testid": "official-send", onclick: send }, t("send")))));
  log.scrollTop = log.scrollHeight;
}

/** One article to several official accounts at once: one result per account. The key is
 * made once per dialog, so "Publish" again after a failure publishes nothing twice. */
function openPublish(officials: OperatedOfficial[]) {
  const key = crypto.randomUUID();
  const targets = officials.filter((o) => o.publishes);
  const results = h("ul", { class: "results", "data-testid": "publish-results" });
  const form = h("form", { class: "stack" },
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
  const close = openDialog(form, { title: t("publishArticle"), testid: "publish-dialog" });
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
      } else if (!dialogOpen()) void renderResources();
    }, 2000);
  }
  if (!r) return;
  const head = ["profile", "traffic", "eventsPerMinute", "eventsTotal", "database", "connectionHistory"] as Key[];
  const rows = r.profiles.map((x) => {
    const p = S.profiles.find((q) => q.id === x.profile);
    return h("tr", { "data-testid": `resources-${p?.name ?? x.profile}` },
      h("td", {}, h("span", { class: "tag", style: colourVars(p?.color ?? "#888") }, p?.name ?? x.profile)),
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
  // Windows and macOS count resident pages, which double-count what processes share.
  const memory = r.memory_bytes == null
    ? t("memoryUnknown")
    : formatBytes(Number(r.memory_bytes)) + (r.memory_measure === "resident" ? ` ${t("memoryResident")}` : "");
  replace(main,
    h("header", { class: "bar" }, h("h1", {}, t("resources")), h("span", { class: "spacer" }),
      h("span", { "data-testid": "app-memory" }, t("appMemory", { size: memory }))),
    h("section", { class: "body column" },
      h("table", { class: "resources" }, h("thead", {}, h("tr", {}, ...head.map((k) => h("th", {}, t(k))))), h("tbody", {}, ...rows))));
}

async function renderSearch(profile: string | null, initialText = "") {
  const results = h("div", { class: "column results", "aria-live": "polite" });
  const run = async (text: string) => {
    if (!text.trim()) {
      replace(results);
      return;
    }
    const hits = (await attempt(() => api.search(profile, text))) ?? [];
    replace(results, hits.length === 0 ? emptyState(t("noHits", { text })) : null, ...hits.map((hit) => {
      const p = S.profiles.find((x) => x.id === hit.profile);
      return h("button", { class: "conv", onclick: () => openConversation(hit.profile, hit.message.conversation_id) },
        p ? h("span", { class: "tag", style: colourVars(p.color) }, p.name) : null,
        h("span", { class: "title" }, hit.message.sender_name),
        h("span", { class: "preview" }, hit.message.body));
    }));
  };
  const input = h("input", { type: "search", class: "search", name: "search", value: initialText, "data-testid": "search", onkeydown: (e: Event) => {
    if ((e as KeyboardEvent).key === "Enter") void run((e.target as HTMLInputElement).value);
  } });
  const title = profile ? t("search") : t("searchAll");
  const p = profile ? profileOf(profile) : undefined;
  replace(main, h("header", { class: "bar", style: p ? colourVars(p.color) : undefined },
      profile && h("button", { type: "button", "data-testid": "search-back", onclick: () => void renderMain() }, `← ${t("back")}`),
      h("h1", {}, p ? `${title} · ${p.name}` : title)),
    h("section", { class: "body column" }, field(title, input, t("searchHint")), results));
  if (!dialogOpen()) input.focus();
  if (initialText) await run(initialText);
}

// ---------------------------------------------------------------- contacts

/** A checklist of contacts with a filter above it once the list is long. */
function contactChecklist(contacts: readonly Contact[], name: string, testid: string) {
  const filter = h("input", { type: "search", name: `${name}_filter`, autocomplete: "off" });
  const chosen = new Set<string>();
  const list = h("div", { class: "checklist", "data-testid": testid });
  const draw = () => replace(list, ...filterContacts(contacts, filter.value).map((c) =>
    h("label", { class: "check" },
      h("input", { type: "checkbox", name, value: c.public_id, checked: chosen.has(c.public_id), onchange: (e: Event) => {
        if ((e.target as HTMLInputElement).checked) chosen.add(c.public_id);
        else chosen.delete(c.public_id);
      } }),
      c.display_name, h("span", { class: "muted" }, ` ${c.public_id}`))));
  filter.addEventListener("input", draw);
  draw();
  return { element: h("div", { class: "stack" }, contacts.length > 6 ? field(t("findContact"), filter) : null, list), chosen };
}

async function renderContacts(p: ProfileInfo, body: HTMLElement) {
  const [contacts, requests, groups] = await Promise.all([
    attempt(() => api.contacts(p.id)),
    attempt(() => api.contactRequests(p.id)),
    attempt(() => api.groups(p.id)),
  ]);
  const all = contacts ?? [];
  const find = h("form", { class: "card", "data-testid": "find-user", onsubmit: async (e: Event) => {
    e.preventDefault();
    const f = e.target as HTMLFormElement;
    const id = value(f, "public_id").trim();
    if (await attempt(() => api.requestContact(p.id, id, value(f, "note")))) {
      flash(t("requestSent", { id }), false);
      f.reset();
      await renderMain();
    }
  } },
    h("h2", {}, t("findById")),
    h("p", { class: "muted" }, t("findHint")),
    field(t("theirId"), h("input", { name: "public_id", required: true, autocomplete: "off", spellcheck: false, "data-testid": "find-id" })),
    field(t("noteOptional"), h("input", { name: "note", maxlength: 200 })),
    h("div", { class: "row end" }, h("button", { class: "primary", type: "submit", "data-testid": "send-request" }, t("sendRequest"))));
  const incoming = (requests?.incoming ?? []).filter((r) => r.status === "pending");
  const outgoing = (requests?.outgoing ?? []).filter((r) => r.status === "pending");
  const reqs = incoming.length || outgoing.length
    ? h("section", { class: "card", "data-testid": "requests" }, h("h2", {}, t("requests")),
        ...incoming.map((r) =>
          h("div", { class: "row" }, h("span", {}, h("strong", {}, r.from_display_name), ` (${r.from})`, r.note ? h("span", { class: "muted" }, ` · ${r.note}`) : null),
            h("button", { class: "primary", "data-testid": `accept-${r.from}`, onclick: async () => { if ((await attempt(() => api.acceptContact(p.id, r.id))) !== undefined) await renderMain(); } }, t("accept")))),
        ...outgoing.map((r) => h("div", { class: "row muted" }, h("span", {}, t("waitingFor", { name: r.to_display_name || r.to, id: r.to })))))
    : null;
  const filter = h("input", { type: "search", name: "contact_filter", autocomplete: "off" });
  const rows = h("div", { class: "stack" });
  const drawRows = () => replace(rows, ...filterContacts(all, filter.value).map((c) =>
    h("button", { class: "conv", "data-testid": `contact-${c.public_id}`, onclick: () => openConversation(p.id, c.public_id) },
      h("span", { class: "title" }, c.display_name), h("span", { class: "preview" }, `${c.public_id} · ${t("message")}`))));
  filter.addEventListener("input", drawRows);
  drawRows();
  const list = h("section", { class: "card", "data-testid": "contact-list" }, h("h2", {}, `${t("contacts")} (${all.length})`),
    all.length === 0 ? emptyState(t("noContacts")) : null,
    all.length > 6 ? field(t("findContact"), filter) : null,
    rows);
  const groupList = (groups ?? []).length
    ? h("section", { class: "card", "data-testid": "group-list" }, h("h2", {}, t("groups")),
        ...(groups ?? []).map((g: Group) => h("button", { class: "conv", onclick: () => openConversation(p.id, g.id) },
          h("span", { class: "title" }, g.name), h("span", { class: "preview" }, t("memberCount", { n: g.members.length })))))
    : null;
  const members = contactChecklist(all, "member", "group-members");
  const group = h("form", { class: "card", "data-testid": "new-group", onsubmit: async (e: Event) => {
    e.preventDefault();
    const f = e.target as HTMLFormElement;
    const g = await attempt(() => api.createGroup(p.id, value(f, "name"), [...members.chosen]));
    if (g) await openConversation(p.id, g.id);
  } },
    h("h2", {}, t("newGroup")),
    field(t("groupName"), h("input", { name: "name", required: true, maxlength: 64 })),
    h("fieldset", {}, h("legend", {}, t("members")), all.length === 0 ? h("p", { class: "muted" }, t("groupNeedsContacts")) : members.element),
    h("div", { class: "row end" }, h("button", { type: "submit" }, t("createGroup"))));
  replace(body, h("div", { class: "column" }, find, reqs, list, groupList, group));
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

/** A picker of who gets money: contacts (and groups, for red envelopes), never typed IDs. */
function payeeSelect(name: string, testid: string, contacts: readonly Contact[], groups: readonly Group[] | null) {
  return h("select", { name, required: true, "data-testid": testid },
    h("option", { value: "" }, t("chooseContact")),
    contacts.length > 0 && h("optgroup", { label: t("contacts") }, ...contacts.map((c) => h("option", { value: c.public_id }, `${c.display_name} (${c.public_id})`))),
    groups && groups.length > 0 && h("optgroup", { label: t("groups") }, ...groups.map((g) => h("option", { value: g.id }, g.name))));
}

const txKinds: Record<string, Key> = {
  topup: "tx_topup",
  transfer: "tx_transfer",
  red_envelope: "tx_red_envelope",
  red_envelope_claim: "tx_red_envelope_claim",
  red_envelope_refund: "tx_red_envelope_refund",
};

/** Older history pages the user asked for, kept while the wallet redraws after an event. */
const older = { profile: "", transactions: [] as Transaction[], next: null as number | null };

async function renderWallet(p: ProfileInfo, body: HTMLElement) {
  const [wallet, page, pending, contacts, groups] = await Promise.all([
    attempt(() => api.wallet(p.id)),
    attempt(() => api.transactions(p.id, null)),
    attempt(() => api.pendingPayments(p.id)),
    // Only to name the history's counterparts: a payment dialog reads its payees afresh.
    api.contacts(p.id).catch(() => [] as Contact[]),
    api.groups(p.id).catch(() => [] as Group[]),
  ]);
  if (older.profile !== p.id) Object.assign(older, { profile: p.id, transactions: [], next: null });
  const names = new Map(contacts.map((c) => [c.public_id, c.display_name]));
  for (const g of groups) names.set(g.id, g.name);
  const again = () => renderMain();

  /** One wallet action in a dialog: its fields, its submit (once at a time), then a redraw. */
  type Fields = (HTMLElement | null)[];
  const action = (title: Key, testid: string, fields: () => Fields | Promise<Fields | undefined>, submit: (f: HTMLFormElement) => Promise<unknown>, money = true, submitLabel: Key = title) => async () => {
    const made = await fields();
    if (made === undefined) return;
    const button = h("button", { type: "submit", class: "primary" }, t(submitLabel));
    const form = h("form", { class: "stack wallet-form", "data-testid": testid, style: colourVars(p.color) },
      money ? h("p", { class: "row from" }, h("span", { class: "tag", style: colourVars(p.color) }, p.name), h("span", { class: "muted" }, t("payFrom", { name: p.name }))) : null,
      ...made,
      h("div", { class: "row end" }, h("button", { type: "button", onclick: () => close() }, t("cancel")), button));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      // One request at a time: a double click must not make a second payment.
      if (button.disabled) return;
      button.disabled = true;
      try {
        if ((await submit(form)) !== undefined) {
          close();
          await again();
        }
      } finally {
        button.disabled = false;
      }
    });
    const close = openDialog(form, { title: t(title), testid: `${testid}-dialog` });
  };
  const amountField = (name = "amount") => field(t("amount"), h("input", { name, inputmode: "decimal", required: true, autocomplete: "off" }), t("amountHint"));
  const noPayee = (payees: readonly Contact[]) => payees.length === 0
    ? h("p", { class: "muted" }, t("noPayees"))
    : null;
  /** Who money can go to, read as a payment dialog opens: a contact added since the wallet was
   * drawn is offered, and a failed read says why (undefined: no dialog) instead of offering nobody. */
  const payees = () => attempt(() => Promise.all([api.contacts(p.id), api.groups(p.id)]));

  const verify = action("verify", "verify", () => [
    h("p", { class: "muted" }, t("verifyHint")),
    field(t("legalName"), h("input", { name: "legal_name", required: true, autocomplete: "name" })),
    field(t("idNumber"), h("input", { name: "id_number", required: true, autocomplete: "off", spellcheck: false })),
  ], (f) => attempt(() => api.verifyIdentity(p.id, value(f, "legal_name"), value(f, "id_number"))), false);
  const topUp = action("topUp", "top-up", () => [amountField()], async (f) => {
    const fen = amountOf(f, "amount");
    return fen === null ? undefined : pay(p, (ok) => api.topUp(p.id, fen, ok));
  });
  const transfer = action("transfer", "transfer", async () => {
    const got = await payees();
    return got && [
      noPayee(got[0]),
      field(t("toContact"), payeeSelect("to", "transfer-to", got[0], null)),
      amountField(),
      field(t("noteOptional"), h("input", { name: "note", maxlength: 100 })),
    ];
  }, async (f) => {
    const fen = amountOf(f, "amount");
    return fen === null ? undefined : pay(p, (ok) => api.transfer(p.id, value(f, "to"), fen, value(f, "note"), ok));
  });
  const envelope = action("redEnvelope", "red-envelope", async () => {
    const got = await payees();
    return got && [
      got[0].length === 0 && got[1].length === 0 ? noPayee(got[0]) : null,
      field(t("toContactOrGroup"), payeeSelect("to", "envelope-to", got[0], got[1])),
      amountField("total"),
      field(t("count"), h("input", { name: "count", type: "number", min: 1, max: 100, value: 1, required: true }), t("countHint")),
      field(t("envelopeMode"), h("select", { name: "mode" }, h("option", { value: "lucky" }, t("lucky")), h("option", { value: "equal" }, t("equal")))),
      field(t("greeting"), h("input", { name: "greeting", maxlength: 50, value: t("defaultGreeting") })),
    ];
  }, async (f) => {
    const fen = amountOf(f, "total");
    if (fen === null) return undefined;
    const sent = await pay(p, (ok) => api.sendRedEnvelope(p.id, { to: value(f, "to"), total: fen, count: Number(value(f, "count")), mode: value(f, "mode") === "equal" ? "equal" : "lucky", greeting: value(f, "greeting") }, ok));
    // The ID is what the others claim it with: shown until dismissed, ready to copy.
    if (sent) {
      const done = openDialog(h("div", { class: "stack", "data-testid": "envelope-sent" },
        h("p", {}, t("envelopeSentHint")),
        field(t("envelopeId"), h("input", { readonly: true, value: sent.id, "data-testid": "envelope-id", onfocus: (e: Event) => (e.target as HTMLInputElement).select() })),
        h("div", { class: "row end" }, h("button", { type: "button", class: "primary", onclick: () => done() }, t("done")))),
        { title: t("envelopeSentTitle"), className: "narrow" });
    }
    return sent;
  }, true, "sendEnvelope");
  const claim = action("claimEnvelope", "claim", () => [
    h("p", { class: "muted" }, t("claimHint")),
    field(t("envelopeId"), h("input", { name: "id", required: true, autocomplete: "off", spellcheck: false })),
  ], async (f) => {
    const got = await attempt(() => api.claimRedEnvelope(p.id, value(f, "id").trim()));
    if (got) flash(t("claimed", { amount: formatMoney(got.amount) }), false);
    return got;
  }, false, "claim");

  const verified = wallet?.verified ?? false;
  const balance = h("section", { class: "card balance", "data-testid": "balance-card", "data-verified": String(verified) },
    h("span", { class: "muted" }, t("balance")),
    h("strong", { "data-testid": "balance" }, wallet ? formatMoney(wallet.balance) : "—"),
    wallet && (verified
      ? h("span", { class: "ok" }, `✓ ${t("verified")}`)
      : h("div", { class: "callout" }, h("p", {}, t("unverified")), h("button", { class: "primary", "data-testid": "open-verify", onclick: verify }, t("verifyNow")))),
    h("div", { class: "row actions" },
      h("button", { class: verified ? "primary" : "", "data-testid": "open-top-up", onclick: topUp }, t("topUp")),
      h("button", { "data-testid": "open-transfer", onclick: transfer }, t("transfer")),
      h("button", { "data-testid": "open-red-envelope", onclick: envelope }, t("redEnvelope")),
      h("button", { "data-testid": "open-claim", onclick: claim }, t("claimEnvelope"))));

  const inDoubt = pending?.length
    ? h("section", { class: "card", "data-testid": "pending-payments" }, h("h2", {}, t("pendingPayments")), h("p", { class: "muted" }, t("pendingHint")),
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

  const first = page?.transactions ?? [];
  const seen = new Set(first.map((x) => x.id));
  const txs = [...first, ...older.transactions.filter((x) => !seen.has(x.id))];
  const next = older.transactions.length ? older.next : (page?.next_before ?? null);
  const history = h("section", { class: "card", "data-testid": "history" }, h("h2", {}, t("history")),
    txs.length === 0 ? emptyState(verified ? t("noTransactions") : t("noTransactionsUnverified")) : null,
    ...groupByDay(txs, (x) => x.at).flatMap((g) => [
      h("h3", { class: "day" }, h("span", {}, dayTitle(g.day))),
      ...g.items.map((tx) => h("div", { class: "row tx", "data-testid": "transaction" },
        h("span", { class: "what" },
          h("strong", {}, txKinds[tx.kind] ? t(txKinds[tx.kind]) : tx.kind),
          tx.counterparty ? ` · ${names.get(tx.counterparty) ?? tx.counterparty}` : "",
          tx.note ? h("span", { class: "muted" }, ` · ${tx.note}`) : null),
        h("time", { class: "muted", datetime: tx.at }, clock(new Date(tx.at))),
        h("strong", { class: tx.amount > 0 ? "credit" : "debit" }, `${tx.amount > 0 ? "+" : ""}${formatMoney(tx.amount)}`))),
    ]),
    next !== null && next !== undefined && h("button", { class: "more", "data-testid": "history-more", onclick: async () => {
      const more = await attempt(() => api.transactions(p.id, next));
      if (!more) return;
      older.transactions.push(...more.transactions);
      older.next = more.next_before ?? null;
      await again();
    } }, t("olderTransactions")));

  replace(body, h("div", { class: "column wallet", style: colourVars(p.color) }, balance, inDoubt, history));
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
    h("h2", {}, p.name),
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
          if ((await attempt(() => api.removeProfile(p.id))) !== undefined) { forgetThumbnails(p.id); S.current = null; await loadProfiles(); await renderMain(); }
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
    h("h2", {}, t("notifications")),
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
    mainWindow
      ? h("div", { class: "row end" }, h("button", { class: "primary" }, t("save")))
      : h("p", { class: "muted" }, t("policyInMainWindow")));
  // A profile window may not change the policy (the main window decides): shown, not editable.
  if (notif && !mainWindow) for (const el of notif.querySelectorAll<HTMLInputElement | HTMLSelectElement>("input, select")) el.disabled = true;
  // Asked quietly: where the system cannot tell (no autostart in this build), no switch.
  const atLogin = mainWindow ? await api.startAtLogin().catch(() => undefined) : undefined;
  const startAtLogin = atLogin !== undefined && h("label", { class: "check" },
    h("input", { type: "checkbox", name: "start_at_login", checked: atLogin, onchange: async (e: Event) => {
      const box = e.target as HTMLInputElement;
      // What the system has afterwards, whatever was asked.
      const now = await attempt(() => api.setStartAtLogin(box.checked));
      box.checked = now ?? !box.checked;
    } }), t("startAtLogin"));
  const global = mainWindow && h("div", { class: "card" },
    h("label", { class: "check" }, h("input", { type: "checkbox", onchange: (e: Event) => attempt(() => api.setDoNotDisturb((e.target as HTMLInputElement).checked)) }), t("dnd")),
    startAtLogin,
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

type AddMode = "signin" | "register" | "secondary";

function openAddProfile(login = "") {
  let mode: AddMode = "signin";
  const pane = h("div", { class: "add" });
  const close = openDialog(pane, { title: t("addProfile"), testid: "add-profile-dialog" });
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
    return [
      field(t("phone"), h("input", { name: "phone", type: "tel", required: true, autocomplete: "tel", "data-testid": "phone" }), t("phoneHint")),
      h("div", { class: "row bottom" },
        field(t("smsCode"), h("input", { name: "sms_code", required: true, inputmode: "numeric", autocomplete: "one-time-code", "data-testid": "sms-code" })),
        send, fill),
      note,
    ];
  };
  const render = () => {
    const tabs = (["signin", "register", "secondary"] as AddMode[]).map((m) =>
      h("button", { type: "button", class: `tab ${m === mode ? "active" : ""}`, "aria-pressed": String(m === mode), "data-testid": `add-${m}`, onclick: () => { mode = m; render(); } },
        t(m === "signin" ? "signIn" : m === "register" ? "register" : "registerSecondary")));
    const allowance = h("label", { class: "check insecure-allow", hidden: !needsInsecureAllowance(server()), "data-testid": "allow-insecure-http" },
      h("input", { type: "checkbox", name: "allow_insecure_http" }), t("allowInsecureHttp"));
    const serverInput = h("input", { name: "server", type: "url", value: server(), "data-testid": "server" });
    serverInput.addEventListener("input", () => { allowance.hidden = !needsInsecureAllowance(server()); });
    const common = [
      field(t("server"), serverInput),
      allowance,
      field(t("profileName"), h("input", { name: "name", "data-testid": "profile-name" }), t("profileNameHint")),
    ];
    const totp = field(t("totp"), h("input", { name: "totp", inputmode: "numeric", autocomplete: "one-time-code" }));
    totp.hidden = true;
    const form = mode === "signin"
      ? h("form", { class: "stack", onsubmit: async (e: Event) => {
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
              if (er.code === "totp_required") {
                totp.hidden = false;
                totp.querySelector("input")?.focus();
              }
              flash(errorMessage(err));
            }
          }
        } }, ...common,
          field(t("login"), h("input", { name: "login", value: login, required: true, autocomplete: "username", "data-testid": "login" })),
          field(t("password"), h("input", { name: "password", type: "password", required: true, autocomplete: "current-password", "data-testid": "password" })),
          totp,
          h("div", { class: "choice" }),
          h("button", { class: "primary", type: "submit", "data-testid": "submit" }, t("signIn")))
      : h("form", { class: "stack", onsubmit: async (e: Event) => {
          e.preventDefault();
          const f = e.target as HTMLFormElement;
          const made = await attempt(() => api.registerProfile({ server: server(), phone: value(f, "phone"), sms_code: value(f, "sms_code"), public_id: value(f, "public_id"), password: value(f, "password"), display_name: value(f, "display_name"), name: value(f, "name") || null, color: null, allow_insecure_http: allowInsecure() }));
          if (made) await done(made.profile);
        } }, ...common,
          mode === "secondary" ? h("p", { class: "muted" }, t("secondaryHint")) : null,
          ...codeField("register"),
          field(t("newPublicId"), h("input", { name: "public_id", required: true, autocomplete: "username", spellcheck: false, "data-testid": "public-id" }), t("publicIdHint")),
          field(t("displayName"), h("input", { name: "display_name", required: true, autocomplete: "nickname", "data-testid": "display-name" })),
          field(t("password"), h("input", { name: "password", type: "password", required: true, autocomplete: "new-password", "data-testid": "password" }), t("passwordHint")),
          h("button", { class: "primary", type: "submit", "data-testid": "submit" }, t("create")));
    replace(pane, h("div", { class: "tabs", role: "group", "aria-label": t("addHow") }, ...tabs), form);
  };
  render();
}

function openQuickSwitcher() {
  const list = h("div", { class: "stack" });
  const input = h("input", { type: "search", "data-testid": "quick-switch", autocomplete: "off" });
  const close = openDialog(h("div", { class: "stack" }, field(t("quickSwitchLabel"), input), list), { title: t("quickSwitch") });
  const draw = () => replace(list, ...matchProfiles(S.profiles, input.value).map((p) =>
    h("button", { class: "conv", onclick: () => { close(); select(p.id); } }, h("span", { class: "tag", style: colourVars(p.color) }, p.name), h("span", { class: "preview" }, p.public_id))));
  input.addEventListener("input", draw);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") { const first = matchProfiles(S.profiles, input.value)[0]; if (first) { close(); select(first.id); } }
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
  } else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "k" && !S.info?.window_profile && !dialogOpen()) {
    e.preventDefault();
    openQuickSwitcher();
  }
});

/**
 * Re-renders without losing what the user is typing, nor where they had scrolled: values and
 * focus survive by field (named by its surroundings and, inside a post, by the post), scroll
 * positions by pane.
 */
async function keepingInput(render: () => Promise<void>) {
  const key = (el: Element) => {
    const scope = el.parentElement?.closest("[data-testid]")?.getAttribute("data-testid") ?? "";
    const item = el.closest("[data-id]");
    const id = item ? `${item.getAttribute("data-profile") ?? ""}:${item.getAttribute("data-id")}` : "";
    return `${scope}/${id}/${el.getAttribute("name") ?? el.getAttribute("data-testid") ?? ""}`;
  };
  const fields = () => [...main.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>("input:not([type=checkbox]):not([type=radio]):not([type=file]), textarea")];
  const typed = new Map(fields().filter((f) => f.value !== f.defaultValue).map((f) => [key(f), f.value]));
  const focused = document.activeElement && main.contains(document.activeElement) ? key(document.activeElement) : null;
  const panes = () => [...main.querySelectorAll<HTMLElement>(".column, .list")];
  const scrolled = panes().map((el) => el.scrollTop);
  await render();
  for (const f of fields()) {
    const k = key(f);
    if (typed.has(k)) f.value = typed.get(k)!;
    if (k === focused && !dialogOpen()) f.focus();
  }
  panes().forEach((el, i) => {
    if (scrolled[i]) el.scrollTop = scrolled[i];
  });
}

let pending: ReturnType<typeof setTimeout> | null = null;
let pendingTouches = false;
/** Re-reads after events, at most every 150 ms, without losing the last one (nor whether any
 * of those coalesced touched the open view). */
function refreshSoon(touchesOpenView: boolean) {
  if (pending) clearTimeout(pending);
  pendingTouches ||= touchesOpenView;
  pending = setTimeout(async () => {
    pending = null;
    const touches = pendingTouches;
    pendingTouches = false;
    await loadProfiles();
    if (touches && S.view !== "settings") {
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

/** Whether a profile's event changes what the open view shows. Moments re-read the feed (a
 * request to the service) only for moment events of a profile they show. */
function touchesView(profile: string, e: Extract<UiEvent, { type: "profile" }>): boolean {
  if (S.view === "moments") return isMomentEvent(e.kind) && (profile === S.current || S.momentsMerged);
  return profile === S.current || S.view === "inbox" || S.view === "platform";
}

async function onUiEvent(e: UiEvent) {
  switch (e.type) {
    case "profile":
      refreshSoon(touchesView(e.profile, e));
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

/** Mirrors the system's light or dark choice into `<html data-theme>`, now and whenever it
 * changes (the stylesheet keys every colour on that attribute). */
function followSystemTheme() {
  const dark = window.matchMedia("(prefers-color-scheme: dark)");
  const apply = () => (document.documentElement.dataset.theme = dark.matches ? "dark" : "light");
  apply();
  dark.addEventListener("change", apply);
}

followSystemTheme();
void boot();
