//! `smartretry tui` driven in a real tmux against a real server: keys go in with
//! `send-keys`, the screen comes back with `capture-pane`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{temp_dir, Server, TOKEN};
use serde_json::json;

struct Tmux {
    socket: String,
    target: String,
}

impl Tmux {
    fn start(command: &str, width: u16, height: u16) -> Tmux {
        let socket = format!("smartretry-tui-{}", std::process::id());
        let t = Tmux { socket, target: "tui".into() };
        let (w, h) = (width.to_string(), height.to_string());
        t.run(&["new-session", "-d", "-s", "tui", "-x", &w, "-y", &h, command]);
        t
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("tmux is required for this test (scripts/test.sh installs it)");
        assert!(out.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", &self.target])
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.target];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", &self.target, "-l", text]);
    }

    /// The screen once it shows every needle (the TUI redraws asynchronously).
    fn wait_for(&self, needles: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if needles.iter().all(|n| screen.contains(n)) {
                return screen;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "never saw {needles:?} on:\n{screen}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        Command::new("tmux")
            .args(["-L", &self.socket, "has-session", "-t", &self.target])
            .status()
            .is_ok_and(|s| s.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.socket, "kill-server"]).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tui_shows_the_server_and_its_shortcuts_act_on_it() {
    let server = Server::start(&[], &[]);
    let mut c = server.client();
    // Something learned for email_send / rate_limit (so Ctrl+R can refit it).
    for i in 0..12 {
        let a = json!({"job_id": format!("e{i}"), "job_type": "email_send", "error_class": "rate_limit",
                       "attempt_number": 2, "delay_ms": 5000, "success": i % 2 == 0});
        assert_eq!(c.post("/attempt", &a).await.unwrap().status, 202);
    }
    for f in [
        json!({"job_type": "signup", "http_status": 400, "attempt_number": 1, "job_id": "job-3"}),
        json!({"job_type": "payments", "http_status": 503, "attempt_number": 1, "job_id": "job-2"}),
        json!({"job_type": "email_send", "error_class": "rate_limit", "error_code": "429", "attempt_number": 1, "job_id": "job-1"}),
    ] {
        assert_eq!(c.post("/recommendation", &f).await.unwrap().status, 200);
    }
    let export = temp_dir("tui-export");
    let command = format!(
        "env RETRY_API_TOKEN={TOKEN} {} tui --url {} --refresh 3600 --export-dir {}",
        env!("CARGO_BIN_EXE_smartretry"),
        server.url,
        export.display()
    );
    let tmux = Tmux::start(&command, 150, 45);

    // Wide: three panels, the newest job selected.
    let screen =
        tmux.wait_for(&["Strategy", "[Live recommendations]", "Analytics", "email_send / rate_limit #1"]);
    for needle in [
        "max attempts: 10",
        "rate_limit (6×",
        "payments / service_unavailable #1",
        "signup / validation #1 → no retry",
        "email_send · rate_limit · attempt 1 of 6",
        "Why: ",
    ] {
        assert!(screen.contains(needle), "{needle:?} not on:\n{screen}");
    }

    // Ctrl+P: the next-retry timeline of the selected job.
    tmux.keys(&["C-p"]);
    tmux.wait_for(&["Next retries (Ctrl+P):", "#2 ", "#5 ", "preview of email_send"]);

    // Ctrl+R: refit the selected job's model.
    tmux.keys(&["C-r"]);
    tmux.wait_for(&["retrained email_send / rate_limit"]);

    // Ctrl+O on payments' job: type a delay, Enter sets an operator override for it.
    tmux.keys(&["Down"]);
    tmux.wait_for(&["Why: The service_unavailable policy"]);
    tmux.keys(&["C-o"]);
    tmux.wait_for(&["Override delay for job-2: _"]);
    tmux.type_text("7s");
    tmux.wait_for(&["Override delay for job-2: 7s_"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["override applied: job job-2 retries after 7s", "job_id=job-2 delay 7s"]);
    let again = json!({"job_type": "payments", "http_status": 503, "attempt_number": 2, "job_id": "job-2"});
    let d = c.post("/recommendation", &again).await.unwrap().json();
    assert!(d["policy_guardrails"].as_array().unwrap().iter().any(|g| g == "override"), "{d}");
    assert!(
        d["rationale"].as_str().unwrap().contains("7s: the delay an operator set for job_id=job-2"),
        "{d}"
    );

    // Esc cancels an override being typed: nothing changes.
    tmux.keys(&["C-o"]);
    tmux.type_text("9");
    tmux.keys(&["Escape"]);
    tmux.wait_for(&["override cancelled"]);
    let overrides = c.get("/overrides").await.unwrap().json();
    let set = overrides["overrides"].as_array().unwrap();
    assert_eq!(set.len(), 1, "{overrides}");
    assert_eq!(
        (set[0]["job_id"].as_str(), set[0]["delay_ms"].as_u64()),
        (Some("job-2"), Some(7000)),
        "{overrides}"
    );

    // Ctrl+E: the configuration goes to a file.
    tmux.keys(&["C-e"]);
    tmux.wait_for(&["configuration exported to"]);
    let exported: Vec<_> = std::fs::read_dir(&export).unwrap().flatten().collect();
    assert_eq!(exported.len(), 1);
    let strategy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exported[0].path()).unwrap()).unwrap();
    assert!(strategy["guardrails"]["max_attempts"].is_number(), "{strategy}");

    // Ctrl+A: alerts; Esc goes back.
    tmux.keys(&["C-a"]);
    tmux.wait_for(&["[Alerts]", "no alerts"]);
    tmux.keys(&["Escape"]);
    tmux.wait_for(&["[Live recommendations]"]);

    // Tab moves the focus across the panels.
    tmux.keys(&["Tab"]);
    tmux.wait_for(&["[Analytics]"]);
    tmux.keys(&["Tab"]);
    tmux.wait_for(&["[Strategy]"]);
    tmux.keys(&["Tab"]);
    tmux.wait_for(&["[Live recommendations]"]);

    // Space refreshes now (the periodic refresh is an hour here): a recommendation made
    // meanwhile shows up.
    c.post(
        "/recommendation",
        &json!({"job_type": "reports", "http_status": 500, "attempt_number": 1, "job_id": "job-9"}),
    )
    .await
    .unwrap();
    tmux.keys(&["Space"]);
    tmux.wait_for(&["refreshed at", "reports / "]);

    // Enter applies the selected recommendation: its delay pinned for that job.
    tmux.keys(&["Up", "Up", "Up", "Up", "Up"]);
    tmux.wait_for(&["Why: The fallback policy"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for(&["override applied: job job-9"]);
    let overrides = c.get("/overrides").await.unwrap().json();
    assert!(overrides["overrides"].as_array().unwrap().iter().any(|o| o["job_id"] == "job-9"), "{overrides}");

    // Narrow: tabs instead of panels; 1–4 switch them.
    tmux.run(&["resize-window", "-t", "tui", "-x", "70", "-y", "30"]);
    tmux.wait_for(&["1 Strategy", "2 Live", "3 Analytics", "4 Alerts"]);
    tmux.keys(&["3"]);
    let screen = tmux.wait_for(&["[Analytics]", "decisions: ", "learned keys: "]);
    assert!(!screen.contains("Live recommendations"), "one panel at a time:\n{screen}");
    tmux.keys(&["1"]);
    tmux.wait_for(&["[Strategy]", "max attempts: 10"]);
    tmux.keys(&["4"]);
    tmux.wait_for(&["[Alerts]", "no alerts"]);
    tmux.keys(&["2"]);
    tmux.wait_for(&["[Live recommendations]", "reports / "]);

    // q quits and gives the terminal back.
    tmux.keys(&["q"]);
    let start = Instant::now();
    while tmux.alive() {
        assert!(start.elapsed() < Duration::from_secs(10), "the TUI did not quit");
        std::thread::sleep(Duration::from_millis(100));
    }
}
