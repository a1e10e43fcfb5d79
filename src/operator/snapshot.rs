//! From the watch caches to what the engine reads: the target object as a
//! model [`Resource`] and the part of the cluster its checks may look at.

use std::sync::Arc;

use k8s_openapi::api::core::v1::PodSpec;
use kube::Resource as _;

use super::packed::{CachedWorkload, Packable, Packed, PodFacts};
use super::stores::{MultiStore, Stores};
use super::target::{TargetKey, TargetKind, is_top_level};
use crate::model::{Inventory, Resource, Workload};

/// The target object from its cache; an error when a cached workload does
/// not decode.
pub fn lookup(stores: &Stores, key: &TargetKey) -> Result<Option<Resource>, serde_json::Error> {
    let ns = key.namespace.as_deref();
    let name = key.name.as_str();
    fn get<K: kube::Resource<DynamicType = ()> + Clone + 'static>(
        store: &MultiStore<K>,
        ns: Option<&str>,
        name: &str,
    ) -> Option<K> {
        store.get(ns, name).map(|o| (*o).clone())
    }
    fn unpack<K>(
        store: &MultiStore<Packed<K>>,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Option<Resource>, serde_json::Error>
    where
        K: Packable<Facts = Option<PodFacts>> + PodTemplated + 'static,
    {
        store.get(ns, name).map(|o| o.to_resource()).transpose()
    }
    let resource = match key.kind {
        TargetKind::Deployment => return unpack(&stores.deployments, ns, name),
        TargetKind::StatefulSet => return unpack(&stores.stateful_sets, ns, name),
        TargetKind::DaemonSet => return unpack(&stores.daemon_sets, ns, name),
        TargetKind::ReplicaSet => return unpack(&stores.replica_sets, ns, name),
        TargetKind::CronJob => return unpack(&stores.cron_jobs, ns, name),
        TargetKind::Job => return unpack(&stores.jobs, ns, name),
        TargetKind::ReplicationController => {
            return unpack(&stores.replication_controllers, ns, name);
        }
        TargetKind::Pod => return unpack(&stores.pods, ns, name),
        TargetKind::ServiceAccount => {
            get(&stores.service_accounts, ns, name).map(Resource::ServiceAccount)
        }
        TargetKind::Role => get(&stores.roles, ns, name).map(Resource::Role),
        TargetKind::RoleBinding => get(&stores.role_bindings, ns, name).map(Resource::RoleBinding),
        TargetKind::Namespace => get(&stores.namespaces, None, name).map(Resource::Namespace),
        TargetKind::ClusterRole => {
            get(&stores.cluster_roles, None, name).map(Resource::ClusterRole)
        }
        TargetKind::ClusterRoleBinding => {
            get(&stores.cluster_role_bindings, None, name).map(Resource::ClusterRoleBinding)
        }
        TargetKind::Custom(kind) => {
            // An owned object may be cached (its kind says so), but it is
            // part of its owner: it is no target of its own.
            return stores
                .custom
                .get(kind, ns, name)
                .filter(|o| is_top_level(key.kind, o.meta()))
                .map(|o| o.to_resource())
                .transpose();
        }
    };
    Ok(resource)
}

/// Whether the target is in its cache.
/// The workload of a workload target: its own pod template, or for an
/// object that runs another's (an Argo Rollout's `spec.workloadRef`), the
/// template of the cached Deployment it names. `None` when there is none.
pub fn workload_of(stores: &Stores, resource: &Resource) -> Option<Workload> {
    let Resource::Custom(custom) = resource else {
        return Workload::from_resource(resource);
    };
    let Some(reference) = custom
        .workload_ref
        .as_ref()
        .filter(|_| custom.template.is_none())
    else {
        return Workload::from_resource(resource);
    };
    let namespace = custom.metadata.namespace.as_deref();
    let (api_version, kind, name) = reference;
    if kind != "Deployment" || crate::model::kinds::group_of(api_version) != "apps" {
        return None;
    }
    let deployment = stores
        .deployments
        .get(namespace, name)?
        .to_resource()
        .ok()?;
    let referenced = Workload::from_owned(deployment)?;
    Some(Workload::for_referencing(custom, &referenced))
}

pub fn exists(stores: &Stores, key: &TargetKey) -> bool {
    let ns = key.namespace.as_deref();
    let name = key.name.as_str();
    match key.kind {
        TargetKind::Deployment => stores.deployments.get(ns, name).is_some(),
        TargetKind::StatefulSet => stores.stateful_sets.get(ns, name).is_some(),
        TargetKind::DaemonSet => stores.daemon_sets.get(ns, name).is_some(),
        TargetKind::ReplicaSet => stores.replica_sets.get(ns, name).is_some(),
        TargetKind::CronJob => stores.cron_jobs.get(ns, name).is_some(),
        TargetKind::Job => stores.jobs.get(ns, name).is_some(),
        TargetKind::ReplicationController => stores.replication_controllers.get(ns, name).is_some(),
        TargetKind::Pod => stores.pods.get(ns, name).is_some(),
        TargetKind::Custom(kind) => stores
            .custom
            .get(kind, ns, name)
            .is_some_and(|o| is_top_level(key.kind, o.meta())),
        _ => matches!(lookup(stores, key), Ok(Some(_))),
    }
}

