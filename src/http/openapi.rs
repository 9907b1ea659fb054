//! The OpenAPI document's shared parts, added to every operation in one pass ([`Contract`])
//! rather than restated by each handler: the errors the layers every route goes through can
//! answer (the token check, the body extractor, the unit of work, the timeout), all as
//! `application/problem+json`; the `Idempotency-Key` header of every POST; no security on the
//! public routes. A handler documents only what is its own: its success, its content type and
//! the refusals of its command.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Content, RefOr, Required};

use super::extract::idempotency_required;

/// The content type of every error.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// What the shared layers can answer, and when: the status, the problem codes, and which
/// operations can get it.
struct Shared {
    status: u16,
    codes: &'static str,
    applies: fn(&Shape) -> bool,
}

/// What the pass knows of an operation, from the document itself.
struct Shape<'a> {
    path: &'a str,
    post: bool,
    /// No token needed (`security(())` on the handler).
    public: bool,
    body: bool,
    path_parameters: bool,
    query_parameters: bool,
}

const SHARED: [Shared; 12] = [
    Shared {
        status: 400,
        codes: "malformed_json, unreadable_body: the body is not JSON or could not be read; bad_request: a path parameter of the wrong type",
        applies: |s| s.body || s.path_parameters,
    },
    Shared {
        status: 401,
        codes: "unauthorized: no token, or not a valid one (`Authorization: Bearer <token>`)",
        applies: |s| !s.public,
    },
    Shared {
        status: 403,
        codes: "forbidden: the token lacks the role, or the thing is outside its county or pool (or does not exist)",
        applies: |s| !s.public,
    },
    Shared {
        status: 409,
        codes: "idempotency_conflict: the Idempotency-Key was used for a different request",
        applies: |s| s.post && !s.public && !POSTS_WITHOUT_UNIT.contains(&s.path),
    },
    Shared {
        status: 413,
        codes: "body_too_large: the body is larger than the server accepts",
        applies: |s| s.body,
    },
    Shared {
        status: 415,
        codes: "unsupported_media_type: the body is not sent as the content type documented",
        applies: |s| s.body,
    },
    Shared {
        status: 422,
        codes: "validation_failed: a field (named in `errors[].field`) or a parameter does not hold a valid value",
        applies: |s| s.body || s.query_parameters,
    },
    Shared {
        status: 428,
        codes: "idempotency_key_required: money moves here; send an Idempotency-Key",
        applies: |s| s.post && idempotency_required(s.path),
    },
    Shared {
        status: 429,
        codes: "rate_limited: this token sends too many requests; retry after `Retry-After` seconds",
        applies: |s| !s.public,
    },
    Shared {
        status: 500,
        codes: "internal: a fault of the server, logged under the response's x-request-id",
        applies: |_| true,
    },
    Shared {
        status: 503,
        codes: "request_timeout, database_unavailable, database_timeout, contended, outcome_unknown: retry after `Retry-After` seconds (a POST with the same Idempotency-Key)",
        applies: |s| !s.public || s.path == "/readyz",
    },
    Shared {
        status: 503,
        codes: "request_timeout: the request took too long; retry after `Retry-After` seconds",
        applies: |s| s.public && s.path != "/readyz",
    },
];

/// POSTs that record nothing themselves, so never answer 409 `idempotency_conflict`: a read
/// whose body keeps an ID number out of the URL, and the batch (each item is its own request,
/// under `<key>/<index>`).
const POSTS_WITHOUT_UNIT: [&str; 2] = ["/v1/persons/subsidies", "/v1/batch"];

/// Visible ASCII, 1 to 200 characters (`extract::IDEMPOTENCY_KEY_MAX`).
const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]([ -~]{0,198}[!-~])?$";

/// Adds the shared parts to every operation (see the module's comment).
#[derive(Debug)]
pub struct Contract;

impl utoipa::Modify for Contract {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, false),
                (&mut item.delete, false),
                (&mut item.patch, false),
            ];
            for (operation, post) in operations {
                if let Some(operation) = operation.as_mut() {
                    complete(path, post, operation);
                }
            }
        }
    }
}

fn has_parameters(operation: &Operation, place: ParameterIn) -> bool {
    operation.parameters.iter().flatten().any(|p| match p {
        RefOr::T(p) => p.parameter_in == place,
        RefOr::Ref(_) => false,
    })
}

/// A parameter is absent or has a value: an `Option` field's `null` (which utoipa writes for
/// JSON) means nothing in a query string or a header, and a client must not send it.
fn never_null(schema: &mut RefOr<utoipa::openapi::Schema>) {
    let Ok(mut value) = serde_json::to_value(&*schema) else { return };
    let is_null = |v: &serde_json::Value| v.get("type") == Some(&serde_json::json!("null"));
    if let Some(types) = value.get_mut("type").and_then(|t| t.as_array_mut()) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            value["type"] = types[0].clone();
        }
    }
    if let Some(one_of) = value.get("oneOf").and_then(|o| o.as_array()).cloned() {
        let kept: Vec<serde_json::Value> = one_of.into_iter().filter(|v| !is_null(v)).collect();
        if let [only] = kept.as_slice() {
            value = only.clone();
        }
    }
    if let Ok(cleaned) = serde_json::from_value(value) {
        *schema = cleaned;
    }
}

