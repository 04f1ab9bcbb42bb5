//! Starting the node side for `kedge operator --provider …` (provisioning, lifecycle,
//! disruption, the provider's own loops).

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::context::Context;
use crate::nodes::IntentBoard;
use crate::run::{Options, ProviderKind};

/// Spawn the node-side tasks for the configured provider; they stop on `stop`.
pub async fn start(
    _ctx: &Context,
    opts: &Options,
    _intents: Option<IntentBoard>,
    _stop: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    match opts.provider {
        ProviderKind::None => Vec::new(),
        ProviderKind::Kwok | ProviderKind::Aws => {
            tracing::warn!("node provisioning is not wired yet");
            Vec::new()
        }
    }
}
