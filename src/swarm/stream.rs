//! The client's socket: TCP (or TLS over it) that can drop its own outgoing pong frames (chaos
//! `no_pong`: tungstenite answers pings by itself, so the filter sits under it). Outgoing
//! frame boundaries are always tracked, so the filter can be switched on mid-stream; the cost
//! is a few comparisons per write. A write that makes no progress for the stall limit fails,
//! so a server that stops reading cannot hold a client (or the run) forever. A connection that
//! negotiated permessage-deflate carries a transcoder here instead of the frame tracker, under
//! tungstenite (`deflate`); one that did not pays nothing for it (the enum fits in the
//! tracker's spare bits).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::deflate::{Head, OPCODE_PONG, Tally, Transcoder};

/// An open connection of a client.
pub type Ws = WebSocketStream<ClientStream>;

/// The bytes' way: plain TCP, or TLS over it (boxed: rustls's state is large, and plain
/// connections should not carry its size).
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Transport {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(tcp) => tcp,
            Transport::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub struct ClientStream {
    pub inner: Transport,
    /// When set, pong frames the client writes are silently discarded.
    pub drop_pongs: bool,
    /// Set once the HTTP upgrade is done: from then on the bytes written are frames.
    framing: bool,
    /// A write (or flush) still pending after this many ms without a byte going out fails
    /// with `Stalled` (ms in 4 bytes: every connection carries it).
    stall_ms: u32,
    /// A write is pending now, and `stalled` runs to its limit.
    stalling: bool,
    /// The stall limit's timer, made on the first stall only (a connection whose writes always
    /// go out carries one pointer), then reused.
    stalled: Option<Pin<Box<Sleep>>>,
    frames: Frames,
}

/// What follows the outgoing frames: the tracker, or with permessage-deflate the transcoder
/// (which reads the incoming ones too, and drops pongs itself).
enum Frames {
    Tracked(FrameTracker),
    Deflate(Box<Transcoder>),
}

impl ClientStream {
    pub fn new(inner: Transport, stall: Duration) -> Self {
        Self {
            inner,
            drop_pongs: false,
            framing: false,
            // At least 1 ms: a sub-millisecond connect timeout must not fail every write.
            stall_ms: u32::try_from(stall.as_millis()).unwrap_or(u32::MAX).max(1),
            stalling: false,
            stalled: None,
            frames: Frames::Tracked(FrameTracker::default()),
        }
    }

    /// Marks the end of the HTTP upgrade: what follows is WebSocket frames, transcoded by
    /// `deflate` when the upgrade negotiated it.
    pub fn upgraded(&mut self, deflate: Option<Transcoder>) {
        self.framing = true;
        if let Some(deflate) = deflate {
            self.frames = Frames::Deflate(Box::new(deflate));
        }
    }

    /// The data bytes before and after compression, when deflate was negotiated.
    pub fn deflate_tally(&self) -> Option<Tally> {
        match &self.frames {
            Frames::Tracked(_) => None,
            Frames::Deflate(d) => Some(d.tally()),
        }
    }

    /// Passes a write's result on, and times the stall when it is pending: progress (any
    /// ready result) ends it, the limit fails it.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalling = false;
            return poll;
        }
        let limit = Duration::from_millis(u64::from(self.stall_ms));
        // The clock is read when a stall begins, not at every pending poll of it.
        if !self.stalling {
            self.stalling = true;
            let deadline = Instant::now() + limit;
            match &mut self.stalled {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.stalled = Some(Box::pin(sleep_until(deadline))),
            }
        }
        let timer = self.stalled.as_mut().expect("armed when the stall began");
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, Stalled(limit)))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The error of a write that made no progress for the stall limit (tungstenite hands it on
/// from a send, or from the flush of a pong it makes while reading).
#[derive(Debug, thiserror::Error)]
#[error("no byte could be written for {0:?}: the peer stopped reading")]
pub struct Stalled(Duration);

impl Stalled {
    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<Stalled>())
    }
}

