//! `target`, `[tls]` and `[embedded]`: where clients connect, how they trust the server, and
//! how the built-in target behaves when it is the target.

use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use super::validator::Validator;
use crate::scenario::overrides::Overrides;
use crate::scenario::plan::{Behaviour, Protocol, Target, TargetUrl};
use crate::scenario::raw::{RawEmbedded, RawScenario, Text};
use crate::scenario::template::Template;
use crate::scenario::tls::{self, Tls};
use crate::units::close_code;

const PER_CLIENT_URL: &str = "target: a URL takes per-client values ({{feed.COLUMN}}, {{client}}) only after the host and port, and no {{id}}: expected such as \"ws://host:9000/ws?user={{feed.user}}\"";

impl Validator<'_> {
    pub(super) fn target(&mut self, raw: &RawScenario, overrides: &Overrides) -> Option<Target> {
        let (written, span) = match &overrides.target {
            Some(url) => (url.as_str(), None),
            None => (raw.target.get_ref().as_str(), Some(raw.target.span())),
        };
        if written == "embedded" {
            return Some(Target::Embedded(self.embedded(raw)?));
        }
        if overrides.target.is_none() && raw.embedded.is_some() {
            self.error(
                raw.target.span(),
                "an [embedded] table only applies to the built-in target: expected target = \"embedded\" or no [embedded] table",
            );
        }
        // `${env:…}` and `${secret:…}` are resolved here; `{{feed.…}}` per client.
        let resolved = if written.contains("${") || written.contains("{{") {
            let template = match Template::compile(written, self.names) {
                Ok(t) => t,
                Err(e) => {
                    self.target_error(span, format!("target: {}", e.message), written);
                    return None;
                }
            };
            if !template.is_constant() {
                let authority_end = written.find("://").map_or(0, |i| i + 3);
                let authority_end = written[authority_end..]
                    .find(['/', '?'])
                    .map_or(written.len(), |i| authority_end + i);
                if template.uses_id() || written[..authority_end].contains("{{") {
                    self.target_error(span, PER_CLIENT_URL.to_string(), written);
                    return None;
                }
                self.url = Some(template.clone());
            }
            // The fixed parts (the authority the clients connect to): client 0, no feed row.
            template.render_detached(0, 0, &[], 0)
        } else {
            written.to_string()
        };
        let socketio = raw
            .connect
            .protocol
            .as_ref()
            .is_some_and(|p| *p.get_ref() == Protocol::Socketio);
        match TargetUrl::parse(&resolved) {
            // Socket.IO's own path, unless the URL names one.
            Ok(url)
                if socketio && self.url.is_none() && url.uri.path() == "/" && url.uri.query().is_none() =>
            {
                let with_path = format!(
                    "{}socket.io/?EIO=4&transport=websocket",
                    resolved.trim_end_matches('/').to_string() + "/"
                );
                TargetUrl::parse(&with_path).ok().map(Target::Url)
            }
            Ok(url) => Some(Target::Url(url)),
            Err(e) => {
                // Shown as written: the resolved text may hold an environment value or secret.
                self.target_error(span, format!("target: {written:?} {e}"), written);
                None
            }
        }
    }

    /// An error in the target: in the file, or in `--target` (which has no span).
    fn target_error(&mut self, span: Option<Range<usize>>, message: String, text: &str) {
        match span {
            Some(span) => self.error(span, message),
            None => self.flag_error("--target", message, text),
        }
    }

    /// The TLS of a wss:// target (None for ws://). `Some(None)`: a mistake, reported.
    pub(super) fn tls(
        &mut self,
        raw: &RawScenario,
        target: Option<&Target>,
        overrides: &Overrides,
    ) -> Option<Option<Tls>> {
        let url = match target {
            Some(Target::Url(url)) if url.secure() => url,
            _ => {
                if let (Some(t), Some(_)) = (&raw.tls, target) {
                    self.error(
                        t.span(),
                        "tls: applies to wss:// targets only: expected the target to start with wss://",
                    );
                    return Some(None);
                }
                return None;
            }
        };
        let table = raw.tls.as_ref();
        let folder = self.path.parent().unwrap_or(Path::new(""));
        let path = |t: &Option<Text>| t.as_ref().map(|t| folder.join(t.get_ref()));
        let options = tls::TlsOptions {
            ca_file: table.and_then(|t| path(&t.get_ref().ca_file)),
            client_cert: table.and_then(|t| path(&t.get_ref().client_cert)),
            client_key: table.and_then(|t| path(&t.get_ref().client_key)),
            insecure: overrides.insecure || table.is_some_and(|t| t.get_ref().insecure == Some(true)),
        };
        match tls::build(&options, &url.host) {
            Ok(tls) => Some(Some(tls)),
            Err((key, why)) => {
                let span = table.map_or(raw.target.span(), |t| {
                    let named = match key {
                        "tls.ca_file" => t.get_ref().ca_file.as_ref(),
                        "tls.client_cert" => t.get_ref().client_cert.as_ref(),
                        "tls.client_key" => t.get_ref().client_key.as_ref(),
                        _ => None,
                    };
                    named.map_or(t.span(), |n| n.span())
                });
                self.error(span, format!("{key}: {why}"));
                Some(None)
            }
        }
    }

    fn embedded(&mut self, raw: &RawScenario) -> Option<Behaviour> {
        let mut b = Behaviour {
            seed: raw.seed.unwrap_or(1),
            ..Behaviour::default()
        };
        let Some(e) = &raw.embedded else { return Some(b) };
        let mut ok = self.embedded_replies(e, &mut b);
        let mut duration = |v: &mut Self, t: &Option<Text>, what: &str| match t {
            None => None,
            Some(t) => {
                let d = v.positive_duration(t, what);
                ok &= d.is_some();
                d
            }
        };
        b.close_every = duration(self, &e.close_every, "embedded.close_every");
        b.push_every = duration(self, &e.push_every, "embedded.push_every");
        b.ping_every = duration(self, &e.ping_every, "embedded.ping_every");
        if let Some(d) = duration(self, &e.refuse_for, "embedded.refuse_for") {
            b.refuse_for = d;
        }
        if let Some(d) = duration(self, &e.ping_timeout, "embedded.ping_timeout") {
            b.ping_timeout = d;
        }
        for t in e.close_at.iter().flatten() {
            match self.duration(t, "embedded.close_at") {
                Some(d) => b.close_at.push(d),
                None => ok = false,
            }
        }
        if let Some(code) = &e.close_code {
            if !close_code::sendable(*code.get_ref()) {
                self.error(
                    code.span(),
                    format!("embedded.close_code: {}", close_code::EXPECTED),
                );
                ok = false;
            }
            b.close_code = *code.get_ref() as u16;
        }
        b.close_by_reset = e.close_by_reset.unwrap_or(false);
        if let Some(t) = &e.require_token {
            match self.template(t, "embedded.require_token") {
                Some(t) if t.is_constant() => b.require_token = Some(t.render_detached(0, 0, &[], 0)),
                Some(_) => {
                    self.error(t.span(), "embedded.require_token: expected a fixed token (environment variables allowed, no per-message variables)");
                    ok = false;
                }
                None => ok = false,
            }
        }
        b.push_skip = e.push_skip.clone().unwrap_or_default();
        b.batch = e.batch.as_ref().map_or(1, |n| *n.get_ref()).clamp(1, 1000);
        b.protocol = e.protocol;
        if let Some(n) = e.batch.as_ref().filter(|_| b.batch > 1)
            && let (Some(why), Some(p)) = (Behaviour::unbatchable(b.protocol), b.protocol)
        {
            self.error(
                n.span(),
                format!("embedded.batch: {why}: expected no batch (or 1) with protocol = \"{p}\""),
            );
            ok = false;
        }
        b.compression = e.compression;
        ok.then_some(b)
    }

    /// How the built-in target answers: its delay and the replies it withholds.
    fn embedded_replies(&mut self, e: &RawEmbedded, b: &mut Behaviour) -> bool {
        let latency = self.duration_or(e.latency.as_ref(), "embedded.latency", Duration::ZERO);
        let jitter = self.duration_or(e.jitter.as_ref(), "embedded.jitter", Duration::ZERO);
        let mut ok = latency.is_some() && jitter.is_some();
        b.latency = latency.unwrap_or_default();
        b.jitter = jitter.unwrap_or_default();
        if let Some(n) = &e.no_reply_every {
            if *n.get_ref() == 0 {
                self.error(
                    n.span(),
                    "embedded.no_reply_every: expected 1 or more (1 withholds every reply)",
                );
                ok = false;
            }
            b.no_reply_every = Some(*n.get_ref());
        }
        if let Some(f) = &e.no_reply_fraction {
            if !(0.0..=1.0).contains(f.get_ref()) {
                self.error(
                    f.span(),
                    "embedded.no_reply_fraction: expected a fraction between 0.0 and 1.0",
                );
                ok = false;
            }
            b.no_reply_fraction = *f.get_ref();
        }
        ok
    }
}
