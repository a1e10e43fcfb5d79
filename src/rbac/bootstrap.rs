//! The API server's default RBAC policy: the marks its objects carry, the
//! control plane's service accounts, and stand-ins for the few default
//! ClusterRoles that manifests bind to but never contain (`cluster-admin`,
//! `admin`, `edit`, `view`). Whether an object is a default one is decided
//! in [`super::default_policy`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::rule::Rule;

/// Label the API server puts on every object of its default policy.
pub const BOOTSTRAP_LABEL: &str = "kubernetes.io/bootstrapping";
pub const BOOTSTRAP_LABEL_VALUE: &str = "rbac-defaults";
/// Annotation that lets the API server reconcile a default role at startup.
pub const AUTOUPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
/// Prefix reserved for the control plane's own roles and bindings.
pub const SYSTEM_PREFIX: &str = "system:";

/// Labels that aggregate a ClusterRole's rules into `admin`, `edit` and `view`.
pub const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
pub const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
pub const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

/// The user-facing default ClusterRoles. The API server recreates and
/// reconciles them at startup, so a ClusterRole of that name in manifests is
/// the default one in any real cluster.
pub const USER_FACING_ROLES: [&str; 4] = ["cluster-admin", "admin", "edit", "view"];

/// Well-known service accounts of cluster add-ons and the control plane in
/// `kube-system` whose permissions come with the platform.
const CONTROL_PLANE_ACCOUNTS: &[&str] = &[
    "attachdetach-controller",
    "bootstrap-signer",
    "certificate-controller",
    "clusterrole-aggregation-controller",
    "coredns",
    "cronjob-controller",
    "daemon-set-controller",
    "deployment-controller",
    "disruption-controller",
    "endpoint-controller",
    "endpointslice-controller",
    "endpointslicemirroring-controller",
    "ephemeral-volume-controller",
    "expand-controller",
    "generic-garbage-collector",
    "horizontal-pod-autoscaler",
    "job-controller",
    "kube-dns",
    "kube-proxy",
    "legacy-service-account-token-cleaner",
    "namespace-controller",
    "node-controller",
    "persistent-volume-binder",
    "pod-garbage-collector",
    "pv-protection-controller",
    "pvc-protection-controller",
    "replicaset-controller",
    "replication-controller",
    "resource-claim-controller",
    "resourcequota-controller",
    "root-ca-cert-publisher",
    "route-controller",
    "service-account-controller",
    "service-cidrs-controller",
    "service-controller",
    "statefulset-controller",
    "token-cleaner",
    "ttl-after-finished-controller",
    "ttl-controller",
    "validatingadmissionpolicy-status-controller",
    "volumeattributesclass-protection-controller",
];

/// Why a service account's permissions are the platform's, if they are.
pub fn control_plane_account_reason(namespace: &str, name: &str) -> Option<String> {
    (namespace == "kube-system" && CONTROL_PLANE_ACCOUNTS.contains(&name))
        .then(|| format!("`kube-system/{name}` is a well-known control-plane service account"))
}

/// A default ClusterRole Palisade stands in for when the objects analysed do
/// not contain it (manifest sets bind to `admin` but never ship it).
pub struct DefaultClusterRole {
    pub name: &'static str,
    pub labels: BTreeMap<String, String>,
    pub rules: Vec<Rule>,
    pub aggregation: Option<Vec<LabelSelector>>,
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut all: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.insert(BOOTSTRAP_LABEL.to_owned(), BOOTSTRAP_LABEL_VALUE.to_owned());
    all
}

