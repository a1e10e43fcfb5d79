//! Pod Security Standards, baseline profile: the controls of Kubernetes
//! v1.35 pod-security-admission, with its exact semantics.
//!
//! Every control looks at containers, init containers and ephemeral
//! containers alike, as the admission does. The pod template is judged as
//! written: API-server defaulting (which, for example, copies `containerPort`
//! into `hostPort` on `hostNetwork` pods) is not replayed, since the verdict
//! does not change.

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe, SELinuxOptions};

use super::pod_security::{
    added_capabilities, capabilities_path, context, context_path, host_path_volumes,
    in_user_namespace, pod_context, pod_context_path, workload,
};
use crate::engine::{
    Applies, Category, Check, Context, Scope, Severity, Subject, Tool, Violations, alias,
};
use crate::model::{ContainerEntry, FieldPath, Workload};

pub static CHECKS: &[&Check] = &[
    &HOST_NETWORK,
    &HOST_PID,
    &HOST_IPC,
    &PRIVILEGED_CONTAINER,
    &CAPABILITIES_BASELINE,
    &HOST_PATH_VOLUME,
    &HOST_PORTS,
    &HOST_PROBES_LIFECYCLE,
    &APPARMOR_PROFILE,
    &SELINUX_OPTIONS,
    &PROC_MOUNT,
    &SECCOMP_PROFILE_BASELINE,
    &UNSAFE_SYSCTLS,
    &WINDOWS_HOST_PROCESS,
];

/// Capabilities the baseline profile lets a container add: the container
/// runtimes' default set. Compared exactly (`chown` and `CAP_CHOWN` are not
/// in it), as the admission does.
pub(crate) const BASELINE_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// Sysctls that are namespaced and isolated from other pods (policy v1.32,
/// the newest list in Kubernetes 1.35).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

/// SELinux types a container may run as (policy v1.31 added `container_engine_t`).
const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

/// The deprecated per-container AppArmor annotation, still enforced by the admission.
pub(crate) const APPARMOR_ANNOTATION_PREFIX: &str =
    "container.apparmor.security.beta.kubernetes.io/";

/// Seccomp and AppArmor profile types that keep the runtime's confinement.
pub(crate) fn confining_profile_type(profile_type: &str) -> bool {
    matches!(profile_type, "RuntimeDefault" | "Localhost")
}

/// Sharing the host's network namespace exposes node-local services and lets
/// the pod sniff and spoof host traffic.
pub static HOST_NETWORK: Check = Check {
    id: "host-network",
    title: "Pod uses the host network",
    category: Category::PodSecurityBaseline,
    severity: Severity::High,
    applies: Applies::Workload,
    description: "A pod with `hostNetwork: true` shares the node's network stack: it reaches \
                  services bound to localhost on the node, bypasses NetworkPolicies and can \
                  observe other pods' traffic.",
    remediation: "Remove `hostNetwork` or set it to false.",
    frameworks: &["pss:baseline", "nsa-cisa", "cis-k8s:5.2.5"],
    aliases: &[
        alias(Tool::Trivy, "KSV009"),
        alias(Tool::Kubescape, "C-0041"),
        alias(Tool::Polaris, "hostNetworkSet"),
        alias(Tool::Checkov, "CKV_K8S_19"),
        alias(Tool::KubeLinter, "host-network"),
    ],
    scope: Scope::Object,
    run: host_network,
};

fn host_network(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    report_host_namespace(workload, workload.spec.host_network, "hostNetwork", out);
}

/// Sharing the host's process namespace shows every process on the node and,
/// with ptrace, lets the pod inspect or signal them.
pub static HOST_PID: Check = Check {
    id: "host-pid",
    title: "Pod uses the host PID namespace",
    category: Category::PodSecurityBaseline,
    severity: Severity::High,
    applies: Applies::Workload,
    description: "A pod with `hostPID: true` sees every process on the node, including their \
                  environment and command lines, and can signal them: a short step to escaping \
                  to the node.",
    remediation: "Remove `hostPID` or set it to false.",
    frameworks: &["pss:baseline", "nsa-cisa", "cis-k8s:5.2.3", "mitre:T1611"],
    aliases: &[
        alias(Tool::Trivy, "KSV010"),
        alias(Tool::Kubescape, "C-0038"),
        alias(Tool::Polaris, "hostPIDSet"),
        alias(Tool::Checkov, "CKV_K8S_17"),
        alias(Tool::KubeLinter, "host-pid"),
    ],
    scope: Scope::Object,
    run: host_pid,
};

fn host_pid(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    report_host_namespace(workload, workload.spec.host_pid, "hostPID", out);
}

