//! The HTTP API of API.md (axum). Handlers parse and authorise; the commands decide and
//! record; [`problem`] is the one place errors become responses; [`unit`] makes every POST one
//! transaction with its Idempotency-Key.

// A refusal is the cold path of a request and is turned into a response at once; boxing every
// Problem would buy nothing measurable.
#![allow(clippy::result_large_err)]

/// Begins a POST's unit of work (a request already made is found, and answered, when the
/// unit finishes: `Unit::finish`).
macro_rules! begin_unit {
    ($state:expr, $principal:expr, $command:expr) => {
        $crate::http::unit::Unit::begin(&$state, &$principal, &$command).await?
    };
}

pub mod extract;
pub mod openapi;
pub mod problem;
pub mod rate;
pub mod routes;
pub mod together;
pub mod unit;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::NaiveDate;
use sqlx::{PgConnection, PgPool};
use tracing::Instrument;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::personal::Keys;
use extract::Place;
use problem::Problem;

/// Limits a deployment may tune (flags and environment of `serve`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_bytes: usize,
    pub request_timeout: Duration,
    /// Concurrent `GET /v1/events/live` readers.
    pub live_readers: usize,
    /// Requests a second one token may send on average (0: no limit) ...
    pub token_requests_per_s: u32,
    /// ... and at once.
    pub token_request_burst: u32,
    /// How long a client may take to send a request's headers (slow-loris).
    pub header_read_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            body_bytes: 1 << 20,
            request_timeout: Duration::from_secs(30),
            live_readers: 8,
            token_requests_per_s: 50,
            token_request_burst: 100,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    /// The database's name: the key of per-database caches.
    pub database: Arc<str>,
    pub keys: Arc<Keys>,
    pub limits: Limits,
    pub live_readers: Arc<tokio::sync::Semaphore>,
    /// The checkpoint public key `/v1/audit/verify` trusts, as configured
    /// (`FUNDLEDGER_CHECKPOINT_PUBLIC_KEY`): never derived from a signing key this process
    /// holds, which whoever controls the process could use to re-sign a rewritten chain.
    pub checkpoint_public_key: Option<ed25519_dalek::VerifyingKey>,
    /// The checkpoint signing key, when this process holds one (`serve --checkpoint-every`
    /// > 0): period seals are signed with it; without it they are recorded unsigned.
    pub seal_signer: Option<Arc<ed25519_dalek::SigningKey>>,
    /// The server's copy of the token table.
    pub tokens: Arc<crate::tokens::TokenCache>,
    /// Set when the server shuts down: live streams end.
    pub shutdown: Arc<tokio::sync::watch::Sender<bool>>,
    /// The log's head, followed by one task for every live reader of this process.
    pub live_head: crate::store::LiveHead,
    pub rate: Arc<rate::RateLimiter>,
    /// Commands sharing a commit: one pool's approvals ([`crate::commands::group`]).
    pub groups: Arc<crate::commands::group::Groups>,
    /// Commands executed together: one pool's reviews, persons' submissions
    /// ([`crate::commands::together`], [`together`]).
    pub together: Arc<crate::commands::together::Together<together::Item, Response>>,
    openapi: Arc<serde_json::Value>,
    router: Arc<OnceLock<Router>>,
}

impl AppState {
    pub fn new(pool: PgPool, keys: Keys, limits: Limits) -> Self {
        let database = pool.connect_options().get_database().unwrap_or("").into();
        let live_head = crate::store::LiveHead::new(pool.clone());
        let groups = crate::commands::group::Groups::new(pool.clone());
        AppState {
            groups,
            together: crate::commands::together::Together::new(),
            pool,
            database,
            keys: Arc::new(keys),
            limits,
            live_readers: Arc::new(tokio::sync::Semaphore::new(limits.live_readers)),
            checkpoint_public_key: None,
            seal_signer: None,
            tokens: Arc::new(crate::tokens::TokenCache::default()),
            shutdown: Arc::new(tokio::sync::watch::channel(false).0),
            live_head,
            rate: Arc::new(rate::RateLimiter::new(
                limits.token_requests_per_s,
                limits.token_request_burst,
            )),
            openapi: Arc::new(serde_json::Value::Null),
            router: Arc::new(OnceLock::new()),
        }
    }

    /// The router itself, for `/v1/batch` to run each item through.
    pub(crate) fn router(&self) -> Router {
        self.router.get().expect("set when the router is built").clone()
    }
}

