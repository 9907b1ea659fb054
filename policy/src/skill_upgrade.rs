//! Skill-upgrade subsidy (技能提升补贴), paid to a person who obtains a
//! vocational skill certificate.
//!
//! # Annual slots
//!
//! A person has `annual.base_slots` subsidies a year at the standard amounts
//! (Shandong 2024: 3), plus, where the policy has an `[extra]` table,
//! `extra.slots` more for certificates of occupations on the urgent-shortage
//! list, at the extra amounts (Jining 2025: 1 base + 2 extra). The year is the
//! calendar year of the submission date.
//!
//! Slots are filled in submission order: the person's first standing
//! application of the year takes the base slot, later ones extra slots. So the
//! decision counts `n`, the person's standing skill-upgrade applications of
//! the year (pending ones too, while `pending_holds_slot`, so that
//! simultaneous submissions cannot overrun the limit; rejected, withdrawn and
//! recovered ones free their slot), and the new application takes slot
//! `n + 1`:
//!
//! - `n < base_slots`: a base slot at the standard amount, whatever the
//!   occupation. A person whose first 2025 application in Jining is on the
//!   urgent list therefore gets the standard amount (e.g. 1500 at level 4),
//!   not the extra one (500): the extra amounts pay only for the subsidies
//!   *added* to the base one.
//! - `base_slots <= n < base_slots + extra.slots`: an extra slot, only for an
//!   urgent-list occupation (and, where `extra.certificate_issued_in` is set,
//!   a certificate issued there: 我市核发), at the extra amount; any other
//!   certificate is refused with `annual_limit_reached`.
//! - otherwise `annual_limit_reached`.
//!
//! Grandfathered applications (Jining: submitted before 2025-04-16 under the
//! 2024 rules) count toward the 2025 total (`counts_toward_annual_total`) and
//! occupy slots in the same order, whatever the 2024 rules paid them. Two of
//! them therefore hold the base slot and one extra slot; after 2025-04-16 the
//! person can still get the last extra slot, and only with an urgent-list
//! certificate. Three of them use the whole year.
//!
//! Counting anew instead of reading the slot stored on earlier decisions keeps
//! the rule the same for applications decided under different policies (the
//! 2024 rules record every slot as base). One consequence: if the application
//! in the base slot is withdrawn, the next standing application moves up to
//! it and the freed slot is an extra one; amounts already decided do not
//! change.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::catalog::{CatalogBinding, CatalogPath};
use crate::checks::{self, Exclusion};
use crate::classification::Classification;
use crate::decision::{Decision, Funding, Ruled, Slot, SlotKind};
use crate::file_error::FieldPath;
use crate::history::{PriorApplication, Status, Subject};
use crate::ids::{DivisionCode, OccupationCode};
use crate::level::Level;
use crate::money::Money;
use crate::person::{Applicant, PersonEligibility};
use crate::policy::{Policy, Program, Rules};
use crate::rejection::{by_precedence, Rejection, RejectionCode};

/// Bound on slots per person and year, against a typo such as `base_slots = 30`.
pub const SLOTS_PER_YEAR_MAX: u32 = 12;
/// Bound on the certificate window, in months.
pub const WINDOW_MONTHS_MAX: u32 = 120;

/// Parameters of a skill-upgrade policy. File keys:
///
/// ```toml
/// funding = "unemployment_insurance"
/// [eligibility]   insured_months_min = 12, receiving_unemployment_benefit = true
/// [certificate]   window_months = 12
/// [amounts]       level_5 = "1000.00" … (a level without a key has no standard)
/// [annual]        year = "submission_date", base_slots = 3,
///                 slot_order = "submission_order", pending_holds_slot = true
/// [retroactive]   from = 2024-01-01, notice_published_on = 2024-07-09   (optional)
/// [extra]         slots = 2, urgent_catalog = "catalogs/…", certificate_issued_in = "370800",
/// [extra.amounts] level_5 = "300.00" …                                  (optional)
/// [grandfathering] before = 2025-04-16, counts_toward_annual_total = true (optional)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillUpgradeRules<C = CatalogBinding> {
    pub funding: Funding,
    pub eligibility: EligibilityRules,
    pub certificate: CertificateRules,
    pub amounts: LevelAmounts,
    pub annual: AnnualRules,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retroactive: Option<Retroactive>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<ExtraSlots<C>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grandfathering: Option<Grandfathering>,
    /// How far the exclusion with the training subsidy reaches (absent in policies
    /// published before it was a setting: the same occupation and level).
    #[serde(default)]
    pub exclusion: Exclusion,
}

/// Who may receive the subsidy: an employee insured at least
/// `insured_months_min` months, or (if `receiving_unemployment_benefit`) an
/// unemployed person receiving unemployment benefit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibilityRules {
    pub insured_months_min: u32,
    pub receiving_unemployment_benefit: bool,
}

