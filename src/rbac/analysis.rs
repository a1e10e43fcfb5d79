//! What the RBAC objects mean for each service account: its dangerous
//! permissions with their provenance, and whether it can become cluster
//! admin through a chain of permissions (an attack path).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::model::{Inventory, InventoryIndex};

pub use super::accounts::AccountKey;
use super::accounts::{AccountId, Accounts};
use super::index::{BindingKey, Decision, PreparedUser, Provenance, RbacIndex, RoleKey};
use super::request::{Request, UserInfo};
use super::risk::{RiskHit, risks_of_rule_in};
use super::rule::Rule;

/// One dangerous permission of an account, with where it comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountPermission {
    pub hit: RiskHit,
    /// The namespace it applies in; `None` for cluster-wide.
    pub scope: Option<String>,
    pub binding: BindingKey,
    pub role: RoleKey,
    /// `Role x rules[2]` (or the role it was aggregated from).
    pub rule: String,
    /// Granted by a binding of the default policy.
    pub bootstrap: bool,
}

impl AccountPermission {
    pub fn scope_text(&self) -> String {
        match &self.scope {
            None => "cluster-wide".to_owned(),
            Some(ns) if self.hit.risk().on_namespace_itself() => {
                format!("on namespace `{ns}` itself")
            }
            Some(ns) => format!("in namespace `{ns}`"),
        }
    }

    /// `binding → role → rule`.
    pub fn provenance_text(&self) -> String {
        format!("{} → {} → {}", self.binding, self.role, self.rule)
    }
}

/// One link of an attack path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub text: String,
    /// Every permission the step uses comes from the default policy.
    pub bootstrap: bool,
}

impl Step {
    fn new(text: String, bootstrap: bool) -> Step {
        Step { text, bootstrap }
    }
}

/// How an account becomes cluster admin: the kind of its first step and
/// the admin account the step leads to. The step's text is worked out
/// again when it is asked for ([`RbacAnalysis::admin_chain`]): the same
/// question of the same index gives the same answer, and the texts of
/// every admin account of a large cluster outweighed the rest of the
/// analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// Holds `*` on everything cluster-wide.
    Direct,
    /// Impersonates `system:masters`, binds `cluster-admin` or escalates a
    /// ClusterRole bound to itself.
    Own,
    /// Acts as the admin account (impersonation, its token, exec).
    Borrow(AccountId),
    /// Runs new code in the admin account's namespace.
    Run(AccountId),
    /// Grants itself a role that runs code in the admin account's namespace.
    TakeOver(AccountId),
}

impl Way {
    fn via(self) -> Option<AccountId> {
        match self {
            Way::Direct | Way::Own => None,
            Way::Borrow(via) | Way::Run(via) | Way::TakeOver(via) => Some(via),
        }
    }
}

/// The analysed RBAC objects.
#[derive(Clone, Debug, Default)]
pub struct RbacAnalysis {
    pub index: RbacIndex,
    accounts: Accounts,
    /// How each account (by its number) becomes cluster admin, if it can.
    ways: Vec<Option<Way>>,
    running: Running,
    creators: Creators,
    steps: StepCache,
}

/// A workload's identity as far as attack paths go.
#[derive(Clone, Debug)]
pub struct RunningAs {
    pub workload: String,
    pub account: AccountKey,
}

impl RbacAnalysis {
    /// Analyses the RBAC objects of an inventory; `lookup` is its index.
    pub fn build(inventory: &Inventory, lookup: &InventoryIndex<'_>) -> RbacAnalysis {
        let index = RbacIndex::build(
            &inventory.roles,
            &inventory.cluster_roles,
            &inventory.role_bindings,
            &inventory.cluster_role_bindings,
        );
        RbacAnalysis::build_on(index, inventory, lookup)
    }

    /// Analyses `index` with the service accounts and workloads of an
    /// inventory (whose own RBAC objects are not read); `lookup` is its
    /// index.
    pub fn build_on(
        index: RbacIndex,
        inventory: &Inventory,
        lookup: &InventoryIndex<'_>,
    ) -> RbacAnalysis {
        // Only the first workload of each account is ever named, so only
        // that one is kept: a large input has hundreds of thousands of
        // workloads and far fewer accounts.
        let mut running: Vec<RunningAs> = Vec::new();
        let mut running_accounts: HashSet<AccountKey> = HashSet::new();
        for workload in inventory.all_workloads() {
            if !token_mounted(&workload, lookup) {
                continue;
            }
            let account = workload_account(&workload);
            if running_accounts.insert(account.clone()) {
                running.push(RunningAs {
                    workload: format!("{} {}", workload.object.kind, workload.object.name),
                    account,
                });
            }
        }
        drop(running_accounts);
        let accounts = inventory.accounts().map(|account| {
            let namespace = account.namespace().unwrap_or_default();
            (namespace, account.name().unwrap_or_default())
        });
        RbacAnalysis::analyse(index, accounts, running)
    }

    /// Analyses an index for the given accounts (those of the inventory,
    /// and those bindings name) and the workloads that run as them.
    pub fn from_index(
        index: RbacIndex,
        accounts: BTreeSet<AccountKey>,
        running: Vec<RunningAs>,
    ) -> RbacAnalysis {
        let accounts = accounts
            .iter()
            .map(|(ns, name)| (ns.as_str(), name.as_str()));
        RbacAnalysis::analyse(index, accounts, running)
    }

