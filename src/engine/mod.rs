//! The pure middle: objects and policy in, sorted findings out.
//!
//! No client, no clock, no I/O. The same inventory and policy give the same
//! findings in the same order, byte for byte, in the CLI and the operator.

mod check;
mod finding;
pub mod spool;

use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Severity lives in the model, below every module that grades findings.
pub use crate::model::{Severity, UnknownSeverity};
pub use check::{Alias, Applies, Category, Check, Scope, Tool, alias};
pub use finding::{Finding, Suppression, SuppressionSource, Violation, Violations};

use crate::model::{Inventory, InventoryIndex, ObjectRef, Resource, RetiredObject, Workload};
use crate::policy::Policy;
use crate::rbac::RbacAnalysis;

/// One object a check looks at.
#[derive(Clone, Copy, Debug)]
pub enum Subject<'a> {
    Workload(&'a Workload),
    Namespace(&'a Namespace),
    ServiceAccount(&'a ServiceAccount),
    Role(&'a Role),
    ClusterRole(&'a ClusterRole),
    RoleBinding(&'a RoleBinding),
    ClusterRoleBinding(&'a ClusterRoleBinding),
    /// An object of another kind written with a retired `apiVersion`.
    Retired(&'a RetiredObject),
    ConfigMap(&'a ConfigMap),
}

impl<'a> Subject<'a> {
    pub fn applies(&self) -> Applies {
        match self {
            Subject::Workload(_) => Applies::Workload,
            Subject::Namespace(_) => Applies::Namespace,
            Subject::ServiceAccount(_) => Applies::ServiceAccount,
            Subject::Role(_) | Subject::ClusterRole(_) => Applies::Role,
            Subject::RoleBinding(_) | Subject::ClusterRoleBinding(_) => Applies::Binding,
            Subject::Retired(_) => Applies::Other,
            Subject::ConfigMap(_) => Applies::ConfigMap,
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Subject::Workload(w) => &w.metadata,
            Subject::Namespace(o) => &o.metadata,
            Subject::ServiceAccount(o) => &o.metadata,
            Subject::Role(o) => &o.metadata,
            Subject::ClusterRole(o) => &o.metadata,
            Subject::RoleBinding(o) => &o.metadata,
            Subject::ClusterRoleBinding(o) => &o.metadata,
            Subject::Retired(o) => &o.metadata,
            Subject::ConfigMap(o) => &o.metadata,
        }
    }

    /// An object other than a workload as the subject of its checks:
    /// namespaces, service accounts, roles and bindings.
    pub fn of_object(resource: &'a Resource) -> Option<Subject<'a>> {
        match resource {
            Resource::Namespace(o) => Some(Subject::Namespace(o)),
            Resource::ServiceAccount(o) => Some(Subject::ServiceAccount(o)),
            Resource::Role(o) => Some(Subject::Role(o)),
            Resource::ClusterRole(o) => Some(Subject::ClusterRole(o)),
            Resource::RoleBinding(o) => Some(Subject::RoleBinding(o)),
            Resource::ClusterRoleBinding(o) => Some(Subject::ClusterRoleBinding(o)),
            _ => None,
        }
    }

    pub fn object_ref(&self) -> ObjectRef {
        let rbac = "rbac.authorization.k8s.io/v1";
        match self {
            Subject::Workload(w) => w.object.clone(),
            Subject::Namespace(o) => ObjectRef::new("v1", "Namespace", &o.metadata),
            Subject::ServiceAccount(o) => ObjectRef::new("v1", "ServiceAccount", &o.metadata),
            Subject::Role(o) => ObjectRef::new(rbac, "Role", &o.metadata),
            Subject::ClusterRole(o) => ObjectRef::new(rbac, "ClusterRole", &o.metadata),
            Subject::RoleBinding(o) => ObjectRef::new(rbac, "RoleBinding", &o.metadata),
            Subject::ClusterRoleBinding(o) => {
                ObjectRef::new(rbac, "ClusterRoleBinding", &o.metadata)
            }
            Subject::Retired(o) => o.object_ref(),
            Subject::ConfigMap(o) => ObjectRef::new("v1", "ConfigMap", &o.metadata),
        }
    }
}

/// What checks may look up beyond their subject.
pub struct Context<'a> {
    pub inventory: &'a Inventory,
    /// The RBAC analysis of the inventory, built on first use…
    rbac: OnceLock<RbacAnalysis>,
    /// …unless the caller keeps one up to date and hands it in.
    shared_rbac: Option<&'a RbacAnalysis>,
    /// Lookups by name, built on first use.
    index: OnceLock<InventoryIndex<'a>>,
}

impl<'a> Context<'a> {
    /// The context of one evaluation of `inventory`; the RBAC analysis is
    /// built from it when a check first needs it.
    pub fn new(inventory: &'a Inventory) -> Context<'a> {
        Context {
            inventory,
            rbac: OnceLock::new(),
            shared_rbac: None,
            index: OnceLock::new(),
        }
    }

    /// The same, with an RBAC analysis the caller maintains (the operator
    /// updates one incrementally on RBAC watch events).
    pub fn with_rbac(inventory: &'a Inventory, rbac: &'a RbacAnalysis) -> Context<'a> {
        Context {
            inventory,
            rbac: OnceLock::new(),
            shared_rbac: Some(rbac),
            index: OnceLock::new(),
        }
    }

    /// Hands in the RBAC analysis before any check asks for it: one of
    /// objects that are not all in the inventory (a scan of a large
    /// manifest set keeps only the RBAC index's part of roles and
    /// bindings). `false`, and nothing changed, if there already was one.
    pub fn set_rbac(&self, rbac: RbacAnalysis) -> bool {
        self.shared_rbac.is_none() && self.rbac.set(rbac).is_ok()
    }

    /// Service accounts and network policies by name and namespace.
    pub fn index(&self) -> &InventoryIndex<'a> {
        self.index
            .get_or_init(|| InventoryIndex::new(self.inventory))
    }

    /// Effective permissions and attack paths of the inventory's RBAC objects.
    pub fn rbac(&self) -> &RbacAnalysis {
        match self.shared_rbac {
            Some(rbac) => rbac,
            None => self
                .rbac
                .get_or_init(|| RbacAnalysis::build(self.inventory, self.index())),
        }
    }
}

/// Every subject of an inventory, in inventory order.
pub fn subjects(inventory: &Inventory) -> impl Iterator<Item = Subject<'_>> {
    let workloads = inventory.workloads.iter().map(Subject::Workload);
    let namespaces = inventory.namespaces.values().map(Subject::Namespace);
    let accounts = inventory
        .service_accounts
        .iter()
        .map(Subject::ServiceAccount);
    let roles = inventory.roles.iter().map(Subject::Role);
    let cluster_roles = inventory.cluster_roles.iter().map(Subject::ClusterRole);
    let bindings = inventory.role_bindings.iter().map(Subject::RoleBinding);
    let cluster_bindings = inventory
        .cluster_role_bindings
        .iter()
        .map(Subject::ClusterRoleBinding);
    let retired = inventory.retired_objects.iter().map(Subject::Retired);
    let config_maps = inventory.config_maps.iter().map(Subject::ConfigMap);
    workloads
        .chain(namespaces)
        .chain(accounts)
        .chain(roles)
        .chain(cluster_roles)
        .chain(bindings)
        .chain(cluster_bindings)
        .chain(retired)
        .chain(config_maps)
}

/// Evaluates every subject of the inventory; findings sorted and deduplicated.
pub fn evaluate(
    inventory: &Inventory,
    catalog: &[&'static Check],
    policy: &Policy,
) -> Vec<Finding> {
    let all = std::sync::Mutex::new(Vec::new());
    evaluate_each(inventory, catalog, policy, &|_, mut found| {
        let mut all = all
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        all.append(&mut found);
    });
    finish(
        all.into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    )
}

/// Which object of an inventory [`evaluate_each`] hands findings of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evaluated {
    /// The subject at this index of [`subjects`].
    Subject(usize),
    /// The workload kept as facts at this index of `inventory.facts`
    /// (findings of its [`Scope::Inventory`] checks only).
    Facts(usize),
}

/// Evaluates every subject of the inventory, on every core for a large
/// one, and hands each object's findings (sorted, without duplicates) to
/// `sink` as soon as they are known, so that no thread holds them all.
/// Objects without findings are not handed; the calls come in no
/// particular order.
pub fn evaluate_each(
    inventory: &Inventory,
    catalog: &[&'static Check],
    policy: &Policy,
    sink: &(dyn Fn(Evaluated, Vec<Finding>) + Sync),
) {
    evaluate_each_in(&Context::new(inventory), catalog, policy, sink);
}

/// [`evaluate_each`] of the inventory of a context the caller made (one
/// with an RBAC analysis of objects that are not in its inventory).
pub fn evaluate_each_in(
    cx: &Context<'_>,
    catalog: &[&'static Check],
    policy: &Policy,
    sink: &(dyn Fn(Evaluated, Vec<Finding>) + Sync),
) {
    let subjects: Vec<Subject<'_>> = subjects(cx.inventory).collect();
    let facts = &cx.inventory.facts;
    // Built once, before the threads share it.
    if !subjects.is_empty() || !facts.is_empty() {
        cx.rbac();
    }
    // Thread `t` of `threads` takes every `threads`-th subject and
    // workload, which spreads the costly kinds (RBAC) evenly.
    let share = |t: usize, threads: usize| {
        let subject_sink = |index, findings| sink(Evaluated::Subject(index), findings);
        evaluate_share(&subjects, (t, threads), cx, catalog, policy, &subject_sink);
        // Workloads kept as facts have had their own checks run already.
        for (index, facts) in facts.iter().enumerate().skip(t).step_by(threads) {
            let workload = facts.workload();
            let subject = Subject::Workload(&workload);
            let scope = Some(Scope::Inventory);
            let mut found = Vec::new();
            evaluate_into(&subject, cx, catalog, policy, scope, &mut found);
            if !found.is_empty() {
                sink(Evaluated::Facts(index), finish(found));
            }
        }
    };
    on_threads(subjects.len() + facts.len(), &share);
}

/// Evaluates `subjects`, which need not be in the context's inventory, on
/// every core for many, and hands each one's findings (sorted, without
/// duplicates) to `sink` with its index, in no particular order; subjects
/// without findings are not handed.
pub fn evaluate_subjects(
    subjects: &[Subject<'_>],
    cx: &Context<'_>,
    catalog: &[&'static Check],
    policy: &Policy,
    sink: &(dyn Fn(usize, Vec<Finding>) + Sync),
) {
    let share = |t: usize, threads: usize| {
        evaluate_share(subjects, (t, threads), cx, catalog, policy, sink);
    };
    on_threads(subjects.len(), &share);
}

/// Evaluates thread `t`'s share of `subjects` (every `threads`-th, from
/// the `t`-th) and hands each one's findings to `sink` with its index.
fn evaluate_share(
    subjects: &[Subject<'_>],
    (t, threads): (usize, usize),
    cx: &Context<'_>,
    catalog: &[&'static Check],
    policy: &Policy,
    sink: &(dyn Fn(usize, Vec<Finding>) + Sync),
) {
    for (index, subject) in subjects.iter().enumerate().skip(t).step_by(threads) {
        let mut found = Vec::new();
        evaluate_into(subject, cx, catalog, policy, None, &mut found);
        if !found.is_empty() {
            sink(index, finish(found));
        }
    }
}

/// Runs `share(t, threads)` for each thread `t` of as many as suit
/// `items` pieces of work ([`threads_for`]), the first on this thread.
fn on_threads(items: usize, share: &(dyn Fn(usize, usize) + Sync)) {
    let threads = threads_for(items);
    if threads == 1 {
        share(0, 1);
        return;
    }
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads)
            .map(|t| scope.spawn(move || share(t, threads)))
            .collect();
        share(0, threads);
        for other in others {
            other
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
        }
    });
}

/// More threads than this gain little on the machines scans run on.
const MAX_THREADS: usize = 4;
/// Fewer items than this are worked on by the calling thread.
const PARALLEL_FROM: usize = 256;

/// How many threads to share `items` pieces of work among: one for few,
/// else one per core up to [`MAX_THREADS`].
pub(crate) fn threads_for(items: usize) -> usize {
    match items < PARALLEL_FROM {
        true => 1,
        false => (std::thread::available_parallelism())
            .map_or(1, |n| n.get())
            .clamp(1, MAX_THREADS),
    }
}

/// The findings of the checks of `subject` that read nothing but the
/// object ([`Scope::Object`]), which can run as soon as it is read; the
/// rest run on what is kept of it (a workload's
/// [`crate::model::WorkloadFacts`]) in [`evaluate`]. The policy must have no
/// custom checks (they read the namespace).
pub fn evaluate_alone(
    subject: &Subject<'_>,
    catalog: &[&'static Check],
    policy: &Policy,
) -> Vec<Finding> {
    let nothing_else = Inventory::default();
    let cx = Context::new(&nothing_else);
    let mut findings = Vec::new();
    evaluate_into(
        subject,
        &cx,
        catalog,
        policy,
        Some(Scope::Object),
        &mut findings,
    );
    finish(findings)
}

/// Evaluates one subject (the operator re-evaluates objects one at a time).
pub fn evaluate_subject(
    subject: &Subject<'_>,
    cx: &Context<'_>,
    catalog: &[&'static Check],
    policy: &Policy,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    evaluate_into(subject, cx, catalog, policy, None, &mut findings);
    finish(findings)
}

fn evaluate_into(
    subject: &Subject<'_>,
    cx: &Context<'_>,
    catalog: &[&'static Check],
    policy: &Policy,
    scope: Option<Scope>,
    findings: &mut Vec<Finding>,
) {
    let applies = subject.applies();
    let mut violations = Violations::default();
    let mut object: Option<Arc<ObjectRef>> = None;
    let checks = catalog.iter().copied().chain(policy.custom_checks());
    let in_scope = |c: &&Check| scope.is_none_or(|scope| c.scope == scope);
    for check in checks
        .filter(|c| c.applies.covers(applies))
        .filter(in_scope)
    {
        if !policy.is_enabled(check) {
            continue;
        }
        policy.run(check, subject, cx, &mut violations);
        if violations.is_empty() {
            continue;
        }
        let object = object.get_or_insert_with(|| Arc::new(subject.object_ref()));
        for violation in violations.take() {
            let severity = policy.severity(check, violation.severity.unwrap_or(check.severity));
            let suppressed = policy.suppression(check, subject, object, &violation);
            findings.push(Finding {
                object: Arc::clone(object),
                check,
                severity,
                message: fitted(violation.message),
                path: fitted(violation.path.into()),
                container: violation.container,
                suppressed: suppressed.map(Box::new),
            });
        }
    }
}

/// Text built by `format!` or appending keeps the room it grew into; a
/// finding keeps its text until the report is written, so give it back.
fn fitted(mut text: String) -> String {
    text.shrink_to_fit();
    text
}

fn finish(mut findings: Vec<Finding>) -> Vec<Finding> {
    // Every field is in the sort key, so equal findings are identical and
    // the unstable sort (no scratch buffer) gives the same output.
    findings.sort_unstable();
    findings.dedup();
    findings
}
