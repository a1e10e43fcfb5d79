//! The RBAC objects of a cluster, indexed for the authorizer's questions and
//! kept up to date one object at a time.
//!
//! The authorizer (`plugin/pkg/auth/authorizer/rbac`) visits every
//! ClusterRoleBinding, then — for a request with a namespace — every
//! RoleBinding of that namespace, and allows the request when a binding with a
//! subject that applies to the user references a role with a rule that
//! allows it. The index finds the same bindings without visiting all of them:
//! bindings are filed under the principals (username or group) their subjects
//! match, so a user's candidate bindings are those filed under their name and
//! their groups.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::aggregation::{self, AggregationInput};
use super::bootstrap;
use super::default_policy::{self, DefaultStatus};
use super::request::{Request, SYSTEM_MASTERS, UserInfo, service_account_username};
use super::rule::{Rule, SharedRules};
use crate::model::Resource;

/// A Role (namespaced) or ClusterRole.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RoleKey {
    ClusterRole(String),
    Role { namespace: String, name: String },
}

impl RoleKey {
    pub fn cluster(name: &str) -> RoleKey {
        RoleKey::ClusterRole(name.to_owned())
    }

    pub fn namespaced(namespace: &str, name: &str) -> RoleKey {
        RoleKey::Role {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RoleKey::ClusterRole(_) => "ClusterRole",
            RoleKey::Role { .. } => "Role",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            RoleKey::ClusterRole(name) | RoleKey::Role { name, .. } => name,
        }
    }
}

impl fmt::Display for RoleKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoleKey::ClusterRole(name) => write!(f, "ClusterRole {name}"),
            RoleKey::Role { namespace, name } => write!(f, "Role {namespace}/{name}"),
        }
    }
}

/// A RoleBinding (with its namespace) or ClusterRoleBinding (without).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BindingKey {
    pub namespace: Option<String>,
    pub name: String,
}

impl BindingKey {
    pub fn cluster(name: &str) -> BindingKey {
        BindingKey {
            namespace: None,
            name: name.to_owned(),
        }
    }

    pub fn namespaced(namespace: &str, name: &str) -> BindingKey {
        BindingKey {
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.namespace {
            None => "ClusterRoleBinding",
            Some(_) => "RoleBinding",
        }
    }
}

impl fmt::Display for BindingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            None => write!(f, "ClusterRoleBinding {}", self.name),
            Some(ns) => write!(f, "RoleBinding {ns}/{}", self.name),
        }
    }
}

/// Where a rule was written: the role and the index in its `rules`. For an
/// aggregated ClusterRole, the role the rule was aggregated from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleOrigin {
    /// Shared by every rule of the role.
    pub role: Arc<RoleKey>,
    pub index: usize,
}

impl fmt::Display for RuleOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rules[{}]", self.role, self.index)
    }
}

/// A rule with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourcedRule {
    /// Shared by every role with the same rule.
    pub rule: Arc<Rule>,
    pub origin: RuleOrigin,
}

/// Who a binding subject matches: a username (users, and service accounts
/// by their `system:serviceaccount:NS:NAME` username) or a group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Principal {
    User(String),
    Group(String),
}

/// A role as stored.
#[derive(Clone, Debug)]
pub struct RoleData {
    /// Shared with the index's maps and the origin of each rule.
    pub key: Arc<RoleKey>,
    pub labels: BTreeMap<String, String>,
    /// `aggregationRule.clusterRoleSelectors` of an aggregated ClusterRole.
    pub aggregation: Option<Vec<LabelSelector>>,
    /// Why the role belongs to the default policy, if it does.
    pub bootstrap: Option<String>,
    /// What the role claims, when it claims to be a default and is not.
    pub claims_default: Option<String>,
    /// A default ClusterRole Palisade stands in for (not among the objects).
    pub stand_in: bool,
    /// `rules` with their origins, shared with the effective rules.
    own: Arc<[SourcedRule]>,
}

impl RoleData {
    fn new(
        key: RoleKey,
        labels: BTreeMap<String, String>,
        rules: Vec<Arc<Rule>>,
        aggregation: Option<Vec<LabelSelector>>,
        default_status: DefaultStatus,
        stand_in: bool,
    ) -> RoleData {
        let role = Arc::new(key);
        let own = rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| SourcedRule {
                rule,
                origin: RuleOrigin {
                    role: Arc::clone(&role),
                    index,
                },
            })
            .collect();
        RoleData {
            key: role,
            labels,
            aggregation,
            bootstrap: default_status.default_reason(),
            claims_default: default_status.claim(),
            stand_in,
            own,
        }
    }
}

/// One subject of a binding, as written.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubjectRef {
    pub kind: String,
    pub name: String,
    /// As written; for a ServiceAccount in a RoleBinding, empty means the
    /// binding's namespace.
    pub namespace: String,
}

impl SubjectRef {
    /// The principal this subject matches in a binding of `binding_namespace`
    /// (`appliesToUser`): a User by exact name, a Group by membership, a
    /// ServiceAccount by its username with the namespace defaulting to the
    /// RoleBinding's; a ServiceAccount without a namespace in a
    /// ClusterRoleBinding, and unknown kinds, match nobody.
    pub fn principal(&self, binding_namespace: Option<&str>) -> Option<Principal> {
        match self.kind.as_str() {
            "User" => Some(Principal::User(self.name.clone())),
            "Group" => Some(Principal::Group(self.name.clone())),
            "ServiceAccount" => {
                let namespace = self.effective_namespace(binding_namespace)?;
                Some(Principal::User(service_account_username(
                    namespace, &self.name,
                )))
            }
            _ => None,
        }
    }

    /// The namespace a ServiceAccount subject refers to.
    pub fn effective_namespace<'a>(
        &'a self,
        binding_namespace: Option<&'a str>,
    ) -> Option<&'a str> {
        if !self.namespace.is_empty() {
            return Some(&self.namespace);
        }
        binding_namespace.filter(|ns| !ns.is_empty())
    }

    /// `User alice`, `Group dev`, `ServiceAccount shop/api`.
    pub fn describe(&self, binding_namespace: Option<&str>) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => match self.effective_namespace(binding_namespace) {
                Some(ns) => format!("ServiceAccount {ns}/{}", self.name),
                None => format!(
                    "ServiceAccount {} (no namespace: matches nobody)",
                    self.name
                ),
            },
            kind => format!("{kind} {}", self.name),
        }
    }
}

/// A binding as stored.
#[derive(Clone, Debug)]
pub struct BindingData {
    /// Shared with the index's maps.
    pub key: Arc<BindingKey>,
    pub role_ref: RoleRef,
    pub subjects: Vec<SubjectRef>,
    pub labels: BTreeMap<String, String>,
    /// Why the binding belongs to the default policy, if it does.
    pub bootstrap: Option<String>,
    /// What the binding claims, when it claims to be a default and is not.
    pub claims_default: Option<String>,
}

