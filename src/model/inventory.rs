use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

use super::{
    AccountFacts, CalicoPolicy, CiliumPolicy, CustomWorkload, NetworkPolicyFacts, NetworkPolicyRef,
    ObjectRef, Resource, RetiredObject, Workload, WorkloadFacts,
};

/// Everything one evaluation sees: the objects of a manifest set or of a
/// cluster's caches. Checks that need several objects (network policies of a
/// namespace, RBAC bindings of a service account) look them up here.
#[derive(Clone, Debug, Default)]
pub struct Inventory {
    pub workloads: Vec<Workload>,
    /// Workloads whose own checks already ran as they were read (a scan of
    /// manifests), kept only as what checks across objects read of them.
    pub facts: Vec<WorkloadFacts>,
    pub namespaces: BTreeMap<String, Namespace>,
    pub network_policies: Vec<NetworkPolicy>,
    /// NetworkPolicies kept only as what the checks read of them (a scan
    /// of a large manifest set).
    pub network_policy_facts: Vec<NetworkPolicyFacts>,
    pub service_accounts: Vec<ServiceAccount>,
    /// ServiceAccounts whose own checks run apart (a scan of a large
    /// manifest set holds them on disk), kept only as what checks across
    /// objects read of them.
    pub account_facts: Vec<AccountFacts>,
    pub roles: Vec<Role>,
    pub cluster_roles: Vec<ClusterRole>,
    pub role_bindings: Vec<RoleBinding>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// Objects of other kinds written with a retired `apiVersion`.
    pub retired_objects: Vec<RetiredObject>,
    /// The `apiVersion` an object was written with, where it is an old one
    /// read in its current shape (`extensions/v1beta1` for a Deployment
    /// reported as `apps/v1`). Only manifests have these: the API server
    /// serves every object at the version asked for.
    pub written_api_versions: BTreeMap<ObjectRef, String>,
    /// The Kubernetes release the objects are meant for
    /// (`palisade scan --kubernetes-version`); `None` is the newest.
    pub kubernetes_version: Option<KubernetesVersion>,
    /// ConfigMaps (manifest scans only: the operator does not read them).
    pub config_maps: Vec<ConfigMap>,
    /// The ConfigMaps of the source were not read (the operator's case), so
    /// `config_maps` being empty says nothing about what exists.
    pub config_maps_unread: bool,
    /// Cilium and Calico policies, which isolate pods like NetworkPolicies.
    pub cilium_policies: Vec<CiliumPolicy>,
    pub calico_policies: Vec<CalicoPolicy>,
    /// Workloads that run the template of another one (an Argo Rollout's
    /// `spec.workloadRef`), until [`Inventory::resolve_workload_refs`].
    pub referencing: Vec<CustomWorkload>,
    /// ValidatingAdmissionPolicies and their bindings, audited against the
    /// other objects (`src/vap/`).
    pub admission_policies: Vec<ValidatingAdmissionPolicy>,
    pub admission_policy_bindings: Vec<ValidatingAdmissionPolicyBinding>,
    /// Each workload's fields outside its pod template (`spec.replicas`,
    /// `spec.strategy`, …), for CEL expressions that read the whole object;
    /// the template itself is the [`Workload`]'s.
    pub workload_shells: BTreeMap<ObjectRef, serde_json::Value>,
}

/// A Kubernetes minor release, `1.<minor>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KubernetesVersion {
    pub major: u32,
    pub minor: u32,
}

impl KubernetesVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        KubernetesVersion { major, minor }
    }
}

impl std::fmt::Display for KubernetesVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::str::FromStr for KubernetesVersion {
    type Err = String;

    /// `1.25`, `v1.25` or `1.25.3` (the patch release does not matter).
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a Kubernetes version such as 1.25");
        let trimmed = text.trim().trim_start_matches('v');
        let mut parts = trimmed.split('.');
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        if parts
            .next()
            .is_some_and(|patch| patch.parse::<u32>().is_err())
            || parts.next().is_some()
        {
            return Err(bad());
        }
        Ok(KubernetesVersion { major, minor })
    }
}

