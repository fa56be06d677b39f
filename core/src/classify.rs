//! Failure classification: turn what a caller knows about a failure (HTTP status,
//! exception class, error code, `Retry-After`) into an [`ErrorKind`], which decides
//! whether to retry, with which backoff shape, and whether a retry is safe for a
//! non-idempotent call.
//!
//! Decision matrix (product docs), plus the rows this module adds:
//!
//! | Kind               | HTTP            | Retry? | Strategy    |
//! |--------------------|-----------------|--------|-------------|
//! | RateLimit          | 429             | yes    | Aggressive  |
//! | ServiceUnavailable | 503             | yes    | Exponential |
//! | ServerError        | 500-502, 504, 5xx | yes  | Exponential |
//! | Timeout            | 408, -          | yes    | Linear      |
//! | Network / ConnectFailed | -          | yes    | Exponential |
//! | Parse              | -               | yes    | Exponential |
//! | Conflict           | 409             | yes    | Exponential |
//! | Validation         | 400, 422        | no     | -           |
//! | Auth               | 401, 403        | no     | -           |
//! | NotFound           | 404, 410        | no     | -           |
//! | ClientError        | other 4xx, OOM  | no     | -           |
//! | Programming        | -               | no     | -           |
//!
//! Host exceptions that mean a bug in the calling code ([`PROGRAMMING_ERRORS`]: Python's
//! `TypeError`, JavaScript's `ReferenceError`, Java's `NullPointerException`…) are
//! `Programming`: a retry runs the same code and fails the same way. A JavaScript
//! `TypeError` that is a network failure (`fetch failed`, with a cause whose code is
//! `ECONNREFUSED`…) is classed by that code instead. A caller who names such a type among
//! those to retry (`retry_on`, [`ErrorKind::expected_by_caller`]) gets it retried.
//! The table for users, language by language, is `docs/errors.md`.

use serde::{Deserialize, Serialize};

use crate::backoff::BackoffStrategy;

/// What kind of failure happened. Serialised as the [`ErrorKind::as_str`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    RateLimit,
    ServiceUnavailable,
    ServerError,
    Timeout,
    /// The connection broke after the request may have been sent (reset, broken pipe).
    Network,
    /// The connection was never established (refused, DNS failure, unreachable), so
    /// the request cannot have reached the server.
    ConnectFailed,
    /// A response arrived but could not be decoded; often a truncated or proxy page.
    Parse,
    Conflict,
    Validation,
    Auth,
    NotFound,
    /// Other 4xx, and local fatal conditions (out of memory) that a retry won't fix.
    ClientError,
    /// A bug in the calling code (`TypeError`, `NullPointerException`…): see [`PROGRAMMING_ERRORS`].
    Programming,
    Unknown,
}

