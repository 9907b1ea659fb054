//! The finance bureau's desk over HTTP: the bank's result file in both encodings, imported
//! twice, and sealed months.

mod common;

use common::{events, noticed, raw, set_up, Api, Reply};
use serde_json::{json, Value};

/// Applications of county 371502 (600.00 each), approved, noticed and cleared for payout.
async fn cleared(api: &Api, persons: std::ops::Range<u32>) -> Vec<String> {
    let (ids, notice) = noticed(api, persons).await;
    let r = api.post("clerk", &format!("/v1/notices/{notice}/close"), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    ids
}

async fn pay(api: &Api, ids: &[String], paid_on: &str) -> Vec<String> {
    let r = api
        .post("finance", "/v1/payouts", &json!({"application_ids": ids, "paid_on": paid_on}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["payouts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().into())
        .collect()
}

/// POSTs a file as the bank sent it, bytes as they are.
async fn import(api: &Api, who: &str, key: &str, file: &[u8]) -> Reply {
    let mut request = format!(
        "POST /v1/settlements/import HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\
         authorization: Bearer {}\r\ncontent-type: text/csv\r\nidempotency-key: {key}\r\n\
         content-length: {}\r\n\r\n",
        api.tokens[who],
        file.len()
    )
    .into_bytes();
    request.extend_from_slice(file);
    raw(api.addr, &request).await
}

fn lines_of(report: &Value, kind: &str) -> Vec<u64> {
    report[kind]
        .as_array()
        .unwrap_or_else(|| panic!("{kind} in {report}"))
        .iter()
        .map(|l| l["line"].as_u64().unwrap())
        .collect()
}

/// Every kind of discrepancy in one file: a settled and a failed payout that match, an amount
/// that differs, an id the ledger does not know, a line repeated, a payout settled before the
/// file came, a line that does not read; and a payout the bank did not answer at all.
async fn a_bank_file_with_every_discrepancy(gbk: bool) {
    let api = Api::start().await;
    set_up(&api).await;
    let ids = cleared(&api, 0..5).await;
    let p = pay(&api, &ids, "2024-11-12").await;
    // p[3] was settled by hand before the file came.
    let r = api
        .post(
            "finance",
            &format!("/v1/payouts/{}/settlement", p[3]),
            &json!({"status": "settled", "bank_reference": "B-4"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let unknown = uuid::Uuid::now_v7();
    let text = if gbk {
        format!(
            "业务编号,交易金额,处理结果,交易日期,交易流水号,失败原因\r\n\
             {p0},600.00,成功,2024/11/13,B-1,\r\n\
             {p1},600.00,失败,20241114,,账户已销户\r\n\
             {p2},\"650.00\",成功,2024-11-13,B-3,\r\n\
             {unknown},600.00,成功,2024-11-13,B-X,\r\n\
             {p0},600.00,成功,2024-11-13,B-1,\r\n\
             {p3},600.00,成功,2024-11-13,B-4,\r\n\
             {p4},600.00,待定,2024-11-13,B-5,\r\n",
            p0 = p[0],
            p1 = p[1],
            p2 = p[2],
            p3 = p[3],
            p4 = p[4]
        )
    } else {
        format!(
            "\u{feff}payout_id,amount,status,settled_on,bank_reference,reason\n\
             {p0},600.00,settled,2024-11-13,B-1,\n\
             {p1},600,failed,2024-11-14,,account closed\n\
             {p2},650.00,settled,2024-11-13,B-3,\n\
             {unknown},600.00,settled,2024-11-13,B-X,\n\
             {p0},600.00,settled,2024-11-13,B-1,\n\
             {p3},600.00,settled,2024-11-13,B-4,\n\
             {p4},600.00,pending,2024-11-13,B-5,\n",
            p0 = p[0],
            p1 = p[1],
            p2 = p[2],
            p3 = p[3],
            p4 = p[4]
        )
    };
    let file: Vec<u8> = if gbk {
        let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
        assert!(!unmappable);
        assert!(std::str::from_utf8(&bytes).is_err(), "the GBK file is not UTF-8 by accident");
        bytes.into_owned()
    } else {
        text.into_bytes()
    };

    let before = events(&api).await;
    let r = import(&api, "finance", "file-1", &file).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let report = r.json();
    assert_eq!(report["encoding"], if gbk { "gbk" } else { "utf-8" });
    assert_eq!(lines_of(&report, "matched"), [2, 3]);
    assert_eq!(lines_of(&report, "amount_mismatch"), [4]);
    assert_eq!(report["amount_mismatch"][0]["expected"], "600.00");
    assert_eq!(lines_of(&report, "unknown_payout"), [5]);
    assert_eq!(lines_of(&report, "duplicate_line"), [6]);
    assert_eq!(report["duplicate_line"][0]["first_line"], 2);
    assert_eq!(lines_of(&report, "already_recorded"), [7]);
    assert_eq!(lines_of(&report, "invalid"), [8]);
    assert_eq!(report["invalid"][0]["field"], "status");
    assert_eq!(report["recorded"], 2);
    // p[4]'s line did not read: the bank has not answered it; p[2] was answered (wrongly).
    let unanswered: Vec<&str> = report["unanswered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["payout"].as_str().unwrap())
        .collect();
    assert_eq!(unanswered, [p[4].as_str()]);
    // Each payout recorded once, with the bank's date.
    assert_eq!(events(&api).await, before + 2);
    let r = api.get("finance", &format!("/v1/payouts/{}", p[0])).await;
    assert_eq!(
        (r.json()["status"].clone(), r.json()["settled_on"].clone()),
        (json!("settled"), json!("2024-11-13"))
    );
    let r = api.get("finance", &format!("/v1/payouts/{}", p[1])).await;
    assert_eq!(r.json()["status"], "failed");
    assert_eq!(r.json()["failed_on"], "2024-11-14");

    // The same file again (a new request): nothing new is recorded.
    let r = import(&api, "finance", "file-2", &file).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let again = r.json();
    assert_eq!(again["recorded"], 0);
    // Days beyond any calendar are no panic: every issued payout is then recent.
    let r = import(&api, "finance", "file-days", &file).await;
    assert_eq!(r.status, 200);
    let huge = {
        let mut request = format!(
            "POST /v1/settlements/import?days=4294967295 HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\
             authorization: Bearer {}\r\ncontent-type: text/csv\r\nidempotency-key: huge\r\n\
             content-length: {}\r\n\r\n",
            api.tokens["finance"],
            file.len()
        )
        .into_bytes();
        request.extend_from_slice(&file);
        raw(api.addr, &request).await
    };
    assert_eq!(huge.status, 200, "{}", huge.text);
    assert_eq!(huge.json()["unanswered"], json!([]));
    assert!(again["matched"].as_array().unwrap().is_empty(), "{again}");
    assert_eq!(lines_of(&again, "already_recorded"), [2, 3, 7]);
    assert!(again["already_recorded"].as_array().unwrap().iter().all(|l| l["agrees"] == true));
    assert_eq!(lines_of(&again, "amount_mismatch"), [4]);
    assert_eq!(events(&api).await, before + 2);

    // A finance bureau of another pool knows none of these payouts.
    let r = import(&api, "finance_jining", "file-3", &file).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(lines_of(&r.json(), "unknown_payout"), [2, 3, 4, 5, 7]);
    assert_eq!(events(&api).await, before + 2);
}

#[tokio::test]
async fn a_utf8_bank_file_with_every_discrepancy_is_reconciled_once() {
    a_bank_file_with_every_discrepancy(false).await;
}

#[tokio::test]
async fn a_gbk_bank_file_with_chinese_headers_is_reconciled_once() {
    a_bank_file_with_every_discrepancy(true).await;
}

#[tokio::test]
async fn a_bank_file_needs_its_key_its_role_and_a_header() {
    let api = Api::start().await;
    set_up(&api).await;
    let file = b"payout_id,amount,status,settled_on,bank_reference,reason\n";
    let r = api
        .send(
            "POST",
            "/v1/settlements/import",
            Some("finance"),
            &[("content-type", "text/csv")],
            Some(std::str::from_utf8(file).unwrap()),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (428, "idempotency_key_required"), "{}", r.text);
    let r = import(&api, "clerk", "k", file).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = import(&api, "finance", "k2", b"payout_id,status,settled_on\n").await;
    assert_eq!((r.status, r.code().as_str()), (422, "validation_failed"), "{}", r.text);
    assert_eq!(r.json()["errors"][0]["field"], "header");
}

#[tokio::test]
async fn a_sealed_month_refuses_late_postings_and_the_next_month_takes_them() {
    let api = Api::start().await;
    set_up(&api).await;
    let ids = cleared(&api, 0..3).await;
    // Paid in November: one settled (for a recovery), one open (for a late settlement).
    let p = pay(&api, &ids[..2], "2024-11-12").await;
    let r = api
        .post(
            "finance",
            &format!("/v1/payouts/{}/settlement", p[0]),
            &json!({"status": "settled", "bank_reference": "B-1"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let report = api.get("finance", "/v1/reports/spending?pool=371500&year=2024").await.json();
    let november: Vec<&Value> =
        report["rows"].as_array().unwrap().iter().filter(|r| r["month"] == "2024-11").collect();
    assert_eq!(november.len(), 1);

    let r = api.post("finance", "/v1/periods/371500/2024-11/seal", &json!({})).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let seal = r.json();
    assert_eq!(seal["totals"]["paid"], november[0]["paid"]);
    assert_eq!(seal["totals"]["paid"], "1200.00");
    assert_eq!(seal["totals"]["payouts"], 2);
    assert_eq!(seal["signed"], false, "the test server holds no checkpoint key");
    assert!(seal["unsigned_because"].is_string());
    assert!(seal["log_position"].as_i64().unwrap() > 0);
    let r = api.post("finance", "/v1/periods/371500/2024-11/seal", &json!({})).await;
    assert_eq!((r.status, r.code().as_str()), (409, "period_already_sealed"), "{}", r.text);
    let r = api.post("finance", "/v1/periods/371500/2999-01/seal", &json!({})).await;
    assert_eq!((r.status, r.code().as_str()), (409, "period_not_ended"), "{}", r.text);
    let r = api.post("finance_jining", "/v1/periods/371500/2024-10/seal", &json!({})).await;
    assert_eq!(r.status, 403, "{}", r.text);

    let before = events(&api).await;
    // A payout, a settlement and a recovery dated in November: refused, nothing recorded.
    let r = api
        .post(
            "finance",
            "/v1/payouts",
            &json!({"application_ids": [ids[2]], "paid_on": "2024-11-20"}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "period_sealed"), "{}", r.text);
    let late = format!(
        "payout_id,amount,status,settled_on,bank_reference,reason\n{},600.00,settled,2024-11-25,B-2,\n",
        p[1]
    );
    let r = import(&api, "finance", "late", late.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["refused"][0]["code"], "period_sealed", "{}", r.text);
    assert_eq!(r.json()["recorded"], 0);
    let r = api
        .post(
            "finance",
            &format!("/v1/applications/{}/recoveries", ids[0]),
            &json!({"amount": "100.00", "reason": "重复领取", "recovered_on": "2024-11-28"}),
        )
        .await;
    assert_eq!((r.status, r.code().as_str()), (409, "period_sealed"), "{}", r.text);
    assert_eq!(events(&api).await, before);

    // The same in December: recorded.
    let r = api
        .post(
            "finance",
            "/v1/payouts",
            &json!({"application_ids": [ids[2]], "paid_on": "2024-12-01"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = import(&api, "finance", "in-time", late.replace("2024-11-25", "2024-12-02").as_bytes())
        .await;
    assert_eq!(r.json()["recorded"], 1, "{}", r.text);
    let r = api
        .post(
            "finance",
            &format!("/v1/applications/{}/recoveries", ids[0]),
            &json!({"amount": "100.00", "reason": "重复领取", "recovered_on": "2024-12-03"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The payout, its batch (PayoutBatchIssued), the settlement, the recovery.
    assert_eq!(events(&api).await, before + 4);
    // November's figures did not move.
    let report = api.get("finance", "/v1/reports/spending?pool=371500&year=2024").await.json();
    let november: Vec<&Value> =
        report["rows"].as_array().unwrap().iter().filter(|r| r["month"] == "2024-11").collect();
    assert_eq!(november[0]["paid"], seal["totals"]["paid"]);
    assert_eq!(november[0]["net"], seal["totals"]["net"]);
}

#[tokio::test]
async fn the_spending_workbook_reads_back_with_the_totals_of_the_report_and_the_quota() {
    use calamine::{Data, Reader, Xlsx};
    let api = Api::start().await;
    set_up(&api).await;
    let ids = cleared(&api, 0..3).await;
    pay(&api, &ids[..2], "2024-11-12").await;
    let p = pay(&api, &ids[2..], "2024-12-02").await;
    let late = format!(
        "payout_id,amount,status,settled_on,bank_reference,reason\n{},600.00,failed,2024-12-05,,账户已销户\n",
        p[0]
    );
    assert_eq!(import(&api, "finance", "f", late.as_bytes()).await.json()["recorded"], 1);

    let json = api.get("finance", "/v1/reports/spending?pool=371500&year=2024").await.json();
    assert_eq!(json["rows"].as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json["totals"]["paid"], "1800.00");
    assert_eq!(json["totals"]["net"], "1200.00");
    let r = api.get("finance", "/v1/reports/spending?pool=371500&year=2024&format=xlsx").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().contains("spreadsheetml"));
    // The test client reads the body as text; take the raw bytes again.
    let bytes = {
        let request = format!(
            "GET /v1/reports/spending?pool=371500&year=2024&format=xlsx HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {}\r\n\r\n",
            api.tokens["finance"]
        );
        let mut stream = tokio::net::TcpStream::connect(api.addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        stream.read_to_end(&mut buf).await.unwrap();
        let at = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&buf[..at]).to_ascii_lowercase();
        assert!(!head.contains("chunked"), "{head}");
        buf[at..].to_vec()
    };
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
    let sheet = book.worksheet_range("支出").unwrap();
    let rows: Vec<Vec<Data>> = sheet.rows().map(|r| r.to_vec()).collect();
    let text = |d: &Data| d.to_string();
    let header: Vec<String> = rows[0].iter().map(text).collect();
    assert_eq!(
        header,
        [
            "月份",
            "县（市、区）",
            "项目",
            "资金来源",
            "笔数",
            "支付金额",
            "退回金额",
            "追回金额",
            "净支出"
        ]
    );
    assert_eq!(text(&rows[1][1]), "东昌府区（371502）");
    assert_eq!(text(&rows[1][2]), "职业培训补贴");
    let totals = rows.last().unwrap();
    assert_eq!(text(&totals[0]), "合计");
    let number = |d: &Data| match d {
        Data::Float(f) => *f,
        other => panic!("money is a number in the workbook, not {other:?}"),
    };
    let money = |d: &Data| format!("{:.2}", number(d));
    assert_eq!(money(&totals[5]), json["totals"]["paid"].as_str().unwrap());
    assert_eq!(money(&totals[6]), json["totals"]["failed"].as_str().unwrap());
    assert_eq!(money(&totals[8]), json["totals"]["net"].as_str().unwrap());
    assert_eq!(number(&totals[4]), 3.0);
    // The rows add up to the totals row, and the paid figure equals the quota's.
    let paid: f64 = rows[1..rows.len() - 1].iter().map(|r| number(&r[5])).sum();
    assert_eq!(format!("{paid:.2}"), money(&totals[5]));
    let quota = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();
    assert_eq!(quota["paid"], json["quota"]["paid"]);
    // A failure does not give quota money back (a reissue is paid from it), so the quota's paid
    // figure is what the report shows as paid.
    assert_eq!(money(&totals[5]), quota["paid"].as_str().unwrap());
    let q = book.worksheet_range("额度").unwrap();
    let paid_row = q.rows().find(|r| r[0] == Data::String("已支付".into())).unwrap().to_vec();
    assert_eq!(money(&paid_row[1]), quota["paid"].as_str().unwrap());
}

async fn fail(api: &Api, payout: &str) {
    let r = api
        .post(
            "finance",
            &format!("/v1/payouts/{payout}/settlement"),
            &json!({"status": "failed", "reason": "账户已销户"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn reissue(api: &Api, payout: &str, number: &str) -> String {
    let body = json!({"account": {"bank": "中国农业银行聊城分行", "number": number}, "paid_on": "2024-11-20"});
    let r = api.post("finance", &format!("/v1/payouts/{payout}/reissue"), &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["id"].as_str().unwrap().to_string()
}

fn flags_of<'a>(answer: &'a Value, kind: &str) -> Vec<&'a Value> {
    answer["flags"].as_array().unwrap().iter().filter(|f| f["kind"] == kind).collect()
}

fn applications_of(flag: &Value) -> Vec<String> {
    let mut apps: Vec<String> = flag["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["application"].as_str().unwrap().to_string())
        .collect();
    apps.dedup();
    apps
}

#[tokio::test]
async fn flags_name_shared_accounts_persons_in_several_counties_and_repeated_account_changes() {
    let api = Api::start().await;
    set_up(&api).await;
    let ids = cleared(&api, 10..14).await;
    let p = pay(&api, &ids, "2024-11-12").await;
    let answer = api.get("auditor", "/v1/flags?pool=371500").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json()["flags"], json!([]), "nothing to flag yet");

    // Two persons' failed payouts reissued to one account (spaces do not make another one).
    for payout in &p[..2] {
        fail(&api, payout).await;
    }
    reissue(&api, &p[0], "6228480000001234").await;
    reissue(&api, &p[1], "6228 4800 0000 1234").await;
    // A third person's account changed twice, each time after a failure.
    fail(&api, &p[2]).await;
    let second = reissue(&api, &p[2], "6228480000005678").await;
    fail(&api, &second).await;
    reissue(&api, &second, "6228480000009999").await;
    // The fourth person's account changed once only: no flag.
    fail(&api, &p[3]).await;
    reissue(&api, &p[3], "6228480000004444").await;
    // The first person applies in another county the same year.
    let other = json!({
        "program": "skill_upgrade", "county": "371521", "submitted_on": "2024-08-01",
        "applicant": {"id_number": common::id_number("371502", 10), "name": "王小五"},
        "eligibility": {"insured_months": 26, "receiving_unemployment_benefit": false},
        "certificate": {"occupation_code": "6-18-02-04", "level": 4, "number": "S0000371500124",
                        "issued_on": "2024-03-01"}
    });
    let r = api.post("clerk_other", "/v1/applications", &other).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let elsewhere = r.json()["id"].as_str().unwrap().to_string();

    let r = api.get("finance", "/v1/flags?pool=371500").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let answer = r.json();
    assert!(!r.text.contains("6228") && !r.text.contains("person:"), "{}", r.text);

    let shared = flags_of(&answer, "shared_account");
    assert_eq!(shared.len(), 1, "{answer}");
    assert_eq!(applications_of(shared[0]), [ids[0].clone(), ids[1].clone()]);
    assert!(shared[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["type"] == "PayoutIssued" && e["event_id"].is_i64()));

    let counties = flags_of(&answer, "several_counties");
    assert_eq!(counties.len(), 1, "{answer}");
    let mut apps = applications_of(counties[0]);
    apps.sort();
    let mut expected = vec![ids[0].clone(), elsewhere];
    expected.sort();
    assert_eq!(apps, expected);

    let changed = flags_of(&answer, "account_changed_repeatedly");
    assert_eq!(changed.len(), 1, "{answer}");
    assert_eq!(applications_of(changed[0]), [ids[2].clone()]);
    let types: Vec<&str> = changed[0]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["PayoutIssued", "PayoutFailed", "PayoutIssued", "PayoutFailed", "PayoutIssued"]
    );

    // Scope: the finance bureau of another pool and county staff may not look.
    assert_eq!(api.get("finance_jining", "/v1/flags?pool=371500").await.status, 403);
    assert_eq!(api.get("clerk", "/v1/flags?pool=371500").await.status, 403);
}

/// Payouts racing the seal of their month: each is either in the seal's totals or refused;
/// none is recorded in the month after the seal was taken.
#[tokio::test]
async fn payouts_racing_a_seal_are_either_in_its_totals_or_refused() {
    let api = std::sync::Arc::new(Api::start().await);
    set_up(&api).await;
    let ids = cleared(&api, 20..36).await;
    // The seal starts among the payouts: some commit before it, some after.
    const SEAL_AT: usize = 8;
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let (api, id) = (api.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            if i == SEAL_AT {
                let r = api.post("finance", "/v1/periods/371500/2024-11/seal", &json!({})).await;
                assert_eq!(r.status, 201, "{}", r.text);
                Some(r.json())
            } else {
                let r = api
                    .post(
                        "finance",
                        "/v1/payouts",
                        &json!({"application_ids": [id], "paid_on": "2024-11-15"}),
                    )
                    .await;
                assert!(
                    r.status == 201 || (r.status == 409 && r.code() == "period_sealed"),
                    "{} {}",
                    r.status,
                    r.text
                );
                None
            }
        }));
    }
    let mut seal = None;
    for t in tasks {
        if let Some(s) = t.await.unwrap() {
            seal = Some(s);
        }
    }
    let seal = seal.unwrap();
    let report = api.get("finance", "/v1/reports/spending?pool=371500&year=2024").await.json();
    let november: Vec<&Value> =
        report["rows"].as_array().unwrap().iter().filter(|r| r["month"] == "2024-11").collect();
    let (payouts, paid) = november.first().map_or((0, "0.00".to_string()), |r| {
        (r["payouts"].as_i64().unwrap(), r["paid"].as_str().unwrap().to_string())
    });
    assert_eq!(seal["totals"]["payouts"].as_i64().unwrap(), payouts, "{seal} {report}");
    assert_eq!(seal["totals"]["paid"].as_str().unwrap(), paid);
}

/// The CLI's path (`fundledger settlements import`): the same import on the pool, each line a
/// transaction of its own, every pool visible.
#[tokio::test]
async fn the_cli_import_records_each_line_in_a_transaction_of_its_own() {
    let api = Api::start().await;
    set_up(&api).await;
    let ids = cleared(&api, 40..42).await;
    let p = pay(&api, &ids, "2024-11-12").await;
    let file = format!(
        "payout_id,amount,status,settled_on,bank_reference,reason\n{},600.00,settled,2024-11-13,B-1,\n{},600.00,settled,2024-11-13,,\n",
        p[0], p[1]
    );
    let today = fundledger::http::today();
    let mut db = fundledger::commands::Db::from(&api.db.pool);
    let report =
        fundledger::commands::settlements::import(&mut db, file.as_bytes(), None, 10, "cli", today)
            .await
            .unwrap();
    assert_eq!((report.recorded, report.invalid.len()), (1, 1));
    assert_eq!(report.invalid[0].field, "bank_reference");
    assert_eq!(report.unanswered.len(), 1, "the payout whose line did not read");
    let again =
        fundledger::commands::settlements::import(&mut db, file.as_bytes(), None, 10, "cli", today)
            .await
            .unwrap();
    assert_eq!((again.recorded, again.already_recorded.len()), (0, 1));
}

fn line_of<'a>(tb: &'a Value, account: &str) -> &'a Value {
    tb["lines"].as_array().unwrap().iter().find(|l| l["account"] == account).unwrap()
}

#[tokio::test]
async fn the_trial_balance_of_a_month_balances_and_agrees_with_the_spending_report() {
    let api = Api::start().await;
    set_up(&api).await;
    let ids = cleared(&api, 20..23).await;
    let p = pay(&api, &ids, "2024-11-12").await;
    let file = format!(
        "payout_id,amount,status,settled_on,bank_reference,reason\n\
         {},600.00,settled,2024-11-13,B-1,\n{},600.00,failed,2024-11-14,,账户已销户\n",
        p[0], p[1]
    );
    let r = import(&api, "finance", "tb-1", file.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    reissue(&api, &p[1], "6228480000000000001").await;

    let path = "/v1/reports/trial-balance?pool=371500&month=2024-11";
    let tb = api.get("finance", path).await;
    assert_eq!(tb.status, 200, "{}", tb.text);
    let tb = tb.json();
    // Issued 3 × 600 from the quota and a reissue of 600; one settled, one failed.
    assert_eq!(
        (tb["total_debit"].as_str(), tb["total_credit"].as_str()),
        (Some("3600.00"), Some("3600.00"))
    );
    assert_eq!(tb["balanced"], true);
    let quota = line_of(&tb, "expansion_quota");
    assert_eq!(
        (quota["label"].as_str(), quota["debit"].as_str()),
        (Some("扩围额度"), Some("1800.00"))
    );
    let payable = line_of(&tb, "payable");
    assert_eq!(
        (payable["debit"].as_str(), payable["credit"].as_str()),
        (Some("1200.00"), Some("2400.00"))
    );
    assert_eq!(line_of(&tb, "paid")["credit"], "600.00");
    let returned = line_of(&tb, "returned");
    assert_eq!(
        (returned["label"].as_str(), returned["balance"].as_str()),
        (Some("退回待重发"), Some("0.00"))
    );
    assert_eq!(line_of(&tb, "fund")["label"], "基金");
    assert_eq!(line_of(&tb, "recovered")["label"], "追回");

    // The report's net for the month is the sources' balance plus the returned money's.
    let report = api.get("finance", "/v1/reports/spending?pool=371500&year=2024").await.json();
    let net: rust_decimal::Decimal = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["month"] == "2024-11")
        .map(|r| r["net"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap())
        .sum();
    let balance = |a: &str| {
        line_of(&tb, a)["balance"].as_str().unwrap().parse::<rust_decimal::Decimal>().unwrap()
    };
    assert_eq!(net, balance("fund") + balance("expansion_quota") + balance("returned"));

    // Auditors read it too; another pool's bureau and a county clerk do not; a month is YYYY-MM.
    let a = api.get("auditor", path).await;
    assert_eq!((a.status, a.json()), (200, tb.clone()));
    assert_eq!(api.get("finance_jining", path).await.status, 403);
    assert_eq!(api.get("clerk", path).await.status, 403);
    let bad = api.get("finance", "/v1/reports/trial-balance?pool=371500&month=2024-13").await;
    assert_eq!((bad.status, bad.code()), (422, "validation_failed".to_string()), "{}", bad.text);
    // A month with nothing posted balances at zero.
    let empty =
        api.get("finance", "/v1/reports/trial-balance?pool=371500&month=2024-01").await.json();
    assert_eq!(
        (empty["total_debit"].as_str(), empty["balanced"].as_bool()),
        (Some("0.00"), Some(true))
    );
}