/// Sharing the host's IPC namespace exposes shared memory of every process on
/// the node.
pub static HOST_IPC: Check = Check {
    id: "host-ipc",
    title: "Pod uses the host IPC namespace",
    category: Category::PodSecurityBaseline,
    severity: Severity::High,
    applies: Applies::Workload,
    description: "A pod with `hostIPC: true` shares the node's System V IPC and POSIX shared \
                  memory: it can read and tamper with the shared memory of host processes.",
    remediation: "Remove `hostIPC` or set it to false.",
    frameworks: &["pss:baseline", "nsa-cisa", "cis-k8s:5.2.4"],
    aliases: &[
        alias(Tool::Trivy, "KSV008"),
        alias(Tool::Kubescape, "C-0038"),
        alias(Tool::Polaris, "hostIPCSet"),
        alias(Tool::Checkov, "CKV_K8S_18"),
        alias(Tool::KubeLinter, "host-ipc"),
    ],
    scope: Scope::Object,
    run: host_ipc,
};

fn host_ipc(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    report_host_namespace(workload, workload.spec.host_ipc, "hostIPC", out);
}

fn report_host_namespace(
    workload: &Workload,
    value: Option<bool>,
    field: &str,
    out: &mut Violations,
) {
    if value == Some(true) {
        let path = workload.spec_path.field(field);
        out.object(path, format!("pod sets `{field}: true`"));
    }
}

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
    scope: Scope::Object,
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

/// Capabilities beyond the runtime's default set widen the kernel attack
/// surface (NET_RAW, SYS_ADMIN, …).
pub static CAPABILITIES_BASELINE: Check = Check {
    id: "capabilities-baseline",
    title: "Container adds a capability outside the default set",
    category: Category::PodSecurityBaseline,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "Adding a Linux capability beyond the container runtime's default set (for \
                  example NET_RAW or SYS_ADMIN) gives the container kernel privileges that \
                  ordinary workloads do not need.",
    remediation: "Remove the capability from `securityContext.capabilities.add`; only \
                  AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, \
                  NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID and SYS_CHROOT may be added.",
    frameworks: &["pss:baseline", "nsa-cisa", "cis-k8s:5.2.9"],
    aliases: &[
        alias(Tool::Trivy, "KSV022"),
        alias(Tool::Checkov, "CKV_K8S_25"),
    ],
    scope: Scope::Object,
    run: capabilities_baseline,
};

fn capabilities_baseline(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    for c in &workload.containers {
        for (index, capability) in added_capabilities(c) {
            if !BASELINE_CAPABILITIES.contains(&capability) {
                let path = capabilities_path(c, "add").index(index);
                let message = format!(
                    "container `{}` adds capability `{capability}`, outside the default set",
                    c.name()
                );
                out.container(c, path, message);
            }
        }
    }
}

/// hostPath volumes expose the node's filesystem to the pod.
pub static HOST_PATH_VOLUME: Check = Check {
    id: "host-path-volume",
    title: "Pod mounts a hostPath volume",
    category: Category::PodSecurityBaseline,
    severity: Severity::High,
    applies: Applies::Workload,
    description: "A hostPath volume gives the pod a directory or file of the node: depending on \
                  the path it leaks credentials of other pods or lets the container take over \
                  the node.",
    remediation: "Replace the hostPath volume with an emptyDir, a ConfigMap or Secret, or a \
                  PersistentVolumeClaim.",
    frameworks: &["pss:baseline", "nsa-cisa", "cis-k8s:5.2.12", "mitre:T1611"],
    aliases: &[
        alias(Tool::Trivy, "KSV023"),
        alias(Tool::Kubescape, "C-0048"),
        alias(Tool::Polaris, "hostPathSet"),
    ],
    scope: Scope::Object,
    run: host_path_volume,
};

fn host_path_volume(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    for (volume, host_path, path) in host_path_volumes(workload) {
        let message = format!(
            "volume `{}` mounts host path `{}`",
            volume.name, host_path.path
        );
        out.object(path.field("hostPath"), message);
    }
}

/// Host ports bind the node's network interfaces and bypass NetworkPolicies.
pub static HOST_PORTS: Check = Check {
    id: "host-ports",
    title: "Container uses a host port",
    category: Category::PodSecurityBaseline,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "A `hostPort` opens a port on the node's own addresses: the container is \
                  reachable from outside the cluster network and the port conflicts with other \
                  pods on the node.",
    remediation: "Remove `hostPort` (or set it to 0) and expose the port with a Service.",
    frameworks: &["pss:baseline", "cis-k8s:5.2.13"],
    aliases: &[
        alias(Tool::Trivy, "KSV024"),
        alias(Tool::Kubescape, "C-0044"),
        alias(Tool::Polaris, "hostPortSet"),
        alias(Tool::Checkov, "CKV_K8S_26"),
    ],
    scope: Scope::Object,
    run: host_ports,
};

