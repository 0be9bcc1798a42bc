//! Applying what a pull brought, together with the cursor that covers it.
//!
//! The endpoint hands out an opaque cursor with each batch. The sync engine
//! passes the batch here, and the data and the new cursor commit in one
//! transaction: if the app dies before the commit, neither moved, and the
//! next pull asks again from the old cursor. Applying the same batch twice
//! changes nothing (versions are stored once, summaries are replaced).
//!
//! The endpoint checks what it stores, but the device does not take what it
//! pulls on trust: a batch is refused whole, the cursor left where it was,
//! when a version, round, patient summary or care home fails its checks, or
//! a version reuses a version id the device holds with other content, names
//! a record the device holds as another kind, amends or merges a version the
//! device holds under another record or is amended or merged by one, or
//! would close its record's history into a cycle.

use doorstep_domain::NhsNumber;
use doorstep_domain::medication_review::MedicationReviewRecord;
use doorstep_domain::network::NetworkId;
use doorstep_domain::patient::{CareHome, Patient};
use doorstep_domain::record::{Validate, VersionMeta, VisitRecord};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use crate::error::{Result, StoreError};
use crate::outbox::{Acknowledgement, ChangeId, apply_acknowledgements};
use crate::records::{check_pulled_lineage, insert_pulled};
use crate::round::{Round, check_care_home, forget_patient, put_care_home, put_patient, put_round};
use crate::store::Store;

/// The endpoint's pull cursor: opaque to the device, stored as given.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyncCursor(pub String);

/// A record version from the endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum PulledRecord {
    /// A visit record version.
    Visit(VisitRecord),
    /// A medication review version.
    MedicationReview(MedicationReviewRecord),
}

impl PulledRecord {
    /// The version's envelope, whichever kind of record it is.
    fn meta(&self) -> &VersionMeta {
        match self {
            PulledRecord::Visit(v) => &v.meta,
            PulledRecord::MedicationReview(r) => &r.meta,
        }
    }
}

/// Everything one pull response carries, applied as one unit.
#[derive(Debug, Clone, PartialEq)]
pub struct PullBatch {
    /// The cursor to resume from after this batch.
    pub cursor: SyncCursor,
    /// Record versions, from other devices or echoed from this one. Stored
    /// beside the local versions: a pulled version and a local amendment of
    /// the same version both survive, as a fork.
    pub records: Vec<PulledRecord>,
    /// Patient summaries to add or replace.
    pub patients: Vec<Patient>,
    /// Patients the device no longer needs (off the caseload): their
    /// summaries are removed. Their records stay.
    pub removed_patients: Vec<NhsNumber>,
    /// Care homes with their residents, to add or replace.
    pub care_homes: Vec<CareHome>,
    /// Rounds, each replacing the round for its day.
    pub rounds: Vec<Round>,
    /// Answers about this device's changes that arrived by pull (typically
    /// "filed in the GP record"), applied as by [`Store::acknowledge`].
    pub acknowledgements: Vec<(ChangeId, Acknowledgement)>,
}

impl PullBatch {
    /// An empty batch that only moves the cursor.
    pub fn new(cursor: SyncCursor) -> Self {
        Self {
            cursor,
            records: Vec::new(),
            patients: Vec::new(),
            removed_patients: Vec::new(),
            care_homes: Vec::new(),
            rounds: Vec::new(),
            acknowledgements: Vec::new(),
        }
    }
}

/// What applying a batch changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullReport {
    /// Record versions stored for the first time.
    pub new_versions: usize,
    /// Record versions already on the device.
    pub known_versions: usize,
    /// Outbox items whose state moved.
    pub acknowledged: usize,
}

