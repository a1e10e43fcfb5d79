//! Palisade's audit of ValidatingAdmissionPolicies against the reference:
//! the API server's own admission. Policies with generated CEL expressions
//! (drawn from a pool that uses every library: macros, strings, lists,
//! regex, URLs, quantities, IP/CIDR, formats, sets, optionals, variables,
//! match conditions) are bound with `Deny` to one test namespace each;
//! generated objects are created there with a server-side dry run, and
//! Palisade's verdict on each object must be the admission's.
//!
//! The seed comes from `PALISADE_TEST_SEED`, else from the clock (so each
//! run covers other cases); it is printed, with the counts.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{Rng, TestNamespace, client};
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use palisade::crd::{ScanPolicy, ScanReport};
use palisade::engine::{Severity, evaluate};
use palisade::model::{Inventory, Resource};
use palisade::policy::Policy;
use serde_json::{Value, json};

/// Policies generated (one namespace each) and objects per policy.
const POLICIES: usize = 30;
const OBJECTS_PER_POLICY: usize = 16;

/// Expressions on a ConfigMap's `data`; `D` stands for `object.data` or
/// a variable holding it.
const CONFIG_MAP_POOL: &[&str] = &[
    // Standard macros and string functions.
    "D.image.startsWith('registry.acme.io/')",
    "!D.image.endsWith(':latest')",
    "D.list.split(',').all(x, x.size() <= 5)",
    "D.list.split(',').exists_one(x, x == 'a')",
    "D.list.split(',').filter(x, x != '').size() >= 2",
    "D.list.split(',').map(x, x.size()).exists(n, n > 3)",
    "D.name.lowerAscii() == D.name",
    "D.name.matches('^[a-z]+$')",
    "D.name.replace('-', '').size() < 8",
    "D.name.indexOf('b') == -1",
    "D.name.split('-').size() < 3",
    "D.name.upperAscii() != 'WEB'",
    "D.name.trim() == D.name && D.name.contains('e')",
    // Kubernetes list library.
    "D.list.split(',').isSorted()",
    "D.list.split(',').map(x, x.size()).sum() < 6",
    "D.list.split(',').indexOf('b') < 1",
    "D.list.split(',').lastIndexOf('a') != 0",
    "D.list.split(',').min() == 'a'",
    "D.list.split(',').max() != 'y'",
    // Regex library.
    "D.name.find('[0-9]+') == ''",
    "D.name.findAll('[a-z]').size() > 3",
    // URL library.
    "isURL(D.url) && url(D.url).getScheme() == 'https'",
    "url(D.url).getHostname().endsWith('.acme.io')",
    "!isURL(D.url) || url(D.url).getPort() != '8080'",
    "url(D.url).getEscapedPath().startsWith('/v1')",
    "url(D.url).getHost() != 'example.com'",
    // Quantity library.
    "quantity(D.cpu).isLessThan(quantity('2'))",
    "isQuantity(D.memory) && quantity(D.memory).compareTo(quantity('1Gi')) <= 0",
    "quantity(D.memory).add(quantity(D.memory)).isGreaterThan(quantity('512Mi'))",
    "quantity(D.cpu).isInteger()",
    "quantity(D.cpu).sub(quantity('1')).isLessThan(quantity('1'))",
    "quantity(D.memory).asApproximateFloat() < 1500000000.0",
    // IP and CIDR libraries.
    "isIP(D.ip) && ip(D.ip).family() == 4",
    "cidr('10.0.0.0/8').containsIP(D.ip)",
    "!isCIDR(D.cidr) || cidr(D.cidr).prefixLength() >= 16",
    "!ip(D.ip).isLoopback()",
    "ip(D.ip).isGlobalUnicast()",
    "isIP(D.ip) && ip.isCanonical(D.ip)",
    "cidr(D.cidr).masked() == cidr(D.cidr)",
    "cidr('10.0.0.0/8').containsCIDR(D.cidr)",
    // Format library.
    "!format.dns1123Label().validate(D.name).hasValue()",
    "!format.named('labelValue').value().validate(D.name).hasValue()",
    // Sets library.
    "sets.contains(['a', 'b', 'c', 'd'], D.list.split(','))",
    "!sets.intersects(D.list.split(','), ['x', 'y'])",
    "sets.equivalent(D.list.split(','), ['a', 'b'])",
    // Optional types.
    "D.?missing.orValue('ok') == 'ok' && D.?name.hasValue()",
    "object.?metadata.?labels.?tier.orValue('') != 'db'",
    // Metadata.
    "has(object.metadata.labels) && 'team' in object.metadata.labels",
    "object.metadata.name.size() < 12",
];

