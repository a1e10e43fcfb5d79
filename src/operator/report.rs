//! Builds a report from findings: pure, no client and no clock (the caller
//! passes `now`).

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use sha2::{Digest, Sha256};

use super::provenance::Attribution;
use super::target::TargetKey;
use crate::crd::scan_report::{
    FindingSuppression, ReportFinding, ReportStatus, ReportTarget, Summary,
};
use crate::engine::{Finding, Severity, SuppressionSource};

pub const LABEL_TARGET_KIND: &str = "palisade.dev/target-kind";
pub const LABEL_TARGET_NAME: &str = "palisade.dev/target-name";
pub const LABEL_WORST_SEVERITY: &str = "palisade.dev/worst-severity";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGER: &str = "palisade";

/// The condition type every report carries.
pub const COMPLIANT: &str = "Compliant";

/// Serialized findings are cut at this size, well below the 1.5 MiB etcd
/// limit and the 512 KiB Palisade promises for a whole report.
pub const FINDINGS_BUDGET_BYTES: usize = 384 * 1024;

/// What the target looked like when it was evaluated.
#[derive(Clone, Debug, Default)]
pub struct TargetState {
    pub uid: Option<String>,
    pub generation: Option<i64>,
    pub resource_version: Option<String>,
}

/// Everything the report of one target should say.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredReport {
    pub name: String,
    pub namespace: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub target: ReportTarget,
    pub status: ReportStatus,
}

/// Inputs of [`build`] other than the findings.
pub struct BuildInput<'a> {
    pub key: &'a TargetKey,
    pub target: &'a TargetState,
    pub previous: Option<&'a ReportStatus>,
    pub policy_hash: &'a str,
    /// Why the target could not be fully evaluated (e.g. a kind the
    /// operator may not list), which makes the report `Compliant=Unknown`.
    pub not_evaluated: Option<&'a str>,
    /// Who set the target's fields, and which managers speak for Git.
    pub attribution: &'a Attribution,
    pub now: Timestamp,
}

pub fn build(input: &BuildInput<'_>, findings: &[Finding]) -> DesiredReport {
    let key = input.key;
    let first_seen = previous_first_seen(input.previous);
    let all: Vec<ReportFinding> = findings
        .iter()
        .map(|f| {
            let mut finding = report_finding(f);
            attribute(&mut finding, input.attribution);
            let seen = first_seen.get(&identity(&finding)).cloned();
            finding.first_seen = Some(seen.unwrap_or(Time(input.now)));
            finding
        })
        .collect();
    let mut summary = summarize(findings);
    summary.drift = count_drift(&all);
    let total = all.len();
    let listed = cap_findings(all, FINDINGS_BUDGET_BYTES);
    let condition = compliant_condition(&summary, input.not_evaluated, input.previous, input.now);
    let mut status = ReportStatus {
        truncated: listed.len() < total,
        total_findings: total as u32,
        findings: listed,
        conditions: vec![condition],
        observed_generation: None,
        target_generation: input.target.generation,
        target_resource_version: input.target.resource_version.clone(),
        policy_hash: Some(input.policy_hash.to_owned()),
        summary,
        findings_digest: None,
        posture: None,
    };
    status.findings_digest = Some(digest(&status));
    DesiredReport {
        name: key.report_name(),
        namespace: key.namespace.clone(),
        labels: labels(key, status.summary.worst),
        target: ReportTarget {
            api_version: key.kind.api_version().to_owned(),
            kind: key.kind.as_str().to_owned(),
            name: key.name.clone(),
            uid: input.target.uid.clone(),
        },
        status,
    }
}

fn report_finding(f: &Finding) -> ReportFinding {
    ReportFinding {
        check: f.check.id.to_owned(),
        title: f.check.title.to_owned(),
        severity: f.severity,
        category: f.check.category.as_str().to_owned(),
        message: f.message.clone(),
        path: f.path.clone(),
        container: f.container.clone(),
        remediation: f.check.remediation.to_owned(),
        frameworks: f.check.frameworks.iter().map(|s| (*s).to_owned()).collect(),
        set_by: None,
        set_at: None,
        drift: false,
        suppressed: f.suppressed.as_ref().map(|s| FindingSuppression {
            source: match &s.source {
                SuppressionSource::Annotation => "annotation".to_owned(),
                SuppressionSource::Policy(name) => format!("policy/{name}"),
                SuppressionSource::Builtin => "builtin".to_owned(),
            },
            reason: s.reason.clone(),
        }),
        first_seen: None,
    }
}

