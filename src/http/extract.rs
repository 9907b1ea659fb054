//! What a handler gets from a request: the token's principal, and a command body parsed
//! strictly (JSON only, unknown fields refused, each bad field named by its JSON path) with
//! its Idempotency-Key and fingerprint.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::problem::{FieldError, Problem};
use super::AppState;
use crate::tokens::{Principal, Role};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const IDEMPOTENCY_KEY_MAX: usize = 200;

/// An `Idempotency-Key` header's value: 1 to 200 visible ASCII characters, spaces between
/// them allowed (the document's pattern); a tab or a byte beyond ASCII is refused.
pub fn idempotency_key(value: &axum::http::HeaderValue) -> Result<String, Problem> {
    let bytes = value.as_bytes();
    let visible = |b: &u8| (b'!'..=b'~').contains(b);
    let ok = (1..=IDEMPOTENCY_KEY_MAX).contains(&bytes.len())
        && bytes.iter().all(|b| visible(b) || *b == b' ')
        && bytes.first().is_some_and(visible)
        && bytes.last().is_some_and(visible);
    match (ok, value.to_str()) {
        (true, Ok(key)) => Ok(key.to_string()),
        _ => Err(Problem::invalid(
            "Idempotency-Key",
            format!("must be 1 to {IDEMPOTENCY_KEY_MAX} visible ASCII characters (spaces between them allowed)"),
        )),
    }
}

/// Readies a request body for parsing, in place:
/// - a number with no fraction becomes an integer. JSON Schema counts `2052.0` an integer, so a
///   client built from the OpenAPI document may send one, where serde takes only `2052` for
///   an `i32`. No field of the API is a fraction (money is a string), so nothing is lost.
/// - a string or key holding NUL (U+0000) is refused: PostgreSQL stores no NUL in text or
///   JSON, and would fail the statement (an internal error) instead of the request.
fn normalise(value: &mut serde_json::Value, path: &str) -> Result<(), FieldError> {
    use serde_json::Value;
    let nul = |field: &str| FieldError {
        field: field.to_string(),
        message: "must not contain the NUL character (U+0000)".to_string(),
    };
    match value {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            // Integers of f64 are exact up to 2^53.
            if let Some(f) =
                n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0)
            {
                *value = Value::from(f as i64);
            }
        }
        Value::String(s) if s.contains('\0') => return Err(nul(path)),
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                normalise(item, &format!("{path}[{i}]"))?;
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                let field = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if key.contains('\0') {
                    return Err(nul(path));
                }
                normalise(item, &field)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The routes where money moves (API.md, "Additions"): a POST to one of them without an
/// `Idempotency-Key` is refused with 428 when its unit of work would begin (after the role
/// and scope checks, before anything is recorded), so a client's retry after a lost answer
/// can never pay twice. `{…}` matches one path segment.
pub const IDEMPOTENCY_REQUIRED: [&str; 6] = [
    "/v1/payouts",
    "/v1/payouts/{id}/settlement",
    "/v1/payouts/{id}/reissue",
    "/v1/applications/{id}/recoveries",
    "/v1/settlements/import",
    "/v1/periods/{pool}/{month}/seal",
];

/// Whether a POST to `path` must carry an `Idempotency-Key`.
pub fn idempotency_required(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/');
    IDEMPOTENCY_REQUIRED.iter().any(|template| {
        let mut given = path.split('/');
        let mut wanted = template.split('/');
        loop {
            match (given.next(), wanted.next()) {
                (None, None) => return true,
                (Some(g), Some(w)) if w.starts_with('{') && !g.is_empty() => {}
                (Some(g), Some(w)) if g == w => {}
                _ => return false,
            }
        }
    })
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        // A batch item runs with the batch's principal, already authenticated and counted.
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        // The dashboard's session cookie holds the same token. It is accepted for reads only
        // (GET, HEAD): a POST needs the bearer header, which a page on another site cannot
        // make a browser send, so no form elsewhere can act with a signed-in browser's token.
        let reads =
            parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD;
        let token = match bearer {
            Some(t) => t.to_string(),
            None if reads => session_cookie(&parts.headers).ok_or_else(Problem::unauthorized)?,
            None => return Err(Problem::unauthorized()),
        };
        let principal = authenticate(state, &token).await?;
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// The cookie the dashboard's sign-in sets (HttpOnly, SameSite=Strict): the token itself.
pub const SESSION_COOKIE: &str = "fundledger_session";

/// The session cookie's value in a request's `Cookie` headers, if any.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The principal a token stands for, from the server's copy of the token table (a request
/// costs no query of its own), counted against the token's rate limit: the one check of a
/// bearer header, a session cookie and the dashboard's sign-in form.
pub async fn authenticate(state: &AppState, token: &str) -> Result<Principal, Problem> {
    let principal =
        state.tokens.authenticate(&state.pool, token).await?.ok_or_else(Problem::unauthorized)?;
    state.rate.admit(principal.token_id)?;
    Ok(principal)
}

/// Where a resource belongs, for the scope check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub pool: Option<String>,
    pub county: Option<String>,
}

