//! Server storage: the [`Storage`] trait the handlers call, and its SQLite and
//! PostgreSQL implementations.
//!
//! Every method takes a [`NetworkScope`], which only the auth extractor makes
//! from a verified token, so a query that forgets its network cannot be
//! written. Both backends share the decisions of a push ([`plan`]): they only
//! fetch what the plan needs and write what it decided, in one transaction that
//! also serialises pushes within a network, so sequence numbers become visible
//! in order and a pull cursor never skips a change committed late. Both also
//! share where a page ends ([`page`]): a pull page by count and by bytes, a
//! page of forks by count.

pub mod page;
pub mod plan;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_domain::record::{RecordId, VersionMeta};
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

/// One page of a pull: the changes, and whether more wait after them. The
/// default is the empty last page (nothing after the cursor).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PullPage {
    /// The changes, oldest first.
    pub changes: Vec<StoredChange>,
    /// True when the network holds changes after the last one here (the page
    /// stopped at its count or at its byte budget).
    pub more: bool,
}

/// One page of the network's forked records, in record id order. The
/// default is the empty last page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForksPage {
    /// The forked records, by record id.
    pub forks: Vec<Fork>,
    /// When more forked records follow, the record id to list after for the
    /// next page (the last this page looked at); `None` on the last page.
    pub next: Option<RecordId>,
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
    /// No PostgreSQL connection could be had from the pool (none free in
    /// time, or a new one could not be made).
    #[error("postgres pool: {0}")]
    Pool(String),
    /// The backend's settings cannot work (a bad schema name, no root
    /// certificates for TLS): found when the endpoint starts, never later.
    #[error("storage settings: {0}")]
    Config(String),
    /// The SQLite writer thread has stopped, so nothing more can be stored
    /// until the endpoint restarts; `/healthz` answers 503 (the database
    /// does not answer), so a load balancer stops sending pushes here. A
    /// panicking write no longer stops it (see
    /// [`StorageError::WritePanicked`]), so this means the thread itself died.
    #[error("the sqlite writer thread has stopped")]
    WriterStopped,
    /// A write panicked on the SQLite writer thread: a bug of ours. It was
    /// rolled back alone, the rest of its group committed, and the writer
    /// goes on; the caller gets a plain 500 and the panic is in the log.
    #[error("a write panicked and was rolled back")]
    WritePanicked,
    /// The database takes reads but refuses writes: a PostgreSQL hot standby
    /// (after a failover the endpoint's URL still names the old primary's
    /// host, now a standby) or `default_transaction_read_only`. Pushes
    /// cannot be stored here, so the endpoint will not start against it,
    /// and a running one answers 503 (`/healthz` too) rather than 500.
    #[error(
        "the database only takes reads (a standby, or default_transaction_read_only); \
         point the endpoint at the primary, for example with target_session_attrs=read-write"
    )]
    ReadOnly,
    /// A blocking task panicked or was cancelled.
    #[error("storage task: {0}")]
    Task(String),
    /// A stored row could not be read back (schema drift or corruption).
    #[error("stored data unreadable: {0}")]
    Corrupt(String),
}

