//! What every endpoint test needs: a backend (SQLite in a temp dir, or a
//! fresh schema on the test PostgreSQL), an app over it, tokens, requests.
//!
//! PostgreSQL comes from `DOORSTEP_TEST_DATABASE_URL` (set by
//! `scripts/postgres`). When `DOORSTEP_REQUIRE_POSTGRES=1` (set by
//! `scripts/test`) a missing URL fails the test instead of skipping it.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use doorstep_domain::network::{ClinicianId, DeviceId, NetworkId};
use doorstep_domain::record::{RecordId, VersionId, VersionMeta};
use doorstep_domain::text::{FreeText, MAX_FREE_TEXT};
use doorstep_server::auth::{SigningKey, TokenRole, Verifier};
use doorstep_server::storage::Storage;
use doorstep_server::storage::postgres::PostgresStorage;
use doorstep_server::storage::sqlite::SqliteStorage;
use doorstep_server::token::{TokenRequest, issue};
use doorstep_server::{AppState, router};
use doorstep_sync::fixtures;
use doorstep_sync::wire::{Change, ChangeBody, ChangeId, PushRequest};
use serde_json::Value;
use tempfile::TempDir;
use tower::ServiceExt;
use uuid::Uuid;

pub const ISSUER: &str = "doorstep";
pub const AUDIENCE: &str = "doorstep-sync";

/// Which storage a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// The test PostgreSQL, or `None` (with a notice) when none is configured
    /// and none is required.
    pub fn postgres() -> Option<Self> {
        match std::env::var("DOORSTEP_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ => {
                assert!(
                    std::env::var("DOORSTEP_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                    "DOORSTEP_REQUIRE_POSTGRES=1 but DOORSTEP_TEST_DATABASE_URL is not set: \
                     start one with `eval \"$(scripts/postgres start)\"`"
                );
                eprintln!("NOT RUN on PostgreSQL: DOORSTEP_TEST_DATABASE_URL is not set");
                None
            }
        }
    }

    /// A fresh, empty storage on this backend (SQLite in `dir`), and for
    /// PostgreSQL the schema it lives in.
    pub async fn storage(&self, dir: &TempDir) -> (Arc<dyn Storage>, Option<String>) {
        match self {
            Backend::Sqlite => (
                Arc::new(SqliteStorage::open(&dir.path().join("server.sqlite3")).unwrap()),
                None,
            ),
            Backend::Postgres(url) => {
                let schema = fresh_schema();
                let storage = PostgresStorage::connect(url, Some(&schema), 8)
                    .await
                    .unwrap();
                (Arc::new(storage), Some(schema))
            }
        }
    }
}

/// A connection to the test PostgreSQL at `url` as its owner, for changing
/// the endpoint's database behind its back (a restore, damage, a role's
/// rights).
pub async fn owner(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// `url` signing in as `role` with `password` instead.
pub fn as_role(url: &str, role: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (_, host_and_database) = rest.split_once('@').unwrap();
    format!("{scheme}://{role}:{password}@{host_and_database}")
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    format!("t_{}", Uuid::now_v7().simple())
}

/// Generates `mod sqlite` and `mod postgres` running each named `async fn
/// name(backend: Backend)` of the enclosing module on that backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(backend) = $crate::helpers::Backend::postgres() {
                        super::$name(backend).await;
                    }
                }
            )*
        }
    };
}

/// An endpoint in process, over a fresh storage.
pub struct TestApp {
    pub dir: TempDir,
    pub schema: Option<String>,
    pub state: AppState,
    /// The endpoint's own key, which its tokens are signed with.
    pub signing_key: Arc<SigningKey>,
    pub router: Router,
}

impl TestApp {
    pub async fn new(backend: &Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (storage, schema) = backend.storage(&dir).await;
        Self::over(dir, schema, storage)
    }

    pub fn over(dir: TempDir, schema: Option<String>, storage: Arc<dyn Storage>) -> Self {
        let signing_key = Arc::new(SigningKey::load_or_create(dir.path()).unwrap());
        let verifier = Arc::new(Verifier::new(&signing_key, ISSUER, AUDIENCE));
        let state = AppState { storage, verifier };
        let router = router(state.clone());
        Self {
            dir,
            schema,
            state,
            signing_key,
            router,
        }
    }

    /// A valid token from the endpoint's own key.
    pub fn token(
        &self,
        network: &str,
        role: TokenRole,
        subject: &str,
        device: Option<&str>,
    ) -> String {
        issue(
            &self.signing_key,
            TokenRequest {
                network: NetworkId::parse(network).unwrap(),
                role,
                subject: subject.to_owned(),
                device: device.map(|d| DeviceId::parse(d).unwrap()),
                ttl: jiff::SignedDuration::from_hours(1),
            },
            ISSUER,
            AUDIENCE,
            jiff::Timestamp::now(),
        )
        .unwrap()
    }

    /// A clinician's device token.
    pub fn device_token(&self, network: &str, clinician: &str, device: &str) -> String {
        self.token(network, TokenRole::Paramedic, clinician, Some(device))
    }

