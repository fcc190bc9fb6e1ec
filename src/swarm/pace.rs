//! The open-rate schedule of a client's step loop (`[pacing]`): when each pass is due, how
//! late the pass under way began (its requests are also timed from when they were due), and
//! which passes count as late sends. It lives with the client, across its connections.

use std::time::Duration;

use tokio::time::Instant;

/// The open-rate schedule of a client's step loop. It lives with the client, so it runs on
/// across reconnects and close steps: it starts with the first pass (after the setup steps).
pub struct Pace {
    interval: Duration,
    /// When the next pass is due (None before the first).
    next: Option<Instant>,
    /// How late the pass under way began (None between passes): its requests are timed from
    /// their send minus this, so only the pass's own lateness is added, not earlier steps.
    lateness: Option<Duration>,
    /// The next pass was waited for (so it is not late, whatever the timer did).
    slept: bool,
    /// No pass has begun on this connection yet.
    fresh: bool,
}

impl Pace {
    /// At the start of a pass, `now`: how many passes to count late, and whether to wait
    /// for `next` first. Passes that fell due while there was no connection (a drop, its
    /// backoff) could not be sent: counted late and skipped, not burst. A pass that was busy
    /// at its due time is late too; a timer's own lateness is not the client's.
    pub fn begin(&mut self, now: Instant) -> (u32, bool) {
        let mut next = *self.next.get_or_insert(now);
        let mut late = 0;
        if self.fresh {
            self.fresh = false;
            late = (now.saturating_duration_since(next).as_nanos() / self.interval.as_nanos()) as u32;
            next += self.interval * late;
        }
        if now < next {
            self.next = Some(next);
            self.slept = true;
            return (late, true);
        }
        if !self.slept && now > next + LATE_GRACE {
            late += 1;
        }
        self.slept = false;
        self.lateness = Some(now - next);
        self.next = Some(next + self.interval);
        (late, false)
    }

    /// A new connection: its first pass may find passes that fell due while there was none.
    pub fn reconnected(&mut self) {
        self.fresh = true;
        self.lateness = None;
    }

    /// The pass under way ended (the loop wrapped around).
    pub fn end_pass(&mut self) {
        self.lateness = None;
    }

    /// Whether a pass is under way.
    pub fn in_pass(&self) -> bool {
        self.lateness.is_some()
    }

    /// When the pass under way's request sent at `sent` was due.
    pub fn due(&self, sent: Instant) -> Option<Instant> {
        self.lateness.map(|late| sent - late)
    }

    /// When the next pass is due, once one has begun.
    pub fn next(&self) -> Option<Instant> {
        self.next
    }

    pub fn new(interval: Duration) -> Box<Pace> {
        Box::new(Pace {
            interval,
            next: None,
            lateness: None,
            slept: false,
            fresh: true,
        })
    }
}

/// A pass that was busy at its due time and begins more than this after it is a late send.
const LATE_GRACE: Duration = Duration::from_millis(2);
