//! Which targets a watch event makes stale.
//!
//! A workload change re-evaluates the workload; a ServiceAccount change also
//! the workloads running as it; an RBAC change the binding or role itself,
//! the ServiceAccounts its bindings name, and the workloads running as those
//! accounts; a NetworkPolicy or Namespace change the namespace and its
//! workloads; a ScanPolicy change everything.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::context::Context;
use super::custom;
use super::packed::PodFacts;
use super::snapshot::{self, PodTemplated, for_each_workload};
use super::stores::Change;
use super::target::{TargetKey, TargetKind, is_top_level};
use crate::model::WorkloadKind;

pub fn on_change(ctx: &Context, change: Change) {
    match change {
        Change::Pod(o) => workload(ctx, &o.metadata, &*o),
        Change::ReplicaSet(o) => workload(ctx, &o.metadata, &*o),
        Change::Deployment(o) => workload(ctx, &o.metadata, &*o),
        Change::StatefulSet(o) => workload(ctx, &o.metadata, &*o),
        Change::DaemonSet(o) => workload(ctx, &o.metadata, &*o),
        Change::Job(o) => workload(ctx, &o.metadata, &*o),
        Change::CronJob(o) => workload(ctx, &o.metadata, &*o),
        Change::ReplicationController(o) => workload(ctx, &o.metadata, &*o),
        Change::ServiceAccount(sa) => {
            ctx.rbac.invalidate();
            let mut accounts = Accounts::default();
            accounts.add_named(
                sa.metadata.namespace.as_deref(),
                sa.metadata.name.as_deref(),
            );
            enqueue_accounts(ctx, &accounts);
        }
        Change::Role(role) => {
            ctx.rbac.invalidate();
            enqueue(ctx, TargetKey::from_meta(TargetKind::Role, &role.metadata));
            let ns = role.metadata.namespace.clone().unwrap_or_default();
            let name = role.metadata.name.clone().unwrap_or_default();
            let mut accounts = Accounts::default();
            for rb in ctx.stores.role_bindings.in_namespace(&ns) {
                if refers_to(&rb.role_ref, "Role", &name) {
                    enqueue(
                        ctx,
                        TargetKey::from_meta(TargetKind::RoleBinding, &rb.metadata),
                    );
                    accounts.add_subjects(Some(&ns), rb.subjects.iter().flatten());
                }
            }
            enqueue_accounts(ctx, &accounts);
        }
        Change::RoleBinding(rb) => {
            ctx.rbac.invalidate();
            enqueue(
                ctx,
                TargetKey::from_meta(TargetKind::RoleBinding, &rb.metadata),
            );
            let mut accounts = Accounts::default();
            accounts.add_subjects(
                rb.metadata.namespace.as_deref(),
                rb.subjects.iter().flatten(),
            );
            enqueue_accounts(ctx, &accounts);
        }
        Change::ClusterRole(role) => {
            ctx.rbac.invalidate();
            enqueue(
                ctx,
                TargetKey::from_meta(TargetKind::ClusterRole, &role.metadata),
            );
            let name = role.metadata.name.clone().unwrap_or_default();
            let mut accounts = Accounts::default();
            for crb in ctx.stores.cluster_role_bindings.all() {
                if refers_to(&crb.role_ref, "ClusterRole", &name) {
                    enqueue(
                        ctx,
                        TargetKey::from_meta(TargetKind::ClusterRoleBinding, &crb.metadata),
                    );
                    accounts.add_subjects(None, crb.subjects.iter().flatten());
                }
            }
            for rb in ctx.stores.role_bindings.all() {
                if refers_to(&rb.role_ref, "ClusterRole", &name) {
                    enqueue(
                        ctx,
                        TargetKey::from_meta(TargetKind::RoleBinding, &rb.metadata),
                    );
                    accounts.add_subjects(
                        rb.metadata.namespace.as_deref(),
                        rb.subjects.iter().flatten(),
                    );
                }
            }
            enqueue_accounts(ctx, &accounts);
        }
        Change::ClusterRoleBinding(crb) => {
            ctx.rbac.invalidate();
            enqueue(
                ctx,
                TargetKey::from_meta(TargetKind::ClusterRoleBinding, &crb.metadata),
            );
            let mut accounts = Accounts::default();
            accounts.add_subjects(None, crb.subjects.iter().flatten());
            enqueue_accounts(ctx, &accounts);
        }
        Change::NetworkPolicy(np) => {
            if let Some(ns) = np.metadata.namespace.as_deref() {
                namespace_and_contents(ctx, ns, false);
            }
        }
        Change::Namespace(ns) => {
            if let Some(name) = ns.metadata.name.as_deref() {
                namespace_and_contents(ctx, name, true);
            }
        }
        Change::ScanPolicy(policy) => {
            if policy.metadata.name.as_deref() == Some(ctx.policy.name.as_str()) {
                refresh_policy(ctx);
            }
        }
        Change::ReportDeleted {
            api_version,
            kind,
            namespace,
            name,
        } => {
            if let Some(kind) = TargetKind::from_target(&api_version, &kind) {
                let key = TargetKey::new(kind, namespace.as_deref(), &name);
                ctx.written.forget(&key);
                enqueue(ctx, key);
            }
        }
        Change::ReportUpdated {
            api_version,
            kind,
            namespace,
            name,
            digest,
            version,
            has_status,
        } => {
            // A report that differs from what was written to it (edited by
            // hand, or by another writer) is restored.
            if let Some(kind) = TargetKind::from_target(&api_version, &kind) {
                let key = TargetKey::new(kind, namespace.as_deref(), &name);
                if ctx
                    .written
                    .differs(&key, digest.as_deref(), version, has_status)
                {
                    enqueue(ctx, key);
                }
            }
        }
        Change::AccessChanged | Change::AdmissionPolicy => enqueue_all(ctx),
    }
}

