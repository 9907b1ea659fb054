//! Applications: submit, review, withdraw, read one, list a county's, a person's subsidies.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::openapi::schema::{Discriminator, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::commands::applications::{
    self as commands, application_stream, PersonApplication, Review, Submitted,
};
use crate::commands::Issuer;
use crate::http::extract::{parse, policy_year, require, require_role, Command, Place, Query};
use crate::http::problem::Problem;
use crate::http::together::{self, Item};
use crate::http::unit::Unit;
use crate::http::{authorise_stream, money, today, AppState};
use crate::personal::PersonKey;
use crate::store::{read_stream, read_tagged};
use crate::tokens::{Principal, Role};
use projections::applications::{Application, Applications, Status};

/// `POST /v1/applications`: a tagged union on `program`, one body per program. Each body's
/// schema is the policy crate's type that parses it (with its identifiers' patterns), plus
/// `program`; see [`programs`].
#[derive(Debug)]
pub struct NewApplication;

/// One program's body in the document.
struct ProgramBody {
    program: &'static str,
    component: String,
    schema: RefOr<Schema>,
    /// The schemas it refers to.
    nested: Vec<(String, RefOr<Schema>)>,
}

/// The body `T` parses, with `"program": <program>` added (`submit` takes `program` out
/// before parsing the rest with `T`, which refuses unknown fields).
fn program_body<T: ToSchema>(program: &'static str) -> ProgramBody {
    let mut schema = T::schema();
    if let RefOr::T(Schema::Object(object)) = &mut schema {
        let tag = ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([program]))
            .description(Some("The program; selects this body"));
        object.properties.insert("program".to_string(), tag.into());
        object.required.insert(0, "program".to_string());
    }
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    ProgramBody { program, component: T::name().into_owned(), schema, nested }
}

/// The programs `submit` accepts, by the name in `program` and the type that parses them.
fn programs() -> [ProgramBody; 5] {
    use policy::{job_stabilization, on_the_job_training, pilot_subsidy, skill_upgrade, training};
    [
        program_body::<skill_upgrade::SkillUpgradeApplication>("skill_upgrade"),
        program_body::<training::TrainingApplication>("vocational_training"),
        program_body::<job_stabilization::JobStabilizationApplication>("job_stabilization_refund"),
        program_body::<on_the_job_training::OnTheJobTrainingApplication>("on_the_job_training"),
        program_body::<pilot_subsidy::PilotSubsidyApplication>("pilot_subsidy"),
    ]
}

impl PartialSchema for NewApplication {
    fn schema() -> RefOr<Schema> {
        let mut discriminator = Discriminator::new("program");
        let mut one_of = OneOfBuilder::new().description(Some(
            "One body per program, selected by `program`. Funding (`unemployment_insurance`, `expansion_pilot`, `employment_subsidy`) is derived by the policy when omitted.",
        ));
        for p in programs() {
            one_of = one_of.item(Ref::from_schema_name(&p.component));
            discriminator
                .mapping
                .insert(p.program.to_string(), format!("#/components/schemas/{}", p.component));
        }
        one_of.discriminator(Some(discriminator)).into()
    }
}

impl ToSchema for NewApplication {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for p in programs() {
            schemas.push((p.component, p.schema));
            schemas.extend(p.nested);
        }
    }
}

/// `POST /v1/applications/{id}/review`: `{"decision":"approve"}` or
/// `{"decision":"reject","reasons":[…]}` with at least one reason (documented as that union).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewBody {
    /// `approve` or `reject`.
    pub decision: String,
    #[serde(default)]
    pub reasons: Vec<String>,
}

impl PartialSchema for ReviewBody {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder};
        let decision =
            |d: &str| ObjectBuilder::new().schema_type(Type::String).enum_values(Some([d]));
        let reason = || ObjectBuilder::new().schema_type(Type::String).pattern(Some("\\S"));
        let approve = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("decision", decision("approve"))
            .required("decision")
            .property("reasons", ArrayBuilder::new().items(reason()))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        let reject = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("decision", decision("reject"))
            .required("decision")
            .property("reasons", ArrayBuilder::new().items(reason()).min_items(Some(1)))
            .required("reasons")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        OneOfBuilder::new().item(approve).item(reject).into()
    }
}

