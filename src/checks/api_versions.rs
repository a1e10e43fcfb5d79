//! API versions that Kubernetes deprecated or stopped serving.
//!
//! Palisade reads an object written with an old `apiVersion` in its current
//! shape and runs every other check on it; these checks say whether the
//! target cluster (`palisade scan --kubernetes-version`, the newest release
//! by default) still accepts that version.

use crate::engine::{Applies, Category, Check, Context, Severity, Subject, Violations};
use crate::model::{FieldPath, KubernetesVersion};

pub static CHECKS: &[&Check] = &[&REMOVED_API_VERSION, &DEPRECATED_API_VERSION];

/// The newest Kubernetes release Palisade knows; the default target.
pub const NEWEST: KubernetesVersion = KubernetesVersion::new(1, 35);

/// One group/version of one kind that Kubernetes retired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetiredApi {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// The release that deprecated it; `None` for alpha versions that were
    /// never deprecated before their removal.
    pub deprecated: Option<KubernetesVersion>,
    /// The first release that no longer serves it.
    pub removed: KubernetesVersion,
    /// The `apiVersion` to use instead.
    pub replacement: &'static str,
}

const fn retired(
    api_version: &'static str,
    kind: &'static str,
    deprecated: Option<(u32, u32)>,
    removed: (u32, u32),
    replacement: &'static str,
) -> RetiredApi {
    RetiredApi {
        api_version,
        kind,
        deprecated: match deprecated {
            Some((major, minor)) => Some(KubernetesVersion::new(major, minor)),
            None => None,
        },
        removed: KubernetesVersion::new(removed.0, removed.1),
        replacement,
    }
}

