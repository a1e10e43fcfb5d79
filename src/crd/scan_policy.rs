use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::Severity;

/// Cluster-wide scan configuration: which checks run, at what severity, and
/// which findings are accepted risks. The operator reads the one named
/// `default`; `palisade scan --policy FILE` reads the same document.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "palisade.dev",
    version = "v1alpha1",
    kind = "ScanPolicy",
    plural = "scanpolicies",
    shortname = "spol",
    category = "palisade",
    doc = "Cluster-wide scan configuration: which checks run, at what severity, and which findings are accepted risks.",
    status = "ScanPolicyStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct ScanPolicySpec {
    /// Which checks run. By default every check in the catalog runs.
    #[serde(default, skip_serializing_if = "CheckSelection::is_empty")]
    pub checks: CheckSelection,

    /// Severities to use instead of a check's default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub severity_overrides: Vec<SeverityOverride>,

    /// Accepted risks: matching findings are reported as suppressed, with the
    /// reason, instead of counting against the object. At most 20,000.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20000))]
    pub exceptions: Vec<Exception>,

    /// Namespaces to scan (operator only). By default all.
    #[serde(default, skip_serializing_if = "NamespaceSelection::is_empty")]
    pub namespaces: NamespaceSelection,

    /// How often the operator re-evaluates everything, e.g. `30m`, `6h` or
    /// `1h30m` (at most two parts of up to six digits); from `1m` to `168h`
    /// (7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::rescan_interval")]
    pub rescan_interval: Option<String>,

    /// Which field managers speak for Git (operator only): a finding whose
    /// field another manager set last is marked `drift`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitops: Option<GitOps>,
    /// Workload kinds to scan besides the built-in ones (every core kind,
    /// Argo Rollout, OpenShift DeploymentConfig, Knative Service,
    /// Configuration and Revision, KEDA ScaledJob): CRDs whose objects carry a pod
    /// template. At most 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub workload_kinds: Vec<WorkloadKindSpec>,
    /// Checks written in CEL, the language of ValidatingAdmissionPolicy.
    /// Their findings are ordinary findings: exceptions, severity overrides
    /// and every output apply to them. At most 100.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub custom_checks: Vec<CustomCheck>,
}

/// The field managers of the cluster's GitOps tools.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitOps {
    /// Field managers whose writes come from Git. When unset: Argo CD's
    /// `argocd-controller` and `argocd-application-controller`, Flux's
    /// `kustomize-controller` and `helm-controller`. An empty list turns
    /// drift marking off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 100), inner(length(min = 1, max = 128)))]
    pub managers: Option<Vec<String>>,
}

/// The GitOps field managers assumed when `spec.gitops.managers` is unset.
pub const DEFAULT_GITOPS_MANAGERS: &[&str] = &[
    "argocd-controller",
    "argocd-application-controller",
    "kustomize-controller",
    "helm-controller",
];

/// A workload kind: a CRD whose objects carry a pod template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadKindSpec {
    /// The CRD's API group, e.g. `example.com`.
    #[schemars(length(min = 1, max = 253))]
    pub group: String,
    /// Served versions, the preferred one first, e.g. `[v1, v1beta1]`.
    #[schemars(length(min = 1, max = 10), inner(length(max = 63)))]
    pub versions: Vec<String>,
    /// The kind, e.g. `Widget`.
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
    /// The resource's plural name, e.g. `widgets`.
    #[schemars(length(min = 1, max = 63))]
    pub plural: String,
    /// Dotted path of the pod template (an object with `metadata` and
    /// `spec`), e.g. `spec.template` or `spec.jobTemplate.spec.template`.
    #[schemars(length(min = 1, max = 1024))]
    pub pod_template: String,
    /// The template's `spec` holds pod-spec fields next to fields of the
    /// kind's own (as Knative's does); those are ignored.
    #[serde(default)]
    pub inline_pod_spec: bool,
    /// Whether the operator also caches objects of this kind that another
    /// workload owns (default true; top-level objects are always cached).
    /// Set false for kinds that a controller of another listed kind always
    /// owns, to save the memory.
    #[serde(default = "default_true")]
    pub cached: bool,
}

fn default_true() -> bool {
    true
}

impl ScanPolicySpec {
    /// The field managers whose writes come from Git.
    pub fn gitops_managers(&self) -> Vec<String> {
        match self.gitops.as_ref().and_then(|g| g.managers.as_ref()) {
            Some(managers) => managers.clone(),
            None => DEFAULT_GITOPS_MANAGERS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
        }
    }