/// Apply within `window_months` of the certificate's issue date, the last day
/// included (issued 2024-03-01, 12 months: until 2025-03-01).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRules {
    pub window_months: u32,
    /// Which day ends the window (absent in policies published before it was a setting:
    /// the same date `window_months` later, included).
    #[serde(default)]
    pub window_end: WindowEnd,
}

/// The last day of a window of N months from an issue date ("自证书核发之日起12个月内").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowEnd {
    /// Issued 2024-03-01, 12 months: until 2025-03-01 inclusive (month ends clamp:
    /// 2024-02-29 → 2025-02-28).
    #[default]
    SameDateIncluded,
    /// The day before that date: issued 2024-03-01, until 2025-02-28.
    DayBefore,
}

impl CertificateRules {
    /// The last day an application for a certificate issued on `issued_on` is in time.
    pub fn deadline(&self, issued_on: NaiveDate) -> NaiveDate {
        let same = crate::dates::add_months(issued_on, self.window_months);
        match self.window_end {
            WindowEnd::SameDateIncluded => same,
            WindowEnd::DayBefore => same.pred_opt().expect("a date after 0001"),
        }
    }
}

/// An amount per level; a level without one has no standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LevelAmounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_5: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_4: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_3: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_2: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level_1: Option<Money>,
}

impl LevelAmounts {
    pub fn get(&self, level: Level) -> Option<Money> {
        match level.number() {
            5 => self.level_5,
            4 => self.level_4,
            3 => self.level_3,
            2 => self.level_2,
            _ => self.level_1,
        }
    }

    fn levels(&self) -> impl Iterator<Item = Level> + '_ {
        Level::ALL.into_iter().filter(|&l| self.get(l).is_some())
    }

    /// "level 5 (初级) 1000.00, level 4 (中级) 1500.00"
    fn describe(&self) -> String {
        self.levels()
            .map(|l| format!("level {l} ({}) {}", l.name_zh(), self.get(l).expect("listed")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Which year an application counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum YearBasis {
    /// The calendar year of the submission date (DOMAIN.md interpretation).
    SubmissionDate,
}

/// How slots are assigned within a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotOrder {
    /// First standing application of the year: base slot; later: extra.
    SubmissionOrder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnualRules {
    pub year: YearBasis,
    pub base_slots: u32,
    pub slot_order: SlotOrder,
    /// Whether a submitted, undecided application holds its slot.
    pub pending_holds_slot: bool,
}

/// Applications submitted from `from` until the notice was published
/// (`notice_published_on`) are paid if they met the conditions when
/// submitted; decisions always judge the conditions at the submission date,
/// so this is a record of the notice, and `from` must equal `effective_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retroactive {
    #[serde(with = "crate::dates")]
    pub from: NaiveDate,
    #[serde(with = "crate::dates")]
    pub notice_published_on: NaiveDate,
}

/// Extra subsidies for occupations on an urgent-shortage list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraSlots<C = CatalogBinding> {
    pub slots: u32,
    /// The list (a catalog file in the file; its contents in a policy value).
    pub urgent_catalog: C,
    /// Where the certificate must have been issued (我市核发), if anywhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_issued_in: Option<DivisionCode>,
    pub amounts: LevelAmounts,
}

/// Applications submitted before `before` followed the previous rules; if
/// `counts_toward_annual_total`, they count toward the year's total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grandfathering {
    #[serde(with = "crate::dates")]
    pub before: NaiveDate,
    pub counts_toward_annual_total: bool,
}

impl SkillUpgradeRules<CatalogPath> {
    pub(crate) fn bind<E>(
        self,
        bind: impl Fn(&CatalogPath) -> Result<CatalogBinding, E>,
    ) -> Result<SkillUpgradeRules, E> {
        let extra = match self.extra {
            None => None,
            Some(x) => Some(ExtraSlots {
                slots: x.slots,
                urgent_catalog: bind(&x.urgent_catalog)?,
                certificate_issued_in: x.certificate_issued_in,
                amounts: x.amounts,
            }),
        };
        Ok(SkillUpgradeRules {
            funding: self.funding,
            eligibility: self.eligibility,
            certificate: self.certificate,
            amounts: self.amounts,
            annual: self.annual,
            retroactive: self.retroactive,
            exclusion: self.exclusion,
            extra,
            grandfathering: self.grandfathering,
        })
    }
}

