//! The Pod Security Standards checks against the reference implementation:
//! the API server's PodSecurity admission. Generated pods are created with a
//! server-side dry run in namespaces that enforce `baseline` and `restricted`;
//! Palisade's verdict at each level must be the admission's verdict.

mod common;

use common::{Rng, TestNamespace, client};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use palisade::engine::{Category, evaluate};
use palisade::model::{Inventory, Resource};
use palisade::policy::Policy;
use serde_json::{Value, json};

const PODS: usize = 400;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Level {
    Baseline,
    Restricted,
}

/// Palisade's verdict: does the pod pass every PSS check of `level`?
fn palisade_allows(pod: &Value, level: Level) -> (bool, Vec<&'static str>) {
    let resource = Resource::decode("v1", "Pod", pod.clone())
        .expect("generated pod decodes")
        .expect("pods are scanned");
    let inventory = Inventory::from_resources([&resource]);
    let checks: Vec<_> = palisade::checks::catalog()
        .iter()
        .copied()
        .filter(|c| match level {
            Level::Baseline => c.category == Category::PodSecurityBaseline,
            Level::Restricted => {
                matches!(
                    c.category,
                    Category::PodSecurityBaseline | Category::PodSecurityRestricted
                )
            }
        })
        .collect();
    assert!(!checks.is_empty(), "the catalog has PSS checks");
    let findings = evaluate(&inventory, &checks, &Policy::default());
    let mut ids: Vec<_> = findings.iter().map(|f| f.check.id).collect();
    ids.dedup();
    (findings.is_empty(), ids)
}

enum Admission {
    Allowed,
    Denied(String),
    /// Rejected by validation before PodSecurity ran: not a usable case.
    Invalid,
}

async fn admission(api: &Api<Pod>, pod: &Value) -> Admission {
    let pod: Pod = serde_json::from_value(pod.clone()).expect("generated pod is a Pod");
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match api.create(&params, &pod).await {
        Ok(_) => Admission::Allowed,
        Err(kube::Error::Api(status))
            if status.code == 403 && status.message.contains("PodSecurity") =>
        {
            Admission::Denied(status.message)
        }
        Err(kube::Error::Api(status)) if status.code == 422 => Admission::Invalid,
        Err(e) => panic!("unexpected answer from the API server: {e}"),
    }
}

fn security_context(rng: &mut Rng) -> Value {
    let mut sc = serde_json::Map::new();
    if rng.chance(15) {
        sc.insert("privileged".into(), json!(rng.chance(50)));
    }
    if rng.chance(60) {
        sc.insert("allowPrivilegeEscalation".into(), json!(rng.chance(25)));
    }
    if rng.chance(50) {
        sc.insert("runAsNonRoot".into(), json!(rng.chance(80)));
    }
    if rng.chance(30) {
        sc.insert("runAsUser".into(), json!(*rng.pick(&[0, 1000, 65534])));
    }
    if rng.chance(60) {
        let mut caps = serde_json::Map::new();
        if rng.chance(70) {
            caps.insert("drop".into(), json!([rng.pick(&["ALL", "NET_RAW", "all"])]));
        }
        if rng.chance(40) {
            let add = rng.pick(&[
                "NET_BIND_SERVICE",
                "CHOWN",
                "SYS_ADMIN",
                "NET_RAW",
                "KILL",
                "SYS_TIME",
            ]);
            caps.insert("add".into(), json!([add]));
        }
        sc.insert("capabilities".into(), Value::Object(caps));
    }
    if rng.chance(50) {
        sc.insert("seccompProfile".into(), seccomp(rng));
    }
    if rng.chance(15) {
        sc.insert(
            "procMount".into(),
            json!(rng.pick(&["Default", "Unmasked"])),
        );
    }
    if rng.chance(20) {
        sc.insert("seLinuxOptions".into(), selinux(rng));
    }
    if rng.chance(20) {
        sc.insert("appArmorProfile".into(), apparmor(rng));
    }
    Value::Object(sc)
}

fn seccomp(rng: &mut Rng) -> Value {
    match rng.below(3) {
        0 => json!({"type": "RuntimeDefault"}),
        1 => json!({"type": "Unconfined"}),
        _ => json!({"type": "Localhost", "localhostProfile": "profiles/audit.json"}),
    }
}

