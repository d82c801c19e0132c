//! Sending messages. A message lands, in the same transaction, in the event log of the sender
//! and of every recipient, so every device of every party learns of it through one mechanism.
//! `client_id` makes sending idempotent: a retry after a lost answer returns the same message.

use axum::extract::State;
use axum::http::StatusCode;
use switchboard_protocol::ErrorCode;
use switchboard_protocol::events::EventBody;
use switchboard_protocol::messaging::{Message, SendMessage, Target};
use switchboard_protocol::moments::MEDIA_PER_ITEM;

use crate::contacts::find_user;
use crate::error::{Error, Json, Result};
use crate::hub::Encoded;
use crate::limits::Budget;
use crate::official::Caller;
use crate::state::App;
use switchboard_service::clock::{EntropyExt, to_datetime};
use switchboard_store::{MessageRow, StoreError};

pub const BODY_MAX: usize = 4096;

fn replay(existing: MessageRow, req: &SendMessage) -> Result<(StatusCode, Json<Message>)> {
    let message: Message = serde_json::from_str(&existing.data).map_err(Error::internal)?;
    if !existing.target.eq_ignore_ascii_case(req.to.trim())
        || existing.body != req.body
        || message.media != req.media
    {
        return Err(Error::new(
            ErrorCode::IdempotencyConflict,
            "this client_id was used for a different message; make a new one",
        ));
    }
    Ok((StatusCode::CREATED, Json(message)))
}

/// Send a message to a contact or a group
#[utoipa::path(post, path = "/v1/messages", tag = "messages", security(("bearer" = [])),
    request_body = SendMessage,
    responses((status = 201, description = "sent (or, for a retried client_id, sent before)", body = Message),
              (status = 400, description = "invalid_message_body, invalid_request (client_id not a UUID)", body = switchboard_protocol::ErrorBody),
              (status = 403, description = "not_a_contact, not_following (to an official account), official_forbidden (from_official)", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "user_not_found, group_not_found, official_not_found, conversation_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "idempotency_conflict, conversation_claimed", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "rate_limited (limits.messages_per_minute, limits.group_fanout_per_minute), with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn send(
    State(app): State<App>,
    caller: Caller,
    Json(req): Json<SendMessage>,
) -> Result<(StatusCode, Json<Message>)> {
    let client_id = uuid::Uuid::parse_str(req.client_id.trim())
        .map_err(|_| Error::invalid_request("client_id must be a UUID made by the client"))?
        .hyphenated()
        .to_string();
    let chars = req.body.chars().count();
    if chars > BODY_MAX || (chars == 0 && req.media.is_empty()) {
        return Err(Error::new(
            ErrorCode::InvalidMessageBody,
            format!("a message has 1 to {BODY_MAX} characters, or images and up to {BODY_MAX}"),
        ));
    }
    if req.media.len() > MEDIA_PER_ITEM {
        return Err(Error::new(
            ErrorCode::InvalidMedia,
            format!("a message carries at most {MEDIA_PER_ITEM} images"),
        ));
    }
    let target = req.to.trim();
    let official =
        req.from_official.is_some() || matches!(Target::parse(target), Target::Official(_));
    if official && !req.media.is_empty() {
        // Customer conversations keep their own store and audience (operators come and go);
        // images there are not offered yet, and are refused rather than dropped.
        return Err(Error::new(
            ErrorCode::InvalidMedia,
            "images go to contacts and groups; an official account's conversation takes text",
        ));
    }
    // An answer as an official account: its operators' rules, its own conversation.
    if req.from_official.is_some() {
        return crate::official::send(&app, caller, &req, client_id).await;
    }
    let auth = caller.session("send personal messages")?;
    let me = &auth.account;
    // Only images the sender may see themselves (their own uploads, or ones shown to them):
    // a message is no way to reach someone else's media id. One answer for "none" and "not
    // yours", as for a fetch.
    for id in &req.media {
        if !app.store.media_visible_to(id, &me.id).await? {
            return Err(Error::new(
                ErrorCode::MediaNotFound,
                format!("no such image, or not one you may send: {id}"),
            ));
        }
    }
    // No read before the insert: the (sender, client_id) key answers retries, so the common
    // case (a new message) costs one write.
    let (to, recipients) = match Target::parse(target) {
        Target::Official(_) => {
            return crate::official::send(&app, Caller::Session(auth), &req, client_id).await;
        }
        Target::Group(group_id) => {
            let (group, members) = crate::groups::load_as_member(&app, &group_id, &me.id).await?;
            (
                group.id,
                members
                    .into_iter()
                    .map(|m| m.account_id)
                    .collect::<Vec<_>>(),
            )
        }
        Target::User(public_id) => {
            let user = find_user(&app, &public_id).await?;
            if !app.store.are_contacts(&me.id, &user.id).await? {
                return Err(Error::new(
                    ErrorCode::NotAContact,
                    "you can message only your contacts; send a contact request first",
                ));
            }
            (user.public_id, vec![me.id.clone(), user.id])
        }
    };

    // The budgets, charged in the message's own transaction (no commit of their own, and a
    // retry that turns out a duplicate costs nothing): every message counts, and a group
    // message counts once per member whose log and devices it reaches.
    let mut budgets = vec![(Budget::Messages, 1)];
    if to.starts_with(switchboard_protocol::messaging::GROUP_ID_PREFIX) {
        budgets.push((Budget::GroupFanout, recipients.len()));
    }
    let charges: Vec<_> = budgets
        .iter()
        .map(|&(b, units)| crate::limits::charge(&app, &me.id, b, units))
        .collect();
    let now = app.clock.now_ms();
    let message = Message {
        id: app.entropy.id("m_"),
        client_id: client_id.clone(),
        from: me.public_id.clone(),
        from_display_name: me.display_name.clone(),
        to: to.clone(),
        body: req.body.clone(),
        media: req.media.clone(),
        sent_at: to_datetime(now),
    };
    // The stored message (answered again to a retry) is the event's payload, text and all.
    let encoded = Encoded::new(&EventBody::MessageNew(message.clone()))?;
    let events: Vec<_> = recipients.into_iter().map(|a| encoded.to(a)).collect();
    let row = MessageRow {
        id: message.id.clone(),
        sender_id: me.id.clone(),
        client_id,
        target: to,
        body: req.body.clone(),
        sent_at: now,
        data: encoded.data,
        media: req.media.clone(),
    };
    match app.store.message_insert(&row, &events, &charges).await {
        Ok(appended) => {
            app.hub.publish(&appended);
            app.metrics.count("messages_sent_total");
            Ok((StatusCode::CREATED, Json(message)))
        }
        // Two retries raced; the first one won. Answer as a retry.
        Err(StoreError::Duplicate) => {
            let existing = app
                .store
                .message_by_client_id(&me.id, &row.client_id)
                .await?
                .ok_or_else(|| Error::internal("message vanished after a duplicate insert"))?;
            replay(existing, &req)
        }
        // Over budget. A retry of a message already sent is answered as sent all the same:
        // the client that timed out must learn that its message went, not that it may not
        // send it.
        Err(StoreError::OverBudget { charge, take }) => {
            match app
                .store
                .message_by_client_id(&me.id, &row.client_id)
                .await?
            {
                Some(existing) => replay(existing, &req),
                None => Err(crate::limits::refused(
                    &app,
                    budgets[charge].0,
                    &charges[charge],
                    take,
                )),
            }
        }
        Err(e) => Err(e.into()),
    }
}
