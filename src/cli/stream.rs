//! `palisade scan` of a large manifest set without holding every decoded
//! pod template: each workload's own checks run as it is read, and only
//! its [`WorkloadFacts`] stay for the checks that look across objects.
//! ConfigMaps, which no check across objects reads, are not kept at all:
//! every check of theirs runs as they are read. NetworkPolicies, which have
//! no checks of their own, are kept as [`NetworkPolicyFacts`].
//!
//! ServiceAccounts, roles and bindings past the first [`HOLD_FROM`] wait
//! on disk ([`super::held`]) for their own checks, which read the RBAC
//! index of every object: as each is read, only what checks across
//! objects read of it stays in memory (the RBAC index's part of a role or
//! binding, an account's [`AccountFacts`]).
//!
//! Findings are not held either: each object's go to a [`FindingSpool`]
//! as soon as they are known (counted into the summary and, as
//! [`Standings`], into the namespace posture on the way), which keeps them
//! in memory up to a budget and sorts the rest on disk.
//!
//! The findings are the same, in the same order, as when every object is
//! held whole ([`super::scan::Collected`]); the tests compare the two. Some
//! inputs need whole objects until the end, and are then scanned that way:
//! custom CEL checks and admission policies read whole objects, an object
//! defined twice is evaluated in place of its first definition, and a
//! workload that runs another's template (`spec.workloadRef`) needs that
//! template.

use std::io;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::checks::catalog;
use crate::cli::held::HeldObjects;
use crate::engine::spool::{FindingSpool, Reported, SpooledFindings};
use crate::engine::{self, Context, Evaluated, Finding, Subject};
use crate::loader::{Loaded, LoadedObject, Source, SourceIndex};
use crate::model::{
    AccountFacts, Inventory, KubernetesVersion, NetworkPolicyFacts, ObjectRef, Resource, Workload,
    WorkloadFacts,
};
use crate::output::Summary;
use crate::policy::{ANNOTATION_PREFIX, Policy};
use crate::posture::{CheckedAlone, Standings, TemplateVerdict};
use crate::rbac::rule::SharedRules;
use crate::rbac::{BindingData, RbacAnalysis, RbacData, RbacIndex, RoleData};

use super::scan::{Scanned, add_to, note_written_api_version};

/// A loaded object after the work that needs only the object itself.
pub enum Digested {
    /// A workload reduced to its facts, with the findings of its own checks
    /// and its Pod Security verdict.
    Workload {
        object: ObjectRef,
        /// `None` for a workload kind without a pod template (a CronJob
        /// without its job template): nothing to check.
        reduced: Option<Box<Reduced>>,
        source: Source,
        api_version: String,
    },
    /// An object no check across objects reads, with the findings of its
    /// checks: nothing else of it is kept.
    Checked(Box<Checked>),
    /// Any other object, kept whole.
    Whole(Box<LoadedObject>),
}

/// What stays of an object every check of which ran as it was read.
pub struct Checked {
    object: ObjectRef,
    source: Source,
    findings: Vec<Finding>,
    alone: CheckedAlone,
}

/// What stays of a workload once its own checks ran.
pub struct Reduced {
    facts: WorkloadFacts,
    findings: Vec<Finding>,
    standings: Standings,
    verdict: TemplateVerdict,
}

/// Runs the checks of a workload that read nothing else and keeps its
/// facts, and every check of a ConfigMap; other objects pass through,
/// less what nothing reads of them. Runs on the parsing threads.
pub fn digest(object: LoadedObject, policy: &Policy) -> Digested {
    let resource = &object.resource;
    if let Resource::ConfigMap(config_map) = resource {
        return check_alone(&Subject::ConfigMap(config_map), object.source, policy);
    }
    if !resource.is_workload() || resource.runs_another_template() {
        let mut object = object;
        drop_unread_metadata(&mut object.resource);
        return Digested::Whole(Box::new(object));
    }
    let LoadedObject {
        resource,
        source,
        api_version,
    } = object;
    let object = resource.object_ref();
    let reduced = Workload::from_owned(resource).map(|workload| {
        let nothing_else = Inventory::default();
        let findings = engine::evaluate_alone(&Subject::Workload(&workload), catalog(), policy);
        let standings = Standings::of(&findings);
        Box::new(Reduced {
            verdict: TemplateVerdict::of(&workload, &Context::new(&nothing_else)),
            findings,
            standings,
            facts: WorkloadFacts::of(&workload),
        })
    });
    Digested::Workload {
        object,
        reduced,
        source,
        api_version,
    }
}

