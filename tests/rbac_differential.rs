//! Palisade's authorizer against the API server's own, on generated RBAC.
//!
//! A seeded generator creates Roles, ClusterRoles (aggregated ones among
//! them), RoleBindings and ClusterRoleBindings with users, groups and
//! service accounts as subjects, waits until the API server's RBAC cache and
//! the aggregation controller have caught up, then asks the same random
//! questions to Palisade (on the objects listed back from the cluster) and
//! to SubjectAccessReview. Every answer must agree; on a mismatch the seed is
//! printed so the run can be repeated with `PALISADE_RBAC_SEED=<seed>`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

mod common;

use common::{Rng, client};
use futures::{StreamExt, stream};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use palisade::rbac::{RbacIndex, Request, Rule, UserInfo};
use serde_json::{Value, json};

const QUESTIONS: usize = 10_000;
const IN_FLIGHT: usize = 32;
const DEFAULT_SEED: u64 = 0x5eed_2026_0004;

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
    "widgets",
    "*",
];
const NAMES: &[&str] = &["a", "b"];
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

fn resource_rule(rng: &mut Rng) -> Value {
    let mut rule = json!({
        "apiGroups": rng.some(GROUPS, 2),
        "resources": rng.some(RESOURCES, 3),
        "verbs": rng.some(VERBS, 3),
    });
    if rng.chance(20) {
        rule["resourceNames"] = json!(rng.some(NAMES, 2));
    }
    rule
}

fn rules(rng: &mut Rng, cluster: bool) -> Vec<Value> {
    (0..1 + rng.below(3))
        .map(|_| {
            if cluster && rng.chance(20) {
                json!({"nonResourceURLs": rng.some(URLS, 2), "verbs": rng.some(&["get", "post", "*"], 2)})
            } else {
                resource_rule(rng)
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
            role["rules"] = json!(rules(rng, true));
        }
        cluster_roles.push(role);
    }
    let mut roles = Vec::new();
    for ns in &u.namespaces {
        for i in 0..3 {
            roles.push(json!({
                "metadata": {"name": format!("{}-r{i}", u.run), "namespace": ns, "labels": u.labels()},
                "rules": rules(rng, false),
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
            let inventory = palisade::rbac::live::read_inventory(client)
                .await
                .expect("list rbac");
            let index = index_of(&inventory);
            let expected: Vec<Rule> = index
                .effective_rules(&palisade::rbac::RoleKey::cluster(name))
                .expect("aggregated role exists")
                .iter()
                .map(|r| r.rule.clone())
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

fn question(rng: &mut Rng, u: &Universe) -> Request {
    if rng.chance(15) {
        let verb = *rng.pick(&["get", "post", "put"]);
        let path = *rng.pick(REQUEST_URLS);
        return Request::non_resource(verb, path);
    }
    let verb = *rng.pick(&VERBS[..VERBS.len() - 1]);
    let verb = if rng.chance(5) { "*" } else { verb };
    let group = *rng.pick(&[
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
        "widgets",
        "configmaps",
        "*",
    ]) {
        r if r.contains('/') => r.split_once('/').unwrap(),
        r => (r, ""),
    };
    let name = *rng.pick(&["", "", "a", "b", "c"]);
    let namespace = match rng.below(10) {
        0..=1 => String::new(),
        2 => "other".to_owned(),
        _ => rng.pick(&u.namespaces).clone(),
    };
    Request::resource(verb, group, resource, sub, name, &namespace)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn palisade_agrees_with_subject_access_review() {
    let seed = std::env::var("PALISADE_RBAC_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("PALISADE_RBAC_SEED is a number"))
        .unwrap_or(DEFAULT_SEED);
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
    let inventory = palisade::rbac::live::read_inventory(client)
        .await
        .map_err(|e| e.to_string())?;
    let index = index_of(&inventory);

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
    let by_index: BTreeMap<usize, bool> = answers.into_iter().collect();
    for (i, (user, request)) in questions.iter().enumerate() {
        let server = by_index[&i];
        let ours = index.authorize(user, request);
        if ours.is_allowed() == server {
            agreements += 1;
            allowed += usize::from(server);
        } else {
            mismatches.push(format!(
                "{user} {request}: API server {server}, Palisade {ours:?}"
            ));
        }
    }
    let summary = format!(
        "{QUESTIONS} questions, {agreements} agreements ({allowed} allowed), {} mismatches, \
         asked in {elapsed:.1?}; aggregated roles: {}",
        mismatches.len(),
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
