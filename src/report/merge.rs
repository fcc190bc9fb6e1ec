//! `wsstorm merge DIR… --out DIR`: the results directories of a scenario's segments (shards)
//! made into one, exactly. Counts add; HDR histograms merge losslessly; time series add up
//! second by second on the shared timeline (latency percentile columns take the worst shard,
//! as percentiles do not add); connection events interleave by time; then the scenario's
//! thresholds are judged on the merged totals and the merged reports are written.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use super::summary::{CountStats, LatencyStats, Outcome, Summary, ThresholdResult};
use super::{CONNECTIONS, TIMESERIES, by_step};
use crate::metrics::steps::Steps;
use crate::metrics::{Latency, Totals};
use crate::scenario::segment::Segment;
use crate::scenario::threshold::Threshold;

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

/// What the output directory of a merge may hold beforehand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutDir {
    /// Nothing (`wsstorm merge --out`): results are never mixed with another run's.
    Empty,
    /// Anything, emptied first (`--force`).
    Emptied,
    /// The caller's directory (`run --workers`, whose workers' results are under workers/).
    Owned,
}

/// Merges the shards in `dirs` into `out`.
pub fn merge(dirs: &[PathBuf], out: &Path, out_dir: OutDir) -> Result<Merged, MergeError> {
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

    // Everything is read (and every missing or damaged file named) before anything is
    // written: a merge that fails leaves no half-written output.
    let summary = merge_summaries(&shards)?;
    let series = merge_timeseries(dirs)?;
    let connections = merge_connections(dirs)?;
    let prepared = match out_dir {
        OutDir::Owned => std::fs::create_dir_all(out),
        OutDir::Empty | OutDir::Emptied => super::prepare_out(out, out_dir == OutDir::Emptied),
    };
    prepared.map_err(|e| match e.kind() {
        io::ErrorKind::DirectoryNotEmpty => MergeError::Refused(format!("--out {e}")),
        _ => MergeError::Io(super::on_file(out)(e)),
    })?;
    let written = write_table(&out.join(TIMESERIES), &series)
        .and_then(|()| write_table(&out.join(CONNECTIONS), &connections))
        .and_then(|()| super::write_reports(out, &summary));
    if let Err(e) = written {
        for file in [TIMESERIES, CONNECTIONS] {
            let _ = std::fs::remove_file(out.join(file));
        }
        return Err(e.into());
    }
    Ok(Merged { summary, missing })
}

/// The segments a partial merge lacks, for a message: the first few and how many more.
pub fn missing_list(missing: &[Segment]) -> String {
    const SHOWN: usize = 20;
    let mut list: Vec<String> = missing.iter().take(SHOWN).map(ToString::to_string).collect();
    if missing.len() > SHOWN {
        list.push(format!("and {} more", missing.len() - SHOWN));
    }
    list.join(", ")
}

/// A CSV file: its header and rows, in memory.
type Table = (Option<csv::StringRecord>, Vec<csv::StringRecord>);

fn write_table(path: &Path, (header, rows): &Table) -> io::Result<()> {
    let write = || -> io::Result<()> {
        let mut w = csv::Writer::from_path(path).map_err(io::Error::other)?;
        if let Some(h) = header {
            w.write_record(h)?;
        }
        for row in rows {
            w.write_record(row)?;
        }
        w.flush()
    };
    write().map_err(super::on_file(path))
}

/// A shard's CSV file, its errors naming it.
fn reader(path: &Path) -> io::Result<csv::Reader<std::fs::File>> {
    let file = std::fs::File::open(path).map_err(super::on_file(path))?;
    Ok(csv::Reader::from_reader(file))
}

fn damaged(path: &Path) -> impl Fn(csv::Error) -> io::Error + '_ {
    move |e| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {e}", path.display()))
}

fn merge_summaries(shards: &[Summary]) -> Result<Summary, MergeError> {
    let bad = |e: String| MergeError::Refused(format!("a shard's summary.json is damaged: {e}"));
    let mut merged = shards[0].clone();
    merged.counts = shards.iter().skip(1).fold(shards[0].counts, |a, s| a + s.counts);
    for map in [
        &mut merged.connect_errors,
        &mut merged.drops,
        &mut merged.counters,
        &mut merged.gave_up_causes,
        &mut merged.stopped_causes,
        &mut merged.http_errors,
    ] {
        map.clear();
    }
    let mut latency: BTreeMap<String, Latency> = BTreeMap::new();
    let mut attempts = Latency::new();
    let mut steps = Steps::default();
    for s in shards {
        add_by_name(&mut merged, s);
        for (name, stats) in &s.latency {
            latency
                .entry(name.clone())
                .or_default()
                .merge(&Latency::decode(&stats.histogram).map_err(bad)?);
        }
        attempts.merge(&Latency::decode(&s.reconnect_attempts.histogram).map_err(bad)?);
        by_step::merge_into(&mut steps, &s.by_step).map_err(bad)?;
    }
    merged.latency = latency
        .iter()
        .map(|(k, h)| (k.clone(), LatencyStats::of(h)))
        .collect();
    merged.reconnect_attempts = CountStats::of(&attempts);
    merged.by_step = by_step::of(&steps);
    merge_groups(&mut merged, shards, &steps);

    // The thresholds, judged again on the merged totals.
    let mut totals = Totals {
        counts: merged.counts,
        reconnect_attempts: attempts,
        connect_errors: merged
            .connect_errors
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, *v)))
            .collect(),
        drops: merged
            .drops
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, *v)))
            .collect(),
        counters: merged.counters.clone(),
        gave_up_causes: merged.gave_up_causes.clone(),
        stopped_causes: merged.stopped_causes.clone(),
        http_errors: merged.http_errors.clone(),
        steps,
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
        .map(|t| Threshold::parse_keyed(&t.metric, &t.expression))
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
    // Each shard's export is its own (in its summary).
    merged.live_metrics = None;
    Ok(merged)
}

