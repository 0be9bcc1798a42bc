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

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_store::{
    Acknowledgement, ChangeId as StoreChangeId, OutboxCounts, OutboxItem, PullBatch, PulledRecord,
    RecordKind, Store, StoreError, SyncCursor,
};
use jiff::Timestamp;
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::wire::{
    ChangeBody, ChangeId, ChangeKind, ChangeOutcome, DeviceStatus, ErrorBody, ErrorCode,
    MAX_PULL_LIMIT, MAX_PUSH_CHANGES, PULL_PATH, PUSH_PATH, PullResponse, PushResponse,
};

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
    /// Longest wait between attempts.
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
    /// The endpoint's base URL, e.g. `https://sync.example-pcn.nhs.uk`.
    pub base_url: String,
    /// The device's network.
    pub network: NetworkId,
    /// This device.
    pub device: DeviceId,
    /// Changes per push (at most [`MAX_PUSH_CHANGES`]).
    pub push_batch: usize,
    /// Changes per pull page (at most [`MAX_PULL_LIMIT`]).
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
    /// The endpoint answered something this build cannot use.
    #[error("unexpected answer from the endpoint: {0}")]
    Protocol(String),
    /// The local store failed.
    #[error("local store: {0}")]
    Store(#[from] StoreError),
    /// The configuration is unusable (bad URL, batch sizes).
    #[error("sync configuration: {0}")]
    Config(String),
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
}

/// The overall sync status for the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    /// The state after the last completed sync.
    pub state: SyncState,
    /// When the last sync that reached the endpoint finished.
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
    /// True when the endpoint said this device is revoked.
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
}

