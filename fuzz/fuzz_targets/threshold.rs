//! `threshold`: any UTF-8 text as a threshold expression, for every metric.
//!
//! Checks that `Threshold::parse` never panics, and that an accepted threshold can be shown
//! (`label`, `describe`, `Display`, `show_value`) and evaluated (`passes`) on ordinary and
//! extreme values without panicking. Also checks properties of what was parsed: the limit is a
//! number that is not negative and not NaN, the label names the metric, and `passes` agrees with
//! the comparison's own definition.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsstorm::scenario::threshold::{Metric, Op, Threshold};

const VALUES: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    0.001,
    250.0,
    1e300,
    -1.0,
    f64::MAX,
    f64::MIN_POSITIVE,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for &metric in Metric::ALL {
        assert_eq!(Metric::from_name(metric.name()), Some(metric));
        let Ok(t) = Threshold::parse(metric, text) else {
            continue;
        };
        assert_eq!(t.metric, metric);
        assert!(!t.limit.is_nan() && t.limit >= 0.0, "limit {} from {text:?}", t.limit);
        let label = t.label();
        assert!(label.starts_with(metric.name()));
        assert_eq!(t.describe(), label, "no abort_after: describe is the label");
        let _ = t.to_string();
        for &x in VALUES {
            let expected = match t.op {
                Op::Lt => x < t.limit,
                Op::Le => x <= t.limit,
                Op::Gt => x > t.limit,
                Op::Ge => x >= t.limit,
                Op::Eq => x == t.limit,
                Op::Ne => x != t.limit,
            };
            assert_eq!(t.passes(x), expected);
            let _ = t.show_value(x);
        }
        // The threshold's own limit, shown back, and the source re-parsed: the same threshold.
        let _ = t.show_value(t.limit);
        let again = Threshold::parse(metric, &t.source).expect("the kept source parses again");
        assert_eq!(again.aggregate, t.aggregate);
        assert_eq!((again.op, again.limit.to_bits()), (t.op, t.limit.to_bits()));
    }
});
