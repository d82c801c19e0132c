//! The per-account event log (SPEC §1.3): every kind of event with its payload, the sync
//! endpoints that page through the log, and the close codes of the live stream.
//!
//! On the wire an event is `{"seq", "kind", "at", "data"}`, where `kind` says what `data`
//! holds. [`EventBody`] is that pair as one enum, so a producer cannot pair a kind with the
//! wrong payload and a consumer matches instead of indexing JSON by string.
//!
//! New kinds are added without a new API version: a client that meets a kind it does not
//! know keeps it as [`EventBody::Unknown`] (kind and data intact) instead of failing.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Timestamp;
use crate::auth::TotpDisabled;
use crate::messaging::{ContactRequest, GroupChange, Message, SessionRevoked};
use crate::moments::{Moment, MomentCommented, MomentLiked};
use crate::official::{Article, ConversationClaimed, OfficialMessage, OperatorChange};
use crate::wallet::{EnvelopeClaimed, EnvelopeRefunded, RedEnvelope, WalletMovement};

/// What an event is about, without its payload: for storing the kind next to the data and for
/// quick checks. [`EventBody::kind`] gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    MessageNew,
    ContactRequest,
    ContactAccepted,
    GroupJoined,
    GroupLeft,
    WalletCredit,
    WalletDebit,
    RedEnvelopeNew,
    RedEnvelopeClaimed,
    RedEnvelopeRefunded,
    SessionRevoked,
    TotpDisabled,
    OfficialMessage,
    OfficialClaimed,
    OfficialOperatorAdded,
    OfficialOperatorRemoved,
    ArticleNew,
    MomentNew,
    MomentLike,
    MomentComment,
    /// A kind this version does not know (from a newer service).
    Unknown,
}

impl EventKind {
    /// Every kind this version knows.
    pub const KNOWN: [EventKind; 20] = [
        EventKind::MessageNew,
        EventKind::ContactRequest,
        EventKind::ContactAccepted,
        EventKind::GroupJoined,
        EventKind::GroupLeft,
        EventKind::WalletCredit,
        EventKind::WalletDebit,
        EventKind::RedEnvelopeNew,
        EventKind::RedEnvelopeClaimed,
        EventKind::RedEnvelopeRefunded,
        EventKind::SessionRevoked,
        EventKind::TotpDisabled,
        EventKind::OfficialMessage,
        EventKind::OfficialClaimed,
        EventKind::OfficialOperatorAdded,
        EventKind::OfficialOperatorRemoved,
        EventKind::ArticleNew,
        EventKind::MomentNew,
        EventKind::MomentLike,
        EventKind::MomentComment,
    ];