    /// The workload kinds of this policy: the built-in table and
    /// `workloadKinds`; an invalid entry is an error naming its field.
    pub fn kind_table(&self) -> Result<crate::model::KindTable, crate::model::kinds::KindError> {
        crate::model::KindTable::with_user_kinds(self.workload_kinds.iter().map(|k| {
            crate::model::kinds::UserKind {
                group: &k.group,
                versions: &k.versions,
                kind: &k.kind,
                plural: &k.plural,
                pod_template: &k.pod_template,
                inline_pod_spec: k.inline_pod_spec,
                cached: k.cached,
            }
        }))
    }
}

/// A check written in CEL. Each validation that evaluates to `false` on an
/// object is a finding; one that fails to evaluate is a finding too, its
/// message starting with `CEL evaluation error`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomCheck {
    /// Stable id, used in exceptions, overrides and reports: lower-case
    /// letters, digits, `-`, `.` and `/`, e.g. `acme/team-label`. It may
    /// not be the id of a built-in check.
    #[schemars(
        length(min = 1, max = 128),
        regex(pattern = r"^[a-z0-9]([-a-z0-9./]*[a-z0-9])?$")
    )]
    pub id: String,
    #[schemars(length(min = 1, max = 256))]
    pub title: String,
    pub severity: Severity,
    /// A built-in category name (`images`, `hardening`, …); by default
    /// `custom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub category: Option<String>,
    /// What the check looks for and why it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    /// How to fix a failing object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub remediation: Option<String>,
    /// Framework references, e.g. `acme:policy-7`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(max = 253)))]
    pub frameworks: Vec<String>,
    /// Which objects the check reads.
    pub applies_to: CustomCheckTarget,
    /// Conditions (CEL, returning a bool) an object must meet for the
    /// validations to run, as a ValidatingAdmissionPolicy's
    /// `matchConditions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub match_conditions: Vec<NamedExpression>,
    /// Named expressions the others read as `variables.<name>`, each able
    /// to read the ones before it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub variables: Vec<NamedExpression>,
    /// The rules: each CEL expression must be `true` for the object to pass.
    #[schemars(length(min = 1, max = 64))]
    pub validations: Vec<CustomValidation>,
    /// A value the expressions read as `params` (`null` when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::free_form")]
    pub params: Option<serde_json::Value>,
}

/// The objects a custom check reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomCheckTarget {
    /// Every workload (Pod, Deployment, StatefulSet, DaemonSet, Job, CronJob,
    /// ReplicaSet, ReplicationController, PodTemplate), read through its pod
    /// template: `object` is a Pod with the template's metadata and spec,
    /// in the workload's namespace, so one expression covers every kind.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub workloads: bool,
    /// Objects of these kinds, as they are: `object` is the object itself
    /// (for workload kinds: its metadata and pod template).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub kinds: Vec<GroupKind>,
}

/// A kind of object: `group` empty for the core group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupKind {
    #[serde(default)]
    #[schemars(length(max = 253))]
    pub group: String,
    #[schemars(length(min = 1, max = 63))]
    pub kind: String,
}

/// A named CEL expression.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamedExpression {
    #[schemars(
        length(min = 1, max = 63),
        regex(pattern = r"^[A-Za-z_][A-Za-z0-9_]*$")
    )]
    pub name: String,
    #[schemars(length(min = 1, max = 5120))]
    pub expression: String,
}

/// One rule of a custom check.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomValidation {
    /// CEL returning a bool: `true` passes.
    #[schemars(length(min = 1, max = 5120))]
    pub expression: String,
    /// The finding's message when the expression is `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
    /// CEL returning the finding's message (a string); `message` is used
    /// when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5120))]
    pub message_expression: Option<String>,
}

/// Check selection by id (or by another tool's alias, such as `KSV017`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckSelection {
    /// Only these checks run. Empty means all checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(max = 253)))]
    pub enabled: Vec<String>,
    /// These checks never run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000), inner(length(max = 253)))]
    pub disabled: Vec<String>,
}

impl CheckSelection {
    pub fn is_empty(&self) -> bool {
        self.enabled.is_empty() && self.disabled.is_empty()
    }
}

