//! What the account, session and profile handlers share, and nothing HTTP: the checks on a
//! public ID and a display name, an account's summary, the lock keys of an account and a
//! number, and the events that sign-outs and recoveries append. Below all three handler
//! modules, so none of them imports another for these.

use sha2::{Digest, Sha256};
use switchboard_protocol::auth::{AccountSummary, TotpDisabled, TotpDisabledReason};
use switchboard_protocol::messaging::SessionRevoked;
use switchboard_protocol::{ErrorCode, EventBody};
use switchboard_store::{AccountRow, NewEvent, StoreError, StoreResult};

use crate::error::{Error, Result};

pub const PUBLIC_ID_MIN: usize = 6;
pub const PUBLIC_ID_MAX: usize = 20;

/// 6–20 characters, a letter first, then letters, digits, `_` or `-` (ASCII, so that anyone
/// can type anyone's ID). `g_…` and `o_…` are reserved: group ids and official accounts' ids
/// look like that, and a message's `to` must never be ambiguous.
pub fn check_public_id(id: &str) -> Result<()> {
    let bad = |why: &str| {
        Error::new(
            ErrorCode::PublicIdInvalid,
            format!(
                "a public ID has {PUBLIC_ID_MIN} to {PUBLIC_ID_MAX} characters, starts with a letter, \
                 and holds only letters, digits, _ and -{why}"
            ),
        )
    };
    let bytes = id.as_bytes();
    if !(PUBLIC_ID_MIN..=PUBLIC_ID_MAX).contains(&bytes.len())
        || !bytes[0].is_ascii_alphabetic()
        || !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
    {
        return Err(bad(""));
    }
    if id.len() >= 2 && id[..2].eq_ignore_ascii_case("g_") {
        return Err(bad(" (IDs starting with g_ are reserved for groups)"));
    }
    if id.len() >= 2 && id[..2].eq_ignore_ascii_case("o_") {
        return Err(bad(
            " (IDs starting with o_ are reserved for official accounts)",
        ));
    }
    Ok(())
}

/// 1–64 characters of text that cannot pass for someone else's (see [`switchboard_service::text`]).
pub fn check_display_name(name: &str) -> Result<String> {
    switchboard_service::text::check_shown(
        name,
        "a display name",
        1,
        64,
        ErrorCode::InvalidDisplayName,
    )
    .map_err(Error::from)
}

pub fn summary(a: &AccountRow) -> AccountSummary {
    AccountSummary {
        account_id: a.id.clone(),
        public_id: a.public_id.clone(),
        display_name: a.display_name.clone(),
        is_secondary: a.is_secondary(),
    }
}

/// Recovery codes are compared case- and space-insensitively.
pub fn recovery_code_hash(code: &str) -> String {
    let canonical: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    data_encoding::HEXLOWER.encode(&Sha256::digest(canonical.as_bytes()))
}

/// The `account.totp_disabled` notice for the account's log.
pub fn totp_disabled_event(
    account_id: &str,
    reason: TotpDisabledReason,
) -> Result<switchboard_store::NewEvent> {
    crate::hub::new_event(
        account_id,
        &EventBody::TotpDisabled(TotpDisabled { reason }),
    )
}

/// The throttling key of an account.
pub fn account_key(account_id: &str) -> String {
    format!("acct:{account_id}")
}

/// The throttling key of sign-ins by a phone number (password or SMS code), whether or not
/// the number holds accounts.
pub fn phone_key(e164: &str) -> String {
    format!("login:{e164}")
}

/// The `session.revoked` event of one session, for the store to append with the revocation.
pub fn revoked_event(account_id: &str, session_id: &str) -> StoreResult<NewEvent> {
    let body = EventBody::SessionRevoked(SessionRevoked {
        session_id: session_id.to_string(),
    });
    crate::hub::new_event(account_id, &body).map_err(|e| StoreError::Encoding(e.0.message))
}