    /// The wire name (`message.new`, …); `unknown` for [`EventKind::Unknown`], whose real
    /// name only its [`UnknownEvent`] has.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageNew => "message.new",
            EventKind::ContactRequest => "contact.request",
            EventKind::ContactAccepted => "contact.accepted",
            EventKind::GroupJoined => "group.joined",
            EventKind::GroupLeft => "group.left",
            EventKind::WalletCredit => "wallet.credit",
            EventKind::WalletDebit => "wallet.debit",
            EventKind::RedEnvelopeNew => "red_envelope.new",
            EventKind::RedEnvelopeClaimed => "red_envelope.claimed",
            EventKind::RedEnvelopeRefunded => "red_envelope.refunded",
            EventKind::SessionRevoked => "session.revoked",
            EventKind::TotpDisabled => "account.totp_disabled",
            EventKind::OfficialMessage => "official.message",
            EventKind::OfficialClaimed => "official.claimed",
            EventKind::OfficialOperatorAdded => "official.operator_added",
            EventKind::OfficialOperatorRemoved => "official.operator_removed",
            EventKind::ArticleNew => "article.new",
            EventKind::MomentNew => "moment.new",
            EventKind::MomentLike => "moment.like",
            EventKind::MomentComment => "moment.comment",
            EventKind::Unknown => "unknown",
        }
    }

    /// The kind with this wire name; [`EventKind::Unknown`] for any other name.
    pub fn from_name(name: &str) -> EventKind {
        Self::KNOWN
            .into_iter()
            .find(|k| k.as_str() == name)
            .unwrap_or(EventKind::Unknown)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event's `kind` and `data`, as one value.
///
/// Serialised as `{"kind": "message.new", "data": {…}}` (and flattened into [`Event`]).
/// Deserialising is by hand (see [`EventBody::read`]) so that a kind this version does not
/// know becomes [`EventBody::Unknown`] instead of an error, whatever its data.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", content = "data")]
pub enum EventBody {
    /// In the logs of the sender and of every recipient.
    #[serde(rename = "message.new")]
    MessageNew(Message),
    /// In the logs of both sides.
    #[serde(rename = "contact.request")]
    ContactRequest(ContactRequest),
    /// In the logs of both sides.
    #[serde(rename = "contact.accepted")]
    ContactAccepted(ContactRequest),
    /// In the logs of every member, old and new.
    #[serde(rename = "group.joined")]
    GroupJoined(GroupChange),
    /// In the logs of every member, the one who left included.
    #[serde(rename = "group.left")]
    GroupLeft(GroupChange),
    #[serde(rename = "wallet.credit")]
    WalletCredit(WalletMovement),
    #[serde(rename = "wallet.debit")]
    WalletDebit(WalletMovement),
    /// In the logs of the sender and of everyone who may claim it.
    #[serde(rename = "red_envelope.new")]
    RedEnvelopeNew(RedEnvelope),
    /// In the logs of the claimer and of the sender.
    #[serde(rename = "red_envelope.claimed")]
    RedEnvelopeClaimed(EnvelopeClaimed),
    /// In the sender's log, when the envelope expires.
    #[serde(rename = "red_envelope.refunded")]
    RedEnvelopeRefunded(EnvelopeRefunded),
    /// In the account's log; the revoked session's stream closes right after it.
    #[serde(rename = "session.revoked")]
    SessionRevoked(SessionRevoked),
    /// In the account's log, so every device learns its second factor is off.
    #[serde(rename = "account.totp_disabled")]
    TotpDisabled(TotpDisabled),
    /// In the log of every operator who serves the official account's customers.
    #[serde(rename = "official.message")]
    OfficialMessage(Box<OfficialMessage>),
    /// In the log of every operator who serves the official account's customers.
    #[serde(rename = "official.claimed")]
    OfficialClaimed(ConversationClaimed),
    /// In the log of every operator, the new one included.
    #[serde(rename = "official.operator_added")]
    OfficialOperatorAdded(OperatorChange),
    /// In the log of every operator, the removed one included (the last it gets).
    #[serde(rename = "official.operator_removed")]
    OfficialOperatorRemoved(OperatorChange),
    /// In the log of every follower.
    #[serde(rename = "article.new")]
    ArticleNew(Article),
    /// In the logs of the author and of every contact in the post's audience.
    #[serde(rename = "moment.new")]
    MomentNew(Box<Moment>),
    /// To the post's author and those in its thread who may see the like.
    #[serde(rename = "moment.like")]
    MomentLike(MomentLiked),
    /// To the post's author and those in its thread who may see the comment.
    #[serde(rename = "moment.comment")]
    MomentComment(Box<MomentCommented>),
    /// A kind this version does not know. Untagged: it is written back exactly as it came.
    /// (`skip_deserializing` only keeps it out of the OpenAPI document, which describes what
    /// the service sends; deserialising is by hand and does produce it.)
    #[serde(untagged, skip_deserializing)]
    Unknown(UnknownEvent),
}

/// An event of a kind this version does not know, kept whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UnknownEvent {
    pub kind: String,
    pub data: serde_json::Value,
}

/// Only `data`, as the matching payload type serialises it.
struct Data<'a>(&'a EventBody);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            EventBody::MessageNew(d) => d.serialize(s),
            EventBody::ContactRequest(d) | EventBody::ContactAccepted(d) => d.serialize(s),
            EventBody::GroupJoined(d) | EventBody::GroupLeft(d) => d.serialize(s),
            EventBody::WalletCredit(d) | EventBody::WalletDebit(d) => d.serialize(s),
            EventBody::RedEnvelopeNew(d) => d.serialize(s),
            EventBody::RedEnvelopeClaimed(d) => d.serialize(s),
            EventBody::RedEnvelopeRefunded(d) => d.serialize(s),
            EventBody::SessionRevoked(d) => d.serialize(s),
            EventBody::TotpDisabled(d) => d.serialize(s),
            EventBody::OfficialMessage(d) => d.serialize(s),
            EventBody::OfficialClaimed(d) => d.serialize(s),
            EventBody::OfficialOperatorAdded(d) | EventBody::OfficialOperatorRemoved(d) => {
                d.serialize(s)
            }
            EventBody::ArticleNew(d) => d.serialize(s),
            EventBody::MomentNew(d) => d.serialize(s),
            EventBody::MomentLike(d) => d.serialize(s),
            EventBody::MomentComment(d) => d.serialize(s),
            EventBody::Unknown(u) => u.data.serialize(s),
        }
    }
}

