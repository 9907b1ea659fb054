//! Vocational-training subsidy (职业培训补贴), paid for a trainee of a
//! catalog training (Liaocheng 2024: 聊人社字〔2024〕12号, annexes 1 and 2).
//!
//! The standard in force is the one on the class start date (以开班之日为准),
//! so the policy is selected by `training.class_start_on`, not by the
//! submission date. Graded catalogs (green, urgent, manufacturing) pay by
//! level; a completion-exam class (结业类) pays the 初级 standard. Special
//! ability items pay by food / non-food, featured and entrepreneurship items
//! per item. A class shorter than the standard's hours (补贴课时) is not
//! subsidized. Who pays ([`TrainingFunding`]): an unemployed person receiving
//! unemployment benefit is the fund's ordinary spending (`unemployment_insurance`,
//! outside the 15% cap); an insured trainee not on benefit may be paid from the
//! expansion pilot where the office states it (counts against the cap); anyone
//! else from employment subsidy funds.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogBinding, CatalogKind, CatalogPath, SpecialCategory};
use crate::checks::{self, Exclusion};
use crate::classification::Classification;
use crate::decision::{Decision, Funding, Ruled};
use crate::file_error::FieldPath;
use crate::history::{PriorApplication, Subject};
use crate::ids::{DivisionCode, OccupationCode};
use crate::level::Level;
use crate::money::Money;
use crate::person::{Applicant, PersonEligibility};
use crate::policy::{Policy, Program, Rules};
use crate::rejection::{by_precedence, Rejection, RejectionCode};

/// Parameters of a training policy. File keys:
///
/// ```toml
/// catalog = "catalogs/liaocheng-2024-training.toml"
/// business_date = "class_start_on"
/// [graded]            catalogs = ["green", "urgent", "manufacturing"], completion_exam_pays_level = 5
/// [graded.level_5]    amount = "600.00", hours = 40            (and level_4, level_3)
/// [special_ability]   food = { amount = "500.00", hours = 24 }, non_food = { … }
/// [featured."featured-01"]  name = "岗位技能提升", amount = "500.00", hours = 40
/// [entrepreneurship."entrepreneurship-01"]  name = "…", amount = "300.00", hours = 24
/// [funding]           receiving_unemployment_benefit = "unemployment_insurance",
///                     insured_not_on_benefit_may_state = "expansion_pilot", otherwise = "employment_subsidy"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingRules<C = CatalogBinding> {
    pub catalog: C,
    pub business_date: TrainingBusinessDate,
    pub graded: GradedStandards,
    pub special_ability: SpecialAbilityStandards,
    #[serde(default)]
    pub featured: BTreeMap<String, NamedStandard>,
    #[serde(default)]
    pub entrepreneurship: BTreeMap<String, NamedStandard>,
    pub funding: TrainingFunding,
    /// What a class shorter than its standard's hours gets (absent in policies published
    /// before it was a setting: refused).
    #[serde(default)]
    pub hours_below_standard: ShortClass,
    /// How far the exclusion with the skill-upgrade subsidy reaches.
    #[serde(default)]
    pub exclusion: Exclusion,
}

/// A class with fewer hours than its standard's 补贴课时 (item 三: 确保培训课程足时足量).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShortClass {
    /// Not subsidized (`not_eligible` on `training.hours`).
    #[default]
    Refused,
    /// Paid the standard regardless of the hours.
    PaidInFull,
}

/// Which date selects the training policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainingBusinessDate {
    /// 开班之日.
    ClassStartOn,
}

