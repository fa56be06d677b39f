//! Reading JSON into the API's shapes: [`from_json`] ignores fields a shape does not have
//! (so a newer writer's records still read); [`from_json_strict`], used for everything a
//! person or a client sends (HTTP bodies, the config file), refuses them, naming each.

use serde::de::DeserializeOwned;
use serde::Deserializer;

use crate::error::{Error, Result};

/// Deserialize any shape from JSON; errors name the field path (`guardrails.max_attempts`).
pub fn from_json<T: DeserializeOwned>(json: &str) -> Result<T> {
    let mut de = serde_json::Deserializer::from_str(json);
    from_deserializer(&mut de)
}

/// Deserialize any shape from a JSON value, naming the field on error.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    from_deserializer(value)
}

/// Like [`from_json`], but a field the shape does not have is an error naming it
/// (`features.max_atempts: unknown field`), so a misspelt setting is never silently a no-op.
pub fn from_json_strict<T: DeserializeOwned>(json: &str) -> Result<T> {
    // Fast path: no path tracking; on any error parse again to name the field.
    let mut unknown = None;
    let parsed: std::result::Result<T, _> =
        serde_ignored::deserialize(&mut serde_json::Deserializer::from_str(json), |path| {
            unknown.get_or_insert_with(|| path.to_string());
        });
    match (parsed, unknown) {
        (Ok(value), None) => Ok(value),
        _ => Err(strict_error::<T, _>(&mut serde_json::Deserializer::from_str(json))),
    }
}

/// [`from_json_strict`] for a JSON value.
pub fn from_value_strict<T: DeserializeOwned>(value: serde_json::Value) -> Result<T> {
    let mut unknown = None;
    let parsed: std::result::Result<T, _> = serde_ignored::deserialize(value.clone(), |path| {
        unknown.get_or_insert_with(|| path.to_string());
    });
    match (parsed, unknown) {
        (Ok(value), None) => Ok(value),
        _ => Err(strict_error::<T, _>(value)),
    }
}

/// Why a strict parse failed: malformed JSON as such; else the first unknown field (a
/// misspelling also makes a required field "missing": the unknown one is the better clue);
/// else the parse error.
fn strict_error<'de, T: DeserializeOwned, D: Deserializer<'de, Error = serde_json::Error>>(de: D) -> Error {
    let mut unknown: Option<String> = None;
    let parsed: Result<T> = from_deserializer(serde_ignored::Deserializer::new(de, &mut |path| {
        unknown.get_or_insert_with(|| path.to_string());
    }));
    match (parsed, unknown) {
        (Err(Error::InvalidInput { field, reason }), _)
            if field == "body" && reason.starts_with("not valid JSON") =>
        {
            Error::InvalidInput { field, reason }
        }
        (_, Some(path)) => Error::invalid(path, "unknown field (not part of this shape: check the spelling)"),
        (Err(e), None) => e,
        (Ok(_), None) => Error::invalid("body", "could not be parsed"),
    }
}

fn from_deserializer<'de, T: DeserializeOwned, D: Deserializer<'de, Error = serde_json::Error>>(
    de: D,
) -> Result<T> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = strip_position(&inner.to_string());
        // Malformed JSON is the whole body's fault, wherever the parser stopped.
        if inner.is_syntax() || inner.is_eof() {
            return Error::invalid("body", format!("not valid JSON: {message}"));
        }
        // "missing field `x`" is reported at the parent; name the field itself.
        let field = match message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            Some(missing) if path == "." => missing.to_string(),
            Some(missing) => format!("{path}.{missing}"),
            None if path == "." => "body".to_string(),
            None => path,
        };
        Error::invalid(field, message)
    })
}

fn strip_position(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