    /// Analyses `index` for `accounts`, those the workloads of `running`
    /// run as and those the bindings name.
    fn analyse<'a>(
        index: RbacIndex,
        accounts: impl Iterator<Item = (&'a str, &'a str)>,
        running: Vec<RunningAs>,
    ) -> RbacAnalysis {
        // The names are borrowed until they are packed into one string.
        let accounts = {
            let mut keys: Vec<(&str, &str)> = accounts.collect();
            keys.extend((running.iter()).map(|r| (r.account.0.as_str(), r.account.1.as_str())));
            keys.extend(accounts_named_by_bindings(&index));
            Accounts::new(keys)
        };
        let first_workloads = Running::new(&accounts, &running);
        // Gone before the search, the peak of a large scan.
        drop(running);
        let running = first_workloads;
        let mut analysis = RbacAnalysis {
            index,
            accounts,
            ways: Vec::new(),
            running,
            creators: Creators::new(),
            steps: StepCache::default(),
        };
        let ways = admin_ways(&analysis.ground());
        analysis.ways = ways;
        analysis
    }

    /// What a way's step is asked of, for the search and for the chains.
    fn ground(&self) -> Ground<'_> {
        Ground {
            index: &self.index,
            accounts: &self.accounts,
            running: &self.running,
            creators: &self.creators,
        }
    }

    /// Every dangerous permission of the service account, binding by binding,
    /// as real requests can use it: a RoleBinding grants nothing on
    /// cluster-scoped resources, and on `namespaces` only its own namespace.
    pub fn dangerous_permissions(&self, namespace: &str, name: &str) -> Vec<AccountPermission> {
        let user = UserInfo::service_account(namespace, name);
        let mut found = Vec::new();
        for grant in self.index.grants_for(&user) {
            for sourced in grant.rules {
                for hit in risks_of_rule_in(&sourced.rule, grant.scope()) {
                    found.push(AccountPermission {
                        hit,
                        scope: grant.scope().map(str::to_owned),
                        binding: (*grant.binding.key).clone(),
                        role: (*grant.role.key).clone(),
                        rule: rule_text(&grant.role.key, &sourced.origin),
                        bootstrap: grant.binding.bootstrap.is_some(),
                    });
                }
            }
        }
        found
    }

    /// The whole chain to cluster admin, step by step, and whether every
    /// step is the default policy's own; `None` when the account cannot
    /// become cluster admin.
    pub fn admin_chain(&self, namespace: &str, name: &str) -> Option<(Vec<String>, bool)> {
        let mut account = self.accounts.find(namespace, name)?;
        let mut texts = Vec::new();
        let mut bootstrap = true;
        let mut seen = BTreeSet::new();
        while let Some(way) = self.ways.get(account).copied().flatten() {
            if !seen.insert(account) {
                break;
            }
            let step = self.step(account, way);
            texts.push(step.text);
            bootstrap &= step.bootstrap;
            match way.via() {
                Some(next) => account = next,
                None => break,
            }
        }
        (!texts.is_empty()).then_some((texts, bootstrap))
    }

    /// The first step of the account's way to cluster admin, asked again
    /// of the index.
    fn step(&self, account: AccountId, way: Way) -> Step {
        if let Some(step) = self.steps.get(account) {
            return step;
        }
        let (namespace, name) = self.accounts.get(account);
        let user = self
            .index
            .prepare(&UserInfo::service_account(namespace, name));
        // Only acting as an account and taking a namespace over read them.
        let openings = match way {
            Way::Borrow(_) | Way::TakeOver(_) => Openings::of(&user),
            Way::Direct | Way::Own | Way::Run(_) => Openings::default(),
        };
        let step = self.ground().step(&user, &openings, way);
        // The search found this way with the same question of the same
        // index, so the answer is there.
        debug_assert!(step.is_some(), "{way:?} of {namespace}/{name}");
        let step = step.unwrap_or_else(|| Step::new("can become cluster admin".to_owned(), false));
        self.steps.keep(account, &step);
        step
    }
}

/// The steps [`RbacAnalysis::admin_chain`] worked out last, by account:
/// the workloads of an account are mostly checked one after the other,
/// and each asks for the account's chain.
#[derive(Default)]
struct StepCache(Mutex<HashMap<AccountId, Step>>);

/// The steps a [`StepCache`] keeps at most.
const CACHED_STEPS: usize = 4096;

impl StepCache {
    fn get(&self, account: AccountId) -> Option<Step> {
        let steps = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        steps.get(&account).cloned()
    }

    fn keep(&self, account: AccountId, step: &Step) {
        let mut steps = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if steps.len() >= CACHED_STEPS {
            steps.clear();
        }
        steps.insert(account, step.clone());
    }
}

impl Clone for StepCache {
    /// A copy of the analysis starts with no steps kept.
    fn clone(&self) -> Self {
        StepCache::default()
    }
}

impl fmt::Debug for StepCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StepCache")
    }
}

fn rule_text(role: &RoleKey, origin: &super::index::RuleOrigin) -> String {
    if *origin.role == *role {
        format!("rules[{}]", origin.index)
    } else {
        format!("rules aggregated from {origin}")
    }
}

