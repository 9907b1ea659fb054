//! The dashboard in a real browser: Debian's headless `chromium`, driven by
//! `tests/browser/see.mjs` (playwright-core; `.ci/run` installs both), signs in through the
//! form, opens every page and reports what is on screen; this test checks it against the API
//! (the gauge's figures are the quota's, the notice masks every ID number, scope holds).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{id_number, seed_noticed, Api};
use serde_json::{json, Value};

/// Installs what the browser test needs when something is missing
/// (`tests/browser/provision.sh`, the script `.ci/run` runs too), so that `cargo test` works on
/// a fresh Debian machine; elsewhere it fails here saying what to install.
fn provision() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/provision.sh");
    let status = Command::new("bash").arg(&script).status().expect("bash runs");
    assert!(
        status.success(),
        "{} could not install chromium, a CJK font, node or playwright-core: install them \
         (README, \"Prerequisites\"), or set CHROMIUM",
        script.display()
    );
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "no chromium at {} (apt-get install -y chromium, as .ci/run does; or set CHROMIUM)",
        path.display()
    );
    path
}

/// Runs the browser over `sessions` and returns what it saw, one entry per session.
/// Blocking: run it off the runtime that serves the pages.
fn see(base: String, sessions: Value) -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if std::env::var_os("CHROMIUM").is_none()
        && (!Path::new("/usr/bin/chromium").exists()
            || !dir.join("node_modules/playwright-core").exists())
    {
        provision();
    }
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` first (.ci/run does)"
    );
    let shots =
        std::env::temp_dir().join(format!("fundledger-shots-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&shots).unwrap();
    let input = json!({
        "base": base, "executable": chromium(),
        "screenshots": shots, "sessions": sessions,
    });
    let mut child = Command::new("node")
        .arg(dir.join("see.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs");
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the browser failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    // Each page was drawn: a screenshot per page, not empty.
    for session in &seen {
        for visit in session["visits"].as_array().unwrap().iter().skip(1) {
            let file = shots.join(format!("{}.png", visit["name"].as_str().unwrap()));
            assert!(std::fs::metadata(&file).map(|m| m.len() > 1000).unwrap_or(false), "{file:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&shots);
    seen
}

fn visit<'a>(session: &'a Value, name: &str) -> &'a Value {
    session["visits"].as_array().unwrap().iter().find(|v| v["name"] == name).unwrap()
}

/// Whether `text` holds a full resident ID number (17 digits and a check character).
fn has_full_id_number(text: &str) -> bool {
    let b = text.as_bytes();
    (0..b.len().saturating_sub(17)).any(|i| {
        b[i..i + 17].iter().all(u8::is_ascii_digit)
            && (b[i + 17].is_ascii_digit() || b[i + 17] == b'X')
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_chromium_a_person_signs_in_and_sees_what_the_api_states() {
    let api = Api::start().await;
    let (ids, notice) = seed_noticed(&api).await;
    let quota = api.get("finance", "/v1/pools/371500/quotas/2024").await.json();
    let notice_json = api.get("clerk", &format!("/v1/notices/{notice}")).await.json();
    let app = api.get("finance", &format!("/v1/applications/{}", ids[0])).await.json();
    let verify = api.get("auditor", "/v1/audit/verify").await.json();

    let page = |path: String, name: &str| json!({"path": path, "name": name});
    let sessions = json!([
            {"token": api.tokens["finance"], "pages": [
                page("/".into(), "overview"),
                page("/pools/371500".into(), "pool"),
                page(format!("/applications/{}", ids[0]), "application"),
                page("/pools/370800".into(), "other_pool"),
            ]},
            {"token": api.tokens["clerk"], "pages": [
                page(format!("/notices/{notice}"), "notice"),
                page("/".into(), "county_overview"),
            ]},
            {"token": api.tokens["clerk_other"], "pages": [
                page(format!("/applications/{}", ids[0]), "other_county_application"),
            ]},
            {"token": api.tokens["auditor"], "pages": [page("/audit".into(), "audit")]},
    ]);
    let base = format!("http://{}", api.addr);
    let seen = tokio::task::spawn_blocking(move || see(base, sessions)).await.unwrap();
    let (finance, clerk, other, auditor) = (&seen[0], &seen[1], &seen[2], &seen[3]);

    // The sign-in page comes first; the form sets an HttpOnly, SameSite=Strict cookie.
    assert!(visit(finance, "signin")["text"].as_str().unwrap().contains("访问令牌"));
    assert_eq!(
        finance["cookies"],
        json!([{"name": "fundledger_session", "httpOnly": true, "sameSite": "Strict"}])
    );

    // The gauge shows the quota's figures, on the overview and on the pool page, as drawn.
    for name in ["overview", "pool"] {
        let v = visit(finance, name);
        assert_eq!(v["status"], 200, "{v}");
        assert!(v["svg_gauges"].as_u64().unwrap() >= 1, "a gauge is drawn on {name}");
        for f in ["cap", "committed", "paid", "recovered", "remaining"] {
            let shown = v["fields"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["field"] == f && x["pool"] == "371500" && x["year"] == "2024")
                .unwrap_or_else(|| panic!("{f} on {name}: {v}"));
            assert_eq!(shown["text"], quota[f], "{f} on {name}");
        }
    }
    assert_ne!(quota["committed"], "0.00");
    assert!(visit(finance, "overview")["text"].as_str().unwrap().contains("聊城市"));

    // The application page names the rules that decided the amount, as recorded.
    let v = visit(finance, "application");
    let decision = &app["events"][0]["data"]["decision"];
    for f in ["amount", "amount_rule", "funding_rule"] {
        let shown = v["fields"].as_array().unwrap().iter().find(|x| x["field"] == f).unwrap();
        assert_eq!(shown["text"], decision[f], "{f}");
    }

    // The printed notice: the API's masked ID numbers, every one masked, no full number or name.
    let v = visit(clerk, "notice");
    assert_eq!(v["status"], 200);
    let expected: Vec<&Value> =
        notice_json["lines"].as_array().unwrap().iter().map(|l| &l["id_number"]).collect();
    let shown: Vec<&Value> = v["id_numbers"].as_array().unwrap().iter().collect();
    assert_eq!(shown, expected);
    for id in &shown {
        assert!(id.as_str().unwrap().contains('*'), "masked: {id}");
    }
    let text = v["text"].as_str().unwrap();
    assert!(!has_full_id_number(text), "{text}");
    assert!(!text.contains(&id_number("371502", 1)) && !text.contains("王小五"), "{text}");

    // Scope as the API's: another pool, another county refused; a county sees no quota.
    assert_eq!(visit(finance, "other_pool")["status"], 403);
    assert_eq!(visit(other, "other_county_application")["status"], 403);
    let v = visit(clerk, "county_overview");
    assert!(v["fields"].as_array().unwrap().iter().all(|x| x["field"] != "cap"), "{v}");

    // The audit page shows the verification the API gives.
    let v = visit(auditor, "audit");
    assert_eq!(v["status"], 200);
    let text = v["text"].as_str().unwrap();
    assert!(text.contains("通过"), "{text}");
    assert!(text.contains(&verify["events_checked"].to_string()), "{text}");
}
