//! Who may do what. Two scopes: a **read** token sees everything (recommendations,
//! analytics, dead-letter payloads, settings); a **write** token also changes state.
//! `/health` and `/metrics` are open by default (probes and scrapers carry no secrets;
//! `server.auth.open` or `RETRY_API_OPEN` closes them), `/openapi.json` always is.
//!
//! Nothing is open by accident: a server started without `RETRY_API_TOKEN` takes the
//! token kept with its state (SQLite or Redis), or on its very first start generates
//! one, prints it once and keeps only its SHA-256 there — as Jupyter does — so the first
//! request a newcomer makes with it works. Every server of a fleet on one Redis shares it.

use axum::http::Method;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use smartretry::{time, Error, Store};

use super::error::ApiError;

/// Where the generated token's hash is kept in the store.
const TOKEN_SETTING: &str = "server.api_token";

/// Endpoints that may be served without a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenEndpoint {
    Health,
    Metrics,
}

impl OpenEndpoint {
    fn parse(name: &str) -> Result<OpenEndpoint, Error> {
        match name {
            "health" => Ok(OpenEndpoint::Health),
            "metrics" => Ok(OpenEndpoint::Metrics),
            other => Err(Error::config(
                "RETRY_API_OPEN",
                format!("unknown endpoint {other:?}: expected a comma-separated list of health, metrics (or none)"),
            )),
        }
    }

    /// `health,metrics`, `none` or empty.
    pub fn parse_list(list: &str) -> Result<Vec<OpenEndpoint>, Error> {
        let list = list.trim();
        if list.is_empty() || list.eq_ignore_ascii_case("none") {
            return Ok(Vec::new());
        }
        list.split(',').map(|s| OpenEndpoint::parse(s.trim())).collect()
    }
}

/// The config file's `server.auth` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Endpoints served without a token (default: health and metrics).
    pub open: Vec<OpenEndpoint>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig { open: vec![OpenEndpoint::Health, OpenEndpoint::Metrics] }
    }
}

/// Tokens as given (environment), before the store is known.
#[derive(Debug, Clone, Default)]
pub struct AuthOptions {
    /// `RETRY_API_TOKEN`: reads and changes.
    pub write_token: Option<String>,
    /// `RETRY_API_READ_TOKEN`: reads only.
    pub read_token: Option<String>,
    pub open: Vec<OpenEndpoint>,
    /// Replace the stored token with a new one (`serve --new-token`).
    pub new_token: bool,
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    Open,
    Read,
    Write,
}

/// The tokens in force, as SHA-256 digests (compared digest to digest: the time taken
/// tells nothing about the secret).
pub struct Auth {
    write: [u8; 32],
    read: Option<[u8; 32]>,
    open: Vec<OpenEndpoint>,
}

#[derive(Serialize, Deserialize)]
struct StoredToken {
    sha256: String,
    created: String,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A new random token: 32 bytes from the OS, as 64 hex digits.
fn generate() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| Error::config("RETRY_API_TOKEN", format!("cannot generate one: {e}")))?;
    Ok(hex(&bytes))
}

impl Auth {
    /// The tokens in force: the given write token, else the one kept in `store`, else a
    /// new one (printed once on stderr, its digest kept in `store`).
    pub fn resolve(opts: &AuthOptions, store: &dyn Store) -> Result<Auth, Error> {
        let read = opts.read_token.as_deref().map(digest);
        let write = match opts.write_token.as_deref() {
            Some(token) => digest(token),
            None => Auth::stored_or_new(opts.new_token, store)?,
        };
        if read == Some(write) {
            return Err(Error::config("RETRY_API_READ_TOKEN", "must differ from the write token"));
        }
        Ok(Auth { write, read, open: opts.open.clone() })
    }

    fn stored_or_new(replace: bool, store: &dyn Store) -> Result<[u8; 32], Error> {
        let stored = if replace {
            None
        } else {
            match store.setting_get(TOKEN_SETTING) {
                Ok(json) => json,
                Err(e) => {
                    return Err(Error::config(
                        "RETRY_API_TOKEN",
                        format!("not set, and the token kept in {} cannot be read: {e}", store.url()),
                    ))
                }
            }
        };
        if let Some(json) = stored {
            let kept: StoredToken = serde_json::from_str(&json).map_err(|e| {
                Error::config("RETRY_API_TOKEN", format!("the stored token is unreadable: {e}"))
            })?;
            let sha = unhex(&kept.sha256).ok_or_else(|| {
                Error::config("RETRY_API_TOKEN", "the stored token is not a SHA-256 digest")
            })?;
            eprintln!(
                "smartretry serve: using the API token generated on {} (kept in {}; set RETRY_API_TOKEN to \
                 choose one, or start with --new-token to replace it)",
                kept.created,
                store.url()
            );
            return Ok(sha);
        }
        let token = generate()?;
        let sha = digest(&token);
        let kept = StoredToken { sha256: hex(&sha), created: time::format_rfc3339(time::now_ms()) };
        let json = serde_json::to_string(&kept).map_err(|e| Error::Store(e.to_string()))?;
        store.setting_put(TOKEN_SETTING, &json).map_err(|e| {
            Error::config(
                "RETRY_API_TOKEN",
                format!("not set, and a generated one cannot be kept in {}: {e}", store.url()),
            )
        })?;
        eprintln!(
            "smartretry serve: generated an API token (shown only now; its SHA-256 is kept in {}):\n\n    \
             RETRY_API_TOKEN={token}\n\nSend it as \"Authorization: Bearer <token>\"; it reads and changes \
             everything.",
            store.url()
        );
        Ok(sha)
    }

