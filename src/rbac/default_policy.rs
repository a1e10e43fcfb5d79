//! The API server's default RBAC policy, object by object, to tell a real
//! default object from one that only claims to be one.
//!
//! Anyone who may create RBAC objects can name one `system:…` or label it
//! `kubernetes.io/bootstrapping=rbac-defaults`. Findings on such an object
//! are suppressed only when it is the default policy's: same kind, name and
//! namespace, and it grants no more than the default does (rules, or
//! aggregation selectors, and aggregation labels of a role; role and
//! subjects of a binding). Anything else that claims to be a default is
//! reported, flagged as claiming it.
//!
//! `default_policy.json` holds the objects a freshly started Kubernetes
//! v1.35 API server creates with its default feature gates
//! (`plugin/pkg/auth/authorizer/rbac/bootstrappolicy/` in the Kubernetes
//! source). `tests/e2e_rbac_defaults.rs` compares it with a real API server
//! and rewrites it with `PALISADE_WRITE_DEFAULT_POLICY=1`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::aggregation::selects;
use super::bootstrap::{BOOTSTRAP_LABEL, BOOTSTRAP_LABEL_VALUE, SYSTEM_PREFIX, USER_FACING_ROLES};
use super::rule::{ALL, Rule};

/// The Kubernetes version whose default policy `default_policy.json` holds.
pub const POLICY_VERSION: &str = "v1.35";

/// Prefix of the labels that aggregate a ClusterRole into another.
const AGGREGATE_LABEL_PREFIX: &str = "rbac.authorization.k8s.io/aggregate-to-";

/// One RBAC object reduced to what decides what it grants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyObject {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    /// `rbac.authorization.k8s.io/aggregate-to-*` labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aggregate_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregation_rule: Option<AggregationRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<PolicyRule>,
    /// `Kind/name` of a binding's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_ref: Option<String>,
    /// `Kind name` or `ServiceAccount namespace/name` of a binding's subjects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

