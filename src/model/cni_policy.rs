//! Network policies of the CNI plugins' own APIs: Cilium's
//! `CiliumNetworkPolicy` / `CiliumClusterwideNetworkPolicy` and Calico's
//! `NetworkPolicy` / `GlobalNetworkPolicy`. A cluster running Cilium or
//! Calico often isolates its pods with these instead of (or besides)
//! `networking.k8s.io/v1` NetworkPolicies.
//!
//! Only what decides *which pods a policy isolates, in which direction* is
//! kept: selectors, directions and whether rules are present. The rules'
//! content (peers, ports, L7) does not change whether a pod is isolated.

use std::cell::OnceCell;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Deserialize;

use super::calico_selector::CalicoSelector;
use super::selector::selector_matches_with;

/// The labels Cilium gives a pod's endpoint besides the pod's own labels
/// (cilium `pkg/k8s/apis/cilium.io/const.go`): its namespace, its service
/// account, and its namespace's labels under a prefix.
pub const CILIUM_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const CILIUM_SERVICE_ACCOUNT_LABEL: &str = "io.cilium.k8s.policy.serviceaccount";
pub const CILIUM_NAMESPACE_LABELS_PREFIX: &str = "io.cilium.k8s.namespace.labels.";

/// The labels Calico gives a pod's workload endpoint besides the pod's own
/// labels (libcalico-go `lib/apis/v3` constants `LabelNamespace`,
/// `LabelOrchestrator`, `LabelServiceAccount`).
pub const CALICO_NAMESPACE_LABEL: &str = "projectcalico.org/namespace";
pub const CALICO_ORCHESTRATOR_LABEL: &str = "projectcalico.org/orchestrator";
pub const CALICO_SERVICE_ACCOUNT_LABEL: &str = "projectcalico.org/serviceaccount";
/// Calico's name label on namespaces and service accounts, which
/// `namespaceSelector` and `serviceAccountSelector` can match.
pub const CALICO_NAME_LABEL: &str = "projectcalico.org/name";
/// The label the API server puts on every Namespace, its name
/// (`pkg/registry/core/namespace/strategy.go`, `PrepareForCreate`): present
/// even when the Namespace object is not part of the scan.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A CiliumNetworkPolicy (namespaced) or CiliumClusterwideNetworkPolicy.
#[derive(Clone, Debug)]
pub struct CiliumPolicy {
    pub metadata: ObjectMeta,
    pub cluster_wide: bool,
    /// `spec` and every item of `specs`, in that order.
    pub rules: Vec<CiliumRule>,
}

/// One Cilium rule (`spec` or an item of `specs`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CiliumRule {
    /// Selects pods' endpoints; a rule with only a `nodeSelector` is a host
    /// policy and selects no pod.
    pub endpoint_selector: Option<LabelSelector>,
    #[serde(default)]
    pub ingress: Vec<serde_json::Value>,
    #[serde(default)]
    pub ingress_deny: Vec<serde_json::Value>,
    #[serde(default)]
    pub egress: Vec<serde_json::Value>,
    #[serde(default)]
    pub egress_deny: Vec<serde_json::Value>,
    pub enable_default_deny: Option<CiliumDefaultDeny>,
}

/// `enableDefaultDeny`: `false` for a direction makes the rule add allowances
/// without putting the endpoint into default deny.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CiliumDefaultDeny {
    pub ingress: Option<bool>,
    pub egress: Option<bool>,
}

impl CiliumRule {
    /// `(ingress, egress)`: the directions in which an endpoint this rule
    /// selects goes into default deny. Cilium's documented rule ("Policy
    /// Enforcement Modes", `Documentation/security/policy/intro.rst`): a rule
    /// that selects an endpoint and has an ingress (egress) section puts it in
    /// default deny for that direction; deny sections count too, and
    /// `enableDefaultDeny.<direction>: false` opts out.
    pub fn directions(&self) -> (bool, bool) {
        let default_deny = self.enable_default_deny.clone().unwrap_or_default();
        let ingress = !(self.ingress.is_empty() && self.ingress_deny.is_empty())
            && default_deny.ingress != Some(false);
        let egress = !(self.egress.is_empty() && self.egress_deny.is_empty())
            && default_deny.egress != Some(false);
        (ingress, egress)
    }
}

