//! The key secrets are sealed with: 32 bytes from `HERO_LOGIC_SECRET_KEY`
//! (64 hex digits), else from `secret.key` in the data directory, created
//! with mode 0600 the first time a secret is sealed or opened.

use crate::store::StoredSecret;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The environment variable that holds the key, as 64 hex digits.
pub const KEY_ENV: &str = "HERO_LOGIC_SECRET_KEY";
/// The key file in the data directory, used when the variable is not set.
pub const KEY_FILE: &str = "secret.key";

pub struct SecretKey {
    /// XChaCha20-Poly1305: its 192-bit nonces can be drawn at random
    /// for every seal without counting them.
    cipher: XChaCha20Poly1305,
    /// The first 8 bytes of the key's SHA-256 in hex, kept with each
    /// secret, so a node given another key says so.
    id: String,
}

impl SecretKey {
    /// The key from `HERO_LOGIC_SECRET_KEY`, else from (or into) the key file in `data_dir`.
    pub fn load(data_dir: &Path) -> Result<SecretKey, String> {
        if let Ok(text) = std::env::var(KEY_ENV)
            && !text.trim().is_empty()
        {
            return SecretKey::from_hex(text.trim()).map_err(|e| format!("{KEY_ENV}: {e}"));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => SecretKey::from_hex(text.trim()).map_err(|e| format!("{}: {e}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => SecretKey::create(data_dir, &path),
            Err(error) => Err(format!("cannot read the secret key {}: {error}", path.display())),
        }
    }

    /// A new random key written to `path`, readable by this user only. Two
    /// processes creating it at once: one writes it, the other reads it.
    fn create(data_dir: &Path, path: &Path) -> Result<SecretKey, String> {
        std::fs::create_dir_all(data_dir).map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let key = XChaCha20Poly1305::generate_key(&mut OsRng);
        let text = hex(&key);
        let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
        match created {
            Ok(mut file) => {
                file.write_all(format!("{text}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| format!("cannot write the secret key {}: {e}", path.display()))?;
                SecretKey::from_hex(&text)
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => SecretKey::load(data_dir),
            Err(error) => Err(format!("cannot create the secret key {}: {error}", path.display())),
        }
    }

    pub fn from_hex(text: &str) -> Result<SecretKey, String> {
        let bytes = unhex(text)
            .filter(|bytes| bytes.len() == 32)
            .ok_or_else(|| "a secret key is 64 hex digits (32 bytes), as `openssl rand -hex 32` prints".to_string())?;
        let id = hex(&Sha256::digest(&bytes)[..8]);
        let cipher = XChaCha20Poly1305::new_from_slice(&bytes).expect("the key is 32 bytes, checked above");
        Ok(SecretKey { cipher, id })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// `value` sealed under a fresh nonce, bound to `name`, so a sealed value
    /// moved to another name in the database does not open.
    pub fn seal(&self, name: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: value.as_bytes(), aad: name.as_bytes() })
            .expect("encryption fails only past 256 GiB; a secret is at most 4 KiB");
        (nonce.to_vec(), sealed)
    }

    /// The value of a stored secret, when this key sealed it and nothing was changed.
    pub fn open(&self, stored: &StoredSecret) -> Result<String, String> {
        if stored.key_id != self.id {
            return Err(format!(
                "secret '{}' was sealed with key {}, and this node has key {}: give every node the same {KEY_ENV} (or key file)",
                stored.name, stored.key_id, self.id
            ));
        }
        let refused =
            || format!("secret '{}' does not open with this key: it was changed in the database", stored.name);
        if stored.nonce.len() != 24 {
            return Err(refused());
        }
        let nonce = XNonce::from_slice(&stored.nonce);
        let plain = self
            .cipher
            .decrypt(nonce, Payload { msg: &stored.sealed, aad: stored.name.as_bytes() })
            .map_err(|_| refused())?;
        String::from_utf8(plain).map_err(|_| refused())
    }
}

/// `bytes` random bytes from the operating system, in hex: for ids that
/// are capabilities (a webhook's), which nobody may guess.
pub fn random_hex(bytes: usize) -> String {
    let mut random = vec![0u8; bytes];
    OsRng.fill_bytes(&mut random);
    hex(&random)
}

pub(crate) use crate::text::{hex, unhex};

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(key: &SecretKey, name: &str, value: &str) -> StoredSecret {
        let (nonce, sealed) = key.seal(name, value);
        StoredSecret { name: name.into(), key_id: key.id().into(), nonce, sealed, created_us: 1, updated_us: 1 }
    }

    #[test]
    fn a_sealed_value_opens_with_its_key_and_name_only() {
        let key = SecretKey::from_hex(&"ab".repeat(32)).unwrap();
        let secret = stored(&key, "TOKEN", "s3cret-value");
        assert!(!secret.sealed.windows(12).any(|w| w == b"s3cret-value"), "the value is not kept in clear");
        assert_eq!(key.open(&secret).unwrap(), "s3cret-value");
        let moved = StoredSecret { name: "OTHER".into(), ..secret.clone() };
        assert!(key.open(&moved).unwrap_err().contains("does not open"), "bound to its name");
        let mut flipped = secret.clone();
        flipped.sealed[0] ^= 1;
        assert!(key.open(&flipped).is_err(), "a changed byte is refused");
        let other = SecretKey::from_hex(&"cd".repeat(32)).unwrap();
        assert!(other.open(&secret).unwrap_err().contains("sealed with key"), "another key says so");
        assert_ne!(stored(&key, "TOKEN", "x").nonce, stored(&key, "TOKEN", "x").nonce, "a fresh nonce each time");
    }

    #[test]
    fn a_key_file_is_created_once_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        // The variable would win over the file; these tests never set it.
        assert!(std::env::var(KEY_ENV).is_err());
        let first = SecretKey::load(&data).unwrap();
        let mode = std::fs::metadata(data.join(KEY_FILE)).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        assert_eq!(SecretKey::load(&data).unwrap().id(), first.id(), "read back, not made again");
        assert!(SecretKey::from_hex("12").is_err());
        assert!(SecretKey::from_hex(&"zz".repeat(32)).is_err());
    }
}
