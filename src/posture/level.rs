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

/// The Pod Security checks one pod template fails, per level. A large
/// scan keeps one per workload, so each level is a set of bits: bit `i`
/// is the `i`-th of [`pss_checks`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TemplateVerdict {
    baseline: u64,
    /// Baseline ones included.
    restricted: u64,
}

/// Every Pod Security check, baseline first: the bits of a verdict.
fn pss_checks() -> impl Iterator<Item = &'static Check> {
    (pss_baseline::CHECKS.iter())
        .chain(pss_restricted::CHECKS)
        .copied()
}

/// The bit of the `at`-th of [`pss_checks`] (a test keeps them within 64).
fn bit(at: usize) -> u64 {
    u32::try_from(at)
        .ok()
        .and_then(|at| 1u64.checked_shl(at))
        .unwrap_or(0)
}

impl TemplateVerdict {
    /// Runs every Pod Security check on the workload's pod template.
    pub fn of(workload: &Workload, cx: &Context<'_>) -> TemplateVerdict {
        let subject = Subject::Workload(workload);
        let windows = is_windows(&workload.spec);
        let mut verdict = TemplateVerdict::default();
        let mut violations = Violations::default();
        for (at, check) in pss_checks().enumerate() {
            (check.run)(&subject, cx, &mut violations);
            if violations.is_empty() {
                continue;
            }
            violations.take();
            let baseline = at < pss_baseline::CHECKS.len();
            if baseline {
                verdict.baseline |= bit(at);
            }
            if !(baseline && windows && REPLACED_FOR_WINDOWS_AT_RESTRICTED.contains(&check.id)) {
                verdict.restricted |= bit(at);
            }
        }
        verdict
    }

    fn bits(&self, level: PodSecurityLevel) -> u64 {
        match level {
            PodSecurityLevel::Privileged => 0,
            PodSecurityLevel::Baseline => self.baseline,
            PodSecurityLevel::Restricted => self.restricted,
        }
    }

    /// The ids of the checks the template fails at `level` (none at
    /// `privileged`), sorted.
    pub fn failing(&self, level: PodSecurityLevel) -> Vec<&'static str> {
        let bits = self.bits(level);
        let mut failing: Vec<&'static str> = (pss_checks().enumerate())
            .filter(|(at, _)| bits & bit(*at) != 0)
            .map(|(_, check)| check.id)
            .collect();
        failing.sort_unstable();
        failing.dedup();
        failing
    }

    /// Whether the admission admits the pod at `level`.
    pub fn passes(&self, level: PodSecurityLevel) -> bool {
        self.bits(level) == 0
    }
}

/// `spec.os.name: windows`: the restricted level exempts these pods from
/// its Linux-only controls.
fn is_windows(spec: &PodSpec) -> bool {
    spec.os.as_ref().is_some_and(|os| os.name == "windows")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::testing::resources;
    use crate::model::Inventory;

    #[test]
    fn every_pod_security_check_has_a_bit_of_its_own() {
        assert!(pss_checks().count() <= 64);
    }

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
