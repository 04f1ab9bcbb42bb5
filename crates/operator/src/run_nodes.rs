//! Starting the node side for `kedge operator --provider …`: the node controller
//! (provisioning and disruption on one engine) with the NodeClaim lifecycle, and the
//! provider's own loops (the kwok kubelet; the AWS
//! EC2NodeClass reconciler and interruption queue).

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::Context;
use crate::informers::Informers;
use crate::nodes::{self, IntentBoard};
use crate::provider::CloudProvider;
use crate::provider::kwok::Kwok;
use crate::run::{Options, ProviderKind};

/// The instance catalog: `--catalog FILE` (the shipped CSV's columns) or the shipped AWS
/// catalog.
pub fn catalog(opts: &Options) -> anyhow::Result<Arc<provision::catalog::Catalog>> {
    use anyhow::Context as _;
    match &opts.catalog {
        None => Ok(Arc::new(provision::catalog::Catalog::aws())),
        Some(p) => {
            let f = std::fs::File::open(p)
                .with_context(|| format!("opening the catalog {}", p.display()))?;
            let c = provision::catalog::Catalog::from_reader(
                f,
                "od_price_us_east_1",
                &["us-east-1a", "us-east-1b", "us-east-1c"],
            )
            .with_context(|| format!("reading the catalog {}", p.display()))?;
            Ok(Arc::new(c))
        }
    }
}

/// Spawn the node-side tasks for the configured provider on the operator's shared watches
/// (`informers`, started by the caller: the scale loops read its Pods too); they stop on
/// `stop`.
pub async fn start(
    ctx: &Context,
    opts: &Options,
    intents: Option<IntentBoard>,
    informers: Informers,
    stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let provider: Arc<dyn CloudProvider> = match opts.provider {
        ProviderKind::None => return Vec::new(),
        ProviderKind::Kwok => {
            let catalog = match catalog(opts) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "no instance catalog: nodes are not managed");
                    return Vec::new();
                }
            };
            Arc::new(
                Kwok::new(ctx.client.clone(), ctx.clock.clone(), catalog)
                    .with_boot_delay(opts.kwok_boot_delay),
            )
        }
        ProviderKind::Aws => match crate::run_aws::provider(ctx, opts, stop.clone()).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "the AWS provider cannot start: nodes are not managed");
                return Vec::new();
            }
        },
    };
    let mut tasks = Vec::new();
    if opts.provider == ProviderKind::Kwok {
        let (client, clock, inf, s) = (
            ctx.client.clone(),
            ctx.clock.clone(),
            informers.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if let Err(e) = Kwok::run_kubelet(client, clock, inf, s).await {
                tracing::error!(error = %e, "kwok kubelet stopped");
            }
        }));
    }
    {
        let policy = engine::Policy::preset(opts.policy);
        let (c, p, i, inf, s) = (
            ctx.clone(),
            provider.clone(),
            intents.unwrap_or_default(),
            informers,
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            if let Err(e) = nodes::run(c, p, policy, i, inf, s).await {
                tracing::error!(error = %e, "the node side stopped");
            }
        }));
    }
    tasks
}