impl ToSchema for ReviewBody {}

/// `POST /v1/applications/{id}/withdraw`
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawBody {
    #[schema(pattern = "\\S")]
    pub reason: String,
}

/// `POST /v1/applications/{id}/confirmation`: the enterprise confirmed a screened refund
/// (免申即享).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationBody {
    /// The enterprise's person who confirmed (经办人 or legal representative).
    #[schema(pattern = "\\S")]
    pub confirmed_by: String,
    pub confirmed_on: chrono::NaiveDate,
    /// `large`, `medium`, `small` or `micro` (中小企业划型).
    pub size_class: policy::job_stabilization::SizeClass,
    /// Whether the enterprise has a corporate account (对公账户); a small or micro enterprise
    /// without one is paid to the account it pays social insurance from.
    pub corporate_account: bool,
}

/// An application as the API shows it: personal data masked.
pub(crate) fn application_json(a: &Application) -> Value {
    let mut body = application_fields(a);
    if a.erased {
        // Its person was erased: name and ID number show 已删除 (README "Erasure").
        body["erased"] = json!(true);
    }
    if a.screened {
        body["screened"] = json!(true);
        body["confirmation"] = match &a.confirmation {
            Some(c) => json!({"status": "confirmed", "confirmed_by": c.confirmed_by,
                              "confirmed_on": c.confirmed_on, "paid_to": c.paid_to}),
            None => json!({"status": "screened"}),
        };
    }
    body
}

fn application_fields(a: &Application) -> Value {
    json!({
        "id": a.id,
        "program": a.program,
        "county": a.county,
        "pool": a.pool,
        "year": a.year,
        "submitted_on": a.submitted_on,
        "submitted_by": a.submitted_by,
        "applicant": { "name": a.display_name, "id": a.display_id },
        "subject": a.subject,
        "level": a.level,
        "status": a.status.as_str(),
        "amount": money(a.amount),
        "funding": a.funding,
        "policy": a.policy,
        "slot": a.slot.as_ref().map(|(kind, year, number)| json!({"kind": kind, "year": year, "number": number})),
        "notice": a.notice,
        "payouts": a.payouts,
        "open_objections": a.open_objections,
        "recovered": money(a.recovered),
    })
}

/// An application as `GET /v1/applications` lists it: [`application_json`]'s fields, from
/// the stored row.
fn status_json(r: &projections::applications::StatusRow) -> Value {
    json!({
        "id": r.application,
        "program": r.program,
        "county": r.county,
        "pool": r.pool,
        "year": r.year,
        "submitted_on": r.submitted_on,
        "submitted_by": r.submitted_by,
        "applicant": { "name": r.display_name, "id": r.display_id },
        "subject": r.subject,
        "level": r.level,
        "status": r.status,
        "amount": money(r.amount),
        "funding": r.funding,
        "policy": r.policy,
        "slot": r.slot,
        "notice": r.notice,
        "payouts": r.payouts,
        "open_objections": r.open_objections,
        "recovered": money(r.recovered),
    })
}

pub(crate) fn submitted_json(s: &Submitted, program: &str, county: &str) -> Value {
    json!({
        "id": s.id,
        "status": "submitted",
        "program": program,
        "county": county,
        "pool": s.pool.to_string(),
        "amount": money(s.decision.amount.value.value()),
        "funding": s.decision.funding.value.as_str(),
        "policy": { "id": s.decision.policy.id.to_string(), "document": s.decision.policy.document },
        "decision": s.decision,
    })
}

#[utoipa::path(post, path = "/v1/applications", tag = "applications", request_body = NewApplication,
    responses((status = 201, description = "Submitted: id, status, amount, funding, the policy and the decision's rules"),
              (status = 409, description = "annual_limit_reached, occupation_level_already_subsidized, higher_level_already_subsidized, training_and_skill_upgrade_exclusive"),
              (status = 422, description = "not_eligible, certificate_window_expired, no_policy_in_force, unknown_occupation, no_standard_for_level; validation_failed also for a county not registered or a date in the future")))]
