//! Container hardening beyond the Pod Security Standards: what the widely used
//! scanners (kubescape, Polaris, trivy, kube-linter, Checkov) agree matters.
//!
//! These complement the PSS checks rather than repeat them: a condition the
//! PSS checks already report on the same field (running as UID 0, an
//! explicitly added NET_RAW, any hostPath volume) is left to them, and these
//! checks report what they do not (root *group*, a NET_RAW that is merely not
//! dropped, which hostPath and how it is mounted). Capability names are
//! compared as the container runtimes read them: case-insensitive, with or
//! without `CAP_`.

use std::collections::BTreeMap;

use super::pod_security::{
    added_capabilities, capabilities_path, context, context_path, dropped_capabilities,
    host_path_volumes, in_user_namespace, is_windows, normalize_capability, normalize_host_path,
    pod_context, pod_context_path, workload,
};
use super::pss_baseline::{
    APPARMOR_ANNOTATION_PREFIX, allowed_apparmor_annotation, confining_profile_type,
};
use crate::engine::{
    Applies, Category, Check, Context, Scope, Severity, Subject, Tool, Violations, alias,
};
use crate::model::{ContainerEntry, Workload};

pub static CHECKS: &[&Check] = &[
    &READ_ONLY_ROOT_FILESYSTEM,
    &RUN_AS_GROUP_ROOT,
    &PRIVILEGED_CONTAINER_SYS_ADMIN,
    &DANGEROUS_CAPABILITIES,
    &NET_RAW_NOT_DROPPED,
    &CONTAINER_RUNTIME_SOCKET,
    &WRITABLE_HOST_PATH,
    &SENSITIVE_HOST_PATH,
    &SHARE_PROCESS_NAMESPACE,
    &LINUX_HARDENING,
];

/// Capabilities that make a container as good as privileged: `SYS_ADMIN`
/// (mount, namespaces, BPF, most of what `privileged` is used for), and `ALL`,
/// which includes it.
const PRIVILEGED_CAPABILITIES: &[&str] = &["ALL", "SYS_ADMIN"];

/// Capabilities, besides [`PRIVILEGED_CAPABILITIES`], that amount to root on
/// the node or an easy escape from the container.
const DANGEROUS_CAPABILITIES_LIST: &[&str] = &[
    "NET_ADMIN",
    "SYS_MODULE",
    "SYS_PTRACE",
    "SYS_RAWIO",
    "SYS_BOOT",
    "DAC_READ_SEARCH",
    "BPF",
    "PERFMON",
    "MAC_ADMIN",
    "MAC_OVERRIDE",
];

/// Socket files of container runtimes: whoever can talk to one can start a
/// privileged container on the node.
const RUNTIME_SOCKET_FILES: &[&str] = &[
    "docker.sock",
    "containerd.sock",
    "crio.sock",
    "podman.sock",
    "cri-dockerd.sock",
    "dockershim.sock",
];

/// Directories that hold those sockets.
const RUNTIME_SOCKET_DIRS: &[&str] = &[
    "/run",
    "/var/run",
    "/run/docker",
    "/var/run/docker",
    "/run/containerd",
    "/var/run/containerd",
    "/run/crio",
    "/var/run/crio",
    "/run/podman",
    "/var/run/podman",
    "/run/k3s/containerd",
];

/// Host directories whose whole content is sensitive: the root filesystem,
/// system binaries and configuration, devices, kernel interfaces, logs of
/// every pod, and runtime state.
const SENSITIVE_DIRS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib64",
    "/proc",
    "/root",
    "/sbin",
    "/sys",
    "/usr",
    "/var",
    "/var/lib",
    "/var/log",
    "/var/lib/docker",
    "/var/lib/containerd",
];

/// Host trees where anything below is sensitive: cluster and kubelet
/// credentials, etcd data, root's home, kernel interfaces, boot files.
const SENSITIVE_TREES: &[&str] = &[
    "/etc/kubernetes",
    "/var/lib/kubelet",
    "/var/lib/etcd",
    "/root",
    "/proc",
    "/boot",
];

