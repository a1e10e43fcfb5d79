//! `palisade operator`: watches the cluster, evaluates each object with the
//! engine, and keeps one ScanReport (or ClusterScanReport) per scanned
//! object up to date.
//!
//! Data flow: watch caches ([`stores`]) → [`triggers`] decide which targets
//! are stale → [`queue`] (debounced, one evaluation per object at a time) →
//! [`reconcile`]: [`snapshot`] of the caches → `engine::evaluate_subject`
//! (pure) → [`report::build`] (pure) → [`writer`] (server-side apply, only
//! when the findings digest changed) → [`events`] and [`metrics`].

mod api;
mod conditions;
mod context;
mod custom;
mod events;
mod http;
mod lease;
mod lenient;
mod metrics;
mod openreports;
mod packed;
mod packed_report;
mod posture;
pub mod provenance;
mod queue;
mod rbac_cache;
mod reconcile;
mod refusal;
mod report;
mod resync;
mod snapshot;
mod stores;
mod target;
mod totals;
mod triggers;
mod writer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use crate::cli::operator::{LogFormat, OperatorArgs, parse_duration};
pub use openreports::{Availability as OpenReportsAvailability, detect as detect_openreports};
pub use report::{
    LABEL_TARGET_KIND, LABEL_TARGET_NAME, LABEL_WORST_SEVERITY, REASON_FINDING_RESOLVED,
    REASON_NEW_FINDING, REASON_SEVERITY_CHANGED,
};
pub use target::{TargetKind, report_name};

/// Every sample name the operator can show on /metrics (for checking the
/// chart's alert rules and dashboard).
pub fn metric_names() -> std::collections::BTreeSet<String> {
    metrics::Metrics::exposed_names()
}

use context::{Context, PolicyState, Scope};
use events::EventPublisher;
use lease::{LeaderElector, LeaseConfig};
use metrics::Metrics;
use queue::WorkQueue;
use stores::{Change, OnChange, SyncState, Watches};

/// Caps glibc's malloc at two arenas for the long-running operator, unless
/// `MALLOC_ARENA_MAX` says otherwise. glibc gives threads that allocate at
/// once arenas of their own (up to eight per core), and memory freed in one
/// arena is only reused by allocations in that arena: with the runtime's
/// threads decoding watch pages and evaluating in turn, the freed memory
/// spreads over many arenas and the resident size grows well past what is
/// in use. Measured at 10,000 workloads: a peak of 155 MiB instead of 178.
/// Other allocators (musl's, in the container image) are left alone. The
/// operator allocates with the platform's allocator (see
/// [`crate::allocator`]).
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator tuning; it is called before
        // the runtime starts any thread.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// All CRDs as multi-document YAML (`palisade crds`).
pub fn crds_yaml() -> String {
    crate::crd::crds_yaml()
}

