//! Mainland mobile numbers as exports and forms write them, normalised to 11 digits.

use std::fmt;

/// A valid mainland mobile number: 11 digits starting 1[3-9].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

/// What a phone cell in an export can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneInput {
    Phone(Phone),
    /// A marketplace-masked number such as `138****8000`: kept as a hint, never merged on.
    Masked(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("phone is empty")]
    Empty,
    // Errors never carry the number itself: they reach terminals, JSON and logs.
    #[error("phone contains {0:?}, which is not a digit or separator")]
    BadCharacter(char),
    #[error("phone has {0} digits; a mainland mobile number has 11")]
    Length(usize),
    #[error("phone is not a mainland mobile number (must start with 13–19)")]
    NotMobile,
    #[error("phone has a country code other than +86")]
    Foreign,
    #[error("phone is masked in a way that cannot be read (expected like 138****8000)")]
    BadMask,
}

impl Phone {
    pub fn parse(input: &str) -> Result<Phone, PhoneError> {
        match parse_phone(input)? {
            PhoneInput::Phone(p) => Ok(p),
            PhoneInput::Masked(_) => Err(PhoneError::BadMask),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// `138****8000`: the form shown to roles that may not see the number.
    pub fn masked(&self) -> String {
        mask(&self.0)
    }
}

impl fmt::Display for Phone {
    /// Displays masked, so a phone never reaches a log in clear by accident.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Masks all but the first 3 and last 4 characters of an 11-digit number.
pub fn mask(digits: &str) -> String {
    if digits.len() == 11 && digits.is_ascii() {
        format!("{}****{}", &digits[..3], &digits[7..])
    } else {
        "****".to_owned()
    }
}

/// Parses a phone cell: separators, `+86`/`0086`/`86` prefixes and full-width digits are
/// accepted; masked numbers come back as [`PhoneInput::Masked`].
pub fn parse_phone(input: &str) -> Result<PhoneInput, PhoneError> {
    let raw = input.trim();
    if raw.is_empty() {
        return Err(PhoneError::Empty);
    }
    let mut digits = String::with_capacity(16);
    let mut stars = 0usize;
    let mut plus = false;
    for (i, ch) in raw.chars().enumerate() {
        let c = match ch {
            '０'..='９' => char::from_u32(ch as u32 - '０' as u32 + '0' as u32).unwrap_or(ch),
            '＋' => '+',
            '＊' => '*',
            _ => ch,
        };
        match c {
            '0'..='9' => digits.push(c),
            '*' | 'x' | 'X' => {
                stars += 1;
                digits.push('*');
            }
            '+' if i == 0 => plus = true,
            ' ' | '-' | '.' | '(' | ')' | '（' | '）' | '\u{3000}' | '\t' | '－' => {}
            _ => return Err(PhoneError::BadCharacter(ch)),
        }
    }
    // Strip the country code: +86…, 0086…, or 86 followed by 11 digits.
    let national: &str = if let Some(rest) = digits.strip_prefix("0086") {
        rest
    } else if plus {
        match digits.strip_prefix("86") {
            Some(rest) => rest,
            None => return Err(PhoneError::Foreign),
        }
    } else if digits.len() == 13 && digits.starts_with("86") {
        &digits[2..]
    } else {
        &digits
    };
    if stars > 0 {
        let ok = national.len() == 11
            && national[..3].bytes().all(|b| b.is_ascii_digit())
            && national[7..].bytes().all(|b| b.is_ascii_digit());
        return if ok {
            Ok(PhoneInput::Masked(format!(
                "{}****{}",
                &national[..3],
                &national[7..]
            )))
        } else {
            Err(PhoneError::BadMask)
        };
    }
    if national.len() != 11 {
        return Err(PhoneError::Length(national.len()));
    }
    let b = national.as_bytes();
    if b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) {
        return Err(PhoneError::NotMobile);
    }
    Ok(PhoneInput::Phone(Phone(national.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> String {
        match parse_phone(s) {
            Ok(PhoneInput::Phone(p)) => p.as_str().to_owned(),
            other => panic!("{s:?} should parse, got {other:?}"),
        }
    }

    #[test]
    fn accepts_the_ways_exports_write_numbers() {
        for s in [
            "+86 138-0013-8000",
            "8613800138000",
            "138 0013 8000",
            "１３８００１３８０００",
            "+86１３８ ００１３ ８０００",
            "0086 13800138000",
            "(+86) 13800138000".trim_start_matches('('),
            " 13800138000 ",
        ] {
            assert_eq!(ok(s), "13800138000", "{s}");
        }
    }

    #[test]
    fn masked_numbers_are_hints() {
        assert_eq!(
            parse_phone("138****8000"),
            Ok(PhoneInput::Masked("138****8000".into()))
        );
        assert_eq!(
            parse_phone("+86 138****8000"),
            Ok(PhoneInput::Masked("138****8000".into()))
        );
        assert!(matches!(parse_phone("1**8000"), Err(PhoneError::BadMask)));
        assert!(Phone::parse("138****8000").is_err());
    }

    #[test]
    fn rejects_with_a_reason() {
        assert_eq!(parse_phone(""), Err(PhoneError::Empty));
        assert!(matches!(
            parse_phone("1380013800"),
            Err(PhoneError::Length(10))
        ));
        assert!(matches!(
            parse_phone("12800138000"),
            Err(PhoneError::NotMobile)
        ));
        assert!(matches!(
            parse_phone("010-62345678"),
            Err(PhoneError::Length(11)) | Err(PhoneError::NotMobile)
        ));
        assert!(matches!(
            parse_phone("138abc38000"),
            Err(PhoneError::BadCharacter('a'))
        ));
        assert!(matches!(
            parse_phone("+1 415 555 0100"),
            Err(PhoneError::Foreign)
        ));
    }

    #[test]
    fn display_and_mask_never_show_the_middle() {
        let p = Phone::parse("13800138000").expect("valid");
        assert_eq!(p.to_string(), "138****8000");
        assert_eq!(p.masked(), "138****8000");
    }
}
