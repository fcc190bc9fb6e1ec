//! deploy/kubernetes: the manifests match the Kubernetes JSON schemas, and the commands its Jobs
//! run, read from the manifests and expanded as Kubernetes expands them, shard and merge a run
//! exactly (here on loopback, each pod a process).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::server;
use wsstorm::report::Summary;
use wsstorm::scenario::Behaviour;
use wsstorm::scenario::segment::Segment;
use wsstorm::scenario::{self, Overrides};
use yaml_rust2::{Yaml, YamlLoader};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

fn manifests() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// The strict schema check (unknown fields are errors) of every manifest, with the validator
/// that `.ci/run` installs from PyPI (kubernetes-validate, which carries the schemas). Without it
/// the test says so and skips, unless WSSTORM_K8S_VALIDATE names it (as in CI).
#[test]
fn manifests_match_the_kubernetes_schemas() {
    let validator = match std::env::var("WSSTORM_K8S_VALIDATE") {
        Ok(path) => path,
        Err(_)
            if Command::new("kubernetes-validate")
                .arg("--version")
                .output()
                .is_ok() =>
        {
            "kubernetes-validate".to_string()
        }
        Err(_) => {
            return crate::support::skip(
                "manifests_match_the_kubernetes_schemas",
                "kubernetes-validate is not installed (pip install kubernetes-validate, or run .ci/run, which installs it)",
            );
        }
    };
    let files = manifests();
    assert_eq!(files.len(), 4, "{files:?}");
    let o = Command::new(&validator)
        .args(["--strict", "--kubernetes-version", "1.31.0"])
        .args(&files)
        .output()
        .unwrap_or_else(|e| panic!("{validator}: {e}"));
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}");
    assert_eq!(out.matches(" passed for resource ").count(), 5, "{out}");
}

/// One YAML file's documents.
fn load(name: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&std::fs::read_to_string(deploy().join(name)).unwrap()).unwrap()
}

fn strings(list: &Yaml) -> Vec<String> {
    match list.as_vec() {
        Some(items) => items.iter().map(|i| i.as_str().unwrap().to_string()).collect(),
        None => Vec::new(),
    }
}

/// `$(NAME)` replaced by the container's variable, as Kubernetes does for args ($$ escapes).
fn expand(text: &str, env: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(tail) = rest.strip_prefix("$$") {
            out.push('$');
            rest = tail;
        } else if let Some(end) = rest.strip_prefix("$(").and_then(|r| r.find(')')) {
            let name = &rest[2..2 + end];
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&rest[..end + 3]),
            }
            rest = &rest[end + 3..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out + rest
}

/// A Job's one container: its command and args, the names of its variables, and its mounts
/// (mount path -> volume name).
struct Container {
    command: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, Yaml)>,
    mounts: Vec<String>,
    completions: Option<i64>,
}

fn container(file: &str) -> Container {
    let job = &load(file)[0];
    assert_eq!(job["kind"].as_str(), Some("Job"), "{file}");
    let pod = &job["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    Container {
        command: strings(&c["command"]),
        args: strings(&c["args"]),
        env: c["env"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|e| (e["name"].as_str().unwrap().to_string(), e["valueFrom"].clone()))
            .collect(),
        mounts: c["volumeMounts"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|m| m["mountPath"].as_str().unwrap().to_string())
            .collect(),
        completions: job["spec"]["completions"].as_i64(),
    }
}

const SCENARIO: &str = r#"name = "in a cluster"
target = "ws://wsstorm-target:9001/"
duration = "2s"
[correlation]
request_id = "/id"
[[phases]]
clients = 9
ramp = "300ms"
[[steps]]
send = '{"id":"{{id}}"}'
expect = "response"
[[steps]]
sleep = "20ms"
[thresholds]
error_rate = ["rate < 0.01"]
"#;

