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
    printcolumn = r#"{"name":"PSS","type":"string","description":"The highest Pod Security level every workload of the namespace meets","jsonPath":".status.posture.levelMet"}"#,
    printcolumn = r#"{"name":"ENFORCED","type":"string","description":"The namespace's pod-security.kubernetes.io/enforce level","jsonPath":".status.posture.enforce.level"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ClusterScanReportSpec {
    /// The scanned object.
    pub target: ReportTarget,
}

/// Most blocking workloads a posture lists; `blockingTotal` counts them all.
pub const MAX_BLOCKING_WORKLOADS: usize = 100;

/// A Pod Security Standards level, least to most restrictive.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum PodSecurityLevel {
    /// No restriction.
    #[default]
    Privileged,
    /// Prevents known privilege escalations.
    Baseline,
    /// Current pod hardening best practice.
    Restricted,
}

impl PodSecurityLevel {
    /// Least restrictive first.
    pub const ALL: [PodSecurityLevel; 3] = [
        PodSecurityLevel::Privileged,
        PodSecurityLevel::Baseline,
        PodSecurityLevel::Restricted,
    ];

    /// The value of a `pod-security.kubernetes.io/<mode>` label.
    pub fn as_str(self) -> &'static str {
        match self {
            PodSecurityLevel::Privileged => "privileged",
            PodSecurityLevel::Baseline => "baseline",
            PodSecurityLevel::Restricted => "restricted",
        }
    }

    /// Reads a label value; `None` for anything the admission does not know.
    pub fn parse(value: &str) -> Option<PodSecurityLevel> {
        PodSecurityLevel::ALL
            .into_iter()
            .find(|level| level.as_str() == value)
    }

    /// The next more restrictive level, if any.
    pub fn next(self) -> Option<PodSecurityLevel> {
        match self {
            PodSecurityLevel::Privileged => Some(PodSecurityLevel::Baseline),
            PodSecurityLevel::Baseline => Some(PodSecurityLevel::Restricted),
            PodSecurityLevel::Restricted => None,
        }
    }
}

impl std::fmt::Display for PodSecurityLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Pod Security posture of a namespace: which Pod Security Standards
/// level its workloads meet today, what its Pod Security admission labels
/// ask for, and how it fares in each compliance framework. Only in the
/// ClusterScanReport of a Namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacePosture {
    /// The highest Pod Security Standards level that every pod template in
    /// the namespace passes today, judged by the controls of the
    /// pod-security admission (v1.35): labelling the namespace
    /// `pod-security.kubernetes.io/enforce` with this level rejects none of
    /// its workloads' pods.
    pub level_met: PodSecurityLevel,
    /// Pod templates evaluated: the namespace's top-level workloads.
    #[schemars(range(max = 4294967295u32))]
    pub workloads: u32,
    /// The `enforce` mode: pods that violate its level are rejected.
    pub enforce: PodSecurityMode,
    /// The `audit` mode: violations are recorded in the audit log.
    pub audit: PodSecurityMode,
    /// The `warn` mode: violations are returned to the client as warnings.
    pub warn: PodSecurityMode,
    /// True when the Namespace object itself was not among the scanned
    /// objects (`palisade scan` of manifests that only name it): its labels,
    /// and so the warnings about them, are unknown.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub labels_unknown: bool,
    /// The level above `levelMet`; absent when `restricted` is met.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_level: Option<PodSecurityLevel>,
    /// The workloads that keep the namespace from `nextLevel`, with the
    /// checks they fail at that level; at most 100, sorted by kind and name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub blocking: Vec<BlockingWorkload>,
    /// How many workloads block `nextLevel`, listed or not.
    #[serde(default)]
    #[schemars(range(max = 4294967295u32))]
    pub blocking_total: u32,
    /// What the labels and the level met say together: an enforced level
    /// below the level met (`EnforceBelowLevelMet`, an easy hardening), above
    /// it (`EnforceAboveLevelMet`, pods will be rejected on their next
    /// rollout), an unknown label value (`InvalidLabel`) or an older policy
    /// version than the controls evaluated (`PolicyVersionDiffers`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub warnings: Vec<PostureWarning>,
    /// Per compliance framework, how the namespace's objects fare against
    /// the framework's checks; sorted by framework.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub frameworks: Vec<NamespaceFrameworkRate>,
}

