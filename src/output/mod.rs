//! Report formats for scan results: a table for people, JSON and YAML for
//! scripts, SARIF for code-scanning dashboards, JUnit XML for CI test views.
//! Every format is deterministic: the same findings give the same bytes.

pub mod catalog;
mod json;
mod junit;
pub mod openreports;
pub mod posture;
mod sarif;
mod table;

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::PathBuf;

use serde::Serialize;

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
    pub findings: &'a [Finding],
    /// Which definition of its object each finding is at (0 the first, for
    /// objects defined in several places), parallel to `findings`; empty
    /// when every finding is at its object's first definition.
    pub definitions: &'a [u32],
    pub sources: &'a SourceIndex,
    /// The checks that ran, sorted by id.
    pub checks: &'a [&'static Check],
    /// Gives the checks' effective severities.
    pub policy: &'a Policy,
    /// Every evaluated object (JUnit lists a test case for each of its
    /// checks); may be empty for the other formats.
    pub evaluated: &'a [Evaluated],
    pub summary: Summary,
    pub options: Options,
    /// The posture of each namespace of the input, by name (table, JSON
    /// and YAML show it; may be empty for the other formats).
    pub posture: &'a [(String, crate::crd::cluster_scan_report::NamespacePosture)],
}

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
            if finding.is_suppressed() {
                summary.suppressed += 1;
                continue;
            }
            summary.findings += 1;
            *summary.count_mut(finding.severity) += 1;
        }
        summary
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

impl Report<'_> {
    /// Findings at or above `--min-severity`, suppressed ones included.
    fn shown(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity >= self.options.min_severity)
    }

    fn source(&self, object: &ObjectRef) -> Option<&Source> {
        self.sources.locate(object)
    }

    /// [`Self::shown`] with each finding's source: the definition of its
    /// object it was found in, looked up once per object and definition
    /// (findings come grouped by object).
    fn shown_with_sources(&self) -> impl Iterator<Item = (&Finding, Option<&Source>)> {
        let mut last: Option<(&ObjectRef, u32, Option<&Source>)> = None;
        self.findings
            .iter()
            .enumerate()
            .filter(|(_, f)| f.severity >= self.options.min_severity)
            .map(move |(i, finding)| {
                let definition = self.definitions.get(i).copied().unwrap_or(0);
                let source = match last {
                    Some((object, d, source)) if *object == *finding.object && d == definition => {
                        source
                    }
                    _ => {
                        let source = self
                            .sources
                            .definition(&finding.object, definition as usize);
                        last = Some((&finding.object, definition, source));
                        source
                    }
                };
                (finding, source)
            })
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
            let report = Report {
                errors: &self.errors,
                skipped_inputs: &[],
                findings: &self.findings,
                definitions: &[],
                sources: &self.sources,
                checks: &self.checks,
                policy: &self.policy,
                evaluated: &self.evaluated,
                summary: self.summary.clone(),
                options,
                posture: &self.posture,
            };
            let mut out = Vec::new();
            write(format, &report, &mut out).expect("writes to memory");
            String::from_utf8(out).expect("UTF-8 output")
        }
    }
}
