//! `palisade scan` of a large manifest set without holding every decoded
//! pod template: each workload's own checks run as it is read, and only
//! its [`WorkloadFacts`] stay for the checks that look across objects.
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

use std::sync::{Mutex, PoisonError};

use crate::checks::catalog;
use crate::engine::spool::{FindingSpool, Reported, SpooledFindings};
use crate::engine::{self, Context, Evaluated, Finding};
use crate::loader::{Loaded, LoadedObject, Source, SourceIndex};
use crate::model::{Inventory, KubernetesVersion, ObjectRef, Resource, Workload, WorkloadFacts};
use crate::output::Summary;
use crate::policy::Policy;
use crate::posture::{Standings, TemplateVerdict};

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
    standings: Standings,
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
        let findings = engine::evaluate_alone(&workload, catalog(), policy);
        let mut standings = Standings::of(&findings);
        standings.shrink_to_fit();
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

/// Digested objects gathered for one evaluation.
#[derive(Default)]
pub struct Streamed {
    inventory: Inventory,
    sources: SourceIndex,
    found: Found,
    /// The Pod Security verdict of each `inventory.facts`.
    verdicts: Vec<TemplateVerdict>,
    objects: usize,
    /// The input turned out to need whole objects (see the module).
    needs_whole: bool,
}

/// Where the findings go as they are found, and what is kept of them.
#[derive(Default)]
struct Found {
    spool: FindingSpool,
    summary: Summary,
    /// Those of each subject of the inventory, by its index.
    subject_standings: Vec<Standings>,
    /// Those of each `inventory.facts`, by its index.
    fact_standings: Vec<Standings>,
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
}

impl Streamed {
    /// Nothing gathered yet; the findings go to `spool`.
    pub fn new(spool: FindingSpool) -> Streamed {
        Streamed {
            found: Found {
                spool,
                ..Found::default()
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
        // No `shrink_to_fit`: moving the large lists to buffers of their
        // exact size would copy them while both are held.
        self.inventory.kubernetes_version = kubernetes_version;
        let subjects = engine::subjects(&self.inventory).count();
        let mut found = std::mem::take(&mut self.found);
        found
            .subject_standings
            .resize_with(subjects, Standings::default);
        let found = Mutex::new(found);
        let sources = &self.sources;
        engine::evaluate_each(&self.inventory, catalog(), policy, &|which, findings| {
            let standings = Standings::of(&findings);
            let source = findings.first().and_then(|f| sources.locate(&f.object));
            let mut found = found.lock().unwrap_or_else(PoisonError::into_inner);
            match which {
                Evaluated::Subject(index) => found.subject_standings[index] = standings,
                Evaluated::Facts(index) => found.fact_standings[index].merge(&standings),
            }
            found.add(findings, source.as_ref());
        });
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
            }),
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
