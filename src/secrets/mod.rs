//! Secrets: values a service needs (tokens, keys) that flows never hold.
//! They are sealed at rest with the node's key (`key`), filled into the
//! headers a service is registered with on each call, and taken out of
//! what the service answers (`headers::Redactor`).

pub mod headers;
pub(crate) mod key;

pub use headers::{REDACTED, Redactor};
pub use key::{KEY_ENV, KEY_FILE, SecretKey, random_hex};

use crate::store::{Store, StoredSecret};
use axum::http::{HeaderName, HeaderValue};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The longest value a secret may have.
pub const MAX_VALUE_BYTES: usize = 4096;
/// The longest name a secret may have.
const MAX_NAME_BYTES: usize = 128;

/// What the API and the command line show of a secret: never its value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SecretSummary {
    pub name: String,
    pub created_us: i64,
    pub updated_us: i64,
}

impl From<&StoredSecret> for SecretSummary {
    fn from(secret: &StoredSecret) -> SecretSummary {
        SecretSummary { name: secret.name.clone(), created_us: secret.created_us, updated_us: secret.updated_us }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// What was asked for is wrong (a name, a value, a missing secret).
    #[error("{0}")]
    Invalid(String),
    /// The key cannot be had, or does not open a stored secret.
    #[error("{0}")]
    Key(String),
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

/// The headers of one call, filled in, and what to take out of its answer.
pub struct Filled {
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub redactor: Redactor,
}

pub struct Secrets {
    store: Arc<Store>,
    /// Where the key file is when `HERO_LOGIC_SECRET_KEY` is not set.
    data_dir: PathBuf,
    /// Loaded at the first use, so a server that holds no secrets never
    /// writes a key file.
    key: Mutex<Option<Arc<SecretKey>>>,
}

impl Secrets {
    pub fn new(store: Arc<Store>, data_dir: PathBuf) -> Secrets {
        Secrets { store, data_dir, key: Mutex::new(None) }
    }

    fn key(&self) -> Result<Arc<SecretKey>, SecretError> {
        let mut held = self.key.lock().expect("nothing panics while holding the lock");
        if let Some(key) = &*held {
            return Ok(key.clone());
        }
        let key = Arc::new(SecretKey::load(&self.data_dir).map_err(SecretError::Key)?);
        *held = Some(key.clone());
        Ok(key)
    }

    /// Store `value` under `name`, sealed, replacing any value it had.
    pub async fn set(&self, name: &str, value: &str) -> Result<SecretSummary, SecretError> {
        check_name(name)?;
        // Said without the value: this message reaches API answers and logs.
        if value.is_empty()
            || value.len() > MAX_VALUE_BYTES
            || value.trim() != value
            || !value.chars().all(|c| c == ' ' || c.is_ascii_graphic())
        {
            return Err(SecretError::Invalid(format!(
                "a secret's value is 1 to {MAX_VALUE_BYTES} bytes of printable ASCII without spaces around it (it is sent in a header)"
            )));
        }
        let key = self.key()?;
        let (nonce, sealed) = key.seal(name, value);
        let now = crate::trace::now_us();
        let secret = StoredSecret {
            name: name.into(),
            key_id: key.id().into(),
            nonce,
            sealed,
            created_us: now,
            updated_us: now,
        };
        self.store.save_secret(secret).await?;
        let stored = self.store.secret(name).await?.ok_or_else(|| anyhow::anyhow!("a saved secret is read back"))?;
        Ok(SecretSummary::from(&stored))
    }

    pub async fn list(&self) -> anyhow::Result<Vec<SecretSummary>> {
        Ok(self.store.secrets().await?.iter().map(SecretSummary::from).collect())
    }

    /// Returns whether there was such a secret.
    pub async fn remove(&self, name: &str) -> anyhow::Result<bool> {
        self.store.remove_secret(name).await
    }

    /// Whether every secret `names` holds is set; the first that is not.
    pub async fn missing(&self, names: &[String]) -> anyhow::Result<Option<String>> {
        for name in names {
            if self.store.secret(name).await?.is_none() {
                return Ok(Some(name.clone()));
            }
        }
        Ok(None)
    }

    /// `templates` with the secrets they name filled in, for one call.
    pub async fn fill(&self, templates: &BTreeMap<String, String>) -> Result<Filled, SecretError> {
        let names = headers::check(templates).map_err(SecretError::Invalid)?;
        let mut values = BTreeMap::new();
        if !names.is_empty() {
            let key = self.key()?;
            for name in names {
                let stored = self
                    .store
                    .secret(&name)
                    .await?
                    .ok_or_else(|| SecretError::Invalid(format!("secret '{name}' is not set")))?;
                values.insert(name, key.open(&stored).map_err(SecretError::Key)?);
            }
        }
        let mut filled = Vec::with_capacity(templates.len());
        for (name, template) in templates {
            let text = headers::fill(template, &values).map_err(SecretError::Invalid)?;
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| SecretError::Invalid(e.to_string()))?;
            let mut value = HeaderValue::from_str(&text)
                .map_err(|_| SecretError::Invalid(format!("header '{name}' is not a header value once filled in")))?;
            // Kept out of hyper's debug output and compressed tables.
            value.set_sensitive(true);
            filled.push((name, value));
        }
        Ok(Filled { headers: filled, redactor: Redactor::new(values.into_values()) })
    }
}

fn check_name(name: &str) -> Result<(), SecretError> {
    if name.len() > MAX_NAME_BYTES || !crate::text::is_identifier(name) {
        return Err(SecretError::Invalid(format!(
            "'{}' cannot be a secret name: use at most {MAX_NAME_BYTES} letters, digits and _, not starting with a digit",
            crate::sandbox::clip_str(name, MAX_NAME_BYTES)
        )));
    }
    Ok(())
}