impl StorageError {
    /// Whether the database is out of reach rather than refusing this
    /// request: the SQLite writer has stopped, or SQLite found its file held
    /// by another process, its disk full or failing; no PostgreSQL connection could
    /// be had in time, the one in hand was closed under the query, the
    /// database has become read-only (a failover left us on a standby), or it
    /// gave up on this transaction in a way that asks for it to be tried again
    /// (a serialisation failure or deadlock, a lock or statement timeout, a
    /// server shutting down or restarting after a crash, out of disk, memory
    /// or connections). The caller gets 503 (try again, perhaps at
    /// another instance) instead of 500, so a device backs off and a load
    /// balancer can tell the two apart; nothing of the request was stored.
    pub fn is_unavailable(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            StorageError::WriterStopped | StorageError::Pool(_) | StorageError::ReadOnly => true,
            // The file held by another process past the busy timeout, the disk
            // full, or the disk failing: nothing of the request was stored.
            StorageError::Sqlite(e) => e.sqlite_error_code().is_some_and(|code| {
                matches!(
                    code,
                    rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DiskFull
                        | rusqlite::ErrorCode::SystemIoFailure
                )
            }),
            StorageError::Postgres(e) => {
                e.is_closed()
                    || e.code().is_some_and(|code| {
                        [
                            SqlState::READ_ONLY_SQL_TRANSACTION,
                            SqlState::T_R_SERIALIZATION_FAILURE,
                            SqlState::T_R_DEADLOCK_DETECTED,
                            SqlState::LOCK_NOT_AVAILABLE,
                            SqlState::QUERY_CANCELED,
                            SqlState::ADMIN_SHUTDOWN,
                            SqlState::CRASH_SHUTDOWN,
                            SqlState::CANNOT_CONNECT_NOW,
                            SqlState::INSUFFICIENT_RESOURCES,
                            SqlState::DISK_FULL,
                            SqlState::OUT_OF_MEMORY,
                            SqlState::TOO_MANY_CONNECTIONS,
                        ]
                        .contains(code)
                    })
            }
            _ => false,
        }
    }
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

    /// The network's changes stored after `after`, oldest first: at most
    /// `limit`, and only as many as fit in `max_bytes` of record bodies (but
    /// always the first, so a page larger than the budget still moves the
    /// cursor). Pages are bounded in bytes because one record can be
    /// up to a megabyte (more if stored before the domain bounded records) and
    /// a phone on a weak link must be able to finish a page.
    async fn pull(
        &self,
        scope: &NetworkScope,
        after: u64,
        limit: u32,
        max_bytes: u64,
    ) -> Result<PullPage, StorageError>;

    /// The id of the change stored at `seq` in the network, if any. A pull
    /// cursor names the change it follows, so the endpoint can tell a cursor
    /// it made for this network's changes as stored now from one made for
    /// another network or before a database restore.
    async fn change_id_at(
        &self,
        scope: &NetworkScope,
        seq: u64,
    ) -> Result<Option<ChangeId>, StorageError>;

    /// Records of the network whose history is forked now, by record id:
    /// at most `limit` (at least 1) of those after `after` (all of them from
    /// the beginning when `None`). Bounded because each fork is read from its
    /// record's whole history, and a network gathers forks for years.
    async fn forks(
        &self,
        scope: &NetworkScope,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<ForksPage, StorageError>;

    /// Marks `device` of the network revoked (idempotent), and answers how
    /// many changes the network holds from it: none tells the coordinator
    /// that the id may be mistyped, or the token another network's, while
    /// the phone meant stays able to pull.
    async fn revoke_device(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<u64, StorageError>;

    /// The database's restore epoch: empty for a database never restored,
    /// and a fresh value in every copy `doorstep backup` makes (or set by
    /// hand after restoring PostgreSQL). Pull cursors name it, so once a
    /// backup is restored every cursor made before is refused, and each
    /// device asks which of its changes the restore lost, even one whose
    /// cursor is older than the backup. PostgreSQL reads it on every call,
    /// so every instance on the database sees a restore's new epoch at once,
    /// restarted or not (instances that disagreed would refuse each other's
    /// cursors); SQLite reads it when opened, as a restore there needs the
    /// endpoint stopped.
    async fn epoch(&self) -> Result<String, StorageError>;

    /// Those of `change_ids` the network holds no change under, in the order
    /// given: what a device must push again after the endpoint was restored
    /// from an older backup.
    async fn missing_changes(
        &self,
        scope: &NetworkScope,
        change_ids: Vec<ChangeId>,
    ) -> Result<Vec<ChangeId>, StorageError>;

    /// The kind and body the network holds under each of `change_ids` it
    /// holds, in the order given (those it does not hold left out): how a
    /// push tells a change it already stored from one it would refuse now,
    /// when a change that fails today's checks is sent again (its answer was
    /// lost, and the checks have grown stricter since it was stored).
    async fn stored_changes(
        &self,
        scope: &NetworkScope,
        change_ids: Vec<ChangeId>,
    ) -> Result<Vec<(ChangeId, ChangeKind, String)>, StorageError>;

    /// True when `device` of the network was revoked.
    async fn is_revoked(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<bool, StorageError>;

    /// Checks the database answers, for `/healthz`; on SQLite also that the
    /// writer thread still takes work, and on PostgreSQL that the database
    /// takes writes ([`StorageError::ReadOnly`] if not), since an instance
    /// that could read but not store would otherwise look healthy while
    /// every push to it failed.
    /// May wait as long as a write would; the caller bounds it.
    async fn ping(&self) -> Result<(), StorageError>;
}
