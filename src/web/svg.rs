//! The two pictures of the dashboard, as inline SVG: a quota gauge and monthly bars.
//!
//! Geometry only is computed in floating point (pixels); every figure a person reads is the
//! decimal money string the API gives, printed beside the picture.

use maud::{html, Markup};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::http::money;
use crate::read_models::MonthFigures;
use projections::pools::QuotaRow;

const GAUGE_WIDTH_PX: f64 = 360.0;
const GAUGE_HEIGHT_PX: f64 = 22.0;
const BAR_WIDTH_PX: f64 = 18.0;
const BAR_GAP_PX: f64 = 6.0;
const BARS_HEIGHT_PX: f64 = 120.0;

/// The share `part / whole` as a width in pixels, within the gauge.
fn width(part: Decimal, whole: Decimal) -> f64 {
    if whole <= Decimal::ZERO {
        return 0.0;
    }
    let share = (part / whole).to_f64().unwrap_or(0.0).clamp(0.0, 1.0);
    share * GAUGE_WIDTH_PX
}

/// The expansion quota of one year: committed (approved, not yet paid back) over the cap, paid
/// within it, and the figures as `GET /v1/pools/{pool}/quotas/{year}` states them.
pub fn gauge(q: &QuotaRow) -> Markup {
    let committed = width(q.committed, q.cap);
    let paid = width(q.paid - q.recovered, q.cap);
    html! {
        figure.gauge data-pool=(q.pool) data-year=(q.year) {
            figcaption { (q.year) " 年度扩大支出额度" }
            svg width=(GAUGE_WIDTH_PX) height=(GAUGE_HEIGHT_PX) viewBox=(format!("0 0 {GAUGE_WIDTH_PX} {GAUGE_HEIGHT_PX}"))
                role="img" aria-label=(format!("已承诺 {} / 额度 {}", money(q.committed), money(q.cap))) {
                rect x="0" y="0" width=(GAUGE_WIDTH_PX) height=(GAUGE_HEIGHT_PX) fill="#e6e9ef" {}
                rect x="0" y="0" width=(format!("{committed:.1}")) height=(GAUGE_HEIGHT_PX) fill="#f0b429" {
                    title { "已承诺 " (money(q.committed)) }
                }
                rect x="0" y="5" width=(format!("{paid:.1}")) height=(GAUGE_HEIGHT_PX - 10.0) fill="#2f855a" {
                    title { "已支付（扣除追回） " (money(q.paid - q.recovered)) }
                }
            }
            dl.figures {
                dt { "额度" } dd data-field="cap" { (money(q.cap)) }
                dt { "已承诺" } dd data-field="committed" { (money(q.committed)) }
                dt { "已支付" } dd data-field="paid" { (money(q.paid)) }
                dt { "已追回" } dd data-field="recovered" { (money(q.recovered)) }
                dt { "剩余" } dd data-field="remaining" { (money(q.remaining())) }
            }
        }
    }
}

/// Net spending (paid − failed − recovered) by month, as bars, with a table of the figures.
pub fn months(rows: &[MonthFigures]) -> Markup {
    let top = rows.iter().map(|m| m.net()).max().unwrap_or_default().max(Decimal::ONE);
    let total_width = rows.len() as f64 * (BAR_WIDTH_PX + BAR_GAP_PX) + BAR_GAP_PX;
    html! {
        @if rows.is_empty() {
            p.muted { "尚无支付记录。" }
        } @else {
            svg.bars width=(format!("{total_width:.0}")) height=(BARS_HEIGHT_PX + 18.0)
                viewBox=(format!("0 0 {total_width:.0} {}", BARS_HEIGHT_PX + 18.0)) role="img" aria-label="按月净支出" {
                @for (i, m) in rows.iter().enumerate() {
                    @let h = (m.net().max(Decimal::ZERO) / top).to_f64().unwrap_or(0.0) * BARS_HEIGHT_PX;
                    @let x = BAR_GAP_PX + i as f64 * (BAR_WIDTH_PX + BAR_GAP_PX);
                    rect x=(format!("{x:.1}")) y=(format!("{:.1}", BARS_HEIGHT_PX - h)) width=(BAR_WIDTH_PX)
                        height=(format!("{h:.1}")) fill="#3b6fb6" {
                        title { (m.month) " 净支出 " (money(m.net())) }
                    }
                    text x=(format!("{:.1}", x + BAR_WIDTH_PX / 2.0)) y=(BARS_HEIGHT_PX + 14.0) font-size="9" text-anchor="middle" {
                        (m.month.get(2..).unwrap_or(&m.month))
                    }
                }
            }
            details {
                summary { "按月明细" }
                table {
                    thead { tr { th { "月份" } th.num { "笔数" } th.num { "支付金额" } th.num { "退回金额" } th.num { "追回金额" } th.num { "净支出" } } }
                    tbody {
                        @for m in rows {
                            tr data-month=(m.month) {
                                td { (m.month) } td.num { (m.payouts) } td.num { (money(m.paid)) }
                                td.num { (money(m.failed)) } td.num { (money(m.recovered)) }
                                td.num data-field="net" { (money(m.net())) }
                            }
                        }
                    }
                }
            }
        }
    }
}
