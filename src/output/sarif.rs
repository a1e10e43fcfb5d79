//! SARIF 2.1.0, as GitHub code scanning accepts it: one run, the checks that
//! ran as rules (with help text and `security-severity`), one result per
//! finding at the file and line of its object.

use std::io::{self, Write};
use std::path::Path;

use serde::ser::SerializeSeq;
use serde::{Serialize, Serializer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::Report;
use super::json::{ReadError, suppression_source};
use crate::engine::{Check, Finding, Severity, SuppressionSource};
use crate::loader::{ErrorEntry, Source};

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// Where the project lives, when the package says so.
const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

/// GitHub's scale: critical is over 9.0, high 7.0–8.9, medium 4.0–6.9, low below.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
        Severity::Info => "1.0",
    }
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// The SARIF log. Results are serialized one at a time as they are built,
/// so a scan with many findings never holds them all as JSON trees.
#[derive(Serialize)]
struct Log<'a, 'r> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a, 'r>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run<'a, 'r> {
    tool: Value,
    invocations: [Value; 1],
    column_kind: &'static str,
    results: Results<'a, 'r>,
}

/// The shown findings, serialized as they are read; a read error stops
/// the log and is kept for [`write`] to return.
struct Results<'a, 'r> {
    report: &'a Report<'r>,
    read_error: &'a ReadError,
}

impl Serialize for Results<'_, '_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(None)?;
        for item in self.report.shown_with_sources() {
            let (f, source) = item.map_err(|e| self.read_error.keep::<S::Error>(e))?;
            seq.serialize_element(&result(self.report, &f, source.as_deref()))?;
        }
        seq.end()
    }
}

pub fn write(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    let rules: Vec<Value> = report.checks.iter().map(|c| rule(report, c)).collect();
    let mut driver = json!({
        "name": "palisade",
        "version": env!("CARGO_PKG_VERSION"),
        "semanticVersion": env!("CARGO_PKG_VERSION"),
        "rules": rules,
    });
    if !REPOSITORY.is_empty() {
        driver["informationUri"] = json!(REPOSITORY);
    }
    let read_error = ReadError::default();
    let log = Log {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: json!({"driver": driver}),
            invocations: [invocation(report)],
            column_kind: "unicodeCodePoints",
            results: Results {
                report,
                read_error: &read_error,
            },
        }],
    };
    if let Err(e) = serde_json::to_writer_pretty(&mut *out, &log) {
        return Err(read_error.or(e));
    }
    out.write_all(b"\n")
}

/// The run's invocation: whether every input could be read, and each input
/// error (level `error`) or skipped input (level `note`) as a tool execution
/// notification at its file and line.
fn invocation(report: &Report<'_>) -> Value {
    let base_dir = report.options.base_dir.as_deref();
    let notification = |entry: &ErrorEntry, level: &str| {
        let mut notification = json!({
            "level": level,
            "message": {"text": entry.message},
            "descriptor": {"id": if level == "error" { "invalid-input" } else { "skipped-input" }},
        });
        if let Some(file) = &entry.file {
            let mut region = json!({});
            if let Some(line) = entry.line {
                region["startLine"] = json!(line);
            }
            if let Some(column) = entry.column {
                region["startColumn"] = json!(column);
            }
            let mut physical = json!({"artifactLocation": {"uri": artifact_uri(file, base_dir)}});
            if entry.line.is_some() {
                physical["region"] = region;
            }
            notification["locations"] = json!([{"physicalLocation": physical}]);
        }
        let mut properties = serde_json::Map::new();
        if let Some(object) = &entry.object {
            properties.insert("object".into(), json!(object));
        }
        if let Some(field) = &entry.field {
            properties.insert("field".into(), json!(field));
        }
        if !properties.is_empty() {
            notification["properties"] = Value::Object(properties);
        }
        notification
    };
    let notifications: Vec<Value> = report
        .errors
        .iter()
        .map(|e| notification(e, "error"))
        .chain(
            report
                .skipped_inputs
                .iter()
                .map(|e| notification(e, "note")),
        )
        .collect();
    let mut invocation = json!({"executionSuccessful": report.errors.is_empty()});
    if !notifications.is_empty() {
        invocation["toolExecutionNotifications"] = json!(notifications);
    }
    invocation
}