/// A Calico NetworkPolicy (namespaced) or GlobalNetworkPolicy, from
/// `projectcalico.org/v3` or the CRD form `crd.projectcalico.org/v1`.
#[derive(Clone, Debug)]
pub struct CalicoPolicy {
    pub metadata: ObjectMeta,
    pub global: bool,
    /// `spec.selector`; absent means `all()`.
    pub selector: CalicoSelector,
    /// `spec.namespaceSelector` (global policies); absent means every namespace.
    pub namespace_selector: Option<CalicoSelector>,
    /// `spec.serviceAccountSelector`; absent means every account.
    pub service_account_selector: Option<CalicoSelector>,
    /// `(ingress, egress)` after Calico's defaulting of `spec.types`.
    pub directions: (bool, bool),
    /// `doNotTrack` or `preDNAT`: such policies apply to host endpoints only.
    pub host_only: bool,
}

/// The fields of a Calico policy spec that decide what it isolates.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalicoSpec {
    pub selector: Option<String>,
    pub namespace_selector: Option<String>,
    pub service_account_selector: Option<String>,
    pub types: Option<Vec<String>>,
    pub ingress: Option<Vec<serde_json::Value>>,
    pub egress: Option<Vec<serde_json::Value>>,
    pub do_not_track: Option<bool>,
    #[serde(rename = "preDNAT")]
    pub pre_dnat: Option<bool>,
}

impl CalicoSpec {
    /// `spec.types` as Calico defaults it when unset (projectcalico/api
    /// `pkg/apis/projectcalico/v3/policy_common.go`, field `Types`):
    /// `[Ingress]` when there are no egress rules, `[Egress]` when there are
    /// egress rules and no ingress rules, both when there are both.
    pub fn directions(&self) -> (bool, bool) {
        match &self.types {
            Some(types) if !types.is_empty() => (
                types.iter().any(|t| t.eq_ignore_ascii_case("Ingress")),
                types.iter().any(|t| t.eq_ignore_ascii_case("Egress")),
            ),
            _ => {
                let has = |rules: &Option<Vec<serde_json::Value>>| {
                    rules.as_ref().is_some_and(|r| !r.is_empty())
                };
                let egress = has(&self.egress);
                (!egress || has(&self.ingress), egress)
            }
        }
    }
}

/// What a CNI policy is matched against: one pod's endpoint.
pub struct Endpoint<'a> {
    pub namespace: &'a str,
    pub labels: Option<&'a BTreeMap<String, String>>,
    /// Labels of the pod's Namespace object, when it is part of the evaluation.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    pub service_account: &'a str,
    /// Labels of the pod's ServiceAccount object, when it is part of the evaluation.
    pub service_account_labels: Option<&'a BTreeMap<String, String>>,
    /// The endpoint's labels as each plugin sees them, built on first use
    /// and shared by every policy the endpoint is matched against.
    cilium: OnceCell<BTreeMap<String, String>>,
    calico: OnceCell<BTreeMap<String, String>>,
}

impl<'a> Endpoint<'a> {
    pub fn new(
        namespace: &'a str,
        labels: Option<&'a BTreeMap<String, String>>,
        namespace_labels: Option<&'a BTreeMap<String, String>>,
        service_account: &'a str,
        service_account_labels: Option<&'a BTreeMap<String, String>>,
    ) -> Self {
        Endpoint {
            namespace,
            labels,
            namespace_labels,
            service_account,
            service_account_labels,
            cilium: OnceCell::new(),
            calico: OnceCell::new(),
        }
    }

    /// The labels Cilium's endpoint of this pod carries (without their
    /// `k8s:` source prefix).
    fn cilium_labels(&self) -> &BTreeMap<String, String> {
        self.cilium.get_or_init(|| self.build_cilium_labels())
    }

