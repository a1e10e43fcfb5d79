//! GitOps drift: what the live cluster has that the repository does not,
//! and the other way round. Pure: both sides come in already evaluated
//! ([`Side`]), the comparison ([`compare`]) reads no clock and no client.
//!
//! Objects are matched by kind, namespace and name; findings by check,
//! field path and container (their message and severity may differ, e.g. a
//! different image tag in the message). Only unsuppressed findings are
//! compared: a finding accepted on one side is not drift.
//!
//! - A finding only live was introduced outside Git (by hand, by a
//!   controller, by a mutating webhook): the drift that matters.
//! - A finding only in Git is fixed in Git but not deployed yet (or
//!   introduced in Git and not deployed yet).
//! - An object only live, in a namespace the repository covers, was
//!   created outside Git: all its findings count as live-only.
//! - An object only in Git is not deployed: its findings are Git-only.

pub mod output;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::Serialize;

use crate::engine::Severity;

/// One object, as both sides name it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectId {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// One unsuppressed finding of one side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftFinding {
    pub check: String,
    pub severity: Severity,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub message: String,
    /// Live side only: the field manager that last set the field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_by: Option<String>,
    /// Live side only: when that manager last changed its fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_at: Option<Timestamp>,
}

impl DriftFinding {
    /// What makes two findings "the same" across the two sides.
    fn identity(&self) -> (&str, &str, Option<&str>) {
        (&self.check, &self.path, self.container.as_deref())
    }

    /// Worst first, then check, path, container: the order of every output.
    fn order(&self) -> impl Ord + '_ {
        (
            std::cmp::Reverse(self.severity),
            &self.check,
            &self.path,
            &self.container,
            &self.message,
        )
    }
}

/// The objects of one side (the repository, or the live cluster) and
/// their unsuppressed findings.
#[derive(Clone, Debug, Default)]
pub struct Side {
    pub objects: BTreeMap<ObjectId, Vec<DriftFinding>>,
    /// Where each object is defined (`file:line`), Git side only.
    pub sources: BTreeMap<ObjectId, String>,
}

impl Side {
    /// Adds an object (with no findings yet, if new).
    pub fn object(&mut self, id: ObjectId) -> &mut Vec<DriftFinding> {
        self.objects.entry(id).or_default()
    }
}

/// Whether an object is on both sides or on one only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Presence {
    Both,
    /// Created outside Git.
    LiveOnly,
    /// In Git, not deployed.
    GitOnly,
}

impl Presence {
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Both => "both",
            Presence::LiveOnly => "live only",
            Presence::GitOnly => "Git only",
        }
    }
}

/// The differences of one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectDrift {
    pub object: ObjectId,
    pub presence: Presence,
    /// Where the object is defined in the repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Findings the live object has and Git's does not.
    pub live_only: Vec<DriftFinding>,
    /// Findings Git's object has and the live one does not.
    pub git_only: Vec<DriftFinding>,
}

/// The whole comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftReport {
    /// Objects with a difference, sorted by kind, namespace and name.
    pub objects: Vec<ObjectDrift>,
    pub summary: DriftSummary,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DriftSummary {
    /// Objects on both sides.
    pub compared: usize,
    pub live_only_objects: usize,
    pub git_only_objects: usize,
    pub live_only_findings: usize,
    pub git_only_findings: usize,
}

impl DriftReport {
    /// Whether a live-only finding is at or above `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        self.objects
            .iter()
            .flat_map(|o| &o.live_only)
            .any(|f| f.severity >= threshold)
    }

    /// Every live-only finding with its object, in report order.
    pub fn live_only(&self) -> impl Iterator<Item = (&ObjectDrift, &DriftFinding)> {
        self.objects
            .iter()
            .flat_map(|o| o.live_only.iter().map(move |f| (o, f)))
    }

    /// Every Git-only finding with its object, in report order.
    pub fn git_only(&self) -> impl Iterator<Item = (&ObjectDrift, &DriftFinding)> {
        self.objects
            .iter()
            .flat_map(|o| o.git_only.iter().map(move |f| (o, f)))
    }
}

/// Compares the repository's objects with the live ones.
pub fn compare(git: &Side, live: &Side) -> DriftReport {
    let ids: BTreeSet<&ObjectId> = git.objects.keys().chain(live.objects.keys()).collect();
    let mut report = DriftReport::default();
    for id in ids {
        let in_git = git.objects.get(id);
        let in_live = live.objects.get(id);
        let presence = match (in_git, in_live) {
            (Some(_), Some(_)) => Presence::Both,
            (None, _) => Presence::LiveOnly,
            (_, None) => Presence::GitOnly,
        };
        let empty = Vec::new();
        let git_findings = in_git.unwrap_or(&empty);
        let live_findings = in_live.unwrap_or(&empty);
        let live_only = missing_from(live_findings, git_findings);
        let git_only = missing_from(git_findings, live_findings);
        match presence {
            Presence::Both => report.summary.compared += 1,
            Presence::LiveOnly => report.summary.live_only_objects += 1,
            Presence::GitOnly => report.summary.git_only_objects += 1,
        }
        report.summary.live_only_findings += live_only.len();
        report.summary.git_only_findings += git_only.len();
        if presence == Presence::Both && live_only.is_empty() && git_only.is_empty() {
            continue;
        }
        report.objects.push(ObjectDrift {
            object: id.clone(),
            presence,
            source: git.sources.get(id).cloned(),
            live_only,
            git_only,
        });
    }
    report
}