impl ErrorKind {
    /// Every kind, for exhaustive tests and documentation.
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::RateLimit,
        ErrorKind::ServiceUnavailable,
        ErrorKind::ServerError,
        ErrorKind::Timeout,
        ErrorKind::Network,
        ErrorKind::ConnectFailed,
        ErrorKind::Parse,
        ErrorKind::Conflict,
        ErrorKind::Validation,
        ErrorKind::Auth,
        ErrorKind::NotFound,
        ErrorKind::ClientError,
        ErrorKind::Programming,
        ErrorKind::Unknown,
    ];

    /// The stable snake_case name (same as the serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::ServiceUnavailable => "service_unavailable",
            ErrorKind::ServerError => "server_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::Parse => "parse",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Validation => "validation",
            ErrorKind::Auth => "auth",
            ErrorKind::NotFound => "not_found",
            ErrorKind::ClientError => "client_error",
            ErrorKind::Programming => "programming",
            ErrorKind::Unknown => "unknown",
        }
    }

    /// Whether retrying can help. The non-retryable kinds fail the same way every time
    /// until a human changes the request, the credentials or the resource.
    pub fn retryable(self) -> bool {
        !matches!(
            self,
            ErrorKind::Validation
                | ErrorKind::Auth
                | ErrorKind::NotFound
                | ErrorKind::ClientError
                | ErrorKind::Programming
        )
    }

    /// The kind once the caller's say is heard: a programming error whose type the caller
    /// named among those to retry (`Features::expected`) is retried like any unknown
    /// failure. The other permanent kinds stay permanent: a 400 is never retried.
    pub fn expected_by_caller(self, expected: bool) -> ErrorKind {
        if expected && self == ErrorKind::Programming {
            ErrorKind::Unknown
        } else {
            self
        }
    }

    /// The backoff shape from the decision matrix. Rate limits back off hardest because
    /// early retries only extend the penalty; timeouts grow linearly because they are
    /// often our own load. Non-retryable kinds get Exponential, which is never used.
    pub fn strategy(self) -> BackoffStrategy {
        match self {
            ErrorKind::RateLimit => BackoffStrategy::Aggressive,
            ErrorKind::Timeout => BackoffStrategy::Linear,
            _ => BackoffStrategy::Exponential,
        }
    }

    /// Whether a failure of this kind may have taken effect downstream (so a
    /// non-idempotent call must not be retried). Only failures known to be rejected
    /// before processing are safe: a 429 is refused at the door, and a connection that
    /// was never established carried no request. Everything else (timeouts, 5xx
    /// including 503, resets, parse errors, conflicts, unknown, and the non-retryable
    /// kinds) is treated as possibly effectful, erring on the side of not duplicating.
    pub fn may_have_taken_effect(self) -> bool {
        !matches!(self, ErrorKind::RateLimit | ErrorKind::ConnectFailed)
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind an HTTP status implies. 1xx-3xx and out-of-range codes are `Unknown`:
/// they say nothing about why the job failed.
pub fn kind_from_status(status: u16) -> ErrorKind {
    match status {
        429 => ErrorKind::RateLimit,
        503 => ErrorKind::ServiceUnavailable,
        408 => ErrorKind::Timeout,
        400 | 422 => ErrorKind::Validation,
        401 | 403 => ErrorKind::Auth,
        404 | 410 => ErrorKind::NotFound,
        409 => ErrorKind::Conflict,
        400..=499 => ErrorKind::ClientError,
        // 504 stays here (not Timeout): the matrix keeps 500-504 in the exponential family.
        500..=599 => ErrorKind::ServerError,
        _ => ErrorKind::Unknown,
    }
}

/// Host exception classes that mean a bug in the calling code, not a failure of the call,
/// with the languages that raise them. Matched on the class's own name as written (the
/// last dotted segment: `builtins.TypeError`, `java.lang.IllegalStateException`), before
/// any other rule. Go has no entry: a Go bug panics, and a panic is never caught by `Do`.
pub const PROGRAMMING_ERRORS: &[(&str, &str)] = &[
    ("TypeError", "Python, JavaScript"),
    ("AttributeError", "Python"),
    ("NameError", "Python"),
    ("UnboundLocalError", "Python (a NameError)"),
    ("SyntaxError", "Python, JavaScript"),
    ("ReferenceError", "JavaScript"),
    ("IllegalStateException", "Kotlin, Java"),
    ("IllegalArgumentException", "Kotlin, Java"),
    ("NumberFormatException", "Kotlin, Java (an IllegalArgumentException)"),
    ("NullPointerException", "Kotlin, Java"),
    ("KotlinNullPointerException", "Kotlin"),
    ("ClassCastException", "Kotlin, Java"),
];

/// Exact (normalised) names that a substring rule would get wrong.
const EXACT: &[(&str, ErrorKind)] = &[
    ("enotfound", ErrorKind::ConnectFailed), // DNS lookup failed, not HTTP 404
    ("eaiagain", ErrorKind::ConnectFailed),  // DNS temporary failure
    ("econnaborted", ErrorKind::Network),
    ("oom", ErrorKind::ClientError),
    ("unknown", ErrorKind::Unknown),
];

/// Substring rules over the normalised name, first match wins. Order matters: more
/// specific meanings come first (`invalid_api_key` is Auth before `invalid` is
/// Validation; `connection_timeout` is Timeout before `connection` is Network;
/// `ConnectionRefused` is ConnectFailed before `connection`).
const CONTAINS: &[(&str, ErrorKind)] = &[
    ("outofmemory", ErrorKind::ClientError),
    ("memoryerror", ErrorKind::ClientError),
    ("enomem", ErrorKind::ClientError),
    ("oomkill", ErrorKind::ClientError),
    ("clienterror", ErrorKind::ClientError),
    ("apikey", ErrorKind::Auth),
    ("unauthori", ErrorKind::Auth),
    ("unauthenticated", ErrorKind::Auth),
    ("forbidden", ErrorKind::Auth),
    ("permission", ErrorKind::Auth),
    ("accessdenied", ErrorKind::Auth),
    ("credential", ErrorKind::Auth),
    ("auth", ErrorKind::Auth),
    ("ratelimit", ErrorKind::RateLimit),
    ("toomanyrequests", ErrorKind::RateLimit),
    ("throttl", ErrorKind::RateLimit),
    ("quotaexceeded", ErrorKind::RateLimit),
    ("resourceexhausted", ErrorKind::RateLimit),
    ("slowdown", ErrorKind::RateLimit),
    ("timeout", ErrorKind::Timeout),
    ("timedout", ErrorKind::Timeout),
    ("deadlineexceeded", ErrorKind::Timeout),
    ("reset", ErrorKind::Network),
    ("brokenpipe", ErrorKind::Network),
    ("disconnect", ErrorKind::Network),
    ("connectionaborted", ErrorKind::Network),
    ("refused", ErrorKind::ConnectFailed),
    ("connecterror", ErrorKind::ConnectFailed),
    ("connectfail", ErrorKind::ConnectFailed),
    ("failedtoconnect", ErrorKind::ConnectFailed),
    ("cannotconnect", ErrorKind::ConnectFailed),
    ("couldnotconnect", ErrorKind::ConnectFailed),
    ("unabletoconnect", ErrorKind::ConnectFailed),
    ("dns", ErrorKind::ConnectFailed),
    ("nameresolution", ErrorKind::ConnectFailed),
    ("gaierror", ErrorKind::ConnectFailed),
    ("hostnotfound", ErrorKind::ConnectFailed),
    ("unknownhost", ErrorKind::ConnectFailed),
    ("unreach", ErrorKind::ConnectFailed),
    ("unavailable", ErrorKind::ServiceUnavailable),
    ("overloaded", ErrorKind::ServiceUnavailable),
    ("notfound", ErrorKind::NotFound),
    ("nosuch", ErrorKind::NotFound),
    ("json", ErrorKind::Parse),
    ("parse", ErrorKind::Parse),
    ("decod", ErrorKind::Parse),
    ("deserializ", ErrorKind::Parse),
    ("unmarshal", ErrorKind::Parse),
    ("validation", ErrorKind::Validation),
    ("invalid", ErrorKind::Validation),
    ("badrequest", ErrorKind::Validation),
    ("unprocessable", ErrorKind::Validation),
    ("conflict", ErrorKind::Conflict),
    ("servererror", ErrorKind::ServerError),
    ("internal", ErrorKind::ServerError),
    ("badgateway", ErrorKind::ServerError),
    ("network", ErrorKind::Network),
    ("connection", ErrorKind::Network),
    ("socket", ErrorKind::Network),
    ("epipe", ErrorKind::Network),
    ("eoferror", ErrorKind::Network),
    ("unexpectedeof", ErrorKind::Network),
];

/// Longest name normalised on the stack; longer ones (whole messages) use the heap.
const STACK_NAME: usize = 64;

/// The kind an error name implies, as users and libraries spell it: case, `_`, `-`,
/// ` `, `.` and CamelCase are all ignored (`RateLimitError`, `too_many_requests`,
/// `rate-limit`, `asyncio.TimeoutError`, `ECONNRESET` …). Errno-style names split
/// network failures: `ECONNREFUSED`/`ENOTFOUND` are [`ErrorKind::ConnectFailed`],
/// `ECONNRESET`/`EPIPE` are [`ErrorKind::Network`]. Returns `None` if nothing matches.
///
/// Names up to 64 letters and digits are normalised in a stack buffer, so the common
/// case does not allocate.
pub fn kind_from_name(name: &str) -> Option<ErrorKind> {
    // The engine's own names (what it reports and learns under) come back most often.
    if let Some(kind) = ErrorKind::ALL.iter().find(|k| k.as_str() == name) {
        return Some(*kind);
    }
    let own = name.rsplit('.').next().unwrap_or(name).trim();
    if PROGRAMMING_ERRORS.iter().any(|(class, _)| *class == own) {
        return Some(ErrorKind::Programming);
    }
    let mut buf = [0u8; STACK_NAME];
    let mut len = 0;
    let mut overflow = false;
    for c in name.bytes().filter(u8::is_ascii_alphanumeric) {
        if len == STACK_NAME {
            overflow = true;
            break;
        }
        buf[len] = c.to_ascii_lowercase();
        len += 1;
    }
    if overflow {
        let long: Vec<u8> =
            name.bytes().filter(u8::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
        return match_normalised(&long);
    }
    match_normalised(&buf[..len])
}

fn match_normalised(n: &[u8]) -> Option<ErrorKind> {
    if n.is_empty() {
        return None;
    }
    if let Some(&(_, kind)) = EXACT.iter().find(|(k, _)| k.as_bytes() == n) {
        return Some(kind);
    }
    CONTAINS.iter().find(|(k, _)| contains(n, k.as_bytes())).map(|&(_, kind)| kind)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    // Compare only where the first byte matches: names are short and most patterns
    // never start anywhere in them.
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    haystack.len() >= needle.len()
        && (0..=haystack.len() - needle.len())
            .any(|i| haystack[i] == first && &haystack[i + 1..i + needle.len()] == rest)
}

/// Combines everything known about a failure. The HTTP status wins when it is
/// informative (4xx/5xx), because it is the server's own verdict; otherwise the
/// exception class name; otherwise the error code (a numeric code such as `"429"`
/// is read as a status, anything else as a name); otherwise `Unknown`. A programming
/// error's class with a code that names a retryable failure is that failure: undici's
/// `TypeError: fetch failed` with the code `ECONNREFUSED` is a refused connection.
pub fn classify(http_status: Option<u16>, error_class: Option<&str>, error_code: Option<&str>) -> ErrorKind {
    let informative = |k: &ErrorKind| *k != ErrorKind::Unknown;
    let by_code = || error_code.and_then(kind_from_code);
    http_status
        .map(kind_from_status)
        .filter(informative)
        .or_else(|| match error_class.and_then(kind_from_name) {
            Some(ErrorKind::Programming) => {
                Some(by_code().filter(|k| k.retryable()).unwrap_or(ErrorKind::Programming))
            }
            by_class => by_class,
        })
        .or_else(by_code)
        .unwrap_or(ErrorKind::Unknown)
}

fn kind_from_code(code: &str) -> Option<ErrorKind> {
    let code = code.trim();
    if !code.is_empty() && code.bytes().all(|c| c.is_ascii_digit()) {
        return code.parse().ok().map(kind_from_status).filter(|k| *k != ErrorKind::Unknown);
    }
    kind_from_name(code)
}

/// A `Retry-After` header value as a delay in milliseconds from `now_ms`.
///
/// Accepts delta-seconds (`"120"`, and the non-standard but common `"1.5"`) or an
/// HTTP-date; a date in the past means "now" (0). Anything else is `None`, meaning
/// "no hint", never an error, since the header comes from a third party. Huge values
/// saturate at `u64::MAX`.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let v = value.trim();
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    let all_digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
    if !int.is_empty() && all_digits(int) && all_digits(frac) {
        let secs =
            int.bytes().fold(0u64, |acc, c| acc.saturating_mul(10).saturating_add(u64::from(c - b'0')));
        let mut ms = 0;
        for k in 0..3 {
            ms = ms * 10 + frac.as_bytes().get(k).map_or(0, |c| u64::from(c - b'0'));
        }
        return Some(secs.saturating_mul(1000).saturating_add(ms));
    }
    crate::time::parse_http_date(v).map(|at| at.saturating_sub(now_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ErrorKind::*;

    #[test]
    fn decision_matrix() {
        // (status, kind, retryable, strategy)
        let rows = [
            (429, RateLimit, true, BackoffStrategy::Aggressive),
            (500, ServerError, true, BackoffStrategy::Exponential),
            (501, ServerError, true, BackoffStrategy::Exponential),
            (502, ServerError, true, BackoffStrategy::Exponential),
            (503, ServiceUnavailable, true, BackoffStrategy::Exponential),
            (504, ServerError, true, BackoffStrategy::Exponential),
            (505, ServerError, true, BackoffStrategy::Exponential),
            (599, ServerError, true, BackoffStrategy::Exponential),
            (408, Timeout, true, BackoffStrategy::Linear),
            (409, Conflict, true, BackoffStrategy::Exponential),
            (404, NotFound, false, BackoffStrategy::Exponential),
            (410, NotFound, false, BackoffStrategy::Exponential),
            (401, Auth, false, BackoffStrategy::Exponential),
            (403, Auth, false, BackoffStrategy::Exponential),
            (400, Validation, false, BackoffStrategy::Exponential),
            (422, Validation, false, BackoffStrategy::Exponential),
            (418, ClientError, false, BackoffStrategy::Exponential),
            (451, ClientError, false, BackoffStrategy::Exponential),
        ];
        for (status, kind, retry, strategy) in rows {
            let k = kind_from_status(status);
            assert_eq!(k, kind, "{status}");
            assert_eq!(k.retryable(), retry, "{status}");
            assert_eq!(k.strategy(), strategy, "{status}");
        }
        for status in [0, 100, 200, 204, 301, 304, 600, 999, u16::MAX] {
            assert_eq!(kind_from_status(status), Unknown, "{status}");
        }
        assert_eq!(Timeout.strategy(), BackoffStrategy::Linear);
        assert!(Network.retryable() && ConnectFailed.retryable() && Parse.retryable());
        assert!(Unknown.retryable());
    }

    #[test]
    fn effectfulness() {
        assert!(!RateLimit.may_have_taken_effect());
        assert!(!ConnectFailed.may_have_taken_effect());
        for k in [ServiceUnavailable, ServerError, Timeout, Network, Parse, Conflict, Unknown] {
            assert!(k.may_have_taken_effect(), "{k}");
        }
    }

    #[test]
    fn names_round_trip_and_serde_agree() {
        for k in ErrorKind::ALL {
            assert_eq!(kind_from_name(k.as_str()), Some(k), "{k}");
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert_eq!(serde_json::from_str::<ErrorKind>(&json).unwrap(), k);
        }
    }

    #[test]
    fn names_as_libraries_spell_them() {
        let cases = [
            ("RateLimitError", RateLimit),
            ("too_many_requests", RateLimit),
            ("rate-limit", RateLimit),
            ("ThrottlingException", RateLimit),
            ("ECONNRESET", Network),
            ("EPIPE", Network),
            ("BrokenPipeError", Network),
            ("connection_reset", Network),
            ("ConnectionError", Network),
            ("ConnectionResetError", Network),
            ("ECONNREFUSED", ConnectFailed),
            ("ConnectionRefusedError", ConnectFailed),
            ("connection_refused", ConnectFailed),
            ("ENOTFOUND", ConnectFailed),
            ("EAI_AGAIN", ConnectFailed),
            ("httpx.ConnectError", ConnectFailed),
            ("socket.gaierror", ConnectFailed),
            ("TimeoutError", Timeout),
            ("asyncio.TimeoutError", Timeout),
            ("ReadTimeout", Timeout),
            ("socket.timeout", Timeout),
            ("ETIMEDOUT", Timeout),
            ("connection_timeout", Timeout),
            ("DEADLINE_EXCEEDED", Timeout),
            ("JSONDecodeError", Parse),
            ("json.decoder.JSONDecodeError", Parse),
            ("ParseError", Parse),
            ("ValidationError", Validation),
            ("invalid_input", Validation),
            ("PermissionError", Auth),
            ("Unauthorized", Auth),
            ("invalid_api_key", Auth),
            ("AuthenticationError", Auth),
            ("NotFound", NotFound),
            ("FileNotFoundError", NotFound),
            ("NoSuchKey", NotFound),
            ("service_unavailable", ServiceUnavailable),
            ("ServiceUnavailable", ServiceUnavailable),
            ("overloaded_error", ServiceUnavailable),
            ("InternalServerError", ServerError),
            ("OutOfMemory", ClientError),
            ("MemoryError", ClientError),
            ("ConflictError", Conflict),
            ("OOMKilled", ClientError),
            ("EOFError", Network),
            ("  Rate Limit  ", RateLimit),
        ];
        for (name, kind) in cases {
            assert_eq!(kind_from_name(name), Some(kind), "{name}");
        }
        assert!(!kind_from_name("OutOfMemory").unwrap().retryable());
        assert!(!kind_from_name("invalid_api_key").unwrap().retryable());
    }

    #[test]
    fn programming_errors() {
        for (class, _) in PROGRAMMING_ERRORS {
            assert_eq!(kind_from_name(class), Some(Programming), "{class}");
        }
        for name in
            ["builtins.TypeError", "java.lang.IllegalStateException", "kotlin.KotlinNullPointerException"]
        {
            assert_eq!(kind_from_name(name), Some(Programming), "{name}");
        }
        assert!(!Programming.retryable());
        // A user's domain error is not a validation response: nothing special by name.
        for name in ["ValueError", "KeyError", "RuntimeError", "LookupError", "IndexError"] {
            assert_eq!(kind_from_name(name), None, "{name}");
            assert!(classify(None, Some(name), None).retryable(), "{name}");
        }
        // undici's fetch failures are TypeErrors; their cause's code says what failed.
        assert_eq!(classify(None, Some("TypeError"), Some("ECONNREFUSED")), ConnectFailed);
        assert_eq!(classify(None, Some("TypeError"), Some("UND_ERR_SOCKET")), Network);
        assert_eq!(classify(None, Some("TypeError"), Some("UND_ERR_CONNECT_TIMEOUT")), Timeout);
        // …but a code that is no network failure leaves it a bug.
        assert_eq!(classify(None, Some("TypeError"), Some("ERR_INVALID_ARG_TYPE")), Programming);
        assert_eq!(classify(None, Some("TypeError"), None), Programming);
        // A status is the server's verdict, whatever the class.
        assert_eq!(classify(Some(503), Some("TypeError"), None), ServiceUnavailable);
        // Named by the caller among those to retry: retried like any unknown failure.
        assert_eq!(Programming.expected_by_caller(true), Unknown);
        assert_eq!(Programming.expected_by_caller(false), Programming);
        assert_eq!(Validation.expected_by_caller(true), Validation);
    }

    #[test]
    fn unmatched_names() {
        for name in ["", "   ", "._-", "SomethingWeird", "Exception", "PipelineError", "ÜberFehler"] {
            assert_eq!(kind_from_name(name), None, "{name:?}");
        }
        // Long inputs (whole messages) still classify, via the heap path.
        let long = format!("{}ConnectionRefusedError", "x".repeat(200));
        assert_eq!(kind_from_name(&long), Some(ConnectFailed));
    }

    #[test]
    fn classify_precedence() {
        assert_eq!(classify(Some(429), Some("TimeoutError"), Some("E1")), RateLimit);
        // An uninformative status falls through to the class, then the code.
        assert_eq!(classify(Some(200), Some("TimeoutError"), None), Timeout);
        assert_eq!(classify(None, Some("Weird"), Some("ECONNRESET")), Network);
        assert_eq!(classify(None, None, Some("429")), RateLimit);
        assert_eq!(classify(None, None, Some(" 503 ")), ServiceUnavailable);
        assert_eq!(classify(None, None, Some("99999999")), Unknown);
        assert_eq!(classify(None, None, Some("200")), Unknown);
        assert_eq!(classify(None, None, None), Unknown);
        assert_eq!(classify(Some(302), None, None), Unknown);
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("120", 0), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", 0), Some(0));
        assert_eq!(parse_retry_after("1.5", 0), Some(1_500));
        assert_eq!(parse_retry_after("1.", 0), Some(1_000));
        assert_eq!(parse_retry_after("2.0005", 0), Some(2_000));
        assert_eq!(parse_retry_after("99999999999999999999999", 0), Some(u64::MAX));
    }

    #[test]
    fn retry_after_dates() {
        let now = 784_111_777_000; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:51:37 GMT", now), Some(120_000));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(0));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(0));
        assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:50:37 GMT", now), Some(60_000));
    }

    #[test]
    fn retry_after_garbage() {
        for bad in ["", " ", "soon", "-5", "+5", ".5", "1.2.3", "1e3", "5s", "0x10", "Sun, 99 Nov"] {
            assert_eq!(parse_retry_after(bad, 0), None, "{bad:?}");
        }
    }
}