/// A writable root filesystem lets an intruder drop tools and tamper with the
/// application's own files.
pub static READ_ONLY_ROOT_FILESYSTEM: Check = Check {
    id: "read-only-root-filesystem",
    title: "Root filesystem is writable",
    category: Category::Hardening,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "Without `readOnlyRootFilesystem: true` an attacker who gets code execution \
                  can write binaries and modify the application's files in the container. \
                  Windows pods are exempt (the field does not exist there).",
    remediation: "Set `securityContext.readOnlyRootFilesystem: true` and mount an emptyDir \
                  where the application needs to write (for example /tmp).",
    frameworks: &["nsa-cisa"],
    aliases: &[
        alias(Tool::Trivy, "KSV014"),
        alias(Tool::Kubescape, "C-0017"),
        alias(Tool::Polaris, "notReadOnlyRootFilesystem"),
        alias(Tool::Checkov, "CKV_K8S_22"),
        alias(
            Tool::KubeScore,
            "container-security-context-readonlyrootfilesystem",
        ),
        alias(Tool::KubeLinter, "no-read-only-root-fs"),
    ],
    scope: Scope::Object,
    run: read_only_root_filesystem,
};

fn read_only_root_filesystem(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    if is_windows(workload) {
        return;
    }
    for c in &workload.containers {
        let message = match context(c).and_then(|s| s.read_only_root_filesystem) {
            Some(true) => continue,
            Some(false) => format!(
                "container `{}` sets `readOnlyRootFilesystem: false`",
                c.name()
            ),
            None => format!(
                "container `{}` does not set `readOnlyRootFilesystem: true`",
                c.name()
            ),
        };
        let path = context_path(c).field("readOnlyRootFilesystem");
        out.container(c, path, message);
    }
}

/// GID 0 gives access to every file the root group can read or write, in the
/// image and in mounted volumes.
pub static RUN_AS_GROUP_ROOT: Check = Check {
    id: "run-as-group-root",
    title: "Container runs with the root group",
    category: Category::Hardening,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "`runAsGroup: 0`, `fsGroup: 0` or a supplemental group 0 gives the processes \
                  the root group, and with it access to root-group files in the image and in \
                  volumes. (A root *user* is reported by `run-as-user-root`.) Pods in a user \
                  namespace and Windows pods are exempt.",
    remediation: "Set `runAsGroup` and `fsGroup` to a non-zero GID and remove 0 from \
                  `supplementalGroups`.",
    frameworks: &[],
    aliases: &[alias(Tool::Trivy, "KSV029"), alias(Tool::Trivy, "KSV116")],
    scope: Scope::Object,
    run: run_as_group_root,
};

fn run_as_group_root(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    // As for `runAsUser`: GID 0 in a user namespace is unprivileged on the node.
    if in_user_namespace(workload) || is_windows(workload) {
        return;
    }
    if let Some(pod) = pod_context(workload) {
        let path = pod_context_path(workload);
        for (field, value) in [("runAsGroup", pod.run_as_group), ("fsGroup", pod.fs_group)] {
            if value == Some(0) {
                out.object(path.field(field), format!("pod sets `{field}: 0`"));
            }
        }
        let groups = pod.supplemental_groups.as_deref().unwrap_or_default();
        for (index, _) in groups.iter().enumerate().filter(|(_, gid)| **gid == 0) {
            let item = path.field("supplementalGroups").index(index);
            out.object(item, "pod adds supplemental group 0");
        }
    }
    for c in &workload.containers {
        if context(c).and_then(|s| s.run_as_group) == Some(0) {
            let path = context_path(c).field("runAsGroup");
            out.container(
                c,
                path,
                format!("container `{}` sets `runAsGroup: 0`", c.name()),
            );
        }
    }
}

/// Some capabilities are as good as root on the node.
/// `SYS_ADMIN` is as good as `privileged: true`: the `privileged-container`
/// check's twin for capabilities.
///
/// Other scanners treat it as privileged too: Kubescape's C-0057
/// (privileged container) fails on `SYS_ADMIN`, Trivy's KSV005 and Checkov's
/// CKV_K8S_39 single it out. The Pod Security Standards' "Privileged
/// Containers" control itself looks only at `privileged`; `SYS_ADMIN` fails
/// their capabilities control (`capabilities-baseline`).
pub static PRIVILEGED_CONTAINER_SYS_ADMIN: Check = Check {
    id: "privileged-container-sys-admin",
    title: "Container adds SYS_ADMIN: as good as privileged",
    category: Category::Hardening,
    severity: Severity::Critical,
    applies: Applies::Workload,
    description: "`SYS_ADMIN` lets a container mount filesystems (the host's cgroup \
                  release agent included), create namespaces and load BPF programs: it is \
                  most of what `privileged: true` grants and enough to escape to the node. \
                  Adding `ALL` adds it too. Spelled in any case, with or without `CAP_`.",
    remediation: "Remove `SYS_ADMIN` (or `ALL`) from `securityContext.capabilities.add`; \
                  grant the narrower capability the workload needs, or move the task it \
                  performs (mounting, device setup) to a node-level component.",
    frameworks: &["nsa-cisa", "cis-k8s:5.2.2", "mitre:T1611"],
    aliases: &[
        alias(Tool::Trivy, "KSV005"),
        alias(Tool::Kubescape, "C-0057"),
        alias(Tool::Polaris, "dangerousCapabilities"),
        alias(Tool::Checkov, "CKV_K8S_39"),
    ],
    scope: Scope::Object,
    run: privileged_container_sys_admin,
};