/// The account a workload's pods run as (`default` when none is named).
pub fn workload_account(workload: &crate::model::Workload) -> AccountKey {
    let namespace = workload.namespace().unwrap_or("default").to_owned();
    let name = workload
        .spec
        .service_account_name
        .clone()
        .or_else(|| workload.spec.service_account.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    (namespace, name)
}

/// Whether the pods get an API token: a projected token volume, or the
/// automount default (the pod's setting first, then the account's).
pub fn token_mounted(workload: &crate::model::Workload, lookup: &InventoryIndex<'_>) -> bool {
    if workload.volumes.iter().any(|v| v.projected_token) {
        return true;
    }
    if let Some(pod_setting) = workload.spec.automount_service_account_token {
        return pod_setting;
    }
    let (namespace, name) = workload_account(workload);
    let account_setting = lookup
        .service_account(&namespace, &name)
        .and_then(|sa| sa.automount_token());
    account_setting.unwrap_or(true)
}

fn accounts_named_by_bindings(index: &RbacIndex) -> impl Iterator<Item = (&str, &str)> {
    index.bindings().flat_map(|binding| {
        let binding_ns = binding.key.namespace.as_deref();
        (binding.subjects.iter())
            .filter(|subject| subject.kind == "ServiceAccount")
            .filter_map(move |subject| {
                let ns = subject.effective_namespace(binding_ns)?;
                Some((ns, subject.name.as_str()))
            })
    })
}

/// An allowed request's provenance, and whether its binding is a default one.
struct Allowed {
    provenance: Option<Provenance>,
    bootstrap: bool,
}

impl Allowed {
    fn text(&self) -> String {
        match &self.provenance {
            Some(p) => p.to_string(),
            None => "group system:masters".to_owned(),
        }
    }
}

fn allowed(index: &RbacIndex, user: &PreparedUser<'_>, request: &Request) -> Option<Allowed> {
    match user.authorize(request) {
        Decision::Denied => None,
        Decision::AllowedPrivilegedGroup => Some(Allowed {
            provenance: None,
            bootstrap: false,
        }),
        Decision::Allowed(p) => {
            let bootstrap = index
                .binding(&p.binding)
                .is_some_and(|b| b.bootstrap.is_some());
            Some(Allowed {
                provenance: Some(p),
                bootstrap,
            })
        }
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";

fn req(verb: &str, group: &str, resource: &str, sub: &str, name: &str, ns: &str) -> Request {
    Request::resource(verb, group, resource, sub, name, ns)
}

/// Finds every account that can become cluster admin: directly (`*` on
/// everything cluster-wide), or through a permission that yields it —
/// impersonating `system:masters` or an admin account, binding
/// `cluster-admin`, escalating a ClusterRole bound to itself, or running
/// code as an admin account (creating pods or workloads in its namespace,
/// requesting its token, minting a token secret, exec into its pods).
/// Repeats until no account is added, so chains of any length are found.
/// The answer is each account's way, by its number.
fn admin_ways(ground: &Ground<'_>) -> Vec<Option<Way>> {
    let Ground {
        index,
        accounts,
        running,
        ..
    } = *ground;
    let mut ways: Vec<Option<Way>> = vec![None; accounts.len()];
    // An account's grants are worked out again in each round rather than
    // held between rounds: for every account of a large cluster, each
    // with the grants of the groups it is in, they outweighed the rest of
    // the analysis.
    let prepare = |account: &AccountId| {
        let (namespace, name) = accounts.get(*account);
        index.prepare(&UserInfo::service_account(namespace, name))
    };
    #[derive(Clone, Copy)]
    enum Direct {
        NoGrants,
        NotAdmin,
        Admin,
    }
    let all: Vec<AccountId> = accounts.ids().collect();
    let direct = map_in_parallel(&all, |account| {
        let user = prepare(account);
        // Accounts without any grant can do nothing on the way to admin.
        match user.has_grants() {
            false => Direct::NoGrants,
            true => match direct_admin(index, &user) {
                Some(_) => Direct::Admin,
                None => Direct::NotAdmin,
            },
        }
    });
    drop(all);
    let mut admins = Vec::new();
    let mut waiting: Vec<AccountId> = Vec::new();
    for (account, direct) in direct.into_iter().enumerate() {
        match direct {
            Direct::NoGrants => {}
            Direct::Admin => {
                ways[account] = Some(Way::Direct);
                admins.push(account);
            }
            Direct::NotAdmin => waiting.push(account),
        }
    }
    // Each round tries the accounts still waiting against the admins the
    // previous round found: they already failed against every older one,
    // and the ways that need no other admin do not change between rounds.
    let mut newest = Admins::new(admins, running);
    let mut first_round = true;
    while !waiting.is_empty() {
        let search = Search {
            ground,
            admins: &newest,
        };
        let try_one = |user: &PreparedUser<'_>| {
            let own_way = match first_round {
                true => own_way_to_admin(index, user).map(|_| Way::Own),
                false => None,
            };
            own_way.or_else(|| search.through_admins(user))
        };
        // Each account is tried on its own: on every core, then in order.
        let found = map_in_parallel(&waiting, |account| try_one(&prepare(account)));
        let mut added = Vec::new();
        let mut still_waiting = Vec::new();
        for (account, way) in waiting.into_iter().zip(found) {
            match way {
                Some(way) => {
                    ways[account] = Some(way);
                    added.push(account);
                }
                None => still_waiting.push(account),
            }
        }
        waiting = still_waiting;
        if added.is_empty() {
            break;
        }
        newest = Admins::new(added, running);
        first_round = false;
    }
    ways
}

/// `f` of each item, in order, worked out on every core when there are
/// many items.
fn map_in_parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = crate::engine::threads_for(items.len());
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let parts: Vec<_> = (items.chunks(chunk))
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        (parts.into_iter())
            .flat_map(|part| part.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The first workload whose pods hold each account's token (a scan passes
/// only the first of each account: no other is named), by account number.
#[derive(Clone, Debug, Default)]
struct Running(Vec<(AccountId, Box<str>)>);

impl Running {
    fn new(accounts: &Accounts, running: &[RunningAs]) -> Running {
        let mut first: Vec<(AccountId, Box<str>)> = (running.iter())
            .filter_map(|r| {
                let account = accounts.find(&r.account.0, &r.account.1)?;
                Some((account, r.workload.as_str().into()))
            })
            .collect();
        // A stable sort keeps each account's workloads in their order.
        first.sort_by_key(|(account, _)| *account);
        first.dedup_by_key(|(account, _)| *account);
        first.shrink_to_fit();
        Running(first)
    }

    /// The first workload that runs as the account, if one does.
    fn workload(&self, account: AccountId) -> Option<&str> {
        let at = self.0.binary_search_by_key(&account, |(a, _)| *a).ok()?;
        Some(&self.0[at].1)
    }
}

fn direct_admin(index: &RbacIndex, user: &PreparedUser<'_>) -> Option<Step> {
    let everything = req("*", "*", "*", "", "", "");
    let grant = allowed(index, user, &everything)?;
    Some(Step {
        text: format!(
            "holds `*` on every resource cluster-wide ({})",
            grant.text()
        ),
        bootstrap: grant.bootstrap,
    })
}

/// Ways to cluster admin that need no admin account to borrow:
/// impersonating `system:masters`, binding `cluster-admin`, escalating a
/// ClusterRole bound to oneself.
fn own_way_to_admin(index: &RbacIndex, user: &PreparedUser<'_>) -> Option<Step> {
    let masters = req("impersonate", "", "groups", "", "system:masters", "");
    if let Some(grant) = allowed(index, user, &masters) {
        return Some(Step {
            text: format!("can impersonate group `system:masters` ({})", grant.text()),
            bootstrap: grant.bootstrap,
        });
    }
    bind_cluster_admin(index, user).or_else(|| escalate_own_role(index, user))
}

/// What a way's step is asked of: the index, and what the analysis keeps
/// beside it.
#[derive(Clone, Copy)]
struct Ground<'a> {
    index: &'a RbacIndex,
    accounts: &'a Accounts,
    running: &'a Running,
    creators: &'a Creators,
}

impl Ground<'_> {
    /// The step of `way` for the user, if the index allows it: the one
    /// question both the search and [`RbacAnalysis::admin_chain`] ask.
    fn step(&self, user: &PreparedUser<'_>, openings: &Openings, way: Way) -> Option<Step> {
        let index = self.index;
        let (ns, name) = way.via().map_or(("", ""), |via| self.accounts.get(via));
        match way {
            Way::Direct => direct_admin(index, user),
            Way::Own => own_way_to_admin(index, user),
            Way::Borrow(via) => {
                let first_workload = self.running.workload(via);
                borrow_identity(index, user, openings, ns, name, first_workload)
            }
            Way::Run(_) => run_as_account(index, user, ns, name),
            Way::TakeOver(_) => take_over_namespace(index, user, self.creators, openings, ns, name),
        }
    }
}

/// What one round of the search tries accounts against.
struct Search<'a> {
    ground: &'a Ground<'a>,
    /// The admin accounts the previous round found.
    admins: &'a Admins,
}

