//! The JWT negative catalogue: every token a careless or hostile client might
//! send is refused with 401, and an outside identity provider's ES256 keys
//! are trusted only for their own algorithm and issuer.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use doorstep_server::auth::keys::SIGNING_KEY_FILE;
use doorstep_server::auth::{SigningKey, TokenRole};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{AUDIENCE, Backend, ISSUER, TestApp};

const NET: &str = "east-dorset";

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn claims() -> Value {
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "para-1",
        "iat": now(), "nbf": now(), "exp": now() + 600,
        "net": NET, "role": "paramedic", "dev": "phone-1",
    })
}

fn own_encoding_key(app: &TestApp) -> EncodingKey {
    EncodingKey::from_ed_der(&std::fs::read(app.dir.path().join(SIGNING_KEY_FILE)).unwrap())
}

fn own_sign(app: &TestApp, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(app.signing_key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, &own_encoding_key(app)).unwrap()
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn status_with(app: &TestApp, token: &str) -> StatusCode {
    app.get(token, "/sync/v1/pull").await.0
}

async fn assert_refused(app: &TestApp, what: &str, token: &str) {
    let (status, body) = app.get(token, "/sync/v1/pull").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {body}");
    assert_eq!(body["code"], "unauthorized", "{what}");
}

#[tokio::test]
async fn a_well_formed_own_token_is_accepted() {
    let app = TestApp::new(&Backend::Sqlite).await;
    assert_eq!(
        status_with(&app, &own_sign(&app, &claims())).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_negative_catalogue_is_refused_with_401() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let kid = app.signing_key.kid().to_owned();
    let valid = own_sign(&app, &claims());

    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "JWT", "kid": kid})),
        b64(&claims())
    );
    assert_refused(&app, "alg none", &none).await;

    let jwk = app.signing_key.public_jwk();
    let public_raw = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    for secret in [public_raw.as_slice(), jwk["x"].as_str().unwrap().as_bytes()] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.clone());
        let forged =
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(secret)).unwrap();
        assert_refused(&app, "HS256 signed with the public key", &forged).await;
    }

    let mut c = claims();
    c["exp"] = json!(now() - 120);
    assert_refused(&app, "expired", &own_sign(&app, &c)).await;

    let mut c = claims();
    c["nbf"] = json!(now() + 600);
    c["exp"] = json!(now() + 1200);
    assert_refused(&app, "not yet valid", &own_sign(&app, &c)).await;

    let mut c = claims();
    c["iss"] = json!("someone-else");
    assert_refused(&app, "wrong issuer", &own_sign(&app, &c)).await;

    let mut c = claims();
    c["aud"] = json!("another-service");
    assert_refused(&app, "wrong audience", &own_sign(&app, &c)).await;

    for missing in ["exp", "nbf", "iss", "aud", "sub", "net", "role"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(missing);
        assert_refused(&app, &format!("missing {missing}"), &own_sign(&app, &c)).await;
    }

    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = SigningKey::load_or_create(stranger_dir.path()).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(stranger.kid().to_owned());
    let stranger_key = EncodingKey::from_ed_der(
        &std::fs::read(stranger_dir.path().join(SIGNING_KEY_FILE)).unwrap(),
    );
    let unknown = jsonwebtoken::encode(&header, &claims(), &stranger_key).unwrap();
    assert_refused(&app, "unknown kid", &unknown).await;
    let no_kid = jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        &claims(),
        &own_encoding_key(&app),
    )
    .unwrap();
    assert_refused(&app, "no kid", &no_kid).await;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.clone());
    let wrong_key = jsonwebtoken::encode(&header, &claims(), &stranger_key).unwrap();
    assert_refused(&app, "own kid, other key", &wrong_key).await;

    let parts: Vec<&str> = valid.split('.').collect();
    let mut c = claims();
    c["net"] = json!("west-dorset");
    let tampered = format!("{}.{}.{}", parts[0], b64(&c), parts[2]);
    assert_refused(&app, "tampered payload", &tampered).await;

    assert_refused(&app, "not a JWT", "hello").await;
    let (status, _) = app
        .send(
            axum::http::Request::get("/sync/v1/pull")
                .header("authorization", format!("Basic {valid}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "not a bearer scheme");
    let (status, _) = app
        .send(
            axum::http::Request::get("/sync/v1/pull")
                .header("authorization", format!("bearer {valid}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the scheme's name is case-insensitive"
    );
}

#[tokio::test]
async fn a_revoked_device_token_gets_the_revocation_answer() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let coordinator = app.token(NET, TokenRole::Coordinator, "coord", None);
    let (status, _) = app
        .send(
            axum::http::Request::post("/sync/v1/devices/phone-1/revoke")
                .header("authorization", format!("Bearer {coordinator}"))
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app.get(&own_sign(&app, &claims()), "/sync/v1/pull").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "device_revoked");
}

/// An ES256 key pair as an identity provider would hold it, and its JWKS.
fn outside_idp(kid: &str) -> (EncodingKey, JwkSet) {
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }, {
        "kty": "oct", "kid": "shared-secret", "k": URL_SAFE_NO_PAD.encode(b"hmac keys are never trusted"),
    }]});
    (
        EncodingKey::from_ec_der(pkcs8.as_ref()),
        serde_json::from_value(jwks).unwrap(),
    )
}

