//! One direction of one proxied connection: read from one socket, apply the faults active
//! now, write to the other. With no fault on, a chunk goes out as soon as it is read; with
//! latency, chunks wait in a queue stamped with their read time (order kept), so a delay does
//! not add up over a stream of messages.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;

use super::fault::{Active, Effects};
use crate::delay::DelayLine;
use crate::scenario::Direction;

/// Bytes read at once.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes read ahead and held for their delay; past this the proxy stops reading, and TCP
/// pushes back on the sender as a slow link would.
const QUEUE_CAP: usize = 256 * 1024;

/// How a direction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    /// The source closed cleanly; the close goes on after `slow_close`, if set.
    Eof(Option<Duration>),
    /// A read or write failed (reset or other error): both sides are reset.
    Broken,
    /// `limit_data` was reached: both sides are closed by reset.
    Limit,
    /// The connection was aborted (reset chaos, the other direction broke, shutdown).
    Aborted,
}

/// Which connection and direction a pump serves.
#[derive(Debug, Clone, Copy)]
pub(super) struct Way {
    pub conn: u64,
    pub way: Direction,
    pub seed: u64,
}

/// Moves bytes from `src` to `dst` until the source ends or `abort` fires. On anything but a
/// clean end, both sockets are reset (zero linger, no FIN), as a broken network path would.
pub(super) async fn pump(
    mut src: OwnedReadHalf,
    mut dst: OwnedWriteHalf,
    way: Way,
    faults: watch::Receiver<Arc<[Active]>>,
    abort: CancellationToken,
    bytes: &AtomicU64,
    delay: &DelayLine<()>,
) -> End {
    let end = tokio::select! {
        end = flow(&mut src, &mut dst, way, faults, bytes, delay) => end,
        _ = abort.cancelled() => End::Aborted,
    };
    let end = match end {
        End::Eof(Some(delay)) => tokio::select! {
            _ = sleep(delay) => end,
            _ = abort.cancelled() => End::Aborted,
        },
        other => other,
    };
    match end {
        End::Eof(_) => {
            let _ = dst.shutdown().await;
        }
        End::Limit => {
            // A close, as Toxiproxy's limit_data does: FIN after every byte up to the limit
            // (a reset could discard what the peer has not read yet); the other side is reset.
            let _ = dst.shutdown().await;
            abort.cancel();
        }
        End::Broken | End::Aborted => {
            abort.cancel();
            let _ = dst.as_ref().set_zero_linger();
            // No FIN on the way out: the socket closes (with RST) when its read half, held
            // by the other direction, is dropped too.
            dst.forget();
        }
    }
    end
}

async fn flow(
    src: &mut OwnedReadHalf,
    dst: &mut OwnedWriteHalf,
    way: Way,
    mut faults: watch::Receiver<Arc<[Active]>>,
    bytes: &AtomicU64,
    delay: &DelayLine<()>,
) -> End {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    // Wake-ups from the delay line when held chunks fall due (made on first use).
    let mut wake: Option<(UnboundedSender<()>, UnboundedReceiver<()>)> = None;
    let mut queued = 0usize;
    let mut last_due: Option<Instant> = None;
    let mut out = Out::new(way);
    let mut eof = false;
    loop {
        let fx = Effects::of(&faults.borrow_and_update(), way.seed, way.conn, way.way);
        if fx.hold {
            // Blackhole: neither read nor write until the faults change.
            if faults.changed().await.is_err() {
                return End::Aborted;
            }
            continue;
        }
        if eof && queue.is_empty() {
            return End::Eof(fx.slow_close);
        }
        let due = queue.front().map(|(at, _)| *at);
        let can_read = !eof && queued < QUEUE_CAP;
        tokio::select! {
            biased;
            _ = until_due(due, &mut wake), if due.is_some() => {
                if queue.front().is_some_and(|(at, _)| *at > Instant::now()) {
                    continue; // woken for a chunk already sent
                }
                let (_, data) = queue.pop_front().expect("a chunk is due");
                queued -= data.len();
                match out.deliver(dst, &data, &fx, bytes, Some(&mut faults)).await {
                    Err(end) => return end,
                    // The faults changed while it was paced: the rest goes out under the new ones.
                    Ok(Some(rest)) => {
                        queued += rest.len();
                        queue.push_front((Instant::now(), rest));
                    }
                    Ok(None) => {}
                }
            }
            // Only waited on while holding chunks, so an idle pass-through registers nothing.
            changed = faults.changed(), if due.is_some() => {
                if changed.is_err() {
                    return End::Aborted;
                }
            }
            ready = src.readable(), if can_read => {
                if ready.is_err() {
                    return End::Broken;
                }
                // The faults may have changed while this side waited for bytes (a version check:
                // an unchanged set costs no second read).
                let fx = if faults.has_changed().unwrap_or(false) {
                    Effects::of(&faults.borrow_and_update(), way.seed, way.conn, way.way)
                } else {
                    fx
                };
                let immediate = queue.is_empty() && fx.immediate();
                let rest = match read_chunk(src, immediate.then_some(&*dst)) {
                    Ok(Read::Eof) => {
                        eof = true;
                        continue;
                    }
                    Ok(Read::Passed(n)) => {
                        bytes.fetch_add(n as u64, Relaxed);
                        out.total += n as u64;
                        continue;
                    }
                    Ok(Read::Held { passed, rest }) => {
                        bytes.fetch_add(passed as u64, Relaxed);
                        out.total += passed as u64;
                        rest
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(_) => return End::Broken,
                };
                if immediate {
                    if let Err(end) = out.deliver(dst, &rest, &fx, bytes, None).await {
                        return end;
                    }
                } else {
                    let mut at = Instant::now().checked_add(out.delay(&fx)).unwrap_or_else(far_future);
                    if let Some(last) = last_due {
                        at = at.max(last);
                    }
                    last_due = Some(at);
                    if at > Instant::now() {
                        let (tx, _) = wake.get_or_insert_with(unbounded_channel);
                        delay.send_at(at.into_std(), (), tx.clone());
                    }
                    queued += rest.len();
                    queue.push_back((at, rest));
                }
            }
        }
    }
}

/// Waits until `due`: at once when it has passed, else for the delay line's wake-up (accurate
/// to tens of microseconds, where a tokio sleep rounds up to the next millisecond).
async fn until_due(due: Option<Instant>, wake: &mut Option<(UnboundedSender<()>, UnboundedReceiver<()>)>) {
    let Some(due) = due else { return };
    if due <= Instant::now() {
        return;
    }
    match wake {
        Some((_, rx)) => {
            rx.recv().await;
        }
        None => sleep_until(due).await,
    }
}

thread_local! {
    /// Each worker thread's read buffer: an idle connection holds none, and a read does not
    /// zero 16 KiB first.
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(READ_CHUNK));
}

