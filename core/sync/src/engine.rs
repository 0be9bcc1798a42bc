//! The device's sync engine: pushes the outbox to the endpoint in ordered
//! batches, then pulls the network's changes by cursor into the store.
//!
//! Every step is safe to interrupt at any byte. An item is marked `sent`
//! before its push and re-pushed until the endpoint answers, and the endpoint
//! stores a change id once, so a lost answer costs a duplicate push, never a
//! duplicate record. Pulled records and the cursor that covers them commit in
//! one store transaction, so a pull cut short is simply repeated. The future
//! returned by [`SyncEngine::sync`] may be dropped at any await point (that is
//! what [`SyncTask::cancel`] does): store writes never span an await.
//!
//! Transient failures (no connection, timeouts, 5xx, a cut body) are retried
//! with exponential backoff and jitter; a refused token or a forbidden call
//! ends the sync with an error the shell can act on. Each item's state lives
//! in the store's outbox; the overall state of the last completed sync is
//! [`SyncEngine::status`].
//!
//! No answer may jam the outbox. A push is kept under [`PUSH_BUDGET_BYTES`]
//! as well as under a count; a push refused as too large (413, from the
//! endpoint or a proxy in front of it) is halved and sent again, and a single
//! change refused as too large on its own is marked rejected with a reason,
//! so the changes behind it still go (the clinician can send it again once
//! the proxy is fixed, `Store::requeue_rejected`). Only the changes built on
//! a rejected one wait with it, whatever rejected it: the store holds them
//! back when it applies the rejection (`Store::acknowledge`), as pushed
//! alone each would fork its record at the endpoint. A pull cursor the
//! endpoint no longer recognises (`bad_cursor`, e.g. after its database was
//! restored) starts the pull again from the beginning, which applying pages
//! idempotently makes safe.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_store::{
    Acknowledgement, ChangeId as StoreChangeId, OutboxCounts, OutboxItem, PullBatch, PulledRecord,
    PushLimit, RecordKind, Store, StoreError, SyncCursor,
};
use jiff::Timestamp;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::endpoint::{BodyError, with_causes};
use crate::wire::{
    ChangeBody, ChangeId, ChangeKind, ChangeOutcome, DeviceStatus, ErrorBody, ErrorCode, HELD_PATH,
    HeldRequest, HeldResponse, MAX_HELD_IDS, MAX_PULL_LIMIT, MAX_PUSH_CHANGES, PULL_PATH,
    PUSH_PATH, PullResponse, PushResponse,
};

/// Most bytes of records one push carries (a single larger change goes on
/// its own). Well under the endpoint's 4 MiB body limit, under the 1 MiB that
/// common reverse proxies allow by default, and small enough to go up a slow
/// mobile link within the request timeout. A valid record is at most
/// [`doorstep_domain::record::MAX_RECORD_JSON_BYTES`], so even one larger
/// than this budget fits the endpoint's limit.
pub const PUSH_BUDGET_BYTES: usize = 512 * 1024;

/// What a push carries besides its changes: the network, the device and the
/// JSON around them (167 bytes with the longest ids, rounded up).
const PUSH_ENVELOPE_BYTES: usize = 256;

/// What one change adds to a push besides its record: its id, its kind and
/// the JSON around them (99 bytes for the longest kind, rounded up).
const CHANGE_ENVELOPE_BYTES: usize = 128;

/// The reason kept with a change the endpoint refused as too large even when
/// pushed alone. No valid record is that large, so it means the endpoint (or
/// a proxy in front of it) takes less than the protocol promises.
const TOO_LARGE_REASON: &str =
    "PayloadTooLarge: the endpoint refused this change as too large even on its own (HTTP 413)";

/// Longest a connection to the endpoint may take to be made: long enough for
/// a poor mobile link's handshakes (TCP and TLS), and short of the request
/// timeout, so a dead link shows as no connection (`Unreachable`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Supplies the bearer token for each request (the shell refreshes it).
pub trait TokenSource: Send + Sync {
    /// The current access token, or `None` when the user must sign in.
    fn bearer(&self) -> Option<String>;
}

impl TokenSource for String {
    fn bearer(&self) -> Option<String> {
        Some(self.clone())
    }
}

/// How hard to try before giving up on a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// Wait before the first retry; doubles each time.
    pub initial_backoff: Duration,
    /// Longest wait between attempts, before the jitter (up to half as much
    /// again, so that devices that lost signal together do not retry
    /// together). `Duration::MAX` sets no limit.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// Where and how to sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// The endpoint's base URL, e.g. `https://sync.example-pcn.nhs.uk`:
    /// https, or plain http only to this machine (see [`crate::endpoint`]).
    pub base_url: String,
    /// The device's network.
    pub network: NetworkId,
    /// This device.
    pub device: DeviceId,
    /// Most changes per push (at most [`MAX_PUSH_CHANGES`]); a push also
    /// stays under [`PUSH_BUDGET_BYTES`].
    pub push_batch: usize,
    /// Changes per pull page (at most [`MAX_PULL_LIMIT`]); halved for the rest
    /// of a sync whenever a page runs out of time.
    pub pull_limit: u32,
    /// Limit on each request, connection to last byte.
    pub request_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
}

impl SyncConfig {
    /// Defaults for a phone on a mobile network.
    pub fn new(base_url: impl Into<String>, network: NetworkId, device: DeviceId) -> Self {
        Self {
            base_url: base_url.into(),
            network,
            device,
            push_batch: 100,
            pull_limit: 200,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
        }
    }
}

/// Why a sync stopped. Each variant says what the shell does next.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The token was refused or is missing: sign in again. Nothing was lost.
    #[error("sign in again: the endpoint refused the token")]
    SignInRequired,
    /// The endpoint forbids this (wrong role or network): call support.
    #[error("the endpoint refused this device's request: {0}")]
    Forbidden(String),
    /// No answer after every retry: try later. Nothing was lost.
    #[error("the endpoint could not be reached; will retry later ({0})")]
    Unreachable(String),
    /// The endpoint was reached but every try failed: it answered with a
    /// failure of its own (5xx, 408, 429), or the request timed out or was
    /// cut after the connection was made (a large push on a weak uplink).
    /// Try later. Nothing was lost.
    #[error("the endpoint was reached but the request failed; will retry later ({0})")]
    Failing(String),
    /// The endpoint answered something this build cannot use.
    #[error("unexpected answer from the endpoint: {0}")]
    Protocol(String),
    /// The local store failed.
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    /// The configuration is unusable (bad URL, batch sizes).
    #[error("sync configuration: {0}")]
    Config(String),
    /// The device was revoked, and its sync stopped before it was done (the
    /// error says why: a push that failed, a question the endpoint did not
    /// answer): what it holds unsent, or what the endpoint lost, must still
    /// reach the endpoint before the wipe. Keep the clinical screens closed
    /// and sync again; once a sync finishes, it says to wipe.
    #[error("this device was revoked, and its sync stopped before it could be wiped ({0})")]
    RevokedWithUnsent(String),
}

