//! A storage that stands in front of a real one and lets a test act at the
//! moments that matter: a revocation landing while a read is served, a
//! database slow to answer its health check, counted, or one that fails
//! every push from one device.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use doorstep_domain::network::DeviceId;
use doorstep_domain::record::RecordId;
use doorstep_server::storage::{
    CheckedChange, ForksPage, NetworkScope, PullPage, Storage, StorageError,
};
use doorstep_sync::wire::{ChangeId, ChangeKind, ChangeOutcome};

/// The real storage `inner`, with what the test asked for.
pub struct Watched {
    inner: Arc<dyn Storage>,
    /// Revoked as the endpoint reads a page (of a pull or forks), as a
    /// coordinator's revocation landing between the endpoint's revocation
    /// check and its read would be.
    revoke_on_read: Option<DeviceId>,
    /// Every push holding a change from this device fails, as a fault of
    /// the endpoint's with one change would.
    fail_pushes_from: Option<DeviceId>,
    /// How long each health check waits before asking `inner`.
    ping_delay: Duration,
    /// Health checks begun, and the most running at once.
    pub pings: AtomicUsize,
    pub most_pings_at_once: AtomicUsize,
    pings_running: AtomicUsize,
}

impl Watched {
    fn over(inner: Arc<dyn Storage>) -> Self {
        Self {
            inner,
            revoke_on_read: None,
            fail_pushes_from: None,
            ping_delay: Duration::ZERO,
            pings: AtomicUsize::new(0),
            most_pings_at_once: AtomicUsize::new(0),
            pings_running: AtomicUsize::new(0),
        }
    }

    /// `inner`, revoking `device` as each page is read.
    pub fn revoking_on_read(inner: Arc<dyn Storage>, device: DeviceId) -> Self {
        Self {
            revoke_on_read: Some(device),
            ..Self::over(inner)
        }
    }

    /// `inner`, failing every push that holds a change from `device`.
    pub fn failing_pushes_from(inner: Arc<dyn Storage>, device: DeviceId) -> Self {
        Self {
            fail_pushes_from: Some(device),
            ..Self::over(inner)
        }
    }

    /// `inner`, whose health checks each take `delay` and are counted.
    pub fn slow_to_answer(inner: Arc<dyn Storage>, delay: Duration) -> Self {
        Self {
            ping_delay: delay,
            ..Self::over(inner)
        }
    }

    async fn after_read(&self, scope: &NetworkScope) -> Result<(), StorageError> {
        if let Some(device) = &self.revoke_on_read {
            self.inner.revoke_device(scope, device).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl Storage for Watched {
    async fn push(
        &self,
        scope: &NetworkScope,
        changes: Vec<CheckedChange>,
    ) -> Result<Vec<ChangeOutcome>, StorageError> {
        if let Some(device) = &self.fail_pushes_from
            && changes.iter().any(|c| c.meta.device == *device)
        {
            return Err(StorageError::Pool(format!("no write from {device} today")));
        }
        self.inner.push(scope, changes).await
    }

    async fn pull(
        &self,
        scope: &NetworkScope,
        after: u64,
        limit: u32,
        max_bytes: u64,
    ) -> Result<PullPage, StorageError> {
        let page = self.inner.pull(scope, after, limit, max_bytes).await?;
        self.after_read(scope).await?;
        Ok(page)
    }

    async fn change_id_at(
        &self,
        scope: &NetworkScope,
        seq: u64,
    ) -> Result<Option<ChangeId>, StorageError> {
        self.inner.change_id_at(scope, seq).await
    }

    async fn forks(
        &self,
        scope: &NetworkScope,
        after: Option<RecordId>,
        limit: u32,
    ) -> Result<ForksPage, StorageError> {
        let page = self.inner.forks(scope, after, limit).await?;
        self.after_read(scope).await?;
        Ok(page)
    }

    async fn revoke_device(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<u64, StorageError> {
        self.inner.revoke_device(scope, device).await
    }

    async fn epoch(&self) -> Result<String, StorageError> {
        self.inner.epoch().await
    }

    async fn missing_changes(
        &self,
        scope: &NetworkScope,
        change_ids: Vec<ChangeId>,
    ) -> Result<Vec<ChangeId>, StorageError> {
        self.inner.missing_changes(scope, change_ids).await
    }

    async fn stored_changes(
        &self,
        scope: &NetworkScope,
        change_ids: Vec<ChangeId>,
    ) -> Result<Vec<(ChangeId, ChangeKind, String)>, StorageError> {
        self.inner.stored_changes(scope, change_ids).await
    }

    async fn is_revoked(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<bool, StorageError> {
        self.inner.is_revoked(scope, device).await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.pings.fetch_add(1, Ordering::SeqCst);
        let running = self.pings_running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_pings_at_once.fetch_max(running, Ordering::SeqCst);
        tokio::time::sleep(self.ping_delay).await;
        let answer = self.inner.ping().await;
        self.pings_running.fetch_sub(1, Ordering::SeqCst);
        answer
    }
}
