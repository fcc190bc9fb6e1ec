//! junit.xml: one test case per threshold, as CI systems read it (Jenkins, GitLab, GitHub
//! test reporters): the name says the metric and the expression, a failure says the measured
//! value against the limit. A run that failed outright is one more test case, in error.

use std::fmt::Write as _;

use super::markup::escape;
use super::summary::{Outcome, Summary};

pub fn render(summary: &Summary) -> String {
    let failures =
        summary.thresholds.iter().filter(|t| !t.passed).count() + usize::from(summary.aborted.is_some());
    let run_failed = summary.outcome == Outcome::RunFailed;
    let tests = summary.thresholds.len() + usize::from(run_failed) + usize::from(summary.aborted.is_some());
    let suite = escape(&summary.scenario);
    let time = summary.elapsed_s;
    let mut x = String::new();
    let _ = writeln!(x, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        x,
        r#"<testsuites name="wsstorm" tests="{tests}" failures="{failures}" errors="{}" time="{time:.3}">"#,
        usize::from(run_failed)
    );
    let _ = writeln!(
        x,
        r#"  <testsuite name="{suite}" tests="{tests}" failures="{failures}" errors="{}" skipped="0" time="{time:.3}" timestamp="{}">"#,
        usize::from(run_failed),
        escape(&summary.started_at)
    );
    let _ = writeln!(x, "    <properties>");
    for (name, value) in [
        ("target", summary.target.as_str()),
        ("scenario_file", summary.scenario_file.as_str()),
        ("outcome", summary.outcome.name()),
        ("wsstorm_version", summary.wsstorm_version.as_str()),
    ] {
        let _ = writeln!(x, r#"      <property name="{name}" value="{}"/>"#, escape(value));
    }
    let _ = writeln!(x, "    </properties>");
    for t in &summary.thresholds {
        let name = escape(&format!("{} {}", t.metric, t.expression));
        let _ = write!(
            x,
            r#"    <testcase classname="wsstorm.thresholds.{suite}" name="{name}" time="0">"#
        );
        if t.passed {
            let _ = writeln!(
                x,
                "<system-out>measured {}</system-out></testcase>",
                escape(&t.shown)
            );
        } else {
            let message = match t.value {
                Some(_) => format!(
                    "{} {}: measured {}, which crosses the threshold",
                    t.metric, t.expression, t.shown
                ),
                None => format!(
                    "{} {}: no data: nothing was measured, and a threshold never passes on nothing",
                    t.metric, t.expression
                ),
            };
            let _ = writeln!(
                x,
                "\n      <failure type=\"threshold\" message=\"{}\">metric {}\nthreshold {}\nmeasured {} (limit {})</failure>\n    </testcase>",
                escape(&message),
                escape(&t.metric),
                escape(&t.expression),
                escape(&t.shown),
                t.limit
            );
        }
    }
    if let Some(a) = &summary.aborted {
        let _ = writeln!(
            x,
            "    <testcase classname=\"wsstorm.run.{suite}\" name=\"abort_on_fail\" time=\"{time:.3}\">\n      <failure type=\"aborted\" message=\"{}\"/>\n    </testcase>",
            escape(&format!(
                "the run was aborted at {:.1}s: {} {} was crossed (measured {})",
                a.at_s, a.metric, a.expression, a.measured
            ))
        );
    }
    if run_failed {
        let _ = writeln!(
            x,
            "    <testcase classname=\"wsstorm.run.{suite}\" name=\"run\" time=\"{time:.3}\">\n      <error type=\"run_failed\" message=\"no client could connect to {}\"/>\n    </testcase>",
            escape(&summary.target)
        );
    }
    let _ = writeln!(
        x,
        "    <system-out>{}</system-out>",
        escape(&summary.render_text())
    );
    let _ = writeln!(x, "  </testsuite>");
    let _ = writeln!(x, "</testsuites>");
    x
}
