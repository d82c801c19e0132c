//! Native notifications for every profile at once, built from the data model (applied
//! events, which the profile database never applies twice, so a restart or a reconnect never
//! repeats one), under each profile's policy: on/off, preview level, sound, quiet hours by
//! weekday (what they held back is summarised once when they end), money amounts hidden unless
//! allowed; a global do-not-disturb; nothing for the conversation open in a focused window;
//! bursts coalesced. A missing notification server never blocks: the failure is logged once.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use switchboard_protocol::events::{Event, EventBody};
use switchboard_protocol::messaging::Target;
use time::OffsetDateTime;

use crate::registry::ProfileId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Preview {
    /// Sender and text.
    #[default]
    Full,
    SenderOnly,
    /// Only that something arrived.
    Nothing,
}

/// A window of quiet: `days` (0 = Monday … 6 = Sunday) from `start` to `end`, minutes after
/// local midnight; a window whose end is before its start runs past midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct QuietHours {
    pub days: Vec<u8>,
    pub start_min: u16,
    pub end_min: u16,
}

impl QuietHours {
    fn covers(&self, at: OffsetDateTime) -> bool {
        let minute = u16::from(at.hour()) * 60 + u16::from(at.minute());
        let today = at.weekday().number_days_from_monday();
        let yesterday = at.weekday().previous().number_days_from_monday();
        if self.start_min <= self.end_min {
            self.days.contains(&today) && (self.start_min..self.end_min).contains(&minute)
        } else {
            // Overnight: the evening part belongs to today, the morning part to yesterday.
            (self.days.contains(&today) && minute >= self.start_min)
                || (self.days.contains(&yesterday) && minute < self.end_min)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct Policy {
    pub enabled: bool,
    pub preview: Preview,
    pub sound: bool,
    pub quiet_hours: Vec<QuietHours>,
    /// Show money amounts in notifications.
    pub show_amounts: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            enabled: true,
            preview: Preview::Full,
            sound: true,
            quiet_hours: Vec::new(),
            show_amounts: false,
        }
    }
}

impl Policy {
    pub fn quiet_at(&self, at: OffsetDateTime) -> bool {
        self.quiet_hours.iter().any(|q| q.covers(at))
    }

    /// Weekday evenings 19:00–09:00 and all weekend: the usual work profile.
    pub fn work_hours_only() -> Self {
        let weekend = QuietHours {
            days: vec![5, 6],
            start_min: 0,
            end_min: 24 * 60,
        };
        let nights = QuietHours {
            days: vec![0, 1, 2, 3, 4],
            start_min: 19 * 60,
            end_min: 9 * 60,
        };
        Self {
            quiet_hours: vec![nights, weekend],
            ..Self::default()
        }
    }
}

/// One notification, ready for a sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub profile: ProfileId,
    /// "Work · Alice"
    pub title: String,
    pub body: String,
    /// Where a click should lead.
    pub conversation: Option<String>,
    pub sound: bool,
}

pub trait NotificationSink: Send + Sync + 'static {
    fn show(&self, n: &Notification) -> Result<(), String>;
}

/// Keeps what it is shown, for tests.
#[derive(Debug, Default)]
pub struct RecordingSink {
    shown: Mutex<Vec<Notification>>,
}

