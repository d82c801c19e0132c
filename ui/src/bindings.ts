// Generated from src-tauri/src/commands.rs by
// `UPDATE_BINDINGS=1 cargo test -p switchboard-app bindings`. Do not edit.
/* eslint-disable */
import { type Channel, invoke } from "@tauri-apps/api/core";

export type AccountId = string;

export type AccountSummary = { account_id: string, public_id: string, display_name: string, 
/**
 * The second account of a phone number.
 */
is_secondary: boolean, };

export type AppInfo = { version: string, default_server: string, 
/**
 * The profile a profile window shows; absent in the main window.
 */
window_profile: ProfileId | null, 
/**
 * How shortcut hints write the primary modifier: "⌘" on macOS, "Ctrl" elsewhere.
 */
primary_modifier: string, };

export type Article = { id: string, official_id: string, official_name: string, title: string, body: string, published_at: string, };

export type Claimed = { amount: number, };

export type Comment = { id: string, 
/**
 * Public ID.
 */
author: string, author_display_name: string, text: string, 
/**
 * The comment this one answers.
 */
reply_to?: string | null, at: string, };

export type ConnState = { "state": "connecting" } | { "state": "live" } | { "state": "offline", "detail": string } | { "state": "certificate", "detail": string } | { "state": "signed_out" } | { "state": "stopped" } | { "state": "locked", "detail": string };

export type Contact = { public_id: string, display_name: string, since: string, };

export type ContactRequest = { id: string, 
/**
 * Public ID of the account that asked.
 */
from: string, from_display_name: string, 
/**
 * Public ID of the account asked.
 */
to: string, to_display_name: string, note: string, status: RequestStatus, created_at: string, };

export type ContactRequestList = { incoming: Array<ContactRequest>, outgoing: Array<ContactRequest>, };

export type ContactRequestState = { id: string, status: RequestStatus, };

export type Conversation = { id: ConversationId, kind: string, title: string, last_message_at: string | null, last_body: string | null, unread: number, };

export type ConversationClaimed = { official_id: string, customer: string, claimed_by: string, expires_at: string, };

export type ConversationId = string;

export type CustomerConversation = { official_id: string, 
/**
 * The customer's public ID.
 */
customer: string, customer_display_name: string, last_message: Message, 
/**
 * Customer messages since the last answer.
 */
unanswered: number, 
/**
 * Public ID of the operator holding the conversation, while the claim lasts.
 */
claimed_by?: string | null, 
/**
 * When the claim lapses unless its holder answers first.
 */
claim_expires_at: string | null, };

export type CustomerMessage = { id: string, 
/**
 * The customer's public ID, or the official account's id for an answer.
 */
sender: string, sender_name: string, 
/**
 * Who answered (an operator's name or a key's), for an answer.
 */
responder: string | null, body: string, sent_at: string, };

export type Envelope = { to: ConversationId, 
/**
 * In fen.
 */
total: number, count: number, mode: EnvelopeMode, greeting: string, };

export type EnvelopeClaim = { public_id: string, amount: number, at: string, };

export type EnvelopeClaimed = { envelope_id: string, 
/**
 * Who claimed.
 */
public_id: string, 
/**
 * Their share, in fen.
 */
amount: number, };

export type EnvelopeMode = "lucky" | "equal";

export type EnvelopeRefunded = { envelope_id: string, 
/**
 * What went back to the sender, in fen (0 when every share was claimed).
 */
amount: number, };

