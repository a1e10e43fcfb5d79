//! Polaris conformance: every Palisade check that names a Polaris check among
//! its aliases must agree with Polaris's own test fixtures, or the case must
//! be listed, with the reason, in `docs/conformance.md`.
//!
//! The fixtures are Polaris's `test/checks/<check>/{success,failure}*.yaml`
//! (kept outside the repository, in `../shared/conformance/polaris/`). A
//! success file must give no unsuppressed finding of the aliased check(s); a
//! failure file must give at least one. The aliases are read from the catalog
//! at run time, so a new check with a Polaris alias is held to the fixtures as
//! soon as it exists.
//!
//! The table in `docs/conformance.md` is checked both ways: an unlisted
//! disagreement fails, and so does a listed case that no longer disagrees.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use palisade::checks::catalog;
use palisade::engine::{Tool, evaluate};
use palisade::model::{Inventory, Resource};
use palisade::policy::Policy;
use serde::Deserialize;

fn crate_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn conformance_root() -> PathBuf {
    crate_root().join("../shared/conformance")
}

/// What a fixture file is expected to give, or what Palisade gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail,
    /// Palisade rejects the file as input (a document it cannot decode).
    Error,
}

impl Verdict {
    fn parse(cell: &str) -> Option<Verdict> {
        match cell {
            "pass" => Some(Verdict::Pass),
            "fail" => Some(Verdict::Fail),
            "error" => Some(Verdict::Error),
            _ => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
        })
    }
}

/// One fixture file judged by the Palisade checks that alias its Polaris check.
struct Case {
    polaris: String,
    file: String,
    /// Palisade check ids, sorted, joined by `, ` (as the table shows them).
    checks: String,
    expected: Verdict,
    actual: Verdict,
    /// Findings or the decode error, to explain a disagreement.
    detail: String,
}

/// Polaris check name → the Palisade checks that list it as an alias.
fn polaris_aliases() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let mut aliases: BTreeMap<&'static str, BTreeSet<&'static str>> = BTreeMap::new();
    for check in catalog() {
        for alias in check.aliases.iter().filter(|a| a.tool == Tool::Polaris) {
            aliases.entry(alias.id).or_default().insert(check.id);
        }
    }
    aliases
}

/// Every Polaris check name the fixture set knows: its definitions and its
/// fixture folders (which also hold examples of custom checks).
fn known_polaris_checks() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let definitions = conformance_root().join("polaris-check-definitions");
    for entry in read_dir_sorted(&definitions) {
        if let Some(stem) = entry.file_stem().and_then(|s| s.to_str())
            && stem != "default-config"
        {
            names.insert(stem.to_owned());
        }
    }
    names.extend(fixture_folders());
    names
}

fn fixture_folders() -> BTreeSet<String> {
    read_dir_sorted(&conformance_root().join("polaris"))
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name()?.to_str().map(str::to_owned))
        .collect()
}

fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .collect();
    paths.sort();
    paths
}

/// The expected verdict of a fixture file from its name; `None` for files
/// that are not test cases (`mutated*` auto-fix outputs, custom check
/// definitions).
fn expected_verdict(file: &str) -> Option<Verdict> {
    if !(file.ends_with(".yaml") || file.ends_with(".yml")) {
        None
    } else if file.starts_with("success") {
        Some(Verdict::Pass)
    } else if file.starts_with("failure") {
        Some(Verdict::Fail)
    } else {
        None
    }
}

