//! Workload kinds of the table outside Kubernetes' own groups (Argo
//! Rollouts, Knative, KEDA, OpenShift, a user's CRDs): watched with the
//! dynamic API only while the API server serves them.
//!
//! Discovery is polled: a kind whose CRD appears is watched from the next
//! poll on, one whose CRD disappears stops being watched, its objects leave
//! the cache and their reports are removed, all without a restart. Objects
//! are cached packed like the typed workloads: identity, the facts read on
//! every change, and compact JSON decoded when evaluated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};

use super::conditions::transition_time;
use super::packed::{CachedWorkload, PodFacts};
use super::target::{TargetKey, TargetKind, is_top_level};
use crate::model::{KindTable, Resource, WorkloadKind};

/// How often the served kinds are looked up.
pub const DISCOVERY_EVERY: Duration = Duration::from_secs(5);

/// Objects per page of a watch's list.
const LIST_PAGE_SIZE: u32 = 500;

/// The ScanPolicy condition listing the workload kinds watched and absent.
pub const CONDITION: &str = "WorkloadKinds";

/// An object of a dynamically watched kind, as the cache holds it.
#[derive(Debug)]
pub struct PackedCustom {
    kind: &'static WorkloadKind,
    api_version: String,
    metadata: ObjectMeta,
    facts: Option<PodFacts>,
    /// The workload whose template it runs, `(apiVersion, kind, name)`
    /// (an Argo Rollout's `spec.workloadRef`).
    workload_ref: Option<(String, String, String)>,
    json: Box<[u8]>,
}

impl PackedCustom {
    /// Packs `object` (its status and managed fields already dropped).
    fn new(kind: &'static WorkloadKind, object: &DynamicObject) -> PackedCustom {
        let api_version = object
            .types
            .as_ref()
            .map_or(kind.api_version, |t| t.api_version.as_str())
            .to_owned();
        let json = serde_json::to_vec(object).expect("JSON serializes");
        let decoded = decode(kind, &api_version, &json).ok();
        let facts = decoded.as_ref().and_then(pod_facts);
        let workload_ref = match decoded {
            Some(Resource::Custom(c)) => c.workload_ref,
            _ => None,
        };
        let meta = &object.metadata;
        PackedCustom {
            kind,
            api_version,
            metadata: ObjectMeta {
                name: meta.name.clone(),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                generation: meta.generation,
                owner_references: meta.owner_references.clone(),
                ..ObjectMeta::default()
            },
            facts,
            workload_ref,
            json: json.into_boxed_slice(),
        }
    }

    pub fn key(&self) -> TargetKey {
        TargetKey::from_meta(TargetKind::Custom(self.kind), &self.metadata)
    }

    pub fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    /// Whether it runs the template of the workload `kind`/`name` of `group`
    /// in its namespace.
    pub fn references(&self, group: &str, kind: &str, name: &str) -> bool {
        self.workload_ref
            .as_ref()
            .is_some_and(|(api_version, k, n)| {
                crate::model::kinds::group_of(api_version) == group && k == kind && n == name
            })
    }
}

impl CachedWorkload for PackedCustom {
    fn facts(&self) -> Option<&PodFacts> {
        self.facts.as_ref()
    }

    fn to_resource(&self) -> Result<Resource, serde_json::Error> {
        decode(self.kind, &self.api_version, &self.json)
    }
}

fn decode(
    kind: &'static WorkloadKind,
    api_version: &str,
    json: &[u8],
) -> Result<Resource, serde_json::Error> {
    use serde::de::Error as _;
    let value: serde_json::Value = serde_json::from_slice(json)?;
    match Resource::decode_kind(kind, api_version, value) {
        Ok(Some(resource)) => Ok(resource),
        Ok(None) => Err(serde_json::Error::custom(format!("{kind} is not scanned"))),
        Err(e) => Err(serde_json::Error::custom(e.to_string())),
    }
}

fn pod_facts(resource: &Resource) -> Option<PodFacts> {
    match resource {
        Resource::Custom(c) => c.template.as_ref()?.spec.as_ref().map(PodFacts::of),
        Resource::DeploymentConfig(rc) => rc
            .spec
            .as_ref()?
            .template
            .as_ref()?
            .spec
            .as_ref()
            .map(PodFacts::of),
        _ => None,
    }
}

