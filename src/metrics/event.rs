//! What clients report: small `Copy` events sent one way to the collector. Errors are enum
//! kinds, never formatted strings, so the hot path never allocates to report a failure.

use std::fmt;

use crate::scenario::ChaosHow;

/// Why a connection attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConnectError {
    /// The connect timeout passed before the upgrade completed.
    Timeout,
    /// TCP connection refused.
    Refused,
    /// TCP reset during connect or handshake.
    Reset,
    /// The host name did not resolve.
    Dns,
    /// The server answered the upgrade with this HTTP status instead of 101.
    HttpStatus(u16),
    /// The upgrade response was not a valid WebSocket handshake.
    Handshake,
    /// The TLS handshake failed (an unknown CA, a wrong name, a refused client certificate…).
    Tls,
    /// The server chose a subprotocol that was not offered, or not the one expected, or none.
    Subprotocol,
    /// Another I/O error.
    Io,
    /// An HTTP step of the setup, before the connect, did not succeed.
    HttpSetup,
}

/// Why an open connection ended without the client asking for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropCause {
    /// The server sent a close frame with this code (1005 when it carried none).
    ServerClose(u16),
    /// The stream ended without a close frame (WebSocket code 1006).
    Abnormal,
    /// TCP reset by the peer.
    Reset,
    /// Another read error.
    ReadError,
    /// A write failed.
    WriteError,
    /// No byte could be written for the connect timeout: the server stopped reading.
    WriteTimeout,
    /// The server broke the WebSocket protocol.
    Protocol,
    /// The server sent (or announced) a message or frame above `max_message` / `max_frame`.
    TooBig,
    /// A TLS connection ended without TLS's close_notify (a truncation, as far as TLS can tell).
    TlsUnclean,
    /// No pong came back within the heartbeat timeout.
    PongTimeout,
    /// A setup step failed (its correlated reply timed out).
    SetupFailed,
    /// The server's first message was not the protocol's greeting (`wait_for` with `first`).
    ProtocolMismatch,
    /// A rule's `lapse` ran out: the server's application heartbeat stopped.
    ServerPingTimeout,
    /// The server sent a STOMP ERROR frame (a rule's `drop = "stomp_error"`).
    StompError,
    /// The server refused the Socket.IO namespace connect (a `44` packet, a rule's
    /// `drop = "socketio_connect_error"`).
    SocketioConnectError,
    /// Client-side chaos ended the connection.
    Chaos(ChaosHow),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectError::Timeout => f.write_str("timeout"),
            ConnectError::Refused => f.write_str("refused"),
            ConnectError::Reset => f.write_str("reset"),
            ConnectError::Dns => f.write_str("dns"),
            ConnectError::HttpStatus(code) => write!(f, "http_{code}"),
            ConnectError::Handshake => f.write_str("handshake"),
            ConnectError::Tls => f.write_str("tls"),
            ConnectError::Subprotocol => f.write_str("subprotocol"),
            ConnectError::Io => f.write_str("io"),
            ConnectError::HttpSetup => f.write_str("http_setup"),
        }
    }
}

impl fmt::Display for DropCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DropCause::ServerClose(code) => write!(f, "close_{code}"),
            DropCause::Abnormal => f.write_str("close_1006"),
            DropCause::Reset => f.write_str("reset"),
            DropCause::ReadError => f.write_str("read_error"),
            DropCause::WriteError => f.write_str("write_error"),
            DropCause::WriteTimeout => f.write_str("write_timeout"),
            DropCause::Protocol => f.write_str("protocol_error"),
            DropCause::TooBig => f.write_str("message_too_big"),
            DropCause::TlsUnclean => f.write_str("tls_unclean_close"),
            DropCause::PongTimeout => f.write_str("pong_timeout"),
            DropCause::SetupFailed => f.write_str("setup_failed"),
            DropCause::ProtocolMismatch => f.write_str("protocol_mismatch"),
            DropCause::ServerPingTimeout => f.write_str("server_ping_timeout"),
            DropCause::StompError => f.write_str("stomp_error"),
            DropCause::SocketioConnectError => f.write_str("socketio_connect_error"),
            DropCause::Chaos(how) => write!(f, "chaos_{}", how.name()),
        }
    }
}

