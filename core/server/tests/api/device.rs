//! The device's sync engine against a real endpoint on loopback: what a
//! phone sees, through the real store, the real HTTP stack and (in the fault
//! runs) a proxy that cuts, drops and delays.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use doorstep_domain::history::Head;
use doorstep_domain::network::{ClinicianId, DeviceId, NetworkId};
use doorstep_domain::record::{RecordId, VersionId, VersionMeta, VisitContent};
use doorstep_server::auth::TokenRole;
use doorstep_store::{MemoryKeyProvider, Store, StoreConfig};
use doorstep_sync::engine::{
    RetryPolicy, SyncConfig, SyncEngine, SyncError, SyncReport, SyncState, SyncTask,
};
use doorstep_sync::fixtures;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp};
use crate::proxy::{Fault, Proxy};
use crate::watched::Watched;

pub const NET: &str = "east-dorset";

/// Serves `app` on a loopback port.
pub async fn serve(app: &TestApp) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = app.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A device: its store and identity.
pub struct Device {
    pub store: Arc<Mutex<Store>>,
    pub clinician: String,
    pub device: String,
    pub token: String,
}

impl Device {
    pub fn open(dir: &Path, app: &TestApp, clinician: &str, device: &str) -> Self {
        let store = Store::open(
            &StoreConfig::new(dir.join(format!("{device}.db"))),
            Arc::new(MemoryKeyProvider::new()),
        )
        .unwrap();
        Self {
            store: Arc::new(Mutex::new(store)),
            clinician: clinician.to_owned(),
            device: device.to_owned(),
            token: app.device_token(NET, clinician, device),
        }
    }

    /// Saves a new visit record (with its outbox item) as the clinician would.
    pub fn record_visit(&self, seed: u64) -> VersionId {
        let meta = VersionMeta::first(
            RecordId(Uuid::now_v7()),
            VersionId(Uuid::now_v7()),
            ClinicianId::parse(&self.clinician).unwrap(),
            DeviceId::parse(&self.device).unwrap(),
            jiff::Timestamp::now(),
        );
        let version = meta.version_id;
        self.store
            .lock()
            .unwrap()
            .save(&fixtures::visit_record(meta, seed))
            .unwrap();
        version
    }

    pub fn engine(&self, base_url: &str, attempts: u32, timeout: Duration) -> SyncEngine {
        self.engine_with(self.config(base_url, attempts, timeout))
    }

    /// An engine as [`Device::engine`] makes, pushing at most `push_batch`
    /// changes at a time.
    pub fn engine_pushing(
        &self,
        base_url: &str,
        attempts: u32,
        timeout: Duration,
        push_batch: usize,
    ) -> SyncEngine {
        let mut config = self.config(base_url, attempts, timeout);
        config.push_batch = push_batch;
        self.engine_with(config)
    }

    pub fn config(&self, base_url: &str, attempts: u32, timeout: Duration) -> SyncConfig {
        let mut config = SyncConfig::new(
            base_url,
            NetworkId::parse(NET).unwrap(),
            DeviceId::parse(&self.device).unwrap(),
        );
        config.request_timeout = timeout;
        config.retry = RetryPolicy {
            attempts,
            initial_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
        };
        config
    }

    fn engine_with(&self, config: SyncConfig) -> SyncEngine {
        self.try_engine(config).unwrap()
    }

    /// An engine for `config`, or why the engine refused it.
    pub fn try_engine(&self, config: SyncConfig) -> Result<SyncEngine, SyncError> {
        SyncEngine::new(
            config,
            Arc::clone(&self.store),
            Arc::new(self.token.clone()),
        )
    }

    /// One sync with `url`, no retries: its report, or why it stopped.
    pub async fn sync_once(&self, url: &str) -> Result<SyncReport, SyncError> {
        self.engine(url, 1, Duration::from_secs(10)).sync().await
    }