type ObjectKey = (&'static WorkloadKind, Option<String>, String);

/// The cache of every dynamically watched kind, and what discovery found.
#[derive(Default)]
pub struct CustomObjects {
    objects: RwLock<BTreeMap<ObjectKey, Arc<PackedCustom>>>,
    /// Kinds being watched, with the version served and their watch tasks.
    watched: Mutex<BTreeMap<&'static WorkloadKind, Watching>>,
    /// Kinds of the table no version of which is served, at the last poll.
    absent: Mutex<BTreeSet<&'static WorkloadKind>>,
    /// Whether discovery has answered once.
    discovered: Mutex<bool>,
}

struct Watching {
    version: String,
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl CustomObjects {
    pub fn get(
        &self,
        kind: &'static WorkloadKind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<PackedCustom>> {
        let key = (kind, namespace.map(str::to_owned), name.to_owned());
        self.objects.read().expect("cache lock").get(&key).cloned()
    }

    /// Cached objects, in the namespace when given, in key order.
    pub fn all(&self, namespace: Option<&str>) -> Vec<Arc<PackedCustom>> {
        self.objects
            .read()
            .expect("cache lock")
            .iter()
            .filter(|((_, ns, _), _)| namespace.is_none() || ns.as_deref() == namespace)
            .map(|(_, o)| o.clone())
            .collect()
    }

    /// Replaces an object; returns whether what is cached changed.
    fn put(&self, object: PackedCustom) -> bool {
        let key = (
            object.kind,
            object.metadata.namespace.clone(),
            object.metadata.name.clone().unwrap_or_default(),
        );
        let mut objects = self.objects.write().expect("cache lock");
        let same = objects.get(&key).is_some_and(|o| o.json == object.json);
        objects.insert(key, Arc::new(object));
        !same
    }

    fn remove(&self, kind: &'static WorkloadKind, meta: &ObjectMeta) -> bool {
        let key = (
            kind,
            meta.namespace.clone(),
            meta.name.clone().unwrap_or_default(),
        );
        self.objects
            .write()
            .expect("cache lock")
            .remove(&key)
            .is_some()
    }

    /// Drops every object of `kind` (in `namespace` when given); returns
    /// their keys.
    fn clear(&self, kind: &'static WorkloadKind, namespace: Option<&str>) -> Vec<TargetKey> {
        let mut objects = self.objects.write().expect("cache lock");
        let gone: Vec<ObjectKey> = objects
            .keys()
            .filter(|(k, ns, _)| {
                std::ptr::eq(*k, kind) && (namespace.is_none() || ns.as_deref() == namespace)
            })
            .cloned()
            .collect();
        gone.into_iter()
            .filter_map(|k| objects.remove(&k))
            .map(|o| o.key())
            .collect()
    }

    /// The ScanPolicy condition: the kinds watched and those configured but
    /// not served. `Unknown` until discovery first answers.
    pub fn condition(&self, previous: &[Condition], now: jiff::Timestamp) -> Condition {
        let discovered = *self.discovered.lock().expect("discovery lock");
        let watched: Vec<String> = self
            .watched
            .lock()
            .expect("discovery lock")
            .iter()
            .map(|(k, w)| format!("{}.{}/{}", k.kind, k.group, w.version))
            .collect();
        let absent: Vec<String> = self
            .absent
            .lock()
            .expect("discovery lock")
            .iter()
            .map(|k| format!("{}.{}", k.kind, k.group))
            .collect();
        let (status, reason, message) = if discovered {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "none".to_owned()
                } else {
                    v.join(", ")
                }
            };
            (
                "True",
                "Discovered",
                format!(
                    "watched: {}; absent (CRD not served): {}",
                    list(&watched),
                    list(&absent)
                ),
            )
        } else {
            (
                "Unknown",
                "Discovering",
                "looking up the served workload kinds".to_owned(),
            )
        };
        Condition {
            type_: CONDITION.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message,
            last_transition_time: transition_time(previous, CONDITION, status, now),
            observed_generation: None,
        }
    }
}

/// What discovery and the watches tell the rest of the operator.
pub trait Listener: Send + Sync + 'static {
    /// An object of a watched kind was added, changed or deleted
    /// (`object` is `None` once it is gone from the cache).
    fn changed(&self, key: TargetKey, facts: Option<PodFacts>, top_level: bool);
    /// These targets lost their object with the kind (its CRD is no longer
    /// served, or the kind left the table); `kind` may have reports too.
    fn kind_gone(&self, kind: &'static WorkloadKind, keys: Vec<TargetKey>);
    /// A kind started or stopped being watched.
    fn kinds_changed(&self);
}

