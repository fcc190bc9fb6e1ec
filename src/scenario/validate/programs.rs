//! What clients run: the top-level setup and steps, the timers, the flows and the sockets,
//! checked together (step names, HTTP setup steps first, captures before their use) and the
//! thresholds that may name their parts.

use super::thresholds::Named;
use super::validator::Validator;
use crate::scenario::Overrides;
use crate::scenario::plan::{Connect, Flow, Rule, Socket, Step, Timer};
use crate::scenario::raw::RawScenario;
use crate::scenario::threshold::Threshold;
use crate::scenario::tls::Tls;

/// The plan's programs.
pub(super) struct Programs {
    pub setup: Vec<Step>,
    pub steps: Vec<Step>,
    pub timers: Vec<Timer>,
    pub flows: Vec<Flow>,
    pub flow_slots: Vec<u16>,
    pub sockets: Vec<Socket>,
}

impl Validator<'_> {
    /// Every program, each checked on its own.
    pub(super) fn programs(&mut self, raw: &RawScenario, paced: bool) -> Option<Programs> {
        let correlated = raw.correlation.is_some();
        let steps = self.steps(raw, correlated, paced);
        let setup = self.step_list(&raw.setup, correlated, "setup").map(|(s, _)| s);
        self.http_first(&raw.setup, "setup");
        for f in &raw.flows {
            self.http_first(&f.get_ref().setup, "flows.setup");
        }
        for s in &raw.sockets {
            self.http_first(&s.get_ref().setup, "sockets.setup");
        }
        let timers = self.timers(raw, correlated);
        let flows = self.flows(raw, correlated, paced);
        let sockets = self.sockets(raw, correlated, paced);
        let (flows, flow_slots) = flows?;
        Some(Programs {
            setup: setup?,
            steps: steps?,
            timers: timers?,
            flows,
            flow_slots,
            sockets: sockets?,
        })
    }

    /// What needs the programs whole: captures before their use, and the TLS of https HTTP
    /// steps (returned).
    pub(super) fn check_programs(
        &mut self,
        raw: &RawScenario,
        p: &Programs,
        connect: &Connect,
        target_tls: Option<&Tls>,
        overrides: &Overrides,
    ) -> Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>> {
        let vars = std::mem::take(&mut self.vars);
        self.var_order(
            raw,
            (&p.setup, &p.steps, &p.flows, &p.sockets),
            (&p.timers, connect),
            &vars,
        );
        self.vars = vars;
        let every_step: Vec<&Step> = p
            .setup
            .iter()
            .chain(&p.steps)
            .chain(p.flows.iter().flat_map(|f| f.setup.iter().chain(&f.steps)))
            .chain(p.sockets.iter().flat_map(|s| s.setup.iter().chain(&s.steps)))
            .collect();
        self.http_tls(&every_step, target_tls, overrides.insecure)
    }

    /// The thresholds, which may name the rules' counters, the named steps, flows and sockets.
    pub(super) fn judged(
        &mut self,
        raw: &RawScenario,
        rules: &[Rule],
        counters: &[String],
    ) -> Vec<Threshold> {
        let steps = std::mem::take(&mut self.step_names);
        let flow_names: Vec<String> = raw
            .flows
            .iter()
            .map(|f| f.get_ref().name.get_ref().clone())
            .collect();
        let socket_names: Vec<String> = raw
            .sockets
            .iter()
            .map(|s| s.get_ref().name.get_ref().clone())
            .collect();
        let named = Named {
            rules,
            counters,
            steps: &steps,
            flows: &flow_names,
            sockets: &socket_names,
        };
        let t = self.thresholds(raw, &named);
        self.step_names = steps;
        t
    }
}
