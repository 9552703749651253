//! Money as an integer number of fen (1/100 yuan). Never floating point.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Neg, Sub};
use utoipa::ToSchema;

/// An amount of money in fen (minor units). Signed: ledger entries are debits and credits.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = i64, example = 12800)]
pub struct Money(i64);

/// Why a decimal string is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyParseError {
    #[error("not an amount: {0:?}")]
    Invalid(String),
    #[error("more than two decimal places: {0:?}")]
    TooPrecise(String),
    #[error("amount too large: {0:?}")]
    TooLarge(String),
}

impl Money {
    pub const ZERO: Money = Money(0);

    pub const fn from_fen(fen: i64) -> Self {
        Money(fen)
    }
    /// Whole yuan; panics on overflow only for absurd constants (checked in tests).
    pub const fn from_yuan(yuan: i64) -> Self {
        Money(yuan * 100)
    }
    pub const fn fen(self) -> i64 {
        self.0
    }
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
    pub fn checked_add(self, o: Money) -> Option<Money> {
        self.0.checked_add(o.0).map(Money)
    }
    pub fn checked_sub(self, o: Money) -> Option<Money> {
        self.0.checked_sub(o.0).map(Money)
    }

    /// Parses "128", "128.5", "128.50", "-3.20", optionally prefixed by ¥ or ￥.
    /// Refuses a third decimal place rather than rounding silently.
    pub fn parse_yuan(s: &str) -> Result<Money, MoneyParseError> {
        let t = s
            .trim()
            .trim_start_matches(['¥', '￥'])
            .trim()
            .replace(',', "");
        let (neg, body) = match t.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, t.as_str()),
        };
        let (int_part, frac_part) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        let digits = |x: &str| x.chars().all(|c| c.is_ascii_digit());
        if int_part.is_empty() && frac_part.is_empty() || !digits(int_part) || !digits(frac_part) {
            return Err(MoneyParseError::Invalid(s.to_string()));
        }
        if frac_part.len() > 2 {
            return Err(MoneyParseError::TooPrecise(s.to_string()));
        }
        let too_large = || MoneyParseError::TooLarge(s.to_string());
        let yuan: i64 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| too_large())?
        };
        let mut frac = frac_part.to_string();
        while frac.len() < 2 {
            frac.push('0');
        }
        let fen: i64 = frac
            .parse()
            .map_err(|_| MoneyParseError::Invalid(s.to_string()))?;
        let total = yuan
            .checked_mul(100)
            .and_then(|v| v.checked_add(fen))
            .ok_or_else(too_large)?;
        Ok(Money(if neg { -total } else { total }))
    }

    /// "128.50" without currency sign: for CSV and form fields.
    pub fn to_decimal_string(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        format!("{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl fmt::Display for Money {
    /// "¥128.50"
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 < 0 {
            // Not `-self.0`: i64::MIN has no positive twin (a hostile amount must print, not panic).
            let abs = self.0.unsigned_abs();
            write!(f, "-¥{}.{:02}", abs / 100, abs % 100)
        } else {
            write!(f, "¥{}", self.to_decimal_string())
        }
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, o: Money) -> Money {
        Money(self.0.checked_add(o.0).expect("money overflow"))
    }
}
impl Sub for Money {
    type Output = Money;
    fn sub(self, o: Money) -> Money {
        Money(self.0.checked_sub(o.0).expect("money overflow"))
    }
}
impl Neg for Money {
    type Output = Money;
    fn neg(self) -> Money {
        Money(-self.0)
    }
}
impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(Money::parse_yuan("128").unwrap(), Money::from_fen(12800));
        assert_eq!(Money::parse_yuan("¥128.5").unwrap(), Money::from_fen(12850));
        assert_eq!(Money::parse_yuan("0.07").unwrap(), Money::from_fen(7));
        assert_eq!(Money::parse_yuan("-3.20").unwrap(), Money::from_fen(-320));
        assert_eq!(
            Money::parse_yuan("1,000.00").unwrap(),
            Money::from_fen(100000)
        );
        assert!(matches!(
            Money::parse_yuan("1.005"),
            Err(MoneyParseError::TooPrecise(_))
        ));
        assert!(Money::parse_yuan("abc").is_err());
        assert!(Money::parse_yuan("").is_err());
        assert!(Money::parse_yuan(".").is_err());
        assert!(matches!(
            Money::parse_yuan("99999999999999999999"),
            Err(MoneyParseError::TooLarge(_))
        ));
        assert_eq!(Money::from_fen(-5).to_string(), "-¥0.05");
        assert_eq!(
            Money::from_fen(i64::MIN).to_string(),
            "-¥92233720368547758.08"
        );
        assert_eq!(Money::from_fen(100000).to_string(), "¥1000.00");
    }

    proptest! {
        #[test]
        fn decimal_string_round_trips(fen in -1_000_000_000_000i64..1_000_000_000_000i64) {
            let m = Money::from_fen(fen);
            prop_assert_eq!(Money::parse_yuan(&m.to_decimal_string()).unwrap(), m);
        }
    }
}
