//! `POST /v1/batch`: many commands in one request, as county systems send them. Each item is
//! an ordinary POST run through the same router (the same checks, its own Idempotency-Key, its
//! own savepoint), so one bad item does not block the others; and the items share commits
//! (`commands::group`, a group held open for every 30 items), answered when they are durable.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;
use utoipa::ToSchema;

use crate::commands::group::GROUP_MEMBERS_MAX;
use crate::http::extract::{Command, IDEMPOTENCY_KEY};
use crate::http::problem::Problem;
use crate::http::unit::{InGroup, REPLAYED};
use crate::http::AppState;
use crate::tokens::Principal;

/// Items per batch.
pub const BATCH_MAX: usize = 100;
/// Largest response body an item may produce (a listing is not a command).
const ITEM_RESPONSE_MAX: usize = 1 << 20;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// 1 to 100 (`BATCH_MAX`) commands.
    #[schema(min_items = 1, max_items = 100)]
    pub requests: Vec<BatchItem>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// Only `POST`: a batch carries commands.
    #[serde(default = "post")]
    pub method: String,
    /// e.g. `/v1/applications`.
    pub path: String,
    /// The item's own key; without one, `<the batch's key>/<index>` when the batch has a key.
    pub idempotency_key: Option<String>,
    /// The command's body: a JSON object, as every command's is.
    #[serde(default)]
    pub body: serde_json::Map<String, Value>,
}

fn post() -> String {
    "POST".to_string()
}

#[utoipa::path(post, path = "/v1/batch", tag = "bulk", request_body = Batch,
    responses((status = 200, description = "`{results:[{status, body, idempotent_replayed}]}`, one per item, in order; an item's refusal is its result, not the batch's")))]
pub async fn batch(
    State(state): State<AppState>,
    principal: Principal,
    request_headers: axum::http::HeaderMap,
    command: Command<Batch>,
) -> Result<Json<Value>, Problem> {
    if command.body.requests.is_empty() || command.body.requests.len() > BATCH_MAX {
        return Err(Problem::invalid("requests", format!("give 1 to {BATCH_MAX} requests")));
    }
    // In a task of its own: a client hanging up must not cancel an item half way (which would
    // roll back the items before it).
    let work = async move {
        let batch = uuid::Uuid::new_v4();
        let items = &command.body.requests;
        let mut results = Vec::with_capacity(items.len());
        // A group per GROUP_MEMBERS_MAX items (see there why not one for all).
        for (part, chunk) in items.chunks(GROUP_MEMBERS_MAX).enumerate() {
            let group = format!("batch:{batch}:{part}");
            let hold = state.groups.hold(&group);
            let first = part * GROUP_MEMBERS_MAX;
            let run =
                run_items(&state, &principal, &request_headers, &command, first, chunk, &group);
            let mut answers = run.await?;
            if let Err(e) = hold.release().await {
                // Not recorded, or not known to be: each item of this part says so.
                let p = crate::http::unit::group_problem(e);
                let answer = json!({ "status": p.status, "body": p, "idempotent_replayed": false });
                answers.iter_mut().for_each(|a| *a = answer.clone());
            }
            results.extend(answers);
        }
        Ok(Json(json!({ "results": results })))
    };
    tokio::spawn(work).await.map_err(|e| Problem::internal(&e))?
}

/// Runs `items` (the batch's from index `first`) one after another in the held group `group`.
async fn run_items(
    state: &AppState,
    principal: &Principal,
    request_headers: &axum::http::HeaderMap,
    command: &Command<Batch>,
    first: usize,
    items: &[BatchItem],
    group: &str,
) -> Result<Vec<Value>, Problem> {
    let router = state.router();
    let mut results = Vec::with_capacity(items.len());
    for (i, item) in (first..).zip(items) {
        let refusal = if item.method != "POST" {
            Some(Problem::invalid(
                &format!("requests[{i}].method"),
                "only POST commands can be batched",
            ))
        } else if !item.path.starts_with("/v1/") || item.path.starts_with("/v1/batch") {
            Some(Problem::invalid(
                &format!("requests[{i}].path"),
                "must be a /v1/ command path (not /v1/batch)",
            ))
        } else {
            None
        };
        if let Some(p) = refusal {
            results.push(json!({ "status": p.status, "body": p, "idempotent_replayed": false }));
            continue;
        }
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(&item.path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(auth) = request_headers.get(header::AUTHORIZATION) {
            request = request.header(header::AUTHORIZATION, auth.clone());
        }
        let key = item
            .idempotency_key
            .clone()
            .or_else(|| command.idempotency_key.as_ref().map(|k| format!("{k}/{i}")));
        if let Some(key) = key {
            match HeaderValue::from_str(&key) {
                Ok(v) => request = request.header(IDEMPOTENCY_KEY, v),
                Err(_) => {
                    let p = Problem::invalid(
                        &format!("requests[{i}].idempotency_key"),
                        "must be visible ASCII",
                    );
                    results.push(
                        json!({ "status": p.status, "body": p, "idempotent_replayed": false }),
                    );
                    continue;
                }
            }
        }
        let mut request = request
            .body(Body::from(serde_json::to_vec(&item.body).expect("values serialise")))
            .map_err(|e| Problem::invalid(&format!("requests[{i}].path"), e.to_string()))?;
        request.extensions_mut().insert(principal.clone());
        request.extensions_mut().insert(InGroup(group.to_string()));
        let response: Response = router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let replayed = response.headers().contains_key(REPLAYED);
        let bytes = axum::body::to_bytes(response.into_body(), ITEM_RESPONSE_MAX)
            .await
            .map_err(|e| Problem::internal(&e))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        results.push(
            json!({ "status": status.as_u16(), "body": body, "idempotent_replayed": replayed }),
        );
    }
    Ok(results)
}
