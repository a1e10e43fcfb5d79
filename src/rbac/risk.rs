//! Dangerous permissions: what an attacker holding a rule can do with it.
//!
//! Each risk is a set of probes (verb, API group, resource/subresource). A
//! rule grants a risk when the authorizer's own matching says it allows one
//! of the probes, so `*` verbs, `*` groups, `*` resources and `*/sub` forms
//! count exactly as the API server counts them, and `pods` never stands for
//! `pods/exec`. A rule limited by `resourceNames` grants the risk only for
//! those names; such a rule never grants a `create` (a create request has no
//! name).
//!
//! A RoleBinding grants a rule only to requests that carry its namespace.
//! Real requests for cluster-scoped resources carry none, with two
//! exceptions the probes record ([`ProbeScope`]): a request on a namespace
//! itself carries that namespace's name, and the `bind` check on a role
//! (cluster-scoped `clusterroles` included) is made in the namespace of the
//! binding being written. So a RoleBinding to a role that grants
//! `nodes/proxy` grants nothing of it, while one that grants `delete` on
//! `namespaces` lets its subjects delete the binding's own namespace.

use crate::model::Severity;

use super::rule::{ALL, Rule};

/// What a dangerous permission lets its holder do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RiskKind {
    SecretsRead,
    SecretsWrite,
    CreatePods,
    PodExecAttach,
    EphemeralContainers,
    PortForward,
    NodesProxy,
    Impersonate,
    BindRoles,
    EscalateRoles,
    ManageBindings,
    TokenRequest,
    CsrApproval,
    WebhookConfigs,
    PersistentVolumes,
    NodesPatch,
    NamespacesPatch,
    NamespacesDelete,
    DeleteEventsLogs,
}

/// Which namespace a real request for a probe carries, and so which grants
/// of a RoleBinding (scoped to its namespace) can allow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeScope {
    /// A namespaced resource, or the `bind` check (made in the namespace of
    /// the binding being written): the request carries a namespace.
    Namespaced,
    /// A cluster-scoped resource: the request carries no namespace, so only
    /// ClusterRoleBindings grant it.
    Cluster,
    /// A namespace itself: `get`, `update`, `patch` and `delete` of
    /// `namespaces/X` carry namespace `X` (`k8s.io/apiserver`
    /// `pkg/endpoints/request/requestinfo.go`), so a RoleBinding in `X`
    /// grants them on `X` only.
    OwnNamespace,
}

/// One request shape a risk is about.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub verbs: &'static [&'static str],
    pub group: &'static str,
    pub resource: &'static str,
    /// `""` for the resource itself; `"*"` for any subresource of it.
    pub subresource: &'static str,
    pub scope: ProbeScope,
}

const fn probe(
    verbs: &'static [&'static str],
    group: &'static str,
    resource: &'static str,
) -> Probe {
    sub(verbs, group, resource, "")
}

const fn sub(
    verbs: &'static [&'static str],
    group: &'static str,
    resource: &'static str,
    subresource: &'static str,
) -> Probe {
    Probe {
        verbs,
        group,
        resource,
        subresource,
        scope: ProbeScope::Namespaced,
    }
}

/// The same probe on a cluster-scoped resource.
const fn cluster(probe: Probe) -> Probe {
    Probe {
        scope: ProbeScope::Cluster,
        ..probe
    }
}

/// The same probe on a namespace itself.
const fn own_namespace(probe: Probe) -> Probe {
    Probe {
        scope: ProbeScope::OwnNamespace,
        ..probe
    }
}

/// A dangerous permission.
#[derive(Debug)]
pub struct Risk {
    pub kind: RiskKind,
    /// What it lets one do, completing "can …": `read secrets`.
    pub ability: &'static str,
    pub severity: Severity,
    pub probes: &'static [Probe],
}

const WRITE_VERBS: &[&str] = &["create", "update", "patch"];
const POD_CONTROLLERS: &[Probe] = &[
    probe(&["create"], "", "pods"),
    probe(WRITE_VERBS, "apps", "deployments"),
    probe(WRITE_VERBS, "apps", "daemonsets"),
    probe(WRITE_VERBS, "apps", "statefulsets"),
    probe(WRITE_VERBS, "apps", "replicasets"),
    probe(WRITE_VERBS, "batch", "jobs"),
    probe(WRITE_VERBS, "batch", "cronjobs"),
    probe(WRITE_VERBS, "", "replicationcontrollers"),
];

