//! Report formats for scan results: a table for people, JSON and YAML for
//! scripts, SARIF for code-scanning dashboards, JUnit XML for CI test views.
//! Every format is deterministic: the same findings give the same bytes.

pub mod catalog;
mod json;
mod junit;
pub mod openreports;
mod ordered;
pub mod posture;
mod sarif;
#[cfg(test)]
mod spooled_tests;
mod table;

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;

use crate::engine::spool::SpooledFindings;
use crate::engine::{Applies, Check, Finding, Severity};
use crate::loader::{ErrorEntry, Skipped, Source, SourceIndex};
use crate::model::ObjectRef;
use crate::policy::Policy;

/// `palisade scan --output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Findings grouped by object, for people.
    Table,
    /// The report as JSON (documented in docs/ci.md).
    Json,
    /// The same report as YAML.
    Yaml,
    /// SARIF 2.1.0, for GitHub code scanning and other dashboards.
    Sarif,
    /// JUnit XML: one test case per object and check.
    Junit,
    /// OpenReports (openreports.io/v1alpha1): a Report per namespace and a
    /// ClusterReport, as YAML.
    Openreports,
}

/// One object the engine evaluated and the kind of checks that apply to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluated {
    pub object: ObjectRef,
    pub applies: Applies,
}

/// Everything a report shows.
pub struct Report<'a> {
    /// Inputs that could not be read or decoded, and usage errors, in input
    /// order: every format lists them.
    pub errors: &'a [ErrorEntry],
    /// Inputs skipped because they are not manifests (unrendered templates).
    pub skipped_inputs: &'a [ErrorEntry],
    /// Every finding of the scan, suppressed ones included, in engine order.
    pub findings: ReportFindings<'a>,
    /// Where each object was read: the first definition of the object a
    /// group of findings is about, and (for findings held in memory) the
    /// definition each finding is at.
    pub sources: &'a SourceIndex,
    /// The checks that ran, sorted by id.
    pub checks: &'a [&'static Check],
    /// Gives the checks' effective severities.
    pub policy: &'a Policy,
    /// Every evaluated object, sorted by object (JUnit lists a test case
    /// for each of its checks, read along with the findings, which come in
    /// the same order); may be empty for the other formats.
    pub evaluated: &'a [Evaluated],
    pub summary: Summary,
    pub options: Options,
    /// The posture of each namespace of the input, by name (table, JSON
    /// and YAML show it; may be empty for the other formats).
    pub posture: &'a [(String, crate::crd::cluster_scan_report::NamespacePosture)],
}

/// The findings of a report: held in memory, or read back from a spool
/// when there are too many to hold. Either way they come sorted (by
/// [`Finding`]'s order, then definition) without duplicates.
#[derive(Clone, Copy)]
pub enum ReportFindings<'a> {
    InMemory {
        findings: &'a [Finding],
        /// Which definition of its object each finding is at (0 the
        /// first, for objects defined in several places), parallel to
        /// `findings`; empty when every finding is at its object's first
        /// definition.
        definitions: &'a [u32],
    },
    /// Findings with their definitions' sources, from a spool.
    Spooled(&'a SpooledFindings),
}

/// A finding of a report and its definition: borrowed when held in
/// memory, owned when read back from a spool.
type FoundItem<'r> = io::Result<(Cow<'r, Finding>, u32)>;
/// A finding of a report and where its definition was read.
type SourcedItem<'r> = io::Result<(Cow<'r, Finding>, Option<Cow<'r, Source>>)>;

/// How findings are shown.
#[derive(Clone, Debug)]
pub struct Options {
    /// Findings below this are left out of the output (never out of the
    /// summary counts or the exit code).
    pub min_severity: Severity,
    /// Show suppressed findings in the table (machine formats always carry
    /// them, marked).
    pub show_suppressed: bool,
    /// Colour the table (stdout is a terminal and `NO_COLOR` is unset).
    pub color: bool,
    /// SARIF file locations are made relative to this directory.
    pub base_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            min_severity: Severity::Info,
            show_suppressed: false,
            color: false,
            base_dir: None,
        }
    }
}

/// Counts over the whole scan, before `--min-severity`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Unsuppressed findings.
    pub findings: usize,
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    pub info: usize,
    pub suppressed: usize,
    /// Objects scanned.
    pub objects: usize,
    /// Files (and standard input) read.
    pub files: usize,
    pub skipped: SkippedSummary,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedSummary {
    /// Documents not scanned, every reason.
    pub documents: usize,
    /// Documents that are not Kubernetes objects.
    pub non_kubernetes: usize,
    /// Objects of kinds Palisade does not scan, by kind.
    pub kinds: BTreeMap<String, usize>,
    /// Files in walked directories that could not be read.
    pub files: usize,
    /// Unrendered templates (`{{ … }}`), listed in the report's skipped inputs.
    pub templates: usize,
}

