//! The workload kinds: one table entry per kind that carries a pod template.
//!
//! The table is data: the loader decodes a kind's pod template from where
//! its entry says it lives, the operator watches, caches and reports the
//! kinds it lists, a controller of a listed kind makes its owned objects
//! part of it, and the RBAC rules the operator needs follow from it. Users
//! add their own kinds (`spec.workloadKinds` of a ScanPolicy, read by the
//! operator and by `palisade scan --policy`).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Mutex;

/// How a kind's document is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decoding {
    /// Into its `k8s-openapi` type (the core kinds; OpenShift's
    /// DeploymentConfig into a ReplicationController, whose shape it has).
    Typed,
    /// Generically: metadata, and the pod template at [`WorkloadKind::template`].
    Generic,
}

/// One workload kind.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkloadKind {
    /// API group; empty for the core group.
    pub group: &'static str,
    /// Served versions, the preferred one first.
    pub versions: &'static [&'static str],
    /// `group/version` of the preferred version (`v1` for the core group):
    /// what reports name.
    pub api_version: &'static str,
    pub kind: &'static str,
    /// The resource name in URLs and RBAC rules, e.g. `rollouts`.
    pub plural: &'static str,
    /// Where the pod template lives, one field at a time (e.g. `spec`,
    /// `jobTargetRef`, `template`); empty when the object is its own
    /// template (a Pod, a Knative Revision).
    pub template: &'static [&'static str],
    /// The template's `spec` holds pod-spec fields inline next to fields of
    /// the kind's own (Knative's `RevisionSpec`): they are read as a pod
    /// spec and the others ignored.
    pub inline_pod_spec: bool,
    /// Where a reference to another workload whose template this one uses
    /// lives (Argo Rollouts' `spec.workloadRef`); empty when none.
    pub workload_ref: &'static [&'static str],
    /// Whether the operator also caches the objects of this kind that a
    /// workload owns (dynamically watched kinds; Kubernetes' own kinds keep
    /// only top-level objects). Top-level objects are always cached; owned
    /// ones are never targets, cached or not.
    pub cached: bool,
    pub decoding: Decoding,
}

impl WorkloadKind {
    /// The template's path, dotted: `spec.jobTemplate.spec.template`.
    pub fn template_path(&self) -> String {
        self.template.join(".")
    }

    /// Whether this kind's group is one of Kubernetes' own (always served).
    pub fn is_core(&self) -> bool {
        matches!(self.group, "" | "apps" | "batch")
    }

    /// Whether `api_version` (`group/version` or `version`) is of this kind's group.
    pub fn has_group_of(&self, api_version: &str) -> bool {
        group_of(api_version) == self.group
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.group {
            "" => f.write_str(self.kind),
            group => write!(f, "{}.{group}", self.kind),
        }
    }
}

/// The API group of an `apiVersion` (empty for the core group).
pub fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

const fn typed(
    group: &'static str,
    api_version: &'static str,
    versions: &'static [&'static str],
    kind: &'static str,
    plural: &'static str,
    template: &'static [&'static str],
    cached: bool,
) -> WorkloadKind {
    WorkloadKind {
        group,
        versions,
        api_version,
        kind,
        plural,
        template,
        inline_pod_spec: false,
        workload_ref: &[],
        cached,
        decoding: Decoding::Typed,
    }
}

const fn generic(
    group: &'static str,
    api_version: &'static str,
    versions: &'static [&'static str],
    kind: &'static str,
    plural: &'static str,
    template: &'static [&'static str],
) -> WorkloadKind {
    WorkloadKind {
        group,
        versions,
        api_version,
        kind,
        plural,
        template,
        inline_pod_spec: false,
        workload_ref: &[],
        cached: true,
        decoding: Decoding::Generic,
    }
}

const SPEC_TEMPLATE: &[&str] = &["spec", "template"];

