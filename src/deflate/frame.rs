//! The header of a WebSocket frame (RFC 6455 §5.2), read from a byte stream and written for a
//! frame the transcoder makes, and the payload mask.

/// The longest header: 2 bytes, an 8-byte length, a 4-byte mask.
pub const MAX_HEAD: usize = 14;

const FIN: u8 = 0x80;
const RSV1: u8 = 0x40;
/// RSV2 and RSV3: no extension here gives them a meaning.
const RSV23: u8 = 0x30;
const CONTINUATION: u8 = 0x0;
pub const OPCODE_PONG: u8 = 0xA;

/// A frame's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The first byte: FIN, RSV1-3, the opcode.
    pub first: u8,
    pub mask: Option<[u8; 4]>,
    /// The payload's length.
    pub len: u64,
    /// The header's length in bytes.
    pub size: usize,
}

impl Head {
    /// The length of a header whose second byte is `second` (mask bit, length code).
    pub fn size_for(second: u8) -> usize {
        2 + length_bytes(second) + if second & 0x80 != 0 { 4 } else { 0 }
    }

    /// The header at the start of `bytes`, once all of it is there.
    pub fn parse(bytes: &[u8]) -> Option<Head> {
        let [first, second, ..] = *bytes else {
            return None;
        };
        let ext = length_bytes(second);
        let masked = second & 0x80 != 0;
        let size = Head::size_for(second);
        if bytes.len() < size {
            return None;
        }
        let len = match ext {
            2 => u64::from(u16::from_be_bytes([bytes[2], bytes[3]])),
            8 => u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")),
            _ => u64::from(second & 0x7F),
        };
        let mask = masked.then(|| bytes[2 + ext..size].try_into().expect("4 bytes"));
        Some(Head {
            first,
            mask,
            len,
            size,
        })
    }

    pub fn fin(&self) -> bool {
        self.first & FIN != 0
    }

    pub fn rsv1(&self) -> bool {
        self.first & RSV1 != 0
    }

    /// RSV2 or RSV3 set: a frame no extension here can take.
    pub fn rsv23(&self) -> bool {
        self.first & RSV23 != 0
    }

    pub fn opcode(&self) -> u8 {
        self.first & 0x0F
    }

    pub fn is_control(&self) -> bool {
        self.opcode() & 0x8 != 0
    }

    pub fn is_continuation(&self) -> bool {
        self.opcode() == CONTINUATION
    }

    /// Text or binary: the first frame of a data message.
    pub fn starts_message(&self) -> bool {
        matches!(self.opcode(), 0x1 | 0x2)
    }

    /// A data frame's first byte with RSV1 as given (FIN and the opcode kept, RSV2-3 clear).
    pub fn first_with_rsv1(&self, rsv1: bool) -> u8 {
        (self.first & (FIN | 0x0F)) | if rsv1 { RSV1 } else { 0 }
    }
}

/// How many bytes after the second give the payload's length.
fn length_bytes(second: u8) -> usize {
    match second & 0x7F {
        126 => 2,
        127 => 8,
        _ => 0,
    }
}

/// Writes the header of a frame of `len` payload bytes at the end of `out[..MAX_HEAD]`, right
/// before a payload at `MAX_HEAD`; returns where it begins.
pub fn write_head(first: u8, mask: Option<[u8; 4]>, len: usize, out: &mut [u8]) -> usize {
    let mut head = [0u8; MAX_HEAD];
    head[0] = first;
    let masked = if mask.is_some() { 0x80 } else { 0 };
    let mut size = 2;
    match len {
        0..=125 => head[1] = masked | len as u8,
        126..=0xFFFF => {
            head[1] = masked | 126;
            head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
            size = 4;
        }
        _ => {
            head[1] = masked | 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            size = 10;
        }
    }
    if let Some(key) = mask {
        head[size..size + 4].copy_from_slice(&key);
        size += 4;
    }
    let at = MAX_HEAD - size;
    out[at..MAX_HEAD].copy_from_slice(&head[..size]);
    at
}

/// XORs `bytes` with the mask `key`, `offset` bytes into the payload (masking and unmasking
/// are the same).
pub fn apply_mask(bytes: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in bytes.iter_mut().enumerate() {
        *b ^= key[(offset + i) & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_written_are_read_back() {
        for (len, mask) in [
            (0, None),
            (125, Some([1, 2, 3, 4])),
            (126, None),
            (65_535, Some([9, 9, 9, 9])),
            (65_536, None),
            (5 << 20, Some([0; 4])),
        ] {
            let mut out = [0u8; MAX_HEAD];
            let at = write_head(0x81 | RSV1, mask, len, &mut out);
            let head = Head::parse(&out[at..]).unwrap();
            assert_eq!(
                (
                    head.len,
                    head.mask,
                    head.size,
                    head.fin(),
                    head.rsv1(),
                    head.opcode()
                ),
                (len as u64, mask, MAX_HEAD - at, true, true, 1)
            );
            assert_eq!(Head::parse(&out[at..MAX_HEAD - 1]), None, "incomplete");
        }
    }

    #[test]
    fn masking_twice_gives_the_bytes_back_from_any_offset() {
        let text = b"permessage-deflate".to_vec();
        let mut bytes = text.clone();
        apply_mask(&mut bytes[..5], [7, 1, 200, 3], 0);
        apply_mask(&mut bytes[5..], [7, 1, 200, 3], 5);
        assert_ne!(bytes, text);
        apply_mask(&mut bytes, [7, 1, 200, 3], 0);
        assert_eq!(bytes, text);
    }
}
