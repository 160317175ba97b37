//! Phone numbers in E.164 form, so `+1 (555) 888-9999` and `+15558889999` compare equal.

use std::fmt;

/// E.164 allows at most 15 digits after the `+`.
const MAX_DIGITS: usize = 15;
/// Shorter strings are service codes or typos, never an intercom line.
const MIN_DIGITS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts `+` or `00` followed by digits, with spaces, dots, dashes and parentheses
    /// as separators. A number without a country code is refused rather than guessed:
    /// guessing wrong would reject the intercom or, worse, match another caller.
    pub fn parse(s: &str) -> Result<PhoneNumber, &'static str> {
        let compact: String =
            s.trim().chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}')).collect();
        let international = compact.strip_prefix('+').or_else(|| compact.strip_prefix("00"));
        let digits = international.ok_or("expected an international number starting with + (E.164)")?;
        if digits.len() < MIN_DIGITS
            || digits.len() > MAX_DIGITS
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err("expected + and 3 to 15 digits (E.164)");
        }
        Ok(PhoneNumber(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_is_ignored() {
        let want = PhoneNumber::parse("+15558889999").unwrap();
        for s in ["+1 555 888-9999", "+1 (555) 888.9999", " +1-555-888-9999 ", "001 555 888 9999"] {
            assert_eq!(PhoneNumber::parse(s).unwrap(), want, "{s}");
        }
    }

    #[test]
    fn garbage_and_local_numbers_are_refused() {
        for s in [
            "",
            "+",
            "5558889999",
            "anonymous",
            "client:alice",
            "+1555abc",
            "+12",
            "+0123456",
            "+1234567890123456",
            "++15558889999",
        ] {
            assert!(PhoneNumber::parse(s).is_err(), "{s}");
        }
    }
}
