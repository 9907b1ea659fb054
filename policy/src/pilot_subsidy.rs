//! The other expansion-pilot subsidies (职业技能评价补贴, 岗位补贴, 社会保险补贴)
//! [鲁人社发〔2024〕8号 item 六].
//!
//! Their standards follow the provincial employment-subsidy rules
//! (《山东省就业补助资金管理办法》), which the notices do not quote: the office
//! enters the amount with the document it rests on (`basis`). What the ledger
//! enforces is that they are expansion-pilot money, so they count against the
//! pool's cap at review.
//!
//! They are decided under the **expansion-quota policy** in force on the
//! submission date, not a policy of their own: that policy is what makes the
//! pilot exist ("政策执行期限至2024年12月31日"). **Interpretation**: a pilot
//! subsidy submitted when no expansion-quota policy is in force (2025, as
//! shipped) is refused with `no_policy_in_force`; a province or city that
//! continues the pilot publishes a quota policy for the new period, and the
//! same code then accepts it.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::decision::{Decision, Funding, Ruled};
use crate::ids::{CreditCode, DivisionCode, IdNumber};
use crate::money::Money;
use crate::policy::{Policy, Program, Rules};
use crate::quota::SpendingCategory;
use crate::rejection::{Rejection, RejectionCode};

/// The kind of pilot subsidy (`category` of the request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PilotCategory {
    /// 职业技能评价补贴
    SkillEvaluation,
    /// 岗位补贴
    Job,
    /// 社会保险补贴
    SocialInsurance,
}

impl PilotCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            PilotCategory::SkillEvaluation => "skill_evaluation",
            PilotCategory::Job => "job",
            PilotCategory::SocialInsurance => "social_insurance",
        }
    }

    pub fn parse(s: &str) -> Option<PilotCategory> {
        [PilotCategory::SkillEvaluation, PilotCategory::Job, PilotCategory::SocialInsurance]
            .into_iter()
            .find(|c| c.as_str() == s)
    }

    /// The quota policy's name for this spending.
    pub fn spending(self) -> SpendingCategory {
        match self {
            PilotCategory::SkillEvaluation => SpendingCategory::SkillEvaluation,
            PilotCategory::Job => SpendingCategory::JobSubsidy,
            PilotCategory::SocialInsurance => SpendingCategory::SocialInsuranceSubsidy,
        }
    }
}

/// Who receives the subsidy: a person (skill evaluation) or a unit (job and
/// social-insurance subsidies are often paid to the employer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, try_from = "BeneficiaryBody")]
pub enum Beneficiary {
    Person { id_number: IdNumber, name: String },
    Unit { credit_code: CreditCode, name: String },
}

/// The request's form, so that a bad identifier is reported at its own field
/// (`beneficiary.id_number`, whose value is never echoed).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BeneficiaryBody {
    id_number: Option<IdNumber>,
    credit_code: Option<CreditCode>,
    name: String,
}

impl TryFrom<BeneficiaryBody> for Beneficiary {
    type Error = &'static str;

    fn try_from(b: BeneficiaryBody) -> Result<Self, Self::Error> {
        match (b.id_number, b.credit_code) {
            (Some(id_number), None) => Ok(Beneficiary::Person { id_number, name: b.name }),
            (None, Some(credit_code)) => Ok(Beneficiary::Unit { credit_code, name: b.name }),
            _ => Err("give either `id_number` (a person) or `credit_code` (a unit), not both"),
        }
    }
}

impl Beneficiary {
    pub fn name(&self) -> &str {
        match self {
            Beneficiary::Person { name, .. } | Beneficiary::Unit { name, .. } => name,
        }
    }
}

/// A `pilot_subsidy` request body, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PilotSubsidyApplication {
    pub category: PilotCategory,
    pub county: DivisionCode,
    pub submitted_on: NaiveDate,
    pub beneficiary: Beneficiary,
    pub amount: Money,
    /// The document the amount rests on (a city's implementing rules, a
    /// calculation sheet's number).
    pub basis: String,
}

impl PilotSubsidyApplication {
    pub fn business_date(&self) -> NaiveDate {
        self.submitted_on
    }
}

