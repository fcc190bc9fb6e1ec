//! DEFLATE for messages (RFC 7692 §7.2): a compressor that ends each message on a sync flush
//! with its `00 00 FF FF` cut off, and a decompressor that puts it back and stops as soon as a
//! message grows past its limit, so that a deflate bomb never costs more than the limit.
//! Both are made on first use (a connection that sends nothing holds none) and, without
//! context takeover, dropped after each message: their windows are most of a connection's
//! memory (zlib's compressor at 15 bits: some 256 KiB).

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::common::Broken;
use super::negotiate::MIN_WINDOW_BITS;

/// What a sync flush ends with, and what the receiver appends before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Output room added at a time while inflating.
const CHUNK: usize = 16 << 10;

/// The sending side.
pub struct Deflater {
    zip: Option<Compress>,
    window_bits: u8,
    /// Start every message afresh (no context takeover).
    fresh: bool,
}

impl Deflater {
    pub fn new(window_bits: u8, fresh: bool) -> Self {
        Deflater {
            zip: None,
            window_bits,
            fresh,
        }
    }

    /// Appends `data` compressed to `out`, ending on a sync flush; with `last` (the frame
    /// ends the message) without the flush's `00 00 FF FF`.
    pub fn compress(&mut self, mut data: &[u8], last: bool, out: &mut Vec<u8>) {
        let zip = self.zip.get_or_insert_with(|| {
            // zlib cannot compress with a 256-byte window (8 bits, madler/zlib#171): at 8 it
            // sends stored blocks only, which refer back to nothing, so any window reads them.
            match self.window_bits {
                MIN_WINDOW_BITS => Compress::new_with_window_bits(Compression::none(), false, 9),
                bits => Compress::new_with_window_bits(Compression::default(), false, bits),
            }
        });
        let start = out.len();
        // Room for incompressible data, and a flush; more if it is not enough.
        out.reserve(data.len() + data.len() / 64 + 32);
        loop {
            let before = zip.total_in();
            zip.compress_vec(data, out, FlushCompress::Sync)
                .expect("compressing in memory cannot fail");
            data = &data[(zip.total_in() - before) as usize..];
            // The flush is complete when zlib left room unused.
            if data.is_empty() && out.len() < out.capacity() {
                break;
            }
            out.reserve(data.len() + 64);
        }
        if last {
            if out.len() == start {
                // Nothing since the last flush (zlib adds no second empty block): the empty
                // block's first byte, which the receiver completes with its `00 00 FF FF`.
                out.push(0x00);
            } else if out.ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            }
            if self.fresh {
                self.zip = None;
            }
        }
    }
}

/// The receiving side.
pub struct Inflater {
    unzip: Option<Decompress>,
    fresh: bool,
}

impl Inflater {
    pub fn new(fresh: bool) -> Self {
        Inflater { unzip: None, fresh }
    }

    /// Appends `data` (a compressed frame's payload; `last`: it ends the message)
    /// decompressed to `out`, and fails as soon as `out` passes `limit` bytes: the limit is all
    /// it ever holds. The window is always 15 bits: it reads what any smaller window made.
    pub fn inflate(
        &mut self,
        data: &[u8],
        last: bool,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), Broken> {
        let unzip = self
            .unzip
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        let ended = feed(unzip, data, limit, out)?;
        if last {
            if !ended {
                feed(unzip, &TAIL, limit, out)?;
            }
            if self.fresh {
                self.unzip = None;
            }
        }
        Ok(())
    }
}

/// Inflates all of `data` into `out`, within `limit` bytes of `out`; true when the stream ended
/// (a block with BFINAL, which RFC 7692 §7.2.3.4 allows: what follows starts a new stream, so
/// the inflater is reset).
fn feed(unzip: &mut Decompress, mut data: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<bool, Broken> {
    loop {
        // Room doubling as the message grows, up to one byte past the limit (to see it
        // passed): a small message holds little, a bomb never more than the limit.
        let room = limit
            .saturating_add(1)
            .saturating_sub(out.len())
            .min(out.len().max(CHUNK));
        if out.capacity() - out.len() < room {
            out.reserve_exact(room);
        }
        let (before_in, before_out) = (unzip.total_in(), unzip.total_out());
        let status = unzip
            .decompress_vec(data, out, FlushDecompress::Sync)
            .map_err(|_| Broken::Corrupt)?;
        if out.len() > limit {
            return Err(Broken::TooBig);
        }
        let took = (unzip.total_in() - before_in) as usize;
        let made = unzip.total_out() - before_out;
        data = &data[took..];
        if status == Status::StreamEnd {
            unzip.reset(false);
            return Ok(true);
        }
        let full = out.len() == out.capacity();
        if data.is_empty() && !full {
            return Ok(false);
        }
        if took == 0 && made == 0 && !full {
            // Input left that zlib will not take with room to spare: not DEFLATE.
            return Err(Broken::Corrupt);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(deflater: &mut Deflater, inflater: &mut Inflater, message: &[u8]) -> usize {
        let mut packed = Vec::new();
        deflater.compress(message, true, &mut packed);
        let mut out = Vec::new();
        inflater.inflate(&packed, true, 1 << 20, &mut out).unwrap();
        assert_eq!(out, message);
        packed.len()
    }

    #[test]
    fn messages_come_back_with_and_without_context_takeover() {
        let message = br#"{"type":"Request","request_id":"17-3","text":"abcabcabcabcabcabcabc"}"#;
        for (bits, fresh) in [(15, false), (15, true), (10, false), (9, true), (8, false)] {
            let (mut d, mut i) = (Deflater::new(bits, fresh), Inflater::new(fresh));
            let first = round_trip(&mut d, &mut i, message);
            let second = round_trip(&mut d, &mut i, message);
            match (fresh, bits) {
                (_, 8) => assert!(first > message.len(), "stored blocks only"),
                (true, _) => assert_eq!(first, second, "{bits}: nothing carried over"),
                (false, _) => assert!(second < first / 2, "{bits}: the second refers to the first"),
            }
            assert_eq!(round_trip(&mut d, &mut i, b""), 1);
        }
    }

    #[test]
    fn the_empty_message_is_one_byte_as_in_rfc_7692() {
        let mut packed = Vec::new();
        Deflater::new(15, false).compress(b"", true, &mut packed);
        assert_eq!(packed, [0x00]);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let mut packed = Vec::new();
        Deflater::new(15, false).compress(&vec![b'a'; 50 << 20], true, &mut packed);
        assert!(packed.len() < 100 << 10, "{} bytes", packed.len());
        let mut out = Vec::new();
        let e = Inflater::new(false).inflate(&packed, true, 1 << 20, &mut out);
        assert_eq!(e, Err(Broken::TooBig));
        assert!(out.capacity() <= (1 << 20) + 1, "held {}", out.capacity());
    }

    #[test]
    fn garbage_is_refused() {
        let mut out = Vec::new();
        let e = Inflater::new(false).inflate(&[0xFF; 40], true, 1 << 20, &mut out);
        assert_eq!(e, Err(Broken::Corrupt));
    }

    #[test]
    fn fragments_inflate_as_one_message() {
        let message = "fragmented ".repeat(200);
        let mut d = Deflater::new(15, false);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        d.compress(&message.as_bytes()[..1000], false, &mut a);
        d.compress(&message.as_bytes()[1000..], true, &mut b);
        let mut i = Inflater::new(false);
        let mut out = Vec::new();
        i.inflate(&a, false, 1 << 20, &mut out).unwrap();
        i.inflate(&b, true, 1 << 20, &mut out).unwrap();
        assert_eq!(out, message.as_bytes());
    }
}
