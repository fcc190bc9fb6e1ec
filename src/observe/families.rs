//! The series a run exposes at one moment, without the run's own labels (scenario, run id,
//! segment: those are added where the series leave the process). Workers of `run --workers`
//! hand theirs to the parent as JSON lines, and the parent adds them up.

use serde::{Deserialize, Serialize};

/// Upper bounds of the histogram buckets, in seconds, as the `le` label shows them (with
/// `+Inf` after the last). Chosen for WebSocket round trips: from 100 µs (a reply on loopback
/// or in one rack) through the milliseconds of a region and the hundreds of a continent, to
/// the seconds where requests time out and reconnects wait; the 1-2.5-5 steps keep a quantile
/// read from them within a factor of 2.5 across six decades, in 18 buckets.
pub const BUCKETS: [(f64, &str); 18] = [
    (0.0001, "0.0001"),
    (0.00025, "0.00025"),
    (0.0005, "0.0005"),
    (0.001, "0.001"),
    (0.0025, "0.0025"),
    (0.005, "0.005"),
    (0.01, "0.01"),
    (0.025, "0.025"),
    (0.05, "0.05"),
    (0.1, "0.1"),
    (0.25, "0.25"),
    (0.5, "0.5"),
    (1.0, "1.0"),
    (2.5, "2.5"),
    (5.0, "5.0"),
    (10.0, "10.0"),
    (30.0, "30.0"),
    (60.0, "60.0"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One series: its own labels (a cause, a step) and its value. A histogram's value is the
/// sum of what it observed, in seconds, with its cumulative bucket counts (one per
/// [`BUCKETS`] bound) and its count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(String, String)>,
    pub value: f64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A metric: its name (a counter's without `_total`), help and kind, and its series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub series: Vec<Series>,
}

impl Family {
    pub fn new(name: &str, help: &str, kind: Kind, series: Vec<Series>) -> Family {
        Family {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            series,
        }
    }

    /// Each sample of the family as both exposition formats and remote write have it: its
    /// name (a counter's with `_total`; a histogram's `_bucket` per bound and `+Inf`, `_sum`,
    /// `_count`), its series' own labels, its `le` if a bucket, and its value.
    pub fn each_sample(&self, mut f: impl FnMut(&str, &[(String, String)], Option<&str>, f64)) {
        let name = &self.name;
        let (total, bucket, sum, count) = (
            format!("{name}_total"),
            format!("{name}_bucket"),
            format!("{name}_sum"),
            format!("{name}_count"),
        );
        for s in &self.series {
            match self.kind {
                Kind::Counter => f(&total, &s.labels, None, s.value),
                Kind::Gauge => f(name, &s.labels, None, s.value),
                Kind::Histogram => {
                    for ((_, le), n) in BUCKETS.iter().zip(&s.buckets) {
                        f(&bucket, &s.labels, Some(le), *n as f64);
                    }
                    f(&bucket, &s.labels, Some("+Inf"), s.count as f64);
                    f(&sum, &s.labels, None, s.value);
                    f(&count, &s.labels, None, s.count as f64);
                }
            }
        }
    }
}

/// Every metric of a run at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Families {
    /// Seconds into the run's timeline.
    pub elapsed_s: f64,
    /// The run's end: the counts are final.
    pub last: bool,
    pub families: Vec<Family>,
}

impl Families {
    /// Several processes' series as one: the values of series with the same name and labels
    /// added up (counters, gauges, and histograms bucket by bucket), the others kept.
    pub fn sum<'a>(parts: impl IntoIterator<Item = &'a Families>) -> Families {
        let mut all = Families {
            last: true,
            ..Families::default()
        };
        let mut any = false;
        for part in parts {
            any = true;
            all.elapsed_s = all.elapsed_s.max(part.elapsed_s);
            all.last &= part.last;
            for family in &part.families {
                let Some(mine) = all.families.iter_mut().find(|f| f.name == family.name) else {
                    all.families.push(family.clone());
                    continue;
                };
                for series in &family.series {
                    match mine.series.iter_mut().find(|s| s.labels == series.labels) {
                        Some(s) => s.add(series),
                        None => mine.series.push(series.clone()),
                    }
                }
            }
        }
        all.last &= any;
        all
    }

    /// A process that ended without its last series (a worker that died): what it counted
    /// stays, but nothing of it is connected or under way any more.
    pub fn gone(&mut self) {
        for family in self.families.iter_mut().filter(|f| f.kind == Kind::Gauge) {
            for series in &mut family.series {
                series.value = 0.0;
            }
        }
        self.last = true;
    }

    /// The value of a counter or gauge series.
    #[cfg(test)]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.families
            .iter()
            .find(|f| f.name == name)?
            .series
            .iter()
            .find(|s| {
                s.labels.len() == labels.len()
                    && s.labels
                        .iter()
                        .zip(labels)
                        .all(|((k, v), (k2, v2))| k == k2 && v == v2)
            })
            .map(|s| s.value)
    }

    /// How many samples the series make (a histogram's buckets, +Inf, sum and count each).
    #[cfg(test)]
    pub fn samples(&self) -> u64 {
        let mut n = 0;
        for family in &self.families {
            family.each_sample(|_, _, _, _| n += 1);
        }
        n
    }
}

