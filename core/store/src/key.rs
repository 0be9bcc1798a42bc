//! The database key and where it lives: the platform keystore, behind a trait.
//!
//! The store never derives a key from a password and never writes one to the
//! database file or a log. A raw 256-bit key is made from the operating
//! system's random source once, handed to the [`KeyProvider`] (Android
//! Keystore or iOS Keychain, implemented by the app crate over uniffi), and
//! read back from it at every open. SQLCipher takes it as a raw key, so opening
//! costs no key derivation.
//!
//! Re-keying must survive the app being killed at any moment, so the provider
//! has two slots: [`KeySlot::Current`] and [`KeySlot::Next`]. A new key is
//! written to `Next` before the file is re-encrypted, and promoted to `Current`
//! after; an open that finds the file encrypted under `Next` finishes the job.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use zeroize::Zeroizing;

/// Length of a database key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// A raw 256-bit database key. Wiped from memory when dropped; its `Debug`
/// form is redacted so a stray `{:?}` cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseKey(Zeroizing<[u8; KEY_LEN]>);

impl DatabaseKey {
    /// Wraps key bytes the platform keystore returned. Refuses anything that is
    /// not exactly 32 bytes, so a truncated keystore entry is caught here
    /// rather than looking like a wrong key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let array: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| KeyError::WrongLength { found: bytes.len() })?;
        Ok(Self(Zeroizing::new(array)))
    }

    /// Makes a new key from the operating system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        getrandom::fill(bytes.as_mut()).map_err(|_| KeyError::NoRandomness)?;
        Ok(Self(bytes))
    }

    /// The key bytes, for handing to the platform keystore.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The SQLCipher key literal `x'<key><salt>'`: the raw key plus a fixed
    /// salt. Giving the salt explicitly means SQLCipher does not read it from
    /// the file's first 16 bytes, so damage there cannot pass for a wrong key.
    /// A fixed salt costs nothing here: the key is random, never a password.
    pub(crate) fn sqlcipher_literal(&self) -> Zeroizing<String> {
        const SALT: &[u8; 16] = b"doorstep-store-1";
        let mut hex = Zeroizing::new(String::with_capacity(2 * (KEY_LEN + 16) + 3));
        hex.push_str("x'");
        for byte in self.0.iter().chain(SALT.iter()) {
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0x0f)]));
        }
        hex.push('\'');
        hex
    }
}

impl fmt::Debug for DatabaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseKey(<redacted>)")
    }
}

/// Which of the provider's two key entries is meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySlot {
    /// The key the database is encrypted with.
    Current,
    /// A key a re-key is moving the database to; empty except during one.
    Next,
}

/// Why the keystore could not hand over or keep a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The keystore is locked or refused access (device not yet unlocked
    /// since boot, biometric prompt cancelled). Try again once unlocked.
    #[error("the platform keystore is unavailable: {0}")]
    Unavailable(String),
    /// The keystore returned a key of the wrong length.
    #[error("the stored key has {found} bytes, expected 32")]
    WrongLength {
        /// How many bytes came back.
        found: usize,
    },
    /// The operating system's random source failed.
    #[error("no randomness available to make a key")]
    NoRandomness,
}

/// Where the database key is kept: the platform keystore on a device, memory
/// in tests. The app crate implements it over uniffi as a foreign trait.
///
/// Every method is called with the store's lock held and must not call back
/// into the store.
pub trait KeyProvider: Send + Sync {
    /// The key in `slot`, or `None` when the slot is empty.
    fn read_key(&self, slot: KeySlot) -> Result<Option<DatabaseKey>, KeyError>;
    /// Keeps `key` in `slot`, replacing what was there. Must be durable when
    /// it returns: the store re-encrypts the file right after.
    fn write_key(&self, slot: KeySlot, key: &DatabaseKey) -> Result<(), KeyError>;
    /// Empties `slot`. Deleting an empty slot is not an error.
    fn delete_key(&self, slot: KeySlot) -> Result<(), KeyError>;
}

/// A [`KeyProvider`] that keeps keys in memory: for tests, benchmarks and
/// tools that open a store for one process's lifetime. A device must use the
/// platform keystore, or its data dies with the process.
#[derive(Default)]
pub struct MemoryKeyProvider {
    slots: Mutex<HashMap<KeySlot, DatabaseKey>>,
}

impl MemoryKeyProvider {
    /// An empty provider: opening a new store through it makes a new key.
    pub fn new() -> Self {
        Self::default()
    }

    /// A provider already holding `key` as the current key, e.g. to reopen a
    /// file another process wrote.
    pub fn with_key(key: DatabaseKey) -> Self {
        let provider = Self::new();
        provider.lock().insert(KeySlot::Current, key);
        provider
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KeySlot, DatabaseKey>> {
        // A panic while holding this lock leaves the map consistent (every
        // operation is a single insert or remove), so poisoning is ignored.
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl KeyProvider for MemoryKeyProvider {
    fn read_key(&self, slot: KeySlot) -> Result<Option<DatabaseKey>, KeyError> {
        Ok(self.lock().get(&slot).cloned())
    }

    fn write_key(&self, slot: KeySlot, key: &DatabaseKey) -> Result<(), KeyError> {
        self.lock().insert(slot, key.clone());
        Ok(())
    }

    fn delete_key(&self, slot: KeySlot) -> Result<(), KeyError> {
        // Dropping the key wipes its bytes.
        self.lock().remove(&slot);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_wrong_length_are_refused() {
        assert_eq!(
            DatabaseKey::from_bytes(&[7; 31]).unwrap_err(),
            KeyError::WrongLength { found: 31 }
        );
        assert!(DatabaseKey::from_bytes(&[7; 32]).is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = DatabaseKey::from_bytes(&[0x5c; 32]).unwrap();
        let shown = format!("{key:?}");
        assert_eq!(shown, "DatabaseKey(<redacted>)");
    }

    #[test]
    fn the_sqlcipher_literal_is_key_then_salt_in_hex() {
        let key = DatabaseKey::from_bytes(&[0x0f; 32]).unwrap();
        let literal = key.sqlcipher_literal();
        assert_eq!(literal.len(), 2 + 64 + 32 + 1);
        assert!(literal.starts_with("x'0f0f"));
        // The salt is the ASCII of "doorstep-store-1".
        assert!(literal.ends_with("646f6f72737465702d73746f72652d31'"));
    }

    #[test]
    fn generated_keys_differ() {
        let a = DatabaseKey::generate().unwrap();
        let b = DatabaseKey::generate().unwrap();
        assert_ne!(a, b);
    }
}
