//! The endpoint's own signing keys: an Ed25519 key pair kept in the data
//! directory, used to issue tokens for the embedded default and published as
//! a JWK at `/.well-known/jwks.json`, and the public halves of the keys it
//! replaced.
//!
//! The private key is written once, with owner-only permissions, by whichever
//! of `doorstep serve` or `doorstep token issue` runs first; it never leaves
//! the directory and is never logged.
//!
//! `doorstep token rotate-key` replaces it ([`KeyRing::rotate`]), and
//! refuses a directory that holds none rather than make one to replace. The
//! old key's private half is gone with its file; its public half is kept in
//! [`RETIRED_KEYS_FILE`] and trusted until every token it could have signed
//! has expired ([`MAX_TTL`] and the clock leeway after it retired), so
//! devices signed in before the rotation keep syncing. After a compromise the
//! old key is dropped at once instead, and every token it signed is refused.
//! Both files are replaced by renaming a complete new file over the old, so
//! a crash leaves one whole version of each.

use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::claims::IssuedClaims;
use super::verify::LEEWAY_SECONDS;
use crate::token::MAX_TTL;

/// File name of the private key (PKCS#8 DER) inside the data directory.
pub const SIGNING_KEY_FILE: &str = "signing-key.ed25519.pk8";

/// File name, inside the data directory, of the retired keys' public halves
/// (a JSON list of `{"kid", "x", "retired_at"}`, `x` as in a JWK).
pub const RETIRED_KEYS_FILE: &str = "signing-keys-retired.json";

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
    /// Another process has held the key lock ([`KEYS_LOCK_FILE`]) longer than
    /// making or replacing a key takes.
    #[error(
        "another doorstep process has held {0} for over 30 s while making or replacing the \
         signing key; try again, and look for a stuck doorstep process if it persists"
    )]
    Locked(PathBuf),
    /// A rotation found no signing key in the directory it was given: most
    /// likely not the endpoint's data directory (a mistyped path). Nothing
    /// was made there, so the endpoint's own key is still the one it trusts.
    #[error(
        "no signing key in {0}, so there is nothing to rotate and nothing was changed: check \
         that --data names the endpoint's data directory (where `doorstep serve --data` points)"
    )]
    NothingToRotate(PathBuf),
    /// The retired keys' file is not what [`KeyRing::rotate`] writes.
    #[error("retired keys at {path}: {reason}; leave it for an operator to check")]
    RetiredInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
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
    /// none. Two processes racing here end with the same key on disk, and a
    /// crash while it is written leaves no key file rather than a partial one
    /// (which would keep the endpoint from starting).
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(SIGNING_KEY_FILE);
        match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _keys = lock_keys(dir)?;
                Self::load_or_create_locked(dir)
            }
            read => Self::parse(&path, read),
        }
    }

    /// Loads the key from `dir`; a missing file is an error, not a reason to
    /// make one (a running endpoint must not replace its key by itself).
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(SIGNING_KEY_FILE);
        Self::parse(&path, std::fs::read(&path))
    }

    /// [`Self::load_or_create`] with the directory's key lock held: another
    /// process may have made the key while this one waited for the lock.
    fn load_or_create_locked(dir: &Path) -> Result<Self, KeyError> {
        let path = dir.join(SIGNING_KEY_FILE);
        match std::fs::read(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let doc = generate()?;
                replace_file(dir, SIGNING_KEY_FILE, doc.as_ref()).map_err(|source| {
                    KeyError::Io {
                        path: path.clone(),
                        source,
                    }
                })?;
                Self::from_pkcs8(doc.as_ref()).ok_or(KeyError::Invalid(path))
            }
            read => Self::parse(&path, read),
        }
    }

    /// The key read from `path`, or why it could not be had.
    fn parse(path: &Path, read: std::io::Result<Vec<u8>>) -> Result<Self, KeyError> {
        let der = read.map_err(|source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_pkcs8(&der).ok_or_else(|| KeyError::Invalid(path.to_path_buf()))
    }

    fn from_pkcs8(der: &[u8]) -> Option<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(der).ok()?;
        let public = pair.public_key().as_ref().to_vec();
        Some(Self {
            kid: kid_of(&public),
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
        public_jwk(&self.kid, &self.public)
    }

    /// Signs `claims` as an EdDSA JWT carrying this key's id.
    pub fn sign(&self, claims: &IssuedClaims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// A key id derived from the public key, so the same key always has the same
/// id and two keys never share one.
fn kid_of(public: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, public);
    format!("ed-{}", &URL_SAFE_NO_PAD.encode(hash.as_ref())[..16])
}

fn public_jwk(kid: &str, public: &[u8]) -> serde_json::Value {
    json!({
        "kty": "OKP",
        "crv": "Ed25519",
        "x": URL_SAFE_NO_PAD.encode(public),
        "kid": kid,
        "alg": "EdDSA",
        "use": "sig",
    })
}

fn generate() -> Result<aws_lc_rs::pkcs8::Document, KeyError> {
    Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)
}

/// File, in the data directory, held locked while the signing key is made
/// or replaced, so two `doorstep` processes (an endpoint starting, a token
/// being issued, a rotation) never interleave their writes of the key files.
pub const KEYS_LOCK_FILE: &str = "signing-keys.lock";

/// How long a command waits for another process's hold on the key lock
/// (making or replacing a key takes milliseconds) before saying so.
const KEYS_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits for, then holds, the key lock of `dir` until the file returned is
/// dropped, making the directory first, as the first run of any command
/// that needs a key must. The lock file is its owner's alone, so another
/// user of the machine cannot hold it; a holder that never lets go is
/// reported after [`KEYS_LOCK_WAIT`] rather than waited on for ever.
fn lock_keys(dir: &Path) -> Result<std::fs::File, KeyError> {
    lock_keys_within(dir, KEYS_LOCK_WAIT)
}

/// [`lock_keys`], waiting at most `wait`.
fn lock_keys_within(dir: &Path, wait: std::time::Duration) -> Result<std::fs::File, KeyError> {
    let path = dir.join(KEYS_LOCK_FILE);
    let io = |source| KeyError::Io {
        path: path.clone(),
        source,
    };
    crate::files::create_private_dir(dir).map_err(io)?;
    let file = crate::files::open_lock_file(&path).map_err(io)?;
    let began = std::time::Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if began.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Err(KeyError::Locked(path)),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
}

/// Makes `path` for writing, readable by its owner only; refuses a file (or
/// a link) already there, so the permissions are always these.
fn owner_only(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Replaces `dir/name` with `bytes` whole: written to a new file beside it
/// (one left by a rotation cut short is removed first, never reused),
/// flushed, renamed over it, and the directory flushed, so a crash at any
/// point leaves the old file or the new one.
fn replace_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let staged = dir.join(format!(".{name}.new"));
    match std::fs::remove_file(&staged) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = owner_only(&staged)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&staged, dir.join(name))?;
    std::fs::File::open(dir)?.sync_all()
}

