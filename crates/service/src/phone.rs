//! Phone numbers: E.164 with the country code, checked against real numbering-plan data
//! (libphonenumber's metadata through the `phonenumber` crate), never a regex.

use switchboard_protocol::ErrorCode;

use crate::error::Error;

/// A valid number in canonical E.164 form, with the region it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    pub e164: String,
    /// ISO 3166 alpha-2, e.g. `CN`.
    pub region: String,
}

/// Parses a number as people type it (`+86 138-0013-8000`) into canonical E.164.
pub fn parse(input: &str) -> Result<Phone, Error> {
    let bad = || {
        Error::new(
            ErrorCode::InvalidPhone,
            "enter the phone number in international form with its country code, e.g. +86 138 0013 8000",
        )
    };
    let compact: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let Some(digits) = compact.strip_prefix('+') else {
        return Err(bad());
    };
    // E.164 allows at most 15 digits; anything else is not a number, however it parses.
    if digits.is_empty() || digits.len() > 15 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number = phonenumber::parse(None, &compact).map_err(|_| bad())?;
    if !phonenumber::is_valid(&number) {
        return Err(Error::new(
            ErrorCode::InvalidPhone,
            "that is not a valid phone number for its country",
        ));
    }
    let region = number
        .country()
        .id()
        .map(|id| id.as_ref().to_string())
        .ok_or_else(bad)?;
    let e164 = number.format().mode(phonenumber::Mode::E164).to_string();
    Ok(Phone { e164, region })
}

/// For logs and messages: keeps the country code and the last two digits.
pub fn masked(e164: &str) -> String {
    let n = e164.chars().count();
    e164.chars()
        .enumerate()
        .map(|(i, c)| if i < 3 || i + 2 >= n { c } else { '•' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn real_numbers_are_canonicalised_with_their_region() {
        let p = parse("+86 138-0013-8000").unwrap();
        assert_eq!(p.e164, "+8613800138000");
        assert_eq!(p.region, "CN");
        let p = parse("+1 (650) 253-0000").unwrap();
        assert_eq!((p.e164.as_str(), p.region.as_str()), ("+16502530000", "US"));
        assert_eq!(parse("+852 5123 4567").unwrap().region, "HK");
    }

    #[test]
    fn numbers_outside_the_numbering_plan_are_refused() {
        for bad in [
            "13800138000",
            "+86 123",
            "+1 555 0100 999 999",
            "+999 1234567",
            "+",
            "",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidPhone, "{bad:?} must be refused");
        }
        // Right length for North America, but an exchange code never starts with 0 or 1.
        assert!(parse("+1 212 012 3456").is_err());
        assert!(parse("+1 212 112 3456").is_err());
    }

    #[test]
    fn masking_hides_the_middle() {
        assert_eq!(masked("+8613800138000"), "+86•••••••••00");
    }

    proptest! {
        #[test]
        fn never_panics_and_accepted_numbers_are_canonical(s in "\\PC{0,24}") {
            if let Ok(p) = parse(&s) {
                prop_assert!(p.e164.starts_with('+'));
                prop_assert!(p.e164[1..].bytes().all(|b| b.is_ascii_digit()));
                // Canonical form parses to itself.
                prop_assert_eq!(parse(&p.e164).unwrap(), p.clone());
            }
        }

        #[test]
        fn chinese_mobiles_parse(rest in "[0-9]{8}") {
            let p = parse(&format!("+86138{rest}")).unwrap();
            prop_assert_eq!(p.region, "CN");
        }
    }
}
