//! The dashboard (看板): server-rendered pages for people, from the same binary and origin as
//! the API (API.md, "The dashboard"). No JavaScript, no CDN, no files at run time: the pages
//! are `maud` templates compiled in (`pages.rs`, `svg.rs`), their CSS inline.
//!
//! Signing in puts the token in an HttpOnly, SameSite=Strict cookie; every page authenticates
//! it with the `Principal` extractor the API uses (which accepts the cookie for GET only) and
//! checks role and scope exactly as the JSON route showing the same data does. Handlers only
//! authorise and read (through `read_models`); rendering is in `pages.rs`.

mod pages;
mod svg;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::http::extract::{authenticate, require, require_role, Place, SESSION_COOKIE};
use crate::http::problem::Problem;
use crate::http::AppState;
use crate::tokens::{Principal, Role, Scope};

/// The roles that read quotas and spending (`GET /v1/pools/{pool}/quotas/{year}`,
/// `GET /v1/reports/spending`).
const FINANCE_READERS: [Role; 3] = [Role::Admin, Role::Auditor, Role::CityFinance];
/// Applications and notices shown on a page, newest first.
const LATEST_MAX: i64 = 50;
/// The audit page checks the chain itself up to this many events; beyond, it says to run
/// `fundledger verify` (a page must not do work that grows with the log without bound).
pub const AUDIT_PAGE_VERIFY_EVENTS_MAX: i64 = 200_000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/signin", post(sign_in))
        .route("/signout", post(sign_out))
        .route("/pools/{pool}", get(pool_page))
        .route("/pools/{pool}/trial-balance/{month}", get(trial_balance_page))
        .route("/applications/{id}", get(application_page))
        .route("/notices/{id}", get(notice_page))
        .route("/audit", get(audit_page))
}

/// A page, or the problem a person reads instead: a 401 shows the sign-in page.
type Page = Result<Response, Problem>;

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    // Nothing of a page may be cached by a shared machine's browser or framed by another site.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"),
    );
    response
}

/// A problem as a page: the sign-in page for 401, else the status and its sentence.
fn problem_page(p: Problem) -> Response {
    let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == StatusCode::UNAUTHORIZED {
        return html(status, pages::sign_in(None));
    }
    html(status, pages::error(&p))
}

fn respond(page: Page) -> Response {
    page.unwrap_or_else(problem_page)
}

async fn home(State(state): State<AppState>, principal: Result<Principal, Problem>) -> Response {
    let principal = match principal {
        Ok(p) => p,
        Err(p) if p.status == 401 => return html(StatusCode::OK, pages::sign_in(None)),
        Err(p) => return problem_page(p),
    };
    respond(home_page(&state, &principal).await)
}

async fn home_page(state: &AppState, p: &Principal) -> Page {
    let mut conn = state.pool.acquire().await?;
    let divisions = crate::read_models::divisions(&mut conn).await?;
    let mut pools = Vec::new();
    if FINANCE_READERS.iter().any(|r| p.has(*r)) {
        for d in divisions.iter().filter(|d| d.pool.is_none()) {
            let visible = match &p.scope {
                Scope::All => true,
                Scope::Pool(own) => *own == d.code,
                Scope::County(_) => false,
            };
            if visible {
                pools.push(pool_figures(&mut conn, d).await?);
            }
        }
    }
    let county = match &p.scope {
        Scope::County(c) => {
            let apps =
                crate::read_models::latest_applications(&mut conn, None, Some(c), LATEST_MAX)
                    .await?;
            let notices =
                crate::read_models::latest_notices(&mut conn, None, Some(c), LATEST_MAX).await?;
            Some(pages::CountyDesk { code: c.clone(), applications: apps, notices })
        }
        _ => None,
    };
    Ok(html(StatusCode::OK, pages::home(p, &divisions, &pools, county.as_ref())))
}

async fn pool_figures(
    conn: &mut sqlx::PgConnection,
    d: &crate::read_models::Division,
) -> Result<pages::PoolFigures, Problem> {
    let quotas: Vec<_> = crate::read_models::all_quotas(conn)
        .await?
        .into_iter()
        .filter(|q| q.pool == d.code)
        .collect();
    let months = crate::read_models::spending_by_month(conn, Some(&d.code), None).await?;
    Ok(pages::PoolFigures { pool: d.clone(), quotas, months })
}

async fn pool_page(
    State(state): State<AppState>,
    Path(pool): Path<String>,
    principal: Result<Principal, Problem>,
) -> Response {
    respond(
        async {
            let p = principal?;
            require(&p, &FINANCE_READERS, &Place::pool(&pool))?;
            let mut conn = state.pool.acquire().await?;
            let divisions = crate::read_models::divisions(&mut conn).await?;
            let d = divisions
                .iter()
                .find(|d| d.code == pool && d.pool.is_none())
                .ok_or_else(|| Problem::not_found(format!("pool {pool} does not exist")))?;
            let figures = pool_figures(&mut conn, d).await?;
            let apps =
                crate::read_models::latest_applications(&mut conn, Some(&pool), None, LATEST_MAX)
                    .await?;
            let notices =
                crate::read_models::latest_notices(&mut conn, Some(&pool), None, LATEST_MAX)
                    .await?;
            Ok(html(StatusCode::OK, pages::pool(&p, &divisions, &figures, &apps, &notices)))
        }
        .await,
    )
}

