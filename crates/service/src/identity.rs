//! Real-name verification. A verifier trait with a local checksum verifier: for mainland
//! China, the 18-character resident identity number (GB 11643) with its ISO 7064 MOD 11-2
//! check character and a real birth date; elsewhere a plausible document number. A provider
//! that checks names against a registry plugs in behind the same trait.

use switchboard_protocol::ErrorCode;
use time::{Date, Month};

use crate::error::Error;

/// What a verifier accepted, ready to store (never the raw number).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    pub legal_name: String,
    pub id_number_normalised: String,
    pub id_number_masked: String,
}

pub trait IdentityVerifier: Send + Sync + 'static {
    /// `region` is the ISO 3166 region of the account's phone number; `today` bounds birth dates.
    fn verify(
        &self,
        region: &str,
        legal_name: &str,
        id_number: &str,
        today: Date,
    ) -> Result<VerifiedIdentity, Error>;
}

/// Checks names and numbers locally, without asking any registry.
#[derive(Debug, Default, Clone, Copy)]
pub struct ChecksumVerifier;

impl IdentityVerifier for ChecksumVerifier {
    fn verify(
        &self,
        region: &str,
        legal_name: &str,
        id_number: &str,
        today: Date,
    ) -> Result<VerifiedIdentity, Error> {
        let legal_name = check_legal_name(legal_name)?;
        let number: String = id_number.trim().to_ascii_uppercase();
        if region == "CN" {
            check_resident_id(&number, today)?;
        } else if !(5..=20).contains(&number.len())
            || !number.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(invalid("the ID number must be 5 to 20 letters or digits"));
        }
        Ok(VerifiedIdentity {
            legal_name,
            id_number_masked: mask(&number),
            id_number_normalised: number,
        })
    }
}

/// What [`IdNumberKey::digest`] makes, as recorded beside each hash (rows from before the
/// keyed hash say `sha256`).
pub const ID_NUMBER_HASH_KIND: &str = "hmac-sha256";

/// The service's secret for hashing ID numbers (`identity.hmac_secret`).
///
/// A national ID number has little to guess (an 18-character resident ID is a region, a birth
/// date, a 3-digit sequence and a check character), so a bare hash of it is as good as the
/// number to anyone who reads the database: they hash every candidate. Keyed with a secret
/// that lives outside the database, the hash says nothing without the secret, while the same
/// number still gives the same hash (so one person's accounts can still be matched).
#[derive(Clone)]
pub struct IdNumberKey(Vec<u8>);

impl IdNumberKey {
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self(secret.into())
    }

    /// HMAC-SHA256 of the normalised number, lower-case hex.
    pub fn digest(&self, id_number_normalised: &str) -> Result<String, Error> {
        crate::mac::hmac_sha256_hex(&self.0, id_number_normalised.as_bytes())
            .map_err(|e| Error::internal(format!("HMAC-SHA256 refused the ID-number key: {e}")))
    }
}

/// Never the secret, in any debug output.
impl std::fmt::Debug for IdNumberKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdNumberKey(<redacted>)")
    }
}

fn invalid(message: &str) -> Error {
    Error::new(ErrorCode::IdentityInvalid, message)
}

fn check_legal_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    let n = name.chars().count();
    if n == 0 || n > 64 {
        return Err(invalid(
            "enter the legal name as on the ID card (1 to 64 characters)",
        ));
    }
    let allowed = |c: char| c.is_alphabetic() || matches!(c, ' ' | '·' | '•' | '.' | '\'' | '-');
    if !name.chars().all(allowed) {
        return Err(invalid(
            "a legal name holds letters only (and · . ' - between names)",
        ));
    }
    Ok(name.to_string())
}

/// ISO 7064 MOD 11-2 over the first 17 digits, as GB 11643 specifies.
pub fn resident_id_check_char(first17: &[u8; 17]) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];
    let sum: u32 = first17
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize]
}

/// An 18-character resident identity number: 6-digit region, birth date YYYYMMDD, 3-digit
/// sequence, check character.
pub fn check_resident_id(number: &str, today: Date) -> Result<(), Error> {
    let bytes = number.as_bytes();
    if bytes.len() != 18 || !bytes[..17].iter().all(u8::is_ascii_digit) {
        return Err(invalid(
            "a resident ID number has 18 characters: 17 digits and a check digit or X",
        ));
    }
    if bytes[0] == b'0' {
        return Err(invalid("that resident ID number has no valid region code"));
    }
    let digits = |r: std::ops::Range<usize>| number[r].parse::<u32>().unwrap_or(0);
    let birth = Month::try_from(digits(10..12) as u8)
        .ok()
        .and_then(|m| Date::from_calendar_date(digits(6..10) as i32, m, digits(12..14) as u8).ok());
    match birth {
        Some(b) if b.year() >= 1900 && b <= today => {}
        _ => {
            return Err(invalid(
                "the birth date in that resident ID number is not a real date",
            ));
        }
    }
    let mut first17 = [0u8; 17];
    first17.copy_from_slice(&bytes[..17]);
    if char::from(bytes[17]) != resident_id_check_char(&first17) {
        return Err(invalid(
            "that resident ID number's check digit is wrong; check for a typo",
        ));
    }
    Ok(())
}

