//! `GET /v1/policies`: the published policies, which are in force, and the interpretations
//! each makes of its notice, so that a bureau can see them (and publish a policy that reads a
//! sentence otherwise).

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;

use crate::http::extract::Query;
use crate::http::problem::Problem;
use crate::http::{today, AppState};
use crate::publishing::policies_cached;
use crate::tokens::Principal;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PoliciesQuery {
    /// The day `in_force` is judged on (default: today in Asia/Shanghai).
    pub on: Option<NaiveDate>,
    /// Only the policies in force on that day somewhere (default: false, every published one).
    pub in_force: Option<bool>,
}

#[utoipa::path(get, path = "/v1/policies", tag = "policies", params(PoliciesQuery),
    responses((status = 200, description = "`{on, policies:[{id, document, item, issuer, program, region, effective_from, effective_until, extensions, in_force, interpretations:[{setting, sentence, reading}]}]}` in publishing order")))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<PoliciesQuery>,
) -> Result<Json<Value>, Problem> {
    // Policies are public law: any authenticated role may read them.
    let _ = &principal;
    let on = q.on.unwrap_or_else(today);
    let mut conn = state.pool.acquire().await?;
    let policies = policies_cached(&mut conn, &state.database).await?;
    let listed: Vec<Value> = policies
        .iter()
        .map(|p| (p, p.periods().any(|period| period.covers(on))))
        .filter(|(_, in_force)| *in_force || !q.in_force.unwrap_or(false))
        .map(|(p, in_force)| {
            json!({
                "id": p.id.to_string(),
                "document": p.document,
                "item": p.item,
                "issuer": p.issuer,
                "program": p.program().as_str(),
                "region": p.region.as_str(),
                "effective_from": p.effective_from,
                "effective_until": p.effective_until,
                "extensions": p.extensions,
                "related_documents": p.related_documents,
                "in_force": in_force,
                "interpretations": p.interpretations,
            })
        })
        .collect();
    Ok(Json(json!({ "on": on, "policies": listed })))
}