impl RecordingSink {
    pub fn shown(&self) -> Vec<Notification> {
        self.shown.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl NotificationSink for RecordingSink {
    fn show(&self, n: &Notification) -> Result<(), String> {
        self.shown
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(n.clone());
        Ok(())
    }
}

/// Per-profile state of the notifier.
#[derive(Default)]
struct Held {
    /// Messages held back by quiet hours: count and chats.
    quiet_count: usize,
    quiet_chats: BTreeSet<String>,
    /// The current burst: notifications already shown in it, and what came after.
    burst_shown: usize,
    burst_extra: usize,
    burst_chats: BTreeSet<String>,
    burst_started: Option<OffsetDateTime>,
}

/// The policy engine: pure, driven by events and a clock, producing notifications.
pub struct Notifier {
    /// id → (name, policy)
    profiles: HashMap<ProfileId, (String, Policy)>,
    /// id → the profile's own public ID (its own messages raise nothing)
    public_ids: HashMap<ProfileId, String>,
    /// id → the newest event when the profile was added: what came before is history, never
    /// a notification (adding an account must not raise its whole past).
    history_until: HashMap<ProfileId, i64>,
    held: HashMap<ProfileId, Held>,
    pub do_not_disturb: bool,
    /// The conversation open in a focused window: (profile, conversation).
    pub focused: Option<(ProfileId, String)>,
}

/// Notifications shown one by one before a burst is summarised.
pub const BURST_SHOWN: usize = 3;
/// A burst lasts this long after its first notification.
pub const BURST_SECS: i64 = 10;

fn money(amount: i64) -> String {
    format!("¥{}.{:02}", amount / 100, (amount % 100).abs())
}

impl Notifier {
    pub fn new() -> Self {
        Self {
            profiles: HashMap::new(),
            public_ids: HashMap::new(),
            history_until: HashMap::new(),
            held: HashMap::new(),
            do_not_disturb: false,
            focused: None,
        }
    }

    pub fn set_profile(&mut self, id: &ProfileId, name: &str, public_id: &str, policy: Policy) {
        self.profiles.insert(id.clone(), (name.to_string(), policy));
        self.public_ids.insert(id.clone(), public_id.to_string());
    }

    /// Events up to `seq` are the profile's history.
    pub fn set_history_until(&mut self, id: &ProfileId, seq: i64) {
        self.history_until.insert(id.clone(), seq);
    }

    pub fn public_id(&self, id: &ProfileId) -> String {
        self.public_ids.get(id).cloned().unwrap_or_default()
    }

    pub fn remove_profile(&mut self, id: &ProfileId) {
        self.profiles.remove(id);
        self.held.remove(id);
    }

    /// What an applied event should raise now (usually zero or one notification).
    pub fn on_event(
        &mut self,
        profile: &ProfileId,
        me: &str,
        event: &Event,
        now: OffsetDateTime,
    ) -> Vec<Notification> {
        let Some((name, policy)) = self.profiles.get(profile).cloned() else {
            return Vec::new();
        };
        if !policy.enabled || self.do_not_disturb {
            return Vec::new();
        }
        if self
            .history_until
            .get(profile)
            .is_some_and(|h| event.seq <= *h)
        {
            return Vec::new();
        }
        let (sender, text, conversation) = match &event.body {
            EventBody::MessageNew(m) => {
                if m.from.eq_ignore_ascii_case(me) {
                    return Vec::new();
                }
                // An official account's answer is `to` this account, `from` the `o_…` id:
                // its chat is the official account's, like a contact's.
                let chat = match m.target() {
                    Target::Group(id) | Target::Official(id) => id,
                    Target::User(_) => m.from.clone(),
                };
                (m.from_display_name.clone(), m.body.clone(), Some(chat))
            }
            EventBody::ContactRequest(r) => {
                if r.from.eq_ignore_ascii_case(me) {
                    return Vec::new();
                }
                (
                    r.from_display_name.clone(),
                    "wants to be your contact".to_string(),
                    None,
                )
            }
            EventBody::WalletCredit(w) => {
                let who = w.counterparty.clone().unwrap_or_else(|| "Wallet".into());
                let text = if policy.show_amounts {
                    format!("received {}", money(w.amount))
                } else {
                    "money received".into()
                };
                (who, text, None)
            }
            EventBody::RedEnvelopeNew(e) => {
                if e.from.eq_ignore_ascii_case(me) {
                    return Vec::new();
                }
                // The chat it arrived in, as for a message: the group, or the sender's chat
                // (a direct envelope's `to` is this account itself).
                let chat = match Target::parse(&e.to) {
                    Target::Group(id) | Target::Official(id) => id,
                    Target::User(_) => e.from.clone(),
                };
                (
                    e.from.clone(),
                    format!("sent a red envelope {}", e.greeting)
                        .trim()
                        .to_string(),
                    Some(chat),
                )
            }
            // A customer writing to an official account this profile serves: "Work · Acme
            // Coffee · Alice". Answers (this operator's or another's) raise nothing.
            EventBody::OfficialMessage(m) => {
                if m.responder.is_some() {
                    return Vec::new();
                }
                (
                    format!("{} · {}", m.official_name, m.message.from_display_name),
                    m.message.body.clone(),
                    Some(format!("{}/{}", m.official_id, m.customer)),
                )
            }
            // A like or a comment on one of this account's own posts, by someone else.
            EventBody::MomentLike(l) => {
                if !l.post_author.eq_ignore_ascii_case(me) || l.like.author.eq_ignore_ascii_case(me)
                {
                    return Vec::new();
                }
                (
                    l.like.author_display_name.clone(),
                    "liked your moment".to_string(),
                    None,
                )
            }
            EventBody::MomentComment(c) => {
                if !c.post_author.eq_ignore_ascii_case(me)
                    || c.comment.author.eq_ignore_ascii_case(me)
                {
                    return Vec::new();
                }
                (
                    c.comment.author_display_name.clone(),
                    format!("commented on your moment: {}", c.comment.text),
                    None,
                )
            }
            _ => return Vec::new(),
        };
        if let (Some(chat), Some((fp, fc))) = (&conversation, &self.focused)
            && fp == profile
            && fc == chat
        {
            return Vec::new();
        }
        let held = self.held.entry(profile.clone()).or_default();
        if policy.quiet_at(now) {
            held.quiet_count += 1;
            held.quiet_chats
                .insert(conversation.clone().unwrap_or_default());
            return Vec::new();
        }
        if held
            .burst_started
            .is_none_or(|t| now - t > time::Duration::seconds(BURST_SECS))
        {
            *held = Held {
                quiet_count: held.quiet_count,
                quiet_chats: std::mem::take(&mut held.quiet_chats),
                ..Held::default()
            };
            held.burst_started = Some(now);
        }
        if held.burst_shown >= BURST_SHOWN {
            held.burst_extra += 1;
            held.burst_chats.insert(conversation.unwrap_or_default());
            return Vec::new();
        }
        held.burst_shown += 1;
        let (title, body) = match policy.preview {
            Preview::Full => (format!("{name} · {sender}"), text),
            Preview::SenderOnly => (format!("{name} · {sender}"), "new message".to_string()),
            Preview::Nothing => (name.clone(), "something new".to_string()),
        };
        vec![Notification {
            profile: profile.clone(),
            title,
            body,
            conversation,
            sound: policy.sound,
        }]
    }

    /// A profile whose session ended says so, once.
    pub fn on_signed_out(&mut self, profile: &ProfileId) -> Vec<Notification> {
        let Some((name, policy)) = self.profiles.get(profile) else {
            return Vec::new();
        };
        if !policy.enabled || self.do_not_disturb {
            return Vec::new();
        }
        vec![Notification {
            profile: profile.clone(),
            title: format!("{name} · signed out"),
            body: "This account's session ended. Sign in again to keep receiving messages.".into(),
            conversation: None,
            sound: false,
        }]
    }

    /// Called now and then: ends bursts (one summary for what they held) and quiet hours
    /// (one digest of what they held back).
    pub fn tick(&mut self, now: OffsetDateTime) -> Vec<Notification> {
        let mut out = Vec::new();
        for (profile, held) in &mut self.held {
            let Some((name, policy)) = self.profiles.get(profile) else {
                continue;
            };
            let summary = |count: usize, chats: &BTreeSet<String>, what: &str| {
                let messages = if count == 1 {
                    "1 new message".to_string()
                } else {
                    format!("{count} new messages")
                };
                let body = match (policy.preview, chats.len()) {
                    (Preview::Nothing, _) => "something new".to_string(),
                    (_, 0 | 1) => format!("{messages}{what}"),
                    (_, n) => format!("{messages} in {n} chats{what}"),
                };
                Notification {
                    profile: profile.clone(),
                    title: name.clone(),
                    body,
                    conversation: None,
                    sound: false,
                }
            };
            if held.quiet_count > 0 && !policy.quiet_at(now) && !self.do_not_disturb {
                out.push(summary(
                    held.quiet_count,
                    &held.quiet_chats,
                    " during quiet hours",
                ));
                held.quiet_count = 0;
                held.quiet_chats.clear();
            }
            let burst_over = held
                .burst_started
                .is_some_and(|t| now - t > time::Duration::seconds(BURST_SECS));
            if burst_over {
                if held.burst_extra > 0 && policy.enabled && !self.do_not_disturb {
                    let n = summary(held.burst_extra, &held.burst_chats, "");
                    out.push(Notification {
                        title: format!("{name} · {}", n.body),
                        body: String::new(),
                        ..n
                    });
                }
                held.burst_extra = 0;
                held.burst_shown = 0;
                held.burst_chats.clear();
                held.burst_started = None;
            }
        }
        out
    }
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new()
    }
}

/// The local time, falling back to UTC where the offset cannot be read safely.
pub fn local_now() -> OffsetDateTime {
    OffsetDateTime::now_local().unwrap_or_else(|_| OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_protocol::messaging::Message;
    use switchboard_protocol::wallet::{EnvelopeMode, RedEnvelope, WalletMovement};
    use time::macros::datetime;

    fn id(s: &str) -> ProfileId {
        ProfileId::new(s)
    }

    fn msg(seq: i64, from: &str, to: &str, body: &str) -> Event {
        Event {
            seq,
            at: OffsetDateTime::UNIX_EPOCH,
            body: EventBody::MessageNew(Message {
                id: format!("m{seq}"),
                client_id: "c".into(),
                from: from.into(),
                from_display_name: from.into(),
                to: to.into(),
                body: body.into(),
                media: vec![],
                sent_at: datetime!(2026-11-23 10:00 UTC),
            }),
        }
    }

    // Monday 23 November 2026.
    const MON_10: OffsetDateTime = datetime!(2026-11-23 10:00 UTC);
    const MON_20: OffsetDateTime = datetime!(2026-11-23 20:00 UTC);
    const TUE_0830: OffsetDateTime = datetime!(2026-11-24 08:30 UTC);
    const TUE_0901: OffsetDateTime = datetime!(2026-11-24 09:01 UTC);
    const SAT_12: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

    #[test]
    fn titles_name_the_profile_and_previews_follow_the_policy() {
        let mut n = Notifier::new();
        n.set_profile(&id("p1"), "Work", "alice", Policy::default());
        let out = n.on_event(
            &id("p1"),
            "alice",
            &msg(1, "bob", "alice", "report?"),
            MON_10,
        );
        assert_eq!(out[0].title, "Work · bob");
        assert_eq!(out[0].body, "report?");
        assert_eq!(out[0].conversation.as_deref(), Some("bob"));
        n.set_profile(
            &id("p1"),
            "Work",
            "alice",
            Policy {
                preview: Preview::SenderOnly,
                ..Policy::default()
            },
        );
        let out = n.on_event(
            &id("p1"),
            "alice",
            &msg(2, "bob", "alice", "secret plan"),
            MON_10,
        );
        assert!(!out[0].body.contains("secret"), "sender only: {:?}", out[0]);
        n.set_profile(
            &id("p1"),
            "Work",
            "alice",
            Policy {
                preview: Preview::Nothing,
                ..Policy::default()
            },
        );
        let out = n.on_event(
            &id("p1"),
            "alice",
            &msg(3, "bob", "alice", "secret plan"),
            MON_10,
        );
        assert!(
            !out[0].title.contains("bob") && !out[0].body.contains("secret"),
            "{:?}",
            out[0]
        );
        assert!(
            n.on_event(&id("p1"), "alice", &msg(4, "alice", "bob", "mine"), MON_10)
                .is_empty(),
            "own messages are quiet"
        );
    }

    #[test]
    fn quiet_hours_hold_then_digest_once_when_they_end() {
        let mut n = Notifier::new();
        n.set_profile(&id("w"), "Work", "alice", Policy::work_hours_only());
        assert!(Policy::work_hours_only().quiet_at(MON_20));
        assert!(
            Policy::work_hours_only().quiet_at(TUE_0830),
            "overnight runs into the morning"
        );
        assert!(
            Policy::work_hours_only().quiet_at(SAT_12),
            "weekends are quiet"
        );
        assert!(!Policy::work_hours_only().quiet_at(MON_10));
        assert!(
            n.on_event(&id("w"), "alice", &msg(1, "bob", "alice", "late"), MON_20)
                .is_empty()
        );
        assert!(
            n.on_event(
                &id("w"),
                "alice",
                &msg(2, "carol", "alice", "later"),
                TUE_0830
            )
            .is_empty()
        );
        assert!(n.tick(TUE_0830).is_empty(), "still quiet");
        let digest = n.tick(TUE_0901);
        assert_eq!(digest.len(), 1);
        assert_eq!(
            digest[0].body,
            "2 new messages in 2 chats during quiet hours"
        );
        assert!(
            n.tick(TUE_0901 + time::Duration::minutes(5)).is_empty(),
            "summarised once"
        );
    }

    #[test]
    fn a_burst_is_coalesced_into_one_summary() {
        let mut n = Notifier::new();
        n.set_profile(&id("w"), "Work", "alice", Policy::default());
        let mut shown = 0;
        for i in 0..100 {
            let chat = ["bob", "carol", "dave"][i % 3];
            shown += n
                .on_event(
                    &id("w"),
                    "alice",
                    &msg(i as i64, chat, "alice", "ping"),
                    MON_10,
                )
                .len();
        }
        assert_eq!(
            shown, BURST_SHOWN,
            "only the first few are shown one by one"
        );
        let summary = n.tick(MON_10 + time::Duration::seconds(BURST_SECS + 1));
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].title, "Work · 97 new messages in 3 chats");
    }

