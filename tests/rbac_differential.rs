//! Palisade's authorizer against the API server's own, on generated RBAC.
//!
//! A seeded generator creates Roles, ClusterRoles (aggregated ones among
//! them), RoleBindings and ClusterRoleBindings with users, groups and
//! service accounts as subjects, waits until the API server's RBAC cache and
//! the aggregation controller have caught up, then asks the same random
//! questions to Palisade (on the objects listed back from the cluster) and
//! to SubjectAccessReview. Every answer must agree.
//!
//! The questions cover every shape of request attributes: namespaced and
//! cluster-scoped resources with and without a namespace, `namespaces` by
//! name in their own namespace (as the API server asks about a request on a
//! namespace), subresources of cluster-scoped kinds (`nodes/proxy`), and
//! non-resource URLs; some are built by `palisade rbac can-i`'s own request
//! builder. Then every service account's dangerous permissions (what the
//! checks report) are compared with SubjectAccessReview on the requests
//! each risk is about, namespace by namespace.
//!
//! The seed is `PALISADE_RBAC_SEED`, else derived from the run; it is
//! printed first, so any run can be repeated.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod common;

use common::{Rng, TestNamespace, client, create_in, kubectl_output};
use futures::{StreamExt, stream};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use palisade::cli::rbac::{ActionArgs, build_request};
use palisade::rbac::risk::{ProbeScope, RISKS, Risk};
use palisade::rbac::{RbacAnalysis, RbacIndex, Request, Rule, UserInfo};
use serde_json::{Value, json};

/// The tests of this file take turns: the generated bindings grant groups
/// (`system:authenticated`, …) that the other test's identities are in.
static ONE_AT_A_TIME: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

const QUESTIONS: usize = 10_000;
const IN_FLIGHT: usize = 32;

const VERBS: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "impersonate",
    "bind",
    "escalate",
    "*",
];
const GROUPS: &[&str] = &["", "apps", "rbac.authorization.k8s.io", "example.com", "*"];
const RESOURCES: &[&str] = &[
    "pods",
    "pods/exec",
    "pods/log",
    "secrets",
    "deployments",
    "deployments/scale",
    "*/scale",
    "*/exec",
    "roles",
    "users",
    "nodes",
    "nodes/proxy",
    "namespaces",
    "namespaces/status",
    "clusterroles",
    "persistentvolumes",
    "serviceaccounts/token",
    "widgets",
    "*",
];
const URLS: &[&str] = &["/healthz", "/logs/*", "/logs", "/api*", "/metrics", "*"];
const REQUEST_URLS: &[&str] = &[
    "/healthz",
    "/logs/",
    "/logs/x",
    "/logs",
    "/api",
    "/apis/apps",
    "/metrics",
    "/version",
];

/// Everything one run creates, named after the run.
struct Universe {
    run: String,
    namespaces: Vec<String>,
    users: Vec<String>,
    groups: Vec<String>,
    accounts: Vec<(String, String)>,
    cluster_roles: Vec<String>,
    aggregation_label: String,
}

impl Universe {
    fn new(seed: u64) -> Universe {
        // Names are unique per run (a namespace of an earlier run may still
        // be terminating); the generated content depends on the seed only.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0)
            ^ std::process::id();
        let run = format!("pdiff-{:x}-{:x}", seed & 0xffff, nonce & 0xff_ffff);
        let namespaces: Vec<String> = ["a", "b", "c"]
            .iter()
            .map(|s| format!("{run}-{s}"))
            .collect();
        let mut accounts = Vec::new();
        for ns in &namespaces {
            for name in ["sa1", "sa2", "default"] {
                accounts.push((ns.clone(), name.to_owned()));
            }
        }
        Universe {
            users: ["alice", "bob", "carol"]
                .iter()
                .map(|u| format!("{run}-{u}"))
                .collect(),
            groups: ["dev", "ops", "qa"]
                .iter()
                .map(|g| format!("{run}-{g}"))
                .collect(),
            cluster_roles: (0..10).map(|i| format!("{run}-cr{i}")).collect(),
            aggregation_label: format!("{run}.example.com/aggregate"),
            namespaces,
            accounts,
            run,
        }
    }

    fn labels(&self) -> Value {
        json!({"palisade.dev/rbac-differential": self.run})
    }
}

