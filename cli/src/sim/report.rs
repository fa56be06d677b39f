//! The report: a table for people, CSV for tools, an SVG chart to look at.

use std::fmt::Write as _;

use super::bound::Bound;
use super::{Figures, Run, SmartRetry};

fn secs(ms: f64) -> String {
    format!("{:.1}s", ms / 1_000.0)
}

/// A duration as people write it (`30m`, `1h30m`).
pub fn duration(ms: u64) -> String {
    smartretry::fmt_ms(ms)
}

/// The distinct deadlines, shortest first (`30m`, or `10m, 30m`).
pub fn deadlines(ms: impl Iterator<Item = u64>) -> String {
    let mut all: Vec<u64> = ms.collect();
    all.sort_unstable();
    all.dedup();
    all.into_iter().map(duration).collect::<Vec<_>>().join(", ")
}

/// Rows of cells, rendered aligned for a terminal or as a markdown table to paste.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The first column left-aligned, the rest right-aligned (numbers).
    pub fn render(&self, markdown: bool) -> String {
        let mut out = String::new();
        if markdown {
            let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
            out.push_str(&line(&self.header));
            let rule: Vec<String> =
                (0..self.header.len()).map(|i| if i == 0 { "---" } else { "---:" }.to_string()).collect();
            out.push_str(&line(&rule));
            for row in &self.rows {
                out.push_str(&line(row));
            }
            return out;
        }
        let width = |i: usize| {
            self.rows.iter().chain([&self.header]).map(|r| r.get(i).map_or(0, |c| c.chars().count())).max()
        };
        let widths: Vec<usize> = (0..self.header.len()).map(|i| width(i).unwrap_or(0)).collect();
        for row in [&self.header].into_iter().chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, &w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

/// One scenario's rows, with each policy's time to success as a multiple of the
/// oracle's, the restricted mean (a lost job costs the deadline) and the lost jobs a
/// well-timed retry would have saved.
pub fn table(rows: &[Figures], markdown: bool) -> String {
    let oracle = rows.iter().find(|r| r.policy == "oracle").map_or(0.0, |r| r.mean_time_to_success_ms);
    let mut t = Table::new(&[
        "policy",
        "jobs",
        "success",
        "mean TTS",
        "p95 TTS",
        "×oracle",
        "restricted",
        "retries",
        "/recovered",
        "wasted",
        "lost",
        "lost recoverable",
        "1st ok",
    ]);
    for r in rows {
        // Figures over recovered jobs mean nothing when none recovered.
        let over_recovered = |text: String| if r.recovered > 0 { text } else { "-".into() };
        let ratio = over_recovered(if oracle > 0.0 {
            format!("{:.2}", r.mean_time_to_success_ms / oracle)
        } else {
            "-".into()
        });
        t.push(vec![
            r.policy.clone(),
            r.failed_jobs.to_string(),
            format!("{:.1}%", r.success_rate * 100.0),
            over_recovered(secs(r.mean_time_to_success_ms)),
            over_recovered(secs(r.p95_time_to_success_ms)),
            ratio,
            secs(r.restricted_mean_tts_ms),
            format!("{:.2}", r.retries_per_job),
            over_recovered(format!("{:.2}", r.retries_per_recovered_job)),
            format!("{:.2}", r.wasted_retries_per_job),
            r.lost.to_string(),
            r.lost_recoverable.to_string(),
            format!("{:.0}%", r.first_retry_success * 100.0),
        ]);
    }
    let mut out = t.render(markdown);
    if let Some(r) = rows.first() {
        let _ = writeln!(
            out,
            "restricted = mean time to success over every failed job, a lost job counting the {} deadline",
            duration(r.deadline_ms)
        );
    }
    out
}

/// smartretry against each other policy, on the jobs both recovered (a fair comparison
/// of speed: a policy that gives up on slow jobs is not faster for it).
pub fn paired(rows: &[Figures]) -> String {
    let mut out = String::from("paired time to success (jobs both recovered): smartretry vs");
    for r in rows.iter().filter(|r| r.paired_jobs > 0) {
        let _ = write!(
            out,
            " {} {}/{} (n={});",
            r.policy,
            secs(r.paired_smartretry_tts_ms),
            secs(r.paired_tts_ms),
            r.paired_jobs
        );
    }
    out.push('\n');
    out
}

/// The product documents' claims, checked against this run where it can say something.
pub fn claims(scenario: &str, runs: &[Run]) -> String {
    let find = |name: &str| runs.iter().find(|r| r.figures.policy == name);
    let (Some(smart), Some(traditional)) = (find(SmartRetry::HEADLINE), find("traditional_2s_doubling"))
    else {
        return String::new();
    };
    let mut out = String::new();
    match scenario {
        "payment_503_peak" => {
            let mut delays: Vec<u64> = smart.first_retry_delay_ms.iter().flatten().copied().collect();
            delays.sort_unstable();
            let median = delays.get(delays.len() / 2).copied().unwrap_or(0);
            let savings: Vec<i64> = smart
                .recovered_after_ms
                .iter()
                .zip(&traditional.recovered_after_ms)
                .filter_map(|(a, b)| Some((*b)? as i64 - (*a)? as i64))
                .collect();
            let n = savings.len().max(1) as f64;
            let mean = savings.iter().sum::<i64>() as f64 / n;
            let big = savings.iter().filter(|&&s| s >= 25_000).count() as f64 / n;
            let _ = writeln!(
                out,
                "claim \"85 % recover within 6–12 s → recommend ~7–8 s, saving 25+ s vs 2-4-8-16-32\": first retry after {} \
                 (median); vs the doubling schedule {} saved per job on average, 25 s or more for {:.0} % of jobs",
                secs(median as f64),
                secs(mean),
                big * 100.0
            );
        }
        "rate_limit_429" => {
            let rate = |name: &str| find(name).map_or(0.0, |r| r.figures.first_retry_success * 100.0);
            let _ = writeln!(
                out,
                "claim \"429: 95 % first-retry success vs 30 % with exponential backoff\": smartretry {:.0} %, \
                 exponential full jitter {:.0} %, tenacity random exponential {:.0} %, 2 s doubling {:.0} %",
                rate(SmartRetry::HEADLINE),
                rate("exponential_full_jitter"),
                rate("tenacity_random_exponential"),
                rate("traditional_2s_doubling")
            );
        }
        _ => {}
    }
    out
}

/// What the best-schedule bound says about the goal (≤ target × oracle, ≤ cap retries),
/// or why there is none for this scenario.
pub fn bound(b: &Result<Bound, String>, runs: &[Run]) -> String {
    let b = match b {
        Ok(b) => b,
        Err(why) => return format!("bound: none here: {why}\n"),
    };
    let needed = b.retries_for_target.map_or_else(
        || format!("no schedule reaches {:.1}× at all", b.target),
        |r| format!("reaching {:.1}× needs {r:.2} retries per recovered job", b.target),
    );
    let mut out = format!(
        "bound: with at most {:.1} retries per recovered job, no policy blind to each job's own recovery time \
         gets below {:.2}× oracle; {needed}",
        b.retry_cap, b.ratio
    );
    if let Some(smart) = runs.iter().find(|r| r.figures.policy == SmartRetry::HEADLINE) {
        let retries = smart.figures.retries_per_recovered_job;
        if let Some(best) = b.ratio_at(retries) {
            let _ = write!(out, "; at smartretry's {retries:.2} retries the bound is {best:.2}×");
        }
    }
    out.push('\n');
    out
}

pub fn csv(rows: &[Figures]) -> String {
    let mut out = String::from(
        "scenario,policy,seed,failed_jobs,recovered,lost,lost_recoverable,success_rate,mean_time_to_success_ms,\
         p95_time_to_success_ms,deadline_ms,restricted_mean_tts_ms,paired_jobs,paired_tts_ms,paired_smartretry_tts_ms,\
         retries_per_job,retries_per_recovered_job,wasted_retries_per_job,retries_on_permanent_failures,\
         first_retry_success\n",
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{:.4},{:.1},{:.1},{},{:.1},{},{:.1},{:.1},{:.4},{:.4},{:.4},{},{:.4}",
            r.scenario,
            r.policy,
            r.seed,
            r.failed_jobs,
            r.recovered,
            r.lost,
            r.lost_recoverable,
            r.success_rate,
            r.mean_time_to_success_ms,
            r.p95_time_to_success_ms,
            r.deadline_ms,
            r.restricted_mean_tts_ms,
            r.paired_jobs,
            r.paired_tts_ms,
            r.paired_smartretry_tts_ms,
            r.retries_per_job,
            r.retries_per_recovered_job,
            r.wasted_retries_per_job,
            r.retries_on_permanent_failures,
            r.first_retry_success
        );
    }
    out
}

