//! RBAC: what roles grant, what bindings hand out, and what service accounts
//! and the workloads running as them can do with it.
//!
//! Role checks look at a role's effective rules (a ClusterRole's aggregation
//! recomputed) with the API server's own matching, so `*` and `*/sub` count
//! as the authorizer counts them. Service account and workload checks use
//! the effective permissions of the account across every binding, with the
//! binding, role and rule that grant each one. Objects of the default policy
//! (label `kubernetes.io/bootstrapping=rbac-defaults`, `system:` names, the
//! default ClusterRoles) and the control plane's own service accounts are
//! reported suppressed, so a fresh cluster has no unsuppressed finding.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::engine::{
    Applies, Category, Check, Context, Scope, Severity, Subject, Tool, Violations, alias,
};
use crate::model::{FieldPath, Workload};
use crate::rbac::analysis::{token_mounted, workload_account};
use crate::rbac::bootstrap::{
    AGGREGATE_TO_ADMIN, AGGREGATE_TO_EDIT, AGGREGATE_TO_VIEW, control_plane_account_reason,
};
use crate::rbac::index::{BindingData, RoleData, SourcedRule};
use crate::rbac::request::{ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS, SYSTEM_MASTERS};
use crate::rbac::risk::{
    RiskKind, is_full_control, is_wildcard_everything, raise, risk, risks_of_rule,
    risks_of_rule_in, rule_grants_in,
};
use crate::rbac::{BindingKey, RoleKey};

pub static CHECKS: &[&Check] = &[
    &WILDCARD_EVERYTHING,
    &WILDCARD_USE,
    &SECRETS_READ,
    &SECRETS_WRITE,
    &CREATE_PODS,
    &PODS_EXEC_ATTACH,
    &PODS_EPHEMERAL_CONTAINERS,
    &PODS_PORTFORWARD,
    &NODES_PROXY,
    &IMPERSONATE,
    &BIND_ROLES,
    &ESCALATE_ROLES,
    &MANAGE_BINDINGS,
    &TOKEN_REQUEST,
    &CSR_APPROVAL,
    &WEBHOOK_CONFIG_WRITE,
    &PERSISTENT_VOLUMES_CREATE,
    &NODES_PATCH,
    &NAMESPACES_PATCH,
    &NAMESPACES_DELETE,
    &DELETE_EVENTS_LOGS,
    &AGGREGATES_INTO_DEFAULT_ROLES,
    &ROLE_CLAIMS_DEFAULT,
    &BINDING_ANONYMOUS,
    &BINDING_ALL_AUTHENTICATED,
    &BINDING_SYSTEM_MASTERS,
    &BINDING_CLUSTER_ADMIN,
    &BINDING_DEFAULT_SERVICE_ACCOUNT,
    &BINDING_MISSING_ROLE,
    &BINDING_OWN_NAMESPACE,
    &BINDING_DEFAULT_ROLE_CLUSTER_WIDE,
    &BINDING_CLAIMS_DEFAULT,
    &SERVICE_ACCOUNT_DANGEROUS_PERMISSIONS,
    &SERVICE_ACCOUNT_CLUSTER_ADMIN,
    &WORKLOAD_DANGEROUS_PERMISSIONS,
    &WORKLOAD_CLUSTER_ADMIN,
];

// ---------------------------------------------------------------------------
// Roles and ClusterRoles
// ---------------------------------------------------------------------------

/// A role subject with its indexed data and effective rules.
struct RoleView<'a> {
    data: &'a RoleData,
    rules: &'a [SourcedRule],
}

fn role_view<'a>(subject: &Subject<'_>, cx: &'a Context<'_>) -> Option<RoleView<'a>> {
    let key = match subject {
        Subject::Role(r) => RoleKey::namespaced(
            r.metadata.namespace.as_deref().unwrap_or(""),
            r.metadata.name.as_deref().unwrap_or(""),
        ),
        Subject::ClusterRole(r) => RoleKey::cluster(r.metadata.name.as_deref().unwrap_or("")),
        _ => return None,
    };
    let index = &cx.rbac().index;
    Some(RoleView {
        data: index.role(&key)?,
        rules: index.effective_rules(&key)?,
    })
}

impl RoleView<'_> {
    /// The field a rule is written in: `rules[i]` of this role, or the
    /// `aggregationRule` that pulled it in from another ClusterRole.
    fn rule_path(&self, sourced: &SourcedRule) -> FieldPath {
        if sourced.origin.role == self.data.key {
            FieldPath::default()
                .field("rules")
                .index(sourced.origin.index)
        } else {
            FieldPath::default().field("aggregationRule")
        }
    }

    /// ` (rules[2])` or ` (aggregated from ClusterRole x rules[0])`.
    fn rule_place(&self, sourced: &SourcedRule) -> String {
        if sourced.origin.role == self.data.key {
            format!("rules[{}]", sourced.origin.index)
        } else {
            format!("aggregated from {}", sourced.origin)
        }
    }

    fn label(&self) -> String {
        format!("{} `{}`", self.data.key.kind(), self.data.key.name())
    }
}

/// Reports every rule of the role that grants the risk `kind`.
fn role_risk(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations, kind: RiskKind) {
    let Some(view) = role_view(subject, cx) else {
        return;
    };
    let risk = risk(kind);
    // A Role is only ever bound in its own namespace: what it says about
    // cluster-scoped resources reaches no real request.
    let scope = match &*view.data.key {
        RoleKey::Role { namespace, .. } => Some(namespace.as_str()),
        RoleKey::ClusterRole(_) => None,
    };
    for sourced in view.rules {
        let Some(hit) = rule_grants_in(&sourced.rule, risk, scope) else {
            continue;
        };
        let message = format!(
            "{} lets its subjects {}: {} ({})",
            view.label(),
            risk.ability,
            hit.describe(),
            view.rule_place(sourced)
        );
        let violation = out.object(view.rule_path(sourced), message);
        violation.severity(hit.severity());
        if let Some(reason) = &view.data.bootstrap {
            violation.suppress_by_default(reason.clone());
        }
    }
}