fn resource_rule(rng: &mut Rng, u: &Universe) -> Value {
    let mut rule = json!({
        "apiGroups": rng.some(GROUPS, 2),
        "resources": rng.some(RESOURCES, 3),
        "verbs": rng.some(VERBS, 3),
    });
    if rng.chance(20) {
        // Names, some of them a namespace's (for rules on `namespaces`).
        let names = ["a".to_owned(), "b".to_owned(), u.namespaces[0].clone()];
        rule["resourceNames"] = json!(rng.some(&names, 2));
    }
    rule
}

/// A rule aimed at one of the requests a risk is about, so that the
/// comparison of dangerous permissions sees grants as well as refusals.
fn risky_rule(rng: &mut Rng, u: &Universe) -> Value {
    let risk = rng.pick(RISKS);
    let probe = rng.pick(risk.probes);
    let resource = match probe.subresource {
        "" => probe.resource.to_owned(),
        "*" => format!("{}/scale", probe.resource),
        sub => format!("{}/{sub}", probe.resource),
    };
    let group = if rng.chance(20) { "*" } else { probe.group };
    let verb = if rng.chance(15) {
        "*"
    } else {
        *rng.pick(probe.verbs)
    };
    let mut rule = json!({"apiGroups": [group], "resources": [resource], "verbs": [verb]});
    if rng.chance(20) {
        rule["resourceNames"] = json!([rng.pick(&u.namespaces)]);
    }
    rule
}

fn rules(rng: &mut Rng, u: &Universe, cluster: bool) -> Vec<Value> {
    (0..1 + rng.below(3))
        .map(|_| {
            if cluster && rng.chance(20) {
                json!({"nonResourceURLs": rng.some(URLS, 2), "verbs": rng.some(&["get", "post", "*"], 2)})
            } else if rng.chance(25) {
                risky_rule(rng, u)
            } else {
                resource_rule(rng, u)
            }
        })
        .collect()
}

fn subjects(rng: &mut Rng, u: &Universe, binding_ns: Option<&str>) -> Vec<Value> {
    (0..1 + rng.below(3))
        .map(|_| match rng.below(10) {
            0..=2 => json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": rng.pick(&u.users)}),
            3..=4 => json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": rng.pick(&u.groups)}),
            5 => {
                let ns = rng.pick(&u.namespaces).clone();
                let group = *rng.pick(&["system:serviceaccounts", "system:serviceaccounts:NS", "system:authenticated"]);
                json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": group.replace("NS", &ns)})
            }
            _ => {
                let (ns, name) = rng.pick(&u.accounts).clone();
                match binding_ns {
                    // In a RoleBinding the namespace may be left to default.
                    Some(b) if b == ns && rng.chance(50) => json!({"kind": "ServiceAccount", "name": name}),
                    _ => json!({"kind": "ServiceAccount", "name": name, "namespace": ns}),
                }
            }
        })
        .collect()
}

/// The objects of a run, generated from the seed.
struct Generated {
    cluster_roles: Vec<Value>,
    roles: Vec<Value>,
    cluster_role_bindings: Vec<Value>,
    role_bindings: Vec<Value>,
    aggregated: Vec<String>,
}

