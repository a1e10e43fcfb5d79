//! Namespace posture: the highest Pod Security Standards level every pod
//! template of a namespace meets, the workloads that block the next level,
//! the namespace's Pod Security admission labels next to it, and the
//! namespace's pass rate in each compliance framework.
//!
//! Pure, like the engine: the same objects, findings and policy give the
//! same posture. The level is judged by the Pod Security checks of the
//! catalog exactly as the pod-security admission (v1.35 controls) judges a
//! pod, so labelling a namespace `enforce` at its level met rejects none of
//! its pods; the policy's exceptions do not change it (the admission knows
//! none), while the framework pass rates follow the policy and count
//! accepted risk apart.

mod frameworks;
mod labels;
mod level;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use frameworks::{Standings, framework_of, rates};
pub use labels::{EVALUATED_VERSION, LABEL_PREFIX, MODES};
pub use level::TemplateVerdict;

use crate::crd::cluster_scan_report::{
    BlockingWorkload, MAX_BLOCKING_WORKLOADS, NamespacePosture, PodSecurityLevel,
};
use crate::engine::{Applies, Check, Context, Finding, Subject, subjects};
use crate::model::{Inventory, ObjectRef, WorkloadFacts};
use crate::policy::Policy;

/// The posture of namespace `name` from the objects of `cx.inventory` in
/// it and their `findings` (findings of other objects are ignored).
pub fn namespace_posture(
    name: &str,
    cx: &Context<'_>,
    findings: &[Finding],
    catalog: &[&'static Check],
    policy: &Policy,
) -> NamespacePosture {
    let by_object = Standings::by_object(findings);
    let passing = Standings::default();
    let subjects: Vec<(Subject<'_>, &Standings)> = subjects_in(cx.inventory, name)
        .map(|s| {
            let standings = by_object.get(&s.object_ref()).unwrap_or(&passing);
            (s, standings)
        })
        .collect();
    let members = Members {
        subjects,
        judged: Vec::new(),
        checked_alone: Vec::new(),
    };
    posture_of(name, cx, &members, catalog, policy)
}

/// The posture of every namespace of a manifest set (see
/// [`manifest_namespaces`]), sorted by name. The objects and findings are
/// sorted into their namespaces once, so a large input costs one pass.
pub fn all_namespaces(
    cx: &Context<'_>,
    findings: &[Finding],
    catalog: &[&'static Check],
    policy: &Policy,
) -> Vec<(String, NamespacePosture)> {
    all_namespaces_with_facts(cx, findings, &[], catalog, policy)
}

/// [`all_namespaces`] of an inventory with workloads kept as facts
/// (`cx.inventory.facts`), whose Pod Security verdicts were worked out
/// while they were whole: `fact_verdicts[i]` is that of `facts[i]`.
pub fn all_namespaces_with_facts(
    cx: &Context<'_>,
    findings: &[Finding],
    fact_verdicts: &[TemplateVerdict],
    catalog: &[&'static Check],
    policy: &Policy,
) -> Vec<(String, NamespacePosture)> {
    let by_object = Standings::by_object(findings);
    let passing = Standings::default();
    let of = |object: &ObjectRef| by_object.get(object).unwrap_or(&passing).clone();
    let subject_standings: Vec<Standings> = subjects(cx.inventory)
        .map(|s| of(&s.object_ref()))
        .collect();
    let fact_standings: Vec<Standings> =
        cx.inventory.facts.iter().map(|f| of(&f.object())).collect();
    let judged = Judged {
        subjects: &subject_standings,
        fact_verdicts,
        fact_standings: &fact_standings,
        checked_alone: &[],
    };
    all_namespaces_judged(cx, &judged, catalog, policy)
}

/// What a scan worked out about each object as it went, for the posture:
/// where each stands in the frameworks, and each workload kept as facts'
/// Pod Security verdict.
pub struct Judged<'j> {
    /// `subjects[i]` is that of the `i`-th of [`subjects`] (passing where
    /// it is shorter).
    pub subjects: &'j [Standings],
    /// `fact_verdicts[i]` is that of `inventory.facts[i]`.
    pub fact_verdicts: &'j [TemplateVerdict],
    /// `fact_standings[i]` is that of `inventory.facts[i]` (passing where
    /// it is shorter).
    pub fact_standings: &'j [Standings],
    /// Objects not in the inventory: every check of theirs ran as they
    /// were read.
    pub checked_alone: &'j [CheckedAlone],
}

/// An object every check of which ran as it was read, kept only as where
/// it stands (a ConfigMap of a large manifest set, which no check across
/// objects reads).
#[derive(Clone, Debug)]
pub struct CheckedAlone {
    /// Shared by the objects of a namespace that come one after the other:
    /// a large scan keeps hundreds of thousands.
    pub namespace: Option<Arc<str>>,
    pub applies: Applies,
    pub standings: Standings,
}

impl CheckedAlone {
    /// What is kept of an object in `namespace`; the namespace's text is
    /// shared with `previous` when it is the same.
    pub fn new(
        namespace: Option<&str>,
        applies: Applies,
        standings: Standings,
        previous: Option<&CheckedAlone>,
    ) -> CheckedAlone {
        let namespace =
            namespace.map(|ns| namespace_shared_by(previous, ns).unwrap_or_else(|| Arc::from(ns)));
        CheckedAlone {
            namespace,
            applies,
            standings,
        }
    }

    /// Shares the namespace's text with `previous` when it is the same.
    pub fn share_namespace_with(&mut self, previous: Option<&CheckedAlone>) {
        if let Some(namespace) = &mut self.namespace
            && let Some(shared) = namespace_shared_by(previous, namespace)
        {
            *namespace = shared;
        }
    }
}

/// The namespace text of `previous`, if it is `namespace`.
fn namespace_shared_by(previous: Option<&CheckedAlone>, namespace: &str) -> Option<Arc<str>> {
    let shared = previous?.namespace.as_ref()?;
    (**shared == *namespace).then(|| Arc::clone(shared))
}

/// [`all_namespaces`] from what was judged of each object, without the
/// findings.
pub fn all_namespaces_judged(
    cx: &Context<'_>,
    judged: &Judged<'_>,
    catalog: &[&'static Check],
    policy: &Policy,
) -> Vec<(String, NamespacePosture)> {
    let passing = Standings::default();
    let mut members: BTreeMap<String, Members<'_>> = manifest_namespaces(cx.inventory)
        .into_iter()
        .map(|name| (name, Members::default()))
        .collect();
    for (index, subject) in subjects(cx.inventory).enumerate() {
        if let Some(m) = namespace_of(&subject).and_then(|ns| members.get_mut(ns)) {
            let standings = judged.subjects.get(index).unwrap_or(&passing);
            m.subjects.push((subject, standings));
        }
    }
    let facts = cx.inventory.facts.iter().zip(judged.fact_verdicts);
    for (index, (facts, verdict)) in facts.enumerate() {
        let namespace = facts.namespace().filter(|ns| !ns.is_empty());
        if let Some(m) = namespace.and_then(|ns| members.get_mut(ns)) {
            let standings = judged.fact_standings.get(index).unwrap_or(&passing);
            m.judged.push((facts, verdict, standings));
        }
    }
    for checked in judged.checked_alone {
        let namespace = checked.namespace.as_deref().filter(|ns| !ns.is_empty());
        if let Some(m) = namespace.and_then(|ns| members.get_mut(ns)) {
            m.checked_alone.push((checked.applies, &checked.standings));
        }
    }
    members
        .iter()
        .map(|(name, m)| (name.clone(), posture_of(name, cx, m, catalog, policy)))
        .collect()
}

/// A namespace and the objects in it, with where they stand.
#[derive(Default)]
struct Members<'a> {
    subjects: Vec<(Subject<'a>, &'a Standings)>,
    /// Workloads kept as facts, with their Pod Security verdicts.
    judged: Vec<(&'a WorkloadFacts, &'a TemplateVerdict, &'a Standings)>,
    /// Objects checked as they were read, by kind.
    checked_alone: Vec<(Applies, &'a Standings)>,
}

fn posture_of(
    name: &str,
    cx: &Context<'_>,
    members: &Members<'_>,
    catalog: &[&'static Check],
    policy: &Policy,
) -> NamespacePosture {
    let mut verdicts: Vec<Verdict<'_>> = members
        .subjects
        .iter()
        .filter_map(|(s, _)| match s {
            Subject::Workload(w) => Some((
                Cow::Borrowed(&w.object),
                Cow::Owned(TemplateVerdict::of(w, cx)),
            )),
            _ => None,
        })
        .chain((members.judged.iter()).map(|(f, v, _)| (Cow::Owned(f.object()), Cow::Borrowed(*v))))
        .collect();
    verdicts.sort_by(|a, b| a.0.cmp(&b.0));
    let level_met = level_met(verdicts.iter().map(|(_, v)| v.as_ref()));
    let next_level = level_met.next();
    let blocking: Vec<BlockingWorkload> = next_level
        .map(|next| blocking_at(&verdicts, next))
        .unwrap_or_default();
    let namespace = cx.inventory.namespaces.get(name);
    let [enforce, audit, warn] = MODES.map(|mode| labels::mode(namespace, mode));
    let warnings = match namespace {
        Some(_) => labels::warnings(
            level_met,
            &[("enforce", &enforce), ("audit", &audit), ("warn", &warn)],
            |level| {
                blocking_at(&verdicts, level)
                    .into_iter()
                    .map(|b| format!("{}/{}", b.kind, b.name))
                    .collect()
            },
        ),
        // Labels not seen are not judged.
        None => Vec::new(),
    };
    NamespacePosture {
        level_met,
        workloads: count(verdicts.len()),
        enforce,
        audit,
        warn,
        labels_unknown: namespace.is_none(),
        next_level,
        blocking_total: count(blocking.len()),
        blocking: blocking.into_iter().take(MAX_BLOCKING_WORKLOADS).collect(),
        warnings,
        frameworks: rates(
            (members.subjects.iter().map(|(s, st)| (s.applies(), *st)))
                .chain(
                    members
                        .judged
                        .iter()
                        .map(|(_, _, st)| (Applies::Workload, *st)),
                )
                .chain(members.checked_alone.iter().copied()),
            catalog,
            policy,
        ),
    }
}

/// The namespaces a manifest set speaks of: its Namespace objects and the
/// namespaces its workloads name, sorted. Workloads without a namespace
/// (applied wherever `kubectl` points) belong to none.
pub fn manifest_namespaces(inventory: &Inventory) -> Vec<String> {
    let named = inventory.namespaces.keys().cloned();
    let of_workloads = (inventory.workloads.iter().map(|w| w.namespace()))
        .chain(inventory.facts.iter().map(|f| f.namespace()))
        .filter_map(|namespace| namespace.map(str::to_owned));
    named
        .chain(of_workloads)
        .collect::<BTreeSet<String>>()
        .into_iter()
        .collect()
}

/// The highest level every template passes (`restricted` for none).
fn level_met<'a>(verdicts: impl Iterator<Item = &'a TemplateVerdict> + Clone) -> PodSecurityLevel {
    PodSecurityLevel::ALL
        .into_iter()
        .rev()
        .find(|level| verdicts.clone().all(|v| v.passes(*level)))
        .unwrap_or(PodSecurityLevel::Privileged)
}

/// The workloads that fail `level`, with the checks they fail, in
/// workload order.
/// A workload of a namespace and its Pod Security verdict.
type Verdict<'a> = (Cow<'a, ObjectRef>, Cow<'a, TemplateVerdict>);

fn blocking_at(verdicts: &[Verdict<'_>], level: PodSecurityLevel) -> Vec<BlockingWorkload> {
    verdicts
        .iter()
        .filter(|(_, v)| !v.passes(level))
        .map(|(object, v)| BlockingWorkload {
            kind: object.kind.clone(),
            name: object.name.clone(),
            failing: v.failing(level).iter().map(|id| (*id).to_owned()).collect(),
        })
        .collect()
}

/// Namespace `name` and every object of `inventory` in it.
pub fn subjects_in<'a>(
    inventory: &'a Inventory,
    name: &'a str,
) -> impl Iterator<Item = Subject<'a>> {
    subjects(inventory).filter(move |s| in_namespace(s, name))
}

/// Whether `subject` is namespace `name` or an object in it.
fn in_namespace(subject: &Subject<'_>, name: &str) -> bool {
    namespace_of(subject) == Some(name)
}

/// The namespace a subject is, or is in; `None` for cluster-scoped objects.
fn namespace_of<'a>(subject: &Subject<'a>) -> Option<&'a str> {
    match *subject {
        Subject::Namespace(ns) => ns.metadata.name.as_deref(),
        Subject::Workload(w) => w.object.namespace.as_deref(),
        Subject::ServiceAccount(o) => o.metadata.namespace.as_deref(),
        Subject::Role(o) => o.metadata.namespace.as_deref(),
        Subject::RoleBinding(o) => o.metadata.namespace.as_deref(),
        Subject::ConfigMap(o) => o.metadata.namespace.as_deref(),
        Subject::Retired(o) => o.metadata.namespace.as_deref(),
        Subject::ClusterRole(_) | Subject::ClusterRoleBinding(_) => None,
    }
    .filter(|ns| !ns.is_empty())
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{catalog, testing::resources};
    use crate::engine::evaluate;

    #[test]
    fn objects_checked_alone_share_their_namespace_with_the_one_before() {
        let alone = |ns: Option<&str>, previous: Option<&CheckedAlone>| {
            CheckedAlone::new(ns, Applies::ConfigMap, Standings::default(), previous)
        };
        let first = alone(Some("shop"), None);
        let second = alone(Some("shop"), Some(&first));
        let (Some(a), Some(b)) = (&first.namespace, &second.namespace) else {
            panic!("namespaces kept");
        };
        assert!(Arc::ptr_eq(a, b), "one text for both");
        let other = alone(Some("shopping"), Some(&second));
        assert_eq!(other.namespace.as_deref(), Some("shopping"));
        assert_eq!(alone(None, Some(&second)).namespace, None);
        assert_eq!(
            alone(Some("x"), Some(&alone(None, None)))
                .namespace
                .as_deref(),
            Some("x")
        );
        // Made apart (on another thread), then shared as it is kept.
        let mut apart = alone(Some("shop"), None);
        assert!(!Arc::ptr_eq(apart.namespace.as_ref().unwrap(), a));
        apart.share_namespace_with(Some(&first));
        assert!(Arc::ptr_eq(apart.namespace.as_ref().unwrap(), a));
        let mut elsewhere = alone(Some("ops"), None);
        elsewhere.share_namespace_with(Some(&first));
        assert_eq!(elsewhere.namespace.as_deref(), Some("ops"));
    }

    const HARDENED: &str = "{allowPrivilegeEscalation: false, runAsNonRoot: true, \
        capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}";

    fn pod(namespace: &str, name: &str, security_context: &str) -> String {
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
             spec:\n  containers: [{{name: app, image: x, securityContext: {security_context}}}]\n"
        )
    }

    fn namespace(name: &str, labels: &str) -> String {
        format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n"
        )
    }

    fn postures(yaml: &str) -> Vec<(String, NamespacePosture)> {
        let inventory = Inventory::from_resources(&resources(yaml));
        let policy = Policy::default();
        let findings = evaluate(&inventory, catalog(), &policy);
        all_namespaces(&Context::new(&inventory), &findings, catalog(), &policy)
    }

    fn only(yaml: &str) -> NamespacePosture {
        let mut all = postures(yaml);
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0).1
    }

    #[test]
    fn the_level_met_is_the_lowest_of_its_workloads() {
        let restricted = only(&pod("a", "good", HARDENED));
        assert_eq!(restricted.level_met, PodSecurityLevel::Restricted);
        assert_eq!(restricted.next_level, None);
        assert!(restricted.blocking.is_empty());

        let baseline = only(&(pod("a", "good", HARDENED) + &pod("a", "plain", "{}")));
        assert_eq!(baseline.level_met, PodSecurityLevel::Baseline);
        assert_eq!(baseline.next_level, Some(PodSecurityLevel::Restricted));
        assert_eq!(baseline.workloads, 2);
        assert_eq!(baseline.blocking_total, 1);
        assert_eq!(baseline.blocking[0].name, "plain");
        assert!(
            baseline.blocking[0]
                .failing
                .contains(&"run-as-non-root".to_owned())
        );

        let yaml = pod("a", "good", HARDENED) + &pod("a", "root", "{privileged: true}");
        let privileged = only(&yaml);
        assert_eq!(privileged.level_met, PodSecurityLevel::Privileged);
        assert_eq!(privileged.next_level, Some(PodSecurityLevel::Baseline));
        assert_eq!(privileged.blocking[0].failing, ["privileged-container"]);
    }

    #[test]
    fn an_empty_namespace_meets_restricted() {
        let posture = only(&namespace("empty", ""));
        assert_eq!(posture.level_met, PodSecurityLevel::Restricted);
        assert_eq!(posture.workloads, 0);
    }

    #[test]
    fn namespaces_are_judged_apart_and_listed_in_order() {
        let yaml = pod("b", "root", "{privileged: true}")
            + &pod("a", "good", HARDENED)
            + &namespace("c", "")
            + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: nowhere}\nspec: {containers: [{name: app, image: x}]}\n";
        let all = postures(&yaml);
        let summary: Vec<(&str, PodSecurityLevel)> =
            all.iter().map(|(n, p)| (n.as_str(), p.level_met)).collect();
        // `a` and `b` are only named by workloads: their labels are unknown
        // and unjudged, where the unlabelled Namespace `c` is told it could
        // enforce more.
        let unknown: Vec<bool> = all.iter().map(|(_, p)| p.labels_unknown).collect();
        assert_eq!(unknown, [true, true, false]);
        let warned: Vec<usize> = all.iter().map(|(_, p)| p.warnings.len()).collect();
        assert_eq!(warned, [0, 0, 1]);
        assert_eq!(
            summary,
            [
                ("a", PodSecurityLevel::Restricted),
                ("b", PodSecurityLevel::Privileged),
                ("c", PodSecurityLevel::Restricted),
            ]
        );
    }

    #[test]
    fn labels_and_warnings_come_from_the_namespace_object() {
        let enforced = "pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/enforce-version: v1.35";
        let yaml = namespace("a", enforced) + &pod("a", "plain", "{}");
        let posture = only(&yaml);
        assert_eq!(posture.enforce.level, "restricted");
        assert_eq!(posture.enforce.version, "v1.35");
        assert!(!posture.audit.labelled);
        let reasons: Vec<&str> = posture.warnings.iter().map(|w| w.reason.as_str()).collect();
        assert_eq!(reasons, ["EnforceAboveLevelMet"]);
        assert!(
            posture.warnings[0].message.contains("Pod/plain"),
            "{:?}",
            posture.warnings
        );

        let yaml = namespace("a", "pod-security.kubernetes.io/enforce: baseline")
            + &pod("a", "good", HARDENED);
        let posture = only(&yaml);
        let reasons: Vec<&str> = posture.warnings.iter().map(|w| w.reason.as_str()).collect();
        assert_eq!(reasons, ["EnforceBelowLevelMet"]);
    }

    #[test]
    fn exceptions_do_not_change_the_level_but_count_as_accepted_risk() {
        let host_network = format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: host, namespace: a, \
             annotations: {{palisade.dev/ignore: host-network}}}}\nspec:\n  hostNetwork: true\n  \
             containers: [{{name: app, image: x, securityContext: {HARDENED}}}]\n"
        );
        let posture = only(&host_network);
        assert_eq!(posture.level_met, PodSecurityLevel::Privileged);
        assert_eq!(posture.blocking[0].failing, ["host-network"]);
        let pss = posture
            .frameworks
            .iter()
            .find(|r| r.framework == "pss")
            .unwrap();
        assert_eq!((pss.passing, pss.failing, pss.suppressed), (0, 0, 1));
    }

    #[test]
    fn blocking_workloads_are_capped_but_counted() {
        let yaml: String = (0..MAX_BLOCKING_WORKLOADS + 3)
            .map(|i| pod("a", &format!("p{i:03}"), "{privileged: true}"))
            .collect();
        let posture = only(&yaml);
        assert_eq!(posture.blocking.len(), MAX_BLOCKING_WORKLOADS);
        assert_eq!(posture.blocking_total as usize, MAX_BLOCKING_WORKLOADS + 3);
        assert_eq!(posture.blocking[0].name, "p000");
    }

    #[test]
    fn one_namespace_alone_gives_what_the_whole_input_gives() {
        let yaml = namespace("a", "pod-security.kubernetes.io/enforce: restricted")
            + &pod("a", "plain", "{}")
            + &pod("a", "good", HARDENED)
            + &pod("b", "root", "{privileged: true}")
            + "---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: builder, namespace: b}\n";
        let inventory = Inventory::from_resources(&resources(&yaml));
        let policy = Policy::default();
        let findings = evaluate(&inventory, catalog(), &policy);
        let cx = Context::new(&inventory);
        let all = all_namespaces(&cx, &findings, catalog(), &policy);
        assert_eq!(all.len(), 2);
        for (name, posture) in &all {
            let alone = namespace_posture(name, &cx, &findings, catalog(), &policy);
            assert_eq!(&alone, posture, "{name}");
            assert!(!posture.frameworks.is_empty(), "{name}");
        }
    }

    #[test]
    fn the_same_input_gives_the_same_posture() {
        let yaml = pod("a", "root", "{privileged: true}") + &pod("a", "plain", "{}");
        assert_eq!(postures(&yaml), postures(&yaml));
    }
}