/// An amount per trainee and the class hours it requires (补贴课时).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standard {
    pub amount: Money,
    pub hours: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedStandard {
    pub name: String,
    pub amount: Money,
    pub hours: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradedStandards {
    /// The catalogs paid by level.
    pub catalogs: Vec<CatalogKind>,
    /// The level whose standard a completion-exam class (结业类) pays.
    pub completion_exam_pays_level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_5: Option<Standard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_4: Option<Standard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_3: Option<Standard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_2: Option<Standard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_1: Option<Standard>,
}

impl GradedStandards {
    pub fn get(&self, level: Level) -> Option<Standard> {
        match level.number() {
            5 => self.level_5,
            4 => self.level_4,
            3 => self.level_3,
            2 => self.level_2,
            _ => self.level_1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialAbilityStandards {
    /// 食品制作类
    pub food: Standard,
    /// 种植类, 手工制作类, 其它类
    pub non_food: Standard,
}

/// Where the money comes from, by the trainee's situation at submission
/// (聊人社字〔2024〕12号 item 二; 鲁人社发〔2024〕8号 item 六; DOMAIN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrainingFunding {
    /// A trainee receiving unemployment benefit (领取失业保险金期间参加培训):
    /// always this funding (ordinary unemployment-insurance spending).
    pub receiving_unemployment_benefit: Funding,
    /// What the office may state for an insured trainee (参加失业保险) not on
    /// benefit, vouching that the employment-subsidy conditions are met and
    /// the city's plan funds it: the expansion pilot. `None`: nothing may be
    /// stated beyond `otherwise`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insured_not_on_benefit_may_state: Option<Funding>,
    /// Anyone else, and an insured trainee for whom nothing is stated.
    pub otherwise: Funding,
}

impl TrainingFunding {
    /// The funding of an application: derived from the trainee's situation,
    /// or the one stated where the rules let the office state it. A stated
    /// funding the rules do not allow is refused on `funding`.
    pub fn decide(
        &self,
        eligibility: &PersonEligibility,
        stated: Option<Funding>,
        document: &str,
    ) -> Result<Funding, Rejection> {
        let on_benefit = eligibility.receiving_unemployment_benefit;
        // The office's statement vouches that the trainee is insured (API.md); only a request
        // that itself says 0 months insured contradicts it.
        let insured = eligibility.insured_months != Some(0);
        let derived = if on_benefit { self.receiving_unemployment_benefit } else { self.otherwise };
        let Some(stated) = stated.filter(|&s| s != derived) else {
            return Ok(derived);
        };
        if !on_benefit && insured && self.insured_not_on_benefit_may_state == Some(stated) {
            return Ok(stated);
        }
        let why = if on_benefit {
            format!(
                "{document} pays a trainee receiving unemployment benefit from {}",
                self.receiving_unemployment_benefit.as_str()
            )
        } else if self.insured_not_on_benefit_may_state == Some(stated) {
            format!(
                "{} is for an insured trainee, and eligibility.insured_months says 0 months \
                 insured",
                stated.as_str()
            )
        } else {
            format!(
                "{document} pays a trainee not receiving unemployment benefit from {}{}",
                self.otherwise.as_str(),
                self.insured_not_on_benefit_may_state
                    .map(|f| format!(
                        ", or from {} where the office states it for an insured trainee",
                        f.as_str()
                    ))
                    .unwrap_or_default()
            )
        };
        Err(checks::validation(
            "funding",
            format!(
                "the request says {}, but {why}; leave funding out or correct it",
                stated.as_str()
            ),
        ))
    }
}

impl TrainingRules<CatalogPath> {
    pub(crate) fn bind<E>(
        self,
        bind: impl Fn(&CatalogPath) -> Result<CatalogBinding, E>,
    ) -> Result<TrainingRules, E> {
        Ok(TrainingRules {
            catalog: bind(&self.catalog)?,
            business_date: self.business_date,
            graded: self.graded,
            special_ability: self.special_ability,
            featured: self.featured,
            entrepreneurship: self.entrepreneurship,
            funding: self.funding,
            hours_below_standard: self.hours_below_standard,
            exclusion: self.exclusion,
        })
    }
}

impl TrainingRules {
    pub(crate) fn problems(&self) -> Vec<(FieldPath, String)> {
        let mut out = Vec::new();
        let at = FieldPath::parse;
        let catalog = &self.catalog.catalog;
        if self.graded.catalogs.is_empty() || self.graded.catalogs.iter().any(|k| !k.is_graded()) {
            out.push((
                at("graded.catalogs"),
                "lists the catalogs paid by level: green, urgent, manufacturing".into(),
            ));
        }
        if self.graded.get(self.graded.completion_exam_pays_level).is_none() {
            out.push((
                at("graded.completion_exam_pays_level"),
                "names a level without a standard in [graded]".into(),
            ));
        }
        let mut standards: Vec<(String, Standard)> = Level::ALL
            .into_iter()
            .filter_map(|l| self.graded.get(l).map(|s| (format!("graded.level_{l}"), s)))
            .collect();
        standards.push(("special_ability.food".into(), self.special_ability.food));
        standards.push(("special_ability.non_food".into(), self.special_ability.non_food));
        for (table, kind) in [
            ("featured", CatalogKind::Featured),
            ("entrepreneurship", CatalogKind::Entrepreneurship),
        ] {
            let map =
                if kind == CatalogKind::Featured { &self.featured } else { &self.entrepreneurship };
            for (key, s) in map {
                standards.push((
                    format!("{table}.{key}"),
                    Standard { amount: s.amount, hours: s.hours },
                ));
                if catalog.find(Some(kind), key).is_none() {
                    out.push((
                        at(&format!("{table}.{key}")),
                        format!("{key} is not a {kind} item of {}", self.catalog.path),
                    ));
                }
            }
            for item in catalog.items.iter().filter(|i| i.catalog == Some(kind)) {
                if !map.contains_key(item.key()) {
                    out.push((
                        at(table),
                        format!("catalog item {} ({}) has no standard here", item.key(), item.name),
                    ));
                }
            }
        }
        for (path, s) in standards {
            if s.hours == 0 {
                out.push((at(&format!("{path}.hours")), "must be at least 1 hour".into()));
            }
        }
        out
    }
}

/// How the class was assessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Assessment {
    /// Skill evaluation with a vocational certificate (技能等级评价).
    Certificate,
    /// Completion exam with a training certificate (结业考试, 培训合格证书).
    CompletionExam,
}

/// `training` of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Training {
    pub catalog: CatalogKind,
    /// For the graded catalogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occupation_code: Option<OccupationCode>,
    /// For the other catalogs: the catalog key, e.g. `special_ability-03`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// For the graded catalogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    pub assessment: Assessment,
    pub class_start_on: NaiveDate,
    /// Class hours delivered.
    pub hours: u32,
}

/// A training request body (`"program": "vocational_training"`), parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrainingApplication {
    pub county: DivisionCode,
    pub submitted_on: NaiveDate,
    pub applicant: Applicant,
    pub eligibility: PersonEligibility,
    pub training: Training,
    /// Optional: the policy derives it; a stated one must agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funding: Option<Funding>,
    /// The training institution paid on the trainee's behalf (由培训机构代为申领), when
    /// given; the notice still lists the trainee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payee: Option<Institution>,
}

