//! The signed-in account's own settings: profile, public ID, password, real-name
//! verification and two-step verification (TOTP).

use axum::extract::State;
use axum::http::StatusCode;
use switchboard_protocol::ErrorCode;
use switchboard_protocol::auth::{
    ChangePassword, ChangePublicId, IdentityVerified, Me, TotpCode, TotpDisabledReason,
    TotpRecoveryCodes, TotpSetup, TotpSetupRequest, UpdateMe, VerifyIdentity,
};

use crate::account_rules::{
    account_key, check_display_name, check_public_id, recovery_code_hash, totp_disabled_event,
};
use crate::auth::Auth;
use crate::error::{Error, Json, Result};
use crate::sessions::{reauthenticate, record_failure, second_factor_ok};
use crate::state::App;
use switchboard_service::clock::{EntropyExt, Millis, to_datetime};
use switchboard_service::{password, phone, totp};
use switchboard_store::AccountRow;

/// The public ID may change once in this long.
pub const PUBLIC_ID_CHANGE_EVERY_MS: Millis = 365 * 24 * 3600 * 1000;
pub const RECOVERY_CODES: usize = 10;

fn me(a: &AccountRow) -> Me {
    Me {
        account_id: a.id.clone(),
        public_id: a.public_id.clone(),
        display_name: a.display_name.clone(),
        phone: a.phone.clone(),
        is_secondary: a.is_secondary(),
        totp_enabled: a.totp_secret.is_some(),
        identity_verified: a.identity_verified_at.is_some(),
        created_at: to_datetime(a.created_at),
        public_id_changeable_at: a
            .public_id_changed_at
            .map(|t| to_datetime(t + PUBLIC_ID_CHANGE_EVERY_MS)),
    }
}

async fn reload(app: &App, id: &str) -> Result<AccountRow> {
    app.store
        .account_by_id(id)
        .await?
        .ok_or_else(|| Error::new(ErrorCode::Unauthorized, "this account no longer exists"))
}

/// The signed-in account
#[utoipa::path(get, path = "/v1/me", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = switchboard_protocol::ErrorBody)))]
pub async fn get_me(auth: Auth) -> Json<Me> {
    Json(me(&auth.account))
}

/// Change the display name
#[utoipa::path(patch, path = "/v1/me", tag = "me", security(("bearer" = [])), request_body = UpdateMe,
    responses((status = 200, body = Me),
              (status = 400, description = "invalid_display_name", body = switchboard_protocol::ErrorBody)))]
pub async fn update_me(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<UpdateMe>,
) -> Result<Json<Me>> {
    let name = check_display_name(&req.display_name)?;
    app.store
        .account_set_display_name(&auth.account.id, &name)
        .await?;
    Ok(Json(me(&reload(&app, &auth.account.id).await?)))
}

/// Change the public ID (at most once in 365 days)
#[utoipa::path(put, path = "/v1/me/public_id", tag = "me", security(("bearer" = [])), request_body = ChangePublicId,
    responses((status = 200, body = Me),
              (status = 400, description = "public_id_invalid", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "public_id_taken, public_id_change_limit", body = switchboard_protocol::ErrorBody)))]
pub async fn change_public_id(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<ChangePublicId>,
) -> Result<Json<Me>> {
    check_public_id(&req.public_id)?;
    if let Some(other) = app.store.account_by_public_id(&req.public_id).await?
        && other.id != auth.account.id
    {
        return Err(Error::new(
            ErrorCode::PublicIdTaken,
            "that public ID is taken",
        ));
    }
    let now = app.clock.now_ms();
    if !app
        .store
        .account_change_public_id(
            &auth.account.id,
            &req.public_id,
            now,
            now - PUBLIC_ID_CHANGE_EVERY_MS,
        )
        .await?
    {
        let when = auth
            .account
            .public_id_changed_at
            .map(|t| {
                to_datetime(t + PUBLIC_ID_CHANGE_EVERY_MS)
                    .date()
                    .to_string()
            })
            .unwrap_or_default();
        return Err(Error::new(
            ErrorCode::PublicIdChangeLimit,
            format!("a public ID can change once a year; the next change is possible on {when}"),
        ));
    }
    tracing::info!(account = %auth.account.id, "public ID changed");
    Ok(Json(me(&reload(&app, &auth.account.id).await?)))
}

