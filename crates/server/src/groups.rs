//! Group chats: created from the creator's contacts, at most 500 members; any member may add
//! their own contacts, anyone may leave, and the owner may remove others. Each change is one
//! `group.joined` / `group.left` event in every affected member's log.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use switchboard_protocol::ErrorCode;
use switchboard_protocol::events::EventBody;
use switchboard_protocol::messaging::{
    AddMembers, Group, GroupChange, GroupList, GroupMember, NewGroup,
};

use crate::auth::Auth;
use crate::contacts::find_user;
use crate::error::{Error, Json, Path, Result};
use crate::hub::new_events;
use crate::limits::Budget;
use crate::state::App;
use switchboard_service::clock::{EntropyExt, to_datetime};
use switchboard_store::{AccountRow, GroupRow, MemberRow};

pub const MAX_MEMBERS: u32 = 500;

fn group_not_found() -> Error {
    Error::new(
        ErrorCode::GroupNotFound,
        "no such group, or you are not in it",
    )
}

/// Every member sees the name in their chat list: the same rule as a display name.
fn check_name(name: &str) -> Result<String> {
    switchboard_service::text::check_shown(name, "a group name", 1, 64, ErrorCode::InvalidGroupName)
        .map_err(Error::from)
}

fn view(group: &GroupRow, members: &[MemberRow]) -> Group {
    Group {
        id: group.id.clone(),
        name: group.name.clone(),
        owner: members
            .iter()
            .find(|m| m.account_id == group.owner_id)
            .map(|m| m.public_id.clone())
            .unwrap_or_default(),
        members: members
            .iter()
            .map(|m| GroupMember {
                public_id: m.public_id.clone(),
                display_name: m.display_name.clone(),
                joined_at: to_datetime(m.joined_at),
            })
            .collect(),
        created_at: to_datetime(group.created_at),
    }
}

/// The group and its members, if `account` is one of them.
pub async fn load_as_member(
    app: &App,
    id: &str,
    account: &str,
) -> Result<(GroupRow, Vec<MemberRow>)> {
    let group = app
        .store
        .group_by_id(id)
        .await?
        .ok_or_else(group_not_found)?;
    let members = app.store.group_members(id).await?;
    if !members.iter().any(|m| m.account_id == account) {
        return Err(group_not_found());
    }
    Ok((group, members))
}

