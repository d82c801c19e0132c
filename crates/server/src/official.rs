//! Official accounts, the public platform (SPEC §1.5): created by an account with a verified
//! real name (its owner), operated by several accounts each with its own session and a role,
//! followed by customers, publishing articles to every follower and answering customers as
//! the official account, by hand or through an API key.
//!
//! Roles are decided twice: here, to answer a refused request clearly before any work, and
//! again inside the store step that writes, under the official account's lock, so a removal
//! or a revocation that commits first is never outrun by a request already past the first
//! check (SPEC: removing an operator ends their access at once).

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use switchboard_protocol::ErrorCode;
use switchboard_protocol::events::EventBody;
use switchboard_protocol::messaging::{Message, SendMessage};
use switchboard_protocol::official::{
    ARTICLE_BODY_MAX, AddOperator, ApiKeyCreated, ApiKeyInfo, ApiKeyList, Article, ArticleList,
    ArticleQuery, ConversationClaimed, CustomerConversation, CustomerConversationList, NewApiKey,
    NewArticle, NewOfficialAccount, OfficialAccount, OfficialAccountList, OfficialListQuery,
    OfficialMessage, OfficialRole, Operator, OperatorChange, OperatorList, RemoveOperatorQuery,
    Responder,
};

use crate::auth::{Auth, token_hash};
use crate::contacts::find_user;
use crate::error::{Error, Json, Path, Query, Result};
use crate::hub::{Encoded, new_events};
use crate::limits::Budget;
use crate::state::App;
use switchboard_service::clock::{EntropyExt, Millis, to_datetime};
use switchboard_store::{
    AccountRow, ApiKeyRow, ArticleRow, Claim, CustomerConversationRow, OfficialMessageRow,
    OfficialRow, OfficialSend, OfficialView, OperatorLimits, OperatorRow, Sender, StoreError,
};

/// What an API key starts with, so the service (and a secret scanner) tells it from a session
/// token at a glance.
pub const API_KEY_PREFIX: &str = "sbk_";

/// A claim lapses this long after it was taken or its holder last answered.
pub const CLAIM_MS: Millis = 30 * 60 * 1000;

const NAME_MAX: usize = 64;
const DESCRIPTION_MAX: usize = 500;
const TITLE_MAX: usize = 128;
const IDEMPOTENCY_KEY_MAX: usize = 128;

/// Avatar colours, picked from the id so an official account keeps its colour everywhere.
const COLORS: [&str; 8] = [
    "#d9480f", "#2b8a3e", "#1864ab", "#862e9c", "#c2255c", "#087f5b", "#5f3dc4", "#e67700",
];

fn not_found() -> Error {
    Error::new(ErrorCode::OfficialNotFound, "no such official account")
}

fn forbidden(what: &str) -> Error {
    Error::new(
        ErrorCode::OfficialForbidden,
        format!("your role on this official account does not allow {what}"),
    )
}

/// The caller of a route an API key may use too: a signed-in account, or a key (already
/// charged against its per-minute budget). One per request and short-lived, so the size
/// of its larger variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Caller {
    Session(Auth),
    Key(ApiKeyRow),
}

impl Caller {
    /// The signed-in account, for what only a person may do.
    pub fn session(self, what: &str) -> Result<Auth> {
        match self {
            Caller::Session(auth) => Ok(auth),
            Caller::Key(_) => Err(Error::new(
                ErrorCode::OfficialForbidden,
                format!("an API key cannot {what}; it acts only as its official account"),
            )),
        }
    }
}

impl FromRequestParts<App> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let key = crate::auth::bearer(parts).filter(|t| t.starts_with(API_KEY_PREFIX));
        let Some(key) = key else {
            return Auth::from_request_parts(parts, app)
                .await
                .map(Caller::Session);
        };
        let row = app
            .store
            .api_key_by_hash(&token_hash(key))
            .await?
            .filter(|k| k.revoked_at.is_none())
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::Unauthorized,
                    "this API key is unknown or was revoked",
                )
            })?;
        crate::limits::take(app, &row.id, Budget::OfficialApi, 1).await?;
        Ok(Caller::Key(row))
    }
}

