//! The OpenAPI document, read as a generated client reads it (no server, no database): every
//! operation lists the errors it can answer as `application/problem+json`, the public routes
//! need no token, identifiers and money carry their parsers' patterns and the code's bounds,
//! and an application body is a tagged union with one schema per program.

use serde_json::Value;

fn document() -> Value {
    serde_json::to_value(fundledger::http::openapi_document()).expect("the document serialises")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];
const PUBLIC: [&str; 3] = ["/healthz", "/readyz", "/openapi.json"];

/// Every (method, path, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    assert!(out.len() > 30, "the document lists the routes");
    out
}

/// The schema a `$ref` names (one level).
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").expect("a component");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn parameter<'a>(op: &'a Value, name: &str) -> Option<&'a Value> {
    op["parameters"].as_array()?.iter().find(|p| p["name"] == name)
}

#[test]
fn every_operation_documents_its_errors_as_problem_json() {
    let doc = document();
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().expect("responses");
        let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
        let errors: Vec<&str> =
            statuses.iter().copied().filter(|s| s.starts_with('4') || s.starts_with('5')).collect();
        assert!(!errors.is_empty(), "{method} {path} documents no error");
        for status in &errors {
            assert!(status.parse::<u16>().is_ok(), "{method} {path}: {status} is a range");
            let content = responses[*status]["content"].as_object().expect("content");
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/problem+json"],
                "{method} {path} {status}"
            );
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
        }
        // What every route's layers can answer: a fault, the timeout.
        for status in ["500", "503"] {
            assert!(statuses.contains(&status), "{method} {path} lacks {status}");
        }
        let public = PUBLIC.contains(&path.as_str()) || path.starts_with("/v1/persons/{");
        if !public {
            for status in ["401", "403", "429"] {
                assert!(statuses.contains(&status), "{method} {path} lacks {status}");
            }
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(statuses.contains(&status), "{method} {path} lacks {status}");
            }
        }
        for status in ["429", "503"] {
            if statuses.contains(&status) {
                assert!(
                    responses[status]["headers"].get("Retry-After").is_some(),
                    "{method} {path} {status} without Retry-After"
                );
            }
        }
        let money_moves = fundledger::http::extract::idempotency_required(&path);
        if method == "POST" && money_moves {
            assert!(statuses.contains(&"428"), "{method} {path} lacks 428");
            let key = parameter(&op, "Idempotency-Key").expect("the key is a parameter");
            assert_eq!((&key["in"], &key["required"]), (&"header".into(), &true.into()));
        }
        if method == "POST" && !public {
            let key = parameter(&op, "Idempotency-Key").expect("every POST takes a key");
            assert_eq!(key["schema"]["maxLength"], 200, "{path}");
        }
        // Every success names what it answers in.
        for (status, response) in responses.iter().filter(|(s, _)| s.starts_with('2')) {
            let content = response["content"].as_object();
            assert!(content.is_some_and(|c| !c.is_empty()), "{method} {path} {status}");
        }
    }
}

/// Every `$ref` anywhere in `value`.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

#[test]
fn every_reference_names_a_schema_of_the_document() {
    let doc = document();
    let mut refs = Vec::new();
    references(&doc, &mut refs);
    assert!(refs.len() > 100);
    for r in refs {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r}"));
        assert!(doc["components"]["schemas"].get(name).is_some(), "{r} names nothing");
    }
}

