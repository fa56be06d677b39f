//! `smartretry loadtest`: a bounded, closed-loop load test of a server over loopback —
//! recommendations per second, latency percentiles, and the server's memory over time.
//!
//! Each connection sends recommendation requests back to back (and records an outcome
//! every fourth one, so the engine keeps learning); labels come from a fixed set (job
//! types × error classes × tenants), as in a real fleet, so a flat memory line means
//! nothing grows per request. Whole requests (line, headers, body) are built before the
//! clock starts and each connection speaks HTTP/1.1 on a bare socket, as wrk does, so the
//! generator's CPU goes to the socket rather than to building requests: on a two-core
//! machine every microsecond it spends is one the server cannot.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hyper::body::Bytes;
use serde::Serialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::{split_url, Client};

#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// `None`: start `smartretry serve` as a child process (and watch its memory).
    pub url: Option<String>,
    pub token: Option<String>,
    pub duration: Duration,
    pub connections: usize,
    pub client_threads: usize,
    pub job_types: usize,
    /// Seconds between memory samples.
    pub sample_every: Duration,
}

/// What one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub seconds: f64,
    pub connections: usize,
    pub recommendations: u64,
    pub recommendations_per_sec: f64,
    pub attempts_recorded: u64,
    /// Recommendations answered 200 / 429 (guardrail refusal) / anything else.
    pub ok: u64,
    pub refused_429: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// The server's resident memory (kB) sampled over the run, when it was spawned here.
    pub rss_kb: Vec<u64>,
    /// CPU time the server used per recommendation (with its share of the recorded
    /// outcomes), when it was spawned here: the cost that does not depend on how busy
    /// the machine is.
    pub server_cpu_us_per_recommendation: Option<f64>,
    /// The same for this load generator.
    pub client_cpu_us_per_recommendation: f64,
}

struct Worker {
    latencies_us: Vec<u32>,
    ok: u64,
    refused: u64,
    errors: u64,
    attempts: u64,
}

/// The spawned server's SQLite file: in the temp dir, removed when the run ends.
struct ScratchDb(std::path::PathBuf);

impl ScratchDb {
    fn new() -> ScratchDb {
        ScratchDb(std::env::temp_dir().join(format!("smartretry-loadtest-{}.db", std::process::id())))
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let _ = smartretry::store::SqliteStore::remove_database(&self.0);
    }
}

/// Start `smartretry serve` on a free port, keeping its state in `db`; returns the child
/// and its API URL.
fn spawn_server(token: &str, db: &std::path::Path) -> Result<(Child, String), String> {
    use std::io::{BufRead, BufReader};
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .args(["serve", "--addr", "127.0.0.1:0", "--db"])
        .arg(db)
        .env("RETRY_API_TOKEN", token)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start the server: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
    match line.trim().strip_prefix("smartretry serve: listening on ") {
        Some(url) => Ok((child, url.to_string())),
        None => {
            let _ = child.kill();
            Err(format!("the server did not start: {line:?}"))
        }
    }
}

/// CPU time (user + system) a process has used, from /proc (Linux), in seconds.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Resident set size of a process, from /proc (Linux).
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub fn run(opts: &LoadOptions) -> Result<LoadReport, String> {
    let token = opts.token.clone().unwrap_or_else(|| "loadtest".into());
    let scratch = ScratchDb::new();
    let (mut child, url) = match &opts.url {
        Some(url) => (None, url.clone()),
        None => {
            let (child, url) = spawn_server(&token, &scratch.0)?;
            (Some(child), url)
        }
    };
    let pid = child.as_ref().map(Child::id);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.client_threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = runtime.block_on(drive(opts, &url, &token, pid));
    if let Some(c) = child.as_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    result
}