/// Expressions on a Pod.
const POD_POOL: &[&str] = &[
    "object.spec.containers.all(c, c.image.contains('/'))",
    "object.spec.containers.all(c, !c.image.endsWith(':latest'))",
    "object.spec.containers.map(c, c.name).exists(n, n == 'app')",
    "object.spec.containers.size() <= 1",
    "object.spec.containers.all(c, !has(c.resources.limits) || quantity(c.resources.limits.memory).isLessThan(quantity('1Gi')))",
    "object.spec.containers.exists_one(c, c.name.startsWith('side'))",
    "has(object.metadata.labels) && object.metadata.labels.team.matches('^[a-z]+$')",
    "object.spec.containers.all(c, c.image.split(':').size() == 2)",
];

const NAMES: &[&str] = &[
    "web", "web-1", "Web", "a-b-c-d", "x9", "db", "server", "abc",
];
const IMAGES: &[&str] = &[
    "registry.acme.io/app:1.2",
    "docker.io/library/nginx:latest",
    "registry.acme.io/x",
    "ghcr.io/y:2",
];
const LISTS: &[&str] = &["a,b", "a,b,c", "b,a", "a", "x,y,a", "aaaaaa,b", "c,d"];
const URLS: &[&str] = &[
    "https://api.acme.io:8443/v1?x=1",
    "http://example.com/",
    "/absolute/path",
    "https://host.acme.io",
    "not a url",
    "ftp://files.acme.io:8080/v1/a",
];
const CPUS: &[&str] = &["100m", "1", "2", "1.5", "250m", "3", "0.5"];
const MEMORIES: &[&str] = &["128Mi", "1Gi", "2Gi", "512Mi", "1G", "300M", "1.5Gi"];
const IPS: &[&str] = &[
    "10.1.2.3",
    "192.168.0.1",
    "127.0.0.1",
    "::1",
    "2001:db8::1",
    "2001:DB8::1",
    "1.2.3",
    "169.254.1.1",
];
const CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "192.168.1.0/24",
    "10.1.2.3/16",
    "2001:db8::/32",
    "10.2.0.0/16",
    "bad",
];

/// Which kind of object a generated policy applies to.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    ConfigMap,
    Pod,
}

/// A generated policy, as the documents that create it.
struct Case {
    name: String,
    target: Target,
    policy: Value,
    binding: Value,
}

/// The name an object must not have in any policy: the API server denies
/// it once the policy and its binding are in force.
const CANARY: &str = "canary";

