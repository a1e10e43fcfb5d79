//! A freshly started cluster has no RBAC problem worth reporting: every
//! finding on the objects the control plane creates by itself (the bootstrap
//! roles and bindings, the controllers' service accounts) is suppressed.
//! The default policy Palisade recognises is the API server's own, object by
//! object: `src/rbac/default_policy.json` is compared with what a fresh API
//! server created (`PALISADE_WRITE_DEFAULT_POLICY=1` rewrites it). The
//! operator suppresses a default object's findings only for the real one: a
//! copy in another namespace is reported, flagged as claiming to be one.

mod common;

use std::time::Duration;

use clap::Parser;
use common::{OPERATOR_ACCOUNT, TestNamespace, client, create_in, token_kubeconfig, wait_for};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams};
use palisade::crd::ScanReport;
use palisade::engine::{Category, evaluate};
use palisade::model::{Inventory, Resource};
use palisade::operator::{self, OperatorArgs};
use palisade::policy::Policy;
use palisade::rbac::default_policy::{POLICY_VERSION, PolicyFile, PolicyObject};
use serde::de::DeserializeOwned;

/// Objects written only by the control plane itself, whatever tests have
/// added to the shared cluster since it started.
fn created_by_control_plane(meta: &ObjectMeta) -> bool {
    let managers: Vec<_> = meta
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.as_deref())
        .collect();
    !managers.is_empty()
        && managers.iter().all(|m| {
            matches!(
                *m,
                "kube-apiserver"
                    | "kube-controller-manager"
                    | "clusterrole-aggregation-controller"
                    | "test-cluster"
            )
        })
}

async fn list<K>(client: &kube::Client) -> Vec<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + DeserializeOwned,
{
    let api: Api<K> = Api::all(client.clone());
    api.list(&ListParams::default())
        .await
        .expect("list works")
        .items
        .into_iter()
        .filter(|o| created_by_control_plane(o.meta()))
        .collect()
}

#[tokio::test]
async fn a_fresh_cluster_has_no_unsuppressed_rbac_findings() {
    let client = client().await;
    let mut resources: Vec<Resource> = Vec::new();
    resources.extend(
        list::<ClusterRole>(&client)
            .await
            .into_iter()
            .map(Resource::ClusterRole),
    );
    let cluster_roles = resources.len();
    resources.extend(
        list::<ClusterRoleBinding>(&client)
            .await
            .into_iter()
            .map(Resource::ClusterRoleBinding),
    );
    resources.extend(list::<Role>(&client).await.into_iter().map(Resource::Role));
    resources.extend(
        list::<RoleBinding>(&client)
            .await
            .into_iter()
            .map(Resource::RoleBinding),
    );
    resources.extend(
        list::<ServiceAccount>(&client)
            .await
            .into_iter()
            .map(Resource::ServiceAccount),
    );
    assert!(
        cluster_roles > 50,
        "the bootstrap policy is there: {cluster_roles} ClusterRoles"
    );

    let inventory = Inventory::from_resources(&resources);
    let rbac_checks: Vec<_> = palisade::checks::catalog()
        .iter()
        .copied()
        .filter(|c| c.category == Category::Rbac)
        .collect();
    let findings = evaluate(&inventory, &rbac_checks, &Policy::default());
    let unsuppressed: Vec<String> = findings
        .iter()
        .filter(|f| !f.is_suppressed())
        .map(|f| format!("{} {}: {}", f.object, f.check.id, f.message))
        .collect();
    let suppressed = findings.len() - unsuppressed.len();
    eprintln!(
        "{} objects, {suppressed} suppressed RBAC findings",
        resources.len()
    );
    assert!(
        suppressed > 0,
        "the RBAC checks ran on the bootstrap policy"
    );
    assert!(
        unsuppressed.is_empty(),
        "unsuppressed findings on a fresh cluster:\n{}",
        unsuppressed.join("\n")
    );
}

async fn default_policy_of(client: &kube::Client) -> Vec<PolicyObject> {
    let mut objects: Vec<PolicyObject> = Vec::new();
    // Every RBAC object the control plane wrote is its default policy (the
    // aggregation controller then writes the rules of `admin`, `edit` and
    // `view`, which are not kept).
    for role in list::<ClusterRole>(client).await {
        objects.push(PolicyObject::of_cluster_role(&role));
    }
    for binding in list::<ClusterRoleBinding>(client).await {
        objects.push(PolicyObject::of_cluster_role_binding(&binding));
    }
    for role in list::<Role>(client).await {
        objects.push(PolicyObject::of_role(&role));
    }
    for binding in list::<RoleBinding>(client).await {
        objects.push(PolicyObject::of_role_binding(&binding));
    }
    objects.sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    objects
}

