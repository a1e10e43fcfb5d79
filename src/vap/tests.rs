use crate::crd::ScanPolicySpec;
use crate::engine::{Finding, Severity};
use crate::loader::Loader;
use crate::policy::Policy;

const FIXTURE: &str = include_str!("../../tests/fixtures/cel/admission.yaml");

fn scan(text: &str, policy_yaml: &str) -> Vec<Finding> {
    let spec: ScanPolicySpec = serde_norway::from_str(policy_yaml).expect("policy decodes");
    let policy = Policy::from_spec(&spec, crate::checks::catalog(), None).expect("policy");
    let loaded = Loader::new().load_text("input.yaml", text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    crate::cli::scan::evaluate(loaded, &policy)
        .findings
        .into_iter()
        .filter(|f| f.check.id.starts_with("vap/"))
        .collect()
}

/// `(check, namespace/name, severity, message)` of each finding.
fn described(findings: &[Finding]) -> Vec<(String, String, Severity, String)> {
    findings
        .iter()
        .map(|f| {
            (
                f.check.id.to_owned(),
                format!(
                    "{}/{}",
                    f.object.namespace.as_deref().unwrap_or(""),
                    f.object.name
                ),
                f.severity,
                f.message.clone(),
            )
        })
        .collect()
}

#[test]
fn bindings_select_by_namespace_and_set_the_severity() {
    let found = described(&scan(FIXTURE, "{}"));
    assert_eq!(
        found,
        [
            (
                "vap/replica-limit".to_owned(),
                "prod/two".to_owned(),
                Severity::High,
                "pod has 2 containers; at most 1 (binding replica-limit-prod, Deny)".to_owned()
            ),
            (
                "vap/no-latest".to_owned(),
                "prod/two".to_owned(),
                Severity::Medium,
                "images must not use the latest tag (binding no-latest-warn, Warn,Audit)"
                    .to_owned()
            ),
        ]
    );
}

#[test]
fn overrides_and_exceptions_name_admission_policies() {
    let found = scan(
        FIXTURE,
        "{severityOverrides: [{check: vap/no-latest, severity: critical}], \
          exceptions: [{checks: [vap/replica-limit], namespaces: [prod], reason: migrating}]}",
    );
    let latest = found
        .iter()
        .find(|f| f.check.id == "vap/no-latest")
        .unwrap();
    assert_eq!(latest.severity, Severity::Critical);
    let limit = found
        .iter()
        .find(|f| f.check.id == "vap/replica-limit")
        .unwrap();
    assert!(limit.is_suppressed());
}

fn policy_and_pod(policy_spec: &str, binding_spec: &str, pod_labels: &str) -> String {
    format!(
        r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: p}}
spec:
{policy_spec}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: b}}
spec:
  policyName: p
  validationActions: [Audit]
{binding_spec}
---
apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: apps, labels: {pod_labels}}}
spec:
  containers: [{{name: a, image: "r/a:1"}}]
"#
    )
}

