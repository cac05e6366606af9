//! `docs/openapi.json` checked against the live server: every documented route answers with
//! a documented status, and every JSON answer has the required keys (and types) of its
//! documented schema. A small checker in Rust over serde_json, enough for the subset of
//! OpenAPI the document uses ($ref, allOf, oneOf, nullable, type, required, enum, items).
mod common;

use std::io::{BufRead, BufReader};

use common::{Manager, WAIT, client, sh};
use serde_json::{Value, json};

fn doc() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("openapi.json is JSON")
}

/// Follows a local `$ref`.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("local $ref");
            resolve(
                root,
                root.pointer(pointer)
                    .unwrap_or_else(|| panic!("dangling {r}")),
            )
        }
        None => schema,
    }
}

/// Checks `v` against `schema`; the first mismatch, with its JSON path.
fn check(root: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(root, schema);
    if v.is_null() && schema["nullable"] == true {
        return Ok(());
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(root, s, v, at)?;
        }
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let fits = one.iter().filter(|s| check(root, s, v, at).is_ok()).count();
        if fits != 1 {
            return Err(format!("{at}: fits {fits} of the oneOf schemas: {v}"));
        }
    }
    if let Some(choices) = schema.get("enum").and_then(Value::as_array)
        && !choices.contains(v)
    {
        return Err(format!("{at}: {v} not in {choices:?}"));
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        Some(t) => return Err(format!("{at}: unknown type {t}")),
    };
    if !ok {
        return Err(format!("{at}: expected {}, got {v}", schema["type"]));
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for k in required {
            let k = k.as_str().unwrap();
            if v.get(k).is_none() {
                return Err(format!("{at}: missing required key {k:?} in {v}"));
            }
        }
    }
    if let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        v.as_object(),
    ) {
        for (k, s) in props {
            if let Some(x) = obj.get(k) {
                check(root, s, x, &format!("{at}.{k}"))?;
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, x) in arr.iter().enumerate() {
            check(root, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Sends `method path` and checks the answer against the operation's documented responses.
/// Returns the status.
fn exercise(root: &Value, base: &str, method: &str, path: &str, template: &str) -> u16 {
    let op = &root["paths"][template][method];
    assert!(op.is_object(), "{method} {template} is not documented");
    let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    pymanager::tls::install_crypto_provider();
    let c = reqwest::blocking::Client::builder()
        .timeout(WAIT)
        .build()
        .unwrap();
    let r = c.request(m, format!("{base}{path}")).send().unwrap();
    let status = r.status().as_u16();
    let what = format!("{method} {path} -> {status}");
    let documented = &op["responses"][status.to_string()];
    assert!(documented.is_object(), "{what}: status not documented");
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let media = ctype.split(';').next().unwrap().trim().to_string();
    let content = &documented["content"][&media];
    assert!(
        content.is_object(),
        "{what}: content type {ctype} not documented"
    );
    let schema = &content["schema"];
    match media.as_str() {
        "application/json" => {
            let v: Value = r.json().unwrap();
            check(root, schema, &v, "$").unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        "text/event-stream" => {
            // The first event is enough: the stream never ends while the manager runs.
            let line = BufReader::new(r)
                .lines()
                .map(Result::unwrap)
                .find_map(|l| l.strip_prefix("data: ").map(String::from))
                .expect("an event");
            let v: Value = serde_json::from_str(&line).unwrap();
            check(root, schema, &v, "$").unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        _ => {
            let text = r.text().unwrap();
            check(root, schema, &Value::String(text), "$")
                .unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
    status
}

#[test]
fn the_description_is_served_and_every_route_answers_as_documented() {
    let root = doc();
    assert_eq!(root["openapi"], "3.0.3");
    let m = Manager::start(json!({
        "http": {"enabled": true},
        "keep-alive": true,
        "graceful_time": 3,
        "processes": {
            "web": sh("echo hello; exec sleep 100"),
            "job": sh("exit 2"),
            // Ignores SIGTERM: holds the shutdown open long enough to see it refuse things.
            "hold": sh("trap '' TERM; while :; do sleep 1; done"),
        }
    }));
    m.wait_status("running");
    let base = m.url();

    let served: Value = client()
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(served, root, "the served description is docs/openapi.json");

    // Every documented GET, with path parameters naming a process that exists.
    let paths = root["paths"].as_object().unwrap();
    for (template, item) in paths {
        if item.get("get").is_some() {
            let path = template.replace("{ref}", "1").replace("{id}", "1");
            assert_eq!(
                exercise(&root, &base, "get", &path, template),
                200,
                "GET {path}"
            );
        }
    }
    // The documented errors: an unknown process, a bad id, a bad query.
    assert_eq!(
        exercise(
            &root,
            &base,
            "get",
            "/api/v1/processes/ghost",
            "/api/v1/processes/{ref}"
        ),
        404
    );
    assert_eq!(
        exercise(&root, &base, "post", "/restart/x", "/restart/{id}"),
        400
    );
    assert_eq!(
        exercise(&root, &base, "post", "/restart/9", "/restart/{id}"),
        404
    );
    assert_eq!(
        exercise(
            &root,
            &base,
            "get",
            "/api/v1/processes/1/logs?lines=x",
            "/api/v1/processes/{ref}/logs"
        ),
        400
    );
    // The commands, each on a process that exists.
    for verb in ["stop", "start", "restart"] {
        let template = format!("/api/v1/processes/{{ref}}/{verb}");
        assert_eq!(
            exercise(
                &root,
                &base,
                "post",
                &format!("/api/v1/processes/web/{verb}"),
                &template
            ),
            200
        );
        assert_eq!(
            exercise(
                &root,
                &base,
                "post",
                &format!("/api/v1/processes/ghost/{verb}"),
                &template
            ),
            404
        );
    }
    assert_eq!(
        exercise(&root, &base, "post", "/restart/1", "/restart/{id}"),
        200
    );
    // Last: the shutdown, and what is refused once it has begun.
    assert_eq!(
        exercise(&root, &base, "post", "/api/v1/shutdown", "/api/v1/shutdown"),
        202
    );
    assert_eq!(exercise(&root, &base, "delete", "/", "/"), 403);
}

#[test]
fn every_route_the_server_has_is_documented() {
    let root = doc();
    let mut documented = Vec::new();
    for (path, item) in root["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut served: Vec<(String, String)> = pymanager::api::routes::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    // Every operation documents the error body for its errors.
    for (method, path) in &documented {
        let responses = root["paths"][path][method]["responses"]
            .as_object()
            .unwrap();
        for (status, r) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{method} {path} {status}"
                );
            }
        }
    }
}
