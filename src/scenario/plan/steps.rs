//! What each client does on a connection: the setup steps, then the step loop.

use std::time::Duration;

use regex::Regex;
use serde_json::Value;

use crate::scenario::check::Check;
use crate::scenario::pointer::JsonPointer;
use crate::scenario::template::{MAX_CAPTURE, Template};

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
        /// Values taken from the message it waited for.
        captures: Vec<Capture>,
        /// The next message must be the one (a protocol's greeting): another, or none in
        /// time, drops the connection with cause `protocol_mismatch`.
        first: bool,
    },
    Sleep(Duration),
    /// A think time drawn uniformly from this range each time.
    SleepBetween(Duration, Duration),
    /// Close the connection with this code once the awaited replies are in, and connect again.
    Close(u16),
    /// An HTTP request (boxed: rare, and large).
    Http(Box<HttpStep>),
}

/// An HTTP request, made from templates.
#[derive(Debug, Clone)]
pub struct HttpStep {
    pub method: http::Method,
    /// An http:// or https:// URL.
    pub url: Template,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub body: Option<Template>,
    /// The statuses that mean success (empty: any 2xx).
    pub expect_status: Vec<u16>,
    pub timeout: Duration,
    /// Values taken from the response body.
    pub captures: Vec<Capture>,
    /// The step's name number (0: none).
    pub name: u16,
}

impl HttpStep {
    /// Whether `status` means success.
    pub fn succeeded(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }
}

#[derive(Debug, Clone)]
pub struct Expect {
    /// Whether the client waits for the reply (or its timeout) before the next step.
    pub wait: bool,
    /// Tests of the reply (the last one of a stream): a failure counts as a check failure.
    pub checks: Vec<Check>,
    /// A stream of replies: this marks the last one.
    pub last: Option<Check>,
    /// Values taken from the reply (the last one, for a stream).
    pub captures: Vec<Capture>,
    /// The step's name, by number: 1 + its index in the plan's `step_names`; 0 for none.
    pub name: u16,
}

/// `[[flows]]`: a kind of client, with its own program.
#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub weight: u32,
    pub setup: Vec<Step>,
    pub steps: Vec<Step>,
}

/// `[[sockets]]`: one of the connections every client holds.
#[derive(Debug, Clone)]
pub struct Socket {
    pub name: String,
    /// Its path and query on the target ("/chat?room=1").
    pub path: String,
    pub setup: Vec<Step>,
    pub steps: Vec<Step>,
    /// Its own reconnect policy (None: the scenario's).
    pub reconnect: Option<super::Reconnect>,
}

/// A client's program, as indices into the plan's steps (see `Plan::step`): its setup is
/// `start..loop_start`, its loop `loop_start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    pub start: usize,
    pub loop_start: usize,
    pub end: usize,
}

/// `[[every]]`: a send on a timer beside the step loop.
#[derive(Debug, Clone)]
pub struct Timer {
    pub every: Duration,
    /// A `Step::Send`.
    pub step: Step,
}

/// A value the server sends that later templates use as `{{var.NAME}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub name: String,
    pub scope: Scope,
}

/// How long a captured value lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Until the connection ends: a new connection's setup captures it again.
    Connection,
    /// For the client's whole life, across reconnects (a resume token).
    Client,
}

/// Where a step or rule takes a variable's value from.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Index into the plan's variables.
    pub var: u16,
    pub from: Extract,
}

#[derive(Debug, Clone)]
pub enum Extract {
    /// The value at a JSON pointer: a string as it is, another value as its JSON text.
    Pointer(JsonPointer),
    /// The first group of a regular expression on the whole message.
    Regex(Regex),
}

impl Extract {
    /// Whether it reads the message as JSON (parsed once for all the checks and captures).
    pub fn needs_json(&self) -> bool {
        matches!(self, Extract::Pointer(_))
    }

    /// The value in `text` (`json` is its parse, when JSON was needed): None when it is not
    /// there, is null, or is longer than `MAX_CAPTURE`.
    pub fn take(&self, text: &str, json: Option<&Value>) -> Option<Box<str>> {
        let value: Box<str> = match self {
            Extract::Pointer(p) => match json?.pointer(p.as_str())? {
                Value::Null => return None,
                Value::String(s) => s.as_str().into(),
                other => other.to_string().into(),
            },
            Extract::Regex(re) => re.captures(text)?.get(1)?.as_str().into(),
        };
        (value.len() <= MAX_CAPTURE).then_some(value)
    }
}

impl Step {
    /// The number of the step's name (0: none).
    pub fn name(&self) -> u16 {
        match self {
            Step::Send { expect: Some(e), .. } => e.name,
            Step::Http(h) => h.name,
            _ => 0,
        }
    }

    /// Whether the step sends a message.
    pub fn sends(&self) -> bool {
        matches!(self, Step::Send { .. } | Step::SendBinary(_))
    }
}
