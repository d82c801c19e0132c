//! SMS codes: issuing them under every limit of SPEC §1.1, delivering them through a gateway,
//! and checking them.
//!
//! A code is 6 digits from the CSPRNG, valid `code_ttl_secs`, single use, bound to the phone
//! number and the purpose, stored only as a hash, burned after `max_attempts` wrong tries.
//! Limits count per number *and purpose*: a resend cooldown, `per_number_per_day`, and
//! `per_ip_per_hour` across all numbers.
//!
//! Nothing a code request answers may depend on what the number holds: not the status, not
//! the body, not the time taken. So the request only checks the limits, stores the code and
//! answers; delivery (and, for `login` and `recover`, the look-up that decides whether the
//! number has an account to send to) happens afterwards, in a task of [`Deliveries`] that
//! the service owns and drains when it stops. A number that holds the most accounts allowed
//! is sent a `register` code like any other; the registration itself refuses it.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchboard_protocol::ErrorCode;
use switchboard_protocol::auth::{DevSmsOutbox, SmsCodeRequest, SmsCodeSent, SmsPurpose};
use utoipa::IntoParams;

use crate::error::{Error, Json, Query, Result};
use crate::net::ClientIp;
use crate::state::App;
use switchboard_service::clock::{EntropyExt, Millis, secs_until};
use switchboard_service::phone::{self, Phone};
use switchboard_service::sms::OutgoingSms;
use switchboard_store::{SmsCodeRow, SmsIssue, SmsLimits};

const DAY_MS: Millis = 24 * 3600 * 1000;
const HOUR_MS: Millis = 3600 * 1000;

/// Hands one code to the gateway, after the request that asked for it has been answered.
async fn deliver(app: App, sms: OutgoingSms, code_id: String) {
    let masked = phone::masked(&sms.phone);
    // Numbers without an account are sent no login or recovery code (nothing is there to sign
    // in to). Decided here, after the answer, so the answer cannot tell.
    if sms.purpose != SmsPurpose::Register {
        match app.store.accounts_by_phone(&sms.phone).await {
            Ok(accounts) if accounts.is_empty() => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(phone = %masked, error = %e, "SMS delivery skipped: storage failed");
                return;
            }
        }
    }
    let Err(reason) = app.sms.send(&sms).await else {
        return;
    };
    tracing::warn!(phone = %masked, purpose = sms.purpose.as_str(), %reason, "SMS delivery failed");
    app.metrics.count("sms_delivery_failures_total");
    // A registration code is sent to every number alike, so freeing its place (the cooldown,
    // one of the day's codes) tells nothing: the user may ask again at once. A login or
    // recovery code is sent only to numbers with an account; freeing it would let a later
    // request tell those numbers apart, so it keeps its place as an undelivered code does.
    if sms.purpose == SmsPurpose::Register
        && let Err(e) = app.store.sms_delete(&code_id).await
    {
        tracing::warn!(phone = %masked, error = %e, "could not forget an undelivered code");
    }
}

fn code_hash(code_id: &str, code: &str) -> String {
    let mut h = Sha256::new();
    h.update(code_id.as_bytes());
    h.update(b":");
    h.update(code.as_bytes());
    data_encoding::HEXLOWER.encode(&h.finalize())
}

/// Request an SMS code
///
/// Sends a 6-digit code to the number for one purpose, in the background: 202 means the code
/// was issued, not that the text arrived. The answer is the same, alike in status, body and
/// time, whatever the number holds: for `login` and `recover` nothing is sent to a number
/// without an account, and a `register` code goes to every number (one that holds the most
/// accounts allowed is refused at `POST /v1/accounts`). So the endpoint cannot be used to
/// find out who is registered.
#[utoipa::path(post, path = "/v1/sms/codes", tag = "accounts",
    request_body = SmsCodeRequest,
    responses(
        (status = 202, body = SmsCodeSent),
        (status = 400, description = "invalid_phone", body = switchboard_protocol::ErrorBody),
        (status = 403, description = "region_not_supported (register)", body = switchboard_protocol::ErrorBody),
        (status = 429, description = "rate_limited, with Retry-After", body = switchboard_protocol::ErrorBody),
    ))]
