//! The store's one error type, with variants chosen for what the shell does
//! next: ask for the keystore again, tell the user the file is damaged, free
//! some space, update the app, sync before signing out, or fix an input.
//!
//! No variant carries a patient's name, NHS number or a clinical value: error
//! text reaches logs and screens. SQLite's own messages name tables and
//! columns, never values, and serde's messages (which can quote values) are
//! never passed through.

use doorstep_domain::ValidationError;
use doorstep_domain::network::NetworkId;
use doorstep_domain::record::VersionId;
use rusqlite::ErrorCode;

use crate::key::KeyError;
use crate::outbox::ChangeId;

/// Everything that can go wrong in the store. None of these is ever handled
/// by deleting, truncating or rewriting the database file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The SQLite linked into this build cannot encrypt (SQLCipher is
    /// missing), so the store refuses to write anything. A build fault, never
    /// a user's: report it.
    #[error("this build's SQLite has no encryption; refusing to store health records in clear")]
    NotEncrypted,
    /// The platform keystore would not hand over or keep the key. Usually the
    /// device is locked: ask again once it is unlocked.
    #[error("keystore: {0}")]
    Key(#[from] KeyError),
    /// A database file exists but the keystore holds no key for it (the app's
    /// keystore entry was cleared). Its contents cannot be read by anyone;
    /// only [`crate::Store::discard_unreadable`] gets the device working again.
    #[error("the database file exists but the keystore holds no key for it")]
    KeyMissing,
    /// The keystore's key does not open this file (every page fails its
    /// check), as opposed to [`StoreError::Corrupt`] where some pages do.
    #[error("the key does not open this database file")]
    WrongKey,
    /// The file is damaged: some pages fail their integrity check or the file
    /// is cut short. Nothing has been changed; support may still recover
    /// records from it, so the shell must not delete it on its own.
    #[error("the database file is damaged: {detail}")]
    Corrupt {
        /// Where the damage was found (page numbers, sizes), never contents.
        detail: String,
    },
    /// The device's storage is full, so the last change was not saved (and
    /// nothing partial of it was). Free space and try again.
    #[error("the device's storage is full; the change was not saved")]
    DiskFull,
    /// The file was written by a newer build of the app. This build must not
    /// touch it: update the app.
    #[error("the database has schema version {found}; this build knows versions up to {supported}")]
    SchemaTooNew {
        /// The version in the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// Another connection holds a lock on the database. Retry shortly.
    #[error("the database is busy")]
    Busy,
    /// A re-key could not be made: another connection held the database, or
    /// storage ran out part-way. (SQLCipher's own message for this blames the
    /// key, which would mislead.) The file is whole under the key it had, which
    /// stays current; retry later.
    #[error(
        "the re-key could not be made (the database was busy or storage full); the store is unchanged under its current key"
    )]
    RekeyNotMade,
    /// After a re-key no key known opened the file, so this store holds it no
    /// longer: the re-key says so, and every later call on this store that
    /// reads or writes the file fails (a re-key, the schema version and the
    /// integrity check with this error, others with [`StoreError::Sqlite`]).
    /// Open it again, which finds the key the file is under, or says why none
    /// does.
    #[error("the store lost its file after a re-key; open it again")]
    MustReopen,
    /// Signing out or wiping would discard changes the endpoint has not
    /// accepted. Sync first, or confirm discarding exactly this many.
    #[error(
        "{count} changes have not been accepted by the endpoint; confirm discarding exactly {count} to go on"
    )]
    UnsyncedItems {
        /// Changes pending, sent but unacknowledged, or rejected.
        count: u64,
    },
    /// A record or input failed its checks; names the field and why.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// A version with this id is already stored with different content: two
    /// writers made the same id, which must never happen. Nothing was saved.
    #[error("version {0:?} is already stored with different content")]
    VersionConflict(VersionId),
    /// [`crate::Store::save`] was given a version whose id is that of a
    /// change this device saved and the endpoint refused (or the store held
    /// back with a refused change it builds on): the same version saved
    /// again (a repeated tap, a retry after a crash), or an edit of it that
    /// kept its id. Nothing was saved and nothing will be sent: this is not
    /// a saved change, and the shell must not show it as one. Show the
    /// change's own reason ([`crate::Store::outbox_item`]), which says what
    /// works for it: a correction ([`crate::Store::correct_rejected`], a new
    /// version with a new id), or sending it again unchanged
    /// ([`crate::Store::requeue_rejected`]) only where the reason offers
    /// that. This error does not offer sending again itself: a change the
    /// store held back fails when sent before what it builds on
    /// ([`StoreError::BuildsOnRejected`], [`StoreError::BuildsOnWithdrawn`]).
    /// Nothing changed.
    #[error(
        "version {version_id:?} is change {change_id}, which was refused, or held back with a \
         refused change, and is not queued; nothing was saved: the change's own reason says \
         what to do, such as correct it (a correction is a new version with a new id)"
    )]
    AlreadyRefused {
        /// The version id given.
        version_id: VersionId,
        /// The refused change that carries it.
        change_id: ChangeId,
    },
    /// [`crate::Store::save`] was given a version whose id is that of a
    /// change the endpoint refused (or the store held back with one) and a
    /// correction has since withdrawn (saved again, or an edit of it that
    /// kept its id). Nothing was saved
    /// and nothing will be sent: the correction took its place. To change
    /// the record further, amend that correction's version (the current
    /// version of the record). When the correction was itself refused and
    /// corrected in turn, and so on, `corrected_by` is the last of them, not
    /// withdrawn, since a withdrawn correction cannot be amended; if that
    /// one is still refused, its own reason ([`crate::Store::outbox_item`])
    /// says what to do first. Nothing changed.
    #[error(
        "version {version_id:?} is change {change_id}, which was refused, or held back with a \
         refused change, and then withdrawn; correction {corrected_by} stands in its place; nothing was saved: amend the correction \
         instead"
    )]
    AlreadyWithdrawn {
        /// The version id given.
        version_id: VersionId,
        /// The withdrawn change that carries it.
        change_id: ChangeId,
        /// The change carrying the correction that stands in its place now:
        /// the one that withdrew it, or the last correction of that one,
        /// followed through every correction withdrawn in turn.
        corrected_by: ChangeId,
    },
    /// No outbox item has this change id, so there is nothing to send again
    /// or correct. The list the shell showed is out of date (the store was
    /// wiped and made anew, say): read the rejected items again. Nothing
    /// changed.
    #[error("no outbox item has change id {0}")]
    UnknownChange(ChangeId),
    /// The store holds another network's records: the device was moved to
    /// another network without being wiped. Syncing it would send the first
    /// network's records to the second; wipe the store (after syncing it
    /// with its own network) and sign in again. Nothing changed.
    #[error(
        "this store holds network {bound}'s records, not {asked}'s: sync it with {bound}, then \
         wipe it before joining {asked}"
    )]
    OtherNetwork {
        /// The network the store was first synced with.
        bound: NetworkId,
        /// The network asked for.
        asked: NetworkId,
    },
    /// Only a rejected item can be sent again or corrected, and this one is
    /// not rejected: it is queued already (a second tap on "send again"), the
    /// endpoint has it, or it was corrected already (a second tap on "save
    /// correction": its state names the correcting item). Read its state
    /// again; nothing changed.
    #[error(
        "outbox item {change_id} is {state}, not rejected; only a rejected item can be sent again or corrected"
    )]
    NotRejected {
        /// The item asked for.
        change_id: ChangeId,
        /// Its state as stored (`pending`, `sent`, `accepted`, `withdrawn` or
        /// `filed`).
        state: &'static str,
    },
    /// A correction would withdraw this rejected change, but another version
    /// on this device amends it (saved before the refusal came back) and
    /// would be left building on a withdrawn version: pushed, it would fork
    /// the record at the endpoint. If that amendment is rejected too (refused
    /// by the endpoint, or held back by the store with this one), correct it
    /// instead (the newest rejected change of the record): its correction
    /// withdraws both. (A rejected amendment on another branch of a refused
    /// change below the one asked for does not stop a correction: see
    /// [`StoreError::BuildsOnWithdrawn`].) If the endpoint took it (an
    /// endpoint that did not yet refuse amendments of a change it refused),
    /// the record is forked there already and a clinician reconciles the
    /// fork. If it is queued again
    /// (sent again after this one), sync first and look again. Nothing
    /// changed.
    #[error(
        "rejected change {change_id} is amended by version {amended_by:?} on this device; correct the newest refused change of the record instead"
    )]
    RejectedChangeAmended {
        /// The rejected change the correction would withdraw (the one asked
        /// for, or a refused change it builds on).
        change_id: ChangeId,
        /// The version amending it.
        amended_by: VersionId,
    },
    /// A correction ([`crate::Store::correct_rejected`]) merges more heads
    /// than one version may reconcile, as when the refused changes it
    /// replaces each merged some and together more than that
    /// ([`crate::CorrectionBase::merges`] lists them all). Nothing was
    /// saved, and no head was left out on the clinician's behalf. Reconcile
    /// in two steps: save the correction merging at most `limit` of them,
    /// then an amendment of the correction merging the rest.
    #[error(
        "the correction of change {change_id} merges {merges} versions, more than the {limit} \
         one version may reconcile; nothing was saved: reconcile in two steps, merging at most \
         {limit} in the correction and the other {} in an amendment of it",
        .merges.saturating_sub(*.limit)
    )]
    TooManyMerges {
        /// The rejected change being corrected.
        change_id: ChangeId,
        /// How many heads the correction merges.
        merges: usize,
        /// The most one version may merge.
        limit: usize,
    },
    /// This rejected change amends another change that is still rejected, so
    /// it cannot be sent again on its own: it would reach the endpoint
    /// amending a version the endpoint never held, and fork the record there
    /// and on every device. Send that change again first (this one can
    /// follow as soon as that one is queued), or correct this one, whose
    /// correction replaces both. Nothing changed.
    #[error(
        "rejected change {change_id} builds on change {rejected}, which is rejected; send that one again first, or correct this one"
    )]
    BuildsOnRejected {
        /// The change asked for.
        change_id: ChangeId,
        /// The rejected change it amends.
        rejected: ChangeId,
    },
    /// This rejected change amends (or merges) a change that a correction
    /// has since withdrawn: it was rejected with that change (refused by the
    /// endpoint, or held back by the store), and another amendment of that
    /// change was corrected, withdrawing it. Sent again, this one would reach
    /// the endpoint building on a version the endpoint never holds, forking
    /// the record there and on every device (or refused, for a merge); and
    /// the withdrawn change can no longer be sent again first. Correct this
    /// one: its correction supersedes what the withdrawn change superseded,
    /// and leaves it out of what it merges. Nothing changed.
    #[error(
        "rejected change {change_id} builds on change {withdrawn}, which a correction has withdrawn; correct this one instead of sending it again"
    )]
    BuildsOnWithdrawn {
        /// The change asked for.
        change_id: ChangeId,
        /// The withdrawn change it amends or merges.
        withdrawn: ChangeId,
    },
    /// Stored data could not be read back into its type (written by an
    /// incompatible build, or damaged).
    #[error("stored {what} could not be read back")]
    Decode {
        /// Which kind of data.
        what: &'static str,
    },
    /// Applying a schema migration failed; the file is left at the version it
    /// had (migrations run in one transaction).
    #[error("schema migration failed: {0}")]
    Migration(String),
    /// A file operation failed (creating the folder, removing files on wipe).
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    /// Any other SQLite failure.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
                detail: "a page failed its integrity check while reading".into(),
            },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sqlite(e),
        }
    }
}

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