fn host_ports(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    for c in &workload.containers {
        let ports = c.container.ports.as_deref().unwrap_or_default();
        for (index, port) in ports.iter().enumerate() {
            let host_port = port.host_port.unwrap_or(0);
            if host_port == 0 {
                continue;
            }
            let ports_path = c.path.field("ports");
            let item = match &port.name {
                Some(name) if !name.is_empty() => ports_path.named(name),
                _ => ports_path.index(index),
            };
            let message = format!("container `{}` uses host port {host_port}", c.name());
            out.container(c, item.field("hostPort"), message);
        }
    }
}

/// Probes and lifecycle hooks run by the kubelet from the node; a `host` lets
/// a pod aim them at any address the node can reach.
pub static HOST_PROBES_LIFECYCLE: Check = Check {
    id: "host-probes-lifecycle",
    title: "Probe or lifecycle hook targets another host",
    category: Category::PodSecurityBaseline,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "The kubelet runs httpGet and tcpSocket probes and lifecycle hooks from the \
                  node. Setting `host` points them at an address other than the pod, so a pod \
                  can make the node send requests to internal services (server-side request \
                  forgery).",
    remediation: "Remove the `host` field from httpGet and tcpSocket probes and lifecycle \
                  handlers; they then target the pod's own IP.",
    frameworks: &["pss:baseline"],
    aliases: &[],
    scope: Scope::Object,
    run: host_probes_lifecycle,
};

fn host_probes_lifecycle(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    for c in &workload.containers {
        for (handler, actions) in handler_actions(&c.container) {
            let handler_path = handler
                .split('.')
                .fold(c.path.clone(), |path, field| path.field(field));
            for (action, host) in actions {
                let Some(host) = host.filter(|h| !h.is_empty()) else {
                    continue;
                };
                let path = handler_path.field(action).field("host");
                let message = format!(
                    "container `{}` {handler} {action} targets host `{host}`",
                    c.name()
                );
                out.container(c, path, message);
            }
        }
    }
}

/// A probe or hook field (`livenessProbe`, `lifecycle.postStart`) and the
/// `host` of its httpGet and tcpSocket actions.
type HandlerActions<'a> = (&'static str, [(&'static str, Option<&'a str>); 2]);

/// Every probe and lifecycle hook the container has.
fn handler_actions(container: &Container) -> Vec<HandlerActions<'_>> {
    let lifecycle = container.lifecycle.as_ref();
    [
        (
            "livenessProbe",
            probe_hosts(container.liveness_probe.as_ref()),
        ),
        (
            "readinessProbe",
            probe_hosts(container.readiness_probe.as_ref()),
        ),
        (
            "startupProbe",
            probe_hosts(container.startup_probe.as_ref()),
        ),
        (
            "lifecycle.postStart",
            hook_hosts(lifecycle.and_then(|l| l.post_start.as_ref())),
        ),
        (
            "lifecycle.preStop",
            hook_hosts(lifecycle.and_then(|l| l.pre_stop.as_ref())),
        ),
    ]
    .into_iter()
    .filter_map(|(handler, actions)| Some((handler, actions?)))
    .collect()
}

