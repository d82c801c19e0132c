//! Moments and media (SPEC §1.6): images stored by content hash, and a feed of posts that an
//! account's contacts see, with likes and comments under WeChat's rule (a like or a comment is
//! seen only by viewers who are contacts of its author too).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::Timestamp;

/// The largest upload, in bytes.
pub const MEDIA_MAX_BYTES: usize = 10 * 1024 * 1024;
/// Images one message or one post may carry.
pub const MEDIA_PER_ITEM: usize = 9;
/// An image's pixels at most (SPEC §1.6, the service's `media.max_pixels` by default), judged
/// from its header before anything is decoded: a few KiB of PNG can declare a canvas that
/// takes gigabytes to decode.
pub const MEDIA_MAX_PIXELS: u64 = 40_000_000;
/// An image's side at most, in pixels.
pub const MEDIA_MAX_EDGE: u32 = 16_384;
/// A post's text, in characters.
pub const MOMENT_TEXT_MAX: usize = 2_000;
/// A comment's text, in characters.
pub const COMMENT_TEXT_MAX: usize = 500;

/// `POST /v1/media`: what the service read from the image itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MediaUploaded {
    pub media_id: String,
    pub width: u32,
    pub height: u32,
    /// Hex SHA-256 of the bytes: the same image uploaded twice is stored once.
    pub sha256: String,
}

/// Who may see a post: every contact, only some of them, or every contact but some.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Contacts,
    /// Public IDs of contacts.
    Only(Vec<String>),
    /// Public IDs of contacts.
    Except(Vec<String>),
}

/// `POST /v1/moments`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewMoment {
    /// Up to 2,000 characters; may be empty when there are images.
    #[serde(default)]
    pub text: String,
    /// Up to 9 media ids, uploaded by the author.
    #[serde(default)]
    pub media: Vec<String>,
    pub visibility: Visibility,
    /// Made by the client; posting again with the same key returns the same post.
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Like {
    /// Public ID.
    pub author: String,
    pub author_display_name: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Comment {
    pub id: String,
    /// Public ID.
    pub author: String,
    pub author_display_name: String,
    pub text: String,
    /// The comment this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

/// A post as one viewer sees it: only the likes and comments that viewer may see.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Moment {
    pub id: String,
    /// Public ID.
    pub author: String,
    pub author_display_name: String,
    pub text: String,
    pub media: Vec<String>,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub likes: Vec<Like>,
    pub comments: Vec<Comment>,
}

/// `GET /v1/moments/feed`, `GET /v1/users/{public_id}/moments`: newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Feed {
    pub posts: Vec<Moment>,
    /// Pass as `before` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// A post id: only older posts.
    pub before: Option<String>,
    /// 1–50, default 20.
    pub limit: Option<i64>,
}

/// `POST /v1/moments/{id}/comments`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// 1–500 characters.
    pub text: String,
    #[serde(default)]
    pub reply_to: Option<String>,
}

/// Data of `moment.like`, to the post's author and to those in its thread who may see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MomentLiked {
    pub moment_id: String,
    /// The post's author (public ID).
    pub post_author: String,
    pub like: Like,
}

/// Data of `moment.comment`, to the post's author and to those in its thread who may see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MomentCommented {
    pub moment_id: String,
    /// The post's author (public ID).
    pub post_author: String,
    pub comment: Comment,
}