fn selinux(rng: &mut Rng) -> Value {
    match rng.below(4) {
        0 => json!({"type": "container_t"}),
        1 => json!({"type": "spc_t"}),
        2 => json!({"user": "system_u"}),
        _ => json!({"level": "s0:c123,c456"}),
    }
}

fn apparmor(rng: &mut Rng) -> Value {
    match rng.below(3) {
        0 => json!({"type": "RuntimeDefault"}),
        1 => json!({"type": "Unconfined"}),
        _ => json!({"type": "Localhost", "localhostProfile": "k8s-apparmor-example"}),
    }
}

/// A container context that meets the restricted profile.
fn hardened_context() -> Value {
    json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
}

/// Starts from a hardened context and changes one random field, so that
/// near-miss pods (one control away from passing) are well represented.
fn near_miss_context(rng: &mut Rng) -> Value {
    let mut sc = hardened_context();
    if rng.chance(60) {
        let random = security_context(rng);
        if let Some((key, value)) = random.as_object().and_then(|m| m.iter().next()) {
            sc[key] = value.clone();
        }
    }
    sc
}

fn container(rng: &mut Rng, name: &str, ports: bool, hardened: bool) -> Value {
    let mut c = json!({"name": name, "image": "registry.k8s.io/pause:3.10"});
    if hardened {
        c["securityContext"] = near_miss_context(rng);
    } else if rng.chance(80) {
        c["securityContext"] = security_context(rng);
    }
    if ports && rng.chance(20) {
        c["ports"] = json!([{"containerPort": 8080, "hostPort": *rng.pick(&[0, 8080])}]);
    }
    if ports && rng.chance(10) {
        let mut probe = json!({"httpGet": {"port": 8080}});
        if rng.chance(50) {
            probe["httpGet"]["host"] = json!(rng.pick(&["127.0.0.1", "example.com", ""]));
        }
        c["livenessProbe"] = probe;
    }
    c
}

fn volume(rng: &mut Rng, i: usize) -> Value {
    let name = format!("v{i}");
    match rng.below(8) {
        0 => json!({"name": name, "emptyDir": {}}),
        1 => json!({"name": name, "configMap": {"name": "cm"}}),
        2 => json!({"name": name, "secret": {"secretName": "s"}}),
        3 => json!({"name": name, "hostPath": {"path": "/var/log"}}),
        4 => json!({"name": name, "projected": {"sources": [{"configMap": {"name": "cm"}}]}}),
        5 => json!({"name": name, "nfs": {"server": "nfs.example", "path": "/export"}}),
        6 => {
            json!({"name": name, "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}})
        }
        _ => json!({"name": name, "persistentVolumeClaim": {"claimName": "data"}}),
    }
}

fn pod(rng: &mut Rng, index: usize) -> Value {
    let hardened = rng.chance(50);
    let mut spec = json!({"containers": [container(rng, "app", true, hardened)]});
    if rng.chance(30) {
        let sidecar = container(rng, "sidecar", true, hardened);
        spec["containers"].as_array_mut().unwrap().push(sidecar);
    }
    if rng.chance(25) {
        spec["initContainers"] = json!([container(rng, "init", false, hardened)]);
    }
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        if rng.chance(if hardened { 2 } else { 8 }) {
            spec[field] = json!(true);
        }
    }
    if rng.chance(60) {
        let mut psc = security_context(rng);
        // Pod-level contexts have no container-only fields.
        for field in [
            "privileged",
            "allowPrivilegeEscalation",
            "capabilities",
            "procMount",
        ] {
            psc.as_object_mut().unwrap().remove(field);
        }
        if rng.chance(20) {
            let sysctl = rng.pick(&[
                "kernel.shm_rmid_forced",
                "net.ipv4.ip_local_port_range",
                "net.ipv4.tcp_syncookies",
                "net.ipv4.ping_group_range",
                "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_keepalive_time",
                "net.ipv4.tcp_rmem",
                "kernel.msgmax",
                "net.core.somaxconn",
            ]);
            let value = if *sysctl == "net.ipv4.ip_local_port_range"
                || *sysctl == "net.ipv4.ping_group_range"
            {
                "1024 65535"
            } else if *sysctl == "net.ipv4.tcp_rmem" {
                "4096 87380 6291456"
            } else {
                "1"
            };
            psc["sysctls"] = json!([{"name": sysctl, "value": value}]);
        }
        spec["securityContext"] = psc;
    }
    let volume_count = if hardened { rng.below(2) } else { rng.below(3) };
    let volumes: Vec<Value> = (0..volume_count).map(|i| volume(rng, i)).collect();
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("gen-{index}")}, "spec": spec})
}

