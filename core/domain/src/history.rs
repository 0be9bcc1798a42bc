//! Version histories: which version of a record is current, and whether two
//! devices amended the same version (a fork a clinician must reconcile, by a
//! version that supersedes one head and merges the others).
//!
//! The device store and the endpoint both hold every version ever written; this
//! module is the one place that decides what "current" means, so they agree.

use std::collections::HashSet;

use crate::record::{VersionId, VersionMeta};

/// The state of one record's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    /// Exactly one version is not superseded: it is current.
    Single(VersionId),
    /// Several versions are not superseded: each is a branch a clinician must
    /// reconcile. Listed newest first; the first is shown until then.
    Forked(Vec<VersionId>),
}

impl Head {
    /// The version to show: the only head, or the newest of a fork.
    pub fn current(&self) -> VersionId {
        match self {
            Head::Single(v) => *v,
            Head::Forked(vs) => vs[0],
        }
    }

    /// True when the history has forked.
    pub fn is_forked(&self) -> bool {
        matches!(self, Head::Forked(_))
    }
}

/// Finds the head(s) of one record's versions: those no version supersedes
/// or merges. Returns `None` for an empty history, and for one in which every
/// version is superseded (a cycle, which the device store and the endpoint
/// both refuse to store). Versions are matched by id, so the order given does
/// not matter.
pub fn head<'a>(versions: impl IntoIterator<Item = &'a VersionMeta>) -> Option<Head> {
    let versions: Vec<&VersionMeta> = versions.into_iter().collect();
    let superseded: HashSet<VersionId> = versions
        .iter()
        .flat_map(|v| v.supersedes.iter().chain(&v.merges))
        .copied()
        .collect();
    let mut heads: Vec<&VersionMeta> = versions
        .iter()
        .copied()
        .filter(|v| !superseded.contains(&v.version_id))
        .collect();
    heads.sort_by(|a, b| {
        b.written_at
            .cmp(&a.written_at)
            .then(b.version_id.cmp(&a.version_id))
    });
    heads.dedup_by_key(|v| v.version_id);
    match heads.as_slice() {
        [] => None,
        [only] => Some(Head::Single(only.version_id)),
        many => Some(Head::Forked(many.iter().map(|v| v.version_id).collect())),
    }
}