/// Where the outgoing byte stream is within its current frame.
#[derive(Default)]
struct FrameTracker {
    header: [u8; 14],
    /// Header bytes seen (at most 14: one byte each, as the task carries it).
    have: u8,
    /// Header length once known (0 until the second byte is seen).
    need: u8,
    payload_left: u64,
    dropping: bool,
}

impl FrameTracker {
    fn in_header(&self) -> bool {
        self.payload_left == 0
    }

    /// Bytes from the start of `buf` that share the current frame's fate.
    fn run(&mut self, buf: &[u8], drop_pongs: bool) -> usize {
        if self.in_header() {
            if self.have == 0 {
                self.dropping = drop_pongs && buf[0] & 0x0F == OPCODE_PONG;
            }
            // Header bytes one at a time until its length is known, then the rest at once.
            let need = if self.need == 0 { 2 } else { self.need };
            usize::from(need - self.have).min(buf.len())
        } else {
            self.payload_left.min(buf.len() as u64) as usize
        }
    }

    /// Follows frame boundaries over bytes written as they are (nothing dropped).
    fn track(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let run = self.run(bytes, false);
            self.advance(&bytes[..run]);
            bytes = &bytes[run..];
        }
    }

    /// Records that `bytes` (a prefix of the last `run`) went out or were dropped.
    fn advance(&mut self, bytes: &[u8]) {
        if !self.in_header() {
            self.payload_left -= bytes.len() as u64;
            return;
        }
        let have = usize::from(self.have);
        self.header[have..have + bytes.len()].copy_from_slice(bytes);
        // A run within the header is at most its 14 bytes.
        self.have += bytes.len() as u8;
        if self.have >= 2 && self.need == 0 {
            // At most 14.
            self.need = Head::size_for(self.header[1]) as u8;
        }
        if self.need != 0 && self.have == self.need {
            let head = Head::parse(&self.header[..usize::from(self.have)]).expect("a whole header");
            self.have = 0;
            self.need = 0;
            self.payload_left = head.len;
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.frames {
            Frames::Tracked(_) => Pin::new(&mut this.inner).poll_read(cx, buf),
            Frames::Deflate(deflate) => deflate.poll_read(&mut this.inner, cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = this.write(cx, buf);
        this.watch(cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = match &mut this.frames {
            Frames::Tracked(_) => Pin::new(&mut this.inner).poll_flush(cx),
            Frames::Deflate(deflate) => deflate.poll_flush(&mut this.inner, cx),
        };
        this.watch(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.frames {
            Frames::Tracked(_) => Pin::new(&mut this.inner).poll_shutdown(cx),
            Frames::Deflate(deflate) => deflate.poll_shutdown(&mut this.inner, cx),
        }
    }
}

impl ClientStream {
    /// A write, with outgoing pongs dropped when asked.
    fn write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self;
        if !this.framing {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        let frames = match &mut this.frames {
            Frames::Tracked(frames) => frames,
            Frames::Deflate(deflate) => return deflate.poll_write(&mut this.inner, cx, buf, this.drop_pongs),
        };
        if !this.drop_pongs {
            // The common case: one write for the whole buffer; only follow frame boundaries.
            let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
            frames.track(&buf[..written]);
            return Poll::Ready(Ok(written));
        }
        let mut consumed = 0;
        while consumed < buf.len() {
            let rest = &buf[consumed..];
            let run = frames.run(rest, this.drop_pongs);
            if frames.dropping {
                frames.advance(&rest[..run]);
                consumed += run;
                continue;
            }
            match Pin::new(&mut this.inner).poll_write(cx, &rest[..run]) {
                Poll::Ready(Ok(n)) => {
                    frames.advance(&rest[..n]);
                    consumed += n;
                    if n < run {
                        break;
                    }
                }
                Poll::Ready(Err(e)) if consumed == 0 => return Poll::Ready(Err(e)),
                Poll::Pending if consumed == 0 => return Poll::Pending,
                _ => break,
            }
        }
        Poll::Ready(Ok(consumed))
    }
}

/// How long a closing client waits for the server's close frame.
pub(super) const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Sends a close frame and waits briefly for the server's answer.
pub(super) async fn close(ws: &mut Ws, code: CloseCode) {
    let frame = CloseFrame {
        code,
        reason: "".into(),
    };
    let _ = timeout(CLOSE_GRACE, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, payload_len: usize) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        match payload_len {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                f.push(0x80 | 126);
                f.extend((n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend((n as u64).to_be_bytes());
            }
        }
        f.extend([1, 2, 3, 4]);
        f.extend(std::iter::repeat_n(opcode, payload_len));
        f
    }

    /// Feeds `bytes` in chunks of `chunk` and returns what would reach the socket. The first
    /// `tracked` bytes go through the no-drop fast path.
    fn filter_after(bytes: &[u8], chunk: usize, drop_pongs: bool, tracked: usize) -> Vec<u8> {
        let mut t = FrameTracker::default();
        let mut out = bytes[..tracked].to_vec();
        for piece in bytes[..tracked].chunks(chunk) {
            t.track(piece);
        }
        for piece in bytes[tracked..].chunks(chunk) {
            let mut at = 0;
            while at < piece.len() {
                let run = t.run(&piece[at..], drop_pongs);
                if !t.dropping {
                    out.extend_from_slice(&piece[at..at + run]);
                }
                t.advance(&piece[at..at + run]);
                at += run;
            }
        }
        out
    }

    fn filter(bytes: &[u8], chunk: usize, drop_pongs: bool) -> Vec<u8> {
        filter_after(bytes, chunk, drop_pongs, 0)
    }

    #[test]
    fn dropping_can_start_mid_stream_after_the_fast_path() {
        let (text, pong) = (frame(0x1, 300), frame(OPCODE_PONG, 4));
        let stream: Vec<u8> = [
            text.clone(),
            pong.clone(),
            text.clone(),
            pong.clone(),
            text.clone(),
        ]
        .concat();
        let split = text.len() * 2 + pong.len();
        let kept: Vec<u8> = [text.clone(), pong, text.clone(), text].concat();
        for chunk in [1, 5, 1 << 20] {
            assert_eq!(filter_after(&stream, chunk, true, split), kept, "chunk {chunk}");
        }
    }

    /// An unmasked frame (headers of 2, 4 and 10 bytes), as a server writes them.
    fn unmasked(opcode: u8, payload_len: usize) -> Vec<u8> {
        let mut f = frame(opcode, payload_len);
        f[1] &= 0x7F;
        let at = f.len() - payload_len - 4;
        f.drain(at..at + 4);
        f
    }

    #[test]
    fn unmasked_and_empty_frames_are_followed_too() {
        let (pong, empty, mid, big) = (
            unmasked(OPCODE_PONG, 0),
            unmasked(0x1, 0),
            unmasked(0x2, 126),
            unmasked(0x2, 70_000),
        );
        let stream: Vec<u8> = [pong.clone(), empty.clone(), mid.clone(), pong, big.clone()].concat();
        let kept: Vec<u8> = [empty, mid, big].concat();
        for chunk in [1, 2, 9, 1 << 20] {
            assert_eq!(filter(&stream, chunk, true), kept, "chunk {chunk}");
        }
    }

    #[test]
    fn drops_exactly_the_pong_frames_whatever_the_write_sizes() {
        let (text, pong, big, small) = (
            frame(0x1, 5),
            frame(OPCODE_PONG, 8),
            frame(0x2, 70_000),
            frame(0x1, 300),
        );
        let stream: Vec<u8> = [
            text.clone(),
            pong.clone(),
            big.clone(),
            pong.clone(),
            small.clone(),
        ]
        .concat();
        let kept: Vec<u8> = [text, big, small].concat();
        for chunk in [1, 3, 7, 64, 1 << 20] {
            assert_eq!(filter(&stream, chunk, true), kept, "chunk {chunk}");
            assert_eq!(filter(&stream, chunk, false), stream, "chunk {chunk}");
        }
    }
}