/// What the shell shows as the sync state, from the last completed sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncState {
    /// No sync has completed since the app started.
    NeverSynced,
    /// Everything pushed was answered and the pull is up to date.
    UpToDate,
    /// The last sync stopped early; the items not answered stay queued.
    Failed {
        /// What went wrong, for the screen (no patient data).
        reason: String,
    },
    /// The user must sign in before the next sync.
    SignInRequired,
    /// The device was revoked and everything it could push is pushed: wipe
    /// the store now (`Store::wipe(unsynced)`), then sign out.
    MustWipe {
        /// Items the endpoint refused that the wipe will discard.
        unsynced: u64,
    },
    /// The device was revoked, but no sync since has finished: changes it
    /// holds, or ones the endpoint lost, may not have reached the endpoint
    /// yet. Nobody may read or write records on it any more, and it keeps
    /// syncing until one finishes (then [`SyncState::MustWipe`]), so that no
    /// visit record is lost to the wipe.
    Revoked {
        /// Changes waiting to be pushed (pending or sent).
        unsent: u64,
        /// Why the last sync stopped short of the wipe, for the screen (no
        /// patient data).
        reason: String,
    },
}

/// What probing the stored pull cursor before a push heard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// `bad_cursor`: the endpoint no longer knows it (a restore).
    Refused,
    /// `device_revoked`: this device is revoked.
    Revoked,
    /// Neither, or no answer (the push and pull find out what they can).
    Neither,
}

/// Whether a sync's outcome says the device is revoked.
fn report_revoked(result: &Result<SyncReport, SyncError>) -> bool {
    match result {
        Ok(report) => report.revoked,
        Err(e) => matches!(e, SyncError::RevokedWithUnsent(_)),
    }
}

/// What a revoked device must do next: wipe, once a sync has finished (asked
/// what the endpoint holds, pushed what it lost) with nothing left unsent
/// (`finished`); until then stay closed, still revoked, with `reason` (why
/// the sync stopped). Counts the store would not give are no grounds to wipe.
fn revoked_state(counts: Option<OutboxCounts>, finished: bool, reason: String) -> SyncState {
    match counts {
        Some(counts) if finished && counts.pending + counts.sent == 0 => SyncState::MustWipe {
            unsynced: counts.unsynced(),
        },
        Some(counts) => SyncState::Revoked {
            unsent: counts.pending + counts.sent,
            reason,
        },
        None => SyncState::Revoked {
            unsent: 0,
            reason: format!("{reason}; the outbox could not be counted"),
        },
    }
}

/// The overall sync status for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// The state after the last completed sync.
    pub state: SyncState,
    /// When the last sync that finished without an error did: everything
    /// pushed, and every page pulled, as of then (one that reached the
    /// endpoint and then failed does not count, so "last synced" never
    /// claims more than was done).
    pub last_success: Option<Timestamp>,
    /// How many outbox items are in each state.
    pub counts: OutboxCounts,
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Changes the endpoint stored (now or before).
    pub pushed: usize,
    /// Changes the endpoint refused.
    pub rejected: usize,
    /// Changes whose record forked.
    pub forked: usize,
    /// Record versions pulled that were new here.
    pub pulled_new: usize,
    /// Pull pages applied.
    pub pull_pages: usize,
    /// Requests retried after a transient failure.
    pub retries: usize,
    /// True when the endpoint refused the stored pull cursor (`bad_cursor`)
    /// and the pull started again from the beginning: records already held
    /// came again and were recognised, so `pulled_new` counts only new ones.
    pub pull_restarted: bool,
    /// Changes the endpoint had accepted that were queued again and pushed in
    /// the same sync: those it said it no longer holds, asked after a
    /// `bad_cursor` (it may have been restored from an older backup), or
    /// every one where it could not say (it answers `duplicate` for those it
    /// holds).
    pub reoffered: usize,
    /// True when this device is revoked: the endpoint said so in this sync,
    /// or in an earlier one (the store keeps it).
    pub revoked: bool,
}

/// Pushes and pulls for one device's store.
pub struct SyncEngine {
    client: reqwest::Client,
    config: SyncConfig,
    store: Arc<Mutex<Store>>,
    tokens: Arc<dyn TokenSource>,
    status: Mutex<SyncStatus>,
    /// One sync at a time: a second caller waits for the first to finish.
    running: tokio::sync::Mutex<()>,
    /// Set, for the rest of the sync, once the endpoint asked to be left
    /// longer than the sync waits: no other request of it is made, not the
    /// push after a failed probe, nor the pull after a failed push.
    left_alone: AtomicBool,
}

enum Failure {
    /// Worth trying again: no connection could be made (`reached` false),
    /// or one was but the request failed (timed out, cut, or answered with a
    /// 5xx, 408 or 429).
    Transient {
        why: String,
        reached: bool,
        /// How long the endpoint asked to be left before the next try
        /// (`Retry-After` on a 5xx or 429).
        retry_after: Option<Duration>,
        /// The request ran out of time once connected.
        timed_out: bool,
    },
    Fatal(SyncError),
}

/// What [`SyncEngine::request_or_time_out`] got.
enum Sent {
    /// The first answer that was not transient: status and body.
    Answer(StatusCode, Vec<u8>),
    /// A try ran out of time once connected (only when asked to stop there).
    TimedOut(String),
}

/// The wait a `Retry-After` header asks for: seconds, or an HTTP date
/// (none when it is neither, or already past). A date is read against the
/// answer's own `Date` where it has one, not the device's clock: a phone a
/// few minutes slow would take a wait of a minute for several, and one fast
/// would take it for none.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a number is a very long wait all the same.
        return Some(value.parse().map_or(Duration::MAX, Duration::from_secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    let now = headers
        .get(reqwest::header::DATE)
        .and_then(|d| d.to_str().ok())
        .and_then(|d| jiff::fmt::rfc2822::parse(d.trim()).ok())
        .map_or_else(jiff::Timestamp::now, |d| d.timestamp());
    Duration::try_from(now.duration_until(at)).ok()
}

#[derive(Serialize)]
struct OutgoingPush<'a> {
    network: &'a NetworkId,
    device: &'a DeviceId,
    changes: Vec<OutgoingChange<'a>>,
}

#[derive(Serialize)]
struct OutgoingChange<'a> {
    change_id: ChangeId,
    body: OutgoingBody<'a>,
}

#[derive(Serialize)]
struct OutgoingBody<'a> {
    kind: ChangeKind,
    record: &'a RawValue,
}

fn kind_of(kind: RecordKind) -> ChangeKind {
    match kind {
        RecordKind::Visit => ChangeKind::VisitRecord,
        RecordKind::MedicationReview => ChangeKind::MedicationReview,
    }
}

fn reason_of(outcome: &ChangeOutcome) -> Option<String> {
    match outcome {
        ChangeOutcome::Rejected {
            code,
            field,
            reason,
        } => Some(match field {
            Some(f) => format!("{code:?}: {f}: {reason}"),
            None => format!("{code:?}: {reason}"),
        }),
        _ => None,
    }
}