fn privileged_container_sys_admin(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    for c in &workload.containers {
        for (index, capability) in added_capabilities(c) {
            let normalized = normalize_capability(capability);
            if !PRIVILEGED_CAPABILITIES.contains(&normalized.as_str()) {
                continue;
            }
            let path = capabilities_path(c, "add").index(index);
            let message = format!(
                "container `{}` adds capability `{capability}`: as good as privileged",
                c.name()
            );
            out.container(c, path, message);
        }
    }
}

pub static DANGEROUS_CAPABILITIES: Check = Check {
    id: "dangerous-capabilities",
    title: "Container adds a dangerous capability",
    category: Category::Hardening,
    severity: Severity::High,
    applies: Applies::Workload,
    description: "NET_ADMIN, SYS_MODULE, SYS_PTRACE, SYS_RAWIO, SYS_BOOT, DAC_READ_SEARCH, \
                  BPF, PERFMON, MAC_ADMIN and MAC_OVERRIDE each give enough kernel power to \
                  escape the container or take over the node's network. \
                  `capabilities-baseline` reports every capability outside the default set; \
                  this check singles out those that amount to root, whatever their spelling. \
                  SYS_ADMIN and ALL are reported by `privileged-container-sys-admin`.",
    remediation: "Remove the capability from `securityContext.capabilities.add`; if the \
                  workload truly needs it, isolate it on dedicated nodes.",
    frameworks: &["nsa-cisa", "cis-k8s:5.2.9", "mitre:T1611"],
    aliases: &[
        alias(Tool::Kubescape, "C-0046"),
        alias(Tool::Polaris, "dangerousCapabilities"),
    ],
    scope: Scope::Object,
    run: dangerous_capabilities,
};

fn dangerous_capabilities(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    for c in &workload.containers {
        for (index, capability) in added_capabilities(c) {
            let normalized = normalize_capability(capability);
            if !DANGEROUS_CAPABILITIES_LIST.contains(&normalized.as_str()) {
                continue;
            }
            let path = capabilities_path(c, "add").index(index);
            let message = format!(
                "container `{}` adds dangerous capability `{capability}`",
                c.name()
            );
            out.container(c, path, message);
        }
    }
}

/// NET_RAW, in the runtimes' default set, allows packet spoofing and sniffing.
pub static NET_RAW_NOT_DROPPED: Check = Check {
    id: "net-raw-not-dropped",
    title: "Container keeps the NET_RAW capability",
    category: Category::Hardening,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "Container runtimes grant NET_RAW by default: raw sockets let a compromised \
                  container spoof packets and attack other pods on the node's network (ARP and \
                  DNS spoofing). Containers should drop it (or ALL). Privileged containers and \
                  containers that add NET_RAW back are reported by `privileged-container` and \
                  `capabilities-baseline`; Windows pods are exempt.",
    remediation: "Add `NET_RAW` (or better, `ALL`) to `securityContext.capabilities.drop`.",
    frameworks: &["cis-k8s:5.2.8"],
    aliases: &[
        alias(Tool::Checkov, "CKV_K8S_28"),
        alias(Tool::KubeLinter, "drop-net-raw-capability"),
    ],
    scope: Scope::Object,
    run: net_raw_not_dropped,
};

fn net_raw_not_dropped(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    if is_windows(workload) {
        return;
    }
    for c in &workload.containers {
        if keeps_net_raw_by_default(c) {
            let message = format!(
                "container `{}` does not drop `NET_RAW` (or `ALL`)",
                c.name()
            );
            out.container(c, capabilities_path(c, "drop"), message);
        }
    }
}