impl Summary {
    pub fn new(findings: &[Finding], objects: usize, files: usize, skipped: &Skipped) -> Summary {
        let mut summary = Summary {
            objects,
            files,
            skipped: SkippedSummary {
                documents: skipped.documents(),
                non_kubernetes: skipped.non_kubernetes,
                kinds: skipped.kinds.clone(),
                files: skipped.files,
                templates: skipped.templates,
            },
            ..Summary::default()
        };
        for finding in findings {
            summary.add(finding);
        }
        summary
    }

    /// Counts one more finding (for findings counted as they stream by).
    pub fn add(&mut self, finding: &Finding) {
        if finding.is_suppressed() {
            self.suppressed += 1;
            return;
        }
        self.findings += 1;
        *self.count_mut(finding.severity) += 1;
    }

    pub fn count(&self, severity: Severity) -> usize {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }

    fn count_mut(&mut self, severity: Severity) -> &mut usize {
        match severity {
            Severity::Critical => &mut self.critical,
            Severity::High => &mut self.high,
            Severity::Medium => &mut self.medium,
            Severity::Low => &mut self.low,
            Severity::Info => &mut self.info,
        }
    }
}

impl<'r> Report<'r> {
    /// Every finding, suppressed ones and those below `--min-severity`
    /// included, with the definition of its object it is at. A spool that
    /// cannot be read ends the sequence with its error.
    fn all(&self) -> Box<dyn Iterator<Item = FoundItem<'r>> + 'r> {
        match self.findings {
            ReportFindings::InMemory {
                findings,
                definitions,
            } => Box::new(findings.iter().enumerate().map(|(i, finding)| {
                let definition = definitions.get(i).copied().unwrap_or(0);
                Ok((Cow::Borrowed(finding), definition))
            })),
            ReportFindings::Spooled(spooled) => Box::new(
                spooled
                    .iter()
                    .map(|read| read.map(|r| (Cow::Owned(r.finding), r.definition))),
            ),
        }
    }

    fn source(&self, object: &ObjectRef) -> Option<Source> {
        self.sources.locate(object)
    }

    /// Every finding with its source: the definition of its object it was
    /// found in (looked up once per object and definition for findings
    /// held in memory: they come grouped by object).
    fn all_with_sources(&self) -> Box<dyn Iterator<Item = SourcedItem<'r>> + 'r> {
        let sources = self.sources;
        match self.findings {
            ReportFindings::InMemory { .. } => {
                let mut last: Option<(Cow<'r, Finding>, u32, Option<Source>)> = None;
                Box::new(self.all().map(move |item| {
                    let (finding, definition) = item?;
                    let source = match &last {
                        Some((previous, d, source))
                            if *previous.object == *finding.object && *d == definition =>
                        {
                            source.clone()
                        }
                        _ => {
                            let source = sources.definition(&finding.object, definition as usize);
                            last = Some((finding.clone(), definition, source.clone()));
                            source
                        }
                    };
                    Ok((finding, source.map(Cow::Owned)))
                }))
            }
            ReportFindings::Spooled(spooled) => Box::new(
                spooled
                    .iter()
                    .map(|read| read.map(|r| (Cow::Owned(r.finding), r.source.map(Cow::Owned)))),
            ),
        }
    }

    /// [`Self::all_with_sources`] at or above `--min-severity`.
    fn shown_with_sources(&self) -> impl Iterator<Item = SourcedItem<'r>> + 'r {
        let min_severity = self.options.min_severity;
        self.all_with_sources().filter(move |item| {
            item.as_ref()
                .map_or(true, |(f, _)| f.severity >= min_severity)
        })
    }

    /// Reads the findings along with [`Report::evaluated`] (both sorted by
    /// object): calls `each` with every evaluated object and its findings
    /// (all of them, whatever their severity; `first` is false for an
    /// object listed again), and `other` with each finding of an object
    /// that was not evaluated.
    fn by_evaluated_object(
        &self,
        mut each: impl FnMut(&'r Evaluated, &[Cow<'r, Finding>], bool) -> io::Result<()>,
        mut other: impl FnMut(Cow<'r, Finding>) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut findings = self.all().map(|item| item.map(|(finding, _)| finding));
        let mut pending: Option<Cow<'r, Finding>> = None;
        let mut group: Vec<Cow<'r, Finding>> = Vec::new();
        let mut previous: Option<&'r ObjectRef> = None;
        for evaluated in self.evaluated {
            let object = &evaluated.object;
            // Objects compare as a map keyed by them would.
            let first = previous.is_none_or(|p| p.cmp(object) != Ordering::Equal);
            if first {
                group.clear();
                loop {
                    let next = match pending.take() {
                        Some(finding) => finding,
                        None => match findings.next() {
                            Some(item) => item?,
                            None => break,
                        },
                    };
                    match (*next.object).cmp(object) {
                        Ordering::Less => other(next)?,
                        Ordering::Equal => group.push(next),
                        Ordering::Greater => {
                            pending = Some(next);
                            break;
                        }
                    }
                }
            }
            previous = Some(object);
            each(evaluated, &group, first)?;
        }
        if let Some(finding) = pending {
            other(finding)?;
        }
        for item in findings {
            other(item?)?;
        }
        Ok(())
    }

    /// A check's severity after the policy's overrides.
    fn severity_of(&self, check: &Check) -> Severity {
        self.policy.severity(check, check.severity)
    }
}

/// Writes `report` in `format`.
pub fn write(format: Format, report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Table => table::write(report, out),
        Format::Json => json::write_json(report, out),
        Format::Yaml => json::write_yaml(report, out),
        Format::Sarif => sarif::write(report, out),
        Format::Junit => junit::write(report, out),
        Format::Openreports => openreports::write(report, out),
    }
}

