//! Dangerous permissions: what an attacker holding a rule can do with it.
//!
//! Each risk is a set of probes (verb, API group, resource/subresource). A
//! rule grants a risk when the authorizer's own matching says it allows one
//! of the probes, so `*` verbs, `*` groups, `*` resources and `*/sub` forms
//! count exactly as the API server counts them, and `pods` never stands for
//! `pods/exec`. A rule limited by `resourceNames` grants the risk only for
//! those names; such a rule never grants a `create` (a create request has no
//! name).

use crate::engine::Severity;

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
    DeleteEventsLogs,
}

/// One request shape a risk is about.
#[derive(Clone, Copy, Debug)]
pub struct Probe {
    pub verbs: &'static [&'static str],
    pub group: &'static str,
    pub resource: &'static str,
    /// `""` for the resource itself; `"*"` for any subresource of it.
    pub subresource: &'static str,
}

const fn probe(
    verbs: &'static [&'static str],
    group: &'static str,
    resource: &'static str,
) -> Probe {
    Probe {
        verbs,
        group,
        resource,
        subresource: "",
    }
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
        probes: &[sub(
            &["get", "create", "update", "patch", "delete"],
            "",
            "nodes",
            "proxy",
        )],
    },
    Risk {
        kind: RiskKind::Impersonate,
        ability: "impersonate other identities",
        severity: Severity::Critical,
        probes: &[
            probe(&["impersonate"], "", "users"),
            probe(&["impersonate"], "", "groups"),
            probe(&["impersonate"], "", "serviceaccounts"),
            probe(&["impersonate"], "authentication.k8s.io", "uids"),
            sub(&["impersonate"], "authentication.k8s.io", "userextras", "*"),
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
            probe(&["escalate"], "rbac.authorization.k8s.io", "clusterroles"),
        ],
    },
    Risk {
        kind: RiskKind::ManageBindings,
        ability: "create or change role bindings",
        severity: Severity::Medium,
        probes: &[
            probe(WRITE_VERBS, "rbac.authorization.k8s.io", "rolebindings"),
            probe(
                WRITE_VERBS,
                "rbac.authorization.k8s.io",
                "clusterrolebindings",
            ),
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
        probes: &[sub(
            &["update", "patch"],
            "certificates.k8s.io",
            "certificatesigningrequests",
            "approval",
        )],
    },
    Risk {
        kind: RiskKind::WebhookConfigs,
        ability: "change admission webhook configurations",
        severity: Severity::High,
        probes: &[
            probe(
                &["create", "update", "patch", "delete"],
                "admissionregistration.k8s.io",
                "mutatingwebhookconfigurations",
            ),
            probe(
                &["create", "update", "patch", "delete"],
                "admissionregistration.k8s.io",
                "validatingwebhookconfigurations",
            ),
        ],
    },
    Risk {
        kind: RiskKind::PersistentVolumes,
        ability: "create persistent volumes (host paths included)",
        severity: Severity::High,
        probes: &[probe(&["create"], "", "persistentvolumes")],
    },
    Risk {
        kind: RiskKind::NodesPatch,
        ability: "modify nodes (labels, taints)",
        severity: Severity::Medium,
        probes: &[probe(&["update", "patch"], "", "nodes")],
    },
    Risk {
        kind: RiskKind::NamespacesPatch,
        ability: "modify namespaces (Pod Security labels)",
        severity: Severity::Medium,
        probes: &[probe(&["update", "patch"], "", "namespaces")],
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

/// What `rule` grants of `risk`, if anything.
pub fn rule_grants(rule: &Rule, risk: &Risk) -> Option<RiskHit> {
    let named = !rule.resource_names.is_empty();
    let mut granted = Vec::new();
    for probe in risk.probes {
        if !rule.api_group_matches(probe.group) || !probe_resource_matches(rule, probe) {
            continue;
        }
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
    (!granted.is_empty()).then(|| RiskHit {
        kind: risk.kind,
        granted,
        names: rule.resource_names.clone(),
    })
}

/// Every risk a rule grants.
pub fn risks_of_rule(rule: &Rule) -> Vec<RiskHit> {
    RISKS
        .iter()
        .filter_map(|risk| rule_grants(rule, risk))
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
