//! Effective permissions of every service account, kept up to date.
//!
//! Computed once for all accounts, then refreshed after each RBAC watch
//! event for the accounts the event can touch (those named by the changed
//! binding, or in its groups; the subjects of bindings of a changed role).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::analysis::AccountKey;
use super::index::{Affected, BindingKey, Principal, RbacIndex, RoleKey, SourcedRule};
use super::request::{
    ALL_AUTHENTICATED, ALL_SERVICE_ACCOUNTS, UserInfo, split_service_account_username,
};

/// One binding's grant to an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountGrant {
    pub binding: BindingKey,
    pub role: RoleKey,
    /// The namespace it applies in; `None` for cluster-wide.
    pub scope: Option<String>,
    pub rules: Arc<[SourcedRule]>,
}

/// Every account's grants.
#[derive(Clone, Debug, Default)]
pub struct EffectivePermissions {
    by_account: BTreeMap<AccountKey, Vec<AccountGrant>>,
}

impl EffectivePermissions {
    /// Computes the grants of every account.
    pub fn compute(index: &RbacIndex, accounts: impl IntoIterator<Item = AccountKey>) -> Self {
        let by_account = accounts
            .into_iter()
            .map(|account| {
                let grants = grants_of(index, &account);
                (account, grants)
            })
            .collect();
        EffectivePermissions { by_account }
    }

    /// The grants of one account (empty for an unknown one).
    pub fn of(&self, namespace: &str, name: &str) -> &[AccountGrant] {
        self.by_account
            .get(&(namespace.to_owned(), name.to_owned()))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    pub fn accounts(&self) -> impl Iterator<Item = &AccountKey> {
        self.by_account.keys()
    }

    /// Adds an account (a ServiceAccount was created).
    pub fn insert_account(&mut self, index: &RbacIndex, account: AccountKey) {
        let grants = grants_of(index, &account);
        self.by_account.insert(account, grants);
    }

    pub fn remove_account(&mut self, account: &AccountKey) {
        self.by_account.remove(account);
    }

    /// Recomputes the accounts a change touched; returns them.
    pub fn refresh(&mut self, index: &RbacIndex, affected: &Affected) -> Vec<AccountKey> {
        let touched = self.touched(affected);
        for account in &touched {
            let grants = grants_of(index, account);
            self.by_account.insert(account.clone(), grants);
        }
        touched
    }

    /// The known accounts whose username or groups are among the affected
    /// principals, found without visiting every account unless a group of
    /// all accounts is affected.
    fn touched(&self, affected: &Affected) -> Vec<AccountKey> {
        let mut touched: BTreeSet<AccountKey> = BTreeSet::new();
        for principal in &affected.principals {
            match principal {
                Principal::User(name) => {
                    if let Some((ns, sa)) = split_service_account_username(name) {
                        let key = (ns.to_owned(), sa.to_owned());
                        if self.by_account.contains_key(&key) {
                            touched.insert(key);
                        }
                    }
                }
                Principal::Group(group)
                    if group == ALL_SERVICE_ACCOUNTS || group == ALL_AUTHENTICATED =>
                {
                    return self.by_account.keys().cloned().collect();
                }
                Principal::Group(group) => {
                    if let Some(ns) = group
                        .strip_prefix(ALL_SERVICE_ACCOUNTS)
                        .and_then(|rest| rest.strip_prefix(':'))
                    {
                        let start = (ns.to_owned(), String::new());
                        touched.extend(
                            self.by_account
                                .range(start..)
                                .take_while(|((n, _), _)| n == ns)
                                .map(|(k, _)| k.clone()),
                        );
                    }
                }
            }
        }
        touched.into_iter().collect()
    }
}

fn grants_of(index: &RbacIndex, account: &AccountKey) -> Vec<AccountGrant> {
    let user = UserInfo::service_account(&account.0, &account.1);
    index
        .grants_for(&user)
        .into_iter()
        .filter_map(|grant| {
            Some(AccountGrant {
                binding: (*grant.binding.key).clone(),
                role: (*grant.role.key).clone(),
                scope: grant.scope().map(str::to_owned),
                rules: index.effective_rules_shared(&grant.role.key)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::resources;
    use crate::model::Inventory;
    use crate::rbac::index::Change;
    use k8s_openapi::api::rbac::v1::RoleBinding;

    #[test]
    fn refresh_recomputes_only_touched_accounts() {
        let inventory = Inventory::from_resources(&resources(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
"#,
        ));
        let mut index = RbacIndex::build(&inventory.roles, &inventory.cluster_roles, &[], &[]);
        let accounts =
            [("a", "x"), ("a", "y"), ("b", "x")].map(|(n, s)| (n.to_owned(), s.to_owned()));
        let mut cache = EffectivePermissions::compute(&index, accounts);
        assert!(cache.of("a", "x").is_empty());
        let binding: RoleBinding = serde_norway::from_str(
            "metadata: {name: rb, namespace: a}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}\nsubjects: [{kind: ServiceAccount, name: x}]",
        )
        .unwrap();
        let affected = index.apply(Change::RoleBinding(&binding));
        assert_eq!(
            cache.refresh(&index, &affected),
            [("a".to_owned(), "x".to_owned())]
        );
        assert_eq!(cache.of("a", "x").len(), 1);
        assert_eq!(cache.of("a", "x")[0].scope.as_deref(), Some("a"));
        let group: RoleBinding = serde_norway::from_str(
            "metadata: {name: rb, namespace: a}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: reader}\nsubjects: [{kind: Group, name: 'system:serviceaccounts:a'}]",
        )
        .unwrap();
        let affected = index.apply(Change::RoleBinding(&group));
        let touched = cache.refresh(&index, &affected);
        assert_eq!(touched.len(), 2);
        assert_eq!(cache.of("a", "y").len(), 1);
        assert!(cache.of("b", "x").is_empty());
    }
}