/// Every risk, in catalog order.
pub static RISKS: &[Risk] = &[
    Risk {
        kind: RiskKind::SecretsRead,
        ability: "read secrets",
        severity: Severity::High,
        probes: &[probe(&["get", "list", "watch"], "", "secrets")],
    },
    Risk {
        kind: RiskKind::SecretsWrite,
        ability: "write secrets",
        severity: Severity::Medium,
        probes: &[probe(
            &["create", "update", "patch", "delete", "deletecollection"],
            "",
            "secrets",
        )],
    },
    Risk {
        kind: RiskKind::CreatePods,
        ability: "create pods (directly or through a workload controller)",
        severity: Severity::High,
        probes: POD_CONTROLLERS,
    },
    Risk {
        kind: RiskKind::PodExecAttach,
        ability: "run commands in or attach to pods",
        severity: Severity::High,
        // Websocket clients connect with GET, which API servers before 1.35
        // authorize as `get` on the subresource.
        probes: &[
            sub(&["create", "get"], "", "pods", "exec"),
            sub(&["create", "get"], "", "pods", "attach"),
        ],
    },
    Risk {
        kind: RiskKind::EphemeralContainers,
        ability: "add ephemeral containers to running pods",
        severity: Severity::High,
        probes: &[sub(&["update", "patch"], "", "pods", "ephemeralcontainers")],
    },
    Risk {
        kind: RiskKind::PortForward,
        ability: "port-forward into pods",
        severity: Severity::Medium,
        probes: &[sub(&["create", "get"], "", "pods", "portforward")],
    },
    Risk {
        kind: RiskKind::NodesProxy,
        ability: "reach the kubelet API through nodes/proxy",
        severity: Severity::High,
        probes: &[cluster(sub(
            &["get", "create", "update", "patch", "delete"],
            "",
            "nodes",
            "proxy",
        ))],
    },
    Risk {
        kind: RiskKind::Impersonate,
        ability: "impersonate other identities",
        severity: Severity::Critical,
        probes: &[
            // The impersonation filter asks about users, groups, UIDs and
            // extras without a namespace, about a service account in its own.
            cluster(probe(&["impersonate"], "", "users")),
            cluster(probe(&["impersonate"], "", "groups")),
            probe(&["impersonate"], "", "serviceaccounts"),
            cluster(probe(&["impersonate"], "authentication.k8s.io", "uids")),
            cluster(sub(
                &["impersonate"],
                "authentication.k8s.io",
                "userextras",
                "*",
            )),
        ],
    },
    Risk {
        kind: RiskKind::BindRoles,
        ability: "bind roles they do not hold (`bind`)",
        severity: Severity::High,
        probes: &[
            probe(&["bind"], "rbac.authorization.k8s.io", "roles"),
            probe(&["bind"], "rbac.authorization.k8s.io", "clusterroles"),
        ],
    },
    Risk {
        kind: RiskKind::EscalateRoles,
        ability: "grant roles permissions they do not hold (`escalate`)",
        severity: Severity::High,
        probes: &[
            probe(&["escalate"], "rbac.authorization.k8s.io", "roles"),
            cluster(probe(
                &["escalate"],
                "rbac.authorization.k8s.io",
                "clusterroles",
            )),
        ],
    },
    Risk {
        kind: RiskKind::ManageBindings,
        ability: "create or change role bindings",
        severity: Severity::Medium,
        probes: &[
            probe(WRITE_VERBS, "rbac.authorization.k8s.io", "rolebindings"),
            cluster(probe(
                WRITE_VERBS,
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
            )),
        ],
    },
    Risk {
        kind: RiskKind::TokenRequest,
        ability: "request tokens for service accounts",
        severity: Severity::High,
        probes: &[sub(&["create"], "", "serviceaccounts", "token")],
    },
    Risk {
        kind: RiskKind::CsrApproval,
        ability: "approve certificate signing requests",
        severity: Severity::High,
        probes: &[cluster(sub(
            &["update", "patch"],
            "certificates.k8s.io",
            "certificatesigningrequests",
            "approval",
        ))],
    },
    Risk {
        kind: RiskKind::WebhookConfigs,
        ability: "change admission webhook configurations",
        severity: Severity::High,
        probes: &[
            cluster(probe(
                &["create", "update", "patch", "delete"],
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
            )),
            cluster(probe(
                &["create", "update", "patch", "delete"],
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
            )),
        ],
    },
    Risk {
        kind: RiskKind::PersistentVolumes,
        ability: "create persistent volumes (host paths included)",
        severity: Severity::High,
        probes: &[cluster(probe(&["create"], "", "persistentvolumes"))],
    },
    Risk {
        kind: RiskKind::NodesPatch,
        ability: "modify nodes (labels, taints)",
        severity: Severity::Medium,
        probes: &[cluster(probe(&["update", "patch"], "", "nodes"))],
    },
    Risk {
        kind: RiskKind::NamespacesPatch,
        ability: "relabel namespaces (switching off Pod Security admission)",
        severity: Severity::High,
        probes: &[own_namespace(probe(&["update", "patch"], "", "namespaces"))],
    },
    Risk {
        kind: RiskKind::NamespacesDelete,
        ability: "delete namespaces (with everything in them)",
        severity: Severity::Medium,
        probes: &[own_namespace(probe(&["delete"], "", "namespaces"))],
    },
    Risk {
        kind: RiskKind::DeleteEventsLogs,
        ability: "delete events or pod logs",
        severity: Severity::Medium,
        probes: &[
            probe(&["delete", "deletecollection"], "", "events"),
            probe(&["delete", "deletecollection"], "events.k8s.io", "events"),
            sub(&["delete", "deletecollection"], "", "pods", "log"),
        ],
    },
];

