//! A real `smartretry serve` on a free 127.0.0.1 port, stopped when dropped.
#![allow(dead_code)]

pub mod redis;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use smartretry_cli::client::Client;

pub const TOKEN: &str = "test-token-7f3a";

pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT/api/v1/retry`
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Start with the test token and extra arguments/environment.
    /// Start in a directory of its own (servers of parallel tests share no state file).
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Server {
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Server::start_in(&temp_dir(&format!("server-{n}")), args, env)
    }

    /// Start in `cwd` (where the default ./smartretry.db goes).
    pub fn start_in(cwd: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smartretry"));
        cmd.current_dir(cwd);
        cmd.args(["serve", "--addr", "127.0.0.1:0"]).args(args);
        for var in ["RETRY_API_TOKEN", "RETRY_CONFIG", "RETRY_API_ADDR", "RETRY_DB", "RETRY_STORE"] {
            cmd.env_remove(var);
        }
        cmd.env("RETRY_API_TOKEN", TOKEN);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child =
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn smartretry serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().unwrap();
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = match line.trim().strip_prefix("smartretry serve: listening on ") {
            Some(url) => url.to_string(),
            None => {
                let _ = child.wait();
                panic!("server did not start: {line}{}", stderr.lock().unwrap());
            }
        };
        Server { child, url, stderr }
    }

    /// `kill -9` the server now (SIGKILL: no shutdown, no flush).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url).unwrap().with_token(Some(TOKEN.into()))
    }

    pub fn anonymous(&self) -> Client {
        Client::new(&self.url).unwrap()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether the server's log shows `needle` (it is read by a thread: allow it to arrive).
    pub fn logged(&self, needle: &str) -> bool {
        for _ in 0..100 {
            if self.stderr().contains(needle) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("smartretry-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One HTTP/1.1 request written by hand (headers exactly as given): status and body.
pub fn raw(url: &str, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    use std::io::Write;
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, base) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!("{method} {base}{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A local webhook receiver: every JSON body posted to it. A `delay` makes it slow.
pub async fn receiver_with_delay(delay: std::time::Duration) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::Json<serde_json::Value>| {
            let sink = Arc::clone(&sink);
            async move {
                tokio::time::sleep(delay).await;
                sink.lock().unwrap().push(body.0);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

pub async fn receiver() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    receiver_with_delay(std::time::Duration::ZERO).await
}

/// Poll `ok` every 100 ms until it holds; how long that took (panics after `limit`).
pub async fn within<F: FnMut() -> bool>(
    limit: std::time::Duration,
    what: &str,
    mut ok: F,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    start.elapsed()
}