impl BindingData {
    /// The role the authorizer resolves (`GetRoleReferenceRules`): a Role in
    /// the binding's namespace or a ClusterRole; `None` for any other kind
    /// (and for a Role referenced from a ClusterRoleBinding).
    pub fn role_key(&self) -> Option<RoleKey> {
        match (self.role_ref.kind.as_str(), &self.key.namespace) {
            ("ClusterRole", _) => Some(RoleKey::cluster(&self.role_ref.name)),
            ("Role", Some(ns)) => Some(RoleKey::namespaced(ns, &self.role_ref.name)),
            _ => None,
        }
    }

    fn principals(&self) -> impl Iterator<Item = Principal> + '_ {
        let namespace = self.key.namespace.as_deref();
        self.subjects
            .iter()
            .filter_map(move |s| s.principal(namespace))
    }

    /// Whether the binding applies to requests in `namespace` (`""` for
    /// cluster-scoped and non-resource requests): ClusterRoleBindings always,
    /// RoleBindings only in their own namespace.
    pub fn in_scope(&self, namespace: &str) -> bool {
        match &self.key.namespace {
            None => true,
            Some(ns) => !namespace.is_empty() && ns == namespace,
        }
    }

    /// The namespace the binding grants in, `None` for cluster-wide.
    pub fn scope(&self) -> Option<&str> {
        self.key.namespace.as_deref()
    }
}

/// The authorizer's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The user is in `system:masters`, which bypasses RBAC.
    AllowedPrivilegedGroup,
    /// A rule allows it.
    Allowed(Provenance),
    Denied,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Decision::Denied)
    }
}

/// Which binding, role and rule grant something.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provenance {
    pub binding: BindingKey,
    pub role: RoleKey,
    /// Index in the role's effective rules.
    pub rule_index: usize,
    pub origin: RuleOrigin,
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} → {}", self.binding, self.role)?;
        if *self.origin.role != self.role {
            write!(f, " (aggregated from {})", self.origin)
        } else {
            write!(f, " rules[{}]", self.origin.index)
        }
    }
}

/// One permission a user holds through one binding.
#[derive(Clone, Copy, Debug)]
pub struct Grant<'a> {
    pub binding: &'a BindingData,
    pub role: &'a RoleData,
    pub rules: &'a [SourcedRule],
}

impl Grant<'_> {
    /// The namespace the grant applies in, `None` for cluster-wide.
    pub fn scope(&self) -> Option<&str> {
        self.binding.scope()
    }
}

/// A user's grants, resolved, to ask many questions about.
#[derive(Clone, Debug)]
pub struct PreparedUser<'a> {
    masters: bool,
    grants: Vec<Grant<'a>>,
}

impl PreparedUser<'_> {
    /// The authorizer's decision for this user.
    pub fn authorize(&self, request: &Request) -> Decision {
        if self.masters {
            return Decision::AllowedPrivilegedGroup;
        }
        let namespace = request.namespace();
        for grant in &self.grants {
            if !grant.binding.in_scope(namespace) {
                continue;
            }
            if let Some(rule_index) = grant.rules.iter().position(|r| r.rule.allows(request)) {
                return Decision::Allowed(Provenance {
                    binding: (*grant.binding.key).clone(),
                    role: (*grant.role.key).clone(),
                    rule_index,
                    origin: grant.rules[rule_index].origin.clone(),
                });
            }
        }
        Decision::Denied
    }

    /// The namespaces where a grant of the user with a rule for which
    /// `relevant` holds applies; `None` when one applies in every namespace
    /// (a ClusterRoleBinding, or `system:masters`). What only such rules
    /// allow is denied in every other namespace.
    pub fn namespaces_where(&self, relevant: impl Fn(&Rule) -> bool) -> Option<BTreeSet<&str>> {
        if self.masters {
            return None;
        }
        self.grants
            .iter()
            .filter(|g| g.rules.iter().any(|r| relevant(&r.rule)))
            .map(Grant::scope)
            .collect()
    }

    /// Whether some rule of the user could allow `verb` on the resource for
    /// some name in some namespace. When not, every such request is denied,
    /// which spares asking it namespace by namespace and name by name.
    pub fn may_somewhere(&self, verb: &str, group: &str, resource: &str, sub: &str) -> bool {
        self.masters
            || (self.grants.iter())
                .any(|g| (g.rules.iter()).any(|r| r.rule.could_allow(verb, group, resource, sub)))
    }

    /// The names some rule of the user could allow `verb` on the resource
    /// for, in some namespace; `None` when one allows every name (it lists
    /// no `resourceNames`). Requests for other names are denied everywhere.
    pub fn names_somewhere(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
    ) -> Option<BTreeSet<&str>> {
        if self.masters {
            return None;
        }
        let mut names = BTreeSet::new();
        let rules = self.grants.iter().flat_map(|g| g.rules.iter());
        for rule in rules.map(|r| &r.rule) {
            if rule.could_allow(verb, group, resource, sub) {
                if rule.resource_names.is_empty() {
                    return None;
                }
                names.extend(rule.resource_names.iter().map(String::as_str));
            }
        }
        Some(names)
    }

    /// Whether the user holds any grant at all (or is in `system:masters`).
    pub fn has_grants(&self) -> bool {
        self.masters || !self.grants.is_empty()
    }

    pub fn grants(&self) -> &[Grant<'_>] {
        &self.grants
    }
}

/// Someone `who-can` finds.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct WhoCan {
    pub subject: String,
    pub binding: BindingKey,
    pub role: RoleKey,
    pub rule_index: usize,
    /// Where the rule was written (another ClusterRole, for an aggregated one).
    pub origin: RuleOrigin,
}

