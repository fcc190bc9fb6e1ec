//! `[[every]]`: sends on timers beside the step loop, once the setup is done. Their times are
//! on the heartbeat's grid, so that many connections' timers fire in one wake-up, and a
//! timer's request never holds up the loop.

use tokio::time::Instant;

use super::connection::{Conn, Cut};
use super::heart::ping_time;
use super::state::ClientState;
use super::stream::Ws;

impl Conn<'_> {
    /// Sends each timer's message whose time has come, and sets its next time.
    pub(super) async fn fire_timers(
        &mut self,
        ws: &mut Ws,
        state: &mut ClientState,
        now: Instant,
    ) -> Result<(), Cut> {
        let plan = &self.shared.plan;
        for (i, timer) in plan.timers.iter().enumerate() {
            let Some(due) = self
                .extra
                .as_mut()
                .and_then(|e| e.timers.as_mut())
                .map(|t| &mut t.0[i])
            else {
                return Ok(());
            };
            if *due > now {
                continue;
            }
            *due = ping_time(now, timer.every);
            let prepared = self.prepare(state, plan.timer_step(i), false);
            self.deliver(ws, prepared).await?;
        }
        Ok(())
    }
}
