//! Who is calling: the `Authorization: Bearer` token, and the extractor that turns it into a
//! live session and its account (or the error that says why not). Every signed-in handler
//! takes [`Auth`]; official accounts' API keys are hashed the same way.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use switchboard_protocol::ErrorCode;
use switchboard_service::clock::Millis;
use switchboard_store::{AccountRow, SessionRow};

use crate::error::Error;
use crate::state::App;

/// `last_seen_at` is written at most this often per session, not on every request.
const TOUCH_EVERY_MS: Millis = 60 * 1000;

pub fn token_hash(token: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

/// The credential of `Authorization: Bearer …`, if the request has a non-empty one (a session
/// token, or an official account's API key).
pub fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The signed-in caller: a live session and its account.
pub struct Auth {
    pub account: AccountRow,
    pub session: SessionRow,
}

impl FromRequestParts<App> for Auth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            Error::new(
                ErrorCode::Unauthorized,
                "sign in first (Authorization: Bearer <token>)",
            )
        };
        let token = bearer(parts).ok_or_else(unauthorized)?;
        let (session, account) = app
            .store
            .session_with_account(&token_hash(token))
            .await?
            .ok_or_else(unauthorized)?;
        let now = app.clock.now_ms();
        if session.revoked_at.is_some() {
            return Err(Error::new(
                ErrorCode::SessionRevoked,
                "this session was signed out; sign in again",
            ));
        }
        if now >= session.expires_at {
            return Err(Error::new(
                ErrorCode::SessionExpired,
                "this session has expired; sign in again",
            ));
        }
        if now - session.last_seen_at >= TOUCH_EVERY_MS {
            app.store.session_touch(&session.id, now).await?;
        }
        Ok(Auth { account, session })
    }
}