/// One RBAC object added, changed or removed (a watch event).
#[derive(Clone, Debug)]
pub enum Change<'a> {
    Role(&'a Role),
    ClusterRole(&'a ClusterRole),
    RoleBinding(&'a RoleBinding),
    ClusterRoleBinding(&'a ClusterRoleBinding),
    DeleteRole { namespace: &'a str, name: &'a str },
    DeleteClusterRole { name: &'a str },
    DeleteRoleBinding { namespace: &'a str, name: &'a str },
    DeleteClusterRoleBinding { name: &'a str },
}

/// The principals whose permissions a change may have changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Affected {
    pub principals: BTreeSet<Principal>,
}

impl Affected {
    /// Whether the service account `namespace/name` may have new permissions:
    /// its username or one of its groups is affected.
    pub fn touches_service_account(&self, namespace: &str, name: &str) -> bool {
        let user = UserInfo::service_account(namespace, name);
        self.touches(&user)
    }

    pub fn touches(&self, user: &UserInfo) -> bool {
        self.principals
            .contains(&Principal::User(user.name.clone()))
            || user
                .groups
                .iter()
                .any(|g| self.principals.contains(&Principal::Group(g.clone())))
    }

    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }
}

/// What the index keeps of one RBAC object. A scan of a large manifest
/// set works this out as each object is read, and does not keep the
/// object in memory.
pub enum RbacData {
    Role(RoleData),
    Binding(BindingData),
}

impl RbacData {
    /// What the index keeps of `resource`, if it is a role or a binding;
    /// a role's rules are shared with those of `rules`.
    pub fn of(resource: &Resource, rules: &mut SharedRules) -> Option<RbacData> {
        match resource {
            Resource::Role(o) => Some(RbacData::Role(role_data_of_role(o, rules))),
            Resource::ClusterRole(o) => Some(RbacData::Role(role_data_of_cluster_role(o, rules))),
            Resource::RoleBinding(o) => Some(RbacData::Binding(binding_data_of_role_binding(o))),
            Resource::ClusterRoleBinding(o) => {
                Some(RbacData::Binding(binding_data_of_cluster_role_binding(o)))
            }
            _ => None,
        }
    }
}

/// The indexed RBAC objects.
#[derive(Clone, Debug, Default)]
pub struct RbacIndex {
    // The keys are shared with the data: a large cluster has hundreds of
    // thousands of roles and bindings, each key in three or four places.
    roles: BTreeMap<Arc<RoleKey>, RoleData>,
    /// Effective rules: stored rules, or the aggregation union.
    effective: HashMap<Arc<RoleKey>, Arc<[SourcedRule]>>,
    bindings: BTreeMap<Arc<BindingKey>, BindingData>,
    by_principal: HashMap<Principal, BindingKeys>,
    by_role: HashMap<Arc<RoleKey>, BindingKeys>,
}

impl RbacIndex {
    /// Indexes the objects; default ClusterRoles absent from them
    /// (`cluster-admin`, `admin`, `edit`, `view`) are stood in for.
    pub fn build<'a>(
        roles: impl IntoIterator<Item = &'a Role>,
        cluster_roles: impl IntoIterator<Item = &'a ClusterRole>,
        role_bindings: impl IntoIterator<Item = &'a RoleBinding>,
        cluster_role_bindings: impl IntoIterator<Item = &'a ClusterRoleBinding>,
    ) -> RbacIndex {
        let mut rules = SharedRules::default();
        let mut all_roles: Vec<RoleData> = (roles.into_iter())
            .map(|role| role_data_of_role(role, &mut rules))
            .collect();
        all_roles.extend(
            (cluster_roles.into_iter()).map(|role| role_data_of_cluster_role(role, &mut rules)),
        );
        let bindings = (role_bindings.into_iter().map(binding_data_of_role_binding))
            .chain((cluster_role_bindings.into_iter()).map(binding_data_of_cluster_role_binding));
        RbacIndex::from_data(all_roles, bindings)
    }

    /// Indexes what was kept of each role and binding ([`RbacData`]); of
    /// a role or binding given twice, the last is kept.
    pub fn from_data(
        roles: impl IntoIterator<Item = RoleData>,
        bindings: impl IntoIterator<Item = BindingData>,
    ) -> RbacIndex {
        // The maps are built from all their entries at once, which fills
        // every node: inserting keys one by one in order, as the input
        // mostly has them, leaves each node of a B-tree half empty.
        let mut index = RbacIndex {
            roles: (roles.into_iter())
                .map(|data| (data.key.clone(), data))
                .collect(),
            ..RbacIndex::default()
        };
        index.add_stand_ins();
        let bindings: Vec<BindingData> = bindings.into_iter().collect();
        for data in &bindings {
            index.index_binding(data);
        }
        index.bindings = (bindings.into_iter())
            .map(|data| (data.key.clone(), data))
            .collect();
        index.recompute_all_effective();
        index
    }

    fn add_stand_ins(&mut self) {
        for default in bootstrap::default_cluster_roles() {
            let key = RoleKey::cluster(default.name);
            self.roles.entry(Arc::new(key.clone())).or_insert_with(|| {
                let reason = format!(
                    "`{}` is a default ClusterRole of the API server",
                    default.name
                );
                RoleData::new(
                    key,
                    default.labels,
                    default.rules.into_iter().map(Arc::new).collect(),
                    default.aggregation,
                    DefaultStatus::Default(reason),
                    true,
                )
            });
        }
    }

    pub fn roles(&self) -> impl Iterator<Item = &RoleData> {
        self.roles.values()
    }

    pub fn role(&self, key: &RoleKey) -> Option<&RoleData> {
        self.roles.get(key)
    }

    pub fn bindings(&self) -> impl Iterator<Item = &BindingData> {
        self.bindings.values()
    }

    pub fn binding(&self, key: &BindingKey) -> Option<&BindingData> {
        self.bindings.get(key)
    }

    /// The rules the authorizer uses for a role (aggregation applied);
    /// `None` when the role does not exist.
    pub fn effective_rules(&self, key: &RoleKey) -> Option<&[SourcedRule]> {
        self.effective.get(key).map(|rules| &**rules)
    }

    /// The same rules, shared (for caches that outlive a borrow of the index).
    pub fn effective_rules_shared(&self, key: &RoleKey) -> Option<Arc<[SourcedRule]>> {
        self.effective.get(key).cloned()
    }

    /// The role a binding resolves to, when it exists.
    pub fn resolve(&self, binding: &BindingData) -> Option<(&RoleData, &[SourcedRule])> {
        let key = binding.role_key()?;
        Some((self.roles.get(&key)?, self.effective_rules(&key)?))
    }

    /// Bindings whose role does not exist (the authorizer skips them with
    /// an error until the role appears).
    pub fn dangling_bindings(&self) -> impl Iterator<Item = &BindingData> {
        self.bindings.values().filter(|b| self.resolve(b).is_none())
    }

    /// Bindings that reference `role`.
    pub fn bindings_of_role(&self, role: &RoleKey) -> impl Iterator<Item = &BindingData> {
        self.by_role
            .get(role)
            .into_iter()
            .flatten()
            .filter_map(|key| self.bindings.get(key))
    }

    /// The authorizer's decision: `system:masters` first (it bypasses RBAC),
    /// then every binding that applies to the user and is in scope of the
    /// request's namespace.
    pub fn authorize(&self, user: &UserInfo, request: &Request) -> Decision {
        self.prepare(user).authorize(request)
    }

    /// The user's bindings, resolved once, for many questions about them.
    pub fn prepare(&self, user: &UserInfo) -> PreparedUser<'_> {
        PreparedUser {
            masters: user.in_group(SYSTEM_MASTERS),
            grants: self.grants_for(user),
        }
    }

    /// Bindings with a subject that applies to the user, ClusterRoleBindings
    /// first, each sorted by name.
    fn candidate_bindings(&self, user: &UserInfo) -> Vec<&BindingKey> {
        let mut keys: Vec<&BindingKey> = std::iter::once(Principal::User(user.name.clone()))
            .chain(user.groups.iter().map(|g| Principal::Group(g.clone())))
            .filter_map(|p| self.by_principal.get(&p))
            .flatten()
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Every permission the user holds, binding by binding, in the order
    /// the authorizer visits them.
    pub fn grants_for(&self, user: &UserInfo) -> Vec<Grant<'_>> {
        self.candidate_bindings(user)
            .into_iter()
            .filter_map(|key| {
                let binding = &self.bindings[key];
                let (role, rules) = self.resolve(binding)?;
                Some(Grant {
                    binding,
                    role,
                    rules,
                })
            })
            .collect()
    }

    /// Every subject granted the request, with the binding and rule, sorted.
    /// `system:masters` is not listed: it bypasses RBAC for everything.
    pub fn who_can(&self, request: &Request) -> Vec<WhoCan> {
        let namespace = request.namespace();
        let mut found = Vec::new();
        for binding in self.bindings.values() {
            if !binding.in_scope(namespace) {
                continue;
            }
            let Some((role, rules)) = self.resolve(binding) else {
                continue;
            };
            let Some(rule_index) = rules.iter().position(|r| r.rule.allows(request)) else {
                continue;
            };
            let binding_ns = binding.key.namespace.as_deref();
            for subject in &binding.subjects {
                if subject.principal(binding_ns).is_none() {
                    continue;
                }
                found.push(WhoCan {
                    subject: subject.describe(binding_ns),
                    binding: (*binding.key).clone(),
                    role: (*role.key).clone(),
                    rule_index,
                    origin: rules[rule_index].origin.clone(),
                });
            }
        }
        found.sort();
        found.dedup();
        found
    }

    /// Applies one watch event; returns whose permissions may have changed.
    pub fn apply(&mut self, change: Change<'_>) -> Affected {
        match change {
            Change::RoleBinding(b) => self.replace_binding(binding_data_of_role_binding(b)),
            Change::ClusterRoleBinding(b) => {
                self.replace_binding(binding_data_of_cluster_role_binding(b))
            }
            Change::DeleteRoleBinding { namespace, name } => {
                self.remove_binding(&BindingKey::namespaced(namespace, name))
            }
            Change::DeleteClusterRoleBinding { name } => {
                self.remove_binding(&BindingKey::cluster(name))
            }
            Change::Role(r) => self.replace_role(role_data_of_role(r, &mut SharedRules::default())),
            Change::ClusterRole(r) => {
                self.replace_role(role_data_of_cluster_role(r, &mut SharedRules::default()))
            }
            Change::DeleteRole { namespace, name } => {
                self.remove_role(&RoleKey::namespaced(namespace, name))
            }
            Change::DeleteClusterRole { name } => self.remove_role(&RoleKey::cluster(name)),
        }
    }

    fn replace_binding(&mut self, data: BindingData) -> Affected {
        let mut affected = self.remove_binding(&data.key.clone());
        affected.principals.extend(data.principals());
        self.insert_binding(data);
        affected
    }

    fn insert_binding(&mut self, data: BindingData) {
        self.index_binding(&data);
        self.bindings.insert(data.key.clone(), data);
    }

    /// Indexes a binding by its principals and its role.
    fn index_binding(&mut self, data: &BindingData) {
        for principal in data.principals() {
            self.by_principal
                .entry(principal)
                .or_default()
                .insert(data.key.clone());
        }
        if let Some(role) = data.role_key() {
            let role = self.shared_role_key(&role);
            self.by_role
                .entry(role)
                .or_default()
                .insert(data.key.clone());
        }
    }

    fn remove_binding(&mut self, key: &BindingKey) -> Affected {
        let Some(old) = self.bindings.remove(key) else {
            return Affected::default();
        };
        let principals: BTreeSet<Principal> = old.principals().collect();
        for principal in &principals {
            if let Some(keys) = self.by_principal.get_mut(principal) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_principal.remove(principal);
                }
            }
        }
        if let Some(role) = old.role_key()
            && let Some(keys) = self.by_role.get_mut(&role)
        {
            keys.remove(key);
            if keys.is_empty() {
                self.by_role.remove(&role);
            }
        }
        Affected { principals }
    }

    fn replace_role(&mut self, data: RoleData) -> Affected {
        let key = data.key.clone();
        let old = self.roles.insert(key.clone(), data);
        self.role_changed(&key, old)
    }

    fn remove_role(&mut self, key: &RoleKey) -> Affected {
        match self.roles.remove(key) {
            Some(old) => self.role_changed(key, Some(old)),
            None => Affected::default(),
        }
    }

    /// Recomputes what a role change touches: the role's own effective
    /// rules and, when the change can alter an aggregation (an aggregated
    /// role changed, or the role's old or new labels are selected by one),
    /// every aggregated ClusterRole; then collects the principals of the
    /// bindings of every role whose effective rules changed.
    fn role_changed(&mut self, key: &RoleKey, old: Option<RoleData>) -> Affected {
        let mut changed: Vec<RoleKey> = Vec::new();
        let own = self
            .roles
            .get(key)
            .filter(|r| r.aggregation.is_none())
            .map(own_rules);
        let aggregated_now = self.roles.get(key).is_some_and(|r| r.aggregation.is_some());
        if !aggregated_now && self.set_effective(key, own) {
            changed.push(key.clone());
        }
        let touches_aggregation = matches!(key, RoleKey::ClusterRole(_))
            && (aggregated_now
                || old.as_ref().is_some_and(|o| o.aggregation.is_some())
                || old
                    .as_ref()
                    .is_some_and(|o| self.selected_by_aggregation(&o.labels))
                || self
                    .roles
                    .get(key)
                    .is_some_and(|r| self.selected_by_aggregation(&r.labels)));
        if touches_aggregation {
            let before: Vec<(RoleKey, Option<Arc<[SourcedRule]>>)> = self
                .roles
                .values()
                .filter(|r| r.aggregation.is_some())
                .map(|r| (RoleKey::clone(&r.key), self.effective.get(&*r.key).cloned()))
                .collect();
            let was_aggregated = old.as_ref().is_some_and(|o| o.aggregation.is_some());
            if was_aggregated && !aggregated_now && !changed.contains(key) {
                changed.push(key.clone());
            }
            self.recompute_aggregated();
            for (k, old_rules) in before {
                if self.effective.get(&k).map(|r| &**r) != old_rules.as_deref()
                    && !changed.contains(&k)
                {
                    changed.push(k);
                }
            }
        }
        let mut affected = Affected::default();
        for role in &changed {
            for binding in self.bindings_of_role(role) {
                affected.principals.extend(binding.principals());
            }
        }
        affected
    }

    /// Whether some aggregated ClusterRole selects these labels.
    fn selected_by_aggregation(&self, labels: &BTreeMap<String, String>) -> bool {
        self.roles.values().any(|r| {
            r.aggregation
                .as_deref()
                .is_some_and(|s| aggregation::selects(s, labels))
        })
    }

    /// Sets a role's effective rules; true when they changed.
    fn set_effective(&mut self, key: &RoleKey, rules: Option<Arc<[SourcedRule]>>) -> bool {
        match rules {
            Some(rules) => match self
                .effective
                .insert(self.shared_role_key(key), rules.clone())
            {
                Some(old) => old != rules,
                None => true,
            },
            None => self.effective.remove(key).is_some(),
        }
    }

    /// The key of the role as the index holds it, shared; a new one for a
    /// role it does not hold.
    fn shared_role_key(&self, key: &RoleKey) -> Arc<RoleKey> {
        match self.roles.get_key_value(key) {
            Some((shared, _)) => Arc::clone(shared),
            None => Arc::new(key.clone()),
        }
    }

    fn recompute_all_effective(&mut self) {
        self.effective = self
            .roles
            .values()
            .filter(|r| r.aggregation.is_none())
            .map(|r| (r.key.clone(), own_rules(r)))
            .collect();
        self.recompute_aggregated();
    }

    /// Recomputes the rules of every aggregated ClusterRole.
    fn recompute_aggregated(&mut self) {
        if self.roles.values().all(|r| r.aggregation.is_none()) {
            return;
        }
        let inputs: BTreeMap<&str, AggregationInput<'_>> = self
            .roles
            .values()
            .filter_map(|r| match &*r.key {
                RoleKey::ClusterRole(name) => Some((
                    name.as_str(),
                    AggregationInput {
                        labels: &r.labels,
                        own_rules: own_rules(r),
                        selectors: r.aggregation.as_deref(),
                    },
                )),
                RoleKey::Role { .. } => None,
            })
            .collect();
        let aggregated = aggregation::aggregate(&inputs);
        for (name, rules) in aggregated {
            let key = self.shared_role_key(&RoleKey::ClusterRole(name));
            self.effective.insert(key, rules);
        }
    }

    /// Whether a ClusterRole's labels put it into an aggregated role's union.
    pub fn aggregated_into(&self, role: &RoleData) -> Vec<&RoleData> {
        self.roles
            .values()
            .filter(|r| r.key != role.key)
            .filter(|r| {
                r.aggregation
                    .as_deref()
                    .is_some_and(|s| aggregation::selects(s, &role.labels))
            })
            .collect()
    }
}

