//! Helpers for check unit tests: YAML in, findings of one check out.

use crate::engine::{Finding, evaluate};
use crate::model::{Inventory, Resource};
use crate::policy::Policy;

/// Decodes every document of `yaml` into resources (panics on bad test input).
pub fn resources(yaml: &str) -> Vec<Resource> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(yaml)
        .filter_map(|doc| {
            let value = serde_json::Value::deserialize(doc).expect("test YAML parses");
            if value.is_null() {
                return None;
            }
            let api_version = value["apiVersion"].as_str().expect("apiVersion").to_owned();
            let kind = value["kind"].as_str().expect("kind").to_owned();
            Resource::decode(&api_version, &kind, value).expect("test object decodes")
        })
        .collect()
}

/// Every finding (suppressed or not) of the check `id` on the objects in `yaml`.
pub fn findings(yaml: &str, id: &str) -> Vec<Finding> {
    let resources = resources(yaml);
    let inventory = Inventory::from_resources(&resources);
    let check = super::find(id).unwrap_or_else(|| panic!("no check `{id}` in the catalog"));
    evaluate(&inventory, &[check], &Policy::default())
}

/// The field paths the check `id` flags in `yaml`.
pub fn paths(yaml: &str, id: &str) -> Vec<String> {
    findings(yaml, id).into_iter().map(|f| f.path).collect()
}
