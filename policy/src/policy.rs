//! A published policy: the file schema, loading, validation, and where and
//! when it is in force.
//!
//! A policy file is TOML with a header at the top level and the program's
//! parameters beside it:
//!
//! ```toml
//! id = "shandong-2024-skill-upgrade"     # stable slug; prefixes every rule id
//! document = "鲁人社发〔2024〕8号"
//! item = "四"
//! issuer = "山东省人力资源和社会保障厅等4部门"
//! region = "370000"                      # province, or a pool such as 370800
//! program = "skill_upgrade"
//! effective_from = 2024-01-01            # inclusive
//! effective_until = 2024-12-31           # inclusive; omit while open-ended
//! related_documents = ["…"]              # optional
//!
//! [[extension]]                          # optional: the same rules elsewhere/later
//! region = "370800"
//! effective_from = 2025-01-01
//! effective_until = 2025-04-15
//! authority = "济人社字〔2025〕51号 item 2"
//!
//! [amounts]                              # program-specific tables and keys
//! level_5 = "1000.00"
//! ```
//!
//! The program-specific keys are documented on each program's rules type
//! ([`SkillUpgradeRules`], [`TrainingRules`], [`JobStabilizationRules`],
//! [`OnTheJobTrainingRules`], [`QuotaRules`]). Every error names the line and
//! the field path. A [`Policy`] value carries the contents of the catalogs it
//! references, so that a `PolicyPublished` event holds everything a decision
//! reads.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::calendar::CalendarRules;
use crate::catalog::{CatalogPath, CatalogTexts};
use crate::decision::{PolicyRef, RuleId};
use crate::file_error::{FieldPath, PolicyFileError, TomlDoc};
use crate::ids::{DivisionCode, PolicyId};
use crate::job_stabilization::JobStabilizationRules;
use crate::on_the_job_training::OnTheJobTrainingRules;
use crate::quota::QuotaRules;
use crate::skill_upgrade::SkillUpgradeRules;
use crate::training::TrainingRules;

/// The programs the ledger knows. The strings are part of the HTTP contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Program {
    /// 技能提升补贴
    SkillUpgrade,
    /// 职业培训补贴
    VocationalTraining,
    /// 稳岗返还
    JobStabilizationRefund,
    /// 以工代训
    OnTheJobTraining,
    /// 扩大失业保险基金支出范围试点 quota
    ExpansionQuota,
    /// 节假日安排: the State Council's working days, for periods counted in working days.
    HolidayCalendar,
    /// 职业技能评价补贴, 岗位补贴, 社会保险补贴 of the expansion pilot: amounts entered by the
    /// office, decided under the expansion-quota policy (no policy file of their own).
    PilotSubsidy,
}

impl Program {
    pub fn as_str(self) -> &'static str {
        match self {
            Program::SkillUpgrade => "skill_upgrade",
            Program::VocationalTraining => "vocational_training",
            Program::JobStabilizationRefund => "job_stabilization_refund",
            Program::OnTheJobTraining => "on_the_job_training",
            Program::ExpansionQuota => "expansion_quota",
            Program::HolidayCalendar => "holiday_calendar",
            Program::PilotSubsidy => "pilot_subsidy",
        }
    }

    /// The request field holding the date that selects the policy: the class
    /// start date for training (聊人社字〔2024〕12号: 以开班之日为准), the
    /// submission date otherwise.
    pub fn business_date_field(self) -> &'static str {
        match self {
            Program::VocationalTraining => "training.class_start_on",
            Program::HolidayCalendar => "starts_on",
            _ => "submitted_on",
        }
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rules of a policy, by program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "program", rename_all = "snake_case")]
pub enum Rules {
    SkillUpgrade(SkillUpgradeRules),
    VocationalTraining(TrainingRules),
    JobStabilizationRefund(JobStabilizationRules),
    OnTheJobTraining(OnTheJobTrainingRules),
    ExpansionQuota(QuotaRules),
    HolidayCalendar(CalendarRules),
}

