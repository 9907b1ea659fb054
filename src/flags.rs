//! Suspicious patterns (疑点数据, `GET /v1/flags?pool=…`): what the notices ask a ledger to
//! surface for a person to look at (鲁人社发〔2024〕8号 item 8), each flag with the events
//! behind it. A flag is not a finding: it says where to look.
//!
//! - `shared_account`: one bank account (compared by its keyed hash, never the number) paid
//!   for several persons. Only reissues record an account (the first payout goes to the
//!   account on file with the bank), so this compares reissue accounts.
//! - `several_counties`: one person with applications in several counties in one year.
//! - `account_changed_repeatedly`: a payee whose account changed between a failure and a
//!   reissue more than once.
//!
//! The queries start from the pool's rows of `application_status` (reissued applications,
//! persons), so they grow with the pool's reissues and persons, not with the log.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;

/// Most flags of one kind in one answer.
pub const FLAGS_PER_KIND_MAX: usize = 500;

/// An event behind a flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub event_id: i64,
    /// Its position in the log (absent until the sequencer has positioned it).
    pub position: Option<i64>,
    #[serde(rename = "type")]
    pub event_type: String,
    pub application: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payout: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    pub kind: &'static str,
    /// A sentence a person can act on.
    pub detail: String,
    pub events: Vec<Evidence>,
}

/// One payout event of an application (issued or failed), as the flags read it.
#[derive(Debug, Clone)]
pub struct PayoutEvent {
    pub evidence: Evidence,
    /// The party (`person:<key>` or `enterprise:<code>`) of the application.
    pub party: String,
    /// A reissue's account: its keyed hash (or, for reissues recorded before the hash, the
    /// sealed value, which is unique per reissue) and its masked number.
    pub account: Option<(String, String)>,
    /// The decision line the payout pays, for an application paid per payee (a
    /// labour-dispatch refund): each line is its own chain of failures and reissues, to its
    /// own payee.
    pub line: Option<u32>,
}

/// Accounts paid (by reissue) for more than one party. Pure.
pub fn shared_accounts(events: &[PayoutEvent]) -> Vec<Flag> {
    let mut by_account: BTreeMap<&str, (BTreeSet<&str>, &str, Vec<Evidence>)> = BTreeMap::new();
    for e in events {
        if let Some((key, masked)) = &e.account {
            let entry = by_account
                .entry(key.as_str())
                .or_insert_with(|| (BTreeSet::new(), masked.as_str(), vec![]));
            entry.0.insert(e.party.as_str());
            entry.2.push(e.evidence.clone());
        }
    }
    by_account
        .into_values()
        .filter(|(parties, _, _)| parties.len() > 1)
        .map(|(parties, masked, events)| Flag {
            kind: "shared_account",
            detail: format!("account {masked} was paid for {} different persons", parties.len()),
            events,
        })
        .take(FLAGS_PER_KIND_MAX)
        .collect()
}

/// Applications whose reissues changed the account more than once. Pure; `events` in log
/// order.
pub fn repeated_account_changes(events: &[PayoutEvent]) -> Vec<Flag> {
    // By application and line: two payees' reissues are not one payee's account changes.
    let mut by_application: BTreeMap<(&str, Option<u32>), Vec<&PayoutEvent>> = BTreeMap::new();
    for e in events {
        by_application.entry((e.evidence.application.as_str(), e.line)).or_default().push(e);
    }
    let mut flags = Vec::new();
    for ((application, _), evs) in by_application {
        let mut changes = 0;
        let mut last: Option<&str> = None;
        let mut failed_before = false;
        for e in &evs {
            if e.evidence.event_type == "PayoutFailed" {
                failed_before = true;
            } else if let Some((key, _)) = &e.account {
                if failed_before && last != Some(key.as_str()) {
                    changes += 1;
                }
                last = Some(key.as_str());
                failed_before = false;
            }
        }
        if changes > 1 {
            flags.push(Flag {
                kind: "account_changed_repeatedly",
                detail: format!(
                    "application {application}: the account was changed {changes} times after failed payouts"
                ),
                events: evs.iter().map(|e| e.evidence.clone()).collect(),
            });
        }
    }
    flags.truncate(FLAGS_PER_KIND_MAX);
    flags
}

