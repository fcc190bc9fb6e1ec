//! What a client is besides its connection: the handle the swarm reaches it by (its stop
//! button, chaos commands, whether it is connected), and the few words it keeps across its
//! connections (ids, random numbers, requests kept for replay, the last push seen, its pace).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

use rand::rngs::SmallRng;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::pace::Pace;
use super::pending::Kept;
use crate::scenario::{Scope, Var};

/// How the swarm reaches one client: its stop button and chaos commands.
pub struct ClientCtl {
    /// The run's graceful stop, or this client's ramp-down.
    pub stop: CancellationToken,
    /// Whether the client has an open connection now (read by the chaos controller).
    pub connected: AtomicBool,
    /// Pending chaos command: index into the plan's chaos list, plus one (0: none).
    pub chaos: AtomicU32,
    pub notify: Notify,
}

impl ClientCtl {
    pub fn new(stop: CancellationToken) -> Self {
        Self {
            stop,
            connected: AtomicBool::new(false),
            chaos: AtomicU32::new(0),
            notify: Notify::new(),
        }
    }

    /// Asks the client to apply chaos action `index` to its connection.
    pub fn hit(&self, index: usize) {
        self.chaos.store(index as u32 + 1, Relaxed);
        self.notify.notify_one();
    }

    /// The chaos action asked for since the last call, if any.
    pub fn take_hit(&self) -> Option<usize> {
        match self.chaos.swap(0, Relaxed) {
            0 => None,
            n => Some(n as usize - 1),
        }
    }
}

/// What a client keeps across its connections.
pub struct ClientState {
    pub index: u64,
    /// Sequence number of the last message sent; ids are `index-seq`, unique per run. Its high
    /// bits (see `SOCKET_SHIFT`) are which of the client's `[[sockets]]` this is.
    pub next_seq: u64,
    pub rng: SmallRng,
    /// Requests in flight at the last drop, to resend after reconnecting.
    pub replay: Vec<Kept>,
    /// Highest push sequence number seen, across connections.
    pub last_push_seq: Option<u64>,
    /// The open-rate schedule, kept across connections (boxed: only paced runs have one).
    pub pace: Option<Box<Pace>>,
    /// The values captured from the server.
    pub vars: Vars,
}

/// Where a socket's number sits in its client's sequence numbers: each socket's ids are its
/// own, and the state needs no field for it (the task stays small). Below it, 2^36 sends.
pub const SOCKET_SHIFT: u32 = 36;

impl ClientState {
    /// Which of the client's `[[sockets]]` this is (0 without sockets).
    pub fn socket(&self) -> u16 {
        ((self.next_seq >> SOCKET_SHIFT) & 0xF) as u16
    }
}

/// The values a client captured, by variable: allocated at its first capture (an empty boxed
/// slice allocates nothing).
#[derive(Default)]
pub struct Vars(Box<[Option<Box<str>>]>);

impl Vars {
    /// Every variable's value (None: not captured, or ended with its connection).
    pub fn values(&self) -> &[Option<Box<str>>] {
        &self.0
    }

    /// Sets variable `var` of `count`.
    pub fn set(&mut self, var: u16, value: Box<str>, count: usize) {
        if self.0.is_empty() {
            self.0 = vec![None; count].into_boxed_slice();
        }
        self.0[usize::from(var)] = Some(value);
    }

    /// A connection ended: its own captures end with it (a new one's setup captures them
    /// again); a client's stay.
    pub fn end_connection(&mut self, vars: &[Var]) {
        for (value, var) in self.0.iter_mut().zip(vars) {
            if var.scope == Scope::Connection {
                *value = None;
            }
        }
    }
}
