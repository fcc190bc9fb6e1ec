//! `[[flows]]`: kinds of client, each with its own setup and steps, taken by weight with exact
//! shares. A flow's requests are named after it ("buyer", or "buyer/Checkout" for a named step),
//! so its counts and rtt are its own.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;

use super::steps::is_label;
use super::validator::Validator;
use crate::scenario::plan::Flow;
use crate::scenario::raw::RawScenario;

/// The most flows, and the most their weights add up to (a slot each per client cycle).
const MAX_FLOWS: usize = 64;
const MAX_WEIGHTS: u64 = 10_000;

impl Validator<'_> {
    /// The flows and the slots that give each client its flow (empty without flows).
    pub(super) fn flows(
        &mut self,
        raw: &RawScenario,
        has_correlation: bool,
        paced: bool,
    ) -> Option<(Vec<Flow>, Vec<u16>)> {
        if raw.flows.is_empty() {
            return Some((Vec::new(), Vec::new()));
        }
        let mut ok = true;
        if let Some(top) = raw.setup.first().or(raw.steps.first()) {
            self.error(
                top.span(),
                "with [[flows]], each flow has its setup and steps: expected no top-level [[setup]] or [[steps]] (move them into a flow)",
            );
            ok = false;
        }
        if raw.flows.len() > MAX_FLOWS {
            self.error(
                raw.flows[MAX_FLOWS].span(),
                format!("expected at most {MAX_FLOWS} [[flows]]"),
            );
            return None;
        }
        let mut flows: Vec<Flow> = Vec::new();
        let mut total = 0u64;
        for f in &raw.flows {
            let raw_flow = f.get_ref();
            let name = raw_flow.name.get_ref().clone();
            if !is_label(&name) {
                self.error(
                    raw_flow.name.span(),
                    format!("flows.name: {name:?}: expected 1 to 64 letters, digits, `_`, `-` or `.`"),
                );
                ok = false;
                continue;
            }
            if flows.iter().any(|other| other.name == name) {
                self.error(
                    raw_flow.name.span(),
                    format!("flows.name: {name:?} is taken by another flow"),
                );
                ok = false;
            }
            let weight = match &raw_flow.weight {
                None => 1,
                Some(w) if (1..=MAX_WEIGHTS).contains(w.get_ref()) => *w.get_ref(),
                Some(w) => {
                    self.error(w.span(), format!("flows.weight: expected 1 to {MAX_WEIGHTS}"));
                    ok = false;
                    continue;
                }
            };
            total += weight;
            self.flow = Some(name.clone());
            let setup = self.step_list(&raw_flow.setup, has_correlation, "flows.setup");
            let steps = self.loop_steps(&raw_flow.steps, has_correlation, paced, "flows.steps", f.span());
            self.flow = None;
            match (setup, steps) {
                (Some((setup, _)), Some(steps)) => flows.push(Flow {
                    name,
                    weight: weight as u32,
                    setup,
                    steps,
                }),
                _ => ok = false,
            }
        }
        if total > MAX_WEIGHTS {
            self.error(
                raw.flows[0].span(),
                format!("flows: the weights add up to {total}: expected at most {MAX_WEIGHTS}"),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        let mut slots: Vec<u16> = flows
            .iter()
            .enumerate()
            .flat_map(|(i, f)| std::iter::repeat_n(i as u16, f.weight as usize))
            .collect();
        slots.shuffle(&mut SmallRng::seed_from_u64(raw.seed.unwrap_or(1) ^ 0xF10A_5EED));
        Some((flows, slots))
    }
}
