//! The table for people: findings grouped by object, then a summary line.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use super::Report;
use crate::engine::{Finding, Severity};
use crate::loader::Source;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";

fn severity_color(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "\x1b[1;31m",
        Severity::High => "\x1b[31m",
        Severity::Medium => "\x1b[33m",
        Severity::Low => "\x1b[36m",
        Severity::Info => "\x1b[2m",
    }
}

/// Wraps text in an ANSI style when colour is on.
struct Paint {
    on: bool,
}

impl Paint {
    /// Appends `text` to `line`, in `style` when colour is on.
    fn push(&self, line: &mut String, style: &str, text: std::fmt::Arguments<'_>) {
        let _ = match self.on {
            true => write!(line, "{style}{text}{RESET}"),
            false => line.write_fmt(text),
        };
    }

    fn style(&self, style: &str, text: &str) -> String {
        let mut styled = String::new();
        self.push(&mut styled, style, format_args!("{text}"));
        styled
    }
}

/// A finding to show and where its definition is.
type Row<'r> = (Cow<'r, Finding>, Option<Cow<'r, Source>>);

pub fn write(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    let paint = Paint {
        on: report.options.color,
    };
    let min_severity = report.options.min_severity;
    // Findings come sorted by object: one object's rows at a time.
    let mut group: Vec<Row<'_>> = Vec::new();
    let mut any_shown = false;
    let mut hidden = 0;
    for item in report.all_with_sources() {
        let (finding, source) = item?;
        if finding.severity < min_severity {
            hidden += usize::from(!finding.is_suppressed());
            continue;
        }
        if !report.options.show_suppressed && finding.is_suppressed() {
            continue;
        }
        if group
            .first()
            .is_some_and(|(first, _)| first.object != finding.object)
        {
            write_group(report, &group, &paint, out)?;
            group.clear();
        }
        any_shown = true;
        group.push((finding, source));
    }
    if !group.is_empty() {
        write_group(report, &group, &paint, out)?;
    }
    if !any_shown {
        writeln!(out, "No findings.")?;
    }
    write_problems(report, &paint, out)?;
    super::posture::write_table(report.posture, out)?;
    writeln!(out, "{}", summary_line(report, hidden))
}

