//! Contacts, groups, messages and the per-account event log (SPEC §1.3).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Timestamp;

/// `GET /v1/users/{public_id}`: what anyone signed in may see of an account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UserProfile {
    pub public_id: String,
    pub display_name: String,
    /// Whether the caller and this user are contacts.
    pub is_contact: bool,
}

/// `POST /v1/contacts/requests`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewContactRequest {
    pub public_id: String,
    /// A short greeting shown with the request (at most 200 characters).
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    Pending,
    Accepted,
}

/// The answer to creating or accepting a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ContactRequestState {
    pub id: String,
    pub status: RequestStatus,
}

/// A friend request; also the data of `contact.request` and `contact.accepted` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ContactRequest {
    pub id: String,
    /// Public ID of the account that asked.
    pub from: String,
    pub from_display_name: String,
    /// Public ID of the account asked.
    pub to: String,
    pub to_display_name: String,
    pub note: String,
    pub status: RequestStatus,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// `GET /v1/contacts/requests`: pending requests, both ways.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ContactRequestList {
    pub incoming: Vec<ContactRequest>,
    pub outgoing: Vec<ContactRequest>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Contact {
    pub public_id: String,
    pub display_name: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub since: Timestamp,
}

/// `GET /v1/contacts`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ContactList {
    pub contacts: Vec<Contact>,
}

/// `POST /v1/groups`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    pub name: String,
    /// Public IDs of the creator's contacts (at most 500 members in all).
    pub members: Vec<String>,
}

/// `POST /v1/groups/{id}/members`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AddMembers {
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GroupMember {
    pub public_id: String,
    pub display_name: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub joined_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Group {
    /// `g_…`: never a valid public ID, so a message's `to` is never ambiguous.
    pub id: String,
    pub name: String,
    /// Public ID of the member who may remove others.
    pub owner: String,
    pub members: Vec<GroupMember>,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// `GET /v1/groups`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GroupList {
    pub groups: Vec<Group>,
}

/// Data of `group.joined` and `group.left` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GroupChange {
    pub group_id: String,
    pub group_name: String,
    /// Who joined or left.
    pub public_ids: Vec<String>,
    /// Who added or removed them, when it was someone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// `POST /v1/messages`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// A UUID made by the client; sending again with the same one returns the same message.
    pub client_id: String,
    /// A contact's public ID or a group id (`g_…`).
    pub to: String,
    /// 1–4096 characters.
    pub body: String,
}

/// A message; also the data of `message.new` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Message {
    pub id: String,
    pub client_id: String,
    /// Sender's public ID.
    pub from: String,
    pub from_display_name: String,
    /// Recipient's public ID, or the group id.
    pub to: String,
    pub body: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: Timestamp,
}

/// Data of `session.revoked` events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SessionRevoked {
    pub session_id: String,
}

/// What an event is about. Clients must skip kinds they do not know (`Unknown`): new kinds
/// are added without a new API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum EventKind {
    #[serde(rename = "message.new")]
    MessageNew,
    #[serde(rename = "contact.request")]
    ContactRequest,
    #[serde(rename = "contact.accepted")]
    ContactAccepted,
    #[serde(rename = "group.joined")]
    GroupJoined,
    #[serde(rename = "group.left")]
    GroupLeft,
    #[serde(rename = "wallet.credit")]
    WalletCredit,
    #[serde(rename = "wallet.debit")]
    WalletDebit,
    #[serde(rename = "red_envelope.new")]
    RedEnvelopeNew,
    #[serde(rename = "red_envelope.claimed")]
    RedEnvelopeClaimed,
    #[serde(rename = "red_envelope.refunded")]
    RedEnvelopeRefunded,
    #[serde(rename = "session.revoked")]
    SessionRevoked,
    #[serde(other)]
    Unknown,
}

impl EventKind {
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
            EventKind::Unknown => "unknown",
        }
    }
}

/// One entry of an account's event log. `seq` counts from 1 per account with no gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Event {
    pub seq: i64,
    pub kind: EventKind,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Depends on `kind`: `Message`, `ContactRequest`, `GroupChange`, `SessionRevoked`, …
    pub data: serde_json::Value,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_use_their_dotted_names_and_unknown_kinds_are_tolerated() {
        let k: EventKind = serde_json::from_str("\"message.new\"").unwrap();
        assert_eq!(k, EventKind::MessageNew);
        assert_eq!(
            serde_json::to_string(&EventKind::RedEnvelopeClaimed).unwrap(),
            "\"red_envelope.claimed\""
        );
        let k: EventKind = serde_json::from_str("\"sticker.new\"").unwrap();
        assert_eq!(
            k,
            EventKind::Unknown,
            "a newer service's kinds must not break old clients"
        );
    }
}
