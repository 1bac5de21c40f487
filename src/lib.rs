//! hero_logic runs untrusted Python flows in a WebAssembly sandbox and records
//! every span they open, from the host, so the tree can be watched live.
//!
//! # Layout
//!
//! - `sandbox`: the wasmtime engines (a warm pool and a burst pool, `engine`),
//!   the guest component, a fresh instance per guest call (`instance`), what an instance and a run hold (`state`), the
//!   host functions (`host`, a thin table over `rpc` and `subflow`), the
//!   run's journal of every answer the host gives (`journal`, with the WASI
//!   clocks, random and sleeps the host defines itself in `journal_wasi`,
//!   and the `Replay` that answers a replay, or a durable run's resume,
//!   from it), quotas
//!   (one table, `quotas`), the bounds on what a guest makes the host read
//!   and keep (`bounds`), and `Sandbox::run` / `Sandbox::describe`.
//! - `text`: hex, SHA-256 digests, cutting text, identifiers: a leaf every
//!   layer may use.
//! - `tenancy`: who asks and where: workspaces, roles (`Role`), the
//!   `Caller` a request acts as, and workspace keys (`keys`: made, stored
//!   as a digest). A leaf the store and everything above use.
//! - `spelled`: `spelled!`, enums with one spelling each (statuses, span
//!   kinds, log streams, input types) for serde, the store and messages.
//! - `trace`: the span record and its error (`ErrorInfo`, built only by its
//!   constructors), the run's open spans (`Recorder`, which also continues
//!   a resumed run's stored tree), the events
//!   a run emits through its sink, and the event bus watchers subscribe to.
//! - `flowdef`: what a module declares (`FlowInfo`) and input checking.
//! - `store`: one interface over two databases: `sqlite` (the embedded
//!   default, WAL, a batched writer thread) and `postgres` (several nodes on
//!   one database: a batched writer task, a read pool, leases, `NOTIFY`);
//!   shared records, writes, replay and the search query language; and
//!   whether the database can be reached now (`health`).
//! - `cluster`: this node among others on PostgreSQL: its lease, ending the
//!   runs of nodes that are gone, and the notices other nodes' commits carry.
//! - `stream`: every message the WebSockets send (`StreamMessage`), documented once.
//! - `scheduler`: the bounded run queue and each run's life from queued to
//!   stored, including waiting for a place under a concurrency limit
//!   (`limits`) and resuming durable runs a dead process left (`resume`).
//! - `schedules`: cron patterns, and starting each due tick's run once
//!   across nodes.
//! - `http`: the axum routes (flows, runs, replay, webhooks, schedules, secrets, WebSocket streams,
//!   metrics), `AppError`,
//!   the one guard every request passes (`guard`: Host, Origin, who asks and
//!   what their role allows, from the route table `access`, with keys looked
//!   up through `keyring`), the workspaces, keys and audit routes, and
//!   the accept loop with its connection limits (`conn`).
//! - `server`: `serve(listener, config, shutdown)`, wiring it all together.
//! - `idle_trim`: giving the allocator's free memory back once a burst is over.
//! - `retention`: removing old finished runs (`--retain-runs`, `--retain-days`)
//!   in small batches.
//! - `replays`: what replaying an ended run needs (its journal, module and
//!   flow), for the API and the command line alike.
//! - `retries`: the next attempt of a run that ended badly, kept with its
//!   end and started once across nodes when due.
//! - `metrics`: what `/metrics` reports (prometheus-client, OpenMetrics text).
//! - `services`: the service registry, JSON-RPC client, OpenRPC checks, built-ins, health checks,
//!   and the capabilities built-ins give flows (`grants`).
//! - `secrets`: values services need that flows never hold: sealed at rest
//!   (`key`), filled into a service's headers on each call and taken out of
//!   its answers (`headers`).
//! - `library`: adding a module (described in the sandbox, then stored), and
//!   how runs find flows (`pick_flow`, `StoredFlows`).
//! - `builtin_flows`: the six flows of `flows/`, stored at start.
//! - `cli`: the `hero_logic` command line; `cli::render` prints a run as a tree.
//! - `bench`: `hero_logic bench`, the sandbox measured against native python3.
//! - `throwaway_postgres`: a PostgreSQL cluster started for the tests and
//!   the benchmark, removed when the process ends; and servers a test owns
//!   and restarts (`OwnServer`), or fails over (`StandbyPair`).
//! - `user_docs` (unit tests only): README.md and the guides under `docs/`
//!   read as one text, for the tests that check a table there against the code.
//!
//! The guest (CPython + the `hero_logic` SDK) lives in `runtime/`; `build.rs`
//! builds it into the component this crate embeds.

pub mod bench;
pub mod builtin_flows;
pub mod cli;
pub mod cluster;
pub mod flowdef;
pub mod http;
mod idle_trim;
pub mod library;
pub mod metrics;
pub mod replays;
pub mod retention;
pub mod retries;
pub mod sandbox;
pub mod scheduler;
pub mod schedules;
pub mod secrets;
pub mod server;
pub mod services;
mod spelled;
pub mod store;
pub mod stream;
pub mod tenancy;
pub mod text;
pub mod throwaway_postgres;
pub mod trace;
#[cfg(test)]
mod user_docs;
