//! `hero_logic bench`: measures the sandbox against a native `python3`
//! baseline in one run on one machine, and prints a table and a final line of
//! JSON with every figure. Targets come from ARCHITECTURE.md; the benchmark
//! reports whether each is met, it does not judge them in tests.

mod access;
mod cli;
mod http_path;
mod journal;
mod native;
mod nodes;
mod rpc;
pub(crate) mod search;
mod server;
mod service;
mod stats;
mod waiting;

use crate::flowdef::FlowInfo;
use crate::sandbox::{ModuleFlows, Quotas, RunEnv, RunReport, RunRequest, Sandbox, SandboxOptions};
use crate::trace::Status;
use anyhow::{Context, Result, bail};
use native::Native;
use serde_json::{Map, Value, json};
use service::BenchService;
use stats::Latencies;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const TRIVIAL: &str = include_str!("../../bench/trivial.py");
const SPANS: &str = include_str!("../../bench/spans.py");
const PARK: &str = include_str!("../../bench/park.py");
const CPU: &str = include_str!("../../bench/cpu.py");

/// How much to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// A short run that checks the harness works; its figures are noisy.
    pub quick: bool,
    /// Measure one part only.
    pub only: Option<Section>,
    pub cache_dir: Option<PathBuf>,
}

/// A part of the benchmark that can be run alone (`--only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    /// Library search over generated flows.
    Search,
    /// Spans recorded, stored and streamed.
    Spans,
    /// Trivial runs: latency, throughput, and the native baseline.
    Runs,
    /// The store on PostgreSQL beside SQLite: runs per second on one node
    /// and on two, spans stored, span-to-watcher latency across nodes.
    Postgres,
    /// What the server adds to a trivial run: in-process against
    /// `?wait=true`, runs per second through the API, native python3.
    Server,
    /// A thousand runs sleeping at once on one server: time to end, peak
    /// memory, memory given back.
    Waiting,
    /// `hero_logic run FILE` once per process against native `python3 -S`,
    /// and the cold start.
    Cli,
    /// The journal: trivial runs and clock reads journaled to the store
    /// against the same with no journal.
    Journal,
    /// What deciding who asks costs a request: a workspace key against the
    /// operator's token, and a key looked up in the store again.
    Access,
}

struct Sizes {
    latency_runs: usize,
    throughput_runs: usize,
    native_runs: usize,
    cli_runs: usize,
    parked_runs: usize,
    spans: u64,
    paced_spans: u64,
    cpu_iterations: u64,
    search_flows: usize,
    search_queries: usize,
    search_scans: usize,
    waiting_runs: usize,
    waiting_sleep_s: f64,
    /// Clock reads in each run of the journal's measurement.
    clock_reads: u64,
}

impl Sizes {
    fn for_options(options: &BenchOptions) -> Sizes {
        if options.quick {
            Sizes {
                latency_runs: 50,
                throughput_runs: 100,
                native_runs: 5,
                cli_runs: 5,
                parked_runs: 10,
                spans: 2_000,
                paced_spans: 200,
                cpu_iterations: 100_000,
                search_flows: 2_000,
                search_queries: 100,
                search_scans: 10,
                waiting_runs: 50,
                waiting_sleep_s: 1.0,
                clock_reads: 2_000,
            }
        } else {
            Sizes {
                latency_runs: 2_000,
                throughput_runs: 4_000,
                native_runs: 50,
                cli_runs: 50,
                parked_runs: 100,
                spans: 100_000,
                paced_spans: 5_000,
                cpu_iterations: 3_000_000,
                search_flows: 100_000,
                search_queries: 1_000,
                search_scans: 30,
                waiting_runs: 1_000,
                waiting_sleep_s: 5.0,
                clock_reads: 50_000,
            }
        }
    }
}

