//! The service's errors as HTTP answers, and the extractors that turn every bad request into
//! one.
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

use switchboard_service::error::Error as DomainError;
use switchboard_store::StoreError;

/// The domain's error as an HTTP answer: a newtype, because how an error is answered over
/// HTTP is this crate's business and `IntoResponse` may not be implemented here for the
/// service's own type. It derefs to that type, so a handler reads `code` and `message` as before.
#[derive(Debug)]
pub struct Error(pub DomainError);

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(DomainError::new(code, message))
    }

    pub fn retry_after(self, secs: u64) -> Self {
        Self(self.0.retry_after(secs))
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self(DomainError::invalid_request(message))
    }

    /// A failure the client cannot fix; the detail goes to the log, never to the client.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self(DomainError::internal(detail))
    }
}

impl std::ops::Deref for Error {
    type Target = DomainError;
    fn deref(&self) -> &DomainError {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut DomainError {
        &mut self.0
    }
}

impl From<DomainError> for Error {
    fn from(e: DomainError) -> Self {
        Self(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self(DomainError::from(e))
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let DomainError {
            code,
            message,
            retry_after,
            public_ids,
        } = self.0;
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ApiError {
                code,
                message,
                public_ids,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
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
