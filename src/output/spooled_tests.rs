//! Every format writes the same bytes whether the findings are held in
//! memory or read back from a spool.

use clap::ValueEnum;

use super::*;
use crate::engine::spool::{FindingSpool, Reported, SpooledFindings};
use crate::loader::{Input, Loader};

/// A scan of the test corpus and of the format fixture in two files (later
/// definitions of the same objects, one changed), every check on.
struct Scan {
    scanned: crate::cli::scan::Scanned,
    checks: Vec<&'static Check>,
    policy: Policy,
    evaluated: Vec<Evaluated>,
    errors: Vec<ErrorEntry>,
}

fn scan() -> Scan {
    let dir = tempfile::tempdir().expect("temporary directory");
    let fixture = dir.path().join("fixture.yaml");
    let copy = dir.path().join("copy.yaml");
    let changed = testing::YAML.replace("nginx:1.27", "nginx:latest");
    std::fs::write(&fixture, testing::YAML).expect("fixture written");
    std::fs::write(&copy, changed).expect("copy written");
    let inputs = [
        Input::from_arg("tests/corpus"),
        Input::from_arg(fixture),
        Input::from_arg(copy),
        Input::from_arg("no/such/file.yaml"),
    ];
    let loaded = Loader::new().load(&inputs);
    let policy = Policy::default();
    let scanned = crate::cli::scan::evaluate(loaded, &policy);
    let mut checks: Vec<&'static Check> = crate::checks::catalog().to_vec();
    checks.sort_by_key(|c| c.id);
    let evaluated = crate::cli::scan::evaluated_objects(&scanned.inventory);
    let errors = scanned.errors.iter().map(|e| e.entry()).collect();
    Scan {
        scanned,
        checks,
        policy,
        evaluated,
        errors,
    }
}

impl Scan {
    /// The findings through a spool of `budget` bytes, in engine order
    /// reversed (the spool sorts them).
    fn spool(&self, budget: usize) -> SpooledFindings {
        let mut spool = FindingSpool::with_budget(budget);
        let findings = &self.scanned.findings;
        for (i, finding) in findings.iter().enumerate().rev() {
            let definition = self.scanned.definitions.get(i).copied().unwrap_or(0);
            let source = self
                .scanned
                .sources
                .definition(&finding.object, definition as usize);
            // Twice: the spool drops repeats.
            for _ in 0..1 + i % 2 {
                spool.push(Reported {
                    finding: finding.clone(),
                    definition,
                    source: source.clone(),
                });
            }
        }
        spool.finish().expect("runs written")
    }

    fn render(&self, findings: ReportFindings<'_>, format: Format, options: Options) -> String {
        let report = Report {
            errors: &self.errors,
            skipped_inputs: &[],
            findings,
            sources: &self.scanned.sources,
            checks: &self.checks,
            policy: &self.policy,
            evaluated: &self.evaluated,
            summary: self.scanned.summary.clone(),
            options,
            posture: &[],
        };
        let mut out = Vec::new();
        write(format, &report, &mut out).expect("writes to memory");
        String::from_utf8(out).expect("UTF-8 output")
    }
}

fn option_sets() -> Vec<Options> {
    let mut sets = Vec::new();
    for min_severity in [Severity::Info, Severity::High] {
        for show_suppressed in [false, true] {
            sets.push(Options {
                min_severity,
                show_suppressed,
                color: show_suppressed,
                base_dir: None,
            });
        }
    }
    sets
}

#[test]
fn spooled_findings_give_the_same_bytes_in_every_format() {
    let scan = scan();
    let findings = &scan.scanned.findings;
    assert!(findings.len() > 100, "{} findings", findings.len());
    assert!(findings.iter().any(Finding::is_suppressed));
    assert!(scan.scanned.definitions.iter().any(|&d| d > 0));
    assert!(!scan.errors.is_empty());
    let in_memory = ReportFindings::InMemory {
        findings,
        definitions: &scan.scanned.definitions,
    };
    for budget in [0, 4096, crate::engine::spool::DEFAULT_BUDGET_BYTES] {
        let spooled = scan.spool(budget);
        if budget < 10_000 {
            assert!(spooled.spills() > 10, "{} spills", spooled.spills());
        }
        for format in Format::value_variants() {
            for options in option_sets() {
                let expected = scan.render(in_memory, *format, options.clone());
                let actual = scan.render(ReportFindings::Spooled(&spooled), *format, options);
                assert!(
                    expected == actual,
                    "{format:?} differs with a budget of {budget}:\n{}",
                    first_difference(&expected, &actual)
                );
            }
        }
    }
}

/// The first line that differs, for a readable failure.
fn first_difference(expected: &str, actual: &str) -> String {
    let line = expected
        .lines()
        .zip(actual.lines())
        .position(|(e, a)| e != a)
        .unwrap_or(expected.lines().count().min(actual.lines().count()));
    format!(
        "line {}: expected {:?}, got {:?}",
        line + 1,
        expected.lines().nth(line),
        actual.lines().nth(line)
    )
}

#[test]
fn a_spool_read_error_is_the_write_error() {
    let scan = scan();
    let spooled = scan.spool(0);
    spooled.damage_for_test();
    for format in Format::value_variants() {
        let report = Report {
            errors: &scan.errors,
            skipped_inputs: &[],
            findings: ReportFindings::Spooled(&spooled),
            sources: &scan.scanned.sources,
            checks: &scan.checks,
            policy: &scan.policy,
            evaluated: &scan.evaluated,
            summary: scan.scanned.summary.clone(),
            options: Options::default(),
            posture: &[],
        };
        let error = write(*format, &report, &mut Vec::new()).expect_err("a damaged run");
        assert_eq!(
            error.kind(),
            io::ErrorKind::UnexpectedEof,
            "{format:?}: {error}"
        );
    }
}

#[test]
fn a_summary_counted_finding_by_finding_is_the_summary_of_them_all() {
    let scan = scan();
    let findings = &scan.scanned.findings;
    let skipped = crate::loader::Skipped::default();
    let mut counted = Summary::new(&[], 7, 2, &skipped);
    for finding in findings {
        counted.add(finding);
    }
    let whole = Summary::new(findings, 7, 2, &skipped);
    assert_eq!(counted, whole);
    assert!(whole.suppressed > 0 && whole.critical > 0 && whole.findings > whole.critical);
}
