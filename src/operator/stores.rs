//! Watch caches: one reflector per kind (per namespace when the operator is
//! limited to some), with managedFields, the last-applied annotation and
//! anything else no check reads stripped before objects are stored.
//! Workloads and reports are stored packed ([`Packed`]); Pods, ReplicaSets
//! and Jobs owned by a controller are not stored at all.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, ReplicationController, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::time::Instant;

use super::custom::CustomObjects;
use super::lenient::{FromMeta, Lenient, Undecodable, UndecodableObjects, Watched};
use super::packed::{Packable, Packed};
use super::refusal::{REFUSAL_GRACE, Refusals, Verdict};
use super::snapshot::PodTemplated;
use super::target::is_top_level;
use crate::crd::{ClusterScanReport, ReportStatus, ReportTarget, ScanPolicy, ScanReport};
use crate::engine::Severity;

/// Objects per page of a watch's list.
const LIST_PAGE_SIZE: u32 = 500;

/// Annotation `kubectl apply` leaves: a full copy of the object, never read.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The stores of one kind: a single cluster-wide one, or one per namespace
/// when the operator is limited to some namespaces.
pub struct MultiStore<K: 'static + Resource<DynamicType = ()> + Clone> {
    stores: Vec<(Option<String>, Store<K>)>,
}

impl<K> MultiStore<K>
where
    K: 'static + Resource<DynamicType = ()> + Clone,
{
    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        let key = match namespace {
            Some(ns) => ObjectRef::new(name).within(ns),
            None => ObjectRef::new(name),
        };
        self.stores
            .iter()
            .filter(|(scope, _)| scope.is_none() || scope.as_deref() == namespace)
            .find_map(|(_, store)| store.get(&key))
    }

    pub fn all(&self) -> Vec<Arc<K>> {
        self.stores.iter().flat_map(|(_, s)| s.state()).collect()
    }

    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        self.stores
            .iter()
            .filter(|(scope, _)| scope.is_none() || scope.as_deref() == Some(namespace))
            .flat_map(|(_, s)| s.state_filter(|o| o.meta().namespace.as_deref() == Some(namespace)))
            .collect()
    }
}

/// Whether each watch has listed its objects, or was refused.
#[derive(Default)]
pub struct SyncState {
    /// Per watch (`kind` or `kind/namespace`): synced, and the refusal if any.
    watches: Mutex<BTreeMap<String, WatchState>>,
    changed: watch::Sender<u64>,
}

#[derive(Clone, Debug, Default)]
struct WatchState {
    kind: &'static str,
    synced: bool,
    forbidden: Option<String>,
}

impl SyncState {
    fn register(&self, id: &str, kind: &'static str) {
        self.watches.lock().expect("sync lock").insert(
            id.to_owned(),
            WatchState {
                kind,
                ..WatchState::default()
            },
        );
    }

    /// Records a watch's progress; returns true when its refusal state changed.
    fn update(&self, id: &str, f: impl FnOnce(&mut WatchState)) -> bool {
        let mut watches = self.watches.lock().expect("sync lock");
        let Some(state) = watches.get_mut(id) else {
            return false;
        };
        let before = state.forbidden.is_some();
        f(state);
        let after = state.forbidden.is_some();
        drop(watches);
        self.changed.send_modify(|n| *n += 1);
        before != after
    }

    /// Every watch has listed its objects or was refused (refused kinds make
    /// reports "not evaluated" instead of blocking readiness forever).
    pub fn all_synced(&self) -> bool {
        self.watches
            .lock()
            .expect("sync lock")
            .values()
            .all(|w| w.synced || w.forbidden.is_some())
    }

    pub async fn wait_synced(&self) {
        let mut rx = self.changed.subscribe();
        while !self.all_synced() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Kinds the API server refuses to list or watch, with the reason.
    pub fn forbidden(&self) -> BTreeMap<&'static str, String> {
        self.watches
            .lock()
            .expect("sync lock")
            .values()
            .filter_map(|w| Some((w.kind, w.forbidden.clone()?)))
            .collect()
    }
}

