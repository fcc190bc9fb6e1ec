//! Multi-host for real, on one machine: two shard processes, each in its own network
//! namespace, reach a target in a third namespace over veth links (the path a cluster takes),
//! and `wsstorm merge` adds them up to exactly what the target counted.
//!
//! The namespaces are made with `ip netns add` (iproute2) and removed when the test ends. Where
//! that is not permitted (no root or CAP_NET_ADMIN, no iproute2), the test says so and skips.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use wsstorm::report::Summary;

const SCENARIO: &str = r#"name = "across hosts"
target = "embedded"
duration = "3s"
[correlation]
request_id = "/id"
[[phases]]
clients = 25
ramp = "1s"
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "50ms"
[thresholds]
rtt = ["p(99) < 1s"]
connect_errors = ["count == 0"]
"#;

/// Network namespaces made for this test, removed on drop (which removes their veth links).
struct Namespaces(Vec<String>);

impl Namespaces {
    fn add(&mut self, name: String) -> Result<(), String> {
        ip(&["netns", "add", &name])?;
        self.0.push(name.clone());
        ip(&["-n", &name, "link", "set", "lo", "up"])
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// A process ended (by its id) if the test fails before it would end it.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// The target namespace `t` and one namespace per shard, each joined to `t` by a veth pair on
/// its own subnet 10.201.<k>.0/24 (the target is .1, the shard .2).
fn hosts(shards: usize) -> Result<(Namespaces, String, Vec<String>), String> {
    let tag = std::process::id();
    let mut ns = Namespaces(Vec::new());
    let target = format!("wss{tag}t");
    ns.add(target.clone())?;
    let mut names = Vec::new();
    for k in 1..=shards {
        let shard = format!("wss{tag}s{k}");
        ns.add(shard.clone())?;
        let (near, far) = (format!("t{k}"), format!("s{k}"));
        ip(&[
            "-n", &target, "link", "add", &near, "type", "veth", "peer", "name", &far, "netns", &shard,
        ])?;
        ip(&[
            "-n",
            &target,
            "addr",
            "add",
            &format!("10.201.{k}.1/24"),
            "dev",
            &near,
        ])?;
        ip(&[
            "-n",
            &shard,
            "addr",
            "add",
            &format!("10.201.{k}.2/24"),
            "dev",
            &far,
        ])?;
        ip(&["-n", &target, "link", "set", &near, "up"])?;
        ip(&["-n", &shard, "link", "set", &far, "up"])?;
        names.push(shard);
    }
    Ok((ns, target, names))
}

fn in_namespace(ns: &str, args: &[&str]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_wsstorm")])
        .args(args);
    c
}

/// The target's stdout lines, as they come.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    rx
}

/// The number after `label` in a line such as "served 25 connections, 1200 messages received".
fn count_before(line: &str, label: &str) -> u64 {
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("{label:?} in {line:?}"));
    line[..at].split_whitespace().last().unwrap().parse().unwrap()
}

#[test]
fn shards_in_separate_network_namespaces_add_up_to_what_the_target_counted() {
    let (namespaces, target, shards) = match hosts(2) {
        Ok(h) => h,
        Err(e) => {
            return crate::support::skip(
                "shards_in_separate_network_namespaces_add_up_to_what_the_target_counted",
                &format!(
                    "cannot make network namespaces here ({e}); it needs iproute2 and root or CAP_NET_ADMIN"
                ),
            );
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hosts.toml");
    std::fs::write(&file, SCENARIO).unwrap();

    // The built-in target on every address of its namespace: it is reachable only over the links.
    let mut server = Reaped(
        in_namespace(&target, &["serve", "--listen", "0.0.0.0:9001"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let out = lines(&mut server.0);
    let first = out
        .recv_timeout(Duration::from_secs(20))
        .expect("the target starts");
    assert!(first.contains("listening on"), "{first}");

    let at = (chrono::Utc::now() + chrono::Duration::milliseconds(1500))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let shard_dir = |k: usize| dir.path().join(format!("host-{k}"));
    let runs: Vec<Child> = shards
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            let url = format!("ws://10.201.{}.1:9001/", i + 1);
            in_namespace(
                ns,
                &[
                    "run",
                    file.to_str().unwrap(),
                    "--quiet",
                    "--target",
                    &url,
                    "--segment",
                    &format!("{i}/2"),
                    "--start-at",
                    &at,
                    "--out",
                    shard_dir(i).to_str().unwrap(),
                ],
            )
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for (i, run) in runs.into_iter().enumerate() {
        let o = run.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "shard {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.0.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let served = out
        .iter()
        .find(|l| l.starts_with("served "))
        .expect("the target prints its counts");
    assert!(server.0.wait().unwrap().success());
    let (connections, received) = (
        count_before(&served, "connections"),
        count_before(&served, "messages received"),
    );

    let summaries: Vec<Summary> = (0..2).map(|i| summary(&shard_dir(i))).collect();
    for (i, s) in summaries.iter().enumerate() {
        assert_eq!(s.target, format!("ws://10.201.{}.1:9001/", i + 1));
        assert_eq!(s.started_at, at, "shard {i} began at the shared start");
        assert_eq!(s.counts.connect_errors, 0, "shard {i}");
        assert!(s.counts.answered > 0, "shard {i} was answered across its link");
    }
    assert_eq!(
        summaries.iter().map(|s| s.peak_clients).collect::<Vec<_>>(),
        [13, 12]
    );

    let merged = dir.path().join("merged");
    let o = crate::support::binary()
        .args(["merge", "--quiet", "--out", merged.to_str().unwrap()])
        .args([shard_dir(0), shard_dir(1)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let m = summary(&merged);
    assert_eq!(m.peak_clients, 25, "the scenario's clients");
    assert_eq!(
        m.counts.connects, connections,
        "every connection the target accepted"
    );
    assert_eq!(m.counts.requests, received, "every request the target received");
    assert_eq!(m.counts.requests, m.counts.answered + m.counts.unfinished);
    assert!(m.thresholds.iter().all(|t| t.passed), "{:?}", m.thresholds);
    drop(namespaces);
}

fn summary(dir: &Path) -> Summary {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}