fn own_rules(role: &RoleData) -> Arc<[SourcedRule]> {
    role.own.clone()
}

fn rules_of(
    rules: Option<&Vec<k8s_openapi::api::rbac::v1::PolicyRule>>,
    shared: &mut SharedRules,
) -> Vec<Arc<Rule>> {
    (rules.into_iter().flatten())
        .map(|rule| shared.share(Rule::from(rule)))
        .collect()
}

fn name_of(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn role_data_of_role(role: &Role, rules: &mut SharedRules) -> RoleData {
    let namespace = role.metadata.namespace.clone().unwrap_or_default();
    RoleData::new(
        RoleKey::Role {
            namespace,
            name: name_of(&role.metadata),
        },
        role.metadata.labels.clone().unwrap_or_default(),
        rules_of(role.rules.as_ref(), rules),
        None,
        default_policy::role_status(role),
        false,
    )
}

fn role_data_of_cluster_role(role: &ClusterRole, rules: &mut SharedRules) -> RoleData {
    RoleData::new(
        RoleKey::ClusterRole(name_of(&role.metadata)),
        role.metadata.labels.clone().unwrap_or_default(),
        rules_of(role.rules.as_ref(), rules),
        role.aggregation_rule
            .as_ref()
            .map(|a| a.cluster_role_selectors.clone().unwrap_or_default()),
        default_policy::cluster_role_status(role),
        false,
    )
}

fn subjects_of(subjects: Option<&Vec<Subject>>) -> Vec<SubjectRef> {
    // Collected from the slice, whose length is known: through `flatten`
    // the list would start with room for four (288 bytes for the usual
    // single subject, kept for every binding of a large cluster).
    let subjects = subjects.map_or(&[][..], Vec::as_slice);
    subjects
        .iter()
        .map(|s| SubjectRef {
            kind: s.kind.clone(),
            name: s.name.clone(),
            namespace: s.namespace.clone().unwrap_or_default(),
        })
        .collect()
}

fn binding_data_of_role_binding(binding: &RoleBinding) -> BindingData {
    let status = default_policy::role_binding_status(binding);
    let namespace = binding.metadata.namespace.clone().unwrap_or_default();
    BindingData {
        key: Arc::new(BindingKey::namespaced(
            &namespace,
            &name_of(&binding.metadata),
        )),
        role_ref: binding.role_ref.clone(),
        subjects: subjects_of(binding.subjects.as_ref()),
        labels: binding.metadata.labels.clone().unwrap_or_default(),
        bootstrap: status.default_reason(),
        claims_default: status.claim(),
    }
}

fn binding_data_of_cluster_role_binding(binding: &ClusterRoleBinding) -> BindingData {
    let status = default_policy::cluster_role_binding_status(binding);
    BindingData {
        key: Arc::new(BindingKey::cluster(&name_of(&binding.metadata))),
        role_ref: binding.role_ref.clone(),
        subjects: subjects_of(binding.subjects.as_ref()),
        labels: binding.metadata.labels.clone().unwrap_or_default(),
        bootstrap: status.default_reason(),
        claims_default: status.claim(),
    }
}

/// The bindings of one principal or role, sorted, each once. Most hold
/// one or two: a sorted `Vec` takes a tenth of the memory of the
/// `BTreeSet` node it replaces, which counts with tens of thousands of
/// service accounts.
#[derive(Clone, Debug, Default)]
struct BindingKeys(Vec<Arc<BindingKey>>);

/// Up to this many keys, a [`BindingKeys`] grows by one key at a time.
const SHORT_BINDING_KEYS: usize = 8;

impl BindingKeys {
    fn insert(&mut self, key: Arc<BindingKey>) {
        if let Err(at) = self.0.binary_search(&key) {
            // A first push would make room for four; most lists stay at
            // one or two, so a short list grows by one at a time.
            if self.0.len() < SHORT_BINDING_KEYS {
                self.0.reserve_exact(1);
            }
            self.0.insert(at, key);
        }
    }

    fn remove(&mut self, key: &BindingKey) {
        if let Ok(at) = self.0.binary_search_by(|k| (**k).cmp(key)) {
            self.0.remove(at);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> IntoIterator for &'a BindingKeys {
    type Item = &'a BindingKey;
    type IntoIter =
        std::iter::Map<std::slice::Iter<'a, Arc<BindingKey>>, fn(&Arc<BindingKey>) -> &BindingKey>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|key| &**key)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checks::testing::resources;
    use crate::model::Inventory;

    /// The index of the RBAC objects of `yaml`.
    pub(crate) fn index(yaml: &str) -> RbacIndex {
        let inventory = Inventory::from_resources(&resources(yaml));
        RbacIndex::build(
            &inventory.roles,
            &inventory.cluster_roles,
            &inventory.role_bindings,
            &inventory.cluster_role_bindings,
        )
    }

    fn can(index: &RbacIndex, user: &UserInfo, request: &Request) -> bool {
        index.authorize(user, request).is_allowed()
    }

    fn get_pods(ns: &str) -> Request {
        Request::resource("get", "", "pods", "", "", ns)
    }

    const POD_READER: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: pod-reader}
rules:
- {apiGroups: [""], resources: [pods, nodes], verbs: [get]}
- {nonResourceURLs: ["/metrics"], verbs: [get]}
"#;

    #[test]
    fn may_somewhere_is_every_name_and_namespace_a_rule_could_allow() {
        let idx = index(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: one-account, namespace: shop}
rules:
- {apiGroups: [""], resources: [serviceaccounts], verbs: [impersonate], resourceNames: [builder]}
- {apiGroups: [""], resources: [pods/exec], verbs: [create]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: one-account}
subjects: [{kind: User, name: alice}]
"#,
        );
        let alice = idx.prepare(&UserInfo::new("alice", &[]));
        // A name or a namespace does not narrow it: what is allowed for
        // one of them counts.
        assert!(alice.may_somewhere("impersonate", "", "serviceaccounts", ""));
        assert!(alice.may_somewhere("create", "", "pods", "exec"));
        // Anything no rule names is denied everywhere.
        assert!(!alice.may_somewhere("create", "", "pods", ""));
        assert!(!alice.may_somewhere("create", "", "serviceaccounts", "token"));
        assert!(!alice.may_somewhere("impersonate", "", "users", ""));
        let mallory = idx.prepare(&UserInfo::new("mallory", &[]));
        assert!(!mallory.may_somewhere("create", "", "pods", "exec"));
        let admin = idx.prepare(&UserInfo::new("root", &[SYSTEM_MASTERS]));
        assert!(admin.may_somewhere("create", "", "pods", ""));
    }

    #[test]
    fn names_somewhere_are_the_names_rules_list_or_every_name() {
        let yaml = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: two-accounts, namespace: shop}
rules:
- {apiGroups: [""], resources: [serviceaccounts], verbs: [impersonate], resourceNames: [builder]}
- {apiGroups: [""], resources: [serviceaccounts], verbs: ["*"], resourceNames: [deployer]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: rb, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: two-accounts}
subjects: [{kind: User, name: alice}]
"#;
        let idx = index(yaml);
        let alice = idx.prepare(&UserInfo::new("alice", &[]));
        let names = alice.names_somewhere("impersonate", "", "serviceaccounts", "");
        assert_eq!(names, Some(BTreeSet::from(["builder", "deployer"])));
        let token = alice.names_somewhere("create", "", "serviceaccounts", "token");
        assert_eq!(
            token,
            Some(BTreeSet::new()),
            "`*` on serviceaccounts is not on its token"
        );
        assert_eq!(
            alice.names_somewhere("impersonate", "", "users", ""),
            Some(BTreeSet::new())
        );
        // One rule without names allows every name.
        let open = index(&format!(
            "{yaml}---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n\
             metadata: {{name: any}}\nrules: [{{apiGroups: [''], resources: [serviceaccounts], \
             verbs: [impersonate]}}]\n---\napiVersion: rbac.authorization.k8s.io/v1\n\
             kind: RoleBinding\nmetadata: {{name: any, namespace: other}}\n\
             roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: any}}\n\
             subjects: [{{kind: User, name: alice}}]\n"
        ));
        let alice = open.prepare(&UserInfo::new("alice", &[]));
        assert_eq!(
            alice.names_somewhere("impersonate", "", "serviceaccounts", ""),
            None
        );
        let root = open.prepare(&UserInfo::new("root", &[SYSTEM_MASTERS]));
        assert_eq!(
            root.names_somewhere("create", "", "serviceaccounts", "token"),
            None
        );
    }

    #[test]
    fn keys_and_rules_are_shared_not_copied() {
        let idx = index(&format!(
            "{POD_READER}---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: pod-reader-too}}
rules:
- {{apiGroups: [\"\"], resources: [pods, nodes], verbs: [get]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rb, namespace: shop}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}}
subjects: [{{kind: User, name: alice}}]
"
        ));
        let role = idx.role(&RoleKey::cluster("pod-reader")).expect("role");
        let (map_key, _) = idx.roles.get_key_value(&*role.key).expect("in the map");
        assert!(Arc::ptr_eq(map_key, &role.key));
        let rules = idx.effective_rules(&role.key).expect("rules");
        assert!(rules.iter().all(|r| Arc::ptr_eq(&r.origin.role, &role.key)));
        let too = idx.role(&RoleKey::cluster("pod-reader-too")).expect("role");
        let too_rules = idx.effective_rules(&too.key).expect("rules");
        assert!(
            Arc::ptr_eq(&rules[0].rule, &too_rules[0].rule),
            "one copy of a rule"
        );
        let (by_role, _) = idx.by_role.get_key_value(&*role.key).expect("bound");
        assert!(Arc::ptr_eq(by_role, &role.key));
        let binding = idx
            .binding(&BindingKey::namespaced("shop", "rb"))
            .expect("binding");
        let (map_key, _) = idx
            .bindings
            .get_key_value(&*binding.key)
            .expect("in the map");
        assert!(Arc::ptr_eq(map_key, &binding.key));
        let filed = &idx.by_principal[&Principal::User("alice".to_owned())].0[0];
        assert!(Arc::ptr_eq(filed, &binding.key));
    }

    #[test]
    fn binding_keys_stay_sorted_and_once_each() {
        let key = |name: &str| BindingKey {
            namespace: None,
            name: name.to_owned(),
        };
        let mut keys = BindingKeys::default();
        for name in ["b", "a", "c", "a"] {
            keys.insert(Arc::new(key(name)));
        }
        let names = |keys: &BindingKeys| -> Vec<String> {
            keys.into_iter().map(|k| k.name.clone()).collect()
        };
        assert_eq!(names(&keys), ["a", "b", "c"]);
        keys.remove(&key("b"));
        keys.remove(&key("x"));
        assert_eq!(names(&keys), ["a", "c"]);
        keys.remove(&key("a"));
        keys.remove(&key("c"));
        assert!(keys.is_empty());
    }

    #[test]
    fn cluster_role_binding_grants_everywhere() {
        let idx = index(&format!(
            "{POD_READER}---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: crb}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}}
subjects: [{{kind: User, name: alice}}]
"
        ));
        let alice = UserInfo::new("alice", &[]);
        assert!(can(&idx, &alice, &get_pods("a")));
        assert!(can(&idx, &alice, &get_pods("")));
        assert!(can(
            &idx,
            &alice,
            &Request::resource("get", "", "nodes", "", "", "")
        ));
        assert!(can(&idx, &alice, &Request::non_resource("get", "/metrics")));
        assert!(!can(&idx, &UserInfo::new("bob", &[]), &get_pods("a")));
        // Users match by exact name.
        assert!(!can(&idx, &UserInfo::new("Alice", &[]), &get_pods("a")));
    }

    #[test]
    fn role_binding_grants_only_in_its_namespace_and_only_namespaced_requests() {
        let idx = index(&format!(
            "{POD_READER}---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rb, namespace: shop}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}}
subjects: [{{kind: Group, name: dev}}]
"
        ));
        let dev = UserInfo::new("carol", &["dev"]);
        assert!(can(&idx, &dev, &get_pods("shop")));
        assert!(!can(&idx, &dev, &get_pods("other")));
        // Cluster-wide requests have no namespace: a RoleBinding never matches.
        assert!(!can(&idx, &dev, &get_pods("")));
        assert!(!can(
            &idx,
            &dev,
            &Request::resource("get", "", "nodes", "", "", "")
        ));
        assert!(!can(&idx, &dev, &Request::non_resource("get", "/metrics")));
        // The authorizer goes by the request's attributes: a namespaced
        // request for `nodes` in `shop` is granted by the rule.
        assert!(can(
            &idx,
            &dev,
            &Request::resource("get", "", "nodes", "", "", "shop")
        ));
    }

    #[test]
    fn service_account_subjects_default_to_the_role_binding_namespace() {
        let idx = index(&format!(
            "{POD_READER}---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rb, namespace: shop}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}}
subjects:
- {{kind: ServiceAccount, name: api}}
- {{kind: ServiceAccount, name: worker, namespace: jobs}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: crb}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}}
subjects: [{{kind: ServiceAccount, name: nobody}}]
"
        ));
        assert!(can(
            &idx,
            &UserInfo::service_account("shop", "api"),
            &get_pods("shop")
        ));
        assert!(!can(
            &idx,
            &UserInfo::service_account("other", "api"),
            &get_pods("shop")
        ));
        // A namespaced subject in a RoleBinding: the account of `jobs`, in `shop`.
        assert!(can(
            &idx,
            &UserInfo::service_account("jobs", "worker"),
            &get_pods("shop")
        ));
        assert!(!can(
            &idx,
            &UserInfo::service_account("jobs", "worker"),
            &get_pods("jobs")
        ));
        // No namespace in a ClusterRoleBinding: matches no account at all.
        for ns in ["default", "kube-system", ""] {
            let user = UserInfo::new(format!("system:serviceaccount:{ns}:nobody"), &[]);
            assert!(!can(&idx, &user, &get_pods("x")));
        }
        // The SA username matches even without the SA groups (as the authorizer
        // compares usernames only).
        assert!(can(
            &idx,
            &UserInfo::new("system:serviceaccount:shop:api", &[]),
            &get_pods("shop")
        ));
    }

    #[test]
    fn service_account_groups_and_unknown_subject_kinds() {
        let idx = index(&format!(
            "{POD_READER}---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: all-sa}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}}
subjects: [{{kind: Group, name: 'system:serviceaccounts:shop'}}, {{kind: Robot, name: alice}}]
"
        ));
        assert!(can(
            &idx,
            &UserInfo::service_account("shop", "any"),
            &get_pods("x")
        ));
        assert!(!can(
            &idx,
            &UserInfo::service_account("other", "any"),
            &get_pods("x")
        ));
        assert!(!can(&idx, &UserInfo::new("alice", &[]), &get_pods("x")));
    }

    #[test]
    fn system_masters_bypasses_rbac() {
        let idx = index("");
        let admin = UserInfo::new("root", &["system:masters"]);
        assert_eq!(
            idx.authorize(
                &admin,
                &Request::resource("escalate", "x", "y", "z", "n", "")
            ),
            Decision::AllowedPrivilegedGroup
        );
        assert!(!can(&idx, &UserInfo::new("root", &[]), &get_pods("x")));
    }

    #[test]
    fn role_refs_resolve_by_kind_and_namespace() {
        let idx = index(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: shop}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: same-ns, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: User, name: a}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: other-ns, namespace: web}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: User, name: b}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crb-to-role}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: User, name: c}]