/// Change the password; every other session is signed out
///
/// The current password is checked like a sign-in: a wrong one counts as a failed sign-in,
/// and while the account must wait (or is locked) no password is compared at all.
#[utoipa::path(post, path = "/v1/me/password", tag = "me", security(("bearer" = [])), request_body = ChangePassword,
    responses((status = 204),
              (status = 400, description = "password_too_weak", body = switchboard_protocol::ErrorBody),
              (status = 401, description = "invalid_credentials", body = switchboard_protocol::ErrorBody),
              (status = 423, description = "account_locked", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "login_throttled, with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn change_password(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<ChangePassword>,
) -> Result<StatusCode> {
    let normalised = password::check_policy(&req.new_password)?;
    reauthenticate(&app, &auth.account, &req.current_password).await?;
    let hash = app.hasher.hash(normalised).await?;
    let revoked = app
        .store
        .account_set_password(
            &auth.account.id,
            &hash,
            Some(&auth.session.id),
            app.clock.now_ms(),
            &crate::account_rules::revoked_event,
        )
        .await?;
    app.hub.publish(&revoked);
    Ok(StatusCode::NO_CONTENT)
}

/// Real-name verification
///
/// Needed before sending money, claiming red envelopes or topping up. For numbers of
/// mainland China the ID is the 18-character resident identity number. The number itself is
/// never stored, only a keyed hash (HMAC-SHA256 with the service's `identity.hmac_secret`) and
/// a masked form.
#[utoipa::path(post, path = "/v1/me/identity", tag = "me", security(("bearer" = [])), request_body = VerifyIdentity,
    responses((status = 200, body = IdentityVerified),
              (status = 400, description = "identity_invalid", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "identity_already_verified, identity_limit", body = switchboard_protocol::ErrorBody)))]
pub async fn verify_identity(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<VerifyIdentity>,
) -> Result<Json<IdentityVerified>> {
    if auth.account.identity_verified_at.is_some() {
        return Err(Error::new(
            ErrorCode::IdentityAlreadyVerified,
            "this account is verified already",
        ));
    }
    let region = phone::parse(&auth.account.phone)
        .map(|p| p.region)
        .unwrap_or_default();
    let today = to_datetime(app.clock.now_ms()).date();
    let verified = app
        .identity
        .verify(&region, &req.legal_name, &req.id_number, today)?;
    let id_hash = app.id_number_key.digest(&verified.id_number_normalised)?;
    if !app
        .store
        .account_set_identity(
            &auth.account.id,
            &switchboard_store::IdentityRecord {
                legal_name: &verified.legal_name,
                id_number_hash: &id_hash,
                id_number_hash_kind: switchboard_service::identity::ID_NUMBER_HASH_KIND,
                id_number_masked: &verified.id_number_masked,
            },
            app.config.identity.accounts_per_id,
            app.clock.now_ms(),
        )
        .await?
    {
        return Err(Error::new(
            ErrorCode::IdentityAlreadyVerified,
            "this account is verified already",
        ));
    }
    Ok(Json(IdentityVerified {
        identity_verified: true,
        legal_name: verified.legal_name,
        id_number_masked: verified.id_number_masked,
    }))
}

