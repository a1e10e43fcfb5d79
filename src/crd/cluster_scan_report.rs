use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scan_report::{ReportStatus, ReportTarget};

/// The security findings of one cluster-scoped object: a ClusterRole, a
/// ClusterRoleBinding or a Namespace. Written by the Palisade operator;
/// named `<kind>-<name>`. Same content as a ScanReport.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "palisade.dev",
    version = "v1alpha1",
    kind = "ClusterScanReport",
    plural = "clusterscanreports",
    shortname = "csrep",
    category = "palisade",
    doc = "The security findings of one cluster-scoped object, written by the Palisade operator.",
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
pub struct ClusterScanReportSpec {
    /// The scanned object.
    pub target: ReportTarget,
}
