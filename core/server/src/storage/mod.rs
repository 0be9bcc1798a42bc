//! Server storage: the [`Storage`] trait the handlers call, and its SQLite and
//! PostgreSQL implementations.
//!
//! Every method takes a [`NetworkScope`], which only the auth extractor makes
//! from a verified token, so a query that forgets its network cannot be
//! written. Both backends share the decisions of a push ([`plan`]): they only
//! fetch what the plan needs and write what it decided, in one transaction that
//! also serialises pushes within a network, so sequence numbers become visible
//! in order and a pull cursor never skips a change committed late.

pub mod plan;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_domain::record::VersionMeta;
use doorstep_sync::wire::{ChangeId, ChangeKind, ChangeOutcome, Fork};

/// The one network a storage call may read or write. Made by the auth layer
/// from a verified token's network claim; handlers cannot widen it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NetworkScope(NetworkId);

impl NetworkScope {
    /// Scopes calls to `network`. Call only with a network taken from a
    /// verified token (or in tests and tools that act for one network).
    pub fn for_verified_network(network: NetworkId) -> Self {
        Self(network)
    }

    /// The network.
    pub fn network(&self) -> &NetworkId {
        &self.0
    }
}

/// A change that passed every check of the domain and the caller's rights,
/// ready to store. `body` is the record's canonical JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedChange {
    /// The idempotency key.
    pub change_id: ChangeId,
    /// The record's kind.
    pub kind: ChangeKind,
    /// The record's version envelope.
    pub meta: VersionMeta,
    /// The record as JSON, re-serialised from its checked form.
    pub body: String,
}

/// A change as stored, in the network's order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChange {
    /// Its position in the network's stream (1, 2, 3, ... with gaps allowed).
    pub seq: u64,
    /// The idempotency key.
    pub change_id: ChangeId,
    /// The record's kind.
    pub kind: ChangeKind,
    /// The record's canonical JSON.
    pub body: String,
}

/// Why storage failed. Never shown to callers (they get a plain 5xx); the
/// detail goes to the log, and carries no record content.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL said no.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had from the pool.
    #[error("postgres pool: {0}")]
    Pool(String),
    /// A blocking task panicked or was cancelled.
    #[error("storage task: {0}")]
    Task(String),
    /// A stored row could not be read back (schema drift or corruption).
    #[error("stored data unreadable: {0}")]
    Corrupt(String),
}

/// Where the endpoint keeps the network's changes, revoked devices and forks.
/// Implementations must be safe to share between requests and, for
/// PostgreSQL, between instances.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Stores `changes` (in order) for the network, each once: one outcome
    /// per change, in the same order. All or nothing: on error, nothing is
    /// stored.
    async fn push(
        &self,
        scope: &NetworkScope,
        changes: Vec<CheckedChange>,
    ) -> Result<Vec<ChangeOutcome>, StorageError>;

    /// Up to `limit` changes of the network stored after `after`, oldest first.
    async fn pull(
        &self,
        scope: &NetworkScope,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StoredChange>, StorageError>;

    /// Records of the network whose history is forked now.
    async fn forks(&self, scope: &NetworkScope) -> Result<Vec<Fork>, StorageError>;

    /// Marks `device` of the network revoked (idempotent).
    async fn revoke_device(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<(), StorageError>;

    /// True when `device` of the network was revoked.
    async fn is_revoked(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<bool, StorageError>;

    /// Checks the database answers, for `/healthz`.
    async fn ping(&self) -> Result<(), StorageError>;
}
