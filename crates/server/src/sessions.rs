//! Sign-in (password, or SMS code), sessions and the bearer-token extractor.
//!
//! Tokens are 256 random bits, shown to the client once; the service keeps only their SHA-256.
//! Failed sign-ins are counted per account (and per unknown login, so an unknown account
//! behaves exactly like a known one): from the 5th consecutive failure each try waits a
//! growing delay, and the 100th locks the account until it is recovered by SMS. Re-entering
//! the password while signed in (changing it, turning two-step verification on or off) is
//! counted the same way: a stolen session is no way around the throttle.
//!
//! One throttle per account: a guess by phone number counts against every account the number
//! holds as well as the number, so phone and public ID are one budget, not two.
//!
//! A phone number is not a public ID: which accounts a number holds is never told to anyone
//! who has not proven the password or the phone. So a sign-in by phone number tells only the
//! number's own wait or lock; while an account of the number is held back, it answers a
//! right password exactly as a wrong one (`invalid_credentials`). Otherwise a stranger could
//! fail a public ID five times and then try phone numbers until one answers "throttled",
//! linking the ID to its number, or try passwords by phone while the ID waits and read the
//! right one off a 429. (Guesses by phone do show on the accounts' own count, as the budget
//! is shared: linking a number to an ID that way costs the stranger five guesses per number
//! tried, within the per-IP limit, and holds the victim's account back where they will see
//! it.)

use axum::extract::State;
use axum::http::StatusCode;
use switchboard_protocol::ErrorCode;
use switchboard_protocol::auth::{
    SessionCreated, SessionInfo, SessionList, SignInRequest, SmsPurpose, SmsSignInRequest,
};

use crate::account_rules::{account_key, phone_key, revoked_event, summary};
use crate::auth::{Auth, token_hash};
use crate::error::{Error, Json, Path, Result};
use crate::net::ClientIp;
use crate::sms;
use crate::state::App;
use switchboard_service::clock::{EntropyExt, Millis, secs_until, to_datetime};
use switchboard_service::{phone, totp};
use switchboard_store::{AccountRow, LoginGate, SessionRow, ThrottlePolicy};

const HOUR_MS: Millis = 3600 * 1000;

pub fn throttle_policy(app: &App) -> ThrottlePolicy {
    let s = &app.config.sessions;
    ThrottlePolicy {
        after: s.throttle_after,
        base_secs: s.throttle_base_secs,
        max_secs: s.throttle_max_secs,
        lock_after: s.lock_after,
    }
}

fn invalid_credentials() -> Error {
    Error::new(ErrorCode::InvalidCredentials, "wrong login or password")
}

async fn check_ip_limit(app: &App, ip: &str) -> Result<()> {
    let now = app.clock.now_ms();
    let hits = app
        .store
        .rate_hit("login_ip", ip, now, now - HOUR_MS)
        .await?;
    if hits.count > app.config.sessions.login_per_ip_per_hour {
        let retry = hits.oldest.map_or(3600, |t| secs_until(t + HOUR_MS, now));
        return Err(Error::new(
            ErrorCode::RateLimited,
            "too many sign-in attempts from this network; try again later",
        )
        .retry_after(retry));
    }
    Ok(())
}

fn locked() -> Error {
    Error::new(
        ErrorCode::AccountLocked,
        "this account is locked after too many failed sign-ins; recover it with an SMS code",
    )
}

/// Reserves this attempt on every key before any password is hashed: refused while a key is
/// locked or waiting, and otherwise counted as a failure until it is settled, so that
/// concurrent guesses cannot all slip in before the first of them is judged.
async fn reserve_attempt(app: &App, keys: &[String]) -> Result<()> {
    let now = app.clock.now_ms();
    match app
        .store
        .login_reserve(keys, now, throttle_policy(app))
        .await?
    {
        LoginGate::Open => Ok(()),
        LoginGate::Locked => Err(locked()),
        LoginGate::Throttled { until } => {
            let wait = secs_until(until, now);
            Err(Error::new(
                ErrorCode::LoginThrottled,
                format!("too many failed sign-ins; try again in {wait} s"),
            )
            .retry_after(wait))
        }
    }
}

