//! Identifier types that cannot hold a bad value.
//!
//! Each type has `parse(&str)`, prints back its canonical form with `Display`,
//! and goes through serde as that string, so a value read from an event or a
//! request has passed the same checks as one typed by a clerk.

use std::fmt;

use chrono::NaiveDate;

/// Why a string is not a valid value of a parsing type: `what` names the type,
/// `problem` says what is wrong in a sentence a clerk can act on.
///
/// It never repeats a full ID number (PIPL: ID numbers stay out of logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {problem}")]
pub struct ParseError {
    pub what: &'static str,
    pub problem: String,
}

impl ParseError {
    pub(crate) fn new(what: &'static str, problem: impl Into<String>) -> Self {
        ParseError { what, problem: problem.into() }
    }
}

/// Implements `Display`, `Serialize` and `Deserialize` through the canonical
/// string of a type with `parse` and `as_str`.
macro_rules! string_serde {
    ($ty:ident, $expecting:literal) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        crate::serde_str::serde_via_str!($ty, $expecting);
    };
}

// ---------------------------------------------------------------------------
// Resident ID number (公民身份号码, GB 11643)

/// An 18-character resident ID number (公民身份号码, GB 11643): a 6-digit
/// address code, the birth date `YYYYMMDD`, a 3-digit sequence number and an
/// ISO 7064 MOD 11-2 check character (`0`-`9` or `X`).
///
/// `Debug` prints the masked form so that a stray `{:?}` in a log line cannot
/// leak the number; `Display` and serde give the full number, for authorized
/// views and the event log only.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber(String);

/// MOD 11-2 weights: 2^(17-i) mod 11 for positions i = 1..=17. All are
/// non-zero modulo the prime 11, so any single substituted character changes
/// the weighted sum and is caught.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK_CHARS: &[u8; 11] = b"10X98765432";
const ID_LEN: usize = 18;
/// Nobody born before 1900 applies for a subsidy; a smaller year means a typo.
const BIRTH_YEAR_MIN: i32 = 1900;

impl IdNumber {
    const WHAT: &'static str = "ID number";

    /// The form [`IdNumber::parse`] accepts, as a regular expression (ECMA 262 and Rust
    /// `regex` alike, for the OpenAPI document): 17 digits whose 7th to 14th are a birth date
    /// `YYYYMMDD` from 1900 on, then a digit or `X` (`x`). What a pattern cannot say: the
    /// birth date must exist in the calendar (no 19900230) and the last character is the
    /// MOD 11-2 check character of the first 17.
    pub const PATTERN: &'static str = "^[0-9]{6}(19[0-9]{2}|[2-9][0-9]{3})(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]$";

    /// Parses an ID number, checking its length, characters, that positions
    /// 7-14 form a real calendar date, and the check character. A lowercase
    /// `x` is accepted and stored as `X`. Whether the birth date lies in the
    /// future is a separate question ([`IdNumber::check_born_by`]) because it
    /// needs "today", which a pure parser does not have.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let err = |p: String| ParseError::new(Self::WHAT, p);
        let len = s.chars().count();
        if len != ID_LEN {
            return Err(err(format!("must be 18 characters, got {len}")));
        }
        let bytes = s.as_bytes();
        if let Some(i) = bytes[..17].iter().position(|b| !b.is_ascii_digit()) {
            return Err(err(format!(
                "character {} must be a digit; only the last character may be X",
                i + 1
            )));
        }
        let last = bytes[17].to_ascii_uppercase();
        if !(last.is_ascii_digit() || last == b'X') {
            return Err(err("the last character must be a digit or X".to_string()));
        }
        let birth = &s[6..14];
        let is_birth_date = NaiveDate::parse_from_str(birth, "%Y%m%d")
            .is_ok_and(|d| chrono::Datelike::year(&d) >= BIRTH_YEAR_MIN);
        if !is_birth_date {
            return Err(err(format!(
                "characters 7-14 are not a birth date YYYYMMDD from {BIRTH_YEAR_MIN} on"
            )));
        }
        let expected = Self::check_char(&bytes[..17]);
        if last != expected {
            // Neither the character given nor the one expected: either would tell a reader
            // of the log something about the person's number (PIPL).
            return Err(err("the check character (the last one) is wrong; one of the characters \
                 was probably mistyped"
                .to_string()));
        }
        let mut canonical = s[..17].to_string();
        canonical.push(last as char);
        Ok(IdNumber(canonical))
    }

    /// Parses and also refuses a birth date after `today` (the caller's
    /// business date in Asia/Shanghai).
    pub fn parse_as_of(s: &str, today: NaiveDate) -> Result<Self, ParseError> {
        let id = Self::parse(s)?;
        id.check_born_by(today)?;
        Ok(id)
    }

    /// Refuses a birth date after `today`.
    pub fn check_born_by(&self, today: NaiveDate) -> Result<(), ParseError> {
        let born = self.birth_date();
        if born > today {
            return Err(ParseError::new(
                Self::WHAT,
                format!("the birth date {born} is after today ({today})"),
            ));
        }
        Ok(())
    }

    /// The MOD 11-2 check character for 17 ASCII digits.
    fn check_char(digits: &[u8]) -> u8 {
        let sum: u32 = digits.iter().zip(ID_WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
        ID_CHECK_CHARS[(sum % 11) as usize]
    }

    pub fn birth_date(&self) -> NaiveDate {
        // Checked in parse; a failure here would be a bug in parse.
        NaiveDate::parse_from_str(&self.0[6..14], "%Y%m%d").expect("birth date checked by parse")
    }

    /// The form shown on public notices: first 6, 8 stars, last 4
    /// (`370802********1234`).
    pub fn masked(&self) -> String {
        format!("{}********{}", &self.0[..6], &self.0[14..])
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdNumber({})", self.masked())
    }
}

