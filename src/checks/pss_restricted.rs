//! Pod Security Standards, restricted profile: the controls of Kubernetes
//! v1.35 pod-security-admission that the restricted level adds to baseline.
//!
//! The restricted level is the baseline checks plus these. Where the
//! admission's restricted control *replaces* a baseline one (seccomp,
//! capabilities, volume types, procMount), the check here reports only what
//! the baseline check does not, so one misconfiguration gives one finding and
//! the union of both checks is the admission's restricted verdict:
//!
//! - `seccomp-profile-restricted` reports a missing profile; an `Unconfined`
//!   one is `seccomp-profile-baseline`'s.
//! - `capabilities-restricted` reports a missing `drop: [ALL]` and added
//!   capabilities from the default set; others are `capabilities-baseline`'s.
//! - `restricted-volume-types` leaves hostPath to `host-path-volume`.
//! - `proc-mount-restricted` covers the user-namespaced pods `proc-mount` lets
//!   through.
//!
//! One consequence: the admission exempts Windows pods from its restricted
//! seccomp and capabilities controls entirely, including the baseline part
//! they replace, whereas here an `Unconfined` profile or a non-default added
//! capability on a Windows pod is still reported by the baseline check (as it
//! is at the baseline level). Both fields are ignored on Windows nodes.

use super::pod_security::{
    added_capabilities, capabilities_path, context, context_path, dropped_capabilities,
    in_user_namespace, is_windows, pod_context, pod_context_path, report_unset, volumes, workload,
};
use super::pss_baseline::{BASELINE_CAPABILITIES, report_proc_mounts};
use crate::engine::{
    Applies, Category, Check, Context, Scope, Severity, Subject, Tool, Violations, alias,
};
use crate::model::VolumeEntry;

pub static CHECKS: &[&Check] = &[
    &RESTRICTED_VOLUME_TYPES,
    &PRIVILEGE_ESCALATION_ALLOWED,
    &RUN_AS_NON_ROOT,
    &RUN_AS_USER_ROOT,
    &SECCOMP_PROFILE_RESTRICTED,
    &CAPABILITIES_RESTRICTED,
    &PROC_MOUNT_RESTRICTED,
];

/// Inline volume sources beyond the core ephemeral and claim-based ones
/// bypass the storage administrator's PersistentVolume controls.
pub static RESTRICTED_VOLUME_TYPES: Check = Check {
    id: "restricted-volume-types",
    title: "Pod uses a restricted volume type",
    category: Category::PodSecurityRestricted,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "The restricted profile allows only configMap, csi, downwardAPI, emptyDir, \
                  ephemeral, image, persistentVolumeClaim, projected and secret volumes. Other \
                  inline sources (nfs, iscsi, gitRepo, cephfs, …) reach storage directly, \
                  bypassing PersistentVolume administration; gitRepo has run code on the node. \
                  hostPath is reported by `host-path-volume`.",
    remediation: "Use a PersistentVolumeClaim bound to an administrator-managed \
                  PersistentVolume (or one of the allowed volume types) instead.",
    frameworks: &["pss:restricted"],
    aliases: &[alias(Tool::Trivy, "KSV028")],
    scope: Scope::Object,
    run: restricted_volume_types,
};

fn restricted_volume_types(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    for (volume, path) in volumes(workload) {
        let Some(volume_type) = restricted_volume_type(volume) else {
            continue;
        };
        let message = format!(
            "volume `{}` uses restricted volume type `{volume_type}`",
            volume.name
        );
        out.object(path.field(volume_type), message);
    }
}

/// The restricted source a volume uses, `None` for an allowed one. A volume
/// with no source at all is an emptyDir once the API server has defaulted it.
fn restricted_volume_type(volume: &VolumeEntry) -> Option<&'static str> {
    let allowed = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
        // Reported by `host-path-volume`, which the restricted level includes.
        "hostPath",
    ];
    if allowed.iter().any(|source| volume.uses(source)) {
        return None;
    }
    let restricted = [
        "gcePersistentDisk",
        "awsElasticBlockStore",
        "gitRepo",
        "nfs",
        "iscsi",
        "glusterfs",
        "rbd",
        "flexVolume",
        "cinder",
        "cephfs",
        "flocker",
        "fc",
        "azureFile",
        "vsphereVolume",
        "quobyte",
        "azureDisk",
        "photonPersistentDisk",
        "portworxVolume",
        "scaleIO",
        "storageos",
    ];
    restricted.into_iter().find(|source| volume.uses(source))
}