/// Defines a check on what a role grants of one risk.
macro_rules! role_risk_check {
    (
        $(#[$doc:meta])*
        $name:ident, $run:ident, $kind:expr,
        id: $id:literal, title: $title:literal, severity: $severity:expr,
        description: $description:literal, remediation: $remediation:literal,
        frameworks: $frameworks:expr, aliases: $aliases:expr $(,)?
    ) => {
        $(#[$doc])*
        pub static $name: Check = Check {
            id: $id,
            title: $title,
            category: Category::Rbac,
            severity: $severity,
            applies: Applies::Role,
            description: $description,
            remediation: $remediation,
            frameworks: $frameworks,
            aliases: $aliases,
            scope: Scope::Inventory,
            run: $run,
        };

        fn $run(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
            role_risk(subject, cx, out, $kind);
        }
    };
}

/// `*` verbs on `*` resources in `*` groups: everything the API offers.
pub static WILDCARD_EVERYTHING: Check = Check {
    id: "rbac-wildcard-everything",
    title: "Role grants every verb on every resource",
    category: Category::Rbac,
    severity: Severity::Critical,
    applies: Applies::Role,
    description: "A rule with `*` verbs, `*` resources and `*` apiGroups is cluster-admin (or \
                  namespace-admin, in a RoleBinding): it reads every secret, runs any pod and \
                  rewrites RBAC itself, including for resources added later.",
    remediation: "List the apiGroups, resources and verbs the subjects need; bind the default \
                  `admin`/`edit`/`view` ClusterRoles where they fit.",
    frameworks: &["cis-k8s:5.1.3", "nsa-cisa", "mitre:T1078"],
    aliases: &[alias(Tool::Trivy, "KSV044")],
    scope: Scope::Inventory,
    run: wildcard_everything,
};

fn wildcard_everything(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Some(view) = role_view(subject, cx) else {
        return;
    };
    for sourced in view
        .rules
        .iter()
        .filter(|r| is_wildcard_everything(&r.rule))
    {
        let message = format!(
            "{} grants every verb on every resource of every API group ({})",
            view.label(),
            view.rule_place(sourced)
        );
        let violation = out.object(view.rule_path(sourced), message);
        if let Some(reason) = &view.data.bootstrap {
            violation.suppress_by_default(reason.clone());
        }
    }
}

/// Wildcards grant more than was written down, including what appears later.
pub static WILDCARD_USE: Check = Check {
    id: "rbac-wildcard-use",
    title: "Role uses wildcard verbs or resources",
    category: Category::Rbac,
    severity: Severity::High,
    applies: Applies::Role,
    description: "A `*` in verbs or resources grants every current and future verb or resource \
                  (escalate, bind, impersonate, subresources such as pods/exec, new CRDs), far \
                  more than anyone reviewing the rule expects.",
    remediation: "Replace `*` with the verbs and resources the subjects need.",
    frameworks: &["cis-k8s:5.1.3", "nsa-cisa"],
    aliases: &[
        alias(Tool::Trivy, "KSV045"),
        alias(Tool::Trivy, "KSV046"),
        alias(Tool::Kubescape, "C-0187"),
        alias(Tool::Checkov, "CKV_K8S_49"),
    ],
    scope: Scope::Inventory,
    run: wildcard_use,
};

fn wildcard_use(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Some(view) = role_view(subject, cx) else {
        return;
    };
    for sourced in view.rules {
        let rule = &sourced.rule;
        if is_wildcard_everything(rule) {
            continue; // rbac-wildcard-everything reports it
        }
        let star = |items: &[String]| items.iter().any(|i| i == "*");
        let fields: Vec<&str> = [
            ("verbs", star(&rule.verbs)),
            ("resources", star(&rule.resources)),
        ]
        .into_iter()
        .filter_map(|(field, wild)| wild.then_some(field))
        .collect();
        if fields.is_empty() {
            continue;
        }
        let message = format!(
            "{} uses `*` in {} ({}: {})",
            view.label(),
            fields.join(" and "),
            view.rule_place(sourced),
            rule.describe()
        );
        let violation = out.object(view.rule_path(sourced), message);
        if let Some(reason) = &view.data.bootstrap {
            violation.suppress_by_default(reason.clone());
        }
    }
}

role_risk_check! {
    /// Secrets hold service account tokens and credentials: reading them is
    /// borrowing every identity they belong to.
    SECRETS_READ, secrets_read, RiskKind::SecretsRead,
    id: "rbac-secrets-read", title: "Role can read secrets", severity: Severity::High,
    description: "get, list or watch on secrets returns their contents: credentials, TLS keys \
                  and service account tokens, so the holder can act as any account whose token \
                  is stored there. `list` and `watch` return every secret at once.",
    remediation: "Grant secret access only to the accounts that need it, limited with \
                  `resourceNames` to the secrets they use.",
    frameworks: &["cis-k8s:5.1.2", "nsa-cisa", "mitre:T1552.007"],
    aliases: &[
        alias(Tool::Trivy, "KSV041"),
        alias(Tool::Kubescape, "C-0015"),
        alias(Tool::Kubescape, "C-0186"),
    ],
}

role_risk_check! {
    /// Writing secrets replaces credentials other workloads trust.
    SECRETS_WRITE, secrets_write, RiskKind::SecretsWrite,
    id: "rbac-secrets-write", title: "Role can write secrets", severity: Severity::Medium,
    description: "create, update, patch or delete on secrets lets the holder replace the \
                  credentials and certificates other workloads use, or mint a token Secret for \
                  a service account in the namespace.",
    remediation: "Grant secret writes only to the controllers that own those secrets, limited \
                  with `resourceNames`.",
    frameworks: &["mitre:T1098"],
    aliases: &[],
}

role_risk_check! {
    /// Creating pods is running code as any service account of the namespace.
    CREATE_PODS, create_pods, RiskKind::CreatePods,
    id: "rbac-create-pods", title: "Role can create pods or workloads", severity: Severity::High,
    description: "Whoever can create a pod (directly or through a Deployment, Job, DaemonSet and \
                  the like) can run it as any service account of the namespace, mount its \
                  secrets and, where Pod Security allows, the host.",
    remediation: "Restrict pod and workload creation to deployment pipelines and controllers; \
                  enforce Pod Security on the namespace.",
    frameworks: &["cis-k8s:5.1.4", "mitre:T1610"],
    aliases: &[alias(Tool::Trivy, "KSV048"), alias(Tool::Kubescape, "C-0188")],
}

role_risk_check! {
    /// exec and attach are a shell in someone else's container.
    PODS_EXEC_ATTACH, pods_exec_attach, RiskKind::PodExecAttach,
    id: "rbac-pods-exec-attach", title: "Role can exec into or attach to pods",
    severity: Severity::High,
    description: "pods/exec and pods/attach run commands in running containers, with their \
                  service account token, mounted secrets and network position.",
    remediation: "Remove pods/exec and pods/attach; grant them for break-glass access only.",
    frameworks: &["mitre:T1609"],
    aliases: &[
        alias(Tool::Trivy, "KSV053"),
        alias(Tool::Trivy, "KSV054"),
        alias(Tool::Kubescape, "C-0002"),
        alias(Tool::Polaris, "clusterrolePodExecAttach"),
        alias(Tool::Polaris, "rolePodExecAttach"),
    ],
}

role_risk_check! {
    /// An ephemeral container joins a running pod with whatever it asks for.
    PODS_EPHEMERAL_CONTAINERS, pods_ephemeral_containers, RiskKind::EphemeralContainers,
    id: "rbac-pods-ephemeral-containers", title: "Role can add ephemeral containers",
    severity: Severity::High,
    description: "Updating pods/ephemeralcontainers starts a new container inside a running pod, \
                  with the pod's service account, volumes and namespaces: exec by another name.",
    remediation: "Grant pods/ephemeralcontainers only for debugging, to people, not workloads.",
    frameworks: &["mitre:T1609"],
    aliases: &[],
}

role_risk_check! {
    /// Port-forwarding reaches ports that were never exposed.
    PODS_PORTFORWARD, pods_portforward, RiskKind::PortForward,
    id: "rbac-pods-portforward", title: "Role can port-forward to pods", severity: Severity::Medium,
    description: "pods/portforward tunnels into any port of a pod, past Services and \
                  NetworkPolicies, including admin and debug ports never meant to be reached.",
    remediation: "Remove pods/portforward from roles that do not need it.",
    frameworks: &["mitre:T1090"],
    aliases: &[alias(Tool::Kubescape, "C-0063")],
}

role_risk_check! {
    /// nodes/proxy talks to the kubelet, which runs commands in any pod.
    NODES_PROXY, nodes_proxy, RiskKind::NodesProxy,
    id: "rbac-nodes-proxy", title: "Role can proxy to the kubelet", severity: Severity::High,
    description: "nodes/proxy reaches the kubelet API of every node, which can run commands in \
                  any pod on it, bypassing pods/exec authorization and audit.",
    remediation: "Grant nodes/proxy only to monitoring components that need it.",
    frameworks: &["cis-k8s:5.1.10", "mitre:T1609"],
    aliases: &[alias(Tool::Trivy, "KSV047")],
}

role_risk_check! {
    /// Impersonation is becoming someone else, `system:masters` included.
    IMPERSONATE, impersonate, RiskKind::Impersonate,
    id: "rbac-impersonate", title: "Role can impersonate users, groups or service accounts",
    severity: Severity::Critical,
    description: "The impersonate verb lets the holder act as other users, groups (including \
                  `system:masters`, which bypasses RBAC), service accounts, UIDs or user extras.",
    remediation: "Remove impersonate, or limit it with `resourceNames` to specific \
                  unprivileged identities.",
    frameworks: &["cis-k8s:5.1.8", "mitre:T1078"],
    aliases: &[alias(Tool::Trivy, "KSV043"), alias(Tool::Kubescape, "C-0065")],
}

role_risk_check! {
    /// `bind` skips the API server's escalation check on bindings.
    BIND_ROLES, bind_roles, RiskKind::BindRoles,
    id: "rbac-bind-roles", title: "Role has the bind verb on roles", severity: Severity::High,
    description: "The API server lets a subject bind only roles whose permissions it already \
                  holds, unless it has `bind` on that role: with it, a subject that can create \
                  bindings can grant itself `cluster-admin`.",
    remediation: "Remove `bind`, or limit it with `resourceNames` to the roles that may be \
                  handed out.",
    frameworks: &["cis-k8s:5.1.8", "mitre:T1098"],
    aliases: &[alias(Tool::Checkov, "CKV_K8S_157")],
}

role_risk_check! {
    /// `escalate` skips the API server's escalation check on roles.
    ESCALATE_ROLES, escalate_roles, RiskKind::EscalateRoles,
    id: "rbac-escalate-roles", title: "Role has the escalate verb on roles",
    severity: Severity::High,
    description: "The API server refuses a role that grants more than its author holds, unless \
                  the author has `escalate`: with it and write access to a role bound to them, \
                  a subject can grant itself anything.",
    remediation: "Remove `escalate` from every role that is not the aggregation controller's.",
    frameworks: &["cis-k8s:5.1.8", "mitre:T1098"],
    aliases: &[alias(Tool::Checkov, "CKV_K8S_158")],
}

role_risk_check! {
    /// Writing bindings hands out whatever the writer holds.
    MANAGE_BINDINGS, manage_bindings, RiskKind::ManageBindings,
    id: "rbac-manage-bindings", title: "Role can create or change role bindings",
    severity: Severity::Medium,
    description: "create, update or patch on rolebindings or clusterrolebindings lets the holder \
                  pass its permissions to any identity (and any role, combined with `bind`).",
    remediation: "Keep binding management to administrators and GitOps controllers.",
    frameworks: &["mitre:T1098"],
    aliases: &[],
}

role_risk_check! {
    /// A token request is a credential of another service account.
    TOKEN_REQUEST, token_request, RiskKind::TokenRequest,
    id: "rbac-token-request", title: "Role can request service account tokens",
    severity: Severity::High,
    description: "create on serviceaccounts/token returns a token of a service account: the \
                  holder acts with that account's permissions.",
    remediation: "Remove serviceaccounts/token, or limit it with `resourceNames`.",
    frameworks: &["cis-k8s:5.1.13", "mitre:T1528"],
    aliases: &[],
}

role_risk_check! {
    /// Approving CSRs issues client certificates, to any identity.
    CSR_APPROVAL, csr_approval, RiskKind::CsrApproval,
    id: "rbac-csr-approval", title: "Role can approve certificate signing requests",
    severity: Severity::High,
    description: "update on certificatesigningrequests/approval (with `approve` on a signer) \
                  approves client certificates; with the kube-apiserver-client signer that is \
                  a credential for any user or group, `system:masters` included.",
    remediation: "Grant CSR approval only to the certificate controller and administrators.",
    frameworks: &["cis-k8s:5.1.11", "mitre:T1649"],
    aliases: &[alias(Tool::Checkov, "CKV_K8S_156")],
}

role_risk_check! {
    /// Admission webhooks see and rewrite every object on the way in.
    WEBHOOK_CONFIG_WRITE, webhook_config_write, RiskKind::WebhookConfigs,
    id: "rbac-webhook-config-write", title: "Role can change admission webhooks",
    severity: Severity::High,
    description: "Writing mutating or validating webhook configurations lets the holder \
                  intercept and rewrite every object the API server admits (including secrets) \
                  or switch off the policies that validate them.",
    remediation: "Grant webhook configuration writes only to the controllers that own them, \
                  limited with `resourceNames`.",
    frameworks: &["cis-k8s:5.1.12", "mitre:T1554"],
    aliases: &[alias(Tool::Checkov, "CKV_K8S_155")],
}

role_risk_check! {
    /// A PersistentVolume can point at any directory of the node.
    PERSISTENT_VOLUMES_CREATE, persistent_volumes_create, RiskKind::PersistentVolumes,
    id: "rbac-persistentvolumes-create", title: "Role can create persistent volumes",
    severity: Severity::High,
    description: "A PersistentVolume can be a hostPath: creating one and claiming it mounts the \
                  node's filesystem into a pod, bypassing Pod Security's hostPath rule.",
    remediation: "Let users create PersistentVolumeClaims and storage classes provision volumes.",
    frameworks: &["cis-k8s:5.1.9", "mitre:T1611"],
    aliases: &[],
}

role_risk_check! {
    /// Node labels and taints decide where pods, and secrets, land.
    NODES_PATCH, nodes_patch, RiskKind::NodesPatch,
    id: "rbac-nodes-patch", title: "Role can modify nodes", severity: Severity::Medium,
    description: "update or patch on nodes changes labels and taints, drawing sensitive pods \
                  onto a node the holder controls or cordoning the cluster.",
    remediation: "Leave node changes to the node controllers and administrators.",
    frameworks: &["mitre:T1565"],
    aliases: &[],
}

role_risk_check! {
    /// Namespace labels enforce Pod Security.
    NAMESPACES_PATCH, namespaces_patch, RiskKind::NamespacesPatch,
    id: "rbac-namespaces-patch", title: "Role can modify namespaces", severity: Severity::High,
    description: "update or patch on namespaces can remove or relax the \
                  `pod-security.kubernetes.io/*` labels, which switches off Pod Security \
                  admission for the namespace and so allows privileged pods in it. In a \
                  RoleBinding it applies to the binding's own namespace (a request on a \
                  namespace carries that namespace's name).",
    remediation: "Manage namespaces (and their labels) through administrators or GitOps only.",
    frameworks: &["mitre:T1562"],
    aliases: &[],
}

role_risk_check! {
    /// Deleting a namespace deletes everything in it.
    NAMESPACES_DELETE, namespaces_delete, RiskKind::NamespacesDelete,
    id: "rbac-namespaces-delete", title: "Role can delete namespaces", severity: Severity::Medium,
    description: "delete on namespaces removes a namespace with every workload, secret and \
                  role in it. In a RoleBinding it applies to the binding's own namespace (a \
                  request on a namespace carries that namespace's name).",
    remediation: "Leave namespace deletion to administrators or GitOps.",
    frameworks: &["mitre:T1485"],
    aliases: &[],
}

role_risk_check! {
    /// Deleting events and logs hides an intrusion.
    DELETE_EVENTS_LOGS, delete_events_logs, RiskKind::DeleteEventsLogs,
    id: "rbac-delete-events-logs", title: "Role can delete events or pod logs",
    severity: Severity::Medium,
    description: "Deleting events (and pod logs) erases the traces of what was done in the \
                  cluster, unless they are shipped elsewhere first.",
    remediation: "Remove delete and deletecollection on events and pods/log.",
    frameworks: &["mitre:T1070"],
    aliases: &[alias(Tool::Kubescape, "C-0031"), alias(Tool::Trivy, "KSV042")],
}

/// Aggregation labels copy a role's rules into `admin`, `edit` or `view`.
pub static AGGREGATES_INTO_DEFAULT_ROLES: Check = Check {
    id: "rbac-aggregates-into-default-roles",
    title: "ClusterRole adds its rules to admin, edit or view",
    category: Category::Rbac,
    severity: Severity::Medium,
    applies: Applies::Role,
    description: "A ClusterRole labelled `rbac.authorization.k8s.io/aggregate-to-admin`, \
                  `-edit` or `-view` has its rules copied into that default role, and so \
                  granted to everyone bound to it in any namespace, often far more people than \
                  the ClusterRole's author had in mind.",
    remediation: "Aggregate only read access to your own resources into `view`, and nothing \
                  that grants a dangerous permission into any default role.",
    frameworks: &["mitre:T1098"],
    aliases: &[],
    scope: Scope::Inventory,
    run: aggregates_into_default_roles,
};

fn aggregates_into_default_roles(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Subject::ClusterRole(role) = subject else {
        return;
    };
    let Some(view) = role_view(subject, cx) else {
        return;
    };
    let labels = role.metadata.labels.clone().unwrap_or_default();
    for (label, target) in [
        (AGGREGATE_TO_ADMIN, "admin"),
        (AGGREGATE_TO_EDIT, "edit"),
        (AGGREGATE_TO_VIEW, "view"),
    ] {
        if labels.get(label).map(String::as_str) != Some("true") {
            continue;
        }
        let dangerous: Vec<&str> = view
            .rules
            .iter()
            .flat_map(|r| risks_of_rule(&r.rule))
            .map(|hit| hit.risk().ability)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let path = FieldPath::default()
            .field("metadata")
            .field("labels")
            .key(label);
        let message = if dangerous.is_empty() {
            format!(
                "{} adds its rules to the default ClusterRole `{target}`",
                view.label()
            )
        } else {
            format!(
                "{} adds its rules to the default ClusterRole `{target}`, so everyone bound to \
                 `{target}` can {}",
                view.label(),
                dangerous.join(", ")
            )
        };
        let violation = out.object(path, message);
        if !dangerous.is_empty() {
            violation.severity(Severity::High);
        }
        if let Some(reason) = &view.data.bootstrap {
            violation.suppress_by_default(reason.clone());
        }
    }
}

/// A role dressed as part of the default policy.
pub static ROLE_CLAIMS_DEFAULT: Check = Check {
    id: "rbac-role-claims-default",
    title: "Role claims to be part of the default policy but is not",
    category: Category::Rbac,
    severity: Severity::Medium,
    applies: Applies::Role,
    description: "The role carries the label `kubernetes.io/bootstrapping=rbac-defaults`, a \
                  `system:` name or the name of a default role, but grants more than the \
                  Kubernetes default policy's role of that name, or the default policy has \
                  none. Anyone who may create roles can write those marks; findings on the role \
                  are reported, not suppressed as they are for the real default.",
    remediation: "Rename the role and drop the label; keep `system:` names and the bootstrap \
                  label for the objects the API server creates.",
    frameworks: &["mitre:T1036"],
    aliases: &[],
    scope: Scope::Inventory,
    run: role_claims_default,
};

fn role_claims_default(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Some(view) = role_view(subject, cx) else {
        return;
    };
    if let Some(claim) = &view.data.claims_default {
        let message = format!("{} {claim}", view.label());
        out.object(
            FieldPath::default().field("metadata").field("name"),
            message,
        );
    }
}

// ---------------------------------------------------------------------------
// RoleBindings and ClusterRoleBindings
// ---------------------------------------------------------------------------

/// A binding dressed as part of the default policy.
pub static BINDING_CLAIMS_DEFAULT: Check = Check {
    id: "rbac-binding-claims-default",
    title: "Binding claims to be part of the default policy but is not",
    category: Category::Rbac,
    severity: Severity::Medium,
    applies: Applies::Binding,
    description: "The binding carries the label `kubernetes.io/bootstrapping=rbac-defaults`, a \
                  `system:` name or the name of a default binding, but binds another role or \
                  more subjects than the Kubernetes default policy's binding of that name, or \
                  the default policy has none. Anyone who may create bindings can write those \
                  marks; findings on the binding are reported, not suppressed as they are for \
                  the real default.",
    remediation: "Rename the binding and drop the label; keep `system:` names and the \
                  bootstrap label for the objects the API server creates.",
    frameworks: &["mitre:T1036"],
    aliases: &[],
    scope: Scope::Inventory,
    run: binding_claims_default,
};

fn binding_claims_default(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Some(binding) = binding_data(subject, cx) else {
        return;
    };
    if let Some(claim) = &binding.claims_default {
        let message = format!("{} {claim}", binding_label(binding));
        out.object(
            FieldPath::default().field("metadata").field("name"),
            message,
        );
    }
}

fn binding_data<'a>(subject: &Subject<'_>, cx: &'a Context<'_>) -> Option<&'a BindingData> {
    let key = match subject {
        Subject::RoleBinding(b) => BindingKey::namespaced(
            b.metadata.namespace.as_deref().unwrap_or(""),
            b.metadata.name.as_deref().unwrap_or(""),
        ),
        Subject::ClusterRoleBinding(b) => {
            BindingKey::cluster(b.metadata.name.as_deref().unwrap_or(""))
        }
        _ => return None,
    };
    cx.rbac().index.binding(&key)
}

