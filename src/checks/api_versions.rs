//! API versions that Kubernetes deprecated or stopped serving.
//!
//! Palisade reads an object of a scanned kind written with an old
//! `apiVersion` in its current shape and runs every other check on it, and
//! keeps objects of other kinds written with one (see
//! [`crate::model::RETIRED_APIS`]); these checks say whether the target
//! cluster (`palisade scan --kubernetes-version`, the newest release by
//! default) still accepts that version.

use crate::engine::{Applies, Category, Check, Context, Scope, Severity, Subject, Violations};
use crate::model::{FieldPath, KubernetesVersion, RetiredApi, retired_api};

pub static CHECKS: &[&Check] = &[&REMOVED_API_VERSION, &DEPRECATED_API_VERSION];

/// The newest Kubernetes release Palisade knows; the default target.
pub const NEWEST: KubernetesVersion = KubernetesVersion::new(1, 35);

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
                  never reach the cluster. An object of a kind Palisade scans is still read \
                  in its current shape and gets every other check; objects of other kinds \
                  (Ingress, PodSecurityPolicy, CustomResourceDefinition, …) are reported \
                  by this check alone. The table of retired versions comes from the \
                  Kubernetes API's own lifecycle data.",
    remediation: "Change `apiVersion` to the replacement named in the finding and adjust the \
                  fields that changed (for workloads before `apps/v1`, add `spec.selector`), \
                  e.g. with `kubectl convert`.",
    frameworks: &[],
    aliases: &[],
    scope: Scope::Inventory,
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
    scope: Scope::Inventory,
    run: deprecated_api_version,
};

/// The retired API an object is written with, and the target release.
fn retired_of(
    subject: &Subject<'_>,
    cx: &Context<'_>,
) -> Option<(&'static RetiredApi, KubernetesVersion)> {
    let retired = match subject {
        Subject::Retired(object) => object.api,
        _ => {
            let object = subject.object_ref();
            let written = cx.inventory.written_api_versions.get(&object)?;
            retired_api(written, &object.kind)?
        }
    };
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
    use crate::model::RETIRED_APIS;
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
