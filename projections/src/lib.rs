//! Pure folds from events to read models. No I/O: a replay, a rebuild and a test need no
//! database, only the events.

pub mod applications;
pub mod batches;
pub mod entries;
pub mod notices;
pub mod payouts;
pub mod pools;
pub mod spending;
pub mod tables;

/// Every fold of this crate over one log: what the stored read models are views of
/// ([`tables::Changes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadModels {
    pub pools: pools::Pools,
    pub applications: applications::Applications,
    pub notices: notices::Notices,
    pub payouts: payouts::Payouts,
    pub spending: spending::Spending,
    pub entries: entries::Entries,
}

impl ReadModels {
    pub fn apply<D: crate::EventData + ?Sized>(
        &mut self,
        event_type: &str,
        data: &D,
    ) -> Result<(), ProjectionError> {
        if event_type == <events::person::PersonErased as events::DomainEvent>::TYPE {
            // A notice line names its application, not its person: the applications fold
            // knows whose they are.
            let e: events::person::PersonErased = decode(event_type, data)?;
            let party = events::Tag::person(&e.person).to_string();
            let ids: Vec<String> =
                self.applications.of_party(&party).map(|a| a.id.clone()).collect();
            self.notices.erase_lines(&ids);
        }
        self.pools.apply(event_type, data)?;
        self.applications.apply(event_type, data)?;
        self.notices.apply(event_type, data)?;
        self.payouts.apply(event_type, data)?;
        self.spending.apply(event_type, data)?;
        self.entries.apply(event_type, data)
    }
}

/// An event this crate cannot read: a stored row that does not match its type's schema.
#[derive(Debug, thiserror::Error)]
#[error("event {event_type} does not read as its schema: {source}")]
pub struct ProjectionError {
    pub event_type: String,
    #[source]
    pub source: serde_json::Error,
}

/// An event's data as stored: parsed into a `serde_json::Value`, or the jsonb's text. A
/// replay reads the text and decodes each event straight into its type, building no `Value`
/// (whose maps cost more to build, match and free than the typed decode itself).
pub trait EventData {
    fn decode_as<E: serde::de::DeserializeOwned + Clone + 'static>(
        &self,
    ) -> Result<E, serde_json::Error>;
}

impl EventData for serde_json::Value {
    fn decode_as<E: serde::de::DeserializeOwned + Clone + 'static>(
        &self,
    ) -> Result<E, serde_json::Error> {
        E::deserialize(self)
    }
}

impl EventData for str {
    fn decode_as<E: serde::de::DeserializeOwned + Clone + 'static>(
        &self,
    ) -> Result<E, serde_json::Error> {
        serde_json::from_str(self)
    }
}

/// The jsonb's text of one event, parsed once however many folds read it: the first fold to
/// ask for its type parses it, the others get a copy. Replay and rebuild hand every event to
/// all six folds, and up to five of them read the same payout or submission; a copy of the
/// typed event costs a fraction of parsing its text again.
pub struct ParsedOnce<'a> {
    text: &'a str,
    parsed: std::cell::RefCell<Option<Box<dyn std::any::Any>>>,
}

impl std::fmt::Debug for ParsedOnce<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedOnce").field("text", &self.text).finish_non_exhaustive()
    }
}

impl<'a> ParsedOnce<'a> {
    pub fn new(text: &'a str) -> Self {
        ParsedOnce { text, parsed: std::cell::RefCell::new(None) }
    }
}

impl EventData for ParsedOnce<'_> {
    fn decode_as<E: serde::de::DeserializeOwned + Clone + 'static>(
        &self,
    ) -> Result<E, serde_json::Error> {
        if let Some(e) = self.parsed.borrow().as_ref().and_then(|p| p.downcast_ref::<E>()) {
            return Ok(e.clone());
        }
        let e: E = serde_json::from_str(self.text)?;
        *self.parsed.borrow_mut() = Some(Box::new(e.clone()));
        Ok(e)
    }
}

