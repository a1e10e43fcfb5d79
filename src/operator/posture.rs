//! The posture section of a Namespace's ClusterScanReport, and its metrics.
//!
//! A Namespace's evaluation also judges every object of the namespace (from
//! the caches, like any evaluation), so that the posture's framework pass
//! rates count them with the policy in force.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::context::Context;
use super::snapshot;
use super::target::{TargetKey, TargetKind};
use super::triggers;
use crate::crd::cluster_scan_report::{NamespacePosture, PodSecurityLevel};
use crate::engine::{self, Finding};
use crate::policy::Policy;
use crate::posture;

/// The posture of the namespace `key` names; `None` for other targets.
pub fn of_target(ctx: &Context, key: &TargetKey, policy: &Policy) -> Option<NamespacePosture> {
    if key.kind != TargetKind::Namespace {
        return None;
    }
    let inventory = snapshot::inventory_for(&ctx.stores, key, None);
    let analysis = ctx.rbac.get(&ctx.stores, |accounts| {
        triggers::enqueue_named_accounts(ctx, accounts);
    });
    let cx = engine::Context::with_rbac(&inventory, &analysis);
    let catalog = crate::checks::catalog();
    let findings: Vec<Finding> = posture::subjects_in(&inventory, &key.name)
        .flat_map(|subject| engine::evaluate_subject(&subject, &cx, catalog, policy))
        .collect();
    let posture = posture::namespace_posture(&key.name, &cx, &findings, catalog, policy);
    ctx.metrics.posture.set(&key.name, &posture);
    Some(posture)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PostureLabels {
    pub namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FrameworkLabels {
    pub namespace: String,
    pub framework: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StandingLabels {
    pub namespace: String,
    pub framework: String,
    /// `passing`, `failing` or `suppressed`.
    pub standing: String,
}

/// Per-namespace posture gauges; a namespace's samples go when its report does.
#[derive(Default)]
pub struct PostureMetrics {
    pub level_met: Family<PostureLabels, Gauge>,
    pub level_enforced: Family<PostureLabels, Gauge>,
    pub blocking: Family<PostureLabels, Gauge>,
    pub pass_percent: Family<FrameworkLabels, Gauge>,
    pub objects: Family<StandingLabels, Gauge>,
    /// The frameworks each namespace has samples for, to remove them.
    frameworks: Mutex<HashMap<String, BTreeSet<String>>>,
}

const STANDINGS: [&str; 3] = ["passing", "failing", "suppressed"];

/// 0 privileged, 1 baseline, 2 restricted.
fn level_value(level: PodSecurityLevel) -> i64 {
    match level {
        PodSecurityLevel::Privileged => 0,
        PodSecurityLevel::Baseline => 1,
        PodSecurityLevel::Restricted => 2,
    }
}

impl PostureMetrics {
    /// Registers the families in `registry` (prefix `palisade_namespace_`).
    pub fn register(registry: &mut Registry) -> PostureMetrics {
        let metrics = PostureMetrics::default();
        registry.register(
            "namespace_pss_level_met",
            "Highest Pod Security level every workload of the namespace meets: 0 privileged, 1 baseline, 2 restricted",
            metrics.level_met.clone(),
        );
        registry.register(
            "namespace_pss_level_enforced",
            "The namespace's pod-security.kubernetes.io/enforce level: 0 privileged (or unlabelled), 1 baseline, 2 restricted; absent when the label is invalid",
            metrics.level_enforced.clone(),
        );
        registry.register(
            "namespace_pss_blocking_workloads",
            "Workloads of the namespace that fail the Pod Security level above the one met",
            metrics.blocking.clone(),
        );
        registry.register(
            "namespace_framework_pass_percent",
            "Percentage of the namespace's objects that pass every check of a framework (accepted risk does not pass)",
            metrics.pass_percent.clone(),
        );
        registry.register(
            "namespace_framework_objects",
            "The namespace's objects per framework by standing: passing, failing, or suppressed (only accepted-risk findings)",
            metrics.objects.clone(),
        );
        metrics
    }

    /// Replaces the samples of `namespace`.
    pub fn set(&self, namespace: &str, posture: &NamespacePosture) {
        self.remove(namespace);
        let labels = PostureLabels {
            namespace: namespace.to_owned(),
        };
        self.level_met
            .get_or_create(&labels)
            .set(level_value(posture.level_met));
        if let Some(enforced) = PodSecurityLevel::parse(&posture.enforce.level) {
            self.level_enforced
                .get_or_create(&labels)
                .set(level_value(enforced));
        }
        self.blocking
            .get_or_create(&labels)
            .set(i64::from(posture.blocking_total));
        let mut frameworks = BTreeSet::new();
        for rate in &posture.frameworks {
            let framework = FrameworkLabels {
                namespace: namespace.to_owned(),
                framework: rate.framework.clone(),
            };
            self.pass_percent
                .get_or_create(&framework)
                .set(i64::from(rate.pass_percent));
            for (standing, count) in
                STANDINGS
                    .into_iter()
                    .zip([rate.passing, rate.failing, rate.suppressed])
            {
                self.objects
                    .get_or_create(&standing_labels(namespace, &rate.framework, standing))
                    .set(i64::from(count));
            }
            frameworks.insert(rate.framework.clone());
        }
        self.frameworks
            .lock()
            .expect("metrics lock")
            .insert(namespace.to_owned(), frameworks);
    }

    /// Removes every sample of `namespace`.
    pub fn remove(&self, namespace: &str) {
        let labels = PostureLabels {
            namespace: namespace.to_owned(),
        };
        self.level_met.remove(&labels);
        self.level_enforced.remove(&labels);
        self.blocking.remove(&labels);
        let frameworks = self
            .frameworks
            .lock()
            .expect("metrics lock")
            .remove(namespace);
        for framework in frameworks.into_iter().flatten() {
            self.pass_percent.remove(&FrameworkLabels {
                namespace: namespace.to_owned(),
                framework: framework.clone(),
            });
            for standing in STANDINGS {
                self.objects
                    .remove(&standing_labels(namespace, &framework, standing));
            }
        }
    }

    /// Placeholder samples of every family (see `Metrics::exposed_names`).
    pub fn placeholders(&self) {
        let mut posture = NamespacePosture {
            frameworks: vec![Default::default()],
            ..NamespacePosture::default()
        };
        posture.enforce.level = PodSecurityLevel::Privileged.as_str().to_owned();
        self.set("", &posture);
    }
}

fn standing_labels(namespace: &str, framework: &str, standing: &str) -> StandingLabels {
    StandingLabels {
        namespace: namespace.to_owned(),
        framework: framework.to_owned(),
        standing: standing.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::cluster_scan_report::NamespaceFrameworkRate;

    fn encode(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn samples_follow_the_posture_and_go_with_the_namespace() {
        let mut registry = Registry::with_prefix("palisade");
        let metrics = PostureMetrics::register(&mut registry);
        let mut posture = NamespacePosture {
            level_met: PodSecurityLevel::Baseline,
            blocking_total: 3,
            frameworks: vec![NamespaceFrameworkRate {
                framework: "pss".into(),
                passing: 1,
                failing: 2,
                suppressed: 1,
                total: 4,
                pass_percent: 25,
            }],
            ..NamespacePosture::default()
        };
        posture.enforce.level = "restricted".into();
        metrics.set("team-a", &posture);
        let text = encode(&registry);
        for line in [
            "palisade_namespace_pss_level_met{namespace=\"team-a\"} 1",
            "palisade_namespace_pss_level_enforced{namespace=\"team-a\"} 2",
            "palisade_namespace_pss_blocking_workloads{namespace=\"team-a\"} 3",
            "palisade_namespace_framework_pass_percent{namespace=\"team-a\",framework=\"pss\"} 25",
            "palisade_namespace_framework_objects{namespace=\"team-a\",framework=\"pss\",standing=\"suppressed\"} 1",
            "palisade_namespace_framework_objects{namespace=\"team-a\",framework=\"pss\",standing=\"failing\"} 2",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        // An invalid enforce label has no enforced level.
        posture.enforce.level = "strict".into();
        metrics.set("team-a", &posture);
        assert!(!encode(&registry).contains("level_enforced{namespace=\"team-a\"}"));
        metrics.remove("team-a");
        assert!(!encode(&registry).contains("team-a"));
    }
}
