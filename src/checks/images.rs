//! Image references and pull policy: which image a container really runs.
//!
//! Every container counts here, init and ephemeral ones included: they all
//! run code pulled from a registry.

use crate::engine::{
    Applies, Category, Check, Context, Scope, Severity, Subject, Tool, Violations, alias,
};
use crate::model::ContainerEntry;

pub static CHECKS: &[&Check] = &[
    &IMAGE_TAG_LATEST,
    &IMAGE_NOT_PINNED_BY_DIGEST,
    &IMAGE_PULL_POLICY_NOT_ALWAYS,
];

/// `latest` (or no tag at all) means a different image on every pull.
pub static IMAGE_TAG_LATEST: Check = Check {
    id: "image-tag-latest",
    title: "Image uses the `latest` tag or no tag",
    category: Category::Images,
    severity: Severity::Medium,
    applies: Applies::Workload,
    description: "An image without a tag means `:latest`, and `latest` moves: each node may \
                  run a different image, nobody can tell which one is deployed, and a \
                  compromised push reaches the cluster on the next restart. An image pinned \
                  by digest passes.",
    remediation: "Use an immutable version tag (`nginx:1.27.3`) or, better, a digest \
                  (`nginx@sha256:…`).",
    frameworks: &[],
    aliases: &[
        alias(Tool::Trivy, "KSV013"),
        alias(Tool::Polaris, "tagNotSpecified"),
        alias(Tool::Checkov, "CKV_K8S_14"),
        alias(Tool::KubeScore, "container-image-tag"),
        alias(Tool::KubeLinter, "latest-tag"),
    ],
    scope: Scope::Object,
    run: image_tag_latest,
};

/// A tag can be moved to another image; a digest cannot.
pub static IMAGE_NOT_PINNED_BY_DIGEST: Check = Check {
    id: "image-not-pinned-by-digest",
    title: "Image not pinned by digest",
    category: Category::Images,
    severity: Severity::Info,
    applies: Applies::Workload,
    description: "Tags are mutable: whoever can push to the repository can make a tag point \
                  at other content. Only a digest (`@sha256:…`) guarantees the bytes that \
                  run are the bytes that were reviewed and scanned.",
    remediation: "Reference the image by digest, e.g. `registry.example.com/app:1.4@sha256:…` \
                  (tools such as crane, skopeo or a Renovate/Dependabot digest pin can \
                  maintain it).",
    frameworks: &[],
    aliases: &[
        alias(Tool::Checkov, "CKV_K8S_43"),
        alias(Tool::KubeLinter, "image-not-pinned-by-digest"),
    ],
    scope: Scope::Object,
    run: image_not_pinned_by_digest,
};

/// With `IfNotPresent`/`Never`, any pod on the node can run a cached private
/// image without the registry checking its credentials.
pub static IMAGE_PULL_POLICY_NOT_ALWAYS: Check = Check {
    id: "image-pull-policy-not-always",
    title: "Image pull policy is not `Always`",
    category: Category::Images,
    severity: Severity::Low,
    applies: Applies::Workload,
    description: "Unless the pull policy is `Always`, the kubelet reuses an image already on \
                  the node: a pod of another team can run a private image without the \
                  registry checking its pull credentials, and a moved tag is not picked up. \
                  When `imagePullPolicy` is unset the check uses the value Kubernetes \
                  defaults it to (`Always` only for an untagged or `latest` image without \
                  digest), so a manifest and the object read back from the cluster agree.",
    remediation: "Set `imagePullPolicy: Always` (or enable the AlwaysPullImages admission \
                  plugin for the cluster).",
    frameworks: &[],
    aliases: &[
        alias(Tool::Polaris, "pullPolicyNotAlways"),
        alias(Tool::Checkov, "CKV_K8S_15"),
        alias(Tool::KubeScore, "container-image-pull-policy"),
    ],
    scope: Scope::Object,
    run: image_pull_policy_not_always,
};

/// The parts of an image reference `[host[:port]/]path[:tag][@digest]`.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageRef<'a> {
    /// Registry host and repository path, without tag or digest.
    pub name: &'a str,
    pub tag: Option<&'a str>,
    pub digest: Option<&'a str>,
}

