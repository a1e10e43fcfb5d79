use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Pod, PodTemplate, ReplicationController, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::DeserializeOwned;

use super::calico_selector::CalicoSelector;
use super::cni_policy::{CalicoPolicy, CalicoSpec, CiliumPolicy, CiliumRule};
use super::kinds::{Decoding, KindTable, WorkloadKind};
use super::{ObjectRef, RetiredObject, retired_api};

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
    /// An OpenShift `DeploymentConfig` (`apps.openshift.io/v1`, or the
    /// legacy core `v1`). Only its `spec.selector` (a label map) and
    /// `spec.template` matter to the checks, and those have the shape of a
    /// ReplicationController's, so it is read as one.
    DeploymentConfig(ReplicationController),
    /// An object of another kind written with an `apiVersion` Kubernetes
    /// retired; only its identity is read.
    Retired(RetiredObject),
    /// Read by the credential checks (`palisade scan` only: the operator
    /// does not read ConfigMaps).
    ConfigMap(ConfigMap),
    /// CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy.
    CiliumPolicy(CiliumPolicy),
    /// A ValidatingAdmissionPolicy, audited against the other objects
    /// (`src/vap/`); its expressions are compiled when it is read.
    AdmissionPolicy(ValidatingAdmissionPolicy),
    AdmissionPolicyBinding(ValidatingAdmissionPolicyBinding),
    /// Calico NetworkPolicy or GlobalNetworkPolicy.
    CalicoPolicy(CalicoPolicy),
    /// A workload of a kind the [`KindTable`] decodes generically (Argo
    /// Rollout, Knative Service, KEDA ScaledJob, a user's CRD).
    Custom(CustomWorkload),
}

/// An object of a generically decoded workload kind: its metadata and the
/// pod template found where its table entry says.
#[derive(Clone, Debug)]
pub struct CustomWorkload {
    pub kind: &'static WorkloadKind,
    pub metadata: ObjectMeta,
    /// `None` when the object has no template (e.g. a Rollout that takes
    /// its template from `spec.workloadRef`).
    pub template: Option<PodTemplateSpec>,
    /// The workload named by the kind's reference field, if set:
    /// `(apiVersion, kind, name)`.
    pub workload_ref: Option<(String, String, String)>,
}

/// Why a document that claims a scanned kind could not be decoded. The
/// message names the expected type, never the value found (it may be a
/// secret).
#[derive(Debug, thiserror::Error)]
#[error("{kind} {name}: field `{path}`: {message}")]
pub struct DecodeError {
    pub kind: String,
    pub name: String,
    /// Where in the document decoding failed, e.g. `spec.template.spec.containers[0].ports[0].containerPort`.
    pub path: String,
    /// The same path, one key or index at a time.
    pub segments: Vec<PathSegment>,
    pub message: String,
}

/// One step of a path into a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

/// The API group of an `apiVersion` (empty for the core group).
fn group_of(api_version: &str) -> &str {
    match api_version.rsplit_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

/// Workload API versions before `apps/v1` (`extensions/v1beta1`,
/// `apps/v1beta1`, `apps/v1beta2`) let `spec.selector` out: the API server
/// defaulted it to the pod template's labels (`SetDefaults_Deployment`,
/// `SetDefaults_DaemonSet`, `SetDefaults_ReplicaSet`, `SetDefaults_StatefulSet` in
/// `pkg/apis/extensions/v1beta1/defaults.go` and `pkg/apis/apps/v1beta{1,2}/defaults.go`
/// of Kubernetes v1.15). The same default is applied here, so those objects
/// decode into the `apps/v1` shape and get the same checks.
fn default_old_selector(api_version: &str, value: &mut serde_json::Value) {
    let old = matches!(
        api_version,
        "extensions/v1beta1" | "apps/v1beta1" | "apps/v1beta2"
    );
    let Some(spec) = value.get_mut("spec").and_then(|s| s.as_object_mut()) else {
        return;
    };
    if !old || spec.get("selector").is_some_and(|s| !s.is_null()) {
        return;
    }
    let labels = spec
        .get("template")
        .and_then(|t| t.pointer("/metadata/labels"))
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}));
    spec.insert(
        "selector".into(),
        serde_json::json!({ "matchLabels": labels }),
    );
}

