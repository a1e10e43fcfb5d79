//! The table of retired API versions, checked against the real API server
//! (Kubernetes 1.35): a version the table says 1.35 no longer serves is not
//! served for that kind, and each replacement it names is.

mod common;

use palisade::model::{KubernetesVersion, RETIRED_APIS};
use serde_json::Value;

/// The test cluster's release.
const CLUSTER: KubernetesVersion = KubernetesVersion::new(1, 35);

/// The kinds the API server serves at `api_version` (empty when it does
/// not serve that version at all).
fn served_kinds(api_version: &str) -> Vec<String> {
    let path = if api_version.contains('/') {
        format!("/apis/{api_version}")
    } else {
        format!("/api/{api_version}")
    };
    let output = common::kubectl_output(&["get", "--raw", &path]);
    if !output.status.success() {
        return Vec::new();
    }
    let list: Value = serde_json::from_slice(&output.stdout).expect("an APIResourceList");
    list["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter(|r| !r["name"].as_str().unwrap_or_default().contains('/'))
        .map(|r| r["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn removed_versions_are_not_served_and_replacements_are() {
    let mut checked = 0;
    for retired in RETIRED_APIS.iter().filter(|r| r.removed <= CLUSTER) {
        assert!(
            !served_kinds(retired.api_version).contains(&retired.kind.to_owned()),
            "{} {} is said to be removed in {} but is served",
            retired.api_version,
            retired.kind,
            retired.removed
        );
        // The replacement is an apiVersion, unless it is explained in words.
        if !retired.replacement.contains(' ') {
            assert!(
                served_kinds(retired.replacement).contains(&retired.kind.to_owned()),
                "{} {}: the replacement {} is not served",
                retired.api_version,
                retired.kind,
                retired.replacement
            );
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} entries checked");
}
