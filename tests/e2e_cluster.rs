//! Proof that the test cluster is a real Kubernetes: controllers, garbage
//! collection, RBAC aggregation and authorization, PodSecurity admission.

mod common;

use std::time::Duration;

use common::{TestNamespace, client, create_in, wait_for};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

const TIMEOUT: Duration = Duration::from_secs(60);

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}
            }
        }
    }))
    .expect("valid deployment")
}

async fn count<K>(api: &Api<K>, selector: &str) -> usize
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    api.list(&ListParams::default().labels(selector))
        .await
        .expect("list works")
        .items
        .len()
}

#[tokio::test]
async fn deployment_controller_creates_replicaset_and_pods_and_gc_removes_them() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "deploy-gc").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let replicasets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns.name);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);

    deployments
        .create(&PostParams::default(), &deployment("web"))
        .await
        .expect("create deployment");

    let rs_name = wait_for("the ReplicaSet of the Deployment", TIMEOUT, || async {
        let list = replicasets
            .list(&ListParams::default().labels("app=web"))
            .await
            .ok()?;
        let rs = list.items.into_iter().next()?;
        let owner = rs.metadata.owner_references.as_ref()?.first()?;
        (owner.kind == "Deployment" && owner.name == "web")
            .then(|| rs.metadata.name.clone().unwrap())
    })
    .await;
    assert!(
        rs_name.starts_with("web-"),
        "ReplicaSet named after the Deployment: {rs_name}"
    );

    wait_for("two Pods created by the ReplicaSet", TIMEOUT, || async {
        (count(&pods, "app=web").await == 2).then_some(())
    })
    .await;

    // Background propagation: the garbage collector removes the dependents.
    deployments
        .delete("web", &DeleteParams::background())
        .await
        .expect("delete deployment");
    wait_for(
        "garbage collection of the ReplicaSet and Pods",
        TIMEOUT,
        || async {
            (count(&replicasets, "app=web").await == 0 && count(&pods, "app=web").await == 0)
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn aggregated_cluster_role_gets_rules_filled_in() {
    let client = client().await;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    let suffix = std::process::id();
    let aggregate_name = format!("e2e-aggregate-{suffix}");
    let part_name = format!("e2e-part-{suffix}");
    let label = format!("e2e-aggregate-{suffix}");

    let aggregate: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": aggregate_name},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"palisade.dev/e2e-aggregate": label}}]},
    }))
    .unwrap();
    let part: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": part_name, "labels": {"palisade.dev/e2e-aggregate": label}},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    }))
    .unwrap();
    roles
        .create(&PostParams::default(), &aggregate)
        .await
        .expect("create aggregate");
    roles
        .create(&PostParams::default(), &part)
        .await
        .expect("create part");

    let rules = wait_for(
        "the aggregation controller to fill in rules",
        TIMEOUT,
        || async {
            let role = roles.get(&aggregate_name).await.ok()?;
            role.rules.filter(|r| !r.is_empty())
        },
    )
    .await;
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].resources.as_deref(),
        Some(&["configmaps".to_string()][..])
    );

    for name in [&aggregate_name, &part_name] {
        roles
            .delete(name, &DeleteParams::default())
            .await
            .expect("cleanup");
    }
}

fn access_review(user: &str, namespace: &str, verb: &str, resource: &str) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            resource_attributes: Some(ResourceAttributes {
                namespace: Some(namespace.to_owned()),
                verb: Some(verb.to_owned()),
                resource: Some(resource.to_owned()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn subject_access_review_follows_a_role_binding() {
    let client = client().await;
    let ns = TestNamespace::create(&client, "sar").await;
    let n = ns.name.as_str();
    create_in::<ServiceAccount>(&client, n, json!({"metadata": {"name": "reader"}})).await;
    create_in::<Role>(
        &client,
        n,
        json!({"metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
    )
    .await;
    create_in::<RoleBinding>(
        &client,
        n,
        json!({"metadata": {"name": "reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader"}]}),
    )
    .await;

    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let user = format!("system:serviceaccount:{}:reader", ns.name);
    let ask = |verb: &'static str, resource: &'static str| {
        let review = access_review(&user, &ns.name, verb, resource);
        let reviews = reviews.clone();
        async move {
            let answer = reviews
                .create(&PostParams::default(), &review)
                .await
                .expect("SAR answers");
            answer.status.expect("SAR status").allowed
        }
    };
    // The authorizer reads RBAC from an informer: wait for the binding to be seen.
    wait_for("the RoleBinding to take effect", TIMEOUT, || async {
        ask("list", "pods").await.then_some(())
    })
    .await;
    assert!(ask("get", "pods").await, "get pods is granted by the Role");
    assert!(!ask("delete", "pods").await, "delete pods is not granted");
    assert!(!ask("get", "secrets").await, "secrets are not granted");
}

#[tokio::test]
async fn pod_security_admission_rejects_privileged_pod_in_restricted_namespace() {
    let client = client().await;
    let ns = TestNamespace::create_with_labels(
        &client,
        "pss",
        &[("pod-security.kubernetes.io/enforce", "restricted")],
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let privileged: Pod = serde_json::from_value(json!({
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
            "securityContext": {"privileged": true}}]}
    }))
    .unwrap();
    let err = pods
        .create(&PostParams::default(), &privileged)
        .await
        .expect_err("admission rejects it");
    let message = err.to_string();
    assert!(
        message.contains("violates PodSecurity"),
        "unexpected error: {message}"
    );
    assert!(
        message.contains("privileged"),
        "names the control: {message}"
    );

    // A pod that meets the restricted profile is admitted in the same namespace.
    let compliant: Pod = serde_json::from_value(json!({
        "metadata": {"name": "compliant"},
        "spec": {
            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]
        }
    }))
    .unwrap();
    pods.create(&PostParams::default(), &compliant)
        .await
        .expect("restricted-compliant pod is admitted");
}
