//! Issue 15, "Erasure that keeps the proof": erasing a person destroys the data key their
//! personal values are sealed under, so their ID number, name and account no longer open in
//! the log, in an export taken before, or anywhere else, while the chain, the signed
//! checkpoints and every money figure stay exactly as they were; the views show 已删除; the
//! person key stays, so the erased person is still held to the annual limits and once-only
//! rules.

mod common;

use common::{id_number, set_up, training, Api};
use ed25519_dalek::SigningKey;
use fundledger::personal::{DataKey, Field, OpenError, Sealed};
use serde_json::{json, Value};

const ERASED: &str = "已删除";
const OCCUPATIONS: [&str; 4] = ["6-18-01-01", "6-18-01-07", "6-18-02-01", "6-18-02-04"];

fn skill_upgrade(person: u32, occupation: &str) -> Value {
    json!({
        "program": "skill_upgrade", "county": "371502", "submitted_on": "2024-08-01",
        "applicant": {"id_number": id_number("371502", person), "name": "张小三"},
        "eligibility": {"insured_months": 26, "receiving_unemployment_benefit": false},
        "certificate": {"occupation_code": occupation, "level": 4, "number": "S0000371500124",
                        "issued_on": "2024-03-01"}
    })
}

fn ok(r: &common::Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    r.json()
}

