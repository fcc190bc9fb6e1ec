//! The transcoder a connection that negotiated permessage-deflate puts under tungstenite: its
//! reading half inflates what comes in, its writing half compresses what goes out, and both
//! count data bytes before and after. `Socket` is a socket that carries one once it is started
//! (the built-in target's: the upgrade goes through it plain).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::common::{Limits, Role};
use super::negotiate::Params;
use super::read::Reader;
use super::write::Writer;

pub struct Transcoder {
    reader: Reader,
    writer: Writer,
}

/// A connection's data bytes: as the application sent and received them, and as they went on
/// the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub sent: u64,
    pub wire_sent: u64,
    pub received: u64,
    pub wire_received: u64,
}

impl Transcoder {
    /// `role`'s side of a connection that agreed on `params`; `read` holds bytes already read
    /// from the socket after the upgrade.
    pub fn new(role: Role, params: Params, limits: Limits, read: Vec<u8>) -> Self {
        let (bits, fresh, peer_fresh) = match role {
            Role::Client => (
                params.client_max_window_bits,
                params.client_no_context_takeover,
                params.server_no_context_takeover,
            ),
            Role::Server => (
                params.server_max_window_bits,
                params.server_no_context_takeover,
                params.client_no_context_takeover,
            ),
        };
        Transcoder {
            reader: Reader::new(role, peer_fresh, limits, read),
            writer: Writer::new(bits, fresh),
        }
    }

    pub fn tally(&self) -> Tally {
        Tally {
            sent: self.writer.bytes,
            wire_sent: self.writer.wire,
            received: self.reader.received,
            wire_received: self.reader.wire,
        }
    }

    pub fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.reader.poll_read(io, cx, buf)
    }

    /// Takes all of `buf` (frames, or parts of them) once the last write has gone out;
    /// `drop_pongs`: pong frames are dropped (chaos `no_pong`).
    pub fn poll_write<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        buf: &[u8],
        drop_pongs: bool,
    ) -> Poll<io::Result<usize>> {
        self.writer.poll_write(io, cx, buf, drop_pongs)
    }

    pub fn poll_flush<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.writer.poll_drain(io, cx))?;
        Pin::new(io).poll_flush(cx)
    }

    pub fn poll_shutdown<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        ready!(self.writer.poll_drain(io, cx))?;
        Pin::new(io).poll_shutdown(cx)
    }
}

/// A socket that passes bytes as they are until a transcoder is started on it.
pub struct Socket<S> {
    io: S,
    codec: Option<Box<Transcoder>>,
}

impl<S> Socket<S> {
    pub fn new(io: S) -> Self {
        Socket { io, codec: None }
    }

    pub fn get_ref(&self) -> &S {
        &self.io
    }

    /// From now on, frames are transcoded.
    pub fn start(&mut self, codec: Transcoder) {
        self.codec = Some(Box::new(codec));
    }

