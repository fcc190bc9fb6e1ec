//! `wsstorm merge DIR… --out DIR`: the results directories of a scenario's segments (shards)
//! made into one, exactly. Counts add; HDR histograms merge losslessly; time series add up
//! second by second on the shared timeline (latency percentile columns take the worst shard,
//! as percentiles do not add); connection events interleave by time; then the scenario's
//! thresholds are judged on the merged totals and the merged reports are written.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use super::summary::{CountStats, LatencyStats, Outcome, Summary, ThresholdResult};
use super::{CONNECTIONS, TIMESERIES};
use crate::metrics::{Latency, Totals};
use crate::scenario::segment::Segment;
use crate::scenario::threshold::{Metric, Threshold};

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Refused(String),
}

/// What a merge produced.
pub struct Merged {
    pub summary: Summary,
    /// Segments of the scenario no directory held (a partial merge).
    pub missing: Vec<Segment>,
}

impl Merged {
    /// The exit code its outcome calls for (a missing segment is the caller's to judge).
    pub fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self.summary.outcome {
            Outcome::Passed => Exit::Success,
            Outcome::ThresholdsCrossed => Exit::ThresholdsCrossed,
            Outcome::Interrupted => Exit::Interrupted,
            Outcome::RunFailed => Exit::RunFailed,
        }
    }
}

/// Merges the shards in `dirs` into `out`.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Merged, MergeError> {
    let refuse = |m: String| Err(MergeError::Refused(m));
    if dirs.is_empty() {
        return refuse("nothing to merge: expected the results directories of a scenario's segments".into());
    }
    let shards: Vec<Summary> = dirs
        .iter()
        .map(|d| super::read_summary(d))
        .collect::<Result<_, _>>()?;
    let first = &shards[0];
    let mut seen = BTreeSet::new();
    let mut count = None;
    for (dir, s) in dirs.iter().zip(&shards) {
        if s.scenario != first.scenario || s.planned_duration_s != first.planned_duration_s {
            return refuse(format!(
                "{} is a run of {:?} ({} s), not of {:?} ({} s) like {}: only segments of one scenario merge",
                dir.display(),
                s.scenario,
                s.planned_duration_s,
                first.scenario,
                first.planned_duration_s,
                dirs[0].display()
            ));
        }
        let Some(seg) = s.segment else {
            return refuse(format!(
                "{} is not a segment (it ran the whole scenario): expected directories of runs with --segment",
                dir.display()
            ));
        };
        if *count.get_or_insert(seg.count) != seg.count {
            return refuse(format!(
                "{} is segment {seg}, but the others split the scenario in {}",
                dir.display(),
                count.unwrap_or_default()
            ));
        }
        if !seen.insert(seg.index) {
            return refuse(format!(
                "segment {seg} appears twice (again in {}): segments overlap",
                dir.display()
            ));
        }
    }
    let count = count.expect("at least one shard");
    let missing: Vec<Segment> = (0..count)
        .filter(|i| !seen.contains(i))
        .map(|index| Segment { index, count })
        .collect();

    std::fs::create_dir_all(out)?;
    let summary = merge_summaries(&shards)?;
    merge_timeseries(dirs, &out.join(TIMESERIES))?;
    merge_connections(dirs, &out.join(CONNECTIONS))?;
    super::write_reports(out, &summary)?;
    Ok(Merged { summary, missing })
}

