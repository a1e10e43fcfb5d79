//! Cluster-wide totals: what every report contributes, kept per target so a
//! re-evaluation replaces its target's share instead of adding to it.
//!
//! Pure (no client, no clock). Two readers: the Prometheus gauges
//! (`metrics.rs` moves them by the difference between a target's previous
//! and next contribution) and the ScanPolicy status (`resync.rs` reads
//! [`ClusterTally::totals`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::target::{TargetKey, TargetKind};
use crate::crd::scan_policy::{ClusterTotals, FrameworkPassRate};
use crate::crd::scan_report::Summary;
use crate::engine::{Check, Finding, Severity};

/// What one target contributes to the cluster-wide numbers. One is kept
/// per report, so it holds counts against the static check catalog, not
/// label strings: the labels are built when the gauges are updated.
#[derive(Clone, Debug)]
pub struct Contribution {
    kind: TargetKind,
    /// Unsuppressed findings per check and effective severity, sorted.
    counts: Box<[(&'static Check, Severity, u32)]>,
    summary: Summary,
}

impl Contribution {
    pub fn new(kind: TargetKind, findings: &[Finding], summary: &Summary) -> Contribution {
        let mut counts: Vec<(&'static Check, Severity, u32)> = Vec::new();
        for f in findings.iter().filter(|f| !f.is_suppressed()) {
            match counts
                .iter_mut()
                .find(|(c, s, _)| c.id == f.check.id && *s == f.severity)
            {
                Some((_, _, n)) => *n = n.saturating_add(1),
                None => counts.push((f.check, f.severity, 1)),
            }
        }
        counts.sort_by_key(|(c, s, _)| (c.id, *s));
        Contribution {
            kind,
            counts: counts.into_boxed_slice(),
            summary: summary.clone(),
        }
    }

    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    /// Unsuppressed findings per check and effective severity.
    pub fn counts(&self) -> &[(&'static Check, Severity, u32)] {
        &self.counts
    }

    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Frameworks with at least one failing check in this target.
    fn failing_frameworks(&self) -> BTreeSet<&'static str> {
        self.counts
            .iter()
            .flat_map(|(check, _, _)| check.frameworks.iter().copied())
            .collect()
    }
}

/// Every report's contribution, by target.
#[derive(Debug, Default)]
pub struct ClusterTally {
    contributions: HashMap<TargetKey, Contribution>,
}

impl ClusterTally {
    /// Records what `key` contributes now; returns what it contributed
    /// before.
    pub fn set(&mut self, key: TargetKey, next: Contribution) -> Option<Contribution> {
        self.contributions.insert(key, next)
    }

    /// Forgets `key` (its report was deleted); returns what it contributed.
    pub fn remove(&mut self, key: &TargetKey) -> Option<Contribution> {
        self.contributions.remove(key)
    }

    /// Totals and per-framework pass rates over every report, for the
    /// ScanPolicy status. `frameworks` lists every framework of the catalog.
    /// Sums saturate: a count past `u32::MAX` stays there rather than wrap.
    pub fn totals(&self, frameworks: &BTreeSet<String>) -> (ClusterTotals, Vec<FrameworkPassRate>) {
        let mut totals = ClusterTotals::default();
        let mut failing: BTreeMap<&str, u32> = BTreeMap::new();
        for c in self.contributions.values() {
            let s = &c.summary;
            totals.reports = totals.reports.saturating_add(1);
            totals.compliant = totals
                .compliant
                .saturating_add(u32::from(s.worst.is_none()));
            totals.critical = totals.critical.saturating_add(s.critical);
            totals.high = totals.high.saturating_add(s.high);
            totals.medium = totals.medium.saturating_add(s.medium);
            totals.low = totals.low.saturating_add(s.low);
            totals.info = totals.info.saturating_add(s.info);
            totals.suppressed = totals.suppressed.saturating_add(s.suppressed);
            for f in c.failing_frameworks() {
                let n = failing.entry(f).or_default();
                *n = n.saturating_add(1);
            }
        }
        let rates = frameworks
            .iter()
            .map(|framework| pass_rate(framework, totals.reports, &failing))
            .collect();
        (totals, rates)
    }
}

fn pass_rate(framework: &str, total: u32, failing: &BTreeMap<&str, u32>) -> FrameworkPassRate {
    let failed = failing.get(framework).copied().unwrap_or(0);
    let passing = total.saturating_sub(failed);
    // u64 so that `passing * 100` cannot overflow.
    let percent = (u64::from(passing) * 100)
        .checked_div(u64::from(total))
        .map_or(100, |p| u32::try_from(p).unwrap_or(100));
    FrameworkPassRate {
        framework: framework.to_owned(),
        passing,
        total,
        pass_percent: percent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ObjectRef;
    use crate::operator::report::summarize;

    fn finding(check_id: &str, severity: Severity) -> Finding {
        let check = crate::checks::catalog()
            .iter()
            .copied()
            .find(|c| c.id == check_id)
            .expect("check in the catalog");
        Finding {
            object: ObjectRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                namespace: Some("ns".into()),
                name: "web".into(),
                uid: None,
            }
            .into(),
            check,
            severity,
            message: "problem".into(),
            path: String::new(),
            container: None,
            suppressed: None,
        }
    }

    fn contribution(findings: &[Finding]) -> Contribution {
        Contribution::new(TargetKind::Deployment, findings, &summarize(findings))
    }

    #[test]
    fn a_re_evaluation_replaces_its_targets_share() {
        let frameworks: BTreeSet<String> = ["CIS".to_owned()].into();
        let web = TargetKey::new(TargetKind::Deployment, Some("ns"), "web");
        let api = TargetKey::new(TargetKind::Deployment, Some("ns"), "api");
        let mut tally = ClusterTally::default();
        let risky = [finding("privileged-container", Severity::High)];
        assert!(tally.set(web.clone(), contribution(&risky)).is_none());
        tally.set(api.clone(), contribution(&[]));
        let (totals, _) = tally.totals(&frameworks);
        assert_eq!((totals.reports, totals.compliant, totals.high), (2, 1, 1));

        let previous = tally.set(web.clone(), contribution(&[]));
        assert_eq!(previous.map(|c| c.summary().high), Some(1));
        let (totals, _) = tally.totals(&frameworks);
        assert_eq!((totals.reports, totals.compliant, totals.high), (2, 2, 0));

        assert!(tally.remove(&api).is_some());
        let (totals, rates) = tally.totals(&frameworks);
        assert_eq!(totals.reports, 1);
        assert_eq!(rates[0].pass_percent, 100);
    }

    #[test]
    fn pass_rates_count_reports_failing_a_framework() {
        let mut failing = BTreeMap::new();
        failing.insert("CIS", 1);
        let rate = pass_rate("CIS", 4, &failing);
        assert_eq!((rate.passing, rate.total, rate.pass_percent), (3, 4, 75));
        // No report: nothing fails.
        assert_eq!(pass_rate("CIS", 0, &BTreeMap::new()).pass_percent, 100);
        // Huge counts neither overflow nor wrap.
        let rate = pass_rate("CIS", u32::MAX, &BTreeMap::new());
        assert_eq!(rate.pass_percent, 100);
    }
}