#[tokio::test]
async fn an_outside_identity_providers_es256_key_is_trusted_only_for_its_issuer_and_algorithm() {
    let app = TestApp::new(&Backend::Sqlite).await;
    let (key, jwks) = outside_idp("idp-1");
    let idp = "https://login.example-ics.nhs.uk";
    assert_eq!(
        app.state.verifier.trust_outside(&jwks, idp),
        1,
        "the HMAC key is ignored"
    );
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("idp-1".into());
    let mut c = claims();
    c["iss"] = json!(idp);
    let good = jsonwebtoken::encode(&header, &c, &key).unwrap();
    assert_eq!(status_with(&app, &good).await, StatusCode::OK);

    let as_ours = jsonwebtoken::encode(&header, &claims(), &key).unwrap();
    assert_refused(&app, "IdP key claiming our issuer", &as_ours).await;

    let mut own_kid = Header::new(Algorithm::ES256);
    own_kid.kid = Some(app.signing_key.kid().to_owned());
    let confused = jsonwebtoken::encode(&own_kid, &claims(), &key).unwrap();
    assert_refused(&app, "ES256 under the EdDSA key's kid", &confused).await;

    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("shared-secret".into());
    let hmac = jsonwebtoken::encode(
        &hs,
        &c,
        &EncodingKey::from_secret(b"hmac keys are never trusted"),
    )
    .unwrap();
    assert_refused(&app, "HS256 with a key from the JWKS", &hmac).await;

    // A refresh that lists nothing the endpoint can trust (an empty set for a
    // moment, or only an HMAC key) keeps the keys held: users stay signed in.
    let unusable: JwkSet = serde_json::from_value(json!({"keys": [{
        "kty": "oct", "kid": "shared-secret", "k": URL_SAFE_NO_PAD.encode(b"hmac keys are never trusted"),
    }]}))
    .unwrap();
    for set in [JwkSet { keys: Vec::new() }, unusable.clone()] {
        assert_eq!(app.state.verifier.trust_outside(&set, idp), 0);
        assert_eq!(status_with(&app, &good).await, StatusCode::OK);
    }
    // Not for ever: a provider that withdrew its key on purpose (compromised,
    // or replaced by a kind the endpoint does not take) is heard within the
    // grace, counted from the first set that listed nothing to trust.
    let later = std::time::Instant::now() + doorstep_server::auth::verify::OUTSIDE_KEYS_GRACE;
    assert_eq!(
        app.state.verifier.trust_outside_at(&unusable, idp, later),
        0
    );
    assert_refused(&app, "a key the provider stopped listing", &good).await;
    assert_eq!(app.state.verifier.trust_outside(&jwks, idp), 1);
    assert_eq!(status_with(&app, &good).await, StatusCode::OK);

    // The provider rotates: the old key is no longer trusted.
    let (_, rotated) = outside_idp("idp-2");
    app.state.verifier.trust_outside(&rotated, idp);
    assert_refused(&app, "rotated-out key", &good).await;
}