/// Resolves public IDs to accounts that are all contacts of `me` (duplicates dropped).
async fn contacts_among(
    app: &App,
    me: &AccountRow,
    public_ids: &[String],
) -> Result<Vec<AccountRow>> {
    if public_ids.len() > MAX_MEMBERS as usize {
        return Err(Error::new(
            ErrorCode::GroupTooLarge,
            "a group has at most 500 members",
        ));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for pid in public_ids {
        let user = find_user(app, pid).await?;
        if user.id == me.id || !seen.insert(user.id.clone()) {
            continue;
        }
        if !app.store.are_contacts(&me.id, &user.id).await? {
            return Err(Error::new(
                ErrorCode::NotAContact,
                format!("{} is not one of your contacts", user.public_id),
            ));
        }
        out.push(user);
    }
    Ok(out)
}

/// Create a group with some of your contacts
#[utoipa::path(post, path = "/v1/groups", tag = "groups", security(("bearer" = [])), request_body = NewGroup,
    responses((status = 201, body = Group),
              (status = 400, description = "invalid_group_name", body = switchboard_protocol::ErrorBody),
              (status = 403, description = "not_a_contact", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "user_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "group_too_large", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "rate_limited (limits.group_fanout_per_minute), with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn create(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<NewGroup>,
) -> Result<(StatusCode, Json<Group>)> {
    let name = check_name(&req.name)?;
    let invited = contacts_among(&app, &auth.account, &req.members).await?;
    if invited.len() + 1 > MAX_MEMBERS as usize {
        return Err(Error::new(
            ErrorCode::GroupTooLarge,
            "a group has at most 500 members",
        ));
    }
    let group = GroupRow {
        id: app.entropy.id("g_"),
        name,
        owner_id: auth.account.id.clone(),
        created_at: app.clock.now_ms(),
    };
    let mut member_ids = vec![auth.account.id.clone()];
    member_ids.extend(invited.iter().map(|a| a.id.clone()));
    let change = GroupChange {
        group_id: group.id.clone(),
        group_name: group.name.clone(),
        public_ids: std::iter::once(&auth.account)
            .chain(&invited)
            .map(|a| a.public_id.clone())
            .collect(),
        by: Some(auth.account.public_id.clone()),
    };
    let events = new_events(&member_ids, &EventBody::GroupJoined(change))?;
    crate::limits::take(&app, &auth.account.id, Budget::GroupFanout, events.len()).await?;
    let appended = app.store.group_create(&group, &member_ids, &events).await?;
    app.hub.publish(&appended);
    let members = app.store.group_members(&group.id).await?;
    Ok((StatusCode::CREATED, Json(view(&group, &members))))
}

/// A group you are in
#[utoipa::path(get, path = "/v1/groups/{id}", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "group id (g_…)")),
    responses((status = 200, body = Group),
              (status = 404, description = "group_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn get(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Group>> {
    let (group, members) = load_as_member(&app, &id, &auth.account.id).await?;
    Ok(Json(view(&group, &members)))
}

/// The groups you are in
#[utoipa::path(get, path = "/v1/groups", tag = "groups", security(("bearer" = [])),
    responses((status = 200, body = GroupList)))]
pub async fn list(State(app): State<App>, auth: Auth) -> Result<Json<GroupList>> {
    let mut groups = Vec::new();
    for g in app.store.groups_of(&auth.account.id).await? {
        let members = app.store.group_members(&g.id).await?;
        groups.push(view(&g, &members));
    }
    Ok(Json(GroupList { groups }))
}

/// Add some of your contacts to a group you are in
#[utoipa::path(post, path = "/v1/groups/{id}/members", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "group id")), request_body = AddMembers,
    responses((status = 200, body = Group),
              (status = 403, description = "not_a_contact", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "group_not_found, user_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "group_too_large", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "rate_limited (limits.group_fanout_per_minute), with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn add_members(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<AddMembers>,
) -> Result<Json<Group>> {
    let (group, members) = load_as_member(&app, &id, &auth.account.id).await?;
    let added: Vec<AccountRow> = contacts_among(&app, &auth.account, &req.members)
        .await?
        .into_iter()
        .filter(|a| !members.iter().any(|m| m.account_id == a.id))
        .collect();
    if !added.is_empty() {
        let change = GroupChange {
            group_id: group.id.clone(),
            group_name: group.name.clone(),
            public_ids: added.iter().map(|a| a.public_id.clone()).collect(),
            by: Some(auth.account.public_id.clone()),
        };
        let everyone = members
            .iter()
            .map(|m| m.account_id.clone())
            .chain(added.iter().map(|a| a.id.clone()));
        let events = new_events(everyone, &EventBody::GroupJoined(change))?;
        crate::limits::take(&app, &auth.account.id, Budget::GroupFanout, events.len()).await?;
        let ids: Vec<String> = added.iter().map(|a| a.id.clone()).collect();
        let appended = app
            .store
            .group_add_members(&id, &ids, app.clock.now_ms(), MAX_MEMBERS, &events)
            .await?;
        app.hub.publish(&appended);
    }
    let members = app.store.group_members(&id).await?;
    Ok(Json(view(&group, &members)))
}

/// Leave a group, or (as its owner) remove a member
#[utoipa::path(delete, path = "/v1/groups/{id}/members/{public_id}", tag = "groups", security(("bearer" = [])),
    params(("id" = String, Path, description = "group id"), ("public_id" = String, Path, description = "yourself to leave")),
    responses((status = 204),
              (status = 403, description = "not_group_owner", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "group_not_found, user_not_found", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "rate_limited (limits.group_fanout_per_minute; removing others, never leaving), with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn remove_member(
    State(app): State<App>,
    auth: Auth,
    Path((id, public_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let (group, members) = load_as_member(&app, &id, &auth.account.id).await?;
    let target = members
        .iter()
        .find(|m| m.public_id.eq_ignore_ascii_case(public_id.trim()))
        .ok_or_else(|| {
            Error::new(
                ErrorCode::UserNotFound,
                "no member of this group has that public ID",
            )
        })?;
    let leaving = target.account_id == auth.account.id;
    if !leaving && group.owner_id != auth.account.id {
        return Err(Error::new(
            ErrorCode::NotGroupOwner,
            "only the group's owner can remove others",
        ));
    }
    // An owner who leaves hands the group to the member who has been in it longest.
    let new_owner = (target.account_id == group.owner_id)
        .then(|| members.iter().find(|m| m.account_id != target.account_id))
        .flatten()
        .map(|m| m.account_id.as_str());
    let change = GroupChange {
        group_id: group.id.clone(),
        group_name: group.name.clone(),
        public_ids: vec![target.public_id.clone()],
        by: (!leaving).then(|| auth.account.public_id.clone()),
    };
    let events = new_events(
        members.iter().map(|m| m.account_id.as_str()),
        &EventBody::GroupLeft(change),
    )?;
    // Removing others fans out like adding them; leaving is never held back.
    if !leaving {
        crate::limits::take(&app, &auth.account.id, Budget::GroupFanout, events.len()).await?;
    }
    let appended = app
        .store
        .group_remove_member(
            &id,
            &target.account_id,
            new_owner,
            app.clock.now_ms(),
            &events,
        )
        .await?;
    app.hub.publish(&appended);
    Ok(StatusCode::NO_CONTENT)
}
