//! Errors as typed codes. Every failure the service reports is
//! `{"error": {"code": "<snake_case>", "message": "<human text>"}}`; clients branch on `code`,
//! people read `message`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal), )*) => {
        /// Every error code the service can answer with, and the HTTP status it comes with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, for exhaustive tests and documentation.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The code as it appears on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status that carries this code.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }
        }
    };
}

error_codes! {
    /// Malformed JSON, a missing or unknown field, a bad query string or path parameter.
    InvalidRequest = ("invalid_request", 400),
    /// No such route.
    NotFound = ("not_found", 404),
    /// The route exists but not with this method.
    MethodNotAllowed = ("method_not_allowed", 405),
    /// The request body is larger than the service accepts.
    PayloadTooLarge = ("payload_too_large", 413),
    /// A bug on the service's side; the message never carries details.
    Internal = ("internal", 500),
    /// The service's storage or a downstream it needs is unavailable right now.
    Unavailable = ("unavailable", 503),

    /// Not a valid E.164 phone number for its country's numbering plan.
    InvalidPhone = ("invalid_phone", 400),
    /// The number belongs to a region this service does not serve.
    RegionNotSupported = ("region_not_supported", 403),
    /// Too many requests; `Retry-After` says when to try again.
    RateLimited = ("rate_limited", 429),
    /// The SMS code is wrong (tries remain).
    SmsCodeInvalid = ("sms_code_invalid", 400),
    /// No usable SMS code: expired, already used, burned by wrong tries, or never sent.
    SmsCodeExpired = ("sms_code_expired", 400),
    /// The SMS gateway did not accept the message; nothing was recorded.
    SmsDeliveryFailed = ("sms_delivery_failed", 502),

    /// The phone number already has as many accounts as allowed.
    PhoneAccountLimit = ("phone_account_limit", 409),
    /// The public ID breaks the format rules.
    PublicIdInvalid = ("public_id_invalid", 400),
    /// The public ID is used by another account (compared case-insensitively).
    PublicIdTaken = ("public_id_taken", 409),
    /// The public ID was changed less than a year ago.
    PublicIdChangeLimit = ("public_id_change_limit", 409),
    /// Too short, too long, or a common password.
    PasswordTooWeak = ("password_too_weak", 400),
    /// The display name is empty, too long or holds control characters.
    InvalidDisplayName = ("invalid_display_name", 400),
    /// The legal name or national ID number is not valid.
    IdentityInvalid = ("identity_invalid", 400),
    /// The account's real name is verified already.
    IdentityAlreadyVerified = ("identity_already_verified", 409),
    /// This ID number verifies the most accounts allowed already (`identity.accounts_per_id`).
    IdentityLimit = ("identity_limit", 409),
    /// The account has not passed real-name verification.
    IdentityUnverified = ("identity_unverified", 403),
    /// No account with that public ID on that phone number.
    AccountNotFound = ("account_not_found", 404),

    /// The phone number has several accounts: sign in with one of `public_ids`.
    AccountChoiceRequired = ("account_choice_required", 409),
    /// Wrong login or password (the same answer whether or not the account exists).
    InvalidCredentials = ("invalid_credentials", 401),
    /// Too many failed sign-ins; `Retry-After` says when the next try is allowed.
    LoginThrottled = ("login_throttled", 429),
    /// Locked after too many failed sign-ins; recover the account by SMS.
    AccountLocked = ("account_locked", 423),
    /// Two-factor authentication is on: send `totp_code`.
    TotpRequired = ("totp_required", 401),
    /// The TOTP or recovery code is wrong or was used already.
    TotpInvalid = ("totp_invalid", 401),
    /// Two-factor authentication is already on.
    TotpAlreadyEnabled = ("totp_already_enabled", 409),
    /// Two-factor authentication is not on (or was never set up).
    TotpNotEnabled = ("totp_not_enabled", 409),

    /// No bearer token, or one the service does not know.
    Unauthorized = ("unauthorized", 401),
    /// This session was signed out (by the user, another device, or account recovery).
    SessionRevoked = ("session_revoked", 401),
    /// This session is past its expiry; sign in again.
    SessionExpired = ("session_expired", 401),
    /// No session with that id on this account.
    SessionNotFound = ("session_not_found", 404),

    /// No account has that public ID.
    UserNotFound = ("user_not_found", 404),
    /// That would be a contact request to oneself.
    CannotAddSelf = ("cannot_add_self", 400),
    /// The two accounts are contacts already.
    AlreadyContacts = ("already_contacts", 409),
    /// No pending contact request with that id addressed to this account.
    RequestNotFound = ("request_not_found", 404),
    /// Only contacts can message each other or be added to groups.
    NotAContact = ("not_a_contact", 403),
    /// No such group, or this account is not a member.
    GroupNotFound = ("group_not_found", 404),
    /// Only the group's owner may remove other members.
    NotGroupOwner = ("not_group_owner", 403),
    /// A group has at most 500 members.
    GroupTooLarge = ("group_too_large", 409),
    /// The group name is empty or too long.
    InvalidGroupName = ("invalid_group_name", 400),
    /// A message body has 1 to 4096 characters.
    InvalidMessageBody = ("invalid_message_body", 400),
    /// The same idempotency key (or client id) was used before with a different request.
    IdempotencyConflict = ("idempotency_conflict", 409),

    /// Not a whole number of fen above zero, or above the limit for this operation.
    InvalidAmount = ("invalid_amount", 400),
    /// The balance does not cover this.
    InsufficientFunds = ("insufficient_funds", 402),
    /// The funding source refused the top-up.
    FundingFailed = ("funding_failed", 402),
    /// No funding source is configured (outside development mode the operator names one with
    /// `funding.webhook_url`), or it cannot be reached: nothing was charged or credited.
    FundingUnavailable = ("funding_unavailable", 503),
    /// No such red envelope, or not one this account may see.
    EnvelopeNotFound = ("envelope_not_found", 404),
    /// This account has claimed this envelope already.
    AlreadyClaimed = ("already_claimed", 409),
    /// Every share is claimed, or the envelope expired and was refunded.
    EnvelopeEmpty = ("envelope_empty", 409),
    /// A red envelope's count does not fit its recipient or total.
    InvalidEnvelope = ("invalid_envelope", 400),

    /// No such official account.
    OfficialNotFound = ("official_not_found", 404),
    /// The caller does not operate this official account, or its role does not allow this.
    OfficialForbidden = ("official_forbidden", 403),
    /// Over `official.max_operators` or `official.max_per_operator`; the message names which.
    OfficialLimit = ("official_limit", 409),
    /// Another official account has this name or one that looks the same (Unicode TS #39).
    OfficialNameTaken = ("official_name_taken", 409),
    /// A name, description or key name is empty, too long or holds control characters.
    InvalidOfficialAccount = ("invalid_official_account", 400),
    /// An article's title or body is empty or too long.
    InvalidArticle = ("invalid_article", 400),
    /// Only followers may message an official account.
    NotFollowing = ("not_following", 403),
    /// The account named does not operate this official account (or is its owner).
    OperatorNotFound = ("operator_not_found", 404),
    /// No conversation between this customer and this official account.
    ConversationNotFound = ("conversation_not_found", 404),
    /// Another operator holds this conversation; the message says who and until when.
    ConversationClaimed = ("conversation_claimed", 409),
    /// No live API key with that id on this official account.
    ApiKeyNotFound = ("api_key_not_found", 404),

    /// Not an image this service keeps (JPEG, PNG, WebP or GIF, judged by its bytes).
    InvalidMedia = ("invalid_media", 400),
    /// No such image, or not one this account may see.
    MediaNotFound = ("media_not_found", 404),
    /// A post or comment with no content, too long, or with too many images.
    InvalidMoment = ("invalid_moment", 400),
    /// No such post, or not one this account may see.
    MomentNotFound = ("moment_not_found", 404),
    /// This account likes this post already.
    AlreadyLiked = ("already_liked", 409),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

/// One error: a code to branch on and a message to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// With `account_choice_required`: the public IDs to choose from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ids: Option<Vec<String>>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_their_wire_names() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(
                json,
                format!("\"{}\"", code.as_str()),
                "serde and as_str must agree"
            );
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, *code, "every code must round-trip");
        }
    }

    #[test]
    fn statuses_are_errors() {
        for code in ErrorCode::ALL {
            assert!(
                (400..600).contains(&code.http_status()),
                "{code} must not look like success"
            );
        }
    }
}
