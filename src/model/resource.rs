use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Pod, PodTemplate, ReplicationController, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;

use super::ObjectRef;
use super::calico_selector::CalicoSelector;
use super::cni_policy::{CalicoPolicy, CalicoSpec, CiliumPolicy, CiliumRule};

/// Every kind Palisade reads, decoded into its typed form.
// Values are short-lived (decoded, then turned into the inventory), so the
// size difference between variants costs nothing worth boxing for.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Resource {
    Pod(Pod),
    PodTemplate(PodTemplate),
    Deployment(Deployment),
    ReplicaSet(ReplicaSet),
    StatefulSet(StatefulSet),
    DaemonSet(DaemonSet),
    Job(Job),
    CronJob(CronJob),
    ReplicationController(ReplicationController),
    Namespace(Namespace),
    NetworkPolicy(NetworkPolicy),
    ServiceAccount(ServiceAccount),
    Role(Role),
    ClusterRole(ClusterRole),
    RoleBinding(RoleBinding),
    ClusterRoleBinding(ClusterRoleBinding),
    /// Read by the credential checks (`palisade scan` only: the operator
    /// does not read ConfigMaps).
    ConfigMap(ConfigMap),
    /// CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy.
    CiliumPolicy(CiliumPolicy),
    /// Calico NetworkPolicy or GlobalNetworkPolicy.
    CalicoPolicy(CalicoPolicy),
}

/// Why a document that claims a scanned kind could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("{kind} {name}: field `{path}`: {message}")]
pub struct DecodeError {
    pub kind: String,
    pub name: String,
    /// Where in the document decoding failed, e.g. `spec.template.spec.containers[0].ports[0].containerPort`.
    pub path: String,
    pub message: String,
}

/// The API groups (`apiVersion` without the version) that each kind may carry.
/// Old beta groups are accepted because their pod templates are the same shape.
fn group_of(api_version: &str) -> &str {
    match api_version.rsplit_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

impl Resource {
    /// Decodes a document given its `apiVersion` and `kind`.
    ///
    /// Returns `Ok(None)` for kinds Palisade does not scan (they are counted,
    /// not errors) and an error naming the field for a scanned kind whose
    /// content has the wrong shape.
    pub fn decode(
        api_version: &str,
        kind: &str,
        value: serde_json::Value,
    ) -> Result<Option<Resource>, DecodeError> {
        let group = group_of(api_version);
        let resource = match (group, kind) {
            ("", "Pod") => Resource::Pod(typed(kind, value)?),
            ("", "PodTemplate") => Resource::PodTemplate(typed(kind, value)?),
            ("", "ReplicationController") => Resource::ReplicationController(typed(kind, value)?),
            ("", "Namespace") => Resource::Namespace(typed(kind, value)?),
            ("", "ServiceAccount") => Resource::ServiceAccount(typed(kind, value)?),
            ("apps" | "extensions" | "apps.openshift.io", "Deployment") => {
                Resource::Deployment(typed(kind, value)?)
            }
            ("apps" | "extensions", "ReplicaSet") => Resource::ReplicaSet(typed(kind, value)?),
            ("apps", "StatefulSet") => Resource::StatefulSet(typed(kind, value)?),
            ("apps" | "extensions", "DaemonSet") => Resource::DaemonSet(typed(kind, value)?),
            ("batch", "Job") => Resource::Job(typed(kind, value)?),
            ("batch", "CronJob") => Resource::CronJob(typed(kind, value)?),
            ("networking.k8s.io", "NetworkPolicy") => Resource::NetworkPolicy(typed(kind, value)?),
            ("rbac.authorization.k8s.io", "Role") => Resource::Role(typed(kind, value)?),
            ("rbac.authorization.k8s.io", "ClusterRole") => {
                Resource::ClusterRole(typed(kind, value)?)
            }
            ("rbac.authorization.k8s.io", "RoleBinding") => {
                Resource::RoleBinding(typed(kind, value)?)
            }
            ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
                Resource::ClusterRoleBinding(typed(kind, value)?)
            }
            ("", "ConfigMap") => Resource::ConfigMap(typed(kind, value)?),
            ("cilium.io", "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy") => {
                Resource::CiliumPolicy(cilium_policy(kind, value)?)
            }
            (
                "projectcalico.org" | "crd.projectcalico.org",
                "NetworkPolicy" | "GlobalNetworkPolicy",
            ) => Resource::CalicoPolicy(calico_policy(kind, value)?),
            _ => return Ok(None),
        };
        Ok(Some(resource))
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Resource::Pod(o) => &o.metadata,
            Resource::PodTemplate(o) => &o.metadata,
            Resource::Deployment(o) => &o.metadata,
            Resource::ReplicaSet(o) => &o.metadata,
            Resource::StatefulSet(o) => &o.metadata,
            Resource::DaemonSet(o) => &o.metadata,
            Resource::Job(o) => &o.metadata,
            Resource::CronJob(o) => &o.metadata,
            Resource::ReplicationController(o) => &o.metadata,
            Resource::Namespace(o) => &o.metadata,
            Resource::NetworkPolicy(o) => &o.metadata,
            Resource::ServiceAccount(o) => &o.metadata,
            Resource::Role(o) => &o.metadata,
            Resource::ClusterRole(o) => &o.metadata,
            Resource::RoleBinding(o) => &o.metadata,
            Resource::ClusterRoleBinding(o) => &o.metadata,
            Resource::ConfigMap(o) => &o.metadata,
            Resource::CiliumPolicy(o) => &o.metadata,
            Resource::CalicoPolicy(o) => &o.metadata,
        }
    }

    /// `(apiVersion, kind)` as Palisade reports it (the current group version).
    pub fn type_meta(&self) -> (&'static str, &'static str) {
        match self {
            Resource::Pod(_) => ("v1", "Pod"),
            Resource::PodTemplate(_) => ("v1", "PodTemplate"),
            Resource::Deployment(_) => ("apps/v1", "Deployment"),
            Resource::ReplicaSet(_) => ("apps/v1", "ReplicaSet"),
            Resource::StatefulSet(_) => ("apps/v1", "StatefulSet"),
            Resource::DaemonSet(_) => ("apps/v1", "DaemonSet"),
            Resource::Job(_) => ("batch/v1", "Job"),
            Resource::CronJob(_) => ("batch/v1", "CronJob"),
            Resource::ReplicationController(_) => ("v1", "ReplicationController"),
            Resource::Namespace(_) => ("v1", "Namespace"),
            Resource::NetworkPolicy(_) => ("networking.k8s.io/v1", "NetworkPolicy"),
            Resource::ServiceAccount(_) => ("v1", "ServiceAccount"),
            Resource::Role(_) => ("rbac.authorization.k8s.io/v1", "Role"),
            Resource::ClusterRole(_) => ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            Resource::RoleBinding(_) => ("rbac.authorization.k8s.io/v1", "RoleBinding"),
            Resource::ClusterRoleBinding(_) => {
                ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding")
            }
            Resource::ConfigMap(_) => ("v1", "ConfigMap"),
            Resource::CiliumPolicy(p) if p.cluster_wide => {
                ("cilium.io/v2", "CiliumClusterwideNetworkPolicy")
            }
            Resource::CiliumPolicy(_) => ("cilium.io/v2", "CiliumNetworkPolicy"),
            Resource::CalicoPolicy(p) if p.global => {
                ("projectcalico.org/v3", "GlobalNetworkPolicy")
            }
            Resource::CalicoPolicy(_) => ("projectcalico.org/v3", "NetworkPolicy"),
        }
    }

    pub fn object_ref(&self) -> ObjectRef {
        let (api_version, kind) = self.type_meta();
        ObjectRef::new(api_version, kind, self.metadata())
    }
}

