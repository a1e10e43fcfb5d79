//! OpenReports output: `openreports.io/v1alpha1` `Report` objects (one per
//! namespace) and a `ClusterReport` (cluster-scoped objects), the format
//! Policy Reporter and other report consumers read.
//!
//! The mapping, shared by `palisade scan --output openreports` and the
//! operator's `--emit-openreports`:
//! - each finding is one result: `source: palisade`, `policy` and `rule` the
//!   check id, `category` the check category, `severity` the effective
//!   severity, `result: fail` (`skip` when the finding is suppressed),
//!   `message`, `resources` the object, `properties` the field path,
//!   container, frameworks and, for `skip`, why it is suppressed;
//! - each check that ran and found nothing in some objects of the scope is
//!   one `pass` result listing those objects in `resources` (one result per
//!   object and check would not fit a namespace's report);
//! - `summary` counts `fail` and `skip` results, and one `pass` for each
//!   object a pass result lists;
//! - a Namespace object's findings go into that namespace's Report (it is
//!   the report's scope); ClusterRoles and ClusterRoleBindings into the
//!   ClusterReport.
//!
//! `palisade scan` adds one `error` result per input that could not be
//! read or decoded to the ClusterReport (see [`error_result`]).
//!
//! Results are ordered (failures worst first, then skips, then input
//! errors in input order, then passes by check id) and cut to [`RESULTS_BUDGET_BYTES`] in that order, so the same
//! findings always give the same bytes.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use super::Report;
use crate::engine::{Applies, Check, Finding, Severity, SuppressionSource};
use crate::loader::ErrorEntry;
use crate::model::ObjectRef;

pub const GROUP: &str = "openreports.io";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "openreports.io/v1alpha1";
pub const KIND_REPORT: &str = "Report";
pub const KIND_CLUSTER_REPORT: &str = "ClusterReport";
/// The `source` of every report and result Palisade writes.
pub const SOURCE: &str = "palisade";
/// Every report Palisade writes has this name: there is one per namespace
/// and one ClusterReport.
pub const REPORT_NAME: &str = "palisade";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Results are cut at this serialized size, below the 1.5 MiB etcd object
/// limit with room for the metadata; the summary still counts every result.
pub const RESULTS_BUDGET_BYTES: usize = 1024 * 1024;
/// Set on a report whose results were cut: how many were left out.
pub const ANNOTATION_OMITTED: &str = "palisade.dev/omitted-results";

/// A `Report` or `ClusterReport`; field order follows the CRD.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenReport {
    pub api_version: String,
    pub kind: String,
    pub metadata: ReportMetadata,
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ResourceRef>,
    #[serde(default)]
    pub summary: ReportSummary,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ReportResult>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportMetadata {
    pub name: String,
    /// Absent for a ClusterReport, and for the Report of manifests that
    /// name no namespace (it then goes where `kubectl apply` puts them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The CRD's `ObjectReference` (`scope`, `resources[]`), with the fields
/// Palisade fills.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl From<&ObjectRef> for ResourceRef {
    fn from(o: &ObjectRef) -> ResourceRef {
        ResourceRef {
            api_version: o.api_version.clone(),
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    #[serde(default)]
    pub pass: u32,
    #[serde(default)]
    pub fail: u32,
    #[serde(default)]
    pub warn: u32,
    #[serde(default)]
    pub error: u32,
    #[serde(default)]
    pub skip: u32,
}

/// The CRD's `result` enum; Palisade writes `pass`, `fail` and `skip`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Fail,
    Warn,
    Error,
    Skip,
    Pass,
}

/// `metav1.Timestamp`: when a result was first found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ResultTimestamp {
    pub seconds: i64,
    pub nanos: i32,
}

impl From<jiff::Timestamp> for ResultTimestamp {
    fn from(t: jiff::Timestamp) -> ResultTimestamp {
        ResultTimestamp {
            seconds: t.as_second(),
            nanos: t.subsec_nanosecond(),
        }
    }
}

