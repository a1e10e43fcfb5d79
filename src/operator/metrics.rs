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
use crate::crd::scan_policy::{ClusterTotals, FrameworkPassRate};
use crate::crd::scan_report::Summary;
use crate::engine::Finding;

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

/// What one target contributes to the cluster-wide numbers.
#[derive(Clone, Debug, Default)]
struct Contribution {
    kind: Option<TargetKind>,
    findings: BTreeMap<FindingLabels, i64>,
    summary: Summary,
    failing_frameworks: BTreeSet<String>,
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
    contributions: Mutex<HashMap<TargetKey, Contribution>>,
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
        Metrics {
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
            contributions: Mutex::default(),
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

    pub fn watch_restart(&self, kind: &str) {
        self.watch_restarts
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Replaces what `key` contributes to the findings and report gauges.
    pub fn set_target(&self, key: &TargetKey, findings: &[Finding], summary: &Summary) {
        let mut next = Contribution {
            kind: Some(key.kind),
            summary: summary.clone(),
            ..Contribution::default()
        };
        let namespace = key.namespace.clone().unwrap_or_default();
        for f in findings.iter().filter(|f| !f.is_suppressed()) {
            let labels = FindingLabels {
                namespace: namespace.clone(),
                severity: f.severity.as_str().to_owned(),
                category: f.check.category.as_str().to_owned(),
            };
            *next.findings.entry(labels).or_default() += 1;
            next.failing_frameworks
                .extend(f.check.frameworks.iter().map(|s| (*s).to_owned()));
        }
        let previous = self
            .contributions
            .lock()
            .expect("metrics lock")
            .insert(key.clone(), next.clone());
        self.apply(previous.as_ref(), -1);
        self.apply(Some(&next), 1);
    }

    /// Forgets `key` (its report was deleted).
    pub fn remove_target(&self, key: &TargetKey) {
        let previous = self.contributions.lock().expect("metrics lock").remove(key);
        self.apply(previous.as_ref(), -1);
    }

    fn apply(&self, contribution: Option<&Contribution>, sign: i64) {
        let Some(c) = contribution else { return };
        for (labels, count) in &c.findings {
            let gauge = self.findings.get_or_create(labels);
            let now = gauge.inc_by(sign * count) + sign * count;
            drop(gauge);
            if now == 0 {
                self.findings.remove(labels);
            }
        }
        if let Some(kind) = c.kind {
            self.reports
                .get_or_create(&KindLabels {
                    kind: kind.as_str().to_owned(),
                })
                .inc_by(sign);
        }
    }

    /// Totals and per-framework pass rates over every report, for the
    /// ScanPolicy status. `frameworks` lists every framework of the catalog.
    pub fn totals(&self, frameworks: &BTreeSet<String>) -> (ClusterTotals, Vec<FrameworkPassRate>) {
        let contributions = self.contributions.lock().expect("metrics lock");
        let mut totals = ClusterTotals::default();
        let mut failing: BTreeMap<&str, u32> = BTreeMap::new();
        for c in contributions.values() {
            let s = &c.summary;
            totals.reports += 1;
            totals.compliant += u32::from(s.worst.is_none());
            totals.critical += s.critical;
            totals.high += s.high;
            totals.medium += s.medium;
            totals.low += s.low;
            totals.info += s.info;
            totals.suppressed += s.suppressed;
            for f in &c.failing_frameworks {
                *failing.entry(f.as_str()).or_default() += 1;
            }
        }
        let rates = frameworks
            .iter()
            .map(|framework| {
                let total = totals.reports;
                let passing = total - failing.get(framework.as_str()).copied().unwrap_or(0);
                FrameworkPassRate {
                    framework: framework.clone(),
                    passing,
                    total,
                    pass_percent: (passing * 100).checked_div(total).unwrap_or(100),
                }
            })
            .collect();
        (totals, rates)
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
