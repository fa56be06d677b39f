//! `smartretry serve`'s settings: flags, then `RETRY_*` environment variables, then the
//! config file's `server` section, then defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use smartretry::{Config, Error};

use super::alerts::AlertConfig;
use super::auth::{AuthConfig, AuthOptions, OpenEndpoint};

/// The SQLite file `serve` keeps its state in unless told otherwise.
pub const DEFAULT_DB: &str = "smartretry.db";

/// Default limit of a request body: far above any real Features or Policy document.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// The largest `POST /dlq` body: the core's inline payload limit plus room for the rest
/// (attempt history, reason, reference).
pub const DLQ_MAX_BODY_BYTES: usize = smartretry::MAX_DEAD_LETTER_PAYLOAD_BYTES + 1024 * 1024;

/// The largest `POST /ml/train` body (its `history` inline).
pub const TRAIN_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The config file's `server` section (everything optional; unknown fields are refused).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ServerSection {
    addr: Option<String>,
    db: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    auth: AuthConfig,
    /// `/health` answers 503 while the store is degraded (default: 200 with the reason).
    strict_health: Option<bool>,
    /// What a 202 from `/attempt` promises by default: `buffered` or `durable`.
    attempt_ack: Option<Ack>,
    metrics: MetricsConfig,
    dlq: DlqConfig,
    ml: MlConfig,
    alerts: AlertConfig,
}

/// What a 202 from `POST /attempt` promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ack {
    /// The engine learned it and queued it for the store (written within ~50 ms).
    Buffered,
    /// The store has it: the SQLite transaction committed, or Redis replied.
    Durable,
}

/// The config file's `server.dlq` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DlqConfig {
    /// Every job a recommendation gives up on (with a `job_id`) goes to the queue, its
    /// failure reason the decision's rationale (per request: `?dead_letter=true|false`).
    pub on_give_up: bool,
}

/// The config file's `server.ml` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlConfig {
    /// The one directory `POST /ml/models {"model": "name.onnx"}` reads from (none: models
    /// come only as uploaded bytes). Nothing outside it is ever opened or named.
    pub model_dir: Option<PathBuf>,
    /// The largest model accepted, uploaded or read.
    pub max_model_bytes: usize,
}

impl Default for MlConfig {
    fn default() -> Self {
        MlConfig { model_dir: None, max_model_bytes: DEFAULT_MAX_MODEL_BYTES }
    }
}

/// Models larger than this are refused unless `server.ml.max_model_bytes` says otherwise.
pub const DEFAULT_MAX_MODEL_BYTES: usize = 16 * 1024 * 1024;

/// The config file's `server.metrics` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Job types with series of their own in `/metrics` (the busiest); the rest are
    /// summed up as `job_type="other"`, so a scrape stays small whatever the labels.
    pub max_job_types: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { max_job_types: DEFAULT_MAX_JOB_TYPES }
    }
}

/// Job types with their own metric series by default.
pub const DEFAULT_MAX_JOB_TYPES: usize = 100;

/// Everything `serve` needs, resolved from flags, environment and file.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub addr: String,
    pub config: Config,
    /// The tokens (the write token is generated on a first start without one).
    pub auth: AuthOptions,
    pub max_body_bytes: usize,
    /// `/health` answers 503 while the store is degraded.
    pub strict_health: bool,
    /// Job types with metric series of their own.
    pub max_job_types: usize,
    /// `/attempt` acknowledges after the store's commit unless `?ack=buffered`.
    pub durable_acks: bool,
    pub dlq: DlqConfig,
    pub ml: MlConfig,
    pub alerts: AlertConfig,
}

/// What the command line gave (each `None` falls through to env/file/default).
#[derive(Debug, Default)]
pub struct ServeFlags<'a> {
    pub addr: Option<String>,
    pub db: Option<PathBuf>,
    pub config_file: Option<&'a Path>,
    pub max_body_bytes: Option<usize>,
    pub alert_webhook: Option<String>,
    /// Replace the API token kept with the state by a new one.
    pub new_token: bool,
}