/// Decodes every scanned object of a multi-document file. Documents without
/// `apiVersion`/`kind` and kinds Palisade does not scan are skipped, as
/// `palisade scan` skips them.
fn load(path: &Path) -> Result<Vec<Resource>, String> {
    let text = fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut resources = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(&text).enumerate() {
        let value = serde_json::Value::deserialize(document)
            .map_err(|e| format!("document {index}: {e}"))?;
        let (Some(api_version), Some(kind)) = (
            value.get("apiVersion").and_then(|v| v.as_str()),
            value.get("kind").and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let (api_version, kind) = (api_version.to_owned(), kind.to_owned());
        match Resource::decode(&api_version, &kind, value) {
            Ok(Some(resource)) => resources.push(resource),
            Ok(None) => {}
            Err(e) => return Err(format!("document {index}: {e}")),
        }
    }
    Ok(resources)
}

/// Runs the whole catalog on a file and keeps the unsuppressed findings of
/// `checks`: what a user sees by default.
fn judge(path: &Path, checks: &BTreeSet<&'static str>) -> (Verdict, String) {
    let resources = match load(path) {
        Ok(resources) => resources,
        Err(error) => return (Verdict::Error, error),
    };
    let inventory = Inventory::from_resources(&resources);
    let findings: Vec<String> = evaluate(&inventory, catalog(), &Policy::default())
        .into_iter()
        .filter(|f| !f.is_suppressed() && checks.contains(f.check.id))
        .map(|f| format!("{}: {} ({})", f.check.id, f.message, f.path))
        .collect();
    if findings.is_empty() {
        (Verdict::Pass, "no finding".to_owned())
    } else {
        (Verdict::Fail, findings.join("; "))
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (polaris, checks) in polaris_aliases() {
        let folder = conformance_root().join("polaris").join(polaris);
        if !folder.is_dir() {
            continue;
        }
        for path in read_dir_sorted(&folder) {
            let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
            let Some(expected) = expected_verdict(file) else {
                continue;
            };
            let (actual, detail) = judge(&path, &checks);
            cases.push(Case {
                polaris: polaris.to_owned(),
                file: file.to_owned(),
                checks: checks.iter().copied().collect::<Vec<_>>().join(", "),
                expected,
                actual,
                detail,
            });
        }
    }
    cases
}

/// A Markdown table: its header cells and rows, cells trimmed and without
/// backticks.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner
        .split('|')
        .map(|c| c.trim().replace('`', ""))
        .collect()
}

fn tables(markdown: &str) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut lines = markdown.lines().peekable();
    while let Some(line) = lines.next() {
        let is_header = line.trim_start().starts_with('|')
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("|-") || next.contains("|:-"));
        if !is_header {
            continue;
        }
        lines.next(); // the |---| separator
        let mut table = Table {
            header: cells(line),
            rows: Vec::new(),
        };
        while let Some(row) = lines.peek().filter(|l| l.trim_start().starts_with('|')) {
            table.rows.push(cells(row));
            lines.next();
        }
        tables.push(table);
    }
    tables
}

const DISAGREEMENT_HEADER: [&str; 6] = [
    "Polaris check",
    "File",
    "Palisade check",
    "Polaris expects",
    "Palisade gives",
    "Reason",
];
const NO_COUNTERPART_HEADER: [&str; 2] = ["Polaris check", "Why Palisade has no counterpart"];

fn doc_table(header: &[&str]) -> Vec<Vec<String>> {
    let path = crate_root().join("docs/conformance.md");
    let markdown =
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    tables(&markdown)
        .into_iter()
        .find(|t| t.header == header)
        .unwrap_or_else(|| panic!("docs/conformance.md has no table headed {header:?}"))
        .rows
}

/// A listed disagreement, keyed by (Polaris check, file).
struct Listed {
    checks: String,
    expected: Option<Verdict>,
    actual: Option<Verdict>,
    reason: String,
}

fn listed_disagreements(problems: &mut Vec<String>) -> BTreeMap<(String, String), Listed> {
    let mut listed = BTreeMap::new();
    for row in doc_table(&DISAGREEMENT_HEADER) {
        let [polaris, file, checks, expected, actual, reason] = &row[..] else {
            problems.push(format!("malformed disagreement row {row:?}"));
            continue;
        };
        let entry = Listed {
            checks: checks.clone(),
            expected: Verdict::parse(expected),
            actual: Verdict::parse(actual),
            reason: reason.clone(),
        };
        if listed
            .insert((polaris.clone(), file.clone()), entry)
            .is_some()
        {
            problems.push(format!("{polaris}/{file} is listed twice"));
        }
    }
    listed
}

