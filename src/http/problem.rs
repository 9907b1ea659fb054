//! Every error the API returns, as RFC 9457 problem+json: the one place where the error enums
//! of the commands become HTTP statuses, stable codes and sentences a clerk can act on.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::commands::applications::ApplicationError;
use crate::commands::payouts::PayoutError;
use crate::commands::periods::PeriodError;
use crate::commands::persons::ErasureError;
use crate::commands::settlements::ImportError;
use crate::commands::setup::SetupError;
use crate::store::AppendError;

/// What a client is told when its request may or may not have been recorded.
pub const OUTCOME_UNKNOWN: &str =
    "the outcome is unknown; retry with the same Idempotency-Key (a request that was recorded is answered again as it was, one that was not runs)";

/// One bad field, named by its JSON path in the request (`applicant.id_number`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// An RFC 9457 problem. `code` is stable and machine-readable; `detail` is a sentence.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(default)]
    pub errors: Vec<FieldError>,
    /// Seconds after which a retry may succeed (503 only; also sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u32>,
    /// Where the resource now is (410 `moved`; also sent as `Location`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Problem {
            type_: format!("urn:fundledger:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            errors: Vec::new(),
            retry_after: None,
            location: None,
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// 422 `validation_failed` naming one field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{field}: {message}"),
        )
        .with_errors(vec![FieldError { field: field.to_string(), message }])
    }

    pub fn unauthorized() -> Self {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid token as `Authorization: Bearer <token>`; tokens come from `fundledger token create`",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn unavailable() -> Self {
        let mut p = Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the ledger's database cannot be reached; nothing was recorded, retry shortly",
        );
        p.retry_after = Some(5);
        p
    }

    /// The request may or may not have been recorded: its COMMIT failed, or it was abandoned
    /// at the time limit. Only a retry with the same Idempotency-Key can tell (it replays the
    /// first answer if the first attempt committed, and runs otherwise).
    pub fn outcome_unknown() -> Self {
        let mut p =
            Problem::new(StatusCode::SERVICE_UNAVAILABLE, "outcome_unknown", OUTCOME_UNKNOWN);
        p.retry_after = Some(1);
        p
    }

    /// A money-moving request without an Idempotency-Key.
    pub fn idempotency_key_required() -> Self {
        Problem::new(
            StatusCode::PRECONDITION_REQUIRED,
            "idempotency_key_required",
            "this request moves money: send an `Idempotency-Key` header (1 to 200 characters, new for each new request, the same for a retry); nothing was recorded",
        )
        .with_errors(vec![FieldError {
            field: "Idempotency-Key".to_string(),
            message: "required where money moves".to_string(),
        }])
    }

    /// An error that is ours, not the caller's: logged (with the request id of the span), never
    /// echoed.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred and was logged; nothing was recorded",
        )
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry = self.retry_after;
        let location = self.location.clone();
        let mut response = (status, axum::Json(self)).into_response();
        let headers = response.headers_mut();
        if let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            headers.insert(header::LOCATION, v);
        }
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// Whether a database error means "cannot reach it" (503, retry) rather than a fault (500).
fn unreachable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed
    ) || matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08") || c == "53300"))
}

/// Whether a database error is one of the service's own time limits (`statement_timeout`,
/// `lock_timeout`): the transaction was rolled back, nothing of it was recorded.
fn timed_out(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| c == "57014" || c == "55P03"))
}

impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Self {
        if timed_out(&e) {
            tracing::warn!(error = %e, "a statement ran past its time limit");
            let mut p = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_timeout",
                "the ledger's database did not finish in time (a lock held elsewhere, or a slow \
                 statement); nothing was recorded, retry shortly",
            );
            p.retry_after = Some(2);
            return p;
        }
        if unreachable(&e) {
            tracing::warn!(error = %e, "database unreachable");
            Problem::unavailable()
        } else {
            Problem::internal(&e)
        }
    }
}

impl From<AppendError> for Problem {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Database(e) => e.into(),
            AppendError::Contended => {
                let mut p =
                    Problem::new(StatusCode::SERVICE_UNAVAILABLE, "contended", e.to_string());
                p.retry_after = Some(1);
                p
            }
            other => Problem::internal(&other),
        }
    }
}

/// The HTTP status of a refusal code: 409 when the request conflicts with what is recorded
/// (history, state, quota), 422 when the request itself cannot be accepted.
fn status_of(code: &str) -> StatusCode {
    match code {
        "validation_failed"
        | "not_eligible"
        | "certificate_window_expired"
        | "no_policy_in_force"
        | "unknown_occupation"
        | "no_standard_for_level"
        | "ratio_above_ceiling"
        | "balance_date_mismatch"
        | "pool_not_found" => StatusCode::UNPROCESSABLE_ENTITY,
        "not_found" => StatusCode::NOT_FOUND,
        _ => StatusCode::CONFLICT,
    }
}

