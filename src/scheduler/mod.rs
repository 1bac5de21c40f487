//! The scheduler: accepts runs into a bounded queue, runs at most N at once,
//! and carries each run through its life: stored as `queued`, started, its
//! events published on the bus and written to the store, finished. With
//! several nodes on PostgreSQL, a run accepted while every place here is
//! taken waits in the nodes' shared queue instead (`shared`).

mod limits;
mod resume;
mod shared;

use crate::flowdef::{FlowInfo, ModuleError};
use crate::library::StoredFlows;
use crate::metrics::Metrics;
use crate::sandbox::{JournalSink, ModuleFlows, Quotas, RunEnv, RunRequest, Sandbox, ServiceCaller};
use crate::store::{Launch, Published, RunRecord, Store, StoredFlow, Trigger, Write};
use crate::stream::StreamMessage;
use crate::trace::bus::{EventBus, RunChannel};
use crate::trace::{ErrorInfo, RunEvent, Status, now_us};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Who submitted a run, as far as shares of the queue go: its IPv4
/// address, or its IPv6 /64 (one machine is commonly given a whole /64).
/// Behind a reverse proxy every client is the proxy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    /// The client an address belongs to (the same client again for the
    /// address `address()` gives).
    pub fn of(address: IpAddr) -> Client {
        match address {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(IpAddr::V4(v4)),
                None => Client(IpAddr::V6((u128::from(v6) & !0u128 << 64).into())),
            },
            v4 => Client(v4),
        }
    }

    /// Its address: an IPv4 address, or the IPv6 /64's first address.
    pub fn address(self) -> IpAddr {
        self.0
    }
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            IpAddr::V6(prefix) => write!(f, "{prefix}/64"),
            v4 => write!(f, "{v4}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// Runs executing at once.
    pub max_concurrent: usize,
    /// Runs waiting for a worker before new ones are refused (HTTP 429).
    pub queue_capacity: usize,
    /// Of those, how many one client may have waiting, so one client cannot
    /// fill the queue for everyone.
    pub queue_per_client: usize,
    /// This node's name, kept in each run it executes.
    pub node: String,
}

impl Default for SchedulerConfig {
    fn default() -> SchedulerConfig {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        SchedulerConfig {
            max_concurrent: cores * 4,
            queue_capacity: 256,
            queue_per_client: 64,
            node: crate::server::default_node_name(),
        }
    }
}

/// A run to start: its input already checked against the flow's inputs.
pub struct StartRun {
    /// The flow as its module declares it.
    pub info: FlowInfo,
    pub version: Option<u32>,
    pub source: Arc<str>,
    pub source_sha256: String,
    pub input: Map<String, Value>,
    /// A request's narrowing of what its flows may call.
    pub narrow_services: Option<Vec<String>>,
    pub quotas: Quotas,
    /// For a run of source sent from the editor, its module's flows, which
    /// `flow.invoke` finds before stored ones.
    pub module: Option<ModuleFlows>,
    /// Who asked for the run; it counts against that client's share of the
    /// queue while it waits.
    pub client: Option<Client>,
    /// What started it, kept with the run.
    pub trigger: Trigger,
    /// Which attempt it is, when its flow retries runs that end badly.
    pub attempt: Attempt,
    /// For a replay, the journal of the run it replays; for a durable run
    /// resumed after a crash, its own journal (`Replay::resuming`).
    pub replay: Option<Arc<crate::sandbox::Replay>>,
    /// For a resumed run, the events its first life stored.
    pub earlier: Vec<RunEvent>,
    /// The workspace it runs in (its caller's, or its webhook's,
    /// schedule's or first attempt's).
    pub workspace: String,
}

/// Where a run waiting to start is counted, until it starts. A run holding
/// a worker's place is counted in neither the queue nor its client's share:
/// the place it took from the free ones stands for it, so a request is
/// checked against every run that waits exactly once.
pub(super) struct Counted {
    /// The worker's place taken for it, if one is.
    place: Option<OwnedSemaphorePermit>,
    /// In the queue's `waiting`.
    in_queue: bool,
    /// Whose share of the queue the run counts against while it waits.
    client: Option<Client>,
    /// Counted in that share now.
    in_share: bool,
}

