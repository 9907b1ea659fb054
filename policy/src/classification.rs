//! The national occupational classification (中华人民共和国职业分类大典, 2022 edition):
//! an occupation code `N-NN-NN-NN` on a certificate or a graded training must be one of
//! the edition's 1,639 occupations (细类), unless the policy's own annex catalog lists it
//! ([`Classification::check_under_annex`]).
//!
//! The data is `policies/catalogs/occupations-2022.toml` (major, middle and small groups
//! and occupations, codes and names), shipped inside the binary; its header says where
//! the table comes from and what it leaves out.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::catalog::Catalog;
use crate::ids::OccupationCode;
use crate::rejection::{Rejection, RejectionCode};

const SHIPPED: &str = include_str!("../../policies/catalogs/occupations-2022.toml");

/// The classification's table: every level by code, with its name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classification {
    pub edition: String,
    pub document: String,
    /// 大类: `"6"` → 生产制造及有关人员.
    pub major: BTreeMap<String, String>,
    /// 中类: `"6-18"` → 机械制造基础加工人员.
    pub middle: BTreeMap<String, String>,
    /// 小类: `"6-18-02"` → 机械热加工人员.
    pub small: BTreeMap<String, String>,
    /// 细类 (职业): `"6-18-02-04"` → 焊工.
    pub occupation: BTreeMap<String, String>,
}

/// Whether `code` has the shape `shape` (`9` a digit, `-` itself).
fn shaped(code: &str, shape: &str) -> bool {
    code.len() == shape.len()
        && code.bytes().zip(shape.bytes()).all(|(b, s)| match s {
            b'9' => b.is_ascii_digit(),
            _ => b == s,
        })
}

