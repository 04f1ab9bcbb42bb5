//! Integration-test harness: one real control plane per test binary.
//!
//! `KEDGE_K8S_BIN` names the directory with `kube-apiserver`, `kube-controller-manager` and
//! `kube-scheduler` (built by `../shared/k8s/build-control-plane.sh`). Unset: every test that
//! needs the control plane prints why and passes without running; with `KEDGE_REQUIRE_K8S=1`
//! (CI) a missing or failing control plane fails the test instead.

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use operator::controlplane::ControlPlane;
use operator::run::{Options, Running};

/// The control plane shared by the tests of this binary, or `None` (skip) when
/// `KEDGE_K8S_BIN` is unset and `KEDGE_REQUIRE_K8S` is not `1`.
pub fn control_plane(test: &str) -> Option<&'static ControlPlane> {
    static CP: OnceLock<Result<ControlPlane, String>> = OnceLock::new();
    let required = std::env::var("KEDGE_REQUIRE_K8S").is_ok_and(|v| v == "1");
    let cp = CP.get_or_init(|| match std::env::var_os("KEDGE_K8S_BIN") {
        None => Err("KEDGE_K8S_BIN is not set".to_string()),
        Some(bin) => ControlPlane::start(&PathBuf::from(bin), true).map_err(|e| e.to_string()),
    });
    match cp {
        Ok(cp) => Some(cp),
        Err(e) if required => {
            panic!("{test}: KEDGE_REQUIRE_K8S=1 but the control plane cannot start: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED {test}: no Kubernetes control plane ({e}; set KEDGE_K8S_BIN)");
            None
        }
    }
}

/// Serialises tests that touch cluster-scoped objects (Nodes, NodePools, NodeClaims, CRDs).
pub async fn cluster_lock() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// A fresh namespace for one test.
pub async fn namespace(client: &kube::Client, name: &str) -> String {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Api, PostParams};
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}
    }))
    .unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
    name.to_string()
}

/// Poll `f` until it returns `Some`, at most `secs` seconds (the control plane's controllers
/// are asynchronous; this is waiting for *their* work, with a deadline, not a fixed sleep).
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for: {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Install kedge's CRDs (idempotent) and wait until each is Established.
pub async fn install_crds(client: &kube::Client) {
    operator::crd::schema::install(client, std::time::Duration::from_secs(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Log to the test's output (`KEDGE_LOG=debug` for more).
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEDGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// Options for an operator under test: loopback metrics port, leader election with short
/// lease timings (a standby takes over within seconds).
pub fn test_options(kubeconfig: PathBuf, identity: &str) -> Options {
    Options {
        kubeconfig: Some(kubeconfig),
        identity: identity.to_string(),
        leader_election: true,
        bind: "127.0.0.1:0".into(),
        lease_duration: std::time::Duration::from_secs(3),
        lease_renew_deadline: std::time::Duration::from_secs(2),
        lease_retry_period: std::time::Duration::from_millis(300),
        ..Default::default()
    }
}

/// A running operator (`operator::run::run` on the system clock).
pub struct Op {
    pub stop: tokio::sync::watch::Sender<bool>,
    pub running: Running,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Start the operator and wait until it serves.
pub async fn start_operator(opts: Options) -> Op {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(operator::run::run(
        opts,
        std::sync::Arc::new(clock::SystemClock),
        rx,
        Some(ready_tx),
    ));
    let running = ready_rx.await.expect("operator started");
    Op {
        stop,
        running,
        task,
    }
}

/// `kedge serve`'s SQS in this process, on a loopback port, and an SDK client for it.
pub struct Sqs {
    pub url: String,
    pub client: aws_sdk_sqs::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

pub async fn sqs(region: &str) -> Sqs {
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    let clock: std::sync::Arc<dyn clock::Clock> = std::sync::Arc::new(clock::SystemClock);
    let store = store::Store::open(&store::Durability::InMemory, clock).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (state, stop_tx) = gateway::AppState::new(store, gateway::Config::default());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = gateway::serve(
            listener,
            state,
            async {
                let _ = rx.await;
            },
            stop_tx,
        )
        .await;
    });
    let url = format!("http://{addr}");
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(&url)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    Sqs {
        url,
        client: aws_sdk_sqs::Client::from_conf(conf),
        _stop: tx,
    }
}

/// The operator's node side under test (the kwok provider and kubelet, the shared informers,
/// `operator::nodes::run` with the `kedge` policy) on `client`, on the system clock.
pub struct NodeSide {
    pub stop: tokio::sync::watch::Sender<bool>,
    pub informers: operator::informers::Informers,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl NodeSide {
    /// Kwok nodes boot in `boot`; `unavailable` instance types fail to launch (simulated
    /// insufficient capacity).
    pub fn start(
        client: &kube::Client,
        intents: operator::nodes::IntentBoard,
        unavailable: &[&str],
        boot: std::time::Duration,
    ) -> NodeSide {
        use operator::provider::kwok::{Kwok, UnavailableOffering};
        use std::sync::Arc;
        let clock: Arc<dyn clock::Clock> = Arc::new(clock::SystemClock);
        let ctx = operator::context::Context {
            client: client.clone(),
            clock: clock.clone(),
            metrics: Arc::new(operator::server::Metrics::default()),
            settings: Arc::new(operator::context::Settings::default()),
            pods: None,
        };
        let provider: Arc<dyn operator::provider::CloudProvider> = Arc::new(
            Kwok::new(
                client.clone(),
                clock.clone(),
                Arc::new(provision::catalog::Catalog::aws()),
            )
            .with_boot_delay(boot)
            .with_unavailable(
                unavailable
                    .iter()
                    .map(|t| UnavailableOffering::instance_type(t)),
            ),
        );
        let (stop, rx) = tokio::sync::watch::channel(false);
        let (informers, _) = operator::informers::Informers::start(client, &rx);
        let kubelet = tokio::spawn(Kwok::run_kubelet(
            client.clone(),
            clock,
            informers.clone(),
            rx.clone(),
        ));
        let prov = tokio::spawn(operator::nodes::run(
            ctx,
            provider,
            engine::Policy::preset(engine::PolicyName::Kedge),
            intents,
            informers.clone(),
            rx,
        ));
        let tasks = vec![
            tokio::spawn(async move {
                if let Ok(Err(e)) = kubelet.await {
                    panic!("kubelet: {e}");
                }
            }),
            tokio::spawn(async move {
                if let Ok(Err(e)) = prov.await {
                    panic!("node side: {e}");
                }
            }),
        ];
        NodeSide {
            stop,
            informers,
            tasks,
        }
    }

    /// Stop it; every task ends within 30 s and none panicked.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            tokio::time::timeout(std::time::Duration::from_secs(30), t)
                .await
                .expect("operator tasks stop on shutdown")
                .expect("operator tasks do not panic");
        }
    }
}