/// The account's password, proven again by a signed-in caller before a change only the owner
/// may make. Throttled and counted exactly like a sign-in: refused while the account waits or
/// is locked, a wrong password is a failed sign-in (`invalid_credentials`), a right one
/// takes its reserved failure back.
pub async fn reauthenticate(app: &App, account: &AccountRow, password: &str) -> Result<()> {
    let keys = [account_key(&account.id)];
    reserve_attempt(app, &keys).await?;
    if !app
        .hasher
        .verify(password, Some(&account.password_hash))
        .await?
    {
        // The reservation stands as the failure.
        app.metrics.count("sign_in_failures_total");
        return Err(Error::new(
            ErrorCode::InvalidCredentials,
            "the password is wrong",
        ));
    }
    app.store.login_refund(&keys, throttle_policy(app)).await?;
    Ok(())
}

/// Counts a failed sign-in on `keys` (a wrong code, a wrong second factor).
pub async fn record_failure(app: &App, keys: &[String]) -> Result<()> {
    app.store
        .login_failure(keys, app.clock.now_ms(), throttle_policy(app))
        .await?;
    app.metrics.count("sign_in_failures_total");
    Ok(())
}

/// A TOTP code (once per time step) or an unused recovery code.
pub async fn second_factor_ok(app: &App, account: &AccountRow, code: &str) -> Result<bool> {
    let Some(secret) = account.totp_secret.as_deref().and_then(totp::decode_secret) else {
        return Ok(false);
    };
    let code = code.trim();
    if code.len() == totp::DIGITS as usize && code.bytes().all(|b| b.is_ascii_digit()) {
        return match totp::matching_step(&secret, code, app.clock.now_ms()) {
            Some(step) => Ok(app.store.totp_use_step(&account.id, step).await?),
            None => Ok(false),
        };
    }
    let hash = crate::account_rules::recovery_code_hash(code);
    Ok(app
        .store
        .totp_use_recovery(&account.id, &hash, app.clock.now_ms())
        .await?)
}

/// Why a second factor did not let a sign-in through.
enum SecondFactor {
    /// None given: the client must ask for one.
    Missing(Error),
    /// A wrong (or reused) code: a failed sign-in.
    Wrong(Error),
}

/// With two-step verification on, a sign-in needs a code. The outer error is a failure to
/// check (storage), the inner one the verdict.
async fn second_factor(
    app: &App,
    account: &AccountRow,
    code: Option<&str>,
) -> Result<Result<(), SecondFactor>> {
    if account.totp_secret.is_none() {
        return Ok(Ok(()));
    }
    let Some(code) = code else {
        return Ok(Err(SecondFactor::Missing(Error::new(
            ErrorCode::TotpRequired,
            "this account has two-step verification: enter the code from your authenticator app",
        ))));
    };
    if second_factor_ok(app, account, code).await? {
        return Ok(Ok(()));
    }
    Ok(Err(SecondFactor::Wrong(Error::new(
        ErrorCode::TotpInvalid,
        "that code is wrong or was used already; wait for the next one",
    ))))
}

fn check_device_name(name: Option<&str>) -> Result<String> {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("unnamed device");
    // Listed to the account's owner as "which device is this": it must not pass for another.
    switchboard_service::text::check_shown(name, "device_name", 1, 64, ErrorCode::InvalidRequest)
        .map_err(Error::from)
}

