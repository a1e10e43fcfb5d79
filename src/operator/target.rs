//! What gets a report: the kinds, their identity, and the report's name.

use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

use crate::crd::ReportTarget;
use crate::model::{KindTable, WorkloadKind};

/// Every kind that gets its own report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    CronJob,
    Job,
    ReplicationController,
    Pod,
    ServiceAccount,
    Role,
    RoleBinding,
    Namespace,
    ClusterRole,
    ClusterRoleBinding,
    /// A workload kind of the [`KindTable`] outside Kubernetes' own groups
    /// (a CRD, watched while it is served).
    Custom(&'static WorkloadKind),
}

impl TargetKind {
    pub const ALL: [TargetKind; 14] = [
        TargetKind::Deployment,
        TargetKind::StatefulSet,
        TargetKind::DaemonSet,
        TargetKind::ReplicaSet,
        TargetKind::CronJob,
        TargetKind::Job,
        TargetKind::ReplicationController,
        TargetKind::Pod,
        TargetKind::ServiceAccount,
        TargetKind::Role,
        TargetKind::RoleBinding,
        TargetKind::Namespace,
        TargetKind::ClusterRole,
        TargetKind::ClusterRoleBinding,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Deployment => "Deployment",
            TargetKind::StatefulSet => "StatefulSet",
            TargetKind::DaemonSet => "DaemonSet",
            TargetKind::ReplicaSet => "ReplicaSet",
            TargetKind::CronJob => "CronJob",
            TargetKind::Job => "Job",
            TargetKind::ReplicationController => "ReplicationController",
            TargetKind::Pod => "Pod",
            TargetKind::ServiceAccount => "ServiceAccount",
            TargetKind::Role => "Role",
            TargetKind::RoleBinding => "RoleBinding",
            TargetKind::Namespace => "Namespace",
            TargetKind::ClusterRole => "ClusterRole",
            TargetKind::ClusterRoleBinding => "ClusterRoleBinding",
            TargetKind::Custom(kind) => kind.kind,
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            TargetKind::Custom(kind) => kind.api_version,
            TargetKind::Deployment
            | TargetKind::StatefulSet
            | TargetKind::DaemonSet
            | TargetKind::ReplicaSet => "apps/v1",
            TargetKind::CronJob | TargetKind::Job => "batch/v1",
            TargetKind::ReplicationController
            | TargetKind::Pod
            | TargetKind::ServiceAccount
            | TargetKind::Namespace => "v1",
            TargetKind::Role
            | TargetKind::RoleBinding
            | TargetKind::ClusterRole
            | TargetKind::ClusterRoleBinding => "rbac.authorization.k8s.io/v1",
        }
    }

    pub fn from_kind(kind: &str) -> Option<TargetKind> {
        TargetKind::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The kind of an object written as `apiVersion`/`kind`: a table kind
    /// watched dynamically, or one of the built-in targets.
    pub fn from_target(api_version: &str, kind: &str) -> Option<TargetKind> {
        let dynamic = workload_kinds()
            .of(api_version, kind)
            .or_else(|| KindTable::built_in().of(api_version, kind))
            .filter(|k| !k.is_core());
        match dynamic {
            Some(kind) => Some(TargetKind::Custom(kind)),
            None => TargetKind::from_kind(kind),
        }
    }

    /// Cluster-scoped targets get a ClusterScanReport.
    pub fn is_cluster_scoped(self) -> bool {
        matches!(
            self,
            TargetKind::Namespace | TargetKind::ClusterRole | TargetKind::ClusterRoleBinding
        )
    }

    /// Kinds that carry a pod template (or are a Pod).
    pub fn is_workload(self) -> bool {
        matches!(
            self,
            TargetKind::Deployment
                | TargetKind::StatefulSet
                | TargetKind::DaemonSet
                | TargetKind::ReplicaSet
                | TargetKind::CronJob
                | TargetKind::Job
                | TargetKind::ReplicationController
                | TargetKind::Pod
                | TargetKind::Custom(_)
        )
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One object that gets a report; the unit of the work queue.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetKey {
    pub kind: TargetKind,
    /// `None` for cluster-scoped kinds.
    pub namespace: Option<String>,
    pub name: String,
}

impl TargetKey {
    pub fn new(kind: TargetKind, namespace: Option<&str>, name: &str) -> TargetKey {
        TargetKey {
            kind,
            namespace: if kind.is_cluster_scoped() {
                None
            } else {
                namespace.map(str::to_owned)
            },
            name: name.to_owned(),
        }
    }

    pub fn from_meta(kind: TargetKind, meta: &ObjectMeta) -> TargetKey {
        TargetKey::new(
            kind,
            meta.namespace.as_deref(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }

    /// The name of this target's report.
    pub fn report_name(&self) -> String {
        report_name(self.kind, &self.name)
    }
}

impl fmt::Display for TargetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// Longest object name the API server accepts (a DNS subdomain).
pub const MAX_NAME_LEN: usize = 253;

/// Hex digits of the hash suffix of a hashed report name.
const HASH_HEX_DIGITS: usize = 10;

/// The name of a target's report: `<kind>-<name>` in lower case when that is
/// a valid DNS subdomain, fits, and does not end like a hashed name;
/// otherwise a hashed name, `<kind>-<name>` with invalid characters as `-`,
/// cut to fit, then `-` and ten hex digits of SHA-256 of `<kind>-<name>`
/// (the exact name, case included).
///
/// Injective: plain names are distinct (kinds contain no `-`, so the kind
/// and the name can be told apart), hashed names always end with `-` and ten
/// hex digits while plain names never do, and two hashed names differ in
/// their hash. So Role `Admin` (hashed: `role-admin-<hash>`) and a Role
/// named `admin-<hash>` (whose plain name would be the same) get different
/// reports: the second name ends like a hash and is hashed in turn.
pub fn report_name(kind: TargetKind, name: &str) -> String {
    let full = format!("{}-{}", kind.as_str().to_ascii_lowercase(), name);
    if full.len() <= MAX_NAME_LEN && is_dns_subdomain(&full) && !ends_like_a_hash(&full) {
        return full;
    }
    hashed_name(&full, MAX_NAME_LEN)
}

/// Whether `name` ends with `-` and [`HASH_HEX_DIGITS`] lower-case hex
/// digits, as every hashed name does.
fn ends_like_a_hash(name: &str) -> bool {
    let bytes = name.as_bytes();
    let Some(dash) = bytes.len().checked_sub(HASH_HEX_DIGITS + 1) else {
        return false;
    };
    bytes[dash] == b'-'
        && bytes[dash + 1..]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `exact` made into a valid DNS subdomain of at most `max_len` characters
/// that identifies it: lower case, characters a subdomain does not allow
/// (RBAC names such as `system:node` have colons) as `-`, cut to fit, and
/// `-` with a hash of `exact` appended.
pub fn hashed_name(exact: &str, max_len: usize) -> String {
    let hash = Sha256::digest(exact.as_bytes());
    let suffix: String = hash[..HASH_HEX_DIGITS / 2]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sanitized: String = exact
        .to_ascii_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    // The sanitized name is ASCII, so byte slicing is safe. Each label of a
    // DNS subdomain starts and ends with a letter or digit: empty labels and
    // dashes at a label's ends (`a..b`, `a.-b`, or a cut that ends on `-`)
    // are dropped.
    let keep = sanitized
        .len()
        .min(max_len.saturating_sub(suffix.len() + 1));
    let head = sanitized[..keep]
        .split('.')
        .map(|label| label.trim_matches('-'))
        .filter(|label| !label.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    if head.is_empty() {
        return suffix;
    }
    format!("{head}-{suffix}")
}

/// Whether `name` is a valid DNS subdomain (RFC 1123) of at most
/// [`MAX_NAME_LEN`] characters, as most object names must be: lower-case
/// labels of letters, digits and `-`, each starting and ending with a
/// letter or digit, joined by `.`.
pub fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.split('.').all(|label| {
            let bytes = label.as_bytes();
            let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            bytes.first().is_some_and(alnum)
                && bytes.last().is_some_and(alnum)
                && bytes.iter().all(|b| alnum(b) || *b == b'-')
        })
}

/// Whether a report whose `spec.target` is `target` is the report of the
/// object `key` with UID `uid`: same kind, same exact name, and the same
/// UID when both are known. A report found under the target's report name
/// but written for another object (one named alike under an older naming
/// rule, or an object since deleted and created again under the same
/// name) is not: its findings and their `firstSeen` must not be taken over.
pub fn is_report_of(target: &ReportTarget, key: &TargetKey, uid: Option<&str>) -> bool {
    let same_uid = match (target.uid.as_deref(), uid) {
        (Some(reported), Some(live)) => reported == live,
        _ => true,
    };
    target.kind == key.kind.as_str() && target.name == key.name && same_uid
}

/// The workload kinds of the policy in force: whose controller they are
/// decides which objects are top-level.
static WORKLOAD_KINDS: OnceLock<RwLock<Arc<KindTable>>> = OnceLock::new();

fn kinds_in_force() -> &'static RwLock<Arc<KindTable>> {
    WORKLOAD_KINDS.get_or_init(|| RwLock::new(Arc::new(KindTable::default())))
}

/// Makes `kinds` the table [`is_top_level`] and [`TargetKind::from_target`] read.
pub fn set_workload_kinds(kinds: Arc<KindTable>) {
    *kinds_in_force().write().unwrap_or_else(|e| e.into_inner()) = kinds;
}

/// The table in force (the built-in one until a policy is read).
pub fn workload_kinds() -> Arc<KindTable> {
    kinds_in_force()
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// The owner that controls an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
}

/// Whether a ReplicaSet, Job or Pod is reported on its own: not when a
/// workload controller Palisade reports (Deployment, CronJob, …) manages it.
/// Whether an object gets a report of its own: it has no controller, or
/// its controller is of no workload kind of the table. Owned objects are
/// part of their controller's report, whatever their kind (a ReplicaSet of
/// a Deployment or of an Argo Rollout, a Job of a CronJob or of a KEDA
/// ScaledJob, a Pod of any of them); following controllers up the chain,
/// the first object whose controller is not a workload gets the report.
pub fn is_top_level(_kind: TargetKind, meta: &ObjectMeta) -> bool {
    is_top_level_in(&workload_kinds(), meta)
}

fn is_top_level_in(kinds: &KindTable, meta: &ObjectMeta) -> bool {
    match controller_of(meta) {
        None => true,
        Some(owner) => kinds.of(&owner.api_version, &owner.kind).is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned_by(api_version: &str, kind: &str, controller: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some("x".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: api_version.into(),
                kind: kind.into(),
                name: "owner".into(),
                uid: "u".into(),
                controller: Some(controller),
                block_owner_deletion: None,
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn report_name_is_kind_and_name_in_lower_case() {
        assert_eq!(report_name(TargetKind::Deployment, "web"), "deployment-web");
    }

    #[test]
    fn names_a_dns_subdomain_cannot_hold_get_a_hash() {
        let name = report_name(TargetKind::ClusterRoleBinding, "system:basic-user");
        assert!(
            name.starts_with("clusterrolebinding-system-basic-user-"),
            "{name}"
        );
        assert_ne!(
            name,
            report_name(TargetKind::ClusterRoleBinding, "system-basic-user")
        );
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        let upper = report_name(TargetKind::Role, "Admin");
        assert!(upper.starts_with("role-admin-"), "{upper}");
    }

    #[test]
    fn a_name_that_ends_like_a_hash_gets_its_own_hash() {
        // Role `Admin` is hashed; a Role named after its hashed report name
        // must not get the same report.
        let admin = report_name(TargetKind::Role, "Admin");
        let look_alike = admin.strip_prefix("role-").unwrap();
        let other = report_name(TargetKind::Role, look_alike);
        assert_ne!(admin, other);
        assert!(other.starts_with(&admin), "{other}");
        assert!(is_dns_subdomain(&other), "{other}");
        // Case matters: `Admin`, `ADMIN` and `admin` are three targets.
        let upper = report_name(TargetKind::Role, "ADMIN");
        assert_ne!(admin, upper);
        assert_eq!(report_name(TargetKind::Role, "admin"), "role-admin");
    }

    #[test]
    fn report_names_are_dns_subdomains_for_any_name() {
        for name in [
            "system:node",
            "evil:secret-reader",
            "-leading",
            "a..b",
            "a.-b",
            "UPPER.case",
            "ünïcode",
            ":",
            &"x.".repeat(200),
        ] {
            for kind in TargetKind::ALL {
                let report = report_name(kind, name);
                assert!(is_dns_subdomain(&report), "{kind} {name:?}: {report}");
            }
        }
        assert!(!is_dns_subdomain("role-a:b"));
        assert!(!is_dns_subdomain("a.-b"));
        assert!(is_dns_subdomain("deployment-web.v2"));
    }

    #[test]
    fn a_report_is_its_targets_only_with_the_same_kind_name_and_uid() {
        let key = TargetKey::new(TargetKind::Role, Some("a"), "Admin");
        let target = |kind: &str, name: &str, uid: Option<&str>| ReportTarget {
            api_version: "rbac.authorization.k8s.io/v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.map(Into::into),
        };
        assert!(is_report_of(
            &target("Role", "Admin", Some("u1")),
            &key,
            Some("u1")
        ));
        assert!(is_report_of(
            &target("Role", "Admin", None),
            &key,
            Some("u1")
        ));
        assert!(!is_report_of(
            &target("Role", "Admin", Some("u0")),
            &key,
            Some("u1")
        ));
        assert!(!is_report_of(
            &target("Role", "admin", Some("u1")),
            &key,
            Some("u1")
        ));
        assert!(!is_report_of(
            &target("RoleBinding", "Admin", Some("u1")),
            &key,
            Some("u1")
        ));
    }

    #[test]
    fn long_report_names_are_cut_with_a_hash_and_stay_unique() {
        let a = report_name(TargetKind::ServiceAccount, &"a".repeat(253));
        let b = report_name(TargetKind::ServiceAccount, &format!("{}b", "a".repeat(252)));
        assert_eq!(a.len(), MAX_NAME_LEN);
        assert!(a.starts_with("serviceaccount-aaa"));
        assert_ne!(a, b);
        // Deterministic: the same target always gets the same name.
        assert_eq!(a, report_name(TargetKind::ServiceAccount, &"a".repeat(253)));
    }

    #[test]
    fn a_cut_never_ends_in_a_separator() {
        let name = format!("{}.{}", "a".repeat(220), "b".repeat(40));
        let cut = report_name(TargetKind::Role, &name);
        assert!(cut.len() <= MAX_NAME_LEN);
        assert!(!cut.contains(".-"), "{cut}");
    }

    #[test]
    fn controller_owned_objects_are_not_top_level() {
        let by_deploy = owned_by("apps/v1", "Deployment", true);
        assert!(!is_top_level(TargetKind::ReplicaSet, &by_deploy));
        let by_cron = owned_by("batch/v1", "CronJob", true);
        assert!(!is_top_level(TargetKind::Job, &by_cron));
        let by_rs = owned_by("apps/v1", "ReplicaSet", true);
        assert!(!is_top_level(TargetKind::Pod, &by_rs));
        let by_rc = owned_by("v1", "ReplicationController", true);
        assert!(!is_top_level(TargetKind::Pod, &by_rc));
    }

    #[test]
    fn objects_without_a_known_controller_are_top_level() {
        assert!(is_top_level(TargetKind::Pod, &ObjectMeta::default()));
        // A non-controller owner reference does not manage the pod.
        assert!(is_top_level(
            TargetKind::Pod,
            &owned_by("apps/v1", "ReplicaSet", false)
        ));
        // A controller of no workload kind: the pod is the top we know.
        assert!(is_top_level(
            TargetKind::Pod,
            &owned_by("example.com/v1", "Widget", true)
        ));
        assert!(is_top_level(TargetKind::Pod, &owned_by("v1", "Node", true)));
    }

    #[test]
    fn any_table_kind_owns_what_it_controls() {
        let built_in = KindTable::default();
        for (api_version, kind) in [
            ("argoproj.io/v1alpha1", "Rollout"),
            ("keda.sh/v1alpha1", "ScaledJob"),
            ("serving.knative.dev/v1", "Configuration"),
            ("apps.openshift.io/v1", "DeploymentConfig"),
            ("batch/v1", "Job"),
        ] {
            let owned = owned_by(api_version, kind, true);
            assert!(!is_top_level_in(&built_in, &owned), "{kind}");
        }
        // A user's kind owns what it controls once it is in the table.
        let widget = owned_by("example.com/v1", "Widget", true);
        assert!(is_top_level_in(&built_in, &widget));
        let versions = ["v1".to_owned()];
        let with_widget = KindTable::with_user_kinds([crate::model::kinds::UserKind {
            group: "example.com",
            versions: &versions,
            kind: "Widget",
            plural: "widgets",
            pod_template: "spec.template",
            inline_pod_spec: false,
            cached: true,
        }])
        .unwrap();
        assert!(!is_top_level_in(&with_widget, &widget));
    }

    #[test]
    fn table_kinds_outside_the_core_groups_are_their_own_targets() {
        let rollout = TargetKind::from_target("argoproj.io/v1alpha1", "Rollout").unwrap();
        assert!(matches!(rollout, TargetKind::Custom(k) if k.plural == "rollouts"));
        assert_eq!(rollout.api_version(), "argoproj.io/v1alpha1");
        assert!(rollout.is_workload() && !rollout.is_cluster_scoped());
        assert_eq!(report_name(rollout, "web"), "rollout-web");
        assert_eq!(
            TargetKind::from_target("apps/v1", "Deployment"),
            Some(TargetKind::Deployment)
        );
        assert_eq!(TargetKind::from_target("example.com/v1", "Gadget"), None);
    }
}