impl Search<'_> {
    /// Ways to cluster admin through one of the admins: acting as the
    /// account, or running code as it.
    fn through_admins(&self, user: &PreparedUser<'_>) -> Option<Way> {
        let Search { ground, admins } = *self;
        let accounts = ground.accounts;
        let openings = Openings::of(user);
        let allows = |way| ground.step(user, &openings, way).is_some();
        if !openings.borrow() && !openings.reach_a_namespace() {
            return None;
        }
        // Every way through an admin account needs a permission in its
        // namespace: only the admins of the user's namespaces can be reached.
        let namespaces = user.namespaces_where(may_borrow_an_identity);
        let reached = |among| within(accounts, among, namespaces.as_ref());
        if openings.borrow() {
            // Exec alone reaches only the admins some workload runs as.
            let borrowable = match openings.impersonate || openings.token {
                true => reached(&admins.all),
                false => reached(&admins.running),
            };
            let borrowable_by = Borrowable::of(user);
            for &admin in borrowable.iter() {
                let exec = openings.exec && admins.running.binary_search(&admin).is_ok();
                if borrowable_by.may(accounts.get(admin), exec) && allows(Way::Borrow(admin)) {
                    return Some(Way::Borrow(admin));
                }
            }
        }
        if !openings.reach_a_namespace() {
            return None;
        }
        let admins = reached(&admins.all);
        // Running code in a namespace does not depend on which of its admin
        // accounts it runs as: ask once per namespace.
        if openings.run {
            let mut run = namespaces_of(accounts, &admins).map(Way::Run);
            if let Some(way) = run.find(|&way| allows(way)) {
                return Some(way);
            }
        }
        if openings.take_over() {
            let mut take_over = namespaces_of(accounts, &admins).map(Way::TakeOver);
            if let Some(way) = take_over.find(|&way| allows(way)) {
                return Some(way);
            }
        }
        None
    }
}

/// The admin accounts a user's rules could let it act as, by name and
/// namespace: a search meeting thousands of admin accounts asks only about
/// those. A request no rule could allow is denied, so leaving the others
/// out changes no answer.
struct Borrowable<'a> {
    /// Names a rule could allow impersonating or minting a token for
    /// (`None`: every name), and the namespaces where (`None`: all).
    names: [Option<BTreeSet<&'a str>>; 2],
    by_name: Option<BTreeSet<&'a str>>,
    /// Namespaces where a rule could allow exec into pods.
    exec: Option<BTreeSet<&'a str>>,
}

