//! A change the endpoint refused, corrected on the device and synced: every
//! device and the endpoint see the record as one straight line, with no
//! fork for a clinician to reconcile, on SQLite and PostgreSQL.
//!
//! The refusal here is the endpoint's own: a phone whose clock was set days
//! ahead writes a version dated after the endpoint's 24-hour leeway. Device
//! A corrects it through its store (`Store::correct_rejected`), device B
//! pulls. An amendment A queued on top of the refused change reaches the
//! endpoint neither with it nor after it (the endpoint refuses it in the same
//! push; A holds it back when the refusal comes), and correcting it puts both
//! right. The last test shows why the correction may not simply amend the
//! refused version, as devices did before: the endpoint takes such an
//! amendment, and the record forks everywhere.

use std::time::Duration;

use axum::http::StatusCode;
use doorstep_domain::history::Head;
use doorstep_domain::network::{ClinicianId, DeviceId};
use doorstep_domain::record::{
    ObservationSet, RecordId, RecordVersion, VersionId, VersionMeta, VisitContent,
};
use doorstep_domain::text::FreeText;
use doorstep_server::auth::TokenRole;
use doorstep_store::{ChangeId, CurrentRecord, OutboxState, StoreError};
use doorstep_sync::engine::SyncState;
use doorstep_sync::fixtures;
use doorstep_sync::wire::ChangeId as WireChangeId;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use uuid::Uuid;

use crate::device::{Device, NET, serve};
use crate::helpers::{Backend, TestApp, batch, statuses};
use crate::on_both_backends;

/// Three days ahead: past the endpoint's 24-hour leeway on `written_at`.
const CLOCK_AHEAD: SignedDuration = SignedDuration::from_hours(72);

/// Device A's identity as a version's author and device.
fn phone_1() -> (ClinicianId, DeviceId) {
    (
        ClinicianId::parse("para-1").unwrap(),
        DeviceId::parse("phone-1").unwrap(),
    )
}

/// Saves on `device` a version of `record` superseding `supersedes`,
/// written at `written_at`; returns it with its change id.
fn write(
    device: &Device,
    record: RecordId,
    supersedes: Option<VersionId>,
    written_at: Timestamp,
    seed: u64,
) -> (RecordVersion<VisitContent>, ChangeId) {
    let (author, phone) = phone_1();
    let meta = VersionMeta {
        record_id: record,
        version_id: VersionId(Uuid::now_v7()),
        supersedes,
        merges: Vec::new(),
        author,
        device: phone,
        written_at,
    };
    let version = fixtures::visit_record(meta, seed);
    let change = device.store.lock().unwrap().save(&version).unwrap();
    (version, change.change_id().unwrap())
}

/// The forks the endpoint lists for the network.
async fn forks(app: &TestApp) -> serde_json::Value {
    let coordinator = app.token(NET, TokenRole::Coordinator, "coord", None);
    let (status, body) = app.get(&coordinator, "/sync/v1/forks").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["forks"].clone()
}

/// Device A's refused change, checked to be rejected for its date.
fn refused_for_its_date(device: &Device, change: ChangeId) {
    let rejected = device.store.lock().unwrap().rejected_items().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].change_id, change);
    let OutboxState::Rejected { reason } = &rejected[0].state else {
        panic!("not rejected: {:?}", rejected[0].state);
    };
    assert!(reason.contains("meta.written_at"), "{reason}");
}

/// Corrects `change` on device A: the refused version's content with the
/// treatment put right, written now (the clock fixed), and its times put
/// right too, since the same wrong clock gave them (a visit cannot end after
/// its record was written).
fn correct(
    device: &Device,
    change: ChangeId,
    refused: &RecordVersion<VisitContent>,
) -> RecordVersion<VisitContent> {
    let mut store = device.store.lock().unwrap();
    let base = store.correction_base(change).unwrap();
    let (author, phone) = phone_1();
    let now = Timestamp::now();
    let clock_error = refused.meta.written_at.duration_since(now);
    let retimed = |at: Timestamp| at - clock_error;
    let mut content = refused.content.clone();
    content.treatment = FreeText::parse("treatment", "Paracetamol 1 g given.").unwrap();
    content.arrived_at = retimed(content.arrived_at);
    content.departed_at = content.departed_at.map(retimed);
    content.observations = (content.observations.iter())
        .map(|set| {
            let prescription = set.scale2_prescription().cloned();
            ObservationSet::record(retimed(set.taken_at()), *set.values(), prescription).unwrap()
        })
        .collect();
    let correction = RecordVersion {
        meta: base.meta(VersionId(Uuid::now_v7()), author, phone, now),
        content,
    };
    store.correct_rejected(change, &correction).unwrap();
    correction
}