/// Without `allowPrivilegeEscalation: false`, setuid binaries and file
/// capabilities can raise a process's privileges inside the container.
pub static PRIVILEGE_ESCALATION_ALLOWED: Check = Check {
    id: "privilege-escalation-allowed",
    title: "Container allows privilege escalation",
    category: Category::PodSecurityRestricted,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "Unless `allowPrivilegeEscalation` is explicitly false, a process in the \
                  container can gain more privileges than its parent (setuid binaries, file \
                  capabilities): unset counts as allowed. Windows pods are exempt.",
    remediation: "Set `securityContext.allowPrivilegeEscalation: false` on every container, \
                  init container and ephemeral container.",
    frameworks: &["pss:restricted", "nsa-cisa", "cis-k8s:5.2.6"],
    aliases: &[
        alias(Tool::Trivy, "KSV001"),
        alias(Tool::Kubescape, "C-0016"),
        alias(Tool::Polaris, "privilegeEscalationAllowed"),
        alias(Tool::Checkov, "CKV_K8S_20"),
        alias(Tool::KubeLinter, "privilege-escalation-container"),
    ],
    scope: Scope::Object,
    run: privilege_escalation_allowed,
};

fn privilege_escalation_allowed(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    // Policy v1.25: the field has no meaning on Windows.
    if is_windows(workload) {
        return;
    }
    for c in &workload.containers {
        let path = context_path(c).field("allowPrivilegeEscalation");
        let message = match context(c).and_then(|s| s.allow_privilege_escalation) {
            Some(false) => continue,
            Some(true) => format!(
                "container `{}` sets `allowPrivilegeEscalation: true`",
                c.name()
            ),
            None => format!(
                "container `{}` does not set `allowPrivilegeEscalation: false`",
                c.name()
            ),
        };
        out.container(c, path, message);
    }
}

/// Without `runAsNonRoot: true` the image decides the user, and most images
/// run as root.
pub static RUN_AS_NON_ROOT: Check = Check {
    id: "run-as-non-root",
    title: "Container may run as root",
    category: Category::PodSecurityRestricted,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "Unless `runAsNonRoot: true` is set on the container or inherited from the \
                  pod, the kubelet starts the container as whatever user the image names, \
                  often root. Pods in a user namespace (`hostUsers: false`) are exempt: their \
                  root is unprivileged on the node.",
    remediation: "Set `securityContext.runAsNonRoot: true` on the pod (and do not set it to \
                  false on any container), and give the image or `runAsUser` a non-zero UID.",
    frameworks: &["pss:restricted", "nsa-cisa", "cis-k8s:5.2.7"],
    aliases: &[
        alias(Tool::Trivy, "KSV012"),
        alias(Tool::Kubescape, "C-0013"),
        alias(Tool::Polaris, "runAsRootAllowed"),
        alias(Tool::Checkov, "CKV_K8S_23"),
        alias(Tool::KubeLinter, "run-as-non-root"),
    ],
    scope: Scope::Object,
    run: run_as_non_root,
};

fn run_as_non_root(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    // Policy v1.35 relaxation for user-namespaced pods.
    if in_user_namespace(workload) {
        return;
    }
    let pod_value = pod_context(workload).and_then(|s| s.run_as_non_root);
    if pod_value == Some(false) {
        let path = pod_context_path(workload).field("runAsNonRoot");
        out.object(path, "pod sets `runAsNonRoot: false`");
    }
    let mut unset = Vec::new();
    for c in &workload.containers {
        match context(c).and_then(|s| s.run_as_non_root) {
            Some(true) => {}
            Some(false) => {
                let path = context_path(c).field("runAsNonRoot");
                let message = format!("container `{}` sets `runAsNonRoot: false`", c.name());
                out.container(c, path, message);
            }
            // A pod-level `false` is already reported: fixing it fixes these.
            None if pod_value.is_none() => unset.push(c),
            None => {}
        }
    }
    report_unset(
        workload,
        &unset,
        &["runAsNonRoot"],
        "`runAsNonRoot: true`",
        out,
    );
}

/// An explicit UID 0 runs the container as root whatever the image says.
pub static RUN_AS_USER_ROOT: Check = Check {
    id: "run-as-user-root",
    title: "Container runs as UID 0",
    category: Category::PodSecurityRestricted,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "`runAsUser: 0` at pod or container level runs the container as root. Pods in \
                  a user namespace (`hostUsers: false`) are exempt: their UID 0 is unprivileged \
                  on the node.",
    remediation: "Set `runAsUser` to a non-zero UID, or remove it and give the image a non-root \
                  user.",
    frameworks: &["pss:restricted", "nsa-cisa", "cis-k8s:5.2.7"],
    aliases: &[alias(Tool::Trivy, "KSV105")],
    scope: Scope::Object,
    run: run_as_user_root,
};