fn typed<T: DeserializeOwned>(kind: &str, value: serde_json::Value) -> Result<T, DecodeError> {
    let name = value
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or("<unnamed>")
        .to_owned();
    serde_path_to_error::deserialize(value).map_err(|err| DecodeError {
        kind: kind.to_owned(),
        name,
        path: err.path().to_string(),
        message: err.into_inner().to_string(),
    })
}

/// The parts of a Cilium policy document Palisade reads.
#[derive(serde::Deserialize)]
struct CiliumDocument {
    #[serde(default)]
    metadata: ObjectMeta,
    spec: Option<CiliumRule>,
    #[serde(default)]
    specs: Vec<CiliumRule>,
}

fn cilium_policy(kind: &str, value: serde_json::Value) -> Result<CiliumPolicy, DecodeError> {
    let document: CiliumDocument = typed(kind, value)?;
    Ok(CiliumPolicy {
        metadata: document.metadata,
        cluster_wide: kind == "CiliumClusterwideNetworkPolicy",
        rules: document.spec.into_iter().chain(document.specs).collect(),
    })
}

/// The parts of a Calico policy document Palisade reads.
#[derive(serde::Deserialize)]
struct CalicoDocument {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: CalicoSpec,
}

fn calico_policy(kind: &str, value: serde_json::Value) -> Result<CalicoPolicy, DecodeError> {
    let document: CalicoDocument = typed(kind, value)?;
    let name = document.metadata.name.clone().unwrap_or_default();
    let spec = &document.spec;
    let parse =
        |field: &str, text: &Option<String>| -> Result<Option<CalicoSelector>, DecodeError> {
            text.as_deref()
                .map(CalicoSelector::parse)
                .transpose()
                .map_err(|error| DecodeError {
                    kind: kind.to_owned(),
                    name: name.clone(),
                    path: format!("spec.{field}"),
                    message: error.to_string(),
                })
        };
    Ok(CalicoPolicy {
        selector: parse("selector", &spec.selector)?.unwrap_or_else(CalicoSelector::all),
        namespace_selector: parse("namespaceSelector", &spec.namespace_selector)?,
        service_account_selector: parse("serviceAccountSelector", &spec.service_account_selector)?,
        directions: spec.directions(),
        host_only: spec.do_not_track == Some(true) || spec.pre_dnat == Some(true),
        global: kind == "GlobalNetworkPolicy",
        metadata: document.metadata,
    })
}
