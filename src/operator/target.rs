//! What gets a report: the kinds, their identity, and the report's name.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

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
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
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

/// `<kind>-<name>` in lower case. Characters a DNS subdomain does not allow
/// (RBAC names such as `system:node` have colons) become `-`, and a hash of
/// the original name is appended so that two names never share a report;
/// names too long for a DNS subdomain are cut and get the same hash suffix.
pub fn report_name(kind: TargetKind, name: &str) -> String {
    let full = format!("{}-{}", kind.as_str().to_ascii_lowercase(), name);
    let sanitized: String = full
        .to_ascii_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    if sanitized == full && full.len() <= MAX_NAME_LEN {
        return full;
    }
    let hash = Sha256::digest(full.as_bytes());
    let suffix: String = hash[..5].iter().map(|b| format!("{b:02x}")).collect();
    // The sanitized name is ASCII, so byte slicing is safe; a head that ends
    // on `.` or `-` would make `.-`, which a DNS subdomain forbids.
    let keep = sanitized.len().min(MAX_NAME_LEN - suffix.len() - 1);
    let head = sanitized[..keep].trim_end_matches(['.', '-']);
    format!("{head}-{suffix}")
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
pub fn is_top_level(kind: TargetKind, meta: &ObjectMeta) -> bool {
    let Some(owner) = controller_of(meta) else {
        return true;
    };
    let managed_by = |api_group: &str, kinds: &[&str]| {
        owner.api_version.split('/').next() == Some(api_group)
            && kinds.contains(&owner.kind.as_str())
    };
    match kind {
        TargetKind::ReplicaSet => !managed_by("apps", &["Deployment"]),
        TargetKind::Job => !managed_by("batch", &["CronJob"]),
        TargetKind::Pod => {
            !(managed_by("apps", &["ReplicaSet", "StatefulSet", "DaemonSet"])
                || managed_by("batch", &["Job"])
                || (owner.api_version == "v1" && owner.kind == "ReplicationController"))
        }
        _ => true,
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
        // A controller Palisade does not watch: the pod is the top we know.
        assert!(is_top_level(
            TargetKind::Pod,
            &owned_by("example.com/v1", "Widget", true)
        ));
        assert!(is_top_level(
            TargetKind::ReplicaSet,
            &owned_by("argoproj.io/v1alpha1", "Rollout", true)
        ));
    }
}
