//! The domain's error: a typed code the client can branch on and a message a person can read.
//! The HTTP layer answers it as `{"error": {"code", "message"}}` with the code's status.

use switchboard_protocol::ErrorCode;

use switchboard_store::{DbErrorKind, StoreError};

/// What went wrong, as the client will be told.
#[derive(Debug)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds, sent as `Retry-After`.
    pub retry_after: Option<u64>,
    pub public_ids: Option<Vec<String>>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
            public_ids: None,
        }
    }

    pub fn retry_after(mut self, secs: u64) -> Self {
        // Never tell a client to retry "in 0 seconds": that invites a busy loop.
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// A failure the client cannot fix; the detail goes to the log, never to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        Self::new(
            ErrorCode::Internal,
            "something went wrong on the service; try again",
        )
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::PublicIdTaken => {
                Error::new(ErrorCode::PublicIdTaken, "that public ID is taken")
            }
            StoreError::PhoneAccountLimit => Error::new(
                ErrorCode::PhoneAccountLimit,
                "this phone number already has the most accounts allowed",
            ),
            StoreError::IdentityLimit => Error::new(
                ErrorCode::IdentityLimit,
                "this ID number verifies the most accounts allowed already (identity.accounts_per_id)",
            ),
            StoreError::OfficialNameTaken => Error::new(
                ErrorCode::OfficialNameTaken,
                "another official account has this name, or one that looks the same",
            ),
            StoreError::CodeUsed => Error::new(
                ErrorCode::SmsCodeExpired,
                "that SMS code was used meanwhile; request a new one",
            ),
            StoreError::GroupFull => {
                Error::new(ErrorCode::GroupTooLarge, "a group has at most 500 members")
            }
            StoreError::NotPending => Error::new(
                ErrorCode::RequestNotFound,
                "that contact request is no longer pending",
            ),
            StoreError::InsufficientFunds => Error::new(
                ErrorCode::InsufficientFunds,
                "the balance does not cover this",
            ),
            StoreError::EnvelopeEmpty => Error::new(
                ErrorCode::EnvelopeEmpty,
                "this red envelope has nothing left to claim",
            ),
            StoreError::AlreadyClaimed => Error::new(
                ErrorCode::AlreadyClaimed,
                "you have claimed this red envelope already",
            ),
            StoreError::NoEnvelope => {
                Error::new(ErrorCode::EnvelopeNotFound, "no such red envelope")
            }
            StoreError::Duplicate => Error::new(
                ErrorCode::IdempotencyConflict,
                "this was sent before with different content",
            ),
            // PostgreSQL refuses some text SQLite stores (NUL characters): bad input, and the
            // transaction it was in wrote nothing.
            StoreError::Database(e) if e.kind == DbErrorKind::InvalidValue => {
                Error::invalid_request(
                    "the request contains characters that cannot be stored (such as NUL)",
                )
            }
            // Callers that charge a budget turn this into their 429 with `limits::refused`,
            // which knows the budget; one that did not is a bug.
            StoreError::OverBudget { .. } => {
                Error::internal("a budget was charged without its answer")
            }
            StoreError::OfficialLimit(which) => Error::new(
                ErrorCode::OfficialLimit,
                match which {
                    switchboard_store::OfficialLimit::Operators => {
                        "this official account has the most operators allowed (official.max_operators)"
                    }
                    switchboard_store::OfficialLimit::PerOperator => {
                        "that account operates the most official accounts allowed (official.max_per_operator)"
                    }
                },
            ),
            StoreError::NotAllowed => Error::new(
                ErrorCode::OfficialForbidden,
                "your role on this official account does not allow this, or you no longer operate it",
            ),
            StoreError::NoMoment => Error::new(
                ErrorCode::MomentNotFound,
                "no such post, or not one you may see",
            ),
            StoreError::NoConversation => Error::new(
                ErrorCode::ConversationNotFound,
                "this customer has not written to this official account",
            ),
            StoreError::ClaimHeld { by, until } => Error::new(
                ErrorCode::ConversationClaimed,
                format!(
                    "{by} is answering this customer; their claim lapses at {} unless they answer",
                    crate::clock::to_datetime(until)
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                ),
            ),
            StoreError::Encoding(e) => Error::internal(e),
            StoreError::Database(e) => {
                tracing::error!(error = %e, "storage failure");
                Error::new(
                    ErrorCode::Unavailable,
                    "the service's storage is unavailable; try again",
                )
            }
        }
    }
}
