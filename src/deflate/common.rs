//! What the transcoder's halves share: which side of the connection this is, the limits on
//! what the peer may send, and why a compressed message ends the connection.

use std::io;

/// Which end of the connection the transcoder serves: a client masks what it sends and reads
/// frames unmasked; a server the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// The largest message (after decompression) and frame (on the wire) the peer may send:
/// tungstenite's own limits, which it applies again to what it is handed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_message: usize,
    pub max_frame: usize,
}

/// Why a compressed message failed the connection, carried in the `io::Error` that the socket
/// read returns (tungstenite hands it on as `Error::Io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    /// It inflates past `max_message`, or its frame is over `max_frame` (a deflate bomb).
    #[error("a compressed message or frame over the limit")]
    TooBig,
    /// Its payload is not DEFLATE data.
    #[error("a compressed message that does not inflate")]
    Corrupt,
}

impl Broken {
    /// The kind carried by a read error, if it is one of these.
    pub fn of(e: &io::Error) -> Option<Broken> {
        e.get_ref()?.downcast_ref::<Broken>().copied()
    }
}

impl From<Broken> for io::Error {
    fn from(b: Broken) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, b)
    }
}
