//! What the Pod Security Standards and hardening checks share: where pod and
//! container security settings live, how a container inherits the pod's
//! value, and the host facts (OS, user namespace) that relax some controls.

use k8s_openapi::api::core::v1::{
    Capabilities, HostPathVolumeSource, PodSecurityContext, SecurityContext,
};

use crate::engine::{Subject, Violations};
use crate::model::{ContainerEntry, FieldPath, VolumeEntry, Workload};

/// The workload a check looks at; `None` for other subjects.
pub(crate) fn workload<'a>(subject: &Subject<'a>) -> Option<&'a Workload> {
    match *subject {
        Subject::Workload(workload) => Some(workload),
        _ => None,
    }
}

/// The pod-level security context, if the template has one.
pub(crate) fn pod_context(workload: &Workload) -> Option<&PodSecurityContext> {
    workload.spec.security_context.as_ref()
}

/// `…spec.securityContext`
pub(crate) fn pod_context_path(workload: &Workload) -> FieldPath {
    workload.spec_path.field("securityContext")
}

/// The container's own security context, if it has one.
pub(crate) fn context(container: &ContainerEntry) -> Option<&SecurityContext> {
    container.container.security_context.as_ref()
}

/// `…containers[name=app].securityContext`
pub(crate) fn context_path(container: &ContainerEntry) -> FieldPath {
    container.path.field("securityContext")
}

/// The container's capabilities block, if it has one.
pub(crate) fn capabilities(container: &ContainerEntry) -> Option<&Capabilities> {
    context(container)?.capabilities.as_ref()
}

/// `…containers[name=app].securityContext.capabilities.<list>`
pub(crate) fn capabilities_path(container: &ContainerEntry, list: &str) -> FieldPath {
    context_path(container).field("capabilities").field(list)
}

/// Capabilities the container adds, with their index in `capabilities.add`.
pub(crate) fn added_capabilities(
    container: &ContainerEntry,
) -> impl Iterator<Item = (usize, &str)> {
    capabilities(container)
        .and_then(|caps| caps.add.as_deref())
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .enumerate()
}

/// Capabilities the container drops.
pub(crate) fn dropped_capabilities(container: &ContainerEntry) -> &[String] {
    capabilities(container)
        .and_then(|caps| caps.drop.as_deref())
        .unwrap_or_default()
}

/// A capability name as container runtimes read it: case-insensitive, with
/// or without the `CAP_` prefix (`cap_sys_admin` is `SYS_ADMIN`).
pub(crate) fn normalize_capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    match upper.strip_prefix("CAP_") {
        Some(rest) => rest.to_owned(),
        None => upper,
    }
}

/// Pods with `spec.os.name: windows`, which the restricted profile exempts
/// from the Linux-only controls (seccomp, capabilities, privilege escalation).
pub(crate) fn is_windows(workload: &Workload) -> bool {
    workload
        .spec
        .os
        .as_ref()
        .is_some_and(|os| os.name == "windows")
}

/// Pods with `hostUsers: false` run in a user namespace: UID 0 in the pod is
/// an unprivileged UID on the node, which relaxes the root-user controls.
pub(crate) fn in_user_namespace(workload: &Workload) -> bool {
    workload.spec.host_users == Some(false)
}

/// Every `hostPath` volume of the pod with the path of its entry in
/// `spec.volumes` (`…volumes[name=data]`).
pub(crate) fn host_path_volumes(
    workload: &Workload,
) -> impl Iterator<Item = (&VolumeEntry, &HostPathVolumeSource, FieldPath)> {
    volumes(workload).filter_map(|(volume, path)| {
        let host_path = volume.host_path.as_ref()?;
        Some((volume, host_path, path))
    })
}

/// Every volume of the pod with the path of its entry in `spec.volumes`.
pub(crate) fn volumes(workload: &Workload) -> impl Iterator<Item = (&VolumeEntry, FieldPath)> {
    let volumes_path = workload.spec_path.field("volumes");
    workload
        .volumes
        .iter()
        .map(move |volume| (volume, volumes_path.named(&volume.name)))
}

/// A host path in canonical form, so that `/var/run/`, `//var/run` and
/// `/var/./run` compare equal to `/var/run`. Does not follow `..`: the kubelet
/// does not clean it either, and a path with `..` is suspicious on its own.
pub(crate) fn normalize_host_path(path: &str) -> String {
    let segments: Vec<&str> = path
        .split('/')
        .filter(|segment| !segment.is_empty() && *segment != ".")
        .collect();
    format!("/{}", segments.join("/"))
}

/// `` `a`, `b` `` for messages that name several containers.
pub(crate) fn quoted_names<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reports containers that do not set a setting the pod could set for all of
/// them (`runAsNonRoot`, `seccompProfile`). When no container sets it, the
/// one fix is the pod-level field, so the finding points there; otherwise
/// each container that relies on the (missing) pod value is reported at its
/// own field.
pub(crate) fn report_unset(
    workload: &Workload,
    unset: &[&ContainerEntry],
    field: &[&str],
    requirement: &str,
    out: &mut Violations,
) {
    if unset.is_empty() {
        return;
    }
    let append = |path: FieldPath| field.iter().fold(path, |path, name| path.field(name));
    if unset.len() == workload.containers.len() {
        let names = quoted_names(unset.iter().map(|c| c.name()));
        let message = format!(
            "neither the pod nor its containers ({names}) set {requirement}; set it at pod level"
        );
        out.object(append(pod_context_path(workload)), message);
        return;
    }
    for container in unset {
        let message = format!(
            "container `{}` does not set {requirement} and the pod does not either",
            container.name()
        );
        out.container(container, append(context_path(container)), message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_normalize_like_the_runtime() {
        assert_eq!(normalize_capability("cap_sys_admin"), "SYS_ADMIN");
        assert_eq!(normalize_capability("Net_Admin"), "NET_ADMIN");
        assert_eq!(normalize_capability("ALL"), "ALL");
    }

    #[test]
    fn host_paths_normalize_slashes_and_dots() {
        assert_eq!(normalize_host_path("/var/run/"), "/var/run");
        assert_eq!(
            normalize_host_path("//var/./run//docker.sock"),
            "/var/run/docker.sock"
        );
        assert_eq!(normalize_host_path("/"), "/");
        assert_eq!(normalize_host_path("/etc/../root"), "/etc/../root");
    }
}
