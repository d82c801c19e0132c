//! RFC 6238 time-based one-time passwords (HMAC-SHA1, 30 s steps, 6 digits), accepting one
//! step either side for clock drift. The codes themselves come from the `totp-rs` crate; this
//! module only adds what the service needs on top: which step a code matched (replay
//! protection lives in the store: a step is accepted only if it is later than every step
//! accepted before) and the secret's text forms.

use totp_rs::{Algorithm, TOTP};

use crate::clock::Millis;

pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;
/// Steps accepted either side of the current one.
pub const SKEW: u8 = 1;

/// The generator for `secret`; `None` for a secret shorter than the 128 bits RFC 4226 asks
/// for (the service makes 160-bit ones; a shorter one is no secret of ours).
fn generator(secret: &[u8]) -> Option<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS as usize,
        SKEW,
        STEP_SECS as u64,
        secret.to_vec(),
    )
    .ok()
}

/// The code of one step; empty (matching no code) for a step before the epoch or an
/// unusable secret.
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    match (generator(secret), u64::try_from(step)) {
        (Some(totp), Ok(step)) => totp.generate(step.saturating_mul(STEP_SECS as u64)),
        _ => String::new(),
    }
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
    let totp = generator(secret)?;
    let current = step_at(now);
    let skew = i64::from(SKEW);
    let mut found = None;
    // Every step is compared (no early return), in constant time: how long the check takes
    // says nothing about which step, if any, matched.
    for step in current - skew..=current + skew {
        let Ok(at) = u64::try_from(step.saturating_mul(STEP_SECS)) else {
            continue;
        };
        if bool::from(totp.generate(at).as_bytes().ct_eq(code.as_bytes())) {
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
    fn the_crate_and_the_step_search_agree() {
        let secret = b"12345678901234567890";
        let totp = generator(secret).unwrap();
        let now = 1_234_567_890_000;
        for drift in -3i64..=3 {
            let code = code_at_step(secret, step_at(now) + drift);
            assert_eq!(
                totp.check(&code, (now / 1000) as u64),
                matching_step(secret, &code, now).is_some(),
                "drift {drift}"
            );
        }
        assert_eq!(
            code_at_step(b"too short", 1),
            "",
            "no code for a weak secret"
        );
        assert_eq!(code_at_step(secret, -1), "", "no code before the epoch");
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