    /// The data bytes so far, when a transcoder runs.
    pub fn tally(&self) -> Option<Tally> {
        self.codec.as_ref().map(|c| c.tally())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Socket<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.codec {
            None => Pin::new(&mut this.io).poll_read(cx, buf),
            Some(codec) => codec.poll_read(&mut this.io, cx, buf),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Socket<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match &mut this.codec {
            None => Pin::new(&mut this.io).poll_write(cx, buf),
            Some(codec) => codec.poll_write(&mut this.io, cx, buf, false),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.codec {
            None => Pin::new(&mut this.io).poll_flush(cx),
            Some(codec) => codec.poll_flush(&mut this.io, cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.codec {
            None => Pin::new(&mut this.io).poll_shutdown(cx),
            Some(codec) => codec.poll_shutdown(&mut this.io, cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncWriteExt, DuplexStream};
    use tokio_tungstenite::WebSocketStream;
    use tokio_tungstenite::tungstenite::protocol::Role as WsRole;
    use tokio_tungstenite::tungstenite::{Error, Message};

    use super::*;
    use crate::deflate::Broken;

    const LIMITS: Limits = Limits {
        max_message: 1 << 20,
        max_frame: 1 << 20,
    };

    fn params(no_context_takeover: bool, client_bits: u8) -> Params {
        Params {
            server_no_context_takeover: no_context_takeover,
            client_no_context_takeover: no_context_takeover,
            server_max_window_bits: 15,
            client_max_window_bits: client_bits,
        }
    }

    async fn ws(io: DuplexStream, role: Role, params: Params) -> WebSocketStream<Socket<DuplexStream>> {
        let mut socket = Socket::new(io);
        socket.start(Transcoder::new(role, params, LIMITS, Vec::new()));
        let ws_role = match role {
            Role::Client => WsRole::Client,
            Role::Server => WsRole::Server,
        };
        WebSocketStream::from_raw_socket(socket, ws_role, None).await
    }

    #[tokio::test]
    async fn messages_cross_both_ways_compressed() {
        for (nct, bits) in [(false, 15), (true, 15), (false, 9), (true, 8)] {
            let (a, b) = tokio::io::duplex(1 << 10);
            let p = params(nct, bits);
            let (mut client, mut server) = tokio::join!(ws(a, Role::Client, p), ws(b, Role::Server, p));
            let text = format!(r#"{{"request_id":"1","text":"{}"}}"#, "abc".repeat(300));
            let messages = [
                Message::text(text.clone()),
                Message::Ping(b"hi".to_vec().into()),
                Message::binary(vec![7u8; 200_000]),
                Message::text(""),
                Message::text(text.clone()),
            ];
            let echo = async {
                while let Some(Ok(m)) = server.next().await {
                    if m.is_close() {
                        break;
                    }
                    if m.is_text() || m.is_binary() {
                        server.send(m).await.unwrap();
                    }
                }
                server
            };
            let talk = async {
                let mut back = Vec::new();
                for m in &messages {
                    client.send(m.clone()).await.unwrap();
                    if m.is_ping() {
                        continue;
                    }
                    loop {
                        match client.next().await.unwrap().unwrap() {
                            Message::Pong(p) => assert_eq!(&p[..], b"hi"),
                            m => {
                                back.push(m);
                                break;
                            }
                        }
                    }
                }
                client.close(None).await.unwrap();
                (client, back)
            };
            let (server, (client, back)) = tokio::join!(echo, talk);
            let data: Vec<&Message> = messages.iter().filter(|m| !m.is_ping()).collect();
            assert_eq!(back.iter().collect::<Vec<_>>(), data, "{nct} {bits}");
            let (c, s) = (
                client.get_ref().tally().unwrap(),
                server.get_ref().tally().unwrap(),
            );
            let total: u64 = data.iter().map(|m| m.len() as u64).sum();
            assert_eq!(
                (c.sent, c.received, s.sent, s.received),
                (total, total, total, total)
            );
            assert_eq!((c.wire_sent, c.wire_received), (s.wire_received, s.wire_sent));
            if bits > 8 {
                assert!(c.wire_sent < total / 10, "{nct} {bits}: {c:?}");
            }
        }
    }

    /// Frames as a server would send them: a compressed message of 8 MiB of one byte.
    #[tokio::test]
    async fn a_bomb_fails_the_read_within_the_limit() {
        let mut packed = Vec::new();
        super::super::codec::Deflater::new(15, false).compress(&vec![b'x'; 8 << 20], true, &mut packed);
        assert!(packed.len() < 64 << 10);
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut client = ws(a, Role::Client, params(false, 15)).await;
        let mut frame = vec![0xC2, 126];
        frame.extend((packed.len() as u16).to_be_bytes());
        frame.extend(&packed);
        b.write_all(&frame).await.unwrap();
        match client.next().await {
            Some(Err(Error::Io(e))) => assert_eq!(Broken::of(&e), Some(Broken::TooBig)),
            other => panic!("{other:?}"),
        }
    }

    /// RFC 6455 5.1: a server masks no frame; a masked compressed one fails the read.
    #[tokio::test]
    async fn a_masked_frame_from_the_server_is_refused() {
        let mut packed = Vec::new();
        super::super::codec::Deflater::new(15, false).compress(b"hello", true, &mut packed);
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut client = ws(a, Role::Client, params(false, 15)).await;
        let mut frame = vec![0xC1, 0x80 | packed.len() as u8, 0, 0, 0, 0];
        frame.extend(&packed);
        b.write_all(&frame).await.unwrap();
        match client.next().await {
            Some(Err(Error::Io(e))) => assert_eq!(Broken::of(&e), Some(Broken::Corrupt)),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_uncompressed_message_and_a_control_frame_between_fragments_pass() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut client = ws(a, Role::Client, params(false, 15)).await;
        let mut packed = Vec::new();
        let mut zip = super::super::codec::Deflater::new(15, false);
        zip.compress(b"hello ", false, &mut packed);
        let mut bytes = vec![0x41, packed.len() as u8];
        bytes.extend(&packed);
        bytes.extend([0x89, 1, b'p']); // a ping between the fragments
        packed.clear();
        zip.compress(b"world", true, &mut packed);
        bytes.extend([0x80, packed.len() as u8]);
        bytes.extend(&packed);
        bytes.extend([0x81, 5]);
        bytes.extend(b"plain");
        b.write_all(&bytes).await.unwrap();
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::Ping(b"p".to_vec().into())
        );
        assert_eq!(
            client.next().await.unwrap().unwrap(),
            Message::text("hello world")
        );
        assert_eq!(client.next().await.unwrap().unwrap(), Message::text("plain"));
        let t = client.get_ref().tally().unwrap();
        assert_eq!(t.received, 16);
    }
}