/// Every built-in workload kind.
pub static BUILT_IN: [WorkloadKind; 15] = [
    typed("", "v1", &["v1"], "Pod", "pods", &[], false),
    typed(
        "",
        "v1",
        &["v1"],
        "PodTemplate",
        "podtemplates",
        &["template"],
        false,
    ),
    typed(
        "apps",
        "apps/v1",
        &["v1"],
        "Deployment",
        "deployments",
        SPEC_TEMPLATE,
        true,
    ),
    typed(
        "apps",
        "apps/v1",
        &["v1"],
        "ReplicaSet",
        "replicasets",
        SPEC_TEMPLATE,
        false,
    ),
    typed(
        "apps",
        "apps/v1",
        &["v1"],
        "StatefulSet",
        "statefulsets",
        SPEC_TEMPLATE,
        true,
    ),
    typed(
        "apps",
        "apps/v1",
        &["v1"],
        "DaemonSet",
        "daemonsets",
        SPEC_TEMPLATE,
        true,
    ),
    typed(
        "batch",
        "batch/v1",
        &["v1"],
        "Job",
        "jobs",
        SPEC_TEMPLATE,
        false,
    ),
    typed(
        "batch",
        "batch/v1",
        &["v1"],
        "CronJob",
        "cronjobs",
        &["spec", "jobTemplate", "spec", "template"],
        true,
    ),
    typed(
        "",
        "v1",
        &["v1"],
        "ReplicationController",
        "replicationcontrollers",
        SPEC_TEMPLATE,
        true,
    ),
    typed(
        "apps.openshift.io",
        "apps.openshift.io/v1",
        &["v1"],
        "DeploymentConfig",
        "deploymentconfigs",
        SPEC_TEMPLATE,
        true,
    ),
    WorkloadKind {
        workload_ref: &["spec", "workloadRef"],
        ..generic(
            "argoproj.io",
            "argoproj.io/v1alpha1",
            &["v1alpha1"],
            "Rollout",
            "rollouts",
            SPEC_TEMPLATE,
        )
    },
    WorkloadKind {
        inline_pod_spec: true,
        ..generic(
            "serving.knative.dev",
            "serving.knative.dev/v1",
            &["v1"],
            "Service",
            "services",
            SPEC_TEMPLATE,
        )
    },
    WorkloadKind {
        inline_pod_spec: true,
        ..generic(
            "serving.knative.dev",
            "serving.knative.dev/v1",
            &["v1"],
            "Configuration",
            "configurations",
            SPEC_TEMPLATE,
        )
    },
    // A Revision is what a Configuration stamps out and what owns the
    // Deployment that runs it: its whole object is the template (metadata,
    // and a `spec` with pod-spec fields inline). Always owned, so not cached.
    WorkloadKind {
        inline_pod_spec: true,
        cached: false,
        ..generic(
            "serving.knative.dev",
            "serving.knative.dev/v1",
            &["v1"],
            "Revision",
            "revisions",
            &[],
        )
    },
    generic(
        "keda.sh",
        "keda.sh/v1alpha1",
        &["v1alpha1"],
        "ScaledJob",
        "scaledjobs",
        &["spec", "jobTargetRef", "template"],
    ),
];

/// The kinds of one evaluation: the built-in ones and the user's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindTable {
    kinds: Vec<&'static WorkloadKind>,
}

impl Default for KindTable {
    fn default() -> Self {
        KindTable {
            kinds: built_in().collect(),
        }
    }
}

fn built_in() -> impl Iterator<Item = &'static WorkloadKind> {
    BUILT_IN.iter()
}

/// A user's entry, as written in `spec.workloadKinds`.
#[derive(Clone, Copy, Debug)]
pub struct UserKind<'a> {
    pub group: &'a str,
    pub versions: &'a [String],
    pub kind: &'a str,
    pub plural: &'a str,
    /// Dotted path of the pod template, e.g. `spec.template`.
    pub pod_template: &'a str,
    pub inline_pod_spec: bool,
    pub cached: bool,
}

/// A bad entry of `spec.workloadKinds`: its field and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("spec.workloadKinds[{index}].{field}: {message}")]
pub struct KindError {
    pub index: usize,
    pub field: &'static str,
    pub message: String,
}