impl std::str::FromStr for ConnectError {
    type Err = ();

    /// The kind a summary names (the inverse of `Display`).
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "timeout" => ConnectError::Timeout,
            "refused" => ConnectError::Refused,
            "reset" => ConnectError::Reset,
            "dns" => ConnectError::Dns,
            "handshake" => ConnectError::Handshake,
            "tls" => ConnectError::Tls,
            "subprotocol" => ConnectError::Subprotocol,
            "io" => ConnectError::Io,
            "http_setup" => ConnectError::HttpSetup,
            other => {
                ConnectError::HttpStatus(other.strip_prefix("http_").ok_or(())?.parse().map_err(|_| ())?)
            }
        })
    }
}

impl std::str::FromStr for DropCause {
    type Err = ();

    /// The cause a summary names (the inverse of `Display`; a chaos close's code is not in
    /// the name, and reads as 1000).
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "close_1006" => DropCause::Abnormal,
            "reset" => DropCause::Reset,
            "read_error" => DropCause::ReadError,
            "write_error" => DropCause::WriteError,
            "write_timeout" => DropCause::WriteTimeout,
            "protocol_error" => DropCause::Protocol,
            "message_too_big" => DropCause::TooBig,
            "tls_unclean_close" => DropCause::TlsUnclean,
            "pong_timeout" => DropCause::PongTimeout,
            "setup_failed" => DropCause::SetupFailed,
            "protocol_mismatch" => DropCause::ProtocolMismatch,
            "server_ping_timeout" => DropCause::ServerPingTimeout,
            "stomp_error" => DropCause::StompError,
            "socketio_connect_error" => DropCause::SocketioConnectError,
            "chaos_reset" => DropCause::Chaos(ChaosHow::Reset),
            "chaos_close" => DropCause::Chaos(ChaosHow::Close(1000)),
            "chaos_silent" => DropCause::Chaos(ChaosHow::Silent),
            "chaos_no_pong" => DropCause::Chaos(ChaosHow::NoPong),
            other => DropCause::ServerClose(other.strip_prefix("close_").ok_or(())?.parse().map_err(|_| ())?),
        })
    }
}

/// Why a connection ended or an attempt failed: what `[[reconnect.on]]` rules name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cause {
    Drop(DropCause),
    Connect(ConnectError),
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Drop(d) => d.fmt(f),
            Cause::Connect(c) => c.fmt(f),
        }
    }
}

/// What became of a connection's permessage-deflate offer, as it ended: whether the server
/// `accepted` it, and then its data messages' bytes sent and received, and the same on the
/// wire (compressed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deflated {
    pub accepted: bool,
    pub sent: u64,
    pub wire_sent: u64,
    pub received: u64,
    pub wire_received: u64,
}

/// How an HTTP step's request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpEnd {
    /// A response with an expected status.
    Ok(u16),
    /// A response with another status.
    Status(u16),
    /// No response: connect, TLS or protocol failure.
    Failed,
    /// No response within its timeout.
    TimedOut,
}

impl HttpEnd {
    /// The name errors are counted under (None: not an error).
    pub fn error(self) -> Option<String> {
        match self {
            HttpEnd::Ok(_) => None,
            HttpEnd::Status(s) => Some(format!("http_{s}")),
            HttpEnd::Failed => Some("failed".to_string()),
            HttpEnd::TimedOut => Some("timeout".to_string()),
        }
    }
}

/// A step's name, by number: 1 + its index in the plan's `step_names`; 0 for an unnamed step.
pub type Name = u16;

/// Microseconds where a `None` must cost nothing (events stay small); 0 µs reads as 1.
pub type Micros = std::num::NonZeroU64;

/// `us` as [`Micros`].
pub fn micros(us: u64) -> Micros {
    Micros::new(us).unwrap_or(Micros::MIN)
}