fn mask(number: &str) -> String {
    let n = number.chars().count();
    number
        .chars()
        .enumerate()
        .map(|(i, c)| if i + 4 < n { '*' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    const TODAY: Date = date!(2026 - 11 - 21);

    #[test]
    fn a_known_valid_number_passes_and_is_masked() {
        // The example number from GB 11643's commentary.
        let v = ChecksumVerifier
            .verify("CN", " 张三 ", "11010519491231002x", TODAY)
            .unwrap();
        assert_eq!(v.legal_name, "张三");
        assert_eq!(v.id_number_normalised, "11010519491231002X");
        assert_eq!(v.id_number_masked, "**************002X");
    }

    #[test]
    fn typos_bad_dates_and_bad_names_are_refused() {
        for (number, why) in [
            ("110105194912310021", "wrong check digit"),
            ("110105194913310020", "month 13"),
            ("110105190002290028", "1900 was not a leap year"),
            ("110105203001010012", "born in the future"),
            ("11010519491231002", "17 characters"),
            ("01010519491231002X", "region code 0"),
        ] {
            let e = ChecksumVerifier
                .verify("CN", "张三", number, TODAY)
                .unwrap_err();
            assert_eq!(e.code, ErrorCode::IdentityInvalid, "{why}");
        }
        assert!(
            ChecksumVerifier
                .verify("CN", "张三3", "11010519491231002X", TODAY)
                .is_err()
        );
        assert!(
            ChecksumVerifier
                .verify("CN", "", "11010519491231002X", TODAY)
                .is_err()
        );
    }

    #[test]
    fn id_numbers_are_hashed_with_the_key_not_bare() {
        use sha2::Digest;
        let number = "11010519491231002X";
        let a = IdNumberKey::new(b"key one, long enough to be a key".to_vec());
        let b = IdNumberKey::new(b"key two, long enough to be a key".to_vec());
        assert_eq!(
            a.digest(number).unwrap(),
            a.digest(number).unwrap(),
            "the same number, the same hash"
        );
        assert_ne!(
            a.digest(number).unwrap(),
            b.digest(number).unwrap(),
            "another key, another hash"
        );
        let bare = data_encoding::HEXLOWER.encode(&sha2::Sha256::digest(number.as_bytes()));
        assert_ne!(
            a.digest(number).unwrap(),
            bare,
            "not the bare SHA-256 anyone can recompute"
        );
        // RFC 4231, test case 2.
        assert_eq!(
            IdNumberKey::new(b"Jefe".to_vec())
                .digest("what do ya want for nothing?")
                .unwrap(),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(format!("{a:?}"), "IdNumberKey(<redacted>)");
    }

    proptest! {
        #[test]
        fn exactly_one_check_character_fits_any_valid_stem(
            region in 110000u32..=829999, day in 0i64..40_000, seq in 0u32..1000
        ) {
            let birth = date!(1920 - 01 - 01) + time::Duration::days(day);
            prop_assume!(birth <= TODAY);
            let stem = format!(
                "{region:06}{:04}{:02}{:02}{seq:03}", birth.year(), u8::from(birth.month()), birth.day()
            );
            let mut first17 = [0u8; 17];
            first17.copy_from_slice(stem.as_bytes());
            let good = resident_id_check_char(&first17);
            let accepted: Vec<char> = "0123456789X".chars()
                .filter(|c| check_resident_id(&format!("{stem}{c}"), TODAY).is_ok())
                .collect();
            prop_assert_eq!(accepted, vec![good]);
        }

        #[test]
        fn any_single_digit_typo_is_caught(pos in 0usize..17, delta in 1u8..10) {
            let good = "11010519491231002X";
            let mut b = good.as_bytes().to_vec();
            b[pos] = b'0' + (b[pos] - b'0' + delta) % 10;
            let typo = String::from_utf8(b).unwrap();
            prop_assert!(check_resident_id(&typo, TODAY).is_err(), "{} accepted", typo);
        }
    }
}