impl<'a> ImageRef<'a> {
    /// Splits an image reference. The tag is the part after a `:` in the last
    /// path component only, so a registry port (`localhost:5000/app`) is not
    /// mistaken for a tag. An empty tag or digest counts as absent.
    pub fn parse(image: &'a str) -> ImageRef<'a> {
        let (name_and_tag, digest) = match image.split_once('@') {
            Some((rest, digest)) => (rest, Some(digest)),
            None => (image, None),
        };
        let last_component = name_and_tag.rfind('/').map_or(0, |slash| slash + 1);
        let (name, tag) = match name_and_tag[last_component..].rfind(':') {
            Some(colon) => {
                let colon = last_component + colon;
                (&name_and_tag[..colon], Some(&name_and_tag[colon + 1..]))
            }
            None => (name_and_tag, None),
        };
        ImageRef {
            name,
            tag: tag.filter(|t| !t.is_empty()),
            digest: digest.filter(|d| !d.is_empty()),
        }
    }

    /// Whether the reference resolves to the moving `latest` tag: the tag
    /// says so, or there is neither tag nor digest.
    pub fn is_latest(&self) -> bool {
        self.digest.is_none() && self.tag.is_none_or(|t| t == "latest")
    }
}

/// The container's image, when it names one.
fn image_of(c: &ContainerEntry) -> Option<&str> {
    c.container
        .image
        .as_deref()
        .map(str::trim)
        .filter(|i| !i.is_empty())
}

fn image_tag_latest(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    for c in &workload.containers {
        let Some(image) = image_of(c) else { continue };
        let reference = ImageRef::parse(image);
        if !reference.is_latest() {
            continue;
        }
        let message = match reference.tag {
            Some(_) => format!("container `{}` uses image `{image}`", c.name()),
            None => format!(
                "container `{}` uses image `{image}` without a tag (pulls `latest`)",
                c.name()
            ),
        };
        out.container(c, c.path.field("image"), message);
    }
}

fn image_not_pinned_by_digest(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    for c in &workload.containers {
        let Some(image) = image_of(c) else { continue };
        if ImageRef::parse(image).digest.is_none() {
            let message = format!("container `{}` image `{image}` has no digest", c.name());
            out.container(c, c.path.field("image"), message);
        }
    }
}

/// The pull policy Kubernetes applies: the explicit value, or the API
/// server's default (`Always` for a `latest` reference, else `IfNotPresent`).
fn effective_pull_policy<'a>(policy: Option<&'a str>, image: &str) -> (&'a str, bool) {
    match policy.filter(|p| !p.is_empty()) {
        Some(explicit) => (explicit, false),
        None if ImageRef::parse(image).is_latest() => ("Always", true),
        None => ("IfNotPresent", true),
    }
}

fn image_pull_policy_not_always(subject: &Subject<'_>, _cx: &Context<'_>, out: &mut Violations) {
    let Subject::Workload(workload) = subject else {
        return;
    };
    for c in &workload.containers {
        let Some(image) = image_of(c) else { continue };
        let explicit = c.container.image_pull_policy.as_deref();
        let (policy, defaulted) = effective_pull_policy(explicit, image);
        if policy == "Always" {
            continue;
        }
        let message = if defaulted {
            format!(
                "container `{}` sets no imagePullPolicy: image `{image}` is pulled `{policy}`",
                c.name()
            )
        } else {
            format!(
                "container `{}` pulls image `{image}` with imagePullPolicy `{policy}`",
                c.name()
            )
        };
        out.container(c, c.path.field("imagePullPolicy"), message);
    }
}

#[cfg(test)]
mod tests {
    use super::ImageRef;
    use crate::checks::testing::{findings, paths};

    fn parsed(image: &str) -> (&str, Option<&str>, Option<&str>) {
        let r = ImageRef::parse(image);
        (r.name, r.tag, r.digest)
    }

