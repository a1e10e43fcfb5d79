//! The outputs of `palisade drift`: a table for people, JSON for scripts,
//! SARIF for code scanning (live-only findings, at the object's file), and
//! Markdown for a pull-request comment.

use std::io::{self, Write};

use clap::ValueEnum;
use serde_json::{Value, json};

use super::{DriftFinding, DriftReport, ObjectDrift, Presence};
use crate::engine::Severity;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DriftFormat {
    Table,
    Json,
    Sarif,
    Markdown,
}

pub fn write(format: DriftFormat, report: &DriftReport, out: &mut dyn Write) -> io::Result<()> {
    match format {
        DriftFormat::Table => out.write_all(table(report).as_bytes()),
        DriftFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n")
        }
        DriftFormat::Sarif => {
            serde_json::to_writer_pretty(&mut *out, &sarif(report))?;
            out.write_all(b"\n")
        }
        DriftFormat::Markdown => out.write_all(markdown(report).as_bytes()),
    }
}

/// Who set a live field, for the outputs: `kubectl-edit at 2026-…`.
fn set_by(f: &DriftFinding) -> String {
    match (&f.set_by, &f.set_at) {
        (Some(manager), Some(at)) => format!("{manager} at {at}"),
        (Some(manager), None) => manager.clone(),
        _ => String::new(),
    }
}

fn summary_line(report: &DriftReport) -> String {
    let s = &report.summary;
    format!(
        "{} finding(s) only live (changed outside Git), {} only in Git (not deployed); \
         {} object(s) only live, {} only in Git; {} compared",
        s.live_only_findings,
        s.git_only_findings,
        s.live_only_objects,
        s.git_only_objects,
        s.compared
    )
}

/// One row per differing finding; objects on one side without findings
/// get a row of their own.
pub fn table(report: &DriftReport) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "SIDE".into(),
        "SEVERITY".into(),
        "OBJECT".into(),
        "CHECK".into(),
        "FIELD".into(),
        "SET BY".into(),
    ]];
    for object in &report.objects {
        let name = object.object.to_string();
        for f in &object.live_only {
            rows.push(finding_row("live only", &name, f));
        }
        for f in &object.git_only {
            rows.push(finding_row("Git only", &name, f));
        }
        if object.presence != Presence::Both
            && object.live_only.is_empty()
            && object.git_only.is_empty()
        {
            rows.push([
                format!("{} object", object.presence.as_str()),
                "-".into(),
                name,
                "-".into(),
                "-".into(),
                String::new(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&summary_line(report));
    out.push('\n');
    out
}

fn finding_row(side: &str, object: &str, f: &DriftFinding) -> [String; 6] {
    [
        side.into(),
        f.severity.as_str().into(),
        object.into(),
        f.check.clone(),
        f.path.clone(),
        set_by(f),
    ]
}

/// A pull-request comment: the summary, then one table per side.
pub fn markdown(report: &DriftReport) -> String {
    let mut out = String::from("### Palisade drift\n\n");
    out.push_str(&summary_line(report));
    out.push_str(".\n");
    let live: Vec<_> = report.live_only().collect();
    if !live.is_empty() {
        out.push_str("\n#### Only live: changed outside Git\n\n");
        out.push_str("| Severity | Object | Check | Field | Set by |\n|---|---|---|---|---|\n");
        for (object, f) in live {
            out.push_str(&markdown_row(object, f, &set_by(f)));
        }
    }
    let git: Vec<_> = report.git_only().collect();
    if !git.is_empty() {
        out.push_str("\n#### Only in Git: not deployed yet\n\n");
        out.push_str("| Severity | Object | Check | Field | Defined at |\n|---|---|---|---|---|\n");
        for (object, f) in git {
            out.push_str(&markdown_row(
                object,
                f,
                object.source.as_deref().unwrap_or(""),
            ));
        }
    }
    for (presence, title) in [
        (
            Presence::LiveOnly,
            "Objects only live (created outside Git)",
        ),
        (Presence::GitOnly, "Objects only in Git (not deployed)"),
    ] {
        let objects: Vec<_> = report
            .objects
            .iter()
            .filter(|o| o.presence == presence)
            .collect();
        if objects.is_empty() {
            continue;
        }
        out.push_str(&format!("\n#### {title}\n\n"));
        for o in objects {
            out.push_str(&format!("- {}\n", cell(&o.object.to_string())));
        }
    }
    out
}

fn markdown_row(object: &ObjectDrift, f: &DriftFinding, last: &str) -> String {
    format!(
        "| {} | {} | `{}` | `{}` | {} |\n",
        f.severity,
        cell(&object.object.to_string()),
        cell(&f.check),
        cell(&f.path),
        cell(last)
    )
}

/// A table cell: pipes and line breaks would break the row, and markup in
/// object names must not render.
fn cell(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '|' => "\\|".to_owned(),
            '\n' | '\r' => " ".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '`' => "'".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// SARIF 2.1.0 with one result per live-only finding, located at the
/// object's definition in the repository when it has one.
pub fn sarif(report: &DriftReport) -> Value {
    let mut rule_ids: Vec<&str> = report.live_only().map(|(_, f)| f.check.as_str()).collect();
    rule_ids.sort_unstable();
    rule_ids.dedup();
    let rules: Vec<Value> = rule_ids
        .iter()
        .map(|id| {
            let title = crate::checks::catalog()
                .iter()
                .find(|c| c.id == *id)
                .map_or(*id, |c| c.title);
            json!({"id": id, "shortDescription": {"text": title}})
        })
        .collect();
    let results: Vec<Value> = report
        .live_only()
        .map(|(object, f)| sarif_result(object, f))
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "palisade",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/palisade-dev/palisade",
                "rules": rules,
            }},
            "results": results,
        }]
    })
}

