use super::*;
use crate::crd::ScanPolicySpec;
use crate::engine::Finding;
use crate::loader::Loader;
use crate::policy::Policy;

const OBJECTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {team: payments}}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web, team: payments}}
    spec:
      containers:
        - {name: app, image: "registry.acme.io/web:1.2", resources: {requests: {memory: 1Gi}, limits: {memory: 2Gi}}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: report}}
        spec:
          restartPolicy: Never
          containers:
            - {name: job, image: "docker.io/library/busybox:latest", resources: {requests: {memory: 64Mi}, limits: {memory: 1Gi}}}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {owner: acme}}
---
apiVersion: v1
kind: Namespace
metadata: {name: scratch}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: builder, namespace: shop}
"#;

fn findings(policy_yaml: &str) -> Vec<Finding> {
    let spec: ScanPolicySpec = serde_norway::from_str(policy_yaml).expect("policy decodes");
    let policy = Policy::from_spec(&spec, crate::checks::catalog(), None).expect("policy compiles");
    let loaded = Loader::new().load_text("objects.yaml", OBJECTS);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    crate::cli::scan::evaluate(loaded, &policy).findings
}

/// `(kind/name, message)` of the findings of `check`.
fn of_check(findings: &[Finding], check: &str) -> Vec<(String, String)> {
    findings
        .iter()
        .filter(|f| f.check.id == check)
        .map(|f| {
            (
                format!("{}/{}", f.object.kind, f.object.name),
                f.message.clone(),
            )
        })
        .collect()
}

fn compile_error(policy_yaml: &str) -> PolicyError {
    let spec: ScanPolicySpec = serde_norway::from_str(policy_yaml).expect("policy decodes");
    Policy::from_spec(&spec, crate::checks::catalog(), None).expect_err("policy is refused")
}

const TEAM_LABEL: &str = r#"
customChecks:
  - id: acme/team-label
    title: Every workload names its team
    severity: medium
    category: reliability
    frameworks: ["acme:ops-1"]
    appliesTo: {workloads: true}
    validations:
      - expression: "has(object.metadata.labels) && 'team' in object.metadata.labels"
        messageExpression: "'pod template of ' + object.metadata.name + ' has no team label'"
"#;

#[test]
fn a_workload_check_covers_every_workload_kind_through_its_template() {
    let found = findings(TEAM_LABEL);
    assert_eq!(
        of_check(&found, "acme/team-label"),
        [(
            "CronJob/report".to_owned(),
            "pod template of report has no team label".to_owned()
        )]
    );
    let finding = found
        .iter()
        .find(|f| f.check.id == "acme/team-label")
        .unwrap();
    assert_eq!(finding.severity, Severity::Medium);
    assert_eq!(finding.check.category, Category::Reliability);
    assert_eq!(finding.check.frameworks, ["acme:ops-1"]);
}

#[test]
fn overrides_and_exceptions_apply_to_custom_checks() {
    let policy = format!(
        "{TEAM_LABEL}
severityOverrides: [{{check: acme/team-label, severity: critical}}]
"
    );
    let found = findings(&policy);
    let finding = found
        .iter()
        .find(|f| f.check.id == "acme/team-label")
        .unwrap();
    assert_eq!(finding.severity, Severity::Critical);
    assert!(!finding.is_suppressed());

    let policy = format!(
        "{TEAM_LABEL}
exceptions: [{{name: batch, checks: [acme/team-label], names: [report], reason: owned by the platform}}]
"
    );
    let found = findings(&policy);
    let finding = found
        .iter()
        .find(|f| f.check.id == "acme/team-label")
        .unwrap();
    assert!(finding.is_suppressed());
}

#[test]
fn registries_latest_tags_and_resource_ratios() {
    let found = findings(
        r#"
customChecks:
  - id: acme/registry
    title: Images come from the company registry
    severity: high
    appliesTo: {workloads: true}
    variables:
      - {name: images, expression: "object.spec.containers.map(c, c.image)"}
    validations:
      - expression: "variables.images.all(i, i.startsWith('registry.acme.io/'))"
        message: image from another registry
      - expression: "!variables.images.exists(i, i.endsWith(':latest') || !i.contains(':'))"
        message: image uses latest
  - id: acme/memory-ratio
    title: Memory limit at most four times the request
    severity: low
    appliesTo: {workloads: true}
    validations:
      - expression: >-
          object.spec.containers.all(c,
            !has(c.resources.limits) || !has(c.resources.requests) ||
            !quantity(c.resources.limits.memory).isGreaterThan(
              quantity(c.resources.requests.memory).add(quantity(c.resources.requests.memory))
                .add(quantity(c.resources.requests.memory)).add(quantity(c.resources.requests.memory))))
"#,
    );
    assert_eq!(
        of_check(&found, "acme/registry"),
        [
            (
                "CronJob/report".to_owned(),
                "image from another registry".to_owned()
            ),
            ("CronJob/report".to_owned(), "image uses latest".to_owned()),
        ]
    );
    let ratio = of_check(&found, "acme/memory-ratio");
    assert_eq!(ratio.len(), 1, "{ratio:?}");
    assert_eq!(ratio[0].0, "CronJob/report");
    assert!(ratio[0].1.starts_with("failed expression:"), "{ratio:?}");
}