export type Event = { seq: number, at: string, } & ({ "kind": "message.new", "data": Message } | { "kind": "contact.request", "data": ContactRequest } | { "kind": "contact.accepted", "data": ContactRequest } | { "kind": "group.joined", "data": GroupChange } | { "kind": "group.left", "data": GroupChange } | { "kind": "wallet.credit", "data": WalletMovement } | { "kind": "wallet.debit", "data": WalletMovement } | { "kind": "red_envelope.new", "data": RedEnvelope } | { "kind": "red_envelope.claimed", "data": EnvelopeClaimed } | { "kind": "red_envelope.refunded", "data": EnvelopeRefunded } | { "kind": "session.revoked", "data": SessionRevoked } | { "kind": "account.totp_disabled", "data": TotpDisabled } | { "kind": "official.message", "data": OfficialMessage } | { "kind": "official.claimed", "data": ConversationClaimed } | { "kind": "official.operator_added", "data": OperatorChange } | { "kind": "official.operator_removed", "data": OperatorChange } | { "kind": "article.new", "data": Article } | { "kind": "moment.new", "data": Moment } | { "kind": "moment.like", "data": MomentLiked } | { "kind": "moment.comment", "data": MomentCommented } | UnknownEvent);

export type Group = { 
/**
 * `g_…`: never a valid public ID, so a message's `to` is never ambiguous.
 */
id: string, name: string, 
/**
 * Public ID of the member who may remove others.
 */
owner: string, members: Array<GroupMember>, created_at: string, };

export type GroupChange = { group_id: string, group_name: string, 
/**
 * Who joined or left.
 */
public_ids: Array<string>, 
/**
 * Who added or removed them, when it was someone else.
 */
by?: string | null, };

export type GroupMember = { public_id: string, display_name: string, joined_at: string, };

export type ImageUpload = { 
/**
 * The file's bytes, base64.
 */
data: string, };

export type InboxEntry = { 
/**
 * The profile that operates the official account (the one to answer from).
 */
profile: ProfileId, official_id: string, official_name: string, customer: string, customer_name: string, last_body: string, last_at: string, unanswered: number, 
/**
 * Who holds it, while the claim lasts.
 */
claimed_by: string | null, 
/**
 * Whether the profile's own account holds it.
 */
mine: boolean, };

export type InboxFilter = { 
/**
 * Only this official account's.
 */
official: string | null, 
/**
 * Only those the profile's own account holds.
 */
mine: boolean, 
/**
 * Only those nobody holds.
 */
unclaimed: boolean, };

export type IpcError = { code: string, message: string, 
/**
 * With `account_choice_required`: the accounts of that phone number to choose from.
 */
public_ids?: Array<string>, };

export type JsonValue = number | string | boolean | Array<JsonValue> | { [key in string]: JsonValue } | null;

export type Like = { 
/**
 * Public ID.
 */
author: string, author_display_name: string, at: string, };

export type MediaData = { mime: string, 
/**
 * The bytes, base64.
 */
data: string, 
/**
 * Of the full image.
 */
width: number, height: number, };

export type MemoryMeasure = "proportional" | "resident";

export type Message = { id: string, client_id: string, 
/**
 * Sender's public ID.
 */
from: string, from_display_name: string, 
/**
 * Recipient's public ID, or the group id.
 */
to: string, body: string, 
/**
 * Media ids of the images it carries, in order (absent when none).
 */
media?: Array<string>, sent_at: string, };

export type Moment = { id: string, 
/**
 * Public ID.
 */
author: string, author_display_name: string, text: string, media: Array<string>, at: string, likes: Array<Like>, comments: Array<Comment>, };

export type MomentCommented = { moment_id: string, 
/**
 * The post's author (public ID).
 */
post_author: string, comment: Comment, };

export type MomentLiked = { moment_id: string, 
/**
 * The post's author (public ID).
 */
post_author: string, like: Like, };

export type MomentView = { 
/**
 * The profile that sees it (and through which to like or comment).
 */
profile: ProfileId, id: string, 
/**
 * The author's public ID.
 */
author: string, author_display_name: string, text: string, 
/**
 * Media ids of its images (`Engine::media` shows them).
 */
media: Array<string>, at: string, 
/**
 * The likes and comments this profile's account may see (WeChat's rule).
 */
likes: Array<Like>, comments: Array<Comment>, 
/**
 * Whether the profile's own account wrote it.
 */
mine: boolean, 
/**
 * Whether the profile's own account likes it.
 */
liked_by_me: boolean, };

export type MoneyMoved = { transaction_id: string, amount: number, 
/**
 * The caller's balance right after.
 */
balance: number, };