/// One result; field names as in the CRD (`message`, `resources`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    #[serde(default)]
    pub source: String,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Absent in `palisade scan` output (no clock: the output is
    /// deterministic); the operator sets it to when the result first
    /// appeared and keeps it while the result stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<ResultTimestamp>,
    pub result: Outcome,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub scored: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

impl ReportResult {
    /// The result without its timestamp: what says whether two reports
    /// carry the same result.
    pub fn identity(&self) -> ReportResult {
        ReportResult {
            timestamp: None,
            ..self.clone()
        }
    }
}

/// The suppression of a finding as one word (`annotation`,
/// `policy/<exception>`, `builtin`), as ScanReports write it.
fn suppression_text(source: &SuppressionSource) -> String {
    match source {
        SuppressionSource::Annotation => "annotation".to_owned(),
        SuppressionSource::Policy(name) => format!("policy/{name}"),
        SuppressionSource::Builtin => "builtin".to_owned(),
    }
}

/// The result of one finding: `fail`, or `skip` when it is suppressed.
pub fn finding_result(f: &Finding) -> ReportResult {
    let mut properties = BTreeMap::from([
        ("title".to_owned(), f.check.title.to_owned()),
        ("path".to_owned(), f.path.clone()),
    ]);
    if let Some(container) = &f.container {
        properties.insert("container".to_owned(), container.clone());
    }
    if !f.check.frameworks.is_empty() {
        properties.insert("frameworks".to_owned(), f.check.frameworks.join(","));
    }
    if let Some(s) = &f.suppressed {
        properties.insert("suppressedBy".to_owned(), suppression_text(&s.source));
        properties.insert("suppressionReason".to_owned(), s.reason.clone());
    }
    ReportResult {
        source: SOURCE.to_owned(),
        policy: f.check.id.to_owned(),
        rule: Some(f.check.id.to_owned()),
        category: Some(f.check.category.as_str().to_owned()),
        severity: Some(f.severity),
        timestamp: None,
        result: if f.is_suppressed() {
            Outcome::Skip
        } else {
            Outcome::Fail
        },
        scored: !f.is_suppressed(),
        resources: vec![ResourceRef::from(&*f.object)],
        message: Some(f.message.clone()),
        properties,
    }
}

/// The `pass` result of `check` for the objects it found nothing in.
pub fn pass_result(check: &Check, severity: Severity, objects: Vec<ResourceRef>) -> ReportResult {
    let mut properties = BTreeMap::from([("title".to_owned(), check.title.to_owned())]);
    if !check.frameworks.is_empty() {
        properties.insert("frameworks".to_owned(), check.frameworks.join(","));
    }
    ReportResult {
        source: SOURCE.to_owned(),
        policy: check.id.to_owned(),
        rule: Some(check.id.to_owned()),
        category: Some(check.category.as_str().to_owned()),
        severity: Some(severity),
        timestamp: None,
        result: Outcome::Pass,
        scored: true,
        resources: objects,
        message: Some(format!("{}: no problem found", check.title)),
        properties,
    }
}

/// The `error` result of an input that could not be read or decoded: it
/// belongs to no object, so it goes to the ClusterReport, with where it is
/// in `properties`.
pub fn error_result(entry: &ErrorEntry) -> ReportResult {
    let mut properties = BTreeMap::new();
    let mut put = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            properties.insert(key.to_owned(), value);
        }
    };
    put("file", entry.file.clone());
    put("line", entry.line.map(|l| l.to_string()));
    put("column", entry.column.map(|c| c.to_string()));
    put("object", entry.object.clone());
    put("field", entry.field.clone());
    ReportResult {
        source: SOURCE.to_owned(),
        policy: "invalid-input".to_owned(),
        rule: None,
        category: None,
        severity: None,
        timestamp: None,
        result: Outcome::Error,
        scored: false,
        resources: Vec::new(),
        message: Some(entry.message.clone()),
        properties,
    }
}