fn binding_label(binding: &BindingData) -> String {
    format!("{} `{}`", binding.key.kind(), binding.key.name)
}

fn subject_path(index: usize) -> FieldPath {
    FieldPath::default().field("subjects").index(index)
}

/// Whether the binding's role grants any dangerous permission in the
/// binding's scope.
fn grants_dangerous(binding: &BindingData, cx: &Context<'_>) -> bool {
    match cx.rbac().index.resolve(binding) {
        Some((_, rules)) => rules.iter().any(|r| {
            is_full_control(&r.rule) || !risks_of_rule_in(&r.rule, binding.scope()).is_empty()
        }),
        None => false,
    }
}

/// Reports subjects of `kind` named one of `names`; severity `high_risk` when
/// the role grants something dangerous, `low_risk` otherwise.
fn binding_subjects(
    subject: &Subject<'_>,
    cx: &Context<'_>,
    out: &mut Violations,
    matches: &[(&str, &str)],
    what: &str,
    low_risk: Option<Severity>,
) {
    let Some(binding) = binding_data(subject, cx) else {
        return;
    };
    let dangerous = grants_dangerous(binding, cx);
    for (i, s) in binding.subjects.iter().enumerate() {
        if !matches
            .iter()
            .any(|(kind, name)| s.kind == *kind && s.name == *name)
        {
            continue;
        }
        let message = format!(
            "{} grants {} {} {} to {what}",
            binding_label(binding),
            binding.role_ref.kind,
            binding.role_ref.name,
            scope_words(binding),
        );
        let violation = out.object(subject_path(i), message);
        if let (false, Some(severity)) = (dangerous, low_risk) {
            violation.severity(severity);
        }
        if let Some(reason) = &binding.bootstrap {
            violation.suppress_by_default(reason.clone());
        }
    }
}

fn scope_words(binding: &BindingData) -> String {
    match binding.scope() {
        None => "cluster-wide".to_owned(),
        Some(ns) => format!("in namespace `{ns}`"),
    }
}

/// Anyone who can reach the API server, without credentials.
pub static BINDING_ANONYMOUS: Check = Check {
    id: "rbac-binding-anonymous",
    title: "Binding grants access to unauthenticated users",
    category: Category::Rbac,
    severity: Severity::Critical,
    applies: Applies::Binding,
    description: "A binding to `system:anonymous` or `system:unauthenticated` grants its role to \
                  every request without credentials: anyone who can reach the API server.",
    remediation: "Remove the anonymous subjects; authenticate the clients that need access.",
    frameworks: &["cis-k8s:5.1.1", "nsa-cisa", "mitre:T1078.001"],
    aliases: &[alias(Tool::Kubescape, "C-0262")],
    scope: Scope::Inventory,
    run: binding_anonymous,
};

fn binding_anonymous(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    binding_subjects(
        subject,
        cx,
        out,
        &[("User", ANONYMOUS), ("Group", ALL_UNAUTHENTICATED)],
        "unauthenticated users",
        Some(Severity::High),
    );
}

/// Every authenticated identity, every service account included.
pub static BINDING_ALL_AUTHENTICATED: Check = Check {
    id: "rbac-binding-all-authenticated",
    title: "Binding grants access to every authenticated user",
    category: Category::Rbac,
    severity: Severity::High,
    applies: Applies::Binding,
    description: "`system:authenticated` contains every user and every service account of every \
                  namespace: a binding to it hands its role to any compromised pod.",
    remediation: "Bind the role to the users, groups or service accounts that need it.",
    frameworks: &["nsa-cisa", "mitre:T1078"],
    aliases: &[],
    scope: Scope::Inventory,
    run: binding_all_authenticated,
};

fn binding_all_authenticated(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    binding_subjects(
        subject,
        cx,
        out,
        &[("Group", ALL_AUTHENTICATED)],
        "every authenticated user and service account",
        Some(Severity::Medium),
    );
}

/// `system:masters` bypasses RBAC; binding it anything says someone relies on it.
pub static BINDING_SYSTEM_MASTERS: Check = Check {
    id: "rbac-binding-system-masters",
    title: "Binding names the system:masters group",
    category: Category::Rbac,
    severity: Severity::Medium,
    applies: Applies::Binding,
    description: "Members of `system:masters` bypass authorization entirely, and their \
                  certificates cannot be revoked by RBAC; a binding that names the group \
                  suggests credentials in it are being handed out.",
    remediation: "Issue credentials for ordinary users or groups and bind `cluster-admin` to \
                  them where needed; keep `system:masters` for break-glass access.",
    frameworks: &["cis-k8s:5.1.7"],
    aliases: &[alias(Tool::Kubescape, "C-0246")],
    scope: Scope::Inventory,
    run: binding_system_masters,
};

fn binding_system_masters(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    binding_subjects(
        subject,
        cx,
        out,
        &[("Group", SYSTEM_MASTERS)],
        "group `system:masters` (which bypasses RBAC anyway)",
        None,
    );
}

/// Full control of the cluster (or of a namespace) handed to its subjects.
pub static BINDING_CLUSTER_ADMIN: Check = Check {
    id: "rbac-binding-cluster-admin",
    title: "Binding grants cluster-admin or full control",
    category: Category::Rbac,
    severity: Severity::Critical,
    applies: Applies::Binding,
    description: "The binding refers to `cluster-admin` or to a role with every verb (or get, \
                  list, watch, create, update, patch and delete) on every resource of every \
                  group. In a ClusterRoleBinding that is the whole cluster; in a RoleBinding, \
                  every secret and workload of the namespace.",
    remediation: "Bind a role with the permissions the subjects need (`admin`, `edit`, `view` \
                  or your own) instead.",
    frameworks: &["cis-k8s:5.1.1", "nsa-cisa", "mitre:T1078"],
    aliases: &[
        alias(Tool::Kubescape, "C-0035"),
        alias(Tool::Kubescape, "C-0185"),
        alias(Tool::Polaris, "clusterrolebindingClusterAdmin"),
        alias(Tool::Polaris, "rolebindingClusterAdminClusterRole"),
        alias(Tool::Polaris, "rolebindingClusterAdminRole"),
    ],
    scope: Scope::Inventory,
    run: binding_cluster_admin,
};

