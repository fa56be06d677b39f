//! Drawing: three panels side by side when the terminal is wide, tabs when it is narrow.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph, Tabs, Wrap};
use ratatui::Frame;
use smartretry::fmt_ms;
use smartretry::BreakerState;

use super::state::{Panel, Tui, NARROW_WIDTH};

pub fn draw(f: &mut Frame, t: &Tui) {
    let area = f.area();
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(3), Constraint::Length(2)]).areas(area);
    f.render_widget(Paragraph::new(header_line(t)), header);
    if area.width < NARROW_WIDTH {
        let [tabs, panel] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(body);
        let titles = Panel::TABS.iter().enumerate().map(|(i, p)| format!("{} {}", i + 1, short(*p)));
        let selected = Panel::TABS.iter().position(|p| *p == t.panel).unwrap_or(1);
        f.render_widget(Tabs::new(titles).select(selected).highlight_style(Style::new().reversed()), tabs);
        draw_panel(f, t, t.panel, panel, true);
    } else {
        let [left, center, right] = Layout::horizontal([
            Constraint::Percentage(28),
            Constraint::Percentage(44),
            Constraint::Percentage(28),
        ])
        .areas(body);
        draw_panel(f, t, Panel::Strategy, left, t.panel == Panel::Strategy);
        let middle = if t.show_alerts { Panel::Alerts } else { Panel::Live };
        draw_panel(f, t, middle, center, t.panel == Panel::Live || t.panel == Panel::Alerts);
        draw_panel(f, t, Panel::Analytics, right, t.panel == Panel::Analytics);
    }
    let status = match (&t.override_input, &t.error) {
        (Some(input), _) => {
            let job = t
                .selected_job()
                .map(|j| j.features.job_id.as_deref().unwrap_or(&j.features.job_type))
                .unwrap_or("?");
            format!("Override delay for {job}: {input}_   (Enter apply · Esc cancel)")
        }
        (None, Some(e)) => format!("disconnected: {e}"),
        (None, None) => t.status.clone(),
    };
    f.render_widget(
        Paragraph::new(status)
            .wrap(Wrap { trim: true })
            .block(Block::bordered().borders(ratatui::widgets::Borders::TOP)),
        footer,
    );
}

fn short(p: Panel) -> &'static str {
    match p {
        Panel::Live => "Live",
        other => other.title(),
    }
}

fn header_line(t: &Tui) -> Line<'static> {
    let stopped = t.data.strategy.as_ref().is_some_and(|s| s.guardrails.emergency_stop);
    let mut spans = vec![Span::from("smartretry ").bold(), Span::from(t.url.clone())];
    if t.error.is_some() {
        spans.push(Span::from("  DISCONNECTED").red().bold());
    }
    if stopped {
        spans.push(Span::from("  EMERGENCY STOP").red().bold());
    }
    Line::from(spans)
}

fn block(title: &str, focused: bool) -> Block<'static> {
    let b = Block::bordered().title(if focused { format!("[{title}]") } else { title.to_string() });
    if focused {
        b.border_style(Style::new().add_modifier(Modifier::BOLD))
    } else {
        b
    }
}

fn draw_panel(f: &mut Frame, t: &Tui, panel: Panel, area: Rect, focused: bool) {
    match panel {
        Panel::Strategy => {
            f.render_widget(Paragraph::new(strategy_lines(t)).block(block(panel.title(), focused)), area)
        }
        Panel::Analytics => {
            f.render_widget(Paragraph::new(analytics_lines(t)).block(block(panel.title(), focused)), area)
        }
        Panel::Alerts => f.render_widget(
            Paragraph::new(alert_lines(t)).wrap(Wrap { trim: true }).block(block(panel.title(), focused)),
            area,
        ),
        Panel::Live => draw_live(f, t, area, focused),
    }
}

fn kv(key: &str, value: impl ToString) -> Line<'static> {
    Line::from(vec![Span::from(format!("{key}: ")).dim(), Span::from(value.to_string())])
}

fn strategy_lines(t: &Tui) -> Vec<Line<'static>> {
    let Some(s) = &t.data.strategy else { return vec![Line::from("waiting for the server…")] };
    let g = &s.guardrails;
    let mut lines = vec![
        kv("strategy", &s.name),
        kv("enabled", s.enabled),
        kv("bayesian threshold", s.bayesian_threshold),
        kv("ML tier", if s.ml_enabled { "on" } else { "off" }),
        Line::from("Guardrails").bold(),
        kv("  max attempts", g.max_attempts),
        kv("  max delay", fmt_ms(g.max_delay_ms)),
        kv("  retry budget", format!("{}% of first attempts", g.max_budget_percent)),
        kv("  per-tenant limits", g.per_tenant_limits),
        kv("  emergency stop", if g.emergency_stop { "ON" } else { "off" }),
        Line::from("Policies").bold(),
    ];
    for p in &t.data.policies {
        let what = if p.max_attempts <= 1 {
            "no retry".to_string()
        } else {
            format!("{}× {}–{}", p.max_attempts, fmt_ms(p.base_delay_ms), fmt_ms(p.max_delay_ms))
        };
        lines.push(Line::from(format!("  {} ({what})", p.name)));
    }
    if !t.data.overrides.is_empty() {
        lines.push(Line::from("Overrides").bold());
        for o in &t.data.overrides {
            let delay = o.delay_ms.map(|d| format!(" delay {}", fmt_ms(d))).unwrap_or_default();
            lines.push(Line::from(format!("  {}{delay}", o.scope())));
        }
    }
    lines
}

