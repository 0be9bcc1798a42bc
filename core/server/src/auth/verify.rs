//! Token verification: which keys are trusted, for which algorithm and
//! issuer, and the checks every token must pass.
//!
//! Each trusted key is bound to exactly one algorithm and one issuer. A token
//! is looked up by its `kid`; its header's `alg` must be that key's algorithm
//! (so `none`, or HS256 signed with a public key, never reaches a verifier);
//! then the signature, `iss`, `aud`, `exp` and `nbf` are checked with a small
//! leeway for device clocks. The endpoint's own key is EdDSA; an outside
//! identity provider's keys are RS256 (RSA) or ES256 (P-256), read from its
//! JWKS and replaceable at run time when the provider rotates them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use doorstep_sync::endpoint::{secure_url, with_causes};

use super::claims::AccessClaims;
use super::keys::SigningKey;

/// Most redirects followed when fetching an identity provider's key set.
const MAX_REDIRECTS: usize = 5;

/// Seconds of clock difference tolerated on `exp` and `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// Why a token was refused. All of them answer 401; the variant goes to the
/// log so an operator can tell a clock problem from an attack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("no bearer token")]
    Missing,
    /// Not a JWT, or a header this endpoint cannot read (including `alg: none`).
    #[error("token is not a readable JWT")]
    Malformed,
    /// The header names no key, or a key not in the trusted set.
    #[error("token names no trusted key")]
    UnknownKey,
    /// The header's algorithm is not the one allowed for its key.
    #[error("algorithm not allowed for this key")]
    AlgorithmNotAllowed,
    /// Signature, issuer, audience, expiry, not-before or claims failed.
    #[error("token refused: {0}")]
    Invalid(String),
}

/// Where an outside identity provider's key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    /// A JWKS document on disk.
    File(PathBuf),
    /// A JWKS URL, fetched at start and refreshed periodically.
    Url(String),
}

impl JwksSource {
    /// `http(s)://...` is a URL; anything else a file path.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("https://") || text.starts_with("http://") {
            JwksSource::Url(text.to_owned())
        } else {
            JwksSource::File(PathBuf::from(text))
        }
    }

    /// Reads the key set.
    pub async fn load(&self) -> Result<JwkSet, String> {
        let text = match self {
            JwksSource::File(path) => {
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?
            }
            // The key set decides who may read and write patients' records,
            // so keys that crossed a network in the clear are not trusted:
            // not from the URL given, nor from anywhere it redirects to.
            JwksSource::Url(url) => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::custom(|attempt| {
                    if attempt.previous().len() >= MAX_REDIRECTS {
                        attempt.error("too many redirects")
                    } else if let Err(e) = secure_url(attempt.url().as_str()) {
                        attempt.error(format!("redirected to {e}"))
                    } else {
                        attempt.follow()
                    }
                }))
                .build()
                .map_err(|e| e.to_string())?
                .get(
                    secure_url(url)
                        .map_err(|e| format!("a key set must be fetched over https: {e}"))?,
                )
                .timeout(std::time::Duration::from_secs(10))
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| format!("{url}: {}", with_causes(&e)))?
                .text()
                .await
                .map_err(|e| format!("{url}: {}", with_causes(&e)))?,
        };
        serde_json::from_str(&text).map_err(|e| format!("not a JWKS document: {e}"))
    }
}

struct TrustedKey {
    alg: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

fn validation(alg: Algorithm, issuer: &str, audience: &str) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECONDS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v
}

/// The algorithm an outside key may be used with, or `None` when the key is
/// not one we accept (HMAC, other curves, encryption keys).
fn allowed_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
        return None;
    }
    let (alg, declared_ok) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (
            Algorithm::RS256,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)),
        ),
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => (
            Algorithm::ES256,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::ES256)),
        ),
        _ => return None,
    };
    declared_ok.then_some(alg)
}

/// The set of keys tokens may be signed with, and the checks they must pass.
pub struct Verifier {
    audience: String,
    own: HashMap<String, Arc<TrustedKey>>,
    outside: RwLock<HashMap<String, Arc<TrustedKey>>>,
}

impl Verifier {
    /// Trusts the endpoint's own `key` for tokens from `issuer` to `audience`.
    pub fn new(key: &SigningKey, issuer: &str, audience: &str) -> Self {
        let mut own = HashMap::new();
        own.insert(
            key.kid().to_owned(),
            Arc::new(TrustedKey {
                alg: Algorithm::EdDSA,
                key: key.decoding_key(),
                validation: validation(Algorithm::EdDSA, issuer, audience),
            }),
        );
        Self {
            audience: audience.to_owned(),
            own,
            outside: RwLock::new(HashMap::new()),
        }
    }

    /// Replaces the outside identity provider's keys with those of `jwks`
    /// (RS256 and ES256 keys with a `kid`; others are ignored), for tokens
    /// whose issuer is `issuer`. Returns how many keys are now trusted.
    pub fn trust_outside(&self, jwks: &JwkSet, issuer: &str) -> usize {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let (Some(kid), Some(alg)) = (&jwk.common.key_id, allowed_algorithm(jwk)) else {
                continue;
            };
            if self.own.contains_key(kid) {
                continue;
            }
            let Ok(key) = DecodingKey::from_jwk(jwk) else {
                continue;
            };
            keys.insert(
                kid.clone(),
                Arc::new(TrustedKey {
                    alg,
                    key,
                    validation: validation(alg, issuer, &self.audience),
                }),
            );
        }
        let count = keys.len();
        if let Ok(mut outside) = self.outside.write() {
            *outside = keys;
        }
        count
    }

    fn key(&self, kid: &str) -> Option<Arc<TrustedKey>> {
        if let Some(key) = self.own.get(kid) {
            return Some(Arc::clone(key));
        }
        self.outside.read().ok()?.get(kid).cloned()
    }

    /// Checks `token` and returns its access claims.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        let kid = header.kid.as_deref().ok_or(AuthError::UnknownKey)?;
        let key = self.key(kid).ok_or(AuthError::UnknownKey)?;
        if header.alg != key.alg {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        jsonwebtoken::decode::<AccessClaims>(token, &key.key, &key.validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::Invalid(format!("{:?}", e.kind())))
    }
}
