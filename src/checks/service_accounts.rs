//! Service accounts and their tokens, as pods use them.

use crate::model::AccountRef;

use crate::engine::{
    Applies, Category, Check, Context, Scope, Severity, Subject, Tool, Violations, alias,
};
use crate::model::{FieldPath, Workload};

pub static CHECKS: &[&Check] = &[
    &SERVICE_ACCOUNT_TOKEN_AUTOMOUNT,
    &DEFAULT_SERVICE_ACCOUNT,
    &DEPRECATED_SERVICE_ACCOUNT_FIELD,
    &DEFAULT_SERVICE_ACCOUNT_AUTOMOUNT,
];

/// A mounted token is an API credential waiting for whoever compromises the pod.
///
/// Kubernetes mounts the token unless the pod sets
/// `automountServiceAccountToken: false`, or the pod leaves it unset and its
/// ServiceAccount sets it to false. The ServiceAccount is looked up among the
/// objects evaluated together with the pod; a pod whose ServiceAccount is not
/// among them is judged by its own field only.
pub static SERVICE_ACCOUNT_TOKEN_AUTOMOUNT: Check = Check {
    id: "service-account-token-automount",
    title: "Service account token mounted automatically",
    category: Category::ServiceAccounts,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "Every container of the pod can read a token for the Kubernetes API. Most \
                  applications never call the API; for them the token only helps an attacker \
                  who gets code execution to explore and attack the cluster with the \
                  account's permissions.",
    remediation: "Set `automountServiceAccountToken: false` in the pod spec (or on its \
                  ServiceAccount); pods that need the API can mount a short-lived projected \
                  token explicitly.",
    frameworks: &["cis-k8s:5.1.6", "nsa-cisa", "mitre:T1528"],
    aliases: &[
        alias(Tool::Trivy, "KSV036"),
        alias(Tool::Kubescape, "C-0034"),
        alias(Tool::Polaris, "automountServiceAccountToken"),
        alias(Tool::Checkov, "CKV_K8S_38"),
        alias(Tool::KubeLinter, "automount-service-account-token"),
    ],
    scope: Scope::Inventory,
    run: service_account_token_automount,
};

/// Pods sharing the namespace's `default` account share its permissions.
pub static DEFAULT_SERVICE_ACCOUNT: Check = Check {
    id: "default-service-account",
    title: "Pod uses the default service account",
    category: Category::ServiceAccounts,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "Every pod that names no service account runs as the namespace's `default` \
                  account, so any permission granted to it for one workload is granted to all \
                  of them, and their API requests cannot be told apart in audit logs.",
    remediation: "Create a ServiceAccount for the workload and set \
                  `serviceAccountName`; grant it only what the workload needs.",
    frameworks: &["cis-k8s:5.1.5"],
    aliases: &[alias(Tool::KubeLinter, "default-service-account")],
    scope: Scope::Object,
    run: default_service_account,
};

/// `serviceAccount` is the deprecated alias of `serviceAccountName`.
///
/// The API server writes `serviceAccount` back equal to `serviceAccountName`
/// on every pod it returns, so only a manifest where the deprecated field is
/// set on its own, or disagrees with `serviceAccountName`, is flagged: objects
/// read back from a cluster stay quiet.
pub static DEPRECATED_SERVICE_ACCOUNT_FIELD: Check = Check {
    id: "deprecated-service-account-field",
    title: "Deprecated `serviceAccount` field used",
    category: Category::ServiceAccounts,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "`spec.serviceAccount` is a deprecated alias of `serviceAccountName`. When \
                  both are set, `serviceAccountName` wins, so a manifest that sets only the \
                  old field, or sets them differently, may not run as the account its author \
                  reviewed.",
    remediation: "Replace `serviceAccount` with `serviceAccountName`.",
    frameworks: &[],
    aliases: &[alias(Tool::KubeLinter, "deprecated-service-account-field")],
    scope: Scope::Object,
    run: deprecated_service_account_field,
};