impl Rules {
    pub fn program(&self) -> Program {
        match self {
            Rules::SkillUpgrade(_) => Program::SkillUpgrade,
            Rules::VocationalTraining(_) => Program::VocationalTraining,
            Rules::JobStabilizationRefund(_) => Program::JobStabilizationRefund,
            Rules::OnTheJobTraining(_) => Program::OnTheJobTraining,
            Rules::ExpansionQuota(_) => Program::ExpansionQuota,
            Rules::HolidayCalendar(_) => Program::HolidayCalendar,
        }
    }

    fn problems(&self, effective_from: NaiveDate) -> Vec<(FieldPath, String)> {
        match self {
            Rules::SkillUpgrade(r) => r.problems(effective_from),
            Rules::VocationalTraining(r) => r.problems(),
            Rules::JobStabilizationRefund(r) => r.problems(),
            Rules::OnTheJobTraining(r) => r.problems(),
            Rules::ExpansionQuota(r) => r.problems(),
            Rules::HolidayCalendar(r) => r.problems(),
        }
    }
}

/// The same rules applied in another region or period than the policy's own,
/// on the authority of a later notice (Jining kept the 2024 provincial
/// skill-upgrade rules until 2025-04-15).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    pub region: DivisionCode,
    #[serde(with = "crate::dates")]
    pub effective_from: NaiveDate,
    #[serde(with = "crate::dates")]
    pub effective_until: NaiveDate,
    /// The notice (and item) that keeps the rules in force here.
    pub authority: String,
}

/// A reading of the notice that the notice itself leaves open (DOMAIN.md "Interpretation"),
/// made visible: the setting of the file that carries it, the sentence it reads, and how.
/// `GET /v1/policies` lists them, so that a bureau can see them and publish a policy that
/// reads the sentence otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interpretation {
    /// The setting (key path in the file) that carries the reading, e.g. `funding.otherwise`.
    pub setting: String,
    /// The sentence of the notice, quoted.
    pub sentence: String,
    /// How the ledger reads it.
    pub reading: String,
}

/// Where and when a policy's rules apply; both dates inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub region: DivisionCode,
    pub effective_from: NaiveDate,
    pub effective_until: Option<NaiveDate>,
}

impl Period {
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.effective_from <= date && self.effective_until.is_none_or(|until| date <= until)
    }

    pub fn overlaps(&self, other: &Period) -> bool {
        let starts_before_other_ends =
            other.effective_until.is_none_or(|u| self.effective_from <= u);
        let other_starts_before_this_ends =
            self.effective_until.is_none_or(|u| other.effective_from <= u);
        starts_before_other_ends && other_starts_before_this_ends
    }
}

/// A published policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub id: PolicyId,
    /// Document number, e.g. `鲁人社发〔2024〕8号`.
    pub document: String,
    /// Item of the document, e.g. `四`, or `二、三、七`.
    pub item: String,
    pub issuer: String,
    /// The province (`370000`) or pool (`370800`) where it applies.
    pub region: DivisionCode,
    #[serde(with = "crate::dates")]
    pub effective_from: NaiveDate,
    #[serde(default, with = "crate::dates::option", skip_serializing_if = "Option::is_none")]
    pub effective_until: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extensions: Vec<Extension>,
    /// Other documents the file draws on (forwarding notices and the like).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_documents: Vec<String>,
    /// The file's `[[interpretation]]` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interpretations: Vec<Interpretation>,
    pub rules: Rules,
}

/// The header keys of a policy file. The program's own keys are read by a
/// second pass; a key is unknown if neither pass uses it.
const HEADER_KEYS: [&str; 11] = [
    "id",
    "document",
    "item",
    "issuer",
    "region",
    "program",
    "effective_from",
    "effective_until",
    "extension",
    "related_documents",
    "interpretation",
];

