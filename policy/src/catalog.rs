//! Occupation catalogs (目录) that policies pay for, parsed from the catalog
//! files under `policies/catalogs/`.
//!
//! Format: top-level `document` and `annex`, then one `[[item]]` table per
//! row of the source. A multi-catalog file (Liaocheng 2024, annex 1) names the
//! catalog of every item; a single list (Jining 2025 urgent list) names none.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::file_error::{FieldPath, PolicyFileError, TomlDoc};
use crate::ids::OccupationCode;

/// Bound on the rows of one catalog file; the largest real one has 260.
pub const CATALOG_ITEMS_MAX: usize = 10_000;

/// The six catalogs of Liaocheng 2024 annex 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CatalogKind {
    /// 绿色低碳职业（工种）培训项目指导目录
    Green,
    /// 急需紧缺职业（工种）培训项目指导目录
    Urgent,
    /// 制造业培训项目目录
    Manufacturing,
    /// 专项职业能力培训项目
    SpecialAbility,
    /// 特色培训专业目录
    Featured,
    /// 创业培训专业目录
    Entrepreneurship,
}

impl CatalogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogKind::Green => "green",
            CatalogKind::Urgent => "urgent",
            CatalogKind::Manufacturing => "manufacturing",
            CatalogKind::SpecialAbility => "special_ability",
            CatalogKind::Featured => "featured",
            CatalogKind::Entrepreneurship => "entrepreneurship",
        }
    }

    /// Catalogs of occupations with codes and levels (paid by level); the
    /// others list items paid at a flat rate.
    pub fn is_graded(self) -> bool {
        matches!(self, CatalogKind::Green | CatalogKind::Urgent | CatalogKind::Manufacturing)
    }
}

impl fmt::Display for CatalogKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// 急需紧缺程度: A 非常紧缺, B 紧缺, C 一般紧缺.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Urgency {
    A,
    B,
    C,
}

/// Category of a special-ability item (专项职业能力): food items are paid
/// more than the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecialCategory {
    /// 食品制作类
    Food,
    /// 种植类
    Planting,
    /// 手工制作类
    Handicraft,
    /// 其它类
    Other,
}

/// One row of a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<CatalogKind>,
    /// 序号 in the source table, 1..=n within its catalog.
    pub seq: u32,
    /// Unique within its catalog: the occupation code, or `<catalog>-<nn>`
    /// for items without one. Defaults to the code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<OccupationCode>,
    /// 领域 1-5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub green: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digital: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<SpecialCategory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category_zh: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl CatalogItem {
    /// The item's key: its `key`, or its code.
    pub fn key(&self) -> &str {
        match (&self.key, &self.code) {
            (Some(key), _) => key,
            (None, Some(code)) => code.as_str(),
            // Refused by validation.
            (None, None) => "",
        }
    }
}

/// A parsed, validated catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The document whose annex this is, e.g. `聊人社字〔2024〕12号`.
    pub document: String,
    pub annex: String,
    #[serde(rename = "item")]
    pub items: Vec<CatalogItem>,
}

impl Catalog {
    /// Parses and validates a catalog file.
    pub fn from_toml(text: &str) -> Result<Catalog, PolicyFileError> {
        let doc = TomlDoc::parse(text)?;
        let (catalog, ignored): (Catalog, _) = doc.read()?;
        doc.unknown_field(&ignored, "a catalog")?;
        if let Some((path, message)) = catalog.problems().into_iter().next() {
            return Err(doc.error(&path, message));
        }
        Ok(catalog)
    }