/// Drops what nothing reads of an object kept whole for the checks across
/// objects: its `managedFields`, and annotations other than Palisade's own
/// (annotations of objects other than workloads are read only for
/// `palisade.dev/ignore`). A dump of a cluster (`kubectl get -o yaml`)
/// carries both, and `kubectl.kubernetes.io/last-applied-configuration`
/// is often larger than the rest of the object. Custom checks, which may
/// read any field, make the scan hold whole objects instead.
///
/// Namespaces stay in memory until the end of the scan (the others wait on
/// disk, and NetworkPolicies are kept as [`NetworkPolicyFacts`]), so they
/// keep less: see [`keep_read_of_namespace`].
fn drop_unread_metadata(resource: &mut Resource) {
    let metadata = match resource {
        Resource::Namespace(o) => {
            keep_read_of_namespace(o);
            &mut o.metadata
        }
        Resource::ServiceAccount(o) => &mut o.metadata,
        Resource::Role(o) => &mut o.metadata,
        Resource::ClusterRole(o) => &mut o.metadata,
        Resource::RoleBinding(o) => &mut o.metadata,
        Resource::ClusterRoleBinding(o) => &mut o.metadata,
        _ => return,
    };
    metadata.managed_fields = None;
    if let Some(annotations) = &mut metadata.annotations {
        annotations.retain(|key, _| key.starts_with(ANNOTATION_PREFIX));
    }
}

/// A Namespace's checks and its posture read its name, labels and
/// annotations, and findings name it by its `uid`; not its `spec`
/// (finalizers), `status` or the rest of its metadata (`resourceVersion`,
/// `creationTimestamp`, … of a dump).
fn keep_read_of_namespace(namespace: &mut Namespace) {
    let metadata = &mut namespace.metadata;
    *metadata = ObjectMeta {
        name: metadata.name.take(),
        // Set on a Namespace only by mistake, but part of how it is named.
        namespace: metadata.namespace.take(),
        uid: metadata.uid.take(),
        labels: metadata.labels.take(),
        annotations: metadata.annotations.take(),
        ..ObjectMeta::default()
    };
    namespace.spec = None;
    namespace.status = None;
}

/// Runs every check of an object that no check across objects reads. Only
/// ConfigMaps are such objects: the checks across objects that read them
/// are those of admission policies' parameters, and admission policies make
/// the scan hold whole objects. Their checks across objects (retired API
/// versions) cannot report a `v1` ConfigMap.
fn check_alone(subject: &Subject<'_>, source: Source, policy: &Policy) -> Digested {
    let findings = engine::evaluate_alone(subject, catalog(), policy);
    let standings = Standings::of(&findings);
    let object = subject.object_ref();
    Digested::Checked(Box::new(Checked {
        alone: CheckedAlone::new(
            object.namespace.as_deref(),
            subject.applies(),
            standings,
            None,
        ),
        object,
        source,
        findings,
    }))
}

/// Digested objects gathered for one evaluation.
#[derive(Default)]
pub struct Streamed {
    inventory: Inventory,
    /// ServiceAccounts, roles and bindings: the objects themselves wait on
    /// disk for their own checks (in the inventory if they could not be
    /// written).
    held: Held,
    sources: SourceIndex,
    found: Found,
    /// The Pod Security verdict of each `inventory.facts`.
    verdicts: Vec<TemplateVerdict>,
    objects: usize,
    /// The input turned out to need whole objects (see the module).
    needs_whole: bool,
}

/// How many ServiceAccounts, roles and bindings a streamed scan keeps in
/// memory before it holds the rest on disk: writing them out and reading
/// them back costs a small scan more time than the memory it saves.
pub const HOLD_FROM: usize = 1_000;

/// The ServiceAccounts, roles and bindings of a streamed scan: what checks
/// across objects read of each, worked out as it is read (an account's in
/// the inventory's `account_facts`), and the objects on disk.
#[derive(Default)]
struct Held {
    /// Objects of the kinds held on disk to keep in memory first.
    keep_first: usize,
    roles: Vec<RoleData>,
    /// The roles' rules, each kept once.
    rules: SharedRules,
    bindings: Vec<BindingData>,
    /// `None` until the first; `Err` once a write failed, after which
    /// every object is kept in the inventory.
    objects: Option<Result<HeldObjects, ()>>,
}