fn probe_hosts(probe: Option<&Probe>) -> Option<[(&'static str, Option<&str>); 2]> {
    let probe = probe?;
    let http = probe.http_get.as_ref().and_then(|a| a.host.as_deref());
    let tcp = probe.tcp_socket.as_ref().and_then(|a| a.host.as_deref());
    Some([("httpGet", http), ("tcpSocket", tcp)])
}

/// tcpSocket is deprecated in hooks but still accepted, and still checked.
fn hook_hosts(handler: Option<&LifecycleHandler>) -> Option<[(&'static str, Option<&str>); 2]> {
    let handler = handler?;
    let http = handler.http_get.as_ref().and_then(|a| a.host.as_deref());
    let tcp = handler.tcp_socket.as_ref().and_then(|a| a.host.as_deref());
    Some([("httpGet", http), ("tcpSocket", tcp)])
}

/// Unconfined AppArmor removes the mandatory access control the runtime
/// applies by default.
pub static APPARMOR_PROFILE: Check = Check {
    id: "apparmor-profile",
    title: "AppArmor profile disabled or overridden",
    category: Category::PodSecurityBaseline,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "On AppArmor hosts the runtime confines every container with its default \
                  profile. An `Unconfined` profile (in `appArmorProfile` or the deprecated \
                  `container.apparmor.security.beta.kubernetes.io/*` annotation) removes that \
                  layer of defence.",
    remediation: "Remove the override, or set `appArmorProfile.type` to `RuntimeDefault` or \
                  `Localhost` (annotation values `runtime/default` or `localhost/<profile>`).",
    frameworks: &["pss:baseline", "nsa-cisa"],
    aliases: &[alias(Tool::Trivy, "KSV002")],
    scope: Scope::Object,
    run: apparmor_profile,
};

fn apparmor_profile(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    if let Some(profile) = pod_context(workload).and_then(|s| s.app_armor_profile.as_ref())
        && !confining_profile_type(&profile.type_)
    {
        let path = pod_context_path(workload)
            .field("appArmorProfile")
            .field("type");
        out.object(
            path,
            format!("pod sets AppArmor profile type `{}`", profile.type_),
        );
    }
    for c in &workload.containers {
        if let Some(profile) = context(c).and_then(|s| s.app_armor_profile.as_ref())
            && !confining_profile_type(&profile.type_)
        {
            let path = context_path(c).field("appArmorProfile").field("type");
            let message = format!(
                "container `{}` sets AppArmor profile type `{}`",
                c.name(),
                profile.type_
            );
            out.container(c, path, message);
        }
    }
    report_apparmor_annotations(workload, out);
}

/// The admission checks every annotation with the prefix, whether or not a
/// container of that name exists.
fn report_apparmor_annotations(workload: &Workload, out: &mut Violations) {
    let Some(annotations) = &workload.template_metadata.annotations else {
        return;
    };
    // BTreeMap: annotations come out sorted, so findings are deterministic.
    for (key, value) in annotations {
        if key.starts_with(APPARMOR_ANNOTATION_PREFIX) && !allowed_apparmor_annotation(value) {
            let path = workload
                .template_metadata_path
                .field("annotations")
                .key(key);
            out.object(
                path,
                format!("annotation `{key}` sets AppArmor profile `{value}`"),
            );
        }
    }
}

/// Annotation values that keep a confining profile (empty means the default).
pub(crate) fn allowed_apparmor_annotation(value: &str) -> bool {
    value.is_empty() || value == "runtime/default" || value.starts_with("localhost/")
}

/// Custom SELinux types, users or roles can lift the container's SELinux
/// confinement.
pub static SELINUX_OPTIONS: Check = Check {
    id: "selinux-options",
    title: "Custom SELinux type, user or role",
    category: Category::PodSecurityBaseline,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "An SELinux type other than the container types (for example `spc_t`, \
                  unconfined), or any custom SELinux user or role, can run the container \
                  outside the policy that isolates it from the node.",
    remediation: "Leave `seLinuxOptions.type` unset or use container_t, container_init_t, \
                  container_kvm_t or container_engine_t; do not set `seLinuxOptions.user` or \
                  `seLinuxOptions.role`. The `level` may be set.",
    frameworks: &["pss:baseline", "nsa-cisa"],
    aliases: &[alias(Tool::Trivy, "KSV025")],
    scope: Scope::Object,
    run: selinux_options,
};

fn selinux_options(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    if let Some(options) = pod_context(workload).and_then(|s| s.se_linux_options.as_ref()) {
        let path = pod_context_path(workload).field("seLinuxOptions");
        report_selinux_options(None, "pod", path, options, out);
    }
    for c in &workload.containers {
        if let Some(options) = context(c).and_then(|s| s.se_linux_options.as_ref()) {
            let path = context_path(c).field("seLinuxOptions");
            let setter = format!("container `{}`", c.name());
            report_selinux_options(Some(c), &setter, path, options, out);
        }
    }
}

fn report_selinux_options(
    container: Option<&ContainerEntry>,
    setter: &str,
    path: FieldPath,
    options: &SELinuxOptions,
    out: &mut Violations,
) {
    let selinux_type = options.type_.as_deref().unwrap_or_default();
    let mut problems = Vec::new();
    if !SELINUX_TYPES.contains(&selinux_type) {
        problems.push(("type", selinux_type));
    }
    for (field, value) in [("user", &options.user), ("role", &options.role)] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            problems.push((field, value));
        }
    }
    for (field, value) in problems {
        let message = format!("{setter} sets SELinux {field} `{value}`");
        let path = path.field(field);
        match container {
            Some(c) => out.container(c, path, message),
            None => out.object(path, message),
        };
    }
}