/// A different severity for one check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeverityOverride {
    /// Check id.
    #[schemars(length(max = 253))]
    pub check: String,
    pub severity: Severity,
}

/// An accepted risk. A finding is suppressed when it matches every field that
/// is set: its check, the object's namespace, kind, name and labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Exception {
    /// A name for the exception, shown on suppressed findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub name: Option<String>,
    /// Check ids (or aliases) this exception covers; `*` for all.
    #[schemars(length(min = 1, max = 1000), inner(length(max = 253)))]
    pub checks: Vec<String>,
    /// Namespaces of the objects; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000), inner(length(max = 63)))]
    pub namespaces: Vec<String>,
    /// Kinds of the objects (`Deployment`, `ClusterRole`, …); empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(max = 63)))]
    pub kinds: Vec<String>,
    /// Object names, with `*` and `?` wildcards; empty means any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000), inner(length(max = 1024)))]
    pub names: Vec<String>,
    /// Labels the objects must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::label_selector")]
    pub selector: Option<LabelSelector>,
    /// Why the risk is accepted. Required: it is shown on every suppressed finding.
    #[schemars(length(min = 1, max = 4096))]
    pub reason: String,
    /// When the exception stops applying (RFC 3339, years 1970 to 9998);
    /// the finding then returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::time")]
    pub expires: Option<Time>,
}

/// Namespace scoping for the operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelection {
    /// Only these namespaces are scanned. Empty means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000), inner(length(max = 63)))]
    pub include: Vec<String>,
    /// These namespaces are never scanned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000), inner(length(max = 63)))]
    pub exclude: Vec<String>,
}

impl NamespaceSelection {
    pub fn is_empty(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }
}

/// What the operator made of the policy, and the cluster's totals under it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanPolicyStatus {
    /// `Valid`: `False` (with the offending field in the message) when the
    /// policy names something that does not exist; the operator then keeps
    /// using the last valid policy. `OpenReportsAvailable` (only with
    /// `--emit-openreports`): `True` when `openreports.io/v1alpha1` is
    /// served and Reports are written, `False` with the reason otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// The policy's `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::generation")]
    pub observed_generation: Option<i64>,
    /// Counts over every report the operator keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totals: Option<ClusterTotals>,
    /// Per framework, how many reported objects have no unsuppressed finding
    /// of a check in that framework.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1000))]
    pub frameworks: Vec<FrameworkPassRate>,
}

/// Cluster-wide finding counts (unsuppressed, except `suppressed`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTotals {
    /// Objects with a report.
    #[schemars(range(max = 4294967295u32))]
    pub reports: u32,
    /// Objects with no unsuppressed finding.
    #[schemars(range(max = 4294967295u32))]
    pub compliant: u32,
    #[schemars(range(max = 4294967295u32))]
    pub critical: u32,
    #[schemars(range(max = 4294967295u32))]
    pub high: u32,
    #[schemars(range(max = 4294967295u32))]
    pub medium: u32,
    #[schemars(range(max = 4294967295u32))]
    pub low: u32,
    #[schemars(range(max = 4294967295u32))]
    pub info: u32,
    #[schemars(range(max = 4294967295u32))]
    pub suppressed: u32,
}

/// How many reported objects pass every check of one framework.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FrameworkPassRate {
    /// Framework reference as checks list it, e.g. `pss:restricted`.
    #[schemars(length(max = 253))]
    pub framework: String,
    /// Objects without an unsuppressed finding of this framework.
    #[schemars(range(max = 4294967295u32))]
    pub passing: u32,
    /// Objects evaluated.
    #[schemars(range(max = 4294967295u32))]
    pub total: u32,
    /// `passing` as a whole percentage of `total`.
    #[schemars(range(max = 4294967295u32))]
    pub pass_percent: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ScanPolicySpec {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn gitops_managers_default_to_argo_cd_and_flux_and_can_be_replaced_or_emptied() {
        assert_eq!(
            spec("{}").gitops_managers(),
            DEFAULT_GITOPS_MANAGERS.to_vec()
        );
        assert_eq!(
            spec("{gitops: {}}").gitops_managers(),
            DEFAULT_GITOPS_MANAGERS.to_vec()
        );
        assert_eq!(
            spec("{gitops: {managers: [release-bot]}}").gitops_managers(),
            ["release-bot"]
        );
        assert!(
            spec("{gitops: {managers: []}}")
                .gitops_managers()
                .is_empty()
        );
    }
}
