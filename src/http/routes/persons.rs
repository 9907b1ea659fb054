//! A person's personal data: the opened values of an application (admins), and erasure.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::commands::applications::application_stream;
use crate::commands::persons;
use crate::erasure::{personal_values, persons_of, Opener};
use crate::http::extract::{require, Command, Place};
use crate::http::problem::Problem;
use crate::http::{authorise_stream, today, AppState};
use crate::personal::{PersonKey, ERASED};
use crate::store::read_stream;
use crate::tokens::{Principal, Role};
use projections::applications::Applications;

/// `POST /v1/persons/erase`: the person by ID number or by person key (one of the two).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseBody {
    #[schema(value_type = Option<policy::IdNumber>, example = "370811199001011236")]
    pub id_number: Option<String>,
    /// The person key (64 hex characters) as the auditors' feed shows it.
    pub person_key: Option<String>,
}

#[utoipa::path(post, path = "/v1/persons/erase", tag = "persons", request_body = EraseBody,
    responses((status = 200, description = "Erased: `{person_key, erased_on, data_key_generation, legacy_values, applications}`; the person's ID number, name, certificate numbers and accounts no longer open anywhere, every hash and amount stays"),
              (status = 404, body = Problem, description = "not_found: nobody with this ID number or person key is recorded"),
              (status = 409, body = Problem, description = "already_erased, applications_open")))]
pub async fn erase(
    State(state): State<AppState>,
    principal: Principal,
    command: Command<EraseBody>,
) -> Result<Response, Problem> {
    require(&principal, &[Role::Admin], &Place::default())?;
    let person = match (&command.body.id_number, &command.body.person_key) {
        (Some(id), None) => {
            let id = policy::IdNumber::parse(id)
                .map_err(|e| Problem::invalid("id_number", e.to_string()))?;
            PersonKey::derive(&state.keys, &id)
        }
        (None, Some(key)) => PersonKey::parse(key).ok_or_else(|| {
            Problem::invalid("person_key", "a person key is 64 lowercase hexadecimal characters")
        })?,
        _ => {
            return Err(Problem::invalid(
                "id_number",
                "give the person's id_number or their person_key (one of the two)",
            ))
        }
    };
    let mut unit = begin_unit!(state, principal, command);
    let outcome = persons::erase(unit.db(), &person, &principal.label, today()).await;
    Ok(unit.finish(StatusCode::OK, outcome).await)
}

#[utoipa::path(get, path = "/v1/applications/{id}/personal", tag = "persons",
    params(("id" = String, Path, description = "application id")),
    responses((status = 200, description = "The application's personal values opened (admins only): `{application, values: [{field, value, erased, payout?, trainee?}]}`; an erased person's values are `已删除` with `erased: true`"),
              (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn personal(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
) -> Result<Json<Value>, Problem> {
    let stream = application_stream(&id);
    authorise_stream(&state, &principal, &[Role::Admin], &stream, &format!("application {id}"))
        .await?;
    let mut conn = state.pool.acquire().await?;
    let events = read_stream(&mut conn, &stream).await?;
    let mut apps = Applications::default();
    for e in &events {
        apps.apply(&e.event_type, &e.data).map_err(|e| Problem::internal(&e))?;
    }
    let values = personal_values(&events, &apps);
    let opener = Opener::load(&mut conn, &state.keys, &persons_of(&values)).await?;
    let mut shown = Vec::with_capacity(values.len());
    for v in &values {
        let clear = opener.open(v).map_err(|e| Problem::internal(&e))?;
        let mut item = json!({
            "field": v.field.name(),
            "erased": clear.is_none(),
            "value": clear.as_deref().unwrap_or(ERASED),
        });
        if let Some(payout) = &v.payout {
            item["payout"] = json!(payout);
        }
        if let Some(trainee) = v.trainee {
            item["trainee"] = json!(trainee);
        }
        shown.push(item);
    }
    // Who opened whose values, in the service's log (never the values themselves).
    tracing::info!(
        application = %id,
        token_id = %principal.token_id,
        person = %principal.person,
        opened = values.len(),
        "personal values opened"
    );
    Ok(Json(json!({ "application": id, "values": shown })))
}
