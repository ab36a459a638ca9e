//! Scale-out: two `wisp-server` processes behind nginx as a WebSocket load balancer, with
//! `X-Real-IP` / `X-Forwarded-For` from nginx as the trusted proxy. Per-IP limits must apply to
//! the real client IP (clients bind 127.0.0.2, 127.0.0.3, ... — all loopback), and killing one
//! backend must leave the connections on the other intact while new ones go to the survivor.
//!
//! Needs Debian's `nginx` (scripts/setup.sh installs it). Built with the `load-tests` feature;
//! scripts/test-hardening.sh (npm test) and scripts/stress.sh run it.

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::binary::{binary_config, Binary};
use common::*;
use futures::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio_websockets::ClientBuilder;
use wisp_core::ws::{TokioWebsocketsTransport, TransportExt};
use wisp_core::{ClientMux, StreamType, WispV2Handshake};

struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // Only the master we started; it takes its workers with it.
        let _ = Command::new("kill")
            .arg("-QUIT")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// nginx on 127.0.0.1 in front of `backends`, with its own config and paths in a temp dir.
async fn nginx(backends: &[SocketAddr]) -> (Nginx, SocketAddr) {
    let bin = nginx_binary().expect("nginx is installed (scripts/setup.sh)");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let upstreams: String = backends
        .iter()
        .map(|b| format!("    server {b} max_fails=1 fail_timeout=60s;\n"))
        .collect();
    let p = dir.path().display();
    let conf = format!(
        r#"daemon off;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {p}/body;
  proxy_temp_path {p}/proxy;
  fastcgi_temp_path {p}/fastcgi;
  uwsgi_temp_path {p}/uwsgi;
  scgi_temp_path {p}/scgi;
  upstream wisp {{
{upstreams}  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://wisp;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_read_timeout 600s;
      proxy_connect_timeout 2s;
    }}
  }}
}}
"#
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    // Owned at once, so that it is stopped on every path, a failed start included.
    let nginx = Nginx { child, _dir: dir };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_ok() {
            return (nginx, addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nginx did not listen");
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: IpAddr, addr: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(from, 0)).unwrap();
    s.connect(addr).await.unwrap()
}

/// A Wisp client through nginx from `from`; `Err` with the HTTP status line when refused.
async fn client_from(from: IpAddr, addr: SocketAddr) -> Result<Mux, String> {
    let tcp = connect_from(from, addr).await;
    let ws = ClientBuilder::new()
        .uri(&format!("ws://{addr}/"))
        .unwrap()
        .add_header(
            http::HeaderName::from_static("sec-websocket-protocol"),
            http::HeaderValue::from_static("wisp-v2"),
        )
        .unwrap()
        .connect_on(tcp)
        .await
        .map_err(|e| e.to_string())?
        .0;
    let (rx, tx) = TokioWebsocketsTransport(ws).split_fast();
    let (mux, actor) = ClientMux::new(rx, tx, Some(WispV2Handshake::new(client_exts())))
        .await
        .map_err(|e| e.to_string())?
        .with_no_required_extensions();
    tokio::spawn(actor);
    Ok(mux)
}

/// The status line nginx passes back for a plain request from `from`.
async fn status_from(from: IpAddr, addr: SocketAddr) -> String {
    let mut s = connect_from(from, addr).await;
    tokio::io::AsyncWriteExt::write_all(
        &mut s,
        b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// Open connections of a backend, from its metrics endpoint.
async fn open_connections(metrics: SocketAddr) -> i64 {
    let text = raw_http(metrics, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    text.lines()
        .find_map(|l| l.strip_prefix("wisp_connections_open "))
        .and_then(|v| v.trim().parse().ok())
        .expect("metrics")
}

fn backend_config(per_ip: usize, metrics_port: u16) -> wisp_server::Config {
    let mut c = binary_config();
    c.server.trusted_proxies = vec!["127.0.0.1".into()];
    c.server.metrics_bind = Some(format!("127.0.0.1:{metrics_port}").parse().unwrap());
    c.limits.max_connections_per_ip = per_ip;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_backends_behind_nginx() {
    if nginx_binary().is_none() {
        panic!("nginx is not installed: run scripts/setup.sh");
    }
    let (ma, mb) = (free_port(), free_port());
    let mut a = Binary::start(&backend_config(2, ma));
    let b = Binary::start(&backend_config(2, mb));
    let (_nginx, front) = nginx(&[a.addr, b.addr]).await;
    let echo = tcp_echo().await;

    // Per-IP limits on the real client IP: 127.0.0.2 gets 2 per backend, so 4 through nginx's
    // round robin, and the 5th is refused with 429 — while 127.0.0.3 is still served.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(client_from(ip(2), front).await.expect("within the limit"));
    }
    let refused = status_from(ip(2), front).await;
    assert!(refused.contains("429"), "the 5th from 127.0.0.2: {refused}");
    let other = client_from(ip(3), front)
        .await
        .expect("another IP is served");
    held.push(other);
    println!(
        "scale-out: 4 connections from 127.0.0.2 held, the 5th got `{refused}`, 127.0.0.3 served"
    );

    // Connections from distinct IPs spread over both backends, each with a working stream.
    let mut conns = Vec::new();
    for i in 0..8u8 {
        let mux = client_from(ip(10 + i), front).await.unwrap();
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"before").await, b"before");
        conns.push((mux, s));
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let on_b = open_connections(format!("127.0.0.1:{mb}").parse().unwrap()).await;
    let on_a = open_connections(format!("127.0.0.1:{ma}").parse().unwrap()).await;
    assert_eq!(on_a + on_b, 8, "every connection is on a backend");
    assert!(
        on_a > 0 && on_b > 0,
        "both backends used: {on_a} and {on_b}"
    );

    // Kill backend A outright.
    a.signal("KILL");
    a.wait_exit(Duration::from_secs(5))
        .expect("backend A is gone");
    let mut alive = 0;
    for (_, s) in conns.iter_mut() {
        let ok = tokio::time::timeout(Duration::from_secs(5), async {
            s.send(bytes::Bytes::from_static(b"after")).await.is_ok()
                && matches!(s.next().await, Some(Ok(b)) if &b[..] == b"after")
        })
        .await
        .unwrap_or(false);
        alive += usize::from(ok);
    }
    assert_eq!(alive as i64, on_b, "exactly the connections on B survive");
    // New connections go to the survivor.
    for i in 0..6u8 {
        let mux = client_from(ip(30 + i), front)
            .await
            .expect("new connections are served by B");
        let mut s = mux
            .new_stream(StreamType::Tcp, "127.0.0.1", echo)
            .await
            .unwrap();
        assert_eq!(echo_roundtrip(&mut s, b"new").await, b"new");
    }
    println!(
        "hardening-figure case=scale_out backend_a={on_a} backend_b={on_b} survivors_after_kill={alive} new_connections_served=6"
    );
}
