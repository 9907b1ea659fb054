//! The dashboard's pages (zh-CN), as compile-time `maud` templates: every value is escaped by
//! the template; nothing here reads the database.

use maud::{html, Markup, PreEscaped, DOCTYPE};
use projections::applications::StatusRow;
use projections::notices::{NoticeLineRow, NoticeRow};
use serde_json::Value;

use super::svg;
use crate::http::money;
use crate::http::problem::Problem;
use crate::read_models::{Division, MonthFigures};
use crate::store::RecordedEvent;
use crate::tokens::{Principal, Role, Scope};
use projections::pools::QuotaRow;

const CSS: &str = r#"
*{box-sizing:border-box}body{margin:0;font:15px/1.6 "Noto Sans CJK SC","Microsoft YaHei","PingFang SC",sans-serif;color:#1d2733;background:#f5f7fa}
header.top{display:flex;align-items:center;gap:1.5em;background:#1f3a5f;color:#fff;padding:.6em 1.5em}
header.top a{color:#fff;text-decoration:none}header.top .who{margin-left:auto;font-size:.9em;opacity:.9}
header.top form{margin:0}header.top button{background:none;border:1px solid #fff8;color:#fff;border-radius:4px;padding:.2em .8em;cursor:pointer}
main{max-width:1100px;margin:1.5em auto;padding:0 1.5em}h1{font-size:1.5em;margin:.2em 0 .8em}h2{font-size:1.15em;margin:1.5em 0 .5em}
section.card{background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:1em 1.3em;margin-bottom:1.2em}
table{border-collapse:collapse;width:100%;font-size:.92em}th,td{border-bottom:1px solid #e4e8ee;padding:.35em .5em;text-align:left}
th{background:#f0f3f7}.num{text-align:right;font-variant-numeric:tabular-nums}
.gauges{display:flex;flex-wrap:wrap;gap:1.5em}figure.gauge{margin:0}figure.gauge figcaption{font-weight:600}
dl.figures{display:grid;grid-template-columns:auto auto;gap:0 1em;margin:.4em 0;font-size:.9em}dl.figures dt{color:#5a6675}dl.figures dd{margin:0;text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#6b7785}.ok{color:#2f855a;font-weight:600}.bad{color:#c53030;font-weight:600}
.signin{max-width:420px;margin:8vh auto;background:#fff;border:1px solid #dde3ea;border-radius:6px;padding:2em}
.signin input{width:100%;padding:.5em;font:inherit;margin:.5em 0 1em}.signin button{padding:.5em 1.5em;font:inherit;background:#1f3a5f;color:#fff;border:0;border-radius:4px}
.error{color:#c53030}ol.timeline{list-style:none;padding:0}ol.timeline li{border-left:3px solid #3b6fb6;padding:.3em 0 .6em 1em;margin-left:.3em}
.decision{background:#f7f9fc;border:1px solid #e1e7f0;padding:.5em .8em;margin-top:.3em}.decision dt{font-weight:600}.decision dd{margin:0 0 .3em 0}
.notice h1{text-align:center}.notice .period{text-align:center}
@media print{header.top,.noprint{display:none}body{background:#fff}main{margin:0;max-width:none}section.card{border:0;padding:0}
 .notice table{font-size:11pt}th{background:#fff}}
"#;

/// A program's name as the notices write it.
pub fn program_name(p: &str) -> &str {
    match p {
        "skill_upgrade" => "技能提升补贴",
        "vocational_training" => "职业培训补贴",
        "job_stabilization_refund" => "稳岗返还",
        "on_the_job_training" => "以工代训补贴",
        "pilot_subsidy" => "扩围试点补贴",
        other => other,
    }
}

/// A funding source's name.
pub fn funding_name(f: &str) -> &str {
    match f {
        "unemployment_insurance" => "失业保险基金（常规支出）",
        "expansion_pilot" => "扩大失业保险基金支出试点",
        "employment_subsidy" => "就业补助资金",
        other => other,
    }
}

fn status_name(s: &str) -> &str {
    match s {
        "submitted" => "已受理",
        "approved" => "审核通过",
        "rejected" => "不予通过",
        "withdrawn" => "已撤回",
        "noticed" => "公示中",
        "cleared" => "公示无异议",
        "paid" => "已支付",
        "settled" => "银行已到账",
        "failed" => "支付失败",
        "open" => "公示中",
        "closed" => "公示结束",
        other => other,
    }
}

fn event_name(t: &str) -> &str {
    match t {
        "ApplicationSubmitted" => "受理申请",
        "ApplicationApproved" => "审核通过",
        "ApplicationRejected" => "不予通过",
        "ApplicationWithdrawn" => "撤回申请",
        "ApplicationNoticed" => "列入公示",
        "ApplicationCleared" => "公示期满无异议",
        "PayoutIssued" => "发放",
        "PayoutSettled" => "银行到账",
        "PayoutFailed" => "支付失败",
        "ObjectionFiled" => "收到异议",
        "ObjectionResolved" => "异议处理",
        "RecoveryRecorded" => "追回",
        other => other,
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "管理员",
        Role::CityFinance => "市财政",
        Role::CountyClerk => "县级经办",
        Role::CountyReviewer => "县级复核",
        Role::Auditor => "审计",
    }
}

/// `code name`, or the code alone when it is not registered.
fn place(divisions: &[Division], code: &str) -> String {
    match divisions.iter().find(|d| d.code == code) {
        Some(d) => format!("{}（{}）", d.name, d.code),
        None => code.to_string(),
    }
}

fn layout(title: &str, who: Option<&Principal>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · 失业保险基金支出台账" }
                style { (PreEscaped(CSS)) }
            }
            body {
                @if let Some(p) = who {
                    header.top {
                        a href="/" { strong { "失业保险基金支出台账" } }
                        @if p.has(Role::Auditor) { a href="/audit" { "审计核验" } }
                        span.who {
                            (p.label) " · "
                            @for (i, r) in p.roles.iter().enumerate() { @if i > 0 { "、" } (role_name(*r)) }
                            " · "
                            @match &p.scope { Scope::All => "全省", Scope::Pool(x) => { "统筹区 " (x) }, Scope::County(x) => { "县区 " (x) } }
                        }
                        form method="post" action="/signout" { button type="submit" { "退出" } }
                    }
                }
                main { (body) }
            }
        }
    }
}

pub fn sign_in(message: Option<&str>) -> Markup {
    layout(
        "登录",
        None,
        html! {
            div.signin {
                h1 { "失业保险基金支出台账" }
                p.muted { "请输入管理员用 " code { "fundledger token create" } " 为您签发的令牌。" }
                @if let Some(m) = message { p.error role="alert" { (m) } }
                form method="post" action="/signin" {
                    label for="token" { "访问令牌" }
                    input #token type="password" name="token" autocomplete="off" required;
                    button type="submit" { "登录" }
                }
            }
        },
    )
}

pub fn error(p: &Problem) -> Markup {
    let title = match p.status {
        403 => "无权查看",
        404 => "未找到",
        429 => "请求过于频繁",
        503 => "暂时无法访问",
        _ => "出错了",
    };
    layout(
        title,
        None,
        html! {
            section.card {
                h1 { (title) }
                p { (p.detail) }
                p.muted { "代码：" code { (p.code) } " · " a href="/" { "返回首页" } }
            }
        },
    )
}

/// One pool's figures for the overview and its page.
#[derive(Debug)]
pub struct PoolFigures {
    pub pool: Division,
    pub quotas: Vec<QuotaRow>,
    pub months: Vec<MonthFigures>,
}

/// What a county's staff see on the overview: their county's latest work.
#[derive(Debug)]
pub struct CountyDesk {
    pub code: String,
    pub applications: Vec<StatusRow>,
    pub notices: Vec<NoticeRow>,
}

fn pool_card(f: &PoolFigures, link: bool) -> Markup {
    html! {
        section.card.pool data-pool=(f.pool.code) {
            h2 {
                @if link { a href=(format!("/pools/{}", f.pool.code)) { (f.pool.name) } } @else { (f.pool.name) }
                " " span.muted { (f.pool.code) }
            }
            @if f.quotas.is_empty() { p.muted { "尚未核定扩大支出额度。" } }
            div.gauges { @for q in &f.quotas { (svg::gauge(q)) } }
            h3 { "按月净支出" }
            (svg::months(&f.months))
            p.noprint.muted {
                "报表："
                @for q in &f.quotas {
                    a href=(format!("/v1/reports/spending?pool={}&year={}&format=csv", f.pool.code, q.year)) { (q.year) " CSV" }
                    " · "
                    a href=(format!("/v1/reports/spending?pool={}&year={}", f.pool.code, q.year)) { (q.year) " JSON" }
                    " "
                }
            }
        }
    }
}

fn applications_table(divisions: &[Division], rows: &[StatusRow]) -> Markup {
    html! {
        @if rows.is_empty() { p.muted { "暂无申请。" } } @else {
            table.applications {
                thead { tr { th { "申请" } th { "县区" } th { "项目" } th { "对象" } th { "状态" } th.num { "金额" } } }
                tbody {
                    @for a in rows {
                        tr {
                            td { a href=(format!("/applications/{}", a.application)) { (a.submitted_on) } }
                            td { (place(divisions, &a.county)) }
                            td { (program_name(&a.program)) }
                            td { (a.display_name) " " span.muted { (a.display_id) } }
                            td { (status_name(&a.status)) }
                            td.num { (money(a.amount)) }
                        }
                    }
                }
            }
        }
    }
}

fn notices_table(divisions: &[Division], rows: &[NoticeRow]) -> Markup {
    html! {
        @if rows.is_empty() { p.muted { "暂无公示。" } } @else {
            table.notices {
                thead { tr { th { "公示" } th { "县区" } th { "公示期" } th { "状态" } } }
                tbody {
                    @for n in rows {
                        tr {
                            td { a href=(format!("/notices/{}", n.notice)) { "公示 " (n.starts_on) } }
                            td { (place(divisions, &n.county)) }
                            td { (n.starts_on) " 至 " (n.ends_on) }
                            td { (status_name(&n.status)) }
                        }
                    }
                }
            }
        }
    }
}

pub fn home(
    p: &Principal,
    divisions: &[Division],
    pools: &[PoolFigures],
    county: Option<&CountyDesk>,
) -> Markup {
    layout(
        "总览",
        Some(p),
        html! {
            h1 { "总览" }
            @for f in pools { (pool_card(f, true)) }
            @if let Some(c) = county {
                section.card {
                    h2 { (place(divisions, &c.code)) " 最近的申请" }
                    (applications_table(divisions, &c.applications))
                }
                section.card {
                    h2 { "公示" }
                    (notices_table(divisions, &c.notices))
                }
            }
            @if pools.is_empty() && county.is_none() {
                p.muted { "此令牌没有可查看的统筹区。" }
            }
        },
    )
}

pub fn pool(
    p: &Principal,
    divisions: &[Division],
    f: &PoolFigures,
    applications: &[StatusRow],
    notices: &[NoticeRow],
) -> Markup {
    let counties: Vec<&Division> =
        divisions.iter().filter(|d| d.pool.as_deref() == Some(f.pool.code.as_str())).collect();
    layout(
        &f.pool.name,
        Some(p),
        html! {
            h1 { (f.pool.name) " " span.muted { (f.pool.code) } }
            (pool_card(f, false))
            section.card {
                h2 { "所辖县区（" (counties.len()) "）" }
                p { @for (i, c) in counties.iter().enumerate() { @if i > 0 { "、" } (c.name) } }
            }
            @if !f.months.is_empty() {
                section.card {
                    h2 { "试算平衡表" }
                    p { @for (i, m) in f.months.iter().enumerate() {
                        @if i > 0 { " " }
                        a href={ "/pools/" (f.pool.code) "/trial-balance/" (m.month) } { (m.month) }
                    } }
                }
            }
            section.card { h2 { "最近的申请" } (applications_table(divisions, applications)) }
            section.card { h2 { "公示" } (notices_table(divisions, notices)) }
        },
    )
}

/// A decision record's fields as the page shows them (the rule and clause that decided).
fn decision(d: &Value) -> Markup {
    let text = |k: &str| d[k].as_str().map(str::to_string).unwrap_or_default();
    html! {
        dl.decision {
            dt { "适用政策" } dd { (text("policy")) " " (text("document")) }
            dt { "金额" } dd data-field="amount" { (d["amount"].as_str().unwrap_or("")) }
            dt { "金额依据" } dd data-field="amount_rule" { (text("amount_rule")) }
            dt { "资金来源" } dd { (funding_name(&text("funding"))) }
            dt { "资金来源依据" } dd data-field="funding_rule" { (text("funding_rule")) }
        }
    }
}

/// Fields of an event shown on the timeline: facts a case worker reads, never a personal
/// value (names, ID numbers, accounts and bank references stay out).
const TIMELINE_FIELDS: [(&str, &str); 8] = [
    ("amount", "金额"),
    ("reason", "原因"),
    ("reasons", "理由"),
    ("summary", "异议内容"),
    ("upheld", "异议成立"),
    ("note", "说明"),
    ("paid_on", "支付日期"),
    ("notice", "公示"),
];

pub fn application(
    p: &Principal,
    divisions: &[Division],
    a: &StatusRow,
    events: &[RecordedEvent],
) -> Markup {
    layout(
        "申请",
        Some(p),
        html! {
            h1 { (program_name(&a.program)) "申请" }
            section.card {
                table {
                    tr { th { "对象" } td { (a.display_name) " " (a.display_id) } }
                    tr { th { "县区" } td { (place(divisions, &a.county)) } }
                    tr { th { "受理日期" } td { (a.submitted_on) } }
                    tr { th { "状态" } td #status { (status_name(&a.status)) } }
                    tr { th { "核定金额" } td #amount { (money(a.amount)) } }
                    tr { th { "资金来源" } td { (funding_name(&a.funding)) } }
                    tr { th { "适用政策" } td { (a.policy) } }
                    tr { th { "已支付" } td { (money(a.paid)) } }
                    tr { th { "已追回" } td { (money(a.recovered)) } }
                    tr { th { "申请编号" } td { code { (a.application) } } }
                }
            }
            section.card {
                h2 { "办理经过" }
                ol.timeline {
                    @for e in events {
                        li data-type=(e.event_type) {
                            strong { (event_name(&e.event_type)) }
                            " " (e.business_date.map(|d| d.to_string()).unwrap_or_default())
                            " " span.muted { (e.metadata.actor.as_deref().unwrap_or("")) " · 记录于 " (e.recorded_at.format("%Y-%m-%d %H:%M:%S UTC")) }
                            @if e.data["decision"].is_object() { (decision(&e.data["decision"])) }
                            @if let Some(lines) = e.data["decision"]["lines"].as_array() {
                                ul { @for l in lines { li { (l["amount"].as_str().unwrap_or("")) " " (l["rule"].as_str().or(l["amount_rule"].as_str()).unwrap_or("")) } } }
                            }
                            ul {
                                @for (k, label) in TIMELINE_FIELDS {
                                    @if let Some(v) = shown(&e.data[k]) { li { (label) "：" (v) } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn shown(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(true) => Some("是".into()),
        Value::Bool(false) => Some("否".into()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => {
            Some(items.iter().filter_map(|i| i.as_str()).collect::<Vec<_>>().join("；"))
        }
        _ => None,
    }
}

/// The notice a county posts (公示): masked names and ID numbers only, as stored in
/// `notice_lines`; printable.
pub fn notice(
    p: &Principal,
    divisions: &[Division],
    n: &NoticeRow,
    lines: &[NoticeLineRow],
) -> Markup {
    let county = divisions
        .iter()
        .find(|d| d.code == n.county)
        .map_or(n.county.as_str(), |d| d.name.as_str());
    let total: rust_decimal::Decimal = lines.iter().map(|l| l.amount).sum();
    layout(
        "公示",
        Some(p),
        html! {
            section.card.notice {
                h1 { (county) "失业保险基金补贴发放公示" }
                p.period { "公示期：" (n.starts_on) " 至 " (n.ends_on) "（" (n.working_days) " 个工作日）" }
                p { "根据有关规定，现将拟发放补贴的人员（单位）名单予以公示。如有异议，请于公示期内向"
                    (county) "人力资源和社会保障部门反映。" }
                table {
                    thead { tr { th.num { "序号" } th { "姓名（单位）" } th { "身份证号（统一社会信用代码）" } th { "项目" } th.num { "金额（元）" } } }
                    tbody {
                        @for (i, l) in lines.iter().enumerate() {
                            tr.line {
                                td.num { (i + 1) }
                                td.name { (l.name_masked) }
                                td.id_number { (l.id_number_masked) }
                                td { (program_name(&l.program)) }
                                td.num { (money(l.amount)) }
                            }
                            // Paid per payee (劳务派遣): each part, to whom, as the notice lists it.
                            @for part in l.payees.as_array().into_iter().flatten() {
                                tr.payee {
                                    td {}
                                    td.name { "其中：" (part["name"].as_str().unwrap_or("")) }
                                    td.id_number { (part["credit_code"].as_str().unwrap_or("")) }
                                    td.muted { (part["basis"].as_str().unwrap_or("")) }
                                    td.num { (part["amount"].as_str().unwrap_or("")) }
                                }
                            }
                        }
                    }
                    tfoot { tr { th colspan="4" { "合计 " (lines.len()) " 笔" } th.num { (money(total)) } } }
                }
                p.noprint.muted { "状态：" (status_name(&n.status)) " · 使用浏览器的“打印”即可张贴。" }
            }
        },
    )
}

pub fn audit(
    p: &Principal,
    head: i64,
    v: Option<&crate::audit::Verification>,
    checkpoint: Option<&events::checkpoint::CheckpointSigned>,
) -> Markup {
    layout(
        "审计核验",
        Some(p),
        html! {
            h1 { "审计核验" }
            section.card {
                h2 { "哈希链核验" }
                @match v {
                    Some(v) => {
                        @if v.ok { p.ok #verify { "通过" } } @else { p.bad #verify { "未通过" } }
                        table {
                            tr { th { "已核验事件" } td #events_checked { (v.events_checked) } }
                            tr { th { "日志头位置" } td #head_position { (v.head_position) } }
                            tr { th { "日志头哈希" } td { code #head_hash { (v.head_hash.clone().unwrap_or_default()) } } }
                            tr { th { "签名检查点" } td {
                                @if v.signatures_checked { "已核验 " (v.checkpoints_verified) " 个" @if let Some(s) = v.signed_through { "，覆盖至位置 " (s) } }
                                @else { "未配置可信公钥（FUNDLEDGER_CHECKPOINT_PUBLIC_KEY），仅核验了哈希链" }
                            } }
                            @if let Some(b) = &v.first_bad { tr { th { "首个异常" } td.bad { "位置 " (b.position) "：" (b.problem) } } }
                        }
                    }
                    None => {
                        p { "日志共 " (head) " 个事件，超过页面核验上限（" (super::AUDIT_PAGE_VERIFY_EVENTS_MAX) "）。请在服务器上运行 " code { "fundledger verify" } "。" }
                    }
                }
            }
            section.card {
                h2 { "最近的签名检查点" }
                @match checkpoint {
                    Some(c) => {
                        table {
                            tr { th { "覆盖至位置" } td #checkpoint_position { (c.position) } }
                            tr { th { "哈希" } td { code { (c.hash) } } }
                            tr { th { "签名时间" } td { (c.signed_at.format("%Y-%m-%d %H:%M:%S UTC")) } }
                            tr { th { "公钥" } td { code { (c.public_key) } } }
                        }
                    }
                    None => { p.muted #checkpoint_position { "尚无签名检查点（" code { "fundledger checkpoint" } "）。" } }
                }
            }
        },
    )
}

/// The trial balance (试算平衡表) of a pool's month: every account, debits, credits, balance,
/// and whether the sums agree (as `GET /v1/reports/trial-balance` answers).
pub fn trial_balance(
    p: &Principal,
    pool: &Division,
    month: &str,
    tb: &projections::entries::TrialBalance,
) -> Markup {
    let title = format!("{} {} 试算平衡表", pool.name, month);
    layout(
        &title,
        Some(p),
        html! {
            h1 { (pool.name) " " span.muted { (month) } " 试算平衡表" }
            section.card {
                @if tb.balanced { p.ok #balanced { "借贷平衡" } } @else { p.bad #balanced { "借贷不平衡" } }
                table {
                    tr { th { "科目" } th { "借方" } th { "贷方" } th { "余额（借减贷）" } }
                    @for l in &tb.lines {
                        tr {
                            td { (l.label) }
                            td.num id={ "debit-" (l.account) } { (money(l.debit)) }
                            td.num id={ "credit-" (l.account) } { (money(l.credit)) }
                            td.num id={ "balance-" (l.account) } { (money(l.balance)) }
                        }
                    }
                    tr {
                        th { "合计" }
                        th.num #total_debit { (money(tb.total_debit)) }
                        th.num #total_credit { (money(tb.total_credit)) }
                        th {}
                    }
                }
                p.muted { "拨付借记资金来源（基金或扩围额度）、贷记应付；银行结算由应付转已付，失败转退回待重发，重发再转回应付；追回借记追回、贷记资金来源。" }
                p { a href={ "/pools/" (pool.code) } { "返回" (pool.name) } }
            }
        },
    )
}
