//! A namespace's Pod Security admission labels, and what they say next to
//! the level its workloads meet.

use k8s_openapi::api::core::v1::Namespace;

use crate::crd::cluster_scan_report::{PodSecurityLevel, PodSecurityMode, PostureWarning};

/// Prefix of the Pod Security admission labels.
pub const LABEL_PREFIX: &str = "pod-security.kubernetes.io/";

/// The newest policy version the Pod Security checks implement; `latest`
/// means it too.
pub const EVALUATED_VERSION: (u32, u32) = (1, 35);

/// The admission's three modes, in the order reports list them.
pub const MODES: [&str; 3] = ["enforce", "audit", "warn"];

/// One mode's labels on `namespace` (`None`: not in the input, unlabelled).
pub fn mode(namespace: Option<&Namespace>, mode: &str) -> PodSecurityMode {
    let labels = namespace.and_then(|ns| ns.metadata.labels.as_ref());
    let label = |suffix: &str| {
        labels
            .and_then(|labels| labels.get(&format!("{LABEL_PREFIX}{mode}{suffix}")))
            .cloned()
    };
    let level = label("");
    PodSecurityMode {
        labelled: level.is_some(),
        level: level.unwrap_or_else(|| PodSecurityLevel::Privileged.as_str().to_owned()),
        version: label("-version").unwrap_or_else(|| "latest".to_owned()),
    }
}

/// A policy version label: `latest`, or `v<major>.<minor>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    Latest,
    Release(u32, u32),
}

fn parse_version(value: &str) -> Option<Version> {
    if value == "latest" {
        return Some(Version::Latest);
    }
    let (major, minor) = value.strip_prefix('v')?.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some(Version::Release(major.parse().ok()?, minor.parse().ok()?))
}

/// Warnings about one namespace's labels, given the level met and, for the
/// enforced level, which workloads fail it.
pub fn warnings(
    met: PodSecurityLevel,
    modes: &[(&str, &PodSecurityMode)],
    failing_enforced: impl Fn(PodSecurityLevel) -> Vec<String>,
) -> Vec<PostureWarning> {
    let mut warnings = Vec::new();
    for (name, mode) in modes {
        label_warnings(name, mode, &mut warnings);
    }
    let enforce = modes
        .iter()
        .find(|(name, _)| *name == "enforce")
        .and_then(|(_, mode)| PodSecurityLevel::parse(&mode.level));
    match enforce {
        Some(enforced) if enforced < met => warnings.push(PostureWarning {
            reason: "EnforceBelowLevelMet".to_owned(),
            message: format!(
                "every workload meets `{met}` but the namespace enforces `{enforced}`: \
                 label it `{LABEL_PREFIX}enforce={met}` to keep it there"
            ),
        }),
        Some(enforced) if enforced > met => {
            let failing = failing_enforced(enforced);
            warnings.push(PostureWarning {
                reason: "EnforceAboveLevelMet".to_owned(),
                message: format!(
                    "the namespace enforces `{enforced}` but {} it ({}): their pods \
                     will be rejected on their next rollout",
                    count(failing.len(), "workload fails", "workloads fail"),
                    abbreviated(&failing, 5)
                ),
            });
        }
        _ => {}
    }
    warnings
}