impl SkillUpgradeRules {
    pub(crate) fn problems(&self, effective_from: NaiveDate) -> Vec<(FieldPath, String)> {
        let mut out = Vec::new();
        let at = |p: &str| FieldPath::parse(p);
        if self.amounts.levels().next().is_none() {
            out.push((at("amounts"), "must give an amount for at least one level".into()));
        }
        if !(1..=WINDOW_MONTHS_MAX).contains(&self.certificate.window_months) {
            out.push((
                at("certificate.window_months"),
                format!("must be 1 to {WINDOW_MONTHS_MAX} months"),
            ));
        }
        let extra_slots = self.extra.as_ref().map_or(0, |x| x.slots);
        if self.annual.base_slots == 0 || self.annual.base_slots + extra_slots > SLOTS_PER_YEAR_MAX
        {
            out.push((
                at("annual.base_slots"),
                format!("base and extra slots must be at least 1 and at most {SLOTS_PER_YEAR_MAX} a year"),
            ));
        }
        if let Some(r) = &self.retroactive {
            if r.from != effective_from || r.notice_published_on < r.from {
                out.push((
                    at("retroactive.from"),
                    "must equal effective_from and precede notice_published_on: retroactive \
                     applications are decided by this policy, so its period starts there"
                        .into(),
                ));
            }
        }
        if let Some(x) = &self.extra {
            if x.slots == 0 {
                out.push((at("extra.slots"), "must be at least 1; remove [extra] for none".into()));
            }
            for level in x.amounts.levels() {
                if self.amounts.get(level).is_none() {
                    out.push((
                        at(&format!("extra.amounts.level_{level}")),
                        format!(
                            "level {level} has an extra amount but no standard amount in [amounts]"
                        ),
                    ));
                }
            }
            if x.amounts.levels().next().is_none() {
                out.push((
                    at("extra.amounts"),
                    "must give an amount for at least one level".into(),
                ));
            }
        }
        out
    }
}

/// The certificate of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub occupation_code: OccupationCode,
    pub level: Level,
    pub number: String,
    pub issued_on: NaiveDate,
    /// The pool or county whose office issued it; needed where extra
    /// subsidies require a locally issued certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<DivisionCode>,
}

/// A skill-upgrade request body (`"program": "skill_upgrade"`), parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SkillUpgradeApplication {
    pub county: DivisionCode,
    pub submitted_on: NaiveDate,
    pub applicant: Applicant,
    pub eligibility: PersonEligibility,
    pub certificate: Certificate,
}

impl SkillUpgradeApplication {
    /// The date that selects the policy.
    pub fn business_date(&self) -> NaiveDate {
        self.submitted_on
    }
}

/// Decides a skill-upgrade application. `history` is the person's earlier
/// skill-upgrade and training applications, any status, any year.
/// Rejections come sorted by precedence (see [`crate::rejection`]).
pub fn decide(
    app: &SkillUpgradeApplication,
    history: &[PriorApplication],
    policy: &Policy,
) -> Result<Decision, Vec<Rejection>> {
    let Rules::SkillUpgrade(rules) = &policy.rules else {
        return Err(vec![checks::wrong_program(policy, Program::SkillUpgrade)]);
    };
    let cert = &app.certificate;
    let mut out = Vec::new();

    if cert.issued_on > app.submitted_on {
        out.push(checks::validation(
            "certificate.issued_on",
            format!(
                "the certificate's issue date {} is after the submission date {}; check both dates",
                cert.issued_on, app.submitted_on
            ),
        ));
    }
    if cert.number.trim().is_empty() {
        out.push(checks::validation(
            "certificate.number",
            "the certificate number is empty; give the number printed on the certificate",
        ));
    }
    if app.applicant.name.trim().is_empty() {
        out.push(checks::validation("applicant.name", "the applicant's name is empty"));
    }
    if !out.is_empty() {
        return Err(by_precedence(out));
    }
    if let Some(r) = checks::in_force(policy, &app.county, app.submitted_on) {
        return Err(vec![r]);
    }
    // A code the notice's own annex (the urgent list) lists is taken as the notice writes
    // it; any other must be an occupation of the 2022 classification.
    let annex = rules.extra.as_ref().map(|extra| &extra.urgent_catalog.catalog);
    Classification::shipped()
        .check_under_annex(&cert.occupation_code, "certificate.occupation_code", annex)
        .map_err(|r| vec![r])?;

    let standard = rules.amounts.get(cert.level);
    if standard.is_none() {
        out.push(Rejection::new(
            RejectionCode::NoStandardForLevel,
            "certificate.level",
            format!(
                "{} sets no skill-upgrade amount for level {} ({}); it pays {}",
                policy.document,
                cert.level,
                cert.level.name_zh(),
                rules.amounts.describe()
            ),
        ));
    }
    if let Some(r) = eligibility(&rules.eligibility, &app.eligibility) {
        out.push(r);
    }
    let deadline = rules.certificate.deadline(cert.issued_on);
    if app.submitted_on > deadline {
        out.push(Rejection::new(
            RejectionCode::CertificateWindowExpired,
            "certificate.issued_on",
            format!(
                "the certificate was issued on {}; applications are accepted within {} months of \
                 the issue date, until {deadline}, and this one was submitted on {}",
                cert.issued_on, rules.certificate.window_months, app.submitted_on
            ),
        ));
    }
    let subject = Subject::Occupation(cert.occupation_code.clone());
    out.extend(checks::repeats(
        history,
        Program::SkillUpgrade,
        Program::VocationalTraining,
        rules.exclusion,
        &subject,
        Some(cert.level),
        "certificate.occupation_code",
    ));

    let slot = assign_slot(app, history, rules);
    let (kind, amount, amount_rule, year, number) = match slot {
        Err(r) => {
            out.push(r);
            return Err(by_precedence(out));
        }
        Ok(s) => s,
    };
    let Some(amount) = amount else {
        // Only an extra slot can get here without a reason recorded yet.
        if standard.is_some() {
            out.push(Rejection::new(
                RejectionCode::NoStandardForLevel,
                "certificate.level",
                format!(
                    "the extra subsidies of {} have no amount for level {} ({})",
                    policy.document,
                    cert.level,
                    cert.level.name_zh()
                ),
            ));
        }
        return Err(by_precedence(out));
    };
    if !out.is_empty() {
        return Err(by_precedence(out));
    }
    let slot_rule = match kind {
        SlotKind::Base => "base_slots",
        SlotKind::Extra => "extra_slots",
    };
    Ok(Decision {
        policy: policy.reference(),
        program: Program::SkillUpgrade,
        business_date: app.submitted_on,
        amount: Ruled { value: amount, rule: policy.rule(amount_rule) },
        funding: Ruled { value: rules.funding, rule: policy.rule("funding") },
        slot: Some(Ruled { value: Slot { kind, year, number }, rule: policy.rule(slot_rule) }),
        lines: Vec::new(),
    })
}