/// Which report an object's results go to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReportScope {
    /// The ClusterReport.
    Cluster,
    /// The Report of a namespace; `None` for manifests that name none.
    Namespace(Option<String>),
}

impl std::fmt::Display for ReportScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReportScope::Cluster => f.write_str("ClusterReport"),
            ReportScope::Namespace(Some(ns)) => write!(f, "Report -n {ns}"),
            ReportScope::Namespace(None) => f.write_str("Report"),
        }
    }
}

impl ReportScope {
    pub fn of(object: &ObjectRef) -> ReportScope {
        match object.kind.as_str() {
            "Namespace" => ReportScope::Namespace(Some(object.name.clone())),
            "ClusterRole" | "ClusterRoleBinding" => ReportScope::Cluster,
            _ => ReportScope::Namespace(object.namespace.clone()),
        }
    }
}

/// Gathers the results of one scope and builds its report.
#[derive(Debug, Default)]
pub struct ScopeResults {
    /// `fail` and `skip` results with their sort keys.
    findings: Vec<(FindingOrder, ReportResult)>,
    /// `error` results, in input order, after the findings.
    errors: Vec<ReportResult>,
    /// Per check id: the check, its severity and the objects it passed.
    passes: BTreeMap<&'static str, (&'static Check, Severity, Vec<ResourceRef>)>,
}

/// Failures first, worst first, then by object, check and path; skips after.
type FindingOrder = (bool, std::cmp::Reverse<Severity>, ObjectRef, String, String);

impl ScopeResults {
    pub fn is_empty(&self) -> bool {
        self.findings.is_empty() && self.passes.is_empty() && self.errors.is_empty()
    }

    pub fn add_error(&mut self, result: ReportResult) {
        self.errors.push(result);
    }

    pub fn add_finding(&mut self, f: &Finding, timestamp: Option<ResultTimestamp>) {
        let order = (
            f.is_suppressed(),
            std::cmp::Reverse(f.severity),
            (*f.object).clone(),
            f.check.id.to_owned(),
            format!("{}\0{}", f.path, f.message),
        );
        let mut result = finding_result(f);
        result.timestamp = timestamp;
        self.findings.push((order, result));
    }

    pub fn add_pass(&mut self, check: &'static Check, severity: Severity, object: &ObjectRef) {
        self.passes
            .entry(check.id)
            .or_insert_with(|| (check, severity, Vec::new()))
            .2
            .push(ResourceRef::from(object));
    }