export type OfficialAccount = { 
/**
 * `o_…`
 */
id: string, name: string, description: string, 
/**
 * The avatar colour, `#rrggbb`.
 */
color: string, followers: number, 
/**
 * The caller's role, when the caller operates it.
 */
role?: OfficialRole | null, 
/**
 * Whether the caller follows it.
 */
following: boolean, };

export type OfficialMessage = { official_id: string, official_name: string, 
/**
 * The customer's public ID.
 */
customer: string, message: Message, 
/**
 * Set on answers: who wrote it.
 */
responder?: Responder | null, 
/**
 * The conversation's unanswered count after this message.
 */
unanswered: number, };

export type OfficialRole = "owner" | "admin" | "editor" | "support";

export type OpenConversation = { profile: ProfileId, conversation: string | null, };

export type OperatedOfficial = { profile: ProfileId, id: string, name: string, role: OfficialRole, 
/**
 * What the role lets the profile do here: publish articles, and see and answer customers.
 */
publishes: boolean, serves: boolean, 
/**
 * Customer conversations waiting for an answer that nobody else holds (a claim by
 * another operator takes a conversation out of this count).
 */
unanswered: number, };

export type OperatorChange = { official_id: string, official_name: string, public_id: string, role: OfficialRole, 
/**
 * Who made the change.
 */
by: string, };

export type OutboxEntry = { position: number, client_id: string, to_id: ConversationId, body: string, created_at: number, 
/**
 * Local keys of its images, uploaded when it is sent (`Engine::media` shows them).
 */
media: Array<string>, };

export type Paid = { "kind": "moved", "answer": MoneyMoved } | { "kind": "envelope", "answer": RedEnvelope };

export type Payment = { "kind": "top_up", amount: number, } | { "kind": "transfer", to: PublicId, amount: number, note: string, } | { "kind": "red_envelope", envelope: Envelope, };

export type PendingPayment = { 
/**
 * The idempotency key it is sent with, also what names it to `retry_payment` and
 * `abandon_payment`.
 */
id: string, payment: Payment, 
/**
 * Unix seconds.
 */
created_at: number, 
/**
 * Why the last attempt got no answer.
 */
last_error: string, };

export type Policy = { enabled: boolean, preview: Preview, sound: boolean, quiet_hours: Array<QuietHours>, 
/**
 * Show money amounts in notifications.
 */
show_amounts: boolean, };

export type Preview = "full" | "sender_only" | "nothing";

export type ProfileEvent = { profile: ProfileId, kind: ProfileEventKind, };

export type ProfileEventKind = { "type": "event" } & Event | { "type": "state" } & ConnState;

export type ProfileId = string;

export type ProfileInfo = { state: ConnState, unread: number, id: ProfileId, name: string, 
/**
 * `#rrggbb`.
 */
color: string, position: number, server_url: string, account_id: AccountId, public_id: PublicId, 
/**
 * The service's id of this profile's session (not the token).
 */
session_id: string, created_at: number, 
/**
 * Events up to this sequence number were history when the profile was added.
 */
history_until: number, 
/**
 * The user allowed plain http to a host other than this computer for this profile
 * (set only when its URL needs it): it is marked "not encrypted" wherever it is shown.
 */
allow_insecure_http: boolean, };

export type ProfileResources = { profile: ProfileId, 
/**
 * Bytes of request bodies and outgoing frames (headers not counted).
 */
bytes_sent: number, 
/**
 * Bytes of response bodies and event-stream frames (headers not counted).
 */
bytes_received: number, 
/**
 * Events applied in the last 60 seconds.
 */
events_per_minute: number, 
/**
 * Events applied since the profile started in this process.
 */
events_total: number, 
/**
 * The profile's database, its write-ahead log included.
 */
database_bytes: number, 
/**
 * Newest last.
 */
history: Array<Transition>, };

export type PublicId = string;

export type PublishOutcome = { profile: ProfileId, official_id: string, 
/**
 * The article, when published (or published before under the same key).
 */
article: Article | null, 
/**
 * Why not: an error code and its message.
 */
error: [string, string] | null, };