impl Classification {
    /// Parses the table and checks its shape: every code of its level's form, every
    /// group inside a group of the level above, no name empty.
    pub fn parse(text: &str) -> Result<Classification, String> {
        let c: Classification = toml::from_str(text).map_err(|e| e.to_string())?;
        type Table = BTreeMap<String, String>;
        let levels: [(&str, &Table, &str, Option<&Table>); 4] = [
            ("major group", &c.major, "9", None),
            ("middle group", &c.middle, "9-99", Some(&c.major)),
            ("small group", &c.small, "9-99-99", Some(&c.middle)),
            ("occupation", &c.occupation, "9-99-99-99", Some(&c.small)),
        ];
        for (what, table, shape, parents) in levels {
            if table.is_empty() {
                return Err(format!("no {what} is listed"));
            }
            for (code, name) in table {
                if !shaped(code, shape) {
                    return Err(format!("{what} {code:?} is not of the form {shape}"));
                }
                if name.trim().is_empty() {
                    return Err(format!("{what} {code} has no name"));
                }
                if let Some(parents) = parents {
                    // The parent's code is this one without its last `-NN`.
                    let parent = &code[..code.len() - 3];
                    if !parents.contains_key(parent) {
                        return Err(format!("{what} {code} has no parent group {parent}"));
                    }
                }
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

    /// `unknown_occupation` on `field` unless the code is an occupation of the table. The
    /// message names the first level that does not exist: the major group, the middle
    /// group, the small group or the occupation itself.
    pub fn check(&self, code: &OccupationCode, field: &str) -> Result<(), Rejection> {
        let code = code.as_str();
        // An `OccupationCode` is ASCII `N-NN-NN-NN`, so these are char boundaries.
        let (major, middle, small) = (&code[..1], &code[..4], &code[..7]);
        let problem = if !self.major.contains_key(major) {
            format!(
                "major group {major} does not exist (there are {}: {})",
                self.major.len(),
                self.major.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        } else if !self.middle.contains_key(middle) {
            format!(
                "middle group {middle} does not exist in major group {major} ({})",
                self.major[major]
            )
        } else if !self.small.contains_key(small) {
            format!(
                "small group {small} does not exist in middle group {middle} ({})",
                self.middle[middle]
            )
        } else if !self.occupation.contains_key(code) {
            let listed = self
                .occupation
                .range(format!("{small}-")..)
                .take_while(|(c, _)| c.starts_with(small));
            let listed = match listed.count() {
                0 => "which lists no occupations".to_string(),
                1 => "which lists 1 occupation".to_string(),
                n => format!("which lists {n} occupations"),
            };
            format!(
                "occupation {code} does not exist in small group {small} ({}), {listed}",
                self.small[small]
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

    /// The rule for a code under a policy: a code that the policy's own annex catalog
    /// lists is accepted as the notice writes it (the notice is the authority on what it
    /// subsidises, even where the 2022 table has no such occupation under that code, e.g.
    /// Liaocheng's 2-02-10-09 人工智能算法测试员); any other code must be an occupation of the table
    /// ([`Classification::check`]). Whether the code is in the right catalog of the annex
    /// is the program's own check, after this one.
    pub fn check_under_annex(
        &self,
        code: &OccupationCode,
        field: &str,
        annex: Option<&Catalog>,
    ) -> Result<(), Rejection> {
        if annex.is_some_and(|annex| annex.contains_occupation(code)) {
            return Ok(());
        }
        self.check(code, field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIAOCHENG: &str = include_str!("../../policies/catalogs/liaocheng-2024-training.toml");
    const JINING: &str = include_str!("../../policies/catalogs/jining-2025-urgent.toml");

    /// The codes of the Liaocheng annex that the 2022 table does not have under the name
    /// the notice writes, each with what the table has instead (see the comments in the
    /// annex catalog).
    const LIAOCHENG_NOT_2022: [(&str, &str, Option<&str>); 6] = [
        ("2-02-10-09", "人工智能算法测试员", None),
        ("3-02-02-00", "保卫管理员", None),
        ("4-07-03-02", "劳动关系协调员", Some("劳动关系协调师")),
        ("4-13-04-01", "社会体育指导员", Some("在线学习服务师")),
        ("4-14-01-03", "健康照护师（长期照护师）", Some("健康照护师")),
        ("6-08-01-01", "数据标注员", Some("印前处理和制作员")),
    ];

    fn code(s: &str) -> OccupationCode {
        OccupationCode::parse(s).unwrap()
    }

    fn refused(s: &str) -> Rejection {
        Classification::shipped().check(&code(s), "certificate.occupation_code").unwrap_err()
    }

    /// 人力资源社会保障部, 2022-09-28: 8 major, 79 middle, 450 small groups, 1,639 occupations.
    #[test]
    fn the_table_has_the_counts_of_the_2022_announcement() {
        let c = Classification::shipped();
        assert_eq!(c.edition, "2022");
        assert_eq!(c.document, "中华人民共和国职业分类大典（2022年版）");
        assert_eq!(
            (c.major.len(), c.middle.len(), c.small.len(), c.occupation.len()),
            (8, 79, 450, 1639)
        );
        // Names use full-width brackets, as printed.
        for name in c.major.values().chain(c.middle.values()).chain(c.small.values()) {
            assert!(!name.contains(['(', ')', ' ']), "{name}");
        }
        for name in c.occupation.values() {
            assert!(!name.contains(['(', ')', ' ']), "{name}");
        }
        assert_eq!(c.middle["7-01"], "军官（警官）");
    }

    #[test]
    fn a_code_is_refused_naming_the_first_level_that_does_not_exist() {
        let e = refused("9-99-99-99");
        assert_eq!(e.code, RejectionCode::UnknownOccupation);
        assert_eq!(e.field, "certificate.occupation_code");
        assert!(
            e.message.starts_with(
                "9-99-99-99 is not a code of the 中华人民共和国职业分类大典（2022年版）: "
            ),
            "{e}"
        );
        assert!(e.message.contains("major group 9 does not exist"), "{e}");
        assert!(refused("0-01-01-01").message.contains("major group 0 does not exist"));

        let e = refused("6-98-01-01");
        assert!(
            e.message
                .contains("middle group 6-98 does not exist in major group 6 (生产制造及有关人员)"),
            "{e}"
        );
        // 7-00 (军人) was the 2015 edition's only middle group of major group 7.
        assert!(refused("7-00-00-00").message.contains("middle group 7-00 does not exist"));

        let e = refused("6-18-09-01");
        assert!(
            e.message.contains(
                "small group 6-18-09 does not exist in middle group 6-18 (机械制造基础加工人员)"
            ),
            "{e}"
        );

        let e = refused("6-18-02-99");
        assert!(
            e.message.contains(
                "occupation 6-18-02-99 does not exist in small group 6-18-02 (机械热加工人员), \
                 which lists 6 occupations"
            ),
            "{e}"
        );
        // A residual small group (其他…) exists but lists no occupation.
        let e = refused("6-18-99-00");
        assert!(
            e.message.contains(
                "occupation 6-18-99-00 does not exist in small group 6-18-99 \
                 (其他机械制造基础加工人员), which lists no occupations"
            ),
            "{e}"
        );
        // 2-02-10 (信息和通信工程技术人员) ends at -08 in 2022.
        assert!(refused("2-02-10-09").message.contains("occupation 2-02-10-09 does not exist"));
    }

    #[test]
    fn occupations_of_the_2022_edition_are_accepted() {
        let c = Classification::shipped();
        for (s, name) in [
            ("6-18-02-04", "焊工"),
            ("4-10-01-05", "养老护理员"),
            // New in 2022: the middle group 3-03 and its 仲裁员.
            ("3-03-01-01", "仲裁员"),
            // Major group 7 军队人员 has four middle groups in 2022, one occupation each.
            ("7-01-00-00", "军官（警官）"),
            ("7-02-00-00", "军士（警士）"),
            ("7-03-00-00", "义务兵"),
            ("7-04-00-00", "文职人员"),
            ("4-04-05-05", "人工智能训练师"),
            ("4-09-07-04", "碳排放管理员"),
            ("2-06-07-13", "数字化管理师"),
            ("2-02-38-01", "人工智能工程技术人员"),
            // Occupation number 00: the single occupation of its small group.
            ("2-01-07-00", "农业科学研究人员"),
            ("8-00-00-00", "不便分类的其他从业人员"),
        ] {
            assert_eq!(c.check(&code(s), "f"), Ok(()), "{s}");
            assert_eq!(c.occupation[s], name, "{s}");
        }
        assert_eq!(c.middle["3-03"], "仲裁、调解及相关法律事务辅助人员");
        assert_eq!(c.major["7"], "军队人员");
    }

    #[test]
    fn a_table_with_a_group_outside_its_parent_is_refused() {
        let good = "edition = \"2022\"\ndocument = \"d\"\n[major]\n\"6\" = \"a\"\n\
                    [middle]\n\"6-18\" = \"b\"\n[small]\n\"6-18-02\" = \"c\"\n\
                    [occupation]\n\"6-18-02-04\" = \"焊工\"\n";
        let c = Classification::parse(good).unwrap();
        assert!(c.check(&code("6-18-02-04"), "f").is_ok());
        for (from, to, problem) in [
            (
                "\"6-18-02-04\"",
                "\"6-18-03-04\"",
                "occupation 6-18-03-04 has no parent group 6-18-03",
            ),
            ("\"6-18-02\" =", "\"6-19-02\" =", "small group 6-19-02 has no parent group 6-19"),
            ("\"6-18\" =", "\"7-18\" =", "middle group 7-18 has no parent group 7"),
            ("\"6-18-02-04\"", "\"6-18-2-04\"", "is not of the form 9-99-99-99"),
            ("\"6\" = \"a\"", "\"中\" = \"a\"", "is not of the form 9"),
            ("= \"焊工\"", "= \" \"", "occupation 6-18-02-04 has no name"),
        ] {
            let text = good.replacen(from, to, 1);
            assert_ne!(text, good);
            let e = Classification::parse(&text).unwrap_err();
            assert!(e.contains(problem), "{from} → {to}: {e}");
        }
    }

    /// Every code the notices' annexes use passes under its own annex. All of Jining's are
    /// 2022 occupations with the same names; of Liaocheng's, exactly the six listed above
    /// are not (as the notice writes them), and those pass only under the Liaocheng annex.
    #[test]
    fn every_code_of_the_annex_catalogs_is_accepted_under_its_own_annex() {
        let c = Classification::shipped();
        let liaocheng = Catalog::from_toml(LIAOCHENG).unwrap();
        let jining = Catalog::from_toml(JINING).unwrap();
        for (name, annex, not_2022) in
            [("liaocheng", &liaocheng, &LIAOCHENG_NOT_2022[..]), ("jining", &jining, &[][..])]
        {
            let mut n = 0;
            let mut differ = Vec::new();
            for item in &annex.items {
                let Some(code) = &item.code else { continue };
                c.check_under_annex(code, "code", Some(annex))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                n += 1;
                if c.occupation.get(code.as_str()) != Some(&item.name) {
                    let entry = (code.as_str(), item.name.as_str());
                    if !differ.contains(&entry) {
                        differ.push(entry);
                    }
                }
            }
            assert!(n > 60, "{name}: only {n} codes");
            let expected: Vec<(&str, &str)> = not_2022.iter().map(|(c, n, _)| (*c, *n)).collect();
            assert_eq!(differ, expected, "{name}");
        }
        for (s, _, instead) in LIAOCHENG_NOT_2022 {
            let code = code(s);
            assert_eq!(c.occupation.get(s).map(String::as_str), instead, "{s}");
            // Under the other annex, or none, the code must be a 2022 occupation.
            for annex in [None, Some(&jining)] {
                let checked = c.check_under_annex(&code, "certificate.occupation_code", annex);
                assert_eq!(checked.is_ok(), instead.is_some(), "{s}: {checked:?}");
            }
        }
        let e = c
            .check_under_annex(&code("3-02-02-00"), "certificate.occupation_code", Some(&jining))
            .unwrap_err();
        assert_eq!(e.code, RejectionCode::UnknownOccupation);
        assert!(
            e.message.contains("occupation 3-02-02-00 does not exist in small group 3-02-02"),
            "{e}"
        );
    }
}