pub async fn request_code(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    Json(req): Json<SmsCodeRequest>,
) -> Result<(StatusCode, Json<SmsCodeSent>)> {
    let phone = phone::parse(&req.phone)?;
    let purpose = req.purpose;
    // The region is the number's own, not its accounts': telling it reveals nothing.
    if purpose == SmsPurpose::Register {
        check_region(&app, &phone)?;
    }

    let cfg = &app.config.sms;
    let now = app.clock.now_ms();
    let code = app.entropy.digits(6);
    let id = app.entropy.id("sms_");
    let row = SmsCodeRow {
        code_hash: code_hash(&id, &code),
        id,
        phone: phone.e164.clone(),
        purpose: purpose.as_str().to_string(),
        ip,
        created_at: now,
        expires_at: now + i64::try_from(cfg.code_ttl_secs * 1000).unwrap_or(i64::MAX / 2),
        attempts: 0,
        consumed_at: None,
    };
    let limits = SmsLimits {
        cooldown_ms: i64::try_from(cfg.resend_cooldown_secs * 1000).unwrap_or(0),
        per_number: cfg.per_number_per_day,
        number_since: now - DAY_MS,
        per_ip: cfg.per_ip_per_hour,
        ip_since: now - HOUR_MS,
    };
    // The limits are checked and the code stored in one step, so concurrent requests see each
    // other.
    match app.store.sms_issue(&row, &limits).await? {
        SmsIssue::Issued => {}
        SmsIssue::IpLimit { oldest } => {
            let retry = oldest.map_or(3600, |t| secs_until(t + HOUR_MS, now));
            return Err(Error::new(
                ErrorCode::RateLimited,
                "too many codes requested from this network; try again later",
            )
            .retry_after(retry));
        }
        SmsIssue::Cooldown { ready_at } => {
            let wait = secs_until(ready_at, now);
            return Err(Error::new(
                ErrorCode::RateLimited,
                format!("a code was just sent; you can ask for another in {wait} s"),
            )
            .retry_after(wait));
        }
        SmsIssue::NumberLimit { oldest } => {
            let retry = oldest.map_or(86_400, |t| secs_until(t + DAY_MS, now));
            return Err(Error::new(
                ErrorCode::RateLimited,
                format!(
                    "at most {} codes a day for this number; try again later",
                    cfg.per_number_per_day
                ),
            )
            .retry_after(retry));
        }
    }
    app.metrics.count("sms_codes_issued_total");
    let sms = OutgoingSms {
        phone: phone.e164.clone(),
        purpose,
        code,
        sent_at: now,
    };
    app.sms_deliveries
        .spawn(deliver(app.clone(), sms, row.id.clone()));
    tracing::info!(phone = %phone::masked(&phone.e164), purpose = purpose.as_str(), "SMS code issued");
    Ok((
        StatusCode::ACCEPTED,
        Json(SmsCodeSent {
            expires_in: cfg.code_ttl_secs,
            resend_after: cfg.resend_cooldown_secs,
        }),
    ))
}

pub fn check_region(app: &App, phone: &Phone) -> Result<()> {
    if app.config.serves_region(&phone.region) {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::RegionNotSupported,
        format!(
            "numbers from {} cannot register here; this service serves: {}",
            phone.region,
            app.config.registration.allowed_regions.join(", ")
        ),
    ))
}

/// A code that did not check out; `wrong_guess` says a guess was made (and counted), as
/// opposed to there being no usable code at all.
#[derive(Debug)]
pub struct CodeError {
    pub error: Error,
    pub wrong_guess: bool,
}

impl From<CodeError> for Error {
    fn from(e: CodeError) -> Self {
        e.error
    }
}

impl From<switchboard_store::StoreError> for CodeError {
    fn from(e: switchboard_store::StoreError) -> Self {
        CodeError {
            error: e.into(),
            wrong_guess: false,
        }
    }
}

impl From<Error> for CodeError {
    fn from(error: Error) -> Self {
        CodeError {
            error,
            wrong_guess: false,
        }
    }
}

/// Checks `code` against the live code of the number and purpose without using it up; a
/// wrong code counts one try. Returns the code's row for the caller to consume atomically
/// with whatever the code authorises.
pub async fn check_code(
    app: &App,
    phone: &str,
    purpose: SmsPurpose,
    code: &str,
) -> Result<SmsCodeRow, CodeError> {
    use subtle::ConstantTimeEq;
    let max = i64::from(app.config.sms.max_attempts);
    let now = app.clock.now_ms();
    let expired = |why: &str| -> CodeError {
        Error::new(
            ErrorCode::SmsCodeExpired,
            format!("{why}; request a new code"),
        )
        .into()
    };
    let Some(row) = app.store.sms_latest(phone, purpose.as_str()).await? else {
        return Err(expired("no code was sent to this number"));
    };
    if row.consumed_at.is_some() {
        return Err(expired("that code was used already"));
    }
    if now >= row.expires_at {
        return Err(expired("that code has expired"));
    }
    // The try is reserved before the code is compared: concurrent guesses each take one of
    // the `max`, and once they are gone nobody gets to compare at all.
    let Some(attempts) = app.store.sms_try(&row.id, max).await? else {
        return Err(expired("that code was entered wrongly too many times"));
    };
    let given = code.trim();
    if bool::from(
        code_hash(&row.id, given)
            .as_bytes()
            .ct_eq(row.code_hash.as_bytes()),
    ) {
        return Ok(row);
    }
    let left = max - attempts;
    let error = if left <= 0 {
        Error::new(
            ErrorCode::SmsCodeExpired,
            "wrong code, and that was the last try for it; request a new code",
        )
    } else {
        Error::new(
            ErrorCode::SmsCodeInvalid,
            format!(
                "wrong code; {left} {} left",
                if left == 1 { "try" } else { "tries" }
            ),
        )
    };
    Err(CodeError {
        error,
        wrong_guess: true,
    })
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutboxQuery {
    /// E.164.
    pub phone: String,
}

/// Development SMS outbox
///
/// The codes the console gateway "sent" to a number, oldest first. Exists only when the
/// service runs with `--dev`.
#[utoipa::path(get, path = "/v1/dev/sms-outbox", tag = "dev", params(OutboxQuery),
    responses((status = 200, body = DevSmsOutbox),
              (status = 400, description = "invalid_phone", body = switchboard_protocol::ErrorBody)))]
pub async fn dev_outbox(
    State(app): State<App>,
    Query(q): Query<OutboxQuery>,
) -> Result<Json<DevSmsOutbox>> {
    let phone = phone::parse(&q.phone)?;
    // Codes are delivered in the background: a code asked for a moment ago is in the outbox
    // once its delivery has run, as it would be on a phone.
    app.sms_deliveries.settled(Duration::from_secs(5)).await;
    let messages = app
        .dev_outbox
        .as_ref()
        .map(|g| g.outbox(&phone.e164))
        .unwrap_or_default();
    Ok(Json(DevSmsOutbox { messages }))
}
