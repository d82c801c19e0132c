//! SMS codes: issuing them under every limit of SPEC §1.1, delivering them through a gateway,
//! and checking them.
//!
//! A code is 6 digits from the CSPRNG, valid `code_ttl_secs`, single use, bound to the phone
//! number and the purpose, stored only as a hash, burned after `max_attempts` wrong tries.
//! Limits count per number *and purpose*: a resend cooldown, `per_number_per_day`, and
//! `per_ip_per_hour` across all numbers.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use switchboard_protocol::ErrorCode;
use switchboard_protocol::auth::{DevSms, DevSmsOutbox, SmsCodeRequest, SmsCodeSent, SmsPurpose};
use utoipa::IntoParams;

use crate::app::{App, ClientIp};
use crate::clock::{EntropyExt, Millis, secs_until, to_datetime};
use crate::error::{Error, Json, Query, Result};
use crate::phone::{self, Phone};
use crate::store::{SmsCodeRow, SmsIssue, SmsLimits};

const DAY_MS: Millis = 24 * 3600 * 1000;
const HOUR_MS: Millis = 3600 * 1000;

/// One message for the gateway to deliver.
#[derive(Clone)]
pub struct OutgoingSms {
    pub phone: String,
    pub purpose: SmsPurpose,
    pub code: String,
    pub sent_at: Millis,
}

#[async_trait]
pub trait SmsGateway: Send + Sync + 'static {
    /// Delivers the message or says why not (the reason is logged, never shown to clients).
    async fn send(&self, sms: &OutgoingSms) -> Result<(), String>;
}

/// Development only: prints each code on stdout and keeps the recent ones for the dev outbox
/// endpoint. The codes never go to the log.
#[derive(Default)]
pub struct ConsoleGateway {
    outbox: Mutex<VecDeque<DevSms>>,
}

/// The dev outbox keeps this many recent messages.
const OUTBOX_KEEP: usize = 1000;

impl ConsoleGateway {
    /// Messages sent to `phone` (canonical E.164), oldest first.
    pub fn outbox(&self, phone: &str) -> Vec<DevSms> {
        let outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        outbox
            .iter()
            .filter(|m| m.phone == phone)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl SmsGateway for ConsoleGateway {
    async fn send(&self, sms: &OutgoingSms) -> Result<(), String> {
        println!(
            "[dev sms] {} {}: {}",
            sms.phone,
            sms.purpose.as_str(),
            sms.code
        );
        let mut outbox = self.outbox.lock().unwrap_or_else(|p| p.into_inner());
        if outbox.len() == OUTBOX_KEEP {
            outbox.pop_front();
        }
        outbox.push_back(DevSms {
            phone: sms.phone.clone(),
            purpose: sms.purpose,
            code: sms.code.clone(),
            sent_at: to_datetime(sms.sent_at),
        });
        Ok(())
    }
}

/// POSTs `{phone, purpose, code, sent_at}` as JSON to a provider's URL; any 2xx is delivery.
pub struct WebhookGateway {
    client: reqwest::Client,
    url: String,
}

impl WebhookGateway {
    pub fn new(url: String) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self { client, url })
    }
}

#[async_trait]
impl SmsGateway for WebhookGateway {
    async fn send(&self, sms: &OutgoingSms) -> Result<(), String> {
        let body = DevSms {
            phone: sms.phone.clone(),
            purpose: sms.purpose,
            code: sms.code.clone(),
            sent_at: to_datetime(sms.sent_at),
        };
        let response = self
            .client
            .post(&self.url)
            .json(&body)
            .send()
            .await
            // Not `e.to_string()` alone: reqwest's error can include the URL, never the body.
            .map_err(|e| format!("webhook unreachable: {e}"))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!("webhook answered {}", response.status()))
        }
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
/// Sends a 6-digit code to the number for one purpose. For `login` and `recover` the answer
/// is the same whether or not the number has an account (nothing is sent when it has none),
/// so the endpoint cannot be used to find out who is registered.
#[utoipa::path(post, path = "/v1/sms/codes", tag = "accounts",
    request_body = SmsCodeRequest,
    responses(
        (status = 202, body = SmsCodeSent),
        (status = 400, description = "invalid_phone", body = switchboard_protocol::ErrorBody),
        (status = 403, description = "region_not_supported", body = switchboard_protocol::ErrorBody),
        (status = 409, description = "phone_account_limit (register)", body = switchboard_protocol::ErrorBody),
        (status = 429, description = "rate_limited, with Retry-After", body = switchboard_protocol::ErrorBody),
        (status = 502, description = "sms_delivery_failed", body = switchboard_protocol::ErrorBody),
    ))]
pub async fn request_code(
    State(app): State<App>,
    ClientIp(ip): ClientIp,
    Json(req): Json<SmsCodeRequest>,
) -> Result<(StatusCode, Json<SmsCodeSent>)> {
    let phone = phone::parse(&req.phone)?;
    let purpose = req.purpose;
    let has_accounts = match purpose {
        SmsPurpose::Register => {
            check_region(&app, &phone)?;
            let existing = app.store.accounts_by_phone(&phone.e164).await?;
            if existing.len() >= app.config.accounts.per_phone as usize {
                return Err(Error::new(
                    ErrorCode::PhoneAccountLimit,
                    format!(
                        "this phone number already has {} accounts, the most allowed",
                        existing.len()
                    ),
                ));
            }
            true
        }
        SmsPurpose::Login | SmsPurpose::Recover => {
            !app.store.accounts_by_phone(&phone.e164).await?.is_empty()
        }
    };

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
    // other; the code is removed again if the gateway refuses, so a failed delivery costs the
    // user nothing.
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
    if has_accounts {
        let sms = OutgoingSms {
            phone: phone.e164.clone(),
            purpose,
            code,
            sent_at: now,
        };
        if let Err(reason) = app.sms.send(&sms).await {
            tracing::warn!(phone = %phone::masked(&phone.e164), %reason, "SMS delivery failed");
            app.store.sms_delete(&row.id).await?;
            return Err(Error::new(
                ErrorCode::SmsDeliveryFailed,
                "the text message could not be sent; try again in a moment",
            ));
        }
        app.metrics.count("sms_sent_total");
    }
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

impl From<crate::store::StoreError> for CodeError {
    fn from(e: crate::store::StoreError) -> Self {
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
    let messages = app
        .dev_outbox
        .as_ref()
        .map(|g| g.outbox(&phone.e164))
        .unwrap_or_default();
    Ok(Json(DevSmsOutbox { messages }))
}