/// Every watch cache of the operator.
pub struct Stores {
    pub pods: MultiStore<Packed<Pod>>,
    pub replica_sets: MultiStore<Packed<ReplicaSet>>,
    pub deployments: MultiStore<Packed<Deployment>>,
    pub stateful_sets: MultiStore<Packed<StatefulSet>>,
    pub daemon_sets: MultiStore<Packed<DaemonSet>>,
    pub jobs: MultiStore<Packed<Job>>,
    pub cron_jobs: MultiStore<Packed<CronJob>>,
    pub replication_controllers: MultiStore<Packed<ReplicationController>>,
    pub service_accounts: MultiStore<ServiceAccount>,
    pub roles: MultiStore<Role>,
    pub role_bindings: MultiStore<RoleBinding>,
    pub network_policies: MultiStore<NetworkPolicy>,
    pub scan_reports: MultiStore<Packed<ScanReport>>,
    pub namespaces: MultiStore<Namespace>,
    pub cluster_roles: MultiStore<ClusterRole>,
    pub cluster_role_bindings: MultiStore<ClusterRoleBinding>,
    pub scan_policies: MultiStore<ScanPolicy>,
    pub cluster_scan_reports: MultiStore<Packed<ClusterScanReport>>,
    /// The cluster's admission policies and bindings, audited (`src/vap/`).
    pub admission_policies: MultiStore<ValidatingAdmissionPolicy>,
    pub admission_policy_bindings: MultiStore<ValidatingAdmissionPolicyBinding>,
    /// Objects the watches could not decode (left out of the caches).
    pub undecodable: Arc<UndecodableObjects>,
    /// Workloads of the table's kinds outside Kubernetes' own groups,
    /// watched while served (see `custom.rs`).
    pub custom: Arc<CustomObjects>,
}

/// A watch event, type-erased to what the trigger logic needs.
pub enum Change {
    Pod(Arc<Pod>),
    ReplicaSet(Arc<ReplicaSet>),
    Deployment(Arc<Deployment>),
    StatefulSet(Arc<StatefulSet>),
    DaemonSet(Arc<DaemonSet>),
    Job(Arc<Job>),
    CronJob(Arc<CronJob>),
    ReplicationController(Arc<ReplicationController>),
    ServiceAccount(Arc<ServiceAccount>),
    Role(Arc<Role>),
    RoleBinding(Arc<RoleBinding>),
    NetworkPolicy(Arc<NetworkPolicy>),
    Namespace(Arc<Namespace>),
    ClusterRole(Arc<ClusterRole>),
    ClusterRoleBinding(Arc<ClusterRoleBinding>),
    ScanPolicy(Arc<ScanPolicy>),
    /// An admission policy or binding changed: every object is audited again.
    AdmissionPolicy,
    /// A report was deleted (by a user or the garbage collector).
    ReportDeleted {
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
    },
    /// A report was created or changed: `digest` is its findings digest
    /// verified against its content (`None` when the status does not match
    /// it, e.g. edited by hand), so it can be checked against what was
    /// last written to it.
    ReportUpdated {
        api_version: String,
        kind: String,
        namespace: Option<String>,
        name: String,
        digest: Option<String>,
        version: Option<u64>,
        has_status: bool,
    },
    /// A watch was refused or allowed again: everything is re-evaluated.
    AccessChanged,
}

/// Called for every watch event, after the store has been updated.
pub type OnChange = Arc<dyn Fn(Change) + Send + Sync>;

/// Starts every watch; objects are reported to `on_change`.
pub struct Watches<'a> {
    pub client: &'a Client,
    /// `None`: cluster-wide watches; otherwise one watch per namespace.
    pub namespaces: Option<&'a [String]>,
    pub sync: &'a Arc<SyncState>,
    pub on_change: &'a OnChange,
    pub on_watch_error: &'a Arc<dyn Fn(&'static str) + Send + Sync>,
    /// Called once per version of an object a watch cannot decode.
    pub on_undecodable: &'a Arc<dyn Fn(Undecodable) + Send + Sync>,
    /// Where the watches record the objects they cannot decode.
    pub undecodable: Arc<UndecodableObjects>,
    /// Watch tasks; aborted when the set is dropped.
    pub tasks: &'a mut tokio::task::JoinSet<()>,
}

