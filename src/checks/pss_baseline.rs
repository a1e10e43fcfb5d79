//! Pod Security Standards, baseline profile: the controls of Kubernetes
//! v1.35 pod-security-admission, with its exact semantics.

use crate::engine::{
    Applies, Category, Check, Context, Severity, Subject, Tool, Violations, alias,
};

pub static CHECKS: &[&Check] = &[&PRIVILEGED_CONTAINER];

/// Privileged containers have all host capabilities and device access.
pub static PRIVILEGED_CONTAINER: Check = Check {
    id: "privileged-container",
    title: "Privileged container",
    category: Category::PodSecurityBaseline,
    severity: Severity::Critical,
    applies: Applies::Workload,
    description: "A privileged container runs with every capability and all host devices: \
                  escaping to the node is trivial.",
    remediation: "Remove `securityContext.privileged` or set it to false.",
    frameworks: &["pss:baseline", "nsa-cisa", "cis-k8s:5.2.2", "mitre:T1611"],
    aliases: &[
        alias(Tool::Trivy, "KSV017"),
        alias(Tool::Kubescape, "C-0057"),
        alias(Tool::Polaris, "runAsPrivileged"),
        alias(Tool::Checkov, "CKV_K8S_16"),
        alias(Tool::KubeScore, "container-security-context-privileged"),
        alias(Tool::KubeLinter, "privileged-container"),
    ],
    run: privileged_container,
};

fn privileged_container(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    for c in &workload.containers {
        let privileged = c
            .container
            .security_context
            .as_ref()
            .and_then(|s| s.privileged);
        if privileged == Some(true) {
            let path = c.path.field("securityContext").field("privileged");
            out.container(c, path, format!("container `{}` is privileged", c.name()));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::paths;

    #[test]
    fn privileged_container_flags_only_privileged_containers() {
        let yaml = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: nginx:1.27, securityContext: {privileged: true}}
      - {name: sidecar, image: envoy:1.30, securityContext: {privileged: false}}
      initContainers:
      - {name: init, image: busybox:1.36}
"#;
        assert_eq!(
            paths(yaml, "privileged-container"),
            ["spec.template.spec.containers[name=app].securityContext.privileged"]
        );
    }

    #[test]
    fn privileged_container_passes_unprivileged_pod() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: app, image: nginx:1.27}]
"#;
        assert!(paths(yaml, "privileged-container").is_empty());
    }
}