/// The roles of `GET /v1/reports/trial-balance`.
const TRIAL_BALANCE_READERS: [Role; 2] = [Role::CityFinance, Role::Auditor];

async fn trial_balance_page(
    State(state): State<AppState>,
    Path((pool, month)): Path<(String, String)>,
    principal: Result<Principal, Problem>,
) -> Response {
    respond(
        async {
            let p = principal?;
            require(&p, &TRIAL_BALANCE_READERS, &Place::pool(&pool))?;
            let month = crate::commands::periods::Month::parse(&month)
                .ok_or_else(|| Problem::invalid("month", "a month is YYYY-MM, e.g. 2024-11"))?
                .to_string();
            let mut conn = state.pool.acquire().await?;
            let divisions = crate::read_models::divisions(&mut conn).await?;
            let d = divisions
                .iter()
                .find(|d| d.code == pool && d.pool.is_none())
                .ok_or_else(|| Problem::not_found(format!("pool {pool} does not exist")))?;
            let rows = crate::read_models::entries_of_month(&mut conn, &pool, &month).await?;
            let tb =
                projections::entries::TrialBalance::of(rows.iter().map(|(a, s)| (a.as_str(), s)));
            Ok(html(StatusCode::OK, pages::trial_balance(&p, d, &month, &tb)))
        }
        .await,
    )
}

async fn application_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Result<Principal, Problem>,
) -> Response {
    use crate::http::routes::applications::READERS;
    respond(
        async {
            let p = principal?;
            let stream = crate::commands::applications::application_stream(&id);
            crate::http::authorise_stream(
                &state,
                &p,
                &READERS,
                &stream,
                &format!("application {id}"),
            )
            .await?;
            let mut conn = state.pool.acquire().await?;
            let row = crate::read_models::application(&mut conn, &id)
                .await?
                .ok_or_else(|| Problem::not_found(format!("application {id} does not exist")))?;
            let events = crate::store::read_stream(&mut conn, &stream).await?;
            let divisions = crate::read_models::divisions(&mut conn).await?;
            Ok(html(StatusCode::OK, pages::application(&p, &divisions, &row, &events)))
        }
        .await,
    )
}

async fn notice_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Result<Principal, Problem>,
) -> Response {
    use crate::http::routes::payouts::NOTICE_READERS;
    respond(
        async {
            let p = principal?;
            let stream = format!("notice-{id}");
            crate::http::authorise_stream(
                &state,
                &p,
                &NOTICE_READERS,
                &stream,
                &format!("notice {id}"),
            )
            .await?;
            let mut conn = state.pool.acquire().await?;
            let (notice, lines, _objections) = crate::read_models::notice(&mut conn, &id)
                .await?
                .ok_or_else(|| Problem::not_found(format!("notice {id} does not exist")))?;
            let divisions = crate::read_models::divisions(&mut conn).await?;
            Ok(html(StatusCode::OK, pages::notice(&p, &divisions, &notice, &lines)))
        }
        .await,
    )
}

async fn audit_page(
    State(state): State<AppState>,
    principal: Result<Principal, Problem>,
) -> Response {
    respond(
        async {
            let p = principal?;
            // As `GET /v1/audit/verify`.
            require_role(&p, &[Role::Auditor])?;
            let mut conn = state.pool.acquire().await?;
            // Reads what has a position, as `GET /v1/audit/verify` does (`serve` sequences in the
            // background).
            let head: Option<i64> =
                sqlx::query_scalar("SELECT max(position) FROM log").fetch_one(&mut *conn).await?;
            let verification = if head.unwrap_or(0) <= AUDIT_PAGE_VERIFY_EVENTS_MAX {
                Some(
                    crate::audit::verify(&mut conn, state.checkpoint_public_key.as_ref(), |_| {})
                        .await?,
                )
            } else {
                None
            };
            let checkpoint = crate::read_models::last_checkpoint(&mut conn).await?;
            Ok(html(
                StatusCode::OK,
                pages::audit(&p, head.unwrap_or(0), verification.as_ref(), checkpoint.as_ref()),
            ))
        }
        .await,
    )
}

/// `POST /signin` with the form's `token`: the cookie on success (303 to `/`), the sign-in
/// page again with a sentence otherwise.
async fn sign_in(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&headers) {
        return problem_page(Problem::forbidden("sign in from this server's own sign-in page"));
    }
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    // A cookie value may not hold these; no token does either.
    let plausible = !token.is_empty()
        && token.len() <= 200
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let principal =
        if plausible { authenticate(&state, &token).await } else { Err(Problem::unauthorized()) };
    match principal {
        Ok(_) => {
            let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
            redirect_with_cookie(&cookie)
        }
        Err(p) if p.status == 401 => {
            html(StatusCode::UNAUTHORIZED, pages::sign_in(Some("令牌无效或已撤销，请核对后重试。")))
        }
        Err(p) => problem_page(p),
    }
}

async fn sign_out(headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return problem_page(Problem::forbidden("sign out from this server's own pages"));
    }
    redirect_with_cookie(&format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
}

fn redirect_with_cookie(cookie: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("/"));
    if let Ok(v) = HeaderValue::from_str(cookie) {
        headers.insert(header::SET_COOKIE, v);
    }
    response
}

/// A form posted from another site is refused: browsers send `Origin` with a POST, and it
/// must name the host the form was posted to. (No `Origin`: not a browser's cross-site form.)
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.split_once("://").is_some_and(|(_, rest)| rest == host)
}