/// Serves the API on `listener` until `shutdown` resolves; then tells long-lived streams to end
/// (`AppState::shutdown`) and lets in-flight requests finish. Like `axum::serve`, plus
/// [`Limits::header_read_timeout`]: a client that does not finish sending its headers in time
/// is disconnected, so slow clients cannot hold connections open.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let stop = state.shutdown.clone();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(state.limits.header_read_timeout);
    let app = router(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let service = TowerToHyperService::new(app.clone());
                let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    graceful.shutdown().await;
    Ok(())
}

/// Money as the API shows it: a string with exactly two decimals.
pub fn money(d: rust_decimal::Decimal) -> String {
    format!("{d:.2}")
}

/// Today's business date in Asia/Shanghai (UTC+8 all year: China has no daylight saving).
pub fn today() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// Where the first event of a stream says it belongs.
pub(crate) async fn place_of_stream(
    conn: &mut PgConnection,
    stream: &str,
) -> Result<Option<Place>, sqlx::Error> {
    let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT metadata->>'pool', metadata->>'county' FROM events \
         WHERE stream_id = $1 ORDER BY stream_version LIMIT 1",
    )
    .bind(stream)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(pool, county)| Place { pool, county }))
}

/// Authorises `roles` on a stream's thing ([`extract::authorise`]): role first, then existence
/// and scope with one answer for "elsewhere" and "nowhere".
pub(crate) async fn authorise_stream(
    state: &AppState,
    principal: &crate::tokens::Principal,
    roles: &[crate::tokens::Role],
    stream: &str,
    what: &str,
) -> Result<Place, Problem> {
    extract::require_role(principal, roles)?;
    let mut conn = state.pool.acquire().await?;
    let place = place_of_stream(&mut conn, stream).await?;
    extract::authorise(principal, roles, place, || {
        Problem::not_found(format!("{what} does not exist"))
    })
}

/// [`authorise_stream`] for a thing found by a tag (`payout:<id>`, `objection:<id>`).
pub(crate) async fn authorise_tag(
    state: &AppState,
    principal: &crate::tokens::Principal,
    roles: &[crate::tokens::Role],
    tag: &str,
    what: &str,
) -> Result<Place, Problem> {
    extract::require_role(principal, roles)?;
    let mut conn = state.pool.acquire().await?;
    let place = place_of_tag(&mut conn, tag).await?;
    extract::authorise(principal, roles, place, || {
        Problem::not_found(format!("{what} does not exist"))
    })
}

/// Where the first event carrying a tag says it belongs.
pub(crate) async fn place_of_tag(
    conn: &mut PgConnection,
    tag: &str,
) -> Result<Option<Place>, sqlx::Error> {
    let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT e.metadata->>'pool', e.metadata->>'county' FROM event_tags t \
         JOIN events e ON e.id = t.event_id WHERE t.tag = $1 ORDER BY t.event_id LIMIT 1",
    )
    .bind(tag)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(pool, county)| Place { pool, county }))
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fundledger",
        description = "Event-sourced ledger of unemployment-insurance fund payouts. Money is a string with at most two decimals; dates are business dates (YYYY-MM-DD, Asia/Shanghai); errors are application/problem+json (RFC 9457) with a stable `code`. No string may hold the NUL character (U+0000): PostgreSQL stores none, and it is refused (422, or 400 in a path). Every POST accepts `Idempotency-Key` (1 to 200 characters): the same key and body replay the first response with `Idempotent-Replayed: true`; a different body gets 409 `idempotency_conflict`."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    // The schemas parameters refer to (path and query parameters do not register theirs).
    components(schemas(
        Problem,
        problem::FieldError,
        openapi::PolicyYear,
        openapi::MonthText,
        openapi::ApplicationStatus,
        openapi::AsOf,
        openapi::Binary,
        policy::DivisionCode
    ))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The routes and their OpenAPI document, from the same registrations.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use routes::{
        applications, batch, batches, desk, feed, ops, payouts, persons, policies, setup,
    };
    let (routes, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::openapi))
        .routes(routes!(setup::create_pool))
        .routes(routes!(setup::create_county))
        .routes(routes!(setup::lock_balance))
        .routes(routes!(setup::set_quota))
        .routes(routes!(setup::get_quota))
        .routes(routes!(setup::set_notice_period))
        .routes(routes!(applications::submit, applications::list))
        .routes(routes!(applications::get))
        .routes(routes!(applications::review))
        .routes(routes!(applications::withdraw))
        .routes(routes!(applications::confirm))
        .routes(routes!(applications::person_subsidies))
        .routes(routes!(applications::person_subsidies_moved))
        .routes(routes!(persons::erase))
        .routes(routes!(persons::personal))
        .routes(routes!(payouts::open_notice))
        .routes(routes!(payouts::get_notice))
        .routes(routes!(payouts::file_objection))
        .routes(routes!(payouts::resolve_objection))
        .routes(routes!(payouts::close_notice))
        .routes(routes!(payouts::issue_payouts))
        .routes(routes!(payouts::get_payout))
        .routes(routes!(batches::get_batch))
        .routes(routes!(batches::mark_sent))
        .routes(routes!(batches::reconcile))
        .routes(routes!(payouts::settle))
        .routes(routes!(payouts::reissue))
        .routes(routes!(payouts::record_recovery))
        .routes(routes!(feed::events))
        .routes(routes!(feed::live))
        .routes(routes!(feed::verify))
        .routes(routes!(feed::spending))
        .routes(routes!(desk::import_settlements))
        .routes(routes!(desk::seal_period))
        .routes(routes!(desk::flags))
        .routes(routes!(desk::trial_balance))
        .routes(routes!(batch::batch))
        .routes(routes!(policies::list))
        .split_for_parts();
    // After every route is in: the pass adds what the shared layers answer to each operation.
    utoipa::Modify::modify(&openapi::Contract, &mut doc);
    (routes, doc)
}