impl Inventory {
    /// Every workload: those held whole, then those kept as facts (given
    /// back with only those facts set).
    pub fn all_workloads(&self) -> impl Iterator<Item = Cow<'_, Workload>> {
        let whole = self.workloads.iter().map(Cow::Borrowed);
        whole.chain(self.facts.iter().map(|f| Cow::Owned(f.workload())))
    }

    pub fn from_resources<'a>(resources: impl IntoIterator<Item = &'a Resource>) -> Inventory {
        let mut inventory = Inventory::default();
        for resource in resources {
            inventory.add(resource);
        }
        inventory.resolve_workload_refs();
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
            Resource::Retired(o) => self.retired_objects.push(o),
            Resource::ConfigMap(c) => self.config_maps.push(c),
            Resource::CiliumPolicy(p) => self.cilium_policies.push(p),
            Resource::CalicoPolicy(p) => self.calico_policies.push(p),
            Resource::Custom(c) if c.runs_another_template() => {
                self.referencing.push(c);
            }
            Resource::AdmissionPolicy(p) => self.admission_policies.push(p),
            Resource::AdmissionPolicyBinding(b) => self.admission_policy_bindings.push(b),
            workload => {
                if let Some((object, shell)) = crate::policy::custom::workload_shell(&workload) {
                    self.workload_shells.insert(object, shell);
                }
                self.workloads.extend(Workload::from_owned(workload));
            }
        }
    }

    /// Gives each referencing workload the template of the workload it
    /// names, once every object is in; one whose reference is not in the
    /// inventory is left out (it has no template to check).
    pub fn resolve_workload_refs(&mut self) {
        for referencing in std::mem::take(&mut self.referencing) {
            let Some(reference) = &referencing.workload_ref else {
                continue;
            };
            let namespace = referencing.metadata.namespace.as_deref();
            let resolved = self
                .workloads
                .iter()
                .find(|w| w.is_referenced_by(namespace, reference))
                .map(|w| Workload::for_referencing(&referencing, w));
            self.workloads.extend(resolved);
        }
    }

    /// Removes `objects` (every definition of each), so that other
    /// definitions can take their places; one pass over each list.
    pub fn remove_all(&mut self, objects: &BTreeSet<ObjectRef>) {
        let kept = |api_version: &str, kind: &str, meta: &ObjectMeta| {
            !objects.contains(&ObjectRef::new(api_version, kind, meta))
        };
        let rbac = "rbac.authorization.k8s.io/v1";
        self.workloads.retain(|w| !objects.contains(&w.object));
        self.facts.retain(|f| !objects.contains(&f.object()));
        self.namespaces
            .retain(|_, o| kept("v1", "Namespace", &o.metadata));
        // `network_policy_facts` are not looked at: a streamed scan that
        // meets an object twice is done again with whole objects.
        self.network_policies
            .retain(|o| kept("networking.k8s.io/v1", "NetworkPolicy", &o.metadata));
        self.service_accounts
            .retain(|o| kept("v1", "ServiceAccount", &o.metadata));
        self.roles.retain(|o| kept(rbac, "Role", &o.metadata));
        self.cluster_roles
            .retain(|o| kept(rbac, "ClusterRole", &o.metadata));
        self.role_bindings
            .retain(|o| kept(rbac, "RoleBinding", &o.metadata));
        self.cluster_role_bindings
            .retain(|o| kept(rbac, "ClusterRoleBinding", &o.metadata));
        self.retired_objects
            .retain(|o| !objects.contains(&o.object_ref()));
        self.written_api_versions
            .retain(|object, _| !objects.contains(object));
    }

    /// Gives back the room the lists grew into while objects were added:
    /// a large inventory is held for the whole evaluation.
    pub fn shrink_to_fit(&mut self) {
        self.workloads.shrink_to_fit();
        self.facts.shrink_to_fit();
        self.network_policies.shrink_to_fit();
        self.network_policy_facts.shrink_to_fit();
        self.service_accounts.shrink_to_fit();
        self.account_facts.shrink_to_fit();
        self.roles.shrink_to_fit();
        self.cluster_roles.shrink_to_fit();
        self.role_bindings.shrink_to_fit();
        self.cluster_role_bindings.shrink_to_fit();
        self.retired_objects.shrink_to_fit();
        self.config_maps.shrink_to_fit();
        self.cilium_policies.shrink_to_fit();
        self.calico_policies.shrink_to_fit();
        // Namespaces mostly arrive in order, which leaves each node of the
        // map half empty; built again from all its entries, every node is
        // full.
        self.namespaces = std::mem::take(&mut self.namespaces).into_iter().collect();
    }

    /// Every ServiceAccount, whole ones first, then those kept as facts.
    pub fn accounts(&self) -> impl Iterator<Item = AccountRef<'_>> {
        let whole = self.service_accounts.iter().map(AccountRef::Whole);
        whole.chain(self.account_facts.iter().map(AccountRef::Facts))
    }

    /// Every NetworkPolicy, whole ones first, then those kept as facts.
    pub fn network_policies(&self) -> impl Iterator<Item = NetworkPolicyRef<'_>> {
        let whole = self.network_policies.iter().map(NetworkPolicyRef::Whole);
        let facts = self.network_policy_facts.iter();
        whole.chain(facts.map(NetworkPolicyRef::Facts))
    }
}