impl EventBody {
    pub fn kind(&self) -> EventKind {
        match self {
            EventBody::MessageNew(_) => EventKind::MessageNew,
            EventBody::ContactRequest(_) => EventKind::ContactRequest,
            EventBody::ContactAccepted(_) => EventKind::ContactAccepted,
            EventBody::GroupJoined(_) => EventKind::GroupJoined,
            EventBody::GroupLeft(_) => EventKind::GroupLeft,
            EventBody::WalletCredit(_) => EventKind::WalletCredit,
            EventBody::WalletDebit(_) => EventKind::WalletDebit,
            EventBody::RedEnvelopeNew(_) => EventKind::RedEnvelopeNew,
            EventBody::RedEnvelopeClaimed(_) => EventKind::RedEnvelopeClaimed,
            EventBody::RedEnvelopeRefunded(_) => EventKind::RedEnvelopeRefunded,
            EventBody::SessionRevoked(_) => EventKind::SessionRevoked,
            EventBody::TotpDisabled(_) => EventKind::TotpDisabled,
            EventBody::OfficialMessage(_) => EventKind::OfficialMessage,
            EventBody::OfficialClaimed(_) => EventKind::OfficialClaimed,
            EventBody::OfficialOperatorAdded(_) => EventKind::OfficialOperatorAdded,
            EventBody::OfficialOperatorRemoved(_) => EventKind::OfficialOperatorRemoved,
            EventBody::ArticleNew(_) => EventKind::ArticleNew,
            EventBody::MomentNew(_) => EventKind::MomentNew,
            EventBody::MomentLike(_) => EventKind::MomentLike,
            EventBody::MomentComment(_) => EventKind::MomentComment,
            EventBody::Unknown(_) => EventKind::Unknown,
        }
    }

    /// The wire name of the kind, an unknown kind's own name included.
    pub fn name(&self) -> &str {
        match self {
            EventBody::Unknown(u) => &u.kind,
            known => known.kind().as_str(),
        }
    }

    /// `data` alone as JSON text: what the service stores and sends verbatim.
    pub fn data_json(&self) -> serde_json::Result<String> {
        serde_json::to_string(&Data(self))
    }

    /// Reads `data` of the named kind straight into its payload type (one pass, no
    /// intermediate JSON tree). A kind this version does not know is kept as `Unknown`.
    pub fn read<'de, D: Deserializer<'de>>(kind: &str, data: D) -> Result<Self, D::Error> {
        Ok(match EventKind::from_name(kind) {
            EventKind::MessageNew => EventBody::MessageNew(Deserialize::deserialize(data)?),
            EventKind::ContactRequest => EventBody::ContactRequest(Deserialize::deserialize(data)?),
            EventKind::ContactAccepted => {
                EventBody::ContactAccepted(Deserialize::deserialize(data)?)
            }
            EventKind::GroupJoined => EventBody::GroupJoined(Deserialize::deserialize(data)?),
            EventKind::GroupLeft => EventBody::GroupLeft(Deserialize::deserialize(data)?),
            EventKind::WalletCredit => EventBody::WalletCredit(Deserialize::deserialize(data)?),
            EventKind::WalletDebit => EventBody::WalletDebit(Deserialize::deserialize(data)?),
            EventKind::RedEnvelopeNew => EventBody::RedEnvelopeNew(Deserialize::deserialize(data)?),
            EventKind::RedEnvelopeClaimed => {
                EventBody::RedEnvelopeClaimed(Deserialize::deserialize(data)?)
            }
            EventKind::RedEnvelopeRefunded => {
                EventBody::RedEnvelopeRefunded(Deserialize::deserialize(data)?)
            }
            EventKind::SessionRevoked => EventBody::SessionRevoked(Deserialize::deserialize(data)?),
            EventKind::TotpDisabled => EventBody::TotpDisabled(Deserialize::deserialize(data)?),
            EventKind::OfficialMessage => {
                EventBody::OfficialMessage(Deserialize::deserialize(data)?)
            }
            EventKind::OfficialClaimed => {
                EventBody::OfficialClaimed(Deserialize::deserialize(data)?)
            }
            EventKind::OfficialOperatorAdded => {
                EventBody::OfficialOperatorAdded(Deserialize::deserialize(data)?)
            }
            EventKind::OfficialOperatorRemoved => {
                EventBody::OfficialOperatorRemoved(Deserialize::deserialize(data)?)
            }
            EventKind::ArticleNew => EventBody::ArticleNew(Deserialize::deserialize(data)?),
            EventKind::MomentNew => EventBody::MomentNew(Box::new(Deserialize::deserialize(data)?)),
            EventKind::MomentLike => EventBody::MomentLike(Deserialize::deserialize(data)?),
            EventKind::MomentComment => {
                EventBody::MomentComment(Box::new(Deserialize::deserialize(data)?))
            }
            EventKind::Unknown => EventBody::Unknown(UnknownEvent {
                kind: kind.to_string(),
                data: Deserialize::deserialize(data)?,
            }),
        })
    }

