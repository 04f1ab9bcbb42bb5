//! `--provider aws` wiring.

use std::sync::Arc;

use tokio::sync::watch;

use crate::context::Context;
use crate::provider::CloudProvider;
use crate::run::Options;

/// Build the AWS provider (and start its own loops).
pub async fn provider(
    _ctx: &Context,
    _opts: &Options,
    _stop: watch::Receiver<bool>,
) -> anyhow::Result<Arc<dyn CloudProvider>> {
    anyhow::bail!("not wired yet")
}
