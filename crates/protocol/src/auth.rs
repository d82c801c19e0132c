//! Accounts, SMS codes, sessions and two-factor authentication (SPEC §1.1–1.2).
//!
//! Types that carry a password, a code or a token print it as `<redacted>` in `Debug`, so a
//! stray `{:?}` in a log can never leak one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Timestamp;

/// What an SMS code may be used for; a code works only for the purpose it was sent for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum SmsPurpose {
    Register,
    Login,
    Recover,
}

impl SmsPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsPurpose::Register => "register",
            SmsPurpose::Login => "login",
            SmsPurpose::Recover => "recover",
        }
    }
}

/// `POST /v1/sms/codes`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SmsCodeRequest {
    /// E.164, with the country code: `+8613812345678`.
    pub phone: String,
    pub purpose: SmsPurpose,
}

/// `202` to `POST /v1/sms/codes`: the code is on its way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SmsCodeSent {
    /// Seconds the code stays valid.
    pub expires_in: u64,
    /// Seconds before another code may be requested for this number and purpose.
    pub resend_after: u64,
}

/// `GET /v1/dev/sms-outbox?phone=` (development services only).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DevSmsOutbox {
    /// Oldest first.
    pub messages: Vec<DevSms>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DevSms {
    pub phone: String,
    pub purpose: SmsPurpose,
    pub code: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub sent_at: Timestamp,
}

/// `POST /v1/accounts`
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub phone: String,
    pub sms_code: String,
    pub public_id: String,
    pub password: String,
    pub display_name: String,
}

impl std::fmt::Debug for RegisterRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterRequest")
            .field("phone", &self.phone)
            .field("public_id", &self.public_id)
            .field("display_name", &self.display_name)
            .finish_non_exhaustive()
    }
}

/// An account as its owner and sign-in answers see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AccountSummary {
    pub account_id: String,
    pub public_id: String,
    pub display_name: String,
    /// The second account of a phone number.
    pub is_secondary: bool,
}

/// `POST /v1/recovery`: a new password through an SMS code; every session is signed out.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct RecoveryRequest {
    pub phone: String,
    pub sms_code: String,
    pub public_id: String,
    pub new_password: String,
}

impl std::fmt::Debug for RecoveryRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryRequest")
            .field("phone", &self.phone)
            .field("public_id", &self.public_id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RecoveryDone {
    pub account: AccountSummary,
    /// How many sessions were signed out.
    pub sessions_revoked: u64,
}

/// `POST /v1/sessions`: sign in with a public ID or a phone number and the password.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// A public ID, or a phone number in E.164.
    pub login: String,
    pub password: String,
    pub device_name: String,
    /// Required when the account has two-factor authentication on: a TOTP code or one of
    /// the recovery codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_code: Option<String>,
}

impl std::fmt::Debug for SignInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInRequest")
            .field("login", &self.login)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

/// `POST /v1/sessions/sms`: sign in with an SMS code sent for `login`.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct SmsSignInRequest {
    pub phone: String,
    pub sms_code: String,
    /// Which account, when the number has more than one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// Required when the account has two-factor authentication on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_code: Option<String>,
}

impl std::fmt::Debug for SmsSignInRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSignInRequest")
            .field("phone", &self.phone)
            .field("public_id", &self.public_id)
            .field("device_name", &self.device_name)
            .finish_non_exhaustive()
    }
}

/// `201` to a sign-in: the bearer token is shown this once and never stored in clear.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SessionCreated {
    pub token: String,
    pub session_id: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
    pub account: AccountSummary,
}

impl std::fmt::Debug for SessionCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCreated")
            .field("token", &"<redacted>")
            .field("session_id", &self.session_id)
            .field("expires_at", &self.expires_at)
            .field("account", &self.account)
            .finish()
    }
}

/// `GET /v1/sessions`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SessionList {
    pub sessions: Vec<SessionInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SessionInfo {
    pub id: String,
    pub device_name: String,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: Timestamp,
    /// The session this request was made with.
    pub current: bool,
}

/// `GET /v1/me`: the signed-in account as its owner sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Me {
    pub account_id: String,
    pub public_id: String,
    pub display_name: String,
    pub phone: String,
    pub is_secondary: bool,
    pub totp_enabled: bool,
    pub identity_verified: bool,
    #[cfg_attr(feature = "ts", ts(type = "string"))]
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When the public ID may next be changed; absent when it may be changed now.
    #[cfg_attr(feature = "ts", ts(type = "string | null"))]
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub public_id_changeable_at: Option<Timestamp>,
}

/// `PATCH /v1/me`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    pub display_name: String,
}

/// `PUT /v1/me/public_id`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ChangePublicId {
    pub public_id: String,
}

/// `POST /v1/me/password`: every other session is signed out.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    pub current_password: String,
    pub new_password: String,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangePassword").finish_non_exhaustive()
    }
}

/// `POST /v1/me/identity`: real-name verification.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct VerifyIdentity {
    pub legal_name: String,
    /// For numbers of mainland China: the 18-character resident identity card number.
    pub id_number: String,
}

impl std::fmt::Debug for VerifyIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyIdentity").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IdentityVerified {
    pub identity_verified: bool,
    /// The legal name as recorded.
    pub legal_name: String,
    /// The ID number with all but its last four characters masked.
    pub id_number_masked: String,
}

/// `POST /v1/me/totp`: a new secret to scan; nothing changes until it is confirmed.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TotpSetup {
    /// Base32, as authenticator apps expect.
    pub secret: String,
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSetup").finish_non_exhaustive()
    }
}

/// `POST /v1/me/totp`: the account password, proven again before a second factor is set up
/// (a stolen session alone must not be able to bind an attacker's authenticator).
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TotpSetupRequest {
    pub password: String,
}

impl std::fmt::Debug for TotpSetupRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSetupRequest").finish_non_exhaustive()
    }
}

/// `POST /v1/me/totp/confirm` and `DELETE /v1/me/totp`: a TOTP code (or, where it says so, a
/// recovery code) and the account password. Turning two-step verification on or off needs
/// both: a stolen session alone can do neither.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
    pub password: String,
}

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpCode").finish_non_exhaustive()
    }
}

/// `200` to `POST /v1/me/totp/confirm`: shown once, each usable once.
#[derive(Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TotpRecoveryCodes {
    pub recovery_codes: Vec<String>,
}

impl std::fmt::Debug for TotpRecoveryCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecoveryCodes").finish_non_exhaustive()
    }
}

/// Why two-step verification went off, in an `account.totp_disabled` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TotpDisabledReason {
    /// Someone with the password and a code turned it off (`DELETE /v1/me/totp`).
    TurnedOff,
    /// The account was recovered by SMS: a code sent to the phone replaced the password, and
    /// the authenticator with it.
    SmsRecovery,
}

/// Data of `account.totp_disabled`: a security notice in the account's log, so every device
/// of the account learns that the second factor is gone (before a recovery signs them out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TotpDisabled {
    pub reason: TotpDisabledReason,
}

/// `GET /healthz`
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Health {
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_secrets() {
        let req = SignInRequest {
            login: "alice_w".into(),
            password: "hunter2-secret".into(),
            device_name: "laptop".into(),
            totp_code: Some("123456".into()),
        };
        let shown = format!("{req:?}");
        assert!(
            !shown.contains("hunter2-secret"),
            "a password must never be printed: {shown}"
        );
        assert!(
            !shown.contains("123456"),
            "a TOTP code must never be printed: {shown}"
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<SmsCodeRequest>(
            r#"{"phone":"+8613800138000","purpose":"login","extra":1}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
