//! Workspace keys: `hlk_<id>_<secret>`. The id names the key in lists and
//! the audit log and finds its row; the secret is 256 random bits. Only the
//! SHA-256 of the whole key is stored, so the database (or a copy of it)
//! holds nothing a request could present.

use crate::text::hex;
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use sha2::{Digest, Sha256};

const PREFIX: &str = "hlk_";
/// Bytes of the id (in hex, twice as many characters).
const ID_BYTES: usize = 8;
/// Bytes of the secret.
const SECRET_BYTES: usize = 32;

/// A freshly made key: what the caller is shown once, and what is stored.
pub struct NewKey {
    pub key_id: String,
    pub key: String,
    pub digest: String,
}

pub fn generate() -> NewKey {
    let key_id = random_hex(ID_BYTES);
    let key = format!("{PREFIX}{key_id}_{}", random_hex(SECRET_BYTES));
    let digest = digest(&key);
    NewKey { key_id, key, digest }
}

/// Whether a presented credential has a key's shape (so it is checked as
/// one, and refused as an unknown key when it is not).
pub fn looks_like_key(credential: &str) -> bool {
    credential.starts_with(PREFIX)
}

/// The id part of a well-formed key.
pub fn key_id(key: &str) -> Option<&str> {
    let (id, secret) = key.strip_prefix(PREFIX)?.split_once('_')?;
    let hex = |text: &str, bytes: usize| text.len() == 2 * bytes && text.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(id, ID_BYTES) && hex(secret, SECRET_BYTES)).then_some(id)
}

fn random_hex(bytes: usize) -> String {
    let mut random = vec![0u8; bytes];
    OsRng.fill_bytes(&mut random);
    hex(&random)
}

/// What is stored of a key: the hex SHA-256 of all of it.
pub fn digest(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Compares two digests without stopping at the first difference.
pub fn digests_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_id_and_is_stored_as_a_digest_only() {
        let made = generate();
        assert_eq!(key_id(&made.key), Some(made.key_id.as_str()));
        assert!(looks_like_key(&made.key));
        assert!(digests_match(&digest(&made.key), &made.digest));
        assert!(!made.digest.contains(&made.key[made.key.len() - 16..]));
        assert_ne!(generate().key, made.key);
    }

    #[test]
    fn malformed_keys_have_no_id() {
        let made = generate();
        for bad in ["", "hlk_", "hlk_abc_def", &made.key[..made.key.len() - 1], &made.key.replace("hlk_", "hlx_")] {
            assert_eq!(key_id(bad), None, "{bad}");
        }
    }
}
