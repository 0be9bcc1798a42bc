//! Correcting a change the endpoint refused, so that its record reads as one
//! straight line everywhere.
//!
//! Records are append-only: an amendment names the version it supersedes.
//! When the endpoint refuses a version V1 (which amended V0, already synced),
//! it never holds V1. A correction V2 that amended V1 would be taken (the
//! endpoint accepts an amendment of a version it never held), but then the
//! endpoint and every other device hold V0 and V2 and nothing they hold
//! supersedes V0: two heads, a fork no clinician made, which a clinician
//! elsewhere would be asked to reconcile. So a correction takes V1's place
//! instead: it supersedes what V1 superseded (V0, or nothing when V1 was the
//! record's first version), and V1 is *withdrawn* on this device. A withdrawn
//! version stays in the record's history, and its outbox item keeps the
//! endpoint's reason (the audit of what was written and refused, and why),
//! but it is out of the lineage: never a head ([`Store::current`]), never
//! pushed, never amended ([`Store::save`] refuses), not unsynced, and not
//! listed by [`Store::rejected_items`]. Everywhere the record reads V0 -> V2.
//!
//! When the clinician amended the record again before the refusal came back,
//! those amendments are rejected too: by the endpoint when they went in the
//! same push (it refuses what amends a version it refused in that push), or
//! by the store when the refusal arrives while they are still on their way
//! ([`Store::acknowledge`] holds back what builds on a refused change).
//! Correcting the newest withdraws them all: the correction supersedes what
//! the oldest of them superseded. A refused change that another live version
//! amends cannot be withdrawn without leaving that version amending a
//! withdrawn one, which would fork the record when pushed, so its correction
//! is refused ([`StoreError::RejectedChangeAmended`]).
//!
//! When two versions amend the same refused change (two edit screens opened
//! on one version, or a save retried under a new version id), the chain has
//! two newest changes. Correcting either withdraws it and the refused
//! changes below it; the other branch, rejected with them and never at the
//! endpoint, does not stop that, and stays rejected. It cannot be sent again
//! ([`StoreError::BuildsOnWithdrawn`]), so the reason the store gave when it
//! held that branch back, which offered to send the refused change again
//! first, is reworded by the correction to say so and to ask for the
//! branch's own correction. That correction walks past the withdrawn changes
//! and supersedes what they superseded too, so the record forks where the
//! clinician forked it, and is reconciled once both corrections are synced.

use doorstep_domain::ValidationError;
use doorstep_domain::network::{ClinicianId, DeviceId};
use doorstep_domain::record::{
    MAX_MERGES, RecordId, RecordVersion, Validate, VersionId, VersionMeta,
};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};

use crate::error::{Result, StoreError};
use crate::outbox::{ChangeId, OutboxState, enqueue, parse_change_id, reword_behind_withdrawn};
use crate::records::{
    RecordContent, RecordKind, check_merges, check_version_count, insert_version, to_json,
};
use crate::store::Store;

/// What a correction of a rejected change replaces and builds on, from
/// [`Store::correction_base`]: the shell builds the correction's envelope
/// from it ([`CorrectionBase::meta`]) and can tell the clinician how many
/// refused changes the correction takes the place of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrectionBase {
    /// The record corrected: the correction is a version of it.
    pub record_id: RecordId,
    /// The record's kind: the correction must be of the same.
    pub kind: RecordKind,
    /// The version the correction supersedes: the one the oldest refused
    /// change it builds on superseded (whether it withdraws that change now
    /// or the correction of another branch withdrew it before). `None` when
    /// that change was the record's first version, so the correction becomes
    /// the first version.
    pub supersedes: Option<VersionId>,
    /// The rejected changes the correction withdraws, newest first: the one
    /// asked for, then each refused change it builds on that is still
    /// rejected (one the correction of another branch withdrew already is
    /// not listed).
    pub withdraws: Vec<ChangeId>,
    /// The heads the changes it withdraws merged (a refused reconciliation),
    /// less any that may not be merged now (a change of this device's
    /// refused since): the correction reconciles them too unless the
    /// clinician chooses otherwise (see [`Store::correct_rejected`]).
    ///
    /// Every one is listed, even when a chain of refused changes merged more
    /// than one version may ([`MAX_MERGES`]): then a correction merging them
    /// all is refused ([`StoreError::TooManyMerges`]), and the clinician
    /// reconciles in two steps, the correction merging at most
    /// [`MAX_MERGES`] of them and an amendment of it the rest. Shortening
    /// the list here would make a correction that quietly leaves heads it
    /// was meant to reconcile.
    pub merges: Vec<VersionId>,
}

