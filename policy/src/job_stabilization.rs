//! Job-stabilization refund (稳岗返还), paid to an enterprise: a share of the
//! unemployment-insurance premiums it and its employees paid last year.
//!
//! Sources: 鲁人社发〔2024〕8号 items 2 (conditions, rates), 3 (labour
//! dispatch) and 7 (免申即享); 济政办函〔2021〕16号 item 9 with
//! 鲁政字〔2021〕136号 item 2 (the pool's reserve condition).
//!
//! Labour-dispatch companies (劳务派遣单位): the layoff rate and the refund
//! ratio are computed for the company as a whole, dispatched and own staff
//! together; the refund is then split by whose premiums it refunds: the part
//! for workers dispatched to a host employer goes in full to that host, the
//! part for workers dispatched to government bodies and public institutions
//! is not refunded at all, and the part for the company's own staff goes to
//! the company. Each part is rounded by the policy's rule and the decision's
//! amount is the sum of the rounded parts, so the payouts add up to it
//! exactly.

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::checks;
use crate::decision::{Decision, Funding, Line, Payee, Ruled};
use crate::file_error::FieldPath;
use crate::history::Status;
use crate::ids::{CreditCode, DivisionCode};
use crate::money::{Amount, Money, Ratio, Rounding};
use crate::policy::{Policy, Program, Rules};
use crate::rejection::{by_precedence, Rejection, RejectionCode};

/// Bound on host employers in one labour-dispatch application.
pub const HOSTS_MAX: usize = 10_000;

/// Parameters of a job-stabilization policy. File keys:
///
/// ```toml
/// funding = "unemployment_insurance"
/// rounding = "half_up_to_fen"
/// refunds_per_year = 1
/// [premiums]        months_paid_in_full_min = 12                        (optional)
/// [layoffs]         rate_max = "0.055", small_enterprise_staff_max = 30,
///                   small_enterprise_rate_max = "0.2"                   (optional)
/// [rates]           large = "0.3", sme = "0.6", sme_rate_kinds = ["social_organisation", …]
/// [labour_dispatch] excluded_host_kinds = ["government_body", "public_institution"] (optional)
/// [pool_reserve]    months_min = 12, as_of = "prior_year_end"           (optional)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStabilizationRules {
    pub funding: Funding,
    pub rounding: Rounding,
    /// Refunds per enterprise per calendar year of submission.
    pub refunds_per_year: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub premiums: Option<PremiumRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layoffs: Option<LayoffRules>,
    pub rates: RefundRates,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labour_dispatch: Option<DispatchRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_reserve: Option<ReserveRules>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PremiumRules {
    /// 足额缴纳失业保险费 N 个月以上 (以上 includes N).
    pub months_paid_in_full_min: u32,
}

/// Layoff-rate ceilings, both inclusive (不高于): `rate_max` in general,
/// `small_enterprise_rate_max` for enterprises with at most
/// `small_enterprise_staff_max` insured employees (30人（含）以下).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoffRules {
    pub rate_max: Ratio,
    pub small_enterprise_staff_max: u32,
    pub small_enterprise_rate_max: Ratio,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRates {
    pub large: Ratio,
    pub sme: Ratio,
    /// Organisation kinds refunded at the SME rate whatever their size
    /// (参照中小微企业政策执行).
    pub sme_rate_kinds: Vec<OrganisationKind>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchRules {
    /// Hosts whose dispatched workers are outside the refund.
    pub excluded_host_kinds: Vec<HostKind>,
}

/// The pool's rolling balance at the end of the prior year must cover at
/// least `months_min` months of benefit payments (备付能力).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveRules {
    pub months_min: u32,
    pub as_of: ReserveAsOf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReserveAsOf {
    /// 31 December of the year before the submission.
    PriorYearEnd,
}

/// Enterprise size class (划型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EnterpriseSize {
    /// 大型企业
    Large,
    /// 中小微企业
    Sme,
}

