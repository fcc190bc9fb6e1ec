//! permessage-deflate (RFC 7692), under tungstenite, which has none: the handshake's offer and
//! answer (`negotiate`), and a transcoder on the frame layer (`stream`: `read` inflates what
//! comes in, `write` compresses what goes out, `codec` over flate2's zlib-rs, `frame` the
//! headers). The swarm's clients and the built-in target both use it; a connection that did
//! not negotiate it never touches it.

mod codec;
mod common;
mod frame;
mod negotiate;
mod read;
mod stream;
mod write;

pub use common::{Broken, Limits, Role};
pub(crate) use frame::{Head, OPCODE_PONG};
pub use negotiate::{Offer, Params, accept, answer};
pub use stream::{Socket, Tally, Transcoder};
