//! The outgoing half: frames tungstenite writes, on their way to the socket. A data frame is
//! taken whole, unmasked, compressed, marked with RSV1 (on a message's first frame) and masked
//! again with its own key; control frames go out as they came, or not at all when chaos drops
//! pongs. What a write takes is queued and written at once as far as the socket takes it; a
//! write waits while anything is left from the one before, so the socket's backpressure still
//! reaches tungstenite.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::AsyncWrite;

use super::codec::Deflater;
use super::frame::{Head, MAX_HEAD, OPCODE_PONG, apply_mask, write_head};

/// A buffer larger than this is let go once it is empty.
const KEEP: usize = 64 << 10;

/// Where the bytes tungstenite writes are within their frame.
enum Frame {
    /// The next bytes are a header (`Writer::head` holds its start).
    Head,
    /// A frame going out as it came, `left` payload bytes to come; `drop`: a pong that chaos
    /// drops.
    Pass { left: u64, drop: bool },
    /// A data frame being collected for compression.
    Compress { head: Head, left: u64 },
}

pub struct Writer {
    deflater: Deflater,
    frame: Frame,
    head: [u8; MAX_HEAD],
    have: usize,
    /// Inside a message being compressed: its continuation frames are compressed too.
    in_message: bool,
    /// The payload of the frame being collected, as tungstenite wrote it (masked or not).
    plain: Vec<u8>,
    /// Bytes for the socket, from `sent` on.
    out: Vec<u8>,
    sent: usize,
    /// Data payload bytes: as tungstenite wrote them, and as they went on the wire.
    pub bytes: u64,
    pub wire: u64,
}

impl Writer {
    pub fn new(window_bits: u8, fresh: bool) -> Self {
        Writer {
            deflater: Deflater::new(window_bits, fresh),
            frame: Frame::Head,
            head: [0; MAX_HEAD],
            have: 0,
            in_message: false,
            plain: Vec::new(),
            out: Vec::new(),
            sent: 0,
            bytes: 0,
            wire: 0,
        }
    }

    /// Takes all of `buf` once what the last write left has gone out.
    pub fn poll_write<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
        buf: &[u8],
        drop_pongs: bool,
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(io, cx))?;
        self.take(buf, drop_pongs);
        // Out now as far as the socket takes it; the rest goes with the next write or flush.
        if let Poll::Ready(Err(e)) = self.poll_drain(io, cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    /// Writes what is queued.
    pub fn poll_drain<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while self.sent < self.out.len() {
            let n = ready!(Pin::new(&mut *io).poll_write(cx, &self.out[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.sent = 0;
        if self.out.capacity() > KEEP {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        Poll::Ready(Ok(()))
    }

    /// Follows `bytes` through their frames, queueing what goes out.
    fn take(&mut self, mut bytes: &[u8], drop_pongs: bool) {
        while !bytes.is_empty() {
            match &mut self.frame {
                Frame::Head => {
                    // A byte at a time until the header is whole (at most 14).
                    self.head[self.have] = bytes[0];
                    self.have += 1;
                    bytes = &bytes[1..];
                    if let Some(head) = Head::parse(&self.head[..self.have]) {
                        self.have = 0;
                        self.start(head, drop_pongs);
                    }
                }
                Frame::Pass { left, drop } => {
                    let n = (*left).min(bytes.len() as u64) as usize;
                    if !*drop {
                        self.out.extend_from_slice(&bytes[..n]);
                    }
                    *left -= n as u64;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.frame = Frame::Head;
                    }
                }
                Frame::Compress { head, left } => {
                    let n = (*left).min(bytes.len() as u64) as usize;
                    self.plain.extend_from_slice(&bytes[..n]);
                    *left -= n as u64;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        let head = *head;
                        self.compress(head);
                    }
                }
            }
        }
    }

    /// A header is whole: the frame is compressed, or goes out as it is (or is dropped).
    fn start(&mut self, head: Head, drop_pongs: bool) {
        let data = !head.is_control() && !head.rsv1() && !head.rsv23();
        let compress = data
            && if head.is_continuation() {
                self.in_message
            } else {
                head.starts_message() && !self.in_message
            };
        if compress {
            self.plain.clear();
            self.frame = Frame::Compress { head, left: head.len };
            if head.len == 0 {
                self.compress(head);
            }
            return;
        }
        let drop = drop_pongs && head.opcode() == OPCODE_PONG;
        if !drop {
            self.out.extend_from_slice(&self.head[..head.size]);
        }
        self.frame = match head.len {
            0 => Frame::Head,
            left => Frame::Pass { left, drop },
        };
    }

    /// The data frame `head` is collected: out compressed, with RSV1 on a message's first
    /// frame, masked with its key again.
    fn compress(&mut self, head: Head) {
        if let Some(key) = head.mask {
            apply_mask(&mut self.plain, key, 0);
        }
        self.bytes += self.plain.len() as u64;
        let at = self.out.len();
        self.out.resize(at + MAX_HEAD, 0);
        self.deflater.compress(&self.plain, head.fin(), &mut self.out);
        let payload = at + MAX_HEAD;
        let n = self.out.len() - payload;
        self.wire += n as u64;
        if let Some(key) = head.mask {
            apply_mask(&mut self.out[payload..], key, 0);
        }
        let first = head.first_with_rsv1(!head.is_continuation());
        let start = write_head(first, head.mask, n, &mut self.out[at..]);
        // The header right-aligned before the payload: close the gap before it.
        self.out.copy_within(at + start.., at);
        self.out.truncate(self.out.len() - start);
        self.in_message = !head.fin();
        self.frame = Frame::Head;
        if self.plain.capacity() > KEEP {
            self.plain = Vec::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deflate::codec::Inflater;

    /// A masked frame as tungstenite's client writes it.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let key = [9, 8, 7, 6];
        let mut f = vec![first, 0x80 | payload.len() as u8];
        f.extend(key);
        let mut p = payload.to_vec();
        apply_mask(&mut p, key, 0);
        f.extend(p);
        f
    }

    #[test]
    fn data_is_compressed_control_frames_pass_and_pongs_can_be_dropped() {
        let text = masked(0x81, &b"hello hello hello hello".repeat(4));
        let ping = masked(0x89, b"p");
        let pong = masked(0x8A, b"q");
        let stream: Vec<u8> = [text, pong.clone(), ping.clone()].concat();
        for (drop_pongs, chunk) in [(false, 1), (true, 3), (true, 1 << 10)] {
            let mut w = Writer::new(15, false);
            for piece in stream.chunks(chunk) {
                w.take(piece, drop_pongs);
            }
            let head = Head::parse(&w.out).unwrap();
            assert_eq!(
                (head.fin(), head.rsv1(), head.opcode(), head.mask),
                (true, true, 1, Some([9, 8, 7, 6]))
            );
            let end = head.size + head.len as usize;
            let mut payload = w.out[head.size..end].to_vec();
            apply_mask(&mut payload, [9, 8, 7, 6], 0);
            let mut plain = Vec::new();
            Inflater::new(false)
                .inflate(&payload, true, 1 << 20, &mut plain)
                .unwrap();
            assert_eq!(plain, b"hello hello hello hello".repeat(4));
            let rest = if drop_pongs {
                ping.clone()
            } else {
                [pong.clone(), ping.clone()].concat()
            };
            assert_eq!(&w.out[end..], &rest[..], "control frames as they came");
            assert_eq!((w.bytes, w.wire), (92, payload.len() as u64));
        }
    }
}
