//! Reports people open: the spending report as a table with Chinese headers, county names and
//! a totals row, written as CSV or XLSX (`GET /v1/reports/spending?format=csv|xlsx`).

use std::collections::{BTreeMap, BTreeSet};

use events::setup::CountyRegistered;
use events::DomainEvent;

use projections::pools::QuotaRow;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgConnection;

/// The report's columns as the province's forms name them, and the JSON row field of each.
pub const COLUMNS: [(&str, &str); 9] = [
    ("月份", "month"),
    ("县（市、区）", "county"),
    ("项目", "program"),
    ("资金来源", "funding"),
    ("笔数", "payouts"),
    ("支付金额", "paid"),
    ("退回金额", "failed"),
    ("追回金额", "recovered"),
    ("净支出", "net"),
];

/// The label of a totals row.
pub const TOTALS_LABEL: &str = "合计";

/// Program names as the notices write them.
pub fn program_name(program: &str) -> &str {
    match program {
        "skill_upgrade" => "技能提升补贴",
        "vocational_training" => "职业培训补贴",
        "job_stabilization_refund" => "稳岗返还",
        "on_the_job_training" => "以工代训补贴",
        "pilot_subsidy" => "扩围试点补贴",
        other => other,
    }
}

/// Funding sources as the notices write them.
pub fn funding_name(funding: &str) -> &str {
    match funding {
        "unemployment_insurance" => "失业保险基金",
        "expansion_pilot" => "扩围试点（计入额度）",
        "employment_subsidy" => "就业补助资金",
        other => other,
    }
}

/// The names of the counties `codes`, from each county's own stream (one event each).
pub async fn county_names(
    conn: &mut PgConnection,
    codes: &BTreeSet<String>,
) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let mut names = BTreeMap::new();
    for code in codes {
        for e in crate::store::read_stream(conn, &format!("county-{code}")).await? {
            if e.event_type == CountyRegistered::TYPE {
                let registered: CountyRegistered =
                    serde_json::from_value(e.data).expect("a recorded county");
                names.insert(registered.county, registered.name);
            }
        }
    }
    Ok(names)
}

fn decimal(v: &Value) -> Decimal {
    v.as_str().and_then(|s| s.parse().ok()).unwrap_or_default()
}

/// The sums of the report rows (JSON rows as `GET /v1/reports/spending` answers them).
pub fn totals(rows: &[Value]) -> Value {
    let sum = |k: &str| rows.iter().map(|r| decimal(&r[k])).sum::<Decimal>();
    let payouts: i64 = rows.iter().map(|r| r["payouts"].as_i64().unwrap_or(0)).sum();
    json!({
        "payouts": payouts, "paid": format!("{:.2}", sum("paid")), "failed": format!("{:.2}", sum("failed")),
        "recovered": format!("{:.2}", sum("recovered")), "net": format!("{:.2}", sum("net")),
    })
}

/// A cell of the table: text, a count, or money.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Count(i64),
    Money(Decimal),
}

impl Cell {
    pub fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Count(n) => n.to_string(),
            Cell::Money(d) => format!("{d:.2}"),
        }
    }
}

/// The header, one line per row (county as `name（code）`, program and funding by name), and
/// the totals row.
pub fn table(
    rows: &[Value],
    totals: &Value,
    counties: &BTreeMap<String, String>,
) -> Vec<Vec<Cell>> {
    let mut out = vec![COLUMNS.iter().map(|(h, _)| Cell::Text((*h).to_string())).collect()];
    let line = |r: &Value, label: Option<&str>| -> Vec<Cell> {
        COLUMNS
            .iter()
            .map(|(_, k)| {
                let v = &r[*k];
                match *k {
                    "month" => Cell::Text(
                        label.map_or_else(|| v.as_str().unwrap_or("").to_string(), str::to_string),
                    ),
                    "county" => {
                        Cell::Text(v.as_str().map_or(String::new(), |c| match counties.get(c) {
                            Some(name) => format!("{name}（{c}）"),
                            None => c.to_string(),
                        }))
                    }
                    "program" => Cell::Text(v.as_str().map(program_name).unwrap_or("").to_string()),
                    "funding" => Cell::Text(v.as_str().map(funding_name).unwrap_or("").to_string()),
                    "payouts" => Cell::Count(v.as_i64().unwrap_or(0)),
                    _ => Cell::Money(decimal(v)),
                }
            })
            .collect()
    };
    for r in rows {
        out.push(line(r, None));
    }
    out.push(line(totals, Some(TOTALS_LABEL)));
    out
}

/// The table as an XLSX workbook: sheet `支出` (money as numbers formatted `0.00`) and sheet
/// `额度` with the year's quota. XLSX stores numbers as binary doubles: amounts up to
/// 10^13 yuan with 2 decimals survive the round trip exactly as displayed.
pub fn xlsx(
    table: &[Vec<Cell>],
    quota: Option<&QuotaRow>,
    pool: &str,
    year: i32,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let money = Format::new().set_num_format("0.00");
    let bold = Format::new().set_bold();
    let sheet = workbook.add_worksheet();
    sheet.set_name("支出")?;
    for (r, line) in table.iter().enumerate() {
        let last = r + 1 == table.len();
        for (c, cell) in line.iter().enumerate() {
            let (row, col) = (r as u32, c as u16);
            match cell {
                Cell::Text(s) if r == 0 || last => {
                    sheet.write_string_with_format(row, col, s, &bold)?;
                }
                Cell::Text(s) => {
                    sheet.write_string(row, col, s)?;
                }
                Cell::Count(n) => {
                    sheet.write_number(row, col, *n as f64)?;
                }
                Cell::Money(d) => {
                    sheet.write_number_with_format(row, col, d.to_f64().unwrap_or(0.0), &money)?;
                }
            }
        }
    }
    sheet.set_column_width(1, 22)?;
    sheet.set_column_width(2, 16)?;
    sheet.set_column_width(3, 22)?;
    let q = workbook.add_worksheet();
    q.set_name("额度")?;
    q.write_string_with_format(0, 0, format!("{pool} {year} 年扩围试点额度"), &bold)?;
    if let Some(u) = quota {
        let remaining = u.cap - u.committed - u.paid + u.recovered;
        for (i, (label, v)) in [
            ("额度上限", u.cap),
            ("已承诺", u.committed),
            ("已支付", u.paid),
            ("已追回", u.recovered),
            ("剩余额度", remaining),
        ]
        .into_iter()
        .enumerate()
        {
            let row = i as u32 + 1;
            q.write_string(row, 0, label)?;
            q.write_number_with_format(row, 1, v.to_f64().unwrap_or(0.0), &money)?;
        }
    } else {
        q.write_string(1, 0, "该年度未设定额度")?;
    }
    workbook.save_to_buffer()
}
