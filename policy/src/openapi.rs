//! OpenAPI schemas of the request types (feature `openapi`, for the ledger's `/openapi.json`).
//! The identifier and money types are strings carrying their parser's `PATTERN`
//! (`tests/patterns.rs` proves the two agree); a level is an integer 1 to 5. The request
//! structs and enums derive theirs beside their definitions, from the same serde attributes
//! that parse them. Schemas only describe: nothing here does I/O.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::{Amount, CreditCode, DivisionCode, IdNumber, Level, Money, OccupationCode, Ratio};

/// The `format` of ID numbers: GB 11643 (check character MOD 11-2, a real birth date), what
/// the pattern cannot say. Clients that do not know it ignore it, as JSON Schema allows.
pub const ID_NUMBER_FORMAT: &str = "gb11643";
/// The `format` of unified social credit codes: GB 32100 (check character modulo 31).
pub const CREDIT_CODE_FORMAT: &str = "gb32100";

/// A string schema with a parser's pattern.
fn string(
    pattern: &str,
    length: Option<usize>,
    format: Option<&str>,
    example: &str,
    description: &str,
) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .min_length(length)
        .max_length(length)
        .format(format.map(|f| SchemaFormat::Custom(f.to_string())))
        .examples([example])
        .description(Some(description))
        .into()
}

macro_rules! named {
    ($ty:ty, $name:literal, $schema:expr) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }
        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

named!(
    IdNumber,
    "IdNumber",
    string(
        IdNumber::PATTERN,
        Some(18),
        Some(ID_NUMBER_FORMAT),
        "370811199001011236",
        "Resident ID number (公民身份号码, GB 11643): 17 digits, the 7th to 14th a real birth date YYYYMMDD from 1900 and not after today, then the MOD 11-2 check character (a digit or X). Personal: never echoed in a refusal."
    )
);
named!(
    CreditCode,
    "CreditCode",
    string(
        CreditCode::PATTERN,
        Some(18),
        Some(CREDIT_CODE_FORMAT),
        "91370800MA3C1234XP",
        "Unified social credit code (统一社会信用代码, GB 32100): 18 characters of digits and capitals without I, O, S, V, Z (lowercase accepted), the 3rd to 8th a division code, the last the check character modulo 31."
    )
);
named!(
    OccupationCode,
    "OccupationCode",
    string(
        OccupationCode::PATTERN,
        Some(10),
        None,
        "6-18-02-04",
        "Code of the national occupational classification (职业分类大典), N-NN-NN-NN."
    )
);
named!(
    DivisionCode,
    "DivisionCode",
    string(
        DivisionCode::PATTERN,
        Some(6),
        None,
        "370811",
        "Administrative division code (GB/T 2260), 6 digits: a pool (统筹地区, a city) ends in 00, e.g. 370800; a county otherwise, e.g. 370811."
    )
);
named!(
    Money,
    "Money",
    string(
        Money::PATTERN,
        None,
        None,
        "1500.00",
        "Yuan as a string, more than 0, at most 15 digits before and 2 after the point, no sign, exponent, separators or leading zeros. Never a bare number."
    )
);
named!(
    Amount,
    "Amount",
    string(
        Amount::PATTERN,
        None,
        None,
        "100000000.00",
        "Yuan as a string, 0 or more, at most 15 digits before and 2 after the point, no sign, exponent, separators or leading zeros. Never a bare number."
    )
);
named!(
    Ratio,
    "Ratio",
    string(
        Ratio::PATTERN,
        None,
        None,
        "0.15",
        "A decimal string more than 0 and at most 1, at most 6 decimals."
    )
);
named!(
    Level,
    "Level",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(5))
        .examples([4])
        .description(Some(
            "Vocational skill level: 5 初级, 4 中级, 3 高级, 2 技师, 1 高级技师 (5 is the lowest)."
        ))
        .into()
);

/// A person or a unit, never both: the two forms `BeneficiaryBody` accepts.
impl PartialSchema for crate::pilot_subsidy::Beneficiary {
    fn schema() -> RefOr<Schema> {
        let form = |key: &str, schema: RefOr<Schema>, what: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .title(Some(what))
                .property(key, schema)
                .required(key)
                .property("name", String::schema())
                .required("name")
                .additional_properties(Some(
                    utoipa::openapi::schema::AdditionalProperties::FreeForm(false),
                ))
                .build()
        };
        utoipa::openapi::schema::OneOfBuilder::new()
            .item(form("id_number", IdNumber::schema(), "a person"))
            .item(form("credit_code", CreditCode::schema(), "a unit"))
            .description(Some(
                "A person (`id_number`, e.g. for a skill-evaluation subsidy) or a unit (`credit_code`, e.g. the employer of a job or social-insurance subsidy), not both.",
            ))
            .into()
    }
}

impl ToSchema for crate::pilot_subsidy::Beneficiary {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Beneficiary")
    }
}
