//! Storage of media and Moments (SPEC §1.6), a part of [`Store`](super::Store) of its own.
//!
//! A post's audience (who may see it: its author and the contacts its visibility lets in) is
//! written with the post, in its transaction, and every read goes through it: the feed is one
//! index range of it, and an image may be fetched by whoever is in the audience of a post that
//! uses it. A like's or a comment's readers are decided when read, by the viewer's contacts.

use async_trait::async_trait;

use super::{EventRow, NewEvent, StoreResult};
use crate::Millis;

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MediaRow {
    pub id: String,
    pub owner_id: String,
    pub sha256: String,
    pub mime: String,
    pub size: i64,
    pub width: i64,
    pub height: i64,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct MomentRow {
    pub id: String,
    pub author_id: String,
    pub author_public_id: String,
    pub author_display_name: String,
    pub idempotency_key: String,
    pub text: String,
    /// Media ids, a JSON array.
    pub media: String,
    pub created_at: Millis,
}

/// A like or a comment with its author, for building what a viewer sees.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ReactionRow {
    pub moment_id: String,
    /// The comment's id; empty for a like.
    pub id: String,
    pub author_id: String,
    pub author_public_id: String,
    pub author_display_name: String,
    /// Empty for a like.
    pub text: String,
    pub reply_to: Option<String>,
    pub at: Millis,
}

/// A like or a comment to write.
#[derive(Debug, Clone)]
pub enum Reaction<'a> {
    Like,
    Comment {
        id: &'a str,
        text: &'a str,
        reply_to: Option<&'a str>,
    },
}

/// As [`Fanout`](super::Fanout): the events of a like or a comment for the accounts of the
/// post's thread who may see it.
pub type ReactionFanout<'a> = &'a (dyn Fn(&[String]) -> StoreResult<Vec<NewEvent>> + Send + Sync);

#[async_trait]
pub trait MomentStore: Send + Sync {
    async fn media_insert(&self, row: &MediaRow) -> StoreResult<()>;
    async fn media_by_id(&self, id: &str) -> StoreResult<Option<MediaRow>>;
    /// Whether `account` uploaded `media_id`, is in the audience of a post (not deleted) that
    /// uses it, or was sent or received a message carrying it.
    async fn media_visible_to(&self, media_id: &str, account: &str) -> StoreResult<bool>;
    /// Posts with its audience (the author among them) and `events`; `Duplicate` if the author
    /// used the idempotency key already (nothing written).
    async fn moment_post(
        &self,
        row: &MomentRow,
        audience: &[String],
        events: &[NewEvent],
    ) -> StoreResult<Vec<EventRow>>;
    async fn moment_by_key(&self, author_id: &str, key: &str) -> StoreResult<Option<MomentRow>>;
    /// The post, if not deleted and `viewer` is in its audience.
    async fn moment_for(&self, id: &str, viewer: &str) -> StoreResult<Option<MomentRow>>;
    /// The posts `viewer` may see, newest first, older than the post `before`; only
    /// `author_id`'s when given.
    async fn moments_for(
        &self,
        viewer: &str,
        author_id: Option<&str>,
        before: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<MomentRow>>;
    /// Likes and comments of these posts, oldest first (the caller filters them per viewer).
    async fn reactions(&self, moment_ids: &[String]) -> StoreResult<Vec<ReactionRow>>;
    /// Deletes the author's post with its likes and comments; false if there was none.
    async fn moment_delete(&self, id: &str, author_id: &str, now: Millis) -> StoreResult<bool>;
    /// A like (once: `Duplicate` the second time) or a comment by `account` on a post it may
    /// see, with `fanout`'s events for the post's thread (its author, and those who liked or
    /// commented) who are in its audience and are `account` or its contacts.
    async fn moment_react(
        &self,
        moment_id: &str,
        account: &str,
        reaction: &Reaction<'_>,
        at: Millis,
        fanout: ReactionFanout<'_>,
    ) -> StoreResult<Vec<EventRow>>;
}
