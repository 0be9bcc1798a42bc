//! Append-only clinical records: visit records and medication reviews.
//!
//! Every version ever written or pulled is a row of its own, kept as the JSON
//! of its [`RecordVersion`]; nothing is updated or deleted (the schema's
//! triggers refuse it). Saving a local version and queueing it in the outbox
//! is one transaction. Reading gives the current version, chosen by
//! [`doorstep_domain::history::head`] so the device and the endpoint agree,
//! with whether the history has forked, or the whole history.
//!
//! A version the endpoint refused and the clinician then corrected
//! ([`Store::correct_rejected`], in [`crate::correction`]) is *withdrawn*: it
//! stays in the history, marked so, but is left out when heads are found,
//! since the endpoint and every other device never hold it and its
//! correction takes its place in the lineage. Nothing may amend it.

use std::collections::HashSet;

use doorstep_domain::ValidationError;
use doorstep_domain::history::{Head, head};
use doorstep_domain::medication_review::MedicationReview;
use doorstep_domain::record::{
    MAX_VERSIONS_PER_RECORD, RecordId, RecordVersion, Validate, VersionId, VersionMeta,
    VisitContent,
};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Result, StoreError};
use crate::outbox::ChangeId;
use crate::store::Store;

/// Which kind of clinical record a version belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A visit record ([`VisitContent`]).
    Visit,
    /// A structured medication review ([`MedicationReview`]).
    MedicationReview,
}

impl RecordKind {
    /// The name stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Visit => "visit",
            RecordKind::MedicationReview => "medication_review",
        }
    }

    pub(crate) fn from_column(text: &str) -> Result<Self> {
        match text {
            "visit" => Ok(RecordKind::Visit),
            "medication_review" => Ok(RecordKind::MedicationReview),
            _ => Err(StoreError::Decode {
                what: "record kind",
            }),
        }
    }
}

/// Content the store keeps as an append-only record. Implemented for the
/// domain's two record types; the kind is stored beside each version so one
/// id can never be read back as the other type.
pub trait RecordContent:
    Serialize + DeserializeOwned + Validate + doorstep_domain::record::WrittenContent + PartialEq
{
    /// The kind stored for this content.
    const KIND: RecordKind;
}

impl RecordContent for VisitContent {
    const KIND: RecordKind = RecordKind::Visit;
}

impl RecordContent for MedicationReview {
    const KIND: RecordKind = RecordKind::MedicationReview;
}

/// Where a stored version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Written on this device; it has an outbox item.
    Local,
    /// Pulled from the endpoint (written on another device, or this one
    /// before a reinstall).
    Pulled,
}

impl Origin {
    fn from_column(text: &str) -> Result<Self> {
        match text {
            "local" => Ok(Origin::Local),
            "pulled" => Ok(Origin::Pulled),
            _ => Err(StoreError::Decode { what: "origin" }),
        }
    }
}

/// One stored version with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredVersion<T> {
    /// The version as written.
    pub version: RecordVersion<T>,
    /// Local or pulled.
    pub origin: Origin,
    /// Refused by the endpoint and replaced by a correction
    /// ([`Store::correct_rejected`]): kept as what was written and refused
    /// (its outbox item has the reason), but out of the record's lineage, so
    /// never current and never a head.
    pub withdrawn: bool,
}

/// The version to show for a record, and the state of its history.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentRecord<T> {
    /// The current version: the only head, or the newest head of a fork.
    pub version: RecordVersion<T>,
    /// [`Head::Forked`] when two devices amended the same version and a
    /// clinician must reconcile them. Withdrawn versions are never heads.
    pub head: Head,
    /// How many versions the history holds, withdrawn ones included.
    pub version_count: usize,
}

/// What happened to a version handed to [`Store::save`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Stored now, with a new outbox item.
    New(ChangeId),
    /// The same version was already stored (a repeated tap or a retry after
    /// a crash), and is on its way to the endpoint or there already; its
    /// existing outbox item is returned. (One the endpoint refused is not
    /// saved: [`StoreError::AlreadyRefused`], [`StoreError::AlreadyWithdrawn`].)
    AlreadyStored(ChangeId),
    /// The same version is already on the device because it came from the
    /// endpoint (a save retried after this device pulled its own earlier
    /// push, say after a reinstall): the endpoint holds it, so nothing is
    /// queued.
    AlreadySynced,
}

