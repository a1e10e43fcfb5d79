//! Palisade's custom resources, group `palisade.dev`, version `v1alpha1`.
//! Doc comments on these types become the CRD schema descriptions.

pub mod scan_policy;

pub use scan_policy::{ScanPolicy, ScanPolicySpec};
