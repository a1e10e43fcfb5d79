//! What a ScanPolicy (and the object's own annotations) make of findings:
//! which checks run, their severities, and which findings are suppressed.

pub mod custom;
mod duration;
mod glob;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub use duration::{parse_bounded, parse_duration};
pub use glob::{Glob, glob_matches};

use crate::crd::ScanPolicySpec;
use crate::crd::scan_policy::Exception;
use crate::engine::{Check, Subject, Suppression, SuppressionSource, Violation};
use crate::model::{ObjectRef, Severity, selector_matches};

/// The prefix of Palisade's own annotations: the only annotations of an
/// object other than a workload that any check reads.
pub const ANNOTATION_PREFIX: &str = "palisade.dev/";
/// Annotation listing check ids to ignore on this object (comma separated).
pub const IGNORE_ANNOTATION: &str = "palisade.dev/ignore";
/// Annotation giving the reason for [`IGNORE_ANNOTATION`].
pub const IGNORE_REASON_ANNOTATION: &str = "palisade.dev/ignore-reason";

/// Shortest ScanPolicy `rescanInterval`: a full re-evaluation costs a pass
/// over every object, so a shorter one would keep the operator busy.
pub const MIN_RESCAN_INTERVAL: Duration = Duration::from_secs(60);
/// Longest ScanPolicy `rescanInterval`.
pub const MAX_RESCAN_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

/// A validated policy, compiled for the engine: check ids resolved, name
/// globs compiled, exceptions indexed by check and namespace, expiries
/// sorted. Compiling costs a pass over the spec; cloning, or giving it the
/// time of an evaluation ([`Policy::at`]), costs a reference count.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    rules: Arc<Rules>,
    /// The evaluation time, for exception expiry. The engine has no clock:
    /// the caller says what time it is.
    now: Option<Timestamp>,
}

#[derive(Clone, Debug, Default)]
struct Rules {
    /// When set, only these check ids run.
    only: Option<BTreeSet<&'static str>>,
    disabled: BTreeSet<&'static str>,
    overrides: BTreeMap<&'static str, Severity>,
    exceptions: Vec<CompiledException>,
    index: ExceptionIndex,
    /// Every exception's expiry, earliest first.
    expiries: Vec<Timestamp>,
    rescan_interval: Option<Duration>,
    /// The policy's custom CEL checks, compiled.
    custom: Vec<custom::CompiledCheck>,
    /// The admission policies of the evaluated objects, audited as checks
    /// (`vap/<name>`).
    admission: Arc<Vec<crate::vap::Audit>>,
}

/// An exception as matching reads it.
#[derive(Clone, Debug)]
struct CompiledException {
    /// The suppression source: its name, or `exceptions[i]`.
    source: String,
    reason: String,
    /// The check ids it covers; `None` for all.
    checks: Option<BTreeSet<&'static str>>,
    /// Empty means any namespace.
    namespaces: HashSet<String>,
    /// Empty means any kind.
    kinds: Vec<String>,
    /// Empty means any name.
    names: Vec<Glob>,
    selector: Option<LabelSelector>,
    expires: Option<Timestamp>,
}

impl CompiledException {
    fn compile(
        index: usize,
        e: &Exception,
        checks: Option<BTreeSet<&'static str>>,
    ) -> CompiledException {
        CompiledException {
            source: e
                .name
                .clone()
                .unwrap_or_else(|| format!("exceptions[{index}]")),
            reason: e.reason.clone(),
            checks,
            namespaces: e.namespaces.iter().cloned().collect(),
            kinds: e.kinds.clone(),
            names: e.names.iter().map(|g| Glob::new(g)).collect(),
            selector: e.selector.clone(),
            expires: e.expires.as_ref().map(|t| t.0),
        }
    }

    /// Whether the exception covers the finding of `check` on the object.
    /// The index already picked exceptions by check and namespace, but not
    /// all of them (see [`MAX_INDEX_ENTRIES`]), so both are checked again.
    fn matches(&self, check: &str, subject: &Subject<'_>, object: &ObjectRef) -> bool {
        let namespace = object.namespace.as_deref().unwrap_or("");
        self.checks.as_ref().is_none_or(|ids| ids.contains(check))
            && (self.namespaces.is_empty() || self.namespaces.contains(namespace))
            && (self.kinds.is_empty()
                || self
                    .kinds
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(&object.kind)))
            && (self.names.is_empty() || self.names.iter().any(|g| g.matches(&object.name)))
            && self
                .selector
                .as_ref()
                .is_none_or(|s| selector_matches(s, subject.metadata().labels.as_ref()))
    }
}

