//! Which objects a policy's `matchConstraints` and a binding's
//! `matchResources` select, by the API server's rules: resource rules for
//! the `CREATE` and `UPDATE` of the object, exclusions, and namespace and
//! object label selectors.

use std::collections::BTreeMap;

use k8s_openapi::api::admissionregistration::v1::{MatchResources, NamedRuleWithOperations};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{Value as Json, json};

use crate::model::{Inventory, selector_matches};

/// Label the API server sets on every namespace, to its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Kinds of objects that belong to no namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "StorageClass",
    "PriorityClass",
    "CustomResourceDefinition",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "IngressClass",
    "RuntimeClass",
    "CSIDriver",
    "APIService",
];

/// What matching reads of one object.
#[derive(Clone, Debug)]
pub struct MatchTarget {
    group: String,
    version: String,
    kind: String,
    resource: String,
    name: String,
    /// `None` for a cluster-scoped object.
    pub namespace: Option<String>,
    labels: BTreeMap<String, String>,
    /// The labels namespace selectors are matched against.
    namespace_labels: BTreeMap<String, String>,
    /// The object's namespace, as `namespaceObject` (null for a
    /// cluster-scoped object).
    pub namespace_object: Option<Json>,
}

/// The plural resource name of a kind (`NetworkPolicy` is `networkpolicies`).
pub fn resource_of(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower == "endpoints" {
        return lower;
    }
    if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'o', 'u'])
    {
        return format!("{stem}ies");
    }
    if lower.ends_with('s')
        || lower.ends_with('x')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        return format!("{lower}es");
    }
    format!("{lower}s")
}

fn labels_of(object: &Json) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Json::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

impl MatchTarget {
    pub fn of(object: &Json, inventory: &Inventory) -> MatchTarget {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Json::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let api_version = text("/apiVersion");
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.clone()),
        };
        let kind = text("/kind");
        let name = text("/metadata/name");
        let labels = labels_of(object);
        let cluster_scoped = CLUSTER_SCOPED.contains(&kind.as_str());
        let namespace = (!cluster_scoped).then(|| {
            Some(text("/metadata/namespace"))
                .filter(|ns| !ns.is_empty())
                .unwrap_or_else(|| "default".into())
        });
        let (namespace_labels, namespace_object) = match &namespace {
            Some(ns) => {
                let namespace_object = inventory
                    .namespaces
                    .get(ns)
                    .and_then(|n| serde_json::to_value(n).ok())
                    .map(|mut value| {
                        if let Json::Object(map) = &mut value {
                            map.insert("apiVersion".into(), "v1".into());
                            map.insert("kind".into(), "Namespace".into());
                        }
                        value
                    })
                    .unwrap_or_else(|| {
                        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
                    });
                let mut labels = labels_of(&namespace_object);
                labels.insert(NAMESPACE_NAME_LABEL.into(), ns.clone());
                (labels, Some(namespace_object))
            }
            // A Namespace is matched by namespace selectors on its own labels.
            None if kind == "Namespace" => {
                let mut own = labels.clone();
                own.insert(NAMESPACE_NAME_LABEL.into(), name.clone());
                (own, None)
            }
            None => (BTreeMap::new(), None),
        };
        MatchTarget {
            resource: resource_of(&kind),
            group,
            version,
            kind,
            name,
            namespace,
            labels,
            namespace_labels,
            namespace_object,
        }
    }

    /// Whether `m` selects the object. A binding's empty `resourceRules`
    /// leave the policy's in force; a policy's select nothing.
    pub fn matches(&self, m: &MatchResources, binding: bool) -> bool {
        let rules = m.resource_rules.as_deref().unwrap_or_default();
        let included = if rules.is_empty() {
            binding
        } else {
            rules.iter().any(|r| self.rule_matches(r))
        };
        included
            && !m
                .exclude_resource_rules
                .iter()
                .flatten()
                .any(|r| self.rule_matches(r))
            && self.namespace_selected(m.namespace_selector.as_ref())
            && m.object_selector
                .as_ref()
                .is_none_or(|s| selector_matches(s, Some(&self.labels)))
    }

    fn namespace_selected(&self, selector: Option<&LabelSelector>) -> bool {
        let Some(selector) = selector else {
            return true;
        };
        // Cluster-scoped objects other than namespaces ignore the selector.
        if self.namespace.is_none() && self.kind != "Namespace" {
            return true;
        }
        selector_matches(selector, Some(&self.namespace_labels))
    }

    fn rule_matches(&self, rule: &NamedRuleWithOperations) -> bool {
        let any = |list: &Option<Vec<String>>, value: &str| {
            list.iter().flatten().any(|v| v == "*" || v == value)
        };
        let operation = rule
            .operations
            .iter()
            .flatten()
            .any(|o| matches!(o.as_str(), "*" | "CREATE" | "UPDATE"));
        let resource = rule
            .resources
            .iter()
            .flatten()
            .any(|r| r == "*" || r == "*/*" || *r == self.resource);
        let scope = match rule.scope.as_deref() {
            Some("Cluster") => self.namespace.is_none(),
            Some("Namespaced") => self.namespace.is_some(),
            _ => true,
        };
        let names = rule.resource_names.as_deref().unwrap_or_default();
        operation
            && resource
            && scope
            && any(&rule.api_groups, &self.group)
            && any(&rule.api_versions, &self.version)
            && (names.is_empty() || names.contains(&self.name))
    }

    /// The `request` of the object's creation, as admission sees it.
    pub fn request(&self, object: &Json) -> Json {
        json!({
            "operation": "CREATE",
            "kind": {"group": self.group, "version": self.version, "kind": self.kind},
            "resource": {"group": self.group, "version": self.version, "resource": self.resource},
            "requestKind": {"group": self.group, "version": self.version, "kind": self.kind},
            "requestResource": {"group": self.group, "version": self.version, "resource": self.resource},
            "name": self.name,
            "namespace": self.namespace.clone().unwrap_or_default(),
            "userInfo": {"username": ""},
            "dryRun": false,
            "object": object,
            "oldObject": null,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_resource_names() {
        assert_eq!(resource_of("Pod"), "pods");
        assert_eq!(resource_of("NetworkPolicy"), "networkpolicies");
        assert_eq!(resource_of("Ingress"), "ingresses");
        assert_eq!(resource_of("Gateway"), "gateways");
        assert_eq!(resource_of("Endpoints"), "endpoints");
    }
}
