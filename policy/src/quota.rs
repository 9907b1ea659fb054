//! The expansion-pilot quota (扩大失业保险基金支出范围试点支出额度): a pool's
//! expansion-pilot spending in a policy year is capped at a ratio (15%,
//! inclusive) of its locked historical balance as of 2023-12-31
//! [鲁人社发〔2024〕8号 item 6; 威人社函〔2024〕41号 item 1].
//!
//! The cap is computed exactly and rounded down to the fen: it is a ceiling,
//! and rounding up could let spending exceed the ratio by a fraction of a fen.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::decision::Funding;
use crate::file_error::FieldPath;
use crate::money::{Amount, Money, Ratio, Rounding};
use crate::rejection::{Rejection, RejectionCode};
use crate::skill_upgrade::YearBasis;

/// Parameters of an expansion-quota policy. File keys:
///
/// ```toml
/// ratio = "0.15"
/// inclusive = true                  # spending may reach the cap (（含）)
/// balance_as_of = 2023-12-31        # the locked historical balance's date
/// rounding = "down_to_fen"
/// year = "submission_date"
/// categories = ["vocational_training", "skill_evaluation", "job_subsidy", "social_insurance_subsidy"]
/// filing_required = true            # the city's plan is filed with the province (备案)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRules {
    pub ratio: Ratio,
    pub inclusive: bool,
    #[serde(with = "crate::dates")]
    pub balance_as_of: NaiveDate,
    pub rounding: Rounding,
    pub year: YearBasis,
    pub categories: Vec<SpendingCategory>,
    pub filing_required: bool,
}

/// The spending the pilot may fund, and that counts against the quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendingCategory {
    /// 职业培训补贴
    VocationalTraining,
    /// 职业技能评价补贴
    SkillEvaluation,
    /// 岗位补贴
    JobSubsidy,
    /// 社会保险补贴
    SocialInsuranceSubsidy,
}

impl SpendingCategory {
    /// The category of a program's spending, by its API name; `None` for programs the
    /// pilot does not fund (skill-upgrade subsidies, refunds: ordinary spending).
    pub fn of(program: &str) -> Option<SpendingCategory> {
        match program {
            "vocational_training" => Some(SpendingCategory::VocationalTraining),
            "skill_evaluation" => Some(SpendingCategory::SkillEvaluation),
            "job_subsidy" => Some(SpendingCategory::JobSubsidy),
            "social_insurance_subsidy" => Some(SpendingCategory::SocialInsuranceSubsidy),
            _ => None,
        }
    }
}

impl QuotaRules {
    pub(crate) fn problems(&self) -> Vec<(FieldPath, String)> {
        let mut out = Vec::new();
        if self.rounding != Rounding::DownToFen {
            out.push((
                FieldPath::parse("rounding"),
                "must be \"down_to_fen\": the cap is a ceiling, and rounding it up could let \
                 spending exceed the ratio"
                    .into(),
            ));
        }
        if self.categories.is_empty() {
            out.push((FieldPath::parse("categories"), "must name at least one category".into()));
        }
        for (i, c) in self.categories.iter().enumerate() {
            if self.categories[..i].contains(c) {
                out.push((FieldPath::root().key("categories").index(i), "is listed twice".into()));
            }
        }
        out
    }

    /// The locked historical balance must be the one the policy names
    /// (封定当地历史结余基金（截至2023年12月31日）): `Err` carries the date it
    /// names.
    pub fn check_balance_date(&self, as_of: NaiveDate) -> Result<(), NaiveDate> {
        if as_of == self.balance_as_of {
            Ok(())
        } else {
            Err(self.balance_as_of)
        }
    }

