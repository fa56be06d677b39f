//! `smartretry tui`: a keyboard-driven view of a running server — the strategy and its
//! guardrails, live recommendations with the next-retry timeline and rationale,
//! analytics and alerts — with the product document's shortcuts:
//!
//! | key | action |
//! |---|---|
//! | Ctrl+R | retrain (refit the selected job's Bayesian model) |
//! | Ctrl+P | preview the selected job's schedule |
//! | Ctrl+O | override the selected job's delay (type ms, Enter; Esc cancels) |
//! | Ctrl+E | export the configuration (strategy JSON) to a file |
//! | Ctrl+A | view alerts |
//! | Tab | switch panels (wide layout) |
//! | 1–4 | switch tabs (narrow layout) |
//! | Space | refresh now |
//! | Enter | apply the selected recommendation (pin its delay for the job) |
//! | Esc | cancel override / close alerts |
//! | ↑ ↓ / j k | select a job; q or Ctrl+C quits |

mod state;
mod view;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use serde::de::DeserializeOwned;
use serde_json::json;
use smartretry::BreakerSnapshot;
use smartretry::{BudgetSnapshot, MetricsSnapshot, Override, Preview, Strategy};

use crate::client::{Client, ClientError};
use crate::serve::alerts::Alert;
use crate::serve::Recent;

pub use state::{Data, Panel, Tui, NARROW_WIDTH};

#[derive(serde::Deserialize)]
struct Analytics {
    metrics: MetricsSnapshot,
    breakers: Vec<BreakerSnapshot>,
    retry_budget: BudgetSnapshot,
    refused_429: u64,
}

impl Tui {
    pub fn new(url: &str, token: Option<String>, export_dir: PathBuf) -> Result<Tui, String> {
        let client = Client::new(url)
            .map_err(|e| e.to_string())?
            .with_token(token)
            .with_timeout(Duration::from_secs(3));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        Ok(Tui {
            client,
            runtime,
            url: url.to_string(),
            data: Data::default(),
            selected: 0,
            panel: Panel::Live,
            show_alerts: false,
            preview: None,
            override_input: None,
            status: "Space refresh · Ctrl+P preview · Ctrl+O override · Enter apply · Ctrl+R retrain · Ctrl+E export · Ctrl+A alerts · q quit".into(),
            error: None,
            export_dir,
            quit: false,
        })
    }

    fn get<T: DeserializeOwned>(&mut self, path: &str) -> Result<T, String> {
        let r = self.runtime.block_on(self.client.get(path)).map_err(|e: ClientError| e.to_string())?;
        if r.status != 200 {
            return Err(error_text(&r));
        }
        serde_json::from_str(&r.body).map_err(|e| format!("{path}: unexpected answer: {e}"))
    }

