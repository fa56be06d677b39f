//! `smartretry`: operate and evaluate the engine from a terminal.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use smartretry_cli::serve::{self, ServeFlags, ServeOptions};
use smartretry_cli::sim::{self, report, Scenario};

#[derive(Parser)]
#[command(name = "smartretry", version, about = "A retry engine that learns when a failed job will succeed")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run jobs against simulated downstreams in virtual time and compare retry policies.
    Simulate(SimulateArgs),
    /// Serve the HTTP API (recommendations, attempts, policies, guardrails, metrics, alerts).
    /// Requests need `Authorization: Bearer <token>`: RETRY_API_TOKEN reads and writes,
    /// RETRY_API_READ_TOKEN only reads; without RETRY_API_TOKEN a token is generated on the
    /// first start, printed once and kept (hashed) with the state. /health and /metrics
    /// are open unless RETRY_API_OPEN=none.
    Serve(ServeArgs),
    /// A keyboard-driven terminal view of a running server (strategy, live recommendations
    /// with their next-retry timeline, analytics, alerts).
    Tui(TuiArgs),
    /// A bounded load test over loopback: recommendations/s, latency percentiles and the
    /// server's memory (starts its own server unless --url is given).
    Loadtest(LoadtestArgs),
    /// Train ML-tier models from attempt history: runs `python -m smartretry.train` with
    /// these arguments (`smartretry train --help` for them). The Python comes from
    /// SMARTRETRY_PYTHON, else a .venv here or above, else python3; it needs the
    /// smartretry package with its ml extra.
    #[command(disable_help_flag = true)]
    Train(TrainArgs),
}

#[derive(Args)]
struct LoadtestArgs {
    /// A running server's API base URL (its token from RETRY_API_TOKEN); default: start one.
    #[arg(long)]
    url: Option<String>,
    /// How long to run (e.g. 30s, 5m).
    #[arg(long, default_value = "10s")]
    duration: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Threads of the load generator (the rest of the machine is the server's).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Distinct job types in the traffic.
    #[arg(long, default_value_t = 200)]
    job_types: usize,
    /// Print the report as JSON too.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct TuiArgs {
    /// The server's API base URL.
    #[arg(long, env = "RETRY_API_URL", default_value = "http://127.0.0.1:8080/api/v1/retry")]
    url: String,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0)]
    refresh: f64,
    /// Where Ctrl+E writes the exported configuration.
    #[arg(long, default_value = ".", value_name = "DIR")]
    export_dir: PathBuf,
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (default: the config file's server.addr, else 127.0.0.1:<api.port>).
    #[arg(long, env = "RETRY_API_ADDR")]
    addr: Option<String>,
    /// SQLite file for history, learned state, the DLQ and models (default: the config's
    /// `store`, e.g. Redis, else ./smartretry.db).
    #[arg(long, env = "RETRY_DB", value_name = "PATH")]
    db: Option<PathBuf>,
    /// JSON config file (the core's configuration plus a `server` section).
    #[arg(long, env = "RETRY_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Largest request body accepted (default 65536).
    #[arg(long, env = "RETRY_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Where alerts are posted as JSON (http://host:port/path).
    #[arg(long, env = "RETRY_ALERT_WEBHOOK", value_name = "URL")]
    alert_webhook: Option<String>,
    /// Replace the API token kept with the state (printed once) and serve with it.
    #[arg(long)]
    new_token: bool,
}

#[derive(Args)]
struct TrainArgs {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Args)]
struct SimulateArgs {
    /// Built-in scenarios to run (default: all). See --list.
    #[arg(long = "scenario", value_name = "NAME")]
    scenarios: Vec<String>,
    /// A scenario of your own, as JSON (repeatable).
    #[arg(long = "file", value_name = "PATH")]
    files: Vec<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run every scenario for each of these seeds (`1-6`, `1,3,5`) and print a summary per
    /// scenario across them instead of one table per scenario.
    #[arg(long, value_name = "SEEDS", conflicts_with_all = ["seed", "ablations", "export"])]
    seeds: Option<String>,
    /// Print tables as markdown, to paste into documents.
    #[arg(long)]
    markdown: bool,
    /// Where the CSV and the SVG chart go.
    #[arg(long, default_value = "target/simulate")]
    out: PathBuf,
    /// List the built-in scenarios and what each field means (as JSON), and exit.
    #[arg(long)]
    list: bool,
    /// Compare smartretry with each of its ideas switched off instead of the baselines.
    #[arg(long)]
    ablations: bool,
    /// Also write the attempt history of smartretry's rules tier (JSON lines, the API's
    /// Attempt shape): training data for the ML tier, retries spread over the schedule.
    #[arg(long, value_name = "PATH")]
    export: Option<PathBuf>,
    /// Add a row for smartretry with this ML model deployed (an .onnx file with its
    /// sidecar .json beside it, e.g. from `smartretry train`).
    #[arg(long, value_name = "MODEL.onnx")]
    model: Option<PathBuf>,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Simulate(args) => simulate(args),
        Command::Serve(args) => serve(args),
        Command::Tui(args) => tui(args),
        Command::Loadtest(args) => loadtest(args),
        Command::Train(args) => train(args),
    }
}

