//! Turning a presented key into a `Caller`, at the cost of a hash and a map
//! lookup on most requests: what the store says of a key is kept for at
//! most `FRESH_FOR`, so a key revoked on another node stops working within
//! it, and one revoked on this node at once.

use crate::store::Store;
use crate::tenancy::{Actor, Caller, DEFAULT_WORKSPACE, Role, keys};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long what the store said of a key (or of a workspace) is believed.
pub const FRESH_FOR: Duration = Duration::from_millis(500);

/// Entries kept at most; past it the cache starts over (a client spraying
/// made-up key ids costs a store lookup each, never memory).
const MAX_CACHED: usize = 10_000;

/// Why a request's credentials do not make a caller.
#[derive(Debug)]
pub enum Refusal {
    /// Not a key this server knows, or a revoked one: 401.
    UnknownKey,
    /// The operator named a workspace that does not exist: 404.
    NoSuchWorkspace(String),
    /// A key asked to act in another workspace than its own: 403.
    OtherWorkspace,
    /// The store could not be asked.
    Store(anyhow::Error),
}

#[derive(Clone)]
struct KeyGrant {
    digest: String,
    workspace: String,
    role: Role,
    name: String,
}

struct Cached<T> {
    value: T,
    fetched: Instant,
}

impl<T> Cached<T> {
    fn fresh(&self) -> bool {
        self.fetched.elapsed() < FRESH_FOR
    }
}

/// The keys and workspaces a node has looked up lately.
pub struct Keyring {
    store: Arc<Store>,
    keys: Mutex<HashMap<String, Cached<Option<KeyGrant>>>>,
    workspaces: Mutex<HashMap<String, Cached<bool>>>,
}

impl Keyring {
    pub fn new(store: Arc<Store>) -> Keyring {
        Keyring { store, keys: Mutex::default(), workspaces: Mutex::default() }
    }

    /// The caller a workspace key makes, asking to act in `asked` (the
    /// `X-Workspace` header, if any).
    pub async fn key_caller(&self, key: &str, asked: Option<&str>) -> Result<Caller, Refusal> {
        let key_id = keys::key_id(key).ok_or(Refusal::UnknownKey)?;
        let grant = self.grant(key_id).await?.ok_or(Refusal::UnknownKey)?;
        if !keys::digests_match(&keys::digest(key), &grant.digest) {
            return Err(Refusal::UnknownKey);
        }
        if asked.is_some_and(|asked| asked != grant.workspace) {
            return Err(Refusal::OtherWorkspace);
        }
        Ok(Caller {
            workspace: grant.workspace,
            role: grant.role,
            actor: Actor::Key { key_id: key_id.to_string(), name: grant.name },
        })
    }

    /// The operator, acting in `asked` (default `default`), which must exist.
    pub async fn operator_caller(&self, asked: Option<&str>) -> Result<Caller, Refusal> {
        let workspace = asked.unwrap_or(DEFAULT_WORKSPACE);
        if workspace != DEFAULT_WORKSPACE && !self.workspace_exists(workspace).await? {
            return Err(Refusal::NoSuchWorkspace(workspace.to_string()));
        }
        Ok(Caller::operator(workspace))
    }

    /// Forget what was looked up of a key (revoked on this node: at once)
    /// or of every key and workspace (a workspace removed).
    pub fn forget_key(&self, key_id: &str) {
        self.keys.lock().unwrap().remove(key_id);
    }

    pub fn forget_all(&self) {
        self.keys.lock().unwrap().clear();
        self.workspaces.lock().unwrap().clear();
    }

    async fn grant(&self, key_id: &str) -> Result<Option<KeyGrant>, Refusal> {
        if let Some(cached) = self.keys.lock().unwrap().get(key_id).filter(|cached| cached.fresh()) {
            return Ok(cached.value.clone());
        }
        let stored = self.store.key(key_id).await.map_err(Refusal::Store)?;
        let grant = stored.filter(|key| key.revoked_us.is_none()).map(|key| KeyGrant {
            digest: key.digest,
            workspace: key.workspace,
            role: key.role,
            name: key.name,
        });
        remember(&self.keys, key_id, grant.clone());
        Ok(grant)
    }

    async fn workspace_exists(&self, name: &str) -> Result<bool, Refusal> {
        if let Some(cached) = self.workspaces.lock().unwrap().get(name).filter(|cached| cached.fresh()) {
            return Ok(cached.value);
        }
        let exists = self.store.workspace(name).await.map_err(Refusal::Store)?.is_some();
        remember(&self.workspaces, name, exists);
        Ok(exists)
    }
}

fn remember<T>(cache: &Mutex<HashMap<String, Cached<T>>>, key: &str, value: T) {
    let mut cache = cache.lock().unwrap();
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(key.to_string(), Cached { value, fetched: Instant::now() });
}