impl Store {
    /// Applies a pull batch and moves the cursor to `batch.cursor`, all in
    /// one transaction. Every record, round, patient summary and care home
    /// is checked first (a care home's residents bounded and their reviews
    /// due in plausible years: `care_homes[i].residents`); if any fails, a
    /// version id is already stored with different content
    /// ([`StoreError::VersionConflict`]), a record id names a record of
    /// another kind (`records[i].meta.record_id`), or a new version amends or
    /// merges a version held under another record, or one that descends
    /// from it (`records[i].meta.supersedes` or `records[i].meta.merges`), or
    /// is amended or merged by a version held under another record
    /// (`records[i].meta.version_id`), nothing is applied and the cursor
    /// stays where it was.
    pub fn apply_pull(&mut self, batch: &PullBatch) -> Result<PullReport> {
        for (i, record) in batch.records.iter().enumerate() {
            let checked = match record {
                PulledRecord::Visit(v) => v.validate(),
                PulledRecord::MedicationReview(r) => r.validate(),
            };
            checked.map_err(|e| e.at_index("records", i))?;
        }
        for (i, round) in batch.rounds.iter().enumerate() {
            round.validate().map_err(|e| e.at_index("rounds", i))?;
        }
        for (i, patient) in batch.patients.iter().enumerate() {
            patient
                .check_bounds()
                .map_err(|e| e.at_index("patients", i))?;
        }
        for (i, home) in batch.care_homes.iter().enumerate() {
            check_care_home(home).map_err(|e| e.at_index("care_homes", i))?;
        }
        let at = |i: usize| {
            move |e| match e {
                StoreError::Invalid(e) => StoreError::Invalid(e.at_index("records", i)),
                e => e,
            }
        };
        let tx = crate::store::immediate(&mut self.conn)?;
        let mut report = PullReport::default();
        let mut new_versions = Vec::new();
        for (i, record) in batch.records.iter().enumerate() {
            let new = match record {
                PulledRecord::Visit(v) => insert_pulled(&tx, v),
                PulledRecord::MedicationReview(r) => insert_pulled(&tx, r),
            }
            .map_err(at(i))?;
            if new {
                report.new_versions += 1;
                new_versions.push(i);
            } else {
                report.known_versions += 1;
            }
        }
        // Only once the whole batch is in, since an amendment may come before
        // the version it amends in the same batch; and only new versions:
        // refusing one the device holds already could not take it back out,
        // only stop every later pull.
        for i in new_versions {
            check_pulled_lineage(&tx, batch.records[i].meta()).map_err(at(i))?;
        }
        for patient in &batch.patients {
            put_patient(&tx, patient)?;
        }
        for nhs_number in &batch.removed_patients {
            forget_patient(&tx, nhs_number)?;
        }
        for home in &batch.care_homes {
            put_care_home(&tx, home)?;
        }
        for round in &batch.rounds {
            put_round(&tx, round)?;
        }
        report.acknowledged = apply_acknowledgements(&tx, &batch.acknowledgements)?;
        tx.prepare_cached(
            "INSERT INTO sync_cursor (id, cursor, applied_at) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET cursor = excluded.cursor,
                                            applied_at = excluded.applied_at",
        )?
        .execute(params![batch.cursor.0, Timestamp::now().to_string()])?;
        tx.commit()?;
        Ok(report)
    }

    /// Whether this store is bound to `network` (true) or to none yet
    /// (false); [`StoreError::OtherNetwork`] when it is bound to another. A
    /// store holds one network's records, and the endpoint of another must
    /// receive none of them, so the sync engine asks before sending anything.
    pub fn check_network(&self, network: &NetworkId) -> Result<bool> {
        let bound: Option<String> = self
            .conn
            .prepare_cached("SELECT network FROM sync_network WHERE id = 1")?
            .query_row([], |row| row.get(0))
            .optional()?;
        match bound {
            None => Ok(false),
            Some(bound) if bound == network.as_str() => Ok(true),
            Some(bound) => Err(StoreError::OtherNetwork {
                // Written by a build whose rules for a network id differ: the
                // file is sound, this build cannot read the value back.
                bound: NetworkId::parse(&bound).map_err(|_| StoreError::Decode {
                    what: "bound network",
                })?,
                asked: network.clone(),
            }),
        }
    }

    /// Binds this store to `network`, once the endpoint has taken it as the
    /// token's (answered a push naming it, or served a pull page naming it):
    /// not before, so a mistyped network at the first sign-in binds nothing. Bound already to `network`, nothing
    /// changes; bound to another, [`StoreError::OtherNetwork`] and nothing
    /// changes.
    pub fn bind_network(&mut self, network: &NetworkId) -> Result<()> {
        if self.check_network(network)? {
            return Ok(());
        }
        // Another store on the file may bind it between the check and here: the first
        // binding stays, and this one is then checked against it.
        self.conn
            .prepare_cached(
                "INSERT INTO sync_network (id, network, bound_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO NOTHING",
            )?
            .execute(params![network.as_str(), Timestamp::now().to_string()])?;
        self.check_network(network).map(|_| ())
    }

    /// Records that the endpoint said this device is revoked (the first time
    /// it said so stays). The sync engine calls it; the app reads
    /// [`Store::revoked_at`] at every start and keeps the records closed
    /// until the wipe.
    pub fn mark_revoked(&mut self) -> Result<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO device_revoked (id, revoked_at) VALUES (1, ?1)
                 ON CONFLICT (id) DO NOTHING",
            )?
            .execute([Timestamp::now().to_string()])?;
        Ok(())
    }

    /// When the endpoint first said this device is revoked; `None` while it
    /// never has.
    pub fn revoked_at(&self) -> Result<Option<Timestamp>> {
        let at: Option<String> = self
            .conn
            .prepare_cached("SELECT revoked_at FROM device_revoked WHERE id = 1")?
            .query_row([], |row| row.get(0))
            .optional()?;
        at.map(|at| {
            at.parse().map_err(|_| StoreError::Decode {
                what: "revocation time",
            })
        })
        .transpose()
    }

    /// The cursor to pull from: the one of the last applied batch, `None`
    /// before the first pull.
    pub fn sync_cursor(&self) -> Result<Option<SyncCursor>> {
        Ok(self
            .conn
            .prepare_cached("SELECT cursor FROM sync_cursor WHERE id = 1")?
            .query_row([], |row| row.get::<_, String>(0))
            .optional()?
            .map(SyncCursor))
    }
}
