//! The decisions of a push, shared by both backends: which changes are new,
//! which repeat an earlier push, which reuse an id with different content,
//! which break their record's lineage (or build on a version refused in the
//! same push), which fork their record's history, and which reconcile a
//! fork.
//!
//! A backend fetches the rows the plan needs (by change id, by version id,
//! every version of the records touched with the heads each merges, and the
//! record of every stored version a change supersedes or merges), calls
//! [`plan_push`] inside its transaction, and writes what it returns. Keeping
//! this pure means SQLite and PostgreSQL cannot disagree about idempotency,
//! forks or reconciliations.

use std::collections::{HashMap, HashSet};

use doorstep_domain::history::{Head, head};
use doorstep_domain::record::{MAX_VERSIONS_PER_RECORD, RecordId, VersionId, VersionMeta};
use doorstep_sync::wire::{ChangeId, ChangeKind, ChangeOutcome, Fork, RejectCode};

use super::CheckedChange;

/// The field a refusal names when a change's `supersedes` is at fault.
const SUPERSEDES_FIELD: &str = "body.record.meta.supersedes";

/// The field a refusal names when a change's `merges` is at fault.
const MERGES_FIELD: &str = "body.record.meta.merges";

/// A stored change that shares a change id or version id with the push.
#[derive(Debug, Clone)]
pub struct ExistingChange {
    /// Its idempotency key.
    pub change_id: ChangeId,
    /// The version it carries.
    pub version_id: VersionId,
    /// Its kind.
    pub kind: ChangeKind,
    /// Its canonical JSON.
    pub body: String,
}

/// A stored version of a record the push touches, with its kind.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    /// The record's kind; every version of a record has the same.
    pub kind: ChangeKind,
    /// Its envelope, `merges` included: a history read without them would
    /// show a reconciled record forked again.
    pub meta: VersionMeta,
}

/// A stored version that a change of the push supersedes, by naming it in
/// `supersedes` or in `merges` (a reconciling version supersedes every head
/// it merges too), with the record that holds it: an amendment must
/// supersede a version of its own record, and the push's own records'
/// histories cannot say where a version of another record lives, nor
/// whether the endpoint holds a version a change merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupersededVersion {
    /// The version named in a change's `supersedes` or `merges`.
    pub version_id: VersionId,
    /// The record the endpoint holds it under.
    pub record_id: RecordId,
}

/// A stored amendment that names a version of the push as the one it
/// supersedes, with the record it belongs to: the version may have arrived
/// after its amendment (from the same device, in a later push), and must then
/// belong to the amendment's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamingVersion {
    /// The version the amendment names in `supersedes`.
    pub version_id: VersionId,
    /// The record the amendment belongs to.
    pub record_id: RecordId,
}

/// The rows a backend fetched for a push, inside its transaction.
#[derive(Debug, Clone, Default)]
pub struct Held {
    /// Stored changes sharing a change id or a version id with the push.
    pub existing: Vec<ExistingChange>,
    /// Every stored version of the records the push touches.
    pub versions: Vec<StoredVersion>,
    /// Every stored version that a change of the push names in `supersedes`
    /// or in `merges`.
    pub superseded: Vec<SupersededVersion>,
    /// Every stored amendment naming a version of the push in `supersedes`.
    pub naming: Vec<NamingVersion>,
}

/// What a backend must do for one push.
#[derive(Debug, Clone, PartialEq)]
pub struct PushPlan {
    /// One per change pushed, in order.
    pub outcomes: Vec<ChangeOutcome>,
    /// Indices into the pushed changes to insert, in order; the backend gives
    /// them consecutive sequence numbers.
    pub inserts: Vec<usize>,
    /// Records that forked with this push and are still forked after it, to
    /// add to the forks table.
    pub forked: Vec<RecordId>,
    /// Records that were forked before this push or during it and have one
    /// head again after it, to take out of the forks table, which so lists
    /// only records forked now (a later fork puts a record back). A version
    /// merging the other heads reconciles a fork; so, now and then, does a
    /// version a restore lost arriving under the amendment that forked its
    /// record. Never also in `forked`.
    pub reconciled: Vec<RecordId>,
}

/// Why a change is refused when it amends a version refused earlier in the
/// same push: shared by the push plan and the endpoint's 422, which refuse
/// such a change for the same reason. It names the rule, never the content.
pub const AMENDS_REFUSED_REASON: &str = "amends a version refused in this push, so it is \
     refused with it: stored alone, nothing the endpoint holds would supersede what the \
     refused version amended, and its record would fork";

/// Why a change is refused when it merges a version refused earlier in the
/// same push: shared, like [`AMENDS_REFUSED_REASON`], by the push plan and
/// the endpoint's 422. It names the rule, never the content.
pub const MERGES_REFUSED_REASON: &str = "merges a version refused in this push, so it is \
     refused with it: a version may merge only versions the endpoint holds";

