//! `palisade scan` of a large manifest set without holding every decoded
//! pod template: each workload's own checks run as it is read, and only
//! its [`WorkloadFacts`] stay for the checks that look across objects.
//!
//! The findings are the same, in the same order, as when every object is
//! held whole ([`super::scan::Collected`]); the tests compare the two. Some
//! inputs need whole objects until the end, and are then scanned that way:
//! custom CEL checks and admission policies read whole objects, an object
//! defined twice is evaluated in place of its first definition, and a
//! workload that runs another's template (`spec.workloadRef`) needs that
//! template.

use crate::checks::catalog;
use crate::engine::{self, Context, Finding};
use crate::loader::{Loaded, LoadedObject, Source, SourceIndex};
use crate::model::{Inventory, KubernetesVersion, ObjectRef, Resource, Workload, WorkloadFacts};
use crate::output::Summary;
use crate::policy::Policy;
use crate::posture::TemplateVerdict;

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
    /// Any other object, kept whole.
    Whole(Box<LoadedObject>),
}

/// What stays of a workload once its own checks ran.
pub struct Reduced {
    facts: WorkloadFacts,
    findings: Vec<Finding>,
    verdict: TemplateVerdict,
}

/// Runs the checks of a workload that read nothing else and keeps its
/// facts; other objects pass through. Runs on the parsing threads.
pub fn digest(object: LoadedObject, policy: &Policy) -> Digested {
    let resource = &object.resource;
    if !resource.is_workload() || resource.runs_another_template() {
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
        Box::new(Reduced {
            verdict: TemplateVerdict::of(&workload, &Context::new(&nothing_else)),
            findings: engine::evaluate_alone(&workload, catalog(), policy),
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

/// Digested objects gathered for one evaluation.
#[derive(Default)]
pub struct Streamed {
    inventory: Inventory,
    sources: SourceIndex,
    /// Findings of workloads' own checks.
    findings: Vec<Finding>,
    /// The Pod Security verdict of each `inventory.facts`.
    verdicts: Vec<TemplateVerdict>,
    objects: usize,
    /// The input turned out to need whole objects (see the module).
    needs_whole: bool,
}

impl Streamed {
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
                add_to(&mut self.inventory, reference, object);
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
                        mut findings,
                        verdict,
                    } = *reduced;
                    self.findings.append(&mut findings);
                    self.inventory.facts.push(facts);
                    self.verdicts.push(verdict);
                }
            }
        }
    }

    /// The scan's findings, or `None` when the input needs whole objects.
    pub fn evaluate(
        mut self,
        loaded: Loaded,
        policy: &Policy,
        kubernetes_version: Option<KubernetesVersion>,
    ) -> Option<Scanned> {
        if self.needs_whole {
            return None;
        }
        self.inventory.shrink_to_fit();
        self.inventory.kubernetes_version = kubernetes_version;
        let earlier = std::mem::take(&mut self.findings);
        let findings = engine::evaluate_adding(&self.inventory, catalog(), policy, earlier);
        let summary = Summary::new(&findings, self.objects, loaded.files, &loaded.skipped);
        Some(Scanned {
            inventory: self.inventory,
            sources: self.sources,
            findings,
            definitions: Vec::new(),
            fact_verdicts: self.verdicts,
            summary,
            errors: loaded.errors,
            warnings: loaded.warnings,
        })
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
