//! Official accounts, the public platform (SPEC §1.5): accounts that businesses run, operated
//! by several people each with their own session and a role, followed by customers, publishing
//! articles and answering customer messages as the official account.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Timestamp;
use crate::messaging::Message;

/// What an official account's id starts with: never a public ID (those start with a letter
/// and are checked against this prefix) nor a group id, so a message's `to` is never ambiguous.
pub const OFFICIAL_ID_PREFIX: &str = "o_";

/// An article's body, in characters.
pub const ARTICLE_BODY_MAX: usize = 20_000;

/// What an operator may do. Every operator acts with their own session (no shared password);
/// an API key acts with the role it was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum OfficialRole {
    /// Who created it: everything, and the only one who may not be removed.
    Owner,
    /// Everything but deleting the official account: operators, API keys, articles, customers.
    Admin,
    /// Articles.
    Editor,
    /// Customer messages.
    Support,
}

impl OfficialRole {
    pub fn as_str(self) -> &'static str {
        match self {
            OfficialRole::Owner => "owner",
            OfficialRole::Admin => "admin",
            OfficialRole::Editor => "editor",
            OfficialRole::Support => "support",
        }
    }

    pub fn parse(s: &str) -> Option<OfficialRole> {
        [
            OfficialRole::Owner,
            OfficialRole::Admin,
            OfficialRole::Editor,
            OfficialRole::Support,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// Add and remove operators, make and revoke API keys.
    pub fn manages(self) -> bool {
        matches!(self, OfficialRole::Owner | OfficialRole::Admin)
    }

    /// Publish articles.
    pub fn publishes(self) -> bool {
        matches!(
            self,
            OfficialRole::Owner | OfficialRole::Admin | OfficialRole::Editor
        )
    }

    /// See, claim and answer customer conversations.
    pub fn serves(self) -> bool {
        matches!(
            self,
            OfficialRole::Owner | OfficialRole::Admin | OfficialRole::Support
        )
    }
}

/// `POST /v1/official-accounts`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewOfficialAccount {
    /// 1–64 characters, shown to followers and customers.
    pub name: String,
    /// Up to 500 characters.
    #[serde(default)]
    pub description: String,
}

/// An official account as anyone signed in sees it; `role` only for its operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OfficialAccount {
    /// `o_…`
    pub id: String,
    pub name: String,
    pub description: String,
    /// The avatar colour, `#rrggbb`.
    pub color: String,
    pub followers: i64,
    /// The caller's role, when the caller operates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<OfficialRole>,
    /// Whether the caller follows it.
    #[serde(default)]
    pub following: bool,
}

/// `GET /v1/official-accounts`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OfficialAccountList {
    pub official_accounts: Vec<OfficialAccount>,
}

/// `GET /v1/official-accounts?mine=true`: the ones the caller operates; otherwise the ones the
/// caller operates or follows.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OfficialListQuery {
    #[serde(default)]
    pub mine: bool,
}

/// `DELETE /v1/official-accounts/{id}/operators/{public_id}?keep_keys=true`: the API keys the
/// removed operator made are revoked with them unless kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RemoveOperatorQuery {
    #[serde(default)]
    pub keep_keys: bool,
}

/// `POST /v1/official-accounts/{id}/operators`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct AddOperator {
    pub public_id: String,
    /// `admin`, `editor` or `support` (an official account has one owner).
    pub role: OfficialRole,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Operator {
    pub public_id: String,
    pub display_name: String,
    pub role: OfficialRole,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub added_at: Timestamp,
}

/// `GET /v1/official-accounts/{id}/operators` (operators only)
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OperatorList {
    pub operators: Vec<Operator>,
}

/// Data of `official.operator_added` and `official.operator_removed`, in the log of every
/// operator (the one added or removed included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OperatorChange {
    pub official_id: String,
    pub official_name: String,
    pub public_id: String,
    pub role: OfficialRole,
    /// Who made the change.
    pub by: String,
}

/// `POST /v1/official-accounts/{id}/articles`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewArticle {
    /// 1–128 characters.
    pub title: String,
    /// Plain text, paragraphs separated by blank lines; 1–20,000 characters.
    pub body: String,
    /// Made by the client; publishing again with the same key returns the same article.
    pub idempotency_key: String,
}

/// An article; also the data of `article.new`, in every follower's log. Followers see the
/// official account, never which operator wrote it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Article {
    pub id: String,
    pub official_id: String,
    pub official_name: String,
    pub title: String,
    pub body: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub published_at: Timestamp,
}

/// `GET /v1/official-accounts/{id}/articles?before=&limit=`: newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ArticleQuery {
    /// An article id: only older articles.
    pub before: Option<String>,
    /// 1–100, default 20.
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ArticleList {
    pub articles: Vec<Article>,
    /// Pass as `before` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

/// Who answered a customer as the official account, as operators see it (customers never do).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Responder {
    Operator {
        public_id: String,
        display_name: String,
    },
    ApiKey {
        key_id: String,
        name: String,
    },
}

/// One customer conversation of an official account: it belongs to the official account, not
/// to an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CustomerConversation {
    pub official_id: String,
    /// The customer's public ID.
    pub customer: String,
    pub customer_display_name: String,
    pub last_message: Message,
    /// Customer messages since the last answer.
    pub unanswered: i64,
    /// Public ID of the operator holding the conversation, while the claim lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// When the claim lapses unless its holder answers first.
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub claim_expires_at: Option<Timestamp>,
}

/// `GET /v1/official-accounts/{id}/conversations` (support and above): most recent first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CustomerConversationList {
    pub conversations: Vec<CustomerConversation>,
}

/// Data of `official.message`, in the log of every operator who serves customers: a customer
/// wrote, or an operator (or a key) answered as the official account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct OfficialMessage {
    pub official_id: String,
    pub official_name: String,
    /// The customer's public ID.
    pub customer: String,
    pub message: Message,
    /// Set on answers: who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder: Option<Responder>,
    /// The conversation's unanswered count after this message.
    pub unanswered: i64,
}

/// Data of `official.claimed`, in the log of every operator who serves customers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConversationClaimed {
    pub official_id: String,
    pub customer: String,
    pub claimed_by: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

/// `POST /v1/official-accounts/{id}/api-keys` (owner and admins)
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// 1–64 characters, shown to operators beside what the key did.
    pub name: String,
    /// `admin`, `editor` or `support`.
    pub role: OfficialRole,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub role: OfficialRole,
    /// The public ID of the operator who made it (removing them revokes it, unless kept).
    pub created_by: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

/// The answer to making a key: the key itself, shown this once (the service keeps its hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApiKeyCreated {
    /// `Authorization: Bearer <key>` on the official account's routes.
    pub key: String,
    #[serde(flatten)]
    pub info: ApiKeyInfo,
}

/// `GET /v1/official-accounts/{id}/api-keys`: the live ones.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApiKeyList {
    pub api_keys: Vec<ApiKeyInfo>,
}
