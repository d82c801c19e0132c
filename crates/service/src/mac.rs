//! HMAC-SHA256 as lowercase hex: how ID numbers are stored (keyed with `identity.hmac_secret`)
//! and how charge requests are signed (keyed with `funding.webhook_secret`).

use hmac::{Hmac, Mac};

/// The MAC of `data` under `key`. HMAC takes a key of any length (RFC 2104), so the error
/// never happens; it is returned rather than unwrapped so a broken library is no panic.
pub fn hmac_sha256_hex(key: &[u8], data: &[u8]) -> Result<String, hmac::digest::InvalidLength> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key)?;
    mac.update(data);
    Ok(data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes()))
}
