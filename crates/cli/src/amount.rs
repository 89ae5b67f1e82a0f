//! Currency amounts: decimal text with at most two decimals, held exactly as integer
//! minor units (cents). Parsed by hand so that no float ever rounds money.

use std::fmt;
use std::str::FromStr;

/// Minor units per currency unit.
const CENTS_PER_UNIT: u64 = 100;

/// An amount in minor units, parsed from text such as `25.50`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Amount(pub u64);

/// Why an amount's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Nothing was given.
    #[error("the amount is empty")]
    Empty,
    /// A minus sign was given.
    #[error("amounts cannot be negative")]
    Negative,
    /// Something other than digits and one decimal point was given.
    #[error("'{0}' is not a decimal amount such as 25.50")]
    Invalid(String),
    /// More than two digits follow the decimal point.
    #[error("'{0}' has more than 2 decimals")]
    TooManyDecimals(String),
    /// The amount does not fit 64 bits of minor units.
    #[error("'{0}' is too large")]
    Overflow(String),
}

impl FromStr for Amount {
    type Err = AmountError;

    /// Parses `12`, `12.5` or `12.50` into minor units (`1200`, `1250`, `1250`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AmountError::Empty);
        }
        if text.starts_with('-') {
            return Err(AmountError::Negative);
        }
        let invalid = || AmountError::Invalid(text.to_owned());
        let (units, decimals) = match text.split_once('.') {
            Some((units, decimals)) => (units, Some(decimals)),
            None => (text, None),
        };
        let units = parse_digits(units).ok_or_else(invalid)?;
        let cents = match decimals {
            None => 0,
            Some(d) if d.len() > 2 && d.bytes().all(|b| b.is_ascii_digit()) => {
                return Err(AmountError::TooManyDecimals(text.to_owned()))
            }
            // "1.5" is 1.50: a single decimal counts tens of cents.
            Some(d) if d.len() == 1 => parse_digits(d).ok_or_else(invalid)? * 10,
            Some(d) => parse_digits(d).ok_or_else(invalid)?,
        };
        units
            .checked_mul(CENTS_PER_UNIT)
            .and_then(|v| v.checked_add(cents))
            .map(Amount)
            .ok_or_else(|| AmountError::Overflow(text.to_owned()))
    }
}

/// Parses a non-empty run of ASCII digits; `None` for anything else. Values past `u64` are
/// saturated so that they surface as an overflow rather than as invalid text.
fn parse_digits(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

impl fmt::Display for Amount {
    /// Writes the amount with exactly two decimals, e.g. `74.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02}",
            self.0 / CENTS_PER_UNIT,
            self.0 % CENTS_PER_UNIT
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cents(text: &str) -> Result<u64, AmountError> {
        text.parse::<Amount>().map(|a| a.0)
    }

    #[test]
    fn parses_whole_and_decimal_amounts_exactly() {
        assert_eq!(cents("0"), Ok(0));
        assert_eq!(cents("12"), Ok(1200));
        assert_eq!(cents("12.5"), Ok(1250));
        assert_eq!(cents("12.50"), Ok(1250));
        assert_eq!(cents("0.01"), Ok(1));
        assert_eq!(cents("0.10"), Ok(10));
        assert_eq!(cents("007.07"), Ok(707));
        assert_eq!(cents(" 25.50 "), Ok(2550));
        // 0.29 is not exactly representable as a float; minor units are.
        assert_eq!(cents("0.29"), Ok(29));
    }

    #[test]
    fn rejects_malformed_amounts() {
        assert_eq!(cents(""), Err(AmountError::Empty));
        assert_eq!(cents("   "), Err(AmountError::Empty));
        assert_eq!(cents("-1"), Err(AmountError::Negative));
        assert_eq!(cents("-0.50"), Err(AmountError::Negative));
        for bad in [
            "+1", "1e3", "1,50", "1.2.3", ".5", "5.", "1 000", "abc", "0x10", "1.-5", "1.+5",
        ] {
            assert_eq!(cents(bad), Err(AmountError::Invalid(bad.into())), "{bad}");
        }
    }

    #[test]
    fn rejects_more_than_two_decimals() {
        assert_eq!(
            cents("1.234"),
            Err(AmountError::TooManyDecimals("1.234".into()))
        );
        assert_eq!(
            cents("1.000"),
            Err(AmountError::TooManyDecimals("1.000".into()))
        );
    }

    #[test]
    fn rejects_overflow() {
        // u64::MAX is 18446744073709551615 cents.
        assert_eq!(cents("184467440737095516.15"), Ok(u64::MAX));
        assert!(matches!(
            cents("184467440737095516.16"),
            Err(AmountError::Overflow(_))
        ));
        assert!(matches!(
            cents("184467440737095517"),
            Err(AmountError::Overflow(_))
        ));
        assert!(matches!(
            cents("99999999999999999999999999"),
            Err(AmountError::Overflow(_))
        ));
    }

    #[test]
    fn formats_with_two_decimals() {
        assert_eq!(Amount(7450).to_string(), "74.50");
        assert_eq!(Amount(0).to_string(), "0.00");
        assert_eq!(Amount(1).to_string(), "0.01");
        assert_eq!(Amount(100).to_string(), "1.00");
        assert_eq!(Amount(u64::MAX).to_string(), "184467440737095516.15");
    }

    #[test]
    fn formatting_round_trips() {
        for value in [0, 1, 99, 100, 2550, 123_456_789, u64::MAX] {
            assert_eq!(
                Amount(value).to_string().parse::<Amount>(),
                Ok(Amount(value))
            );
        }
    }
}