impl Risk {
    /// Whether the risk is about a namespace object itself, so that a
    /// binding scoped to a namespace grants it on that namespace alone.
    pub fn on_namespace_itself(&self) -> bool {
        self.probes
            .iter()
            .all(|p| p.scope == ProbeScope::OwnNamespace)
    }
}

pub fn risk(kind: RiskKind) -> &'static Risk {
    RISKS
        .iter()
        .find(|r| r.kind == kind)
        .expect("every kind is in RISKS")
}

/// What one rule grants of one risk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RiskHit {
    pub kind: RiskKind,
    /// `verb resource[/sub][.group]` pairs granted, in probe order.
    pub granted: Vec<String>,
    /// The names the rule is limited to (empty: every name).
    pub names: Vec<String>,
}

impl RiskHit {
    pub fn risk(&self) -> &'static Risk {
        risk(self.kind)
    }

    /// The risk's severity, one step lower for a rule limited to names.
    pub fn severity(&self) -> Severity {
        let base = self.risk().severity;
        if self.names.is_empty() {
            base
        } else {
            lower(base)
        }
    }

    /// `get secrets, list secrets` (limited to names `a`, `b`).
    pub fn describe(&self) -> String {
        let mut text = self.granted.join(", ");
        if !self.names.is_empty() {
            text.push_str(&format!(" (only names {})", self.names.join(", ")));
        }
        text
    }
}

fn lower(severity: Severity) -> Severity {
    match severity {
        Severity::Critical => Severity::High,
        Severity::High => Severity::Medium,
        Severity::Medium => Severity::Low,
        Severity::Low | Severity::Info => Severity::Low,
    }
}

/// One step worse, for an attack path on an exposed pod.
pub fn raise(severity: Severity) -> Severity {
    match severity {
        Severity::Info => Severity::Low,
        Severity::Low => Severity::Medium,
        Severity::Medium => Severity::High,
        Severity::High | Severity::Critical => Severity::Critical,
    }
}

/// What `rule` grants of `risk`, if anything, to whoever is bound to it
/// cluster-wide.
pub fn rule_grants(rule: &Rule, risk: &Risk) -> Option<RiskHit> {
    rule_grants_in(rule, risk, None)
}