/// An unmasked /proc exposes kernel interfaces that the runtime hides.
pub static PROC_MOUNT: Check = Check {
    id: "proc-mount",
    title: "Container unmasks /proc",
    category: Category::PodSecurityBaseline,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "`procMount: Unmasked` removes the runtime's masks and read-only paths in \
                  /proc, exposing kernel interfaces that help an escape. The baseline profile \
                  allows it only for pods in a user namespace (`hostUsers: false`); the \
                  restricted profile never does (see `proc-mount-restricted`).",
    remediation: "Remove `securityContext.procMount` or set it to `Default`.",
    frameworks: &["pss:baseline"],
    aliases: &[
        alias(Tool::Trivy, "KSV027"),
        alias(Tool::Polaris, "procMount"),
        alias(Tool::KubeLinter, "unsafe-proc-mount"),
    ],
    scope: Scope::Object,
    run: proc_mount,
};

fn proc_mount(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    // Policy v1.35: a user-namespaced pod may unmask /proc at baseline.
    if in_user_namespace(workload) {
        return;
    }
    report_proc_mounts(workload, out);
}

/// Reports every container whose `procMount` is set to something other than
/// `Default`.
pub(crate) fn report_proc_mounts(workload: &Workload, out: &mut Violations) {
    for c in &workload.containers {
        let Some(proc_mount) = context(c).and_then(|s| s.proc_mount.as_deref()) else {
            continue;
        };
        if proc_mount != "Default" {
            let path = context_path(c).field("procMount");
            let message = format!("container `{}` sets procMount `{proc_mount}`", c.name());
            out.container(c, path, message);
        }
    }
}

/// An unconfined seccomp profile exposes every system call to the container.
pub static SECCOMP_PROFILE_BASELINE: Check = Check {
    id: "seccomp-profile-baseline",
    title: "Seccomp profile set to Unconfined",
    category: Category::PodSecurityBaseline,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "A seccomp profile other than `RuntimeDefault` or `Localhost` (that is, \
                  `Unconfined`) lets the container make every system call, including those \
                  behind most kernel container escapes.",
    remediation: "Set `securityContext.seccompProfile.type` to `RuntimeDefault` or `Localhost` \
                  at pod or container level, or remove the `Unconfined` override.",
    frameworks: &["pss:baseline", "nsa-cisa"],
    aliases: &[alias(Tool::Trivy, "KSV104")],
    scope: Scope::Object,
    run: seccomp_profile_baseline,
};

fn seccomp_profile_baseline(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    if let Some(profile) = pod_context(workload).and_then(|s| s.seccomp_profile.as_ref())
        && !confining_profile_type(&profile.type_)
    {
        let path = pod_context_path(workload)
            .field("seccompProfile")
            .field("type");
        out.object(
            path,
            format!("pod sets seccomp profile type `{}`", profile.type_),
        );
    }
    for c in &workload.containers {
        if let Some(profile) = context(c).and_then(|s| s.seccomp_profile.as_ref())
            && !confining_profile_type(&profile.type_)
        {
            let path = context_path(c).field("seccompProfile").field("type");
            let message = format!(
                "container `{}` sets seccomp profile type `{}`",
                c.name(),
                profile.type_
            );
            out.container(c, path, message);
        }
    }
}

/// Sysctls outside the safe list can change kernel settings for the whole node.
pub static UNSAFE_SYSCTLS: Check = Check {
    id: "unsafe-sysctls",
    title: "Pod sets an unsafe sysctl",
    category: Category::PodSecurityBaseline,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "Only a few sysctls are namespaced and isolated from other pods; any other \
                  sysctl can disable security mechanisms or affect every container on the node.",
    remediation: "Remove the sysctl from `spec.securityContext.sysctls`, or use one of the safe \
                  ones (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, \
                  net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_syncookies, \
                  net.ipv4.ping_group_range, net.ipv4.ip_local_reserved_ports, \
                  net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, \
                  net.ipv4.tcp_keepalive_intvl, net.ipv4.tcp_keepalive_probes, \
                  net.ipv4.tcp_rmem, net.ipv4.tcp_wmem).",
    frameworks: &["pss:baseline"],
    aliases: &[
        alias(Tool::Trivy, "KSV026"),
        alias(Tool::KubeLinter, "unsafe-sysctls"),
    ],
    scope: Scope::Object,
    run: unsafe_sysctls,
};

fn unsafe_sysctls(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    let sysctls = pod_context(workload)
        .and_then(|s| s.sysctls.as_deref())
        .unwrap_or_default();
    let sysctls_path = pod_context_path(workload).field("sysctls");
    for sysctl in sysctls {
        if !SAFE_SYSCTLS.contains(&sysctl.name.as_str()) {
            let path = sysctls_path.named(&sysctl.name);
            out.object(path, format!("pod sets unsafe sysctl `{}`", sysctl.name));
        }
    }
}

