use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// Whether `labels` satisfy a label selector, with the API server's semantics:
/// an empty selector matches everything, requirements are ANDed.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    selector_matches_with(selector, |key| Some(labels.get(key)))
}

/// [`selector_matches`] over labels found by `lookup`: `Some(value)` for a
/// key that may be on the object (`Some(None)` when it is not), `None` for a
/// key that can never be (such as a Cilium label of another source), which
/// only `NotIn` and `DoesNotExist` accept.
pub(crate) fn selector_matches_with<'a>(
    selector: &LabelSelector,
    lookup: impl Fn(&str) -> Option<Option<&'a String>>,
) -> bool {
    let match_labels =
        (selector.match_labels.iter().flatten()).map(|(k, v)| (k.as_str(), v.as_str()));
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    requirements_match(match_labels, expressions, lookup)
}

/// [`selector_matches_with`] of a selector given as its `matchLabels`
/// pairs and its `matchExpressions`.
pub(crate) fn requirements_match<'a, 'b>(
    match_labels: impl IntoIterator<Item = (&'b str, &'b str)>,
    expressions: &[LabelSelectorRequirement],
    lookup: impl Fn(&str) -> Option<Option<&'a String>>,
) -> bool {
    let labels_ok = (match_labels.into_iter())
        .all(|(key, value)| lookup(key).flatten().map(String::as_str) == Some(value));
    labels_ok
        && expressions.iter().all(|req| {
            let values = req.values.as_deref().unwrap_or_default();
            let Some(current) = lookup(&req.key) else {
                return matches!(req.operator.as_str(), "NotIn" | "DoesNotExist");
            };
            match req.operator.as_str() {
                "In" => current.is_some_and(|v| values.contains(v)),
                "NotIn" => current.is_none_or(|v| !values.contains(v)),
                "Exists" => current.is_some(),
                "DoesNotExist" => current.is_none(),
                // An unknown operator is rejected by the API server; match nothing.
                _ => false,
            }
        })
}

/// Labels from `(key, value)` pairs, for tests.
#[cfg(test)]
pub(crate) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn empty_selector_matches_everything() {
        assert!(selector_matches(&LabelSelector::default(), None));
    }

    #[test]
    fn match_labels_and_expressions() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "NotIn".into(),
                values: Some(vec!["db".into()]),
            }]),
        };
        assert!(selector_matches(
            &selector,
            Some(&labels(&[("app", "web")]))
        ));
        assert!(!selector_matches(
            &selector,
            Some(&labels(&[("app", "web"), ("tier", "db")]))
        ));
        assert!(!selector_matches(
            &selector,
            Some(&labels(&[("app", "api")]))
        ));
    }
}
