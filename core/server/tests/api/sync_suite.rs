//! The sync API's behaviour, run on both backends: idempotent pushes, ordered
//! pulls, forks, revocation, roles, and a precise 4xx for every kind of bad
//! input with nothing stored.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use doorstep_server::auth::TokenRole;
use serde_json::json;

use doorstep_domain::network::{ClinicianId, DeviceId, NetworkId};
use doorstep_domain::record::{RecordId, VersionId, VersionMeta};
use doorstep_server::routes::sync::{MAX_PULL_PAGE_BYTES, WRITTEN_AT_LEEWAY};
use doorstep_sync::wire::{
    ChangeBody, ChangeKind, DEFAULT_FORKS_LIMIT, ForksResponse, MAX_FORKS_LIMIT, MAX_PUSH_CHANGES,
};
use std::sync::Arc;

use doorstep_server::storage::postgres::PostgresStorage;
use doorstep_server::storage::sqlite::SqliteStorage;
use doorstep_server::storage::{CheckedChange, NetworkScope, Storage};
use uuid::Uuid;

use crate::helpers::{
    Backend, TestApp, amend, batch, long_visit, new_visit, owner, reconcile, statuses,
    visit_version,
};

const NET: &str = "east-dorset";
const OTHER_NET: &str = "west-dorset";

async fn count_stored(app: &TestApp) -> usize {
    let token = app.token(NET, TokenRole::Coordinator, "coord", None);
    app.pull_all(&token, 500).await.0.len()
}

/// Runs SQL on `app`'s database as its owner would with the endpoint
/// stopped (`postgres`, with `{schema}` put for the test's schema, or
/// `sqlite`), then starts a new storage over it under `app`, as a restarted
/// endpoint would.
async fn restarted_after(backend: &Backend, app: &mut TestApp, postgres: &str, sqlite: &str) {
    let storage: Arc<dyn Storage> = match (backend, &app.schema) {
        (Backend::Postgres(url), Some(schema)) => {
            owner(url)
                .await
                .batch_execute(&postgres.replace("{schema}", schema))
                .await
                .unwrap();
            Arc::new(
                PostgresStorage::connect(url, Some(schema), 8)
                    .await
                    .unwrap(),
            )
        }
        _ => {
            let file = app.dir.path().join("server.sqlite3");
            rusqlite::Connection::open(&file)
                .unwrap()
                .execute_batch(sqlite)
                .unwrap();
            Arc::new(SqliteStorage::open(&file).unwrap())
        }
    };
    app.state.storage = storage;
    app.router = doorstep_server::router(app.state.clone());
}

/// Whether a refusal's words (its message, and each refused change's field
/// and reason) hold `text`. The change ids are left out: random hex, they
/// hold any three digits now and then.
fn echoes(answer: &serde_json::Value, text: &str) -> bool {
    let mut words = vec![answer["message"].to_string()];
    for refused in answer["rejected"].as_array().into_iter().flatten() {
        words.push(refused["field"].to_string());
        words.push(refused["reason"].to_string());
    }
    words.iter().any(|w| w.contains(text))
}

/// Asserts that pulling from `cursor` with `token` is refused as `bad_cursor`.
async fn assert_bad_cursor(app: &TestApp, token: &str, cursor: &str, what: &str) {
    let (status, body) = app
        .get(token, &format!("/sync/v1/pull?cursor={cursor}"))
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("bad_cursor")),
        "{what} ({cursor}): {body}"
    );
}

async fn pushing_the_same_batch_twice_stores_it_once_and_answers_duplicate(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let request = batch(
        NET,
        "phone-1",
        (0..3).map(|i| new_visit("para-1", "phone-1", i)).collect(),
    );
    let (status, first) = app.push(&token, &request).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(statuses(&first), ["accepted"; 3]);
    assert_eq!(first["device_status"], "active");
    let (status, second) = app.push(&token, &request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(statuses(&second), ["duplicate"; 3]);
    assert_eq!(count_stored(&app).await, 3);
}

async fn pull_pages_come_in_push_order_and_the_cursor_only_moves_forward(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let changes: Vec<_> = (0..7).map(|i| new_visit("para-1", "phone-1", i)).collect();
    for chunk in changes.chunks(3) {
        let (status, _) = app
            .push(&token, &batch(NET, "phone-1", chunk.to_vec()))
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (pulled, cursors) = app.pull_all(&token, 2).await;
    let ids: Vec<String> = pulled
        .iter()
        .map(|c| c["change_id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = changes.iter().map(|c| c.change_id.0.to_string()).collect();
    assert_eq!(ids, expected);
    assert_eq!(cursors.len(), 4);
    let seqs: Vec<u64> = cursors
        .iter()
        .map(|c| c.split('.').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    // Pulled records are exactly what was pushed, and parse as wire changes.
    let first: doorstep_sync::wire::Change = serde_json::from_value(pulled[0].clone()).unwrap();
    assert_eq!(first, changes[0]);
    // From the last cursor there is nothing more, and the cursor stays put.
    let last = cursors.last().unwrap();
    let (status, body) = app
        .get(&token, &format!("/sync/v1/pull?cursor={last}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["changes"], json!([]));
    assert_eq!(body["cursor"], json!(last));
    assert_eq!(body["more"], json!(false));
    assert_eq!(body["network"], json!(NET), "a page names its network");
}

/// A record para-1 wrote on phone-1 and both para-1 and para-2 (phone-2)
/// then amended, each push checked: phone-1's token, phone-2's, the first
/// version, the two amendments, and the answer to the second, `forked`.
struct Forked {
    a: String,
    b: String,
    base: doorstep_sync::wire::Change,
    left: doorstep_sync::wire::Change,
    right: doorstep_sync::wire::Change,
    second: serde_json::Value,
}

async fn fork_by_two_devices(app: &TestApp) -> Forked {
    let a = app.device_token(NET, "para-1", "phone-1");
    let b = app.device_token(NET, "para-2", "phone-2");
    let base = new_visit("para-1", "phone-1", 1);
    assert_eq!(
        app.push(&a, &batch(NET, "phone-1", vec![base.clone()]))
            .await
            .0,
        StatusCode::OK
    );
    let left = amend(&base, "para-1", "phone-1", 2);
    let right = amend(&base, "para-2", "phone-2", 3);
    let (_, first) = app
        .push(&a, &batch(NET, "phone-1", vec![left.clone()]))
        .await;
    assert_eq!(statuses(&first), ["accepted"]);
    let (_, second) = app
        .push(&b, &batch(NET, "phone-2", vec![right.clone()]))
        .await;
    assert_eq!(statuses(&second), ["forked"]);
    Forked {
        a,
        b,
        base,
        left,
        right,
        second,
    }
}

async fn two_devices_amending_one_version_both_survive_and_the_fork_is_listed(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let Forked {
        a, base, second, ..
    } = fork_by_two_devices(&app).await;
    let heads = &second["results"][0]["outcome"]["heads"];
    assert_eq!(heads.as_array().unwrap().len(), 2);
    let (status, forks) = app.get(&a, "/sync/v1/forks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(forks["forks"].as_array().unwrap().len(), 1);
    assert_eq!(
        forks["forks"][0]["record_id"],
        json!(base.body.meta().record_id.0.to_string())
    );
    assert_eq!(count_stored(&app).await, 3);
}

async fn a_reused_change_id_is_rejected_while_the_rest_of_the_batch_is_stored(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let original = new_visit("para-1", "phone-1", 1);
    app.push(&token, &batch(NET, "phone-1", vec![original.clone()]))
        .await;
    let mut reused = new_visit("para-1", "phone-1", 2);
    reused.change_id = original.change_id;
    let fresh = new_visit("para-1", "phone-1", 3);
    let (status, body) = app
        .push(&token, &batch(NET, "phone-1", vec![reused, fresh]))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(statuses(&body), ["rejected", "accepted"]);
    assert_eq!(body["results"][0]["outcome"]["code"], "change_id_reused");
    assert_eq!(count_stored(&app).await, 2);
}

async fn a_medication_review_cannot_amend_a_visit_record(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let visit = new_visit("para-1", "phone-1", 1);
    app.push(&token, &batch(NET, "phone-1", vec![visit.clone()]))
        .await;
    let meta = visit.body.meta().amend(
        doorstep_domain::record::VersionId(uuid::Uuid::now_v7()),
        visit.body.meta().author.clone(),
        visit.body.meta().device.clone(),
        jiff::Timestamp::now(),
    );
    let review = doorstep_sync::wire::Change {
        change_id: doorstep_sync::wire::ChangeId(uuid::Uuid::now_v7()),
        body: doorstep_sync::wire::ChangeBody::MedicationReview(
            doorstep_sync::fixtures::medication_review(meta, 2),
        ),
    };
    let (status, body) = app.push(&token, &batch(NET, "phone-1", vec![review])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(statuses(&body), ["rejected"]);
    assert_eq!(body["results"][0]["outcome"]["code"], "kind_conflict");
    assert_eq!(count_stored(&app).await, 1);
}

async fn an_impossible_clinical_value_is_422_naming_the_change_and_field_and_nothing_is_stored(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let good = new_visit("para-1", "phone-1", 1);
    let bad = new_visit("para-1", "phone-1", 2);
    let mut body = serde_json::to_value(batch(NET, "phone-1", vec![good, bad.clone()])).unwrap();
    body["changes"][1]["body"]["record"]["content"]["observations"][0]["values"]["pulse"] =
        json!(900);
    let (status, answer) = app.push_raw(&token, body.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    assert_eq!(answer["code"], "invalid_changes");
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["index"], 1);
    assert_eq!(rejected[0]["change_id"], json!(bad.change_id.0.to_string()));
    assert_eq!(rejected[0]["code"], "invalid");
    let field = rejected[0]["field"].as_str().unwrap();
    assert!(
        field.starts_with("body.record.content.observations[0]"),
        "{field}"
    );
    assert!(
        !echoes(&answer, "900"),
        "the value must not be echoed: {answer}"
    );
    assert_eq!(count_stored(&app).await, 0);
}

async fn malformed_unknown_oversized_and_mistyped_bodies_are_precise_4xx_and_store_nothing(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let good = serde_json::to_value(batch(
        NET,
        "phone-1",
        vec![new_visit("para-1", "phone-1", 1)],
    ))
    .unwrap();

    let (status, body) = app.push_raw(&token, "{\"network\": ").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("malformed_json"))
    );

    let mut unknown = good.clone();
    unknown["priority"] = json!("high");
    let (status, body) = app.push_raw(&token, unknown.to_string()).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("bad_request")),
        "{body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("priority"),
        "{body}"
    );

    let mut nested = good.clone();
    nested["changes"][0]["body"]["colour"] = json!("red");
    let (status, body) = app.push_raw(&token, nested.to_string()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], json!("changes[0].body.colour"), "{body}");

    let mut unknown_in_record = good.clone();
    unknown_in_record["changes"][0]["body"]["record"]["content"]["mood"] = json!("fine");
    let (status, body) = app.push_raw(&token, unknown_in_record.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let huge = format!(
        "{{\"pad\": \"{}\"}}",
        "x".repeat(doorstep_server::app::MAX_BODY_BYTES + 1)
    );
    let (status, body) = app.push_raw(&token, huge).await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("payload_too_large"))
    );

    let many = batch(
        NET,
        "phone-1",
        (0..=doorstep_sync::wire::MAX_PUSH_CHANGES as u64)
            .map(|i| new_visit("para-1", "phone-1", i))
            .collect(),
    );
    let (status, _) = app.push(&token, &many).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    let (status, body) = app
        .send(
            Request::post("/sync/v1/push")
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from(good.to_string()))
                .unwrap(),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!("unsupported_media_type")
        )
    );

    let (status, body) = app.get(&token, "/sync/v1/pull?cursor=garbage").await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("bad_cursor"))
    );
    let (status, _) = app.get(&token, "/sync/v1/pull?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get(&token, "/sync/v1/pull?since=3").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(count_stored(&app).await, 0);
}

