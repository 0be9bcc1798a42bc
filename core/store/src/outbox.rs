//! The outbox: every locally written version, queued for the endpoint in the
//! order it was saved, with its state until the endpoint has filed it.
//!
//! ```text
//! pending --mark_sent--> sent --acknowledge--> accepted --acknowledge--> filed
//!    ^  |                 |
//!    |  +-----------------+--acknowledge--> rejected (the endpoint's reason, or
//!    |                                         |  |  the store's: see below)
//!    +------------requeue_rejected-------------+  |  (the clinician's "send again")
//!                                                 |
//!                             correct_rejected ---+  (the clinician's correction)
//!                                                 v
//!                          withdrawn (reason kept, and the correcting item)
//! ```
//!
//! What the endpoint says only moves a state forward: an acknowledgement that
//! arrives twice or late (accepted after filed) changes nothing, so the sync
//! engine can apply what it hears without keeping its own state. The ways on
//! from `rejected` are the clinician's: send the item again
//! ([`Store::requeue_rejected`]) once the reason for refusing it has gone
//! away (a proxy that took less than the protocol promises, a misconfigured
//! endpoint), or correct it ([`Store::correct_rejected`]): the correction is
//! a new item and the refused one is `withdrawn`, a final state that is never
//! pushed and is not unsynced. Items are never deleted: a rejected or
//! withdrawn item stays, visible with its reason, and never blocks the items
//! after it; accepted and filed items stay as the device's record of what
//! reached the GP record. A `sent` item is pushed again on the next sync (the
//! endpoint stores a change id once), which is how a push cut off before its
//! answer resumes.
//!
//! The one exception to "never blocks": an item still on its way that builds
//! on a change the endpoint has just refused (its version amends the refused
//! one, or amends such an item in turn) is rejected with it, by the store,
//! with a reason naming the refused change. Pushed alone it would reach the
//! endpoint amending a version the endpoint never holds, and fork its record
//! there and on every device; rejected, it is put right with the refused
//! change, by correcting the newest of them or sending them again in order.
//!
//! The next push is chosen by size as well as by count ([`PushLimit`]): a
//! record can be up to a megabyte, so the store reads only the records one
//! push can carry.

use doorstep_domain::record::{RecordId, VersionId, VersionMeta};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, Transaction, params};
use uuid::Uuid;

use crate::error::{Result, StoreError};
use crate::records::RecordKind;
use crate::store::Store;

/// The id of one change, made on the device (UUIDv7, so ids sort by time);
/// the endpoint stores a change once however often it is pushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChangeId(pub Uuid);

impl std::fmt::Display for ChangeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

pub(crate) fn parse_change_id(text: &str) -> Result<ChangeId> {
    Uuid::parse_str(text)
        .map(ChangeId)
        .map_err(|_| StoreError::Decode { what: "change id" })
}

/// Where an outbox item is on its way to the GP record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxState {
    /// Saved on the device, not yet pushed.
    Pending,
    /// Pushed, no answer yet. Pushed again on the next sync.
    Sent,
    /// The endpoint stored it. Queued again ([`Store::reoffer`]) when the
    /// endpoint says it no longer holds it, after a restore from an older
    /// backup: the one way back to [`OutboxState::Pending`].
    Accepted,
    /// The endpoint refused it, for this reason; or the store did, because
    /// it builds on a change the endpoint refused (the reason names that
    /// change), and alone it would fork its record at the endpoint. It stays
    /// on the device, is not pushed again on its own, and counts as
    /// unsynced. The clinician can correct it ([`Store::correct_rejected`]: a
    /// new change that takes its place) or, when the reason has gone away,
    /// send this one again unchanged ([`Store::requeue_rejected`]; one built
    /// on a refused change goes only after that one, and never once a
    /// correction has withdrawn that one, when the store's reason says so).
    /// It cannot be amended:
    /// an amendment of a version the endpoint never holds forks the record
    /// there.
    Rejected {
        /// The endpoint's reason, as it gave it, or the store's.
        reason: String,
    },
    /// The endpoint refused it and the clinician replaced it with a
    /// correction ([`Store::correct_rejected`]). Final: never pushed, not
    /// unsynced (what it said lives on in the correction), and its version is
    /// out of the record's lineage on this device (never a head, and it cannot
    /// be amended), though it stays in the record's history as what was
    /// written and refused.
    Withdrawn {
        /// The endpoint's reason for refusing it, kept for the audit.
        reason: String,
        /// The item carrying the correction that took its place.
        corrected_by: ChangeId,
    },
    /// The outcome is in the patient's GP record.
    Filed,
}