fn run_as_user_root(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    // Policy v1.35 relaxation for user-namespaced pods.
    if in_user_namespace(workload) {
        return;
    }
    if pod_context(workload).and_then(|s| s.run_as_user) == Some(0) {
        let path = pod_context_path(workload).field("runAsUser");
        out.object(path, "pod sets `runAsUser: 0`");
    }
    for c in &workload.containers {
        if context(c).and_then(|s| s.run_as_user) == Some(0) {
            let path = context_path(c).field("runAsUser");
            out.container(
                c,
                path,
                format!("container `{}` sets `runAsUser: 0`", c.name()),
            );
        }
    }
}

/// Without a seccomp profile the container runs unconfined: every system
/// call is available.
pub static SECCOMP_PROFILE_RESTRICTED: Check = Check {
    id: "seccomp-profile-restricted",
    title: "Seccomp profile not set",
    category: Category::PodSecurityRestricted,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "Unless the container or its pod sets `seccompProfile.type` to \
                  `RuntimeDefault` or `Localhost`, the kubelet runs it unconfined by default. \
                  (An explicit `Unconfined` is reported by `seccomp-profile-baseline`.) Windows \
                  pods are exempt.",
    remediation: "Set `securityContext.seccompProfile.type: RuntimeDefault` on the pod.",
    frameworks: &["pss:restricted", "nsa-cisa", "cis-k8s:5.7.2"],
    aliases: &[
        alias(Tool::Trivy, "KSV030"),
        alias(Tool::Checkov, "CKV_K8S_31"),
    ],
    scope: Scope::Object,
    run: seccomp_profile_restricted,
};

fn seccomp_profile_restricted(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    // Policy v1.25: seccomp does not exist on Windows.
    if is_windows(workload) {
        return;
    }
    // A pod-level profile that is not confining is `seccomp-profile-baseline`'s
    // finding; the containers that inherit it are fixed with it.
    let pod_sets_profile = pod_context(workload)
        .and_then(|s| s.seccomp_profile.as_ref())
        .is_some();
    if pod_sets_profile {
        return;
    }
    let unset: Vec<_> = workload
        .containers
        .iter()
        .filter(|c| {
            context(c)
                .and_then(|s| s.seccomp_profile.as_ref())
                .is_none()
        })
        .collect();
    report_unset(
        workload,
        &unset,
        &["seccompProfile", "type"],
        "`seccompProfile.type` (`RuntimeDefault` or `Localhost`)",
        out,
    );
}

/// Containers keep the runtime's default capabilities (NET_RAW, CHOWN,
/// SETUID, …) unless they drop them.
pub static CAPABILITIES_RESTRICTED: Check = Check {
    id: "capabilities-restricted",
    title: "Container does not drop ALL capabilities",
    category: Category::PodSecurityRestricted,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "The restricted profile requires every container to drop ALL capabilities \
                  and add back at most NET_BIND_SERVICE; the runtime's default set (NET_RAW, \
                  CHOWN, DAC_OVERRIDE, SETUID, …) is otherwise granted. Capabilities outside the \
                  default set are reported by `capabilities-baseline`. Windows pods are exempt.",
    remediation: "Set `securityContext.capabilities.drop: [\"ALL\"]` on every container and \
                  add back only NET_BIND_SERVICE if the container binds a port below 1024.",
    frameworks: &["pss:restricted", "nsa-cisa", "cis-k8s:5.2.10"],
    aliases: &[
        alias(Tool::Trivy, "KSV106"),
        alias(Tool::Trivy, "KSV003"),
        alias(Tool::Polaris, "insecureCapabilities"),
        alias(Tool::Checkov, "CKV_K8S_37"),
    ],
    scope: Scope::Object,
    run: capabilities_restricted,
};

