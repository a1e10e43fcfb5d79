//! Namespaces as security boundaries: where workloads run, whether the
//! network isolates them, and whether Pod Security Admission guards them.
//!
//! Several checks here look beyond their subject, at the other objects of the
//! same evaluation (NetworkPolicies, the workloads of a namespace). Objects
//! without `metadata.namespace` are treated as one namespace, `""`: a chart
//! rendered without `--namespace` keeps its policies and pods together.
//!
//! Network isolation counts Kubernetes NetworkPolicies and the policies of
//! the two CNI plugins that have their own API: Cilium
//! (`CiliumNetworkPolicy`, `CiliumClusterwideNetworkPolicy`) and Calico
//! (`NetworkPolicy` and `GlobalNetworkPolicy` of `projectcalico.org`); see
//! `model::CiliumPolicy` and `model::CalicoPolicy` for their semantics.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;

use crate::engine::{
    Applies, Category, Check, Context, Scope, Severity, Subject, Tool, Violations, alias,
};
use crate::model::{Directions, Endpoint, FieldPath, Inventory, Workload};

pub static CHECKS: &[&Check] = &[
    &DEFAULT_NAMESPACE,
    &BARE_POD,
    &MISSING_NETWORK_POLICY,
    &NAMESPACE_MISSING_POD_SECURITY,
    &NAMESPACE_WITHOUT_NETWORK_POLICY,
];

/// The Pod Security Admission label that turns enforcement on.
pub const PSA_ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";

/// Workloads in `default` share it with everything deployed carelessly.
///
/// Only an explicit `metadata.namespace: default` is flagged: a manifest
/// without a namespace (a Helm chart, a kustomize base) gets one at install.
pub static DEFAULT_NAMESPACE: Check = Check {
    id: "default-namespace",
    title: "Workload in the default namespace",
    category: Category::Namespaces,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "The `default` namespace is where everything lands by accident: RBAC \
                  grants, network policies and quotas written for it apply to unrelated \
                  workloads, and it is rarely given Pod Security enforcement.",
    remediation: "Deploy the workload into a namespace of its own (or of its team) and set \
                  `metadata.namespace` accordingly.",
    frameworks: &["cis-k8s:5.7.4"],
    aliases: &[
        alias(Tool::Trivy, "KSV110"),
        alias(Tool::Kubescape, "C-0061"),
        alias(Tool::Checkov, "CKV_K8S_21"),
        alias(Tool::KubeLinter, "use-namespace"),
    ],
    scope: Scope::Object,
    run: default_namespace,
};

/// A Pod without a controller is not recreated when it dies or its node drains.
pub static BARE_POD: Check = Check {
    id: "bare-pod",
    title: "Pod without a controller",
    category: Category::Namespaces,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "A Pod created directly, without a Deployment, StatefulSet, DaemonSet or Job \
                  owning it, is not rescheduled when its node fails or is drained and is not \
                  replaced by a rollout, so fixes to its spec never reach it.",
    remediation: "Run the pod from a controller: a Deployment for services, a Job for \
                  one-off tasks.",
    frameworks: &[],
    aliases: &[alias(Tool::Kubescape, "C-0073")],
    scope: Scope::Object,
    run: bare_pod,
};

