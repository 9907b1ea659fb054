//! The log in global order, as pages and live (server-sent events), and the spending report.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;

use crate::http::extract::{policy_year, require, Place, Query};
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::store::{read_after, read_all, sequence, Position, RecordedEvent};
use crate::tokens::{Principal, Role};

/// Page size bounds of `GET /v1/events`.
pub const FEED_LIMIT_MAX: i64 = 1000;
const FEED_LIMIT_DEFAULT: i64 = 100;

/// An event's data without its sealed (encrypted) personal fields and without the person key
/// (the keyed hash that links one person's applications across counties): for views that
/// show an application to county staff, where the masked forms suffice. Only the auditors'
/// and admins' feed (`/v1/events`) carries the key.
pub(crate) fn public_data(data: &Value) -> Value {
    public_data_in(data, "")
}

fn public_data_in(data: &Value, parent: &str) -> Value {
    match data {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.ends_with("_sealed"))
                .filter(|(k, _)| !(parent == "person" && k.as_str() == "key"))
                .filter(|(k, _)| k.as_str() != "party")
                .map(|(k, v)| (k.clone(), public_data_in(v, k)))
                .collect(),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| public_data_in(v, parent)).collect())
        }
        other => other.clone(),
    }
}

fn event_json(e: &RecordedEvent, hash: Option<&Vec<u8>>) -> Value {
    json!({
        "position": e.position.map(|p| p.0),
        "stream": e.stream_id,
        "version": e.stream_version,
        "type": e.event_type,
        "schema_version": e.schema_version,
        "data": e.data,
        "metadata": e.metadata,
        "tags": e.tags,
        "business_date": e.business_date,
        "recorded_at": e.recorded_at,
        // The audit chain's hash at this position (hex SHA-256; ARCHITECTURE.md).
        "hash": hash.map(hex::encode),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// The last position already read (0 for the beginning).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

impl FeedQuery {
    /// `after` and `limit` (defaults filled in), or the 422 naming the one out of bounds.
    fn checked(&self) -> Result<(i64, i64), Problem> {
        let after = self.after.unwrap_or(0);
        if after < 0 {
            return Err(Problem::invalid("after", "must be 0 or a position"));
        }
        let limit = self.limit.unwrap_or(FEED_LIMIT_DEFAULT);
        if !(1..=FEED_LIMIT_MAX).contains(&limit) {
            return Err(Problem::invalid(
                "limit",
                format!("must be between 1 and {FEED_LIMIT_MAX}"),
            ));
        }
        Ok((after, limit))
    }
}

#[utoipa::path(get, path = "/v1/events", tag = "audit", params(FeedQuery),
    responses((status = 200, description = "`{events:[{position,stream,version,type,data,metadata,recorded_at,hash}], next_after}` in global order; never skips a committed event")))]
pub async fn events(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<FeedQuery>,
) -> Result<Json<Value>, Problem> {
    require(&principal, &[Role::Auditor, Role::Admin], &Place::default())?;
    let (after, limit) = q.checked()?;
    let mut conn = state.pool.acquire().await?;
    // Positions are handed out by the sequencer; running it here means a reader never waits for
    // the background one to see what has committed.
    sequence(&mut conn).await?;
    let page = read_all(&mut conn, Position(after), limit).await?;
    let next_after = page.last().and_then(|e| e.position).map_or(after, |p| p.0);
    let hashes: std::collections::HashMap<i64, Vec<u8>> = sqlx::query_as::<_, (i64, Vec<u8>)>(
        "SELECT position, hash FROM log WHERE position > $1 AND position <= $2 AND hash IS NOT NULL",
    )
    .bind(after)
    .bind(next_after)
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    Ok(Json(json!({
        "events": page
            .iter()
            .map(|e| event_json(e, e.position.and_then(|p| hashes.get(&p.0))))
            .collect::<Vec<_>>(),
        "next_after": next_after,
    })))
}

#[utoipa::path(get, path = "/v1/events/live", tag = "audit",
    params(FeedQuery, ("Last-Event-ID" = Option<i64>, Header, minimum = 0, description = "Resume after this position (wins over `after`)")),
    responses((status = 200, content_type = "text/event-stream", body = String, description = "One event per log entry, `id` = position, data = the event as `GET /v1/events` shows it; resumes after `Last-Event-ID` (or `after`)"),
              (status = 503, description = "too_many_live_readers")))]