    /// [`EventBody::read`] from stored JSON text (the service keeps `kind` and `data` apart).
    pub fn from_json(kind: &str, data: &str) -> serde_json::Result<Self> {
        let mut de = serde_json::Deserializer::from_str(data);
        let body = Self::read(kind, &mut de)?;
        de.end()?;
        Ok(body)
    }
}

/// One entry of an account's event log. `seq` counts from 1 per account with no gaps.
///
/// The `serde` attributes below describe the wire shape to the schema generators; the
/// (de)serialisation itself is written out by hand: it keeps the fields in their wire order
/// (`seq`, `kind`, `at`, `data`) and, since `kind` comes before `data`, reads the payload
/// straight into its type, which matters when a client catches up on thousands of events.
#[derive(Debug, Clone, PartialEq, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Event {
    pub seq: i64,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `kind` and `data`.
    #[serde(flatten)]
    pub body: EventBody,
}

impl Event {
    pub fn kind(&self) -> EventKind {
        self.body.kind()
    }
}

/// RFC 3339, as every timestamp on the wire.
#[derive(Serialize, Deserialize)]
struct Rfc3339(#[serde(with = "time::serde::rfc3339")] Timestamp);

/// A reference, to serialise without a copy.
struct Rfc3339Ref<'a>(&'a Timestamp);

impl Serialize for Rfc3339Ref<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::serialize(self.0, s)
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Event", 4)?;
        st.serialize_field("seq", &self.seq)?;
        st.serialize_field("kind", self.body.name())?;
        st.serialize_field("at", &Rfc3339Ref(&self.at))?;
        st.serialize_field("data", &Data(&self.body))?;
        st.end()
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Seq,
    Kind,
    At,
    Data,
    /// Fields a newer service may add are skipped.
    #[serde(other)]
    Other,
}

/// `seq`, `at` and the body, from one map of any field order.
struct Parts {
    seq: Option<i64>,
    at: Option<Timestamp>,
    body: EventBody,
}

struct PartsVisitor;

/// `data` read as the payload of a kind already seen.
struct Payload<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for Payload<'_> {
    type Value = EventBody;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<EventBody, D::Error> {
        EventBody::read(self.0, d)
    }
}