/// Pods not selected by any NetworkPolicy accept traffic from every pod in
/// the cluster and may connect anywhere.
///
/// A pod is isolated for a direction (ingress or egress) once any
/// NetworkPolicy of its namespace selects it with that direction among its
/// policy types (as Kubernetes defaults them: `Ingress` always, `Egress` when
/// the policy has egress rules). A policy with a direction and no rules for
/// it denies that direction entirely, which counts as isolated. Pods on the
/// host network are skipped: NetworkPolicy does not apply to them.
///
/// Cilium and Calico policies isolate pods too: a CiliumNetworkPolicy rule
/// whose `endpointSelector` selects the pod isolates each direction it has a
/// section for (allow or deny), unless `enableDefaultDeny` turns that off; a
/// CiliumClusterwideNetworkPolicy does the same for pods of any namespace
/// its selector matches (`k8s:io.kubernetes.pod.namespace` is the pod's
/// namespace, `io.cilium.k8s.namespace.labels.<key>` its Namespace's
/// labels). A Calico NetworkPolicy or GlobalNetworkPolicy whose `selector`
/// (and `namespaceSelector`, `serviceAccountSelector`) matches the pod
/// isolates the directions of its `types`, defaulted as Calico does.
/// Namespace labels come from the Namespace object when it is scanned; the
/// `kubernetes.io/metadata.name` label the API server gives every Namespace
/// is always there.
pub static MISSING_NETWORK_POLICY: Check = Check {
    id: "missing-network-policy",
    title: "Pod not isolated by a NetworkPolicy",
    category: Category::Namespaces,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "Kubernetes lets every pod talk to every other pod until a NetworkPolicy \
                  selects it. A compromised pod that no policy isolates can reach databases, \
                  internal APIs and the cloud metadata service of the whole cluster. Pods \
                  isolated for only one direction are reported at low severity.",
    remediation: "Add a NetworkPolicy in the namespace whose `podSelector` matches the pod \
                  labels, with both `Ingress` and `Egress` policy types (a default-deny policy \
                  with an empty podSelector, plus policies allowing the traffic needed). \
                  Cilium and Calico policies that select the pod count as well.",
    frameworks: &["nsa-cisa", "mitre:T1210"],
    aliases: &[
        alias(Tool::Kubescape, "C-0030"),
        alias(Tool::Kubescape, "C-0260"),
        alias(Tool::Polaris, "missingNetworkPolicy"),
        alias(Tool::KubeScore, "pod-networkpolicy"),
        alias(Tool::KubeLinter, "non-isolated-pod"),
    ],
    scope: Scope::Inventory,
    run: missing_network_policy,
};

/// Without an `enforce` label, the namespace admits privileged pods.
pub static NAMESPACE_MISSING_POD_SECURITY: Check = Check {
    id: "namespace-missing-pod-security",
    title: "Namespace without Pod Security Admission enforcement",
    category: Category::Namespaces,
    severity: Severity::Medium,
    applies: Applies::Namespace,
    description: "Pod Security Admission enforces the Pod Security Standards only in \
                  namespaces labelled `pod-security.kubernetes.io/enforce` (unless the \
                  cluster sets a default). Without the label, anyone who can create a pod \
                  there can create a privileged one. Kubernetes' own namespaces (`kube-system`, \
                  `kube-public`, `kube-node-lease`) are reported as suppressed.",
    remediation: "Label the namespace `pod-security.kubernetes.io/enforce=restricted` (or \
                  `baseline`); try it first with the `warn` and `audit` labels, and state \
                  `privileged` explicitly where it is truly needed.",
    frameworks: &["cis-k8s:5.2.1", "nsa-cisa"],
    aliases: &[],
    scope: Scope::Object,
    run: namespace_missing_pod_security,
};

/// CIS 5.3.2: every namespace should have a network policy, whether or not
/// its workloads are part of the scan.
///
/// A namespace counts as covered when it holds a NetworkPolicy, a
/// CiliumNetworkPolicy or a Calico NetworkPolicy, or when a
/// CiliumClusterwideNetworkPolicy or Calico GlobalNetworkPolicy selects its
/// pods by namespace alone (its selector matches whatever the pod's own
/// labels are). Kubernetes' own namespaces are reported as suppressed.
pub static NAMESPACE_WITHOUT_NETWORK_POLICY: Check = Check {
    id: "namespace-without-network-policy",
    title: "Namespace without any NetworkPolicy",
    category: Category::Namespaces,
    severity: Severity::Medium,
    applies: Applies::Namespace,
    description: "A namespace with no NetworkPolicy lets every pod that runs in it, now or \
                  later, accept connections from anywhere in the cluster and connect \
                  anywhere. The workloads of the namespace that are part of the evaluation \
                  are counted in the message. Cilium and Calico policies count as network \
                  policies. Kubernetes' own namespaces (`kube-system`, `kube-public`, \
                  `kube-node-lease`) are reported as suppressed.",
    remediation: "Add a default-deny NetworkPolicy to the namespace (empty `podSelector`, \
                  `policyTypes: [Ingress, Egress]`) and policies that allow the traffic its \
                  workloads need.",
    frameworks: &["cis-k8s:5.3.2", "nsa-cisa", "mitre:T1210"],
    aliases: &[alias(Tool::Kubescape, "C-0054")],
    scope: Scope::Inventory,
    run: namespace_without_network_policy,
};