/// Exception positions by check id and namespace, so that a finding is
/// compared with the exceptions that can cover it only.
#[derive(Clone, Debug, Default)]
struct ExceptionIndex {
    by_check: HashMap<&'static str, NamespaceIndex>,
    /// Exceptions for every check (`*`).
    every_check: NamespaceIndex,
}

#[derive(Clone, Debug, Default)]
struct NamespaceIndex {
    by_namespace: HashMap<String, Vec<usize>>,
    /// Exceptions for any namespace.
    any_namespace: Vec<usize>,
}

impl NamespaceIndex {
    fn add(&mut self, namespaces: &[String], position: usize) {
        if namespaces.is_empty() {
            self.any_namespace.push(position);
        }
        for ns in namespaces.iter().collect::<BTreeSet<_>>() {
            self.by_namespace
                .entry(ns.clone())
                .or_default()
                .push(position);
        }
    }

    fn candidates<'a>(&'a self, namespace: &str, out: &mut Vec<&'a [usize]>) {
        out.push(&self.any_namespace);
        if let Some(list) = self.by_namespace.get(namespace) {
            out.push(list);
        }
    }
}

/// Most index entries (checks × namespaces) one exception may take; one
/// that would take more (the schema lets an exception list 1,000 checks and
/// 10,000 namespaces) is looked at for every finding instead, so that a
/// large policy cannot make the index huge.
const MAX_INDEX_ENTRIES: usize = 4096;

impl ExceptionIndex {
    fn add(&mut self, checks: Option<&BTreeSet<&'static str>>, namespaces: &[String], at: usize) {
        let entries = checks
            .map_or(1, BTreeSet::len)
            .saturating_mul(namespaces.len().max(1));
        if entries > MAX_INDEX_ENTRIES {
            self.every_check.add(&[], at);
            return;
        }
        match checks {
            None => self.every_check.add(namespaces, at),
            Some(ids) => {
                for &id in ids {
                    self.by_check.entry(id).or_default().add(namespaces, at);
                }
            }
        }
    }

    /// The position of the first exception (in spec order) for `check` in
    /// `namespace` that `accept` takes.
    fn first(&self, check: &str, namespace: &str, accept: impl Fn(usize) -> bool) -> Option<usize> {
        let mut lists: Vec<&[usize]> = Vec::with_capacity(4);
        self.every_check.candidates(namespace, &mut lists);
        if let Some(by_ns) = self.by_check.get(check) {
            by_ns.candidates(namespace, &mut lists);
        }
        // Each list is ascending: walk them together, lowest position first.
        let mut cursors = vec![0usize; lists.len()];
        loop {
            let position = lists
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.get(cursors[i]).copied())
                .min()?;
            if accept(position) {
                return Some(position);
            }
            // The same position may head several lists (an exception that
            // names a check twice): advance them all.
            for (i, l) in lists.iter().enumerate() {
                if l.get(cursors[i]) == Some(&position) {
                    cursors[i] += 1;
                }
            }
        }
    }
}

/// A policy field that names something that does not exist.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{field}: {message}")]
pub struct PolicyError {
    /// The offending field, e.g. `spec.exceptions[1].checks[0]`.
    pub field: String,
    pub message: String,
}

