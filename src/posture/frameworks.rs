//! Per-framework pass rates of a namespace's objects.

use std::collections::{BTreeMap, BTreeSet};

use crate::crd::cluster_scan_report::NamespaceFrameworkRate;
use crate::engine::{Applies, Check, Finding};
use crate::model::ObjectRef;
use crate::policy::Policy;

/// The framework a check reference belongs to: the part before any `:`
/// (`cis-k8s:5.2.5` is `cis-k8s`, `pss:restricted` is `pss`).
pub fn framework_of(reference: &str) -> &str {
    reference.split(':').next().unwrap_or(reference)
}

/// Most frameworks a posture lists (the report's schema bound).
pub const MAX_FRAMEWORKS: usize = 100;
/// Longest framework name the report's schema takes.
const MAX_FRAMEWORK_NAME: usize = 253;

/// `text` cut to at most `max` bytes, on a character boundary.
fn bounded(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// Where one object stands in one framework.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Standing {
    Passing,
    /// Only findings accepted by an exception, annotation or built-in rule.
    Suppressed,
    Failing,
}

/// Where one object stands in each framework its findings belong to: the
/// worst standing of its findings of that framework, sorted by framework,
/// frameworks it passes left out. A few bytes per object, worked out as
/// its findings are found, so that a scan need not keep the findings to
/// give the pass rates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standings(Vec<(&'static str, Standing)>);

impl Standings {
    /// The standings of one object's findings.
    pub fn of<'f>(findings: impl IntoIterator<Item = &'f Finding>) -> Standings {
        let mut standings = Standings::default();
        for finding in findings {
            let standing = match finding.is_suppressed() {
                true => Standing::Suppressed,
                false => Standing::Failing,
            };
            for reference in finding.check.frameworks {
                standings.raise(framework_of(reference), standing);
            }
        }
        // Kept for every object of a large scan: no room to spare.
        standings.0.shrink_to_fit();
        standings
    }

    /// Adds the standings of more findings of the same object.
    pub fn merge(&mut self, other: &Standings) {
        for &(framework, standing) in &other.0 {
            self.raise(framework, standing);
        }
    }

    fn raise(&mut self, framework: &'static str, standing: Standing) {
        match self.0.binary_search_by(|(f, _)| (*f).cmp(framework)) {
            Ok(at) => self.0[at].1 = self.0[at].1.max(standing),
            Err(at) => self.0.insert(at, (framework, standing)),
        }
    }

    fn get(&self, framework: &str) -> Standing {
        match self.0.binary_search_by(|(f, _)| (*f).cmp(framework)) {
            Ok(at) => self.0[at].1,
            Err(_) => Standing::Passing,
        }
    }

    /// The standings of each object that has findings.
    pub fn by_object(findings: &[Finding]) -> BTreeMap<&ObjectRef, Standings> {
        let mut found: BTreeMap<&ObjectRef, Vec<&Finding>> = BTreeMap::new();
        for finding in findings {
            found.entry(&finding.object).or_default().push(finding);
        }
        (found.into_iter())
            .map(|(object, of_object)| (object, Standings::of(of_object)))
            .collect()
    }
}