fn rule(report: &Report<'_>, check: &Check) -> Value {
    let severity = report.severity_of(check);
    // SARIF wants tags unique.
    let mut tags: Vec<&str> = vec!["security", check.category.as_str()];
    for framework in check.frameworks {
        if !tags.contains(framework) {
            tags.push(framework);
        }
    }
    let mut rule = json!({
        "id": check.id,
        "name": pascal_case(check.id),
        "shortDescription": {"text": check.title},
        "fullDescription": {"text": check.description},
        "help": {
            "text": format!("{}\n\nRemediation: {}", check.description, check.remediation),
            "markdown": help_markdown(check),
        },
        "defaultConfiguration": {"level": level(severity)},
        "properties": {
            "tags": tags,
            "security-severity": security_severity(severity),
            "precision": "high",
        },
    });
    if !REPOSITORY.is_empty() {
        rule["helpUri"] = json!(format!(
            "{}/blob/main/docs/checks.md#{}",
            REPOSITORY.trim_end_matches('/'),
            check.id
        ));
    }
    rule
}

fn help_markdown(check: &Check) -> String {
    let mut text = format!(
        "**{}** (default severity: {})\n\n{}\n\n**Remediation:** {}",
        check.title, check.severity, check.description, check.remediation
    );
    if !check.frameworks.is_empty() {
        let frameworks: Vec<String> = check.frameworks.iter().map(|f| format!("`{f}`")).collect();
        text.push_str(&format!("\n\n**Frameworks:** {}", frameworks.join(", ")));
    }
    if !check.aliases.is_empty() {
        let aliases: Vec<String> = check
            .aliases
            .iter()
            .map(|a| format!("{} `{}`", a.tool.as_str(), a.id))
            .collect();
        text.push_str(&format!("\n\n**Same check in:** {}", aliases.join(", ")));
    }
    text
}

fn result(report: &Report<'_>, finding: &Finding, source: Option<&Source>) -> Value {
    let object = &finding.object;
    // A later definition of the object (the same object in another file)
    // is another place to fix: its findings must not merge with the first's.
    let first = report.source(object);
    let elsewhere = source
        .filter(|s| Some(*s) != first.as_ref())
        .map(|s| s.file.as_ref());
    let mut result = json!({
        "ruleId": finding.check.id,
        "level": level(finding.severity),
        "message": {"text": format!("{object}: {} (at {})", finding.message, finding.path)},
        "partialFingerprints": {"palisadeFinding/v1": fingerprint(finding, elsewhere)},
        "properties": {
            "severity": finding.severity,
            "path": finding.path,
            "object": {
                "apiVersion": object.api_version,
                "kind": object.kind,
                "namespace": object.namespace,
                "name": object.name,
            },
        },
    });
    // Checks are sorted by id.
    if let Ok(index) = report
        .checks
        .binary_search_by(|c| c.id.cmp(finding.check.id))
    {
        result["ruleIndex"] = json!(index);
    }
    if let Some(source) = source {
        result["locations"] = json!([{
            "physicalLocation": {
                "artifactLocation": {"uri": artifact_uri(&source.file, report.options.base_dir.as_deref())},
                "region": {"startLine": source.line},
            },
            "logicalLocations": [{
                "name": object.name,
                "fullyQualifiedName": format!("{}/{}", object_id(finding), finding.path),
                "kind": "object",
            }],
        }]);
    }
    if let Some(suppression) = &finding.suppressed {
        let kind = match suppression.source {
            SuppressionSource::Annotation => "inSource",
            SuppressionSource::Policy(_) | SuppressionSource::Builtin => "external",
        };
        let (source, exception) = suppression_source(&suppression.source);
        let justification = match exception {
            Some(name) => format!("{source} exception `{name}`: {}", suppression.reason),
            None => format!("{source}: {}", suppression.reason),
        };
        result["suppressions"] = json!([{"kind": kind, "justification": justification}]);
    }
    result
}