/// Whether a 400 answer is an endpoint's refusal of `/held`'s `network`
/// field as unknown: what one built before requests named their network
/// answers.
fn refuses_network_field(bytes: &[u8]) -> bool {
    serde_json::from_slice::<ErrorBody>(bytes).is_ok_and(|b| {
        b.code == ErrorCode::BadRequest
            && (b.field.as_deref() == Some("network") || b.message.contains("`network`"))
    })
}

/// An answer that is not the JSON the protocol promises. Only where it broke
/// is said: serde's own message can quote the text it choked on, and a pull
/// page is patients' records.
fn unreadable(what: &str, e: &serde_json::Error) -> SyncError {
    SyncError::Protocol(format!(
        "{what} is not what the protocol says ({:?} error at line {}, column {})",
        e.classify(),
        e.line(),
        e.column()
    ))
}

/// Whether `id` is one of the changes just pushed. An answer about any
/// other change is ignored: acting on it would mark a change the endpoint
/// never received as stored (then never sent, and wiped with the device) or
/// refused.
fn was_sent(items: &[OutboxItem], id: ChangeId) -> bool {
    let sent = items.iter().any(|i| i.change_id.0 == id.0);
    if !sent {
        tracing::warn!(change_id = %id.0, "the endpoint answered for a change not in the push; ignored");
    }
    sent
}

/// The outbox moves a 200 answer asks for: one per change of `items`, stored
/// or rejected.
fn accepted_acks(
    bytes: &[u8],
    items: &[OutboxItem],
    report: &mut SyncReport,
) -> Result<Vec<(StoreChangeId, Acknowledgement)>, SyncError> {
    let response: PushResponse =
        serde_json::from_slice(bytes).map_err(|e| unreadable("push answer", &e))?;
    if response.device_status == DeviceStatus::Revoked {
        report.revoked = true;
    }
    let mut acks = Vec::with_capacity(response.results.len());
    let mut answered = std::collections::HashSet::new();
    for result in response.results {
        // An answer naming a change twice counts it once, as the store
        // moves it once.
        if !was_sent(items, result.change_id) || !answered.insert(result.change_id) {
            continue;
        }
        match reason_of(&result.outcome) {
            Some(reason) => {
                report.rejected += 1;
                acks.push((
                    StoreChangeId(result.change_id.0),
                    Acknowledgement::Rejected { reason },
                ));
            }
            None => {
                report.pushed += 1;
                if matches!(result.outcome, ChangeOutcome::Forked { .. }) {
                    report.forked += 1;
                }
                acks.push((StoreChangeId(result.change_id.0), Acknowledgement::Accepted));
            }
        }
    }
    Ok(acks)
}

/// The outbox moves a 422 answer asks for: the changes it names are
/// rejected; the rest of `items` stay queued and go in the next push, but
/// for any built on a rejected one, which the store holds back with it.
fn rejected_acks(
    bytes: &[u8],
    items: &[OutboxItem],
    report: &mut SyncReport,
) -> Result<Vec<(StoreChangeId, Acknowledgement)>, SyncError> {
    let error: ErrorBody =
        serde_json::from_slice(bytes).map_err(|e| unreadable("422 answer", &e))?;
    Ok(error
        .rejected
        .iter()
        .filter_map(|r| {
            let id = r
                .change_id
                .or_else(|| items.get(r.index).map(|i| ChangeId(i.change_id.0)))
                .filter(|&id| was_sent(items, id))?;
            let reason = match &r.field {
                Some(f) => format!("{:?}: {f}: {}", r.code, r.reason),
                None => format!("{:?}: {}", r.code, r.reason),
            };
            report.rejected += 1;
            Some((StoreChangeId(id.0), Acknowledgement::Rejected { reason }))
        })
        .collect())
}

impl SyncEngine {
    /// An engine for `store`, talking to the endpoint `config` names with
    /// tokens from `tokens`.
    pub fn new(
        config: SyncConfig,
        store: Arc<Mutex<Store>>,
        tokens: Arc<dyn TokenSource>,
    ) -> Result<Self, SyncError> {
        if config.push_batch == 0 || config.push_batch > MAX_PUSH_CHANGES {
            return Err(SyncError::Config(format!(
                "push_batch must be 1-{MAX_PUSH_CHANGES}"
            )));
        }
        if config.pull_limit == 0 || config.pull_limit > MAX_PULL_LIMIT {
            return Err(SyncError::Config(format!(
                "pull_limit must be 1-{MAX_PULL_LIMIT}"
            )));
        }
        if config.retry.attempts == 0 {
            return Err(SyncError::Config(
                "retry.attempts must be at least 1".into(),
            ));
        }
        let base = crate::endpoint::secure_url(&config.base_url)
            .map_err(|e| SyncError::Config(format!("base_url: {e}")))?;
        // The sync API never redirects. Following one would resend a push's
        // records (a 307 keeps the body) to wherever it pointed, perhaps in
        // clear, so an answer of 3xx is taken as it is: unexpected.
        let client = crate::endpoint::client_for(&base)
            .timeout(config.request_timeout)
            // A connection that cannot be made in this long is a dead link,
            // told apart from a request that timed out once connected.
            .connect_timeout(CONNECT_TIMEOUT.min(config.request_timeout / 2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| SyncError::Config(e.to_string()))?;
        Ok(Self {
            client,
            config,
            store,
            tokens,
            status: Mutex::new(SyncStatus {
                state: SyncState::NeverSynced,
                last_success: None,
                counts: OutboxCounts::default(),
            }),
            running: tokio::sync::Mutex::new(()),
            left_alone: AtomicBool::new(false),
        })
    }

    /// The state of the last completed sync and the outbox counts now. A
    /// store the endpoint revoked reads as revoked before any sync since the
    /// app started, so the records stay closed with no signal.
    pub fn status(&self) -> SyncStatus {
        let mut status = self
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        if let Ok(store) = self.store.lock() {
            let counts = store.outbox_counts().ok();
            if let Some(counts) = counts {
                status.counts = counts;
            }
            // Heard by a sync still running, or cut short, or before the app
            // started: the records close now.
            if !matches!(
                status.state,
                SyncState::Revoked { .. } | SyncState::MustWipe { .. }
            ) && store.revoked_at().ok().flatten().is_some()
            {
                status.state =
                    revoked_state(counts, false, "revoked; no sync has finished since".into());
            }
        }
        status
    }

    /// Keeps in the store that the endpoint said this device is revoked, as
    /// soon as it says so (a sync cut short after, or cancelled, loses
    /// nothing of it), so that the records stay closed from every start until
    /// the wipe.
    fn remember_revoked(&self) {
        if let Err(e) = self.store().and_then(|mut s| Ok(s.mark_revoked()?)) {
            tracing::warn!(error = %e, "could not record that this device is revoked");
        }
    }

    fn store(&self) -> Result<MutexGuard<'_, Store>, SyncError> {
        self.store
            .lock()
            .map_err(|_| SyncError::Config("store lock poisoned".into()))
    }