/// Who acts for an official account in this request, with the role that decides what it may.
struct Acting {
    official: OfficialRow,
    role: OfficialRole,
    /// An operator's account, or a key.
    who: Who,
}

enum Who {
    Operator(AccountRow),
    Key(ApiKeyRow),
}

impl Acting {
    fn sender(&self) -> Sender<'_> {
        match &self.who {
            Who::Operator(a) => Sender::Operator(&a.id),
            Who::Key(k) => Sender::Key(&k.id),
        }
    }

    /// How the store records who did it: an account id, or `key:<id>`.
    fn actor(&self) -> String {
        match &self.who {
            Who::Operator(a) => a.id.clone(),
            Who::Key(k) => format!("key:{}", k.id),
        }
    }

    fn responder(&self) -> Responder {
        match &self.who {
            Who::Operator(a) => Responder::Operator {
                public_id: a.public_id.clone(),
                display_name: a.display_name.clone(),
            },
            Who::Key(k) => Responder::ApiKey {
                key_id: k.id.clone(),
                name: k.name.clone(),
            },
        }
    }
}

fn role(stored: &str) -> Result<OfficialRole> {
    OfficialRole::parse(stored)
        .ok_or_else(|| Error::internal(format!("unknown operator role {stored:?} in the store")))
}

async fn official(app: &App, id: &str) -> Result<OfficialRow> {
    app.store
        .official_by_id(id.trim())
        .await?
        .ok_or_else(not_found)
}

/// The caller acting for official account `id`: an operator (any role) or one of its keys.
async fn acting(app: &App, caller: Caller, id: &str) -> Result<Acting> {
    let official = official(app, id).await?;
    match caller {
        Caller::Session(auth) => {
            let view = app
                .store
                .official_view(&official.id, &auth.account.id)
                .await?
                .ok_or_else(not_found)?;
            let role = view.role.as_deref().map(role).transpose()?.ok_or_else(|| {
                Error::new(
                    ErrorCode::OfficialForbidden,
                    "you do not operate this official account",
                )
            })?;
            Ok(Acting {
                official,
                role,
                who: Who::Operator(auth.account),
            })
        }
        Caller::Key(key) => {
            if key.official_id != official.id {
                return Err(Error::new(
                    ErrorCode::OfficialForbidden,
                    "this API key belongs to another official account",
                ));
            }
            Ok(Acting {
                official,
                role: role(&key.role)?,
                who: Who::Key(key),
            })
        }
    }
}

fn public_view(v: OfficialView) -> Result<OfficialAccount> {
    Ok(OfficialAccount {
        id: v.official.id,
        name: v.official.name,
        description: v.official.description,
        color: v.official.color,
        followers: v.official.followers,
        role: v.role.as_deref().map(role).transpose()?,
        following: v.following,
    })
}

fn operator_view(o: OperatorRow) -> Result<Operator> {
    Ok(Operator {
        role: role(&o.role)?,
        public_id: o.public_id,
        display_name: o.display_name,
        added_at: to_datetime(o.added_at),
    })
}

fn key_view(k: &ApiKeyRow) -> Result<ApiKeyInfo> {
    Ok(ApiKeyInfo {
        id: k.id.clone(),
        name: k.name.clone(),
        role: role(&k.role)?,
        created_by: k.creator_public_id.clone(),
        created_at: to_datetime(k.created_at),
    })
}

fn conversation_view(c: CustomerConversationRow) -> Result<CustomerConversation> {
    let last_message: Message = serde_json::from_str(&c.last_message).map_err(Error::internal)?;
    Ok(CustomerConversation {
        official_id: c.official_id,
        customer: c.customer_public_id,
        customer_display_name: c.customer_display_name,
        last_message,
        unanswered: c.unanswered,
        claimed_by: c.claim.as_ref().map(|(_, p, _)| p.clone()),
        claim_expires_at: c.claim.map(|(_, _, until)| to_datetime(until)),
    })
}

fn limits(app: &App) -> OperatorLimits {
    OperatorLimits {
        max_operators: app.config.official.max_operators,
        max_per_operator: app.config.official.max_per_operator,
    }
}

