//! `kedge operator` and `kedge crds`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct OperatorArgs {
    /// Kubeconfig to use; default: KUBECONFIG, ~/.kube/config, then the in-cluster config.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Who launches nodes: kwok (fake nodes), aws (EC2) or none (pods only).
    #[arg(long, default_value = "none")]
    pub provider: operator::run::ProviderKind,
    /// Namespace to watch for ScaledObjects (repeatable); default: all namespaces.
    #[arg(long = "namespace")]
    pub namespaces: Vec<String>,
    /// The operator's own namespace (leader Lease, ClusterTriggerAuthentication secrets).
    #[arg(long, env = "POD_NAMESPACE", default_value = "kedge")]
    pub own_namespace: String,
    /// This replica's identity in the leader Lease; default: the pod name or host name.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "kedge-operator")]
    pub lease_name: String,
    /// Leader election through a Lease (turn off only when exactly one replica runs).
    #[arg(long, env = "KEDGE_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Address for /metrics, /healthz and /readyz.
    #[arg(long, env = "KEDGE_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub bind: String,
    /// Instance catalog CSV (same columns as the shipped AWS catalog); default: the shipped
    /// catalog.
    #[arg(long, env = "KEDGE_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// kwok provider: seconds from launch until a fake node turns Ready.
    #[arg(long, default_value = "15")]
    pub kwok_boot_delay_seconds: u64,
    /// aws provider: the cluster name (tags, discovery).
    #[arg(long, env = "CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// aws provider: SQS queue URL of EventBridge interruption events.
    #[arg(long, env = "INTERRUPTION_QUEUE")]
    pub interruption_queue: Option<String>,
    /// Serve the CRD conversion webhook (karpenter.sh / karpenter.k8s.aws v1beta1) on this
    /// address; unset: not served (v1beta1 requests then fail).
    #[arg(long, env = "KEDGE_WEBHOOK_ADDR")]
    pub webhook_bind: Option<String>,
    /// The Service in front of the webhook (in the operator's namespace).
    #[arg(long, env = "KEDGE_WEBHOOK_SERVICE", default_value = "kedge-webhook")]
    pub webhook_service: String,
    /// The Secret (in the operator's namespace) keeping the webhook's CA and certificate.
    #[arg(
        long,
        env = "KEDGE_WEBHOOK_SECRET",
        default_value = "kedge-webhook-cert"
    )]
    pub webhook_secret: String,
    /// Instead of the Service: the URL the API server calls (an operator outside the cluster).
    #[arg(long, env = "KEDGE_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// The decision policy of the engine: kedge (joint decisions, busy-aware scale-in and
    /// drains, consolidation that waits for a scale to settle) or keda-karpenter (what KEDA,
    /// the HPA and Karpenter do with the same manifests).
    #[arg(long, env = "KEDGE_POLICY", default_value = "kedge", value_parser = operator_policy)]
    pub policy: engine::PolicyName,
}

/// `--policy` of `kedge operator`: a preset a live cluster can run (the oracle needs the
/// future arrivals; only `kedge simulate` has them).
fn operator_policy(s: &str) -> Result<engine::PolicyName, String> {
    match s.parse::<engine::PolicyName>().map_err(|e| e.to_string())? {
        engine::PolicyName::Oracle => Err(
            "the oracle policy needs perfect knowledge of the arrivals; only `kedge simulate` runs it (expected kedge or keda-karpenter)"
                .into(),
        ),
        p => Ok(p),
    }
}

pub async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    let identity = args.identity.clone().unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "kedge-operator".into())
    });
    if args.provider == operator::run::ProviderKind::Aws && args.cluster_name.is_none() {
        anyhow::bail!("--provider aws needs --cluster-name (or CLUSTER_NAME)");
    }
    let opts = operator::run::Options {
        kubeconfig: args.kubeconfig.clone(),
        provider: args.provider,
        namespaces: args.namespaces.clone(),
        own_namespace: args.own_namespace.clone(),
        identity,
        lease_name: args.lease_name.clone(),
        leader_election: args.leader_election,
        catalog: args.catalog.clone(),
        bind: args.bind.clone(),
        kwok_boot_delay: Duration::from_secs(args.kwok_boot_delay_seconds),
        aws_cluster_name: args.cluster_name.clone(),
        aws_interruption_queue: args.interruption_queue.clone(),
        webhook: args
            .webhook_bind
            .clone()
            .map(|bind| operator::webhook::Settings {
                bind,
                service: args.webhook_service.clone(),
                namespace: args.own_namespace.clone(),
                url: args.webhook_url.clone(),
                secret: args.webhook_secret.clone(),
                recheck: Duration::from_secs(60),
            }),
        policy: args.policy,
        ..Default::default()
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let signal = crate::shutdown_signal();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("stopping: finishing in-flight work and releasing the leader Lease");
        let _ = tx.send(true);
    });
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<operator::run::Running>();
    tokio::spawn(async move {
        if let Ok(r) = ready_rx.await {
            // Tools and tests read this exact line. A closed stdout is not a reason to stop.
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "kedge operator serving http://{}/metrics", r.addr);
            let _ = out.flush();
        }
    });
    operator::run::run(opts, Arc::new(clock::SystemClock), rx, Some(ready_tx)).await
}

#[derive(Args, Debug, Clone)]
pub struct CrdsArgs {
    /// Write one file per CRD into this directory instead of printing them all.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn crds(args: &CrdsArgs) -> anyhow::Result<()> {
    match &args.out {
        None => {
            print!("{}", operator::crd::schema::crds_yaml());
            Ok(())
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            for (name, yaml) in operator::crd::schema::crds() {
                let p = dir.join(name);
                std::fs::write(&p, yaml)?;
                println!("wrote {}", p.display());
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::operator_policy;

    #[test]
    fn the_operator_runs_kedge_or_keda_karpenter_but_not_the_oracle() {
        assert_eq!(operator_policy("kedge"), Ok(engine::PolicyName::Kedge));
        assert_eq!(
            operator_policy("keda-karpenter"),
            Ok(engine::PolicyName::KedaKarpenter)
        );
        let e = operator_policy("oracle").unwrap_err();
        assert!(e.contains("only `kedge simulate`"), "{e}");
        let e = operator_policy("karpenter").unwrap_err();
        assert!(e.contains("unknown policy \"karpenter\""), "{e}");
    }
}