    /// Pushes everything queued, then pulls until up to date. A push that
    /// reached the endpoint but failed still lets the pull run before the
    /// sync reports the push's error. Safe to drop at any await point; the next
    /// sync resumes. Concurrent calls run one after the other.
    pub async fn sync(&self) -> Result<SyncReport, SyncError> {
        let _one_at_a_time = self.running.lock().await;
        self.left_alone.store(false, Ordering::SeqCst);
        let mut report = SyncReport::default();
        let result = match self.run(&mut report).await {
            Ok(()) => Ok(report),
            // Told it is revoked (by a push's answer, or the pull), then cut
            // short: that is what the shell must hear, whatever cut it.
            Err(e) if report.revoked && !matches!(e, SyncError::SignInRequired) => Err(match e {
                SyncError::RevokedWithUnsent(_) => e,
                e => SyncError::RevokedWithUnsent(e.to_string()),
            }),
            Err(e) => Err(e),
        };
        let (counts, revoked) = match self.store() {
            Ok(s) => (
                s.outbox_counts().ok(),
                s.revoked_at().ok().flatten().is_some(),
            ),
            Err(_) => (None, false),
        };
        let revoked = revoked || report_revoked(&result);
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.counts = counts.unwrap_or_default();
        if result.is_ok() {
            status.last_success = Some(Timestamp::now());
        }
        status.state = match &result {
            Ok(_) if !revoked => SyncState::UpToDate,
            Ok(_) => revoked_state(
                counts,
                true,
                "changes written during the sync wait to be pushed".into(),
            ),
            // Revoked, now or before, and this sync cut short (no signal, a
            // token run out): still revoked, the records closed, and not yet
            // to be wiped (what the endpoint lost may not be back yet).
            Err(SyncError::RevokedWithUnsent(reason)) => {
                revoked_state(counts, false, reason.clone())
            }
            Err(e) if revoked => revoked_state(counts, false, e.to_string()),
            Err(SyncError::SignInRequired) => SyncState::SignInRequired,
            Err(e) => SyncState::Failed {
                reason: e.to_string(),
            },
        };
        result
    }

    async fn run(&self, report: &mut SyncReport) -> Result<(), SyncError> {
        // Before anything is sent: a store holding another network's records
        // pushes none of them here. A store bound to none yet (new, or
        // migrated from before stores were bound) is bound by the first push
        // the endpoint answers or the first pull page naming its network
        // (either proves the configured network is the token's), and offers
        // nothing again on a refused cursor in a sync it started unbound: it
        // may hold another network's history.
        let bound = self.store()?.check_network(&self.config.network)?;
        // Known revoked (from an earlier sync): nothing more is pulled onto it,
        // even where the endpoint has since forgotten the revocation (a
        // restore); what it holds is pushed, then it wipes.
        if self.store()?.revoked_at()?.is_some() {
            report.revoked = true;
        }
        // With changes waiting, a refused cursor is looked for before they
        // go: what a restore lost is queued again ahead of them, so an
        // amendment never reaches the endpoint before the version it amends.
        let mut reoffer = bound;
        let counts = self.store()?.outbox_counts()?;
        let waiting = counts.pending + counts.sent > 0;
        // Changes accepted before any pull page was applied leave no cursor
        // for a restore to refuse: the endpoint is asked outright what it
        // holds of them, until a page lands.
        let cursorless = self.store()?.sync_cursor()?.is_none_or(|c| c.0.is_empty());
        // The stored cursor is probed before changes go, where that is how a
        // restore would show; the endpoint answers a revoked device's probe
        // with the revocation instead (it never hears a cursor refused).
        let probe = if !report.revoked && bound && waiting && !(counts.accepted > 0 && cursorless) {
            self.probe_cursor(report).await?
        } else {
            Probe::Neither
        };
        if probe == Probe::Revoked {
            self.remember_revoked();
            report.revoked = true;
        }
        if report.revoked {
            // It hears no cursor refused, and pulls nothing: what the endpoint
            // lost goes back ahead of anything built on it. Asked again at
            // every sync until one finishes, so a failure to ask ends this one.
            if bound && counts.accepted > 0 {
                self.reoffer_lost_or_all_if_refused(report).await?;
            }
            reoffer = false;
        } else if bound && counts.accepted > 0 && cursorless {
            self.reoffer_lost_or_all(report).await?;
            reoffer = false;
        } else if probe == Probe::Refused {
            self.reoffer_lost_or_all_if_refused(report).await?;
            reoffer = false;
        }
        if let Err(failed) = self.push_all(report).await {
            return Err(self.pull_despite(failed, report, reoffer).await);
        }
        // The pull says whether the device was revoked since the push.
        if report.revoked || self.pull_all(report, reoffer).await? {
            report.revoked = true;
            // The device is to be wiped. A revoked device never hears of a
            // refused cursor, so the endpoint is first asked whether it holds
            // everything it accepted from it (a restore since may have lost
            // some); what it lost goes again, with anything written since.
            // The store keeps the revocation, so a failure to ask ends this
            // sync, and the next asks again before the wipe.
            if reoffer && !report.pull_restarted {
                self.reoffer_lost_or_all_if_refused(report).await?;
            }
            self.push_all(report).await?;
        } else if report.reoffered > 0 {
            // What an endpoint restored from a backup lost goes back to it now.
            self.push_all(report).await?;
        }
        Ok(())
    }

    /// After a push that reached the endpoint but failed every time (a fault
    /// of the endpoint's with one record, or a large record that a weak
    /// uplink cannot carry within the request timeout) or was answered with
    /// something this build cannot read, the pull still runs (not on a device
    /// known to be revoked, which pulls nothing more), so that change
    /// does not also keep colleagues' records from this device: small pull
    /// pages may come down a link that cannot carry the push up. The push's
    /// error is what the sync reports, unless the pull finds the sign-in
    /// refused (a token that expired while the push was retried): the
    /// clinician can act on that. The change stays queued for the next
    /// sync. A push that could not connect at all ends the sync: the pull
    /// would wait out its retries on the same dead link. A refused token or a forbidden call would refuse the pull
    /// too, and a failing store cannot take it: those end the sync as they
    /// are.
    async fn pull_despite(
        &self,
        failed: SyncError,
        report: &mut SyncReport,
        reoffer: bool,
    ) -> SyncError {
        if !matches!(failed, SyncError::Failing(_) | SyncError::Protocol(_))
            || self.left_alone.load(Ordering::SeqCst)
        {
            return failed;
        }
        if report.revoked {
            return SyncError::RevokedWithUnsent(failed.to_string());
        }
        tracing::warn!(error = %failed, "the push failed; pulling colleagues' changes anyway");
        match self.pull_all(report, reoffer).await {
            // The clinician can act on this one: signed in again, the push
            // is tried again too.
            Err(SyncError::SignInRequired) => SyncError::SignInRequired,
            Err(e) => {
                tracing::warn!(error = %e, "the pull after a failed push failed too");
                failed
            }
            // Revoked: said at once, so the shell closes the records, but
            // not wiped while the change that failed is unsent.
            Ok(true) => {
                report.revoked = true;
                SyncError::RevokedWithUnsent(failed.to_string())
            }
            Ok(false) => failed,
        }
    }

