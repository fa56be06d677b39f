//! A small HTTP/1.1 client for the server's JSON API (the TUI, the webhook poster, the
//! load generator and the tests): one keep-alive connection, reopened when it closes.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why a request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid URL {0:?}: expected http://host:port[/path]")]
    Url(String),
    #[error("cannot reach {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("HTTP error talking to {addr}: {source}")]
    Http { addr: String, source: hyper::Error },
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout { addr: String, timeout: Duration },
    #[error("bad request: {0}")]
    Request(String),
}

/// An answer: status and body text.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// `http://host:port/base` split into the address to dial and the path prefix.
pub fn split_url(url: &str) -> Result<(String, String), ClientError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| ClientError::Url(url.to_string()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(ClientError::Url(url.to_string()));
    }
    let authority = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    Ok((authority, path.to_string()))
}

/// One connection to one server; `base` prefixes every path.
pub struct Client {
    addr: String,
    base: String,
    token: Option<String>,
    timeout: Duration,
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl Client {
    /// `url` is `http://host:port` optionally followed by a base path (`/api/v1/retry`).
    pub fn new(url: &str) -> Result<Client, ClientError> {
        let (addr, base) = split_url(url)?;
        Ok(Client { addr, base, token: None, timeout: Duration::from_secs(10), conn: None })
    }

    /// Send `Authorization: Bearer <token>` with every request.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let stream = TcpStream::connect(&self.addr)
            .await
            .map_err(|source| ClientError::Connect { addr: self.addr.clone(), source })?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| ClientError::Http { addr: self.addr.clone(), source })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    pub async fn get(&mut self, path: &str) -> Result<Response, ClientError> {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&mut self, path: &str, body: &serde_json::Value) -> Result<Response, ClientError> {
        self.send(Method::POST, path, Some(body.to_string().into())).await
    }

    pub async fn put(&mut self, path: &str, body: &serde_json::Value) -> Result<Response, ClientError> {
        self.send(Method::PUT, path, Some(body.to_string().into())).await
    }

    pub async fn delete(&mut self, path: &str) -> Result<Response, ClientError> {
        self.send(Method::DELETE, path, None).await
    }

    /// Send raw bytes (any method); a stale keep-alive connection is reopened once.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Response, ClientError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.send_once(&method, path, body.clone())).await {
            Ok(Err(ClientError::Http { .. })) => {
                self.conn = None;
                tokio::time::timeout(timeout, self.send_once(&method, path, body))
                    .await
                    .map_err(|_| ClientError::Timeout { addr: self.addr.clone(), timeout })?
            }
            Ok(result) => result,
            Err(_) => {
                self.conn = None;
                Err(ClientError::Timeout { addr: self.addr.clone(), timeout })
            }
        }
    }

    async fn send_once(
        &mut self,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Response, ClientError> {
        let ready = match self.conn.as_mut() {
            Some(c) => c.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            self.conn = Some(self.connect().await?);
        }
        let uri = match format!("{}{path}", self.base) {
            u if u.is_empty() => "/".to_string(),
            u => u,
        };
        let mut req = Request::builder().method(method.clone()).uri(uri).header("host", &self.addr);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        if let Some(token) = &self.token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let req =
            req.body(Full::new(body.unwrap_or_default())).map_err(|e| ClientError::Request(e.to_string()))?;
        let Some(conn) = self.conn.as_mut() else { return Err(ClientError::Request("not connected".into())) };
        let http = |source| ClientError::Http { addr: self.addr.clone(), source };
        let res = conn.send_request(req).await.map_err(http)?;
        let status = res.status().as_u16();
        let content_type =
            res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let bytes = res.into_body().collect().await.map_err(http)?.to_bytes();
        Ok(Response { status, content_type, body: String::from_utf8_lossy(&bytes).into_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_and_base() {
        let (a, b) = split_url("http://127.0.0.1:8080/api/v1/retry/").unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("127.0.0.1:8080", "/api/v1/retry"));
        let (a, b) = split_url("http://localhost").unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("localhost:80", ""));
        assert!(split_url("https://x").is_err());
        assert!(split_url("http:///x").is_err());
    }
}