/// A training institution receiving a trainee's subsidy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Institution {
    pub credit_code: crate::ids::CreditCode,
    pub name: String,
}

impl TrainingApplication {
    /// The date that selects the policy: the class start date.
    pub fn business_date(&self) -> NaiveDate {
        self.training.class_start_on
    }
}

/// What the request is for, once its fields are consistent.
struct Target {
    subject: Subject,
    key: String,
    field: &'static str,
    level: Option<Level>,
}

fn target(t: &Training) -> Result<Target, Vec<Rejection>> {
    let mut out = Vec::new();
    let kind = t.catalog;
    if kind.is_graded() {
        if t.item.is_some() {
            out.push(checks::validation(
                "training.item",
                format!("the {kind} catalog is of occupations: give training.occupation_code, not an item"),
            ));
        }
        if t.level.is_none() {
            out.push(checks::validation(
                "training.level",
                format!("the {kind} catalog is paid by level: give training.level (5 初级 … 1 高级技师)"),
            ));
        }
        match (&t.occupation_code, t.level, out.is_empty()) {
            (Some(code), Some(level), true) => Ok(Target {
                subject: Subject::Occupation(code.clone()),
                key: code.to_string(),
                field: "training.occupation_code",
                level: Some(level),
            }),
            (None, _, _) => {
                out.push(checks::validation(
                    "training.occupation_code",
                    format!("the {kind} catalog is of occupations: give training.occupation_code"),
                ));
                Err(out)
            }
            _ => Err(out),
        }
    } else {
        if t.occupation_code.is_some() {
            out.push(checks::validation(
                "training.occupation_code",
                format!(
                    "{kind} items have no occupation code: give training.item, e.g. \"{kind}-01\""
                ),
            ));
        }
        if t.level.is_some() {
            out.push(checks::validation(
                "training.level",
                format!("{kind} items have no levels; leave training.level out"),
            ));
        }
        let item = t.item.as_ref().map(|i| Subject::parse(i).map(|s| (i, s)));
        match item {
            Some(Ok((key, subject))) if out.is_empty() => {
                Ok(Target { subject, key: key.clone(), field: "training.item", level: None })
            }
            Some(Ok(_)) => Err(out),
            Some(Err(e)) => {
                out.push(checks::validation("training.item", e.to_string()));
                Err(out)
            }
            None => {
                out.push(checks::validation(
                    "training.item",
                    format!("give the catalog item, e.g. \"{kind}-01\""),
                ));
                Err(out)
            }
        }
    }
}

