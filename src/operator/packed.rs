//! Workloads and reports as the watch caches hold them: their identity, the
//! facts read of every cached object (the account a workload runs as, the
//! target of a report), and the object itself as compact JSON, decoded only
//! when it is evaluated.
//!
//! A typed Deployment takes about 8 KB in memory whatever it holds (a
//! `Container` alone is 2,144 bytes of mostly empty `Option`s); the same
//! Deployment as JSON takes under 1 KB, and a report's findings shrink
//! alike. With tens of thousands of workloads these caches are most of the
//! operator's memory, while decoding one object per evaluation costs
//! microseconds next to evaluating it.

use std::borrow::Cow;
use std::marker::PhantomData;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::lenient::resource_type_of;
use super::snapshot::PodTemplated;
use crate::model;

/// What the triggers and the RBAC analysis read of a pod spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodFacts {
    /// The account the pods run as (`default` when unset).
    pub service_account: String,
    /// The pod's own `automountServiceAccountToken`, if set.
    pub automount_token: Option<bool>,
    /// A projected service-account token volume mounts a token regardless.
    pub projected_token: bool,
}

impl PodFacts {
    pub fn of(spec: &PodSpec) -> PodFacts {
        let projected_token = spec.volumes.iter().flatten().any(|v| {
            v.projected
                .as_ref()
                .and_then(|p| p.sources.as_ref())
                .is_some_and(|s| s.iter().any(|s| s.service_account_token.is_some()))
        });
        PodFacts {
            service_account: service_account_of(spec).to_owned(),
            automount_token: spec.automount_service_account_token,
            projected_token,
        }
    }
}

/// The service account a pod spec runs as.
pub fn service_account_of(spec: &PodSpec) -> &str {
    spec.service_account_name
        .as_deref()
        .or(spec.service_account.as_deref())
        .filter(|s| !s.is_empty())
        .unwrap_or("default")
}

/// A kind the caches hold packed.
pub trait Packable: Resource<DynamicType = ()> + Serialize + DeserializeOwned {
    /// What is read of every cached object without decoding it.
    type Facts: Clone + std::fmt::Debug + Send + Sync + 'static;
    fn facts(&self) -> Self::Facts;

    /// The object as stored: its JSON unless a kind has a leaner form,
    /// without its resourceVersion (kept in the identity), so that two
    /// versions that differ only in what was stripped (status) pack alike.
    fn pack(&self) -> Vec<u8> {
        // Kubernetes types have string map keys and no fallible
        // serializers, so writing one into memory cannot fail.
        let mut value = serde_json::to_value(self).expect("a Kubernetes object serializes");
        if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
            meta.remove("resourceVersion");
        }
        serde_json::to_vec(&value).expect("JSON serializes")
    }

    /// The object back from [`Packable::pack`]; `identity` is the metadata
    /// the cache keeps beside it.
    fn unpack(bytes: &[u8], identity: &ObjectMeta) -> Result<Self, serde_json::Error> {
        let mut object: Self = serde_json::from_slice(bytes)?;
        object.meta_mut().resource_version = identity.resource_version.clone();
        Ok(object)
    }
}

/// A cached object of kind `K`.
pub struct Packed<K: Packable> {
    /// Identity only: name, namespace, uid, resourceVersion and generation
    /// (the rest is in `json`).
    metadata: ObjectMeta,
    facts: K::Facts,
    /// The whole object (stripped of what is never read) as JSON.
    json: Box<[u8]>,
    kind: PhantomData<fn() -> K>,
}