string_serde!(IdNumber, "an 18-character resident ID number");

// ---------------------------------------------------------------------------
// Unified social credit code (统一社会信用代码, GB 32100)

/// An 18-character unified social credit code (统一社会信用代码, GB 32100):
/// registration authority, organisation category, 6-digit division code of
/// the registering office, 9-character organisation code and a check
/// character computed modulo 31.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CreditCode(String);

/// GB 32100 character set: digits and capitals without I, O, S, V, Z.
pub(crate) const CREDIT_CHARSET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
/// GB 32100 weights: 3^(i-1) mod 31. All are non-zero modulo the prime 31,
/// so any single substituted character is caught.
const CREDIT_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

impl CreditCode {
    const WHAT: &'static str = "unified social credit code";

    /// The form [`CreditCode::parse`] accepts, as a regular expression: 18 characters of the
    /// GB 32100 set (digits and letters but I, O, S, V and Z, either case), the 3rd to 8th
    /// digits. What a pattern cannot say: the last character is the check character (modulo
    /// 31) of the first 17.
    pub const PATTERN: &'static str =
        "^[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXYa-hj-npqrtuwxy]{10}$";

    /// Parses a credit code. Lowercase letters are accepted and stored in
    /// capitals, since clerks' systems differ; the letters I, O, S, V and Z
    /// are not part of the code in either case.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let err = |p: String| ParseError::new(Self::WHAT, p);
        let len = s.chars().count();
        if len != 18 {
            return Err(err(format!("must be 18 characters, got {len}")));
        }
        let mut upper = [0u8; 18];
        let mut values = [0u32; 18];
        for (i, c) in s.chars().enumerate() {
            let c = c.to_ascii_uppercase();
            let found =
                u8::try_from(c).ok().and_then(|b| CREDIT_CHARSET.iter().position(|&x| x == b));
            let Some(v) = found else {
                return Err(err(format!(
                    "character {} ({c}) is not allowed: the code uses digits and capital letters \
                     except I, O, S, V and Z",
                    i + 1
                )));
            };
            upper[i] = CREDIT_CHARSET[v];
            values[i] = v as u32;
        }
        if let Some(i) = (2..8).find(|&i| !upper[i].is_ascii_digit()) {
            return Err(err(format!(
                "characters 3-8 are the registering office's division code and must be digits; \
                 character {} is not",
                i + 1
            )));
        }
        let expected = Self::check_value(&values[..17]);
        if values[17] != expected {
            return Err(err(format!(
                "the check character is {} but the first 17 characters require {}; \
                 one of the characters was probably mistyped",
                upper[17] as char, CREDIT_CHARSET[expected as usize] as char
            )));
        }
        Ok(CreditCode(String::from_utf8(upper.to_vec()).expect("ASCII")))
    }

    fn check_value(values: &[u32]) -> u32 {
        let sum: u32 = values.iter().zip(CREDIT_WEIGHTS).map(|(v, w)| v * w).sum();
        (31 - sum % 31) % 31
    }

    /// The check character for the first 17 characters, for building test
    /// data; `None` when a character is outside the GB 32100 set.
    pub fn check_char_for(first_17: &str) -> Option<char> {
        if first_17.len() != 17 {
            return None;
        }
        let values: Option<Vec<u32>> = first_17
            .bytes()
            .map(|b| CREDIT_CHARSET.iter().position(|&c| c == b).map(|v| v as u32))
            .collect();
        Some(CREDIT_CHARSET[Self::check_value(&values?) as usize] as char)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl IdNumber {
    /// The check character for 17 digits, for building test data.
    pub fn check_char_for(first_17: &str) -> Option<char> {
        (first_17.len() == 17 && first_17.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self::check_char(first_17.as_bytes()) as char)
    }
}

string_serde!(CreditCode, "an 18-character unified social credit code");

// ---------------------------------------------------------------------------
// Occupation code (职业编码)

/// A code of the national occupation classification (职业分类大典),
/// `N-NN-NN-NN`, e.g. `6-18-02-04` (焊工).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OccupationCode(String);

impl OccupationCode {
    const WHAT: &'static str = "occupation code";

    /// Exactly the form [`OccupationCode::parse`] accepts, as a regular expression.
    pub const PATTERN: &'static str = "^[0-9]-[0-9]{2}-[0-9]{2}-[0-9]{2}$";

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        const SHAPE: &[u8; 10] = b"9-99-99-99";
        let ok = s.len() == SHAPE.len()
            && s.bytes().zip(SHAPE).all(|(b, &shape)| match shape {
                b'9' => b.is_ascii_digit(),
                _ => b == b'-',
            });
        if !ok {
            return Err(ParseError::new(
                Self::WHAT,
                format!("must look like 6-18-02-04 (N-NN-NN-NN), got {s:?}"),
            ));
        }
        Ok(OccupationCode(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_serde!(OccupationCode, "an occupation code N-NN-NN-NN");

// ---------------------------------------------------------------------------
// Administrative division code (行政区划代码)

/// A 6-digit administrative division code (GB/T 2260): a province ends in
/// `0000` (370000 Shandong), a city (fund pool) in `00` (370800 Jining), a
/// county otherwise (370811 Rencheng).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DivisionCode([u8; 6]);

impl DivisionCode {
    const WHAT: &'static str = "division code";

    /// Exactly the form [`DivisionCode::parse`] accepts, as a regular expression: 6 digits,
    /// not starting with 00.
    pub const PATTERN: &'static str = "^(0[1-9]|[1-9][0-9])[0-9]{4}$";

    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let bytes = s.as_bytes();
        if bytes.len() != 6 || !bytes.iter().all(u8::is_ascii_digit) {
            return Err(ParseError::new(
                Self::WHAT,
                format!("must be 6 digits, e.g. 370811, got {s:?}"),
            ));
        }
        if &bytes[..2] == b"00" {
            return Err(ParseError::new(
                Self::WHAT,
                format!("{s} names no province: the first two digits cannot be 00"),
            ));
        }
        let mut code = [0u8; 6];
        code.copy_from_slice(bytes);
        Ok(DivisionCode(code))
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII digits")
    }

    pub fn is_province(&self) -> bool {
        &self.0[2..] == b"0000"
    }

    /// The province this code lies in (`370811` → `370000`).
    pub fn province(&self) -> DivisionCode {
        let mut code = self.0;
        code[2..].copy_from_slice(b"0000");
        DivisionCode(code)
    }

    /// Whether `other` lies within this area: a province contains every code
    /// starting with its two digits, a city every code starting with its four,
    /// a county only itself.
    pub fn contains(&self, other: &DivisionCode) -> bool {
        if self.is_province() {
            self.0[..2] == other.0[..2]
        } else if &self.0[4..] == b"00" {
            self.0[..4] == other.0[..4]
        } else {
            self == other
        }
    }
}

string_serde!(DivisionCode, "a 6-digit division code");

// ---------------------------------------------------------------------------
// Policy id

/// A policy's stable slug, e.g. `jining-2025-skill-upgrade`: lowercase ASCII
/// letters and digits in groups joined by single hyphens, at most 64
/// characters. It prefixes every rule id, so it must never change once
/// published.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PolicyId(String);

const POLICY_ID_LEN_MAX: usize = 64;

impl PolicyId {
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = !s.is_empty()
            && s.len() <= POLICY_ID_LEN_MAX
            && s.split('-').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !ok {
            return Err(ParseError::new(
                "policy id",
                format!(
                    "must be lowercase letters and digits joined by single hyphens, \
                     at most {POLICY_ID_LEN_MAX} characters, e.g. jining-2025-skill-upgrade; got {s:?}"
                ),
            ));
        }
        Ok(PolicyId(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

string_serde!(PolicyId, "a policy id slug");

// ---------------------------------------------------------------------------
// Names

/// Masks a person's name for public notices (公示): `张三` → `张*`,
/// `张小三` → `张*三`, longer names keep the first and last character with a
/// star for each one between (`欧阳小明` → `欧**明`). A one-character name
/// becomes `*`, since keeping it would show it whole.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.trim().chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_string(),
        2 => format!("{}*", chars[0]),
        n => {
            let mut masked = String::new();
            masked.push(chars[0]);
            masked.extend(std::iter::repeat_n('*', n - 2));
            masked.push(chars[n - 1]);
            masked
        }
    }
}

// ---------------------------------------------------------------------------

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A valid ID number: random address code and sequence, a real birth date
    /// from 1900 to 2024, and the right check character.
    pub(crate) fn id_number_strategy() -> impl Strategy<Value = String> {
        ("[1-8][0-9]{5}", 0u32..45_000, "[0-9]{3}").prop_map(|(addr, days, seq)| {
            let born =
                NaiveDate::from_ymd_opt(1900, 1, 1).unwrap() + chrono::Days::new(days.into());
            let first = format!("{addr}{}{seq}", born.format("%Y%m%d"));
            let check = IdNumber::check_char_for(&first).unwrap();
            format!("{first}{check}")
        })
    }

    pub(crate) fn credit_code_strategy() -> impl Strategy<Value = String> {
        ("[0-9A-HJ-NP-RTUW-Y]{2}", "[0-9]{6}", "[0-9A-HJ-NP-RTUW-Y]{9}").prop_map(
            |(head, division, org)| {
                let first = format!("{head}{division}{org}");
                let check = CreditCode::check_char_for(&first).unwrap();
                format!("{first}{check}")
            },
        )
    }

    fn replace_at(s: &str, i: usize, c: char) -> String {
        s.chars().enumerate().map(|(j, x)| if j == i { c } else { x }).collect()
    }

    #[test]
    fn id_number_of_the_standard_example_parses() {
        // The example of GB 11643-1999 annex: 11010519491231002X.
        let id = IdNumber::parse("11010519491231002x").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), NaiveDate::from_ymd_opt(1949, 12, 31).unwrap());
        assert_eq!(id.masked(), "110105********002X");
        assert_eq!(format!("{id:?}"), "IdNumber(110105********002X)");
    }

    /// One number for each of the 11 check characters, computed by an
    /// independent implementation of GB 11643, so that a wrong weight or a
    /// wrong table entry is caught (the property tests only check that parse
    /// agrees with itself).
    #[test]
    fn id_numbers_pass_for_every_check_character() {
        let valid = [
            "370809200209043740",
            "37081119770703246X",
            "370815198605188359",
            "370836195812084075",
            "370841195907210493",
            "370858197305088132",
            "370872195909049714",
            "370874195309070387",
            "370874195310194061",
            "370891195410026336",
            "370899197008199458",
        ];
        let checks: std::collections::BTreeSet<char> =
            valid.iter().map(|v| v.chars().last().unwrap()).collect();
        assert_eq!(checks.len(), 11);
        for v in valid {
            assert!(IdNumber::parse(v).is_ok(), "{v}");
        }
    }

    /// The same for credit codes: one per check character (31), from an
    /// independent implementation of GB 32100, and the example code printed in
    /// guides to the standard.
    #[test]
    fn credit_codes_pass_for_every_check_character() {
        let valid = [
            "11217151PAP8FTN5GM",
            "1131059981Q3GEH0QG",
            "11393583Q4TDUXMTY8",
            "114893244NHX0QG9LX",
            "12173607F8M3N6MF9J",
            "12302002K0QR454FKK",
            "12451430KGKG6N8EGA",
            "13256014DU6TU60866",
            "13264586A8LPN9KJ49",
            "13383799GBX5BQ7HHY",
            "51437147L9GQ69EGM5",
            "5222033228K263DFNQ",
            "52297193DRLA2RYPC2",
            "53607399MXB4HH400B",
            "911328456FWMLD287P",
            "91374025GLDNQ33294",
            "91375402W4YE7PY3C7",
            "914937290AHEEN0CAN",
            "92651863DTXWG4H4GF",
            "931367392U6KC4L8YL",
            "931774133XR7W3288W",
            "93343876KRRQU6R7TR",
            "93362223QJA8HDT41C",
            "93491853F33UFEFF9E",
            "Y1407980PKL41TTNW1",
            "Y1637403WH2MG2PPF0",
            "Y2313051NKYBERXPBT",
            "Y3136396B698DWHG5U",
            "Y33477536GFBP00R83",
            "Y3369685NGWWYX8XHH",
            "Y3522180G9N67A6TWD",
            "91350100M000100Y43",
        ];
        let checks: std::collections::BTreeSet<char> =
            valid.iter().map(|v| v.chars().last().unwrap()).collect();
        assert_eq!(checks.len(), 31);
        for v in valid {
            assert!(CreditCode::parse(v).is_ok(), "{v}");
        }
    }

    #[test]
    fn id_number_refusals_name_the_problem() {
        let cases = [
            ("1101051949123100", "must be 18 characters, got 16"),
            ("1101051949A231002X", "character 11 must be a digit"),
            ("11010519491231002Y", "last character must be a digit or X"),
            ("110105194902300021", "not a birth date"),
            ("110105189912310021", "not a birth date"),
            ("110105194912310021", "the check character (the last one) is wrong"),
        ];
        for (input, expected) in cases {
            let e = IdNumber::parse(input).unwrap_err();
            assert!(e.problem.contains(expected), "{input}: {e}");
            assert!(!e.to_string().contains(input), "error repeats the number: {e}");
        }
    }

    #[test]
    fn id_number_birth_date_after_today_is_refused() {
        let first = "37080220300101123";
        let id = format!("{first}{}", IdNumber::check_char_for(first).unwrap());
        assert!(IdNumber::parse(&id).is_ok());
        let today = NaiveDate::from_ymd_opt(2025, 5, 6).unwrap();
        let e = IdNumber::parse_as_of(&id, today).unwrap_err();
        assert!(e.problem.contains("after today"), "{e}");
        let born_today = NaiveDate::from_ymd_opt(2030, 1, 1).unwrap();
        assert!(IdNumber::parse_as_of(&id, born_today).is_ok());
    }

    #[test]
    fn api_examples_have_wrong_check_characters() {
        // The request examples in API.md use made-up numbers; they must be
        // refused, not silently accepted.
        assert!(IdNumber::parse("370811199001011234").is_err());
        assert!(IdNumber::parse("370811199001011236").is_ok());
        assert!(CreditCode::parse("91370800MA3C1234XY").is_err());
        assert!(CreditCode::parse("91370800MA3C1234XP").is_ok());
    }

    #[test]
    fn credit_code_refusals_name_the_problem() {
        let cases = [
            ("91370800MA3C1234X", "must be 18 characters"),
            ("91370800MA3C1I34XP", "character 14 (I) is not allowed"),
            ("9137080OMA3C1234XP", "character 8 (O) is not allowed"),
            ("91A70800MA3C1234XP", "must be digits; character 3"),
            ("91370800MA3C1234XQ", "check character is Q but the first 17 characters require P"),
        ];
        for (input, expected) in cases {
            let e = CreditCode::parse(input).unwrap_err();
            assert!(e.problem.contains(expected), "{input}: {e}");
        }
        assert_eq!(CreditCode::parse("91370800ma3c1234xp").unwrap().as_str(), "91370800MA3C1234XP");
    }

    #[test]
    fn division_codes_nest() {
        let shandong = DivisionCode::parse("370000").unwrap();
        let jining = DivisionCode::parse("370800").unwrap();
        let rencheng = DivisionCode::parse("370811").unwrap();
        let weihai = DivisionCode::parse("371000").unwrap();
        assert!(shandong.is_province() && !jining.is_province());
        assert!(shandong.contains(&jining) && shandong.contains(&rencheng));
        assert!(jining.contains(&rencheng) && jining.contains(&jining));
        assert!(!jining.contains(&weihai) && !rencheng.contains(&jining));
        assert_eq!(rencheng.province(), shandong);
        assert!(DivisionCode::parse("003700").is_err());
        assert!(DivisionCode::parse("37080").is_err());
    }

    #[test]
    fn occupation_code_shape_is_enforced() {
        assert_eq!(OccupationCode::parse("6-18-02-04").unwrap().to_string(), "6-18-02-04");
        for bad in ["61-8-02-04", "6-18-02-4", "6-18-02-040", "6_18_02_04", "a-18-02-04", ""] {
            assert!(OccupationCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn policy_ids_are_slugs() {
        assert!(PolicyId::parse("jining-2025-skill-upgrade").is_ok());
        for bad in ["", "Jining", "a--b", "-a", "a-", "a_b", &"a".repeat(65)] {
            assert!(PolicyId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_are_masked_for_public_notices() {
        let cases = [
            ("张三", "张*"),
            ("张小三", "张*三"),
            ("欧阳小明", "欧**明"),
            ("买买提·艾力", "买****力"),
            ("张", "*"),
            ("", ""),
        ];
        for (name, masked) in cases {
            assert_eq!(mask_name(name), masked, "{name}");
        }
    }

    #[test]
    fn serde_goes_through_the_canonical_string() {
        let id: IdNumber = serde_json::from_str("\"11010519491231002x\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"11010519491231002X\"");
        assert!(serde_json::from_str::<IdNumber>("\"110105194912310021\"").is_err());
        assert!(serde_json::from_str::<DivisionCode>("370811").is_err());
        let code: DivisionCode = serde_json::from_str("\"370811\"").unwrap();
        assert_eq!(code.as_str(), "370811");
    }

    proptest! {
        #[test]
        fn valid_id_numbers_print_back_unchanged(s in id_number_strategy()) {
            let id = IdNumber::parse(&s).unwrap();
            prop_assert_eq!(id.to_string(), s);
        }

        /// MOD 11-2 has prime modulus 11 and non-zero weights, so every single
        /// substitution is caught, by the check character or earlier checks.
        #[test]
        fn every_single_substitution_of_an_id_number_is_refused(
            s in id_number_strategy(), i in 0usize..18, c in proptest::char::any()
        ) {
            let original = s.chars().nth(i).unwrap();
            // Lowercase x for X is the same number, not a corruption.
            prop_assume!(c != original && !(original == 'X' && c == 'x'));
            prop_assert!(IdNumber::parse(&replace_at(&s, i, c)).is_err());
        }

        #[test]
        fn valid_credit_codes_print_back_unchanged(s in credit_code_strategy()) {
            prop_assert_eq!(CreditCode::parse(&s).unwrap().to_string(), s);
        }

        /// Modulus 31 is prime and the weights are non-zero modulo 31, so every
        /// single substitution within the character set changes the check; one
        /// outside the set is refused by the character check.
        #[test]
        fn every_single_substitution_of_a_credit_code_is_refused(
            s in credit_code_strategy(), i in 0usize..18, c in proptest::char::any()
        ) {
            let original = s.chars().nth(i).unwrap();
            prop_assume!(c.to_ascii_uppercase() != original);
            prop_assert!(CreditCode::parse(&replace_at(&s, i, c)).is_err());
        }

        #[test]
        fn valid_occupation_codes_print_back_unchanged(s in "[0-9]-[0-9]{2}-[0-9]{2}-[0-9]{2}") {
            prop_assert_eq!(OccupationCode::parse(&s).unwrap().to_string(), s);
        }

        /// Corruption: a digit replaced by a non-digit, or a hyphen by a
        /// non-hyphen.
        #[test]
        fn occupation_codes_with_a_foreign_character_are_refused(
            s in "[0-9]-[0-9]{2}-[0-9]{2}-[0-9]{2}", i in 0usize..10, c in proptest::char::any()
        ) {
            let hyphen = s.as_bytes()[i] == b'-';
            prop_assume!(if hyphen { c != '-' } else { !c.is_ascii_digit() });
            prop_assert!(OccupationCode::parse(&replace_at(&s, i, c)).is_err());
        }

        #[test]
        fn valid_division_codes_print_back_unchanged(s in "[1-8][0-9]{5}") {
            prop_assert_eq!(DivisionCode::parse(&s).unwrap().to_string(), s);
        }

        #[test]
        fn division_codes_with_a_non_digit_are_refused(
            s in "[1-8][0-9]{5}", i in 0usize..6, c in proptest::char::any()
        ) {
            prop_assume!(!c.is_ascii_digit());
            prop_assert!(DivisionCode::parse(&replace_at(&s, i, c)).is_err());
        }
    }
}