const COLORS: [&str; 10] = [
    "#8c8c8c", "#b07aa1", "#9c755f", "#76b7b2", "#edc948", "#4e79a7", "#e15759", "#ff9da7", "#f28e2b",
    "#59a14f",
];

/// Small multiples, one panel per scenario: x = retries per failed job (downstream
/// load), y = restricted mean time to success as a multiple of the oracle's (a policy
/// that loses jobs is not drawn as fast for it). Down-left is better.
pub fn svg(rows: &[Figures]) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    let mut policies: Vec<&str> = Vec::new();
    for r in rows {
        if !scenarios.contains(&r.scenario.as_str()) {
            scenarios.push(&r.scenario);
        }
        if !policies.contains(&r.policy.as_str()) {
            policies.push(&r.policy);
        }
    }
    let (pw, ph, cols) = (300.0, 240.0, 3usize);
    let grid_rows = scenarios.len().div_ceil(cols);
    let (width, height) =
        (cols as f64 * pw + 20.0, grid_rows as f64 * ph + 40.0 + 18.0 * policies.len() as f64);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="10" y="18" font-size="14" font-weight="bold">Restricted mean time to success (× oracle; a lost job costs its deadline, {}) vs retries per failed job — lower-left is better; dot size = share recovered</text>"#,
        deadlines(rows.iter().map(|r| r.deadline_ms))
    );
    for (i, name) in scenarios.iter().enumerate() {
        let (ox, oy) = (10.0 + (i % cols) as f64 * pw, 30.0 + (i / cols) as f64 * ph);
        let (x0, y0, w, h) = (ox + 40.0, oy + 20.0, pw - 60.0, ph - 60.0);
        let mine: Vec<&Figures> = rows.iter().filter(|r| r.scenario == *name).collect();
        let oracle =
            mine.iter().find(|r| r.policy == "oracle").map_or(1.0, |r| r.restricted_mean_tts_ms.max(1.0));
        let ratio = |r: &Figures| r.restricted_mean_tts_ms / oracle;
        let max_x = mine.iter().map(|r| r.retries_per_job).fold(1.0, f64::max) * 1.1;
        let max_y = mine.iter().map(|r| ratio(r)).filter(|v| v.is_finite()).fold(2.0, f64::max) * 1.1;
        let _ = writeln!(s, r#"<text x="{ox}" y="{}" font-weight="bold">{name}</text>"#, oy + 12.0);
        let _ =
            writeln!(s, r##"<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#999"/>"##);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">retries per job (0–{max_x:.1})</text>"#,
            x0 + w / 2.0,
            y0 + h + 16.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" transform="rotate(-90 {} {})" text-anchor="middle">restricted TTS × oracle (0–{max_y:.1})</text>"#,
            ox + 12.0,
            y0 + h / 2.0,
            ox + 12.0,
            y0 + h / 2.0
        );
        let y1 = y0 + h - h / max_y;
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{y1}" x2="{}" y2="{y1}" stroke="#59a14f" stroke-dasharray="3,3"/>"##,
            x0 + w
        );
        for r in &mine {
            let v = ratio(r);
            if !v.is_finite() {
                continue;
            }
            let color = COLORS[policies.iter().position(|p| *p == r.policy).unwrap_or(0) % COLORS.len()];
            let (cx, cy) = (x0 + w * r.retries_per_job / max_x, y0 + h - h * v / max_y);
            let radius = 2.0 + 6.0 * r.success_rate;
            let _ = writeln!(
                s,
                r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="{radius:.1}" fill="{color}" fill-opacity="0.8"/>"#
            );
        }
    }
    let legend_y = 30.0 + grid_rows as f64 * ph + 10.0;
    for (i, p) in policies.iter().enumerate() {
        let y = legend_y + 18.0 * i as f64;
        let _ = writeln!(s, r#"<circle cx="20" cy="{y}" r="5" fill="{}"/>"#, COLORS[i % COLORS.len()]);
        let _ = writeln!(s, r#"<text x="32" y="{}">{p}</text>"#, y + 4.0);
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_aligned_or_as_markdown() {
        let mut t = Table::new(&["policy", "lost"]);
        t.push(vec!["smartretry".into(), "3".into()]);
        t.push(vec!["oracle".into(), "120".into()]);
        assert_eq!(t.render(false), "policy      lost\nsmartretry     3\noracle       120\n");
        assert_eq!(
            t.render(true),
            "| policy | lost |\n| --- | ---: |\n| smartretry | 3 |\n| oracle | 120 |\n"
        );
    }
}
