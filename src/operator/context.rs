//! State shared by every part of the operator.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

use kube::Client;
use sha2::{Digest, Sha256};

use super::events::EventPublisher;
use super::metrics::Metrics;
use super::openreports::OpenReports;
use super::queue::WorkQueue;
use super::rbac_cache::RbacCache;
use super::stores::{Stores, SyncState};
use super::target::{TargetKey, TargetKind};
use super::totals::{ClusterTally, Contribution};
use super::writer::WrittenDigests;
use crate::crd::ScanPolicySpec;
use crate::crd::scan_policy::NamespaceSelection;
use crate::model::KindTable;
use crate::policy::Policy;

pub struct Context {
    pub client: Client,
    pub stores: Stores,
    pub sync: Arc<SyncState>,
    pub queue: WorkQueue,
    pub metrics: Arc<Metrics>,
    /// What every report contributes to the cluster-wide totals.
    pub totals: Mutex<ClusterTally>,
    pub events: EventPublisher,
    pub scope: Scope,
    pub policy: PolicyState,
    pub rbac: RbacCache,
    /// What this replica last wrote to each report.
    pub written: WrittenDigests,
    /// Present with `--emit-openreports`.
    pub openreports: Option<Arc<OpenReports>>,
}

impl Context {
    /// Records `key`'s findings in the cluster-wide totals and the gauges.
    pub fn record_target(
        &self,
        key: &TargetKey,
        findings: &[crate::engine::Finding],
        summary: &crate::crd::scan_report::Summary,
    ) {
        let next = Contribution::new(key.kind, findings, summary);
        let previous = self
            .totals
            .lock()
            .expect("totals lock")
            .set(key.clone(), next.clone());
        self.metrics
            .replace_target(key, previous.as_ref(), Some(&next));
    }

    /// Takes `key` out of the totals and the gauges (its report is gone).
    pub fn forget_target(&self, key: &TargetKey) {
        let previous = self.totals.lock().expect("totals lock").remove(key);
        self.metrics.replace_target(key, previous.as_ref(), None);
    }
}

/// Which namespaces the flags allow; the ScanPolicy can narrow it further.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// `--namespaces`; `None` means the whole cluster.
    pub include: Option<BTreeSet<String>>,
    /// `--exclude-namespaces`.
    pub exclude: BTreeSet<String>,
}