/// An endpoint served on a loopback port and two paramedics' devices on it:
/// A, whose changes the tests have refused and corrected, and B, which pulls
/// what A's record has become.
struct Scene {
    app: TestApp,
    url: String,
    _dir: tempfile::TempDir,
    a: Device,
    b: Device,
}

impl Scene {
    async fn new(backend: &Backend) -> Self {
        let app = TestApp::new(backend).await;
        let url = format!("http://{}", serve(&app).await);
        let _dir = tempfile::tempdir().unwrap();
        let a = Device::open(_dir.path(), &app, "para-1", "phone-1");
        let b = Device::open(_dir.path(), &app, "para-2", "phone-2");
        Self {
            app,
            url,
            _dir,
            a,
            b,
        }
    }
}

async fn a_corrected_amendment_reaches_every_device_as_a_straight_line(backend: Backend) {
    let Scene {
        app,
        url,
        _dir,
        a,
        b,
    } = Scene::new(&backend).await;
    let engine_a = a.engine(&url, 3, Duration::from_secs(10));
    let engine_b = b.engine(&url, 3, Duration::from_secs(10));
    let record = RecordId(Uuid::now_v7());

    let (v0, _) = write(&a, record, None, Timestamp::now(), 1);
    assert_eq!(engine_a.sync().await.unwrap().pushed, 1);
    let ahead = Timestamp::now() + CLOCK_AHEAD;
    let (v1, c1) = write(&a, record, Some(v0.meta.version_id), ahead, 2);
    let report = engine_a.sync().await.unwrap();
    assert_eq!((report.pushed, report.rejected), (0, 1));
    refused_for_its_date(&a, c1);

    let v2 = correct(&a, c1, &v1);
    assert_eq!(v2.meta.supersedes, Some(v0.meta.version_id));
    let report = engine_a.sync().await.unwrap();
    assert_eq!(
        (report.pushed, report.rejected, report.forked),
        (1, 0, 0),
        "the endpoint takes the correction without a fork"
    );
    assert_eq!(report.pulled_new, 0, "its own correction came back as held");
    assert_eq!(forks(&app).await, json!([]));

    engine_b.sync().await.unwrap();
    let seen_by_b = b
        .store
        .lock()
        .unwrap()
        .current::<VisitContent>(record)
        .unwrap()
        .unwrap();
    assert_eq!(seen_by_b.version, v2);
    assert_eq!(seen_by_b.head, Head::Single(v2.meta.version_id));
    assert_eq!(seen_by_b.version_count, 2, "v0 and v2; v1 never left A");

    let store = a.store.lock().unwrap();
    let seen_by_a = store.current::<VisitContent>(record).unwrap().unwrap();
    assert_eq!(seen_by_a.head, Head::Single(v2.meta.version_id));
    assert_eq!(
        seen_by_a.version_count, 3,
        "A keeps what it wrote and was refused"
    );
    let counts = store.outbox_counts().unwrap();
    assert_eq!(
        (counts.accepted, counts.withdrawn, counts.unsynced()),
        (2, 1, 0)
    );
    drop(store);
    assert_eq!(engine_a.status().state, SyncState::UpToDate);
}

async fn a_corrected_first_version_reaches_every_device_as_the_only_version(backend: Backend) {
    let Scene {
        app,
        url,
        _dir,
        a,
        b,
    } = Scene::new(&backend).await;
    let engine_a = a.engine(&url, 3, Duration::from_secs(10));
    let record = RecordId(Uuid::now_v7());

    let ahead = Timestamp::now() + CLOCK_AHEAD;
    let (v1, c1) = write(&a, record, None, ahead, 1);
    assert_eq!(engine_a.sync().await.unwrap().rejected, 1);
    refused_for_its_date(&a, c1);
    let v2 = correct(&a, c1, &v1);
    assert_eq!(v2.meta.supersedes, None);
    let report = engine_a.sync().await.unwrap();
    assert_eq!((report.pushed, report.forked, report.pulled_new), (1, 0, 0));
    assert_eq!(forks(&app).await, json!([]));

    let seen_by_b = synced_view(&b, &url, record).await;
    assert_eq!(seen_by_b.version, v2);
    assert_eq!(seen_by_b.head, Head::Single(v2.meta.version_id));
    assert_eq!(seen_by_b.version_count, 1);
}

