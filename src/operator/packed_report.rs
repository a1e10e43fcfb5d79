//! Reports as the caches hold them. The next evaluation of a target reads
//! its report's labels, owner and target (is an object write needed), the
//! findings digest and observed generation (is a status write needed), the
//! Compliant condition (its transition time is kept), and of each finding
//! its identity, severity, suppression, `firstSeen` and, for critical and
//! high ones, the message (quoted by a `FindingResolved` Event). The memo
//! below holds just that, with short keys and no empty fields: about half
//! the bytes of the report's own JSON.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use serde::{Deserialize, Serialize};

use super::packed::Packable;
use super::target::{TargetKey, TargetKind};
use crate::crd::scan_report::FindingSuppression;
use crate::crd::{
    ClusterScanReport, ClusterScanReportSpec, ReportFinding, ReportStatus, ReportTarget,
    ScanReport, ScanReportSpec,
};
use crate::engine::Severity;

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct ReportMemo {
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "o", default, skip_serializing_if = "Option::is_none")]
    owner_references: Option<Vec<OwnerReference>>,
    #[serde(rename = "g", default, skip_serializing_if = "Option::is_none")]
    generation: Option<i64>,
    #[serde(rename = "t")]
    target: ReportTarget,
    /// The status without its findings, which are in `findings`.
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    status: Option<ReportStatus>,
    #[serde(rename = "f", default, skip_serializing_if = "Vec::is_empty")]
    findings: Vec<FindingMemo>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct FindingMemo {
    #[serde(rename = "c")]
    check: String,
    #[serde(rename = "s")]
    severity: Severity,
    #[serde(rename = "p")]
    path: String,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    #[serde(rename = "m", default, skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    suppressed: Option<FindingSuppression>,
    #[serde(rename = "t", default, skip_serializing_if = "Option::is_none")]
    first_seen: Option<Time>,
    /// Read by the next evaluation: a finding newly marked drift gets an Event.
    #[serde(rename = "d", default, skip_serializing_if = "std::ops::Not::not")]
    drift: bool,
}

impl FindingMemo {
    fn of(f: &ReportFinding) -> FindingMemo {
        FindingMemo {
            check: f.check.clone(),
            severity: f.severity,
            path: f.path.clone(),
            container: f.container.clone(),
            message: f.message.clone(),
            suppressed: f.suppressed.clone(),
            first_seen: f.first_seen.clone(),
            drift: f.drift,
        }
    }

    /// The finding as the slimmed report held it: the per-check texts are
    /// empty (they are never read back).
    fn into_finding(self) -> ReportFinding {
        ReportFinding {
            check: self.check,
            title: String::new(),
            severity: self.severity,
            category: String::new(),
            message: self.message,
            path: self.path,
            container: self.container,
            remediation: String::new(),
            frameworks: Vec::new(),
            suppressed: self.suppressed,
            first_seen: self.first_seen,
            set_by: None,
            set_at: None,
            drift: self.drift,
        }
    }
}

fn pack(meta: &ObjectMeta, target: &ReportTarget, status: Option<&ReportStatus>) -> Vec<u8> {
    let findings = status
        .map(|s| s.findings.iter().map(FindingMemo::of).collect())
        .unwrap_or_default();
    let status = status.map(|s| ReportStatus {
        findings: Vec::new(),
        ..s.clone()
    });
    let memo = ReportMemo {
        labels: meta.labels.clone(),
        owner_references: meta.owner_references.clone(),
        generation: meta.generation,
        target: target.clone(),
        status,
        findings,
    };
    serde_json::to_vec(&memo).expect("a report memo serializes to JSON")
}

/// Metadata, target and status back from a memo.
fn unpack(
    bytes: &[u8],
    identity: &ObjectMeta,
) -> Result<(ObjectMeta, ReportTarget, Option<ReportStatus>), serde_json::Error> {
    let memo: ReportMemo = serde_json::from_slice(bytes)?;
    let metadata = ObjectMeta {
        labels: memo.labels,
        owner_references: memo.owner_references,
        generation: memo.generation,
        ..identity.clone()
    };
    let findings: Vec<ReportFinding> = memo
        .findings
        .into_iter()
        .map(FindingMemo::into_finding)
        .collect();
    let status = memo
        .status
        .map(|status| ReportStatus { findings, ..status });
    Ok((metadata, memo.target, status))
}

