//! Media and Moments (SPEC §1.6): images uploaded once and stored by content hash, served only
//! to who may see a post that uses them; posts for one's contacts with a chosen visibility;
//! likes and comments under WeChat's rule: a like or a comment is seen only by viewers who are
//! contacts of its author too (and by its author, and the post's).

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use switchboard_protocol::ErrorCode;
use switchboard_protocol::events::EventBody;
use switchboard_protocol::moments::{
    COMMENT_TEXT_MAX, Comment, Feed, FeedQuery, Like, MEDIA_MAX_BYTES, MEDIA_PER_ITEM,
    MOMENT_TEXT_MAX, MediaUploaded, Moment, MomentCommented, MomentLiked, NewComment, NewMoment,
    Visibility,
};

use crate::auth::Auth;
use crate::contacts::find_user;
use crate::error::{Error, Json, Path, Query, Result};
use crate::hub::Encoded;
use crate::state::App;
use switchboard_service::clock::{EntropyExt, to_datetime};
use switchboard_store::{MediaRow, MomentRow, Reaction, ReactionRow, StoreError};

fn moment_not_found() -> Error {
    Error::new(
        ErrorCode::MomentNotFound,
        "no such post, or not one you may see",
    )
}

fn media_not_found() -> Error {
    Error::new(
        ErrorCode::MediaNotFound,
        "no such image, or not one you may see",
    )
}

/// Upload an image (JPEG, PNG, WebP or GIF, at most 10 MiB; the type is read from the bytes)
#[utoipa::path(post, path = "/v1/media", tag = "moments", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "image/*", description = "the image's bytes"),
    responses((status = 201, body = MediaUploaded),
              (status = 400, description = "invalid_media", body = switchboard_protocol::ErrorBody),
              (status = 413, description = "payload_too_large", body = switchboard_protocol::ErrorBody)))]
pub async fn upload(
    State(app): State<App>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<MediaUploaded>)> {
    if body.len() > MEDIA_MAX_BYTES {
        return Err(Error::new(
            ErrorCode::PayloadTooLarge,
            "an image has at most 10 MiB",
        ));
    }
    let (mime, width, height) =
        switchboard_service::blobs::sniff(&body, app.config.media.max_pixels)
            .map_err(|why| Error::new(ErrorCode::InvalidMedia, format!("not kept: {why}")))?;
    let sha256 = data_encoding::HEXLOWER.encode(&Sha256::digest(&body));
    app.blobs.put(&sha256, &body).await.map_err(|e| {
        tracing::error!(error = %e, "storing an upload");
        Error::new(
            ErrorCode::Unavailable,
            "the image could not be stored; try again",
        )
    })?;
    let row = MediaRow {
        id: app.entropy.id("med_"),
        owner_id: auth.account.id.clone(),
        sha256: sha256.clone(),
        mime: mime.to_string(),
        size: body.len() as i64,
        width: i64::from(width),
        height: i64::from(height),
        created_at: app.clock.now_ms(),
    };
    app.store.media_insert(&row).await?;
    Ok((
        StatusCode::CREATED,
        Json(MediaUploaded {
            media_id: row.id,
            width,
            height,
            sha256,
        }),
    ))
}

/// An image, to its uploader and to who may see a post that uses it
#[utoipa::path(get, path = "/v1/media/{id}", tag = "moments", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 200, description = "the image's bytes, with its type"),
              (status = 404, description = "media_not_found (also when it exists but you may not see it)", body = switchboard_protocol::ErrorBody)))]
pub async fn fetch(State(app): State<App>, auth: Auth, Path(id): Path<String>) -> Result<Response> {
    let id = id.trim();
    // One answer for "none" and "not yours": the id of someone else's image tells nothing.
    if !app.store.media_visible_to(id, &auth.account.id).await? {
        return Err(media_not_found());
    }
    let row = app
        .store
        .media_by_id(id)
        .await?
        .ok_or_else(media_not_found)?;
    let bytes = app
        .blobs
        .get(&row.sha256)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading an image");
            Error::new(
                ErrorCode::Unavailable,
                "the image could not be read; try again",
            )
        })?
        .ok_or_else(media_not_found)?;
    Ok((
        [
            (header::CONTENT_TYPE, row.mime),
            (
                header::CACHE_CONTROL,
                "private, max-age=31536000, immutable".to_string(),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_string()),
        ],
        bytes,
    )
        .into_response())
}