pub(crate) fn decode<E: events::DomainEvent + Clone + 'static, D: EventData + ?Sized>(
    event_type: &str,
    data: &D,
) -> Result<E, ProjectionError> {
    data.decode_as()
        .map_err(|source| ProjectionError { event_type: event_type.to_string(), source })
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use serde_json::{json, Value};

    use super::*;
    use crate::applications::{Status, ERASED as ERASED_SHOWN};

    fn submitted(id: &str, program: &str, party: Value, subject: &str, amount: &str) -> Value {
        let mut e = json!({
            "application": id, "program": program, "county": "371502", "pool": "371500",
            "submitted_on": "2024-10-20", "year": 2024, "submitted_by": "clerk",
            "subject": subject, "details": {},
            "decision": {"policy": "p", "document": "d", "amount": amount, "amount_rule": "r",
                         "funding": "expansion_pilot", "funding_rule": "r"},
        });
        if program == "job_stabilization_refund" {
            e["enterprise"] = party;
            e["decision"]["funding"] = json!("unemployment_insurance");
        } else {
            e["person"] = party;
            e["level"] = json!(4);
            e["decision"]["slot"] = json!({"kind": "base", "year": 2024, "number": 1, "rule": "r"});
        }
        e
    }

    fn person() -> Value {
        json!({"key": "k1", "id_number_sealed": "s", "name_sealed": "s",
               "id_number_masked": "371502********1234", "name_masked": "周*"})
    }

    fn issued(payout: &str, application: &str, amount: &str, paid_on: &str) -> Value {
        json!({"payout": payout, "application": application, "pool": "371500", "year": 2024,
               "amount": amount, "counts_against_quota": true, "paid_on": paid_on,
               "issued_by": "finance"})
    }

    fn fold(events: &[(&str, Value)]) -> ReadModels {
        let mut m = ReadModels::default();
        for (t, d) in events {
            m.apply(t, d).unwrap();
        }
        m
    }

    fn money(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn an_application_through_notice_payout_failure_and_recovery() {
        let m = fold(&[
            (
                "ApplicationSubmitted",
                submitted("a1", "vocational_training", person(), "6-18-02-04", "700.00"),
            ),
            (
                "ApplicationApproved",
                json!({"application": "a1", "pool": "371500", "year": 2024,
                "amount": "700.00", "funding": "expansion_pilot", "counts_against_quota": true,
                "reviewer": "r", "approved_on": "2024-10-21"}),
            ),
            (
                "NoticeOpened",
                json!({"notice": "n1", "county": "371502", "pool": "371500",
                "starts_on": "2024-11-04", "ends_on": "2024-11-08", "working_days": 5,
                "lines": [{"application": "a1", "name_masked": "周*", "id_number_masked": "371502********1234",
                           "program": "vocational_training", "amount": "700.00"}],
                "opened_by": "clerk"}),
            ),
            (
                "ApplicationNoticed",
                json!({"application": "a1", "notice": "n1", "ends_on": "2024-11-08"}),
            ),
            (
                "ObjectionFiled",
                json!({"objection": "o1", "notice": "n1", "application": "a1",
                "summary": "s", "filed_on": "2024-11-05"}),
            ),
            (
                "ObjectionResolved",
                json!({"objection": "o1", "application": "a1", "upheld": false,
                "note": "已核查", "resolved_by": "r", "resolved_on": "2024-11-06"}),
            ),
            (
                "NoticeClosed",
                json!({"notice": "n1", "closed_on": "2024-11-09", "cleared": ["a1"], "closed_by": "clerk"}),
            ),
            (
                "ApplicationCleared",
                json!({"application": "a1", "notice": "n1", "cleared_on": "2024-11-09"}),
            ),
            ("PayoutIssued", issued("p1", "a1", "700.00", "2024-11-29")),
            (
                "PayoutFailed",
                json!({"payout": "p1", "application": "a1", "reason": "账户已销户", "failed_on": "2024-12-02"}),
            ),
        ]);
        let a = &m.applications.by_id["a1"];
        assert_eq!((a.status, a.paid), (Status::PayoutFailed, Decimal::ZERO));
        let row = a.status_row();
        assert_eq!(
            (row.notice.as_deref(), row.level, row.party.as_str()),
            (Some("n1"), Some(4), "person:k1")
        );
        assert_eq!(m.notices.notices["n1"].status, notices::CLOSED);
        assert_eq!(m.notices.objections["o1"].status, notices::DISMISSED);
        assert_eq!(m.notices.line_rows().len(), 1);
        let p = &m.payouts.by_id["p1"];
        assert_eq!(
            (p.status.as_str(), p.county.as_str(), p.failure_reason.as_deref()),
            ("failed", "371502", Some("账户已销户"))
        );
        // The payout is booked in November, its failure in December: November stays as reported.
        let spending = m.spending.rows();
        assert_eq!(spending.len(), 2);
        let (nov, dec) = (&spending[0], &spending[1]);
        assert_eq!(
            (nov.0.month.as_str(), nov.1.payouts, nov.1.paid, nov.1.failed),
            ("2024-11", 1, money("700"), Decimal::ZERO)
        );
        assert_eq!(
            (dec.0.month.as_str(), dec.1.payouts, dec.1.failed, dec.1.net()),
            ("2024-12", 0, money("700"), money("-700"))
        );
        assert_eq!(nov.0.funding, "expansion_pilot");
    }

    #[test]
    fn an_erasure_hides_the_persons_earlier_applications_and_lines_and_moves_no_money() {
        let other = json!({"key": "k2", "id_number_sealed": "s", "name_sealed": "s",
                           "id_number_masked": "370811********5678", "name_masked": "王*"});
        let history = vec![
            (
                "ApplicationSubmitted",
                submitted("a1", "vocational_training", person(), "6-18-02-04", "700.00"),
            ),
            (
                "ApplicationSubmitted",
                submitted("a2", "vocational_training", other, "6-18-02-04", "700.00"),
            ),
            (
                "NoticeOpened",
                json!({"notice": "n1", "county": "371502", "pool": "371500",
                "starts_on": "2024-11-04", "ends_on": "2024-11-08", "working_days": 5,
                "lines": [{"application": "a1", "name_masked": "周*", "id_number_masked": "371502********1234",
                           "program": "vocational_training", "amount": "700.00"},
                          {"application": "a2", "name_masked": "王*", "id_number_masked": "370811********5678",
                           "program": "vocational_training", "amount": "700.00"}],
                "opened_by": "clerk"}),
            ),
            ("PayoutIssued", issued("p1", "a1", "700.00", "2024-11-29")),
        ];
        let resubmitted = (
            "ApplicationSubmitted",
            submitted("a3", "skill_upgrade", person(), "4-10-01-05", "1500.00"),
        );
        let mut kept = history.clone();
        kept.push(resubmitted.clone());
        let before = fold(&kept);
        let mut erased = history.clone();
        erased.push(("PersonErased", json!({"person": "k1", "erased_on": "2025-03-01"})));
        // The same person applies again afterwards: shown, under a new data key.
        erased.push(resubmitted);
        let after = fold(&erased);
        let (a1, a2, a3) = (
            &after.applications.by_id["a1"],
            &after.applications.by_id["a2"],
            &after.applications.by_id["a3"],
        );
        assert_eq!(
            (a1.display_name.as_str(), a1.display_id.as_str(), a1.erased),
            (ERASED_SHOWN, ERASED_SHOWN, true)
        );
        assert_eq!((a2.display_name.as_str(), a2.erased), ("王*", false), "another person");
        assert_eq!((a3.display_name.as_str(), a3.erased), ("周*", false), "recorded after");
        let lines = after.notices.line_rows();
        assert_eq!(
            lines
                .iter()
                .map(|l| (
                    l.application.as_str(),
                    l.name_masked.as_str(),
                    l.id_number_masked.as_str()
                ))
                .collect::<Vec<_>>(),
            vec![("a1", ERASED_SHOWN, ERASED_SHOWN), ("a2", "王*", "370811********5678")]
        );
        assert_eq!(lines[0].amount, money("700.00"), "the line's amount stays");
        assert_eq!(
            (a1.status, a1.paid, a1.amount),
            (before.applications.by_id["a1"].status, money("700.00"), money("700.00"))
        );
        assert_eq!(after.spending, before.spending, "no money moves");
        assert_eq!(after.entries, before.entries);
        assert_eq!(after.pools, before.pools);
        assert_eq!(after.payouts, before.payouts);
    }

    #[test]
    fn a_full_recovery_frees_the_slot_and_is_booked_in_its_own_month() {
        let m = fold(&[
            (
                "ApplicationSubmitted",
                submitted("a1", "skill_upgrade", person(), "4-10-01-05", "1500.00"),
            ),
            ("PayoutIssued", issued("p1", "a1", "1500.00", "2024-11-12")),
            (
                "PayoutSettled",
                json!({"payout": "p1", "application": "a1", "bank_reference": "B1", "settled_on": "2024-11-13"}),
            ),
            (
                "RecoveryRecorded",
                json!({"recovery": "r1", "application": "a1", "pool": "371500", "year": 2024,
                "amount": "700.00", "counts_against_quota": true, "reason": "r", "recovered_on": "2025-01-03", "recorded_by": "f"}),
            ),
        ]);
        let a = &m.applications.by_id["a1"];
        assert_eq!((a.status, a.status.stands()), (Status::Settled, true));
        assert_eq!(a.slot, Some(("base".to_string(), 2024, 1)));
        assert_eq!(m.payouts.by_id["p1"].bank_reference.as_deref(), Some("B1"));
        let jan = &m.spending.rows()[1];
        assert_eq!((jan.0.month.as_str(), jan.1.recovered), ("2025-01", money("700")));

        let mut m = m;
        m.apply("RecoveryRecorded", &json!({"recovery": "r2", "application": "a1", "pool": "371500", "year": 2024,
            "amount": "800.00", "counts_against_quota": true, "reason": "r", "recovered_on": "2025-01-04", "recorded_by": "f"}))
            .unwrap();
        let a = &m.applications.by_id["a1"];
        assert_eq!(
            (a.status, a.recovered, a.paid),
            (Status::Recovered, money("1500"), money("1500"))
        );
        assert!(!a.status.stands());
        assert_eq!(m.spending.rows()[1].1.recovered, money("1500"));
    }

    #[test]
    fn an_enterprise_has_no_slot_and_a_withdrawn_application_stops_standing() {
        let code = "91371000MA3C1234XT";
        let m = fold(&[
            (
                "ApplicationSubmitted",
                submitted(
                    "a1",
                    "job_stabilization_refund",
                    json!({"credit_code": code, "name": "威海某企业"}),
                    code,
                    "26666.66",
                ),
            ),
            (
                "ApplicationSubmitted",
                submitted("a2", "skill_upgrade", person(), "4-10-01-05", "1500.00"),
            ),
            (
                "ApplicationWithdrawn",
                json!({"application": "a2", "reason": "r", "withdrawn_by": "c", "withdrawn_on": "2024-10-21"}),
            ),
        ]);
        let a1 = &m.applications.by_id["a1"];
        assert_eq!((a1.party.clone(), a1.slot.clone()), (format!("enterprise:{code}"), None));
        assert!(a1.status.stands());
        let a2 = &m.applications.by_id["a2"];
        assert_eq!(
            (a2.subject.as_str(), a2.level, a2.status.stands()),
            ("4-10-01-05", Some(4), false)
        );
        let row = m.applications.by_id["a1"].status_row();
        assert_eq!(
            (row.display_name.as_str(), row.display_id.as_str(), row.level),
            ("威海某企业", code, None)
        );
    }

    #[test]
    fn only_rejected_withdrawn_and_recovered_applications_stop_standing() {
        let fallen: Vec<_> =
            Status::ALL.into_iter().filter(|s| !s.stands()).map(Status::as_str).collect();
        assert_eq!(fallen, ["recovered", "rejected", "withdrawn"]);
    }
}