/// Re-reads the ScanPolicy; a change of the policy in force re-evaluates
/// everything.
pub fn refresh_policy(ctx: &Context) {
    let undecodable = ctx
        .stores
        .undecodable
        .error("scanpolicies", None, &ctx.policy.name);
    if let Some(error) = undecodable {
        ctx.policy.reject(format!("cannot decode {error}"));
        return;
    }
    let object = ctx.stores.scan_policies.get(None, &ctx.policy.name);
    if ctx.policy.update(object.as_ref().map(|p| &p.spec)) {
        enqueue_all(ctx);
    }
}

fn enqueue(ctx: &Context, key: TargetKey) {
    if ctx.scope.owns(&key) {
        ctx.queue.enqueue(key);
    }
}

/// A workload event: its own key when it is top-level, or when it has a
/// report from when it was (so the report gets removed).
fn workload<K: PodTemplated>(ctx: &Context, meta: &ObjectMeta, object: &K) {
    let kind = K::target_kind();
    let key = TargetKey::from_meta(kind, meta);
    let top_level = is_top_level(kind, meta);
    // The cache already reflects the event: absent means deleted.
    let live = top_level && snapshot::exists(&ctx.stores, &key);
    let facts = object.pod_spec().filter(|_| live).map(PodFacts::of);
    ctx.rbac.workload_changed(&key, facts.as_ref());
    if top_level && let Some(namespace) = meta.namespace.as_deref() {
        // The namespace's posture judges every top-level pod template in it.
        enqueue(ctx, TargetKey::new(TargetKind::Namespace, None, namespace));
    }
    if kind == TargetKind::Deployment {
        enqueue_referencing(ctx, meta);
    }
    if top_level || has_report(ctx, &key) {
        enqueue(ctx, key);
    }
}

/// The workloads that run a Deployment's template (Argo Rollouts with a
/// `spec.workloadRef`) are stale when it changes.
fn enqueue_referencing(ctx: &Context, deployment: &ObjectMeta) {
    let name = deployment.name.as_deref().unwrap_or_default();
    for object in ctx.stores.custom.all(deployment.namespace.as_deref()) {
        if object.references("apps", "Deployment", name) {
            enqueue(ctx, object.key());
        }
    }
}

/// Hears the watches of the kinds outside Kubernetes' own groups.
pub struct CustomTriggers(pub Arc<Context>);

impl custom::Listener for CustomTriggers {
    fn changed(&self, key: TargetKey, facts: Option<PodFacts>, top_level: bool) {
        let ctx = &self.0;
        // The cache already reflects the event: absent means deleted.
        let live = top_level && snapshot::exists(&ctx.stores, &key);
        ctx.rbac
            .workload_changed(&key, facts.filter(|_| live).as_ref());
        if top_level || has_report(ctx, &key) {
            enqueue(ctx, key);
        }
    }

