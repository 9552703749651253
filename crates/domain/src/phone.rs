//! Phone numbers: normalised so that "+86 138-0013-8000" and "13800138000" are one key.

use crate::error::FieldError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A normalised phone number: a mainland mobile as 11 digits, anything else as `+` and
/// 8–15 digits (E.164), or a mainland landline as digits with its area code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Phone(String);

impl Phone {
    /// Normalises and validates; `field` names the input in the error.
    pub fn parse(raw: &str, field: &str) -> Result<Phone, FieldError> {
        let bad = || {
            FieldError::new(
                field,
                "invalid_phone",
                format!(
                    "“{raw}” is not a phone number (expected e.g. 13800138000 or +85291234567)"
                ),
            )
        };
        let trimmed = raw.trim();
        let mut plus = false;
        let mut digits = String::with_capacity(16);
        for (i, c) in trimmed.chars().enumerate() {
            match c {
                '0'..='9' => digits.push(c),
                '+' if i == 0 => plus = true,
                ' ' | '-' | '(' | ')' | '.' => {}
                _ => return Err(bad()),
            }
        }
        // Mainland numbers written with the country code collapse to the bare 11 digits.
        if plus && digits.starts_with("86") && digits.len() == 13 {
            digits.drain(..2);
            plus = false;
        } else if !plus && digits.starts_with("0086") && digits.len() == 15 {
            digits.drain(..4);
        }
        if plus {
            if (8..=15).contains(&digits.len()) && !digits.starts_with('0') {
                return Ok(Phone(format!("+{digits}")));
            }
            return Err(bad());
        }
        let b = digits.as_bytes();
        if b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) {
            return Ok(Phone(digits));
        }
        // Landline with area code: 0 + 2–3 digit area code + 7–8 digit number.
        if b.first() == Some(&b'0') && (10..=12).contains(&b.len()) {
            return Ok(Phone(digits));
        }
        Err(bad())
    }

    /// Trusts a value that came out of the database (already normalised).
    pub fn from_stored(s: String) -> Phone {
        Phone(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// "138****8000": for roles that need not see the number.
    pub fn masked(&self) -> String {
        let s = &self.0;
        let n = s.chars().count();
        if n <= 7 {
            return "*".repeat(n);
        }
        let head: String = s.chars().take(3).collect();
        let tail: String = s.chars().skip(n - 4).collect();
        format!("{head}{}{tail}", "*".repeat(n - 7))
    }
    /// The last four digits: a common partial look-up at the till.
    pub fn last4(&self) -> &str {
        &self.0[self.0.len().saturating_sub(4)..]
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_mainland_forms() {
        for raw in [
            "13800138000",
            "138-0013-8000",
            "+86 138 0013 8000",
            "0086 13800138000",
        ] {
            assert_eq!(
                Phone::parse(raw, "phone").unwrap().as_str(),
                "13800138000",
                "{raw}"
            );
        }
    }

    #[test]
    fn keeps_international_and_landline() {
        assert_eq!(
            Phone::parse("+852 9123 4567", "phone").unwrap().as_str(),
            "+85291234567"
        );
        assert_eq!(
            Phone::parse("021-6288 1234", "phone").unwrap().as_str(),
            "02162881234"
        );
    }

    #[test]
    fn refuses_garbage() {
        for raw in [
            "",
            "12345",
            "abc",
            "23800138000",
            "1380013800a",
            "'; drop table x; --",
        ] {
            let e = Phone::parse(raw, "phone").unwrap_err();
            assert_eq!(e.code, "invalid_phone");
            assert_eq!(e.field, "phone");
        }
    }

    #[test]
    fn masks() {
        assert_eq!(
            Phone::parse("13800138000", "p").unwrap().masked(),
            "138****8000"
        );
    }
}
