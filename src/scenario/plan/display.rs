//! The plan as `wsstorm validate` prints it: every resolved value, the load phases and the
//! chaos timeline, with templates shown as written (never a secret's value).

use std::fmt::{self, Formatter, Result};
use std::time::Duration;

use super::{Capture, CounterName, Extract, Plan, ReconnectAction, Scope, Step, Target, Var};
use crate::scenario::check::Check;
use crate::scenario::feed::Mode;
use crate::scenario::template::Template;
use crate::units::duration::show;

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut Formatter<'_>) -> Result {
        writeln!(f, "scenario   {} ({})", self.name, self.file.display())?;
        self.show_target(f)?;
        writeln!(f, "duration   {}", show(self.duration))?;
        writeln!(f, "seed       {}", self.seed)?;
        self.show_connect(f)?;
        if let Some(p) = self.protocol {
            writeln!(
                f,
                "protocol   {p}: its preset is expanded below (correlation, steps' sends and checks, rules)"
            )?;
        }
        self.show_load(f)?;
        self.show_lifecycle(f)?;
        self.show_program(f)?;
        if self.thresholds.is_empty() {
            writeln!(f, "thresholds (none)")?;
        } else {
            writeln!(f, "thresholds")?;
            for t in &self.thresholds {
                writeln!(f, "  {}", t.describe())?;
            }
        }
        Ok(())
    }
}

impl Plan {
    fn show_target(&self, f: &mut Formatter<'_>) -> Result {
        match &self.target {
            Target::Embedded(b) => writeln!(
                f,
                "target     embedded: built-in server on 127.0.0.1:0 ({})",
                b.describe()
            ),
            Target::Url(url) => match &self.connect.url {
                Some(t) => writeln!(f, "target     {} (per client)", crate::redact::text(t.source())),
                None => writeln!(f, "target     {}", crate::redact::text(&url.uri.to_string())),
            },
        }
    }

    fn show_connect(&self, f: &mut Formatter<'_>) -> Result {
        let c = &self.connect;
        write!(
            f,
            "connect    timeout {}, read buffer {} B, messages up to {} B (frames {} B)",
            show(c.timeout),
            c.read_buffer,
            c.max_message,
            c.max_frame
        )?;
        if !c.subprotocols.is_empty() {
            let offered: Vec<&str> = c.subprotocols.iter().map(Template::source).collect();
            write!(f, ", subprotocols {}", offered.join(", "))?;
        }
        if let Some(p) = c.subprotocol {
            write!(f, " (the server must choose {})", c.subprotocols[p].source())?;
        }
        writeln!(f)?;
        if let Some(feed) = &self.feed {
            let rows = match feed.mode {
                Mode::Sequential => "row k mod rows",
                Mode::Random => "a fixed random row",
                Mode::Unique => "row k, its own",
            };
            writeln!(
                f,
                "feed       {}: {} rows of {}; {} (client k: {rows})",
                feed.file.display(),
                feed.rows.len(),
                feed.columns.join(", "),
                feed.mode.name(),
            )?;
        }
        if let Some(tls) = &self.tls {
            let client = tls
                .client_cert
                .as_ref()
                .map(|c| format!("; client certificate {}", c.display()))
                .unwrap_or_default();
            writeln!(f, "  tls      roots {}{client}", tls.roots)?;
        }
        if let Some(rate) = c.max_rate {
            writeln!(f, "  at most {rate}/s new connections, over all clients")?;
        }
        if let Some(d) = &c.deflate {
            writeln!(f, "  offers   {}", d.describe())?;
        }
        match c.source_addrs.as_slice() {
            [] => {}
            [one] => writeln!(f, "  from     {one}")?,
            [first, .., last] => writeln!(
                f,
                "  from     {} source addresses, {first} .. {last}, in turn",
                c.source_addrs.len()
            )?,
        }
        for (name, value) in &c.headers {
            writeln!(f, "  header   {name}: {}", value.source())?;
        }
        let Some(c) = &self.correlation else {
            return writeln!(f, "correlate  (none: no request expects a reply)");
        };
        writeln!(
            f,
            "correlate  id at {}, timeout {}, at most {} in flight per connection",
            c.request_id,
            show(c.timeout),
            c.max_in_flight
        )?;
        if !c.reply_if_any.is_empty() {
            let any: Vec<String> = c
                .reply_if_any
                .iter()
                .map(|all| {
                    all.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(" and ")
                })
                .collect();
            writeln!(f, "  a reply when {}", any.join(", or "))?;
        }
        Ok(())
    }

