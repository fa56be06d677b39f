//! The server's background loops: the alert rules, and the store's health.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use smartretry::time;

use super::alerts::Alert;
use super::app::App;
use super::health::{probe, CHECK_EVERY};

/// The background loop: evaluate, log, queue for delivery, keep the history.
pub async fn alerts(app: Arc<App>) {
    let period = std::time::Duration::from_millis(app.alerts.interval_ms);
    // The first check one interval after the start: rates need two looks anyway.
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let fired = app.alerts.evaluate(&app.engine, time::now_ms());
        app.metrics.alerts.fetch_add(fired.len() as u64, Ordering::Relaxed);
        app.alerts.publish(fired);
        let saver = Arc::clone(&app);
        let saved = tokio::task::spawn_blocking(move || saver.alerts.save(saver.engine.store())).await;
        if let Ok(Err(e)) = saved {
            eprintln!(
                "{} alerts: the history could not be kept in the store: {e}",
                time::format_rfc3339(time::now_ms())
            );
        }
    }
}

/// Watch the store: probe it every few seconds, log and alert on each change.
pub async fn store_health(app: Arc<App>) {
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let probing = Arc::clone(&app);
        let Ok(reason) = tokio::task::spawn_blocking(move || probe(&probing.engine)).await else { continue };
        let now = time::now_ms();
        let Some((before, since)) = app.store_health.observe(reason.clone(), now) else { continue };
        let status = app.store_health.status(&app.engine);
        let at = time::format_rfc3339(now);
        let alert = match (&reason, before) {
            (Some(why), _) => {
                eprintln!(
                    "{at} store: degraded ({why}); decisions go on from memory, outcomes wait in a buffer \
                     ({} waiting, {} dropped so far) — {}",
                    status.buffered, status.dropped_total, status.url
                );
                Alert::new(
                    "store_down",
                    "critical",
                    "store",
                    format!("the store {} is unreachable or failing: {why}", status.url),
                    1.0,
                    1.0,
                    now,
                )
            }
            (None, _) => {
                let down_for = Duration::from_millis(now.saturating_sub(since));
                eprintln!(
                    "{at} store: ok again after {}s; {} buffered records are being written — {}",
                    down_for.as_secs(),
                    status.buffered,
                    status.url
                );
                Alert::new(
                    "store_recovered",
                    "info",
                    "store",
                    format!("the store {} answers again after {}s", status.url, down_for.as_secs()),
                    0.0,
                    1.0,
                    now,
                )
            }
        };
        app.metrics.store_transitions.fetch_add(1, Ordering::Relaxed);
        if app.alerts.config.store_down && app.alerts.raise(alert, now) {
            app.metrics.alerts.fetch_add(1, Ordering::Relaxed);
        }
    }
}
