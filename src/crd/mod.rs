//! Palisade's custom resources, group `palisade.dev`, version `v1alpha1`.
//! Doc comments on these types become the CRD schema descriptions.

pub mod cluster_scan_report;
pub mod scan_policy;
pub mod scan_report;
pub mod schema;

pub use cluster_scan_report::{ClusterScanReport, ClusterScanReportSpec};
pub use scan_policy::{ScanPolicy, ScanPolicySpec, ScanPolicyStatus};
pub use scan_report::{
    ReportFinding, ReportStatus, ReportTarget, ScanReport, ScanReportSpec, Summary,
};

use kube::CustomResourceExt;

/// Every CRD of Palisade as one multi-document YAML stream, the content of
/// `crds/palisade.yaml` (`palisade crds`).
pub fn crds_yaml() -> String {
    let crds = [
        scan_report::with_status_in_the_object(ScanReport::crd()),
        scan_report::with_status_in_the_object(ClusterScanReport::crd()),
        ScanPolicy::crd(),
    ];
    let mut out = String::new();
    for crd in crds {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd).expect("a CRD serializes to YAML"));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// `crds/palisade.yaml` and `manifests/crds.yaml` are generated; run
    /// with `PALISADE_BLESS=1` to rewrite them after changing a CRD type.
    #[test]
    fn generated_crd_files_are_current() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let expected = super::crds_yaml();
        for file in ["crds/palisade.yaml", "manifests/crds.yaml"] {
            let path = root.join(file);
            if std::env::var_os("PALISADE_BLESS").is_some() {
                std::fs::write(&path, &expected).unwrap();
            }
            let actual = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                actual == expected,
                "{file} is stale: regenerate it with `palisade crds > {file}` \
                 (or `PALISADE_BLESS=1 cargo test --lib crd::tests`)"
            );
        }
    }

    #[test]
    fn report_crds_print_the_columns_and_use_free_short_names() {
        use kube::CustomResourceExt;
        let crd = super::scan_report::with_status_in_the_object(super::ScanReport::crd());
        let columns: Vec<_> = crd.spec.versions[0]
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.priority.unwrap_or(0)))
            .collect();
        let names: Vec<_> = columns.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "Kind", "Target", "Critical", "High", "Medium", "Low", "Score", "Drift", "Age"
            ]
        );
        assert!(
            columns.iter().all(|(_, p)| *p == 0),
            "all shown without -o wide"
        );
        let cluster =
            super::scan_report::with_status_in_the_object(super::ClusterScanReport::crd());
        assert_eq!(cluster.spec.scope, "Cluster");
        assert_eq!(crd.spec.scope, "Namespaced");
        // `csr` belongs to CertificateSigningRequest.
        let short: Vec<_> = [&crd, &cluster]
            .iter()
            .flat_map(|c| c.spec.names.short_names.clone().unwrap_or_default())
            .collect();
        assert_eq!(short, ["sr", "csrep"]);
        for c in [&crd, &cluster] {
            assert_eq!(
                c.spec.names.categories.as_deref(),
                Some(&["palisade".to_owned()][..])
            );
            // The status is written with the object, in one apply.
            assert_eq!(c.spec.versions[0].subresources, None);
            let schema = c.spec.versions[0].schema.as_ref().unwrap();
            let properties = schema.open_api_v3_schema.as_ref().unwrap();
            assert!(
                properties
                    .properties
                    .as_ref()
                    .unwrap()
                    .contains_key("status"),
                "`kubectl explain {}.status` still describes the findings",
                c.spec.names.singular.as_deref().unwrap_or_default()
            );
        }
    }
}