impl CustomWorkload {
    /// No pod template of its own, and a reference to the workload whose
    /// template it runs (an Argo Rollout's `spec.workloadRef`).
    pub fn runs_another_template(&self) -> bool {
        self.template.is_none() && self.workload_ref.is_some()
    }
}

impl Resource {
    /// Whether the inventory holds the object as a workload (a pod
    /// template of its own, or another workload's).
    pub fn is_workload(&self) -> bool {
        matches!(
            self,
            Resource::Pod(_)
                | Resource::PodTemplate(_)
                | Resource::Deployment(_)
                | Resource::ReplicaSet(_)
                | Resource::StatefulSet(_)
                | Resource::DaemonSet(_)
                | Resource::Job(_)
                | Resource::CronJob(_)
                | Resource::ReplicationController(_)
                | Resource::DeploymentConfig(_)
                | Resource::Custom(_)
        )
    }

    /// A workload without a pod template of its own that runs the one of
    /// the workload it names (an Argo Rollout's `spec.workloadRef`).
    pub fn runs_another_template(&self) -> bool {
        matches!(self, Resource::Custom(c) if c.runs_another_template())
    }

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
        Self::decode_with(KindTable::built_in(), api_version, kind, value)
    }

    /// Decodes an object known to be of the table kind `kind`.
    pub fn decode_kind(
        kind: &'static WorkloadKind,
        api_version: &str,
        value: serde_json::Value,
    ) -> Result<Option<Resource>, DecodeError> {
        match kind.decoding {
            Decoding::Generic => custom(kind, value).map(|c| Some(Resource::Custom(c))),
            Decoding::Typed => Self::decode(api_version, kind.kind, value),
        }
    }

    /// [`Resource::decode`] with the workload kinds of `kinds` (the built-in
    /// ones and a policy's).
    pub fn decode_with(
        kinds: &KindTable,
        api_version: &str,
        kind: &str,
        value: serde_json::Value,
    ) -> Result<Option<Resource>, DecodeError> {
        let group = group_of(api_version);
        if let Some(workload) = kinds.find(group, kind)
            && workload.decoding == Decoding::Generic
        {
            return custom(workload, value).map(|c| Some(Resource::Custom(c)));
        }
        let mut value = value;
        default_old_selector(api_version, &mut value);
        // The typed forms insist on their own `apiVersion` and `kind`; the
        // object's are already known (and may be an older version, or
        // another kind of the same shape).
        if let Some(fields) = value.as_object_mut() {
            fields.remove("apiVersion");
            fields.remove("kind");
        }
        let resource = match (group, kind) {
            ("", "Pod") => Resource::Pod(typed(kind, value)?),
            ("", "PodTemplate") => Resource::PodTemplate(typed(kind, value)?),
            ("", "ReplicationController") => Resource::ReplicationController(typed(kind, value)?),
            ("", "Namespace") => Resource::Namespace(typed(kind, value)?),
            ("", "ServiceAccount") => Resource::ServiceAccount(typed(kind, value)?),
            ("" | "apps.openshift.io", "DeploymentConfig") => {
                Resource::DeploymentConfig(typed(kind, value)?)
            }
            ("apps" | "extensions", "Deployment") => Resource::Deployment(typed(kind, value)?),
            ("apps" | "extensions", "ReplicaSet") => Resource::ReplicaSet(typed(kind, value)?),
            ("apps", "StatefulSet") => Resource::StatefulSet(typed(kind, value)?),
            ("apps" | "extensions", "DaemonSet") => Resource::DaemonSet(typed(kind, value)?),
            ("batch", "Job") => Resource::Job(typed(kind, value)?),
            ("batch", "CronJob") => Resource::CronJob(typed(kind, value)?),
            ("networking.k8s.io" | "extensions", "NetworkPolicy") => {
                Resource::NetworkPolicy(typed(kind, value)?)
            }
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
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => {
                let policy = typed(kind, value)?;
                crate::vap::validate(&policy)?;
                Resource::AdmissionPolicy(policy)
            }
            ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
                Resource::AdmissionPolicyBinding(typed(kind, value)?)
            }
            ("cilium.io", "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy") => {
                Resource::CiliumPolicy(cilium_policy(kind, value)?)
            }
            (
                "projectcalico.org" | "crd.projectcalico.org",
                "NetworkPolicy" | "GlobalNetworkPolicy",
            ) => Resource::CalicoPolicy(calico_policy(kind, value)?),
            _ => match retired_api(api_version, kind) {
                Some(api) => {
                    let MetadataOnly { metadata } = typed(kind, value)?;
                    Resource::Retired(RetiredObject { api, metadata })
                }
                None => return Ok(None),
            },
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
            Resource::DeploymentConfig(o) => &o.metadata,
            Resource::Retired(o) => &o.metadata,
            Resource::ConfigMap(o) => &o.metadata,
            Resource::CiliumPolicy(o) => &o.metadata,
            Resource::CalicoPolicy(o) => &o.metadata,
            Resource::Custom(o) => &o.metadata,
            Resource::AdmissionPolicy(o) => &o.metadata,
            Resource::AdmissionPolicyBinding(o) => &o.metadata,
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
            Resource::DeploymentConfig(_) => ("apps.openshift.io/v1", "DeploymentConfig"),
            Resource::Retired(o) => (o.api.api_version, o.api.kind),
            Resource::ConfigMap(_) => ("v1", "ConfigMap"),
            Resource::CiliumPolicy(p) if p.cluster_wide => {
                ("cilium.io/v2", "CiliumClusterwideNetworkPolicy")
            }
            Resource::CiliumPolicy(_) => ("cilium.io/v2", "CiliumNetworkPolicy"),
            Resource::CalicoPolicy(p) if p.global => {
                ("projectcalico.org/v3", "GlobalNetworkPolicy")
            }
            Resource::CalicoPolicy(_) => ("projectcalico.org/v3", "NetworkPolicy"),
            Resource::Custom(o) => (o.kind.api_version, o.kind.kind),
            Resource::AdmissionPolicy(_) => (
                "admissionregistration.k8s.io/v1",
                "ValidatingAdmissionPolicy",
            ),
            Resource::AdmissionPolicyBinding(_) => (
                "admissionregistration.k8s.io/v1",
                "ValidatingAdmissionPolicyBinding",
            ),
        }
    }

    pub fn object_ref(&self) -> ObjectRef {
        let (api_version, kind) = self.type_meta();
        ObjectRef::new(api_version, kind, self.metadata())
    }
}