    /// Pushes the outbox until nothing is left to push. A push the endpoint
    /// refuses as too large, or one of several changes that runs out of
    /// time, is halved and sent again; a change refused as too large on its
    /// own is marked rejected, and the others still go.
    async fn push_all(&self, report: &mut SyncReport) -> Result<(), SyncError> {
        // Halved on each 413, doubled back after each answered push, up to
        // `ceiling`: the batch, or below the last push that ran out of time
        // (the uplink is slow for this sync, and a push that runs out of time
        // costs the whole of it).
        let mut ceiling = self.config.push_batch;
        let mut cap = ceiling;
        loop {
            let items = self.next_batch(cap)?;
            if items.is_empty() {
                return Ok(());
            }
            let ids: Vec<StoreChangeId> = items.iter().map(|i| i.change_id).collect();
            self.store()?.mark_sent(&ids)?;
            let body = self.push_body(&items)?;
            let build = || {
                self.client
                    .post(self.url(PUSH_PATH))
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            };
            // A push of several changes that runs out of time is sent again
            // halved, not whole: an uplink too weak to carry it within the
            // request's time may carry its halves, where trying the same
            // body again never would.
            let (status, bytes) = match self
                .request_or_time_out(report, build, items.len() > 1)
                .await?
            {
                Sent::Answer(status, bytes) => (status, bytes),
                Sent::TimedOut(why) => {
                    tracing::info!(changes = items.len(), bytes = body.len(), why = %why, "push ran out of time; halving the batch");
                    report.retries += 1;
                    ceiling = items.len() / 2;
                    cap = ceiling;
                    continue;
                }
            };
            let acks = if status == StatusCode::OK {
                let acks = accepted_acks(&bytes, &items, report)?;
                if report.revoked {
                    self.remember_revoked();
                }
                acks
            } else if status == StatusCode::UNPROCESSABLE_ENTITY {
                rejected_acks(&bytes, &items, report)?
            } else if status == StatusCode::PAYLOAD_TOO_LARGE {
                if items.len() > 1 {
                    tracing::info!(
                        changes = items.len(),
                        bytes = body.len(),
                        "push refused as too large; halving the batch"
                    );
                    cap = items.len() / 2;
                    continue;
                }
                tracing::warn!(
                    change_id = %items[0].change_id,
                    bytes = body.len(),
                    "one change refused as too large; marked rejected"
                );
                report.rejected += 1;
                vec![(
                    items[0].change_id,
                    Acknowledgement::Rejected {
                        reason: TOO_LARGE_REASON.into(),
                    },
                )]
            } else {
                return Err(self.refusal(status, &bytes));
            };
            if status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY {
                // The endpoint took the push's network as the token's.
                self.store()?.bind_network(&self.config.network)?;
            }
            let moved = self.store()?.acknowledge(&acks)?;
            if moved == 0 {
                return Err(SyncError::Protocol(
                    "the endpoint answered no change of the batch".into(),
                ));
            }
            cap = cap.saturating_mul(2).min(ceiling);
        }
    }

    /// The next changes to push, oldest first: at most `cap` of them, and
    /// within [`PUSH_BUDGET_BYTES`] unless the first alone is larger (then it
    /// goes alone, so a large change is never skipped or stuck). The store
    /// chooses them by size, so no more records are read than the push takes.
    fn next_batch(&self, cap: usize) -> Result<Vec<OutboxItem>, SyncError> {
        Ok(self.store()?.push_batch(PushLimit {
            items: cap,
            bytes: PUSH_BUDGET_BYTES - PUSH_ENVELOPE_BYTES,
            overhead_per_item: CHANGE_ENVELOPE_BYTES,
        })?)
    }