impl PolicyObject {
    fn new(kind: &str, meta: &ObjectMeta) -> PolicyObject {
        let aggregate_labels = meta
            .labels
            .iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(AGGREGATE_LABEL_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        PolicyObject {
            kind: kind.to_owned(),
            namespace: meta.namespace.clone().filter(|ns| !ns.is_empty()),
            name: meta.name.clone().unwrap_or_default(),
            aggregate_labels,
            aggregation_rule: None,
            rules: Vec::new(),
            role_ref: None,
            subjects: Vec::new(),
        }
    }

    pub fn of_cluster_role(role: &ClusterRole) -> PolicyObject {
        let mut object = PolicyObject::new("ClusterRole", &role.metadata);
        object.aggregation_rule = role.aggregation_rule.clone();
        // An aggregated role's rules are the aggregation controller's.
        if object.aggregation_rule.is_none() {
            object.rules = role.rules.clone().unwrap_or_default();
        }
        object
    }

    pub fn of_role(role: &Role) -> PolicyObject {
        let mut object = PolicyObject::new("Role", &role.metadata);
        object.rules = role.rules.clone().unwrap_or_default();
        object
    }

    pub fn of_cluster_role_binding(binding: &ClusterRoleBinding) -> PolicyObject {
        let mut object = PolicyObject::new("ClusterRoleBinding", &binding.metadata);
        object.role_ref = Some(format!(
            "{}/{}",
            binding.role_ref.kind, binding.role_ref.name
        ));
        object.subjects = subjects(binding.subjects.iter().flatten(), None);
        object
    }

    pub fn of_role_binding(binding: &RoleBinding) -> PolicyObject {
        let mut object = PolicyObject::new("RoleBinding", &binding.metadata);
        object.role_ref = Some(format!(
            "{}/{}",
            binding.role_ref.kind, binding.role_ref.name
        ));
        let namespace = binding.metadata.namespace.as_deref();
        object.subjects = subjects(binding.subjects.iter().flatten(), namespace);
        object
    }

    fn key(&self) -> ObjectKey {
        (self.kind.clone(), self.namespace.clone(), self.name.clone())
    }

    /// Whether this object grants no more than `default`, the default
    /// object of the same kind and name (`default_rules`: its rules, an
    /// aggregated role's aggregated ones): its aggregation labels among the
    /// default's; the same aggregation selectors, or none and rules the
    /// default's cover; for a binding the same role and its subjects among
    /// the default's.
    fn grants_no_more_than(&self, default: &PolicyObject, default_rules: &[Rule]) -> bool {
        let rules_covered = match &self.aggregation_rule {
            Some(selectors) => default.aggregation_rule.as_ref() == Some(selectors),
            None => self
                .rules
                .iter()
                .all(|rule| covered(&Rule::from(rule), default_rules)),
        };
        rules_covered
            && self
                .aggregate_labels
                .iter()
                .all(|(k, v)| default.aggregate_labels.get(k) == Some(v))
            && self.role_ref == default.role_ref
            && self.subjects.iter().all(|s| default.subjects.contains(s))
    }
}

/// Whether every request `rule` allows, one of `rules` allows too: each
/// combination of its verbs, groups and resources (or verbs and URLs) is
/// allowed by one rule, with the authorizer's own wildcards.
fn covered(rule: &Rule, rules: &[Rule]) -> bool {
    let names_covered = |other: &Rule| {
        other.resource_names.is_empty()
            || (!rule.resource_names.is_empty()
                && rule
                    .resource_names
                    .iter()
                    .all(|n| other.resource_names.contains(n)))
    };
    let resources = rule.verbs.iter().all(|verb| {
        rule.api_groups.iter().all(|group| {
            rule.resources.iter().all(|resource| {
                rules.iter().any(|other| {
                    other.verb_matches(verb)
                        && other.api_group_matches(group)
                        && resource_covered(resource, other)
                        && names_covered(other)
                })
            })
        })
    });
    let urls = rule.verbs.iter().all(|verb| {
        rule.non_resource_urls.iter().all(|url| {
            rules
                .iter()
                .any(|other| other.verb_matches(verb) && url_covered(url, other))
        })
    });
    resources && urls
}

/// A resource of a rule (`pods`, `pods/exec`, `*/exec`, `*`) within another
/// rule's resources.
fn resource_covered(resource: &str, other: &Rule) -> bool {
    other.resources.iter().any(|r| {
        r == ALL
            || r == resource
            || resource
                .split_once('/')
                .is_some_and(|(_, sub)| r.strip_prefix("*/") == Some(sub))
    })
}

/// A URL or URL prefix pattern (`/logs/*`) within another rule's URLs.
fn url_covered(url: &str, other: &Rule) -> bool {
    other.non_resource_urls.iter().any(|u| {
        u == ALL || u == url || (u.ends_with('*') && url.starts_with(u.trim_end_matches('*')))
    })
}

fn subjects<'a>(
    subjects: impl Iterator<Item = &'a k8s_openapi::api::rbac::v1::Subject>,
    binding_namespace: Option<&str>,
) -> Vec<String> {
    subjects
        .map(|s| match s.kind.as_str() {
            "ServiceAccount" => format!(
                "ServiceAccount {}/{}",
                s.namespace
                    .as_deref()
                    .filter(|ns| !ns.is_empty())
                    .or(binding_namespace)
                    .unwrap_or(""),
                s.name
            ),
            kind => format!("{kind} {}", s.name),
        })
        .collect()
}

/// The stored policy file.
#[derive(Debug, Serialize, Deserialize)]
pub struct PolicyFile {
    /// The API server version it was read from.
    pub kubernetes: String,
    pub objects: Vec<PolicyObject>,
}

/// Kind, namespace and name.
type ObjectKey = (String, Option<String>, String);

/// The default objects, and the rules each default role grants.
struct Defaults {
    objects: BTreeMap<ObjectKey, PolicyObject>,
    rules: BTreeMap<ObjectKey, Vec<Rule>>,
}

static DEFAULT_POLICY: LazyLock<Defaults> = LazyLock::new(|| {
    let file: PolicyFile = serde_json::from_str(include_str!("default_policy.json"))
        .expect("default_policy.json is valid (checked by a unit test)");
    let objects: BTreeMap<ObjectKey, PolicyObject> =
        file.objects.into_iter().map(|o| (o.key(), o)).collect();
    let rules = granted_rules(&objects);
    Defaults { objects, rules }
});