fn generate(rng: &mut Rng, u: &Universe) -> Generated {
    let mut cluster_roles = Vec::new();
    let mut aggregated = Vec::new();
    let label_values = ["x", "y"];
    for (i, name) in u.cluster_roles.iter().enumerate() {
        let mut labels = u.labels();
        if rng.chance(60) {
            labels[&u.aggregation_label] = json!(rng.pick(&label_values));
        }
        let mut role = json!({"metadata": {"name": name, "labels": labels}});
        // Two aggregated roles: one selecting `x`, one selecting `x` or `y`
        // (so that one may also select the other).
        if i < 2 {
            let selectors = if i == 0 {
                json!([{"matchLabels": {&u.aggregation_label: "x"}}])
            } else {
                json!([{"matchExpressions": [{"key": &u.aggregation_label, "operator": "In", "values": ["y"]}]},
                       {"matchLabels": {&u.aggregation_label: "x"}}])
            };
            role["aggregationRule"] = json!({"clusterRoleSelectors": selectors});
            aggregated.push(name.clone());
        } else {
            role["rules"] = json!(rules(rng, u, true));
        }
        cluster_roles.push(role);
    }
    let mut roles = Vec::new();
    for ns in &u.namespaces {
        for i in 0..3 {
            roles.push(json!({
                "metadata": {"name": format!("{}-r{i}", u.run), "namespace": ns, "labels": u.labels()},
                "rules": rules(rng, u, false),
            }));
        }
    }
    let role_ref = |rng: &mut Rng, namespaced: bool| -> Value {
        // A few refer to roles that do not exist (dangling).
        if namespaced && rng.chance(50) {
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("{}-r{}", u.run, rng.below(4))})
        } else {
            let name = if rng.chance(8) {
                format!("{}-missing", u.run)
            } else {
                rng.pick(&u.cluster_roles).clone()
            };
            json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name})
        }
    };
    let mut cluster_role_bindings = Vec::new();
    for i in 0..8 {
        cluster_role_bindings.push(json!({
            "metadata": {"name": format!("{}-crb{i}", u.run), "labels": u.labels()},
            "roleRef": role_ref(rng, false),
            "subjects": subjects(rng, u, None),
        }));
    }
    let mut role_bindings = Vec::new();
    for ns in &u.namespaces {
        for i in 0..5 {
            role_bindings.push(json!({
                "metadata": {"name": format!("{}-rb{i}", u.run), "namespace": ns, "labels": u.labels()},
                "roleRef": role_ref(rng, true),
                "subjects": subjects(rng, u, Some(ns)),
            }));
        }
    }
    Generated {
        cluster_roles,
        roles,
        cluster_role_bindings,
        role_bindings,
        aggregated,
    }
}

fn typed<T: serde::de::DeserializeOwned>(value: &Value) -> T {
    serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("generated object {value}: {e}"))
}

async fn create_all(client: &Client, u: &Universe, generated: &Generated) {
    let pp = PostParams::default();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in &u.namespaces {
        let object: Namespace = typed(&json!({"metadata": {"name": ns, "labels": u.labels()}}));
        namespaces
            .create(&pp, &object)
            .await
            .expect("create namespace");
    }
    let cluster_roles: Api<ClusterRole> = Api::all(client.clone());
    for role in &generated.cluster_roles {
        cluster_roles
            .create(&pp, &typed(role))
            .await
            .expect("create clusterrole");
    }
    for role in &generated.roles {
        let ns = role["metadata"]["namespace"].as_str().unwrap();
        Api::<Role>::namespaced(client.clone(), ns)
            .create(&pp, &typed(role))
            .await
            .expect("create role");
    }
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    for binding in &generated.cluster_role_bindings {
        crbs.create(&pp, &typed(binding))
            .await
            .expect("create clusterrolebinding");
    }
    for binding in &generated.role_bindings {
        let ns = binding["metadata"]["namespace"].as_str().unwrap();
        Api::<RoleBinding>::namespaced(client.clone(), ns)
            .create(&pp, &typed(binding))
            .await
            .expect("create rolebinding");
    }
}

async fn cleanup(client: &Client, u: &Universe) {
    let lp = ListParams::default().labels(&format!("palisade.dev/rbac-differential={}", u.run));
    let dp = DeleteParams::default();
    let _ = Api::<ClusterRoleBinding>::all(client.clone())
        .delete_collection(&dp, &lp)
        .await;
    let _ = Api::<ClusterRole>::all(client.clone())
        .delete_collection(&dp, &lp)
        .await;
    // Namespaces have no deletecollection; their Roles and RoleBindings go with them.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in &u.namespaces {
        let _ = namespaces.delete(ns, &dp).await;
    }
}