fn aggregate(label: &str) -> Option<Vec<LabelSelector>> {
    Some(vec![LabelSelector {
        match_labels: Some(BTreeMap::from([(label.to_owned(), "true".to_owned())])),
        match_expressions: None,
    }])
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

/// The default ClusterRoles, in the shape of the Kubernetes 1.35 default
/// policy: `cluster-admin` exactly; `admin`, `edit` and `view` as aggregations
/// of `system:aggregate-to-*` roles whose rules summarise the default grants
/// on the resources Palisade's risk rules look at. A live cluster always has
/// the real objects, which take precedence.
pub fn default_cluster_roles() -> Vec<DefaultClusterRole> {
    let t = "true";
    vec![
        DefaultClusterRole {
            name: "cluster-admin",
            labels: labels(&[]),
            rules: vec![
                Rule::resource(&["*"], &["*"], &["*"]),
                Rule::non_resource(&["*"], &["*"]),
            ],
            aggregation: None,
        },
        DefaultClusterRole {
            name: "admin",
            labels: labels(&[]),
            rules: Vec::new(),
            aggregation: aggregate(AGGREGATE_TO_ADMIN),
        },
        DefaultClusterRole {
            name: "edit",
            labels: labels(&[(AGGREGATE_TO_ADMIN, t)]),
            rules: Vec::new(),
            aggregation: aggregate(AGGREGATE_TO_EDIT),
        },
        DefaultClusterRole {
            name: "view",
            labels: labels(&[(AGGREGATE_TO_EDIT, t)]),
            rules: Vec::new(),
            aggregation: aggregate(AGGREGATE_TO_VIEW),
        },
        DefaultClusterRole {
            name: "system:aggregate-to-admin",
            labels: labels(&[(AGGREGATE_TO_ADMIN, t)]),
            rules: vec![
                Rule::resource(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                ),
                Rule::resource(
                    &[
                        "create",
                        "delete",
                        "deletecollection",
                        "get",
                        "list",
                        "patch",
                        "update",
                        "watch",
                    ],
                    &["rbac.authorization.k8s.io"],
                    &["rolebindings", "roles"],
                ),
            ],
            aggregation: None,
        },
        DefaultClusterRole {
            name: "system:aggregate-to-edit",
            labels: labels(&[(AGGREGATE_TO_ADMIN, t), (AGGREGATE_TO_EDIT, t)]),
            rules: edit_rules(),
            aggregation: None,
        },
        DefaultClusterRole {
            name: "system:aggregate-to-view",
            labels: labels(&[
                (AGGREGATE_TO_ADMIN, t),
                (AGGREGATE_TO_EDIT, t),
                (AGGREGATE_TO_VIEW, t),
            ]),
            rules: view_rules(),
            aggregation: None,
        },
    ]
}

fn edit_rules() -> Vec<Rule> {
    let pod_access = [
        "pods",
        "pods/attach",
        "pods/exec",
        "pods/portforward",
        "pods/proxy",
    ];
    vec![
        Rule::resource(
            READ,
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
        ),
        Rule::resource(&["impersonate"], &[""], &["serviceaccounts"]),
        Rule::resource(WRITE, &[""], &pod_access),
        Rule::resource(&["create"], &[""], &["pods/eviction"]),
        Rule::resource(
            WRITE,
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        Rule::resource(&["create"], &[""], &["serviceaccounts/token"]),
        Rule::resource(
            WRITE,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        Rule::resource(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        Rule::resource(WRITE, &["batch"], &["cronjobs", "jobs"]),
        Rule::resource(WRITE, &["policy"], &["poddisruptionbudgets"]),
        Rule::resource(
            WRITE,
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
        ),
        Rule::resource(
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            &["coordination.k8s.io"],
            &["leases"],
        ),
    ]
}

fn view_rules() -> Vec<Rule> {
    vec![
        Rule::resource(
            READ,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
                "namespaces",
            ],
        ),
        Rule::resource(READ, &["discovery.k8s.io"], &["endpointslices"]),
        Rule::resource(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        Rule::resource(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        Rule::resource(
            READ,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        Rule::resource(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        Rule::resource(
            READ,
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_plane_accounts_only_in_kube_system() {
        assert!(control_plane_account_reason("kube-system", "generic-garbage-collector").is_some());
        assert!(control_plane_account_reason("shop", "generic-garbage-collector").is_none());
        assert!(control_plane_account_reason("kube-system", "my-operator").is_none());
    }
}