    /// What approving `amount` of `funding` in `category` does to the quota:
    /// `Ok(None)` if it does not count against it; `Ok(Some(remaining))` if it
    /// counts and fits ([`QuotaRules::check`]); a rejection if it would pass
    /// the cap, or if it claims the pilot for spending the pilot does not fund.
    pub fn admit(
        &self,
        funding: Funding,
        category: Option<SpendingCategory>,
        usage: QuotaUsage,
        amount: Money,
    ) -> Result<Option<Amount>, Rejection> {
        if !funding.counts_against_quota() {
            return Ok(None);
        }
        if !category.is_some_and(|c| self.counts(funding, c)) {
            return Err(Rejection::new(
                RejectionCode::NotEligible,
                "funding",
                format!(
                    "the expansion pilot funds {}; this spending ({category:?}) is not among them",
                    self.categories.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        self.check(usage, amount).map(Some)
    }

    /// The pool's cap for a year from its locked balance.
    pub fn cap(&self, locked_balance: Amount) -> Amount {
        Amount::rounded(locked_balance.value() * self.ratio.value(), self.rounding)
            .expect("a non-negative balance times a ratio")
    }

    /// Whether spending of `category` paid from `funding` counts against the
    /// quota: only expansion-pilot money, and only in the listed categories.
    pub fn counts(&self, funding: Funding, category: SpendingCategory) -> bool {
        funding.counts_against_quota() && self.categories.contains(&category)
    }

    /// Checks that approving `amount` keeps `committed + paid − recovered`
    /// within the cap (at it, if `inclusive`). Returns what remains after it.
    pub fn check(&self, usage: QuotaUsage, amount: Money) -> Result<Amount, Rejection> {
        let used = (usage.committed.value() + usage.paid.value() - usage.recovered.value())
            .max(Decimal::ZERO);
        let after = used + amount.value();
        let cap = usage.cap.value();
        let fits = if self.inclusive { after <= cap } else { after < cap };
        if fits {
            return Ok(Amount::from_decimal(cap - after).expect("after <= cap"));
        }
        let remaining =
            Amount::from_decimal((cap - used).max(Decimal::ZERO)).expect("two decimals");
        Err(Rejection::new(
            RejectionCode::QuotaExceeded,
            "amount",
            format!(
                "approving {amount} would bring the pool's expansion-pilot spending to {after:.2}, over \
                 its cap of {} ({} of the locked historical balance); {remaining} remains",
                usage.cap,
                self.ratio.percent()
            ),
        ))
    }
}

/// A pool's quota figures for a year, from the ledger's projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaUsage {
    pub cap: Amount,
    /// Approved, not yet paid.
    pub committed: Amount,
    pub paid: Amount,
    pub recovered: Amount,
}

/// `ratio` of `balance`, computed exactly and rounded down to the fen.
pub fn quota_cap(balance: Amount, ratio: Ratio) -> Amount {
    Amount::rounded(balance.value() * ratio.value(), Rounding::DownToFen)
        .expect("a non-negative balance times a ratio")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, Rules};
    use proptest::prelude::*;

    const SHANDONG: &str = include_str!("../../policies/shandong-2024-expansion-quota.toml");

    fn a(s: &str) -> Amount {
        Amount::parse(s).unwrap()
    }

    fn rules() -> QuotaRules {
        match Policy::from_toml(SHANDONG).unwrap().rules {
            Rules::ExpansionQuota(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fifteen_percent_is_rounded_down_to_the_fen() {
        let r = Ratio::parse("0.15").unwrap();
        assert_eq!(quota_cap(a("100000000.00"), r).to_string(), "15000000.00");
        // 0.15 × 12345.67 = 1851.8505: down to 1851.85, not up.
        assert_eq!(quota_cap(a("12345.67"), r).to_string(), "1851.85");
        // 0.15 × 0.13 = 0.0195: 0.01.
        assert_eq!(quota_cap(a("0.13"), r).to_string(), "0.01");
        assert_eq!(quota_cap(a("0"), r), Amount::ZERO);
        assert_eq!(rules().cap(a("12345.67")).to_string(), "1851.85");
    }

    #[test]
    fn only_expansion_pilot_spending_in_the_four_categories_counts() {
        let r = rules();
        assert!(r.counts(Funding::ExpansionPilot, SpendingCategory::VocationalTraining));
        assert!(r.counts(Funding::ExpansionPilot, SpendingCategory::SocialInsuranceSubsidy));
        assert!(!r.counts(Funding::UnemploymentInsurance, SpendingCategory::VocationalTraining));
        assert!(!r.counts(Funding::EmploymentSubsidy, SpendingCategory::JobSubsidy));
    }

    #[test]
    fn spending_may_reach_the_cap_but_not_pass_it() {
        let r = rules();
        let usage = QuotaUsage {
            cap: a("1851.85"),
            committed: a("1000.00"),
            paid: a("300.00"),
            recovered: a("48.15"),
        };
        assert_eq!(r.check(usage, Money::parse("600.00").unwrap()).unwrap(), Amount::ZERO);
        let e = r.check(usage, Money::parse("600.01").unwrap()).unwrap_err();
        assert_eq!(e.code, RejectionCode::QuotaExceeded);
        assert!(e.message.contains("600.00 remains"), "{e}");
        let exclusive = QuotaRules { inclusive: false, ..r };
        assert!(exclusive.check(usage, Money::parse("600.00").unwrap()).is_err());
    }

    #[test]
    fn the_balance_is_the_one_as_of_2023_12_31() {
        let r = rules();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(r.check_balance_date(d("2023-12-31")), Ok(()));
        assert_eq!(r.check_balance_date(d("2024-06-30")), Err(d("2023-12-31")));
    }

    #[test]
    fn admit_counts_only_pilot_money_in_the_policy_categories() {
        let r = rules();
        let usage = QuotaUsage {
            cap: a("1000.00"),
            committed: a("400.00"),
            paid: a("0.00"),
            recovered: a("0.00"),
        };
        let m = |s: &str| Money::parse(s).unwrap();
        let training = Some(SpendingCategory::VocationalTraining);
        assert_eq!(
            r.admit(Funding::UnemploymentInsurance, training, usage, m("9999.00")),
            Ok(None)
        );
        assert_eq!(
            r.admit(Funding::ExpansionPilot, training, usage, m("600.00")),
            Ok(Some(Amount::ZERO))
        );
        let over = r.admit(Funding::ExpansionPilot, training, usage, m("600.01")).unwrap_err();
        assert_eq!(over.code, RejectionCode::QuotaExceeded);
        let narrow = QuotaRules { categories: vec![SpendingCategory::JobSubsidy], ..r };
        let e = narrow.admit(Funding::ExpansionPilot, training, usage, m("1.00")).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (RejectionCode::NotEligible, "funding"));
    }

    #[test]
    fn a_cap_rounded_up_is_refused_in_the_file() {
        let text = SHANDONG.replace("rounding = \"down_to_fen\"", "rounding = \"half_up_to_fen\"");
        let e = Policy::from_toml(&text).unwrap_err();
        assert_eq!(e.field, "rounding");
        assert!(e.message.contains("ceiling"), "{e}");
    }

    proptest! {
        /// The cap never exceeds the exact ratio and is less than a fen below it.
        #[test]
        fn the_cap_is_the_largest_fen_amount_within_the_ratio(fen in 0u64..10_000_000_000_000, permille in 1u32..=1000) {
            let balance = Amount::from_decimal(Decimal::new(fen as i64, 2)).unwrap();
            let ratio = Ratio::parse(&(Decimal::new(i64::from(permille), 3)).to_string()).unwrap();
            let exact = balance.value() * ratio.value();
            let cap = quota_cap(balance, ratio).value();
            prop_assert!(cap <= exact);
            prop_assert!(exact - cap < Decimal::new(1, 2));
        }
    }
}