impl ServeOptions {
    /// Resolve flags > environment (`vars`) > config file > defaults; errors name the field.
    pub fn resolve<I, K, V>(flags: ServeFlags<'_>, vars: I) -> Result<ServeOptions, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let (mut config, section) = match flags.config_file {
            Some(path) => {
                let in_file = |e: Error| match e {
                    Error::Config { field, reason } | Error::InvalidInput { field, reason } => {
                        Error::config(field, format!("{reason} (in {})", path.display()))
                    }
                    other => other,
                };
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::config("config_file", format!("{}: {e}", path.display())))?;
                let mut doc: serde_json::Value = smartretry::from_json(&text).map_err(in_file)?;
                // The `server` section is this command's; the rest is the core's configuration.
                let section = match doc.as_object_mut().and_then(|o| o.remove("server")) {
                    Some(v) => smartretry::from_value_strict::<ServerSection>(v)
                        .map_err(|e| in_file(e.within("server")))?,
                    None => ServerSection::default(),
                };
                (Config::from_json(&doc.to_string()).map_err(in_file)?, section)
            }
            None => (Config::default(), ServerSection::default()),
        };
        let vars: Vec<(String, String)> =
            vars.into_iter().map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string())).collect();
        config.apply_env(vars.iter().map(|(k, v)| (k, v)))?;
        let env = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string());
        let addr = flags
            .addr
            .or_else(|| env("RETRY_API_ADDR"))
            .or(section.addr)
            .unwrap_or_else(|| format!("127.0.0.1:{}", config.api.port));
        addr.parse::<SocketAddr>()
            .map_err(|e| Error::config("addr", format!("{addr:?} is not host:port ({e})")))?;
        let max_body_bytes = match flags.max_body_bytes {
            Some(n) => n,
            None => match env("RETRY_MAX_BODY_BYTES") {
                Some(v) => v.parse().map_err(|_| {
                    Error::config("RETRY_MAX_BODY_BYTES", format!("expected a number of bytes, got {v:?}"))
                })?,
                None => section.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES),
            },
        };
        if !(256..=64 * 1024 * 1024).contains(&max_body_bytes) {
            return Err(Error::config("max_body_bytes", "must be 256 B – 64 MiB"));
        }
        // The store: --db / RETRY_DB / server.db (SQLite), else the configuration's store
        // (e.g. Redis), else SQLite in ./smartretry.db.
        let db = flags.db.or_else(|| env("RETRY_DB").map(PathBuf::from)).or(section.db);
        if db.is_some() || config.store_url().is_empty() {
            let path = db.unwrap_or_else(|| PathBuf::from(DEFAULT_DB));
            let path = std::path::absolute(&path)
                .map_err(|e| Error::config("db", format!("{}: {e}", path.display())))?;
            config.store = format!("sqlite://{}", path.display());
        }
        let mut alerts = section.alerts;
        if let Some(url) = flags.alert_webhook.or_else(|| env("RETRY_ALERT_WEBHOOK")) {
            alerts.webhook_url = Some(url);
        }
        alerts.validate().map_err(|e| e.within("server.alerts"))?;
        let open = match env("RETRY_API_OPEN") {
            Some(list) => OpenEndpoint::parse_list(&list)?,
            None => section.auth.open,
        };
        let auth = AuthOptions {
            write_token: env("RETRY_API_TOKEN").filter(|t| !t.is_empty()),
            read_token: env("RETRY_API_READ_TOKEN").filter(|t| !t.is_empty()),
            open,
            new_token: flags.new_token,
        };
        if flags.new_token && auth.write_token.is_some() {
            return Err(Error::config(
                "new_token",
                "RETRY_API_TOKEN is set: there is no kept token to replace",
            ));
        }
        let strict_health = match env("RETRY_STRICT_HEALTH") {
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(Error::config(
                        "RETRY_STRICT_HEALTH",
                        format!("expected true or false, got {v:?}"),
                    ))
                }
            },
            None => section.strict_health.unwrap_or(false),
        };
        let max_job_types = section.metrics.max_job_types;
        if !(1..=10_000).contains(&max_job_types) {
            return Err(Error::config("server.metrics.max_job_types", "must be 1–10000"));
        }
        let mut ml = section.ml;
        if let Some(dir) = env("RETRY_MODEL_DIR") {
            ml.model_dir = Some(PathBuf::from(dir));
        }
        if let Some(dir) = &ml.model_dir {
            let canonical = std::fs::canonicalize(dir).ok().filter(|d| d.is_dir()).ok_or_else(|| {
                Error::config("server.ml.model_dir", format!("{} is not a directory", dir.display()))
            })?;
            ml.model_dir = Some(canonical);
        }
        if !(1024..=1024 * 1024 * 1024).contains(&ml.max_model_bytes) {
            return Err(Error::config("server.ml.max_model_bytes", "must be 1 KiB – 1 GiB"));
        }
        Ok(ServeOptions {
            addr,
            config,
            auth,
            max_body_bytes,
            strict_health,
            max_job_types,
            durable_acks: section.attempt_ack == Some(Ack::Durable),
            dlq: section.dlq,
            ml,
            alerts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(flags: ServeFlags<'_>, vars: &[(&str, &str)]) -> Result<ServeOptions, Error> {
        ServeOptions::resolve(flags, vars.iter().copied())
    }

    #[test]
    fn flags_beat_env_beat_file_beat_defaults() {
        let dir = std::env::temp_dir().join(format!("smartretry-serve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        std::fs::write(
            &file,
            r#"{"api":{"port":9100},"server":{"addr":"127.0.0.1:9200","max_body_bytes":4096}}"#,
        )
        .unwrap();
        let o = resolve(ServeFlags::default(), &[]).unwrap();
        assert_eq!(
            (o.addr.as_str(), o.max_body_bytes, o.auth.write_token),
            ("127.0.0.1:8080", DEFAULT_MAX_BODY_BYTES, None)
        );
        let with_file = || ServeFlags { config_file: Some(&file), ..Default::default() };
        assert_eq!(resolve(with_file(), &[]).unwrap().addr, "127.0.0.1:9200");
        let o =
            resolve(with_file(), &[("RETRY_API_ADDR", "127.0.0.1:9300"), ("RETRY_API_TOKEN", "s")]).unwrap();
        assert_eq!(
            (o.addr.as_str(), o.auth.write_token.as_deref(), o.max_body_bytes),
            ("127.0.0.1:9300", Some("s"), 4096)
        );
        let flags = ServeFlags { addr: Some("127.0.0.1:9400".into()), ..with_file() };
        assert_eq!(resolve(flags, &[("RETRY_API_ADDR", "127.0.0.1:9300")]).unwrap().addr, "127.0.0.1:9400");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_settings_name_their_field() {
        let bad =
            |flags, vars: &[(&str, &str)]| resolve(flags, vars).unwrap_err().field().map(str::to_string);
        assert_eq!(
            bad(ServeFlags { addr: Some("nowhere".into()), ..Default::default() }, &[]).as_deref(),
            Some("addr")
        );
        assert_eq!(
            bad(ServeFlags::default(), &[("RETRY_MAX_BODY_BYTES", "lots")]).as_deref(),
            Some("RETRY_MAX_BODY_BYTES")
        );
        assert_eq!(
            bad(ServeFlags { max_body_bytes: Some(1), ..Default::default() }, &[]).as_deref(),
            Some("max_body_bytes")
        );
        assert_eq!(
            bad(ServeFlags::default(), &[("RETRY_BAYESIAN_THRESHOLD", "2")]).as_deref(),
            Some("RETRY_BAYESIAN_THRESHOLD")
        );
        let webhook = ServeFlags { alert_webhook: Some("ftp://x".into()), ..Default::default() };
        assert_eq!(bad(webhook, &[]).as_deref(), Some("server.alerts.webhook_url"));
        assert_eq!(bad(ServeFlags::default(), &[("RETRY_API_TOKN", "x")]).as_deref(), Some("RETRY_API_TOKN"));
        assert_eq!(
            bad(ServeFlags::default(), &[("RETRY_API_OPEN", "dlq")]).as_deref(),
            Some("RETRY_API_OPEN")
        );
    }

    #[test]
    fn unknown_fields_in_the_config_file_are_named() {
        let dir = std::env::temp_dir().join(format!("smartretry-serve-strict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        for (doc, field) in [
            (r#"{"server":{"adr":"127.0.0.1:1"}}"#, "server.adr"),
            (r#"{"server":{"alerts":{"cooldwn":"1m"}}}"#, "server.alerts.cooldwn"),
            (r#"{"server":{"auth":{"open":["dlq"]}}}"#, "server.auth.open[0]"),
            (r#"{"strategy":{"guardrails":{"max_atempts":1}}}"#, "strategy.guardrails.max_atempts"),
            (r#"{"max_key":1}"#, "max_key"),
        ] {
            std::fs::write(&file, doc).unwrap();
            let flags = ServeFlags { config_file: Some(&file), ..Default::default() };
            let e = resolve(flags, &[]).unwrap_err();
            assert_eq!(e.field(), Some(field), "{doc}: {e}");
            assert!(e.to_string().contains("config.json"), "the file is named: {e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