/// Windows HostProcess containers run directly on the node, like privileged
/// Linux containers.
pub static WINDOWS_HOST_PROCESS: Check = Check {
    id: "windows-host-process",
    title: "Windows HostProcess container",
    category: Category::PodSecurityBaseline,
    severity: Severity::Critical,
    applies: Applies::Workload,
    description: "A Windows HostProcess container runs as a process on the node with the \
                  node's network and filesystem: it is as powerful as a privileged Linux \
                  container.",
    remediation: "Remove `securityContext.windowsOptions.hostProcess` or set it to false, at \
                  pod and container level.",
    frameworks: &["pss:baseline", "cis-k8s:5.2.11", "mitre:T1611"],
    aliases: &[
        alias(Tool::Trivy, "KSV103"),
        alias(Tool::Polaris, "hostProcess"),
    ],
    scope: Scope::Object,
    run: windows_host_process,
};

fn windows_host_process(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Some(workload) = workload(subject) else {
        return;
    };
    let pod_host_process = pod_context(workload)
        .and_then(|s| s.windows_options.as_ref())
        .and_then(|w| w.host_process);
    if pod_host_process == Some(true) {
        let path = pod_context_path(workload)
            .field("windowsOptions")
            .field("hostProcess");
        out.object(path, "pod sets `windowsOptions.hostProcess: true`");
    }
    for c in &workload.containers {
        let host_process = context(c)
            .and_then(|s| s.windows_options.as_ref())
            .and_then(|w| w.host_process);
        if host_process == Some(true) {
            let path = context_path(c).field("windowsOptions").field("hostProcess");
            let message = format!(
                "container `{}` sets `windowsOptions.hostProcess: true`",
                c.name()
            );
            out.container(c, path, message);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{findings, paths};

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

    /// A Pod with `spec` (indented by two spaces) given as the body.
    fn pod(spec: &str) -> String {
        format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n{spec}")
    }

    /// A CronJob whose pod template spec is `spec` (indented by two spaces).
    fn cron_job(spec: &str) -> String {
        let indented: String = spec
            .lines()
            .map(|line| format!("          {line}\n"))
            .collect();
        format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata: {{name: c}}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n{indented}"
        )
    }

    #[test]
    fn host_namespaces_flag_each_field_separately() {
        let yaml = pod(
            "  hostNetwork: true\n  hostPID: true\n  hostIPC: false\n  containers: [{name: app, image: a}]\n",
        );
        assert_eq!(paths(&yaml, "host-network"), ["spec.hostNetwork"]);
        assert_eq!(paths(&yaml, "host-pid"), ["spec.hostPID"]);
        assert!(paths(&yaml, "host-ipc").is_empty());
        let yaml = cron_job("  hostIPC: true\n  containers: [{name: app, image: a}]\n");
        assert_eq!(
            paths(&yaml, "host-ipc"),
            ["spec.jobTemplate.spec.template.spec.hostIPC"]
        );
    }

    #[test]
    fn host_namespaces_pass_a_plain_pod() {
        let yaml = pod("  containers: [{name: app, image: a}]\n");
        for id in ["host-network", "host-pid", "host-ipc"] {
            assert!(paths(&yaml, id).is_empty(), "{id}");
        }
    }

    #[test]
    fn capabilities_baseline_flags_each_capability_outside_the_list_exactly() {
        let yaml = pod(r#"  containers:
  - name: app
    image: a
    securityContext: {capabilities: {add: [CHOWN, NET_RAW, chown, CAP_KILL]}}
  initContainers:
  - {name: init, image: a, securityContext: {capabilities: {add: [SYS_ADMIN]}}}
"#);
        assert_eq!(
            paths(&yaml, "capabilities-baseline"),
            [
                "spec.containers[name=app].securityContext.capabilities.add[1]",
                "spec.containers[name=app].securityContext.capabilities.add[2]",
                "spec.containers[name=app].securityContext.capabilities.add[3]",
                "spec.initContainers[name=init].securityContext.capabilities.add[0]",
            ]
        );
        let messages: Vec<_> = findings(&yaml, "capabilities-baseline")
            .into_iter()
            .map(|f| f.message)
            .collect();
        assert!(messages.contains(
            &"container `init` adds capability `SYS_ADMIN`, outside the default set".to_owned()
        ));
    }

    #[test]
    fn capabilities_baseline_passes_the_default_set() {
        let yaml = pod(r#"  containers:
  - name: app
    image: a
    securityContext: {capabilities: {add: [NET_BIND_SERVICE, SETUID, SYS_CHROOT], drop: [ALL]}}
"#);
        assert!(paths(&yaml, "capabilities-baseline").is_empty());
    }

    #[test]
    fn host_path_volume_flags_host_path_volumes_only() {
        let yaml = pod(r#"  containers: [{name: app, image: a}]
  volumes:
  - {name: cache, emptyDir: {}}
  - {name: logs, hostPath: {path: /var/log}}
"#);
        assert_eq!(
            paths(&yaml, "host-path-volume"),
            ["spec.volumes[name=logs].hostPath"]
        );
        let yaml = pod(
            "  containers: [{name: app, image: a}]\n  volumes: [{name: cache, emptyDir: {}}]\n",
        );
        assert!(paths(&yaml, "host-path-volume").is_empty());
    }

    #[test]
    fn host_ports_flag_non_zero_host_ports_by_name_or_index() {
        let yaml = pod(r#"  containers:
  - name: app
    image: a
    ports:
    - {name: http, containerPort: 80, hostPort: 8080}
    - {containerPort: 81, hostPort: 0}
    - {containerPort: 82, hostPort: 9090}
  ephemeralContainers:
  - name: debug
    image: a
    ports: [{containerPort: 83, hostPort: 83}]
"#);
        assert_eq!(
            paths(&yaml, "host-ports"),
            [
                "spec.containers[name=app].ports[2].hostPort",
                "spec.containers[name=app].ports[name=http].hostPort",
                "spec.ephemeralContainers[name=debug].ports[0].hostPort",
            ]
        );
        let yaml = pod("  containers: [{name: app, image: a, ports: [{containerPort: 80}]}]\n");
        assert!(paths(&yaml, "host-ports").is_empty());
    }

    #[test]
    fn host_probes_lifecycle_flags_hosts_in_probes_and_hooks() {
        let yaml = pod(r#"  containers:
  - name: app
    image: a
    livenessProbe: {httpGet: {host: 169.254.169.254, port: 80}}
    readinessProbe: {tcpSocket: {host: '', port: 80}}
    lifecycle:
      preStop: {tcpSocket: {host: db.internal, port: 5432}}
  initContainers:
  - name: sidecar
    image: a
    restartPolicy: Always
    startupProbe: {tcpSocket: {host: 10.0.0.1, port: 80}}
"#);
        assert_eq!(
            paths(&yaml, "host-probes-lifecycle"),
            [
                "spec.containers[name=app].lifecycle.preStop.tcpSocket.host",
                "spec.containers[name=app].livenessProbe.httpGet.host",
                "spec.initContainers[name=sidecar].startupProbe.tcpSocket.host",
            ]
        );
    }

    #[test]
    fn host_probes_lifecycle_passes_probes_without_host() {
        let yaml = pod(r#"  containers:
  - name: app
    image: a
    livenessProbe: {httpGet: {port: 80}}
    lifecycle: {postStart: {exec: {command: ['true']}}}
"#);
        assert!(paths(&yaml, "host-probes-lifecycle").is_empty());
    }

    #[test]
    fn apparmor_profile_flags_unconfined_fields_and_annotations() {
        let yaml = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  # The object's own annotations are not the pod's: not evaluated.
  annotations: {container.apparmor.security.beta.kubernetes.io/app: unconfined}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations:
        container.apparmor.security.beta.kubernetes.io/app: unconfined
        container.apparmor.security.beta.kubernetes.io/gone: unconfined
        container.apparmor.security.beta.kubernetes.io/ok: localhost/custom
    spec:
      securityContext: {appArmorProfile: {type: Unconfined}}
      containers:
      - {name: app, image: a, securityContext: {appArmorProfile: {type: RuntimeDefault}}}
      - {name: ok, image: a, securityContext: {appArmorProfile: {type: Unconfined}}}
"#;
        assert_eq!(
            paths(yaml, "apparmor-profile"),
            [
                "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]",
                "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/gone]",
                "spec.template.spec.containers[name=ok].securityContext.appArmorProfile.type",
                "spec.template.spec.securityContext.appArmorProfile.type",
            ]
        );
    }

    #[test]
    fn apparmor_profile_passes_runtime_default_and_localhost() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {container.apparmor.security.beta.kubernetes.io/app: runtime/default}
spec:
  securityContext: {appArmorProfile: {type: Localhost, localhostProfile: custom}}
  containers: [{name: app, image: a}]
"#;
        assert!(paths(yaml, "apparmor-profile").is_empty());
        let unconfined = yaml.replace("runtime/default", "unconfined");
        assert_eq!(
            paths(&unconfined, "apparmor-profile"),
            ["metadata.annotations[container.apparmor.security.beta.kubernetes.io/app]"]
        );
    }

    #[test]
    fn selinux_options_flag_type_user_and_role() {
        let yaml = pod(
            r#"  securityContext: {seLinuxOptions: {type: spc_t, level: 's0:c1,c2'}}
  containers:
  - name: app
    image: a
    securityContext: {seLinuxOptions: {user: system_u, role: system_r, type: container_engine_t}}
"#,
        );
        assert_eq!(
            paths(&yaml, "selinux-options"),
            [
                "spec.containers[name=app].securityContext.seLinuxOptions.role",
                "spec.containers[name=app].securityContext.seLinuxOptions.user",
                "spec.securityContext.seLinuxOptions.type",
            ]
        );
    }

    #[test]
    fn selinux_options_pass_container_types_and_levels() {
        let yaml = pod(
            r#"  securityContext: {seLinuxOptions: {type: container_t, level: 's0:c1'}}
  containers:
  - {name: app, image: a, securityContext: {seLinuxOptions: {type: container_init_t, user: ''}}}
"#,
        );
        assert!(paths(&yaml, "selinux-options").is_empty());
    }

    #[test]
    fn proc_mount_flags_unmasked_unless_in_a_user_namespace() {
        let spec = r#"  containers:
  - {name: app, image: a, securityContext: {procMount: Unmasked}}
  - {name: side, image: a, securityContext: {procMount: Default}}
"#;
        assert_eq!(
            paths(&pod(spec), "proc-mount"),
            ["spec.containers[name=app].securityContext.procMount"]
        );
        let user_namespaced = pod(&format!("  hostUsers: false\n{spec}"));
        assert!(paths(&user_namespaced, "proc-mount").is_empty());
    }

    #[test]
    fn seccomp_profile_baseline_flags_unconfined_at_either_level() {
        let yaml = pod(r#"  securityContext: {seccompProfile: {type: Unconfined}}
  containers:
  - {name: app, image: a, securityContext: {seccompProfile: {type: Unconfined}}}
  - {name: side, image: a, securityContext: {seccompProfile: {type: RuntimeDefault}}}
"#);
        assert_eq!(
            paths(&yaml, "seccomp-profile-baseline"),
            [
                "spec.containers[name=app].securityContext.seccompProfile.type",
                "spec.securityContext.seccompProfile.type",
            ]
        );
    }

    #[test]
    fn seccomp_profile_baseline_passes_unset_and_confining_profiles() {
        let yaml = pod(
            r#"  securityContext: {seccompProfile: {type: Localhost, localhostProfile: p.json}}
  containers:
  - {name: app, image: a}
  - {name: side, image: a, securityContext: {seccompProfile: {type: RuntimeDefault}}}
"#,
        );
        assert!(paths(&yaml, "seccomp-profile-baseline").is_empty());
    }

    #[test]
    fn unsafe_sysctls_flag_names_outside_the_safe_list() {
        let yaml = pod(r#"  securityContext:
    sysctls:
    - {name: net.ipv4.tcp_rmem, value: '4096 87380 16777216'}
    - {name: kernel.msgmax, value: '65536'}
  containers: [{name: app, image: a}]
"#);
        assert_eq!(
            paths(&yaml, "unsafe-sysctls"),
            ["spec.securityContext.sysctls[name=kernel.msgmax]"]
        );
        let safe = pod(
            "  securityContext: {sysctls: [{name: net.ipv4.tcp_keepalive_time, value: '60'}]}\n  containers: [{name: app, image: a}]\n",
        );
        assert!(paths(&safe, "unsafe-sysctls").is_empty());
    }

    #[test]
    fn windows_host_process_flags_pod_and_containers() {
        let yaml = pod(r#"  hostNetwork: true
  securityContext: {windowsOptions: {hostProcess: true}}
  containers:
  - {name: app, image: a, securityContext: {windowsOptions: {hostProcess: true}}}
  - {name: side, image: a, securityContext: {windowsOptions: {hostProcess: false}}}
"#);
        assert_eq!(
            paths(&yaml, "windows-host-process"),
            [
                "spec.containers[name=app].securityContext.windowsOptions.hostProcess",
                "spec.securityContext.windowsOptions.hostProcess",
            ]
        );
        let plain =
            pod("  containers: [{name: app, image: a, securityContext: {windowsOptions: {}}}]\n");
        assert!(paths(&plain, "windows-host-process").is_empty());
    }
}
