//! Request checkers: GitHub's published OpenAPI description (npm `@octokit/openapi`,
//! installed by `tests/tools/install.sh`) and GitLab's documented attribute table
//! (`tests/fixtures/gitlab/commit-status-api.json`). Nothing here encodes what stackci
//! sends: the expectations come from those documents.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;

use super::server::Recorded;

/// Where `tests/tools/install.sh` put the tools.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("STACKCI_TEST_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-tools"))
}

fn tool(rel: &str) -> PathBuf {
    let path = tools_dir().join(rel);
    assert!(
        path.exists(),
        "{} is missing: run tests/tools/install.sh (it installs the pinned @octokit/openapi and junitparser)",
        path.display()
    );
    path
}

/// The virtualenv's Python, with junitparser.
pub fn python() -> PathBuf {
    tool("venv/bin/python")
}

fn load(rel: &str) -> Value {
    let path = tool(rel);
    let text = std::fs::read_to_string(&path).expect("reading the OpenAPI description");
    serde_json::from_str(&text).expect("parsing the OpenAPI description")
}

/// GitHub's description of api.github.com.
pub fn github_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("npm/node_modules/@octokit/openapi/generated/api.github.com.json"))
}

/// GitHub's description of GitHub Enterprise Server 3.19.
pub fn ghes_spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| load("npm/node_modules/@octokit/openapi/generated/ghes-3.19.json"))
}

/// GitLab's documented attribute table of another endpoint, by fixture file name
/// (`trigger-pipeline-api.json`, `get-pipeline-api.json`).
pub fn gitlab_endpoint(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gitlab")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// GitLab's documented commit status attributes.
pub fn gitlab_fixture() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gitlab/commit-status-api.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let target = spec
                .pointer(r.strip_prefix('#').expect("local $ref"))
                .unwrap_or_else(|| panic!("dangling $ref {r}"));
            resolve(spec, target)
        }
        None => v,
    }
}

/// Matches a concrete path against an OpenAPI path template; returns the path parameters
/// and the number of literal segments (more literals = more specific).
fn match_template(template: &str, path: &str) -> Option<(BTreeMap<String, String>, usize)> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut params = BTreeMap::new();
    let mut literals = 0;
    for (ts, ps) in t.iter().zip(&p) {
        if let Some(name) = ts.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if ps.is_empty() {
                return None;
            }
            params.insert(name.to_string(), ps.to_string());
        } else if ts == ps {
            literals += 1;
        } else {
            return None;
        }
    }
    Some((params, literals))
}

/// Checks a JSON value against a schema: `type` (with `nullable`), `enum`, `maxLength`,
/// `minLength`, `required`, `properties` (properties the schema does not define are
/// reported too: stackci must send only documented fields), `items`, `anyOf`/`oneOf`.
fn check_schema(spec: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = resolve(spec, schema);
    if value.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let ok = alts.iter().any(|alt| {
                let mut p = Vec::new();
                check_schema(spec, alt, value, at, &mut p);
                p.is_empty()
            });
            if !ok {
                problems.push(format!("{at}: matches none of {key}"));
            }
            return;
        }
    }
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let ok = match ty {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "null" => value.is_null(),
            other => panic!("schema type {other} not handled by the checker"),
        };
        if !ok {
            problems.push(format!("{at}: expected {ty}, got {value}"));
            return;
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {values:?}"));
    }
    if let Some(s) = value.as_str() {
        let n = s.chars().count() as u64;
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && n > max
        {
            problems.push(format!("{at}: {n} characters, maxLength is {max}"));
        }
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && n < min
        {
            problems.push(format!("{at}: {n} characters, minLength is {min}"));
        }
    }
    if let Some(obj) = value.as_object() {
        for req in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let req = req.as_str().unwrap();
            if !obj.contains_key(req) {
                problems.push(format!("{at}: required property {req:?} missing"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, v) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check_schema(spec, s, v, &format!("{at}.{k}"), problems),
                None => problems.push(format!("{at}: property {k:?} is not in the schema")),
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            check_schema(spec, items, v, &format!("{at}[{i}]"), problems);
        }
    }
}

