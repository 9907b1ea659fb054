//! On-the-job training subsidy (以工代训), paid to an enterprise per newly
//! hired person trained on the job [济政办函〔2021〕16号 item 10].
//!
//! Small, medium and micro enterprises that newly hire in 2021 (the new hire
//! date is the person's first insurance with the enterprise that year) get
//! 500 yuan per person per month for at most 6 months; in foreign trade,
//! accommodation and catering, culture and tourism, transport, and wholesale
//! and retail, large enterprises too. Months beyond the maximum, counting the
//! person's months in the enterprise's earlier applications, are not paid
//! (the decision says so per trainee); a trainee who has had all of them is
//! refused.

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::checks;
use crate::decision::{Decision, Funding, Line, Payee, Ruled};
use crate::file_error::FieldPath;
use crate::history::Status;
use crate::ids::{CreditCode, DivisionCode, IdNumber};
use crate::job_stabilization::EnterpriseSize;
use crate::money::{Amount, Money};
use crate::policy::{Policy, Program, Rules};
use crate::rejection::{by_precedence, Rejection, RejectionCode};

/// Bound on trainees in one application.
pub const TRAINEES_MAX: usize = 10_000;
/// Bound on `months_max`, against a typo.
pub const MONTHS_MAX_LIMIT: u32 = 24;

/// Parameters of an on-the-job training policy. File keys:
///
/// ```toml
/// funding = "unemployment_insurance"
/// monthly_amount = "500.00"
/// months_max = 6
/// new_hire_from = 2021-01-01
/// new_hire_until = 2021-12-31
/// eligible_sizes = ["sme"]
/// large_enterprise_sectors = ["foreign_trade", …]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnTheJobTrainingRules {
    pub funding: Funding,
    pub monthly_amount: Money,
    pub months_max: u32,
    #[serde(with = "crate::dates")]
    pub new_hire_from: NaiveDate,
    #[serde(with = "crate::dates")]
    pub new_hire_until: NaiveDate,
    /// Sizes eligible in any sector.
    pub eligible_sizes: Vec<EnterpriseSize>,
    /// Sectors where large enterprises are eligible too.
    pub large_enterprise_sectors: Vec<Sector>,
}

/// Sectors named by the notice (受疫情影响较大的行业), and the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Sector {
    /// 外贸
    ForeignTrade,
    /// 住宿餐饮
    AccommodationCatering,
    /// 文化旅游
    CultureTourism,
    /// 交通运输
    Transport,
    /// 批发零售
    WholesaleRetail,
    Other,
}

impl OnTheJobTrainingRules {
    pub(crate) fn problems(&self) -> Vec<(FieldPath, String)> {
        let mut out = Vec::new();
        if !(1..=MONTHS_MAX_LIMIT).contains(&self.months_max) {
            out.push((FieldPath::parse("months_max"), format!("must be 1 to {MONTHS_MAX_LIMIT}")));
        }
        if self.new_hire_until < self.new_hire_from {
            out.push((
                FieldPath::parse("new_hire_until"),
                "is before new_hire_from; both dates are inclusive".into(),
            ));
        }
        if self.eligible_sizes.is_empty() {
            out.push((FieldPath::parse("eligible_sizes"), "must name at least one size".into()));
        }
        if self.large_enterprise_sectors.contains(&Sector::Other) {
            out.push((
                FieldPath::parse("large_enterprise_sectors"),
                "\"other\" is not a sector; name the sectors".into(),
            ));
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TrainingEnterprise {
    pub credit_code: CreditCode,
    pub name: String,
    pub size: EnterpriseSize,
    pub sector: Sector,
}

/// A newly hired person trained on the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Trainee {
    pub id_number: IdNumber,
    pub name: String,
    /// First insured with this enterprise in the year (the hire date).
    pub first_insured_with_enterprise_on: NaiveDate,
    /// Months trained, claimed in this application.
    pub months: u32,
}

/// An on-the-job training request body, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OnTheJobTrainingApplication {
    pub county: DivisionCode,
    pub submitted_on: NaiveDate,
    pub enterprise: TrainingEnterprise,
    pub trainees: Vec<Trainee>,
}

impl OnTheJobTrainingApplication {
    pub fn business_date(&self) -> NaiveDate {
        self.submitted_on
    }
}

/// Months already claimed for a person in the enterprise's earlier
/// applications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorTraineeMonths {
    pub id_number: IdNumber,
    pub months: u32,
    pub status: Status,
}

