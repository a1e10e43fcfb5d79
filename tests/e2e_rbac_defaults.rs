//! A freshly started cluster has no RBAC problem worth reporting: every
//! finding on the objects the control plane creates by itself (the bootstrap
//! roles and bindings, the controllers' service accounts) is suppressed.

mod common;

use common::client;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use palisade::engine::{Category, evaluate};
use palisade::model::{Inventory, Resource};
use palisade::policy::Policy;
use serde::de::DeserializeOwned;

/// Objects written only by the control plane itself, whatever tests have
/// added to the shared cluster since it started.
fn created_by_control_plane(meta: &ObjectMeta) -> bool {
    let managers: Vec<_> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .collect();
    !managers.is_empty()
        && managers.iter().all(|m| {
            matches!(
                *m,
                "kube-apiserver" | "kube-controller-manager" | "test-cluster"
            )
        })
}

async fn list<K>(client: &kube::Client) -> Vec<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    api.list(&ListParams::default())
        .await
        .expect("list works")
        .items
        .into_iter()
        .filter(|o| created_by_control_plane(o.meta()))
        .collect()
}

#[tokio::test]
async fn a_fresh_cluster_has_no_unsuppressed_rbac_findings() {
    let client = client().await;
    let mut resources: Vec<Resource> = Vec::new();
    resources.extend(
        list::<ClusterRole>(&client)
            .await
            .into_iter()
            .map(Resource::ClusterRole),
    );
    let cluster_roles = resources.len();
    resources.extend(
        list::<ClusterRoleBinding>(&client)
            .await
            .into_iter()
            .map(Resource::ClusterRoleBinding),
    );
    resources.extend(list::<Role>(&client).await.into_iter().map(Resource::Role));
    resources.extend(
        list::<RoleBinding>(&client)
            .await
            .into_iter()
            .map(Resource::RoleBinding),
    );
    resources.extend(
        list::<ServiceAccount>(&client)
            .await
            .into_iter()
            .map(Resource::ServiceAccount),
    );
    assert!(
        cluster_roles > 50,
        "the bootstrap policy is there: {cluster_roles} ClusterRoles"
    );

    let inventory = Inventory::from_resources(&resources);
    let rbac_checks: Vec<_> = palisade::checks::catalog()
        .iter()
        .copied()
        .filter(|c| c.category == Category::Rbac)
        .collect();
    let findings = evaluate(&inventory, &rbac_checks, &Policy::default());
    let unsuppressed: Vec<String> = findings
        .iter()
        .filter(|f| !f.is_suppressed())
        .map(|f| format!("{} {}: {}", f.object, f.check.id, f.message))
        .collect();
    let suppressed = findings.len() - unsuppressed.len();
    eprintln!(
        "{} objects, {suppressed} suppressed RBAC findings",
        resources.len()
    );
    assert!(
        suppressed > 0,
        "the RBAC checks ran on the bootstrap policy"
    );
    assert!(
        unsuppressed.is_empty(),
        "unsuppressed findings on a fresh cluster:\n{}",
        unsuppressed.join("\n")
    );
}