impl<'a> Borrowable<'a> {
    fn of(user: &'a PreparedUser<'_>) -> Borrowable<'a> {
        let names =
            |(verb, group, resource, sub): Action| user.names_somewhere(verb, group, resource, sub);
        Borrowable {
            names: [names(IMPERSONATE), names(MINT_TOKEN)],
            by_name: user.namespaces_where(|r| could(r, IMPERSONATE) || could(r, MINT_TOKEN)),
            exec: user.namespaces_where(|r| could(r, EXEC)),
        }
    }

    /// Whether some rule could let the user act as `account`: by name, or
    /// (with `exec`) by exec into the pods that run as it.
    fn may(&self, (ns, name): (&str, &str), running: bool) -> bool {
        let among = |set: &Option<BTreeSet<&str>>, item: &str| {
            set.as_ref().is_none_or(|s| s.contains(item))
        };
        let named = self.names.iter().any(|names| among(names, name));
        (named && among(&self.by_name, ns)) || (running && among(&self.exec, ns))
    }
}

/// A kind of request, whatever its name and namespace: verb, API group,
/// resource and subresource.
type Action = (&'static str, &'static str, &'static str, &'static str);

/// Acting as a service account: impersonating it, minting a token for it,
/// or exec into the pods that run as it.
const IMPERSONATE: Action = ("impersonate", "", "serviceaccounts", "");
const MINT_TOKEN: Action = ("create", "", "serviceaccounts", "token");
const EXEC: Action = ("create", "", "pods", "exec");

/// `action` on the object `name` (empty for any) in `ns`.
fn act((verb, group, resource, sub): Action, name: &str, ns: &str) -> Request {
    req(verb, group, resource, sub, name, ns)
}

/// Whether `rule` could allow `action` for some name.
fn could(rule: &Rule, (verb, group, resource, sub): Action) -> bool {
    rule.could_allow(verb, group, resource, sub)
}

/// The kinds whose creation in a namespace runs code as any of its
/// accounts, in the order they are tried.
const CREATORS: [(&str, &str); 8] = [
    ("", "pods"),
    ("apps", "deployments"),
    ("apps", "daemonsets"),
    ("apps", "statefulsets"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
    ("", "replicationcontrollers"),
];

/// Which ways through an admin account some rule of the user could open,
/// whatever the name and namespace. A way none of its rules opens is
/// denied everywhere, so it is not asked admin by admin: that keeps the
/// search near linear when thousands of accounts meet thousands of admins.
#[derive(Default)]
struct Openings {
    impersonate: bool,
    token: bool,
    exec: bool,
    run: bool,
    bind: bool,
    escalate: bool,
}

impl Openings {
    fn of(user: &PreparedUser<'_>) -> Openings {
        let may = |verb: &str, group: &str, resource: &str, sub: &str| {
            user.may_somewhere(verb, group, resource, sub)
        };
        let on_roles =
            |verb: &str| may(verb, RBAC, "roles", "") || may(verb, RBAC, "clusterroles", "");
        let may_act = |(verb, group, resource, sub): Action| may(verb, group, resource, sub);
        Openings {
            impersonate: may_act(IMPERSONATE),
            token: may_act(MINT_TOKEN),
            exec: may_act(EXEC),
            run: CREATORS
                .iter()
                .any(|(group, resource)| may("create", group, resource, ""))
                || (may("create", "", "secrets", "") && may("get", "", "secrets", "")),
            bind: (may("create", RBAC, "rolebindings", "")
                || may("create", RBAC, "clusterrolebindings", ""))
                && on_roles("bind"),
            escalate: on_roles("escalate") && (on_roles("update") || on_roles("patch")),
        }
    }

    /// Whether acting as an admin account itself could be allowed.
    fn borrow(&self) -> bool {
        self.impersonate || self.token || self.exec
    }

    /// Whether taking over an admin's namespace could be allowed.
    fn take_over(&self) -> bool {
        self.bind || self.escalate
    }

    /// Whether running code in an admin's namespace, or taking it over,
    /// could be allowed.
    fn reach_a_namespace(&self) -> bool {
        self.run || self.take_over()
    }
}

/// Whether a rule could allow the first request of some way through an
/// admin account: `create` on pods, workloads, tokens, exec, secrets or
/// bindings, `impersonate` on service accounts, `bind` or `escalate` on
/// roles. A wildcard in a verb or resource counts as a match.
fn may_borrow_an_identity(rule: &Rule) -> bool {
    const CREATED: &[&str] = &[
        "pods",
        "pods/exec",
        "serviceaccounts/token",
        "secrets",
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "jobs",
        "cronjobs",
        "replicationcontrollers",
        "rolebindings",
        "clusterrolebindings",
    ];
    let verb = |v: &str| rule.verbs.iter().any(|w| w == v || w == "*");
    let resource = |among: &[&str]| {
        (rule.resources.iter()).any(|r| r.contains('*') || among.contains(&r.as_str()))
    };
    (verb("create") && resource(CREATED))
        || (verb("impersonate") && resource(&["serviceaccounts"]))
        || ((verb("bind") || verb("escalate")) && resource(&["roles", "clusterroles"]))
}

/// The accounts of `namespace` among `admins` (sorted numbers of
/// `accounts`).
fn admins_in<'a>(
    accounts: &'a Accounts,
    admins: &'a [AccountId],
    namespace: &'a str,
) -> impl Iterator<Item = AccountId> + 'a {
    let start = admins.partition_point(|&admin| accounts.namespace(admin) < namespace);
    (admins[start..].iter())
        .take_while(move |&&admin| accounts.namespace(admin) == namespace)
        .copied()
}

