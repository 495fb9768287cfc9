//! The OpenAPI document as it is served: the rooms' operations, completed
//! with what the platform answers on every route (so the document says
//! exactly what is sent). Problems are `application/problem+json`; every
//! operation may fail with 500; one that needs a login with 401, one limited
//! to staff or administrators with 403, one with a path parameter with 404,
//! one with a body with 400, 413, 415 and 422, one with query parameters with
//! 422; a route that moves money requires the `Idempotency-Key` header and
//! may answer 400, 409 and 422 for it.

use serde_json::{json, Map, Value};
use yizhan_kit::authz::{Access, RouteRule};

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch"];
const PROBLEM_REF: &str = "#/components/schemas/Problem";

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": PROBLEM_REF}}}
    })
}

/// Complete the document (see the module's comment).
pub fn complete(mut doc: Value, rules: &[&RouteRule]) -> Value {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for (method, op) in item.iter_mut().filter(|(m, _)| METHODS.contains(&m.as_str())) {
            let rule = rules.iter().find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path);
            complete_operation(path, op, rule.copied());
        }
    }
    doc
}

fn complete_operation(path: &str, op: &mut Value, rule: Option<&RouteRule>) {
    let has_body = op.get("requestBody").is_some();
    let has_query = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|ps| ps.iter().any(|p| p.get("in").and_then(Value::as_str) == Some("query")));
    let access = rule.map_or(Access::Resident, |r| r.access);
    let idempotent = rule.is_some_and(|r| r.idempotent);
    if idempotent {
        let params = op.as_object_mut().map(|o| o.entry("parameters").or_insert_with(|| json!([])));
        if let Some(Value::Array(ps)) = params {
            ps.push(json!({
                "name": "Idempotency-Key",
                "in": "header",
                "required": true,
                "description": "A key of your choosing, new for each payment: a retry with the same key and body gets the first answer and moves no money again.",
                "schema": {"type": "string", "minLength": 1, "maxLength": yizhan_kit::extract::MAX_IDEMPOTENCY_KEY_CHARS, "pattern": "^[!-~]+$"}
            }));
        }
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { return };
    // A documented problem goes out as problem+json.
    for resp in responses.values_mut() {
        as_problem_json(resp);
    }
    let mut add = |code: &str, description: &str| {
        responses.entry(code.to_string()).or_insert_with(|| problem(description));
    };
    add("500", "Something went wrong on the server's side; nothing was changed that was not acknowledged.");
    add("503", "The server took longer than its time limit (request_timeout); a payment retried with its Idempotency-Key gets its answer.");
    if access != Access::Public {
        add("401", "No valid bearer token.");
    }
    if matches!(access, Access::OrgStaff | Access::OrgAdmin | Access::PlatformAdmin) {
        add("403", "The caller is not staff of the organisation, or not an administrator.");
    }
    if path.contains('{') {
        add("404", "What the path names does not exist.");
    }
    if has_body {
        add("400", "The body is not JSON.");
        add("413", "The body is larger than the limit.");
        add("415", "The body is not application/json.");
        add("422", "A field is missing, of the wrong type, unknown, or not acceptable.");
    }
    if has_query {
        add("422", "A query parameter is not acceptable.");
    }
    if idempotent {
        add("400", "The Idempotency-Key header is missing.");
        add("409", "A request with this Idempotency-Key is still being processed.");
        add("422", "This Idempotency-Key was used for a different request.");
    }
}

fn as_problem_json(resp: &mut Value) {
    let Some(content) = resp.get_mut("content").and_then(Value::as_object_mut) else { return };
    let is_problem = content
        .get("application/json")
        .and_then(|c| c.pointer("/schema/$ref"))
        .and_then(Value::as_str)
        .is_some_and(|r| r == PROBLEM_REF);
    if is_problem {
        if let Some(v) = content.remove("application/json") {
            content.insert("application/problem+json".to_string(), v);
        }
    }
}

/// Every operation of a document: ("METHOD", path).
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    let empty = Map::new();
    let paths = doc.get("paths").and_then(Value::as_object).unwrap_or(&empty);
    let mut out = Vec::new();
    for (path, item) in paths {
        if let Some(item) = item.as_object() {
            for m in item.keys().filter(|m| METHODS.contains(&m.as_str())) {
                out.push((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}
