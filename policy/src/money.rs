//! Money in yuan with at most two decimals (to the fen, 分), ratios, and
//! rounding. Never floating point: every value is a `rust_decimal::Decimal`
//! and every file or request carries it as a string (`"1500.00"`).

use std::fmt;
use std::iter::Sum;
use std::ops::Add;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::ids::ParseError;

/// Enough for any fund in the country (10^15 yuan) while keeping products of
/// amounts and ratios far inside `Decimal`'s 28 digits.
pub const YUAN_INTEGER_DIGITS_MAX: usize = 15;

/// Parses `123`, `123.4` or `123.45`: digits without sign, exponent,
/// thousands separators or leading zeros, and at most two decimals. Written
/// zeros count as decimals: `"1500.000"` has three and is refused, so what a
/// clerk typed is what gets recorded.
fn parse_yuan(what: &'static str, s: &str) -> Result<Decimal, ParseError> {
    let err = |p: String| ParseError::new(what, p);
    let (int, frac) = match s.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (s, None),
    };
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err(format!(
            "must be yuan written with digits and at most 2 decimals, e.g. \"1500.00\"; got {s:?}"
        )));
    }
    if int.len() > 1 && int.starts_with('0') {
        return Err(err(format!("must not start with a zero; got {s:?}")));
    }
    if int.len() > YUAN_INTEGER_DIGITS_MAX {
        return Err(err(format!(
            "is larger than {YUAN_INTEGER_DIGITS_MAX} digits of yuan; got {s:?}"
        )));
    }
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(format!("must have 1 or 2 digits after the decimal point; got {s:?}")));
        }
        if frac.len() > 2 {
            return Err(err(format!(
                "has more than 2 decimal places (the fen is the smallest unit); got {s:?}"
            )));
        }
    }
    let mut value = Decimal::from_str(s).map_err(|e| err(format!("{e}; got {s:?}")))?;
    value.rescale(2);
    Ok(value)
}

/// A positive amount of money: what a subsidy pays. More than zero, at most
/// two decimals; `Display` always shows two (`"1500.00"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Money(Decimal);

impl Money {
    const WHAT: &'static str = "amount";