/// A ServiceAccount of an inventory: whole, or its [`AccountFacts`].
#[derive(Clone, Copy, Debug)]
pub enum AccountRef<'a> {
    Whole(&'a ServiceAccount),
    Facts(&'a AccountFacts),
}

impl<'a> AccountRef<'a> {
    pub fn namespace(&self) -> Option<&'a str> {
        match self {
            AccountRef::Whole(account) => account.metadata.namespace.as_deref(),
            AccountRef::Facts(facts) => facts.namespace(),
        }
    }

    pub fn name(&self) -> Option<&'a str> {
        match self {
            AccountRef::Whole(account) => account.metadata.name.as_deref(),
            AccountRef::Facts(facts) => facts.name(),
        }
    }

    /// `automountServiceAccountToken`.
    pub fn automount_token(&self) -> Option<bool> {
        match self {
            AccountRef::Whole(account) => account.automount_service_account_token,
            AccountRef::Facts(facts) => facts.automount_token(),
        }
    }

    pub fn labels(&self) -> Option<Cow<'a, BTreeMap<String, String>>> {
        match self {
            AccountRef::Whole(account) => account.metadata.labels.as_ref().map(Cow::Borrowed),
            AccountRef::Facts(facts) => facts.labels().map(Cow::Owned),
        }
    }
}

/// Lookups by name in an inventory that no longer changes, built once per
/// evaluation: a large input asks them once per workload.
#[derive(Debug, Default)]
pub struct InventoryIndex<'a> {
    /// The first ServiceAccount of each (namespace, name); objects without
    /// a namespace are in `""`.
    service_accounts: HashMap<(&'a str, &'a str), AccountRef<'a>>,
    /// The NetworkPolicies of each namespace, in inventory order.
    network_policies: HashMap<&'a str, Vec<NetworkPolicyRef<'a>>>,
    /// How many workloads each namespace has (objects without a namespace
    /// are in none).
    workloads: HashMap<&'a str, WorkloadCount>,
}

/// The workloads of a namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkloadCount {
    pub all: usize,
    /// Those without a controller: what people deploy (Deployments, not
    /// also their ReplicaSets and Pods when the objects come from a live
    /// cluster).
    pub top_level: usize,
}

