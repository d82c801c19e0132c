//! The wallet: balance and history, top-ups from a funding source, transfers to contacts and
//! red envelopes, over the double-entry ledger of [`crate::store`].
//!
//! Every request that moves money carries an idempotency key. The key, a fingerprint of the
//! request and the first answer are stored in the same transaction as the money, so a retry
//! gets the same answer and never moves money twice; the same key with another request is
//! `idempotency_conflict`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use switchboard_protocol::ErrorCode;
use switchboard_protocol::events::EventBody;
use switchboard_protocol::messaging::Target;
use switchboard_protocol::wallet::{
    Claimed, EnvelopeClaim, EnvelopeClaimed, EnvelopeMode, EnvelopeRefunded, MoneyMoved,
    NewRedEnvelope, RedEnvelope, TopUp, Transaction, TransactionPage, TransactionQuery, Transfer,
    Wallet, WalletMovement,
};

use crate::auth::Auth;
use crate::contacts::find_user;
use crate::error::{Error, Json, Path, Query, Result};
use crate::hub::{Encoded, new_event};
use crate::state::App;
use switchboard_service::clock::{Entropy, EntropyExt, Millis, to_datetime};
use switchboard_store::{
    AccountRow, EnvelopeRow, IdempotencyRecord, LedgerOp, NewEvent, Posted, StoreError, wallet_book,
};

/// The most one top-up or transfer may move: 50,000.00 CNY.
pub const MAX_AMOUNT: i64 = 5_000_000;
/// A red envelope holds at most 200.00 CNY.
pub const MAX_ENVELOPE: i64 = 20_000;
pub const MAX_SHARES: u32 = 100;
pub const ENVELOPE_TTL_MS: Millis = 24 * 3600 * 1000;
const NOTE_MAX: usize = 100;

use switchboard_service::funding::FundingError;

fn invalid_amount(why: &str) -> Error {
    Error::new(
        ErrorCode::InvalidAmount,
        format!("the amount must be {why}"),
    )
}

/// A whole number of fen in `1..=max`, from raw JSON.
pub fn parse_amount(raw: &serde_json::Value, max: i64) -> Result<i64> {
    let serde_json::Value::Number(n) = raw else {
        return Err(invalid_amount("a number of fen (0.01 CNY), not text"));
    };
    let Some(v) = n.as_i64() else {
        return Err(invalid_amount(
            "a whole number of fen (0.01 CNY), within range",
        ));
    };
    if v <= 0 {
        return Err(invalid_amount("more than zero"));
    }
    if v > max {
        return Err(invalid_amount(&format!("at most {max} fen")));
    }
    Ok(v)
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > 100 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid_request(
            "idempotency_key is 1 to 100 visible ASCII characters",
        ));
    }
    Ok(())
}

/// A transfer's note or a red envelope's greeting: shown to the recipient beside the money.
fn check_note(note: &str) -> Result<String> {
    switchboard_service::text::check_shown(note, "a note", 0, NOTE_MAX, ErrorCode::InvalidRequest)
        .map_err(Error::from)
}

fn require_verified(account: &AccountRow) -> Result<()> {
    if account.identity_verified_at.is_none() {
        return Err(Error::new(
            ErrorCode::IdentityUnverified,
            "verify your real name first (POST /v1/me/identity)",
        ));
    }
    Ok(())
}

/// A hash of what a request asks for. The `json!` maps are part of stored fingerprints: their
/// text must not change, or retries after an upgrade would read as `idempotency_conflict`.
fn fingerprint(request: &serde_json::Value) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(request.to_string().as_bytes()))
}

/// A stored answer, sent again as it was.
struct Stored(u16, String);

impl IntoResponse for Stored {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0).unwrap_or(StatusCode::OK);
        (
            status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.1,
        )
            .into_response()
    }
}

/// The earlier answer for this key, if the same request was made before.
async fn replay(app: &App, account: &str, key: &str, fp: &str) -> Result<Option<Stored>> {
    match app.store.idempotent_answer(account, key).await? {
        Some(a) if a.fingerprint == fp => Ok(Some(Stored(a.status, a.response))),
        Some(_) => Err(Error::new(
            ErrorCode::IdempotencyConflict,
            "this idempotency_key was used for a different request; make a new key",
        )),
        None => Ok(None),
    }
}

/// The idempotency record of a request that answers 201 when it succeeds.
fn record(account: &str, key: &str, fingerprint: String) -> IdempotencyRecord {
    IdempotencyRecord {
        account_id: account.to_string(),
        key: key.to_string(),
        fingerprint,
        status: 201,
    }
}