/// Decides a push, given what the endpoint `held` of it. A version of
/// another kind than its record's earlier versions is refused, and so is one
/// that breaks its record's lineage (see `check_lineage`): it would close its
/// record's history into a cycle, it is a second first version, it
/// supersedes a version of another record, a version of another record
/// already supersedes it, or it merges a version the endpoint does not hold
/// under its record.
///
/// A change that amends a version refused earlier in the same push, for
/// whatever reason, is refused too (code `invalid`, field
/// `body.record.meta.supersedes`, [`AMENDS_REFUSED_REASON`]), and so in turn
/// is anything amending it: a device queues an amendment on top of a change
/// before the endpoint has answered that change, and taken alone such an
/// amendment would leave the version the refused one amended a second head,
/// a fork nobody made, while on the device neither could be put right (the
/// refused change is amended by a version the endpoint holds). Not when the
/// endpoint holds a version under that id anyway (stored, or taken earlier in
/// the push): then the amendment amends that one, as any other would. A
/// change merging a version refused earlier in the push is refused the same
/// way (field `body.record.meta.merges`, [`MERGES_REFUSED_REASON`]): it
/// merges a version the endpoint does not hold, which no merge may.
///
/// A record forked before the push or during it whose history has one head
/// at its end is listed in [`PushPlan::reconciled`].
pub fn plan_push(changes: &[CheckedChange], held: Held) -> PushPlan {
    let mut by_change: HashMap<ChangeId, (ChangeKind, String)> = HashMap::new();
    let mut by_version: HashMap<VersionId, (ChangeKind, String)> = HashMap::new();
    for e in held.existing {
        by_version.insert(e.version_id, (e.kind, e.body.clone()));
        by_change.insert(e.change_id, (e.kind, e.body));
    }
    // The record of each version the endpoint holds that the push names
    // (stored, or accepted earlier in the push).
    let mut record_of: HashMap<VersionId, RecordId> = held
        .superseded
        .into_iter()
        .map(|v| (v.version_id, v.record_id))
        .collect();
    // The records whose versions name each version as the one they amend.
    let mut named_from: HashMap<VersionId, Vec<RecordId>> = HashMap::new();
    for n in held.naming {
        named_from
            .entry(n.version_id)
            .or_default()
            .push(n.record_id);
    }
    // The versions each record's changes in this push name as the ones they
    // amend: a first version arriving after its amendments is its record's
    // lost first version only when one of them, held or pushed, names it.
    let pushed_names: HashSet<(RecordId, VersionId)> = changes
        .iter()
        .filter_map(|c| Some((c.meta.record_id, c.meta.supersedes?)))
        .collect();
    let mut histories: HashMap<RecordId, (ChangeKind, Vec<VersionMeta>)> = HashMap::new();
    for v in held.versions {
        histories
            .entry(v.meta.record_id)
            .or_insert_with(|| (v.kind, Vec::new()))
            .1
            .push(v.meta);
    }

    let mut plan = PushPlan {
        outcomes: Vec::with_capacity(changes.len()),
        inserts: Vec::with_capacity(changes.len()),
        forked: Vec::new(),
        reconciled: Vec::new(),
    };
    // The versions of the changes refused so far in this push.
    let mut refused: HashSet<VersionId> = HashSet::new();
    // The records an accepted change touched, in order, each with whether
    // its history was forked before the first of them.
    let mut touched: Vec<(RecordId, bool)> = Vec::new();
    for (i, change) in changes.iter().enumerate() {
        let outcome = 'judged: {
            let same =
                |stored: &(ChangeKind, String)| stored.0 == change.kind && stored.1 == change.body;
            if let Some(stored) = by_change.get(&change.change_id) {
                break 'judged if same(stored) {
                    ChangeOutcome::Duplicate
                } else {
                    rejected(RejectCode::ChangeIdReused, "change_id")
                };
            }
            if let Some(stored) = by_version.get(&change.meta.version_id) {
                break 'judged if same(stored) {
                    ChangeOutcome::Duplicate
                } else {
                    rejected(RejectCode::VersionIdReused, "body.record.meta.version_id")
                };
            }
            let refused_here = |v: &VersionId| refused.contains(v) && !by_version.contains_key(v);
            if change.meta.supersedes.as_ref().is_some_and(refused_here) {
                break 'judged ChangeOutcome::Rejected {
                    code: RejectCode::Invalid,
                    field: Some(SUPERSEDES_FIELD.to_owned()),
                    reason: AMENDS_REFUSED_REASON.to_owned(),
                };
            }
            if change.meta.merges.iter().any(refused_here) {
                break 'judged ChangeOutcome::Rejected {
                    code: RejectCode::Invalid,
                    field: Some(MERGES_FIELD.to_owned()),
                    reason: MERGES_REFUSED_REASON.to_owned(),
                };
            }
            let stored = histories.get(&change.meta.record_id);
            if stored.is_some_and(|(kind, _)| *kind != change.kind) {
                break 'judged ChangeOutcome::Rejected {
                    code: RejectCode::KindConflict,
                    field: Some("body.kind".to_owned()),
                    reason: "the record's earlier versions are of another kind".to_owned(),
                };
            }
            let earlier = stored.map_or(&[][..], |(_, history)| history.as_slice());
            if earlier.len() >= MAX_VERSIONS_PER_RECORD {
                break 'judged ChangeOutcome::Rejected {
                    code: RejectCode::Invalid,
                    field: Some("body.record.meta.record_id".to_owned()),
                    reason: format!(
                        "the record has {MAX_VERSIONS_PER_RECORD} versions, the most one may \
                         have: a device is amending it in a loop"
                    ),
                };
            }
            let named = named_from
                .get(&change.meta.version_id)
                .map_or(&[][..], Vec::as_slice);
            let named_in_push =
                pushed_names.contains(&(change.meta.record_id, change.meta.version_id));
            if let Err(refusal) =
                check_lineage(&change.meta, earlier, &record_of, named, named_in_push)
            {
                break 'judged ChangeOutcome::Rejected {
                    code: RejectCode::Invalid,
                    field: Some(refusal.field.to_owned()),
                    reason: refusal.reason.to_owned(),
                };
            }
            let (_, history) = histories
                .entry(change.meta.record_id)
                .or_insert_with(|| (change.kind, Vec::new()));
            if !touched.iter().any(|(r, _)| *r == change.meta.record_id) {
                let forked_before = fork_of(change.meta.record_id, history).is_some();
                touched.push((change.meta.record_id, forked_before));
            }
            history.push(change.meta.clone());
            let entry = (change.kind, change.body.clone());
            record_of.insert(change.meta.version_id, change.meta.record_id);
            if let Some(base) = change.meta.supersedes {
                named_from
                    .entry(base)
                    .or_default()
                    .push(change.meta.record_id);
            }
            by_change.insert(change.change_id, entry.clone());
            by_version.insert(change.meta.version_id, entry);
            plan.inserts.push(i);
            match fork_of(change.meta.record_id, history) {
                Some(fork) => {
                    if !plan.forked.contains(&fork.record_id) {
                        plan.forked.push(fork.record_id);
                    }
                    ChangeOutcome::Forked {
                        record_id: fork.record_id,
                        heads: fork.heads,
                    }
                }
                None => ChangeOutcome::Accepted,
            }
        };
        if matches!(outcome, ChangeOutcome::Rejected { .. }) {
            refused.insert(change.meta.version_id);
        }
        plan.outcomes.push(outcome);
    }
    for (record, forked_before) in touched {
        let single_now = histories
            .get(&record)
            .is_some_and(|(_, history)| fork_of(record, history).is_none());
        if single_now && (forked_before || plan.forked.contains(&record)) {
            plan.forked.retain(|r| *r != record);
            plan.reconciled.push(record);
        }
    }
    plan
}