export type PublishTarget = { profile: ProfileId, official_id: string, };

export type QuietHours = { days: Array<number>, start_min: number, end_min: number, };

export type RedEnvelope = { id: string, from: string, to: string, total: number, count: number, mode: EnvelopeMode, greeting: string, created_at: string, 
/**
 * Unclaimed money goes back to the sender then.
 */
expires_at: string, claims: Array<EnvelopeClaim>, 
/**
 * Returned to the sender at expiry (0 until then, and when all was claimed).
 */
refunded: number, };

export type Register = { server: string, phone: string, sms_code: string, 
/**
 * The public ID asked for. Left as typed: whether it may be had is the service's rule,
 * and its `public_id_invalid` answer is what the form explains.
 */
public_id: string, password: string, display_name: string, 
/**
 * The profile's name in the sidebar; the display name when absent.
 */
name: string | null, color: string | null, 
/**
 * As [`SignIn::allow_insecure_http`]: plain http to a service not on this computer.
 */
allow_insecure_http: boolean, };

export type Registered = { account: AccountSummary, profile: ProfileInfo, };

export type RequestStatus = "pending" | "accepted";

export type Resources = { profiles: Array<ProfileResources>, 
/**
 * The memory of this process and every process it started (the web views), when the
 * platform tells; how it was counted is `memory_measure`.
 */
memory_bytes: number | null, memory_measure: MemoryMeasure | null, };

export type Responder = { "kind": "operator", public_id: string, display_name: string, } | { "kind": "api_key", key_id: string, name: string, };

export type SearchHit = { profile: ProfileId, message: StoredMessage, };

export type SessionRevoked = { session_id: string, };

export type SignIn = { server: string, login: string, password: string, name: string | null, color: string | null, 
/**
 * For accounts with two-step verification: a TOTP or recovery code.
 */
totp_code: string | null, 
/**
 * The user's explicit choice to reach this service over plain http although it is not on
 * this computer. Without it such a URL is refused; with it the profile is marked "not
 * encrypted". Meaningless (and not stored) for https and loopback URLs.
 */
allow_insecure_http: boolean, };

export type SmsCodeSent = { 
/**
 * Seconds the code stays valid.
 */
expires_in: number, 
/**
 * Seconds before another code may be requested for this number and purpose.
 */
resend_after: number, };

export type SmsPurpose = "register" | "login" | "recover";

export type StoredMessage = { id: string, conversation_id: ConversationId, client_id: string, sender: PublicId, sender_name: string, body: string, 
/**
 * Media ids of its images (`Engine::media` shows them).
 */
media: Array<string>, sent_at: string, seq: number, };

export type TotpDisabled = { reason: TotpDisabledReason, };

export type TotpDisabledReason = "turned_off" | "sms_recovery";

export type Transaction = { id: string, 
/**
 * `topup`, `transfer`, `red_envelope`, `red_envelope_claim`, `red_envelope_refund`.
 */
kind: string, 
/**
 * Signed, in fen: + credit, − debit.
 */
amount: number, 
/**
 * The other account's public ID, when there is one.
 */
counterparty?: string | null, note: string, at: string, };

export type TransactionPage = { 
/**
 * Newest first.
 */
transactions: Array<Transaction>, 
/**
 * Pass as `before` for the next (older) page; absent on the last page.
 */
next_before?: number | null, };

export type Transition = { 
/**
 * RFC 3339, UTC.
 */
at: string, state: ConnState, };

export type UiEvent = { "type": "profile" } & ProfileEvent | { "type": "profiles_changed" } | { "type": "open_conversation" } & OpenConversation;

export type UnknownEvent = { kind: string, data: JsonValue, };

export type UserProfile = { public_id: string, display_name: string, 
/**
 * Whether the caller and this user are contacts.
 */
is_contact: boolean, };

export type Visibility = "contacts" | { "only": Array<string> } | { "except": Array<string> };