    fn show_load(&self, f: &mut Formatter<'_>) -> Result {
        match self.segment {
            None => writeln!(f, "load       peak {} clients", self.load.peak())?,
            Some(s) => writeln!(
                f,
                "load       peak {} clients; segment {s}: clients numbered {} mod {}, {} at the peak",
                self.load.peak(),
                s.index,
                s.count,
                self.peak_clients()
            )?,
        }
        let mut t = Duration::ZERO;
        let mut from = 0;
        for (i, p) in self.load.phases.iter().enumerate() {
            writeln!(
                f,
                "  phase {}  {:>8} .. {:<8} {} -> {} clients over {}, hold {}",
                i + 1,
                show(t),
                show(t + p.ramp + p.hold),
                from,
                p.clients,
                show(p.ramp),
                show(p.hold)
            )?;
            t += p.ramp + p.hold;
            from = p.clients;
        }
        if t < self.duration {
            writeln!(
                f,
                "  then     {:>8} .. {:<8} hold {} clients",
                show(t),
                show(self.duration),
                from
            )?;
        }
        Ok(())
    }

    fn show_lifecycle(&self, f: &mut Formatter<'_>) -> Result {
        if let Some(h) = &self.connect.heartbeat {
            writeln!(
                f,
                "heartbeat  ping every {}, pong within {}",
                show(h.every),
                show(h.timeout)
            )?;
        }
        let r = &self.reconnect;
        let attempts = r.max_attempts.map_or("unlimited attempts".to_string(), |n| {
            format!("give up after {n} attempts")
        });
        let replay = if r.replay_in_flight {
            "replay requests in flight"
        } else {
            "requests in flight at a drop are lost"
        };
        writeln!(
            f,
            "reconnect  {:?} from {} to {} (x{}), jitter {:?}, {attempts}, {replay}",
            r.strategy,
            show(r.initial),
            show(r.max),
            r.multiplier,
            r.jitter,
        )?;
        for rule in &r.rules {
            let causes: Vec<&str> = rule.causes.iter().map(|c| c.0.as_str()).collect();
            let action = match rule.action {
                ReconnectAction::Stop => "stop (no reconnect)".to_string(),
                ReconnectAction::Delay(d) => format!("wait {} exactly", show(d)),
                ReconnectAction::RetryAfter => {
                    "wait the refusal's Retry-After (at most 1h), else the strategy".to_string()
                }
                ReconnectAction::Backoff => "the strategy".to_string(),
                ReconnectAction::Setup => "connect again at once (after the setup's HTTP steps)".to_string(),
            };
            writeln!(f, "  after {}: {action}", causes.join(", "))?;
        }
        if let Some(seq) = &self.pushes.sequence {
            writeln!(f, "pushes     sequence at {seq}")?;
        }
        for c in &self.chaos {
            writeln!(f, "chaos      {}", c.describe())?;
        }
        Ok(())
    }

    fn show_program(&self, f: &mut Formatter<'_>) -> Result {
        if !self.setup.is_empty() {
            writeln!(f, "setup      (once per connection)")?;
            show_steps(f, &self.setup, self)?;
        }
        match self.pacing {
            None => writeln!(f, "steps      (each client loops while connected)")?,
            Some(every) => writeln!(
                f,
                "steps      (open rate: each client starts the loop every {:?}, {:.3}/s; latency also from when each request was due)",
                every,
                1.0 / every.as_secs_f64()
            )?,
        }
        show_steps(f, &self.steps, self)?;
        let total: u32 = self.flows.iter().map(|f| f.weight).sum();
        for flow in &self.flows {
            writeln!(
                f,
                "flow       {} ({} of every {total} clients)",
                flow.name, flow.weight
            )?;
            if !flow.setup.is_empty() {
                writeln!(f, "  setup")?;
                show_steps(f, &flow.setup, self)?;
            }
            writeln!(f, "  steps")?;
            show_steps(f, &flow.steps, self)?;
        }
        for socket in &self.sockets {
            writeln!(
                f,
                "socket     {} at {} (every client holds one)",
                socket.name, socket.path
            )?;
            if !socket.setup.is_empty() {
                writeln!(f, "  setup")?;
                show_steps(f, &socket.setup, self)?;
            }
            writeln!(f, "  steps")?;
            show_steps(f, &socket.steps, self)?;
        }
        if !self.timers.is_empty() {
            writeln!(
                f,
                "every      (timers beside the loop, once the setup is done; they never hold it up)"
            )?;
        }
        for timer in &self.timers {
            writeln!(f, "  every {}:", show(timer.every))?;
            show_steps(f, std::slice::from_ref(&timer.step), self)?;
        }
        if !self.rules.is_empty() {
            writeln!(
                f,
                "on_message (messages that are no reply; every rule that matches, in order)"
            )?;
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let mut actions = Vec::new();
            let captures = show_captures(&rule.captures, &self.vars);
            if let Some(c) = captures.strip_prefix("; ") {
                actions.push(c.to_string());
            }
            match &rule.count {
                Some(CounterName::Fixed(id)) => {
                    actions.push(format!("count {}", self.counters[*id as usize]))
                }
                Some(CounterName::Template(t)) => actions.push(format!("count {}", t.source())),
                None => {}
            }
            if let Some(t) = &rule.send {
                actions.push(format!("send {}", visible(t.source())));
            }
            if let Some(code) = rule.close {
                actions.push(format!("close ({code}), then connect again"));
            }
            if let Some(lapse) = &rule.lapse {
                let mut parts: Vec<String> = Vec::new();
                if !lapse.fixed.is_zero() {
                    parts.push(show(lapse.fixed));
                }
                parts.extend(
                    lapse
                        .vars_ms
                        .iter()
                        .map(|i| format!("{{{{var.{}}}}} ms", self.vars[usize::from(*i)].name)),
                );
                actions.push(format!(
                    "then a heartbeat (a rule with a lapse) within {}, else drop (server_ping_timeout)",
                    parts.join(" + ")
                ));
            }
            if let Some(drop) = rule.drop {
                actions.push(format!("drop ({})", crate::scenario::plan::rule_drop_name(drop)));
            }
            let replies = if rule.replies { " (replies too)" } else { "" };
            writeln!(
                f,
                "  {}. when {}{replies}: {}",
                i + 1,
                rule.matches
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" and "),
                actions.join("; ")
            )?;
        }
        Ok(())
    }
}