fn default_namespace(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    if workload.namespace() == Some("default") {
        let message = format!(
            "{} `{}` is in namespace `default`",
            workload.object.kind, workload.object.name
        );
        out.object(FieldPath::new("metadata").field("namespace"), message);
    }
}

fn bare_pod(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    if workload.object.kind == "Pod" && !workload.has_controller() {
        let message = format!(
            "Pod `{}` has no controller: it is not recreated if it fails or its node drains",
            workload.object.name
        );
        out.object(FieldPath::new("kind"), message);
    }
}

fn describe_labels(workload: &Workload) -> String {
    let labels: Vec<String> = workload
        .template_metadata
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if labels.is_empty() {
        "no labels".to_owned()
    } else {
        format!("labels {}", labels.join(","))
    }
}

/// One policy that selects a pod: what it is called in messages and the
/// directions it isolates.
struct Isolating {
    name: String,
    ingress: bool,
    egress: bool,
}

/// The account the pod runs as (`serviceAccountName`, else the deprecated
/// `serviceAccount`, else `default`).
fn service_account_of(workload: &Workload) -> &str {
    [
        &workload.spec.service_account_name,
        &workload.spec.service_account,
    ]
    .into_iter()
    .find_map(|name| name.as_deref().filter(|n| !n.is_empty()))
    .unwrap_or("default")
}

/// Labels of the object named `name` in `namespace` among the inventory's
/// ServiceAccounts.
fn service_account_labels<'a>(
    cx: &Context<'a>,
    namespace: &str,
    name: &str,
) -> Option<Cow<'a, BTreeMap<String, String>>> {
    cx.index().service_account(namespace, name)?.labels()
}

fn namespace_labels<'a>(
    inventory: &'a Inventory,
    namespace: &str,
) -> Option<&'a BTreeMap<String, String>> {
    inventory
        .namespaces
        .get(namespace)?
        .metadata
        .labels
        .as_ref()
}

/// Every policy of any kind that selects the endpoint, with what it isolates.
fn isolating_policies(cx: &Context<'_>, endpoint: &Endpoint<'_>) -> Vec<Isolating> {
    let inventory = cx.inventory;
    let named =
        |kind: &str, name: &Option<String>| format!("{kind} `{}`", name.as_deref().unwrap_or(""));
    let mut found = Vec::new();
    for policy in cx.index().network_policies_in(endpoint.namespace) {
        if policy.selects(endpoint.labels) {
            let Directions { ingress, egress } = policy.directions();
            found.push(Isolating {
                name: format!("NetworkPolicy `{}`", policy.name()),
                ingress,
                egress,
            });
        }
    }
    for policy in &inventory.cilium_policies {
        if let Some((ingress, egress)) = policy.isolation(endpoint) {
            let kind = if policy.cluster_wide {
                "CiliumClusterwideNetworkPolicy"
            } else {
                "CiliumNetworkPolicy"
            };
            let name = named(kind, &policy.metadata.name);
            found.push(Isolating {
                name,
                ingress,
                egress,
            });
        }
    }
    for policy in &inventory.calico_policies {
        if let Some((ingress, egress)) = policy.isolation(endpoint) {
            let kind = if policy.global {
                "Calico GlobalNetworkPolicy"
            } else {
                "Calico NetworkPolicy"
            };
            let name = named(kind, &policy.metadata.name);
            found.push(Isolating {
                name,
                ingress,
                egress,
            });
        }
    }
    found
}

