//! The flows of modules described lately, by the hash of their source. A
//! run sent as source (the page's Run button, `POST /api/runs` with
//! `source`) is described before it runs; the same source sent again is
//! answered from here instead of a second instance. Only successes are
//! kept: a module that failed to load is loaded again (it may have failed
//! on a quota that the next caller has more of).

use crate::flowdef::FlowInfo;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Modules remembered; the oldest is forgotten first. A module declares at
/// most 100 flows, each bounded, so this bounds the memory too.
const KEPT: usize = 128;

type Key = [u8; 32];

/// The flows by key, and the keys oldest first.
#[derive(Default)]
struct Kept {
    by_key: HashMap<Key, Arc<[FlowInfo]>>,
    order: VecDeque<Key>,
}

#[derive(Default)]
pub(crate) struct Described {
    kept: Mutex<Kept>,
}

impl Described {
    pub fn key(source: &str) -> Key {
        Sha256::digest(source.as_bytes()).into()
    }

    pub fn get(&self, key: &Key) -> Option<Arc<[FlowInfo]>> {
        self.lock().by_key.get(key).cloned()
    }

    pub fn keep(&self, key: Key, flows: &[FlowInfo]) {
        let mut kept = self.lock();
        if kept.by_key.insert(key, Arc::from(flows)).is_none() {
            kept.order.push_back(key);
        }
        while kept.order.len() > KEPT {
            if let Some(oldest) = kept.order.pop_front() {
                kept.by_key.remove(&oldest);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        // Nothing panics while holding it; a poisoned map is still whole.
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