/// Decides a pilot subsidy under the expansion-quota policy in force on the
/// submission date (`quota_policy`, chosen by [`crate::select::select`] with
/// [`Program::ExpansionQuota`]): the amount as entered, always
/// `expansion_pilot`. The cap itself is checked at review, against the
/// pool's usage then.
pub fn decide(
    app: &PilotSubsidyApplication,
    quota_policy: &Policy,
) -> Result<Decision, Vec<Rejection>> {
    let Rules::ExpansionQuota(rules) = &quota_policy.rules else {
        return Err(vec![Rejection::new(
            RejectionCode::NoPolicyInForce,
            "submitted_on",
            format!("{} is not an expansion-quota policy", quota_policy.id),
        )]);
    };
    let mut out = Vec::new();
    if app.basis.trim().is_empty() {
        out.push(Rejection::new(
            RejectionCode::ValidationFailed,
            "basis",
            "name the document the amount rests on (the provincial employment-subsidy rules \
             set these standards; the ledger records which one the office applied)",
        ));
    }
    if app.beneficiary.name().trim().is_empty() {
        out.push(Rejection::new(
            RejectionCode::ValidationFailed,
            "beneficiary.name",
            "must not be empty",
        ));
    }
    if !rules.categories.contains(&app.category.spending()) {
        out.push(Rejection::new(
            RejectionCode::NotEligible,
            "category",
            format!(
                "{} does not fund {} subsidies in this period",
                quota_policy.id,
                app.category.as_str()
            ),
        ));
    }
    if !out.is_empty() {
        out.sort_by_key(|r| r.code);
        return Err(out);
    }
    Ok(Decision {
        policy: quota_policy.reference(),
        program: Program::PilotSubsidy,
        business_date: app.submitted_on,
        amount: Ruled { value: app.amount, rule: quota_policy.rule("entered_amount") },
        funding: Ruled { value: Funding::ExpansionPilot, rule: quota_policy.rule("categories") },
        slot: None,
        lines: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::select;

    const QUOTA: &str = include_str!("../../policies/shandong-2024-expansion-quota.toml");

    fn app(submitted_on: &str, body: &str) -> PilotSubsidyApplication {
        serde_json::from_str(&format!(
            r#"{{"category":"job","county":"370811","submitted_on":"{submitted_on}",{body}}}"#
        ))
        .unwrap()
    }

    fn unit(submitted_on: &str) -> PilotSubsidyApplication {
        app(
            submitted_on,
            r#""beneficiary":{"credit_code":"91370800MA3C1234XP","name":"济宁某某餐饮有限公司"},"amount":"2400.00","basis":"鲁人社发〔2024〕8号 六; 岗位补贴核定表 2024-017""#,
        )
    }

    #[test]
    fn a_2024_job_subsidy_is_expansion_pilot_money_at_the_amount_entered() {
        let policy = Policy::from_toml(QUOTA).unwrap();
        let pool = DivisionCode::parse("370800").unwrap();
        let a = unit("2024-09-02");
        let chosen =
            select(std::slice::from_ref(&policy), Program::ExpansionQuota, pool, a.submitted_on)
                .unwrap();
        let d = decide(&a, chosen).unwrap();
        assert_eq!(d.amount.value.to_string(), "2400.00");
        assert_eq!(d.funding.value, Funding::ExpansionPilot);
        assert_eq!(d.policy.document, "鲁人社发〔2024〕8号");
        assert_eq!(d.program, Program::PilotSubsidy);
    }

    #[test]
    fn in_2025_no_pilot_is_in_force_and_the_claim_is_refused() {
        let policy = Policy::from_toml(QUOTA).unwrap();
        let pool = DivisionCode::parse("370800").unwrap();
        let r = select(
            std::slice::from_ref(&policy),
            Program::ExpansionQuota,
            pool,
            unit("2025-01-02").submitted_on,
        )
        .unwrap_err();
        assert_eq!(r.code, RejectionCode::NoPolicyInForce);
    }

    #[test]
    fn a_person_beneficiary_parses_and_a_missing_basis_is_refused() {
        let policy = Policy::from_toml(QUOTA).unwrap();
        let a = app(
            "2024-09-02",
            r#""beneficiary":{"id_number":"370811199001011236","name":"张三"},"amount":"300.00","basis":" ""#,
        );
        assert!(matches!(a.beneficiary, Beneficiary::Person { .. }));
        let r = decide(&a, &policy).unwrap_err();
        assert_eq!((r[0].code, r[0].field.as_str()), (RejectionCode::ValidationFailed, "basis"));
    }

    #[test]
    fn amounts_with_three_decimals_or_zero_do_not_parse() {
        for amount in ["\"0.00\"", "\"10.001\"", "10"] {
            let text = format!(
                r#"{{"category":"job","county":"370811","submitted_on":"2024-09-02","beneficiary":{{"credit_code":"91370800MA3C1234XP","name":"x"}},"amount":{amount},"basis":"b"}}"#
            );
            assert!(serde_json::from_str::<PilotSubsidyApplication>(&text).is_err(), "{amount}");
        }
    }
}
