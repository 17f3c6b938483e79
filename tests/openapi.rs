//! The committed OpenAPI documents (openapi/openapi.json for the public OGC API,
//! openapi/admin.json for the admin API) are valid OpenAPI 3.0, each checked without Node.js: against the OpenAPI Initiative's JSON Schema for 3.0 (vendored as
//! tests/fixtures/openapi-3.0-schema.json, the 2021-09-28 edition, Apache-2.0), then parsed
//! into typed OpenAPI structures (openapiv3), then the rules a schema cannot express (every
//! `$ref` resolves, path templates and path parameters agree, operationIds are unique,
//! parameters are not repeated). tests/features.rs checks that the committed document is the
//! one the server serves. The admin document is also held to the server's routes: every
//! (method, path) it documents is answered by a `hamn serve`, and no other method on its paths.

mod common;

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

/// The committed documents, each checked by the same rules.
const DOCUMENTS: [&str; 2] = ["openapi/openapi.json", "openapi/admin.json"];

#[test]
fn the_committed_documents_are_valid_openapi_3_0() {
    for file in DOCUMENTS {
        let doc = repo_file(file);
        let found = problems(&doc);
        assert!(
            found.is_empty(),
            "{file} is not valid OpenAPI 3.0:\n{}",
            found.join("\n")
        );
        assert!(
            doc["paths"].as_object().is_some_and(|p| p.len() > 10),
            "{file}: too few paths"
        );
    }
}

/// The validator is not a rubber stamp: each kind of fault in an otherwise valid document is
/// found, and named (in each committed document).
#[test]
fn each_kind_of_fault_is_found() {
    for file in DOCUMENTS {
        faults_are_found(file);
    }
}

fn faults_are_found(file: &str) {
    let doc = repo_file(file);
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
            "{file}: fault {i} ({expected}) not found: {found:?}"
        );
    }
}

/// The (method, path) pairs a document describes, methods upper-case.
fn documented(doc: &Json) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in METHODS {
            if item[method].is_object() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The paths `admin::configure` registers, read from its source: each is a
/// `methods("/admin…", "ALLOW")` call.
fn admin_paths_in_source() -> BTreeSet<String> {
    let src = std::fs::read_to_string(common::repo().join("src/api/admin.rs")).expect("admin.rs");
    let configure = src
        .split_once("pub fn configure(")
        .map(|(_, rest)| rest)
        .expect("admin::configure");
    configure
        .split("methods(")
        .skip(1)
        .filter_map(|call| {
            let path = call.trim_start().strip_prefix('"')?.split_once('"')?.0;
            path.starts_with("/admin").then(|| path.to_string())
        })
        .collect()
}

/// A path with its parameters filled in from their examples in the document.
fn concrete(doc: &Json, path: &str) -> String {
    let mut out = path.to_string();
    for p in doc["paths"][path]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let p = deref(doc, p);
        let name = p["name"].as_str().expect("parameter name");
        let example = p["example"]
            .as_str()
            .expect("a path parameter has an example");
        out = out.replace(&format!("{{{name}}}"), example);
    }
    assert!(
        !out.contains('{'),
        "{path}: a path parameter without example"
    );
    out
}

/// Status and response of a request with no body, 4xx/5xx included.
fn send(method: &str, url: &str, token: Option<&str>) -> ureq::Response {
    let mut req = ureq::request(method, url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// The admin document and the server agree on routes: the paths are the ones `configure`
/// registers; every documented operation is answered (401 without a token, 200 for the two
/// public ones), never 404 or 405; every other method on a documented path is 405, with an
/// Allow header that lists exactly the documented methods (and HEAD with GET, and OPTIONS).
#[test]
fn the_admin_document_lists_the_routes_the_server_has() {
    let doc = repo_file("openapi/admin.json");
    let ops = documented(&doc);
    let paths: BTreeSet<String> = ops.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(
        paths,
        admin_paths_in_source(),
        "paths in openapi/admin.json (left) and in admin::configure (right)"
    );

    let (server, _dir, token) = common::admin_server(&[]);
    let public: BTreeSet<(String, String)> = [("GET", "/admin"), ("GET", "/admin/api")]
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    for (method, path) in &ops {
        let public_op = public.contains(&(method.clone(), path.clone()));
        assert_eq!(
            doc["paths"][path][method.to_lowercase()]["security"] == json!([]),
            public_op,
            "{method} {path}: only the page and the document are documented without security"
        );
        let url = format!("{}{}", server.base, concrete(&doc, path));
        let want = if public_op { 200 } else { 401 };
        let resp = send(method, &url, None);
        assert_eq!(resp.status(), want, "{method} {path} without a token");
        if want == 401 {
            assert!(resp.header("WWW-Authenticate").is_some(), "{method} {path}");
        }
    }
    for path in &paths {
        let url = format!("{}{}", server.base, concrete(&doc, path));
        let mut allowed: BTreeSet<String> = ops
            .iter()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| m.clone())
            .collect();
        if allowed.contains("GET") {
            allowed.insert("HEAD".into());
        }
        allowed.insert("OPTIONS".into());
        for method in ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] {
            let resp = send(method, &url, None);
            let status = resp.status();
            let allow: BTreeSet<String> = resp
                .header("Allow")
                .unwrap_or("")
                .split(',')
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty())
                .collect();
            if method == "OPTIONS" {
                assert_eq!((status, &allow), (204, &allowed), "OPTIONS {path}");
            } else if allowed.contains(method) {
                // HEAD is answered as GET is (not documented apart).
                assert!(![404, 405].contains(&status), "{method} {path}: {status}");
            } else {
                assert_eq!((status, &allow), (405, &allowed), "{method} {path}");
            }
        }
    }
    // With the token: HEAD is answered like GET, and `limit` is read as a number (both were
    // refused once: HEAD with 405 despite its Allow header, limit=10 with 400).
    let whoami = send(
        "HEAD",
        &format!("{}/admin/whoami", server.base),
        Some(&token),
    );
    assert_eq!(whoami.status(), 200);
    let jobs = send(
        "GET",
        &format!("{}/admin/jobs?limit=10", server.base),
        Some(&token),
    );
    assert_eq!(jobs.status(), 200);
    let bad = send(
        "GET",
        &format!("{}/admin/jobs?limit=ten", server.base),
        Some(&token),
    );
    assert_eq!(bad.status(), 400);
}