/// What the OpenAPI check found for one request.
pub struct OpenApiCheck {
    /// The matched operation's `operationId`.
    pub operation_id: String,
    /// Everything the request does that the description does not allow.
    pub problems: Vec<String>,
}

/// Checks a recorded request against an OpenAPI description: path template and method,
/// path/query parameters, the request body against the operation's schema, and GitHub's
/// documented request requirements (a `User-Agent`; a bearer/token `Authorization`).
/// `base_path` is the server's path prefix (`""` for api.github.com, `/api/v3` for GHES).
pub fn check_openapi(spec: &Value, base_path: &str, req: &Recorded) -> OpenApiCheck {
    let mut problems = Vec::new();
    let Some(path) = req.path.strip_prefix(base_path) else {
        return OpenApiCheck {
            operation_id: String::new(),
            problems: vec![format!("{} is not under the API base {base_path}", req.path)],
        };
    };
    let paths = spec["paths"].as_object().expect("paths");
    let best = paths
        .iter()
        .filter_map(|(t, item)| match_template(t, path).map(|(p, n)| (t, item, p, n)))
        .filter(|(_, item, _, _)| item.get(req.method.to_ascii_lowercase()).is_some())
        .max_by_key(|(_, _, _, n)| *n);
    let Some((template, item, params, _)) = best else {
        return OpenApiCheck {
            operation_id: String::new(),
            problems: vec![format!("no operation for {} {path}", req.method)],
        };
    };
    let op = &item[req.method.to_ascii_lowercase()];
    let query: BTreeMap<String, String> = url_pairs(&req.query);
    let declared: Vec<&Value> = item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(op.get("parameters").and_then(Value::as_array).into_iter().flatten())
        .map(|p| resolve(spec, p))
        .collect();
    for p in &declared {
        let name = p["name"].as_str().unwrap();
        let required = p.get("required") == Some(&Value::Bool(true));
        let value = match p["in"].as_str().unwrap() {
            "path" => params.get(name),
            "query" => query.get(name),
            _ => continue,
        };
        match value {
            None if required => problems.push(format!("{template}: parameter {name} missing")),
            None => {}
            Some(v) => {
                let schema = &p["schema"];
                let as_json = if resolve(spec, schema).get("type") == Some(&Value::from("integer")) {
                    v.parse::<i64>().map(Value::from).unwrap_or(Value::from(v.as_str()))
                } else {
                    Value::from(v.as_str())
                };
                check_schema(spec, schema, &as_json, &format!("parameter {name}"), &mut problems);
            }
        }
    }
    for k in query.keys() {
        if !declared.iter().any(|p| p["in"] == "query" && p["name"] == k.as_str()) {
            problems.push(format!("query parameter {k} is not declared"));
        }
    }
    match op.get("requestBody").map(|b| resolve(spec, b)) {
        Some(rb) => {
            if req.body.is_empty() {
                if rb.get("required") == Some(&Value::Bool(true)) {
                    problems.push("request body required but empty".into());
                }
            } else {
                let ct = req.header("content-type").unwrap_or("");
                let media = ct.split(';').next().unwrap_or("").trim();
                match rb["content"].get(media) {
                    None => problems.push(format!("content type {ct:?} not accepted")),
                    Some(m) => match serde_json::from_slice::<Value>(&req.body) {
                        Ok(body) => check_schema(spec, &m["schema"], &body, "body", &mut problems),
                        Err(e) => problems.push(format!("body is not JSON: {e}")),
                    },
                }
            }
        }
        None if !req.body.is_empty() => problems.push("operation takes no body".into()),
        None => {}
    }
    // https://docs.github.com/rest/using-the-rest-api/getting-started-with-the-rest-api
    if req.header("user-agent").is_none_or(str::is_empty) {
        problems.push("no User-Agent header (GitHub rejects such requests)".into());
    }
    let auth = req.header("authorization").unwrap_or("");
    if !(auth.starts_with("Bearer ") || auth.starts_with("token ")) {
        problems.push("no bearer/token Authorization header".into());
    }
    OpenApiCheck {
        operation_id: op["operationId"].as_str().unwrap_or("").to_string(),
        problems,
    }
}