impl Held {
    /// Writes `resource` to disk if it is of a kind held there, keeping
    /// what checks across objects read of it; `false` if it is to be kept
    /// in the inventory.
    fn hold(&mut self, resource: &Resource, inventory: &mut Inventory) -> bool {
        if !HeldObjects::holds(resource) {
            return false;
        }
        // The RBAC index is built from what was kept of every role and
        // binding, held or not.
        match RbacData::of(resource, &mut self.rules) {
            Some(RbacData::Role(role)) => self.roles.push(role),
            Some(RbacData::Binding(binding)) => self.bindings.push(binding),
            None => {}
        }
        if self.keep_first > 0 {
            self.keep_first -= 1;
            return false;
        }
        let objects = self
            .objects
            .get_or_insert_with(|| HeldObjects::new().map_err(|_| ()));
        let Ok(held) = objects else {
            return false;
        };
        if held.push(resource).is_err() {
            *objects = Err(());
            return false;
        }
        if let Resource::ServiceAccount(account) = resource {
            inventory.account_facts.push(AccountFacts::of(account));
        }
        true
    }
}

/// Objects read back from disk and evaluated at a time.
const HELD_CHUNK: usize = 512;

/// Where the findings go as they are found, and what is kept of them.
#[derive(Default)]
struct Found {
    spool: FindingSpool,
    summary: Summary,
    /// Those of each subject of the inventory, by its index.
    subject_standings: Vec<Standings>,
    /// Those of each `inventory.facts`, by its index.
    fact_standings: Vec<Standings>,
    /// The objects that are not in the inventory.
    checked_alone: Vec<CheckedAlone>,
}

impl Found {
    fn add(&mut self, findings: Vec<Finding>, source: Option<&Source>) {
        for finding in findings {
            self.summary.add(&finding);
            self.spool.push(Reported {
                finding,
                definition: 0,
                source: source.cloned(),
            });
        }
    }
}

/// The findings of a scan that kept workloads as facts, read back sorted,
/// and where each object stands in the frameworks (for the posture).
pub struct Spooled {
    pub findings: SpooledFindings,
    /// `subject_standings[i]` is that of the `i`-th of
    /// [`engine::subjects`] of the inventory.
    pub subject_standings: Vec<Standings>,
    /// `fact_standings[i]` is that of `inventory.facts[i]`.
    pub fact_standings: Vec<Standings>,
    /// The objects checked as they were read, not in the inventory.
    pub checked_alone: Vec<CheckedAlone>,
}

impl Streamed {
    /// Nothing gathered yet; the findings go to `spool`; the first
    /// `hold_from` ServiceAccounts, roles and bindings are kept in memory,
    /// the rest held on disk until their own checks run.
    pub fn new(spool: FindingSpool, hold_from: usize) -> Streamed {
        Streamed {
            found: Found {
                spool,
                ..Found::default()
            },
            held: Held {
                keep_first: hold_from,
                ..Held::default()
            },
            ..Streamed::default()
        }
    }

    pub fn add(&mut self, digested: Digested) {
        if self.needs_whole {
            return;
        }
        self.objects += 1;
        match digested {
            Digested::Whole(object) => {
                let object = *object;
                let reference = object.resource.object_ref();
                if self
                    .sources
                    .insert(reference.clone(), &object.source)
                    .is_some()
                    || needs_whole(&object.resource)
                {
                    self.needs_whole = true;
                    return;
                }
                if self.held.hold(&object.resource, &mut self.inventory) {
                    note_written_api_version(&mut self.inventory, reference, object.api_version);
                    return;
                }
                match object.resource {
                    Resource::NetworkPolicy(policy) => {
                        note_written_api_version(
                            &mut self.inventory,
                            reference,
                            object.api_version,
                        );
                        let facts = NetworkPolicyFacts::of(policy);
                        self.inventory.network_policy_facts.push(facts);
                    }
                    resource => {
                        let object = LoadedObject { resource, ..object };
                        add_to(&mut self.inventory, reference, object);
                    }
                }
            }
            Digested::Checked(checked) => {
                let Checked {
                    object,
                    source,
                    findings,
                    alone,
                } = *checked;
                if self.sources.insert(object, &source).is_some() {
                    self.needs_whole = true;
                    return;
                }
                self.found.add(findings, Some(&source));
                let mut alone = alone;
                alone.share_namespace_with(self.found.checked_alone.last());
                self.found.checked_alone.push(alone);
            }
            Digested::Workload {
                object,
                reduced,
                source,
                api_version,
            } => {
                if self.sources.insert(object.clone(), &source).is_some() {
                    self.needs_whole = true;
                    return;
                }
                note_written_api_version(&mut self.inventory, object, api_version);
                if let Some(reduced) = reduced {
                    let Reduced {
                        facts,
                        findings,
                        standings,
                        verdict,
                    } = *reduced;
                    self.found.add(findings, Some(&source));
                    self.inventory.facts.push(facts);
                    self.found.fact_standings.push(standings);
                    self.verdicts.push(verdict);
                }
            }
        }
    }