/// Submits, approves, notices, closes and pays `bodies`; settles every payout but the one of
/// `fails`, which fails and is reissued to a corrected account (then settled). Returns the
/// application ids, the notice and the reissue.
async fn paid(api: &Api, bodies: &[Value], fails: usize) -> (Vec<String>, String, String) {
    let mut ids = Vec::new();
    for body in bodies {
        let id = ok(&api.post("clerk", "/v1/applications", body).await, 201)["id"]
            .as_str()
            .unwrap()
            .to_string();
        let review = json!({"decision": "approve"});
        ok(&api.post("reviewer", &format!("/v1/applications/{id}/review"), &review).await, 200);
        ids.push(id);
    }
    let notice = json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": ids});
    let notice = ok(&api.post("clerk", "/v1/notices", &notice).await, 201)["id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await, 200);
    let pay = json!({"application_ids": ids, "paid_on": "2024-11-12"});
    let payouts = ok(&api.post("finance", "/v1/payouts", &pay).await, 201);
    let mut reissue = String::new();
    for p in payouts["payouts"].as_array().unwrap() {
        let (payout, application) = (p["id"].as_str().unwrap(), p["application"].as_str().unwrap());
        let path = format!("/v1/payouts/{payout}/settlement");
        if ids.get(fails).is_some_and(|f| f == application) {
            let failed = json!({"status": "failed", "reason": "账户已销户"});
            ok(&api.post("finance", &path, &failed).await, 200);
            let corrected = json!({"account": {"bank": "中国农业银行聊城分行",
                                               "number": "6228480012345678"},
                                   "paid_on": "2024-11-20"});
            let r = api.post("finance", &format!("/v1/payouts/{payout}/reissue"), &corrected).await;
            reissue = ok(&r, 201)["id"].as_str().unwrap().to_string();
            let path = format!("/v1/payouts/{reissue}/settlement");
            let settled = json!({"status": "settled", "bank_reference": "B-reissue"});
            ok(&api.post("finance", &path, &settled).await, 200);
        } else {
            let settled = json!({"status": "settled", "bank_reference": format!("B-{payout}")});
            ok(&api.post("finance", &path, &settled).await, 200);
        }
    }
    (ids, notice, reissue)
}

/// Every money figure a finance bureau or an auditor reads.
async fn figures(api: &Api) -> Value {
    json!({
        "quota": ok(&api.get("finance", "/v1/pools/371500/quotas/2024").await, 200),
        "spending": ok(&api.get("finance", "/v1/reports/spending?pool=371500&year=2024").await, 200),
        "trial_balance": ok(
            &api.get("finance", "/v1/reports/trial-balance?pool=371500&month=2024-11").await,
            200,
        ),
    })
}

async fn export(api: &Api) -> Vec<fundledger::audit::ExportLine> {
    let mut conn = api.db.pool.acquire().await.unwrap();
    // The export holds positioned events only: wait until every committed one is positioned
    // (the sequencer waits for the cluster's open writers, other tests' too).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let total: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut *conn).await.unwrap();
        let head = fundledger::store::sequence(&mut conn).await.unwrap();
        if head.is_some_and(|p| p.0 == total) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the log was never fully positioned");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut lines = Vec::new();
    fundledger::audit::export(&mut conn, 1, |l| {
        lines.push(l);
        Ok(())
    })
    .await
    .unwrap();
    lines
}

/// A personal value found in an export line: (person key, field, record, sealed).
type Found = (String, Field, String, Sealed);

/// The sealed personal values of an export, read from each line's canonical text as an
/// auditor with the file alone would: applicants' ID numbers and names, and reissue accounts
/// (with the person of their application).
fn sealed_values(lines: &[fundledger::audit::ExportLine]) -> Vec<Found> {
    let mut person_of_application = std::collections::HashMap::new();
    let mut found = Vec::new();
    for line in lines {
        let row: Value = serde_json::from_str(&line.canonical).unwrap();
        let (stream, event_type, data) =
            (row[1].as_str().unwrap(), row[3].as_str().unwrap(), &row[8]);
        match event_type {
            "ApplicationSubmitted" => {
                let person = data["person"]["key"].as_str().unwrap().to_string();
                person_of_application.insert(data["application"].clone(), person.clone());
                for (field, name) in [(Field::IdNumber, "id_number"), (Field::Name, "name")] {
                    let sealed = data["person"][format!("{name}_sealed")].as_str().unwrap();
                    found.push((
                        person.clone(),
                        field,
                        stream.to_string(),
                        Sealed::from_recorded(sealed),
                    ));
                }
            }
            "PayoutIssued" if data.get("account").is_some() => {
                let person = person_of_application[&data["application"]].clone();
                let sealed = data["account"]["number_sealed"].as_str().unwrap();
                let record = format!("payout-{}", data["payout"].as_str().unwrap());
                found.push((person, Field::BankAccount, record, Sealed::from_recorded(sealed)));
            }
            _ => {}
        }
    }
    found
}

/// Opens a value as the service would: the person's data key from `person_keys`, opened with
/// the master keys. `None`: the key is gone.
async fn open_as_the_service(api: &Api, (person, field, record, sealed): &Found) -> Option<String> {
    let generation = sealed.person_generation().expect("sealed under the person's data key");
    let row: Option<String> = sqlx::query_scalar(
        "SELECT sealed_key FROM person_keys WHERE person_key = $1 AND generation = $2",
    )
    .bind(person)
    .bind(generation as i32)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    let key = DataKey::open(&api.keys, person, generation, &Sealed::from_recorded(&row?)).unwrap();
    Some(key.open_value(sealed, *field, record).unwrap())
}

fn person_key(api: &Api, person: u32) -> String {
    let id = policy::IdNumber::parse(&id_number("371502", person)).unwrap();
    fundledger::personal::PersonKey::derive(&api.keys, &id).as_str().to_string()
}

#[tokio::test]
async fn an_erased_persons_data_no_longer_opens_anywhere_while_the_proof_and_the_money_stay() {
    let api = Api::start().await;
    set_up(&api).await;
    // Person 1: three skill-upgrade subsidies (the annual limit) and a training subsidy whose
    // payout failed and was reissued to a corrected account. Person 2: a training subsidy.
    let mut bodies: Vec<Value> = OCCUPATIONS[..3].iter().map(|o| skill_upgrade(1, o)).collect();
    bodies.push(training(1));
    bodies.push(training(2));
    let (ids, notice, reissue) = paid(&api, &bodies, 3).await;
    let (erased_ids, kept_id) = (&ids[..4], &ids[4]);
    let (one, two) = (person_key(&api, 1), person_key(&api, 2));

    // Before: an export, the figures, a signed checkpoint; every value opens.
    let before = export(&api).await;
    let values = sealed_values(&before);
    assert_eq!(values.iter().filter(|v| v.0 == one).count(), 4 * 2 + 1, "{values:?}");
    for v in &values {
        assert!(open_as_the_service(&api, v).await.is_some(), "{v:?}");
    }
    let figures_before = figures(&api).await;
    let signer = SigningKey::generate(&mut rand::rngs::OsRng);
    let checkpoint = fundledger::checkpoints::record(&api.db.pool, &signer, "test").await.unwrap();
    let view = ok(&api.get("admin", &format!("/v1/applications/{}/personal", ids[3])).await, 200);
    let shown: Vec<&str> =
        view["values"].as_array().unwrap().iter().map(|v| v["value"].as_str().unwrap()).collect();
    assert_eq!(shown, [id_number("371502", 1).as_str(), "王小五", "6228480012345678"]);

    // Only an admin erases.
    let by_id = json!({"id_number": id_number("371502", 1)});
    let r = api.post("clerk", "/v1/persons/erase", &by_id).await;
    assert_eq!((r.status, r.code().as_str()), (403, "forbidden"), "{}", r.text);
    let erased = ok(&api.post("admin", "/v1/persons/erase", &by_id).await, 200);
    assert_eq!(erased["person_key"], json!(one));
    assert_eq!(erased["data_key_generation"], 1);
    assert_eq!(erased["legacy_values"], 0);
    assert_eq!(erased["applications"], json!(erased_ids));
    // Erasing again is refused, by ID number or by person key; so is a stranger.
    let r = api.post("admin", "/v1/persons/erase", &by_id).await;
    assert_eq!((r.status, r.code().as_str()), (409, "already_erased"), "{}", r.text);
    let r = api.post("admin", "/v1/persons/erase", &json!({"person_key": one})).await;
    assert_eq!((r.status, r.code().as_str()), (409, "already_erased"), "{}", r.text);
    let r =
        api.post("admin", "/v1/persons/erase", &json!({"id_number": id_number("371502", 9)})).await;
    assert_eq!((r.status, r.code().as_str()), (404, "not_found"), "{}", r.text);

    // The proof: the chain verifies (over HTTP and with the signed checkpoint), and the log is
    // byte for byte what it was: the export taken before is the start of one taken now.
    let v = ok(&api.get("auditor", "/v1/audit/verify").await, 200);
    assert_eq!(v["ok"], true, "{v}");
    let mut conn = api.db.pool.acquire().await.unwrap();
    let trusted = signer.verifying_key();
    let v = fundledger::audit::verify(&mut conn, Some(&trusted), |_| {}).await.unwrap();
    assert!(v.ok && v.checkpoints_verified == 1, "{v:?}");
    assert_eq!(v.signed_through, Some(checkpoint.position));
    drop(conn);
    let after = export(&api).await;
    assert_eq!(after[..before.len()], before[..], "no event, hash or position changed");
    // Found, not assumed last: a checkpoint may be signed after it.
    let erased = after[before.len()..]
        .iter()
        .find(|l| l.canonical.contains("PersonErased"))
        .expect("the erasure is in the log");
    assert!(!erased.canonical.contains(&id_number("371502", 1)));
    let offline = after.iter().map(|l| Ok(serde_json::to_string(l).unwrap()));
    let offline = fundledger::audit::verify_export(offline, Some(&trusted)).unwrap();
    assert!(offline.ok && offline.checkpoints_verified == 1, "{offline:?}");
    assert_eq!(figures(&api).await, figures_before, "quota, spending and the books unchanged");

    // Person 1's values, in the export taken before and in the log now: the master key does
    // not open them, and their data key is gone. Person 2's still open.
    for v in sealed_values(&before).iter().chain(&sealed_values(&after)) {
        let generation = v.3.person_generation().unwrap();
        assert_eq!(
            v.3.open_bound(&api.keys, v.1, &v.2),
            Err(OpenError::SealedForPerson(generation)),
            "never under the master key"
        );
        let opened = open_as_the_service(&api, v).await;
        assert_eq!(opened.is_none(), v.0 == one, "{v:?}: {opened:?}");
    }
    let kept: Vec<Option<String>> = {
        let mut kept = Vec::new();
        for v in sealed_values(&after).iter().filter(|v| v.0 == two) {
            kept.push(open_as_the_service(&api, v).await);
        }
        kept
    };
    assert_eq!(kept, [Some(id_number("371502", 2)), Some("王小五".to_string())]);
    let row: (Option<String>, bool) = sqlx::query_as(
        "SELECT sealed_key, erased_at IS NOT NULL FROM person_keys WHERE person_key = $1",
    )
    .bind(&one)
    .fetch_one(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(row, (None, true), "the data key itself is destroyed");

    // The views: 已删除 where person 1 was, person 2 as before.
    let app = ok(&api.get("clerk", &format!("/v1/applications/{}", ids[3])).await, 200);
    assert_eq!(
        (&app["applicant"]["name"], &app["applicant"]["id"]),
        (&json!(ERASED), &json!(ERASED))
    );
    assert_eq!(
        (&app["erased"], &app["status"], &app["amount"]),
        (&json!(true), &json!("settled"), &json!("600.00"))
    );
    let submitted = &app["events"][0]["data"]["person"];
    assert_eq!(
        (&submitted["name_masked"], &submitted["id_number_masked"]),
        (&json!(ERASED), &json!(ERASED))
    );
    let reissued = app["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["data"]["payout"] == json!(reissue))
        .unwrap();
    assert_eq!(reissued["data"]["account"]["number_masked"], ERASED, "{reissued}");
    let other = ok(&api.get("clerk", &format!("/v1/applications/{kept_id}")).await, 200);
    assert_eq!((&other["applicant"]["name"], other.get("erased")), (&json!("王*五"), None));
    let view = ok(&api.get("admin", &format!("/v1/applications/{}/personal", ids[3])).await, 200);
    for v in view["values"].as_array().unwrap() {
        assert_eq!((&v["value"], &v["erased"]), (&json!(ERASED), &json!(true)), "{v}");
    }
    let view = ok(&api.get("admin", &format!("/v1/applications/{kept_id}/personal")).await, 200);
    assert_eq!(view["values"][0]["value"], json!(id_number("371502", 2)), "{view}");
    let list = ok(&api.get("clerk", "/v1/applications?county=371502").await, 200);
    for a in list["applications"].as_array().unwrap() {
        let expected = if a["id"] == json!(kept_id) { "王*五" } else { ERASED };
        assert_eq!(a["applicant"]["name"], expected, "{a}");
    }
    let lines = ok(&api.get("clerk", &format!("/v1/notices/{notice}")).await, 200)["lines"].clone();
    for l in lines.as_array().unwrap() {
        let erased = l["application"] != json!(kept_id);
        assert_eq!(l["name"] == json!(ERASED) && l["id_number"] == json!(ERASED), erased, "{l}");
        assert!(l["amount"].as_str().is_some_and(|a| a != ERASED), "{l}");
    }
    let query = json!({"id_number": id_number("371502", 1), "year": 2024});
    let standing = ok(&api.post("clerk", "/v1/persons/subsidies", &query).await, 200);
    assert_eq!(standing["used"], 3, "{standing}");
    assert!(standing["applications"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["applicant"]["name"] == ERASED));

    // The read models are still the fold of the log: a rebuild writes the same rows.
    let mut conn = api.db.pool.acquire().await.unwrap();
    let statuses = fundledger::read_models::all_application_statuses(&mut conn).await.unwrap();
    let notice_lines = fundledger::read_models::all_notice_lines(&mut conn).await.unwrap();
    drop(conn);
    let mut owner = api.db.owner_connection().await;
    fundledger::rebuild::rebuild(&mut owner, |_| {}).await.unwrap();
    let mut conn = api.db.pool.acquire().await.unwrap();
    assert_eq!(
        fundledger::read_models::all_application_statuses(&mut conn).await.unwrap(),
        statuses
    );
    assert_eq!(fundledger::read_models::all_notice_lines(&mut conn).await.unwrap(), notice_lines);
    drop(conn);

    // The person key was kept: person 1 is still held to the annual limit and to "the same
    // occupation and level once".
    let r = api.post("clerk", "/v1/applications", &skill_upgrade(1, OCCUPATIONS[3])).await;
    assert_eq!((r.status, r.code().as_str()), (409, "annual_limit_reached"), "{}", r.text);
    let mut again = training(1);
    again["submitted_on"] = json!("2024-10-21");
    let r = api.post("clerk", "/v1/applications", &again).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "occupation_level_already_subsidized"),
        "{}",
        r.text
    );
    // What person 1 may still receive is recorded under a new data key, and shown.
    let mut other_training = training(1);
    other_training["training"]["occupation_code"] = json!("4-01-02-03");
    let fresh = ok(&api.post("clerk", "/v1/applications", &other_training).await, 201);
    let fresh = fresh["id"].as_str().unwrap();
    let app = ok(&api.get("clerk", &format!("/v1/applications/{fresh}")).await, 200);
    assert_eq!(app["applicant"]["name"], "王*五", "{app}");
    let view = ok(&api.get("admin", &format!("/v1/applications/{fresh}/personal")).await, 200);
    assert_eq!(view["values"][1]["value"], "王小五", "{view}");
    let generations: Vec<(i32, bool)> = sqlx::query_as(
        "SELECT generation, sealed_key IS NOT NULL FROM person_keys WHERE person_key = $1 ORDER BY generation",
    )
    .bind(&one)
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(generations, [(1, false), (2, true)]);
    // Erasing needs the person's applications finished.
    let r = api.post("admin", "/v1/persons/erase", &by_id).await;
    assert_eq!((r.status, r.code().as_str()), (409, "applications_open"), "{}", r.text);
    assert!(r.text.contains(fresh), "{}", r.text);
}

/// The database lets a data key be erased and nothing else, for the owner too: no key is ever
/// replaced (which would forge what the values open to) or deleted (which would erase without
/// a `PersonErased`).
#[tokio::test]
async fn a_data_key_is_never_replaced_or_deleted_only_erased() {
    let api = Api::start().await;
    set_up(&api).await;
    ok(&api.post("clerk", "/v1/applications", &training(1)).await, 201);
    let person = person_key(&api, 1);
    let mut owner = api.db.owner_connection().await;
    for sql in [
        "UPDATE person_keys SET sealed_key = 'k1:AAAA'",
        "UPDATE person_keys SET generation = 7",
        "DELETE FROM person_keys",
        "TRUNCATE person_keys",
    ] {
        let err = sqlx::query(sql).execute(&mut owner).await.expect_err(sql);
        let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.to_string());
        assert!(matches!(code.as_deref(), Some("FL011" | "FL010")), "{sql}: {err}");
    }
    let erased = sqlx::query(
        "UPDATE person_keys SET sealed_key = NULL, erased_at = now() WHERE person_key = $1",
    )
    .bind(&person)
    .execute(&api.db.pool)
    .await
    .unwrap();
    assert_eq!(erased.rows_affected(), 1, "the service may erase");
    let err = sqlx::query("UPDATE person_keys SET erased_at = now() - interval '1 day'")
        .execute(&mut owner)
        .await
        .expect_err("an erased key stays as it was erased");
    assert_eq!(err.as_database_error().and_then(|e| e.code()).as_deref(), Some("FL011"));
}

