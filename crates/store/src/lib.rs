//! kedge's embedded durable storage: a queue engine with SQS semantics and a table engine
//! with DynamoDB semantics, both made durable through one group-commit journal on SQLite.
//!
//! # Layout
//! - [`civil`]: calendar fields of a Unix time (dates as AWS prints them).
//! - [`journal`]: the group-commit journal every engine writes through; fail-stop on error.
//! - [`sqlite`]: the SQLite backend (WAL, `synchronous=FULL`) and the on-disk format note.
//! - [`queue`]: the queue engine (standard and FIFO queues, visibility, delays, DLQ redrive).
//! - [`table`]: the table engine (DynamoDB items, expressions, indexes, transactions).
//! - [`Store`]: opens the database, recovers every engine from it, and hands out the engines.
//!
//! Engines keep their working set in memory and journal every change; a caller acknowledges
//! a request only after the returned [`journal::Ticket`] resolves.

pub mod civil;
pub mod journal;
pub mod queue;
pub mod sqlite;
pub mod table;
pub mod table_log;
pub mod table_record;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clock::Clock;

/// Errors of the storage layer itself (not of a request's semantics).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The disk could not be used; the message says which file and why.
    #[error("storage I/O error: {0}")]
    Io(String),
    /// A commit failed earlier and the store refuses further writes until restart.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

/// How the store keeps data.
#[derive(Debug, Clone)]
pub enum Durability {
    /// Everything in `dir/kedge.db`, every acknowledged change fsync'd.
    Disk(PathBuf),
    /// Nothing survives the process: the explicit `--in-memory` mode.
    InMemory,
}

/// The opened store: both engines over one journal.
#[derive(Clone)]
pub struct Store {
    pub queues: Arc<queue::QueueEngine>,
    pub tables: Arc<table::TableEngine>,
    pub journal: journal::Journal,
    pub path: Option<PathBuf>,
}

impl Store {
    /// Open the store, recovering all state from disk when durable.
    pub fn open(durability: &Durability, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        match durability {
            Durability::InMemory => {
                let journal = journal::Journal::start(Box::new(journal::NullBackend), true);
                Ok(Store {
                    queues: Arc::new(queue::QueueEngine::new(journal.clone(), clock.clone())),
                    tables: Arc::new(table::TableEngine::new(journal.clone(), clock)),
                    journal,
                    path: None,
                })
            }
            Durability::Disk(dir) => Self::open_dir(dir, clock),
        }
    }

    fn open_dir(dir: &Path, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        let (conn, path) = sqlite::open(dir)?;
        let io = |e: rusqlite::Error| StoreError::Io(format!("recovering {}: {e}", path.display()));
        let mut queue_state = queue::persist::load(&conn, clock.now()).map_err(io)?;
        let segments = std::mem::take(&mut queue_state.segments);
        let mut table_state = table::load(&conn).map_err(io)?;
        let items = std::mem::take(&mut table_state.log);
        let journal = journal::Journal::start(
            Box::new(sqlite::SqliteBackend::new(conn, segments, items)),
            false,
        );
        Ok(Store {
            queues: Arc::new(queue::QueueEngine::from_state(
                queue_state,
                journal.clone(),
                clock.clone(),
            )),
            tables: Arc::new(table::TableEngine::from_state(
                table_state,
                journal.clone(),
                clock,
            )),
            journal,
            path: Some(path),
        })
    }
}
