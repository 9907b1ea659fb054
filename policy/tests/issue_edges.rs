//! The edges issue 4 names, one test each, decided through the public API
//! against the real policy files (read with std::fs) and selected as the
//! ledger selects them.

mod common;

use chrono::NaiveDate;
use fundledger_policy::history::{PriorApplication, Status, Subject};
use fundledger_policy::job_stabilization::{
    self, Dispatch, Enterprise, EnterpriseSize, Host, HostKind, JobStabilizationApplication,
    OrganisationKind, OwnStaff, Premiums, Staff,
};
use fundledger_policy::skill_upgrade::{self, Certificate, SkillUpgradeApplication};
use fundledger_policy::training::{self, Assessment, Training, TrainingApplication};
use fundledger_policy::{
    quota_cap, select, Amount, Applicant, CatalogKind, CreditCode, Decision, DivisionCode, Funding,
    IdNumber, Level, Money, OccupationCode, Payee, PersonEligibility, Policy, Program, Ratio,
    Rejection, RejectionCode, SlotKind,
};

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn pool(s: &str) -> DivisionCode {
    DivisionCode::parse(s).unwrap()
}

fn skill(
    county: &str,
    submitted: &str,
    code: &str,
    level: u64,
    issued: &str,
) -> SkillUpgradeApplication {
    SkillUpgradeApplication {
        county: pool(county),
        submitted_on: d(submitted),
        applicant: Applicant {
            id_number: IdNumber::parse("370811199001011236").unwrap(),
            name: "张三".into(),
        },
        eligibility: PersonEligibility {
            insured_months: Some(26),
            receiving_unemployment_benefit: false,
        },
        certificate: Certificate {
            occupation_code: OccupationCode::parse(code).unwrap(),
            level: Level::from_number(level).unwrap(),
            number: "S0000370800124".into(),
            issued_on: d(issued),
            issued_by: Some(pool("370800")),
        },
    }
}

fn earlier(code: &str, level: u64, submitted: &str) -> PriorApplication {
    PriorApplication {
        program: Program::SkillUpgrade,
        subject: Subject::parse(code).unwrap(),
        level: Some(Level::from_number(level).unwrap()),
        submitted_on: d(submitted),
        status: Status::Paid,
        slot: None,
    }
}

fn decide_skill(
    policies: &[Policy],
    pool_code: &str,
    a: &SkillUpgradeApplication,
    h: &[PriorApplication],
) -> Result<Decision, Vec<Rejection>> {
    let policy = select(policies, Program::SkillUpgrade, pool(pool_code), a.business_date())
        .map_err(|r| vec![r])?;
    skill_upgrade::decide(a, h, policy)
}

fn first_code(r: Result<Decision, Vec<Rejection>>) -> RejectionCode {
    r.unwrap_err()[0].code
}

#[test]
fn certificate_window_is_12_months_inclusive() {
    let policies = common::load_all();
    let on_the_day = skill("371002", "2024-12-01", "4-10-03-02", 5, "2023-12-01");
    assert_eq!(
        decide_skill(&policies, "371000", &on_the_day, &[]).unwrap().amount.value.to_string(),
        "1000.00"
    );
    let day_after = skill("371002", "2024-12-02", "4-10-03-02", 5, "2023-12-01");
    let r = decide_skill(&policies, "371000", &day_after, &[]).unwrap_err();
    assert_eq!(
        (r[0].code, r[0].field.as_str()),
        (RejectionCode::CertificateWindowExpired, "certificate.issued_on")
    );
    assert!(r[0].message.contains("until 2024-12-01"), "{}", r[0].message);
}

#[test]
fn the_fourth_application_in_a_year_is_refused() {
    let policies = common::load_all();
    let three = [
        earlier("6-18-01-01", 5, "2024-02-01"),
        earlier("6-18-01-02", 5, "2024-03-01"),
        earlier("6-18-02-01", 5, "2024-04-01"),
    ];
    let fourth = skill("371002", "2024-09-01", "4-10-03-02", 4, "2024-05-01");
    assert_eq!(
        first_code(decide_skill(&policies, "371000", &fourth, &three)),
        RejectionCode::AnnualLimitReached
    );
    assert!(decide_skill(&policies, "371000", &fourth, &three[..2]).is_ok());
}

#[test]
fn jining_first_2025_application_on_the_urgent_list_takes_the_base_slot_at_the_standard_amount() {
    let policies = common::load_all();
    let welder = skill("370811", "2025-05-06", "6-18-02-04", 4, "2025-03-01");
    let decision = decide_skill(&policies, "370800", &welder, &[]).unwrap();
    assert_eq!(decision.policy.id.as_str(), "jining-2025-skill-upgrade");
    assert_eq!(decision.amount.value.to_string(), "1500.00");
    assert_eq!(decision.amount.rule.as_str(), "jining-2025-skill-upgrade/amounts");
    assert_eq!(decision.slot.unwrap().value.kind, SlotKind::Base);
}