/// The viewer's contacts, to decide whose likes and comments it sees.
async fn contact_ids(app: &App, account: &str) -> Result<HashSet<String>> {
    Ok(app
        .store
        .contacts_of(account)
        .await?
        .into_iter()
        .map(|c| c.account_id)
        .collect())
}

/// Posts as `viewer` sees them: a like or comment only if it is the viewer's own, on the
/// viewer's post, or by one of the viewer's contacts.
async fn views(app: &App, viewer: &str, rows: Vec<MomentRow>) -> Result<Vec<Moment>> {
    let contacts = contact_ids(app, viewer).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let reactions = app.store.reactions(&ids).await?;
    rows.into_iter()
        .map(|r| {
            let sees = |x: &ReactionRow| {
                x.author_id == viewer || r.author_id == viewer || contacts.contains(&x.author_id)
            };
            let mine: Vec<&ReactionRow> = reactions
                .iter()
                .filter(|x| x.moment_id == r.id && sees(x))
                .collect();
            Ok(Moment {
                media: serde_json::from_str(&r.media).map_err(Error::internal)?,
                likes: mine
                    .iter()
                    .filter(|x| x.id.is_empty())
                    .map(|x| Like {
                        author: x.author_public_id.clone(),
                        author_display_name: x.author_display_name.clone(),
                        at: to_datetime(x.at),
                    })
                    .collect(),
                comments: mine
                    .iter()
                    .filter(|x| !x.id.is_empty())
                    .map(|x| Comment {
                        id: x.id.clone(),
                        author: x.author_public_id.clone(),
                        author_display_name: x.author_display_name.clone(),
                        text: x.text.clone(),
                        reply_to: x.reply_to.clone(),
                        at: to_datetime(x.at),
                    })
                    .collect(),
                id: r.id,
                author: r.author_public_id,
                author_display_name: r.author_display_name,
                text: r.text,
                at: to_datetime(r.created_at),
            })
        })
        .collect()
}

fn replay(existing: MomentRow, text: &str, media: &[String]) -> Result<Moment> {
    let stored: Vec<String> = serde_json::from_str(&existing.media).map_err(Error::internal)?;
    if existing.text != text || stored != media {
        return Err(Error::new(
            ErrorCode::IdempotencyConflict,
            "this idempotency_key was used for a different post; make a new one",
        ));
    }
    Ok(Moment {
        id: existing.id,
        author: existing.author_public_id,
        author_display_name: existing.author_display_name,
        text: existing.text,
        media: stored,
        at: to_datetime(existing.created_at),
        likes: Vec::new(),
        comments: Vec::new(),
    })
}