pub async fn submit(
    State(state): State<AppState>,
    principal: Principal,
    command: Command<Value>,
) -> Result<Response, Problem> {
    let mut body = command.body.clone();
    let program = match body.as_object_mut().and_then(|o| o.remove("program")) {
        Some(Value::String(p)) => p,
        Some(_) => return Err(Problem::invalid("program", "must be a string")),
        None => return Err(Problem::invalid("program", "missing field `program`")),
    };
    let county = body.get("county").and_then(Value::as_str).unwrap_or("").to_string();
    enum Parsed {
        Person(PersonApplication),
        Refund(Box<policy::job_stabilization::JobStabilizationApplication>),
        Pilot(Box<policy::pilot_subsidy::PilotSubsidyApplication>),
        OnTheJob(Box<policy::on_the_job_training::OnTheJobTrainingApplication>),
    }
    let parsed = match program.as_str() {
        "skill_upgrade" => Parsed::Person(PersonApplication::SkillUpgrade(parse(body)?)),
        "vocational_training" => Parsed::Person(PersonApplication::Training(parse(body)?)),
        "job_stabilization_refund" => Parsed::Refund(Box::new(parse(body)?)),
        "pilot_subsidy" => Parsed::Pilot(Box::new(parse(body)?)),
        "on_the_job_training" => Parsed::OnTheJob(Box::new(parse(body)?)),
        other => {
            return Err(Problem::invalid(
                "program",
                format!("`{other}` is not a program; use skill_upgrade, vocational_training, job_stabilization_refund, on_the_job_training or pilot_subsidy"),
            ))
        }
    };
    require(&principal, &[Role::CountyClerk], &Place::county(None, &county))?;
    if let (Parsed::Person(app), None) = (&parsed, &command.group) {
        // A person's application is executed together with the others of its lane (a
        // person's always in the same one).
        if command.key_required && command.idempotency_key.is_none() {
            return Err(Problem::idempotency_key_required());
        }
        let person = PersonKey::derive(&state.keys, &app.applicant().id_number);
        let lane = person.as_str().bytes().fold(0u64, |h, b| h.wrapping_mul(31) + u64::from(b))
            % together::SUBMISSION_LANES;
        let item = Item {
            request: together::Request::Submit {
                request: commands::SubmitRequest {
                    app: app.clone(),
                    clerk: principal.label.clone(),
                    issuer: Some(Issuer {
                        token_id: principal.token_id.to_string(),
                        person: principal.person.clone(),
                    }),
                },
                program,
                county,
            },
            claim: command
                .idempotency_key
                .clone()
                .map(|k| (principal.token_id, k, command.fingerprint)),
        };
        return Ok(executed_together(state, format!("submit:{lane}"), item).await);
    }
    let mut unit = begin_unit!(state, principal, command);
    let outcome = match &parsed {
        Parsed::Person(app) => {
            commands::submit(unit.db(), &state.keys, app, &principal.label, today()).await
        }
        Parsed::Refund(app) => {
            commands::submit_refund(unit.db(), app, &principal.label, today()).await
        }
        Parsed::Pilot(app) => {
            commands::submit_pilot(unit.db(), &state.keys, app, &principal.label, today()).await
        }
        Parsed::OnTheJob(app) => {
            commands::submit_on_the_job_training(
                unit.db(),
                &state.keys,
                app,
                &principal.label,
                today(),
            )
            .await
        }
    }
    .map(|s| submitted_json(&s, &program, &county));
    Ok(unit.finish(StatusCode::CREATED, outcome).await)
}

async fn authorise_application(
    state: &AppState,
    principal: &Principal,
    roles: &[Role],
    id: &str,
) -> Result<Place, Problem> {
    authorise_stream(state, principal, roles, &application_stream(id), &format!("application {id}"))
        .await
}

#[utoipa::path(post, path = "/v1/applications/{id}/review", tag = "applications", request_body = ReviewBody,
    params(("id" = uuid::Uuid, Path, description = "application id")),
    responses((status = 200, description = "The application with its amount and policy"),
              (status = 409, description = "self_review_forbidden, quota_exceeded, quota_not_set, invalid_state, not_confirmed")))]
