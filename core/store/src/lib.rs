//! Doorstep's on-device store: everything a clinician needs with no signal,
//! and every record written on the device until the endpoint has filed it.
//!
//! The database is SQLCipher, always encrypted with a raw 256-bit key from
//! the platform keystore ([`KeyProvider`]); the store refuses to run on a
//! SQLite that cannot encrypt. It is durable (WAL, `synchronous = FULL`,
//! `F_FULLFSYNC` on Apple platforms), append-only for clinical records, and
//! keeps an ordered outbox for the sync engine. Failures come back as
//! [`StoreError`] variants a shell can act on, and none of them is handled by
//! changing the file.
//!
//! | module | holds |
//! | --- | --- |
//! | [`key`] | the database key, the keystore trait and an in-memory provider for tests |
//! | [`store`] | opening, checking, re-keying and wiping the file |
//! | [`schema`] | the schema and its migrations |
//! | [`records`] | append-only visit records and medication reviews |
//! | [`correction`] | correcting a change the endpoint refused, without forking its record |
//! | [`outbox`] | the queue of local changes and their states |
//! | [`pull`] | applying pulled data with its cursor |
//! | [`round`] | the day's round, patient summaries, care homes |
//! | [`error`] | [`StoreError`] |

pub mod correction;
pub mod error;
pub mod key;
pub mod outbox;
pub mod pull;
pub mod records;
pub mod round;
pub mod schema;
pub mod store;
mod wal;

// Lets unit tests share the integration tests' sample data, which names
// this crate by its package name.
#[cfg(test)]
extern crate self as doorstep_store;
#[cfg(test)]
#[allow(dead_code, reason = "unit tests use only some of the shared samples")]
#[path = "../tests/support/sample.rs"]
mod sample;

pub use correction::CorrectionBase;
pub use error::StoreError;
pub use key::{DatabaseKey, KeyError, KeyProvider, KeySlot, MemoryKeyProvider};
pub use outbox::{Acknowledgement, ChangeId, OutboxCounts, OutboxItem, OutboxState, PushLimit};
pub use pull::{PullBatch, PullReport, PulledRecord, SyncCursor};
pub use records::{CurrentRecord, Origin, RecordContent, RecordKind, Saved, StoredVersion};
pub use round::{DayRound, Round, RoundStop, StopWork};
pub use store::{Store, StoreConfig, WipeError, WipeReport};
