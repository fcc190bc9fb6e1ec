//! A run watched live where people already look: its counters, gauges and histograms served
//! for Prometheus to scrape (`--metrics-listen`) and written to a Prometheus remote-write
//! receiver (`--metrics-out prometheus-rw=URL`), every series labelled with the scenario, the
//! run id and the segment, so that shards add up in PromQL.
//!
//! The collector hands its totals to a [`Feed`] at each one-second tick; the feed turns them
//! into [`Families`] and publishes them to the scrape endpoint and the remote writer (a
//! `watch` channel: neither can hold the collector up), or, in a worker of `run --workers`,
//! to the parent as a JSON line on stdout; the parent adds its workers' up and publishes the
//! sum.

pub mod build;
pub mod families;
pub mod listen;
pub mod prompb;
pub mod receiver;
pub mod remote;
pub mod text;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use families::{Families, WorkerSum};
use listen::{Exposed, Listener};
pub use remote::Receiver;

use crate::metrics::collector::Watch;
use crate::metrics::{LiveExport, RemoteWriteReport, Totals};
use crate::scenario::Plan;
use crate::scenario::segment::Segment;

/// What the command line asked of the live export.
#[derive(Debug, Clone)]
pub struct Options {
    pub listen: Option<SocketAddr>,
    pub remote_write: Option<Receiver>,
    /// How often the remote write sends (whole seconds of the run's timeline).
    pub interval: Duration,
    /// The `run_id` label; by default the results directory's name.
    pub run_id: Option<String>,
    /// A worker of `run --workers`: its series go to the parent, which exports the sum.
    pub to_parent: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            listen: None,
            remote_write: None,
            interval: Duration::from_secs(1),
            run_id: None,
            to_parent: false,
        }
    }
}

impl Options {
    /// Whether this process serves or writes anything itself: not a worker, whose series go
    /// to its parent, which exports the sum (a WSSTORM_METRICS_OUT the worker inherited would
    /// count them twice).
    pub fn exports(&self) -> bool {
        !self.to_parent && (self.listen.is_some() || self.remote_write.is_some())
    }
}

/// `--metrics-out`: `prometheus-rw=URL`.
pub fn parse_out(text: &str) -> Result<Receiver, String> {
    match text.split_once('=') {
        Some(("prometheus-rw", url)) => Receiver::parse(url),
        _ => Err(
            "expected prometheus-rw=URL (e.g. prometheus-rw=http://127.0.0.1:9090/api/v1/write)".to_string(),
        ),
    }
}

/// `--metrics-interval`: a whole number of seconds, at least one (the totals are taken once a
/// second).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = crate::units::duration::parse(text)?;
    if d < Duration::from_secs(1) || d.subsec_nanos() != 0 {
        return Err(format!(
            "{text:?}: expected whole seconds, at least 1s (e.g. 1s, 15s)"
        ));
    }
    Ok(d)
}

/// The labels every series carries: scenario, run id, segment (`0/1` for a whole run).
pub fn labels(scenario: &str, run_id: &str, segment: Option<Segment>) -> Vec<(String, String)> {
    let segment = segment.map_or_else(|| "0/1".to_string(), |s| format!("{}/{}", s.index, s.count));
    vec![
        ("scenario".into(), crate::redact::text(scenario).into_owned()),
        ("run_id".into(), crate::redact::text(run_id).into_owned()),
        ("segment".into(), segment),
    ]
}

/// The export of one process: the scrape endpoint and the remote writer, fed by `publish`.
pub struct Live {
    latest: Arc<watch::Sender<Arc<Families>>>,
    listener: Option<Listener>,
    remote: Option<JoinHandle<RemoteWriteReport>>,
    end: remote::End,
}

impl Live {
    /// Binds the scrape address `options` ask for, if any: first, so that one that cannot be
    /// had stops the run before anything is sent or written.
    pub fn bind(options: &Options) -> Result<Option<std::net::TcpListener>, String> {
        if !options.exports() {
            return Ok(None);
        }
        options
            .listen
            .map(|addr| {
                Listener::bind(addr).map_err(|e| format!("--metrics-listen {addr}: {e} (nothing was sent)"))
            })
            .transpose()
    }

