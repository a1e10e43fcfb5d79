use serde::Serialize;

use super::{Severity, Subject, Violations};
use crate::engine::Context;

/// What area of security a check belongs to; one source file per category.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// Pod Security Standards, baseline profile.
    PodSecurityBaseline,
    /// Pod Security Standards, restricted profile.
    PodSecurityRestricted,
    /// Container hardening beyond the Pod Security Standards.
    Hardening,
    /// Resource requests and limits, probes.
    Reliability,
    /// Image references and pull policy.
    Images,
    /// Secrets and credentials in pod specs.
    Secrets,
    /// Service accounts and their tokens.
    ServiceAccounts,
    /// Network isolation and namespace configuration.
    Namespaces,
    /// RBAC: roles, bindings and effective permissions.
    Rbac,
    /// API versions the target Kubernetes release deprecated or removed.
    ApiVersions,
    /// A ScanPolicy's custom CEL checks, and the cluster's own admission
    /// policies.
    Custom,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::PodSecurityBaseline => "pod-security-baseline",
            Category::PodSecurityRestricted => "pod-security-restricted",
            Category::Hardening => "hardening",
            Category::Reliability => "reliability",
            Category::Images => "images",
            Category::Secrets => "secrets",
            Category::ServiceAccounts => "service-accounts",
            Category::Namespaces => "namespaces",
            Category::Rbac => "rbac",
            Category::ApiVersions => "api-versions",
            Category::Custom => "custom",
        }
    }
}

/// Another scanner whose check ids Palisade maps to its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    Trivy,
    Kubescape,
    Polaris,
    Checkov,
    KubeScore,
    KubeLinter,
}

impl Tool {
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Trivy => "trivy",
            Tool::Kubescape => "kubescape",
            Tool::Polaris => "polaris",
            Tool::Checkov => "checkov",
            Tool::KubeScore => "kube-score",
            Tool::KubeLinter => "kube-linter",
        }
    }
}

/// The same check's id in another tool, so users migrating can map exceptions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alias {
    pub tool: Tool,
    pub id: &'static str,
}

/// Shorthand for [`Alias`] in check definitions.
pub const fn alias(tool: Tool, id: &'static str) -> Alias {
    Alias { tool, id }
}

/// Which objects a check looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applies {
    /// Pod templates of every workload kind.
    Workload,
    /// Namespace objects.
    Namespace,
    /// ServiceAccounts.
    ServiceAccount,
    /// Roles and ClusterRoles.
    Role,
    /// RoleBindings and ClusterRoleBindings.
    Binding,
    /// Objects of kinds no other check reads, written with a retired
    /// `apiVersion` (an `extensions/v1beta1` Ingress).
    Other,
    /// Every object, whatever its kind (checks of how an object is written,
    /// such as its `apiVersion`).
    Any,
    /// ConfigMaps (in `palisade scan`; the operator does not read them).
    ConfigMap,
}

impl Applies {
    /// Whether a check for `self` runs on a subject of kind `subject`.
    pub fn covers(self, subject: Applies) -> bool {
        self == Applies::Any || self == subject
    }
}

/// What a check reads besides its subject, which decides when it can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Only the subject itself: the check runs as soon as the object is
    /// read, before the rest of the input is known.
    Object,
    /// Other objects too (network policies of the namespace, RBAC bindings,
    /// the service account): the check runs once every object is read.
    Inventory,
}

/// One security check: its stable identity and documentation, and the pure
/// function that evaluates it.
pub struct Check {
    /// Stable kebab-case id, used in exceptions, annotations and reports.
    pub id: &'static str,
    pub title: &'static str,
    pub category: Category,
    pub severity: Severity,
    pub applies: Applies,
    /// Whether the check reads other objects than its subject.
    pub scope: Scope,
    /// What the check looks for and why it matters.
    pub description: &'static str,
    /// How to fix a failing object.
    pub remediation: &'static str,
    /// Framework references: `pss:baseline`, `pss:restricted`, `nsa-cisa`,
    /// `cis-k8s:5.2.2`, `mitre:T1611`, …
    pub frameworks: &'static [&'static str],
    pub aliases: &'static [Alias],
    /// Adds a violation to `out` for each problem found in `subject`.
    pub run: fn(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations),
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}