/// What kind of organisation is insured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OrganisationKind {
    Enterprise,
    /// 社会团体
    SocialOrganisation,
    /// 基金会
    Foundation,
    /// 社会服务机构
    SocialServiceAgency,
    /// 律师事务所
    LawFirm,
    /// 会计师事务所
    AccountingFirm,
    /// 以单位形式参保的个体工商户
    IndividualBusiness,
}

/// The kind of a labour-dispatch host employer (用工单位).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HostKind {
    Enterprise,
    /// 机关
    GovernmentBody,
    /// 事业单位
    PublicInstitution,
}

impl JobStabilizationRules {
    pub(crate) fn problems(&self) -> Vec<(FieldPath, String)> {
        let mut out = Vec::new();
        if self.refunds_per_year == 0 {
            out.push((FieldPath::parse("refunds_per_year"), "must be at least 1".into()));
        }
        if self.rates.sme < self.rates.large {
            out.push((
                FieldPath::parse("rates.sme"),
                "is below the large-enterprise rate; the notices favour small enterprises".into(),
            ));
        }
        if let Some(l) = &self.layoffs {
            if l.small_enterprise_rate_max < l.rate_max {
                out.push((
                    FieldPath::parse("layoffs.small_enterprise_rate_max"),
                    "is below rate_max; the small-enterprise ceiling is the more lenient one"
                        .into(),
                ));
            }
        }
        if let Some(r) = &self.pool_reserve {
            if r.months_min == 0 {
                out.push((
                    FieldPath::parse("pool_reserve.months_min"),
                    "must be at least 1".into(),
                ));
            }
        }
        out
    }
}

/// `enterprise` of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Enterprise {
    pub credit_code: CreditCode,
    pub name: String,
    pub size: EnterpriseSize,
    pub kind: OrganisationKind,
    pub labour_dispatch: bool,
}

/// `premiums` of a request body: what the enterprise and its employees
/// actually paid last year, without back payments of earlier years' arrears
/// and late fees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Premiums {
    pub paid_last_year: Money,
    pub months_paid_in_full: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Staff {
    pub insured_employees: u32,
    pub laid_off_last_year: u32,
}

/// A labour-dispatch company's breakdown of staff and premiums.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Dispatch {
    pub own_staff: OwnStaff,
    pub hosts: Vec<Host>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OwnStaff {
    /// Including workers hired for contracting and outsourcing (承揽、外包).
    pub employees: u32,
    pub premiums_paid_last_year: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Host {
    pub credit_code: CreditCode,
    pub name: String,
    pub kind: HostKind,
    pub dispatched_workers: u32,
    pub premiums_paid_last_year: Amount,
}

/// The pool's figures for the reserve condition, supplied by the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PoolReserve {
    /// The date of the balance: must be the end of the prior year.
    pub as_of: NaiveDate,
    /// 滚存结余 at `as_of`.
    pub rolling_balance: Amount,
    /// Average monthly unemployment-benefit payments of that year.
    pub monthly_benefit_payments: Money,
}

/// A job-stabilization request body, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobStabilizationApplication {
    pub county: DivisionCode,
    pub submitted_on: NaiveDate,
    pub enterprise: Enterprise,
    pub premiums: Premiums,
    pub staff: Staff,
    /// Required of labour-dispatch companies where the policy splits refunds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch: Option<Dispatch>,
    /// Required where the policy has a reserve condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_reserve: Option<PoolReserve>,
    /// 免申即享 (鲁人社发〔2024〕8号 item 7): the office found the enterprise by data
    /// comparison, it did not apply; it must confirm before the refund is reviewed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub screened: bool,
}

/// Size class of an enterprise by the SME classification (中小企业划型), finer than
/// [`EnterpriseSize`]: the account rule of 免申即享 names small and micro enterprises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SizeClass {
    /// 大型
    Large,
    /// 中型
    Medium,
    /// 小型
    Small,
    /// 微型
    Micro,
}

