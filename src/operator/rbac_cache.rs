//! One RBAC analysis of the whole cluster, shared by every evaluation and
//! rebuilt only after something it depends on changed (an RBAC object, a
//! ServiceAccount, or the account a workload runs as).
//!
//! Building it per evaluation would repeat the same work for every object;
//! building it from the whole cluster also lets attack paths cross
//! namespaces, as they do in `palisade scan` of the same objects.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::packed::PodFacts;
use super::stores::Stores;
use super::target::TargetKey;
use crate::rbac::RbacAnalysis;
use crate::rbac::analysis::{AccountKey, RunningAs};
use crate::rbac::index::RbacIndex;

#[derive(Default)]
pub struct RbacCache {
    generation: AtomicU64,
    built: Mutex<Option<(u64, Arc<RbacAnalysis>)>>,
    /// What the analysis needs to know about each top-level workload: the
    /// account its pods run as (in the key's namespace) and whether they
    /// get a token.
    workloads: Mutex<HashMap<TargetKey, PodFacts>>,
}

impl RbacCache {
    /// An RBAC object or a ServiceAccount changed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// A top-level workload changed (`None`: it is gone); invalidates only
    /// when the account it runs as, or whether it gets a token, changed.
    pub fn workload_changed(&self, key: &TargetKey, facts: Option<&PodFacts>) {
        let mut workloads = self.workloads.lock().expect("rbac cache lock");
        let changed = match facts {
            Some(next) => workloads.insert(key.clone(), next.clone()).as_ref() != Some(next),
            None => workloads.remove(key).is_some(),
        };
        drop(workloads);
        if changed {
            self.invalidate();
        }
    }

    /// The analysis of the current caches, rebuilt if anything changed.
    ///
    /// After a rebuild, `chains_changed` gets the accounts whose path to
    /// cluster admin changed. A chain can run through other accounts (create
    /// pods in a namespace whose account is powerful), so an RBAC change can
    /// affect accounts its bindings do not name; those are found here.
    pub fn get(
        &self,
        stores: &Stores,
        chains_changed: impl FnOnce(Vec<AccountKey>),
    ) -> Arc<RbacAnalysis> {
        let generation = self.generation.load(Ordering::SeqCst);
        let mut built = self.built.lock().expect("rbac cache lock");
        if let Some((at, analysis)) = built.as_ref()
            && *at == generation
        {
            return analysis.clone();
        }
        let (analysis, accounts) = self.build(stores);
        let analysis = Arc::new(analysis);
        let previous = built.replace((generation, analysis.clone()));
        drop(built);
        if let Some((_, previous)) = previous {
            let changed: Vec<AccountKey> = accounts
                .into_iter()
                .filter(|(ns, name)| {
                    previous.admin_chain(ns, name) != analysis.admin_chain(ns, name)
                })
                .collect();
            if !changed.is_empty() {
                chains_changed(changed);
            }
        }
        analysis
    }

    fn build(&self, stores: &Stores) -> (RbacAnalysis, BTreeSet<AccountKey>) {
        let started = std::time::Instant::now();
        let roles = stores.roles.all();
        let cluster_roles = stores.cluster_roles.all();
        let role_bindings = stores.role_bindings.all();
        let cluster_role_bindings = stores.cluster_role_bindings.all();
        let index = RbacIndex::build(
            roles.iter().map(|r| &**r),
            cluster_roles.iter().map(|r| &**r),
            role_bindings.iter().map(|r| &**r),
            cluster_role_bindings.iter().map(|r| &**r),
        );
        let service_accounts = stores.service_accounts.all();
        let account_automount: HashMap<AccountKey, Option<bool>> = service_accounts
            .iter()
            .map(|sa| {
                let key = (
                    sa.metadata.namespace.clone().unwrap_or_default(),
                    sa.metadata.name.clone().unwrap_or_default(),
                );
                (key, sa.automount_service_account_token)
            })
            .collect();
        let mut accounts: BTreeSet<AccountKey> = account_automount.keys().cloned().collect();
        let mut running: Vec<RunningAs> = Vec::new();
        for (key, facts) in self.workloads.lock().expect("rbac cache lock").iter() {
            let namespace = key.namespace.clone().unwrap_or_default();
            let account = (namespace, facts.service_account.clone());
            let account_setting = account_automount.get(&account).copied().flatten();
            let mounted =
                facts.projected_token || facts.automount_token.or(account_setting).unwrap_or(true);
            if mounted {
                running.push(RunningAs {
                    workload: format!("{} {}", key.kind, key.name),
                    account,
                });
            }
        }
        // Deterministic order, whatever the map's.
        running.sort_by(|a, b| (&a.account, &a.workload).cmp(&(&b.account, &b.workload)));
        accounts.extend(running.iter().map(|r| r.account.clone()));
        let analysis = RbacAnalysis::from_index(index, accounts.clone(), running);
        tracing::debug!(elapsed = ?started.elapsed(), roles = roles.len() + cluster_roles.len(),
            bindings = role_bindings.len() + cluster_role_bindings.len(), "RBAC analysis rebuilt");
        (analysis, accounts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::stores::testing::{Objects, yaml};
    use crate::operator::target::TargetKind;
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;

    fn spec(account: &str) -> PodFacts {
        let spec: k8s_openapi::api::core::v1::PodSpec = yaml(&format!(
            "{{serviceAccountName: {account}, containers: [{{name: app}}]}}"
        ));
        PodFacts::of(&spec)
    }

    #[test]
    fn only_a_change_of_account_invalidates_for_a_workload() {
        let cache = RbacCache::default();
        let key = TargetKey::new(TargetKind::Deployment, Some("a"), "web");
        let generation = || cache.generation.load(Ordering::SeqCst);
        cache.workload_changed(&key, Some(&spec("builder")));
        assert_eq!(generation(), 1);
        cache.workload_changed(&key, Some(&spec("builder")));
        assert_eq!(generation(), 1, "same account: nothing to rebuild");
        cache.workload_changed(&key, Some(&spec("deployer")));
        assert_eq!(generation(), 2);
        cache.workload_changed(&key, None);
        assert_eq!(generation(), 3);
        cache.workload_changed(&key, None);
        assert_eq!(generation(), 3);
    }

    #[test]
    fn the_analysis_is_reused_until_something_changes_and_chain_changes_are_reported() {
        let admin_binding: ClusterRoleBinding = yaml(
            "{metadata: {name: ops-admin}, roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}, subjects: [{kind: ServiceAccount, name: ops, namespace: a}]}",
        );
        let objects = || Objects {
            service_accounts: vec![yaml("{metadata: {name: ops, namespace: a}}")],
            ..Objects::default()
        };
        let cache = RbacCache::default();
        let stores = objects().into_stores();
        let first = cache.get(&stores, |_| panic!("nothing to compare with yet"));
        let again = cache.get(&stores, |_| panic!("unchanged"));
        assert!(Arc::ptr_eq(&first, &again));
        assert!(first.admin_chain("a", "ops").is_none());

        let with_binding = Objects {
            cluster_role_bindings: vec![admin_binding],
            ..objects()
        }
        .into_stores();
        cache.invalidate();
        let mut changed = Vec::new();
        let next = cache.get(&with_binding, |accounts| changed = accounts);
        assert!(next.admin_chain("a", "ops").is_some());
        assert_eq!(changed, [("a".to_owned(), "ops".to_owned())]);
    }
}