impl Saved {
    /// The outbox item's change id; `None` when the version came from the
    /// endpoint and has no outbox item.
    pub fn change_id(self) -> Option<ChangeId> {
        match self {
            Saved::New(id) | Saved::AlreadyStored(id) => Some(id),
            Saved::AlreadySynced => None,
        }
    }
}

impl Store {
    /// Saves a version written on this device and queues it for pushing, in
    /// one transaction: after a crash both are there or neither is.
    ///
    /// The version is checked first ([`Validate`]); an amendment must
    /// supersede a version of the same record that is on this device, and a
    /// first version must start a record the device does not hold yet.
    /// An amendment may not supersede a rejected change (refused by the
    /// endpoint, or held back because it builds on such a change): it would
    /// reach the endpoint amending a version it never holds, and fork the
    /// record there and on every device. That change's own reason
    /// ([`Store::outbox_item`]) says what to do: correct it
    /// ([`Store::correct_rejected`]), or, where the reason allows, send it
    /// again ([`Store::requeue_rejected`]) first. Nor may it supersede a
    /// withdrawn version, whose correction is the one to amend.
    /// A version reconciling a fork may merge only versions of the same
    /// record that the endpoint holds (pulled, or accepted from here): a
    /// branch of this device's still queued could yet be refused, so the
    /// clinician syncs first, then reconciles.
    /// Saving the same version again is harmless ([`Saved::AlreadyStored`],
    /// or [`Saved::AlreadySynced`] when it came from the endpoint); the same
    /// id with different content is [`StoreError::VersionConflict`].
    /// A version whose id is a change the endpoint refused, saved again or
    /// edited under that id, is not saved and never sent: it is refused
    /// with [`StoreError::AlreadyRefused`], or [`StoreError::AlreadyWithdrawn`]
    /// once a correction has taken its place, each saying what to do
    /// instead. An answer of `Ok` never means a refused change.
    pub fn save<T: RecordContent>(&mut self, version: &RecordVersion<T>) -> Result<Saved> {
        version.validate()?;
        let body = to_json(version)?;
        let tx = crate::store::immediate(&mut self.conn)?;
        if let Some(existing) = existing_version::<T>(&tx, version.meta.version_id)? {
            // A refused change's id is answered as that change whatever the
            // content: an edit that kept the id is no new change either.
            let change: Option<(String, String, Option<String>)> = tx
                .query_row(
                    "SELECT change_id, state, corrected_by FROM outbox WHERE version_id = ?1",
                    [version.meta.version_id.0.to_string()],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            let version_id = version.meta.version_id;
            return match change {
                Some((change, state, corrected_by)) => {
                    let change_id = crate::outbox::parse_change_id(&change)?;
                    match (state.as_str(), corrected_by) {
                        ("rejected", _) => Err(StoreError::AlreadyRefused {
                            version_id,
                            change_id,
                        }),
                        ("withdrawn", Some(by)) => Err(StoreError::AlreadyWithdrawn {
                            version_id,
                            change_id,
                            corrected_by: crate::outbox::live_correction(
                                &tx,
                                crate::outbox::parse_change_id(&by)?,
                            )?,
                        }),
                        ("withdrawn", None) => Err(StoreError::Decode {
                            what: "outbox state",
                        }),
                        _ if existing != *version => Err(StoreError::VersionConflict(version_id)),
                        _ => Ok(Saved::AlreadyStored(change_id)),
                    }
                }
                None if existing != *version => Err(StoreError::VersionConflict(version_id)),
                None => Ok(Saved::AlreadySynced),
            };
        }
        check_lineage(&tx, T::KIND, version)?;
        insert_version(&tx, T::KIND, version, &body, "local")?;
        let change_id = crate::outbox::enqueue(&tx, T::KIND, &version.meta)?;
        tx.commit()?;
        Ok(Saved::New(change_id))
    }

    /// The current version of a record and whether its history forked;
    /// `None` when the device holds no version of it. Withdrawn versions are
    /// left out of the choice, so a corrected record reads as a straight
    /// line here, as it does at the endpoint.
    pub fn current<T: RecordContent>(&self, record: RecordId) -> Result<Option<CurrentRecord<T>>> {
        let history = self.history::<T>(record)?;
        let lineage = history
            .iter()
            .filter(|v| !v.withdrawn)
            .map(|v| &v.version.meta);
        let Some(head) = head(lineage) else {
            return Ok(None);
        };
        let current = head.current();
        let version_count = history.len();
        let version = history
            .into_iter()
            .find(|v| v.version.meta.version_id == current)
            .map(|v| v.version)
            .ok_or(StoreError::Decode {
                what: "record history",
            })?;
        Ok(Some(CurrentRecord {
            version,
            head,
            version_count,
        }))
    }

    /// Every version of a record, local and pulled, withdrawn ones included,
    /// in the order the device stored them.
    pub fn history<T: RecordContent>(&self, record: RecordId) -> Result<Vec<StoredVersion<T>>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT v.kind, v.origin, v.body, o.state IS 'withdrawn'
             FROM record_versions v LEFT JOIN outbox o ON o.version_id = v.version_id
             WHERE v.record_id = ?1 ORDER BY v.rowid",
        )?;
        let rows = statement.query_map([record.0.to_string()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, bool>(3)?,
            ))
        })?;
        let mut versions = Vec::new();
        for row in rows {
            let (kind, origin, body, withdrawn) = row?;
            if RecordKind::from_column(&kind)? != T::KIND {
                return Err(StoreError::Decode {
                    what: "record of another kind",
                });
            }
            versions.push(StoredVersion {
                version: from_json(&body, "record version")?,
                origin: Origin::from_column(&origin)?,
                withdrawn,
            });
        }
        Ok(versions)
    }

    /// The ids of every record of kind `T` on the device, oldest first.
    pub fn record_ids<T: RecordContent>(&self) -> Result<Vec<RecordId>> {
        let mut statement = self.conn.prepare_cached(
            "SELECT record_id FROM record_versions WHERE kind = ?1
             GROUP BY record_id ORDER BY MIN(rowid)",
        )?;
        let rows = statement.query_map([T::KIND.as_str()], |row| row.get::<_, String>(0))?;
        rows.map(|id| {
            let id = id?;
            uuid::Uuid::parse_str(&id)
                .map(RecordId)
                .map_err(|_| StoreError::Decode { what: "record id" })
        })
        .collect()
    }
}