impl<'de> Visitor<'de> for PartsVisitor {
    type Value = Parts;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an event: {"seq", "kind", "at", "data"}"#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parts, A::Error> {
        let mut seq = None;
        let mut at = None;
        let mut kind: Option<String> = None;
        let mut body = None;
        // `data` before `kind` (not what the service sends, but valid JSON) is held as a
        // tree until the kind is known.
        let mut early: Option<serde_json::Value> = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Seq if seq.is_some() => return Err(de::Error::duplicate_field("seq")),
                Field::Seq => seq = Some(map.next_value()?),
                Field::At if at.is_some() => return Err(de::Error::duplicate_field("at")),
                Field::At => at = Some(map.next_value::<Rfc3339>()?.0),
                Field::Kind if kind.is_some() => return Err(de::Error::duplicate_field("kind")),
                Field::Kind => kind = Some(map.next_value()?),
                Field::Data if body.is_some() || early.is_some() => {
                    return Err(de::Error::duplicate_field("data"));
                }
                Field::Data => match &kind {
                    Some(k) => body = Some(map.next_value_seed(Payload(k))?),
                    None => early = Some(map.next_value()?),
                },
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        let body = match (body, early) {
            (Some(body), _) => body,
            (None, Some(data)) => EventBody::read(&kind, data).map_err(de::Error::custom)?,
            // A kind this version does not know may well carry nothing.
            (None, None) if EventKind::from_name(&kind) == EventKind::Unknown => {
                EventBody::Unknown(UnknownEvent {
                    kind,
                    data: serde_json::Value::Null,
                })
            }
            (None, None) => return Err(de::Error::missing_field("data")),
        };
        Ok(Parts { seq, at, body })
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parts = d.deserialize_struct("Event", &["seq", "kind", "at", "data"], PartsVisitor)?;
        Ok(Event {
            seq: parts.seq.ok_or_else(|| de::Error::missing_field("seq"))?,
            at: parts.at.ok_or_else(|| de::Error::missing_field("at"))?,
            body: parts.body,
        })
    }
}

impl<'de> Deserialize<'de> for EventBody {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(
            d.deserialize_struct("EventBody", &["kind", "data"], PartsVisitor)?
                .body,
        )
    }
}

/// `GET /v1/sync` and `GET /v1/events`
#[derive(Debug, Clone, Serialize, Deserialize, IntoParams)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SyncQuery {
    /// The last sequence number the client has (0 for everything).
    #[serde(default)]
    pub since: i64,
    /// At most this many events (1–1000, default 100). Not used by `/v1/events`.
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `GET /v1/sync`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SyncPage {
    pub events: Vec<Event>,
    /// The cursor to pass as `since` next time.
    pub next: i64,
    /// Whether more events follow `next` already.
    pub more: bool,
    /// The account's newest sequence number right now.
    pub head: i64,
}

/// Close codes of the `GET /v1/events` WebSocket, so a client can tell why it ended.
pub mod close_code {
    /// The client read too slowly and its queue filled: resume from the cursor.
    pub const TOO_SLOW: u16 = 4000;
    /// This session was revoked (a `session.revoked` event for it came first).
    pub const SESSION_REVOKED: u16 = 4001;
    /// This session expired.
    pub const SESSION_EXPIRED: u16 = 4002;
    /// RFC 6455 "going away": the service is shutting down; reconnect shortly.
    pub const SHUTTING_DOWN: u16 = 1001;

