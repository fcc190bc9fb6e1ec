//! Cumulative results: exact counters, causes and histograms. The collector owns one; a
//! results directory's summary.json holds one, so runs can be re-reported and merged.

use std::collections::BTreeMap;
use std::ops::{Add, Sub};

use serde::{Deserialize, Serialize};

use super::counters::Counters;
use super::event::{ConnectError, Deflated, DropCause, Event, HttpEnd, Reply};
use super::histogram::Latency;
use super::steps::Steps;
use std::sync::Arc;

macro_rules! counts {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        /// Exact counters. Gauges (connected, connecting, in flight) are derived from them.
        /// Counts added later read as 0 from older summary.json files.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(default)]
        pub struct Counts {
            $($(#[$doc])* pub $field: u64),*
        }

        impl Sub for Counts {
            type Output = Counts;

            fn sub(self, o: Counts) -> Counts {
                Counts { $($field: self.$field - o.$field),* }
            }
        }

        impl Add for Counts {
            type Output = Counts;

            fn add(self, o: Counts) -> Counts {
                Counts { $($field: self.$field + o.$field),* }
            }
        }
    };
}

counts! {
    connect_attempts,
    connects,
    /// Connections that replaced a dropped one.
    reconnects,
    connect_errors,
    connect_abandoned,
    /// Clients that stopped after `max_attempts` failed attempts.
    gave_up,
    /// Clients a `[[reconnect.on]]` rule stopped.
    stopped,
    /// Waits begun before a reconnect attempt, and waits ended.
    backoffs,
    backoffs_ended,
    drops,
    closes,
    /// Messages sent that expect a correlated reply.
    requests,
    answered,
    timeouts,
    late,
    duplicate,
    unmatched,
    /// In flight when their connection dropped (and not replayed).
    lost,
    /// Without an outcome when the run ended: in flight when it was stopped at once (a second
    /// Ctrl-C, or the end of the drain), or waiting to be resent after a drop.
    unfinished,
    /// Of those, the ones waiting to be resent after a drop (`replay_in_flight`).
    unfinished_replay,
    /// Requests sent again after a reconnect (`replay_in_flight`).
    replayed,
    /// Under an open rate: passes of the step loop that began later than they were due.
    late_sends,
    /// Requests not sent because their connection had `max_in_flight` requests waiting.
    capped,
    /// Answered requests whose reply failed one of the step's checks.
    check_failures,
    /// Replies of streams before their last.
    stream_parts,
    /// `wait_for` steps that saw their message, and those whose time ran out.
    waits,
    wait_timeouts,
    /// Messages without a correlation id.
    pushes,
    /// HTTP steps' requests, and those that did not end with an expected status.
    http_requests,
    http_errors,
    /// Captures that found no value in the message they read.
    capture_failures,
    /// Sends not sent: a `{{var.…}}` they take had no value.
    capture_missing,
    /// Sequence numbers missing between pushes.
    push_gaps,
    /// Pushes whose sequence number was already seen.
    push_duplicates,
    pings,
    pongs,
    /// Clients (drop chaos) and proxied connections (network chaos) hit by chaos actions.
    chaos_hits,
    messages_sent,
    messages_received,
    bytes_sent,
    bytes_received,
    /// Connections that offered permessage-deflate, and those that negotiated it (counted as
    /// they end).
    deflate_offered,
    deflate_connects,
    /// On the connections that negotiated it: their data messages' bytes (as in `bytes_sent`,
    /// `bytes_received`), and the same messages' bytes on the wire, compressed.
    deflate_bytes_sent,
    deflate_bytes_received,
    wire_bytes_sent,
    wire_bytes_received,
}

impl Counts {
    /// A connection that offered permessage-deflate ended.
    fn deflated(&mut self, d: Deflated) {
        self.deflate_offered += 1;
        self.deflate_connects += u64::from(d.accepted);
        self.deflate_bytes_sent += d.sent;
        self.wire_bytes_sent += d.wire_sent;
        self.deflate_bytes_received += d.received;
        self.wire_bytes_received += d.wire_received;
    }

    pub fn connected(&self) -> u64 {
        self.connects.saturating_sub(self.drops + self.closes)
    }

    pub fn connecting(&self) -> u64 {
        self.connect_attempts
            .saturating_sub(self.connects + self.connect_errors + self.connect_abandoned)
    }

    /// Clients waiting before their next connection attempt.
    pub fn backing_off(&self) -> u64 {
        self.backoffs.saturating_sub(self.backoffs_ended)
    }

    pub fn in_flight(&self) -> u64 {
        self.requests
            .saturating_sub(self.answered + self.timeouts + self.lost + self.unfinished)
    }

    /// Timeouts as a fraction of requests.
    pub fn timeout_rate(&self) -> f64 {
        ratio(self.timeouts, self.requests)
    }

    /// Requests that did not get a timely answer (timeouts + lost), as a fraction.
    pub fn error_rate(&self) -> f64 {
        ratio(self.timeouts + self.lost, self.requests)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Everything measured over a run (or a window of it).
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub counts: Counts,
    pub connect_errors: BTreeMap<ConnectError, u64>,
    pub drops: BTreeMap<DropCause, u64>,
    /// Clients that gave up, by the cause of their last failed attempt; clients a
    /// `[[reconnect.on]]` rule stopped, by cause (named as in the summary).
    pub gave_up_causes: BTreeMap<String, u64>,
    pub stopped_causes: BTreeMap<String, u64>,
    /// HTTP steps' errors: `http_<status>`, `failed`, `timeout`.
    pub http_errors: BTreeMap<String, u64>,
    pub rtt: Latency,
    /// Under an open rate: from when each request was due to its reply (coordinated omission
    /// corrected, as wrk2 does).
    pub rtt_corrected: Latency,
    /// Request → first reply, for streams (`rtt` is to the last).
    pub rtt_first: Latency,
    /// How long `wait_for` steps waited for their message.
    pub wait_time: Latency,
    pub connect_time: Latency,
    pub connect_tcp: Latency,
    pub connect_upgrade: Latency,
    /// Drop → open again.
    pub reconnect_time: Latency,
    /// Attempts per reconnect (raw counts, not µs).
    pub reconnect_attempts: Latency,
    pub ping_rtt: Latency,
    /// Push send time (from the message) → receipt.
    pub push_latency: Latency,
    /// HTTP steps: request → response.
    pub http_rtt: Latency,
    /// The rules' counters by name (read from summaries; a run counts into `counted`).
    pub counters: BTreeMap<String, u64>,
    /// A run's counters, by number in `registry`.
    pub counted: Vec<u64>,
    pub registry: Option<Arc<Counters>>,
    /// Named steps' requests.
    pub steps: Steps,
    /// Each `[[sockets]]` socket's connections, by number (empty without sockets).
    pub sockets: Vec<SocketCounts>,
}

/// One socket's connections over all clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketCounts {
    pub connects: u64,
    pub drops: u64,
}

/// The latency histograms summary.json keeps, each under its field's name: one list for
/// writing a summary and for reading shards' back (merge).
macro_rules! named_latencies {
    ($($field:ident),* $(,)?) => {
        impl Totals {
            pub fn latencies(&self) -> impl Iterator<Item = (&'static str, &Latency)> {
                [$((stringify!($field), &self.$field)),*].into_iter()
            }

            pub fn latencies_mut(&mut self) -> impl Iterator<Item = (&'static str, &mut Latency)> {
                [$((stringify!($field), &mut self.$field)),*].into_iter()
            }
        }
    };
}

named_latencies!(
    rtt,
    rtt_corrected,
    rtt_first,
    wait_time,
    connect_time,
    connect_tcp,
    connect_upgrade,
    reconnect_time,
    ping_rtt,
    push_latency,
    http_rtt,
);

impl Totals {
    /// Folds one event in. Returns the rtt it carried, if any, for windowed histograms.
    pub fn apply(&mut self, event: Event) -> Option<u64> {
        let c = &mut self.counts;
        match event {
            Event::Connecting => c.connect_attempts += 1,
            Event::Connected {
                tcp_us,
                upgrade_us,
                reconnect_us,
                attempt,
                socket,
                ..
            } => self.connected(
                tcp_us + upgrade_us,
                (tcp_us, upgrade_us),
                reconnect_us.map(|us| (us, attempt)),
                socket,
            ),
            Event::ConnectFailed { kind, .. } => {
                c.connect_errors += 1;
                *self.connect_errors.entry(kind).or_default() += 1;
            }
            Event::ConnectAbandoned => c.connect_abandoned += 1,
            Event::GaveUp { lost, cause, .. } => {
                c.gave_up += 1;
                c.lost += u64::from(lost);
                *self.gave_up_causes.entry(cause.to_string()).or_default() += 1;
            }
            Event::Stopped { cause, lost, .. } => {
                c.stopped += 1;
                c.lost += u64::from(lost);
                *self.stopped_causes.entry(cause.to_string()).or_default() += 1;
            }
            Event::Dropped {
                cause, lost, socket, ..
            } => {
                if let Some(s) = self.sockets.get_mut(usize::from(socket)) {
                    s.drops += 1;
                }
                c.drops += 1;
                c.lost += u64::from(lost);
                *self.drops.entry(cause).or_default() += 1;
            }
            Event::Closed { unfinished, .. } => {
                c.closes += 1;
                c.unfinished += u64::from(unfinished);
            }
            Event::Sent {
                bytes,
                request,
                replay,
                name,
            } => {
                c.messages_sent += 1;
                c.bytes_sent += u64::from(bytes);
                c.requests += u64::from(request && !replay);
                c.replayed += u64::from(replay);
                if let Some(s) = self.steps.at(name).filter(|_| request && !replay) {
                    s.counts.requests += 1;
                }
            }
            Event::Deflate(d) => c.deflated(d),
            Event::Received { bytes, reply } => {
                c.messages_received += 1;
                c.bytes_received += u64::from(bytes);
                return self.reply(reply);
            }
            Event::AlsoReplied(reply) => return self.reply(reply),
            Event::BackoffStarted => c.backoffs += 1,
            Event::BackoffEnded => c.backoffs_ended += 1,
            Event::TimedOut { n, name } => {
                c.timeouts += u64::from(n);
                if let Some(s) = self.steps.at(name) {
                    s.counts.timeouts += u64::from(n);
                }
            }
            Event::NamedEnded { name, n, lost } => {
                if let Some(s) = self.steps.at(name) {
                    if lost {
                        s.counts.lost += u64::from(n);
                    } else {
                        s.counts.unfinished += u64::from(n);
                    }
                }
            }
            Event::LateSends(n) => c.late_sends += u64::from(n),
            Event::Capped => c.capped += 1,
            Event::WaitedFor { us } => {
                c.waits += 1;
                self.wait_time.record_us(us);
            }
            Event::WaitTimedOut => c.wait_timeouts += 1,
            Event::ReplayUnfinished(n) => {
                c.unfinished += u64::from(n);
                c.unfinished_replay += u64::from(n);
            }
            Event::CaptureFailed(n) => c.capture_failures += u64::from(n),
            Event::CaptureMissing => c.capture_missing += 1,
            Event::Http { name, rtt_us, end } => self.http(name, rtt_us, end),
            Event::Since { name, us } => {
                if let Some(s) = self.steps.at(name) {
                    s.after.record_us(us);
                }
            }
            Event::Counted(id) => {
                let id = id as usize;
                if self.counted.len() <= id {
                    self.counted.resize(id + 1, 0);
                }
                self.counted[id] += 1;
            }
            Event::Ping => c.pings += 1,
            Event::Pong { rtt_us } => {
                c.pongs += 1;
                self.ping_rtt.record_us(rtt_us);
            }
            Event::Chaos { selected, .. } => c.chaos_hits += u64::from(selected),
            Event::ChaosEnded { .. } => {}
        }
        None
    }

    /// A connection opened after `total_us` (TCP, upgrade), replacing one that dropped
    /// `reconnect` (µs since, attempts) ago, on socket `socket`.
    fn connected(
        &mut self,
        total_us: u64,
        (tcp_us, upgrade_us): (u64, u64),
        reconnect: Option<(u64, u32)>,
        socket: u16,
    ) {
        self.counts.connects += 1;
        if let Some(s) = self.sockets.get_mut(usize::from(socket)) {
            s.connects += 1;
        }
        self.connect_time.record_us(total_us);
        self.connect_tcp.record_us(tcp_us);
        self.connect_upgrade.record_us(upgrade_us);
        if let Some((us, attempt)) = reconnect {
            self.counts.reconnects += 1;
            self.reconnect_time.record_us(us);
            self.reconnect_attempts.record_us(u64::from(attempt));
        }
    }

    /// An HTTP step's request ended: counted, timed, and for a named step in its name.
    fn http(&mut self, name: u16, rtt_us: u64, end: HttpEnd) {
        self.counts.http_requests += 1;
        if let Some(error) = end.error() {
            self.counts.http_errors += 1;
            *self.http_errors.entry(error).or_default() += 1;
        }
        if matches!(end, HttpEnd::Ok(_) | HttpEnd::Status(_)) {
            self.http_rtt.record_us(rtt_us);
        }
        if let Some(s) = self.steps.at(name) {
            let c = &mut s.counts;
            c.requests += 1;
            match end {
                HttpEnd::Ok(_) | HttpEnd::Status(_) => {
                    c.answered += 1;
                    c.check_failures += u64::from(matches!(end, HttpEnd::Status(_)));
                    s.rtt.record_us(rtt_us);
                }
                HttpEnd::Failed => c.lost += 1,
                HttpEnd::TimedOut => c.timeouts += 1,
            }
        }
    }

    /// Folds in what a message was to its connection. Returns the rtt of an answer.
    fn reply(&mut self, reply: Reply) -> Option<u64> {
        let c = &mut self.counts;
        match reply {
            Reply::Answered {
                rtt_us,
                corrected_us,
                first_us,
                failed,
                name,
            } => {
                c.answered += 1;
                c.check_failures += u64::from(failed);
                if let Some(s) = self.steps.at(name) {
                    s.counts.answered += 1;
                    s.counts.check_failures += u64::from(failed);
                    s.rtt.record_us(rtt_us);
                }
                self.rtt.record_us(rtt_us);
                if let Some(us) = corrected_us {
                    self.rtt_corrected.record_us(us.get());
                }
                if let Some(us) = first_us {
                    self.rtt_first.record_us(us.get());
                }
                return Some(rtt_us);
            }
            Reply::Part => c.stream_parts += 1,
            Reply::Late { name } => {
                c.late += 1;
                if let Some(s) = self.steps.at(name) {
                    s.counts.late += 1;
                }
            }
            Reply::Duplicate => c.duplicate += 1,
            Reply::Unmatched => c.unmatched += 1,
            Reply::Push {
                gap,
                repeated,
                latency_us,
            } => {
                c.pushes += 1;
                c.push_gaps += u64::from(gap);
                c.push_duplicates += u64::from(repeated);
                if let Some(us) = latency_us {
                    self.push_latency.record_us(us);
                }
            }
        }
        None
    }

    /// The first message each counter with `example = true` counted, by counter name.
    pub fn counter_examples(&self) -> BTreeMap<String, String> {
        self.registry.as_ref().map_or_else(BTreeMap::new, |r| {
            r.examples()
                .into_iter()
                .map(|(name, text)| (name.into(), text.into()))
                .collect()
        })
    }

    /// Every rule counter by name: those read from summaries and those this run counted.
    pub fn counters(&self) -> BTreeMap<String, u64> {
        let mut all = self.counters.clone();
        if let Some(registry) = &self.registry {
            for (name, n) in registry.names().iter().zip(&self.counted) {
                *all.entry(name.to_string()).or_default() += n;
            }
        }
        all
    }
}