#[derive(Deserialize)]
struct HeaderFile {
    id: PolicyId,
    document: String,
    item: String,
    issuer: String,
    region: DivisionCode,
    program: Program,
    #[serde(with = "crate::dates")]
    effective_from: NaiveDate,
    #[serde(default, with = "crate::dates::option")]
    effective_until: Option<NaiveDate>,
    #[serde(default)]
    extension: Vec<Extension>,
    #[serde(default)]
    related_documents: Vec<String>,
    #[serde(default)]
    interpretation: Vec<Interpretation>,
}

impl Policy {
    /// Loads a policy that references no catalog. A policy that does is
    /// refused with "unknown catalog reference"; use
    /// [`Policy::from_toml_with_catalogs`] for it.
    pub fn from_toml(text: &str) -> Result<Policy, PolicyFileError> {
        Self::from_toml_with_catalogs(text, &CatalogTexts::new())
    }

    /// Loads and validates a policy file; `catalogs` holds the texts of the
    /// catalog files it may reference, by path relative to `policies/`
    /// (`catalogs/jining-2025-urgent.toml`). The catalogs' contents become
    /// part of the returned policy.
    pub fn from_toml_with_catalogs(
        text: &str,
        catalogs: &CatalogTexts,
    ) -> Result<Policy, PolicyFileError> {
        let doc = TomlDoc::parse(text)?;
        let (header, header_ignored): (HeaderFile, _) = doc.read()?;
        let mut unknown: Vec<FieldPath> = header_ignored
            .into_iter()
            .filter(|p| p.first_key().is_some_and(|k| HEADER_KEYS.contains(&k)))
            .collect();
        let rules_ignored = |ignored: Vec<FieldPath>| {
            ignored
                .into_iter()
                .filter(|p| !p.first_key().is_some_and(|k| HEADER_KEYS.contains(&k)))
                .collect::<Vec<_>>()
        };
        let document = header.document.clone();
        let bind = |path: &CatalogPath, field: &str| {
            path.bind(catalogs, &document)
                .map_err(|message| doc.error(&FieldPath::parse(field), message))
        };
        let context = format!("this {} policy", header.program);
        let rules = match header.program {
            Program::SkillUpgrade => {
                let (r, ignored): (SkillUpgradeRules<CatalogPath>, _) = doc.read()?;
                unknown.extend(rules_ignored(ignored));
                doc.unknown_field(&unknown, &context)?;
                Rules::SkillUpgrade(r.bind(|p| bind(p, "extra.urgent_catalog"))?)
            }
            Program::VocationalTraining => {
                let (r, ignored): (TrainingRules<CatalogPath>, _) = doc.read()?;
                unknown.extend(rules_ignored(ignored));
                doc.unknown_field(&unknown, &context)?;
                Rules::VocationalTraining(r.bind(|p| bind(p, "catalog"))?)
            }
            Program::JobStabilizationRefund => {
                let (r, ignored) = doc.read()?;
                unknown.extend(rules_ignored(ignored));
                doc.unknown_field(&unknown, &context)?;
                Rules::JobStabilizationRefund(r)
            }
            Program::OnTheJobTraining => {
                let (r, ignored) = doc.read()?;
                unknown.extend(rules_ignored(ignored));
                doc.unknown_field(&unknown, &context)?;
                Rules::OnTheJobTraining(r)
            }
            Program::ExpansionQuota => {
                let (r, ignored) = doc.read()?;
                unknown.extend(rules_ignored(ignored));
                doc.unknown_field(&unknown, &context)?;
                Rules::ExpansionQuota(r)
            }
            Program::HolidayCalendar => {
                let (r, ignored) = doc.read()?;
                unknown.extend(rules_ignored(ignored));
                doc.unknown_field(&unknown, &context)?;
                Rules::HolidayCalendar(r)
            }
            Program::PilotSubsidy => {
                return Err(doc.error(
                    &FieldPath::parse("program"),
                    "pilot subsidies have no policy file: they are decided under the \
                     expansion_quota policy in force",
                ))
            }
        };
        for (i, it) in header.interpretation.iter().enumerate() {
            let at = |f: &str| FieldPath::root().key("interpretation").index(i).key(f);
            let setting = FieldPath::parse(&it.setting);
            if setting.first_key().is_some_and(|k| k == "interpretation") || !doc.has(&setting) {
                return Err(doc.error(
                    &at("setting"),
                    format!("`{}` names no setting of this file", it.setting),
                ));
            }
            for (field, text) in [("sentence", &it.sentence), ("reading", &it.reading)] {
                if text.trim().is_empty() {
                    return Err(doc.error(&at(field), "must not be empty"));
                }
            }
        }
        let policy = Policy {
            id: header.id,
            document: header.document,
            item: header.item,
            issuer: header.issuer,
            region: header.region,
            effective_from: header.effective_from,
            effective_until: header.effective_until,
            extensions: header.extension,
            related_documents: header.related_documents,
            interpretations: header.interpretation,
            rules,
        };
        let problems = policy.problems();
        match problems.iter().min_by_key(|(path, _)| doc.line(path)) {
            Some((path, message)) => Err(doc.error(path, message.clone())),
            None => Ok(policy),
        }
    }