    #[test]
    fn do_not_disturb_focus_and_money_privacy() {
        let mut n = Notifier::new();
        n.set_profile(&id("w"), "Work", "alice", Policy::default());
        n.focused = Some((id("w"), "bob".into()));
        assert!(
            n.on_event(
                &id("w"),
                "alice",
                &msg(1, "bob", "alice", "seen already"),
                MON_10
            )
            .is_empty()
        );
        assert_eq!(
            n.on_event(
                &id("w"),
                "alice",
                &msg(2, "carol", "alice", "other chat"),
                MON_10
            )
            .len(),
            1
        );
        n.focused = None;
        let credit = Event {
            seq: 3,
            at: OffsetDateTime::UNIX_EPOCH,
            body: EventBody::WalletCredit(WalletMovement {
                transaction_id: "tx_1".into(),
                kind: "transfer".into(),
                amount: 12345,
                balance: Some(12345),
                counterparty: Some("bob".into()),
                note: String::new(),
            }),
        };
        let out = n.on_event(&id("w"), "alice", &credit, MON_10);
        assert!(
            !out[0].body.contains("123"),
            "amounts hidden by default: {:?}",
            out[0]
        );
        n.set_profile(
            &id("w"),
            "Work",
            "alice",
            Policy {
                show_amounts: true,
                ..Policy::default()
            },
        );
        let out = n.on_event(
            &id("w"),
            "alice",
            &Event {
                seq: 4,
                ..credit.clone()
            },
            MON_10,
        );
        assert_eq!(out[0].body, "received ¥123.45");
        n.do_not_disturb = true;
        assert!(
            n.on_event(&id("w"), "alice", &msg(5, "dave", "alice", "x"), MON_10)
                .is_empty()
        );
    }

