//! Watch items decoded one by one. A typed list fails as a whole when one of
//! its items does not decode, and the watcher then re-lists forever: one
//! hand-patched report (a count past `u32`) or a policy stored before the
//! CRD schema was tightened (an expiry past what the time type holds)
//! would keep a kind's cache from ever syncing and the operator from ever
//! becoming ready. Watches therefore read [`Lenient`] items: each decodes
//! to its type or to its metadata and the reason it does not, which the
//! caller reports and leaves out of the cache.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Namespace, ObjectReference, Pod, ReplicationController, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::de::{Deserialize, DeserializeOwned, Deserializer};

use super::report::{LABEL_TARGET_KIND, LABEL_TARGET_NAME};
use crate::crd::{
    ClusterScanReport, ClusterScanReportSpec, ReportTarget, ScanPolicy, ScanReport, ScanReportSpec,
};

/// A watched object: decoded, or why it is not.
#[derive(Clone, Debug)]
pub enum Lenient<K> {
    Decoded(K),
    Undecodable {
        /// Boxed: an undecodable object is rare, and the enum stays small.
        metadata: Box<ObjectMeta>,
        /// The field and the problem, e.g. `status.summary.critical:
        /// invalid value: integer `4294967296`, expected u32`.
        error: String,
    },
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Lenient<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // One object at a time goes through a `Value`, so that a failure
        // leaves its metadata readable.
        let value = serde_json::Value::deserialize(deserializer)?;
        Ok(Lenient::from_value(&value))
    }
}

impl<K> Lenient<K> {
    /// The object, if it decoded.
    pub fn decoded(self) -> Option<K> {
        match self {
            Lenient::Decoded(object) => Some(object),
            Lenient::Undecodable { .. } => None,
        }
    }
}

impl<K: DeserializeOwned> Lenient<K> {
    pub fn from_value(value: &serde_json::Value) -> Lenient<K> {
        match serde_path_to_error::deserialize::<_, K>(value) {
            Ok(object) => Lenient::Decoded(object),
            Err(e) => Lenient::Undecodable {
                metadata: Box::new(
                    value
                        .get("metadata")
                        .and_then(|m| ObjectMeta::deserialize(m).ok())
                        .unwrap_or_default(),
                ),
                error: format!("{}: {}", e.path(), e.inner()),
            },
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Lenient<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    resource_type_of!(K);

    fn meta(&self) -> &ObjectMeta {
        match self {
            Lenient::Decoded(object) => object.meta(),
            Lenient::Undecodable { metadata, .. } => metadata,
        }
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Lenient::Decoded(object) => object.meta_mut(),
            Lenient::Undecodable { metadata, .. } => metadata,
        }
    }
}

/// The type-level half of [`Resource`] for a wrapper that the API serves
/// and stores as the kind `$inner`: the same kind, group, version and plural.
macro_rules! resource_type_of {
    ($inner:ident) => {
        fn kind(dt: &()) -> Cow<'_, str> {
            $inner::kind(dt)
        }

        fn group(dt: &()) -> Cow<'_, str> {
            $inner::group(dt)
        }

        fn version(dt: &()) -> Cow<'_, str> {
            $inner::version(dt)
        }

        fn plural(dt: &()) -> Cow<'_, str> {
            $inner::plural(dt)
        }
    };
}
pub(super) use resource_type_of;

/// A kind the operator watches item by item: typed, and able to stand for
/// an undecodable object by its metadata alone.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + FromMeta + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + FromMeta
        + Send
        + Sync
        + 'static
{
}

/// An object of a kind, known only by its metadata: what stands for an
/// undecodable object when it leaves the cache.
pub trait FromMeta {
    fn from_meta(metadata: ObjectMeta) -> Self;
}

macro_rules! from_meta_by_default {
    ($($t:ty),*) => {
        $(impl FromMeta for $t {
            fn from_meta(metadata: ObjectMeta) -> Self {
                Self { metadata, ..Default::default() }
            }
        })*
    };
}

