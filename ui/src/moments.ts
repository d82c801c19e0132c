// Moments: the feed of the profile in front, or of every profile together (each post marked
// with the profile that sees it, and liked or answered through that profile); a composer with
// text, up to nine images and who may see the post; likes and comments in place.

import * as api from "./bindings";
import type { Contact, MomentView, ProfileInfo } from "./bindings";
import { h, replace } from "./dom";
import { type Key, lang, t } from "./i18n";
import { type AudienceMode, buildVisibility, colourVars, dayKey, filterContacts, initial, relativeDay } from "./logic";
import { acceptImages, draftFor, draftPreviews, imagePicker, thumbnails } from "./images";
import { attempt, confirmDialog, emptyState, field, flash } from "./ui";

export interface MomentsContext {
  profiles: readonly ProfileInfo[];
  /** The profile in front: the one that posts. */
  profile: ProfileInfo;
  merged: boolean;
  /** Whether this window may show every profile's feed (the main window, with several). */
  canMerge: boolean;
  setMerged(on: boolean): void;
}

/** One feed page (the core's): a full page means there may be older posts. */
const PAGE = 20;
const MAX_TEXT = 2000;

/** What the composer and the feed keep across redraws (an event redraws the view). */
const state = {
  feed: "",
  pages: 1,
  audience: new Map<string, { mode: AudienceMode; chosen: Set<string> }>(),
  /** The comment each post's form answers, by `profile/post`. */
  replyTo: new Map<string, { id: string; name: string }>(),
};

function audienceOf(profile: string) {
  let a = state.audience.get(profile);
  if (!a) {
    a = { mode: "contacts", chosen: new Set() };
    state.audience.set(profile, a);
  }
  return a;
}

/** "14:05" today, "Yesterday 14:05", else the date and time, in the UI's language. */
export function when(at: string, now = new Date()): string {
  const d = new Date(at);
  const locale = lang() === "zh" ? "zh-CN" : "en";
  const time = d.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  const rel = relativeDay(dayKey(d), now);
  if (rel === "today") return time;
  if (rel === "yesterday") return `${t("yesterday")} ${time}`;
  return d.toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
}

export async function renderMoments(body: HTMLElement, ctx: MomentsContext) {
  const p = ctx.profile;
  const merged = ctx.merged && ctx.canMerge;
  const feedKey = merged ? "*" : p.id;
  if (state.feed !== feedKey) {
    state.feed = feedKey;
    state.pages = 1;
  }
  const [posts, contacts] = await Promise.all([loadPages(merged ? null : p.id, state.pages), attempt(() => api.contacts(p.id))]);
  const byId = new Map(ctx.profiles.map((x) => [x.id, x]));

  const top = h("div", { class: "row moments-top" },
    h("h2", {}, merged ? t("momentsAll") : t("momentsOf", { name: p.name })),
    h("span", { class: "spacer" }),
    ctx.canMerge && h("label", { class: "check" },
      h("input", { type: "checkbox", checked: merged, "data-testid": "moments-merged", onchange: (e: Event) => ctx.setMerged((e.target as HTMLInputElement).checked) }),
      t("momentsMerged")));

  const feed = h("div", { class: "feed", "data-testid": "moments-feed", "aria-label": t("moments") });
  const draw = (list: MomentView[], more: boolean) => {
    replace(feed,
      list.length === 0
        ? emptyState(merged ? t("noMomentsAll") : t("noMoments"), null, "moments-empty")
        : list.map((m) => post(m, byId.get(m.profile), merged)),
      more && h("button", { type: "button", class: "more", "data-testid": "moments-older", onclick: async () => {
        state.pages += 1;
        const next = await loadPages(merged ? null : p.id, state.pages);
        draw(next.posts, next.more);
      } }, t("olderPosts")));
  };
  draw(posts.posts, posts.more);

  replace(body, h("div", { class: "column moments", style: colourVars(p.color) },
    top,
    composer(p, contacts ?? [], () => void renderMoments(body, ctx)),
    feed));
}

/** The first `pages` pages of a feed, one after the other. */
async function loadPages(profile: string | null, pages: number): Promise<{ posts: MomentView[]; more: boolean }> {
  const posts: MomentView[] = [];
  let before: string | null = null;
  for (let i = 0; i < pages; i += 1) {
    const page = await attempt(() => api.momentsFeed(profile, before));
    if (!page) return { posts, more: false };
    posts.push(...page);
    if (page.length < PAGE) return { posts, more: false };
    before = page[page.length - 1].id;
  }
  return { posts, more: true };
}