/// What a ledger operation answers and the events it logs, made from what it posted.
type Finished = Result<(String, Vec<NewEvent>)>;

/// Runs a fallible `finish` inside the store's transaction: if building the answer or the
/// events fails, the movement rolls back with it (never a `""` stored in their place).
fn in_store<'a>(
    finish: &'a (dyn Fn(&Posted) -> Finished + Send + Sync),
) -> impl Fn(&Posted) -> switchboard_store::StoreResult<(String, Vec<NewEvent>)> + Send + Sync + 'a
{
    move |p| finish(p).map_err(|e| StoreError::Encoding(e.0.message))
}

/// Runs a money movement once per key: a replay answers as before; a race between two
/// requests with one key is settled by the key's primary key, and the loser replays.
async fn apply_once(
    app: &App,
    record: IdempotencyRecord,
    op: &LedgerOp,
    note: &str,
    finish: &(dyn Fn(&Posted) -> Finished + Send + Sync),
) -> Result<Stored> {
    let (account, key, fp, status) = (
        &record.account_id,
        &record.key,
        &record.fingerprint,
        record.status,
    );
    if let Some(stored) = replay(app, account, key, fp).await? {
        return Ok(stored);
    }
    let journal_id = app.entropy.id("tx_");
    match app
        .store
        .ledger_apply(
            op,
            &journal_id,
            note,
            app.clock.now_ms(),
            Some(&record),
            &in_store(finish),
        )
        .await
    {
        Ok((response, events)) => {
            app.hub.publish(&events);
            Ok(Stored(status, response))
        }
        Err(StoreError::Duplicate) => replay(app, account, key, fp)
            .await?
            .ok_or_else(|| Error::internal("idempotency record vanished")),
        Err(e) => Err(e.into()),
    }
}

/// A `wallet.credit` or `wallet.debit` (`direction`) for `account_id`: its part of `posted`.
fn money_event(
    account_id: &str,
    direction: fn(WalletMovement) -> EventBody,
    posted: &Posted,
    tx_kind: &str,
    amount: i64,
    counterparty: Option<&str>,
    note: &str,
) -> Result<NewEvent> {
    let movement = WalletMovement {
        transaction_id: posted.journal_id.clone(),
        kind: tx_kind.to_string(),
        amount,
        balance: posted.balances.get(&wallet_book(account_id)).copied(),
        counterparty: counterparty.map(str::to_string),
        note: note.to_string(),
    };
    new_event(account_id, &direction(movement))
}

fn answer_json(body: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(body).map_err(Error::internal)
}

/// This account's wallet
#[utoipa::path(get, path = "/v1/wallet", tag = "wallet", security(("bearer" = [])),
    responses((status = 200, body = Wallet)))]
pub async fn get_wallet(State(app): State<App>, auth: Auth) -> Result<Json<Wallet>> {
    let balance = app
        .store
        .book_balance(&wallet_book(&auth.account.id))
        .await?;
    Ok(Json(Wallet {
        balance,
        currency: "CNY".into(),
        verified: auth.account.identity_verified_at.is_some(),
    }))
}

/// This account's transactions, newest first
#[utoipa::path(get, path = "/v1/wallet/transactions", tag = "wallet", security(("bearer" = [])),
    params(TransactionQuery),
    responses((status = 200, body = TransactionPage),
              (status = 400, description = "invalid_request (bad before or limit)", body = switchboard_protocol::ErrorBody)))]
pub async fn transactions(
    State(app): State<App>,
    auth: Auth,
    Query(q): Query<TransactionQuery>,
) -> Result<Json<TransactionPage>> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::invalid_request("limit must be between 1 and 200"));
    }
    if q.before.is_some_and(|b| b < 1) {
        return Err(Error::invalid_request(
            "before is a next_before from an earlier page",
        ));
    }
    let mut rows = app
        .store
        .wallet_history(&auth.account.id, q.before, limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_before = if more {
        rows.last().map(|r| r.seq)
    } else {
        None
    };
    let transactions = rows
        .into_iter()
        .map(|r| Transaction {
            id: r.journal_id,
            kind: r.kind,
            amount: r.amount,
            counterparty: r.counterparty,
            note: r.note,
            at: to_datetime(r.at),
        })
        .collect();
    Ok(Json(TransactionPage {
        transactions,
        next_before,
    }))
}