impl OutboxState {
    /// The state's name as stored.
    pub fn as_str(&self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sent => "sent",
            OutboxState::Accepted => "accepted",
            OutboxState::Rejected { .. } => "rejected",
            OutboxState::Withdrawn { .. } => "withdrawn",
            OutboxState::Filed => "filed",
        }
    }

    /// True until the endpoint holds the change, and never for a withdrawn
    /// one, which the endpoint will never hold and nobody needs it to.
    pub fn is_unsynced(&self) -> bool {
        matches!(
            self,
            OutboxState::Pending | OutboxState::Sent | OutboxState::Rejected { .. }
        )
    }
}

/// What the endpoint said about a pushed change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acknowledgement {
    /// Stored by the endpoint.
    Accepted,
    /// Refused, with the reason to show the clinician.
    Rejected {
        /// Why; bounded to [`MAX_REASON_CHARS`] when stored.
        reason: String,
    },
    /// Filed in the GP record.
    Filed,
}

/// Longest rejection reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// One change in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Position in push order: items are pushed by ascending `seq`.
    pub seq: i64,
    /// The change's id, made on the device.
    pub change_id: ChangeId,
    /// Which kind of record.
    pub kind: RecordKind,
    /// The record.
    pub record_id: RecordId,
    /// The version this change carries.
    pub version_id: VersionId,
    /// Where it is now.
    pub state: OutboxState,
    /// When it was saved.
    pub created_at: Timestamp,
    /// When its state last changed.
    pub state_changed_at: Timestamp,
    /// The change itself: the JSON of the `RecordVersion`, exactly as stored.
    pub payload: String,
}

/// How much one push may carry, for [`Store::push_batch`]. The store picks
/// the items by size itself so that it reads no more records than the push
/// can take: a record can be up to a megabyte, and a batch read whole only to
/// be cut down could hold hundreds of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushLimit {
    /// Most items.
    pub items: usize,
    /// Most bytes, counting for each item its payload's length in bytes plus
    /// `overhead_per_item`. Exceeded only by a first item that is larger on
    /// its own, which comes alone so that a large change is never stuck.
    pub bytes: usize,
    /// What each item adds besides its payload (the sync protocol's envelope
    /// around a change), so that `bytes` can bound the push as sent.
    pub overhead_per_item: usize,
}

/// How many items are in each state: for the sync status screen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Not yet pushed.
    pub pending: u64,
    /// Pushed, unanswered.
    pub sent: u64,
    /// Stored by the endpoint.
    pub accepted: u64,
    /// Refused by the endpoint.
    pub rejected: u64,
    /// Refused, then replaced by a correction: kept for the audit only.
    pub withdrawn: u64,
    /// In the GP record.
    pub filed: u64,
}

impl OutboxCounts {
    /// Items the endpoint does not hold and must still get: what a wipe
    /// would lose. Withdrawn items are not among them (their corrections
    /// are).
    pub fn unsynced(&self) -> u64 {
        self.pending + self.sent + self.rejected
    }
}

const ITEM_COLUMNS: &str = "o.seq, o.change_id, o.kind, o.record_id, o.version_id, o.state,
     o.reason, o.created_at, o.state_changed_at, v.body, o.corrected_by";