impl Counted {
    /// A run handed a worker's place: counted nowhere while it holds it.
    pub(super) fn holding(place: OwnedSemaphorePermit, client: Option<Client>) -> Counted {
        Counted { place: Some(place), in_queue: false, client, in_share: false }
    }
}

/// Which attempt of a run a new run is.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// 1 for the first.
    pub number: u32,
    /// The first attempt's run; None for the first attempt itself.
    pub first_run_id: Option<String>,
}

impl Default for Attempt {
    fn default() -> Attempt {
        Attempt { number: 1, first_run_id: None }
    }
}

impl StartRun {
    /// A run a store holds already (claimed from the nodes' shared queue,
    /// resumed, or attempted again), started as it was accepted: its flow
    /// as `launch` declares it, module `source`, and the record's input,
    /// quotas, trigger and attempt, counted against the client `launch`
    /// names while it waits.
    pub fn from_stored(run: &RunRecord, launch: Launch, source: Arc<str>) -> StartRun {
        StartRun {
            info: launch.info,
            version: run.version,
            source_sha256: run.source_sha256.clone(),
            input: run.input_object(),
            narrow_services: launch.narrow_services,
            quotas: run.quotas.clone(),
            module: launch.module.map(|flows| ModuleFlows { source: source.clone(), flows }),
            source,
            client: launch.client.map(Client::of),
            trigger: run.trigger.clone(),
            attempt: Attempt {
                number: run.attempt,
                first_run_id: (run.first_run_id != run.run_id).then(|| run.first_run_id.clone()),
            },
            replay: None,
            earlier: Vec::new(),
            workspace: run.workspace.clone(),
        }
    }

    /// What another node, or a later start of this one, needs to start the
    /// run again beside its record and source.
    pub fn launch(&self) -> Launch {
        Launch {
            info: self.info.clone(),
            narrow_services: self.narrow_services.clone(),
            module: self.module.as_ref().map(|module| module.flows.clone()),
            client: self.client.map(Client::address),
        }
    }

    /// Whether it replays another run (answered from that run's journal;
    /// a resume is answered from its own, and calls on live past it).
    pub fn is_replay(&self) -> bool {
        self.replay.as_ref().is_some_and(|replay| !replay.is_resume())
    }