    /// Every inconsistency, in file order.
    fn problems(&self) -> Vec<(FieldPath, String)> {
        let mut problems = Vec::new();
        let root = FieldPath::root();
        if self.document.trim().is_empty() {
            problems.push((root.clone().key("document"), "must name the document".into()));
        }
        if self.items.is_empty() || self.items.len() > CATALOG_ITEMS_MAX {
            problems.push((
                root.clone().key("item"),
                format!(
                    "a catalog has 1 to {CATALOG_ITEMS_MAX} items, this one {}",
                    self.items.len()
                ),
            ));
        }
        let named = self.items.iter().filter(|i| i.catalog.is_some()).count();
        let mixed = named != 0 && named != self.items.len();
        let mut last_seq: BTreeMap<Option<CatalogKind>, u32> = BTreeMap::new();
        let mut keys: HashSet<(Option<CatalogKind>, String)> = HashSet::new();
        for (i, item) in self.items.iter().enumerate() {
            let at = |field: &str| root.clone().key("item").index(i).key(field);
            let kind = item.catalog;
            if mixed && kind.is_none() {
                problems.push((
                    at("catalog"),
                    "either every item names its catalog or none does; this one does not".into(),
                ));
            }
            let expected_seq = last_seq.get(&kind).map_or(1, |s| s + 1);
            if item.seq != expected_seq {
                problems.push((
                    at("seq"),
                    format!(
                        "items of a catalog are numbered 1, 2, 3… in file order; expected {expected_seq}, \
                         found {} (a row is missing, repeated or out of order)",
                        item.seq
                    ),
                ));
            }
            last_seq.insert(kind, item.seq);
            if item.name.trim().is_empty() {
                problems.push((at("name"), "must not be empty".into()));
            }
            let coded = kind.is_none_or(CatalogKind::is_graded);
            match (coded, &item.code, &item.key) {
                (true, None, _) => problems.push((
                    at("code"),
                    "occupations of this catalog must have a code N-NN-NN-NN".into(),
                )),
                (true, Some(code), Some(key)) if key != code.as_str() => {
                    problems.push((at("key"), format!("must equal the occupation code {code}")))
                }
                (false, _, key) => {
                    let kind = kind.expect("uncoded items name their catalog");
                    let expected = format!("{}-{:02}", kind.as_str(), item.seq);
                    if key.as_deref() != Some(expected.as_str()) {
                        problems.push((at("key"), format!("must be {expected:?}")));
                    }
                }
                _ => {}
            }
            if !keys.insert((kind, item.key().to_string())) {
                problems.push((at("key"), format!("{} appears twice in this catalog", item.key())));
            }
            if item.domain.is_some_and(|d| !(1..=5).contains(&d)) {
                problems.push((at("domain"), "领域 is 1 to 5".into()));
            }
            let is = |k| kind == Some(k);
            if is(CatalogKind::Urgent) != item.urgency.is_some() {
                problems.push((
                    at("urgency"),
                    "urgency (A/B/C) is given for every urgent-catalog item and no other".into(),
                ));
            }
            if is(CatalogKind::SpecialAbility) != item.category.is_some() {
                problems.push((
                    at("category"),
                    "category is given for every special_ability item and no other".into(),
                ));
            }
            if item.assessment.is_some() && !is(CatalogKind::Featured) {
                problems.push((at("assessment"), "only featured items have an assessment".into()));
            }
        }
        problems
    }

    /// The item with `key` in catalog `kind` (`None` for a single-list file).
    pub fn find(&self, kind: Option<CatalogKind>, key: &str) -> Option<&CatalogItem> {
        self.items.iter().find(|i| i.catalog == kind && i.key() == key)
    }

    /// Whether any item of the catalog has this occupation code.
    pub fn contains_occupation(&self, code: &OccupationCode) -> bool {
        self.items.iter().any(|i| i.code.as_ref() == Some(code))
    }

    /// The number of items in catalog `kind` (`None` for a single-list file).
    pub fn count(&self, kind: Option<CatalogKind>) -> usize {
        self.items.iter().filter(|i| i.catalog == kind).count()
    }
}

/// A policy file's reference to a catalog file, relative to the `policies/`
/// folder: `catalogs/jining-2025-urgent.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CatalogPath(String);

impl TryFrom<String> for CatalogPath {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let ok = s.starts_with("catalogs/")
            && s.ends_with(".toml")
            && !s.contains("..")
            && !s.contains('\\');
        if ok {
            Ok(CatalogPath(s))
        } else {
            Err(format!(
                "must be a path under catalogs/ ending in .toml, e.g. \"catalogs/jining-2025-urgent.toml\"; got {s:?}"
            ))
        }
    }
}

impl From<CatalogPath> for String {
    fn from(p: CatalogPath) -> String {
        p.0
    }
}

impl CatalogPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A catalog carried inside a policy, with the path it was loaded from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogBinding {
    pub path: String,
    pub catalog: Catalog,
}