fn binding_cluster_admin(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Some(binding) = binding_data(subject, cx) else {
        return;
    };
    // `cluster-admin` is reconciled by the API server at startup: a binding
    // to it is cluster admin whatever the manifests say its rules are.
    let to_cluster_admin =
        binding.role_ref.kind == "ClusterRole" && binding.role_ref.name == "cluster-admin";
    let full_control = cx
        .rbac()
        .index
        .resolve(binding)
        .is_some_and(|(_, rules)| rules.iter().any(|r| is_full_control(&r.rule)));
    if !to_cluster_admin && !full_control {
        return;
    }
    let namespace = binding.scope();
    let subjects: Vec<String> = binding
        .subjects
        .iter()
        .map(|s| s.describe(namespace))
        .collect();
    let what = if to_cluster_admin {
        "`cluster-admin`".to_owned()
    } else {
        format!(
            "full control through {} `{}`",
            binding.role_ref.kind, binding.role_ref.name
        )
    };
    let message = format!(
        "{} grants {what} {} to {}",
        binding_label(binding),
        scope_words(binding),
        if subjects.is_empty() {
            "no subject yet".to_owned()
        } else {
            subjects.join(", ")
        }
    );
    let violation = out.object(FieldPath::default().field("roleRef").field("name"), message);
    if namespace.is_some() {
        violation.severity(Severity::High);
    }
    if let Some(reason) = &binding.bootstrap {
        violation.suppress_by_default(reason.clone());
    }
}

/// The `default` account is every pod's that names no other.
pub static BINDING_DEFAULT_SERVICE_ACCOUNT: Check = Check {
    id: "rbac-binding-default-service-account",
    title: "Binding grants permissions to a default service account",
    category: Category::Rbac,
    severity: Severity::Medium,
    applies: Applies::Binding,
    description: "Every pod that names no service account runs as its namespace's `default` \
                  account: permissions bound to it go to all of them.",
    remediation: "Create a dedicated ServiceAccount for the workload that needs the \
                  permissions and bind the role to it.",
    frameworks: &["cis-k8s:5.1.5"],
    aliases: &[alias(Tool::Kubescape, "C-0189")],
    scope: Scope::Inventory,
    run: binding_default_service_account,
};

fn binding_default_service_account(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Some(binding) = binding_data(subject, cx) else {
        return;
    };
    let namespace = binding.scope();
    for (i, s) in binding.subjects.iter().enumerate() {
        if s.kind != "ServiceAccount"
            || s.name != "default"
            || s.effective_namespace(namespace).is_none()
        {
            continue;
        }
        let message = format!(
            "{} grants {} {} {} to {}",
            binding_label(binding),
            binding.role_ref.kind,
            binding.role_ref.name,
            scope_words(binding),
            s.describe(namespace)
        );
        let violation = out.object(subject_path(i), message);
        if let Some(reason) = &binding.bootstrap {
            violation.suppress_by_default(reason.clone());
        }
    }
}

/// A binding to nothing becomes a grant the moment someone creates the role.
pub static BINDING_MISSING_ROLE: Check = Check {
    id: "rbac-binding-missing-role",
    title: "Binding refers to a role that does not exist",
    category: Category::Rbac,
    severity: Severity::Low,
    applies: Applies::Binding,
    description: "The role the binding names does not exist (or its kind cannot be bound \
                  there), so it grants nothing today, and grants whatever a role of that name \
                  will hold to its subjects as soon as anyone who may create roles creates it.",
    remediation: "Create the role the binding is meant for, or delete the binding.",
    frameworks: &["mitre:T1098"],
    aliases: &[],
    scope: Scope::Inventory,
    run: binding_missing_role,
};

fn binding_missing_role(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Some(binding) = binding_data(subject, cx) else {
        return;
    };
    if cx.rbac().index.resolve(binding).is_some() {
        return;
    }
    let role_ref = &binding.role_ref;
    let message = match binding.role_key() {
        Some(key) => format!(
            "{} refers to {key}, which does not exist",
            binding_label(binding)
        ),
        None => format!(
            "{} refers to a {} `{}`, which a {} cannot bind",
            binding_label(binding),
            role_ref.kind,
            role_ref.name,
            binding.key.kind()
        ),
    };
    let violation = out.object(FieldPath::default().field("roleRef").field("name"), message);
    if let Some(reason) = &binding.bootstrap {
        violation.suppress_by_default(reason.clone());
    } else if role_ref.name.starts_with("system:") {
        violation.suppress_by_default(format!(
            "`{}` is a control-plane role the API server provides",
            role_ref.name
        ));
    }
}

/// A RoleBinding hands its subjects the namespace it lives in.
pub static BINDING_OWN_NAMESPACE: Check = Check {
    id: "rbac-binding-own-namespace",
    title: "RoleBinding lets its subjects relabel or delete its own namespace",
    category: Category::Rbac,
    severity: Severity::High,
    applies: Applies::Binding,
    description: "A request on a namespace carries that namespace's name as its namespace, so a \
                  RoleBinding whose role grants update, patch or delete on `namespaces` lets \
                  its subjects change or delete the binding's own namespace. Relabelling \
                  `pod-security.kubernetes.io/*` switches off Pod Security admission there \
                  (high); deleting it removes everything in it (medium).",
    remediation: "Remove `namespaces` from the role bound in the namespace; manage namespaces \
                  and their labels through administrators or GitOps.",
    frameworks: &["mitre:T1562", "mitre:T1485"],
    aliases: &[],
    scope: Scope::Inventory,
    run: binding_own_namespace,
};

fn binding_own_namespace(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Some(binding) = binding_data(subject, cx) else {
        return;
    };
    let Some(namespace) = binding.scope() else {
        return;
    };
    let Some((role, rules)) = cx.rbac().index.resolve(binding) else {
        return;
    };
    let own = |verb: &str| {
        let request =
            crate::rbac::Request::resource(verb, "", "namespaces", "", namespace, namespace);
        rules.iter().any(|r| r.rule.allows(&request))
    };
    let relabel: Vec<&str> = ["update", "patch"].into_iter().filter(|v| own(v)).collect();
    let delete = own("delete");
    if relabel.is_empty() && !delete {
        return;
    }
    let mut abilities = Vec::new();
    if !relabel.is_empty() {
        abilities.push(format!(
            "relabel it ({}), switching off Pod Security admission there",
            relabel.join(", ")
        ));
    }
    if delete {
        abilities.push("delete it with everything in it".to_owned());
    }
    let message = format!(
        "{} lets {} {} namespace `{namespace}` itself through {}: {}",
        binding_label(binding),
        subjects_text(binding),
        if relabel.is_empty() {
            "delete"
        } else {
            "change"
        },
        role.key,
        abilities.join("; ")
    );
    let violation = out.object(FieldPath::default().field("roleRef").field("name"), message);
    if relabel.is_empty() {
        violation.severity(Severity::Medium);
    }
    if let Some(reason) = &binding.bootstrap {
        violation.suppress_by_default(reason.clone());
    }
}

fn subjects_text(binding: &BindingData) -> String {
    let namespace = binding.scope();
    let subjects: Vec<String> = binding
        .subjects
        .iter()
        .map(|s| s.describe(namespace))
        .collect();
    if subjects.is_empty() {
        "no subject yet".to_owned()
    } else {
        subjects.join(", ")
    }
}

/// `edit` or `admin` everywhere: every secret and every pod of the cluster.
pub static BINDING_DEFAULT_ROLE_CLUSTER_WIDE: Check = Check {
    id: "rbac-binding-default-role-cluster-wide",
    title: "ClusterRoleBinding grants a default role's dangerous permissions in every namespace",
    category: Category::Rbac,
    severity: Severity::High,
    applies: Applies::Binding,
    description: "The default ClusterRoles `admin` and `edit` are meant for RoleBindings, one \
                  namespace at a time. Bound by a ClusterRoleBinding they read every secret and \
                  create pods (running as any service account) in every namespace, \
                  `kube-system` included. The roles themselves are the API server's and are \
                  not reported, so the binding is.",
    remediation: "Bind `admin` or `edit` with a RoleBinding in each namespace the subjects \
                  work in.",
    frameworks: &["cis-k8s:5.1.1", "mitre:T1078"],
    aliases: &[],
    scope: Scope::Inventory,
    run: binding_default_role_cluster_wide,
};

fn binding_default_role_cluster_wide(
    subject: &Subject<'_>,
    cx: &Context<'_>,
    out: &mut Violations,
) {
    let Some(binding) = binding_data(subject, cx) else {
        return;
    };
    // `cluster-admin` has its own check; any other default role is reported
    // here when it grants something dangerous.
    if binding.scope().is_some()
        || binding.role_ref.kind != "ClusterRole"
        || binding.role_ref.name == "cluster-admin"
    {
        return;
    }
    let Some((role, rules)) = cx.rbac().index.resolve(binding) else {
        return;
    };
    if role.bootstrap.is_none() {
        return; // a role of the user's own: the role checks report it
    }
    let abilities: std::collections::BTreeSet<RiskKind> = rules
        .iter()
        .flat_map(|r| risks_of_rule(&r.rule))
        .filter(|hit| hit.names.is_empty())
        .map(|hit| hit.kind)
        .collect();
    if abilities.is_empty() {
        return;
    }
    let texts: Vec<&str> = abilities.iter().map(|k| risk(*k).ability).collect();
    let message = format!(
        "{} grants the default ClusterRole `{}` cluster-wide to {}: in every namespace they \
         can {}",
        binding_label(binding),
        binding.role_ref.name,
        subjects_text(binding),
        texts.join(", ")
    );
    let violation = out.object(FieldPath::default().field("roleRef").field("name"), message);
    if let Some(reason) = &binding.bootstrap {
        violation.suppress_by_default(reason.clone());
    }
}

// ---------------------------------------------------------------------------
// ServiceAccounts
// ---------------------------------------------------------------------------

