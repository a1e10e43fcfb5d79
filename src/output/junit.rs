//! JUnit XML: a test suite per evaluated object, a test case per check that
//! ran on it. A check with unsuppressed findings fails; one whose findings
//! are all suppressed is skipped; the rest pass.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::{Evaluated, Report};
use crate::engine::{Check, Finding};
use crate::loader::{ErrorEntry, Source};
use crate::model::ObjectRef;

/// What one test case reports.
enum Outcome<'a> {
    Passed,
    Failed(Vec<&'a Finding>),
    Skipped(Vec<&'a Finding>),
}

struct Case<'a> {
    check: &'static Check,
    outcome: Outcome<'a>,
}

pub fn write(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    // The totals head the document: count first, then write suite by suite
    // (a large scan has far too many test cases to hold as text), reading
    // the findings again.
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    report.by_evaluated_object(
        |evaluated, findings, _| {
            let cases = cases_of(report, evaluated, findings);
            tests += cases.len();
            failures += count(&cases, |o| matches!(o, Outcome::Failed(_)));
            skipped += count(&cases, |o| matches!(o, Outcome::Skipped(_)));
            Ok(())
        },
        |_| Ok(()),
    )?;
    let errors = report.errors.len();
    let tests = tests + errors;
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="palisade" tests="{tests}" failures="{failures}" errors="{errors}" skipped="{skipped}">"#
    )?;
    if errors > 0 {
        let mut suite = String::new();
        write_error_suite(&mut suite, report.errors);
        out.write_all(suite.as_bytes())?;
    }
    let mut suite = String::new();
    report.by_evaluated_object(
        |evaluated, findings, _| {
            let object = &evaluated.object;
            suite.clear();
            write_suite(
                &mut suite,
                object,
                report.source(object).as_ref(),
                &cases_of(report, evaluated, findings),
            );
            out.write_all(suite.as_bytes())
        },
        |_| Ok(()),
    )?;
    writeln!(out, "</testsuites>")
}

/// The test cases of one evaluated object: one per check that applies to
/// it, with the object's findings of that check.
fn cases_of<'a>(
    report: &Report<'_>,
    evaluated: &Evaluated,
    findings: &'a [Cow<'_, Finding>],
) -> Vec<Case<'a>> {
    report
        .checks
        .iter()
        .filter(|c| c.applies.covers(evaluated.applies))
        .filter_map(|&check| {
            let of_check: Vec<&Finding> = findings
                .iter()
                .map(|f| &**f)
                .filter(|f| f.check.id == check.id)
                .collect();
            case(report, check, &of_check)
        })
        .collect()
}

/// The test case of `check` on one object; `None` when every finding is
/// below `--min-severity` (the case is then not shown at all).
fn case<'a>(
    report: &Report<'_>,
    check: &'static Check,
    findings: &[&'a Finding],
) -> Option<Case<'a>> {
    if findings.is_empty() {
        return Some(Case {
            check,
            outcome: Outcome::Passed,
        });
    }
    let shown: Vec<&Finding> = findings
        .iter()
        .copied()
        .filter(|f| f.severity >= report.options.min_severity)
        .collect();
    if shown.is_empty() {
        return None;
    }
    let (suppressed, open): (Vec<&Finding>, Vec<&Finding>) =
        shown.into_iter().partition(|f| f.is_suppressed());
    let outcome = if open.is_empty() {
        Outcome::Skipped(suppressed)
    } else {
        Outcome::Failed(open)
    };
    Some(Case { check, outcome })
}

fn count(cases: &[Case<'_>], matches: impl Fn(&Outcome<'_>) -> bool) -> usize {
    cases.iter().filter(|c| matches(&c.outcome)).count()
}

