//! The service's error type and the extractors that turn every bad request into one.
//!
//! Handlers return `Result<_, Error>`; whatever goes wrong becomes
//! `{"error": {"code", "message"}}` with the code's status. Rejections of axum's own
//! extractors (malformed JSON, unknown fields, a bad query or path) are mapped here too, so no
//! input ever reaches a client as plain text, a 422 or a 500.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use switchboard_protocol::{ApiError, ErrorBody, ErrorCode};

use switchboard_store::{DbErrorKind, StoreError};

/// An error answered to the client.
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

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ApiError {
                code: self.code,
                message: self.message,
                public_ids: self.public_ids,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// `axum::Json` whose rejections are our errors (400 `invalid_request` with serde's message).
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(Error::invalid_request(
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| {
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::new(ErrorCode::PayloadTooLarge, "the request body is too large")
                } else {
                    Error::invalid_request(r.body_text())
                }
            })?;
        // No text field of the API has a use for NUL, PostgreSQL cannot store it, and a
        // stored one would cut a string short in C-based clients: refused on every backend
        // alike, before anything is written.
        if has_nul_escape(&bytes) {
            return Err(Error::invalid_request(
                "text may not contain NUL characters (\\u0000)",
            ));
        }
        axum::Json::<T>::from_bytes(&bytes)
            .map(|axum::Json(v)| Json(v))
            .map_err(json_rejection)
    }
}

/// `application/json` or any `…+json` type, as axum's own `Json` accepts.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// Whether a JSON text holds the escape `\u0000` (the only way JSON can carry a NUL): a
/// backslash that is not itself escaped, then `u0000`.
fn has_nul_escape(body: &[u8]) -> bool {
    body.windows(6).enumerate().any(|(i, w)| {
        w == b"\\u0000" && body[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: JsonRejection) -> Error {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            Error::invalid_request("send the body as JSON with Content-Type: application/json")
        }
        JsonRejection::BytesRejection(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Error::new(ErrorCode::PayloadTooLarge, "the request body is too large")
        }
        // serde's own text names the field and the position, which is what a client needs.
        other => Error::invalid_request(other.body_text()),
    }
}

/// `axum::extract::Query` with our rejection.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r: QueryRejection| Error::invalid_request(r.body_text()))
    }
}

/// `axum::extract::Path` with our rejection.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r: PathRejection| Error::invalid_request(r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::has_nul_escape;

    #[test]
    fn a_nul_escape_is_found_and_an_escaped_backslash_is_not_one() {
        assert!(has_nul_escape(br#"{"a":"x\u0000y"}"#));
        assert!(has_nul_escape(br#"{"a":"\\\u0000"}"#), "\\\\ then \\u0000");
        assert!(
            !has_nul_escape(br#"{"a":"\\u0000"}"#),
            "a backslash, then text u0000"
        );
        assert!(!has_nul_escape(br#"{"a":"\u0001"}"#));
    }
}