/// "; capture session (from /result/session, for the connection)".
fn show_captures(captures: &[Capture], vars: &[Var]) -> String {
    let list: Vec<String> = captures
        .iter()
        .map(|c| {
            let var = &vars[usize::from(c.var)];
            let from = match &c.from {
                Extract::Pointer(p) => p.to_string(),
                Extract::Regex(re) => format!("/{re}/"),
            };
            let scope = match var.scope {
                Scope::Connection => "the connection",
                Scope::Client => "the client",
            };
            format!("{} from {from} (for {scope})", var.name)
        })
        .collect();
    if list.is_empty() {
        String::new()
    } else {
        format!("; capture {}", list.join(", "))
    }
}

fn show_steps(f: &mut Formatter<'_>, steps: &[Step], plan: &Plan) -> Result {
    let vars = &plan.vars;
    for (i, step) in steps.iter().enumerate() {
        let n = i + 1;
        match step {
            Step::Send { template, expect } => {
                let e = match expect {
                    Some(e) => {
                        let what = match &e.last {
                            Some(last) => format!("the stream of replies until {last}"),
                            None => "the correlated reply".to_string(),
                        };
                        let checks: Vec<String> = e.checks.iter().map(Check::to_string).collect();
                        let checks = if checks.is_empty() {
                            String::new()
                        } else {
                            format!("; check {}", checks.join(", "))
                        };
                        let verb = if e.wait {
                            "wait for"
                        } else {
                            "correlate, do not wait for"
                        };
                        let captures = show_captures(&e.captures, vars);
                        format!("  -> {verb} {what}{checks}{captures}")
                    }
                    None => String::new(),
                };
                let named = match expect.as_ref().map_or(0, |e| e.name) {
                    0 => String::new(),
                    k => format!("[{}] ", plan.step_names[usize::from(k) - 1]),
                };
                writeln!(f, "  {n}. send  {named}{}{e}", visible(template.source()))?;
            }
            Step::SendBinary(bytes) => writeln!(f, "  {n}. send  {} bytes (binary)", bytes.len())?,
            Step::WaitFor {
                check,
                timeout,
                captures,
                first,
            } => writeln!(
                f,
                "  {n}. wait  for {} where {check}, up to {}{}",
                if *first {
                    "the next message (else protocol_mismatch)"
                } else {
                    "a message"
                },
                show(*timeout),
                show_captures(captures, vars)
            )?,
            Step::Sleep(d) => writeln!(f, "  {n}. sleep {}", show(*d))?,
            Step::SleepBetween(lo, hi) => {
                writeln!(f, "  {n}. sleep {} to {} (at random)", show(*lo), show(*hi))?
            }
            Step::Close(code) => writeln!(f, "  {n}. close ({code}), then connect again")?,
            Step::Http(h) => {
                let named = match h.name {
                    0 => String::new(),
                    k => format!("[{}] ", plan.step_names[usize::from(k) - 1]),
                };
                let status = if h.expect_status.is_empty() {
                    "2xx".to_string()
                } else {
                    let list: Vec<String> = h.expect_status.iter().map(u16::to_string).collect();
                    list.join(" or ")
                };
                writeln!(
                    f,
                    "  {n}. http  {named}{} {} -> expect {status} within {}{}",
                    h.method,
                    h.url.source(),
                    show(h.timeout),
                    show_captures(&h.captures, vars)
                )?
            }
        }
    }
    Ok(())
}

/// A template as one line: line breaks, tabs and NULs (STOMP frames) written as escapes.
fn visible(source: &str) -> std::borrow::Cow<'_, str> {
    if !source.contains(['\n', '\r', '\t', '\0']) {
        return std::borrow::Cow::Borrowed(source);
    }
    let mut out = String::with_capacity(source.len() + 8);
    for c in source.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}