/// True when NET_RAW reaches the container only because it is in the default
/// set: not dropped, not added back explicitly, container not privileged.
fn keeps_net_raw_by_default(c: &ContainerEntry) -> bool {
    let privileged = context(c).and_then(|s| s.privileged) == Some(true);
    let dropped = dropped_capabilities(c)
        .iter()
        .map(|cap| normalize_capability(cap))
        .any(|cap| cap == "ALL" || cap == "NET_RAW");
    let added = added_capabilities(c).any(|(_, cap)| normalize_capability(cap) == "NET_RAW");
    !privileged && !dropped && !added
}

/// A container runtime socket in the pod is full control of the node.
pub static CONTAINER_RUNTIME_SOCKET: Check = Check {
    id: "container-runtime-socket",
    title: "Container runtime socket mounted",
    category: Category::Hardening,
    severity: Severity::Critical,
    applies: Applies::Workload,
    description: "A hostPath volume with the Docker, containerd, CRI-O or Podman socket (or the \
                  directory holding it) lets the pod start a privileged container on the node, \
                  read every container's data and bypass all admission control.",
    remediation: "Remove the volume. Build images with a daemonless builder (BuildKit rootless, \
                  kaniko) and read container metadata through the Kubernetes API instead.",
    frameworks: &["nsa-cisa", "mitre:T1610", "mitre:T1611"],
    aliases: &[
        alias(Tool::Trivy, "KSV006"),
        alias(Tool::Kubescape, "C-0074"),
        alias(Tool::Checkov, "CKV_K8S_27"),
        alias(Tool::KubeLinter, "docker-sock"),
        alias(Tool::KubeLinter, "container-runtime-sock"),
    ],
    scope: Scope::Object,
    run: container_runtime_socket,
};

fn container_runtime_socket(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    for (volume, host_path, path) in host_path_volumes(workload) {
        let normalized = normalize_host_path(&host_path.path);
        if is_runtime_socket(&normalized) {
            let message = format!(
                "volume `{}` mounts the container runtime socket path `{}`",
                volume.name, host_path.path
            );
            out.object(path.field("hostPath").field("path"), message);
        }
    }
}

fn is_runtime_socket(normalized: &str) -> bool {
    let file_name = normalized.rsplit('/').next().unwrap_or_default();
    RUNTIME_SOCKET_FILES.contains(&file_name) || RUNTIME_SOCKET_DIRS.contains(&normalized)
}

/// A hostPath mounted read-write lets the container change the node.
pub static WRITABLE_HOST_PATH: Check = Check {
    id: "writable-host-path",
    title: "hostPath volume mounted writable",
    category: Category::Hardening,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "A container that mounts a hostPath volume without `readOnly: true` can write \
                  to the node's filesystem: plant binaries, change configuration, or fill the \
                  disk. (The volume itself is reported by `host-path-volume`.)",
    remediation: "Set `readOnly: true` on the volumeMount, or replace the hostPath volume.",
    frameworks: &["nsa-cisa", "mitre:T1611"],
    aliases: &[
        alias(Tool::Kubescape, "C-0045"),
        alias(Tool::KubeLinter, "writable-host-mount"),
    ],
    scope: Scope::Object,
    run: writable_host_path,
};

fn writable_host_path(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    let host_paths: BTreeMap<&str, &str> = host_path_volumes(workload)
        .map(|(volume, source, _)| (volume.name.as_str(), source.path.as_str()))
        .collect();
    if host_paths.is_empty() {
        return;
    }
    for c in &workload.containers {
        let mounts = c.container.volume_mounts.as_deref().unwrap_or_default();
        for (index, mount) in mounts.iter().enumerate() {
            let Some(host_path) = host_paths.get(mount.name.as_str()) else {
                continue;
            };
            if mount.read_only == Some(true) {
                continue;
            }
            // Address the mount by volume name unless the container mounts
            // that volume more than once.
            let mounts_path = c.path.field("volumeMounts");
            let same_volume = mounts.iter().filter(|m| m.name == mount.name).count();
            let item = if same_volume == 1 {
                mounts_path.named(&mount.name)
            } else {
                mounts_path.index(index)
            };
            let message = format!(
                "container `{}` mounts host path `{host_path}` writable at `{}`",
                c.name(),
                mount.mount_path
            );
            out.container(c, item.field("readOnly"), message);
        }
    }
}