/// What `rule` grants of `risk` through a binding scoped to `namespace`
/// (`None`: a ClusterRoleBinding). In a namespace, cluster-scoped probes
/// grant nothing, and a namespace-itself probe grants only that namespace,
/// when the rule's names allow it.
pub fn rule_grants_in(rule: &Rule, risk: &Risk, namespace: Option<&str>) -> Option<RiskHit> {
    let mut names = rule.resource_names.clone();
    let mut granted = Vec::new();
    for probe in risk.probes {
        match (probe.scope, namespace) {
            (_, None) | (ProbeScope::Namespaced, Some(_)) => {}
            (ProbeScope::Cluster, Some(_)) => continue,
            (ProbeScope::OwnNamespace, Some(ns)) => {
                if !rule.resource_name_matches(ns) {
                    continue;
                }
                // Exactly the one namespace, whatever else the rule names.
                names.clear();
            }
        }
        if !rule.api_group_matches(probe.group) || !probe_resource_matches(rule, probe) {
            continue;
        }
        let named = !rule.resource_names.is_empty();
        for verb in probe.verbs {
            // A create request has no name: a name-limited rule never allows it.
            if named && (*verb == "create" || *verb == "deletecollection") {
                continue;
            }
            if rule.verb_matches(verb) {
                granted.push(describe_probe(verb, probe));
            }
        }
    }
    (!granted.is_empty()).then_some(RiskHit {
        kind: risk.kind,
        granted,
        names,
    })
}

/// Every risk a rule grants, cluster-wide.
pub fn risks_of_rule(rule: &Rule) -> Vec<RiskHit> {
    risks_of_rule_in(rule, None)
}

/// Every risk a rule grants through a binding scoped to `namespace`.
pub fn risks_of_rule_in(rule: &Rule, namespace: Option<&str>) -> Vec<RiskHit> {
    RISKS
        .iter()
        .filter_map(|risk| rule_grants_in(rule, risk, namespace))
        .collect()
}

fn probe_resource_matches(rule: &Rule, probe: &Probe) -> bool {
    if probe.subresource != "*" {
        return rule.resource_matches(probe.resource, probe.subresource);
    }
    // Any subresource (`userextras/<key>`): `*`, `resource/<anything>` or `*/<anything>`.
    rule.resources.iter().any(|r| {
        r == ALL
            || r.strip_prefix(probe.resource)
                .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
            || r.starts_with("*/")
    })
}

fn describe_probe(verb: &str, probe: &Probe) -> String {
    let mut text = format!("{verb} {}", probe.resource);
    if !probe.subresource.is_empty() {
        text.push('/');
        text.push_str(probe.subresource);
    }
    if !probe.group.is_empty() {
        text.push('.');
        text.push_str(probe.group);
    }
    text
}

/// The 7 verbs that, on every resource of every group, Polaris and most
/// reviewers treat as full control.
const FULL_CONTROL_VERBS: [&str; 7] = [
    "get", "list", "watch", "create", "update", "patch", "delete",
];

/// Whether a rule gives full control of every resource of every group:
/// `*` verbs (or all of get, list, watch, create, update, patch and delete)
/// on `*` resources in `*` apiGroups. Literal wildcards only: this is about
/// what the rule says, not one request.
pub fn is_full_control(rule: &Rule) -> bool {
    let all = |items: &[String]| items.iter().any(|i| i == ALL);
    all(&rule.api_groups)
        && all(&rule.resources)
        && rule.resource_names.is_empty()
        && (all(&rule.verbs)
            || FULL_CONTROL_VERBS
                .iter()
                .all(|v| rule.verbs.iter().any(|r| r == v)))
}