    /// A run of a stored flow with a checked input, as webhooks and
    /// schedules start them, in `workspace`.
    pub fn stored(
        workspace: &str,
        stored: StoredFlow,
        input: Map<String, Value>,
        quotas: Quotas,
        client: Option<Client>,
        trigger: Trigger,
    ) -> StartRun {
        StartRun {
            info: stored.info,
            version: Some(stored.version),
            source_sha256: stored.source_sha256,
            source: Arc::from(stored.source),
            input,
            narrow_services: None,
            quotas,
            module: None,
            client,
            trigger,
            attempt: Attempt::default(),
            replay: None,
            earlier: Vec::new(),
            workspace: workspace.to_string(),
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum SubmitError {
    QueueFull {
        retry_after_secs: u64,
    },
    /// The client has its whole share of the queue waiting.
    ClientQueueFull {
        waiting: usize,
        retry_after_secs: u64,
    },
    ShuttingDown,
}

/// An accepted run: its record as stored, and its final record when it ends
/// and is committed (an error when the store could not write it).
pub struct Submitted {
    pub run: RunRecord,
    pub finished: oneshot::Receiver<Result<RunRecord, String>>,
}

/// A run this node has in hand: what cancels it, and its workspace (None
/// for a resumed run until its record is read).
#[derive(Clone, Default)]
struct InHand {
    cancel: CancellationToken,
    workspace: Option<String>,
}

pub struct Scheduler {
    sandbox: Sandbox,
    store: Arc<Store>,
    bus: Arc<EventBus>,
    metrics: Arc<Metrics>,
    services: Arc<dyn ServiceCaller>,
    config: SchedulerConfig,
    permits: Arc<Semaphore>,
    /// Places for loading modules to describe them, as many as workers.
    describing: Semaphore,
    /// Accepted runs not yet holding a permit (those waiting for a place
    /// under a concurrency limit apart).
    waiting: AtomicUsize,
    /// Runs waiting for a place under their flow's concurrency limit: they
    /// wait without a worker and outside the queue, so other flows' runs
    /// are not refused for them; at most
    /// `limits::WAITING_FOR_PLACES_PER_QUEUE_PLACE` times the queue's capacity.
    waiting_for_places: AtomicUsize,
    /// Of those, each client's (clients with none are not kept).
    waiting_by_client: Mutex<HashMap<Client, usize>>,
    /// Cancel handles of every accepted, unfinished run this node executes
    /// (or will).
    active: Mutex<HashMap<String, InHand>>,
    /// Runs someone cancelled (not a shutdown): their flow's retries stop
    /// with them, whatever `retry_on` says.
    cancelled_by_request: Mutex<std::collections::HashSet<String>>,
    /// With several nodes: the cluster, and the runs this node put in the
    /// shared queue that have not ended (see `shared`).
    cluster: std::sync::OnceLock<Arc<crate::cluster::Cluster>>,
    shared: Mutex<HashMap<String, shared::SharedWait>>,
    /// Told each time a worker's place frees, so the shared queue is looked at.
    freed: tokio::sync::Notify,
    /// Told each time a run here gives back a place under a concurrency limit.
    slot_freed: tokio::sync::Notify,
    tasks: TaskTracker,
    shutting_down: AtomicBool,
    /// Set as a shutdown's grace ends: durable runs cancelled then are
    /// suspended, for the next start to resume, rather than ended.
    suspending: AtomicBool,
    /// Each durable run executing here: set, it is suspended rather than
    /// ended when cancelled (at a shutdown, or when another node took it).
    suspend: Mutex<HashMap<String, Arc<AtomicBool>>>,
}

impl Scheduler {
    pub fn new(
        sandbox: Sandbox,
        store: Arc<Store>,
        bus: Arc<EventBus>,
        metrics: Arc<Metrics>,
        services: Arc<dyn ServiceCaller>,
        config: SchedulerConfig,
    ) -> Scheduler {
        let permits = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        let describing = Semaphore::new(config.max_concurrent.max(1));
        Scheduler {
            sandbox,
            store,
            bus,
            metrics,
            services,
            config,
            permits,
            describing,
            waiting: AtomicUsize::new(0),
            waiting_for_places: AtomicUsize::new(0),
            waiting_by_client: Mutex::new(HashMap::new()),
            active: Mutex::new(HashMap::new()),
            cancelled_by_request: Mutex::new(Default::default()),
            cluster: std::sync::OnceLock::new(),
            shared: Mutex::new(HashMap::new()),
            freed: tokio::sync::Notify::new(),
            slot_freed: tokio::sync::Notify::new(),
            tasks: TaskTracker::new(),
            shutting_down: AtomicBool::new(false),
            suspending: AtomicBool::new(false),
            suspend: Mutex::new(HashMap::new()),
        }
    }

    /// Runs accepted here and not started: waiting for a worker, or for a
    /// place under a concurrency limit.
    pub fn queued(&self) -> usize {
        self.waiting.load(Ordering::SeqCst) + self.waiting_for_places.load(Ordering::SeqCst)
    }

    /// Runs holding a worker's place.
    pub fn running(&self) -> usize {
        self.config.max_concurrent.max(1) - self.permits.available_permits()
    }

    pub fn submit(self: &Arc<Self>, start: StartRun) -> Result<Submitted, SubmitError> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(SubmitError::ShuttingDown);
        }
        let most_waiting_for_places = self.config.queue_capacity.max(1) * limits::WAITING_FOR_PLACES_PER_QUEUE_PLACE;
        if start.info.concurrency.is_some() && self.waiting_for_places.load(Ordering::SeqCst) >= most_waiting_for_places
        {
            self.metrics.rejected_queue_full.inc();
            return Err(SubmitError::QueueFull { retry_after_secs: 1 });
        }
        let admitted = self.waiting.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |waiting| {
            let free_workers = self.permits.available_permits();
            (waiting < self.config.queue_capacity + free_workers).then_some(waiting + 1)
        });
        if admitted.is_err() {
            self.metrics.rejected_queue_full.inc();
            return Err(SubmitError::QueueFull { retry_after_secs: 1 });
        }
        if let Some(client) = start.client
            && let Err(waiting) = self.take_client_place(client)
        {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            self.metrics.rejected_queue_full.inc();
            return Err(SubmitError::ClientQueueFull { waiting, retry_after_secs: 1 });
        }
        let run_id = uuid::Uuid::now_v7().to_string();
        let run = RunRecord {
            first_run_id: start.attempt.first_run_id.clone().unwrap_or_else(|| run_id.clone()),
            replay_of: start.trigger.replay_of(),
            // A replay calls nothing: there is nothing to resume it for.
            durable: start.info.durable && start.replay.is_none(),
            resumes: 0,
            attempt: start.attempt.number,
            run_id,
            flow: start.info.name.clone(),
            version: start.version,
            source_sha256: start.source_sha256.clone(),
            status: Status::Queued,
            input: Value::Object(start.input.clone()),
            output: None,
            error: None,
            usage: None,
            quotas: start.quotas.clone(),
            created_us: now_us(),
            start_us: None,
            end_us: None,
            last_seq: 0,
            node: Some(self.config.node.clone()),
            trigger: start.trigger.clone(),
            workspace: start.workspace.clone(),
        };
        let mut counted =
            Counted { place: None, in_queue: true, client: start.client, in_share: start.client.is_some() };
        // With other nodes, a run that finds no free place here waits where
        // any of them can take it (not a replay: its journal is here).
        if self.cluster.get().is_some() && start.replay.is_none() {
            match self.permits.clone().try_acquire_owned() {
                Ok(place) => {
                    // It waits no more: the place taken stands for it.
                    self.uncount(&mut counted);
                    counted.place = Some(place);
                }
                Err(_) => return Ok(self.queue_shared(run, start)),
            }
        }
        // A durable run keeps how to start it, to be resumed after a crash.
        let launch = run.durable.then(|| Box::new(start.launch()));
        self.store.write(Write::RunCreated { run: Box::new(run.clone()), source: start.source.clone(), launch });
        self.bus.announce(&run.workspace, StreamMessage::RunQueued(&run).to_text());
        let (done, finished) = oneshot::channel();
        self.start_here(run.clone(), start, counted, done);
        Ok(Submitted { run, finished })
    }