impl Policy {
    /// Validates `spec` against the catalog and compiles it. `now` decides
    /// which exceptions have expired.
    pub fn from_spec(
        spec: &ScanPolicySpec,
        catalog: &[&'static Check],
        now: Option<Timestamp>,
    ) -> Result<Policy, PolicyError> {
        let mut rules = Rules {
            custom: custom::compile_all(&spec.custom_checks, catalog)?,
            ..Rules::default()
        };
        // Exceptions, overrides and selections may name custom checks too.
        let with_custom = with_custom_checks(catalog, &rules.custom);
        let catalog = with_custom.as_slice();
        if !spec.checks.enabled.is_empty() {
            let ids = resolve_all(catalog, &spec.checks.enabled, "spec.checks.enabled")?;
            rules.only = Some(ids.into_iter().collect());
        }
        rules.disabled = resolve_all(catalog, &spec.checks.disabled, "spec.checks.disabled")?
            .into_iter()
            .collect();
        for (i, o) in spec.severity_overrides.iter().enumerate() {
            let field = format!("spec.severityOverrides[{i}].check");
            let ids = resolve(catalog, &o.check, &field)?;
            rules
                .overrides
                .extend(ids.into_iter().map(|id| (id, o.severity)));
        }
        for (i, exception) in spec.exceptions.iter().enumerate() {
            let checks = validate_exception(catalog, exception, i)?;
            rules.index.add(
                checks.as_ref(),
                &exception.namespaces,
                rules.exceptions.len(),
            );
            rules
                .exceptions
                .push(CompiledException::compile(i, exception, checks));
        }
        rules.expiries = rules.exceptions.iter().filter_map(|e| e.expires).collect();
        rules.expiries.sort_unstable();
        if let Some(interval) = &spec.rescan_interval {
            rules.rescan_interval = Some(
                parse_bounded(interval, MIN_RESCAN_INTERVAL, MAX_RESCAN_INTERVAL).map_err(
                    |message| PolicyError {
                        field: "spec.rescanInterval".into(),
                        message,
                    },
                )?,
            );
        }
        Ok(Policy {
            rules: Arc::new(rules),
            now,
        })
    }

    /// The same policy at another evaluation time; cheap.
    pub fn at(&self, now: Timestamp) -> Policy {
        Policy {
            rules: self.rules.clone(),
            now: Some(now),
        }
    }

    /// The policy's `rescanInterval`, validated to lie within
    /// [`MIN_RESCAN_INTERVAL`] and [`MAX_RESCAN_INTERVAL`].
    pub fn rescan_interval(&self) -> Option<Duration> {
        self.rules.rescan_interval
    }

    /// Restricts the checks that run (the CLI's `--checks`/`--skip-checks`).
    pub fn select(
        mut self,
        catalog: &[&'static Check],
        only: &[String],
        skip: &[String],
    ) -> Result<Policy, PolicyError> {
        let with_custom = with_custom_checks(catalog, &self.rules.custom);
        let catalog = with_custom.as_slice();
        let rules = Arc::make_mut(&mut self.rules);
        if !only.is_empty() {
            let ids: BTreeSet<_> = resolve_all(catalog, only, "--checks")?
                .into_iter()
                .collect();
            rules.only = Some(match rules.only.take() {
                Some(current) => current.intersection(&ids).copied().collect(),
                None => ids,
            });
        }
        rules
            .disabled
            .extend(resolve_all(catalog, skip, "--skip-checks")?);
        Ok(self)
    }

    /// The policy's custom checks and admission policy audits, for the
    /// engine to run beside the catalog.
    pub fn custom_checks(&self) -> impl Iterator<Item = &'static Check> + '_ {
        let custom = self.rules.custom.iter().map(|c| c.check);
        custom.chain(self.rules.admission.iter().map(|a| a.check))
    }

    /// The same policy, auditing the ValidatingAdmissionPolicies (and
    /// bindings) of `inventory` against its other objects.
    pub fn with_admission_policies(&self, inventory: &crate::model::Inventory) -> Policy {
        if inventory.admission_policies.is_empty() && self.rules.admission.is_empty() {
            return self.clone();
        }
        self.with_audits(Arc::new(crate::vap::audits(
            &inventory.admission_policies,
            &inventory.admission_policy_bindings,
        )))
    }

    /// The same policy, with these admission policy audits.
    pub fn with_audits(&self, audits: Arc<Vec<crate::vap::Audit>>) -> Policy {
        if audits.is_empty() && self.rules.admission.is_empty() {
            return self.clone();
        }
        let mut policy = self.clone();
        Arc::make_mut(&mut policy.rules).admission = audits;
        policy
    }

    /// Runs `check` on `subject`: a custom check's CEL, or the built-in
    /// check's function.
    pub fn run(
        &self,
        check: &'static Check,
        subject: &Subject<'_>,
        cx: &crate::engine::Context<'_>,
        out: &mut crate::engine::Violations,
    ) {
        if let Some(custom) = self
            .rules
            .custom
            .iter()
            .find(|c| std::ptr::eq(c.check, check))
        {
            return custom.run(subject, cx, out);
        }
        match self
            .rules
            .admission
            .iter()
            .find(|a| std::ptr::eq(a.check, check))
        {
            Some(audit) => audit.run(subject, cx, out),
            None => (check.run)(subject, cx, out),
        }
    }

    pub fn is_enabled(&self, check: &Check) -> bool {
        let listed = |ids: &BTreeSet<&'static str>| {
            ids.contains(check.id) || every_admission_policy(check).is_some_and(|a| ids.contains(a))
        };
        !listed(&self.rules.disabled) && self.rules.only.as_ref().is_none_or(listed)
    }

    pub fn severity(&self, check: &Check, default: Severity) -> Severity {
        let overrides = &self.rules.overrides;
        overrides
            .get(check.id)
            .or_else(|| every_admission_policy(check).and_then(|a| overrides.get(a)))
            .copied()
            .unwrap_or(default)
    }

    /// Why this violation is suppressed, if it is: the object's annotation
    /// first, then the policy's exceptions, then Palisade's own noise control.
    pub fn suppression(
        &self,
        check: &Check,
        subject: &Subject<'_>,
        object: &ObjectRef,
        violation: &Violation,
    ) -> Option<Suppression> {
        annotation_suppression(check, subject)
            .or_else(|| self.exception_suppression(check, subject, object))
            .or_else(|| {
                violation
                    .builtin_suppression
                    .clone()
                    .map(|reason| Suppression {
                        source: SuppressionSource::Builtin,
                        reason,
                    })
            })
    }

    fn exception_suppression(
        &self,
        check: &Check,
        subject: &Subject<'_>,
        object: &ObjectRef,
    ) -> Option<Suppression> {
        let namespace = object.namespace.as_deref().unwrap_or("");
        let exceptions = &self.rules.exceptions;
        let position = self.rules.index.first(check.id, namespace, |at| {
            let e = &exceptions[at];
            self.is_active(e) && e.matches(check.id, subject, object)
        })?;
        let exception = &exceptions[position];
        Some(Suppression {
            source: SuppressionSource::Policy(exception.source.clone()),
            reason: exception.reason.clone(),
        })
    }

    fn is_active(&self, exception: &CompiledException) -> bool {
        match (exception.expires, self.now) {
            (Some(expires), Some(now)) => expires > now,
            _ => true,
        }
    }

    /// The earliest expiry still ahead, so the operator knows when to re-evaluate.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        let expiries = &self.rules.expiries;
        let ahead = match self.now {
            Some(now) => expiries.partition_point(|t| *t <= now),
            None => 0,
        };
        expiries.get(ahead).copied()
    }
}

