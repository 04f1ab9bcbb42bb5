//! `kedge simulate` from the outside: deterministic JSON, policies compared on one scenario,
//! sweeps, and bad input named.

use std::process::Command;

use serde_json::Value;

const KEDGE: &str = env!("CARGO_BIN_EXE_kedge");

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn simulate(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(KEDGE)
        .arg("simulate")
        .args(args)
        .arg("--report-dir")
        .arg(dir)
        .output()
        .expect("run kedge simulate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn without_wall(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("wall_s");
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[test]
fn the_same_seed_gives_the_same_run_and_every_message_is_accounted_for() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = fixture("sim-burst.yaml");
    let args = ["--scenario", scenario.as_str(), "--seed", "7", "--json"];
    let (ok, a, err) = simulate(&args, &tmp.path().join("a"));
    assert!(ok, "{err}");
    let (ok, b, err) = simulate(&args, &tmp.path().join("b"));
    assert!(ok, "{err}");
    let a: Value = serde_json::from_str(&a).expect("json");
    let b: Value = serde_json::from_str(&b).expect("json");
    assert_eq!(without_wall(a.clone()), without_wall(b));
    // One run: its fields at the top level, and as compare.json's one run.
    assert_eq!(a["runs"][0]["policy"], "kedge");
    assert_eq!(a["policy"], "kedge");
    let messages = a["messages"].as_u64().expect("messages");
    assert_eq!(messages, 2 * 30 + 40 * 60 + 200, "the phases' arrivals");
    assert_eq!(a["processed"], a["messages"]);
    assert_eq!(a["lost_messages"], 0);
    assert_eq!(a["unprocessed"], 0);
    assert!(a["nodes_launched"].as_u64() >= Some(1), "{a:#}");
    assert!(a["nodepool_cost_usd"].as_f64() > Some(0.0), "{a:#}");
    assert!(
        a["cost_usd"].as_f64() > a["nodepool_cost_usd"].as_f64(),
        "baseline costs too"
    );
    for f in [
        "report.json",
        "timeseries.csv",
        "decisions.log",
        "report.html",
    ] {
        assert!(tmp.path().join("a").join(f).exists(), "{f}");
    }
    // Another seed draws other work times.
    let (ok, c, err) = simulate(
        &["--scenario", scenario.as_str(), "--seed", "8", "--json"],
        &tmp.path().join("c"),
    );
    assert!(ok, "{err}");
    let c: Value = serde_json::from_str(&c).expect("json");
    assert_ne!(a["latency_p50_ms"], c["latency_p50_ms"]);
}

#[test]
fn policies_compare_on_one_scenario_and_the_oracle_is_the_cheapest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = fixture("sim-burst.yaml");
    let (ok, out, err) = simulate(
        &[
            "--scenario",
            scenario.as_str(),
            "--compare",
            "keda-karpenter,kedge,oracle",
            "--json",
        ],
        tmp.path(),
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let file: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("compare.json")).expect("compare.json"),
    )
    .expect("json");
    assert_eq!(without_wall(v.clone()), without_wall(file));
    let runs = v["runs"].as_array().expect("runs");
    let policies: Vec<&str> = runs.iter().map(|r| r["policy"].as_str().unwrap()).collect();
    assert_eq!(policies, ["keda-karpenter", "kedge", "oracle"]);
    for r in runs {
        assert_eq!(r["processed"], r["messages"], "{r:#}");
        assert_eq!(r["lost_messages"], 0);
        for k in [
            "redelivered",
            "busy_pods_killed",
            "cost_usd",
            "nodepool_cost_usd",
            "node_hours",
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "latency_max_ms",
            "max_replicas",
            "max_nodes",
            "nodes_launched",
            "scale_events",
            "simulated_s",
            "wall_s",
        ] {
            assert!(r.get(k).is_some_and(Value::is_number), "{k} in {r:#}");
        }
    }
    let cost = |i: usize| runs[i]["nodepool_cost_usd"].as_f64().unwrap();
    let p99 = |i: usize| runs[i]["latency_p99_ms"].as_u64().unwrap();
    assert!(cost(2) <= cost(0) && cost(2) <= cost(1), "{v:#}");
    assert!(p99(2) <= p99(0), "{v:#}");
    // The baseline's ReplicaSet stops consumers whatever they do; kedge stops idle ones.
    assert_eq!(runs[1]["busy_pods_killed"], 0, "{v:#}");
    for sub in ["keda-karpenter", "kedge", "oracle"] {
        assert!(tmp.path().join(sub).join("report.json").exists(), "{sub}");
    }
    let html = std::fs::read_to_string(tmp.path().join("report.html")).expect("report.html");
    assert!(html.contains("keda-karpenter") && html.contains("oracle"));
}

#[test]
fn a_sweep_runs_once_per_value_and_bad_paths_are_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let scenario = fixture("sim-burst.yaml");
    let (ok, out, err) = simulate(
        &[
            "--scenario",
            scenario.as_str(),
            "--duration",
            "60s",
            "--sweep",
            "scaledobject.spec.triggers[0].metadata.queueLength=1,40",
            "--json",
        ],
        tmp.path(),
    );
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    let runs = v["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[0]["settings"][0],
        "scaledobject.spec.triggers[0].metadata.queueLength=1"
    );
    // A smaller queueLength asks for more replicas.
    assert!(runs[0]["max_replicas"].as_u64() > runs[1]["max_replicas"].as_u64());

    let (ok, _, err) = simulate(
        &[
            "--scenario",
            scenario.as_str(),
            "--set",
            "scaledobject.spec.triggers[3].metadata.queueLength=1",
        ],
        &tmp.path().join("bad"),
    );
    assert!(!ok);
    assert!(
        err.contains("triggers[3]") && err.contains("past the end"),
        "{err}"
    );
    let (ok, _, err) = simulate(
        &[
            "--scenario",
            scenario.as_str(),
            "--set",
            "consumer.work=fast",
        ],
        &tmp.path().join("bad2"),
    );
    assert!(!ok);
    assert!(err.contains("consumer.work"), "{err}");
    let (ok, _, err) = simulate(&["--policy", "karpenter"], &tmp.path().join("bad3"));
    assert!(!ok);
    assert!(err.contains("keda-karpenter, kedge or oracle"), "{err}");
}