/// The OpenAPI document the server serves.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    api().1
}

pub fn router(mut state: AppState) -> Router {
    let (routes, doc) = api();
    state.openapi = Arc::new(serde_json::to_value(&doc).expect("the document serialises"));
    let limits = state.limits;
    let router = routes
        .merge(crate::web::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limits.body_bytes))
        .layer(axum::middleware::from_fn(problems_everywhere))
        .layer(axum::middleware::from_fn(no_nul_in_path))
        // Inside `observe`, so a panic's 500 carries the request id and is logged with it.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn_with_state(limits, observe))
        .with_state(state.clone());
    let _ = state.router.set(router.clone());
    router
}

/// A handler panicked: a bug of ours. The client gets a 500 problem (with the request id in
/// `x-request-id`, set by `observe`); the panic's message goes to the log only, never to the
/// client (it could hold a value from the request).
fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = %message, "a request handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "an internal error occurred and was logged under this request's id (x-request-id); if this was a write, retry it with the same Idempotency-Key to learn its outcome",
    )
    .into_response()
}

/// A NUL character (`%00`) in the path: no identifier holds one, and PostgreSQL compares no
/// text holding it (the lookup would fail as an internal error). 400 before any handler.
async fn no_nul_in_path(request: Request, next: Next) -> Response {
    if request.uri().path().to_ascii_lowercase().contains("%00") {
        return Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "the path holds a NUL character (%00), which no identifier holds",
        )
        .into_response();
    }
    next.run(request).await
}

async fn not_found() -> Problem {
    Problem::not_found("no such route; GET /openapi.json lists every route")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not accept that method; GET /openapi.json lists what each route accepts",
    )
}

/// Turns what axum's own extractors answer (plain text) into problem+json, so every error of
/// the API has the same shape.
async fn problems_everywhere(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    // The dashboard's error pages are HTML for a person, deliberately.
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if status.as_u16() < 400 || is_problem || is_page {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    Problem::new(status, code, detail).into_response()
}

/// Request id, timeout and one log line per request (route template, never the raw path: a
/// person's ID number can be in it).
async fn observe(
    axum::extract::State(limits): axum::extract::State<Limits>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 100)
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = request.method().clone();
    let span = tracing::info_span!("request", %request_id, %method, route = %route);
    let started = Instant::now();
    let response = async {
        match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
            Ok(response) => response,
            Err(_) => {
                let mut p = Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "request_timeout",
                    format!(
                        "the request took longer than {} s and was abandoned; {}",
                        limits.request_timeout.as_secs(),
                        problem::OUTCOME_UNKNOWN
                    ),
                );
                p.retry_after = Some(1);
                p.into_response()
            }
        }
    }
    .instrument(span.clone())
    .await;
    let mut response = response;
    let status = response.status().as_u16();
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, duration_ms = format!("{duration_ms:.1}"), "request"));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}