#[tokio::test]
async fn the_default_policy_file_is_the_api_servers() {
    let client = client().await;
    let version = client
        .apiserver_version()
        .await
        .expect("server version")
        .git_version;
    let live = PolicyFile {
        kubernetes: version.clone(),
        objects: default_policy_of(&client).await,
    };
    let path = common::repo_root().join("src/rbac/default_policy.json");
    let written = serde_json::to_string_pretty(&live).expect("serialises") + "\n";
    if std::env::var_os("PALISADE_WRITE_DEFAULT_POLICY").is_some() {
        std::fs::write(&path, &written).expect("write default_policy.json");
    }
    let stored = std::fs::read_to_string(&path).expect("read default_policy.json");
    let stored: PolicyFile = serde_json::from_str(&stored).expect("default_policy.json parses");
    assert!(
        version.starts_with(POLICY_VERSION),
        "the test cluster runs {version}, the policy file is for {POLICY_VERSION}"
    );
    eprintln!(
        "{} default objects in {version}, {} in the file",
        live.objects.len(),
        stored.objects.len()
    );
    let missing: Vec<String> = live
        .objects
        .iter()
        .filter(|o| !stored.objects.contains(o))
        .map(|o| format!("{} {:?} {}", o.kind, o.namespace, o.name))
        .collect();
    let extra: Vec<String> = stored
        .objects
        .iter()
        .filter(|o| !live.objects.contains(o))
        .map(|o| format!("{} {:?} {}", o.kind, o.namespace, o.name))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "src/rbac/default_policy.json differs from the API server's default policy \
         (rewrite it with PALISADE_WRITE_DEFAULT_POLICY=1):\nnot in the file: {missing:?}\nnot in the cluster: {extra:?}"
    );
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: OperatorArgs,
}

const TIMEOUT: Duration = Duration::from_secs(90);
/// A Role of the default policy in `kube-system` (it reads Secrets).
const BOOTSTRAP_SIGNER: &str = "system:controller:bootstrap-signer";

/// The report whose target is the Role `name`, once the operator wrote its
/// findings.
async fn role_report(client: &kube::Client, namespace: &str, name: &str) -> ScanReport {
    let api: Api<ScanReport> = Api::namespaced(client.clone(), namespace);
    wait_for(
        &format!("the report of Role {namespace}/{name}"),
        TIMEOUT,
        || async {
            let reports = api.list(&ListParams::default()).await.ok()?;
            reports.items.into_iter().find(|r| {
                r.spec.target.kind == "Role"
                    && r.spec.target.name == name
                    && r.status.as_ref().is_some_and(|s| !s.findings.is_empty())
            })
        },
    )
    .await
}

/// `(check, suppressed)` of every finding of a report.
fn findings_of(report: &ScanReport) -> Vec<(String, bool)> {
    report
        .status
        .iter()
        .flat_map(|s| &s.findings)
        .map(|f| (f.check.clone(), f.suppressed.is_some()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_suppresses_only_the_real_default_objects() {
    let client = client().await;
    common::install_operator_manifests();
    common::wait_until_allowed(OPERATOR_ACCOUNT, &[&["list", "roles", "-A"]]);
    let kubeconfig = token_kubeconfig("palisade-system", "palisade");

    // The same Role as the default one, in a namespace of its own.
    let ns = TestNamespace::create(&client, "claims-default").await;
    let _: Role = create_in(
        &client,
        &ns.name,
        serde_json::json!({
            "metadata": {"name": BOOTSTRAP_SIGNER, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}],
        }),
    )
    .await;

    // A report an earlier run left in `kube-system` must not answer for this one.
    let system_reports: Api<ScanReport> = Api::namespaced(client.clone(), "kube-system");
    for report in system_reports
        .list(&ListParams::default())
        .await
        .expect("list reports")
        .items
    {
        if report.spec.target.name == BOOTSTRAP_SIGNER {
            let name = report.metadata.name.clone().unwrap_or_default();
            system_reports
                .delete(&name, &Default::default())
                .await
                .expect("delete an old report");
        }
    }

    let port = common::free_port();
    let argv = [
        "palisade",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--namespaces",
        &format!("kube-system,{}", ns.name),
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
        "--policy-name",
        &format!("e2e-{}", ns.name),
        "--resync-interval",
        "1h",
    ];
    let args = Cli::try_parse_from(argv)
        .expect("operator flags parse")
        .args;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(operator::run_until(args, async move {
        let _ = stopped.await;
    }));

    let copy = findings_of(&role_report(&client, &ns.name, BOOTSTRAP_SIGNER).await);
    let real = findings_of(&role_report(&client, "kube-system", BOOTSTRAP_SIGNER).await);
    let _ = stop.send(());
    tokio::time::timeout(TIMEOUT, task)
        .await
        .expect("the operator stops in time")
        .expect("operator task")
        .expect("the operator ends without error");

    assert!(
        copy.contains(&("rbac-role-claims-default".to_owned(), false))
            && copy.contains(&("rbac-secrets-read".to_owned(), false)),
        "the copy is reported and flagged: {copy:?}"
    );
    assert!(
        real.contains(&("rbac-secrets-read".to_owned(), true))
            && !real
                .iter()
                .any(|(check, suppressed)| !suppressed || check == "rbac-role-claims-default"),
        "the real default is suppressed and not flagged: {real:?}"
    );
}