const PODS: &str = "  matchConstraints:
    resourceRules:
      - {apiGroups: [\"\"], apiVersions: [v1], operations: [CREATE], resources: [pods]}
";

#[test]
fn object_selectors_exclusions_and_match_conditions_narrow_the_objects() {
    let always_fails = format!("{PODS}  validations: [{{expression: \"false\"}}]\n");
    let base = policy_and_pod(&always_fails, "", "{tier: web}");
    assert_eq!(scan(&base, "{}").len(), 1);
    assert_eq!(scan(&base, "{}")[0].severity, Severity::Low);

    let by_label = policy_and_pod(
        &always_fails,
        "  matchResources: {objectSelector: {matchLabels: {tier: db}}}",
        "{tier: web}",
    );
    assert!(scan(&by_label, "{}").is_empty());

    let excluded = policy_and_pod(
        &format!(
            "{PODS}    excludeResourceRules:\n      - {{apiGroups: [\"\"], apiVersions: [\"*\"], operations: [\"*\"], resources: [pods], resourceNames: [web]}}\n  validations: [{{expression: \"false\"}}]\n"
        ),
        "",
        "{tier: web}",
    );
    assert!(scan(&excluded, "{}").is_empty());

    let condition = policy_and_pod(
        &format!(
            "{PODS}  matchConditions: [{{name: only-db, expression: \"object.metadata.labels.tier == 'db'\"}}]\n  validations: [{{expression: \"false\"}}]\n"
        ),
        "",
        "{tier: web}",
    );
    assert!(scan(&condition, "{}").is_empty());
}

#[test]
fn runtime_errors_follow_the_failure_policy() {
    let failing = |policy: &str| {
        format!(
            "{PODS}  failurePolicy: {policy}\n  validations: [{{expression: \"object.spec.nodeName == 'x'\"}}]\n"
        )
    };
    let fail = scan(&policy_and_pod(&failing("Fail"), "", "{}"), "{}");
    assert_eq!(fail.len(), 1);
    assert!(
        crate::policy::custom::is_evaluation_error(&fail[0].message),
        "{}",
        fail[0].message
    );
    assert!(scan(&policy_and_pod(&failing("Ignore"), "", "{}"), "{}").is_empty());
}

#[test]
fn missing_parameters_deny_or_allow_as_the_binding_says() {
    let with_params = format!(
        "{PODS}  paramKind: {{apiVersion: v1, kind: ConfigMap}}\n  validations: [{{expression: \"true\"}}]\n"
    );
    let deny = scan(
        &policy_and_pod(
            &with_params,
            "  paramRef: {name: absent, parameterNotFoundAction: Deny}",
            "{}",
        ),
        "{}",
    );
    assert_eq!(deny.len(), 1);
    assert!(
        deny[0].message.starts_with("no params found"),
        "{}",
        deny[0].message
    );
    let allow = scan(
        &policy_and_pod(
            &with_params,
            "  paramRef: {name: absent, parameterNotFoundAction: Allow}",
            "{}",
        ),
        "{}",
    );
    assert!(allow.is_empty());
}

#[test]
fn parameters_that_were_not_read_are_an_error_not_a_denial() {
    let with_params = format!(
        "{PODS}  paramKind: {{apiVersion: v1, kind: ConfigMap}}\n  validations: [{{expression: \"true\"}}]\n"
    );
    let text = policy_and_pod(
        &with_params,
        "  paramRef: {name: limits, parameterNotFoundAction: Deny}",
        "{}",
    );
    let loaded = Loader::new().load_text("input.yaml", &text);
    assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
    let resources: Vec<_> = loaded.objects.iter().map(|o| o.resource.clone()).collect();
    let mut inventory = crate::model::Inventory::from_resources(&resources);
    // As the operator sees the cluster: its ConfigMaps are not read.
    inventory.config_maps_unread = true;
    let policy = Policy::default().with_admission_policies(&inventory);
    let found: Vec<Finding> =
        crate::engine::evaluate(&inventory, crate::checks::catalog(), &policy)
            .into_iter()
            .filter(|f| f.check.id.starts_with("vap/"))
            .collect();
    assert_eq!(found.len(), 1, "{:?}", described(&found));
    assert!(
        crate::policy::custom::is_evaluation_error(&found[0].message),
        "{}",
        found[0].message
    );
    assert!(!found[0].message.contains("no params found"));
}

#[test]
fn a_policy_without_a_binding_enforces_nothing() {
    let text = FIXTURE.replace("policyName: no-latest", "policyName: elsewhere");
    assert!(
        scan(&text, "{}")
            .iter()
            .all(|f| f.check.id != "vap/no-latest")
    );
}

#[test]
fn vap_star_names_every_admission_policy() {
    let found = scan(
        FIXTURE,
        "{checks: {enabled: [\"vap/*\"]}, severityOverrides: [{check: \"vap/*\", severity: info}]}",
    );
    assert_eq!(found.len(), 2);
    assert!(found.iter().all(|f| f.severity == Severity::Info));
    let policy: ScanPolicySpec =
        serde_norway::from_str("{checks: {enabled: [\"vap/*\"]}}").unwrap();
    let policy = Policy::from_spec(&policy, crate::checks::catalog(), None).unwrap();
    let loaded = Loader::new().load_text("input.yaml", FIXTURE);
    let all = crate::cli::scan::evaluate(loaded, &policy).findings;
    assert!(
        all.iter().all(|f| f.check.id.starts_with("vap/")),
        "only admission policies run"
    );
}

#[test]
fn a_workload_is_audited_whole_not_only_its_pod_template() {
    // demo-policy.example.com of the Kubernetes documentation.
    let text = |replicas: u32| {
        format!(
            r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: demo-policy.example.com}}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}}
  validations:
    - expression: "object.spec.replicas <= 5"
    - expression: "object.spec.template.spec.containers.all(c, c.image != '')"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: demo-binding-test.example.com}}
spec:
  policyName: demo-policy.example.com
  validationActions: [Deny]
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: default}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: app, image: nginx}}]
"#
        )
    };
    assert!(scan(&text(3), "{}").is_empty());
    let found = described(&scan(&text(6), "{}"));
    assert_eq!(
        found,
        [(
            "vap/demo-policy.example.com".to_owned(),
            "default/web".to_owned(),
            Severity::High,
            "failed expression: object.spec.replicas <= 5 (binding demo-binding-test.example.com, Deny)"
                .to_owned()
        )]
    );
}
