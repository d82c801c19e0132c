//! Moments in the app (SPEC §2.6): each profile's feed, kept in its own database so it reads
//! offline, refreshed from the service when shown and moved on by `moment.*` events; a merged
//! feed of every profile's, each post marked with the profile that sees it; posting with
//! images and a visibility, likes and comments through the profile that acts.

use serde::Serialize;
use switchboard_protocol::events::EventBody;
use switchboard_protocol::moments::{
    Comment, Feed, Like, MOMENT_TEXT_MAX, Moment, MomentCommented, MomentLiked, NewComment,
    NewMoment, Visibility,
};

use crate::account::path_segment;
use crate::error::{CoreError, Result};
use crate::media::ImageUpload;
use crate::profile::ProfileRuntime;
use crate::store::rfc3339;
use crate::{Engine, ProfileId};

/// Posts per page, from the service and to the page.
pub const PAGE: usize = 20;

/// A post as one profile sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MomentView {
    /// The profile that sees it (and through which to like or comment).
    pub profile: ProfileId,
    pub id: String,
    /// The author's public ID.
    pub author: String,
    pub author_display_name: String,
    pub text: String,
    /// Media ids of its images (`Engine::media` shows them).
    pub media: Vec<String>,
    pub at: String,
    /// The likes and comments this profile's account may see (WeChat's rule).
    pub likes: Vec<Like>,
    pub comments: Vec<Comment>,
    /// Whether the profile's own account wrote it.
    pub mine: bool,
    /// Whether the profile's own account likes it.
    pub liked_by_me: bool,
    /// `at` in milliseconds, to order posts of several profiles.
    #[serde(skip)]
    #[cfg_attr(feature = "ts", ts(skip))]
    pub(crate) at_ms: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    author: String,
    author_name: String,
    text: String,
    #[sqlx(json)]
    media: Vec<String>,
    at: String,
    at_ms: i64,
    #[sqlx(json)]
    likes: Vec<Like>,
    #[sqlx(json)]
    comments: Vec<Comment>,
}

impl Row {
    fn view(self, profile: &ProfileId, me: &str) -> MomentView {
        let liked_by_me = self.likes.iter().any(|l| l.author.eq_ignore_ascii_case(me));
        MomentView {
            profile: profile.clone(),
            mine: self.author.eq_ignore_ascii_case(me),
            id: self.id,
            author: self.author,
            author_display_name: self.author_name,
            text: self.text,
            media: self.media,
            at: self.at,
            likes: self.likes,
            comments: self.comments,
            liked_by_me,
            at_ms: self.at_ms,
        }
    }
}

fn unix_ms(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

type Tx<'t> = sqlx::Transaction<'t, sqlx::Sqlite>;

/// A post as the service sent it. `replace`: its likes and comments as given (a feed page is
/// the truth); else a post already kept keeps its own (a `moment.new` replayed late).
async fn upsert(tx: &mut Tx<'_>, m: &Moment, replace: bool) -> Result<()> {
    let tail = if replace {
        " ON CONFLICT (id) DO UPDATE SET text = excluded.text, media = excluded.media, \
         author_name = excluded.author_name, likes = excluded.likes, comments = excluded.comments"
    } else {
        " ON CONFLICT (id) DO NOTHING"
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO moments (id, author, author_name, text, media, at, at_ms, likes, comments) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?){tail}"
    )))
    .bind(&m.id)
    .bind(&m.author)
    .bind(&m.author_display_name)
    .bind(&m.text)
    .bind(sqlx::types::Json(&m.media))
    .bind(rfc3339(m.at))
    .bind(unix_ms(m.at))
    .bind(sqlx::types::Json(&m.likes))
    .bind(sqlx::types::Json(&m.comments))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends `item` to a kept post's `likes` or `comments` (a JSON array), unless one with the
/// same `key_path` value is there already: a like once per author, a comment once.
async fn append_once<T: Serialize>(
    tx: &mut Tx<'_>,
    moment_id: &str,
    list: &str,
    key_path: &str,
    key: &str,
    item: &T,
) -> Result<()> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE moments SET {list} = json_insert({list}, '$[#]', json(?)) WHERE id = ? AND \
         NOT EXISTS (SELECT 1 FROM json_each(moments.{list}) \
         WHERE json_extract(value, '{key_path}') = ? COLLATE NOCASE)"
    )))
    .bind(serde_json::to_string(item).map_err(|e| CoreError::Storage(e.to_string()))?)
    .bind(moment_id)
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn add_like(tx: &mut Tx<'_>, moment_id: &str, like: &Like) -> Result<()> {
    append_once(tx, moment_id, "likes", "$.author", &like.author, like).await
}

async fn add_comment(tx: &mut Tx<'_>, moment_id: &str, comment: &Comment) -> Result<()> {
    append_once(tx, moment_id, "comments", "$.id", &comment.id, comment).await
}