async fn open_session(
    app: &App,
    account: &AccountRow,
    device_name: String,
) -> Result<SessionCreated> {
    let token = data_encoding::BASE64URL_NOPAD.encode(&app.entropy.bytes::<32>());
    let now = app.clock.now_ms();
    let ttl = i64::try_from(app.config.sessions.ttl_secs).unwrap_or(i64::MAX / 2000) * 1000;
    let row = SessionRow {
        id: app.entropy.id("ses_"),
        account_id: account.id.clone(),
        token_hash: token_hash(&token),
        device_name,
        created_at: now,
        last_seen_at: now,
        expires_at: now.saturating_add(ttl),
        revoked_at: None,
    };
    app.store.session_create(&row).await?;
    app.store.login_reset(&account_key(&account.id)).await?;
    app.metrics.count("sign_ins_total");
    tracing::info!(account = %account.id, session = %row.id, "signed in");
    Ok(SessionCreated {
        token,
        session_id: row.id,
        expires_at: to_datetime(row.expires_at),
        account: summary(account),
    })
}

fn choice_required(accounts: &[AccountRow]) -> Error {
    let mut e = Error::new(
        ErrorCode::AccountChoiceRequired,
        "this phone number has several accounts; sign in with the public ID of one of them",
    );
    e.public_ids = Some(accounts.iter().map(|a| a.public_id.clone()).collect());
    e
}

/// Sign in with a password
///
/// `login` is a public ID or a phone number. A phone number with several accounts answers
/// `account_choice_required` with their public IDs, but only once the password is right for
/// one of them, so the endpoint never tells a stranger which IDs a number holds.
#[utoipa::path(post, path = "/v1/sessions", tag = "sessions", request_body = SignInRequest,
    responses(
        (status = 201, body = SessionCreated),
        (status = 401, description = "invalid_credentials, totp_required, totp_invalid", body = switchboard_protocol::ErrorBody),
        (status = 409, description = "account_choice_required (with public_ids)", body = switchboard_protocol::ErrorBody),
        (status = 423, description = "account_locked", body = switchboard_protocol::ErrorBody),
        (status = 429, description = "login_throttled, rate_limited; with Retry-After", body = switchboard_protocol::ErrorBody),
    ))]