/// One mode of Pod Security admission on a namespace, from its
/// `pod-security.kubernetes.io/<mode>` and `<mode>-version` labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityMode {
    /// The level label's value, or `privileged` (the admission's default)
    /// when the namespace has no such label.
    #[schemars(length(max = 63))]
    pub level: String,
    /// The version label's value, or `latest` when it has none.
    #[schemars(length(max = 63))]
    pub version: String,
    /// Whether the namespace carries the level label.
    #[serde(default)]
    pub labelled: bool,
}

/// A workload whose pod template fails a Pod Security level.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockingWorkload {
    /// Kind of the workload, e.g. `Deployment`.
    #[schemars(length(max = 63))]
    pub kind: String,
    /// Name of the workload.
    #[schemars(length(max = 253))]
    pub name: String,
    /// The ids of the checks the pod template fails at the level, sorted.
    #[schemars(length(max = 64), inner(length(max = 253)))]
    pub failing: Vec<String>,
}

/// Something a namespace's Pod Security labels should change.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostureWarning {
    /// `EnforceBelowLevelMet`, `EnforceAboveLevelMet`, `InvalidLabel` or
    /// `PolicyVersionDiffers`.
    #[schemars(length(max = 63))]
    pub reason: String,
    /// Details, for people.
    #[schemars(length(max = 4096))]
    pub message: String,
}

/// How a namespace's objects fare against one compliance framework's
/// checks. Each object the framework's checks apply to counts once: as
/// passing (no finding of the framework), failing (an unsuppressed one) or
/// suppressed (only accepted-risk findings, never counted as passing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceFrameworkRate {
    /// The framework, as the checks' references name it before any `:`
    /// (`nsa-cisa`, `cis-k8s`, `pss`, `mitre`).
    #[schemars(length(max = 253))]
    pub framework: String,
    #[schemars(range(max = 4294967295u32))]
    pub passing: u32,
    #[schemars(range(max = 4294967295u32))]
    pub failing: u32,
    #[schemars(range(max = 4294967295u32))]
    pub suppressed: u32,
    /// Objects the framework's checks apply to.
    #[schemars(range(max = 4294967295u32))]
    pub total: u32,
    /// `passing` as a whole percentage of `total` (100 when `total` is 0).
    #[schemars(range(max = 100))]
    pub pass_percent: u32,
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    #[test]
    fn namespace_reports_print_the_level_met_and_the_enforced_level() {
        let crd = ClusterScanReport::crd();
        let columns: Vec<(String, String)> = crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.clone(), c.json_path.clone()))
            .collect();
        let posture: Vec<_> = columns
            .iter()
            .filter(|(name, _)| name == "PSS" || name == "ENFORCED")
            .map(|(name, path)| (name.as_str(), path.as_str()))
            .collect();
        assert_eq!(
            posture,
            [
                ("PSS", ".status.posture.levelMet"),
                ("ENFORCED", ".status.posture.enforce.level")
            ]
        );
        assert_eq!(columns.last().map(|(name, _)| name.as_str()), Some("Age"));
    }

    #[test]
    fn levels_read_label_values_and_order_least_to_most_restrictive() {
        assert_eq!(
            PodSecurityLevel::parse("baseline"),
            Some(PodSecurityLevel::Baseline)
        );
        assert_eq!(PodSecurityLevel::parse("Baseline"), None);
        assert!(PodSecurityLevel::Privileged < PodSecurityLevel::Restricted);
        assert_eq!(
            PodSecurityLevel::Baseline.next(),
            Some(PodSecurityLevel::Restricted)
        );
        assert_eq!(PodSecurityLevel::Restricted.next(), None);
    }

    #[test]
    fn a_posture_reads_back_what_it_wrote() {
        let posture = NamespacePosture {
            level_met: PodSecurityLevel::Baseline,
            next_level: Some(PodSecurityLevel::Restricted),
            blocking: vec![BlockingWorkload {
                kind: "Deployment".into(),
                name: "web".into(),
                failing: vec!["run-as-non-root".into()],
            }],
            blocking_total: 1,
            ..NamespacePosture::default()
        };
        let json = serde_json::to_value(&posture).unwrap();
        assert_eq!(json["levelMet"], "baseline");
        let back: NamespacePosture = serde_json::from_value(json).unwrap();
        assert_eq!(back, posture);
    }
}