/// Applies-to text for people: what kind of object a check looks at.
pub(crate) fn applies_text(applies: Applies) -> &'static str {
    match applies {
        Applies::Workload => "workloads",
        Applies::Namespace => "namespaces",
        Applies::ServiceAccount => "service accounts",
        Applies::Role => "roles and cluster roles",
        Applies::Binding => "role bindings and cluster role bindings",
        Applies::Other => "objects of other kinds written with a retired API version",
        Applies::Any => "every object",
        Applies::ConfigMap => "config maps",
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A small scan for the format tests.

    use super::*;
    use crate::engine::evaluate;
    use crate::loader::Loader;
    use crate::model::Inventory;

    pub const YAML: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: app
        image: nginx:1.27
        securityContext: {privileged: true}
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: shop
  annotations:
    palisade.dev/ignore: privileged-container
    palisade.dev/ignore-reason: "needs <host> & \"devices\""
spec:
  containers:
  - name: tool
    image: busybox
    securityContext: {privileged: true}
---
apiVersion: v1
kind: Pod
metadata: {name: clean, namespace: shop}
spec:
  containers:
  - {name: app, image: nginx}
"#;

    pub struct Fixture {
        pub errors: Vec<ErrorEntry>,
        pub findings: Vec<Finding>,
        pub sources: SourceIndex,
        pub checks: Vec<&'static Check>,
        pub policy: Policy,
        pub evaluated: Vec<Evaluated>,
        pub summary: Summary,
        pub posture: Vec<(String, crate::crd::cluster_scan_report::NamespacePosture)>,
    }

    /// Scans [`YAML`] with `privileged-container` only.
    pub fn fixture() -> Fixture {
        build(false)
    }

    /// The same, with the namespace posture section.
    pub fn fixture_with_posture() -> Fixture {
        build(true)
    }

    fn build(with_posture: bool) -> Fixture {
        let loaded = Loader::new().load_text("deploy/app.yaml", YAML);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let mut sources = SourceIndex::default();
        let mut inventory = Inventory::default();
        for object in &loaded.objects {
            sources.insert(object.resource.object_ref(), &object.source);
            inventory.add(&object.resource);
        }
        let catalog = crate::checks::catalog();
        let policy = Policy::default()
            .select(catalog, &["privileged-container".into()], &[])
            .expect("known check");
        let checks: Vec<_> = catalog
            .iter()
            .copied()
            .filter(|c| policy.is_enabled(c))
            .collect();
        let findings = evaluate(&inventory, &checks, &policy);
        let mut evaluated: Vec<_> = crate::engine::subjects(&inventory)
            .map(|s| Evaluated {
                object: s.object_ref(),
                applies: s.applies(),
            })
            .collect();
        evaluated.sort_by(|a, b| a.object.cmp(&b.object));
        let summary = Summary::new(&findings, loaded.objects.len(), 1, &loaded.skipped);
        let cx = crate::engine::Context::new(&inventory);
        let posture = match with_posture {
            true => crate::posture::all_namespaces(&cx, &findings, &checks, &policy),
            false => Vec::new(),
        };
        Fixture {
            posture,
            errors: Vec::new(),
            findings,
            sources,
            checks,
            policy,
            evaluated,
            summary,
        }
    }

    impl Fixture {
        pub fn render(&self, format: Format, options: Options) -> String {
            let report = self.report(options);
            let mut out = Vec::new();
            write(format, &report, &mut out).expect("writes to memory");
            String::from_utf8(out).expect("UTF-8 output")
        }

        pub fn report(&self, options: Options) -> Report<'_> {
            Report {
                errors: &self.errors,
                skipped_inputs: &[],
                findings: ReportFindings::InMemory {
                    findings: &self.findings,
                    definitions: &[],
                },
                sources: &self.sources,
                checks: &self.checks,
                policy: &self.policy,
                evaluated: &self.evaluated,
                summary: self.summary.clone(),
                options,
                posture: &self.posture,
            }
        }
    }
}
