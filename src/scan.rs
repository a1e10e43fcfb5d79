//! `palisade scan` and `palisade checks`: manifests in, a report and an exit
//! status out. The clock is read here, never in the engine.

use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::checks::catalog;
use crate::cli::{ChecksArgs, ScanArgs};
use crate::engine::{self, Check, Finding, Severity};
use crate::loader::{Input, LoadError, Loaded, LoadedObject, Loader, SourceIndex, read_policy};
use crate::model::Inventory;
use crate::output::{self, Evaluated, Format, Options, Report, Summary};
use crate::policy::Policy;

/// No unsuppressed finding at or above `--fail-on`.
pub const EXIT_OK: u8 = 0;
/// Unsuppressed findings at or above `--fail-on`.
pub const EXIT_FINDINGS: u8 = 1;
/// Usage or input error.
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
    let Some(scanned) = load_and_evaluate(&args.paths, &policy) else {
        return Ok(EXIT_ERROR);
    };
    write_report(args, &policy, &scanned)?;
    let failed = args
        .fail_on
        .threshold()
        .is_some_and(|threshold| fails(&scanned.findings, threshold));
    // The process ends here: let the OS take back the inventory at once
    // rather than freeing every object of a large scan one by one.
    std::mem::forget(scanned);
    Ok(if failed { EXIT_FINDINGS } else { EXIT_OK })
}

/// Reads the inputs and evaluates them; `None` (with the errors printed)
/// when an input cannot be read.
fn load_and_evaluate(paths: &[PathBuf], policy: &Policy) -> Option<Scanned> {
    let inputs: Vec<Input> = paths.iter().cloned().map(Input::from_arg).collect();
    // Objects go into the inventory as they are decoded.
    let mut collected = Collected::default();
    let loaded =
        Loader::new().load_each(&inputs, io::stdin().lock(), |object| collected.add(object));
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    if !loaded.errors.is_empty() {
        for error in &loaded.errors {
            eprintln!("error: {error}");
        }
        return None;
    }
    let scanned = collected.evaluate(&loaded, policy);
    for warning in &scanned.warnings {
        eprintln!("warning: {warning}");
    }
    Some(scanned)
}

fn write_report(args: &ScanArgs, policy: &Policy, scanned: &Scanned) -> Result<(), String> {
    let checks: Vec<&'static Check> = catalog()
        .iter()
        .copied()
        .filter(|c| policy.is_enabled(c))
        .collect();
    let evaluated = match args.output {
        Format::Junit | Format::Openreports => evaluated_objects(&scanned.inventory),
        _ => Vec::new(),
    };
    let report = Report {
        findings: &scanned.findings,
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
    pub summary: Summary,
    /// Objects defined more than once.
    pub warnings: Vec<LoadError>,
}

/// Loaded objects gathered for one evaluation: the inventory and where each
/// object came from.
#[derive(Default)]
pub struct Collected {
    inventory: Inventory,
    sources: SourceIndex,
    objects: usize,
    warnings: Vec<LoadError>,
}

impl Collected {
    pub fn add(&mut self, object: LoadedObject) {
        self.objects += 1;
        let reference = object.resource.object_ref();
        if let Some(first) = self.sources.insert(reference.clone(), &object.source) {
            self.warnings.push(LoadError::DuplicateObject {
                file: object.source.file.to_string(),
                line: object.source.line,
                object: reference.to_string(),
                first: first.to_string(),
            });
        }
        self.inventory.insert(object.resource);
    }

    /// Evaluates every object together, so that checks that look across
    /// objects (network policies of a namespace) see the whole input.
    pub fn evaluate(mut self, loaded: &Loaded, policy: &Policy) -> Scanned {
        self.inventory.shrink_to_fit();
        let findings = engine::evaluate(&self.inventory, catalog(), policy);
        let summary = Summary::new(&findings, self.objects, loaded.files, &loaded.skipped);
        Scanned {
            inventory: self.inventory,
            sources: self.sources,
            findings,
            summary,
            warnings: self.warnings,
        }
    }
}

/// Evaluates the objects of `loaded` (see [`Collected::evaluate`]).
pub fn evaluate(mut loaded: Loaded, policy: &Policy) -> Scanned {
    let mut collected = Collected::default();
    for object in std::mem::take(&mut loaded.objects) {
        collected.add(object);
    }
    collected.evaluate(&loaded, policy)
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
    let text = output::catalog::render(catalog(), args.output);
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