enum Read {
    Eof,
    /// This many bytes were read and written on at once.
    Passed(usize),
    /// `passed` bytes were written on at once; `rest` not yet.
    Held {
        passed: usize,
        rest: Vec<u8>,
    },
}

/// A time no fault reaches (a delay too long to add to now).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

/// Reads what is there now; with `pass_to`, writes as much of it on as the socket takes
/// without waiting, and keeps only the rest.
fn read_chunk(src: &OwnedReadHalf, pass_to: Option<&OwnedWriteHalf>) -> io::Result<Read> {
    READ_BUF.with_borrow_mut(|buf| {
        buf.clear();
        let n = src.try_read_buf(buf)?;
        if n == 0 {
            return Ok(Read::Eof);
        }
        let written = match pass_to.map(|dst| dst.try_write(buf)) {
            None => 0,
            Some(Ok(w)) => w,
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => 0,
            // A broken destination: reported by the write that follows.
            Some(Err(_)) => 0,
        };
        Ok(if written == n {
            Read::Passed(n)
        } else {
            Read::Held {
                passed: written,
                rest: buf[written..].to_vec(),
            }
        })
    })
}

/// The writing side's state: bandwidth pacing, bytes passed, `limit_data` baselines.
struct Out {
    rng: SmallRng,
    /// Earliest time the next paced write may go out.
    next_at: Option<Instant>,
    total: u64,
    /// Bytes passed when each `limit_data` fault (by id) was first seen.
    limit_bases: Vec<(u64, u64)>,
}

impl Out {
    fn new(way: Way) -> Self {
        let stream = match way.way {
            Direction::Upstream => 1,
            _ => 2,
        };
        Self {
            rng: SmallRng::seed_from_u64(way.seed ^ way.conn.rotate_left(17) ^ stream),
            next_at: None,
            total: 0,
            limit_bases: Vec::new(),
        }
    }

    /// The delay for a chunk read now: the added latency ± a uniform jitter, never negative.
    fn delay(&mut self, fx: &Effects) -> Duration {
        if fx.jitter.is_zero() {
            return fx.add;
        }
        let jitter = fx.jitter.as_micros() as i64;
        let us = fx.add.as_micros() as i64 + self.rng.random_range(-jitter..=jitter);
        Duration::from_micros(us.max(0) as u64)
    }

    /// Writes `data` under the effects `fx`: cut by the slicer, paced by the bandwidth, up to
    /// the limit. With `faults`, stops between pieces when the faults change and returns what
    /// is left to send.
    async fn deliver(
        &mut self,
        dst: &mut OwnedWriteHalf,
        data: &[u8],
        fx: &Effects,
        bytes: &AtomicU64,
        mut faults: Option<&mut watch::Receiver<Arc<[Active]>>>,
    ) -> Result<Option<Vec<u8>>, End> {
        let mut data = data;
        let mut limited = false;
        if let Some((id, limit)) = fx.limit {
            let base = match self.limit_bases.iter().find(|(i, _)| *i == id) {
                Some(&(_, base)) => base,
                None => {
                    self.limit_bases.push((id, self.total));
                    self.total
                }
            };
            let left = base.saturating_add(limit).saturating_sub(self.total);
            if data.len() as u64 >= left {
                data = &data[..left as usize];
                limited = true;
            }
        }
        let mut first = true;
        while !data.is_empty() {
            if !first && faults.as_mut().is_some_and(|f| f.has_changed().unwrap_or(false)) {
                return Ok(Some(data.to_vec()));
            }
            let mut n = data.len();
            if let Some((average, variation, delay)) = fx.slicer {
                if !first && !delay.is_zero() {
                    sleep(delay).await;
                }
                let lo = average.saturating_sub(variation).max(1);
                n = n.min(
                    self.rng
                        .random_range(lo..=average.saturating_add(variation).max(lo)),
                );
            }
            if let Some(rate) = fx.bytes_per_s {
                // Small writes, each sent when the link would have carried the last one.
                n = n.min((rate / 20).max(1) as usize);
                let now = Instant::now();
                let at = self.next_at.map_or(now, |t| t.max(now));
                if at > now {
                    sleep_until(at).await;
                }
                self.next_at = Some(at + Duration::from_secs_f64(n as f64 / rate as f64));
            }
            dst.write_all(&data[..n]).await.map_err(|_| End::Broken)?;
            bytes.fetch_add(n as u64, Relaxed);
            self.total += n as u64;
            data = &data[n..];
            first = false;
        }
        if limited {
            return Err(End::Limit);
        }
        Ok(None)
    }
}
