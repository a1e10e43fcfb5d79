//! Resolving a `kubectl auth can-i` TYPE without API discovery: the built-in
//! resources of Kubernetes 1.35 by plural, singular and short name, with
//! their API group and whether they are namespaced.

/// A resource type as `TYPE` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceType {
    pub group: String,
    pub resource: String,
    /// `None` when the resource is unknown (kubectl also sends it as typed).
    pub namespaced: Option<bool>,
}

/// (plural, group, namespaced, aliases: singular and short names)
const BUILTIN: &[(&str, &str, bool, &[&str])] = &[
    ("bindings", "", true, &["binding"]),
    ("componentstatuses", "", false, &["componentstatus", "cs"]),
    ("configmaps", "", true, &["configmap", "cm"]),
    ("endpoints", "", true, &["ep"]),
    ("events", "", true, &["event", "ev"]),
    ("limitranges", "", true, &["limitrange", "limits"]),
    ("namespaces", "", false, &["namespace", "ns"]),
    ("nodes", "", false, &["node", "no"]),
    (
        "persistentvolumeclaims",
        "",
        true,
        &["persistentvolumeclaim", "pvc"],
    ),
    ("persistentvolumes", "", false, &["persistentvolume", "pv"]),
    ("pods", "", true, &["pod", "po"]),
    ("podtemplates", "", true, &["podtemplate"]),
    (
        "replicationcontrollers",
        "",
        true,
        &["replicationcontroller", "rc"],
    ),
    ("resourcequotas", "", true, &["resourcequota", "quota"]),
    ("secrets", "", true, &["secret"]),
    ("serviceaccounts", "", true, &["serviceaccount", "sa"]),
    ("services", "", true, &["service", "svc"]),
    (
        "mutatingwebhookconfigurations",
        "admissionregistration.k8s.io",
        false,
        &["mutatingwebhookconfiguration"],
    ),
    (
        "validatingwebhookconfigurations",
        "admissionregistration.k8s.io",
        false,
        &["validatingwebhookconfiguration"],
    ),
    (
        "validatingadmissionpolicies",
        "admissionregistration.k8s.io",
        false,
        &["validatingadmissionpolicy", "vap"],
    ),
    (
        "validatingadmissionpolicybindings",
        "admissionregistration.k8s.io",
        false,
        &["validatingadmissionpolicybinding", "vapb"],
    ),
    (
        "customresourcedefinitions",
        "apiextensions.k8s.io",
        false,
        &["customresourcedefinition", "crd", "crds"],
    ),
    (
        "apiservices",
        "apiregistration.k8s.io",
        false,
        &["apiservice"],
    ),
    ("controllerrevisions", "apps", true, &["controllerrevision"]),
    ("daemonsets", "apps", true, &["daemonset", "ds"]),
    ("deployments", "apps", true, &["deployment", "deploy"]),
    ("replicasets", "apps", true, &["replicaset", "rs"]),
    ("statefulsets", "apps", true, &["statefulset", "sts"]),
    (
        "selfsubjectreviews",
        "authentication.k8s.io",
        false,
        &["selfsubjectreview"],
    ),
    (
        "tokenreviews",
        "authentication.k8s.io",
        false,
        &["tokenreview"],
    ),
    (
        "localsubjectaccessreviews",
        "authorization.k8s.io",
        true,
        &["localsubjectaccessreview"],
    ),
    (
        "selfsubjectaccessreviews",
        "authorization.k8s.io",
        false,
        &["selfsubjectaccessreview"],
    ),
    (
        "selfsubjectrulesreviews",
        "authorization.k8s.io",
        false,
        &["selfsubjectrulesreview"],
    ),
    (
        "subjectaccessreviews",
        "authorization.k8s.io",
        false,
        &["subjectaccessreview"],
    ),
    (
        "horizontalpodautoscalers",
        "autoscaling",
        true,
        &["horizontalpodautoscaler", "hpa"],
    ),
    ("cronjobs", "batch", true, &["cronjob", "cj"]),
    ("jobs", "batch", true, &["job"]),
    (
        "certificatesigningrequests",
        "certificates.k8s.io",
        false,
        &["certificatesigningrequest", "csr"],
    ),
    ("leases", "coordination.k8s.io", true, &["lease"]),
    (
        "endpointslices",
        "discovery.k8s.io",
        true,
        &["endpointslice"],
    ),
    (
        "ingressclasses",
        "networking.k8s.io",
        false,
        &["ingressclass"],
    ),
    ("ingresses", "networking.k8s.io", true, &["ingress", "ing"]),
    (
        "networkpolicies",
        "networking.k8s.io",
        true,
        &["networkpolicy", "netpol"],
    ),
    ("runtimeclasses", "node.k8s.io", false, &["runtimeclass"]),
    (
        "poddisruptionbudgets",
        "policy",
        true,
        &["poddisruptionbudget", "pdb"],
    ),
    (
        "clusterrolebindings",
        "rbac.authorization.k8s.io",
        false,
        &["clusterrolebinding"],
    ),
    (
        "clusterroles",
        "rbac.authorization.k8s.io",
        false,
        &["clusterrole"],
    ),
    (
        "rolebindings",
        "rbac.authorization.k8s.io",
        true,
        &["rolebinding"],
    ),
    ("roles", "rbac.authorization.k8s.io", true, &["role"]),
    (
        "priorityclasses",
        "scheduling.k8s.io",
        false,
        &["priorityclass", "pc"],
    ),
    ("csidrivers", "storage.k8s.io", false, &["csidriver"]),
    ("csinodes", "storage.k8s.io", false, &["csinode"]),
    (
        "storageclasses",
        "storage.k8s.io",
        false,
        &["storageclass", "sc"],
    ),
    (
        "volumeattachments",
        "storage.k8s.io",
        false,
        &["volumeattachment"],
    ),
    ("signers", "certificates.k8s.io", false, &["signer"]),
];