/// Who last set the finding's field, and whether that was outside Git.
fn attribute(finding: &mut ReportFinding, attribution: &Attribution) {
    let origin = attribution.origin(&finding.path);
    finding.set_by = origin.set_by;
    finding.set_at = origin.set_at.map(Time);
    finding.drift = origin.drift;
}

/// Unsuppressed findings whose field was set outside Git.
fn count_drift(findings: &[ReportFinding]) -> u32 {
    let drifted = findings
        .iter()
        .filter(|f| f.drift && f.suppressed.is_none())
        .count();
    u32::try_from(drifted).unwrap_or(u32::MAX)
}

/// A finding "persists" across evaluations when the same check flags the
/// same field; its message may change (a different value) without resetting
/// `firstSeen`.
fn identity(f: &ReportFinding) -> (String, String, Option<String>) {
    (f.check.clone(), f.path.clone(), f.container.clone())
}

fn previous_first_seen(
    previous: Option<&ReportStatus>,
) -> BTreeMap<(String, String, Option<String>), Time> {
    previous
        .into_iter()
        .flat_map(|s| &s.findings)
        .filter_map(|f| Some((identity(f), f.first_seen.clone()?)))
        .collect()
}

/// Penalty per unsuppressed finding in the 0–100 score.
fn penalty(severity: Severity) -> u32 {
    match severity {
        Severity::Critical => 40,
        Severity::High => 20,
        Severity::Medium => 5,
        Severity::Low => 1,
        Severity::Info => 0,
    }
}

pub fn summarize(findings: &[Finding]) -> Summary {
    let mut summary = Summary::default();
    let mut lost = 0u32;
    for f in findings {
        if f.is_suppressed() {
            summary.suppressed += 1;
            continue;
        }
        *match f.severity {
            Severity::Critical => &mut summary.critical,
            Severity::High => &mut summary.high,
            Severity::Medium => &mut summary.medium,
            Severity::Low => &mut summary.low,
            Severity::Info => &mut summary.info,
        } += 1;
        summary.worst = summary.worst.max(Some(f.severity));
        lost = lost.saturating_add(penalty(f.severity));
    }
    summary.score = 100u32.saturating_sub(lost);
    summary
}

/// Keeps the leading findings (worst first) whose serialized size fits.
fn cap_findings(findings: Vec<ReportFinding>, budget: usize) -> Vec<ReportFinding> {
    let mut used = 0;
    let mut kept = Vec::with_capacity(findings.len());
    for finding in findings {
        let size = serde_json::to_vec(&finding)
            .map(|v| v.len())
            .unwrap_or(budget);
        if used + size > budget {
            break;
        }
        used += size;
        kept.push(finding);
    }
    kept
}

fn compliant_condition(
    summary: &Summary,
    not_evaluated: Option<&str>,
    previous: Option<&ReportStatus>,
    now: Timestamp,
) -> Condition {
    let open = summary.critical + summary.high + summary.medium + summary.low + summary.info;
    let (status, reason, message) = match (not_evaluated, summary.worst) {
        (Some(why), _) => ("Unknown", "NotEvaluated", why.to_owned()),
        (None, Some(worst)) => (
            "False",
            "FindingsPresent",
            format!("{open} unsuppressed finding(s), worst {worst}"),
        ),
        (None, None) => ("True", "NoFindings", "no unsuppressed findings".to_owned()),
    };
    let previous = previous.map_or(&[][..], |s| s.conditions.as_slice());
    let last_transition_time = super::conditions::transition_time(previous, COMPLIANT, status, now);
    Condition {
        type_: COMPLIANT.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time,
        observed_generation: None,
    }
}