impl CorrectionBase {
    /// The envelope of a correction with a new `version_id`, written by
    /// `author` on `device` at `written_at`: the same record, superseding
    /// [`CorrectionBase::supersedes`] and merging [`CorrectionBase::merges`].
    /// Put the clinician's content in it and
    /// hand it to [`Store::correct_rejected`].
    pub fn meta(
        &self,
        version_id: VersionId,
        author: ClinicianId,
        device: DeviceId,
        written_at: Timestamp,
    ) -> VersionMeta {
        VersionMeta {
            record_id: self.record_id,
            version_id,
            supersedes: self.supersedes,
            merges: self.merges.clone(),
            author,
            device,
            written_at,
        }
    }
}

impl Store {
    /// What a correction of the rejected change `rejected` builds on: its
    /// record, the version it must supersede, and the refused changes it will
    /// withdraw. Reads only.
    ///
    /// Refused as [`Store::correct_rejected`] refuses an item:
    /// [`StoreError::UnknownChange`], [`StoreError::NotRejected`] or
    /// [`StoreError::RejectedChangeAmended`].
    pub fn correction_base(&self, rejected: ChangeId) -> Result<CorrectionBase> {
        // One snapshot for the walk's reads.
        let snapshot = self.conn.unchecked_transaction()?;
        let base = self.find_base(rejected)?;
        snapshot.commit()?;
        Ok(base)
    }

