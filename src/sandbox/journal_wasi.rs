//! The WASI imports that answer the guest from outside its memory — the
//! wall and monotonic clocks, random bytes (from one journaled seed per
//! instance), sleeps — defined by the host
//! itself in place of wasmtime-wasi's, so that each answer goes into the
//! run's journal (`journal`). Everything else of WASI stays wasmtime-wasi's.
//! Defined over the same interface names, which the linker lets these
//! shadow; `journaled_imports_shadow_wasmtime_wasi` checks they still match.

use super::journal::Entry;
use super::state::HostState;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::bindings::clocks::wall_clock::Datetime;
use wasmtime_wasi::p2::{DynPollable, Pollable, subscribe};

/// The WASI version wasmtime-wasi defines these interfaces at.
const WASI: &str = "0.2.12";

/// Most random bytes one call may ask for: CPython asks for a few kB at
/// most (seeding `random`), and each byte is journaled.
const MAX_RANDOM_BYTES: u64 = 1 << 20;

type Ctx<'a> = StoreContextMut<'a, HostState>;

/// Define the journaled imports over wasmtime-wasi's (added before).
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut wall = linker.instance(&format!("wasi:clocks/wall-clock@{WASI}"))?;
    wall.func_wrap("now", |mut store: Ctx<'_>, (): ()| {
        let answer = store.data_mut().answer("wall_clock", || {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            Entry::WallClock { seconds: now.as_secs(), nanoseconds: now.subsec_nanos() }
        })?;
        let Entry::WallClock { seconds, nanoseconds } = answer else { unreachable!("an answer of its kind") };
        Ok((Datetime { seconds, nanoseconds },))
    })?;
    let mut monotonic = linker.instance(&format!("wasi:clocks/monotonic-clock@{WASI}"))?;
    monotonic.func_wrap("now", |mut store: Ctx<'_>, (): ()| {
        let live = monotonic_now(store.data());
        let state = store.data_mut();
        let Entry::MonotonicClock { ns } = state.answer("monotonic_clock", || Entry::MonotonicClock { ns: live })?
        else {
            unreachable!("an answer of its kind")
        };
        // A resumed run's clock goes on from its journal's last reading
        // (the instance started moments ago), never back.
        if ns > live {
            state.clock_start =
                std::time::Instant::now().checked_sub(Duration::from_nanos(ns)).unwrap_or(state.clock_start);
        }
        Ok((ns,))
    })?;
    monotonic.func_wrap("subscribe-duration", |mut store: Ctx<'_>, (ns,): (u64,)| sleep(store.data_mut(), ns))?;
    monotonic.func_wrap("subscribe-instant", |mut store: Ctx<'_>, (at,): (u64,)| {
        let ns = at.saturating_sub(monotonic_now(store.data()));
        sleep(store.data_mut(), ns)
    })?;
    for (interface, prefix) in [("random", "get-random"), ("insecure", "get-insecure-random")] {
        let mut random = linker.instance(&format!("wasi:random/{interface}@{WASI}"))?;
        random.func_wrap(&format!("{prefix}-bytes"), |mut store: Ctx<'_>, (len,): (u64,)| {
            if len > MAX_RANDOM_BYTES {
                wasmtime::bail!("asked for {len} random bytes; at most {MAX_RANDOM_BYTES} at once");
            }
            let mut bytes = vec![0u8; len as usize];
            random_stream(store.data_mut())?.apply_keystream(&mut bytes);
            Ok((bytes,))
        })?;
        random.func_wrap(&format!("{prefix}-u64"), |mut store: Ctx<'_>, (): ()| {
            let mut bytes = [0u8; 8];
            random_stream(store.data_mut())?.apply_keystream(&mut bytes);
            Ok((u64::from_le_bytes(bytes),))
        })?;
    }
    let mut seed = linker.instance(&format!("wasi:random/insecure-seed@{WASI}"))?;
    seed.func_wrap("insecure-seed", |mut store: Ctx<'_>, (): ()| {
        let mut bytes = [0u8; 16];
        random_stream(store.data_mut())?.apply_keystream(&mut bytes);
        let (low, high) = bytes.split_at(8);
        Ok(((u64::from_le_bytes(low.try_into()?), u64::from_le_bytes(high.try_into()?)),))
    })?;
    linker.allow_shadowing(false);
    Ok(())
}

/// The instance's random stream, keyed at its first ask by 32 bytes from
/// the operating system, which the journal keeps: ChaCha20's keystream is
/// as unpredictable as its key, and the same key gives the same bytes.
fn random_stream(state: &mut HostState) -> wasmtime::Result<&mut ChaCha20> {
    if state.random.is_none() {
        let answer = state.answer("random_seed", || {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            Entry::RandomSeed { hex: crate::text::hex(&seed) }
        })?;
        let Entry::RandomSeed { hex } = answer else { unreachable!("an answer of its kind") };
        let seed: [u8; 32] = crate::text::unhex(&hex).and_then(|bytes| bytes.try_into().ok()).ok_or_else(|| {
            wasmtime::Error::new(super::journal::ReplayDiverged(
                "the journal's random seed is not 32 bytes of hex".into(),
            ))
        })?;
        state.random = Some(ChaCha20::new(&seed.into(), &[0u8; 12].into()));
    }
    Ok(state.random.as_mut().expect("set above"))
}

/// Nanoseconds since the instance started: its monotonic clock.
fn monotonic_now(state: &HostState) -> u64 {
    u64::try_from(state.clock_start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// A pollable ready `ns` from now: how the guest sleeps. A replay does not
/// wait: the sleep ended when the original's did, and the clock reads
/// after it are the original's. (Nor does a resumed run's sleep the journal
/// holds: the crash may have cut it short, which a resume does not make up.)
fn sleep(state: &mut HostState, ns: u64) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let replayed = state.next_is_replayed();
    state.answer("sleep", || Entry::Sleep { ns })?;
    let wait = if replayed {
        // The clock moves on by the sleep all the same, so a resumed run's
        // live readings after it are as far on as the flow slept.
        state.clock_start = state.clock_start.checked_sub(Duration::from_nanos(ns)).unwrap_or(state.clock_start);
        Duration::ZERO
    } else {
        Duration::from_nanos(ns)
    };
    let until = tokio::time::Instant::now().checked_add(wait);
    let sleep = state.table().push(Sleep { until, yielded: false })?;
    Ok((subscribe(state.table(), sleep)?,))
}

/// A sleep's deadline; None when it is too far off to name (never ready).
struct Sleep {
    until: Option<tokio::time::Instant>,
    yielded: bool,
}

impl Pollable for Sleep {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        Box::pin(async move {
            match self.until {
                Some(until) if until > tokio::time::Instant::now() => tokio::time::sleep_until(until).await,
                // A deadline already past yields once, so a guest polling in a
                // loop with a zero timeout lets other tasks run.
                Some(_) if !self.yielded => {
                    self.yielded = true;
                    tokio::task::yield_now().await;
                }
                Some(_) => {}
                None => std::future::pending().await,
            }
        })
    }
}
