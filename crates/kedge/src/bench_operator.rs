//! `kedge bench operator`: the operator on a real API server with the kwok provider —
//! N ScaledObjects (each scaling its own Deployment) and M kwok nodes — reporting the
//! operator process's peak RSS and its reconcile latencies.
//!
//! Steps: start a throwaway control plane (etcd, kube-apiserver, controller-manager,
//! scheduler from `--k8s-bin`), install the CRDs, create M Ready kwok nodes and N Deployments
//! (0 replicas), start `kedge operator --provider kwok` as a child process, create N
//! ScaledObjects whose `metrics-api` trigger reads a value served by this process, then:
//! 1. *ready latency*: ScaledObject created → its status says `Ready=True` (first reconcile,
//!    target resolved, scale loop running);
//! 2. *scale-out latency*: the served value goes 0 → 1 → every Deployment's `spec.replicas`
//!    becomes 1 (one poll + one decision + one `/scale` write per object; the pods then get
//!    scheduled onto the kwok nodes and marked Running by the operator's kwok kubelet);
//! 3. *scale-in latency*: the value goes back to 0 → replicas 0.
//!
//! The child's RSS is sampled every 250 ms from /proc (peak = max sample, and the kernel's
//! VmHWM at the end).

#![allow(clippy::disallowed_methods)] // a benchmark measures wall-clock time by definition

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;

#[derive(clap::Args, Debug)]
pub struct BenchOperatorArgs {
    /// Directory with kube-apiserver, kube-controller-manager and kube-scheduler
    /// (../shared/k8s/build-control-plane.sh).
    #[arg(long, env = "KEDGE_K8S_BIN")]
    pub k8s_bin: PathBuf,
    #[arg(long, default_value_t = 1000)]
    pub scaled_objects: usize,
    #[arg(long, default_value_t = 500)]
    pub nodes: usize,
    /// Polling interval of every ScaledObject, seconds.
    #[arg(long, default_value_t = 5)]
    pub polling_interval: u32,
    /// The operator's provider: kwok (nodes managed, fake kubelet) or none (pods only).
    #[arg(long, default_value = "kwok")]
    pub provider: String,
    /// Seconds to wait for each phase before giving up on the stragglers.
    #[arg(long, default_value_t = 300)]
    pub phase_timeout: u64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(name: &str, mut v: Vec<f64>, expected: usize) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    println!(
        "{name:<22} n={}/{expected}  p50 {:>8.0} ms  p99 {:>8.0} ms  max {:>8.0} ms",
        v.len(),
        pct(&v, 50.0),
        pct(&v, 99.0),
        v.last().copied().unwrap_or(f64::NAN)
    );
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Serve `{"value": V}` on a free port.
async fn value_server(value: Arc<AtomicU64>) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let v = value.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| {
                    let body = format!("{{\"value\": {}}}", v.load(Ordering::Relaxed));
                    async move {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from(body)),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(format!("http://{addr}/metric"))
}

async fn create_all<K, F>(api: &Api<K>, n: usize, make: F) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    F: Fn(usize) -> K,
{
    let mut futs = futures::stream::iter((0..n).map(|i| {
        let obj = make(i);
        let api = api.clone();
        async move { api.create(&PostParams::default(), &obj).await }
    }))
    .buffer_unordered(16);
    while let Some(r) = futs.next().await {
        r.context("creating a benchmark object")?;
    }
    Ok(())
}

pub fn run(args: &BenchOperatorArgs) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run_async(args))
}