/// Post a Moment to your contacts (all, only some, or all but some)
#[utoipa::path(post, path = "/v1/moments", tag = "moments", security(("bearer" = [])),
    request_body = NewMoment,
    responses((status = 201, description = "posted (or, for a retried idempotency_key, posted before)", body = Moment),
              (status = 400, description = "invalid_moment", body = switchboard_protocol::ErrorBody),
              (status = 403, description = "not_a_contact (a name in only/except)", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "media_not_found, user_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "idempotency_conflict", body = switchboard_protocol::ErrorBody)))]
pub async fn post(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<NewMoment>,
) -> Result<(StatusCode, Json<Moment>)> {
    let me = &auth.account;
    let invalid = |m: &str| Error::new(ErrorCode::InvalidMoment, m.to_string());
    // Shown under the author's name: held to the shown-text rule (no invisible or
    // direction-changing characters), its line breaks its own.
    let text = switchboard_service::text::check_shown_lines(
        &req.text,
        "a post's text",
        0,
        MOMENT_TEXT_MAX,
        ErrorCode::InvalidMoment,
    )?;
    if text.is_empty() && req.media.is_empty() {
        return Err(invalid("a post has text, images, or both"));
    }
    if req.media.len() > MEDIA_PER_ITEM {
        return Err(invalid("a post has at most 9 images"));
    }
    let key = req.idempotency_key.trim();
    if key.is_empty() || key.chars().count() > 128 {
        return Err(Error::invalid_request(
            "idempotency_key has 1 to 128 characters",
        ));
    }
    if let Some(existing) = app.store.moment_by_key(&me.id, key).await? {
        return Ok((
            StatusCode::CREATED,
            Json(replay(existing, &text, &req.media)?),
        ));
    }
    // Only the author's own uploads go into a post.
    for m in &req.media {
        match app.store.media_by_id(m).await? {
            Some(row) if row.owner_id == me.id => {}
            _ => return Err(media_not_found()),
        }
    }
    // The audience, from the author's contacts now.
    let contacts = app.store.contacts_of(&me.id).await?;
    let named = |list: &[String]| -> Result<HashSet<String>> {
        let mut ids = HashSet::new();
        for p in list {
            let c = contacts
                .iter()
                .find(|c| c.public_id.eq_ignore_ascii_case(p.trim()))
                .ok_or_else(|| {
                    Error::new(
                        ErrorCode::NotAContact,
                        format!("{p} is not one of your contacts"),
                    )
                })?;
            ids.insert(c.account_id.clone());
        }
        Ok(ids)
    };
    let mut audience: Vec<String> = match &req.visibility {
        Visibility::Contacts => contacts.iter().map(|c| c.account_id.clone()).collect(),
        Visibility::Only(list) => named(list)?.into_iter().collect(),
        Visibility::Except(list) => {
            let out = named(list)?;
            contacts
                .iter()
                .filter(|c| !out.contains(&c.account_id))
                .map(|c| c.account_id.clone())
                .collect()
        }
    };
    audience.push(me.id.clone());
    audience.sort();
    audience.dedup();
    let now = app.clock.now_ms();
    let moment = Moment {
        id: app.entropy.id("mom_"),
        author: me.public_id.clone(),
        author_display_name: me.display_name.clone(),
        text: text.clone(),
        media: req.media.clone(),
        at: to_datetime(now),
        likes: Vec::new(),
        comments: Vec::new(),
    };
    let encoded = Encoded::new(&EventBody::MomentNew(Box::new(moment.clone())))?;
    let events: Vec<_> = audience.iter().map(|a| encoded.to(a.as_str())).collect();
    let row = MomentRow {
        id: moment.id.clone(),
        author_id: me.id.clone(),
        author_public_id: me.public_id.clone(),
        author_display_name: me.display_name.clone(),
        idempotency_key: key.to_string(),
        text,
        media: serde_json::to_string(&req.media).map_err(Error::internal)?,
        created_at: now,
    };
    match app.store.moment_post(&row, &audience, &events).await {
        Ok(appended) => {
            app.hub.publish(&appended);
            Ok((StatusCode::CREATED, Json(moment)))
        }
        Err(StoreError::Duplicate) => {
            let existing = app
                .store
                .moment_by_key(&me.id, key)
                .await?
                .ok_or_else(|| Error::internal("post vanished after a duplicate insert"))?;
            Ok((
                StatusCode::CREATED,
                Json(replay(existing, &row.text, &req.media)?),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// One page of the posts `viewer` may see (only `author`'s when given), newest first.
async fn listing(
    app: &App,
    viewer: &str,
    author: Option<&str>,
    q: &FeedQuery,
) -> Result<Json<Feed>> {
    let limit = q.limit.unwrap_or(20);
    if !(1..=50).contains(&limit) {
        return Err(Error::invalid_request("limit is 1 to 50"));
    }
    let rows = app
        .store
        .moments_for(viewer, author, q.before.as_deref().map(str::trim), limit)
        .await?;
    let posts = views(app, viewer, rows).await?;
    let next_before = (posts.len() as i64 == limit)
        .then(|| posts.last().map(|p| p.id.clone()))
        .flatten();
    Ok(Json(Feed { posts, next_before }))
}

/// Your feed: your posts and your contacts' that you may see, newest first
#[utoipa::path(get, path = "/v1/moments/feed", tag = "moments", security(("bearer" = [])),
    params(FeedQuery),
    responses((status = 200, body = Feed),
              (status = 400, description = "invalid_request (limit)", body = switchboard_protocol::ErrorBody)))]
pub async fn feed(
    State(app): State<App>,
    auth: Auth,
    Query(q): Query<FeedQuery>,
) -> Result<Json<Feed>> {
    listing(&app, &auth.account.id, None, &q).await
}

/// One account's posts that you may see, newest first
#[utoipa::path(get, path = "/v1/users/{public_id}/moments", tag = "moments", security(("bearer" = [])),
    params(("public_id" = String, Path), FeedQuery),
    responses((status = 200, body = Feed),
              (status = 404, description = "user_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn of_user(
    State(app): State<App>,
    auth: Auth,
    Path(public_id): Path<String>,
    Query(q): Query<FeedQuery>,
) -> Result<Json<Feed>> {
    let author = find_user(&app, &public_id).await?;
    listing(&app, &auth.account.id, Some(&author.id), &q).await
}

/// Delete your post (its likes and comments go with it, from every feed)
#[utoipa::path(delete, path = "/v1/moments/{id}", tag = "moments", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 204),
              (status = 404, description = "moment_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn delete(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    if !app
        .store
        .moment_delete(id.trim(), &auth.account.id, app.clock.now_ms())
        .await?
    {
        return Err(moment_not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Like a post you may see (once)
#[utoipa::path(post, path = "/v1/moments/{id}/likes", tag = "moments", security(("bearer" = [])),
    params(("id" = String, Path)),
    responses((status = 201, body = Like),
              (status = 404, description = "moment_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "already_liked", body = switchboard_protocol::ErrorBody)))]
pub async fn like(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Like>)> {
    let me = &auth.account;
    let post = app
        .store
        .moment_for(id.trim(), &me.id)
        .await?
        .ok_or_else(moment_not_found)?;
    let now = app.clock.now_ms();
    let like = Like {
        author: me.public_id.clone(),
        author_display_name: me.display_name.clone(),
        at: to_datetime(now),
    };
    let encoded = Encoded::new(&EventBody::MomentLike(MomentLiked {
        moment_id: post.id.clone(),
        post_author: post.author_public_id.clone(),
        like: like.clone(),
    }))?;
    match app
        .store
        .moment_react(&post.id, &me.id, &Reaction::Like, now, &|readers| {
            Ok(readers.iter().map(|a| encoded.to(a.as_str())).collect())
        })
        .await
    {
        Ok(events) => {
            app.hub.publish(&events);
            Ok((StatusCode::CREATED, Json(like)))
        }
        Err(StoreError::Duplicate) => Err(Error::new(
            ErrorCode::AlreadyLiked,
            "you like this post already",
        )),
        Err(StoreError::NoMoment) => Err(moment_not_found()),
        Err(e) => Err(e.into()),
    }
}

/// Comment on a post you may see (optionally answering a comment)
#[utoipa::path(post, path = "/v1/moments/{id}/comments", tag = "moments", security(("bearer" = [])),
    params(("id" = String, Path)),
    request_body = NewComment,
    responses((status = 201, body = Comment),
              (status = 400, description = "invalid_moment", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "moment_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn comment(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<NewComment>,
) -> Result<(StatusCode, Json<Comment>)> {
    let me = &auth.account;
    let text = switchboard_service::text::check_shown_lines(
        &req.text,
        "a comment",
        1,
        COMMENT_TEXT_MAX,
        ErrorCode::InvalidMoment,
    )?;
    let post = app
        .store
        .moment_for(id.trim(), &me.id)
        .await?
        .ok_or_else(moment_not_found)?;
    let now = app.clock.now_ms();
    let comment = Comment {
        id: app.entropy.id("cmt_"),
        author: me.public_id.clone(),
        author_display_name: me.display_name.clone(),
        text: text.clone(),
        reply_to: req.reply_to.clone(),
        at: to_datetime(now),
    };
    let encoded = Encoded::new(&EventBody::MomentComment(Box::new(MomentCommented {
        moment_id: post.id.clone(),
        post_author: post.author_public_id.clone(),
        comment: comment.clone(),
    })))?;
    let reaction = Reaction::Comment {
        id: &comment.id,
        text: &text,
        reply_to: req.reply_to.as_deref(),
    };
    match app
        .store
        .moment_react(&post.id, &me.id, &reaction, now, &|readers| {
            Ok(readers.iter().map(|a| encoded.to(a.as_str())).collect())
        })
        .await
    {
        Ok(events) => {
            app.hub.publish(&events);
            Ok((StatusCode::CREATED, Json(comment)))
        }
        Err(StoreError::NoMoment) => Err(moment_not_found()),
        Err(e) => Err(e.into()),
    }
}
