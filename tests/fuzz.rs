//! Issue 15, hostile input: every parser of the ledger fed arbitrary bytes and strings, and
//! valid inputs mutated, on stable Rust (property tests with `proptest`). None may panic;
//! where a value prints back, what it prints parses to the same value; a refusal of an ID
//! number never repeats its characters.
//!
//! Bounded: a few dozen cases per property in the normal `cargo test` (a second or two). The
//! long run (README.md, "Slow suites"):
//!
//! ```sh
//! PROPTEST_CASES=100000 cargo test --release --test fuzz
//! ```
//!
//! A failing case is saved in `tests/fuzz.proptest-regressions` and tried first next time;
//! crashes found become regression tests at the end of this file.

use fundledger::commands::settlements;
use fundledger::http::extract::parse;
use fundledger::http::routes::{applications, batch, payouts, setup};
use policy::catalog::CatalogTexts;
use policy::ids::{CreditCode, DivisionCode, IdNumber, OccupationCode, PolicyId};
use policy::{Amount, Catalog, Level, Money, Policy, Ratio};
use proptest::prelude::*;
use serde_json::{json, Value};

/// `cases` unless PROPTEST_CASES says otherwise (the slow suite).
fn config(cases: u32) -> ProptestConfig {
    let mut c = ProptestConfig::default();
    if std::env::var("PROPTEST_CASES").is_err() {
        c.cases = cases;
    }
    c
}

