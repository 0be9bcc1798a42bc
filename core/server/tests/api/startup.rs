//! The endpoint as `doorstep serve` starts it: configuration, the key kept in
//! the data directory, an identity provider's JWKS fetched from a URL.

use std::net::SocketAddr;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use doorstep_domain::network::{DeviceId, NetworkId};
use doorstep_server::app::ConnectionLimits;
use doorstep_server::auth::{JwksSource, SigningKey, TokenRole};
use doorstep_server::token::{TokenRequest, issue};
use doorstep_server::{Application, Config};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    // Many providers send no `nbf`: their token is valid from its issue.
    let without_nbf = jsonwebtoken::encode(
        &header,
        &json!({"iss": issuer, "aud": "doorstep-sync", "sub": "emis-d99001", "iat": now,
                "exp": now + 300, "net": "east-dorset", "role": "practice_system"}),
        &EncodingKey::from_ec_der(pkcs8.as_ref()),
    )
    .unwrap();
    let response = client
        .get(&pull)
        .bearer_auth(&without_nbf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "a provider's token without nbf");
    // One with an `nbf` still to come is refused as any other is.
    let not_yet = jsonwebtoken::encode(
        &header,
        &json!({"iss": issuer, "aud": "doorstep-sync", "sub": "emis-d99001", "nbf": now + 600,
                "exp": now + 900, "net": "east-dorset", "role": "practice_system"}),
        &EncodingKey::from_ec_der(pkcs8.as_ref()),
    )
    .unwrap();
    let response = client
        .get(&pull)
        .bearer_auth(&not_yet)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401, "a provider's token not valid yet");

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_that_would_refuse_every_token_are_refused_at_start() {
    // A key set whose only key is a shared secret, and one whose key has no kid.
    for keys in [
        json!([{"kty": "oct", "kid": "k1", "alg": "HS256", "k": "c2VjcmV0"}]),
        json!([{"kty": "EC", "crv": "P-256", "alg": "ES256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]),
    ] {
        let data = tempfile::tempdir().unwrap();
        let path = data.path().join("jwks.json");
        std::fs::write(&path, json!({"keys": keys}).to_string()).unwrap();
        let mut config = Config::new("127.0.0.1:0".parse().unwrap(), data.path().join("data"));
        config.outside = Some((
            JwksSource::parse(path.to_str().unwrap()),
            "https://login.example-ics.nhs.uk".to_owned(),
        ));
        let err = Application::build(config).await.err().expect("refused");
        assert!(
            err.to_string()
                .contains("none of the 1 keys in it can be trusted"),
            "{err}"
        );
    }

    let data = tempfile::tempdir().unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
    config.audience = " ".into();
    let err = Application::build(config).await.err().expect("refused");
    assert!(err.to_string().contains("the audience is empty"), "{err}");

    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
    config.outside = Some((JwksSource::parse("/nowhere/jwks.json"), String::new()));
    let err = Application::build(config).await.err().expect("refused");
    assert!(err.to_string().contains("issuer is empty"), "{err}");
}

#[tokio::test]
async fn a_key_set_file_with_no_end_is_refused_not_read_into_memory() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
    config.outside = Some((
        JwksSource::parse("/dev/zero"),
        "https://login.example-ics.nhs.uk".to_owned(),
    ));
    let err = Application::build(config).await.err().expect("refused");
    assert!(err.to_string().contains("not a key set"), "{err}");
}

#[tokio::test]
async fn a_key_set_over_plain_http_from_another_machine_is_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
    config.outside = Some((
        JwksSource::parse("http://login.example-ics.nhs.uk/jwks.json"),
        "https://login.example-ics.nhs.uk".to_owned(),
    ));
    let err = Application::build(config).await.err().expect("refused");
    assert!(
        err.to_string().contains("must be fetched over https"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_set_url_that_redirects_to_plain_http_is_refused_at_start() {
    let idp = serve_router(Router::new().route(
        "/jwks.json",
        get(|| async {
            axum::response::Redirect::temporary("http://login.example-ics.nhs.uk/jwks.json")
        }),
    ))
    .await;
    let data = tempfile::tempdir().unwrap();
    let mut config = Config::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
    config.outside = Some((
        JwksSource::parse(&format!("http://{idp}/jwks.json")),
        "https://login.example-ics.nhs.uk".to_owned(),
    ));
    let err = Application::build(config).await.err().expect("refused");
    assert!(
        err.to_string()
            .contains("redirected to http://login.example-ics.nhs.uk/jwks.json: must use https"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_endpoint_on_the_same_data_directory_refuses_to_start() {
    let data = tempfile::tempdir().unwrap();
    let config = Config::new("127.0.0.1:0".parse().unwrap(), data.path().to_path_buf());
    let first = Application::build(config.clone()).await.unwrap();
    let err = Application::build(config.clone())
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("an endpoint is serving from"),
        "{err}"
    );
    // Once the first is gone, the directory is free again.
    drop(first);
    assert!(Application::build(config).await.is_ok());
}

/// Sends `GET /healthz` on `stream` and reads the status line, or `None`
/// when no answer starts within `wait`.
async fn health_status(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: endpoint\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0_u8; 12];
    tokio::time::timeout(wait, stream.read_exact(&mut answer))
        .await
        .ok()?
        .ok()?;
    Some(String::from_utf8_lossy(&answer).into_owned())
}

/// Starts an endpoint on a fresh data directory under `limits`; its
/// address, the sender that stops it and its task.
async fn start_with(
    data: &std::path::Path,
    limits: ConnectionLimits,
) -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let config = Config::new("127.0.0.1:0".parse().unwrap(), data.to_path_buf());
    let app = Application::build(config)
        .await
        .unwrap()
        .with_limits(limits);
    let addr = app.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    (addr, stop, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_slow_to_send_its_headers_is_cut_off() {
    let data = tempfile::tempdir().unwrap();
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_millis(300),
        max_connections: 16,
    };
    let (addr, stop, server) = start_with(data.path(), limits).await;
    // A client that starts a request and never finishes its headers is
    // closed once the timeout has passed.
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: endpoint\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the connection was still open after 10 s");
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "the half-sent request was answered"
    );
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_place_and_stopping_closes_idle_ones() {
    let data = tempfile::tempdir().unwrap();
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(60),
        max_connections: 2,
    };
    let (addr, stop, server) = start_with(data.path(), limits).await;
    // Two connections, kept alive after their answers, take both places.
    let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    for stream in [&mut first, &mut second] {
        assert_eq!(
            health_status(stream, Duration::from_secs(10))
                .await
                .as_deref(),
            Some("HTTP/1.1 200")
        );
    }
    let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert_eq!(
        health_status(&mut third, Duration::from_millis(500)).await,
        None,
        "served past the cap"
    );
    // The first client leaves; the third is served in its place.
    drop(first);
    let mut answer = [0_u8; 12];
    tokio::time::timeout(Duration::from_secs(10), third.read_exact(&mut answer))
        .await
        .expect("the third connection was served once a place was free")
        .unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    // Stopping closes the idle connections rather than wait for them.
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the endpoint stopped with idle connections open")
        .unwrap()
        .unwrap();
}