/// Content hash of a status without the fields that move with time or with
/// the target's unrelated updates: what decides whether a write is needed.
pub fn digest(status: &ReportStatus) -> String {
    let mut stable = status.clone();
    stable.findings_digest = None;
    stable.observed_generation = None;
    stable.target_generation = None;
    stable.target_resource_version = None;
    for f in &mut stable.findings {
        f.first_seen = None;
    }
    for c in &mut stable.conditions {
        c.last_transition_time = Time(Timestamp::UNIX_EPOCH);
        c.observed_generation = None;
    }
    let bytes = serde_json::to_vec(&stable).expect("a status serializes");
    let hash = Sha256::digest(&bytes);
    hash[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest a stored status claims, if it is the digest of what the
/// status holds; `None` when they disagree (the status, which anyone with
/// write access to it can change, was edited) or when it claims none.
pub fn verified_digest(status: &ReportStatus) -> Option<String> {
    let claimed = status.findings_digest.as_ref()?;
    (digest(status) == *claimed).then(|| claimed.clone())
}

fn labels(key: &TargetKey, worst: Option<Severity>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_owned(), MANAGER.to_owned()),
        (LABEL_TARGET_KIND.to_owned(), key.kind.as_str().to_owned()),
        (LABEL_TARGET_NAME.to_owned(), label_value(&key.name)),
        (
            LABEL_WORST_SEVERITY.to_owned(),
            worst.map_or("none", Severity::as_str).to_owned(),
        ),
    ])
}

/// A label value for an object name: the name itself when it is a valid
/// label value, otherwise a cleaned, cut form with a hash suffix.
pub fn label_value(name: &str) -> String {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let valid = name.len() <= 63
        && name.chars().all(valid_char)
        && name
            .chars()
            .next()
            .is_none_or(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_none_or(|c| c.is_ascii_alphanumeric());
    if valid {
        return name.to_owned();
    }
    let cleaned: String = name
        .chars()
        .map(|c| if valid_char(c) { c } else { '_' })
        .take(52)
        .collect();
    let hash = Sha256::digest(name.as_bytes());
    let suffix: String = hash[..5].iter().map(|b| format!("{b:02x}")).collect();
    let head = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if head.is_empty() {
        suffix
    } else {
        format!("{head}-{suffix}")
    }
}

/// An Event the change from one report to the next deserves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    pub reason: &'static str,
    pub warning: bool,
    pub note: String,
}

pub const REASON_NEW_FINDING: &str = "NewFinding";
pub const REASON_FINDING_RESOLVED: &str = "FindingResolved";
pub const REASON_SEVERITY_CHANGED: &str = "SeverityChanged";
pub const REASON_DRIFT_DETECTED: &str = "DriftDetected";

/// Events for a report change: the worst severity moved, a critical or high
/// finding appeared or went away (lower severities stay quiet), or a
/// finding of any severity is newly marked drift (its field was changed
/// outside Git).
pub fn planned_events(previous: Option<&ReportStatus>, next: &ReportStatus) -> Vec<PlannedEvent> {
    let loud =
        |s: Option<&ReportStatus>| -> BTreeMap<(String, String, Option<String>), ReportFinding> {
            s.into_iter()
                .flat_map(|s| &s.findings)
                .filter(|f| f.suppressed.is_none() && f.severity >= Severity::High)
                .map(|f| (identity(f), f.clone()))
                .collect()
        };
    let before = loud(previous);
    let after = loud(Some(next));
    let mut events = Vec::new();
    let before_worst = previous.and_then(|s| s.summary.worst);
    let after_worst = next.summary.worst;
    if previous.is_some() && before_worst != after_worst {
        let name = |s: Option<Severity>| s.map_or("none", Severity::as_str);
        events.push(PlannedEvent {
            reason: REASON_SEVERITY_CHANGED,
            warning: after_worst > before_worst,
            note: format!(
                "worst severity changed from {} to {}",
                name(before_worst),
                name(after_worst)
            ),
        });
    }
    let appeared: Vec<&ReportFinding> = after
        .iter()
        .filter(|(k, _)| !before.contains_key(*k))
        .map(|(_, f)| f)
        .collect();
    if !appeared.is_empty() {
        events.push(PlannedEvent {
            reason: REASON_NEW_FINDING,
            warning: true,
            note: describe(&appeared),
        });
    }
    let resolved: Vec<&ReportFinding> = before
        .iter()
        .filter(|(k, _)| !after.contains_key(*k))
        .map(|(_, f)| f)
        .collect();
    if !resolved.is_empty() {
        events.push(PlannedEvent {
            reason: REASON_FINDING_RESOLVED,
            warning: false,
            note: describe(&resolved),
        });
    }
    if let Some(event) = drift_event(previous, next) {
        events.push(event);
    }
    events
}

