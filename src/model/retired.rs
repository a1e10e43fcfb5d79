//! API versions that Kubernetes deprecated or stopped serving: one table,
//! read by the loader (which keeps objects of other kinds written with
//! them) and by the `removed-api-version` and `deprecated-api-version`
//! checks.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{KubernetesVersion, ObjectRef};

/// One group/version of one kind that Kubernetes retired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetiredApi {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// The release that deprecated it; `None` for alpha versions that were
    /// never deprecated before their removal.
    pub deprecated: Option<KubernetesVersion>,
    /// The first release that no longer serves it.
    pub removed: KubernetesVersion,
    /// The `apiVersion` to use instead.
    pub replacement: &'static str,
}

const fn retired(
    api_version: &'static str,
    kind: &'static str,
    deprecated: Option<(u32, u32)>,
    removed: (u32, u32),
    replacement: &'static str,
) -> RetiredApi {
    RetiredApi {
        api_version,
        kind,
        deprecated: match deprecated {
            Some((major, minor)) => Some(KubernetesVersion::new(major, minor)),
            None => None,
        },
        removed: KubernetesVersion::new(removed.0, removed.1),
        replacement,
    }
}

/// Every retired version of a kind that manifests hold, sorted by
/// `apiVersion` and kind. The releases are the `APILifecycleDeprecated` and
/// `APILifecycleRemoved` values (and the replacements mostly their
/// `APILifecycleReplacement`) generated from the
/// `+k8s:prerelease-lifecycle-gen` markers into
/// `<group>/<version>/zz_generated.prerelease-lifecycle.go` of `k8s.io/api`
/// v0.35.4, of `k8s.io/apiextensions-apiserver` (CustomResourceDefinition)
/// and of `k8s.io/kube-aggregator` (APIService); the deprecation guide
/// (<https://kubernetes.io/docs/reference/using-api/deprecation-guide/>)
/// summarises them. Versions deleted from `k8s.io/api` before it had those
/// markers cite the guide or their release notes: `batch/v2alpha1`
/// (CHANGELOG-1.21, kubernetes#96987; an alpha version, never deprecated
/// first), `rbac.authorization.k8s.io/v1alpha1` (deprecated with `v1beta1`
/// in CHANGELOG-1.17, removed in 1.22), and PodSecurityPolicy (the guide's
/// v1.16 and v1.25 sections). Review objects (`TokenReview`, …), `Scale`,
/// `Eviction` and other kinds that are never stored are left out. A removal
/// after the newest release is the one announced by the markers.
/// `tests/e2e_api_versions.rs` checks every removal up to the test cluster's
/// release, and its replacement, against the API server's discovery.
pub static RETIRED_APIS: &[RetiredApi] = &[
    retired(
        "admissionregistration.k8s.io/v1alpha1",
        "MutatingAdmissionPolicy",
        Some((1, 35)),
        (1, 38),
        "admissionregistration.k8s.io/v1beta1",
    ),
    retired(
        "admissionregistration.k8s.io/v1alpha1",
        "MutatingAdmissionPolicyBinding",
        Some((1, 35)),
        (1, 38),
        "admissionregistration.k8s.io/v1beta1",
    ),
    retired(
        "admissionregistration.k8s.io/v1alpha1",
        "ValidatingAdmissionPolicy",
        Some((1, 29)),
        (1, 32),
        "admissionregistration.k8s.io/v1",
    ),
    retired(
        "admissionregistration.k8s.io/v1alpha1",
        "ValidatingAdmissionPolicyBinding",
        Some((1, 29)),
        (1, 32),
        "admissionregistration.k8s.io/v1",
    ),
    retired(
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration",
        Some((1, 16)),
        (1, 22),
        "admissionregistration.k8s.io/v1",
    ),
    retired(
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingAdmissionPolicy",
        Some((1, 31)),
        (1, 34),
        "admissionregistration.k8s.io/v1",
    ),
    retired(
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingAdmissionPolicyBinding",
        Some((1, 31)),
        (1, 34),
        "admissionregistration.k8s.io/v1",
    ),
    retired(
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingWebhookConfiguration",
        Some((1, 16)),
        (1, 22),
        "admissionregistration.k8s.io/v1",
    ),
    retired(
        "apiextensions.k8s.io/v1beta1",
        "CustomResourceDefinition",
        Some((1, 16)),
        (1, 22),
        "apiextensions.k8s.io/v1",
    ),
    retired(
        "apiregistration.k8s.io/v1beta1",
        "APIService",
        Some((1, 19)),
        (1, 22),
        "apiregistration.k8s.io/v1",
    ),
    retired(
        "apps/v1beta1",
        "ControllerRevision",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta1",
        "Deployment",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta1",
        "StatefulSet",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta2",
        "ControllerRevision",
        Some((1, 9)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta2",
        "DaemonSet",
        Some((1, 9)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta2",
        "Deployment",
        Some((1, 9)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta2",
        "ReplicaSet",
        Some((1, 9)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta2",
        "StatefulSet",
        Some((1, 9)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "autoscaling/v2beta1",
        "HorizontalPodAutoscaler",
        Some((1, 22)),
        (1, 25),
        "autoscaling/v2",
    ),
    retired(
        "autoscaling/v2beta2",
        "HorizontalPodAutoscaler",
        Some((1, 23)),
        (1, 26),
        "autoscaling/v2",
    ),
    retired(
        "batch/v1beta1",
        "CronJob",
        Some((1, 21)),
        (1, 25),
        "batch/v1",
    ),
    retired("batch/v2alpha1", "CronJob", None, (1, 21), "batch/v1"),
    retired(
        "certificates.k8s.io/v1alpha1",
        "ClusterTrustBundle",
        Some((1, 34)),
        (1, 37),
        "certificates.k8s.io/v1beta1",
    ),
    retired(
        "certificates.k8s.io/v1beta1",
        "CertificateSigningRequest",
        Some((1, 19)),
        (1, 22),
        "certificates.k8s.io/v1",
    ),
    retired(
        "coordination.k8s.io/v1alpha2",
        "LeaseCandidate",
        Some((1, 35)),
        (1, 38),
        "coordination.k8s.io/v1beta1",
    ),
    retired(
        "coordination.k8s.io/v1beta1",
        "Lease",
        Some((1, 19)),
        (1, 22),
        "coordination.k8s.io/v1",
    ),
    retired(
        "discovery.k8s.io/v1beta1",
        "EndpointSlice",
        Some((1, 21)),
        (1, 25),
        "discovery.k8s.io/v1",
    ),
    retired(
        "events.k8s.io/v1beta1",
        "Event",
        Some((1, 22)),
        (1, 25),
        "events.k8s.io/v1",
    ),
    retired(
        "extensions/v1beta1",
        "DaemonSet",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "extensions/v1beta1",
        "Deployment",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "extensions/v1beta1",
        "Ingress",
        Some((1, 14)),
        (1, 22),
        "networking.k8s.io/v1",
    ),
    retired(
        "extensions/v1beta1",
        "NetworkPolicy",
        Some((1, 9)),
        (1, 16),
        "networking.k8s.io/v1",
    ),
    retired(
        "extensions/v1beta1",
        "PodSecurityPolicy",
        None,
        (1, 16),
        "policy/v1beta1 (itself removed in 1.25: use Pod Security Admission)",
    ),
    retired(
        "extensions/v1beta1",
        "ReplicaSet",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "FlowSchema",
        Some((1, 23)),
        (1, 26),
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    retired(
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "PriorityLevelConfiguration",
        Some((1, 23)),
        (1, 26),
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    retired(
        "flowcontrol.apiserver.k8s.io/v1beta2",
        "FlowSchema",
        Some((1, 26)),
        (1, 29),
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    retired(
        "flowcontrol.apiserver.k8s.io/v1beta2",
        "PriorityLevelConfiguration",
        Some((1, 26)),
        (1, 29),
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    retired(
        "flowcontrol.apiserver.k8s.io/v1beta3",
        "FlowSchema",
        Some((1, 29)),
        (1, 32),
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    retired(
        "flowcontrol.apiserver.k8s.io/v1beta3",
        "PriorityLevelConfiguration",
        Some((1, 29)),
        (1, 32),
        "flowcontrol.apiserver.k8s.io/v1",
    ),
    retired(
        "networking.k8s.io/v1beta1",
        "IPAddress",
        Some((1, 34)),
        (1, 37),
        "networking.k8s.io/v1",
    ),
    retired(
        "networking.k8s.io/v1beta1",
        "Ingress",
        Some((1, 19)),
        (1, 22),
        "networking.k8s.io/v1",
    ),
    retired(
        "networking.k8s.io/v1beta1",
        "IngressClass",
        Some((1, 19)),
        (1, 22),
        "networking.k8s.io/v1",
    ),
    retired(
        "networking.k8s.io/v1beta1",
        "ServiceCIDR",
        Some((1, 34)),
        (1, 37),
        "networking.k8s.io/v1",
    ),
    retired(
        "node.k8s.io/v1beta1",
        "RuntimeClass",
        Some((1, 22)),
        (1, 25),
        "node.k8s.io/v1",
    ),
    retired(
        "policy/v1beta1",
        "PodDisruptionBudget",
        Some((1, 21)),
        (1, 25),
        "policy/v1",
    ),
    retired(
        "policy/v1beta1",
        "PodSecurityPolicy",
        Some((1, 21)),
        (1, 25),
        "no replacement: Pod Security Admission (namespace labels)",
    ),
    retired(
        "rbac.authorization.k8s.io/v1alpha1",
        "ClusterRole",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1alpha1",
        "ClusterRoleBinding",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1alpha1",
        "Role",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1alpha1",
        "RoleBinding",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1beta1",
        "ClusterRole",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1beta1",
        "ClusterRoleBinding",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1beta1",
        "Role",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1beta1",
        "RoleBinding",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "resource.k8s.io/v1beta1",
        "DeviceClass",
        Some((1, 35)),
        (1, 38),
        "resource.k8s.io/v1",
    ),
    retired(
        "resource.k8s.io/v1beta1",
        "ResourceClaim",
        Some((1, 35)),
        (1, 38),
        "resource.k8s.io/v1",
    ),
    retired(
        "resource.k8s.io/v1beta1",
        "ResourceClaimTemplate",
        Some((1, 35)),
        (1, 38),
        "resource.k8s.io/v1",
    ),
    retired(
        "resource.k8s.io/v1beta1",
        "ResourceSlice",
        Some((1, 35)),
        (1, 38),
        "resource.k8s.io/v1",
    ),
    retired(
        "scheduling.k8s.io/v1beta1",
        "PriorityClass",
        Some((1, 14)),
        (1, 22),
        "scheduling.k8s.io/v1",
    ),
    retired(
        "storage.k8s.io/v1alpha1",
        "CSIStorageCapacity",
        Some((1, 21)),
        (1, 24),
        "storage.k8s.io/v1",
    ),
    retired(
        "storage.k8s.io/v1alpha1",
        "VolumeAttachment",
        Some((1, 21)),
        (1, 24),
        "storage.k8s.io/v1",
    ),
    retired(
        "storage.k8s.io/v1alpha1",
        "VolumeAttributesClass",
        Some((1, 32)),
        (1, 35),
        "storage.k8s.io/v1",
    ),
    retired(
        "storage.k8s.io/v1beta1",
        "CSIDriver",
        Some((1, 19)),
        (1, 22),
        "storage.k8s.io/v1",
    ),
    retired(
        "storage.k8s.io/v1beta1",
        "CSINode",
        Some((1, 17)),
        (1, 22),
        "storage.k8s.io/v1",
    ),
    retired(
        "storage.k8s.io/v1beta1",
        "CSIStorageCapacity",
        Some((1, 24)),
        (1, 27),
        "storage.k8s.io/v1",
    ),
    retired(
        "storage.k8s.io/v1beta1",
        "StorageClass",
        Some((1, 19)),
        (1, 22),
        "storage.k8s.io/v1",
    ),
    retired(
        "storage.k8s.io/v1beta1",
        "VolumeAttachment",
        Some((1, 19)),
        (1, 22),
        "storage.k8s.io/v1",
    ),
    retired(
        "storage.k8s.io/v1beta1",
        "VolumeAttributesClass",
        Some((1, 34)),
        (1, 37),
        "storage.k8s.io/v1",
    ),
];

/// The entry of a written `apiVersion` and kind, if Kubernetes retired it.
pub fn retired_api(api_version: &str, kind: &str) -> Option<&'static RetiredApi> {
    RETIRED_APIS
        .iter()
        .find(|r| r.api_version == api_version && r.kind == kind)
}

/// An object of a kind Palisade does not otherwise scan (an Ingress, a
/// PodSecurityPolicy, …) written with a retired `apiVersion`: kept only so
/// that the API version checks can report it.
#[derive(Clone, Debug)]
pub struct RetiredObject {
    pub api: &'static RetiredApi,
    pub metadata: ObjectMeta,
}

impl RetiredObject {
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(self.api.api_version, self.api.kind, &self.metadata)
    }
}