#[test]
fn jining_two_grandfathered_applications_leave_one_extra_slot_for_the_urgent_list() {
    let policies = common::load_all();
    let grandfathered =
        [earlier("4-10-03-02", 4, "2025-02-10"), earlier("4-10-03-01", 4, "2025-04-15")];
    // Both were decided under the 2024 rules kept in Jining until 2025-04-15.
    let on_15th = skill("370811", "2025-04-15", "4-10-03-01", 4, "2025-03-01");
    assert_eq!(
        decide_skill(&policies, "370800", &on_15th, &[]).unwrap().policy.id.as_str(),
        "shandong-2024-skill-upgrade"
    );

    let urgent = skill("370811", "2025-05-06", "6-18-02-04", 3, "2025-03-01");
    let decision = decide_skill(&policies, "370800", &urgent, &grandfathered).unwrap();
    assert_eq!(decision.amount.value.to_string(), "1000.00");
    assert_eq!(decision.amount.rule.as_str(), "jining-2025-skill-upgrade/extra_amounts");
    assert_eq!(decision.slot.unwrap().value.kind, SlotKind::Extra);

    let not_urgent = skill("370811", "2025-05-06", "4-10-03-05", 3, "2025-03-01");
    let r = decide_skill(&policies, "370800", &not_urgent, &grandfathered).unwrap_err();
    assert_eq!(
        (r[0].code, r[0].field.as_str()),
        (RejectionCode::AnnualLimitReached, "certificate.occupation_code")
    );

    let mut three = grandfathered.to_vec();
    three.push(earlier("6-18-01-01", 5, "2025-05-01"));
    assert_eq!(
        first_code(decide_skill(&policies, "370800", &urgent, &three)),
        RejectionCode::AnnualLimitReached
    );
}

#[test]
fn a_level_2_certificate_has_no_standard() {
    let policies = common::load_all();
    let technician = skill("371002", "2024-08-01", "4-10-03-02", 2, "2024-05-01");
    let r = decide_skill(&policies, "371000", &technician, &[]).unwrap_err();
    assert_eq!(
        (r[0].code, r[0].field.as_str()),
        (RejectionCode::NoStandardForLevel, "certificate.level")
    );
}

fn credit(first_17: &str) -> CreditCode {
    CreditCode::parse(&format!("{first_17}{}", CreditCode::check_char_for(first_17).unwrap()))
        .unwrap()
}

fn refund_app(
    size: EnterpriseSize,
    kind: OrganisationKind,
    staff: u32,
    laid_off: u32,
) -> JobStabilizationApplication {
    JobStabilizationApplication {
        county: pool("371002"),
        submitted_on: d("2024-08-01"),
        enterprise: Enterprise {
            credit_code: credit("91371000MA3C1234X"),
            name: "某公司".into(),
            size,
            kind,
            labour_dispatch: false,
        },
        premiums: Premiums {
            paid_last_year: Money::parse("10000.00").unwrap(),
            months_paid_in_full: 12,
        },
        staff: Staff { insured_employees: staff, laid_off_last_year: laid_off },
        dispatch: None,
        pool_reserve: None,
        screened: false,
    }
}

fn decide_refund(
    policies: &[Policy],
    a: &JobStabilizationApplication,
) -> Result<Decision, Vec<Rejection>> {
    let policy =
        select(policies, Program::JobStabilizationRefund, pool("371000"), a.business_date())
            .map_err(|r| vec![r])?;
    job_stabilization::decide(a, &[], policy)
}

#[test]
fn layoff_ceilings_are_inclusive() {
    let policies = common::load_all();
    use EnterpriseSize::*;
    let k = OrganisationKind::Enterprise;
    assert_eq!(
        decide_refund(&policies, &refund_app(Sme, k, 30, 6)).unwrap().amount.value.to_string(),
        "6000.00"
    );
    assert_eq!(
        first_code(decide_refund(&policies, &refund_app(Sme, k, 30, 7))),
        RejectionCode::NotEligible
    );
    assert_eq!(
        decide_refund(&policies, &refund_app(Large, k, 200, 11)).unwrap().amount.value.to_string(),
        "3000.00"
    );
    assert_eq!(
        first_code(decide_refund(&policies, &refund_app(Large, k, 200, 12))),
        RejectionCode::NotEligible
    );
}