// Derives would ask `K: Clone` and `K: Debug` for no reason.
impl<K: Packable> Clone for Packed<K> {
    fn clone(&self) -> Self {
        Packed {
            metadata: self.metadata.clone(),
            facts: self.facts.clone(),
            json: self.json.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Packable> std::fmt::Debug for Packed<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packed")
            .field("metadata", &self.metadata)
            .field("facts", &self.facts)
            .field("json_bytes", &self.json.len())
            .finish()
    }
}

impl<K: Packable> Packed<K> {
    pub fn new(object: &K) -> Packed<K> {
        let meta = object.meta();
        Packed {
            metadata: ObjectMeta {
                name: meta.name.clone(),
                namespace: meta.namespace.clone(),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                generation: meta.generation,
                ..ObjectMeta::default()
            },
            facts: object.facts(),
            json: object.pack().into_boxed_slice(),
            kind: PhantomData,
        }
    }

    /// The object as it was cached.
    pub fn unpack(&self) -> Result<K, serde_json::Error> {
        K::unpack(&self.json, &self.metadata)
    }

    pub fn facts(&self) -> &K::Facts {
        &self.facts
    }

    /// Whether two versions of an object hold the same content (whatever
    /// their resourceVersions).
    pub fn same_content(&self, other: &Packed<K>) -> bool {
        self.json == other.json
    }

    #[cfg(test)]
    pub fn json_len(&self) -> usize {
        self.json.len()
    }
}

/// A packed workload of any kind, for code that visits them all.
pub trait CachedWorkload {
    /// `None` when the object has no pod spec.
    fn facts(&self) -> Option<&PodFacts>;
    fn to_resource(&self) -> Result<model::Resource, serde_json::Error>;
}

impl<K> CachedWorkload for Packed<K>
where
    K: Packable<Facts = Option<PodFacts>> + PodTemplated,
{
    fn facts(&self) -> Option<&PodFacts> {
        self.facts.as_ref()
    }

    fn to_resource(&self) -> Result<model::Resource, serde_json::Error> {
        self.unpack().map(PodTemplated::into_resource)
    }
}

impl<K: Packable> Resource for Packed<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    resource_type_of!(K);

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::stores::testing::yaml;
    use k8s_openapi::api::apps::v1::Deployment;

    const WEB: &str = "{metadata: {name: web, namespace: a, uid: u1, resourceVersion: '7', generation: 3, labels: {app: web}, annotations: {note: x}}, spec: {selector: {matchLabels: {app: web}}, template: {metadata: {labels: {app: web}}, spec: {serviceAccountName: builder, automountServiceAccountToken: false, containers: [{name: app, image: 'nginx:1.27', securityContext: {privileged: true}}], volumes: [{name: token, projected: {sources: [{serviceAccountToken: {path: token}}]}}]}}}}";

    #[test]
    fn a_packed_workload_unpacks_to_the_same_object() {
        let web: Deployment = yaml(WEB);
        let packed = Packed::new(&web);
        assert_eq!(packed.unpack().unwrap(), web);
        assert_eq!(packed.meta().name.as_deref(), Some("web"));
        assert_eq!(packed.meta().resource_version.as_deref(), Some("7"));
        assert_eq!(packed.meta().generation, Some(3));
        assert!(packed.meta().labels.is_none(), "identity only");
        assert_eq!(
            CachedWorkload::facts(&packed),
            Some(&PodFacts {
                service_account: "builder".into(),
                automount_token: Some(false),
                projected_token: true,
            })
        );
    }

    #[test]
    fn a_packed_workload_is_far_smaller_than_the_typed_one() {
        let web: Deployment = yaml(WEB);
        let packed = Packed::new(&web);
        assert!(packed.json_len() < 1_000, "{} bytes", packed.json_len());
        assert!(packed.json_len() * 2 < std::mem::size_of::<Deployment>());
    }

    #[test]
    fn a_pod_spec_without_an_account_runs_as_default() {
        let spec: PodSpec = yaml("{serviceAccountName: '', containers: [{name: app}]}");
        let facts = PodFacts::of(&spec);
        assert_eq!(facts.service_account, "default");
        assert!(!facts.projected_token);
        assert_eq!(facts.automount_token, None);
    }
}
