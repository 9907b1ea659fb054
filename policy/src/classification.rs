//! The national occupational classification (职业分类大典, 2022 edition): an
//! occupation code `N-NN-NN-NN` on a certificate or a graded training must
//! name a major group (大类) and a middle group (中类) that exist.
//!
//! The data is `policies/catalogs/occupations-2022.toml`, shipped inside the
//! binary; its header says what it holds and what it does not yet (the
//! detailed occupations, and the middle groups the 2022 edition added).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::ids::OccupationCode;
use crate::rejection::{Rejection, RejectionCode};

const SHIPPED: &str = include_str!("../../policies/catalogs/occupations-2022.toml");

/// The groups of the classification a code is checked against.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    pub edition: String,
    pub document: String,
    /// `"6"` → 生产制造及有关人员.
    pub major: BTreeMap<String, String>,
    /// `"6-18"` → 机械制造基础加工人员.
    pub middle: BTreeMap<String, String>,
}

impl Classification {
    pub fn parse(text: &str) -> Result<Classification, String> {
        let c: Classification = toml::from_str(text).map_err(|e| e.to_string())?;
        for code in c.middle.keys() {
            if !c.major.contains_key(&code[..1]) {
                return Err(format!("middle group {code} has no major group"));
            }
        }
        Ok(c)
    }

    /// The classification shipped with the binary.
    pub fn shipped() -> &'static Classification {
        static SHIPPED_CLASSIFICATION: OnceLock<Classification> = OnceLock::new();
        SHIPPED_CLASSIFICATION
            .get_or_init(|| Classification::parse(SHIPPED).expect("the shipped classification"))
    }

    /// `unknown_occupation` on `field` unless the code's major and middle
    /// groups exist.
    pub fn check(&self, code: &OccupationCode, field: &str) -> Result<(), Rejection> {
        let major = &code.as_str()[..1];
        let middle = &code.as_str()[..4];
        let problem = if !self.major.contains_key(major) {
            format!("major group {major} does not exist (there are 8: 1 to 8)")
        } else if !self.middle.contains_key(middle) {
            format!(
                "middle group {middle} does not exist in major group {major} ({})",
                self.major[major]
            )
        } else {
            return Ok(());
        };
        Err(Rejection::new(
            RejectionCode::UnknownOccupation,
            field,
            format!("{code} is not a code of the {}: {problem}", self.document),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn code(s: &str) -> OccupationCode {
        OccupationCode::parse(s).unwrap()
    }

    #[test]
    fn eight_major_groups_and_a_code_in_none_is_refused() {
        let c = Classification::shipped();
        assert_eq!(c.major.len(), 8);
        assert!(c.check(&code("6-18-02-04"), "certificate.occupation_code").is_ok());
        let e = c.check(&code("9-99-99-99"), "certificate.occupation_code").unwrap_err();
        assert_eq!(e.code, RejectionCode::UnknownOccupation);
        assert_eq!(e.field, "certificate.occupation_code");
        assert!(e.message.contains("major group 9"), "{e}");
        let e = c.check(&code("6-98-01-01"), "training.occupation_code").unwrap_err();
        assert!(e.message.contains("middle group 6-98"), "{e}");
        assert!(c.check(&code("0-01-01-01"), "f").is_err());
    }

    /// Every code the notices' annexes use passes.
    #[test]
    fn every_code_of_the_annex_catalogs_is_in_the_classification() {
        let c = Classification::shipped();
        for (name, text) in [
            ("liaocheng", include_str!("../../policies/catalogs/liaocheng-2024-training.toml")),
            ("jining", include_str!("../../policies/catalogs/jining-2025-urgent.toml")),
        ] {
            let catalog = Catalog::from_toml(text).unwrap();
            let mut n = 0;
            for item in &catalog.items {
                if let Some(code) = &item.code {
                    c.check(code, "code").unwrap_or_else(|e| panic!("{name}: {e}"));
                    n += 1;
                }
            }
            assert!(n > 60, "{name}: only {n} codes");
        }
    }
}