/// Some host paths expose the node wholesale, whatever the mount mode.
pub static SENSITIVE_HOST_PATH: Check = Check {
    id: "sensitive-host-path",
    title: "Sensitive host path mounted",
    category: Category::Hardening,
    severity: Severity::High,
    applies: Applies::Workload,
    description: "A hostPath volume of the node's root, system directories (/etc, /usr, /bin, \
                  /lib, /dev, /sys, /proc, /boot), /var/log, runtime state, or credentials \
                  (/root, /etc/kubernetes, /var/lib/kubelet, /var/lib/etcd) exposes secrets of \
                  the node and every pod on it, even read-only. Runtime sockets are reported by \
                  `container-runtime-socket`.",
    remediation: "Mount only the specific file or directory the workload needs, read-only, or \
                  get the data through the Kubernetes API.",
    frameworks: &["nsa-cisa", "mitre:T1611"],
    aliases: &[
        alias(Tool::Trivy, "KSV121"),
        alias(Tool::KubeLinter, "sensitive-host-mounts"),
    ],
    scope: Scope::Object,
    run: sensitive_host_path,
};

fn sensitive_host_path(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    for (volume, host_path, path) in host_path_volumes(workload) {
        let normalized = normalize_host_path(&host_path.path);
        if is_sensitive_host_path(&normalized) {
            let message = format!(
                "volume `{}` mounts sensitive host path `{}`",
                volume.name, host_path.path
            );
            out.object(path.field("hostPath").field("path"), message);
        }
    }
}

