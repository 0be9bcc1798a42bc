//! The device's sync engine recovering from answers that once jammed it: a
//! push refused as too large (413), and sent again once the proxy is fixed
//! (with what was written on top of it held back meanwhile), and a pull
//! cursor refused as `bad_cursor`.
//!
//! The endpoint runs for real behind a gate, an HTTP layer in front of its
//! router that stands for what may sit between a phone and the endpoint: a
//! reverse proxy with a smaller body limit than the endpoint's (answering 413
//! with an HTML page, as nginx does), or an endpoint whose database was
//! restored, which refuses the cursor the device held before.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use doorstep_domain::history::Head;
use doorstep_domain::network::{ClinicianId, DeviceId, NetworkId};
use doorstep_domain::record::{RecordId, VersionId, VersionMeta, VisitContent, VisitRecord};
use doorstep_domain::text::FreeText;
use doorstep_server::app::MAX_BODY_BYTES;
use doorstep_server::auth::TokenRole;
use doorstep_server::storage::sqlite;
use doorstep_store::{ChangeId, OutboxState, PushLimit, StoreError};
use doorstep_sync::engine::{
    PUSH_BUDGET_BYTES, RetryPolicy, SyncConfig, SyncEngine, SyncError, SyncState,
};
use doorstep_sync::fixtures;
use doorstep_sync::wire::{
    Change, ErrorBody, ErrorCode, HELD_PATH, MAX_HELD_IDS, PULL_PATH, PUSH_PATH,
};
use uuid::Uuid;

use crate::device::{Device, NET, serve};
use crate::helpers::{Backend, TestApp, batch, new_visit};

/// What the gate lets through, and what it saw.
#[derive(Clone)]
struct Gate {
    /// Pushes with a longer body are answered 413 without reaching the
    /// endpoint; a test raises it to stand for the proxy being fixed.
    body_limit: Arc<AtomicUsize>,
    /// Pulls from these cursors are answered `bad_cursor`.
    stale_cursors: Arc<Mutex<Vec<String>>>,
    /// While set, every pull is answered 503, as from a link that drops
    /// after the push went through.
    fail_pulls: Arc<AtomicBool>,
    /// Pulls that reached the gate, counted.
    pulls: Arc<AtomicUsize>,
    /// While set, every push is answered 500, as by an endpoint that fails
    /// on one of the records pushed every time.
    fail_pushes: Arc<AtomicBool>,
    /// While above zero, pushes are let through this many times more, then
    /// fail as by `fail_pushes`.
    pushes_left: Arc<AtomicUsize>,
    /// While set, `/sync/v1/held` is answered 404, as by an endpoint built
    /// before it existed.
    no_held: Arc<AtomicBool>,
    /// While set, `/sync/v1/held` is answered 403 with a page of HTML, as by
    /// a proxy that does not let it through.
    held_blocked: Arc<AtomicBool>,
    /// While above zero, `/sync/v1/held` is answered this many times more,
    /// then blocked as by `held_blocked`.
    held_answers_left: Arc<AtomicUsize>,
    /// While set, a `/sync/v1/held` request naming its network is answered
    /// 400, as by an endpoint built before requests named one; counts them.
    held_unnamed_only: Arc<AtomicBool>,
    named_held_refused: Arc<AtomicUsize>,
    /// While set, every pull is answered with a page of nothing that keeps
    /// the cursor and promises more, as by a broken endpoint or proxy.
    endless_pulls: Arc<AtomicBool>,
    /// Pulls answered with a page far larger than any the endpoint sends (a
    /// captive portal's, say).
    huge_pulls: Arc<AtomicBool>,
    /// Pulls answered with the network's first page, always promising more,
    /// under cursors that take turns: each page moves the cursor, and yet
    /// the pages go round for ever.
    cycling_pulls: Arc<AtomicUsize>,
    /// Pushes of more than one change held past any client's patience (an
    /// uplink too weak to carry them in time), counted.
    slow_batches: Arc<AtomicUsize>,
    slowing_batches: Arc<AtomicBool>,
    /// Pulls asking for more than one change held past any client's
    /// patience (a downlink too weak to carry a page in time), counted.
    slow_pages: Arc<AtomicUsize>,
    slowing_pages: Arc<AtomicBool>,
    /// Pushes of more than one change answered 408, as by a proxy that stops
    /// waiting for a slow upload before the client does, counted.
    cut_batches: Arc<AtomicUsize>,
    cutting_batches: Arc<AtomicBool>,
    /// Pushes answered 429 with `Retry-After: 1`, counted.
    rate_limited_pushes: Arc<AtomicUsize>,
    rate_limiting: Arc<AtomicBool>,
    /// While set, every push answer also says this change was accepted,
    /// whether it was pushed or not.
    stray_accepted: Arc<Mutex<Option<Uuid>>>,
    /// The longest push body that reached the endpoint.
    largest_push: Arc<AtomicUsize>,
    /// Pushes answered 413.
    refused_pushes: Arc<AtomicUsize>,
}

impl Gate {
    fn new(body_limit: usize) -> Self {
        Self {
            body_limit: Arc::new(AtomicUsize::new(body_limit)),
            stale_cursors: Arc::default(),
            fail_pulls: Arc::default(),
            pulls: Arc::default(),
            fail_pushes: Arc::default(),
            pushes_left: Arc::default(),
            no_held: Arc::default(),
            held_blocked: Arc::default(),
            held_answers_left: Arc::default(),
            held_unnamed_only: Arc::default(),
            named_held_refused: Arc::default(),
            endless_pulls: Arc::default(),
            huge_pulls: Arc::default(),
            rate_limited_pushes: Arc::default(),
            cycling_pulls: Arc::default(),
            slow_batches: Arc::default(),
            slowing_batches: Arc::default(),
            slow_pages: Arc::default(),
            slowing_pages: Arc::default(),
            cut_batches: Arc::default(),
            cutting_batches: Arc::default(),
            rate_limiting: Arc::default(),
            stray_accepted: Arc::default(),
            largest_push: Arc::default(),
            refused_pushes: Arc::default(),
        }
    }

    /// Serves `app` behind this gate on a loopback port.
    async fn serve(&self, app: &TestApp) -> SocketAddr {
        let router = app
            .router
            .clone()
            .layer(from_fn_with_state(self.clone(), gate));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }

    fn refuse_cursor(&self, cursor: String) {
        self.stale_cursors.lock().unwrap().push(cursor);
    }
}

