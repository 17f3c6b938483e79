//! The committed OpenAPI document (openapi/openapi.json) is valid OpenAPI 3.0, checked without
//! Node.js: against the OpenAPI Initiative's JSON Schema for 3.0 (vendored as
//! tests/fixtures/openapi-3.0-schema.json, the 2021-09-28 edition, Apache-2.0), then parsed
//! into typed OpenAPI structures (openapiv3), then the rules a schema cannot express (every
//! `$ref` resolves, path templates and path parameters agree, operationIds are unique,
//! parameters are not repeated). tests/features.rs checks that the committed document is the
//! one the server serves.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use serde_json::{json, Value as Json};

fn repo_file(path: &str) -> Json {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every problem found in `doc`, as "where: what"; empty when it is valid OpenAPI 3.0.
fn problems(doc: &Json) -> Vec<String> {
    let schema = repo_file("tests/fixtures/openapi-3.0-schema.json");
    let validator = jsonschema::draft4::new(&schema).expect("the OpenAPI 3.0 schema compiles");
    let mut out: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("schema at {}: {e}", e.instance_path()))
        .collect();
    if !out.is_empty() {
        return out;
    }
    if let Err(e) = serde_json::from_value::<openapiv3::OpenAPI>(doc.clone()) {
        out.push(format!("openapiv3: {e}"));
    }
    refs_resolve(doc, doc, "#", &mut out);
    operations(doc, &mut out);
    out
}

/// Every `$ref` is a local JSON pointer that names something in the document.
fn refs_resolve(root: &Json, node: &Json, at: &str, out: &mut Vec<String>) {
    match node {
        Json::Object(map) => {
            if let Some(r) = map.get("$ref") {
                match r.as_str().and_then(|r| r.strip_prefix('#')) {
                    Some(pointer) if root.pointer(pointer).is_some() => {}
                    _ => out.push(format!("{at}: $ref {r} does not resolve")),
                }
            }
            for (k, v) in map {
                refs_resolve(root, v, &format!("{at}/{k}"), out);
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs_resolve(root, v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A parameter object, following one `$ref` to components.
fn deref<'a>(root: &'a Json, p: &'a Json) -> &'a Json {
    match p["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => root.pointer(pointer).unwrap_or(p),
        None => p,
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn operations(root: &Json, out: &mut Vec<String>) {
    let mut operation_ids = HashSet::new();
    let Some(paths) = root["paths"].as_object() else {
        return;
    };
    for (path, item) in paths {
        let templated: BTreeSet<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split_once('}').map(|(name, _)| name))
            .collect();
        let shared = item["parameters"].as_array().cloned().unwrap_or_default();
        for method in METHODS {
            let op = &item[method];
            if op.is_null() {
                continue;
            }
            let at = format!("{method} {path}");
            if let Some(id) = op["operationId"].as_str() {
                if !operation_ids.insert(id.to_string()) {
                    out.push(format!("{at}: operationId {id} is used twice"));
                }
            }
            // Operation parameters override path-level ones with the same name and location.
            let mut seen = HashSet::new();
            let mut params = Vec::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let p = deref(root, p);
                let key = (p["name"].as_str(), p["in"].as_str());
                if !seen.insert(key) {
                    out.push(format!("{at}: parameter {key:?} is listed twice"));
                }
                params.push(p);
            }
            for p in &shared {
                let p = deref(root, p);
                if seen.insert((p["name"].as_str(), p["in"].as_str())) {
                    params.push(p);
                }
            }
            let in_path: BTreeSet<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str())
                .collect();
            if in_path != templated {
                out.push(format!(
                    "{at}: path template names {templated:?}, path parameters {in_path:?}"
                ));
            }
            for p in params.iter().filter(|p| p["in"] == "path") {
                if p["required"] != true {
                    out.push(format!(
                        "{at}: path parameter {} is not required",
                        p["name"]
                    ));
                }
            }
        }
    }
}

#[test]
fn the_committed_document_is_valid_openapi_3_0() {
    let doc = repo_file("openapi/openapi.json");
    let found = problems(&doc);
    assert!(
        found.is_empty(),
        "openapi/openapi.json is not valid OpenAPI 3.0:\n{}",
        found.join("\n")
    );
    assert!(doc["paths"].as_object().is_some_and(|p| p.len() > 10));
}

/// The validator is not a rubber stamp: each kind of fault in an otherwise valid document is
/// found, and named.
#[test]
fn each_kind_of_fault_is_found() {
    let doc = repo_file("openapi/openapi.json");
    let (path, item) = doc["paths"]
        .as_object()
        .and_then(|p| {
            p.iter()
                .find(|(k, v)| k.contains('{') && v["get"].is_object())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .expect("a templated path with GET");

    type Damage = Box<dyn Fn(&mut Json)>;
    let broken: Vec<(&str, Damage)> = vec![
        ("schema", Box::new(|d| d["openapi"] = json!("2.0"))),
        (
            "schema",
            Box::new(|d| d["info"] = json!({"title": "no version"})),
        ),
        (
            "schema",
            Box::new(|d| {
                d["paths"]["/x"] = json!({"get": {"responses": {"200": {"description": "ok"}},
                    "parameters": [{"name": "q", "in": "body"}]}})
            }),
        ),
        (
            "does not resolve",
            Box::new(|d| {
                d["paths"]["/x"] = json!({"get": {"responses": {"200": {"$ref": "#/components/responses/Nowhere"}}}})
            }),
        ),
        (
            "path template names",
            Box::new(move |d| {
                let mut undeclared = item.clone();
                undeclared["parameters"] = json!([]);
                undeclared["get"]["parameters"] = json!([]);
                d["paths"][format!("{path}/extra")] = undeclared;
            }),
        ),
        (
            "used twice",
            Box::new(|d| {
                let first = d["paths"]
                    .as_object()
                    .and_then(|p| p.values().find_map(|v| v["get"]["operationId"].as_str()))
                    .expect("an operationId")
                    .to_string();
                d["paths"]["/x"] = json!({"get": {"operationId": first, "responses": {"200": {"description": "ok"}}}});
            }),
        ),
        (
            "listed twice",
            Box::new(|d| {
                // Not identical (the schema's uniqueItems would catch that), but the same name and place.
                let p = json!({"name": "q", "in": "query", "schema": {"type": "string"}});
                let mut q = p.clone();
                q["description"] = json!("again");
                d["paths"]["/x"] = json!({"get": {"parameters": [p, q], "responses": {"200": {"description": "ok"}}}});
            }),
        ),
    ];
    for (i, (expected, damage)) in broken.iter().enumerate() {
        let mut d = doc.clone();
        damage(&mut d);
        let found = problems(&d);
        assert!(
            found.iter().any(|p| p.contains(expected)),
            "fault {i} ({expected}) not found: {found:?}"
        );
    }
}
