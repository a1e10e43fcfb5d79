//! `palisade scan`: manifests in, a report and an exit
//! status out. The clock is read here, never in the engine.

use std::collections::BTreeSet;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use std::process::ExitCode;

use crate::checks::catalog;
use crate::crd::cluster_scan_report::NamespacePosture;
use crate::engine::spool::FindingSpool;
use crate::engine::{self, Check, Context, Finding, Severity};
use crate::loader::{
    ErrorEntry, Input, LoadError, Loaded, LoadedObject, Loader, SourceIndex, line_of_field,
    read_policy,
};
use crate::model::{Inventory, KindTable, KubernetesVersion, ObjectRef, PathSegment};
use crate::output::{self, Evaluated, Format, Options, Report, ReportFindings, Summary};
use crate::policy::Policy;
use crate::posture;

use super::stream::{self, Streamed};

/// No unsuppressed finding at or above `--fail-on`.
pub const EXIT_OK: u8 = 0;
/// Unsuppressed findings at or above `--fail-on`.
pub const EXIT_FINDINGS: u8 = 1;
/// Usage error, or an input that is not a valid manifest (unless
/// `--invalid=warn`), reported after the full report.
pub const EXIT_ERROR: u8 = 2;

/// Exit codes: 0 no unsuppressed finding at or above `--fail-on`, 1 there
/// are, 2 usage errors or (unless `--invalid=warn`) invalid input.
#[derive(Args, Debug)]
#[command(
    after_help = "Exit status: 0 no unsuppressed finding at or above --fail-on, \
                        1 there are, 2 usage error or an input that is not a valid manifest \
                        (after the full report; --invalid=warn reports it without changing \
                        the status)."
)]
pub struct ScanArgs {
    /// Files and directories to scan (directories recursively: .yaml, .yml,
    /// .json); `-` reads standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,

    /// Exit with status 1 when an unsuppressed finding is at or above this
    /// severity.
    #[arg(long, value_enum, default_value_t = FailOn::High, value_name = "SEVERITY")]
    pub fail_on: FailOn,

    /// Run only these checks (ids or other tools' ids, comma separated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub checks: Vec<String>,

    /// Do not run these checks (ids or other tools' ids, comma separated).
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    pub skip_checks: Vec<String>,

    /// Leave findings below this severity out of the output. The summary
    /// counts and the exit status still include them.
    #[arg(long, value_enum, default_value_t = SeverityArg::Info, value_name = "SEVERITY")]
    pub min_severity: SeverityArg,

    /// List suppressed findings in the table (other formats always carry
    /// them, marked as suppressed).
    #[arg(long)]
    pub show_suppressed: bool,

    /// A ScanPolicy document (apiVersion palisade.dev/v1alpha1): checks,
    /// severity overrides, exceptions.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,

    /// What an input that is not a valid manifest does to the exit status:
    /// `error` exits 2 (after the full report), `warn` only reports it.
    /// Every valid document is scanned either way.
    #[arg(long, value_enum, default_value_t = Invalid::Error, value_name = "MODE")]
    pub invalid: Invalid,

    /// The Kubernetes release the manifests are for (e.g. `1.25`): decides
    /// which API versions `removed-api-version` and `deprecated-api-version`
    /// report. Default: the newest release Palisade knows.
    #[arg(long, value_name = "VERSION")]
    pub kubernetes_version: Option<crate::model::KubernetesVersion>,
}

/// `--invalid`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Invalid {
    Error,
    Warn,
}

/// `--fail-on`: a severity, or `none` to never fail on findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Critical,
    High,
    Medium,
    Low,
    Info,
    None,
}

impl FailOn {
    pub fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Critical => Some(Severity::Critical),
            FailOn::High => Some(Severity::High),
            FailOn::Medium => Some(Severity::Medium),
            FailOn::Low => Some(Severity::Low),
            FailOn::Info => Some(Severity::Info),
            FailOn::None => None,
        }
    }
}