    fn calico_labels(&self) -> &BTreeMap<String, String> {
        self.calico.get_or_init(|| self.build_calico_labels())
    }

    /// The Namespace's labels, with the name label the API server adds.
    fn namespace_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.namespace_labels.cloned().unwrap_or_default();
        labels.insert(NAMESPACE_NAME_LABEL.to_owned(), self.namespace.to_owned());
        labels
    }

    fn build_cilium_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.cloned().unwrap_or_default();
        for (key, value) in self.namespace_labels() {
            labels.insert(format!("{CILIUM_NAMESPACE_LABELS_PREFIX}{key}"), value);
        }
        labels.insert(CILIUM_NAMESPACE_LABEL.to_owned(), self.namespace.to_owned());
        labels.insert(
            CILIUM_SERVICE_ACCOUNT_LABEL.to_owned(),
            self.service_account.to_owned(),
        );
        labels
    }

    /// The labels Calico's workload endpoint of this pod carries.
    fn build_calico_labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.labels.cloned().unwrap_or_default();
        labels.insert(CALICO_NAMESPACE_LABEL.to_owned(), self.namespace.to_owned());
        labels.insert(CALICO_ORCHESTRATOR_LABEL.to_owned(), "k8s".to_owned());
        labels.insert(
            CALICO_SERVICE_ACCOUNT_LABEL.to_owned(),
            self.service_account.to_owned(),
        );
        labels
    }
}

impl CiliumPolicy {
    /// `(ingress, egress)` isolation this policy gives the endpoint; `None`
    /// when no rule of it selects the endpoint.
    pub fn isolation(&self, endpoint: &Endpoint<'_>) -> Option<(bool, bool)> {
        if !self.cluster_wide
            && self.metadata.namespace.as_deref().unwrap_or("") != endpoint.namespace
        {
            return None;
        }
        let labels = endpoint.cilium_labels();
        self.rules
            .iter()
            .filter(|rule| {
                rule.endpoint_selector
                    .as_ref()
                    .is_some_and(|s| cilium_selector_matches(s, labels))
            })
            .map(CiliumRule::directions)
            .reduce(|(i, e), (ri, re)| (i || ri, e || re))
    }
}

impl CalicoPolicy {
    /// `(ingress, egress)` isolation this policy gives the endpoint; `None`
    /// when the policy does not select it.
    pub fn isolation(&self, endpoint: &Endpoint<'_>) -> Option<(bool, bool)> {
        if self.host_only {
            return None;
        }
        if !self.global && self.metadata.namespace.as_deref().unwrap_or("") != endpoint.namespace {
            return None;
        }
        if !self.selector.matches(endpoint.calico_labels()) {
            return None;
        }
        if let Some(selector) = &self.namespace_selector {
            let mut labels = endpoint.namespace_labels();
            labels.insert(CALICO_NAME_LABEL.to_owned(), endpoint.namespace.to_owned());
            if !selector.matches(&labels) {
                return None;
            }
        }
        if let Some(selector) = &self.service_account_selector {
            let mut labels = endpoint.service_account_labels.cloned().unwrap_or_default();
            labels.insert(
                CALICO_NAME_LABEL.to_owned(),
                endpoint.service_account.to_owned(),
            );
            if !selector.matches(&labels) {
                return None;
            }
        }
        Some(self.directions)
    }
}

