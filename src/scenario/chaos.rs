//! Validation of [[chaos]] entries: when each fires, and what it does — clients drop
//! (`drop`), a fault in the built-in proxy (`network`), or a command (`exec`).

use std::ops::Range;
use std::time::Duration;

use super::raw::{RawAmount, RawChaos, RawCommand, RawNumberOrText};
use super::{Amount, Chaos, ChaosAction, ChaosHow, ChaosWhen, Command, Exec};
use super::{CLOSE_CODE_EXPECTED, Validator, sendable_close_code, share, units};
use crate::proxy::{Direction, Fault, Toxic};

/// Time limit of an `exec` command without `timeout`.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

const KINDS_EXPECTED: &str = "expected exactly one of `drop = \"50%\"` (clients drop their connections), \
     `network = \"latency\"` (a fault in the built-in proxy) or `exec = \"command\"` (run a command)";
const NETWORK_EXPECTED: &str = "expected \"latency\", \"bandwidth\", \"blackhole\", \"refuse\", \"reset\", \
     \"slow_close\", \"slicer\" or \"limit_data\"";

impl Validator<'_> {
    pub(super) fn chaos(&mut self, list: &[toml::Spanned<RawChaos>]) -> Option<Vec<Chaos>> {
        let mut out = Vec::new();
        let mut ok = true;
        for c in list {
            let span = c.span();
            let c = c.get_ref();
            let when = self.chaos_when(c, &span);
            let action = match (&c.drop, &c.network, &c.exec) {
                (Some(_), None, None) => self.drop_action(c, &span),
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

    fn drop_action(&mut self, c: &RawChaos, span: &Range<usize>) -> Option<ChaosAction> {
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
            Some(code) if !sendable_close_code(*code.get_ref()) => {
                self.error(code.span(), format!("chaos.code: {CLOSE_CODE_EXPECTED}"));
                None
            }
            Some(code) => Some(*code.get_ref() as u16),
            None => Some(1000),
        };
        let how = match c.how.as_ref().map(|h| h.get_ref().as_str()) {
            None | Some("reset") => Some(ChaosHow::Reset),
            Some("close") => code.map(ChaosHow::Close),
            Some("silent") => Some(ChaosHow::Silent),
            Some("no_pong") => Some(ChaosHow::NoPong),
            Some(other) => {
                let span = c.how.as_ref().map_or(span.clone(), |h| h.span());
                self.error(
                    span,
                    format!("chaos.how: unknown {other:?}: expected \"reset\", \"close\", \"silent\" or \"no_pong\""),
                );
                None
            }
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
        let kind = format!("network = {:?}", name.get_ref());
        let common = ["direction", "toxicity"];
        let (toxic, keys_ok) = match name.get_ref().as_str() {
            "latency" => {
                let ok = self.only_keys(c, &[&common[..], &["latency", "jitter"]].concat(), &kind);
                let add = self.required(c.latency.as_ref(), name, "latency = \"50ms\"", &kind)?;
                let add = self.duration(add, "chaos.latency");
                let jitter = match &c.jitter {
                    Some(j) => self.duration(j, "chaos.jitter"),
                    None => Some(Duration::ZERO),
                };
                (
                    Toxic::Latency {
                        add: add?,
                        jitter: jitter?,
                    },
                    ok,
                )
            }
            "bandwidth" => {
                let ok = self.only_keys(c, &[&common[..], &["rate"]].concat(), &kind);
                let rate = self.required(c.rate.as_ref(), name, "rate = \"100KiB/s\"", &kind)?;
                let bytes_per_s = self.parsed(rate, "chaos.rate", units::rate)?;
                (Toxic::Bandwidth { bytes_per_s }, ok)
            }
            "blackhole" => (Toxic::Blackhole, self.only_keys(c, &["toxicity"], &kind)),
            "refuse" => (Toxic::Refuse, self.only_keys(c, &["toxicity"], &kind)),
            "reset" => {
                let mut ok = self.only_keys(c, &["toxicity"], &kind);
                if let Some(t) = &c.for_ {
                    self.error(
                        t.span(),
                        "chaos.for does not apply to network = \"reset\" (it acts once): expected no `for` here",
                    );
                    ok = false;
                }
                (Toxic::Reset, ok)
            }
            "slow_close" => {
                let ok = self.only_keys(c, &[&common[..], &["delay"]].concat(), &kind);
                let delay = self.required(c.delay.as_ref(), name, "delay = \"2s\"", &kind)?;
                let delay = self.positive_duration(delay, "chaos.delay")?;
                (Toxic::SlowClose { delay }, ok)
            }
            "slicer" => {
                let ok = self.only_keys(
                    c,
                    &[&common[..], &["average_size", "size_variation", "delay"]].concat(),
                    &kind,
                );
                let average = self.required(c.average_size.as_ref(), name, "average_size = 64", &kind)?;
                let variation = c.size_variation.as_ref().map_or(0, |v| *v.get_ref());
                if *average.get_ref() == 0 || *average.get_ref() > 1 << 30 || variation >= *average.get_ref()
                {
                    self.error(
                        average.span(),
                        "chaos.average_size: expected a size above zero (at most 1 GiB) and above size_variation",
                    );
                    return None;
                }
                let delay = match &c.delay {
                    Some(d) => self.duration(d, "chaos.delay")?,
                    None => Duration::ZERO,
                };
                (
                    Toxic::Slicer {
                        average: *average.get_ref() as usize,
                        variation: variation as usize,
                        delay,
                    },
                    ok,
                )
            }
            "limit_data" => {
                let ok = self.only_keys(c, &[&common[..], &["bytes"]].concat(), &kind);
                let bytes = self.required(c.bytes.as_ref(), name, "bytes = \"64KiB\"", &kind)?;
                let parsed = match bytes.get_ref() {
                    RawNumberOrText::Number(n) if *n >= 1.0 && n.fract() == 0.0 => Ok(*n as u64),
                    RawNumberOrText::Number(n) => Err(format!("{n}: {}", units::SIZE_EXPECTED)),
                    RawNumberOrText::Text(t) => units::size(t),
                }
                .and_then(|n| match n {
                    0 => Err(format!("0 bytes: {}", units::SIZE_EXPECTED)),
                    n => Ok(n),
                });
                match parsed {
                    Ok(bytes) => (Toxic::LimitData { bytes }, ok),
                    Err(e) => {
                        self.error(bytes.span(), format!("chaos.bytes: {e}"));
                        return None;
                    }
                }
            }
            other => {
                self.error(
                    name.span(),
                    format!("chaos.network: unknown {other:?}: {NETWORK_EXPECTED}"),
                );
                return None;
            }
        };
        let mut fault = Fault::new(toxic);
        if let Some(d) = &c.direction {
            fault.direction = match Direction::parse(d.get_ref()) {
                Some(dir) => dir,
                None => {
                    self.error(
                        d.span(),
                        format!(
                            "chaos.direction: unknown {:?}: expected \"upstream\" (client to server), \"downstream\" or \"both\"",
                            d.get_ref()
                        ),
                    );
                    return None;
                }
            };
        }
        if let Some(t) = &c.toxicity {
            let value = match t.get_ref() {
                RawNumberOrText::Number(n) if (0.0..=1.0).contains(n) => Some(*n),
                RawNumberOrText::Number(_) => None,
                RawNumberOrText::Text(text) => share(text),
            };
            match value {
                Some(v) => fault.toxicity = v,
                None => {
                    self.error(
                        t.span(),
                        "chaos.toxicity: expected the share of connections hit, such as \"50%\" or 0.5",
                    );
                    return None;
                }
            }
        }
        let lasts = match &c.for_ {
            Some(t) if toxic != Toxic::Reset => Some(self.positive_duration(t, "chaos.for")?),
            _ => None,
        };
        keys_ok.then_some(ChaosAction::Network { fault, lasts })
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
        name: &super::Text,
        example: &str,
        kind: &str,
    ) -> Option<&'r T> {
        if value.is_none() {
            self.error(name.span(), format!("{kind} needs `{example}`"));
        }
        value
    }

    fn parsed<T>(
        &mut self,
        text: &super::Text,
        what: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        parse(text.get_ref())
            .map_err(|e| self.error(text.span(), format!("{what}: {e}")))
            .ok()
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