/// Create an official account (you become its owner)
#[utoipa::path(post, path = "/v1/official-accounts", tag = "official accounts", security(("bearer" = [])),
    request_body = NewOfficialAccount,
    responses((status = 201, body = OfficialAccount),
              (status = 400, description = "invalid_official_account", body = switchboard_protocol::ErrorBody),
              (status = 403, description = "identity_unverified", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "official_limit (official.max_per_operator), official_name_taken (this name or a lookalike is another's)", body = switchboard_protocol::ErrorBody)))]
pub async fn create(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<NewOfficialAccount>,
) -> Result<(StatusCode, Json<OfficialAccount>)> {
    let name = switchboard_service::text::check_shown(
        &req.name,
        "an official account's name",
        1,
        NAME_MAX,
        ErrorCode::InvalidOfficialAccount,
    )?;
    let description = switchboard_service::text::check_shown(
        &req.description,
        "an official account's description",
        0,
        DESCRIPTION_MAX,
        ErrorCode::InvalidOfficialAccount,
    )?;
    if auth.account.identity_verified_at.is_none() {
        return Err(Error::new(
            ErrorCode::IdentityUnverified,
            "verify your real name (POST /v1/me/identity) before creating an official account",
        ));
    }
    let id = app.entropy.id("o_");
    let color = COLORS[id.bytes().map(usize::from).sum::<usize>() % COLORS.len()].to_string();
    let row = OfficialRow {
        id,
        name,
        description,
        color,
        owner_id: auth.account.id.clone(),
        created_at: app.clock.now_ms(),
        followers: 0,
    };
    let created = Encoded::new(&EventBody::OfficialOperatorAdded(OperatorChange {
        official_id: row.id.clone(),
        official_name: row.name.clone(),
        public_id: auth.account.public_id.clone(),
        role: OfficialRole::Owner,
        by: auth.account.public_id.clone(),
    }))?;
    let appended = app
        .store
        .official_create(
            &row,
            // Customers see only the name: none may look like another's.
            &switchboard_service::text::lookalike_key(&row.name),
            app.config.official.max_per_operator,
            &[created.to(auth.account.id.as_str())],
        )
        .await?;
    app.hub.publish(&appended);
    Ok((
        StatusCode::CREATED,
        Json(OfficialAccount {
            id: row.id,
            name: row.name,
            description: row.description,
            color: row.color,
            followers: 0,
            role: Some(OfficialRole::Owner),
            following: false,
        }),
    ))
}

/// The official accounts you operate (`mine=true`), or operate or follow
#[utoipa::path(get, path = "/v1/official-accounts", tag = "official accounts", security(("bearer" = [])),
    params(OfficialListQuery),
    responses((status = 200, body = OfficialAccountList)))]
pub async fn list(
    State(app): State<App>,
    auth: Auth,
    Query(q): Query<OfficialListQuery>,
) -> Result<Json<OfficialAccountList>> {
    let rows = app.store.officials_of(&auth.account.id, !q.mine).await?;
    Ok(Json(OfficialAccountList {
        official_accounts: rows.into_iter().map(public_view).collect::<Result<_>>()?,
    }))
}