/// Reads a stored version by id, refusing one of another kind.
fn existing_version<T: RecordContent>(
    tx: &Transaction<'_>,
    id: VersionId,
) -> Result<Option<RecordVersion<T>>> {
    let row = tx
        .query_row(
            "SELECT kind, body FROM record_versions WHERE version_id = ?1",
            [id.0.to_string()],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )
        .optional()?;
    let Some((kind, body)) = row else {
        return Ok(None);
    };
    if RecordKind::from_column(&kind)? != T::KIND {
        return Err(StoreError::VersionConflict(id));
    }
    Ok(Some(from_json(&body, "record version")?))
}

/// A local version must continue a history this device holds, from a
/// version that is on its way to the endpoint or there already.
fn check_lineage<T>(
    tx: &Transaction<'_>,
    kind: RecordKind,
    version: &RecordVersion<T>,
) -> Result<()> {
    let meta = &version.meta;
    check_merges(tx, kind, meta)?;
    match meta.supersedes {
        Some(previous) => {
            let found: Option<(String, String, Option<String>)> = tx
                .query_row(
                    "SELECT v.record_id, v.kind, o.state
                     FROM record_versions v LEFT JOIN outbox o ON o.version_id = v.version_id
                     WHERE v.version_id = ?1",
                    [previous.0.to_string()],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                )
                .optional()?;
            match found {
                None => Err(ValidationError::new(
                    "meta.supersedes",
                    "names a version that is not on this device",
                )
                .into()),
                Some((record, stored_kind, _))
                    if record != meta.record_id.0.to_string() || stored_kind != kind.as_str() =>
                {
                    Err(ValidationError::new(
                        "meta.supersedes",
                        "names a version of another record",
                    )
                    .into())
                }
                Some((_, _, Some(state))) if state == "rejected" => Err(ValidationError::new(
                    "meta.supersedes",
                    "names a rejected change: that change's own reason says what to do (correct \
                     it, or, where the reason allows, send it again first)",
                )
                .into()),
                Some((_, _, Some(state))) if state == "withdrawn" => Err(ValidationError::new(
                    "meta.supersedes",
                    "names a withdrawn version: amend the correction that took its place",
                )
                .into()),
                Some(_) => check_version_count(tx, meta),
            }
        }
        None => {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM record_versions WHERE record_id = ?1)",
                [meta.record_id.0.to_string()],
                |row| row.get(0),
            )?;
            if exists {
                Err(ValidationError::new(
                    "meta.supersedes",
                    "the record already has versions: an amendment must name the one it \
                     supersedes (a refused first version is replaced by correcting it)",
                )
                .into())
            } else {
                Ok(())
            }
        }
    }
}