fn missing_network_policy(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    if workload.spec.host_network == Some(true) {
        return;
    }
    let namespace = workload.namespace().unwrap_or("");
    let service_account = service_account_of(workload);
    // Only Calico's `serviceAccountSelector` reads the account's labels:
    // look the account up only then (a linear search per workload).
    let reads_account_labels = cx
        .inventory
        .calico_policies
        .iter()
        .any(|p| p.service_account_selector.is_some());
    let account_labels = reads_account_labels
        .then(|| service_account_labels(cx, namespace, service_account))
        .flatten();
    let endpoint = Endpoint::new(
        namespace,
        workload.template_metadata.labels.as_ref(),
        namespace_labels(cx.inventory, namespace),
        service_account,
        account_labels.as_deref(),
    );
    let selecting = isolating_policies(cx, &endpoint);
    let path = workload.template_metadata_path.field("labels");
    if selecting.is_empty() {
        let message = format!(
            "no NetworkPolicy selects the pods ({}): all ingress and egress traffic is allowed",
            describe_labels(workload)
        );
        out.object(path, message);
        return;
    }
    let ingress = selecting.iter().any(|p| p.ingress);
    let egress = selecting.iter().any(|p| p.egress);
    let names: Vec<&str> = selecting.iter().map(|p| p.name.as_str()).collect();
    let verb = if names.len() == 1 {
        "selects"
    } else {
        "select"
    };
    for (isolated, direction) in [(ingress, "ingress"), (egress, "egress")] {
        if !isolated {
            let message = format!(
                "{} {verb} the pods but none restricts {direction} traffic",
                names.join(", ")
            );
            out.object(path.clone(), message).severity(Severity::Low);
        }
    }
}

fn namespace_name(namespace: &Namespace) -> &str {
    namespace.metadata.name.as_deref().unwrap_or("")
}

fn namespace_missing_pod_security(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Namespace(namespace) = subject else {
        return;
    };
    let labelled = namespace
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(PSA_ENFORCE_LABEL));
    if labelled {
        return;
    }
    let name = namespace_name(namespace);
    let path = FieldPath::new("metadata")
        .field("labels")
        .key(PSA_ENFORCE_LABEL);
    let message = format!(
        "namespace `{name}` has no `{PSA_ENFORCE_LABEL}` label: its pods are not checked \
         against the Pod Security Standards"
    );
    let violation = out.object(path, message);
    if is_system_namespace(name) {
        violation.suppress_by_default("Kubernetes system namespace");
    }
}

/// Whether any policy isolates pods of the namespace: a namespaced policy
/// of any kind in it, or a cluster-wide one that selects its pods whatever
/// their own labels.
fn namespace_has_policy(cx: &Context<'_>, name: &str) -> bool {
    let inventory = cx.inventory;
    let in_namespace = |namespace: &Option<String>| namespace.as_deref().unwrap_or("") == name;
    if !cx.index().network_policies_in(name).is_empty()
        || inventory
            .cilium_policies
            .iter()
            .any(|p| !p.cluster_wide && in_namespace(&p.metadata.namespace))
        || inventory
            .calico_policies
            .iter()
            .any(|p| !p.global && in_namespace(&p.metadata.namespace))
    {
        return true;
    }
    let any_pod = Endpoint::new(
        name,
        None,
        namespace_labels(inventory, name),
        "default",
        None,
    );
    let isolates = |isolation: Option<(bool, bool)>| isolation.is_some_and(|(i, e)| i || e);
    inventory
        .cilium_policies
        .iter()
        .filter(|p| p.cluster_wide)
        .any(|p| isolates(p.isolation(&any_pod)))
        || inventory
            .calico_policies
            .iter()
            .filter(|p| p.global)
            .any(|p| isolates(p.isolation(&any_pod)))
}