/// Each default role's rules; for an aggregated ClusterRole the union of
/// the rules of the default ClusterRoles it selects, to a fixed point
/// (`admin` selects `edit`, which selects `view`).
fn granted_rules(objects: &BTreeMap<ObjectKey, PolicyObject>) -> BTreeMap<ObjectKey, Vec<Rule>> {
    let mut rules: BTreeMap<ObjectKey, Vec<Rule>> = objects
        .iter()
        .map(|(key, o)| (key.clone(), o.rules.iter().map(Rule::from).collect()))
        .collect();
    let cluster_roles: Vec<&PolicyObject> = objects
        .values()
        .filter(|o| o.kind == "ClusterRole")
        .collect();
    for _ in 0..=cluster_roles.len() {
        let mut changed = false;
        for role in &cluster_roles {
            let Some(aggregation) = &role.aggregation_rule else {
                continue;
            };
            let selectors = aggregation.cluster_role_selectors.as_deref().unwrap_or(&[]);
            let mut union: Vec<Rule> = Vec::new();
            for other in &cluster_roles {
                if other.name != role.name && selects(selectors, &other.aggregate_labels) {
                    for rule in &rules[&other.key()] {
                        if !union.contains(rule) {
                            union.push(rule.clone());
                        }
                    }
                }
            }
            let current = rules.get_mut(&role.key()).expect("every object has rules");
            if *current != union {
                *current = union;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    rules
}

/// How an RBAC object relates to the default policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefaultStatus {
    /// An object of the user's own.
    Own,
    /// The default policy's object (or less): findings on it are suppressed.
    Default(String),
    /// Claims to be a default (label, `system:` name, or the name of a
    /// default object) but grants more than that default, or is none.
    Claims(String),
}

impl DefaultStatus {
    /// The reason findings are suppressed, for a genuine default.
    pub fn default_reason(&self) -> Option<String> {
        match self {
            DefaultStatus::Default(reason) => Some(reason.clone()),
            _ => None,
        }
    }

    /// What the object claims and why the claim fails.
    pub fn claim(&self) -> Option<String> {
        match self {
            DefaultStatus::Claims(text) => Some(text.clone()),
            _ => None,
        }
    }
}

pub fn cluster_role_status(role: &ClusterRole) -> DefaultStatus {
    status_of("ClusterRole", &role.metadata, || {
        PolicyObject::of_cluster_role(role)
    })
}

pub fn role_status(role: &Role) -> DefaultStatus {
    status_of("Role", &role.metadata, || PolicyObject::of_role(role))
}

pub fn cluster_role_binding_status(binding: &ClusterRoleBinding) -> DefaultStatus {
    status_of("ClusterRoleBinding", &binding.metadata, || {
        PolicyObject::of_cluster_role_binding(binding)
    })
}

pub fn role_binding_status(binding: &RoleBinding) -> DefaultStatus {
    status_of("RoleBinding", &binding.metadata, || {
        PolicyObject::of_role_binding(binding)
    })
}

/// Compares an object with the default policy, reducing it (a copy of its
/// rules or subjects) only when it claims to be a default.
fn status_of(
    kind: &str,
    meta: &ObjectMeta,
    reduce: impl FnOnce() -> PolicyObject,
) -> DefaultStatus {
    let name = meta.name.as_deref().unwrap_or("");
    let key: ObjectKey = (
        kind.to_owned(),
        meta.namespace.clone().filter(|ns| !ns.is_empty()),
        name.to_owned(),
    );
    let default = DEFAULT_POLICY.objects.get(&key);
    let Some(claim) = claim(kind, name, meta, default.is_some()) else {
        return DefaultStatus::Own;
    };
    status(&reduce(), claim)
}

/// Compares an object that claims to be a default (`claim`: why) with it.
fn status(object: &PolicyObject, claim: String) -> DefaultStatus {
    let key = object.key();
    let default = DEFAULT_POLICY.objects.get(&key);
    let default_rules = DEFAULT_POLICY
        .rules
        .get(&key)
        .map_or(&[][..], Vec::as_slice);
    match default {
        Some(default) if object.grants_no_more_than(default, default_rules) => {
            DefaultStatus::Default(format!(
                "part of the Kubernetes default RBAC policy ({claim}; matches the {POLICY_VERSION} default)"
            ))
        }
        Some(_) => DefaultStatus::Claims(format!(
            "claims to be a default ({claim}) but grants more than the {POLICY_VERSION} default \
             {} `{}`",
            object.kind, object.name
        )),
        None => DefaultStatus::Claims(format!(
            "claims to be a default ({claim}) but the {POLICY_VERSION} default policy has no {} \
             of that name",
            object.kind
        )),
    }
}

/// Why an object looks like part of the default policy, if it does.
fn claim(kind: &str, name: &str, meta: &ObjectMeta, named_like_a_default: bool) -> Option<String> {
    let labelled = meta
        .labels
        .as_ref()
        .and_then(|l| l.get(BOOTSTRAP_LABEL))
        .is_some_and(|v| v == BOOTSTRAP_LABEL_VALUE);
    if labelled {
        return Some(format!("label {BOOTSTRAP_LABEL}={BOOTSTRAP_LABEL_VALUE}"));
    }
    if name.starts_with(SYSTEM_PREFIX) {
        return Some("the `system:` name prefix is reserved for the control plane".to_owned());
    }
    if kind == "ClusterRole" && USER_FACING_ROLES.contains(&name) {
        return Some(format!(
            "`{name}` is a default ClusterRole the API server reconciles at startup"
        ));
    }
    named_like_a_default.then(|| format!("named like the default {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster_role(yaml: &str) -> ClusterRole {
        serde_norway::from_str(yaml).unwrap()
    }

    fn status_of_cluster_role(role: &ClusterRole) -> DefaultStatus {
        cluster_role_status(role)
    }

    #[test]
    fn the_policy_file_is_valid_and_complete() {
        let file: PolicyFile = serde_json::from_str(include_str!("default_policy.json")).unwrap();
        assert!(
            file.kubernetes.starts_with(POLICY_VERSION),
            "{}",
            file.kubernetes
        );
        assert!(
            DEFAULT_POLICY.objects.len() > 100,
            "{}",
            DEFAULT_POLICY.objects.len()
        );
        for name in USER_FACING_ROLES {
            assert!(
                DEFAULT_POLICY.objects.contains_key(&(
                    "ClusterRole".to_owned(),
                    None,
                    name.to_owned()
                )),
                "{name}"
            );
        }
    }

    #[test]
    fn a_default_object_as_the_api_server_writes_it_is_the_default() {
        let view = cluster_role(
            "metadata: {name: view, labels: {kubernetes.io/bootstrapping: rbac-defaults, rbac.authorization.k8s.io/aggregate-to-edit: 'true'}}\naggregationRule: {clusterRoleSelectors: [{matchLabels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}}]}\nrules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]",
        );
        // An aggregated role's rules are the controller's, not compared.
        assert!(matches!(
            status_of_cluster_role(&view),
            DefaultStatus::Default(_)
        ));
        let admin = cluster_role(
            "metadata: {name: cluster-admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}}\nrules: [{nonResourceURLs: ['*'], verbs: ['*']}, {apiGroups: ['*'], resources: ['*'], verbs: ['*']}]",
        );
        assert!(matches!(
            status_of_cluster_role(&admin),
            DefaultStatus::Default(_)
        ));
    }

    #[test]
    fn a_default_name_with_more_rules_claims_to_be_a_default() {
        let node = cluster_role(
            "metadata: {name: 'system:node-proxier', labels: {kubernetes.io/bootstrapping: rbac-defaults}}\nrules: [{apiGroups: [''], resources: [secrets], verbs: [get]}]",
        );
        let status = status_of_cluster_role(&node);
        let claim = status.claim().expect("claims");
        assert!(
            claim.contains("grants more than the v1.35 default ClusterRole `system:node-proxier`"),
            "{claim}"
        );
        // Fewer rules than the default grant nothing more: still the default.
        let fewer = cluster_role("metadata: {name: 'system:node-proxier'}\nrules: []");
        assert!(matches!(
            status_of_cluster_role(&fewer),
            DefaultStatus::Default(_)
        ));
        // A changed aggregation label changes what `admin` holds.
        let relabelled = cluster_role(
            "metadata: {name: view, labels: {rbac.authorization.k8s.io/aggregate-to-edit: 'true', rbac.authorization.k8s.io/aggregate-to-admin: 'true'}}\naggregationRule: {clusterRoleSelectors: [{matchLabels: {rbac.authorization.k8s.io/aggregate-to-view: 'true'}}]}",
        );
        assert!(status_of_cluster_role(&relabelled).claim().is_some());
    }

    #[test]
    fn a_label_or_prefix_on_an_unknown_object_claims_to_be_a_default() {
        let labelled = cluster_role(
            "metadata: {name: ci-admin, labels: {kubernetes.io/bootstrapping: rbac-defaults}}\nrules: []",
        );
        let claim = status_of_cluster_role(&labelled).claim().unwrap();
        assert!(
            claim.contains("label kubernetes.io/bootstrapping=rbac-defaults"),
            "{claim}"
        );
        assert!(claim.contains("has no ClusterRole of that name"), "{claim}");
        let prefixed = cluster_role("metadata: {name: 'system:ci'}\nrules: []");
        assert!(status_of_cluster_role(&prefixed).claim().is_some());
        let own = cluster_role("metadata: {name: ci}\nrules: []");
        assert_eq!(status_of_cluster_role(&own), DefaultStatus::Own);
    }

    #[test]
    fn rules_are_compared_by_what_they_allow() {
        // `*` covers a narrower rule.
        let narrow_admin = cluster_role(
            "metadata: {name: cluster-admin}\nrules: [{apiGroups: [''], resources: [pods/exec], verbs: [create]}, {nonResourceURLs: [/healthz], verbs: [get]}]",
        );
        assert!(matches!(
            status_of_cluster_role(&narrow_admin),
            DefaultStatus::Default(_)
        ));
        // Two default rules together cover one written as their union.
        let node = cluster_role(
            "metadata: {name: 'system:node'}\nrules: [{apiGroups: [''], resources: [nodes], verbs: [get, create, patch, update]}]",
        );
        assert!(matches!(
            status_of_cluster_role(&node),
            DefaultStatus::Default(_)
        ));
        // An aggregated default covers the rules of the roles it aggregates.
        let edit = cluster_role(
            "metadata: {name: edit, labels: {rbac.authorization.k8s.io/aggregate-to-admin: 'true'}}\nrules: [{apiGroups: [''], resources: [secrets], verbs: [get, create]}, {apiGroups: [apps], resources: [deployments], verbs: [list]}]",
        );
        assert!(matches!(
            status_of_cluster_role(&edit),
            DefaultStatus::Default(_)
        ));
        let more = cluster_role(
            "metadata: {name: edit}\nrules: [{apiGroups: [''], resources: [nodes], verbs: [get]}]",
        );
        assert!(status_of_cluster_role(&more).claim().is_some());
        // A wildcard verb is more than any list of verbs.
        let star = cluster_role(
            "metadata: {name: 'system:node'}\nrules: [{apiGroups: [''], resources: [nodes], verbs: ['*']}]",
        );
        assert!(status_of_cluster_role(&star).claim().is_some());
        // Names: a name-limited rule is covered by an unlimited one, not the
        // other way round.
        let named = Rule::resource(&["get"], &[""], &["secrets"]).with_names(&["a"]);
        let unnamed = Rule::resource(&["get"], &[""], &["secrets"]);
        assert!(covered(&named, std::slice::from_ref(&unnamed)));
        assert!(!covered(&unnamed, &[named]));
        // `*/exec` covers `pods/exec`; a URL prefix covers a longer one.
        let any_exec = Rule::resource(&["get"], &[""], &["*/exec"]);
        assert!(covered(
            &Rule::resource(&["get"], &[""], &["pods/exec"]),
            &[any_exec]
        ));
        let logs = Rule::non_resource(&["get"], &["/logs/*"]);
        assert!(covered(
            &Rule::non_resource(&["get"], &["/logs/kube*"]),
            std::slice::from_ref(&logs)
        ));
        assert!(!covered(&Rule::non_resource(&["get"], &["/log*"]), &[logs]));
    }

    #[test]
    fn bindings_match_on_role_and_subjects() {
        let binding: ClusterRoleBinding = serde_norway::from_str(
            "metadata: {name: cluster-admin}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: 'system:masters'}]",
        )
        .unwrap();
        assert!(matches!(
            cluster_role_binding_status(&binding),
            DefaultStatus::Default(_)
        ));
        let mut more = binding.clone();
        more.subjects.as_mut().unwrap().push(
            serde_norway::from_str("{kind: ServiceAccount, name: ci, namespace: build}").unwrap(),
        );
        assert!(cluster_role_binding_status(&more).claim().is_some());
    }
}
