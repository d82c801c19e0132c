//! Storage of official accounts (SPEC §1.5), a part of [`Store`](super::Store) of its own.
//!
//! The invariants that concurrent requests could break are decided under a lock in the
//! step that writes: the official account's row is locked before its operators are counted
//! or changed, before a customer conversation is written and before a claim is taken, so a
//! removed operator can never act after the removal commits, two operators racing for the
//! last seat or for one conversation get one winner, and each message's events go to exactly
//! the operators there are when it commits.

use async_trait::async_trait;

use super::{Charge, EventRow, NewEvent, StoreResult};
use crate::Millis;

#[derive(Debug, Clone, PartialEq)]
pub struct OfficialRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub color: String,
    pub owner_id: String,
    pub created_at: Millis,
    /// Counted when read.
    pub followers: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OperatorRow {
    pub account_id: String,
    pub public_id: String,
    pub display_name: String,
    /// `owner`, `admin`, `editor` or `support`.
    pub role: String,
    pub added_at: Millis,
}

/// An official account as one account sees it: the role it holds there, if any, and whether
/// it follows.
#[derive(Debug, Clone, PartialEq)]
pub struct OfficialView {
    pub official: OfficialRow,
    pub role: Option<String>,
    pub following: bool,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ArticleRow {
    pub id: String,
    pub official_id: String,
    /// An operator's account id or `key:<key id>`.
    pub author: String,
    pub idempotency_key: String,
    pub title: String,
    pub body: String,
    pub published_at: Millis,
    /// The article as announced (JSON).
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OfficialMessageRow {
    pub id: String,
    pub official_id: String,
    pub customer_id: String,
    /// Who sent it: the customer's account id, an operator's, or `key:<key id>`.
    pub actor: String,
    pub client_id: String,
    pub body: String,
    pub sent_at: Millis,
    /// The message as delivered (JSON).
    pub data: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerConversationRow {
    pub official_id: String,
    pub customer_id: String,
    pub customer_public_id: String,
    pub customer_display_name: String,
    /// The last message as delivered (JSON).
    pub last_message: String,
    pub last_at: Millis,
    pub unanswered: i64,
    /// The holder's account id and public ID, and when the claim lapses: only while it lasts.
    pub claim: Option<(String, String, Millis)>,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: String,
    pub official_id: String,
    pub key_hash: String,
    pub name: String,
    pub role: String,
    /// The account that made it.
    pub created_by: String,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
    /// That account's public ID as it is now: read, never written.
    pub creator_public_id: String,
}

/// Who is acting for (or writing to) an official account, checked again inside the writing
/// transaction (a removal or a revocation that committed first wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender<'a> {
    /// A follower writing to the official account.
    Customer,
    /// An operator (account id) answering as the official account.
    Operator(&'a str),
    /// An API key (key id) answering as the official account.
    Key(&'a str),
}

/// The limits an operator change must pass.
#[derive(Debug, Clone, Copy)]
pub struct OperatorLimits {
    /// Operators of one official account, the owner included.
    pub max_operators: u32,
    /// Official accounts one account operates.
    pub max_per_operator: u32,
}

/// Which limit a change would pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfficialLimit {
    Operators,
    PerOperator,
}

/// Builds the events of a change for the accounts given (read inside the change's
/// transaction): an error rolls the change back.
pub type Fanout<'a> = &'a (dyn Fn(&[String]) -> StoreResult<Vec<NewEvent>> + Send + Sync);

/// As [`Fanout`], for a customer message: the serving operators and the conversation's
/// unanswered count after the message.
pub type MessageFanout<'a> =
    &'a (dyn Fn(&[String], i64) -> StoreResult<Vec<NewEvent>> + Send + Sync);

/// A customer conversation message to write, for [`OfficialStore::official_message`].
pub struct OfficialSend<'a> {
    pub row: &'a OfficialMessageRow,
    pub sender: Sender<'a>,
    /// The events for the customer's own log.
    pub customer_events: &'a [NewEvent],
    /// The events for the serving operators.
    pub fanout: MessageFanout<'a>,
    /// Taken first, as [`rate_take`](super::Store::rate_take) would.
    pub charges: &'a [Charge],
    /// How long a claim lasts after its holder's answer.
    pub claim_ms: i64,
}

/// What [`OfficialStore::official_operator_remove`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct Removed {
    pub events: Vec<EventRow>,
    /// The removed operator's keys revoked with them.
    pub keys_revoked: u64,
}

/// The outcome of [`OfficialStore::official_claim`].
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    Claimed {
        expires_at: Millis,
        events: Vec<EventRow>,
    },
    /// Another operator holds it (public ID) until then.
    Held { by: String, until: Millis },
}