/// The `--workers` parent's sum of its workers' series, made once a second of the timeline:
/// when every worker still running has reached that second (a worker two seconds behind the
/// others holds them up no longer).
pub struct WorkerSum {
    /// Each worker's latest series (`last`: it has ended, with its last series or without).
    parts: Vec<Families>,
    published_s: f64,
}

impl WorkerSum {
    pub fn new(workers: usize) -> WorkerSum {
        WorkerSum {
            parts: vec![Families::default(); workers],
            // Second 0 is the start: nothing to show.
            published_s: 0.0,
        }
    }

    /// Worker `i`'s latest series; the sum when a second is complete.
    pub fn add(&mut self, i: usize, families: Families) -> Option<Families> {
        self.parts[i] = families;
        let newest = self.parts.iter().map(|p| p.elapsed_s.floor()).fold(0.0, f64::max);
        let running = self.parts.iter().filter(|p| !p.last).map(|p| p.elapsed_s.floor());
        let ready = running.fold(newest, f64::min).max(newest - 1.0);
        (ready > self.published_s).then(|| {
            self.published_s = ready;
            Families::sum(&self.parts)
        })
    }

    /// Worker `i` ended: a worker that died before its last series keeps its counts and
    /// loses its gauges. The sum, at once.
    pub fn gone(&mut self, i: usize) -> Option<Families> {
        if self.parts[i].last {
            return None;
        }
        self.parts[i].gone();
        Some(Families::sum(&self.parts))
    }

    /// The sum at the run's end.
    pub fn last(&self) -> Families {
        Families {
            last: true,
            ..Families::sum(&self.parts)
        }
    }
}

impl Series {
    pub fn plain(labels: Vec<(String, String)>, value: f64) -> Series {
        Series {
            labels,
            value,
            buckets: Vec::new(),
            count: 0,
        }
    }

    fn add(&mut self, other: &Series) {
        self.value += other.value;
        self.count += other.count;
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, kind: Kind, series: Vec<Series>) -> Family {
        Family::new(name, "h", kind, series)
    }

    fn at(elapsed_s: f64, requests: f64, last: bool) -> Families {
        Families {
            elapsed_s,
            last,
            families: vec![one(
                "wsstorm_requests",
                Kind::Counter,
                vec![Series::plain(vec![], requests)],
            )],
        }
    }

