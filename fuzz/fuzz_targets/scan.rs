//! Arbitrary bytes as the content of a manifest file: through the loader,
//! and when they load, through the engine and every output format.
//!
//! Beyond "never panics", each run checks what the scan promises: the JSON
//! and SARIF reports are JSON, the YAML report is YAML, the JUnit report is
//! XML, and the same input gives the same report byte for byte.

#![no_main]

use libfuzzer_sys::fuzz_target;

use palisade::checks::catalog;
use palisade::engine::Check;
use palisade::loader::{Input, Loader, split_documents};
use palisade::output::{self, Evaluated, Format, Options, Report};
use palisade::policy::Policy;
use palisade::scan::{self, Scanned};

const FORMATS: [Format; 6] = [
    Format::Table,
    Format::Json,
    Format::Yaml,
    Format::Sarif,
    Format::Junit,
    Format::Openreports,
];

fuzz_target!(|data: &[u8]| {
    // Standard input takes the same path as a named file: size limit,
    // binary and UTF-8 checks, JSON-or-YAML sniffing, document parsing.
    let loaded = Loader::new().load_with_stdin(&[Input::Stdin], data);
    for problem in loaded.errors.iter().chain(&loaded.warnings) {
        let _ = problem.to_string();
    }
    if !loaded.errors.is_empty() {
        return;
    }
    let policy = Policy::default();
    let scanned = scan::evaluate(loaded, &policy);
    for warning in &scanned.warnings {
        let _ = warning.to_string();
    }
    let evaluated = scan::evaluated_objects(&scanned.inventory);
    let checks: Vec<&'static Check> = catalog().to_vec();
    for format in FORMATS {
        let first = render(format, &scanned, &checks, &policy, &evaluated);
        check_syntax(format, &first);
        if format == Format::Json {
            let second = render(format, &scanned, &checks, &policy, &evaluated);
            assert!(
                first == second,
                "JSON output differs between two renderings"
            );
        }
    }
});

/// Panics unless `out` is well-formed in its format's syntax.
fn check_syntax(format: Format, out: &[u8]) {
    let text = std::str::from_utf8(out).expect("reports are UTF-8");
    match format {
        Format::Json | Format::Sarif => {
            if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
                panic!("{format:?} report is not JSON: {e}");
            }
        }
        Format::Yaml => {
            if let Err(e) = serde_norway::from_str::<serde_json::Value>(text) {
                panic!("YAML report is not YAML: {e}");
            }
        }
        Format::Junit => {
            if let Err(e) = roxmltree::Document::parse(text) {
                panic!("JUnit report is not XML: {e}");
            }
        }
        Format::Openreports => {
            // A stream of `---`-separated documents, each one YAML object.
            for document in split_documents(text)
                .iter()
                .filter(|d| d.content_line.is_some())
            {
                if let Err(e) = serde_norway::from_str::<serde_json::Value>(document.text) {
                    panic!("OpenReports document is not YAML: {e}");
                }
            }
        }
        Format::Table => {}
    }
}

fn render(
    format: Format,
    scanned: &Scanned,
    checks: &[&'static Check],
    policy: &Policy,
    evaluated: &[Evaluated],
) -> Vec<u8> {
    let report = Report {
        errors: &[],
        skipped_inputs: &[],
        findings: &scanned.findings,
        definitions: &scanned.definitions,
        sources: &scanned.sources,
        checks,
        policy,
        evaluated,
        summary: scanned.summary.clone(),
        options: Options {
            show_suppressed: true,
            color: true,
            ..Options::default()
        },
    };
    let mut out = Vec::new();
    output::write(format, &report, &mut out).expect("writing to memory cannot fail");
    out
}