"#,
        );
        assert!(can(&idx, &UserInfo::new("a", &[]), &get_pods("shop")));
        // Role `reader` does not exist in `web`: dangling.
        assert!(!can(&idx, &UserInfo::new("b", &[]), &get_pods("web")));
        assert!(!can(&idx, &UserInfo::new("c", &[]), &get_pods("shop")));
        let dangling: Vec<String> = idx
            .dangling_bindings()
            .map(|b| b.key.name.clone())
            .collect();
        assert_eq!(dangling, ["crb-to-role", "other-ns"]);
    }

    #[test]
    fn dangling_binding_becomes_live_when_the_role_appears() {
        let yaml = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crb}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: later}
subjects: [{kind: User, name: a}]
"#;
        let mut idx = index(yaml);
        let a = UserInfo::new("a", &[]);
        assert!(!can(&idx, &a, &get_pods("x")));
        let role: k8s_openapi::api::rbac::v1::ClusterRole = serde_norway::from_str(
            "metadata: {name: later}\nrules: [{apiGroups: [''], resources: [pods], verbs: [get]}]",
        )
        .unwrap();
        let affected = idx.apply(Change::ClusterRole(&role));
        assert!(affected.principals.contains(&Principal::User("a".into())));
        assert!(can(&idx, &a, &get_pods("x")));
        let affected = idx.apply(Change::DeleteClusterRole { name: "later" });
        assert!(affected.touches(&a));
        assert!(!can(&idx, &a, &get_pods("x")));
    }

    #[test]
    fn incremental_binding_updates_report_old_and_new_subjects() {
        let mut idx = index(POD_READER);
        let binding: ClusterRoleBinding = serde_norway::from_str(
            "metadata: {name: b}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}\nsubjects: [{kind: User, name: a}]",
        )
        .unwrap();
        let affected = idx.apply(Change::ClusterRoleBinding(&binding));
        assert_eq!(
            affected.principals,
            BTreeSet::from([Principal::User("a".into())])
        );
        let moved: ClusterRoleBinding = serde_norway::from_str(
            "metadata: {name: b}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}\nsubjects: [{kind: ServiceAccount, name: s, namespace: n}]",
        )
        .unwrap();
        let affected = idx.apply(Change::ClusterRoleBinding(&moved));
        assert!(affected.touches(&UserInfo::new("a", &[])));
        assert!(affected.touches_service_account("n", "s"));
        assert!(!affected.touches_service_account("n", "t"));
        assert!(!can(&idx, &UserInfo::new("a", &[]), &get_pods("x")));
        assert!(can(
            &idx,
            &UserInfo::service_account("n", "s"),
            &get_pods("x")
        ));
        let affected = idx.apply(Change::DeleteClusterRoleBinding { name: "b" });
        assert!(affected.touches_service_account("n", "s"));
        assert!(!can(
            &idx,
            &UserInfo::service_account("n", "s"),
            &get_pods("x")
        ));
    }

    #[test]
    fn aggregated_cluster_roles_are_recomputed_from_selectors() {
        let yaml = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: monitoring}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {example.com/aggregate-to-monitoring: "true"}}]
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: metrics-reader, labels: {example.com/aggregate-to-monitoring: "true"}}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: crb}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: monitoring}
subjects: [{kind: User, name: a}]
"#;
        let mut idx = index(yaml);
        let a = UserInfo::new("a", &[]);
        assert!(can(&idx, &a, &get_pods("x")));
        match idx.authorize(&a, &get_pods("x")) {
            Decision::Allowed(p) => {
                assert_eq!(p.role, RoleKey::cluster("monitoring"));
                assert_eq!(*p.origin.role, RoleKey::cluster("metrics-reader"));
            }
            other => panic!("{other:?}"),
        }
        // Removing the label removes the rule from the aggregate.
        let unlabelled: ClusterRole = serde_norway::from_str(
            "metadata: {name: metrics-reader}\nrules: [{apiGroups: [''], resources: [pods], verbs: [get]}]",
        )
        .unwrap();
        let affected = idx.apply(Change::ClusterRole(&unlabelled));
        assert!(affected.touches(&a));
        assert!(!can(&idx, &a, &get_pods("x")));
    }

    #[test]
    fn default_roles_are_stood_in_for_when_absent() {
        let idx = index(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: devs, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects: [{kind: Group, name: dev}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: crd-viewer, labels: {rbac.authorization.k8s.io/aggregate-to-view: "true"}}
rules: [{apiGroups: [example.com], resources: [widgets], verbs: [get]}]
"#,
        );
        let dev = UserInfo::new("d", &["dev"]);
        assert!(can(
            &idx,
            &dev,
            &Request::resource("get", "", "secrets", "", "", "shop")
        ));
        assert!(can(
            &idx,
            &dev,
            &Request::resource("create", "", "pods", "exec", "", "shop")
        ));
        assert!(!can(
            &idx,
            &dev,
            &Request::resource(
                "create",
                "rbac.authorization.k8s.io",
                "rolebindings",
                "",
                "",
                "shop"
            )
        ));
        // view → edit → admin: a role aggregated into view reaches edit.
        assert!(can(
            &idx,
            &dev,
            &Request::resource("get", "example.com", "widgets", "", "", "shop")
        ));
        assert!(idx.dangling_bindings().next().is_none());
    }

    /// Random watch events applied one by one leave the index exactly as a
    /// build from the final objects would (aggregation included).
    #[test]
    fn incremental_updates_equal_a_fresh_build() {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let labels = ["{}", "{agg: a}", "{agg: b}"];
        let resources = ["pods", "secrets", "nodes"];
        let mut cluster_roles: BTreeMap<String, ClusterRole> = BTreeMap::new();
        let mut roles: BTreeMap<String, Role> = BTreeMap::new();
        let mut crbs: BTreeMap<String, ClusterRoleBinding> = BTreeMap::new();
        let mut rbs: BTreeMap<String, RoleBinding> = BTreeMap::new();
        let mut live = RbacIndex::build(&[], &[], &[], &[]);
        for _ in 0..400 {
            let name = format!("o{}", next(4));
            let rule = format!(
                "[{{apiGroups: [''], resources: [{}], verbs: [get]}}]",
                resources[next(3)]
            );
            let subject = [
                "{kind: User, name: u}",
                "{kind: Group, name: g}",
                "{kind: ServiceAccount, name: s, namespace: n}",
                "{kind: ServiceAccount, name: s}",
            ][next(4)];
            let role_ref = format!(
                "{{apiGroup: rbac.authorization.k8s.io, kind: {}, name: o{}}}",
                ["Role", "ClusterRole"][next(2)],
                next(4)
            );
            match next(8) {
                0 => {
                    let yaml = match next(3) {
                        0 => format!(
                            "metadata: {{name: {name}, labels: {}}}\naggregationRule: {{clusterRoleSelectors: [{{matchLabels: {{agg: a}}}}]}}",
                            labels[next(3)]
                        ),
                        _ => format!(
                            "metadata: {{name: {name}, labels: {}}}\nrules: {rule}",
                            labels[next(3)]
                        ),
                    };
                    let role: ClusterRole = serde_norway::from_str(&yaml).unwrap();
                    live.apply(Change::ClusterRole(&role));
                    cluster_roles.insert(name, role);
                }
                1 => {
                    live.apply(Change::DeleteClusterRole { name: &name });
                    cluster_roles.remove(&name);
                }
                2 => {
                    let role: Role = serde_norway::from_str(&format!(
                        "metadata: {{name: {name}, namespace: n}}\nrules: {rule}"
                    ))
                    .unwrap();
                    live.apply(Change::Role(&role));
                    roles.insert(name, role);
                }
                3 => {
                    live.apply(Change::DeleteRole {
                        namespace: "n",
                        name: &name,
                    });
                    roles.remove(&name);
                }
                4 => {
                    let b: ClusterRoleBinding = serde_norway::from_str(&format!(
                        "metadata: {{name: {name}}}\nroleRef: {role_ref}\nsubjects: [{subject}]"
                    ))
                    .unwrap();
                    live.apply(Change::ClusterRoleBinding(&b));
                    crbs.insert(name, b);
                }
                5 => {
                    live.apply(Change::DeleteClusterRoleBinding { name: &name });
                    crbs.remove(&name);
                }
                6 => {
                    let b: RoleBinding = serde_norway::from_str(&format!("metadata: {{name: {name}, namespace: n}}\nroleRef: {role_ref}\nsubjects: [{subject}]")).unwrap();
                    live.apply(Change::RoleBinding(&b));
                    rbs.insert(name, b);
                }
                _ => {
                    live.apply(Change::DeleteRoleBinding {
                        namespace: "n",
                        name: &name,
                    });
                    rbs.remove(&name);
                }
            }
            let fresh = RbacIndex::build(
                roles.values(),
                cluster_roles.values(),
                rbs.values(),
                crbs.values(),
            );
            // Stand-ins are added by build only; compare everything else.
            let own = |idx: &RbacIndex| -> BTreeMap<RoleKey, Vec<SourcedRule>> {
                idx.effective
                    .iter()
                    .filter(|(k, _)| idx.roles.get(&**k).is_some_and(|r| !r.stand_in))
                    .map(|(k, v)| (RoleKey::clone(k), v.to_vec()))
                    .collect()
            };
            assert_eq!(own(&live), own(&fresh));
            let sorted =
                |m: &HashMap<Principal, BindingKeys>| -> BTreeMap<Principal, Vec<BindingKey>> {
                    (m.iter())
                        .map(|(k, v)| (k.clone(), v.into_iter().cloned().collect()))
                        .collect()
                };
            assert_eq!(sorted(&live.by_principal), sorted(&fresh.by_principal));
        }
    }

    #[test]
    fn who_can_lists_subjects_with_provenance() {
        let idx = index(&format!(
            "{POD_READER}---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: rb, namespace: shop}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}}
subjects: [{{kind: ServiceAccount, name: api}}, {{kind: User, name: zed}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: crb}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: pod-reader}}
subjects: [{{kind: Group, name: ops}}, {{kind: ServiceAccount, name: ghost}}]
"
        ));
        let found: Vec<String> = idx
            .who_can(&get_pods("shop"))
            .into_iter()
            .map(|w| format!("{} {}", w.subject, w.binding))
            .collect();
        assert_eq!(
            found,
            [
                "Group ops ClusterRoleBinding crb",
                "ServiceAccount shop/api RoleBinding shop/rb",
                "User zed RoleBinding shop/rb",
            ]
        );
        assert_eq!(idx.who_can(&get_pods("web")).len(), 1);
    }

    #[test]
    fn a_namespace_is_granted_by_its_own_role_bindings() {
        let idx = index(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: ns-admin, namespace: shop}
rules: [{apiGroups: [""], resources: [namespaces], verbs: [delete, patch]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: ns-admin, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: ns-admin}
subjects: [{kind: ServiceAccount, name: api}]
"#,
        );
        let api = UserInfo::service_account("shop", "api");
        // `delete /api/v1/namespaces/shop` carries namespace `shop`.
        let delete_shop = Request::resource("delete", "", "namespaces", "", "shop", "shop");
        assert!(can(&idx, &api, &delete_shop));
        let delete_web = Request::resource("delete", "", "namespaces", "", "web", "web");
        assert!(!can(&idx, &api, &delete_web));
        // Listing or creating namespaces carries no namespace.
        let list = Request::resource("list", "", "namespaces", "", "", "");
        assert!(!can(&idx, &api, &list));
        let found: Vec<String> = idx
            .who_can(&delete_shop)
            .into_iter()
            .map(|w| format!("{} {}", w.subject, w.binding))
            .collect();
        assert_eq!(found, ["ServiceAccount shop/api RoleBinding shop/ns-admin"]);
        assert!(idx.who_can(&delete_web).is_empty());
    }
}