fn eligibility(rules: &EligibilityRules, person: &PersonEligibility) -> Option<Rejection> {
    let insured = person.insured_months.unwrap_or(0);
    if insured >= rules.insured_months_min
        || (rules.receiving_unemployment_benefit && person.receiving_unemployment_benefit)
    {
        return None;
    }
    let stated = match person.insured_months {
        Some(m) => format!("has been insured {m} months"),
        None => "has no insured months stated".to_string(),
    };
    let benefit = if rules.receiving_unemployment_benefit {
        ", or an unemployed person while receiving unemployment benefit"
    } else {
        ""
    };
    Some(Rejection::new(
        RejectionCode::NotEligible,
        "eligibility.insured_months",
        format!(
            "the applicant {stated} and is not receiving unemployment benefit; the subsidy is for an \
             employee insured at least {} months{benefit}",
            rules.insured_months_min
        ),
    ))
}

type SlotChoice = (SlotKind, Option<Money>, &'static str, i32, u32);

/// The slot the application takes, per the module documentation.
fn assign_slot(
    app: &SkillUpgradeApplication,
    history: &[PriorApplication],
    rules: &SkillUpgradeRules,
) -> Result<SlotChoice, Rejection> {
    let YearBasis::SubmissionDate = rules.annual.year;
    let SlotOrder::SubmissionOrder = rules.annual.slot_order;
    let year = app.submitted_on.year();
    let holds = |h: &&PriorApplication| {
        let standing = match h.status {
            Status::Pending => rules.annual.pending_holds_slot,
            s => s.stands(),
        };
        let counted = match &rules.grandfathering {
            Some(g) if h.submitted_on < g.before => g.counts_toward_annual_total,
            _ => true,
        };
        h.program == Program::SkillUpgrade && h.submitted_on.year() == year && standing && counted
    };
    let n = history.iter().filter(holds).count() as u32;
    let base = rules.annual.base_slots;
    let extra_slots = rules.extra.as_ref().map_or(0, |x| x.slots);
    let total = base + extra_slots;
    let retry = format!(
        "apply again from {}-01-01, or after one of this year's applications is withdrawn or rejected",
        year + 1
    );
    let cert = &app.certificate;
    if n < base {
        return Ok((SlotKind::Base, rules.amounts.get(cert.level), "amounts", year, n + 1));
    }
    if n >= total {
        return Err(Rejection::new(
            RejectionCode::AnnualLimitReached,
            "submitted_on",
            format!(
                "the applicant already has {n} skill-upgrade applications standing in {year} \
                 (submitted, approved or paid); at most {total} are subsidized per calendar year; {retry}"
            ),
        ));
    }
    let extra = rules.extra.as_ref().expect("n < total implies extra slots");
    let list = &extra.urgent_catalog.catalog;
    if !list.contains_occupation(&cert.occupation_code) {
        return Err(Rejection::new(
            RejectionCode::AnnualLimitReached,
            "certificate.occupation_code",
            format!(
                "the {base} base subsidy of {year} is taken by an earlier application; the remaining \
                 {} extra subsidies are only for occupations on the urgent-shortage list of {} ({}), \
                 and {} is not on it; {retry}",
                total - n,
                list.document,
                list.annex,
                cert.occupation_code
            ),
        ));
    }
    if let Some(region) = extra.certificate_issued_in {
        if !cert.issued_by.is_some_and(|by| region.contains(&by)) {
            let stated = match cert.issued_by {
                Some(by) => format!("this one was issued by {by}"),
                None => "the request does not say where it was issued".to_string(),
            };
            return Err(Rejection::new(
                RejectionCode::AnnualLimitReached,
                "certificate.issued_by",
                format!(
                    "the base subsidy of {year} is taken; the extra subsidies are only for \
                     certificates issued in {region} (我市核发), and {stated}; if it was issued \
                     there, give certificate.issued_by"
                ),
            ));
        }
    }
    Ok((SlotKind::Extra, extra.amounts.get(cert.level), "extra_amounts", year, n + 1))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::CatalogTexts;
    use crate::ids::IdNumber;

    pub(crate) const SHANDONG: &str =
        include_str!("../../policies/shandong-2024-skill-upgrade.toml");
    pub(crate) const JINING: &str = include_str!("../../policies/jining-2025-skill-upgrade.toml");
    pub(crate) const JINING_URGENT: &str =
        include_str!("../../policies/catalogs/jining-2025-urgent.toml");

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    pub(crate) fn policies() -> Vec<Policy> {
        let mut texts = CatalogTexts::new();
        texts.insert("catalogs/jining-2025-urgent.toml".into(), JINING_URGENT.into());
        vec![
            Policy::from_toml(SHANDONG).unwrap(),
            Policy::from_toml_with_catalogs(JINING, &texts).unwrap(),
        ]
    }

    const WELDER: &str = "6-18-02-04"; // on the Jining urgent list
    const BARBER: &str = "4-10-03-02"; // 美发师, not on it

    fn app(
        county: &str,
        submitted: &str,
        code: &str,
        level: &str,
        issued: &str,
    ) -> SkillUpgradeApplication {
        SkillUpgradeApplication {
            county: DivisionCode::parse(county).unwrap(),
            submitted_on: d(submitted),
            applicant: Applicant {
                id_number: IdNumber::parse("11010519491231002X").unwrap(),
                name: "张三".into(),
            },
            eligibility: PersonEligibility {
                insured_months: Some(26),
                receiving_unemployment_benefit: false,
            },
            certificate: Certificate {
                occupation_code: OccupationCode::parse(code).unwrap(),
                level: Level::parse(level).unwrap(),
                number: "S0000370800124".into(),
                issued_on: d(issued),
                issued_by: Some(DivisionCode::parse("370800").unwrap()),
            },
        }
    }

    fn prior(
        program: Program,
        code: &str,
        level: &str,
        submitted: &str,
        status: Status,
    ) -> PriorApplication {
        PriorApplication {
            program,
            subject: Subject::parse(code).unwrap(),
            level: Some(Level::parse(level).unwrap()),
            submitted_on: d(submitted),
            status,
            slot: None,
        }
    }

    fn su(code: &str, level: &str, submitted: &str, status: Status) -> PriorApplication {
        prior(Program::SkillUpgrade, code, level, submitted, status)
    }

    /// Selects the policy the way the ledger does, then decides.
    fn run(
        a: &SkillUpgradeApplication,
        history: &[PriorApplication],
    ) -> Result<Decision, Vec<Rejection>> {
        let policies = policies();
        let pool = DivisionCode::parse(&format!("{}00", &a.county.as_str()[..4])).unwrap();
        let policy =
            crate::select::select(&policies, Program::SkillUpgrade, pool, a.business_date())
                .map_err(|r| vec![r])?;
        decide(a, history, policy)
    }

    enum Expect {
        Pays(&'static str, &'static str, SlotKind, &'static str),
        Refused(RejectionCode, &'static str),
    }
    use Expect::*;

    #[test]
    fn decisions_follow_the_notices() {
        let weihai = "371002";
        let jining = "370811";
        let many_2024 = vec![
            su("6-18-01-01", "5", "2024-02-01", Status::Paid),
            su("6-18-01-02", "5", "2024-03-01", Status::Counted),
            su("6-18-02-01", "5", "2024-04-01", Status::Pending),
        ];
        let two_grandfathered = vec![
            su("6-18-01-01", "5", "2025-02-01", Status::Paid),
            su(BARBER, "4", "2025-04-10", Status::Counted),
        ];
        let cases: Vec<(&str, SkillUpgradeApplication, Vec<PriorApplication>, Expect)> = vec![
            (
                "Shandong 2024, level 4",
                app(weihai, "2024-08-01", BARBER, "4", "2024-05-01"),
                vec![],
                Pays("1500.00", "shandong-2024-skill-upgrade/amounts", SlotKind::Base, "shandong-2024-skill-upgrade"),
            ),
            (
                "exactly 12 months after the issue date",
                app(weihai, "2024-12-01", BARBER, "5", "2023-12-01"),
                vec![],
                Pays("1000.00", "shandong-2024-skill-upgrade/amounts", SlotKind::Base, "shandong-2024-skill-upgrade"),
            ),
            (
                "one day past 12 months",
                app(weihai, "2024-12-02", BARBER, "5", "2023-12-01"),
                vec![],
                Refused(RejectionCode::CertificateWindowExpired, "certificate.issued_on"),
            ),
            (
                "the 4th application of 2024",
                app(weihai, "2024-09-01", BARBER, "3", "2024-05-01"),
                many_2024.clone(),
                Refused(RejectionCode::AnnualLimitReached, "submitted_on"),
            ),
            (
                "a rejected application frees its slot",
                app(weihai, "2024-09-01", BARBER, "3", "2024-05-01"),
                {
                    let mut h = many_2024.clone();
                    h[2].status = Status::Rejected;
                    h
                },
                Pays("2000.00", "shandong-2024-skill-upgrade/amounts", SlotKind::Base, "shandong-2024-skill-upgrade"),
            ),
            (
                "level 2 has no standard",
                app(weihai, "2024-08-01", BARBER, "2", "2024-05-01"),
                vec![],
                Refused(RejectionCode::NoStandardForLevel, "certificate.level"),
            ),
            (
                "same occupation and level again",
                app(weihai, "2024-08-01", BARBER, "4", "2024-05-01"),
                vec![su(BARBER, "4", "2024-06-01", Status::Paid)],
                Refused(RejectionCode::OccupationLevelAlreadySubsidized, "certificate.occupation_code"),
            ),
            (
                "a higher level blocks a lower one",
                app(weihai, "2024-08-01", BARBER, "4", "2024-05-01"),
                vec![su(BARBER, "3", "2024-06-01", Status::Counted)],
                Refused(RejectionCode::HigherLevelAlreadySubsidized, "certificate.occupation_code"),
            ),
            (
                "a lower level does not block a higher one",
                app(weihai, "2024-08-01", BARBER, "3", "2024-05-01"),
                vec![su(BARBER, "4", "2024-06-01", Status::Paid)],
                Pays("2000.00", "shandong-2024-skill-upgrade/amounts", SlotKind::Base, "shandong-2024-skill-upgrade"),
            ),
            (
                "training subsidy for the same occupation and level",
                app(weihai, "2024-08-01", BARBER, "4", "2024-05-01"),
                vec![prior(Program::VocationalTraining, BARBER, "4", "2024-06-01", Status::Paid)],
                Refused(RejectionCode::TrainingAndSkillUpgradeExclusive, "certificate.occupation_code"),
            ),
            (
                "retroactive: submitted before the notice of 2024-07-09",
                app(weihai, "2024-03-01", BARBER, "5", "2024-01-15"),
                vec![],
                Pays("1000.00", "shandong-2024-skill-upgrade/amounts", SlotKind::Base, "shandong-2024-skill-upgrade"),
            ),
            (
                "not insured long enough, not receiving benefit",
                {
                    let mut a = app(weihai, "2024-08-01", BARBER, "4", "2024-05-01");
                    a.eligibility.insured_months = Some(11);
                    a
                },
                vec![],
                Refused(RejectionCode::NotEligible, "eligibility.insured_months"),
            ),
            (
                "receiving unemployment benefit qualifies",
                {
                    let mut a = app(weihai, "2024-08-01", BARBER, "4", "2024-05-01");
                    a.eligibility = PersonEligibility { insured_months: None, receiving_unemployment_benefit: true };
                    a
                },
                vec![],
                Pays("1500.00", "shandong-2024-skill-upgrade/amounts", SlotKind::Base, "shandong-2024-skill-upgrade"),
            ),
            (
                "Weihai 2025: no policy in force",
                app(weihai, "2025-02-01", BARBER, "4", "2024-12-01"),
                vec![],
                Refused(RejectionCode::NoPolicyInForce, "submitted_on"),
            ),
            (
                "2023: no policy in force",
                app(weihai, "2023-12-31", BARBER, "4", "2023-12-01"),
                vec![],
                Refused(RejectionCode::NoPolicyInForce, "submitted_on"),
            ),
            (
                "Jining 2025-04-15: the 2024 rules still apply",
                app(jining, "2025-04-15", BARBER, "4", "2025-01-10"),
                vec![],
                Pays("1500.00", "shandong-2024-skill-upgrade/amounts", SlotKind::Base, "shandong-2024-skill-upgrade"),
            ),
            (
                "Jining 2025: the first application, urgent list, takes the base slot at the standard amount",
                app(jining, "2025-05-06", WELDER, "4", "2025-03-01"),
                vec![],
                Pays("1500.00", "jining-2025-skill-upgrade/amounts", SlotKind::Base, "jining-2025-skill-upgrade"),
            ),
            (
                "Jining 2025: the second, urgent, takes an extra slot at the extra amount",
                app(jining, "2025-05-06", WELDER, "4", "2025-03-01"),
                vec![su(BARBER, "4", "2025-04-20", Status::Paid)],
                Pays("500.00", "jining-2025-skill-upgrade/extra_amounts", SlotKind::Extra, "jining-2025-skill-upgrade"),
            ),
            (
                "Jining 2025: the second, not urgent, is refused",
                app(jining, "2025-05-06", BARBER, "4", "2025-03-01"),
                vec![su(WELDER, "4", "2025-04-20", Status::Paid)],
                Refused(RejectionCode::AnnualLimitReached, "certificate.occupation_code"),
            ),
            (
                "Jining 2025: two grandfathered applications, then an urgent one gets the last extra slot",
                app(jining, "2025-05-06", WELDER, "5", "2025-03-01"),
                two_grandfathered.clone(),
                Pays("300.00", "jining-2025-skill-upgrade/extra_amounts", SlotKind::Extra, "jining-2025-skill-upgrade"),
            ),
            (
                "Jining 2025: two grandfathered applications, then a non-urgent one is refused",
                app(jining, "2025-05-06", "4-10-03-01", "5", "2025-03-01"),
                two_grandfathered.clone(),
                Refused(RejectionCode::AnnualLimitReached, "certificate.occupation_code"),
            ),
            (
                "Jining 2025: three grandfathered applications use the whole year",
                app(jining, "2025-05-06", WELDER, "3", "2025-03-01"),
                {
                    let mut h = two_grandfathered.clone();
                    h.push(su("6-18-01-02", "5", "2025-04-15", Status::Pending));
                    h
                },
                Refused(RejectionCode::AnnualLimitReached, "submitted_on"),
            ),
            (
                "Jining 2025: an urgent certificate issued elsewhere cannot use an extra slot",
                {
                    let mut a = app(jining, "2025-05-06", WELDER, "4", "2025-03-01");
                    a.certificate.issued_by = Some(DivisionCode::parse("371000").unwrap());
                    a
                },
                vec![su(BARBER, "4", "2025-04-20", Status::Paid)],
                Refused(RejectionCode::AnnualLimitReached, "certificate.issued_by"),
            ),
            (
                "Jining 2025: 2024 applications do not count in 2025",
                app(jining, "2025-05-06", BARBER, "5", "2025-03-01"),
                many_2024.clone(),
                Pays("1000.00", "jining-2025-skill-upgrade/amounts", SlotKind::Base, "jining-2025-skill-upgrade"),
            ),
            (
                "Jining 2025: level 2 on the urgent list has no standard",
                app(jining, "2025-05-06", WELDER, "2", "2025-03-01"),
                vec![su(BARBER, "4", "2025-04-20", Status::Paid)],
                Refused(RejectionCode::NoStandardForLevel, "certificate.level"),
            ),
        ];
        for (name, a, history, expect) in cases {
            let got = run(&a, &history);
            match (expect, got) {
                (Pays(amount, rule, kind, policy), Ok(decision)) => {
                    assert_eq!(decision.amount.value.to_string(), amount, "{name}");
                    assert_eq!(decision.amount.rule.as_str(), rule, "{name}");
                    assert_eq!(decision.slot.unwrap().value.kind, kind, "{name}");
                    assert_eq!(decision.policy.id.as_str(), policy, "{name}");
                    assert_eq!(decision.funding.value, Funding::UnemploymentInsurance, "{name}");
                }
                (Refused(code, field), Err(rejections)) => {
                    assert_eq!(rejections[0].code, code, "{name}: {rejections:?}");
                    assert_eq!(rejections[0].field, field, "{name}: {rejections:?}");
                    assert!(!rejections[0].message.is_empty(), "{name}");
                }
                (_, got) => panic!("{name}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn rejections_come_in_precedence_order() {
        // Expired, repeated and over the limit all at once: the lasting reason
        // (expired certificate) comes before the passing one (annual limit).
        let mut a = app("371002", "2024-12-02", BARBER, "4", "2023-12-01");
        a.eligibility.insured_months = Some(3);
        let mut history = vec![su(BARBER, "4", "2024-01-05", Status::Paid)];
        history.push(su("6-18-01-02", "5", "2024-03-01", Status::Counted));
        history.push(su("6-18-02-01", "5", "2024-04-01", Status::Pending));
        let codes: Vec<_> = run(&a, &history).unwrap_err().iter().map(|r| r.code).collect();
        assert_eq!(
            codes,
            [
                RejectionCode::NotEligible,
                RejectionCode::CertificateWindowExpired,
                RejectionCode::OccupationLevelAlreadySubsidized,
                RejectionCode::AnnualLimitReached,
            ]
        );
    }

    #[test]
    fn slots_are_numbered_within_the_year() {
        let a = app("370811", "2025-06-01", WELDER, "3", "2025-03-01");
        let history = vec![
            su(BARBER, "4", "2025-04-20", Status::Paid),
            su("6-18-01-01", "5", "2025-05-01", Status::Pending),
        ];
        let slot = run(&a, &history).unwrap().slot.unwrap();
        assert_eq!(
            (slot.value.kind, slot.value.year, slot.value.number),
            (SlotKind::Extra, 2025, 3)
        );
        assert_eq!(slot.rule.as_str(), "jining-2025-skill-upgrade/extra_slots");
    }

    #[test]
    fn inconsistent_requests_fail_validation_first() {
        let mut a = app("371002", "2024-08-01", BARBER, "2", "2024-09-01");
        a.certificate.number = " ".into();
        let rejections = run(&a, &[]).unwrap_err();
        let fields: Vec<_> = rejections.iter().map(|r| (r.code, r.field.as_str())).collect();
        assert_eq!(
            fields,
            [
                (RejectionCode::ValidationFailed, "certificate.issued_on"),
                (RejectionCode::ValidationFailed, "certificate.number"),
            ]
        );
    }

    #[test]
    fn a_policy_of_another_program_is_not_applied() {
        let other = Policy::from_toml(crate::policy::tests::QUOTA).unwrap();
        let a = app("371002", "2024-08-01", BARBER, "4", "2024-05-01");
        let r = decide(&a, &[], &other).unwrap_err();
        assert_eq!(r[0].code, RejectionCode::NoPolicyInForce);
    }

    /// A certificate's code must be a 2022 occupation, unless the policy's own annex (the
    /// urgent list) lists it as the notice writes it. Liaocheng's training annex lists
    /// 2-02-10-09 人工智能算法测试员 and 3-02-02-00 保卫管理员, which the 2022 table does not
    /// have; that annex is not a skill-upgrade policy's, so here they are refused.
    #[test]
    fn a_code_outside_the_2022_classification_needs_the_policys_own_annex() {
        for (county, submitted) in [("371002", "2024-08-01"), ("370811", "2025-06-01")] {
            for (code, problem) in [
                ("2-02-10-09", "occupation 2-02-10-09 does not exist in small group 2-02-10"),
                ("3-02-02-00", "occupation 3-02-02-00 does not exist in small group 3-02-02"),
                ("9-99-99-99", "major group 9 does not exist"),
                ("6-98-01-01", "middle group 6-98 does not exist"),
                ("6-18-09-01", "small group 6-18-09 does not exist"),
            ] {
                let a = app(county, submitted, code, "4", submitted);
                let e = run(&a, &[]).unwrap_err();
                assert_eq!(
                    (e[0].code, e[0].field.as_str()),
                    (RejectionCode::UnknownOccupation, "certificate.occupation_code"),
                    "{county} {code}"
                );
                assert!(e[0].message.contains(problem), "{county} {code}: {}", e[0].message);
            }
            // 3-02-02-01 is 保卫管理员 in the 2022 table; 4-07-03-02 劳动关系协调师.
            for code in ["3-02-02-01", "4-07-03-02", "4-04-05-05"] {
                let a = app(county, submitted, code, "4", submitted);
                assert!(run(&a, &[]).is_ok(), "{county} {code}: {:?}", run(&a, &[]));
            }
        }
        // A Jining urgent list that lists 2-02-10-09 (in place of 焊工): then it is
        // accepted under that policy, as its annex writes it, and takes an extra slot.
        let mut texts = CatalogTexts::new();
        let urgent = JINING_URGENT.replacen("code = \"6-18-02-04\"", "code = \"2-02-10-09\"", 1);
        assert_ne!(urgent, JINING_URGENT);
        texts.insert("catalogs/jining-2025-urgent.toml".into(), urgent);
        let listing = Policy::from_toml_with_catalogs(JINING, &texts).unwrap();
        let a = app("370811", "2025-06-01", "2-02-10-09", "4", "2025-05-01");
        assert!(decide(&a, &[], &listing).is_ok(), "{:?}", decide(&a, &[], &listing));
        let history = [su(BARBER, "4", "2025-04-20", Status::Paid)];
        let slot = decide(&a, &history, &listing).unwrap().slot.unwrap();
        assert_eq!(slot.value.kind, SlotKind::Extra);
        let real = &policies()[1];
        assert_eq!(decide(&a, &[], real).unwrap_err()[0].code, RejectionCode::UnknownOccupation);
    }

    /// 在发证日期12个月以内: the window's end day is a setting.
    #[test]
    fn the_windows_end_day_is_a_setting() {
        let mut rules =
            CertificateRules { window_months: 12, window_end: WindowEnd::SameDateIncluded };
        assert_eq!(rules.deadline(d("2024-03-01")), d("2025-03-01"));
        assert_eq!(rules.deadline(d("2024-02-29")), d("2025-02-28"));
        rules.window_end = WindowEnd::DayBefore;
        assert_eq!(rules.deadline(d("2024-03-01")), d("2025-02-28"));
    }
}