    /// The JSON of a push of `items`, their records passed through as stored.
    fn push_body(&self, items: &[OutboxItem]) -> Result<Vec<u8>, SyncError> {
        let raws = items
            .iter()
            .map(|i| RawValue::from_string(i.payload.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| SyncError::Protocol("an outbox payload is not JSON".into()))?;
        serde_json::to_vec(&OutgoingPush {
            network: &self.config.network,
            device: &self.config.device,
            changes: items
                .iter()
                .zip(&raws)
                .map(|(item, raw)| OutgoingChange {
                    change_id: ChangeId(item.change_id.0),
                    body: OutgoingBody {
                        kind: kind_of(item.kind),
                        record: raw,
                    },
                })
                .collect(),
        })
        .map_err(|e| SyncError::Protocol(e.to_string()))
    }

    /// Pulls until the endpoint says no more. Returns true when the endpoint
    /// says this device is revoked.
    ///
    /// A stored cursor the endpoint refuses as `bad_cursor` (made for another
    /// network, or beyond the endpoint's last change after a restore) is
    /// dropped once per sync: the pull asks again from the beginning, and the
    /// first page applied replaces the stored cursor. Records already held
    /// are recognised and kept once.
    async fn pull_all(&self, report: &mut SyncReport, reoffer: bool) -> Result<bool, SyncError> {
        // True from a `bad_cursor` answer until the first page is applied.
        let mut from_beginning = false;
        // The store is bound by the first page naming its network; later
        // pages need not ask the store again.
        let mut bound = false;
        // Every cursor asked with in this pull: a page that leads back to one
        // would be followed round for ever.
        let mut asked = std::collections::HashSet::new();
        // Halved for the rest of the sync each time a page of more than one
        // change runs out of time: a downlink too weak to carry a full page
        // within the request's time may carry smaller ones, where asking for
        // the same page again never would.
        let mut limit = self.config.pull_limit;
        loop {
            let cursor = if from_beginning {
                String::new()
            } else {
                self.store()?
                    .sync_cursor()?
                    .map(|c| c.0)
                    .unwrap_or_default()
            };
            let url = reqwest::Url::parse_with_params(
                &self.url(PULL_PATH),
                &[
                    ("cursor", cursor.as_str()),
                    ("limit", limit.to_string().as_str()),
                ],
            )
            .map_err(|e| SyncError::Config(format!("base_url: {e}")))?;
            let (status, bytes) = match self
                .request_or_time_out(report, || self.client.get(url.clone()), limit > 1)
                .await?
            {
                Sent::Answer(status, bytes) => (status, bytes),
                Sent::TimedOut(why) => {
                    tracing::info!(limit, why = %why, "pull page ran out of time; halving the page");
                    report.retries += 1;
                    limit /= 2;
                    continue;
                }
            };
            if status != StatusCode::OK {
                match serde_json::from_slice::<ErrorBody>(&bytes).map(|b| b.code) {
                    Ok(ErrorCode::DeviceRevoked) => {
                        self.remember_revoked();
                        return Ok(true);
                    }
                    Ok(ErrorCode::BadCursor) if !cursor.is_empty() && !report.pull_restarted => {
                        tracing::warn!(
                            "the endpoint refused the stored pull cursor; pulling from the beginning \
                             and offering again what it no longer holds"
                        );
                        report.pull_restarted = true;
                        if reoffer {
                            self.reoffer_lost_or_all_if_refused(report).await?;
                        }
                        from_beginning = true;
                        continue;
                    }
                    _ => return Err(self.refusal(status, &bytes)),
                }
            }
            let page: PullResponse =
                serde_json::from_slice(&bytes).map_err(|e| unreadable("pull answer", &e))?;
            // Every page the endpoint promises more after carries a change
            // and moves the cursor; one that does neither would be asked for
            // again for ever, holding the sync (and every later one) open.
            asked.insert(cursor);
            if page.more && (page.changes.is_empty() || asked.contains(page.cursor.as_str())) {
                return Err(SyncError::Protocol(
                    "the endpoint promised more changes but its page carried none, or led back \
                     to a cursor already asked; stopped rather than ask for the same pages again"
                        .into(),
                ));
            }
            if let Some(network) = &page.network {
                if *network != self.config.network {
                    return Err(SyncError::Forbidden(format!(
                        "the account signed in belongs to network {network}, but this device \
                         is set up for {}: check the device's network or the account; nothing \
                         of {network} was stored",
                        self.config.network
                    )));
                }
                // The endpoint served the configured network as the token's,
                // which proves it as an answered push does.
                if !bound {
                    self.store()?.bind_network(&self.config.network)?;
                    bound = true;
                }
            }
            let mut batch = PullBatch::new(SyncCursor(page.cursor.as_str().to_owned()));
            batch.records = page
                .changes
                .into_iter()
                .map(|c| match c.body {
                    ChangeBody::VisitRecord(r) => PulledRecord::Visit(r),
                    ChangeBody::MedicationReview(r) => PulledRecord::MedicationReview(r),
                })
                .collect();
            let applied = self.store()?.apply_pull(&batch)?;
            report.pulled_new += applied.new_versions;
            report.pull_pages += 1;
            from_beginning = false;
            if !page.more {
                return Ok(false);
            }
        }
    }

    /// Whether the endpoint refuses the stored pull cursor (`bad_cursor`) or
    /// says this device is revoked (which it checks first), asked with a
    /// pull of one change that is not applied. Neither with no cursor, for
    /// any other answer, and when no answer comes (the push still goes; the
    /// pull proper deals with the rest); only a refused token stops the
    /// sync here.
    async fn probe_cursor(&self, report: &mut SyncReport) -> Result<Probe, SyncError> {
        let Some(cursor) = self.store()?.sync_cursor()? else {
            return Ok(Probe::Neither);
        };
        let url = reqwest::Url::parse_with_params(
            &self.url(PULL_PATH),
            &[("cursor", cursor.0.as_str()), ("limit", "1")],
        )
        .map_err(|e| SyncError::Config(format!("base_url: {e}")))?;
        let (status, bytes) = match self.request(report, || self.client.get(url.clone())).await {
            Ok(answer) => answer,
            Err(SyncError::SignInRequired) => return Err(SyncError::SignInRequired),
            // Asked to be left: the push waits for the next sync too.
            Err(e) if self.left_alone.load(Ordering::SeqCst) => return Err(e),
            Err(_) => return Ok(Probe::Neither),
        };
        let code = serde_json::from_slice::<ErrorBody>(&bytes).map(|b| b.code);
        Ok(match (status, code) {
            (StatusCode::BAD_REQUEST, Ok(ErrorCode::BadCursor)) => Probe::Refused,
            (StatusCode::FORBIDDEN, Ok(ErrorCode::DeviceRevoked)) => Probe::Revoked,
            _ => Probe::Neither,
        })
    }

    /// [`Self::reoffer_lost`], where no later chance to ask may come: when
    /// `/held` is answered with something else than its answer (a proxy that
    /// does not route it, an endpoint failing), every change the endpoint
    /// accepted goes again, and it answers `duplicate` for what it holds.
    /// Where no connection could be made, or the endpoint itself refuses (an
    /// account of another network), nothing is queued again and the sync
    /// ends: nothing else of it would get through either, and since no pull
    /// page lands, the next sync asks again. (Queued again then, a device
    /// offline would show its whole history as unsynced.) A refused sign-in
    /// ends it too.
    async fn reoffer_lost_or_all(&self, report: &mut SyncReport) -> Result<(), SyncError> {
        match self.reoffer_lost(report).await {
            Err(
                e @ (SyncError::SignInRequired
                | SyncError::Unreachable(_)
                | SyncError::Forbidden(_)),
            ) => Err(e),
            Err(e) => {
                tracing::warn!(error = %e, "could not ask what the endpoint holds; offering every accepted change again");
                self.reoffer_every_accepted(report)
            }
            Ok(()) => Ok(()),
        }
    }

    /// Queues again every change the endpoint accepted that is not queued
    /// already (what an earlier answer found missing is), counting them.
    fn reoffer_every_accepted(&self, report: &mut SyncReport) -> Result<(), SyncError> {
        let accepted = self.store()?.accepted_change_ids()?;
        report.reoffered += self.store()?.reoffer(&accepted)? as usize;
        Ok(())
    }

    /// [`Self::reoffer_lost`] after a refused cursor, where the next sync
    /// would ask again: a failure that may pass (no connection, the endpoint
    /// failing) ends this sync, to ask again next time, and so does the
    /// endpoint's own refusal (a 403 `wrong_network`: the account signed in
    /// is another network's). But an answer that is not the endpoint's (a
    /// proxy's 403 or 405 page) would end every sync there, pulling and
    /// pushing nothing for ever. So then every change the endpoint accepted goes again, and it
    /// answers `duplicate` for what it holds.
    async fn reoffer_lost_or_all_if_refused(
        &self,
        report: &mut SyncReport,
    ) -> Result<(), SyncError> {
        match self.reoffer_lost(report).await {
            Err(e @ SyncError::Protocol(_)) => {
                tracing::warn!(error = %e, "the endpoint will not say what it holds; offering every accepted change again");
                self.reoffer_every_accepted(report)
            }
            other => other,
        }
    }

    /// Asks the endpoint which of the changes it accepted from this device it
    /// no longer holds (it was restored from an older backup, say), and
    /// queues those again. An endpoint too old to say (404) gets every one
    /// of them again, and answers `duplicate` for what it holds. Each chunk's
    /// are counted in `report.reoffered` as they are queued, so a later
    /// chunk's failure leaves the count true.
    async fn reoffer_lost(&self, report: &mut SyncReport) -> Result<(), SyncError> {
        let accepted = self.store()?.accepted_change_ids()?;
        // An endpoint built before requests named their network refuses the
        // field as unknown (400); it is then asked without it, and cannot
        // check the network (a device signed in to another network hears
        // that its changes are missing, and its push is then refused as the
        // wrong network). Any other 400 is an error.
        let mut named = true;
        for chunk in accepted.chunks(MAX_HELD_IDS) {
            let (status, bytes) = loop {
                let request = HeldRequest {
                    network: named.then(|| self.config.network.clone()),
                    change_ids: chunk.iter().map(|id| ChangeId(id.0)).collect(),
                };
                let body =
                    serde_json::to_vec(&request).map_err(|e| SyncError::Protocol(e.to_string()))?;
                let (status, bytes) = self
                    .request(report, || {
                        self.client
                            .post(self.url(HELD_PATH))
                            .header(reqwest::header::CONTENT_TYPE, "application/json")
                            .body(body.clone())
                    })
                    .await?;
                if named && status == StatusCode::BAD_REQUEST && refuses_network_field(&bytes) {
                    named = false;
                    continue;
                }
                break (status, bytes);
            };
            if status == StatusCode::NOT_FOUND {
                tracing::warn!(
                    "the endpoint cannot say which changes it holds; offering every accepted one again"
                );
                return self.reoffer_every_accepted(report);
            }
            if status != StatusCode::OK {
                // Not the endpoint's refusal, which is always JSON: a page
                // of something in between.
                if serde_json::from_slice::<ErrorBody>(&bytes).is_err() {
                    return Err(SyncError::Protocol(format!(
                        "{status} to the question of what the endpoint holds, not from the \
                         endpoint"
                    )));
                }
                return Err(self.refusal(status, &bytes));
            }
            let answer: HeldResponse =
                serde_json::from_slice(&bytes).map_err(|e| unreadable("held answer", &e))?;
            let missing: Vec<StoreChangeId> = answer
                .missing
                .iter()
                .map(|id| StoreChangeId(id.0))
                .collect();
            report.reoffered += self.store()?.reoffer(&missing)? as usize;
        }
        Ok(())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.config.base_url.trim_end_matches('/'))
    }