async fn drive(opts: &LoadOptions, url: &str, token: &str, pid: Option<u32>) -> Result<LoadReport, String> {
    // Fail fast on a wrong URL or token rather than measuring errors.
    let mut probe = Client::new(url).map_err(|e| e.to_string())?.with_token(Some(token.into()));
    let r = probe
        .post("/recommendation", &json!({"job_type": "probe", "attempt_number": 1}))
        .await
        .map_err(|e| e.to_string())?;
    if r.status != 200 && r.status != 429 {
        return Err(format!("the server answered {}: {}", r.status, r.body));
    }
    let (addr, base) = split_url(url).map_err(|e| e.to_string())?;
    let target = Target { addr: &addr, base: &base, token };
    let plans: Vec<Vec<Step>> =
        (0..opts.connections).map(|id| traffic(id, opts.job_types.max(1), &target)).collect();
    let server_cpu = |pid: Option<u32>| pid.and_then(|p| cpu_seconds(&p.to_string()));
    let (server_before, client_before) = (server_cpu(pid), cpu_seconds("self").unwrap_or(0.0));
    let deadline = Instant::now() + opts.duration;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for steps in plans {
        tasks.push(tokio::spawn(connection(addr.clone(), steps, deadline)));
    }
    let mut rss = Vec::new();
    if let Some(pid) = pid {
        rss.extend(rss_kb(pid));
        while Instant::now() + opts.sample_every < deadline {
            tokio::time::sleep(opts.sample_every).await;
            rss.extend(rss_kb(pid));
        }
    }
    let mut all = Vec::new();
    let (mut ok, mut refused, mut errors, mut attempts) = (0, 0, 0, 0);
    for t in tasks {
        let w = t.await.map_err(|e| e.to_string())?;
        all.extend_from_slice(&w.latencies_us);
        (ok, refused, errors, attempts) =
            (ok + w.ok, refused + w.refused, errors + w.errors, attempts + w.attempts);
    }
    let seconds = started.elapsed().as_secs_f64();
    let (server_after, client_after) = (server_cpu(pid), cpu_seconds("self").unwrap_or(0.0));
    if let Some(pid) = pid {
        rss.extend(rss_kb(pid));
    }
    let count = all.len().max(1) as f64;
    let per_recommendation = |cpu: f64| cpu * 1e6 / count;
    all.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.is_empty() {
            return 0.0;
        }
        let i = ((all.len() as f64 * p).ceil() as usize).clamp(1, all.len()) - 1;
        f64::from(all[i]) / 1000.0
    };
    let recommendations = all.len() as u64;
    Ok(LoadReport {
        seconds,
        connections: opts.connections,
        recommendations,
        recommendations_per_sec: recommendations as f64 / seconds,
        attempts_recorded: attempts,
        ok,
        refused_429: refused,
        errors,
        p50_ms: pct(0.50),
        p90_ms: pct(0.90),
        p99_ms: pct(0.99),
        p999_ms: pct(0.999),
        max_ms: all.last().map_or(0.0, |&m| f64::from(m) / 1000.0),
        rss_kb: rss,
        server_cpu_us_per_recommendation: server_before
            .zip(server_after)
            .map(|(b, a)| per_recommendation(a - b)),
        client_cpu_us_per_recommendation: per_recommendation(client_after - client_before),
    })
}

const ERRORS: [(&str, u16); 4] =
    [("timeout", 504), ("service_unavailable", 503), ("rate_limit", 429), ("connection_reset", 502)];
/// Distinct request bodies, built before the clock starts so the generator spends its
/// time sending, not formatting JSON (job ids repeat after this many requests).
const BODIES: usize = 8192;

/// One step of the traffic, as the bytes sent: a failure to ask about, and every fourth
/// step the outcome of an earlier retry to record.
struct Step {
    recommendation: Bytes,
    outcome: Option<Bytes>,
}

/// Where the requests go.
struct Target<'a> {
    addr: &'a str,
    base: &'a str,
    token: &'a str,
}

impl Target<'_> {
    /// A whole HTTP/1.1 POST with a JSON body.
    fn post(&self, path: &str, body: &serde_json::Value) -> Bytes {
        let body = body.to_string();
        format!(
            "POST {}{path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            self.base,
            self.addr,
            self.token,
            body.len()
        )
        .into()
    }
}

