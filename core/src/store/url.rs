//! Store URLs: the query parameters after `?`.

use crate::error::{Error, Result};

/// `key=value` pairs after `?` in a store URL, and the URL without them.
pub(crate) fn split_query(url: &str) -> (&str, Vec<(&str, &str)>) {
    match url.split_once('?') {
        Some((base, query)) => (
            base,
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| p.split_once('=').unwrap_or((p, "")))
                .collect(),
        ),
        None => (url, Vec::new()),
    }
}

/// A millisecond count from a store URL's query, naming the parameter when it is bad.
pub(crate) fn query_ms(params: &[(&str, &str)], name: &str, default: u64) -> Result<u64> {
    match params.iter().find(|(k, _)| *k == name) {
        None => Ok(default),
        Some((_, v)) => match v.parse::<u64>() {
            Ok(ms) if (1..=600_000).contains(&ms) => Ok(ms),
            _ => Err(Error::config(format!("store.{name}"), format!("expected 1–600000 ms, got {v:?}"))),
        },
    }
}