    fn kind_gone(&self, kind: &'static WorkloadKind, keys: Vec<TargetKey>) {
        let ctx = &self.0;
        for key in keys {
            ctx.rbac.workload_changed(&key, None);
            enqueue(ctx, key);
        }
        // Reports of objects that were never cached (or under an older
        // table) go too: their targets are looked up and found gone.
        let gone = TargetKind::Custom(kind);
        for report in ctx.stores.scan_reports.all() {
            if let Some(key) = report.facts().clone().filter(|k| k.kind == gone) {
                enqueue(ctx, key);
            }
        }
    }

    fn kinds_changed(&self) {
        tracing::debug!("watched workload kinds changed");
    }
}

fn has_report(ctx: &Context, key: &TargetKey) -> bool {
    let name = key.report_name();
    match &key.namespace {
        Some(ns) => ctx.stores.scan_reports.get(Some(ns), &name).is_some(),
        None => ctx.stores.cluster_scan_reports.get(None, &name).is_some(),
    }
}

fn refers_to(role_ref: &RoleRef, kind: &str, name: &str) -> bool {
    role_ref.kind == kind && role_ref.name == name
}

/// ServiceAccounts named (directly or through a group) by RBAC subjects.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Accounts {
    all: bool,
    namespaces: BTreeSet<String>,
    named: BTreeSet<(String, String)>,
}

impl Accounts {
    fn add_named(&mut self, namespace: Option<&str>, name: Option<&str>) {
        if let (Some(ns), Some(name)) = (namespace, name) {
            self.named.insert((ns.to_owned(), name.to_owned()));
        }
    }

    /// Adds the accounts `subjects` name; `binding_namespace` is the
    /// default namespace of ServiceAccount subjects (a RoleBinding's own).
    pub fn add_subjects<'a>(
        &mut self,
        binding_namespace: Option<&str>,
        subjects: impl IntoIterator<Item = &'a Subject>,
    ) {
        for s in subjects {
            match s.kind.as_str() {
                "ServiceAccount" => {
                    let ns = s
                        .namespace
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .or(binding_namespace);
                    self.add_named(ns, Some(&s.name));
                }
                "Group" => match s.name.as_str() {
                    "system:serviceaccounts" | "system:authenticated" => self.all = true,
                    group => {
                        if let Some(ns) = group.strip_prefix("system:serviceaccounts:") {
                            self.namespaces.insert(ns.to_owned());
                        }
                    }
                },
                "User" => {
                    if let Some((ns, name)) = s
                        .name
                        .strip_prefix("system:serviceaccount:")
                        .and_then(|rest| rest.split_once(':'))
                    {
                        self.add_named(Some(ns), Some(name));
                    }
                }
                _ => {}
            }
        }
    }

    pub fn contains(&self, namespace: &str, name: &str) -> bool {
        self.all
            || self.namespaces.contains(namespace)
            || self
                .named
                .contains(&(namespace.to_owned(), name.to_owned()))
    }

    fn is_empty(&self) -> bool {
        !self.all && self.namespaces.is_empty() && self.named.is_empty()
    }

    /// The namespaces to look in, `None` for all.
    fn namespaces_to_visit(&self) -> Option<BTreeSet<String>> {
        if self.all {
            return None;
        }
        let mut set = self.namespaces.clone();
        set.extend(self.named.iter().map(|(ns, _)| ns.clone()));
        Some(set)
    }
}

/// Queues the given accounts and the workloads that run as them.
pub fn enqueue_named_accounts(ctx: &Context, accounts: Vec<(String, String)>) {
    let mut set = Accounts::default();
    for (ns, name) in accounts {
        set.add_named(Some(&ns), Some(&name));
    }
    enqueue_accounts(ctx, &set);
}

/// Queues the accounts and the workloads that run as them.
fn enqueue_accounts(ctx: &Context, accounts: &Accounts) {
    if accounts.is_empty() {
        return;
    }
    let namespaces: Vec<Option<String>> = match accounts.namespaces_to_visit() {
        None => vec![None],
        Some(set) => set.into_iter().map(Some).collect(),
    };
    for ns in &namespaces {
        let service_accounts = match ns {
            Some(ns) => ctx.stores.service_accounts.in_namespace(ns),
            None => ctx.stores.service_accounts.all(),
        };
        for sa in service_accounts {
            let meta = &sa.metadata;
            let (Some(sa_ns), Some(name)) = (meta.namespace.as_deref(), meta.name.as_deref())
            else {
                continue;
            };
            if accounts.contains(sa_ns, name) {
                enqueue(ctx, TargetKey::from_meta(TargetKind::ServiceAccount, meta));
            }
        }
        for_each_workload(&ctx.stores, ns.as_deref(), &mut |key, w| {
            let account = w.facts().map_or("default", |f| &f.service_account);
            let ns = key.namespace.as_deref().unwrap_or_default();
            if accounts.contains(ns, account) {
                enqueue(ctx, key);
            }
        });
    }
}