#[test]
fn public_routes_need_no_token_and_the_others_a_bearer_token() {
    let doc = document();
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (method, path, op) in operations(&doc) {
        let responses = op["responses"].as_object().unwrap();
        if PUBLIC.contains(&path.as_str()) {
            assert_eq!(op["security"], serde_json::json!([]), "{method} {path}");
            assert!(!responses.contains_key("401"), "{method} {path}");
            assert!(!responses.contains_key("403"), "{method} {path}");
        } else if path != "/v1/persons/{id_number}/subsidies" {
            // Inherits the document's bearer requirement.
            assert!(op.get("security").is_none(), "{method} {path} overrides security");
        }
    }
    let spending = &doc["paths"]["/v1/reports/spending"]["get"]["responses"]["200"]["content"];
    for content_type in [
        "application/json",
        "text/csv",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ] {
        assert!(spending.get(content_type).is_some(), "spending in {content_type}");
    }
    let live = &doc["paths"]["/v1/events/live"]["get"]["responses"]["200"]["content"];
    assert!(live.get("text/event-stream").is_some());
    let import = &doc["paths"]["/v1/settlements/import"]["post"]["requestBody"]["content"];
    assert!(import.get("text/csv").is_some());
}

#[test]
fn identifiers_and_money_carry_their_parsers_patterns() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let patterns = [
        ("DivisionCode", policy::DivisionCode::PATTERN),
        ("IdNumber", policy::IdNumber::PATTERN),
        ("CreditCode", policy::CreditCode::PATTERN),
        ("OccupationCode", policy::OccupationCode::PATTERN),
        ("Money", policy::Money::PATTERN),
        ("Amount", policy::Amount::PATTERN),
        ("Ratio", policy::Ratio::PATTERN),
        ("Month", fundledger::commands::periods::Month::PATTERN),
    ];
    for (name, pattern) in patterns {
        assert_eq!(schemas[name]["pattern"], pattern, "{name}");
        assert_eq!(schemas[name]["type"], "string", "{name}");
    }
    let years = fundledger::commands::setup::POLICY_YEARS;
    assert_eq!(schemas["PolicyYear"]["minimum"], *years.start());
    assert_eq!(schemas["PolicyYear"]["maximum"], *years.end());
    assert_eq!(
        (&schemas["Level"]["minimum"], &schemas["Level"]["maximum"]),
        (&1.into(), &5.into())
    );

    // Every field and parameter of these names, in every schema and operation, is one of them.
    let by_name = |name: &str| -> Option<&[&str]> {
        Some(match name {
            "pool" | "county" | "issued_by" => &["DivisionCode"],
            "id_number" => &["IdNumber"],
            "credit_code" => &["CreditCode"],
            "occupation_code" => &["OccupationCode"],
            "amount"
            | "paid_last_year"
            | "premiums_paid_last_year"
            | "rolling_balance"
            | "monthly_benefit_payments" => &["Money", "Amount"],
            "ratio" => &["Ratio"],
            "year" => &["PolicyYear"],
            "month" => &["Month"],
            "level" => &["Level"],
            _ => return None,
        })
    };
    let named = |schema: &Value| -> String {
        let schema = schema.get("oneOf").and_then(|o| o.get(0)).unwrap_or(schema);
        schema["$ref"]
            .as_str()
            .unwrap_or("(inline)")
            .trim_start_matches("#/components/schemas/")
            .to_string()
    };
    let mut checked = 0;
    for (component, schema) in schemas.as_object().unwrap() {
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            if let Some(allowed) = by_name(field) {
                let got = named(property);
                assert!(allowed.contains(&got.as_str()), "{component}.{field} is {got}");
                checked += 1;
            }
        }
    }
    for (method, path, op) in operations(&doc) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap();
            // The moved route's parameter is deliberately not read.
            if let (Some(allowed), false) = (by_name(name), path.starts_with("/v1/persons/")) {
                let got = named(&p["schema"]);
                assert!(allowed.contains(&got.as_str()), "{method} {path} {name} is {got}");
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "{checked} fields and parameters checked");
    for registered in ["NewPool", "NewCounty"] {
        assert_eq!(named(&schemas[registered]["properties"]["code"]), "DivisionCode");
    }

    // Limits as the code enforces them.
    let limit = |path: &str, name: &str| {
        let op = &doc["paths"][path]["get"];
        let p = parameter(op, name).unwrap_or_else(|| panic!("{path} {name}"));
        (p["schema"]["minimum"].clone(), p["schema"]["maximum"].clone())
    };
    use fundledger::http::routes::{applications, feed};
    assert_eq!(limit("/v1/applications", "limit"), (1.into(), applications::LIST_LIMIT_MAX.into()));
    assert_eq!(limit("/v1/events", "limit"), (1.into(), feed::FEED_LIMIT_MAX.into()));
    assert_eq!(limit("/v1/events/live", "limit"), (1.into(), feed::FEED_LIMIT_MAX.into()));
    assert_eq!(limit("/v1/events", "after"), (0.into(), Value::Null));
    let window = fundledger::audit::WINDOW_LIMIT_MAX;
    assert_eq!(limit("/v1/audit/verify", "limit"), (1.into(), window.into()));
    assert_eq!(limit("/v1/audit/verify", "from"), (1.into(), Value::Null));
    let batch = &schemas["Batch"]["properties"]["requests"];
    assert_eq!(
        (&batch["minItems"], &batch["maxItems"]),
        (&1.into(), &fundledger::http::routes::batch::BATCH_MAX.into())
    );
    let days = &schemas["NewNoticePeriod"]["properties"]["working_days"];
    let most = fundledger::commands::setup::NOTICE_WORKING_DAYS_MAX;
    assert_eq!((&days["minimum"], &days["maximum"]), (&1.into(), &most.into()));
}