// ---------------------------------------------------------------- the composer

function composer(p: ProfileInfo, contacts: Contact[], posted: () => void) {
  const draft = draftFor(`moment:${p.id}`);
  const audience = audienceOf(p.id);
  const text = h("textarea", { name: "text", rows: 3, maxlength: MAX_TEXT, "data-testid": "moment-text" });
  const counter = h("small", { class: "hint", "aria-live": "polite" });
  const count = () => {
    const n = [...text.value].length;
    counter.textContent = n > MAX_TEXT - 200 ? t("charsLeft", { n: MAX_TEXT - n }) : "";
  };
  text.addEventListener("input", count);

  const mode = h("select", { name: "visibility", "data-testid": "moment-visibility" },
    ...(["contacts", "only", "except"] as AudienceMode[]).map((m) => {
      const o = h("option", { value: m }, t(`visibility_${m}` as Key));
      o.selected = audience.mode === m;
      return o;
    }));
  const people = h("fieldset", { class: "audience", "data-testid": "moment-audience" });
  const drawPeople = () => {
    people.hidden = audience.mode === "contacts";
    if (people.hidden) return;
    const filter = h("input", { type: "search", name: "audience_filter", "data-testid": "moment-audience-filter" });
    const list = h("div", { class: "checklist" });
    const drawList = () => replace(list, ...(contacts.length === 0
      ? [h("p", { class: "muted" }, t("noContactsToChoose"))]
      : filterContacts(contacts, filter.value).map((c) =>
          h("label", { class: "check" },
            h("input", { type: "checkbox", name: "audience", value: c.public_id, checked: audience.chosen.has(c.public_id), onchange: (e: Event) => {
              const on = (e.target as HTMLInputElement).checked;
              if (on) audience.chosen.add(c.public_id);
              else audience.chosen.delete(c.public_id);
            } }),
            c.display_name, h("span", { class: "muted" }, ` ${c.public_id}`)))));
    filter.addEventListener("input", drawList);
    replace(people,
      h("legend", {}, audience.mode === "only" ? t("onlyThese") : t("allButThese")),
      contacts.length > 6 ? field(t("findContact"), filter) : null,
      list);
    drawList();
  };
  mode.addEventListener("change", () => {
    audience.mode = mode.value as AudienceMode;
    drawPeople();
  });
  drawPeople();

  const postButton = h("button", { type: "submit", class: "primary", "data-testid": "moment-post" }, t("post"));
  const form = h("form", { class: "card composer-card", "data-testid": "moment-composer", style: colourVars(p.color) },
    h("div", { class: "row" }, h("span", { class: "tag", style: colourVars(p.color) }, p.name), h("span", { class: "muted" }, t("postAs", { name: p.name }))),
    field(t("momentText"), text),
    counter,
    draftPreviews(draft, "moment-previews"),
    h("div", { class: "row" }, imagePicker(draft, "moment-images", t("addImages")), h("small", { class: "muted" }, t("imagesHint"))),
    field(t("whoSees"), mode),
    people,
    h("div", { class: "row end" }, postButton));
  acceptImages(draft, form, text);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (postButton.disabled) return;
    const body = text.value.trim();
    if (!body && draft.length === 0) {
      flash(t("emptyPost"));
      text.focus();
      return;
    }
    const visibility = buildVisibility(audience.mode, audience.chosen);
    if (!visibility) {
      flash(t("chooseSomeone"));
      return;
    }
    postButton.disabled = true;
    try {
      const images = await draft.uploads();
      if (await attempt(() => api.postMoment(p.id, body, images, visibility))) {
        text.value = "";
        draft.clear();
        flash(t("posted"), false);
        posted();
      }
    } finally {
      postButton.disabled = false;
    }
  });
  return form;
}

// ---------------------------------------------------------------- a post

