//! Precise delays, for the built-in target's reply latency and the proxy's latency fault.
//! tokio's timers have millisecond granularity and round up (a 20 ms sleep ends after 20–22
//! ms), which would blur the latency asked for; one OS thread sleeping on a condition variable
//! is accurate to tens of microseconds and hands each item back to its task when it is due.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

struct Entry<T> {
    at: Instant,
    order: u64,
    item: T,
    to: UnboundedSender<T>,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(other.at, other.order))
    }
}

struct State<T> {
    due: BinaryHeap<Reverse<Entry<T>>>,
    order: u64,
    closed: bool,
}

/// The delay thread's handle; the thread ends when this is dropped.
pub struct DelayLine<T> {
    shared: Arc<(Mutex<State<T>>, Condvar)>,
}

impl<T: Send + 'static> DelayLine<T> {
    pub fn start() -> Self {
        let state = State {
            due: BinaryHeap::new(),
            order: 0,
            closed: false,
        };
        let shared = Arc::new((Mutex::new(state), Condvar::new()));
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("wsstorm-delay".into())
            .spawn(move || run(&worker))
            .expect("cannot start the delay thread");
        Self { shared }
    }

    /// Delivers `item` on `to` at `at`.
    pub fn send_at(&self, at: Instant, item: T, to: UnboundedSender<T>) {
        let (lock, cv) = &*self.shared;
        let mut state = lock.lock().expect("delay lock");
        state.order += 1;
        let order = state.order;
        let earliest = state.due.peek().is_none_or(|Reverse(e)| at < e.at);
        state.due.push(Reverse(Entry { at, order, item, to }));
        if earliest {
            cv.notify_one();
        }
    }
}

impl<T> Drop for DelayLine<T> {
    fn drop(&mut self) {
        let (lock, cv) = &*self.shared;
        lock.lock().expect("delay lock").closed = true;
        cv.notify_one();
    }
}

fn run<T>(shared: &(Mutex<State<T>>, Condvar)) {
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
                // A closed connection no longer wants it.
                let _ = entry.to.send(entry.item);
            }
        }
    }
}