/// Decides a training application. `history` is the person's earlier
/// training and skill-upgrade applications.
pub fn decide(
    app: &TrainingApplication,
    history: &[PriorApplication],
    policy: &Policy,
) -> Result<Decision, Vec<Rejection>> {
    let Rules::VocationalTraining(rules) = &policy.rules else {
        return Err(vec![checks::wrong_program(policy, Program::VocationalTraining)]);
    };
    let t = &app.training;
    let mut out = Vec::new();
    if t.class_start_on > app.submitted_on {
        out.push(checks::validation(
            "training.class_start_on",
            format!(
                "the class starts on {}, after the submission date {}; apply once the class has started",
                t.class_start_on, app.submitted_on
            ),
        ));
    }
    if app.applicant.name.trim().is_empty() {
        out.push(checks::validation("applicant.name", "the applicant's name is empty"));
    }
    let target = match target(t) {
        Ok(target) => Some(target),
        Err(rs) => {
            out.extend(rs);
            None
        }
    };
    let TrainingBusinessDate::ClassStartOn = rules.business_date;
    let funding = match rules.funding.decide(&app.eligibility, app.funding, &policy.document) {
        Ok(f) => f,
        Err(r) => {
            out.push(r);
            Funding::EmploymentSubsidy
        }
    };
    let Some(target) = target.filter(|_| out.is_empty()) else {
        return Err(by_precedence(out));
    };
    if let Some(r) = checks::in_force(policy, &app.county, t.class_start_on) {
        return Err(vec![r]);
    }

    let catalog = &rules.catalog.catalog;
    // A code the notice's annex lists is taken as the notice writes it; any other must be
    // an occupation of the 2022 classification (then refused below as not in the catalog).
    if let Some(code) = t.occupation_code.as_ref().filter(|_| t.catalog.is_graded()) {
        Classification::shipped()
            .check_under_annex(code, target.field, Some(catalog))
            .map_err(|r| vec![r])?;
    }
    let Some(item) = catalog.find(Some(t.catalog), &target.key) else {
        return Err(vec![Rejection::new(
            RejectionCode::UnknownOccupation,
            target.field,
            format!(
                "{} is not in the {} catalog of {} ({}); subsidized training must be in the catalog",
                target.key, t.catalog, catalog.document, catalog.annex
            ),
        )]);
    };

    let standard: Option<(Standard, &str)> = match t.catalog {
        k if k.is_graded() => {
            let level = target.level.expect("graded targets have a level");
            if !rules.graded.catalogs.contains(&k) {
                None
            } else if t.assessment == Assessment::CompletionExam {
                let pays = rules.graded.completion_exam_pays_level;
                rules.graded.get(pays).map(|s| (s, "completion_exam_rate"))
            } else {
                rules.graded.get(level).map(|s| (s, "graded_standards"))
            }
        }
        CatalogKind::SpecialAbility => match item.category {
            Some(SpecialCategory::Food) => {
                Some((rules.special_ability.food, "special_ability_food"))
            }
            _ => Some((rules.special_ability.non_food, "special_ability_non_food")),
        },
        CatalogKind::Featured => rules.featured.get(&target.key).map(|s| {
            let s = Standard { amount: s.amount, hours: s.hours };
            (s, "featured_standards")
        }),
        _ => rules.entrepreneurship.get(&target.key).map(|s| {
            let s = Standard { amount: s.amount, hours: s.hours };
            (s, "entrepreneurship_standards")
        }),
    };
    match standard {
        None => out.push(Rejection::new(
            RejectionCode::NoStandardForLevel,
            "training.level",
            match target.level {
                Some(l) => format!(
                    "{} sets no training standard for level {l} ({}) of the {} catalog; \
                     only levels 5, 4 and 3 are subsidized",
                    policy.document,
                    l.name_zh(),
                    t.catalog
                ),
                None => format!("{} sets no training standard for {}", policy.document, target.key),
            },
        )),
        Some((s, _)) if t.hours < s.hours && rules.hours_below_standard == ShortClass::Refused => out.push(Rejection::new(
            RejectionCode::NotEligible,
            "training.hours",
            format!(
                "the class had {} hours; this standard subsidizes classes of at least {} hours (补贴课时)",
                t.hours, s.hours
            ),
        )),
        Some(_) => {}
    }
    out.extend(checks::repeats(
        history,
        Program::VocationalTraining,
        Program::SkillUpgrade,
        rules.exclusion,
        &target.subject,
        target.level,
        target.field,
    ));
    match standard {
        Some((s, rule)) if out.is_empty() => Ok(Decision {
            policy: policy.reference(),
            program: Program::VocationalTraining,
            business_date: t.class_start_on,
            amount: Ruled { value: s.amount, rule: policy.rule(rule) },
            funding: Ruled { value: funding, rule: policy.rule("funding") },
            slot: None,
            lines: Vec::new(),
        }),
        _ => Err(by_precedence(out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::CatalogTexts;
    use crate::history::Status;
    use crate::ids::IdNumber;

    const LIAOCHENG: &str = include_str!("../../policies/liaocheng-2024-training.toml");
    const CATALOG: &str = include_str!("../../policies/catalogs/liaocheng-2024-training.toml");

    fn policy() -> Policy {
        let mut texts = CatalogTexts::new();
        texts.insert("catalogs/liaocheng-2024-training.toml".into(), CATALOG.into());
        Policy::from_toml_with_catalogs(LIAOCHENG, &texts).unwrap()
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn graded(catalog: CatalogKind, code: &str, level: &str, start: &str) -> TrainingApplication {
        TrainingApplication {
            payee: None,
            county: DivisionCode::parse("371502").unwrap(),
            submitted_on: d("2024-10-20"),
            applicant: Applicant {
                id_number: IdNumber::parse("11010519491231002X").unwrap(),
                name: "李四".into(),
            },
            eligibility: PersonEligibility {
                insured_months: None,
                receiving_unemployment_benefit: true,
            },
            training: Training {
                catalog,
                occupation_code: Some(OccupationCode::parse(code).unwrap()),
                item: None,
                level: Some(Level::parse(level).unwrap()),
                assessment: Assessment::Certificate,
                class_start_on: d(start),
                hours: 56,
            },
            funding: None,
        }
    }

    fn item(catalog: CatalogKind, key: &str, hours: u32) -> TrainingApplication {
        let mut a = graded(catalog, "4-10-01-05", "5", "2024-09-10");
        a.training.occupation_code = None;
        a.training.level = None;
        a.training.item = Some(key.into());
        a.training.hours = hours;
        a
    }

    enum Expect {
        Pays(&'static str, &'static str, Funding),
        Refused(RejectionCode, &'static str),
    }
    use CatalogKind::*;
    use Expect::*;

    #[test]
    fn decisions_follow_annex_2() {
        let nursing = "4-10-01-05"; // 养老护理员, urgent B and green
        let cases: Vec<(&str, TrainingApplication, Vec<PriorApplication>, Expect)> = vec![
            (
                "class starting 2024-08-31: before the catalog",
                graded(Urgent, nursing, "5", "2024-08-31"),
                vec![],
                Refused(RejectionCode::NoPolicyInForce, "training.class_start_on"),
            ),
            (
                "class starting 2024-09-01: 初级 600",
                graded(Urgent, nursing, "5", "2024-09-01"),
                vec![],
                Pays("600.00", "graded_standards", Funding::UnemploymentInsurance),
            ),
            (
                "中级 700",
                graded(Green, nursing, "4", "2024-09-10"),
                vec![],
                Pays("700.00", "graded_standards", Funding::UnemploymentInsurance),
            ),
            (
                "高级 800",
                graded(Manufacturing, "6-18-04-01", "3", "2024-09-10"),
                vec![],
                Pays("800.00", "graded_standards", Funding::UnemploymentInsurance),
            ),
            (
                "completion exam pays 初级 whatever the level",
                {
                    let mut a = graded(Urgent, nursing, "3", "2024-09-10");
                    a.training.assessment = Assessment::CompletionExam;
                    a
                },
                vec![],
                Pays("600.00", "completion_exam_rate", Funding::UnemploymentInsurance),
            ),
            (
                "not receiving benefit: employment subsidy funds",
                {
                    let mut a = graded(Urgent, nursing, "5", "2024-09-10");
                    a.eligibility.receiving_unemployment_benefit = false;
                    a
                },
                vec![],
                Pays("600.00", "graded_standards", Funding::EmploymentSubsidy),
            ),
            (
                "insured, not on benefit, the office states the pilot: counts against the cap",
                {
                    let mut a = graded(Urgent, nursing, "5", "2024-09-10");
                    a.eligibility = PersonEligibility {
                        insured_months: Some(14),
                        receiving_unemployment_benefit: false,
                    };
                    a.funding = Some(Funding::ExpansionPilot);
                    a
                },
                vec![],
                Pays("600.00", "graded_standards", Funding::ExpansionPilot),
            ),
            (
                "months insured not given: the office's statement vouches for them",
                {
                    let mut a = graded(Urgent, nursing, "5", "2024-09-10");
                    a.eligibility.receiving_unemployment_benefit = false;
                    a.funding = Some(Funding::ExpansionPilot);
                    a
                },
                vec![],
                Pays("600.00", "graded_standards", Funding::ExpansionPilot),
            ),
            (
                "not insured (0 months): the pilot cannot be stated",
                {
                    let mut a = graded(Urgent, nursing, "5", "2024-09-10");
                    a.eligibility = PersonEligibility {
                        insured_months: Some(0),
                        receiving_unemployment_benefit: false,
                    };
                    a.funding = Some(Funding::ExpansionPilot);
                    a
                },
                vec![],
                Refused(RejectionCode::ValidationFailed, "funding"),
            ),
            (
                "a benefit recipient is ordinary spending, never the pilot",
                {
                    let mut a = graded(Urgent, nursing, "5", "2024-09-10");
                    a.funding = Some(Funding::ExpansionPilot);
                    a
                },
                vec![],
                Refused(RejectionCode::ValidationFailed, "funding"),
            ),
            (
                "unemployment_insurance only for benefit recipients",
                {
                    let mut a = graded(Urgent, nursing, "5", "2024-09-10");
                    a.eligibility = PersonEligibility {
                        insured_months: Some(14),
                        receiving_unemployment_benefit: false,
                    };
                    a.funding = Some(Funding::UnemploymentInsurance);
                    a
                },
                vec![],
                Refused(RejectionCode::ValidationFailed, "funding"),
            ),
            (
                "a stated funding that disagrees",
                {
                    let mut a = graded(Urgent, nursing, "5", "2024-09-10");
                    a.funding = Some(Funding::EmploymentSubsidy);
                    a
                },
                vec![],
                Refused(RejectionCode::ValidationFailed, "funding"),
            ),
            (
                "level 2",
                graded(Urgent, nursing, "2", "2024-09-10"),
                vec![],
                Refused(RejectionCode::NoStandardForLevel, "training.level"),
            ),
            (
                "美发师 is green, not urgent",
                graded(Urgent, "4-10-03-02", "5", "2024-09-10"),
                vec![],
                Refused(RejectionCode::UnknownOccupation, "training.occupation_code"),
            ),
            (
                "special ability, food",
                item(SpecialAbility, "special_ability-01", 24),
                vec![],
                Pays("500.00", "special_ability_food", Funding::UnemploymentInsurance),
            ),
            (
                "special ability, planting",
                item(SpecialAbility, "special_ability-21", 24),
                vec![],
                Pays("400.00", "special_ability_non_food", Funding::UnemploymentInsurance),
            ),
            (
                "数字技术工程师",
                item(Featured, "featured-03", 80),
                vec![],
                Pays("1000.00", "featured_standards", Funding::UnemploymentInsurance),
            ),
            (
                "数字技术工程师, 79 hours",
                item(Featured, "featured-03", 79),
                vec![],
                Refused(RejectionCode::NotEligible, "training.hours"),
            ),
            (
                "GYB",
                item(Entrepreneurship, "entrepreneurship-01", 24),
                vec![],
                Pays("300.00", "entrepreneurship_standards", Funding::UnemploymentInsurance),
            ),
            (
                "SYB",
                item(Entrepreneurship, "entrepreneurship-02", 56),
                vec![],
                Pays("800.00", "entrepreneurship_standards", Funding::UnemploymentInsurance),
            ),
            (
                "no such item",
                item(Featured, "featured-04", 80),
                vec![],
                Refused(RejectionCode::UnknownOccupation, "training.item"),
            ),
            (
                "a level on a flat-rate item",
                {
                    let mut a = item(Featured, "featured-01", 40);
                    a.training.level = Some(Level::parse("5").unwrap());
                    a
                },
                vec![],
                Refused(RejectionCode::ValidationFailed, "training.level"),
            ),
            (
                "skill-upgrade subsidy for the same occupation and level",
                graded(Urgent, nursing, "4", "2024-09-10"),
                vec![PriorApplication {
                    program: Program::SkillUpgrade,
                    subject: Subject::parse(nursing).unwrap(),
                    level: Some(Level::parse("4").unwrap()),
                    submitted_on: d("2024-03-01"),
                    status: Status::Paid,
                    slot: None,
                }],
                Refused(
                    RejectionCode::TrainingAndSkillUpgradeExclusive,
                    "training.occupation_code",
                ),
            ),
            (
                "trained at a higher level already",
                graded(Urgent, nursing, "4", "2024-09-10"),
                vec![PriorApplication {
                    program: Program::VocationalTraining,
                    subject: Subject::parse(nursing).unwrap(),
                    level: Some(Level::parse("3").unwrap()),
                    submitted_on: d("2024-09-20"),
                    status: Status::Pending,
                    slot: None,
                }],
                Refused(RejectionCode::HigherLevelAlreadySubsidized, "training.occupation_code"),
            ),
            (
                "the same special-ability item twice",
                item(SpecialAbility, "special_ability-01", 24),
                vec![PriorApplication {
                    program: Program::VocationalTraining,
                    subject: Subject::parse("special_ability-01").unwrap(),
                    level: None,
                    submitted_on: d("2024-09-20"),
                    status: Status::Counted,
                    slot: None,
                }],
                Refused(RejectionCode::OccupationLevelAlreadySubsidized, "training.item"),
            ),
        ];
        let policy = policy();
        let mut in_jining = graded(Urgent, nursing, "5", "2024-09-10");
        in_jining.county = DivisionCode::parse("370811").unwrap();
        assert_eq!(
            decide(&in_jining, &[], &policy).unwrap_err()[0].code,
            RejectionCode::NoPolicyInForce
        );
        for (name, a, history, expect) in cases {
            match (expect, decide(&a, &history, &policy)) {
                (Pays(amount, rule, funding), Ok(decision)) => {
                    assert_eq!(decision.amount.value.to_string(), amount, "{name}");
                    assert_eq!(
                        decision.amount.rule.as_str(),
                        format!("liaocheng-2024-training/{rule}"),
                        "{name}"
                    );
                    assert_eq!(decision.funding.value, funding, "{name}");
                    assert_eq!(decision.business_date, a.training.class_start_on, "{name}");
                }
                (Refused(code, field), Err(rejections)) => {
                    assert_eq!(
                        (rejections[0].code, rejections[0].field.as_str()),
                        (code, field),
                        "{name}: {rejections:?}"
                    );
                }
                (_, got) => panic!("{name}: unexpected {got:?}"),
            }
        }
    }

    /// The annex is the authority on what the notice subsidises: a code it lists is taken
    /// as the notice writes it, even where the 2022 classification has no such occupation
    /// (6-08-01-01 is 印前处理和制作员 there, 2-02-10-09 and 3-02-02-00 do not exist); any
    /// other code must be a 2022 occupation, and then also in the named catalog.
    #[test]
    fn codes_of_the_annex_are_taken_as_the_notice_writes_them() {
        let policy = policy();
        assert!(policy.interpretations.iter().any(|i| i.setting == "catalog"));
        let pays = |kind, code: &str| {
            let d = decide(&graded(kind, code, "5", "2024-09-10"), &[], &policy)
                .unwrap_or_else(|e| panic!("{code}: {e:?}"));
            d.amount.value.to_string()
        };
        assert_eq!(pays(Urgent, "6-08-01-01"), "600.00"); // 数据标注员
        assert_eq!(pays(Urgent, "2-02-10-09"), "600.00"); // 人工智能算法测试员
        assert_eq!(pays(Green, "3-02-02-00"), "600.00"); // 保卫管理员
        assert_eq!(pays(Green, "4-13-04-01"), "600.00"); // 社会体育指导员
        assert_eq!(pays(Green, "4-07-03-02"), "600.00"); // 劳动关系协调员
        assert_eq!(pays(Urgent, "4-14-01-03"), "600.00"); // 健康照护师（长期照护师）
        let refused = |kind, code: &str| {
            let e = decide(&graded(kind, code, "5", "2024-09-10"), &[], &policy).unwrap_err();
            assert_eq!(
                (e[0].code, e[0].field.as_str()),
                (RejectionCode::UnknownOccupation, "training.occupation_code"),
                "{code}"
            );
            e[0].message.clone()
        };
        // Listed by the annex, in another of its catalogs: refused as not in this one.
        let m = refused(Urgent, "3-02-02-00");
        assert!(
            m.contains("3-02-02-00 is not in the urgent catalog of 聊人社字〔2024〕12号"),
            "{m}"
        );
        // In no catalog of the annex and not a 2022 occupation: the classification refuses.
        let m = refused(Urgent, "6-18-02-99");
        assert!(m.contains("occupation 6-18-02-99 does not exist in small group 6-18-02"), "{m}");
        let m = refused(Manufacturing, "9-99-99-99");
        assert!(m.contains("major group 9 does not exist"), "{m}");
        // A 2022 occupation the annex does not list: the catalog refuses.
        let m = refused(Urgent, "3-03-01-01"); // 仲裁员
        assert!(m.contains("3-03-01-01 is not in the urgent catalog"), "{m}");
    }

    /// The settings that carry interpretations change the decision when set otherwise.
    #[test]
    fn short_classes_and_the_exclusions_reach_are_settings() {
        let nursing = "4-10-01-05";
        let mut short = graded(Urgent, nursing, "5", "2024-09-10");
        short.training.hours = 39;
        let p = policy();
        let e = decide(&short, &[], &p).unwrap_err();
        assert_eq!(
            (e[0].code, e[0].field.as_str()),
            (RejectionCode::NotEligible, "training.hours")
        );
        let skill_upgrade_level_3 = PriorApplication {
            program: Program::SkillUpgrade,
            subject: Subject::parse(nursing).unwrap(),
            level: Some(Level::parse("3").unwrap()),
            submitted_on: d("2024-03-01"),
            status: Status::Paid,
            slot: None,
        };
        let level_5 = graded(Urgent, nursing, "5", "2024-09-10");
        assert!(decide(&level_5, std::slice::from_ref(&skill_upgrade_level_3), &p).is_ok());

        let text = LIAOCHENG
            .replace(
                "hours_below_standard = \"refused\"",
                "hours_below_standard = \"paid_in_full\"",
            )
            .replace(
                "exclusion = \"same_occupation_and_level\"",
                "exclusion = \"same_occupation\"",
            );
        let mut texts = CatalogTexts::new();
        texts.insert("catalogs/liaocheng-2024-training.toml".into(), CATALOG.into());
        let other = Policy::from_toml_with_catalogs(&text, &texts).unwrap();
        assert_eq!(decide(&short, &[], &other).unwrap().amount.value.to_string(), "600.00");
        let e = decide(&level_5, &[skill_upgrade_level_3], &other).unwrap_err();
        assert_eq!(e[0].code, RejectionCode::TrainingAndSkillUpgradeExclusive);
    }

    #[test]
    fn every_interpretation_names_a_setting_of_the_file() {
        let p = policy();
        assert!(p.interpretations.len() >= 5);
        assert!(p.interpretations.iter().any(|i| i.setting == "hours_below_standard"));
        let broken = LIAOCHENG
            .replace("setting = \"hours_below_standard\"", "setting = \"hours_under_standard\"");
        let mut texts = CatalogTexts::new();
        texts.insert("catalogs/liaocheng-2024-training.toml".into(), CATALOG.into());
        let e = Policy::from_toml_with_catalogs(&broken, &texts).unwrap_err();
        assert!(e.field.starts_with("interpretation[") && e.field.ends_with("].setting"), "{e}");
        assert!(e.message.contains("names no setting"), "{e}");
    }
}
