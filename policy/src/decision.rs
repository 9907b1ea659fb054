//! What a decision returns: the amount, the slot, the funding source, each
//! with the rule that set it, and the policy applied.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{CreditCode, PolicyId};
use crate::money::{Amount, Money};
use crate::policy::Program;

/// The rule that set a value: `<policy id>/<rule>`, e.g.
/// `jining-2025-skill-upgrade/extra_amounts`. Rule names are stable; the
/// policy file's comments say which sentence of the notice each one is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuleId(String);

impl RuleId {
    pub fn new(policy: &PolicyId, rule: &str) -> Self {
        RuleId(format!("{policy}/{rule}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value and the rule that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ruled<T> {
    pub value: T,
    pub rule: RuleId,
}

/// The policy a decision applied, as a clerk would cite it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRef {
    pub id: PolicyId,
    /// Document number, e.g. `鲁人社发〔2024〕8号`.
    pub document: String,
    /// Item of the document, e.g. `四`.
    pub item: String,
}

/// Which money pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Funding {
    /// The unemployment-insurance fund under the expansion pilot
    /// (扩大失业保险基金支出范围试点): counts against the pool's 15% quota.
    ExpansionPilot,
    /// Employment subsidy funds (就业补助资金): not from the insurance fund.
    EmploymentSubsidy,
    /// Ordinary unemployment-insurance expenditure (skill-upgrade subsidies,
    /// job-stabilization refunds): does not count against the quota.
    UnemploymentInsurance,
}

impl Funding {
    pub fn as_str(self) -> &'static str {
        match self {
            Funding::ExpansionPilot => "expansion_pilot",
            Funding::EmploymentSubsidy => "employment_subsidy",
            Funding::UnemploymentInsurance => "unemployment_insurance",
        }
    }

    /// Whether this money counts against the expansion quota.
    pub fn counts_against_quota(self) -> bool {
        self == Funding::ExpansionPilot
    }
}

/// An annual slot (技能提升补贴 per person per calendar year).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Slot {
    pub kind: SlotKind,
    /// The policy year: the calendar year of the submission date.
    pub year: i32,
    /// 1-based position among the person's slot-holding applications of the
    /// year at the time of the decision.
    pub number: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// One of the ordinary subsidies of the year, at the standard amounts.
    Base,
    /// One of the additional subsidies (Jining 2025: urgent-list occupations
    /// only), at the extra amounts.
    Extra,
}

/// Who receives a part of the amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payee {
    /// The applicant (person or enterprise) itself.
    Applicant,
    /// The host employer of dispatched workers (用工单位), which receives the
    /// part of a labour-dispatch company's refund for those workers.
    HostEmployer { credit_code: CreditCode, name: String },
}

/// One part of an amount: who gets it, how it was computed, by which rule.
/// The lines of a decision add up to its amount; a line of zero records a
/// part that the rules exclude (workers dispatched to public bodies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub payee: Payee,
    /// How the amount was computed, for the clerk and the auditor.
    pub basis: String,
    pub amount: Amount,
    pub rule: RuleId,
}

/// A positive decision: what to pay, to whom, from which money, under which
/// policy, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub policy: PolicyRef,
    pub program: Program,
    /// The date that selected the policy: the submission date, or for
    /// training the class start date.
    pub business_date: chrono::NaiveDate,
    pub amount: Ruled<Money>,
    pub funding: Ruled<Funding>,
    /// Skill upgrade only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Ruled<Slot>>,
    /// Parts of the amount where they go to different payees or are computed
    /// per person; empty when the whole amount goes to the applicant on one
    /// basis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<Line>,
}
