//! One mapping from the core's error kinds to JavaScript errors.
//!
//! Every core error becomes a plain `Error` whose `message` is the core's message,
//! `code` is the core's stable `kind()` (`invalid_input`, `config`, `not_found`,
//! `store`, `model`) and `field` names the offending field (`null` when the kind has
//! none). Numbers that cannot become the core's integers are `invalid_input` too.

use napi::bindgen_prelude::{Env, JsObjectValue, JsValue, Null};
use napi::Status;

/// Converts a core error into a thrown JS error with `code` and `field`.
pub fn to_js(env: &Env, e: smartretry::Error) -> napi::Error {
    js_error(env, e.kind(), e.field(), &e.to_string())
}

/// A call on an engine after `close()` (`code: 'closed'`, as Go's `ErrClosed`).
pub fn closed(env: &Env) -> napi::Error {
    js_error(env, "closed", None, "the engine is closed")
}

/// A conversion error (a JS number that is not a valid integer for the core).
pub fn invalid(env: &Env, field: &str, reason: &str) -> napi::Error {
    let message = format!("invalid input: {field}: {reason}");
    js_error(env, "invalid_input", Some(field), &message)
}

fn js_error(env: &Env, code: &str, field: Option<&str>, message: &str) -> napi::Error {
    let build = || -> napi::Result<napi::Error> {
        let mut obj = env.create_error(napi::Error::new(Status::GenericFailure, message))?;
        obj.set_named_property("code", code)?;
        match field {
            Some(f) => obj.set_named_property("field", f)?,
            None => obj.set_named_property("field", Null)?,
        }
        Ok(napi::Error::from(obj.to_unknown()))
    };
    // If the error object itself cannot be built, still fail with the message.
    build().unwrap_or_else(|_| napi::Error::new(Status::GenericFailure, format!("{code}: {message}")))
}