fn is_sensitive_host_path(normalized: &str) -> bool {
    SENSITIVE_DIRS.contains(&normalized)
        || SENSITIVE_TREES.iter().any(|tree| {
            normalized
                .strip_prefix(tree)
                .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// A shared process namespace lets every container see and signal the others.
pub static SHARE_PROCESS_NAMESPACE: Check = Check {
    id: "share-process-namespace",
    title: "Containers share the process namespace",
    category: Category::Hardening,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "With `shareProcessNamespace: true` every container of the pod sees the \
                  others' processes, can signal them and can read their environment and \
                  filesystem through /proc: a compromised sidecar reaches the application's \
                  secrets.",
    remediation: "Remove `shareProcessNamespace` unless a debugging or sidecar pattern really \
                  needs it.",
    frameworks: &[],
    aliases: &[],
    scope: Scope::Object,
    run: share_process_namespace,
};

fn share_process_namespace(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    if workload.spec.share_process_namespace == Some(true) {
        let path = workload.spec_path.field("shareProcessNamespace");
        out.object(path, "pod sets `shareProcessNamespace: true`");
    }
}

/// A container with no Linux security module, no seccomp profile and no
/// dropped capability relies on nothing but namespaces.
pub static LINUX_HARDENING: Check = Check {
    id: "linux-hardening",
    title: "Container has no Linux hardening",
    category: Category::Hardening,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "A container should use at least one of: a confining seccomp profile, an \
                  AppArmor profile, SELinux options, or dropped capabilities (without adding \
                  ALL). This is the floor for workloads held to the baseline profile only; \
                  the restricted checks ask for more. Windows pods are exempt.",
    remediation: "Set `securityContext.seccompProfile.type: RuntimeDefault` (on the pod or the \
                  container) and drop capabilities the container does not need.",
    frameworks: &["nsa-cisa"],
    aliases: &[
        alias(Tool::Kubescape, "C-0055"),
        alias(Tool::Polaris, "linuxHardening"),
    ],
    scope: Scope::Object,
    run: linux_hardening,
};

fn linux_hardening(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    if is_windows(workload) {
        return;
    }
    for c in &workload.containers {
        let hardened = confined_by_seccomp(workload, c)
            || confined_by_apparmor(workload, c)
            || labelled_by_selinux(workload, c)
            || drops_capabilities(c);
        if !hardened {
            let path = context_path(c).field("seccompProfile").field("type");
            let message = format!(
                "container `{}` has no seccomp profile, AppArmor profile, SELinux options or \
                 dropped capabilities",
                c.name()
            );
            out.container(c, path, message);
        }
    }
}

/// The container's own profile wins over the pod's.
fn confined_by_seccomp(workload: &Workload, c: &ContainerEntry) -> bool {
    let own = context(c).and_then(|s| s.seccomp_profile.as_ref());
    let inherited = pod_context(workload).and_then(|s| s.seccomp_profile.as_ref());
    own.or(inherited)
        .is_some_and(|profile| confining_profile_type(&profile.type_))
}

fn confined_by_apparmor(workload: &Workload, c: &ContainerEntry) -> bool {
    let own = context(c).and_then(|s| s.app_armor_profile.as_ref());
    let inherited = pod_context(workload).and_then(|s| s.app_armor_profile.as_ref());
    let field = own
        .or(inherited)
        .is_some_and(|profile| confining_profile_type(&profile.type_));
    let key = format!("{APPARMOR_ANNOTATION_PREFIX}{}", c.name());
    let annotation = workload
        .template_metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(&key))
        // An empty value means the runtime default, which confines too.
        .is_some_and(|value| allowed_apparmor_annotation(value));
    field || annotation
}

fn labelled_by_selinux(workload: &Workload, c: &ContainerEntry) -> bool {
    let own = context(c).and_then(|s| s.se_linux_options.as_ref());
    let inherited = pod_context(workload).and_then(|s| s.se_linux_options.as_ref());
    [own, inherited].into_iter().flatten().any(|options| {
        [&options.type_, &options.level, &options.user, &options.role]
            .into_iter()
            .any(|value| value.as_deref().is_some_and(|v| !v.is_empty()))
    })
}

fn drops_capabilities(c: &ContainerEntry) -> bool {
    let adds_all = added_capabilities(c).any(|(_, cap)| normalize_capability(cap) == "ALL");
    !dropped_capabilities(c).is_empty() && !adds_all
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{findings, paths};
    use crate::engine::Severity;

    fn pod(spec: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{spec}")
    }

    #[test]
    fn read_only_root_filesystem_flags_unset_and_false() {
        let yaml = pod(r#"  containers:
  - {name: app, image: a, securityContext: {readOnlyRootFilesystem: true}}
  - {name: side, image: a, securityContext: {readOnlyRootFilesystem: false}}
  initContainers:
  - {name: init, image: a}
"#);
        assert_eq!(
            paths(&yaml, "read-only-root-filesystem"),
            [
                "spec.containers[name=side].securityContext.readOnlyRootFilesystem",
                "spec.initContainers[name=init].securityContext.readOnlyRootFilesystem",
            ]
        );
    }

    #[test]
    fn read_only_root_filesystem_passes_read_only_and_windows() {
        let yaml = pod(
            "  containers: [{name: app, image: a, securityContext: {readOnlyRootFilesystem: true}}]\n",
        );
        assert!(paths(&yaml, "read-only-root-filesystem").is_empty());
        let windows = pod("  os: {name: windows}\n  containers: [{name: app, image: a}]\n");
        assert!(paths(&windows, "read-only-root-filesystem").is_empty());
    }

    #[test]
    fn run_as_group_root_flags_every_group_zero() {
        let yaml = pod(
            r#"  securityContext: {runAsGroup: 0, fsGroup: 0, supplementalGroups: [1000, 0]}
  containers:
  - {name: app, image: a, securityContext: {runAsGroup: 0}}
  - {name: side, image: a, securityContext: {runAsGroup: 3000}}
"#,
        );
        assert_eq!(
            paths(&yaml, "run-as-group-root"),
            [
                "spec.containers[name=app].securityContext.runAsGroup",
                "spec.securityContext.fsGroup",
                "spec.securityContext.runAsGroup",
                "spec.securityContext.supplementalGroups[1]",
            ]
        );
    }

    #[test]
    fn run_as_group_root_passes_non_zero_groups_and_user_namespaces() {
        let yaml = pod(
            "  securityContext: {runAsGroup: 1000, fsGroup: 2000}\n  containers: [{name: app, image: a}]\n",
        );
        assert!(paths(&yaml, "run-as-group-root").is_empty());
        let userns = pod(
            "  hostUsers: false\n  securityContext: {runAsGroup: 0}\n  containers: [{name: app, image: a}]\n",
        );
        assert!(paths(&userns, "run-as-group-root").is_empty());
    }

    #[test]
    fn dangerous_capabilities_match_any_spelling_and_leave_sys_admin_to_its_check() {
        let yaml = pod(r#"  containers:
  - name: app
    image: a
    securityContext: {capabilities: {add: [CHOWN, cap_sys_admin, nEt_aDmIn, all]}}
"#);
        let found = findings(&yaml, "dangerous-capabilities");
        let summary: Vec<_> = found
            .iter()
            .map(|f| (f.path.as_str(), f.severity))
            .collect();
        assert_eq!(
            summary,
            [(
                "spec.containers[name=app].securityContext.capabilities.add[2]",
                Severity::High
            )]
        );
        let found = findings(&yaml, "privileged-container-sys-admin");
        let summary: Vec<_> = found
            .iter()
            .map(|f| (f.path.as_str(), f.severity, f.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    "spec.containers[name=app].securityContext.capabilities.add[1]",
                    Severity::Critical,
                    "container `app` adds capability `cap_sys_admin`: as good as privileged"
                ),
                (
                    "spec.containers[name=app].securityContext.capabilities.add[3]",
                    Severity::Critical,
                    "container `app` adds capability `all`: as good as privileged"
                ),
            ]
        );
    }

    #[test]
    fn privileged_container_sys_admin_passes_other_capabilities() {
        let yaml = pod(
            "  containers: [{name: app, image: a, securityContext: {capabilities: {add: [NET_ADMIN, SYS_PTRACE], drop: [SYS_ADMIN]}}}]\n",
        );
        assert!(paths(&yaml, "privileged-container-sys-admin").is_empty());
    }

    #[test]
    fn dangerous_capabilities_pass_harmless_additions() {
        let yaml = pod(
            "  containers: [{name: app, image: a, securityContext: {capabilities: {add: [NET_BIND_SERVICE, CHOWN]}}}]\n",
        );
        assert!(paths(&yaml, "dangerous-capabilities").is_empty());
    }

    #[test]
    fn net_raw_not_dropped_flags_containers_keeping_the_default() {
        let yaml = pod(r#"  containers:
  - {name: app, image: a}
  - {name: dropped, image: a, securityContext: {capabilities: {drop: [net_raw]}}}
  - {name: all, image: a, securityContext: {capabilities: {drop: [ALL]}}}
  - {name: readded, image: a, securityContext: {capabilities: {drop: [ALL], add: [NET_RAW]}}}
  - {name: priv, image: a, securityContext: {privileged: true}}
  - {name: other, image: a, securityContext: {capabilities: {drop: [CHOWN]}}}
"#);
        assert_eq!(
            paths(&yaml, "net-raw-not-dropped"),
            [
                "spec.containers[name=app].securityContext.capabilities.drop",
                "spec.containers[name=other].securityContext.capabilities.drop",
            ]
        );
        let windows = pod("  os: {name: windows}\n  containers: [{name: app, image: a}]\n");
        assert!(paths(&windows, "net-raw-not-dropped").is_empty());
    }

    #[test]
    fn container_runtime_socket_flags_sockets_and_their_directories() {
        let yaml = pod(r#"  containers: [{name: app, image: a}]
  volumes:
  - {name: docker, hostPath: {path: /var/run/docker.sock, type: Socket}}
  - {name: containerd, hostPath: {path: '/run/containerd/'}}
  - {name: run, hostPath: {path: /var/run}}
  - {name: logs, hostPath: {path: /var/log}}
  - {name: tmp, emptyDir: {}}
"#);
        assert_eq!(
            paths(&yaml, "container-runtime-socket"),
            [
                "spec.volumes[name=containerd].hostPath.path",
                "spec.volumes[name=docker].hostPath.path",
                "spec.volumes[name=run].hostPath.path",
            ]
        );
        let safe = pod(
            "  containers: [{name: app, image: a}]\n  volumes: [{name: d, hostPath: {path: /data/docker.socket.d}}]\n",
        );
        assert!(paths(&safe, "container-runtime-socket").is_empty());
    }

    #[test]
    fn writable_host_path_flags_mounts_without_read_only() {
        let yaml = pod(r#"  containers:
  - name: app
    image: a
    volumeMounts:
    - {name: logs, mountPath: /logs}
    - {name: certs, mountPath: /certs, readOnly: true}
    - {name: cache, mountPath: /cache}
  initContainers:
  - name: init
    image: a
    volumeMounts:
    - {name: logs, mountPath: /a, readOnly: false}
    - {name: logs, mountPath: /b, readOnly: true}
  volumes:
  - {name: logs, hostPath: {path: /var/log}}
  - {name: certs, hostPath: {path: /etc/ssl/certs}}
  - {name: cache, emptyDir: {}}
"#);
        assert_eq!(
            paths(&yaml, "writable-host-path"),
            [
                "spec.containers[name=app].volumeMounts[name=logs].readOnly",
                "spec.initContainers[name=init].volumeMounts[0].readOnly",
            ]
        );
    }

    #[test]
    fn writable_host_path_passes_read_only_mounts() {
        let yaml = pod(r#"  containers:
  - {name: app, image: a, volumeMounts: [{name: logs, mountPath: /logs, readOnly: true}]}
  volumes: [{name: logs, hostPath: {path: /var/log}}]
"#);
        assert!(paths(&yaml, "writable-host-path").is_empty());
    }

    #[test]
    fn sensitive_host_path_flags_system_directories_and_credential_trees() {
        let yaml = pod(r#"  containers: [{name: app, image: a}]
  volumes:
  - {name: root, hostPath: {path: /}}
  - {name: etc, hostPath: {path: /etc/}}
  - {name: pki, hostPath: {path: /etc/kubernetes/pki}}
  - {name: kubelet, hostPath: {path: /var/lib/kubelet/pods}}
  - {name: certs, hostPath: {path: /etc/ssl/certs}}
  - {name: pods, hostPath: {path: /var/log/pods}}
  - {name: sock, hostPath: {path: /var/run/docker.sock}}
"#);
        assert_eq!(
            paths(&yaml, "sensitive-host-path"),
            [
                "spec.volumes[name=etc].hostPath.path",
                "spec.volumes[name=kubelet].hostPath.path",
                "spec.volumes[name=pki].hostPath.path",
                "spec.volumes[name=root].hostPath.path",
            ]
        );
    }

    #[test]
    fn sensitive_host_path_passes_application_directories() {
        let yaml = pod(
            "  containers: [{name: app, image: a}]\n  volumes: [{name: data, hostPath: {path: /mnt/data}}, {name: kubeletx, hostPath: {path: /var/lib/kubeletx}}]\n",
        );
        assert!(paths(&yaml, "sensitive-host-path").is_empty());
    }

    #[test]
    fn share_process_namespace_flags_true_only() {
        let yaml = pod("  shareProcessNamespace: true\n  containers: [{name: app, image: a}]\n");
        assert_eq!(
            paths(&yaml, "share-process-namespace"),
            ["spec.shareProcessNamespace"]
        );
        let off = pod("  shareProcessNamespace: false\n  containers: [{name: app, image: a}]\n");
        assert!(paths(&off, "share-process-namespace").is_empty());
    }

    #[test]
    fn linux_hardening_flags_containers_without_any_measure() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    container.apparmor.security.beta.kubernetes.io/armored: runtime/default
    container.apparmor.security.beta.kubernetes.io/bare: unconfined
spec:
  securityContext: {seccompProfile: {type: Unconfined}}
  containers:
  - {name: bare, image: a}
  - {name: armored, image: a}
  - {name: seccomp, image: a, securityContext: {seccompProfile: {type: RuntimeDefault}}}
  - {name: selinux, image: a, securityContext: {seLinuxOptions: {level: 's0:c1'}}}
  - {name: emptyselinux, image: a, securityContext: {seLinuxOptions: {}}}
  - {name: drops, image: a, securityContext: {capabilities: {drop: [CHOWN]}}}
  - {name: addsall, image: a, securityContext: {capabilities: {drop: [ALL], add: [all]}}}
"#;
        assert_eq!(
            paths(yaml, "linux-hardening"),
            [
                "spec.containers[name=addsall].securityContext.seccompProfile.type",
                "spec.containers[name=bare].securityContext.seccompProfile.type",
                "spec.containers[name=emptyselinux].securityContext.seccompProfile.type",
            ]
        );
    }

    #[test]
    fn linux_hardening_passes_pod_level_measures() {
        let yaml = pod(
            "  securityContext: {seccompProfile: {type: RuntimeDefault}}\n  containers: [{name: app, image: a}]\n",
        );
        assert!(paths(&yaml, "linux-hardening").is_empty());
        let selinux = pod(
            "  securityContext: {seLinuxOptions: {level: 's0:c1'}}\n  containers: [{name: app, image: a}]\n",
        );
        assert!(paths(&selinux, "linux-hardening").is_empty());
    }
}