/// One admin account per namespace, the first by name.
fn namespaces_of<'a>(
    accounts: &'a Accounts,
    admins: &'a [AccountId],
) -> impl Iterator<Item = AccountId> + 'a {
    let mut last: Option<&str> = None;
    admins.iter().copied().filter(move |&admin| {
        let ns = accounts.namespace(admin);
        let first = last != Some(ns);
        last = Some(ns);
        first
    })
}

/// The admin accounts one round of the search tries accounts against, by
/// number, in order.
struct Admins {
    all: Vec<AccountId>,
    /// Those some workload's pods run as (with their token).
    running: Vec<AccountId>,
}

impl Admins {
    fn new(all: Vec<AccountId>, running: &Running) -> Admins {
        let with_pods = (all.iter().copied())
            .filter(|&account| running.workload(account).is_some())
            .collect();
        Admins {
            all,
            running: with_pods,
        }
    }
}

/// The accounts of `admins` in `namespaces` (all of them for `None`).
fn within<'a>(
    accounts: &Accounts,
    admins: &'a [AccountId],
    namespaces: Option<&BTreeSet<&str>>,
) -> Cow<'a, [AccountId]> {
    match namespaces {
        None => Cow::Borrowed(admins),
        Some(namespaces) => Cow::Owned(
            (namespaces.iter())
                .flat_map(|ns| admins_in(accounts, admins, ns))
                .collect(),
        ),
    }
}

/// Granting oneself any permission in namespace `ns`, then running code as
/// its admin account `name`: binding a role that creates pods there with
/// `bind` (checked in the namespace of the new RoleBinding, so a RoleBinding
/// of `ns` can hold it), or adding permissions to a role bound to oneself in
/// `ns` with `escalate`.
fn take_over_namespace(
    index: &RbacIndex,
    user: &PreparedUser<'_>,
    creators: &Creators,
    openings: &Openings,
    ns: &str,
    name: &str,
) -> Option<Step> {
    let bound = || {
        openings
            .bind
            .then(|| bind_in_namespace(index, user, creators, ns))
            .flatten()
    };
    let escalated = || {
        (openings.escalate)
            .then(|| escalate_in_namespace(index, user, ns))
            .flatten()
    };
    let (how, bootstrap) = bound().or_else(escalated)?;
    let text =
        format!("can {how}, so create pods in `{ns}` that run as ServiceAccount {ns}/{name}");
    Some(Step::new(text, bootstrap))
}

/// [`PodCreators`], worked out by the first account that needs them.
type Creators = OnceLock<PodCreators>;

/// The roles that let their holder create pods, worked out once for the
/// whole search: asking every role again for each account and namespace
/// made the search quadratic in the roles. A rule allows creating pods in
/// every namespace or in none, so one answer per role holds everywhere.
#[derive(Clone, Debug)]
struct PodCreators {
    /// The ClusterRoles: `cluster-admin`, `admin`, `edit`, then every
    /// other, each by name.
    cluster: Vec<Arc<RoleKey>>,
    /// The Roles of each namespace, by name.
    by_namespace: HashMap<String, Vec<Arc<RoleKey>>>,
}

impl PodCreators {
    fn of(index: &RbacIndex) -> PodCreators {
        let create_pods = req("create", "", "pods", "", "", "");
        let rank = |key: &RoleKey| match key {
            RoleKey::ClusterRole(name) => ["cluster-admin", "admin", "edit"]
                .iter()
                .position(|n| n == name)
                .unwrap_or(3),
            RoleKey::Role { .. } => 4,
        };
        let mut creators = PodCreators {
            cluster: Vec::new(),
            by_namespace: HashMap::new(),
        };
        let keys = index.roles().map(|r| &r.key).filter(|key| {
            index
                .effective_rules(key)
                .is_some_and(|rules| rules.iter().any(|r| r.rule.allows(&create_pods)))
        });
        for key in keys {
            match &**key {
                RoleKey::ClusterRole(_) => creators.cluster.push(key.clone()),
                RoleKey::Role { namespace, .. } => {
                    (creators.by_namespace.entry(namespace.clone()))
                        .or_default()
                        .push(key.clone());
                }
            }
        }
        creators.cluster.sort_by_key(|key| rank(key));
        creators
    }

    /// Roles that let their holder create pods in `ns`, in the order they
    /// are tried: the ClusterRoles, then the Roles of `ns`.
    fn in_namespace(&self, ns: &str) -> impl Iterator<Item = &RoleKey> {
        let roles = self.by_namespace.get(ns).map_or(&[][..], Vec::as_slice);
        self.cluster.iter().chain(roles).map(|key| &**key)
    }
}

/// Binding to oneself a role that creates pods in `ns`: with a RoleBinding
/// there, or a ClusterRoleBinding, each with `bind` on the role (checked in
/// the namespace of the binding written, none for a ClusterRoleBinding).
fn bind_in_namespace(
    index: &RbacIndex,
    user: &PreparedUser<'_>,
    creators: &Creators,
    ns: &str,
) -> Option<(String, bool)> {
    for (bindings, binding_ns, place) in [
        ("rolebindings", ns, format!("in `{ns}`")),
        ("clusterrolebindings", "", "cluster-wide".to_owned()),
    ] {
        let Some(create) = allowed(
            index,
            user,
            &req("create", RBAC, bindings, "", "", binding_ns),
        ) else {
            continue;
        };
        // Worked out only once a binding can be created: it reads every role.
        let creators = creators.get_or_init(|| PodCreators::of(index));
        for role in creators.in_namespace(ns) {
            let resource = match role {
                RoleKey::ClusterRole(_) => "clusterroles",
                RoleKey::Role { .. } if binding_ns.is_empty() => continue,
                RoleKey::Role { .. } => "roles",
            };
            let bind = req("bind", RBAC, resource, "", role.name(), binding_ns);
            if let Some(bind) = allowed(index, user, &bind) {
                let how = format!(
                    "bind {role} to itself {place} ({}; {})",
                    create.text(),
                    bind.text()
                );
                return Some((how, create.bootstrap && bind.bootstrap));
            }
        }
    }
    None
}