impl Watches<'_> {
    pub fn start(mut self) -> Stores {
        let undecodable = self.undecodable.clone();
        Stores {
            pods: self.namespaced("pods", Caching::workloads(strip_pod), |o, _| Change::Pod(o)),
            replica_sets: self.namespaced(
                "replicasets",
                Caching::workloads(strip_status),
                |o, _| Change::ReplicaSet(o),
            ),
            deployments: self.namespaced(
                "deployments",
                Caching::workloads(strip_status),
                |o, _| Change::Deployment(o),
            ),
            stateful_sets: self.namespaced(
                "statefulsets",
                Caching::workloads(strip_status),
                |o, _| Change::StatefulSet(o),
            ),
            daemon_sets: self.namespaced("daemonsets", Caching::workloads(strip_status), |o, _| {
                Change::DaemonSet(o)
            }),
            jobs: self.namespaced("jobs", Caching::workloads(strip_status), |o, _| {
                Change::Job(o)
            }),
            cron_jobs: self.namespaced("cronjobs", Caching::workloads(strip_status), |o, _| {
                Change::CronJob(o)
            }),
            replication_controllers: self.namespaced(
                "replicationcontrollers",
                Caching::workloads(strip_status),
                |o, _| Change::ReplicationController(o),
            ),
            service_accounts: self.namespaced(
                "serviceaccounts",
                Caching::all(strip_meta),
                |o, _| Change::ServiceAccount(o),
            ),
            roles: self.namespaced("roles", Caching::all(strip_meta), |o, _| Change::Role(o)),
            role_bindings: self.namespaced("rolebindings", Caching::all(strip_meta), |o, _| {
                Change::RoleBinding(o)
            }),
            network_policies: self.namespaced(
                "networkpolicies",
                Caching::all(strip_meta),
                |o, _| Change::NetworkPolicy(o),
            ),
            scan_reports: self.namespaced(
                "scanreports",
                Caching::packed(strip_scan_report),
                |r, deleted| report_change(&r.spec.target, &r.metadata, r.status.as_ref(), deleted),
            ),
            namespaces: self.cluster("namespaces", Caching::all(strip_meta), |o, _| {
                Change::Namespace(o)
            }),
            cluster_roles: self.cluster("clusterroles", Caching::all(strip_meta), |o, _| {
                Change::ClusterRole(o)
            }),
            cluster_role_bindings: self.cluster(
                "clusterrolebindings",
                Caching::all(strip_meta),
                |o, _| Change::ClusterRoleBinding(o),
            ),
            scan_policies: self.cluster("scanpolicies", Caching::all(strip_meta), |o, _| {
                Change::ScanPolicy(o)
            }),
            cluster_scan_reports: self.cluster(
                "clusterscanreports",
                Caching::packed(strip_cluster_scan_report),
                |r, deleted| report_change(&r.spec.target, &r.metadata, r.status.as_ref(), deleted),
            ),
            admission_policies: self.cluster(
                "validatingadmissionpolicies",
                Caching::all(strip_meta),
                |_, _| Change::AdmissionPolicy,
            ),
            admission_policy_bindings: self.cluster(
                "validatingadmissionpolicybindings",
                Caching::all(strip_meta),
                |_, _| Change::AdmissionPolicy,
            ),
            undecodable,
            custom: Arc::default(),
        }
    }

    fn namespaced<K, S>(
        &mut self,
        kind: &'static str,
        caching: Caching<K, S>,
        change: fn(Arc<K>, bool) -> Change,
    ) -> MultiStore<S>
    where
        K: Watched + Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
        S: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let stores = match self.namespaces {
            None => vec![(
                None,
                self.watch(kind, None, Lenient::api_all(self.client), caching, change),
            )],
            Some(namespaces) => namespaces
                .iter()
                .map(|ns| {
                    let api = Api::namespaced(self.client.clone(), ns);
                    (
                        Some(ns.clone()),
                        self.watch(kind, Some(ns), api, caching, change),
                    )
                })
                .collect(),
        };
        MultiStore { stores }
    }

    fn cluster<K, S>(
        &mut self,
        kind: &'static str,
        caching: Caching<K, S>,
        change: fn(Arc<K>, bool) -> Change,
    ) -> MultiStore<S>
    where
        K: Watched,
        S: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let store = self.watch(kind, None, Lenient::api_all(self.client), caching, change);
        MultiStore {
            stores: vec![(None, store)],
        }
    }

    fn watch<K, S>(
        &mut self,
        kind: &'static str,
        namespace: Option<&str>,
        api: Api<Lenient<K>>,
        caching: Caching<K, S>,
        change: fn(Arc<K>, bool) -> Change,
    ) -> Store<S>
    where
        K: Watched,
        S: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    {
        let id = match namespace {
            Some(ns) => format!("{kind}/{ns}"),
            None => kind.to_owned(),
        };
        self.sync.register(&id, kind);
        let (reader, writer) = reflector::store();
        // Lists are paged (500 objects a page) and read at the latest
        // version. A list at `resourceVersion=0` (any version) comes from the
        // API server's watch cache in one response whatever the limit: with
        // 10,000 Pods that is tens of megabytes of JSON, decoded whole
        // (managedFields included) before anything is stripped, and the
        // allocator keeps that peak long after.
        let config = watcher::Config::default().page_size(LIST_PAGE_SIZE);
        let strip = caching.strip;
        let stream = watcher(api, config).default_backoff().modify(move |item| {
            if let Lenient::Decoded(object) = item {
                strip(object);
            }
        });
        let mut cache = CacheWriter { writer, caching };
        let sync = self.sync.clone();
        let on_change = self.on_change.clone();
        let on_error = self.on_watch_error.clone();
        let mut sorter = Sorter {
            watch: id.clone(),
            kind,
            undecodable: self.undecodable.clone(),
            on_undecodable: self.on_undecodable.clone(),
        };
        self.tasks.spawn(async move {
            let mut stream = std::pin::pin!(stream);
            let mut refusals = Refusals::new(REFUSAL_GRACE);
            loop {
                let item = tokio::select! {
                    item = stream.next() => match item {
                        Some(item) => item,
                        None => break,
                    },
                    () = refusals.deadline_passed() => {
                        if let Verdict::Refused(message) = refusals.check(Instant::now()) {
                            refused(&sync, &id, message, &on_change);
                        }
                        continue;
                    }
                };
                match item {
                    Ok(event) => {
                        // `Init` comes before the list is even sent.
                        if !matches!(event, Event::Init) {
                            refusals.allowed();
                        }
                        let Some(event) = sorter.sort(event) else {
                            continue;
                        };
                        let changed = cache.apply(&event);
                        if matches!(event, Event::InitDone) {
                            let access = sync.update(&id, |w| {
                                w.synced = true;
                                w.forbidden = None;
                            });
                            if access {
                                tracing::info!(watch = %id, "access restored");
                                on_change(Change::AccessChanged);
                            }
                        }
                        if changed {
                            forward(event, change, &on_change);
                        }
                    }
                    Err(err) => {
                        on_error(kind);
                        match forbidden_reason(&err) {
                            Some(reason) => {
                                // Counted only once it lasts: see `refusal`.
                                let message = format!("cannot list {id}: {reason}");
                                tracing::warn!(watch = %id, %reason, "watch answered 403; retrying");
                                if let Verdict::Refused(message) =
                                    refusals.refused(message, Instant::now())
                                {
                                    refused(&sync, &id, message, &on_change);
                                }
                            }
                            None => {
                                tracing::warn!(watch = %id, error = %err, "watch failed; retrying")
                            }
                        }
                    }
                }
            }
        });
        reader
    }
}