/// Why a change breaks its record's lineage: the field of its envelope at
/// fault, and the rule it breaks (never the content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Refusal {
    field: &'static str,
    reason: &'static str,
}

/// Whether a version may join its record's `earlier` versions (those stored,
/// and those accepted earlier in the same push). `held` gives the record the
/// endpoint holds each version the push names under (stored, or accepted
/// earlier in the push), and says nothing of a version it does not hold;
/// `named_from` are the records of the versions the endpoint holds that name
/// this one as the version they amend.
///
/// A version must not close its record's history into a cycle (which would
/// leave it with no current version on any device): it may arrive after a
/// version that supersedes it, as a version a restore lost does when a
/// colleague's amendment of it reached the restored endpoint first, but not
/// when what it supersedes or merges already descends from it. A record has
/// one first version: a first version arriving after its amendments is that
/// one when one of them names it (`named_in_push` says whether a change of
/// the push does), and never beside another first version. An amendment must
/// supersede a version of its own record: one naming another record's
/// version would stand in its own record's history as a second head (a fork
/// a clinician is asked to reconcile) while the record the clinician meant to
/// amend shows no amendment, and the device store refuses to write such a
/// version itself. For the same reason a version may not arrive after another
/// record's amendment of it: that amendment was taken while the version was
/// unknown here, and the two would now tie two records' histories together,
/// which every device holding either refuses to pull. An amendment may name a version the endpoint does not
/// hold: the correction of a refused version from a device built before
/// corrections took the refused version's place (the store's
/// `correct_rejected`) arrives so, as does, from such a device, an amendment
/// queued behind a version the endpoint refused in an earlier push (one
/// refused in the same push is caught by [`plan_push`], and devices now hold
/// such amendments back themselves), and refusing either would leave its
/// record unsyncable. Such an amendment shows the record forked, since
/// nothing here supersedes the version the refused one amended. Two
/// amendments of one version are a fork, accepted as such.
///
/// A version reconciling a fork supersedes one head and merges the others,
/// and every version it merges must be one the endpoint holds under the
/// same record. Merges came after corrections, so no device ever had reason
/// to merge a version the endpoint lacks: the device store merges only
/// versions the endpoint has accepted or served, and a merge of anything
/// else (a version refused, or never pushed, or of another record, maybe
/// another patient's) would reconcile a fork nobody was shown, or tie two
/// records' histories together.
///
/// The refusal's reason names the rule, never the versions' content.
fn check_lineage(
    meta: &VersionMeta,
    earlier: &[VersionMeta],
    held: &HashMap<VersionId, RecordId>,
    named_from: &[RecordId],
    named_in_push: bool,
) -> Result<(), Refusal> {
    let refuse = |field, reason| Err(Refusal { field, reason });
    match closes_cycle(meta, earlier) {
        Some(Edge::Supersedes) => {
            return refuse(
                SUPERSEDES_FIELD,
                "the version it supersedes already descends from this one: \
                 a record's history cannot close into a cycle",
            );
        }
        Some(Edge::Merges) => {
            return refuse(
                MERGES_FIELD,
                "a version it merges already descends from this one: \
                 a record's history cannot close into a cycle",
            );
        }
        None => {}
    }
    if named_from.iter().any(|&r| r != meta.record_id) {
        return refuse(
            SUPERSEDES_FIELD,
            "a version of another record already names this one as the version it \
             amends: a version belongs to the record whose amendments name it",
        );
    }
    let superseded_record = meta.supersedes.and_then(|v| held.get(&v).copied());
    match meta.supersedes {
        Some(_) if superseded_record.is_some_and(|r| r != meta.record_id) => {
            return refuse(
                SUPERSEDES_FIELD,
                "the version it supersedes belongs to another record: \
                 an amendment must supersede a version of its own record",
            );
        }
        Some(_) => {}
        None if earlier.is_empty() => {}
        None if earlier.iter().all(|v| v.supersedes.is_some())
            && (named_in_push
                || earlier
                    .iter()
                    .any(|v| v.supersedes == Some(meta.version_id))) => {}
        None => {
            return refuse(
                SUPERSEDES_FIELD,
                "the record already has versions, none of which amends this one: an \
                 amendment must name the one it supersedes",
            );
        }
    }
    for merged in &meta.merges {
        match held.get(merged) {
            None => {
                return refuse(
                    MERGES_FIELD,
                    "names a version the endpoint does not hold: a version may merge only \
                     versions the endpoint holds, stored or accepted earlier in the push",
                );
            }
            Some(&record) if record != meta.record_id => {
                return refuse(
                    MERGES_FIELD,
                    "names a version of another record: a version may merge only versions \
                     of its own record",
                );
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Which of a version's links to earlier versions a cycle runs through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    /// The version it supersedes.
    Supersedes,
    /// A version it merges.
    Merges,
}

/// Whether `meta` would close its record's history into a cycle, and through
/// which of its links: a version it supersedes or merges is itself, or one
/// of `earlier` that descends from it, through amendments and merges alike.
/// A depth-first walk back from each, which visits each version of `earlier`
/// once at most: `earlier` holds no cycle, and the walk ends even if it ever
/// did. Each step is a lookup, so a long history costs a walk of its length,
/// not its square.
fn closes_cycle(meta: &VersionMeta, earlier: &[VersionMeta]) -> Option<Edge> {
    let by_id: HashMap<VersionId, &VersionMeta> =
        earlier.iter().map(|v| (v.version_id, v)).collect();
    let starts = meta
        .supersedes
        .iter()
        .map(|v| (Edge::Supersedes, *v))
        .chain(meta.merges.iter().map(|v| (Edge::Merges, *v)));
    // Shared by the walks: a version one walk passed without meeting `meta`
    // leads no other walk to it either.
    let mut seen: HashSet<VersionId> = HashSet::new();
    for (edge, start) in starts {
        let mut stack = vec![start];
        while let Some(at) = stack.pop() {
            if at == meta.version_id {
                return Some(edge);
            }
            if !seen.insert(at) {
                continue;
            }
            if let Some(v) = by_id.get(&at) {
                stack.extend(v.supersedes);
                stack.extend(&v.merges);
            }
        }
    }
    None
}

/// The fork of one record's history, if it has one now.
pub fn fork_of(record_id: RecordId, versions: &[VersionMeta]) -> Option<Fork> {
    match head(versions)? {
        Head::Forked(heads) => Some(Fork { record_id, heads }),
        Head::Single(_) => None,
    }
}

fn rejected(code: RejectCode, field: &str) -> ChangeOutcome {
    ChangeOutcome::Rejected {
        code,
        field: Some(field.to_owned()),
        reason: "stored before with different content".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use doorstep_domain::network::{ClinicianId, DeviceId};
    use doorstep_sync::fixtures;
    use uuid::Uuid;

    use super::*;

    fn change(n: u128, record: u128, supersedes: Option<u128>, seed: u64) -> CheckedChange {
        let meta = VersionMeta {
            record_id: RecordId(Uuid::from_u128(record)),
            version_id: VersionId(Uuid::from_u128(n)),
            supersedes: supersedes.map(|s| VersionId(Uuid::from_u128(s))),
            merges: Vec::new(),
            author: ClinicianId::parse("para-1").unwrap(),
            device: DeviceId::parse("phone-1").unwrap(),
            written_at: fixtures::instant() + jiff::SignedDuration::from_secs(n as i64),
        };
        let record = fixtures::visit_record(meta.clone(), seed);
        CheckedChange {
            change_id: ChangeId(Uuid::from_u128(1000 + n)),
            kind: ChangeKind::VisitRecord,
            meta,
            body: serde_json::to_string(&record).unwrap(),
        }
    }

    fn stored(c: &CheckedChange) -> ExistingChange {
        ExistingChange {
            change_id: c.change_id,
            version_id: c.meta.version_id,
            kind: c.kind,
            body: c.body.clone(),
        }
    }

    fn version(c: &CheckedChange) -> StoredVersion {
        StoredVersion {
            kind: c.kind,
            meta: c.meta.clone(),
        }
    }

    /// Version `n` of `record`, superseding `supersedes` and merging `merges`.
    fn merging(n: u128, record: u128, supersedes: u128, merges: &[u128]) -> CheckedChange {
        let mut c = change(n, record, Some(supersedes), n as u64);
        c.meta.merges = merges
            .iter()
            .map(|&m| VersionId(Uuid::from_u128(m)))
            .collect();
        let record = fixtures::visit_record(c.meta.clone(), n as u64);
        c.body = serde_json::to_string(&record).unwrap();
        c
    }

    /// `c`'s version as the endpoint holds it, for [`Held::superseded`].
    fn held_as(c: &CheckedChange) -> SupersededVersion {
        SupersededVersion {
            version_id: c.meta.version_id,
            record_id: c.meta.record_id,
        }
    }

    #[test]
    fn a_version_of_another_kind_than_its_record_is_refused() {
        let base = change(1, 10, None, 1);
        let mut other = change(2, 10, Some(1), 2);
        other.kind = ChangeKind::MedicationReview;
        let plan = plan_push(
            &[other],
            Held {
                versions: vec![version(&base)],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty());
        assert!(matches!(
            plan.outcomes[0],
            ChangeOutcome::Rejected {
                code: RejectCode::KindConflict,
                ..
            }
        ));
    }

    #[test]
    fn a_change_pushed_twice_in_one_batch_is_stored_once() {
        let a = change(1, 10, None, 1);
        let plan = plan_push(&[a.clone(), a], Held::default());
        assert_eq!(plan.inserts, vec![0]);
        assert_eq!(
            plan.outcomes,
            vec![ChangeOutcome::Accepted, ChangeOutcome::Duplicate]
        );
    }

    #[test]
    fn a_stored_change_with_new_content_under_its_id_is_refused() {
        let a = change(1, 10, None, 1);
        let mut b = change(1, 10, None, 2);
        b.change_id = a.change_id;
        let plan = plan_push(
            &[b],
            Held {
                existing: vec![stored(&a)],
                versions: vec![version(&a)],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty());
        assert!(matches!(
            plan.outcomes[0],
            ChangeOutcome::Rejected {
                code: RejectCode::ChangeIdReused,
                ..
            }
        ));
    }

    #[test]
    fn a_reused_version_id_with_new_content_is_refused() {
        let a = change(1, 10, None, 1);
        let mut b = change(1, 10, None, 2);
        b.change_id = ChangeId(Uuid::from_u128(5));
        let plan = plan_push(
            &[b],
            Held {
                existing: vec![stored(&a)],
                versions: vec![version(&a)],
                ..Held::default()
            },
        );
        assert!(matches!(
            plan.outcomes[0],
            ChangeOutcome::Rejected {
                code: RejectCode::VersionIdReused,
                ..
            }
        ));
    }

    fn refused_lineage(outcome: &ChangeOutcome) -> bool {
        matches!(
            outcome,
            ChangeOutcome::Rejected {
                code: RejectCode::Invalid,
                field: Some(field),
                ..
            } if field == "body.record.meta.supersedes"
        )
    }

    #[test]
    fn a_version_that_would_close_a_cycle_is_refused() {
        let a = change(1, 10, Some(2), 1);
        let b = change(2, 10, Some(1), 2);
        let plan = plan_push(&[a.clone(), b.clone()], Held::default());
        assert_eq!(plan.inserts, vec![0]);
        assert!(refused_lineage(&plan.outcomes[1]), "{plan:?}");
        let plan = plan_push(
            &[b],
            Held {
                versions: vec![version(&a)],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty());
        assert!(refused_lineage(&plan.outcomes[0]), "{plan:?}");
    }

    #[test]
    fn a_cycle_through_several_versions_is_refused_too() {
        // 3 amends 2, 2 amends 1; 1 arriving as an amendment of 3 would close the loop.
        let two = change(2, 10, Some(1), 2);
        let three = change(3, 10, Some(2), 3);
        let one = change(1, 10, Some(3), 1);
        let plan = plan_push(
            &[one],
            Held {
                versions: vec![version(&two), version(&three)],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty());
        assert!(refused_lineage(&plan.outcomes[0]), "{plan:?}");
    }

    #[test]
    fn a_version_a_restore_lost_is_taken_after_its_amendment() {
        // The endpoint holds a colleague's amendments (2, then 3) of version 1,
        // which a restore lost; version 1 comes back from its author.
        let first = change(1, 10, None, 1);
        let amended = change(2, 10, Some(1), 2);
        let again = change(3, 10, Some(2), 3);
        let held = Held {
            versions: vec![version(&amended), version(&again)],
            ..Held::default()
        };
        let plan = plan_push(std::slice::from_ref(&first), held.clone());
        assert_eq!(plan.inserts, vec![0], "{plan:?}");
        // So does a lost amendment between two held versions.
        let held = Held {
            versions: vec![version(&first), version(&again)],
            ..Held::default()
        };
        let plan = plan_push(std::slice::from_ref(&amended), held);
        assert_eq!(plan.inserts, vec![0], "{plan:?}");
        // In one push, the amendment first, then what it amends.
        let plan = plan_push(&[amended.clone(), first.clone()], Held::default());
        assert_eq!(plan.inserts, vec![0, 1], "{plan:?}");
        // Both lost, their author's phone sends them again in order, after a
        // colleague's amendment of the second: the first is named only by
        // the second, in the same push.
        let plan = plan_push(
            &[first, amended],
            Held {
                versions: vec![version(&again)],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![0, 1], "{plan:?}");
    }

    #[test]
    fn a_first_version_that_nothing_names_is_refused_beside_amendments_of_another() {
        // The endpoint holds 2, amending 1, which it lacks; 9 comes as a
        // first version of the same record, named by nothing.
        let amended = change(2, 10, Some(1), 2);
        let stray = change(9, 10, None, 9);
        let plan = plan_push(
            std::slice::from_ref(&stray),
            Held {
                versions: vec![version(&amended)],
                ..Held::default()
            },
        );
        assert!(refused_lineage(&plan.outcomes[0]), "{plan:?}");
        // The real first version is still taken after it.
        let first = change(1, 10, None, 1);
        let plan = plan_push(
            &[stray, first],
            Held {
                versions: vec![version(&amended)],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![1], "{plan:?}");
    }

    #[test]
    fn the_correction_of_a_version_the_endpoint_refused_is_accepted() {
        let first = change(1, 10, None, 1);
        // Version 2 was refused; an older device's correction amends it.
        let correction = change(3, 10, Some(2), 3);
        let plan = plan_push(
            &[correction],
            Held {
                versions: vec![version(&first)],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![0]);
    }

    #[test]
    fn an_amendment_of_another_records_version_is_refused_whether_stored_or_earlier_in_the_push() {
        let held = change(1, 10, None, 1);
        let held_elsewhere = SupersededVersion {
            version_id: held.meta.version_id,
            record_id: held.meta.record_id,
        };
        // Record 20 names record 10's stored version.
        let stray = change(2, 20, Some(1), 2);
        let plan = plan_push(
            std::slice::from_ref(&stray),
            Held {
                superseded: vec![held_elsewhere],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty());
        assert!(refused_lineage(&plan.outcomes[0]), "{plan:?}");
        // Record 30's first version, then record 40 naming it, in one push;
        // the amendment of record 10 next to them still goes.
        let first = change(3, 30, None, 3);
        let stray = change(4, 40, Some(3), 4);
        let good = change(5, 10, Some(1), 5);
        let plan = plan_push(
            &[first, stray, good],
            Held {
                versions: vec![version(&held)],
                superseded: vec![held_elsewhere],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![0, 2]);
        assert!(refused_lineage(&plan.outcomes[1]), "{plan:?}");
    }

    #[test]
    fn a_version_arriving_after_another_records_amendment_of_it_is_refused() {
        // Record 20's stored amendment names version 1, unknown then.
        let amendment = change(2, 20, Some(1), 2);
        let naming = NamingVersion {
            version_id: VersionId(Uuid::from_u128(1)),
            record_id: amendment.meta.record_id,
        };
        let late = change(1, 10, None, 1);
        let plan = plan_push(
            std::slice::from_ref(&late),
            Held {
                naming: vec![naming],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty());
        assert!(refused_lineage(&plan.outcomes[0]), "{plan:?}");
        // In one push: record 40 amends version 3, then version 3 comes as
        // record 30's.
        let plan = plan_push(
            &[change(4, 40, Some(3), 4), change(3, 30, None, 3)],
            Held::default(),
        );
        assert_eq!(plan.inserts, vec![0]);
        assert!(refused_lineage(&plan.outcomes[1]), "{plan:?}");
        let reason = match &plan.outcomes[1] {
            ChangeOutcome::Rejected { reason, .. } => reason.clone(),
            other => panic!("{other:?}"),
        };
        assert!(reason.contains("another record"), "{reason}");
    }

    /// True for the refusal of a change that amends a version refused
    /// earlier in the same push.
    fn refused_with_its_base(outcome: &ChangeOutcome) -> bool {
        refused_lineage(outcome)
            && matches!(outcome, ChangeOutcome::Rejected { reason, .. }
                if reason.contains("refused in this push"))
    }

    #[test]
    fn an_amendment_of_a_version_refused_earlier_in_the_push_is_refused_and_so_is_what_amends_it() {
        let v0 = change(1, 10, None, 1);
        // Refused for its lineage: a second first version of record 10.
        let v1 = change(2, 10, None, 2);
        let v1b = change(3, 10, Some(2), 3);
        let v1c = change(4, 10, Some(3), 4);
        // Taken alone, v1b would stand beside v0 as a second head: a fork
        // nobody made. Another record's change in the same push still goes.
        let elsewhere = change(5, 20, None, 5);
        let plan = plan_push(
            &[v1, v1b, v1c, elsewhere],
            Held {
                existing: vec![stored(&v0)],
                versions: vec![version(&v0)],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![3]);
        assert!(refused_lineage(&plan.outcomes[0]), "{plan:?}");
        assert!(!refused_with_its_base(&plan.outcomes[0]), "{plan:?}");
        assert!(refused_with_its_base(&plan.outcomes[1]), "{plan:?}");
        assert!(refused_with_its_base(&plan.outcomes[2]), "{plan:?}");
        assert_eq!(plan.outcomes[3], ChangeOutcome::Accepted);
        assert!(plan.forked.is_empty());
    }

    #[test]
    fn an_amendment_of_a_version_refused_for_any_reason_in_the_push_is_refused() {
        let v0 = change(1, 10, None, 1);
        // Refused as a kind conflict.
        let mut review = change(2, 10, Some(1), 2);
        review.kind = ChangeKind::MedicationReview;
        let on_review = change(3, 10, Some(2), 3);
        // Refused as a reused change id (stored with other content).
        let mut reused = change(4, 10, Some(1), 4);
        reused.change_id = v0.change_id;
        let on_reused = change(5, 10, Some(4), 5);
        // Refused as a reused version id: v0's, with other content. An
        // amendment of that version amends v0, which the endpoint holds, so
        // it is not refused for it.
        let mut clash = change(1, 10, None, 6);
        clash.change_id = ChangeId(Uuid::from_u128(6));
        let on_v0 = change(7, 10, Some(1), 7);
        // Refused as another record's amendment.
        let stray = change(8, 30, Some(1), 8);
        let on_stray = change(9, 30, Some(8), 9);
        let plan = plan_push(
            &[
                review, on_review, reused, on_reused, clash, on_v0, stray, on_stray,
            ],
            Held {
                existing: vec![stored(&v0)],
                versions: vec![version(&v0)],
                superseded: vec![SupersededVersion {
                    version_id: v0.meta.version_id,
                    record_id: v0.meta.record_id,
                }],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![5], "{plan:?}");
        assert_eq!(plan.outcomes[5], ChangeOutcome::Accepted);
        for i in [1, 3, 7] {
            assert!(refused_with_its_base(&plan.outcomes[i]), "{i}: {plan:?}");
        }
        for i in [0, 2, 4, 6] {
            assert!(!refused_with_its_base(&plan.outcomes[i]), "{i}: {plan:?}");
        }
    }

    #[test]
    fn a_second_first_version_of_a_record_is_refused() {
        let first = change(1, 10, None, 1);
        let second = change(2, 10, None, 2);
        let plan = plan_push(
            std::slice::from_ref(&second),
            Held {
                versions: vec![version(&first)],
                ..Held::default()
            },
        );
        assert!(refused_lineage(&plan.outcomes[0]), "{plan:?}");
        let plan = plan_push(&[first, second], Held::default());
        assert_eq!(plan.inserts, vec![0]);
        assert!(refused_lineage(&plan.outcomes[1]), "{plan:?}");
    }

    #[test]
    fn a_version_and_its_amendments_in_one_push_are_stored_in_order() {
        let first = change(1, 10, None, 1);
        let second = change(2, 10, Some(1), 2);
        let third = change(3, 10, Some(2), 3);
        let plan = plan_push(&[first, second, third], Held::default());
        assert_eq!(plan.inserts, vec![0, 1, 2]);
        assert_eq!(plan.outcomes, vec![ChangeOutcome::Accepted; 3]);
    }

    #[test]
    fn two_amendments_of_one_version_fork_and_both_are_stored() {
        let base = change(1, 10, None, 1);
        let left = change(2, 10, Some(1), 2);
        let right = change(3, 10, Some(1), 3);
        let plan = plan_push(
            &[left, right],
            Held {
                versions: vec![version(&base)],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![0, 1]);
        assert_eq!(plan.outcomes[0], ChangeOutcome::Accepted);
        assert_eq!(
            plan.outcomes[1],
            ChangeOutcome::Forked {
                record_id: RecordId(Uuid::from_u128(10)),
                heads: vec![VersionId(Uuid::from_u128(3)), VersionId(Uuid::from_u128(2))],
            }
        );
        assert_eq!(plan.forked, vec![RecordId(Uuid::from_u128(10))]);
    }

    #[test]
    fn a_version_past_its_records_limit_is_refused_and_the_last_one_it_allows_is_not() {
        // A line of versions 1..=n of record 10, each amending the one before.
        let line = |n: u128| -> Vec<StoredVersion> {
            (1..=n)
                .map(|v| version(&change(v, 10, (v > 1).then(|| v - 1), 1)))
                .collect()
        };
        let limit = MAX_VERSIONS_PER_RECORD as u128;
        let last = change(limit, 10, Some(limit - 1), 2);
        let plan = plan_push(
            std::slice::from_ref(&last),
            Held {
                versions: line(limit - 1),
                ..Held::default()
            },
        );
        assert_eq!(plan.outcomes, vec![ChangeOutcome::Accepted]);
        let past = change(limit + 1, 10, Some(limit), 2);
        let plan = plan_push(
            &[past, change(5000, 11, None, 3)],
            Held {
                versions: line(limit),
                ..Held::default()
            },
        );
        assert!(
            matches!(&plan.outcomes[0], ChangeOutcome::Rejected { code: RejectCode::Invalid, field: Some(f), .. }
                if f == "body.record.meta.record_id"),
            "{:?}",
            plan.outcomes[0]
        );
        assert_eq!(
            plan.outcomes[1],
            ChangeOutcome::Accepted,
            "the rest is stored"
        );
        assert_eq!(plan.inserts, vec![1]);
    }

    /// The reason of a refusal naming `body.record.meta.merges` with code
    /// `invalid`; panics on any other outcome.
    fn refused_merge(outcome: &ChangeOutcome) -> &str {
        match outcome {
            ChangeOutcome::Rejected {
                code: RejectCode::Invalid,
                field: Some(field),
                reason,
            } if field == MERGES_FIELD => reason,
            other => panic!("not a refused merge: {other:?}"),
        }
    }

    #[test]
    fn a_merge_of_held_heads_reconciles_the_fork_whether_stored_or_earlier_in_the_push() {
        let base = change(1, 10, None, 1);
        let left = change(2, 10, Some(1), 2);
        let right = change(3, 10, Some(1), 3);
        let merge = merging(4, 10, 2, &[3]);
        let record = RecordId(Uuid::from_u128(10));
        // The fork stored; the merge alone.
        let plan = plan_push(
            std::slice::from_ref(&merge),
            Held {
                versions: vec![version(&base), version(&left), version(&right)],
                superseded: vec![held_as(&left), held_as(&right)],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![0]);
        assert_eq!(plan.outcomes, vec![ChangeOutcome::Accepted]);
        assert_eq!(plan.reconciled, vec![record]);
        assert!(plan.forked.is_empty());
        // Forked and reconciled in one push: listed as reconciled only.
        let plan = plan_push(
            &[left.clone(), right.clone(), merge.clone()],
            Held {
                versions: vec![version(&base)],
                superseded: vec![held_as(&base)],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![0, 1, 2]);
        assert!(matches!(plan.outcomes[1], ChangeOutcome::Forked { .. }));
        assert_eq!(plan.outcomes[2], ChangeOutcome::Accepted);
        assert_eq!(plan.reconciled, vec![record]);
        assert!(plan.forked.is_empty());
        // Reconciled, then forked again in the same push: forked only.
        let again = change(5, 10, Some(4), 5);
        let other = change(6, 10, Some(4), 6);
        let plan = plan_push(
            &[merge, again, other],
            Held {
                versions: vec![version(&base), version(&left), version(&right)],
                superseded: vec![held_as(&left), held_as(&right)],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![0, 1, 2]);
        assert_eq!(plan.forked, vec![record]);
        assert!(plan.reconciled.is_empty());
    }

    #[test]
    fn a_merge_of_some_heads_of_a_fork_leaves_it_forked() {
        let base = change(1, 10, None, 1);
        let heads = [2, 3, 4].map(|n| change(n, 10, Some(1), n as u64));
        let merge = merging(5, 10, 2, &[3]);
        let mut versions = vec![version(&base)];
        versions.extend(heads.iter().map(version));
        let plan = plan_push(
            &[merge],
            Held {
                versions,
                superseded: heads.iter().map(held_as).collect(),
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![0]);
        assert_eq!(
            plan.outcomes[0],
            ChangeOutcome::Forked {
                record_id: RecordId(Uuid::from_u128(10)),
                heads: vec![VersionId(Uuid::from_u128(5)), VersionId(Uuid::from_u128(4))],
            }
        );
        assert_eq!(plan.forked, vec![RecordId(Uuid::from_u128(10))]);
        assert!(plan.reconciled.is_empty());
    }

    #[test]
    fn a_merge_naming_a_version_the_endpoint_does_not_hold_is_refused() {
        let base = change(1, 10, None, 1);
        let left = change(2, 10, Some(1), 2);
        // Version 9 was never pushed (or the endpoint refused it earlier).
        let merge = merging(4, 10, 2, &[9]);
        let plan = plan_push(
            &[merge],
            Held {
                versions: vec![version(&base), version(&left)],
                superseded: vec![held_as(&left)],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty());
        let reason = refused_merge(&plan.outcomes[0]);
        assert!(reason.contains("does not hold"), "{reason}");
        assert!(plan.reconciled.is_empty());
    }

    #[test]
    fn a_merge_naming_a_version_of_another_record_is_refused_whether_stored_or_earlier_in_the_push()
    {
        let base = change(1, 10, None, 1);
        let left = change(2, 10, Some(1), 2);
        let elsewhere = change(5, 20, None, 5);
        let merge = merging(4, 10, 2, &[5]);
        let plan = plan_push(
            std::slice::from_ref(&merge),
            Held {
                versions: vec![version(&base), version(&left)],
                superseded: vec![held_as(&left), held_as(&elsewhere)],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty());
        let reason = refused_merge(&plan.outcomes[0]);
        assert!(reason.contains("another record"), "{reason}");
        // Record 20's first version accepted earlier in the same push.
        let plan = plan_push(
            &[elsewhere, merge],
            Held {
                versions: vec![version(&base), version(&left)],
                superseded: vec![held_as(&left)],
                ..Held::default()
            },
        );
        assert_eq!(plan.inserts, vec![0]);
        let reason = refused_merge(&plan.outcomes[1]);
        assert!(reason.contains("another record"), "{reason}");
    }

    #[test]
    fn a_merge_naming_a_version_refused_earlier_in_the_push_is_refused_and_so_is_what_amends_it() {
        let base = change(1, 10, None, 1);
        let left = change(2, 10, Some(1), 2);
        // Refused as a kind conflict.
        let mut review = change(3, 10, Some(1), 3);
        review.kind = ChangeKind::MedicationReview;
        let merge = merging(4, 10, 2, &[3]);
        let on_merge = change(5, 10, Some(4), 5);
        let plan = plan_push(
            &[review, merge, on_merge],
            Held {
                versions: vec![version(&base), version(&left)],
                superseded: vec![held_as(&base), held_as(&left)],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty(), "{plan:?}");
        assert_eq!(refused_merge(&plan.outcomes[1]), MERGES_REFUSED_REASON);
        assert!(refused_with_its_base(&plan.outcomes[2]), "{plan:?}");
    }

    #[test]
    fn a_merge_that_would_close_a_cycle_is_refused() {
        // The endpoint holds 2, amending 1, which a restore lost; 1 comes
        // back merging 2, which already descends from it.
        let base = change(0, 10, None, 1);
        let amended = change(2, 10, Some(1), 2);
        let lost = merging(1, 10, 0, &[2]);
        let plan = plan_push(
            &[lost],
            Held {
                versions: vec![version(&base), version(&amended)],
                superseded: vec![held_as(&base), held_as(&amended)],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty());
        let reason = refused_merge(&plan.outcomes[0]);
        assert!(reason.contains("cycle"), "{reason}");
        // A cycle through a stored version's merges: 3 merges 2, which
        // amends 1; 1 coming back as an amendment of 3 closes it.
        let merge = merging(3, 10, 0, &[2]);
        let lost = change(1, 10, Some(3), 1);
        let plan = plan_push(
            &[lost],
            Held {
                versions: vec![version(&base), version(&amended), version(&merge)],
                superseded: vec![held_as(&merge)],
                ..Held::default()
            },
        );
        assert!(plan.inserts.is_empty());
        assert!(refused_lineage(&plan.outcomes[0]), "{plan:?}");
    }

    #[test]
    fn a_lost_version_arriving_under_the_amendment_that_forked_its_record_reconciles_it() {
        // The endpoint holds 0 and 2, amending 1, which a restore lost: two
        // heads. 1 comes back amending 0, and the record has one head again.
        let base = change(0, 10, None, 1);
        let amended = change(2, 10, Some(1), 2);
        let lost = change(1, 10, Some(0), 3);
        let plan = plan_push(
            &[lost],
            Held {
                versions: vec![version(&base), version(&amended)],
                superseded: vec![held_as(&base)],
                ..Held::default()
            },
        );
        assert_eq!(plan.outcomes, vec![ChangeOutcome::Accepted]);
        assert_eq!(plan.reconciled, vec![RecordId(Uuid::from_u128(10))]);
    }
}
