//! HTTP steps: `http = { method, url, headers, body, expect_status, timeout }`, with a step's
//! `capture` (from the response body) and `name`. In `[[setup]]` they run before every connect
//! attempt, so they come before the connection's own setup steps.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::validator::Validator;
use crate::scenario::plan::{HttpStep, Step};
use crate::scenario::raw::{RawHttp, RawStep};

/// An HTTP step waits for its response: it paces a loop.
type Checked = Option<(Step, bool)>;

impl Validator<'_> {
    pub(super) fn http_step(
        &mut self,
        s: &RawStep,
        raw: &Spanned<RawHttp>,
        span: Range<usize>,
        table: &str,
    ) -> Checked {
        let h = raw.get_ref();
        let what = format!("{table}.http");
        let method = match h
            .method
            .as_deref()
            .unwrap_or("GET")
            .to_ascii_uppercase()
            .parse::<http::Method>()
        {
            Ok(m) => Some(m),
            Err(_) => {
                self.error(
                    raw.span(),
                    format!("{what}.method: expected an HTTP method such as GET or POST"),
                );
                None
            }
        };
        let url = self.template(&h.url, &format!("{what}.url"));
        if let Some(u) = &url {
            let written = u.source();
            if !(written.starts_with("http://") || written.starts_with("https://")) {
                self.error(
                    h.url.span(),
                    format!("{what}.url: expected an http:// or https:// URL"),
                );
            } else if u.is_constant()
                && written
                    .parse::<http::Uri>()
                    .map_or(true, |uri| uri.host().is_none())
            {
                self.error(
                    h.url.span(),
                    format!("{what}.url: {written:?} is not a URL with a host"),
                );
            }
        }
        let mut headers = Vec::new();
        let mut ok = true;
        for (name, value) in &h.headers {
            let template = self.template(value, &format!("{what}.headers.{name}"));
            match (name.parse::<http::HeaderName>(), template) {
                (Ok(name), Some(t)) => headers.push((name, t)),
                (Err(_), _) => {
                    self.error(
                        value.span(),
                        format!("{what}.headers: {name:?} is not a header name"),
                    );
                    ok = false;
                }
                (_, None) => ok = false,
            }
        }
        let body = match &h.body {
            None => Some(None),
            Some(b) => self.template(b, &format!("{what}.body")).map(Some),
        };
        let expect_status = match &h.expect_status {
            None => Some(Vec::new()),
            Some(list)
                if !list.get_ref().is_empty() && list.get_ref().iter().all(|c| (100..600).contains(c)) =>
            {
                Some(list.get_ref().clone())
            }
            Some(list) => {
                self.error(
                    list.span(),
                    format!("{what}.expect_status: expected a list of HTTP statuses such as [200, 201]"),
                );
                None
            }
        };
        let timeout = match &h.timeout {
            None => Some(Duration::from_secs(10)),
            Some(t) => self.positive_duration(t, &format!("{what}.timeout")),
        };
        let captures = self.captures(s.capture.as_ref(), table);
        let name = match (&s.name, self.flow.clone()) {
            (None, None) => Some(0),
            (Some(text), None) => self
                .step_name(text, table)
                .and_then(|n| self.name_id(n, text.span(), table)),
            (None, Some(flow)) => self.name_id(flow, span, table),
            (Some(text), Some(flow)) => self
                .step_name(text, table)
                .and_then(|n| self.name_id(format!("{flow}/{n}"), text.span(), table)),
        };
        if !ok {
            return None;
        }
        let step = HttpStep {
            method: method?,
            url: url?,
            headers,
            body: body?,
            expect_status: expect_status?,
            timeout: timeout?,
            captures: captures?,
            name: name?,
        };
        Some((Step::Http(Box::new(step)), true))
    }

    /// In a setup list, the HTTP steps come first: they run before the connect attempt, the
    /// others on the connection.
    pub(super) fn http_first(&mut self, list: &[Spanned<RawStep>], table: &str) {
        let first_ws = list.iter().position(|s| s.get_ref().http.is_none());
        if let Some(late) = first_ws.and_then(|i| list[i..].iter().find(|s| s.get_ref().http.is_some())) {
            self.error(
                late.span(),
                format!("{table}: an http step after a step on the connection: HTTP setup steps run before every connect attempt, so expected them first"),
            );
        }
    }

    /// The TLS of https:// HTTP steps: the wss:// target's configuration, else one verifying
    /// against the system's roots (or none with --insecure).
    pub(super) fn http_tls(
        &mut self,
        steps: &[&Step],
        target_tls: Option<&crate::scenario::tls::Tls>,
        insecure: bool,
    ) -> Option<std::sync::Arc<tokio_rustls::rustls::ClientConfig>> {
        let https = steps
            .iter()
            .any(|s| matches!(s, Step::Http(h) if h.url.source().starts_with("https://")));
        if !https {
            return None;
        }
        if let Some(tls) = target_tls {
            return Some(tls.config.clone());
        }
        let options = crate::scenario::tls::TlsOptions {
            insecure,
            ..Default::default()
        };
        match crate::scenario::tls::build(&options, "localhost") {
            Ok(tls) => Some(tls.config),
            Err((_, why)) => {
                self.error(0..0, format!("https HTTP steps: {why}"));
                None
            }
        }
    }
}