/// Marks a watch refused (its reports become `NotEvaluated`).
fn refused(sync: &SyncState, id: &str, message: String, on_change: &OnChange) {
    tracing::warn!(watch = %id, grace = ?REFUSAL_GRACE, "watch refused for longer than the grace period; its reports are not evaluated");
    if sync.update(id, |w| w.forbidden = Some(message)) {
        on_change(Change::AccessChanged);
    }
}

fn watcher<K>(
    api: Api<Lenient<K>>,
    config: watcher::Config,
) -> impl futures::Stream<Item = watcher::Result<Event<Lenient<K>>>> + Send
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, config)
}

impl<K: Resource<DynamicType = ()>> Lenient<K> {
    fn api_all(client: &Client) -> Api<Lenient<K>> {
        Api::all(client.clone())
    }
}

fn forward<K>(event: Event<K>, change: fn(Arc<K>, bool) -> Change, on_change: &OnChange)
where
    K: Resource<DynamicType = ()> + Clone,
{
    match event {
        Event::Apply(obj) | Event::InitApply(obj) => on_change(change(Arc::new(obj), false)),
        Event::Delete(obj) => on_change(change(Arc::new(obj), true)),
        Event::Init | Event::InitDone => {}
    }
}

/// Sorts a watch's events into what the cache takes: decoded objects as
/// they are; an undecodable one is recorded, reported (log, and
/// `on_undecodable` for the metric and the Event) once per version, and
/// leaves the cache as if deleted.
struct Sorter {
    watch: String,
    kind: &'static str,
    undecodable: Arc<UndecodableObjects>,
    on_undecodable: Arc<dyn Fn(Undecodable) + Send + Sync>,
}

impl Sorter {
    fn sort<K>(&mut self, event: Event<Lenient<K>>) -> Option<Event<K>>
    where
        K: Resource<DynamicType = ()> + FromMeta,
    {
        Some(match event {
            Event::Init => {
                self.undecodable.list_started(&self.watch, self.kind);
                Event::Init
            }
            Event::InitDone => {
                self.undecodable.list_done(&self.watch);
                Event::InitDone
            }
            Event::InitApply(Lenient::Decoded(object)) => {
                self.undecodable.forget(&self.watch, object.meta());
                Event::InitApply(object)
            }
            // Not listed: the cache is built from the listed objects only.
            Event::InitApply(Lenient::Undecodable { metadata, error }) => {
                self.report::<K>(&metadata, &error);
                return None;
            }
            Event::Apply(Lenient::Decoded(object)) => {
                self.undecodable.forget(&self.watch, object.meta());
                Event::Apply(object)
            }
            // An older version may be cached: it leaves the cache.
            Event::Apply(Lenient::Undecodable { metadata, error }) => {
                self.report::<K>(&metadata, &error);
                Event::Delete(K::from_meta(*metadata))
            }
            Event::Delete(Lenient::Decoded(object)) => {
                self.undecodable.forget(&self.watch, object.meta());
                Event::Delete(object)
            }
            Event::Delete(Lenient::Undecodable { metadata, .. }) => {
                self.undecodable.forget(&self.watch, &metadata);
                Event::Delete(K::from_meta(*metadata))
            }
        })
    }

