//! ClusterRole aggregation, as the `clusterrole-aggregation-controller` does
//! it: for each selector in order, every other ClusterRole it selects (sorted
//! by name), each rule appended unless an equal rule is already there. The
//! union replaces the stored rules; when it is empty the controller leaves the
//! stored rules alone.
//!
//! Offline manifests never carry the aggregated rules, so Palisade always
//! recomputes them. An aggregated role may select another aggregated role
//! (`admin` selects `edit`, which selects `view`): the controller converges
//! on the fixed point, which is computed here by repeating the union until
//! nothing changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::index::SourcedRule;
use crate::model::selector_matches;

/// What aggregation needs to know of one ClusterRole.
pub struct AggregationInput<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub own_rules: Arc<[SourcedRule]>,
    pub selectors: Option<&'a [LabelSelector]>,
}

/// The effective rules of every aggregated ClusterRole, by name.
pub fn aggregate(
    roles: &BTreeMap<&str, AggregationInput<'_>>,
) -> BTreeMap<String, Arc<[SourcedRule]>> {
    let mut current: BTreeMap<&str, Arc<[SourcedRule]>> = roles
        .iter()
        .map(|(name, input)| (*name, input.own_rules.clone()))
        .collect();
    let aggregated: Vec<(&str, &[LabelSelector])> = roles
        .iter()
        .filter_map(|(name, input)| Some((*name, input.selectors?)))
        .collect();
    // Each round propagates rules one aggregation level further; a chain can
    // be at most as long as there are aggregated roles.
    for _ in 0..=aggregated.len() {
        let mut changed = false;
        for (name, selectors) in &aggregated {
            let mut union = union_of(name, selectors, roles, &current);
            if union.is_empty() {
                union = roles[name].own_rules.to_vec();
            }
            if *current[name] != *union {
                current.insert(name, union.into());
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    aggregated
        .iter()
        .map(|(name, _)| ((*name).to_owned(), current[name].clone()))
        .collect()
}

fn union_of(
    name: &str,
    selectors: &[LabelSelector],
    roles: &BTreeMap<&str, AggregationInput<'_>>,
    current: &BTreeMap<&str, Arc<[SourcedRule]>>,
) -> Vec<SourcedRule> {
    let mut union: Vec<SourcedRule> = Vec::new();
    for selector in selectors {
        // BTreeMap iteration is by name, the controller's sort order.
        for (other, input) in roles {
            if *other == name || !selector_matches(selector, Some(input.labels)) {
                continue;
            }
            for sourced in current[other].iter() {
                if !union.iter().any(|r| r.rule == sourced.rule) {
                    union.push(sourced.clone());
                }
            }
        }
    }
    union
}

/// Whether a change of `labels` on some ClusterRole can change what `selectors` select.
pub fn selects(selectors: &[LabelSelector], labels: &BTreeMap<String, String>) -> bool {
    selectors.iter().any(|s| selector_matches(s, Some(labels)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::index::{RoleKey, RuleOrigin};
    use crate::rbac::rule::Rule;

    fn sourced(role: &str, rules: &[Rule]) -> Arc<[SourcedRule]> {
        rules
            .iter()
            .enumerate()
            .map(|(index, rule)| SourcedRule {
                rule: Arc::new(rule.clone()),
                origin: RuleOrigin {
                    role: Arc::new(RoleKey::cluster(role)),
                    index,
                },
            })
            .collect()
    }

    fn selector(key: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some(BTreeMap::from([(key.to_owned(), "true".to_owned())])),
            match_expressions: None,
        }
    }

    fn names(rules: &[SourcedRule]) -> Vec<String> {
        rules.iter().map(|r| r.rule.resources.join(",")).collect()
    }

    #[test]
    fn union_is_ordered_by_selector_then_name_and_deduplicated() {
        let a = BTreeMap::from([("a".to_owned(), "true".to_owned())]);
        let b = BTreeMap::from([("b".to_owned(), "true".to_owned())]);
        let none = BTreeMap::new();
        let pods = Rule::resource(&["get"], &[""], &["pods"]);
        let secrets = Rule::resource(&["get"], &[""], &["secrets"]);
        let nodes = Rule::resource(&["get"], &[""], &["nodes"]);
        let selectors = [selector("b"), selector("a")];
        let mut roles = BTreeMap::new();
        roles.insert(
            "z-leaf",
            AggregationInput {
                labels: &a,
                own_rules: sourced("z-leaf", std::slice::from_ref(&pods)),
                selectors: None,
            },
        );
        roles.insert(
            "y-leaf",
            AggregationInput {
                labels: &a,
                own_rules: sourced("y-leaf", &[secrets.clone(), pods.clone()]),
                selectors: None,
            },
        );
        roles.insert(
            "x-leaf",
            AggregationInput {
                labels: &b,
                own_rules: sourced("x-leaf", std::slice::from_ref(&nodes)),
                selectors: None,
            },
        );
        roles.insert(
            "agg",
            AggregationInput {
                labels: &none,
                own_rules: sourced("agg", &[]),
                selectors: Some(&selectors),
            },
        );
        let out = aggregate(&roles);
        // Selector `b` first (x-leaf), then `a` sorted by name (y-leaf, z-leaf);
        // the second `pods` rule is a duplicate.
        assert_eq!(names(&out["agg"]), ["nodes", "secrets", "pods"]);
        assert_eq!(*out["agg"][2].origin.role, RoleKey::cluster("y-leaf"));
    }

    #[test]
    fn nested_aggregation_converges_and_empty_union_keeps_stored_rules() {
        let to_admin = BTreeMap::from([("admin".to_owned(), "true".to_owned())]);
        let to_edit = BTreeMap::from([("edit".to_owned(), "true".to_owned())]);
        let none = BTreeMap::new();
        let admin_sel = [selector("admin")];
        let edit_sel = [selector("edit")];
        let nothing_sel = [selector("nothing")];
        let stored = Rule::resource(&["list"], &[""], &["configmaps"]);
        let mut roles = BTreeMap::new();
        // `admin` aggregates `edit`, itself aggregated from `leaf`.
        roles.insert(
            "admin",
            AggregationInput {
                labels: &none,
                own_rules: sourced("admin", &[]),
                selectors: Some(&admin_sel),
            },
        );
        roles.insert(
            "edit",
            AggregationInput {
                labels: &to_admin,
                own_rules: sourced("edit", &[]),
                selectors: Some(&edit_sel),
            },
        );
        roles.insert(
            "leaf",
            AggregationInput {
                labels: &to_edit,
                own_rules: sourced("leaf", &[Rule::resource(&["get"], &[""], &["pods"])]),
                selectors: None,
            },
        );
        roles.insert(
            "lonely",
            AggregationInput {
                labels: &none,
                own_rules: sourced("lonely", &[stored]),
                selectors: Some(&nothing_sel),
            },
        );
        let out = aggregate(&roles);
        assert_eq!(names(&out["admin"]), ["pods"]);
        assert_eq!(*out["admin"][0].origin.role, RoleKey::cluster("leaf"));
        assert_eq!(names(&out["edit"]), ["pods"]);
        assert_eq!(names(&out["lonely"]), ["configmaps"]);
    }

    #[test]
    fn a_role_never_aggregates_itself() {
        let labels = BTreeMap::from([("x".to_owned(), "true".to_owned())]);
        let sel = [selector("x")];
        let mut roles = BTreeMap::new();
        roles.insert(
            "self",
            AggregationInput {
                labels: &labels,
                own_rules: sourced("self", &[Rule::resource(&["get"], &[""], &["pods"])]),
                selectors: Some(&sel),
            },
        );
        let out = aggregate(&roles);
        // Nothing else selected: the union is empty, the stored rules stay.
        assert_eq!(names(&out["self"]), ["pods"]);
    }
}