/// Top up from the funding source
#[utoipa::path(post, path = "/v1/wallet/topups", tag = "wallet", security(("bearer" = [])), request_body = TopUp,
    responses((status = 201, body = MoneyMoved),
              (status = 400, description = "invalid_amount", body = switchboard_protocol::ErrorBody),
              (status = 402, description = "funding_failed", body = switchboard_protocol::ErrorBody),
              (status = 403, description = "identity_unverified", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "idempotency_conflict", body = switchboard_protocol::ErrorBody),
              (status = 503, description = "funding_unavailable", body = switchboard_protocol::ErrorBody)))]
pub async fn top_up(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<TopUp>,
) -> Result<Response> {
    let amount = parse_amount(&req.amount, MAX_AMOUNT)?;
    check_key(&req.idempotency_key)?;
    require_verified(&auth.account)?;
    let me = auth.account.id.clone();
    let fp = fingerprint(&json!({"op": "topup", "amount": amount}));
    if let Some(stored) = replay(&app, &me, &req.idempotency_key, &fp).await? {
        return Ok(stored.into_response());
    }
    // What the provider took is what is credited: it may be less than asked, never more.
    let amount = app
        .funding
        .charge(&me, amount, &req.idempotency_key)
        .await
        .map_err(|why| {
            tracing::warn!(account = %me, %why, "no top-up: the funding source did not charge");
            match why {
                FundingError::Refused(_) => Error::new(
                    ErrorCode::FundingFailed,
                    "the payment method refused the top-up",
                ),
                FundingError::Unavailable(_) => Error::new(
                    ErrorCode::FundingUnavailable,
                    "top-ups are unavailable right now; nothing was charged",
                ),
            }
        })?;
    let op = LedgerOp::TopUp {
        account_id: me.clone(),
        amount,
    };
    let finish = |p: &Posted| -> Finished {
        let answer = MoneyMoved {
            transaction_id: p.journal_id.clone(),
            amount,
            balance: p.balances.get(&wallet_book(&me)).copied().unwrap_or(0),
        };
        let events = vec![money_event(
            &me,
            EventBody::WalletCredit,
            p,
            "topup",
            amount,
            None,
            "",
        )?];
        Ok((answer_json(&answer)?, events))
    };
    let stored = apply_once(
        &app,
        record(&me, &req.idempotency_key, fp),
        &op,
        "",
        &finish,
    )
    .await?;
    Ok(stored.into_response())
}

