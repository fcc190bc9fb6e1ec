//! `[[sockets]]`: the connections every client holds, each with its path on the target, its
//! own program and reconnect policy. A socket's requests are named after it ("chat",
//! "chat/Send"), as a flow's are.

use super::steps::is_label;
use super::validator::Validator;
use crate::scenario::plan::{Socket, TargetUrl};
use crate::scenario::raw::{RawScenario, RawSocket};

/// The most sockets per client.
const MAX_SOCKETS: usize = 8;

impl Validator<'_> {
    pub(super) fn sockets(
        &mut self,
        raw: &RawScenario,
        has_correlation: bool,
        paced: bool,
    ) -> Option<Vec<Socket>> {
        if raw.sockets.is_empty() {
            return Some(Vec::new());
        }
        let mut ok = true;
        if !raw.setup.is_empty() || !raw.steps.is_empty() || !raw.flows.is_empty() {
            self.error(
                raw.sockets[0].span(),
                "with [[sockets]], each socket has its setup and steps: expected no top-level [[setup]], [[steps]] or [[flows]]",
            );
            ok = false;
        }
        if raw.sockets.len() > MAX_SOCKETS {
            self.error(
                raw.sockets[MAX_SOCKETS].span(),
                format!("expected at most {MAX_SOCKETS} [[sockets]] per client"),
            );
            return None;
        }
        let mut sockets: Vec<Socket> = Vec::new();
        for s in &raw.sockets {
            match self.socket(s.get_ref(), raw, has_correlation, paced) {
                Some(socket) if sockets.iter().any(|o| o.name == socket.name) => {
                    self.error(
                        s.get_ref().name.span(),
                        format!("sockets.name: {:?} is taken by another socket", socket.name),
                    );
                    ok = false;
                }
                Some(socket) => sockets.push(socket),
                None => ok = false,
            }
        }
        ok.then_some(sockets)
    }

    fn socket(
        &mut self,
        s: &RawSocket,
        raw: &RawScenario,
        has_correlation: bool,
        paced: bool,
    ) -> Option<Socket> {
        let name = s.name.get_ref().clone();
        if !is_label(&name) {
            self.error(
                s.name.span(),
                format!("sockets.name: {name:?}: expected 1 to 64 letters, digits, `_`, `-` or `.`"),
            );
            return None;
        }
        let path = match (&s.path, &s.url) {
            (Some(p), None)
                if p.get_ref().starts_with('/') && p.get_ref().parse::<http::uri::PathAndQuery>().is_ok() =>
            {
                Some(p.get_ref().clone())
            }
            (Some(p), None) => {
                self.error(
                    p.span(),
                    "sockets.path: expected a path such as \"/chat\" or \"/ws?room=1\"",
                );
                None
            }
            (None, Some(u)) => match TargetUrl::parse(u.get_ref()) {
                Ok(url)
                    if TargetUrl::parse(raw.target.get_ref()).is_ok_and(|t| t.authority == url.authority) =>
                {
                    Some(
                        url.uri
                            .path_and_query()
                            .map_or("/".to_string(), |p| p.to_string()),
                    )
                }
                Ok(_) => {
                    self.error(u.span(), "sockets.url: expected the target's host and port (every socket of a client connects to the target; give a `path`)");
                    None
                }
                Err(e) => {
                    self.error(u.span(), format!("sockets.url: {:?} {e}", u.get_ref()));
                    None
                }
            },
            _ => {
                self.error(
                    s.name.span(),
                    "sockets: expected exactly one of `path = \"/chat\"` or `url = \"ws://host:port/chat\"`",
                );
                None
            }
        };
        self.flow = Some(name.clone());
        let setup = self.step_list(&s.setup, has_correlation, "sockets.setup");
        let steps = self.loop_steps(&s.steps, has_correlation, paced, "sockets.steps", s.name.span());
        self.flow = None;
        let reconnect = match &s.reconnect {
            None => Some(None),
            Some(r) => self.reconnect(Some(r)).map(Some),
        };
        Some(Socket {
            name,
            path: path?,
            setup: setup?.0,
            steps: steps?,
            reconnect: reconnect?,
        })
    }
}