impl Scope {
    pub fn new(include: &[String], exclude: &[String]) -> Scope {
        let clean = |v: &[String]| -> BTreeSet<String> {
            v.iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        let include = clean(include);
        Scope {
            include: (!include.is_empty()).then_some(include),
            exclude: clean(exclude),
        }
    }

    /// Whether the operator watches the whole cluster (and so reports
    /// cluster-scoped RBAC).
    pub fn cluster_wide(&self) -> bool {
        self.include.is_none()
    }

    /// The namespaces to watch one by one, when limited.
    pub fn watched_namespaces(&self) -> Option<Vec<String>> {
        self.include.as_ref().map(|set| {
            set.iter()
                .filter(|ns| !self.exclude.contains(*ns))
                .cloned()
                .collect()
        })
    }

    pub fn namespace_in_scope(&self, namespace: &str, policy: &NamespaceSelection) -> bool {
        let flags = self
            .include
            .as_ref()
            .is_none_or(|set| set.contains(namespace))
            && !self.exclude.contains(namespace);
        let by_policy = (policy.include.is_empty()
            || policy.include.iter().any(|n| n == namespace))
            && !policy.exclude.iter().any(|n| n == namespace);
        flags && by_policy
    }

    /// Whether reports of `key` belong to this operator at all: those of
    /// namespaces outside `--namespaces`, and cluster-scoped RBAC when
    /// limited to namespaces, are left alone (another instance may own them).
    pub fn owns(&self, key: &TargetKey) -> bool {
        let Some(include) = &self.include else {
            return true;
        };
        match key.kind {
            TargetKind::ClusterRole | TargetKind::ClusterRoleBinding => false,
            TargetKind::Namespace => include.contains(&key.name),
            _ => key
                .namespace
                .as_ref()
                .is_some_and(|ns| include.contains(ns)),
        }
    }

    pub fn key_in_scope(&self, key: &TargetKey, policy: &NamespaceSelection) -> bool {
        match key.kind {
            TargetKind::ClusterRole | TargetKind::ClusterRoleBinding => self.cluster_wide(),
            TargetKind::Namespace => self.namespace_in_scope(&key.name, policy),
            _ => key
                .namespace
                .as_deref()
                .is_some_and(|ns| self.namespace_in_scope(ns, policy)),
        }
    }
}

/// The ScanPolicy in force.
#[derive(Clone, Debug)]
pub struct ActivePolicy {
    pub spec: ScanPolicySpec,
    /// Short content hash of `spec`, written into every report.
    pub hash: String,
    /// `spec` validated and compiled, once per change of the policy.
    pub compiled: Policy,
    /// The workload kinds: the built-in table and `spec.workloadKinds`.
    pub kinds: Arc<KindTable>,
}

impl ActivePolicy {
    pub fn new(spec: ScanPolicySpec, compiled: Policy, kinds: KindTable) -> ActivePolicy {
        let bytes = serde_json::to_vec(&spec).expect("a policy serializes");
        let hash = Sha256::digest(&bytes)[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        ActivePolicy {
            spec,
            hash,
            compiled,
            kinds: Arc::new(kinds),
        }
    }

    /// The engine's policy at `now` (which decides expired exceptions).
    pub fn at(&self, now: jiff::Timestamp) -> Policy {
        self.compiled.at(now)
    }
}

pub struct PolicyState {
    pub name: String,
    active: RwLock<Arc<ActivePolicy>>,
    /// Why the current ScanPolicy object was rejected, if it was.
    problem: Mutex<Option<String>>,
    changed: tokio::sync::Notify,
}

impl PolicyState {
    pub fn new(name: &str) -> PolicyState {
        PolicyState {
            name: name.to_owned(),
            active: RwLock::new(Arc::new(ActivePolicy::new(
                ScanPolicySpec::default(),
                Policy::default(),
                KindTable::default(),
            ))),
            problem: Mutex::new(None),
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Completes when the policy in force changes next.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    pub fn active(&self) -> Arc<ActivePolicy> {
        self.active.read().expect("policy lock").clone()
    }

    pub fn problem(&self) -> Option<String> {
        self.problem.lock().expect("policy lock").clone()
    }

    /// Keeps the last valid policy in force and records why the current
    /// ScanPolicy object is not taken (it cannot be decoded).
    pub fn reject(&self, message: String) {
        let mut problem = self.problem.lock().expect("policy lock");
        if problem.as_deref() != Some(message.as_str()) {
            tracing::warn!(policy = %self.name, error = %message, "ScanPolicy rejected; keeping the last valid one");
        }
        *problem = Some(message);
    }

    /// Takes `spec` (or the defaults, when the ScanPolicy is absent) if it
    /// is valid, else keeps the last valid policy and records the problem.
    /// Returns true when the policy in force changed.
    pub fn update(&self, spec: Option<&ScanPolicySpec>) -> bool {
        let default = ScanPolicySpec::default();
        let spec = spec.unwrap_or(&default);
        let validated = Policy::from_spec(spec, crate::checks::catalog(), None)
            .map_err(|e| e.to_string())
            .and_then(|compiled| Ok((compiled, spec.kind_table().map_err(|e| e.to_string())?)));
        let mut problem = self.problem.lock().expect("policy lock");
        match validated {
            Err(message) => {
                if problem.as_deref() != Some(message.as_str()) {
                    tracing::warn!(policy = %self.name, error = %message, "ScanPolicy rejected; keeping the last valid one");
                }
                *problem = Some(message);
                false
            }
            Ok((compiled, kinds)) => {
                *problem = None;
                let next = ActivePolicy::new(spec.clone(), compiled, kinds);
                let mut active = self.active.write().expect("policy lock");
                if active.hash == next.hash {
                    return false;
                }
                tracing::info!(policy = %self.name, hash = %next.hash, "ScanPolicy in force");
                super::target::set_workload_kinds(next.kinds.clone());
                *active = Arc::new(next);
                drop(active);
                self.changed.notify_waiters();
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::scan_policy::{CheckSelection, Exception};

    #[test]
    fn scope_by_flags_and_policy() {
        let scope = Scope::new(&["a".into(), "b".into()], &["b".into()]);
        let any = NamespaceSelection::default();
        assert!(scope.namespace_in_scope("a", &any));
        assert!(!scope.namespace_in_scope("b", &any), "excluded by flag");
        assert!(!scope.namespace_in_scope("c", &any), "not included");
        assert!(!scope.cluster_wide());
        assert_eq!(scope.watched_namespaces(), Some(vec!["a".to_owned()]));
        let cluster = TargetKey::new(TargetKind::ClusterRole, None, "admin");
        assert!(!scope.key_in_scope(&cluster, &any));

        let all = Scope::new(&[], &[]);
        let policy = NamespaceSelection {
            include: vec![],
            exclude: vec!["kube-system".into()],
        };
        assert!(all.key_in_scope(&cluster, &policy));
        assert!(!all.namespace_in_scope("kube-system", &policy));
        assert!(all.namespace_in_scope("default", &policy));
    }

    #[test]
    fn an_invalid_policy_keeps_the_last_valid_one() {
        let state = PolicyState::new("default");
        let initial = state.active().hash.clone();
        let good = ScanPolicySpec {
            exceptions: vec![Exception {
                checks: vec!["privileged-container".into()],
                reason: "test".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(state.update(Some(&good)));
        let good_hash = state.active().hash.clone();
        assert_ne!(good_hash, initial);
        assert!(!state.update(Some(&good)), "same policy: no change");

        let bad = ScanPolicySpec {
            checks: CheckSelection {
                enabled: vec!["no-such-check".into()],
                disabled: vec![],
            },
            ..Default::default()
        };
        assert!(!state.update(Some(&bad)));
        assert_eq!(state.active().hash, good_hash);
        assert!(state.problem().unwrap().contains("no-such-check"));

        let bad_kind = ScanPolicySpec {
            workload_kinds: vec![crate::crd::scan_policy::WorkloadKindSpec {
                group: "example.com".into(),
                versions: vec!["v1".into()],
                kind: "Widget".into(),
                plural: "Widgets".into(),
                pod_template: "spec.template".into(),
                inline_pod_spec: false,
                cached: true,
            }],
            ..Default::default()
        };
        assert!(!state.update(Some(&bad_kind)));
        assert_eq!(state.active().hash, good_hash);
        assert!(
            state
                .problem()
                .unwrap()
                .starts_with("spec.workloadKinds[0].plural:"),
            "{:?}",
            state.problem()
        );

        assert!(
            state.update(None),
            "deleting the policy returns to the defaults"
        );
        assert_eq!(state.active().hash, initial);
        assert!(state.problem().is_none());
    }
}