    fn report<K: Resource<DynamicType = ()>>(&self, metadata: &ObjectMeta, error: &str) {
        if !self.undecodable.record(&self.watch, metadata, error) {
            return;
        }
        tracing::warn!(
            watch = %self.watch,
            namespace = metadata.namespace.as_deref().unwrap_or_default(),
            name = metadata.name.as_deref().unwrap_or_default(),
            %error,
            "cannot decode an object; it is ignored until it is fixed"
        );
        (self.on_undecodable)(Undecodable::new::<K>(metadata, error));
    }
}

/// A report event: a deletion (the target gets its report back), or a
/// change (checked against what was last written).
fn report_change(
    target: &ReportTarget,
    metadata: &ObjectMeta,
    status: Option<&ReportStatus>,
    deleted: bool,
) -> Change {
    let namespace = metadata.namespace.clone();
    if !deleted {
        return Change::ReportUpdated {
            api_version: target.api_version.clone(),
            kind: target.kind.clone(),
            namespace,
            name: target.name.clone(),
            digest: status.and_then(|s| s.findings_digest.clone()),
            version: super::writer::version_number(metadata.resource_version.as_deref()),
            has_status: status.is_some(),
        };
    }
    Change::ReportDeleted {
        api_version: target.api_version.clone(),
        kind: target.kind.clone(),
        namespace,
        name: target.name.clone(),
    }
}

/// The reason when a watch error is the API server refusing access.
fn forbidden_reason(err: &watcher::Error) -> Option<String> {
    let client_err = match err {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e,
        watcher::Error::WatchError(status) => {
            return (status.code == 403).then(|| status.message.clone());
        }
        watcher::Error::NoResourceVersion => return None,
    };
    match client_err {
        kube::Error::Api(status) if status.code == 403 => Some(status.message.clone()),
        _ => None,
    }
}

fn strip_meta<K: ResourceExt>(obj: &mut K) {
    super::provenance::keep(obj.meta_mut());
    obj.annotations_mut().remove(LAST_APPLIED);
}

/// Workload status is never read by a check; dropping it also saves memory.
fn strip_status<K: ResourceExt + HasStatus>(obj: &mut K) {
    strip_meta(obj);
    obj.clear_status();
}

/// Pod status is never read by a check.
fn strip_pod(pod: &mut Pod) {
    strip_meta(pod);
    pod.status = None;
}

/// How a kind's objects are cached: `K` as watched, `S` as stored.
struct Caching<K, S> {
    /// Drops what no check reads, before the object is cached or passed on.
    strip: fn(&mut K),
    /// Whether the cache holds the object at all.
    kept: fn(&K) -> bool,
    /// The object as the cache holds it.
    store: fn(&K) -> S,
    /// Whether two cached versions hold the same content: an update that
    /// changes only what was stripped (a workload's status) is not passed
    /// on, since nothing any check reads changed.
    same: fn(&S, &S) -> bool,
}

impl<K, S> Clone for Caching<K, S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K, S> Copy for Caching<K, S> {}

impl<K: Clone> Caching<K, K> {
    /// Every object, as it is (once stripped).
    fn all(strip: fn(&mut K)) -> Caching<K, K> {
        Caching {
            strip,
            kept: |_| true,
            store: K::clone,
            same: |_, _| false,
        }
    }
}

impl<K: Packable> Caching<K, Packed<K>> {
    /// Every object, packed (see [`Packed`]).
    fn packed(strip: fn(&mut K)) -> Caching<K, Packed<K>> {
        Caching {
            strip,
            kept: |_| true,
            store: Packed::new,
            same: Packed::same_content,
        }
    }
}

