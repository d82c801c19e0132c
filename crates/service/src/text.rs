//! Short text that other people see next to someone's identity: display names, group names,
//! contact-request notes, transfer notes and red-envelope greetings, device names.
//!
//! Such text is refused when it holds a character that changes how the text *around* it is
//! shown without being visible itself: bidirectional overrides, embeddings, isolates and marks
//! (a U+202E inside a name shows the rest of it backwards, so `Alice` + U+202E + `ecnerolF`
//! reads as another name), zero-width characters (two names that look the same but differ),
//! line and paragraph separators and control characters (a name that breaks onto a second
//! line of a chat or a notification and impersonates the line below), and the rest of
//! Unicode's invisible format characters.
//!
//! One rule, in one place, for every such field: a field that forgot it would be the one an
//! impersonator uses. Message bodies are not held to it: they are the sender's own words in
//! the sender's own bubble, and right-to-left writing needs its marks there.

use switchboard_protocol::ErrorCode;

use crate::error::{Error, Result};

/// The first character of `text` that may not appear in shown identity text, if any.
pub fn forbidden_char(text: &str) -> Option<char> {
    text.chars().find(|&c| is_forbidden(c))
}

/// Control characters (C0, DEL, C1), line and paragraph separators, and every format
/// character (Unicode category Cf): the bidirectional controls, the zero-width characters,
/// the word joiner and its invisible kin, the byte-order mark, tag characters.
pub fn is_forbidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}'
            // Unicode's general category Cf (format), as of Unicode 15.1.
            | '\u{00AD}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
        )
}

/// Trims `text` and checks it as shown identity text of at most `max` characters (`min` at
/// least, after trimming). `what` names the field in the error, `code` is its error code.
pub fn check_shown(
    text: &str,
    what: &str,
    min: usize,
    max: usize,
    code: ErrorCode,
) -> Result<String> {
    check(text, what, min, max, code, |_| false)
}

/// [`check_shown`] for text of several lines shown under someone's name (a Moments post, a
/// comment): line breaks and tabs are its own, every other character is held to the rule.
pub fn check_shown_lines(
    text: &str,
    what: &str,
    min: usize,
    max: usize,
    code: ErrorCode,
) -> Result<String> {
    check(text, what, min, max, code, |c| {
        matches!(c, '\n' | '\r' | '\t')
    })
}

/// What a name looks like, for telling lookalikes apart: Unicode TS #39's confusable skeleton
/// of it, case and runs of white space aside. "Acme Coffee", "ACME  coffee" and "Аcme Coffee"
/// (a Cyrillic А) have one key; "Acme Tea" another.
pub fn lookalike_key(name: &str) -> String {
    let folded = name
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    // The skeleton may map to capitals ("0" to "O"): folded again after.
    unicode_security::skeleton(&folded)
        .collect::<String>()
        .to_lowercase()
}

fn check(
    text: &str,
    what: &str,
    min: usize,
    max: usize,
    code: ErrorCode,
    allowed: fn(char) -> bool,
) -> Result<String> {
    let text = text.trim();
    let n = text.chars().count();
    if n < min || n > max {
        let range = if min == 0 {
            format!("at most {max}")
        } else {
            format!("{min} to {max}")
        };
        return Err(Error::new(code, format!("{what} has {range} characters")));
    }
    if let Some(c) = text.chars().find(|&c| is_forbidden(c) && !allowed(c)) {
        return Err(Error::new(
            code,
            format!(
                "{what} may not contain invisible, direction-changing or control characters \
                 (found U+{:04X}): they can make text look like someone else's",
                u32::from(c)
            ),
        ));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookalike_names_share_a_key_and_different_names_do_not() {
        let acme = lookalike_key("Acme Coffee");
        for same in [
            "Acme Coffee",
            "acme  COFFEE",
            "\u{0410}cme Coffee", // Cyrillic А
            "Acme C\u{043E}ffee", // Cyrillic о
            "Acme Co\u{FB00}ee",  // the ﬀ ligature
            " Acme Coffee ",
        ] {
            assert_eq!(lookalike_key(same), acme, "{same:?}");
        }
        for other in ["Acme Tea", "Acme Coffees", "Acne Coffee", "阿克米咖啡"] {
            assert_ne!(lookalike_key(other), acme, "{other:?}");
        }
        assert_eq!(lookalike_key("Paypal"), lookalike_key("PayPa1"), "l and 1");
    }

    #[test]
    fn paragraphs_keep_their_line_breaks_and_nothing_else_invisible() {
        let code = ErrorCode::InvalidRequest;
        assert_eq!(
            check_shown_lines(" one\n\ntwo\tthree ", "a post", 0, 50, code).unwrap(),
            "one\n\ntwo\tthree"
        );
        assert!(check_shown_lines("spoof\u{202E}txt.exe", "a post", 0, 50, code).is_err());
        assert!(check_shown_lines("zero\u{200B}width", "a post", 0, 50, code).is_err());
        assert!(check_shown("one\ntwo", "a name", 0, 50, code).is_err());
    }

    #[test]
    fn spoofing_characters_are_refused_and_ordinary_text_is_not() {
        for c in [
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200E}',
            '\u{200F}',
            '\u{061C}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{2028}',
            '\u{2029}',
            '\u{0000}',
            '\n',
            '\r',
            '\t',
            '\u{7F}',
            '\u{85}',
            '\u{9F}',
            '\u{00AD}',
            '\u{E0041}',
        ] {
            let text = format!("Ali{c}ce");
            assert_eq!(forbidden_char(&text), Some(c), "U+{:04X}", u32::from(c));
            let e = check_shown(&text, "a name", 1, 64, ErrorCode::InvalidRequest).unwrap_err();
            assert!(
                e.message.contains(&format!("U+{:04X}", u32::from(c))),
                "the message names the character: {}",
                e.message
            );
        }
        for ok in [
            "Alice Wang",
            "张三",
            "محمد",
            "שלום",
            "Zoë",
            "O'Brien-Smith",
            "🎉 party",
            // Variation selectors pick emoji presentation; they change no order or identity.
            "❤\u{FE0F}",
        ] {
            assert_eq!(forbidden_char(ok), None, "{ok}");
            assert_eq!(
                check_shown(
                    &format!("  {ok} "),
                    "a name",
                    1,
                    64,
                    ErrorCode::InvalidRequest
                )
                .unwrap(),
                ok,
                "trimmed and kept"
            );
        }
    }

    #[test]
    fn length_is_counted_in_characters_after_trimming() {
        assert!(check_shown("   ", "a name", 1, 4, ErrorCode::InvalidDisplayName).is_err());
        assert!(check_shown("", "a note", 0, 4, ErrorCode::InvalidRequest).is_ok());
        assert!(check_shown("长城长城", "a name", 1, 4, ErrorCode::InvalidRequest).is_ok());
        let e = check_shown("长城长城长", "a name", 1, 4, ErrorCode::InvalidGroupName).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGroupName);
    }
}