#[async_trait]
pub trait OfficialStore: Send + Sync {
    /// Creates the official account with its owner as an operator, appending `events` (the
    /// owner's devices learn of it like of any operator change); `OfficialLimit` if the owner
    /// operates `max_per_operator` already.
    /// `name_key` is what the name looks like: `OfficialNameTaken` if another official
    /// account's is the same (decided by a unique index, so racing creations get one).
    async fn official_create(
        &self,
        row: &OfficialRow,
        name_key: &str,
        max_per_operator: u32,
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>>;
    /// Gives every official account made before names had keys its `key(name)`, oldest
    /// first; returns the ids left without one (a lookalike of an older one).
    async fn official_name_keys_backfill(
        &self,
        key: &(dyn for<'n> Fn(&'n str) -> String + Send + Sync),
    ) -> StoreResult<Vec<String>>;
    async fn official_by_id(&self, id: &str) -> StoreResult<Option<OfficialRow>>;
    /// The official account as `account_id` sees it.
    async fn official_view(&self, id: &str, account_id: &str) -> StoreResult<Option<OfficialView>>;
    /// The ones `account_id` operates, and with `followed` also the ones it follows; oldest
    /// first.
    async fn officials_of(
        &self,
        account_id: &str,
        followed: bool,
    ) -> StoreResult<Vec<OfficialView>>;
    /// Owner first, then by when they were added.
    async fn official_operators(&self, official_id: &str) -> StoreResult<Vec<OperatorRow>>;
    /// Adds an operator or changes their role (never the owner's), with `fanout`'s events for
    /// every operator after the change. `by` (an account) must manage the official account at
    /// the moment of writing (`NotAllowed`): an admin removed a moment ago adds no one.
    #[allow(clippy::too_many_arguments)] // one write, each argument a different fact about it
    async fn official_operator_set(
        &self,
        official_id: &str,
        by: &str,
        account_id: &str,
        role: &str,
        now: Millis,
        limits: OperatorLimits,
        fanout: Fanout<'_>,
    ) -> StoreResult<Vec<EventRow>>;
    /// Removes an operator (never the owner), with `fanout`'s events for every operator before
    /// the change (the removed one's last), and revokes the API keys they made unless
    /// `keep_keys`; `None` if they were no (removable) operator. `by` must manage the official
    /// account at the moment of writing, or be the one leaving (`NotAllowed`).
    async fn official_operator_remove(
        &self,
        official_id: &str,
        by: &str,
        account_id: &str,
        keep_keys: bool,
        now: Millis,
        fanout: Fanout<'_>,
    ) -> StoreResult<Option<Removed>>;
    /// Follows (again: nothing changes).
    async fn official_follow(
        &self,
        official_id: &str,
        account_id: &str,
        now: Millis,
    ) -> StoreResult<()>;
    async fn official_unfollow(&self, official_id: &str, account_id: &str) -> StoreResult<bool>;
    async fn official_is_follower(&self, official_id: &str, account_id: &str) -> StoreResult<bool>;
    /// Publishes with `fanout`'s events for every follower; `Duplicate` if the idempotency key
    /// was used (nothing written).
    /// The author must still publish for it (`NotAllowed`).
    async fn article_publish(
        &self,
        row: &ArticleRow,
        author: Sender<'_>,
        fanout: Fanout<'_>,
    ) -> StoreResult<Vec<EventRow>>;
    async fn article_by_key(&self, official_id: &str, key: &str)
    -> StoreResult<Option<ArticleRow>>;
    /// Newest first, older than the article `before` when given.
    async fn articles(
        &self,
        official_id: &str,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<ArticleRow>>;
    /// Writes a message of a customer conversation: from the customer (the conversation is
    /// made if new, one more unanswered) or an answer as the official account (the
    /// conversation must exist: `NoConversation`; another operator's live claim refuses it:
    /// `ClaimHeld`; the sender must still serve: `NotAllowed`). `Duplicate` for a used client
    /// id, `OverBudget` for a charge that does not fit; either way nothing is written.
    async fn official_message(&self, send: &OfficialSend<'_>) -> StoreResult<Vec<EventRow>>;
    async fn official_message_by_client_id(
        &self,
        actor: &str,
        client_id: &str,
    ) -> StoreResult<Option<OfficialMessageRow>>;
    /// Most recent first; a lapsed claim reads as none.
    async fn official_conversations(
        &self,
        official_id: &str,
        now: Millis,
    ) -> StoreResult<Vec<CustomerConversationRow>>;
    async fn official_conversation(
        &self,
        official_id: &str,
        customer_id: &str,
        now: Millis,
    ) -> StoreResult<Option<CustomerConversationRow>>;
    /// Claims a conversation for an operator who serves (`NotAllowed` otherwise) until
    /// `now + claim_ms`, unless another operator's claim lasts; `NoConversation` if none.
    async fn official_claim(
        &self,
        official_id: &str,
        customer_id: &str,
        operator_id: &str,
        now: Millis,
        claim_ms: i64,
        fanout: Fanout<'_>,
    ) -> StoreResult<Claim>;
    /// `row.created_by` must manage the official account at the moment of writing
    /// (`NotAllowed`).
    async fn api_key_create(&self, row: &ApiKeyRow) -> StoreResult<()>;
    /// Revoked keys included (the caller tells them apart).
    async fn api_key_by_hash(&self, key_hash: &str) -> StoreResult<Option<ApiKeyRow>>;
    /// The live keys, oldest first.
    async fn api_keys(&self, official_id: &str) -> StoreResult<Vec<ApiKeyRow>>;
    /// False if no live key has that id; `by` must manage the official account at the moment
    /// of writing (`NotAllowed`).
    async fn api_key_revoke(
        &self,
        official_id: &str,
        by: &str,
        id: &str,
        now: Millis,
    ) -> StoreResult<bool>;
}