/// An official account (with your role, if you operate it)
#[utoipa::path(get, path = "/v1/official-accounts/{id}", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…")),
    responses((status = 200, body = OfficialAccount),
              (status = 404, description = "official_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn get(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<OfficialAccount>> {
    // A key sees its own official account only, with the key's role.
    let (viewer, key_role) = match caller {
        Caller::Session(auth) => (auth.account.id, None),
        key @ Caller::Key(_) => (String::new(), Some(acting(&app, key, &id).await?.role)),
    };
    let view = app
        .store
        .official_view(id.trim(), &viewer)
        .await?
        .ok_or_else(not_found)?;
    let mut out = public_view(view)?;
    if key_role.is_some() {
        out.role = key_role;
    }
    Ok(Json(out))
}

/// Add an operator, or change an operator's role (owner and admins)
#[utoipa::path(post, path = "/v1/official-accounts/{id}/operators", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…")),
    request_body = AddOperator,
    responses((status = 201, body = Operator),
              (status = 400, description = "invalid_request (role owner)", body = switchboard_protocol::ErrorBody),
              (status = 403, description = "official_forbidden", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "official_not_found, user_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "official_limit (official.max_operators, official.max_per_operator)", body = switchboard_protocol::ErrorBody)))]
pub async fn add_operator(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<AddOperator>,
) -> Result<(StatusCode, Json<Operator>)> {
    let by = auth.account.public_id.clone();
    let acting = acting(&app, Caller::Session(auth), &id).await?;
    if !acting.role.manages() {
        return Err(forbidden("adding operators"));
    }
    if req.role == OfficialRole::Owner {
        return Err(Error::invalid_request(
            "an official account has one owner; add an admin, an editor or a support operator",
        ));
    }
    let user = find_user(&app, &req.public_id).await?;
    if user.id == acting.official.owner_id {
        return Err(forbidden("changing the owner's role"));
    }
    let encoded = Encoded::new(&EventBody::OfficialOperatorAdded(OperatorChange {
        official_id: acting.official.id.clone(),
        official_name: acting.official.name.clone(),
        public_id: user.public_id.clone(),
        role: req.role,
        by,
    }))?;
    let now = app.clock.now_ms();
    let appended = app
        .store
        .official_operator_set(
            &acting.official.id,
            &acting.actor(),
            &user.id,
            req.role.as_str(),
            now,
            limits(&app),
            &|operators| Ok(operators.iter().map(|a| encoded.to(a.as_str())).collect()),
        )
        .await?;
    app.hub.publish(&appended);
    Ok((
        StatusCode::CREATED,
        Json(Operator {
            public_id: user.public_id,
            display_name: user.display_name,
            role: req.role,
            added_at: to_datetime(now),
        }),
    ))
}

/// The operators of an official account (operators only)
#[utoipa::path(get, path = "/v1/official-accounts/{id}/operators", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…")),
    responses((status = 200, body = OperatorList),
              (status = 403, description = "official_forbidden", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "official_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn list_operators(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<OperatorList>> {
    let acting = acting(&app, Caller::Session(auth), &id).await?;
    let rows = app.store.official_operators(&acting.official.id).await?;
    Ok(Json(OperatorList {
        operators: rows.into_iter().map(operator_view).collect::<Result<_>>()?,
    }))
}

/// Remove an operator (owner and admins; anyone may leave); effective at once
#[utoipa::path(delete, path = "/v1/official-accounts/{id}/operators/{public_id}", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…"), ("public_id" = String, Path), RemoveOperatorQuery),
    responses((status = 204),
              (status = 403, description = "official_forbidden (the owner cannot be removed)", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "official_not_found, operator_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn remove_operator(
    State(app): State<App>,
    auth: Auth,
    Path((id, public_id)): Path<(String, String)>,
    Query(q): Query<RemoveOperatorQuery>,
) -> Result<StatusCode> {
    let acting = acting(&app, Caller::Session(auth), &id).await?;
    let operator_not_found = || {
        Error::new(
            ErrorCode::OperatorNotFound,
            "that account does not operate this official account",
        )
    };
    let user = find_user(&app, &public_id)
        .await
        .map_err(|_| operator_not_found())?;
    let Who::Operator(me) = &acting.who else {
        return Err(forbidden("removing operators"));
    };
    if user.id != me.id && !acting.role.manages() {
        return Err(forbidden("removing operators"));
    }
    if user.id == acting.official.owner_id {
        return Err(forbidden("removing the owner"));
    }
    let current = app
        .store
        .official_operators(&acting.official.id)
        .await?
        .into_iter()
        .find(|o| o.account_id == user.id)
        .ok_or_else(operator_not_found)?;
    let encoded = Encoded::new(&EventBody::OfficialOperatorRemoved(OperatorChange {
        official_id: acting.official.id.clone(),
        official_name: acting.official.name.clone(),
        public_id: user.public_id.clone(),
        role: role(&current.role)?,
        by: me.public_id.clone(),
    }))?;
    let removed = app
        .store
        .official_operator_remove(
            &acting.official.id,
            &me.id,
            &user.id,
            q.keep_keys,
            app.clock.now_ms(),
            &|operators| Ok(operators.iter().map(|a| encoded.to(a.as_str())).collect()),
        )
        .await?
        .ok_or_else(operator_not_found)?;
    app.hub.publish(&removed.events);
    Ok(StatusCode::NO_CONTENT)
}

/// Follow an official account
#[utoipa::path(post, path = "/v1/official-accounts/{id}/follow", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…")),
    responses((status = 200, body = OfficialAccount),
              (status = 404, description = "official_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn follow(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<OfficialAccount>> {
    let official = official(&app, &id).await?;
    app.store
        .official_follow(&official.id, &auth.account.id, app.clock.now_ms())
        .await?;
    let view = app
        .store
        .official_view(&official.id, &auth.account.id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(public_view(view)?))
}

/// Stop following an official account
#[utoipa::path(delete, path = "/v1/official-accounts/{id}/follow", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…")),
    responses((status = 204),
              (status = 404, description = "official_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn unfollow(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let official = official(&app, &id).await?;
    app.store
        .official_unfollow(&official.id, &auth.account.id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn article_view(row: &ArticleRow) -> Result<Article> {
    serde_json::from_str(&row.data).map_err(Error::internal)
}

/// The answer to a publish whose idempotency key was used: the same article, or a conflict.
fn replay_article(existing: &ArticleRow, title: &str, body: &str) -> Result<Article> {
    if existing.title != title || existing.body != body {
        return Err(Error::new(
            ErrorCode::IdempotencyConflict,
            "this idempotency_key was used for a different article; make a new one",
        ));
    }
    article_view(existing)
}

/// Publish an article to every follower (editors, admins, the owner, or a key with such a role)
#[utoipa::path(post, path = "/v1/official-accounts/{id}/articles", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…")),
    request_body = NewArticle,
    responses((status = 201, description = "published (or, for a retried idempotency_key, published before)", body = Article),
              (status = 400, description = "invalid_article, invalid_request (idempotency_key)", body = switchboard_protocol::ErrorBody),
              (status = 403, description = "official_forbidden", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "official_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "idempotency_conflict", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "rate_limited (an API key over official.api_per_minute), with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn publish(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<NewArticle>,
) -> Result<(StatusCode, Json<Article>)> {
    let acting = acting(&app, caller, &id).await?;
    if !acting.role.publishes() {
        return Err(forbidden("publishing articles"));
    }
    let title = switchboard_service::text::check_shown(
        &req.title,
        "an article's title",
        1,
        TITLE_MAX,
        ErrorCode::InvalidArticle,
    )?;
    let chars = req.body.chars().count();
    if req.body.trim().is_empty() || chars > ARTICLE_BODY_MAX {
        return Err(Error::new(
            ErrorCode::InvalidArticle,
            format!("an article's body has 1 to {ARTICLE_BODY_MAX} characters"),
        ));
    }
    let key = req.idempotency_key.trim();
    if key.is_empty() || key.chars().count() > IDEMPOTENCY_KEY_MAX {
        return Err(Error::invalid_request(format!(
            "idempotency_key has 1 to {IDEMPOTENCY_KEY_MAX} characters"
        )));
    }
    if let Some(existing) = app.store.article_by_key(&acting.official.id, key).await? {
        return Ok((
            StatusCode::CREATED,
            Json(replay_article(&existing, &title, &req.body)?),
        ));
    }
    let now = app.clock.now_ms();
    let article = Article {
        id: app.entropy.id("art_"),
        official_id: acting.official.id.clone(),
        official_name: acting.official.name.clone(),
        title: title.clone(),
        body: req.body.clone(),
        published_at: to_datetime(now),
    };
    let encoded = Encoded::new(&EventBody::ArticleNew(article.clone()))?;
    let row = ArticleRow {
        id: article.id.clone(),
        official_id: acting.official.id.clone(),
        author: acting.actor(),
        idempotency_key: key.to_string(),
        title,
        body: req.body.clone(),
        published_at: now,
        data: encoded.data.clone(),
    };
    match app
        .store
        .article_publish(&row, acting.sender(), &|followers| {
            Ok(followers.iter().map(|a| encoded.to(a.as_str())).collect())
        })
        .await
    {
        Ok(appended) => {
            app.hub.publish(&appended);
            Ok((StatusCode::CREATED, Json(article)))
        }
        // Two tries of one publish raced; the first one won.
        Err(StoreError::Duplicate) => {
            let existing = app
                .store
                .article_by_key(&acting.official.id, key)
                .await?
                .ok_or_else(|| Error::internal("article vanished after a duplicate insert"))?;
            Ok((
                StatusCode::CREATED,
                Json(replay_article(&existing, &row.title, &req.body)?),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// An official account's articles, newest first
#[utoipa::path(get, path = "/v1/official-accounts/{id}/articles", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…"), ArticleQuery),
    responses((status = 200, body = ArticleList),
              (status = 400, description = "invalid_request (limit)", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "official_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn articles(
    State(app): State<App>,
    _auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<ArticleQuery>,
) -> Result<Json<ArticleList>> {
    let official = official(&app, &id).await?;
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(Error::invalid_request("limit is 1 to 100"));
    }
    let rows = app
        .store
        .articles(&official.id, q.before.as_deref().map(str::trim), limit)
        .await?;
    let next_before = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    Ok(Json(ArticleList {
        articles: rows.iter().map(article_view).collect::<Result<_>>()?,
        next_before,
    }))
}

/// Customer conversations (the owner, admins and support, or a key with such a role)
#[utoipa::path(get, path = "/v1/official-accounts/{id}/conversations", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…")),
    responses((status = 200, body = CustomerConversationList),
              (status = 403, description = "official_forbidden", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "official_not_found", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "rate_limited (an API key over official.api_per_minute), with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn conversations(
    State(app): State<App>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CustomerConversationList>> {
    let acting = acting(&app, caller, &id).await?;
    if !acting.role.serves() {
        return Err(forbidden("seeing customer conversations"));
    }
    let rows = app
        .store
        .official_conversations(&acting.official.id, app.clock.now_ms())
        .await?;
    Ok(Json(CustomerConversationList {
        conversations: rows
            .into_iter()
            .map(conversation_view)
            .collect::<Result<_>>()?,
    }))
}

/// Claim a customer conversation: the other operators see who has it; it lapses 30 minutes
/// after the claim or your last answer
#[utoipa::path(post, path = "/v1/official-accounts/{id}/conversations/{public_id}/claim", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…"), ("public_id" = String, Path, description = "the customer")),
    responses((status = 200, body = CustomerConversation),
              (status = 403, description = "official_forbidden", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "official_not_found, conversation_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "conversation_claimed", body = switchboard_protocol::ErrorBody)))]
pub async fn claim(
    State(app): State<App>,
    caller: Caller,
    Path((id, customer)): Path<(String, String)>,
) -> Result<Json<CustomerConversation>> {
    let auth = caller.session("claim a conversation")?;
    let acting = acting(&app, Caller::Session(auth), &id).await?;
    if !acting.role.serves() {
        return Err(forbidden("answering customers"));
    }
    let Who::Operator(me) = &acting.who else {
        return Err(forbidden("answering customers"));
    };
    let no_conversation = || Error::from(StoreError::NoConversation);
    let customer = find_user(&app, &customer)
        .await
        .map_err(|_| no_conversation())?;
    let now = app.clock.now_ms();
    let encoded = Encoded::new(&EventBody::OfficialClaimed(ConversationClaimed {
        official_id: acting.official.id.clone(),
        customer: customer.public_id.clone(),
        claimed_by: me.public_id.clone(),
        expires_at: to_datetime(now + CLAIM_MS),
    }))?;
    match app
        .store
        .official_claim(
            &acting.official.id,
            &customer.id,
            &me.id,
            now,
            CLAIM_MS,
            &|serving| Ok(serving.iter().map(|a| encoded.to(a.as_str())).collect()),
        )
        .await?
    {
        Claim::Claimed { events, .. } => app.hub.publish(&events),
        Claim::Held { by, until } => return Err(StoreError::ClaimHeld { by, until }.into()),
    }
    let row = app
        .store
        .official_conversation(&acting.official.id, &customer.id, now)
        .await?
        .ok_or_else(no_conversation)?;
    Ok(Json(conversation_view(row)?))
}

/// Make an API key for this official account (owner and admins); the key is shown once
#[utoipa::path(post, path = "/v1/official-accounts/{id}/api-keys", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…")),
    request_body = NewApiKey,
    responses((status = 201, body = ApiKeyCreated),
              (status = 400, description = "invalid_official_account (name), invalid_request (role owner)", body = switchboard_protocol::ErrorBody),
              (status = 403, description = "official_forbidden", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "official_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn create_api_key(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
    Json(req): Json<NewApiKey>,
) -> Result<(StatusCode, Json<ApiKeyCreated>)> {
    let auth_public_id = auth.account.public_id.clone();
    let acting = acting(&app, Caller::Session(auth), &id).await?;
    if !acting.role.manages() {
        return Err(forbidden("making API keys"));
    }
    if req.role == OfficialRole::Owner {
        return Err(Error::invalid_request(
            "a key acts as an admin, an editor or a support operator",
        ));
    }
    let name = switchboard_service::text::check_shown(
        &req.name,
        "a key's name",
        1,
        NAME_MAX,
        ErrorCode::InvalidOfficialAccount,
    )?;
    let key = format!(
        "{API_KEY_PREFIX}{}",
        data_encoding::BASE64URL_NOPAD.encode(&app.entropy.bytes::<32>())
    );
    let row = ApiKeyRow {
        id: app.entropy.id("key_"),
        official_id: acting.official.id.clone(),
        key_hash: token_hash(&key),
        name,
        role: req.role.as_str().to_string(),
        created_by: acting.actor(),
        created_at: app.clock.now_ms(),
        revoked_at: None,
        creator_public_id: auth_public_id,
    };
    app.store.api_key_create(&row).await?;
    Ok((
        StatusCode::CREATED,
        Json(ApiKeyCreated {
            key,
            info: key_view(&row)?,
        }),
    ))
}

/// The live API keys of this official account (owner and admins); never the keys themselves
#[utoipa::path(get, path = "/v1/official-accounts/{id}/api-keys", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…")),
    responses((status = 200, body = ApiKeyList),
              (status = 403, description = "official_forbidden", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "official_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn list_api_keys(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<ApiKeyList>> {
    let acting = acting(&app, Caller::Session(auth), &id).await?;
    if !acting.role.manages() {
        return Err(forbidden("seeing API keys"));
    }
    let rows = app.store.api_keys(&acting.official.id).await?;
    Ok(Json(ApiKeyList {
        api_keys: rows.iter().map(key_view).collect::<Result<_>>()?,
    }))
}

/// Revoke an API key (owner and admins); it stops working at once
#[utoipa::path(delete, path = "/v1/official-accounts/{id}/api-keys/{key_id}", tag = "official accounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "o_…"), ("key_id" = String, Path)),
    responses((status = 204),
              (status = 403, description = "official_forbidden", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "official_not_found, api_key_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn revoke_api_key(
    State(app): State<App>,
    auth: Auth,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let acting = acting(&app, Caller::Session(auth), &id).await?;
    if !acting.role.manages() {
        return Err(forbidden("revoking API keys"));
    }
    if !app
        .store
        .api_key_revoke(
            &acting.official.id,
            &acting.actor(),
            key_id.trim(),
            app.clock.now_ms(),
        )
        .await?
    {
        return Err(Error::new(
            ErrorCode::ApiKeyNotFound,
            "no live API key with that id on this official account",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A message in a customer conversation, sent by either side: `POST /v1/messages` with `to`
/// an official account (a follower writing) or with `from_official` (an answer).
pub async fn send(
    app: &App,
    caller: Caller,
    req: &SendMessage,
    client_id: String,
) -> Result<(StatusCode, Json<Message>)> {
    let now = app.clock.now_ms();
    // Who writes: the customer (`answering` none), or an operator or key answering.
    let (official, customer, answering) = match &req.from_official {
        None => {
            let auth = caller.session("write to an official account")?;
            let official = official(app, &req.to).await?;
            if !app
                .store
                .official_is_follower(&official.id, &auth.account.id)
                .await?
            {
                return Err(Error::new(
                    ErrorCode::NotFollowing,
                    "follow this official account before writing to it",
                ));
            }
            (official, auth.account, None)
        }
        Some(from) => {
            let acting = acting(app, caller, from).await?;
            if !acting.role.serves() {
                return Err(forbidden("answering customers"));
            }
            let customer = find_user(app, &req.to)
                .await
                .map_err(|_| Error::from(StoreError::NoConversation))?;
            (acting.official.clone(), customer, Some(acting))
        }
    };
    let (from, from_display_name, to) = match &answering {
        None => (
            customer.public_id.clone(),
            customer.display_name.clone(),
            official.id.clone(),
        ),
        Some(_) => (
            official.id.clone(),
            official.name.clone(),
            customer.public_id.clone(),
        ),
    };
    let message = Message {
        id: app.entropy.id("m_"),
        client_id: client_id.clone(),
        from,
        from_display_name,
        to,
        body: req.body.clone(),
        media: vec![],
        sent_at: to_datetime(now),
    };
    let actor = answering
        .as_ref()
        .map_or_else(|| customer.id.clone(), Acting::actor);
    let sender = answering.as_ref().map_or(Sender::Customer, Acting::sender);
    let responder = answering.as_ref().map(Acting::responder);
    let encoded = Encoded::new(&EventBody::MessageNew(message.clone()))?;
    let customer_events = [encoded.to(customer.id.as_str())];
    let fanout = |serving: &[String], unanswered: i64| {
        new_events(
            serving.iter().map(String::as_str),
            &EventBody::OfficialMessage(Box::new(OfficialMessage {
                official_id: official.id.clone(),
                official_name: official.name.clone(),
                customer: customer.public_id.clone(),
                message: message.clone(),
                responder: responder.clone(),
                unanswered,
            })),
        )
        .map_err(|e| StoreError::Encoding(e.0.message))
    };
    // A person's messages count against their budget; a key's are charged per request.
    let charges: Vec<_> = match sender {
        Sender::Key(_) => Vec::new(),
        _ => vec![crate::limits::charge(app, &actor, Budget::Messages, 1)],
    };
    let row = OfficialMessageRow {
        id: message.id.clone(),
        official_id: official.id.clone(),
        customer_id: customer.id.clone(),
        actor: actor.clone(),
        client_id: client_id.clone(),
        body: req.body.clone(),
        sent_at: now,
        data: encoded.data.clone(),
    };
    let send = OfficialSend {
        row: &row,
        sender,
        customer_events: &customer_events,
        fanout: &fanout,
        charges: &charges,
        claim_ms: CLAIM_MS,
    };
    let replay = |existing: OfficialMessageRow| -> Result<(StatusCode, Json<Message>)> {
        if existing.official_id != official.id
            || existing.customer_id != customer.id
            || existing.body != req.body
        {
            return Err(Error::new(
                ErrorCode::IdempotencyConflict,
                "this client_id was used for a different message; make a new one",
            ));
        }
        let message = serde_json::from_str(&existing.data).map_err(Error::internal)?;
        Ok((StatusCode::CREATED, Json(message)))
    };
    match app.store.official_message(&send).await {
        Ok(appended) => {
            app.hub.publish(&appended);
            app.metrics.count("messages_sent_total");
            Ok((StatusCode::CREATED, Json(message)))
        }
        Err(StoreError::Duplicate) => {
            let existing = app
                .store
                .official_message_by_client_id(&actor, &client_id)
                .await?
                .ok_or_else(|| Error::internal("message vanished after a duplicate insert"))?;
            replay(existing)
        }
        Err(StoreError::OverBudget { charge, take }) => {
            match app
                .store
                .official_message_by_client_id(&actor, &client_id)
                .await?
            {
                Some(existing) => replay(existing),
                None => Err(crate::limits::refused(
                    app,
                    Budget::Messages,
                    &charges[charge],
                    take,
                )),
            }
        }
        Err(e) => Err(e.into()),
    }
}
