//! `palisade scan` and `palisade checks`: manifests in, a report and an exit
//! status out. The clock is read here, never in the engine.

use std::collections::BTreeSet;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::checks::catalog;
use crate::cli::{ChecksArgs, Invalid, ScanArgs};
use crate::engine::{self, Check, Context, Finding, Severity};
use crate::loader::{
    ErrorEntry, Input, LoadError, Loaded, LoadedObject, Loader, SourceIndex, read_policy,
};
use crate::model::{Inventory, KubernetesVersion, ObjectRef};
use crate::output::{self, Evaluated, Format, Options, Report, Summary};
use crate::policy::Policy;

/// No unsuppressed finding at or above `--fail-on`.
pub const EXIT_OK: u8 = 0;
/// Unsuppressed findings at or above `--fail-on`.
pub const EXIT_FINDINGS: u8 = 1;
/// Usage error, or an input that is not a valid manifest (unless
/// `--invalid=warn`), reported after the full report.
pub const EXIT_ERROR: u8 = 2;

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
    let policy = policy(args)?;
    let scanned = load_and_evaluate(&args.paths, &policy, args.kubernetes_version);
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
        .is_some_and(|threshold| fails(&scanned.findings, threshold));
    if failed { EXIT_FINDINGS } else { EXIT_OK }
}

/// Reads the inputs and evaluates every object that could be read; the
/// problems go to standard error and into the report.
fn load_and_evaluate(
    paths: &[PathBuf],
    policy: &Policy,
    kubernetes_version: Option<KubernetesVersion>,
) -> Scanned {
    let inputs: Vec<Input> = paths.iter().cloned().map(Input::from_arg).collect();
    // Objects go into the inventory as they are decoded.
    let mut collected = Collected::default();
    let loaded =
        Loader::new().load_each(&inputs, io::stdin().lock(), |object| collected.add(object));
    collected.kubernetes_version = kubernetes_version;
    let scanned = collected.evaluate(loaded, policy);
    for warning in &scanned.warnings {
        eprintln!("warning: {warning}");
    }
    for error in &scanned.errors {
        eprintln!("error: {error}");
    }
    scanned
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
    let report = Report {
        errors: &errors,
        skipped_inputs: &skipped_inputs,
        findings: &scanned.findings,
        definitions: &scanned.definitions,
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
fn policy(args: &ScanArgs) -> Result<Policy, String> {
    let catalog = catalog();
    let policy = match &args.policy {
        Some(path) => {
            let spec = read_policy(path).map_err(|e| e.to_string())?;
            // Exceptions expire: the policy needs to know what time it is.
            let now = jiff::Timestamp::now();
            Policy::from_spec(&spec, catalog, Some(now))
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Policy::default(),
    };
    policy
        .select(catalog, &args.checks, &args.skip_checks)
        .map_err(|e| e.to_string())
}

/// What the engine made of the loaded objects.
pub struct Scanned {
    pub inventory: Inventory,
    pub sources: SourceIndex,
    pub findings: Vec<Finding>,
    /// Which definition of its object each finding is at (0 the first),
    /// parallel to `findings`; empty when no object is defined twice.
    pub definitions: Vec<u32>,
    pub summary: Summary,
    /// Inputs that could not be read or decoded, and usage errors.
    pub errors: Vec<LoadError>,
    /// Skipped inputs (templates, unreadable walked files) and objects
    /// defined more than once.
    pub warnings: Vec<LoadError>,
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
            definitions,
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
fn add_to(inventory: &mut Inventory, reference: ObjectRef, object: LoadedObject) {
    if object.api_version != reference.api_version {
        inventory
            .written_api_versions
            .insert(reference, object.api_version);
    }
    inventory.insert(object.resource);
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
fn write_stdout(write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> Result<(), String> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(format!("writing the report: {e}")),
    }
}

/// `palisade checks`.
pub fn list_checks(args: &ChecksArgs) -> ExitCode {
    let checks = match crate::policy::custom::catalog_with_policy(args.policy.as_deref()) {
        Ok(checks) => checks,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let text = output::catalog::render(&checks, args.output);
    match write_stdout(|out| out.write_all(text.as_bytes())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Whether any unsuppressed finding is at or above `threshold`.
pub fn fails(findings: &[Finding], threshold: Severity) -> bool {
    findings
        .iter()
        .any(|f| !f.is_suppressed() && f.severity >= threshold)
}