impl Place {
    pub fn pool(pool: &str) -> Self {
        Place { pool: Some(pool.to_string()), county: None }
    }
    pub fn county(pool: Option<String>, county: &str) -> Self {
        Place { pool, county: Some(county.to_string()) }
    }
}

/// Refuses with 403 unless the principal holds one of `roles` for `place`.
///
/// The refusal names what the caller may do, never where the thing belongs: a 403 must not
/// tell a county's clerk which other county an application (or a person) is in.
pub fn require(p: &Principal, roles: &[Role], place: &Place) -> Result<(), Problem> {
    require_role(p, roles)?;
    use crate::tokens::Scope;
    let allowed = match &p.scope {
        Scope::All => true,
        Scope::Pool(pool) => place.pool.as_deref() == Some(pool),
        Scope::County(county) => place.county.as_deref() == Some(county),
    };
    if allowed {
        Ok(())
    } else {
        Err(out_of_scope(p))
    }
}

/// Refuses with 403 unless the principal holds one of `roles` (anywhere): checked before
/// anything is looked up, so that a caller without the role learns nothing, not even whether
/// the thing exists.
pub fn require_role(p: &Principal, roles: &[Role]) -> Result<(), Problem> {
    if roles.iter().any(|r| p.has(*r)) {
        return Ok(());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Err(Problem::forbidden(format!(
        "this needs one of the roles {}; the token `{}` holds {}",
        names.join(", "),
        p.label,
        p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
    )))
}

/// Role, then existence, then scope, for a thing looked up by id: a caller without the role
/// gets 403 before anything is looked up; a scoped caller gets the same 403 for a thing of
/// another county or pool as for one that does not exist, so ids cannot be probed. Only a
/// caller who could see the thing wherever it is (admin, auditor) learns that it is missing.
pub fn authorise(
    p: &Principal,
    roles: &[Role],
    place: Option<Place>,
    missing: impl FnOnce() -> Problem,
) -> Result<Place, Problem> {
    require_role(p, roles)?;
    match place {
        Some(place) => {
            require(p, roles, &place)?;
            Ok(place)
        }
        None if p.scope == crate::tokens::Scope::All => Err(missing()),
        None => Err(out_of_scope(p)),
    }
}

/// The 403 of a request outside the caller's scope, the same whether the thing exists or not
/// and wherever it belongs.
pub fn out_of_scope(p: &Principal) -> Problem {
    use crate::tokens::Scope;
    let scope = match &p.scope {
        Scope::All => "everything".to_string(),
        Scope::Pool(x) => format!("pool {x}"),
        Scope::County(x) => format!("county {x}"),
    };
    Problem::forbidden(format!(
        "the token `{}` acts for {scope} only, and this is not within it (or does not exist)",
        p.label
    ))
}

/// A command's body, strictly parsed, with what idempotency needs.
#[derive(Debug)]
pub struct Command<T> {
    pub body: T,
    pub idempotency_key: Option<String>,
    /// Whether the route moves money, so that the unit of work refuses to begin without a key
    /// (after the role and scope checks: a caller without the role hears 403 first).
    pub key_required: bool,
    /// SHA-256 of method, path and the body's canonical JSON: the same request, whatever its
    /// whitespace or key order.
    pub fingerprint: String,
    /// The group whose commit the command shares, when one is held open for it (a batch's
    /// items: [`crate::http::unit::InGroup`]).
    pub group: Option<String>,
}

/// Keys sorted at every level, so the fingerprint does not depend on key order.
fn canonical(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

pub fn fingerprint(method: &str, path: &str, body: &serde_json::Value) -> String {
    let mut text = format!("{method} {path}\n");
    canonical(body, &mut text);
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The JSON path of a serde error and its message, with `missing field` and `unknown field`
/// pointed at the field itself rather than its parent.
fn field_error<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> FieldError {
    let mut path = e.path().to_string();
    if path == "." {
        path.clear();
    }
    let message = e.inner().to_string();
    let message = message.split(" at line ").next().unwrap_or(&message).to_string();
    for prefix in ["missing field `", "unknown field `"] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let name = rest.split('`').next().unwrap_or("");
            let already = path.rsplit('.').next() == Some(name);
            if !already {
                path = if path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
            }
        }
    }
    FieldError { field: path, message }
}

/// Fields whose values are personal (个人信息): a refusal names the field and the rule, never
/// the value sent (an ID number sent as a JSON number would otherwise come back in the error,
/// and from there into a county system's logs).
pub const PERSONAL_FIELDS: [&str; 5] = ["id_number", "name", "number", "account", "bank_reference"];

/// Whether any segment of a JSON path (`trainees[0].id_number`) is a personal field.
pub fn is_personal(path: &str) -> bool {
    path.split('.')
        .map(|seg| seg.split('[').next().unwrap_or(seg))
        .any(|seg| PERSONAL_FIELDS.contains(&seg))
}

/// A parser's message with every quoted value (`…` or "…") left out.
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '`' || c == '"' => {
                quote = Some(c);
                out.push_str("(value not shown)");
            }
            None => out.push(c),
        }
    }
    out
}