/// A Cilium endpoint selector applied to an endpoint's labels.
///
/// Keys may carry a source prefix (`k8s:app`, `any:app`); pods' labels all
/// come from the `k8s` source, so `k8s:` and `any:` (and no prefix) match
/// them and any other source (`reserved:`, `container:`, `cidr:`) does not
/// (cilium `pkg/labels`, `LabelSourceK8s`, `LabelSourceAny`).
fn cilium_selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector_matches_with(selector, |key| match key.split_once(':') {
        Some(("k8s" | "any", rest)) => Some(labels.get(rest)),
        // A label of another source is never on a pod.
        Some(_) => None,
        None => Some(labels.get(key)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::selector::labels;

    fn selector(json: serde_json::Value) -> LabelSelector {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn cilium_selector_reads_source_prefixes() {
        let pod = labels(&[("app", "web"), (CILIUM_NAMESPACE_LABEL, "shop")]);
        let matching = [
            serde_json::json!({"matchLabels": {"app": "web"}}),
            serde_json::json!({"matchLabels": {"k8s:app": "web"}}),
            serde_json::json!({"matchLabels": {"any:app": "web"}}),
            serde_json::json!({"matchLabels": {"k8s:io.kubernetes.pod.namespace": "shop"}}),
            serde_json::json!({"matchExpressions": [{"key": "reserved:host", "operator": "DoesNotExist"}]}),
            serde_json::json!({}),
        ];
        for json in matching {
            assert!(
                cilium_selector_matches(&selector(json.clone()), &pod),
                "{json}"
            );
        }
        let other = [
            serde_json::json!({"matchLabels": {"reserved:host": ""}}),
            serde_json::json!({"matchLabels": {"app": "db"}}),
            serde_json::json!({"matchLabels": {"k8s:io.kubernetes.pod.namespace": "other"}}),
        ];
        for json in other {
            assert!(
                !cilium_selector_matches(&selector(json.clone()), &pod),
                "{json}"
            );
        }
    }

    #[test]
    fn cilium_directions_follow_sections_and_default_deny() {
        let rule = |json: serde_json::Value| serde_json::from_value::<CiliumRule>(json).unwrap();
        assert_eq!(
            rule(serde_json::json!({"ingress": [{}]})).directions(),
            (true, false)
        );
        assert_eq!(
            rule(serde_json::json!({"egressDeny": [{}]})).directions(),
            (false, true)
        );
        assert_eq!(
            rule(serde_json::json!({"ingress": []})).directions(),
            (false, false)
        );
        let opted_out = serde_json::json!({
            "ingress": [{}], "egress": [{}],
            "enableDefaultDeny": {"ingress": false}
        });
        assert_eq!(rule(opted_out).directions(), (false, true));
    }

    #[test]
    fn calico_types_default_from_rules() {
        let spec = |json: serde_json::Value| serde_json::from_value::<CalicoSpec>(json).unwrap();
        assert_eq!(spec(serde_json::json!({})).directions(), (true, false));
        assert_eq!(
            spec(serde_json::json!({"ingress": [{}]})).directions(),
            (true, false)
        );
        assert_eq!(
            spec(serde_json::json!({"egress": [{}]})).directions(),
            (false, true)
        );
        assert_eq!(
            spec(serde_json::json!({"ingress": [{}], "egress": [{}]})).directions(),
            (true, true)
        );
        assert_eq!(
            spec(serde_json::json!({"types": ["Egress"], "ingress": [{}]})).directions(),
            (false, true)
        );
    }

    #[test]
    fn decoding_reads_spec_and_specs_and_names_a_bad_selector() {
        use crate::model::Resource;
        let cilium = serde_json::json!({
            "metadata": {"name": "p", "namespace": "shop"},
            "spec": {"endpointSelector": {}, "ingress": [{}]},
            "specs": [{"endpointSelector": {}, "egress": [{}]}, {"nodeSelector": {}}]
        });
        let Ok(Some(Resource::CiliumPolicy(policy))) =
            Resource::decode("cilium.io/v2", "CiliumNetworkPolicy", cilium)
        else {
            panic!("a CiliumNetworkPolicy decodes");
        };
        assert_eq!(policy.rules.len(), 3);
        assert!(!policy.cluster_wide);

        let calico = serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": "app = 'web'"}
        });
        let error = Resource::decode("projectcalico.org/v3", "NetworkPolicy", calico)
            .expect_err("a malformed selector is an input error");
        assert_eq!(error.path, "spec.selector");
        assert_eq!(error.name, "web");
        assert!(
            error.message.starts_with("invalid Calico selector"),
            "{}",
            error.message
        );
    }
}