pub async fn review(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<ReviewBody>,
) -> Result<Response, Problem> {
    let review = match command.body.decision.as_str() {
        "approve" => Review::Approve,
        "reject" => Review::Reject { reasons: command.body.reasons.clone() },
        other => {
            return Err(Problem::invalid(
                "decision",
                format!("`{other}` is not a decision; use approve or reject"),
            ))
        }
    };
    let place = authorise_application(&state, &principal, &[Role::CountyReviewer], &id).await?;
    let pool = place.pool.as_deref().unwrap_or_default();
    if command.group.is_some() {
        // A batch's item: in the group the batch holds, on its own.
        let group = format!("review:{pool}");
        let work = async move {
            let mut unit = Unit::begin_grouped(&state, &principal, &command, &group).await?;
            let outcome = commands::review(unit.db(), &id, &review, &principal.label, today())
                .await
                .map(|a| application_json(&a));
            Ok(unit.finish(StatusCode::OK, outcome).await)
        };
        return tokio::spawn(work).await.map_err(|e| Problem::internal(&e))?;
    }
    if command.key_required && command.idempotency_key.is_none() {
        return Err(Problem::idempotency_key_required());
    }
    // One pool's reviews are executed together (they queue on its quota lock): in a task of
    // its own, so a client that hangs up cannot cancel the batch it leads.
    let item = Item {
        request: together::Request::Review(commands::ReviewRequest {
            id,
            review,
            reviewer: principal.label.clone(),
            issuer: Some(Issuer {
                token_id: principal.token_id.to_string(),
                person: principal.person.clone(),
            }),
        }),
        claim: command
            .idempotency_key
            .clone()
            .map(|k| (principal.token_id, k, command.fingerprint)),
    };
    Ok(executed_together(state, format!("review:{pool}"), item).await)
}

/// Executes `item` together with the requests queued under `key` ([`together`]), in a task of
/// its own, so that a client that hangs up cannot drop the batch it leads.
async fn executed_together(state: AppState, key: String, item: Item) -> Response {
    let work = async move {
        let queues = state.together.clone();
        let execute = |items| async move { together::execute(&state, items, today()).await };
        queues.run(&key, item, execute).await.unwrap_or_else(|a| {
            tracing::error!(error = %a, "a batch of requests executed together was abandoned");
            Problem::outcome_unknown().into_response()
        })
    };
    tokio::spawn(work).await.unwrap_or_else(|e| Problem::internal(&e).into_response())
}

#[utoipa::path(post, path = "/v1/applications/{id}/withdraw", tag = "applications", request_body = WithdrawBody,
    params(("id" = uuid::Uuid, Path, description = "application id")),
    responses((status = 200, description = "Withdrawn"), (status = 409, description = "invalid_state")))]
pub async fn withdraw(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<WithdrawBody>,
) -> Result<Response, Problem> {
    authorise_application(&state, &principal, &[Role::CountyClerk], &id).await?;
    let mut unit = begin_unit!(state, principal, command);
    let outcome =
        commands::withdraw(unit.db(), &id, &command.body.reason, &principal.label, today())
            .await
            .map(|a| application_json(&a));
    Ok(unit.finish(StatusCode::OK, outcome).await)
}

#[utoipa::path(post, path = "/v1/applications/{id}/confirmation", tag = "applications", request_body = ConfirmationBody,
    params(("id" = uuid::Uuid, Path, description = "application id")),
    responses((status = 200, description = "Confirmed: the refund may now be reviewed"),
              (status = 409, description = "invalid_state: not a screened refund awaiting confirmation"),
              (status = 422, description = "not_eligible (corporate_account)")))]
pub async fn confirm(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
    command: Command<ConfirmationBody>,
) -> Result<Response, Problem> {
    authorise_application(&state, &principal, &[Role::CountyClerk], &id).await?;
    let b = &command.body;
    let confirmation = commands::Confirmation {
        confirmed_by: b.confirmed_by.clone(),
        confirmed_on: b.confirmed_on,
        size_class: b.size_class,
        corporate_account: b.corporate_account,
    };
    let mut unit = begin_unit!(state, principal, command);
    let outcome =
        commands::confirm_screened(unit.db(), &id, &confirmation, &principal.label, today())
            .await
            .map(|a| application_json(&a));
    Ok(unit.finish(StatusCode::OK, outcome).await)
}

/// Every role may read, within its scope.
pub(crate) const READERS: [Role; 5] =
    [Role::Admin, Role::Auditor, Role::CityFinance, Role::CountyClerk, Role::CountyReviewer];