impl<K: Packable + PodTemplated> Caching<K, Packed<K>> {
    /// Top-level workloads only, packed. Pods, ReplicaSets and Jobs of a
    /// controller are evaluated through it, and nothing looks them up, yet
    /// they outnumber their controllers (a Pod per replica, a ReplicaSet per
    /// Deployment revision): their events still trigger (to remove a report
    /// left from when an object was top-level), but they are not kept.
    fn workloads(strip: fn(&mut K)) -> Caching<K, Packed<K>> {
        Caching {
            strip,
            kept: |o| is_top_level(K::target_kind(), o.meta()),
            store: Packed::new,
            same: Packed::same_content,
        }
    }
}

/// Applies watch events to a store, leaving out objects it does not keep.
struct CacheWriter<K, S: 'static + Resource<DynamicType = ()> + Clone> {
    writer: reflector::store::Writer<S>,
    caching: Caching<K, S>,
}

impl<K, S: 'static + Resource<DynamicType = ()> + Clone> CacheWriter<K, S> {
    /// Applies `event`; false when it is an update that leaves the cached
    /// content as it was.
    fn apply(&mut self, event: &Event<K>) -> bool {
        let Caching {
            kept, store, same, ..
        } = self.caching;
        let cached = match event {
            Event::Init => Event::Init,
            Event::InitDone => Event::InitDone,
            Event::InitApply(o) if kept(o) => Event::InitApply(store(o)),
            Event::InitApply(_) => return true,
            Event::Apply(o) if kept(o) => {
                let next = store(o);
                let previous = self.writer.as_reader().get(&ObjectRef::from_obj(&next));
                if previous.is_some_and(|p| same(&p, &next)) {
                    // Still applied: the cache keeps the new resourceVersion.
                    self.writer.apply_watcher_event(&Event::Apply(next));
                    return false;
                }
                Event::Apply(next)
            }
            // An object that is no longer kept (a bare Pod adopted by a
            // ReplicaSet) leaves the cache as if deleted.
            Event::Apply(o) | Event::Delete(o) => Event::Delete(store(o)),
        };
        self.writer.apply_watcher_event(&cached);
        true
    }
}

fn strip_scan_report(report: &mut ScanReport) {
    strip_meta(report);
    report
        .annotations_mut()
        .remove(super::provenance::ANNOTATION);
    if let Some(status) = &mut report.status {
        slim_report_status(status);
    }
}

fn strip_cluster_scan_report(report: &mut ClusterScanReport) {
    strip_meta(report);
    report
        .annotations_mut()
        .remove(super::provenance::ANNOTATION);
    if let Some(status) = &mut report.status {
        slim_report_status(status);
    }
}

/// A stored report is read for its findings digest (whether a write is
/// needed), each finding's identity, severity, suppression and `firstSeen`
/// (kept across evaluations), the conditions (transition times), and the
/// messages of critical and high findings (the note of a `FindingResolved`
/// Event). The per-check texts (title, category, remediation, frameworks)
/// and the messages of quieter findings are never read back: dropping them
/// roughly halves what the reports take in memory.
///
/// The digest the status claims is kept only if it is the digest of what
/// the status holds (before slimming): the status is user-writable, and a
/// report whose content was edited must not pass for up to date.
fn slim_report_status(status: &mut ReportStatus) {
    status.findings_digest = super::report::verified_digest(status);
    for finding in &mut status.findings {
        finding.title = String::new();
        finding.category = String::new();
        finding.remediation = String::new();
        finding.frameworks = Vec::new();
        if finding.severity < Severity::High || finding.suppressed.is_some() {
            finding.message = String::new();
        }
    }
    status.findings.shrink_to_fit();
}

pub trait HasStatus {
    fn clear_status(&mut self);
}

macro_rules! has_status {
    ($($t:ty),*) => {
        $(impl HasStatus for $t {
            fn clear_status(&mut self) {
                self.status = None;
            }
        })*
    };
}

has_status!(
    ReplicaSet,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    ReplicationController
);

#[cfg(test)]
pub mod testing {
    //! Stores filled from object lists, for tests without an API server.

    use super::*;

    impl<K> MultiStore<K>
    where
        K: 'static + Resource<DynamicType = ()> + Clone,
    {
        pub fn of(objects: Vec<K>) -> MultiStore<K> {
            let (reader, mut writer) = reflector::store();
            writer.apply_watcher_event(&Event::Init);
            for o in objects {
                writer.apply_watcher_event(&Event::InitApply(o));
            }
            writer.apply_watcher_event(&Event::InitDone);
            // The reader's contents live on after the writer is gone.
            drop(writer);
            MultiStore {
                stores: vec![(None, reader)],
            }
        }
    }