/// The account a 免申即享 refund is paid to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundAccount {
    /// 对公账户
    Corporate,
    /// The account it pays social insurance from (缴纳社会保险费的账户).
    SocialInsurance,
}

impl RefundAccount {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundAccount::Corporate => "corporate",
            RefundAccount::SocialInsurance => "social_insurance",
        }
    }
}

/// The account rule of 免申即享 (鲁人社发〔2024〕8号 item 7: "对没有对公账户的小微企业，可将资金
/// 返还至其缴纳社会保险费的账户"): an enterprise with a corporate account is paid there; a small
/// or micro enterprise without one, to the account it pays social insurance from; any other
/// enterprise without one cannot be paid (`not_eligible` on `corporate_account`).
pub fn refund_account(
    size: SizeClass,
    corporate_account: bool,
) -> Result<RefundAccount, Rejection> {
    match (corporate_account, size) {
        (true, _) => Ok(RefundAccount::Corporate),
        (false, SizeClass::Small | SizeClass::Micro) => Ok(RefundAccount::SocialInsurance),
        (false, SizeClass::Large | SizeClass::Medium) => Err(Rejection::new(
            RejectionCode::NotEligible,
            "corporate_account",
            "only a small or micro enterprise without a corporate account (对公账户) may be paid to \
             the account it pays social insurance from (鲁人社发〔2024〕8号 七); a large or medium \
             enterprise is paid to its corporate account",
        )),
    }
}

impl JobStabilizationApplication {
    pub fn business_date(&self) -> NaiveDate {
        self.submitted_on
    }
}

/// One of the enterprise's earlier refund applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorRefund {
    pub submitted_on: NaiveDate,
    pub status: Status,
}

fn percent(part: u32, whole: u32) -> String {
    let p = Decimal::from(part) * Decimal::ONE_HUNDRED / Decimal::from(whole);
    format!("{}%", p.round_dp(2).normalize())
}

fn validate(app: &JobStabilizationApplication, rules: &JobStabilizationRules) -> Vec<Rejection> {
    let mut out = Vec::new();
    let staff = app.staff;
    if staff.insured_employees == 0 {
        out.push(checks::validation(
            "staff.insured_employees",
            "an insured enterprise has at least one insured employee; give the number insured last year",
        ));
    }
    if app.enterprise.name.trim().is_empty() {
        out.push(checks::validation("enterprise.name", "the enterprise's name is empty"));
    }
    if app.screened && app.enterprise.labour_dispatch {
        out.push(checks::validation(
            "screened",
            "a labour-dispatch company applies itself (自主申报, 鲁人社发〔2024〕8号 七); it is not \
             screened for 免申即享",
        ));
    }
    let splits = rules.labour_dispatch.is_some() && app.enterprise.labour_dispatch;
    match (&app.dispatch, splits) {
        (None, true) => out.push(checks::validation(
            "dispatch",
            "a labour-dispatch company's refund is split between host employers and its own staff: \
             give dispatch.hosts and dispatch.own_staff",
        )),
        (Some(_), false) if !app.enterprise.labour_dispatch => out.push(checks::validation(
            "dispatch",
            "dispatch details are for labour-dispatch companies; set enterprise.labour_dispatch or leave dispatch out",
        )),
        (Some(d), true) => {
            if d.hosts.len() > HOSTS_MAX {
                out.push(checks::validation(
                    "dispatch.hosts",
                    format!("at most {HOSTS_MAX} host employers per application"),
                ));
            }
            for (i, h) in d.hosts.iter().enumerate() {
                if d.hosts[..i].iter().any(|o| o.credit_code == h.credit_code) {
                    out.push(checks::validation(
                        &format!("dispatch.hosts[{i}].credit_code"),
                        format!("host {} is listed twice; give each host once with its totals", h.credit_code),
                    ));
                }
            }
            let workers: u64 = u64::from(d.own_staff.employees)
                + d.hosts.iter().map(|h| u64::from(h.dispatched_workers)).sum::<u64>();
            if workers != u64::from(staff.insured_employees) {
                out.push(checks::validation(
                    "dispatch.hosts",
                    format!(
                        "own staff and dispatched workers add up to {workers}, but staff.insured_employees \
                         is {}; the layoff rate is computed over both together, so they must agree",
                        staff.insured_employees
                    ),
                ));
            }
            let premiums: Amount = d.own_staff.premiums_paid_last_year
                + d.hosts.iter().map(|h| h.premiums_paid_last_year).sum::<Amount>();
            if premiums != Amount::from(app.premiums.paid_last_year) {
                out.push(checks::validation(
                    "dispatch.hosts",
                    format!(
                        "own staff's and dispatched workers' premiums add up to {premiums}, but \
                         premiums.paid_last_year is {}; they must agree",
                        app.premiums.paid_last_year
                    ),
                ));
            }
        }
        _ => {}
    }
    if let (Some(reserve), Some(r)) = (&rules.pool_reserve, &app.pool_reserve) {
        let ReserveAsOf::PriorYearEnd = reserve.as_of;
        let expected =
            NaiveDate::from_ymd_opt(app.submitted_on.year() - 1, 12, 31).expect("valid date");
        if r.as_of != expected {
            out.push(checks::validation(
                "pool_reserve.as_of",
                format!(
                    "the reserve condition reads the pool's balance at {expected}, not at {}",
                    r.as_of
                ),
            ));
        }
    }
    if rules.pool_reserve.is_some() && app.pool_reserve.is_none() {
        out.push(checks::validation(
            "pool_reserve",
            "this policy requires the pool's rolling balance at the end of the prior year and its monthly \
             benefit payments; record them for the pool before deciding",
        ));
    }
    out
}

