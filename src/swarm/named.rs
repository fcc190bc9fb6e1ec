//! The step names of requests that end without a reply: their names' share of what a drop
//! loses, a client that gives up loses, or the end of the run leaves unfinished.

use super::pending::Kept;
use super::shared::Shared;
use crate::metrics::Event;
use crate::metrics::event::Name;

/// The step names of requests kept for replay, counted.
pub fn tally_kept(shared: &Shared, kept: &[Kept]) -> Vec<(Name, u32)> {
    let mut tally: Vec<(Name, u32)> = Vec::new();
    if shared.plan.step_names.is_empty() {
        return tally;
    }
    for k in kept {
        let name = shared.step(usize::from(k.step)).name();
        if name == 0 {
            continue;
        }
        match tally.iter_mut().find(|(n, _)| *n == name) {
            Some((_, count)) => *count += 1,
            None => tally.push((name, 1)),
        }
    }
    tally
}

/// Tells the collector the step names of requests that ended lost (or unfinished).
pub async fn named_ended(shared: &Shared, tally: Vec<(Name, u32)>, lost: bool) {
    for (name, n) in tally {
        shared.events.send(Event::NamedEnded { name, n, lost }).await;
    }
}