    /// The head of the visit record `record` on this device, which must hold it.
    pub fn head(&self, record: RecordId) -> Head {
        self.store
            .lock()
            .unwrap()
            .current::<VisitContent>(record)
            .unwrap()
            .expect("the device holds the record")
            .head
    }

    pub fn records_held(&self) -> usize {
        self.store
            .lock()
            .unwrap()
            .record_ids::<VisitContent>()
            .unwrap()
            .len()
    }

    pub fn stuck(&self) -> u64 {
        let counts = self.store.lock().unwrap().outbox_counts().unwrap();
        counts.pending + counts.sent
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_sync_through_the_endpoint_and_each_ends_with_every_record() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let a = Device::open(dir.path(), &app, "para-1", "phone-1");
    let b = Device::open(dir.path(), &app, "para-2", "phone-2");
    for i in 0..250 {
        a.record_visit(i);
    }
    for i in 0..30 {
        b.record_visit(1000 + i);
    }
    let engine_a = a.engine(&url, 3, Duration::from_secs(10));
    let engine_b = b.engine(&url, 3, Duration::from_secs(10));
    let report = engine_a.sync().await.unwrap();
    assert_eq!(report.pushed, 250, "in batches of at most 100");
    engine_b.sync().await.unwrap();
    engine_a.sync().await.unwrap();
    assert_eq!(a.records_held(), 280);
    assert_eq!(b.records_held(), 280);
    assert_eq!((a.stuck(), b.stuck()), (0, 0));
    let status = engine_a.status();
    assert_eq!(status.state, SyncState::UpToDate);
    assert_eq!(status.counts.accepted, 250);
    assert!(status.last_success.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_item_is_marked_rejected_and_does_not_block_the_others() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let mut device = Device::open(dir.path(), &app, "para-1", "phone-1");
    device.record_visit(1);
    // A record written by someone else's login on this device is refused.
    let other = device.clinician.clone();
    device.clinician = "para-9".into();
    device.record_visit(2);
    device.clinician = other;
    device.record_visit(3);
    let engine = device.engine(&url, 3, Duration::from_secs(10));
    let report = engine.sync().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (2, 1));
    let store = device.store.lock().unwrap();
    let rejected = store.rejected_items().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(store.outbox_counts().unwrap().accepted, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_pushes_what_it_holds_and_is_told_to_wipe() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let engine = device.engine(&url, 3, Duration::from_secs(10));
    device.record_visit(1);
    engine.sync().await.unwrap();
    let coordinator = app.token(NET, TokenRole::Coordinator, "coord", None);
    let (status, _) = app
        .send(
            axum::http::Request::post("/sync/v1/devices/phone-1/revoke")
                .header("authorization", format!("Bearer {coordinator}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    device.record_visit(2);
    device.record_visit(3);
    let report = engine.sync().await.unwrap();
    assert!(report.revoked);
    assert_eq!(report.pushed, 2, "the last records reached the endpoint");
    assert_eq!(engine.status().state, SyncState::MustWipe { unsynced: 0 });
    drop(engine);
    let store = Arc::try_unwrap(device.store)
        .ok()
        .unwrap()
        .into_inner()
        .unwrap();
    assert_eq!(store.wipe(0).unwrap().discarded_unsynced, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_asks_for_sign_in_and_loses_nothing() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let mut device = Device::open(dir.path(), &app, "para-1", "phone-1");
    device.record_visit(1);
    let good = device.token.clone();
    device.token = "expired.or.forged".into();
    let engine = device.engine(&url, 3, Duration::from_secs(10));
    assert!(matches!(
        engine.sync().await,
        Err(SyncError::SignInRequired)
    ));
    assert_eq!(engine.status().state, SyncState::SignInRequired);
    assert_eq!(device.stuck(), 1);
    device.token = good;
    device
        .engine(&url, 3, Duration::from_secs(10))
        .sync()
        .await
        .unwrap();
    assert_eq!(device.stuck(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_sync_leaves_the_store_consistent_and_the_next_one_completes() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let addr = serve(&app).await;
    let proxy = Proxy::start(addr).await;
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    for i in 0..5 {
        device.record_visit(i);
    }
    proxy.arm(Fault::DelayResponse(Duration::from_secs(5)));
    let engine = Arc::new(device.engine(&proxy.url(), 3, Duration::from_secs(30)));
    let task = SyncTask::spawn(Arc::clone(&engine));
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.cancel();
    assert!(task.wait().await.is_none(), "cancelled");
    proxy.arm(Fault::None);
    assert_eq!(
        device.stuck(),
        5,
        "sent but unanswered: pushed again next time"
    );
    device
        .engine(&proxy.url(), 3, Duration::from_secs(10))
        .sync()
        .await
        .unwrap();
    assert_eq!(device.stuck(), 0);
    assert_eq!(device.records_held(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_retried_then_reported_and_nothing_is_lost() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    device.record_visit(1);
    // Nothing listens on port 1 (tcpmux, long unused): no connection can be
    // made.
    let error = device
        .engine("http://127.0.0.1:1", 3, Duration::from_secs(5))
        .sync()
        .await
        .unwrap_err();
    assert!(matches!(error, SyncError::Unreachable(_)), "{error}");
    // Something in the way accepts the connection and cuts it: the endpoint
    // was reached, and the request failed.
    let proxy = Proxy::start(serve(&app).await).await;
    proxy.arm(Fault::CutAfter(0));
    let engine = device.engine(&proxy.url(), 4, Duration::from_secs(5));
    let error = engine.sync().await.unwrap_err();
    assert!(matches!(error, SyncError::Failing(_)), "{error}");
    assert!(matches!(engine.status().state, SyncState::Failed { .. }));
    assert_eq!(device.stuck(), 1, "kept, to push next time");
    proxy.arm(Fault::None);
    let report = engine.sync().await.unwrap();
    assert_eq!(report.pushed, 1);
    assert_eq!(device.stuck(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_fails_every_time_still_lets_colleagues_records_in() {
    let dir = tempfile::tempdir().unwrap();
    let (inner, schema) = Backend::Sqlite.storage(&dir).await;
    let app = TestApp::over(
        dir,
        schema,
        Arc::new(Watched::failing_pushes_from(
            inner,
            DeviceId::parse("phone-2").unwrap(),
        )),
    );
    let url = format!("http://{}", serve(&app).await);
    let devices = tempfile::tempdir().unwrap();
    let colleague = Device::open(devices.path(), &app, "para-1", "phone-1");
    colleague.record_visit(1);
    colleague.sync_once(&url).await.unwrap();
    let device = Device::open(devices.path(), &app, "para-2", "phone-2");
    device.record_visit(2);
    let engine = device.engine(&url, 2, Duration::from_secs(10));
    let error = engine.sync().await.unwrap_err();
    assert!(matches!(error, SyncError::Failing(_)), "{error}");
    assert!(matches!(engine.status().state, SyncState::Failed { .. }));
    assert_eq!(device.records_held(), 2, "the colleague's record came in");
    assert_eq!(
        device.stuck(),
        1,
        "its own record is kept, to push next time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_revoked_with_nothing_to_push_is_told_to_wipe_by_its_pull() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let engine = device.engine(&url, 3, Duration::from_secs(10));
    engine.sync().await.unwrap();
    app.revoke(NET, "phone-1").await;
    let report = engine.sync().await.unwrap();
    assert!(report.revoked);
    assert_eq!(engine.status().state, SyncState::MustWipe { unsynced: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_started_together_run_one_after_the_other() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    for i in 0..20 {
        device.record_visit(i);
    }
    let engine = Arc::new(device.engine(&url, 3, Duration::from_secs(10)));
    let (first, second) = tokio::join!(engine.sync(), engine.sync());
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.pushed + second.pushed, 20, "each change pushed once");
    assert_eq!(device.stuck(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_elsewhere_over_plain_http_is_refused_before_anything_is_sent() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    device.record_visit(1);
    for url in [
        "http://sync.example-pcn.nhs.uk",
        "ftp://127.0.0.1",
        "sync.example-pcn.nhs.uk",
    ] {
        let refused = device
            .try_engine(device.config(url, 1, Duration::from_secs(1)))
            .err()
            .expect("refused");
        let SyncError::Config(reason) = &refused else {
            panic!("{refused:?}");
        };
        assert!(reason.starts_with("base_url: "), "{reason}");
        assert!(reason.contains(url), "{reason}");
    }
    assert_eq!(device.stuck(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_so_no_record_goes_where_it_points() {
    use axum::http::Uri;
    use axum::response::Redirect;
    use std::sync::atomic::{AtomicUsize, Ordering};

    // Wherever a redirect would lead: it counts what reaches it.
    let reached = Arc::new(AtomicUsize::new(0));
    let elsewhere = {
        let reached = Arc::clone(&reached);
        let router = axum::Router::new().fallback(move || {
            reached.fetch_add(1, Ordering::SeqCst);
            async { "" }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    };
    // A misconfigured proxy in front of the endpoint: every request is sent
    // on, keeping its method and body.
    let redirecting = {
        let router = axum::Router::new().fallback(move |uri: Uri| async move {
            Redirect::temporary(&format!("http://{elsewhere}{uri}"))
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    };

    let app = TestApp::new(&Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    device.record_visit(1);
    let engine = device.engine(&format!("http://{redirecting}"), 2, Duration::from_secs(5));
    let error = engine.sync().await.unwrap_err();
    let SyncError::Protocol(reason) = &error else {
        panic!("{error:?}");
    };
    assert!(reason.starts_with("307"), "{reason}");
    assert!(matches!(engine.status().state, SyncState::Failed { .. }));
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing followed the redirect"
    );
    assert_eq!(device.stuck(), 1, "kept, to push next time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_moved_to_another_network_sends_it_nothing_until_wiped() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let mut device = Device::open(dir.path(), &app, "para-1", "phone-1");
    device.record_visit(1);
    device
        .engine(&url, 1, Duration::from_secs(5))
        .sync()
        .await
        .unwrap();
    device.record_visit(2);

    // The phone is handed to a practice of another network and signed in
    // there, store and all.
    let west = "west-dorset";
    device.token = app.device_token(west, "para-1", "phone-1");
    let mut config = device.config(&url, 1, Duration::from_secs(5));
    config.network = NetworkId::parse(west).unwrap();
    let engine = device.try_engine(config).unwrap();
    let error = engine.sync().await.unwrap_err();
    assert!(
        matches!(
            &error,
            SyncError::Store(doorstep_store::StoreError::OtherNetwork { .. })
        ),
        "{error:?}"
    );
    let SyncState::Failed { reason } = engine.status().state else {
        panic!("{:?}", engine.status());
    };
    assert!(
        reason.contains("wipe it before joining west-dorset"),
        "{reason}"
    );
    assert_eq!(
        device.stuck(),
        1,
        "the new record waits for its own network"
    );
    let coordinator = app.token(west, TokenRole::Coordinator, "it-desk", None);
    assert!(app.pull_all(&coordinator, 500).await.0.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_that_fails_binds_the_store_to_no_network() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    device.record_visit(1);
    // A device profile naming the wrong network: the endpoint refuses it.
    let mut mistyped = device.config(&url, 1, Duration::from_secs(5));
    mistyped.network = NetworkId::parse("east-dorest").unwrap();
    let error = device
        .try_engine(mistyped)
        .unwrap()
        .sync()
        .await
        .unwrap_err();
    assert!(matches!(error, SyncError::Forbidden(_)), "{error:?}");
    // Put right, the same store syncs with its own network.
    let report = device
        .engine(&url, 1, Duration::from_secs(5))
        .sync()
        .await
        .unwrap();
    assert_eq!(report.pushed, 1);
    assert_eq!(device.stuck(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_signed_in_with_another_networks_account_stores_none_of_its_records() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    // Another network's records, pushed by one of its own devices.
    let west_dir = tempfile::tempdir().unwrap();
    let mut west = Device::open(west_dir.path(), &app, "para-9", "phone-9");
    west.token = app.device_token("west-dorset", "para-9", "phone-9");
    for i in 0..3 {
        west.record_visit(i);
    }
    let mut config = west.config(&url, 1, Duration::from_secs(10));
    config.network = NetworkId::parse("west-dorset").unwrap();
    west.try_engine(config).unwrap().sync().await.unwrap();

    // A new phone configured for east-dorset, signed in with an account of
    // west-dorset, with nothing of its own to push.
    let dir = tempfile::tempdir().unwrap();
    let mut device = Device::open(dir.path(), &app, "para-1", "phone-1");
    device.token = app.device_token("west-dorset", "para-1", "phone-1");
    let error = device.sync_once(&url).await.unwrap_err();
    assert!(matches!(error, SyncError::Forbidden(_)), "{error}");
    assert!(error.to_string().contains("west-dorset"), "{error}");
    assert_eq!(device.records_held(), 0);
    let network = NetworkId::parse(NET).unwrap();
    assert!(
        !device
            .store
            .lock()
            .unwrap()
            .check_network(&network)
            .unwrap()
    );

    // Signed in again with an account of its own network, it syncs, and the
    // store is bound by that pull.
    device.token = app.device_token(NET, "para-1", "phone-1");
    device.sync_once(&url).await.unwrap();
    assert_eq!(device.records_held(), 0);
    assert!(
        device
            .store
            .lock()
            .unwrap()
            .check_network(&network)
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_forks_follows_every_page_and_a_reconciled_record_leaves_the_list() {
    use crate::helpers::{amend, batch, new_visit};
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let token = app.device_token(NET, "para-1", "phone-1");
    // More forked records than one page of the endpoint's lists.
    let forked = doorstep_sync::wire::DEFAULT_FORKS_LIMIT as usize + 3;
    for chunk in 0..forked.div_ceil(60) {
        let mut changes = Vec::new();
        for n in chunk * 60..((chunk + 1) * 60).min(forked) {
            let base = new_visit("para-1", "phone-1", n as u64);
            changes.push(amend(&base, "para-1", "phone-1", 1));
            changes.push(amend(&base, "para-1", "phone-1", 2));
            changes.insert(changes.len() - 2, base);
        }
        let (status, body) = app.push(&token, &batch(NET, "phone-1", changes)).await;
        assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    }
    let listed = doorstep_sync::admin::list_forks(&url, &token)
        .await
        .unwrap();
    assert_eq!(listed.len(), forked);
    let mut ids: Vec<_> = listed.iter().map(|f| f.record_id).collect();
    ids.dedup();
    assert_eq!(ids.len(), forked, "no record listed twice");
    assert!(listed.iter().all(|f| f.heads.len() == 2));

    // Reconciling one takes it off the list.
    let fork = &listed[0];
    let held = app.pull_all(&token, 500).await.0;
    let head = held
        .iter()
        .find(|c| c["body"]["record"]["meta"]["version_id"] == fork.heads[0].0.to_string())
        .unwrap();
    let head: doorstep_sync::wire::Change = serde_json::from_value(head.clone()).unwrap();
    let meta = head.body.meta().reconcile(
        &fork.heads[1..],
        VersionId(Uuid::now_v7()),
        ClinicianId::parse("para-1").unwrap(),
        DeviceId::parse("phone-1").unwrap(),
        jiff::Timestamp::now(),
    );
    let merge = fixtures::visit_change(doorstep_sync::wire::ChangeId(Uuid::now_v7()), meta, 9);
    let (status, body) = app.push(&token, &batch(NET, "phone-1", vec![merge])).await;
    assert_eq!(status, axum::http::StatusCode::OK, "{body}");
    let after = doorstep_sync::admin::list_forks(&url, &token)
        .await
        .unwrap();
    assert_eq!(after.len(), forked - 1);
    assert!(after.iter().all(|f| f.record_id != fork.record_id));
}
