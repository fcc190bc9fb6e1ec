//! Precise reply delays for the built-in target. tokio's timers have millisecond granularity
//! and round up (a 20 ms sleep ends after 20–22 ms), which would blur the latency the server
//! is asked to add; one OS thread sleeping on a condition variable is accurate to tens of
//! microseconds and hands each reply back to its connection's task when it is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;
use tokio_tungstenite::tungstenite::Message;

struct Entry {
    at: Instant,
    order: u64,
    reply: Message,
    to: UnboundedSender<Message>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

#[derive(Default)]
struct State {
    due: BinaryHeap<Reverse<Entry>>,
    order: u64,
    closed: bool,
}

/// The delay thread's handle; the thread ends when this is dropped.
pub struct DelayLine {
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl DelayLine {
    pub fn start() -> Self {
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("wsstorm-delay".into())
            .spawn(move || run(&worker))
            .expect("cannot start the delay thread");
        Self { shared }
    }

    /// Delivers `reply` on `to` at `at`.
    pub fn send_at(&self, at: Instant, reply: Message, to: UnboundedSender<Message>) {
        let (lock, cv) = &*self.shared;
        let mut state = lock.lock().expect("delay lock");
        state.order += 1;
        let order = state.order;
        let earliest = state.due.peek().is_none_or(|Reverse(e)| at < e.at);
        state.due.push(Reverse(Entry { at, order, reply, to }));
        if earliest {
            cv.notify_one();
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        lock.lock().expect("delay lock").closed = true;
        cv.notify_one();
    }
}

fn run(shared: &(Mutex<State>, Condvar)) {
    let (lock, cv) = shared;
    let mut state = lock.lock().expect("delay lock");
    loop {
        if state.closed {
            return;
        }
        let now = Instant::now();
        match state.due.peek().map(|Reverse(e)| e.at) {
            None => state = cv.wait(state).expect("delay lock"),
            Some(at) if at > now => state = cv.wait_timeout(state, at - now).expect("delay lock").0,
            Some(_) => {
                let Reverse(entry) = state.due.pop().expect("peeked");
                // A closed connection no longer wants its reply.
                let _ = entry.to.send(entry.reply);
            }
        }
    }
}