fn namespace_without_network_policy(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Subject::Namespace(namespace) = subject else {
        return;
    };
    let name = namespace_name(namespace);
    if namespace_has_policy(cx, name) {
        return;
    }
    // Count what people deploy (Deployments, not also their ReplicaSets and
    // Pods when the objects come from a live cluster).
    let workloads = cx.index().workloads_in(name);
    let count = match workloads.top_level {
        0 => workloads.all,
        top_level => top_level,
    };
    let message = match count {
        0 => format!(
            "namespace `{name}` has no NetworkPolicy: its pods accept traffic from anywhere \
             and connect anywhere"
        ),
        1 => format!(
            "namespace `{name}` has 1 workload and no NetworkPolicy: all traffic is allowed"
        ),
        _ => format!(
            "namespace `{name}` has {count} workloads and no NetworkPolicy: all traffic is \
             allowed"
        ),
    };
    let violation = out.object(FieldPath::new("metadata").field("name"), message);
    if is_system_namespace(name) {
        violation.suppress_by_default("Kubernetes system namespace");
    }
}

/// Kubernetes' own namespaces, configured by the distribution, not the user.
fn is_system_namespace(name: &str) -> bool {
    matches!(name, "kube-system" | "kube-public" | "kube-node-lease")
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{findings, paths};
    use crate::engine::Severity;

    #[test]
    fn default_namespace_flags_explicit_default() {
        let yaml = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: app, image: "nginx:1.27"}]}
"#;
        let found = findings(yaml, "default-namespace");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "metadata.namespace");
        assert_eq!(
            found[0].message,
            "Deployment `web` is in namespace `default`"
        );
    }

    #[test]
    fn default_namespace_passes_unset_and_other_namespaces() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: unset}
spec: {containers: [{name: app, image: "nginx:1.27"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: elsewhere, namespace: shop}
spec: {containers: [{name: app, image: "nginx:1.27"}]}
"#;
        assert!(paths(yaml, "default-namespace").is_empty());
    }

    #[test]
    fn bare_pod_flags_pods_without_controller() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata:
  name: loose
  namespace: shop
  ownerReferences:
  - {apiVersion: v1, kind: ConfigMap, name: cm, uid: "1"}
spec: {containers: [{name: app, image: "nginx:1.27"}]}
"#;
        let found = findings(yaml, "bare-pod");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "kind");
        assert!(
            found[0]
                .message
                .starts_with("Pod `loose` has no controller")
        );
    }

    #[test]
    fn bare_pod_passes_controlled_pods_and_other_kinds() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web-5d8f7-x2x9z
  namespace: shop
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f7, uid: "1", controller: true}
spec: {containers: [{name: app, image: "nginx:1.27"}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: shop}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: app, image: "busybox:1.36"}]
"#;
        assert!(paths(yaml, "bare-pod").is_empty());
    }

    const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, tier: front}}
    spec: {containers: [{name: app, image: "nginx:1.27"}]}