async fn gate(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if path == PUSH_PATH {
        let length = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        if length > gate.body_limit.load(Ordering::SeqCst) {
            gate.refused_pushes.fetch_add(1, Ordering::SeqCst);
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                "<html><body>413 Request Entity Too Large</body></html>",
            )
                .into_response();
        }
        gate.largest_push.fetch_max(length, Ordering::SeqCst);
    }
    if path == PULL_PATH {
        gate.pulls.fetch_add(1, Ordering::SeqCst);
    }
    if path == PUSH_PATH
        && gate.pushes_left.load(Ordering::SeqCst) > 0
        && gate.pushes_left.fetch_sub(1, Ordering::SeqCst) == 1
    {
        gate.fail_pushes.store(true, Ordering::SeqCst);
        return next.run(request).await;
    }
    if path == PUSH_PATH && gate.fail_pushes.load(Ordering::SeqCst) {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    if path == HELD_PATH && gate.no_held.load(Ordering::SeqCst) {
        return StatusCode::NOT_FOUND.into_response();
    }
    if path == HELD_PATH
        && gate.held_answers_left.load(Ordering::SeqCst) > 0
        && gate.held_answers_left.fetch_sub(1, Ordering::SeqCst) == 1
    {
        gate.held_blocked.store(true, Ordering::SeqCst);
        return next.run(request).await;
    }
    if path == HELD_PATH && gate.held_blocked.load(Ordering::SeqCst) {
        return (
            StatusCode::FORBIDDEN,
            "<html><body>403 Forbidden</body></html>",
        )
            .into_response();
    }
    if path == HELD_PATH && gate.held_unnamed_only.load(Ordering::SeqCst) {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let asked: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if asked.get("network").is_some() {
            gate.named_held_refused.fetch_add(1, Ordering::SeqCst);
            let body = ErrorBody {
                code: ErrorCode::BadRequest,
                message: "unknown field `network`, expected `change_ids`".into(),
                field: Some("network".into()),
                rejected: Vec::new(),
            };
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
        return next
            .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
            .await;
    }
    if path == PULL_PATH && gate.fail_pulls.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if path == PULL_PATH && gate.cycling_pulls.load(Ordering::SeqCst) > 0 {
        let turn = gate.cycling_pulls.fetch_add(1, Ordering::SeqCst);
        let (mut parts, body) = request.into_parts();
        parts.uri = format!("{PULL_PATH}?limit=1").parse().unwrap();
        let answer = next.run(Request::from_parts(parts, body)).await;
        let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut page: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        page["more"] = true.into();
        page["cursor"] = format!("turn-{}", turn % 2).into();
        return Json(page).into_response();
    }
    if path == PUSH_PATH && gate.slowing_batches.load(Ordering::SeqCst) {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let push: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if push["changes"].as_array().map_or(0, Vec::len) > 1 {
            gate.slow_batches.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        return next
            .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
            .await;
    }
    if path == PULL_PATH && gate.slowing_pages.load(Ordering::SeqCst) {
        let query: Query<HashMap<String, String>> = Query::try_from_uri(request.uri()).unwrap();
        if query.get("limit").is_none_or(|l| l != "1") {
            gate.slow_pages.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        return next.run(request).await;
    }
    if path == PUSH_PATH && gate.cutting_batches.load(Ordering::SeqCst) {
        let (parts, body) = request.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let push: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        if push["changes"].as_array().map_or(0, Vec::len) > 1 {
            gate.cut_batches.fetch_add(1, Ordering::SeqCst);
            return (StatusCode::REQUEST_TIMEOUT, "upload too slow").into_response();
        }
        return next
            .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
            .await;
    }
    if path == PUSH_PATH && gate.rate_limiting.load(Ordering::SeqCst) {
        gate.rate_limited_pushes.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response();
    }
    if path == PULL_PATH && gate.huge_pulls.load(Ordering::SeqCst) {
        let huge = vec![b' '; doorstep_sync::engine::MAX_ANSWER_BYTES + 1];
        return (StatusCode::OK, huge).into_response();
    }
    if path == PULL_PATH && gate.endless_pulls.load(Ordering::SeqCst) {
        let query: Query<HashMap<String, String>> = Query::try_from_uri(request.uri()).unwrap();
        let cursor = query.get("cursor").cloned().unwrap_or_default();
        let page = serde_json::json!({"changes": [], "cursor": cursor, "more": true});
        return Json(page).into_response();
    }
    let stray = *gate.stray_accepted.lock().unwrap();
    if let (PUSH_PATH, Some(stray)) = (path.as_str(), stray) {
        let answer = next.run(request).await;
        let (parts, body) = answer.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        let mut json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        json["results"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"change_id": stray, "outcome": {"status": "accepted"}}));
        let mut answer = Json(json).into_response();
        *answer.status_mut() = parts.status;
        return answer;
    }
    if path == PULL_PATH {
        let query: Query<HashMap<String, String>> = Query::try_from_uri(request.uri()).unwrap();
        let cursor = query.get("cursor").cloned().unwrap_or_default();
        if gate.stale_cursors.lock().unwrap().contains(&cursor) {
            let body = ErrorBody {
                code: ErrorCode::BadCursor,
                message: "the cursor was not made for this network's changes".into(),
                field: Some("cursor".into()),
                rejected: Vec::new(),
            };
            return (StatusCode::BAD_REQUEST, Json(body)).into_response();
        }
    }
    next.run(request).await
}

/// Saves a visit record whose four free texts are at their longest in
/// two-byte characters: about 80 KB of JSON, valid, and long only because
/// the clinician wrote a lot.
fn record_long_visit(device: &Device, seed: u64) {
    let meta = VersionMeta::first(
        RecordId(Uuid::now_v7()),
        VersionId(Uuid::now_v7()),
        ClinicianId::parse(&device.clinician).unwrap(),
        DeviceId::parse(&device.device).unwrap(),
        jiff::Timestamp::now(),
    );
    let mut record = fixtures::visit_record(meta, seed);
    lengthen(&mut record);
    device.store.lock().unwrap().save(&record).unwrap();
}

/// Sets the four free texts of `record` to their longest in two-byte
/// characters: about 80 KB of JSON.
fn lengthen(record: &mut VisitRecord) {
    let text = FreeText::parse("text", &"é".repeat(10_000)).unwrap();
    record.content.presenting_complaint = text.clone();
    record.content.assessment = text.clone();
    record.content.treatment = text.clone();
    record.content.safety_netting = text;
}

/// Saves on `device` an amendment of `previous` (about 80 KB when `long`);
/// returns it with its change id.
fn amend_on(
    device: &Device,
    previous: &VisitRecord,
    seed: u64,
    long: bool,
) -> (VisitRecord, ChangeId) {
    let meta = previous.meta.amend(
        VersionId(Uuid::now_v7()),
        ClinicianId::parse(&device.clinician).unwrap(),
        DeviceId::parse(&device.device).unwrap(),
        jiff::Timestamp::now(),
    );
    let mut record = fixtures::visit_record(meta, seed);
    if long {
        lengthen(&mut record);
    }
    let saved = device.store.lock().unwrap().save(&record).unwrap();
    (record, saved.change_id().unwrap())
}

/// How many changes of the network the endpoint holds.
async fn held_by_endpoint(app: &TestApp) -> usize {
    let coordinator = app.token(NET, TokenRole::Coordinator, "coord", None);
    app.pull_all(&coordinator, 500).await.0.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_records_go_in_pushes_under_the_byte_budget_and_all_arrive() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let gate = Gate::new(MAX_BODY_BYTES);
    let url = format!("http://{}", gate.serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    // 60 records of about 80 KB: 4.8 MB, which one 100-change push refused.
    for i in 0..60 {
        record_long_visit(&device, i);
    }
    let engine = device.engine(&url, 3, Duration::from_secs(30));
    let report = engine.sync().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (60, 0));
    assert_eq!(gate.refused_pushes.load(Ordering::SeqCst), 0);
    let largest = gate.largest_push.load(Ordering::SeqCst);
    assert!(largest <= PUSH_BUDGET_BYTES, "a push of {largest} bytes");
    assert_eq!(device.stuck(), 0);
    assert_eq!(held_by_endpoint(&app).await, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_refused_as_too_large_is_halved_until_every_change_arrives() {
    let app = TestApp::new(&Backend::Sqlite).await;
    // A proxy that takes two long records at a time, not the six of a budget.
    let gate = Gate::new(200_000);
    let url = format!("http://{}", gate.serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    for i in 0..30 {
        record_long_visit(&device, i);
    }
    let engine = device.engine(&url, 3, Duration::from_secs(30));
    let report = engine.sync().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (30, 0));
    assert!(gate.refused_pushes.load(Ordering::SeqCst) > 0, "413 seen");
    assert_eq!(device.stuck(), 0);
    assert_eq!(engine.status().state, SyncState::UpToDate);
    assert_eq!(held_by_endpoint(&app).await, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_too_large_alone_is_rejected_the_rest_arrive_and_it_can_be_sent_again() {
    let app = TestApp::new(&Backend::Sqlite).await;
    // A proxy that refuses any push over 64 KiB: one long record alone is.
    let gate = Gate::new(64 * 1024);
    let url = format!("http://{}", gate.serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    for i in 0..10 {
        device.record_visit(i);
    }
    record_long_visit(&device, 10);
    for i in 11..21 {
        device.record_visit(i);
    }
    let engine = device.engine(&url, 3, Duration::from_secs(30));
    let report = engine.sync().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (20, 1));
    assert_eq!(device.stuck(), 0, "nothing left pending behind it");
    let status = engine.status();
    assert_eq!(status.state, SyncState::UpToDate);
    assert_eq!((status.counts.rejected, status.counts.unsynced()), (1, 1));
    let rejected = device.store.lock().unwrap().rejected_items().unwrap();
    let doorstep_store::OutboxState::Rejected { reason } = &rejected[0].state else {
        panic!("not rejected: {:?}", rejected[0].state);
    };
    assert!(reason.contains("too large"), "{reason}");
    assert!(!reason.contains('é'), "no clinical text in the reason");
    assert_eq!(held_by_endpoint(&app).await, 20);
    // The next sync does not try it again.
    let refused = gate.refused_pushes.load(Ordering::SeqCst);
    let report = engine.sync().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (0, 0));
    assert_eq!(gate.refused_pushes.load(Ordering::SeqCst), refused);

    // The proxy is fixed and the clinician sends it again: it arrives as it
    // was, and nothing is left rejected or unsynced.
    gate.body_limit.store(MAX_BODY_BYTES, Ordering::SeqCst);
    let change = rejected[0].change_id;
    device
        .store
        .lock()
        .unwrap()
        .requeue_rejected(change)
        .unwrap();
    let report = engine.sync().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (1, 0));
    let status = engine.status();
    assert_eq!((status.counts.rejected, status.counts.unsynced()), (0, 0));
    let item = device.store.lock().unwrap().outbox_item(change).unwrap();
    assert_eq!(item.unwrap().state, doorstep_store::OutboxState::Accepted);
    assert_eq!(held_by_endpoint(&app).await, 21);
    // Sending it again once more is refused on the device: it is not rejected.
    let again = device.store.lock().unwrap().requeue_rejected(change);
    assert!(
        matches!(again, Err(doorstep_store::StoreError::NotRejected { .. })),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amendment_of_a_change_too_large_alone_is_held_back_with_it_and_follows_it_once_sent_again()
 {
    let app = TestApp::new(&Backend::Sqlite).await;
    let gate = Gate::new(64 * 1024);
    let url = format!("http://{}", gate.serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let engine = device.engine(&url, 3, Duration::from_secs(30));
    let v0 = VersionMeta::first(
        RecordId(Uuid::now_v7()),
        VersionId(Uuid::now_v7()),
        ClinicianId::parse("para-1").unwrap(),
        DeviceId::parse("phone-1").unwrap(),
        jiff::Timestamp::now(),
    );
    let v0 = fixtures::visit_record(v0, 1);
    device.store.lock().unwrap().save(&v0).unwrap();
    assert_eq!(engine.sync().await.unwrap().pushed, 1);

    // A long amendment the proxy refuses even alone, and a short one on top
    // of it. Both go in one push, refused as too large and halved; the long
    // one is then refused alone, and the short one, sent but never answered,
    // must not follow on its own: the endpoint would take it as amending a
    // version it never held, and the record would fork.
    let (v1, c1) = amend_on(&device, &v0, 2, true);
    let (v1b, c1b) = amend_on(&device, &v1, 3, false);
    let report = engine.sync().await.unwrap();
    assert_eq!(
        (report.pushed, report.rejected, report.forked),
        (0, 1, 0),
        "{report:?}"
    );
    assert_eq!(held_by_endpoint(&app).await, 1);
    let coordinator = app.token(NET, TokenRole::Coordinator, "coord", None);
    let (_, forks) = app.get(&coordinator, "/sync/v1/forks").await;
    assert_eq!(forks["forks"], serde_json::json!([]));
    let state = |id| {
        device
            .store
            .lock()
            .unwrap()
            .outbox_item(id)
            .unwrap()
            .unwrap()
            .state
    };
    let OutboxState::Rejected { reason } = state(c1b) else {
        panic!("not held back: {:?}", state(c1b));
    };
    assert!(
        reason.contains("builds on") && reason.contains(&c1.to_string()),
        "{reason}"
    );

    // The proxy is fixed. The short one cannot be sent again before the
    // long one; the long one sent again arrives, then the short one.
    gate.body_limit.store(MAX_BODY_BYTES, Ordering::SeqCst);
    let early = device.store.lock().unwrap().requeue_rejected(c1b);
    assert!(
        matches!(early, Err(StoreError::BuildsOnRejected { .. })),
        "{early:?}"
    );
    device.store.lock().unwrap().requeue_rejected(c1).unwrap();
    let report = engine.sync().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (1, 0));
    assert!(matches!(state(c1b), OutboxState::Rejected { .. }));
    device.store.lock().unwrap().requeue_rejected(c1b).unwrap();
    let report = engine.sync().await.unwrap();
    assert_eq!((report.pushed, report.rejected, report.forked), (1, 0, 0));
    assert_eq!(held_by_endpoint(&app).await, 3);
    assert_eq!(
        device.head(v0.meta.record_id),
        Head::Single(v1b.meta.version_id)
    );
    assert_eq!(engine.status().counts.unsynced(), 0);
}

/// Another device's first records, as pushed to an endpoint.
fn records_of_phone_2(n: u64) -> Vec<Change> {
    (0..n)
        .map(|i| new_visit("para-2", "phone-2", 500 + i))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pull_cursor_restarts_the_pull_from_the_beginning() {
    let dir = tempfile::tempdir().unwrap();
    let before = TestApp::new(&Backend::Sqlite).await;
    let other = before.device_token(NET, "para-2", "phone-2");
    let changes = records_of_phone_2(5);
    let (status, _) = before
        .push(&other, &batch(NET, "phone-2", changes.clone()))
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    let mut device = Device::open(dir.path(), &before, "para-1", "phone-1");
    let url = format!("http://{}", serve(&before).await);
    device
        .engine(&url, 3, Duration::from_secs(10))
        .sync()
        .await
        .unwrap();
    let stale = device.store.lock().unwrap().sync_cursor().unwrap().unwrap();

    // The endpoint is restored from a backup holding the first three
    // records, and refuses the cursor made after the fifth.
    let restored = TestApp::new(&Backend::Sqlite).await;
    let other = restored.device_token(NET, "para-2", "phone-2");
    let (status, _) = restored
        .push(&other, &batch(NET, "phone-2", changes[..3].to_vec()))
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    device.token = restored.device_token(NET, "para-1", "phone-1");
    let gate = Gate::new(MAX_BODY_BYTES);
    gate.refuse_cursor(stale.0.clone());
    let url = format!("http://{}", gate.serve(&restored).await);
    let engine = device.engine(&url, 3, Duration::from_secs(10));
    let report = engine.sync().await.unwrap();
    assert!(report.pull_restarted);
    assert_eq!(report.pulled_new, 0, "the three were held already");
    assert_eq!(device.records_held(), 5, "nothing held was lost");
    let cursor = device.store.lock().unwrap().sync_cursor().unwrap().unwrap();
    assert_ne!(cursor, stale, "the restored endpoint's cursor replaced it");

    // From there, pulls carry on from the new cursor.
    let (status, _) = restored
        .push(&other, &batch(NET, "phone-2", records_of_phone_2(1)))
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    let report = engine.sync().await.unwrap();
    assert!(!report.pull_restarted);
    assert_eq!(report.pulled_new, 1);
    assert_eq!(device.records_held(), 6);
    assert_eq!(engine.status().state, SyncState::UpToDate);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_refused_again_after_the_restart_fails_the_sync_instead_of_looping() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let other = app.device_token(NET, "para-2", "phone-2");
    let (status, _) = app
        .push(&other, &batch(NET, "phone-2", records_of_phone_2(4)))
        .await;
    assert_eq!(status, axum::http::StatusCode::OK);
    let gate = Gate::new(MAX_BODY_BYTES);
    // Every cursor the endpoint hands out on pages of two is refused: the
    // first page's, met after the restart too, must end the sync.
    let phone_1 = app.device_token(NET, "para-1", "phone-1");
    for cursor in app.pull_all(&phone_1, 2).await.1 {
        gate.refuse_cursor(cursor);
    }
    let url = format!("http://{}", gate.serve(&app).await);
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let mut config = SyncConfig::new(
        url,
        NetworkId::parse(NET).unwrap(),
        DeviceId::parse("phone-1").unwrap(),
    );
    config.pull_limit = 2;
    config.retry = RetryPolicy {
        attempts: 1,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(5),
    };
    let engine = SyncEngine::new(
        config,
        Arc::clone(&device.store),
        Arc::new(device.token.clone()),
    )
    .unwrap();
    let error = engine.sync().await.unwrap_err();
    assert!(matches!(error, SyncError::Protocol(_)), "{error}");
    assert!(matches!(engine.status().state, SyncState::Failed { .. }));
    assert_eq!(device.records_held(), 2, "the first page was applied");
}

/// That `engine` shows its device revoked, records closed, with `unsent`
/// changes still to push (not yet told to wipe).
fn assert_revoked(engine: &SyncEngine, unsent: u64) {
    let state = engine.status().state;
    assert!(
        matches!(state, SyncState::Revoked { unsent: u, .. } if u == unsent),
        "{state:?}"
    );
}

/// One sync of `device` with the endpoint at `url` (one attempt), which must
/// complete.
async fn synced(device: &Device, url: &str) -> doorstep_sync::engine::SyncReport {
    device.sync_once(url).await.unwrap()
}

/// The night's backup of `app`'s database, made by `doorstep backup`, in a
/// directory of its own.
fn back_up(app: &TestApp) -> tempfile::TempDir {
    let backup = tempfile::tempdir().unwrap();
    sqlite::backup(
        &app.dir.path().join("server.sqlite3"),
        &backup.path().join("server.sqlite3"),
    )
    .unwrap();
    backup
}

/// An endpoint restored from `backup`, as after a disk failure.
fn restored_from(backup: tempfile::TempDir) -> TestApp {
    let storage = sqlite::SqliteStorage::open(&backup.path().join("server.sqlite3")).unwrap();
    TestApp::over(backup, None, Arc::new(storage))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_that_blocks_held_a_restored_endpoint_still_gets_back_what_it_lost() {
    // Whether the refused cursor is found before a push (a change waiting) or
    // by the pull (nothing waiting), a `/held` the proxy refuses every time
    // must not stop every sync: every accepted change goes again.
    for waiting in [false, true] {
        let (_dir, device, restored) = restored_after_one_more_visit().await;
        assert_eq!(held_by_endpoint(&restored).await, 1);
        let gate = Gate::new(MAX_BODY_BYTES);
        gate.held_blocked.store(true, Ordering::SeqCst);
        let url = format!("http://{}", gate.serve(&restored).await);
        if waiting {
            device.record_visit(2);
        }
        let report = synced(&device, &url).await;
        assert!(report.pull_restarted || waiting, "waiting {waiting}");
        assert_eq!(report.reoffered, 2, "waiting {waiting}");
        let expected = if waiting { 3 } else { 2 };
        assert_eq!(
            held_by_endpoint(&restored).await,
            expected,
            "waiting {waiting}"
        );
        let counts = device.store.lock().unwrap().outbox_counts().unwrap();
        assert_eq!(counts.unsynced(), 0, "waiting {waiting}");
        // The cursor was replaced: the next sync asks nothing.
        let report = synced(&device, &url).await;
        assert_eq!(
            (report.reoffered, report.pushed),
            (0, 0),
            "waiting {waiting}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_restored_from_an_older_backup_gets_back_what_it_lost_from_its_authors() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let mut device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let url = format!("http://{}", serve(&app).await);
    for seed in 0..2 {
        device.record_visit(seed);
    }
    device
        .engine(&url, 3, Duration::from_secs(10))
        .sync()
        .await
        .unwrap();
    // The night's backup holds those two.
    let backup = back_up(&app);
    // Three more are accepted the next day; then the endpoint's disk fails
    // and it is restored from the backup.
    for seed in 2..5 {
        device.record_visit(seed);
    }
    let report = device
        .engine(&url, 3, Duration::from_secs(10))
        .sync()
        .await
        .unwrap();
    assert_eq!(report.pushed, 3);
    let restored = restored_from(backup);
    assert_eq!(held_by_endpoint(&restored).await, 2);

    // The device's next sync finds its cursor refused, asks which of the
    // five it had had accepted the endpoint still holds, and pushes again
    // the three it lost.
    device.token = restored.device_token(NET, "para-1", "phone-1");
    let url = format!("http://{}", serve(&restored).await);
    let engine = device.engine(&url, 3, Duration::from_secs(10));
    let report = engine.sync().await.unwrap();
    assert!(report.pull_restarted);
    assert_eq!(report.reoffered, 3);
    assert_eq!(report.pushed, 3);
    assert_eq!(report.rejected, 0);
    assert_eq!(held_by_endpoint(&restored).await, 5);
    let counts = device.store.lock().unwrap().outbox_counts().unwrap();
    assert_eq!((counts.unsynced(), counts.accepted), (0, 5));
    assert_eq!(engine.status().state, SyncState::UpToDate);

    // A colleague's new phone gets all five; the next sync offers nothing.
    let colleague = Device::open(dir.path(), &restored, "para-2", "phone-2");
    colleague
        .engine(&url, 3, Duration::from_secs(10))
        .sync()
        .await
        .unwrap();
    assert_eq!(colleague.records_held(), 5);
    let report = engine.sync().await.unwrap();
    assert_eq!(
        (report.pull_restarted, report.reoffered, report.pushed),
        (false, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_pull_never_followed_its_push_still_gets_back_what_a_restore_lost() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let mut device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let gate = Gate::new(MAX_BODY_BYTES);
    let url = format!("http://{}", gate.serve(&app).await);
    device.record_visit(0);
    synced(&device, &url).await;
    let backup = back_up(&app);
    // After the backup two records go through, but the signal drops before
    // the pull: the device's cursor stays where it was before the backup.
    device.record_visit(1);
    device.record_visit(2);
    gate.fail_pulls.store(true, Ordering::SeqCst);
    let error = device.sync_once(&url).await.unwrap_err();
    assert!(matches!(error, SyncError::Failing(_)), "{error}");
    assert_eq!(
        device
            .store
            .lock()
            .unwrap()
            .outbox_counts()
            .unwrap()
            .accepted,
        3
    );

    // Restored from the backup, the endpoint refuses even that older cursor
    // (the backup is an epoch of its own), so the two come back.
    let restored = restored_from(backup);
    assert_eq!(held_by_endpoint(&restored).await, 1);
    device.token = restored.device_token(NET, "para-1", "phone-1");
    let url = format!("http://{}", serve(&restored).await);
    let report = synced(&device, &url).await;
    assert!(report.pull_restarted);
    assert_eq!((report.reoffered, report.pushed), (2, 2));
    assert_eq!(held_by_endpoint(&restored).await, 3);
}

/// Syncs `device` through `gate` with every pull failing, as over a link that
/// drops after each push: what it recorded is accepted, and it holds no
/// cursor at all.
async fn push_but_never_pull(device: &Device, gate: &Gate, url: &str) {
    gate.fail_pulls.store(true, Ordering::SeqCst);
    device.sync_once(url).await.unwrap_err();
    gate.fail_pulls.store(false, Ordering::SeqCst);
    let cursor = device.store.lock().unwrap().sync_cursor().unwrap();
    assert!(cursor.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_never_applied_a_pull_page_still_gets_back_what_a_restore_lost() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let mut device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let gate = Gate::new(MAX_BODY_BYTES);
    let url = format!("http://{}", gate.serve(&app).await);
    // The night's backup, before the device's first sync.
    let backup = back_up(&app);
    // Its first two records go through, but no pull ever gets through: the
    // device holds no cursor at all.
    device.record_visit(0);
    device.record_visit(1);
    push_but_never_pull(&device, &gate, &url).await;

    // Restored from the backup, the endpoint has no cursor of the device's to
    // refuse; the device asks what it holds, and the two go back.
    let restored = restored_from(backup);
    assert_eq!(held_by_endpoint(&restored).await, 0);
    device.token = restored.device_token(NET, "para-1", "phone-1");
    let url = format!("http://{}", serve(&restored).await);
    let report = synced(&device, &url).await;
    assert_eq!((report.reoffered, report.pushed), (2, 2));
    assert_eq!(held_by_endpoint(&restored).await, 2);
    // With a cursor now, the next sync asks nothing.
    let report = synced(&device, &url).await;
    assert_eq!((report.reoffered, report.pushed), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_no_cursor_behind_a_proxy_that_blocks_held_still_pushes_and_pulls() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let gate = Gate::new(MAX_BODY_BYTES);
    let url = format!("http://{}", gate.serve(&app).await);
    device.record_visit(0);
    push_but_never_pull(&device, &gate, &url).await;

    // The proxy blocks `/held`: the accepted visit is offered again (the
    // endpoint answers `duplicate`, having it), the next goes all the same,
    // and the pull gives the device its cursor.
    gate.held_blocked.store(true, Ordering::SeqCst);
    device.record_visit(1);
    let report = synced(&device, &url).await;
    assert_eq!((report.reoffered, report.pushed), (1, 2));
    assert!(
        device
            .store
            .lock()
            .unwrap()
            .sync_cursor()
            .unwrap()
            .is_some()
    );
    assert_eq!(held_by_endpoint(&app).await, 2);
}

/// A phone with one visit in the night's backup and `lost` more accepted
/// after it; then the endpoint is restored from that backup and the phone is
/// reported lost and revoked there. The phone signed in to the restored one.
async fn revoked_after_a_restore(lost: u64) -> (tempfile::TempDir, Device, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let mut device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let url = format!("http://{}", serve(&app).await);
    device.record_visit(0);
    synced(&device, &url).await;
    let backup = back_up(&app);
    for seed in 1..=lost {
        device.record_visit(seed);
    }
    assert_eq!(synced(&device, &url).await.pushed, lost as usize);
    let restored = restored_from(backup);
    restored.revoke(NET, "phone-1").await;
    device.token = restored.device_token(NET, "para-1", "phone-1");
    (dir, device, restored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_gives_back_what_a_restore_lost_before_it_is_told_to_wipe() {
    let (_dir, device, restored) = revoked_after_a_restore(2).await;
    let url = format!("http://{}", serve(&restored).await);
    let engine = device.engine(&url, 3, Duration::from_secs(10));
    let report = engine.sync().await.unwrap();
    assert!(report.revoked);
    // Before it is told to wipe, the two the restore lost are back at the endpoint.
    assert_eq!((report.reoffered, report.pushed), (2, 2));
    assert_eq!(held_by_endpoint(&restored).await, 3);
    assert_eq!(engine.status().state, SyncState::MustWipe { unsynced: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_that_cannot_ask_what_is_held_offers_everything_before_the_wipe() {
    let (_dir, device, restored) = revoked_after_a_restore(1).await;
    // A proxy in front that blocks `/held`.
    let gate = Gate::new(MAX_BODY_BYTES);
    gate.held_blocked.store(true, Ordering::SeqCst);
    let url = format!("http://{}", gate.serve(&restored).await);
    let engine = device.engine(&url, 3, Duration::from_secs(10));
    let report = engine.sync().await.unwrap();
    // Both accepted changes go again: the one the endpoint holds is a
    // duplicate, the one it lost is stored; then the wipe.
    assert!(report.revoked);
    assert_eq!((report.reoffered, report.pushed), (2, 2));
    assert_eq!(held_by_endpoint(&restored).await, 2);
    assert_eq!(engine.status().state, SyncState::MustWipe { unsynced: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_a_restore_lost_goes_back_ahead_of_its_amendment_written_since() {
    let dir = tempfile::tempdir().unwrap();
    let (device, restored, versions, change) = amended_across_a_restore(dir.path()).await;
    let url = format!("http://{}", serve(&restored).await);
    let report = synced(&device, &url).await;
    assert_eq!(
        (report.reoffered, report.pushed, report.rejected),
        (1, 2, 0)
    );
    let state = device
        .store
        .lock()
        .unwrap()
        .outbox_item(change)
        .unwrap()
        .unwrap()
        .state;
    assert_eq!(state, OutboxState::Accepted);
    // The lost version was stored before the amendment built on it, so the
    // record reads in order at the endpoint, and nothing forked.
    assert_eq!(
        held_in_order(&restored).await,
        versions.map(|v| v.meta.version_id)
    );
    let coordinator = restored.token(NET, TokenRole::Coordinator, "coord", None);
    let (_, forks) = restored.get(&coordinator, "/sync/v1/forks").await;
    assert_eq!(forks["forks"], serde_json::json!([]));
}

/// A visit saved and synced in `dir`, amended after the night's backup (that
/// amendment accepted), then the endpoint restored from the backup while the
/// clinician amends the amendment: the device, signed in to the restored
/// endpoint, that endpoint, the three versions in order, and the last one's
/// change.
async fn amended_across_a_restore(
    dir: &std::path::Path,
) -> (Device, TestApp, [VisitRecord; 3], ChangeId) {
    let app = TestApp::new(&Backend::Sqlite).await;
    let mut device = Device::open(dir, &app, "para-1", "phone-1");
    let url = format!("http://{}", serve(&app).await);
    let meta = VersionMeta::first(
        RecordId(Uuid::now_v7()),
        VersionId(Uuid::now_v7()),
        ClinicianId::parse("para-1").unwrap(),
        DeviceId::parse("phone-1").unwrap(),
        jiff::Timestamp::now(),
    );
    let first = fixtures::visit_record(meta, 1);
    device.store.lock().unwrap().save(&first).unwrap();
    synced(&device, &url).await;
    let backup = back_up(&app);
    let (lost, _) = amend_on(&device, &first, 2, false);
    synced(&device, &url).await;
    let restored = restored_from(backup);
    let (latest, change) = amend_on(&device, &lost, 3, false);
    device.token = restored.device_token(NET, "para-1", "phone-1");
    (device, restored, [first, lost, latest], change)
}

/// The version ids `app` holds, in the order it stored them.
async fn held_in_order(app: &TestApp) -> Vec<VersionId> {
    let coordinator = app.token(NET, TokenRole::Coordinator, "coord", None);
    let (changes, _) = app.pull_all(&coordinator, 500).await;
    changes
        .iter()
        .map(|c| {
            let id = c["body"]["record"]["meta"]["version_id"].as_str().unwrap();
            VersionId(id.parse().unwrap())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_a_restore_lost_comes_back_after_a_colleagues_amendment_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let mut author = Device::open(dir.path(), &app, "para-1", "phone-1");
    let mut colleague = Device::open(dir.path(), &app, "para-2", "phone-2");
    let url = format!("http://{}", serve(&app).await);
    author.record_visit(0);
    synced(&author, &url).await;
    let backup = back_up(&app);
    // After the backup: a visit accepted, pulled by a colleague, who amends it.
    let version = author.record_visit(1);
    synced(&author, &url).await;
    synced(&colleague, &url).await;
    let record = {
        let store = colleague.store.lock().unwrap();
        store
            .record_ids::<VisitContent>()
            .unwrap()
            .into_iter()
            .find_map(|id| {
                let current = store.current::<VisitContent>(id).unwrap()?;
                (current.head == Head::Single(version)).then_some(current.version)
            })
            .expect("the colleague pulled the visit")
    };
    let (amended, _) = amend_on(&colleague, &record, 2, false);

    // The endpoint is restored, losing the visit; the colleague syncs first,
    // so its amendment arrives before the version it amends.
    let restored = restored_from(backup);
    let url = format!("http://{}", serve(&restored).await);
    colleague.token = restored.device_token(NET, "para-2", "phone-2");
    let report = synced(&colleague, &url).await;
    assert_eq!((report.pushed, report.rejected), (1, 0));
    // The author's phone puts the lost visit back behind it, refused nothing.
    author.token = restored.device_token(NET, "para-1", "phone-1");
    let report = synced(&author, &url).await;
    assert_eq!(
        (report.reoffered, report.pushed, report.rejected),
        (1, 1, 0)
    );
    assert_eq!(author.stuck(), 0);
    assert_eq!(held_by_endpoint(&restored).await, 3);
    let coordinator = restored.token(NET, TokenRole::Coordinator, "coord", None);
    let (_, forks) = restored.get(&coordinator, "/sync/v1/forks").await;
    assert_eq!(forks["forks"], serde_json::json!([]));
    // A new phone pulls the whole history: the amendment is the visit's
    // current version.
    let fresh = Device::open(dir.path(), &restored, "para-3", "phone-3");
    synced(&fresh, &url).await;
    assert_eq!(
        fresh.head(record.meta.record_id),
        Head::Single(amended.meta.version_id)
    );
}

/// A new endpoint behind a [`Gate`], and a device signed in to it: the
/// device's directory, the endpoint, the device, the gate and its URL.
async fn behind_a_gate() -> (tempfile::TempDir, TestApp, Device, Gate, String) {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let gate = Gate::new(MAX_BODY_BYTES);
    let url = format!("http://{}", gate.serve(&app).await);
    (dir, app, device, gate, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_asks_to_be_left_longer_than_the_policy_waits_is_left_till_the_next_sync()
{
    // The device's policy waits at most 20 ms between tries; a rate limiter
    // asking for a second is not knocked on again four times at once, nor
    // asked for a pull after the push it refused.
    let (_dir, app, device, gate, url) = behind_a_gate().await;
    device.record_visit(0);
    gate.rate_limiting.store(true, Ordering::SeqCst);
    let error = device
        .engine(&url, 5, Duration::from_secs(10))
        .sync()
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SyncError::Failing(m) if m.contains("asked to retry after 1 s")),
        "{error}"
    );
    assert_eq!(gate.rate_limited_pushes.load(Ordering::SeqCst), 1);
    assert_eq!(gate.pulls.load(Ordering::SeqCst), 0);
    gate.rate_limiting.store(false, Ordering::SeqCst);
    synced(&device, &url).await;
    assert_eq!(held_by_endpoint(&app).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_pages_that_lead_back_to_a_cursor_already_asked_end_the_sync() {
    let (_dir, _app, device, gate, url) = behind_a_gate().await;
    device.record_visit(0);
    synced(&device, &url).await;
    gate.cycling_pulls.store(1, Ordering::SeqCst);
    let outcome = tokio::time::timeout(Duration::from_secs(20), device.sync_once(&url))
        .await
        .expect("the sync ends");
    let error = outcome.unwrap_err();
    assert!(
        matches!(&error, SyncError::Protocol(m) if m.contains("led back to a cursor already asked")),
        "{error}"
    );
    assert!(
        gate.cycling_pulls.load(Ordering::SeqCst) <= 4,
        "asked again and again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_cannot_be_made_is_not_retried_as_if_the_endpoint_failed() {
    // A token with a line break cannot go in a header: nothing is sent, and
    // the sync says so at once rather than "the endpoint is failing".
    let (_dir, app, device, _gate, url) = behind_a_gate().await;
    device.record_visit(0);
    let engine = doorstep_sync::engine::SyncEngine::new(
        device.config(&url, 5, Duration::from_secs(10)),
        Arc::clone(&device.store),
        Arc::new(format!("{}\n", device.token)),
    )
    .unwrap();
    let error = engine.sync().await.unwrap_err();
    assert!(
        matches!(&error, SyncError::Config(m) if m.contains("could not be made")),
        "{error}"
    );
    assert_eq!(held_by_endpoint(&app).await, 0);
    assert!(matches!(engine.status().state, SyncState::Failed { .. }));
}

/// A sign-in that lasts for `uses` requests, then must be made again.
struct Expiring {
    token: String,
    uses: AtomicUsize,
}

impl doorstep_sync::engine::TokenSource for Expiring {
    fn bearer(&self) -> Option<String> {
        let left = self.uses.load(Ordering::SeqCst);
        self.uses.store(left.saturating_sub(1), Ordering::SeqCst);
        (left > 0).then(|| self.token.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_that_runs_out_during_a_failing_push_is_what_the_sync_reports() {
    // The push fails (the endpoint's fault), the pull after it finds no
    // sign-in: the clinician is asked to sign in, which they can do something
    // about.
    let (_dir, _app, device, gate, url) = behind_a_gate().await;
    device.record_visit(0);
    gate.fail_pushes.store(true, Ordering::SeqCst);
    let engine = doorstep_sync::engine::SyncEngine::new(
        device.config(&url, 1, Duration::from_secs(10)),
        Arc::clone(&device.store),
        Arc::new(Expiring {
            token: device.token.clone(),
            uses: AtomicUsize::new(1),
        }),
    )
    .unwrap();
    let error = engine.sync().await.unwrap_err();
    assert!(matches!(error, SyncError::SignInRequired), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_larger_than_any_the_endpoint_sends_is_not_read_and_ends_the_sync() {
    let (_dir, app, device, gate, url) = behind_a_gate().await;
    device.record_visit(0);
    gate.huge_pulls.store(true, Ordering::SeqCst);
    let error = device.sync_once(&url).await.unwrap_err();
    assert!(
        matches!(&error, SyncError::Protocol(m) if m.contains("ran past")),
        "{error}"
    );
    assert_eq!(held_by_endpoint(&app).await, 1, "the push before it went");
    gate.huge_pulls.store(false, Ordering::SeqCst);
    synced(&device, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_that_promises_more_but_never_moves_ends_the_sync_instead_of_looping() {
    let (_dir, app, device, gate, url) = behind_a_gate().await;
    device.record_visit(0);
    gate.endless_pulls.store(true, Ordering::SeqCst);
    let outcome = tokio::time::timeout(Duration::from_secs(20), device.sync_once(&url))
        .await
        .expect("the sync ends");
    let error = outcome.unwrap_err();
    assert!(
        matches!(&error, SyncError::Protocol(m) if m.contains("carried none")),
        "{error}"
    );
    // The push before it went through, and the next sync, against an
    // endpoint that behaves, completes.
    assert_eq!(held_by_endpoint(&app).await, 1);
    gate.endless_pulls.store(false, Ordering::SeqCst);
    synced(&device, &url).await;
    assert_eq!(device.stuck(), 0);
}

/// Two visits pushed one at a time, each push's answer also saying that the
/// `stray`th of them (0 or 1) was accepted: the endpoint, the device and the
/// sync's report.
async fn pushed_one_at_a_time_with_a_stray_answer(
    stray: usize,
) -> (
    tempfile::TempDir,
    TestApp,
    Device,
    doorstep_sync::engine::SyncReport,
) {
    let (dir, app, device, gate, url) = behind_a_gate().await;
    device.record_visit(0);
    device.record_visit(1);
    let queued = device.store.lock().unwrap().push_batch(PushLimit {
        items: 2,
        bytes: usize::MAX,
        overhead_per_item: 0,
    });
    *gate.stray_accepted.lock().unwrap() = Some(queued.unwrap()[stray].change_id.0);
    let report = device
        .engine_pushing(&url, 1, Duration::from_secs(10), 1)
        .sync()
        .await
        .unwrap();
    (dir, app, device, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_about_a_change_not_in_the_push_moves_nothing() {
    // The answer to the first push also says the second was accepted: the
    // second was still pushed, and the endpoint holds both.
    let (_dir, app, device, _) = pushed_one_at_a_time_with_a_stray_answer(1).await;
    assert_eq!(held_by_endpoint(&app).await, 2);
    assert_eq!(device.stuck(), 0);
}

/// Four visits recorded and pushed in one sync of five tries a request, each
/// `timeout` long, with the gate's `hold_up` set: every one reaches the
/// endpoint. The device's directory and the gate, to count what it held up.
async fn four_visits_pushed_while(
    hold_up: impl Fn(&Gate) -> &AtomicBool,
    timeout: Duration,
) -> (tempfile::TempDir, Gate) {
    let (dir, app, device, gate, url) = behind_a_gate().await;
    for seed in 0..4 {
        device.record_visit(seed);
    }
    hold_up(&gate).store(true, Ordering::SeqCst);
    let report = device.engine(&url, 5, timeout).sync().await.unwrap();
    assert_eq!(report.pushed, 4);
    assert_eq!(held_by_endpoint(&app).await, 4);
    (dir, gate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_that_runs_out_of_time_goes_again_halved_not_whole() {
    // Four visits in one push never get through in the request's time; one
    // at a time they do, in the same sync.
    let (_dir, gate) =
        four_visits_pushed_while(|g| &g.slowing_batches, Duration::from_millis(500)).await;
    // The batch of four ran out of time, then a half of it; the rest of the
    // sync went one at a time, not back up to a size that had failed.
    assert_eq!(gate.slow_batches.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_a_proxy_stops_waiting_for_goes_again_halved_not_whole() {
    // A proxy answers 408 to an upload of four visits, and of two; one at a time get
    // through, in the same sync.
    let (_dir, gate) =
        four_visits_pushed_while(|g| &g.cutting_batches, Duration::from_secs(10)).await;
    assert_eq!(gate.cut_batches.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_with_no_cursor_yet_that_cannot_connect_queues_nothing_again() {
    // Pushed and accepted, but no pull page landed (the pulls failed): the next sync asks
    // what the endpoint holds before pushing. Out of signal, it cannot ask; before, it
    // queued its whole accepted history again and showed it all as unsynced.
    let (_dir, _app, device, gate, url) = behind_a_gate().await;
    device.record_visit(0);
    gate.fail_pulls.store(true, Ordering::SeqCst);
    assert!(device.sync_once(&url).await.is_err());
    let counts = || device.store.lock().unwrap().outbox_counts().unwrap();
    assert_eq!((counts().accepted, counts().pending), (1, 0));
    let nowhere = "http://127.0.0.1:9";
    let error = device.sync_once(nowhere).await.unwrap_err();
    assert!(matches!(error, SyncError::Unreachable(_)), "{error}");
    assert_eq!((counts().accepted, counts().pending), (1, 0));
    assert_eq!(device.stuck(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_page_that_runs_out_of_time_is_asked_for_again_smaller() {
    // A colleague's four visits never come down in one page in the request's time; one
    // at a time they do, in the same sync.
    let (_dir, app, device, gate, url) = behind_a_gate().await;
    let other = tempfile::tempdir().unwrap();
    let colleague = Device::open(other.path(), &app, "para-2", "phone-2");
    for seed in 0..4 {
        colleague.record_visit(seed);
    }
    colleague.sync_once(&url).await.unwrap();
    gate.slowing_pages.store(true, Ordering::SeqCst);
    let mut config = device.config(&url, 5, Duration::from_millis(500));
    config.pull_limit = 4;
    let report = device.try_engine(config).unwrap().sync().await.unwrap();
    assert_eq!(device.records_held(), 4);
    assert_eq!(report.pull_pages, 4, "one page a visit");
    // Pages of four and of two ran out of time; the rest came one at a time.
    assert_eq!(gate.slow_pages.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_naming_a_change_twice_counts_it_once() {
    // The answer to the first push says twice that it was accepted.
    let (_dir, app, _, report) = pushed_one_at_a_time_with_a_stray_answer(0).await;
    assert_eq!(report.pushed, 2);
    assert_eq!(held_by_endpoint(&app).await, 2);
}

/// A device that synced one visit before its endpoint's backup and one
/// after, and the endpoint restored from that backup (the second visit
/// lost): the device's directory, the device signed in to the restored
/// endpoint, and that endpoint.
async fn restored_after_one_more_visit() -> (tempfile::TempDir, Device, TestApp) {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let mut device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let url = format!("http://{}", serve(&app).await);
    device.record_visit(0);
    synced(&device, &url).await;
    let backup = back_up(&app);
    device.record_visit(1);
    synced(&device, &url).await;
    let restored = restored_from(backup);
    device.token = restored.device_token(NET, "para-1", "phone-1");
    (dir, device, restored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_cannot_say_what_it_holds_is_offered_everything_again() {
    let (_dir, device, restored) = restored_after_one_more_visit().await;
    // Restored, behind something that answers 404 for `/held`.
    let gate = Gate::new(MAX_BODY_BYTES);
    gate.no_held.store(true, Ordering::SeqCst);
    let url = format!("http://{}", gate.serve(&restored).await);
    let report = synced(&device, &url).await;
    // Both go again; the endpoint stores the lost one and answers the other
    // as a duplicate.
    assert_eq!(
        (report.reoffered, report.pushed, report.rejected),
        (2, 2, 0)
    );
    assert_eq!(held_by_endpoint(&restored).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_signed_in_to_another_network_is_told_so_and_offers_nothing_again() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let mut device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let url = format!("http://{}", serve(&app).await);
    device.record_visit(0);
    device.record_visit(1);
    synced(&device, &url).await;

    // Configured for its own network, signed in to another: its cursor is
    // refused, and the endpoint will not say what the other network holds.
    device.token = app.device_token("west-dorset", "para-1", "phone-1");
    device.record_visit(2);
    let error = device.sync_once(&url).await.unwrap_err();
    assert!(matches!(error, SyncError::Forbidden(_)), "{error}");
    let counts = device.store.lock().unwrap().outbox_counts().unwrap();
    assert_eq!((counts.accepted, counts.pending), (2, 1), "{counts:?}");
    assert_eq!(held_by_endpoint(&app).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_built_before_held_named_the_network_is_asked_without_it() {
    let (_dir, device, restored) = restored_after_one_more_visit().await;
    let gate = Gate::new(MAX_BODY_BYTES);
    gate.held_unnamed_only.store(true, Ordering::SeqCst);
    let url = format!("http://{}", gate.serve(&restored).await);
    let report = synced(&device, &url).await;
    // Only the lost change goes again, as with an endpoint that takes the
    // network.
    assert_eq!(gate.named_held_refused.load(Ordering::SeqCst), 1);
    assert_eq!(
        (report.reoffered, report.pushed, report.rejected),
        (1, 1, 0)
    );
    assert_eq!(held_by_endpoint(&restored).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_first_held_answer_queued_again_is_counted_when_a_later_one_fails() {
    // More accepted changes than one `/held` question may name: the first
    // answer finds all but the first missing, the proxy then blocks the
    // second question, and every accepted change left goes again. The report
    // counts both.
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let gate = Gate::new(MAX_BODY_BYTES);
    let url = format!("http://{}", gate.serve(&app).await);
    device.record_visit(0);
    push_but_never_pull(&device, &gate, &url).await;
    let backup = back_up(&app);
    for seed in 1..=MAX_HELD_IDS as u64 {
        device.record_visit(seed);
    }
    push_but_never_pull(&device, &gate, &url).await;

    let restored = restored_from(backup);
    let mut device = device;
    device.token = restored.device_token(NET, "para-1", "phone-1");
    let gate = Gate::new(MAX_BODY_BYTES);
    gate.held_answers_left.store(1, Ordering::SeqCst);
    let url = format!("http://{}", gate.serve(&restored).await);
    let report = synced(&device, &url).await;
    assert_eq!(report.reoffered, MAX_HELD_IDS + 1, "{report:?}");
    assert_eq!(held_by_endpoint(&restored).await, MAX_HELD_IDS + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_whose_push_fails_is_told_at_once_and_wiped_only_once_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let gate = Gate::new(MAX_BODY_BYTES);
    let url = format!("http://{}", gate.serve(&app).await);
    let engine = device.engine(&url, 2, Duration::from_secs(10));
    device.record_visit(0);
    engine.sync().await.unwrap();
    app.revoke(NET, "phone-1").await;
    device.record_visit(1);
    // Every push fails: the device hears it is revoked from the pull, and
    // keeps its unsent visit rather than being told to wipe it.
    gate.fail_pushes.store(true, Ordering::SeqCst);
    let error = engine.sync().await.unwrap_err();
    assert!(matches!(error, SyncError::RevokedWithUnsent(_)), "{error}");
    assert_revoked(&engine, 1);
    // No signal at the next sync, nor after the app starts again: still
    // revoked, the records closed.
    let offline = device.engine("http://127.0.0.1:9", 1, Duration::from_secs(2));
    offline.sync().await.unwrap_err();
    assert_revoked(&offline, 1);
    let restarted = device.engine(&url, 2, Duration::from_secs(10));
    assert_revoked(&restarted, 1);
    // Nor when its sign-in has run out by the time the endpoint would take
    // the push: it must sign in to push, and stays closed meanwhile.
    gate.fail_pushes.store(false, Ordering::SeqCst);
    let signed_out = Device {
        store: Arc::clone(&device.store),
        clinician: "para-1".into(),
        device: "phone-1".into(),
        token: "no-longer-valid".into(),
    };
    let lapsed = signed_out.engine(&url, 1, Duration::from_secs(10));
    assert!(matches!(
        lapsed.sync().await.unwrap_err(),
        SyncError::SignInRequired
    ));
    assert_revoked(&lapsed, 1);
    // Once the push goes, the wipe.
    gate.fail_pushes.store(false, Ordering::SeqCst);
    let report = engine.sync().await.unwrap();
    assert!(report.revoked);
    assert_eq!(report.pushed, 1);
    assert_eq!(engine.status().state, SyncState::MustWipe { unsynced: 0 });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_told_by_a_push_that_it_is_revoked_hears_it_when_a_later_push_fails() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::new(&Backend::Sqlite).await;
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let gate = Gate::new(MAX_BODY_BYTES);
    let url = format!("http://{}", gate.serve(&app).await);
    let engine = device.engine_pushing(&url, 2, Duration::from_secs(10), 1);
    app.revoke(NET, "phone-1").await;
    device.record_visit(0);
    device.record_visit(1);
    // The first push goes and is answered `revoked`; the second fails. No
    // pull follows: a revoked device pulls nothing more.
    gate.pushes_left.store(1, Ordering::SeqCst);
    let error = engine.sync().await.unwrap_err();
    assert!(matches!(error, SyncError::RevokedWithUnsent(_)), "{error}");
    assert_eq!(gate.pulls.load(Ordering::SeqCst), 0);
    assert_revoked(&engine, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_known_revoked_pulls_nothing_more_even_once_the_endpoint_forgets_it() {
    // The endpoint was restored without its revocations (`--forget-revocations`);
    // the device heard of its revocation before, so it takes no colleague's
    // records and is told to wipe.
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let colleague_dir = tempfile::tempdir().unwrap();
    let colleague = Device::open(colleague_dir.path(), &app, "para-2", "phone-2");
    colleague.record_visit(5);
    synced(&colleague, &url).await;
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    device.store.lock().unwrap().mark_revoked().unwrap();
    device.record_visit(6);
    let engine = device.engine(&url, 2, Duration::from_secs(10));
    let report = engine.sync().await.unwrap();
    assert!(report.revoked);
    assert_eq!((report.pushed, report.pulled_new), (1, 0));
    assert_eq!(device.records_held(), 1, "only its own");
    assert_eq!(engine.status().state, SyncState::MustWipe { unsynced: 0 });
    // With no signal at the next sync, what the endpoint accepted stays
    // accepted (nothing is queued again for a question that got no answer),
    // and the device stays closed until a sync finishes.
    let offline = device.engine("http://127.0.0.1:9", 1, Duration::from_secs(2));
    offline.sync().await.unwrap_err();
    let counts = device.store.lock().unwrap().outbox_counts().unwrap();
    assert_eq!((counts.accepted, counts.pending), (1, 0));
    assert_revoked(&offline, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_closes_the_records_as_soon_as_the_store_holds_a_revocation() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let url = format!("http://{}", serve(&app).await);
    let dir = tempfile::tempdir().unwrap();
    let device = Device::open(dir.path(), &app, "para-1", "phone-1");
    let engine = device.engine(&url, 2, Duration::from_secs(10));
    engine.sync().await.unwrap();
    assert_eq!(engine.status().state, SyncState::UpToDate);
    // Heard by a sync of another engine on the store, or one cut short.
    device.store.lock().unwrap().mark_revoked().unwrap();
    assert_revoked(&engine, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_gives_back_what_a_restore_lost_ahead_of_its_amendment() {
    // As above, and the device was revoked on the restored endpoint: it hears
    // so when it probes its cursor, before anything goes, so the lost version
    // still goes ahead of the amendment built on it.
    let dir = tempfile::tempdir().unwrap();
    let (device, restored, versions, _) = amended_across_a_restore(dir.path()).await;
    restored.revoke(NET, "phone-1").await;
    let url = format!("http://{}", serve(&restored).await);
    let engine = device.engine(&url, 2, Duration::from_secs(10));
    let report = engine.sync().await.unwrap();
    assert!(report.revoked);
    assert_eq!((report.reoffered, report.pushed), (1, 2));
    assert_eq!(engine.status().state, SyncState::MustWipe { unsynced: 0 });
    assert_eq!(
        held_in_order(&restored).await,
        versions.map(|v| v.meta.version_id)
    );
}