pub async fn sign_in(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    Json(req): Json<SignInRequest>,
) -> Result<(StatusCode, Json<SessionCreated>)> {
    let device_name = check_device_name(Some(&req.device_name))?;
    check_ip_limit(&app, &ip).await?;
    let login = req.login.trim();
    if login.starts_with('+') {
        return sign_in_by_phone(&app, login, &req, device_name).await;
    }
    let account = app.store.account_by_public_id(login).await?;
    let keys = vec![account.as_ref().map_or_else(
        || format!("login:{}", login.to_lowercase()),
        |a| account_key(&a.id),
    )];
    // A public ID is public: its own wait or lock may be told before the password is checked
    // (an unknown ID waits exactly like a known one).
    reserve_attempt(&app, &keys).await?;
    let ok = app
        .hasher
        .verify(
            &req.password,
            account.as_ref().map(|a| a.password_hash.as_str()),
        )
        .await?;
    let Some(account) = account.filter(|_| ok) else {
        // The reservation stands as the failure.
        app.metrics.count("sign_in_failures_total");
        return Err(invalid_credentials());
    };
    // The password was right: whatever is still missing, this was no failed guess. A wrong
    // second factor is one: the reservation stands.
    match second_factor(&app, &account, req.totp_code.as_deref()).await? {
        Ok(()) => {}
        Err(SecondFactor::Missing(e)) => {
            app.store.login_refund(&keys, throttle_policy(&app)).await?;
            return Err(e);
        }
        Err(SecondFactor::Wrong(e)) => {
            app.metrics.count("sign_in_failures_total");
            return Err(e);
        }
    }
    let created = open_session(&app, &account, device_name).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// A sign-in whose `login` is a phone number. The number's own wait or lock is told before
/// the password is checked (see the module's note); the guess also counts against every
/// account the number holds, one budget with their public IDs, but their state is never told:
/// while one of them waits or is locked, the answer is a wrong password's, right or wrong.
async fn sign_in_by_phone(
    app: &App,
    login: &str,
    req: &SignInRequest,
    device_name: String,
) -> Result<(StatusCode, Json<SessionCreated>)> {
    let phone = phone::parse(login)?;
    let number = vec![phone_key(&phone.e164)];
    reserve_attempt(app, &number).await?;
    let candidates = app.store.accounts_by_phone(&phone.e164).await?;
    let accounts: Vec<String> = candidates.iter().map(|a| account_key(&a.id)).collect();
    // Counted on the accounts too (nothing is written while one of them is held back).
    let held_back = app
        .store
        .login_reserve(&accounts, app.clock.now_ms(), throttle_policy(app))
        .await?
        != LoginGate::Open;
    // As many hashes as the number may hold accounts, whatever it holds: the time taken must
    // not tell how many accounts the number has, nor whether one of them is held back.
    let verifications = (app.config.accounts.per_phone as usize).max(candidates.len());
    let mut matched = Vec::new();
    for i in 0..verifications {
        let candidate = candidates.get(i);
        if app
            .hasher
            .verify(&req.password, candidate.map(|a| a.password_hash.as_str()))
            .await?
        {
            matched.extend(candidate.cloned());
        }
    }
    let account = match matched.first().cloned() {
        Some(account) if !held_back => account,
        // Wrong, or right while an account waits: one answer, and the reservations stand
        // either way (a refund would show on the number's count, and tell which was right).
        _ => {
            app.metrics.count("sign_in_failures_total");
            return Err(invalid_credentials());
        }
    };
    // The password is proven: no failed guess at the number or its other accounts. The
    // account's own reservation stands for what is still to come, as by public ID.
    let keys = vec![account_key(&account.id)];
    let mut settled = number.clone();
    settled.extend(accounts.into_iter().filter(|k| *k != keys[0]));
    if candidates.len() > 1 {
        settled.extend(keys);
        app.store
            .login_refund(&settled, throttle_policy(app))
            .await?;
        return Err(choice_required(&candidates));
    }
    app.store
        .login_refund(&settled, throttle_policy(app))
        .await?;
    match second_factor(app, &account, req.totp_code.as_deref()).await? {
        Ok(()) => {}
        Err(SecondFactor::Missing(e)) => {
            app.store.login_refund(&keys, throttle_policy(app)).await?;
            return Err(e);
        }
        // A wrong second factor is a failed sign-in of the account: its reservation stands.
        Err(SecondFactor::Wrong(e)) => {
            app.metrics.count("sign_in_failures_total");
            return Err(e);
        }
    }
    let created = open_session(app, &account, device_name).await?;
    app.store.login_reset(&number[0]).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Sign in with an SMS code
///
/// With a `login` code. A number with several accounts needs `public_id`; without it the
/// answer is `account_choice_required` and the code stays usable for the retry.
#[utoipa::path(post, path = "/v1/sessions/sms", tag = "sessions", request_body = SmsSignInRequest,
    responses(
        (status = 201, body = SessionCreated),
        (status = 400, description = "invalid_phone, sms_code_invalid, sms_code_expired", body = switchboard_protocol::ErrorBody),
        (status = 401, description = "totp_required, totp_invalid", body = switchboard_protocol::ErrorBody),
        (status = 404, description = "account_not_found", body = switchboard_protocol::ErrorBody),
        (status = 409, description = "account_choice_required (with public_ids)", body = switchboard_protocol::ErrorBody),
        (status = 423, description = "account_locked", body = switchboard_protocol::ErrorBody),
        (status = 429, description = "rate_limited", body = switchboard_protocol::ErrorBody),
    ))]