fn capabilities_restricted(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    // Policy v1.25: capabilities do not exist on Windows.
    if is_windows(workload) {
        return;
    }
    for c in &workload.containers {
        // Exactly "ALL", as the admission compares it.
        if !dropped_capabilities(c).iter().any(|cap| cap == "ALL") {
            let message = format!("container `{}` does not drop `ALL` capabilities", c.name());
            out.container(c, capabilities_path(c, "drop"), message);
        }
        for (index, capability) in added_capabilities(c) {
            let in_default_set = BASELINE_CAPABILITIES.contains(&capability);
            if in_default_set && capability != "NET_BIND_SERVICE" {
                let path = capabilities_path(c, "add").index(index);
                let message = format!(
                    "container `{}` adds capability `{capability}`; only NET_BIND_SERVICE may \
                     be added",
                    c.name()
                );
                out.container(c, path, message);
            }
        }
    }
}

/// The restricted profile forbids an unmasked /proc even in a user namespace.
pub static PROC_MOUNT_RESTRICTED: Check = Check {
    id: "proc-mount-restricted",
    title: "Container unmasks /proc in a user namespace",
    category: Category::PodSecurityRestricted,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "The baseline profile lets a pod with `hostUsers: false` set `procMount: \
                  Unmasked`; the restricted profile does not. (Other pods are reported by \
                  `proc-mount`.)",
    remediation: "Remove `securityContext.procMount` or set it to `Default`.",
    frameworks: &["pss:restricted"],
    aliases: &[],
    scope: Scope::Object,
    run: proc_mount_restricted,
};