/// Resources the API server serves only for the `impersonate` verb
/// (`kubectl` knows them without discovery too).
const IMPERSONATION: &[(&str, &str)] = &[
    ("users", ""),
    ("groups", ""),
    ("uids", "authentication.k8s.io"),
    ("userextras", "authentication.k8s.io"),
];

/// Resolves `TYPE` the way `kubectl auth can-i` does (`resourceFor`): lower
/// case; `*` as is; `resource.group` or `resource.version.group`; a known
/// plural, singular or short name gets its group; anything else is sent as
/// typed, in the core group unless a group is given.
pub fn resolve(type_arg: &str) -> ResourceType {
    if type_arg == "*" {
        return ResourceType {
            group: String::new(),
            resource: "*".to_owned(),
            namespaced: Some(true),
        };
    }
    let lower = type_arg.to_lowercase();
    let (name, group) = match lower.split_once('.') {
        Some((name, rest)) => (name.to_owned(), Some(strip_version(rest))),
        None => (lower.clone(), None),
    };
    let known = BUILTIN.iter().find(|(plural, g, _, aliases)| {
        (*plural == name || aliases.contains(&name.as_str()))
            && group.as_deref().is_none_or(|wanted| wanted == *g)
    });
    if let Some((plural, g, namespaced, _)) = known {
        return ResourceType {
            group: (*g).to_owned(),
            resource: (*plural).to_owned(),
            namespaced: Some(*namespaced),
        };
    }
    if let Some((plural, g)) = IMPERSONATION
        .iter()
        .find(|(plural, g)| *plural == name && group.as_deref().is_none_or(|wanted| wanted == *g))
    {
        return ResourceType {
            group: (*g).to_owned(),
            resource: (*plural).to_owned(),
            namespaced: Some(false),
        };
    }
    ResourceType {
        group: group.unwrap_or_default(),
        resource: name,
        namespaced: None,
    }
}

/// `v1.apps` → `apps`: kubectl's `resource.version.group` form.
fn strip_version(rest: &str) -> String {
    match rest.split_once('.') {
        Some((version, group)) if looks_like_version(version) => group.to_owned(),
        _ => rest.to_owned(),
    }
}

fn looks_like_version(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('v') else {
        return false;
    };
    rest.chars().next().is_some_and(|c| c.is_ascii_digit())
        && rest.chars().all(|c| c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(group: &str, resource: &str, namespaced: Option<bool>) -> ResourceType {
        ResourceType {
            group: group.to_owned(),
            resource: resource.to_owned(),
            namespaced,
        }
    }

    #[test]
    fn resolves_like_kubectl() {
        assert_eq!(resolve("pods"), rt("", "pods", Some(true)));
        assert_eq!(resolve("Pod"), rt("", "pods", Some(true)));
        assert_eq!(resolve("po"), rt("", "pods", Some(true)));
        assert_eq!(
            resolve("deployments"),
            rt("apps", "deployments", Some(true))
        );
        assert_eq!(
            resolve("deployments.apps"),
            rt("apps", "deployments", Some(true))
        );
        assert_eq!(
            resolve("deployments.v1.apps"),
            rt("apps", "deployments", Some(true))
        );
        assert_eq!(resolve("nodes"), rt("", "nodes", Some(false)));
        assert_eq!(
            resolve("widgets.example.com"),
            rt("example.com", "widgets", None)
        );
        assert_eq!(resolve("widgets"), rt("", "widgets", None));
        assert_eq!(resolve("*"), rt("", "*", Some(true)));
        assert_eq!(resolve("users"), rt("", "users", Some(false)));
        // A known name in another group is not the built-in one.
        assert_eq!(
            resolve("pods.metrics.k8s.io"),
            rt("metrics.k8s.io", "pods", None)
        );
    }
}