fn escalate_in_namespace(
    index: &RbacIndex,
    user: &PreparedUser<'_>,
    ns: &str,
) -> Option<(String, bool)> {
    for grant in user.grants() {
        if grant.scope() != Some(ns) {
            continue;
        }
        // A Role is written in its namespace; a ClusterRole cluster-wide.
        let (resource, request_ns) = match &*grant.role.key {
            RoleKey::Role { .. } => ("roles", ns),
            RoleKey::ClusterRole(_) => ("clusterroles", ""),
        };
        let name = grant.role.key.name();
        let ask = |verb: &str| {
            allowed(
                index,
                user,
                &req(verb, RBAC, resource, "", name, request_ns),
            )
        };
        let Some(escalate) = ask("escalate") else {
            continue;
        };
        let Some(update) = ask("update").or_else(|| ask("patch")) else {
            continue;
        };
        let how = format!(
            "add any permission to {}, bound to it in `{ns}` by {} ({}; {})",
            grant.role.key,
            grant.binding.key,
            escalate.text(),
            update.text()
        );
        let bootstrap = escalate.bootstrap && update.bootstrap && grant.binding.bootstrap.is_some();
        return Some((how, bootstrap));
    }
    None
}

fn bind_cluster_admin(index: &RbacIndex, user: &PreparedUser<'_>) -> Option<Step> {
    let create = allowed(
        index,
        user,
        &req("create", RBAC, "clusterrolebindings", "", "", ""),
    )?;
    let bind = allowed(
        index,
        user,
        &req("bind", RBAC, "clusterroles", "", "cluster-admin", ""),
    )?;
    Some(Step {
        text: format!(
            "can create a ClusterRoleBinding to `cluster-admin` ({}; {})",
            create.text(),
            bind.text()
        ),
        bootstrap: create.bootstrap && bind.bootstrap,
    })
}

fn escalate_own_role(index: &RbacIndex, user: &PreparedUser<'_>) -> Option<Step> {
    for grant in user.grants() {
        if grant.scope().is_some() {
            continue;
        }
        let RoleKey::ClusterRole(name) = &*grant.role.key else {
            continue;
        };
        let Some(escalate) = allowed(
            index,
            user,
            &req("escalate", RBAC, "clusterroles", "", name, ""),
        ) else {
            continue;
        };
        let update = allowed(
            index,
            user,
            &req("update", RBAC, "clusterroles", "", name, ""),
        )
        .or_else(|| {
            allowed(
                index,
                user,
                &req("patch", RBAC, "clusterroles", "", name, ""),
            )
        });
        if let Some(update) = update {
            return Some(Step {
                text: format!(
                    "can add any permission to ClusterRole `{name}`, bound to it cluster-wide by {} ({}; {})",
                    grant.binding.key,
                    escalate.text(),
                    update.text()
                ),
                bootstrap: escalate.bootstrap
                    && update.bootstrap
                    && grant.binding.bootstrap.is_some(),
            });
        }
    }
    None
}

/// Acting as the admin account `ns/name` itself: impersonating it,
/// requesting its token, exec into the pods that run as it.
fn borrow_identity(
    index: &RbacIndex,
    user: &PreparedUser<'_>,
    openings: &Openings,
    ns: &str,
    name: &str,
    first_workload: Option<&str>,
) -> Option<Step> {
    let who = || format!("ServiceAccount {ns}/{name}");
    let impersonate = || act(IMPERSONATE, name, ns);
    if openings.impersonate
        && let Some(g) = allowed(index, user, &impersonate())
    {
        return Some(Step::new(
            format!("can impersonate {} ({})", who(), g.text()),
            g.bootstrap,
        ));
    }
    let token = || act(MINT_TOKEN, name, ns);
    if openings.token
        && let Some(g) = allowed(index, user, &token())
    {
        return Some(Step::new(
            format!("can request a token for {} ({})", who(), g.text()),
            g.bootstrap,
        ));
    }
    if !openings.exec {
        return None;
    }
    // Exec is allowed or not whichever pod it is: name the first workload.
    let workload = first_workload?;
    let g = allowed(index, user, &act(EXEC, "", ns))?;
    let text = format!(
        "can exec into the pods of {workload} in `{ns}`, which run as {} ({})",
        who(),
        g.text()
    );
    Some(Step::new(text, g.bootstrap))
}