export type Wallet = { 
/**
 * In fen (0.01 CNY).
 */
balance: number, currency: string, 
/**
 * Real-name verification done (needed to top up, send and claim).
 */
verified: boolean, };

export type WalletMovement = { transaction_id: string, 
/**
 * As [`Transaction::kind`]: `topup`, `transfer`, `red_envelope`, …
 */
kind: string, 
/**
 * Signed, in fen: + credit, − debit.
 */
amount: number, 
/**
 * This account's balance right after, in fen.
 */
balance: number | null, 
/**
 * The other account's public ID (or, for a red envelope, its target); `null` when there
 * is none.
 */
counterparty: string | null, note: string, };

/**
 * The app's version and the service a new profile uses unless told otherwise.
 */
export function appInfo(): Promise<AppInfo> {
  return invoke("app_info");
}

/**
 * Opens this window's stream of events (`UiEvent`): every profile's for the main window,
 * only its own profile's for a profile window. The calling window decides, never the page.
 */
export function subscribeEvents(on_event: Channel<UiEvent>): Promise<null> {
  return invoke("subscribe_events", { on_event });
}

/**
 * Every profile (main window) or the window's own (a profile window), in sidebar order.
 */
export function listProfiles(): Promise<Array<ProfileInfo>> {
  return invoke("list_profiles");
}

/**
 * Adds a profile by signing in (public ID or phone, password, TOTP when asked).
 */
export function addProfile(form: SignIn): Promise<ProfileInfo> {
  return invoke("add_profile", { form });
}

/**
 * Texts a code to the phone (registering, signing in, recovering). `allow_insecure_http`:
 * the user allowed plain http to this service although it is not on this computer.
 */
export function requestSmsCode(server: string, phone: string, purpose: SmsPurpose, allow_insecure_http: boolean): Promise<SmsCodeSent> {
  return invoke("request_sms_code", { server, phone, purpose, allow_insecure_http });
}

/**
 * A development service's newest code for this phone (its SMS outbox).
 */
export function devSmsCode(server: string, phone: string, purpose: SmsPurpose, allow_insecure_http: boolean): Promise<string | null> {
  return invoke("dev_sms_code", { server, phone, purpose, allow_insecure_http });
}

/**
 * Registers a new account (or the number's secondary) and adds it as a profile.
 */
export function registerProfile(form: Register): Promise<Registered> {
  return invoke("register_profile", { form });
}

/**
 * Signs the session out, deletes the keyring entry and the profile's folder.
 */
export function removeProfile(profile: ProfileId): Promise<null> {
  return invoke("remove_profile", { profile });
}

export function renameProfile(profile: ProfileId, name: string): Promise<null> {
  return invoke("rename_profile", { profile, name });
}

export function recolorProfile(profile: ProfileId, color: string): Promise<null> {
  return invoke("recolor_profile", { profile, color });
}

/**
 * Puts the profiles in this order (ids).
 */
export function reorderProfiles(ids: Array<ProfileId>): Promise<null> {
  return invoke("reorder_profiles", { ids });
}

/**
 * Opens (or brings up) the profile in its own window, beside the main one.
 */
export function openProfileWindow(profile: ProfileId): Promise<null> {
  return invoke("open_profile_window", { profile });
}

export function conversations(profile: ProfileId): Promise<Array<Conversation>> {
  return invoke("conversations", { profile });
}

export function messages(profile: ProfileId, conversation: ConversationId): Promise<Array<StoredMessage>> {
  return invoke("messages", { profile, conversation });
}

/**
 * Messages written but not yet accepted by the service (shown as pending).
 */
export function outbox(profile: ProfileId): Promise<Array<OutboxEntry>> {
  return invoke("outbox", { profile });
}

/**
 * Queues a message with up to 9 images (text optional then); it goes out now if online,
 * else on reconnect, its images uploaded once.
 */
export function sendMessage(profile: ProfileId, to: ConversationId, body: string, images: Array<ImageUpload>): Promise<OutboxEntry> {
  return invoke("send_message", { profile, to, body, images });
}