#[utoipa::path(get, path = "/v1/applications/{id}", tag = "applications",
    params(("id" = uuid::Uuid, Path, description = "application id")),
    responses((status = 200, description = "Status, amount, policy and the full event history"), (status = 404, description = "not_found")))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    principal: Principal,
) -> Result<Json<Value>, Problem> {
    authorise_application(&state, &principal, &READERS, &id).await?;
    let mut conn = state.pool.acquire().await?;
    let events = read_stream(&mut conn, &application_stream(&id)).await?;
    let mut apps = Applications::default();
    for e in &events {
        apps.apply(&e.event_type, &e.data).map_err(|e| Problem::internal(&e))?;
    }
    // Its person's erasures, folded in log order with its events: an erasure recorded after
    // the submission shows the applicant as erased (已删除).
    let person = apps.by_id.get(&id).and_then(|a| a.party.strip_prefix("person:"));
    if let Some(person) = person.map(str::to_string) {
        let erasures = read_stream(&mut conn, &events::person::person_stream(&person)).await?;
        if !erasures.is_empty() {
            let mut all: Vec<&crate::store::RecordedEvent> =
                events.iter().chain(&erasures).collect();
            all.sort_by_key(|e| e.id);
            apps = Applications::default();
            for e in all {
                apps.apply(&e.event_type, &e.data).map_err(|e| Problem::internal(&e))?;
            }
        }
    }
    let app = apps
        .by_id
        .get(&id)
        .ok_or_else(|| Problem::not_found(format!("application {id} does not exist")))?;
    let values = crate::erasure::personal_values(&events, &apps);
    let opener =
        crate::erasure::Opener::load(&mut conn, &state.keys, &crate::erasure::persons_of(&values))
            .await?;
    let mut body = application_json(app);
    body["events"] = events
        .iter()
        .map(|e| {
            let data = crate::erasure::redact(&e.data, e.id, &values, &opener);
            json!({
                "position": e.position.map(|p| p.0),
                "version": e.stream_version,
                "type": e.event_type,
                "business_date": e.business_date,
                "recorded_at": e.recorded_at,
                "actor": e.metadata.actor,
                "data": crate::http::routes::feed::public_data(&data),
            })
        })
        .collect();
    Ok(Json(body))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// The county whose applications to list (county tokens: their own, the default).
    #[param(value_type = Option<policy::DivisionCode>)]
    pub county: Option<policy::DivisionCode>,
    /// Only applications in this status.
    #[param(value_type = Option<crate::http::openapi::ApplicationStatus>)]
    pub status: Option<String>,
    /// Cursor: the `next_after` of the previous page (an application's id).
    pub after: Option<uuid::Uuid>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

pub const LIST_LIMIT_MAX: i64 = 500;

#[utoipa::path(get, path = "/v1/applications", tag = "applications", params(ListQuery),
    responses((status = 200, description = "`{\"applications\":[…],\"next_after\"}` in id order (ids are time-ordered UUIDv7)")))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, Problem> {
    use crate::tokens::Scope;
    let county = match (&principal.scope, &q.county) {
        (Scope::County(own), None) => Some(own.clone()),
        (_, given) => given.as_ref().map(|c| c.to_string()),
    };
    if let Some(status) = &q.status {
        if Status::parse(status).is_none() {
            let all: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
            return Err(Problem::invalid(
                "status",
                format!("`{status}` is not a status; use one of {}", all.join(", ")),
            ));
        }
    }
    let pool = match &principal.scope {
        Scope::Pool(p) => Some(p.clone()),
        _ => None,
    };
    match (&principal.scope, &county) {
        (Scope::County(_), Some(c)) => require(&principal, &READERS, &Place::county(None, c))?,
        _ => require(&principal, &READERS, &Place { pool: pool.clone(), county: None })?,
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=LIST_LIMIT_MAX).contains(&limit) {
        return Err(Problem::invalid("limit", format!("must be between 1 and {LIST_LIMIT_MAX}")));
    }
    let mut conn = state.pool.acquire().await?;
    // One query: the rows the commands keep (read_models), not a fold per application.
    let rows = crate::read_models::applications_page(
        &mut conn,
        county.as_deref(),
        pool.as_deref(),
        q.status.as_deref(),
        q.after.map(|a| a.to_string()).as_deref(),
        limit,
    )
    .await?;
    let applications: Vec<Value> = rows.iter().map(status_json).collect();
    let next_after =
        (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.application.clone()));
    Ok(Json(json!({ "applications": applications, "next_after": next_after.flatten() })))
}