/// `vap/*`, which names every admission policy in check selections and
/// severity overrides, when `check` is one.
fn every_admission_policy(check: &Check) -> Option<&'static str> {
    check
        .id
        .starts_with(crate::vap::CHECK_PREFIX)
        .then_some("vap/*")
}

/// The catalog and the custom checks, for resolving check ids.
fn with_custom_checks(
    catalog: &[&'static Check],
    custom: &[custom::CompiledCheck],
) -> Vec<&'static Check> {
    catalog
        .iter()
        .copied()
        .chain(custom.iter().map(|c| c.check))
        .collect()
}

/// Whether `pattern` names `check`: its id, one of its aliases, or `*`.
pub fn names_check(pattern: &str, check: &Check) -> bool {
    pattern == "*"
        || pattern == check.id
        || check
            .aliases
            .iter()
            .any(|a| a.id.eq_ignore_ascii_case(pattern))
}

fn resolve(
    catalog: &[&'static Check],
    pattern: &str,
    field: &str,
) -> Result<Vec<&'static str>, PolicyError> {
    let ids: Vec<_> = catalog
        .iter()
        .filter(|c| names_check(pattern, c))
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        // Admission policies are checks of the objects evaluated, not of the
        // catalog: their ids are taken as written.
        if let Some(name) = pattern.strip_prefix(crate::vap::CHECK_PREFIX)
            && !name.is_empty()
        {
            return Ok(vec![custom::intern_id(pattern)]);
        }
        return Err(PolicyError {
            field: field.to_owned(),
            message: format!("unknown check `{pattern}` (see `palisade checks`)"),
        });
    }
    Ok(ids)
}

