//! `[[phases]]`, `duration`, `[pacing]` and `[reconnect]`: how many clients connect over
//! time, for how long, at what rate each starts its loop, and how it comes back after a drop.

use std::time::Duration;

use super::validator::Validator;
use crate::scenario::overrides::Overrides;
use crate::scenario::plan::MAX_CLIENTS;
use crate::scenario::plan::{Jitter, Load, Phase, Reconnect, Strategy};
use crate::scenario::raw::{JitterKind, RawJitter, RawPacing, RawReconnect, RawScenario};
use crate::units::duration;
use crate::units::rate::per_second;

impl Validator<'_> {
    pub(super) fn load(&mut self, raw: &RawScenario) -> Option<Load> {
        if raw.phases.is_empty() {
            self.error(
                raw.name.span(),
                "no load: expected at least one [[phases]] table with `clients = N`",
            );
            return None;
        }
        let mut phases = Vec::new();
        let mut ok = true;
        for p in &raw.phases {
            let p = p.get_ref();
            let clients = *p.clients.get_ref();
            if clients > MAX_CLIENTS {
                self.error(
                    p.clients.span(),
                    format!("phases.clients: expected at most {MAX_CLIENTS} clients per run"),
                );
                ok = false;
            }
            let ramp = self.duration_or(p.ramp.as_ref(), "phases.ramp", Duration::ZERO);
            let hold = self.duration_or(p.hold.as_ref(), "phases.hold", Duration::ZERO);
            match (ramp, hold) {
                (Some(ramp), Some(hold)) => phases.push(Phase { clients, ramp, hold }),
                _ => ok = false,
            }
        }
        let load = Load { phases };
        if ok && load.peak() == 0 {
            // A run of no client measures nothing, and would pass on nothing.
            self.error(
                raw.phases[0].span(),
                "phases: no phase has a client: expected `clients = N` of 1 or more in at least one [[phases]]",
            );
            ok = false;
        }
        // Checked added up: each phase may be long, the timeline may not overflow.
        let length = load.phases.iter().try_fold(Duration::ZERO, |sum, p| {
            sum.checked_add(p.ramp)?.checked_add(p.hold)
        });
        if ok && length.is_none_or(|l| l > duration::MAX) {
            self.error(
                raw.phases[0].span(),
                "phases: their ramps and holds add up to more than 10 years: expected at most that",
            );
            ok = false;
        }
        ok.then_some(load)
    }

    /// The run's length: `--duration`, `duration`, or the phases' total.
    pub(super) fn duration_of(
        &mut self,
        raw: &RawScenario,
        overrides: &Overrides,
        load: Option<&Load>,
    ) -> Option<Duration> {
        let duration = match (overrides.duration, &raw.duration) {
            (Some(d), _) => Some(d),
            (None, Some(text)) => self.positive_duration(text, "duration"),
            // Without a valid load there is nothing to measure the length of (already reported).
            (None, None) => {
                let load = load?;
                let length = Some(load.length()).filter(|d| !d.is_zero());
                if length.is_none() {
                    self.error(
                        raw.name.span(),
                        "no duration: expected `duration = \"60s\"` or phases whose ramp and hold add up to more than zero",
                    );
                }
                length
            }
        }?;
        self.start_in_time(overrides, duration);
        Some(duration)
    }

    /// `--start-at` in the past: a start already more than the run's length ago would skip the
    /// whole timeline and judge a few stray requests. (A later start keeps the anchor and says
    /// so when it runs.)
    fn start_in_time(&mut self, overrides: &Overrides, duration: Duration) {
        let Some(at) = overrides.start_at else { return };
        let Ok(ago) = (chrono::Utc::now() - at).to_std() else {
            return;
        };
        if ago > duration {
            self.flag_error(
                "--start-at",
                format!(
                    "--start-at {} was {} ago, more than the run's {}: nothing of the timeline would be left; expected a time less than that ago, or one to come (+30s)",
                    at.to_rfc3339(),
                    duration::show(Duration::from_secs(ago.as_secs())),
                    duration::show(duration)
                ),
                &at.to_rfc3339(),
            );
        }
    }

    /// How often each client starts its step loop under `[pacing]`.
    pub(super) fn pacing(
        &mut self,
        raw: &RawPacing,
        scenario: &RawScenario,
        load: Option<&Load>,
    ) -> Option<Duration> {
        const EXPECTED: &str = "expected a rate such as \"5/s\" or \"300/m\"";
        let (text, total) = match (&raw.rate, &raw.total_rate) {
            (Some(r), None) => (r, false),
            (None, Some(r)) => (r, true),
            _ => {
                let span = raw
                    .rate
                    .as_ref()
                    .or(raw.total_rate.as_ref())
                    .map_or(scenario.name.span(), |t| t.span());
                self.error(
                    span,
                    "pacing: expected exactly one of `rate` (per client) or `total_rate` (over all clients)",
                );
                return None;
            }
        };
        let key = if total { "pacing.total_rate" } else { "pacing.rate" };
        let Some(per_second) = per_second(text.get_ref()) else {
            self.error(text.span(), format!("{key}: {:?}: {EXPECTED}", text.get_ref()));
            return None;
        };
        if scenario.steps.is_empty() {
            self.error(text.span(), format!("{key}: there is no [[steps]] loop to pace"));
            return None;
        }
        // A total rate is shared by the scenario's peak clients (the whole count, so that every
        // segment's clients keep the same schedule and the segments add up to the total).
        let clients = if total { load?.peak().max(1) as f64 } else { 1.0 };
        let interval = Duration::try_from_secs_f64(clients / per_second).unwrap_or(Duration::MAX);
        if interval < Duration::from_micros(100) || interval > duration::MAX {
            self.error(
                text.span(),
                format!(
                    "{key}: {:?} gives each client a loop every {interval:?}: expected 100 µs to 10 years",
                    text.get_ref()
                ),
            );
            return None;
        }
        Some(interval)
    }

    pub(super) fn reconnect(&mut self, raw: Option<&RawReconnect>) -> Option<Reconnect> {
        let mut r = Reconnect::default();
        let Some(raw) = raw else { return Some(r) };
        let mut ok = true;
        if let Some(strategy) = raw.strategy {
            r.strategy = strategy;
        }
        let initial = self.positive_or(raw.initial.as_ref(), "reconnect.initial", r.initial);
        let max = self.positive_or(raw.max.as_ref(), "reconnect.max", r.max);
        ok &= initial.is_some() && max.is_some();
        r.initial = initial.unwrap_or(r.initial);
        r.max = max.unwrap_or(r.max);
        if r.max < r.initial {
            let span = raw
                .max
                .as_ref()
                .or(raw.initial.as_ref())
                .map(|t| t.span())
                .unwrap_or(0..0);
            self.error(span, "reconnect: expected `max` at least as long as `initial`");
            ok = false;
        }
        if let Some(m) = &raw.multiplier {
            if !(1.0..=100.0).contains(m.get_ref()) {
                self.error(
                    m.span(),
                    "reconnect.multiplier: expected a number between 1.0 and 100.0",
                );
                ok = false;
            }
            r.multiplier = *m.get_ref();
        }
        if let Some(j) = &raw.jitter {
            if r.strategy == Strategy::Decorrelated {
                self.error(j.span(), "reconnect.jitter: decorrelated backoff has its jitter built in: expected no `jitter` with strategy = \"decorrelated\"");
                ok = false;
            }
            r.jitter = match *j.get_ref() {
                RawJitter::Kind(JitterKind::None) => Jitter::None,
                RawJitter::Kind(JitterKind::Full) => Jitter::Full,
                RawJitter::Kind(JitterKind::Equal) => Jitter::Equal,
                RawJitter::Added(d) => Jitter::Add(d),
            };
        }
        if let Some(n) = &raw.max_attempts {
            if *n.get_ref() == 0 || *n.get_ref() > u64::from(u32::MAX) {
                self.error(n.span(), "reconnect.max_attempts: expected 1 or more");
                ok = false;
            }
            r.max_attempts = Some(*n.get_ref() as u32);
        }
        match self.reconnect_rules(&raw.on) {
            Some(rules) => r.rules = rules,
            None => ok = false,
        }
        r.replay_in_flight = raw.replay_in_flight.unwrap_or(false);
        ok.then_some(r)
    }
}