pub async fn sms_sign_in(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    Json(req): Json<SmsSignInRequest>,
) -> Result<(StatusCode, Json<SessionCreated>)> {
    let device_name = check_device_name(req.device_name.as_deref())?;
    check_ip_limit(&app, &ip).await?;
    let phone = phone::parse(&req.phone)?;
    // Before the code is proven only the number's own key answers, whatever the number
    // holds (see the module's note). A code proves the phone, not the password: it gets past
    // the password throttle, never past a lock, which only recovery lifts.
    let number = vec![phone_key(&phone.e164)];
    if app
        .store
        .login_states(&number)
        .await?
        .iter()
        .any(|s| s.locked)
    {
        return Err(locked());
    }
    let code = match sms::check_code(&app, &phone.e164, SmsPurpose::Login, &req.sms_code).await {
        Ok(code) => code,
        Err(e) => {
            // A wrong code is a failed sign-in by the number (registered or not, alike), and
            // asking for a new code does not wipe that count.
            if e.wrong_guess {
                record_failure(&app, &number).await?;
            }
            return Err(e.into());
        }
    };
    let accounts = app.store.accounts_by_phone(&phone.e164).await?;
    let account = match (&req.public_id, accounts.len()) {
        (_, 0) => {
            return Err(Error::new(
                ErrorCode::AccountNotFound,
                "this phone number has no account",
            ));
        }
        (Some(id), _) => accounts
            .iter()
            .find(|a| a.public_id.eq_ignore_ascii_case(id.trim()))
            .cloned()
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::AccountNotFound,
                    "this phone number has no account with that public ID",
                )
            })?,
        (None, 1) => accounts[0].clone(),
        (None, _) => return Err(choice_required(&accounts)),
    };
    let key = account_key(&account.id);
    if app
        .store
        .login_states(std::slice::from_ref(&key))
        .await?
        .iter()
        .any(|s| s.locked)
    {
        return Err(locked());
    }
    match second_factor(&app, &account, req.totp_code.as_deref()).await? {
        Ok(()) => {}
        Err(SecondFactor::Missing(e)) => return Err(e),
        Err(SecondFactor::Wrong(e)) => {
            record_failure(&app, &[key]).await?;
            return Err(e);
        }
    }
    if !app.store.sms_consume(&code.id, app.clock.now_ms()).await? {
        return Err(Error::new(
            ErrorCode::SmsCodeExpired,
            "that code was used already; request a new code",
        ));
    }
    let created = open_session(&app, &account, device_name).await?;
    app.store.login_reset(&number[0]).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// List this account's sessions
#[utoipa::path(get, path = "/v1/sessions", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = SessionList),
              (status = 401, description = "unauthorized, session_revoked, session_expired", body = switchboard_protocol::ErrorBody)))]
pub async fn list(State(app): State<App>, auth: Auth) -> Result<Json<SessionList>> {
    let rows = app
        .store
        .sessions_live(&auth.account.id, app.clock.now_ms())
        .await?;
    let sessions = rows
        .into_iter()
        .map(|s| SessionInfo {
            current: s.id == auth.session.id,
            id: s.id,
            device_name: s.device_name,
            created_at: to_datetime(s.created_at),
            last_seen_at: to_datetime(s.last_seen_at),
        })
        .collect();
    Ok(Json(SessionList { sessions }))
}

/// Sign out this session
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "sessions", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = switchboard_protocol::ErrorBody)))]
pub async fn revoke_current(State(app): State<App>, auth: Auth) -> Result<StatusCode> {
    let revoked = app
        .store
        .session_revoke(
            &auth.account.id,
            &auth.session.id,
            app.clock.now_ms(),
            &revoked_event,
        )
        .await?;
    app.hub.publish(revoked.as_slice());
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "sessions", security(("bearer" = [])),
    params(("id" = String, Path, description = "session id")),
    responses((status = 204), (status = 401, body = switchboard_protocol::ErrorBody),
              (status = 404, description = "session_not_found", body = switchboard_protocol::ErrorBody)))]
pub async fn revoke_one(
    State(app): State<App>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let revoked = app
        .store
        .session_revoke(&auth.account.id, &id, app.clock.now_ms(), &revoked_event)
        .await?;
    let Some(event) = revoked else {
        return Err(Error::new(
            ErrorCode::SessionNotFound,
            "this account has no live session with that id",
        ));
    };
    app.hub.publish(&[event]);
    Ok(StatusCode::NO_CONTENT)
}