/// A record may have at most [`MAX_VERSIONS_PER_RECORD`] versions: the
/// endpoint refuses one past it, so the device does not queue it.
pub(crate) fn check_version_count(tx: &Transaction<'_>, meta: &VersionMeta) -> Result<()> {
    let versions: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM record_versions WHERE record_id = ?1")?
        .query_row([meta.record_id.0.to_string()], |row| row.get(0))?;
    if usize::try_from(versions).unwrap_or(usize::MAX) >= MAX_VERSIONS_PER_RECORD {
        return Err(ValidationError::new(
            "meta.record_id",
            format!("the record has {MAX_VERSIONS_PER_RECORD} versions, the most one may have"),
        )
        .into());
    }
    Ok(())
}

/// The heads a local version merges must be versions of its own record that
/// the endpoint holds: pulled, or pushed from here and accepted. A branch
/// still queued here could yet be refused, and the endpoint refuses a merge
/// of a version it does not hold; so the clinician syncs first, then
/// reconciles. (The version the reconciliation amends follows the ordinary
/// rules, and may be queued.)
pub(crate) fn check_merges(
    tx: &Transaction<'_>,
    kind: RecordKind,
    meta: &VersionMeta,
) -> Result<()> {
    for merged in &meta.merges {
        let found: Option<(String, String, Option<String>)> = tx
            .prepare_cached(
                "SELECT v.record_id, v.kind, o.state
                 FROM record_versions v LEFT JOIN outbox o ON o.version_id = v.version_id
                 WHERE v.version_id = ?1",
            )?
            .query_row([merged.0.to_string()], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        let refusal = match found {
            None => "names a version that is not on this device",
            Some((record, stored_kind, _))
                if record != meta.record_id.0.to_string() || stored_kind != kind.as_str() =>
            {
                "names a version of another record"
            }
            Some((_, _, Some(state))) if state != "accepted" && state != "filed" => {
                "names a change of this device the endpoint has not accepted: sync, then \
                 reconcile"
            }
            Some(_) => continue,
        };
        return Err(ValidationError::new("meta.merges", refusal).into());
    }
    Ok(())
}

pub(crate) fn insert_version<T>(
    tx: &Transaction<'_>,
    kind: RecordKind,
    version: &RecordVersion<T>,
    body: &str,
    origin: &str,
) -> Result<()> {
    let meta = &version.meta;
    tx.prepare_cached(
        "INSERT INTO record_versions
             (version_id, record_id, kind, supersedes, origin, body, stored_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        meta.version_id.0.to_string(),
        meta.record_id.0.to_string(),
        kind.as_str(),
        meta.supersedes.map(|v| v.0.to_string()),
        origin,
        body,
        Timestamp::now().to_string(),
    ])?;
    for merged in &meta.merges {
        tx.prepare_cached("INSERT INTO version_merges (version_id, merged) VALUES (?1, ?2)")?
            .execute(params![meta.version_id.0.to_string(), merged.0.to_string()])?;
    }
    Ok(())
}

/// Stores a pulled version unless the same one is already here. Returns
/// whether it was new. Refuses a version whose record id this device holds
/// as another kind of record.
pub(crate) fn insert_pulled<T: RecordContent>(
    tx: &Transaction<'_>,
    version: &RecordVersion<T>,
) -> Result<bool> {
    if let Some(existing) = existing_version::<T>(tx, version.meta.version_id)? {
        if existing != *version {
            return Err(StoreError::VersionConflict(version.meta.version_id));
        }
        return Ok(false);
    }
    // A version of another kind under a record id this device already holds
    // would make that record unreadable as either kind.
    let other_kind: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM record_versions WHERE record_id = ?1 AND kind <> ?2)",
        )?
        .query_row(
            params![version.meta.record_id.0.to_string(), T::KIND.as_str()],
            |row| row.get(0),
        )?;
    if other_kind {
        return Err(ValidationError::new(
            "meta.record_id",
            "names a record of another kind on this device",
        )
        .into());
    }
    insert_version(tx, T::KIND, version, &to_json(version)?, "pulled")?;
    Ok(true)
}