    /// Checks what serde cannot: periods, consistency of the parameters.
    /// Policies loaded from a file are checked already; this is for a policy
    /// read back from an event, should the caller want to re-check it.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let problems: Vec<String> = self
            .problems()
            .into_iter()
            .map(|(path, message)| format!("{path}: {message}"))
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn problems(&self) -> Vec<(FieldPath, String)> {
        let mut problems = Vec::new();
        let root = FieldPath::root();
        for (field, value) in
            [("document", &self.document), ("item", &self.item), ("issuer", &self.issuer)]
        {
            if value.trim().is_empty() {
                problems.push((root.clone().key(field), "must not be empty".to_string()));
            }
        }
        if let Some(until) = self.effective_until {
            if until < self.effective_from {
                problems.push((
                    root.clone().key("effective_until"),
                    format!(
                        "{until} is before effective_from {}; both dates are inclusive, \
                         so effective_until must be on or after effective_from",
                        self.effective_from
                    ),
                ));
            }
        }
        for (i, ext) in self.extensions.iter().enumerate() {
            let at = |f: &str| root.clone().key("extension").index(i).key(f);
            if ext.effective_until < ext.effective_from {
                problems.push((
                    at("effective_until"),
                    format!(
                        "{} is before effective_from {}",
                        ext.effective_until, ext.effective_from
                    ),
                ));
            }
            if !self.region.contains(&ext.region) {
                problems.push((
                    at("region"),
                    format!("{} lies outside the policy's region {}", ext.region, self.region),
                ));
            }
            if ext.authority.trim().is_empty() {
                problems
                    .push((at("authority"), "must name the notice that extends the policy".into()));
            }
        }
        problems.extend(self.rules.problems(self.effective_from));
        problems
    }

    pub fn program(&self) -> Program {
        self.rules.program()
    }

    /// How a decision cites this policy.
    pub fn reference(&self) -> PolicyRef {
        PolicyRef { id: self.id.clone(), document: self.document.clone(), item: self.item.clone() }
    }

    /// The id of one of this policy's rules: `<policy id>/<name>`.
    pub fn rule(&self, name: &str) -> RuleId {
        RuleId::new(&self.id, name)
    }

