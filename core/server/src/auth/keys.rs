//! The endpoint's own signing key: an Ed25519 key pair kept in the data
//! directory, used to issue tokens for the embedded default and published as
//! a JWK at `/.well-known/jwks.json`.
//!
//! The private key is written once, with owner-only permissions, by whichever
//! of `doorstep serve` or `doorstep token issue` runs first; it never leaves
//! the directory and is never logged.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::json;

use super::claims::IssuedClaims;

/// File name of the private key (PKCS#8 DER) inside the data directory.
pub const SIGNING_KEY_FILE: &str = "signing-key.ed25519.pk8";

/// Why the signing key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The directory or file could not be read or written.
    #[error("signing key at {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file holds no valid Ed25519 key.
    #[error("signing key at {0} is not a valid Ed25519 PKCS#8 key")]
    Invalid(PathBuf),
    /// The random source failed while generating a key.
    #[error("could not generate a signing key")]
    Generate,
    /// Signing a token failed.
    #[error("could not sign a token: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

/// The endpoint's Ed25519 signing key and its id.
pub struct SigningKey {
    kid: String,
    public: Vec<u8>,
    encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl SigningKey {
    /// Loads the key from `dir`, generating and saving one first if there is
    /// none. Two processes racing here end with the same key on disk.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(SIGNING_KEY_FILE);
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        match std::fs::read(&path) {
            Ok(der) => Self::from_pkcs8(&der).ok_or_else(|| KeyError::Invalid(path.clone())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| KeyError::Generate)?;
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                match options.open(&path) {
                    Ok(mut file) => {
                        file.write_all(doc.as_ref()).map_err(io)?;
                        file.sync_all().map_err(io)?;
                        Self::from_pkcs8(doc.as_ref()).ok_or(KeyError::Invalid(path))
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        Self::load_or_create(dir)
                    }
                    Err(e) => Err(io(e)),
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    fn from_pkcs8(der: &[u8]) -> Option<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(der).ok()?;
        let public = pair.public_key().as_ref().to_vec();
        let hash = digest::digest(&digest::SHA256, &public);
        let kid = format!("ed-{}", &URL_SAFE_NO_PAD.encode(hash.as_ref())[..16]);
        Some(Self {
            kid,
            public,
            encoding: EncodingKey::from_ed_der(der),
        })
    }

    /// The key id tokens carry in their header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half, for verifying tokens this key issued.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_ed_der(&self.public)
    }

    /// The public key as a JWK (RFC 8037), for `/.well-known/jwks.json`.
    pub fn public_jwk(&self) -> serde_json::Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(&self.public),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }

    /// Signs `claims` as an EdDSA JWT carrying this key's id.
    pub fn sign(&self, claims: &IssuedClaims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}
