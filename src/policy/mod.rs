//! What a ScanPolicy (and the object's own annotations) make of findings:
//! which checks run, their severities, and which findings are suppressed.

mod glob;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

pub use glob::glob_matches;

use crate::crd::ScanPolicySpec;
use crate::crd::scan_policy::Exception;
use crate::engine::{Check, Severity, Subject, Suppression, SuppressionSource, Violation};
use crate::model::{ObjectRef, selector_matches};

/// Annotation listing check ids to ignore on this object (comma separated).
pub const IGNORE_ANNOTATION: &str = "palisade.dev/ignore";
/// Annotation giving the reason for [`IGNORE_ANNOTATION`].
pub const IGNORE_REASON_ANNOTATION: &str = "palisade.dev/ignore-reason";

/// A validated policy, ready for the engine.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// When set, only these check ids run.
    only: Option<BTreeSet<&'static str>>,
    disabled: BTreeSet<&'static str>,
    overrides: BTreeMap<&'static str, Severity>,
    exceptions: Vec<Exception>,
    /// The evaluation time, for exception expiry. The engine has no clock:
    /// the caller says what time it is.
    now: Option<Timestamp>,
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
    /// Validates `spec` against the catalog. `now` decides which exceptions
    /// have expired.
    pub fn from_spec(
        spec: &ScanPolicySpec,
        catalog: &[&'static Check],
        now: Option<Timestamp>,
    ) -> Result<Policy, PolicyError> {
        let mut policy = Policy {
            now,
            ..Policy::default()
        };
        if !spec.checks.enabled.is_empty() {
            let ids = resolve_all(catalog, &spec.checks.enabled, "spec.checks.enabled")?;
            policy.only = Some(ids.into_iter().collect());
        }
        policy.disabled = resolve_all(catalog, &spec.checks.disabled, "spec.checks.disabled")?
            .into_iter()
            .collect();
        for (i, o) in spec.severity_overrides.iter().enumerate() {
            let field = format!("spec.severityOverrides[{i}].check");
            let ids = resolve(catalog, &o.check, &field)?;
            policy
                .overrides
                .extend(ids.into_iter().map(|id| (id, o.severity)));
        }
        for (i, exception) in spec.exceptions.iter().enumerate() {
            validate_exception(catalog, exception, i)?;
        }
        policy.exceptions = spec.exceptions.clone();
        Ok(policy)
    }

    /// Restricts the checks that run (the CLI's `--checks`/`--skip-checks`).
    pub fn select(
        mut self,
        catalog: &[&'static Check],
        only: &[String],
        skip: &[String],
    ) -> Result<Policy, PolicyError> {
        if !only.is_empty() {
            let ids: BTreeSet<_> = resolve_all(catalog, only, "--checks")?
                .into_iter()
                .collect();
            self.only = Some(match self.only {
                Some(current) => current.intersection(&ids).copied().collect(),
                None => ids,
            });
        }
        self.disabled
            .extend(resolve_all(catalog, skip, "--skip-checks")?);
        Ok(self)
    }

    pub fn is_enabled(&self, check: &Check) -> bool {
        !self.disabled.contains(check.id)
            && self
                .only
                .as_ref()
                .is_none_or(|only| only.contains(check.id))
    }

    pub fn severity(&self, check: &Check, default: Severity) -> Severity {
        self.overrides.get(check.id).copied().unwrap_or(default)
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
        let (index, exception) = self
            .exceptions
            .iter()
            .enumerate()
            .find(|(_, e)| self.is_active(e) && exception_matches(e, check, subject, object))?;
        let name = exception
            .name
            .clone()
            .unwrap_or_else(|| format!("exceptions[{index}]"));
        Some(Suppression {
            source: SuppressionSource::Policy(name),
            reason: exception.reason.clone(),
        })
    }

    fn is_active(&self, exception: &Exception) -> bool {
        match (&exception.expires, self.now) {
            (Some(expires), Some(now)) => expires.0 > now,
            _ => true,
        }
    }

    /// The earliest expiry still ahead, so the operator knows when to re-evaluate.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.exceptions
            .iter()
            .filter_map(|e| e.expires.as_ref().map(|t| t.0))
            .filter(|t| self.now.is_none_or(|now| *t > now))
            .min()
    }
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

fn validate_exception(
    catalog: &[&'static Check],
    e: &Exception,
    i: usize,
) -> Result<(), PolicyError> {
    let field = format!("spec.exceptions[{i}]");
    if e.checks.is_empty() {
        return Err(PolicyError {
            field: format!("{field}.checks"),
            message: "must list at least one check id or `*`".into(),
        });
    }
    for (j, pattern) in e.checks.iter().enumerate() {
        resolve(catalog, pattern, &format!("{field}.checks[{j}]"))?;
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
    Ok(())
}

fn exception_matches(
    e: &Exception,
    check: &Check,
    subject: &Subject<'_>,
    object: &ObjectRef,
) -> bool {
    let namespace = object.namespace.as_deref().unwrap_or("");
    e.checks.iter().any(|p| names_check(p, check))
        && (e.namespaces.is_empty() || e.namespaces.iter().any(|n| n == namespace))
        && (e.kinds.is_empty() || e.kinds.iter().any(|k| k.eq_ignore_ascii_case(&object.kind)))
        && (e.names.is_empty() || e.names.iter().any(|g| glob_matches(g, &object.name)))
        && e.selector
            .as_ref()
            .is_none_or(|s| selector_matches(s, subject.metadata().labels.as_ref()))
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