fn write_suite(xml: &mut String, object: &ObjectRef, source: Option<&Source>, cases: &[Case<'_>]) {
    let name = escape(&object.to_string());
    let failures = count(cases, |o| matches!(o, Outcome::Failed(_)));
    let skipped = count(cases, |o| matches!(o, Outcome::Skipped(_)));
    let location = source
        .map(|s| format!(r#" file="{}" line="{}""#, escape(&s.file), s.line))
        .unwrap_or_default();
    let _ = writeln!(
        xml,
        r#"  <testsuite name="{name}" tests="{}" failures="{failures}" errors="0" skipped="{skipped}"{location}>"#,
        cases.len()
    );
    for case in cases {
        let id = escape(case.check.id);
        let open = format!(r#"    <testcase name="{id}" classname="{name}"{location}"#);
        match &case.outcome {
            Outcome::Passed => {
                let _ = writeln!(xml, "{open}/>");
            }
            Outcome::Failed(findings) => {
                let first = findings[0];
                let body: Vec<String> = findings
                    .iter()
                    .map(|f| format!("[{}] {} (at {})", f.severity, f.message, f.path))
                    .collect();
                let _ = writeln!(
                    xml,
                    r#"{open}><failure message="{}" type="{}">{}</failure></testcase>"#,
                    escape(&first.message),
                    first.severity,
                    escape(&body.join("\n"))
                );
            }
            Outcome::Skipped(findings) => {
                let reason = findings[0]
                    .suppressed
                    .as_ref()
                    .map(|s| s.reason.as_str())
                    .unwrap_or_default();
                let _ = writeln!(
                    xml,
                    r#"{open}><skipped message="{}"/></testcase>"#,
                    escape(&format!("suppressed: {reason}"))
                );
            }
        }
    }
    let _ = writeln!(xml, "  </testsuite>");
}

/// Inputs that could not be read or decoded: one test case each, in
/// error, in a suite of their own.
fn write_error_suite(xml: &mut String, errors: &[ErrorEntry]) {
    let _ = writeln!(
        xml,
        r#"  <testsuite name="input" tests="{n}" failures="0" errors="{n}" skipped="0">"#,
        n = errors.len()
    );
    for entry in errors {
        let location = entry
            .location()
            .unwrap_or_else(|| "command line".to_owned());
        let mut attributes = String::new();
        if let Some(file) = &entry.file {
            let _ = write!(attributes, r#" file="{}""#, escape(file));
        }
        if let Some(line) = entry.line {
            let _ = write!(attributes, r#" line="{line}""#);
        }
        let mut detail = location.clone();
        if let Some(field) = &entry.field {
            let _ = write!(detail, " (field {field})");
        }
        let _ = writeln!(
            xml,
            r#"    <testcase name="{}" classname="input"{attributes}><error message="{}" type="invalid-input">{}</error></testcase>"#,
            escape(&location),
            escape(&entry.message),
            escape(&detail)
        );
    }
    let _ = writeln!(xml, "  </testsuite>");
}

/// Escapes text for XML content and attribute values. Characters XML 1.0
/// cannot carry at all (most control characters) become U+FFFD.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testing::fixture;
    use crate::output::{Format, Options};

    #[test]
    fn one_case_per_object_and_check() {
        let text = fixture().render(Format::Junit, Options::default());
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        assert!(
            text.contains(
                r#"<testsuites name="palisade" tests="3" failures="1" errors="0" skipped="1">"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"<testsuite name="Deployment/web -n shop" tests="1" failures="1" errors="0" skipped="0" file="deploy/app.yaml" line="1">"#),
            "{text}"
        );
        assert!(
            text.contains(r#"<failure message="container `app` is privileged" type="critical">"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"<skipped message="suppressed: needs &lt;host&gt; &amp; &quot;devices&quot;"/>"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"<testcase name="privileged-container" classname="Pod/clean -n shop" file="deploy/app.yaml" line="30"/>"#),
            "{text}"
        );
    }

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            escape("a<b>&\"c'\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;\u{FFFD}"
        );
    }
}
