//! Token verification: which keys are trusted, for which algorithm and
//! issuer, and the checks every token must pass.
//!
//! Each trusted key is bound to exactly one algorithm and one issuer. A token
//! is looked up by its `kid`; its header's `alg` must be that key's algorithm
//! (so `none`, or HS256 signed with a public key, never reaches a verifier);
//! then the signature, `iss`, `aud`, `exp` and `nbf` are checked with a small
//! leeway for device clocks. The endpoint's own tokens always carry `nbf`;
//! many identity providers leave it out (their tokens are valid from `iat`),
//! so theirs is checked when present. The endpoint's own key is EdDSA; an outside
//! identity provider's keys are RS256 (RSA) or ES256 (P-256), read from its
//! JWKS and replaceable at run time when the provider rotates them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use jiff::Timestamp;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use doorstep_sync::endpoint::{BodyError, body_within, client_for, secure_url, with_causes};

use super::claims::AccessClaims;
use super::keys::{KeyError, KeyRing, RETIRED_KEYS_FILE, SIGNING_KEY_FILE, SigningKey};

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

/// Most bytes of an identity provider's key set read: a few keys take a few
/// kilobytes, and `--idp-jwks /dev/zero` must not fill memory.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

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
                let mut text = String::new();
                std::fs::File::open(path)
                    .and_then(|file| {
                        std::io::Read::read_to_string(
                            &mut std::io::Read::take(file, MAX_JWKS_BYTES as u64 + 1),
                            &mut text,
                        )
                    })
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                if text.len() > MAX_JWKS_BYTES {
                    return Err(format!(
                        "{}: over {MAX_JWKS_BYTES} bytes, not a key set",
                        path.display()
                    ));
                }
                text
            }
            // The key set decides who may read and write patients' records,
            // so keys that crossed a network in the clear are not trusted:
            // not from the URL given, nor from anywhere it redirects to.
            JwksSource::Url(url) => {
                let url = secure_url(url)
                    .map_err(|e| format!("a key set must be fetched over https: {e}"))?;
                // A redirect keeps the client's proxy, which plain http to
                // this machine must not go through (see `client_for`).
                let scheme = url.scheme().to_owned();
                let response = client_for(&url)
                    .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                        if attempt.previous().len() >= MAX_REDIRECTS {
                            attempt.error("too many redirects")
                        } else if let Err(e) = secure_url(attempt.url().as_str()) {
                            attempt.error(format!("redirected to {e}"))
                        } else if attempt.url().scheme() != scheme {
                            attempt.error("redirected from https to plain http, or back")
                        } else {
                            attempt.follow()
                        }
                    }))
                    .build()
                    .map_err(|e| e.to_string())?
                    .get(url.clone())
                    .timeout(std::time::Duration::from_secs(10))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| format!("{url}: {}", with_causes(&e)))?;
                let bytes = match body_within(response, MAX_JWKS_BYTES).await {
                    Ok(bytes) => bytes,
                    Err(BodyError::Transport(e)) => {
                        return Err(format!("{url}: {}", with_causes(&e)));
                    }
                    Err(BodyError::TooLarge { limit }) => {
                        return Err(format!("{url}: over {limit} bytes, not a key set"));
                    }
                };
                String::from_utf8(bytes).map_err(|_| format!("{url}: not UTF-8 text"))?
            }
        };
        serde_json::from_str(&text).map_err(|e| format!("not a JWKS document: {e}"))
    }
}

fn own_key(
    key: DecodingKey,
    until: Option<Timestamp>,
    jwk: serde_json::Value,
    issuer: &str,
    audience: &str,
) -> OwnKey {
    OwnKey {
        trusted: Arc::new(TrustedKey {
            alg: Algorithm::EdDSA,
            key,
            validation: validation(Algorithm::EdDSA, issuer, audience, OWN_CLAIMS),
        }),
        until,
        jwk,
    }
}

/// The keys of `ring`, as the verifier holds them.
fn own_keys(ring: &KeyRing, issuer: &str, audience: &str) -> HashMap<String, OwnKey> {
    let mut keys = HashMap::new();
    for retired in &ring.retired {
        keys.insert(
            retired.kid().to_owned(),
            own_key(
                retired.decoding_key(),
                Some(retired.trusted_until()),
                retired.public_jwk(),
                issuer,
                audience,
            ),
        );
    }
    let current = &ring.current;
    keys.insert(
        current.kid().to_owned(),
        own_key(
            current.decoding_key(),
            None,
            current.public_jwk(),
            issuer,
            audience,
        ),
    );
    keys
}

