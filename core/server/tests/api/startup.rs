//! The endpoint as `doorstep serve` starts it: configuration, the key kept in
//! the data directory, an identity provider's JWKS fetched from a URL; and
//! what its logs say (request ids, no patient identifiers or clinical text).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_server::auth::{JwksSource, SigningKey, TokenRole};
use doorstep_server::token::{TokenRequest, issue};
use doorstep_server::{Application, Config};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::helpers::{Backend, TestApp, batch, new_visit};

async fn serve_router(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_application_starts_from_config_and_trusts_an_idp_jwks_url() {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "idp-1", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]});
    let idp = serve_router(Router::new().route(
        "/jwks.json",
        get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    ))
    .await;

    let data = tempfile::tempdir().unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
    let issuer = "https://login.example-ics.nhs.uk";
    config.outside = Some((
        JwksSource::parse(&format!("http://{idp}/jwks.json")),
        issuer.to_owned(),
    ));
    let app = Application::build(config).await.unwrap();
    let addr = app.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let pull = format!("http://{addr}/sync/v1/pull");
    let now = jiff::Timestamp::now().as_second();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("idp-1".into());
    let idp_token = jsonwebtoken::encode(
        &header,
        &json!({"iss": issuer, "aud": "doorstep-sync", "sub": "emis-d99001", "nbf": now,
                "exp": now + 300, "net": "east-dorset", "role": "practice_system"}),
        &EncodingKey::from_ec_der(pkcs8.as_ref()),
    )
    .unwrap();
    let status = client
        .get(&pull)
        .bearer_auth(&idp_token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "the IdP's token is trusted");

    // `doorstep token issue` signs with the key the endpoint made in --data.
    let key = SigningKey::load_or_create(data.path()).unwrap();
    let own = issue(
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
    let response = client.get(&pull).bearer_auth(&own).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        data.path().join(doorstep_server::app::SQLITE_FILE).exists(),
        "the embedded default keeps its data in --data"
    );
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
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = TestApp::new(&Backend::Sqlite).await;
    let token = app.device_token("east-dorset", "para-1", "phone-1");
    let good = new_visit("para-1", "phone-1", 7);
    let bad = new_visit("para-1", "phone-1", 8);
    let mut secrets = Vec::new();
    for change in [&good, &bad] {
        if let doorstep_sync::wire::ChangeBody::VisitRecord(r) = &change.body {
            secrets.push(r.content.patient.as_str().to_owned());
            secrets.push(r.content.assessment.as_str().to_owned());
        }
    }
    app.push(&token, &batch("east-dorset", "phone-1", vec![good]))
        .await;
    let mut body = serde_json::to_value(batch("east-dorset", "phone-1", vec![bad])).unwrap();
    body["changes"][0]["body"]["record"]["content"]["observations"][0]["values"]["pulse"] =
        json!(900);
    app.push_raw(&token, body.to_string()).await;
    app.get(&token, "/sync/v1/pull").await;

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