/// Send money to a contact
#[utoipa::path(post, path = "/v1/wallet/transfers", tag = "wallet", security(("bearer" = [])), request_body = Transfer,
    responses((status = 201, body = MoneyMoved),
              (status = 400, description = "invalid_amount", body = switchboard_protocol::ErrorBody),
              (status = 402, description = "insufficient_funds", body = switchboard_protocol::ErrorBody),
              (status = 403, description = "identity_unverified, not_a_contact", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "user_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "idempotency_conflict", body = switchboard_protocol::ErrorBody)))]
pub async fn transfer(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<Transfer>,
) -> Result<Response> {
    let amount = parse_amount(&req.amount, MAX_AMOUNT)?;
    check_key(&req.idempotency_key)?;
    let note = check_note(&req.note)?;
    require_verified(&auth.account)?;
    let me = auth.account;
    let them = find_user(&app, &req.to).await?;
    if them.id == me.id || !app.store.are_contacts(&me.id, &them.id).await? {
        return Err(Error::new(
            ErrorCode::NotAContact,
            "you can send money only to your contacts",
        ));
    }
    let fp = fingerprint(&json!({"op": "transfer", "to": them.id, "amount": amount, "note": note}));
    let op = LedgerOp::Transfer {
        from: me.id.clone(),
        to: them.id.clone(),
        from_public_id: me.public_id.clone(),
        to_public_id: them.public_id.clone(),
        amount,
    };
    let finish = |p: &Posted| -> Finished {
        let answer = MoneyMoved {
            transaction_id: p.journal_id.clone(),
            amount,
            balance: p.balances.get(&wallet_book(&me.id)).copied().unwrap_or(0),
        };
        let events = vec![
            money_event(
                &me.id,
                EventBody::WalletDebit,
                p,
                "transfer",
                -amount,
                Some(&them.public_id),
                &note,
            )?,
            money_event(
                &them.id,
                EventBody::WalletCredit,
                p,
                "transfer",
                amount,
                Some(&me.public_id),
                &note,
            )?,
        ];
        Ok((answer_json(&answer)?, events))
    };
    let stored = apply_once(
        &app,
        record(&me.id, &req.idempotency_key, fp),
        &op,
        &note,
        &finish,
    )
    .await?;
    Ok(stored.into_response())
}

/// Splits `total` into `count` shares of at least 1 fen each.
pub fn split(total: i64, count: u32, mode: EnvelopeMode, entropy: &dyn Entropy) -> Vec<i64> {
    let count = i64::from(count.max(1));
    match mode {
        EnvelopeMode::Equal => {
            let (each, rest) = (total / count, total % count);
            (0..count).map(|i| each + i64::from(i < rest)).collect()
        }
        // "Double the average": each share is uniform in [1, 2 × what is left per share),
        // leaving at least 1 fen for every share still to come.
        EnvelopeMode::Lucky => {
            let mut left = total;
            let mut out = Vec::with_capacity(count as usize);
            for i in 0..count {
                let remaining_shares = count - i;
                if remaining_shares == 1 {
                    out.push(left);
                    break;
                }
                let cap = (2 * left / remaining_shares)
                    .min(left - (remaining_shares - 1))
                    .max(1);
                let share = 1 + i64::from(entropy.below(u32::try_from(cap).unwrap_or(u32::MAX)));
                let share = share.min(cap);
                out.push(share);
                left -= share;
            }
            out
        }
    }
}

struct Audience {
    /// Accounts that may claim (and see) it.
    members: Vec<String>,
    group_id: Option<String>,
    target: String,
}

async fn audience(app: &App, me: &AccountRow, to: &str) -> Result<Audience> {
    match Target::parse(to.trim()) {
        Target::Official(_) => Err(Error::new(
            ErrorCode::NotAContact,
            "money goes to contacts and groups, not to official accounts",
        )),
        Target::Group(group_id) => {
            let (group, members) = crate::groups::load_as_member(app, &group_id, &me.id).await?;
            Ok(Audience {
                members: members.into_iter().map(|m| m.account_id).collect(),
                target: group.id.clone(),
                group_id: Some(group.id),
            })
        }
        Target::User(public_id) => {
            let them = find_user(app, &public_id).await?;
            if them.id == me.id || !app.store.are_contacts(&me.id, &them.id).await? {
                return Err(Error::new(
                    ErrorCode::NotAContact,
                    "you can send money only to your contacts",
                ));
            }
            Ok(Audience {
                members: vec![them.id],
                group_id: None,
                target: them.public_id,
            })
        }
    }
}

fn envelope_view(e: &EnvelopeRow, claims: Vec<EnvelopeClaim>) -> Result<RedEnvelope> {
    let mut view: RedEnvelope = serde_json::from_str(&e.data).map_err(Error::internal)?;
    view.claims = claims;
    view.refunded = e.refunded;
    Ok(view)
}

/// Send a red envelope to a contact or a group
#[utoipa::path(post, path = "/v1/red-envelopes", tag = "wallet", security(("bearer" = [])), request_body = NewRedEnvelope,
    responses((status = 201, body = RedEnvelope),
              (status = 400, description = "invalid_amount, invalid_envelope", body = switchboard_protocol::ErrorBody),
              (status = 402, description = "insufficient_funds", body = switchboard_protocol::ErrorBody),
              (status = 403, description = "identity_unverified, not_a_contact", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "user_not_found, group_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "idempotency_conflict", body = switchboard_protocol::ErrorBody)))]
pub async fn create_envelope(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<NewRedEnvelope>,
) -> Result<Response> {
    let total = parse_amount(&req.total, MAX_ENVELOPE)?;
    check_key(&req.idempotency_key)?;
    let greeting = check_note(&req.greeting)?;
    require_verified(&auth.account)?;
    let me = auth.account;
    let aud = audience(&app, &me, &req.to).await?;
    let max_count = if aud.group_id.is_some() {
        MAX_SHARES
    } else {
        1
    };
    if req.count == 0 || req.count > max_count {
        return Err(Error::new(
            ErrorCode::InvalidEnvelope,
            format!("this red envelope can have 1 to {max_count} shares"),
        ));
    }
    if total < i64::from(req.count) {
        return Err(Error::new(
            ErrorCode::InvalidEnvelope,
            "every share must be at least 0.01 CNY",
        ));
    }
    let fp = fingerprint(
        &json!({"op": "red_envelope", "to": aud.target, "total": total,
        "count": req.count, "mode": req.mode, "greeting": greeting}),
    );
    if let Some(stored) = replay(&app, &me.id, &req.idempotency_key, &fp).await? {
        return Ok(stored.into_response());
    }
    let now = app.clock.now_ms();
    let id = app.entropy.id("re_");
    let view = RedEnvelope {
        id: id.clone(),
        from: me.public_id.clone(),
        to: aud.target.clone(),
        total,
        count: req.count,
        mode: req.mode,
        greeting: greeting.clone(),
        created_at: to_datetime(now),
        expires_at: to_datetime(now + ENVELOPE_TTL_MS),
        claims: Vec::new(),
        refunded: 0,
    };
    // The stored envelope, the answer and the event's payload are one text.
    let encoded = Encoded::new(&EventBody::RedEnvelopeNew(view))?;
    let envelope = EnvelopeRow {
        id: id.clone(),
        sender_id: me.id.clone(),
        target: aud.target.clone(),
        group_id: aud.group_id.clone(),
        total,
        count: i64::from(req.count),
        mode: if req.mode == EnvelopeMode::Lucky {
            "lucky".into()
        } else {
            "equal".into()
        },
        greeting: greeting.clone(),
        created_at: now,
        expires_at: now + ENVELOPE_TTL_MS,
        refunded_at: None,
        refunded: 0,
        data: encoded.data.clone(),
    };
    let shares = split(total, req.count, req.mode, app.entropy.as_ref());
    let op = LedgerOp::CreateEnvelope {
        envelope,
        shares,
        audience: aud.members.clone(),
    };
    let finish = |p: &Posted| -> Finished {
        let mut events = vec![money_event(
            &me.id,
            EventBody::WalletDebit,
            p,
            "red_envelope",
            -total,
            Some(&aud.target),
            &greeting,
        )?];
        let mut told = std::collections::BTreeSet::new();
        for account in std::iter::once(&me.id).chain(&aud.members) {
            if told.insert(account) {
                events.push(encoded.to(account.as_str()));
            }
        }
        Ok((encoded.data.clone(), events))
    };
    let stored = apply_once(
        &app,
        record(&me.id, &req.idempotency_key, fp),
        &op,
        &greeting,
        &finish,
    )
    .await?;
    Ok(stored.into_response())
}

/// Whether `account` may see the envelope: its sender, or one it was sent to (the claim checks
/// the latter again in its own transaction).
async fn may_see(app: &App, e: &EnvelopeRow, account: &str) -> Result<bool> {
    Ok(e.sender_id == account || app.store.envelope_sent_to(&e.id, account).await?)
}

/// A red envelope you sent or may claim
#[utoipa::path(get, path = "/v1/red-envelopes/{id}", tag = "wallet", security(("bearer" = [])),
    params(("id" = String, Path, description = "envelope id (re_…)")),
    responses((status = 200, body = RedEnvelope),
              (status = 404, description = "envelope_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn get_envelope(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<RedEnvelope>> {
    let not_found = || Error::new(ErrorCode::EnvelopeNotFound, "no such red envelope");
    let (e, shares) = app.store.envelope(&id).await?.ok_or_else(not_found)?;
    if !may_see(&app, &e, &auth.account.id).await? {
        return Err(not_found());
    }
    let mut claims = Vec::new();
    for s in shares {
        if let (Some(by), Some(at)) = (s.claimed_by, s.claimed_at) {
            let public_id = app
                .store
                .account_by_id(&by)
                .await?
                .map(|a| a.public_id)
                .unwrap_or_default();
            claims.push(EnvelopeClaim {
                public_id,
                amount: s.amount,
                at: to_datetime(at),
            });
        }
    }
    Ok(Json(envelope_view(&e, claims)?))
}

/// Claim a share of a red envelope
#[utoipa::path(post, path = "/v1/red-envelopes/{id}/claim", tag = "wallet", security(("bearer" = [])),
    params(("id" = String, Path, description = "envelope id")),
    responses((status = 200, body = Claimed),
              (status = 403, description = "identity_unverified", body = switchboard_protocol::ErrorBody),
              (status = 404, description = "envelope_not_found", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "already_claimed, envelope_empty", body = switchboard_protocol::ErrorBody)))]
pub async fn claim(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<Claimed>> {
    let not_found = || Error::new(ErrorCode::EnvelopeNotFound, "no such red envelope");
    let (e, _) = app.store.envelope(&id).await?.ok_or_else(not_found)?;
    let me = auth.account;
    let direct_sender = e.group_id.is_none() && e.sender_id == me.id;
    if direct_sender || !may_see(&app, &e, &me.id).await? {
        return Err(not_found());
    }
    require_verified(&me)?;
    let op = LedgerOp::Claim {
        envelope_id: id.clone(),
        claimer: me.id.clone(),
    };
    let sender_id = e.sender_id.clone();
    let finish = |p: &Posted| -> Finished {
        let claimed = Encoded::new(&EventBody::RedEnvelopeClaimed(EnvelopeClaimed {
            envelope_id: id.clone(),
            public_id: me.public_id.clone(),
            amount: p.amount,
        }))?;
        let mut events = vec![
            money_event(
                &me.id,
                EventBody::WalletCredit,
                p,
                "red_envelope_claim",
                p.amount,
                None,
                "",
            )?,
            claimed.to(me.id.as_str()),
        ];
        if sender_id != me.id {
            events.push(claimed.to(sender_id.as_str()));
        }
        Ok((answer_json(&Claimed { amount: p.amount })?, events))
    };
    let journal_id = app.entropy.id("tx_");
    let (answer, events) = app
        .store
        .ledger_apply(
            &op,
            &journal_id,
            "",
            app.clock.now_ms(),
            None,
            &in_store(&finish),
        )
        .await?;
    app.hub.publish(&events);
    Ok(Json(
        serde_json::from_str(&answer).map_err(Error::internal)?,
    ))
}

/// Returns the unclaimed money of every expired envelope to its sender, once each. Safe to
/// run at any time and from several places (nodes included): the refund and the last claim
/// are decided under the envelope's row lock.
pub async fn refund_due(app: &App) -> Result<usize> {
    let mut done = 0;
    for id in app.store.envelopes_due(app.clock.now_ms(), 500).await? {
        let op = LedgerOp::Refund {
            envelope_id: id.clone(),
        };
        let finish = |p: &Posted| -> Finished {
            let sender = p.envelope_sender.as_deref().ok_or_else(|| {
                Error::internal(format!(
                    "refund of {id} posted without the envelope's sender"
                ))
            })?;
            let mut events = Vec::new();
            if p.amount > 0 {
                events.push(money_event(
                    sender,
                    EventBody::WalletCredit,
                    p,
                    "red_envelope_refund",
                    p.amount,
                    None,
                    "",
                )?);
            }
            events.push(new_event(
                sender,
                &EventBody::RedEnvelopeRefunded(EnvelopeRefunded {
                    envelope_id: id.clone(),
                    amount: p.amount,
                }),
            )?);
            // Nobody asked: there is no answer to keep.
            Ok((String::new(), events))
        };
        let journal_id = app.entropy.id("tx_");
        match app
            .store
            .ledger_apply(
                &op,
                &journal_id,
                "",
                app.clock.now_ms(),
                None,
                &in_store(&finish),
            )
            .await
        {
            Ok((_, events)) => {
                app.hub.publish(&events);
                done += 1;
            }
            // Refunded meanwhile by another sweep: nothing to do.
            Err(StoreError::NoEnvelope) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use switchboard_service::clock::OsEntropy;

    #[test]
    fn amounts_must_be_whole_positive_fen_in_range() {
        for bad in [
            json!(0),
            json!(-5),
            json!(1.5),
            json!("100"),
            json!(1e30),
            json!(null),
            json!(9_223_372_036_854_775_808u64),
            json!(MAX_AMOUNT + 1),
        ] {
            assert_eq!(
                parse_amount(&bad, MAX_AMOUNT).unwrap_err().code,
                ErrorCode::InvalidAmount,
                "{bad}"
            );
        }
        assert_eq!(parse_amount(&json!(1), MAX_AMOUNT).unwrap(), 1);
        assert_eq!(
            parse_amount(&json!(MAX_AMOUNT), MAX_AMOUNT).unwrap(),
            MAX_AMOUNT
        );
    }

    proptest! {
        #[test]
        fn splits_add_up_and_every_share_is_at_least_a_fen(count in 1u32..=100, extra in 0i64..20_000, lucky: bool) {
            let total = (i64::from(count) + extra).min(MAX_ENVELOPE).max(i64::from(count));
            let mode = if lucky { EnvelopeMode::Lucky } else { EnvelopeMode::Equal };
            let shares = split(total, count, mode, &OsEntropy);
            prop_assert_eq!(shares.len(), count as usize);
            prop_assert_eq!(shares.iter().sum::<i64>(), total);
            prop_assert!(shares.iter().all(|s| *s >= 1));
            if !lucky {
                let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                prop_assert!(max - min <= 1, "equal shares differ by at most a fen");
            }
        }
    }
}
