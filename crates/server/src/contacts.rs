//! Finding users by public ID (never by phone number), friend requests and contacts.

use axum::extract::State;
use axum::http::StatusCode;
use switchboard_protocol::ErrorCode;
use switchboard_protocol::events::EventBody;
use switchboard_protocol::messaging::{
    Contact, ContactList, ContactRequest, ContactRequestList, ContactRequestState,
    NewContactRequest, RequestStatus, UserProfile,
};

use crate::auth::Auth;
use crate::error::{Error, Json, Path, Result};
use crate::hub::new_events;
use crate::state::App;
use switchboard_service::clock::{EntropyExt, to_datetime};
use switchboard_store::{AccountRow, ContactRequestRow};

const NOTE_MAX: usize = 200;

pub fn user_not_found() -> Error {
    Error::new(ErrorCode::UserNotFound, "no one has that public ID")
}

/// The account with this public ID, or `user_not_found`.
pub async fn find_user(app: &App, public_id: &str) -> Result<AccountRow> {
    app.store
        .account_by_public_id(public_id.trim())
        .await?
        .ok_or_else(user_not_found)
}

/// Look up a user by public ID
#[utoipa::path(get, path = "/v1/users/{public_id}", tag = "contacts", security(("bearer" = [])),
    params(("public_id" = String, Path, description = "case-insensitive")),
    responses((status = 200, body = UserProfile),
              (status = 404, description = "user_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn get_user(
    State(app): State<App>,
    auth: Auth,
    Path(public_id): Path<String>,
) -> Result<Json<UserProfile>> {
    let user = find_user(&app, &public_id).await?;
    let is_contact = app.store.are_contacts(&auth.account.id, &user.id).await?;
    Ok(Json(UserProfile {
        public_id: user.public_id,
        display_name: user.display_name,
        is_contact,
    }))
}

fn request_view(row: &ContactRequestRow, from: &AccountRow, to: &AccountRow) -> ContactRequest {
    ContactRequest {
        id: row.id.clone(),
        from: from.public_id.clone(),
        from_display_name: from.display_name.clone(),
        to: to.public_id.clone(),
        to_display_name: to.display_name.clone(),
        note: row.note.clone(),
        status: if row.status == "accepted" {
            RequestStatus::Accepted
        } else {
            RequestStatus::Pending
        },
        created_at: to_datetime(row.created_at),
    }
}

async fn accept(
    app: &App,
    row: ContactRequestRow,
    from: &AccountRow,
    to: &AccountRow,
) -> Result<ContactRequestState> {
    let accepted = ContactRequestRow {
        status: "accepted".into(),
        ..row
    };
    let events = new_events(
        [&from.id, &to.id],
        &EventBody::ContactAccepted(request_view(&accepted, from, to)),
    )?;
    let appended = app
        .store
        .contact_request_accept(&accepted.id, app.clock.now_ms(), &events)
        .await?;
    app.hub.publish(&appended);
    Ok(ContactRequestState {
        id: accepted.id,
        status: RequestStatus::Accepted,
    })
}

/// Send a friend request
///
/// If the other account asked first, this accepts their request instead.
#[utoipa::path(post, path = "/v1/contacts/requests", tag = "contacts", security(("bearer" = [])),
    request_body = NewContactRequest,
    responses((status = 201, body = ContactRequestState),
              (status = 200, description = "the same request was pending already", body = ContactRequestState),
              (status = 400, description = "cannot_add_self, invalid_request (note too long)", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "user_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "already_contacts", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "rate_limited (limits.contact_requests_per_day), with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn create_request(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<NewContactRequest>,
) -> Result<(StatusCode, Json<ContactRequestState>)> {
    // Shown to the other side next to the sender's name, before they decide whom to accept.
    let note = switchboard_service::text::check_shown(
        &req.note,
        "a note",
        0,
        NOTE_MAX,
        ErrorCode::InvalidRequest,
    )?;
    let me = auth.account;
    let them = find_user(&app, &req.public_id).await?;
    if them.id == me.id {
        return Err(Error::new(
            ErrorCode::CannotAddSelf,
            "that is your own public ID",
        ));
    }
    if app.store.are_contacts(&me.id, &them.id).await? {
        return Err(Error::new(
            ErrorCode::AlreadyContacts,
            "you are contacts already",
        ));
    }
    if let Some(theirs) = app.store.contact_request_pending(&them.id, &me.id).await? {
        let state = accept(&app, theirs, &them, &me).await?;
        return Ok((StatusCode::CREATED, Json(state)));
    }
    if let Some(mine) = app.store.contact_request_pending(&me.id, &them.id).await? {
        return Ok((
            StatusCode::OK,
            Json(ContactRequestState {
                id: mine.id,
                status: RequestStatus::Pending,
            }),
        ));
    }
    // Only a request that is new counts: repeating a pending one, or answering theirs, is free.
    crate::limits::take(&app, &me.id, crate::limits::Budget::ContactRequests, 1).await?;
    let row = ContactRequestRow {
        id: app.entropy.id("cr_"),
        from_account: me.id.clone(),
        to_account: them.id.clone(),
        note,
        status: "pending".into(),
        created_at: app.clock.now_ms(),
    };
    let events = new_events(
        [&me.id, &them.id],
        &EventBody::ContactRequest(request_view(&row, &me, &them)),
    )?;
    let appended = app.store.contact_request_insert(&row, &events).await?;
    app.hub.publish(&appended);
    Ok((
        StatusCode::CREATED,
        Json(ContactRequestState {
            id: row.id,
            status: RequestStatus::Pending,
        }),
    ))
}

/// Accept a friend request addressed to this account
#[utoipa::path(post, path = "/v1/contacts/requests/{id}/accept", tag = "contacts", security(("bearer" = [])),
    params(("id" = String, Path, description = "request id")),
    responses((status = 200, body = ContactRequestState),
              (status = 404, description = "request_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn accept_request(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<ContactRequestState>> {
    let not_found = || {
        Error::new(
            ErrorCode::RequestNotFound,
            "no contact request with that id is waiting for you",
        )
    };
    let row = app
        .store
        .contact_request_by_id(&id)
        .await?
        .ok_or_else(not_found)?;
    if row.to_account != auth.account.id {
        return Err(not_found());
    }
    if row.status == "accepted" {
        return Ok(Json(ContactRequestState {
            id: row.id,
            status: RequestStatus::Accepted,
        }));
    }
    let from = app
        .store
        .account_by_id(&row.from_account)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(accept(&app, row, &from, &auth.account).await?))
}

/// Pending friend requests, both ways
#[utoipa::path(get, path = "/v1/contacts/requests", tag = "contacts", security(("bearer" = [])),
    responses((status = 200, body = ContactRequestList)))]
pub async fn list_requests(State(app): State<App>, auth: Auth) -> Result<Json<ContactRequestList>> {
    let rows = app
        .store
        .contact_requests_pending_for(&auth.account.id)
        .await?;
    let mut list = ContactRequestList {
        incoming: Vec::new(),
        outgoing: Vec::new(),
    };
    for row in rows {
        let incoming = row.to_account == auth.account.id;
        let other_id = if incoming {
            &row.from_account
        } else {
            &row.to_account
        };
        let Some(other) = app.store.account_by_id(other_id).await? else {
            continue;
        };
        if incoming {
            list.incoming
                .push(request_view(&row, &other, &auth.account));
        } else {
            list.outgoing
                .push(request_view(&row, &auth.account, &other));
        }
    }
    Ok(Json(list))
}

/// This account's contacts
#[utoipa::path(get, path = "/v1/contacts", tag = "contacts", security(("bearer" = [])),
    responses((status = 200, body = ContactList)))]
pub async fn list_contacts(State(app): State<App>, auth: Auth) -> Result<Json<ContactList>> {
    let contacts = app
        .store
        .contacts_of(&auth.account.id)
        .await?
        .into_iter()
        .map(|c| Contact {
            public_id: c.public_id,
            display_name: c.display_name,
            since: to_datetime(c.since),
        })
        .collect();
    Ok(Json(ContactList { contacts }))
}