    impl<S> MultiStore<S>
    where
        S: 'static + Resource<DynamicType = ()> + Clone,
    {
        /// A store filled the way a watch fills it.
        fn cached<K>(objects: Vec<K>, caching: Caching<K, S>) -> MultiStore<S> {
            let (reader, writer) = reflector::store();
            let mut cache = CacheWriter { writer, caching };
            cache.apply(&Event::Init);
            for o in objects {
                cache.apply(&Event::InitApply(o).modify(caching.strip));
            }
            cache.apply(&Event::InitDone);
            MultiStore {
                stores: vec![(None, reader)],
            }
        }
    }

    /// Objects of a test, by kind; anything unset is empty.
    #[derive(Default)]
    pub struct Objects {
        pub deployments: Vec<Deployment>,
        pub pods: Vec<Pod>,
        pub service_accounts: Vec<ServiceAccount>,
        pub roles: Vec<Role>,
        pub role_bindings: Vec<RoleBinding>,
        pub namespaces: Vec<Namespace>,
        pub cluster_roles: Vec<ClusterRole>,
        pub cluster_role_bindings: Vec<ClusterRoleBinding>,
        pub network_policies: Vec<NetworkPolicy>,
    }

    impl Objects {
        pub fn into_stores(self) -> Stores {
            Stores {
                pods: MultiStore::cached(self.pods, Caching::workloads(strip_pod)),
                replica_sets: MultiStore::of(vec![]),
                deployments: MultiStore::cached(self.deployments, Caching::workloads(strip_status)),
                stateful_sets: MultiStore::of(vec![]),
                daemon_sets: MultiStore::of(vec![]),
                jobs: MultiStore::of(vec![]),
                cron_jobs: MultiStore::of(vec![]),
                replication_controllers: MultiStore::of(vec![]),
                service_accounts: MultiStore::of(self.service_accounts),
                roles: MultiStore::of(self.roles),
                role_bindings: MultiStore::of(self.role_bindings),
                network_policies: MultiStore::of(self.network_policies),
                scan_reports: MultiStore::of(vec![]),
                namespaces: MultiStore::of(self.namespaces),
                cluster_roles: MultiStore::of(self.cluster_roles),
                cluster_role_bindings: MultiStore::of(self.cluster_role_bindings),
                scan_policies: MultiStore::of(vec![]),
                cluster_scan_reports: MultiStore::of(vec![]),
                admission_policies: MultiStore::of(vec![]),
                admission_policy_bindings: MultiStore::of(vec![]),
                undecodable: Arc::default(),
                custom: Arc::default(),
            }
        }
    }

