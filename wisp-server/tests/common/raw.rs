//! Raw clients for hostile tests: Wisp packets built by hand and sent as WebSocket messages
//! (tokio-websockets, which frames them correctly), and, for what that library refuses to
//! send, WebSocket frames written byte by byte on a bare TCP socket after a hand-made upgrade.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_websockets::Message;

use super::Ws;

pub fn packet(kind: u8, id: u32, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::new();
    b.put_u8(kind);
    b.put_u32_le(id);
    b.put_slice(payload);
    b.freeze()
}

pub fn connect_packet(id: u32, kind: u8, port: u16, host: &[u8]) -> Bytes {
    let mut p = vec![kind];
    p.extend_from_slice(&port.to_le_bytes());
    p.extend_from_slice(host);
    packet(0x01, id, &p)
}

pub fn data_packet(id: u32, payload: &[u8]) -> Bytes {
    packet(0x02, id, payload)
}

pub fn close_packet(id: u32, reason: u8) -> Bytes {
    packet(0x04, id, &[reason])
}

/// An INFO packet: version, then `(id, length written, payload)` records. The written length
/// may lie about the payload that follows.
pub fn info_packet(major: u8, minor: u8, records: &[(u8, u32, &[u8])]) -> Bytes {
    let mut p = vec![major, minor];
    for (id, len, payload) in records {
        p.push(*id);
        p.extend_from_slice(&len.to_le_bytes());
        p.extend_from_slice(payload);
    }
    packet(0x05, 0, &p)
}

/// A raw v1-speaking client: no subprotocol, so the server sends CONTINUE then INFO and takes
/// our first non-INFO packet as v1 traffic.
pub async fn raw(addr: SocketAddr) -> Ws {
    super::ws(addr, "/", None).await.unwrap()
}

/// A raw client that offered the subprotocol: the server sends INFO and waits for ours.
pub async fn raw_v2(addr: SocketAddr) -> Ws {
    super::ws(addr, "/", Some("wisp-v2")).await.unwrap()
}

pub async fn send(ws: &mut Ws, packet: Bytes) {
    ws.send(Message::binary(packet)).await.unwrap();
}

/// Sends, ignoring a failure (the server may already have closed the connection).
pub async fn try_send(ws: &mut Ws, packet: Bytes) {
    let _ = ws.send(Message::binary(packet)).await;
}

/// The next binary message, or `None` when the connection ends (or stays silent for 10 s).
pub async fn next_packet(ws: &mut Ws) -> Option<Bytes> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(m))) if m.is_binary() => return Some(m.into_payload().into()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

/// Reads packets until one for `id` of type DATA or CLOSE; returns it.
pub async fn next_for(ws: &mut Ws, id: u32) -> Option<Bytes> {
    while let Some(p) = next_packet(ws).await {
        if p.len() >= 5
            && u32::from_le_bytes([p[1], p[2], p[3], p[4]]) == id
            && (p[0] == 0x02 || p[0] == 0x04)
        {
            return Some(p);
        }
    }
    None
}

/// Reads packets until the CLOSE for `id`; returns its reason (DATA on the way is skipped).
pub async fn close_reason_of(ws: &mut Ws, id: u32) -> Option<u8> {
    while let Some(p) = next_for(ws, id).await {
        if p[0] == 0x04 {
            return p.get(5).copied();
        }
    }
    None
}

/// The connection still works: a fresh stream to the echo target echoes.
pub async fn still_serves(ws: &mut Ws, id: u32, echo: u16) {
    send(ws, connect_packet(id, 0x01, echo, b"127.0.0.1")).await;
    send(ws, data_packet(id, b"still here")).await;
    let p = next_for(ws, id).await.expect("connection alive");
    assert_eq!(&p[..], &data_packet(id, b"still here")[..]);
}

/// How a connection ended, as seen from the client.
#[derive(Debug, Default)]
pub struct Ending {
    /// Binary messages received before the end.
    pub packets: Vec<Bytes>,
    /// The WebSocket close code, if the server sent a close frame.
    pub close_code: Option<u16>,
}

impl Ending {
    /// The reason of a CLOSE on stream 0 among the packets, if any.
    pub fn close_0(&self) -> Option<u8> {
        self.packets
            .iter()
            .find(|p| p.len() >= 6 && p[0] == 0x04 && p[1..5] == [0, 0, 0, 0])
            .map(|p| p[5])
    }
}

/// Reads until the server ends the connection; panics if it does not within 10 s.
pub async fn ending(ws: &mut Ws) -> Ending {
    let mut out = Ending::default();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("the server did not end the connection: {out:?}"),
            Ok(None) | Ok(Some(Err(_))) => return out,
            Ok(Some(Ok(m))) => {
                if m.is_close() {
                    out.close_code = m.as_close().map(|(c, _)| c.into());
                } else if m.is_binary() {
                    out.packets.push(m.into_payload().into());
                }
            }
        }
    }
}