/// Parses a JSON value into `T`, naming the bad field.
pub fn parse<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value).map_err(|e| validation_failed(field_error(e)))
}

/// The one answer to a body or query that does not parse: 422 `validation_failed` naming the
/// field, without the value where the field is personal (an ID number in a query, too).
fn validation_failed(mut error: FieldError) -> Problem {
    if is_personal(&error.field) {
        error.message = without_values(&error.message);
    }
    let detail = if error.field.is_empty() {
        error.message.clone()
    } else {
        format!("{}: {}", error.field, error.message)
    };
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail)
        .with_errors(vec![error])
}

impl<T: DeserializeOwned> FromRequest<AppState> for Command<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let group = req.extensions().get::<crate::http::unit::InGroup>().map(|g| g.0.clone());
        let idempotency_key =
            req.headers().get(IDEMPOTENCY_KEY).map(idempotency_key).transpose()?;
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!(
                        "the body is larger than the {} bytes accepted; send fewer records per request",
                        state.limits.body_bytes
                    ),
                )
            } else {
                Problem::new(StatusCode::BAD_REQUEST, "unreadable_body", e.body_text())
            }
        })?;
        let value = if bytes.iter().all(u8::is_ascii_whitespace) && content_type.is_none() {
            // `curl -X POST` with no body: the same as `{}`.
            serde_json::Value::Object(Default::default())
        } else {
            match content_type.as_deref() {
                Some("application/json") => {}
                Some(ct) if ct.ends_with("+json") => {}
                other => {
                    return Err(Problem::new(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        "unsupported_media_type",
                        format!(
                            "send the body as JSON with `Content-Type: application/json` (got {})",
                            other.unwrap_or("no content type")
                        ),
                    ))
                }
            }
            serde_json::from_slice(&bytes).map_err(|e| {
                Problem::new(
                    StatusCode::BAD_REQUEST,
                    "malformed_json",
                    format!("the body is not valid JSON: {e}"),
                )
            })?
        };
        let mut value = value;
        normalise(&mut value, "").map_err(|e| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                format!("{}: {}", e.field, e.message),
            )
            .with_errors(vec![e])
        })?;
        let fingerprint = fingerprint(&method, &path, &value);
        let body = parse(value)?;
        let key_required = method == "POST" && idempotency_required(&path);
        Ok(Command { body, idempotency_key, key_required, fingerprint, group })
    }
}

