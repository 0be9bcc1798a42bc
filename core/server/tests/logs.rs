//! What the endpoint's logs say: structured lines with request ids, and never
//! a patient identifier, clinical text or clinical value. Its own test binary,
//! so the process-wide log subscriber sees every event.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use doorstep_domain::network::{ClinicianId, DeviceId, NetworkId};
use doorstep_domain::record::{RecordId, VersionId, VersionMeta};
use doorstep_server::auth::{SigningKey, TokenRole, Verifier};
use doorstep_server::storage::sqlite::SqliteStorage;
use doorstep_server::token::{TokenRequest, issue};
use doorstep_server::{AppState, router};
use doorstep_sync::fixtures;
use doorstep_sync::wire::{Change, ChangeBody, ChangeId, PushRequest};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

fn visit(seed: u64) -> Change {
    let meta = VersionMeta::first(
        RecordId(Uuid::now_v7()),
        VersionId(Uuid::now_v7()),
        ClinicianId::parse("para-1").unwrap(),
        DeviceId::parse("phone-1").unwrap(),
        jiff::Timestamp::now(),
    );
    fixtures::visit_change(ChangeId(Uuid::now_v7()), meta, seed)
}

fn push(token: &str, body: &Value) -> Request<Body> {
    Request::post("/sync/v1/push")
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// A log sink the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_carry_request_ids_and_no_patient_identifier_or_clinical_text() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || sink.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::load_or_create(dir.path()).unwrap());
    let app = router(AppState {
        storage: Arc::new(SqliteStorage::open(&dir.path().join("s.sqlite3")).unwrap()),
        verifier: Arc::new(Verifier::new(&key, "doorstep", "doorstep-sync")),
    });
    let token = issue(
        &key,
        TokenRequest {
            network: NetworkId::parse("east-dorset").unwrap(),
            role: TokenRole::Paramedic,
            subject: "para-1".into(),
            device: Some(DeviceId::parse("phone-1").unwrap()),
            ttl: jiff::SignedDuration::from_mins(5),
        },
        "doorstep",
        "doorstep-sync",
        jiff::Timestamp::now(),
    )
    .unwrap();
    let good = visit(7);
    let bad = visit(8);
    let mut secrets = Vec::new();
    for change in [&good, &bad] {
        if let ChangeBody::VisitRecord(r) = &change.body {
            secrets.push(r.content.patient.as_str().to_owned());
            secrets.push(r.content.assessment.as_str().to_owned());
        }
    }
    let batch = |change: Change| {
        serde_json::to_value(PushRequest {
            network: NetworkId::parse("east-dorset").unwrap(),
            device: DeviceId::parse("phone-1").unwrap(),
            changes: vec![change],
        })
        .unwrap()
    };
    let response = app
        .clone()
        .oneshot(push(&token, &batch(good)))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = batch(bad);
    body["changes"][0]["body"]["record"]["content"]["observations"][0]["values"]["pulse"] =
        json!(900);
    let response = app.clone().oneshot(push(&token, &body)).await.unwrap();
    assert_eq!(response.status(), 422);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("request_id"), "{logs}");
    assert!(logs.contains("\"message\":\"push\""), "{logs}");
    assert!(logs.contains("request refused"), "{logs}");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a log line carries patient data"
        );
    }
    for value in [":900,", ":900}", " 900 ", "=900"] {
        assert!(!logs.contains(value), "a log line carries a clinical value");
    }
}