impl KindTable {
    /// The built-in kinds alone.
    pub fn built_in() -> &'static KindTable {
        static TABLE: std::sync::OnceLock<KindTable> = std::sync::OnceLock::new();
        TABLE.get_or_init(KindTable::default)
    }

    /// The built-in kinds and `user`'s, validated entry by entry.
    pub fn with_user_kinds<'a>(
        user: impl IntoIterator<Item = UserKind<'a>>,
    ) -> Result<KindTable, KindError> {
        let mut table = KindTable::default();
        for (index, entry) in user.into_iter().enumerate() {
            let kind = validate(index, &entry)?;
            if table.find(kind.group, kind.kind).is_some() {
                return Err(KindError {
                    index,
                    field: "kind",
                    message: format!("{} is already in the table", display(&kind)),
                });
            }
            table.kinds.push(intern(kind));
        }
        Ok(table)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static WorkloadKind> + '_ {
        self.kinds.iter().copied()
    }

    /// The kind `kind` of `group`.
    pub fn find(&self, group: &str, kind: &str) -> Option<&'static WorkloadKind> {
        self.iter().find(|k| k.group == group && k.kind == kind)
    }

    /// The kind of an object written as `apiVersion`/`kind`.
    pub fn of(&self, api_version: &str, kind: &str) -> Option<&'static WorkloadKind> {
        self.find(group_of(api_version), kind)
    }

    /// Kinds the operator watches with a typed client: Kubernetes' own
    /// (but PodTemplates, which run nothing).
    pub fn watched_typed(&self) -> impl Iterator<Item = &'static WorkloadKind> + '_ {
        self.iter()
            .filter(|k| k.is_core() && k.kind != "PodTemplate")
    }

    /// Kinds the operator watches with a dynamic client (not a typed one).
    pub fn watched_dynamically(&self) -> impl Iterator<Item = &'static WorkloadKind> + '_ {
        self.iter().filter(|k| !k.is_core())
    }
}

/// Whether an owner written as `apiVersion`/`kind` is a workload of any
/// table, so that what it owns is part of it (no report of its own).
pub fn owner_is_workload(table: &KindTable, api_version: &str, kind: &str) -> bool {
    table.of(api_version, kind).is_some()
}

fn display(kind: &WorkloadKind) -> String {
    kind.to_string()
}

/// Lower-case alphanumerics and `-`, starting and ending alphanumeric.
fn is_dns_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    !s.is_empty()
        && s.len() <= 63
        && bytes.first().is_some_and(alnum)
        && bytes.last().is_some_and(alnum)
        && bytes.iter().all(|b| alnum(b) || *b == b'-')
}

fn is_field_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && s.len() <= 63
}

fn validate(index: usize, entry: &UserKind<'_>) -> Result<WorkloadKind, KindError> {
    let error = |field: &'static str, message: &str| KindError {
        index,
        field,
        message: message.to_owned(),
    };
    if entry.group.is_empty() || !entry.group.split('.').all(is_dns_label) {
        return Err(error(
            "group",
            "must be a DNS subdomain (a CRD's API group)",
        ));
    }
    if entry.versions.is_empty() {
        return Err(error("versions", "must list at least one version"));
    }
    if let Some(bad) = entry.versions.iter().position(|v| !is_dns_label(v)) {
        return Err(KindError {
            index,
            field: "versions",
            message: format!("[{bad}] must be a version such as v1 or v1alpha1"),
        });
    }
    let kind_ok = entry.kind.starts_with(|c: char| c.is_ascii_uppercase())
        && entry.kind.len() <= 63
        && entry.kind.chars().all(|c| c.is_ascii_alphanumeric());
    if !kind_ok {
        return Err(error(
            "kind",
            "must be a kind name such as Widget (letters and digits, upper-case first)",
        ));
    }
    if !is_dns_label(entry.plural) {
        return Err(error(
            "plural",
            "must be the resource's plural name such as widgets (lower case)",
        ));
    }
    let template: Vec<&str> = entry.pod_template.split('.').collect();
    if entry.pod_template.is_empty()
        || !template.iter().all(|f| is_field_name(f))
        || template.len() > 16
    {
        return Err(error(
            "podTemplate",
            "must be the dotted path of the pod template, such as spec.template",
        ));
    }
    Ok(WorkloadKind {
        group: leak(entry.group),
        versions: Box::leak(
            entry
                .versions
                .iter()
                .map(|v| leak(v))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        ),
        api_version: leak(&format!("{}/{}", entry.group, entry.versions[0])),
        kind: leak(entry.kind),
        plural: leak(entry.plural),
        template: Box::leak(
            template
                .into_iter()
                .map(leak)
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        ),
        inline_pod_spec: entry.inline_pod_spec,
        workload_ref: &[],
        cached: entry.cached,
        decoding: Decoding::Generic,
    })
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// User kinds live for the process: a kind is a `&'static` so that report
/// keys holding it stay small and `Copy`. Each distinct entry is kept once,
/// so re-reading the same policy allocates nothing new.
static INTERNED: Mutex<BTreeSet<&'static WorkloadKind>> = Mutex::new(BTreeSet::new());

