//! The summary's lines on the live export: where scrapes were served, and what the remote
//! write delivered and what it could not.

use std::fmt::Write as _;

use crate::metrics::LiveExport;

pub fn text(live: Option<&LiveExport>, s: &mut String) {
    let Some(live) = live else {
        return;
    };
    if let Some(addr) = &live.listen {
        let _ = writeln!(s, "metrics     served for scraping on http://{addr}/metrics");
    }
    if let Some(rw) = &live.remote_write {
        let failed = match (&rw.first_error, rw.requests_failed) {
            (Some(why), n) => format!("; {n} request(s) failed, the first: {why}"),
            (None, _) => String::new(),
        };
        let _ = writeln!(
            s,
            "metrics     remote write to {}: {} samples sent, {} dropped{failed}",
            rw.url, rw.samples_sent, rw.samples_dropped
        );
    }
}