impl<'a> InventoryIndex<'a> {
    pub fn new(inventory: &'a Inventory) -> InventoryIndex<'a> {
        let mut index = InventoryIndex::default();
        for account in inventory.accounts() {
            let key = (
                account.namespace().unwrap_or(""),
                account.name().unwrap_or(""),
            );
            index.service_accounts.entry(key).or_insert(account);
        }
        for np in inventory.network_policies() {
            let namespace = np.namespace();
            index
                .network_policies
                .entry(namespace)
                .or_default()
                .push(np);
        }
        let whole = inventory
            .workloads
            .iter()
            .map(|w| (w.namespace(), w.has_controller()));
        let facts = (inventory.facts.iter()).map(|f| (f.namespace(), f.has_controller()));
        for (namespace, controlled) in whole.chain(facts) {
            let Some(namespace) = namespace else {
                continue;
            };
            let count = index.workloads.entry(namespace).or_default();
            count.all += 1;
            count.top_level += usize::from(!controlled);
        }
        index
    }

    /// The workloads of `namespace`.
    pub fn workloads_in(&self, namespace: &str) -> WorkloadCount {
        self.workloads.get(namespace).copied().unwrap_or_default()
    }

    /// ServiceAccount `name` of `namespace` (`""` for objects without one).
    pub fn service_account(&self, namespace: &str, name: &str) -> Option<AccountRef<'a>> {
        self.service_accounts.get(&(namespace, name)).copied()
    }

    /// The NetworkPolicies of `namespace`, in inventory order.
    pub fn network_policies_in(&self, namespace: &str) -> &[NetworkPolicyRef<'a>] {
        self.network_policies
            .get(namespace)
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resource(api_version: &str, kind: &str, name: &str, extra: serde_json::Value) -> Resource {
        let mut value = json!({"metadata": {"name": name, "namespace": "ns"}});
        value
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        Resource::decode(api_version, kind, value)
            .expect("decodes")
            .expect("scanned")
    }

    #[test]
    fn remove_all_takes_out_exactly_the_objects_named() {
        let pod = |name| {
            resource(
                "v1",
                "Pod",
                name,
                json!({"spec": {"containers": [{"name": "a"}]}}),
            )
        };
        let role = |name| resource("rbac.authorization.k8s.io/v1", "Role", name, json!({}));
        let ingress = resource("extensions/v1beta1", "Ingress", "old", json!({}));
        let resources = [pod("a"), pod("b"), role("r"), role("s"), ingress.clone()];
        let mut inventory = Inventory::from_resources(&resources);
        let gone: BTreeSet<ObjectRef> = [pod("a"), role("s"), ingress]
            .iter()
            .map(Resource::object_ref)
            .collect();
        inventory.remove_all(&gone);
        let workloads: Vec<&str> = inventory
            .workloads
            .iter()
            .map(|w| w.object.name.as_str())
            .collect();
        assert_eq!(workloads, ["b"]);
        let roles: Vec<_> = inventory
            .roles
            .iter()
            .map(|r| r.metadata.name.as_deref())
            .collect();
        assert_eq!(roles, [Some("r")]);
        assert!(inventory.retired_objects.is_empty());
    }

    #[test]
    fn a_rollout_runs_the_template_of_the_deployment_it_references() {
        let deployment = resource(
            "apps/v1",
            "Deployment",
            "base",
            json!({"spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "app"}]}}}}),
        );
        let rollout = |target: &str| {
            resource(
                "argoproj.io/v1alpha1",
                "Rollout",
                "web",
                json!({"spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target}}}),
            )
        };
        // The Rollout comes first: it is resolved once everything is in.
        let inventory = Inventory::from_resources(&[rollout("base"), deployment.clone()]);
        let names: Vec<(&str, &str)> = inventory
            .workloads
            .iter()
            .map(|w| (w.object.kind.as_str(), w.object.name.as_str()))
            .collect();
        assert_eq!(names, [("Deployment", "base"), ("Rollout", "web")]);
        let rollout_workload = &inventory.workloads[1];
        assert_eq!(rollout_workload.object.api_version, "argoproj.io/v1alpha1");
        assert_eq!(
            rollout_workload.containers[0].path.to_string(),
            "spec.template.spec.containers[name=app]"
        );
        // A reference to nothing in the input leaves nothing to check.
        let dangling = Inventory::from_resources(&[rollout("gone"), deployment]);
        assert_eq!(dangling.workloads.len(), 1);
    }
}