async fn sar(client: &Client, user: &UserInfo, request: &Request) -> bool {
    let mut spec = SubjectAccessReviewSpec {
        user: Some(user.name.clone()),
        groups: Some(user.groups.clone()),
        ..SubjectAccessReviewSpec::default()
    };
    match request {
        Request::Resource(r) => {
            spec.resource_attributes = Some(ResourceAttributes {
                verb: Some(r.verb.clone()),
                group: Some(r.api_group.clone()),
                resource: Some(r.resource.clone()),
                subresource: Some(r.subresource.clone()),
                name: Some(r.name.clone()),
                namespace: Some(r.namespace.clone()),
                ..ResourceAttributes::default()
            })
        }
        Request::NonResource { verb, path } => {
            spec.non_resource_attributes = Some(NonResourceAttributes {
                verb: Some(verb.clone()),
                path: Some(path.clone()),
            })
        }
    }
    let review = SubjectAccessReview {
        spec,
        ..SubjectAccessReview::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    for attempt in 0.. {
        match api.create(&PostParams::default(), &review).await {
            Ok(answer) => return answer.status.map(|s| s.allowed).unwrap_or(false),
            Err(e) if attempt < 5 => {
                eprintln!("SubjectAccessReview failed ({e}), retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("SubjectAccessReview failed: {e}"),
        }
    }
    unreachable!()
}

async fn wait_until(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !probe().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Objects created last, whose grants prove the authorizer's caches have
/// every earlier object of each kind (a watch delivers a kind's events in
/// order).
async fn create_sentinels(client: &Client, u: &Universe) -> Vec<(UserInfo, Request)> {
    let pp = PostParams::default();
    let ns = &u.namespaces[0];
    let user = format!("{}-sentinel", u.run);
    let rule =
        json!([{"apiGroups": ["example.com"], "resources": ["sentinels"], "verbs": ["get"]}]);
    let labels = u.labels();
    Api::<ClusterRole>::all(client.clone())
        .create(&pp, &typed(&json!({"metadata": {"name": format!("{}-sentinel", u.run), "labels": labels}, "rules": rule})))
        .await
        .expect("sentinel clusterrole");
    Api::<ClusterRoleBinding>::all(client.clone())
        .create(&pp, &typed(&json!({
            "metadata": {"name": format!("{}-sentinel", u.run), "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{}-sentinel", u.run)},
            "subjects": [{"kind": "User", "name": user}],
        })))
        .await
        .expect("sentinel clusterrolebinding");
    Api::<Role>::namespaced(client.clone(), ns)
        .create(
            &pp,
            &typed(&json!({"metadata": {"name": format!("{}-sentinel", u.run)}, "rules": rule})),
        )
        .await
        .expect("sentinel role");
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&pp, &typed(&json!({
            "metadata": {"name": format!("{}-sentinel", u.run)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": format!("{}-sentinel", u.run)},
            "subjects": [{"kind": "User", "name": format!("{user}-ns")}],
        })))
        .await
        .expect("sentinel rolebinding");
    let ask = |name: &str, namespace: &str| {
        (
            UserInfo::new(name.to_owned(), &[]),
            Request::resource("get", "example.com", "sentinels", "", "", namespace),
        )
    };
    vec![ask(&user, ""), ask(&format!("{user}-ns"), ns)]
}

/// The rules the cluster stores for each aggregated role, once the
/// aggregation controller has written what Palisade computes.
async fn wait_for_aggregation(client: &Client, u: &Universe, generated: &Generated) -> Vec<String> {
    let api: Api<ClusterRole> = Api::all(client.clone());
    let mut report = Vec::new();
    for name in &generated.aggregated {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let inventory = palisade::cli::rbac::read_inventory(client)
                .await
                .expect("list rbac");
            let index = index_of(&inventory);
            let expected: Vec<Rule> = index
                .effective_rules(&palisade::rbac::RoleKey::cluster(name))
                .expect("aggregated role exists")
                .iter()
                .map(|r| (*r.rule).clone())
                .collect();
            let stored: Vec<Rule> = api
                .get(name)
                .await
                .expect("get aggregated role")
                .rules
                .unwrap_or_default()
                .iter()
                .map(Rule::from)
                .collect();
            if stored == expected {
                report.push(format!("{name}: {} rules", stored.len()));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "aggregated ClusterRole {name} ({}) never matched Palisade's union:\nstored {stored:#?}\nexpected {expected:#?}",
                u.run
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    report
}

fn index_of(inventory: &palisade::model::Inventory) -> RbacIndex {
    RbacIndex::build(
        &inventory.roles,
        &inventory.cluster_roles,
        &inventory.role_bindings,
        &inventory.cluster_role_bindings,
    )
}

fn identity(rng: &mut Rng, u: &Universe) -> UserInfo {
    match rng.below(10) {
        0..=3 => {
            let (ns, name) = rng.pick(&u.accounts).clone();
            UserInfo::service_account(&ns, &name)
        }
        4 => UserInfo::new(rng.pick(&u.users).clone(), &["system:masters"]),
        _ => {
            let mut groups: Vec<String> = Vec::new();
            for g in &u.groups {
                if rng.chance(35) {
                    groups.push(g.clone());
                }
            }
            if rng.chance(50) {
                groups.push("system:authenticated".to_owned());
            }
            let name = if rng.chance(10) {
                // A username that looks like an account, without its groups.
                let (ns, sa) = rng.pick(&u.accounts).clone();
                format!("system:serviceaccount:{ns}:{sa}")
            } else {
                rng.pick(&u.users).clone()
            };
            UserInfo { name, groups }
        }
    }
}

/// The shape of a question's attributes, counted in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    NamespacedWithNamespace,
    NamespacedWithoutNamespace,
    ClusterScopedWithoutNamespace,
    ClusterScopedWithNamespace,
    NamespaceInItself,
    ClusterScopedSubresource,
    Unknown,
    NonResource,
}

/// Built-in cluster-scoped resources among those asked about.
const CLUSTER_SCOPED: &[&str] = &[
    "nodes",
    "namespaces",
    "clusterroles",
    "persistentvolumes",
    "users",
];

fn shape(request: &Request) -> Shape {
    let Request::Resource(r) = request else {
        return Shape::NonResource;
    };
    let cluster_scoped = CLUSTER_SCOPED.contains(&r.resource.as_str());
    if r.resource == "namespaces" && !r.name.is_empty() && r.name == r.namespace {
        Shape::NamespaceInItself
    } else if cluster_scoped && !r.subresource.is_empty() {
        Shape::ClusterScopedSubresource
    } else if cluster_scoped && r.namespace.is_empty() {
        Shape::ClusterScopedWithoutNamespace
    } else if cluster_scoped {
        Shape::ClusterScopedWithNamespace
    } else if r.resource == "widgets" || r.resource == "*" {
        Shape::Unknown
    } else if r.namespace.is_empty() {
        Shape::NamespacedWithoutNamespace
    } else {
        Shape::NamespacedWithNamespace
    }
}

fn question(rng: &mut Rng, u: &Universe) -> Request {
    match rng.below(20) {
        0..=2 => non_resource_question(rng),
        3..=7 => can_i_question(rng, u),
        _ => attribute_question(rng, u),
    }
}

fn non_resource_question(rng: &mut Rng) -> Request {
    let verb = *rng.pick(&["get", "post", "put"]);
    let path = *rng.pick(REQUEST_URLS);
    Request::non_resource(verb, path)
}

fn some_namespace(rng: &mut Rng, u: &Universe) -> String {
    match rng.below(10) {
        0..=1 => String::new(),
        2 => "other".to_owned(),
        _ => rng.pick(&u.namespaces).clone(),
    }
}

/// Attributes drawn at random, any combination.
fn attribute_question(rng: &mut Rng, u: &Universe) -> Request {
    let verb = *rng.pick(&VERBS[..VERBS.len() - 1]);
    let verb = if rng.chance(5) { "*" } else { verb };
    let group = *rng.pick(&[
        "",
        "",
        "",
        "apps",
        "rbac.authorization.k8s.io",
        "example.com",
        "batch",
    ]);
    let (resource, sub) = match *rng.pick(&[
        "pods",
        "pods/exec",
        "pods/log",
        "secrets",
        "deployments",
        "deployments/scale",
        "roles",
        "users",
        "nodes",
        "nodes/proxy",
        "namespaces",
        "namespaces/status",
        "clusterroles",
        "persistentvolumes",
        "serviceaccounts/token",
        "widgets",
        "configmaps",
        "*",
    ]) {
        r if r.contains('/') => r.split_once('/').unwrap(),
        r => (r, ""),
    };
    let namespace = some_namespace(rng, u);
    let name = if resource == "namespaces" && rng.chance(50) {
        // A request on a namespace names it, in itself (or, asked by
        // SubjectAccessReview, in any namespace).
        if rng.chance(80) && !namespace.is_empty() {
            namespace.clone()
        } else {
            rng.pick(&u.namespaces).clone()
        }
    } else {
        (*rng.pick(&["", "", "a", "b", "c"])).to_owned()
    };
    Request::resource(verb, group, resource, sub, &name, &namespace)
}

/// What `palisade rbac can-i` asks for a command line (kubectl's
/// attributes; `namespaces/NAME` in its own namespace).
fn can_i_question(rng: &mut Rng, u: &Universe) -> Request {
    let verb = *rng.pick(&[
        "get",
        "list",
        "create",
        "update",
        "patch",
        "delete",
        "bind",
        "escalate",
        "impersonate",
    ]);
    let (target, subresource) = match rng.below(8) {
        0 => (format!("namespaces/{}", rng.pick(&u.namespaces)), None),
        1 => ("namespace".to_owned(), None),
        2 => ("nodes".to_owned(), Some("proxy")),
        3 => (format!("clusterroles/{}", rng.pick(&u.cluster_roles)), None),
        4 => ("pv".to_owned(), None),
        5 => ("serviceaccounts/sa1".to_owned(), Some("token")),
        6 => ("secrets".to_owned(), None),
        _ => ("users/a".to_owned(), None),
    };
    let namespace = match rng.below(4) {
        0 => None,
        _ => Some(some_namespace(rng, u)).filter(|ns| !ns.is_empty()),
    };
    let action = ActionArgs {
        verb: verb.to_owned(),
        target,
        name: None,
        subresource: subresource.map(str::to_owned),
        all_namespaces: namespace.is_none() && rng.chance(30),
        namespace,
    };
    let default_namespace = rng.pick(&u.namespaces).clone();
    build_request(&action, &default_namespace)
        .expect("a valid can-i command line")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn palisade_agrees_with_subject_access_review() {
    let seed = std::env::var("PALISADE_RBAC_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("PALISADE_RBAC_SEED is a number"))
        .unwrap_or_else(seed_of_this_run);
    eprintln!("PALISADE_RBAC_SEED={seed}");
    let _turn = ONE_AT_A_TIME.lock().await;
    let client = client().await;
    let universe = Universe::new(seed);
    let mut rng = Rng::new(seed);
    let generated = generate(&mut rng, &universe);
    cleanup(&client, &universe).await;
    create_all(&client, &universe, &generated).await;

    let outcome = run(&client, &universe, &generated, &mut rng).await;
    cleanup(&client, &universe).await;
    match outcome {
        Ok(summary) => eprintln!("{summary}"),
        Err(failure) => panic!("seed {seed} (PALISADE_RBAC_SEED={seed}): {failure}"),
    }
}

/// A different seed each run (clock and process), so runs cover more cases.
fn seed_of_this_run() -> u64 {
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    (clock ^ (u64::from(std::process::id()) << 32)).max(1)
}

async fn run(
    client: &Client,
    u: &Universe,
    generated: &Generated,
    rng: &mut Rng,
) -> Result<String, String> {
    let aggregation = wait_for_aggregation(client, u, generated).await;
    // The aggregated roles are final: a sentinel created after them shows
    // the authorizer has seen every write before it.
    for (user, request) in create_sentinels(client, u).await {
        wait_until("the RBAC cache", async || {
            sar(client, &user, &request).await
        })
        .await;
    }
    let inventory = palisade::cli::rbac::read_inventory(client)
        .await
        .map_err(|e| e.to_string())?;
    let index = index_of(&inventory);
    let index = &index;

    let questions: Vec<(UserInfo, Request)> = (0..QUESTIONS)
        .map(|_| (identity(rng, u), question(rng, u)))
        .collect();
    let started = Instant::now();
    let answers: Vec<(usize, bool)> = stream::iter(questions.iter().enumerate())
        .map(|(i, (user, request))| async move { (i, sar(client, user, request).await) })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let elapsed = started.elapsed();

    let mut agreements = 0;
    let mut allowed = 0;
    let mut mismatches = Vec::new();
    // (questions, allowed) per shape of attributes.
    let mut shapes: BTreeMap<Shape, (usize, usize)> = BTreeMap::new();
    let by_index: BTreeMap<usize, bool> = answers.into_iter().collect();
    for (i, (user, request)) in questions.iter().enumerate() {
        let server = by_index[&i];
        let ours = index.authorize(user, request);
        let counts = shapes.entry(shape(request)).or_default();
        counts.0 += 1;
        counts.1 += usize::from(server);
        if ours.is_allowed() == server {
            agreements += 1;
            allowed += usize::from(server);
        } else {
            mismatches.push(format!(
                "{user} {request}: API server {server}, Palisade {ours:?}"
            ));
        }
    }
    let risks = compare_dangerous_permissions(client, u, index).await;
    mismatches.extend(risks.mismatches);
    let shapes: Vec<String> = shapes
        .iter()
        .map(|(shape, (asked, yes))| format!("{shape:?} {asked} ({yes} allowed)"))
        .collect();
    let summary = format!(
        "{QUESTIONS} questions, {agreements} agreements ({allowed} allowed), {} mismatches, \
         asked in {elapsed:.1?}; by shape: {}; dangerous permissions: {} (account, namespace, \
         risk) answers from {} SubjectAccessReviews, {} held; aggregated roles: {}",
        mismatches.len(),
        shapes.join(", "),
        risks.answers,
        risks.reviews,
        risks.held,
        aggregation.join(", ")
    );
    if mismatches.is_empty() {
        Ok(summary)
    } else {
        mismatches.truncate(20);
        Err(format!(
            "{summary}\nfirst mismatches:\n{}",
            mismatches.join("\n")
        ))
    }
}

/// How the service accounts' dangerous permissions compared.
struct RiskComparison {
    answers: usize,
    reviews: usize,
    held: usize,
    mismatches: Vec<String>,
}

/// The requests a risk is about, as real requests carry them in namespace
/// `namespace`: cluster-scoped probes without one, a namespace itself in
/// itself; no names (a name-limited grant is not the whole risk).
fn risk_requests(risk: &Risk, namespace: &str) -> Vec<Request> {
    let mut requests = Vec::new();
    for probe in risk.probes {
        // "Any subresource": every one the generated rules can name.
        let subresources: &[&str] = if probe.subresource == "*" {
            &["any", "scale", "exec", "proxy", "status", "token"]
        } else {
            &[probe.subresource]
        };
        let (request_ns, name) = match probe.scope {
            ProbeScope::Namespaced => (namespace, ""),
            ProbeScope::Cluster => ("", ""),
            ProbeScope::OwnNamespace => (namespace, namespace),
        };
        for verb in probe.verbs {
            for subresource in subresources {
                requests.push(Request::resource(
                    verb,
                    probe.group,
                    probe.resource,
                    subresource,
                    name,
                    request_ns,
                ));
            }
        }
    }
    requests
}

/// For every account, namespace and risk: Palisade's dangerous permissions
/// hold the risk there (a grant in that namespace, or cluster-wide) exactly
/// when SubjectAccessReview allows one of the risk's requests there.
async fn compare_dangerous_permissions(
    client: &Client,
    u: &Universe,
    index: &RbacIndex,
) -> RiskComparison {
    let accounts = u.accounts.iter().cloned().collect();
    let analysis = RbacAnalysis::from_index(index.clone(), accounts, Vec::new());
    let mut cases = Vec::new();
    for (ns, name) in &u.accounts {
        for namespace in &u.namespaces {
            for risk in RISKS {
                cases.push((ns.clone(), name.clone(), namespace.clone(), risk));
            }
        }
    }
    let reviews: Vec<(usize, UserInfo, Request)> = cases
        .iter()
        .enumerate()
        .flat_map(|(i, (ns, name, namespace, risk))| {
            let user = UserInfo::service_account(ns, name);
            risk_requests(risk, namespace)
                .into_iter()
                .map(move |request| (i, user.clone(), request))
        })
        .collect();
    let allowed: Vec<(usize, bool)> = stream::iter(reviews.iter())
        .map(|(i, user, request)| async move { (*i, sar(client, user, request).await) })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut server_holds = vec![false; cases.len()];
    for (i, yes) in allowed {
        server_holds[i] |= yes;
    }
    let mut comparison = RiskComparison {
        answers: cases.len(),
        reviews: reviews.len(),
        held: 0,
        mismatches: Vec::new(),
    };
    for ((ns, name, namespace, risk), server) in cases.iter().zip(server_holds) {
        let permissions = analysis.dangerous_permissions(ns, name);
        let ours = permissions.iter().any(|p| {
            p.hit.kind == risk.kind
                && match p.scope.as_deref() {
                    Some(scope) => scope == namespace.as_str() && p.hit.names.is_empty(),
                    // A cluster-wide grant limited to names holds a risk on
                    // a namespace itself when it names that namespace.
                    None => {
                        p.hit.names.is_empty()
                            || (risk.on_namespace_itself() && p.hit.names.contains(namespace))
                    }
                }
        });
        comparison.held += usize::from(server);
        if ours != server {
            comparison.mismatches.push(format!(
                "ServiceAccount {ns}/{name} in namespace {namespace}: {:?} API server {server}, \
                 Palisade {ours} ({permissions:?})",
                risk.kind
            ));
        }
    }
    comparison
}

/// `palisade rbac can-i` on the live cluster answers and warns as
/// `kubectl auth can-i` does, word for word, on command lines about
/// namespaces and cluster-scoped resources; on `namespaces/NAME` without
/// `-n` it asks in `NAME`, the namespace of the real request, where kubectl
/// asks in the kubeconfig's.
#[test]
fn can_i_answers_and_warns_like_kubectl() {
    let _turn = ONE_AT_A_TIME.blocking_lock();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let ns = runtime.block_on(async {
        let client = client().await;
        let ns = TestNamespace::create(&client, "can-i").await;
        let _: Role = create_in(
            &client,
            &ns.name,
            json!({"metadata": {"name": "ns-admin"}, "rules": [
                {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["delete", "patch"]},
                {"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]},
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"], "resourceNames": ["edit"]},
            ]}),
        )
        .await;
        let _: RoleBinding = create_in(
            &client,
            &ns.name,
            json!({"metadata": {"name": "ns-admin"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ns-admin"},
                   "subjects": [{"kind": "ServiceAccount", "name": "api"}]}),
        )
        .await;
        ns
    });
    let n = ns.name.as_str();
    let user = format!("system:serviceaccount:{n}:api");
    common::wait_until_allowed(&user, &[&["delete", "namespaces", "-n", n]]);

    let same: &[&[&str]] = &[
        &["delete", "namespaces", "-n", n],
        &["patch", "ns", "-n", n],
        &["delete", "namespaces", "-n", "default"],
        &["list", "namespaces", "-A"],
        &["get", "nodes", "--subresource", "proxy", "-n", n],
        &["get", "nodes", "--subresource", "proxy"],
        &["get", "nodes", "--subresource", "proxy", "-A"],
        &[
            "bind",
            "clusterroles.rbac.authorization.k8s.io/edit",
            "-n",
            n,
        ],
        &["bind", "clusterroles/admin", "-n", n],
        &["get", "pods", "-n", n],
    ];
    let mut compared = 0;
    for args in same {
        let (palisade, kubectl) = settled(args, &user, |p, k| p == k);
        assert_eq!(palisade, kubectl, "can-i {args:?}: palisade vs kubectl");
        compared += 1;
    }
    // The real request on namespace `n` carries namespace `n`.
    let target = format!("namespaces/{n}");
    let by_name = ["delete", target.as_str()];
    let (palisade, kubectl) = settled(&by_name, &user, |p, k| p.0 == "yes" && k.0 == "no");
    assert_eq!((palisade.0.as_str(), kubectl.0.as_str()), ("yes", "no"));
    let in_itself = ["delete", target.as_str(), "-n", n];
    let (_, kubectl) = settled(&in_itself, &user, |_, k| k.0 == "yes");
    assert_eq!(kubectl.0, "yes");
    eprintln!("{compared} command lines answered and warned alike");
}

type Outcome = (String, i32, String);

/// Palisade's and kubectl's outcomes once `expected` holds, or after 20
/// tries: Palisade lists the RBAC objects, the authorizer reads them from
/// its cache, where a binding the other test just deleted may linger for a
/// moment.
fn settled(
    args: &[&str],
    user: &str,
    expected: impl Fn(&Outcome, &Outcome) -> bool,
) -> (Outcome, Outcome) {
    let mut attempts = 0;
    loop {
        let kubectl = can_i_with_kubectl(args, user);
        let palisade = can_i_with_palisade(args, user);
        attempts += 1;
        if expected(&palisade, &kubectl) || attempts == 20 {
            return (palisade, kubectl);
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// (first word of the answer, exit code, standard error)
fn can_i_with_kubectl(args: &[&str], user: &str) -> Outcome {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--as", user]);
    outcome(&kubectl_output(&all))
}

fn can_i_with_palisade(args: &[&str], user: &str) -> Outcome {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_palisade"))
        .args(["rbac", "can-i"])
        .args(args)
        .args(["--as", user, "--kubeconfig"])
        .arg(common::kubeconfig())
        .output()
        .expect("palisade runs");
    outcome(&output)
}

fn outcome(output: &std::process::Output) -> Outcome {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let answer = stdout.split_whitespace().next().unwrap_or("").to_owned();
    (
        answer,
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