    /// Execute a run on this node: in the place `counted` holds, or once
    /// one frees; `counted` says where it is counted as waiting meanwhile.
    pub(super) fn start_here(
        self: &Arc<Self>,
        run: RunRecord,
        start: StartRun,
        counted: Counted,
        done: oneshot::Sender<Result<RunRecord, String>>,
    ) {
        // A resumed run's token was taken before it was read from the store.
        let cancel = {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            let in_hand = active.entry(run.run_id.clone()).or_default();
            in_hand.workspace = Some(run.workspace.clone());
            in_hand.cancel.clone()
        };
        let channel = self.bus.open(&run.run_id);
        let scheduler = self.clone();
        self.tasks.spawn(async move { scheduler.execute(run, start, cancel, channel, done, counted).await });
    }

    /// Count a run against its client's share of the queue; the number
    /// waiting when the share is full. A run that will find a free worker at
    /// once fits, as it does in the queue.
    fn take_client_place(&self, client: Client) -> Result<(), usize> {
        let mut by_client = self.waiting_by_client.lock().unwrap_or_else(|p| p.into_inner());
        // Read under the lock: a run takes a worker's place before it leaves
        // its client's share and joins the share before it gives a place
        // back, so what is read here counts each run at least once.
        let free_workers = self.permits.available_permits();
        let waiting = by_client.entry(client).or_default();
        if *waiting >= self.config.queue_per_client.max(1) + free_workers {
            return Err(*waiting);
        }
        *waiting += 1;
        Ok(())
    }

    /// Count a run accepted before (a resumed one) as waiting for a worker,
    /// in the queue and its client's share, whatever they hold.
    pub(super) fn count_waiting(&self, client: Option<Client>) -> Counted {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        if let Some(client) = client {
            self.count_for_client(client);
        }
        Counted { place: None, in_queue: true, client, in_share: client.is_some() }
    }