/// One line of the table.
struct Figure {
    key: &'static str,
    label: &'static str,
    value: f64,
    unit: &'static str,
    /// The target, and whether the value meets it.
    target: Option<(&'static str, bool)>,
}

/// A compiled flow module ready to run many times.
struct Prepared {
    source: Arc<str>,
    info: FlowInfo,
    env: RunEnv,
}

struct Harness {
    sandbox: Sandbox,
    service: Arc<BenchService>,
}

impl Harness {
    async fn prepare(&self, source: &str) -> Result<Prepared> {
        let flows = self.sandbox.describe(source, &Quotas::default()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let source: Arc<str> = Arc::from(source);
        let env = RunEnv {
            services: self.service.clone(),
            flows: Arc::new(ModuleFlows { source: source.clone(), flows: flows.clone() }),
            narrow_services: None,
            journal: None,
            replay: None,
            workspace: Arc::from(crate::tenancy::DEFAULT_WORKSPACE),
        };
        Ok(Prepared { source, info: flows[0].clone(), env })
    }

    /// One run with a fresh instance; events go to a channel nobody reads
    /// until the run is over, as the CLI does.
    async fn run(&self, flow: &Prepared, input: Value, quotas: Quotas) -> Result<RunReport> {
        let input = flow.info.check_input(&input)?;
        let (request, mut events) = RunRequest::new(flow.source.clone(), &flow.info, input, quotas, flow.env.clone());
        let report = self.sandbox.run(request).await;
        events.close();
        if report.status != Status::Ok {
            bail!("benchmark run of {} ended {}: {:?}", flow.info.name, report.status, report.error);
        }
        Ok(report)
    }
}

pub async fn run(options: BenchOptions) -> Result<()> {
    let sizes = Sizes::for_options(&options);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "hero_logic bench{} on {cores} cores; wasmtime {}",
        if options.quick { " --quick" } else { "" },
        crate::sandbox::WASMTIME_VERSION
    );

    if options.only == Some(Section::Postgres) {
        let figures = postgres_figures(&options).await?;
        print_report(&figures, POSTGRES_BASELINE, cores, options.quick);
        return Ok(());
    }
    if options.only == Some(Section::Waiting) {
        let figures = waiting_figures(&options, &sizes).await?;
        print_report(&figures, WAITING_BASELINE, cores, options.quick);
        return Ok(());
    }
    if options.only == Some(Section::Access) {
        let (requests, stale) = if options.quick { (200, 3) } else { (5000, 20) };
        let figures = access::figures(requests, stale).await?;
        print_report(&figures, access::ACCESS_BASELINE, cores, options.quick);
        return Ok(());
    }
    if options.only == Some(Section::Search) {
        let figures = search_figures(&sizes).await?;
        print_report(&figures, SEARCH_BASELINE, cores, options.quick);
        return Ok(());
    }

    let sandbox = Sandbox::new(&SandboxOptions { cache_dir: options.cache_dir.clone(), ..SandboxOptions::default() })?;
    let harness = Arc::new(Harness { sandbox, service: Arc::new(BenchService::new()) });
    if options.only == Some(Section::Spans) {
        let figures = span_figures(&harness, &options, &sizes).await?;
        print_report(&figures, SPANS_BASELINE, cores, options.quick);
        return Ok(());
    }
    if options.only == Some(Section::Journal) {
        let figures = journal::figures(&harness, sizes.latency_runs, sizes.clock_reads).await?;
        print_report(&figures, journal::JOURNAL_BASELINE, cores, options.quick);
        return Ok(());
    }
    let native = Native::find()?;
    if options.only == Some(Section::Server) {
        let figures = http_figures(&harness, native.as_ref(), &options, &sizes).await?;
        print_report(&figures, &native_baseline(native.as_ref()), cores, options.quick);
        return Ok(());
    }
    if options.only == Some(Section::Cli) {
        let figures = cli_figures(native.as_ref(), &sizes)?;
        print_report(&figures, &native_baseline(native.as_ref()), cores, options.quick);
        return Ok(());
    }
    if options.only == Some(Section::Runs) {
        let figures = run_figures(&harness, native.as_ref(), &sizes, cores).await?;
        print_report(&figures, &native_baseline(native.as_ref()), cores, options.quick);
        return Ok(());
    }
    let mut figures = Vec::new();