/// Whether a rule is `*` verbs on `*` resources in `*` groups (what
/// `cluster-admin` holds).
pub fn is_wildcard_everything(rule: &Rule) -> bool {
    let all = |items: &[String]| items.iter().any(|i| i == ALL);
    all(&rule.api_groups)
        && all(&rule.resources)
        && all(&rule.verbs)
        && rule.resource_names.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(rule: &Rule) -> Vec<RiskKind> {
        risks_of_rule(rule).into_iter().map(|h| h.kind).collect()
    }

    #[test]
    fn risks_follow_authorizer_matching() {
        // `pods` does not grant `pods/exec`.
        let pods = Rule::resource(&["create"], &[""], &["pods"]);
        assert_eq!(kinds(&pods), [RiskKind::CreatePods]);
        // `*/exec` does.
        let any_exec = Rule::resource(&["create"], &[""], &["*/exec"]);
        assert_eq!(kinds(&any_exec), [RiskKind::PodExecAttach]);
        // Core group only: apps/secrets is not a secret.
        let apps_secrets = Rule::resource(&["get"], &["apps"], &["secrets"]);
        assert!(kinds(&apps_secrets).is_empty());
        let star_group = Rule::resource(&["get"], &["*"], &["secrets"]);
        assert_eq!(kinds(&star_group), [RiskKind::SecretsRead]);
    }

    #[test]
    fn name_limited_rules_grant_less() {
        let named = Rule::resource(&["get", "create"], &[""], &["secrets"]).with_names(&["tls"]);
        let hits = risks_of_rule(&named);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].kind, RiskKind::SecretsRead);
        assert_eq!(hits[0].severity(), Severity::Medium);
        assert_eq!(hits[0].describe(), "get secrets (only names tls)");
        let create_named = Rule::resource(&["create"], &[""], &["pods"]).with_names(&["p"]);
        assert!(kinds(&create_named).is_empty());
    }

    #[test]
    fn impersonation_of_user_extras() {
        let extras = Rule::resource(
            &["impersonate"],
            &["authentication.k8s.io"],
            &["userextras/scopes"],
        );
        assert_eq!(kinds(&extras), [RiskKind::Impersonate]);
        let none = Rule::resource(
            &["impersonate"],
            &["authentication.k8s.io"],
            &["userextras"],
        );
        assert!(kinds(&none).is_empty());
    }

    #[test]
    fn a_namespaced_grant_never_grants_cluster_scoped_probes() {
        let proxy = Rule::resource(&["get"], &[""], &["nodes/proxy"]);
        assert_eq!(kinds(&proxy), [RiskKind::NodesProxy]);
        assert!(risks_of_rule_in(&proxy, Some("shop")).is_empty());
        // Impersonating service accounts is asked in their namespace; users
        // and groups without one.
        let impersonate = Rule::resource(&["impersonate"], &[""], &["users", "serviceaccounts"]);
        let hits = risks_of_rule_in(&impersonate, Some("shop"));
        assert_eq!(hits[0].granted, ["impersonate serviceaccounts"]);
        let everything = risks_of_rule(&impersonate);
        assert_eq!(
            everything[0].granted,
            ["impersonate users", "impersonate serviceaccounts"]
        );
        // `bind` is checked in the binding's namespace, clusterroles included.
        let bind = Rule::resource(&["bind"], &["rbac.authorization.k8s.io"], &["clusterroles"]);
        assert_eq!(
            risks_of_rule_in(&bind, Some("shop"))
                .iter()
                .map(|h| h.kind)
                .collect::<Vec<_>>(),
            [RiskKind::BindRoles]
        );
    }

    #[test]
    fn a_namespaced_grant_on_namespaces_is_its_own_namespace() {
        let manage = Rule::resource(&["patch", "delete"], &[""], &["namespaces"]);
        let in_shop: Vec<RiskKind> = risks_of_rule_in(&manage, Some("shop"))
            .iter()
            .map(|h| h.kind)
            .collect();
        assert_eq!(
            in_shop,
            [RiskKind::NamespacesPatch, RiskKind::NamespacesDelete]
        );
        assert!(risk(RiskKind::NamespacesDelete).on_namespace_itself());
        assert!(!risk(RiskKind::SecretsRead).on_namespace_itself());
        // Names: the binding's namespace must be among them, and then it is
        // the whole grant (no lower severity).
        let named = manage.clone().with_names(&["shop"]);
        let hits = risks_of_rule_in(&named, Some("shop"));
        assert_eq!(hits.len(), 2);
        assert!(hits[0].names.is_empty());
        assert_eq!(hits[0].severity(), Severity::High);
        let other = manage.with_names(&["other"]);
        assert!(risks_of_rule_in(&other, Some("shop")).is_empty());
        assert_eq!(risks_of_rule(&other).len(), 2);
    }

    #[test]
    fn full_control_and_everything() {
        let all = Rule::resource(&["*"], &["*"], &["*"]);
        assert!(is_full_control(&all) && is_wildcard_everything(&all));
        let seven = Rule::resource(
            &[
                "get", "list", "watch", "create", "update", "patch", "delete",
            ],
            &["*"],
            &["*"],
        );
        assert!(is_full_control(&seven) && !is_wildcard_everything(&seven));
        let core = Rule::resource(&["*"], &[""], &["*"]);
        assert!(!is_full_control(&core));
    }
}
