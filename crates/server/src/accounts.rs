//! Registration, account recovery and the public-ID rules.

use axum::extract::State;
use axum::http::StatusCode;
use switchboard_protocol::ErrorCode;
use switchboard_protocol::auth::{
    AccountSummary, RecoveryDone, RecoveryRequest, RegisterRequest, SmsPurpose, TotpDisabledReason,
};

use crate::account_rules::{check_display_name, check_public_id, summary};
use crate::error::{Error, Json, Result};
use crate::sms;
use crate::state::App;
use switchboard_service::clock::EntropyExt;
use switchboard_service::{password, phone};
use switchboard_store::{NewAccount, Recovery};

/// Create an account
///
/// With a `register` SMS code for the phone number. The number's first account is its
/// primary one; the next (up to `accounts.per_phone`) are secondary, each with its own public
/// ID, password and wallet. A number that holds the most accounts allowed already answers
/// `phone_account_limit`, but only to a caller with the right code: before the code is
/// proven nothing here depends on what the number holds.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts", request_body = RegisterRequest,
    responses(
        (status = 201, body = AccountSummary),
        (status = 400, description = "invalid_phone, public_id_invalid, password_too_weak, invalid_display_name, sms_code_invalid, sms_code_expired", body = switchboard_protocol::ErrorBody),
        (status = 403, description = "region_not_supported", body = switchboard_protocol::ErrorBody),
        (status = 409, description = "phone_account_limit, public_id_taken", body = switchboard_protocol::ErrorBody),
    ))]
pub async fn register(
    State(app): State<App>,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<AccountSummary>)> {
    // Everything that can be checked without the code is checked first, so a typo in the
    // form never burns a try of the code.
    let phone = phone::parse(&req.phone)?;
    sms::check_region(&app, &phone)?;
    check_public_id(&req.public_id)?;
    let display_name = check_display_name(&req.display_name)?;
    let normalised = password::check_policy(&req.password)?;
    if app
        .store
        .account_by_public_id(&req.public_id)
        .await?
        .is_some()
    {
        return Err(Error::new(
            ErrorCode::PublicIdTaken,
            "that public ID is taken",
        ));
    }
    let code = sms::check_code(&app, &phone.e164, SmsPurpose::Register, &req.sms_code).await?;
    // The phone is proven: now its accounts may be counted (before the costly hash; the store
    // decides for certain, under the number's lock, when it creates the account).
    let per_phone = app.config.accounts.per_phone;
    if app.store.accounts_by_phone(&phone.e164).await?.len() >= per_phone as usize {
        return Err(Error::new(
            ErrorCode::PhoneAccountLimit,
            format!("this phone number already has {per_phone} accounts, the most allowed"),
        ));
    }
    let password_hash = app.hasher.hash(normalised).await?;
    let account = app
        .store
        .account_create(
            &code.id,
            &NewAccount {
                id: app.entropy.id("acc_"),
                phone: phone.e164.clone(),
                public_id: req.public_id.clone(),
                display_name,
                password_hash,
                created_at: app.clock.now_ms(),
                per_phone,
            },
        )
        .await?;
    app.metrics.count("accounts_created_total");
    tracing::info!(account = %account.id, secondary = account.is_secondary(), "account created");
    Ok((StatusCode::CREATED, Json(summary(&account))))
}

/// Recover an account
///
/// A new password through a `recover` SMS code: every session of the account is signed out
/// and a sign-in lock is lifted. The code proves the phone, not the authenticator, so
/// two-step verification goes off too; every device of the account is told
/// (`account.totp_disabled`) before it is signed out.
#[utoipa::path(post, path = "/v1/recovery", tag = "accounts", request_body = RecoveryRequest,
    responses(
        (status = 200, body = RecoveryDone),
        (status = 400, description = "invalid_phone, password_too_weak, sms_code_invalid, sms_code_expired", body = switchboard_protocol::ErrorBody),
        (status = 404, description = "account_not_found", body = switchboard_protocol::ErrorBody),
    ))]
pub async fn recover(
    State(app): State<App>,
    Json(req): Json<RecoveryRequest>,
) -> Result<Json<RecoveryDone>> {
    let phone = phone::parse(&req.phone)?;
    let normalised = password::check_policy(&req.new_password)?;
    let code = sms::check_code(&app, &phone.e164, SmsPurpose::Recover, &req.sms_code).await?;
    // Only now, with the phone proven, may the answer say whether the ID belongs to it.
    let account = app
        .store
        .accounts_by_phone(&phone.e164)
        .await?
        .into_iter()
        .find(|a| a.public_id.eq_ignore_ascii_case(req.public_id.trim()))
        .ok_or_else(|| {
            Error::new(
                ErrorCode::AccountNotFound,
                "this phone number has no account with that public ID",
            )
        })?;
    let hash = app.hasher.hash(normalised).await?;
    let totp_notice =
        crate::account_rules::totp_disabled_event(&account.id, TotpDisabledReason::SmsRecovery)?;
    let recovered = app
        .store
        .account_recover(
            &Recovery {
                code_id: &code.id,
                account_id: &account.id,
                password_hash: &hash,
                // The account's failures and lock, and those of sign-ins by its number.
                login_keys: &[
                    crate::account_rules::account_key(&account.id),
                    crate::account_rules::phone_key(&phone.e164),
                ],
                totp_notice: &totp_notice,
            },
            app.clock.now_ms(),
            &crate::account_rules::revoked_event,
        )
        .await?;
    app.hub.publish(&recovered.events);
    tracing::info!(
        account = %account.id,
        revoked = recovered.sessions_revoked,
        totp_disabled = recovered.totp_disabled,
        "account recovered"
    );
    Ok(Json(RecoveryDone {
        account: summary(&account),
        sessions_revoked: recovered.sessions_revoked,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn public_id_examples() {
        for ok in ["alice_w", "Bob-2024", "z12345", "a".repeat(20).as_str()] {
            assert!(check_public_id(ok).is_ok(), "{ok} is valid");
        }
        for bad in [
            "alice",
            "1alice",
            "_alice1",
            "alice w",
            "alicé_1",
            "a".repeat(21).as_str(),
            "g_team1",
            "G_abcdef",
        ] {
            assert_eq!(
                check_public_id(bad).unwrap_err().code,
                ErrorCode::PublicIdInvalid,
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn public_id_rule_matches_its_definition(s in "[a-zA-Z0-9_\\-é ]{0,24}") {
            let b = s.as_bytes();
            let expected = (6..=20).contains(&b.len())
                && b[0].is_ascii_alphabetic()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
                && !s.to_ascii_lowercase().starts_with("g_")
                && !s.to_ascii_lowercase().starts_with("o_");
            prop_assert_eq!(check_public_id(&s).is_ok(), expected);
        }
    }
}