    figures.extend(run_figures(&harness, native.as_ref(), &sizes, cores).await?);
    figures.extend(http_figures(&harness, native.as_ref(), &options, &sizes).await?);
    figures.extend(journal::figures(&harness, sizes.latency_runs, sizes.clock_reads).await?);

    // The host's overhead per service call, against calling it directly.
    if let Some(native) = &native {
        let calls = if options.quick { 50 } else { 500 };
        let rpc = rpc::measure(&harness.sandbox, &native.python, calls).await?;
        figures.push(Figure {
            key: "rpc_direct_ms",
            label: "service call, direct",
            value: rpc.direct_ms,
            unit: "ms",
            target: None,
        });
        figures.push(Figure {
            key: "rpc_from_flow_ms",
            label: "service call, from a flow",
            value: rpc.through_flow_ms,
            unit: "ms",
            target: None,
        });
        figures.push(Figure {
            key: "rpc_host_overhead_ms",
            label: "host overhead per service call",
            value: rpc.through_flow_ms - rpc.direct_ms,
            unit: "ms",
            target: None,
        });
    }

    // Resident memory per additional live run.
    let per_run = memory_per_live_run(&harness, sizes.parked_runs).await?;
    // PSS counts a page shared by several mappings once; RSS counts it once
    // per mapping, and every instance maps the same copy-on-write image.
    figures.push(Figure {
        key: "pss_per_live_run_mib",
        label: "resident memory (PSS) per live run",
        value: per_run.pss_mib,
        unit: "MiB",
        target: Some(("<= 2 MiB", per_run.pss_mib <= 2.0)),
    });
    figures.push(Figure {
        key: "rss_per_live_run_mib",
        label: "RSS per live run (shared counted)",
        value: per_run.rss_mib,
        unit: "MiB",
        target: None,
    });
    figures.push(Figure {
        key: "private_per_live_run_mib",
        label: "private memory per live run",
        value: per_run.private_mib,
        unit: "MiB",
        target: None,
    });

    figures.extend(span_figures(&harness, &options, &sizes).await?);