#[test]
fn an_application_body_is_one_schema_per_program_tagged_by_program() {
    let doc = document();
    let body =
        &doc["paths"]["/v1/applications"]["post"]["requestBody"]["content"]["application/json"];
    let union = resolve(&doc, &body["schema"]);
    let one_of = union["oneOf"].as_array().expect("a oneOf");
    assert_eq!(union["discriminator"]["propertyName"], "program");
    let mapping = union["discriminator"]["mapping"].as_object().expect("a mapping");
    let mut programs: Vec<&str> = mapping.keys().map(String::as_str).collect();
    programs.sort_unstable();
    assert_eq!(
        programs,
        [
            "job_stabilization_refund",
            "on_the_job_training",
            "pilot_subsidy",
            "skill_upgrade",
            "vocational_training"
        ]
    );
    assert_eq!(one_of.len(), programs.len());
    for (program, reference) in mapping {
        assert!(one_of.iter().any(|s| s["$ref"] == *reference), "{program} is in the oneOf");
        let schema = resolve(&doc, &serde_json::json!({ "$ref": reference })).clone();
        assert_eq!(schema["properties"]["program"]["enum"], serde_json::json!([program]));
        let required = schema["required"].as_array().unwrap();
        for field in ["program", "county", "submitted_on"] {
            assert!(required.contains(&field.into()), "{program} requires {field}");
        }
        assert_eq!(schema["additionalProperties"], false, "{program} refuses unknown fields");
    }
    // The fields that tell the programs apart are required where they belong.
    let required_of = |program: &str| -> Vec<String> {
        let reference = mapping[program].clone();
        let schema = resolve(&doc, &serde_json::json!({ "$ref": reference })).clone();
        serde_json::from_value(schema["required"].clone()).unwrap()
    };
    assert!(required_of("skill_upgrade").contains(&"certificate".to_string()));
    assert!(required_of("vocational_training").contains(&"training".to_string()));
    assert!(required_of("job_stabilization_refund").contains(&"enterprise".to_string()));
    assert!(required_of("on_the_job_training").contains(&"trainees".to_string()));
    assert!(required_of("pilot_subsidy").contains(&"beneficiary".to_string()));
    // A settlement is settled with a reference or failed with a reason, nothing in between.
    let settlement = &doc["paths"]["/v1/payouts/{id}/settlement"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_eq!(resolve(&doc, settlement)["oneOf"].as_array().map(Vec::len), Some(2));
}