from_meta_by_default!(
    ValidatingAdmissionPolicy,
    ValidatingAdmissionPolicyBinding,
    Pod,
    ReplicaSet,
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    CronJob,
    ReplicationController,
    ServiceAccount,
    Role,
    RoleBinding,
    NetworkPolicy,
    Namespace,
    ClusterRole,
    ClusterRoleBinding
);

impl FromMeta for ScanPolicy {
    fn from_meta(metadata: ObjectMeta) -> Self {
        ScanPolicy {
            metadata,
            spec: Default::default(),
            status: None,
        }
    }
}

/// The target a report's labels name, so that the target is evaluated
/// again and its report rewritten.
fn target_from_labels(metadata: &ObjectMeta) -> ReportTarget {
    let label = |key: &str| {
        metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .cloned()
            .unwrap_or_default()
    };
    ReportTarget {
        kind: label(LABEL_TARGET_KIND),
        name: label(LABEL_TARGET_NAME),
        ..ReportTarget::default()
    }
}

impl FromMeta for ScanReport {
    fn from_meta(metadata: ObjectMeta) -> Self {
        let target = target_from_labels(&metadata);
        ScanReport {
            metadata,
            spec: ScanReportSpec { target },
            status: None,
        }
    }
}

impl FromMeta for ClusterScanReport {
    fn from_meta(metadata: ObjectMeta) -> Self {
        let target = target_from_labels(&metadata);
        ClusterScanReport {
            metadata,
            spec: ClusterScanReportSpec { target },
            status: None,
        }
    }
}

/// An object a watch could not decode.
#[derive(Clone, Debug)]
pub struct Undecodable {
    /// The object, for an Event on it.
    pub object: ObjectReference,
    pub error: String,
}

impl Undecodable {
    pub fn new<K: Resource<DynamicType = ()>>(metadata: &ObjectMeta, error: &str) -> Undecodable {
        Undecodable {
            object: ObjectReference {
                api_version: Some(K::api_version(&()).into_owned()),
                kind: Some(K::kind(&()).into_owned()),
                namespace: metadata.namespace.clone(),
                name: metadata.name.clone(),
                uid: metadata.uid.clone(),
                resource_version: metadata.resource_version.clone(),
                ..ObjectReference::default()
            },
            error: error.to_owned(),
        }
    }
}

/// `(namespace, name)` of an object.
type ObjectName = (Option<String>, String);

/// The objects each watch could not decode, with the reason, as of its
/// last list and the events since.
#[derive(Default)]
pub struct UndecodableObjects {
    watches: Mutex<BTreeMap<String, WatchUndecodable>>,
}

#[derive(Default)]
struct WatchUndecodable {
    kind: String,
    current: BTreeMap<ObjectName, Entry>,
    /// Filled while the watch re-lists; replaces `current` when it ends.
    relisting: Option<BTreeMap<ObjectName, Entry>>,
}

#[derive(Clone, Debug, PartialEq)]
struct Entry {
    resource_version: Option<String>,
    generation: Option<i64>,
    error: String,
}

impl UndecodableObjects {
    /// A watch (re-)lists its objects.
    pub fn list_started(&self, watch: &str, kind: &str) {
        let mut watches = self.watches.lock().expect("undecodable lock");
        let state = watches.entry(watch.to_owned()).or_default();
        state.kind = kind.to_owned();
        state.relisting = Some(BTreeMap::new());
    }

    pub fn list_done(&self, watch: &str) {
        let mut watches = self.watches.lock().expect("undecodable lock");
        if let Some(state) = watches.get_mut(watch)
            && let Some(listed) = state.relisting.take()
        {
            state.current = listed;
        }
    }

    /// Records an undecodable object; false when this very version was
    /// already recorded (a re-list), so it is not reported twice.
    pub fn record(&self, watch: &str, metadata: &ObjectMeta, error: &str) -> bool {
        let mut watches = self.watches.lock().expect("undecodable lock");
        let state = watches.entry(watch.to_owned()).or_default();
        let entry = Entry {
            resource_version: metadata.resource_version.clone(),
            generation: metadata.generation,
            error: error.to_owned(),
        };
        let key = object_name(metadata);
        let new = state.current.get(&key) != Some(&entry);
        match &mut state.relisting {
            Some(listed) => listed.insert(key, entry),
            None => state.current.insert(key, entry),
        };
        new
    }