pub async fn live(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    Query(q): Query<FeedQuery>,
) -> Result<Response, Problem> {
    require(&principal, &[Role::Auditor, Role::Admin], &Place::default())?;
    let resume = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|p| *p >= 0)
                .ok_or_else(|| Problem::invalid("Last-Event-ID", "must be a log position"))
        })
        .transpose()?;
    // Bounds as for a page: a limit out of them is refused, not clamped.
    let (after, page_limit) = q.checked()?;
    let after = resume.unwrap_or(after);
    // Each live reader holds a listening connection: bound them, so auditors cannot starve
    // the county offices of database connections.
    let permit = state
        .live_readers
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            let mut p = Problem::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "too_many_live_readers",
                "the live feed has as many readers as it serves; page with GET /v1/events or retry later",
            );
            p.retry_after = Some(30);
            p
        })?;
    // Readers hold no connection while they wait: the process's one follower of the head
    // (`LiveHead`) wakes them, and each reads its next page on a pooled connection it
    // releases at once. Every second a reader checks that its token still stands; the stream
    // ends when the token is revoked or the server shuts down.
    let follower = LiveReader {
        state: state.clone(),
        token: principal.token_id,
        head: state.live_head.watch(),
        shutdown: state.shutdown.subscribe(),
        checkpoint: Position(after),
        page_limit,
        checked_at: tokio::time::Instant::now(),
        _permit: permit,
    };
    let events = stream::unfold(follower, |mut reader| async move {
        reader.next_page().await.map(|page| (page, reader))
    })
    .flat_map(|page: Vec<RecordedEvent>| {
        stream::iter(page.into_iter().map(|e| {
            let event = Event::default()
                .id(e.position.map_or(0, |p| p.0).to_string())
                .event(e.event_type.clone())
                .json_data(event_json(&e, None))
                .expect("events serialise");
            Ok::<_, Infallible>(event)
        }))
    });
    Ok(sse(events).into_response())
}

/// How often a live reader checks that its token still stands.
const LIVE_TOKEN_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// One `GET /v1/events/live` reader.
struct LiveReader {
    state: AppState,
    token: uuid::Uuid,
    head: tokio::sync::watch::Receiver<i64>,
    shutdown: tokio::sync::watch::Receiver<bool>,
    checkpoint: Position,
    page_limit: i64,
    checked_at: tokio::time::Instant,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl LiveReader {
    /// The next page of events after the checkpoint, waiting for one to commit; `None` ends
    /// the stream (shutdown, the token revoked, the database gone).
    async fn next_page(&mut self) -> Option<Vec<RecordedEvent>> {
        loop {
            if *self.shutdown.borrow() {
                return None;
            }
            if self.checked_at.elapsed() >= LIVE_TOKEN_CHECK_INTERVAL {
                self.checked_at = tokio::time::Instant::now();
                match self.state.tokens.still_valid(&self.state.pool, self.token).await {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(e) => {
                        tracing::warn!(error = %e, "live feed stopped: cannot check its token");
                        return None;
                    }
                }
            }
            let head = *self.head.borrow_and_update();
            if head > self.checkpoint.0 || self.checkpoint.0 == 0 {
                match read_after(&self.state.pool, self.checkpoint, self.page_limit).await {
                    Ok(page) if !page.is_empty() => {
                        if let Some(last) = page.last().and_then(|e| e.position) {
                            self.checkpoint = last;
                        }
                        return Some(page);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "live feed stopped");
                        return None;
                    }
                }
            }
            let until_check = LIVE_TOKEN_CHECK_INTERVAL.saturating_sub(self.checked_at.elapsed());
            tokio::select! {
                changed = self.head.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                _ = self.shutdown.changed() => {}
                () = tokio::time::sleep(until_check) => {}
            }
        }
    }
}

fn sse(
    events: impl Stream<Item = Result<Event, Infallible>> + Send + 'static,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
    Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", params(VerifyQuery),
    responses((status = 200, description = "`{ok, signatures_checked, checkpoints_verified, events_checked, head_position, head_hash}`; `ok: false` names the first bad position in `first_bad`; `signatures_checked: false` when the server was given no checkpoint public key")))]
pub async fn verify(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<VerifyQuery>,
) -> Result<Json<crate::audit::Verification>, Problem> {
    require(&principal, &[Role::Auditor], &Place::default())?;
    let mut conn = state.pool.acquire().await?;
    let trusted = state.checkpoint_public_key.as_ref();
    // Without a configured public key the chain is verified alone, and the answer says
    // `signatures_checked: false`.
    if q.from.is_none() && q.limit.is_none() {
        return Ok(Json(crate::audit::verify(&mut conn, trusted, |_| {}).await?));
    }
    // A window: its cost is bounded by `limit`, whatever the length of the log.
    let from = q.from.unwrap_or(1);
    if from < 1 {
        return Err(Problem::invalid("from", "a position of 1 or more"));
    }
    let limit = q.limit.unwrap_or(crate::audit::WINDOW_LIMIT_MAX);
    if !(1..=crate::audit::WINDOW_LIMIT_MAX).contains(&limit) {
        return Err(Problem::invalid(
            "limit",
            format!("from 1 to {} events", crate::audit::WINDOW_LIMIT_MAX),
        ));
    }
    Ok(Json(crate::audit::verify_window(&mut conn, trusted, from, limit).await?))
}