fn proc_mount_restricted(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    if in_user_namespace(workload) {
        report_proc_mounts(workload, out);
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{findings, paths};

    fn pod(spec: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{spec}")
    }

    #[test]
    fn restricted_volume_types_flag_inline_storage_but_not_host_path() {
        let yaml = pod(r#"  containers: [{name: app, image: a}]
  volumes:
  - {name: share, nfs: {server: nfs.example, path: /export}}
  - {name: repo, gitRepo: {repository: 'https://example.com/r.git'}}
  - {name: logs, hostPath: {path: /var/log}}
  - {name: scratch}
"#);
        assert_eq!(
            paths(&yaml, "restricted-volume-types"),
            [
                "spec.volumes[name=repo].gitRepo",
                "spec.volumes[name=share].nfs"
            ]
        );
    }

    #[test]
    fn restricted_volume_types_pass_allowed_sources() {
        let yaml = pod(r#"  containers: [{name: app, image: a}]
  volumes:
  - {name: a, emptyDir: {}}
  - {name: b, configMap: {name: cm}}
  - {name: c, persistentVolumeClaim: {claimName: data}}
  - {name: d, image: {reference: 'registry.example/data:1'}}
  - {name: e, csi: {driver: csi.example}}
"#);
        assert!(paths(&yaml, "restricted-volume-types").is_empty());
    }

    #[test]
    fn privilege_escalation_flags_unset_and_true() {
        let yaml = pod(r#"  containers:
  - {name: app, image: a}
  - {name: side, image: a, securityContext: {allowPrivilegeEscalation: true}}
  - {name: ok, image: a, securityContext: {allowPrivilegeEscalation: false}}
"#);
        assert_eq!(
            paths(&yaml, "privilege-escalation-allowed"),
            [
                "spec.containers[name=app].securityContext.allowPrivilegeEscalation",
                "spec.containers[name=side].securityContext.allowPrivilegeEscalation",
            ]
        );
    }

    #[test]
    fn privilege_escalation_exempts_windows_pods() {
        let yaml = pod("  os: {name: windows}\n  containers: [{name: app, image: a}]\n");
        assert!(paths(&yaml, "privilege-escalation-allowed").is_empty());
    }

    #[test]
    fn run_as_non_root_points_at_the_pod_when_no_container_sets_it() {
        let yaml = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: app, image: a}]
      initContainers: [{name: init, image: a}]
"#;
        assert_eq!(
            paths(yaml, "run-as-non-root"),
            ["spec.template.spec.securityContext.runAsNonRoot"]
        );
        let message = &findings(yaml, "run-as-non-root")[0].message;
        assert!(message.contains("`app`, `init`"), "{message}");
    }

    #[test]
    fn run_as_non_root_flags_explicit_false_and_uncovered_containers() {
        let yaml = pod(r#"  containers:
  - {name: app, image: a, securityContext: {runAsNonRoot: true}}
  - {name: side, image: a}
  - {name: bad, image: a, securityContext: {runAsNonRoot: false}}
"#);
        assert_eq!(
            paths(&yaml, "run-as-non-root"),
            [
                "spec.containers[name=bad].securityContext.runAsNonRoot",
                "spec.containers[name=side].securityContext.runAsNonRoot",
            ]
        );
        let pod_false = pod(
            "  securityContext: {runAsNonRoot: false}\n  containers: [{name: app, image: a}]\n",
        );
        assert_eq!(
            paths(&pod_false, "run-as-non-root"),
            ["spec.securityContext.runAsNonRoot"]
        );
    }

    #[test]
    fn run_as_non_root_passes_pod_level_true_and_user_namespaces() {
        let yaml =
            pod("  securityContext: {runAsNonRoot: true}\n  containers: [{name: app, image: a}]\n");
        assert!(paths(&yaml, "run-as-non-root").is_empty());
        let userns = pod("  hostUsers: false\n  containers: [{name: app, image: a}]\n");
        assert!(paths(&userns, "run-as-non-root").is_empty());
    }

    #[test]
    fn run_as_user_root_flags_explicit_zero_at_either_level() {
        let yaml = pod(r#"  securityContext: {runAsUser: 0}
  containers:
  - {name: app, image: a, securityContext: {runAsUser: 1000}}
  - {name: side, image: a, securityContext: {runAsUser: 0}}
"#);
        assert_eq!(
            paths(&yaml, "run-as-user-root"),
            [
                "spec.containers[name=side].securityContext.runAsUser",
                "spec.securityContext.runAsUser",
            ]
        );
        let userns = pod(
            "  hostUsers: false\n  securityContext: {runAsUser: 0}\n  containers: [{name: app, image: a}]\n",
        );
        assert!(paths(&userns, "run-as-user-root").is_empty());
    }

    #[test]
    fn seccomp_profile_restricted_flags_missing_profiles_only() {
        let none = pod("  containers: [{name: app, image: a}]\n");
        assert_eq!(
            paths(&none, "seccomp-profile-restricted"),
            ["spec.securityContext.seccompProfile.type"]
        );
        let partial = pod(r#"  containers:
  - {name: app, image: a, securityContext: {seccompProfile: {type: RuntimeDefault}}}
  initContainers:
  - {name: init, image: a}
"#);
        assert_eq!(
            paths(&partial, "seccomp-profile-restricted"),
            ["spec.initContainers[name=init].securityContext.seccompProfile.type"]
        );
        // Unconfined is the baseline check's finding, not this one's.
        let unconfined = pod(
            "  securityContext: {seccompProfile: {type: Unconfined}}\n  containers: [{name: app, image: a}]\n",
        );
        assert!(paths(&unconfined, "seccomp-profile-restricted").is_empty());
    }

    #[test]
    fn seccomp_profile_restricted_passes_pod_level_profile_and_windows() {
        let yaml = pod(
            "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n  containers: [{name: app, image: a}]\n",
        );
        assert!(paths(&yaml, "seccomp-profile-restricted").is_empty());
        let windows = pod("  os: {name: windows}\n  containers: [{name: app, image: a}]\n");
        assert!(paths(&windows, "seccomp-profile-restricted").is_empty());
    }

    #[test]
    fn capabilities_restricted_requires_drop_all_and_only_net_bind_service() {
        let yaml = pod(r#"  containers:
  - name: app
    image: a
    securityContext: {capabilities: {drop: [all], add: [NET_BIND_SERVICE, CHOWN, SYS_ADMIN]}}
  - name: ok
    image: a
    securityContext: {capabilities: {drop: [ALL], add: [NET_BIND_SERVICE]}}
  - {name: bare, image: a}
"#);
        // SYS_ADMIN is outside the default set: `capabilities-baseline` reports it.
        assert_eq!(
            paths(&yaml, "capabilities-restricted"),
            [
                "spec.containers[name=app].securityContext.capabilities.add[1]",
                "spec.containers[name=app].securityContext.capabilities.drop",
                "spec.containers[name=bare].securityContext.capabilities.drop",
            ]
        );
        let windows = pod("  os: {name: windows}\n  containers: [{name: app, image: a}]\n");
        assert!(paths(&windows, "capabilities-restricted").is_empty());
    }

    #[test]
    fn proc_mount_restricted_flags_unmasked_in_user_namespaces_only() {
        let spec =
            "  containers: [{name: app, image: a, securityContext: {procMount: Unmasked}}]\n";
        let userns = pod(&format!("  hostUsers: false\n{spec}"));
        assert_eq!(
            paths(&userns, "proc-mount-restricted"),
            ["spec.containers[name=app].securityContext.procMount"]
        );
        assert!(paths(&pod(spec), "proc-mount-restricted").is_empty());
    }
}