/// Every retired version of a kind Palisade scans. The releases are the
/// `APILifecycleDeprecated` and `APILifecycleRemoved` values generated from
/// the `+k8s:prerelease-lifecycle-gen` markers in `k8s.io/api`
/// (`<group>/<version>/zz_generated.prerelease-lifecycle.go`, v0.35), which
/// the deprecation guide
/// (<https://kubernetes.io/docs/reference/using-api/deprecation-guide/>)
/// summarises. Versions deleted from `k8s.io/api` before those markers
/// existed cite their release notes.
pub static RETIRED_APIS: &[RetiredApi] = &[
    // k8s.io/api extensions/v1beta1
    retired(
        "extensions/v1beta1",
        "DaemonSet",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "extensions/v1beta1",
        "Deployment",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "extensions/v1beta1",
        "ReplicaSet",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "extensions/v1beta1",
        "NetworkPolicy",
        Some((1, 9)),
        (1, 16),
        "networking.k8s.io/v1",
    ),
    // k8s.io/api apps/v1beta1
    retired(
        "apps/v1beta1",
        "Deployment",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta1",
        "StatefulSet",
        Some((1, 8)),
        (1, 16),
        "apps/v1",
    ),
    // k8s.io/api apps/v1beta2
    retired(
        "apps/v1beta2",
        "DaemonSet",
        Some((1, 9)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta2",
        "Deployment",
        Some((1, 9)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta2",
        "ReplicaSet",
        Some((1, 9)),
        (1, 16),
        "apps/v1",
    ),
    retired(
        "apps/v1beta2",
        "StatefulSet",
        Some((1, 9)),
        (1, 16),
        "apps/v1",
    ),
    // batch/v2alpha1 was deleted in v1.21 (CHANGELOG-1.21, kubernetes#96987);
    // as an alpha version it was never deprecated first.
    retired("batch/v2alpha1", "CronJob", None, (1, 21), "batch/v1"),
    // k8s.io/api batch/v1beta1
    retired(
        "batch/v1beta1",
        "CronJob",
        Some((1, 21)),
        (1, 25),
        "batch/v1",
    ),
    // k8s.io/api rbac/v1beta1; rbac/v1alpha1 was deprecated and removed with
    // it (CHANGELOG-1.17: "rbac.authorization.k8s.io/v1alpha1 and v1beta1
    // are deprecated in favor of v1"; removed in v1.22).
    retired(
        "rbac.authorization.k8s.io/v1beta1",
        "ClusterRole",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1beta1",
        "ClusterRoleBinding",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1beta1",
        "Role",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1beta1",
        "RoleBinding",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1alpha1",
        "ClusterRole",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1alpha1",
        "ClusterRoleBinding",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1alpha1",
        "Role",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
    retired(
        "rbac.authorization.k8s.io/v1alpha1",
        "RoleBinding",
        Some((1, 17)),
        (1, 22),
        "rbac.authorization.k8s.io/v1",
    ),
];

/// The entry of a written `apiVersion` and kind, if Kubernetes retired it.
pub fn retired_api(api_version: &str, kind: &str) -> Option<&'static RetiredApi> {
    RETIRED_APIS
        .iter()
        .find(|r| r.api_version == api_version && r.kind == kind)
}

/// An object the target release no longer serves cannot be applied at all.
pub static REMOVED_API_VERSION: Check = Check {
    id: "removed-api-version",
    title: "API version removed from Kubernetes",
    category: Category::ApiVersions,
    severity: Severity::High,
    applies: Applies::Any,
    description: "The object is written with an `apiVersion` that the target Kubernetes \
                  release (`--kubernetes-version`, the newest by default) no longer serves: \
                  applying it fails, and the security settings the rest of the scan judged \
                  never reach the cluster. Palisade still reads the object in its current \
                  shape and runs every other check on it.",
    remediation: "Change `apiVersion` to the replacement named in the finding and adjust the \
                  fields that changed (for workloads before `apps/v1`, add `spec.selector`), \
                  e.g. with `kubectl convert`.",
    frameworks: &[],
    aliases: &[],
    run: removed_api_version,
};

/// A deprecated version still works, until the release that removes it.
pub static DEPRECATED_API_VERSION: Check = Check {
    id: "deprecated-api-version",
    title: "API version deprecated in Kubernetes",
    category: Category::ApiVersions,
    severity: Severity::Low,
    applies: Applies::Any,
    description: "The object is written with an `apiVersion` that the target Kubernetes \
                  release (`--kubernetes-version`, the newest by default) still serves but \
                  has deprecated: a later upgrade will stop accepting it.",
    remediation: "Change `apiVersion` to the replacement named in the finding before \
                  upgrading to the release that removes it.",
    frameworks: &[],
    aliases: &[],
    run: deprecated_api_version,
};

/// The retired API an object is written with, and the target release.
fn retired_of(
    subject: &Subject<'_>,
    cx: &Context<'_>,
) -> Option<(&'static RetiredApi, KubernetesVersion)> {
    let object = subject.object_ref();
    let written = cx.inventory.written_api_versions.get(&object)?;
    let retired = retired_api(written, &object.kind)?;
    Some((retired, cx.inventory.kubernetes_version.unwrap_or(NEWEST)))
}

fn api_version_path() -> FieldPath {
    FieldPath::default().field("apiVersion")
}

fn removed_api_version(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Some((retired, target)) = retired_of(subject, cx) else {
        return;
    };
    if target >= retired.removed {
        out.object(
            api_version_path(),
            format!(
                "{} {} is not served since Kubernetes {} (target {target}); use {}",
                retired.api_version, retired.kind, retired.removed, retired.replacement
            ),
        );
    }
}

fn deprecated_api_version(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Some((retired, target)) = retired_of(subject, cx) else {
        return;
    };
    let Some(deprecated) = retired.deprecated else {
        return;
    };
    if target >= deprecated && target < retired.removed {
        out.object(
            api_version_path(),
            format!(
                "{} {} is deprecated since Kubernetes {deprecated} and removed in {} (target {target}); use {}",
                retired.api_version, retired.kind, retired.removed, retired.replacement
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::evaluate;
    use crate::loader::Loader;
    use crate::model::Inventory;
    use crate::policy::Policy;

    const OLD_DEPLOYMENT: &str = "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: a, image: nginx}]}\n";

    fn findings(text: &str, target: Option<KubernetesVersion>) -> Vec<(String, String)> {
        let loaded = Loader::new().load_text("in.yaml", text);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let mut inventory = Inventory {
            kubernetes_version: target,
            ..Inventory::default()
        };
        for object in loaded.objects {
            let reference = object.resource.object_ref();
            if object.api_version != reference.api_version {
                inventory
                    .written_api_versions
                    .insert(reference, object.api_version);
            }
            inventory.insert(object.resource);
        }
        evaluate(&inventory, CHECKS, &Policy::default())
            .into_iter()
            .map(|f| (f.check.id.to_owned(), f.message))
            .collect()
    }

    #[test]
    fn removed_versions_fail_on_releases_that_removed_them() {
        let found = findings(OLD_DEPLOYMENT, None);
        assert_eq!(
            found,
            [(
                "removed-api-version".to_owned(),
                "extensions/v1beta1 Deployment is not served since Kubernetes 1.16 (target 1.35); use apps/v1".to_owned()
            )]
        );
        let found = findings(OLD_DEPLOYMENT, Some(KubernetesVersion::new(1, 15)));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "deprecated-api-version");
        assert!(findings(OLD_DEPLOYMENT, Some(KubernetesVersion::new(1, 7))).is_empty());
    }

    #[test]
    fn current_versions_pass() {
        let current = OLD_DEPLOYMENT
            .replace("extensions/v1beta1", "apps/v1")
            .replace(
                "spec:\n  template",
                "spec:\n  selector: {matchLabels: {app: web}}\n  template",
            );
        assert!(findings(&current, None).is_empty());
    }

    #[test]
    fn rbac_and_cron_jobs() {
        let text = "apiVersion: rbac.authorization.k8s.io/v1beta1\nkind: ClusterRole\nmetadata: {name: r}\nrules: []\n---\napiVersion: batch/v1beta1\nkind: CronJob\nmetadata: {name: c}\nspec:\n  schedule: '* * * * *'\n  jobTemplate: {spec: {template: {spec: {containers: [{name: a}]}}}}\n";
        let at_1_21 = findings(text, Some(KubernetesVersion::new(1, 21)));
        let ids: Vec<&str> = at_1_21.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["deprecated-api-version", "deprecated-api-version"]);
        let newest = findings(text, None);
        assert!(newest.iter().all(|(id, _)| id == "removed-api-version"));
        assert_eq!(newest.len(), 2);
    }

    #[test]
    fn the_table_is_consistent() {
        for retired in RETIRED_APIS {
            assert!(
                retired.deprecated.is_none_or(|d| d < retired.removed),
                "{retired:?}"
            );
            assert!(retired.removed <= NEWEST, "{retired:?}");
            assert!(
                crate::model::Resource::decode(retired.api_version, retired.kind, serde_json::json!({
                    "metadata": {"name": "x"},
                    "spec": {"template": {"spec": {"containers": []}}, "jobTemplate": {"spec": {"template": {}}}, "schedule": "x"},
                    "roleRef": {"apiGroup": "", "kind": "Role", "name": "x"}
                }))
                .is_ok_and(|r| r.is_some()),
                "{retired:?} is a scanned kind that decodes"
            );
        }
    }
}