/// A key the endpoint signed with before a rotation: its public half, and
/// when it stopped signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetiredKey {
    kid: String,
    public: Vec<u8>,
    retired_at: Timestamp,
}

/// How a retired key is written in [`RETIRED_KEYS_FILE`].
#[derive(Serialize, Deserialize)]
struct RetiredEntry {
    kid: String,
    x: String,
    retired_at: Timestamp,
}

impl RetiredKey {
    /// Its key id, as the tokens it signed carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Until when tokens it signed are accepted: the longest lifetime a
    /// token can have, and the clock leeway, after it retired. Every token it
    /// signed has expired by then, so no device signed in before the
    /// rotation is cut off, and nothing it signs later lives longer.
    pub fn trusted_until(&self) -> Timestamp {
        self.retired_at + trust_after_retiring()
    }

    /// The public half, for verifying the tokens it signed.
    pub fn decoding_key(&self) -> DecodingKey {
        DecodingKey::from_ed_der(&self.public)
    }

    /// The public half as a JWK, published while it is trusted.
    pub fn public_jwk(&self) -> serde_json::Value {
        public_jwk(&self.kid, &self.public)
    }
}

/// What a rotation did, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rotation {
    /// The new signing key's id.
    pub kid: String,
    /// The replaced key's id.
    pub retired: String,
    /// Until when the replaced key's tokens are still accepted; `None` when
    /// it was dropped at once (a compromise).
    pub retired_trusted_until: Option<Timestamp>,
}

/// The endpoint's keys as its data directory holds them: the one it signs
/// with, and the retired ones still trusted.
pub struct KeyRing {
    /// The signing key.
    pub current: SigningKey,
    /// Retired keys as listed, each trusted until
    /// [`RetiredKey::trusted_until`] (the verifier checks that when a token
    /// names one).
    pub retired: Vec<RetiredKey>,
}

impl KeyRing {
    /// The keys in `dir`, making a signing key first if there is none.
    pub fn load_or_create(dir: &Path) -> Result<Self, KeyError> {
        Ok(Self {
            current: SigningKey::load_or_create(dir)?,
            retired: read_retired(dir)?,
        })
    }