/// Decides an on-the-job training application; `history` lists the months
/// claimed per person in the enterprise's earlier applications.
pub fn decide(
    app: &OnTheJobTrainingApplication,
    history: &[PriorTraineeMonths],
    policy: &Policy,
) -> Result<Decision, Vec<Rejection>> {
    let Rules::OnTheJobTraining(rules) = &policy.rules else {
        return Err(vec![checks::wrong_program(policy, Program::OnTheJobTraining)]);
    };
    let mut out = Vec::new();
    if app.trainees.is_empty() || app.trainees.len() > TRAINEES_MAX {
        out.push(checks::validation(
            "trainees",
            format!("give 1 to {TRAINEES_MAX} trainees; this request has {}", app.trainees.len()),
        ));
    }
    let mut seen = HashSet::new();
    for (i, t) in app.trainees.iter().enumerate() {
        if !seen.insert(&t.id_number) {
            out.push(checks::validation(
                &format!("trainees[{i}].id_number"),
                format!("{} is listed twice; give each trainee once", t.id_number.masked()),
            ));
        }
        if t.months == 0 {
            out.push(checks::validation(
                &format!("trainees[{i}].months"),
                "must be at least 1 month",
            ));
        }
        if t.first_insured_with_enterprise_on > app.submitted_on {
            out.push(checks::validation(
                &format!("trainees[{i}].first_insured_with_enterprise_on"),
                "is after the submission date; check the date",
            ));
        }
    }
    if !out.is_empty() {
        return Err(by_precedence(out));
    }
    if let Some(r) = checks::in_force(policy, &app.county, app.submitted_on) {
        return Err(vec![r]);
    }
    let e = &app.enterprise;
    let sector_rule = if rules.eligible_sizes.contains(&e.size) {
        None
    } else if rules.large_enterprise_sectors.contains(&e.sector) {
        Some("large_enterprise_sectors")
    } else {
        out.push(Rejection::new(
            RejectionCode::NotEligible,
            "enterprise.sector",
            format!(
                "{} covers small, medium and micro enterprises, and large enterprises only in foreign \
                 trade, accommodation and catering, culture and tourism, transport, and wholesale and \
                 retail; this is a large enterprise in another sector",
                policy.document
            ),
        ));
        None
    };
    let mut lines = Vec::new();
    let mut months_paid: u32 = 0;
    for (i, t) in app.trainees.iter().enumerate() {
        let hired = t.first_insured_with_enterprise_on;
        if hired < rules.new_hire_from || hired > rules.new_hire_until {
            out.push(Rejection::new(
                RejectionCode::NotEligible,
                format!("trainees[{i}].first_insured_with_enterprise_on"),
                format!(
                    "{} was first insured with the enterprise on {hired}; only people newly hired from {} \
                     to {} are covered; leave this trainee out",
                    t.id_number.masked(),
                    rules.new_hire_from,
                    rules.new_hire_until
                ),
            ));
            continue;
        }
        let before: u32 = history
            .iter()
            .filter(|h| h.id_number == t.id_number && h.status.stands())
            .map(|h| h.months)
            .sum();
        let remaining = rules.months_max.saturating_sub(before);
        if remaining == 0 {
            out.push(Rejection::new(
                RejectionCode::NotEligible,
                format!("trainees[{i}].id_number"),
                format!(
                    "{} has already been claimed for {before} months; the subsidy is for at most {} \
                     months per person; leave this trainee out",
                    t.id_number.masked(),
                    rules.months_max
                ),
            ));
            continue;
        }
        let paid = t.months.min(remaining);
        months_paid += paid;
        let amount =
            Amount::from_decimal(rules.monthly_amount.value() * rust_decimal::Decimal::from(paid))
                .expect("money times months");
        let (basis, rule) = if paid < t.months {
            (
                format!(
                    "{}: {paid} of {} months claimed ({before} claimed before, at most {}) × {}",
                    t.id_number.masked(),
                    t.months,
                    rules.months_max,
                    rules.monthly_amount
                ),
                "months_max",
            )
        } else {
            (
                format!("{}: {paid} months × {}", t.id_number.masked(), rules.monthly_amount),
                "monthly_amount",
            )
        };
        lines.push(Line { payee: Payee::Applicant, basis, amount, rule: policy.rule(rule) });
    }
    if !out.is_empty() {
        return Err(by_precedence(out));
    }
    let total: Amount = lines.iter().map(|l| l.amount).sum();
    let amount = total.to_money().expect("at least one trainee with at least one month");
    // Kept on in release: the lines must add up to the amount paid.
    assert_eq!(
        total.value(),
        rules.monthly_amount.value() * rust_decimal::Decimal::from(months_paid)
    );
    Ok(Decision {
        policy: policy.reference(),
        program: Program::OnTheJobTraining,
        business_date: app.submitted_on,
        amount: Ruled { value: amount, rule: policy.rule(sector_rule.unwrap_or("monthly_amount")) },
        funding: Ruled { value: rules.funding, rule: policy.rule("funding") },
        slot: None,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JINAN: &str = include_str!("../../policies/jinan-2021-on-the-job-training.toml");

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn id(first_17: &str) -> IdNumber {
        IdNumber::parse(&format!("{first_17}{}", IdNumber::check_char_for(first_17).unwrap()))
            .unwrap()
    }

    fn trainee(n: u8, hired: &str, months: u32) -> Trainee {
        Trainee {
            id_number: id(&format!("37010219950101{n:03}")),
            name: "王五".into(),
            first_insured_with_enterprise_on: d(hired),
            months,
        }
    }

    fn app(
        size: EnterpriseSize,
        sector: Sector,
        trainees: Vec<Trainee>,
    ) -> OnTheJobTrainingApplication {
        let first = "91370100MA3C1234X";
        OnTheJobTrainingApplication {
            county: DivisionCode::parse("370102").unwrap(),
            submitted_on: d("2021-11-15"),
            enterprise: TrainingEnterprise {
                credit_code: CreditCode::parse(&format!(
                    "{first}{}",
                    CreditCode::check_char_for(first).unwrap()
                ))
                .unwrap(),
                name: "某餐饮有限公司".into(),
                size,
                sector,
            },
            trainees,
        }
    }

    #[test]
    fn decisions_follow_item_10() {
        use EnterpriseSize::*;
        let policy = Policy::from_toml(JINAN).unwrap();
        let ok = |a: &OnTheJobTrainingApplication, h: &[PriorTraineeMonths]| {
            decide(a, h, &policy).map(|d| (d.amount.value.to_string(), d.amount.rule.to_string()))
        };
        let first = |a: &OnTheJobTrainingApplication, h: &[PriorTraineeMonths]| {
            let r = decide(a, h, &policy).unwrap_err();
            (r[0].code, r[0].field.clone())
        };

        let sme =
            app(Sme, Sector::Other, vec![trainee(1, "2021-03-01", 6), trainee(2, "2021-05-10", 4)]);
        assert_eq!(
            ok(&sme, &[]).unwrap(),
            ("5000.00".into(), "jinan-2021-on-the-job-training/monthly_amount".into())
        );

        let large_catering =
            app(Large, Sector::AccommodationCatering, vec![trainee(1, "2021-03-01", 2)]);
        assert_eq!(
            ok(&large_catering, &[]).unwrap().1,
            "jinan-2021-on-the-job-training/large_enterprise_sectors"
        );

        let large_other = app(Large, Sector::Other, vec![trainee(1, "2021-03-01", 2)]);
        assert_eq!(
            first(&large_other, &[]),
            (RejectionCode::NotEligible, "enterprise.sector".into())
        );

        let hired_2020 =
            app(Sme, Sector::Other, vec![trainee(1, "2021-03-01", 2), trainee(2, "2020-12-31", 2)]);
        assert_eq!(
            first(&hired_2020, &[]),
            (RejectionCode::NotEligible, "trainees[1].first_insured_with_enterprise_on".into())
        );

        // 8 months claimed: 6 paid, and the line says why.
        let long = app(Sme, Sector::Other, vec![trainee(1, "2021-03-01", 8)]);
        let decision = decide(&long, &[], &policy).unwrap();
        assert_eq!(decision.amount.value.to_string(), "3000.00");
        assert_eq!(decision.lines[0].rule.as_str(), "jinan-2021-on-the-job-training/months_max");
        assert!(
            decision.lines[0].basis.starts_with("370102********"),
            "{}",
            decision.lines[0].basis
        );

        // 4 months claimed before: 2 left.
        let before = |status| PriorTraineeMonths {
            id_number: trainee(1, "2021-03-01", 1).id_number,
            months: 4,
            status,
        };
        assert_eq!(ok(&long, &[before(Status::Paid)]).unwrap().0, "1000.00");
        assert_eq!(ok(&long, &[before(Status::Rejected)]).unwrap().0, "3000.00");
        let six = PriorTraineeMonths { months: 6, ..before(Status::Counted) };
        assert_eq!(
            first(&long, &[six]),
            (RejectionCode::NotEligible, "trainees[0].id_number".into())
        );

        let twice =
            app(Sme, Sector::Other, vec![trainee(1, "2021-03-01", 2), trainee(1, "2021-03-01", 2)]);
        assert_eq!(
            first(&twice, &[]),
            (RejectionCode::ValidationFailed, "trainees[1].id_number".into())
        );

        let mut late = app(Sme, Sector::Other, vec![trainee(1, "2021-03-01", 2)]);
        late.submitted_on = d("2022-01-04");
        assert_eq!(first(&late, &[]), (RejectionCode::NoPolicyInForce, "submitted_on".into()));
    }
}