    /// Saves `correction` in place of the rejected change `rejected`, in one
    /// transaction: the correction is stored and queued like any saved
    /// version, and the rejected change (with any refused changes it builds
    /// on, see [`Store::correction_base`]) becomes
    /// [`OutboxState::Withdrawn`], naming the correction's item. Returns the
    /// correction's change id.
    ///
    /// The caller builds the correction like any version it saves, with its
    /// envelope from [`CorrectionBase::meta`] and the clinician's content
    /// (typically the refused version's, put right). Its record and kind must
    /// be the rejected change's (else [`StoreError::Invalid`] on
    /// `meta.record_id`), it must supersede exactly
    /// [`CorrectionBase::supersedes`] (else on `meta.supersedes`), and its
    /// version id must be new (else on `meta.version_id`). What it merges is
    /// the clinician's choice ([`CorrectionBase::merges`] is what the refused
    /// changes merged), under the rules of any saved version's merges (else
    /// on `meta.merges`). A correction merging more than one version may
    /// ([`MAX_MERGES`], when the refused changes together merged more) is
    /// [`StoreError::TooManyMerges`]: merge at most that many in the
    /// correction, then the rest in an amendment of it.
    ///
    /// Refused, with nothing changed, when the correction fails its checks
    /// ([`Validate`]), for an id no item has ([`StoreError::UnknownChange`]),
    /// for an item that is not rejected ([`StoreError::NotRejected`]: a
    /// second tap finds it withdrawn, with its correction named in its
    /// state), and when another version on the device amends a change the
    /// correction would withdraw ([`StoreError::RejectedChangeAmended`]).
    ///
    /// A rejected change on another branch, held back by the store and
    /// building on a change this correction withdraws, can no longer be sent
    /// again after it: the store's reason on it is reworded to say so, and to
    /// ask for the correction of the newest change of its branch, whichever
    /// refused change the old reason named (that one may have been sent
    /// again and taken since). A reason the endpoint gave is kept as it was.
    pub fn correct_rejected<T: RecordContent>(
        &mut self,
        rejected: ChangeId,
        correction: &RecordVersion<T>,
    ) -> Result<ChangeId> {
        // Before the generic check, which would name only the field: the
        // clinician needs to hear how to reconcile that many heads.
        let merges = correction.meta.merges.len();
        if merges > MAX_MERGES {
            return Err(StoreError::TooManyMerges {
                change_id: rejected,
                merges,
                limit: MAX_MERGES,
            });
        }
        correction.validate()?;
        let body = to_json(correction)?;
        // Unchecked so that the walk can read through `self` inside it; no
        // other transaction is open on this connection.
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let base = self.find_base(rejected)?;
        let meta = &correction.meta;
        if base.kind != T::KIND {
            return Err(ValidationError::new(
                "meta.record_id",
                "the rejected change is a record of another kind",
            )
            .into());
        }
        if meta.record_id != base.record_id {
            return Err(ValidationError::new(
                "meta.record_id",
                "must name the record of the rejected change",
            )
            .into());
        }
        if meta.supersedes != base.supersedes {
            return Err(ValidationError::new(
                "meta.supersedes",
                "must name the version the refused change superseded \
                 (none when it was the record's first version)",
            )
            .into());
        }
        check_merges(&tx, T::KIND, meta)?;
        check_version_count(&tx, meta)?;
        let taken: bool = tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM record_versions WHERE version_id = ?1)")?
            .query_row([meta.version_id.0.to_string()], |row| row.get(0))?;
        if taken {
            return Err(ValidationError::new(
                "meta.version_id",
                "is already stored: a correction is a new version",
            )
            .into());
        }
        insert_version(&tx, T::KIND, correction, &body, "local")?;
        let change_id = enqueue(&tx, T::KIND, meta)?;
        let now = Timestamp::now().to_string();
        for withdrawn in &base.withdraws {
            tx.prepare_cached(
                "UPDATE outbox SET state = 'withdrawn', corrected_by = ?1, state_changed_at = ?2
                 WHERE change_id = ?3 AND state = 'rejected'",
            )?
            .execute(params![
                change_id.0.to_string(),
                now,
                withdrawn.0.to_string()
            ])?;
        }
        reword_behind_withdrawn(&tx, &base.withdraws, change_id)?;
        tx.commit()?;
        Ok(change_id)
    }

    /// Walks from the rejected change up through the refused changes it
    /// builds on, to the version a correction must supersede. Reads through
    /// `self.conn`, inside the caller's transaction.
    fn find_base(&self, rejected: ChangeId) -> Result<CorrectionBase> {
        let item = self
            .outbox_item(rejected)?
            .ok_or(StoreError::UnknownChange(rejected))?;
        if !matches!(item.state, OutboxState::Rejected { .. }) {
            return Err(StoreError::NotRejected {
                change_id: rejected,
                state: item.state.as_str(),
            });
        }
        let mut withdraws = vec![item.change_id];
        // The change the walk is at, and the version it came up from, which
        // amends it (withdrawn by this correction, so not a reason to refuse).
        let (mut at, mut at_change, mut above) = (item.version_id, item.change_id, None);
        let mut merges = Vec::new();
        let supersedes = loop {
            for merged in self.merges_of(at)? {
                if !merges.contains(&merged) && self.mergeable(merged)? {
                    merges.push(merged);
                }
            }
            if let Some(amended_by) = self.live_amendment(item.record_id, at, above)? {
                return Err(StoreError::RejectedChangeAmended {
                    change_id: at_change,
                    amended_by,
                });
            }
            let (previous, change) = match self.previous_of(at)? {
                Some(Previous::Refused(previous, change)) => {
                    withdraws.push(change);
                    (previous, change)
                }
                Some(Previous::Withdrawn(previous, change)) => (previous, change),
                Some(Previous::Held(previous)) => break Some(previous),
                None => break None,
            };
            above = Some(at);
            at = previous;
            at_change = change;
        };
        // What the correction supersedes is not also merged. The chain's
        // merges together may be more than one version may name: all are
        // kept, so the caller sees every head the refused changes meant to
        // reconcile (a correction merging them all is refused, see
        // `StoreError::TooManyMerges`).
        merges.retain(|m| Some(*m) != supersedes);
        Ok(CorrectionBase {
            record_id: item.record_id,
            kind: item.kind,
            supersedes,
            withdraws,
            merges,
        })
    }

    /// Whether a version may be merged now (see `check_merges`): pulled, or
    /// a change of this device the endpoint accepted. A merged change that
    /// has since been refused (offered again after a restore, say) is left
    /// out of what a correction suggests merging.
    fn mergeable(&self, version: VersionId) -> Result<bool> {
        let state: Option<Option<String>> = self
            .conn
            .prepare_cached(
                "SELECT o.state FROM record_versions v
                 LEFT JOIN outbox o ON o.version_id = v.version_id WHERE v.version_id = ?1",
            )?
            .query_row([version.0.to_string()], |row| row.get(0))
            .optional()?;
        Ok(matches!(
            state.as_ref().map(Option::as_deref),
            Some(None | Some("accepted" | "filed"))
        ))
    }

    /// The heads `version` merges, by id.
    fn merges_of(&self, version: VersionId) -> Result<Vec<VersionId>> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT merged FROM version_merges WHERE version_id = ?1")?;
        let rows = statement.query_map([version.0.to_string()], |row| row.get::<_, String>(0))?;
        rows.map(|merged| parse_version_id(&merged?)).collect()
    }

    /// A version of `record` amending or merging `version` that stops a
    /// correction from withdrawing `version`: any but a withdrawn one and
    /// `from`, the amendment of `version` the walk came up through.
    ///
    /// Where the walk came up from an amendment (`from` is set), a rejected
    /// version on another branch does not stop it. `version` is then a
    /// refused change too, so that branch was refused or held back with it:
    /// none of it reached the endpoint, and none of it can go there alone
    /// once `version` is withdrawn ([`Store::requeue_rejected`] refuses it,
    /// [`StoreError::BuildsOnWithdrawn`]). It stays rejected and is corrected
    /// on its own, its correction walking past the withdrawn `version` to
    /// what it superseded. Were it counted, two amendments of one refused
    /// change (two edit screens on one version, or a save retried under a
    /// new version id) would each stop the other's correction, and neither
    /// they nor the refused change could ever be synced. The version asked
    /// for (`from` unset) is still stopped by a rejected amendment of its
    /// own: the newest of the chain is the one to correct, and its
    /// correction carries what the older ones said.
    fn live_amendment(
        &self,
        record: RecordId,
        version: VersionId,
        from: Option<VersionId>,
    ) -> Result<Option<VersionId>> {
        let found: Option<String> = self
            .conn
            .prepare_cached(
                "SELECT v.version_id
                 FROM record_versions v LEFT JOIN outbox o ON o.version_id = v.version_id
                 WHERE v.record_id = ?1 AND v.version_id IS NOT ?3
                   AND (v.supersedes = ?2
                        OR EXISTS (SELECT 1 FROM version_merges m
                                   WHERE m.version_id = v.version_id AND m.merged = ?2))
                   AND o.state IS NOT 'withdrawn'
                   AND (?3 IS NULL OR o.state IS NOT 'rejected')
                 ORDER BY v.rowid LIMIT 1",
            )?
            .query_row(
                params![
                    record.0.to_string(),
                    version.0.to_string(),
                    from.map(|v| v.0.to_string())
                ],
                |row| row.get(0),
            )
            .optional()?;
        found.as_deref().map(parse_version_id).transpose()
    }

    /// The version `version` supersedes, as the walk meets it; `None` for
    /// a first version.
    fn previous_of(&self, version: VersionId) -> Result<Option<Previous>> {
        let (previous, change, state): (Option<String>, Option<String>, Option<String>) = self
            .conn
            .prepare_cached(
                "SELECT v.supersedes, o.change_id, o.state
                 FROM record_versions v
                 LEFT JOIN outbox o ON o.version_id = v.supersedes
                     AND o.state IN ('rejected', 'withdrawn')
                 WHERE v.version_id = ?1",
            )?
            .query_row([version.0.to_string()], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?;
        let Some(previous) = previous else {
            return Ok(None);
        };
        let previous = parse_version_id(&previous)?;
        let change = change.as_deref().map(parse_change_id).transpose()?;
        Ok(Some(match (change, state.as_deref()) {
            (Some(change), Some("rejected")) => Previous::Refused(previous, change),
            (Some(change), _) => Previous::Withdrawn(previous, change),
            (None, _) => Previous::Held(previous),
        }))
    }
}

/// The version a change supersedes, as the walk of [`Store::find_base`]
/// meets it.
enum Previous {
    /// A change of this device that is rejected too (refused, or held back
    /// with a refused change): the correction withdraws it as well, and the
    /// walk goes on past it.
    Refused(VersionId, ChangeId),
    /// A change a correction has withdrawn already: the correction of an
    /// amendment of it on another branch, made first. The walk goes on past
    /// it, since a correction must not amend a version the endpoint never
    /// holds; it is not withdrawn again (it names the correction that did).
    Withdrawn(VersionId, ChangeId),
    /// Any other version (pulled, or a change on its way to or held by the
    /// endpoint): the one the correction supersedes.
    Held(VersionId),
}

fn parse_version_id(text: &str) -> Result<VersionId> {
    uuid::Uuid::parse_str(text)
        .map(VersionId)
        .map_err(|_| StoreError::Decode { what: "version id" })
}
