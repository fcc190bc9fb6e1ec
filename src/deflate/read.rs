//! The incoming half: frames from the socket on their way up to tungstenite. The frames of a
//! compressed message (RSV1 on its first) are read whole, one at a time, inflated within the
//! message limit and handed up as plain frames of the same kind and FIN, so tungstenite
//! reassembles and checks them as ever. Every other frame (control frames between the
//! fragments, messages sent uncompressed) goes up as it came, its payload read straight into
//! tungstenite's buffer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

use super::codec::Inflater;
use super::common::{Broken, Limits, Role};
use super::frame::{Head, MAX_HEAD, apply_mask, write_head};

/// Bytes asked of the socket at a time when a frame is incomplete, at least and at most.
const READ_LEAST: usize = 4 << 10;
const READ_MOST: usize = 64 << 10;
/// A buffer larger than this is let go once it is empty (a big message must not make every
/// idle connection keep its size).
const KEEP: usize = 64 << 10;

pub struct Reader {
    inflater: Inflater,
    role: Role,
    limits: Limits,
    /// Bytes read from the socket and not yet looked at, from `at` on.
    raw: Vec<u8>,
    at: usize,
    eof: bool,
    /// Bytes for tungstenite, from `ready_at` on.
    ready: Vec<u8>,
    ready_at: usize,
    /// Payload bytes still to come of a frame that goes up as it came.
    passing: u64,
    /// Inside a compressed message: its continuation frames are compressed too.
    in_message: bool,
    /// What the compressed message inflated to so far.
    message_len: usize,
    /// Data payload bytes: as tungstenite got them, and as they came on the wire.
    pub received: u64,
    pub wire: u64,
}

impl Reader {
    /// `fresh`: the peer compresses every message afresh; `raw`: bytes already read from the
    /// socket (after the upgrade's response head).
    pub fn new(role: Role, fresh: bool, limits: Limits, raw: Vec<u8>) -> Self {
        Reader {
            inflater: Inflater::new(fresh),
            role,
            limits,
            raw,
            at: 0,
            eof: false,
            ready: Vec::new(),
            ready_at: 0,
            passing: 0,
            in_message: false,
            message_len: 0,
            received: 0,
            wire: 0,
        }
    }

    pub fn poll_read<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if self.ready_at < self.ready.len() {
                let n = (self.ready.len() - self.ready_at).min(buf.remaining());
                buf.put_slice(&self.ready[self.ready_at..self.ready_at + n]);
                self.ready_at += n;
                if self.ready_at == self.ready.len() {
                    self.ready_at = 0;
                    empty(&mut self.ready);
                }
                return Poll::Ready(Ok(()));
            }
            if self.passing > 0 {
                return self.pass(io, cx, buf);
            }
            let want = match Head::parse(&self.raw[self.at..]) {
                Some(head) if !self.transcodes(&head) => {
                    self.ready
                        .extend_from_slice(&self.raw[self.at..self.at + head.size]);
                    self.at += head.size;
                    self.passing = head.len;
                    if !head.is_control() {
                        self.received += head.len;
                        self.wire += head.len;
                    }
                    continue;
                }
                Some(head) if head.len > self.limits.max_frame as u64 => {
                    return Poll::Ready(Err(Broken::TooBig.into()));
                }
                Some(head) if self.raw.len() - self.at >= head.size + head.len as usize => {
                    self.inflate(head)?;
                    continue;
                }
                Some(head) => head.size + head.len as usize,
                None => MAX_HEAD,
            };
            if self.eof {
                // A frame cut short: up as it is, and tungstenite sees the end after it.
                if self.at == self.raw.len() {
                    return Poll::Ready(Ok(()));
                }
                self.ready.extend_from_slice(&self.raw[self.at..]);
                self.at = self.raw.len();
                continue;
            }
            ready!(self.fill(io, cx, want))?;
        }
    }

    /// Whether a frame is part of a compressed message. A frame that breaks the protocol
    /// (RSV1 on a continuation, RSV2-3, a new message inside one) goes up as it came, for
    /// tungstenite to refuse.
    fn transcodes(&self, head: &Head) -> bool {
        if head.is_control() || head.rsv23() {
            return false;
        }
        if head.is_continuation() {
            return self.in_message && !head.rsv1();
        }
        head.starts_message() && head.rsv1() && !self.in_message
    }

    /// Payload of a frame that goes up as it came: what was read already, else straight from
    /// the socket into tungstenite's buffer.
    fn pass<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let most = self.passing.min(buf.remaining() as u64) as usize;
        if self.at < self.raw.len() {
            let n = most.min(self.raw.len() - self.at);
            buf.put_slice(&self.raw[self.at..self.at + n]);
            self.at += n;
            self.passing -= n as u64;
            if self.at == self.raw.len() {
                self.at = 0;
                empty(&mut self.raw);
            }
            return Poll::Ready(Ok(()));
        }
        if self.eof {
            return Poll::Ready(Ok(()));
        }
        let mut part = ReadBuf::new(buf.initialize_unfilled_to(most));
        ready!(Pin::new(io).poll_read(cx, &mut part))?;
        let n = part.filled().len();
        buf.advance(n);
        self.eof = n == 0;
        self.passing -= n as u64;
        Poll::Ready(Ok(()))
    }

    /// Reads more of the socket, towards `want` bytes not yet looked at.
    fn fill<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        want: usize,
    ) -> Poll<io::Result<()>> {
        if self.at > 0 {
            self.raw.drain(..self.at);
            self.at = 0;
        }
        let have = self.raw.len();
        self.raw.reserve(want.saturating_sub(have));
        let more = want.saturating_sub(have).clamp(READ_LEAST, READ_MOST);
        self.raw.resize(have + more, 0);
        let mut part = ReadBuf::new(&mut self.raw[have..]);
        let polled = Pin::new(io).poll_read(cx, &mut part);
        let n = part.filled().len();
        self.raw.truncate(have + n);
        ready!(polled)?;
        self.eof = n == 0;
        Poll::Ready(Ok(()))
    }

    /// Inflates the compressed frame `head` (all of it read) into one plain frame for
    /// tungstenite.
    fn inflate(&mut self, head: Head) -> Result<(), Broken> {
        // RFC 6455 5.1: a client masks every frame, a server none.
        if head.mask.is_some() != (self.role == Role::Server) {
            return Err(Broken::Corrupt);
        }
        let start = self.at + head.size;
        let end = start + head.len as usize;
        if let Some(key) = head.mask {
            apply_mask(&mut self.raw[start..end], key, 0);
        }
        self.wire += head.len;
        self.ready.clear();
        self.ready.resize(MAX_HEAD, 0);
        let limit = MAX_HEAD.saturating_add(self.limits.max_message.saturating_sub(self.message_len));
        let last = head.fin();
        self.inflater
            .inflate(&self.raw[start..end], last, limit, &mut self.ready)?;
        let n = self.ready.len() - MAX_HEAD;
        self.message_len += n;
        self.received += n as u64;
        // tungstenite's server role wants client frames masked: a zero key leaves them as they are.
        let mask = (self.role == Role::Server).then_some([0; 4]);
        self.ready_at = write_head(head.first_with_rsv1(false), mask, n, &mut self.ready);
        self.at = end;
        if self.at == self.raw.len() {
            // A large compressed frame must not leave its size behind on an idle connection.
            self.at = 0;
            empty(&mut self.raw);
        }
        self.in_message = !last;
        if last {
            self.message_len = 0;
        }
        Ok(())
    }
}

/// Clears a buffer, and lets a large one go.
fn empty(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP {
        *buf = Vec::new();
    } else {
        buf.clear();
    }
}