/// The Indexed Job's pods and the merge Job, run as the manifests say: three shards with
/// JOB_COMPLETION_INDEX 0..2 and the ConfigMap's values, then the merge's shell line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_commands_shard_and_merge_a_run_exactly() {
    let server = server(Behaviour::default()).await;
    let root = tempfile::tempdir().unwrap();
    // The volumes: the ConfigMap's scenario.toml, and the results claim.
    let volume = |mount: &str| root.path().join(mount.trim_start_matches('/'));
    let shards = container("shards-job.yaml");
    assert_eq!(shards.mounts, ["/scenario", "/results"]);
    std::fs::create_dir_all(volume("/scenario")).unwrap();
    std::fs::write(volume("/scenario").join("scenario.toml"), SCENARIO).unwrap();
    let local = |text: String| {
        shards.mounts.iter().fold(text, |t, m| {
            t.replace(&format!("{m}/"), &format!("{}/", volume(m).display()))
        })
    };

    // The ConfigMap wsstorm-run, as run.sh writes it for 3 shards.
    let config: HashMap<String, String> = HashMap::from([
        ("shards".into(), "3".into()),
        (
            "start-at".into(),
            (chrono::Utc::now() + chrono::Duration::milliseconds(1500))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ),
        ("target".into(), server.url()),
        ("run-id".into(), "20261123T150000Z".into()),
    ]);
    let variables = |c: &Container, index: Option<u32>| -> HashMap<String, String> {
        c.env
            .iter()
            .filter_map(|(name, from)| {
                let value = match from["configMapKeyRef"]["key"].as_str() {
                    // An optional key run.sh did not set: no variable.
                    Some(key) if from["configMapKeyRef"]["optional"].as_bool() == Some(true) => {
                        config.get(key)?.clone()
                    }
                    Some(key) => config[key].clone(),
                    None => {
                        assert_eq!(
                            from["fieldRef"]["fieldPath"].as_str(),
                            Some("metadata.annotations['batch.kubernetes.io/job-completion-index']")
                        );
                        index.expect("the completion index").to_string()
                    }
                };
                Some((name.clone(), value))
            })
            .collect()
    };

    let pods: Vec<_> = (0..3u32)
        .map(|index| {
            let env = variables(&shards, Some(index));
            assert!(shards.command.is_empty(), "the image's entrypoint is wsstorm");
            let args: Vec<String> = shards.args.iter().map(|a| local(expand(a, &env))).collect();
            assert!(!args.iter().any(|a| a.contains("$(")), "{args:?}");
            tokio::task::spawn_blocking(move || {
                crate::support::binary().args(&args).envs(&env).output().unwrap()
            })
        })
        .collect();
    for (i, pod) in pods.into_iter().enumerate() {
        let o = pod.await.unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "shard {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let seen = server.shutdown().await;

    let merge = container("merge-job.yaml");
    assert_eq!(merge.command, ["sh", "-c"]);
    assert_eq!(merge.mounts, ["/results"]);
    let script = local(merge.args[0].clone());
    let bin = Path::new(env!("CARGO_BIN_EXE_wsstorm")).parent().unwrap();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let o = Command::new("sh")
        .args(["-c", &script])
        .envs(variables(&merge, None))
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let merged = volume("/results").join("20261123T150000Z/merged");
    let m: Summary =
        serde_json::from_str(&std::fs::read_to_string(merged.join("summary.json")).unwrap()).unwrap();
    assert_eq!(m.peak_clients, 9);
    assert_eq!(
        m.counts.requests, seen.received,
        "every request the target received"
    );
    assert_eq!(m.counts.connects, seen.connections);
    assert_eq!(m.started_at, config["start-at"]);
    assert!(m.thresholds.iter().all(|t| t.passed), "{:?}", m.thresholds);
    assert!(String::from_utf8_lossy(&o.stdout).contains("merged      3 segments"));
}

/// run.sh sets the shard count and image by rewriting these exact lines, and is valid bash; the
/// example scenario is valid when split in four.
#[test]
fn run_sh_finds_what_it_rewrites_and_the_example_scenario_is_valid() {
    let job = std::fs::read_to_string(deploy().join("shards-job.yaml")).unwrap();
    for line in [
        "  completions: 4",
        "  parallelism: 4",
        "          image: wsstorm:local",
    ] {
        assert_eq!(job.lines().filter(|l| *l == line).count(), 1, "{line:?}");
    }
    assert_eq!(container("shards-job.yaml").completions, Some(4));
    let o = Command::new("bash")
        .arg("-n")
        .arg(deploy().join("run.sh"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    let overrides = Overrides {
        segment: Some(Segment::parse("0/4").unwrap()),
        ..Default::default()
    };
    let plan = scenario::load(&deploy().join("scenario.toml"), &overrides).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.peak_clients(), 500, "a quarter of 2 000 clients");
}
