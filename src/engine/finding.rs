use std::cmp::Ordering;
use std::sync::Arc;

use serde::Serialize;

use super::{Check, Severity};
use crate::model::{ContainerEntry, FieldPath, ObjectRef};

/// What a check reports about one subject, before the engine adds identity,
/// severity and suppression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub message: String,
    pub path: FieldPath,
    pub container: Option<String>,
    /// A severity other than the check's default, for checks whose risk
    /// depends on the object (an attack path on an exposed pod is worse).
    pub severity: Option<Severity>,
    /// Set by checks that keep known-benign objects (bootstrap RBAC roles,
    /// control-plane service accounts) out of default output.
    pub builtin_suppression: Option<String>,
}

/// Collects the violations one check finds in one subject.
#[derive(Debug, Default)]
pub struct Violations {
    items: Vec<Violation>,
}

impl Violations {
    /// A violation of the pod or object itself.
    pub fn object(&mut self, path: FieldPath, message: impl Into<String>) -> &mut Violation {
        self.items.push(Violation {
            message: message.into(),
            path,
            container: None,
            severity: None,
            builtin_suppression: None,
        });
        self.items.last_mut().expect("just pushed")
    }

    /// A violation in one container, at `path` inside it.
    pub fn container(
        &mut self,
        container: &ContainerEntry,
        path: FieldPath,
        message: impl Into<String>,
    ) -> &mut Violation {
        let violation = self.object(path, message);
        violation.container = Some(container.name().to_owned());
        violation
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn take(&mut self) -> Vec<Violation> {
        std::mem::take(&mut self.items)
    }
}

impl Violation {
    pub fn severity(&mut self, severity: Severity) -> &mut Self {
        self.severity = Some(severity);
        self
    }

    pub fn suppress_by_default(&mut self, reason: impl Into<String>) -> &mut Self {
        self.builtin_suppression = Some(reason.into());
        self
    }
}

/// Why a finding does not count.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Suppression {
    pub source: SuppressionSource,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SuppressionSource {
    /// The object's `palisade.dev/ignore` annotation.
    Annotation,
    /// An exception in the ScanPolicy; holds the exception's name or index.
    Policy(String),
    /// Palisade's own noise control (bootstrap roles, system accounts).
    Builtin,
}

/// One problem in one object: the unit of every output.
#[derive(Clone, Debug)]
pub struct Finding {
    /// Shared by every finding of the object.
    pub object: Arc<ObjectRef>,
    pub check: &'static Check,
    /// Effective severity, after per-object raises and policy overrides.
    pub severity: Severity,
    pub message: String,
    pub path: String,
    pub container: Option<String>,
    /// Boxed: most findings are not suppressed, and every finding is held
    /// until the report is written.
    pub suppressed: Option<Box<Suppression>>,
}

impl Finding {
    pub fn is_suppressed(&self) -> bool {
        self.suppressed.is_some()
    }

    fn sort_key(&self) -> impl Ord + '_ {
        (
            &self.object,
            std::cmp::Reverse(self.severity),
            self.check.id,
            &self.path,
            &self.container,
            &self.message,
            &self.suppressed,
        )
    }
}

/// Findings sort by object, then worst first, then check id and field path.
impl Ord for Finding {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for Finding {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Finding {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Finding {}
