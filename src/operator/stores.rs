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
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::target::{TargetKind, is_top_level};
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
            replica_sets: self.namespaced("replicasets", strip_replica_set, |o, _| {
                Change::ReplicaSet(o)
            }),
            deployments: self.namespaced("deployments", strip_status, |o, _| Change::Deployment(o)),
            stateful_sets: self
                .namespaced("statefulsets", strip_status, |o, _| Change::StatefulSet(o)),
            daemon_sets: self.namespaced("daemonsets", strip_status, |o, _| Change::DaemonSet(o)),
            jobs: self.namespaced("jobs", strip_job, |o, _| Change::Job(o)),
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
            scan_reports: self.namespaced("scanreports", strip_scan_report, |r, deleted| {
                report_change(&r.spec.target, r.metadata.namespace.clone(), deleted)
            }),
            namespaces: self.cluster("namespaces", strip_meta, |o, _| Change::Namespace(o)),
            cluster_roles: self.cluster("clusterroles", strip_meta, |o, _| Change::ClusterRole(o)),
            cluster_role_bindings: self.cluster("clusterrolebindings", strip_meta, |o, _| {
                Change::ClusterRoleBinding(o)
            }),
            scan_policies: self.cluster("scanpolicies", strip_meta, |o, _| Change::ScanPolicy(o)),
            cluster_scan_reports: self.cluster(
                "clusterscanreports",
                strip_cluster_scan_report,
                |r, deleted| report_change(&r.spec.target, None, deleted),
            ),
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
        // Lists are paged (500 objects a page) and read at the latest
        // version. A list at `resourceVersion=0` (any version) comes from the
        // API server's watch cache in one response whatever the limit: with
        // 10,000 Pods that is tens of megabytes of JSON, decoded whole
        // (managedFields included) before anything is stripped, and the
        // allocator keeps that peak long after.
        let config = watcher::Config::default().page_size(LIST_PAGE_SIZE);
        let stream = watcher(api, config)
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
/// so only their identity and owner are kept.
fn strip_pod(pod: &mut Pod) {
    strip_meta(pod);
    pod.status = None;
    if !is_top_level(TargetKind::Pod, &pod.metadata) {
        pod.spec = None;
        keep_identity(&mut pod.metadata);
    }
}

/// A Deployment's ReplicaSets are evaluated through the Deployment: only
/// their identity and owner are kept (one per Deployment revision, so they
/// outnumber Deployments).
fn strip_replica_set(rs: &mut ReplicaSet) {
    strip_status(rs);
    if !is_top_level(TargetKind::ReplicaSet, &rs.metadata) {
        rs.spec = None;
        keep_identity(&mut rs.metadata);
    }
}

/// A CronJob's Jobs are evaluated through the CronJob, as for ReplicaSets.
fn strip_job(job: &mut Job) {
    strip_status(job);
    if !is_top_level(TargetKind::Job, &job.metadata) {
        job.spec = None;
        keep_identity(&mut job.metadata);
    }
}

/// What an object evaluated through its owner is still looked up by: its
/// name (does it exist, does it have a report left from when it was
/// top-level) and its owner. Labels and annotations go: no check reads them
/// on an object that is not evaluated.
fn keep_identity(meta: &mut ObjectMeta) {
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        generation: meta.generation.take(),
        deletion_timestamp: meta.deletion_timestamp.take(),
        owner_references: meta.owner_references.take(),
        ..ObjectMeta::default()
    };
}

fn strip_scan_report(report: &mut ScanReport) {
    strip_meta(report);
    if let Some(status) = &mut report.status {
        slim_report_status(status);
    }
}

fn strip_cluster_scan_report(report: &mut ClusterScanReport) {
    strip_meta(report);
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
fn slim_report_status(status: &mut ReportStatus) {
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

#[cfg(test)]
mod tests {
    use super::testing::yaml;
    use super::*;

    const OWNED_BY_DEPLOYMENT: &str = "{metadata: {name: web-1, namespace: a, uid: u1, labels: {app: web}, annotations: {deployment.kubernetes.io/revision: '1'}, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u, controller: true}]}, spec: {selector: {}, template: {spec: {containers: [{name: app}]}}}}";

    #[test]
    fn a_deployments_replica_set_keeps_only_its_identity_and_owner() {
        let mut rs: ReplicaSet = yaml(OWNED_BY_DEPLOYMENT);
        strip_replica_set(&mut rs);
        assert!(rs.spec.is_none());
        assert_eq!(rs.metadata.name.as_deref(), Some("web-1"));
        assert_eq!(rs.metadata.namespace.as_deref(), Some("a"));
        assert_eq!(rs.metadata.uid.as_deref(), Some("u1"));
        assert!(rs.metadata.labels.is_none());
        assert!(rs.metadata.annotations.is_none());
        assert!(!is_top_level(TargetKind::ReplicaSet, &rs.metadata));
    }

    #[test]
    fn a_bare_replica_set_keeps_its_spec_and_labels() {
        let mut rs: ReplicaSet = yaml(
            "{metadata: {name: bare, namespace: a, labels: {app: x}}, spec: {selector: {}, template: {spec: {containers: [{name: app}]}}}, status: {replicas: 1}}",
        );
        strip_replica_set(&mut rs);
        assert!(rs.spec.is_some());
        assert!(rs.status.is_none());
        assert_eq!(rs.metadata.labels.unwrap()["app"], "x");
    }

    #[test]
    fn a_cronjobs_job_keeps_only_its_identity_and_owner() {
        let mut job: Job = yaml(
            "{metadata: {name: nightly-1, namespace: a, labels: {x: y}, ownerReferences: [{apiVersion: batch/v1, kind: CronJob, name: nightly, uid: u, controller: true}]}, spec: {template: {spec: {containers: [{name: app}]}}}}",
        );
        strip_job(&mut job);
        assert!(job.spec.is_none());
        assert!(job.metadata.labels.is_none());
        assert_eq!(job.metadata.owner_references.unwrap()[0].name, "nightly");
    }

    #[test]
    fn a_stored_report_keeps_what_the_next_evaluation_reads() {
        let mut report: ScanReport = yaml(
            "{metadata: {name: deployment-web, namespace: a}, spec: {target: {apiVersion: apps/v1, kind: Deployment, name: web}}, status: {findingsDigest: d1, summary: {critical: 1, high: 0, medium: 1, low: 0, info: 0, suppressed: 0, score: 70}, findings: [
               {check: privileged-container, title: Privileged, severity: critical, category: hardening, message: 'container app is privileged', path: spec.x, container: app, remediation: 'drop it', frameworks: [cis], firstSeen: '2026-01-01T00:00:00Z'},
               {check: no-limits, title: Limits, severity: medium, category: resources, message: 'no limits', path: spec.y, remediation: 'set them', frameworks: [nsa], firstSeen: '2026-01-02T00:00:00Z'}]}}",
        );
        strip_scan_report(&mut report);
        let status = report.status.unwrap();
        assert_eq!(status.findings_digest.as_deref(), Some("d1"));
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