/// `namespace/Kind/name`, `Kind/name` for cluster-scoped objects.
fn object_id(finding: &Finding) -> String {
    let o = &finding.object;
    match &o.namespace {
        Some(ns) => format!("{ns}/{}/{}", o.kind, o.name),
        None => format!("{}/{}", o.kind, o.name),
    }
}

/// A hash of what the finding is about, not where: it survives edits that
/// move the object within its file. Only a finding of a second (third, …)
/// definition of its object mixes in that definition's file.
fn fingerprint(finding: &Finding, later_definition: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    for part in [
        object_id(finding).as_str(),
        finding.check.id,
        &finding.path,
        finding.container.as_deref().unwrap_or(""),
    ] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    if let Some(file) = later_definition {
        hasher.update(file.as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `privileged-container` → `PrivilegedContainer`.
fn pascal_case(id: &str) -> String {
    id.split('-')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect()
}

/// The artifact URI of a file as the scan named it: relative with forward
/// slashes (made relative to `base` when absolute and under it), percent-
/// encoded; absolute paths elsewhere become `file://` URIs.
pub(crate) fn artifact_uri(file: &str, base: Option<&Path>) -> String {
    if file == crate::loader::STDIN_NAME {
        return "stdin".to_owned();
    }
    let path = Path::new(file);
    let relative = match base.and_then(|b| path.strip_prefix(b).ok()) {
        Some(rel) if path.is_absolute() => rel.to_string_lossy().into_owned(),
        _ => file.to_owned(),
    };
    let mut uri = relative.replace('\\', "/");
    while let Some(rest) = uri.strip_prefix("./") {
        uri = rest.to_owned();
    }
    if uri.starts_with('/') {
        format!("file://{}", percent_encode(&uri))
    } else {
        percent_encode(&uri)
    }
}

fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::Value;

    use super::*;
    use crate::output::testing::fixture;
    use crate::output::{Format, Options};

    #[test]
    fn sarif_has_what_github_requires() {
        let text = fixture().render(Format::Sarif, Options::default());
        let sarif: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(sarif["version"], "2.1.0");
        assert_eq!(sarif["$schema"], SCHEMA);
        let run = &sarif["runs"][0];
        let driver = &run["tool"]["driver"];
        assert_eq!(driver["name"], "palisade");
        let rule = &driver["rules"][0];
        assert_eq!(rule["id"], "privileged-container");
        assert_eq!(rule["name"], "PrivilegedContainer");
        assert_eq!(rule["properties"]["security-severity"], "9.5");
        assert_eq!(rule["defaultConfiguration"]["level"], "error");
        assert!(
            rule["help"]["markdown"]
                .as_str()
                .unwrap()
                .contains("KSV017")
        );
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        let web = results
            .iter()
            .find(|r| r["properties"]["object"]["name"] == "web")
            .unwrap();
        assert_eq!(web["ruleId"], "privileged-container");
        assert_eq!(web["ruleIndex"], 0);
        assert_eq!(web["level"], "error");
        let location = &web["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "deploy/app.yaml");
        assert_eq!(location["region"]["startLine"], 1);
        assert_eq!(
            web["partialFingerprints"]["palisadeFinding/v1"]
                .as_str()
                .unwrap()
                .len(),
            32
        );
        assert!(web.get("suppressions").is_none());
        let debug = results
            .iter()
            .find(|r| r["properties"]["object"]["name"] == "debug")
            .unwrap();
        assert_eq!(debug["suppressions"][0]["kind"], "inSource");
        assert_eq!(
            debug["locations"][0]["physicalLocation"]["region"]["startLine"],
            16
        );
    }

    #[test]
    fn artifact_uris() {
        assert_eq!(artifact_uri("./k8s/app.yaml", None), "k8s/app.yaml");
        assert_eq!(artifact_uri("k8s\\my app.yaml", None), "k8s/my%20app.yaml");
        assert_eq!(
            artifact_uri("/repo/k8s/app.yaml", Some(Path::new("/repo"))),
            "k8s/app.yaml"
        );
        assert_eq!(
            artifact_uri("/elsewhere/app.yaml", Some(Path::new("/repo"))),
            "file:///elsewhere/app.yaml"
        );
        assert_eq!(artifact_uri("<stdin>", None), "stdin");
    }
}
