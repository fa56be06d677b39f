//! `smartretry serve`: the API document's HTTP API on top of one shared [`Engine`],
//! with read and write bearer tokens (see [`auth`]), a request-size limit, Prometheus
//! metrics, an OpenAPI document and alerts.
//!
//! Settings come from flags, then `RETRY_*` environment variables, then the config file
//! (the core's JSON document; this command reads its own `server` section), then defaults.

pub mod alerts;
mod api;
mod app;
pub mod auth;
mod dlq;
pub mod error;
mod extract;
pub mod health;
pub mod metrics;
pub mod ml;
mod options;
mod prometheus;
pub mod train;
mod watch;
mod webhook;

use std::net::SocketAddr;
use std::sync::Arc;

pub use alerts::AlertConfig;
pub use app::{App, Recent, RECENT_RECOMMENDATIONS};
pub use auth::{AuthConfig, AuthOptions, OpenEndpoint};
pub use options::*;

/// The HTTP routes of one app.
pub fn router(app: Arc<App>) -> axum::Router {
    api::router(app)
}

/// Bind, report the address through `on_ready`, and serve until Ctrl-C / SIGTERM.
pub async fn run(opts: ServeOptions, on_ready: impl FnOnce(SocketAddr)) -> Result<(), String> {
    let app = Arc::new(App::new(&opts).map_err(|e| e.to_string())?);
    let listener = tokio::net::TcpListener::bind(&opts.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(watch::alerts(Arc::clone(&app)));
    tokio::spawn(webhook::deliver(Arc::clone(&app)));
    tokio::spawn(watch::store_health(Arc::clone(&app)));
    on_ready(local);
    // Small JSON answers on keep-alive connections: no Nagle delay.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(app)).with_graceful_shutdown(shutdown()).await.map_err(|e| e.to_string())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
