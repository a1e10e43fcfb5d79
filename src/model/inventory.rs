use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

use super::{CalicoPolicy, CiliumPolicy, Resource, Workload};

/// Everything one evaluation sees: the objects of a manifest set or of a
/// cluster's caches. Checks that need several objects (network policies of a
/// namespace, RBAC bindings of a service account) look them up here.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub workloads: Vec<Workload>,
    pub namespaces: BTreeMap<String, Namespace>,
    pub network_policies: Vec<NetworkPolicy>,
    pub service_accounts: Vec<ServiceAccount>,
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// ConfigMaps (manifest scans only: the operator does not read them).
    pub config_maps: Vec<ConfigMap>,
    /// Cilium and Calico policies, which isolate pods like NetworkPolicies.
    pub cilium_policies: Vec<CiliumPolicy>,
    pub calico_policies: Vec<CalicoPolicy>,
}

impl Inventory {
    pub fn from_resources<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> Inventory {
        let mut inventory = Inventory::default();
        for resource in resources {
            inventory.add(resource);
        }
        inventory
    }

    pub fn add(&mut self, resource: &Resource) {
        self.insert(resource.clone());
    }

    /// Adds a resource, taking it apart rather than copying it.
    pub fn insert(&mut self, resource: Resource) {
        match resource {
            Resource::Namespace(ns) => {
                let name = ns.metadata.name.clone().unwrap_or_default();
                self.namespaces.insert(name, ns);
            }
            Resource::NetworkPolicy(np) => self.network_policies.push(np),
            Resource::ServiceAccount(sa) => self.service_accounts.push(sa),
            Resource::Role(r) => self.roles.push(r),
            Resource::ClusterRole(r) => self.cluster_roles.push(r),
            Resource::RoleBinding(r) => self.role_bindings.push(r),
            Resource::ClusterRoleBinding(r) => self.cluster_role_bindings.push(r),
            Resource::ConfigMap(c) => self.config_maps.push(c),
            Resource::CiliumPolicy(p) => self.cilium_policies.push(p),
            Resource::CalicoPolicy(p) => self.calico_policies.push(p),
            workload => self.workloads.extend(Workload::from_owned(workload)),
        }
    }

    /// Gives back the room the lists grew into while objects were added:
    /// a large inventory is held for the whole evaluation.
    pub fn shrink_to_fit(&mut self) {
        self.workloads.shrink_to_fit();
        self.network_policies.shrink_to_fit();
        self.service_accounts.shrink_to_fit();
        self.roles.shrink_to_fit();
        self.cluster_roles.shrink_to_fit();
        self.role_bindings.shrink_to_fit();
        self.cluster_role_bindings.shrink_to_fit();
        self.config_maps.shrink_to_fit();
        self.cilium_policies.shrink_to_fit();
        self.calico_policies.shrink_to_fit();
    }

    /// Network policies in a namespace.
    pub fn network_policies_in<'a>(
        &'a self,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a NetworkPolicy> + 'a {
        self.network_policies
            .iter()
            .filter(move |np| np.metadata.namespace.as_deref().unwrap_or("") == namespace)
    }
}