/**
 * An image of the profile by media id (or the local key of one waiting to be sent): its
 * thumbnail, or the full image. From the profile's own cache, else fetched once.
 */
export function media(profile: ProfileId, key: string, full: boolean): Promise<MediaData> {
  return invoke("media", { profile, key, full });
}

/**
 * One page of Moments, newest first: one profile's feed, or (no profile) the merged feed
 * of every profile this window may act for, each post marked with the profile that sees
 * it. `before`: the id of the oldest post shown.
 */
export function momentsFeed(profile: ProfileId | null, before: string | null): Promise<Array<MomentView>> {
  return invoke("moments_feed", { profile, before });
}

/**
 * Posts a Moment with text and up to 9 images, for every contact or only / all but some.
 */
export function postMoment(profile: ProfileId, text: string, images: Array<ImageUpload>, visibility: Visibility): Promise<MomentView> {
  return invoke("post_moment", { profile, text, images, visibility });
}

export function likeMoment(profile: ProfileId, moment_id: string): Promise<MomentView> {
  return invoke("like_moment", { profile, moment_id });
}

export function commentMoment(profile: ProfileId, moment_id: string, text: string, reply_to: string | null): Promise<MomentView> {
  return invoke("comment_moment", { profile, moment_id, text, reply_to });
}

/**
 * Deletes one of the profile's own posts.
 */
export function deleteMoment(profile: ProfileId, moment_id: string): Promise<null> {
  return invoke("delete_moment", { profile, moment_id });
}

export function markRead(profile: ProfileId, conversation: ConversationId): Promise<null> {
  return invoke("mark_read", { profile, conversation });
}

/**
 * The conversation this window shows (none: a list or another page); while the window has
 * focus it raises no notifications.
 */
export function setOpenConversation(profile: ProfileId, conversation: ConversationId | null): Promise<null> {
  return invoke("set_open_conversation", { profile, conversation });
}

/**
 * Full-text search of one profile's messages, or of every profile's (main window only).
 */
export function search(profile: ProfileId | null, text: string): Promise<Array<SearchHit>> {
  return invoke("search", { profile, text });
}

export function findUser(profile: ProfileId, public_id: PublicId): Promise<UserProfile> {
  return invoke("find_user", { profile, public_id });
}

export function contacts(profile: ProfileId): Promise<Array<Contact>> {
  return invoke("contacts", { profile });
}

export function contactRequests(profile: ProfileId): Promise<ContactRequestList> {
  return invoke("contact_requests", { profile });
}

export function requestContact(profile: ProfileId, public_id: PublicId, note: string): Promise<ContactRequestState> {
  return invoke("request_contact", { profile, public_id, note });
}

export function acceptContact(profile: ProfileId, request_id: string): Promise<null> {
  return invoke("accept_contact", { profile, request_id });
}

export function groups(profile: ProfileId): Promise<Array<Group>> {
  return invoke("groups", { profile });
}

export function createGroup(profile: ProfileId, name: string, members: Array<PublicId>): Promise<Group> {
  return invoke("create_group", { profile, name, members });
}

export function wallet(profile: ProfileId): Promise<Wallet> {
  return invoke("wallet", { profile });
}

export function transactions(profile: ProfileId, before: number | null): Promise<TransactionPage> {
  return invoke("transactions", { profile, before });
}

export function verifyIdentity(profile: ProfileId, legal_name: string, id_number: string): Promise<null> {
  return invoke("verify_identity", { profile, legal_name, id_number });
}

/**
 * `confirmed`: the user confirmed the profile after `confirm_profile` asked.
 */
export function topUp(profile: ProfileId, amount: number, confirmed: boolean): Promise<MoneyMoved> {
  return invoke("top_up", { profile, amount, confirmed });
}

export function transfer(profile: ProfileId, to: PublicId, amount: number, note: string, confirmed: boolean): Promise<MoneyMoved> {
  return invoke("transfer", { profile, to, amount, note, confirmed });
}