#[tokio::test]
async fn an_outside_rsa_key_is_trusted_for_rs256_only() {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};

    let app = TestApp::new(&Backend::Sqlite).await;
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let public = pair.public_key();
    let jwks: JwkSet = serde_json::from_value(json!({"keys": [{
        "kty": "RSA", "kid": "idp-rsa", "use": "sig",
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    }]}))
    .unwrap();
    let idp = "https://login.example-ics.nhs.uk";
    assert_eq!(app.state.verifier.trust_outside(&jwks, idp), 1);
    // jsonwebtoken signs with a PKCS#1 key; aws-lc exports PKCS#8, which for
    // RSA-2048 is a fixed 26-byte header around the PKCS#1 structure.
    let pkcs8 = AsDer::as_der(&pair).unwrap();
    let pkcs8 = pkcs8.as_ref();
    assert_eq!(
        &pkcs8[4..22],
        &[
            2, 1, 0, 0x30, 0x0d, 6, 9, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 1, 5, 0
        ]
    );
    assert_eq!(&pkcs8[22..24], &[4, 0x82]);
    let key = EncodingKey::from_rsa_der(&pkcs8[26..]);
    let mut c = claims();
    c["iss"] = json!(idp);
    for (alg, ok) in [
        (Algorithm::RS256, true),
        (Algorithm::RS512, false),
        (Algorithm::PS256, false),
    ] {
        let mut header = Header::new(alg);
        header.kid = Some("idp-rsa".into());
        let token = jsonwebtoken::encode(&header, &c, &key).unwrap();
        let expected = if ok {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(status_with(&app, &token).await, expected, "{alg:?}");
    }
}

/// The key ids the endpoint publishes, in order.
async fn published(app: &TestApp) -> Vec<String> {
    let (_, set) = app
        .send(
            axum::http::Request::get("/.well-known/jwks.json")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// A paramedic's token signed by `key`, valid from now for five minutes.
fn signed_by(key: &SigningKey) -> String {
    doorstep_server::token::issue(
        key,
        doorstep_server::token::TokenRequest {
            network: doorstep_domain::network::NetworkId::parse(NET).unwrap(),
            role: TokenRole::Paramedic,
            subject: "para-1".into(),
            device: Some(doorstep_domain::network::DeviceId::parse("phone-1").unwrap()),
            ttl: jiff::SignedDuration::from_mins(5),
        },
        ISSUER,
        AUDIENCE,
        jiff::Timestamp::now(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_rotated_key_admits_its_tokens_until_they_expire_and_the_new_key_at_once() {
    use doorstep_server::auth::Verifier;
    use doorstep_server::auth::keys::KeyRing;

    // An endpoint reading its keys from its data directory, as `serve` does.
    let mut app = TestApp::new(&Backend::Sqlite).await;
    let dir = app.dir.path().to_path_buf();
    app.state.verifier = std::sync::Arc::new(Verifier::from_dir(&dir, ISSUER, AUDIENCE).unwrap());
    app.router = doorstep_server::router(app.state.clone());
    let first = SigningKey::load_or_create(&dir).unwrap();
    let before = signed_by(&first);
    assert_eq!(status_with(&app, &before).await, StatusCode::OK);

    // An ordinary rotation: the old key's tokens still work, the new key's
    // work at once, and both keys are published, the new one first.
    let rotation = KeyRing::rotate(&dir, jiff::Timestamp::now(), true).unwrap();
    let second = SigningKey::load_or_create(&dir).unwrap();
    assert_eq!(rotation.kid, second.kid());
    let after = signed_by(&second);
    assert_eq!(status_with(&app, &after).await, StatusCode::OK);
    assert_eq!(status_with(&app, &before).await, StatusCode::OK);
    assert_eq!(published(&app).await, [second.kid(), first.kid()]);

    // A key leaks: from the next request the tokens of the second key are
    // refused, and those of the first, retired before (a copy of the
    // directory from before its rotation would hold it).
    KeyRing::rotate(&dir, jiff::Timestamp::now(), false).unwrap();
    let third = SigningKey::load_or_create(&dir).unwrap();
    assert_refused(&app, "a token of a key dropped after a leak", &after).await;
    assert_refused(&app, "a token of a key retired before a leak", &before).await;
    assert_eq!(status_with(&app, &signed_by(&third)).await, StatusCode::OK);
    assert_eq!(published(&app).await, [third.kid()]);

    // A key retired longer ago than any token lives is trusted no more, even
    // for a token that has not expired (one its stolen copy could sign).
    let long_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(13);
    KeyRing::rotate(&dir, long_ago, true).unwrap();
    assert_refused(
        &app,
        "a token of a key retired 13 hours ago",
        &signed_by(&third),
    )
    .await;
    assert_eq!(published(&app).await.len(), 1);

    // The signing key's file removed while the endpoint serves: it keeps
    // the keys it holds, and makes no new key of its own.
    let fourth = SigningKey::load_or_create(&dir).unwrap();
    let current = signed_by(&fourth);
    std::fs::remove_file(dir.join(doorstep_server::auth::keys::SIGNING_KEY_FILE)).unwrap();
    assert_eq!(status_with(&app, &current).await, StatusCode::OK);
    assert!(
        !dir.join(doorstep_server::auth::keys::SIGNING_KEY_FILE)
            .exists(),
        "a running endpoint made a key"
    );
}