/// CIS 5.1.5: the `default` ServiceAccount of every namespace should not
/// have its token mounted, so that pods which name no account get no API
/// credential by accident.
///
/// Kubernetes mounts the token of a pod's account unless the pod or the
/// ServiceAccount sets `automountServiceAccountToken: false`
/// (`plugin/pkg/admission/serviceaccount/admission.go`,
/// `shouldAutomount`); unset counts as true.
pub static DEFAULT_SERVICE_ACCOUNT_AUTOMOUNT: Check = Check {
    id: "default-service-account-automount",
    title: "Default service account mounts its token",
    category: Category::ServiceAccounts,
    severity: Severity::Medium,
    applies: Applies::ServiceAccount,
    description: "Every pod that names no service account runs as its namespace's `default` \
                  account. Unless that account sets `automountServiceAccountToken: false`, \
                  each such pod gets an API token it most likely never uses, and whatever is \
                  ever granted to `default` is granted to all of them.",
    remediation: "Set `automountServiceAccountToken: false` on the `default` ServiceAccount \
                  of the namespace; give workloads that need the API an account of their \
                  own.",
    frameworks: &["cis-k8s:5.1.5", "nsa-cisa", "mitre:T1528"],
    aliases: &[
        alias(Tool::Kubescape, "C-0189"),
        alias(Tool::Checkov, "CKV_K8S_41"),
    ],
    scope: Scope::Object,
    run: default_service_account_automount,
};

fn default_service_account_automount(
    subject: &Subject<'_>,
    _cx: &Context<'_>,
    out: &mut Violations,
) {
    let Subject::ServiceAccount(account) = subject else {
        return;
    };
    if account.metadata.name.as_deref() != Some("default") {
        return;
    }
    let message = match account.automount_service_account_token {
        Some(false) => return,
        Some(true) => {
            "the `default` service account sets automountServiceAccountToken: true: \
                       pods that name no account get its token"
        }
        None => {
            "the `default` service account does not set automountServiceAccountToken: \
                 false: pods that name no account get its token"
        }
    };
    out.object(FieldPath::new("automountServiceAccountToken"), message);
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

/// The account the pod runs as: `serviceAccountName`, else the deprecated
/// `serviceAccount`, else `default` (what the API server fills in).
fn service_account_name(workload: &Workload) -> &str {
    non_empty(&workload.spec.service_account_name)
        .or_else(|| non_empty(&workload.spec.service_account))
        .unwrap_or("default")
}

/// The ServiceAccount object named `name` in the workload's namespace, when
/// it is part of the evaluation (objects without namespace match each other).
fn find_service_account<'a>(
    cx: &Context<'a>,
    workload: &Workload,
    name: &str,
) -> Option<AccountRef<'a>> {
    let namespace = workload.namespace().unwrap_or("");
    cx.index().service_account(namespace, name)
}

fn service_account_token_automount(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    let path = workload.spec_path.field("automountServiceAccountToken");
    let account = service_account_name(workload);
    match workload.spec.automount_service_account_token {
        Some(false) => {}
        Some(true) => {
            let message = format!(
                "pod sets automountServiceAccountToken: true: the token of service account \
                 `{account}` is mounted"
            );
            out.object(path, message);
        }
        None => {
            let object = find_service_account(cx, workload, account);
            if object.and_then(|sa| sa.automount_token()) == Some(false) {
                return;
            }
            let message = format!(
                "the token of service account `{account}` is mounted: neither the pod nor \
                 the ServiceAccount sets automountServiceAccountToken: false"
            );
            out.object(path, message);
        }
    }
}

fn default_service_account(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    if service_account_name(workload) != "default" {
        return;
    }
    let path = workload.spec_path.field("serviceAccountName");
    let message = match non_empty(&workload.spec.service_account_name) {
        Some(_) => "pod runs as service account `default`",
        None => "pod sets no serviceAccountName and runs as service account `default`",
    };
    out.object(path, message);
}