function post(m: MomentView, p: ProfileInfo | undefined, merged: boolean): HTMLElement {
  const key = `${m.profile}/${m.id}`;
  const color = p?.color ?? "#888";
  const el = h("article", { class: "card moment", "data-testid": "moment", "data-id": m.id, "data-profile": m.profile, style: colourVars(color), "aria-label": t("postBy", { name: m.author_display_name }) });
  /** Redraws this post from the core's answer, keeping the keyboard where it was. */
  const update = (next: MomentView, focus: string) => {
    const fresh = post(next, p, merged);
    el.replaceWith(fresh);
    fresh.querySelector<HTMLElement>(`[data-testid=${focus}]`)?.focus();
  };

  const like = h("button", {
    type: "button",
    class: `like ${m.liked_by_me ? "on" : ""}`,
    "aria-pressed": String(m.liked_by_me),
    "data-testid": "moment-like",
    title: m.liked_by_me ? t("youLiked") : t("like"),
    onclick: async () => {
      // A like cannot be taken back (the service's rule): liking twice is liking once.
      if (m.liked_by_me) return;
      like.disabled = true;
      const next = await attempt(() => api.likeMoment(m.profile, m.id));
      like.disabled = false;
      if (next) update(next, "moment-like");
    },
  }, m.liked_by_me ? `♥ ${t("liked")}` : `♡ ${t("like")}`);

  const del = m.mine && h("button", { type: "button", class: "danger quiet", "data-testid": "moment-delete", onclick: async () => {
    if (!(await confirmDialog(t("deletePostConfirm"), t("delete"), "#d93025"))) return;
    if ((await attempt(() => api.deleteMoment(m.profile, m.id))) !== undefined) {
      el.remove();
      flash(t("postDeleted"), false);
    }
  } }, t("delete"));

  const names = new Map(m.comments.map((c) => [c.id, c.author_display_name]));
  const likes = m.likes.length > 0 &&
    h("p", { class: "likes", "data-testid": "moment-likes" }, h("span", { "aria-hidden": "true" }, "♥ "), srOnlyText(t("likedBy")), m.likes.map((l) => l.author_display_name).join(", "));
  const comments = m.comments.length > 0 && h("ul", { class: "comments", "data-testid": "moment-comments", "aria-label": t("comments") },
    ...m.comments.map((c) => h("li", { "data-id": c.id },
      h("strong", {}, c.author_display_name),
      c.reply_to && names.has(c.reply_to) ? h("span", { class: "muted" }, ` ${t("repliedTo", { name: names.get(c.reply_to)! })}`) : null,
      ": ",
      h("span", { class: "text" }, c.text),
      " ",
      h("button", { type: "button", class: "link", "aria-label": t("replyTo", { name: c.author_display_name }), onclick: () => {
        state.replyTo.set(key, { id: c.id, name: c.author_display_name });
        const fresh = post(m, p, merged);
        el.replaceWith(fresh);
        fresh.querySelector<HTMLElement>("[data-testid=moment-comment-text]")?.focus();
      } }, t("reply")))));

  const reply = state.replyTo.get(key);
  const input = h("input", { name: "comment", maxlength: 500, "data-testid": "moment-comment-text", autocomplete: "off" });
  const send = h("button", { type: "submit", "data-testid": "moment-comment-send" }, t("comment"));
  const commentForm = h("form", { class: "comment-form" },
    field(reply ? t("replyTo", { name: reply.name }) : t("writeComment"), input),
    h("div", { class: "row" },
      reply && h("button", { type: "button", class: "quiet", onclick: () => {
        state.replyTo.delete(key);
        update(m, "moment-comment-text");
      } }, t("cancelReply")),
      send));
  commentForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text || send.disabled) return;
    send.disabled = true;
    const next = await attempt(() => api.commentMoment(m.profile, m.id, text, reply?.id ?? null));
    send.disabled = false;
    if (next) {
      state.replyTo.delete(key);
      update(next, "moment-comment-text");
    }
  });

  replace(el,
    h("header", { class: "row moment-head" },
      h("span", { class: "avatar small", "aria-hidden": "true" }, initial(m.author_display_name)),
      h("span", { class: "author" }, h("strong", {}, m.mine ? `${m.author_display_name} (${t("you")})` : m.author_display_name), h("span", { class: "muted" }, ` ${m.author}`)),
      h("span", { class: "spacer" }),
      merged ? h("span", { class: "tag", style: colourVars(color), title: t("seenBy", { name: p?.name ?? m.profile }) }, p?.name ?? m.profile) : null,
      h("time", { datetime: m.at, title: new Date(m.at).toLocaleString() }, when(m.at))),
    m.text && h("p", { class: "moment-text" }, m.text),
    m.media.length > 0 && thumbnails(m.profile, m.media, "moment-thumb", "thumbs grid"),
    h("div", { class: "row actions" }, like, h("span", { class: "spacer" }), del),
    likes,
    comments,
    commentForm);
  return el;
}

function srOnlyText(text: string) {
  return h("span", { class: "sr-only" }, `${text} `);
}