fn complete(path: &str, post: bool, operation: &mut Operation) {
    // `security(())` on a handler: the route needs no token. Said as `security: []`, which
    // overrides the document's bearer requirement.
    let public = operation.security.as_ref().is_some_and(|s| {
        s.iter().all(|r| serde_json::to_value(r).is_ok_and(|v| v == serde_json::json!({})))
    });
    if public {
        operation.security = Some(Vec::new());
    }
    let shape = Shape {
        path,
        post,
        public,
        body: operation.request_body.is_some(),
        path_parameters: has_parameters(operation, ParameterIn::Path),
        query_parameters: has_parameters(operation, ParameterIn::Query),
    };
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter {
            if let Some(schema) = parameter.schema.as_mut() {
                never_null(schema);
            }
        }
    }
    if post && !public {
        let required = idempotency_required(path);
        let key = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(if required { Required::True } else { Required::False })
            .description(Some(if required {
                "Required: money moves here (428 without it). The same key and body replay the first answer with `Idempotent-Replayed: true`; kept at least 30 days."
            } else {
                "Optional. The same key and body replay the first answer with `Idempotent-Replayed: true`; a different body is 409 `idempotency_conflict`. Kept at least 30 days."
            }))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(IDEMPOTENCY_KEY_PATTERN))
                    .min_length(Some(1))
                    .max_length(Some(200)),
            ))
            .build();
        operation.parameters.get_or_insert_with(Vec::new).push(RefOr::T(key));
    }
    // A route that answers only 410 is gone: said so, for clients generated from the document.
    let gone = operation.responses.responses.contains_key("410")
        && !operation.responses.responses.keys().any(|s| s.starts_with('2'));
    if gone {
        operation.deprecated = Some(utoipa::openapi::Deprecated::True);
    }
    let responses = &mut operation.responses.responses;
    for shared in SHARED.iter().filter(|s| (s.applies)(&shape)) {
        let status = shared.status.to_string();
        match responses.get_mut(&status) {
            Some(RefOr::T(response)) => {
                if !response.description.contains(shared.codes) {
                    response.description = if response.description.is_empty() {
                        shared.codes.to_string()
                    } else {
                        format!("{}; {}", response.description, shared.codes)
                    };
                }
            }
            Some(RefOr::Ref(_)) => {}
            None => {
                responses.insert(status, ResponseBuilder::new().description(shared.codes).into());
            }
        }
    }
    for (status, response) in responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if status.starts_with('4') || status.starts_with('5') {
            // Every error is a problem, whatever the handler's annotation said.
            response.content.clear();
            response.content.insert(
                PROBLEM_JSON.to_string(),
                RefOr::T(Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    "Problem",
                ))))),
            );
            let retry = matches!(status.as_str(), "429" | "503");
            if retry {
                response.headers.insert(
                    "Retry-After".to_string(),
                    RefOr::T(
                        HeaderBuilder::new()
                            .schema(Some(
                                ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)),
                            ))
                            .description(Some("Seconds after which a retry may succeed"))
                            .build(),
                    ),
                );
            }
            if status == "410" {
                response.headers.insert(
                    "Location".to_string(),
                    RefOr::T(
                        HeaderBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .description(Some("Where the resource now is"))
                            .build(),
                    ),
                );
            }
        } else if status.starts_with('2') && response.content.is_empty() {
            // A handler that names no content answers a JSON object (`Json<Value>`).
            response.content.insert(
                "application/json".to_string(),
                RefOr::T(Content::new(Some(ObjectBuilder::new().schema_type(Type::Object)))),
            );
        }
    }
}

/// Schemas of parameters that are checked by a function rather than parsed into a type: each
/// from the same constant the check uses.
macro_rules! parameter_schema {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $schema:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $ty;
        impl utoipa::PartialSchema for $ty {
            fn schema() -> RefOr<utoipa::openapi::Schema> {
                $schema.into()
            }
        }
        impl utoipa::ToSchema for $ty {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed($name)
            }
        }
    };
}

parameter_schema!(
    /// A policy year (`extract::policy_year`).
    PolicyYear,
    "PolicyYear",
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int32
        )))
        .minimum(Some(*crate::commands::setup::POLICY_YEARS.start()))
        .maximum(Some(*crate::commands::setup::POLICY_YEARS.end()))
        .examples([2024])
        .description(Some("A policy year"))
);

parameter_schema!(
    /// A month `YYYY-MM` (`commands::periods::Month::parse`).
    MonthText,
    "Month",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(crate::commands::periods::Month::PATTERN))
        .examples(["2024-11"])
        .description(Some("A calendar month, YYYY-MM"))
);

parameter_schema!(
    /// A file's bytes (the XLSX report).
    Binary,
    "Binary",
    ObjectBuilder::new().schema_type(Type::String).format(Some(
        utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Binary)
    ))
);

parameter_schema!(
    /// An application's status (`projections::applications::Status`).
    ApplicationStatus,
    "ApplicationStatus",
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(projections::applications::Status::ALL.map(|s| s.as_str())))
        .description(Some("An application's status"))
);

parameter_schema!(
    /// `as_of` of a quota: an RFC 3339 time or a date (`routes::setup::as_of_time`).
    AsOf,
    "AsOf",
    utoipa::openapi::schema::AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::DateTime
                )))
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                    utoipa::openapi::KnownFormat::Date
                )))
        )
        .description(Some(
            "An RFC 3339 time (2024-12-31T16:00:00Z) or a date (2024-12-31, its end in Asia/Shanghai), of the years 1 to 9999"
        ))
);
