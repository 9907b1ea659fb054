//! Checks shared by the decisions.

use chrono::NaiveDate;

use serde::{Deserialize, Serialize};

use crate::history::{PriorApplication, Subject};
use crate::ids::DivisionCode;
use crate::level::Level;
use crate::policy::{Policy, Program};
use crate::rejection::{Rejection, RejectionCode};

/// The caller passed a policy of another program: no policy of the right
/// program was applied, so none is in force for this request.
pub(crate) fn wrong_program(policy: &Policy, expected: Program) -> Rejection {
    Rejection::new(
        RejectionCode::NoPolicyInForce,
        "program",
        format!(
            "policy {} is a {} policy, not a {expected} policy; select the {expected} policy in force",
            policy.id,
            policy.program()
        ),
    )
}

/// `no_policy_in_force` unless `policy` applies at `place` on `date`.
pub(crate) fn in_force(
    policy: &Policy,
    place: &DivisionCode,
    date: NaiveDate,
) -> Option<Rejection> {
    if policy.in_force(place, date) {
        return None;
    }
    let program = policy.program();
    Some(Rejection::new(
        RejectionCode::NoPolicyInForce,
        program.business_date_field(),
        format!(
            "policy {} ({}) does not apply in {place} on {date}; no {program} policy is in force \
             there and then, so the application cannot be decided until one is published",
            policy.id, policy.document
        ),
    ))
}

/// How far the exclusion between the skill-upgrade and the vocational-training subsidy
/// reaches (鲁人社发〔2024〕8号 item 四 and 聊人社字〔2024〕12号 item 五: "同一职业（工种）
/// 同一等级…不得重复享受" / "不能同时享受"): a policy setting, `exclusion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// The other subsidy for the same occupation at the same level blocks this one.
    #[default]
    SameOccupationAndLevel,
    /// The other subsidy for the same occupation at any level blocks this one.
    SameOccupation,
}

pub(crate) fn validation(field: &str, message: impl Into<String>) -> Rejection {
    Rejection::new(RejectionCode::ValidationFailed, field, message)
}

fn program_zh(program: Program) -> &'static str {
    match program {
        Program::SkillUpgrade => "skill-upgrade subsidy (技能提升补贴)",
        Program::VocationalTraining => "vocational-training subsidy (职业培训补贴)",
        _ => "subsidy",
    }
}

fn level_text(level: Option<Level>) -> String {
    match level {
        Some(l) => format!(" at level {l} ({})", l.name_zh()),
        None => String::new(),
    }
}

/// The repeat rules of 鲁人社发〔2024〕8号 item 4 and 聊人社字〔2024〕12号
/// item 5: the same subject and level once ever; nothing for a lower level
/// once a higher one was subsidized; not both the skill-upgrade and the
/// training subsidy for the same subject and level. Only standing
/// applications (pending, approved, paid) block.
pub(crate) fn repeats(
    history: &[PriorApplication],
    program: Program,
    other: Program,
    exclusion: Exclusion,
    subject: &Subject,
    level: Option<Level>,
    field: &str,
) -> Vec<Rejection> {
    let mut out = Vec::new();
    let standing = history.iter().filter(|h| h.status.stands() && &h.subject == subject);
    for h in standing {
        let when = format!("applied for on {} (status: {})", h.submitted_on, h.status.as_str());
        if h.program == program && h.level == level {
            out.push(Rejection::new(
                RejectionCode::OccupationLevelAlreadySubsidized,
                field,
                format!(
                    "a {} for {subject}{} was already {when}; the same occupation and level is \
                     subsidized once only",
                    program_zh(program),
                    level_text(level)
                ),
            ));
        } else if h.program == program
            && matches!((h.level, level), (Some(had), Some(now)) if had.is_higher_than(now))
        {
            out.push(Rejection::new(
                RejectionCode::HigherLevelAlreadySubsidized,
                field,
                format!(
                    "a {} for {subject}{} was {when}; after a higher level of an occupation \
                     is subsidized, a lower level of it is not",
                    program_zh(program),
                    level_text(h.level)
                ),
            ));
        } else if h.program == other && (exclusion == Exclusion::SameOccupation || h.level == level)
        {
            out.push(Rejection::new(
                RejectionCode::TrainingAndSkillUpgradeExclusive,
                field,
                format!(
                    "a {} for {subject}{} was {when}; the skill-upgrade and the vocational-training \
                     subsidy are not both paid for the same occupation and level",
                    program_zh(other),
                    level_text(level)
                ),
            ));
        }
    }
    out
}