    #[test]
    fn image_references_parse_with_ports_tags_and_digests() {
        assert_eq!(parsed("nginx"), ("nginx", None, None));
        assert_eq!(parsed("nginx:1.27"), ("nginx", Some("1.27"), None));
        assert_eq!(
            parsed("localhost:5000/app"),
            ("localhost:5000/app", None, None)
        );
        assert_eq!(
            parsed("localhost:5000/team/app:v2"),
            ("localhost:5000/team/app", Some("v2"), None)
        );
        assert_eq!(
            parsed("ghcr.io/org/app@sha256:abc"),
            ("ghcr.io/org/app", None, Some("sha256:abc"))
        );
        assert_eq!(
            parsed("registry:443/app:1.0@sha256:abc"),
            ("registry:443/app", Some("1.0"), Some("sha256:abc"))
        );
        assert_eq!(parsed("nginx:"), ("nginx", None, None));
        assert!(ImageRef::parse("localhost:5000/app").is_latest());
        assert!(!ImageRef::parse("app@sha256:abc").is_latest());
        assert!(ImageRef::parse("app:latest").is_latest());
    }

    const IMAGES: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
  - {name: untagged, image: nginx}
  - {name: latest, image: "nginx:latest"}
  - {name: port, image: "localhost:5000/app"}
  - {name: tagged, image: "nginx:1.27"}
  - {name: pinned, image: "nginx@sha256:0f3a", imagePullPolicy: IfNotPresent}
  - {name: always, image: "nginx:1.27", imagePullPolicy: Always}
  initContainers:
  - {name: init, image: "busybox:latest"}
"#;

    #[test]
    fn image_tag_latest_flags_latest_and_untagged_images() {
        assert_eq!(
            paths(IMAGES, "image-tag-latest"),
            [
                "spec.containers[name=latest].image",
                "spec.containers[name=port].image",
                "spec.containers[name=untagged].image",
                "spec.initContainers[name=init].image",
            ]
        );
        let found = findings(IMAGES, "image-tag-latest");
        assert!(found.iter().any(|f| f.message
            == "container `untagged` uses image `nginx` without a tag (pulls `latest`)"));
    }

    #[test]
    fn image_tag_latest_passes_tagged_and_pinned_images() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
  - {name: tagged, image: "localhost:5000/app:1.0"}
  - {name: pinned, image: "app@sha256:0f3a"}
"#;
        assert!(paths(yaml, "image-tag-latest").is_empty());
    }

    #[test]
    fn image_not_pinned_by_digest_flags_every_image_without_digest() {
        assert_eq!(
            paths(IMAGES, "image-not-pinned-by-digest"),
            [
                "spec.containers[name=always].image",
                "spec.containers[name=latest].image",
                "spec.containers[name=port].image",
                "spec.containers[name=tagged].image",
                "spec.containers[name=untagged].image",
                "spec.initContainers[name=init].image",
            ]
        );
    }

    #[test]
    fn image_not_pinned_by_digest_passes_digest_references() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers:
  - {name: app, image: "registry.example.com:5000/app:1.4@sha256:0f3a"}
"#;
        assert!(paths(yaml, "image-not-pinned-by-digest").is_empty());
    }

    #[test]
    fn image_pull_policy_not_always_applies_kubernetes_defaults() {
        // Untagged and `latest` images default to Always; a tagged or pinned
        // image defaults to IfNotPresent.
        assert_eq!(
            paths(IMAGES, "image-pull-policy-not-always"),
            [
                "spec.containers[name=pinned].imagePullPolicy",
                "spec.containers[name=tagged].imagePullPolicy",
            ]
        );
        let messages: Vec<_> = findings(IMAGES, "image-pull-policy-not-always")
            .into_iter()
            .map(|f| f.message)
            .collect();
        assert_eq!(
            messages,
            [
                "container `pinned` pulls image `nginx@sha256:0f3a` with imagePullPolicy `IfNotPresent`",
                "container `tagged` sets no imagePullPolicy: image `nginx:1.27` is pulled `IfNotPresent`",
            ]
        );
    }

    #[test]
    fn image_pull_policy_not_always_passes_always() {
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
      - {name: app, image: "nginx:1.27", imagePullPolicy: Always}
      - {name: edge, image: "nginx"}
"#;
        assert!(paths(yaml, "image-pull-policy-not-always").is_empty());
    }
}