    /// The policy's own period, then its extensions.
    pub fn periods(&self) -> impl Iterator<Item = Period> + '_ {
        let own = Period {
            region: self.region,
            effective_from: self.effective_from,
            effective_until: self.effective_until,
        };
        std::iter::once(own).chain(self.extensions.iter().map(|e| Period {
            region: e.region,
            effective_from: e.effective_from,
            effective_until: Some(e.effective_until),
        }))
    }

    /// The period in which the policy applies to `place` (a pool or county)
    /// on `date`, preferring the most specific region.
    pub fn period_for(&self, place: &DivisionCode, date: NaiveDate) -> Option<Period> {
        self.periods()
            .filter(|p| p.region.contains(place) && p.covers(date))
            .min_by_key(|p| p.region.is_province())
    }

    pub fn in_force(&self, place: &DivisionCode, date: NaiveDate) -> bool {
        self.period_for(place, date).is_some()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal valid policy file of each kind is in the program modules'
    /// tests; this one checks the header.
    pub(crate) const QUOTA: &str = r#"
id = "test-quota"
document = "鲁人社发〔2024〕8号"
item = "六"
issuer = "山东省人力资源和社会保障厅等4部门"
region = "370000"
program = "expansion_quota"
effective_from = 2024-01-01
effective_until = 2024-12-31

ratio = "0.15"
inclusive = true
balance_as_of = 2023-12-31
rounding = "down_to_fen"
year = "submission_date"
categories = ["vocational_training", "skill_evaluation", "job_subsidy", "social_insurance_subsidy"]
filing_required = true
"#;

    #[test]
    fn a_quota_policy_loads() {
        let p = Policy::from_toml(QUOTA).unwrap();
        assert_eq!(p.program(), Program::ExpansionQuota);
        assert_eq!(p.rule("cap").as_str(), "test-quota/cap");
        let json = serde_json::to_string(&p).unwrap();
        let back: Policy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn header_errors_name_line_and_field() {
        let cases = [
            (
                "program = \"expansion_quota\"",
                "program = \"expansion\"",
                7,
                "program",
                "unknown variant",
            ),
            (
                "effective_until = 2024-12-31",
                "effective_until = 2023-12-31",
                9,
                "effective_until",
                "before effective_from",
            ),
            ("region = \"370000\"", "region = \"37000\"", 6, "region", "6 digits"),
            ("id = \"test-quota\"", "id = \"Test Quota\"", 2, "id", "lowercase"),
            ("item = \"六\"\n", "", 1, "item", "required"),
            ("issuer = ", "isuer = ", 5, "isuer", "did you mean `issuer`"),
            ("issuer = ", "publisher = ", 1, "issuer", "required"),
            (
                "inclusive = true",
                "inclusive = true\nincluded = true",
                13,
                "included",
                "unknown field",
            ),
            ("effective_from = 2024-01-01", "effective_from = 2024-13-01", 8, "(syntax)", "TOML"),
            ("ratio = \"0.15\"", "ratio = \"1.5\"", 11, "ratio", "at most 1"),
            ("ratio = \"0.15\"", "ratio = 0.15", 11, "ratio", "never a bare number"),
        ];
        for (from, to, line, field, part) in cases {
            let text = QUOTA.replacen(from, to, 1);
            assert_ne!(text, QUOTA, "{from}");
            let e = Policy::from_toml(&text).unwrap_err();
            assert_eq!((e.line, e.field.as_str()), (line, field), "{e}");
            assert!(e.message.contains(part), "{e}");
        }
    }

    #[test]
    fn extensions_apply_the_rules_elsewhere_and_later() {
        let text = format!(
            "{QUOTA}\n[[extension]]\nregion = \"370800\"\neffective_from = 2025-01-01\neffective_until = 2025-04-15\nauthority = \"济人社字〔2025〕51号 item 2\"\n"
        );
        let p = Policy::from_toml(&text).unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let jining = DivisionCode::parse("370811").unwrap();
        let weihai = DivisionCode::parse("371000").unwrap();
        assert!(p.in_force(&jining, d("2024-06-01")) && p.in_force(&weihai, d("2024-06-01")));
        assert!(p.in_force(&jining, d("2025-04-15")) && !p.in_force(&jining, d("2025-04-16")));
        assert!(!p.in_force(&weihai, d("2025-02-01")));
        assert_eq!(p.period_for(&jining, d("2025-01-01")).unwrap().region.as_str(), "370800");

        let outside = text.replace("region = \"370800\"", "region = \"320800\"");
        let e = Policy::from_toml(&outside).unwrap_err();
        assert_eq!(e.field, "extension[0].region", "{e}");
        let typo = text.replace("authority = ", "authorty = ");
        let e = Policy::from_toml(&typo).unwrap_err();
        assert_eq!(e.field, "extension[0].authorty", "{e}");
    }
}
