//! hero_logic runs untrusted Python flows in a WebAssembly sandbox and records
//! every span they open, from the host, so the tree can be watched live.
//!
//! # Layout
//!
//! - `sandbox`: the wasmtime engine, the guest component, a fresh instance per
//!   run, the host functions, quotas, and `Sandbox::run` / `Sandbox::describe`.
//! - `trace`: the span record, the per-run span stack (`Recorder`) and the
//!   events a run emits through its sink.
//! - `flowdef`: what a module declares (`FlowInfo`) and input checking.
//! - `cli`: the `hero_logic` command line; `render` prints a run as a tree.
//! - `bench`: `hero_logic bench`, the sandbox measured against native python3.
//!
//! The guest (CPython + the `hero_logic` SDK) lives in `runtime/`; `build.rs`
//! builds it into the component this crate embeds.

pub mod bench;
pub mod cli;
pub mod flowdef;
pub mod render;
pub mod sandbox;
pub mod trace;