fn suggested_row(case: &Case) -> String {
    format!(
        "| {} | {} | {} | {} | {} | <reason> |   ({})",
        case.polaris, case.file, case.checks, case.expected, case.actual, case.detail
    )
}

#[test]
fn polaris_fixtures_agree_or_are_listed() {
    let cases = cases();
    assert!(
        !cases.is_empty(),
        "no Palisade check has a Polaris alias with fixtures"
    );
    let mut problems = Vec::new();
    let mut listed = listed_disagreements(&mut problems);
    let mut agreeing = 0;
    let mut disagreeing = 0;
    for case in &cases {
        let key = (case.polaris.clone(), case.file.clone());
        let entry = listed.remove(&key);
        let disagrees = case.actual != case.expected;
        match (disagrees, entry) {
            (false, None) => agreeing += 1,
            (false, Some(_)) => problems.push(format!(
                "{}/{} is listed as a disagreement but now gives `{}` as Polaris expects: \
                 remove its row",
                case.polaris, case.file, case.actual
            )),
            (true, None) => problems.push(format!(
                "unlisted disagreement, add a row to docs/conformance.md:\n  {}",
                suggested_row(case)
            )),
            (true, Some(row)) => {
                disagreeing += 1;
                if row.checks != case.checks
                    || row.expected != Some(case.expected)
                    || row.actual != Some(case.actual)
                    || row.reason.is_empty()
                {
                    problems.push(format!(
                        "row for {}/{} is out of date, it should read:\n  {}",
                        case.polaris,
                        case.file,
                        suggested_row(case)
                    ));
                }
            }
        }
    }
    for ((polaris, file), _) in listed {
        problems.push(format!(
            "{polaris}/{file} is listed but is not a case (no Palisade check has the Polaris \
             alias `{polaris}`, or the file does not exist): remove its row"
        ));
    }
    println!(
        "Polaris conformance: {} cases, {agreeing} agree, {disagreeing} listed disagreements",
        cases.len()
    );
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn polaris_aliases_name_real_polaris_checks() {
    let known = known_polaris_checks();
    let unknown: Vec<String> = polaris_aliases()
        .into_iter()
        .filter(|(polaris, _)| !known.contains(*polaris))
        .map(|(polaris, checks)| format!("{polaris} (alias of {checks:?})"))
        .collect();
    assert!(
        unknown.is_empty(),
        "Polaris aliases that are not Polaris checks: {unknown:?}"
    );
}

/// Every Polaris fixture folder is accounted for: either a Palisade check
/// carries its name as an alias, or `docs/conformance.md` says why there is
/// no counterpart. The list stays true: a listed check that gains an alias
/// must leave it.
#[test]
fn polaris_checks_are_aliased_or_explained() {
    let aliases = polaris_aliases();
    let known = known_polaris_checks();
    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    for row in doc_table(&NO_COUNTERPART_HEADER) {
        let [polaris, reason] = &row[..] else {
            problems.push(format!("malformed row {row:?}"));
            continue;
        };
        if let Some(checks) = aliases.get(polaris.as_str()) {
            problems.push(format!(
                "{polaris} is listed without counterpart but {checks:?} alias it: remove its row"
            ));
        }
        if !known.contains(polaris) {
            problems.push(format!("{polaris} is not a Polaris check"));
        }
        if reason.is_empty() {
            problems.push(format!("{polaris} has no reason"));
        }
        listed.insert(polaris.clone());
    }
    for folder in fixture_folders() {
        if !aliases.contains_key(folder.as_str()) && !listed.contains(&folder) {
            problems.push(format!(
                "Polaris check `{folder}` has no Palisade alias: add it to the table of checks \
                 without counterpart in docs/conformance.md, with the reason"
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}
