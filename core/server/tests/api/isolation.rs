//! Network isolation as a property: two networks filled with random records
//! (visit records, medication reviews and amendments, several devices each), and a clinician of the
//! first, through every endpoint, never receives a byte that identifies the
//! second's data: no change, record or version id, NHS number, device,
//! clinician or network name.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use doorstep_domain::network::{ClinicianId, DeviceId};
use doorstep_domain::record::{RecordId, VersionId, VersionMeta};
use doorstep_server::auth::TokenRole;
use doorstep_sync::fixtures;
use doorstep_sync::wire::{Change, ChangeBody, ChangeId};
use proptest::prelude::*;
use uuid::Uuid;

use crate::helpers::{Backend, TestApp, amend, batch, new_visit};

/// One generated push: which network, which of its devices, whether to amend
/// an earlier visit of that network (or, for a new record, whether it is a
/// medication review), and the content seed.
type Op = (bool, u8, Option<prop::sample::Index>, bool, u32);

fn names(second: bool, device: u8) -> (String, String, String) {
    let n = if second { "b" } else { "a" };
    (
        format!("net-{n}"),
        format!("{n}-para-{device}"),
        format!("{n}-phone-{device}"),
    )
}

fn new_review(clinician: &str, device: &str, seed: u64) -> Change {
    let meta = VersionMeta::first(
        RecordId(Uuid::now_v7()),
        VersionId(Uuid::now_v7()),
        ClinicianId::parse(clinician).unwrap(),
        DeviceId::parse(device).unwrap(),
        jiff::Timestamp::now(),
    );
    Change {
        change_id: ChangeId(Uuid::now_v7()),
        body: ChangeBody::MedicationReview(fixtures::medication_review(meta, seed)),
    }
}

async fn check(backend: Backend, ops: Vec<Op>) {
    let app = TestApp::new(&backend).await;
    let mut pushed: [Vec<Change>; 2] = [Vec::new(), Vec::new()];
    for (second, device, amend_of, review, seed) in ops {
        let (net, clinician, dev) = names(second, device);
        let seed = u64::from(seed % 100_000) + if second { 400_000 } else { 0 };
        let list = &pushed[usize::from(second)];
        let visits: Vec<&Change> = list
            .iter()
            .filter(|c| matches!(c.body, ChangeBody::VisitRecord(_)))
            .collect();
        let change = match amend_of {
            Some(i) if !visits.is_empty() => {
                amend(visits[i.index(visits.len())], &clinician, &dev, seed)
            }
            _ if review => new_review(&clinician, &dev, seed),
            _ => new_visit(&clinician, &dev, seed),
        };
        let token = app.device_token(&net, &clinician, &dev);
        let (status, body) = app
            .push(&token, &batch(&net, &dev, vec![change.clone()]))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pushed[usize::from(second)].push(change);
    }

    let mut secrets: Vec<String> = vec!["net-b".into(), "b-para-".into(), "b-phone-".into()];
    for change in &pushed[1] {
        let meta = change.body.meta();
        secrets.push(change.change_id.0.to_string());
        secrets.push(meta.record_id.0.to_string());
        secrets.push(meta.version_id.0.to_string());
        match &change.body {
            ChangeBody::VisitRecord(r) => secrets.push(r.content.patient.as_str().to_owned()),
            ChangeBody::MedicationReview(r) => {
                secrets.push(r.content.resident.as_str().to_owned());
            }
        }
    }

    let (_, clinician, device) = names(false, 0);
    let a = app.device_token("net-a", &clinician, &device);
    let coordinator_a = app.token("net-a", TokenRole::Coordinator, "a-coord", None);
    let mut seen = Vec::new();
    for limit in [1, 3, 500] {
        let (changes, cursors) = app.pull_all(&a, limit).await;
        assert_eq!(changes.len(), pushed[0].len());
        seen.push(serde_json::to_string(&changes).unwrap());
        seen.push(cursors.join(","));
    }
    for uri in [
        "/sync/v1/forks",
        "/sync/v1/pull?cursor=v1.1",
        "/healthz",
        "/.well-known/jwks.json",
    ] {
        seen.push(app.get(&a, uri).await.1.to_string());
        seen.push(app.get(&coordinator_a, uri).await.1.to_string());
    }
    // Trying to reach the other network: write into it, revoke its device.
    if let Some(theirs) = pushed[1].first() {
        let (status, body) = app
            .push(&a, &batch("net-b", &device, vec![theirs.clone()]))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        // Replaying the other network's record into one's own is refused as
        // not the caller's (the answer only echoes what the caller sent).
        let (status, _) = app
            .push(&a, &batch("net-a", &device, vec![theirs.clone()]))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "not this clinician's record"
        );
    }
    // Revoking "their" device only marks a device id within A (the answer
    // names A, and nothing held from that device there); B's device carries on.
    let (status, answer) = app
        .send(
            Request::post("/sync/v1/devices/b-phone-0/revoke")
                .header(header::AUTHORIZATION, format!("Bearer {coordinator_a}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (answer["network"].as_str(), answer["changes_held"].as_u64()),
        (Some("net-a"), Some(0))
    );
    let (_, b_clinician, b_device) = names(true, 0);
    let b = app.device_token("net-b", &b_clinician, &b_device);
    let (status, _) = app.get(&b, "/sync/v1/pull").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a coordinator of A cannot revoke B's device"
    );
    let (b_changes, _) = app.pull_all(&b, 500).await;
    assert_eq!(b_changes.len(), pushed[1].len());

    for text in &seen {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "network A saw {secret}");
        }
    }
    // The fixture numbers of A are disjoint from B's by construction.
    assert_ne!(fixtures::nhs_number(0), fixtures::nhs_number(400_000));
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (
            any::<bool>(),
            0u8..3,
            prop::option::of(any::<prop::sample::Index>()),
            any::<bool>(),
            any::<u32>(),
        ),
        1..24,
    )
}

fn run(backend: Backend, cases: u32) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(ops in ops())| {
        runtime.block_on(check(backend.clone(), ops));
    });
}

#[test]
fn a_clinician_never_receives_a_byte_of_another_networks_data_on_sqlite() {
    run(Backend::Sqlite, 24);
}

#[test]
fn a_clinician_never_receives_a_byte_of_another_networks_data_on_postgres() {
    if let Some(backend) = Backend::postgres() {
        run(backend, 12);
    }
}