// ------------------------------------------------------------------ byte-level WebSocket

/// A bare TCP socket after a hand-made WebSocket upgrade, for frames no library would send.
pub struct RawWs {
    pub sock: TcpStream,
    buf: BytesMut,
}

/// Upgrades by hand; `protocol` offers the subprotocol (v2 order) when given.
pub async fn raw_upgrade(addr: SocketAddr, protocol: Option<&str>) -> RawWs {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    let proto = protocol.map_or(String::new(), |p| {
        format!("Sec-WebSocket-Protocol: {p}\r\n")
    });
    let req = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{proto}\r\n"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut buf = BytesMut::new();
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        assert!(
            sock.read_buf(&mut buf).await.unwrap() > 0,
            "upgrade answered"
        );
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let _ = buf.split_to(end);
    RawWs { sock, buf }
}

/// One client frame: FIN flag, opcode, masked with a zero key (valid, and keeps bytes readable).
pub fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame_with_len(fin, opcode, payload, payload.len() as u64)
}

/// A client frame whose length field says `len`, whatever the payload.
pub fn frame_with_len(fin: bool, opcode: u8, payload: &[u8], len: u64) -> Vec<u8> {
    let mut f = vec![(u8::from(fin) << 7) | opcode];
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= 0xffff {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&len.to_be_bytes());
    }
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A server frame as read: opcode and payload.
pub type ServerFrame = (u8, Bytes);

impl RawWs {
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.sock.write_all(bytes).await
    }

    /// The next frame from the server, or `None` at EOF, on a socket error or after 10 s of
    /// silence.
    pub async fn next_frame(&mut self) -> Option<ServerFrame> {
        loop {
            if let Some(f) = self.parse() {
                return Some(f);
            }
            match tokio::time::timeout(Duration::from_secs(10), self.sock.read_buf(&mut self.buf))
                .await
            {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    fn parse(&mut self) -> Option<ServerFrame> {
        let b = &self.buf;
        if b.len() < 2 {
            return None;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are not masked");
        let (len, hdr) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => return None,
            n => (n as usize, 2),
        };
        if b.len() < hdr + len {
            return None;
        }
        let opcode = b[0] & 0x0f;
        let mut f = self.buf.split_to(hdr + len);
        let _ = f.split_to(hdr);
        Some((opcode, f.freeze()))
    }

    /// Reads frames until EOF; returns them. Panics if the server keeps it open past 10 s.
    pub async fn until_eof(&mut self) -> Vec<ServerFrame> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.next_frame()).await {
                Err(_) => panic!("the server did not close the connection: {out:?}"),
                Ok(None) => return out,
                Ok(Some(f)) => out.push(f),
            }
        }
    }
}

/// The close code of a close frame among `frames`.
pub fn close_code(frames: &[ServerFrame]) -> Option<u16> {
    frames
        .iter()
        .find(|(op, p)| *op == 0x8 && p.len() >= 2)
        .map(|(_, p)| u16::from_be_bytes([p[0], p[1]]))
}