"#;

    fn policy(namespace: &str, selector: &str, extra: &str) -> String {
        format!(
            r#"
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: np, namespace: {namespace}}}
spec:
  podSelector: {selector}
{extra}
"#
        )
    }

    #[test]
    fn missing_network_policy_flags_unselected_pods() {
        let other_labels = format!("{WEB}{}", policy("shop", "{matchLabels: {app: db}}", ""));
        let other_namespace = format!("{WEB}{}", policy("other", "{}", ""));
        for yaml in [WEB.to_owned(), other_labels, other_namespace] {
            let found = findings(&yaml, "missing-network-policy");
            assert_eq!(found.len(), 1, "{yaml}");
            assert_eq!(found[0].path, "spec.template.metadata.labels");
            assert_eq!(found[0].severity, Severity::Medium);
            assert_eq!(
                found[0].message,
                "no NetworkPolicy selects the pods (labels app=web,tier=front): all ingress \
                 and egress traffic is allowed"
            );
        }
    }

    #[test]
    fn missing_network_policy_reports_one_open_direction_as_low() {
        // No policyTypes and no egress rules: the policy restricts ingress only.
        let ingress_only = format!("{WEB}{}", policy("shop", "{matchLabels: {app: web}}", ""));
        let found = findings(&ingress_only, "missing-network-policy");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "spec.template.metadata.labels");
        assert_eq!(found[0].severity, Severity::Low);
        assert_eq!(
            found[0].message,
            "NetworkPolicy `np` selects the pods but none restricts egress traffic"
        );
    }

    #[test]
    fn missing_network_policy_passes_pods_isolated_both_ways() {
        let deny_all = format!(
            "{WEB}{}",
            policy("shop", "{}", "  policyTypes: [Ingress, Egress]")
        );
        assert!(paths(&deny_all, "missing-network-policy").is_empty());
        let expression = format!(
            "{WEB}{}",
            policy(
                "shop",
                "{matchExpressions: [{key: tier, operator: In, values: [front]}]}",
                "  egress: [{to: [{podSelector: {}}]}]"
            )
        );
        assert!(paths(&expression, "missing-network-policy").is_empty());
    }

    #[test]
    fn missing_network_policy_matches_objects_without_namespace_together() {
        let yaml = format!(
            "{}{}",
            WEB.replace(", namespace: shop", ""),
            policy("shop", "{}", "  policyTypes: [Ingress, Egress]")
                .replace(", namespace: shop", "")
        );
        assert!(paths(&yaml, "missing-network-policy").is_empty());
    }

    #[test]
    fn missing_network_policy_skips_host_network_pods() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: shop}
spec:
  hostNetwork: true
  containers: [{name: app, image: "agent:1.0"}]
"#;
        assert!(paths(yaml, "missing-network-policy").is_empty());
    }

    const NAMESPACE: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop}
"#;

    #[test]
    fn namespace_missing_pod_security_flags_unlabelled_namespaces() {
        let found = findings(NAMESPACE, "namespace-missing-pod-security");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].path,
            "metadata.labels[pod-security.kubernetes.io/enforce]"
        );
        assert!(!found[0].is_suppressed());
        let system = NAMESPACE.replace("name: shop", "name: kube-system");
        let found = findings(&system, "namespace-missing-pod-security");
        assert!(found[0].is_suppressed());
    }

    #[test]
    fn namespace_missing_pod_security_passes_labelled_namespaces() {
        let yaml = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {pod-security.kubernetes.io/enforce: restricted}
"#;
        assert!(paths(yaml, "namespace-missing-pod-security").is_empty());
    }

    #[test]
    fn namespace_without_network_policy_counts_top_level_workloads() {
        let pod_of_web = r#"
---
apiVersion: v1
kind: Pod
metadata:
  name: web-x2x9z
  namespace: shop
  ownerReferences:
  - {apiVersion: apps/v1, kind: ReplicaSet, name: web-5d8f7, uid: "1", controller: true}
spec: {containers: [{name: app, image: "nginx:1.27"}]}
"#;
        let yaml = format!("{NAMESPACE}---{WEB}{pod_of_web}");
        let found = findings(&yaml, "namespace-without-network-policy");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "metadata.name");
        assert_eq!(
            found[0].message,
            "namespace `shop` has 1 workload and no NetworkPolicy: all traffic is allowed"
        );
    }

    #[test]
    fn namespace_without_network_policy_flags_namespaces_without_workloads() {
        let found = findings(NAMESPACE, "namespace-without-network-policy");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "namespace `shop` has no NetworkPolicy: its pods accept traffic from anywhere and \
             connect anywhere"
        );
        assert!(!found[0].is_suppressed());
        let system = NAMESPACE.replace("name: shop", "name: kube-system");
        let found = findings(&system, "namespace-without-network-policy");
        assert!(found[0].is_suppressed());
    }

    #[test]
    fn namespace_without_network_policy_passes_covered_namespaces() {
        let covered = format!(
            "{NAMESPACE}---{WEB}{}",
            policy("shop", "{matchLabels: {app: other}}", "")
        );
        assert!(paths(&covered, "namespace-without-network-policy").is_empty());
        for cni in [
            CILIUM_SHOP_DEFAULT_DENY.to_owned(),
            CALICO_GLOBAL_DENY.to_owned(),
            CILIUM_CLUSTERWIDE.replace("{matchLabels: {app: web}}", "{}"),
            "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
             metadata: {name: c, namespace: shop}\nspec: {selector: app == 'x'}\n"
                .to_owned(),
        ] {
            let yaml = format!("{NAMESPACE}---\n{cni}");
            assert!(
                paths(&yaml, "namespace-without-network-policy").is_empty(),
                "{cni}"
            );
        }
        // A cluster-wide policy that selects only some of its pods (by
        // label, not by namespace) does not cover it.
        let by_label =
            CILIUM_CLUSTERWIDE.replace("pod.namespace\": shop", "pod.namespace\": other");
        let partial = format!("{NAMESPACE}---\n{by_label}");
        assert_eq!(
            paths(&partial, "namespace-without-network-policy"),
            ["metadata.name"]
        );
    }

    const CILIUM_SHOP_DEFAULT_DENY: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: deny, namespace: shop}