fn label_warnings(name: &str, mode: &PodSecurityMode, out: &mut Vec<PostureWarning>) {
    if mode.labelled && PodSecurityLevel::parse(&mode.level).is_none() {
        out.push(PostureWarning {
            reason: "InvalidLabel".to_owned(),
            message: format!(
                "`{LABEL_PREFIX}{name}` is `{}`, not privileged, baseline or restricted",
                mode.level
            ),
        });
    }
    match parse_version(&mode.version) {
        None => out.push(PostureWarning {
            reason: "InvalidLabel".to_owned(),
            message: format!(
                "`{LABEL_PREFIX}{name}-version` is `{}`, not `latest` or a version such as v1.35",
                mode.version
            ),
        }),
        Some(Version::Release(major, minor)) if (major, minor) < EVALUATED_VERSION => {
            let (e_major, e_minor) = EVALUATED_VERSION;
            out.push(PostureWarning {
                reason: "PolicyVersionDiffers".to_owned(),
                message: format!(
                    "`{name}` uses policy version v{major}.{minor}; the level met is judged \
                     with the v{e_major}.{e_minor} controls, and a few controls differ \
                     between versions"
                ),
            });
        }
        Some(_) => {}
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The first `max` items joined, with how many more there are.
fn abbreviated(items: &[String], max: usize) -> String {
    let shown = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    match items.len().saturating_sub(max) {
        0 => shown,
        more => format!("{shown} and {more} more"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namespace(labels: &[(&str, &str)]) -> Namespace {
        let labels = labels
            .iter()
            .map(|(k, v)| (format!("{LABEL_PREFIX}{k}"), (*v).to_owned()))
            .collect();
        let mut ns = Namespace::default();
        ns.metadata.labels = Some(labels);
        ns
    }

    #[test]
    fn modes_read_the_labels_or_the_admission_defaults() {
        let ns = namespace(&[("enforce", "baseline"), ("enforce-version", "v1.30")]);
        let enforce = mode(Some(&ns), "enforce");
        assert_eq!(
            (
                enforce.level.as_str(),
                enforce.version.as_str(),
                enforce.labelled
            ),
            ("baseline", "v1.30", true)
        );
        let audit = mode(Some(&ns), "audit");
        assert_eq!(
            (audit.level.as_str(), audit.version.as_str(), audit.labelled),
            ("privileged", "latest", false)
        );
        assert!(!mode(None, "warn").labelled);
    }

    fn reasons(met: PodSecurityLevel, labels: &[(&str, &str)]) -> Vec<String> {
        let ns = namespace(labels);
        let modes: Vec<(&str, PodSecurityMode)> =
            MODES.iter().map(|m| (*m, mode(Some(&ns), m))).collect();
        let modes: Vec<(&str, &PodSecurityMode)> = modes.iter().map(|(n, m)| (*n, m)).collect();
        warnings(met, &modes, |_| vec!["Deployment/web".to_owned()])
            .into_iter()
            .map(|w| w.reason)
            .collect()
    }

    #[test]
    fn enforce_below_the_level_met_is_an_easy_hardening() {
        let r = reasons(PodSecurityLevel::Restricted, &[("enforce", "baseline")]);
        assert_eq!(r, ["EnforceBelowLevelMet"]);
        // No label enforces privileged.
        let r = reasons(PodSecurityLevel::Baseline, &[]);
        assert_eq!(r, ["EnforceBelowLevelMet"]);
    }

    #[test]
    fn enforce_above_the_level_met_rejects_pods() {
        let r = reasons(PodSecurityLevel::Baseline, &[("enforce", "restricted")]);
        assert_eq!(r, ["EnforceAboveLevelMet"]);
    }

    #[test]
    fn enforce_at_the_level_met_is_quiet() {
        assert!(reasons(PodSecurityLevel::Baseline, &[("enforce", "baseline")]).is_empty());
        assert!(reasons(PodSecurityLevel::Privileged, &[]).is_empty());
    }

    #[test]
    fn bad_labels_and_older_versions_are_reported() {
        let r = reasons(
            PodSecurityLevel::Privileged,
            &[("audit", "strict"), ("warn-version", "1.30")],
        );
        assert_eq!(r, ["InvalidLabel", "InvalidLabel"]);
        let r = reasons(
            PodSecurityLevel::Baseline,
            &[("enforce", "baseline"), ("enforce-version", "v1.24")],
        );
        assert_eq!(r, ["PolicyVersionDiffers"]);
        assert!(
            reasons(
                PodSecurityLevel::Baseline,
                &[("enforce", "baseline"), ("enforce-version", "v1.35")]
            )
            .is_empty()
        );
    }

    #[test]
    fn long_lists_are_abbreviated() {
        let items: Vec<String> = (0..7).map(|i| format!("Pod/p{i}")).collect();
        assert_eq!(abbreviated(&items[..2], 5), "Pod/p0, Pod/p1");
        assert_eq!(
            abbreviated(&items, 5),
            "Pod/p0, Pod/p1, Pod/p2, Pod/p3, Pod/p4 and 2 more"
        );
    }
}