    fn refusal(&self, status: StatusCode, bytes: &[u8]) -> SyncError {
        let body: Option<ErrorBody> = serde_json::from_slice(bytes).ok();
        let message = body.map_or_else(|| status.to_string(), |b| b.message);
        match status {
            StatusCode::UNAUTHORIZED => SyncError::SignInRequired,
            StatusCode::FORBIDDEN => SyncError::Forbidden(message),
            _ => SyncError::Protocol(format!("{status}: {message}")),
        }
    }

    /// Sends a request built by `build`, retrying transient failures with
    /// backoff. Returns the status and the whole body of the first answer
    /// that is not transient.
    async fn request(
        &self,
        report: &mut SyncReport,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), SyncError> {
        match self.request_or_time_out(report, build, false).await? {
            Sent::Answer(status, bytes) => Ok((status, bytes)),
            Sent::TimedOut(why) => Err(SyncError::Failing(why)),
        }
    }

    /// [`Self::request`], but with `stop_on_time_out` a try that runs out of
    /// time once connected is not tried again: the caller can send less.
    async fn request_or_time_out(
        &self,
        report: &mut SyncReport,
        build: impl Fn() -> reqwest::RequestBuilder,
        stop_on_time_out: bool,
    ) -> Result<Sent, SyncError> {
        let retry = self.config.retry;
        let mut backoff = retry.initial_backoff.min(retry.max_backoff);
        let mut last = String::new();
        let mut reached = false;
        let mut asked = None;
        for attempt in 0..retry.attempts {
            if attempt > 0 {
                report.retries += 1;
                let wait = jittered(backoff).max(asked.unwrap_or_default());
                tokio::time::sleep(wait).await;
                backoff = backoff.saturating_mul(2).min(retry.max_backoff);
            }
            match self.attempt(&build).await {
                Ok((status, bytes)) => return Ok(Sent::Answer(status, bytes)),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient { why, timed_out, .. }) if timed_out && stop_on_time_out => {
                    return Ok(Sent::TimedOut(why));
                }
                Err(Failure::Transient {
                    why,
                    reached: now,
                    retry_after,
                    ..
                }) => {
                    tracing::debug!(attempt, why = %why, "sync request failed; retrying");
                    last = why;
                    reached = now;
                    asked = retry_after;
                    // An endpoint that asks to be left longer than the
                    // policy would wait is left: this sync ends, to try
                    // again at the next, rather than knock again at once.
                    if let Some(wait) =
                        retry_after.filter(|wait| *wait > retry.max_backoff.min(LONGEST_ASKED_WAIT))
                    {
                        last = format!("{last}, asked to retry after {} s", wait.as_secs());
                        self.left_alone.store(true, Ordering::SeqCst);
                        break;
                    }
                }
            }
        }
        Err(if reached {
            SyncError::Failing(last)
        } else {
            SyncError::Unreachable(last)
        })
    }

    async fn attempt(
        &self,
        build: &impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), Failure> {
        let token = self
            .tokens
            .bearer()
            .ok_or(Failure::Fatal(SyncError::SignInRequired))?;
        let response = build().bearer_auth(token).send().await.map_err(|e| {
            // Made wrong here, never sent (a token a header cannot carry,
            // say): trying again would make it wrong again.
            if e.is_builder() {
                return Failure::Fatal(SyncError::Config(format!(
                    "the request could not be made: {}",
                    with_causes(&e)
                )));
            }
            Failure::Transient {
                why: with_causes(&e),
                reached: !e.is_connect(),
                retry_after: None,
                timed_out: e.is_timeout() && !e.is_connect(),
            }
        })?;
        let status = response.status();
        let asked = retry_after(response.headers());
        let transient = status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT;
        let bytes = match crate::endpoint::body_within(response, MAX_ANSWER_BYTES).await {
            Ok(bytes) => bytes,
            Err(BodyError::Transport(e)) => {
                return Err(Failure::Transient {
                    why: with_causes(&e),
                    reached: true,
                    retry_after: None,
                    timed_out: e.is_timeout(),
                });
            }
            // Only its status counts: it is tried again all the same.
            Err(BodyError::TooLarge { .. }) if transient => Vec::new(),
            Err(BodyError::TooLarge { limit }) => {
                return Err(Failure::Fatal(SyncError::Protocol(format!(
                    "the answer ({status}) ran past {limit} bytes, far more than the endpoint \
                     sends: something else answered"
                ))));
            }
        };
        if transient {
            return Err(Failure::Transient {
                why: status.to_string(),
                reached: true,
                retry_after: asked,
                // The endpoint (or a proxy before it) stopped waiting for the
                // request: a slow upload, which a smaller push may beat.
                timed_out: status == StatusCode::REQUEST_TIMEOUT,
            });
        }
        Ok((status, bytes))
    }
}

/// The longest `Retry-After` a sync waits for, whatever its policy: a sync
/// that sleeps longer holds every later one behind it.
const LONGEST_ASKED_WAIT: Duration = Duration::from_secs(60);