    /// The keys in `dir`, which must hold a signing key: how a running
    /// endpoint reads them again after they change, so a key file removed
    /// while it serves leaves it with the keys it holds rather than a new
    /// key that would refuse every token issued.
    pub fn load(dir: &Path) -> Result<Self, KeyError> {
        Ok(Self {
            current: SigningKey::load(dir)?,
            retired: read_retired(dir)?,
        })
    }

    /// Replaces the signing key in `dir` with a new one, at `now`. With
    /// `keep_retired`, the old key's public half is kept and trusted until
    /// [`RetiredKey::trusted_until`], and so are keys retired earlier whose
    /// trust has not ended. Without (a key leaked), nothing of before is
    /// trusted: the old key and every retired one are dropped, and every token
    /// they signed is refused once the endpoint reads the directory again. A
    /// key retired earlier may have leaked too (a copy of the directory from
    /// before that rotation), and every device signs in again anyway.
    /// Rotations hold the directory's key lock, so two run one after the
    /// other and each retires the key the other made.
    ///
    /// A directory without a signing key is refused with
    /// [`KeyError::NothingToRotate`], and nothing is made in it (not even the
    /// directory or its lock): a key made there and retired at once would
    /// report a rotation while the endpoint's own key, perhaps leaked, stays
    /// trusted.
    pub fn rotate(dir: &Path, now: Timestamp, keep_retired: bool) -> Result<Rotation, KeyError> {
        let nothing_to_rotate = || KeyError::NothingToRotate(dir.to_path_buf());
        // Looked for before the lock, whose taking would make the directory;
        // an answer other than "absent" is left for the read below to report.
        if matches!(dir.join(SIGNING_KEY_FILE).try_exists(), Ok(false)) {
            return Err(nothing_to_rotate());
        }
        let _keys = lock_keys(dir)?;
        // Removed while the lock was awaited: still nothing to rotate.
        let old = SigningKey::load(dir).map_err(|e| match e {
            KeyError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                nothing_to_rotate()
            }
            e => e,
        })?;
        let mut retired: Vec<RetiredKey> = read_retired(dir)?
            .into_iter()
            .filter(|k| keep_retired && k.trusted_until() > now && k.kid != old.kid)
            .collect();
        let kept = keep_retired.then(|| RetiredKey {
            kid: old.kid.clone(),
            public: old.public.clone(),
            retired_at: now,
        });
        let retired_trusted_until = kept.as_ref().map(RetiredKey::trusted_until);
        retired.extend(kept);
        // The retired list first: if the new key never lands, the old key is
        // both current and retired, which trusts nothing more than before.
        write_retired(dir, &retired)?;
        let doc = generate()?;
        let new = SigningKey::from_pkcs8(doc.as_ref())
            .ok_or_else(|| KeyError::Invalid(dir.join(SIGNING_KEY_FILE)))?;
        replace_file(dir, SIGNING_KEY_FILE, doc.as_ref()).map_err(|source| KeyError::Io {
            path: dir.join(SIGNING_KEY_FILE),
            source,
        })?;
        Ok(Rotation {
            kid: new.kid,
            retired: old.kid,
            retired_trusted_until,
        })
    }
}

fn read_retired(dir: &Path) -> Result<Vec<RetiredKey>, KeyError> {
    let path = dir.join(RETIRED_KEYS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(KeyError::Io { path, source }),
    };
    let invalid = |reason: String| KeyError::RetiredInvalid {
        path: path.clone(),
        reason,
    };
    let entries: Vec<RetiredEntry> =
        serde_json::from_str(&text).map_err(|e| invalid(format!("not a list of keys: {e}")))?;
    entries
        .into_iter()
        .map(|entry| {
            let public = URL_SAFE_NO_PAD
                .decode(&entry.x)
                .ok()
                .filter(|p| p.len() == 32)
                .ok_or_else(|| {
                    invalid(format!("key {} is not an Ed25519 public key", entry.kid))
                })?;
            if kid_of(&public) != entry.kid {
                return Err(invalid(format!("key {} does not match its id", entry.kid)));
            }
            // Its trust ends a token's life after it retired: a time so late that this
            // overflows (a damaged or hand-typed file) is refused, not a panic at every check.
            if entry
                .retired_at
                .checked_add(trust_after_retiring())
                .is_err()
            {
                return Err(invalid(format!(
                    "key {} retired at {}, too late to be true",
                    entry.kid, entry.retired_at
                )));
            }
            Ok(RetiredKey {
                kid: entry.kid,
                public,
                retired_at: entry.retired_at,
            })
        })
        .collect()
}