    fn send(
        &mut self,
        method: hyper::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<crate::client::Response, String> {
        let bytes = body.map(|b| b.to_string().into());
        self.runtime.block_on(self.client.send(method, path, bytes)).map_err(|e| e.to_string())
    }

    /// Reload everything shown (Space, and every tick).
    pub fn refresh(&mut self) {
        let result = (|| -> Result<(), String> {
            let strategy: Strategy = self.get("/strategy")?;
            let analytics: Analytics = self.get("/analytics")?;
            #[derive(serde::Deserialize)]
            struct Recents {
                recommendations: Vec<Recent>,
            }
            #[derive(serde::Deserialize)]
            struct Alerts {
                alerts: Vec<Alert>,
            }
            let recent: Recents = self.get("/recommendations?limit=100")?;
            let alerts: Alerts = self.get("/alerts")?;
            #[derive(serde::Deserialize)]
            struct Overrides {
                overrides: Vec<Override>,
            }
            let overrides: Overrides = self.get("/overrides")?;
            let selected_key = self.selected_job().map(|r| (r.features.job_id.clone(), r.at.clone()));
            self.data = Data {
                policies: strategy.policies.clone(),
                strategy: Some(strategy),
                metrics: Some(analytics.metrics),
                breakers: analytics.breakers,
                budget: Some(analytics.retry_budget),
                refused_429: analytics.refused_429,
                recent: recent.recommendations,
                alerts: alerts.alerts,
                overrides: overrides.overrides,
            };
            // Keep the same job selected while new ones arrive on top.
            if let Some(key) = selected_key {
                if let Some(i) =
                    self.data.recent.iter().position(|r| (r.features.job_id.clone(), r.at.clone()) == key)
                {
                    self.selected = i;
                }
            }
            self.selected = self.selected.min(self.data.recent.len().saturating_sub(1));
            Ok(())
        })();
        self.error = result.err();
    }

    pub fn selected_job(&self) -> Option<&Recent> {
        self.data.recent.get(self.selected)
    }

    fn say(&mut self, result: Result<String, String>) {
        match result {
            Ok(s) => self.status = s,
            Err(e) => self.status = format!("error: {e}"),
        }
    }

    /// Ctrl+P: the schedule the engine would follow for the selected job.
    fn preview_selected(&mut self) {
        let Some(job) = self.selected_job().cloned() else {
            return self.say(Err("no job selected: no recommendations yet".into()));
        };
        let body = json!({ "features": job.features });
        let result = self.send(hyper::Method::POST, "/preview", Some(body)).and_then(|r| {
            if r.status != 200 {
                return Err(error_text(&r));
            }
            serde_json::from_str::<Preview>(&r.body).map_err(|e| e.to_string())
        });
        match result {
            Ok(p) => {
                self.status =
                    format!("preview of {}: {} retries planned", job.features.job_type, p.timeline.len());
                self.preview = Some(p);
            }
            Err(e) => self.say(Err(e)),
        }
    }

    /// Ctrl+R: refit the selected job's Bayesian model now.
    fn retrain(&mut self) {
        let Some(job) = self.selected_job().cloned() else {
            return self.say(Err("no job selected: nothing to retrain".into()));
        };
        let key = json!({ "job_type": job.features.job_type, "error_class": job.decision.error_class });
        let result =
            self.send(hyper::Method::POST, "/bayesian/update", Some(key)).and_then(|r| match r.status {
                200 => Ok(format!("retrained {} / {}", job.features.job_type, job.decision.error_class)),
                _ => Err(error_text(&r)),
            });
        self.say(result);
        self.refresh();
    }

    /// Enter in override mode / on a job: an operator override of the selected job's
    /// delay (scoped to its job id, or its job type when it has none); an empty delay
    /// removes it. The engine applies it; guardrails still bound it.
    fn apply_override(&mut self, delay_ms: Option<u64>) {
        let Some(job) = self.selected_job().cloned() else {
            return self.say(Err("no job selected".into()));
        };
        let (scope, mut o) = match &job.features.job_id {
            Some(id) => (format!("job {id}"), Override { job_id: Some(id.clone()), ..Default::default() }),
            None => {
                let t = &job.features.job_type;
                (format!("job type {t}"), Override { job_type: Some(t.clone()), ..Default::default() })
            }
        };
        o.name = override_name(&job.features.job_type, job.features.job_id.as_deref());
        let result = (|| -> Result<String, String> {
            let Some(delay) = delay_ms else {
                let r = self.send(hyper::Method::DELETE, &format!("/overrides/{}", o.name), None)?;
                return match r.status {
                    200 => Ok(format!("override for {scope} removed")),
                    _ => Err(error_text(&r)),
                };
            };
            o.delay_ms = Some(delay);
            o.reason = Some("set from smartretry tui".into());
            let r = self.send(hyper::Method::POST, "/overrides", serde_json::to_value(&o).ok())?;
            if r.status != 201 {
                return Err(error_text(&r));
            }
            Ok(format!("override applied: {scope} retries after {}", smartretry::fmt_ms(delay)))
        })();
        self.say(result);
        self.refresh();
    }

    /// Ctrl+E: write the strategy in force to a JSON file.
    fn export(&mut self) {
        let result = self.get::<serde_json::Value>("/strategy").and_then(|strategy| {
            let stamp = smartretry::time::format_rfc3339(smartretry::time::now_ms()).replace([':', '.'], "-");
            let path = self.export_dir.join(format!("smartretry-strategy-{stamp}.json"));
            let text = serde_json::to_string_pretty(&strategy).map_err(|e| e.to_string())?;
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(format!("configuration exported to {}", path.display()))
        });
        self.say(result);
    }

    /// One key press.
    pub fn on_key(&mut self, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if let Some(input) = self.override_input.as_mut() {
            match key.code {
                KeyCode::Esc => {
                    self.override_input = None;
                    self.status = "override cancelled".into();
                }
                KeyCode::Enter => {
                    let text = self.override_input.take().unwrap_or_default();
                    match text.trim() {
                        "" => self.apply_override(None),
                        t => match smartretry::time::parse_duration_ms(t) {
                            Ok(ms) => self.apply_override(Some(ms)),
                            Err(e) => self.status = format!("error: delay {t:?}: {e}"),
                        },
                    }
                }
                KeyCode::Backspace => {
                    input.pop();
                }
                KeyCode::Char('c') if ctrl => self.quit = true,
                KeyCode::Char(c) if !ctrl && input.len() < 16 => input.push(c),
                _ => {}
            }
            return;
        }
        match key.code {
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('r') if ctrl => self.retrain(),
            KeyCode::Char('p') if ctrl => self.preview_selected(),
            KeyCode::Char('o') if ctrl => {
                if let Some(job) = self.selected_job() {
                    let name = job.features.job_id.clone().unwrap_or_else(|| job.features.job_type.clone());
                    self.override_input = Some(String::new());
                    self.status = format!("override delay for {name}: type e.g. 5000 or 5s, Enter applies, empty removes, Esc cancels");
                } else {
                    self.say(Err("no job selected: nothing to override".into()));
                }
            }
            KeyCode::Char('e') if ctrl => self.export(),
            KeyCode::Char('a') if ctrl => {
                self.show_alerts = !self.show_alerts;
                self.panel = if self.show_alerts { Panel::Alerts } else { Panel::Live };
            }
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Tab => {
                let order = [Panel::Strategy, Panel::Live, Panel::Analytics];
                let i = order.iter().position(|p| *p == self.panel).map_or(0, |i| (i + 1) % order.len());
                self.panel = order[i];
                self.show_alerts = false;
            }
            KeyCode::Char(c @ '1'..='4') => {
                self.panel = Panel::TABS[(c as u8 - b'1') as usize];
                self.show_alerts = self.panel == Panel::Alerts;
            }
            KeyCode::Char(' ') => {
                self.refresh();
                self.status =
                    format!("refreshed at {}", smartretry::time::format_rfc3339(smartretry::time::now_ms()));
            }
            KeyCode::Enter => {
                match self.selected_job().map(|j| (j.decision.should_retry, j.decision.delay_ms)) {
                    Some((true, delay)) => self.apply_override(Some(delay)),
                    Some((false, _)) => {
                        self.say(Err("the selected recommendation is not to retry: nothing to apply".into()))
                    }
                    None => self.say(Err("no job selected".into())),
                }
            }
            KeyCode::Esc => {
                self.show_alerts = false;
                if self.panel == Panel::Alerts {
                    self.panel = Panel::Live;
                }
                self.preview = None;
            }
            KeyCode::Down | KeyCode::Char('j') => self.select(self.selected.saturating_add(1)),
            KeyCode::Up | KeyCode::Char('k') => self.select(self.selected.saturating_sub(1)),
            _ => {}
        }
    }

    fn select(&mut self, i: usize) {
        let i = i.min(self.data.recent.len().saturating_sub(1));
        if i != self.selected {
            self.selected = i;
            self.preview = None;
        }
    }
}

fn error_text(r: &crate::client::Response) -> String {
    let e = r.json();
    match (e["status"].as_u64(), e["details"].as_str()) {
        (Some(status), Some(details)) => format!("{status}: {details}"),
        _ => format!("HTTP {}: {}", r.status, r.body),
    }
}

/// The override's name for a job (or job type): the characters overrides allow.
fn override_name(job_type: &str, job_id: Option<&str>) -> String {
    let raw = match job_id {
        Some(id) => format!("tui-job-{id}"),
        None => format!("tui-type-{job_type}"),
    };
    raw.chars()
        .map(|c| if c.is_ascii_alphanumeric() || "_-.:".contains(c) { c } else { '_' })
        .take(128)
        .collect()
}

/// Run until q / Ctrl+C, refreshing every `every`.
pub fn run(url: &str, token: Option<String>, every: Duration, export_dir: PathBuf) -> Result<(), String> {
    let mut tui = Tui::new(url, token, export_dir)?;
    tui.refresh();
    let mut terminal = ratatui::try_init().map_err(|e| format!("cannot open the terminal: {e}"))?;
    let result = (|| -> Result<(), String> {
        let mut last = Instant::now();
        while !tui.quit {
            terminal.draw(|f| view::draw(f, &tui)).map_err(|e| e.to_string())?;
            let wait = every.saturating_sub(last.elapsed());
            if event::poll(wait).map_err(|e| e.to_string())? {
                if let Event::Key(key) = event::read().map_err(|e| e.to_string())? {
                    tui.on_key(key);
                }
            }
            if last.elapsed() >= every {
                tui.refresh();
                last = Instant::now();
            }
        }
        Ok(())
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_names_keep_to_the_allowed_characters() {
        assert_eq!(override_name("email", Some("job-1")), "tui-job-job-1");
        assert_eq!(override_name("a b/c", None), "tui-type-a_b_c");
    }
}