    /// Count a run against its client's share whatever the share holds:
    /// it was accepted already, and waits again.
    fn count_for_client(&self, client: Client) {
        *self.waiting_by_client.lock().unwrap_or_else(|p| p.into_inner()).entry(client).or_default() += 1;
    }

    /// Give back a worker's place the run cannot use yet (it waits for a
    /// place under a concurrency limit): it counts against its client's
    /// share again first, so it is never counted nowhere.
    fn give_back_place(&self, place: OwnedSemaphorePermit, counted: &mut Counted) {
        if let Some(client) = counted.client
            && !std::mem::replace(&mut counted.in_share, true)
        {
            self.count_for_client(client);
        }
        drop(place);
        self.freed.notify_one();
    }

    /// The run no longer waits for a worker; it still counts against its
    /// client's share (it waits for a place under a concurrency limit).
    fn leave_queue(&self, counted: &mut Counted) {
        if std::mem::take(&mut counted.in_queue) {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The run no longer waits in the queue (nor in its client's share):
    /// it holds a worker's place, or will never run.
    fn uncount(&self, counted: &mut Counted) {
        self.leave_queue(counted);
        if let Some(client) = counted.client.filter(|_| std::mem::take(&mut counted.in_share)) {
            self.give_client_place(client);
        }
    }

    fn give_client_place(&self, client: Client) {
        let mut by_client = self.waiting_by_client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waiting) = by_client.get_mut(&client) {
            *waiting -= 1;
            if *waiting == 0 {
                by_client.remove(&client);
            }
        }
    }

    /// The flows `source` declares. A module is untrusted code, so loading
    /// one is limited like runs are: at most `max_concurrent` at once (in
    /// their own places, so a check never waits behind a long run).
    pub async fn describe(&self, source: &str, quotas: &Quotas) -> Result<Vec<FlowInfo>, ModuleError> {
        let _place = self.describing.acquire().await.expect("the describe semaphore is never closed");
        self.sandbox.describe(source, quotas).await
    }

    /// Cancel a queued or running run, and any attempt after it (a
    /// shutdown's cancels leave retries be). False when it is not going on.
    pub fn cancel(&self, run_id: &str) -> bool {
        self.cancel_where(run_id, |_| true)
    }

    /// Cancel a run this node has in hand when it is one of `workspace`'s
    /// (known without the store, so it works while the database is away).
    pub fn cancel_in(&self, workspace: &str, run_id: &str) -> bool {
        self.cancel_where(run_id, |in_hand| in_hand.workspace.as_deref() == Some(workspace))
    }

    /// The workspace of a run this node has in hand (None when it has
    /// none of that id, or has not read a resumed run's record yet).
    pub fn workspace_in_hand(&self, run_id: &str) -> Option<String> {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).get(run_id)?.workspace.clone()
    }

    fn cancel_where(&self, run_id: &str, may: impl FnOnce(&InHand) -> bool) -> bool {
        match self.active.lock().unwrap_or_else(|p| p.into_inner()).get(run_id).filter(|in_hand| may(in_hand)) {
            Some(in_hand) => {
                self.cancelled_by_request.lock().unwrap_or_else(|p| p.into_inner()).insert(run_id.to_string());
                in_hand.cancel.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancel every run this node has in hand; how many.
    pub fn cancel_all(&self) -> usize {
        let tokens: Vec<_> = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .map(|in_hand| in_hand.cancel.clone())
            .collect();
        for token in &tokens {
            token.cancel();
        }
        tokens.len()
    }

    /// Stop every run this node has in hand, its lease being gone: another
    /// node ended them, or took the durable ones to go on with. Those are
    /// suspended here, never ended (they go on there); how many runs.
    pub fn give_up_all(&self) -> usize {
        for flag in self.suspend.lock().unwrap_or_else(|p| p.into_inner()).values() {
            flag.store(true, Ordering::SeqCst);
        }
        self.cancel_all()
    }

    /// The flag that suspends durable run `run_id` when it is cancelled;
    /// set already when the server is past its shutdown's grace.
    fn suspend_flag(&self, run_id: &str) -> Arc<AtomicBool> {
        let mut flags = self.suspend.lock().unwrap_or_else(|p| p.into_inner());
        let flag = Arc::new(AtomicBool::new(self.suspending.load(Ordering::SeqCst)));
        flags.insert(run_id.to_string(), flag.clone());
        flag
    }

    /// The run is no longer in hand here.
    fn forget(&self, run_id: &str) {
        self.active.lock().unwrap_or_else(|p| p.into_inner()).remove(run_id);
        self.suspend.lock().unwrap_or_else(|p| p.into_inner()).remove(run_id);
    }

    /// Refuse new runs, let running ones finish for up to `grace`, then cancel
    /// the rest, and wait until every run is stored.
    pub async fn shutdown(&self, grace: Duration) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait()).await.is_err() {
            // Under the lock, so a durable run registering now sees it.
            {
                let flags = self.suspend.lock().unwrap_or_else(|p| p.into_inner());
                self.suspending.store(true, Ordering::SeqCst);
                for flag in flags.values() {
                    flag.store(true, Ordering::SeqCst);
                }
            }
            let cancelled = self.cancel_all();
            tracing::warn!(runs = cancelled, "cancelling runs still going at shutdown");
            self.tasks.wait().await;
        }
    }

    async fn execute(
        self: Arc<Self>,
        mut run: RunRecord,
        start: StartRun,
        cancel: CancellationToken,
        channel: Arc<RunChannel>,
        done: oneshot::Sender<Result<RunRecord, String>>,
        mut counted: Counted,
    ) {
        // What its next attempt needs, should this one end badly.
        // A replay is not retried: it calls nothing that could go better.
        let retry = start.info.retry.clone().filter(|_| !start.is_replay()).map(|policy| (policy, start.launch()));
        let slot = self.wait_for_slot(&run, &start, &cancel, &mut counted).await;
        let permit = match (&slot, counted.place.take()) {
            (Err(_), _) => None,
            (Ok(_), Some(place)) => Some(place),
            (Ok(_), None) => tokio::select! {
                permit = self.permits.clone().acquire_owned() => permit.ok(),
                _ = cancel.cancelled() => None,
            },
        };
        self.uncount(&mut counted);
        let started = Instant::now();
        let mut last_seq = 0;
        match permit {
            None => {
                run.status = Status::Cancelled;
                let error = ErrorInfo::cancelled(match start.earlier.is_empty() {
                    true => "the run was cancelled before it started",
                    false => "the run was cancelled while it waited to be resumed",
                });
                // A resumed run cancelled while it waited: its first life's
                // open spans end with it.
                last_seq = start.earlier.last().map_or(0, RunEvent::seq);
                for event in resume::first_life_closed(&run.run_id, &start.earlier, run.status, &error) {
                    last_seq = event.seq();
                    self.record(&channel, event);
                }
                run.error = Some(error);
                run.end_us = Some(now_us());
            }
            Some(_permit) => {
                run.status = Status::Running;
                // One reading, so the stored run and the answer to `?wait=true`
                // agree; a resumed run keeps its first start.
                let start_us = run.start_us.unwrap_or_else(now_us);
                run.start_us = Some(start_us);
                self.store.write(Write::RunStarted { run_id: run.run_id.clone(), start_us });
                self.bus.announce(&run.workspace, StreamMessage::RunStarted(&run).to_text());
                let env = RunEnv {
                    services: self.services.clone(),
                    flows: Arc::new(StoredFlows { store: self.store.clone(), module: start.module }),
                    narrow_services: start.narrow_services,
                    journal: Some(Arc::new(StoreJournal::new(self.store.clone(), run.run_id.clone(), run.durable))),
                    replay: start.replay.clone(),
                    workspace: Arc::from(run.workspace.as_str()),
                };
                let (request, mut events) = RunRequest::new(start.source, &start.info, start.input, start.quotas, env);
                let mut request =
                    request.with_id(run.run_id.clone()).with_cancel(cancel).with_backpressure(channel.committed());
                request.earlier = start.earlier;
                request.suspend_on_cancel = run.durable.then(|| self.suspend_flag(&run.run_id));
                let forward = async {
                    while let Some(event) = events.recv().await {
                        last_seq = event.seq();
                        self.record(&channel, event);
                    }
                };
                let (report, ()) = tokio::join!(self.sandbox.run(request), forward);
                if report.suspended {
                    return self.suspended(run, channel, done);
                }
                run.status = report.status;
                run.output = report.output;
                run.error = report.error;
                run.usage = Some(report.usage);
                run.end_us = Some(report.end_us);
            }
        }
        if let Ok(Some(claim)) = &slot {
            self.leave_slot(&claim.run_id).await;
        }
        // The place is free again: the shared queue may hold a run for it.
        self.freed.notify_one();
        run.last_seq = last_seq + 1;
        let called_off = self.cancelled_by_request.lock().unwrap_or_else(|p| p.into_inner()).remove(&run.run_id);
        let retry = retry
            .filter(|_| !called_off)
            .and_then(|(policy, launch)| crate::retries::next_attempt(&policy, &run, launch));
        let (stored, committed) = oneshot::channel();
        self.store.write(Write::RunFinished { run: Box::new(run.clone()), stored: Some(stored), retry });
        let stored = committed.await.unwrap_or_else(|_| Err("the store's writer has stopped".into()));
        channel.finish(StreamMessage::RunFinished(&run).to_text());
        self.bus.close(&run.run_id);
        self.bus.announce(&run.workspace, StreamMessage::RunListed(&run).to_text());
        self.metrics.run_finished(run.status, started.elapsed().as_secs_f64());
        self.forget(&run.run_id);
        let _ = done.send(stored.map(|()| run));
    }

    /// A durable run stopped with the server: its record stays `running`
    /// (and its place under a concurrency limit held), for the next start,
    /// or another node, to resume.
    fn suspended(&self, run: RunRecord, channel: Arc<RunChannel>, done: oneshot::Sender<Result<RunRecord, String>>) {
        tracing::info!(
            run_id = run.run_id,
            "a durable run was suspended as the server stops; it resumes at the next start"
        );
        drop(channel);
        self.bus.close(&run.run_id);
        self.freed.notify_one();
        self.forget(&run.run_id);
        let _ = done.send(Err("the server stopped; the durable run resumes when it starts again".into()));
    }

    /// Store an event; the writer hands it to the run's watchers once it is
    /// committed, so what a watcher has seen survives a crash.
    fn record(&self, channel: &Arc<RunChannel>, event: RunEvent) {
        let text = StreamMessage::Event(&event).to_text();
        let publish = Some(Published { channel: channel.clone(), text });
        let write = match event {
            RunEvent::SpanStarted { seq, span } => {
                self.metrics.spans.inc();
                Write::SpanStarted { span, seq, publish }
            }
            RunEvent::SpanEnded { seq, span } => Write::SpanEnded { span, seq, publish },
            RunEvent::Log(line) => {
                self.metrics.log_lines.inc();
                Write::Log { line, publish }
            }
        };
        self.store.write(write);
    }
}

/// A run's journal, written to the store with the run's spans: batched,
/// so an answer reaches the guest without waiting for the database; a
/// durable run's answers wait until they are stored (`stored`).
pub struct StoreJournal {
    store: Arc<Store>,
    run_id: String,
    durable: bool,
}

impl StoreJournal {
    pub fn new(store: Arc<Store>, run_id: String, durable: bool) -> StoreJournal {
        StoreJournal { store, run_id, durable }
    }
}

impl JournalSink for StoreJournal {
    fn append(&self, stream: &Arc<str>, index: u32, text: String) {
        self.store.write(Write::Journal { run_id: self.run_id.clone(), stream: stream.clone(), index, entry: text });
    }

    fn stored(&self) -> Option<crate::sandbox::BoxFuture<'static, Result<(), String>>> {
        if !self.durable {
            return None;
        }
        let (barrier, stored) = Write::journal_committed(self.run_id.clone());
        self.store.write(barrier);
        Some(Box::pin(async move { stored.await.unwrap_or_else(|_| Err("the store's writer has stopped".into())) }))
    }
}