fn write_group(
    report: &Report<'_>,
    group: &[Row<'_>],
    paint: &Paint,
    out: &mut dyn Write,
) -> io::Result<()> {
    let object = &group[0].0.object;
    let first = report.source(object);
    let location = first.as_ref().map(|s| format!("  {s}")).unwrap_or_default();
    writeln!(out, "{}{location}", paint.style(BOLD, &object.to_string()))?;
    let id_width = group
        .iter()
        .map(|(f, _)| f.check.id.len())
        .max()
        .unwrap_or(0);
    // One buffer for every row: a large report has tens of thousands.
    let mut line = String::new();
    for (finding, source) in group {
        line.clear();
        line.push_str("  ");
        let label = severity_label(finding.severity);
        let style = match finding.is_suppressed() {
            true => DIM,
            false => severity_color(finding.severity),
        };
        paint.push(&mut line, style, format_args!("{label:<8}"));
        let _ = write!(
            line,
            "  {:<id_width$}  {}",
            finding.check.id, finding.message
        );
        if let Some(suppression) = &finding.suppressed {
            let reason = &suppression.reason;
            paint.push(&mut line, DIM, format_args!(" [suppressed: {reason}]"));
        }
        out.write_all(line.trim_end().as_bytes())?;
        line.clear();
        line.push('\n');
        let indent = 2 + 8 + 2 + id_width + 2;
        let _ = write!(line, "{:indent$}", "");
        let path = &finding.path;
        // A finding of another definition of the object says where it is.
        match source.as_deref() {
            Some(source) if Some(source) != first.as_ref() => {
                paint.push(&mut line, DIM, format_args!("at {path} in {source}"));
            }
            _ => paint.push(&mut line, DIM, format_args!("at {path}")),
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    writeln!(out)
}

/// The severity as the table's label.
fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "CRITICAL",
        Severity::High => "HIGH",
        Severity::Medium => "MEDIUM",
        Severity::Low => "LOW",
        Severity::Info => "INFO",
    }
}

/// Input errors and skipped inputs, after the findings.
fn write_problems(report: &Report<'_>, paint: &Paint, out: &mut dyn Write) -> io::Result<()> {
    let sections = [
        (
            "Input errors (not scanned):",
            report.errors,
            severity_color(Severity::High),
        ),
        ("Skipped inputs:", report.skipped_inputs, DIM),
    ];
    for (title, entries, style) in sections {
        if entries.is_empty() {
            continue;
        }
        writeln!(out)?;
        writeln!(out, "{}", paint.style(BOLD, title))?;
        for entry in entries {
            let location = entry.location().unwrap_or_default();
            let prefix = if location.is_empty() {
                String::new()
            } else {
                format!("{location}: ")
            };
            writeln!(out, "  {}{}", paint.style(style, &prefix), entry.message)?;
        }
    }
    if !report.errors.is_empty() || !report.skipped_inputs.is_empty() {
        writeln!(out)?;
    }
    Ok(())
}

/// `1 critical, 0 high, … · 1 suppressed · 3 objects in 2 files · 4 documents skipped (…)`;
/// `hidden` unsuppressed findings were below `--min-severity`.
fn summary_line(report: &Report<'_>, hidden: usize) -> String {
    let summary = &report.summary;
    let counts: Vec<String> = Severity::ALL_WORST_FIRST
        .iter()
        .map(|&s| format!("{} {s}", summary.count(s)))
        .collect();
    let mut parts = vec![counts.join(", ")];
    if summary.suppressed > 0 {
        let hint = if report.options.show_suppressed {
            ""
        } else {
            " (--show-suppressed lists them)"
        };
        parts.push(format!("{} suppressed{hint}", summary.suppressed));
    }
    if hidden > 0 {
        parts.push(format!(
            "{hidden} below {} not shown",
            report.options.min_severity
        ));
    }
    parts.push(format!(
        "{} {} scanned in {} {}",
        summary.objects,
        plural(summary.objects, "object", "objects"),
        summary.files,
        plural(summary.files, "file", "files"),
    ));
    let skipped = &summary.skipped;
    if skipped.documents > 0 {
        let mut reasons: Vec<String> = skipped
            .kinds
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        if skipped.non_kubernetes > 0 {
            reasons.push(format!("{} not Kubernetes", skipped.non_kubernetes));
        }
        if skipped.templates > 0 {
            reasons.push(format!("{} templates", skipped.templates));
        }
        parts.push(format!(
            "{} {} skipped ({})",
            skipped.documents,
            plural(skipped.documents, "document", "documents"),
            reasons.join(", ")
        ));
    }
    if skipped.files > 0 {
        parts.push(format!(
            "{} unreadable {} skipped",
            skipped.files,
            plural(skipped.files, "file", "files")
        ));
    }
    if !report.errors.is_empty() {
        let n = report.errors.len();
        parts.push(format!("{n} input {}", plural(n, "error", "errors")));
    }
    parts.join(" · ")
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

#[cfg(test)]
mod tests {
    use crate::output::testing::fixture;
    use crate::output::{Format, Options};

    #[test]
    fn groups_by_object_and_hides_suppressed() {
        let text = fixture().render(Format::Table, Options::default());
        let expected = "\
Deployment/web -n shop  deploy/app.yaml:1
  CRITICAL  privileged-container  container `app` is privileged
                                  at spec.template.spec.containers[name=app].securityContext.privileged

1 critical, 0 high, 0 medium, 0 low, 0 info · 1 suppressed (--show-suppressed lists them) · 3 objects scanned in 1 file
";
        assert_eq!(text, expected);
    }

    #[test]
    fn shows_suppressed_on_request_and_colours_only_when_asked() {
        let options = Options {
            show_suppressed: true,
            ..Options::default()
        };
        let text = fixture().render(Format::Table, options);
        assert!(
            text.contains("Pod/debug -n shop  deploy/app.yaml:16"),
            "{text}"
        );
        assert!(
            text.contains("[suppressed: needs <host> & \"devices\"]"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        let options = Options {
            color: true,
            ..Options::default()
        };
        let text = fixture().render(Format::Table, options);
        assert!(text.contains("\x1b[1;31mCRITICAL"), "{text}");
    }
}