/// Arbitrary text: mostly ASCII with digits, separators and CJK (what the parsers look at),
/// sometimes anything.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9Xx./,:年月日¥￥ -]{0,24}",
        "[0-9A-Za-z\"'{}\\[\\]=,.#:\\\\\n\r\t -]{0,40}",
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..40)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn body17() -> impl Strategy<Value = String> {
    // Address code, a birth date from 1900 to 2099 (any day; invalid ones are refused), sequence.
    ("[1-9][0-9]{5}", 1900u32..2100, 1u32..13, 1u32..29, "[0-9]{3}")
        .prop_map(|(a, y, m, d, s)| format!("{a}{y:04}{m:02}{d:02}{s}"))
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn identifiers_never_panic_and_print_back_what_they_parse(s in text()) {
        if let Ok(id) = IdNumber::parse(&s) {
            prop_assert_eq!(IdNumber::parse(id.as_str()).unwrap(), id.clone());
            prop_assert_eq!(id.as_str(), s.to_ascii_uppercase());
        }
        if let Ok(c) = CreditCode::parse(&s) {
            prop_assert_eq!(CreditCode::parse(c.as_str()).unwrap(), c);
        }
        if let Ok(c) = OccupationCode::parse(&s) {
            prop_assert_eq!(OccupationCode::parse(c.as_str()).unwrap(), c);
        }
        if let Ok(c) = DivisionCode::parse(&s) {
            prop_assert_eq!(DivisionCode::parse(c.as_str()).unwrap(), c);
            prop_assert!(c.province().contains(&c));
        }
        if let Ok(p) = PolicyId::parse(&s) {
            prop_assert_eq!(PolicyId::parse(p.as_str()).unwrap(), p);
        }
        let _ = Level::parse(&s);
    }

    #[test]
    fn an_id_number_with_a_wrong_check_character_is_refused_without_echoing_it(
        body in body17(),
        offset in 1usize..11,
    ) {
        let Some(right) = IdNumber::check_char_for(&body) else { unreachable!() };
        // Another of the eleven check characters, never the right one (a rejected draw would
        // exhaust proptest's reject budget in a long run: 1 in 11 draws).
        const CHECK: &[u8; 11] = b"10X98765432";
        let at = CHECK.iter().position(|&c| c as char == right).expect("a check character");
        let given = CHECK[(at + offset) % 11] as char;
        let id = format!("{body}{given}");
        match IdNumber::parse(&id) {
            // A birth date that does not exist is refused before the check character.
            Err(e) if e.problem.contains("birth date") => {}
            Err(e) => {
                // The same sentence for every number: nothing of this one is in it.
                prop_assert_eq!(
                    e.problem.as_str(),
                    "the check character (the last one) is wrong; one of the characters was probably mistyped"
                );
                prop_assert!(!e.to_string().contains(&body[..6]));
            }
            Ok(_) => prop_assert!(false, "a wrong check character was accepted"),
        }
        let valid = format!("{body}{right}");
        if let Ok(id) = IdNumber::parse(&valid) {
            prop_assert_eq!(id.as_str(), valid.as_str());
        }
    }

    #[test]
    fn money_never_panics_and_prints_back_what_it_parses(s in text(), yuan in 0u64..10_000_000_000, fen in 0u32..100) {
        let parsed = [Money::parse(&s).map(|m| m.to_string()), Amount::parse(&s).map(|a| a.to_string())];
        for shown in parsed.into_iter().flatten() {
            prop_assert_eq!(Amount::parse(&shown).unwrap().to_string(), shown);
        }
        if let Ok(r) = Ratio::parse(&s) {
            prop_assert_eq!(Ratio::parse(&r.to_string()).unwrap(), r);
        }
        let written = format!("{yuan}.{fen:02}");
        match Amount::parse(&written) {
            Ok(a) => prop_assert_eq!(a.to_string(), written),
            // Only beyond the largest sum of yuan the ledger takes.
            Err(e) => prop_assert!(e.problem.contains("digits of yuan"), "{}: {e}", written),
        }
        // Through serde as the events and requests carry them.
        let _ = serde_json::from_value::<Money>(Value::String(s.clone()));
        let _ = serde_json::from_value::<Ratio>(Value::String(s));
    }

    #[test]
    fn dates_never_panic_and_print_back_what_they_parse(s in text(), y in 0i32..10000, m in 0u32..14, d in 0u32..33) {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct D {
            #[serde(with = "policy::dates")]
            on: chrono::NaiveDate,
        }
        for candidate in [s, format!("{y:04}-{m:02}-{d:02}")] {
            if let Ok(parsed) = serde_json::from_value::<D>(json!({"on": candidate})) {
                let back = serde_json::to_value(&parsed).unwrap();
                prop_assert_eq!(&back["on"], &json!(candidate));
            }
        }
    }

    #[test]
    fn the_bank_file_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok((text, _)) = settlements::decode(&bytes) {
            let _ = settlements::parse(&text);
        }
        // As text behind a valid header too, so the lines themselves are read.
        let text = format!(
            "payout_id,amount,status,settled_on,bank_reference,reason\n{}",
            String::from_utf8_lossy(&bytes)
        );
        let _ = settlements::parse(&text);
    }

    #[test]
    fn a_bank_file_written_from_lines_reads_back_as_those_lines(
        lines in proptest::collection::vec(
            // No private-use characters in a reason: GB18030 cannot carry them all as
            // themselves (U+E82B is written as the bytes that read back as 龶, U+9FB6, since
            // GB18030-2022 gave those bytes a standard character; U+E5E5 has no bytes at all),
            // so a bank's GBK file never holds them.
            ("[a-z0-9-]{1,12}", 1u64..100_000_000, 0u32..100, any::<bool>(), 0u32..3000, "[A-Z0-9]{1,10}", "[^,\"\r\n\\x{E000}-\\x{F8FF}]{1,12}"),
            1..20,
        ),
        gbk in any::<bool>(),
    ) {
        let mut file = String::from("业务编号,金额,状态,入账日期,交易流水号,失败原因\r\n");
        let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        for (id, yuan, fen, settled, day, reference, reason) in &lines {
            let on = start + chrono::Days::new(u64::from(*day));
            let status = if *settled { "成功" } else { "失败" };
            file.push_str(&format!(
                "{id},\"{yuan}.{fen:02}\",{status},{},{reference},\"{}\"\r\n",
                on.format("%Y/%m/%d"),
                format!("原因{reason}").replace('"', "\"\"")
            ));
        }
        let bytes = if gbk {
            encoding_rs::GB18030.encode(&file).0.into_owned()
        } else {
            file.clone().into_bytes()
        };
        let (decoded, _) = settlements::decode(&bytes).unwrap();
        let (good, bad) = settlements::parse(&decoded).unwrap();
        prop_assert!(bad.is_empty(), "{bad:?}");
        prop_assert_eq!(good.len(), lines.len());
        for (read, (id, yuan, fen, settled, day, reference, reason)) in good.iter().zip(&lines) {
            prop_assert_eq!(read.payout_id.as_deref(), Some(id.as_str()));
            prop_assert_eq!(read.amount.to_string(), format!("{yuan}.{fen:02}"));
            prop_assert_eq!(read.status == settlements::BankStatus::Settled, *settled);
            prop_assert_eq!(read.on, start + chrono::Days::new(u64::from(*day)));
            prop_assert_eq!(read.bank_reference.as_deref(), Some(reference.as_str()));
            // Cells are trimmed; a reason is never only blanks here (one without is refused).
            let reason = format!("原因{reason}");
            prop_assert_eq!(read.reason.as_deref(), Some(reason.trim()));
        }
    }
}