/// The metadata of an object whose other fields are not read.
#[derive(serde::Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: ObjectMeta,
}

fn typed<T: DeserializeOwned>(kind: &str, value: serde_json::Value) -> Result<T, DecodeError> {
    let name = value
        .pointer("/metadata/name")
        .and_then(|n| n.as_str())
        .unwrap_or("<unnamed>")
        .to_owned();
    serde_path_to_error::deserialize(value).map_err(|err| {
        let segments = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Seq { index } => Some(PathSegment::Index(*index)),
                serde_path_to_error::Segment::Map { key } => Some(PathSegment::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    Some(PathSegment::Key(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        DecodeError {
            kind: kind.to_owned(),
            name,
            path: err.path().to_string(),
            segments,
            message: without_value(&err.into_inner().to_string()),
        }
    })
}

/// Decodes an object of a generic workload kind: its metadata, the pod
/// template at the kind's path (an error names the full path, e.g.
/// `spec.jobTargetRef.template.spec.containers[0].image`) and the
/// workload it references.
fn custom(
    kind: &'static WorkloadKind,
    mut value: serde_json::Value,
) -> Result<CustomWorkload, DecodeError> {
    let mut template = if kind.template.is_empty() {
        // The object is its own template: its metadata and spec.
        let field = |name: &str| value.get(name).cloned().unwrap_or_default();
        Some(serde_json::json!({"metadata": field("metadata"), "spec": field("spec")}))
    } else {
        take_at(&mut value, kind.template)
    };
    if kind.inline_pod_spec
        && let Some(template) = template.as_mut()
    {
        name_unnamed_containers(template);
    }
    let reference = take_at(&mut value, kind.workload_ref);
    let MetadataOnly { metadata } = typed(kind.kind, value)?;
    let name = metadata
        .name
        .clone()
        .unwrap_or_else(|| "<unnamed>".to_owned());
    let template = match template {
        None => None,
        Some(template) => Some(typed::<PodTemplateSpec>(kind.kind, template).map_err(
            |mut e| {
                e.name.clone_from(&name);
                let prefix: Vec<PathSegment> = kind
                    .template
                    .iter()
                    .map(|f| PathSegment::Key((*f).to_owned()))
                    .collect();
                e.path = match (e.path.as_str(), kind.template_path().as_str()) {
                    ("." | "", root) => root.to_owned(),
                    (path, "") => path.to_owned(),
                    (path, root) => format!("{root}.{path}"),
                };
                e.segments = prefix.into_iter().chain(e.segments).collect();
                e
            },
        )?),
    };
    let field = |r: &serde_json::Value, f: &str| r.get(f)?.as_str().map(str::to_owned);
    let workload_ref = reference.and_then(|r| {
        Some((
            field(&r, "apiVersion")?,
            field(&r, "kind")?,
            field(&r, "name")?,
        ))
    });
    Ok(CustomWorkload {
        kind,
        metadata,
        template,
        workload_ref,
    })
}

/// Knative lets its one serving container go unnamed and names it
/// `user-container` (`DefaultUserContainerName` in knative.dev/serving);
/// a pod spec needs a name, so it gets that one.
fn name_unnamed_containers(template: &mut serde_json::Value) {
    let Some(containers) = template
        .pointer_mut("/spec/containers")
        .and_then(|c| c.as_array_mut())
    else {
        return;
    };
    for container in containers.iter_mut().filter_map(|c| c.as_object_mut()) {
        container
            .entry("name")
            .or_insert_with(|| serde_json::Value::from("user-container"));
    }
}

/// Takes the value at `path` out of `value` (`None` when absent, null, or
/// the path is empty).
fn take_at(value: &mut serde_json::Value, path: &[&str]) -> Option<serde_json::Value> {
    let (last, parents) = path.split_last()?;
    let mut at = value;
    for field in parents {
        at = at.get_mut(*field)?;
    }
    let taken = at.as_object_mut()?.remove(*last)?;
    (!taken.is_null()).then_some(taken)
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
                    segments: vec![
                        PathSegment::Key("spec".to_owned()),
                        PathSegment::Key(field.to_owned()),
                    ],
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

/// A serde message without the value it quotes: `invalid type: string
/// "hunter2", expected i32` becomes `invalid type: string, expected i32`.
/// The value may be a password in an env var; the type is what helps.
fn without_value(message: &str) -> String {
    for prefix in ["invalid type: ", "invalid value: "] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        let Some(expected) = rest.rfind(", expected ") else {
            continue;
        };
        let unexpected = &rest[..expected];
        // `string "…"`, `integer `5``, `boolean `true``, `map`, `sequence`…
        let kind = unexpected
            .split_once([' ', '`', '"'])
            .map_or(unexpected, |(kind, _)| kind);
        let kind = match kind {
            "floating" => "floating point number",
            "unit" => "null",
            other => other,
        };
        return format!("{prefix}{kind}{}", &rest[expected..]);
    }
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some(i) = rest.find(", expected")
    {
        return format!("unknown variant{}", &rest[i..]);
    }
    message.to_owned()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn decode_errors_never_quote_the_value() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "env": [{"name": "PASSWORD", "value": 12345}]},
        ]}});
        let err = Resource::decode("v1", "Pod", pod).unwrap_err();
        assert_eq!(err.path, "spec.containers[0].env[0].value");
        assert_eq!(err.message, "invalid type: integer, expected a string");
        assert!(!err.to_string().contains("12345"), "{err}");
        let replicas =
            json!({"metadata": {"name": "d"}, "spec": {"replicas": "s3cret", "selector": {}}});
        let err = Resource::decode("apps/v1", "Deployment", replicas).unwrap_err();
        assert!(!err.to_string().contains("s3cret"), "{err}");
        assert_eq!(
            err.segments,
            [
                PathSegment::Key("spec".into()),
                PathSegment::Key("replicas".into())
            ]
        );
    }

    #[test]
    fn old_workload_versions_get_their_default_selector() {
        let deployment = json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"template": {
            "metadata": {"labels": {"app": "d"}},
            "spec": {"containers": [{"name": "a"}]},
        }}});
        let Ok(Some(Resource::Deployment(d))) =
            Resource::decode("extensions/v1beta1", "Deployment", deployment.clone())
        else {
            panic!("decodes");
        };
        let labels = d.spec.unwrap().selector.match_labels.unwrap();
        assert_eq!(labels["app"], "d");
        let Ok(Some(Resource::Deployment(d))) =
            Resource::decode("apps/v1", "Deployment", deployment)
        else {
            panic!("decodes");
        };
        assert_eq!(
            d.spec.unwrap().selector.match_labels,
            None,
            "no default in apps/v1"
        );
    }

    #[test]
    fn other_kinds_are_kept_only_with_a_retired_api_version() {
        let ingress = json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {}});
        let Ok(Some(Resource::Retired(retired))) =
            Resource::decode("extensions/v1beta1", "Ingress", ingress.clone())
        else {
            panic!("kept");
        };
        assert_eq!(retired.api.removed.to_string(), "1.22");
        let reference = Resource::Retired(retired).object_ref();
        assert_eq!(
            (
                reference.api_version.as_str(),
                reference.kind.as_str(),
                reference.name.as_str()
            ),
            ("extensions/v1beta1", "Ingress", "web")
        );
        assert!(matches!(
            Resource::decode("networking.k8s.io/v1", "Ingress", ingress),
            Ok(None)
        ));
    }

    #[test]
    fn deployment_configs_are_workloads() {
        let dc = json!({"metadata": {"name": "dc"}, "spec": {
            "selector": {"app": "dc"},
            "strategy": {"type": "Rolling"},
            "triggers": [{"type": "ConfigChange"}],
            "template": {"spec": {"containers": [{"name": "a"}]}},
        }});
        for api_version in ["apps.openshift.io/v1", "v1"] {
            let resource = Resource::decode(api_version, "DeploymentConfig", dc.clone())
                .expect("decodes")
                .expect("scanned");
            assert_eq!(resource.object_ref().kind, "DeploymentConfig");
        }
        assert!(matches!(
            Resource::decode("apps/v1", "DeploymentConfig", dc),
            Ok(None)
        ));
    }

    fn workload_of(
        api_version: &str,
        kind: &str,
        value: serde_json::Value,
    ) -> crate::model::Workload {
        let resource = Resource::decode(api_version, kind, value)
            .expect("decodes")
            .expect("a workload kind");
        crate::model::Workload::from_owned(resource).expect("has a pod template")
    }

    #[test]
    fn table_kinds_are_read_where_their_template_lives() {
        let container = serde_json::json!({"name": "app", "image": "nginx"});
        let rollout = workload_of(
            "argoproj.io/v1alpha1",
            "Rollout",
            serde_json::json!({"metadata": {"name": "web", "namespace": "a"},
                "spec": {"strategy": {"canary": {}}, "template": {"spec": {"containers": [container]}}}}),
        );
        assert_eq!(rollout.object.kind, "Rollout");
        assert_eq!(rollout.object.api_version, "argoproj.io/v1alpha1");
        assert_eq!(
            rollout.containers[0].path.to_string(),
            "spec.template.spec.containers[name=app]"
        );

        let scaled_job = workload_of(
            "keda.sh/v1alpha1",
            "ScaledJob",
            serde_json::json!({"metadata": {"name": "q"},
                "spec": {"jobTargetRef": {"template": {"spec": {"containers": [container]}}}}}),
        );
        assert_eq!(
            scaled_job.containers[0].path.to_string(),
            "spec.jobTargetRef.template.spec.containers[name=app]"
        );

        // Knative's revision spec: pod-spec fields next to its own.
        let knative = workload_of(
            "serving.knative.dev/v1",
            "Service",
            serde_json::json!({"metadata": {"name": "hello"},
                "spec": {"template": {"spec": {"containerConcurrency": 10, "timeoutSeconds": 30,
                    "serviceAccountName": "runner", "containers": [container]}}}}),
        );
        assert_eq!(knative.spec.service_account_name.as_deref(), Some("runner"));
        assert_eq!(knative.containers.len(), 1);
        // Its one container may go unnamed.
        let unnamed = workload_of(
            "serving.knative.dev/v1",
            "Configuration",
            serde_json::json!({"metadata": {"name": "hello"},
                "spec": {"template": {"spec": {"containers": [{"image": "nginx"}]}}}}),
        );
        assert_eq!(unnamed.containers[0].name(), "user-container");
        // A Revision is its own template.
        let revision = workload_of(
            "serving.knative.dev/v1",
            "Revision",
            serde_json::json!({"metadata": {"name": "hello-00001", "labels": {"app": "hello"}},
                "spec": {"containerConcurrency": 0, "containers": [{"image": "nginx"}]}}),
        );
        assert_eq!(
            revision.containers[0].path.to_string(),
            "spec.containers[name=user-container]"
        );
        assert_eq!(
            revision.template_metadata.name.as_deref(),
            Some("hello-00001")
        );
        // The core Service is not a workload.
        assert!(matches!(
            Resource::decode(
                "v1",
                "Service",
                serde_json::json!({"metadata": {"name": "hello"}})
            ),
            Ok(None)
        ));
    }

    #[test]
    fn a_bad_template_field_is_named_with_its_full_path() {
        let err = Resource::decode(
            "keda.sh/v1alpha1",
            "ScaledJob",
            serde_json::json!({"metadata": {"name": "q"},
                "spec": {"jobTargetRef": {"template": {"spec": {"containers": [{"name": "a", "image": 7}]}}}}}),
        )
        .unwrap_err();
        assert_eq!(
            err.path,
            "spec.jobTargetRef.template.spec.containers[0].image"
        );
        assert_eq!(err.name, "q");
        assert_eq!(err.segments[0], PathSegment::Key("spec".into()));
        assert_eq!(err.segments.len(), 7, "{:?}", err.segments);
    }

    #[test]
    fn a_rollout_may_name_the_deployment_it_takes_its_template_from() {
        let resource = Resource::decode(
            "argoproj.io/v1alpha1",
            "Rollout",
            serde_json::json!({"metadata": {"name": "web"},
                "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web-base"}}}),
        )
        .unwrap()
        .unwrap();
        let Resource::Custom(rollout) = &resource else {
            panic!("a Rollout is a table kind: {resource:?}")
        };
        assert!(rollout.template.is_none());
        assert_eq!(
            rollout.workload_ref,
            Some(("apps/v1".into(), "Deployment".into(), "web-base".into()))
        );
        assert!(crate::model::Workload::from_owned(resource).is_none());
    }

    #[test]
    fn user_kinds_decode_with_their_table() {
        let versions = ["v1".to_owned()];
        let table = KindTable::with_user_kinds([crate::model::kinds::UserKind {
            group: "example.com",
            versions: &versions,
            kind: "Widget",
            plural: "widgets",
            pod_template: "spec.runner",
            inline_pod_spec: false,
            cached: true,
        }])
        .unwrap();
        let value = serde_json::json!({"metadata": {"name": "w"},
            "spec": {"runner": {"spec": {"containers": [{"name": "c"}]}}}});
        assert!(matches!(
            Resource::decode("example.com/v1", "Widget", value.clone()),
            Ok(None)
        ));
        let resource = Resource::decode_with(&table, "example.com/v1", "Widget", value)
            .unwrap()
            .unwrap();
        let workload = crate::model::Workload::from_owned(resource).unwrap();
        assert_eq!(
            workload.containers[0].path.to_string(),
            "spec.runner.spec.containers[name=c]"
        );
    }
}