#[tokio::test]
async fn pss_checks_agree_with_pod_security_admission() {
    let seed = Rng::seed_from_env(0x5EED1);
    let client = client().await;
    let mut levels = Vec::new();
    for (level, name) in [
        (Level::Baseline, "baseline"),
        (Level::Restricted, "restricted"),
    ] {
        let labels = [
            ("pod-security.kubernetes.io/enforce", name),
            ("pod-security.kubernetes.io/enforce-version", "v1.35"),
        ];
        let ns = TestNamespace::create_with_labels(&client, &format!("pss-oracle-{name}"), &labels)
            .await;
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
        levels.push((level, ns, api));
    }

    let mut rng = Rng::new(seed);
    let (mut compared, mut invalid, mut denied) = (0, 0, 0);
    let mut disagreements = Vec::new();
    for index in 0..PODS {
        let pod = pod(&mut rng, index);
        for (level, _ns, api) in &levels {
            let (palisade, ids) = palisade_allows(&pod, *level);
            let reference = match admission(api, &pod).await {
                Admission::Invalid => {
                    invalid += 1;
                    continue;
                }
                Admission::Allowed => (true, String::new()),
                Admission::Denied(message) => {
                    denied += 1;
                    (false, message)
                }
            };
            compared += 1;
            if palisade != reference.0 {
                disagreements.push(format!(
                    "pod #{index} at {level:?}: admission {} ({}), Palisade {} {ids:?}\n{}",
                    if reference.0 { "allows" } else { "denies" },
                    reference.1,
                    if palisade { "allows" } else { "denies" },
                    serde_json::to_string(&pod).unwrap()
                ));
            }
        }
    }
    eprintln!(
        "PSS oracle: seed {seed}, {compared} verdicts compared ({denied} denials), {invalid} invalid pods skipped"
    );
    assert!(
        compared >= PODS,
        "too few usable generated pods: {compared} (seed {seed})"
    );
    assert!(
        denied > compared / 10 && denied < compared * 9 / 10,
        "generator is unbalanced: {denied}/{compared}"
    );
    assert!(
        disagreements.is_empty(),
        "seed {seed}: {} of {compared} verdicts differ from PodSecurity admission:\n{}",
        disagreements.len(),
        disagreements.join("\n\n")
    );
}

/// Every conformance fixture pod gets the same verdict from admission as the
/// fixture set says; a check that the labelled namespaces really enforce.
#[tokio::test]
async fn conformance_fixtures_agree_with_admission() {
    let client = client().await;
    let root = common::repo_root().join("../shared/conformance/pss/v1.35");
    let mut checked = 0;
    for name in ["baseline", "restricted"] {
        let labels = [
            ("pod-security.kubernetes.io/enforce", name),
            ("pod-security.kubernetes.io/enforce-version", "v1.35"),
        ];
        let ns =
            TestNamespace::create_with_labels(&client, &format!("pss-fixtures-{name}"), &labels)
                .await;
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
        for verdict in ["pass", "fail"] {
            let dir = root.join(name).join(verdict);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                let mut pod: Value = serde_norway::from_str(&text).unwrap();
                pod["metadata"]["namespace"] = Value::Null;
                let level = if name == "baseline" {
                    Level::Baseline
                } else {
                    Level::Restricted
                };
                let expected_allowed = verdict == "pass";
                let (palisade, ids) = palisade_allows(&pod, level);
                assert_eq!(
                    palisade,
                    expected_allowed,
                    "{}: Palisade {ids:?}",
                    file.display()
                );
                match admission(&api, &pod).await {
                    Admission::Allowed => assert!(expected_allowed, "{} admitted", file.display()),
                    Admission::Denied(m) => {
                        assert!(!expected_allowed, "{} denied: {m}", file.display())
                    }
                    Admission::Invalid => {}
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 100, "fixtures found: {checked}");
}