fn train(args: TrainArgs) -> ExitCode {
    let python = serve::train::trainer_python();
    match std::process::Command::new(&python).args(["-m", "smartretry.train"]).args(&args.args).status() {
        Ok(status) => ExitCode::from(status.code().map_or(1, |c| c.clamp(0, 255) as u8)),
        Err(e) => {
            eprintln!(
                "error: cannot run {}: {e}; set SMARTRETRY_PYTHON to a Python with smartretry[ml] installed",
                python.display()
            );
            ExitCode::from(2)
        }
    }
}

fn loadtest(args: LoadtestArgs) -> ExitCode {
    let duration = match smartretry::time::parse_duration_ms(&args.duration) {
        Ok(ms) if ms >= 100 => std::time::Duration::from_millis(ms),
        Ok(_) => {
            eprintln!("error: --duration: at least 100ms");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: --duration: {e}");
            return ExitCode::from(2);
        }
    };
    if !(1..=4096).contains(&args.connections) {
        eprintln!("error: --connections: must be 1–4096");
        return ExitCode::from(2);
    }
    let opts = smartretry_cli::loadtest::LoadOptions {
        url: args.url,
        token: std::env::var("RETRY_API_TOKEN").ok(),
        duration,
        connections: args.connections,
        client_threads: args.client_threads,
        job_types: args.job_types,
        sample_every: std::time::Duration::from_secs(1),
    };
    match smartretry_cli::loadtest::run(&opts) {
        Ok(report) => {
            print!("{}", report.summary());
            if args.json {
                println!("{}", serde_json::to_string(&report).unwrap_or_default());
            }
            if report.errors > 0 {
                eprintln!("error: {} requests failed", report.errors);
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn tui(args: TuiArgs) -> ExitCode {
    if !(args.refresh.is_finite() && (0.1..=3600.0).contains(&args.refresh)) {
        eprintln!("error: --refresh: must be 0.1–3600 seconds, got {}", args.refresh);
        return ExitCode::from(2);
    }
    let token = std::env::var("RETRY_API_TOKEN").ok();
    let every = std::time::Duration::from_secs_f64(args.refresh);
    match smartretry_cli::tui::run(&args.url, token, every, args.export_dir) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let flags = ServeFlags {
        addr: args.addr,
        db: args.db,
        config_file: args.config.as_deref(),
        max_body_bytes: args.max_body_bytes,
        alert_webhook: args.alert_webhook,
        new_token: args.new_token,
    };
    let opts = match ServeOptions::resolve(flags, std::env::vars()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let base = opts.config.api.path.clone();
    let served = runtime.block_on(serve::run(opts, |addr| {
        // Tests and scripts read this line to find the port of `--addr 127.0.0.1:0`.
        println!("smartretry serve: listening on http://{addr}{base}");
    }));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn simulate(args: SimulateArgs) -> ExitCode {
    let SimulateArgs { scenarios: names, files, seed, seeds, markdown, out, list, ablations, export, model } =
        args;
    let builtin = sim::builtin();
    if list {
        let fields: serde_json::Map<String, serde_json::Value> =
            sim::scenario::FIELDS.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect();
        let listing = serde_json::json!({ "fields": fields, "scenarios": builtin });
        println!("{}", serde_json::to_string_pretty(&listing).unwrap_or_default());
        return ExitCode::SUCCESS;
    }
    let seeds = match seeds.as_deref().map(sim::seeds::parse) {
        None => None,
        Some(Ok(seeds)) => Some(seeds),
        Some(Err(e)) => {
            eprintln!("error: --{e}");
            return ExitCode::from(2);
        }
    };
    let mut chosen: Vec<Scenario> = Vec::new();
    for name in &names {
        match builtin.iter().find(|s| &s.name == name) {
            Some(s) => chosen.push(s.clone()),
            None => {
                let known: Vec<&str> = builtin.iter().map(|s| s.name.as_str()).collect();
                eprintln!("error: unknown scenario {name:?}; built-in: {}", known.join(", "));
                return ExitCode::from(2);
            }
        }
    }
    for path in &files {
        let loaded =
            std::fs::read_to_string(path).map_err(|e| e.to_string()).and_then(|t| Scenario::from_json(&t));
        match loaded {
            Ok(s) => chosen.push(s),
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    if chosen.is_empty() {
        chosen = builtin;
    }
    // The ML row: only with a model that loads here; otherwise say why there is none.
    let model = match &model {
        None => {
            let status = smartretry::Engine::new().ml_status();
            let runtime = match (status.runtime, status.reason) {
                (Some(lib), _) => format!("ONNX Runtime: {lib}"),
                (None, reason) => reason.unwrap_or_default(),
            };
            println!(
                "ML tier: no row (pass --model MODEL.onnx; `smartretry train` makes one, see docs/ml.md); {runtime}"
            );
            None
        }
        Some(path) => match sim::SmartRetry::with_model(seed, path) {
            Ok(_) => Some(path.as_path()),
            Err(e) => {
                println!("ML tier: no row, {}: {e}", path.display());
                None
            }
        },
    };
    let (all, stem) = match &seeds {
        Some(seeds) => (summarise(&chosen, seeds, model, markdown), "seeds"),
        None => (
            compare(&chosen, seed, model, ablations, markdown),
            if ablations { "ablations" } else { "report" },
        ),
    };
    if let Err(e) = std::fs::create_dir_all(&out) {
        eprintln!("error: {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    let (csv, svg) = (out.join(format!("{stem}.csv")), out.join(format!("{stem}.svg")));
    let written =
        std::fs::write(&csv, report::csv(&all)).and_then(|()| std::fs::write(&svg, report::svg(&all)));
    if let Err(e) = written {
        eprintln!("error: writing the report to {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    if let Some(path) = export {
        let mut lines = String::new();
        for scenario in &chosen {
            for attempt in sim::history(scenario, seed) {
                lines.push_str(&serde_json::to_string(&attempt).unwrap_or_default());
                lines.push('\n');
            }
        }
        if let Err(e) = std::fs::write(&path, lines) {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("attempt history: {}", path.display());
    }
    println!("\nTTS = time from first failure to success; ×oracle = mean TTS over one perfectly timed retry");
    println!(
        "smartretry = the engine as users get it (default policies: 6 attempts, a 30m deadline); \
         smartretry_document_attempts = the same at the API document's 3 attempts (5 for 429s)"
    );
    println!(
        "lost = not recovered by the deadline ({}), a dead letter someone must replay; lost recoverable = lost jobs \
         the oracle recovers within the deadline",
        report::deadlines(chosen.iter().map(|s| s.deadline_ms))
    );
    println!(
        "best_schedule_bound = the best fixed schedule per recovery distribution, knowing every distribution but \
         not the job: no policy that cannot see a job's own recovery time does better for its retries"
    );
    println!("table as CSV: {}\nchart:        {}", csv.display(), svg.display());
    ExitCode::SUCCESS
}

/// One seed: a table per scenario (every scenario in parallel, printed in order).
fn compare(
    chosen: &[Scenario],
    seed: u64,
    model: Option<&std::path::Path>,
    ablations: bool,
    markdown: bool,
) -> Vec<sim::Figures> {
    let results = sim::seeds::par_map(chosen, |scenario| {
        let runs =
            if ablations { sim::ablations(scenario, seed) } else { sim::compare(scenario, seed, model) };
        let bound = sim::bound(scenario, seed);
        (runs, bound)
    });
    let mut all = Vec::new();
    for (scenario, (runs, bound)) in chosen.iter().zip(results) {
        println!(
            "\n== {} (seed {seed}, deadline {}) — {}",
            scenario.name,
            report::duration(scenario.deadline_ms),
            scenario.description
        );
        let rows: Vec<sim::Figures> = runs.iter().map(|r| r.figures.clone()).collect();
        print!("{}", report::table(&rows, markdown));
        print!("{}", report::paired(&rows));
        print!("{}", report::claims(&scenario.name, &runs));
        print!("{}", report::bound(&bound, &runs));
        all.extend(runs.into_iter().map(|r| r.figures));
    }
    all
}

/// Several seeds: a summary per scenario across them, then one line per scenario.
fn summarise(
    chosen: &[Scenario],
    seeds: &[u64],
    model: Option<&std::path::Path>,
    markdown: bool,
) -> Vec<sim::Figures> {
    let all = sim::seeds::run_all(chosen, seeds, model);
    println!();
    for (scenario, runs) in chosen.iter().zip(&all) {
        print!("{}", sim::seeds::scenario_summary(scenario, runs, markdown));
    }
    println!("{} all scenarios, smartretry's worst seed\n", if markdown { "###" } else { "==" });
    print!("{}", sim::seeds::digest(chosen, &all, markdown));
    print!("\n{}", sim::seeds::LEGEND);
    all.into_iter().flatten().flat_map(|r| r.rows).collect()
}
