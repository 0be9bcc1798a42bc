//! A revocation that lands while a revoked phone's read is being served: the
//! page read just before it is not handed over.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use doorstep_domain::network::DeviceId;
use doorstep_domain::record::RecordId;
use doorstep_server::storage::{
    CheckedChange, ForksPage, NetworkScope, PullPage, Storage, StorageError,
};
use doorstep_sync::wire::{ChangeId, ChangeOutcome};
use serde_json::json;

use crate::helpers::{Backend, TestApp, batch, new_visit};

const NET: &str = "east-dorset";

/// A storage that revokes one device as the endpoint reads a page for it, as a
/// coordinator's revocation landing between the endpoint's revocation check
/// and its read would.
struct RevokedMidRead {
    inner: Arc<dyn Storage>,
    device: DeviceId,
}

#[async_trait]
impl Storage for RevokedMidRead {
    async fn push(
        &self,
        scope: &NetworkScope,
        changes: Vec<CheckedChange>,
    ) -> Result<Vec<ChangeOutcome>, StorageError> {
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
        self.inner.revoke_device(scope, &self.device).await?;
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
        self.inner.revoke_device(scope, &self.device).await?;
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

    async fn is_revoked(
        &self,
        scope: &NetworkScope,
        device: &DeviceId,
    ) -> Result<bool, StorageError> {
        self.inner.is_revoked(scope, device).await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        self.inner.ping().await
    }
}

#[tokio::test]
async fn a_revocation_landing_during_a_read_withholds_that_page() {
    for read in ["/sync/v1/pull", "/sync/v1/forks"] {
        let dir = tempfile::tempdir().unwrap();
        let (inner, schema) = Backend::Sqlite.storage(&dir).await;
        let device = DeviceId::parse("phone-1").unwrap();
        let app = TestApp::over(dir, schema, Arc::new(RevokedMidRead { inner, device }));
        let writer = app.device_token(NET, "para-2", "phone-2");
        let (status, _) = app
            .push(
                &writer,
                &batch(NET, "phone-2", vec![new_visit("para-2", "phone-2", 1)]),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let phone = app.device_token(NET, "para-1", "phone-1");
        let (status, body) = app.get(&phone, read).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::FORBIDDEN, &json!("device_revoked")),
            "{read}: {body}"
        );
    }
}