fn generate_case(rng: &mut Rng, index: usize, prefix: &str, namespace: &str) -> Case {
    let target = if rng.chance(25) {
        Target::Pod
    } else {
        Target::ConfigMap
    };
    let pool = match target {
        Target::ConfigMap => CONFIG_MAP_POOL,
        Target::Pod => POD_POOL,
    };
    let through_variable = target == Target::ConfigMap && rng.chance(30);
    let data = if through_variable {
        "variables.d"
    } else {
        "object.data"
    };
    let count = 1 + rng.below(2);
    let mut validations: Vec<Value> = (0..count)
        .map(|_| {
            let expression = rng.pick(pool).replace("D.", &format!("{data}."));
            if rng.chance(30) {
                json!({"expression": expression, "messageExpression": "'failed: ' + object.metadata.name"})
            } else {
                json!({"expression": expression, "message": "generated rule"})
            }
        })
        .collect();
    validations.push(json!({"expression": format!("object.metadata.name != '{CANARY}'")}));
    let resource = match target {
        Target::ConfigMap => "configmaps",
        Target::Pod => "pods",
    };
    let mut spec = json!({
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": [{
            "apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
            "resources": [resource],
        }]},
        "validations": validations,
    });
    if through_variable {
        spec["variables"] = json!([{"name": "d", "expression": "object.data"}]);
    }
    if rng.chance(30) {
        spec["matchConditions"] = json!([{
            "name": "not-skipped",
            "expression": "!has(object.metadata.labels) || !('skip' in object.metadata.labels)",
        }]);
    }
    let name = format!("{prefix}-{index}");
    Case {
        policy: json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": spec,
        }),
        binding: json!({
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": namespace,
                }}},
            },
        }),
        name,
        target,
    }
}

fn labels(rng: &mut Rng) -> Value {
    let mut labels = serde_json::Map::new();
    if rng.chance(50) {
        labels.insert(
            "team".into(),
            json!(rng.pick(&["payments", "Ops", "infra"])),
        );
    }
    if rng.chance(20) {
        labels.insert("tier".into(), json!(rng.pick(&["db", "web"])));
    }
    if rng.chance(15) {
        labels.insert("skip".into(), json!("yes"));
    }
    Value::Object(labels)
}

fn generate_object(rng: &mut Rng, target: Target, name: &str, namespace: &str) -> Value {
    let metadata = json!({"name": name, "namespace": namespace, "labels": labels(rng)});
    match target {
        Target::ConfigMap => {
            let mut data = serde_json::Map::new();
            for (key, pool) in [
                ("name", NAMES),
                ("image", IMAGES),
                ("list", LISTS),
                ("url", URLS),
                ("cpu", CPUS),
                ("memory", MEMORIES),
                ("ip", IPS),
                ("cidr", CIDRS),
            ] {
                if rng.chance(92) {
                    data.insert(key.into(), json!(rng.pick(pool)));
                }
            }
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data})
        }
        Target::Pod => {
            let containers: Vec<Value> = (0..1 + rng.below(3))
                .map(|i| {
                    let mut container = json!({
                        "name": format!("{}{i}", rng.pick(&["app", "side", "web"])),
                        "image": rng.pick(&["registry.acme.io/app:1.2", "nginx:latest", "busybox", "ghcr.io/x/y:2"]),
                    });
                    if rng.chance(50) {
                        container["resources"] = json!({"limits": {"memory": rng.pick(MEMORIES)}});
                    }
                    container
                })
                .collect();
            // Unique container names, as the API server requires.
            let containers: Vec<Value> = containers
                .into_iter()
                .enumerate()
                .map(|(i, mut c)| {
                    if i == 0 && rng.chance(40) {
                        c["name"] = json!("app");
                    }
                    c
                })
                .collect();
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": {"containers": containers}})
        }
    }
}

fn decode(value: &Value) -> Resource {
    let api_version = value["apiVersion"].as_str().unwrap_or("v1");
    let kind = value["kind"].as_str().unwrap_or_default();
    Resource::decode(api_version, kind, value.clone())
        .unwrap_or_else(|e| panic!("generated {kind} decodes: {e:?}\n{value}"))
        .unwrap_or_else(|| panic!("{kind} is read"))
}

/// Palisade's verdict: does any binding with `Deny` reject the object?
fn palisade_denies(case: &Case, namespace: &Value, object: &Value) -> (bool, Vec<String>) {
    let resources = [
        decode(&case.policy),
        decode(&case.binding),
        decode(namespace),
        decode(object),
    ];
    let inventory = Inventory::from_resources(resources.iter());
    let policy = Policy::default().with_admission_policies(&inventory);
    let check = format!("vap/{}", case.name);
    let found: Vec<_> = evaluate(&inventory, &[], &policy)
        .into_iter()
        .filter(|f| f.check.id == check && f.severity == Severity::High)
        .map(|f| f.message)
        .collect();
    (!found.is_empty(), found)
}