    /// Decodes a YAML object.
    pub fn yaml<K: DeserializeOwned>(text: &str) -> K {
        serde_norway::from_str(text).expect("test object decodes")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::yaml;
    use super::*;

    const OWNED_BY_DEPLOYMENT: &str = "{metadata: {name: web-1, namespace: a, uid: u1, labels: {app: web}, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u, controller: true}]}, spec: {selector: {}, template: {spec: {containers: [{name: app}]}}}}";
    const BARE: &str = "{metadata: {name: web-1, namespace: a, labels: {app: x}}, spec: {selector: {}, template: {spec: {containers: [{name: app}]}}}, status: {replicas: 1}}";

    /// A cache of ReplicaSets and what it holds after `events`.
    fn cached_after(events: Vec<Event<ReplicaSet>>) -> Vec<ReplicaSet> {
        let (reader, writer) = reflector::store();
        let caching = Caching::workloads(strip_status);
        let mut cache = CacheWriter { writer, caching };
        for event in events {
            cache.apply(&event.modify(caching.strip));
        }
        let mut cached: Vec<ReplicaSet> =
            reader.state().iter().map(|p| p.unpack().unwrap()).collect();
        cached.sort_by_key(|rs| rs.name_any());
        cached
    }

    #[test]
    fn a_deployments_replica_set_is_not_cached_but_a_bare_one_is() {
        let listed = cached_after(vec![
            Event::Init,
            Event::InitApply(yaml(OWNED_BY_DEPLOYMENT)),
            Event::InitApply(yaml(&BARE.replace("web-1", "bare"))),
            Event::InitDone,
        ]);
        let names: Vec<_> = listed.iter().map(|rs| rs.name_any()).collect();
        assert_eq!(names, ["bare"]);
        let bare = &listed[0];
        assert!(bare.spec.is_some());
        assert!(bare.status.is_none(), "status is stripped");
        assert_eq!(bare.metadata.labels.as_ref().unwrap()["app"], "x");
    }

    #[test]
    fn an_adopted_object_leaves_the_cache_and_a_released_one_enters_it() {
        let adopted = cached_after(vec![
            Event::Init,
            Event::InitApply(yaml(BARE)),
            Event::InitDone,
            Event::Apply(yaml(OWNED_BY_DEPLOYMENT)),
        ]);
        assert!(adopted.is_empty(), "{adopted:?}");
        let released = cached_after(vec![
            Event::Init,
            Event::InitApply(yaml(OWNED_BY_DEPLOYMENT)),
            Event::InitDone,
            Event::Apply(yaml(BARE)),
        ]);
        assert_eq!(released.len(), 1);
    }

    #[test]
    fn an_update_of_only_what_is_stripped_is_not_passed_on() {
        let (reader, writer) = reflector::store();
        let caching = Caching::<Deployment, Packed<Deployment>>::workloads(strip_status);
        let mut cache = CacheWriter { writer, caching };
        let version = |rv: &str, image: &str, ready: i32| -> Deployment {
            yaml(&format!(
                "{{metadata: {{name: web, namespace: a, resourceVersion: '{rv}'}}, spec: {{selector: {{}}, template: {{spec: {{containers: [{{name: app, image: '{image}'}}]}}}}}}, status: {{readyReplicas: {ready}}}}}"
            ))
        };
        let mut apply = |event: Event<Deployment>| cache.apply(&event.modify(caching.strip));
        assert!(apply(Event::Init));
        assert!(apply(Event::InitApply(version("1", "nginx:1", 0))));
        assert!(apply(Event::InitDone));
        assert!(
            !apply(Event::Apply(version("2", "nginx:1", 1))),
            "status only"
        );
        let key = ObjectRef::new("web").within("a");
        let cached = reader.get(&key).expect("still cached");
        assert_eq!(cached.meta().resource_version.as_deref(), Some("2"));
        assert!(apply(Event::Apply(version("3", "nginx:2", 1))), "new image");
        assert!(
            apply(Event::Apply(version("3", "nginx:2", 1)).modify(|d| {
                d.metadata.labels = Some([("tier".to_owned(), "web".to_owned())].into());
            })),
            "new label"
        );
    }

    #[test]
    fn a_cronjobs_job_is_not_cached() {
        let job: Job = yaml(
            "{metadata: {name: nightly-1, namespace: a, ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: nightly, uid: u, controller: true}]}, spec: {template: {spec: {containers: [{name: app}]}}}}",
        );
        let caching = Caching::<Job, Packed<Job>>::workloads(strip_status);
        assert!(!(caching.kept)(&job));
        let bare: Job = yaml(
            "{metadata: {name: once, namespace: a}, spec: {template: {spec: {containers: [{name: app}]}}}}",
        );
        assert!((caching.kept)(&bare));
    }

    #[test]
    fn a_stored_report_keeps_what_the_next_evaluation_reads() {
        let mut report: ScanReport = yaml(
            "{metadata: {name: deployment-web, namespace: a}, spec: {target: {apiVersion: apps/v1, kind: Deployment, name: web}}, status: {findingsDigest: d1, summary: {critical: 1, high: 0, medium: 1, low: 0, info: 0, suppressed: 0, score: 70}, findings: [
               {check: privileged-container, title: Privileged, severity: critical, category: hardening, message: 'container app is privileged', path: spec.x, container: app, remediation: 'drop it', frameworks: [cis], firstSeen: '2026-01-01T00:00:00Z'},
               {check: no-limits, title: Limits, severity: medium, category: resources, message: 'no limits', path: spec.y, remediation: 'set them', frameworks: [nsa], firstSeen: '2026-01-02T00:00:00Z'}]}}",
        );
        let claimed = report.status.as_ref().map(super::super::report::digest);
        report.status.as_mut().unwrap().findings_digest = claimed.clone();
        let mut edited = report.clone();
        strip_scan_report(&mut report);
        let status = report.status.unwrap();
        assert_eq!(
            status.findings_digest, claimed,
            "a digest that matches stays"
        );
        edited.status.as_mut().unwrap().summary.score = 100;
        strip_scan_report(&mut edited);
        assert_eq!(
            edited.status.unwrap().findings_digest,
            None,
            "an edited status loses its digest"
        );
        assert_eq!(status.summary.critical, 1);
        let [loud, quiet] = &status.findings[..] else {
            panic!("two findings expected: {:?}", status.findings);
        };
        assert_eq!(loud.check, "privileged-container");
        assert_eq!(loud.message, "container app is privileged");
        assert_eq!(loud.container.as_deref(), Some("app"));
        assert!(loud.first_seen.is_some());
        assert!(loud.title.is_empty() && loud.remediation.is_empty());
        assert!(loud.frameworks.is_empty() && loud.category.is_empty());
        assert_eq!(quiet.path, "spec.y");
        assert!(quiet.message.is_empty());
        assert!(quiet.first_seen.is_some());
    }
}