/// Workload kinds whose objects carry a pod spec.
pub trait PodTemplated {
    fn target_kind() -> TargetKind
    where
        Self: Sized;
    fn pod_spec(&self) -> Option<&PodSpec>;
    fn into_resource(self) -> Resource;
}

macro_rules! templated {
    ($t:ty, $kind:ident, |$o:ident| $spec:expr) => {
        impl PodTemplated for $t {
            fn target_kind() -> TargetKind {
                TargetKind::$kind
            }
            fn pod_spec(&self) -> Option<&PodSpec> {
                let $o = self;
                $spec
            }
            fn into_resource(self) -> Resource {
                Resource::$kind(self)
            }
        }

        impl Packable for $t {
            type Facts = Option<PodFacts>;
            fn facts(&self) -> Option<PodFacts> {
                self.pod_spec().map(PodFacts::of)
            }
        }
    };
}

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Pod, ReplicationController};

templated!(Deployment, Deployment, |o| o
    .spec
    .as_ref()?
    .template
    .spec
    .as_ref());
templated!(StatefulSet, StatefulSet, |o| o
    .spec
    .as_ref()?
    .template
    .spec
    .as_ref());
templated!(DaemonSet, DaemonSet, |o| o
    .spec
    .as_ref()?
    .template
    .spec
    .as_ref());
templated!(ReplicaSet, ReplicaSet, |o| o
    .spec
    .as_ref()?
    .template
    .as_ref()?
    .spec
    .as_ref());
templated!(Job, Job, |o| o.spec.as_ref()?.template.spec.as_ref());
templated!(CronJob, CronJob, |o| o
    .spec
    .as_ref()?
    .job_template
    .spec
    .as_ref()?
    .template
    .spec
    .as_ref());
templated!(ReplicationController, ReplicationController, |o| o
    .spec
    .as_ref()?
    .template
    .as_ref()?
    .spec
    .as_ref());
templated!(Pod, Pod, |o| o.spec.as_ref());

/// Calls `f` with every cached workload of `namespace` (all namespaces for
/// `None`); only top-level workloads are cached.
pub fn for_each_workload(
    stores: &Stores,
    namespace: Option<&str>,
    f: &mut dyn FnMut(TargetKey, &dyn CachedWorkload),
) {
    fn visit<K>(
        store: &MultiStore<Packed<K>>,
        namespace: Option<&str>,
        f: &mut dyn FnMut(TargetKey, &dyn CachedWorkload),
    ) where
        K: Packable<Facts = Option<PodFacts>> + PodTemplated + 'static,
    {
        let objects = match namespace {
            Some(ns) => store.in_namespace(ns),
            None => store.all(),
        };
        for o in objects {
            f(TargetKey::from_meta(K::target_kind(), o.meta()), &*o);
        }
    }
    visit(&stores.deployments, namespace, f);
    visit(&stores.stateful_sets, namespace, f);
    visit(&stores.daemon_sets, namespace, f);
    visit(&stores.replica_sets, namespace, f);
    visit(&stores.cron_jobs, namespace, f);
    visit(&stores.jobs, namespace, f);
    visit(&stores.replication_controllers, namespace, f);
    visit(&stores.pods, namespace, f);
    for object in stores.custom.all(namespace) {
        if is_top_level(object.key().kind, object.meta()) {
            f(object.key(), &*object);
        }
    }
}

fn cloned<K: Clone>(objects: Vec<Arc<K>>) -> Vec<K> {
    objects.into_iter().map(|o| (*o).clone()).collect()
}