    /// What a request to `path` (below the API's base path, or `/metrics`) needs.
    pub fn scope(&self, method: &Method, path: &str) -> Scope {
        let open = |e| if self.open.contains(&e) { Scope::Open } else { Scope::Read };
        match path {
            "/openapi.json" => Scope::Open,
            "/health" => open(OpenEndpoint::Health),
            "/metrics" => open(OpenEndpoint::Metrics),
            // A what-if that changes nothing.
            "/preview" if method == Method::POST => Scope::Read,
            _ if method == Method::GET || method == Method::HEAD => Scope::Read,
            _ => Scope::Write,
        }
    }

    /// The scope an `Authorization` header grants, or why it grants none.
    fn granted(&self, header: Option<&str>) -> Result<Scope, ApiError> {
        let header = header.ok_or_else(|| ApiError::unauthorized("missing Authorization: Bearer <token>"))?;
        // RFC 9110: the scheme is case-insensitive; one or more spaces follow it.
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .filter(|token| !token.is_empty())
            .ok_or_else(|| ApiError::unauthorized("the Authorization header must be \"Bearer <token>\""))?;
        let given = digest(token);
        if given == self.write {
            Ok(Scope::Write)
        } else if self.read == Some(given) {
            Ok(Scope::Read)
        } else {
            Err(ApiError::unauthorized("the bearer token is not valid for this server"))
        }
    }

    /// Let the request through when its token grants what `path` needs.
    pub fn check(&self, method: &Method, path: &str, header: Option<&str>) -> Result<(), ApiError> {
        let needed = self.scope(method, path);
        if needed == Scope::Open {
            return Ok(());
        }
        match self.granted(header)? {
            granted if granted >= needed => Ok(()),
            _ => Err(ApiError::forbidden(
                "this token may only read: changes need the write token (RETRY_API_TOKEN)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn auth(read: Option<&str>, open: Vec<OpenEndpoint>) -> Auth {
        Auth { write: digest("w"), read: read.map(digest), open }
    }

    #[test]
    fn scopes_follow_method_and_path() {
        let a = auth(None, AuthConfig::default().open);
        assert_eq!(a.scope(&Method::GET, "/health"), Scope::Open);
        assert_eq!(a.scope(&Method::GET, "/metrics"), Scope::Open);
        assert_eq!(a.scope(&Method::GET, "/openapi.json"), Scope::Open);
        assert_eq!(a.scope(&Method::GET, "/health/payments"), Scope::Read);
        assert_eq!(a.scope(&Method::GET, "/dlq/x"), Scope::Read);
        assert_eq!(a.scope(&Method::POST, "/preview"), Scope::Read);
        assert_eq!(a.scope(&Method::POST, "/recommendation"), Scope::Write);
        assert_eq!(a.scope(&Method::DELETE, "/policies/x"), Scope::Write);
        let closed = auth(None, Vec::new());
        assert_eq!(closed.scope(&Method::GET, "/health"), Scope::Read);
        assert_eq!(closed.scope(&Method::GET, "/metrics"), Scope::Read);
    }

    #[test]
    fn the_scheme_is_case_insensitive_and_scopes_are_ordered() {
        let a = auth(Some("r"), Vec::new());
        for header in ["Bearer w", "bearer w", "BEARER w", "BeArEr   w "] {
            assert!(a.check(&Method::POST, "/attempt", Some(header)).is_ok(), "{header}");
        }
        assert!(a.check(&Method::GET, "/dlq", Some("Bearer r")).is_ok());
        assert_eq!(
            a.check(&Method::POST, "/attempt", Some("Bearer r")).unwrap_err().code,
            StatusCode::FORBIDDEN
        );
        for bad in
            [None, Some("Basic dzp3"), Some("Bearer"), Some("Bearer "), Some("Bearer x"), Some("Bearerw")]
        {
            let e = a.check(&Method::GET, "/dlq", bad).unwrap_err();
            assert_eq!(e.code, StatusCode::UNAUTHORIZED, "{bad:?}");
        }
    }

    #[test]
    fn open_lists_parse_and_name_the_bad_entry() {
        assert_eq!(OpenEndpoint::parse_list("health, metrics").unwrap().len(), 2);
        assert!(OpenEndpoint::parse_list("none").unwrap().is_empty());
        let e = OpenEndpoint::parse_list("health,dlq").unwrap_err();
        assert_eq!(e.field(), Some("RETRY_API_OPEN"));
        assert!(e.to_string().contains("dlq"), "{e}");
    }

    #[test]
    fn a_generated_token_is_kept_as_a_digest_and_reused() {
        let store = smartretry::store::MemoryStore::default();
        let opts = AuthOptions::default();
        let first = Auth::resolve(&opts, &store).unwrap();
        let kept = store.setting_get(TOKEN_SETTING).unwrap().unwrap();
        assert!(kept.contains(&hex(&first.write)), "{kept}");
        let again = Auth::resolve(&opts, &store).unwrap();
        assert_eq!(first.write, again.write);
        let replaced = Auth::resolve(&AuthOptions { new_token: true, ..opts }, &store).unwrap();
        assert_ne!(first.write, replaced.write);
    }
}
