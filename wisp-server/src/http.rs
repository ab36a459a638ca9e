//! The HTTP/1.1 side: reading the request head, routing, the WebSocket upgrade response,
//! plain pages and the static directory.
//!
//! The head is parsed here with `httparse` (rather than by the WebSocket library) so that the
//! server can see the path, `Origin`, forwarding headers and the offered subprotocol before
//! deciding anything, and can answer with a proper HTTP status when it refuses.

use std::io;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::policy::Cidr;

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: String,
    /// The path, without the query string.
    pub path: String,
    /// Headers with lower-case names, in order.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether this asks for a WebSocket upgrade.
    pub fn is_upgrade(&self) -> bool {
        self.method == "GET"
            && self.header_has_token("upgrade", "websocket")
            && self.header_has_token("connection", "upgrade")
    }

    /// The first subprotocol the client offered, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.header("sec-websocket-protocol")
            .and_then(|v| v.split(',').map(str::trim).find(|t| !t.is_empty()))
    }
}

/// Why the head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The socket failed or closed early.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The head was not HTTP/1.x.
    #[error("malformed request")]
    Malformed,
    /// The head was larger than the limit.
    #[error("request head too large")]
    TooLarge,
}

/// Reads one request head. Returns it and whatever bytes came after it (a client may send its
/// first WebSocket frame right behind the head).
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
) -> Result<(Request, Bytes), HeadError> {
    let mut buf = BytesMut::with_capacity(2048);
    loop {
        let n = stream.read_buf(&mut buf).await?;
        if n == 0 {
            return Err(HeadError::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let target = req.path.unwrap_or("/");
                let path = target.split(['?', '#']).next().unwrap_or("/").to_owned();
                let request = Request {
                    method: req.method.unwrap_or("").to_owned(),
                    path,
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).trim().to_owned(),
                            )
                        })
                        .collect(),
                };
                buf.advance(len);
                return Ok((request, buf.freeze()));
            }
            Ok(httparse::Status::Partial) => {
                if buf.len() >= max {
                    return Err(HeadError::TooLarge);
                }
            }
            Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
            Err(_) => return Err(HeadError::Malformed),
        }
    }
}

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// A Wisp connection.
    Wisp,
    /// A legacy wsproxy connection to this `host:port` text.
    WsProxy(String),
    /// Not a WebSocket request for us.
    Other,
}

/// Routes an upgrade path under `prefix` (both with or without a trailing slash).
pub fn route(prefix: &str, path: &str) -> Route {
    let base = prefix.trim_end_matches('/');
    let Some(rest) = path.strip_prefix(base) else {
        return Route::Other;
    };
    if rest.is_empty() || rest == "/" {
        return Route::Wisp;
    }
    match rest.strip_prefix('/') {
        Some(target) if !target.contains('/') || target.ends_with('/') => {
            let target = target.trim_end_matches('/');
            if target.rsplit_once(':').is_some() {
                Route::WsProxy(percent_decode(target))
            } else {
                Route::Other
            }
        }
        _ => Route::Other,
    }
}

/// The `Sec-WebSocket-Accept` value for a key (RFC 6455 section 4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key.as_bytes());
    sha.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(sha.digest().bytes())
}

/// Writes the 101 response.
pub async fn write_switching<S: AsyncWrite + Unpin>(
    stream: &mut S,
    key: &str,
    subprotocol: Option<&str>,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if let Some(p) = subprotocol {
        head.push_str("Sec-WebSocket-Protocol: ");
        head.push_str(p);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.flush().await
}

/// Writes a complete response and closes the write side.
pub async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    content_type: &str,
    extra_headers: &str,
    body: &[u8],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n{extra_headers}\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    stream.shutdown().await
}

/// A short error response with a text body.
pub async fn respond_error<S: AsyncWrite + Unpin>(stream: &mut S, status: &str) -> io::Result<()> {
    let body = format!("{status}\n");
    respond(
        stream,
        status,
        "text/plain; charset=utf-8",
        "",
        body.as_bytes(),
    )
    .await
}