/// The flows' and sockets' tables of the merged summary: their clients and connections add,
/// their requests are the merged steps named after them.
fn merge_groups(merged: &mut Summary, shards: &[Summary], steps: &Steps) {
    let mut clients: BTreeMap<String, u64> = BTreeMap::new();
    for s in shards {
        for (flow, f) in &s.by_flow {
            *clients.entry(flow.clone()).or_default() += f.clients;
        }
    }
    merged.by_flow = by_step::flows(steps, &clients);
    for (name, socket) in merged.by_socket.iter_mut() {
        let others = shards.iter().skip(1).filter_map(|s| s.by_socket.get(name));
        let (clients, connects, drops) = others
            .fold((socket.clients, socket.connects, socket.drops), |(a, b, c), o| {
                (a + o.clients, b + o.connects, c + o.drops)
            });
        let t = steps.flow(name).unwrap_or_default();
        *socket = by_step::SocketSummary {
            clients,
            connects,
            drops,
            counts: t.counts,
            rtt: LatencyStats::of(&t.rtt),
        };
    }
}

/// Adds a shard's counts by name (causes, counters) into `merged`, and its reasons for causes
/// `merged` has none for yet (the first shard's message of each cause, then the others').
fn add_by_name(merged: &mut Summary, s: &Summary) {
    for (into, from) in [
        (&mut merged.connect_errors, &s.connect_errors),
        (&mut merged.drops, &s.drops),
        (&mut merged.counters, &s.counters),
        (&mut merged.gave_up_causes, &s.gave_up_causes),
        (&mut merged.stopped_causes, &s.stopped_causes),
        (&mut merged.http_errors, &s.http_errors),
    ] {
        for (k, v) in from {
            *into.entry(k.clone()).or_default() += v;
        }
    }
    for (into, from) in [
        (&mut merged.connect_error_reasons, &s.connect_error_reasons),
        (&mut merged.drop_reasons, &s.drop_reasons),
        (&mut merged.counter_examples, &s.counter_examples),
    ] {
        for (k, why) in from {
            into.entry(k.clone()).or_insert_with(|| why.clone());
        }
    }
}

/// Adds the shards' time series row by row (second by second on the shared timeline).
///
/// A shard's rows are put on the whole second whose tick they are: a tick fires at or after its
/// second (late when the process was starved; a tick more than a second late replaced the next
/// one), so it is the second the row ends in. The last, partial row takes the second after the
/// one before it. Rows of the same second add up across shards.
fn merge_timeseries(dirs: &[PathBuf]) -> io::Result<Table> {
    let mut header: Option<csv::StringRecord> = None;
    let mut rows: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for dir in dirs {
        let path = dir.join(TIMESERIES);
        let mut reader = reader(&path)?;
        let h = reader.headers().map_err(damaged(&path))?.clone();
        if header.as_ref().is_some_and(|first| *first != h) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: its columns differ from the other shards'", path.display()),
            ));
        }
        let at = h.iter().position(|name| name == "elapsed_s").ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: no elapsed_s column", path.display()),
            )
        })?;
        let mut previous: Option<u64> = None;
        for record in reader.records() {
            let record = record.map_err(damaged(&path))?;
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
    Ok((header, rows.into_values().map(csv::StringRecord::from).collect()))
}

/// One cell of the merged time series from the merged-so-far cell and a shard's.
fn combine(column: &str, so_far: &str, value: &str) -> String {
    if so_far.is_empty() {
        return value.to_string();
    }
    // An empty cell (no rtt measured in that second) adds nothing.
    if value.is_empty() {
        return so_far.to_string();
    }
    let num = |s: &str| s.parse::<f64>().unwrap_or(0.0);
    match column {
        "chaos" => {
            let mut names: BTreeSet<&str> = so_far.split_whitespace().collect();
            names.extend(value.split_whitespace());
            names.into_iter().collect::<Vec<_>>().join(" ")
        }
        "elapsed_s" | "window_s" => format!("{}", num(so_far).max(num(value))),
        c if c.starts_with("rtt_") => format!("{}", num(so_far).max(num(value))),
        _ => format!("{}", num(so_far) + num(value)),
    }
}

/// All shards' connection events, in time order.
fn merge_connections(dirs: &[PathBuf]) -> io::Result<Table> {
    let mut header = None;
    let mut rows: Vec<(f64, csv::StringRecord)> = Vec::new();
    for dir in dirs {
        let path = dir.join(CONNECTIONS);
        let mut reader = reader(&path)?;
        header = Some(reader.headers().map_err(damaged(&path))?.clone());
        for record in reader.records() {
            let record = record.map_err(damaged(&path))?;
            let t = record.get(0).and_then(|t| t.parse().ok()).unwrap_or(0.0);
            rows.push((t, record));
        }
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok((header, rows.into_iter().map(|(_, r)| r).collect()))
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
        write_table(&out, &merge_timeseries(&[a, b]).unwrap()).unwrap();
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