    /// Whether the session is over: the client must sign in again rather than reconnect.
    pub fn ends_session(code: u16) -> bool {
        matches!(code, SESSION_REVOKED | SESSION_EXPIRED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::RequestStatus;
    use crate::wallet::EnvelopeMode;
    use serde_json::{Value, json};

    fn t(s: &str) -> Timestamp {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    /// One event of every kind as the service sent it before the payloads were typed (the
    /// money ones were `json!` maps, hence their sorted keys), with the value it must read as.
    fn samples() -> Vec<(&'static str, EventBody)> {
        let request = ContactRequest {
            id: "cr_1".into(),
            from: "alice_01".into(),
            from_display_name: "Alice".into(),
            to: "bob_01".into(),
            to_display_name: "Bob".into(),
            note: "hi".into(),
            status: RequestStatus::Pending,
            created_at: t("2026-11-21T10:00:00Z"),
        };
        let change = GroupChange {
            group_id: "g_1".into(),
            group_name: "Team".into(),
            public_ids: vec!["alice_01".into(), "bob_01".into()],
            by: Some("alice_01".into()),
        };
        let operator = OperatorChange {
            official_id: "o_1".into(),
            official_name: "Acme".into(),
            public_id: "bob_01".into(),
            role: crate::official::OfficialRole::Support,
            by: "alice_01".into(),
        };
        vec![
            (
                r#"{"id":"m_1","client_id":"6f1c","from":"alice_01","from_display_name":"Alice","to":"g_1","body":"hello","sent_at":"2026-11-21T10:00:00Z"}"#,
                EventBody::MessageNew(Message {
                    id: "m_1".into(),
                    client_id: "6f1c".into(),
                    from: "alice_01".into(),
                    from_display_name: "Alice".into(),
                    to: "g_1".into(),
                    body: "hello".into(),
                    media: vec![],
                    sent_at: t("2026-11-21T10:00:00Z"),
                }),
            ),
            (
                r#"{"id":"cr_1","from":"alice_01","from_display_name":"Alice","to":"bob_01","to_display_name":"Bob","note":"hi","status":"pending","created_at":"2026-11-21T10:00:00Z"}"#,
                EventBody::ContactRequest(request.clone()),
            ),
            (
                r#"{"id":"cr_1","from":"alice_01","from_display_name":"Alice","to":"bob_01","to_display_name":"Bob","note":"hi","status":"accepted","created_at":"2026-11-21T10:00:00Z"}"#,
                EventBody::ContactAccepted(ContactRequest {
                    status: RequestStatus::Accepted,
                    ..request
                }),
            ),
            (
                r#"{"group_id":"g_1","group_name":"Team","public_ids":["alice_01","bob_01"],"by":"alice_01"}"#,
                EventBody::GroupJoined(change.clone()),
            ),
            (
                r#"{"group_id":"g_1","group_name":"Team","public_ids":["bob_01"]}"#,
                EventBody::GroupLeft(GroupChange {
                    public_ids: vec!["bob_01".into()],
                    by: None,
                    ..change
                }),
            ),
            (
                r#"{"amount":500,"balance":1500,"counterparty":"alice_01","kind":"transfer","note":"lunch","transaction_id":"tx_1"}"#,
                EventBody::WalletCredit(WalletMovement {
                    transaction_id: "tx_1".into(),
                    kind: "transfer".into(),
                    amount: 500,
                    balance: Some(1500),
                    counterparty: Some("alice_01".into()),
                    note: "lunch".into(),
                }),
            ),
            (
                r#"{"amount":-500,"balance":0,"counterparty":null,"kind":"red_envelope","note":"","transaction_id":"tx_2"}"#,
                EventBody::WalletDebit(WalletMovement {
                    transaction_id: "tx_2".into(),
                    kind: "red_envelope".into(),
                    amount: -500,
                    balance: Some(0),
                    counterparty: None,
                    note: String::new(),
                }),
            ),
            (
                r#"{"id":"re_1","from":"alice_01","to":"g_1","total":1000,"count":3,"mode":"lucky","greeting":"恭喜发财","created_at":"2026-11-21T10:00:00Z","expires_at":"2026-11-22T10:00:00Z","claims":[],"refunded":0}"#,
                EventBody::RedEnvelopeNew(RedEnvelope {
                    id: "re_1".into(),
                    from: "alice_01".into(),
                    to: "g_1".into(),
                    total: 1000,
                    count: 3,
                    mode: EnvelopeMode::Lucky,
                    greeting: "恭喜发财".into(),
                    created_at: t("2026-11-21T10:00:00Z"),
                    expires_at: t("2026-11-22T10:00:00Z"),
                    claims: Vec::new(),
                    refunded: 0,
                }),
            ),
            (
                r#"{"amount":333,"envelope_id":"re_1","public_id":"bob_01"}"#,
                EventBody::RedEnvelopeClaimed(EnvelopeClaimed {
                    envelope_id: "re_1".into(),
                    public_id: "bob_01".into(),
                    amount: 333,
                }),
            ),
            (
                r#"{"amount":334,"envelope_id":"re_1"}"#,
                EventBody::RedEnvelopeRefunded(EnvelopeRefunded {
                    envelope_id: "re_1".into(),
                    amount: 334,
                }),
            ),
            (
                r#"{"session_id":"ses_1"}"#,
                EventBody::SessionRevoked(SessionRevoked {
                    session_id: "ses_1".into(),
                }),
            ),
            (
                r#"{"reason":"sms_recovery"}"#,
                EventBody::TotpDisabled(crate::auth::TotpDisabled {
                    reason: crate::auth::TotpDisabledReason::SmsRecovery,
                }),
            ),
            (
                r#"{"official_id":"o_1","official_name":"Acme","customer":"carol_01","message":{"id":"m_2","client_id":"7a2d","from":"o_1","from_display_name":"Acme","to":"carol_01","body":"hello","sent_at":"2026-11-21T10:00:00Z"},"responder":{"kind":"operator","public_id":"alice_01","display_name":"Alice"},"unanswered":0}"#,
                EventBody::OfficialMessage(Box::new(OfficialMessage {
                    official_id: "o_1".into(),
                    official_name: "Acme".into(),
                    customer: "carol_01".into(),
                    message: Message {
                        id: "m_2".into(),
                        client_id: "7a2d".into(),
                        from: "o_1".into(),
                        from_display_name: "Acme".into(),
                        to: "carol_01".into(),
                        body: "hello".into(),
                        media: vec![],
                        sent_at: t("2026-11-21T10:00:00Z"),
                    },
                    responder: Some(crate::official::Responder::Operator {
                        public_id: "alice_01".into(),
                        display_name: "Alice".into(),
                    }),
                    unanswered: 0,
                })),
            ),
            (
                r#"{"official_id":"o_1","customer":"carol_01","claimed_by":"alice_01","expires_at":"2026-11-21T10:30:00Z"}"#,
                EventBody::OfficialClaimed(ConversationClaimed {
                    official_id: "o_1".into(),
                    customer: "carol_01".into(),
                    claimed_by: "alice_01".into(),
                    expires_at: t("2026-11-21T10:30:00Z"),
                }),
            ),
            (
                r#"{"official_id":"o_1","official_name":"Acme","public_id":"bob_01","role":"support","by":"alice_01"}"#,
                EventBody::OfficialOperatorAdded(operator.clone()),
            ),
            (
                r#"{"official_id":"o_1","official_name":"Acme","public_id":"bob_01","role":"support","by":"alice_01"}"#,
                EventBody::OfficialOperatorRemoved(operator),
            ),
            (
                r#"{"id":"art_1","official_id":"o_1","official_name":"Acme","title":"New beans","body":"Arrived today.","published_at":"2026-11-21T10:00:00Z"}"#,
                EventBody::ArticleNew(Article {
                    id: "art_1".into(),
                    official_id: "o_1".into(),
                    official_name: "Acme".into(),
                    title: "New beans".into(),
                    body: "Arrived today.".into(),
                    published_at: t("2026-11-21T10:00:00Z"),
                }),
            ),
            (
                r#"{"id":"mom_1","author":"alice_01","author_display_name":"Alice","text":"sunset","media":["med_1"],"at":"2026-11-21T10:00:00Z","likes":[],"comments":[]}"#,
                EventBody::MomentNew(Box::new(crate::moments::Moment {
                    id: "mom_1".into(),
                    author: "alice_01".into(),
                    author_display_name: "Alice".into(),
                    text: "sunset".into(),
                    media: vec!["med_1".into()],
                    at: t("2026-11-21T10:00:00Z"),
                    likes: vec![],
                    comments: vec![],
                })),
            ),
            (
                r#"{"moment_id":"mom_1","post_author":"alice_01","like":{"author":"bob_01","author_display_name":"Bob","at":"2026-11-21T10:01:00Z"}}"#,
                EventBody::MomentLike(crate::moments::MomentLiked {
                    moment_id: "mom_1".into(),
                    post_author: "alice_01".into(),
                    like: crate::moments::Like {
                        author: "bob_01".into(),
                        author_display_name: "Bob".into(),
                        at: t("2026-11-21T10:01:00Z"),
                    },
                }),
            ),
            (
                r#"{"moment_id":"mom_1","post_author":"alice_01","comment":{"id":"cmt_1","author":"bob_01","author_display_name":"Bob","text":"wow","reply_to":"cmt_0","at":"2026-11-21T10:02:00Z"}}"#,
                EventBody::MomentComment(Box::new(crate::moments::MomentCommented {
                    moment_id: "mom_1".into(),
                    post_author: "alice_01".into(),
                    comment: crate::moments::Comment {
                        id: "cmt_1".into(),
                        author: "bob_01".into(),
                        author_display_name: "Bob".into(),
                        text: "wow".into(),
                        reply_to: Some("cmt_0".into()),
                        at: t("2026-11-21T10:02:00Z"),
                    },
                })),
            ),
        ]
    }

    #[test]
    fn every_kind_reads_and_writes_exactly_what_the_service_sent_before() {
        let samples = samples();
        let kinds: Vec<EventKind> = samples.iter().map(|(_, b)| b.kind()).collect();
        assert_eq!(kinds, EventKind::KNOWN, "one sample per known kind");
        for (data, body) in samples {
            let kind = body.name();
            let wire =
                format!(r#"{{"seq":7,"kind":"{kind}","at":"2026-11-21T10:00:01Z","data":{data}}}"#);
            let event: Event = serde_json::from_str(&wire).unwrap();
            assert_eq!(event.body, body, "{kind} reads into its payload type");
            assert_eq!((event.seq, event.at), (7, t("2026-11-21T10:00:01Z")));
            let out = serde_json::to_string(&event).unwrap();
            assert_eq!(
                serde_json::from_str::<Value>(&out).unwrap(),
                serde_json::from_str::<Value>(&wire).unwrap(),
                "{kind} writes the same fields and values back"
            );
            assert!(
                out.starts_with(&format!(r#"{{"seq":7,"kind":"{kind}","at":"#)),
                "fields stay in wire order: {out}"
            );
            assert_eq!(
                serde_json::from_str::<Value>(&body.data_json().unwrap()).unwrap(),
                serde_json::from_str::<Value>(data).unwrap(),
                "{kind}: data_json is the data alone"
            );
            assert_eq!(EventBody::from_json(kind, data).unwrap(), body);
            assert_eq!(
                serde_json::to_value(&body).unwrap(),
                json!({"kind": kind, "data": serde_json::from_str::<Value>(data).unwrap()}),
                "{kind}: the derived (tag, content) form agrees with the hand-written one"
            );
            assert_eq!(EventKind::from_name(kind), body.kind());
        }
    }

    #[test]
    fn an_unknown_kind_is_kept_whole_not_rejected() {
        let wire = r#"{"seq":1,"kind":"sticker.new","at":"2026-11-21T10:00:00Z","data":{"x":1}}"#;
        let event: Event =
            serde_json::from_str(wire).expect("a newer service's kinds must not break old clients");
        assert_eq!(
            event.body,
            EventBody::Unknown(UnknownEvent {
                kind: "sticker.new".into(),
                data: json!({"x": 1}),
            })
        );
        assert_eq!(event.kind(), EventKind::Unknown);
        assert_eq!(event.body.name(), "sticker.new");
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::from_str::<Value>(wire).unwrap(),
            "written back as it came"
        );
        let bare: Event =
            serde_json::from_str(r#"{"seq":2,"kind":"ping","at":"2026-11-21T10:00:00Z"}"#).unwrap();
        assert_eq!(
            bare.body.name(),
            "ping",
            "an unknown kind may carry no data"
        );
    }

    #[test]
    fn field_order_and_extra_fields_do_not_matter_but_a_bad_payload_does() {
        let event: Event = serde_json::from_str(
            r#"{"data":{"session_id":"ses_1"},"at":"2026-11-21T10:00:00Z","shard":3,"kind":"session.revoked","seq":4}"#,
        )
        .unwrap();
        assert_eq!(
            event.body,
            EventBody::SessionRevoked(SessionRevoked {
                session_id: "ses_1".into()
            }),
            "data before kind is read once the kind is known"
        );
        let err = serde_json::from_str::<Event>(
            r#"{"seq":1,"kind":"message.new","at":"2026-11-21T10:00:00Z","data":{"x":1}}"#,
        );
        assert!(
            err.is_err(),
            "a known kind with the wrong payload is an error, not an Unknown"
        );
        assert!(
            serde_json::from_str::<Event>(
                r#"{"seq":1,"kind":"session.revoked","at":"2026-11-21T10:00:00Z"}"#
            )
            .is_err(),
            "a known kind needs its data"
        );
    }

    #[test]
    fn kind_names_match_the_enum_tags() {
        for k in EventKind::KNOWN {
            assert_eq!(EventKind::from_name(k.as_str()), k);
        }
        assert_eq!(EventKind::from_name("unknown"), EventKind::Unknown);
        assert!(close_code::ends_session(close_code::SESSION_REVOKED));
        assert!(close_code::ends_session(close_code::SESSION_EXPIRED));
        assert!(!close_code::ends_session(close_code::TOO_SLOW));
    }
}