fn resolve_all(
    catalog: &[&'static Check],
    patterns: &[String],
    field: &str,
) -> Result<Vec<&'static str>, PolicyError> {
    let mut ids = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        // Comma-separated lists are accepted on the command line.
        for part in pattern.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            ids.extend(resolve(catalog, part, &format!("{field}[{i}]"))?);
        }
    }
    Ok(ids)
}

/// Checks an exception; returns the check ids it covers, `None` for all.
fn validate_exception(
    catalog: &[&'static Check],
    e: &Exception,
    i: usize,
) -> Result<Option<BTreeSet<&'static str>>, PolicyError> {
    let field = format!("spec.exceptions[{i}]");
    if e.checks.is_empty() {
        return Err(PolicyError {
            field: format!("{field}.checks"),
            message: "must list at least one check id or `*`".into(),
        });
    }
    let mut ids = BTreeSet::new();
    let mut every = false;
    for (j, pattern) in e.checks.iter().enumerate() {
        let resolved = resolve(catalog, pattern, &format!("{field}.checks[{j}]"))?;
        every |= pattern == "*";
        ids.extend(resolved);
    }
    if e.reason.trim().is_empty() {
        return Err(PolicyError {
            field: format!("{field}.reason"),
            message: "must say why the risk is accepted".into(),
        });
    }
    if let Some(selector) = &e.selector {
        for (j, req) in selector.match_expressions.iter().flatten().enumerate() {
            if !matches!(
                req.operator.as_str(),
                "In" | "NotIn" | "Exists" | "DoesNotExist"
            ) {
                return Err(PolicyError {
                    field: format!("{field}.selector.matchExpressions[{j}].operator"),
                    message: format!(
                        "unknown operator `{}` (In, NotIn, Exists, DoesNotExist)",
                        req.operator
                    ),
                });
            }
        }
    }
    Ok((!every).then_some(ids))
}

fn annotation_suppression(check: &Check, subject: &Subject<'_>) -> Option<Suppression> {
    let annotation = |key: &str| match subject {
        Subject::Workload(w) => w.annotation(key),
        other => other
            .metadata()
            .annotations
            .as_ref()?
            .get(key)
            .map(String::as_str),
    };
    let ignored = annotation(IGNORE_ANNOTATION)?;
    if !ignored
        .split(',')
        .map(str::trim)
        .any(|p| names_check(p, check))
    {
        return None;
    }
    let reason = annotation(IGNORE_REASON_ANNOTATION)
        .filter(|r| !r.trim().is_empty())
        .unwrap_or("no reason given")
        .to_owned();
    Some(Suppression {
        source: SuppressionSource::Annotation,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::rbac::v1::Role;

    use super::*;

    fn spec(yaml: &str) -> ScanPolicySpec {
        serde_norway::from_str(yaml).expect("test policy decodes")
    }

    fn check(id: &str) -> &'static Check {
        crate::checks::catalog()
            .iter()
            .find(|c| c.id == id)
            .expect("check in the catalog")
    }

    fn role(namespace: &str, name: &str, labels: &[(&str, &str)]) -> (Role, ObjectRef) {
        let role: Role = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            }
        }))
        .unwrap();
        let object = ObjectRef {
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: "Role".into(),
            namespace: Some(namespace.into()),
            name: name.into(),
            uid: None,
        };
        (role, object)
    }

    /// The source of the exception that suppresses `check` on the Role.
    fn suppressed_by(policy: &Policy, check_id: &str, role: &(Role, ObjectRef)) -> Option<String> {
        let suppression =
            policy.exception_suppression(check(check_id), &Subject::Role(&role.0), &role.1)?;
        match suppression.source {
            SuppressionSource::Policy(name) => Some(name),
            other => panic!("{other:?}"),
        }
    }

    const POLICY: &str = r#"