/// Which version of `kind` the API server serves, if any; `Err` when
/// discovery did not answer (the kind keeps its state until it does).
async fn served_version(
    client: &Client,
    kind: &WorkloadKind,
) -> Result<Option<String>, kube::Error> {
    for version in kind.versions {
        let listed = match kind.group {
            "" => client.list_core_api_resources(version).await,
            group => {
                client
                    .list_api_group_resources(&format!("{group}/{version}"))
                    .await
            }
        };
        match listed {
            Ok(list) if list.resources.iter().any(|r| r.name == kind.plural) => {
                return Ok(Some((*version).to_owned()));
            }
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Polls discovery every [`DISCOVERY_EVERY`] and starts or stops the
/// watches of the dynamically watched kinds of `kinds()`; never completes.
pub async fn discovery_loop(
    client: Client,
    namespaces: Option<Vec<String>>,
    cache: Arc<CustomObjects>,
    kinds: impl Fn() -> Arc<KindTable> + Send + 'static,
    listener: Arc<dyn Listener>,
) {
    // When this loop stops (the operator shuts down), so do the watches.
    let _stop = StopWatches(cache.clone());
    loop {
        let table = kinds();
        let mut changed = false;
        let mut absent = BTreeSet::new();
        let mut answered = true;
        for kind in table.watched_dynamically() {
            match served_version(&client, kind).await {
                Ok(Some(version)) => {
                    changed |= watch(
                        &client,
                        namespaces.as_deref(),
                        &cache,
                        kind,
                        &version,
                        &listener,
                    );
                }
                Ok(None) => {
                    absent.insert(kind);
                    changed |= unwatch(&cache, kind, &listener);
                }
                Err(e) => {
                    answered = false;
                    tracing::warn!(kind = %kind, error = %e, "cannot look up whether a workload kind is served");
                }
            }
        }
        // Kinds that left the table.
        let dropped: Vec<&'static WorkloadKind> = cache
            .watched
            .lock()
            .expect("discovery lock")
            .keys()
            .filter(|k| table.iter().all(|t| !std::ptr::eq(t, **k)))
            .copied()
            .collect();
        for kind in dropped {
            changed |= unwatch(&cache, kind, &listener);
        }
        let absent_changed = {
            let mut previous = cache.absent.lock().expect("discovery lock");
            let differs = *previous != absent;
            *previous = absent;
            differs
        };
        let first = {
            let mut discovered = cache.discovered.lock().expect("discovery lock");
            let was = *discovered;
            *discovered |= answered;
            answered && !was
        };
        if changed || absent_changed || first {
            listener.kinds_changed();
        }
        tokio::time::sleep(DISCOVERY_EVERY).await;
    }
}

struct StopWatches(Arc<CustomObjects>);

impl Drop for StopWatches {
    fn drop(&mut self) {
        self.0
            .watched
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// Starts watching `kind` at `version` unless it already is; returns
/// whether anything started.
fn watch(
    client: &Client,
    namespaces: Option<&[String]>,
    cache: &Arc<CustomObjects>,
    kind: &'static WorkloadKind,
    version: &str,
    listener: &Arc<dyn Listener>,
) -> bool {
    let mut watched = cache.watched.lock().expect("discovery lock");
    if watched.get(kind).is_some_and(|w| w.version == version) {
        return false;
    }
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(kind.group, version, kind.kind),
        kind.plural,
    );
    let apis: Vec<(Option<String>, Api<DynamicObject>)> = match namespaces {
        None => vec![(None, Api::all_with(client.clone(), &resource))],
        Some(namespaces) => namespaces
            .iter()
            .map(|ns| {
                (
                    Some(ns.clone()),
                    Api::namespaced_with(client.clone(), ns, &resource),
                )
            })
            .collect(),
    };
    let tasks = apis
        .into_iter()
        .map(|(namespace, api)| {
            let cache = cache.clone();
            let listener = listener.clone();
            tokio::spawn(run_watch(api, kind, namespace, cache, listener)).abort_handle()
        })
        .collect();
    tracing::info!(kind = %kind, version, "workload kind served: watching it");
    // Replacing an older version's entry aborts its tasks.
    watched.insert(
        kind,
        Watching {
            version: version.to_owned(),
            tasks,
        },
    );
    true
}

/// Stops watching `kind`; its objects leave the cache and the listener
/// hears which targets lost them. Returns whether it was watched.
fn unwatch(
    cache: &CustomObjects,
    kind: &'static WorkloadKind,
    listener: &Arc<dyn Listener>,
) -> bool {
    let Some(watching) = cache.watched.lock().expect("discovery lock").remove(kind) else {
        return false;
    };
    drop(watching);
    let keys = cache.clear(kind, None);
    tracing::info!(kind = %kind, objects = keys.len(), "workload kind no longer served: watch stopped");
    listener.kind_gone(kind, keys);
    true
}

async fn run_watch(
    api: Api<DynamicObject>,
    kind: &'static WorkloadKind,
    namespace: Option<String>,
    cache: Arc<CustomObjects>,
    listener: Arc<dyn Listener>,
) {
    let config = watcher::Config::default().page_size(LIST_PAGE_SIZE);
    let stream = watcher::watcher(api, config).default_backoff();
    let mut stream = std::pin::pin!(stream);
    // Objects of the list in progress: the cache is swapped to them when it
    // ends, so a relist also drops what was deleted meanwhile.
    let mut listing: Option<Vec<DynamicObject>> = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(Event::Init) => listing = Some(Vec::new()),
            Ok(Event::InitApply(object)) => {
                if let Some(list) = listing.as_mut() {
                    list.push(stripped(object));
                }
            }
            Ok(Event::InitDone) => {
                let listed = listing.take().unwrap_or_default();
                let before = cache.clear(kind, namespace.as_deref());
                let mut seen = BTreeSet::new();
                for object in listed {
                    let (key, facts, top) = store(&cache, kind, &object);
                    seen.insert(key.clone());
                    listener.changed(key, facts, top);
                }
                for key in before.into_iter().filter(|k| !seen.contains(k)) {
                    listener.changed(key, None, true);
                }
            }
            Ok(Event::Apply(object)) => {
                let object = stripped(object);
                let packed = PackedCustom::new(kind, &object);
                let top = is_top_level(TargetKind::Custom(kind), &object.metadata);
                let key = packed.key();
                let facts = packed.facts.clone();
                let changed = if top || kind.cached {
                    cache.put(packed)
                } else {
                    cache.remove(kind, &object.metadata);
                    true
                };
                if changed {
                    listener.changed(key, facts, top);
                }
            }
            Ok(Event::Delete(object)) => {
                cache.remove(kind, &object.metadata);
                let key = TargetKey::from_meta(TargetKind::Custom(kind), &object.metadata);
                listener.changed(key, None, true);
            }
            Err(e) => tracing::warn!(kind = %kind, error = %e, "watch failed; retrying"),
        }
    }
}

/// Caches one listed object (when its kind is cached or it is top-level).
fn store(
    cache: &CustomObjects,
    kind: &'static WorkloadKind,
    object: &DynamicObject,
) -> (TargetKey, Option<PodFacts>, bool) {
    let packed = PackedCustom::new(kind, object);
    let top = is_top_level(TargetKind::Custom(kind), &object.metadata);
    let key = packed.key();
    let facts = packed.facts.clone();
    if top || kind.cached {
        cache.put(packed);
    }
    (key, facts, top)
}

/// Drops what no check reads: managed fields, the last-applied copy, status.
fn stripped(mut object: DynamicObject) -> DynamicObject {
    let meta = &mut object.metadata;
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
    if let Some(fields) = object.data.as_object_mut() {
        fields.remove("status");
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(name: &str, account: &str) -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": name, "namespace": "a",
                "managedFields": [{"manager": "kubectl"}]},
            "spec": {"template": {"spec": {"serviceAccountName": account,
                "containers": [{"name": "app", "image": "nginx"}]}}},
            "status": {"phase": "Healthy"},
        }))
        .unwrap()
    }

    fn rollout_kind() -> &'static WorkloadKind {
        KindTable::built_in()
            .find("argoproj.io", "Rollout")
            .unwrap()
    }

    #[test]
    fn objects_are_cached_packed_and_decode_to_their_workload() {
        let cache = CustomObjects::default();
        let kind = rollout_kind();
        let (key, facts, top) = store(&cache, kind, &stripped(rollout("web", "runner")));
        assert!(top);
        assert_eq!(key.to_string(), "Rollout/a/web");
        assert_eq!(facts.unwrap().service_account, "runner");
        let cached = cache.get(kind, Some("a"), "web").unwrap();
        let text = String::from_utf8(cached.json.to_vec()).unwrap();
        assert!(
            !text.contains("managedFields") && !text.contains("Healthy"),
            "{text}"
        );
        let Resource::Custom(object) = cached.to_resource().unwrap() else {
            panic!("a Rollout decodes as a table kind")
        };
        assert_eq!(object.metadata.name.as_deref(), Some("web"));
        // The same content again is no change; another is.
        assert!(!cache.put(PackedCustom::new(kind, &stripped(rollout("web", "runner")))));
        assert!(cache.put(PackedCustom::new(kind, &stripped(rollout("web", "other")))));
        assert_eq!(cache.clear(kind, None), [key]);
        assert!(cache.all(None).is_empty());
    }

    #[test]
    fn the_condition_lists_watched_and_absent_kinds() {
        let cache = CustomObjects::default();
        let now = jiff::Timestamp::from_second(1_000).unwrap();
        assert_eq!(cache.condition(&[], now).status, "Unknown");
        *cache.discovered.lock().unwrap() = true;
        cache.watched.lock().unwrap().insert(
            rollout_kind(),
            Watching {
                version: "v1alpha1".into(),
                tasks: vec![],
            },
        );
        let scaled_job = KindTable::built_in().find("keda.sh", "ScaledJob").unwrap();
        cache.absent.lock().unwrap().insert(scaled_job);
        let condition = cache.condition(&[], now);
        assert_eq!(condition.status, "True");
        assert_eq!(
            condition.message,
            "watched: Rollout.argoproj.io/v1alpha1; absent (CRD not served): ScaledJob.keda.sh"
        );
    }
}