fn sarif_result(object: &ObjectDrift, f: &DriftFinding) -> Value {
    let who = match set_by(f) {
        who if who.is_empty() => String::new(),
        who => format!("; set by {who}"),
    };
    let text = format!(
        "{}: {} (live only, not in Git{who}) at {}",
        object.object, f.message, f.path
    );
    let logical =
        json!([{"fullyQualifiedName": format!("{}.{}", object.object, f.path), "kind": "object"}]);
    let mut location = json!({"logicalLocations": logical});
    if let Some((file, line)) = object.source.as_deref().and_then(split_source) {
        location["physicalLocation"] = json!({
            "artifactLocation": {"uri": file},
            "region": {"startLine": line},
        });
    }
    json!({
        "ruleId": f.check,
        "level": level(f.severity),
        "message": {"text": text},
        "locations": [location],
        "properties": {"severity": f.severity.as_str(), "setBy": f.set_by},
    })
}

/// `file:line` → (`file`, line).
fn split_source(source: &str) -> Option<(&str, u64)> {
    let (file, line) = source.rsplit_once(':')?;
    Some((file, line.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drift::tests::{PRIVILEGED, sample};

    #[test]
    fn the_table_lists_each_side_and_the_summary() {
        let text = table(&sample());
        let live = text
            .lines()
            .find(|l| l.contains("privileged-container"))
            .unwrap();
        assert!(live.starts_with("live only"), "{live}");
        assert!(live.contains("Deployment shop/web"), "{live}");
        assert!(
            live.contains("kubectl-edit at 2026-12-02T09:30:00Z"),
            "{live}"
        );
        let git = text.lines().find(|l| l.contains("gone")).unwrap();
        assert!(git.starts_with("Git only"), "{git}");
        assert!(text.contains("2 finding(s) only live"), "{text}");
    }

    #[test]
    fn json_carries_the_presence_and_the_manager() {
        let mut out = Vec::new();
        write(DriftFormat::Json, &sample(), &mut out).unwrap();
        let value: Value = serde_json::from_slice(&out).unwrap();
        let web = value["objects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["object"]["name"] == "web")
            .unwrap();
        assert_eq!(web["presence"], "both");
        assert_eq!(web["liveOnly"][0]["setBy"], "kubectl-edit");
        assert_eq!(value["summary"]["liveOnlyObjects"], 1);
    }

    #[test]
    fn sarif_has_one_result_per_live_only_finding_at_the_objects_file() {
        let value = sarif(&sample());
        let results = value["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        let privileged = results
            .iter()
            .find(|r| r["ruleId"] == "privileged-container")
            .unwrap();
        assert_eq!(privileged["level"], "error");
        let physical = &privileged["locations"][0]["physicalLocation"];
        assert_eq!(physical["artifactLocation"]["uri"], "deploy/web.yaml");
        assert_eq!(physical["region"]["startLine"], 1);
        assert!(
            privileged["message"]["text"]
                .as_str()
                .unwrap()
                .contains(PRIVILEGED)
        );
        let stray = results
            .iter()
            .find(|r| r["ruleId"] == "run-as-root")
            .unwrap();
        assert!(stray["locations"][0].get("physicalLocation").is_none());
        assert_eq!(
            value["runs"][0]["tool"]["driver"]["rules"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn markdown_has_a_table_per_side_and_escapes_cells() {
        let text = markdown(&sample());
        assert!(
            text.contains("#### Only live: changed outside Git"),
            "{text}"
        );
        assert!(
            text.contains("#### Only in Git: not deployed yet"),
            "{text}"
        );
        assert!(
            text.contains("| critical | Deployment shop/web | `privileged-container`"),
            "{text}"
        );
        assert!(
            text.contains(
                "#### Objects only live (created outside Git)\n\n- Deployment shop/stray"
            ),
            "{text}"
        );
        assert_eq!(cell("a|b\n<i>`x`"), "a\\|b &lt;i&gt;'x'");
    }

    #[test]
    fn no_drift_says_so_in_every_format() {
        let empty = DriftReport::default();
        assert!(table(&empty).contains("0 finding(s) only live"));
        assert!(!markdown(&empty).contains("####"));
        assert_eq!(sarif(&empty)["runs"][0]["results"], json!([]));
    }
}