exceptions:
  - {name: other-ns, checks: [rbac-secrets-read], namespaces: [b], reason: r}
  - {name: by-label, checks: ["*"], selector: {matchLabels: {tier: batch}}, reason: r}
  - {name: exact, checks: [rbac-secrets-read, rbac-secrets-read], namespaces: [a], names: [reader], reason: r}
  - {name: glob, checks: [rbac-secrets-read], names: ["read*"], kinds: [role], reason: r}
  - {name: any, checks: ["*"], namespaces: [a], reason: r, expires: "2030-01-01T00:00:00Z"}
"#;

    #[test]
    fn the_first_matching_exception_in_spec_order_wins() {
        let policy = Policy::from_spec(&spec(POLICY), crate::checks::catalog(), None).unwrap();
        let reader = role("a", "reader", &[]);
        assert_eq!(
            suppressed_by(&policy, "rbac-secrets-read", &reader).as_deref(),
            Some("exact")
        );
        let batch = role("a", "reader", &[("tier", "batch")]);
        assert_eq!(
            suppressed_by(&policy, "rbac-secrets-read", &batch).as_deref(),
            Some("by-label")
        );
        let other = role("c", "reader-2", &[]);
        assert_eq!(
            suppressed_by(&policy, "rbac-secrets-read", &other).as_deref(),
            Some("glob")
        );
        assert_eq!(
            suppressed_by(&policy, "rbac-create-pods", &reader).as_deref(),
            Some("any")
        );
        assert_eq!(suppressed_by(&policy, "rbac-create-pods", &other), None);
        let in_b = role("b", "x", &[]);
        assert_eq!(
            suppressed_by(&policy, "rbac-secrets-read", &in_b).as_deref(),
            Some("other-ns")
        );
    }

    #[test]
    fn an_exception_too_large_to_index_still_matches_exactly() {
        let namespaces: Vec<String> = (0..5000).map(|i| format!("ns-{i}")).collect();
        let spec = ScanPolicySpec {
            exceptions: vec![Exception {
                name: Some("wide".into()),
                checks: vec!["rbac-secrets-read".into(), "rbac-create-pods".into()],
                namespaces,
                reason: "r".into(),
                ..Exception::default()
            }],
            ..ScanPolicySpec::default()
        };
        let policy = Policy::from_spec(&spec, crate::checks::catalog(), None).unwrap();
        assert_eq!(policy.rules.index.every_check.any_namespace, [0]);
        let inside = role("ns-4999", "x", &[]);
        let outside = role("other", "x", &[]);
        assert_eq!(
            suppressed_by(&policy, "rbac-create-pods", &inside).as_deref(),
            Some("wide")
        );
        assert_eq!(suppressed_by(&policy, "rbac-create-pods", &outside), None);
        assert_eq!(
            suppressed_by(&policy, "rbac-pods-exec-attach", &inside),
            None
        );
    }

    #[test]
    fn expiry_is_decided_by_the_time_of_the_evaluation() {
        let policy = Policy::from_spec(&spec(POLICY), crate::checks::catalog(), None).unwrap();
        let before: Timestamp = "2029-12-31T00:00:00Z".parse().unwrap();
        let after: Timestamp = "2030-01-01T00:00:01Z".parse().unwrap();
        let reader = role("a", "writer", &[]);
        assert_eq!(
            suppressed_by(&policy.at(before), "rbac-create-pods", &reader).as_deref(),
            Some("any")
        );
        assert_eq!(
            suppressed_by(&policy.at(after), "rbac-create-pods", &reader),
            None
        );
        assert_eq!(
            policy.at(before).next_expiry(),
            Some("2030-01-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(policy.at(after).next_expiry(), None);
    }

    #[test]
    fn rescan_interval_must_lie_between_a_minute_and_a_week() {
        let catalog = crate::checks::catalog();
        for bad in ["1ms", "59s", "8d", "18446744073709551615s"] {
            let err = Policy::from_spec(&spec(&format!("rescanInterval: {bad}")), catalog, None)
                .unwrap_err();
            assert_eq!(err.field, "spec.rescanInterval", "{bad}");
        }
        let ok = Policy::from_spec(&spec("rescanInterval: 1h30m"), catalog, None).unwrap();
        assert_eq!(ok.rescan_interval(), Some(Duration::from_secs(5400)));
    }
}