    // CPU-bound Python: the price of isolation.
    let cpu = harness.prepare(CPU).await?;
    let quotas = Quotas { cpu_time_ms: 600_000, wall_time_ms: 600_000, ..Quotas::default() };
    let report = harness.run(&cpu, json!({"iterations": sizes.cpu_iterations}), quotas).await?;
    let sandbox_cpu_s =
        report.output.as_ref().and_then(|o| o["seconds"].as_f64()).context("cpu flow reports seconds")?;
    figures.push(Figure {
        key: "cpu_loop_sandbox_s",
        label: "CPU loop in the sandbox",
        value: sandbox_cpu_s,
        unit: "s",
        target: None,
    });
    if let Some(native) = &native {
        let flow_file = native.write_flow("cpu.py", CPU)?;
        let (_, out) = native.run(&flow_file, "cpu_loop", &format!(r#"{{"iterations": {}}}"#, sizes.cpu_iterations))?;
        let native_cpu_s = serde_json::from_str::<Value>(&out)?["seconds"].as_f64().context("native cpu seconds")?;
        figures.push(Figure {
            key: "cpu_loop_native_s",
            label: "CPU loop in native python3",
            value: native_cpu_s,
            unit: "s",
            target: None,
        });
        figures.push(Figure {
            key: "cpu_sandbox_over_native",
            label: "CPU loop, sandbox / native",
            value: sandbox_cpu_s / native_cpu_s,
            unit: "x",
            target: None,
        });
    }

    figures.extend(cli_figures(native.as_ref(), &sizes)?);

    figures.extend(search_figures(&sizes).await?);
    figures.extend(waiting_figures(&options, &sizes).await?);

    let baseline = format!("{}\n{SEARCH_BASELINE}\n{WAITING_BASELINE}", native_baseline(native.as_ref()));
    print_report(&figures, &baseline, cores, options.quick);
    Ok(())
}

const POSTGRES_BASELINE: &str = "baseline: the same runs and spans through a node on SQLite, measured in this run. \
Servers, clients and PostgreSQL share this machine's cores: two nodes here show what the database adds, not what \
two machines give (each node's runs/s scale with its cores until PostgreSQL's CPU per run, shown, is the limit).";

/// The store on PostgreSQL, against SQLite in the same run.
async fn postgres_figures(options: &BenchOptions) -> Result<Vec<Figure>> {
    let nodes = nodes::measure(options.cache_dir.clone(), options.quick).await?;
    let share = nodes.postgres_runs_per_s / nodes.sqlite_runs_per_s;
    let mut figures = vec![
        Figure {
            key: "runs_per_s_sqlite",
            label: "runs/s through HTTP, SQLite (baseline)",
            value: nodes.sqlite_runs_per_s,
            unit: "runs/s",
            target: None,
        },
        Figure {
            key: "runs_per_s_postgres",
            label: "runs/s through HTTP, PostgreSQL",
            value: nodes.postgres_runs_per_s,
            unit: "runs/s",
            target: None,
        },
        Figure {
            key: "postgres_over_sqlite",
            label: "PostgreSQL / SQLite runs/s",
            value: share,
            unit: "x",
            target: Some((">= 0.5", share >= 0.5)),
        },
        Figure {
            key: "runs_per_s_two_nodes",
            label: "runs/s, two nodes on one database",
            value: nodes.two_nodes_runs_per_s,
            unit: "runs/s",
            target: None,
        },
    ];
    if let Some(cpu) = nodes.postgres_cpu_ms_per_run {
        figures.push(Figure {
            key: "postgres_cpu_ms_per_run",
            label: "PostgreSQL CPU per run",
            value: cpu,
            unit: "ms",
            target: None,
        });
        figures.push(Figure {
            key: "postgres_runs_per_core_s",
            label: "runs/s one PostgreSQL core serves",
            value: 1000.0 / cpu,
            unit: "runs/s",
            target: None,
        });
    }
    figures.extend([
        Figure {
            key: "spans_per_s_sqlite",
            label: "spans stored/s, SQLite writer",
            value: nodes.sqlite_spans_per_s,
            unit: "spans/s",
            target: None,
        },
        Figure {
            key: "spans_per_s_postgres",
            label: "spans stored/s, PostgreSQL writer",
            value: nodes.postgres_spans_per_s,
            unit: "spans/s",
            target: None,
        },
        Figure {
            key: "cross_node_catch_up_ms",
            label: "watcher on other node, behind at end",
            value: nodes.cross_node_catch_up_ms,
            unit: "ms",
            target: None,
        },
        Figure {
            key: "span_to_watcher_same_node_p50_ms",
            label: "span to watcher, same node p50",
            value: nodes.same_node_latency.p50(),
            unit: "ms",
            target: None,
        },
        Figure {
            key: "span_to_watcher_other_node_p50_ms",
            label: "span to watcher, other node p50",
            value: nodes.cross_node_latency.p50(),
            unit: "ms",
            target: None,
        },
        Figure {
            key: "span_to_watcher_other_node_p99_ms",
            label: "span to watcher, other node p99",
            value: nodes.cross_node_latency.p99(),
            unit: "ms",
            target: Some(("< 50 ms", nodes.cross_node_latency.p99() < 50.0)),
        },
    ]);
    Ok(figures)
}

/// Library search: the index against a scan of every source, same library,
/// same words; and how often it finds FTS5's best ten.
async fn search_figures(sizes: &Sizes) -> Result<Vec<Figure>> {
    let search = search::measure(sizes.search_flows, sizes.search_queries, sizes.search_scans).await?;
    let label_flows = format_value(search.flows as f64);
    println!("library search: {label_flows} generated flows stored in {:.1} s", search.fill_s);
    Ok(vec![
        Figure {
            key: "search_p50_ms",
            label: "library search p50",
            value: search.indexed.p50(),
            unit: "ms",
            target: None,
        },
        Figure {
            key: "search_p99_ms",
            label: "library search p99",
            value: search.indexed.p99(),
            unit: "ms",
            target: Some(("<= 10 ms at 100,000 flows", search.indexed.p99() <= 10.0 && search.flows >= 100_000)),
        },
        Figure {
            key: "search_overlap_at_10",
            label: "FTS5's best 10 also found (overlap@10)",
            value: search.overlap_at_10 * 100.0,
            unit: "%",
            target: None,
        },
        Figure {
            key: "search_scan_p50_ms",
            label: "scan of every source p50 (baseline)",
            value: search.scanned.p50(),
            unit: "ms",
            target: None,
        },
        Figure {
            key: "search_scan_over_indexed",
            label: "scan p50 / search p50",
            value: search.scanned.p50() / search.indexed.p50(),
            unit: "x",
            target: None,
        },
        Figure {
            key: "search_flows",
            label: "flows in the library",
            value: search.flows as f64,
            unit: "flows",
            target: None,
        },
    ])
}

async fn throughput(harness: &Arc<Harness>, flow: &Arc<Prepared>, workers: usize, runs: usize) -> Result<f64> {
    let started = Instant::now();
    let per_worker = runs.div_ceil(workers);
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let harness = harness.clone();
            let flow = flow.clone();
            tokio::spawn(async move {
                for n in 0..per_worker {
                    harness.run(&flow, json!({"n": n}), Quotas::default()).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok((per_worker * workers) as f64 / started.elapsed().as_secs_f64())
}

struct MemoryPerRun {
    pss_mib: f64,
    rss_mib: f64,
    private_mib: f64,
}

async fn memory_per_live_run(harness: &Arc<Harness>, count: usize) -> Result<MemoryPerRun> {
    let parked = Arc::new(harness.prepare(PARK).await?);
    let before = memory_now()?;
    let runs: Vec<_> = (0..count)
        .map(|_| {
            let harness = harness.clone();
            let parked = parked.clone();
            tokio::spawn(async move { harness.run(&parked, json!({}), Quotas::default()).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    while harness.service.parked() < count {
        if Instant::now() > deadline {
            bail!("only {} of {count} runs reached bench.park", harness.service.parked());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let after = memory_now()?;
    harness.service.release_all();
    for run in runs {
        run.await??;
    }
    let per = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / count as f64 / (1024.0 * 1024.0);
    Ok(MemoryPerRun {
        pss_mib: per(before.pss, after.pss),
        rss_mib: per(before.rss, after.rss),
        private_mib: per(before.private, after.private),
    })
}

struct Memory {
    pss: u64,
    rss: u64,
    private: u64,
}

/// Proportional, resident and private bytes of this process, from smaps_rollup.
fn memory_now() -> Result<Memory> {
    memory_of("self")
}

/// The same for process `pid` ("self": this one).
fn memory_of(pid: &str) -> Result<Memory> {
    let path = format!("/proc/{pid}/smaps_rollup");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let field = |name: &str| -> u64 {
        text.lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    Ok(Memory { pss: field("Pss:"), rss: field("Rss:"), private: field("Private_Clean:") + field("Private_Dirty:") })
}

/// Milliseconds from starting `hero_logic run` to its exit, with an empty
/// artefact cache and then with the one that run left behind.
fn cli_figures(native: Option<&Native>, sizes: &Sizes) -> Result<Vec<Figure>> {
    let cli = cli::measure(native, sizes.cli_runs)?;
    let mut figures = vec![
        Figure {
            key: "cold_start_no_cache_ms",
            label: "cold start, no artefact cache",
            value: cli.cold_start_ms,
            unit: "ms",
            target: None,
        },
        Figure {
            key: "cold_start_cached_ms",
            label: "cold start, cached artefact",
            value: cli.cached_ms,
            unit: "ms",
            target: None,
        },
        Figure {
            key: "cli_run_p50_ms",
            label: "hero_logic run FILE per process p50",
            value: cli.per_process.p50(),
            unit: "ms",
            target: None,
        },
    ];
    if let Some(native) = &cli.native_no_site {
        let ratio = cli.per_process.p50() / native.p50();
        figures.push(Figure {
            key: "cli_native_no_site_p50_ms",
            label: "native python3 -S per process p50",
            value: native.p50(),
            unit: "ms",
            target: None,
        });
        figures.push(Figure {
            key: "cli_over_native_no_site_p50",
            label: "hero_logic run / python3 -S p50",
            value: ratio,
            unit: "x",
            target: Some(("<= 1x", ratio <= 1.0)),
        });
    }
    Ok(figures)
}

/// The server path beside the same flow in-process and native.
async fn http_figures(
    harness: &Arc<Harness>,
    native: Option<&Native>,
    options: &BenchOptions,
    sizes: &Sizes,
) -> Result<Vec<Figure>> {
    let http =
        http_path::measure(harness, native, options.cache_dir.clone(), sizes.latency_runs / 2, sizes.native_runs)
            .await?;
    let ratio = http.through_http.p50() / http.in_process.p50();
    let mut figures = vec![
        Figure {
            key: "server_flow_in_process_p50_ms",
            label: "two-step flow p50, in-process",
            value: http.in_process.p50(),
            unit: "ms",
            target: None,
        },
        Figure {
            key: "server_flow_wait_p50_ms",
            label: "two-step flow p50, ?wait=true",
            value: http.through_http.p50(),
            unit: "ms",
            target: None,
        },
        Figure {
            key: "server_over_in_process_p50",
            label: "?wait=true / in-process p50",
            value: ratio,
            unit: "x",
            target: Some(("<= 1.3x", ratio <= 1.3)),
        },
        Figure {
            key: "server_runs_per_s_4_clients",
            label: "runs/s through HTTP, 4 clients",
            value: http.runs_per_s,
            unit: "runs/s",
            target: Some((">= 1,200 on 2 cores", http.runs_per_s >= 1200.0)),
        },
    ];
    if let Some(native) = &http.native {
        let over = native.p50() / http.through_http.p50();
        figures.push(Figure {
            key: "server_flow_native_p50_ms",
            label: "two-step flow p50, native python3",
            value: native.p50(),
            unit: "ms",
            target: None,
        });
        figures.push(Figure {
            key: "native_over_server_p50",
            label: "native p50 / ?wait=true p50",
            value: over,
            unit: "x",
            target: Some((">= 20x", over >= 20.0)),
        });
    }
    Ok(figures)
}

const WAITING_BASELINE: &str = "waiting: `hero_logic serve --max-concurrent N` as a child process, N runs of \
bench/sleeper.py sent at once; idle RSS is read after three bursts of 64 quick runs and a 2 s pause. RSS counts the \
shared guest image once per live instance; PSS counts it once.";

/// Runs that wait, on a `serve` process of their own.
async fn waiting_figures(options: &BenchOptions, sizes: &Sizes) -> Result<Vec<Figure>> {
    let waiting = waiting::measure(options.cache_dir.clone(), sizes.waiting_runs, sizes.waiting_sleep_s).await?;
    let within = 6.0 * waiting.sleep_s;
    let given_back = waiting.after_rss_mib - waiting.idle_rss_mib;
    Ok(vec![
        Figure {
            key: "waiting_all_ended_s",
            label: "N sleeping runs at once, all ended",
            value: waiting.all_ended_s,
            unit: "s",
            target: Some(("<= 30 s, 1,000 x 5 s", waiting.all_ended_s <= within)),
        },
        Figure {
            key: "waiting_runs",
            label: "N, runs waiting at once",
            value: waiting.runs as f64,
            unit: "runs",
            target: None,
        },
        Figure { key: "waiting_sleep_s", label: "each sleeping", value: waiting.sleep_s, unit: "s", target: None },
        Figure {
            key: "waiting_peak_rss_mib",
            label: "server peak RSS, N runs waiting",
            value: waiting.peak_rss_mib,
            unit: "MiB",
            target: Some(("< 4,096 MiB", waiting.peak_rss_mib < 4096.0)),
        },
        Figure {
            key: "waiting_peak_pss_mib",
            label: "server peak PSS, N runs waiting",
            value: waiting.peak_pss_mib,
            unit: "MiB",
            target: None,
        },
        Figure {
            key: "waiting_peak_private_mib",
            label: "server peak private memory",
            value: waiting.peak_private_mib,
            unit: "MiB",
            target: None,
        },
        Figure {
            key: "waiting_idle_rss_mib",
            label: "server RSS idle, before",
            value: waiting.idle_rss_mib,
            unit: "MiB",
            target: None,
        },
        Figure {
            key: "waiting_after_rss_mib",
            label: "server RSS 10 s after, above idle",
            value: given_back,
            unit: "MiB",
            target: Some(("<= 64 MiB", given_back <= 64.0)),
        },
    ])
}

const SPANS_BASELINE: &str =
    "span baseline: the same flow's spans recorded by the sandbox alone, without the server storing or streaming them";

const SEARCH_BASELINE: &str = "search baseline: the same words found by scanning every stored source (LIKE)";

/// What the native figures were measured against, for the report.
fn native_baseline(native: Option<&Native>) -> String {
    match native {
        Some(native) => format!(
            "baseline: {} (Python {}) per run, pure-Python stand-in SDK",
            native.python.display(),
            native.version
        ),
        None => "baseline: no python3 found; native figures left out".to_string(),
    }
}

/// Runs of the trivial flow: latency one at a time, throughput with one and
/// with N workers, and the same flow started as native python3 per run.
async fn run_figures(
    harness: &Arc<Harness>,
    native: Option<&Native>,
    sizes: &Sizes,
    cores: usize,
) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    // Trivial flow, fresh sandbox per run: latency, one run at a time.
    let trivial = Arc::new(harness.prepare(TRIVIAL).await?);
    let sandbox_latency = stats::time_each(20, sizes.latency_runs, async |n| {
        harness.run(&trivial, json!({"n": n}), Quotas::default()).await.map(drop)
    })
    .await?;
    figures.push(Figure {
        key: "trivial_p50_ms",
        label: "trivial flow p50, fresh sandbox",
        value: sandbox_latency.p50(),
        unit: "ms",
        target: Some(("<= 1 ms", sandbox_latency.p50() <= 1.0)),
    });
    figures.push(Figure {
        key: "trivial_p99_ms",
        label: "trivial flow p99",
        value: sandbox_latency.p99(),
        unit: "ms",
        target: None,
    });

    // Throughput with 1 and with N concurrent workers.
    let one = throughput(harness, &trivial, 1, sizes.throughput_runs).await?;
    let many = throughput(harness, &trivial, cores, sizes.throughput_runs).await?;
    figures.push(Figure {
        key: "trivial_runs_per_s_1",
        label: "trivial runs/s, 1 worker",
        value: one,
        unit: "runs/s",
        target: None,
    });
    figures.push(Figure {
        key: "trivial_runs_per_s_n",
        label: "trivial runs/s, N workers",
        value: many,
        unit: "runs/s",
        target: Some((">= 1,500 on 2 cores", many >= 1500.0 * cores as f64 / 2.0)),
    });
    figures.push(Figure {
        key: "scaling_n_over_1",
        label: "scaling, N workers / 1",
        value: many / one,
        unit: "x",
        target: None,
    });

    // The native baseline, in the same run.
    if let Some(native) = native {
        let flow_file = native.write_flow("trivial.py", TRIVIAL)?;
        native.run(&flow_file, "trivial", r#"{"n": 1}"#)?;
        let mut samples = Vec::with_capacity(sizes.native_runs);
        let started = Instant::now();
        for n in 0..sizes.native_runs {
            samples.push(native.run(&flow_file, "trivial", &format!(r#"{{"n": {n}}}"#))?.0);
        }
        let native_per_s = sizes.native_runs as f64 / started.elapsed().as_secs_f64();
        let native_latency = Latencies::new(&samples);
        let ratio = native_latency.p50() / sandbox_latency.p50();
        figures.push(Figure {
            key: "native_p50_ms",
            label: "native python3 per run p50",
            value: native_latency.p50(),
            unit: "ms",
            target: None,
        });
        figures.push(Figure {
            key: "native_runs_per_s_1",
            label: "native python3 runs/s, 1 worker",
            value: native_per_s,
            unit: "runs/s",
            target: None,
        });
        figures.push(Figure {
            key: "native_over_sandbox_p50",
            label: "native p50 / sandbox p50",
            value: ratio,
            unit: "x",
            target: Some((">= 20x", ratio >= 20.0)),
        });
    }
    Ok(figures)
}

/// The span path: recorded by the sandbox alone, then recorded, stored and
/// streamed through the server.
async fn span_figures(harness: &Harness, options: &BenchOptions, sizes: &Sizes) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    // Span path: spans recorded per second by a flow emitting many.
    let spans_flow = harness.prepare(SPANS).await?;
    let quotas = Quotas { spans: sizes.spans + 10, cpu_time_ms: 600_000, wall_time_ms: 600_000, ..Quotas::default() };
    let started = Instant::now();
    harness.run(&spans_flow, json!({"count": sizes.spans}), quotas).await?;
    let spans_per_s = sizes.spans as f64 / started.elapsed().as_secs_f64();
    figures.push(Figure {
        key: "spans_recorded_per_s",
        label: "spans recorded per second",
        value: spans_per_s,
        unit: "spans/s",
        target: None,
    });

    // The same through the server: stored by the writer, and streamed.
    let through_server = server::measure(options.cache_dir.clone(), sizes.spans, sizes.paced_spans).await?;
    let stored = through_server.spans_stored_per_s;
    figures.push(Figure {
        key: "spans_stored_per_s",
        label: "spans recorded and stored per second",
        value: stored,
        unit: "spans/s",
        target: Some((">= 250,000", stored >= 250_000.0)),
    });
    figures.push(Figure {
        key: "spans_stored_over_recorded",
        label: "stored / recorded alone",
        value: stored / spans_per_s,
        unit: "x",
        target: None,
    });
    let latency = &through_server.ws_latency;
    figures.push(Figure {
        key: "span_to_ws_p50_ms",
        label: "span recorded to WebSocket client p50",
        value: latency.p50(),
        unit: "ms",
        target: None,
    });
    figures.push(Figure {
        key: "span_to_ws_p99_ms",
        label: "span recorded to WebSocket client p99",
        value: latency.p99(),
        unit: "ms",
        target: Some(("< 50 ms", latency.p99() < 50.0)),
    });
    Ok(figures)
}

fn print_report(figures: &[Figure], baseline: &str, cores: usize, quick: bool) {
    println!();
    println!("{:<36} {:>14}  {:<8} {:<22}", "measure", "value", "unit", "target");
    for figure in figures {
        let (target, verdict) = match figure.target {
            Some((text, true)) => (text, "met"),
            Some((text, false)) => (text, "NOT met"),
            None => ("", ""),
        };
        println!(
            "{:<36} {:>14}  {:<8} {:<22} {}",
            figure.label,
            format_value(figure.value),
            figure.unit,
            target,
            verdict
        );
    }
    println!("\n{baseline}");
    let mut all = Map::new();
    for figure in figures {
        all.insert(figure.key.to_string(), json!((figure.value * 1000.0).round() / 1000.0));
    }
    all.insert("cores".into(), json!(cores));
    all.insert("quick".into(), json!(quick));
    println!("{}", json!({"bench": all}));
}

fn format_value(value: f64) -> String {
    if value >= 1000.0 {
        let whole = value.round() as u64;
        let text = whole.to_string();
        let mut grouped = String::new();
        for (i, c) in text.chars().enumerate() {
            if i > 0 && (text.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        grouped
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}