fn merge_summaries(shards: &[Summary]) -> Result<Summary, MergeError> {
    let bad = |e: String| MergeError::Refused(format!("a shard's summary.json is damaged: {e}"));
    let mut merged = shards[0].clone();
    merged.counts = shards.iter().skip(1).fold(shards[0].counts, |a, s| a + s.counts);
    for map in [&mut merged.connect_errors, &mut merged.drops] {
        map.clear();
    }
    let mut latency: BTreeMap<String, Latency> = BTreeMap::new();
    let mut attempts = Latency::new();
    for s in shards {
        for (k, v) in &s.connect_errors {
            *merged.connect_errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &s.drops {
            *merged.drops.entry(k.clone()).or_default() += v;
        }
        for (name, stats) in &s.latency {
            latency
                .entry(name.clone())
                .or_default()
                .merge(&Latency::decode(&stats.histogram).map_err(bad)?);
        }
        attempts.merge(&Latency::decode(&s.reconnect_attempts.histogram).map_err(bad)?);
    }
    merged.latency = latency
        .iter()
        .map(|(k, h)| (k.clone(), LatencyStats::of(h)))
        .collect();
    merged.reconnect_attempts = CountStats::of(&attempts);

    // The thresholds, judged again on the merged totals.
    let mut totals = Totals {
        counts: merged.counts,
        reconnect_attempts: attempts,
        ..Totals::default()
    };
    for (name, slot) in totals.latencies_mut() {
        if let Some(h) = latency.get(name) {
            *slot = h.clone();
        }
    }
    let thresholds: Vec<Threshold> = shards[0]
        .thresholds
        .iter()
        .map(|t| {
            Metric::from_name(&t.metric)
                .ok_or_else(|| format!("unknown metric {:?}", t.metric))
                .and_then(|m| Threshold::parse(m, &t.expression))
        })
        .collect::<Result<_, _>>()
        .map_err(bad)?;
    let verdicts = totals.verdicts(&thresholds);
    merged.thresholds = verdicts.iter().map(ThresholdResult::of).collect();

    let c = &merged.counts;
    merged.elapsed_s = shards.iter().map(|s| s.elapsed_s).fold(0.0, f64::max);
    merged.rates.timeout_rate = c.timeout_rate();
    merged.rates.error_rate = c.error_rate();
    merged.rates.requests_per_s = if merged.elapsed_s > 0.0 {
        c.requests as f64 / merged.elapsed_s
    } else {
        0.0
    };
    merged.started_at = shards
        .iter()
        .map(|s| s.started_at.clone())
        .min()
        .unwrap_or_default();
    merged.peak_clients = shards.iter().map(|s| s.peak_clients).sum();
    merged.segment = None;
    merged.late_start_s = shards.iter().filter_map(|s| s.late_start_s).reduce(f64::max);
    merged.aborted = shards.iter().find_map(|s| s.aborted.clone());
    merged.outcome = if shards.iter().any(|s| s.outcome == Outcome::Interrupted) {
        Outcome::Interrupted
    } else if c.connects == 0 && merged.peak_clients > 0 {
        Outcome::RunFailed
    } else if merged.aborted.is_some() || verdicts.iter().any(|v| !v.passed) {
        Outcome::ThresholdsCrossed
    } else {
        Outcome::Passed
    };
    // Per-shard figures: kept side by side (recovery per shard), or summed where they add.
    merged.recovery = shards.iter().flat_map(|s| s.recovery.clone()).collect();
    merged.exec = shards.iter().flat_map(|s| s.exec.clone()).collect();
    merged.embedded_server = None;
    merged.proxy = None;
    Ok(merged)
}

/// Adds the shards' time series row by row (second by second on the shared timeline).
/// A shard's rows are put on the whole second whose tick they are: a tick fires at or after its
/// second (late when the process was starved; a tick more than a second late replaced the next
/// one), so it is the second the row ends in. The last, partial row takes the second after the
/// one before it. Rows of the same second add up across shards.
fn merge_timeseries(dirs: &[PathBuf], out: &Path) -> io::Result<()> {
    let mut header: Option<csv::StringRecord> = None;
    let mut rows: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for dir in dirs {
        let mut reader = csv::Reader::from_path(dir.join(TIMESERIES)).map_err(io::Error::other)?;
        let h = reader.headers().map_err(io::Error::other)?.clone();
        if header.as_ref().is_some_and(|first| *first != h) {
            return Err(io::Error::other(format!(
                "{}: its columns differ from the other shards'",
                dir.join(TIMESERIES).display()
            )));
        }
        let at = h.iter().position(|name| name == "elapsed_s").ok_or_else(|| {
            io::Error::other(format!("{}: no elapsed_s column", dir.join(TIMESERIES).display()))
        })?;
        let mut previous: Option<u64> = None;
        for record in reader.records() {
            let record = record.map_err(io::Error::other)?;
            let elapsed: f64 = record[at].parse().unwrap_or(0.0);
            let second = ((elapsed + 1e-6).floor() as u64).max(previous.map_or(0, |p| p + 1));
            previous = Some(second);
            let row = rows.entry(second).or_insert_with(|| vec![String::new(); h.len()]);
            for (col, (name, value)) in h.iter().zip(record.iter()).enumerate() {
                row[col] = combine(name, &row[col], value);
            }
        }
        header = Some(h);
    }
    let mut w = csv::Writer::from_path(out).map_err(io::Error::other)?;
    if let Some(h) = header {
        w.write_record(&h)?;
    }
    for row in rows.values() {
        w.write_record(row)?;
    }
    w.flush()
}

/// One cell of the merged time series from the merged-so-far cell and a shard's.
fn combine(column: &str, so_far: &str, value: &str) -> String {
    if so_far.is_empty() {
        return value.to_string();
    }
    let num = |s: &str| s.parse::<f64>().unwrap_or(0.0);
    match column {
        "chaos" => {
            let mut names: BTreeSet<&str> = so_far.split_whitespace().collect();
            names.extend(value.split_whitespace());
            names.into_iter().collect::<Vec<_>>().join(" ")
        }
        "elapsed_s" => format!("{}", num(so_far).max(num(value))),
        c if c.starts_with("rtt_") => format!("{}", num(so_far).max(num(value))),
        _ => format!("{}", num(so_far) + num(value)),
    }
}

/// All shards' connection events, in time order.
fn merge_connections(dirs: &[PathBuf], out: &Path) -> io::Result<()> {
    let mut header = None;
    let mut rows: Vec<(f64, csv::StringRecord)> = Vec::new();
    for dir in dirs {
        let mut reader = csv::Reader::from_path(dir.join(CONNECTIONS)).map_err(io::Error::other)?;
        header = Some(reader.headers().map_err(io::Error::other)?.clone());
        for record in reader.records() {
            let record = record.map_err(io::Error::other)?;
            let t = record.get(0).and_then(|t| t.parse().ok()).unwrap_or(0.0);
            rows.push((t, record));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut w = csv::Writer::from_path(out).map_err(io::Error::other)?;
    if let Some(h) = header {
        w.write_record(&h)?;
    }
    for (_, record) in rows {
        w.write_record(&record)?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rows: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join(TIMESERIES),
            format!("elapsed_s,connected,connects,rtt_p99_ms\n{rows}"),
        )
        .unwrap();
    }

    /// A starved shard's late rows (and the one it skipped) still land on their seconds.
    #[test]
    fn time_series_rows_meet_on_their_seconds() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        write(
            &a,
            "1.001,10,10,1.5\n2.002,20,10,1.0\n3.001,30,10,2.0\n4.001,40,10,1.0\n4.5,40,0,1.0\n",
        );
        // b: second 2's tick came 0.9 s late and second 3's came 1.2 s late (replacing it).
        write(&b, "1.003,5,5,3.0\n2.9,10,5,1.0\n4.2,20,10,9.0\n4.5,20,0,1.0\n");
        let out = tmp.path().join("merged.csv");
        merge_timeseries(&[a, b], &out).unwrap();
        let text = std::fs::read_to_string(out).unwrap();
        let rows: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            rows,
            [
                "1.003,15,15,3",
                "2.9,30,15,1",
                "3.001,30,10,2.0",
                "4.2,60,20,9",
                "4.5,60,0,1",
            ]
        );
    }
}