    /// The scan's findings, or `None` when the input needs whole objects
    /// (or the findings could not be spooled, said on standard error).
    pub fn evaluate(
        mut self,
        loaded: Loaded,
        policy: &Policy,
        kubernetes_version: Option<KubernetesVersion>,
    ) -> Option<Scanned> {
        if self.needs_whole {
            return None;
        }
        // The lists grew by doubling; what they do not use is given back
        // before the RBAC analysis needs room (a large buffer shrinks where
        // it is, without a copy).
        self.inventory.shrink_to_fit();
        self.verdicts.shrink_to_fit();
        self.found.fact_standings.shrink_to_fit();
        self.inventory.kubernetes_version = kubernetes_version;
        let subjects = engine::subjects(&self.inventory).count();
        let mut found = std::mem::take(&mut self.found);
        found
            .subject_standings
            .resize_with(subjects, Standings::default);
        let found = Mutex::new(found);
        let sources = &self.sources;
        let cx = Context::new(&self.inventory);
        let Held {
            roles,
            bindings,
            objects,
            ..
        } = std::mem::take(&mut self.held);
        let index = RbacIndex::from_data(roles, bindings);
        cx.set_rbac(RbacAnalysis::build_on(index, &self.inventory, cx.index()));
        engine::evaluate_each_in(&cx, catalog(), policy, &|which, findings| {
            let standings = Standings::of(&findings);
            let source = findings.first().and_then(|f| sources.locate(&f.object));
            let mut found = found.lock().unwrap_or_else(PoisonError::into_inner);
            match which {
                Evaluated::Subject(index) => found.subject_standings[index] = standings,
                Evaluated::Facts(index) => found.fact_standings[index].merge(&standings),
            }
            found.add(findings, source.as_ref());
        });
        if let Some(Ok(held)) = objects
            && let Err(e) = evaluate_held(held, &cx, policy, &found, sources)
        {
            eprintln!(
                "warning: cannot read objects back from a temporary file ({e}): holding them all in memory"
            );
            return None;
        }
        drop(cx);
        let found = found.into_inner().unwrap_or_else(PoisonError::into_inner);
        let findings = match found.spool.finish() {
            Ok(findings) => findings,
            Err(e) => {
                eprintln!(
                    "warning: cannot write findings to a temporary file ({e}): holding them all in memory"
                );
                return None;
            }
        };
        let mut summary = found.summary;
        let counted = Summary::new(&[], self.objects, loaded.files, &loaded.skipped);
        (summary.objects, summary.files, summary.skipped) =
            (counted.objects, counted.files, counted.skipped);
        Some(Scanned {
            inventory: self.inventory,
            sources: self.sources,
            findings: Vec::new(),
            spooled: Some(Spooled {
                findings,
                subject_standings: found.subject_standings,
                fact_standings: found.fact_standings,
                checked_alone: found.checked_alone,
            }),
            definitions: Vec::new(),
            fact_verdicts: self.verdicts,
            summary,
            errors: loaded.errors,
            warnings: loaded.warnings,
        })
    }
}