/// The texts of catalog files by their path relative to `policies/`
/// (`catalogs/liaocheng-2024-training.toml`), read by the caller.
pub type CatalogTexts = BTreeMap<String, String>;

impl CatalogPath {
    /// Parses the referenced catalog from `texts` and checks that it is an
    /// annex of `document`. The error is a sentence about the reference.
    pub(crate) fn bind(
        &self,
        texts: &CatalogTexts,
        document: &str,
    ) -> Result<CatalogBinding, String> {
        let text = texts.get(&self.0).ok_or_else(|| {
            format!(
                "unknown catalog reference {:?}: no such catalog was supplied \
                 (catalogs are read from the policies/ folder, e.g. catalogs/<name>.toml)",
                self.0
            )
        })?;
        let catalog =
            Catalog::from_toml(text).map_err(|e| format!("catalog {} is invalid: {e}", self.0))?;
        if catalog.document != document {
            return Err(format!(
                "catalog {} is an annex of {}, not of this policy's document {document}",
                self.0, catalog.document
            ));
        }
        Ok(CatalogBinding { path: self.0.clone(), catalog })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
document = "聊人社字〔2024〕12号"
annex = "附件1"

[[item]]
catalog = "urgent"
seq = 1
key = "6-18-02-04"
name = "焊工"
code = "6-18-02-04"
domain = 1
urgency = "A"

[[item]]
catalog = "special_ability"
seq = 1
key = "special_ability-01"
name = "糖酥煎饼制作"
category = "food"
category_zh = "食品制作类"
"#;

    #[test]
    fn a_small_catalog_loads_and_finds_items() {
        let c = Catalog::from_toml(SMALL).unwrap();
        assert_eq!(c.count(Some(CatalogKind::Urgent)), 1);
        let weld = OccupationCode::parse("6-18-02-04").unwrap();
        assert!(c.contains_occupation(&weld));
        assert_eq!(
            c.find(Some(CatalogKind::SpecialAbility), "special_ability-01").unwrap().category,
            Some(SpecialCategory::Food)
        );
        assert!(c.find(Some(CatalogKind::Green), "6-18-02-04").is_none());
    }

    #[test]
    fn broken_catalogs_are_refused_at_the_right_line_and_field() {
        let cases = [
            // (replace, with, line, field, message part)
            (
                "seq = 1\nkey = \"special",
                "seq = 2\nkey = \"special",
                16,
                "item[1].seq",
                "expected 1",
            ),
            ("urgency = \"A\"", "urgency = \"D\"", 12, "item[0].urgency", "unknown variant"),
            ("code = \"6-18-02-04\"", "code = \"6-18-2-04\"", 10, "item[0].code", "N-NN-NN-NN"),
            ("domain = 1", "domain = 7", 11, "item[0].domain", "1 to 5"),
            ("category = \"food\"", "categry = \"food\"", 19, "item[1].categry", "unknown field"),
            (
                "key = \"special_ability-01\"",
                "key = \"special_ability-1\"",
                17,
                "item[1].key",
                "special_ability-01",
            ),
            ("urgency = \"A\"\n", "", 5, "item[0].urgency", "every urgent-catalog item"),
        ];
        for (from, to, line, field, part) in cases {
            let text = SMALL.replacen(from, to, 1);
            let e = Catalog::from_toml(&text).unwrap_err();
            assert_eq!((e.line, e.field.as_str()), (line, field), "{e}");
            assert!(e.message.contains(part), "{e}");
        }
    }

    #[test]
    fn references_bind_only_to_supplied_catalogs_of_the_same_document() {
        let path = CatalogPath::try_from("catalogs/small.toml".to_string()).unwrap();
        let mut texts = CatalogTexts::new();
        let e = path.bind(&texts, "聊人社字〔2024〕12号").unwrap_err();
        assert!(e.contains("unknown catalog reference"), "{e}");
        texts.insert("catalogs/small.toml".into(), SMALL.into());
        assert!(path.bind(&texts, "聊人社字〔2024〕12号").is_ok());
        let e = path.bind(&texts, "济人社字〔2025〕51号").unwrap_err();
        assert!(e.contains("not of this policy's document"), "{e}");
        assert!(CatalogPath::try_from("../etc/passwd".to_string()).is_err());
    }
}