/// `a=1&b=x%20y` decoded into pairs (`+` is a space).
pub fn url_pairs(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).expect("percent escape"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("UTF-8 query")
}

/// Checks a recorded request against GitLab's documented attribute table: method, path
/// `/projects/:id/statuses/:sha` under the API base, each attribute (from the query string
/// and the JSON or form body) known, of the documented type, within `enum` and
/// `max_length`, required ones present, and a credential header.
pub fn check_gitlab(fixture: &Value, api_base_path: &str, req: &Recorded) -> Vec<String> {
    let mut problems = Vec::new();
    if req.method != fixture["method"] {
        problems.push(format!("method {} instead of {}", req.method, fixture["method"]));
    }
    // `:name` path parameters become `{name}` template segments.
    let template = fixture["path"]
        .as_str()
        .unwrap()
        .split('/')
        .map(|seg| match seg.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => seg.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/");
    let mut attrs: BTreeMap<String, Value> = BTreeMap::new();
    match req
        .path
        .strip_prefix(api_base_path)
        .and_then(|p| match_template(&template, p))
    {
        None => problems.push(format!("{} does not match {api_base_path}{template}", req.path)),
        Some((params, _)) => {
            for (k, v) in params {
                attrs.insert(k, Value::from(percent_decode(&v)));
            }
        }
    }
    for (k, v) in url_pairs(&req.query) {
        attrs.insert(k, Value::from(v));
    }
    let ct = req.header("content-type").unwrap_or("");
    if !req.body.is_empty() {
        if ct.starts_with("application/json") {
            match serde_json::from_slice::<Value>(&req.body) {
                Ok(Value::Object(map)) => attrs.extend(map),
                other => problems.push(format!("JSON body is not an object: {other:?}")),
            }
        } else if ct.starts_with("application/x-www-form-urlencoded") {
            for (k, v) in url_pairs(std::str::from_utf8(&req.body).unwrap()) {
                attrs.insert(k, Value::from(v));
            }
        } else {
            problems.push(format!("unsupported content type {ct:?}"));
        }
    }
    let table = fixture["attributes"].as_array().unwrap();
    let find = |name: &str| {
        table.iter().find(|a| {
            a["name"] == name
                || a.get("aliases")
                    .and_then(Value::as_array)
                    .is_some_and(|al| al.iter().any(|x| x == name))
        })
    };
    for (k, v) in &attrs {
        let Some(a) = find(k) else {
            problems.push(format!("attribute {k} is not documented"));
            continue;
        };
        let ok = match a["type"].as_str().unwrap() {
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok()),
            "float" => v.is_number() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok()),
            "integer or string" => v.is_string() || v.is_i64() || v.is_u64(),
            "hash" => v.is_object() && v.as_object().unwrap().values().all(Value::is_string),
            other => panic!("type {other} not handled"),
        };
        if !ok {
            problems.push(format!("attribute {k}: {v} is not of type {}", a["type"]));
        }
        if let Some(values) = a.get("enum").and_then(Value::as_array)
            && !values.contains(v)
        {
            problems.push(format!("attribute {k}: {v} is not one of {values:?}"));
        }
        if let (Some(max), Some(s)) = (a.get("max_length").and_then(Value::as_u64), v.as_str())
            && s.chars().count() as u64 > max
        {
            problems.push(format!("attribute {k}: longer than {max} characters"));
        }
    }
    for a in table.iter().filter(|a| a["required"] == true) {
        let name = a["name"].as_str().unwrap();
        if !attrs.contains_key(name) {
            problems.push(format!("required attribute {name} missing"));
        }
    }
    let headers = fixture["auth_headers"].as_array().unwrap();
    let has_auth = headers.is_empty()
        || headers
            .iter()
            .any(|h| req.header(h.as_str().unwrap()).is_some_and(|v| !v.is_empty()));
    if !has_auth {
        problems.push("no credential header".into());
    }
    problems
}