/// Every payout event of the pool's applications that were reissued at least once.
async fn reissued_payout_events(
    conn: &mut PgConnection,
    pool: &str,
) -> Result<Vec<PayoutEvent>, sqlx::Error> {
    let rows: Vec<(i64, Option<i64>, String, Value, String)> = sqlx::query_as(
        "SELECT e.id, l.position, e.event_type, e.data, s.party
           FROM application_status s
           JOIN events e ON e.stream_id = 'application-' || s.application
           LEFT JOIN log l ON l.event_id = e.id
          WHERE s.pool = $1 AND cardinality(s.payouts) >= 2
            AND e.event_type IN ('PayoutIssued', 'PayoutFailed')
          ORDER BY e.id",
    )
    .bind(pool)
    .fetch_all(conn)
    .await?;
    // A failure names only its payout: its line is the one that payout was issued for.
    let mut lines: BTreeMap<String, u32> = BTreeMap::new();
    Ok(rows
        .into_iter()
        .map(|(id, position, event_type, data, party)| {
            let payout = data["payout"].as_str().unwrap_or("").to_string();
            let line = match data.get("line").and_then(Value::as_u64) {
                Some(l) => {
                    let l = u32::try_from(l).unwrap_or(u32::MAX);
                    lines.insert(payout.clone(), l);
                    Some(l)
                }
                None => lines.get(&payout).copied(),
            };
            // A payout to a host employer pays that unit, not the applying company.
            let party = match data["payee"]["credit_code"].as_str() {
                Some(code) => format!("enterprise:{code}"),
                None => party,
            };
            let account = data.get("account").map(|a| {
                let key = a
                    .get("number_key")
                    .or_else(|| a.get("number_sealed"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                (key, a["number_masked"].as_str().unwrap_or("").to_string())
            });
            PayoutEvent {
                evidence: Evidence {
                    event_id: id,
                    position,
                    event_type,
                    application: data["application"].as_str().unwrap_or("").to_string(),
                    payout: data["payout"].as_str().map(str::to_string),
                },
                party,
                account,
                line,
            }
        })
        .collect())
}

/// Persons with applications in more than one county in one year, one of them in the pool.
async fn several_counties(conn: &mut PgConnection, pool: &str) -> Result<Vec<Flag>, sqlx::Error> {
    let rows: Vec<(String, i32, String, String, i64, Option<i64>)> = sqlx::query_as(
        "WITH p AS (SELECT DISTINCT party, year FROM application_status
                     WHERE pool = $1 AND party LIKE 'person:%'),
              many AS (SELECT s.party, s.year FROM application_status s JOIN p USING (party, year)
                        GROUP BY s.party, s.year HAVING count(DISTINCT s.county) > 1
                        LIMIT $2)
         SELECT s.party, s.year, s.county, s.application, e.id, l.position
           FROM application_status s JOIN many USING (party, year)
           JOIN events e ON e.stream_id = 'application-' || s.application
                        AND e.event_type = 'ApplicationSubmitted'
           LEFT JOIN log l ON l.event_id = e.id
          ORDER BY s.party, s.year, e.id",
    )
    .bind(pool)
    .bind(FLAGS_PER_KIND_MAX as i64)
    .fetch_all(conn)
    .await?;
    let mut grouped: BTreeMap<(String, i32), (BTreeSet<String>, Vec<Evidence>)> = BTreeMap::new();
    for (party, year, county, application, id, position) in rows {
        let g = grouped.entry((party, year)).or_default();
        g.0.insert(county);
        g.1.push(Evidence {
            event_id: id,
            position,
            event_type: "ApplicationSubmitted".into(),
            application,
            payout: None,
        });
    }
    Ok(grouped
        .into_iter()
        .map(|((_, year), (counties, events))| Flag {
            kind: "several_counties",
            detail: format!(
                "one person applied in {} counties in {year}: {}",
                counties.len(),
                counties.into_iter().collect::<Vec<_>>().join(", ")
            ),
            events,
        })
        .collect())
}

/// Every flag of a pool.
pub async fn flags(conn: &mut PgConnection, pool: &str) -> Result<Vec<Flag>, sqlx::Error> {
    let payouts = reissued_payout_events(conn, pool).await?;
    let mut out = shared_accounts(&payouts);
    out.extend(several_counties(conn, pool).await?);
    out.extend(repeated_account_changes(&payouts));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: i64, t: &str, app: &str, party: &str, account: Option<&str>) -> PayoutEvent {
        PayoutEvent {
            evidence: Evidence {
                event_id: id,
                position: Some(id),
                event_type: t.into(),
                application: app.into(),
                payout: Some(format!("p{id}")),
            },
            party: party.into(),
            account: account.map(|k| (k.to_string(), "****1234".to_string())),
            line: None,
        }
    }

    /// A labour-dispatch refund paid per payee: the host's line and the company's line each
    /// failed and were reissued once, to different accounts. Neither payee changed its
    /// account twice.
    #[test]
    fn reissues_of_two_lines_of_one_application_are_not_repeated_changes() {
        let on = |line, e: PayoutEvent| PayoutEvent { line: Some(line), ..e };
        let events = [
            on(0, ev(1, "PayoutIssued", "a1", "enterprise:h", None)),
            on(2, ev(2, "PayoutIssued", "a1", "enterprise:c", None)),
            on(0, ev(3, "PayoutFailed", "a1", "enterprise:c", None)),
            on(0, ev(4, "PayoutIssued", "a1", "enterprise:h", Some("host account"))),
            on(2, ev(5, "PayoutFailed", "a1", "enterprise:c", None)),
            on(2, ev(6, "PayoutIssued", "a1", "enterprise:c", Some("own account"))),
        ];
        assert!(repeated_account_changes(&events).is_empty());
        // The same events as one chain (lines not told apart) would be flagged.
        let merged: Vec<PayoutEvent> =
            events.iter().cloned().map(|e| PayoutEvent { line: None, ..e }).collect();
        assert_eq!(repeated_account_changes(&merged).len(), 1);
    }

    #[test]
    fn one_account_for_two_persons_is_flagged_with_both_reissues() {
        let events = [
            ev(1, "PayoutIssued", "a1", "person:x", Some("k")),
            ev(2, "PayoutIssued", "a2", "person:y", Some("k")),
            ev(3, "PayoutIssued", "a3", "person:z", Some("other")),
            ev(4, "PayoutIssued", "a4", "person:x", Some("k")),
        ];
        let flags = shared_accounts(&events);
        assert_eq!(flags.len(), 1);
        let ids: Vec<i64> = flags[0].events.iter().map(|e| e.event_id).collect();
        assert_eq!(ids, [1, 2, 4]);
    }

    #[test]
    fn a_second_change_after_a_second_failure_is_flagged_a_first_is_not() {
        let once = [
            ev(1, "PayoutIssued", "a1", "person:x", None),
            ev(2, "PayoutFailed", "a1", "person:x", None),
            ev(3, "PayoutIssued", "a1", "person:x", Some("k1")),
        ];
        assert!(repeated_account_changes(&once).is_empty());
        let mut twice = once.to_vec();
        twice.push(ev(4, "PayoutFailed", "a1", "person:x", None));
        twice.push(ev(5, "PayoutIssued", "a1", "person:x", Some("k2")));
        let flags = repeated_account_changes(&twice);
        assert_eq!(flags.len(), 1);
        assert_eq!(flags[0].events.len(), 5);
        // The same account again after the second failure is no change.
        let mut same = once.to_vec();
        same.push(ev(4, "PayoutFailed", "a1", "person:x", None));
        same.push(ev(5, "PayoutIssued", "a1", "person:x", Some("k1")));
        assert!(repeated_account_changes(&same).is_empty());
    }
}