/// Every shipped policy with one of its catalogs' texts, as `policy publish` reads them.
fn catalogs() -> CatalogTexts {
    fundledger::publishing::SHIPPED_CATALOGS
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

/// A valid text mutated: a slice cut out, or something put in, at a character boundary.
fn mutated(text: &str, at: usize, len: usize, insert: &str, cut: bool) -> String {
    let bound = |i: usize| {
        let mut i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (a, b) = (bound(at), bound(at + len));
    if cut {
        format!("{}{}", &text[..a], &text[b..])
    } else {
        format!("{}{insert}{}", &text[..a], &text[a..])
    }
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn policy_files_and_catalogs_never_panic(
        file in 0usize..fundledger::publishing::SHIPPED_POLICIES.len(),
        at in any::<usize>(),
        len in 0usize..80,
        insert in text(),
        cut in any::<bool>(),
        garbage in text(),
    ) {
        let catalogs = catalogs();
        let (_, policy) = fundledger::publishing::SHIPPED_POLICIES[file];
        let at = at % policy.len();
        let _ = Policy::from_toml_with_catalogs(&mutated(policy, at, len, &insert, cut), &catalogs);
        let _ = Policy::from_toml(&garbage);
        // A catalog the policy references, mutated.
        let mut broken = catalogs.clone();
        let (path, catalog) = fundledger::publishing::SHIPPED_CATALOGS[file % fundledger::publishing::SHIPPED_CATALOGS.len()];
        let changed = mutated(catalog, at % catalog.len(), len, &insert, cut);
        let _ = Catalog::from_toml(&changed);
        broken.insert(path.to_string(), changed);
        let _ = Policy::from_toml_with_catalogs(policy, &broken);
        let _ = policy::classification::Classification::parse(&garbage);
    }
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Valid bodies of every command route, one per route (the applications one per program).
fn valid_bodies() -> Vec<(&'static str, Value)> {
    let id = format!("37150219880101001{}", IdNumber::check_char_for("37150219880101001").unwrap());
    let credit =
        format!("91371500MA3C1234X{}", CreditCode::check_char_for("91371500MA3C1234X").unwrap());
    let person = json!({"id_number": id, "name": "王小五"});
    vec![
        (
            "vocational_training",
            json!({
            "county": "371502", "submitted_on": "2024-10-20", "applicant": person,
            "eligibility": {"insured_months": 14, "receiving_unemployment_benefit": false},
            "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5,
                         "assessment": "certificate", "class_start_on": "2024-09-10", "hours": 40},
            "funding": "expansion_pilot"}),
        ),
        (
            "skill_upgrade",
            json!({
            "county": "371502", "submitted_on": "2024-08-01", "applicant": person,
            "eligibility": {"insured_months": 26, "receiving_unemployment_benefit": false},
            "certificate": {"occupation_code": "4-10-01-05", "level": 4, "number": "S0000371500124",
                            "issued_on": "2024-03-01"}}),
        ),
        (
            "job_stabilization_refund",
            json!({
            "county": "371502", "submitted_on": "2024-08-01",
            "enterprise": {"credit_code": credit, "name": "聊城某机械有限公司", "size": "sme",
                           "kind": "enterprise", "labour_dispatch": false},
            "premiums": {"paid_last_year": "120000.00", "months_paid_in_full": 14},
            "staff": {"insured_employees": 45, "laid_off_last_year": 2}}),
        ),
        (
            "pilot_subsidy",
            json!({
            "category": "job", "county": "371502", "submitted_on": "2024-09-02",
            "beneficiary": {"credit_code": credit, "name": "聊城某餐饮有限公司"},
            "amount": "2400.00", "basis": "聊城市岗位补贴核定表 2024-017"}),
        ),
        (
            "on_the_job_training",
            json!({
            "county": "370102", "submitted_on": "2021-09-01",
            "enterprise": {"credit_code": credit, "name": "济南某酒店有限公司", "size": "sme", "sector": "accommodation_catering"},
            "trainees": [{"id_number": id, "name": "赵小六",
                          "first_insured_with_enterprise_on": "2021-03-01", "months": 3}]}),
        ),
        ("review", json!({"decision": "approve"})),
        ("withdraw", json!({"reason": "申请人撤回"})),
        ("person_query", json!({"id_number": id, "year": 2024})),
        (
            "notice",
            json!({"county": "371502", "starts_on": "2024-11-04", "application_ids": ["a"]}),
        ),
        (
            "objection",
            json!({"application_id": "a", "received_on": "2024-11-05", "summary": "异议"}),
        ),
        ("resolution", json!({"upheld": false, "note": "查无实据"})),
        ("close", json!({})),
        ("payouts", json!({"application_ids": ["a"], "paid_on": "2024-11-12"})),
        ("settlement", json!({"status": "settled", "bank_reference": "B-1"})),
        (
            "reissue",
            json!({"paid_on": "2024-11-20", "account": {"bank": "工商银行", "number": "6222020200112233445"}}),
        ),
        ("recovery", json!({"amount": "100.00", "reason": "复核多发"})),
        ("pool", json!({"code": "371500", "name": "聊城市"})),
        ("county", json!({"code": "371502", "name": "东昌府区", "pool": "371500"})),
        (
            "balance",
            json!({"as_of": "2023-12-31", "amount": "100000.00", "document": "聊人社字〔2024〕1号"}),
        ),
        ("quota", json!({"year": 2024, "ratio": "0.15", "filing_document": "鲁人社字〔2024〕9号"})),
        ("notice_period", json!({"working_days": 7, "document": "聊人社字〔2024〕3号"})),
        ("batch", json!({"requests": [{"method": "POST", "path": "/v1/pools", "body": {}}]})),
    ]
}

/// Parses `body` as the route `route` does; `Ok(())` when it parses. Never panics. (The
/// problem is returned whole, as the server answers it.)
#[allow(clippy::result_large_err)]
fn parse_as(route: &str, body: Value) -> Result<(), fundledger::http::problem::Problem> {
    use policy::job_stabilization::JobStabilizationApplication;
    use policy::skill_upgrade::SkillUpgradeApplication;
    use policy::training::TrainingApplication;
    match route {
        "vocational_training" => parse::<TrainingApplication>(body).map(drop),
        "skill_upgrade" => parse::<SkillUpgradeApplication>(body).map(drop),
        "job_stabilization_refund" => parse::<JobStabilizationApplication>(body).map(drop),
        "pilot_subsidy" => parse::<policy::pilot_subsidy::PilotSubsidyApplication>(body).map(drop),
        "on_the_job_training" => {
            parse::<policy::on_the_job_training::OnTheJobTrainingApplication>(body).map(drop)
        }
        "review" => parse::<applications::ReviewBody>(body).map(drop),
        "withdraw" => parse::<applications::WithdrawBody>(body).map(drop),
        "person_query" => parse::<applications::PersonQuery>(body).map(drop),
        "notice" => parse::<payouts::NewNotice>(body).map(drop),
        "objection" => parse::<payouts::NewObjection>(body).map(drop),
        "resolution" => parse::<payouts::Resolution>(body).map(drop),
        "close" => parse::<payouts::Close>(body).map(drop),
        "payouts" => parse::<payouts::NewPayouts>(body).map(drop),
        "settlement" => parse::<payouts::SettlementBody>(body).map(drop),
        "reissue" => parse::<payouts::Reissue>(body).map(drop),
        "recovery" => parse::<payouts::NewRecovery>(body).map(drop),
        "pool" => parse::<setup::NewPool>(body).map(drop),
        "county" => parse::<setup::NewCounty>(body).map(drop),
        "balance" => parse::<setup::NewBalance>(body).map(drop),
        "quota" => parse::<setup::NewQuota>(body).map(drop),
        "notice_period" => parse::<setup::NewNoticePeriod>(body).map(drop),
        "batch" => parse::<batch::Batch>(body).map(drop),
        other => panic!("no route {other}"),
    }
}

const ROUTES: [&str; 22] = [
    "vocational_training",
    "skill_upgrade",
    "job_stabilization_refund",
    "pilot_subsidy",
    "on_the_job_training",
    "review",
    "withdraw",
    "person_query",
    "notice",
    "objection",
    "resolution",
    "close",
    "payouts",
    "settlement",
    "reissue",
    "recovery",
    "pool",
    "county",
    "balance",
    "quota",
    "notice_period",
    "batch",
];

/// Replaces the `n`-th node (depth first) of `v` by `with`.
fn replace_nth(v: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *v = with.clone();
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(items) => items.iter_mut().any(|i| replace_nth(i, n, with)),
        Value::Object(map) => map.values_mut().any(|i| replace_nth(i, n, with)),
        _ => false,
    }
}

#[test]
fn the_valid_bodies_parse() {
    for (route, body) in valid_bodies() {
        if let Err(p) = parse_as(route, body) {
            panic!("{route}: {}", p.detail);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn request_bodies_never_panic(
        route in 0usize..ROUTES.len(),
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        value in json_value(),
    ) {
        // Bytes as the server reads them: JSON first, then the route's type.
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            let _ = parse_as(ROUTES[route], v);
        }
        let _ = parse_as(ROUTES[route], value);
    }

    #[test]
    fn valid_bodies_with_one_part_replaced_never_panic_nor_echo_personal_data(
        which in any::<prop::sample::Index>(),
        node in 0usize..40,
        with in json_value(),
        secret in "[0-9]{17}[0-9X]",
    ) {
        let bodies = valid_bodies();
        let (route, body) = &bodies[which.index(bodies.len())];
        let mut changed = body.clone();
        let mut n = node;
        replace_nth(&mut changed, &mut n, &with);
        let _ = parse_as(route, changed);
        // An ID number sent wrong (as a number, in a list, misshapen) is refused without
        // being repeated.
        if body.get("applicant").is_some() || body.get("id_number").is_some() {
            for wrong in [json!(secret.parse::<u64>().ok()), json!([secret]), json!(format!("{secret}0")), json!({"n": secret})] {
                let mut changed = body.clone();
                match changed.get_mut("applicant") {
                    Some(a) => a["id_number"] = wrong.clone(),
                    None => changed["id_number"] = wrong.clone(),
                }
                // The query takes any string (and answers "not found"); the applications
                // parse the number itself.
                let outcome = parse_as(route, changed);
                prop_assert!(outcome.is_err() || *route == "person_query", "{route}: {wrong} accepted");
                if let Err(e) = outcome {
                    let shown = serde_json::to_string(&e).unwrap();
                    prop_assert!(!shown.contains(&secret[..17]), "{route}: {wrong} echoed in {shown}");
                }
            }
        }
    }
}

/// Regressions: inputs the fuzzer (or a reader) found; each must keep passing.
#[test]
fn regressions() {
    // An ID number's refusal for its check character names no character of it.
    let e = IdNumber::parse("110105194912310021").unwrap_err();
    assert!(!e.problem.contains('1') && !e.problem.contains('X'), "{e}");
}