/// Most bytes of an answer the engine reads. A pull page carries about a
/// megabyte of records at most (a single larger record alone), with its
/// patients' summaries: sixteen times that leaves room, and stops a phone
/// reading a portal's or a proxy's endless stream into memory.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// `base` plus up to a half of it again, drawn from the system's random
/// source, so devices that lost signal together do not retry together. (The
/// clock's sub-second digits are no substitute: Apple's count whole
/// microseconds, which left every iPad on the same schedule.) Without
/// randomness the wait is `base` plus a quarter.
fn jittered(base: Duration) -> Duration {
    let draw = getrandom::u32().unwrap_or(u32::MAX / 2);
    let share = f64::from(draw) / f64::from(u32::MAX) / 2.0;
    base.saturating_add(Duration::try_from_secs_f64(base.as_secs_f64() * share).unwrap_or(base))
}

/// A sync running in the background; dropping or cancelling it stops the
/// sync at its next await, leaving the store consistent.
pub struct SyncTask {
    handle: Option<tokio::task::JoinHandle<Result<SyncReport, SyncError>>>,
}

impl SyncTask {
    /// Starts `engine.sync()` on the current tokio runtime.
    pub fn spawn(engine: Arc<SyncEngine>) -> Self {
        Self {
            handle: Some(tokio::spawn(async move { engine.sync().await })),
        }
    }

    /// Stops the sync. What was committed stays; the rest is redone next time.
    pub fn cancel(&self) {
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }

    /// Waits for the sync; `None` when it was cancelled.
    pub async fn wait(mut self) -> Option<Result<SyncReport, SyncError>> {
        self.handle.take()?.await.ok()
    }
}

impl Drop for SyncTask {
    fn drop(&mut self) {
        self.cancel();
    }
}

#[cfg(test)]
mod tests {
    use doorstep_domain::network::ClinicianId;
    use doorstep_domain::record::{RecordId, VersionId, VersionMeta};
    use doorstep_domain::text::FreeText;
    use doorstep_store::{MemoryKeyProvider, StoreConfig};
    use uuid::Uuid;

    use super::*;
    use crate::fixtures;

    #[test]
    fn retries_wait_between_the_backoff_and_half_as_long_again_and_not_all_alike() {
        let base = Duration::from_millis(1000);
        let waits: Vec<Duration> = (0..32).map(|_| jittered(base)).collect();
        assert!(
            waits.iter().all(|w| *w >= base && *w <= base * 3 / 2),
            "{waits:?}"
        );
        let first = waits[0];
        assert!(
            waits
                .iter()
                .any(|w| w.abs_diff(first) > Duration::from_millis(10)),
            "{waits:?}"
        );
        // A policy with no limit (`Duration::MAX`) waits long, never panics.
        assert_eq!(jittered(Duration::MAX), Duration::MAX);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_a_date() {
        let asked = |value: &str| {
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(reqwest::header::RETRY_AFTER, value.parse().unwrap());
            retry_after(&headers)
        };
        assert_eq!(asked("120"), Some(Duration::from_secs(120)));
        assert_eq!(asked("99999999999999999999999"), Some(Duration::MAX));
        assert_eq!(asked("-5"), None);
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(10);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new()
            .timestamp_to_rfc9110_string(&soon)
            .unwrap();
        let wait = asked(&date).expect("a date ahead");
        assert!(wait > Duration::from_secs(500) && wait <= Duration::from_secs(600));
        assert_eq!(asked("Sun, 06 Nov 1994 08:49:37 GMT"), None, "past");
        assert_eq!(asked("soon"), None);
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new()), None);
        // Against the answer's own clock: a minute after it said it was, whatever the
        // device's clock says (here, years later).
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::DATE,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        headers.insert(
            reqwest::header::RETRY_AFTER,
            "Sun, 06 Nov 1994 08:50:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(60)));
    }

    /// An engine over a fresh store holding `records` visit records whose
    /// four free texts are at their longest in two-byte characters: about
    /// 80 KB of JSON each, valid, and long only because the clinician wrote
    /// a lot. The endpoint is never called.
    fn engine_with_long_records(dir: &tempfile::TempDir, records: u64) -> SyncEngine {
        let mut store = Store::open(
            &StoreConfig::new(dir.path().join("device.db")),
            Arc::new(MemoryKeyProvider::new()),
        )
        .unwrap();
        let text = FreeText::parse("text", &"é".repeat(10_000)).unwrap();
        for seed in 0..records {
            let meta = VersionMeta::first(
                RecordId(Uuid::now_v7()),
                VersionId(Uuid::now_v7()),
                ClinicianId::parse("para-1").unwrap(),
                DeviceId::parse("phone-1").unwrap(),
                fixtures::instant(),
            );
            let mut record = fixtures::visit_record(meta, seed);
            record.content.presenting_complaint = text.clone();
            record.content.assessment = text.clone();
            record.content.treatment = text.clone();
            record.content.safety_netting = text.clone();
            store.save(&record).unwrap();
        }
        let config = SyncConfig::new(
            "http://127.0.0.1:9",
            NetworkId::parse("east-dorset").unwrap(),
            DeviceId::parse("phone-1").unwrap(),
        );
        SyncEngine::new(
            config,
            Arc::new(Mutex::new(store)),
            Arc::new("token".to_owned()),
        )
        .unwrap()
    }

    #[test]
    fn a_push_holds_as_many_changes_as_fit_the_byte_budget_and_no_more() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with_long_records(&dir, 10);
        let batch = engine.next_batch(100).unwrap();
        let body = engine.push_body(&batch).unwrap();
        assert!(
            body.len() <= PUSH_BUDGET_BYTES,
            "a push of {} bytes",
            body.len()
        );
        let one_more = engine
            .store()
            .unwrap()
            .push_batch(PushLimit {
                items: batch.len() + 1,
                bytes: usize::MAX,
                overhead_per_item: 0,
            })
            .unwrap();
        assert_eq!(one_more.len(), batch.len() + 1, "more were queued");
        let longer = engine.push_body(&one_more).unwrap();
        assert!(
            longer.len() > PUSH_BUDGET_BYTES,
            "{} changes in {} bytes would have fitted",
            one_more.len(),
            longer.len()
        );
        assert_eq!(
            engine.next_batch(2).unwrap().len(),
            2,
            "the count still bounds it"
        );
    }

    #[test]
    fn an_unreadable_answer_says_where_it_broke_and_never_quotes_it() {
        let bytes = br#"{"changes": "Mrs Example fell on the stairs", "more": false}"#;
        let e = serde_json::from_slice::<PullResponse>(bytes).unwrap_err();
        assert!(e.to_string().contains("Mrs Example"), "serde quotes it");
        let said = unreadable("pull answer", &e).to_string();
        assert!(!said.contains("Mrs Example"), "{said}");
        assert!(
            said.contains("pull answer") && said.contains("line 1"),
            "{said}"
        );
    }
}