    /// Sends `request` and returns the status and the body as JSON (or as a
    /// JSON string when it is not JSON).
    pub async fn send(&self, request: Request<Body>) -> (StatusCode, Value) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, body)
    }

    pub async fn push_raw(&self, token: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        self.send(
            Request::post("/sync/v1/push")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(body.into())
                .unwrap(),
        )
        .await
    }

    pub async fn push(&self, token: &str, request: &PushRequest) -> (StatusCode, Value) {
        self.push_raw(token, serde_json::to_vec(request).unwrap())
            .await
    }

    pub async fn get(&self, token: &str, uri: &str) -> (StatusCode, Value) {
        self.send(
            Request::get(uri)
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
    }

    /// Revokes `device` in network `network` straight in the storage, as a
    /// coordinator's revocation would.
    pub async fn revoke(&self, network: &str, device: &str) {
        self.state
            .storage
            .revoke_device(
                &doorstep_server::storage::NetworkScope::for_verified_network(
                    NetworkId::parse(network).unwrap(),
                ),
                &DeviceId::parse(device).unwrap(),
            )
            .await
            .unwrap();
    }

    /// Pulls every page from the beginning; returns the changes and the
    /// cursors handed out, in order.
    pub async fn pull_all(&self, token: &str, limit: u32) -> (Vec<Value>, Vec<String>) {
        let mut changes = Vec::new();
        let mut cursors = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, body) = self
                .get(
                    token,
                    &format!("/sync/v1/pull?cursor={cursor}&limit={limit}"),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            changes.extend(body["changes"].as_array().unwrap().iter().cloned());
            cursor = body["cursor"].as_str().unwrap().to_owned();
            cursors.push(cursor.clone());
            if !body["more"].as_bool().unwrap() {
                return (changes, cursors);
            }
        }
    }
}

/// A new first version of a new record, written by `clinician` on `device`.
pub fn new_visit(clinician: &str, device: &str, seed: u64) -> Change {
    let meta = VersionMeta::first(
        RecordId(Uuid::now_v7()),
        VersionId(Uuid::now_v7()),
        ClinicianId::parse(clinician).unwrap(),
        DeviceId::parse(device).unwrap(),
        jiff::Timestamp::now(),
    );
    fixtures::visit_change(ChangeId(Uuid::now_v7()), meta, seed)
}

/// A first version of a new record whose free texts are long enough that the
/// record's JSON is at least `bytes` long (about 80 KB at most: the domain
/// caps each free text), for tests of how pages are bounded in bytes.
pub fn long_visit(clinician: &str, device: &str, seed: u64, bytes: usize) -> Change {
    let mut change = new_visit(clinician, device, seed);
    let ChangeBody::VisitRecord(record) = &mut change.body else {
        unreachable!("new_visit makes visit records")
    };
    // Four free texts of two-byte characters; the rest of the record is small.
    let chars = bytes.div_ceil(8).min(MAX_FREE_TEXT);
    let text = FreeText::parse("text", &"é".repeat(chars)).unwrap();
    record.content.presenting_complaint = text.clone();
    record.content.assessment = text.clone();
    record.content.treatment = text.clone();
    record.content.safety_netting = text;
    change
}

/// A visit record version with the given envelope, for histories the device
/// engine would never push (cycles, stray amendments, clocks far ahead).
pub fn visit_version(meta: VersionMeta, seed: u64) -> Change {
    fixtures::visit_change(ChangeId(Uuid::now_v7()), meta, seed)
}

/// An amendment of `base`'s version by `clinician` on `device`.
pub fn amend(base: &Change, clinician: &str, device: &str, seed: u64) -> Change {
    let meta = base.body.meta().amend(
        VersionId(Uuid::now_v7()),
        ClinicianId::parse(clinician).unwrap(),
        DeviceId::parse(device).unwrap(),
        jiff::Timestamp::now(),
    );
    fixtures::visit_change(ChangeId(Uuid::now_v7()), meta, seed)
}

/// A version by `clinician` on `device` reconciling a fork: it amends
/// `kept`'s version and merges the versions of `others`.
pub fn reconcile(
    kept: &Change,
    others: &[&Change],
    clinician: &str,
    device: &str,
    seed: u64,
) -> Change {
    let merged: Vec<VersionId> = others.iter().map(|c| c.body.meta().version_id).collect();
    let meta = kept.body.meta().reconcile(
        &merged,
        VersionId(Uuid::now_v7()),
        ClinicianId::parse(clinician).unwrap(),
        DeviceId::parse(device).unwrap(),
        jiff::Timestamp::now(),
    );
    visit_version(meta, seed)
}

pub fn batch(network: &str, device: &str, changes: Vec<Change>) -> PushRequest {
    PushRequest {
        network: NetworkId::parse(network).unwrap(),
        device: DeviceId::parse(device).unwrap(),
        changes,
    }
}

/// The statuses of a push response, in order.
pub fn statuses(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results in {body}"))
        .iter()
        .map(|r| r["outcome"]["status"].as_str().unwrap().to_owned())
        .collect()
}