async fn a_push_for_another_network_or_by_another_device_or_author_is_refused(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let (status, body) = app
        .push(
            &token,
            &batch(
                "west-dorset",
                "phone-1",
                vec![new_visit("para-1", "phone-1", 1)],
            ),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::FORBIDDEN, json!("wrong_network"))
    );
    let (status, _) = app
        .push(
            &token,
            &batch(NET, "phone-9", vec![new_visit("para-1", "phone-9", 1)]),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = app
        .push(
            &token,
            &batch(
                NET,
                "phone-1",
                vec![
                    new_visit("para-2", "phone-1", 1),
                    new_visit("para-1", "phone-2", 2),
                ],
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["rejected"][0]["field"], "body.record.meta.author");
    assert_eq!(body["rejected"][1]["field"], "body.record.meta.device");
    assert_eq!(body["rejected"][1]["code"], "not_yours");
    assert_eq!(count_stored(&app).await, 0);
}

async fn a_revoked_device_may_push_its_last_changes_but_not_pull_or_list_forks(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let device = app.device_token(NET, "para-1", "phone-1");
    let coordinator = app.token(NET, TokenRole::Coordinator, "coord", None);
    let clinician_elsewhere = app.device_token(NET, "para-2", "phone-2");
    let (status, _) = app
        .send(post(
            &clinician_elsewhere,
            "/sync/v1/devices/phone-1/revoke",
        ))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "only a coordinator revokes");
    for (path, says) in [
        ("/sync/v1/devices/%FF/revoke", "bad path"),
        ("/sync/v1/devices/phone%201/revoke", "lowercase letters"),
    ] {
        let (status, body) = app.send(post(&coordinator, path)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["code"], "bad_request", "{path}: {body}");
        assert_eq!(body["field"], "device", "{path}: {body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{body}");
    }
    let (status, body) = app
        .send(post(&coordinator, "/sync/v1/devices/phone-1/revoke"))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"device": "phone-1", "network": NET, "changes_held": 0})
    );
    for read in ["/sync/v1/pull", "/sync/v1/forks"] {
        let (status, body) = app.get(&device, read).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::FORBIDDEN, json!("device_revoked")),
            "{read}"
        );
    }
    let (status, body) = app
        .push(
            &device,
            &batch(NET, "phone-1", vec![new_visit("para-1", "phone-1", 1)]),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(statuses(&body), ["accepted"]);
    assert_eq!(body["device_status"], "revoked");
    assert_eq!(count_stored(&app).await, 1);
    // Revoking again says what the endpoint now holds from it.
    let (_, body) = app
        .send(post(&coordinator, "/sync/v1/devices/phone-1/revoke"))
        .await;
    assert_eq!(body["changes_held"], 1);
    for read in ["/sync/v1/pull", "/sync/v1/forks"] {
        let (status, _) = app.get(&clinician_elsewhere, read).await;
        assert_eq!(status, StatusCode::OK, "other devices carry on: {read}");
    }
}

async fn roles_decide_who_may_push_and_read(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let practice = app.token(NET, TokenRole::PracticeSystem, "emis-d99001", None);
    let (status, _) = app
        .push(
            &practice,
            &batch(NET, "phone-1", vec![new_visit("emis-d99001", "phone-1", 1)]),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app.get(&practice, "/sync/v1/pull").await;
    assert_eq!(status, StatusCode::OK);
    let deviceless = app.token(NET, TokenRole::Coordinator, "coord", None);
    let (status, _) = app.get(&deviceless, "/sync/v1/forks").await;
    assert_eq!(status, StatusCode::OK);
}

async fn a_storage_failure_is_a_plain_500_with_no_detail(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    break_storage(&backend, &app).await;
    let (status, body) = app
        .push(
            &token,
            &batch(NET, "phone-1", vec![new_visit("para-1", "phone-1", 1)]),
        )
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["code"], "internal");
    let text = body.to_string();
    for leak in ["sync_changes", "sqlite", "postgres", "relation", "table"] {
        assert!(!text.to_lowercase().contains(leak), "{text}");
    }
}

