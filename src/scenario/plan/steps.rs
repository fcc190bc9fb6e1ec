//! What each client does on a connection: the setup steps, then the step loop.

use std::time::Duration;

use crate::scenario::check::Check;
use crate::scenario::template::Template;

#[derive(Debug, Clone)]
pub enum Step {
    Send {
        template: Template,
        /// Some when the reply is correlated by id and timed.
        expect: Option<Expect>,
    },
    /// A binary frame.
    SendBinary(bytes::Bytes),
    /// Wait for a message that is not a correlated reply and passes the check; a timeout is
    /// counted and the loop goes on (in setup, it fails the connection).
    WaitFor {
        check: Check,
        timeout: Duration,
    },
    Sleep(Duration),
    /// A think time drawn uniformly from this range each time.
    SleepBetween(Duration, Duration),
    /// Close the connection with this code once the awaited replies are in, and connect again.
    Close(u16),
}

#[derive(Debug, Clone)]
pub struct Expect {
    /// Whether the client waits for the reply (or its timeout) before the next step.
    pub wait: bool,
    /// Tests of the reply (the last one of a stream): a failure counts as a check failure.
    pub checks: Vec<Check>,
    /// A stream of replies: this marks the last one.
    pub last: Option<Check>,
}

impl Step {
    /// Whether the step sends a message.
    pub fn sends(&self) -> bool {
        matches!(self, Step::Send { .. } | Step::SendBinary(_))
    }
}
