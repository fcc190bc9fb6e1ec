//! The client's heartbeat: a WebSocket ping every so often, on a shared time grid, and the
//! pong it waits for; a pong that does not come in time is a drop. `[[every]]` timers keep
//! their times on the same grid.

use std::time::Duration;

use tokio::time::Instant;

use crate::scenario::{Heartbeat, Timer};

/// Heartbeat pings are sent on a grid of this step (or a twentieth of the interval, when that
/// is shorter), so that one wake-up of the runtime sends the pings of many connections (each
/// wake-up costs far more than a ping). A ping's rtt is timed from when it was sent, so the
/// grid costs no accuracy, only up to one step of delay.
const PING_GRID: Duration = Duration::from_millis(50);

/// When the next ping is due, and the ping waiting for its pong.
pub struct Heart {
    every: Duration,
    timeout: Duration,
    next: Instant,
    /// The number and send time of the ping waiting for its pong.
    waiting: Option<(u64, Instant)>,
    sent: u64,
}

/// What the heartbeat asks for when its time comes.
pub enum Beat {
    Nothing,
    /// Send a ping with this payload.
    Ping([u8; 8]),
    /// The pong did not come in time.
    Missed,
}

impl Heart {
    pub fn new(h: Heartbeat, now: Instant) -> Self {
        Heart {
            every: h.every,
            timeout: h.timeout,
            next: ping_time(now, h.every),
            waiting: None,
            sent: 0,
        }
    }

    /// When the heartbeat next needs the connection's attention.
    pub fn due(&self) -> Instant {
        self.waiting.map_or(self.next, |(_, sent)| sent + self.timeout)
    }

    /// At `now`: a ping to send, a missed pong, or nothing yet.
    pub fn beat(&mut self, now: Instant) -> Beat {
        match self.waiting {
            Some((_, sent)) if sent + self.timeout <= now => Beat::Missed,
            None if self.next <= now => {
                self.sent += 1;
                self.waiting = Some((self.sent, now));
                self.next = ping_time(now, self.every);
                Beat::Ping(self.sent.to_be_bytes())
            }
            _ => Beat::Nothing,
        }
    }

    /// A pong with `payload` came at `now`: its ping's rtt, when it answers the ping waiting.
    pub fn pong(&mut self, payload: &[u8], now: Instant) -> Option<Duration> {
        let (n, sent) = self.waiting?;
        if payload != n.to_be_bytes() {
            return None;
        }
        self.waiting = None;
        Some(now.duration_since(sent))
    }
}

/// The ping (or `[[every]]` timer) due `every` after `now`, rounded up to the ping grid
/// (counted from the first call in this process), so that many connections' timers fire in
/// one wake-up of the runtime.
pub(super) fn ping_time(now: Instant, every: Duration) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let since = (now + every).saturating_duration_since(epoch).as_nanos();
    let grid = PING_GRID.min(every / 20).as_nanos().max(1);
    epoch + Duration::from_nanos((since.div_ceil(grid) * grid) as u64)
}

/// When each timer of a connection next fires.
pub(super) struct Timers(pub(super) Vec<Instant>);

impl Timers {
    pub(super) fn new(timers: &[Timer], now: Instant) -> Self {
        Timers(timers.iter().map(|t| ping_time(now, t.every)).collect())
    }

    /// The earliest time a timer fires.
    pub(super) fn next(&self) -> Option<Instant> {
        self.0.iter().min().copied()
    }
}