/// The objects the checks of `key` may look up: for a namespaced target its
/// namespace's accounts, roles, bindings and network policies plus the
/// cluster's RBAC; for a ServiceAccount or Namespace also the namespace's
/// workloads; for cluster-scoped RBAC the RBAC of every namespace.
///
/// Checks see a subset of the cluster, not all of it, so that evaluating one
/// object does not copy every cache; every lookup a check makes (by
/// namespace, by account, by role reference) lands inside this subset.
pub fn inventory_for(stores: &Stores, key: &TargetKey, subject: Option<&Workload>) -> Inventory {
    let mut inventory = Inventory {
        cluster_roles: cloned(stores.cluster_roles.all()),
        cluster_role_bindings: cloned(stores.cluster_role_bindings.all()),
        config_maps_unread: true,
        ..Inventory::default()
    };
    let namespace = match key.kind {
        TargetKind::Namespace => Some(key.name.as_str()),
        _ => key.namespace.as_deref(),
    };
    match namespace {
        Some(ns) => {
            if let Some(object) = stores.namespaces.get(None, ns) {
                inventory
                    .namespaces
                    .insert(ns.to_owned(), (*object).clone());
            }
            inventory.network_policies = cloned(stores.network_policies.in_namespace(ns));
            inventory.service_accounts = cloned(stores.service_accounts.in_namespace(ns));
            inventory.roles = cloned(stores.roles.in_namespace(ns));
            inventory.role_bindings = cloned(stores.role_bindings.in_namespace(ns));
        }
        None => {
            inventory.service_accounts = cloned(stores.service_accounts.all());
            inventory.roles = cloned(stores.roles.all());
            inventory.role_bindings = cloned(stores.role_bindings.all());
            for ns in stores.namespaces.all() {
                let name = ns.metadata.name.clone().unwrap_or_default();
                inventory.namespaces.insert(name, (*ns).clone());
            }
        }
    }
    if let Some(workload) = subject {
        inventory.workloads.push(workload.clone());
    }
    if matches!(key.kind, TargetKind::ServiceAccount | TargetKind::Namespace) {
        for_each_workload(stores, namespace, &mut |key, w| match w.to_resource() {
            Ok(resource) => inventory.workloads.extend(Workload::from_owned(resource)),
            Err(error) => {
                tracing::error!(workload = %key, %error, "cached workload does not decode; left out")
            }
        });
    }
    inventory
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::stores::testing::{Objects, yaml};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn objects() -> Objects {
        Objects {
            deployments: vec![
                yaml(
                    "{metadata: {name: web, namespace: a}, spec: {selector: {}, template: {spec: {serviceAccountName: builder, containers: [{name: app}]}}}}",
                ),
                yaml(
                    "{metadata: {name: other, namespace: b}, spec: {selector: {}, template: {spec: {containers: [{name: app}]}}}}",
                ),
            ],
            pods: vec![
                yaml(
                    "{metadata: {name: web-1, namespace: a, ownerReferences: [{apiVersion: apps/v1, kind: ReplicaSet, name: web-x, uid: u, controller: true}]}, spec: {containers: [{name: app}]}}",
                ),
                yaml(
                    "{metadata: {name: debug, namespace: a}, spec: {containers: [{name: shell}]}}",
                ),
            ],
            service_accounts: vec![
                yaml("{metadata: {name: builder, namespace: a}}"),
                yaml("{metadata: {name: default, namespace: b}}"),
            ],
            roles: vec![
                yaml("{metadata: {name: r, namespace: a}}"),
                yaml("{metadata: {name: r, namespace: b}}"),
            ],
            namespaces: vec![yaml("{metadata: {name: a}}"), yaml("{metadata: {name: b}}")],
            cluster_roles: vec![yaml("{metadata: {name: admin}}")],
            ..Objects::default()
        }
    }

    #[test]
    fn a_service_account_sees_its_namespace_and_the_cluster_rbac() {
        let stores = objects().into_stores();
        let key = TargetKey::new(TargetKind::ServiceAccount, Some("a"), "builder");
        let inventory = inventory_for(&stores, &key, None);
        let names = |v: Vec<&ObjectMeta>| -> Vec<String> {
            v.into_iter()
                .map(|m| {
                    format!(
                        "{}/{}",
                        m.namespace.clone().unwrap_or_default(),
                        m.name.clone().unwrap_or_default()
                    )
                })
                .collect()
        };
        assert_eq!(
            names(
                inventory
                    .service_accounts
                    .iter()
                    .map(|o| &o.metadata)
                    .collect()
            ),
            ["a/builder"]
        );
        assert_eq!(
            names(inventory.roles.iter().map(|o| &o.metadata).collect()),
            ["a/r"]
        );
        assert_eq!(inventory.cluster_roles.len(), 1);
        assert_eq!(inventory.namespaces.keys().collect::<Vec<_>>(), ["a"]);
        // Top-level workloads of the namespace: the Deployment and the bare
        // Pod, not the Deployment's Pod.
        let mut workloads: Vec<_> = inventory
            .workloads
            .iter()
            .map(|w| w.object.name.clone())
            .collect();
        workloads.sort();
        assert_eq!(workloads, ["debug", "web"]);
    }

    #[test]
    fn workloads_and_their_accounts() {
        let stores = objects().into_stores();
        let mut seen = Vec::new();
        for_each_workload(&stores, None, &mut |key, w| {
            let account = w.facts().map_or("?", |f| &f.service_account);
            seen.push((key.to_string(), account.to_owned()));
        });
        seen.sort();
        assert_eq!(
            seen,
            [
                ("Deployment/a/web".to_owned(), "builder".to_owned()),
                ("Deployment/b/other".to_owned(), "default".to_owned()),
                ("Pod/a/debug".to_owned(), "default".to_owned()),
            ]
        );
        // Controller-owned Pods are not cached; the bare one is.
        let pod = |name| lookup(&stores, &TargetKey::new(TargetKind::Pod, Some("a"), name));
        assert!(pod("web-1").unwrap().is_none());
        let Some(Resource::Pod(debug)) = pod("debug").unwrap() else {
            panic!("the bare Pod is cached");
        };
        assert_eq!(debug.spec.unwrap().containers[0].name, "shell");
        assert!(exists(
            &stores,
            &TargetKey::new(TargetKind::Deployment, Some("b"), "other")
        ));
        assert!(!exists(
            &stores,
            &TargetKey::new(TargetKind::Deployment, Some("a"), "other")
        ));
    }
}