fn refusal(code: &str, detail: String, errors: Vec<FieldError>) -> Problem {
    Problem::new(status_of(code), code, detail).with_errors(errors)
}

/// The field a command's `Invalid` names, as an `errors[]` entry.
fn field(field: &str, message: &str) -> Vec<FieldError> {
    vec![FieldError { field: field.to_string(), message: message.to_string() }]
}

impl From<ApplicationError> for Problem {
    fn from(e: ApplicationError) -> Self {
        let code = e.code();
        match e {
            ApplicationError::Store(e) => e.into(),
            ApplicationError::Database(e) => e.into(),
            ApplicationError::Refused(rejections) => {
                let detail =
                    rejections.first().map_or_else(|| "refused".to_string(), |r| r.message.clone());
                let errors = rejections
                    .iter()
                    .map(|r| FieldError { field: r.field.clone(), message: r.message.clone() })
                    .collect();
                refusal(code, detail, errors)
            }
            ApplicationError::Invalid { field: f, ref message } => {
                let errors = field(f, message);
                refusal(code, e.to_string(), errors)
            }
            ApplicationError::FutureDate(_) => {
                refusal(code, e.to_string(), field("submitted_on", "is in the future"))
            }
            ApplicationError::CountyNotFound(_) => {
                refusal(code, e.to_string(), field("county", "is not a registered county"))
            }
            ApplicationError::NoReasons => {
                refusal(code, e.to_string(), field("reasons", "give at least one reason"))
            }
            other => refusal(code, other.to_string(), Vec::new()),
        }
    }
}

impl From<PayoutError> for Problem {
    fn from(e: PayoutError) -> Self {
        let code = e.code();
        match e {
            PayoutError::Store(e) => e.into(),
            PayoutError::Database(e) => e.into(),
            PayoutError::Invalid { field: f, ref message } => {
                let errors = field(f, message);
                refusal(code, e.to_string(), errors)
            }
            PayoutError::ObjectionPeriodEnded { starts_on, ends_on, .. } => {
                let message =
                    format!("must lie within {starts_on} to {ends_on}, not in the future");
                refusal(code, e.to_string(), field("received_on", &message))
            }
            PayoutError::NoCalendar { year } => {
                let message = format!("no holiday calendar in force covers {year}");
                refusal(code, e.to_string(), field("starts_on", &message))
            }
            PayoutError::Batch(ref r) => {
                // The rule is about the batch's state: name it as the field.
                let message = r.to_string();
                refusal(code, e.to_string(), field("status", &message))
            }
            other => refusal(code, other.to_string(), Vec::new()),
        }
    }
}

impl From<SetupError> for Problem {
    fn from(e: SetupError) -> Self {
        let code = e.code();
        match e {
            SetupError::Store(e) => e.into(),
            SetupError::Database(e) => e.into(),
            SetupError::Invalid { field: f, ref message } => {
                let errors = field(f, message);
                refusal(code, e.to_string(), errors)
            }
            SetupError::BalanceDateMismatch { expected, .. } => {
                let message = format!("must be {expected}, the balance date of the policy");
                refusal(code, e.to_string(), field("as_of", &message))
            }
            other => refusal(code, other.to_string(), Vec::new()),
        }
    }
}

impl From<PeriodError> for Problem {
    fn from(e: PeriodError) -> Self {
        let code = e.code();
        match e {
            PeriodError::Store(e) => e.into(),
            PeriodError::Database(e) => e.into(),
            PeriodError::Invalid { field: f, ref message } => {
                let errors = field(f, message);
                refusal(code, e.to_string(), errors)
            }
            PeriodError::PoolNotFound(_) => {
                refusal(code, e.to_string(), field("pool", "is not a registered pool"))
            }
            other => refusal(code, other.to_string(), Vec::new()),
        }
    }
}

impl From<ImportError> for Problem {
    fn from(e: ImportError) -> Self {
        let code = e.code();
        match e {
            ImportError::Store(e) => e.into(),
            ImportError::Database(e) => e.into(),
            ImportError::Invalid { field: f, ref message } => {
                let errors = field(f, message);
                refusal(code, e.to_string(), errors)
            }
        }
    }
}

impl From<ErasureError> for Problem {
    fn from(e: ErasureError) -> Self {
        let code = e.code();
        match e {
            ErasureError::Store(e) => e.into(),
            ErasureError::Database(e) => e.into(),
            other => refusal(code, other.to_string(), Vec::new()),
        }
    }
}
