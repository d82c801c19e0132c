//! Contacts, groups, messages and the per-account event log (SPEC §1.3).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

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
    /// A contact's public ID, a group id (`g_…`) or an official account the sender follows
    /// (`o_…`); with `from_official`, the customer's public ID.
    pub to: String,
    /// Up to 4096 characters; 1 or more unless the message carries images.
    pub body: String,
    /// Up to 9 media ids (`POST /v1/media`) the sender may see; whoever receives the message
    /// may then fetch them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<String>,
    /// Answer a customer as this official account (`o_…`; support role and above, or one of
    /// its API keys). The customer sees the official account's name, never the operator's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_official: Option<String>,
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
    /// Media ids of the images it carries, in order (absent when none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<String>,
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

/// What a group id starts with. No public ID may (they start with a letter and are checked
/// against this prefix), so a `to` is never ambiguous.
pub const GROUP_ID_PREFIX: &str = "g_";

/// Where a message or a red envelope goes: the `to` of a request or of a [`Message`], read
/// once here instead of by each side's own prefix check.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A contact, by public ID.
    User(String),
    /// A group, by id (`g_…`).
    Group(String),
    /// An official account, by id (`o_…`).
    Official(String),
}

impl Target {
    /// Reads a `to` as given (callers trim what users type). Anything that is not a group id
    /// is taken as a public ID; whether that account exists is for the service to say.
    pub fn parse(to: &str) -> Target {
        Target::from(to.to_string())
    }

    /// The id as it goes on the wire.
    pub fn as_str(&self) -> &str {
        match self {
            Target::User(id) | Target::Group(id) | Target::Official(id) => id,
        }
    }

    pub fn into_string(self) -> String {
        match self {
            Target::User(id) | Target::Group(id) | Target::Official(id) => id,
        }
    }

    pub fn is_group(&self) -> bool {
        matches!(self, Target::Group(_))
    }
}

impl From<String> for Target {
    fn from(to: String) -> Target {
        if to.starts_with(GROUP_ID_PREFIX) {
            Target::Group(to)
        } else if to.starts_with(crate::official::OFFICIAL_ID_PREFIX) {
            Target::Official(to)
        } else {
            Target::User(to)
        }
    }
}

impl std::str::FromStr for Target {
    type Err = std::convert::Infallible;
    fn from_str(to: &str) -> Result<Target, Self::Err> {
        Ok(Target::parse(to))
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Message {
    /// Whom the message is to, read from `to`.
    pub fn target(&self) -> Target {
        Target::parse(&self.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_a_group_exactly_when_it_has_the_group_prefix() {
        assert_eq!(Target::parse("g_team"), Target::Group("g_team".into()));
        assert_eq!(Target::parse("bob_01"), Target::User("bob_01".into()));
        assert_eq!(Target::parse("o_acme"), Target::Official("o_acme".into()));
        assert_eq!(
            "gary".parse::<Target>(),
            Ok(Target::User("gary".into())),
            "a public ID that merely starts with g is a user"
        );
        assert_eq!(Target::parse("g_team").to_string(), "g_team");
        assert_eq!(Target::parse("bob_01").into_string(), "bob_01");
    }
}