fn target_key(target: &ReportTarget, namespace: Option<&str>) -> Option<TargetKey> {
    let kind = TargetKind::from_target(&target.api_version, &target.kind)?;
    Some(TargetKey::new(kind, namespace, &target.name))
}

/// The report's target is read by the full resync without unpacking.
impl Packable for ScanReport {
    type Facts = Option<TargetKey>;

    fn facts(&self) -> Option<TargetKey> {
        target_key(&self.spec.target, self.metadata.namespace.as_deref())
    }

    fn pack(&self) -> Vec<u8> {
        pack(&self.metadata, &self.spec.target, self.status.as_ref())
    }

    fn unpack(bytes: &[u8], identity: &ObjectMeta) -> Result<Self, serde_json::Error> {
        let (metadata, target, status) = unpack(bytes, identity)?;
        Ok(ScanReport {
            metadata,
            spec: ScanReportSpec { target },
            status,
        })
    }
}

impl Packable for ClusterScanReport {
    type Facts = Option<TargetKey>;

    fn facts(&self) -> Option<TargetKey> {
        target_key(&self.spec.target, None)
    }

    fn pack(&self) -> Vec<u8> {
        pack(&self.metadata, &self.spec.target, self.status.as_ref())
    }

    fn unpack(bytes: &[u8], identity: &ObjectMeta) -> Result<Self, serde_json::Error> {
        let (metadata, target, status) = unpack(bytes, identity)?;
        Ok(ClusterScanReport {
            metadata,
            spec: ClusterScanReportSpec { target },
            status,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::packed::Packed;
    use crate::operator::stores::testing::yaml;

    const REPORT: &str = "{metadata: {name: deployment-web, namespace: a, uid: r1, resourceVersion: '9', generation: 2, labels: {app.kubernetes.io/managed-by: palisade, palisade.dev/worst-severity: critical}, ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: web, uid: u, controller: true}]}, spec: {target: {apiVersion: apps/v1, kind: Deployment, name: web, uid: u}}, status: {findingsDigest: d1, observedGeneration: 2, policyHash: p, totalFindings: 2, summary: {critical: 1, high: 0, medium: 1, low: 0, info: 0, suppressed: 0, score: 55, worst: critical}, conditions: [{type: Compliant, status: 'False', reason: FindingsPresent, message: m, lastTransitionTime: '2026-01-01T00:00:00Z'}], findings: [
       {check: privileged-container, title: '', severity: critical, category: '', message: 'container app is privileged', path: spec.x, container: app, remediation: '', firstSeen: '2026-01-01T00:00:00Z'},
       {check: no-limits, title: '', severity: medium, category: '', message: '', path: spec.y, remediation: '', suppressed: {source: policy/default, reason: accepted}, firstSeen: '2026-01-02T00:00:00Z'}]}}";

    fn json(o: &impl Serialize) -> serde_json::Value {
        serde_json::to_value(o).unwrap()
    }

    #[test]
    fn a_packed_report_unpacks_to_the_report_it_was() {
        let report: ScanReport = yaml(REPORT);
        let packed = Packed::new(&report);
        assert_eq!(json(&packed.unpack().unwrap()), json(&report));
        assert_eq!(
            packed.facts(),
            &Some(TargetKey::new(TargetKind::Deployment, Some("a"), "web"))
        );
    }

    #[test]
    fn a_packed_cluster_report_unpacks_too() {
        let report: ClusterScanReport = yaml(
            "{metadata: {name: clusterrole-admin, uid: r2}, spec: {target: {apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, name: admin}}}",
        );
        let packed = Packed::new(&report);
        assert_eq!(json(&packed.unpack().unwrap()), json(&report));
        assert_eq!(
            packed.facts(),
            &Some(TargetKey::new(TargetKind::ClusterRole, None, "admin"))
        );
    }

    #[test]
    fn the_memo_is_smaller_than_the_reports_json() {
        let report: ScanReport = yaml(REPORT);
        let memo = report.pack().len();
        let json = serde_json::to_vec(&report).unwrap().len();
        assert!(memo * 10 < json * 8, "memo {memo} bytes, JSON {json} bytes");
    }
}