/// A `DriftDetected` Event for the findings newly marked drift.
fn drift_event(previous: Option<&ReportStatus>, next: &ReportStatus) -> Option<PlannedEvent> {
    let before: BTreeSet<(String, String, Option<String>)> = previous
        .into_iter()
        .flat_map(|s| &s.findings)
        .filter(|f| f.suppressed.is_none() && f.drift)
        .map(identity)
        .collect();
    let mut appeared: Vec<&ReportFinding> = next
        .findings
        .iter()
        .filter(|f| f.suppressed.is_none() && f.drift && !before.contains(&identity(f)))
        .collect();
    appeared.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.check.cmp(&b.check))
            .then(a.path.cmp(&b.path))
    });
    let first = appeared.first()?;
    let mut note = format!(
        "{} {} at {} was set by {} outside GitOps",
        first.severity,
        first.check,
        first.path,
        first.set_by.as_deref().unwrap_or("an unknown manager")
    );
    if appeared.len() > 1 {
        note.push_str(&format!(" (and {} more)", appeared.len() - 1));
    }
    Some(PlannedEvent {
        reason: REASON_DRIFT_DETECTED,
        warning: true,
        note: cut_note(note),
    })
}

/// An Event note holds at most 1 kB.
fn cut_note(mut note: String) -> String {
    if note.len() > 1000 {
        let mut cut = 997;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    note
}

/// `high privileged-container: container `app` is privileged (and 2 more)`,
/// kept under the 1 kB an Event note may hold.
fn describe(findings: &[&ReportFinding]) -> String {
    let mut sorted: Vec<&&ReportFinding> = findings.iter().collect();
    sorted.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.check.cmp(&b.check)));
    let first = sorted[0];
    let mut note = format!("{} {}: {}", first.severity, first.check, first.message);
    let checks: BTreeSet<&str> = sorted.iter().map(|f| f.check.as_str()).collect();
    if findings.len() > 1 {
        note.push_str(&format!(
            " (and {} more; checks: {})",
            findings.len() - 1,
            checks.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    cut_note(note)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Check, Suppression};
    use crate::model::ObjectRef;
    use crate::operator::target::TargetKind;

    fn check(id: &'static str) -> &'static Check {
        crate::checks::catalog()
            .iter()
            .copied()
            .find(|c| c.id == id)
            .unwrap_or_else(|| crate::checks::catalog()[0])
    }

    fn finding(severity: Severity, path: &str, suppressed: bool) -> Finding {
        Finding {
            object: ObjectRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("ns".into()),
                name: "web".into(),
                uid: None,
            }
            .into(),
            check: check("privileged-container"),
            severity,
            message: format!("problem at {path}"),
            path: path.into(),
            container: Some("app".into()),
            suppressed: suppressed.then(|| {
                Box::new(Suppression {
                    source: SuppressionSource::Policy("accepted".into()),
                    reason: "known".into(),
                })
            }),
        }
    }

    fn key() -> TargetKey {
        TargetKey::new(TargetKind::Deployment, Some("ns"), "web")
    }

    fn input<'a>(
        key: &'a TargetKey,
        target: &'a TargetState,
        previous: Option<&'a ReportStatus>,
        now: Timestamp,
    ) -> BuildInput<'a> {
        BuildInput {
            key,
            target,
            previous,
            policy_hash: "p1",
            not_evaluated: None,
            attribution: &super::super::provenance::UNKNOWN,
            now,
        }
    }

    fn t(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    #[test]
    fn summary_counts_unsuppressed_findings_and_scores_them() {
        let findings = vec![
            finding(Severity::Critical, "a", false),
            finding(Severity::High, "b", false),
            finding(Severity::Low, "c", false),
            finding(Severity::High, "d", true),
        ];
        let s = summarize(&findings);
        assert_eq!(
            (s.critical, s.high, s.medium, s.low, s.info),
            (1, 1, 0, 1, 0)
        );
        assert_eq!(s.suppressed, 1);
        assert_eq!(s.worst, Some(Severity::Critical));
        assert_eq!(s.score, 100 - 40 - 20 - 1);
        let clean = summarize(&[]);
        assert_eq!((clean.score, clean.worst), (100, None));
        let many: Vec<_> = (0..5)
            .map(|i| finding(Severity::Critical, &i.to_string(), false))
            .collect();
        assert_eq!(summarize(&many).score, 0);
    }

    #[test]
    fn report_has_name_labels_target_and_compliant_condition() {
        let key = key();
        let state = TargetState {
            uid: Some("uid-1".into()),
            generation: Some(3),
            resource_version: Some("77".into()),
        };
        let report = build(
            &input(&key, &state, None, t(0)),
            &[finding(Severity::High, "a", false)],
        );
        assert_eq!(report.name, "deployment-web");
        assert_eq!(report.namespace.as_deref(), Some("ns"));
        assert_eq!(report.labels[LABEL_WORST_SEVERITY], "high");
        assert_eq!(report.labels[LABEL_TARGET_KIND], "Deployment");
        assert_eq!(report.labels[LABEL_TARGET_NAME], "web");
        assert_eq!(report.target.uid.as_deref(), Some("uid-1"));
        let c = &report.status.conditions[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str()),
            ("Compliant", "False")
        );
        assert_eq!(report.status.target_generation, Some(3));
        assert_eq!(report.status.findings[0].first_seen, Some(Time(t(0))));
    }

    #[test]
    fn first_seen_and_transition_time_survive_an_unrelated_change() {
        let key = key();
        let state = TargetState::default();
        let first = build(
            &input(&key, &state, None, t(0)),
            &[finding(Severity::High, "a", false)],
        );
        let second = build(
            &input(&key, &state, Some(&first.status), t(60)),
            &[
                finding(Severity::High, "a", false),
                finding(Severity::Low, "b", false),
            ],
        );
        let seen: Vec<_> = second
            .status
            .findings
            .iter()
            .map(|f| f.first_seen.clone())
            .collect();
        assert_eq!(seen, vec![Some(Time(t(0))), Some(Time(t(60)))]);
        assert_eq!(
            second.status.conditions[0].last_transition_time,
            Time(t(0)),
            "still non-compliant: the transition time stays"
        );
        let fixed = build(&input(&key, &state, Some(&second.status), t(120)), &[]);
        assert_eq!(fixed.status.conditions[0].status, "True");
        assert_eq!(
            fixed.status.conditions[0].last_transition_time,
            Time(t(120))
        );
    }

    #[test]
    fn digest_ignores_time_and_target_version_but_not_findings() {
        let key = key();
        let v1 = TargetState {
            resource_version: Some("1".into()),
            ..Default::default()
        };
        let v2 = TargetState {
            resource_version: Some("2".into()),
            ..Default::default()
        };
        let findings = [finding(Severity::High, "a", false)];
        let a = build(&input(&key, &v1, None, t(0)), &findings);
        let b = build(&input(&key, &v2, None, t(999)), &findings);
        assert_eq!(a.status.findings_digest, b.status.findings_digest);
        let c = build(
            &input(&key, &v1, None, t(0)),
            &[finding(Severity::Critical, "a", false)],
        );
        assert_ne!(a.status.findings_digest, c.status.findings_digest);
        let mut other_policy = input(&key, &v1, None, t(0));
        other_policy.policy_hash = "p2";
        assert_ne!(
            a.status.findings_digest,
            build(&other_policy, &findings).status.findings_digest
        );
    }

    #[test]
    fn an_edited_status_does_not_verify_but_a_written_one_does_after_a_round_trip() {
        let key = key();
        let state = TargetState {
            resource_version: Some("5".into()),
            generation: Some(2),
            ..Default::default()
        };
        let report = build(
            &input(&key, &state, None, t(0)),
            &[finding(Severity::Critical, "a", false)],
        );
        let mut written = report.status.clone();
        written.observed_generation = Some(1);
        // As the API server stores and returns it.
        let stored: ReportStatus =
            serde_json::from_slice(&serde_json::to_vec(&written).unwrap()).unwrap();
        assert_eq!(verified_digest(&stored), report.status.findings_digest);

        let mut edited = stored.clone();
        edited.findings.clear();
        edited.summary = Summary {
            score: 100,
            ..Summary::default()
        };
        assert_eq!(verified_digest(&edited), None, "findings and score edited");
        let mut reworded = stored.clone();
        reworded.findings[0].remediation = "nothing to do".into();
        assert_eq!(verified_digest(&reworded), None, "a finding's text edited");
        let mut unclaimed = stored;
        unclaimed.findings_digest = None;
        assert_eq!(verified_digest(&unclaimed), None);
    }

    #[test]
    fn transition_time_moves_only_with_the_condition_status() {
        let key = key();
        let state = TargetState::default();
        let findings = [finding(Severity::High, "a", false)];
        let mut refused = input(&key, &state, None, t(0));
        refused.not_evaluated = Some("cannot list networkpolicies: forbidden");
        let unknown = build(&refused, &findings);
        let mut still = input(&key, &state, Some(&unknown.status), t(60));
        still.not_evaluated = Some("cannot list roles: forbidden");
        let still = build(&still, &findings);
        assert_eq!(
            still.status.conditions[0].last_transition_time,
            Time(t(0)),
            "still Unknown, for another reason"
        );
        let evaluated = build(&input(&key, &state, Some(&still.status), t(120)), &findings);
        assert_eq!(evaluated.status.conditions[0].status, "False");
        assert_eq!(
            evaluated.status.conditions[0].last_transition_time,
            Time(t(120))
        );
        let again = build(
            &input(&key, &state, Some(&evaluated.status), t(180)),
            &findings,
        );
        assert_eq!(
            again.status.conditions[0].last_transition_time,
            Time(t(120))
        );
        assert_eq!(
            again.status.findings_digest,
            evaluated.status.findings_digest
        );
    }

    #[test]
    fn not_evaluated_is_never_compliant() {
        let key = key();
        let state = TargetState::default();
        let mut i = input(&key, &state, None, t(0));
        i.not_evaluated = Some("cannot list networkpolicies: forbidden");
        let report = build(&i, &[]);
        let c = &report.status.conditions[0];
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("Unknown", "NotEvaluated")
        );
        assert!(c.message.contains("networkpolicies"));
    }

    #[test]
    fn findings_are_capped_below_the_size_limit_with_the_total_kept() {
        let key = key();
        let state = TargetState::default();
        let long = "x".repeat(2000);
        let findings: Vec<_> = (0..1000)
            .map(|i| finding(Severity::Medium, &format!("{long}{i:04}"), false))
            .collect();
        let report = build(&input(&key, &state, None, t(0)), &findings);
        assert!(report.status.truncated);
        assert_eq!(report.status.total_findings, 1000);
        assert_eq!(
            report.status.summary.medium, 1000,
            "the summary counts every finding"
        );
        let size = serde_json::to_vec(&report.status).unwrap().len();
        assert!(size < 512 * 1024, "status is {size} bytes");
        assert!(
            report.status.findings.len() > 50,
            "kept {}",
            report.status.findings.len()
        );
    }

    #[test]
    fn events_for_new_resolved_and_changed_severity() {
        let key = key();
        let state = TargetState::default();
        let clean = build(&input(&key, &state, None, t(0)), &[]);
        assert!(
            planned_events(None, &clean.status).is_empty(),
            "a clean new report is quiet"
        );

        let broken = build(
            &input(&key, &state, Some(&clean.status), t(1)),
            &[
                finding(Severity::Critical, "a", false),
                finding(Severity::Low, "b", false),
            ],
        );
        let events = planned_events(Some(&clean.status), &broken.status);
        let reasons: Vec<_> = events.iter().map(|e| e.reason).collect();
        assert_eq!(reasons, vec![REASON_SEVERITY_CHANGED, REASON_NEW_FINDING]);
        assert!(events[0].warning);
        assert!(
            events[0].note.contains("from none to critical"),
            "{}",
            events[0].note
        );
        assert!(
            events[1].note.contains("privileged-container"),
            "{}",
            events[1].note
        );

        let fixed = build(
            &input(&key, &state, Some(&broken.status), t(2)),
            &[finding(Severity::Low, "b", false)],
        );
        let reasons: Vec<_> = planned_events(Some(&broken.status), &fixed.status)
            .iter()
            .map(|e| e.reason)
            .collect();
        assert_eq!(
            reasons,
            vec![REASON_SEVERITY_CHANGED, REASON_FINDING_RESOLVED]
        );

        // A low finding appearing changes nothing loud.
        let low = build(
            &input(&key, &state, Some(&fixed.status), t(3)),
            &[
                finding(Severity::Low, "b", false),
                finding(Severity::Low, "c", false),
            ],
        );
        assert!(planned_events(Some(&fixed.status), &low.status).is_empty());
    }

    /// A Deployment Argo CD applied, whose container `kubectl edit` made
    /// privileged.
    fn edited_outside_git() -> Attribution {
        let entries: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry> =
            serde_json::from_value(serde_json::json!([
                {"manager": "argocd-controller", "operation": "Apply", "time": "2026-12-01T10:00:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}}},
                {"manager": "kubectl-edit", "operation": "Update", "time": "2026-12-02T09:30:00Z",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"app\"}": {"f:securityContext": {"f:privileged": {}}}}}}}}}
            ]))
            .unwrap();
        let provenance = super::super::provenance::Provenance::from_managed_fields(&entries);
        Attribution::new(Some(provenance), vec!["argocd-controller".into()])
    }

    const PRIVILEGED: &str = "spec.template.spec.containers[name=app].securityContext.privileged";
    const IMAGE: &str = "spec.template.spec.containers[name=app].image";

    #[test]
    fn findings_on_fields_set_outside_git_are_drift_and_counted() {
        let key = key();
        let state = TargetState::default();
        let attribution = edited_outside_git();
        let mut i = input(&key, &state, None, t(0));
        i.attribution = &attribution;
        let findings = [
            finding(Severity::Critical, PRIVILEGED, false),
            finding(Severity::Low, IMAGE, false),
            finding(Severity::High, PRIVILEGED, true),
        ];
        let report = build(&i, &findings);
        let by_path = |path: &str, suppressed: bool| {
            report
                .status
                .findings
                .iter()
                .find(|f| f.path == path && f.suppressed.is_some() == suppressed)
                .unwrap()
                .clone()
        };
        let edited = by_path(PRIVILEGED, false);
        assert!(edited.drift);
        assert_eq!(edited.set_by.as_deref(), Some("kubectl-edit"));
        assert_eq!(
            edited.set_at.map(|t| t.0.to_string()).as_deref(),
            Some("2026-12-02T09:30:00Z")
        );
        let applied = by_path(IMAGE, false);
        assert!(!applied.drift);
        assert_eq!(applied.set_by.as_deref(), Some("argocd-controller"));
        assert!(
            by_path(PRIVILEGED, true).drift,
            "marked, though not counted"
        );
        assert_eq!(
            report.status.summary.drift, 1,
            "suppressed ones do not count"
        );

        let unknown = build(&input(&key, &state, None, t(0)), &findings);
        assert_eq!(unknown.status.summary.drift, 0);
        assert_ne!(
            unknown.status.findings_digest, report.status.findings_digest,
            "who set a field is part of the content"
        );
    }

    #[test]
    fn a_status_with_managers_verifies_after_a_round_trip() {
        let key = key();
        let state = TargetState::default();
        let attribution = edited_outside_git();
        let mut i = input(&key, &state, None, t(0));
        i.attribution = &attribution;
        let report = build(&i, &[finding(Severity::Critical, PRIVILEGED, false)]);
        // As the API server stores and returns it.
        let stored: ReportStatus =
            serde_json::from_slice(&serde_json::to_vec(&report.status).unwrap()).unwrap();
        assert_eq!(stored.findings[0].set_by.as_deref(), Some("kubectl-edit"));
        assert_eq!(verified_digest(&stored), report.status.findings_digest);
        let mut relabelled = stored;
        relabelled.findings[0].set_by = Some("argocd-controller".into());
        relabelled.findings[0].drift = false;
        assert_eq!(verified_digest(&relabelled), None, "an edited manager");
    }

    #[test]
    fn a_finding_newly_marked_drift_gets_one_event_naming_the_manager() {
        let key = key();
        let state = TargetState::default();
        let findings = [finding(Severity::Critical, PRIVILEGED, false)];
        let from_git = build(&input(&key, &state, None, t(0)), &findings);
        let attribution = edited_outside_git();
        let mut i = input(&key, &state, Some(&from_git.status), t(1));
        i.attribution = &attribution;
        let drifted = build(&i, &findings);
        let events = planned_events(Some(&from_git.status), &drifted.status);
        let reasons: Vec<_> = events.iter().map(|e| e.reason).collect();
        assert_eq!(reasons, vec![REASON_DRIFT_DETECTED]);
        assert!(events[0].warning);
        assert!(
            events[0].note.contains("kubectl-edit"),
            "{}",
            events[0].note
        );
        assert!(events[0].note.contains(PRIVILEGED), "{}", events[0].note);
        // Still drifted at the next evaluation: no second Event.
        let again = build(&i, &findings);
        assert!(planned_events(Some(&drifted.status), &again.status).is_empty());
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(label_value("web"), "web");
        let v = label_value("system:controller:job-controller");
        assert!(v.starts_with("system_controller_job-controller-"), "{v}");
        let long = label_value(&"a".repeat(100));
        assert!(long.len() <= 63, "{long}");
        assert!(!label_value(":x:").starts_with('_'));
    }
}
