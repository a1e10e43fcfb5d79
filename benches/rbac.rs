//! RBAC analysis at scale: effective permissions of 5,000 service accounts
//! under 5,000 roles and 10,000 bindings, and the incremental update after
//! one binding or role changes (what the operator does on each watch event).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use palisade::rbac::{Change, EffectivePermissions, RbacAnalysis, RbacIndex};

const NAMESPACES: usize = 100;
const ACCOUNTS_PER_NAMESPACE: usize = 50; // 5,000 service accounts
const ROLES_PER_NAMESPACE: usize = 25; // 2,500 Roles
const CLUSTER_ROLES: usize = 2_500; // 5,000 roles in all
const ROLE_BINDINGS_PER_NAMESPACE: usize = 90; // 9,000 RoleBindings
const CLUSTER_ROLE_BINDINGS: usize = 1_000; // 10,000 bindings in all

struct Cluster {
    roles: Vec<Role>,
    cluster_roles: Vec<ClusterRole>,
    role_bindings: Vec<RoleBinding>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    accounts: Vec<(String, String)>,
}

fn meta(name: String, namespace: Option<String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace,
        ..ObjectMeta::default()
    }
}

fn rules(i: usize) -> Vec<PolicyRule> {
    let resources = [
        "pods",
        "secrets",
        "configmaps",
        "deployments",
        "services",
        "pods/exec",
    ];
    let verbs = ["get", "list", "watch", "create", "update", "delete"];
    (0..3)
        .map(|j| PolicyRule {
            api_groups: Some(vec![
                if (i + j).is_multiple_of(4) {
                    "apps"
                } else {
                    ""
                }
                .to_owned(),
            ]),
            resources: Some(vec![resources[(i + j) % resources.len()].to_owned()]),
            verbs: vec![
                verbs[(i * 7 + j) % verbs.len()].to_owned(),
                "get".to_owned(),
            ],
            ..PolicyRule::default()
        })
        .collect()
}

fn account_subject(ns: usize, sa: usize) -> Subject {
    Subject {
        kind: "ServiceAccount".to_owned(),
        name: format!("sa-{sa}"),
        namespace: Some(format!("ns-{ns}")),
        ..Subject::default()
    }
}

fn role_binding(ns: usize, i: usize) -> RoleBinding {
    let (kind, name) = if i.is_multiple_of(2) {
        ("Role", format!("role-{}", i % ROLES_PER_NAMESPACE))
    } else {
        (
            "ClusterRole",
            format!("cluster-role-{}", (ns * 31 + i) % CLUSTER_ROLES),
        )
    };
    let mut subjects = vec![account_subject(ns, i % ACCOUNTS_PER_NAMESPACE)];
    if i.is_multiple_of(10) {
        subjects.push(Subject {
            kind: "Group".to_owned(),
            name: format!("team-{}", i % 7),
            ..Subject::default()
        });
    }
    RoleBinding {
        metadata: meta(format!("rb-{i}"), Some(format!("ns-{ns}"))),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: kind.to_owned(),
            name,
        },
        subjects: Some(subjects),
    }
}

fn generate() -> Cluster {
    let mut cluster = Cluster {
        roles: Vec::new(),
        cluster_roles: Vec::new(),
        role_bindings: Vec::new(),
        cluster_role_bindings: Vec::new(),
        accounts: Vec::new(),
    };
    for ns in 0..NAMESPACES {
        for sa in 0..ACCOUNTS_PER_NAMESPACE {
            cluster
                .accounts
                .push((format!("ns-{ns}"), format!("sa-{sa}")));
        }
        for r in 0..ROLES_PER_NAMESPACE {
            cluster.roles.push(Role {
                metadata: meta(format!("role-{r}"), Some(format!("ns-{ns}"))),
                rules: Some(rules(ns * ROLES_PER_NAMESPACE + r)),
            });
        }
        for i in 0..ROLE_BINDINGS_PER_NAMESPACE {
            cluster.role_bindings.push(role_binding(ns, i));
        }
    }
    for i in 0..CLUSTER_ROLES {
        cluster.cluster_roles.push(ClusterRole {
            metadata: meta(format!("cluster-role-{i}"), None),
            rules: Some(rules(i)),
            ..ClusterRole::default()
        });
    }
    for i in 0..CLUSTER_ROLE_BINDINGS {
        cluster.cluster_role_bindings.push(ClusterRoleBinding {
            metadata: meta(format!("crb-{i}"), None),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".to_owned(),
                kind: "ClusterRole".to_owned(),
                name: format!("cluster-role-{}", i % CLUSTER_ROLES),
            },
            subjects: Some(vec![account_subject(
                i % NAMESPACES,
                (i * 13) % ACCOUNTS_PER_NAMESPACE,
            )]),
        });
    }
    cluster
}