    /// Serves scrapes on `bound` and starts the remote writer; None when neither was asked.
    pub fn start(
        options: &Options,
        bound: Option<std::net::TcpListener>,
        common: Vec<(String, String)>,
        warn: Box<dyn Fn(String) + Send>,
    ) -> std::io::Result<Option<Live>> {
        if !options.exports() {
            return Ok(None);
        }
        let common = Arc::new(common);
        let (tx, rx) = watch::channel(Arc::new(Families::default()));
        let listener = match bound {
            Some(bound) => Some(Listener::serve(
                bound,
                Exposed {
                    latest: rx.clone(),
                    common: common.clone(),
                },
            )?),
            None => None,
        };
        let end = remote::End::default();
        let remote = options.remote_write.clone().map(|to| {
            tokio::spawn(remote::write(
                rx,
                common,
                to,
                options.interval,
                (warn, end.clone()),
            ))
        });
        Ok(Some(Live {
            latest: Arc::new(tx),
            listener,
            remote,
            end,
        }))
    }

    /// Where scrapes are served.
    pub fn listening(&self) -> Option<SocketAddr> {
        self.listener.as_ref().map(|l| l.addr)
    }

    pub fn publish(&self, families: Families) {
        self.latest.send_replace(Arc::new(families));
    }

    /// The feed of this process's collector.
    pub fn feed(&self, plan: &Plan) -> Box<dyn Watch> {
        Box::new(Feed::new(plan, Sink::Publish(self.latest.clone())))
    }

    /// Waits for the remote writer to deliver what it can (a few seconds at most, none once
    /// `halt` is cancelled: a second Ctrl-C) and stops serving scrapes.
    pub async fn finish(self, halt: &CancellationToken) -> LiveExport {
        let listen = self.listening().map(|a| a.to_string());
        self.end.soon.cancel();
        let remote_write = match self.remote {
            Some(mut task) => {
                tokio::select! {
                    done = &mut task => done.ok(),
                    () = halt.cancelled() => {
                        self.end.now.cancel();
                        task.await.ok()
                    }
                }
            }
            None => None,
        };
        if let Some(listener) = self.listener {
            listener.shutdown().await;
        }
        LiveExport { listen, remote_write }
    }
}

/// Where a feed's series go.
enum Sink {
    Publish(Arc<watch::Sender<Arc<Families>>>),
    /// A worker's stdout, read by the parent.
    Parent(Box<dyn Fn(&str) + Send>),
}

/// Turns the collector's totals into series each second.
pub struct Feed {
    load: crate::scenario::Load,
    segment: Option<Segment>,
    planned: Duration,
    chaos: Vec<build::ChaosFired>,
    sink: Sink,
}

impl Feed {
    fn new(plan: &Plan, sink: Sink) -> Feed {
        Feed {
            load: plan.load.clone(),
            segment: plan.segment,
            planned: plan.duration,
            chaos: Vec::new(),
            sink,
        }
    }

    /// The feed of a worker of `run --workers`: a [`worker_line`] on `line` each second.
    pub fn to_parent(plan: &Plan, line: Box<dyn Fn(&str) + Send>) -> Box<dyn Watch> {
        Box::new(Feed::new(plan, Sink::Parent(line)))
    }
}

impl Watch for Feed {
    fn chaos(&mut self, index: u32, name: &'static str) {
        match self.chaos.iter_mut().find(|a| a.index == index) {
            Some(a) => a.times += 1,
            None => self.chaos.push(build::ChaosFired {
                name,
                index,
                times: 1,
            }),
        }
    }

    fn tick(&mut self, totals: &Totals, elapsed: Duration, last: bool) {
        let target = self.load.target_of(elapsed, self.planned, self.segment);
        let families = build::families(totals, target, &self.chaos, elapsed.as_secs_f64(), last);
        match &self.sink {
            Sink::Publish(tx) => {
                tx.send_replace(Arc::new(families));
            }
            Sink::Parent(line) => line(&worker_line(&families)),
        }
    }
}

/// A worker's series as one line for its parent.
pub fn worker_line(families: &Families) -> String {
    serde_json::json!({ "metrics": families }).to_string()
}

/// A worker's line of series, if `line` is one.
pub fn read_worker_line(line: &str) -> Option<Families> {
    #[derive(serde::Deserialize)]
    struct Line {
        metrics: Families,
    }
    if !line.starts_with("{\"metrics\":") {
        return None;
    }
    serde_json::from_str::<Line>(line).ok().map(|l| l.metrics)
}
