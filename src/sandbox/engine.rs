//! The engines of the process and their instance pools, the guest component
//! compiled for them (from a disk cache when it can), and the epoch ticker
//! that drives time quotas.
//!
//! There are two pools. The *warm* pool keeps the first 16 MiB of a freed
//! slot resident, so the next instance in it takes no page faults: the
//! fast path for the runs a node executes at once in the usual case. The
//! *burst* pool (only when more instances are allowed than warm slots)
//! gives a freed slot's memory back to the system at once: a thousand
//! runs sleeping at once cost what they dirtied while they live, and
//! nothing once they end. wasmtime applies one keep-resident setting to a
//! whole pool, hence two engines over the same compiled guest.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// The guest component, built by build.rs from `runtime/`.
pub static GUEST_COMPONENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guest.wasm"));

/// Hash of the guest's sources (build.rs), part of the artefact cache key.
pub const GUEST_SOURCE_HASH: &str = env!("HERO_LOGIC_GUEST_HASH");

/// The wasmtime release the host is built against: the version of the copy
/// in `vendor/wasmtime`, read by build.rs (`vendor/check-wasmtime.sh` checks
/// that copy against the published crate).
pub const WASMTIME_VERSION: &str = env!("HERO_LOGIC_WASMTIME_VERSION");

/// One epoch tick. CPU time is counted in ticks, and a busy guest yields to
/// the async runtime every `YIELD_EVERY_TICKS` of them.
pub const TICK: Duration = Duration::from_millis(1);

/// How the engines are sized.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Component instances alive at once (runs and their subflows).
    pub max_instances: u32,
    /// Of those, how many slots stay warm (memory kept resident between
    /// instances); the rest are burst slots that give memory back when freed.
    pub warm_instances: u32,
    /// The largest linear memory any run may be given.
    pub max_memory_bytes: u64,
}

impl Default for EngineOptions {
    fn default() -> EngineOptions {
        EngineOptions { max_instances: 256, warm_instances: 256, max_memory_bytes: 4 * 1024 * 1024 * 1024 }
    }
}

impl EngineOptions {
    /// The warm pool's size and the burst pool's (0: no burst pool).
    pub fn pool_sizes(&self) -> (u32, u32) {
        let warm = self.warm_instances.clamp(1, self.max_instances.max(1));
        (warm, self.max_instances.saturating_sub(warm))
    }
}

/// Which of the two pools an engine serves (see the module's comment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Warm,
    Burst,
}

pub fn build_engine(options: &EngineOptions, kind: PoolKind, instances: u32) -> Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    // CPython's component holds several core instances, memories and tables,
    // and its function table needs room for ~200k elements.
    pool.total_component_instances(instances)
        .total_core_instances(instances * 32)
        .total_memories(instances * 4)
        .total_tables(instances * 32)
        .total_stacks(instances)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(32)
        .table_elements(262_144)
        .max_memory_size(usize::try_from(options.max_memory_bytes).unwrap_or(usize::MAX))
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20);
    if kind == PoolKind::Warm {
        // Keeping the first pages of a freed slot resident makes the next
        // instance in it cheap: fresh instances are dominated by page faults.
        // `Auto`: kernels before 6.7 have no PAGEMAP_SCAN and copy it all.
        pool.linear_memory_keep_resident(16 << 20).table_keep_resident(16 << 20).pagemap_scan(wasmtime::Enabled::Auto);
    }
    // Measured on a 2-core machine with `hero_logic bench --only runs`
    // (trivial flow p50): 16 MiB kept resident is the knee (0 or 4 MiB:
    // ~2.1-2.7 ms, with two workers falling to 180-270 runs/s as page faults
    // contend on the address space; 16 or 32 MiB ~2.2 ms). Resetting all of
    // it by copy was a third of a trivial run; `pagemap_scan` copies back
    // only the pages the instance wrote: 2.5 -> 1.5 ms, with the vendored
    // wasmtime's scan reporting 512 dirty regions (vendor/wasmtime/PATCHES.md;
    // at wasmtime's 32 a CPython heap overflowed it and runs got slower).

    let mut config = Config::new();
    // A burst slot's stack goes back to the system when freed, like its
    // memory; a warm slot's stays (it is reused at once).
    config.async_stack_zeroing(kind == PoolKind::Burst);
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Ok(Engine::new(&config)?)
}

/// The compiled guest for `engine`: loaded from the artefact cache in
/// `cache_dir` when a matching one is there, otherwise compiled (and cached).
pub fn load_guest(engine: &Engine, cache_dir: Option<&Path>) -> Result<Component> {
    let Some(dir) = cache_dir else {
        return Ok(Component::new(engine, GUEST_COMPONENT)?);
    };
    let path = artefact_path(engine, dir);
    if path.exists() {
        // SAFETY: the file name carries a key over the wasmtime version, the
        // engine's compatibility hash and the guest's sources, and files are
        // only ever created whole (written aside, then renamed) by this code.
        // wasmtime checks version and configuration again while loading.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "ignoring unusable compiled guest; recompiling")
            }
        }
    }
    let compiled = engine.precompile_component(GUEST_COMPONENT)?;
    if let Err(error) = write_atomically(&path, &compiled) {
        tracing::warn!(path = %path.display(), %error, "could not cache the compiled guest");
    }
    // SAFETY: `compiled` was produced by this engine a moment ago.
    Ok(unsafe { Component::deserialize(engine, &compiled)? })
}

/// The compiled guest for a second engine, made from the first's where the
/// two engines compile alike (the burst pool differs only in how it frees
/// slots), so the guest is compiled once.
pub fn load_guest_again(engine: &Engine, loaded: &Component, cache_dir: Option<&Path>) -> Result<Component> {
    if cache_dir.is_some() {
        // Same compatibility hash, same file: mapped, not compiled.
        return load_guest(engine, cache_dir);
    }
    let compiled = loaded.serialize()?;
    // SAFETY: `compiled` is this process's own compilation of the guest;
    // wasmtime refuses it if `engine` does not compile alike.
    match unsafe { Component::deserialize(engine, &compiled) } {
        Ok(component) => Ok(component),
        Err(_) => Ok(Component::new(engine, GUEST_COMPONENT)?),
    }
}

/// `<dir>/guest-<key>.cwasm`, the key covering everything that makes an
/// artefact loadable: a stale or foreign artefact has another name.
pub fn artefact_path(engine: &Engine, dir: &Path) -> PathBuf {
    struct ShaHasher(Sha256);
    impl Hasher for ShaHasher {
        fn finish(&self) -> u64 {
            unreachable!("only the digest is read")
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = ShaHasher(Sha256::new());
    WASMTIME_VERSION.hash(&mut hasher);
    GUEST_SOURCE_HASH.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let digest = hasher.0.finalize();
    let key: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    dir.join(format!("guest-{key}.cwasm"))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("artefact path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let partial = path.with_extension(format!("partial-{}", std::process::id()));
    std::fs::write(&partial, bytes).with_context(|| format!("write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("rename into {}", path.display()))?;
    Ok(())
}

/// The default artefact cache: `$HERO_LOGIC_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/hero_logic`, else `~/.cache/hero_logic`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HERO_LOGIC_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("hero_logic"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/hero_logic"))
}

/// Advances the engines' epochs every `TICK` on its own thread; stops and
/// joins the thread when dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engines: Vec<Engine>) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hero_logic-epoch".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engines.iter().for_each(Engine::increment_epoch);
                }
            })
            .expect("spawning a thread at start-up only fails when the process is out of resources");
        EpochTicker { stop, thread: Some(thread) }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