fn account_of(meta: &ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// What a compromised pod running as this account can do.
pub static SERVICE_ACCOUNT_DANGEROUS_PERMISSIONS: Check = Check {
    id: "rbac-service-account-dangerous-permissions",
    title: "Service account holds dangerous permissions",
    category: Category::Rbac,
    severity: Severity::High,
    applies: Applies::ServiceAccount,
    description: "The account's effective permissions (every binding that applies to it, \
                  directly or through its groups) include a dangerous one. Anyone who gets \
                  its token, by compromising a pod that runs as it, holds it too.",
    remediation: "Remove the binding (or the rule) that grants it, shown as binding → role → \
                  rule, or narrow it to the resources and names the workload uses.",
    frameworks: &["cis-k8s:5.1.6", "mitre:T1078.001"],
    aliases: &[],
    scope: Scope::Inventory,
    run: service_account_dangerous_permissions,
};

fn service_account_dangerous_permissions(
    subject: &Subject<'_>,
    cx: &Context<'_>,
    out: &mut Violations,
) {
    let Subject::ServiceAccount(account) = subject else {
        return;
    };
    let (namespace, name) = account_of(&account.metadata);
    let platform = control_plane_account_reason(&namespace, &name);
    let path = FieldPath::default().field("metadata").field("name");
    for permission in cx.rbac().dangerous_permissions(&namespace, &name) {
        let message = format!(
            "ServiceAccount `{namespace}/{name}` can {} {}: {} ({})",
            permission.hit.risk().ability,
            permission.scope_text(),
            permission.hit.describe(),
            permission.provenance_text()
        );
        let violation = out.object(path.clone(), message);
        violation.severity(permission.hit.severity());
        if let Some(reason) = &platform {
            violation.suppress_by_default(reason.clone());
        } else if permission.bootstrap {
            violation.suppress_by_default(format!(
                "granted by the default policy ({})",
                permission.binding
            ));
        }
    }
}

/// An account one or more steps away from owning the cluster.
pub static SERVICE_ACCOUNT_CLUSTER_ADMIN: Check = Check {
    id: "rbac-service-account-cluster-admin",
    title: "Service account can become cluster admin",
    category: Category::Rbac,
    severity: Severity::Critical,
    applies: Applies::ServiceAccount,
    description: "The account holds cluster admin, or a chain of permissions that ends there: \
                  impersonating `system:masters` or an admin account, binding `cluster-admin`, \
                  escalating a role bound to it, or running code as an admin account (creating \
                  its pods, requesting its token, exec into its pods).",
    remediation: "Break the chain at its first step: remove the permission named there.",
    frameworks: &["cis-k8s:5.1.1", "mitre:T1078", "mitre:T1098"],
    aliases: &[],
    scope: Scope::Inventory,
    run: service_account_cluster_admin,
};

fn service_account_cluster_admin(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Subject::ServiceAccount(account) = subject else {
        return;
    };
    let (namespace, name) = account_of(&account.metadata);
    let Some((steps, bootstrap)) = cx.rbac().admin_chain(&namespace, &name) else {
        return;
    };
    let message = format!(
        "ServiceAccount `{namespace}/{name}` can become cluster admin: {}",
        steps.join("; then it ")
    );
    let violation = out.object(
        FieldPath::default().field("metadata").field("name"),
        message,
    );
    if let Some(reason) = control_plane_account_reason(&namespace, &name) {
        violation.suppress_by_default(reason);
    } else if bootstrap {
        violation.suppress_by_default("every step is granted by the default policy");
    }
}

// ---------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------

/// The field that names the account, where the finding points.
fn account_field(workload: &Workload) -> FieldPath {
    workload.spec_path.field("serviceAccountName")
}

/// What makes a compromise of the pod likelier or worse: host network,
/// privileged containers.
fn exposure(workload: &Workload) -> Option<String> {
    let mut reasons = Vec::new();
    if workload.spec.host_network == Some(true) {
        reasons.push("uses the host network".to_owned());
    }
    for c in &workload.containers {
        let privileged = c
            .container
            .security_context
            .as_ref()
            .and_then(|s| s.privileged);
        if privileged == Some(true) {
            reasons.push(format!("runs privileged container `{}`", c.name()));
        }
    }
    (!reasons.is_empty()).then(|| reasons.join(" and "))
}

/// A workload's pods carry the token of a powerful account.
pub static WORKLOAD_DANGEROUS_PERMISSIONS: Check = Check {
    id: "rbac-workload-dangerous-permissions",
    title: "Workload runs as a service account with dangerous permissions",
    category: Category::Rbac,
    severity: Severity::High,
    applies: Applies::Workload,
    description: "The pods mount the token of a service account that holds a dangerous \
                  permission: whoever compromises a container gets it. The finding is worse when \
                  the pod uses the host network or runs privileged.",
    remediation: "Give the workload its own account with only what it needs, or set \
                  `automountServiceAccountToken: false` when it does not call the API.",
    frameworks: &["cis-k8s:5.1.6", "mitre:T1528"],
    aliases: &[],
    scope: Scope::Inventory,
    run: workload_dangerous_permissions,
};

fn workload_dangerous_permissions(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    if !token_mounted(workload, cx.index()) {
        return;
    }
    let (namespace, name) = workload_account(workload);
    let permissions = cx.rbac().dangerous_permissions(&namespace, &name);
    let exposed = exposure(workload);
    let platform = control_plane_account_reason(&namespace, &name);
    // One finding per kind of danger: the worst grant of it, and how many more.
    let mut kinds: Vec<RiskKind> = permissions.iter().map(|p| p.hit.kind).collect();
    kinds.sort();
    kinds.dedup();
    for kind in kinds {
        let of_kind: Vec<_> = permissions.iter().filter(|p| p.hit.kind == kind).collect();
        let worst = of_kind
            .iter()
            .max_by_key(|p| (p.hit.severity(), p.scope.is_none()))
            .expect("at least one permission of each kind");
        let mut message = format!(
            "runs as ServiceAccount `{namespace}/{name}`, whose token is mounted and which can {} {} ({})",
            worst.hit.risk().ability,
            worst.scope_text(),
            worst.provenance_text()
        );
        if of_kind.len() > 1 {
            message.push_str(&format!(" and {} more grant(s)", of_kind.len() - 1));
        }
        let mut severity = worst.hit.severity();
        if let Some(exposed) = &exposed {
            message.push_str(&format!("; the pod {exposed}"));
            severity = raise(severity);
        }
        let violation = out.object(account_field(workload), message);
        violation.severity(severity);
        if let Some(reason) = &platform {
            violation.suppress_by_default(reason.clone());
        } else if of_kind.iter().all(|p| p.bootstrap) {
            violation
                .suppress_by_default(format!("granted by the default policy ({})", worst.binding));
        }
    }
}

/// The attack path ends at cluster admin, starting from this pod.
pub static WORKLOAD_CLUSTER_ADMIN: Check = Check {
    id: "rbac-workload-cluster-admin",
    title: "Workload runs as a service account that can become cluster admin",
    category: Category::Rbac,
    severity: Severity::Critical,
    applies: Applies::Workload,
    description: "The pods mount the token of a service account that holds cluster admin or a \
                  chain of permissions to it: compromising any container of the workload is \
                  compromising the cluster.",
    remediation: "Run the workload as an account without that chain, or without a token.",
    frameworks: &["cis-k8s:5.1.1", "mitre:T1078", "mitre:T1528"],
    aliases: &[alias(Tool::Kubescape, "C-0272")],
    scope: Scope::Inventory,
    run: workload_cluster_admin,
};

fn workload_cluster_admin(subject: &Subject<'_>, cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    if !token_mounted(workload, cx.index()) {
        return;
    }
    let (namespace, name) = workload_account(workload);
    let Some((steps, bootstrap)) = cx.rbac().admin_chain(&namespace, &name) else {
        return;
    };
    let mut message = format!(
        "runs as ServiceAccount `{namespace}/{name}`, whose token is mounted and which can become \
         cluster admin: it {}",
        steps.join("; then it ")
    );
    if let Some(exposed) = exposure(workload) {
        message.push_str(&format!("; the pod {exposed}"));
    }
    let violation = out.object(account_field(workload), message);
    if let Some(reason) = control_plane_account_reason(&namespace, &name) {
        violation.suppress_by_default(reason);
    } else if bootstrap {
        violation.suppress_by_default("every step is granted by the default policy");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::{findings, paths};

    fn cluster_role(name: &str, rules: &str) -> String {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: '{name}'}}\nrules: {rules}\n---\n"
        )
    }

    fn role(name: &str, rules: &str) -> String {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: '{name}', namespace: shop}}\nrules: {rules}\n---\n"
        )
    }

    fn crb(name: &str, role: &str, subjects: &str) -> String {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: '{name}'}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: '{role}'}}\nsubjects: {subjects}\n---\n"
        )
    }

    fn rb(name: &str, kind: &str, role: &str, subjects: &str) -> String {
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: '{name}', namespace: shop}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {kind}, name: '{role}'}}\nsubjects: {subjects}\n---\n"
        )
    }

    fn unsuppressed(yaml: &str, id: &str) -> Vec<String> {
        findings(yaml, id)
            .into_iter()
            .filter(|f| !f.is_suppressed())
            .map(|f| f.path)
            .collect()
    }

    /// (check id, a rule that fails it, a close rule that passes it)
    const RISK_CASES: &[(&str, &str, &str)] = &[
        (
            "rbac-secrets-read",
            "{apiGroups: ['*'], resources: [secrets], verbs: [list]}",
            "{apiGroups: [apps], resources: [secrets], verbs: [list]}",
        ),
        (
            "rbac-secrets-write",
            "{apiGroups: [''], resources: [secrets], verbs: [patch]}",
            "{apiGroups: [''], resources: [secrets], verbs: [get]}",
        ),
        (
            "rbac-create-pods",
            "{apiGroups: [apps], resources: [deployments], verbs: [create]}",
            "{apiGroups: [apps], resources: [deployments], verbs: [get, delete]}",
        ),
        (
            "rbac-pods-exec-attach",
            "{apiGroups: [''], resources: ['*/exec'], verbs: [create]}",
            "{apiGroups: [''], resources: [pods], verbs: ['*']}",
        ),
        (
            "rbac-pods-ephemeral-containers",
            "{apiGroups: [''], resources: [pods/ephemeralcontainers], verbs: [patch]}",
            "{apiGroups: [''], resources: [pods/ephemeralcontainers], verbs: [get]}",
        ),
        (
            "rbac-pods-portforward",
            "{apiGroups: [''], resources: [pods/portforward], verbs: [create]}",
            "{apiGroups: [''], resources: [pods/log], verbs: [get]}",
        ),
        (
            "rbac-nodes-proxy",
            "{apiGroups: [''], resources: [nodes/proxy], verbs: [get]}",
            "{apiGroups: [''], resources: [nodes], verbs: [get]}",
        ),
        (
            "rbac-impersonate",
            "{apiGroups: [''], resources: [groups], verbs: [impersonate]}",
            "{apiGroups: [''], resources: [groups], verbs: [get]}",
        ),
        (
            "rbac-bind-roles",
            "{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind]}",
            "{apiGroups: [''], resources: [clusterroles], verbs: [bind]}",
        ),
        (
            "rbac-escalate-roles",
            "{apiGroups: ['*'], resources: [roles], verbs: [escalate]}",
            "{apiGroups: ['*'], resources: [roles], verbs: [update]}",
        ),
        (
            "rbac-manage-bindings",
            "{apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: [create]}",
            "{apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: [list]}",
        ),
        (
            "rbac-token-request",
            "{apiGroups: [''], resources: [serviceaccounts/token], verbs: [create]}",
            "{apiGroups: [''], resources: [serviceaccounts], verbs: [create]}",
        ),
        (
            "rbac-csr-approval",
            "{apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests/approval], verbs: [update]}",
            "{apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests], verbs: [update]}",
        ),
        (
            "rbac-webhook-config-write",
            "{apiGroups: [admissionregistration.k8s.io], resources: [validatingwebhookconfigurations], verbs: [patch]}",
            "{apiGroups: [admissionregistration.k8s.io], resources: [validatingwebhookconfigurations], verbs: [list]}",
        ),
        (
            "rbac-persistentvolumes-create",
            "{apiGroups: [''], resources: [persistentvolumes], verbs: [create]}",
            "{apiGroups: [''], resources: [persistentvolumeclaims], verbs: [create]}",
        ),
        (
            "rbac-nodes-patch",
            "{apiGroups: [''], resources: [nodes], verbs: [patch]}",
            "{apiGroups: [''], resources: [nodes/status], verbs: [patch]}",
        ),
        (
            "rbac-namespaces-patch",
            "{apiGroups: [''], resources: [namespaces], verbs: [update]}",
            "{apiGroups: [''], resources: [namespaces], verbs: [create]}",
        ),
        (
            "rbac-namespaces-delete",
            "{apiGroups: [''], resources: [namespaces], verbs: [delete]}",
            "{apiGroups: [''], resources: [namespaces], verbs: [get, list]}",
        ),
        (
            "rbac-delete-events-logs",
            "{apiGroups: [events.k8s.io], resources: [events], verbs: [deletecollection]}",
            "{apiGroups: [events.k8s.io], resources: [events], verbs: [create]}",
        ),
    ];

    #[test]
    fn every_role_risk_check_flags_the_rule_that_grants_it() {
        for (id, failing, passing) in RISK_CASES {
            let yaml = cluster_role("c", &format!("[{passing}, {failing}]"));
            assert_eq!(paths(&yaml, id), ["rules[1]"], "{id} on {failing}");
            let yaml = cluster_role("c", &format!("[{passing}]"));
            assert!(paths(&yaml, id).is_empty(), "{id} passes {passing}");
        }
    }

    #[test]
    fn a_role_grants_nothing_on_cluster_scoped_resources_but_its_own_namespace() {
        let yaml = role(
            "r",
            "[{apiGroups: [''], resources: [nodes/proxy, persistentvolumes], verbs: ['*']}, {apiGroups: [''], resources: [namespaces], verbs: [delete]}, {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind]}]",
        );
        assert!(paths(&yaml, "rbac-nodes-proxy").is_empty());
        assert!(paths(&yaml, "rbac-persistentvolumes-create").is_empty());
        assert_eq!(paths(&yaml, "rbac-namespaces-delete"), ["rules[1]"]);
        assert_eq!(paths(&yaml, "rbac-bind-roles"), ["rules[2]"]);
        // Limited to another namespace's name, it deletes nothing.
        let other = role(
            "r",
            "[{apiGroups: [''], resources: [namespaces], verbs: [delete], resourceNames: [web]}]",
        );
        assert!(paths(&other, "rbac-namespaces-delete").is_empty());
        // A Role that a namespace's own pods run with: the namespaced grant
        // of pods/exec is reported as before.
        let exec = role(
            "r",
            "[{apiGroups: [''], resources: [pods/exec], verbs: [create]}]",
        );
        assert_eq!(paths(&exec, "rbac-pods-exec-attach"), ["rules[0]"]);
    }

    #[test]
    fn role_risk_check_severities_are_the_risks() {
        for check in CHECKS.iter().filter(|c| c.applies == Applies::Role) {
            let kind = RISK_CASES.iter().find(|(id, _, _)| *id == check.id);
            if kind.is_none() {
                continue;
            }
            let yaml = cluster_role("c", &format!("[{}]", kind.unwrap().1));
            let found = findings(&yaml, check.id);
            assert_eq!(found[0].severity, check.severity, "{}", check.id);
        }
        assert_eq!(RISK_CASES.len(), crate::rbac::risk::RISKS.len());
    }

    #[test]
    fn risk_message_names_role_rule_and_grant() {
        let yaml = cluster_role(
            "reader",
            "[{apiGroups: [''], resources: [secrets], verbs: [get, list]}]",
        );
        let found = findings(&yaml, "rbac-secrets-read");
        assert_eq!(
            found[0].message,
            "ClusterRole `reader` lets its subjects read secrets: get secrets, list secrets (rules[0])"
        );
    }

    #[test]
    fn name_limited_grants_are_one_step_lower() {
        let yaml = role(
            "r",
            "[{apiGroups: [''], resources: [secrets], resourceNames: [tls], verbs: [get]}]",
        );
        let found = findings(&yaml, "rbac-secrets-read");
        assert_eq!(found[0].severity, Severity::Medium);
    }

    #[test]
    fn aggregated_rules_point_at_the_aggregation_rule() {
        let yaml = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: agg}\naggregationRule: {clusterRoleSelectors: [{matchLabels: {x: 'y'}}]}\n---\n".to_owned()
            + "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: leaf, labels: {x: 'y'}}\nrules: [{apiGroups: [''], resources: [pods/exec], verbs: [create]}]\n";
        let found = findings(&yaml, "rbac-pods-exec-attach");
        let pairs: Vec<(String, String)> = found
            .iter()
            .map(|f| (f.object.name.clone(), f.path.clone()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("agg".to_owned(), "aggregationRule".to_owned()),
                ("leaf".to_owned(), "rules[0]".to_owned())
            ]
        );
        assert!(
            found[0]
                .message
                .contains("aggregated from ClusterRole leaf rules[0]")
        );
    }

    #[test]
    fn wildcard_everything_and_wildcard_use() {
        let yaml = cluster_role(
            "c",
            "[{apiGroups: [''], resources: [pods], verbs: [get]}, {apiGroups: ['*'], resources: ['*'], verbs: ['*']}, {apiGroups: [''], resources: ['*'], verbs: [get]}]",
        );
        assert_eq!(paths(&yaml, "rbac-wildcard-everything"), ["rules[1]"]);
        assert_eq!(paths(&yaml, "rbac-wildcard-use"), ["rules[2]"]);
        let explicit = cluster_role("c", "[{apiGroups: ['*'], resources: [pods], verbs: [get]}]");
        assert!(paths(&explicit, "rbac-wildcard-everything").is_empty());
        assert!(paths(&explicit, "rbac-wildcard-use").is_empty());
    }

    #[test]
    fn aggregation_labels_into_default_roles() {
        let yaml = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: widgets-view, labels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}}\nrules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]\n";
        let found = findings(yaml, "rbac-aggregates-into-default-roles");
        assert_eq!(
            found[0].path,
            "metadata.labels[rbac.authorization.k8s.io/aggregate-to-view]"
        );
        assert_eq!(found[0].severity, Severity::High);
        let harmless = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: widgets-view, labels: {rbac.authorization.k8s.io/aggregate-to-view: 'false'}}\nrules: []\n";
        assert!(paths(harmless, "rbac-aggregates-into-default-roles").is_empty());
    }

    #[test]
    fn default_roles_are_suppressed_only_when_they_are_the_real_ones() {
        // The real garbage collector role, and the same name with more rules.
        let real = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: 'system:controller:generic-garbage-collector'}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: [delete, get, list, patch, update, watch]}]\n";
        let found = findings(real, "rbac-wildcard-use");
        assert_eq!(found.len(), 1);
        assert!(found[0].is_suppressed());
        let grown = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: 'system:controller:generic-garbage-collector'}\nrules: [{apiGroups: ['*'], resources: ['*'], verbs: ['*']}]\n";
        assert_eq!(
            unsuppressed(grown, "rbac-wildcard-everything"),
            ["rules[0]"]
        );
        // `admin` written with rules the real (aggregated) `admin` holds is
        // the default; with one it lacks, it only claims to be.
        let admin = cluster_role(
            "admin",
            "[{apiGroups: [''], resources: [pods/attach], verbs: [create]}]",
        );
        assert!(unsuppressed(&admin, "rbac-pods-exec-attach").is_empty());
        assert!(paths(&admin, "rbac-role-claims-default").is_empty());
        let grown = cluster_role(
            "admin",
            "[{apiGroups: [''], resources: [pods/attach], verbs: [create]}, {apiGroups: [''], resources: [nodes/proxy], verbs: [get]}]",
        );
        assert_eq!(unsuppressed(&grown, "rbac-pods-exec-attach"), ["rules[0]"]);
        assert_eq!(paths(&grown, "rbac-role-claims-default"), ["metadata.name"]);
    }

    #[test]
    fn binding_to_anonymous_and_authenticated() {
        let safe = cluster_role(
            "safe",
            "[{apiGroups: [''], resources: [configmaps], verbs: [get]}]",
        );
        let yaml = safe.clone()
            + &crb(
                "anon",
                "safe",
                "[{kind: Group, name: 'system:authenticated'}, {kind: User, name: 'system:anonymous'}]",
            );
        assert_eq!(paths(&yaml, "rbac-binding-anonymous"), ["subjects[1]"]);
        assert_eq!(
            findings(&yaml, "rbac-binding-anonymous")[0].severity,
            Severity::High
        );
        assert_eq!(
            paths(&yaml, "rbac-binding-all-authenticated"),
            ["subjects[0]"]
        );
        let risky = cluster_role(
            "risky",
            "[{apiGroups: [''], resources: [secrets], verbs: [list]}]",
        ) + &crb(
            "anon",
            "risky",
            "[{kind: Group, name: 'system:unauthenticated'}]",
        );
        assert_eq!(
            findings(&risky, "rbac-binding-anonymous")[0].severity,
            Severity::Critical
        );
        let users = safe + &crb("users", "safe", "[{kind: User, name: alice}]");
        assert!(paths(&users, "rbac-binding-anonymous").is_empty());
        assert!(paths(&users, "rbac-binding-all-authenticated").is_empty());
    }

    #[test]
    fn binding_to_system_masters() {
        let yaml = crb("m", "view", "[{kind: Group, name: 'system:masters'}]");
        assert_eq!(paths(&yaml, "rbac-binding-system-masters"), ["subjects[0]"]);
        let other = crb("m", "view", "[{kind: Group, name: 'masters'}]");
        assert!(paths(&other, "rbac-binding-system-masters").is_empty());
    }

    #[test]
    fn binding_cluster_admin_by_name_or_full_control() {
        let by_name = crb(
            "ops",
            "cluster-admin",
            "[{kind: ServiceAccount, name: deployer, namespace: ci}]",
        );
        let found = findings(&by_name, "rbac-binding-cluster-admin");
        assert_eq!(found[0].path, "roleRef.name");
        assert_eq!(found[0].severity, Severity::Critical);
        assert_eq!(
            found[0].message,
            "ClusterRoleBinding `ops` grants `cluster-admin` cluster-wide to ServiceAccount ci/deployer"
        );
        let seven = role(
            "full",
            "[{apiGroups: ['*'], resources: ['*'], verbs: [get, list, watch, create, update, patch, delete]}]",
        ) + &rb("b", "Role", "full", "[{kind: User, name: a}]");
        let found = findings(&seven, "rbac-binding-cluster-admin");
        assert_eq!(found[0].severity, Severity::High);
        let partial = cluster_role("p", "[{apiGroups: [''], resources: ['*'], verbs: ['*']}]")
            + &crb("b", "p", "[{kind: User, name: a}]");
        assert!(paths(&partial, "rbac-binding-cluster-admin").is_empty());
        let bootstrap = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: cluster-admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: Group, name: 'system:masters'}]\n";
        assert!(unsuppressed(bootstrap, "rbac-binding-cluster-admin").is_empty());
        assert!(unsuppressed(bootstrap, "rbac-binding-system-masters").is_empty());
    }

    #[test]
    fn binding_default_service_account() {
        let yaml = rb(
            "b",
            "ClusterRole",
            "view",
            "[{kind: ServiceAccount, name: api}, {kind: ServiceAccount, name: default}]",
        );
        assert_eq!(
            paths(&yaml, "rbac-binding-default-service-account"),
            ["subjects[1]"]
        );
        let named = rb(
            "b",
            "ClusterRole",
            "view",
            "[{kind: ServiceAccount, name: api}]",
        );
        assert!(paths(&named, "rbac-binding-default-service-account").is_empty());
    }

    #[test]
    fn binding_missing_role() {
        let yaml = rb("b", "Role", "nope", "[{kind: User, name: a}]");
        let found = findings(&yaml, "rbac-binding-missing-role");
        assert_eq!(found[0].path, "roleRef.name");
        assert_eq!(
            found[0].message,
            "RoleBinding `b` refers to Role shop/nope, which does not exist"
        );
        let present = role("nope", "[]") + &rb("b", "Role", "nope", "[{kind: User, name: a}]");
        assert!(paths(&present, "rbac-binding-missing-role").is_empty());
        // Default ClusterRoles exist in every cluster.
        let edit = rb("b", "ClusterRole", "edit", "[{kind: User, name: a}]");
        assert!(paths(&edit, "rbac-binding-missing-role").is_empty());
        let system = rb("b", "ClusterRole", "system:node", "[{kind: User, name: a}]");
        assert!(unsuppressed(&system, "rbac-binding-missing-role").is_empty());
    }

    #[test]
    fn binding_own_namespace() {
        let manage = role(
            "ns",
            "[{apiGroups: [''], resources: [namespaces], verbs: [get, patch, delete]}]",
        );
        let yaml = manage.clone() + &rb("b", "Role", "ns", "[{kind: User, name: a}]");
        let found = findings(&yaml, "rbac-binding-own-namespace");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "roleRef.name");
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(
            found[0].message,
            "RoleBinding `b` lets User a change namespace `shop` itself through Role shop/ns: \
             relabel it (patch), switching off Pod Security admission there; delete it with \
             everything in it"
        );
        let delete_only = role(
            "ns",
            "[{apiGroups: [''], resources: [namespaces], verbs: [delete], resourceNames: [shop]}]",
        ) + &rb("b", "Role", "ns", "[{kind: User, name: a}]");
        let found = findings(&delete_only, "rbac-binding-own-namespace");
        assert_eq!(found[0].severity, Severity::Medium);
        // Names another namespace: grants nothing on its own.
        let other = role(
            "ns",
            "[{apiGroups: [''], resources: [namespaces], verbs: ['*'], resourceNames: [other]}]",
        ) + &rb("b", "Role", "ns", "[{kind: User, name: a}]");
        assert!(paths(&other, "rbac-binding-own-namespace").is_empty());
        // Reading or creating namespaces is not changing this one.
        let read = role(
            "ns",
            "[{apiGroups: [''], resources: [namespaces], verbs: [get, list, create]}]",
        ) + &rb("b", "Role", "ns", "[{kind: User, name: a}]");
        assert!(paths(&read, "rbac-binding-own-namespace").is_empty());
        // A ClusterRoleBinding is not scoped to a namespace (the role check
        // reports it).
        let cluster = cluster_role(
            "ns",
            "[{apiGroups: [''], resources: [namespaces], verbs: [patch]}]",
        ) + &crb("b", "ns", "[{kind: User, name: a}]");
        assert!(paths(&cluster, "rbac-binding-own-namespace").is_empty());
    }

    #[test]
    fn service_accounts_hold_their_namespace_but_no_cluster_scoped_grant_of_a_role_binding() {
        let yaml = ACCOUNT.to_owned()
            + &cluster_role(
                "ops",
                "[{apiGroups: [''], resources: [namespaces], verbs: [update]}, {apiGroups: [''], resources: [nodes/proxy, persistentvolumes], verbs: ['*']}]",
            )
            + &rb(
                "ops",
                "ClusterRole",
                "ops",
                "[{kind: ServiceAccount, name: api}]",
            );
        let found = findings(&yaml, "rbac-service-account-dangerous-permissions");
        let messages: Vec<&str> = found.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "ServiceAccount `shop/api` can relabel namespaces (switching off Pod Security \
              admission) on namespace `shop` itself: update namespaces (RoleBinding shop/ops → \
              ClusterRole ops → rules[0])"
            ]
        );
        assert_eq!(found[0].severity, Severity::High);
        // The same role bound cluster-wide grants all of it.
        let cluster = ACCOUNT.to_owned()
            + &cluster_role(
                "ops",
                "[{apiGroups: [''], resources: [nodes/proxy], verbs: [get]}]",
            )
            + &crb(
                "ops",
                "ops",
                "[{kind: ServiceAccount, name: api, namespace: shop}]",
            );
        let found = findings(&cluster, "rbac-service-account-dangerous-permissions");
        assert!(
            found[0].message.contains("nodes/proxy cluster-wide"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn cluster_role_binding_of_edit_or_admin() {
        for role in ["edit", "admin"] {
            let yaml = crb("devs", role, "[{kind: Group, name: developers}]");
            let found = findings(&yaml, "rbac-binding-default-role-cluster-wide");
            assert_eq!(found.len(), 1, "{role}");
            assert!(!found[0].is_suppressed());
            assert_eq!(found[0].path, "roleRef.name");
            assert!(
                found[0].message.starts_with(&format!(
                    "ClusterRoleBinding `devs` grants the default ClusterRole `{role}` \
                     cluster-wide to Group developers: in every namespace they can read secrets"
                )),
                "{}",
                found[0].message
            );
            assert!(found[0].message.contains("create pods"));
        }
        // `view` grants nothing dangerous; a RoleBinding of `edit` is its
        // intended use; `cluster-admin` has its own check; a role of one's
        // own is reported on the role.
        for yaml in [
            crb("devs", "view", "[{kind: Group, name: developers}]"),
            rb(
                "devs",
                "ClusterRole",
                "edit",
                "[{kind: Group, name: developers}]",
            ),
            crb("devs", "cluster-admin", "[{kind: Group, name: developers}]"),
            cluster_role(
                "mine",
                "[{apiGroups: [''], resources: [secrets], verbs: [get]}]",
            ) + &crb("devs", "mine", "[{kind: Group, name: developers}]"),
        ] {
            assert!(
                paths(&yaml, "rbac-binding-default-role-cluster-wide").is_empty(),
                "{yaml}"
            );
        }
    }

    #[test]
    fn objects_that_claim_to_be_defaults() {
        // A copy of a default binding that adds a subject.
        let yaml = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: cluster-admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: Group, name: 'system:masters'}, {kind: ServiceAccount, name: ci, namespace: build}]\n";
        let found = findings(yaml, "rbac-binding-claims-default");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "metadata.name");
        assert!(
            found[0].message.contains("claims to be a default (label kubernetes.io/bootstrapping=rbac-defaults) but grants more than the v1.35 default ClusterRoleBinding `cluster-admin`"),
            "{}",
            found[0].message
        );
        // Its other findings are no longer suppressed.
        assert_eq!(unsuppressed(yaml, "rbac-binding-cluster-admin").len(), 1);
        // A `system:` role that is no default: flagged, its findings reported.
        let role = cluster_role(
            "system:ci-runner",
            "[{apiGroups: [''], resources: [secrets], verbs: [list]}]",
        );
        assert_eq!(paths(&role, "rbac-role-claims-default"), ["metadata.name"]);
        assert_eq!(unsuppressed(&role, "rbac-secrets-read"), ["rules[0]"]);
        // The real default is neither flagged nor reported.
        let real = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: cluster-admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: Group, name: 'system:masters'}]\n";
        assert!(paths(real, "rbac-binding-claims-default").is_empty());
        assert!(unsuppressed(real, "rbac-binding-cluster-admin").is_empty());
        let own = cluster_role("ci-runner", "[]");
        assert!(paths(&own, "rbac-role-claims-default").is_empty());
    }

    #[test]
    fn taking_over_a_namespace_with_bind_leads_to_its_admin_account() {
        // `api` may create RoleBindings in `ci` and bind `edit` there (a
        // RoleBinding in `ci` holding `bind` on a ClusterRole): it binds
        // `edit` to itself and runs pods as `ci/deployer`, a cluster admin.
        let admin = crb(
            "deployer",
            "cluster-admin",
            "[{kind: ServiceAccount, name: deployer, namespace: ci}]",
        );
        let binder = |verbs: &str| {
            cluster_role(
                "binder",
                &format!(
                    "[{{apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: [create]}}, {{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [{verbs}], resourceNames: [edit]}}]"
                ),
            ) + "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: binder, namespace: ci}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: binder}\nsubjects: [{kind: ServiceAccount, name: api, namespace: shop}]\n---\n"
        };
        let yaml = ACCOUNT.to_owned() + &admin + &binder("bind");
        let found = findings(&yaml, "rbac-service-account-cluster-admin");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.starts_with(
                "ServiceAccount `shop/api` can become cluster admin: can bind ClusterRole edit to \
                 itself in `ci` (RoleBinding ci/binder → ClusterRole binder rules[0]; \
                 RoleBinding ci/binder → ClusterRole binder rules[1]), so create pods in `ci` \
                 that run as ServiceAccount ci/deployer; then it holds `*`"
            ),
            "{}",
            found[0].message
        );
        let no_bind = ACCOUNT.to_owned() + &admin + &binder("get");
        assert!(paths(&no_bind, "rbac-service-account-cluster-admin").is_empty());
        // Cluster-wide: a ClusterRoleBinding of `edit` to itself.
        let cluster_binder = ACCOUNT.to_owned()
            + &admin
            + &cluster_role(
                "binder",
                "[{apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings], verbs: [create]}, {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [edit]}]",
            )
            + &crb(
                "binder",
                "binder",
                "[{kind: ServiceAccount, name: api, namespace: shop}]",
            );
        let found = findings(&cluster_binder, "rbac-service-account-cluster-admin");
        assert!(
            found[0]
                .message
                .contains("can bind ClusterRole edit to itself cluster-wide"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn escalating_a_role_bound_in_one_namespace_leads_to_its_admin_account() {
        let admin = crb(
            "deployer",
            "cluster-admin",
            "[{kind: ServiceAccount, name: deployer, namespace: ci}]",
        );
        let escalator = |verbs: &str| {
            format!(
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: self, namespace: ci}}\nrules: [{{apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [{verbs}], resourceNames: [self]}}]\n---\n"
            ) + "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: self, namespace: ci}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: self}\nsubjects: [{kind: ServiceAccount, name: api, namespace: shop}]\n---\n"
        };
        let yaml = ACCOUNT.to_owned() + &admin + &escalator("escalate, patch");
        let found = findings(&yaml, "rbac-service-account-cluster-admin");
        assert_eq!(found.len(), 1);
        assert!(
            found[0].message.contains(
                "can add any permission to Role ci/self, bound to it in `ci` by RoleBinding \
                 ci/self"
            ),
            "{}",
            found[0].message
        );
        let no_escalate = ACCOUNT.to_owned() + &admin + &escalator("get, patch");
        assert!(paths(&no_escalate, "rbac-service-account-cluster-admin").is_empty());
    }

    const ACCOUNT: &str =
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: api, namespace: shop}\n---\n";

    #[test]
    fn service_account_dangerous_permissions_with_provenance() {
        let yaml = ACCOUNT.to_owned()
            + &cluster_role(
                "reader",
                "[{apiGroups: [''], resources: [configmaps], verbs: [get]}, {apiGroups: [''], resources: [secrets], verbs: [get]}]",
            )
            + &rb(
                "read",
                "ClusterRole",
                "reader",
                "[{kind: ServiceAccount, name: api}]",
            );
        let found = findings(&yaml, "rbac-service-account-dangerous-permissions");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "metadata.name");
        assert_eq!(
            found[0].message,
            "ServiceAccount `shop/api` can read secrets in namespace `shop`: get secrets \
             (RoleBinding shop/read → ClusterRole reader → rules[1])"
        );
        let harmless = ACCOUNT.to_owned()
            + &cluster_role(
                "reader",
                "[{apiGroups: [''], resources: [configmaps], verbs: [get]}]",
            )
            + &rb(
                "read",
                "ClusterRole",
                "reader",
                "[{kind: ServiceAccount, name: api}]",
            );
        assert!(paths(&harmless, "rbac-service-account-dangerous-permissions").is_empty());
    }

    #[test]
    fn service_account_gets_group_grants() {
        let yaml = ACCOUNT.to_owned()
            + &cluster_role(
                "pods",
                "[{apiGroups: [''], resources: [pods], verbs: [create]}]",
            )
            + &crb(
                "all",
                "pods",
                "[{kind: Group, name: 'system:serviceaccounts:shop'}]",
            );
        let found = findings(&yaml, "rbac-service-account-dangerous-permissions");
        assert!(
            found[0].message.contains("cluster-wide"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn service_account_cluster_admin_chains() {
        // `api` can create pods in `ci`, where `deployer` holds cluster-admin.
        let yaml = ACCOUNT.to_owned()
            + &crb(
                "deployer",
                "cluster-admin",
                "[{kind: ServiceAccount, name: deployer, namespace: ci}]",
            )
            + &cluster_role(
                "runner",
                "[{apiGroups: [batch], resources: [jobs], verbs: [create]}]",
            )
            + "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: run, namespace: ci}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: runner}\nsubjects: [{kind: ServiceAccount, name: api, namespace: shop}]\n";
        let found = findings(&yaml, "rbac-service-account-cluster-admin");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "metadata.name");
        assert_eq!(
            found[0].message,
            "ServiceAccount `shop/api` can become cluster admin: can create jobs in `ci` that run \
             as ServiceAccount ci/deployer (RoleBinding ci/run → ClusterRole runner rules[0]); \
             then it holds `*` on every resource cluster-wide (ClusterRoleBinding deployer → \
             ClusterRole cluster-admin rules[0])"
        );
        let safe = ACCOUNT.to_owned()
            + &crb(
                "deployer",
                "cluster-admin",
                "[{kind: ServiceAccount, name: deployer, namespace: ci}]",
            );
        assert!(paths(&safe, "rbac-service-account-cluster-admin").is_empty());
    }

    #[test]
    fn impersonation_and_bind_paths_to_cluster_admin() {
        let impersonate = ACCOUNT.to_owned()
            + &cluster_role(
                "imp",
                "[{apiGroups: [''], resources: [groups], verbs: [impersonate], resourceNames: ['system:masters']}]",
            )
            + &crb(
                "imp",
                "imp",
                "[{kind: ServiceAccount, name: api, namespace: shop}]",
            );
        let found = findings(&impersonate, "rbac-service-account-cluster-admin");
        assert!(
            found[0]
                .message
                .contains("impersonate group `system:masters`")
        );
        let bind = ACCOUNT.to_owned()
            + &cluster_role(
                "binder",
                "[{apiGroups: [rbac.authorization.k8s.io], resources: [clusterrolebindings], verbs: [create]}, {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind]}]",
            )
            + &crb(
                "binder",
                "binder",
                "[{kind: ServiceAccount, name: api, namespace: shop}]",
            );
        let found = findings(&bind, "rbac-service-account-cluster-admin");
        assert!(
            found[0]
                .message
                .contains("ClusterRoleBinding to `cluster-admin`")
        );
        let escalate = ACCOUNT.to_owned()
            + &cluster_role(
                "self",
                "[{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [escalate, update], resourceNames: [self]}]",
            )
            + &crb(
                "self",
                "self",
                "[{kind: ServiceAccount, name: api, namespace: shop}]",
            );
        let found = findings(&escalate, "rbac-service-account-cluster-admin");
        assert!(
            found[0]
                .message
                .contains("add any permission to ClusterRole `self`")
        );
    }

    fn deployment(extra: &str) -> String {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: shop}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      serviceAccountName: api\n{extra}      containers: [{{name: app, image: nginx:1.27}}]\n---\n"
        )
    }

    #[test]
    fn workload_dangerous_permissions_when_the_token_is_mounted() {
        let rbac = cluster_role(
            "reader",
            "[{apiGroups: [''], resources: [secrets], verbs: [get]}]",
        ) + &rb(
            "read",
            "ClusterRole",
            "reader",
            "[{kind: ServiceAccount, name: api}]",
        );
        let yaml = deployment("") + &rbac;
        let found = findings(&yaml, "rbac-workload-dangerous-permissions");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "spec.template.spec.serviceAccountName");
        assert_eq!(found[0].severity, Severity::High);
        assert!(found[0].message.starts_with("runs as ServiceAccount `shop/api`, whose token is mounted and which can read secrets in namespace `shop`"));
        let exposed = deployment("      hostNetwork: true\n") + &rbac;
        let found = findings(&exposed, "rbac-workload-dangerous-permissions");
        assert_eq!(found[0].severity, Severity::Critical);
        assert!(
            found[0]
                .message
                .ends_with("; the pod uses the host network")
        );
        let no_token = deployment("      automountServiceAccountToken: false\n") + &rbac;
        assert!(paths(&no_token, "rbac-workload-dangerous-permissions").is_empty());
    }

    #[test]
    fn workload_cluster_admin() {
        let yaml = deployment("")
            + &crb(
                "api",
                "cluster-admin",
                "[{kind: ServiceAccount, name: api, namespace: shop}]",
            );
        assert_eq!(
            paths(&yaml, "rbac-workload-cluster-admin"),
            ["spec.template.spec.serviceAccountName"]
        );
        let other = deployment("")
            + &crb(
                "x",
                "cluster-admin",
                "[{kind: ServiceAccount, name: other, namespace: shop}]",
            );
        assert!(paths(&other, "rbac-workload-cluster-admin").is_empty());
    }

    #[test]
    fn control_plane_accounts_are_suppressed() {
        let yaml = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: generic-garbage-collector, namespace: kube-system}\n---\n".to_owned()
            + &cluster_role("gc", "[{apiGroups: ['*'], resources: ['*'], verbs: [get, list, watch, patch, update, delete]}]")
            + &crb("gc", "gc", "[{kind: ServiceAccount, name: generic-garbage-collector, namespace: kube-system}]");
        let found = findings(&yaml, "rbac-service-account-dangerous-permissions");
        assert!(!found.is_empty());
        assert!(found.iter().all(|f| f.is_suppressed()));
    }

    /// A representative slice of the default policy of a fresh cluster (each
    /// object as the API server writes it, or with fewer rules): none of it
    /// may produce an unsuppressed RBAC finding.
    const FRESH_CLUSTER: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: cluster-admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}, annotations: {rbac.authorization.kubernetes.io/autoupdate: "true"}}