struct TrustedKey {
    alg: Algorithm,
    key: DecodingKey,
    validation: Validation,
}

/// The registered claims a token of the endpoint's own key must carry.
const OWN_CLAIMS: &[&str] = &["exp", "nbf", "iss", "aud", "sub"];

/// The registered claims an identity provider's token must carry: `nbf`, which
/// many leave out, is checked only when present.
const OUTSIDE_CLAIMS: &[&str] = &["exp", "iss", "aud", "sub"];

fn validation(alg: Algorithm, issuer: &str, audience: &str, required: &[&str]) -> Validation {
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECONDS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.set_required_spec_claims(required);
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

/// One of the endpoint's own keys as the verifier holds it.
struct OwnKey {
    trusted: Arc<TrustedKey>,
    /// When a retired key stops being trusted; `None` for the signing key.
    until: Option<Timestamp>,
    jwk: serde_json::Value,
}

/// The endpoint's own keys, and where they were read from.
struct OwnKeys {
    keys: HashMap<String, OwnKey>,
    /// The data directory they are read again from, if any, and the files'
    /// [`Stamp`] when they were last read.
    dir: Option<(PathBuf, Stamp)>,
}

/// Each key file's inode (on Unix), time written and length, or `None` if
/// absent: a rotation renames new files into place, which changes the inode
/// even where file times are coarse.
type Stamp = [Option<(u64, SystemTime, u64)>; 2];

fn stamp(dir: &Path) -> Stamp {
    [SIGNING_KEY_FILE, RETIRED_KEYS_FILE].map(|name| {
        let meta = std::fs::metadata(dir.join(name)).ok()?;
        #[cfg(unix)]
        let inode = std::os::unix::fs::MetadataExt::ino(&meta);
        #[cfg(not(unix))]
        let inode = 0;
        Some((inode, meta.modified().ok()?, meta.len()))
    })
}

/// The set of keys tokens may be signed with, and the checks they must pass.
pub struct Verifier {
    issuer: String,
    audience: String,
    own: RwLock<OwnKeys>,
    outside: RwLock<HashMap<String, Arc<TrustedKey>>>,
    /// Since when the identity provider's key set has listed no key the
    /// endpoint can trust, while it keeps the keys held (see
    /// [`Verifier::trust_outside`]).
    outside_unlisted_since: Mutex<Option<Instant>>,
}

/// How long the keys an identity provider last listed stay trusted once it
/// lists none the endpoint can trust: long enough for a key set published
/// empty by mistake to be put right (six refreshes), short enough that a key
/// withdrawn on purpose (compromised, or replaced by a kind the endpoint does
/// not take) is not trusted for long.
pub const OUTSIDE_KEYS_GRACE: Duration = Duration::from_secs(60 * 60);

impl Verifier {
    /// Trusts the endpoint's own `key` for tokens from `issuer` to `audience`,
    /// and only that key: it is never read again from anywhere.
    pub fn new(key: &SigningKey, issuer: &str, audience: &str) -> Self {
        let mut keys = HashMap::new();
        keys.insert(
            key.kid().to_owned(),
            own_key(key.decoding_key(), None, key.public_jwk(), issuer, audience),
        );
        Self::with_own(keys, None, issuer, audience)
    }

    /// Trusts the keys kept in the data directory `dir` (made there first if
    /// there are none): the signing key and the retired keys still trusted.
    /// The key files are looked at (not read) on every check, and read again
    /// once they have changed, so a `doorstep token rotate-key` run beside a
    /// running endpoint takes effect at its next request, a compromised key
    /// dropped included, with no restart.
    pub fn from_dir(dir: &Path, issuer: &str, audience: &str) -> Result<Self, KeyError> {
        // Looked at before reading: a rotation in between changes the files
        // again after this look, so the next check reads them again.
        let seen = stamp(dir);
        let keys = own_keys(&KeyRing::load_or_create(dir)?, issuer, audience);
        Ok(Self::with_own(
            keys,
            Some((dir.to_path_buf(), seen)),
            issuer,
            audience,
        ))
    }

    fn with_own(
        keys: HashMap<String, OwnKey>,
        dir: Option<(PathBuf, Stamp)>,
        issuer: &str,
        audience: &str,
    ) -> Self {
        Self {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            own: RwLock::new(OwnKeys { keys, dir }),
            outside: RwLock::new(HashMap::new()),
            outside_unlisted_since: Mutex::new(None),
        }
    }

    /// The endpoint's own public keys as JWKs, for `/.well-known/jwks.json`:
    /// the signing key and the retired keys still trusted.
    pub fn own_jwks(&self) -> Vec<serde_json::Value> {
        self.reread();
        let now = Timestamp::now();
        let Ok(own) = self.own.read() else {
            return Vec::new();
        };
        let mut keys: Vec<&OwnKey> = own
            .keys
            .values()
            .filter(|k| k.until.is_none_or(|until| now < until))
            .collect();
        // The signing key first, then the retired ones, newest first.
        keys.sort_by_key(|k| std::cmp::Reverse(k.until.unwrap_or(Timestamp::MAX)));
        keys.into_iter().map(|k| k.jwk.clone()).collect()
    }

    /// Reads the data directory's keys again if their files changed since
    /// they were last read. Files that cannot be read, or a signing key file
    /// gone, keep the keys held (nothing is written here), and the log says
    /// so once per change.
    fn reread(&self) {
        // Looked at before reading, as in `from_dir`.
        let changed = match self.own.read() {
            Ok(own) => own.dir.as_ref().and_then(|(dir, held)| {
                let now = stamp(dir);
                (now != *held).then(|| (dir.clone(), now))
            }),
            Err(_) => None,
        };
        let Some((dir, now)) = changed else {
            return;
        };
        let fresh = KeyRing::load(&dir).map(|ring| own_keys(&ring, &self.issuer, &self.audience));
        let Ok(mut own) = self.own.write() else {
            return;
        };
        own.dir = Some((dir, now));
        match fresh {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "signing keys read again after a change");
                own.keys = keys;
            }
            Err(e) => tracing::warn!(error = %e, "signing keys not read again; keeping those held"),
        }
    }

    /// Replaces the outside identity provider's keys with those of `jwks`
    /// (RS256 and ES256 keys with a `kid`; others are ignored), for tokens
    /// whose issuer is `issuer`. Returns how many keys of `jwks` can be
    /// trusted. When none can, the keys held are kept for
    /// [`OUTSIDE_KEYS_GRACE`] from the first such set, then dropped: a
    /// provider that for a moment publishes an empty set, or only keys of a
    /// kind the endpoint does not take, would otherwise sign every user out
    /// until the next refresh, while one that withdrew its key on purpose is
    /// heard within the hour (at start the endpoint refuses such a set).
    pub fn trust_outside(&self, jwks: &JwkSet, issuer: &str) -> usize {
        self.trust_outside_at(jwks, issuer, Instant::now())
    }

    /// [`Self::trust_outside`] as if at `now`.
    pub fn trust_outside_at(&self, jwks: &JwkSet, issuer: &str, now: Instant) -> usize {
        let mut keys = HashMap::new();
        for jwk in &jwks.keys {
            let (Some(kid), Some(alg)) = (&jwk.common.key_id, allowed_algorithm(jwk)) else {
                continue;
            };
            if self.own.read().is_ok_and(|own| own.keys.contains_key(kid)) {
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
                    validation: validation(alg, issuer, &self.audience, OUTSIDE_CLAIMS),
                }),
            );
        }
        let count = keys.len();
        let mut unlisted = self
            .outside_unlisted_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let replace = if count > 0 {
            *unlisted = None;
            true
        } else {
            let since = *unlisted.get_or_insert(now);
            now.saturating_duration_since(since) >= OUTSIDE_KEYS_GRACE
        };
        if replace && let Ok(mut outside) = self.outside.write() {
            *outside = keys;
        }
        count
    }

    fn key(&self, kid: &str) -> Option<Arc<TrustedKey>> {
        self.reread();
        if let Some(key) = self.own.read().ok()?.keys.get(kid) {
            let trusted = key.until.is_none_or(|until| Timestamp::now() < until);
            return trusted.then(|| Arc::clone(&key.trusted));
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