/// A query string parsed strictly, like a body: unknown parameters refused, a bad one named.
/// Any refusal is 422 `validation_failed` with the parameter in `errors[].field` (axum's own
/// `Query` answers 400 with a sentence and no field).
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let query = parts.uri.query().unwrap_or("");
        // PostgreSQL compares no text holding NUL: refused here, not failed in a query.
        if let Some((key, _)) = form_urlencoded::parse(query.as_bytes())
            .find(|(k, v)| k.contains('\0') || v.contains('\0'))
        {
            let key = key.replace('\0', "");
            return Err(Problem::invalid(&key, "must not contain the NUL character (U+0000)"));
        }
        let pairs = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(pairs)
            .map(Query)
            .map_err(|e| validation_failed(field_error(e)))
    }
}

/// Refuses a year no policy, quota or report can be of (`commands::setup::POLICY_YEARS`).
pub fn policy_year(field: &str, year: i32) -> Result<i32, Problem> {
    let years = crate::commands::setup::POLICY_YEARS;
    if years.contains(&year) {
        Ok(year)
    } else {
        Err(Problem::invalid(
            field,
            format!("{year} is not a policy year ({} to {})", years.start(), years.end()),
        ))
    }
}

/// Serde helpers for request fields that must be parsed by the policy crate's parsers, so that a
/// bad code is refused with the parser's own sentence.
pub fn division(field: &str, s: &str) -> Result<policy::DivisionCode, Problem> {
    policy::DivisionCode::parse(s).map_err(|e| Problem::invalid(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_values_are_never_echoed_in_type_errors() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Applicant {
            id_number: String,
            name: String,
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Outer {
            applicant: Applicant,
        }
        let p = parse::<Outer>(
            serde_json::json!({"applicant": {"id_number": 370811199001011236_u64, "name": "x"}}),
        )
        .unwrap_err();
        let text = serde_json::to_string(&p).unwrap();
        assert_eq!(p.errors[0].field, "applicant.id_number");
        assert!(!text.contains("370811199001011236"), "{text}");
        assert!(text.contains("expected a string"), "the rule is still named: {text}");
        assert!(is_personal("trainees[0].id_number") && !is_personal("program"));
    }

    #[test]
    fn fingerprints_ignore_key_order_and_whitespace_but_not_values() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"a":1,"b":{"c":[1,2],"d":"x"}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "b": {"d":"x", "c":[1, 2]}, "a": 1 }"#).unwrap();
        let c: serde_json::Value =
            serde_json::from_str(r#"{"a":1,"b":{"c":[2,1],"d":"x"}}"#).unwrap();
        assert_eq!(fingerprint("POST", "/p", &a), fingerprint("POST", "/p", &b));
        assert_ne!(fingerprint("POST", "/p", &a), fingerprint("POST", "/p", &c));
        assert_ne!(fingerprint("POST", "/p", &a), fingerprint("POST", "/q", &a));
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        amount: String,
    }

    #[test]
    fn errors_name_the_field_by_its_json_path() {
        let missing = parse::<Outer>(serde_json::json!({"inner": {}})).unwrap_err();
        assert_eq!(missing.errors[0].field, "inner.amount");
        let unknown =
            parse::<Outer>(serde_json::json!({"inner": {"amount": "1", "x": 1}})).unwrap_err();
        assert_eq!(unknown.errors[0].field, "inner.x");
        let wrong = parse::<Outer>(serde_json::json!({"inner": {"amount": 5}})).unwrap_err();
        assert_eq!(wrong.errors[0].field, "inner.amount");
        assert_eq!(wrong.code, "validation_failed");
    }
}

#[cfg(test)]
mod request_bodies {
    use super::parse;

    #[test]
    fn unknown_fields_inside_an_application_are_refused_by_path() {
        let body = serde_json::json!({
            "county": "371502", "submitted_on": "2024-10-20",
            "applicant": {"id_number": "371502198804040034", "name": "王小五", "nickname": "x"},
            "eligibility": {"receiving_unemployment_benefit": true},
            "training": {"catalog": "urgent", "occupation_code": "4-10-01-05", "level": 5,
                         "assessment": "certificate", "class_start_on": "2024-09-10", "hours": 40}
        });
        let p = parse::<policy::training::TrainingApplication>(body).unwrap_err();
        assert_eq!(p.errors[0].field, "applicant.nickname", "{p:?}");
    }
}