fn build(cluster: &Cluster) -> (RbacIndex, EffectivePermissions) {
    let index = RbacIndex::build(
        &cluster.roles,
        &cluster.cluster_roles,
        &cluster.role_bindings,
        &cluster.cluster_role_bindings,
    );
    let permissions = EffectivePermissions::compute(&index, cluster.accounts.iter().cloned());
    (index, permissions)
}

fn effective_permissions(c: &mut Criterion) {
    let cluster = generate();
    let mut group = c.benchmark_group("rbac");
    group.sample_size(10);
    group.bench_function(
        "effective permissions: 5000 roles, 10000 bindings, 5000 accounts",
        |b| b.iter(|| black_box(build(&cluster))),
    );

    let accounts: std::collections::BTreeSet<(String, String)> =
        cluster.accounts.iter().cloned().collect();
    group.bench_function("attack paths to cluster admin for 5000 accounts", |b| {
        b.iter(|| {
            let index = build(&cluster).0;
            black_box(RbacAnalysis::from_index(
                index,
                accounts.clone(),
                Vec::new(),
            ))
        })
    });

    let (mut index, mut permissions) = build(&cluster);
    // One RoleBinding moves between two accounts and back.
    let original = role_binding(7, 3);
    let mut moved = original.clone();
    moved.subjects = Some(vec![account_subject(7, 49)]);
    let mut flip = false;
    group.sample_size(100);
    group.bench_function("one RoleBinding changes: index + affected accounts", |b| {
        b.iter(|| {
            flip = !flip;
            let binding = if flip { &moved } else { &original };
            let affected = index.apply(Change::RoleBinding(binding));
            black_box(permissions.refresh(&index, &affected))
        })
    });
    // A binding to every account of a namespace (50 accounts).
    let mut to_group = original.clone();
    to_group.subjects = Some(vec![Subject {
        kind: "Group".to_owned(),
        name: "system:serviceaccounts:ns-7".to_owned(),
        ..Subject::default()
    }]);
    group.bench_function("one RoleBinding to a namespace's accounts changes", |b| {
        b.iter(|| {
            flip = !flip;
            let binding = if flip { &to_group } else { &original };
            let affected = index.apply(Change::RoleBinding(binding));
            black_box(permissions.refresh(&index, &affected))
        })
    });
    // A ClusterRole's rules change: every binding of it is affected.
    let role = cluster.cluster_roles[42].clone();
    let mut changed = role.clone();
    changed.rules = Some(rules(43));
    group.bench_function("one ClusterRole changes", |b| {
        b.iter(|| {
            flip = !flip;
            let r = if flip { &changed } else { &role };
            let affected = index.apply(Change::ClusterRole(r));
            black_box(permissions.refresh(&index, &affected))
        })
    });
    // A ClusterRole aggregated into `view` (and so `edit` and `admin`) changes:
    // every aggregated role is recomputed.
    let mut aggregated = role.clone();
    aggregated.metadata.labels = Some(std::collections::BTreeMap::from([(
        "rbac.authorization.k8s.io/aggregate-to-view".to_owned(),
        "true".to_owned(),
    )]));
    let mut aggregated_changed = aggregated.clone();
    aggregated_changed.rules = Some(rules(43));
    index.apply(Change::ClusterRole(&aggregated));
    group.bench_function("one ClusterRole aggregated into view changes", |b| {
        b.iter(|| {
            flip = !flip;
            let r = if flip {
                &aggregated_changed
            } else {
                &aggregated
            };
            let affected = index.apply(Change::ClusterRole(r));
            black_box(permissions.refresh(&index, &affected))
        })
    });
    group.finish();
}

criterion_group!(benches, effective_permissions);
criterion_main!(benches);