/// Queues a just-stored local version; called inside the saving transaction.
pub(crate) fn enqueue(
    tx: &Transaction<'_>,
    kind: RecordKind,
    meta: &VersionMeta,
) -> Result<ChangeId> {
    let change_id = ChangeId(Uuid::now_v7());
    let now = Timestamp::now().to_string();
    tx.prepare_cached(
        "INSERT INTO outbox
             (change_id, version_id, kind, record_id, state, created_at, state_changed_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
    )?
    .execute(params![
        change_id.0.to_string(),
        meta.version_id.0.to_string(),
        kind.as_str(),
        meta.record_id.0.to_string(),
        now,
    ])?;
    Ok(change_id)
}

/// Applies acknowledgements inside a transaction; returns how many of the
/// items they name moved. Unknown ids and backward moves are skipped.
///
/// Then every change that builds on a change rejected here is held back:
/// each item still `pending` or `sent` whose version amends the rejected
/// one's, and in turn each item amending one of those, becomes rejected
/// too, with a reason naming the change the endpoint refused (see
/// [`hold_back_amendments`]). They are not counted in the result. The named
/// items are moved first, so an item answered in the same acknowledgements
/// keeps its own answer whatever their order.
pub(crate) fn apply_acknowledgements(
    tx: &Transaction<'_>,
    acks: &[(ChangeId, Acknowledgement)],
) -> Result<usize> {
    let now = Timestamp::now().to_string();
    let mut moved = 0;
    let mut refused = Vec::new();
    for (id, ack) in acks {
        let (state, reason, from): (&str, Option<String>, &str) = match ack {
            Acknowledgement::Accepted => ("accepted", None, "'pending', 'sent'"),
            Acknowledgement::Rejected { reason } => (
                "rejected",
                Some(reason.chars().take(MAX_REASON_CHARS).collect()),
                "'pending', 'sent'",
            ),
            Acknowledgement::Filed => ("filed", None, "'pending', 'sent', 'accepted'"),
        };
        let changed = tx
            .prepare_cached(&format!(
                "UPDATE outbox SET state = ?1, reason = ?2, state_changed_at = ?3
                 WHERE change_id = ?4 AND state IN ({from})"
            ))?
            .execute(params![state, reason, now, id.0.to_string()])?;
        if changed > 0 && matches!(ack, Acknowledgement::Rejected { .. }) {
            refused.push(*id);
        }
        moved += changed;
    }
    for id in refused {
        hold_back_amendments(tx, id, &now)?;
    }
    Ok(moved)
}

/// Rejects, on the device, every item still on its way (`pending` or `sent`)
/// that builds on `refused`, a change the endpoint has just refused: its
/// version amends `refused`'s, or amends one of the items rejected here in
/// turn. Each gets a reason naming `refused` and saying what to do, and
/// nothing of the record.
///
/// Such an amendment must not reach the endpoint on its own. The endpoint
/// would take it (it accepts an amendment of a version it never held, for
/// corrections made by older devices), and then it and every other device
/// would hold the version `refused` amended and this amendment, with
/// nothing superseding the former: a fork nobody made. And on this device
/// neither change could be put right: `refused` would be amended by a
/// version the endpoint holds ([`StoreError::RejectedChangeAmended`]), and
/// the amendment would not be rejected. Rejected here, the clinician
/// corrects the newest ([`Store::correct_rejected`] withdraws the whole
/// chain and the correction supersedes what `refused` superseded), or sends
/// `refused` again and then these after it ([`Store::requeue_rejected`]),
/// until a correction of another branch withdraws `refused` or one of these,
/// when the reasons below it are reworded ([`reword_behind_withdrawn`]).
///
/// `sent` items are held back too. Each was pushed, but none has an answer
/// of its own to wait for: the endpoint stored nothing of a push it answered
/// 422 or 413, so an item left `sent` after such an answer named only
/// `refused` (an endpoint that does not name amendments of the refused
/// changes in its 422, or a push halved after a 413 and `refused` then
/// refused as too large alone) would go next, alone, and be taken. An item
/// answered in the same acknowledgements has moved on before this runs.
fn hold_back_amendments(tx: &Transaction<'_>, refused: ChangeId, now: &str) -> Result<()> {
    let reason = held_back_reason(refused);
    let merge_reason = held_back_merge_reason(refused);
    let mut below: Vec<String> = tx
        .prepare_cached("SELECT version_id FROM outbox WHERE change_id = ?1")?
        .query_map([refused.0.to_string()], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    while let Some(version) = below.pop() {
        // The items still on its way are few, so start from them (by the
        // state index) rather than scan every version for `supersedes`. A
        // reconciliation merging the refused version builds on it as an
        // amendment does: the endpoint refuses a merge of a version it does
        // not hold, for a reason that would not say which refusal it follows.
        let amending: Vec<(String, bool)> = tx
            .prepare_cached(
                "SELECT o.version_id, v.supersedes IS ?1 FROM outbox o
                 JOIN record_versions v ON v.version_id = o.version_id
                 WHERE o.state IN ('pending', 'sent')
                   AND (v.supersedes = ?1
                        OR EXISTS (SELECT 1 FROM version_merges m
                                   WHERE m.version_id = o.version_id AND m.merged = ?1))",
            )?
            .query_map([&version], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (amendment, amends) in amending {
            let why = if amends { &reason } else { &merge_reason };
            tx.prepare_cached(
                "UPDATE outbox SET state = 'rejected', reason = ?1, state_changed_at = ?2
                 WHERE version_id = ?3 AND state IN ('pending', 'sent')",
            )?
            .execute(params![why, now, amendment])?;
            below.push(amendment);
        }
    }
    Ok(())
}

/// The store's reason for an item it held back because it amends
/// `refused`, or amends an item held back behind it.
fn held_back_reason(refused: ChangeId) -> String {
    format!(
        "This change builds on change {refused}, which the endpoint refused, \
         and alone it would fork its record there; correct the newest change of the record \
         (the correction replaces them all), or send change {refused} again, then this one"
    )
}

/// The store's reason for an item it held back because it merges `refused`.
fn held_back_merge_reason(refused: ChangeId) -> String {
    format!(
        "This change merges change {refused}, which the endpoint refused, and alone the \
         endpoint would refuse it too; send change {refused} again, then this one, or correct \
         this change (its correction leaves the refused change out of what it merges), then \
         correct change {refused} on its own"
    )
}

/// Whether `reason` is one the store wrote when it held an item back
/// ([`held_back_reason`] or [`held_back_merge_reason`]), whichever change
/// it names. That change is the one the endpoint refused first, which need
/// not be among those a later correction withdraws (it may have been sent
/// again and taken since), so the text is checked against each change id
/// it holds rather than against the changes at hand. An endpoint's reason
/// never reads exactly so.
fn is_held_back_reason(reason: &str) -> bool {
    reason
        .split(|c: char| !(c.is_ascii_hexdigit() || c == '-'))
        .filter_map(|word| Uuid::parse_str(word).ok())
        .map(ChangeId)
        .any(|named| reason == held_back_reason(named) || reason == held_back_merge_reason(named))
}

/// The store's reason for an item held back behind `withdrawn`, once the
/// correction `corrected_by` has withdrawn it. `withdrawn` may be a change
/// the endpoint refused, or one the store held back with it that the
/// endpoint never saw, so the reason says "refused, or held back".
fn behind_withdrawn_reason(withdrawn: ChangeId, corrected_by: ChangeId) -> String {
    format!(
        "This change builds on change {withdrawn}, which was refused, or held back with a \
         refused change, and correction {corrected_by} has since withdrawn: the endpoint will \
         never hold change {withdrawn}, so this change cannot be sent again. Correct the newest \
         change of its branch (this one, unless another rejected change builds on it); the \
         correction replaces the branch and leaves change {withdrawn} out"
    )
}

/// Rewords the store's own reason on every item still rejected that builds
/// on a change the correction `corrected_by` has just withdrawn
/// (`withdrawn`): it amends or merges one, or builds on such an item in
/// turn. Called inside the correcting transaction, after the withdrawal.
///
/// Such an item was held back (see [`hold_back_amendments`]) with a reason
/// offering to send the refused change again, then it. That way is closed
/// now: a withdrawn change is never sent, and the item cannot go alone
/// ([`StoreError::BuildsOnWithdrawn`], or [`StoreError::BuildsOnRejected`]
/// behind an item that cannot go either). The one way left is a correction
/// of the newest change of its branch, so the reason says that, naming the
/// withdrawn change it builds on and the correction. A reason the endpoint
/// gave is its own and is kept as it was. Every held-back reason the walk
/// meets is reworded, whichever change it names: it names the change the
/// endpoint refused first, which may have been sent again and taken since
/// while a change between it and this item is withdrawn now, and offering
/// to send that one again would point at a way that fails.
pub(crate) fn reword_behind_withdrawn(
    tx: &Transaction<'_>,
    withdrawn: &[ChangeId],
    corrected_by: ChangeId,
) -> Result<()> {
    // Each version to look below, with the withdrawn change it descends from.
    let mut below = Vec::new();
    for &id in withdrawn {
        let version: String = tx
            .prepare_cached("SELECT version_id FROM outbox WHERE change_id = ?1")?
            .query_row([id.0.to_string()], |row| row.get(0))?;
        below.push((version, id));
    }
    // Changes that can no longer be sent again: those withdrawn, and every
    // rejected item met below them.
    let mut stuck = withdrawn.to_vec();
    let mut met = Vec::new();
    while let Some((version, root)) = below.pop() {
        let building: Vec<(String, String, Option<String>)> = tx
            .prepare_cached(
                "SELECT o.change_id, o.version_id, o.reason FROM outbox o
                 JOIN record_versions v ON v.version_id = o.version_id
                 WHERE o.state = 'rejected'
                   AND (v.supersedes = ?1
                        OR EXISTS (SELECT 1 FROM version_merges m
                                   WHERE m.version_id = o.version_id AND m.merged = ?1))",
            )?
            .query_map([&version], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        for (change, version, reason) in building {
            let change = parse_change_id(&change)?;
            if stuck.contains(&change) {
                continue;
            }
            stuck.push(change);
            met.push((change, reason, root));
            below.push((version, root));
        }
    }
    for (change, reason, root) in met {
        if reason.is_some_and(|reason| is_held_back_reason(&reason)) {
            tx.prepare_cached(
                "UPDATE outbox SET reason = ?1 WHERE change_id = ?2 AND state = 'rejected'",
            )?
            .execute(params![
                behind_withdrawn_reason(root, corrected_by),
                change.0.to_string()
            ])?;
        }
    }
    Ok(())
}

/// The correction now standing for a withdrawn change: `corrected_by`, the
/// correction that withdrew it, or, when that correction was refused and
/// corrected in turn (withdrawn too), the correction that took its place,
/// and so on to one that is not withdrawn. That is the one the clinician
/// can amend; a withdrawn correction cannot be amended, so naming it would
/// send them to a way that fails.
///
/// A correction is always a newer change than what it withdraws, so the
/// chain ends; one that came back to a change already met, or a withdrawn
/// item naming no correction, can only be damage, and is
/// [`StoreError::Decode`].
pub(crate) fn live_correction(tx: &Transaction<'_>, corrected_by: ChangeId) -> Result<ChangeId> {
    let mut met = vec![corrected_by];
    loop {
        let current = met[met.len() - 1];
        let next: Option<(String, Option<String>)> = tx
            .prepare_cached("SELECT state, corrected_by FROM outbox WHERE change_id = ?1")?
            .query_row([current.0.to_string()], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        match next {
            Some((state, Some(by))) if state == "withdrawn" => {
                let by = parse_change_id(&by)?;
                if met.contains(&by) {
                    return Err(StoreError::Decode {
                        what: "outbox state",
                    });
                }
                met.push(by);
            }
            Some((state, None)) if state == "withdrawn" => {
                return Err(StoreError::Decode {
                    what: "outbox state",
                });
            }
            Some(_) => return Ok(current),
            None => return Err(StoreError::Decode { what: "change id" }),
        }
    }
}

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<RawItem> {
    Ok(RawItem {
        seq: row.get(0)?,
        change_id: row.get(1)?,
        kind: row.get(2)?,
        record_id: row.get(3)?,
        version_id: row.get(4)?,
        state: row.get(5)?,
        reason: row.get(6)?,
        created_at: row.get(7)?,
        state_changed_at: row.get(8)?,
        payload: row.get(9)?,
        corrected_by: row.get(10)?,
    })
}

/// An item as read, before its columns are checked.
struct RawItem {
    seq: i64,
    change_id: String,
    kind: String,
    record_id: String,
    version_id: String,
    state: String,
    reason: Option<String>,
    created_at: String,
    state_changed_at: String,
    payload: String,
    corrected_by: Option<String>,
}

impl RawItem {
    fn check(self) -> Result<OutboxItem> {
        let uuid =
            |text: &str, what| Uuid::parse_str(text).map_err(|_| StoreError::Decode { what });
        let time = |text: &str| {
            text.parse::<Timestamp>()
                .map_err(|_| StoreError::Decode { what: "timestamp" })
        };
        let state = match (self.state.as_str(), self.reason, self.corrected_by) {
            ("pending", ..) => OutboxState::Pending,
            ("sent", ..) => OutboxState::Sent,
            ("accepted", ..) => OutboxState::Accepted,
            ("rejected", Some(reason), _) => OutboxState::Rejected { reason },
            ("withdrawn", Some(reason), Some(by)) => OutboxState::Withdrawn {
                reason,
                corrected_by: parse_change_id(&by)?,
            },
            ("filed", ..) => OutboxState::Filed,
            _ => {
                return Err(StoreError::Decode {
                    what: "outbox state",
                });
            }
        };
        Ok(OutboxItem {
            seq: self.seq,
            change_id: ChangeId(uuid(&self.change_id, "change id")?),
            kind: RecordKind::from_column(&self.kind)?,
            record_id: RecordId(uuid(&self.record_id, "record id")?),
            version_id: VersionId(uuid(&self.version_id, "version id")?),
            state,
            created_at: time(&self.created_at)?,
            state_changed_at: time(&self.state_changed_at)?,
            payload: self.payload,
        })
    }
}

impl Store {
    /// The next items to push, oldest first: pending ones and sent ones that
    /// never got an answer. Rejected, withdrawn, accepted and filed items
    /// are skipped, so a rejected item never holds up those after it.
    ///
    /// Stops at `limit.items`, and before the item that would take the batch
    /// past `limit.bytes`; the first item always comes (alone when it is
    /// larger than `limit.bytes`), so a change too large for the budget
    /// still reaches the sync engine, which handles it. Sizes are read
    /// without reading the records, and only the records chosen are loaded.
    pub fn push_batch(&self, limit: PushLimit) -> Result<Vec<OutboxItem>> {
        // One snapshot for both reads: the items loaded are exactly those
        // measured even if another connection changes the outbox meanwhile.
        let snapshot = self.conn.unchecked_transaction()?;
        let Some((count, last_seq)) = self.fitting(limit)? else {
            return Ok(Vec::new());
        };
        let items = self.items(
            "WHERE o.state IN ('pending', 'sent') AND o.seq <= ?1 ORDER BY o.seq LIMIT ?2",
            params![last_seq, count],
        )?;
        snapshot.commit()?;
        Ok(items)
    }

    /// How many of the next items to push fit `limit`, and the `seq` of the
    /// last of them; `None` when there is nothing to push. Reads each item's
    /// size with `octet_length`, which SQLite answers from the row's header
    /// without loading the record.
    fn fitting(&self, limit: PushLimit) -> Result<Option<(i64, i64)>> {
        let most = i64::try_from(limit.items).unwrap_or(i64::MAX);
        let mut statement = self.conn.prepare_cached(
            "SELECT o.seq, octet_length(v.body) FROM outbox o
             JOIN record_versions v ON v.version_id = o.version_id
             WHERE o.state IN ('pending', 'sent') ORDER BY o.seq LIMIT ?1",
        )?;
        let mut rows = statement.query(params![most])?;
        let mut fitting: Option<(i64, i64)> = None;
        let mut bytes = 0_usize;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            let payload = usize::try_from(row.get::<_, i64>(1)?).unwrap_or(usize::MAX);
            bytes = bytes
                .saturating_add(payload)
                .saturating_add(limit.overhead_per_item);
            fitting = match fitting {
                None => Some((1, seq)),
                Some(_) if bytes > limit.bytes => break,
                Some((count, _)) => Some((count + 1, seq)),
            };
        }
        Ok(fitting)
    }

    /// Records that these items were handed to the endpoint. Only pending
    /// items move; returns how many did.
    pub fn mark_sent(&mut self, ids: &[ChangeId]) -> Result<usize> {
        let tx = crate::store::immediate(&mut self.conn)?;
        let now = Timestamp::now().to_string();
        let mut moved = 0;
        for id in ids {
            moved += tx
                .prepare_cached(
                    "UPDATE outbox SET state = 'sent', state_changed_at = ?1
                     WHERE change_id = ?2 AND state = 'pending'",
                )?
                .execute(params![now, id.0.to_string()])?;
        }
        tx.commit()?;
        Ok(moved)
    }

    /// Applies the endpoint's answers in one transaction. States only move
    /// forward (pending/sent to accepted or rejected, and on to filed from
    /// accepted); repeated, late or unknown acknowledgements are skipped.
    /// Returns how many of the named items moved.
    ///
    /// When a change is rejected, every change still pending or sent that
    /// builds on it (amends its version, or amends such a change in turn) is
    /// rejected with it, with a reason naming it: pushed alone, such a change
    /// would fork its record at the endpoint. The clinician then corrects the
    /// newest of them ([`Store::correct_rejected`]), or sends the refused one
    /// again and these after it ([`Store::requeue_rejected`]).
    pub fn acknowledge(&mut self, acks: &[(ChangeId, Acknowledgement)]) -> Result<usize> {
        let tx = crate::store::immediate(&mut self.conn)?;
        let moved = apply_acknowledgements(&tx, acks)?;
        tx.commit()?;
        Ok(moved)
    }

    /// Puts a rejected item back in the queue, so the next sync sends it
    /// again: the clinician's "send again" on a change refused for a reason
    /// that has gone away (a proxy in front of the endpoint took less than
    /// the protocol promises and the change was marked too large; the
    /// endpoint was misconfigured). The change goes exactly as it was: same
    /// change id, same record, same place in the queue (before any later
    /// change still queued, such as an amendment of it). Its rejection reason
    /// is cleared; if the endpoint refuses it again, the new answer is kept.
    ///
    /// Sending a change id again is safe: the endpoint stores a change once,
    /// and answers `duplicate` (taken as accepted) if it already holds it. A
    /// change refused for what it holds is refused again; the fix for that
    /// is a correction ([`Store::correct_rejected`]), a new change.
    ///
    /// Changes held back because they build on a refused change (rejected
    /// here when it was, see [`Store::acknowledge`]) stay rejected when that
    /// change is sent again: the clinician sends each again after it, once it
    /// is queued, and they go behind it. If it is refused again, they are
    /// held back again.
    ///
    /// Refused with [`StoreError::UnknownChange`] for an id no item has,
    /// [`StoreError::NotRejected`] for an item in any other state,
    /// [`StoreError::BuildsOnRejected`] for one that amends or merges a
    /// change still rejected (alone, it would fork its record at the
    /// endpoint, or be refused there for merging a version it does not
    /// hold), and [`StoreError::BuildsOnWithdrawn`] for one that amends or
    /// merges a change a correction has withdrawn (held back with it, while
    /// another amendment of it was corrected: the endpoint will never hold
    /// that change, so this one is corrected too); nothing changes then.
    pub fn requeue_rejected(&mut self, id: ChangeId) -> Result<()> {
        let tx = crate::store::immediate(&mut self.conn)?;
        // A rejected base is named before a withdrawn one: sending it again
        // first is the lighter way out.
        let base: Option<(String, String)> = tx
            .prepare_cached(
                "SELECT base.change_id, base.state FROM outbox o
                 JOIN record_versions v ON v.version_id = o.version_id
                 JOIN outbox base ON base.version_id = v.supersedes
                     OR base.version_id IN (SELECT m.merged FROM version_merges m
                                            WHERE m.version_id = o.version_id)
                 WHERE o.change_id = ?1 AND o.state = 'rejected'
                   AND base.state IN ('rejected', 'withdrawn')
                 ORDER BY base.state = 'withdrawn' LIMIT 1",
            )?
            .query_row([id.0.to_string()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((base, state)) = base {
            let base = parse_change_id(&base)?;
            return Err(if state == "withdrawn" {
                StoreError::BuildsOnWithdrawn {
                    change_id: id,
                    withdrawn: base,
                }
            } else {
                StoreError::BuildsOnRejected {
                    change_id: id,
                    rejected: base,
                }
            });
        }
        let moved = tx
            .prepare_cached(
                "UPDATE outbox SET state = 'pending', reason = NULL, state_changed_at = ?1
                 WHERE change_id = ?2 AND state = 'rejected'",
            )?
            .execute(params![Timestamp::now().to_string(), id.0.to_string()])?;
        tx.commit()?;
        if moved == 1 {
            return Ok(());
        }
        match self.outbox_item(id)? {
            None => Err(StoreError::UnknownChange(id)),
            Some(item) => Err(StoreError::NotRejected {
                change_id: id,
                state: item.state.as_str(),
            }),
        }
    }

    /// The change ids of every item the endpoint accepted, in push order:
    /// what to ask the endpoint about when it may have been restored from an
    /// older backup (see [`Store::reoffer`]).
    pub fn accepted_change_ids(&self) -> Result<Vec<ChangeId>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT change_id FROM outbox WHERE state = 'accepted' ORDER BY seq")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.map(|id| parse_change_id(&id?)).collect()
    }

    /// Queues again, in their old places and with their change ids, the
    /// accepted items among `ids`: those the endpoint said it no longer holds
    /// (restored from a backup older than their acceptance). They would
    /// otherwise live on this device alone while it showed them synced. Ids
    /// of items in any other state are passed over (filed ones, say: the
    /// practice's system holds them). Returns how many were queued.
    pub fn reoffer(&mut self, ids: &[ChangeId]) -> Result<u64> {
        let tx = crate::store::immediate(&mut self.conn)?;
        let now = Timestamp::now().to_string();
        let mut moved = 0;
        {
            let mut stmt = tx.prepare_cached(
                "UPDATE outbox SET state = 'pending', state_changed_at = ?1
                 WHERE change_id = ?2 AND state = 'accepted'",
            )?;
            for id in ids {
                moved += stmt.execute(params![now, id.0.to_string()])? as u64;
            }
        }
        tx.commit()?;
        Ok(moved)
    }

    /// One item by its change id.
    pub fn outbox_item(&self, id: ChangeId) -> Result<Option<OutboxItem>> {
        Ok(self
            .items("WHERE o.change_id = ?1", params![id.0.to_string()])?
            .pop())
    }

    /// Every outbox item of one record, in push order: each version's state
    /// for the record's screen.
    pub fn outbox_for_record(&self, record: RecordId) -> Result<Vec<OutboxItem>> {
        self.items(
            "WHERE o.record_id = ?1 ORDER BY o.seq",
            params![record.0.to_string()],
        )
    }

    /// Rejected items, oldest first: what the clinician must look at, each
    /// with its reason, which says what to do: correct it
    /// ([`Store::correct_rejected`]), or, where the reason allows (not for a
    /// change held back behind a refused one), send it again
    /// ([`Store::requeue_rejected`]). Withdrawn items (corrected already) are
    /// not listed.
    pub fn rejected_items(&self) -> Result<Vec<OutboxItem>> {
        self.items("WHERE o.state = 'rejected' ORDER BY o.seq", params![])
    }

    /// How many items are in each state.
    pub fn outbox_counts(&self) -> Result<OutboxCounts> {
        let mut statement = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
        let rows = statement.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut counts = OutboxCounts::default();
        for row in rows {
            let (state, n) = row?;
            let n = u64::try_from(n).unwrap_or(0);
            match state.as_str() {
                "pending" => counts.pending = n,
                "sent" => counts.sent = n,
                "accepted" => counts.accepted = n,
                "rejected" => counts.rejected = n,
                "withdrawn" => counts.withdrawn = n,
                "filed" => counts.filed = n,
                _ => {
                    return Err(StoreError::Decode {
                        what: "outbox state",
                    });
                }
            }
        }
        Ok(counts)
    }

    fn items(&self, filter: &str, params: &[&dyn rusqlite::ToSql]) -> Result<Vec<OutboxItem>> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {ITEM_COLUMNS} FROM outbox o
             JOIN record_versions v ON v.version_id = o.version_id {filter}"
        ))?;
        let rows = statement.query_map(params, item_from_row)?;
        rows.map(|row| row?.check()).collect()
    }
}