fn intern(kind: WorkloadKind) -> &'static WorkloadKind {
    let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = interned.get(&kind) {
        return existing;
    }
    let kind: &'static WorkloadKind = Box::leak(Box::new(kind));
    interned.insert(kind);
    kind
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget<'a>(versions: &'a [String]) -> UserKind<'a> {
        UserKind {
            group: "example.com",
            versions,
            kind: "Widget",
            plural: "widgets",
            pod_template: "spec.runner.template",
            inline_pod_spec: false,
            cached: true,
        }
    }

    #[test]
    fn the_built_in_table_holds_every_kind_once() {
        let table = KindTable::default();
        let mut seen = BTreeSet::new();
        for kind in table.iter() {
            assert!(seen.insert((kind.group, kind.kind)), "{kind} twice");
        }
        let rollout = table.of("argoproj.io/v1alpha1", "Rollout").unwrap();
        assert_eq!(rollout.template_path(), "spec.template");
        assert_eq!(rollout.api_version, "argoproj.io/v1alpha1");
        let scaled_job = table.of("keda.sh/v1alpha1", "ScaledJob").unwrap();
        assert_eq!(scaled_job.template_path(), "spec.jobTargetRef.template");
        assert!(
            table
                .of("serving.knative.dev/v1", "Service")
                .unwrap()
                .inline_pod_spec
        );
        // A core Service is no workload; neither is an unknown group's kind.
        assert!(table.of("v1", "Service").is_none());
        assert!(table.of("example.com/v1", "Rollout").is_none());
    }

    #[test]
    fn user_kinds_join_the_table() {
        let versions = ["v1".to_owned()];
        let table = KindTable::with_user_kinds([widget(&versions)]).unwrap();
        let kind = table.of("example.com/v1", "Widget").unwrap();
        assert_eq!(kind.template, ["spec", "runner", "template"]);
        assert_eq!(kind.decoding, Decoding::Generic);
        // The same entry again is the same interned kind.
        let again = KindTable::with_user_kinds([widget(&versions)]).unwrap();
        assert!(std::ptr::eq(
            kind,
            again.of("example.com/v1", "Widget").unwrap()
        ));
        assert!(owner_is_workload(&table, "example.com/v2", "Widget"));
        assert!(!owner_is_workload(
            &KindTable::default(),
            "example.com/v1",
            "Widget"
        ));
    }

    #[test]
    fn a_bad_entry_names_its_field() {
        let versions = ["v1".to_owned()];
        let bad = |entry: UserKind<'_>| {
            KindTable::with_user_kinds([widget(&versions), entry])
                .unwrap_err()
                .to_string()
        };
        let w = widget(&versions);
        assert!(bad(UserKind { group: "", ..w }).starts_with("spec.workloadKinds[1].group:"));
        assert!(
            bad(UserKind { versions: &[], ..w }).starts_with("spec.workloadKinds[1].versions:")
        );
        let upper = ["V1".to_owned()];
        assert!(
            bad(UserKind {
                versions: &upper,
                ..w
            })
            .contains("versions: [0]")
        );
        assert!(
            bad(UserKind {
                kind: "widget",
                ..w
            })
            .starts_with("spec.workloadKinds[1].kind:")
        );
        assert!(
            bad(UserKind {
                plural: "Widgets",
                ..w
            })
            .starts_with("spec.workloadKinds[1].plural:")
        );
        for path in ["", "spec..template", "spec.template[0]"] {
            let message = bad(UserKind {
                pod_template: path,
                ..w
            });
            assert!(
                message.starts_with("spec.workloadKinds[1].podTemplate:"),
                "{path}: {message}"
            );
        }
        // Twice the same kind, or a built-in one.
        assert!(bad(w).contains("already in the table"));
        let rollout = UserKind {
            group: "argoproj.io",
            kind: "Rollout",
            plural: "rollouts",
            ..w
        };
        assert!(bad(rollout).starts_with("spec.workloadKinds[1].kind:"));
        // A valid table is accepted.
        assert!(KindTable::with_user_kinds([w]).is_ok());
    }
}