/// `record` as `device` shows it after a sync with the endpoint at `url`.
async fn synced_view(device: &Device, url: &str, record: RecordId) -> CurrentRecord<VisitContent> {
    device
        .engine(url, 3, Duration::from_secs(10))
        .sync()
        .await
        .unwrap();
    device
        .store
        .lock()
        .unwrap()
        .current::<VisitContent>(record)
        .unwrap()
        .unwrap()
}

/// The versions of `record` the endpoint holds, as a coordinator pulls them.
async fn held_by_endpoint(app: &TestApp, record: RecordId) -> Vec<String> {
    let coordinator = app.token(NET, TokenRole::Coordinator, "coord", None);
    let (changes, _) = app.pull_all(&coordinator, 500).await;
    changes
        .iter()
        .filter(|c| c["body"]["record"]["meta"]["record_id"] == json!(record.0.to_string()))
        .map(|c| {
            c["body"]["record"]["meta"]["version_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// Device A amends a synced version twice before syncing: the first
/// amendment written while its clock was days ahead (refused), the second,
/// on top of it, once the clock was put right. The second must not reach
/// the endpoint on its own: it amends a version the endpoint never holds,
/// and nothing there would supersede the synced version, so the record
/// would fork everywhere and neither refusal on A could be put right.
/// Pushed `push_batch` changes at a time: in one push the endpoint refuses
/// both; one at a time, A holds the second back when the first is refused.
/// The second's reason says so (`held_back_by`). Correcting the second then
/// leaves one straight line everywhere.
async fn an_amendment_on_a_refused_change_is_held_back_and_corrected_with_it(
    backend: Backend,
    push_batch: usize,
    held_back_by: &str,
) {
    let Scene {
        app,
        url,
        _dir,
        a,
        b,
    } = Scene::new(&backend).await;
    let engine_a = a.engine_pushing(&url, 3, Duration::from_secs(10), push_batch);
    let record = RecordId(Uuid::now_v7());
    let (v0, _) = write(&a, record, None, Timestamp::now(), 1);
    assert_eq!(engine_a.sync().await.unwrap().pushed, 1);

    let ahead = Timestamp::now() + CLOCK_AHEAD;
    let (v1, c1) = write(&a, record, Some(v0.meta.version_id), ahead, 2);
    let (v1b, c1b) = write(&a, record, Some(v1.meta.version_id), Timestamp::now(), 3);
    let report = engine_a.sync().await.unwrap();
    assert_eq!((report.pushed, report.forked), (0, 0), "{report:?}");
    assert_eq!(forks(&app).await, json!([]), "no fork at the endpoint");
    assert_eq!(
        held_by_endpoint(&app, record).await,
        [v0.meta.version_id.0.to_string()],
        "neither amendment reached the endpoint"
    );
    {
        let store = a.store.lock().unwrap();
        let listed: Vec<_> = store
            .rejected_items()
            .unwrap()
            .iter()
            .map(|i| i.change_id)
            .collect();
        assert_eq!(listed, [c1, c1b]);
        let OutboxState::Rejected { reason } = store.outbox_item(c1).unwrap().unwrap().state else {
            unreachable!("listed as rejected")
        };
        assert!(reason.contains("meta.written_at"), "{reason}");
        let OutboxState::Rejected { reason } = store.outbox_item(c1b).unwrap().unwrap().state
        else {
            unreachable!("listed as rejected")
        };
        assert!(reason.contains(held_back_by), "{reason}");
        let counts = store.outbox_counts().unwrap();
        assert_eq!((counts.pending, counts.sent, counts.rejected), (0, 0, 2));
    }

    // The clinician corrects the newest: the correction takes the place of
    // both and supersedes v0.
    let v2 = correct(&a, c1b, &v1b);
    assert_eq!(v2.meta.supersedes, Some(v0.meta.version_id));
    let report = engine_a.sync().await.unwrap();
    assert_eq!(
        (
            report.pushed,
            report.rejected,
            report.forked,
            report.pulled_new
        ),
        (1, 0, 0, 0)
    );
    assert_eq!(forks(&app).await, json!([]));
    assert_eq!(
        held_by_endpoint(&app, record).await,
        [
            v0.meta.version_id.0.to_string(),
            v2.meta.version_id.0.to_string()
        ]
    );

    b.engine(&url, 3, Duration::from_secs(10))
        .sync()
        .await
        .unwrap();
    let store_b = b.store.lock().unwrap();
    let seen_by_b = store_b.current::<VisitContent>(record).unwrap().unwrap();
    assert_eq!(seen_by_b.version, v2);
    assert_eq!(seen_by_b.head, Head::Single(v2.meta.version_id));
    let line: Vec<_> = store_b
        .history::<VisitContent>(record)
        .unwrap()
        .into_iter()
        .map(|v| (v.version.meta.version_id, v.version.meta.supersedes))
        .collect();
    assert_eq!(
        line,
        [
            (v0.meta.version_id, None),
            (v2.meta.version_id, Some(v0.meta.version_id))
        ],
        "a straight line v0 -> v2"
    );
    drop(store_b);

    let store = a.store.lock().unwrap();
    let seen_by_a = store.current::<VisitContent>(record).unwrap().unwrap();
    assert_eq!(seen_by_a.head, Head::Single(v2.meta.version_id));
    assert_eq!(seen_by_a.version_count, 4, "A keeps what was refused");
    let counts = store.outbox_counts().unwrap();
    assert_eq!(
        (counts.accepted, counts.withdrawn, counts.unsynced()),
        (2, 2, 0)
    );
    drop(store);
    assert_eq!(engine_a.status().state, SyncState::UpToDate);
}

async fn an_amendment_pushed_with_its_refused_base_is_refused_with_it_and_corrected_in_one_line(
    backend: Backend,
) {
    // The endpoint's refusal, in its 422.
    an_amendment_on_a_refused_change_is_held_back_and_corrected_with_it(
        backend,
        100,
        "refused in this push",
    )
    .await;
}

async fn an_amendment_queued_behind_its_refused_base_is_held_back_and_corrected_in_one_line(
    backend: Backend,
) {
    // The device's own, when it applies the refusal of the first.
    an_amendment_on_a_refused_change_is_held_back_and_corrected_with_it(backend, 1, "builds on")
        .await;
}

/// The way devices corrected a refused change before: amend it. The device
/// store now refuses that; pushed as such a device pushed it, the endpoint
/// takes it, and the record forks at the endpoint and on every device that
/// pulls it, though nobody amended anything twice.
async fn amending_the_refused_version_instead_would_fork_the_record_everywhere(backend: Backend) {
    let Scene {
        app,
        url,
        _dir,
        a,
        b,
    } = Scene::new(&backend).await;
    let engine_a = a.engine(&url, 3, Duration::from_secs(10));
    let record = RecordId(Uuid::now_v7());
    let (v0, _) = write(&a, record, None, Timestamp::now(), 1);
    engine_a.sync().await.unwrap();
    let ahead = Timestamp::now() + CLOCK_AHEAD;
    let (v1, c1) = write(&a, record, Some(v0.meta.version_id), ahead, 2);
    engine_a.sync().await.unwrap();
    refused_for_its_date(&a, c1);

    let (author, phone) = phone_1();
    let naive = v1
        .meta
        .amend(VersionId(Uuid::now_v7()), author, phone, Timestamp::now());
    let refused = a
        .store
        .lock()
        .unwrap()
        .save(&fixtures::visit_record(naive.clone(), 3));
    assert!(
        matches!(&refused, Err(StoreError::Invalid(e)) if e.field == "meta.supersedes"),
        "{refused:?}"
    );

    let token = app.device_token(NET, "para-1", "phone-1");
    let change = fixtures::visit_change(WireChangeId(Uuid::now_v7()), naive.clone(), 3);
    let (status, body) = app.push(&token, &batch(NET, "phone-1", vec![change])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(statuses(&body), ["forked"]);
    let listed = forks(&app).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["record_id"], json!(record.0.to_string()));

    let seen_by_b = synced_view(&b, &url, record).await;
    assert_eq!(
        seen_by_b.head,
        Head::Forked(vec![naive.version_id, v0.meta.version_id]),
        "a fork B's clinician would be asked to reconcile"
    );
}

on_both_backends!(
    a_corrected_amendment_reaches_every_device_as_a_straight_line,
    a_corrected_first_version_reaches_every_device_as_the_only_version,
    amending_the_refused_version_instead_would_fork_the_record_everywhere,
    an_amendment_pushed_with_its_refused_base_is_refused_with_it_and_corrected_in_one_line,
    an_amendment_queued_behind_its_refused_base_is_held_back_and_corrected_in_one_line,
);