async fn run_async(args: &BenchOperatorArgs) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let cp = operator::controlplane::ControlPlane::start(&args.k8s_bin, true)
        .context("starting the control plane")?;
    let client = cp.client().await?;
    println!(
        "control plane up in {:.1} s ({})",
        t0.elapsed().as_secs_f64(),
        cp.dir().display()
    );
    operator::crd::schema::install(&client, Duration::from_secs(60)).await?;
    let ns = "bench";
    let nsobj: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &nsobj)
        .await?;

    // kwok nodes, Ready.
    let nodes: Api<Node> = Api::all(client.clone());
    let t = Instant::now();
    // m5.xlarge as Karpenter's allocatable maths gives it (crates/provision catalog).
    let cap = json!({"cpu": "3920m", "memory": "14162Mi", "pods": "58"});
    create_all(&nodes, args.nodes, |i| {
        serde_json::from_value(json!({
            "metadata": {"name": format!("kwok-{i}"), "labels": {
                "kubernetes.io/hostname": format!("kwok-{i}"),
                "node.kubernetes.io/instance-type": "m5.xlarge",
                "topology.kubernetes.io/zone": "us-east-1a",
                "karpenter.sh/capacity-type": "on-demand",
                "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}},
            "spec": {"providerID": format!("kwok://kwok-{i}")},
        }))
        .expect("node")
    })
    .await?;
    for i in 0..args.nodes {
        let status = json!({"status": {"capacity": cap, "allocatable": cap, "conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kwok",
             "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
        nodes
            .patch_status(
                &format!("kwok-{i}"),
                &PatchParams::default(),
                &Patch::Merge(&status),
            )
            .await?;
    }
    println!(
        "{} kwok nodes in {:.1} s",
        args.nodes,
        t.elapsed().as_secs_f64()
    );

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let t = Instant::now();
    create_all(&deployments, args.scaled_objects, |i| {
        serde_json::from_value(json!({
            "metadata": {"name": format!("worker-{i}")},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": format!("worker-{i}")}},
                     "template": {"metadata": {"labels": {"app": format!("worker-{i}")}},
                                  "spec": {"containers": [{"name": "w", "image": "kedge",
                                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}
        }))
        .expect("deployment")
    })
    .await?;
    println!(
        "{} deployments in {:.1} s",
        args.scaled_objects,
        t.elapsed().as_secs_f64()
    );

    let value = Arc::new(AtomicU64::new(0));
    let url = value_server(value.clone()).await?;

    // The operator, as its own process.
    let exe = std::env::current_exe()?;
    // KEDGE_BENCH_OPERATOR_LOG=info shows what the operator does.
    let operator_log =
        std::env::var("KEDGE_BENCH_OPERATOR_LOG").unwrap_or_else(|_| "warn".to_string());
    // KEDGE_BENCH_WRAP="heaptrack -o /tmp/op" runs the operator under a profiler.
    let wrap: Vec<String> = std::env::var("KEDGE_BENCH_WRAP")
        .map(|w| w.split_whitespace().map(String::from).collect())
        .unwrap_or_default();
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = std::process::Command::new(first);
            c.args(rest).arg(&exe);
            c
        }
        None => std::process::Command::new(&exe),
    };
    // Its own process group, so a wrapper and the operator under it both get the SIGTERM.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .args([
            "operator",
            "--provider",
            &args.provider,
            "--bind",
            "127.0.0.1:0",
        ])
        .arg("--kubeconfig")
        .arg(cp.kubeconfig())
        .args([
            "--namespace",
            ns,
            "--own-namespace",
            ns,
            "--identity",
            "bench",
        ])
        .args(["--leader-election", "false", "--log-level", &operator_log])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .context("starting kedge operator")?;
    let pid = child.id();
    let stdout = child.stdout.take().context("operator stdout")?;
    // The serving line (a wrapper such as heaptrack may print first); then keep draining.
    let (line_tx, line_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let mut tx = Some(line_tx);
        for l in lines.by_ref() {
            let Ok(l) = l else { break };
            if l.starts_with("kedge operator serving")
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(l);
            }
        }
    });
    let line = line_rx.await.context("operator exited before serving")?;
    println!("operator pid {pid}: {line}");
    let peak = Arc::new(AtomicU64::new(0));
    let peak_anon = Arc::new(AtomicU64::new(0));
    {
        let (peak, peak_anon) = (peak.clone(), peak_anon.clone());
        tokio::spawn(async move {
            loop {
                if let Some(r) = rss_kib(pid, "VmRSS:") {
                    peak.fetch_max(r, Ordering::Relaxed);
                    peak_anon.fetch_max(rss_kib(pid, "RssAnon:").unwrap_or(0), Ordering::Relaxed);
                } else {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
    let idle_rss = rss_kib(pid, "VmRSS:").unwrap_or(0);

    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("keda.sh", "v1alpha1", "ScaledObject"),
        "scaledobjects",
    );
    let sos: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);

    // Phase 1: ready latency.
    let created: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let ready_at: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    {
        let ready_at = ready_at.clone();
        let stream = watcher(sos.clone(), watcher::Config::default()).applied_objects();
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(Ok(o)) = stream.next().await {
                let ready = o
                    .data
                    .pointer("/status/conditions")
                    .and_then(|c| c.as_array())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    });
                if ready {
                    ready_at
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(o.metadata.name.clone().unwrap_or_default())
                        .or_insert_with(Instant::now);
                }
            }
        });
    }
    let t = Instant::now();
    {
        let mut futs = futures::stream::iter((0..args.scaled_objects).map(|i| {
            let sos = sos.clone();
            let created = created.clone();
            let url = url.clone();
            let interval = args.polling_interval;
            async move {
                let name = format!("worker-{i}");
                let obj: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                    "metadata": {"name": name},
                    "spec": {"scaleTargetRef": {"name": name}, "pollingInterval": interval,
                             "minReplicaCount": 0, "maxReplicaCount": 10, "cooldownPeriod": 5,
                             "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}},
                             "triggers": [{"type": "metrics-api", "metadata": {
                                 "url": url, "valueLocation": "value", "targetValue": "1"}}]}
                }))
                .expect("scaled object");
                created
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(name, Instant::now());
                sos.create(&PostParams::default(), &obj).await
            }
        }))
        .buffer_unordered(16);
        while let Some(r) = futs.next().await {
            r.context("creating a ScaledObject")?;
        }
    }
    println!(
        "{} ScaledObjects created in {:.1} s",
        args.scaled_objects,
        t.elapsed().as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs(args.phase_timeout);
    let bar = crate::progress::Progress::new("ScaledObjects ready", args.scaled_objects as u64);
    loop {
        let ready = ready_at.lock().unwrap_or_else(|e| e.into_inner()).len();
        bar.set(ready as u64);
        if ready >= args.scaled_objects || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bar.finish();
    let ready_lat: Vec<f64> = {
        let c = created.lock().unwrap_or_else(|e| e.into_inner());
        let r = ready_at.lock().unwrap_or_else(|e| e.into_inner());
        r.iter()
            .filter_map(|(n, t)| c.get(n).map(|c0| ms(t.saturating_duration_since(*c0))))
            .collect()
    };
    let rss_after_ready = rss_kib(pid, "VmRSS:").unwrap_or(0);
    println!(
        "after ready: RSS {:.1} MiB, threads {}",
        rss_after_ready as f64 / 1024.0,
        rss_kib(pid, "Threads:").unwrap_or(0)
    );
    if std::env::var_os("KEDGE_BENCH_PAUSE").is_some() {
        println!("paused for inspection of pid {pid}; press enter");
        let _ =
            tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new())).await;
    }

    // Phase 2/3: scale-out and scale-in latency.
    let phase = |target: i32| {
        let deployments = deployments.clone();
        let value = value.clone();
        let n = args.scaled_objects;
        let timeout = args.phase_timeout;
        async move {
            let seen: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
            let s2 = seen.clone();
            let stream = watcher(deployments.clone(), watcher::Config::default()).applied_objects();
            let task = tokio::spawn(async move {
                let mut stream = std::pin::pin!(stream);
                while let Some(Ok(d)) = stream.next().await {
                    if d.spec.as_ref().and_then(|s| s.replicas) == Some(target) {
                        s2.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(d.metadata.name.clone().unwrap_or_default())
                            .or_insert_with(Instant::now);
                    }
                }
            });
            // Let the watch list first, so the initial state is not counted.
            tokio::time::sleep(Duration::from_secs(2)).await;
            seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
            let t = Instant::now();
            value.store(target as u64, Ordering::Relaxed);
            let deadline = Instant::now() + Duration::from_secs(timeout);
            let label = if target > 0 { "scale-out" } else { "scale-in" };
            let bar = crate::progress::Progress::new(label, n as u64);
            loop {
                let done = seen.lock().unwrap_or_else(|e| e.into_inner()).len();
                bar.set(done as u64);
                if done >= n || Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            bar.finish();
            task.abort();
            let v: Vec<f64> = seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .map(|x| ms(x.saturating_duration_since(t)))
                .collect();
            v
        }
    };
    let out_lat = phase(1).await;
    // Pods: created by the ReplicaSet controller, bound by kube-scheduler to the kwok nodes,
    // marked Running by the operator's kwok kubelet.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let t = Instant::now();
    let mut running = 0;
    let mut running_after = None;
    while t.elapsed() < Duration::from_secs(args.phase_timeout) {
        running = pods
            .list(&Default::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|p| {
                        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                    })
                    .count()
            })
            .unwrap_or(0);
        if running >= args.scaled_objects || args.provider != "kwok" {
            running_after = Some(t.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rss_after_out = rss_kib(pid, "VmRSS:").unwrap_or(0);
    let in_lat = phase(0).await;

    let hwm = rss_kib(pid, "VmHWM:").unwrap_or(0);
    let (anon, file) = (
        rss_kib(pid, "RssAnon:").unwrap_or(0),
        rss_kib(pid, "RssFile:").unwrap_or(0),
    );
    let sampled = peak.load(Ordering::Relaxed);
    // Stop the operator (and a wrapper) gracefully.
    // SAFETY: sending SIGTERM to our own child's process group.
    unsafe {
        libc_kill(-(pid as i32));
    }
    let _ = tokio::task::spawn_blocking(move || child.wait()).await;

    println!();
    println!(
        "kedge bench operator: {} ScaledObjects, {} kwok nodes, polling {} s, API server 1.20 on loopback",
        args.scaled_objects, args.nodes, args.polling_interval
    );
    summary("ready latency", ready_lat, args.scaled_objects);
    summary("scale-out latency", out_lat, args.scaled_objects);
    println!(
        "pods Running after scale-out: {running} ({})",
        running_after
            .map(|d| format!("all within {:.1} s of the last scale-out", d.as_secs_f64()))
            .unwrap_or_else(|| "timed out".into())
    );
    summary("scale-in latency", in_lat, args.scaled_objects);
    println!(
        "operator RSS: idle {:.1} MiB, after ready {:.1} MiB, after scale-out {:.1} MiB, peak sampled {:.1} MiB, VmHWM {:.1} MiB ({:.1} MB)",
        idle_rss as f64 / 1024.0,
        rss_after_ready as f64 / 1024.0,
        rss_after_out as f64 / 1024.0,
        sampled as f64 / 1024.0,
        hwm as f64 / 1024.0,
        hwm as f64 * 1024.0 / 1e6
    );
    println!(
        "operator RSS split: anonymous (heap, stacks) peak sampled {:.1} MiB, at the end {:.1} MiB; file-backed (the binary's code pages) at the end {:.1} MiB",
        peak_anon.load(Ordering::Relaxed) as f64 / 1024.0,
        anon as f64 / 1024.0,
        file as f64 / 1024.0
    );
    Ok(())
}

unsafe extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

unsafe fn libc_kill(pid: i32) {
    // SIGTERM = 15 on Linux.
    unsafe {
        kill(pid, 15);
    }
}
