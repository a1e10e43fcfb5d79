//! `palisade scan` keeps each workload as facts once its own checks ran
//! (`cli::stream`); holding every object whole must give the same scan.
//! Compared on every manifest the project has at hand: its fixtures and
//! examples, the public conformance fixtures of other projects, and
//! generated corpora of several seeds.

use std::path::{Path, PathBuf};
use std::process::Command;

use palisade::checks::catalog;
use palisade::cli::scan::{Scanned, load_streaming_into, load_whole};
use palisade::engine::Context;
use palisade::engine::Finding;
use palisade::engine::spool::{FindingSpool, Reported};
use palisade::loader::{Input, read_policy};
use palisade::model::{KindTable, KubernetesVersion};
use palisade::policy::Policy;
use palisade::posture::all_namespaces;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.yaml`, `.yml` and `.json` file under `dir`, sorted.
fn manifests_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(manifests_under(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// A streamed scan of `path`, every ServiceAccount, role and binding held
/// on disk until its own checks run.
fn streamed_all_held(path: PathBuf, policy: &Policy) -> Scanned {
    let inputs = [Input::Path(path)];
    load_streaming_into(
        FindingSpool::new(),
        0,
        &inputs,
        policy,
        &KindTable::default(),
        None,
    )
    .expect("a scan without admission policies streams")
}

/// The findings a streamed scan spooled, read back.
fn spooled_findings(scanned: &Scanned) -> Vec<Finding> {
    (scanned.spooled.as_ref().expect("spooled").findings.iter())
        .map(|r| r.expect("read back").finding)
        .collect()
}

/// Scans `paths` both ways and asserts the same result; returns how many
/// workloads the streaming scan kept as facts (0 when it fell back to
/// whole objects).
fn assert_same_scan(
    paths: &[PathBuf],
    policy: &Policy,
    version: Option<KubernetesVersion>,
) -> usize {
    assert_same_scan_spooled(paths, policy, version, FindingSpool::new()).0
}

/// [`assert_same_scan`], the streaming scan's findings going to `spool`;
/// also returns how many runs the spool wrote.
fn assert_same_scan_spooled(
    paths: &[PathBuf],
    policy: &Policy,
    version: Option<KubernetesVersion>,
    spool: FindingSpool,
) -> (usize, usize) {
    let inputs: Vec<Input> = paths.iter().cloned().map(Input::Path).collect();
    let kinds = KindTable::default();
    let whole = load_whole(&inputs, policy, &kinds, version);
    // Every ServiceAccount, role and binding held on disk until its own
    // checks run.
    let Some(streamed) = load_streaming_into(spool, 0, &inputs, policy, &kinds, version) else {
        return (0, 0);
    };
    let what = format!("{paths:?} (version {version:?})");
    // The first few kept in memory, the rest on disk; and all in memory.
    for hold_from in [7, usize::MAX] {
        let mixed = load_streaming_into(
            FindingSpool::new(),
            hold_from,
            &inputs,
            policy,
            &kinds,
            version,
        )
        .expect("streams as before");
        assert_eq!(
            render(&spooled_findings(&mixed)),
            render(&whole.findings),
            "findings of {what}, the first {hold_from} held in memory"
        );
        assert_eq!(posture(&mixed, policy), posture_whole(&whole, policy));
    }
    let spooled = streamed
        .spooled
        .as_ref()
        .expect("a streamed scan spools its findings");
    let read_back: Vec<Reported> = (spooled.findings.iter())
        .collect::<std::io::Result<_>>()
        .expect("reading the spooled findings back");
    let findings: Vec<Finding> = read_back.iter().map(|r| r.finding.clone()).collect();
    assert!(
        streamed.findings.is_empty(),
        "findings of {what} held in memory"
    );
    assert_eq!(
        render(&findings),
        render(&whole.findings),
        "findings of {what}"
    );
    for reported in &read_back {
        assert_eq!(
            reported.source,
            whole.sources.locate(&reported.finding.object),
            "source of {} in {what}",
            reported.finding.object
        );
    }
    assert_eq!(streamed.summary, whole.summary, "summary of {what}");
    assert_eq!(
        messages(&streamed.errors),
        messages(&whole.errors),
        "errors of {what}"
    );
    assert_eq!(
        messages(&streamed.warnings),
        messages(&whole.warnings),
        "warnings of {what}"
    );
    assert_eq!(posture(&streamed, policy), posture_whole(&whole, policy));
    for finding in &whole.findings {
        assert_eq!(
            streamed.sources.locate(&finding.object),
            whole.sources.locate(&finding.object),
            "source of {} in {what}",
            finding.object
        );
    }
    (streamed.inventory.facts.len(), spooled.findings.spills())
}

fn render(findings: &[palisade::engine::Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {:?} {} {} {:?} {:?}",
                f.object, f.check.id, f.severity, f.path, f.message, f.container, f.suppressed
            )
        })
        .collect()
}

fn messages(errors: &[palisade::loader::LoadError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

fn posture(
    scanned: &Scanned,
    policy: &Policy,
) -> Vec<(String, palisade::crd::cluster_scan_report::NamespacePosture)> {
    scanned.posture(policy)
}

fn posture_whole(
    scanned: &Scanned,
    policy: &Policy,
) -> Vec<(String, palisade::crd::cluster_scan_report::NamespacePosture)> {
    all_namespaces(
        &Context::new(&scanned.inventory),
        &scanned.findings,
        catalog(),
        policy,
    )
}

#[test]
fn every_fixture_and_example_scans_the_same_held_whole() {
    let policy = Policy::default();
    let mut files = manifests_under(&root().join("tests/fixtures"));
    files.extend(manifests_under(&root().join("examples")));
    files.extend(manifests_under(&root().join("manifests")));
    let mut streamed = 0;
    for file in &files {
        for version in [None, Some(KubernetesVersion::new(1, 15))] {
            streamed += assert_same_scan(std::slice::from_ref(file), &policy, version);
        }
    }
    // Each directory as one input, so that checks across files meet.
    streamed += assert_same_scan(&files, &policy, None);
    assert!(
        streamed > 20,
        "only {streamed} workloads were kept as facts"
    );
}

#[test]
fn a_policy_with_exceptions_and_overrides_scans_the_same() {
    let spec = read_policy(&root().join("tests/fixtures/scan/policy.yaml")).expect("policy");
    let policy = Policy::from_spec(&spec, catalog(), None).expect("policy");
    let files = manifests_under(&root().join("tests/fixtures/scan"));
    let streamed: usize = (files.iter())
        .map(|file| assert_same_scan(std::slice::from_ref(file), &policy, None))
        .sum();
    assert!(
        streamed > 10,
        "only {streamed} workloads were kept as facts"
    );
}

#[test]
fn the_conformance_fixtures_scan_the_same_held_whole() {
    let shared = root().join("../shared/conformance");
    let policy = Policy::default();
    let mut streamed = 0;
    for set in ["pss", "polaris"] {
        let files = manifests_under(&shared.join(set));
        assert!(
            !files.is_empty(),
            "no fixtures under {}",
            shared.join(set).display()
        );
        // One file at a time: the fixtures reuse object names.
        for file in &files {
            streamed += assert_same_scan(std::slice::from_ref(file), &policy, None);
        }
    }
    assert!(
        streamed > 100,
        "only {streamed} workloads were kept as facts"
    );
}

/// The scale benchmark's generator: namespaces, network policies, RBAC,
/// service accounts and every workload kind, mixed; also as a dump of a
/// cluster.
#[test]
fn generated_corpora_scan_the_same_held_whole() {
    let policy = Policy::default();
    let work = tempfile::tempdir().expect("temp dir");
    // The last two as a dump of a cluster shows them (`managedFields`,
    // `last-applied-configuration`), which objects kept whole drop.
    for (seed, as_dump) in [(1, false), (7, false), (42, true), (1234, true)] {
        let dir = work.path().join(format!("corpus-{seed}"));
        let mut generate = Command::new("python3");
        generate
            .arg(root().join("bench/gen.py"))
            .args(["--seed", &seed.to_string(), "600"])
            .arg(&dir);
        if as_dump {
            generate.arg("--as-dump");
        }
        let status = generate.status().expect("python3 runs bench/gen.py");
        assert!(status.success(), "bench/gen.py failed for seed {seed}");
        let files = manifests_under(&dir);
        // A budget this small writes dozens of runs and merges them.
        let spool = FindingSpool::with_budget(16 * 1024);
        let (streamed, spills) = assert_same_scan_spooled(&files, &policy, None, spool);
        assert!(
            spills > 10,
            "seed {seed}: the spool wrote only {spills} runs"
        );
        assert!(
            streamed > 100,
            "seed {seed}: only {streamed} workloads kept as facts"
        );
    }
}

/// ConfigMaps are checked as they are read and not kept: their findings,
/// suppressions (by annotation and by an exception's label selector) and
/// the namespace's pass rates must come out as when they are held.
#[test]
fn config_maps_checked_as_they_are_read_scan_the_same() {
    let work = tempfile::tempdir().expect("temp dir");
    let manifests = work.path().join("shop.yaml");
    std::fs::write(
        &manifests,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain, namespace: shop}\n\
         data: {LOG_FORMAT: json}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: creds, namespace: shop}\n\
         data: {DB_PASSWORD: hunter2hunter2, API_TOKEN: abcdefabcdef}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: accepted\n  namespace: shop\n\
         \x20 annotations: {palisade.dev/ignore: secret-in-config-map, palisade.dev/reason: test data}\n\
         data: {DB_PASSWORD: hunter2hunter2}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: legacy\n  namespace: shop\n\
         \x20 labels: {tier: legacy}\ndata: {DB_PASSWORD: hunter2hunter2}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: elsewhere, namespace: other}\n\
         data: {SECRET_KEY: abcdefabcdef}\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: shop}\n\
         spec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n\
         \x20   spec: {containers: [{name: app, image: nginx:1.27}]}\n",
    )
    .expect("write manifests");
    let policy_file = work.path().join("policy.yaml");
    std::fs::write(
        &policy_file,
        "apiVersion: palisade.dev/v1alpha1\nkind: ScanPolicy\nmetadata: {name: default}\n\
         spec:\n  exceptions:\n  - name: legacy-config\n    checks: [secret-in-config-map]\n\
         \x20   selector: {matchLabels: {tier: legacy}}\n    reason: moving to a Secret\n",
    )
    .expect("write policy");
    let spec = read_policy(&policy_file).expect("policy");
    let policy = Policy::from_spec(&spec, catalog(), None).expect("policy");
    let streamed = assert_same_scan(std::slice::from_ref(&manifests), &policy, None);
    assert_eq!(streamed, 1, "the Deployment is kept as facts");

    let scanned = streamed_all_held(manifests, &policy);
    assert!(
        scanned.inventory.config_maps.is_empty(),
        "ConfigMaps are not kept"
    );
    let found: Vec<(String, bool)> = (spooled_findings(&scanned).into_iter())
        .filter(|f| f.check.id == "secret-in-config-map")
        .map(|f| (f.object.name.clone(), f.is_suppressed()))
        .collect();
    let name_of = |name: &str, suppressed: bool| (name.to_owned(), suppressed);
    for expected in [
        name_of("accepted", true),
        name_of("creds", false),
        name_of("elsewhere", false),
        name_of("legacy", true),
    ] {
        assert!(found.contains(&expected), "{expected:?} not in {found:?}");
    }
    assert!(!found.iter().any(|(name, _)| name == "plain"), "{found:?}");
}

/// ServiceAccounts wait on disk for their own checks; the workloads' checks
/// read what was kept of them: `automountServiceAccountToken`, and labels a
/// Calico `serviceAccountSelector` matches.
#[test]
fn accounts_held_on_disk_are_read_by_the_workloads_checks() {
    let work = tempfile::tempdir().expect("temp dir");
    let manifests = work.path().join("shop.yaml");
    let deployment = |name: &str, account: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: shop}}\n\
             spec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n\
             \x20   metadata: {{labels: {{app: {name}}}}}\n\
             \x20   spec: {{serviceAccountName: {account}, containers: [{{name: app, image: nginx:1.27}}]}}\n"
        )
    };
    let text = [
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n".to_owned(),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: front, namespace: shop, \
         labels: {role: frontend}}\nautomountServiceAccountToken: false\n"
            .to_owned(),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: back, namespace: shop}\n".to_owned(),
        "apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\n\
         metadata: {name: frontends, namespace: shop}\n\
         spec: {selector: all(), serviceAccountSelector: \"role == 'frontend'\", types: [Ingress, Egress]}\n"
            .to_owned(),
        deployment("web", "front"),
        deployment("worker", "back"),
    ]
    .join("---\n");
    std::fs::write(&manifests, text).expect("write manifests");
    let policy = Policy::default();
    assert_eq!(
        assert_same_scan(std::slice::from_ref(&manifests), &policy, None),
        2
    );

    let scanned = streamed_all_held(manifests, &policy);
    assert!(scanned.inventory.service_accounts.is_empty());
    assert_eq!(scanned.inventory.account_facts.len(), 2);
    let found: Vec<(String, String)> = (spooled_findings(&scanned).into_iter())
        .map(|f| (f.object.name.clone(), f.check.id.to_owned()))
        .collect();
    let has = |name: &str, check: &str| found.contains(&(name.to_owned(), check.to_owned()));
    // The account's labels select `web` into the Calico policy; `worker`'s
    // account has none.
    assert!(!has("web", "missing-network-policy"), "{found:?}");
    assert!(has("worker", "missing-network-policy"), "{found:?}");
    // `front` does not mount its token; `back` does.
    assert!(!has("web", "service-account-token-automount"), "{found:?}");
    assert!(
        has("worker", "service-account-token-automount"),
        "{found:?}"
    );
}

/// A dump of a cluster carries `managedFields` and
/// `last-applied-configuration` on every object. Objects kept whole for the
/// checks across objects keep neither, and scan as when everything is held;
/// Palisade's own annotations still suppress.
#[test]
fn a_cluster_dump_scans_the_same_without_what_nothing_reads() {
    let meta = |kind: &str, name: &str, extra: &str| {
        format!(
            "metadata:\n  name: {name}\n  namespace: shop\n  annotations:\n    \
             kubectl.kubernetes.io/last-applied-configuration: '{{\"kind\":\"{kind}\"}}'\n{extra}  \
             managedFields:\n  - manager: kubectl\n    operation: Apply\n    apiVersion: v1\n    \
             fieldsType: FieldsV1\n    fieldsV1: {{f:metadata: {{f:name: {{}}}}}}\n"
        )
    };
    let ignore =
        "    palisade.dev/ignore: rbac-wildcard-everything\n    palisade.dev/ignore-reason: lab\n";
    let yaml = [
        format!("apiVersion: v1\nkind: Namespace\n{}", meta("Namespace", "shop", "").replace("  namespace: shop\n", "")),
        format!("apiVersion: v1\nkind: ServiceAccount\n{}", meta("ServiceAccount", "runner", "")),
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n{}rules:\n- {{apiGroups: ['*'], resources: ['*'], verbs: ['*']}}\n",
            meta("Role", "everything", "")
        ),
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n{}rules:\n- {{apiGroups: ['*'], resources: ['*'], verbs: ['*']}}\n",
            meta("Role", "accepted", ignore)
        ),
        format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\n{}roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: everything}}\n\
             subjects: [{{kind: ServiceAccount, name: runner, namespace: shop}}]\n",
            meta("RoleBinding", "runner", "")
        ),
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n{}spec: {{podSelector: {{}}, policyTypes: [Ingress]}}\n",
            meta("NetworkPolicy", "deny", "")
        ),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\n{}spec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    \
             metadata: {{labels: {{app: web}}}}\n    spec: {{serviceAccountName: runner, containers: [{{name: app, image: nginx:1.27}}]}}\n",
            meta("Deployment", "web", "")
        ),
    ]
    .join("---\n");
    let work = tempfile::tempdir().expect("temp dir");
    let dump = work.path().join("dump.yaml");
    std::fs::write(&dump, yaml).expect("write dump");
    let policy = Policy::default();
    assert_eq!(
        assert_same_scan(std::slice::from_ref(&dump), &policy, None),
        1
    );

    let scanned = streamed_all_held(dump, &policy);
    let inventory = &scanned.inventory;
    // Accounts, roles and bindings wait on disk, not in the inventory, for
    // their own checks (the findings below show a role's annotations were
    // kept).
    assert!(inventory.roles.is_empty() && inventory.role_bindings.is_empty());
    assert!(inventory.service_accounts.is_empty());
    assert_eq!(inventory.account_facts.len(), 1);
    // The NetworkPolicy is kept only as what the checks read of it.
    assert!(inventory.network_policies.is_empty());
    assert_eq!(inventory.network_policy_facts.len(), 1);
    let metas = inventory.namespaces.values().map(|o| &o.metadata);
    let mut kept = 0;
    for meta in metas {
        kept += 1;
        assert_eq!(meta.managed_fields, None, "{:?}", meta.name);
        let keys: Vec<&String> = meta.annotations.iter().flatten().map(|(k, _)| k).collect();
        assert!(
            keys.iter().all(|k| k.starts_with("palisade.dev/")),
            "{keys:?}"
        );
    }
    assert_eq!(kept, 1);
    let suppressed: Vec<(String, bool)> = (spooled_findings(&scanned).into_iter())
        .filter(|f| f.object.kind == "Role")
        .map(|f| (f.object.name.clone(), f.is_suppressed()))
        .collect();
    assert!(
        suppressed.contains(&("accepted".to_owned(), true)),
        "{suppressed:?}"
    );
    assert!(
        suppressed.contains(&("everything".to_owned(), false)),
        "{suppressed:?}"
    );
}

/// NetworkPolicies stay in memory to the end of a streamed scan as only
/// what the checks read of them, and Namespaces without their `status` and
/// the metadata of a dump. Every shape of policy isolates the same pods in
/// the same directions as when every object is held whole.
#[test]
fn network_policies_kept_as_facts_isolate_the_same_pods() {
    // One namespace per shape: its policy, then a Deployment it may select.
    let shapes = [
        (
            "both-types",
            "{podSelector: {}, policyTypes: [Ingress, Egress]}",
        ),
        (
            "ingress-rules",
            "{podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}",
        ),
        (
            "egress-rules",
            "{podSelector: {}, egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8}}]}]}",
        ),
        ("egress-empty", "{podSelector: {}, egress: []}"),
        (
            "egress-only",
            "{podSelector: {}, policyTypes: [Egress], ingress: [{}]}",
        ),
        (
            "other-pods",
            "{podSelector: {matchLabels: {app: db}}, policyTypes: [Ingress, Egress]}",
        ),
        ("no-spec", ""),
    ];
    let mut yaml = String::new();
    for (namespace, spec) in shapes {
        let spec = if spec.is_empty() {
            String::new()
        } else {
            format!("spec: {spec}\n")
        };
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {namespace}, uid: u-{namespace}, resourceVersion: \"7\"}}\n\
             status: {{phase: Active}}\n---\n\
             apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n\
             metadata: {{name: policy, namespace: {namespace}, labels: {{team: a}}}}\n{spec}---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {namespace}}}\n\
             spec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    \
             metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: app, image: nginx:1.27}}]}}\n---\n"
        ));
    }
    let work = tempfile::tempdir().expect("temp dir");
    let path = work.path().join("policies.yaml");
    std::fs::write(&path, yaml).expect("write policies");
    let policy = Policy::default();
    assert_eq!(
        assert_same_scan(std::slice::from_ref(&path), &policy, None),
        shapes.len()
    );

    let scanned = streamed_all_held(path, &policy);
    let inventory = &scanned.inventory;
    assert!(inventory.network_policies.is_empty());
    assert_eq!(inventory.network_policy_facts.len(), shapes.len());
    for namespace in inventory.namespaces.values() {
        let meta = &namespace.metadata;
        assert!(meta.uid.as_ref().is_some_and(|uid| uid.starts_with("u-")));
        assert_eq!((&meta.resource_version, &namespace.status), (&None, &None));
    }
    // What each Deployment is told: the directions its namespace's policy
    // isolates, so the thin policies were read as the whole ones.
    let mut told: Vec<(String, String)> = (spooled_findings(&scanned).into_iter())
        .filter(|f| f.check.id == "missing-network-policy")
        .map(|f| {
            let open = if f.message.contains("all ingress and egress traffic") {
                "ingress+egress"
            } else if f.message.contains("restricts ingress") {
                "ingress"
            } else {
                "egress"
            };
            (
                f.object.namespace.clone().unwrap_or_default(),
                open.to_owned(),
            )
        })
        .collect();
    told.sort();
    let expected = [
        ("egress-empty", "egress"),
        ("egress-only", "ingress"),
        ("ingress-rules", "egress"),
        ("no-spec", "egress"),
        ("other-pods", "ingress+egress"),
    ];
    let expected: Vec<(String, String)> = (expected.iter())
        .map(|(n, o)| (n.to_string(), o.to_string()))
        .collect();
    assert_eq!(told, expected);
}