/// Changes to one object within this window are evaluated once.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// A failed evaluation is retried after this long.
const RETRY_AFTER: Duration = Duration::from_secs(10);
/// How often the ScanPolicy status is brought up to date (when it changed).
const POLICY_STATUS_EVERY: Duration = Duration::from_secs(10);
/// How long connecting to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection may stay silent while an answer is awaited.
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// How long in-flight evaluations may take to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error("cannot find cluster credentials: {0}")]
    InferConfig(#[source] kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    #[error("invalid --log-level `{0}`")]
    LogFilter(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} has no pod template")]
    NoPodTemplate(String),
    #[error("cached {target} does not decode: {source}")]
    CachedObject {
        target: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot write report {name}: {source}")]
    WriteReport {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot delete report {name}: {source}")]
    DeleteReport {
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot publish event: {0}")]
    Event(String),
    #[error("lost the leader lease; exiting so that only one replica writes")]
    LeadershipLost,
    #[error("evaluation of {0} stopped: the operator is shutting down")]
    Stopped(String),
}

impl Error {
    /// A short, stable label for metrics and logs.
    pub fn category(&self) -> &'static str {
        match self {
            Error::Kubeconfig { .. } | Error::InferConfig(_) | Error::Client(_) => "config",
            Error::LogFilter(_) => "config",
            Error::Listen { .. } => "http",
            Error::NoPodTemplate(_) | Error::CachedObject { .. } | Error::Stopped(_) => "evaluate",
            Error::WriteReport { source, .. } | Error::DeleteReport { source, .. } => {
                match source {
                    kube::Error::Api(e) if e.code == 403 => "forbidden",
                    kube::Error::Api(e) if e.code == 409 => "conflict",
                    kube::Error::Api(e) if e.code == 422 => "invalid",
                    kube::Error::Api(e) if e.code == 429 => "throttled",
                    kube::Error::Service(e) if e.is::<api::CallTimedOut>() => "timeout",
                    _ => "write",
                }
            }
            Error::Event(_) => "event",
            Error::LeadershipLost => "leader-election",
        }
    }
}

/// When to evaluate a key again after `error`: `None` for an error that
/// cannot go away until the object or the policy changes (an object with
/// no pod template, one that does not decode, a report the API server
/// rejects as invalid). Such a key waits for its next watch event, policy
/// change or full resync instead of failing again every few seconds.
fn retry_after(error: &Error) -> Option<Duration> {
    let permanent = match error {
        Error::NoPodTemplate(_) | Error::CachedObject { .. } => true,
        Error::WriteReport { source, .. } | Error::DeleteReport { source, .. } => {
            matches!(source, kube::Error::Api(e) if e.code == 422)
        }
        _ => false,
    };
    (!permanent).then_some(RETRY_AFTER)
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(args: OperatorArgs) -> Result<(), Error> {
    run_until(args, shutdown_signal()).await
}

/// Runs the operator until `shutdown` completes, then stops gracefully:
/// in-flight evaluations finish and the leader lease is released.
pub async fn run_until(
    args: OperatorArgs,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    init_logging(&args)?;
    let metrics = Arc::new(Metrics::new());
    let client = client(&args, &metrics).await?;
    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let scope = Scope::new(&args.namespaces, &args.exclude_namespaces);
    let sync = Arc::new(SyncState::default());
    let mut background = JoinSet::new();

    let (changes_tx, mut changes_rx) = mpsc::unbounded_channel::<Change>();
    let on_change: OnChange = Arc::new(move |change| {
        let _ = changes_tx.send(change);
    });
    let watch_metrics = metrics.clone();
    let on_watch_error: Arc<dyn Fn(&'static str) + Send + Sync> =
        Arc::new(move |kind| watch_metrics.watch_restart(kind));
    let events = EventPublisher::new(client.clone(), Some(identity.clone()));
    let on_undecodable = undecodable_reporter(&metrics, &events);
    let mut watch_tasks = JoinSet::new();
    let watched = scope.watched_namespaces();
    let stores = Watches {
        client: &client,
        namespaces: watched.as_deref(),
        sync: &sync,
        on_change: &on_change,
        on_watch_error: &on_watch_error,
        on_undecodable: &on_undecodable,
        undecodable: Arc::default(),
        tasks: &mut watch_tasks,
    }
    .start();
    let ctx = Arc::new(Context {
        client: client.clone(),
        stores,
        sync: sync.clone(),
        queue: WorkQueue::new(DEBOUNCE),
        metrics: metrics.clone(),
        totals: std::sync::Mutex::default(),
        events,
        scope,
        policy: PolicyState::new(&args.policy_name),
        rbac: rbac_cache::RbacCache::default(),
        written: writer::WrittenDigests::default(),
        openreports: args
            .emit_openreports
            .then(|| Arc::new(openreports::OpenReports::new())),
    });
    let trigger_ctx = ctx.clone();
    background.spawn(async move {
        while let Some(change) = changes_rx.recv().await {
            triggers::on_change(&trigger_ctx, change);
            trigger_ctx
                .metrics
                .queue_depth
                .set(trigger_ctx.queue.len() as i64);
        }
    });
    let kinds_ctx = ctx.clone();
    background.spawn(custom::discovery_loop(
        client.clone(),
        watched.clone(),
        ctx.stores.custom.clone(),
        move || kinds_ctx.policy.active().kinds.clone(),
        Arc::new(triggers::CustomTriggers(ctx.clone())),
    ));
    // On a thread of its own (see `http`); stopped when this function returns.
    let http = http::start(
        args.metrics_addr,
        http::Health {
            metrics: metrics.clone(),
            sync: sync.clone(),
        },
    )
    .map_err(|source| Error::Listen {
        addr: args.metrics_addr,
        source,
    })?;
    tracing::info!(addr = %http.local_addr(), "serving /metrics, /healthz, /readyz");

    let mut elector = args.leader_election.then(|| {
        LeaderElector::new(
            client.clone(),
            LeaseConfig::new(
                &args.lease_name,
                &args.lease_namespace,
                &identity,
                args.lease_duration,
            ),
        )
    });
    let cancel = CancellationToken::new();
    let result = {
        let work = lead_and_work(&ctx, &args, elector.as_mut(), cancel.clone());
        tokio::pin!(work);
        tokio::select! {
            result = &mut work => result,
            () = shutdown => {
                tracing::info!("shutting down");
                cancel.cancel();
                // Let in-flight evaluations finish their writes.
                tokio::time::timeout(SHUTDOWN_GRACE, &mut work).await.unwrap_or(Ok(()))
            }
        }
    };
    metrics.leader.set(0);
    if let Some(elector) = elector.as_mut()
        && !matches!(result, Err(Error::LeadershipLost))
        && let Err(e) = elector.release().await
    {
        tracing::warn!(error = %e, "cannot release the leader lease");
    }
    watch_tasks.shutdown().await;
    background.shutdown().await;
    drop(http);
    result
}

/// Counts each object a watch cannot decode (`palisade_errors_total`,
/// category `undecodable`) and puts a Warning Event on it.
fn undecodable_reporter(
    metrics: &Arc<Metrics>,
    events: &EventPublisher,
) -> Arc<dyn Fn(lenient::Undecodable) + Send + Sync> {
    let metrics = metrics.clone();
    let events = events.clone();
    Arc::new(move |undecodable| {
        metrics.error("undecodable");
        let events = events.clone();
        tokio::spawn(async move {
            if let Err(e) = events
                .undecodable(&undecodable.object, &undecodable.error)
                .await
            {
                tracing::warn!(error = %e, "cannot publish event");
            }
        });
    })
}

/// Waits for leadership (when enabled) and synced caches, then evaluates
/// until cancelled or until leadership is lost.
async fn lead_and_work(
    ctx: &Arc<Context>,
    args: &OperatorArgs,
    elector: Option<&mut LeaderElector>,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let mut elector = elector;
    if let Some(elector) = elector.as_deref_mut() {
        tracing::info!(lease = %elector.config().name, "waiting for the leader lease");
        tokio::select! {
            () = elector.acquire() => {}
            () = cancel.cancelled() => return Ok(()),
        }
    }
    // Renewed from the moment it is held, also while the caches fill (a
    // refused watch takes 30 s to count as refused): a Lease left unrenewed
    // that long would let another replica lead too.
    let hold = async {
        match elector {
            Some(elector) => elector.hold().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(hold);
    tokio::select! {
        () = ctx.sync.wait_synced() => {}
        () = &mut hold => return Err(Error::LeadershipLost),
        () = cancel.cancelled() => return Ok(()),
    }
    tracing::info!("caches synced; evaluating");
    ctx.metrics.leader.set(1);
    triggers::refresh_policy(ctx);
    resync::full_resync(ctx);

    let computing = Arc::new(Semaphore::new(computing_at_once(args.concurrency)));
    let mut workers = JoinSet::new();
    for _ in 0..args.concurrency.max(1) {
        workers.spawn(work(ctx.clone(), computing.clone(), cancel.clone()));
    }
    tokio::select! {
        () = &mut hold => {
            // Stop writing at once: another replica may already lead.
            workers.abort_all();
            Err(Error::LeadershipLost)
        }
        () = resync::resync_loop(ctx, args.resync_interval) => Ok(()),
        () = resync::policy_status_loop(ctx, POLICY_STATUS_EVERY) => Ok(()),
        () = emit_openreports(ctx) => Ok(()),
        () = cancel.cancelled() => {
            while workers.join_next().await.is_some() {}
            Ok(())
        }
    }
}

/// `--emit-openreports`: writes the OpenReports reports; never completes.
async fn emit_openreports(ctx: &Context) {
    match &ctx.openreports {
        Some(state) => openreports::run(ctx, state).await,
        None => std::future::pending().await,
    }
}

/// How many evaluations may compute at once: `--concurrency`, but no more
/// than there are cores. The other evaluations in flight wait for the API
/// server meanwhile; more threads computing than cores would only contend
/// for them and for the allocator's arenas (see [`limit_malloc_arenas`]).
fn computing_at_once(concurrency: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    concurrency.clamp(1, cores)
}

/// One worker: takes keys from the queue until cancelled. A key being
/// evaluated is finished before the worker stops.
async fn work(ctx: Arc<Context>, computing: Arc<Semaphore>, cancel: CancellationToken) {
    loop {
        let key = tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            key = ctx.queue.next() => key,
        };
        let started = tokio::time::Instant::now();
        let result = reconcile::reconcile(&ctx, &key, &computing).await;
        ctx.metrics
            .evaluation_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(outcome) => {
                ctx.metrics.evaluation(outcome.as_str());
                tracing::debug!(target = %key, outcome = outcome.as_str(), "evaluated");
            }
            Err(e) => {
                ctx.metrics.evaluation("error");
                ctx.metrics.error(e.category());
                match retry_after(&e) {
                    Some(delay) => {
                        tracing::warn!(target = %key, error = %e, "evaluation failed; retrying");
                        ctx.queue
                            .enqueue_at(key.clone(), tokio::time::Instant::now() + delay);
                    }
                    None => {
                        tracing::warn!(target = %key, error = %e, "evaluation failed; waiting for a change");
                    }
                }
            }
        }
        ctx.queue.done(&key);
        ctx.metrics.queue_depth.set(ctx.queue.len() as i64);
    }
}

fn init_logging(args: &OperatorArgs) -> Result<(), Error> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
        .map_err(|_| Error::LogFilter(args.log_level.clone()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // Already set (several operators in one test process): keep the first.
    let _ = match args.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    Ok(())
}

async fn client(args: &OperatorArgs, metrics: &Arc<Metrics>) -> Result<Client, Error> {
    let mut config = match &args.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path).map_err(|source| Error::Kubeconfig {
                path: path.display().to_string(),
                source,
            })?;
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(|source| Error::Kubeconfig {
                    path: path.display().to_string(),
                    source,
                })?
        }
        None => Config::infer().await.map_err(Error::InferConfig)?,
    };
    // Retries are the guard's (counted, logged, Retry-After honoured).
    config.default_retry = false;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    // A connection that goes silent (a frozen API server) fails after this
    // long even where no call deadline applies (a list's body). Longer than
    // the watcher's own idle timeout (295 s), so quiet watches are left to it.
    config.read_timeout = Some(READ_TIMEOUT);
    config.reset_reader_on_write = true;
    let guard = api::GuardLayer::new(metrics.clone(), api::CALL_TIMEOUT);
    Ok(kube::client::ClientBuilder::try_from(config)
        .map_err(Error::Client)?
        .with_layer(&guard)
        .build())
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "palisade".to_owned());
    format!("{host}-{}", std::process::id())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("rejected", "Reason").with_code(code),
        ))
    }

    fn write_error(code: u16) -> Error {
        Error::WriteReport {
            name: "deployment-web".into(),
            source: api_error(code),
        }
    }

    #[test]
    fn errors_that_need_a_change_wait_for_one() {
        let undecodable = Error::CachedObject {
            target: "Deployment a/web".into(),
            source: serde_json::from_str::<u8>("x").unwrap_err(),
        };
        assert_eq!(retry_after(&undecodable), None);
        assert_eq!(retry_after(&Error::NoPodTemplate("x".into())), None);
        assert_eq!(retry_after(&write_error(422)), None);
    }

    #[test]
    fn evaluations_compute_at_most_one_per_core_and_at_least_one() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(computing_at_once(0), 1);
        assert_eq!(computing_at_once(1), 1);
        assert_eq!(computing_at_once(cores + 3), cores);
        assert_eq!(computing_at_once(usize::MAX), cores);
    }

    #[test]
    fn errors_that_can_pass_are_retried() {
        for code in [403, 409, 429, 500, 503] {
            assert_eq!(retry_after(&write_error(code)), Some(RETRY_AFTER), "{code}");
        }
        assert_eq!(
            retry_after(&Error::Event("timeout".into())),
            Some(RETRY_AFTER)
        );
    }
}
