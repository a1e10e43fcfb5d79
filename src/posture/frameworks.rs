//! Per-framework pass rates of a namespace's objects.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use crate::checks::catalog;
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
/// worst standing of its findings of that framework, frameworks it passes
/// left out. Kept for every object of a large scan, worked out as its
/// findings are found so that the scan need not keep the findings to give
/// the pass rates: so the frameworks of the built-in checks take two bits
/// each of one number, and only those of custom checks a list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standings {
    /// Two bits per framework of [`built_in_frameworks`], by its index:
    /// its [`Standing`].
    built_in: u64,
    /// Other frameworks (of custom checks), sorted; `None` rather than
    /// empty: one word for the many objects without any (a list's own
    /// three words are boxed for it).
    #[allow(clippy::box_collection)]
    other: Option<Box<Vec<(&'static str, Standing)>>>,
}

/// Frameworks that fit in [`Standings::built_in`].
const PACKED_FRAMEWORKS: usize = u64::BITS as usize / 2;

/// The frameworks of the built-in checks, sorted, as many as fit in
/// [`Standings::built_in`] (the catalog has four).
fn built_in_frameworks() -> &'static [&'static str] {
    static FRAMEWORKS: OnceLock<Vec<&'static str>> = OnceLock::new();
    FRAMEWORKS.get_or_init(|| {
        let all: BTreeSet<&'static str> = (catalog().iter())
            .flat_map(|c| c.frameworks.iter().map(|r| framework_of(r)))
            .collect();
        all.into_iter().take(PACKED_FRAMEWORKS).collect()
    })
}

impl Standing {
    fn from_bits(bits: u64) -> Standing {
        match bits & 0b11 {
            0 => Standing::Passing,
            1 => Standing::Suppressed,
            _ => Standing::Failing,
        }
    }
}

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
        standings
    }

    /// Adds the standings of more findings of the same object.
    pub fn merge(&mut self, other: &Standings) {
        for (index, &framework) in built_in_frameworks().iter().enumerate() {
            let standing = Standing::from_bits(other.built_in >> (2 * index));
            if standing != Standing::Passing {
                self.raise(framework, standing);
            }
        }
        for &(framework, standing) in other.others() {
            self.raise(framework, standing);
        }
    }

    fn raise(&mut self, framework: &'static str, standing: Standing) {
        if let Ok(index) = built_in_frameworks().binary_search(&framework) {
            let shift = 2 * index;
            let now = Standing::from_bits(self.built_in >> shift).max(standing);
            self.built_in = (self.built_in & !(0b11 << shift)) | ((now as u64) << shift);
            return;
        }
        let other = self.other.get_or_insert_default();
        match other.binary_search_by(|(f, _)| (*f).cmp(framework)) {
            Ok(at) => other[at].1 = other[at].1.max(standing),
            Err(at) => {
                other.reserve_exact(1);
                other.insert(at, (framework, standing));
            }
        }
    }

    /// The frameworks of custom checks, sorted.
    fn others(&self) -> &[(&'static str, Standing)] {
        self.other.as_deref().map_or(&[], Vec::as_slice)
    }

    fn get(&self, framework: &str) -> Standing {
        if let Ok(index) = built_in_frameworks().binary_search(&framework) {
            return Standing::from_bits(self.built_in >> (2 * index));
        }
        let other = self.others();
        match other.binary_search_by(|(f, _)| (*f).cmp(framework)) {
            Ok(at) => other[at].1,
            Err(_) => Standing::Passing,
        }
    }

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
    fn every_framework_of_the_catalog_is_packed() {
        for check in catalog() {
            for reference in check.frameworks {
                let framework = framework_of(reference);
                assert!(
                    built_in_frameworks().contains(&framework),
                    "{framework} of {}",
                    check.id
                );
            }
        }
        assert!(!built_in_frameworks().is_empty());
    }

    #[test]
    fn standings_take_two_words() {
        // A large scan keeps one per object.
        assert_eq!(std::mem::size_of::<Standings>(), 16);
    }

    #[test]
    fn standings_keep_the_worst_of_each_framework_built_in_or_not() {
        let mut a = Standings::default();
        a.raise("pss", Standing::Suppressed);
        a.raise("my-framework", Standing::Suppressed);
        let mut b = Standings::default();
        b.raise("pss", Standing::Failing);
        b.raise("mitre", Standing::Suppressed);
        b.raise("my-framework", Standing::Failing);
        b.raise("another", Standing::Suppressed);
        a.merge(&b);
        a.raise("pss", Standing::Suppressed);
        let expected = [
            ("pss", Standing::Failing),
            ("mitre", Standing::Suppressed),
            ("cis-k8s", Standing::Passing),
            ("nsa-cisa", Standing::Passing),
            ("my-framework", Standing::Failing),
            ("another", Standing::Suppressed),
            ("unheard-of", Standing::Passing),
        ];
        for (framework, standing) in expected {
            assert_eq!(a.get(framework), standing, "{framework}");
        }
        // The same standings reached in another order are equal.
        let mut c = Standings::default();
        for framework in ["another", "mitre"] {
            c.raise(framework, Standing::Suppressed);
        }
        for framework in ["my-framework", "pss"] {
            c.raise(framework, Standing::Failing);
        }
        assert_eq!(a, c);
        c.raise("cis-k8s", Standing::Suppressed);
        assert_ne!(a, c);
    }

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