/// A severity on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SeverityArg {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl From<SeverityArg> for Severity {
    fn from(arg: SeverityArg) -> Severity {
        match arg {
            SeverityArg::Critical => Severity::Critical,
            SeverityArg::High => Severity::High,
            SeverityArg::Medium => Severity::Medium,
            SeverityArg::Low => Severity::Low,
            SeverityArg::Info => Severity::Info,
        }
    }
}

pub fn run(args: &ScanArgs) -> ExitCode {
    match scan(args) {
        Ok(code) => ExitCode::from(code),
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn scan(args: &ScanArgs) -> Result<u8, String> {
    let (policy, kinds) = policy(args)?;
    let scanned = load_and_evaluate(args, &policy, &kinds);
    write_report(args, &policy, &scanned)?;
    let code = exit_code(args, &scanned);
    // The process ends here: let the OS take back the inventory at once
    // rather than freeing every object of a large scan one by one.
    std::mem::forget(scanned);
    Ok(code)
}

/// 2 for a usage error, or for invalid input unless `--invalid=warn`;
/// otherwise what the findings say.
fn exit_code(args: &ScanArgs, scanned: &Scanned) -> u8 {
    let usage_error = scanned.errors.iter().any(|e| !e.is_invalid_input());
    let invalid_input = scanned.errors.iter().any(LoadError::is_invalid_input);
    if usage_error || (invalid_input && args.invalid == Invalid::Error) {
        return EXIT_ERROR;
    }
    let failed = args
        .fail_on
        .threshold()
        .is_some_and(|threshold| scanned.fails(threshold));
    if failed { EXIT_FINDINGS } else { EXIT_OK }
}

/// Reads the inputs and evaluates every object that could be read; the
/// problems go to standard error and into the report.
fn load_and_evaluate(args: &ScanArgs, policy: &Policy, kinds: &KindTable) -> Scanned {
    let inputs: Vec<Input> = args.paths.iter().cloned().map(Input::from_arg).collect();
    let streamed = match can_stream(args, policy, &inputs) {
        true => load_streaming(&inputs, policy, kinds, args.kubernetes_version),
        false => None,
    };
    let scanned =
        streamed.unwrap_or_else(|| load_whole(&inputs, policy, kinds, args.kubernetes_version));
    for warning in &scanned.warnings {
        eprintln!("warning: {warning}");
    }
    for error in &scanned.errors {
        eprintln!("error: {error}");
    }
    scanned
}

/// Whether the scan may keep workloads as facts (see [`super::stream`]):
/// not with custom checks, which read whole objects; not for JUnit and
/// OpenReports output, which list every object; not from standard input,
/// which cannot be read a second time if the input turns out to need
/// whole objects.
fn can_stream(args: &ScanArgs, policy: &Policy, inputs: &[Input]) -> bool {
    policy.custom_checks().next().is_none()
        && !matches!(args.output, Format::Junit | Format::Openreports)
        && !inputs.contains(&Input::Stdin)
}

/// Reads the inputs keeping workloads as facts; `None` when the input
/// needs whole objects after all.
pub fn load_streaming(
    inputs: &[Input],
    policy: &Policy,
    kinds: &KindTable,
    kubernetes_version: Option<KubernetesVersion>,
) -> Option<Scanned> {
    let spool = FindingSpool::new();
    load_streaming_into(
        spool,
        stream::HOLD_FROM,
        inputs,
        policy,
        kinds,
        kubernetes_version,
    )
}

/// [`load_streaming`], the findings going to `spool`, ServiceAccounts,
/// roles and bindings past the first `hold_from` held on disk.
pub fn load_streaming_into(
    spool: FindingSpool,
    hold_from: usize,
    inputs: &[Input],
    policy: &Policy,
    kinds: &KindTable,
    kubernetes_version: Option<KubernetesVersion>,
) -> Option<Scanned> {
    let mut streamed = Streamed::new(spool, hold_from);
    // Each workload's own checks run on the parsing threads.
    let loaded = Loader::new().kinds(kinds.clone()).load_each_mapped(
        inputs,
        io::empty(),
        |object| stream::digest(object, policy),
        |digested| streamed.add(digested),
    );
    streamed.evaluate(loaded, policy, kubernetes_version)
}

/// Reads the inputs holding every object whole.
pub fn load_whole(
    inputs: &[Input],
    policy: &Policy,
    kinds: &KindTable,
    kubernetes_version: Option<KubernetesVersion>,
) -> Scanned {
    // Objects go into the inventory as they are decoded.
    let mut collected = Collected::default();
    let loaded =
        Loader::new()
            .kinds(kinds.clone())
            .load_each(inputs, io::stdin().lock(), |object| collected.add(object));
    collected.kubernetes_version = kubernetes_version;
    collected.evaluate(loaded, policy)
}

fn write_report(args: &ScanArgs, policy: &Policy, scanned: &Scanned) -> Result<(), String> {
    let checks: Vec<&'static Check> = catalog()
        .iter()
        .copied()
        .chain(policy.custom_checks())
        .filter(|c| policy.is_enabled(c))
        .collect();
    // Admission policies among the inputs are checks of this scan only.
    let mut checks = checks;
    for finding in &scanned.findings {
        if !checks.iter().any(|c| std::ptr::eq(*c, finding.check)) {
            checks.push(finding.check);
        }
    }
    let evaluated = match args.output {
        Format::Junit | Format::Openreports => evaluated_objects(&scanned.inventory),
        _ => Vec::new(),
    };
    let errors: Vec<ErrorEntry> = scanned.errors.iter().map(LoadError::entry).collect();
    let skipped_inputs: Vec<ErrorEntry> = scanned
        .warnings
        .iter()
        .filter(|w| matches!(w, LoadError::Template { .. }))
        .map(LoadError::entry)
        .collect();
    let posture = match args.output {
        Format::Table | Format::Json | Format::Yaml => scanned.posture(policy),
        _ => Vec::new(),
    };
    let report = Report {
        posture: &posture,
        errors: &errors,
        skipped_inputs: &skipped_inputs,
        findings: scanned.report_findings(),
        sources: &scanned.sources,
        checks: &checks,
        policy,
        evaluated: &evaluated,
        summary: scanned.summary.clone(),
        options: Options {
            min_severity: args.min_severity.into(),
            show_suppressed: args.show_suppressed,
            color: args.output == Format::Table && use_color(),
            base_dir: std::env::current_dir().ok(),
        },
    };
    write_stdout(|out| output::write(args.output, &report, out))
}

/// The policy from `--policy`, narrowed by `--checks` and `--skip-checks`.
/// The policy of `--policy` (or the defaults) with `--checks` and
/// `--skip-checks` applied, and the workload kinds it adds.
fn policy(args: &ScanArgs) -> Result<(Policy, KindTable), String> {
    let catalog = catalog();
    let (policy, kinds) = match &args.policy {
        Some(path) => {
            let spec = read_policy(path).map_err(|e| e.to_string())?;
            // Exceptions expire: the policy needs to know what time it is.
            let now = jiff::Timestamp::now();
            let policy = Policy::from_spec(&spec, catalog, Some(now))
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let kinds = spec.kind_table().map_err(|e| {
                let field = [
                    PathSegment::Key("spec".into()),
                    PathSegment::Key("workloadKinds".into()),
                    PathSegment::Index(e.index),
                    PathSegment::Key(e.field.into()),
                ];
                match line_of_field(path, &field) {
                    Some(line) => format!("{}:{line}: {e}", path.display()),
                    None => format!("{}: {e}", path.display()),
                }
            })?;
            (policy, kinds)
        }
        None => (Policy::default(), KindTable::default()),
    };
    let policy = policy
        .select(catalog, &args.checks, &args.skip_checks)
        .map_err(|e| e.to_string())?;
    Ok((policy, kinds))
}

/// What the engine made of the loaded objects.
pub struct Scanned {
    pub inventory: Inventory,
    pub sources: SourceIndex,
    /// Every finding, sorted; empty when they were spooled.
    pub findings: Vec<Finding>,
    /// The findings of a scan that kept workloads as facts, which are not
    /// held in memory.
    pub spooled: Option<stream::Spooled>,
    /// Which definition of its object each finding is at (0 the first),
    /// parallel to `findings`; empty when no object is defined twice.
    pub definitions: Vec<u32>,
    /// The Pod Security verdict of each workload kept as facts
    /// (`inventory.facts`), for the namespace posture.
    pub fact_verdicts: Vec<crate::posture::TemplateVerdict>,
    pub summary: Summary,
    /// Inputs that could not be read or decoded, and usage errors.
    pub errors: Vec<LoadError>,
    /// Skipped inputs (templates, unreadable walked files) and objects
    /// defined more than once.
    pub warnings: Vec<LoadError>,
}

impl Scanned {
    /// The findings for the report, wherever they are.
    pub fn report_findings(&self) -> ReportFindings<'_> {
        match &self.spooled {
            Some(spooled) => ReportFindings::Spooled(&spooled.findings),
            None => ReportFindings::InMemory {
                findings: &self.findings,
                definitions: &self.definitions,
            },
        }
    }

    /// Whether an unsuppressed finding is at or above `threshold`.
    pub fn fails(&self, threshold: Severity) -> bool {
        Severity::ALL_WORST_FIRST
            .into_iter()
            .filter(|s| *s >= threshold)
            .any(|s| self.summary.count(s) > 0)
    }

    /// The posture of every namespace of the input.
    pub fn posture(&self, policy: &Policy) -> Vec<(String, NamespacePosture)> {
        let cx = Context::new(&self.inventory);
        let verdicts = &self.fact_verdicts;
        match &self.spooled {
            Some(spooled) => {
                let judged = posture::Judged {
                    subjects: &spooled.subject_standings,
                    fact_verdicts: verdicts,
                    fact_standings: &spooled.fact_standings,
                    checked_alone: &spooled.checked_alone,
                };
                posture::all_namespaces_judged(&cx, &judged, catalog(), policy)
            }
            None => {
                posture::all_namespaces_with_facts(&cx, &self.findings, verdicts, catalog(), policy)
            }
        }
    }
}

/// Loaded objects gathered for one evaluation: the inventory and where each
/// object came from.
#[derive(Default)]
pub struct Collected {
    /// The first definition of every object.
    inventory: Inventory,
    sources: SourceIndex,
    objects: usize,
    warnings: Vec<LoadError>,
    /// Second definitions of objects, then third ones, …: each is
    /// evaluated on its own, in place of the first.
    redefinitions: Vec<Vec<LoadedObject>>,
    /// `--kubernetes-version`.
    pub kubernetes_version: Option<KubernetesVersion>,
}

impl Collected {
    pub fn add(&mut self, object: LoadedObject) {
        self.objects += 1;
        let reference = object.resource.object_ref();
        let Some(first) = self.sources.insert(reference.clone(), &object.source) else {
            add_to(&mut self.inventory, reference, object);
            return;
        };
        self.warnings.push(LoadError::DuplicateObject {
            file: object.source.file.to_string(),
            line: object.source.line,
            object: reference.to_string(),
            first: first.to_string(),
        });
        // This is definition `index` (1 the second) of the object.
        let index = self.sources.definitions(&reference) - 1;
        if self.redefinitions.len() < index {
            self.redefinitions.resize_with(index, Vec::new);
        }
        self.redefinitions[index - 1].push(object);
    }

    /// Evaluates every object together, so that checks that look across
    /// objects (network policies of a namespace) see the whole input.
    pub fn evaluate(mut self, loaded: Loaded, policy: &Policy) -> Scanned {
        self.inventory.resolve_workload_refs();
        self.inventory.shrink_to_fit();
        self.inventory.kubernetes_version = self.kubernetes_version;
        let policy = &policy.with_admission_policies(&self.inventory);
        let mut findings = engine::evaluate(&self.inventory, catalog(), policy);
        let mut definitions = Vec::new();
        if !self.redefinitions.is_empty() {
            (findings, definitions) = self.with_redefinitions(findings, policy);
        }
        let summary = Summary::new(&findings, self.objects, loaded.files, &loaded.skipped);
        let mut warnings = loaded.warnings;
        warnings.append(&mut self.warnings);
        Scanned {
            inventory: self.inventory,
            sources: self.sources,
            findings,
            spooled: None,
            definitions,
            fact_verdicts: Vec::new(),
            summary,
            errors: loaded.errors,
            warnings,
        }
    }

    /// Adds the findings of every later definition of an object, each
    /// evaluated in place of the first with the rest of the input around
    /// it, to `first` (the findings of the first definitions); returns all
    /// of them sorted, with the definition each was found in.
    fn with_redefinitions(&self, first: Vec<Finding>, policy: &Policy) -> (Vec<Finding>, Vec<u32>) {
        let mut all: Vec<(Finding, u32)> = first.into_iter().map(|f| (f, 0)).collect();
        for (layer, objects) in self.redefinitions.iter().enumerate() {
            let replaced: BTreeSet<ObjectRef> =
                objects.iter().map(|o| o.resource.object_ref()).collect();
            let mut inventory = self.inventory.clone();
            inventory.remove_all(&replaced);
            for object in objects {
                add_to(&mut inventory, object.resource.object_ref(), object.clone());
            }
            let definition = u32::try_from(layer + 1).unwrap_or(u32::MAX);
            let cx = Context::new(&inventory);
            for subject in engine::subjects(&inventory) {
                if replaced.contains(&subject.object_ref()) {
                    let found = engine::evaluate_subject(&subject, &cx, catalog(), policy);
                    all.extend(found.into_iter().map(|f| (f, definition)));
                }
            }
        }
        all.sort_unstable();
        all.dedup();
        all.into_iter().unzip()
    }
}

/// Adds a loaded object to `inventory`, noting an old `apiVersion`.
pub(super) fn add_to(inventory: &mut Inventory, reference: ObjectRef, object: LoadedObject) {
    note_written_api_version(inventory, reference, object.api_version);
    inventory.insert(object.resource);
}

/// Notes that `reference` was written with `api_version` when that is an
/// old one read in its current shape.
pub(super) fn note_written_api_version(
    inventory: &mut Inventory,
    reference: ObjectRef,
    api_version: String,
) {
    if api_version != reference.api_version {
        inventory
            .written_api_versions
            .insert(reference, api_version);
    }
}

/// Evaluates the objects of `loaded` (see [`Collected::evaluate`]).
pub fn evaluate(mut loaded: Loaded, policy: &Policy) -> Scanned {
    let mut collected = Collected::default();
    for object in std::mem::take(&mut loaded.objects) {
        collected.add(object);
    }
    collected.evaluate(loaded, policy)
}

/// Every object the engine evaluated, once each, in report order (the
/// test suites of the JUnit report).
pub fn evaluated_objects(inventory: &Inventory) -> Vec<Evaluated> {
    let mut evaluated: Vec<Evaluated> = engine::subjects(inventory)
        .map(|s| Evaluated {
            object: s.object_ref(),
            applies: s.applies(),
        })
        .collect();
    evaluated.sort_by(|a, b| a.object.cmp(&b.object));
    evaluated.dedup_by(|a, b| a.object == b.object);
    evaluated
}

/// Colour only for a person at a terminal who has not opted out
/// (<https://no-color.org>).
fn use_color() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Writes to standard output; a closed pipe (`| head`) is not an error.
pub(crate) fn write_stdout(
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), String> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing the report: {e}")),
    }
}