#[test]
fn a_large_social_organisation_gets_60_percent() {
    let policies = common::load_all();
    let decision = decide_refund(
        &policies,
        &refund_app(EnterpriseSize::Large, OrganisationKind::SocialOrganisation, 500, 0),
    )
    .unwrap();
    assert_eq!(decision.amount.value.to_string(), "6000.00");
    assert_eq!(decision.amount.rule.as_str(), "shandong-2024-job-stabilization/rate_sme_kinds");
}

#[test]
fn a_labour_dispatch_refund_is_split() {
    let policies = common::load_all();
    let mut a = refund_app(EnterpriseSize::Large, OrganisationKind::Enterprise, 100, 5);
    a.enterprise.labour_dispatch = true;
    a.premiums.paid_last_year = Money::parse("100000.00").unwrap();
    let host = |code: &str, kind, workers, premiums: &str| Host {
        credit_code: credit(code),
        name: format!("{kind:?}"),
        kind,
        dispatched_workers: workers,
        premiums_paid_last_year: Amount::parse(premiums).unwrap(),
    };
    a.dispatch = Some(Dispatch {
        own_staff: OwnStaff {
            employees: 20,
            premiums_paid_last_year: Amount::parse("20000.00").unwrap(),
        },
        hosts: vec![
            host("91371000MA3C0001A", HostKind::Enterprise, 50, "50000.00"),
            host("11371000MB0000001", HostKind::GovernmentBody, 20, "20000.00"),
            host("12371000MB0000002", HostKind::PublicInstitution, 10, "10000.00"),
        ],
    });
    // 5 of 100 = 5%: within 5.5% over dispatched and own staff together; large: 30%.
    let decision = decide_refund(&policies, &a).unwrap();
    let parts: Vec<_> = decision
        .lines
        .iter()
        .map(|l| (matches!(l.payee, Payee::Applicant), l.amount.to_string()))
        .collect();
    assert_eq!(
        parts,
        [
            (false, "15000.00".into()),
            (false, "0.00".into()),
            (false, "0.00".into()),
            (true, "6000.00".into())
        ]
    );
    assert_eq!(decision.amount.value.to_string(), "21000.00");
}

#[test]
fn fifteen_percent_of_an_uneven_balance_is_rounded_down() {
    let cap = quota_cap(Amount::parse("33333333.33").unwrap(), Ratio::parse("0.15").unwrap());
    // 4 999 999.9995 exactly.
    assert_eq!(cap.to_string(), "4999999.99");
}

#[test]
fn no_policy_in_force_outside_every_period() {
    let policies = common::load_all();
    for (program, pool_code, date) in [
        (Program::SkillUpgrade, "371000", "2023-12-31"),
        (Program::SkillUpgrade, "371000", "2025-01-01"),
        (Program::JobStabilizationRefund, "370100", "2022-03-01"),
        (Program::OnTheJobTraining, "370100", "2022-01-01"),
        (Program::VocationalTraining, "370800", "2024-10-01"),
        (Program::ExpansionQuota, "370800", "2025-01-01"),
    ] {
        let r = select(&policies, program, pool(pool_code), d(date)).unwrap_err();
        assert_eq!(r.code, RejectionCode::NoPolicyInForce, "{program} {pool_code} {date}");
    }
}

#[test]
fn training_is_decided_by_class_start_date() {
    let policies = common::load_all();
    let app = |start: &str| TrainingApplication {
        payee: None,
        county: pool("371502"),
        submitted_on: d("2024-10-20"),
        applicant: Applicant {
            id_number: IdNumber::parse("370811199001011236").unwrap(),
            name: "李四".into(),
        },
        eligibility: PersonEligibility {
            insured_months: None,
            receiving_unemployment_benefit: true,
        },
        training: Training {
            catalog: CatalogKind::Urgent,
            occupation_code: Some(OccupationCode::parse("4-10-01-05").unwrap()),
            item: None,
            level: Some(Level::from_number(5).unwrap()),
            assessment: Assessment::Certificate,
            class_start_on: d(start),
            hours: 40,
        },
        funding: None,
    };
    let before = app("2024-08-31");
    let r = select(&policies, Program::VocationalTraining, pool("371500"), before.business_date())
        .unwrap_err();
    assert_eq!(
        (r.code, r.field.as_str()),
        (RejectionCode::NoPolicyInForce, "training.class_start_on")
    );

    let from = app("2024-09-01");
    let policy =
        select(&policies, Program::VocationalTraining, pool("371500"), from.business_date())
            .unwrap();
    let decision = training::decide(&from, &[], policy).unwrap();
    assert_eq!(decision.amount.value.to_string(), "600.00");
    // A benefit recipient is the fund's ordinary spending, outside the 15% cap.
    assert_eq!(decision.funding.value, Funding::UnemploymentInsurance);
    assert_eq!(decision.business_date, d("2024-09-01"));
}
