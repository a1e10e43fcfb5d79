//! Prometheus metrics, all prefixed `palisade_`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::target::{TargetKey, TargetKind};
use super::totals::Contribution;

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct FindingLabels {
    pub namespace: String,
    pub severity: String,
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub resource: String,
    pub verb: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub category: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct CheckLabels {
    pub check: String,
    pub severity: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NamespaceLabels {
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceAccountLabels {
    pub namespace: String,
    pub serviceaccount: String,
}

/// Sum and count of the report scores of one namespace, for the mean.
#[derive(Clone, Copy, Debug, Default)]
struct ScoreTally {
    sum: i64,
    reports: i64,
}

/// Findings by namespace, severity and category, for `palisade_findings`.
fn by_category(c: &Contribution, namespace: &str) -> BTreeMap<FindingLabels, i64> {
    let mut out = BTreeMap::new();
    for (check, severity, n) in c.counts() {
        let labels = FindingLabels {
            namespace: namespace.to_owned(),
            severity: severity.as_str().to_owned(),
            category: check.category.as_str().to_owned(),
        };
        *out.entry(labels).or_default() += i64::from(*n);
    }
    out
}

pub struct Metrics {
    pub registry: Registry,
    pub findings: Family<FindingLabels, Gauge>,
    pub reports: Family<KindLabels, Gauge>,
    pub evaluations: Family<ResultLabels, Counter>,
    pub evaluation_seconds: Histogram,
    pub api_writes: Family<WriteLabels, Counter>,
    pub watch_restarts: Family<KindLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    pub last_full_resync: Gauge,
    pub queue_depth: Gauge,
    pub leader: Gauge,
    pub check_findings: Family<CheckLabels, Gauge>,
    pub namespace_score: Family<NamespaceLabels, Gauge>,
    pub serviceaccount_risk: Family<ServiceAccountLabels, Gauge>,
    pub api_throttled: Counter,
    pub api_retries: Family<ReasonLabels, Counter>,
    pub api_timeouts: Counter,
    pub reports_restored: Family<ResourceLabels, Counter>,
    pub drift_findings: Family<NamespaceLabels, Gauge>,
    pub posture: super::posture::PostureMetrics,
    namespace_scores: Mutex<HashMap<String, ScoreTally>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("palisade");
        let findings = Family::<FindingLabels, Gauge>::default();
        registry.register(
            "findings",
            "Unsuppressed findings by namespace (empty for cluster-scoped objects), severity and check category",
            findings.clone(),
        );
        let reports = Family::<KindLabels, Gauge>::default();
        registry.register("reports", "Reports kept, by target kind", reports.clone());
        let evaluations = Family::<ResultLabels, Counter>::default();
        registry.register(
            "evaluations",
            "Evaluations by result: written, unchanged, deleted, skipped, error",
            evaluations.clone(),
        );
        let evaluation_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register(
            "evaluation_duration_seconds",
            "Time to evaluate one object and write its report",
            evaluation_seconds.clone(),
        );
        let api_writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "api_writes",
            "Write requests sent to the API server, by resource and verb",
            api_writes.clone(),
        );
        let watch_restarts = Family::<KindLabels, Counter>::default();
        registry.register(
            "watch_restarts",
            "Watch errors after which the watch was restarted, by kind",
            watch_restarts.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register("errors", "Evaluation errors by category", errors.clone());
        let last_full_resync = Gauge::default();
        registry.register(
            "last_full_resync_timestamp_seconds",
            "Unix time when the last full re-evaluation was queued",
            last_full_resync.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Objects waiting for evaluation",
            queue_depth.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the lease and writes reports",
            leader.clone(),
        );
        // Per check, per namespace and per ServiceAccount numbers for
        // dashboards and alerts; their label sets stay bounded by the
        // check catalog, the namespaces and the risky ServiceAccounts.
        let check_findings = Family::<CheckLabels, Gauge>::default();
        registry.register(
            "check_findings",
            "Unsuppressed findings by check id and severity",
            check_findings.clone(),
        );
        let namespace_score = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "namespace_score",
            "Mean score (0-100, higher is safer) of the namespace's reports (empty namespace for cluster-scoped reports)",
            namespace_score.clone(),
        );
        let serviceaccount_risk = Family::<ServiceAccountLabels, Gauge>::default();
        registry.register(
            "serviceaccount_risk",
            "100 minus the score of a ServiceAccount's report, only for ServiceAccounts with unsuppressed findings",
            serviceaccount_risk.clone(),
        );
        let api_throttled = Counter::default();
        registry.register(
            "api_throttled",
            "Answers 429 (Too Many Requests: API Priority and Fairness) received from the API server",
            api_throttled.clone(),
        );
        let api_retries = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "api_retries",
            "Requests sent again after a 429 (reason throttled) or a 503/504 (reason unavailable)",
            api_retries.clone(),
        );
        let api_timeouts = Counter::default();
        registry.register(
            "api_timeouts",
            "API calls abandoned at their deadline without an answer",
            api_timeouts.clone(),
        );
        let reports_restored = Family::<ResourceLabels, Counter>::default();
        registry.register(
            "reports_restored",
            "Reports rewritten because what was stored differed from what the operator had written (edited by hand or by another writer)",
            reports_restored.clone(),
        );
        let drift_findings = Family::<NamespaceLabels, Gauge>::default();
        registry.register(
            "drift_findings",
            "Unsuppressed findings whose field was last set outside the GitOps field managers, by namespace (empty for cluster-scoped objects)",
            drift_findings.clone(),
        );
        let posture = super::posture::PostureMetrics::register(&mut registry);
        Metrics {
            posture,
            registry,
            findings,
            reports,
            evaluations,
            evaluation_seconds,
            api_writes,
            watch_restarts,
            errors,
            last_full_resync,
            queue_depth,
            leader,
            check_findings,
            namespace_score,
            serviceaccount_risk,
            api_throttled,
            api_retries,
            api_timeouts,
            reports_restored,
            drift_findings,
            namespace_scores: Mutex::default(),
        }
    }

    pub fn evaluation(&self, result: &str) {
        self.evaluations
            .get_or_create(&ResultLabels {
                result: result.to_owned(),
            })
            .inc();
    }

    pub fn write(&self, resource: &str, verb: &str) {
        self.api_writes
            .get_or_create(&WriteLabels {
                resource: resource.to_owned(),
                verb: verb.to_owned(),
            })
            .inc();
    }

    pub fn error(&self, category: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                category: category.to_owned(),
            })
            .inc();
    }

    pub fn api_throttled(&self) {
        self.api_throttled.inc();
    }

    pub fn api_retry(&self, reason: &str) {
        self.api_retries
            .get_or_create(&ReasonLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    pub fn api_timeout(&self) {
        self.api_timeouts.inc();
    }

    pub fn report_restored(&self, resource: &str) {
        self.reports_restored
            .get_or_create(&ResourceLabels {
                resource: resource.to_owned(),
            })
            .inc();
    }

    pub fn watch_restart(&self, kind: &str) {
        self.watch_restarts
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Moves the findings and report gauges from what `key` contributed
    /// (`previous`) to what it contributes now (`next`, `None` once its
    /// report is gone). The contributions themselves are kept by
    /// [`ClusterTally`](super::totals::ClusterTally).
    pub fn replace_target(
        &self,
        key: &TargetKey,
        previous: Option<&Contribution>,
        next: Option<&Contribution>,
    ) {
        self.apply(key, previous, -1);
        self.apply(key, next, 1);
        if next.is_none() && key.kind == TargetKind::Namespace {
            self.posture.remove(&key.name);
        }
    }

    fn apply(&self, key: &TargetKey, contribution: Option<&Contribution>, sign: i64) {
        let Some(c) = contribution else { return };
        let namespace = key.namespace.as_deref().unwrap_or_default();
        for (labels, count) in by_category(c, namespace) {
            let gauge = self.findings.get_or_create(&labels);
            let now = gauge.inc_by(sign * count) + sign * count;
            drop(gauge);
            if now == 0 {
                self.findings.remove(&labels);
            }
        }
        self.reports
            .get_or_create(&KindLabels {
                kind: c.kind().as_str().to_owned(),
            })
            .inc_by(sign);
        for (check, severity, count) in c.counts() {
            let labels = CheckLabels {
                check: check.id.to_owned(),
                severity: severity.as_str().to_owned(),
            };
            let count = i64::from(*count);
            let gauge = self.check_findings.get_or_create(&labels);
            let now = gauge.inc_by(sign * count) + sign * count;
            drop(gauge);
            if now == 0 {
                self.check_findings.remove(&labels);
            }
        }
        self.apply_score(key, c, sign);
        self.apply_drift(namespace, c, sign);
    }

    /// Adds or takes away a report's drifted findings from its namespace's.
    fn apply_drift(&self, namespace: &str, c: &Contribution, sign: i64) {
        let count = i64::from(c.summary().drift);
        if count == 0 {
            return;
        }
        let labels = NamespaceLabels {
            namespace: namespace.to_owned(),
        };
        let gauge = self.drift_findings.get_or_create(&labels);
        let now = gauge.inc_by(sign * count) + sign * count;
        drop(gauge);
        if now == 0 {
            self.drift_findings.remove(&labels);
        }
    }

    /// Adds (`sign` 1) or takes away (-1) a report's score from its
    /// namespace's mean and, for a ServiceAccount, sets or clears its risk.
    fn apply_score(&self, key: &TargetKey, c: &Contribution, sign: i64) {
        let score = i64::from(c.summary().score);
        let namespace = key.namespace.clone().unwrap_or_default();
        let labels = NamespaceLabels {
            namespace: namespace.clone(),
        };
        let mut tallies = self.namespace_scores.lock().expect("metrics lock");
        let tally = tallies.entry(namespace).or_default();
        tally.sum += sign * score;
        tally.reports += sign;
        if tally.reports > 0 {
            let mean = tally.sum / tally.reports;
            self.namespace_score.get_or_create(&labels).set(mean);
        } else {
            tallies.remove(&labels.namespace);
            self.namespace_score.remove(&labels);
        }
        drop(tallies);
        if c.kind() == TargetKind::ServiceAccount {
            let labels = ServiceAccountLabels {
                namespace: labels.namespace,
                serviceaccount: key.name.clone(),
            };
            if sign > 0 && score < 100 {
                self.serviceaccount_risk
                    .get_or_create(&labels)
                    .set(100 - score);
            } else {
                self.serviceaccount_risk.remove(&labels);
            }
        }
    }

    /// Every sample name a scrape can show (counters end in `_total`,
    /// histograms show `_bucket`, `_sum` and `_count`), so that alert rules
    /// and dashboards can be checked against it. A scrape leaves out label
    /// families without samples, so each gets a placeholder one here.
    pub fn exposed_names() -> BTreeSet<String> {
        let metrics = Metrics::new();
        let any = String::new;
        metrics
            .findings
            .get_or_create(&FindingLabels {
                namespace: any(),
                severity: any(),
                category: any(),
            })
            .set(0);
        metrics
            .reports
            .get_or_create(&KindLabels { kind: any() })
            .set(0);
        metrics.evaluation("placeholder");
        metrics.write("placeholder", "placeholder");
        metrics.watch_restart("placeholder");
        metrics.error("placeholder");
        metrics.api_retry("placeholder");
        metrics.report_restored("placeholder");
        metrics
            .check_findings
            .get_or_create(&CheckLabels {
                check: any(),
                severity: any(),
            })
            .set(0);
        metrics
            .namespace_score
            .get_or_create(&NamespaceLabels { namespace: any() })
            .set(0);
        metrics
            .serviceaccount_risk
            .get_or_create(&ServiceAccountLabels {
                namespace: any(),
                serviceaccount: any(),
            })
            .set(0);
        metrics.posture.placeholders();
        metrics
            .drift_findings
            .get_or_create(&NamespaceLabels { namespace: any() })
            .set(0);
        metrics
            .encode()
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split(['{', ' ']).next())
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Summary;
    use crate::engine::{Finding, Severity};
    use crate::model::ObjectRef;
    use crate::operator::report::summarize;
    use crate::operator::totals::ClusterTally;

    fn finding(check_id: &str, severity: Severity) -> Finding {
        let check = crate::checks::catalog()
            .iter()
            .copied()
            .find(|c| c.id == check_id)
            .expect("check in the catalog");
        Finding {
            object: ObjectRef {
                api_version: "v1".into(),
                kind: "ServiceAccount".into(),
                namespace: Some("ns".into()),
                name: "sa".into(),
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

    fn sample(text: &str, name_and_labels: &str) -> Option<i64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
    }

    #[test]
    fn per_check_namespace_and_serviceaccount_gauges_follow_reports() {
        let metrics = Metrics::new();
        let mut tally = ClusterTally::default();
        let mut set_target = |key: &TargetKey, findings: &[Finding]| {
            let next = Contribution::new(key.kind, findings, &summarize(findings));
            let previous = tally.set(key.clone(), next.clone());
            metrics.replace_target(key, previous.as_ref(), Some(&next));
        };
        let sa = TargetKey::new(TargetKind::ServiceAccount, Some("ns"), "sa");
        let clean = TargetKey::new(TargetKind::Deployment, Some("ns"), "web");
        let risky = vec![finding("privileged-container", Severity::High)];
        set_target(&sa, &risky);
        set_target(&clean, &[]);
        let text = metrics.encode();
        let check = r#"palisade_check_findings{check="privileged-container",severity="high"}"#;
        assert_eq!(sample(&text, check), Some(1));
        // (80 + 100) / 2 reports.
        assert_eq!(
            sample(&text, r#"palisade_namespace_score{namespace="ns"}"#),
            Some(90)
        );
        let risk = r#"palisade_serviceaccount_risk{namespace="ns",serviceaccount="sa"}"#;
        assert_eq!(sample(&text, risk), Some(20));

        set_target(&sa, &[]);
        let mut remove_target = |key: &TargetKey| {
            metrics.replace_target(key, tally.remove(key).as_ref(), None);
        };
        remove_target(&clean);
        let text = metrics.encode();
        assert_eq!(sample(&text, check), None);
        assert_eq!(sample(&text, risk), None);
        assert_eq!(
            sample(&text, r#"palisade_namespace_score{namespace="ns"}"#),
            Some(100)
        );
        remove_target(&sa);
        assert!(!metrics.encode().contains("palisade_namespace_score{"));
    }

    #[test]
    fn drift_findings_are_summed_per_namespace_and_leave_with_their_reports() {
        let metrics = Metrics::new();
        let web = TargetKey::new(TargetKind::Deployment, Some("shop"), "web");
        let api = TargetKey::new(TargetKind::Deployment, Some("shop"), "api");
        let drifted = |n: u32| Summary {
            drift: n,
            ..Summary::default()
        };
        let gauge = r#"palisade_drift_findings{namespace="shop"}"#;
        let mut tally = ClusterTally::default();
        let mut set_target = |key: &TargetKey, summary: &Summary| {
            let next = Contribution::new(key.kind, &[], summary);
            let previous = tally.set(key.clone(), next.clone());
            metrics.replace_target(key, previous.as_ref(), Some(&next));
        };
        set_target(&web, &drifted(2));
        set_target(&api, &drifted(1));
        assert_eq!(sample(&metrics.encode(), gauge), Some(3));
        set_target(&web, &drifted(0));
        assert_eq!(sample(&metrics.encode(), gauge), Some(1));
        let previous = tally.remove(&api);
        metrics.replace_target(&api, previous.as_ref(), None);
        assert_eq!(
            sample(&metrics.encode(), gauge),
            None,
            "no zero series left"
        );
    }

    #[test]
    fn exposed_names_cover_every_family_with_scrape_suffixes() {
        let names = Metrics::exposed_names();
        for name in [
            "palisade_findings",
            "palisade_evaluations_total",
            "palisade_evaluation_duration_seconds_bucket",
            "palisade_evaluation_duration_seconds_count",
            "palisade_watch_restarts_total",
            "palisade_errors_total",
            "palisade_last_full_resync_timestamp_seconds",
            "palisade_serviceaccount_risk",
            "palisade_api_throttled_total",
            "palisade_api_retries_total",
            "palisade_api_timeouts_total",
            "palisade_reports_restored_total",
            "palisade_drift_findings",
        ] {
            assert!(names.contains(name), "{name} in {names:?}");
        }
        assert!(!names.contains("palisade_evaluations"));
    }
}
