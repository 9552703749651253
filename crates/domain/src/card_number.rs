//! Card numbers: digits with a Luhn check digit, so a mistyped number is caught at the
//! till before any look-up.

use crate::error::FieldError;

/// Computes the Luhn check digit for `payload` (digits only).
pub fn luhn_check_digit(payload: &str) -> u8 {
    let mut sum = 0u32;
    // Walk from the right; the digit next to the (future) check digit is doubled.
    for (i, c) in payload.bytes().rev().enumerate() {
        let mut d = u32::from(c - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    ((10 - (sum % 10)) % 10) as u8
}

/// Appends the check digit to a numeric payload.
pub fn with_check_digit(payload: &str) -> String {
    debug_assert!(payload.bytes().all(|b| b.is_ascii_digit()));
    format!("{payload}{}", luhn_check_digit(payload))
}

/// Validates a card number typed or swiped at the till (spaces allowed, 8–19 digits).
pub fn parse(raw: &str, field: &str) -> Result<String, FieldError> {
    let digits: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if !(8..=19).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FieldError::new(
            field,
            "invalid_card_number",
            format!("“{raw}” is not a card number (8–19 digits)"),
        ));
    }
    let (payload, check) = digits.split_at(digits.len() - 1);
    if luhn_check_digit(payload) != check.as_bytes()[0] - b'0' {
        return Err(FieldError::new(
            field,
            "card_check_digit",
            format!("“{raw}” has a wrong check digit: mistyped?"),
        ));
    }
    Ok(digits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_luhn_numbers() {
        assert_eq!(luhn_check_digit("7992739871"), 3);
        assert!(parse("79927398713", "card").is_ok());
        assert_eq!(
            parse("79927398710", "card").unwrap_err().code,
            "card_check_digit"
        );
        assert_eq!(
            parse("12ab", "card").unwrap_err().code,
            "invalid_card_number"
        );
    }

    proptest! {
        #[test]
        fn generated_numbers_validate_and_single_typos_are_caught(payload in "[0-9]{11,17}", pos in 0usize..11, delta in 1u8..10) {
            let n = with_check_digit(&payload);
            prop_assert!(parse(&n, "card").is_ok());
            let mut bytes = n.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            prop_assert!(parse(std::str::from_utf8(&bytes).unwrap(), "card").is_err());
        }
    }
}