enum Failure {
    Transient(String),
    Fatal(SyncError),
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
        let client = reqwest::Client::builder()
            .timeout(config.request_timeout)
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
        })
    }

    /// The state of the last completed sync and the outbox counts now.
    pub fn status(&self) -> SyncStatus {
        let mut status = self
            .status
            .lock()
            .map(|s| s.clone())
            .unwrap_or_else(|e| e.into_inner().clone());
        if let Ok(store) = self.store.lock()
            && let Ok(counts) = store.outbox_counts()
        {
            status.counts = counts;
        }
        status
    }

    fn store(&self) -> Result<MutexGuard<'_, Store>, SyncError> {
        self.store
            .lock()
            .map_err(|_| SyncError::Config("store lock poisoned".into()))
    }

    /// Pushes everything queued, then pulls until up to date. Safe to drop at
    /// any await point; the next sync resumes. Concurrent calls run one after
    /// the other.
    pub async fn sync(&self) -> Result<SyncReport, SyncError> {
        let _one_at_a_time = self.running.lock().await;
        let result = self.run().await;
        let counts = self
            .store()
            .ok()
            .and_then(|s| s.outbox_counts().ok())
            .unwrap_or_default();
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.counts = counts;
        match &result {
            Ok(report) if report.revoked => {
                status.state = SyncState::MustWipe {
                    unsynced: counts.unsynced(),
                };
                status.last_success = Some(Timestamp::now());
            }
            Ok(_) => {
                status.state = SyncState::UpToDate;
                status.last_success = Some(Timestamp::now());
            }
            Err(SyncError::SignInRequired) => status.state = SyncState::SignInRequired,
            Err(e) => {
                status.state = SyncState::Failed {
                    reason: e.to_string(),
                }
            }
        }
        result
    }

    async fn run(&self) -> Result<SyncReport, SyncError> {
        let mut report = SyncReport::default();
        self.push_all(&mut report).await?;
        if report.revoked {
            return Ok(report);
        }
        if self.pull_all(&mut report).await? {
            // Revoked since the push: push anything written meanwhile, then wipe.
            report.revoked = true;
            self.push_all(&mut report).await?;
        }
        Ok(report)
    }

    async fn push_all(&self, report: &mut SyncReport) -> Result<(), SyncError> {
        loop {
            let items: Vec<OutboxItem> = self.store()?.push_batch(self.config.push_batch)?;
            if items.is_empty() {
                return Ok(());
            }
            let ids: Vec<StoreChangeId> = items.iter().map(|i| i.change_id).collect();
            self.store()?.mark_sent(&ids)?;
            let raws = items
                .iter()
                .map(|i| RawValue::from_string(i.payload.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| SyncError::Protocol("an outbox payload is not JSON".into()))?;
            let body = serde_json::to_vec(&OutgoingPush {
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
            .map_err(|e| SyncError::Protocol(e.to_string()))?;
            let (status, bytes) = self
                .request(report, || {
                    self.client
                        .post(self.url(PUSH_PATH))
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                })
                .await?;
            let acks: Vec<(StoreChangeId, Acknowledgement)> = if status == StatusCode::OK {
                let response: PushResponse = serde_json::from_slice(&bytes)
                    .map_err(|e| SyncError::Protocol(format!("push answer: {e}")))?;
                if response.device_status == DeviceStatus::Revoked {
                    report.revoked = true;
                }
                let mut acks = Vec::with_capacity(response.results.len());
                for result in response.results {
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
                            acks.push((
                                StoreChangeId(result.change_id.0),
                                Acknowledgement::Accepted,
                            ));
                        }
                    }
                }
                acks
            } else if status == StatusCode::UNPROCESSABLE_ENTITY {
                let error: ErrorBody = serde_json::from_slice(&bytes)
                    .map_err(|e| SyncError::Protocol(format!("422 answer: {e}")))?;
                error
                    .rejected
                    .iter()
                    .filter_map(|r| {
                        let id = r
                            .change_id
                            .or_else(|| items.get(r.index).map(|i| ChangeId(i.change_id.0)))?;
                        let reason = match &r.field {
                            Some(f) => format!("{:?}: {f}: {}", r.code, r.reason),
                            None => format!("{:?}: {}", r.code, r.reason),
                        };
                        report.rejected += 1;
                        Some((StoreChangeId(id.0), Acknowledgement::Rejected { reason }))
                    })
                    .collect()
            } else {
                return Err(self.refusal(status, &bytes));
            };
            let moved = self.store()?.acknowledge(&acks)?;
            if moved == 0 {
                return Err(SyncError::Protocol(
                    "the endpoint answered no change of the batch".into(),
                ));
            }
        }
    }

    /// Pulls until the endpoint says no more. Returns true when the endpoint
    /// says this device is revoked.
    async fn pull_all(&self, report: &mut SyncReport) -> Result<bool, SyncError> {
        loop {
            let cursor = self
                .store()?
                .sync_cursor()?
                .map(|c| c.0)
                .unwrap_or_default();
            let limit = self.config.pull_limit.to_string();
            let url = reqwest::Url::parse_with_params(
                &self.url(PULL_PATH),
                &[("cursor", cursor.as_str()), ("limit", limit.as_str())],
            )
            .map_err(|e| SyncError::Config(format!("base_url: {e}")))?;
            let (status, bytes) = self
                .request(report, || self.client.get(url.clone()))
                .await?;
            if status != StatusCode::OK {
                if let Ok(body) = serde_json::from_slice::<ErrorBody>(&bytes)
                    && body.code == ErrorCode::DeviceRevoked
                {
                    return Ok(true);
                }
                return Err(self.refusal(status, &bytes));
            }
            let page: PullResponse = serde_json::from_slice(&bytes)
                .map_err(|e| SyncError::Protocol(format!("pull answer: {e}")))?;
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
            if !page.more {
                return Ok(false);
            }
        }
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
        let retry = self.config.retry;
        let mut backoff = retry.initial_backoff;
        let mut last = String::new();
        for attempt in 0..retry.attempts {
            if attempt > 0 {
                report.retries += 1;
                tokio::time::sleep(jittered(backoff)).await;
                backoff = (backoff * 2).min(retry.max_backoff);
            }
            match self.attempt(&build).await {
                Ok(answer) => return Ok(answer),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient(why)) => {
                    tracing::debug!(attempt, why = %why, "sync request failed; retrying");
                    last = why;
                }
            }
        }
        Err(SyncError::Unreachable(last))
    }

    async fn attempt(
        &self,
        build: &impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), Failure> {
        let token = self
            .tokens
            .bearer()
            .ok_or(Failure::Fatal(SyncError::SignInRequired))?;
        let response = build()
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            return Err(Failure::Transient(status.to_string()));
        }
        Ok((status, bytes.to_vec()))
    }
}

/// `base` plus up to a half of it again, so devices that lost signal together
/// do not retry together.
fn jittered(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
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