#[test]
fn a_check_by_kind_reads_the_object_and_its_namespace() {
    let found = findings(
        r#"
customChecks:
  - id: acme/namespace-owner
    title: Objects live in a namespace with an owner
    severity: low
    appliesTo: {kinds: [{group: "", kind: ServiceAccount}, {group: apps, kind: Deployment}]}
    matchConditions:
      - {name: not-default, expression: "object.metadata.name != 'default'"}
    validations:
      - expression: "namespaceObject.metadata.labels.owner == params.owner"
        messageExpression: "object.kind + ' in a namespace not owned by ' + params.owner"
    params: {owner: platform}
"#,
    );
    assert_eq!(
        of_check(&found, "acme/namespace-owner"),
        [
            (
                "Deployment/web".to_owned(),
                "Deployment in a namespace not owned by platform".to_owned()
            ),
            (
                "ServiceAccount/builder".to_owned(),
                "ServiceAccount in a namespace not owned by platform".to_owned()
            ),
        ]
    );
}

#[test]
fn an_expression_that_fails_on_an_object_is_a_finding_marked_as_an_error() {
    let found = findings(
        r#"
customChecks:
  - id: acme/replicas
    title: Replicas are set
    severity: medium
    appliesTo: {workloads: true}
    validations:
      - expression: "object.spec.nodeName == 'x'"
"#,
    );
    let errors = of_check(&found, "acme/replicas");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|(_, m)| is_evaluation_error(m)),
        "{errors:?}"
    );
}

#[test]
fn compile_errors_name_the_field_and_the_position() {
    let err = compile_error(
        r#"
customChecks:
  - id: acme/broken
    title: t
    severity: low
    appliesTo: {workloads: true}
    validations:
      - expression: "true"
      - expression: "object.metadata.name == (1 +"
"#,
    );
    assert_eq!(err.field, "spec.customChecks[0].validations[1].expression");
    assert!(
        err.message.starts_with("line 1, column "),
        "{}",
        err.message
    );

    let err = compile_error(
        r#"
customChecks:
  - id: acme/unknown-variable
    title: t
    severity: low
    appliesTo: {workloads: true}
    validations:
      - expression: "variables.nope"
"#,
    );
    assert_eq!(err.field, "spec.customChecks[0].validations[0].expression");
    assert!(err.message.contains("variables.nope"), "{}", err.message);

    let err = compile_error(
        r#"
customChecks:
  - id: read-only-root-filesystem
    title: t
    severity: low
    appliesTo: {workloads: true}
    validations: [{expression: "true"}]
"#,
    );
    assert_eq!(err.field, "spec.customChecks[0].id");
}

#[test]
fn a_hostile_expression_is_refused_with_the_policy() {
    let err = compile_error(
        r#"
customChecks:
  - id: acme/hostile
    title: t
    severity: low
    appliesTo: {workloads: true}
    validations:
      - expression: >-
          object.spec.containers.all(a, object.spec.containers.all(b,
          object.spec.containers.all(c, object.spec.containers.all(d, a.name != d.image))))
"#,
    );
    assert!(err.message.contains("exceeds the limit"), "{}", err.message);
}

#[test]
fn the_same_definition_is_described_once() {
    let spec: ScanPolicySpec = serde_norway::from_str(TEAM_LABEL).unwrap();
    let a = compile_all(&spec.custom_checks, crate::checks::catalog()).unwrap();
    let b = compile_all(&spec.custom_checks, crate::checks::catalog()).unwrap();
    assert!(std::ptr::eq(a[0].check, b[0].check));
}

#[test]
fn the_catalog_lists_custom_checks_beside_the_built_in_ones() {
    let policy =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cel/policy.yaml");
    let checks = catalog_with_policy(Some(&policy)).unwrap();
    let builtin = crate::checks::catalog().len();
    let ids: Vec<&str> = checks[builtin..].iter().map(|c| c.id).collect();
    assert_eq!(ids, ["acme/team-label", "acme/allowed-registry"]);
    let table =
        crate::output::catalog::render(&checks, crate::output::catalog::CatalogFormat::Table);
    assert!(table.contains("acme/allowed-registry"), "{table}");

    let broken = policy.with_file_name("broken-policy.yaml");
    let err = catalog_with_policy(Some(&broken)).unwrap_err();
    assert!(
        err.contains("spec.customChecks[0].validations[0].expression: line 1, column"),
        "{err}"
    );
}

/// The recipes of docs/custom-checks.md, as one policy.
fn recipes() -> String {
    let doc = include_str!("../../../docs/custom-checks.md");
    let mut policy = String::from("customChecks:\n");
    for block in doc.split("```yaml\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        if block.starts_with("- id:") {
            for line in block.lines() {
                policy.push_str("  ");
                policy.push_str(line);
                policy.push('\n');
            }
        }
    }
    policy
}

#[test]
fn the_documented_recipes_compile_and_tell_passing_from_failing_objects() {
    let found = findings(&recipes());
    let failing = |id: &str| -> Vec<String> {
        of_check(&found, id)
            .into_iter()
            .map(|(object, _)| object)
            .collect()
    };
    // The Deployment is pinned, from the registry, within its ratio; the
    // CronJob is none of these.
    assert_eq!(failing("acme/no-latest"), ["CronJob/report"]);
    assert_eq!(failing("acme/allowed-registries"), ["CronJob/report"]);
    assert_eq!(failing("acme/memory-ratio"), ["CronJob/report"]);
    assert_eq!(
        failing("acme/required-labels"),
        ["CronJob/report", "Deployment/web"]
    );
    assert_eq!(failing("acme/namespace-owner"), ["Namespace/scratch"]);
    assert!(
        found.iter().all(|f| !is_evaluation_error(&f.message)),
        "{:?}",
        found
            .iter()
            .filter(|f| is_evaluation_error(&f.message))
            .map(|f| &f.message)
            .collect::<Vec<_>>()
    );
}