fn deprecated_service_account_field(
    subject: &Subject<'_>,
    _cx: &Context<'_>,
    out: &mut Violations,
) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    let Some(deprecated) = non_empty(&workload.spec.service_account) else {
        return;
    };
    let path = workload.spec_path.field("serviceAccount");
    match non_empty(&workload.spec.service_account_name) {
        Some(name) if name == deprecated => {}
        Some(name) => {
            let message = format!(
                "pod sets deprecated serviceAccount `{deprecated}`, which is ignored in favour \
                 of serviceAccountName `{name}`"
            );
            out.object(path, message);
        }
        None => {
            let message = format!(
                "pod sets deprecated serviceAccount `{deprecated}` instead of serviceAccountName"
            );
            out.object(path, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{findings, paths};

    fn pod(spec: &str) -> String {
        format!(
            r#"
apiVersion: v1
kind: Pod
metadata: {{name: p, namespace: shop}}
spec:
{spec}
  containers: [{{name: app, image: "nginx:1.27"}}]
"#
        )
    }

    const ACCOUNT_NO_AUTOMOUNT: &str = r#"
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: api, namespace: shop}
automountServiceAccountToken: false
"#;

    #[test]
    fn token_automount_flags_pods_that_mount_the_token() {
        let unset = pod("  serviceAccountName: api");
        assert_eq!(
            paths(&unset, "service-account-token-automount"),
            ["spec.automountServiceAccountToken"]
        );
        // The pod's own `true` overrides the ServiceAccount's `false`.
        let forced = pod("  serviceAccountName: api\n  automountServiceAccountToken: true")
            + ACCOUNT_NO_AUTOMOUNT;
        let found = findings(&forced, "service-account-token-automount");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "spec.automountServiceAccountToken");
        assert_eq!(
            found[0].message,
            "pod sets automountServiceAccountToken: true: the token of service account `api` \
             is mounted"
        );
    }

    #[test]
    fn token_automount_passes_when_pod_or_account_disables_it() {
        let pod_off = pod("  automountServiceAccountToken: false");
        assert!(paths(&pod_off, "service-account-token-automount").is_empty());
        let account_off = pod("  serviceAccountName: api") + ACCOUNT_NO_AUTOMOUNT;
        assert!(paths(&account_off, "service-account-token-automount").is_empty());
    }

    #[test]
    fn token_automount_looks_the_account_up_in_the_pods_namespace() {
        let other_namespace = pod("  serviceAccountName: api")
            + &ACCOUNT_NO_AUTOMOUNT.replace("namespace: shop", "namespace: other");
        assert_eq!(
            paths(&other_namespace, "service-account-token-automount"),
            ["spec.automountServiceAccountToken"]
        );
    }

    #[test]
    fn default_service_account_flags_unset_and_default() {
        assert_eq!(
            paths(&pod("  hostname: p"), "default-service-account"),
            ["spec.serviceAccountName"]
        );
        assert_eq!(
            paths(
                &pod("  serviceAccountName: default"),
                "default-service-account"
            ),
            ["spec.serviceAccountName"]
        );
    }

    #[test]
    fn default_service_account_passes_a_dedicated_account() {
        assert!(paths(&pod("  serviceAccountName: api"), "default-service-account").is_empty());
        // The deprecated field still names the account the pod runs as.
        assert!(paths(&pod("  serviceAccount: api"), "default-service-account").is_empty());
    }

    fn account(name: &str, extra: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: {name}, namespace: shop}}\n{extra}"
        )
    }

    #[test]
    fn default_service_account_automount_flags_unset_and_true() {
        let unset = findings(&account("default", ""), "default-service-account-automount");
        assert_eq!(unset.len(), 1);
        assert_eq!(unset[0].path, "automountServiceAccountToken");
        assert_eq!(
            unset[0].message,
            "the `default` service account does not set automountServiceAccountToken: false: \
             pods that name no account get its token"
        );
        let on = account("default", "automountServiceAccountToken: true\n");
        assert_eq!(
            paths(&on, "default-service-account-automount"),
            ["automountServiceAccountToken"]
        );
    }

    #[test]
    fn default_service_account_automount_passes_false_and_other_accounts() {
        let off = account("default", "automountServiceAccountToken: false\n");
        assert!(paths(&off, "default-service-account-automount").is_empty());
        assert!(paths(&account("api", ""), "default-service-account-automount").is_empty());
    }

    #[test]
    fn deprecated_service_account_field_flags_the_old_field() {
        assert_eq!(
            paths(
                &pod("  serviceAccount: api"),
                "deprecated-service-account-field"
            ),
            ["spec.serviceAccount"]
        );
        let conflicting = pod("  serviceAccount: old\n  serviceAccountName: api");
        let found = findings(&conflicting, "deprecated-service-account-field");
        assert_eq!(
            found[0].message,
            "pod sets deprecated serviceAccount `old`, which is ignored in favour of \
             serviceAccountName `api`"
        );
    }

    #[test]
    fn deprecated_service_account_field_passes_objects_read_from_a_cluster() {
        // The API server returns both fields set to the same account.
        let echoed = pod("  serviceAccount: api\n  serviceAccountName: api");
        assert!(paths(&echoed, "deprecated-service-account-field").is_empty());
        let modern = pod("  serviceAccountName: api");
        assert!(paths(&modern, "deprecated-service-account-field").is_empty());
    }
}