/// The findings of `these` that `those` does not have, sorted.
fn missing_from(these: &[DriftFinding], those: &[DriftFinding]) -> Vec<DriftFinding> {
    let known: BTreeSet<_> = those.iter().map(DriftFinding::identity).collect();
    let mut missing: Vec<DriftFinding> = these
        .iter()
        .filter(|f| !known.contains(&f.identity()))
        .cloned()
        .collect();
    missing.sort_by(|a, b| a.order().cmp(&b.order()));
    missing.dedup_by(|a, b| a.identity() == b.identity());
    missing
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn id(kind: &str, namespace: &str, name: &str) -> ObjectId {
        ObjectId {
            kind: kind.into(),
            namespace: Some(namespace.into()),
            name: name.into(),
        }
    }

    pub fn finding(check: &str, severity: Severity, path: &str) -> DriftFinding {
        DriftFinding {
            check: check.into(),
            severity,
            path: path.into(),
            container: Some("app".into()),
            message: format!("{check} at {path}"),
            set_by: None,
            set_at: None,
        }
    }

    pub const PRIVILEGED: &str =
        "spec.template.spec.containers[name=app].securityContext.privileged";
    pub const LIMITS: &str = "spec.template.spec.containers[name=app].resources.limits";

    /// Git: web (no limits), gone (not deployed). Live: web made
    /// privileged by kubectl-edit and limits set, stray (created by hand).
    pub fn sample() -> DriftReport {
        let mut git = Side::default();
        git.object(id("Deployment", "shop", "web")).push(finding(
            "no-limits",
            Severity::Medium,
            LIMITS,
        ));
        git.sources
            .insert(id("Deployment", "shop", "web"), "deploy/web.yaml:1".into());
        git.object(id("Deployment", "shop", "gone")).push(finding(
            "no-limits",
            Severity::Medium,
            LIMITS,
        ));
        let mut live = Side::default();
        let mut edited = finding("privileged-container", Severity::Critical, PRIVILEGED);
        edited.set_by = Some("kubectl-edit".into());
        edited.set_at = Some("2026-12-02T09:30:00Z".parse().unwrap());
        live.object(id("Deployment", "shop", "web")).push(edited);
        live.object(id("Deployment", "shop", "stray")).push(finding(
            "run-as-root",
            Severity::High,
            "spec.template.spec",
        ));
        compare(&git, &live)
    }

    #[test]
    fn a_finding_only_live_is_live_only_and_one_only_in_git_is_git_only() {
        let report = sample();
        let web = report
            .objects
            .iter()
            .find(|o| o.object.name == "web")
            .unwrap();
        assert_eq!(web.presence, Presence::Both);
        assert_eq!(web.source.as_deref(), Some("deploy/web.yaml:1"));
        let live: Vec<_> = web.live_only.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(live, ["privileged-container"]);
        assert_eq!(web.live_only[0].set_by.as_deref(), Some("kubectl-edit"));
        let git: Vec<_> = web.git_only.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(git, ["no-limits"]);
    }

    #[test]
    fn objects_on_one_side_carry_all_their_findings_to_that_side() {
        let report = sample();
        let presence: Vec<_> = report
            .objects
            .iter()
            .map(|o| (o.object.name.as_str(), o.presence))
            .collect();
        assert_eq!(
            presence,
            [
                ("gone", Presence::GitOnly),
                ("stray", Presence::LiveOnly),
                ("web", Presence::Both)
            ]
        );
        assert_eq!(
            report.summary,
            DriftSummary {
                compared: 1,
                live_only_objects: 1,
                git_only_objects: 1,
                live_only_findings: 2,
                git_only_findings: 2,
            }
        );
    }

    #[test]
    fn the_same_finding_on_both_sides_is_no_drift_whatever_its_message() {
        let mut git = Side::default();
        let mut live = Side::default();
        let mut reworded = finding("no-limits", Severity::Low, LIMITS);
        reworded.message = "different words".into();
        git.object(id("Deployment", "shop", "web")).push(finding(
            "no-limits",
            Severity::Medium,
            LIMITS,
        ));
        live.object(id("Deployment", "shop", "web")).push(reworded);
        let report = compare(&git, &live);
        assert!(report.objects.is_empty(), "{report:?}");
        assert_eq!(report.summary.compared, 1);
        assert!(!report.fails(Severity::Info));
    }

    #[test]
    fn the_failure_threshold_reads_live_only_findings_only() {
        let report = sample();
        assert!(report.fails(Severity::Critical));
        let mut git = Side::default();
        git.object(id("Deployment", "shop", "web")).push(finding(
            "privileged-container",
            Severity::Critical,
            PRIVILEGED,
        ));
        let mut live = Side::default();
        live.object(id("Deployment", "shop", "web")).push(finding(
            "no-limits",
            Severity::Medium,
            LIMITS,
        ));
        let fixed_in_git_only = compare(&git, &live);
        assert!(!fixed_in_git_only.fails(Severity::High));
        assert!(fixed_in_git_only.fails(Severity::Medium));
    }

    #[test]
    fn the_comparison_is_deterministic_whatever_the_input_order() {
        let mut a = Side::default();
        let mut b = Side::default();
        let findings = [
            finding("b-check", Severity::Low, "x"),
            finding("a-check", Severity::Low, "y"),
            finding("c-check", Severity::Critical, "z"),
        ];
        for f in &findings {
            a.object(id("Deployment", "shop", "web")).push(f.clone());
        }
        for f in findings.iter().rev() {
            b.object(id("Deployment", "shop", "web")).push(f.clone());
        }
        let empty = Side::default();
        let first = compare(&empty, &a);
        assert_eq!(first, compare(&empty, &b));
        let order: Vec<_> = first.objects[0]
            .live_only
            .iter()
            .map(|f| f.check.as_str())
            .collect();
        assert_eq!(order, ["c-check", "a-check", "b-check"]);
    }
}
