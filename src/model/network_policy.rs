//! What the checks read of a NetworkPolicy. A NetworkPolicy has no checks
//! of its own: the checks of the workloads and namespaces it isolates read
//! its name, namespace, `podSelector` and the directions it restricts,
//! never what its rules allow. A scan of a large manifest set keeps only
//! that ([`NetworkPolicyFacts`], a tenth of a decoded policy) until the
//! end; the operator and a scan that holds whole objects keep the policy.

use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

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
    /// `None` for an absent `podSelector`.
    pod_selector: Option<Box<LabelSelector>>,
    directions: Directions,
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
                .map(Box::new),
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

    /// The `podSelector`; `None` when absent.
    pub fn pod_selector(&self) -> Option<&'a LabelSelector> {
        match self {
            NetworkPolicyRef::Whole(policy) => {
                policy.spec.as_ref().and_then(|s| s.pod_selector.as_ref())
            }
            NetworkPolicyRef::Facts(facts) => facts.pod_selector.as_deref(),
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

    #[test]
    fn facts_keep_the_pod_selector_and_its_absence() {
        let selecting =
            policy("{metadata: {name: p}, spec: {podSelector: {matchLabels: {app: web}}}}");
        let facts = NetworkPolicyFacts::of(selecting.clone());
        let whole = NetworkPolicyRef::Whole(&selecting);
        let kept = NetworkPolicyRef::Facts(&facts);
        assert_eq!(kept.pod_selector(), whole.pod_selector());
        let labels = kept.pod_selector().and_then(|s| s.match_labels.as_ref());
        assert_eq!(labels.map(|l| l.len()), Some(1));
        assert_eq!(kept.namespace(), "");

        let absent = NetworkPolicyFacts::of(policy("{metadata: {name: p}, spec: {}}"));
        assert_eq!(NetworkPolicyRef::Facts(&absent).pod_selector(), None);
    }
}