/// Running new code as any account of namespace `ns` (here the admin
/// account `name`): creating pods or workloads there, or minting and
/// reading a token Secret.
fn run_as_account(
    index: &RbacIndex,
    user: &PreparedUser<'_>,
    ns: &str,
    name: &str,
) -> Option<Step> {
    let who = format!("ServiceAccount {ns}/{name}");
    for (group, resource) in CREATORS {
        if let Some(g) = allowed(index, user, &req("create", group, resource, "", "", ns)) {
            let text = format!(
                "can create {resource} in `{ns}` that run as {who} ({})",
                g.text()
            );
            return Some(Step::new(text, g.bootstrap));
        }
    }
    let create = allowed(index, user, &req("create", "", "secrets", "", "", ns))?;
    let read = allowed(index, user, &req("get", "", "secrets", "", "", ns))?;
    let text = format!(
        "can create and read a token Secret for {who} in `{ns}` ({}; {})",
        create.text(),
        read.text()
    );
    Some(Step::new(text, create.bootstrap && read.bootstrap))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::index::tests::index;

    /// Four accounts, each a different step from cluster admin.
    const CHAIN: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: deployer}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: deployer, namespace: ci}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: runner}
rules: [{apiGroups: [batch], resources: [jobs], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: run, namespace: ci}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: runner}
subjects: [{kind: ServiceAccount, name: api, namespace: shop}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: execer}
rules: [{apiGroups: [""], resources: [pods/exec], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: exec, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: execer}
subjects: [{kind: ServiceAccount, name: debugger, namespace: dev}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: binder}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: [create]}
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: binder, namespace: ci}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: binder}
subjects: [{kind: ServiceAccount, name: ops, namespace: tools}]
"#;

    fn chain_analysis() -> RbacAnalysis {
        let running = vec![
            RunningAs {
                workload: "Deployment shop/web".to_owned(),
                account: ("shop".to_owned(), "api".to_owned()),
            },
            RunningAs {
                workload: "Deployment shop/other".to_owned(),
                account: ("shop".to_owned(), "api".to_owned()),
            },
        ];
        let accounts = [("shop", "idle"), ("dev", "debugger")]
            .map(|(ns, name)| (ns.to_owned(), name.to_owned()));
        RbacAnalysis::from_index(index(CHAIN), accounts.into_iter().collect(), running)
    }

    #[test]
    fn every_step_of_a_chain_is_worked_out_again_the_same() {
        let analysis = chain_analysis();
        let (steps, bootstrap) = analysis.admin_chain("dev", "debugger").expect("a chain");
        assert!(!bootstrap);
        assert_eq!(steps.len(), 3, "{steps:#?}");
        assert_eq!(
            steps[0],
            "can exec into the pods of Deployment shop/web in `shop`, which run as \
             ServiceAccount shop/api (RoleBinding shop/exec → ClusterRole execer rules[0])"
        );
        assert_eq!(
            steps[1],
            "can create jobs in `ci` that run as ServiceAccount ci/deployer \
             (RoleBinding ci/run → ClusterRole runner rules[0])"
        );
        assert!(steps[2].starts_with("holds `*` on every resource cluster-wide"));
        // Each account's chain is the tail of the chain through it.
        let api = analysis.admin_chain("shop", "api").expect("a chain").0;
        assert_eq!(api, steps[1..]);
        let (ops, _) = analysis.admin_chain("tools", "ops").expect("a chain");
        assert!(ops[0].starts_with("can bind ClusterRole"), "{ops:?}");
        assert!(ops[0].ends_with("so create pods in `ci` that run as ServiceAccount ci/deployer"));
        assert_eq!(ops[1..], steps[2..]);
        assert_eq!(analysis.admin_chain("shop", "idle"), None);
        assert_eq!(analysis.admin_chain("nowhere", "nobody"), None);
        // Asked again, from the steps kept or from a copy that keeps none,
        // and after more steps than are kept: the same chains.
        let copy = analysis.clone();
        for _ in 0..2 {
            assert_eq!(
                copy.admin_chain("dev", "debugger").map(|c| c.0),
                Some(steps.clone())
            );
        }
        for stranger in 0..CACHED_STEPS {
            analysis
                .steps
                .keep(usize::MAX - stranger, &Step::new(String::new(), true));
        }
        assert_eq!(analysis.admin_chain("tools", "ops").map(|c| c.0), Some(ops));
    }

    #[test]
    fn pod_creators_come_in_the_order_they_are_tried() {
        let index = index(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: builder}
rules: [{apiGroups: [""], resources: [pods], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: reader}
rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: runner, namespace: shop}
rules: [{apiGroups: [""], resources: ["*"], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: a-runner, namespace: shop}
rules: [{apiGroups: [""], resources: [pods], verbs: [create]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: elsewhere, namespace: other}
rules: [{apiGroups: [""], resources: [pods], verbs: [create]}]
"#,
        );
        let creators = PodCreators::of(&index);
        let shop: Vec<String> = creators
            .in_namespace("shop")
            .map(|k| k.to_string())
            .collect();
        // The defaults Palisade stands in for first, then other
        // ClusterRoles, then the namespace's Roles, each by name.
        assert_eq!(
            &shop[..3],
            [
                "ClusterRole cluster-admin",
                "ClusterRole admin",
                "ClusterRole edit"
            ]
        );
        let at = |role: &str| shop.iter().position(|r| r == role);
        assert!(at("ClusterRole builder") < at("Role shop/a-runner"));
        assert_eq!(
            &shop[shop.len() - 2..],
            ["Role shop/a-runner", "Role shop/runner"]
        );
        assert_eq!(at("ClusterRole reader"), None, "get only");
        assert_eq!(at("Role other/elsewhere"), None, "another namespace");
        let other: Vec<String> = creators
            .in_namespace("other")
            .map(|k| k.to_string())
            .collect();
        assert_eq!(
            other.last().map(String::as_str),
            Some("Role other/elsewhere")
        );
        assert!(!other.iter().any(|r| r.starts_with("Role shop/")));
    }
}
