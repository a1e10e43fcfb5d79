//! RBAC objects from a live cluster: the one module of `rbac` with a client.
//! It lists Roles, ClusterRoles, RoleBindings, ClusterRoleBindings and
//! ServiceAccounts, nothing else.

use std::path::Path;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::model::Inventory;

/// A client from `--kubeconfig PATH`, or the usual defaults (`KUBECONFIG`,
/// `~/.kube/config`, in-cluster).
pub async fn client(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Client, String> {
    let config = match kubeconfig {
        Some(path) => {
            let file =
                Kubeconfig::read_from(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let options = KubeConfigOptions {
                context: context.map(str::to_owned),
                ..KubeConfigOptions::default()
            };
            Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => {
            let options = KubeConfigOptions {
                context: context.map(str::to_owned),
                ..KubeConfigOptions::default()
            };
            match Config::from_kubeconfig(&options).await {
                Ok(config) => config,
                Err(_) if context.is_none() => Config::infer().await.map_err(|e| e.to_string())?,
                Err(e) => return Err(e.to_string()),
            }
        }
    };
    Client::try_from(config).map_err(|e| e.to_string())
}

/// The namespace of the kubeconfig's current context (`default` without one),
/// as `kubectl` uses it when `-n` is not given.
pub fn default_namespace(client: &Client) -> String {
    client.default_namespace().to_owned()
}

/// Every RBAC object and ServiceAccount of the cluster.
pub async fn read_inventory(client: &Client) -> Result<Inventory, String> {
    let lp = ListParams::default();
    let err = |what: &str, e: kube::Error| format!("listing {what}: {e}");
    let mut inventory = Inventory {
        roles: Api::<Role>::all(client.clone())
            .list(&lp)
            .await
            .map_err(|e| err("roles", e))?
            .items,
        cluster_roles: Api::<ClusterRole>::all(client.clone())
            .list(&lp)
            .await
            .map_err(|e| err("clusterroles", e))?
            .items,
        role_bindings: Api::<RoleBinding>::all(client.clone())
            .list(&lp)
            .await
            .map_err(|e| err("rolebindings", e))?
            .items,
        cluster_role_bindings: Api::<ClusterRoleBinding>::all(client.clone())
            .list(&lp)
            .await
            .map_err(|e| err("clusterrolebindings", e))?
            .items,
        ..Inventory::default()
    };
    inventory.service_accounts = Api::<ServiceAccount>::all(client.clone())
        .list(&lp)
        .await
        .map_err(|e| err("serviceaccounts", e))?
        .items;
    Ok(inventory)
}