/// A namespace's own report and its workloads; with `everything`, also its
/// accounts and RBAC (a Namespace change can move it in or out of scope).
fn namespace_and_contents(ctx: &Context, namespace: &str, everything: bool) {
    enqueue(ctx, TargetKey::new(TargetKind::Namespace, None, namespace));
    for_each_workload(&ctx.stores, Some(namespace), &mut |key, _| {
        enqueue(ctx, key)
    });
    if everything {
        for sa in ctx.stores.service_accounts.in_namespace(namespace) {
            enqueue(
                ctx,
                TargetKey::from_meta(TargetKind::ServiceAccount, &sa.metadata),
            );
        }
        for r in ctx.stores.roles.in_namespace(namespace) {
            enqueue(ctx, TargetKey::from_meta(TargetKind::Role, &r.metadata));
        }
        for rb in ctx.stores.role_bindings.in_namespace(namespace) {
            enqueue(
                ctx,
                TargetKey::from_meta(TargetKind::RoleBinding, &rb.metadata),
            );
        }
    }
}

/// Every target in the caches that this operator owns (in scope or not:
/// keys excluded by the policy delete their reports when evaluated).
pub fn all_targets(ctx: &Context) -> Vec<TargetKey> {
    let stores = &ctx.stores;
    let mut keys = Vec::new();
    for_each_workload(stores, None, &mut |key, _| keys.push(key));
    let mut add = |kind: TargetKind, metas: Vec<&ObjectMeta>| {
        keys.extend(metas.into_iter().map(|m| TargetKey::from_meta(kind, m)));
    };
    let sas = stores.service_accounts.all();
    add(
        TargetKind::ServiceAccount,
        sas.iter().map(|o| &o.metadata).collect(),
    );
    let roles = stores.roles.all();
    add(
        TargetKind::Role,
        roles.iter().map(|o| &o.metadata).collect(),
    );
    let rbs = stores.role_bindings.all();
    add(
        TargetKind::RoleBinding,
        rbs.iter().map(|o| &o.metadata).collect(),
    );
    let namespaces = stores.namespaces.all();
    add(
        TargetKind::Namespace,
        namespaces.iter().map(|o| &o.metadata).collect(),
    );
    let crs = stores.cluster_roles.all();
    add(
        TargetKind::ClusterRole,
        crs.iter().map(|o| &o.metadata).collect(),
    );
    let crbs = stores.cluster_role_bindings.all();
    add(
        TargetKind::ClusterRoleBinding,
        crbs.iter().map(|o| &o.metadata).collect(),
    );
    keys.retain(|k| ctx.scope.owns(k));
    keys
}

pub fn enqueue_all(ctx: &Context) {
    for key in all_targets(ctx) {
        ctx.queue.enqueue(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(kind: &str, name: &str, namespace: Option<&str>) -> Subject {
        Subject {
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.map(Into::into),
            api_group: None,
        }
    }

    #[test]
    fn subjects_name_accounts_directly_and_through_groups() {
        let mut a = Accounts::default();
        a.add_subjects(
            Some("team"),
            &[
                subject("ServiceAccount", "builder", None),
                subject("ServiceAccount", "other", Some("elsewhere")),
                subject("User", "system:serviceaccount:ops:bot", None),
                subject("Group", "system:serviceaccounts:ci", None),
                subject("User", "alice", None),
            ],
        );
        assert!(
            a.contains("team", "builder"),
            "namespace defaults to the binding's"
        );
        assert!(a.contains("elsewhere", "other"));
        assert!(a.contains("ops", "bot"));
        assert!(a.contains("ci", "anything"));
        assert!(!a.contains("team", "other"));
        assert!(!a.contains("default", "alice"));

        let mut all = Accounts::default();
        all.add_subjects(None, &[subject("Group", "system:serviceaccounts", None)]);
        assert!(all.contains("any", "one"));
        assert_eq!(all.namespaces_to_visit(), None);
    }

    #[test]
    fn cluster_role_binding_without_namespace_names_no_account() {
        let mut a = Accounts::default();
        a.add_subjects(None, &[subject("ServiceAccount", "x", None)]);
        assert!(a.is_empty());
    }
}