/// `GET /v1/audit/verify?from=&limit=`: verify only a window of the chain (both optional; with
/// neither, the whole chain).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// First position of the window (default 1).
    #[param(minimum = 1)]
    pub from: Option<i64>,
    /// Positions in the window (default and most: 1,000,000).
    #[param(minimum = 1, maximum = 1000000)]
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SpendingQuery {
    pub pool: policy::DivisionCode,
    #[param(value_type = crate::http::openapi::PolicyYear)]
    pub year: i32,
    /// `json` (default), `csv` (UTF-8 with a byte-order mark, for spreadsheet programs) or
    /// `xlsx`. CSV and XLSX carry Chinese headers, county names and a totals row.
    #[param(inline)]
    pub format: Option<ReportFormat>,
}

/// What `GET /v1/reports/spending` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    Json,
    Csv,
    Xlsx,
}

#[utoipa::path(get, path = "/v1/reports/spending", tag = "reports", params(SpendingQuery),
    responses((status = 200, description = "Rows by month, county, program and funding source, totals and the year's quota (JSON; CSV with `format=csv`; XLSX with `format=xlsx`)",
        content((Object = "application/json"), (String = "text/csv"), (crate::http::openapi::Binary = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")))))]
pub async fn spending(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<SpendingQuery>,
) -> Result<Response, Problem> {
    let pool = q.pool.to_string();
    require(&principal, &[Role::Admin, Role::Auditor, Role::CityFinance], &Place::pool(&pool))?;
    policy_year("year", q.year)?;
    let format = match q.format.unwrap_or(ReportFormat::Json) {
        ReportFormat::Json => "json",
        ReportFormat::Csv => "csv",
        ReportFormat::Xlsx => "xlsx",
    };
    let mut conn = state.pool.acquire().await?;
    let rows: Vec<(Value,)> = sqlx::query_as(
        "SELECT to_jsonb(s) FROM spending s WHERE pool = $1 AND month LIKE $2 || '-%' \
         ORDER BY month, county, program, funding",
    )
    .bind(&pool)
    .bind(format!("{:04}", q.year))
    .fetch_all(&mut *conn)
    .await?;
    let rows: Vec<Value> = rows.into_iter().map(|(r,)| report_row(r)).collect();
    let quota = crate::read_models::quota(&mut conn, &pool, q.year).await?;
    let codes = rows.iter().filter_map(|r| r["county"].as_str().map(str::to_string)).collect();
    let counties = crate::reports::county_names(&mut conn, &codes).await?;
    drop(conn);
    let totals = crate::reports::totals(&rows);
    let quota_json = quota.as_ref().map(|u| {
        json!({"cap": money(u.cap), "committed": money(u.committed), "paid": money(u.paid),
               "recovered": money(u.recovered),
               "remaining": money(u.cap - u.committed - u.paid + u.recovered)})
    });
    if format == "json" {
        return Ok(Json(json!({
            "pool": pool, "year": q.year, "rows": rows, "totals": totals, "quota": quota_json,
            "county_names": counties,
        }))
        .into_response());
    }
    let table = crate::reports::table(&rows, &totals, &counties);
    let (bytes, content_type, extension) = if format == "csv" {
        let mut out = String::from("\u{feff}");
        for line in &table {
            let cells: Vec<String> = line.iter().map(|c| csv_cell(&c.text())).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        (out.into_bytes(), "text/csv; charset=utf-8", "csv")
    } else {
        let bytes = crate::reports::xlsx(&table, quota.as_ref(), &pool, q.year)
            .map_err(|e| Problem::internal(&e))?;
        (bytes, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx")
    };
    let mut response = bytes.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let disposition =
        format!("attachment; filename=\"spending-{}-{}.{extension}\"", q.pool, q.year);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

fn money(d: rust_decimal::Decimal) -> String {
    format!("{d:.2}")
}

/// A stored spending row as the report shows it: money as strings with two decimals, and the
/// net (paid − failed − recovered).
fn report_row(stored: Value) -> Value {
    let money = |k: &str| -> rust_decimal::Decimal {
        match &stored[k] {
            Value::Number(n) => n.to_string().parse().unwrap_or_default(),
            Value::String(s) => s.parse().unwrap_or_default(),
            _ => rust_decimal::Decimal::ZERO,
        }
    };
    let fmt = |d: rust_decimal::Decimal| format!("{:.2}", d);
    let (paid, failed, recovered) = (money("paid"), money("failed"), money("recovered"));
    json!({
        "month": stored["month"], "county": stored["county"], "program": stored["program"],
        "funding": stored["funding"], "payouts": stored["payouts"],
        "paid": fmt(paid), "failed": fmt(failed), "recovered": fmt(recovered),
        "net": fmt(paid - failed - recovered),
    })
}

/// A CSV cell, quoted when it must be (RFC 4180), and defused against formula injection in
/// spreadsheet programs.
pub(crate) fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<rust_decimal::Decimal>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}