/// A pulled version may not amend or merge a version this device holds under
/// another record, nor be amended or merged by one: that would tie one
/// record's history into another's (possibly another patient's), and neither
/// device nor endpoint could say which record the amendment belongs to. Both
/// ways are checked, since the amendment may come a page before the version
/// it amends. Nor may it amend or merge a
/// version that already descends from it: the history would close into a
/// cycle, with no current version, and the record would vanish from view
/// while still listed (the endpoint refuses such versions, but a device does
/// not rest its records on that). Called once the whole pull batch is in the
/// transaction, so versions of the same batch count as held whatever their
/// order. A version the device has never seen may be amended: pages come in
/// the endpoint's order, and the endpoint accepts the correction of a
/// version it refused.
pub(crate) fn check_pulled_lineage(tx: &Transaction<'_>, meta: &VersionMeta) -> Result<()> {
    let (version, record) = (meta.version_id.0.to_string(), meta.record_id.0.to_string());
    let tied: bool = tx
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM record_versions
                            WHERE supersedes = ?1 AND record_id <> ?2)
                 OR EXISTS (SELECT 1 FROM version_merges m
                            JOIN record_versions v ON v.version_id = m.version_id
                            WHERE m.merged = ?1 AND v.record_id <> ?2)",
        )?
        .query_row([&version, &record], |row| row.get(0))?;
    if tied {
        return Err(ValidationError::new(
            "meta.version_id",
            "is amended or merged on this device by a version of another record",
        )
        .into());
    }
    let parents = meta
        .supersedes
        .iter()
        .map(|v| ("meta.supersedes", *v))
        .chain(meta.merges.iter().map(|v| ("meta.merges", *v)));
    for (field, parent) in parents {
        let record: Option<String> = tx
            .prepare_cached("SELECT record_id FROM record_versions WHERE version_id = ?1")?
            .query_row([parent.0.to_string()], |row| row.get(0))
            .optional()?;
        if record.is_some_and(|record| record != meta.record_id.0.to_string()) {
            return Err(ValidationError::new(
                field,
                "names a version of another record on this device",
            )
            .into());
        }
        if descends_from(tx, parent, meta.version_id)? {
            return Err(ValidationError::new(
                field,
                "names a version that already descends from it: the record's history would \
                 close into a cycle",
            )
            .into());
        }
    }
    Ok(())
}

/// Whether `ancestor` is `from` or one of the versions `from` amends or
/// merges, directly or through others. Each version is visited once, so a
/// cycle held already (stored before this check) ends the walk too.
fn descends_from(tx: &Transaction<'_>, from: VersionId, ancestor: VersionId) -> Result<bool> {
    let ancestor = ancestor.0.to_string();
    let mut seen = HashSet::new();
    let mut stack = vec![from.0.to_string()];
    while let Some(at) = stack.pop() {
        if at == ancestor {
            return Ok(true);
        }
        if !seen.insert(at.clone()) {
            continue;
        }
        stack.extend(
            tx.prepare_cached("SELECT supersedes FROM record_versions WHERE version_id = ?1")?
                .query_row([&at], |row| row.get::<_, Option<String>>(0))
                .optional()?
                .flatten(),
        );
        let mut merged =
            tx.prepare_cached("SELECT merged FROM version_merges WHERE version_id = ?1")?;
        for m in merged.query_map([&at], |row| row.get::<_, String>(0))? {
            stack.push(m?);
        }
    }
    Ok(false)
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|_| StoreError::Decode {
        what: "value for storage",
    })
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &'static str) -> Result<T> {
    serde_json::from_str(text).map_err(|_| StoreError::Decode { what })
}