/// The client's IP: the peer's, or the one a trusted proxy forwarded.
///
/// `X-Forwarded-For` is read from the right: each trusted proxy appends the address it saw, so
/// the rightmost address that is not itself a trusted proxy is the client. Entries to its left
/// were written by the client and could say anything.
pub fn client_ip(
    peer: Option<IpAddr>,
    peer_trusted: bool,
    trusted: &[Cidr],
    req: &Request,
) -> Option<IpAddr> {
    if !peer_trusted {
        return peer;
    }
    let forwarded: Vec<IpAddr> = req
        .headers
        .iter()
        .filter(|(n, _)| n == "x-forwarded-for")
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|s| parse_ip(s.trim()))
        .collect();
    if let Some(ip) = forwarded
        .iter()
        .rev()
        .find(|ip| !trusted.iter().any(|c| c.contains(**ip)))
    {
        return Some(*ip);
    }
    if let Some(ip) = req.header("x-real-ip").and_then(|v| parse_ip(v.trim())) {
        return Some(ip);
    }
    forwarded.first().copied().or(peer)
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.trim_start_matches('[')
        .split(']')
        .next()
        .and_then(|s| s.parse().ok())
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Maps a URL path to a file under `root`, refusing anything that would leave it.
pub fn static_path(root: &Path, url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path);
    if decoded.contains('\0') || decoded.contains('\\') {
        return None;
    }
    let mut out = root.to_path_buf();
    for c in Path::new(decoded.trim_start_matches('/')).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            // `..`, a root or a prefix: a way out of the directory.
            _ => return None,
        }
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Largest file served from the static directory; the demo page is small.
const MAX_STATIC_FILE: u64 = 64 * 1024 * 1024;

/// Answers a plain (non-upgrade) request.
pub async fn serve_plain<S: AsyncWrite + Unpin>(
    stream: &mut S,
    req: &Request,
    static_dir: Option<&Path>,
) -> io::Result<()> {
    if req.method != "GET" && req.method != "HEAD" {
        return respond(
            stream,
            "405 Method Not Allowed",
            "text/plain",
            "Allow: GET, HEAD\r\n",
            b"405 Method Not Allowed\n",
        )
        .await;
    }
    let Some(root) = static_dir else {
        let body: &[u8] = b"<!doctype html><title>wisp-server</title><p>This is a Wisp server. Connect with a Wisp client over WebSocket.</p>\n";
        return respond(stream, "200 OK", "text/html; charset=utf-8", "", body).await;
    };
    let Some(mut path) = static_path(root, &req.path) else {
        return respond_error(stream, "400 Bad Request").await;
    };
    if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_dir()) {
        path.push("index.html");
    }
    let file = match tokio::fs::metadata(&path).await {
        Ok(m) if m.is_file() && m.len() <= MAX_STATIC_FILE => tokio::fs::read(&path).await.ok(),
        _ => None,
    };
    match file {
        Some(bytes) => {
            let body: &[u8] = if req.method == "HEAD" { &[] } else { &bytes };
            respond(stream, "200 OK", content_type(&path), "", body).await
        }
        None => respond_error(stream, "404 Not Found").await,
    }
}

/// A stream that yields some already-read bytes before reading the inner stream.
#[derive(Debug)]
pub struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Prefixed<S> {
    /// Wraps `inner`, replaying `prefix` first.
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_with_and_without_trailing_slash() {
        assert_eq!(route("/", "/"), Route::Wisp);
        assert_eq!(route("/wisp/", "/wisp"), Route::Wisp);
        assert_eq!(route("/wisp/", "/wisp/"), Route::Wisp);
        assert_eq!(route("/wisp", "/wisp/"), Route::Wisp);
        assert_eq!(route("/wisp", "/wispx"), Route::Other);
        assert_eq!(route("/wisp/", "/other"), Route::Other);
        assert_eq!(
            route("/wisp/", "/wisp/example.com:80"),
            Route::WsProxy("example.com:80".into())
        );
        assert_eq!(route("/", "/a/b:80"), Route::Other);
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn static_paths_stay_inside() {
        let root = Path::new("/srv/www");
        assert_eq!(
            static_path(root, "/a/b.js"),
            Some(PathBuf::from("/srv/www/a/b.js"))
        );
        assert_eq!(static_path(root, "/"), Some(PathBuf::from("/srv/www")));
        assert_eq!(static_path(root, "/../etc/passwd"), None);
        assert_eq!(static_path(root, "/a/%2e%2e/%2e%2e/etc"), None);
        assert_eq!(static_path(root, "/a\\..\\b"), None);
    }

    #[test]
    fn forwarded_ip_only_from_trusted_proxies() {
        let req = Request {
            method: "GET".into(),
            path: "/".into(),
            headers: vec![(
                "x-forwarded-for".into(),
                "6.6.6.6, 203.0.113.9, 10.0.0.2".into(),
            )],
        };
        let peer: IpAddr = "10.0.0.1".parse().unwrap();
        let trusted: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(client_ip(Some(peer), false, &trusted, &req), Some(peer));
        assert_eq!(
            client_ip(Some(peer), true, &trusted, &req),
            Some("203.0.113.9".parse().unwrap())
        );
    }
}