/// A change a `moment.*` event makes to the profile's feed, written with its batch.
pub(crate) enum MomentOp<'a> {
    New(&'a Moment),
    Liked(&'a MomentLiked),
    Commented(&'a MomentCommented),
}

impl<'a> MomentOp<'a> {
    pub(crate) fn of(body: &'a EventBody) -> Option<Self> {
        Some(match body {
            EventBody::MomentNew(m) => MomentOp::New(m),
            EventBody::MomentLike(l) => MomentOp::Liked(l),
            EventBody::MomentComment(c) => MomentOp::Commented(c),
            _ => return None,
        })
    }

    /// A like or comment on a post the profile has not kept yet changes nothing: the next
    /// refresh brings the post with it.
    pub(crate) async fn write(&self, tx: &mut Tx<'_>) -> Result<()> {
        match self {
            MomentOp::New(m) => upsert(tx, m, false).await,
            MomentOp::Liked(l) => add_like(tx, &l.moment_id, &l.like).await,
            MomentOp::Commented(c) => add_comment(tx, &c.moment_id, &c.comment).await,
        }
    }
}

/// Where a post stands in a feed: its time, then its id (the service's order; posts made in
/// the same millisecond are common).
type Position = (i64, String);

fn newest() -> Position {
    (i64::MAX, String::new())
}

/// The kept posts of one profile older than `before`, newest first.
async fn kept(
    rt: &ProfileRuntime,
    profile: &ProfileId,
    before: &Option<Position>,
) -> Result<Vec<MomentView>> {
    let (at, id) = before.clone().unwrap_or_else(newest);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, author, author_name, text, media, at, at_ms, likes, comments FROM moments \
         WHERE (at_ms, id) < (?, ?) ORDER BY at_ms DESC, id DESC LIMIT ?",
    )
    .bind(at)
    .bind(id)
    .bind(PAGE as i64)
    .fetch_all(rt.store.pool())
    .await?;
    let me = rt.public_id.to_string();
    Ok(rows.into_iter().map(|r| r.view(profile, &me)).collect())
}

async fn one(rt: &ProfileRuntime, profile: &ProfileId, id: &str) -> Result<MomentView> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, author, author_name, text, media, at, at_ms, likes, comments FROM moments \
         WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(rt.store.pool())
    .await?;
    let me = rt.public_id.to_string();
    row.map(|r| r.view(profile, &me))
        .ok_or_else(|| CoreError::Invalid("no such post in this profile".into()))
}

/// Where the post `id` stands, if the profile keeps it.
async fn position_of(rt: &ProfileRuntime, id: &str) -> Result<Option<Position>> {
    Ok(sqlx::query_as("SELECT at_ms, id FROM moments WHERE id = ?")
        .bind(id)
        .fetch_optional(rt.store.pool())
        .await?)
}

/// Reads one page of the service's feed (older than the kept post at or nearest after
/// `before`) into the profile's database, and forgets the kept posts in that span the
/// service no longer shows (deleted, or hidden since).
async fn refresh(rt: &ProfileRuntime, before: &Option<Position>) -> Result<()> {
    let cursor: Option<(String,)> = match before {
        None => None,
        Some((at, id)) => {
            sqlx::query_as(
                "SELECT id FROM moments WHERE (at_ms, id) >= (?, ?) ORDER BY at_ms, id LIMIT 1",
            )
            .bind(at)
            .bind(id)
            .fetch_optional(rt.store.pool())
            .await?
        }
    };
    let mut path = format!("/v1/moments/feed?limit={PAGE}");
    if let Some((id,)) = &cursor {
        path.push_str(&format!("&before={}", path_segment(id)?));
    }
    let feed: Feed = rt.client.get_as(&rt.token, &path).await?;
    let low: Position = match (&feed.next_before, feed.posts.last()) {
        (Some(_), Some(oldest)) => (unix_ms(oldest.at), oldest.id.clone()),
        _ => (i64::MIN, String::new()),
    };
    let high = before.clone().unwrap_or_else(newest);
    let mut tx = rt.store.pool().begin().await?;
    let mut keep =
        sqlx::QueryBuilder::<sqlx::Sqlite>::new("DELETE FROM moments WHERE (at_ms, id) >= (");
    keep.push_bind(low.0).push(", ").push_bind(low.1);
    keep.push(") AND (at_ms, id) < (")
        .push_bind(high.0)
        .push(", ")
        .push_bind(high.1)
        .push(")");
    if !feed.posts.is_empty() {
        keep.push(" AND id NOT IN (");
        let mut ids = keep.separated(", ");
        for p in &feed.posts {
            ids.push_bind(&p.id);
        }
        keep.push(")");
    }
    keep.build().execute(&mut *tx).await?;
    for p in &feed.posts {
        upsert(&mut tx, p, true).await?;
    }
    tx.commit().await?;
    Ok(())
}