fn draw_live(f: &mut Frame, t: &Tui, area: Rect, focused: bool) {
    let outer = block(Panel::Live.title(), focused);
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    let [list_area, detail_area] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Min(4)]).areas(inner);
    if t.data.recent.is_empty() {
        f.render_widget(
            Paragraph::new("no recommendations yet: POST /recommendation to see them here"),
            list_area,
        );
        return;
    }
    let items: Vec<ListItem> = t
        .data
        .recent
        .iter()
        .map(|r| {
            let d = &r.decision;
            let verdict =
                if d.should_retry { format!("retry in {}", fmt_ms(d.delay_ms)) } else { "no retry".into() };
            ListItem::new(format!(
                "{} / {} #{} → {verdict} ({})",
                r.features.job_type,
                d.error_class,
                r.features.attempt_number,
                d.method.as_str()
            ))
        })
        .collect();
    let mut state = ListState::default().with_selected(Some(t.selected));
    f.render_stateful_widget(
        List::new(items).highlight_symbol("> ").highlight_style(Style::new().reversed()),
        list_area,
        &mut state,
    );
    let Some(job) = t.selected_job() else { return };
    let d = &job.decision;
    let mut lines = vec![
        Line::from(format!(
            "{} · {} · attempt {} of {} · confidence {:.2}",
            job.features.job_type, d.error_class, job.features.attempt_number, d.max_attempts, d.confidence
        ))
        .bold(),
        Line::from(format!("Why: {}", d.rationale)),
    ];
    if !d.policy_guardrails.is_empty() {
        lines.push(Line::from(format!(
            "Guardrails: {}",
            d.policy_guardrails.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", ")
        )));
    }
    match &t.preview {
        Some(p) if !p.timeline.is_empty() => {
            lines.push(Line::from("Next retries (Ctrl+P):").bold());
            for e in &p.timeline {
                let at = e.scheduled_time.get(11..19).unwrap_or(&e.scheduled_time);
                lines.push(Line::from(format!(
                    "  #{:<2} +{:<7} at {at}  p={:.2}  {}",
                    e.attempt_number,
                    fmt_ms(e.delay_ms),
                    e.estimated_success,
                    e.method.as_str()
                )));
            }
        }
        Some(_) => lines.push(Line::from("Next retries: none (the engine would not retry)")),
        None => lines.push(Line::from("Ctrl+P: preview the next-retry timeline").dim()),
    }
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), detail_area);
}

fn analytics_lines(t: &Tui) -> Vec<Line<'static>> {
    let Some(m) = &t.data.metrics else { return vec![Line::from("waiting for the server…")] };
    let mut lines = vec![
        kv("decisions", m.decisions_total),
        kv("  retried", m.retries_total),
        kv("  refused", m.refusals_total),
    ];
    lines.push(Line::from("By tier").bold());
    for (method, n) in m.decisions_by_method.iter().filter(|(_, n)| *n > 0) {
        lines.push(kv(&format!("  {}", method.as_str()), n));
    }
    lines.push(kv("learned keys", m.learned_keys));
    lines.push(kv("recorded", m.records_total));
    lines.push(kv("answered 429", t.data.refused_429));
    if let Some(b) = &t.data.budget {
        lines.push(kv("retry budget", format!("{}/{} in {}", b.retries, b.allowed, fmt_ms(b.window_ms))));
    }
    let triggered: Vec<_> = m.guardrail_triggers.iter().filter(|(_, n)| *n > 0).collect();
    if !triggered.is_empty() {
        lines.push(Line::from("Guardrails triggered").bold());
        for (name, n) in triggered {
            lines.push(kv(&format!("  {name}"), n));
        }
    }
    if !t.data.breakers.is_empty() {
        lines.push(Line::from("Circuit breakers").bold());
        for b in &t.data.breakers {
            let state = match b.state {
                BreakerState::Closed => "closed",
                BreakerState::Open => "OPEN",
                BreakerState::HalfOpen => "half-open",
            };
            lines.push(Line::from(format!("  {} {state} ({:.0}% failing)", b.key, b.failure_rate * 100.0)));
        }
    }
    lines
}

fn alert_lines(t: &Tui) -> Vec<Line<'static>> {
    if t.data.alerts.is_empty() {
        return vec![Line::from("no alerts")];
    }
    t.data
        .alerts
        .iter()
        .rev()
        .map(|a| {
            let at = a.timestamp.get(11..19).unwrap_or(&a.timestamp);
            Line::from(format!("{at} {} [{}] {}", a.alert, a.severity, a.message))
        })
        .collect()
}