/// How an incoming message related to this connection's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// The correlated reply to a pending request (the last of a stream), within its
    /// deadline. Under an open rate (`[pacing]`), `corrected_us` is timed from when the request
    /// was due, not when it went. For a stream, `first_us` times its first reply (this one, when
    /// it is also the first). `failed`:
    /// the reply failed one of the step's checks.
    Answered {
        rtt_us: u64,
        corrected_us: Option<Micros>,
        first_us: Option<Micros>,
        failed: bool,
        /// The request step's name (see `Name`).
        name: Name,
    },
    /// A reply of a stream that is not its last.
    Part,
    /// A reply to a request that had already timed out (that request counts as a timeout).
    Late { name: Name },
    /// A second reply to an already answered request.
    Duplicate,
    /// A message carrying an id that matches no request of this connection.
    Unmatched,
    /// A message without an id: a server push. With a sequence field, `gap` numbers were
    /// skipped before it, or it repeats one already seen; with a send time, its latency.
    Push {
        gap: u32,
        repeated: bool,
        latency_us: Option<u64>,
    },
}

/// One thing that happened to a client. Lifecycle events carry the client's number for
/// connections.csv; per-message events do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A connection attempt began.
    Connecting,
    /// Attempt `attempt` succeeded. `reconnect_us` is the time since the previous
    /// connection dropped, when this one replaces it.
    Connected {
        client: u32,
        /// Which of the client's `[[sockets]]` (0 without).
        socket: u16,
        attempt: u32,
        tcp_us: u64,
        upgrade_us: u64,
        reconnect_us: Option<u64>,
    },
    ConnectFailed {
        client: u32,
        attempt: u32,
        kind: ConnectError,
        took_us: u64,
    },
    /// The attempt was abandoned because the run was stopped at once.
    ConnectAbandoned,
    /// The client stopped trying after `attempts` failed attempts; `lost` requests it held
    /// for replay are lost.
    GaveUp {
        client: u32,
        attempts: u32,
        lost: u32,
        /// Why its last attempt failed.
        cause: ConnectError,
    },
    /// A `[[reconnect.on]]` rule stopped the client after `cause` (a drop or a failed attempt);
    /// `lost` requests it kept for replay are lost.
    Stopped {
        client: u32,
        cause: Cause,
        lost: u32,
    },
    /// The connection ended without the client asking; `lost` requests were in flight.
    Dropped {
        client: u32,
        socket: u16,
        cause: DropCause,
        lost: u32,
        open_us: u64,
    },
    /// The client closed its connection (end of run, ramp-down); `unfinished` requests were
    /// still in flight (only after a forced stop: a graceful stop waits for them).
    Closed {
        client: u32,
        unfinished: u32,
        open_us: u64,
    },
    /// A connection that offered permessage-deflate ended.
    Deflate(Deflated),
    /// A message went out; `request` when it expects a correlated reply (a resent request
    /// is `replay`, not a new request).
    Sent {
        bytes: u32,
        request: bool,
        replay: bool,
        /// A request's step name.
        name: Name,
    },
    Received {
        bytes: u32,
        reply: Reply,
    },
    /// Another id of the message just `Received` (a batch answers several requests at once).
    AlsoReplied(Reply),
    /// The client began waiting before its next connection attempt.
    BackoffStarted,
    /// The wait ended (the next attempt begins, or the client stops).
    BackoffEnded,
    /// `n` requests of step name `name` passed their deadline without a reply.
    TimedOut {
        n: u32,
        name: Name,
    },
    /// `n` requests of named step `name` ended without a reply: lost (in flight at a drop, or
    /// kept for replay by a client that gave up) or unfinished (at the end of the run). The
    /// totals count them with the drop, the close or the end; this is their names' share.
    NamedEnded {
        name: Name,
        n: u32,
        lost: bool,
    },
    /// Under an open rate, this many passes of the step loop could not begin on time: the
    /// one before was still waiting for its reply (its requests' corrected rtt counts the
    /// wait), or there was no connection when they fell due (they are skipped).
    LateSends(u32),
    /// A request was not sent: its connection had `max_in_flight` requests waiting.
    Capped,
    /// A `wait_for` step saw its message after this long.
    WaitedFor {
        us: u64,
    },
    /// A `wait_for` step's time ran out.
    WaitTimedOut,
    /// This many requests were still waiting to be resent after a drop (`replay_in_flight`)
    /// when the run ended: unfinished.
    ReplayUnfinished(u32),
    /// This many captures found no value in the message they read (`capture_failures`).
    CaptureFailed(u32),
    /// A send was not sent: a `{{var.…}}` it takes has no value (`capture_missing`).
    CaptureMissing,
    /// A rule added one to counter number `0` (see `Counters`).
    Counted(u32),
    /// An HTTP step's request ended (`rtt_us` to its response, or to its failure).
    Http {
        name: Name,
        rtt_us: u64,
        end: HttpEnd,
    },
    /// A rule matched a message `us` after the last request of HTTP step `name` (`since`).
    Since {
        name: Name,
        us: u64,
    },
    /// A heartbeat ping went out.
    Ping,
    /// Its pong came back.
    Pong {
        rtt_us: u64,
    },
    /// Chaos action `index` (named as in `ChaosAction::name`) fired: it hit `selected`
    /// clients (drop) or proxied connections (network); 0 for `exec`.
    Chaos {
        index: u32,
        name: &'static str,
        selected: u32,
        /// Whether it stays on after firing, until a `ChaosEnded` or the end of the run (else
        /// it acted once).
        lasting: bool,
    },
    /// A chaos action with a duration ended (a network fault's window, an `exec` command).
    ChaosEnded {
        index: u32,
        name: &'static str,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::threshold::{CONNECT_ERRORS, DROP_CAUSES};

    /// Thresholds may select causes by name (`drops{cause=reset}`): the plan lists the names,
    /// and they must be the ones the summary uses.
    #[test]
    fn threshold_selectors_know_every_cause() {
        let drops = [
            DropCause::Reset,
            DropCause::ReadError,
            DropCause::WriteError,
            DropCause::WriteTimeout,
            DropCause::Protocol,
            DropCause::TooBig,
            DropCause::TlsUnclean,
            DropCause::PongTimeout,
            DropCause::SetupFailed,
            DropCause::ProtocolMismatch,
            DropCause::ServerPingTimeout,
            DropCause::StompError,
            DropCause::SocketioConnectError,
            DropCause::Chaos(ChaosHow::Reset),
            DropCause::Chaos(ChaosHow::Close(1001)),
            DropCause::Chaos(ChaosHow::Silent),
            DropCause::Chaos(ChaosHow::NoPong),
        ];
        for d in drops {
            assert!(DROP_CAUSES.contains(&d.to_string().as_str()), "{d}");
        }
        assert_eq!(DropCause::Abnormal.to_string(), "close_1006");
        let errors = [
            ConnectError::Timeout,
            ConnectError::Refused,
            ConnectError::Reset,
            ConnectError::Dns,
            ConnectError::Handshake,
            ConnectError::Tls,
            ConnectError::Subprotocol,
            ConnectError::Io,
            ConnectError::HttpSetup,
        ];
        for e in errors {
            assert!(CONNECT_ERRORS.contains(&e.to_string().as_str()), "{e}");
            assert_eq!(e.to_string().parse::<ConnectError>(), Ok(e));
        }
        for d in drops {
            assert_eq!(
                d.to_string().parse::<DropCause>().map(|p| p.to_string()),
                Ok(d.to_string())
            );
        }
        assert_eq!(
            "close_1011".parse::<DropCause>(),
            Ok(DropCause::ServerClose(1011))
        );
        assert_eq!(
            "http_401".parse::<ConnectError>(),
            Ok(ConnectError::HttpStatus(401))
        );
        assert!("nonsense".parse::<DropCause>().is_err());
    }
}
