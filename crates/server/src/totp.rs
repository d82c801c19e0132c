//! RFC 6238 time-based one-time passwords (HMAC-SHA1, 30 s steps, 6 digits), accepting one
//! step either side for clock drift. Replay protection lives in the store: a step is accepted
//! only if it is later than every step accepted before.

use hmac::{Hmac, Mac};
use sha1::Sha1;

use crate::clock::Millis;

pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;

/// The code of one step (RFC 4226 dynamic truncation).
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[19] & 0x0f);
    let bin = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    format!(
        "{:0width$}",
        bin % 10u32.pow(DIGITS),
        width = DIGITS as usize
    )
}

pub fn step_at(now: Millis) -> i64 {
    now.div_euclid(1000 * STEP_SECS)
}

/// The step within ±1 of `now` whose code is `code`, if any (compared in constant time).
pub fn matching_step(secret: &[u8], code: &str, now: Millis) -> Option<i64> {
    use subtle::ConstantTimeEq;
    let code = code.trim();
    if code.len() != DIGITS as usize {
        return None;
    }
    let current = step_at(now);
    let mut found = None;
    for step in [current - 1, current, current + 1] {
        if bool::from(code_at_step(secret, step).as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

pub fn encode_secret(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

pub fn decode_secret(b32: &str) -> Option<Vec<u8>> {
    data_encoding::BASE32_NOPAD.decode(b32.as_bytes()).ok()
}

pub fn otpauth_uri(secret_b32: &str, account: &str) -> String {
    format!(
        "otpauth://totp/Switchboard:{account}?secret={secret_b32}&issuer=Switchboard\
         &algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (the last 6 of the 8 digits).
    #[test]
    fn rfc6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, expected) in [
            (59i64, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(code_at_step(secret, t / 30), expected, "T = {t}");
        }
    }

    #[test]
    fn one_step_of_drift_either_way_and_no_more() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111_000;
        let step = step_at(now);
        for drift in [-1, 0, 1] {
            let code = code_at_step(secret, step + drift);
            assert_eq!(matching_step(secret, &code, now), Some(step + drift));
        }
        for drift in [-3, -2, 2, 3] {
            let code = code_at_step(secret, step + drift);
            assert_eq!(
                matching_step(secret, &code, now),
                None,
                "drift {drift} must fail"
            );
        }
    }
}