    /// Exactly the form [`Money::parse`] accepts, as a regular expression: yuan without sign,
    /// exponent, separators or leading zeros, at most 15 digits and 2 decimals, more than 0.
    pub const PATTERN: &'static str =
        "^([1-9][0-9]{0,14}(\\.[0-9]{1,2})?|0\\.([1-9][0-9]?|0[1-9]))$";

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Self::from_decimal(parse_yuan(Self::WHAT, s)?)
    }

    /// Accepts a decimal that is positive and has at most two decimals.
    pub fn from_decimal(value: Decimal) -> Result<Self, ParseError> {
        if value <= Decimal::ZERO {
            return Err(ParseError::new(
                Self::WHAT,
                format!("must be more than 0.00; got {value}"),
            ));
        }
        if value.normalize().scale() > 2 {
            return Err(ParseError::new(
                Self::WHAT,
                format!("has more than 2 decimal places; got {value}"),
            ));
        }
        let mut value = value;
        value.rescale(2);
        Ok(Money(value))
    }

    pub fn value(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

/// A non-negative amount of money: balances, caps, sums, shares that may be
/// zero. Same format as [`Money`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Amount(Decimal);

impl Amount {
    const WHAT: &'static str = "amount";

    /// Exactly the form [`Amount::parse`] accepts, as a regular expression: [`Money::PATTERN`]
    /// with zero allowed.
    pub const PATTERN: &'static str = "^(0|[1-9][0-9]{0,14})(\\.[0-9]{1,2})?$";
    pub const ZERO: Amount = Amount(Decimal::ZERO);

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        Ok(Amount(parse_yuan(Self::WHAT, s)?))
    }

    pub fn from_decimal(value: Decimal) -> Result<Self, ParseError> {
        if value < Decimal::ZERO {
            return Err(ParseError::new(Self::WHAT, format!("must not be negative; got {value}")));
        }
        if value.normalize().scale() > 2 {
            return Err(ParseError::new(
                Self::WHAT,
                format!("has more than 2 decimal places; got {value}"),
            ));
        }
        let mut value = value;
        value.rescale(2);
        Ok(Amount(value))
    }

    /// Rounds a non-negative exact value to the fen by `rounding`.
    pub fn rounded(exact: Decimal, rounding: Rounding) -> Result<Self, ParseError> {
        Self::from_decimal(rounding.apply(exact))
    }

    pub fn value(self) -> Decimal {
        self.0
    }

    /// `None` for zero.
    pub fn to_money(self) -> Option<Money> {
        Money::from_decimal(self.0).ok()
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

impl From<Money> for Amount {
    fn from(m: Money) -> Self {
        Amount(m.0)
    }
}

impl Add for Amount {
    type Output = Amount;
    fn add(self, rhs: Amount) -> Amount {
        Amount(self.0 + rhs.0)
    }
}

impl Sum for Amount {
    fn sum<I: Iterator<Item = Amount>>(iter: I) -> Amount {
        iter.fold(Amount::ZERO, Add::add)
    }
}

crate::serde_str::serde_via_str!(
    Money,
    "a string of yuan such as \"1500.00\" (never a bare number)"
);
crate::serde_str::serde_via_str!(
    Amount,
    "a string of yuan such as \"1500.00\" (never a bare number)"
);

/// A ratio in (0, 1] with at most 6 decimals, written as a decimal string
/// (`"0.15"`, `"0.055"`). Used for the quota ratio, refund rates and layoff
/// thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ratio(Decimal);

const RATIO_DECIMALS_MAX: usize = 6;

impl Ratio {
    const WHAT: &'static str = "ratio";

    /// Exactly the form [`Ratio::parse`] accepts, as a regular expression: more than 0, at
    /// most 1, at most 6 decimals.
    pub const PATTERN: &'static str = "^(1(\\.0{1,6})?|0\\.([1-9][0-9]{0,5}|0[1-9][0-9]{0,4}|00[1-9][0-9]{0,3}|000[1-9][0-9]{0,2}|0000[1-9][0-9]?|00000[1-9]))$";

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let err = |p: String| ParseError::new(Self::WHAT, p);
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let shape_ok = (int == "0" || int == "1")
            && (s.len() == int.len()
                || (!frac.is_empty()
                    && frac.len() <= RATIO_DECIMALS_MAX
                    && frac.bytes().all(|b| b.is_ascii_digit())));
        if !shape_ok {
            return Err(err(format!(
                "must be a decimal between 0 and 1 with at most {RATIO_DECIMALS_MAX} decimals, \
                 e.g. \"0.15\"; got {s:?}"
            )));
        }
        let value = Decimal::from_str(s).map_err(|e| err(format!("{e}; got {s:?}")))?;
        if value <= Decimal::ZERO || value > Decimal::ONE {
            return Err(err(format!("must be more than 0 and at most 1; got {s:?}")));
        }
        Ok(Ratio(value.normalize()))
    }

    pub fn value(self) -> Decimal {
        self.0
    }

    /// As a percentage for messages: `0.055` → `5.5%`.
    pub fn percent(self) -> String {
        format!("{}%", (self.0 * Decimal::ONE_HUNDRED).normalize())
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

crate::serde_str::serde_via_str!(Ratio, "a decimal string such as \"0.15\" (never a bare number)");

/// How an exact amount becomes one in fen. Each policy names its rule so the
/// same refund is computed the same way on every replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// 四舍五入 to 0.01: half a fen or more rounds up. What Chinese finance
    /// offices and the social-insurance systems use for amounts paid out.
    HalfUpToFen,
    /// Truncate to 0.01: for ceilings, which must never be exceeded by a
    /// rounding.
    DownToFen,
}

impl Rounding {
    /// Rounds a non-negative exact value to two decimals.
    pub fn apply(self, exact: Decimal) -> Decimal {
        let strategy = match self {
            Rounding::HalfUpToFen => RoundingStrategy::MidpointAwayFromZero,
            Rounding::DownToFen => RoundingStrategy::ToZero,
        };
        let mut rounded = exact.round_dp_with_strategy(2, strategy);
        rounded.rescale(2);
        rounded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn money_always_displays_two_decimals() {
        assert_eq!(Money::parse("1500").unwrap().to_string(), "1500.00");
        assert_eq!(Money::parse("1500.5").unwrap().to_string(), "1500.50");
        assert_eq!(Money::parse("0.01").unwrap().to_string(), "0.01");
        assert_eq!(Money::from_decimal(d("300")).unwrap().to_string(), "300.00");
    }

    #[test]
    fn money_refusals_name_the_problem() {
        let cases = [
            ("0", "more than 0.00"),
            ("0.00", "more than 0.00"),
            ("-5.00", "digits"),
            ("1500.005", "more than 2 decimal places"),
            ("1500.000", "more than 2 decimal places"),
            ("01500.00", "must not start with a zero"),
            ("1,500.00", "digits"),
            ("1e3", "digits"),
            ("1500.", "1 or 2 digits after"),
            (".50", "digits"),
            ("", "digits"),
            ("1234567890123456", "larger than 15 digits"),
        ];
        for (input, expected) in cases {
            let e = Money::parse(input).unwrap_err();
            assert!(e.problem.contains(expected), "{input}: {e}");
        }
        assert!(Money::from_decimal(d("1.005")).is_err());
        assert!(Money::from_decimal(d("1.050")).is_ok());
    }

    #[test]
    fn amount_allows_zero_but_not_negative() {
        assert_eq!(Amount::parse("0").unwrap().to_string(), "0.00");
        assert!(Amount::from_decimal(d("-0.01")).is_err());
        assert_eq!(Amount::ZERO.to_money(), None);
        let sum: Amount =
            [Amount::parse("0.10").unwrap(), Amount::parse("0.20").unwrap()].into_iter().sum();
        assert_eq!(sum.to_string(), "0.30");
    }

    #[test]
    fn money_is_a_string_in_json_never_a_number() {
        let m: Money = serde_json::from_str("\"1500.00\"").unwrap();
        assert_eq!(serde_json::to_string(&m).unwrap(), "\"1500.00\"");
        assert!(serde_json::from_str::<Money>("1500.0").is_err());
        assert!(serde_json::from_str::<Money>("1500").is_err());
    }

    #[test]
    fn ratios_lie_in_zero_to_one() {
        assert_eq!(Ratio::parse("0.150").unwrap().to_string(), "0.15");
        assert_eq!(Ratio::parse("1").unwrap().to_string(), "1");
        assert_eq!(Ratio::parse("0.055").unwrap().percent(), "5.5%");
        for bad in ["0", "0.0", "1.01", "2", "-0.1", ".15", "0.15%", "0.1234567", "15%"] {
            assert!(Ratio::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rounding_rules_differ_at_half_a_fen() {
        assert_eq!(Rounding::HalfUpToFen.apply(d("10.005")), d("10.01"));
        assert_eq!(Rounding::HalfUpToFen.apply(d("10.0049")), d("10.00"));
        assert_eq!(Rounding::DownToFen.apply(d("10.009")), d("10.00"));
        assert_eq!(Rounding::DownToFen.apply(d("10")).to_string(), "10.00");
    }

    proptest! {
        #[test]
        fn valid_money_prints_back_unchanged(s in "[1-9][0-9]{0,12}\\.[0-9]{2}") {
            prop_assert_eq!(Money::parse(&s).unwrap().to_string(), s);
        }

        /// Corruption: a character replaced by one that is neither a digit nor
        /// the decimal point.
        #[test]
        fn money_with_a_foreign_character_is_refused(
            s in "[1-9][0-9]{0,12}\\.[0-9]{2}", i in 0usize..16, c in proptest::char::any()
        ) {
            prop_assume!(i < s.len() && !c.is_ascii_digit() && c != '.');
            let corrupted: String = s.chars().enumerate().map(|(j, x)| if j == i { c } else { x }).collect();
            prop_assert!(Money::parse(&corrupted).is_err());
        }

        #[test]
        fn valid_amounts_print_back_unchanged(s in "(0|[1-9][0-9]{0,12})\\.[0-9]{2}") {
            prop_assert_eq!(Amount::parse(&s).unwrap().to_string(), s);
        }

        #[test]
        fn amounts_with_a_foreign_character_are_refused(
            s in "(0|[1-9][0-9]{0,12})\\.[0-9]{2}", i in 0usize..16, c in proptest::char::any()
        ) {
            prop_assume!(i < s.len() && !c.is_ascii_digit() && c != '.');
            let corrupted: String = s.chars().enumerate().map(|(j, x)| if j == i { c } else { x }).collect();
            prop_assert!(Amount::parse(&corrupted).is_err());
        }

        #[test]
        fn valid_ratios_print_back_unchanged(s in "0\\.[0-9]{0,5}[1-9]|1") {
            prop_assert_eq!(Ratio::parse(&s).unwrap().to_string(), s);
        }

        #[test]
        fn ratios_with_a_foreign_character_are_refused(
            s in "0\\.[0-9]{0,5}[1-9]", i in 0usize..8, c in proptest::char::any()
        ) {
            prop_assume!(i < s.len() && !c.is_ascii_digit() && c != '.');
            let corrupted: String = s.chars().enumerate().map(|(j, x)| if j == i { c } else { x }).collect();
            prop_assert!(Ratio::parse(&corrupted).is_err());
        }
    }
}
