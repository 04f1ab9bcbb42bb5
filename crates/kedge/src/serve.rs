//! `kedge serve`: the SQS + DynamoDB endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on; loopback by default. Use 127.0.0.1:0 to pick a free port.
    #[arg(long, default_value = "127.0.0.1:4566", env = "KEDGE_BIND")]
    pub bind: String,
    /// Directory for the database (kedge.db). Created if missing.
    #[arg(long, default_value = "kedge-data", env = "KEDGE_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Keep everything in memory: nothing survives a restart, no fsync cost.
    #[arg(long, conflicts_with = "data_dir")]
    pub in_memory: bool,
    /// Require SigV4 signatures made with these credentials (ACCESS_KEY:SECRET).
    /// Without it any signature (or none) is accepted, like other local AWS endpoints.
    #[arg(long, env = "KEDGE_CREDENTIALS")]
    pub credentials: Option<gateway::sigv4::Credentials>,
    /// Region used in ARNs.
    #[arg(long, default_value = "us-east-1", env = "AWS_REGION")]
    pub region: String,
    /// How long DynamoDB tables and indexes stay CREATING / UPDATING / DELETING (0: changes
    /// take effect at once). Clients that wait for ACTIVE see DynamoDB's sequence.
    #[arg(long, default_value_t = 500, env = "KEDGE_TABLE_STATUS_DELAY_MS")]
    pub table_status_delay_ms: u64,
    /// How long a client may take to send a request's head or body, and how long a
    /// connection stays open with no request on it, in seconds (0: no limit; at most a day).
    #[arg(long, default_value_t = gateway::CLIENT_TIMEOUT.as_secs(), env = "KEDGE_CLIENT_TIMEOUT_SECS",
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub client_timeout_secs: u64,
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let durability = if args.in_memory {
        store::Durability::InMemory
    } else {
        store::Durability::Disk(args.data_dir.clone())
    };
    let clock: Arc<dyn clock::Clock> = Arc::new(clock::SystemClock);
    let store = store::Store::open(&durability, clock)
        .with_context(|| format!("opening the store ({durability:?})"))?;
    store
        .tables
        .set_status_delay(std::time::Duration::from_millis(args.table_status_delay_ms));
    let listener = tokio::net::TcpListener::bind(&args.bind)
        .await
        .with_context(|| format!("binding {} (is another server using it?)", args.bind))?;
    let addr: SocketAddr = listener.local_addr()?;
    if !addr.ip().is_loopback() && args.credentials.is_none() {
        tracing::warn!(
            %addr,
            "listening beyond loopback without --credentials: anyone who can reach this address can read, send and delete messages and items with any (or no) signature; bind 127.0.0.1 or set --credentials ACCESS_KEY:SECRET"
        );
    }
    let config = gateway::Config {
        credentials: args.credentials.clone(),
        region: args.region.clone(),
        client_timeout: (args.client_timeout_secs > 0)
            .then(|| std::time::Duration::from_secs(args.client_timeout_secs)),
    };
    let (state, stop_tx) = gateway::AppState::new(store, config);
    match &durability {
        store::Durability::Disk(d) => {
            tracing::info!(data_dir = %d.display(), "durable storage (fsync on every acknowledged write)")
        }
        store::Durability::InMemory => tracing::warn!("--in-memory: nothing survives a restart"),
    }
    let shutdown = crate::shutdown_signal();
    // Tools and tests read this exact line.
    println!("kedge serve listening on http://{addr}");
    use std::io::Write;
    std::io::stdout().flush().ok();
    gateway::serve(listener, state.clone(), shutdown, stop_tx).await?;
    tracing::info!("shut down cleanly");
    Ok(())
}