/// `POST /v1/persons/subsidies`: the ID number travels in the body, never in a URL (URLs end
/// up in proxies' and browsers' logs).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonQuery {
    #[schema(value_type = policy::IdNumber)]
    pub id_number: String,
    #[schema(value_type = crate::http::openapi::PolicyYear)]
    pub year: i32,
}

#[utoipa::path(post, path = "/v1/persons/subsidies", tag = "applications", request_body = PersonQuery,
    responses((status = 200, description = "`{year, used, limit, by_program, applications}`: the counts across every county; the applications (masked) only within the caller's scope. A read: records nothing, needs no Idempotency-Key")))]
pub async fn person_subsidies(
    State(state): State<AppState>,
    principal: Principal,
    command: Command<PersonQuery>,
) -> Result<Json<Value>, Problem> {
    use crate::tokens::Scope;
    // Every role that decides needs the person's standing across all counties (a clerk tells
    // the applicant how many slots are left); the applications themselves stay in scope.
    require_role(&principal, &READERS)?;
    let q = &command.body;
    let id = policy::IdNumber::parse(&q.id_number)
        .map_err(|e| Problem::invalid("id_number", e.to_string()))?;
    policy_year("year", q.year)?;
    let key = PersonKey::derive(&state.keys, &id);
    let tag = events::Tag::person(key.as_str());
    let mut conn = state.pool.acquire().await?;
    let read = read_tagged(&mut conn, std::slice::from_ref(&tag)).await?;
    let mut apps = Applications::default();
    for e in &read.events {
        apps.apply(&e.event_type, &e.data).map_err(|e| Problem::internal(&e))?;
    }
    let in_year: Vec<&Application> = apps.by_id.values().filter(|a| a.year == q.year).collect();
    let stands = |a: &Application| {
        !matches!(a.status, Status::Rejected | Status::Withdrawn | Status::Recovered)
    };
    let holds_slot = |a: &&&Application| a.program == "skill_upgrade" && stands(a);
    let used = in_year.iter().filter(holds_slot).count();
    let mut by_program = serde_json::Map::new();
    for a in in_year.iter().filter(|a| stands(a)) {
        let n = by_program.entry(a.program.clone()).or_insert(json!(0));
        *n = json!(n.as_u64().unwrap_or(0) + 1);
    }
    let policies = crate::publishing::policies_cached(&mut conn, &state.database).await?;
    let limit = in_year.iter().filter(holds_slot).find_map(|a| {
        policies.iter().find(|p| p.id.to_string() == a.policy).and_then(|p| match &p.rules {
            policy::Rules::SkillUpgrade(r) => {
                Some(r.annual.base_slots + r.extra.as_ref().map_or(0, |e| e.slots))
            }
            _ => None,
        })
    });
    let in_scope = |a: &&&Application| match &principal.scope {
        Scope::All => true,
        Scope::Pool(pool) => &a.pool == pool,
        Scope::County(county) => &a.county == county,
    };
    Ok(Json(json!({
        "year": q.year,
        "used": used,
        "limit": limit,
        "by_program": by_program,
        "applications": in_year.iter().filter(in_scope).map(|a| application_json(a)).collect::<Vec<_>>(),
    })))
}

#[utoipa::path(get, path = "/v1/persons/{id_number}/subsidies", tag = "applications", security(()),
    params(("id_number" = String, Path, description = "not read: the ID number does not belong in a URL")),
    responses((status = 410, description = "`moved`: use POST /v1/persons/subsidies with `{\"id_number\",\"year\"}`")))]
pub async fn person_subsidies_moved(Path(_id_number): Path<String>) -> Problem {
    let mut p = Problem::new(
        StatusCode::GONE,
        "moved",
        "this route is gone, so that ID numbers stay out of URLs and logs: POST /v1/persons/subsidies with {\"id_number\": \"…\", \"year\": 2025}",
    );
    p.location = Some("/v1/persons/subsidies".to_string());
    p
}
