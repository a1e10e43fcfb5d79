//! Watch caches: one reflector per kind (per namespace when the operator is
//! limited to some), with managedFields, the last-applied annotation and
//! anything else no check reads stripped before objects are stored.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, ReplicationController, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::crd::{ClusterScanReport, ReportTarget, ScanPolicy, ScanReport};

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
    pub pods: MultiStore<Pod>,
    pub replica_sets: MultiStore<ReplicaSet>,
    pub deployments: MultiStore<Deployment>,
    pub stateful_sets: MultiStore<StatefulSet>,
    pub daemon_sets: MultiStore<DaemonSet>,
    pub jobs: MultiStore<Job>,
    pub cron_jobs: MultiStore<CronJob>,
    pub replication_controllers: MultiStore<ReplicationController>,
    pub service_accounts: MultiStore<ServiceAccount>,
    pub roles: MultiStore<Role>,
    pub role_bindings: MultiStore<RoleBinding>,
    pub network_policies: MultiStore<NetworkPolicy>,
    pub scan_reports: MultiStore<ScanReport>,
    pub namespaces: MultiStore<Namespace>,
    pub cluster_roles: MultiStore<ClusterRole>,
    pub cluster_role_bindings: MultiStore<ClusterRoleBinding>,
    pub scan_policies: MultiStore<ScanPolicy>,
    pub cluster_scan_reports: MultiStore<ClusterScanReport>,
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
    /// A report was deleted (by a user or the garbage collector).
    ReportDeleted {
        kind: String,
        namespace: Option<String>,
        name: String,
    },
    ScanReport,
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
    /// Watch tasks; aborted when the set is dropped.
    pub tasks: &'a mut tokio::task::JoinSet<()>,
}

impl Watches<'_> {
    pub fn start(mut self) -> Stores {
        Stores {
            pods: self.namespaced("pods", strip_pod, |o, _| Change::Pod(o)),
            replica_sets: self
                .namespaced("replicasets", strip_status, |o, _| Change::ReplicaSet(o)),
            deployments: self.namespaced("deployments", strip_status, |o, _| Change::Deployment(o)),
            stateful_sets: self
                .namespaced("statefulsets", strip_status, |o, _| Change::StatefulSet(o)),
            daemon_sets: self.namespaced("daemonsets", strip_status, |o, _| Change::DaemonSet(o)),
            jobs: self.namespaced("jobs", strip_status, |o, _| Change::Job(o)),
            cron_jobs: self.namespaced("cronjobs", strip_status, |o, _| Change::CronJob(o)),
            replication_controllers: self.namespaced(
                "replicationcontrollers",
                strip_status,
                |o, _| Change::ReplicationController(o),
            ),
            service_accounts: self.namespaced("serviceaccounts", strip_meta, |o, _| {
                Change::ServiceAccount(o)
            }),
            roles: self.namespaced("roles", strip_meta, |o, _| Change::Role(o)),
            role_bindings: self
                .namespaced("rolebindings", strip_meta, |o, _| Change::RoleBinding(o)),
            network_policies: self.namespaced("networkpolicies", strip_meta, |o, _| {
                Change::NetworkPolicy(o)
            }),
            scan_reports: self.namespaced("scanreports", strip_meta, |r, deleted| {
                report_change(&r.spec.target, r.metadata.namespace.clone(), deleted)
            }),
            namespaces: self.cluster("namespaces", strip_meta, |o, _| Change::Namespace(o)),
            cluster_roles: self.cluster("clusterroles", strip_meta, |o, _| Change::ClusterRole(o)),
            cluster_role_bindings: self.cluster("clusterrolebindings", strip_meta, |o, _| {
                Change::ClusterRoleBinding(o)
            }),
            scan_policies: self.cluster("scanpolicies", strip_meta, |o, _| Change::ScanPolicy(o)),
            cluster_scan_reports: self.cluster("clusterscanreports", strip_meta, |r, deleted| {
                report_change(&r.spec.target, None, deleted)
            }),
        }
    }

    fn namespaced<K>(
        &mut self,
        kind: &'static str,
        strip: fn(&mut K),
        change: fn(Arc<K>, bool) -> Change,
    ) -> MultiStore<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned
            + Send
            + Sync
            + 'static,
    {
        let stores = match self.namespaces {
            None => vec![(
                None,
                self.watch(kind, None, Api::all(self.client.clone()), strip, change),
            )],
            Some(namespaces) => namespaces
                .iter()
                .map(|ns| {
                    let api = Api::namespaced(self.client.clone(), ns);
                    (
                        Some(ns.clone()),
                        self.watch(kind, Some(ns), api, strip, change),
                    )
                })
                .collect(),
        };
        MultiStore { stores }
    }

    fn cluster<K>(
        &mut self,
        kind: &'static str,
        strip: fn(&mut K),
        change: fn(Arc<K>, bool) -> Change,
    ) -> MultiStore<K>
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let store = self.watch(kind, None, Api::all(self.client.clone()), strip, change);
        MultiStore {
            stores: vec![(None, store)],
        }
    }

    fn watch<K>(
        &mut self,
        kind: &'static str,
        namespace: Option<&str>,
        api: Api<K>,
        strip: fn(&mut K),
        change: fn(Arc<K>, bool) -> Change,
    ) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let id = match namespace {
            Some(ns) => format!("{kind}/{ns}"),
            None => kind.to_owned(),
        };
        self.sync.register(&id, kind);
        let (reader, writer) = reflector::store();
        let stream = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(strip)
            .reflect(writer);
        let sync = self.sync.clone();
        let on_change = self.on_change.clone();
        let on_error = self.on_watch_error.clone();
        self.tasks.spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(event) => {
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
                        forward(event, change, &on_change);
                    }
                    Err(err) => {
                        on_error(kind);
                        match forbidden_reason(&err) {
                            Some(reason) => {
                                let message = format!("cannot list {id}: {reason}");
                                tracing::warn!(watch = %id, %reason, "watch refused");
                                if sync.update(&id, |w| w.forbidden = Some(message)) {
                                    on_change(Change::AccessChanged);
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

fn watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl futures::Stream<Item = watcher::Result<Event<K>>> + Send
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, config)
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

/// A report event: only deletions matter (the target gets its report back).
fn report_change(target: &ReportTarget, namespace: Option<String>, deleted: bool) -> Change {
    if !deleted {
        return Change::ScanReport;
    }
    Change::ReportDeleted {
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
    obj.managed_fields_mut().clear();
    obj.annotations_mut().remove(LAST_APPLIED);
}

/// Workload status is never read by a check; dropping it also saves memory.
fn strip_status<K: ResourceExt + HasStatus>(obj: &mut K) {
    strip_meta(obj);
    obj.clear_status();
}

/// Pods managed by a controller are never evaluated (their controller is),
/// so only their metadata is kept.
fn strip_pod(pod: &mut Pod) {
    strip_meta(pod);
    pod.status = None;
    if super::target::controller_of(&pod.metadata).is_some()
        && !super::target::is_top_level(super::target::TargetKind::Pod, &pod.metadata)
    {
        pod.spec = None;
    }
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
                pods: MultiStore::of(self.pods),
                replica_sets: MultiStore::of(vec![]),
                deployments: MultiStore::of(self.deployments),
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
            }
        }
    }

    /// Decodes a YAML object.
    pub fn yaml<K: DeserializeOwned>(text: &str) -> K {
        serde_norway::from_str(text).expect("test object decodes")
    }
}