export function sendRedEnvelope(profile: ProfileId, envelope: Envelope, confirmed: boolean): Promise<RedEnvelope> {
  return invoke("send_red_envelope", { profile, envelope, confirmed });
}

/**
 * Payments whose answer never came (they outlive a restart): each can be tried again,
 * which never pays twice, or abandoned.
 */
export function pendingPayments(profile: ProfileId): Promise<Array<PendingPayment>> {
  return invoke("pending_payments", { profile });
}

/**
 * Sends a pending payment again under its first idempotency key.
 */
export function retryPayment(profile: ProfileId, payment: string, confirmed: boolean): Promise<Paid> {
  return invoke("retry_payment", { profile, payment, confirmed });
}

/**
 * Forgets a pending payment (whatever the service did with it stands).
 */
export function abandonPayment(profile: ProfileId, payment: string): Promise<null> {
  return invoke("abandon_payment", { profile, payment });
}

export function claimRedEnvelope(profile: ProfileId, envelope_id: string): Promise<Claimed> {
  return invoke("claim_red_envelope", { profile, envelope_id });
}

export function notificationPolicy(profile: ProfileId): Promise<Policy> {
  return invoke("notification_policy", { profile });
}

export function setNotificationPolicy(profile: ProfileId, policy: Policy): Promise<null> {
  return invoke("set_notification_policy", { profile, policy });
}

/**
 * Global do-not-disturb: no notification from any profile while on.
 */
export function setDoNotDisturb(on: boolean): Promise<null> {
  return invoke("set_do_not_disturb", { on });
}

/**
 * Whether the app starts at login, in the tray.
 */
export function startAtLogin(): Promise<boolean> {
  return invoke("start_at_login");
}

/**
 * Turns starting at login (in the tray) on or off; answers what the system now has.
 */
export function setStartAtLogin(on: boolean): Promise<boolean> {
  return invoke("set_start_at_login", { on });
}

/**
 * The UI's language ("en" or "zh"), so the tray speaks it too.
 */
export function setLanguage(lang: string): Promise<null> {
  return invoke("set_language", { lang });
}

/**
 * Every official account a profile operates (main window), or the window's own
 * profile's, with unanswered customer conversations counted.
 */
export function officialAccounts(): Promise<Array<OperatedOfficial>> {
  return invoke("official_accounts");
}

/**
 * The customer conversations of every official account the window may act for, newest
 * first.
 */
export function customerInbox(filter: InboxFilter): Promise<Array<InboxEntry>> {
  return invoke("customer_inbox", { filter });
}

export function customerMessages(profile: ProfileId, official_id: string, customer: string): Promise<Array<CustomerMessage>> {
  return invoke("customer_messages", { profile, official_id, customer });
}

/**
 * Claims a customer conversation for the profile's account (the other operators see it).
 */
export function claimConversation(profile: ProfileId, official_id: string, customer: string): Promise<CustomerConversation> {
  return invoke("claim_conversation", { profile, official_id, customer });
}

/**
 * Answers a customer as the official account, from the profile that operates it.
 */
export function replyAs(profile: ProfileId, official_id: string, customer: string, body: string): Promise<Message> {
  return invoke("reply_as", { profile, official_id, customer, body });
}

/**
 * One article to several official accounts, each through its operator's profile (every
 * one of which this window must be allowed to act for); one outcome per account. The
 * same `key` again publishes nothing twice.
 */
export function publishArticle(targets: Array<PublishTarget>, title: string, body: string, key: string): Promise<Array<PublishOutcome>> {
  return invoke("publish_article", { targets, title, body, key });
}

export function followOfficial(profile: ProfileId, official_id: string): Promise<OfficialAccount> {
  return invoke("follow_official", { profile, official_id });
}

export function articles(profile: ProfileId, official_id: string): Promise<Array<Article>> {
  return invoke("articles", { profile, official_id });
}

/**
 * What each profile costs (traffic, events per minute, database size, connection
 * history) beside the app's memory; a profile window sees its own profile only.
 */
export function resources(): Promise<Resources> {
  return invoke("resources");
}

