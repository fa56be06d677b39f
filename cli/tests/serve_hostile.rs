//! Every hostile input docs/server.md lists, sent to a real server as raw HTTP, with the
//! answer it must get (status, and the field named). `SMARTRETRY_PRINT_TABLE=1` prints
//! the table for the docs.

mod common;

use common::{raw, Server, TOKEN};

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    headers: Vec<String>,
    body: String,
    status: u16,
    /// The field the error names (`-` for none).
    field: &'static str,
}

fn case(
    what: &'static str,
    method: &'static str,
    path: &str,
    body: impl Into<String>,
    status: u16,
    field: &'static str,
) -> Case {
    Case {
        what,
        method,
        path: path.to_string(),
        headers: vec![format!("Authorization: Bearer {TOKEN}"), "Content-Type: application/json".into()],
        body: body.into(),
        status,
        field,
    }
}

fn with_header(mut c: Case, header: &str) -> Case {
    c.headers.retain(|h| !h.starts_with("Authorization"));
    if !header.is_empty() {
        c.headers.push(header.to_string());
    }
    c
}

fn cases() -> Vec<Case> {
    let f = |extra: &str| format!(r#"{{"job_type":"a","attempt_number":1{extra}}}"#);
    let mut out = vec![
        case("malformed JSON", "POST", "/recommendation", "{not json", 400, "body"),
        case("empty body", "POST", "/recommendation", "", 400, "body"),
        case("a JSON array, not an object", "POST", "/recommendation", "[1,2]", 400, "body"),
        case(
            "JSON nested 10,000 deep (in a payload)",
            "POST",
            "/dlq",
            format!(
                r#"{{"job_id":"j","job_type":"a","failure_reason":"x","payload":{}{}}}"#,
                "[".repeat(10_000),
                "]".repeat(10_000)
            ),
            400,
            "body",
        ),
        case(
            "body over the 64 KiB limit",
            "POST",
            "/recommendation",
            f(&format!(r#","worker_version":"{}""#, "v".repeat(70_000))),
            413,
            "-",
        ),
        case("unknown field (misspelt)", "POST", "/recommendation", f(r#","tenat":"x""#), 400, "tenat"),
        case(
            "duplicate field",
            "POST",
            "/recommendation",
            r#"{"job_type":"a","job_type":"b","attempt_number":1}"#,
            400,
            "body",
        ),
        case(
            "wrong type",
            "POST",
            "/recommendation",
            r#"{"job_type":"a","attempt_number":"two"}"#,
            400,
            "attempt_number",
        ),
        case(
            "negative attempt number",
            "POST",
            "/recommendation",
            r#"{"job_type":"a","attempt_number":-1}"#,
            400,
            "attempt_number",
        ),
        case(
            "attempt number 0",
            "POST",
            "/recommendation",
            r#"{"job_type":"a","attempt_number":0}"#,
            400,
            "attempt_number",
        ),
        case(
            "attempt number past 10,000",
            "POST",
            "/recommendation",
            r#"{"job_type":"a","attempt_number":10001}"#,
            400,
            "attempt_number",
        ),
        case(
            "number past u64 (1e400)",
            "POST",
            "/recommendation",
            f(r#","payload_size":1e400"#),
            400,
            "body",
        ),
        case(
            "HTTP status past u16",
            "POST",
            "/recommendation",
            f(r#","http_status":99999"#),
            400,
            "http_status",
        ),
        case(
            "empty job type",
            "POST",
            "/recommendation",
            r#"{"job_type":"","attempt_number":1}"#,
            400,
            "job_type",
        ),
        case(
            "job type of 10,000 characters",
            "POST",
            "/recommendation",
            format!(r#"{{"job_type":"{}","attempt_number":1}}"#, "j".repeat(10_000)),
            400,
            "job_type",
        ),
        case(
            "job type with a newline and quotes",
            "POST",
            "/recommendation",
            r#"{"job_type":"a\"b\nc","attempt_number":1}"#,
            400,
            "job_type",
        ),
        case(
            "job type with NUL",
            "POST",
            "/recommendation",
            r#"{"job_type":"a\u0000b","attempt_number":1}"#,
            400,
            "job_type",
        ),
        case(
            "job type in emoji",
            "POST",
            "/recommendation",
            r#"{"job_type":"📦-sync","attempt_number":1}"#,
            200,
            "-",
        ),
        case("NaN in the health map", "POST", "/recommendation", f(r#","health":{"cpu":NaN}"#), 400, "body"),
        case(
            "health signal far out of range (clamped)",
            "POST",
            "/recommendation",
            f(r#","health":{"cpu":1e308}"#),
            200,
            "-",
        ),
        case("time of day 25", "POST", "/recommendation", f(r#","time_of_day":25"#), 400, "time_of_day"),
        case(
            "nonsense duration",
            "POST",
            "/recommendation",
            r#"{"job_type":"a","attempt_number":2,"since_last_failure":"99:99:99:99"}"#,
            400,
            "since_last_failure",
        ),
        case(
            "Retry-After of u64::MAX ms",
            "POST",
            "/recommendation",
            f(r#","http_status":429,"retry_after_ms":18446744073709551615"#),
            200,
            "-",
        ),
        case("unknown query parameter", "POST", "/recommendation?debug=1", f(""), 400, "debug"),
        case(
            "attempt with a date that is not one",
            "POST",
            "/attempt",
            r#"{"job_id":"j","job_type":"a","attempt_number":1,"success":true,"timestamp":"yesterday"}"#,
            400,
            "timestamp",
        ),
        case(
            "attempt without job id",
            "POST",
            "/attempt",
            r#"{"job_type":"a","attempt_number":1,"success":true}"#,
            400,
            "job_id",
        ),
        case(
            "guardrail typo (the issue's case)",
            "PUT",
            "/guardrails",
            r#"{"max_atempts":1}"#,
            400,
            "max_atempts",
        ),
        case("guardrail out of range", "PUT", "/guardrails", r#"{"max_delay_ms":1e20}"#, 400, "max_delay_ms"),
        case("guardrails not an object", "PUT", "/guardrails", "[]", 400, "body"),
        case(
            "policy with a nested-quantifier regex",
            "POST",
            "/policies",
            r#"{"name":"p","error_patterns":["(a+)+$"],"max_attempts":3,"base_delay_ms":100,"max_delay_ms":1000}"#,
            201,
            "-",
        ),
        case(
            "policy with an invalid regex",
            "POST",
            "/policies",
            r#"{"name":"q","error_patterns":["(unclosed"],"max_attempts":3,"base_delay_ms":100,"max_delay_ms":1000}"#,
            400,
            "error_patterns[0]",
        ),
        case(
            "policy with a 100,000-character regex",
            "POST",
            "/policies",
            format!(
                r#"{{"name":"r","error_patterns":["{}"],"max_attempts":3,"base_delay_ms":100,"max_delay_ms":1000}}"#,
                "a?".repeat(40_000)
            ),
            413,
            "-",
        ),
        case(
            "override with a negative delay",
            "POST",
            "/overrides",
            r#"{"name":"o","job_type":"a","delay_ms":-5}"#,
            400,
            "delay_ms",
        ),
        case(
            "emergency stop with a non-boolean",
            "POST",
            "/emergency-stop",
            r#"{"enabled":"yes"}"#,
            400,
            "enabled",
        ),
        case(
            "dead letter without a reason",
            "POST",
            "/dlq",
            r#"{"job_id":"j","job_type":"a"}"#,
            400,
            "failure_reason",
        ),
        case(
            "dead letter payload over 1 MiB",
            "POST",
            "/dlq",
            format!(
                r#"{{"job_id":"j","job_type":"a","failure_reason":"x","payload":"{}"}}"#,
                "x".repeat(1 << 20)
            ),
            400,
            "payload",
        ),
        case("dead letter id that is a path", "GET", "/dlq/..%2F..%2Fetc%2Fpasswd", "", 404, "-"),
        case("list limit of -1", "GET", "/dlq?limit=-1", "", 400, "limit"),
        case("list limit past u64", "GET", "/dlq?limit=99999999999999999999999", "", 400, "limit"),
        case("list limit over 1,000", "GET", "/dlq?limit=5000", "", 400, "limit"),
        case("analytics limit over 1,000", "GET", "/analytics?limit=100000", "", 400, "limit"),
        case(
            "model file outside the model directory",
            "POST",
            "/ml/models",
            r#"{"model":"/dev/zero"}"#,
            400,
            "model",
        ),
        case(
            "model path climbing out",
            "POST",
            "/ml/models",
            r#"{"model":"../../etc/passwd"}"#,
            400,
            "model",
        ),
        case(
            "model bytes that are not base64",
            "POST",
            "/ml/models",
            r#"{"onnx_base64":"%%%","sidecar":{}}"#,
            400,
            "onnx_base64",
        ),
        case(
            "training on a server path",
            "POST",
            "/ml/train",
            r#"{"history":"/etc/passwd"}"#,
            400,
            "history",
        ),
        case("unknown route", "GET", "/admin", "", 404, "-"),
        case("wrong method", "DELETE", "/strategy", "", 405, "-"),
        case("path of 10,000 characters", "GET", &format!("/dlq/{}", "x".repeat(10_000)), "", 404, "-"),
    ];
    let auth =
        |what, header: &str, status| with_header(case(what, "GET", "/strategy", "", status, "-"), header);
    out.extend([
        auth("no Authorization header", "", 401),
        auth("Basic instead of Bearer", "Authorization: Basic dXNlcjpwYXNz", 401),
        auth("Bearer without a token", "Authorization: Bearer ", 401),
        auth("a wrong token", "Authorization: Bearer guess", 401),
        auth("a token of 8 KB", &format!("Authorization: Bearer {}", "t".repeat(8_000)), 401),
        auth("scheme in capitals", &format!("Authorization: BEARER {TOKEN}"), 200),
        auth("the read token on a read", "Authorization: Bearer reader-token", 200),
    ]);
    out.push(with_header(
        case("the read token on a change", "PUT", "/guardrails", r#"{"max_attempts":5}"#, 403, "-"),
        "Authorization: Bearer reader-token",
    ));
    out
}

#[test]
fn hostile_inputs_get_clear_answers() {
    let models = common::temp_dir("hostile-models");
    let server = Server::start(
        &[],
        &[("RETRY_API_READ_TOKEN", "reader-token"), ("RETRY_MODEL_DIR", models.to_str().unwrap())],
    );
    let mut table = String::from("| input | request | answer |\n|---|---|---|\n");
    let mut failures = Vec::new();
    for c in cases() {
        let headers: Vec<&str> = c.headers.iter().map(String::as_str).collect();
        let (status, body) = raw(&server.url, c.method, &c.path, &headers, &c.body);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let field = json["field"].as_str().unwrap_or("-");
        if (status, field) != (c.status, c.field) {
            failures.push(format!(
                "{}: got {status} {field} ({body:.300}), want {} {}",
                c.what, c.status, c.field
            ));
        }
        let shown = if c.path.len() > 40 { format!("{}…", &c.path[..40]) } else { c.path.clone() };
        let answer = match json["details"].as_str() {
            Some(details) if status >= 400 => {
                format!(
                    "{status}: {}",
                    details.lines().next().unwrap_or("").chars().take(90).collect::<String>()
                )
            }
            _ => status.to_string(),
        };
        table.push_str(&format!(
            "| {} | `{} {}` | {} |\n",
            c.what,
            c.method,
            shown,
            answer.replace('|', "\\|")
        ));
    }
    assert!(server.stderr().lines().all(|l| !l.contains("panicked")), "{}", server.stderr());
    if std::env::var("SMARTRETRY_PRINT_TABLE").is_ok() {
        println!("{table}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