/// Start setting up two-step verification
///
/// Needs the account password (checked like a sign-in). Returns a new secret to scan;
/// nothing is on until it is confirmed with a code.
#[utoipa::path(post, path = "/v1/me/totp", tag = "me", security(("bearer" = [])), request_body = TotpSetupRequest,
    responses((status = 200, body = TotpSetup),
              (status = 401, description = "invalid_credentials", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "totp_already_enabled", body = switchboard_protocol::ErrorBody),
              (status = 423, description = "account_locked", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "login_throttled, with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn totp_setup(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<TotpSetupRequest>,
) -> Result<Json<TotpSetup>> {
    if auth.account.totp_secret.is_some() {
        return Err(already_enabled());
    }
    reauthenticate(&app, &auth.account, &req.password).await?;
    let secret = totp::encode_secret(&app.entropy.bytes::<20>());
    app.store
        .totp_set_pending(&auth.account.id, &secret)
        .await?;
    Ok(Json(TotpSetup {
        otpauth_uri: totp::otpauth_uri(&secret, &auth.account.public_id),
        secret,
    }))
}

fn already_enabled() -> Error {
    Error::new(
        ErrorCode::TotpAlreadyEnabled,
        "two-step verification is on already; turn it off first to use a new authenticator",
    )
}

/// Confirm two-step verification with a first code
///
/// Needs the account password again (checked like a sign-in) and a code from the new
/// authenticator. Turns it on and returns 10 one-time recovery codes, shown this once.
#[utoipa::path(post, path = "/v1/me/totp/confirm", tag = "me", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 200, body = TotpRecoveryCodes),
              (status = 401, description = "invalid_credentials, totp_invalid", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "totp_already_enabled, totp_not_enabled (no setup started)", body = switchboard_protocol::ErrorBody),
              (status = 423, description = "account_locked", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "login_throttled, with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn totp_confirm(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<TotpCode>,
) -> Result<Json<TotpRecoveryCodes>> {
    if auth.account.totp_secret.is_some() {
        return Err(already_enabled());
    }
    let Some(secret) = auth
        .account
        .totp_pending_secret
        .as_deref()
        .and_then(totp::decode_secret)
    else {
        return Err(Error::new(
            ErrorCode::TotpNotEnabled,
            "start the setup first (POST /v1/me/totp)",
        ));
    };
    reauthenticate(&app, &auth.account, &req.password).await?;
    // A wrong code here is no guess at a secret the caller lacks (they were just shown it):
    // a mistyped code or a skewed clock, not a failed sign-in.
    let Some(step) = totp::matching_step(&secret, &req.code, app.clock.now_ms()) else {
        return Err(Error::new(
            ErrorCode::TotpInvalid,
            "that code does not match; check the authenticator's clock",
        ));
    };
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let raw = data_encoding::BASE32_NOPAD
                .encode(&app.entropy.bytes::<5>())
                .to_ascii_lowercase();
            format!("{}-{}", &raw[..4], &raw[4..8])
        })
        .collect();
    let hashes: Vec<String> = codes.iter().map(|c| recovery_code_hash(c)).collect();
    if !app
        .store
        .totp_enable(&auth.account.id, &hashes, step)
        .await?
    {
        return Err(Error::new(
            ErrorCode::TotpNotEnabled,
            "start the setup first (POST /v1/me/totp)",
        ));
    }
    tracing::info!(account = %auth.account.id, "two-step verification on");
    Ok(Json(TotpRecoveryCodes {
        recovery_codes: codes,
    }))
}

/// Turn two-step verification off
///
/// Needs the account password (checked like a sign-in) and a current code or a recovery
/// code; a wrong code counts as a failed sign-in. Every device of the account gets an
/// `account.totp_disabled` event.
#[utoipa::path(delete, path = "/v1/me/totp", tag = "me", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 204),
              (status = 401, description = "invalid_credentials, totp_invalid", body = switchboard_protocol::ErrorBody),
              (status = 409, description = "totp_not_enabled", body = switchboard_protocol::ErrorBody),
              (status = 423, description = "account_locked", body = switchboard_protocol::ErrorBody),
              (status = 429, description = "login_throttled, with Retry-After", body = switchboard_protocol::ErrorBody)))]
pub async fn totp_disable(
    State(app): State<App>,
    auth: Auth,
    Json(req): Json<TotpCode>,
) -> Result<StatusCode> {
    let not_enabled = || Error::new(ErrorCode::TotpNotEnabled, "two-step verification is not on");
    if auth.account.totp_secret.is_none() {
        return Err(not_enabled());
    }
    reauthenticate(&app, &auth.account, &req.password).await?;
    if !second_factor_ok(&app, &auth.account, &req.code).await? {
        // Someone with the password (and a session) guessing codes: a failed sign-in.
        record_failure(&app, &[account_key(&auth.account.id)]).await?;
        return Err(Error::new(
            ErrorCode::TotpInvalid,
            "that code is wrong or was used already",
        ));
    }
    let notice = totp_disabled_event(&auth.account.id, TotpDisabledReason::TurnedOff)?;
    let Some(event) = app
        .store
        .totp_disable(&auth.account.id, &notice, app.clock.now_ms())
        .await?
    else {
        return Err(not_enabled());
    };
    app.hub.publish(&[event]);
    tracing::info!(account = %auth.account.id, "two-step verification off");
    Ok(StatusCode::NO_CONTENT)
}