    /// The object decodes again, or is gone.
    pub fn forget(&self, watch: &str, metadata: &ObjectMeta) {
        let mut watches = self.watches.lock().expect("undecodable lock");
        if let Some(state) = watches.get_mut(watch) {
            state.current.remove(&object_name(metadata));
        }
    }

    /// Why the object of `kind` (plural, as watched) named so does not
    /// decode, if it does not.
    pub fn error(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<String> {
        self.entry(kind, namespace, name).map(|e| e.error)
    }

    /// The `metadata.generation` of an undecodable object; `None` when the
    /// object decodes (or is not known).
    pub fn generation(
        &self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Option<i64>> {
        self.entry(kind, namespace, name).map(|e| e.generation)
    }

    fn entry(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<Entry> {
        let watches = self.watches.lock().expect("undecodable lock");
        let key = (namespace.map(str::to_owned), name.to_owned());
        watches
            .values()
            .filter(|w| w.kind == kind)
            .find_map(|w| w.current.get(&key).cloned())
    }
}

fn object_name(metadata: &ObjectMeta) -> ObjectName {
    (
        metadata.namespace.clone(),
        metadata.name.clone().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::ObjectList;

    #[test]
    fn one_bad_item_does_not_fail_the_list() {
        let page = serde_json::json!({
            "apiVersion": "palisade.dev/v1alpha1",
            "kind": "ScanReportList",
            "metadata": {"resourceVersion": "10"},
            "items": [
                {"metadata": {"name": "good", "namespace": "a"}, "spec": {"target": {"apiVersion": "v1", "kind": "ServiceAccount", "name": "x"}}},
                {"metadata": {"name": "bad", "namespace": "a", "labels": {"palisade.dev/target-kind": "Role", "palisade.dev/target-name": "r"}},
                 "spec": {"target": {"apiVersion": "v1", "kind": "Role", "name": "r"}},
                 "status": {"summary": {"critical": 4294967296u64, "high": 0, "medium": 0, "low": 0, "info": 0, "suppressed": 0, "score": 0}}},
            ]
        });
        let text = page.to_string();
        assert!(
            serde_json::from_str::<ObjectList<ScanReport>>(&text).is_err(),
            "a typed list fails as a whole"
        );
        let list: ObjectList<Lenient<ScanReport>> = serde_json::from_str(&text).unwrap();
        let [good, bad] = &list.items[..] else {
            panic!("two items")
        };
        assert!(matches!(good, Lenient::Decoded(r) if r.metadata.name.as_deref() == Some("good")));
        let Lenient::Undecodable { metadata, error } = bad else {
            panic!("the bad item is undecodable")
        };
        assert_eq!(metadata.name.as_deref(), Some("bad"));
        assert!(error.starts_with("status.summary.critical:"), "{error}");
        let stand_in = ScanReport::from_meta((**metadata).clone());
        assert_eq!(stand_in.spec.target.kind, "Role");
        assert_eq!(stand_in.spec.target.name, "r");
    }

    #[test]
    fn an_object_is_reported_once_per_version() {
        let objects = UndecodableObjects::default();
        let meta = |rv: &str| ObjectMeta {
            name: Some("p".into()),
            resource_version: Some(rv.into()),
            ..ObjectMeta::default()
        };
        objects.list_started("scanpolicies", "scanpolicies");
        assert!(objects.record("scanpolicies", &meta("1"), "bad"));
        objects.list_done("scanpolicies");
        assert_eq!(
            objects.error("scanpolicies", None, "p").as_deref(),
            Some("bad")
        );
        objects.list_started("scanpolicies", "scanpolicies");
        assert!(
            !objects.record("scanpolicies", &meta("1"), "bad"),
            "the same version again"
        );
        objects.list_done("scanpolicies");
        assert!(objects.record("scanpolicies", &meta("2"), "bad"));
        objects.forget("scanpolicies", &meta("2"));
        assert_eq!(objects.error("scanpolicies", None, "p"), None);
    }
}