/// Evaluates the objects held on disk, a chunk at a time; each stays for
/// the posture as where it stands.
fn evaluate_held(
    held: HeldObjects,
    cx: &Context<'_>,
    policy: &Policy,
    found: &Mutex<Found>,
    sources: &SourceIndex,
) -> io::Result<()> {
    // Room for every held object's standing at once, not doubled chunk by
    // chunk while the RBAC analysis is held.
    (found.lock().unwrap_or_else(PoisonError::into_inner))
        .checked_alone
        .reserve_exact(held.len());
    let mut reader = held.read_back()?;
    loop {
        let chunk = reader.next_chunk(HELD_CHUNK)?;
        if chunk.is_empty() {
            return Ok(());
        }
        let subjects: Vec<Subject<'_>> = chunk.iter().filter_map(Subject::of_object).collect();
        let first = {
            let mut found = found.lock().unwrap_or_else(PoisonError::into_inner);
            let first = found.checked_alone.len();
            for subject in &subjects {
                let namespace = subject.metadata().namespace.as_deref();
                let applies = subject.applies();
                let previous = found.checked_alone.last();
                let alone = CheckedAlone::new(namespace, applies, Standings::default(), previous);
                found.checked_alone.push(alone);
            }
            first
        };
        engine::evaluate_subjects(&subjects, cx, catalog(), policy, &|index, findings| {
            let standings = Standings::of(&findings);
            let source = findings.first().and_then(|f| sources.locate(&f.object));
            let mut found = found.lock().unwrap_or_else(PoisonError::into_inner);
            found.checked_alone[first + index].standings = standings;
            found.add(findings, source.as_ref());
        });
    }
}

/// Objects that make the whole scan need whole objects.
fn needs_whole(resource: &Resource) -> bool {
    let admission = matches!(
        resource,
        Resource::AdmissionPolicy(_) | Resource::AdmissionPolicyBinding(_)
    );
    admission || resource.runs_another_template()
}

/// The digest runs on the parsing threads, which share the policy.
const _: fn() = || {
    fn shared_between_threads<T: Sync>() {}
    shared_between_threads::<Policy>();
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::spool::FindingSpool;
    use crate::loader::Loader;

    const OBJECTS: &str = "
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: api, namespace: shop}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: secrets, namespace: shop}
rules: [{apiGroups: [''], resources: [secrets], verbs: [get, list]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: api-secrets, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: secrets}
subjects: [{kind: ServiceAccount, name: api, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: api-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: api, namespace: shop}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {serviceAccountName: api, containers: [{name: app, image: nginx:1.27}]}
";

    /// The scan of [`OBJECTS`]: its findings as text and its posture.
    fn scan(streamed: Streamed, policy: &Policy) -> (Vec<String>, String) {
        let scanned = streamed
            .evaluate(Loaded::default(), policy, None)
            .expect("streamed");
        let spooled = scanned.spooled.as_ref().expect("spooled");
        let findings = (spooled.findings.iter())
            .map(|r| {
                let r = r.expect("read back");
                format!(
                    "{} {} {} {:?}",
                    r.finding.object, r.finding.check.id, r.finding.message, r.source
                )
            })
            .collect();
        (findings, format!("{:?}", scanned.posture(policy)))
    }

    /// Objects that cannot be written to disk stay in the inventory, and
    /// the scan is the same.
    #[test]
    fn objects_that_cannot_be_held_stay_in_the_inventory() {
        let policy = Policy::default();
        let loaded = Loader::new().load_text("shop.yaml", OBJECTS);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let mut on_disk = Streamed::new(FindingSpool::new(), 0);
        let mut in_memory = Streamed::new(FindingSpool::new(), 0);
        in_memory.held.objects = Some(Err(()));
        for object in loaded.objects {
            on_disk.add(digest(object.clone(), &policy));
            in_memory.add(digest(object, &policy));
        }
        let held = |s: &Streamed| {
            let i = &s.inventory;
            [
                i.service_accounts.len(),
                i.account_facts.len(),
                i.roles.len(),
                i.role_bindings.len(),
                i.cluster_role_bindings.len(),
            ]
        };
        assert_eq!(held(&on_disk), [0, 1, 0, 0, 0]);
        assert_eq!(held(&in_memory), [1, 0, 1, 1, 1]);
        let (findings, posture) = scan(on_disk, &policy);
        assert_eq!((findings.clone(), posture), scan(in_memory, &policy));
        // The checks across objects saw the held objects: the account is
        // cluster admin through its binding, and the Deployment runs as it.
        let has = |object: &str, check: &str| {
            (findings.iter()).any(|f| f.starts_with(&format!("{object} {check} ")))
        };
        assert!(
            has("ClusterRoleBinding/api-admin", "rbac-binding-cluster-admin"),
            "{findings:#?}"
        );
        assert!(
            has("Deployment/web -n shop", "rbac-workload-cluster-admin"),
            "{findings:#?}"
        );
    }
}