/// Decides a job-stabilization refund. `history` is the enterprise's earlier
/// refund applications.
pub fn decide(
    app: &JobStabilizationApplication,
    history: &[PriorRefund],
    policy: &Policy,
) -> Result<Decision, Vec<Rejection>> {
    let Rules::JobStabilizationRefund(rules) = &policy.rules else {
        return Err(vec![checks::wrong_program(policy, Program::JobStabilizationRefund)]);
    };
    let out = validate(app, rules);
    if !out.is_empty() {
        return Err(by_precedence(out));
    }
    if let Some(r) = checks::in_force(policy, &app.county, app.submitted_on) {
        return Err(vec![r]);
    }
    let mut out = Vec::new();
    if let (Some(rule), Some(pool)) = (&rules.pool_reserve, &app.pool_reserve) {
        let needed = pool.monthly_benefit_payments.value() * Decimal::from(rule.months_min);
        if pool.rolling_balance.value() < needed {
            out.push(Rejection::new(
                RejectionCode::NotEligible,
                "pool_reserve.rolling_balance",
                format!(
                    "the pool's rolling balance at {} ({}) covers less than {} months of benefit \
                     payments ({} a month); {} refunds only where it covers at least {} months",
                    pool.as_of,
                    pool.rolling_balance,
                    rule.months_min,
                    pool.monthly_benefit_payments,
                    policy.document,
                    rule.months_min
                ),
            ));
        }
    }
    if let Some(p) = &rules.premiums {
        if app.premiums.months_paid_in_full < p.months_paid_in_full_min {
            out.push(Rejection::new(
                RejectionCode::NotEligible,
                "premiums.months_paid_in_full",
                format!(
                    "premiums were paid in full for {} months; the refund requires at least {}",
                    app.premiums.months_paid_in_full, p.months_paid_in_full_min
                ),
            ));
        }
    }
    if let Some(l) = &rules.layoffs {
        let staff = app.staff;
        let small = staff.insured_employees <= l.small_enterprise_staff_max;
        let ceiling = if small { l.small_enterprise_rate_max } else { l.rate_max };
        // laid_off / insured <= ceiling, compared exactly without division.
        if Decimal::from(staff.laid_off_last_year)
            > ceiling.value() * Decimal::from(staff.insured_employees)
        {
            let class = if small {
                format!("with at most {} insured employees", l.small_enterprise_staff_max)
            } else {
                format!("with more than {} insured employees", l.small_enterprise_staff_max)
            };
            out.push(Rejection::new(
                RejectionCode::NotEligible,
                "staff.laid_off_last_year",
                format!(
                    "{} of {} insured employees were laid off last year ({}); an enterprise {class} \
                     may have laid off at most {}",
                    staff.laid_off_last_year,
                    staff.insured_employees,
                    percent(staff.laid_off_last_year, staff.insured_employees),
                    ceiling.percent()
                ),
            ));
        }
    }
    let year = app.submitted_on.year();
    let earlier =
        history.iter().filter(|h| h.status.stands() && h.submitted_on.year() == year).count();
    if earlier >= rules.refunds_per_year as usize {
        out.push(Rejection::new(
            RejectionCode::AnnualLimitReached,
            "enterprise.credit_code",
            format!(
                "the enterprise already has {earlier} refund application(s) standing in {year}; \
                 it is refunded {} time(s) a year",
                rules.refunds_per_year
            ),
        ));
    }
    if !out.is_empty() {
        return Err(by_precedence(out));
    }

    let (rate, rate_rule) = if rules.rates.sme_rate_kinds.contains(&app.enterprise.kind) {
        (rules.rates.sme, "rate_sme_kinds")
    } else {
        match app.enterprise.size {
            EnterpriseSize::Sme => (rules.rates.sme, "rate_sme"),
            EnterpriseSize::Large => (rules.rates.large, "rate_large"),
        }
    };
    let refund = |premiums: Amount| -> Amount {
        Amount::rounded(premiums.value() * rate.value(), rules.rounding)
            .expect("a non-negative amount times a ratio, rounded to the fen")
    };
    let mut lines = Vec::new();
    let total = match (&rules.labour_dispatch, &app.dispatch) {
        (Some(dispatch_rules), Some(d)) if app.enterprise.labour_dispatch => {
            for h in &d.hosts {
                let excluded = dispatch_rules.excluded_host_kinds.contains(&h.kind);
                let (amount, rule, basis) = if excluded {
                    (
                        Amount::ZERO,
                        "dispatch_excluded_hosts",
                        format!(
                            "{} workers dispatched to a government body or public institution: not covered",
                            h.dispatched_workers
                        ),
                    )
                } else {
                    (
                        refund(h.premiums_paid_last_year),
                        "dispatch_host_share",
                        format!(
                            "premiums {} of {} dispatched workers × {}",
                            h.premiums_paid_last_year,
                            h.dispatched_workers,
                            rate.percent()
                        ),
                    )
                };
                lines.push(Line {
                    payee: Payee::HostEmployer {
                        credit_code: h.credit_code.clone(),
                        name: h.name.clone(),
                    },
                    basis,
                    amount,
                    rule: policy.rule(rule),
                });
            }
            let own = d.own_staff;
            lines.push(Line {
                payee: Payee::Applicant,
                basis: format!(
                    "premiums {} of {} own staff × {}",
                    own.premiums_paid_last_year,
                    own.employees,
                    rate.percent()
                ),
                amount: refund(own.premiums_paid_last_year),
                rule: policy.rule("dispatch_own_staff"),
            });
            lines.iter().map(|l| l.amount).sum()
        }
        _ => refund(app.premiums.paid_last_year.into()),
    };
    let Some(amount) = total.to_money() else {
        return Err(vec![Rejection::new(
            RejectionCode::NotEligible,
            "premiums.paid_last_year",
            "the refundable premiums come to 0.00 after the exclusions and rounding; there is nothing to refund",
        )]);
    };
    Ok(Decision {
        policy: policy.reference(),
        program: Program::JobStabilizationRefund,
        business_date: app.submitted_on,
        amount: Ruled { value: amount, rule: policy.rule(rate_rule) },
        funding: Ruled { value: rules.funding, rule: policy.rule("funding") },
        slot: None,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHANDONG: &str = include_str!("../../policies/shandong-2024-job-stabilization.toml");
    const JINAN: &str = include_str!("../../policies/jinan-2021-job-stabilization.toml");

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn code(first_17: &str) -> CreditCode {
        let check = CreditCode::check_char_for(first_17).unwrap();
        CreditCode::parse(&format!("{first_17}{check}")).unwrap()
    }

    fn app(
        size: EnterpriseSize,
        kind: OrganisationKind,
        paid: &str,
        staff: u32,
        laid_off: u32,
    ) -> JobStabilizationApplication {
        JobStabilizationApplication {
            county: DivisionCode::parse("370811").unwrap(),
            submitted_on: d("2024-08-01"),
            enterprise: Enterprise {
                credit_code: code("91370800MA3C1234X"),
                name: "某某机械有限公司".into(),
                size,
                kind,
                labour_dispatch: false,
            },
            premiums: Premiums {
                paid_last_year: Money::parse(paid).unwrap(),
                months_paid_in_full: 14,
            },
            staff: Staff { insured_employees: staff, laid_off_last_year: laid_off },
            dispatch: None,
            pool_reserve: None,
            screened: false,
        }
    }

    #[test]
    fn a_small_or_micro_enterprise_without_a_corporate_account_is_paid_to_its_insurance_account() {
        use RefundAccount::*;
        use SizeClass::*;
        for size in [Large, Medium, Small, Micro] {
            assert_eq!(refund_account(size, true), Ok(Corporate), "{size:?}");
        }
        assert_eq!(refund_account(Small, false), Ok(SocialInsurance));
        assert_eq!(refund_account(Micro, false), Ok(SocialInsurance));
        for size in [Large, Medium] {
            let r = refund_account(size, false).unwrap_err();
            assert_eq!(
                (r.code, r.field.as_str()),
                (RejectionCode::NotEligible, "corporate_account")
            );
        }
    }

    use EnterpriseSize::*;
    use OrganisationKind as K;

    enum Expect {
        Pays(&'static str, &'static str),
        Refused(RejectionCode, &'static str),
    }
    use Expect::*;

    #[test]
    fn refunds_follow_items_2_and_3() {
        let policy = Policy::from_toml(SHANDONG).unwrap();
        let cases = vec![
            (
                "SME, 2 of 45 laid off",
                app(Sme, K::Enterprise, "120000.00", 45, 2),
                Pays("72000.00", "rate_sme"),
            ),
            (
                "large enterprise",
                app(Large, K::Enterprise, "120000.00", 450, 2),
                Pays("36000.00", "rate_large"),
            ),
            (
                "a large social organisation gets 60% all the same",
                app(Large, K::SocialOrganisation, "120000.00", 450, 2),
                Pays("72000.00", "rate_sme_kinds"),
            ),
            (
                "a large law firm too",
                app(Large, K::LawFirm, "1000.00", 400, 0),
                Pays("600.00", "rate_sme_kinds"),
            ),
            (
                "5.5% exactly",
                app(Large, K::Enterprise, "10000.00", 200, 11),
                Pays("3000.00", "rate_large"),
            ),
            (
                "just over 5.5%",
                app(Large, K::Enterprise, "10000.00", 200, 12),
                Refused(RejectionCode::NotEligible, "staff.laid_off_last_year"),
            ),
            (
                "30 staff, exactly 20%",
                app(Sme, K::Enterprise, "10000.00", 30, 6),
                Pays("6000.00", "rate_sme"),
            ),
            (
                "30 staff, over 20%",
                app(Sme, K::Enterprise, "10000.00", 30, 7),
                Refused(RejectionCode::NotEligible, "staff.laid_off_last_year"),
            ),
            (
                "31 staff: the 5.5% ceiling applies",
                app(Sme, K::Enterprise, "10000.00", 31, 2),
                Refused(RejectionCode::NotEligible, "staff.laid_off_last_year"),
            ),
            (
                "half a fen rounds up",
                app(Large, K::Enterprise, "333.35", 100, 0),
                Pays("100.01", "rate_large"),
            ),
            (
                "no staff",
                app(Sme, K::Enterprise, "100.00", 0, 0),
                Refused(RejectionCode::ValidationFailed, "staff.insured_employees"),
            ),
            (
                "11 months of premiums",
                {
                    let mut a = app(Sme, K::Enterprise, "100.00", 10, 0);
                    a.premiums.months_paid_in_full = 11;
                    a
                },
                Refused(RejectionCode::NotEligible, "premiums.months_paid_in_full"),
            ),
            (
                "2025: no policy in force",
                {
                    let mut a = app(Sme, K::Enterprise, "100.00", 10, 0);
                    a.submitted_on = d("2025-01-02");
                    a
                },
                Refused(RejectionCode::NoPolicyInForce, "submitted_on"),
            ),
            (
                "refund rounds to nothing",
                app(Large, K::Enterprise, "0.01", 10, 0),
                Refused(RejectionCode::NotEligible, "premiums.paid_last_year"),
            ),
        ];
        for (name, a, expect) in cases {
            match (expect, decide(&a, &[], &policy)) {
                (Pays(amount, rule), Ok(decision)) => {
                    assert_eq!(decision.amount.value.to_string(), amount, "{name}");
                    assert_eq!(
                        decision.amount.rule.as_str(),
                        format!("shandong-2024-job-stabilization/{rule}"),
                        "{name}"
                    );
                    assert_eq!(decision.funding.value, Funding::UnemploymentInsurance, "{name}");
                }
                (Refused(code, field), Err(r)) => {
                    assert_eq!((r[0].code, r[0].field.as_str()), (code, field), "{name}: {r:?}");
                }
                (_, got) => panic!("{name}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn one_refund_per_year() {
        let policy = Policy::from_toml(SHANDONG).unwrap();
        let a = app(Sme, K::Enterprise, "100.00", 10, 0);
        let earlier = PriorRefund { submitted_on: d("2024-03-01"), status: Status::Paid };
        let r = decide(&a, &[earlier], &policy).unwrap_err();
        assert_eq!(r[0].code, RejectionCode::AnnualLimitReached);
        let withdrawn = PriorRefund { status: Status::Withdrawn, ..earlier };
        assert!(decide(&a, &[withdrawn], &policy).is_ok());
    }

    fn dispatch_company() -> JobStabilizationApplication {
        let mut a = app(Sme, K::Enterprise, "80000.05", 40, 2);
        a.enterprise.labour_dispatch = true;
        a.dispatch = Some(Dispatch {
            own_staff: OwnStaff {
                employees: 10,
                premiums_paid_last_year: Amount::parse("20000.00").unwrap(),
            },
            hosts: vec![
                Host {
                    credit_code: code("91370800MA3C0001A"),
                    name: "用工企业甲".into(),
                    kind: HostKind::Enterprise,
                    dispatched_workers: 25,
                    premiums_paid_last_year: Amount::parse("50000.05").unwrap(),
                },
                Host {
                    credit_code: code("12370800MB0000001"),
                    name: "某事业单位".into(),
                    kind: HostKind::PublicInstitution,
                    dispatched_workers: 5,
                    premiums_paid_last_year: Amount::parse("10000.00").unwrap(),
                },
            ],
        });
        a
    }

    #[test]
    fn a_labour_dispatch_refund_is_split_between_hosts_public_bodies_and_own_staff() {
        let policy = Policy::from_toml(SHANDONG).unwrap();
        let decision = decide(&dispatch_company(), &[], &policy).unwrap();
        let lines: Vec<_> = decision
            .lines
            .iter()
            .map(|l| {
                (l.amount.to_string(), l.rule.as_str().rsplit('/').next().unwrap().to_string())
            })
            .collect();
        assert_eq!(
            lines,
            [
                ("30000.03".to_string(), "dispatch_host_share".to_string()),
                ("0.00".to_string(), "dispatch_excluded_hosts".to_string()),
                ("12000.00".to_string(), "dispatch_own_staff".to_string()),
            ]
        );
        assert!(
            matches!(&decision.lines[0].payee, Payee::HostEmployer { name, .. } if name == "用工企业甲")
        );
        assert_eq!(decision.lines[2].payee, Payee::Applicant);
        assert_eq!(decision.amount.value.to_string(), "42000.03");
        let sum: Amount = decision.lines.iter().map(|l| l.amount).sum();
        assert_eq!(sum, Amount::from(decision.amount.value));
    }

    #[test]
    fn dispatch_layoff_rate_is_over_all_staff_and_figures_must_agree() {
        let policy = Policy::from_toml(SHANDONG).unwrap();
        // 3 of 40 is 7.5%: over 5.5% although 3 of the 10 own staff would be 30%
        // and 3 of 30 dispatched 10%; the company as a whole decides.
        let mut a = dispatch_company();
        a.staff.laid_off_last_year = 3;
        assert_eq!(decide(&a, &[], &policy).unwrap_err()[0].field, "staff.laid_off_last_year");

        let mut a = dispatch_company();
        a.staff.insured_employees = 41;
        let r = decide(&a, &[], &policy).unwrap_err();
        assert_eq!(
            (r[0].code, r[0].field.as_str()),
            (RejectionCode::ValidationFailed, "dispatch.hosts")
        );

        let mut a = dispatch_company();
        a.dispatch = None;
        assert_eq!(decide(&a, &[], &policy).unwrap_err()[0].field, "dispatch");

        // Dispatch companies apply themselves: never screened for 免申即享.
        let mut a = dispatch_company();
        a.screened = true;
        assert_eq!(decide(&a, &[], &policy).unwrap_err()[0].field, "screened");
    }

    #[test]
    fn jinan_2021_requires_a_year_of_reserve_in_the_pool() {
        let policy = Policy::from_toml(JINAN).unwrap();
        let mut a = app(Sme, K::Enterprise, "10000.00", 45, 2);
        a.county = DivisionCode::parse("370102").unwrap();
        a.submitted_on = d("2021-10-08");
        let reserve = |balance: &str| PoolReserve {
            as_of: d("2020-12-31"),
            rolling_balance: Amount::parse(balance).unwrap(),
            monthly_benefit_payments: Money::parse("1000000.00").unwrap(),
        };
        let r = decide(&a, &[], &policy).unwrap_err();
        assert_eq!(
            (r[0].code, r[0].field.as_str()),
            (RejectionCode::ValidationFailed, "pool_reserve")
        );

        a.pool_reserve = Some(reserve("12000000.00"));
        let decision = decide(&a, &[], &policy).unwrap();
        assert_eq!(decision.amount.value.to_string(), "6000.00");
        assert_eq!(decision.policy.document, "济政办函〔2021〕16号");

        a.pool_reserve = Some(reserve("11999999.99"));
        let r = decide(&a, &[], &policy).unwrap_err();
        assert_eq!(
            (r[0].code, r[0].field.as_str()),
            (RejectionCode::NotEligible, "pool_reserve.rolling_balance")
        );

        a.pool_reserve = Some(PoolReserve { as_of: d("2021-06-30"), ..reserve("12000000.00") });
        assert_eq!(decide(&a, &[], &policy).unwrap_err()[0].field, "pool_reserve.as_of");

        a.pool_reserve = Some(reserve("12000000.00"));
        a.submitted_on = d("2022-01-01");
        assert_eq!(decide(&a, &[], &policy).unwrap_err()[0].code, RejectionCode::ValidationFailed);
        a.pool_reserve = Some(PoolReserve { as_of: d("2021-12-31"), ..reserve("12000000.00") });
        assert_eq!(decide(&a, &[], &policy).unwrap_err()[0].code, RejectionCode::NoPolicyInForce);
    }
}
