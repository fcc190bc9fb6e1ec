//! Client-side chaos applied to the connection it hits: a reset, a close, a client gone silent
//! (half-open), pongs withheld.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::connection::Conn;
use super::state::ClientCtl;
use super::stream::Ws;
use super::stream::close;
use crate::metrics::DropCause;
use crate::scenario::ChaosHow;

impl Conn<'_> {
    /// Applies a chaos action to this connection: the drop it causes, if any.
    pub(super) async fn chaos(
        &mut self,
        ws: &mut Ws,
        how: ChaosHow,
        lasts: Option<Duration>,
        ctl: &ClientCtl,
    ) -> Result<(), DropCause> {
        let cause = Err(DropCause::Chaos(how));
        match how {
            ChaosHow::Reset => {
                // Zero linger: dropping the socket sends a TCP reset, not a FIN.
                let _ = ws.get_ref().inner.tcp().set_zero_linger();
                cause
            }
            ChaosHow::Close(code) => {
                close(ws, CloseCode::from(code)).await;
                cause
            }
            ChaosHow::NoPong => {
                ws.get_mut().drop_pongs = true;
                self.no_pong_until = Some(lasts.map(|d| Instant::now() + d));
                Ok(())
            }
            ChaosHow::Silent => {
                // Half-open: read and discard raw bytes (so pings go unanswered and nothing is
                // processed), send nothing, until the server gives up on us or `lasts` ends.
                let until = lasts.map(|d| Instant::now() + d);
                let mut scratch = [0u8; 512];
                let socket = &mut ws.get_mut().inner;
                loop {
                    tokio::select! {
                        _ = self.shared.halt.cancelled() => break,
                        _ = ctl.stop.cancelled() => break,
                        _ = sleep_until(until.unwrap_or_else(far_future)), if until.is_some() => break,
                        n = socket.read(&mut scratch) => if !matches!(n, Ok(1..)) { break },
                    }
                }
                cause
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
