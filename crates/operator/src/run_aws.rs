//! `--provider aws` wiring: the EC2 provider, the EC2NodeClass controller and (with
//! `--interruption-queue`) the spot-interruption / state-change queue, whose events lead to
//! cordon-and-drain through the disruption code.

use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;

use crate::context::Context;
use crate::provider::CloudProvider;
use crate::provider::aws::interruption::{ClusterHandler, InterruptionKind, run_interruption};
use crate::provider::aws::{Aws, AwsSettings, nodeclass};
use crate::run::Options;

/// Build the AWS provider and start its own loops (they stop on `stop`).
pub async fn provider(
    ctx: &Context,
    opts: &Options,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Arc<dyn CloudProvider>> {
    let settings = AwsSettings {
        cluster_name: opts
            .aws_cluster_name
            .clone()
            .context("--provider aws needs --cluster-name")?,
        region: String::new(),
        interruption_queue: opts.aws_interruption_queue.clone(),
        ..Default::default()
    };
    let aws = Arc::new(
        Aws::from_env(settings.clone(), ctx.client.clone(), ctx.clock.clone())
            .await
            .context("configuring EC2")?,
    );
    tokio::spawn(nodeclass::run_nodeclass_controller(
        aws.clone(),
        ctx.client.clone(),
        ctx.settings.field_manager.clone(),
        crate::stopped(stop.clone()),
    ));
    if let Some(queue) = settings.interruption_queue.clone() {
        let sqs = Aws::sqs_client(&settings).await;
        let c2 = ctx.clone();
        let events = Arc::new(crate::events::EventRecorder::new(
            ctx.client.clone(),
            "kedge",
            &ctx.settings.identity,
        ));
        let handler = ClusterHandler::new(
            ctx.client.clone(),
            move |pid: String, kind: InterruptionKind| {
                let ctx = c2.clone();
                let events = events.clone();
                Box::pin(async move {
                    crate::nodes::drain::cordon_and_drain(&ctx, &events, &pid, &kind.reason())
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
            },
        );
        tokio::spawn(run_interruption(
            queue,
            sqs,
            Arc::new(handler),
            crate::stopped(stop.clone()),
        ));
    }
    Ok(aws)
}