spec:
  endpointSelector: {}
  ingress: [{}]
  egress: [{}]
"#;

    const CILIUM_CLUSTERWIDE: &str = r#"
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: web-only}
specs:
- endpointSelector: {matchLabels: {app: web}}
  ingress: [{fromEndpoints: [{}]}]
- endpointSelector: {matchLabels: {"k8s:io.kubernetes.pod.namespace": shop}}
  egress: [{toEndpoints: [{}]}]
"#;

    const CALICO_GLOBAL_DENY: &str = r#"
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: deny}
spec:
  selector: all()
  namespaceSelector: has(projectcalico.org/name) && projectcalico.org/name not in {'kube-system'}
  types: [Ingress, Egress]
"#;

    fn web_with(policy: &str) -> String {
        format!("{WEB}---\n{policy}")
    }

    #[test]
    fn missing_network_policy_counts_cilium_policies() {
        assert!(
            paths(
                &web_with(CILIUM_SHOP_DEFAULT_DENY),
                "missing-network-policy"
            )
            .is_empty()
        );
        // `specs`: one rule selects by label, the other by namespace label.
        assert!(paths(&web_with(CILIUM_CLUSTERWIDE), "missing-network-policy").is_empty());
        let k8s_prefixed = CILIUM_SHOP_DEFAULT_DENY.replace(
            "endpointSelector: {}",
            "endpointSelector: {matchLabels: {k8s:app: web}}",
        );
        assert!(paths(&web_with(&k8s_prefixed), "missing-network-policy").is_empty());
    }

    #[test]
    fn missing_network_policy_flags_pods_cilium_policies_leave_open() {
        let elsewhere = CILIUM_SHOP_DEFAULT_DENY.replace("namespace: shop", "namespace: other");
        let other_labels = CILIUM_SHOP_DEFAULT_DENY.replace(
            "endpointSelector: {}",
            "endpointSelector: {matchLabels: {app: db}}",
        );
        let host_policy =
            CILIUM_SHOP_DEFAULT_DENY.replace("endpointSelector: {}", "nodeSelector: {}");
        let other_namespace = CILIUM_CLUSTERWIDE
            .replace("app: web", "app: db")
            .replace("shop", "other");
        for policy in [elsewhere, other_labels, host_policy, other_namespace] {
            let found = findings(&web_with(&policy), "missing-network-policy");
            assert_eq!(found.len(), 1, "{policy}");
            assert_eq!(found[0].severity, Severity::Medium);
        }
        let ingress_only = CILIUM_SHOP_DEFAULT_DENY.replace("  egress: [{}]\n", "");
        let found = findings(&web_with(&ingress_only), "missing-network-policy");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Low);
        assert_eq!(
            found[0].message,
            "CiliumNetworkPolicy `deny` selects the pods but none restricts egress traffic"
        );
        let opted_out = format!("{ingress_only}  enableDefaultDeny: {{ingress: false}}\n");
        let found = findings(&web_with(&opted_out), "missing-network-policy");
        assert_eq!(found.len(), 2, "{opted_out}");
    }

    #[test]
    fn missing_network_policy_counts_calico_policies() {
        assert!(paths(&web_with(CALICO_GLOBAL_DENY), "missing-network-policy").is_empty());
        let namespaced = r#"
apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  selector: app == 'web' && (tier in {'front', 'back'} || !has(tier))
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
"#;
        assert!(paths(&web_with(namespaced), "missing-network-policy").is_empty());
    }

    #[test]
    fn missing_network_policy_flags_pods_calico_policies_leave_open() {
        let excluded = CALICO_GLOBAL_DENY.replace("'kube-system'", "'kube-system', 'shop'");
        let other_selector =
            CALICO_GLOBAL_DENY.replace("selector: all()", "selector: app != 'web'");
        let host_only = format!("{CALICO_GLOBAL_DENY}  doNotTrack: true\n");
        for policy in [excluded, other_selector, host_only] {
            let found = findings(&web_with(&policy), "missing-network-policy");
            assert_eq!(found.len(), 1, "{policy}");
            assert_eq!(found[0].severity, Severity::Medium);
        }
        // No `types` and only ingress rules: Calico defaults to [Ingress].
        let ingress_only = r#"
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web, namespace: shop}
spec:
  selector: has(app)
  ingress: [{action: Allow}]