/// How long a retired key's tokens are still accepted: the longest a token lives, and the
/// clock leeway.
fn trust_after_retiring() -> SignedDuration {
    MAX_TTL + SignedDuration::from_secs(LEEWAY_SECONDS as i64)
}

fn write_retired(dir: &Path, retired: &[RetiredKey]) -> Result<(), KeyError> {
    let entries: Vec<RetiredEntry> = retired
        .iter()
        .map(|k| RetiredEntry {
            kid: k.kid.clone(),
            x: URL_SAFE_NO_PAD.encode(&k.public),
            retired_at: k.retired_at,
        })
        .collect();
    let text = serde_json::to_vec_pretty(&entries).map_err(|e| KeyError::RetiredInvalid {
        path: dir.join(RETIRED_KEYS_FILE),
        reason: e.to_string(),
    })?;
    replace_file(dir, RETIRED_KEYS_FILE, &text).map_err(|source| KeyError::Io {
        path: dir.join(RETIRED_KEYS_FILE),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retired_in(dir: &Path) -> Vec<(String, Timestamp)> {
        read_retired(dir)
            .unwrap()
            .into_iter()
            .map(|k| (k.kid().to_owned(), k.trusted_until()))
            .collect()
    }

    fn bytes(dir: &Path, name: &str) -> Vec<u8> {
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn a_rotation_keeps_the_old_public_key_until_its_tokens_have_expired() {
        let dir = tempfile::tempdir().unwrap();
        let old = SigningKey::load_or_create(dir.path()).unwrap();
        let now: Timestamp = "2026-12-04T09:00:00Z".parse().unwrap();
        let rotation = KeyRing::rotate(dir.path(), now, true).unwrap();

        let ring = KeyRing::load_or_create(dir.path()).unwrap();
        assert_eq!(rotation.retired, old.kid());
        assert_eq!(rotation.kid, ring.current.kid());
        assert_ne!(rotation.kid, rotation.retired);
        let until: Timestamp = "2026-12-04T21:00:30Z".parse().unwrap();
        assert_eq!(rotation.retired_trusted_until, Some(until));
        assert_eq!(retired_in(dir.path()), [(old.kid().to_owned(), until)]);
        // Only public halves are kept of the old key.
        let listed = String::from_utf8(bytes(dir.path(), RETIRED_KEYS_FILE)).unwrap();
        assert!(!listed.contains("\"d\""), "{listed}");
        #[cfg(unix)]
        for name in [SIGNING_KEY_FILE, RETIRED_KEYS_FILE] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }

    #[test]
    fn processes_making_the_first_key_at_once_end_with_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let kids: Vec<String> = std::thread::scope(|scope| {
            let starts: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| SigningKey::load_or_create(dir.path()).unwrap()))
                .collect();
            starts
                .into_iter()
                .map(|s| s.join().unwrap().kid().to_owned())
                .collect()
        });
        let on_disk = SigningKey::load_or_create(dir.path()).unwrap();
        assert!(kids.iter().all(|kid| kid == on_disk.kid()), "{kids:?}");
    }

    #[test]
    fn a_key_lock_held_too_long_is_reported_and_only_its_owner_can_take_it() {
        let dir = tempfile::tempdir().unwrap();
        // As an older build left it: readable by every user.
        let lock = dir.path().join(KEYS_LOCK_FILE);
        std::fs::write(&lock, "").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let open = std::fs::Permissions::from_mode(0o644);
            std::fs::set_permissions(&lock, open).unwrap();
        }
        let held = lock_keys(dir.path()).unwrap();
        let waited = lock_keys_within(dir.path(), std::time::Duration::from_millis(100));
        assert!(matches!(waited, Err(KeyError::Locked(_))), "{waited:?}");
        drop(held);
        lock_keys_within(dir.path(), std::time::Duration::from_millis(100)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEYS_LOCK_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn rotations_run_at_once_each_retire_the_key_another_made() {
        let dir = tempfile::tempdir().unwrap();
        let first = SigningKey::load_or_create(dir.path()).unwrap();
        let now: Timestamp = "2026-12-04T09:00:00Z".parse().unwrap();
        let rotations: Vec<Rotation> = std::thread::scope(|scope| {
            let running: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| KeyRing::rotate(dir.path(), now, true).unwrap()))
                .collect();
            running.into_iter().map(|r| r.join().unwrap()).collect()
        });
        // One chain from the first key to the last: no key was made and
        // then overwritten unretired (its tokens would be refused).
        let mut retired: Vec<&str> = rotations.iter().map(|r| r.retired.as_str()).collect();
        let mut made: Vec<&str> = rotations.iter().map(|r| r.kid.as_str()).collect();
        let current = KeyRing::load_or_create(dir.path()).unwrap().current;
        retired.push(current.kid());
        made.push(first.kid());
        retired.sort_unstable();
        made.sort_unstable();
        assert_eq!(retired, made);
        let mut listed: Vec<String> = retired_in(dir.path()).into_iter().map(|(k, _)| k).collect();
        listed.sort_unstable();
        let mut expected: Vec<String> = rotations.iter().map(|r| r.retired.clone()).collect();
        expected.sort_unstable();
        assert_eq!(listed, expected);
    }

    #[test]
    fn a_rotation_after_a_compromise_trusts_no_key_of_before() {
        let dir = tempfile::tempdir().unwrap();
        SigningKey::load_or_create(dir.path()).unwrap();
        let now: Timestamp = "2026-12-04T09:00:00Z".parse().unwrap();
        let first = KeyRing::rotate(dir.path(), now, true).unwrap();
        let second =
            KeyRing::rotate(dir.path(), now + SignedDuration::from_mins(5), false).unwrap();
        assert_eq!(second.retired, first.kid);
        assert_eq!(second.retired_trusted_until, None);
        // Nor the key retired in the ordinary way before it: a copy of the
        // directory from before that rotation holds its private half.
        assert_eq!(retired_in(dir.path()), []);
    }

    #[test]
    fn retired_keys_whose_trust_has_ended_are_dropped_at_the_next_rotation() {
        let dir = tempfile::tempdir().unwrap();
        SigningKey::load_or_create(dir.path()).unwrap();
        let now: Timestamp = "2026-12-04T09:00:00Z".parse().unwrap();
        KeyRing::rotate(dir.path(), now, true).unwrap();
        let later =
            KeyRing::rotate(dir.path(), now + SignedDuration::from_hours(13), true).unwrap();
        assert_eq!(
            retired_in(dir.path())
                .into_iter()
                .map(|(kid, _)| kid)
                .collect::<Vec<_>>(),
            [later.retired]
        );
    }

    #[test]
    fn a_rotation_where_there_is_no_signing_key_is_refused_and_makes_nothing() {
        // A mistyped data directory: a key made there and retired at once
        // would leave the endpoint's own key, perhaps leaked, trusted.
        let now: Timestamp = "2026-12-04T09:00:00Z".parse().unwrap();
        let parent = tempfile::tempdir().unwrap();
        let typo = parent.path().join("typo");
        let empty = tempfile::tempdir().unwrap();
        for (dir, keep_retired) in [(typo.as_path(), false), (empty.path(), true)] {
            let refused = KeyRing::rotate(dir, now, keep_retired).expect_err("refused");
            assert!(
                refused
                    .to_string()
                    .starts_with(&format!("no signing key in {}", dir.display())),
                "{refused}"
            );
        }
        assert!(!typo.exists());
        assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_damaged_retired_list_is_refused_and_no_key_changes() {
        let now: Timestamp = "2026-12-04T09:00:00Z".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        SigningKey::load_or_create(dir.path()).unwrap();
        KeyRing::rotate(dir.path(), now, true).unwrap();
        let listed: serde_json::Value =
            serde_json::from_slice(&bytes(dir.path(), RETIRED_KEYS_FILE)).unwrap();
        let mut wrong_id = listed.clone();
        wrong_id[0]["kid"] = "ed-AAAAAAAAAAAAAAAA".into();
        let mut short = listed.clone();
        short[0]["x"] = "AAAA".into();
        let mut far_future = listed;
        far_future[0]["retired_at"] = "9999-12-30T20:00:00Z".into();
        for damaged in [
            b"{not json".to_vec(),
            serde_json::to_vec(&wrong_id).unwrap(),
            serde_json::to_vec(&short).unwrap(),
            serde_json::to_vec(&far_future).unwrap(),
        ] {
            std::fs::write(dir.path().join(RETIRED_KEYS_FILE), &damaged).unwrap();
            let key = bytes(dir.path(), SIGNING_KEY_FILE);
            let refused = KeyRing::rotate(dir.path(), now, true).expect_err("refused");
            assert!(
                matches!(refused, KeyError::RetiredInvalid { .. }),
                "{refused:?}"
            );
            assert!(refused.to_string().contains(RETIRED_KEYS_FILE), "{refused}");
            assert_eq!(bytes(dir.path(), SIGNING_KEY_FILE), key);
            assert_eq!(bytes(dir.path(), RETIRED_KEYS_FILE), damaged);
            assert!(KeyRing::load_or_create(dir.path()).is_err());
        }
    }
}
