//! What the checks read of a NetworkPolicy. A NetworkPolicy has no checks
//! of its own: the checks of the workloads and namespaces it isolates read
//! its name, namespace, `podSelector` and the directions it restricts,
//! never what its rules allow. A scan of a large manifest set keeps only
//! that ([`NetworkPolicyFacts`], a tenth of a decoded policy) until the
//! end; the operator and a scan that holds whole objects keep the policy.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::selector::requirements_match;
use super::selector_matches;

/// The traffic directions a NetworkPolicy restricts, as the API server
/// defaults `policyTypes`: both listed ones, or else ingress, and egress
/// when the policy has egress rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Directions {
    pub ingress: bool,
    pub egress: bool,
}

impl Directions {
    pub fn of(policy: &NetworkPolicy) -> Directions {
        let Some(spec) = &policy.spec else {
            return Directions {
                ingress: true,
                egress: false,
            };
        };
        match &spec.policy_types {
            Some(types) if !types.is_empty() => Directions {
                ingress: types.iter().any(|t| t.eq_ignore_ascii_case("Ingress")),
                egress: types.iter().any(|t| t.eq_ignore_ascii_case("Egress")),
            },
            _ => Directions {
                ingress: true,
                egress: spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
            },
        }
    }
}

/// A NetworkPolicy reduced to what the checks read of it.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkPolicyFacts {
    name: Box<str>,
    /// `""` for a policy without one.
    namespace: Box<str>,
    pod_selector: PodSelector,
    directions: Directions,
}

/// A `podSelector` (absent, it is the empty one, which selects every
/// pod). Its `matchLabels` are kept as pairs: a map of one or two labels
/// takes a B-tree node of about 500 bytes.
#[derive(Clone, Debug, Default, PartialEq)]
struct PodSelector {
    match_labels: Box<[(Box<str>, Box<str>)]>,
    match_expressions: Box<[LabelSelectorRequirement]>,
}

impl PodSelector {
    fn of(selector: LabelSelector) -> PodSelector {
        let match_labels = (selector.match_labels.into_iter().flatten())
            .map(|(key, value)| (key.into_boxed_str(), value.into_boxed_str()));
        PodSelector {
            match_labels: match_labels.collect(),
            match_expressions: selector.match_expressions.unwrap_or_default().into(),
        }
    }

    fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        let match_labels = (self.match_labels.iter()).map(|(k, v)| (&**k, &**v));
        requirements_match(match_labels, &self.match_expressions, |key| {
            Some(labels.get(key))
        })
    }
}

impl NetworkPolicyFacts {
    pub fn of(policy: NetworkPolicy) -> NetworkPolicyFacts {
        let directions = Directions::of(&policy);
        let metadata = policy.metadata;
        NetworkPolicyFacts {
            name: metadata.name.unwrap_or_default().into_boxed_str(),
            namespace: metadata.namespace.unwrap_or_default().into_boxed_str(),
            pod_selector: (policy.spec)
                .and_then(|spec| spec.pod_selector)
                .map(PodSelector::of)
                .unwrap_or_default(),
            directions,
        }
    }
}