enum Admission {
    Allowed,
    Denied(String),
    /// Rejected before the policies ran (not a usable case).
    Invalid(String),
}

async fn admission(client: &Client, object: &Value) -> Admission {
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or_default();
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let result = match object["kind"].as_str() {
        Some("Pod") => {
            let pod: Pod = serde_json::from_value(object.clone()).expect("a Pod");
            Api::<Pod>::namespaced(client.clone(), namespace)
                .create(&params, &pod)
                .await
                .map(|_| ())
        }
        _ => {
            let cm: ConfigMap = serde_json::from_value(object.clone()).expect("a ConfigMap");
            Api::<ConfigMap>::namespaced(client.clone(), namespace)
                .create(&params, &cm)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => Admission::Allowed,
        Err(kube::Error::Api(status)) if status.message.contains("ValidatingAdmissionPolicy") => {
            Admission::Denied(status.message)
        }
        Err(kube::Error::Api(status)) => Admission::Invalid(status.message),
        Err(e) => panic!("unexpected answer from the API server: {e}"),
    }
}

/// Deletes the generated policies and bindings when the test ends.
struct Cleanup(Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = common::kubectl_output(&[
                "delete",
                "validatingadmissionpolicybinding,validatingadmissionpolicy",
                name,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}

fn seed() -> u64 {
    std::env::var("PALISADE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

#[tokio::test]
async fn admission_policy_audit_agrees_with_admission() {
    let seed = seed();
    eprintln!("VAP differential: seed {seed} (set PALISADE_TEST_SEED to repeat)");
    let client = client().await;
    let mut rng = Rng::new(seed);
    let prefix = format!("e2e-vap-{}", std::process::id() % 100_000);
    let policies: Api<ValidatingAdmissionPolicy> = Api::all(client.clone());
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    let mut namespaces = Vec::new();
    let mut cases = Vec::new();
    let mut cleanup = Cleanup(Vec::new());
    for index in 0..POLICIES {
        let ns = TestNamespace::create(&client, &format!("vap-{index}")).await;
        let case = generate_case(&mut rng, index, &prefix, &ns.name);
        let policy: ValidatingAdmissionPolicy =
            serde_json::from_value(case.policy.clone()).expect("a policy");
        policies
            .create(&PostParams::default(), &policy)
            .await
            .unwrap_or_else(|e| panic!("policy {} is refused: {e}\n{}", case.name, case.policy));
        cleanup.0.push(case.name.clone());
        let binding: ValidatingAdmissionPolicyBinding =
            serde_json::from_value(case.binding.clone()).expect("a binding");
        bindings
            .create(&PostParams::default(), &binding)
            .await
            .unwrap_or_else(|e| panic!("binding {} is refused: {e}", case.name));
        namespaces.push(ns);
        cases.push(case);
    }

    // Wait until every policy is in force: its canary object is denied.
    for (case, ns) in cases.iter().zip(&namespaces) {
        let mut canary_rng = Rng::new(1);
        let mut canary = generate_object(&mut canary_rng, case.target, CANARY, &ns.name);
        // No label, so that no match condition skips it.
        canary["metadata"]["labels"] = json!({});
        common::wait_for(
            &format!("policy {} in force", case.name),
            Duration::from_secs(60),
            || {
                let client = client.clone();
                let canary = canary.clone();
                async move {
                    match admission(&client, &canary).await {
                        Admission::Denied(_) => Some(()),
                        _ => {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            None
                        }
                    }
                }
            },
        )
        .await;
    }

    let (mut objects, mut verdicts, mut denials, mut invalid) = (0, 0, 0, 0);
    let mut disagreements = Vec::new();
    for (case, ns) in cases.iter().zip(&namespaces) {
        let namespace: Namespace = Api::<Namespace>::all(client.clone())
            .get(&ns.name)
            .await
            .expect("test namespace");
        let mut namespace = serde_json::to_value(namespace).expect("namespace serializes");
        namespace["apiVersion"] = json!("v1");
        namespace["kind"] = json!("Namespace");
        for i in 0..OBJECTS_PER_POLICY {
            let object = generate_object(&mut rng, case.target, &format!("obj-{i}"), &ns.name);
            objects += 1;
            let reference = match admission(&client, &object).await {
                Admission::Invalid(message) => {
                    invalid += 1;
                    eprintln!("skipped, invalid: {message}");
                    continue;
                }
                Admission::Allowed => (false, String::new()),
                Admission::Denied(message) => {
                    denials += 1;
                    (true, message)
                }
            };
            verdicts += 1;
            let (palisade, found) = palisade_denies(case, &namespace, &object);
            if palisade != reference.0 {
                disagreements.push(format!(
                    "policy {} on object {i}: admission {} ({}), Palisade {} {found:?}\npolicy: {}\nobject: {}",
                    case.name,
                    if reference.0 { "denies" } else { "allows" },
                    reference.1,
                    if palisade { "denies" } else { "allows" },
                    case.policy["spec"],
                    object,
                ));
            }
        }
    }
    eprintln!(
        "VAP differential: seed {seed}, {} policies, {objects} objects, {verdicts} verdicts compared, \
         {denials} denials, {invalid} invalid objects skipped",
        cases.len()
    );
    assert!(
        verdicts >= POLICIES * OBJECTS_PER_POLICY * 9 / 10,
        "too few usable objects: {verdicts} (seed {seed})"
    );
    assert!(
        denials > 0 && denials < verdicts,
        "every verdict was the same ({denials}/{verdicts}, seed {seed})"
    );
    assert!(
        disagreements.is_empty(),
        "seed {seed}: {} of {verdicts} verdicts differ from admission:\n{}",
        disagreements.len(),
        disagreements.join("\n\n")
    );
    drop(cleanup);
}

// ------------------------------------------------------------ the operator

#[derive(clap::Parser)]
struct OperatorCli {
    #[command(flatten)]
    args: palisade::operator::OperatorArgs,
}

const OPERATOR_TIMEOUT: Duration = Duration::from_secs(90);

/// In the operator: a ScanPolicy's custom check's finding reaches the
/// ScanReport; the cluster's admission policies are audited (read-only
/// watches) with the binding's action as severity; a custom check that does
/// not compile makes the policy `Valid=False`, naming field and position.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_runs_custom_checks_and_audits_admission_policies() {
    use clap::Parser;
    let client = client().await;
    common::install_operator_manifests();
    common::wait_until_allowed(
        common::OPERATOR_ACCOUNT,
        &[
            &["list", "pods", "-A"],
            &["watch", "scanreports.palisade.dev", "-A"],
        ],
    );
    let kubeconfig = common::token_kubeconfig("palisade-system", "palisade");
    let ns = TestNamespace::create(&client, "vap-operator").await;
    let n = ns.name.as_str();
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), n)
        .create(
            &PostParams::default(),
            &common::deployment("app", false, None),
        )
        .await
        .expect("deployment created");
    let policy_name = format!("e2e-{n}");
    let policy: ScanPolicy = serde_json::from_value(json!({
        "metadata": {"name": policy_name},
        "spec": {"customChecks": [{
            "id": "acme/team-label",
            "title": "Every workload names its team",
            "severity": "medium",
            "appliesTo": {"workloads": true},
            "validations": [{
                "expression": "has(object.metadata.labels) && 'team' in object.metadata.labels",
                "messageExpression": "'pod template of ' + object.metadata.name + ' has no team label'",
            }],
        }]},
    }))
    .unwrap();
    let policies: Api<ScanPolicy> = Api::all(client.clone());
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();

    let port = common::free_port();
    let argv = [
        "palisade",
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
        "--namespaces",
        n,
        "--metrics-addr",
        &format!("127.0.0.1:{port}"),
        "--policy-name",
        &policy_name,
        "--resync-interval",
        "1h",
    ];
    let args = OperatorCli::try_parse_from(argv)
        .expect("operator flags")
        .args;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(palisade::operator::run_until(args, async move {
        let _ = stopped.await;
    }));

    let reports: Api<ScanReport> = Api::namespaced(client.clone(), n);
    let finding = common::wait_for(
        "the custom finding in the report",
        OPERATOR_TIMEOUT,
        || async {
            let report = reports.get_opt("deployment-app").await.ok()??;
            report
                .status?
                .findings
                .into_iter()
                .find(|f| f.check == "acme/team-label")
        },
    )
    .await;
    assert_eq!(finding.message, "pod template of app has no team label");

    // An admission policy of the cluster, bound with Warn to this
    // namespace, is audited by the operator as check `vap/<name>`.
    let vap_name = format!("e2e-audit-{n}");
    // Deleted when the test ends, passed or failed.
    let _cleanup = Cleanup(vec![vap_name.clone()]);
    let vap: ValidatingAdmissionPolicy = serde_json::from_value(json!({
        "metadata": {"name": vap_name},
        "spec": {
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                "resources": ["deployments"],
            }]},
            "validations": [{
                "expression": "object.spec.template.spec.containers.all(c, c.image.startsWith('registry.acme.io/'))",
                "message": "an image comes from another registry",
            }],
        },
    }))
    .unwrap();
    Api::<ValidatingAdmissionPolicy>::all(client.clone())
        .create(&PostParams::default(), &vap)
        .await
        .unwrap();
    let binding: ValidatingAdmissionPolicyBinding = serde_json::from_value(json!({
        "metadata": {"name": vap_name},
        "spec": {
            "policyName": vap_name,
            "validationActions": ["Warn"],
            "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": n}}},
        },
    }))
    .unwrap();
    Api::<ValidatingAdmissionPolicyBinding>::all(client.clone())
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let check = format!("vap/{vap_name}");
    let audited = common::wait_for(
        "the admission policy finding in the report",
        OPERATOR_TIMEOUT,
        || async {
            let report = reports.get_opt("deployment-app").await.ok()??;
            report
                .status?
                .findings
                .into_iter()
                .find(|f| f.check == check)
        },
    )
    .await;
    assert_eq!(audited.severity, Severity::Medium);
    assert!(
        audited
            .message
            .starts_with("an image comes from another registry"),
        "{}",
        audited.message
    );

    let broken = json!({"spec": {"customChecks": [{
        "id": "acme/team-label",
        "title": "Every workload names its team",
        "severity": "medium",
        "appliesTo": {"workloads": true},
        "validations": [{"expression": "object.metadata.labels.team ==="}],
    }]}});
    policies
        .patch(
            &policy_name,
            &PatchParams::default(),
            &Patch::Merge(&broken),
        )
        .await
        .unwrap();
    let message = common::wait_for(
        "Valid=False on the ScanPolicy",
        OPERATOR_TIMEOUT,
        || async {
            let status = policies.get(&policy_name).await.ok()?.status?;
            status
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Valid" && c.status == "False")
                .map(|c| c.message)
        },
    )
    .await;
    assert!(
        message.contains("spec.customChecks[0].validations[0].expression")
            && message.contains("line 1, column"),
        "{message}"
    );

    let _ = stop.send(());
    tokio::time::timeout(OPERATOR_TIMEOUT, task)
        .await
        .expect("operator stops in time")
        .expect("operator task")
        .expect("operator ends without error");
    policies
        .delete(&policy_name, &DeleteParams::default())
        .await
        .unwrap();
}