    #[test]
    fn the_workers_sum_waits_for_every_running_worker_and_drops_a_dead_ones_gauges() {
        let mut sum = WorkerSum::new(2);
        assert!(
            sum.add(0, at(1.0, 10.0, false)).is_none(),
            "worker 1 has not reached 1 s"
        );
        let first = sum.add(1, at(1.0, 5.0, false)).expect("both at 1 s");
        assert_eq!(first.value("wsstorm_requests", &[]), Some(15.0));
        assert!(sum.add(1, at(2.0, 9.0, false)).is_none());
        // Worker 0 stalls: two seconds behind, it no longer holds the sum up.
        assert!(sum.add(1, at(3.0, 12.0, false)).is_some());
        let mut dying = at(2.0, 20.0, false);
        dying.families.push(one(
            "wsstorm_connected",
            Kind::Gauge,
            vec![Series::plain(vec![], 4.0)],
        ));
        assert!(sum.add(0, dying).is_none());
        let after = sum.gone(0).expect("a death is published at once");
        assert_eq!(after.value("wsstorm_connected", &[]), Some(0.0));
        assert_eq!(after.value("wsstorm_requests", &[]), Some(32.0));
        assert!(
            sum.add(1, at(4.0, 14.0, false)).is_some(),
            "the dead one waits for nothing"
        );
        assert!(sum.add(1, at(4.2, 15.0, true)).is_none());
        assert!(sum.gone(1).is_none(), "ended with its last series");
        let last = sum.last();
        assert_eq!(
            (last.last, last.value("wsstorm_requests", &[])),
            (true, Some(35.0))
        );
    }

    #[test]
    fn sums_add_series_of_the_same_labels_and_keep_the_others() {
        let cause = |c: &str| vec![("cause".to_string(), c.to_string())];
        let a = Families {
            elapsed_s: 3.0,
            last: true,
            families: vec![
                one(
                    "wsstorm_requests",
                    Kind::Counter,
                    vec![Series::plain(vec![], 5.0)],
                ),
                one(
                    "wsstorm_drops",
                    Kind::Counter,
                    vec![Series::plain(cause("reset"), 2.0)],
                ),
            ],
        };
        let b = Families {
            elapsed_s: 4.0,
            last: false,
            families: vec![
                one(
                    "wsstorm_requests",
                    Kind::Counter,
                    vec![Series::plain(vec![], 7.0)],
                ),
                one(
                    "wsstorm_drops",
                    Kind::Counter,
                    vec![
                        Series::plain(cause("reset"), 1.0),
                        Series::plain(cause("close_1000"), 4.0),
                    ],
                ),
                one(
                    "wsstorm_rtt_seconds",
                    Kind::Histogram,
                    vec![Series {
                        labels: vec![],
                        value: 0.5,
                        buckets: vec![1, 2],
                        count: 2,
                    }],
                ),
            ],
        };
        let sum = Families::sum([&a, &b, &b]);
        assert_eq!((sum.elapsed_s, sum.last), (4.0, false));
        assert_eq!(sum.value("wsstorm_requests", &[]), Some(19.0));
        assert_eq!(sum.value("wsstorm_drops", &[("cause", "reset")]), Some(4.0));
        assert_eq!(sum.value("wsstorm_drops", &[("cause", "close_1000")]), Some(8.0));
        let rtt = &sum.families[2].series[0];
        assert_eq!((rtt.value, rtt.buckets.clone(), rtt.count), (1.0, vec![2, 4], 4));
        assert!(!Families::sum([]).last, "nothing summed is not a run's end");
        let mut dead = b.clone();
        dead.families.push(one(
            "wsstorm_connected",
            Kind::Gauge,
            vec![Series::plain(vec![], 9.0)],
        ));
        dead.gone();
        assert_eq!(dead.value("wsstorm_connected", &[]), Some(0.0));
        assert_eq!(dead.value("wsstorm_requests", &[]), Some(7.0), "its counts stay");
        assert!(dead.last);
        let line = serde_json::to_string(&sum).unwrap();
        assert_eq!(serde_json::from_str::<Families>(&line).unwrap(), sum);
    }
}
