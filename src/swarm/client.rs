//! One simulated client: connect, drive the connection, and on a drop connect again, until
//! the run or a ramp-down stops it. Its state between connections is a few words.

use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::connect;
use super::connection::{self, End};
use crate::metrics::Event;

/// Wait before connecting again after a failed attempt or a drop. The lifecycle issue
/// replaces this with configurable backoff and jitter.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// What a client keeps across its connections.
pub struct ClientState {
    pub index: u64,
    /// Sequence number of the last message sent; ids are `index-seq`, unique per run.
    pub next_seq: u64,
    pub rng: SmallRng,
}

/// Runs client `index` until `stop` (its own token: the run's stop or its ramp-down).
pub async fn run(shared: std::sync::Arc<Shared>, index: u64, seq_base: u64, stop: CancellationToken) {
    let mut state = ClientState {
        index,
        next_seq: seq_base,
        rng: SmallRng::seed_from_u64(shared.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    };
    let events = &shared.events;
    while !stop.is_cancelled() {
        events.send(Event::Connecting).await;
        let attempt = tokio::select! {
            biased;
            _ = shared.halt.cancelled() => {
                events.send(Event::ConnectAbandoned).await;
                return;
            }
            r = connect::open(&shared, &mut state) => r,
        };
        match attempt {
            Ok((mut ws, connect_us)) => {
                events.send(Event::Connected { connect_us }).await;
                match connection::drive(&mut ws, &shared, &mut state, &stop).await {
                    End::Closed { unfinished } => {
                        events.send(Event::Closed { unfinished }).await;
                        return;
                    }
                    End::Dropped { cause, lost } => events.send(Event::Dropped { cause, lost }).await,
                }
            }
            Err(kind) => events.send(Event::ConnectFailed(kind)).await,
        }
        tokio::select! {
            _ = tokio::time::sleep(RECONNECT_DELAY) => {}
            _ = stop.cancelled() => return,
        }
    }
}