/// A NetworkPolicy of an inventory: whole, or its [`NetworkPolicyFacts`].
#[derive(Clone, Copy, Debug)]
pub enum NetworkPolicyRef<'a> {
    Whole(&'a NetworkPolicy),
    Facts(&'a NetworkPolicyFacts),
}

impl<'a> NetworkPolicyRef<'a> {
    pub fn name(&self) -> &'a str {
        match self {
            NetworkPolicyRef::Whole(policy) => policy.metadata.name.as_deref().unwrap_or(""),
            NetworkPolicyRef::Facts(facts) => &facts.name,
        }
    }

    /// `""` for a policy without a namespace.
    pub fn namespace(&self) -> &'a str {
        match self {
            NetworkPolicyRef::Whole(policy) => policy.metadata.namespace.as_deref().unwrap_or(""),
            NetworkPolicyRef::Facts(facts) => &facts.namespace,
        }
    }

    /// Whether the policy's `podSelector` selects pods with these labels
    /// (an absent selector is the empty one, which selects every pod).
    pub fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        let empty = BTreeMap::new();
        match self {
            NetworkPolicyRef::Whole(policy) => {
                let selector = policy.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
                selector_matches(selector.unwrap_or(&LabelSelector::default()), labels)
            }
            NetworkPolicyRef::Facts(facts) => facts.pod_selector.selects(labels.unwrap_or(&empty)),
        }
    }

    pub fn directions(&self) -> Directions {
        match self {
            NetworkPolicyRef::Whole(policy) => Directions::of(policy),
            NetworkPolicyRef::Facts(facts) => facts.directions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> NetworkPolicy {
        serde_norway::from_str(yaml).expect("a NetworkPolicy")
    }

    /// The facts read as the whole policy, for every way of giving the
    /// directions.
    #[test]
    fn facts_read_as_the_whole_policy() {
        let cases = [
            ("", true, false),
            ("spec: {podSelector: {}}", true, false),
            ("spec: {policyTypes: [Ingress, Egress]}", true, true),
            ("spec: {policyTypes: [egress], ingress: [{}]}", false, true),
            ("spec: {policyTypes: []}", true, false),
            ("spec: {egress: [{}]}", true, true),
            ("spec: {egress: []}", true, false),
            ("spec: {policyTypes: [Ingress], egress: [{}]}", true, false),
        ];
        for (spec, ingress, egress) in cases {
            let yaml = format!(
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
                 metadata: {{name: p, namespace: shop, labels: {{a: b}}}}\n{spec}"
            );
            let whole = policy(&yaml);
            let facts = NetworkPolicyFacts::of(whole.clone());
            let expected = Directions { ingress, egress };
            for reference in [
                NetworkPolicyRef::Whole(&whole),
                NetworkPolicyRef::Facts(&facts),
            ] {
                assert_eq!(reference.directions(), expected, "{yaml}");
                assert_eq!((reference.name(), reference.namespace()), ("p", "shop"));
            }
        }
    }

    /// The facts select the same pods as the whole policy, whatever its
    /// selector.
    #[test]
    fn facts_select_the_pods_the_whole_policy_selects() {
        let selectors = [
            "",
            "podSelector: {}",
            "podSelector: {matchLabels: {app: web}}",
            "podSelector: {matchLabels: {app: web, tier: front}}",
            "podSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [db]}]}",
            "podSelector: {matchLabels: {app: web}, matchExpressions: [{key: tier, operator: Exists}]}",
            "podSelector: {matchExpressions: [{key: app, operator: In, values: [web, api]}]}",
            "podSelector: {matchExpressions: [{key: app, operator: Unknown}]}",
        ];
        let pods: Vec<Option<BTreeMap<String, String>>> = vec![
            None,
            Some(BTreeMap::new()),
            Some(labels(&[("app", "web")])),
            Some(labels(&[("app", "web"), ("tier", "front")])),
            Some(labels(&[("app", "web"), ("tier", "db")])),
            Some(labels(&[("app", "api")])),
            Some(labels(&[("app", "db"), ("tier", "front")])),
        ];
        let mut selected = 0;
        for selector in selectors {
            let whole = policy(&format!("{{metadata: {{name: p}}, spec: {{{selector}}}}}"));
            let facts = NetworkPolicyFacts::of(whole.clone());
            for pod in &pods {
                let expected = NetworkPolicyRef::Whole(&whole).selects(pod.as_ref());
                let kept = NetworkPolicyRef::Facts(&facts).selects(pod.as_ref());
                assert_eq!(kept, expected, "{selector} of {pod:?}");
                selected += usize::from(expected);
            }
        }
        // Some pods are selected and some are not.
        assert!(selected > pods.len() && selected < selectors.len() * pods.len());
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        super::super::selector::labels(pairs)
    }
}