    /// Adds one object: its findings, and a pass for each check in `checks`
    /// that applies to it and found nothing (suppressed or not).
    pub fn add_object(
        &mut self,
        object: &ObjectRef,
        applies: Applies,
        findings: &[&Finding],
        checks: &[(&'static Check, Severity)],
    ) {
        for f in findings {
            self.add_finding(f, None);
        }
        for (check, severity) in checks {
            if check.applies.covers(applies) && !findings.iter().any(|f| f.check.id == check.id) {
                self.add_pass(check, *severity, object);
            }
        }
    }

    /// The ordered results and their summary (counted before any cut).
    pub fn finish(mut self) -> (Vec<ReportResult>, ReportSummary) {
        self.findings.sort_by(|a, b| a.0.cmp(&b.0));
        let mut summary = ReportSummary::default();
        let mut results = Vec::with_capacity(self.findings.len() + self.passes.len());
        for (_, result) in self.findings {
            match result.result {
                Outcome::Skip => summary.skip += 1,
                _ => summary.fail += 1,
            }
            results.push(result);
        }
        summary.error += self.errors.len() as u32;
        results.append(&mut self.errors);
        for (_, (check, severity, mut objects)) in self.passes {
            objects.sort();
            objects.dedup();
            summary.pass += objects.len() as u32;
            results.push(pass_result(check, severity, objects));
        }
        (results, summary)
    }
}

/// The report of `scope` holding `results` (cut to the size budget).
pub fn build_report(
    scope: &ReportScope,
    results: Vec<ReportResult>,
    summary: ReportSummary,
) -> OpenReport {
    let (kind, namespace, scope_ref) = match scope {
        ReportScope::Cluster => (KIND_CLUSTER_REPORT, None, None),
        ReportScope::Namespace(ns) => (
            KIND_REPORT,
            ns.clone(),
            ns.as_ref().map(|name| ResourceRef {
                api_version: "v1".to_owned(),
                kind: "Namespace".to_owned(),
                namespace: None,
                name: name.clone(),
                uid: None,
            }),
        ),
    };
    let total = results.len();
    let results = cap_results(results, RESULTS_BUDGET_BYTES);
    let mut annotations = BTreeMap::new();
    if results.len() < total {
        annotations.insert(
            ANNOTATION_OMITTED.to_owned(),
            (total - results.len()).to_string(),
        );
    }
    OpenReport {
        api_version: API_VERSION.to_owned(),
        kind: kind.to_owned(),
        metadata: ReportMetadata {
            name: REPORT_NAME.to_owned(),
            namespace,
            labels: BTreeMap::from([(LABEL_MANAGED_BY.to_owned(), SOURCE.to_owned())]),
            annotations,
        },
        source: SOURCE.to_owned(),
        scope: scope_ref,
        summary,
        results,
    }
}

/// Keeps the leading results whose serialized size fits `budget`.
fn cap_results(results: Vec<ReportResult>, budget: usize) -> Vec<ReportResult> {
    let mut used = 0;
    let mut kept = Vec::with_capacity(results.len());
    for result in results {
        let size = serde_json::to_vec(&result).map_or(budget, |v| v.len());
        if used + size > budget {
            break;
        }
        used += size;
        kept.push(result);
    }
    kept
}

/// The reports of a scan, ClusterReport first, then Reports by namespace.
fn scan_reports(report: &Report<'_>) -> io::Result<Vec<OpenReport>> {
    let checks: Vec<(&'static Check, Severity)> = report
        .checks
        .iter()
        .filter(|c| report.severity_of(c) >= report.options.min_severity)
        .map(|c| (*c, report.severity_of(c)))
        .collect();
    let min_severity = report.options.min_severity;
    let mut scopes: BTreeMap<ReportScope, ScopeResults> = BTreeMap::new();
    let mut not_evaluated = Vec::new();
    report.by_evaluated_object(
        |evaluated, findings, first| {
            let scope = scopes
                .entry(ReportScope::of(&evaluated.object))
                .or_default();
            // An object listed twice shows its findings once.
            if first {
                for f in findings.iter().filter(|f| f.severity >= min_severity) {
                    scope.add_finding(f, None);
                }
            }
            // A check that found something below --min-severity did not pass.
            for (check, severity) in &checks {
                let found = findings.iter().any(|f| f.check.id == check.id);
                if check.applies.covers(evaluated.applies) && !found {
                    scope.add_pass(check, *severity, &evaluated.object);
                }
            }
            Ok(())
        },
        |f| {
            if f.severity >= min_severity {
                not_evaluated.push(f);
            }
            Ok(())
        },
    )?;
    // Findings of objects not evaluated (none in practice) still show.
    for f in &not_evaluated {
        let scope = scopes.entry(ReportScope::of(&f.object)).or_default();
        scope.add_finding(f, None);
    }
    if !report.errors.is_empty() {
        let cluster = scopes.entry(ReportScope::Cluster).or_default();
        for entry in report.errors {
            cluster.add_error(error_result(entry));
        }
    }
    Ok(scopes
        .into_iter()
        .map(|(scope, results)| {
            let (results, summary) = results.finish();
            build_report(&scope, results, summary)
        })
        .collect())
}

/// `palisade scan --output openreports`: a YAML stream of the reports.
pub fn write(report: &Report<'_>, out: &mut dyn Write) -> io::Result<()> {
    for document in scan_reports(report)? {
        out.write_all(b"---\n")?;
        serde_norway::to_writer(&mut *out, &document).map_err(io::Error::other)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::testing::fixture;
    use crate::output::{Format, Options};

    fn documents(text: &str) -> Vec<OpenReport> {
        text.split("---\n")
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_norway::from_str(d).expect("a report document"))
            .collect()
    }

    fn check(id: &str) -> &'static Check {
        crate::checks::catalog()
            .iter()
            .copied()
            .find(|c| c.id == id)
            .expect("known check")
    }

    fn object(kind: &str, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
            uid: Some(format!("uid-{name}")),
        }
    }

    fn finding(object: ObjectRef, suppressed: bool) -> Finding {
        Finding {
            object: object.into(),
            check: check("privileged-container"),
            severity: Severity::Critical,
            message: "container `app` is privileged".into(),
            path: "spec.template.spec.containers[name=app].securityContext.privileged".into(),
            container: Some("app".into()),
            suppressed: suppressed.then(|| {
                Box::new(crate::engine::Suppression {
                    source: SuppressionSource::Policy("lab".into()),
                    reason: "lab cluster".into(),
                })
            }),
        }
    }

    #[test]
    fn a_finding_maps_to_a_fail_result() {
        let r = finding_result(&finding(object("Deployment", Some("shop"), "web"), false));
        assert_eq!(r.source, "palisade");
        assert_eq!(r.policy, "privileged-container");
        assert_eq!(r.rule.as_deref(), Some("privileged-container"));
        assert_eq!(r.category.as_deref(), Some("pod-security-baseline"));
        assert_eq!(r.severity, Some(Severity::Critical));
        assert_eq!(r.result, Outcome::Fail);
        assert!(r.scored);
        assert_eq!(r.message.as_deref(), Some("container `app` is privileged"));
        assert_eq!(r.properties["container"], "app");
        assert_eq!(
            r.properties["path"],
            "spec.template.spec.containers[name=app].securityContext.privileged"
        );
        assert!(r.properties["frameworks"].contains("pss:baseline"), "{r:?}");
        assert!(!r.properties.contains_key("suppressedBy"));
        assert_eq!(r.resources.len(), 1);
        assert_eq!(r.resources[0].kind, "Deployment");
        assert_eq!(r.resources[0].namespace.as_deref(), Some("shop"));
        assert_eq!(r.resources[0].uid.as_deref(), Some("uid-web"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["result"], "fail");
        assert_eq!(json["severity"], "critical");
        assert_eq!(json["resources"][0]["apiVersion"], "apps/v1");
        assert!(json.get("timestamp").is_none());
    }

    #[test]
    fn a_suppressed_finding_maps_to_a_skip_result() {
        let r = finding_result(&finding(object("Deployment", Some("shop"), "web"), true));
        assert_eq!(r.result, Outcome::Skip);
        assert!(!r.scored);
        assert_eq!(r.properties["suppressedBy"], "policy/lab");
        assert_eq!(r.properties["suppressionReason"], "lab cluster");
        assert_eq!(serde_json::to_value(&r).unwrap()["result"], "skip");
    }

    #[test]
    fn checks_that_found_nothing_map_to_pass_results_and_summary() {
        let privileged = check("privileged-container");
        let host_pid = check("host-pid");
        let checks = [(privileged, Severity::Critical), (host_pid, Severity::High)];
        let web = object("Deployment", Some("shop"), "web");
        let api = object("Deployment", Some("shop"), "api");
        let bad = finding(web.clone(), false);
        let mut scope = ScopeResults::default();
        scope.add_object(&web, Applies::Workload, &[&bad], &checks);
        scope.add_object(&api, Applies::Workload, &[], &checks);
        let (results, summary) = scope.finish();
        assert_eq!(
            summary,
            ReportSummary {
                pass: 3,
                fail: 1,
                ..Default::default()
            }
        );
        let outcomes: Vec<_> = results
            .iter()
            .map(|r| (r.policy.as_str(), r.result, r.resources.len()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("privileged-container", Outcome::Fail, 1),
                ("host-pid", Outcome::Pass, 2),
                ("privileged-container", Outcome::Pass, 1),
            ]
        );
        let pass = &results[2];
        assert_eq!(pass.resources[0].name, "api", "web failed the check");
        assert_eq!(pass.severity, Some(Severity::Critical));
        assert_eq!(serde_json::to_value(pass).unwrap()["result"], "pass");
    }

    #[test]
    fn objects_go_to_the_report_of_their_scope() {
        let deployment = object("Deployment", Some("shop"), "web");
        let namespace = object("Namespace", None, "shop");
        let role = object("ClusterRole", None, "admin");
        let bare = object("Deployment", None, "web");
        assert_eq!(
            ReportScope::of(&deployment),
            ReportScope::Namespace(Some("shop".into()))
        );
        assert_eq!(ReportScope::of(&namespace), ReportScope::of(&deployment));
        assert_eq!(ReportScope::of(&role), ReportScope::Cluster);
        assert_eq!(ReportScope::of(&bare), ReportScope::Namespace(None));
        let cluster = build_report(&ReportScope::Cluster, vec![], ReportSummary::default());
        assert_eq!(cluster.kind, "ClusterReport");
        assert_eq!((cluster.metadata.namespace, cluster.scope), (None, None));
        let shop = build_report(
            &ReportScope::Namespace(Some("shop".into())),
            vec![],
            ReportSummary::default(),
        );
        assert_eq!(shop.kind, "Report");
        assert_eq!(shop.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(shop.scope.unwrap().kind, "Namespace");
    }

    #[test]
    fn results_are_cut_to_the_budget_with_the_summary_kept() {
        let mut scope = ScopeResults::default();
        let mut many = Vec::new();
        for i in 0..5000 {
            let mut f = finding(
                object("Deployment", Some("shop"), &format!("web-{i:05}")),
                false,
            );
            f.message = "x".repeat(400);
            many.push(f);
        }
        for f in &many {
            scope.add_finding(f, None);
        }
        let (results, summary) = scope.finish();
        let report = build_report(
            &ReportScope::Namespace(Some("shop".into())),
            results,
            summary,
        );
        assert_eq!(report.summary.fail, 5000);
        let omitted: usize = report.metadata.annotations[ANNOTATION_OMITTED]
            .parse()
            .unwrap();
        assert_eq!(report.results.len() + omitted, 5000);
        let size = serde_json::to_vec(&report).unwrap().len();
        assert!(size <= RESULTS_BUDGET_BYTES + 4096, "{size} bytes");
        assert_eq!(report.results[0].resources[0].name, "web-00000");
    }

    #[test]
    fn scan_output_is_one_report_per_namespace_with_fail_skip_and_pass() {
        let fixture = fixture();
        let text = fixture.render(Format::Openreports, Options::default());
        assert_eq!(
            text,
            fixture.render(Format::Openreports, Options::default()),
            "deterministic"
        );
        let docs = documents(&text);
        assert_eq!(docs.len(), 1, "{text}");
        let shop = &docs[0];
        assert_eq!(shop.api_version, "openreports.io/v1alpha1");
        assert_eq!(shop.kind, "Report");
        assert_eq!(shop.metadata.name, "palisade");
        assert_eq!(shop.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(shop.metadata.labels[LABEL_MANAGED_BY], "palisade");
        assert_eq!(shop.source, "palisade");
        assert_eq!(
            shop.summary,
            ReportSummary {
                pass: 1,
                fail: 1,
                skip: 1,
                ..Default::default()
            }
        );
        let by_outcome = |o: Outcome| {
            shop.results
                .iter()
                .filter(|r| r.result == o)
                .flat_map(|r| r.resources.iter().map(|o| o.name.as_str()))
                .collect::<Vec<_>>()
        };
        assert_eq!(by_outcome(Outcome::Fail), ["web"]);
        assert_eq!(by_outcome(Outcome::Skip), ["debug"]);
        assert_eq!(by_outcome(Outcome::Pass), ["clean"]);
        assert!(text.contains("result: fail"), "{text}");
    }
}
