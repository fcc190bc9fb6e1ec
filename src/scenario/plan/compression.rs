//! Compression of messages: `[connect] compression = "deflate"` (permessage-deflate, RFC 7692,
//! offered on every upgrade) with its parameters, and the built-in target's
//! `[embedded] compression`.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "Compression")]
pub enum Compression {
    /// permessage-deflate (RFC 7692).
    Deflate,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::Deflate => "deflate",
        }
    }
}

/// The permessage-deflate offer of every upgrade request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deflate {
    /// `client_max_window_bits=N` (8 to 15): the client compresses with a window of at most
    /// 2^N bytes. None: offered without a value, so that the server may choose.
    pub client_max_window_bits: Option<u8>,
    /// Offer `client_no_context_takeover` and `server_no_context_takeover`: each message is
    /// compressed on its own, both ways.
    pub no_context_takeover: bool,
}

impl Deflate {
    /// One line for the printed plan.
    pub fn describe(&self) -> String {
        let mut s = "permessage-deflate".to_string();
        if let Some(bits) = self.client_max_window_bits {
            s.push_str(&format!(", client_max_window_bits={bits}"));
        }
        if self.no_context_takeover {
            s.push_str(", no context takeover (client and server)");
        }
        s
    }
}
