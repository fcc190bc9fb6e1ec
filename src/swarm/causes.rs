//! Errors of the socket and of tungstenite, as the cause kinds that are counted: why an
//! attempt failed (`ConnectError`) and why an open connection dropped (`DropCause`).

use std::io;

use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;

use super::stream::Stalled;
use crate::deflate::Broken;
use crate::metrics::{ConnectError, DropCause};

/// Why an I/O error ended a connection attempt.
pub fn connect_error(e: &io::Error) -> ConnectError {
    // rustls errors come wrapped in io errors (a TLS 1.3 server refuses a client certificate
    // after the client's handshake is done, so it shows on the first read).
    if e.get_ref()
        .is_some_and(|inner| inner.is::<tokio_rustls::rustls::Error>())
    {
        return ConnectError::Tls;
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectError::Refused,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ConnectError::Reset,
        io::ErrorKind::TimedOut => ConnectError::Timeout,
        _ => ConnectError::Io,
    }
}

/// Why reading from an open connection failed.
pub fn read_cause(e: &WsError) -> DropCause {
    match e {
        WsError::Io(io) if Stalled::is(io) => DropCause::WriteTimeout,
        // A compressed message: as the same message uncompressed would be.
        WsError::Io(io) if Broken::of(io) == Some(Broken::TooBig) => DropCause::TooBig,
        WsError::Io(io) if Broken::of(io) == Some(Broken::Corrupt) => DropCause::Protocol,
        WsError::Io(io) if io.kind() == io::ErrorKind::ConnectionReset => DropCause::Reset,
        // Only rustls reports an end of stream as an error: one without close_notify.
        WsError::Io(io) if io.kind() == io::ErrorKind::UnexpectedEof => DropCause::TlsUnclean,
        WsError::Io(_) => DropCause::ReadError,
        WsError::ConnectionClosed | WsError::AlreadyClosed => DropCause::Abnormal,
        // The stream ended (a FIN: the server process died, or closed the socket) without a
        // close frame: WebSocket's 1006, not a malformed frame.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => DropCause::Abnormal,
        WsError::Capacity(_) => DropCause::TooBig,
        WsError::Protocol(_) | WsError::Utf8(_) => DropCause::Protocol,
        _ => DropCause::ReadError,
    }
}

/// Why writing to an open connection failed.
pub fn write_cause(e: &WsError) -> DropCause {
    match e {
        // The buffer is full of control frames the server has not taken: it stopped reading.
        WsError::Io(io) if Stalled::is(io) => DropCause::WriteTimeout,
        WsError::WriteBufferFull(_) => DropCause::WriteTimeout,
        WsError::Io(io) if io.kind() == io::ErrorKind::ConnectionReset => DropCause::Reset,
        _ => DropCause::WriteError,
    }
}