impl Engine {
    /// One page of Moments (newest first) for `profiles`: one profile's feed, or several
    /// merged, each post marked with the profile that sees it. `before`: the id of the oldest
    /// post already shown. Each profile's feed is refreshed from its service first; one that
    /// cannot be reached shows what it kept.
    pub async fn moments(
        &self,
        profiles: &[ProfileId],
        before: Option<&str>,
    ) -> Result<Vec<MomentView>> {
        let mut runtimes = Vec::with_capacity(profiles.len());
        for p in profiles {
            runtimes.push((p.clone(), self.runtime(p).await?));
        }
        let mut from = None;
        if let Some(id) = before {
            for (_, rt) in &runtimes {
                if let Some(at) = position_of(rt, id).await? {
                    from = Some(at);
                    break;
                }
            }
            if from.is_none() {
                return Err(CoreError::Invalid("no such post to page from".into()));
            }
        }
        let refreshed =
            futures_util::future::join_all(runtimes.iter().map(|(_, rt)| refresh(rt, &from))).await;
        let mut out = Vec::new();
        for ((profile, rt), r) in runtimes.iter().zip(refreshed) {
            if let Err(e) = r {
                tracing::info!(profile = %profile, error = %e, "Moments shown from what the profile kept");
            }
            out.extend(kept(rt, profile, &from).await?);
        }
        out.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| b.id.cmp(&a.id)));
        out.truncate(PAGE);
        Ok(out)
    }

    /// Posts a Moment from `profile`: its images uploaded (and kept in the cache), then the
    /// post, under one idempotency key.
    pub async fn post_moment(
        &self,
        profile: &ProfileId,
        text: &str,
        images: &[ImageUpload],
        visibility: Visibility,
    ) -> Result<MomentView> {
        let chars = text.chars().count();
        if chars > MOMENT_TEXT_MAX || (text.trim().is_empty() && images.is_empty()) {
            return Err(CoreError::Invalid(format!(
                "a post has text (up to {MOMENT_TEXT_MAX} characters) or images"
            )));
        }
        let rt = self.runtime(profile).await?;
        let prepared = crate::media::prepare_all(images).await?;
        let mut media = Vec::with_capacity(prepared.len());
        for p in &prepared {
            let id = match rt.store.uploaded_as(&p.key).await? {
                Some(id) => id,
                None => {
                    rt.client
                        .upload_media(&rt.token, p.mime, p.full.clone())
                        .await?
                        .media_id
                }
            };
            rt.store
                .cache_put(p, Some(&id), self.media_cache_bytes())
                .await?;
            media.push(id);
        }
        let req = NewMoment {
            text: text.to_string(),
            media,
            visibility,
            idempotency_key: uuid::Uuid::new_v4().to_string(),
        };
        let posted: Moment = rt.client.post_as(&rt.token, "/v1/moments", &req).await?;
        let mut tx = rt.store.pool().begin().await?;
        upsert(&mut tx, &posted, true).await?;
        tx.commit().await?;
        one(&rt, profile, &posted.id).await
    }

    /// Likes a post as `profile`'s account (liking twice is liking once).
    pub async fn like_moment(&self, profile: &ProfileId, moment_id: &str) -> Result<MomentView> {
        let rt = self.runtime(profile).await?;
        let path = format!("/v1/moments/{}/likes", path_segment(moment_id)?);
        match rt
            .client
            .post_as::<_, Like>(&rt.token, &path, &serde_json::json!({}))
            .await
        {
            Ok(like) => {
                let mut tx = rt.store.pool().begin().await?;
                add_like(&mut tx, moment_id, &like).await?;
                tx.commit().await?;
            }
            Err(CoreError::Api(e)) if e.code == switchboard_protocol::ErrorCode::AlreadyLiked => {}
            Err(e) => return Err(e),
        }
        one(&rt, profile, moment_id).await
    }

    /// Comments on a post as `profile`'s account, perhaps answering one of its comments.
    pub async fn comment_moment(
        &self,
        profile: &ProfileId,
        moment_id: &str,
        text: &str,
        reply_to: Option<String>,
    ) -> Result<MomentView> {
        let rt = self.runtime(profile).await?;
        let path = format!("/v1/moments/{}/comments", path_segment(moment_id)?);
        let req = NewComment {
            text: text.to_string(),
            reply_to,
        };
        let comment: Comment = rt.client.post_as(&rt.token, &path, &req).await?;
        let mut tx = rt.store.pool().begin().await?;
        add_comment(&mut tx, moment_id, &comment).await?;
        tx.commit().await?;
        one(&rt, profile, moment_id).await
    }

    /// Deletes one of `profile`'s own posts, at the service and here.
    pub async fn delete_moment(&self, profile: &ProfileId, moment_id: &str) -> Result<()> {
        let rt = self.runtime(profile).await?;
        let path = format!("/v1/moments/{}", path_segment(moment_id)?);
        rt.client.delete_as(&rt.token, &path).await?;
        sqlx::query("DELETE FROM moments WHERE id = ?")
            .bind(moment_id)
            .execute(rt.store.pool())
            .await?;
        Ok(())
    }
}
