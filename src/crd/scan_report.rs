use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema::MAX_TEXT;
use crate::model::Severity;

/// The security findings of one namespaced object: a top-level workload
/// (Deployment, StatefulSet, DaemonSet, CronJob, ReplicationController, or a
/// Job, ReplicaSet or Pod without a controller), a ServiceAccount, a Role or
/// a RoleBinding. Written by the Palisade operator; named `<kind>-<name>`.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "palisade.dev",
    version = "v1alpha1",
    kind = "ScanReport",
    plural = "scanreports",
    shortname = "sr",
    category = "palisade",
    doc = "The security findings of one namespaced object, written by the Palisade operator.",
    namespaced,
    status = "ReportStatus",
    printcolumn = r#"{"name":"Kind","type":"string","jsonPath":".spec.target.kind"}"#,
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.target.name"}"#,
    printcolumn = r#"{"name":"Critical","type":"integer","jsonPath":".status.summary.critical"}"#,
    printcolumn = r#"{"name":"High","type":"integer","jsonPath":".status.summary.high"}"#,
    printcolumn = r#"{"name":"Medium","type":"integer","jsonPath":".status.summary.medium"}"#,
    printcolumn = r#"{"name":"Low","type":"integer","jsonPath":".status.summary.low"}"#,
    printcolumn = r#"{"name":"Score","type":"integer","jsonPath":".status.summary.score"}"#,
    printcolumn = r#"{"name":"Drift","type":"integer","jsonPath":".status.summary.drift"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ScanReportSpec {
    /// The scanned object.
    pub target: ReportTarget,
}

/// A report CRD as installed: without the status subresource, so that the
/// status is part of the object and the operator writes a new or changed
/// report, object and findings, in one server-side apply instead of two.
/// Every `.status.*` path (printer columns, alert rules, `kubectl explain`,
/// queries) stays where it was. As with PolicyReport and OpenReports, whose
/// results sit at the top level, whoever may patch a report may change its
/// findings; the operator restores a report whose content does not match
/// what it wrote.
pub fn with_status_in_the_object(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        if let Some(subresources) = &mut version.subresources {
            subresources.status = None;
            if subresources.scale.is_none() {
                version.subresources = None;
            }
        }
    }
    crd
}

/// Identifies the scanned object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportTarget {
    /// `apiVersion` of the object, e.g. `apps/v1`.
    #[schemars(length(max = 253))]
    pub api_version: String,
    /// Kind of the object, e.g. `Deployment`.
    #[schemars(length(max = 63))]
    pub kind: String,
    /// Name of the object.
    #[schemars(length(max = 4096))]
    pub name: String,
    /// UID of the object the findings were computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub uid: Option<String>,
}

/// What the last evaluation found. Only written when the findings (or the
/// policy that produced them) change: an unchanged object is never rewritten.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportStatus {
    /// Counts of the findings by severity.
    #[serde(default)]
    pub summary: Summary,

    /// The findings, worst first, then by check id and field path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10000))]
    pub findings: Vec<ReportFinding>,

    /// True when `findings` was cut short to keep the object small; the
    /// summary still counts every finding.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,

    /// How many findings there are in all, listed or not.
    #[serde(default)]
    #[schemars(range(max = 4294967295u32))]
    pub total_findings: u32,

    /// `Compliant`: `True` when no unsuppressed finding is left, `False` when
    /// some are, `Unknown` when the object could not be fully evaluated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::schema::conditions")]
    pub conditions: Vec<Condition>,

    /// Not written: the status is written with the rest of the report in
    /// one request, so it always belongs to the report's own generation.
    /// Reports written by earlier versions may still hold it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::generation")]
    pub observed_generation: Option<i64>,

    /// The target's `metadata.generation` when these findings were written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::generation")]
    pub target_generation: Option<i64>,

    /// The target's `metadata.resourceVersion` when these findings were written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub target_resource_version: Option<String>,

    /// Hash of the ScanPolicy in force for these findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub policy_hash: Option<String>,

    /// Content hash of this status without its timestamps; the operator skips
    /// the write when it has not changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub findings_digest: Option<String>,

    /// A Namespace's Pod Security posture; only in Namespace reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub posture: Option<super::cluster_scan_report::NamespacePosture>,
}

/// Finding counts. Suppressed findings count only in `suppressed`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
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
    /// Findings accepted by an exception, an annotation or built-in noise control.
    #[schemars(range(max = 4294967295u32))]
    pub suppressed: u32,
    /// The worst severity of an unsuppressed finding; absent when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worst: Option<Severity>,
    /// 100 for no findings, falling with each finding by its severity
    /// (critical 40, high 20, medium 5, low 1), never below 0.
    #[schemars(range(max = 100))]
    pub score: u32,
    /// Unsuppressed findings marked `drift`: their field was last set
    /// outside the GitOps tools (see `ScanPolicy.spec.gitops`).
    #[serde(default)]
    #[schemars(range(max = 4294967295u32))]
    pub drift: u32,
}

/// One finding of one check in the target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportFinding {
    /// Check id, e.g. `privileged-container`.
    #[schemars(length(max = 253))]
    pub check: String,
    #[schemars(length(max = 1024))]
    pub title: String,
    pub severity: Severity,
    #[schemars(length(max = 253))]
    pub category: String,
    #[schemars(length(max = MAX_TEXT))]
    pub message: String,
    /// Field path in the target, e.g.
    /// `spec.template.spec.containers[name=app].securityContext.privileged`.
    #[schemars(length(max = 4096))]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub container: Option<String>,
    #[schemars(length(max = MAX_TEXT))]
    pub remediation: String,
    /// Framework references, e.g. `pss:baseline`, `cis-k8s:5.2.2`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100), inner(length(max = 253)))]
    pub frameworks: Vec<String>,
    /// Why the finding does not count, when it is suppressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppressed: Option<FindingSuppression>,
    /// When the operator first saw this finding (same check and path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::time")]
    pub first_seen: Option<Time>,
    /// The field manager that last set the field the finding points at
    /// (from the target's `managedFields`), e.g. `argocd-controller`,
    /// `kubectl-edit`; for an absent field, the manager of its nearest set
    /// ancestor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub set_by: Option<String>,
    /// When that manager last changed one of its fields (the field was set
    /// at or before this time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::schema::time")]
    pub set_at: Option<Time>,
    /// True when the target is managed by a GitOps tool but this field was
    /// last set by another manager: a change made outside Git.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drift: bool,
}

/// The reason a finding is suppressed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FindingSuppression {
    /// `annotation`, `policy/<exception name>` or `builtin`.
    #[schemars(length(max = 1024))]
    pub source: String,
    #[schemars(length(max = MAX_TEXT))]
    pub reason: String,
}
