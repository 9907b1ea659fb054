//! Which policy is in force for a program, in a pool, on a business date.
//!
//! A policy applies where one of its periods (its own or an extension)
//! covers the business date and its region contains the pool. A policy of the
//! pool itself beats one of the province, as a city's notice narrows or
//! replaces the province's for that city. Among equally specific candidates
//! the latest `effective_from` wins, then the smallest id, so that the answer
//! is the same on every replay; [`overlaps`] finds such ties so that they can
//! be refused when a policy is published.
//!
//! The business date is the submission date, except for training, where it is
//! the class start date ([`Program::business_date_field`]).

use chrono::NaiveDate;

use crate::ids::DivisionCode;
use crate::policy::{Period, Policy, Program};
use crate::rejection::{Rejection, RejectionCode};

/// The policy in force for `program` in `pool` on `business_date`, or
/// `no_policy_in_force`.
pub fn select(
    policies: &[Policy],
    program: Program,
    pool: DivisionCode,
    business_date: NaiveDate,
) -> Result<&Policy, Rejection> {
    policies
        .iter()
        .filter(|p| p.program() == program)
        .filter_map(|p| p.period_for(&pool, business_date).map(|period| (p, period)))
        .max_by(|(a, pa), (b, pb)| {
            let specific = |p: &Period| !p.region.is_province();
            specific(pa)
                .cmp(&specific(pb))
                .then(pa.effective_from.cmp(&pb.effective_from))
                .then(b.id.cmp(&a.id))
        })
        .map(|(p, _)| p)
        .ok_or_else(|| {
            Rejection::new(
                RejectionCode::NoPolicyInForce,
                program.business_date_field(),
                format!(
                    "no {program} policy is in force in pool {pool} on {business_date}; the application \
                     cannot be decided until an administrator publishes one that covers this date"
                ),
            )
        })
}

/// Pairs of policies of the same program whose periods overlap in the same
/// region, which would make [`select`] depend on the tie-break.
pub fn overlaps(policies: &[Policy]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, a) in policies.iter().enumerate() {
        for b in &policies[i + 1..] {
            if a.program() != b.program() {
                continue;
            }
            let clash = a
                .periods()
                .any(|pa| b.periods().any(|pb| pa.region == pb.region && pa.overlaps(&pb)));
            if clash {
                out.push((a.id.to_string(), b.id.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skill_upgrade::tests::policies;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn pool(s: &str) -> DivisionCode {
        DivisionCode::parse(s).unwrap()
    }

    #[test]
    fn the_pool_policy_beats_the_province_and_gaps_are_refused() {
        let policies = policies();
        let chosen = |p: &str, date: &str| {
            select(&policies, Program::SkillUpgrade, pool(p), d(date)).map(|p| p.id.to_string())
        };
        let cases = [
            ("370800", "2024-06-30", Some("shandong-2024-skill-upgrade")),
            ("371000", "2024-12-31", Some("shandong-2024-skill-upgrade")),
            ("370800", "2025-01-01", Some("shandong-2024-skill-upgrade")),
            ("370800", "2025-04-15", Some("shandong-2024-skill-upgrade")),
            ("370800", "2025-04-16", Some("jining-2025-skill-upgrade")),
            ("370800", "2030-01-01", Some("jining-2025-skill-upgrade")),
            ("371000", "2025-01-01", None),
            ("370800", "2023-12-31", None),
            ("320500", "2024-06-30", None),
        ];
        for (p, date, expected) in cases {
            match (chosen(p, date), expected) {
                (Ok(id), Some(e)) => assert_eq!(id, e, "{p} {date}"),
                (Err(r), None) => {
                    assert_eq!(r.code, RejectionCode::NoPolicyInForce);
                    assert_eq!(r.field, "submitted_on");
                }
                (got, _) => panic!("{p} {date}: {got:?}"),
            }
        }
        assert!(select(&policies, Program::VocationalTraining, pool("370800"), d("2024-06-30"))
            .is_err());
    }

    #[test]
    fn a_pool_policy_beats_a_later_province_one() {
        let mut policies = policies();
        let mut province_2025 = policies[0].clone();
        province_2025.id = crate::ids::PolicyId::parse("shandong-2025-skill-upgrade").unwrap();
        province_2025.effective_from = d("2025-01-01");
        province_2025.effective_until = None;
        province_2025.extensions.clear();
        policies.push(province_2025);
        let id = |p: &str, date: &str| {
            select(&policies, Program::SkillUpgrade, pool(p), d(date)).unwrap().id.to_string()
        };
        assert_eq!(id("370800", "2025-05-01"), "jining-2025-skill-upgrade");
        assert_eq!(id("370800", "2025-02-01"), "shandong-2024-skill-upgrade");
        assert_eq!(id("371000", "2025-02-01"), "shandong-2025-skill-upgrade");
        assert!(overlaps(&policies).is_empty(), "different regions do not clash");
        let twin = policies[2].clone();
        policies.push(twin);
        assert_eq!(overlaps(&policies).len(), 1);
    }
}