/// `fundledger keys rotate` still works: a data key sealed under the old master key keeps
/// opening (the person's later values go under the same data key), a new person's data key is
/// sealed under the new master key, and erasure works the same either way.
#[tokio::test]
async fn data_keys_outlive_a_rotation_of_the_master_key() {
    use fundledger::commands::applications::{submit, PersonApplication};
    use fundledger::personal::PersonKey;
    let api = Api::start().await;
    set_up(&api).await;
    ok(&api.post("clerk", "/v1/applications", &training(1)).await, 201);
    let dir = std::env::temp_dir().join(format!("fundledger-erasure-{}", uuid::Uuid::new_v4()));
    let path = dir.join("personal.key");
    api.keys.create(&path).unwrap();
    let rotated = fundledger::key_checks::rotate(&api.db.owner, &path).await.unwrap();
    assert_eq!(rotated.current_seal_id(), 2);
    let today = chrono::Utc::now().date_naive();
    let training_of = |person: u32, occupation: &str| {
        let mut body = training(person);
        body.as_object_mut().unwrap().remove("program");
        body["training"]["occupation_code"] = json!(occupation);
        PersonApplication::Training(serde_json::from_value(body).unwrap())
    };
    let later = submit(&api.db.pool, &rotated, &training_of(1, "4-01-02-03"), "clerk", today)
        .await
        .unwrap();
    let newcomer = submit(&api.db.pool, &rotated, &training_of(3, "4-10-01-05"), "clerk", today)
        .await
        .unwrap();

    let keys: Vec<(String, i32, String)> = sqlx::query_as(
        "SELECT person_key, generation, sealed_key FROM person_keys ORDER BY created_at",
    )
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    let prefixes: Vec<(i32, &str)> = keys.iter().map(|(_, g, s)| (*g, &s[..3])).collect();
    assert_eq!(
        prefixes,
        [(1, "k1:"), (1, "k2:")],
        "one key per person, sealed by the master key in force"
    );
    let lines = export(&api).await;
    let values = sealed_values(&lines);
    assert_eq!(values.len(), 6, "{values:?}");
    for v in &values {
        let (_, generation, sealed) = keys.iter().find(|k| k.0 == v.0).unwrap();
        let data =
            DataKey::open(&rotated, &v.0, *generation as u32, &Sealed::from_recorded(sealed))
                .unwrap();
        assert!(data.open_value(&v.3, v.1, &v.2).is_ok(), "{v:?}");
    }
    let rows = |id: &str| values.iter().filter(|v| v.2 == format!("application-{id}")).count();
    assert_eq!((rows(&later.id), rows(&newcomer.id)), (2, 2));

    let id = policy::IdNumber::parse(&id_number("371502", 3)).unwrap();
    let person = PersonKey::derive(&rotated, &id);
    let r = fundledger::commands::persons::erase(&api.db.pool, &person, "admin", today).await;
    assert_eq!(r.unwrap_err().code(), "applications_open", "its application is not decided");
    fundledger::commands::applications::withdraw(
        &api.db.pool,
        &newcomer.id,
        "撤回",
        "clerk",
        today,
    )
    .await
    .unwrap();
    let erased =
        fundledger::commands::persons::erase(&api.db.pool, &person, "admin", today).await.unwrap();
    assert_eq!((erased.data_key_generation, erased.legacy_values), (Some(1), 0));
    let gone: Option<String> =
        sqlx::query_scalar("SELECT sealed_key FROM person_keys WHERE person_key = $1")
            .bind(person.as_str())
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!(gone, None);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Values sealed before per-person keys (under the master key, `k1:`) stay readable, and an
/// erasure of their person is honest about them: it counts them, and the views show them
/// erased, though the master key would still open them (README "Erasure").
#[tokio::test]
async fn values_sealed_before_per_person_keys_stay_readable_and_are_shown_erased_after() {
    use events::{Metadata, Tag};
    use fundledger::store::{append, Append, NewEvent};
    let api = Api::start().await;
    set_up(&api).await;
    let number = id_number("371502", 5);
    let person = person_key(&api, 5);
    let stream = "application-legacy-1";
    let submitted = json!({"application": "legacy-1", "program": "vocational_training",
        "county": "371502", "pool": "371500", "submitted_on": "2024-05-20", "year": 2024,
        "submitted_by": "clerk", "subject": "4-10-01-05", "level": 5, "details": {},
        "person": {"key": person,
                   "id_number_sealed": Sealed::seal_bound(&api.keys, Field::IdNumber, stream, &number).as_str(),
                   "name_sealed": Sealed::seal_bound(&api.keys, Field::Name, stream, "赵六").as_str(),
                   "id_number_masked": "371502********0051", "name_masked": "赵*"},
        "decision": {"policy": "liaocheng-2024-training", "document": "d", "amount": "600.00",
                     "amount_rule": "r", "funding": "expansion_pilot", "funding_rule": "r"}});
    let withdrawn = json!({"application": "legacy-1", "reason": "本人撤回", "withdrawn_by": "clerk",
                           "withdrawn_on": "2024-05-21"});
    let event = |event_type: &str, data: Value| NewEvent {
        stream_id: stream.into(),
        event_type: event_type.into(),
        schema_version: 1,
        data,
        metadata: Metadata {
            pool: Some("371500".into()),
            county: Some("371502".into()),
            ..Metadata::default()
        },
        tags: vec![Tag::person(&person)],
        business_date: None,
    };
    let mut tx = api.db.pool.begin().await.unwrap();
    let log =
        vec![event("ApplicationSubmitted", submitted), event("ApplicationWithdrawn", withdrawn)];
    append(&mut tx, &Append { events: log, ..Append::default() }).await.unwrap();
    tx.commit().await.unwrap();

    let view = ok(&api.get("admin", "/v1/applications/legacy-1/personal").await, 200);
    let shown: Vec<&str> =
        view["values"].as_array().unwrap().iter().map(|v| v["value"].as_str().unwrap()).collect();
    assert_eq!(shown, [number.as_str(), "赵六"], "readable as before");

    let erased =
        ok(&api.post("admin", "/v1/persons/erase", &json!({"id_number": number})).await, 200);
    assert_eq!(
        (&erased["data_key_generation"], &erased["legacy_values"]),
        (&Value::Null, &json!(2))
    );
    let view = ok(&api.get("admin", "/v1/applications/legacy-1/personal").await, 200);
    for v in view["values"].as_array().unwrap() {
        assert_eq!((&v["value"], &v["erased"]), (&json!(ERASED), &json!(true)), "{v}");
    }
    let app = ok(&api.get("admin", "/v1/applications/legacy-1").await, 200);
    assert_eq!(app["applicant"]["name"], ERASED, "{app}");
    // The limit of erasing what was sealed under the shared master key: it still opens.
    let row = sealed_values(&export(&api).await).into_iter().find(|v| v.0 == person).unwrap();
    assert_eq!(row.3.open_bound(&api.keys, row.1, &row.2).unwrap(), number);
    let r = api.post("admin", "/v1/persons/erase", &json!({"person_key": person})).await;
    assert_eq!((r.status, r.code().as_str()), (409, "already_erased"), "{}", r.text);
}

/// `fundledger persons erase` on the command line, against the same database: erases once,
/// then says the person is already erased and fails.
#[tokio::test]
async fn the_command_line_erases_once_and_then_refuses() {
    let api = Api::start().await;
    set_up(&api).await;
    let (ids, _, _) = paid(&api, &[training(1)], usize::MAX).await;
    let dir = std::env::temp_dir().join(format!("fundledger-erasure-{}", uuid::Uuid::new_v4()));
    api.keys.create(&dir.join("personal.key")).unwrap();
    let owner = &api.db.owner;
    let host = owner.get_socket().map_or(owner.get_host().to_string(), |s| s.display().to_string());
    let url = format!(
        "postgresql:///{}?host={host}&port={}&user={}",
        owner.get_database().unwrap(),
        owner.get_port(),
        owner.get_username()
    );
    let number = id_number("371502", 1);
    let erase = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fundledger"))
            .args(["persons", "erase", "--id-number", &number, "--actor", "管理员"])
            .arg("--key-dir")
            .arg(&dir)
            .env("DATABASE_URL", &url)
            .env_remove("FUNDLEDGER_SERVICE_URL")
            .env_remove("FUNDLEDGER_KEY_FILE")
            .output()
            .unwrap()
    };
    let first = erase();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{stdout}{}", String::from_utf8_lossy(&first.stderr));
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["person_key"], json!(person_key(&api, 1)));
    assert_eq!(report["applications"], json!(ids));
    assert!(!stdout.contains(&number), "the ID number is not printed");
    let second = erase();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "erased twice");
    assert!(stderr.contains("already erased") && stderr.contains("already_erased"), "{stderr}");
    let app = ok(&api.get("clerk", &format!("/v1/applications/{}", ids[0])).await, 200);
    assert_eq!(app["applicant"]["name"], ERASED);
    let erasures: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PersonErased'")
            .fetch_one(&api.db.pool)
            .await
            .unwrap();
    assert_eq!(erasures, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Submissions for a person racing their erasure: each submission comes before the erasure
/// (which then refuses: an application is open) or after it (sealed under the next data key).
/// Never is a value recorded under a key already destroyed, nor a value left readable that an
/// erasure recorded after it should cover.
#[tokio::test]
async fn submissions_racing_an_erasure_are_erased_whole_or_sealed_under_the_next_key() {
    use fundledger::commands::applications::{submit, PersonApplication};
    use std::sync::Arc;
    let api = Api::start().await;
    set_up(&api).await;
    paid(&api, &[training(1)], usize::MAX).await;
    let person = fundledger::personal::PersonKey::parse(&person_key(&api, 1)).unwrap();
    let today = chrono::Utc::now().date_naive();
    let keys = Arc::new(api.keys.clone());
    let barrier = Arc::new(tokio::sync::Barrier::new(OCCUPATIONS.len() + 1));
    let mut tasks = Vec::new();
    for occupation in OCCUPATIONS {
        let (pool, keys, barrier) = (api.db.pool.clone(), keys.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let mut body = skill_upgrade(1, occupation);
            body.as_object_mut().unwrap().remove("program");
            let app = PersonApplication::SkillUpgrade(serde_json::from_value(body).unwrap());
            barrier.wait().await;
            submit(&pool, &keys, &app, "clerk", today)
                .await
                .map(|_| "submitted")
                .map_err(|e| e.code())
        }));
    }
    let (pool, barrier) = (api.db.pool.clone(), barrier.clone());
    let erase = tokio::spawn(async move {
        barrier.wait().await;
        fundledger::commands::persons::erase(&pool, &person, "admin", today)
            .await
            .map(|_| "erased")
            .map_err(|e| e.code())
    });
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let erased = erase.await.unwrap();
    assert!(matches!(erased, Ok("erased") | Err("applications_open")), "{erased:?}");
    assert_eq!(outcomes.iter().filter(|o| o.is_ok()).count(), 3, "the annual limit: {outcomes:?}");

    // Every value of the person: readable, or covered by an erasure recorded after it.
    let erasure_ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM events WHERE event_type = 'PersonErased'")
            .fetch_all(&api.db.pool)
            .await
            .unwrap();
    let rows: Vec<(i64, String, String, Value)> = sqlx::query_as(
        "SELECT id, stream_id, event_type, data FROM events WHERE event_type = 'ApplicationSubmitted' ORDER BY id",
    )
    .fetch_all(&api.db.pool)
    .await
    .unwrap();
    for (id, stream, _, data) in rows {
        let sealed = Sealed::from_recorded(data["person"]["name_sealed"].as_str().unwrap());
        let found = (person_key(&api, 1), Field::Name, stream, sealed);
        let opened = open_as_the_service(&api, &found).await;
        let covered = erasure_ids.iter().any(|e| *e > id);
        assert_eq!(opened.is_none(), covered, "event {id}: {opened:?}, erasures {erasure_ids:?}");
    }
}