"#;
        let found = findings(&web_with(ingress_only), "missing-network-policy");
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].message,
            "Calico NetworkPolicy `web` selects the pods but none restricts egress traffic"
        );
    }

    #[test]
    fn cni_policies_see_the_namespace_name_label_the_api_server_adds() {
        // Without the Namespace object in the scan.
        let calico = CALICO_GLOBAL_DENY.replace(
            "has(projectcalico.org/name) && projectcalico.org/name not in {'kube-system'}",
            "kubernetes.io/metadata.name not in {'kube-system', 'calico-system'}",
        );
        assert!(paths(&web_with(&calico), "missing-network-policy").is_empty());
        let excluded = calico.replace("'calico-system'", "'shop'");
        assert_eq!(
            paths(&web_with(&excluded), "missing-network-policy").len(),
            1
        );
        let cilium = CILIUM_CLUSTERWIDE.replace(
            "k8s:io.kubernetes.pod.namespace\": shop",
            "k8s:io.cilium.k8s.namespace.labels.kubernetes.io/metadata.name\": shop",
        );
        assert!(paths(&web_with(&cilium), "missing-network-policy").is_empty());
    }

    #[test]
    fn calico_global_policy_namespace_selector_reads_namespace_labels() {
        let policy = CALICO_GLOBAL_DENY.replace(
            "has(projectcalico.org/name) && projectcalico.org/name not in {'kube-system'}",
            "team == 'shop'",
        );
        let unlabelled = format!("{NAMESPACE}---{}", web_with(&policy));
        assert_eq!(
            paths(&unlabelled, "missing-network-policy"),
            ["spec.template.metadata.labels"]
        );
        let labelled = unlabelled.replace(
            "metadata: {name: shop}",
            "metadata: {name: shop, labels: {team: shop}}",
        );
        assert!(paths(&labelled, "missing-network-policy").is_empty());
    }
}
