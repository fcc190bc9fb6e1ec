//! `[connect]`, `[correlation]` and `[pushes]`: the upgrade request, the limits on what a
//! server may send, the heartbeat, how replies are matched to requests, and what pushes carry.

use http::{HeaderName, HeaderValue};
use toml::Spanned;

use super::validator::Validator;
use crate::scenario::check::{Check, IdFinder};
use crate::scenario::plan::{Connect, Correlation, Heartbeat, Protocol, Pushes, Target};
use crate::scenario::plan::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_CORRELATION_TIMEOUT, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_MESSAGE,
    DEFAULT_READ_BUFFER, MAX_IN_FLIGHT,
};
use crate::scenario::pointer::JsonPointer;
use crate::scenario::raw::{
    RawAddrs, RawConnect, RawCorrelation, RawHeartbeat, RawMatch, RawPushes, RawScenario, Text,
};
use crate::scenario::sources;
use crate::scenario::template::Template;
use crate::units::rate::per_second;
use crate::units::size;

impl Validator<'_> {
    pub(super) fn connect(&mut self, raw: &RawConnect) -> Option<Connect> {
        let timeout = self.positive_or(raw.timeout.as_ref(), "connect.timeout", DEFAULT_CONNECT_TIMEOUT);
        let headers = self.headers(raw);
        let subprotocols = self.subprotocols(raw);
        let read_buffer = match &raw.read_buffer {
            Some(n) if !(256..=16 << 20).contains(n.get_ref()) => {
                self.error(
                    n.span(),
                    "connect.read_buffer: expected a size in bytes between 256 and 16777216",
                );
                None
            }
            Some(n) => Some(*n.get_ref() as usize),
            None => Some(DEFAULT_READ_BUFFER),
        };
        let max_message = self.message_limit(raw.max_message.as_ref(), "connect.max_message");
        let max_frame = self.message_limit(raw.max_frame.as_ref(), "connect.max_frame");
        let heartbeat = raw.heartbeat.as_ref().map(|h| self.heartbeat(h.get_ref()));
        let max_rate = raw.max_rate.as_ref().map(|t| self.max_rate(t));
        let json_after = match &raw.json_after {
            None => Some(None),
            Some(t) => self
                .parsed(t, "connect.json_after", |re| {
                    regex::Regex::new(&format!("^(?:{re})")).map_err(|e| e.to_string())
                })
                .map(Some),
        };
        let source_addrs = match &raw.source_addrs {
            Some(addrs) => self.source_addrs(addrs),
            None => Some(Vec::new()),
        };
        let deflate = self.compression(raw);
        let (subprotocols, offer, subprotocol) = subprotocols?;
        Some(Connect {
            url: self.url.take(),
            headers: headers?,
            subprotocols,
            offer,
            subprotocol,
            timeout: timeout?,
            read_buffer: read_buffer?,
            max_message: max_message?,
            max_frame: max_frame?,
            heartbeat: heartbeat.map_or(Some(None), |h| h.map(Some))?,
            source_addrs: source_addrs?,
            max_rate: max_rate.map_or(Some(None), |r| r.map(Some))?,
            deflate: deflate?,
            json_after: json_after?,
            stomp: raw
                .protocol
                .as_ref()
                .is_some_and(|p| *p.get_ref() == Protocol::Stomp),
        })
    }

    fn headers(&mut self, raw: &RawConnect) -> Option<Vec<(HeaderName, Template)>> {
        let mut headers = Vec::new();
        let mut ok = true;
        for (name, value) in &raw.headers {
            let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
                self.error(
                    value.span(),
                    format!("connect.headers: {name:?} is not a valid HTTP header name: expected a token such as \"Authorization\""),
                );
                ok = false;
                continue;
            };
            match self.template(value, &format!("connect.headers.{name}")) {
                Some(t) => headers.push((header, t)),
                None => ok = false,
            }
        }
        ok.then_some(headers)
    }

    /// The subprotocols offered (templates), as the header value when it is the same for every
    /// client, and the one required. Each must be a token (visible ASCII, no comma); a value
    /// put in from a secret is checked without being shown.
    #[allow(clippy::type_complexity)]
    fn subprotocols(
        &mut self,
        raw: &RawConnect,
    ) -> Option<(Vec<Template>, Option<HeaderValue>, Option<usize>)> {
        let mut ok = true;
        let mut offered = Vec::new();
        for p in &raw.subprotocols {
            let Some(template) = self.template(p, "connect.subprotocols") else {
                ok = false;
                continue;
            };
            // A fixed one is checked now; a per-client one when the feed is (feed_fits).
            if template.is_constant() && !is_token(&template.render_detached(0, 0, &[], 0)) {
                let written = if template.source().contains("${") {
                    " (as its value is)"
                } else {
                    ""
                };
                self.error(
                    p.span(),
                    format!("connect.subprotocols: {:?}{written} is not a token: expected such as \"json.v1\" (visible ASCII, no spaces or commas)", template.source()),
                );
                ok = false;
            }
            offered.push(template);
        }
        let required = match &raw.subprotocol {
            None => None,
            Some(p) => match offered.iter().position(|t| t.source() == p.get_ref()) {
                Some(i) => Some(i),
                None => {
                    let list: Vec<&str> = offered.iter().map(Template::source).collect();
                    let list = if list.is_empty() {
                        "none listed".to_string()
                    } else {
                        list.join(", ")
                    };
                    self.error(
                        p.span(),
                        format!(
                            "connect.subprotocol: {:?} is not offered: expected one of connect.subprotocols ({list})",
                            p.get_ref()
                        ),
                    );
                    ok = false;
                    None
                }
            },
        };
        if !ok {
            return None;
        }
        let offer = offered
            .iter()
            .all(Template::is_constant)
            .then(|| {
                offered
                    .iter()
                    .map(|t| t.render_detached(0, 0, &[], 0))
                    .collect::<Vec<_>>()
            })
            .filter(|list| !list.is_empty())
            .and_then(|list| HeaderValue::from_str(&list.join(", ")).ok());
        Some((offered, offer, required))
    }

    /// `max_message` / `max_frame`.
    fn message_limit(&mut self, text: Option<&Text>, what: &str) -> Option<usize> {
        let Some(t) = text else {
            return Some(DEFAULT_MAX_MESSAGE);
        };
        match size::size(t.get_ref()) {
            Ok(n) if (64..=1 << 30).contains(&n) => Some(n as usize),
            Ok(_) => {
                self.error(t.span(), format!("{what}: expected between 64 bytes and 1GiB"));
                None
            }
            Err(e) => {
                self.error(t.span(), format!("{what}: {e}"));
                None
            }
        }
    }

    fn heartbeat(&mut self, h: &RawHeartbeat) -> Option<Heartbeat> {
        let every = self.positive_duration(&h.every, "connect.heartbeat.every");
        let timeout = self.positive_duration(&h.timeout, "connect.heartbeat.timeout");
        Some(Heartbeat {
            every: every?,
            timeout: timeout?,
        })
    }

    fn max_rate(&mut self, t: &Text) -> Option<f64> {
        match per_second(t.get_ref()) {
            Some(r) if r <= 1_000_000.0 => Some(r),
            _ => {
                self.error(t.span(), format!("connect.max_rate: {:?}: expected new connections per second such as \"500/s\" (at most 1000000/s)", t.get_ref()));
                None
            }
        }
    }

    fn source_addrs(&mut self, addrs: &Spanned<RawAddrs>) -> Option<Vec<std::net::IpAddr>> {
        let entries = match addrs.get_ref() {
            RawAddrs::One(one) => std::slice::from_ref(one),
            RawAddrs::Many(many) => many.as_slice(),
        };
        let mut ok = true;
        if entries.is_empty() {
            self.error(
                addrs.span(),
                format!("connect.source_addrs: empty; {}", sources::EXPECTED),
            );
            ok = false;
        }
        let mut out = Vec::new();
        for entry in entries {
            match sources::expand(entry) {
                Ok(ips) => out.extend(ips),
                Err(e) => {
                    self.error(addrs.span(), format!("connect.source_addrs: {e}"));
                    ok = false;
                }
            }
        }
        if out.len() > sources::MAX {
            self.error(
                addrs.span(),
                format!(
                    "connect.source_addrs: {} addresses, more than the {} allowed",
                    out.len(),
                    sources::MAX
                ),
            );
            ok = false;
        }
        ok.then_some(out)
    }

    /// Source addresses of one IP family cannot reach a target of the other: every connect
    /// would fail (as `io`). Known for the built-in target (127.0.0.1) and an IP literal.
    pub(super) fn sources_reach(&mut self, raw: &RawScenario, target: &Target, connect: &Connect) {
        let ip: std::net::IpAddr = match target {
            Target::Embedded(_) => [127, 0, 0, 1].into(),
            Target::Url(url) => match url.host.trim_start_matches('[').trim_end_matches(']').parse() {
                Ok(ip) => ip,
                Err(_) => return,
            },
        };
        let Some(other) = connect.source_addrs.iter().find(|s| s.is_ipv4() != ip.is_ipv4()) else {
            return;
        };
        let span = raw
            .connect
            .source_addrs
            .as_ref()
            .map_or(raw.target.span(), |s| s.span());
        let family = |a: &std::net::IpAddr| if a.is_ipv4() { "IPv4" } else { "IPv6" };
        self.error(
            span,
            format!(
                "connect.source_addrs: {other} is {} and the target {ip} is {}: no connection goes from one to the other; expected source addresses of the target's family",
                family(other),
                family(&ip)
            ),
        );
    }

    pub(super) fn correlation(&mut self, c: &Spanned<RawCorrelation>) -> Option<Correlation> {
        let span = c.span();
        let c = c.get_ref();
        let request_id = match (&c.request_id, &c.request_id_regex) {
            // `*` stands for every element of an array: a batch reply answers each id.
            (Some(p), None) => self
                .parsed(p, "correlation.request_id", JsonPointer::pattern)
                .map(IdFinder::Pointer),
            (None, Some(re)) => self.parsed(re, "correlation.request_id_regex", IdFinder::regex),
            _ => {
                self.error(span, "correlation: expected exactly one of `request_id = \"/json/pointer\"` (JSON replies) or `request_id_regex = \"id=(\\\\S+)\"` (other text)");
                None
            }
        };
        let timeout = self.positive_or(
            c.timeout.as_ref(),
            "correlation.timeout",
            DEFAULT_CORRELATION_TIMEOUT,
        );
        let max_in_flight = match &c.max_in_flight {
            None => Some(DEFAULT_MAX_IN_FLIGHT),
            Some(n) => {
                match u32::try_from(*n.get_ref()) {
                    Ok(n @ 1..=MAX_IN_FLIGHT) => Some(n),
                    _ => {
                        self.error(
                        n.span(),
                        format!("correlation.max_in_flight: expected 1 to {MAX_IN_FLIGHT} requests per connection"),
                    );
                        None
                    }
                }
            }
        };
        let reply_if_any = self.reply_if_any(c.reply_if_any.as_ref());
        Some(Correlation {
            request_id: request_id?,
            timeout: timeout?,
            max_in_flight: max_in_flight?,
            reply_if_any: reply_if_any?,
        })
    }

    /// `correlation.reply_if_any`: tests, or lists of tests that must all hold.
    fn reply_if_any(&mut self, raw: Option<&Spanned<Vec<Spanned<RawMatch>>>>) -> Option<Vec<Vec<Check>>> {
        let Some(list) = raw else {
            return Some(Vec::new());
        };
        if list.get_ref().is_empty() {
            self.error(
                list.span(),
                "correlation.reply_if_any: an empty list: expected at least one test (or no reply_if_any)",
            );
            return None;
        }
        let mut any = Vec::new();
        let mut ok = true;
        for (i, m) in list.get_ref().iter().enumerate() {
            match self.all_of(m, &format!("correlation.reply_if_any[{i}]")) {
                Some(all) => any.push(all),
                None => ok = false,
            }
        }
        ok.then_some(any)
    }

    pub(super) fn pointer(&mut self, text: &Text, what: &str) -> Option<JsonPointer> {
        self.parsed(text, what, JsonPointer::parse)
    }

    pub(super) fn pushes(&mut self, raw: Option<&RawPushes>) -> Option<Pushes> {
        let Some(raw) = raw else {
            return Some(Pushes::default());
        };
        let sequence = raw.sequence.as_ref().map(|t| self.pointer(t, "pushes.sequence"));
        let sent_at = raw.sent_at.as_ref().map(|t| self.pointer(t, "pushes.sent_at"));
        let mut ok =
            sequence.as_ref().is_none_or(Option::is_some) && sent_at.as_ref().is_none_or(Option::is_some);
        if let Some(p) = &raw.resume_param {
            let valid = !p.get_ref().is_empty()
                && p.get_ref()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid {
                self.error(
                    p.span(),
                    "pushes.resume_param: expected a query parameter name such as \"resume_from\"",
                );
                ok = false;
            }
            if raw.sequence.is_none() {
                self.error(
                    p.span(),
                    "pushes.resume_param needs the sequence: expected `sequence = \"/json/pointer\"` too",
                );
                ok = false;
            }
        }
        ok.then(|| Pushes {
            sequence: sequence.flatten(),
            sent_at: sent_at.flatten(),
            resume_param: raw.resume_param.as_ref().map(|p| p.get_ref().clone()),
        })
    }
}

/// A subprotocol token: visible ASCII without a comma (what a `Sec-WebSocket-Protocol` list
/// can carry).
pub(super) fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_graphic() && b != b',')
}