    #[test]
    fn a_red_envelope_opens_the_chat_it_came_in() {
        let mut n = Notifier::new();
        n.set_profile(&id("w"), "Work", "alice", Policy::default());
        let envelope = |seq: i64, to: &str| Event {
            seq,
            at: OffsetDateTime::UNIX_EPOCH,
            body: EventBody::RedEnvelopeNew(RedEnvelope {
                id: format!("re_{seq}"),
                from: "bob".into(),
                to: to.into(),
                total: 100,
                count: 1,
                mode: EnvelopeMode::Equal,
                greeting: "enjoy".into(),
                created_at: MON_10,
                expires_at: MON_10,
                claims: Vec::new(),
                refunded: 0,
            }),
        };
        let direct = n.on_event(&id("w"), "alice", &envelope(1, "alice"), MON_10);
        assert_eq!(direct[0].body, "sent a red envelope enjoy");
        assert_eq!(
            direct[0].conversation.as_deref(),
            Some("bob"),
            "a direct envelope is in the chat with its sender, not one with ourselves"
        );
        let group = n.on_event(&id("w"), "alice", &envelope(2, "g_team"), MON_10);
        assert_eq!(group[0].conversation.as_deref(), Some("g_team"));
    }

    #[test]
    fn markup_in_a_message_is_shown_as_text() {
        let mut n = Notifier::new();
        n.set_profile(&id("p1"), "R&D <team>", "alice", Policy::default());
        let out = n.on_event(
            &id("p1"),
            "alice",
            &msg(1, "bob", "alice", "<b>x</b> costs &amp; more"),
            MON_10,
        );
        assert_eq!(
            out[0].body, "<b>x</b> costs &amp; more",
            "the notification itself keeps the text; only the desktop sink escapes it \
             (platform::notifications)"
        );
        assert_eq!(out[0].title, "R&D <team> · bob");
    }
}
