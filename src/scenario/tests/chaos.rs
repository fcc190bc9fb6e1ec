//! The `[[chaos]]` table: client, network and exec actions, and their mistakes.

use super::*;

#[test]
fn network_and_exec_chaos_become_plan_actions() {
    let text = format!(
        r#"{BASE}
[[chaos]]
at = "5s"
for = "3s"
network = "latency"
latency = "50ms"
jitter = "10ms"
direction = "upstream"
toxicity = "25%"
[[chaos]]
every = "10s"
network = "limit_data"
bytes = "64KiB"
toxicity = 0.5
[[chaos]]
at = "8s"
exec = "./restart.sh --fast 'two words'"
timeout = "20s"
[[chaos]]
at = "9s"
exec = "systemctl restart app && sleep 1"
shell = true
"#
    );
    let plan = parse_str(&text).unwrap();
    assert!(plan.needs_proxy());
    use crate::scenario::{Direction, Toxic};
    let ChaosAction::Network { fault, lasts } = &plan.chaos[0].action else {
        panic!("{:?}", plan.chaos[0]);
    };
    assert_eq!(
        fault.toxic,
        Toxic::Latency {
            add: Duration::from_millis(50),
            jitter: Duration::from_millis(10)
        }
    );
    assert_eq!((fault.direction, fault.toxicity), (Direction::Upstream, 0.25));
    assert_eq!(*lasts, Some(Duration::from_secs(3)));
    assert!(matches!(
        plan.chaos[1].action,
        ChaosAction::Network { fault, lasts: None } if fault.toxic == Toxic::LimitData { bytes: 65_536 }
    ));
    assert_eq!(
        plan.chaos[2].action,
        ChaosAction::Exec(Exec {
            command: Command::Direct(vec!["./restart.sh".into(), "--fast".into(), "two words".into()]),
            timeout: Duration::from_secs(20),
        })
    );
    assert!(
        matches!(&plan.chaos[3].action, ChaosAction::Exec(Exec { command: Command::Shell(s), .. }) if s.contains("&&"))
    );
    let shown = plan.to_string();
    assert!(
        shown.contains("at 5s: network latency 50ms ± 10ms upstream on 25% of connections for 3s"),
        "{shown}"
    );
    assert!(shown.contains("exec ./restart.sh --fast 'two words'"), "{shown}");
}

#[test]
fn chaos_mistakes_point_at_the_key_and_say_what_was_expected() {
    for (what, chaos, expected) in [
        (
            "two kinds",
            "drop = \"10%\"\nnetwork = \"reset\"",
            "exactly one of",
        ),
        ("an unknown fault", "network = \"earthquake\"", "`blackhole`"),
        (
            "a fault without its value",
            "network = \"latency\"",
            "needs `latency = \"50ms\"`",
        ),
        (
            "a key of another fault",
            "network = \"latency\"\nlatency = \"5ms\"\nrate = \"1KiB/s\"",
            "chaos.rate does not apply",
        ),
        (
            "a rate without /s",
            "network = \"bandwidth\"\nrate = \"100KiB\"",
            "\"100KiB/s\"",
        ),
        (
            "a direction on a blackhole",
            "network = \"blackhole\"\ndirection = \"upstream\"",
            "chaos.direction does not apply",
        ),
        (
            "a reset with a window",
            "network = \"reset\"\nfor = \"2s\"",
            "acts once",
        ),
        (
            "a toxicity above 100%",
            "network = \"refuse\"\ntoxicity = \"150%\"",
            "share of connections",
        ),
        (
            "a slice larger than its variation",
            "network = \"slicer\"\naverage_size = 4\nsize_variation = 8",
            "above size_variation",
        ),
        (
            "an unclosed quote",
            "exec = \"./restart.sh 'oops\"",
            "quotes closed",
        ),
        (
            "a list for the shell",
            "exec = [\"a\", \"b\"]\nshell = true",
            "one script as a string",
        ),
        ("a window on exec", "exec = \"true\"\nfor = \"1s\"", "timeout"),
        (
            "a drop key on exec",
            "exec = \"true\"\nhow = \"reset\"",
            "chaos.how does not apply",
        ),
    ] {
        let text = format!("{BASE}\n[[chaos]]\nat = \"1s\"\n{chaos}\n");
        let e = parse_str(&text)
            .err()
            .unwrap_or_else(|| panic!("{what} was accepted"));
        let shown = e.to_string();
        assert!(shown.contains(expected), "{what}: {shown}");
        assert!(
            e.0.iter().all(|e| e.line > 20),
            "{what}: points into the [[chaos]] entry: {shown}"
        );
    }
}