/// Pass rates over `subjects` (the objects of one namespace, each by its
/// kind and [`Standings`]) of every framework whose enabled checks apply
/// to at least one of them; sorted by framework.
pub fn rates<'s>(
    subjects: impl IntoIterator<Item = (Applies, &'s Standings)>,
    catalog: &[&'static Check],
    policy: &Policy,
) -> Vec<NamespaceFrameworkRate> {
    let enabled: Vec<&'static Check> = catalog
        .iter()
        .copied()
        .filter(|c| policy.is_enabled(c))
        .collect();
    // The frameworks that apply to each kind of subject, worked out once.
    let mut applying: Vec<(Applies, BTreeSet<&'static str>)> = Vec::new();
    let mut tallies: BTreeMap<&'static str, [u32; 3]> = BTreeMap::new();
    for (applies, standings) in subjects {
        let frameworks = match applying.iter().position(|(a, _)| *a == applies) {
            Some(index) => &applying[index].1,
            None => {
                applying.push((applies, frameworks_applying(&enabled, applies)));
                &applying[applying.len() - 1].1
            }
        };
        for &framework in frameworks {
            let standing = standings.get(framework);
            let tally = tallies.entry(framework).or_default();
            tally[standing as usize] = tally[standing as usize].saturating_add(1);
        }
    }
    tallies
        .into_iter()
        .take(MAX_FRAMEWORKS)
        .map(|(framework, [passing, suppressed, failing])| {
            let total = passing.saturating_add(suppressed).saturating_add(failing);
            NamespaceFrameworkRate {
                framework: bounded(framework, MAX_FRAMEWORK_NAME),
                passing,
                failing,
                suppressed,
                total,
                pass_percent: percent(passing, total),
            }
        })
        .collect()
}

/// The frameworks of the enabled checks that look at subjects of a kind.
fn frameworks_applying(enabled: &[&'static Check], applies: Applies) -> BTreeSet<&'static str> {
    enabled
        .iter()
        .filter(|c| c.applies.covers(applies))
        .flat_map(|c| c.frameworks.iter().map(|r| framework_of(r)))
        .collect()
}

/// `part` as a whole percentage of `total`, rounded down; 100 of nothing.
fn percent(part: u32, total: u32) -> u32 {
    let percent = u64::from(part) * 100 / u64::from(total.max(1));
    if total == 0 {
        100
    } else {
        u32::try_from(percent).unwrap_or(100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::{catalog, testing::resources};
    use crate::engine::{evaluate, subjects};
    use crate::model::Inventory;

    fn rates_of(yaml: &str, policy: &Policy) -> Vec<NamespaceFrameworkRate> {
        let inventory = Inventory::from_resources(&resources(yaml));
        let findings = evaluate(&inventory, catalog(), policy);
        let by_object = Standings::by_object(&findings);
        let passing = Standings::default();
        let subjects: Vec<(Applies, &Standings)> = subjects(&inventory)
            .map(|s| {
                (
                    s.applies(),
                    by_object.get(&s.object_ref()).unwrap_or(&passing),
                )
            })
            .collect();
        rates(subjects, catalog(), policy)
    }

    fn rate<'a>(
        rates: &'a [NamespaceFrameworkRate],
        framework: &str,
    ) -> &'a NamespaceFrameworkRate {
        rates
            .iter()
            .find(|r| r.framework == framework)
            .unwrap_or_else(|| panic!("no {framework} in {rates:?}"))
    }

    const HARDENED: &str = "
apiVersion: v1
kind: Pod
metadata: {name: good, namespace: a}
spec:
  containers:
  - name: app
    image: x
    securityContext: {allowPrivilegeEscalation: false, runAsNonRoot: true,
      capabilities: {drop: [ALL]}, seccompProfile: {type: RuntimeDefault}}
";

    const PRIVILEGED: &str = "
apiVersion: v1
kind: Pod
metadata: {name: bad, namespace: a}
spec:
  containers: [{name: app, image: x, securityContext: {privileged: true}}]
";

    #[test]
    fn frameworks_are_the_reference_prefixes() {
        assert_eq!(framework_of("cis-k8s:5.2.5"), "cis-k8s");
        assert_eq!(framework_of("nsa-cisa"), "nsa-cisa");
    }

    #[test]
    fn a_hardened_pod_passes_pss_and_a_privileged_one_fails_it() {
        let all = rates_of(&format!("{HARDENED}---{PRIVILEGED}"), &Policy::default());
        let pss = rate(&all, "pss");
        assert_eq!(
            (pss.passing, pss.failing, pss.suppressed, pss.total),
            (1, 1, 0, 2)
        );
        assert_eq!(pss.pass_percent, 50);
        let names: Vec<&str> = all.iter().map(|r| r.framework.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "sorted by framework");
    }

    #[test]
    fn accepted_risk_is_counted_apart_from_passes() {
        // Hardened but on the host network: its one Pod Security finding.
        let host_network = HARDENED
            .replace(
                "name: good, namespace: a}",
                "name: host, namespace: a, annotations: {palisade.dev/ignore: host-network}}",
            )
            .replace("spec:\n", "spec:\n  hostNetwork: true\n");
        let all = rates_of(&format!("{HARDENED}---{host_network}"), &Policy::default());
        let pss = rate(&all, "pss");
        assert_eq!(
            (pss.passing, pss.failing, pss.suppressed, pss.total),
            (1, 0, 1, 2)
        );
        assert_eq!(pss.pass_percent, 50);
        // Without the annotation it fails.
        let unannotated =
            host_network.replace(", annotations: {palisade.dev/ignore: host-network}", "");
        let all = rates_of(&format!("{HARDENED}---{unannotated}"), &Policy::default());
        let pss = rate(&all, "pss");
        assert_eq!((pss.passing, pss.failing, pss.suppressed), (1, 1, 0));
    }

    #[test]
    fn long_framework_names_are_cut_on_a_character_boundary() {
        assert_eq!(bounded("cis-k8s", 253), "cis-k8s");
        assert_eq!(bounded("ééé", 3), "é");
        assert_eq!(bounded(&"x".repeat(300), MAX_FRAMEWORK_NAME).len(), 253);
    }

    #[test]
    fn percentages_round_down_and_nothing_is_all() {
        assert_eq!(percent(2, 3), 66);
        assert_eq!(percent(0, 0), 100);
        assert_eq!(percent(u32::MAX, u32::MAX), 100);
    }
}
