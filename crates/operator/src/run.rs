//! `kedge operator`: wiring. Builds the client (kubeconfig or in-cluster), serves
//! `/metrics` `/healthz` `/readyz`, campaigns for the leader Lease and, while leading, runs
//! the ScaledObject controller and (with a provider) provisioning, the NodeClaim lifecycle,
//! disruption and the provider's own loops. Stops cleanly on shutdown (finishing in-flight
//! work, releasing the Lease).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clock::Clock;
use tokio::sync::watch;

use crate::context::{Context, Settings};
use crate::informers::Informers;
use crate::leader::{Elector, LeaseSettings};
use crate::nodes::IntentBoard;
use crate::scaledobject;
use crate::server::{self, Metrics};

/// Which cloud provider launches nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// Pods only (KEDA's job); NodePools are not reconciled.
    None,
    /// Fake nodes (kwok-style), with the kubelet's part played by the operator.
    Kwok,
    /// EC2.
    Aws,
}

impl std::str::FromStr for ProviderKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(ProviderKind::None),
            "kwok" => Ok(ProviderKind::Kwok),
            "aws" => Ok(ProviderKind::Aws),
            other => Err(format!("unknown provider {other:?}: use kwok, aws or none")),
        }
    }
}

/// Everything `kedge operator` is told.
#[derive(Debug, Clone)]
pub struct Options {
    /// Kubeconfig path; `None`: `KUBECONFIG`, `~/.kube/config`, then in-cluster.
    pub kubeconfig: Option<PathBuf>,
    pub provider: ProviderKind,
    /// Namespaces to watch for ScaledObjects; empty = all.
    pub namespaces: Vec<String>,
    /// Namespace of the leader Lease and ClusterTriggerAuthentication secrets.
    pub own_namespace: String,
    /// Unique per replica (the pod name in a cluster).
    pub identity: String,
    pub lease_name: String,
    pub leader_election: bool,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub bind: String,
    /// kwok: seconds from launch until a node turns Ready.
    pub kwok_boot_delay: Duration,
    /// Instance catalog CSV; `None`: the shipped AWS catalog.
    pub catalog: Option<PathBuf>,
    /// AWS settings.
    pub aws_cluster_name: Option<String>,
    pub aws_interruption_queue: Option<String>,
    /// The decision policy of the node side (and the scale loops): `kedge` or
    /// `keda-karpenter`.
    pub policy: engine::PolicyName,
    /// Lease timings (tests shorten them).
    pub lease_duration: Duration,
    pub lease_renew_deadline: Duration,
    pub lease_retry_period: Duration,
    /// The CRD conversion webhook (every replica serves it); `None`: not served.
    pub webhook: Option<crate::webhook::Settings>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kubeconfig: None,
            provider: ProviderKind::None,
            namespaces: Vec::new(),
            own_namespace: "kedge".into(),
            identity: "kedge-operator".into(),
            lease_name: "kedge-operator".into(),
            leader_election: true,
            bind: "0.0.0.0:8080".into(),
            kwok_boot_delay: Duration::from_secs(15),
            catalog: None,
            aws_cluster_name: None,
            aws_interruption_queue: None,
            policy: engine::PolicyName::Kedge,
            lease_duration: Duration::from_secs(15),
            lease_renew_deadline: Duration::from_secs(10),
            lease_retry_period: Duration::from_secs(2),
            webhook: None,
        }
    }
}

