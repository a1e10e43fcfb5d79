//! The Pod Security Standards level one pod template meets, judged the way
//! the pod-security admission judges a pod: by the Pod Security checks of
//! the catalog, run directly (no policy: the admission knows no exceptions).

use k8s_openapi::api::core::v1::PodSpec;

use crate::checks::{pss_baseline, pss_restricted};
use crate::crd::cluster_scan_report::PodSecurityLevel;
use crate::engine::{Check, Context, Subject, Violations};
use crate::model::Workload;

/// Baseline checks whose admission controls the restricted level replaces
/// with versions that exempt Windows pods entirely (policy v1.25 on): on a
/// Windows pod they count at the baseline level only.
const REPLACED_FOR_WINDOWS_AT_RESTRICTED: [&str; 2] = [
    pss_baseline::SECCOMP_PROFILE_BASELINE.id,
    pss_baseline::CAPABILITIES_BASELINE.id,
];

/// The ids of the Pod Security checks one pod template fails, per level.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateVerdict {
    /// Failing baseline checks, sorted.
    baseline: Vec<&'static str>,
    /// Failing checks at the restricted level (baseline ones included),
    /// sorted.
    restricted: Vec<&'static str>,
}

impl TemplateVerdict {
    /// Runs every Pod Security check on the workload's pod template.
    pub fn of(workload: &Workload, cx: &Context<'_>) -> TemplateVerdict {
        let subject = Subject::Workload(workload);
        let baseline = failing_checks(pss_baseline::CHECKS, &subject, cx);
        let windows = is_windows(&workload.spec);
        let mut restricted: Vec<&'static str> = baseline
            .iter()
            .copied()
            .filter(|id| !(windows && REPLACED_FOR_WINDOWS_AT_RESTRICTED.contains(id)))
            .chain(failing_checks(pss_restricted::CHECKS, &subject, cx))
            .collect();
        restricted.sort_unstable();
        restricted.dedup();
        TemplateVerdict {
            baseline,
            restricted,
        }
    }

    /// The checks the template fails at `level` (none at `privileged`).
    pub fn failing(&self, level: PodSecurityLevel) -> &[&'static str] {
        match level {
            PodSecurityLevel::Privileged => &[],
            PodSecurityLevel::Baseline => &self.baseline,
            PodSecurityLevel::Restricted => &self.restricted,
        }
    }

    /// Whether the admission admits the pod at `level`.
    pub fn passes(&self, level: PodSecurityLevel) -> bool {
        self.failing(level).is_empty()
    }
}

/// `spec.os.name: windows`: the restricted level exempts these pods from
/// its Linux-only controls.
fn is_windows(spec: &PodSpec) -> bool {
    spec.os.as_ref().is_some_and(|os| os.name == "windows")
}

/// The ids of the `checks` that report something on `subject`, sorted.
fn failing_checks(
    checks: &[&'static Check],
    subject: &Subject<'_>,
    cx: &Context<'_>,
) -> Vec<&'static str> {
    let mut violations = Violations::default();
    let mut failing = Vec::new();
    for check in checks {
        (check.run)(subject, cx, &mut violations);
        if !violations.is_empty() {
            failing.push(check.id);
            violations.take();
        }
    }
    failing.sort_unstable();
    failing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::resources;
    use crate::model::Inventory;

    fn verdict(pod_spec: &str) -> TemplateVerdict {
        let yaml = format!("apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec: {pod_spec}");
        let inventory = Inventory::from_resources(&resources(&yaml));
        let cx = Context::new(&inventory);
        TemplateVerdict::of(&inventory.workloads[0], &cx)
    }

    const HARDENED: &str = "{containers: [{name: app, image: x, securityContext: \
        {allowPrivilegeEscalation: false, runAsNonRoot: true, capabilities: {drop: [ALL]}, \
        seccompProfile: {type: RuntimeDefault}}}]}";

    #[test]
    fn a_hardened_pod_passes_every_level() {
        let v = verdict(HARDENED);
        assert!(PodSecurityLevel::ALL.iter().all(|l| v.passes(*l)), "{v:?}");
    }

    #[test]
    fn a_plain_pod_passes_baseline_but_not_restricted() {
        let v = verdict("{containers: [{name: app, image: x}]}");
        assert!(v.passes(PodSecurityLevel::Baseline));
        assert!(!v.passes(PodSecurityLevel::Restricted));
        assert!(
            v.failing(PodSecurityLevel::Restricted)
                .contains(&"run-as-non-root")
        );
    }

    #[test]
    fn a_privileged_pod_fails_baseline_and_restricted_with_the_baseline_check() {
        let v =
            verdict("{containers: [{name: app, image: x, securityContext: {privileged: true}}]}");
        assert!(v.passes(PodSecurityLevel::Privileged));
        assert_eq!(
            v.failing(PodSecurityLevel::Baseline),
            ["privileged-container"]
        );
        assert!(
            v.failing(PodSecurityLevel::Restricted)
                .contains(&"privileged-container")
        );
    }

    #[test]
    fn windows_pods_are_exempt_from_the_replaced_baseline_controls_only_at_restricted() {
        let spec = "{os: {name: windows}, securityContext: {seccompProfile: {type: Unconfined}}, \
            containers: [{name: app, image: x, securityContext: {runAsNonRoot: true}}]}";
        let v = verdict(spec);
        assert_eq!(
            v.failing(PodSecurityLevel::Baseline),
            ["seccomp-profile-baseline"]
        );
        assert!(v.passes(PodSecurityLevel::Restricted), "{v:?}");
        // The same pod on Linux fails both.
        let linux = verdict(&spec.replace("os: {name: windows}, ", ""));
        assert!(!linux.passes(PodSecurityLevel::Baseline));
        assert!(!linux.passes(PodSecurityLevel::Restricted));
    }
}
