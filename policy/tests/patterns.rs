//! The `PATTERN` of each identifier and money type (what the OpenAPI document publishes) agrees
//! with its parser: every string the pattern describes parses (for ID numbers and credit codes,
//! once its check character is right and, for ID numbers, its birth date is a real day), and
//! every string that parses matches the pattern. A client that builds requests from the schema
//! is never refused for a value's form.

use fundledger_policy::{Amount, CreditCode, DivisionCode, IdNumber, Money, OccupationCode, Ratio};
use proptest::prelude::*;
use proptest::string::string_regex;
use regex::Regex;

/// Strings the pattern describes (proptest's generator has no anchors: they are implied).
fn described_by(pattern: &str) -> impl Strategy<Value = String> {
    let inner = pattern.strip_prefix('^').and_then(|p| p.strip_suffix('$')).expect("anchored");
    string_regex(inner).expect("a pattern proptest can generate from")
}

fn matches(pattern: &str, s: &str) -> bool {
    Regex::new(pattern).expect("a valid pattern").is_match(s)
}

/// Near misses: the characters identifiers and money are made of, and a few foreign ones.
const NEAR: &str = "[0-9Xx.\\-+ A-Za-z]{0,20}";

#[test]
fn the_documented_examples_match() {
    assert!(matches(DivisionCode::PATTERN, "370811"));
    assert!(!matches(DivisionCode::PATTERN, "003708"));
    assert!(matches(IdNumber::PATTERN, "11010519491231002X"));
    assert!(matches(IdNumber::PATTERN, "11010519491231002x"));
    assert!(!matches(IdNumber::PATTERN, "11010518991231002X"), "born before 1900");
    assert!(matches(CreditCode::PATTERN, "91370800MA3C1234XP"));
    assert!(!matches(CreditCode::PATTERN, "91370800MA3C1I34XP"), "I is not in the set");
    assert!(matches(OccupationCode::PATTERN, "6-18-02-04"));
    for ok in ["1500.00", "0.01", "1", "999999999999999.99"] {
        assert!(matches(Money::PATTERN, ok), "{ok}");
    }
    for bad in ["0", "0.00", "01", "1.234", "-1", "1e3", "1000000000000000"] {
        assert!(!matches(Money::PATTERN, bad), "{bad}");
    }
    assert!(matches(Amount::PATTERN, "0.00") && matches(Amount::PATTERN, "0"));
    for ok in ["0.15", "1", "1.000000", "0.000001"] {
        assert!(matches(Ratio::PATTERN, ok), "{ok}");
    }
    for bad in ["0", "0.0", "1.01", "0.0000001", ".5"] {
        assert!(!matches(Ratio::PATTERN, bad), "{bad}");
    }
}

proptest! {
    #[test]
    fn division_codes_parse_exactly_when_they_match(
        described in described_by(DivisionCode::PATTERN), any in NEAR, digits in "0[0-9]{5}"
    ) {
        prop_assert!(DivisionCode::parse(&described).is_ok(), "{described}");
        for s in [&any, &digits] {
            prop_assert_eq!(DivisionCode::parse(s).is_ok(), matches(DivisionCode::PATTERN, s), "{}", s);
        }
    }

    #[test]
    fn occupation_codes_parse_exactly_when_they_match(
        described in described_by(OccupationCode::PATTERN), any in NEAR
    ) {
        prop_assert!(OccupationCode::parse(&described).is_ok(), "{described}");
        prop_assert_eq!(OccupationCode::parse(&any).is_ok(), matches(OccupationCode::PATTERN, &any));
    }

    #[test]
    fn money_parses_exactly_when_it_matches(
        money in described_by(Money::PATTERN), amount in described_by(Amount::PATTERN), any in NEAR
    ) {
        prop_assert!(Money::parse(&money).is_ok(), "{money}");
        prop_assert!(Amount::parse(&amount).is_ok(), "{amount}");
        prop_assert_eq!(Money::parse(&any).is_ok(), matches(Money::PATTERN, &any), "{}", any);
        prop_assert_eq!(Amount::parse(&any).is_ok(), matches(Amount::PATTERN, &any), "{}", any);
    }

    #[test]
    fn ratios_parse_exactly_when_they_match(
        described in described_by(Ratio::PATTERN), any in "[01.]{0,9}"
    ) {
        prop_assert!(Ratio::parse(&described).is_ok(), "{described}");
        prop_assert_eq!(Ratio::parse(&any).is_ok(), matches(Ratio::PATTERN, &any), "{}", any);
    }

    /// The pattern leaves out the calendar and the check character: with those right, every
    /// described string parses; and every number that parses matches.
    #[test]
    fn id_numbers_described_by_the_pattern_parse_once_date_and_check_are_right(
        described in described_by(IdNumber::PATTERN), any in "[0-9]{17}[0-9Xx]"
    ) {
        let first = &described[..17];
        let birth = &described[6..14];
        let real_day = chrono::NaiveDate::parse_from_str(birth, "%Y%m%d").is_ok();
        let fixed = format!("{first}{}", IdNumber::check_char_for(first).unwrap());
        prop_assert_eq!(IdNumber::parse(&fixed).is_ok(), real_day, "{}", fixed);
        if IdNumber::parse(&any).is_ok() {
            prop_assert!(matches(IdNumber::PATTERN, &any), "{}", any);
        }
        if IdNumber::parse(&fixed).is_ok() {
            prop_assert!(matches(IdNumber::PATTERN, &fixed));
        }
    }

    #[test]
    fn credit_codes_described_by_the_pattern_parse_once_the_check_is_right(
        described in described_by(CreditCode::PATTERN), any in NEAR
    ) {
        let first = described[..17].to_ascii_uppercase();
        let fixed = format!("{first}{}", CreditCode::check_char_for(&first).unwrap());
        prop_assert!(CreditCode::parse(&fixed).is_ok(), "{}", fixed);
        prop_assert!(matches(CreditCode::PATTERN, &fixed));
        if CreditCode::parse(&any).is_ok() {
            prop_assert!(matches(CreditCode::PATTERN, &any), "{}", any);
        }
    }
}
