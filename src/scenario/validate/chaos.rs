//! Validation of [[chaos]] entries: when each fires, and what it does — clients drop
//! (`drop`), a fault in the built-in proxy (`network`), or a command (`exec`).

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::validator::Validator;
use crate::scenario::plan::{
    Amount, Chaos, ChaosAction, ChaosHow, ChaosWhen, Command, Exec, Fault, RecoveryRule, Toxic,
};
use crate::scenario::raw::{
    RawAmount, RawChaos, RawCommand, RawHow, RawNetwork, RawNumberOrText, RawRecovery,
};
use crate::units::close_code;
use crate::units::share::share;
use crate::units::size;

/// Time limit of an `exec` command without `timeout`.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

const KINDS_EXPECTED: &str = "expected exactly one of `drop = \"50%\"` (clients drop their connections), \
     `network = \"latency\"` (a fault in the built-in proxy) or `exec = \"command\"` (run a command)";

impl Validator<'_> {
    pub(super) fn chaos(&mut self, list: &[Spanned<RawChaos>]) -> Option<Vec<Chaos>> {
        let mut out = Vec::new();
        let mut ok = true;
        for c in list {
            let span = c.span();
            let c = c.get_ref();
            let when = self.chaos_when(c, &span);
            let action = match (&c.drop, &c.network, &c.exec) {
                (Some(_), None, None) => self.drop_action(c),
                (None, Some(_), None) => self.network_action(c),
                (None, None, Some(_)) => self.exec_action(c),
                _ => {
                    self.error(span.clone(), format!("a [[chaos]] entry: {KINDS_EXPECTED}"));
                    None
                }
            };
            match (when, action) {
                (Some(when), Some(action)) => out.push(Chaos { when, action }),
                _ => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// `[recovery]`: what "back" means for rtt after an action.
    pub(super) fn recovery(&mut self, raw: Option<&RawRecovery>) -> Option<RecoveryRule> {
        let mut rule = RecoveryRule::default();
        let Some(raw) = raw else { return Some(rule) };
        let mut ok = true;
        if let Some(f) = &raw.rtt_factor {
            if !(1.0..=100.0).contains(f.get_ref()) {
                self.error(
                    f.span(),
                    "recovery.rtt_factor: expected a number from 1.0 to 100.0",
                );
                ok = false;
            }
            rule.rtt_factor = *f.get_ref();
        }
        if let Some(m) = &raw.rtt_margin {
            match self.duration(m, "recovery.rtt_margin") {
                Some(d) => rule.rtt_margin = d,
                None => ok = false,
            }
        }
        ok.then_some(rule)
    }

    fn chaos_when(&mut self, c: &RawChaos, span: &Range<usize>) -> Option<ChaosWhen> {
        match (&c.at, &c.every) {
            (Some(at), None) if c.from.is_none() && c.until.is_none() => {
                self.duration(at, "chaos.at").map(ChaosWhen::At)
            }
            (None, Some(every)) => {
                let every = self.positive_duration(every, "chaos.every");
                let from = c
                    .from
                    .as_ref()
                    .map_or(Some(Duration::ZERO), |t| self.duration(t, "chaos.from"));
                let until = match &c.until {
                    None => Some(None),
                    Some(t) => self.duration(t, "chaos.until").map(Some),
                };
                Some(ChaosWhen::Every {
                    every: every?,
                    from: from?,
                    until: until?,
                })
            }
            _ => {
                self.error(
                    span.clone(),
                    "a [[chaos]] entry: expected either `at = \"30s\"` or `every = \"10s\"` (with optional `from` and `until`)",
                );
                None
            }
        }
    }

    /// Reports every key present that `kind` does not take. True when there was none.
    fn only_keys(&mut self, c: &RawChaos, allowed: &[&str], kind: &str) -> bool {
        let mut ok = true;
        for (key, span) in keys(c) {
            if !allowed.contains(&key) {
                let expected = if allowed.is_empty() {
                    "no other keys".to_string()
                } else {
                    allowed
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                self.error(
                    span,
                    format!("chaos.{key} does not apply to {kind}: expected {expected} here"),
                );
                ok = false;
            }
        }
        ok
    }

    fn drop_action(&mut self, c: &RawChaos) -> Option<ChaosAction> {
        let keys_ok = self.only_keys(c, &["how", "code"], "a `drop`");
        let a = c.drop.as_ref().expect("a drop entry");
        let amount = match a.get_ref() {
            RawAmount::Count(n) => Some(Amount::Count(*n)),
            RawAmount::Text(t) => {
                match t
                    .trim()
                    .strip_suffix('%')
                    .and_then(|n| n.trim().parse::<f64>().ok())
                {
                    Some(p) if (0.0..=100.0).contains(&p) => Some(Amount::Fraction(p / 100.0)),
                    _ => {
                        self.error(
                        a.span(),
                        format!("chaos.drop: {t:?}: expected a percentage such as \"50%\" or a count such as 100"),
                    );
                        None
                    }
                }
            }
        };
        let code = match &c.code {
            Some(code) if !close_code::sendable(*code.get_ref()) => {
                self.error(code.span(), format!("chaos.code: {}", close_code::EXPECTED));
                None
            }
            Some(code) => Some(*code.get_ref() as u16),
            None => Some(1000),
        };
        let how = match c.how.as_ref().map(|h| *h.get_ref()) {
            None | Some(RawHow::Reset) => Some(ChaosHow::Reset),
            Some(RawHow::Close) => code.map(ChaosHow::Close),
            Some(RawHow::Silent) => Some(ChaosHow::Silent),
            Some(RawHow::NoPong) => Some(ChaosHow::NoPong),
        };
        let mut ok = keys_ok;
        if let Some(code) = &c.code
            && !matches!(how, Some(ChaosHow::Close(_)))
        {
            self.error(
                code.span(),
                "chaos.code only applies to how = \"close\": expected no `code` here",
            );
            ok = false;
        }
        let lasts = match &c.for_ {
            None => Some(None),
            Some(t) if matches!(how, Some(ChaosHow::Silent | ChaosHow::NoPong)) => {
                self.positive_duration(t, "chaos.for").map(Some)
            }
            Some(t) => {
                self.error(
                    t.span(),
                    "chaos.for only applies to how = \"silent\" or \"no_pong\": expected no `for` here",
                );
                None
            }
        };
        let (amount, how, lasts) = (amount?, how?, lasts?);
        ok.then_some(ChaosAction::Drop { amount, how, lasts })
    }

    fn network_action(&mut self, c: &RawChaos) -> Option<ChaosAction> {
        let name = c.network.as_ref().expect("a network entry");
        let kind = format!("network = {:?}", name.get_ref().name());
        let (allowed, toxic): (&[&str], _) = match *name.get_ref() {
            RawNetwork::Latency => (&["latency", "jitter"], self.latency(c, name, &kind)),
            RawNetwork::Bandwidth => {
                let rate = self.required(c.rate.as_ref(), name, "rate = \"100KiB/s\"", &kind);
                let rate = rate.and_then(|rate| self.parsed(rate, "chaos.rate", size::byte_rate));
                (
                    &["rate"],
                    rate.map(|bytes_per_s| Toxic::Bandwidth { bytes_per_s }),
                )
            }
            RawNetwork::Blackhole => (&[], Some(Toxic::Blackhole)),
            RawNetwork::Refuse => (&[], Some(Toxic::Refuse)),
            RawNetwork::Reset => {
                if let Some(t) = &c.for_ {
                    self.error(
                        t.span(),
                        "chaos.for does not apply to network = \"reset\" (it acts once): expected no `for` here",
                    );
                }
                (&[], c.for_.is_none().then_some(Toxic::Reset))
            }
            RawNetwork::SlowClose => {
                let delay = self.required(c.delay.as_ref(), name, "delay = \"2s\"", &kind);
                let delay = delay.and_then(|d| self.positive_duration(d, "chaos.delay"));
                (&["delay"], delay.map(|delay| Toxic::SlowClose { delay }))
            }
            RawNetwork::Slicer => (
                &["average_size", "size_variation", "delay"],
                self.slicer(c, name, &kind),
            ),
            RawNetwork::LimitData => {
                let bytes = self.required(c.bytes.as_ref(), name, "bytes = \"64KiB\"", &kind);
                (&["bytes"], bytes.and_then(|b| self.limit_data(b)))
            }
        };
        // Blackhole, refuse and reset act on whole connections: no direction.
        let directed = !matches!(
            name.get_ref(),
            RawNetwork::Blackhole | RawNetwork::Refuse | RawNetwork::Reset
        );
        let common: &[&str] = if directed {
            &["direction", "toxicity"]
        } else {
            &["toxicity"]
        };
        let keys_ok = self.only_keys(c, &[common, allowed].concat(), &kind);
        let mut fault = Fault::new(toxic?);
        if let Some(d) = &c.direction {
            fault.direction = *d.get_ref();
        }
        if let Some(t) = &c.toxicity {
            fault.toxicity = self.toxicity(t)?;
        }
        let lasts = match &c.for_ {
            Some(t) if fault.toxic != Toxic::Reset => Some(self.positive_duration(t, "chaos.for")?),
            _ => None,
        };
        keys_ok.then_some(ChaosAction::Network { fault, lasts })
    }

    fn latency(&mut self, c: &RawChaos, name: &Spanned<RawNetwork>, kind: &str) -> Option<Toxic> {
        let add = self.required(c.latency.as_ref(), name, "latency = \"50ms\"", kind)?;
        let add = self.duration(add, "chaos.latency");
        let jitter = self.duration_or(c.jitter.as_ref(), "chaos.jitter", Duration::ZERO);
        Some(Toxic::Latency {
            add: add?,
            jitter: jitter?,
        })
    }

    fn slicer(&mut self, c: &RawChaos, name: &Spanned<RawNetwork>, kind: &str) -> Option<Toxic> {
        let average = self.required(c.average_size.as_ref(), name, "average_size = 64", kind)?;
        let variation = c.size_variation.as_ref().map_or(0, |v| *v.get_ref());
        if *average.get_ref() == 0 || *average.get_ref() > 1 << 30 || variation >= *average.get_ref() {
            self.error(
                average.span(),
                "chaos.average_size: expected a size above zero (at most 1 GiB) and above size_variation",
            );
            return None;
        }
        let delay = self.duration_or(c.delay.as_ref(), "chaos.delay", Duration::ZERO)?;
        Some(Toxic::Slicer {
            average: *average.get_ref() as usize,
            variation: variation as usize,
            delay,
        })
    }

    fn limit_data(&mut self, bytes: &Spanned<RawNumberOrText>) -> Option<Toxic> {
        let parsed = match bytes.get_ref() {
            RawNumberOrText::Number(n) if *n >= 1.0 && n.fract() == 0.0 => Ok(*n as u64),
            RawNumberOrText::Number(n) => Err(format!("{n}: {}", size::SIZE_EXPECTED)),
            RawNumberOrText::Text(t) => size::size(t),
        }
        .and_then(|n| match n {
            0 => Err(format!("0 bytes: {}", size::SIZE_EXPECTED)),
            n => Ok(n),
        });
        match parsed {
            Ok(bytes) => Some(Toxic::LimitData { bytes }),
            Err(e) => {
                self.error(bytes.span(), format!("chaos.bytes: {e}"));
                None
            }
        }
    }

    fn toxicity(&mut self, t: &Spanned<RawNumberOrText>) -> Option<f64> {
        let value = match t.get_ref() {
            RawNumberOrText::Number(n) if (0.0..=1.0).contains(n) => Some(*n),
            RawNumberOrText::Number(_) => None,
            RawNumberOrText::Text(text) => share(text),
        };
        if value.is_none() {
            self.error(
                t.span(),
                "chaos.toxicity: expected the share of connections hit, such as \"50%\" or 0.5",
            );
        }
        value
    }

    fn exec_action(&mut self, c: &RawChaos) -> Option<ChaosAction> {
        let mut ok = self.only_keys(c, &["shell", "timeout"], "an `exec`");
        if let Some(t) = &c.for_ {
            self.error(
                t.span(),
                "chaos.for does not apply to `exec`: expected `timeout = \"30s\"` for its time limit",
            );
            ok = false;
        }
        let exec = c.exec.as_ref().expect("an exec entry");
        let shell = c.shell.as_ref().is_some_and(|s| *s.get_ref());
        let command = match (exec.get_ref(), shell) {
            (RawCommand::Line(line), true) if !line.trim().is_empty() => Some(Command::Shell(line.clone())),
            (RawCommand::Line(line), false) => match shlex::split(line) {
                Some(argv) if !argv.is_empty() => Some(Command::Direct(argv)),
                _ => None,
            },
            (RawCommand::Argv(argv), false) if argv.first().is_some_and(|p| !p.is_empty()) => {
                Some(Command::Direct(argv.clone()))
            }
            _ => None,
        };
        if command.is_none() {
            let expected = if shell {
                "with shell = true, expected one script as a string, such as \"systemctl restart app && sleep 1\""
            } else {
                "expected a command such as \"./restart.sh --fast\" or [\"./restart.sh\", \"--fast\"] (quotes closed, not empty)"
            };
            self.error(exec.span(), format!("chaos.exec: {expected}"));
        }
        let timeout = match &c.timeout {
            Some(t) => self.positive_duration(t, "chaos.timeout"),
            None => Some(DEFAULT_EXEC_TIMEOUT),
        };
        let exec = Exec {
            command: command?,
            timeout: timeout?,
        };
        ok.then_some(ChaosAction::Exec(exec))
    }

    /// A key `kind` needs; reports its absence at the `network` value.
    fn required<'r, T>(
        &mut self,
        value: Option<&'r T>,
        name: &Spanned<RawNetwork>,
        example: &str,
        kind: &str,
    ) -> Option<&'r T> {
        if value.is_none() {
            self.error(name.span(), format!("{kind} needs `{example}`"));
        }
        value
    }
}

/// The kind-specific keys present in an entry, with their spans.
fn keys(c: &RawChaos) -> Vec<(&'static str, Range<usize>)> {
    let mut out = Vec::new();
    macro_rules! present {
        ($($field:ident),*) => {
            $(if let Some(v) = &c.$field {
                out.push((stringify!($field), v.span()));
            })*
        };
    }
    present!(
        how,
        code,
        direction,
        toxicity,
        latency,
        jitter,
        rate,
        delay,
        average_size,
        size_variation,
        bytes,
        shell,
        timeout
    );
    out
}