rules:
- {apiGroups: ['*'], resources: ['*'], verbs: ['*']}
- {nonResourceURLs: ['*'], verbs: ['*']}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: cluster-admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: 'system:masters'}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}}
aggregationRule: {clusterRoleSelectors: [{matchLabels: {rbac.authorization.k8s.io/aggregate-to-admin: "true"}}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: edit, labels: {kubernetes.io/bootstrapping: rbac-defaults, rbac.authorization.k8s.io/aggregate-to-admin: "true"}}
aggregationRule: {clusterRoleSelectors: [{matchLabels: {rbac.authorization.k8s.io/aggregate-to-edit: "true"}}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: view, labels: {kubernetes.io/bootstrapping: rbac-defaults, rbac.authorization.k8s.io/aggregate-to-edit: "true"}}
aggregationRule: {clusterRoleSelectors: [{matchLabels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}}]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: 'system:aggregate-to-edit', labels: {kubernetes.io/bootstrapping: rbac-defaults, rbac.authorization.k8s.io/aggregate-to-edit: "true"}}
rules:
- {apiGroups: [''], resources: [pods, pods/attach, pods/exec, pods/portforward, pods/proxy], verbs: [create, delete, deletecollection, patch, update]}
- {apiGroups: [''], resources: [pods/attach, pods/exec, pods/portforward, pods/proxy, secrets, services/proxy], verbs: [get, list, watch]}
- {apiGroups: [''], resources: [serviceaccounts], verbs: [impersonate]}
- {apiGroups: [''], resources: [serviceaccounts/token], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: 'system:controller:clusterrole-aggregation-controller', labels: {kubernetes.io/bootstrapping: rbac-defaults}}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [escalate, get, list, patch, update, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: 'system:controller:clusterrole-aggregation-controller', labels: {kubernetes.io/bootstrapping: rbac-defaults}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'system:controller:clusterrole-aggregation-controller'}
subjects: [{kind: ServiceAccount, name: clusterrole-aggregation-controller, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: 'system:controller:generic-garbage-collector', labels: {kubernetes.io/bootstrapping: rbac-defaults}}
rules:
- {apiGroups: ['*'], resources: ['*'], verbs: [delete, get, list, patch, update, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: 'system:controller:generic-garbage-collector', labels: {kubernetes.io/bootstrapping: rbac-defaults}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'system:controller:generic-garbage-collector'}
subjects: [{kind: ServiceAccount, name: generic-garbage-collector, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: 'system:public-info-viewer', labels: {kubernetes.io/bootstrapping: rbac-defaults}}
rules: [{nonResourceURLs: [/healthz, /livez, /readyz, /version, /version/], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: 'system:public-info-viewer', labels: {kubernetes.io/bootstrapping: rbac-defaults}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'system:public-info-viewer'}
subjects: [{kind: Group, name: 'system:authenticated'}, {kind: Group, name: 'system:unauthenticated'}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: 'system:node', labels: {kubernetes.io/bootstrapping: rbac-defaults}}
rules:
- {apiGroups: [''], resources: [secrets, configmaps], verbs: [get, list, watch]}
- {apiGroups: [''], resources: [nodes], verbs: [create, get, list, watch]}
- {apiGroups: [''], resources: [nodes], verbs: [patch, update]}
- {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests], verbs: [create, get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: 'system:controller:certificate-controller', labels: {kubernetes.io/bootstrapping: rbac-defaults}}
rules:
- {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests/approval, certificatesigningrequests/status], verbs: [update]}
- {apiGroups: [certificates.k8s.io], resources: [signers], resourceNames: [kubernetes.io/kube-apiserver-client-kubelet], verbs: [approve]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: 'system:controller:certificate-controller', labels: {kubernetes.io/bootstrapping: rbac-defaults}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'system:controller:certificate-controller'}
subjects: [{kind: ServiceAccount, name: certificate-controller, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: 'system:controller:token-cleaner', namespace: kube-system, labels: {kubernetes.io/bootstrapping: rbac-defaults}}
rules: [{apiGroups: [''], resources: [secrets], verbs: [delete, get, list, watch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: 'system:controller:token-cleaner', namespace: kube-system, labels: {kubernetes.io/bootstrapping: rbac-defaults}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: 'system:controller:token-cleaner'}
subjects: [{kind: ServiceAccount, name: token-cleaner, namespace: kube-system}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: 'system:node-proxier', labels: {kubernetes.io/bootstrapping: rbac-defaults}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: 'system:node-proxier'}
subjects: [{kind: User, name: 'system:kube-proxy'}]
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: clusterrole-aggregation-controller, namespace: kube-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: generic-garbage-collector, namespace: kube-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: certificate-controller, namespace: kube-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: token-cleaner, namespace: kube-system}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: default}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: kube-system}
"#;

    #[test]
    fn fresh_cluster_default_policy_has_no_unsuppressed_rbac_finding() {
        let mut suppressed = 0;
        for check in CHECKS {
            for finding in findings(FRESH_CLUSTER, check.id) {
                assert!(
                    finding.is_suppressed(),
                    "{} on {}: {}",
                    check.id,
                    finding.object,
                    finding.message
                );
                suppressed += 1;
            }
        }
        // The default policy does hold dangerous permissions: they are found,
        // and reported suppressed.
        assert!(suppressed > 10, "{suppressed}");
    }

    #[test]
    fn every_check_is_rbac_and_documented() {
        for check in CHECKS {
            assert_eq!(check.category, Category::Rbac, "{}", check.id);
            assert!(check.id.starts_with("rbac-"), "{}", check.id);
            assert!(!check.description.is_empty() && !check.remediation.is_empty());
        }
    }
}