async fn healthz_jwks_and_unknown_paths_answer_without_a_token(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let (status, body) = app
        .send(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
    let (status, body) = app
        .send(
            Request::get("/.well-known/jwks.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["keys"][0]["kty"], "OKP");
    assert_eq!(body["keys"][0]["alg"], "EdDSA");
    assert!(body["keys"][0].get("d").is_none(), "no private part");
    let (status, body) = app
        .send(Request::get("/sync/v2/pull").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    // A known path asked with a method it does not take answers as every other
    // refusal does, in JSON, and says which methods it takes.
    let response = tower::ServiceExt::oneshot(
        app.router.clone(),
        Request::get("/sync/v1/push").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "method_not_allowed");
    let response = tower::ServiceExt::oneshot(
        app.router.clone(),
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await
    .unwrap();
    assert!(response.headers().contains_key("x-request-id"));
}

async fn a_cursor_made_for_another_network_is_bad_cursor(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let east = app.device_token(NET, "para-1", "phone-1");
    let west = app.device_token(OTHER_NET, "para-2", "phone-2");
    let east_changes = (0..5).map(|i| new_visit("para-1", "phone-1", i)).collect();
    let west_changes = (0..3).map(|i| new_visit("para-2", "phone-2", i)).collect();
    app.push(&east, &batch(NET, "phone-1", east_changes)).await;
    app.push(&west, &batch(OTHER_NET, "phone-2", west_changes))
        .await;
    let (_, east_cursors) = app.pull_all(&east, 2).await;
    for cursor in &east_cursors {
        assert_bad_cursor(&app, &west, cursor, "another network's cursor").await;
    }
    // The network's own cursors, and the empty one, still work.
    let (west_changes, _) = app.pull_all(&west, 2).await;
    assert_eq!(west_changes.len(), 3);
}

async fn a_cursor_from_before_a_database_restore_is_bad_cursor_even_after_new_pushes(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let changes = (0..5).map(|i| new_visit("para-1", "phone-1", i)).collect();
    app.push(&token, &batch(NET, "phone-1", changes)).await;
    let (_, cursors) = app.pull_all(&token, 500).await;
    let device_cursor = cursors.last().unwrap().clone();

    restore_to(&backend, &app, 3).await;
    let past_the_end = "a cursor past the network's last change";
    assert_bad_cursor(&app, &token, &device_cursor, past_the_end).await;
    // New changes take the restored sequence numbers: the old cursor names
    // a position that now holds other changes, and is still refused.
    let changes = (5..9).map(|i| new_visit("para-1", "phone-1", i)).collect();
    app.push(&token, &batch(NET, "phone-1", changes)).await;
    let rewritten = "a cursor for a position rewritten since";
    assert_bad_cursor(&app, &token, &device_cursor, rewritten).await;
    assert_eq!(app.pull_all(&token, 500).await.0.len(), 7);
}

async fn a_database_given_a_new_epoch_refuses_every_cursor_made_before(backend: Backend) {
    let mut app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let changes = (0..4).map(|i| new_visit("para-1", "phone-1", i)).collect();
    app.push(&token, &batch(NET, "phone-1", changes)).await;
    let (_, cursors) = app.pull_all(&token, 2).await;
    let early = cursors[0].clone();
    // Every cursor stands while the epoch does.
    let (status, _) = app
        .get(&token, &format!("/sync/v1/pull?cursor={early}"))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Restored (here: given a new epoch, as a backup's copy has, behind the
    // endpoint's back) and started again.
    restarted_after(
        &backend,
        &mut app,
        "UPDATE {schema}.sync_epoch SET epoch = gen_random_uuid()::text",
        "UPDATE sync_epoch SET epoch = 'restored'",
    )
    .await;
    for cursor in &cursors {
        assert_bad_cursor(&app, &token, cursor, "a cursor from before the new epoch").await;
    }
    // From the beginning, the same four, and cursors of the new epoch.
    let (changes, cursors) = app.pull_all(&token, 2).await;
    assert_eq!(changes.len(), 4);
    let (status, _) = app
        .get(&token, &format!("/sync/v1/pull?cursor={}", cursors[0]))
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn a_cursor_past_the_range_of_sequence_numbers_is_bad_cursor_not_a_500(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    app.push(
        &token,
        &batch(NET, "phone-1", vec![new_visit("para-1", "phone-1", 1)]),
    )
    .await;
    for cursor in [
        "v1.9223372036854775808",
        "v1.1",
        "v2.9223372036854775807.AAAAAAAAAAAAAAAA",
        "v2.9223372036854775808.AAAAAAAAAAAAAAAA",
        "v2.18446744073709551615.AAAAAAAAAAAAAAAA",
        "v2.-1.AAAAAAAAAAAAAAAA",
        "v2.1.AAAAAAAAAAAAAAAA",
    ] {
        assert_bad_cursor(&app, &token, cursor, "not a cursor of this network").await;
    }
}

async fn a_pull_page_stops_at_its_byte_budget_and_later_pages_carry_the_rest(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    // Two pushes of 10 records of about 80 KB: about 1.6 MB in all.
    let changes: Vec<_> = (0..20)
        .map(|i| long_visit("para-1", "phone-1", i, 80_000))
        .collect();
    for chunk in changes.chunks(10) {
        let (status, body) = app
            .push(&token, &batch(NET, "phone-1", chunk.to_vec()))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, page) = app.get(&token, "/sync/v1/pull?limit=500").await;
    assert_eq!(status, StatusCode::OK);
    let first = page["changes"].as_array().unwrap();
    let bytes: usize = first
        .iter()
        .map(|c| c["body"]["record"].to_string().len())
        .sum();
    assert!(
        !first.is_empty() && first.len() < 20,
        "{} changes",
        first.len()
    );
    assert!(bytes as u64 <= MAX_PULL_PAGE_BYTES, "{bytes} bytes");
    assert_eq!(page["more"], json!(true));
    let (pulled, _) = app.pull_all(&token, 500).await;
    let ids: Vec<String> = pulled
        .iter()
        .map(|c| c["change_id"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = changes.iter().map(|c| c.change_id.0.to_string()).collect();
    assert_eq!(ids, expected);
}

async fn a_record_larger_than_the_page_budget_comes_alone_and_the_pull_moves_on(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let (large, small) = (
        new_visit("para-1", "phone-1", 1),
        new_visit("para-1", "phone-1", 2),
    );
    let (status, body) = app
        .push(
            &token,
            &batch(NET, "phone-1", vec![large.clone(), small.clone()]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The domain bounds a record's JSON below the budget now; one stored
    // before those bounds can be larger.
    let mut record = serde_json::to_value(large.body.meta()).unwrap();
    record["padding"] = json!("x".repeat(2 * MAX_PULL_PAGE_BYTES as usize));
    let record = json!({ "meta": record }).to_string();
    replace_body(&backend, &app, &large.change_id.0.to_string(), &record).await;

    let (status, page) = app.get(&token, "/sync/v1/pull").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["changes"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["changes"][0]["change_id"],
        json!(large.change_id.0.to_string())
    );
    assert_eq!(page["more"], json!(true));
    let cursor = page["cursor"].as_str().unwrap();
    let (_, page) = app
        .get(&token, &format!("/sync/v1/pull?cursor={cursor}"))
        .await;
    assert_eq!(page["changes"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["changes"][0]["change_id"],
        json!(small.change_id.0.to_string())
    );
    assert_eq!(page["more"], json!(false));
}

async fn a_version_that_breaks_its_records_lineage_is_rejected_while_the_rest_is_stored(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let base = new_visit("para-1", "phone-1", 1);
    app.push(&token, &batch(NET, "phone-1", vec![base.clone()]))
        .await;
    let version = |record: RecordId, supersedes: Option<VersionId>| {
        let mut meta = VersionMeta::first(
            record,
            VersionId(Uuid::now_v7()),
            ClinicianId::parse("para-1").unwrap(),
            DeviceId::parse("phone-1").unwrap(),
            jiff::Timestamp::now(),
        );
        meta.supersedes = supersedes;
        meta
    };
    // Two versions of a new record, each superseding the other: the second
    // arrives after its own amendment and would close the history into a
    // cycle with no current version.
    let cyclic = RecordId(Uuid::now_v7());
    let mut left = version(cyclic, None);
    let mut right = version(cyclic, None);
    left.supersedes = Some(right.version_id);
    right.supersedes = Some(left.version_id);
    // The correction of a first version the endpoint refused: it amends a
    // version the endpoint never stored, and is the only way that record
    // can reach it.
    let corrected = version(RecordId(Uuid::now_v7()), Some(VersionId(Uuid::now_v7())));
    // A second first version of the stored record.
    let second_root = version(base.body.meta().record_id, None);
    let good = amend(&base, "para-1", "phone-1", 6);
    let changes = vec![
        visit_version(left, 2),
        visit_version(right, 3),
        visit_version(corrected, 4),
        visit_version(second_root, 5),
        good,
    ];
    let (status, body) = app.push(&token, &batch(NET, "phone-1", changes)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        statuses(&body),
        ["accepted", "rejected", "accepted", "rejected", "accepted"]
    );
    for i in [1, 3] {
        let result = &body["results"][i];
        assert_eq!(result["outcome"]["code"], "invalid", "{result}");
        assert_eq!(result["outcome"]["field"], "body.record.meta.supersedes");
    }
    assert_eq!(count_stored(&app).await, 4);
    let (_, forks) = app.get(&token, "/sync/v1/forks").await;
    assert_eq!(forks["forks"], json!([]));
}

async fn an_amendment_naming_a_version_of_another_record_is_rejected_while_the_rest_is_stored(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let held = new_visit("para-1", "phone-1", 1);
    let other = new_visit("para-1", "phone-1", 2);
    let (status, body) = app
        .push(
            &token,
            &batch(NET, "phone-1", vec![held.clone(), other.clone()]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let amending = |record: RecordId, supersedes: VersionId, seed| {
        let mut meta = VersionMeta::first(
            record,
            VersionId(Uuid::now_v7()),
            ClinicianId::parse("para-1").unwrap(),
            DeviceId::parse("phone-1").unwrap(),
            jiff::Timestamp::now(),
        );
        meta.supersedes = Some(supersedes);
        visit_version(meta, seed)
    };
    let held_version = held.body.meta().version_id;
    // A new record's version naming a stored version of another record.
    let into_new_record = amending(RecordId(Uuid::now_v7()), held_version, 3);
    // A stored record's version naming a stored version of another record:
    // accepted, it would show as a second head (a fork) of the wrong record.
    let into_stored_record = amending(other.body.meta().record_id, held_version, 4);
    // A version naming one stored earlier in the same push, of another record.
    let fresh = new_visit("para-1", "phone-1", 5);
    let into_same_push = amending(RecordId(Uuid::now_v7()), fresh.body.meta().version_id, 6);
    // The correction of a version the endpoint never held is still taken.
    let correction = amending(RecordId(Uuid::now_v7()), VersionId(Uuid::now_v7()), 7);
    let good = amend(&held, "para-1", "phone-1", 8);
    let changes = vec![
        into_new_record,
        into_stored_record,
        fresh,
        into_same_push,
        correction,
        good,
    ];
    let (status, body) = app.push(&token, &batch(NET, "phone-1", changes)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        statuses(&body),
        [
            "rejected", "rejected", "accepted", "rejected", "accepted", "accepted"
        ]
    );
    for i in [0, 1, 3] {
        let outcome = &body["results"][i]["outcome"];
        assert_eq!(outcome["code"], "invalid", "{outcome}");
        assert_eq!(outcome["field"], "body.record.meta.supersedes", "{outcome}");
        let reason = outcome["reason"].as_str().unwrap();
        assert!(reason.contains("another record"), "{reason}");
    }
    assert_eq!(count_stored(&app).await, 5);
    let (_, forks) = app.get(&token, "/sync/v1/forks").await;
    assert_eq!(forks["forks"], json!([]), "no record forked");
}

async fn a_version_arriving_after_another_records_amendment_of_it_is_rejected_while_the_rest_is_stored(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let version = |record: RecordId, version: VersionId, supersedes: Option<VersionId>, seed| {
        let mut meta = VersionMeta::first(
            record,
            version,
            ClinicianId::parse("para-1").unwrap(),
            DeviceId::parse("phone-1").unwrap(),
            jiff::Timestamp::now(),
        );
        meta.supersedes = supersedes;
        visit_version(meta, seed)
    };
    let new_id = || VersionId(Uuid::now_v7());
    let new_record = || RecordId(Uuid::now_v7());
    // An amendment naming a version the endpoint does not hold is taken (a
    // correction arrives so); the version it names then arrives under
    // another record.
    let (early, late) = (new_id(), new_id());
    let amendment = version(new_record(), new_id(), Some(early), 1);
    let (status, body) = app
        .push(&token, &batch(NET, "phone-1", vec![amendment]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(statuses(&body), ["accepted"]);
    let named_before = version(new_record(), early, None, 2);
    // The same within one push.
    let amendment_first = version(new_record(), new_id(), Some(late), 3);
    let named_after = version(new_record(), late, None, 4);
    let good = new_visit("para-1", "phone-1", 5);
    let changes = vec![named_before, amendment_first, named_after, good];
    let (status, body) = app.push(&token, &batch(NET, "phone-1", changes)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        statuses(&body),
        ["rejected", "accepted", "rejected", "accepted"]
    );
    for i in [0, 2] {
        let outcome = &body["results"][i]["outcome"];
        assert_eq!(outcome["field"], "body.record.meta.supersedes", "{outcome}");
        let reason = outcome["reason"].as_str().unwrap();
        assert!(
            reason.contains("a version of another record already names this one"),
            "{reason}"
        );
    }
    assert_eq!(count_stored(&app).await, 3);
}

async fn held_names_the_changes_the_callers_network_lacks_and_answers_only_writers(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let east = app.device_token(NET, "para-1", "phone-1");
    let west = app.device_token(OTHER_NET, "para-2", "phone-2");
    let stored: Vec<_> = (0..3).map(|i| new_visit("para-1", "phone-1", i)).collect();
    app.push(&east, &batch(NET, "phone-1", stored.clone()))
        .await;
    let elsewhere = new_visit("para-2", "phone-2", 9);
    app.push(&west, &batch(OTHER_NET, "phone-2", vec![elsewhere.clone()]))
        .await;
    let unknown = Uuid::now_v7().to_string();
    let id = |c: &doorstep_sync::wire::Change| c.change_id.0.to_string();
    let asked = json!({
        "network": NET,
        "change_ids": [id(&stored[0]), unknown, id(&stored[2]), id(&elsewhere)],
    });
    let (status, body) = held(&app, &east, asked.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Another network's change is not this network's to hold.
    assert_eq!(body, json!({"missing": [unknown, id(&elsewhere)]}));

    let system = app.token(NET, TokenRole::PracticeSystem, "emis", None);
    let (status, _) = held(&app, &system, asked.to_string()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Devices built before requests named their network still ask.
    let mut unnamed = asked.clone();
    unnamed.as_object_mut().unwrap().remove("network");
    let (status, body) = held(&app, &east, unnamed.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"missing": [unknown, id(&elsewhere)]}));
    // A device configured for one network and signed in to another is told
    // so, not that the network holds none of its changes.
    let mut west_asks = asked.clone();
    west_asks["network"] = json!(OTHER_NET);
    let (status, body) = held(&app, &east, west_asks.to_string()).await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::FORBIDDEN, &json!("wrong_network"))
    );
    let (status, body) = held(
        &app,
        &east,
        json!({"network": NET, "change_ids": [], "since": 3}).to_string(),
    )
    .await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("bad_request"))
    );
    // An unknown field is named, as the device's engine relies on to tell an
    // endpoint that predates a field from any other refusal.
    assert_eq!(body["field"], json!("since"), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("`since`"),
        "{body}"
    );
    let (status, body) = held(&app, &east, "{not json").await;
    assert_eq!(
        (status, &body["code"]),
        (StatusCode::BAD_REQUEST, &json!("malformed_json"))
    );
    let too_many: Vec<String> = (0..1001).map(|_| Uuid::now_v7().to_string()).collect();
    let (status, _) = held(
        &app,
        &east,
        json!({ "network": NET, "change_ids": too_many }).to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // A revoked device may still ask, as it may still push.
    let coordinator = app.token(NET, TokenRole::Coordinator, "it-desk", None);
    app.send(post(&coordinator, "/sync/v1/devices/phone-1/revoke"))
        .await;
    let (status, _) = held(&app, &east, asked.to_string()).await;
    assert_eq!(status, StatusCode::OK);
}

async fn a_version_written_more_than_the_leeway_ahead_of_the_endpoint_is_refused(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let base = new_visit("para-1", "phone-1", 1);
    app.push(&token, &batch(NET, "phone-1", vec![base.clone()]))
        .await;
    let ahead = |by: jiff::SignedDuration, seed| {
        let meta = base.body.meta().amend(
            VersionId(Uuid::now_v7()),
            ClinicianId::parse("para-1").unwrap(),
            DeviceId::parse("phone-1").unwrap(),
            jiff::Timestamp::now() + by,
        );
        visit_version(meta, seed)
    };
    let seventy_years = jiff::SignedDuration::from_hours(24 * 365 * 70);
    let year = (jiff::Timestamp::now() + seventy_years)
        .to_string()
        .chars()
        .take(4)
        .collect::<String>();
    let far = ahead(seventy_years, 2);
    let just_past = ahead(WRITTEN_AT_LEEWAY + jiff::SignedDuration::from_mins(5), 3);
    let (status, body) = app
        .push(&token, &batch(NET, "phone-1", vec![far, just_past]))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{body}");
    for r in rejected {
        assert_eq!(r["code"], "invalid");
        assert_eq!(r["field"], "body.record.meta.written_at");
        let reason = r["reason"].as_str().unwrap();
        assert!(!reason.contains(&year), "no value echoed: {reason}");
    }
    assert_eq!(count_stored(&app).await, 1);
    // A phone a few hours fast is within the leeway.
    let (status, body) = app
        .push(
            &token,
            &batch(
                NET,
                "phone-1",
                vec![ahead(jiff::SignedDuration::from_hours(3), 4)],
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(statuses(&body), ["accepted"]);
}

/// Asserts that `outcome` (a push result's outcome, or an entry of a 422's
/// `rejected`) refuses a change for amending a version refused in the same
/// push, without quoting the record.
fn refused_with_its_base(outcome: &serde_json::Value) {
    assert_eq!(outcome["code"], "invalid", "{outcome}");
    assert_eq!(outcome["field"], "body.record.meta.supersedes", "{outcome}");
    let reason = outcome["reason"].as_str().unwrap();
    assert!(reason.contains("refused in this push"), "{reason}");
    assert!(
        !reason.contains("Paracetamol"),
        "no clinical text: {reason}"
    );
}

async fn an_amendment_of_a_version_refused_earlier_in_the_push_is_refused_too_so_nothing_forks(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let base = new_visit("para-1", "phone-1", 1);
    app.push(&token, &batch(NET, "phone-1", vec![base.clone()]))
        .await;
    // A second first version of the stored record (refused for its
    // lineage), with two amendments built on it. Taken, the first of them
    // would stand beside the stored version as a second head: a fork no
    // clinician made.
    let mut root = base.body.meta().clone();
    root.version_id = VersionId(Uuid::now_v7());
    let refused = visit_version(root, 2);
    let on_refused = amend(&refused, "para-1", "phone-1", 3);
    let on_that = amend(&on_refused, "para-1", "phone-1", 4);
    let good = amend(&base, "para-1", "phone-1", 5);
    let (status, body) = app
        .push(
            &token,
            &batch(NET, "phone-1", vec![refused, on_refused, on_that, good]),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        statuses(&body),
        ["rejected", "rejected", "rejected", "accepted"]
    );
    for i in [1, 2] {
        refused_with_its_base(&body["results"][i]["outcome"]);
    }
    assert_eq!(count_stored(&app).await, 2);
    let (_, forks) = app.get(&token, "/sync/v1/forks").await;
    assert_eq!(forks["forks"], json!([]), "no record forked");
}

async fn a_422_names_every_change_built_on_one_it_refuses_so_none_arrives_later_alone(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let base = new_visit("para-1", "phone-1", 1);
    let (status, body) = app
        .push(&token, &batch(NET, "phone-1", vec![base.clone()]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // An amendment written on a phone whose clock was days ahead, and one
    // written on top of it once the clock was put right.
    let ahead = base.body.meta().amend(
        VersionId(Uuid::now_v7()),
        ClinicianId::parse("para-1").unwrap(),
        DeviceId::parse("phone-1").unwrap(),
        jiff::Timestamp::now() + WRITTEN_AT_LEEWAY + jiff::SignedDuration::from_hours(48),
    );
    let ahead = visit_version(ahead, 2);
    let on_ahead = amend(&ahead, "para-1", "phone-1", 3);
    // A new record failing the domain's checks, with an amendment of it.
    let impossible = new_visit("para-1", "phone-1", 4);
    let on_impossible = amend(&impossible, "para-1", "phone-1", 5);
    let unrelated = new_visit("para-1", "phone-1", 6);
    let changes = vec![
        ahead,
        on_ahead,
        impossible,
        on_impossible,
        unrelated.clone(),
    ];
    let mut request = serde_json::to_value(batch(NET, "phone-1", changes.clone())).unwrap();
    request["changes"][2]["body"]["record"]["content"]["observations"][0]["values"]["pulse"] =
        json!(900);
    let (status, answer) = app.push_raw(&token, request.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let rejected = answer["rejected"].as_array().unwrap();
    let named: Vec<_> = rejected.iter().map(|r| r["index"].clone()).collect();
    assert_eq!(named, [json!(0), json!(1), json!(2), json!(3)], "{answer}");
    assert_eq!(rejected[0]["field"], "body.record.meta.written_at");
    for i in [1, 3] {
        refused_with_its_base(&rejected[i]);
        assert_eq!(
            rejected[i]["change_id"],
            json!(changes[i].change_id.0.to_string())
        );
    }
    assert!(!echoes(&answer, "900"), "{answer}");
    assert_eq!(count_stored(&app).await, 1, "nothing of the push stored");
    // What the device pushes next: the rest.
    let (status, body) = app
        .push(&token, &batch(NET, "phone-1", vec![unrelated]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(statuses(&body), ["accepted"]);
}

/// The record ids `/forks` lists for `token`, with their heads, on one page.
async fn forks_listed(app: &TestApp, token: &str) -> Vec<(String, Vec<String>)> {
    let (status, body) = app.get(token, "/sync/v1/forks").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["forks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let heads = f["heads"].as_array().unwrap();
            (
                f["record_id"].as_str().unwrap().to_owned(),
                heads
                    .iter()
                    .map(|h| h.as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

fn id_of(change: &doorstep_sync::wire::Change) -> String {
    change.body.meta().version_id.0.to_string()
}

async fn a_version_merging_the_other_head_reconciles_a_fork_and_forks_no_longer_lists_it(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let Forked {
        a,
        b,
        base,
        left,
        right,
        ..
    } = fork_by_two_devices(&app).await;
    let record = base.body.meta().record_id.0.to_string();
    let listed = forks_listed(&app, &a).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, record);

    // The clinician keeps the left branch and merges the right.
    let merge = reconcile(&left, &[&right], "para-1", "phone-1", 4);
    let (status, third) = app
        .push(&a, &batch(NET, "phone-1", vec![merge.clone()]))
        .await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(statuses(&third), ["accepted"], "{third}");
    assert_eq!(forks_listed(&app, &a).await, [], "reconciled");
    assert_eq!(forks_rows(&backend, &app).await, 0);

    // The endpoint reads the merge back as pushed: an amendment of it is
    // the record's one head, not a fork with the merged branch.
    let after = amend(&merge, "para-2", "phone-2", 5);
    let (_, fourth) = app
        .push(&b, &batch(NET, "phone-2", vec![after.clone()]))
        .await;
    assert_eq!(statuses(&fourth), ["accepted"], "{fourth}");
    assert_eq!(forks_listed(&app, &a).await, []);

    // A pull hands the merge out with its merges intact.
    let (pulled, _) = app.pull_all(&b, 500).await;
    let found = pulled
        .iter()
        .find(|c| c["change_id"] == json!(merge.change_id.0.to_string()))
        .expect("the merge is pulled");
    assert_eq!(
        found["body"]["record"]["meta"]["merges"],
        json!([id_of(&right)]),
        "{found}"
    );
    let parsed: doorstep_sync::wire::Change = serde_json::from_value(found.clone()).unwrap();
    assert_eq!(parsed, merge);
    // A version that merges nothing has no `merges` on the wire.
    let plain = pulled
        .iter()
        .find(|c| c["change_id"] == json!(left.change_id.0.to_string()))
        .unwrap();
    assert!(
        plain["body"]["record"]["meta"].get("merges").is_none(),
        "{plain}"
    );

    // A later fork of the same record is listed again.
    let one = amend(&after, "para-1", "phone-1", 6);
    let two = amend(&after, "para-2", "phone-2", 7);
    app.push(&a, &batch(NET, "phone-1", vec![one])).await;
    let (_, fifth) = app.push(&b, &batch(NET, "phone-2", vec![two])).await;
    assert_eq!(statuses(&fifth), ["forked"]);
    let listed = forks_listed(&app, &a).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].0, record);
    assert_eq!(forks_rows(&backend, &app).await, 1);
}

async fn a_merge_of_some_heads_leaves_the_fork_listed_with_the_rest(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let base = new_visit("para-1", "phone-1", 1);
    let heads: Vec<_> = (2..5)
        .map(|seed| amend(&base, "para-1", "phone-1", seed))
        .collect();
    let mut changes = vec![base.clone()];
    changes.extend(heads.iter().cloned());
    let (_, body) = app.push(&token, &batch(NET, "phone-1", changes)).await;
    assert_eq!(
        statuses(&body),
        ["accepted", "accepted", "forked", "forked"]
    );
    // Two of the three heads reconciled: still forked, by the merge and the
    // third, as the endpoint reads the merge back from storage.
    let merge = reconcile(&heads[0], &[&heads[1]], "para-1", "phone-1", 5);
    let (_, body) = app
        .push(&token, &batch(NET, "phone-1", vec![merge.clone()]))
        .await;
    assert_eq!(statuses(&body), ["forked"], "{body}");
    let listed = forks_listed(&app, &token).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let mut listed_heads = listed[0].1.clone();
    listed_heads.sort();
    let mut expected = vec![id_of(&merge), id_of(&heads[2])];
    expected.sort();
    assert_eq!(listed_heads, expected);
    // The rest, merged in turn.
    let last = reconcile(&merge, &[&heads[2]], "para-1", "phone-1", 6);
    let (_, body) = app.push(&token, &batch(NET, "phone-1", vec![last])).await;
    assert_eq!(statuses(&body), ["accepted"], "{body}");
    assert_eq!(forks_listed(&app, &token).await, []);
}

/// Asserts that `outcome` (a push result's outcome, or an entry of a 422's
/// `rejected`) refuses a change for what it merges, with a reason holding
/// `says`.
fn refused_merge(outcome: &serde_json::Value, says: &str) {
    assert_eq!(outcome["code"], "invalid", "{outcome}");
    assert_eq!(outcome["field"], "body.record.meta.merges", "{outcome}");
    let reason = outcome["reason"].as_str().unwrap();
    assert!(reason.contains(says), "{reason}");
}

async fn a_merge_of_a_version_not_held_under_its_record_is_rejected_while_the_rest_is_stored(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let base = new_visit("para-1", "phone-1", 1);
    let left = amend(&base, "para-1", "phone-1", 2);
    let right = amend(&base, "para-1", "phone-1", 3);
    let elsewhere = new_visit("para-1", "phone-1", 4);
    app.push(
        &token,
        &batch(
            NET,
            "phone-1",
            vec![base, left.clone(), right.clone(), elsewhere.clone()],
        ),
    )
    .await;
    let never_pushed = amend(&left, "para-1", "phone-1", 5);
    let unknown = reconcile(&left, &[&never_pushed], "para-1", "phone-1", 6);
    let foreign = reconcile(&left, &[&elsewhere], "para-1", "phone-1", 7);
    let good = reconcile(&left, &[&right], "para-1", "phone-1", 8);
    let (status, body) = app
        .push(&token, &batch(NET, "phone-1", vec![unknown, foreign, good]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(statuses(&body), ["rejected", "rejected", "accepted"]);
    refused_merge(&body["results"][0]["outcome"], "does not hold");
    refused_merge(&body["results"][1]["outcome"], "another record");
    assert_eq!(count_stored(&app).await, 5);
    assert_eq!(forks_listed(&app, &token).await, []);
}

async fn a_422_names_a_merge_of_a_change_it_refuses_and_what_amends_that_merge(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let base = new_visit("para-1", "phone-1", 1);
    let left = amend(&base, "para-1", "phone-1", 2);
    app.push(
        &token,
        &batch(NET, "phone-1", vec![base.clone(), left.clone()]),
    )
    .await;
    // A branch written on a phone whose clock was days ahead, merged at once.
    let ahead = base.body.meta().amend(
        VersionId(Uuid::now_v7()),
        ClinicianId::parse("para-1").unwrap(),
        DeviceId::parse("phone-1").unwrap(),
        jiff::Timestamp::now() + WRITTEN_AT_LEEWAY + jiff::SignedDuration::from_hours(48),
    );
    let ahead = visit_version(ahead, 3);
    let merge = reconcile(&left, &[&ahead], "para-1", "phone-1", 4);
    let on_merge = amend(&merge, "para-1", "phone-1", 5);
    let unrelated = new_visit("para-1", "phone-1", 6);
    // The merge's amendment comes first: the chain is followed in any order.
    let changes = vec![on_merge.clone(), ahead, merge.clone(), unrelated];
    let (status, answer) = app.push(&token, &batch(NET, "phone-1", changes)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    let rejected = answer["rejected"].as_array().unwrap();
    let named: Vec<_> = rejected.iter().map(|r| r["index"].clone()).collect();
    assert_eq!(named, [json!(0), json!(1), json!(2)], "{answer}");
    refused_with_its_base(&rejected[0]);
    assert_eq!(rejected[1]["field"], "body.record.meta.written_at");
    refused_merge(&rejected[2], "refused in this push");
    assert_eq!(
        rejected[2]["change_id"],
        json!(merge.change_id.0.to_string())
    );
    assert_eq!(count_stored(&app).await, 2, "nothing of the push stored");
}

async fn a_database_from_before_merges_gets_their_table_when_the_endpoint_starts(backend: Backend) {
    let mut app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let base = new_visit("para-1", "phone-1", 1);
    let left = amend(&base, "para-1", "phone-1", 2);
    let right = amend(&base, "para-1", "phone-1", 3);
    let (_, body) = app
        .push(
            &token,
            &batch(NET, "phone-1", vec![base, left.clone(), right.clone()]),
        )
        .await;
    assert_eq!(statuses(&body), ["accepted", "accepted", "forked"]);
    // The database as an endpoint built before merges left it, started
    // again by this one.
    restarted_after(
        &backend,
        &mut app,
        "DROP TABLE {schema}.sync_merges",
        "DROP TABLE sync_merges",
    )
    .await;
    assert_eq!(forks_listed(&app, &token).await.len(), 1);
    let merge = reconcile(&left, &[&right], "para-1", "phone-1", 4);
    let (status, body) = app
        .push(&token, &batch(NET, "phone-1", vec![merge.clone()]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(statuses(&body), ["accepted"], "{body}");
    assert_eq!(forks_listed(&app, &token).await, []);
    let on_merge = amend(&merge, "para-1", "phone-1", 5);
    let (_, body) = app
        .push(&token, &batch(NET, "phone-1", vec![on_merge]))
        .await;
    assert_eq!(statuses(&body), ["accepted"], "{body}");
}

/// Pushes `n` records whose histories fork (a first version and two
/// amendments of it), in as few pushes as the batch limit allows. Returns
/// their record ids in the order `/forks` lists them: by record id.
async fn push_forked_records(app: &TestApp, token: &str, n: u64) -> Vec<String> {
    let mut changes = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let base = new_visit("para-1", "phone-1", 3 * i);
        let left = amend(&base, "para-1", "phone-1", 3 * i + 1);
        let right = amend(&base, "para-1", "phone-1", 3 * i + 2);
        ids.push(base.body.meta().record_id.0.to_string());
        changes.extend([base, left, right]);
    }
    // Whole forks per push: a multiple of three changes.
    for chunk in changes.chunks(MAX_PUSH_CHANGES / 3 * 3) {
        let (status, body) = app
            .push(token, &batch(NET, "phone-1", chunk.to_vec()))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let forked = statuses(&body).iter().filter(|s| *s == "forked").count();
        assert_eq!(forked, chunk.len() / 3);
    }
    ids.sort();
    ids
}

/// Lists every fork page by page from the beginning, `limit` at a time;
/// returns the record ids listed and each page's length.
async fn list_all_forks(app: &TestApp, token: &str, limit: u32) -> (Vec<String>, Vec<usize>) {
    let mut listed: Vec<String> = Vec::new();
    let mut pages = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = app
            .get(
                token,
                &format!("/sync/v1/forks?after={after}&limit={limit}"),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let forks = page["forks"].as_array().unwrap();
        pages.push(forks.len());
        for fork in forks {
            assert_eq!(fork["heads"].as_array().unwrap().len(), 2, "{fork}");
            listed.push(fork["record_id"].as_str().unwrap().to_owned());
        }
        if page["more"] == json!(false) {
            assert!(
                page.get("after").is_none(),
                "a last page names no next: {page}"
            );
            return (listed, pages);
        }
        assert_eq!(page["more"], json!(true), "{page}");
        assert_eq!(page["after"], json!(listed.last().unwrap()), "{page}");
        after = page["after"].as_str().unwrap().to_owned();
    }
}

async fn forks_come_in_pages_of_the_limit_by_record_id_and_after_goes_on_where_a_page_ended(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let expected = push_forked_records(&app, &token, 5).await;
    let (listed, pages) = list_all_forks(&app, &token, 2).await;
    assert_eq!(pages, [2, 2, 1]);
    assert_eq!(listed, expected, "each fork once, in record id order");
    // A record id of no fork is still a place in that order.
    let (status, page) = app
        .get(&token, &format!("/sync/v1/forks?after={}", Uuid::nil()))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["forks"].as_array().unwrap().len(), 5);
    // Another network's listing is empty, whatever `after` it sends.
    let west = app.device_token(OTHER_NET, "para-2", "phone-2");
    let (status, page) = app
        .get(&west, &format!("/sync/v1/forks?after={}", Uuid::nil()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, json!({"forks": [], "more": false}));
    // The wire type reads a page, and one from before paging (no `more`)
    // as the whole list.
    let (_, page) = app.get(&token, "/sync/v1/forks?limit=2").await;
    let read: ForksResponse = serde_json::from_value(page).unwrap();
    assert_eq!((read.forks.len(), read.more), (2, true));
    assert_eq!(read.after, Some(read.forks[1].record_id));
    let old: ForksResponse = serde_json::from_value(json!({"forks": []})).unwrap();
    assert_eq!((old.more, old.after), (false, None));
}

async fn a_forks_page_without_a_limit_holds_the_default_and_never_more_than_the_maximum(
    backend: Backend,
) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let expected = push_forked_records(&app, &token, u64::from(DEFAULT_FORKS_LIMIT) + 1).await;
    let (status, page) = app.get(&token, "/sync/v1/forks").await;
    assert_eq!(status, StatusCode::OK);
    let first = page["forks"].as_array().unwrap();
    assert_eq!(first.len(), DEFAULT_FORKS_LIMIT as usize);
    assert_eq!(page["more"], json!(true));
    let after = page["after"].as_str().unwrap();
    assert_eq!(after, expected[DEFAULT_FORKS_LIMIT as usize - 1]);
    let (_, rest) = app
        .get(&token, &format!("/sync/v1/forks?after={after}"))
        .await;
    assert_eq!(
        rest["forks"][0]["record_id"],
        json!(expected.last().unwrap())
    );
    assert_eq!(rest["more"], json!(false));
    let (listed, pages) = list_all_forks(&app, &token, MAX_FORKS_LIMIT).await;
    assert_eq!(
        (listed, pages),
        (expected, vec![DEFAULT_FORKS_LIMIT as usize + 1])
    );
}

async fn a_malformed_forks_query_is_400_naming_the_parameter(backend: Backend) {
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    push_forked_records(&app, &token, 1).await;
    let too_many = format!("limit={}", MAX_FORKS_LIMIT + 1);
    for (query, field) in [
        ("after=garbage", Some("after")),
        ("after=12", Some("after")),
        ("after=v2.1.AAAAAAAAAAAAAAAA", Some("after")),
        ("limit=0", Some("limit")),
        (too_many.as_str(), Some("limit")),
        ("limit=-1", None),
        ("limit=ten", None),
        ("since=3", None),
    ] {
        let (status, body) = app.get(&token, &format!("/sync/v1/forks?{query}")).await;
        assert_eq!(
            (status, body["code"].clone()),
            (StatusCode::BAD_REQUEST, json!("bad_request")),
            "{query}: {body}"
        );
        if let Some(field) = field {
            assert_eq!(body["field"], json!(field), "{query}: {body}");
        }
    }
}

/// `POST /sync/v1/held` with `body` as JSON.
async fn held(
    app: &TestApp,
    token: &str,
    body: impl Into<Body>,
) -> (StatusCode, serde_json::Value) {
    app.send(
        Request::post("/sync/v1/held")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.into())
            .unwrap(),
    )
    .await
}

fn post(token: &str, uri: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

/// Rolls the network back to its first `seq` changes behind the endpoint's
/// back, as restoring an older backup of the database would.
async fn restore_to(backend: &Backend, app: &TestApp, seq: i64) {
    let statements = [
        format!("DELETE FROM sync_changes WHERE network = '{NET}' AND seq > {seq}"),
        format!("UPDATE sync_networks SET last_seq = {seq} WHERE network = '{NET}'"),
    ];
    match (backend, &app.schema) {
        (Backend::Postgres(url), Some(schema)) => {
            let client = owner(url).await;
            client
                .batch_execute(&format!(
                    "SET search_path = {schema}; {}",
                    statements.join("; ")
                ))
                .await
                .unwrap();
        }
        _ => {
            let conn = rusqlite::Connection::open(app.dir.path().join("server.sqlite3")).unwrap();
            conn.execute_batch(&statements.join("; ")).unwrap();
        }
    }
}

/// Replaces a stored change's record JSON behind the endpoint's back, as a
/// record stored by an older endpoint with looser checks would read.
async fn replace_body(backend: &Backend, app: &TestApp, change_id: &str, body: &str) {
    match (backend, &app.schema) {
        (Backend::Postgres(url), Some(schema)) => {
            let client = owner(url).await;
            let sql = format!("UPDATE {schema}.sync_changes SET body = $1 WHERE change_id = $2");
            let id = Uuid::parse_str(change_id).unwrap();
            client.execute(&sql, &[&body, &id]).await.unwrap();
        }
        _ => {
            let conn = rusqlite::Connection::open(app.dir.path().join("server.sqlite3")).unwrap();
            conn.execute(
                "UPDATE sync_changes SET body = ?1 WHERE change_id = ?2",
                [body, change_id],
            )
            .unwrap();
        }
    }
}

/// How many rows the forks table holds for the network, read behind the
/// endpoint's back: `/forks` reads each listed record's history and leaves
/// out one no longer forked, so it cannot tell a row left behind.
async fn forks_rows(backend: &Backend, app: &TestApp) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM sync_forks WHERE network = '{NET}'");
    match (backend, &app.schema) {
        (Backend::Postgres(url), Some(schema)) => {
            let client = owner(url).await;
            client
                .batch_execute(&format!("SET search_path = {schema}"))
                .await
                .unwrap();
            client.query_one(&sql, &[]).await.unwrap().get(0)
        }
        _ => rusqlite::Connection::open(app.dir.path().join("server.sqlite3"))
            .unwrap()
            .query_row(&sql, [], |r| r.get(0))
            .unwrap(),
    }
}

/// Drops the changes table behind the endpoint's back.
async fn break_storage(backend: &Backend, app: &TestApp) {
    match (backend, &app.schema) {
        (Backend::Postgres(url), Some(schema)) => {
            let client = owner(url).await;
            client
                .batch_execute(&format!("DROP TABLE {schema}.sync_changes"))
                .await
                .unwrap();
        }
        _ => {
            let conn = rusqlite::Connection::open(app.dir.path().join("server.sqlite3")).unwrap();
            conn.execute_batch("DROP TABLE sync_changes").unwrap();
        }
    }
}

async fn a_change_stored_before_the_checks_grew_stricter_is_a_duplicate_when_sent_again(
    backend: Backend,
) {
    // Stored by a build whose checks let it in (here, straight into storage: written more
    // than the leeway ahead, which today's push refuses); its answer was lost, so the device
    // sends it again. Refused, the device would correct a version colleagues already have.
    let app = TestApp::new(&backend).await;
    let token = app.device_token(NET, "para-1", "phone-1");
    let ahead = |seed| {
        let meta = VersionMeta::first(
            RecordId(Uuid::now_v7()),
            VersionId(Uuid::now_v7()),
            ClinicianId::parse("para-1").unwrap(),
            DeviceId::parse("phone-1").unwrap(),
            jiff::Timestamp::now() + WRITTEN_AT_LEEWAY + jiff::SignedDuration::from_hours(48),
        );
        visit_version(meta, seed)
    };
    let stored = ahead(1);
    let ChangeBody::VisitRecord(record) = &stored.body else {
        unreachable!("visit_version makes visit records")
    };
    let scope = NetworkScope::for_verified_network(NetworkId::parse(NET).unwrap());
    let checked = CheckedChange {
        change_id: stored.change_id,
        kind: ChangeKind::VisitRecord,
        meta: record.meta.clone(),
        body: serde_json::to_string(record).unwrap(),
    };
    app.state.storage.push(&scope, vec![checked]).await.unwrap();
    let fresh = new_visit("para-1", "phone-1", 2);
    let (status, body) = app
        .push(&token, &batch(NET, "phone-1", vec![stored.clone(), fresh]))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(statuses(&body), ["duplicate", "accepted"]);
    assert_eq!(count_stored(&app).await, 2);
    // Another record under that change id is judged by today's checks, and refused.
    let mut other = ahead(3);
    other.change_id = stored.change_id;
    let (status, body) = app.push(&token, &batch(NET, "phone-1", vec![other])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["rejected"][0]["field"], "body.record.meta.written_at");
    assert_eq!(count_stored(&app).await, 2);
}

async fn a_stored_change_the_domain_refuses_today_is_a_duplicate_only_from_its_own_device(
    backend: Backend,
) {
    // A record the domain's checks refuse today (an override in its text), stored when
    // they did not: its own device sending it again hears duplicate; another device
    // sending the same bytes is refused, as anything it sends of another's is.
    let app = TestApp::new(&backend).await;
    let change = new_visit("para-1", "phone-1", 1);
    let ChangeBody::VisitRecord(record) = &change.body else {
        unreachable!("new_visit makes visit records")
    };
    let mut request = serde_json::to_value(batch(NET, "phone-1", vec![change.clone()])).unwrap();
    request["changes"][0]["body"]["record"]["content"]["treatment"] =
        json!("Morphine \u{202E}gm 01");
    let scope = NetworkScope::for_verified_network(NetworkId::parse(NET).unwrap());
    let checked = CheckedChange {
        change_id: change.change_id,
        kind: ChangeKind::VisitRecord,
        meta: record.meta.clone(),
        body: request["changes"][0]["body"]["record"].to_string(),
    };
    app.state.storage.push(&scope, vec![checked]).await.unwrap();
    let own = app.device_token(NET, "para-1", "phone-1");
    let (status, body) = app.push_raw(&own, request.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(statuses(&body), ["duplicate"]);
    let other = app.device_token(NET, "para-2", "phone-2");
    request["device"] = json!("phone-2");
    let (status, body) = app.push_raw(&other, request.to_string()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        body["rejected"][0]["field"],
        "body.record.content.treatment"
    );
    assert_eq!(count_stored(&app).await, 1);
}

crate::on_both_backends!(
    a_change_stored_before_the_checks_grew_stricter_is_a_duplicate_when_sent_again,
    a_stored_change_the_domain_refuses_today_is_a_duplicate_only_from_its_own_device,
    pushing_the_same_batch_twice_stores_it_once_and_answers_duplicate,
    pull_pages_come_in_push_order_and_the_cursor_only_moves_forward,
    two_devices_amending_one_version_both_survive_and_the_fork_is_listed,
    a_reused_change_id_is_rejected_while_the_rest_of_the_batch_is_stored,
    a_medication_review_cannot_amend_a_visit_record,
    an_impossible_clinical_value_is_422_naming_the_change_and_field_and_nothing_is_stored,
    malformed_unknown_oversized_and_mistyped_bodies_are_precise_4xx_and_store_nothing,
    a_push_for_another_network_or_by_another_device_or_author_is_refused,
    a_revoked_device_may_push_its_last_changes_but_not_pull_or_list_forks,
    roles_decide_who_may_push_and_read,
    a_storage_failure_is_a_plain_500_with_no_detail,
    healthz_jwks_and_unknown_paths_answer_without_a_token,
    a_cursor_made_for_another_network_is_bad_cursor,
    a_cursor_from_before_a_database_restore_is_bad_cursor_even_after_new_pushes,
    a_cursor_past_the_range_of_sequence_numbers_is_bad_cursor_not_a_500,
    a_database_given_a_new_epoch_refuses_every_cursor_made_before,
    a_pull_page_stops_at_its_byte_budget_and_later_pages_carry_the_rest,
    a_record_larger_than_the_page_budget_comes_alone_and_the_pull_moves_on,
    a_version_that_breaks_its_records_lineage_is_rejected_while_the_rest_is_stored,
    a_version_written_more_than_the_leeway_ahead_of_the_endpoint_is_refused,
    an_amendment_naming_a_version_of_another_record_is_rejected_while_the_rest_is_stored,
    a_version_arriving_after_another_records_amendment_of_it_is_rejected_while_the_rest_is_stored,
    held_names_the_changes_the_callers_network_lacks_and_answers_only_writers,
    an_amendment_of_a_version_refused_earlier_in_the_push_is_refused_too_so_nothing_forks,
    a_422_names_every_change_built_on_one_it_refuses_so_none_arrives_later_alone,
    forks_come_in_pages_of_the_limit_by_record_id_and_after_goes_on_where_a_page_ended,
    a_forks_page_without_a_limit_holds_the_default_and_never_more_than_the_maximum,
    a_malformed_forks_query_is_400_naming_the_parameter,
    a_version_merging_the_other_head_reconciles_a_fork_and_forks_no_longer_lists_it,
    a_merge_of_some_heads_leaves_the_fork_listed_with_the_rest,
    a_merge_of_a_version_not_held_under_its_record_is_rejected_while_the_rest_is_stored,
    a_422_names_a_merge_of_a_change_it_refuses_and_what_amends_that_merge,
    a_database_from_before_merges_gets_their_table_when_the_endpoint_starts,
);