/// Build a client from `kubeconfig` (or the default inference chain).
pub async fn client(kubeconfig: Option<&std::path::Path>) -> anyhow::Result<kube::Client> {
    crate::init_tls();
    let config = match kubeconfig {
        Some(p) => {
            let kc = kube::config::Kubeconfig::read_from(p)
                .with_context(|| format!("reading kubeconfig {}", p.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("using kubeconfig {}", p.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no kubeconfig found and not running in a cluster (use --kubeconfig)")?,
    };
    // No automatic 429 retries: an Eviction refused by a PodDisruptionBudget answers 429 and
    // must come back to the disruption controller at once (it retries with its own backoff);
    // every reconciler requeues on errors anyway.
    crate::compat::client_without_retry(config).context("building the Kubernetes client")
}

/// A running operator's handles, for tests and the CLI.
pub struct Running {
    pub metrics: Arc<Metrics>,
    /// `true` while this replica leads.
    pub leading: watch::Receiver<bool>,
    pub addr: std::net::SocketAddr,
    /// The conversion webhook's address, when it is served.
    pub webhook_addr: Option<std::net::SocketAddr>,
}

/// Run until `shutdown` turns true. `ready` receives the handles once serving.
pub async fn run(
    opts: Options,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
    ready: Option<tokio::sync::oneshot::Sender<Running>>,
) -> anyhow::Result<()> {
    let client = client(opts.kubeconfig.as_deref()).await?;
    let version = client
        .apiserver_version()
        .await
        .context("the Kubernetes API server does not answer")?;
    tracing::info!(
        version = %version.git_version,
        provider = ?opts.provider,
        identity = %opts.identity,
        "connected to the API server"
    );
    let autoscale_metrics = Arc::new(autoscale::metrics::Metrics::new());
    let metrics = Arc::new(Metrics::new(autoscale_metrics.clone()));
    metrics.set_ready(true);
    let listener = tokio::net::TcpListener::bind(&opts.bind)
        .await
        .with_context(|| format!("binding {} for /metrics", opts.bind))?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(server::serve(listener, metrics.clone(), shutdown.clone()));
    let webhook_addr = match &opts.webhook {
        Some(w) => Some(
            crate::webhook::start(client.clone(), w.clone(), shutdown.clone())
                .await
                .context("starting the CRD conversion webhook")?,
        ),
        None => None,
    };

    let settings = Arc::new(Settings {
        namespaces: opts.namespaces.clone(),
        own_namespace: opts.own_namespace.clone(),
        identity: opts.identity.clone(),
        field_manager: "kedge".into(),
    });
    let ctx = Context {
        client: client.clone(),
        clock: clock.clone(),
        metrics: metrics.clone(),
        settings,
        pods: None,
    };
    let (leading_tx, leading_rx) = watch::channel(false);
    if let Some(r) = ready {
        let _ = r.send(Running {
            metrics: metrics.clone(),
            leading: leading_rx.clone(),
            addr,
            webhook_addr,
        });
    }
    let m2 = metrics.clone();
    let mut lr = leading_rx.clone();
    tokio::spawn(async move {
        while lr.changed().await.is_ok() {
            m2.set_leader(*lr.borrow());
        }
    });

    let work = {
        let ctx = ctx.clone();
        let opts = opts.clone();
        let autoscale_metrics = autoscale_metrics.clone();
        move |stop: watch::Receiver<bool>| {
            let ctx = ctx.clone();
            let opts = opts.clone();
            let autoscale_metrics = autoscale_metrics.clone();
            async move { lead(ctx, opts, autoscale_metrics, stop).await }
        }
    };
    if opts.leader_election {
        let elector = Elector::new(
            client.clone(),
            LeaseSettings {
                namespace: opts.own_namespace.clone(),
                name: opts.lease_name.clone(),
                identity: opts.identity.clone(),
                lease_duration: opts.lease_duration,
                renew_deadline: opts.lease_renew_deadline,
                retry_period: opts.lease_retry_period,
            },
            clock.clone(),
        );
        crate::leader::run_elected(elector, shutdown.clone(), leading_tx, work).await;
    } else {
        let _ = leading_tx.send(true);
        work(shutdown.clone()).await;
        let _ = leading_tx.send(false);
    }
    let _ = server.await;
    tracing::info!("operator stopped");
    Ok(())
}

/// Everything the leader runs, until `stop`.
async fn lead(
    ctx: Context,
    opts: Options,
    autoscale_metrics: Arc<autoscale::metrics::Metrics>,
    stop: watch::Receiver<bool>,
) {
    let intents = (opts.provider != ProviderKind::None).then(IntentBoard::default);
    // With a provider, one watch per kind for the node side; its Pod watch is also what the
    // scale loops and the pod triggers read (one Pod watch in the process, not two).
    let mut tasks = Vec::new();
    let (ctx, informers) = if opts.provider != ProviderKind::None {
        let (informers, watches) = Informers::start(&ctx.client, &stop);
        tasks.extend(watches);
        let ctx = Context {
            pods: Some(informers.pods.clone()),
            ..ctx
        };
        (ctx, Some(informers))
    } else {
        (ctx, None)
    };
    let shared =
        scaledobject::Shared::new(ctx.clone(), intents.clone(), autoscale_metrics, opts.policy);
    tasks.push(tokio::spawn(scaledobject::run(shared, stop.clone())));
    tasks.push(tokio::spawn(crate::scaledjob::run(
        ctx.clone(),
        stop.clone(),
    )));
    if let Some(informers) = informers {
        tasks.extend(crate::run_nodes::start(&ctx, &opts, intents, informers, stop.clone()).await);
    }
    for t in tasks {
        let _ = t.await;
    }
}