fn traffic(id: usize, job_types: usize, target: &Target<'_>) -> Vec<Step> {
    (0..BODIES)
        .map(|i| {
            let n = id.wrapping_mul(7919).wrapping_add(i);
            let job_type = format!("job_{}", n % job_types);
            let (error_class, status) = ERRORS[(n / 7) % ERRORS.len()];
            let attempt = 1 + (n / 3) % 3;
            let recommendation = json!({
                "job_type": job_type, "error_class": error_class, "http_status": status,
                "attempt_number": attempt, "tenant": format!("tenant_{}", n % 16),
                "job_id": format!("c{id}-{i}"), "since_first_failure_ms": attempt * 2000,
            });
            let outcome = (i % 4 == 0).then(|| {
                let outcome = json!({
                    "job_id": format!("c{id}-{i}"), "job_type": job_type, "error_class": error_class,
                    "attempt_number": attempt + 1, "delay_ms": 1000 + (n % 20) * 500,
                    "since_first_failure_ms": attempt * 2000 + 1000 + (n % 20) * 500, "success": n % 3 != 0,
                });
                target.post("/attempt", &outcome)
            });
            Step { recommendation: target.post("/recommendation", &recommendation), outcome }
        })
        .collect()
}

/// One keep-alive connection sending until the deadline (reconnecting after an error).
async fn connection(addr: String, steps: Vec<Step>, deadline: Instant) -> Worker {
    let mut w =
        Worker { latencies_us: Vec::with_capacity(1 << 16), ok: 0, refused: 0, errors: 0, attempts: 0 };
    let mut conn: Option<RawConn> = None;
    for step in steps.iter().cycle() {
        if Instant::now() >= deadline {
            break;
        }
        if conn.is_none() {
            conn = RawConn::connect(&addr).await.ok();
        }
        let Some(c) = conn.as_mut() else {
            w.errors += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let sent = Instant::now();
        match c.exchange(&step.recommendation).await {
            Ok(status) => {
                w.latencies_us.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                match status {
                    200 => w.ok += 1,
                    429 => w.refused += 1,
                    _ => w.errors += 1,
                }
            }
            Err(_) => {
                w.errors += 1;
                conn = None;
                continue;
            }
        }
        if let Some(outcome) = &step.outcome {
            match c.exchange(outcome).await {
                Ok(202) => w.attempts += 1,
                Ok(_) => {}
                Err(_) => conn = None,
            }
        }
    }
    w
}

/// A keep-alive HTTP/1.1 connection that sends pre-built requests and reads each answer's
/// status, skipping its body (`Content-Length`, which every answer of the server has).
struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    async fn connect(addr: &str) -> std::io::Result<RawConn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(RawConn { stream, buf: Vec::with_capacity(4096) })
    }

    /// Send one request and wait for its whole answer; returns the status code.
    async fn exchange(&mut self, request: &[u8]) -> std::io::Result<u16> {
        use std::io::{Error, ErrorKind};
        self.stream.write_all(request).await?;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response.parse(&self.buf).map_err(|e| Error::new(ErrorKind::InvalidData, e))?;
            if let httparse::Status::Complete(head) = parsed {
                let length = response
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
                    .ok_or_else(|| Error::new(ErrorKind::InvalidData, "an answer without Content-Length"))?;
                let status = response.code.unwrap_or(0);
                if self.buf.len() >= head + length {
                    self.buf.drain(..head + length);
                    return Ok(status);
                }
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(Error::new(ErrorKind::UnexpectedEof, "the server closed the connection"));
            }
        }
    }
}

impl LoadReport {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{:.1} s, {} connections: {} recommendations ({:.0}/s), {} outcomes recorded\n\
             answers: {} ok, {} refused (429), {} errors\n\
             latency: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms\n",
            self.seconds,
            self.connections,
            self.recommendations,
            self.recommendations_per_sec,
            self.attempts_recorded,
            self.ok,
            self.refused_429,
            self.errors,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p999_ms,
            self.max_ms
        );
        if let (Some(first), Some(last), Some(max)) =
            (self.rss_kb.first(), self.rss_kb.last(), self.rss_kb.iter().max())
        {
            s.push_str(&format!(
                "server memory (RSS): {:.1} MB at start, {:.1} MB at end, {:.1} MB max ({} samples)\n",
                *first as f64 / 1024.0,
                *last as f64 / 1024.0,
                *max as f64 / 1024.0,
                self.rss_kb.len()
            ));
        }
        if let Some(cpu) = self.server_cpu_us_per_recommendation {
            s.push_str(&format!("server CPU: {cpu:.1} µs per recommendation; "));
        }
        s.push_str(&format!(
            "load generator CPU: {:.1} µs per recommendation\n",
            self.client_cpu_us_per_recommendation
        ));
        s
    }
}
